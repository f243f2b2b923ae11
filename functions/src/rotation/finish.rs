//! finishSecret: AWSCURRENT moves to the new version (AWSPREVIOUS follows),
//! AWSPENDING is removed, and the previous key, still active, is retired
//! when the portal shows the new one working (`api`); with a hand-off, or
//! in `off` mode, it stays until the new key is seen in use, and the
//! hand-over time is kept on the secret.

use std::time::Instant;

use super::{Portalside, Target, current, hub_state, require_pending};
use crate::access_key;
use crate::deps::Deps;
use crate::error::Error;
use crate::hub_tags;
use crate::key_store::{self, AWSCURRENT, AWSPENDING, AWSPREVIOUS};
use crate::lifecycle;
use crate::names::secret_tags;
use crate::portal::{Previous, Promotion};
use crate::retirement::HandedOver;
use crate::time;

pub(super) async fn finish(
    deps: &Deps,
    t: &Target,
    token: &str,
    deadline: Instant,
) -> Result<String, Error> {
    let secrets = &deps.aws.secrets;
    let arn = &t.secret.arn;
    let was_current = t.secret.version_with(AWSCURRENT).map(str::to_string);
    let mut done = Vec::new();
    if was_current.as_deref() != Some(token) {
        // The new key must be what createSecret made before it is promoted.
        require_pending(deps, t, token).await?;
        key_store::move_stage(
            secrets,
            arn,
            AWSCURRENT,
            Some(token),
            was_current.as_deref(),
        )
        .await?;
        done.push(format!("AWSCURRENT moved to {token}"));
    }
    if t.secret
        .stages
        .get(token)
        .is_some_and(|s| s.iter().any(|x| x == AWSPENDING))
    {
        key_store::move_stage(secrets, arn, AWSPENDING, None, Some(token)).await?;
    }
    // Retire the previous key (idempotent: a retried finish gets here too).
    let now = current(deps, t).await?;
    if t.secret.tag(hub_tags::KEY_ID) != Some(now.access_key_id.as_str()) {
        let id = [(hub_tags::KEY_ID, now.access_key_id.as_str())];
        key_store::set_tags(secrets, arn, &id).await?;
    }
    if t.secret.tag(hub_tags::PENDING_KEY_ID).is_some() {
        key_store::remove_tags(secrets, arn, &[hub_tags::PENDING_KEY_ID]).await?;
    }
    let previous = key_store::read(secrets, arn, AWSPREVIOUS)
        .await?
        .filter(|k| k.belongs_to(&t.user.name) && k.access_key_id != now.access_key_id);
    if let Some(previous) = previous {
        let keys = access_key::list(&deps.aws.iam, &t.user.name).await?;
        let active = keys
            .iter()
            .any(|k| k.id == previous.access_key_id && k.active);
        if active {
            let side = Portalside::of(deps, t).await?;
            let connections = side.connections();
            let promotion = if was_current.as_deref() == Some(token) {
                Promotion::Earlier
            } else {
                Promotion::Now
            };
            let after = deps
                .portal
                .after_rotation(side.instance(t, &connections), &now, promotion, deadline)
                .await?;
            match after {
                Previous::Retire => {
                    lifecycle::retire(deps, &t.user, &previous.access_key_id).await?;
                    done.push(format!(
                        "the portal holds the new key and its test passed: the previous key {} is inactive",
                        previous.access_key_id
                    ));
                }
                Previous::AwaitHub if hub_state(t).confirms(&now.access_key_id) => {
                    lifecycle::retire(deps, &t.user, &previous.access_key_id).await?;
                    done.push(format!(
                        "the hub confirms the portal holds the new key: the previous key {} is inactive",
                        previous.access_key_id
                    ));
                }
                Previous::AwaitHub => done.push(format!(
                    "the previous key {} stays active until the hub confirms the new key (the next rotation retires it then)",
                    previous.access_key_id
                )),
                Previous::AwaitUse(note) => {
                    done.extend(note);
                    if HandedOver::of(&t.secret, &now.access_key_id).is_none() {
                        let handed = HandedOver {
                            key_id: now.access_key_id.clone(),
                            at: i64::try_from(time::now_millis() / 1000).unwrap_or(i64::MAX),
                        };
                        let value = handed.tag_value();
                        let tag = [(secret_tags::HANDED_OVER, value.as_str())];
                        key_store::set_tags(secrets, arn, &tag).await?;
                    }
                    done.push(format!(
                        "the previous key {} stays active until the new key {} is seen in use",
                        previous.access_key_id, now.access_key_id
                    ));
                }
            }
        }
    }
    Ok(if done.is_empty() {
        "already finished".into()
    } else {
        done.join("; ")
    })
}
