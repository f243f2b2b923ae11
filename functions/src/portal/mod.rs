//! Connect the instance in Defender for Cloud Apps: the guide's last steps
//! ("name the instance, paste the keys, Test API"), by `PORTAL_MODE`:
//! - `api`: the [`client::PortalClient`] connects the instance (creates it,
//!   or updates its credentials) and runs the portal's test;
//! - `handoff`: no portal write; a notification tells a person what to do
//!   ([`crate::handoff`]);
//! - `off`: nothing is handed over (the default).
//!
//! A key reaches this seam only after it authenticates and passed the
//! pre-flight ([`crate::preflight`]).

pub mod client;
pub mod routes;

use std::time::Instant;

use aws_config::SdkConfig;
use tracing::info;

pub use client::{Activity, Connected, Desired, PortalClient, PortalConfig, TestState};

use crate::error::Error;
use crate::handoff::{Handoff, Notice};
use crate::key_store::StoredKey;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PortalMode {
    /// Hand nothing over; the key stays in the secret.
    Off,
    /// Connect and test through the portal's API.
    Api,
    /// Notify a person (SNS) instead of writing to the portal.
    Handoff,
}

/// The portal connection chosen by configuration.
#[derive(Debug)]
pub struct Portal {
    mode: PortalMode,
    api: Option<PortalClient>,
    handoff: Option<Handoff>,
}

/// What the portal needs to know about the instance (never the key itself).
#[derive(Clone, Copy, Debug)]
pub struct Instance<'a> {
    pub name: &'a str,
    /// The name before an Update that renames.
    pub previous_name: Option<&'a str>,
    pub connections: &'a [&'a str],
    pub secret_arn: &'a str,
    pub user_arn: &'a str,
    pub account: &'a str,
    pub region: &'a str,
}

/// What the portal side says after a hand-over (values of `Data`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PortalStatus {
    /// `connected`, `pending`, `handed-off`, `not-connected`.
    pub status: String,
    /// The instance's id in the portal (empty when not known).
    pub instance: String,
    /// The portal test: `succeeded`, `running`, `not-run`.
    pub test: String,
}

impl Portal {
    pub fn off() -> Self {
        Self {
            mode: PortalMode::Off,
            api: None,
            handoff: None,
        }
    }

    pub fn api(config: PortalConfig, sdk: &SdkConfig) -> Result<Self, Error> {
        let secrets = aws_sdk_secretsmanager::Client::new(sdk);
        Ok(Self {
            mode: PortalMode::Api,
            api: Some(PortalClient::new(config, secrets)?),
            handoff: None,
        })
    }

    pub fn handoff(topic_arn: &str, sdk: &SdkConfig) -> Self {
        Self {
            mode: PortalMode::Handoff,
            api: None,
            handoff: Some(Handoff::new(aws_sdk_sns::Client::new(sdk), topic_arn)),
        }
    }

    /// `PORTAL_MODE`: `off` (default), `api` (needs `PORTAL_URL` and
    /// `PORTAL_CREDENTIALS_SECRET_ARN`), `handoff` (needs `NOTIFY_TOPIC_ARN`).
    pub fn from_env(sdk: &SdkConfig) -> Result<Self, Error> {
        Self::from_lookup(&|name: &str| std::env::var(name).ok(), sdk)
    }

    pub fn from_lookup(
        lookup: &impl Fn(&str) -> Option<String>,
        sdk: &SdkConfig,
    ) -> Result<Self, Error> {
        let mode = lookup("PORTAL_MODE").unwrap_or_default();
        match mode.trim().to_ascii_lowercase().as_str() {
            "" | "off" => Ok(Self::off()),
            "api" => Self::api(PortalConfig::from_lookup(lookup)?, sdk),
            "handoff" => {
                let topic = lookup("NOTIFY_TOPIC_ARN")
                    .map(|t| t.trim().to_string())
                    .filter(|t| t.starts_with("arn:"))
                    .ok_or_else(|| {
                        Error::Config(
                            "PORTAL_MODE=handoff needs NOTIFY_TOPIC_ARN (an SNS topic ARN)".into(),
                        )
                    })?;
                Ok(Self::handoff(&topic, sdk))
            }
            other => Err(Error::Config(format!(
                "PORTAL_MODE={other:?} is not one of api, handoff, off"
            ))),
        }
    }

    pub fn mode(&self) -> PortalMode {
        self.mode
    }

