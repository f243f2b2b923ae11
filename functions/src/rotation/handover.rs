//! setSecret and testSecret: the pending key proven (it authenticates and
//! passes the pre-flight), given to the portal's instance (`api`), then
//! tested there; a failed test gives the portal the AWSCURRENT key back.

use std::time::Instant;

use super::{Portalside, Target, require_pending};
use crate::deps::Deps;
use crate::error::Error;
use crate::lifecycle;
use crate::portal::Tested;

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
    })
}
