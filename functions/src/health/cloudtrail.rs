//! `CloudTrail`: a trail still covers the account, by the connector's own
//! code. With repair on, the stack's own trail is started again.

use super::check::Verdict;
use super::context::Context;
use crate::error::Error;
use crate::trail;

pub async fn check(ctx: &Context<'_>) -> Result<Verdict, Verdict> {
    let stack = ctx
        .stack
        .as_ref()
        .ok_or_else(|| Verdict::fail("the stack id is unreadable"))?;
    let ct = &ctx.deps.aws.cloudtrail;
    let own = stack.trail_arn(&stack.trail_name());
    let assess = || async {
        let views = trail::survey(ct).await?;
        Ok::<_, Error>(trail::assess(&views, &own))
    };
    let mut repaired = Vec::new();
    let mut outcome = assess().await;
    if matches!(outcome, Ok(Err(_))) && ctx.settings.repair && ctx.connection.is_ok() {
        match trail::restart_own_trail(ct, stack).await {
            Ok(Some(name)) => {
                repaired.push(format!("started logging on the stack's trail {name} again"));
                outcome = assess().await;
            }
            Ok(None) => {}
            Err(e) => repaired.push(format!("repair could not start the stack's trail: {e}")),
        }
    }
    let verdict = match outcome {
        Ok(Ok(coverage)) => Verdict::pass(coverage.detail),
        Ok(Err(reason)) => Verdict::fail(format!(
            "{reason}. The portal sees no activity without it. What to do: start logging on the trail (or turn repair on for the stack's own trail), or run an Update of the stack with CloudTrail set to Ensure"
        )),
        Err(e) => Verdict::fail(format!("the trails could not be read: {e}")),
    };
    Ok(verdict.repaired(repaired))
}
