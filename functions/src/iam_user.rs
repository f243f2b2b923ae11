//! Create the IAM user and its policy: replaces "create an IAM user with
//! programmatic access" and "paste the JSON policy" (plus, for Security
//! configuration, "attach SecurityAudit and AWSSecurityHubReadOnlyAccess").
//! The user and the policy are tagged as this stack's; nothing without those
//! tags is ever changed or deleted.

use std::collections::BTreeSet;

use aws_sdk_iam::Client;
use aws_sdk_iam::types::Tag;
use serde_json::{Value, json};
use tracing::info;

use crate::error::Error;
use crate::names::{MANAGED_BY, StackRef, TAG_MANAGED_BY, TAG_STACK_ID, UserRef};

/// The statement of Microsoft's guide, exactly: what Defender for Cloud Apps
/// reads for security auditing.
pub const POLICY_ACTIONS: [&str; 12] = [
    "cloudtrail:DescribeTrails",
    "cloudtrail:LookupEvents",
    "cloudtrail:GetTrailStatus",
    "cloudwatch:Describe*",
    "cloudwatch:Get*",
    "cloudwatch:List*",
    "iam:List*",
    "iam:Get*",
    "s3:ListAllMyBuckets",
    "s3:PutBucketAcl",
    "s3:GetBucketAcl",
    "s3:GetBucketLocation",
];

/// AWS managed policies attached for the Security configuration connection.
pub const SECURITY_CONFIGURATION_POLICIES: [&str; 2] =
    ["SecurityAudit", "AWSSecurityHubReadOnlyAccess"];

pub fn policy_document() -> Value {
    json!({
        "Version": "2012-10-17",
        "Statement": [{
            "Action": POLICY_ACTIONS,
            "Effect": "Allow",
            "Resource": "*"
        }]
    })
}

fn tags(stack: &StackRef) -> Vec<Tag> {
    stack
        .ownership_tags()
        .iter()
        .map(|(k, v)| {
            Tag::builder()
                .key(*k)
                .value(*v)
                .build()
                .expect("key and value are set")
        })
        .collect()
}

fn owned(stack: &StackRef, tags: &[Tag]) -> bool {
    stack.owns(tags.iter().map(|t| (t.key(), t.value())))
}

/// The user as IAM has it: `None` when there is no user by that name.
async fn get_user(iam: &Client, name: &str) -> Result<Option<(String, Vec<Tag>)>, Error> {
    match iam.get_user().user_name(name).send().await {
        Ok(out) => {
            let path = out.user().map(|u| u.path().to_string()).unwrap_or_default();
            let tags = iam
                .list_user_tags()
                .user_name(name)
                .send()
                .await
                .map_err(Error::aws("iam:ListUserTags"))?;
            Ok(Some((path, tags.tags().to_vec())))
        }
        Err(e)
            if e.as_service_error()
                .is_some_and(|e| e.is_no_such_entity_exception()) =>
        {
            Ok(None)
        }
        Err(e) => Err(Error::aws("iam:GetUser")(e)),
    }
}

/// Read-only: fails when a user by this name exists and is not this stack's.
pub async fn check_user_free(iam: &Client, stack: &StackRef, name: &str) -> Result<(), Error> {
    match get_user(iam, name).await? {
        Some((_, tags)) if !owned(stack, &tags) => Err(not_ours_user(stack, name, &tags)),
        _ => Ok(()),
    }
}

/// Why the user `name` (with `tags`) cannot be this stack's. A user made by
/// the connector of another stack means the account is connected already:
/// from another region, that is a StackSet deployed to more than one region
/// per account, which would register the account in the portal twice.
fn not_ours_user(stack: &StackRef, name: &str, tags: &[Tag]) -> Error {
    let tag = |key: &str| tags.iter().find(|t| t.key() == key).map(|t| t.value());
    let other = tag(TAG_STACK_ID)
        .filter(|_| tag(TAG_MANAGED_BY) == Some(MANAGED_BY))
        .and_then(|id| StackRef::parse(id, "-").ok())
        .filter(|other| other.stack_id != stack.stack_id);
    Error::NotOurs(match other {
        Some(other) if other.region != stack.region => format!(
            "this account is already connected by the stack {} in {}: deploy the connector to one region per account (a StackSet must target a single region), or delete that stack first",
            other.stack_name, other.region
        ),
        Some(other) => format!(
            "the IAM user {name} belongs to the connector of the stack {} in this region: this account is connected already; delete that stack, or choose another UserName and ConnectorName",
            other.stack_name
        ),
        None => format!(
            "the IAM user {name} exists and was not created by this stack; choose another UserName or remove that user"
        ),
    })
}

