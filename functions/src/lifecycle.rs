//! The life of one access key, shared by the custom resource and the
//! rotation: issue → store → prove (it authenticates, and passes the
//! pre-flight) → hand over (and test in the portal: [`crate::portal::Portal`])
//! → promote → retire.
//! The connector runs them in one go (the key goes straight to AWSCURRENT);
//! the rotation runs them across its four steps (AWSPENDING first).

use std::time::Instant;

use tracing::{info, warn};

use crate::access_key;
use crate::deps::Deps;
use crate::error::Error;
use crate::key::StoredKey;
use crate::key_store::{self, SecretInfo};
use crate::names::secret_tags::{
    self, CONNECTIONS as TAG_CONNECTIONS, INSTANCE as TAG_INSTANCE, USER as TAG_USER,
};
use crate::names::{self, StackRef, UserRef};
use crate::preflight;
use crate::time;

/// A connection as the connector set it up, read from the tags it wrote on
/// the secret: what the rotation and the health check work on.
#[derive(Clone, Debug)]
pub struct Connection {
    pub secret: SecretInfo,
    pub stack: StackRef,
    pub user: UserRef,
    /// The instance's name in the portal.
    pub instance: String,
    pub connections: Vec<String>,
}

/// Reads the connection of the secret `secret_id`, which must be the
/// connector secret of the stack `stack_id` (`verb`: what the caller does
/// with it, for the error: "rotates", "checks").
pub async fn connection(
    deps: &Deps,
    stack_id: &str,
    secret_id: &str,
    verb: &str,
) -> Result<Connection, Error> {
    let secret = key_store::describe(&deps.aws.secrets, secret_id).await?;
    if secret.tag(names::TAG_STACK_ID) != Some(stack_id) {
        return Err(Error::NotOurs(format!(
            "the secret {} is not this stack's connector secret ({} is {:?}); this function {verb} only the secret of stack {stack_id}",
            secret.arn,
            names::TAG_STACK_ID,
            secret.tag(names::TAG_STACK_ID).unwrap_or("not set")
        )));
    }
    let missing = |tag: &str| {
        Error::NotSetUp(format!(
            "the secret {} has no {tag} tag: the connector has not set it up yet (create the stack first)",
            secret.arn
        ))
    };
    let logical = secret
        .tag(names::TAG_LOGICAL_ID)
        .ok_or_else(|| missing(names::TAG_LOGICAL_ID))?;
    let stack = StackRef::parse(stack_id, logical).map_err(Error::NotSetUp)?;
    let user_arn = secret.tag(TAG_USER).ok_or_else(|| missing(TAG_USER))?;
    let user = stack.user_from_physical_id(user_arn).ok_or_else(|| {
        Error::NotSetUp(format!(
            "{TAG_USER} = {user_arn} is not a user of this account"
        ))
    })?;
    let instance = secret
        .tag(TAG_INSTANCE)
        .ok_or_else(|| missing(TAG_INSTANCE))?
        .to_string();
    let connections = secret
        .tag(TAG_CONNECTIONS)
        .unwrap_or("SecurityAuditing")
        .split_whitespace()
        .map(str::to_string)
        .collect();
    Ok(Connection {
        secret,
        stack,
        user,
        instance,
        connections,
    })
}

/// Issues a key for `user` and stores it in the secret as `version` (the
/// rotation's token, or one derived from the key) under `stages`. A key
/// that could not be stored is deleted: it would be lost.
pub async fn issue(
    deps: &Deps,
    user: &UserRef,
    secret_arn: &str,
    version: Option<&str>,
    stages: &[&str],
) -> Result<StoredKey, Error> {
    let aws = &deps.aws;
    // Marked first: a step cut off between CreateAccessKey and PutSecretValue
    // leaves a key no version holds, which the next run then knows as its own.
    let marked = (time::now_millis() / 1000).to_string();
    key_store::set_tags(&aws.secrets, secret_arn, &[(secret_tags::ISSUING, &marked)]).await?;
    let key = access_key::create(&aws.iam, user).await?;
    if let Err(e) = key_store::write(&aws.secrets, secret_arn, &key, version, stages).await {
        if let Err(cleanup) = access_key::delete(&aws.iam, &user.name, &key.access_key_id).await {
            warn!(error = %cleanup, "could not delete the key that was not stored");
        }
        return Err(e);
    }
    key_store::remove_tags(&aws.secrets, secret_arn, &[secret_tags::ISSUING]).await?;
    info!(user = %user, access_key_id = %key.access_key_id, secret = secret_arn, stages = ?stages, "stored the new key");
    Ok(key)
}

/// How long after its mark a key is still the mark's: a step's run.
const ISSUING_WINDOW: i64 = 900;

/// True when `key`, which no version of the secret holds, is the orphan of
/// an issue of this stack cut off before the key was stored: created within
/// a step's run of the mark the issue left on the secret.
pub fn is_own_orphan(secret: &SecretInfo, key: &access_key::KeyInfo) -> bool {
    let mark = secret
        .tag(secret_tags::ISSUING)
        .and_then(|t| t.parse::<i64>().ok());
    match (mark, key.created) {
        (Some(mark), Some(created)) => {
            created >= mark.saturating_sub(60) && created <= mark.saturating_add(ISSUING_WINDOW)
        }
        _ => false,
    }
}

/// Proves `key`: it authenticates as `user`, then (unless
/// `PORTAL_MODE=off`: nothing is handed over) the pre-flight passes.
/// Returns the pre-flight's summary.
pub async fn prove(
    deps: &Deps,
    key: &StoredKey,
    user: &UserRef,
    stack: &StackRef,
    deadline: Instant,
) -> Result<String, Error> {
    let aws = &deps.aws;
    access_key::wait_until_authenticates(
        &aws.sdk,
        key,
        user,
        &stack.account,
        &deps.settings.key_ready,
        deadline,
    )
    .await?;
    if !deps.portal.hands_keys_over() {
        return Ok("not run (PORTAL_MODE=off)".into());
    }
    let report = preflight::check(
        &aws.sdk,
        key,
        user,
        &stack.account,
        &deps.settings,
        deadline,
    )
    .await?;
    Ok(report.summary())
}

/// Retires a key nobody should use any more: inactive first (reversible);
/// the next rotation deletes it.
pub async fn retire(deps: &Deps, user: &UserRef, key_id: &str) -> Result<(), Error> {
    access_key::deactivate(&deps.aws.iam, &user.name, key_id).await
}
