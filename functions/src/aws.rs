//! The AWS clients a function uses, built once from one SDK configuration
//! (the function's own credentials, or a new key's for its checks).

use aws_config::SdkConfig;
use aws_smithy_http_client::tls::{Provider, rustls_provider::CryptoMode};

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
        let sdk = &sharing_one_http_client(sdk);
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

/// `sdk` with one HTTP client of its own, which every client made from the
/// result shares, unless it names one already. A client made from a
/// configuration without one makes its own, and with it reads the system's
/// TLS roots and keeps its own connections: the registrar makes clients for
/// every member account it looks at, a Create for its new key's checks.
pub fn sharing_one_http_client(sdk: &SdkConfig) -> SdkConfig {
    if sdk.http_client().is_some() {
        return sdk.clone();
    }
    let http = aws_smithy_http_client::Builder::new()
        .tls_provider(Provider::Rustls(CryptoMode::AwsLc))
        .build_https();
    sdk.to_builder().http_client(http).build()
}

/// An S3 client; emulators (`AWS_ENDPOINT_URL`) serve S3 on one host:
/// path-style there.
pub fn s3_client(sdk: &SdkConfig) -> aws_sdk_s3::Client {
    let config = aws_sdk_s3::config::Builder::from(sdk)
        .force_path_style(sdk.endpoint_url().is_some())
        .build();
    aws_sdk_s3::Client::from_conf(config)
}

#[cfg(test)]
mod tests {
    use aws_config::{BehaviorVersion, Region};

    use super::*;

    #[test]
    fn the_clients_made_from_one_configuration_share_one_http_client() {
        let sdk = SdkConfig::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new("us-east-1"))
            .build();
        assert!(sdk.http_client().is_none());
        let aws = Aws::new(&sdk);
        assert!(aws.sdk.http_client().is_some(), "the kept configuration");
        assert!(aws.iam.config().http_client().is_some());
        assert!(aws.secrets.config().http_client().is_some());
        assert!(aws.cloudtrail.config().http_client().is_some());
        assert!(aws.s3.config().http_client().is_some());
    }
}