/// Makes sure the user exists under `user.path`, tagged as this stack's.
/// A user of this stack found under another path (a path change) is moved.
pub async fn ensure_user(iam: &Client, stack: &StackRef, user: &UserRef) -> Result<(), Error> {
    // Twice at most: a concurrent retry may create the user between our read
    // and our CreateUser; the second read then sees it.
    for _ in 0..2 {
        match get_user(iam, &user.name).await? {
            Some((_, tags)) if !owned(stack, &tags) => {
                return Err(not_ours_user(stack, &user.name, &tags));
            }
            Some((path, _)) if path != user.path => {
                iam.update_user()
                    .user_name(&user.name)
                    .new_path(&user.path)
                    .send()
                    .await
                    .map_err(Error::aws("iam:UpdateUser"))?;
                info!(user = %user, from = %path, "moved the IAM user to its new path");
                return Ok(());
            }
            Some(_) => return Ok(()),
            None => {
                let created = iam
                    .create_user()
                    .user_name(&user.name)
                    .path(&user.path)
                    .set_tags(Some(tags(stack)))
                    .send()
                    .await;
                match created {
                    Ok(_) => {
                        info!(user = %user, "created the IAM user");
                        return Ok(());
                    }
                    Err(e)
                        if e.as_service_error()
                            .is_some_and(|e| e.is_entity_already_exists_exception()) => {}
                    Err(e) => return Err(Error::aws("iam:CreateUser")(e)),
                }
            }
        }
    }
    Err(concurrent("iam:CreateUser", &user.name))
}

fn concurrent(operation: &'static str, name: &str) -> Error {
    Error::Aws {
        operation,
        message: format!(
            "{name} keeps appearing and disappearing (changed concurrently); run the operation again"
        ),
    }
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
                    .set_tags(Some(tags(stack)))
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
    match iam.list_policy_tags().policy_arn(arn).send().await {
        Ok(out) => Ok(Some(out.tags().to_vec())),
        Err(e)
            if e.as_service_error()
                .is_some_and(|e| e.is_no_such_entity_exception()) =>
        {
            Ok(None)
        }
        Err(e) => Err(Error::aws("iam:ListPolicyTags")(e)),
    }
}

/// The policy document of the default version, parsed (IAM returns it
/// URL-encoded); `None` when there is no such policy.
pub async fn default_document(iam: &Client, arn: &str) -> Result<Option<Value>, Error> {
    let policy = match iam.get_policy().policy_arn(arn).send().await {
        Ok(policy) => policy,
        Err(e)
            if e.as_service_error()
                .is_some_and(|e| e.is_no_such_entity_exception()) =>
        {
            return Ok(None);
        }
        Err(e) => return Err(Error::aws("iam:GetPolicy")(e)),
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
    match iam
        .delete_policy_version()
        .policy_arn(arn)
        .version_id(version)
        .send()
        .await
    {
        Ok(_) => Ok(()),
        Err(e)
            if e.as_service_error()
                .is_some_and(|e| e.is_no_such_entity_exception()) =>
        {
            Ok(())
        }
        Err(e) => Err(Error::aws("iam:DeletePolicyVersion")(e)),
    }
}

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

async fn detach(iam: &Client, user_name: &str, arn: &str) -> Result<(), Error> {
    match iam
        .detach_user_policy()
        .user_name(user_name)
        .policy_arn(arn)
        .send()
        .await
    {
        Ok(_) => Ok(()),
        Err(e)
            if e.as_service_error()
                .is_some_and(|e| e.is_no_such_entity_exception()) =>
        {
            Ok(())
        }
        Err(e) => Err(Error::aws("iam:DetachUserPolicy")(e)),
    }
}

/// What a delete step did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Removal {
    Deleted,
    AlreadyGone,
    /// Exists but is not what this physical id made (another stack's, or the
    /// user now used under another path by the resource's successor).
    LeftAlone,
}

