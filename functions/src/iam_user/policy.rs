//! The user's policy: replaces "paste the JSON policy". A customer managed
//! policy under the user's path, holding exactly the statement of
//! Microsoft's guide, tagged as this stack's.

use aws_sdk_iam::Client;
use aws_sdk_iam::types::Tag;
use serde_json::Value;
use tracing::info;

use super::ownership::{concurrent, owned, tags};
use crate::error::Error;
use crate::gone::{self, Removal};
use crate::names::{StackRef, UserRef};

/// The policy of Microsoft's guide, exactly: what Defender for Cloud Apps
/// reads for security auditing. Kept as JSON (`guide-policy.json`) so that
/// the IAM policy linter of the test suite reads the very same document.
pub const GUIDE_POLICY: &str = include_str!("guide-policy.json");

pub fn policy_document() -> Value {
    serde_json::from_str(GUIDE_POLICY).expect("guide-policy.json is a policy document")
}

/// Makes sure the customer managed policy exists with exactly the guide's
/// document as its default version. Returns its ARN.
pub async fn ensure_policy(
    iam: &Client,
    stack: &StackRef,
    user: &UserRef,
) -> Result<String, Error> {
    let arn = user.policy_arn(stack);
    let document = policy_document();
    for _ in 0..2 {
        match policy_tags(iam, &arn).await? {
            Some(tags) if !owned(stack, &tags) => {
                return Err(Error::NotOurs(format!(
                    "the policy {arn} exists and was not created by this stack; remove it or choose another UserName"
                )));
            }
            Some(_) => {
                if default_document(iam, &arn).await?.as_ref() != Some(&document) {
                    replace_default_version(iam, &arn, &document).await?;
                    info!(policy = %arn, "restored the policy document");
                }
                return Ok(arn);
            }
            None => {
                // No Description: moto's SigV4 check under IAM enforcement
                // fails on spaces in Query API bodies (tests/README.md); the
                // tags say what the policy is.
                let created = iam
                    .create_policy()
                    .policy_name(user.policy_name())
                    .path(&user.path)
                    .policy_document(document.to_string())
                    .set_tags(Some(tags(stack, &[])))
                    .send()
                    .await;
                match created {
                    Ok(_) => {
                        info!(policy = %arn, "created the policy");
                        return Ok(arn);
                    }
                    Err(e)
                        if e.as_service_error()
                            .is_some_and(|e| e.is_entity_already_exists_exception()) => {}
                    Err(e) => return Err(Error::aws("iam:CreatePolicy")(e)),
                }
            }
        }
    }
    Err(concurrent("iam:CreatePolicy", &arn))
}

/// The policy's tags; `None` when there is no such policy.
async fn policy_tags(iam: &Client, arn: &str) -> Result<Option<Vec<Tag>>, Error> {
    let sent = iam.list_policy_tags().policy_arn(arn).send().await;
    Ok(gone::unless_gone(sent, "iam:ListPolicyTags")?.map(|out| out.tags().to_vec()))
}

/// The policy document of the default version, parsed (IAM returns it
/// URL-encoded); `None` when there is no such policy.
pub async fn default_document(iam: &Client, arn: &str) -> Result<Option<Value>, Error> {
    let sent = iam.get_policy().policy_arn(arn).send().await;
    let Some(policy) = gone::unless_gone(sent, "iam:GetPolicy")? else {
        return Ok(None);
    };
    let version = policy
        .policy()
        .and_then(|p| p.default_version_id())
        .unwrap_or("v1")
        .to_string();
    let out = iam
        .get_policy_version()
        .policy_arn(arn)
        .version_id(&version)
        .send()
        .await
        .map_err(Error::aws("iam:GetPolicyVersion"))?;
    let encoded = out
        .policy_version()
        .and_then(|v| v.document())
        .unwrap_or("{}");
    let decoded = percent_encoding::percent_decode_str(encoded).decode_utf8_lossy();
    Ok(Some(serde_json::from_str(&decoded).unwrap_or(Value::Null)))
}

