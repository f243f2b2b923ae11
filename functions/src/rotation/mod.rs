//! Rotate the key on a schedule: what the guide never does ("the key lives
//! forever"). A Secrets Manager rotation function for the connector's secret,
//! in four steps keyed by the ClientRequestToken, each idempotent, with zero
//! downtime in the portal (it always holds a key that works):
//!
//! - `createSecret` ([`create`]): a new key in AWSPENDING (room is made
//!   under IAM's two keys: an inactive key that is not AWSCURRENT is
//!   deleted; a key left by an earlier failed rotation is taken up again,
//!   not duplicated; the orphan of an issue cut off before the key was
//!   stored is deleted; the previous key only on evidence that nothing
//!   needs it: [`crate::retirement`]);
//! - `setSecret` ([`handover`]): it authenticates, passes the pre-flight,
//!   and the portal gets it (`api` mode);
//! - `testSecret` ([`handover`]): the pre-flight again and the portal's
//!   test; on failure the portal gets the AWSCURRENT key back before the
//!   step fails;
//! - `finishSecret` ([`finish`]): AWSCURRENT moves to it (AWSPREVIOUS
//!   follows). `api`: the previous key is deactivated once the portal
//!   holds the new one and its test passed (the next createSecret deletes
//!   it). `handoff` (a person is told to paste the new key) and `off`: the
//!   previous key stays active until the new one is seen in use.

mod create;
mod finish;
mod handover;

use std::time::Instant;

use serde_json::Value;
use tracing::info;

use crate::access_key;
use crate::deps::Deps;
use crate::error::Error;
use crate::hub_tags::HubState;
use crate::key::StoredKey;
use crate::key_store::{self, AWSCURRENT, AWSPENDING};
use crate::lifecycle::{self, Connection};
use crate::names::secret_tags;
use crate::portal::{Instance, Ownership};
use crate::text::truncate;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Step {
    Create,
    Set,
    Test,
    Finish,
}

impl Step {
    pub fn as_str(self) -> &'static str {
        match self {
            Step::Create => "createSecret",
            Step::Set => "setSecret",
            Step::Test => "testSecret",
            Step::Finish => "finishSecret",
        }
    }
}

/// A checked rotation event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Event {
    pub step: Step,
    pub secret_id: String,
    pub token: String,
}

impl Event {
    /// `{"Step", "SecretId", "ClientRequestToken"}`, every field required.
    pub fn parse(v: &Value) -> Result<Event, Error> {
        let field = |name: &str| {
            v.get(name)
                .and_then(Value::as_str)
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_string)
                .ok_or_else(|| Error::Rotation(format!("the event has no {name}")))
        };
        let step = match field("Step")?.as_str() {
            "createSecret" => Step::Create,
            "setSecret" => Step::Set,
            "testSecret" => Step::Test,
            "finishSecret" => Step::Finish,
            other => {
                return Err(Error::Rotation(format!(
                    "unknown step {:?}: one of createSecret, setSecret, testSecret, finishSecret",
                    truncate(other, 40)
                )));
            }
        };
        Ok(Event {
            step,
            secret_id: field("SecretId")?,
            token: field("ClientRequestToken")?,
        })
    }
}

/// What a rotation works on, read from the secret the connector tagged.
pub(super) type Target = Connection;

/// Runs one step. `stack_id`: the stack this function belongs to (`STACK_ID`).
pub async fn handle(
    deps: &Deps,
    stack_id: &str,
    event: &Event,
    deadline: Instant,
) -> Result<String, Error> {
    let target = check(deps, stack_id, event).await?;
    let stages = target
        .secret
        .stages
        .get(&event.token)
        .cloned()
        .unwrap_or_default();
    let has = |s: &str| stages.iter().any(|x| x == s);
    if event.step != Step::Finish && has(AWSCURRENT) {
        return Ok(format!(
            "version {} is already AWSCURRENT: nothing to do",
            event.token
        ));
    }
    if event.step != Step::Finish && !has(AWSPENDING) {
        return Err(Error::Rotation(format!(
            "version {} of {} is not AWSPENDING: start the rotation again",
            event.token, target.secret.arn
        )));
    }
    let done = match event.step {
        Step::Create => create::create(deps, &target, &event.token, deadline).await?,
        Step::Set => handover::set(deps, &target, &event.token, deadline).await?,
        Step::Test => handover::test(deps, &target, &event.token, deadline).await?,
        Step::Finish => finish::finish(deps, &target, &event.token, deadline).await?,
    };
    info!(step = event.step.as_str(), secret = %target.secret.arn, token = %event.token, done = %done, "rotation step done");
    Ok(done)
}

/// The checks of every step: nothing is changed when one fails.
async fn check(deps: &Deps, stack_id: &str, event: &Event) -> Result<Target, Error> {
    let target = lifecycle::connection(deps, stack_id, &event.secret_id, "rotates").await?;
    let secret = &target.secret;
    if !secret.rotation_enabled {
        return Err(Error::Rotation(format!(
            "rotation is not enabled on {}",
            secret.arn
        )));
    }
    if !secret.stages.contains_key(&event.token) {
        return Err(Error::Rotation(format!(
            "{} is not a version of {}",
            truncate(&event.token, 64),
            secret.arn
        )));
    }
    Ok(target)
}