/// The access keys of `user` when it exists and is what this physical id
/// made; otherwise why it is not (`AlreadyGone` or `LeftAlone`).
pub async fn own_keys(
    iam: &Client,
    stack: &StackRef,
    user: &UserRef,
) -> Result<Result<Vec<crate::access_key::KeyInfo>, Removal>, Error> {
    let Some((path, tags)) = get_user(iam, &user.name).await? else {
        return Ok(Err(Removal::AlreadyGone));
    };
    if !owned(stack, &tags) || path != user.path {
        info!(user = %user, current_path = %path, "the IAM user is not this physical id's: left alone");
        return Ok(Err(Removal::LeftAlone));
    }
    Ok(Ok(crate::access_key::list(iam, &user.name).await?))
}

/// Deletes the user with everything IAM requires gone first: its access
/// keys, attached and inline policies, groups and console password.
pub async fn delete_user(iam: &Client, stack: &StackRef, user: &UserRef) -> Result<Removal, Error> {
    let keys = match own_keys(iam, stack, user).await? {
        Ok(keys) => keys,
        Err(removal) => return Ok(removal),
    };
    let name = user.name.as_str();
    for key in keys {
        crate::access_key::delete(iam, name, &key.id).await?;
    }
    for arn in attached_policies(iam, name).await? {
        detach(iam, name, &arn).await?;
    }
    let inline = iam
        .list_user_policies()
        .user_name(name)
        .send()
        .await
        .map_err(Error::aws("iam:ListUserPolicies"))?;
    for policy in inline.policy_names() {
        iam.delete_user_policy()
            .user_name(name)
            .policy_name(policy)
            .send()
            .await
            .map_err(Error::aws("iam:DeleteUserPolicy"))?;
    }
    let groups = iam
        .list_groups_for_user()
        .user_name(name)
        .send()
        .await
        .map_err(Error::aws("iam:ListGroupsForUser"))?;
    for group in groups.groups() {
        iam.remove_user_from_group()
            .user_name(name)
            .group_name(group.group_name())
            .send()
            .await
            .map_err(Error::aws("iam:RemoveUserFromGroup"))?;
    }
    match iam.delete_login_profile().user_name(name).send().await {
        Ok(_) => {}
        Err(e)
            if e.as_service_error()
                .is_some_and(|e| e.is_no_such_entity_exception()) => {}
        Err(e) => return Err(Error::aws("iam:DeleteLoginProfile")(e)),
    }
    match iam.delete_user().user_name(name).send().await {
        Ok(_) => {
            info!(user = %user, "deleted the IAM user");
            Ok(Removal::Deleted)
        }
        Err(e)
            if e.as_service_error()
                .is_some_and(|e| e.is_no_such_entity_exception()) =>
        {
            Ok(Removal::AlreadyGone)
        }
        Err(e) => Err(Error::aws("iam:DeleteUser")(e)),
    }
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
            detach(iam, name, &arn).await?;
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
    match iam.delete_policy().policy_arn(&arn).send().await {
        Ok(_) => {
            info!(policy = %arn, "deleted the policy");
            Ok(Removal::Deleted)
        }
        Err(e)
            if e.as_service_error()
                .is_some_and(|e| e.is_no_such_entity_exception()) =>
        {
            Ok(Removal::AlreadyGone)
        }
        Err(e) => Err(Error::aws("iam:DeletePolicy")(e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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

    fn tag(key: &str, value: &str) -> Tag {
        Tag::builder().key(key).value(value).build().unwrap()
    }

    #[test]
    fn a_user_of_another_regions_connector_names_the_one_region_rule() {
        let here = StackRef::parse(
            "arn:aws:cloudformation:eu-west-1:111122223333:stack/StackSet-cloudapps-1/guid-2",
            "Connector",
        )
        .unwrap();
        let theirs = |region: &str| {
            vec![
                tag(TAG_MANAGED_BY, MANAGED_BY),
                tag(
                    TAG_STACK_ID,
                    &format!(
                        "arn:aws:cloudformation:{region}:111122223333:stack/StackSet-cloudapps-1/guid-1"
                    ),
                ),
            ]
        };
        let other_region = not_ours_user(&here, "u", &theirs("us-east-1")).to_string();
        assert!(
            other_region
                .contains("already connected by the stack StackSet-cloudapps-1 in us-east-1")
                && other_region.contains("one region per account"),
            "{other_region}"
        );
        let same_region = not_ours_user(&here, "u", &theirs("eu-west-1")).to_string();
        assert!(same_region.contains("connected already"), "{same_region}");
        let foreign = not_ours_user(&here, "u", &[tag("team", "x")]).to_string();
        assert!(
            foreign.contains("was not created by this stack"),
            "{foreign}"
        );
    }
}