async fn replace_default_version(iam: &Client, arn: &str, document: &Value) -> Result<(), Error> {
    let versions = iam
        .list_policy_versions()
        .policy_arn(arn)
        .send()
        .await
        .map_err(Error::aws("iam:ListPolicyVersions"))?;
    let mut old: Vec<_> = versions
        .versions()
        .iter()
        .filter(|v| !v.is_default_version())
        .filter_map(|v| v.version_id().map(str::to_string))
        .collect();
    // IAM keeps at most five versions: make room for the new one.
    old.sort();
    if versions.versions().len() >= 5 {
        if let Some(oldest) = old.first() {
            delete_policy_version(iam, arn, oldest).await?;
        }
    }
    iam.create_policy_version()
        .policy_arn(arn)
        .policy_document(document.to_string())
        .set_as_default(true)
        .send()
        .await
        .map_err(Error::aws("iam:CreatePolicyVersion"))?;
    Ok(())
}

async fn delete_policy_version(iam: &Client, arn: &str, version: &str) -> Result<(), Error> {
    let sent = iam
        .delete_policy_version()
        .policy_arn(arn)
        .version_id(version)
        .send()
        .await;
    gone::removal(sent, "iam:DeletePolicyVersion").map(|_| ())
}

/// Deletes the customer managed policy of `user` if this stack made it,
/// detaching it from every user, group and role first.
pub async fn delete_policy(
    iam: &Client,
    stack: &StackRef,
    user: &UserRef,
) -> Result<Removal, Error> {
    let arn = user.policy_arn(stack);
    let Some(tags) = policy_tags(iam, &arn).await? else {
        return Ok(Removal::AlreadyGone);
    };
    if !owned(stack, &tags) {
        info!(policy = %arn, "the policy is not this stack's: left alone");
        return Ok(Removal::LeftAlone);
    }
    let entities = iam
        .list_entities_for_policy()
        .policy_arn(&arn)
        .send()
        .await
        .map_err(Error::aws("iam:ListEntitiesForPolicy"))?;
    for u in entities.policy_users() {
        if let Some(name) = u.user_name() {
            super::attachments::detach(iam, name, &arn).await?;
        }
    }
    for g in entities.policy_groups() {
        if let Some(name) = g.group_name() {
            iam.detach_group_policy()
                .group_name(name)
                .policy_arn(&arn)
                .send()
                .await
                .map_err(Error::aws("iam:DetachGroupPolicy"))?;
        }
    }
    for r in entities.policy_roles() {
        if let Some(name) = r.role_name() {
            iam.detach_role_policy()
                .role_name(name)
                .policy_arn(&arn)
                .send()
                .await
                .map_err(Error::aws("iam:DetachRolePolicy"))?;
        }
    }
    let versions = iam
        .list_policy_versions()
        .policy_arn(&arn)
        .send()
        .await
        .map_err(Error::aws("iam:ListPolicyVersions"))?;
    for v in versions
        .versions()
        .iter()
        .filter(|v| !v.is_default_version())
    {
        if let Some(id) = v.version_id() {
            delete_policy_version(iam, &arn, id).await?;
        }
    }
    let removal = gone::removal(
        iam.delete_policy().policy_arn(&arn).send().await,
        "iam:DeletePolicy",
    )?;
    if removal == Removal::Deleted {
        info!(policy = %arn, "deleted the policy");
    }
    Ok(removal)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    #[test]
    fn the_policy_is_the_guides_statement() {
        let doc = policy_document();
        let statements = doc["Statement"].as_array().unwrap();
        assert_eq!(statements.len(), 1);
        let s = &statements[0];
        assert_eq!(s["Effect"], "Allow");
        assert_eq!(s["Resource"], "*");
        let actions: BTreeSet<&str> = s["Action"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a.as_str().unwrap())
            .collect();
        assert_eq!(actions.len(), 12);
        assert!(
            !actions
                .iter()
                .any(|a| a.contains("Create") || a.contains("Delete") || *a == "*")
        );
    }
}
