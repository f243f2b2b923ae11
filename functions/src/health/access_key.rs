//! `AccessKey`: the key in AWSCURRENT exists in IAM, is active,
//! authenticates as the user (sts:GetCallerIdentity signed with it), and is
//! the user's only active key, but for a rotation's (AWSPENDING) and, in
//! hand-off (and `off`) mode, the previous one until the new one is seen in
//! use. While that is awaited, the key is not signed with here: its use is
//! the evidence the previous key waits on, and ours would count.

use std::collections::BTreeSet;

use aws_config::retry::RetryConfig;

use super::check::Verdict;
use super::context::Context;
use crate::access_key;
use crate::error::Error;
use crate::key_store::{self, AWSPENDING, AWSPREVIOUS};

pub async fn check(ctx: &Context<'_>) -> Result<Verdict, Verdict> {
    let c = ctx.connection()?;
    let current = ctx.current()?;
    let aws = &ctx.deps.aws;
    let keys = ctx.keys(c).await?;
    let id = &current.access_key_id;
    let Some(key) = keys.iter().find(|k| &k.id == id) else {
        return Ok(Verdict::fail(format!(
            "the key {id} in the secret no longer exists in IAM: the portal cannot sign in. What to do: rotate the secret now (it issues and hands over a new key), and find who deleted the key in CloudTrail (iam:DeleteAccessKey)"
        )));
    };
    if !key.active {
        return Ok(Verdict::fail(format!(
            "the key {id} in AWSCURRENT is inactive: the portal cannot sign in. What to do: if it was deactivated on purpose (a suspected leak), rotate the secret now; otherwise make it active again"
        )));
    }
    // A rotation under way holds a second key in AWSPENDING; in hand-off
    // (and off) mode the previous key stays active until the new one is used.
    let mut expected = BTreeSet::from([id.clone()]);
    let mut stages = vec![AWSPENDING];
    if ctx.deps.portal.keeps_previous_key() {
        stages.push(AWSPREVIOUS);
    }
    let mut awaiting = false;
    for stage in stages {
        match key_store::read(&aws.secrets, &c.secret.arn, stage).await {
            Ok(Some(k)) => {
                awaiting |= stage == AWSPREVIOUS
                    && k.access_key_id != *id
                    && keys.iter().any(|m| m.id == k.access_key_id && m.active);
                expected.insert(k.access_key_id);
            }
            Ok(None) => {}
            Err(e) => return Err(Verdict::fail(format!("{stage} could not be read: {e}"))),
        }
    }
    let mut problems = Vec::new();
    for other in keys
        .iter()
        .filter(|k| k.active && !expected.contains(&k.id))
    {
        problems.push(format!(
            "a second active key {} exists on {}, which the connector did not issue: deactivate and delete it (only the key in the secret should sign in as this user)",
            other.id, c.user.name
        ));
    }
    if awaiting {
        let ok = format!(
            "the key {id} in AWSCURRENT is active and awaits a person (the previous key stays active until it is seen in use; it is not signed with here, so that only the portal's use counts)"
        );
        return Ok(Verdict::from_problems(problems, "see each finding", ok));
    }
    let sts = aws_sdk_sts::Client::new(&access_key::signed_with(
        &aws.sdk,
        current,
        RetryConfig::standard().with_max_attempts(2),
    ));
    match sts.get_caller_identity().send().await {
        Ok(who) if who.account() == Some(c.stack.account.as_str())
            && access_key::is_user(who.arn(), &c.user.name) => {}
        Ok(who) => problems.push(format!(
            "the key {id} signs in as {} instead of {}: rotate the secret now",
            who.arn().unwrap_or("an unknown identity"),
            c.user
        )),
        Err(e) => problems.push(format!(
            "the key {id} does not authenticate ({}): the portal cannot sign in; rotate the secret now",
            Error::aws_code_only("sts:GetCallerIdentity")(e)
        )),
    }
    let ok = format!(
        "the key {id} in AWSCURRENT is active, authenticates as {}, and is the user's only active key{}",
        c.user.name,
        if expected.len() > 1 {
            " (but for a rotation's)"
        } else {
            ""
        }
    );
    Ok(Verdict::from_problems(problems, "see each finding", ok))
}