    /// The API client (`api` mode only): for reads such as the health check's.
    pub fn client(&self) -> Option<&PortalClient> {
        self.api.as_ref()
    }

    /// Hands a proven key to the portal for `instance`. `changed`: the key,
    /// the name or the connections differ from what was handed over before
    /// (hand-off notifies only then; `api` mode compares with the portal).
    /// `checked`: the pre-flight's summary. `test`: run the portal's test
    /// after a change (`api` mode; without it the instance is only connected).
    pub async fn hand_over(
        &self,
        instance: Instance<'_>,
        key: &StoredKey,
        changed: bool,
        checked: &str,
        test: bool,
        deadline: Instant,
    ) -> Result<PortalStatus, Error> {
        let status = |status: &str, instance: &str, test: &str| PortalStatus {
            status: status.into(),
            instance: instance.into(),
            test: test.into(),
        };
        match (self.mode, &self.api, &self.handoff) {
            (PortalMode::Api, Some(api), _) => {
                let desired = Desired {
                    name: instance.name,
                    previous_name: instance.previous_name,
                    connections: instance.connections,
                    key,
                };
                let (remote, connected) = api.connect(desired, deadline).await?;
                if connected == Connected::Unchanged {
                    info!(instance = %remote.id, "the portal instance already holds this key and works");
                    return Ok(status(
                        &remote.status,
                        &remote.id,
                        "not-run (already connected with this key)",
                    ));
                }
                if !test {
                    return Ok(status(
                        &remote.status,
                        &remote.id,
                        "not-run (connected only)",
                    ));
                }
                let outcome = api.run_test(&remote.id, deadline).await?;
                match outcome.state {
                    TestState::Succeeded => Ok(status(
                        "connected",
                        &remote.id,
                        &format!("succeeded ({})", outcome.test_id),
                    )),
                    TestState::Running => Ok(status(
                        "pending",
                        &remote.id,
                        &format!(
                            "running ({}): test still running at the deadline; see the instance's status in the portal",
                            outcome.test_id
                        ),
                    )),
                    TestState::Failed(reason) => Err(Error::Portal {
                        operation: "test",
                        message: format!(
                            "the portal's test of instance {:?} ({}) failed: {reason}",
                            instance.name, remote.id
                        ),
                    }),
                }
            }
            (PortalMode::Handoff, _, Some(handoff)) => {
                if !changed {
                    return Ok(status(
                        "handed-off",
                        "",
                        "not-run (nothing changed since the last hand-off)",
                    ));
                }
                let notice = Notice {
                    account: instance.account,
                    region: instance.region,
                    instance: instance.name,
                    connections: instance.connections,
                    user_arn: instance.user_arn,
                    secret_arn: instance.secret_arn,
                    access_key_id: &key.access_key_id,
                    checked,
                };
                let id = handoff.connect(&notice).await?;
                Ok(status(
                    "handed-off",
                    "",
                    &format!("not-run (hand-off notification {id})"),
                ))
            }
            _ => Ok(status("not-connected (PORTAL_MODE=off)", "", "not-run")),
        }
    }

    /// On Delete: stops the portal from using a key that is going away.
    /// In `api` mode the instance `name` is disabled only while it holds one
    /// of `user_keys` (never when a replacement connected it with its own
    /// key); `handoff` asks a person. Returns what was done.
    pub async fn release(
        &self,
        name: &str,
        user_arn: &str,
        account: &str,
        user_keys: &[String],
        deadline: Instant,
    ) -> Result<String, Error> {
        match (self.mode, &self.api, &self.handoff) {
            (PortalMode::Api, Some(api), _) => {
                let Some(remote) = api.find(name, deadline).await? else {
                    return Ok("no portal instance by that name".into());
                };
                let ours = remote
                    .access_key_id
                    .as_ref()
                    .is_some_and(|k| user_keys.contains(k));
                if !ours {
                    info!(instance = %remote.id, name, "the portal instance holds another key: left alone");
                    return Ok(format!(
                        "instance {} left alone: it holds another key",
                        remote.id
                    ));
                }
                api.disable(&remote.id, deadline).await?;
                info!(instance = %remote.id, name, "disabled the portal instance");
                Ok(format!("instance {} disabled", remote.id))
            }
            (PortalMode::Handoff, _, Some(handoff)) => {
                let id = handoff.disconnect(account, name, user_arn).await?;
                Ok(format!("hand-off notification {id}"))
            }
            _ => Ok("nothing (PORTAL_MODE=off)".into()),
        }
    }
}
