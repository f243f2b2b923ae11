//! What every function builds once at init: the AWS clients, the HTTP client
//! that answers CloudFormation, the tuning settings and the portal, from the
//! configuration. A missing or bad setting is an init error with a clear
//! message, never a panic later.

use std::time::Duration;

use aws_config::{BehaviorVersion, SdkConfig};

use crate::aws::Aws;
use crate::config::{FunctionConfig, PortalChoice, Settings, process_env};
use crate::error::Error;
use crate::portal::Portal;

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
    /// credentials, `AWS_ENDPOINT_URL`) and the configuration.
    pub async fn from_env() -> Result<Self, Error> {
        let config = FunctionConfig::read(&process_env())?;
        let sdk = aws_config::defaults(BehaviorVersion::latest()).load().await;
        if sdk.region().is_none() {
            return Err(Error::Config("AWS_REGION is not set".into()));
        }
        let portal = portal(config.portal, &sdk)?;
        Self::new(&sdk, config.settings, portal)
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

/// The portal of the configured mode, with the clients it needs.
pub fn portal(choice: PortalChoice, sdk: &SdkConfig) -> Result<Portal, Error> {
    Ok(match choice {
        PortalChoice::Off => Portal::Off,
        PortalChoice::Api(settings) => {
            Portal::api(settings, aws_sdk_secretsmanager::Client::new(sdk))?
        }
        PortalChoice::Handoff { topic_arn } => {
            Portal::handoff(aws_sdk_sns::Client::new(sdk), &topic_arn)
        }
    })
}
