//! What the user's rights come from: the stack's policy and, for Security
//! configuration, the AWS managed SecurityAudit and
//! AWSSecurityHubReadOnlyAccess (the guide's "attach" step), attached to
//! the stack's group, never to the user itself (Security Hub IAM.2, CIS
//! 1.15). What an older version attached to the user directly is read here
//! to be moved.

use std::collections::BTreeSet;

use aws_sdk_iam::Client;
use tracing::info;

use crate::error::Error;
use crate::gone;
use crate::names::{StackRef, UserRef};

/// AWS managed policies attached for the Security configuration connection.
pub const SECURITY_CONFIGURATION_POLICIES: [&str; 2] =
    ["SecurityAudit", "AWSSecurityHubReadOnlyAccess"];

/// ARNs of the managed policies attached to the user.
pub async fn attached_policies(iam: &Client, user_name: &str) -> Result<BTreeSet<String>, Error> {
    let mut arns = BTreeSet::new();
    let mut marker = None;
    loop {
        let out = iam
            .list_attached_user_policies()
            .user_name(user_name)
            .set_marker(marker)
            .send()
            .await
            .map_err(Error::aws("iam:ListAttachedUserPolicies"))?;
        arns.extend(
            out.attached_policies()
                .iter()
                .filter_map(|p| p.policy_arn().map(str::to_string)),
        );
        marker = out.marker().map(str::to_string);
        if !out.is_truncated() || marker.is_none() {
            return Ok(arns);
        }
    }
}

/// What the user should have attached: the connector's policy and, for
/// Security configuration, the AWS managed ones.
pub fn wanted_attachments(
    stack: &StackRef,
    policy_arn: &str,
    security_configuration: bool,
) -> BTreeSet<String> {
    let mut wanted = BTreeSet::from([policy_arn.to_string()]);
    if security_configuration {
        wanted.extend(
            SECURITY_CONFIGURATION_POLICIES
                .iter()
                .map(|name| stack.aws_managed_policy_arn(name)),
        );
    }
    wanted
}

/// ARNs of the managed policies attached to the group `group_name`.
pub async fn group_attachments(iam: &Client, group_name: &str) -> Result<BTreeSet<String>, Error> {
    let mut arns = BTreeSet::new();
    let mut marker = None;
    loop {
        let out = iam
            .list_attached_group_policies()
            .group_name(group_name)
            .set_marker(marker)
            .send()
            .await
            .map_err(Error::aws("iam:ListAttachedGroupPolicies"))?;
        arns.extend(
            out.attached_policies()
                .iter()
                .filter_map(|p| p.policy_arn().map(str::to_string)),
        );
        marker = out.marker().map(str::to_string);
        if !out.is_truncated() || marker.is_none() {
            return Ok(arns);
        }
    }
}

/// Attaches `arn` to the stack's group of `user`.
pub async fn attach(iam: &Client, user: &UserRef, arn: &str) -> Result<(), Error> {
    iam.attach_group_policy()
        .group_name(user.group_name())
        .policy_arn(arn)
        .send()
        .await
        .map_err(Error::aws("iam:AttachGroupPolicy"))?;
    info!(group = %user.group_name(), policy = %arn, "attached policy to the group");
    Ok(())
}

/// Detaches `arn` from the group `group_name` (done when either is gone).
pub async fn detach_from_group(iam: &Client, group_name: &str, arn: &str) -> Result<(), Error> {
    let sent = iam
        .detach_group_policy()
        .group_name(group_name)
        .policy_arn(arn)
        .send()
        .await;
    gone::removal(sent, "iam:DetachGroupPolicy").map(|_| ())
}

/// The group holds the [`wanted_attachments`]; the AWS managed ones are
/// detached when the Security configuration connection is dropped. Other
/// attachments are left alone (the health check names them).
pub async fn converge(
    iam: &Client,
    stack: &StackRef,
    user: &UserRef,
    policy_arn: &str,
    security_configuration: bool,
) -> Result<(), Error> {
    let group = user.group_name();
    let attached = group_attachments(iam, &group).await?;
    let wanted = wanted_attachments(stack, policy_arn, security_configuration);
    for arn in wanted.difference(&attached) {
        attach(iam, user, arn).await?;
    }
    let managed = wanted_attachments(stack, policy_arn, true);
    for arn in managed
        .difference(&wanted)
        .filter(|arn| attached.contains(*arn))
    {
        detach_from_group(iam, &group, arn).await?;
        info!(group = %group, policy = %arn, "detached policy from the group");
    }
    Ok(())
}

/// Detaches `arn` from the user (done when either is gone already).
pub async fn detach(iam: &Client, user_name: &str, arn: &str) -> Result<(), Error> {
    let sent = iam
        .detach_user_policy()
        .user_name(user_name)
        .policy_arn(arn)
        .send()
        .await;
    gone::removal(sent, "iam:DetachUserPolicy").map(|_| ())
}
