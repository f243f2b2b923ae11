//! Connect the instance in Defender for Cloud Apps: the guide's last steps
//! ("name the instance, paste the keys, Test API"). The mode is a type,
//! [`Portal`], and its methods do the work of each mode, so no caller asks
//! which mode it is:
//! - `Api`: the [`PortalClient`] connects the instance (creates it, or
//!   updates its credentials) and runs the portal's test;
//! - `Handoff`: no portal write; a notification tells a person what to do
//!   ([`handoff`]);
//! - `Hub`: a member account of an organization whose hub connects it
//!   ([`hub`]): nothing is written to the portal from here, the hub's
//!   verdict comes back on the secret's tags;
//! - `Off`: nothing is handed over.
//!
//! A key reaches this seam only after it authenticates and passed the
//! pre-flight.

pub mod auth;
pub mod client;
pub mod connect;
pub mod handoff;
pub mod hub;
pub mod outcome;
pub mod pace;
pub mod routes;
pub mod transport;
pub mod verification;
pub mod wire;

use std::future::Future;
use std::time::Instant;

use tracing::info;

pub use client::{AWS_APP_ID, Activity, ApiSettings, PortalClient, RemoteInstance};
pub use connect::{Connected, Desired, Ownership};
pub use handoff::Handoff;
pub use hub::HubLink;
pub use outcome::{Instance, NotRead, PortalStatus, Previous, Promotion, Release, Since, Tested};
pub use pace::Budget;
pub use routes::{Route, Routes};
pub use transport::Timings;
pub use verification::{TestOutcome, TestState};

use crate::error::Error;
use crate::key::StoredKey;
use crate::notify::Topic;

/// The portal connection chosen by configuration (`PORTAL_MODE`).
#[derive(Debug)]
pub enum Portal {
    /// Hand nothing over; the key stays in the secret.
    Off,
    /// Connect and test through the portal's API.
    Api(Box<PortalClient>),
    /// Notify a person (SNS) instead of writing to the portal.
    Handoff(Handoff),
    /// The organization hub connects this account.
    Hub(HubLink),
}

/// What follows a connect in `api` mode.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Then {
    /// Run the portal's test and wait for it (within the deadline).
    Test,
    /// Only connect: the test comes later (a rotation's testSecret).
    ConnectOnly,
}

impl Portal {
    pub fn api(
        settings: ApiSettings,
        secrets: aws_sdk_secretsmanager::Client,
    ) -> Result<Self, Error> {
        Ok(Portal::Api(Box::new(PortalClient::new(settings, secrets)?)))
    }

    pub fn handoff(topic: Topic) -> Self {
        Portal::Handoff(Handoff::new(topic))
    }

    pub fn hub(link: HubLink) -> Self {
        Portal::Hub(link)
    }

    /// True when keys are handed to someone (the portal, the hub, or a
    /// person): a key must then pass the pre-flight first.
    pub fn hands_keys_over(&self) -> bool {
        !matches!(self, Portal::Off)
    }

    /// True when the previous key stays active after a rotation until the
    /// new one is seen in use: a person puts it in place (hand-off), or
    /// nobody is told (`off`).
    pub fn keeps_previous_key(&self) -> bool {
        matches!(self, Portal::Handoff(_) | Portal::Off)
    }

    /// Create and Update: hands the proven `key` over for `instance`. `api`
    /// connects (compared with what the portal holds) and runs the portal's
    /// test; an instance by that name that is not proven this stack's is
    /// refused, or taken over with `instance.owner.adopt` once `adopting`
    /// recorded it. Hand-off notifies when something `Changed`. `checked`:
    /// the pre-flight's summary.
    pub async fn connect(
        &self,
        instance: Instance<'_>,
        key: &StoredKey,
        since: Since,
        checked: &str,
        adopting: impl AsyncFnOnce(&RemoteInstance) -> Result<(), Error>,
        deadline: Instant,
    ) -> Result<PortalStatus, Error> {
        match self {
            Portal::Api(api) => hand_over(api, instance, key, Then::Test, adopting, deadline).await,
            Portal::Handoff(_) if since == Since::Unchanged => Ok(PortalStatus::new(
                "handed-off",
                "",
                "not-run (nothing changed since the last hand-off)",
            )),
            Portal::Handoff(handoff) => {
                let id = handoff.connect(&notice(instance, key, checked)).await?;
                Ok(PortalStatus::new(
                    "handed-off",
                    "",
                    &format!("not-run (hand-off notification {id})"),
                ))
            }
            Portal::Hub(link) => {
                if since == Since::Changed {
                    link.nudge("the connector changed").await;
                }
                Ok(PortalStatus::new(
                    "queued",
                    "",
                    "not-run (the organization hub connects and tests it)",
                ))
            }
            Portal::Off => Ok(PortalStatus::new(
                "not-connected (PORTAL_MODE=off)",
                "",
                "not-run",
            )),
        }
    }

