//! The AWS clients a function uses, built once from one SDK configuration
//! (the function's own credentials, or a new key's for its checks).

use aws_config::SdkConfig;

/// The AWS clients, built once from one SDK configuration.
#[derive(Clone, Debug)]
pub struct Aws {
    /// Kept to build per-key clients (the STS check of a new key) that share
    /// its HTTP client, region and endpoint.
    pub sdk: SdkConfig,
    pub iam: aws_sdk_iam::Client,
    pub secrets: aws_sdk_secretsmanager::Client,
    pub cloudtrail: aws_sdk_cloudtrail::Client,
    pub s3: aws_sdk_s3::Client,
}

impl Aws {
    pub fn new(sdk: &SdkConfig) -> Self {
        Self {
            sdk: sdk.clone(),
            iam: aws_sdk_iam::Client::new(sdk),
            secrets: aws_sdk_secretsmanager::Client::new(sdk),
            cloudtrail: aws_sdk_cloudtrail::Client::new(sdk),
            s3: s3_client(sdk),
        }
    }

    /// The region the function runs in (where a trail is created).
    pub fn region(&self) -> &str {
        self.sdk.region().map_or("us-east-1", |r| r.as_ref())
    }
}

/// An S3 client; emulators (`AWS_ENDPOINT_URL`) serve S3 on one host:
/// path-style there.
pub fn s3_client(sdk: &SdkConfig) -> aws_sdk_s3::Client {
    let config = aws_sdk_s3::config::Builder::from(sdk)
        .force_path_style(sdk.endpoint_url().is_some())
        .build();
    aws_sdk_s3::Client::from_conf(config)
}
