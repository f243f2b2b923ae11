//! What every function builds once at init: the AWS clients, the HTTP client
//! that answers CloudFormation, the tuning settings and the portal. A missing
//! or bad setting is an init error with a clear message, never a panic later.

use std::time::Duration;

use aws_config::{BehaviorVersion, SdkConfig};

use crate::error::Error;
use crate::portal::Portal;

/// Tuning, each with a default and an environment variable to override it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Settings {
    /// `CFN_DEADLINE_MARGIN_MS`: how long before the Lambda deadline the
    /// handler is cut off so that FAILED can still be delivered. Default 10 s.
    pub deadline_margin: Duration,
    /// `KEY_READY_TIMEOUT_MS`: how long a new access key may take to
    /// authenticate (real AWS: seconds). Bounded by the deadline too. Default 120 s.
    pub key_ready_timeout: Duration,
    /// `KEY_READY_POLL_MS`: first pause between two checks of a new key;
    /// it grows by half each time. Default 250 ms.
    pub key_ready_first_poll: Duration,
    /// `KEY_READY_MAX_POLL_MS`: longest pause between two checks. Default 2 s.
    pub key_ready_max_poll: Duration,
    /// `PREFLIGHT_SETTLE_MS`: how long a pre-flight refusal of a new key is
    /// tried again (IAM propagates a new policy in seconds). Default 20 s.
    pub preflight_settle: Duration,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            deadline_margin: Duration::from_secs(10),
            key_ready_timeout: Duration::from_secs(120),
            key_ready_first_poll: Duration::from_millis(250),
            key_ready_max_poll: Duration::from_secs(2),
            preflight_settle: Duration::from_secs(20),
        }
    }
}

impl Settings {
    pub fn from_env() -> Result<Self, Error> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Reads the settings through `lookup` (the environment, or a map in tests).
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, Error> {
        let d = Self::default();
        let millis = |name: &str, default: Duration| millis(&lookup, name, default);
        let s = Self {
            deadline_margin: millis("CFN_DEADLINE_MARGIN_MS", d.deadline_margin)?,
            key_ready_timeout: millis("KEY_READY_TIMEOUT_MS", d.key_ready_timeout)?,
            key_ready_first_poll: millis("KEY_READY_POLL_MS", d.key_ready_first_poll)?,
            key_ready_max_poll: millis("KEY_READY_MAX_POLL_MS", d.key_ready_max_poll)?,
            preflight_settle: millis("PREFLIGHT_SETTLE_MS", d.preflight_settle)?,
        };
        if s.key_ready_first_poll.is_zero() || s.key_ready_max_poll < s.key_ready_first_poll {
            return Err(Error::Config(
                "KEY_READY_POLL_MS must be > 0 and <= KEY_READY_MAX_POLL_MS".into(),
            ));
        }
        Ok(s)
    }
}

/// The duration in milliseconds that `lookup(name)` holds, or `default` when unset.
pub fn millis(
    lookup: &impl Fn(&str) -> Option<String>,
    name: &str,
    default: Duration,
) -> Result<Duration, Error> {
    match lookup(name) {
        None => Ok(default),
        Some(v) if v.trim().is_empty() => Ok(default),
        Some(v) => v
            .trim()
            .parse::<u64>()
            .map(Duration::from_millis)
            .map_err(|_| Error::Config(format!("{name}={v:?} is not a number of milliseconds"))),
    }
}

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
        // Emulators (AWS_ENDPOINT_URL) serve S3 on one host: path-style there.
        let s3 = aws_sdk_s3::config::Builder::from(sdk)
            .force_path_style(sdk.endpoint_url().is_some())
            .build();
        Self {
            sdk: sdk.clone(),
            iam: aws_sdk_iam::Client::new(sdk),
            secrets: aws_sdk_secretsmanager::Client::new(sdk),
            cloudtrail: aws_sdk_cloudtrail::Client::new(sdk),
            s3: aws_sdk_s3::Client::from_conf(s3),
        }
    }

    /// The region the function runs in (where a trail is created).
    pub fn region(&self) -> Option<&str> {
        self.sdk.region().map(|r| r.as_ref())
    }
}

/// Everything a handler needs, built once per cold start.
#[derive(Debug)]
pub struct Deps {
    pub aws: Aws,
    pub http: reqwest::Client,
    pub settings: Settings,
    pub portal: Portal,
}

impl Deps {
    /// From the environment: the SDK's own variables (`AWS_REGION`,
    /// credentials, `AWS_ENDPOINT_URL`), the settings and the portal's
    /// (`PORTAL_MODE` and what the mode needs).
    pub async fn from_env() -> Result<Self, Error> {
        let settings = Settings::from_env()?;
        let sdk = aws_config::defaults(BehaviorVersion::latest()).load().await;
        if sdk.region().is_none() {
            return Err(Error::Config("AWS_REGION is not set".into()));
        }
        let portal = Portal::from_env(&sdk)?;
        Self::new(&sdk, settings, portal)
    }

    pub fn new(sdk: &SdkConfig, settings: Settings, portal: Portal) -> Result<Self, Error> {
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(5))
            .build()
            .map_err(|e| Error::Config(format!("HTTP client: {e}")))?;
        Ok(Self {
            aws: Aws::new(sdk),
            http,
            settings,
            portal,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    #[test]
    fn settings_defaults_and_overrides() {
        let none = Settings::from_lookup(|_| None).unwrap();
        assert_eq!(none, Settings::default());
        let env: HashMap<&str, &str> = [
            ("CFN_DEADLINE_MARGIN_MS", "1500"),
            ("KEY_READY_TIMEOUT_MS", " 30000 "),
        ]
        .into();
        let s = Settings::from_lookup(|k| env.get(k).map(|v| v.to_string())).unwrap();
        assert_eq!(s.deadline_margin, Duration::from_millis(1500));
        assert_eq!(s.key_ready_timeout, Duration::from_secs(30));
        let err = Settings::from_lookup(|k| (k == "KEY_READY_POLL_MS").then(|| "soon".into()))
            .unwrap_err()
            .to_string();
        assert!(err.contains("KEY_READY_POLL_MS"), "{err}");
    }
}