    /// A rotation's setSecret: `api` gives the instance the pending key
    /// (its test comes in testSecret); the other modes hand nothing over
    /// before the key is current (`None`).
    pub async fn stage(
        &self,
        instance: Instance<'_>,
        pending: &StoredKey,
        deadline: Instant,
    ) -> Result<Option<PortalStatus>, Error> {
        match self {
            Portal::Api(api) => {
                hand_over(api, instance, pending, Then::ConnectOnly, refuse, deadline)
                    .await
                    .map(Some)
            }
            Portal::Hub(link) => {
                link.nudge("a rotation's pending key").await;
                Ok(None)
            }
            Portal::Handoff(_) | Portal::Off => Ok(None),
        }
    }

    /// A rotation's testSecret: `proven` is the pre-flight of the pending
    /// key. `api`: the instance holds the pending key and the portal's test
    /// of it passes; on any failure the portal gets `current` back before
    /// the error is returned. Other modes: the pre-flight is the test.
    pub async fn test_pending(
        &self,
        instance: Instance<'_>,
        pending: &StoredKey,
        current: &StoredKey,
        proven: Result<String, Error>,
        deadline: Instant,
    ) -> Result<Tested, Error> {
        let api = match self {
            Portal::Api(api) => api,
            Portal::Hub(link) => {
                let checked = proven?;
                link.nudge("a rotation's pending key to test").await;
                return Ok(Tested::AwaitHub(checked));
            }
            Portal::Handoff(_) | Portal::Off => return proven.map(Tested::Preflight),
        };
        let tested = async {
            proven?;
            let status = hand_over(api, instance, pending, Then::Test, refuse, deadline).await?;
            if status.status != "connected" {
                return Err(Error::Rotation(format!(
                    "the portal's test of the pending key did not finish in time ({}); the rotation will be tried again",
                    status.test
                )));
            }
            Ok(status)
        }
        .await;
        let failed = match tested {
            Ok(status) => return Ok(Tested::Portal(status)),
            Err(e) => e,
        };
        // Never leave the portal with a key that failed: give it the current one back.
        match hand_over(api, instance, current, Then::ConnectOnly, refuse, deadline).await {
            Ok(_) => {
                info!(access_key_id = %current.access_key_id, "gave the portal the AWSCURRENT key back");
                Err(failed)
            }
            Err(restore) => Err(Error::Rotation(format!(
                "{failed}; and giving the portal the AWSCURRENT key back failed too: {restore}"
            ))),
        }
    }

    /// A rotation's finishSecret, once AWSCURRENT holds `now`: what becomes
    /// of the previous key, still active. `api`: it is retired only once the
    /// instance holds `now` and its test passed (handed over again when
    /// not: a stack Update may have come between testSecret and
    /// finishSecret); otherwise the step fails and nothing is retired.
    /// Hand-off: a person is told to paste the new key (once, when the
    /// promotion happened `Now`); hand-off and `off` keep the previous key
    /// until the new one is seen in use.
    pub async fn after_rotation(
        &self,
        instance: Instance<'_>,
        now: &StoredKey,
        promotion: Promotion,
        deadline: Instant,
    ) -> Result<Previous, Error> {
        match self {
            Portal::Api(api) => {
                let status = hand_over(api, instance, now, Then::Test, refuse, deadline).await?;
                if status.status != "connected" {
                    return Err(Error::Rotation(format!(
                        "the portal's instance does not show the new key {} working yet ({}): the previous key stays active; finishSecret is tried again",
                        now.access_key_id, status.test
                    )));
                }
                Ok(Previous::Retire)
            }
            Portal::Handoff(handoff) if promotion == Promotion::Now => {
                handoff.connect(&notice(instance, now, "rotated")).await?;
                Ok(Previous::AwaitUse(Some(
                    "hand-off sent; the previous key stays active until the new one is seen in use"
                        .into(),
                )))
            }
            Portal::Handoff(_) | Portal::Off => Ok(Previous::AwaitUse(None)),
            Portal::Hub(_) => Ok(Previous::AwaitHub),
        }
    }

