//! `UserPolicy`: the IAM user exists under its path with exactly the
//! guide's policy, attached as the stack configured it. Drift is named: an
//! added or dropped statement, a missing or extra attachment, inline
//! policies, groups. With repair on, the stack's policies are attached again.

use super::check::Verdict;
use super::context::Context;
use super::drift;
use crate::error::Error;
use crate::gone;
use crate::iam_user;

pub async fn check(ctx: &Context<'_>) -> Result<Verdict, Verdict> {
    let c = ctx.connection()?;
    let iam = &ctx.deps.aws.iam;
    let aws = |e: Error| Verdict::fail(format!("could not be read: {e}"));
    let todo = "run an Update of the stack (it restores the user, its policy and attachments; or turn repair on for attachments), and find who changed it in CloudTrail";
    let sent = iam.get_user().user_name(&c.user.name).send().await;
    let user = gone::unless_gone(sent, "iam:GetUser")
        .map_err(aws)?
        .and_then(|out| out.user().cloned());
    let Some(user) = user else {
        return Ok(Verdict::fail(format!(
            "the IAM user {} is gone: the portal cannot sign in. What to do: run an Update of the stack to create it again, and find who deleted it in CloudTrail (iam:DeleteUser)",
            c.user.name
        )));
    };
    let mut problems = Vec::new();
    if user.path() != c.user.path {
        problems.push(format!(
            "the user is under the path {}, the stack made it under {}",
            user.path(),
            c.user.path
        ));
    }
    let policy_arn = c.user.policy_arn(&c.stack);
    let mut policy_exists = true;
    match iam_user::default_document(iam, &policy_arn).await {
        Ok(Some(document)) => {
            let drift = drift::policy_drift(&iam_user::policy_document(), &document);
            if !drift.is_empty() {
                problems.push(format!(
                    "the policy {policy_arn} is not the guide's: its default version {}",
                    drift.join(", ")
                ));
            }
        }
        Ok(None) => {
            policy_exists = false;
            problems.push(format!("the policy {policy_arn} is gone"));
        }
        Err(e) => return Err(aws(e)),
    }
    let security_configuration = c.connections.iter().any(|x| x == "SecurityConfiguration");
    let wanted = iam_user::wanted_attachments(&c.stack, &policy_arn, security_configuration);
    let group = c.user.group_name();
    let mut attached = match iam_user::group_attachments(iam, &group).await {
        Ok(attached) => attached,
        Err(e) => {
            problems.push(format!("the user's group {group} could not be read: {e}"));
            Default::default()
        }
    };
    let mut repaired = Vec::new();
    if ctx.settings.repair {
        let missing: Vec<&String> = wanted
            .iter()
            .filter(|arn| !attached.contains(*arn))
            .filter(|arn| policy_exists || **arn != policy_arn)
            .collect();
        for arn in missing {
            match iam_user::attach(iam, &c.user, arn).await {
                Ok(()) => {
                    repaired.push(format!("attached {arn} to the group {group} again"));
                    attached.insert(arn.clone());
                }
                Err(e) => problems.push(format!("repair could not attach {arn}: {e}")),
            }
        }
    }
    for arn in wanted.difference(&attached) {
        problems.push(format!(
            "the policy {arn} is not attached to the user's group {group}"
        ));
    }
    for arn in attached.difference(&wanted) {
        problems.push(format!(
            "the policy {arn} is attached to the group {group} too (not the stack's): detach it"
        ));
    }
    let direct = iam_user::attached_policies(iam, &c.user.name)
        .await
        .map_err(aws)?;
    for arn in &direct {
        problems.push(format!(
            "the policy {arn} is attached to the user itself (its rights come from the group {group}; Security Hub IAM.2): detach it"
        ));
    }
    let inline = iam
        .list_user_policies()
        .user_name(&c.user.name)
        .send()
        .await
        .map_err(|e| aws(Error::aws("iam:ListUserPolicies")(e)))?;
    if !inline.policy_names().is_empty() {
        problems.push(format!(
            "inline policies were added to the user ({}): delete them",
            inline.policy_names().join(", ")
        ));
    }
    let group_inline = iam
        .list_group_policies()
        .group_name(&group)
        .send()
        .await
        .map_or_else(|_| Vec::new(), |out| out.policy_names().to_vec());
    if !group_inline.is_empty() {
        problems.push(format!(
            "inline policies were added to the group {group} ({}): delete them",
            group_inline.join(", ")
        ));
    }
    let groups = iam
        .list_groups_for_user()
        .user_name(&c.user.name)
        .send()
        .await
        .map_err(|e| aws(Error::aws("iam:ListGroupsForUser")(e)))?;
    let (own, others): (Vec<_>, Vec<_>) = groups
        .groups()
        .iter()
        .partition(|g| iam_user::group::is_the_stacks(&c.user, g.group_name(), g.path()));
    if own.is_empty() {
        problems.push(format!(
            "the user is not in its group {group}: it has none of its rights"
        ));
    }
    if !others.is_empty() {
        let names: Vec<&str> = others.iter().map(|g| g.group_name()).collect();
        problems.push(format!(
            "the user is in the groups {} and gets their rights too: remove it from them",
            names.join(", ")
        ));
    }
    let ok = format!(
        "the user {} gets exactly the guide's policy and {} attachment(s) as configured, through its group {group}, and has nothing attached itself",
        c.user,
        wanted.len()
    );
    Ok(Verdict::from_problems(problems, todo, ok).repaired(repaired))
}
