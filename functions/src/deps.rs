//! What every function builds once at init: the AWS clients, the HTTP client
//! that answers CloudFormation, the tuning settings and the portal, from the
//! configuration. A missing or bad setting is an init error with a clear
//! message, never a panic later.

use std::time::Duration;

use aws_config::{BehaviorVersion, SdkConfig};

use crate::aws::Aws;
use crate::config::{FunctionConfig, PortalChoice, Settings, process_env};
use crate::error::Error;
use crate::notify::Topic;
use crate::portal::{HubLink, Portal};

/// Everything a handler needs, built once per cold start.
#[derive(Debug)]
pub struct Deps {
    pub aws: Aws,
    pub http: reqwest::Client,
    pub settings: Settings,
    pub portal: Portal,
    /// Where people are told what the functions could not do themselves.
    pub notify: Option<Topic>,
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
        let notify = config.notify_topic.as_deref().map(|t| topic(&sdk, t));
        let portal = portal(config.portal, &sdk)?;
        Ok(Self {
            notify,
            ..Self::new(&sdk, config.settings, portal)?
        })
    }

    /// With no topic to tell people through (see [`Deps::notify`]).
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
            notify: None,
        })
    }

    /// Tells people `message` through the topic, when there is one; a
    /// failure to do so is logged, never raised (telling is best effort).
    pub async fn tell(&self, subject: &str, message: &str) {
        let Some(topic) = &self.notify else {
            tracing::warn!(subject, "no NOTIFY_TOPIC_ARN: nobody was told");
            return;
        };
        if let Err(error) = topic.publish(subject, message).await {
            tracing::warn!(%error, subject, "could not tell the topic");
        }
    }
}

/// The topic `arn`, published to with the function's clients.
pub fn topic(sdk: &SdkConfig, arn: &str) -> Topic {
    Topic::new(aws_sdk_sns::Client::new(sdk), arn)
}

/// The portal of the configured mode, with the clients it needs.
pub fn portal(choice: PortalChoice, sdk: &SdkConfig) -> Result<Portal, Error> {
    Ok(match choice {
        PortalChoice::Off => Portal::Off,
        PortalChoice::Api(settings) => {
            Portal::api(settings, aws_sdk_secretsmanager::Client::new(sdk))?
        }
        PortalChoice::Handoff { topic_arn } => Portal::handoff(topic(sdk, &topic_arn)),
        PortalChoice::Hub { event_bus } => Portal::hub(HubLink::new(
            aws_sdk_eventbridge::Client::new(sdk),
            event_bus.as_deref(),
        )),
    })
}