    /// On Delete: stops the portal from using a key that is going away.
    /// `own_keys` gives the key ids of the user when it is this physical
    /// id's (`None`: it is not, and nothing is released). In `api` mode the
    /// instance is disabled only while it holds one of them (never when a
    /// replacement connected it with its own key); hand-off asks a person.
    /// Returns what was done.
    pub async fn release(
        &self,
        release: Release<'_>,
        own_keys: impl Future<Output = Result<Option<Vec<String>>, Error>>,
        deadline: Instant,
    ) -> Result<String, Error> {
        match self {
            Portal::Off => return Ok("nothing (PORTAL_MODE=off)".into()),
            Portal::Hub(_) => {
                return Ok(
                    "nothing here: the hub notices the account is gone and disables its instance"
                        .into(),
                );
            }
            Portal::Api(_) | Portal::Handoff(_) => {}
        }
        let Some(keys) = own_keys.await? else {
            return Ok("nothing: the user is not this physical id's".into());
        };
        match self {
            Portal::Api(api) => {
                let Some(remote) = api.find(release.name, deadline).await? else {
                    return Ok("no portal instance by that name".into());
                };
                if release.adopted == Some(remote.id.as_str()) {
                    info!(instance = %remote.id, name = release.name, "the portal instance was taken over, not made, by this stack: never disabled");
                    return Ok(format!(
                        "instance {} left enabled: this stack took it over (AdoptExistingInstance) and never disables it; it holds a key that is now deleted: connect it again in the portal",
                        remote.id
                    ));
                }
                let ours = remote
                    .access_key_id
                    .as_ref()
                    .is_some_and(|k| keys.contains(k));
                if !ours {
                    info!(instance = %remote.id, name = release.name, "the portal instance holds another key: left alone");
                    return Ok(format!(
                        "instance {} left alone: it holds another key",
                        remote.id
                    ));
                }
                api.disable(&remote.id, deadline).await?;
                info!(instance = %remote.id, name = release.name, "disabled the portal instance");
                Ok(format!("instance {} disabled", remote.id))
            }
            Portal::Handoff(handoff) => {
                let id = handoff
                    .disconnect(release.account, release.name, release.user_arn)
                    .await?;
                Ok(format!("hand-off notification {id}"))
            }
            Portal::Off | Portal::Hub(_) => Ok("nothing (PORTAL_MODE=off)".into()),
        }
    }

    /// Runs `read` with the API client (`api` mode: the health check's
    /// reads); in the other modes, where the portal's state is to be read
    /// instead, or why it is not.
    pub async fn read<T>(&self, read: impl AsyncFnOnce(&PortalClient) -> T) -> Result<T, NotRead> {
        match self {
            Portal::Api(api) => Ok(read(api).await),
            Portal::Hub(_) => Err(NotRead::FromHub),
            Portal::Handoff(_) => Err(NotRead::Skip(
                "PORTAL_MODE=handoff: the portal is not read; a person checks the instance there",
            )),
            Portal::Off => Err(NotRead::Skip(
                "PORTAL_MODE=off: nothing is handed to the portal",
            )),
        }
    }
}

/// The hand-off message's facts.
fn notice<'a>(instance: Instance<'a>, key: &'a StoredKey, checked: &'a str) -> handoff::Notice<'a> {
    handoff::Notice {
        account: instance.account,
        region: instance.region,
        instance: instance.name,
        connections: instance.connections,
        user_arn: instance.user_arn,
        secret_arn: instance.secret_arn,
        access_key_id: &key.access_key_id,
        checked,
    }
}

/// For a hand-over that never takes an instance over (a rotation's).
async fn refuse(instance: &RemoteInstance) -> Result<(), Error> {
    Err(Error::NotOurs(format!(
        "the portal instance {} is not this stack's",
        instance.id
    )))
}

/// `api` mode: connects `instance` with `key`, then per `then` runs the
/// portal's test.
async fn hand_over(
    api: &PortalClient,
    instance: Instance<'_>,
    key: &StoredKey,
    then: Then,
    adopting: impl AsyncFnOnce(&RemoteInstance) -> Result<(), Error>,
    deadline: Instant,
) -> Result<PortalStatus, Error> {
    let desired = Desired {
        name: instance.name,
        previous_name: instance.previous_name,
        connections: instance.connections,
        key,
        owner: instance.owner,
    };
    let (remote, connected) = api.connect(desired, adopting, deadline).await?;
    if connected == Connected::Unchanged {
        info!(instance = %remote.id, "the portal instance already holds this key and works");
        return Ok(PortalStatus::new(
            &remote.status,
            &remote.id,
            "not-run (already connected with this key)",
        ));
    }
    if then == Then::ConnectOnly {
        return Ok(PortalStatus::new(
            &remote.status,
            &remote.id,
            "not-run (connected only)",
        ));
    }
    let outcome = api.run_test(&remote.id, deadline).await?;
    match outcome.state {
        TestState::Succeeded => Ok(PortalStatus::new(
            "connected",
            &remote.id,
            &format!("succeeded ({})", outcome.test_id),
        )),
        TestState::Running => Ok(PortalStatus::new(
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