/// The key in AWSCURRENT, which must be the user's.
pub(super) async fn current(deps: &Deps, t: &Target) -> Result<StoredKey, Error> {
    key_store::read(&deps.aws.secrets, &t.secret.arn, AWSCURRENT)
        .await?
        .filter(|k| k.belongs_to(&t.user.name))
        .ok_or_else(|| {
            Error::Rotation(format!(
                "AWSCURRENT of {} holds no key of {}: run the stack's Create or Update first",
                t.secret.arn, t.user
            ))
        })
}

/// The key staged AWSPENDING in version `token`, when it is a new one.
pub(super) async fn pending(
    deps: &Deps,
    t: &Target,
    token: &str,
    current: &StoredKey,
) -> Result<Option<StoredKey>, Error> {
    Ok(
        key_store::read_version(&deps.aws.secrets, &t.secret.arn, token, Some(AWSPENDING))
            .await?
            // Before createSecret, a version may hold a copy of AWSCURRENT (moto does).
            .filter(|k| k.belongs_to(&t.user.name) && k.access_key_id != current.access_key_id),
    )
}

pub(super) async fn require_pending(
    deps: &Deps,
    t: &Target,
    token: &str,
) -> Result<(StoredKey, StoredKey), Error> {
    let current = current(deps, t).await?;
    let pending = pending(deps, t, token, &current).await?.ok_or_else(|| {
        Error::Rotation(format!(
            "version {token} holds no new key: createSecret has not run for it"
        ))
    })?;
    Ok((current, pending))
}

/// The key `key_id` as some version of the secret holds it, with that version's stages.
pub(super) async fn held_by(
    deps: &Deps,
    t: &Target,
    key_id: &str,
) -> Result<Option<(StoredKey, Vec<String>)>, Error> {
    let secrets = &deps.aws.secrets;
    for (version, stages, _) in key_store::versions(secrets, &t.secret.arn).await? {
        if let Some(key) = key_store::read_version(secrets, &t.secret.arn, &version, None).await? {
            if key.access_key_id == key_id && key.belongs_to(&t.user.name) {
                return Ok(Some((key, stages)));
            }
        }
    }
    Ok(None)
}

/// What the hub wrote back on the secret (as read at the step's start).
fn hub_state(t: &Target) -> HubState {
    HubState::from_tags(t.secret.tags.iter().map(|(k, v)| (k.as_str(), v.as_str())))
}

/// What the portal side of a step works with: the connections, and the
/// keys this stack issued (the user's), which prove an instance its own.
struct Portalside {
    connections: Vec<String>,
    keys: Vec<String>,
}

impl Portalside {
    async fn of(deps: &Deps, t: &Target) -> Result<Self, Error> {
        let keys = access_key::list(&deps.aws.iam, &t.user.name).await?;
        Ok(Self {
            connections: t.connections.clone(),
            keys: keys.into_iter().map(|k| k.id).collect(),
        })
    }

    fn instance<'a>(&'a self, t: &'a Target, connections: &'a [&'a str]) -> Instance<'a> {
        Instance {
            name: &t.instance,
            previous_name: None,
            connections,
            secret_arn: &t.secret.arn,
            user_arn: &t.user.arn,
            account: &t.stack.account,
            region: &t.stack.region,
            owner: Ownership {
                keys: &self.keys,
                instance_id: t.secret.tag(secret_tags::PORTAL_INSTANCE),
                adopt: false,
            },
        }
    }

    fn connections(&self) -> Vec<&str> {
        self.connections.iter().map(String::as_str).collect()
    }
}

/// The Lambda entry point. `setup`: what init built (the clients and the
/// stack id from `STACK_ID`), or why it could not. Every failure is the
/// invocation's error, which is what Secrets Manager reads.
pub async fn handle_lambda_event(
    setup: Result<(&Deps, &str), &Error>,
    event: lambda_runtime::LambdaEvent<Value>,
) -> Result<Value, lambda_runtime::Error> {
    let (deps, stack_id) =
        setup.map_err(|e| format!("the rotation function is misconfigured: {e}"))?;
    let invocation = crate::cfn::Invocation::from_epoch_millis(
        event.context.deadline,
        deps.settings.deadline_margin,
        None,
    );
    let deadline = crate::time::sub(invocation.deadline, invocation.margin);
    let parsed = Event::parse(&event.payload)?;
    let left = deadline.saturating_duration_since(Instant::now());
    match tokio::time::timeout(left, handle(deps, stack_id, &parsed, deadline)).await {
        Ok(Ok(done)) => Ok(serde_json::json!({"step": parsed.step.as_str(), "done": done})),
        Ok(Err(e)) => {
            tracing::error!(step = parsed.step.as_str(), error = %e, "rotation step failed");
            Err(e.to_string().into())
        }
        Err(_) => Err(format!(
            "{} timed out before the Lambda deadline; Secrets Manager will try again",
            parsed.step.as_str()
        )
        .into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn events_are_checked() {
        let ok =
            Event::parse(&json!({"Step": "setSecret", "SecretId": "s", "ClientRequestToken": "t"}))
                .unwrap();
        assert_eq!(ok.step, Step::Set);
        for (bad, says) in [
            (
                json!({"Step": "dropSecret", "SecretId": "s", "ClientRequestToken": "t"}),
                "unknown step",
            ),
            (
                json!({"Step": "createSecret", "ClientRequestToken": "t"}),
                "no SecretId",
            ),
            (
                json!({"Step": "createSecret", "SecretId": "s", "ClientRequestToken": ""}),
                "no ClientRequestToken",
            ),
            (json!("createSecret"), "no Step"),
        ] {
            let err = Event::parse(&bad).unwrap_err().to_string();
            assert!(err.contains(says), "{bad}: {err}");
        }
    }
}
