//! setSecret and testSecret: the pending key proven (it authenticates and
//! passes the pre-flight), given to the portal's instance (`api`), then
//! tested there; a failed test gives the portal the AWSCURRENT key back.

use std::time::{Duration, Instant};

use super::{Portalside, Target, require_pending};
use crate::backoff::Backoff;
use crate::deps::Deps;
use crate::error::Error;
use crate::hub_tags::HubState;
use crate::key::StoredKey;
use crate::key_store;
use crate::lifecycle;
use crate::portal::Tested;
use crate::time;

pub(super) async fn set(
    deps: &Deps,
    t: &Target,
    token: &str,
    deadline: Instant,
) -> Result<String, Error> {
    let (_, pending) = require_pending(deps, t, token).await?;
    let checked = lifecycle::prove(deps, &pending, &t.user, &t.stack, deadline).await?;
    let side = Portalside::of(deps, t).await?;
    let connections = side.connections();
    let staged = deps
        .portal
        .stage(side.instance(t, &connections), &pending, deadline)
        .await?;
    Ok(match staged {
        Some(status) => format!(
            "the portal instance {} holds the pending key {}",
            status.instance, pending.access_key_id
        ),
        None => format!(
            "the pending key {} is ready ({checked})",
            pending.access_key_id
        ),
    })
}

pub(super) async fn test(
    deps: &Deps,
    t: &Target,
    token: &str,
    deadline: Instant,
) -> Result<String, Error> {
    let (current, pending) = require_pending(deps, t, token).await?;
    let proven = lifecycle::prove(deps, &pending, &t.user, &t.stack, deadline).await;
    let side = Portalside::of(deps, t).await?;
    let connections = side.connections();
    let tested = deps
        .portal
        .test_pending(
            side.instance(t, &connections),
            &pending,
            &current,
            proven,
            deadline,
        )
        .await?;
    Ok(match tested {
        Tested::Portal(status) => format!(
            "the portal's test of the pending key {} {}",
            pending.access_key_id, status.test
        ),
        Tested::Preflight(checked) => format!(
            "the pending key {} passed ({checked})",
            pending.access_key_id
        ),
        Tested::AwaitHub(checked) => await_hub(deps, t, &pending, &checked, deadline).await?,
    })
}

/// Hub mode: testSecret passes only once the hub has handed the pending key
/// to the portal and the portal's test of it passed, as the hub writes back
/// on the secret; read until the step's deadline, then the step fails and
/// the current key stays (Secrets Manager tries the rotation again later).
async fn await_hub(
    deps: &Deps,
    t: &Target,
    pending: &StoredKey,
    checked: &str,
    deadline: Instant,
) -> Result<String, Error> {
    let mut pauses = Backoff::new(Duration::from_secs(2), Duration::from_secs(15));
    loop {
        let secret = key_store::describe(&deps.aws.secrets, &t.secret.arn).await?;
        let hub = HubState::from_tags(secret.tags.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        if hub.confirms(&pending.access_key_id) {
            return Ok(format!(
                "the hub handed the pending key {} to the portal and its test passed ({checked})",
                pending.access_key_id
            ));
        }
        let pause = pauses.next_pause();
        if time::reaches(pause, deadline) {
            let status = hub.status.map_or("no verdict yet", |s| s.as_str());
            let detail = hub.detail.map_or(String::new(), |d| format!(": {d}"));
            return Err(Error::Rotation(format!(
                "the hub has not confirmed the pending key {} before the deadline (it reports {status} for the key {}{detail}); the current key stays, and the rotation is tried again",
                pending.access_key_id,
                hub.key.as_deref().unwrap_or("none")
            )));
        }
        tokio::time::sleep(pause).await;
    }
}
