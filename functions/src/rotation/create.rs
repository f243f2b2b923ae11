//! createSecret: a new key in AWSPENDING, with room made under IAM's limit
//! of two keys. Each other key of the user is accounted for before anything
//! is deleted:
//! - inactive and not AWSCURRENT: the previous key, retired at the last
//!   finish: deleted;
//! - active, held by a version of an earlier failed rotation: taken up
//!   again (the portal may hold it), not duplicated;
//! - active, AWSPREVIOUS: deleted only on evidence that nothing needs it
//!   any more (the portal holds the new key, or the new key is seen in use
//!   since the hand-over); otherwise the rotation is refused, nothing
//!   changes, and people are reminded through the topic;
//! - active, held by no version, created right after this stack marked an
//!   issue of its own: the orphan of a step cut off between CreateAccessKey
//!   and PutSecretValue: deleted;
//! - any other active key: refused ("two active keys"), never deleted.

use std::time::Instant;

use super::{Portalside, Target, current, held_by, hub_state, pending};
use crate::access_key::{self, KeyInfo};
use crate::deps::Deps;
use crate::error::Error;
use crate::hub_tags;
use crate::key::StoredKey;
use crate::key_store::{self, AWSCURRENT, AWSPENDING, AWSPREVIOUS};
use crate::lifecycle;
use crate::portal::{Previous, Promotion};
use crate::retirement::{Evidence, HandedOver, Uses, judge};

pub(super) async fn create(
    deps: &Deps,
    t: &Target,
    token: &str,
    deadline: Instant,
) -> Result<String, Error> {
    let aws = &deps.aws;
    let current = current(deps, t).await?;
    let keys = access_key::list(&aws.iam, &t.user.name).await?;
    if let Some(k) = pending(deps, t, token, &current).await? {
        if keys.iter().any(|m| m.id == k.access_key_id) {
            return Ok(format!(
                "the pending key {} was already created",
                k.access_key_id
            ));
        }
    }
    let others: Vec<&KeyInfo> = keys
        .iter()
        .filter(|m| m.id != current.access_key_id)
        .collect();
    let mut reuse = None;
    let mut done = Vec::new();
    for other in &others {
        if !other.active {
            access_key::delete(&aws.iam, &t.user.name, &other.id).await?;
            continue;
        }
        match held_by(deps, t, &other.id).await? {
            Some((key, stages)) if !stages.iter().any(|s| s == AWSPREVIOUS) => reuse = Some(key),
            Some(_) => {
                let why = previous_may_go(deps, t, &current, &other.id, deadline).await?;
                access_key::delete(&aws.iam, &t.user.name, &other.id).await?;
                done.push(format!("deleted the previous key {}: {why}", other.id));
            }
            None if lifecycle::is_own_orphan(&t.secret, other) => {
                access_key::delete(&aws.iam, &t.user.name, &other.id).await?;
                done.push(format!(
                    "deleted the key {}, issued by this stack and never stored (a step cut off)",
                    other.id
                ));
            }
            None => {
                return Err(Error::Rotation(format!(
                    "{} has two active keys: {} (AWSCURRENT) and {}, which this secret does not hold; deactivate or delete {} first (nothing was changed)",
                    t.user, current.access_key_id, other.id, other.id
                )));
            }
        }
    }
    if let Some(key) = reuse {
        key_store::write(
            &aws.secrets,
            &t.secret.arn,
            &key,
            Some(token),
            &[AWSPENDING],
        )
        .await?;
        mark_pending(deps, t, &key).await?;
        done.push(format!(
            "took up the key {} of an earlier rotation as AWSPENDING",
            key.access_key_id
        ));
        return Ok(done.join("; "));
    }
    let key = lifecycle::issue(deps, &t.user, &t.secret.arn, Some(token), &[AWSPENDING]).await?;
    mark_pending(deps, t, &key).await?;
    done.push(format!(
        "created the key {} as AWSPENDING",
        key.access_key_id
    ));
    Ok(done.join("; "))
}

/// Which key the portal should hold during the rotation: the pending one
/// (what an organization hub reads).
async fn mark_pending(deps: &Deps, t: &Target, key: &StoredKey) -> Result<(), Error> {
    let id = [(hub_tags::PENDING_KEY_ID, key.access_key_id.as_str())];
    key_store::set_tags(&deps.aws.secrets, &t.secret.arn, &id).await
}

/// Why the previous key `previous`, still active, may be deleted now; an
/// error (nothing changed, people reminded) when nothing proves it.
async fn previous_may_go(
    deps: &Deps,
    t: &Target,
    current: &StoredKey,
    previous: &str,
    deadline: Instant,
) -> Result<String, Error> {
    if !deps.portal.keeps_previous_key() {
        // `api`: the portal holds the current key and its test passes (it
        // is handed over again when not).
        let side = Portalside::of(deps, t).await?;
        let connections = side.connections();
        let instance = side.instance(t, &connections);
        let after = deps
            .portal
            .after_rotation(instance, current, Promotion::Earlier, deadline)
            .await?;
        return match after {
            Previous::Retire => Ok("the portal holds the current key and its test passed".into()),
            Previous::AwaitHub if hub_state(t).confirms(&current.access_key_id) => {
                Ok("the hub confirms the portal holds the current key and its test passed".into())
            }
            Previous::AwaitHub | Previous::AwaitUse(_) => Err(Error::Rotation(format!(
                "nothing confirms the portal holds the current key {} yet ({}): the previous key {previous} is kept and nothing was changed; rotate again once it does",
                current.access_key_id,
                hub_state(t).detail.unwrap_or_else(|| "no verdict".into())
            ))),
        };
    }
    let handed = match HandedOver::of(&t.secret, &current.access_key_id) {
        Some(handed) => handed,
        None => HandedOver {
            // No hand-over recorded (a stack of an older version): the
            // version's creation stands for it.
            key_id: current.access_key_id.clone(),
            at: current_since(deps, t).await?,
        },
    };
    let uses = Uses::read(&deps.aws.iam, &current.access_key_id, previous).await?;
    match judge(&handed, previous, uses) {
        Evidence::Proven(why) => Ok(why),
        Evidence::NotYet(why) => {
            let message = format!(
                "The rotation of the Defender for Cloud Apps connector key of {} (secret {}) cannot go on: {why}.\n\
                 \n\
                 What to do: put the key {} in the portal's AWS instance {:?} (the secret's AWSCURRENT; the hand-off message says how), then rotate the secret again. Nothing was changed.\n",
                t.user, t.secret.arn, current.access_key_id, t.instance
            );
            deps.tell(
                "Defender for Cloud Apps: a key hand-off was not acted on",
                &message,
            )
            .await;
            Err(Error::Rotation(format!(
                "{why}; the previous key {previous} is kept and nothing was changed: put the key {} in the portal, then rotate again",
                current.access_key_id
            )))
        }
    }
}

/// When the version in AWSCURRENT was made (seconds since the epoch).
async fn current_since(deps: &Deps, t: &Target) -> Result<i64, Error> {
    let versions = key_store::versions(&deps.aws.secrets, &t.secret.arn).await?;
    Ok(versions
        .into_iter()
        .find(|(_, stages, _)| stages.iter().any(|s| s == AWSCURRENT))
        .and_then(|(_, _, created)| created)
        .unwrap_or_default())
}
