//! What is attached to the user: the stack's policy and, for Security
//! configuration, the AWS managed SecurityAudit and
//! AWSSecurityHubReadOnlyAccess (the guide's "attach" step).

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

pub async fn attach(iam: &Client, user: &UserRef, arn: &str) -> Result<(), Error> {
    iam.attach_user_policy()
        .user_name(&user.name)
        .policy_arn(arn)
        .send()
        .await
        .map_err(Error::aws("iam:AttachUserPolicy"))?;
    info!(user = %user, policy = %arn, "attached policy");
    Ok(())
}

/// Attaches the [`wanted_attachments`]; detaches the AWS managed ones when
/// the Security configuration connection is dropped. Other attachments are
/// left alone.
pub async fn converge_attachments(
    iam: &Client,
    stack: &StackRef,
    user: &UserRef,
    policy_arn: &str,
    security_configuration: bool,
) -> Result<(), Error> {
    let attached = attached_policies(iam, &user.name).await?;
    let wanted = wanted_attachments(stack, policy_arn, security_configuration);
    for arn in wanted.difference(&attached) {
        attach(iam, user, arn).await?;
    }
    let managed = wanted_attachments(stack, policy_arn, true);
    for arn in managed
        .difference(&wanted)
        .filter(|arn| attached.contains(*arn))
    {
        detach(iam, &user.name, arn).await?;
        info!(user = %user, policy = %arn, "detached policy");
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
