//! The group the user gets its rights through: under `UserPath`, named like
//! the policy (`<UserName>-cloudapps`), holding the stack's policy (and the
//! two AWS managed ones for Security configuration), with the user as its
//! only member. IAM groups take no tags: a group by that name and path
//! whose members are the user alone (or nobody) is the stack's; one with
//! other members is refused and never changed.

use aws_sdk_iam::Client;
use tracing::info;

use super::attachments::{self, attached_policies, group_attachments, wanted_attachments};
use super::ownership::concurrent;
use crate::error::Error;
use crate::gone::{self, Removal};
use crate::names::{StackRef, UserRef, same_iam_name};

/// True when the group `name` at `path` is the stack's group of `user`.
pub fn is_the_stacks(user: &UserRef, name: &str, path: &str) -> bool {
    same_iam_name(name, &user.group_name()) && path == user.path
}

/// The group's path and members, `None` when there is no such group.
async fn get_group(iam: &Client, name: &str) -> Result<Option<(String, Vec<String>)>, Error> {
    let sent = iam.get_group().group_name(name).send().await;
    let Some(out) = gone::unless_gone(sent, "iam:GetGroup")? else {
        return Ok(None);
    };
    let path = out
        .group()
        .map(|g| g.path().to_string())
        .unwrap_or_default();
    let members = out
        .users()
        .iter()
        .map(|u| u.user_name().to_string())
        .collect();
    Ok(Some((path, members)))
}

fn others<'a>(user: &UserRef, members: &'a [String]) -> Vec<&'a str> {
    members
        .iter()
        .filter(|m| !same_iam_name(m, &user.name))
        .map(String::as_str)
        .collect()
}

/// Makes sure the stack's group exists, holds exactly the user's rights and
/// has the user; then takes what an older version attached to the user
/// directly off it. In that order, so the key never lacks a right on the
/// way.
pub async fn converge(
    iam: &Client,
    stack: &StackRef,
    user: &UserRef,
    policy_arn: &str,
    security_configuration: bool,
) -> Result<(), Error> {
    ensure_group(iam, user).await?;
    attachments::converge(iam, stack, user, policy_arn, security_configuration).await?;
    iam.add_user_to_group()
        .group_name(user.group_name())
        .user_name(&user.name)
        .send()
        .await
        .map_err(Error::aws("iam:AddUserToGroup"))?;
    info!(user = %user, group = %user.group_name(), "added the user to its group");
    let moved = wanted_attachments(stack, policy_arn, true);
    for arn in attached_policies(iam, &user.name).await? {
        if moved.contains(&arn) {
            attachments::detach(iam, &user.name, &arn).await?;
            info!(user = %user, policy = %arn, "moved the policy from the user to its group");
        }
    }
    Ok(())
}

async fn ensure_group(iam: &Client, user: &UserRef) -> Result<(), Error> {
    let name = user.group_name();
    for _ in 0..2 {
        match get_group(iam, &name).await? {
            Some((path, members)) => {
                let others = others(user, &members);
                if path != user.path || !others.is_empty() {
                    return Err(Error::NotOurs(format!(
                        "the group {name} exists (path {path}, members {others:?}) and is not this stack's: choose another UserName, or remove that group"
                    )));
                }
                return Ok(());
            }
            None => {
                let created = iam
                    .create_group()
                    .group_name(&name)
                    .path(&user.path)
                    .send()
                    .await;
                match created {
                    Ok(_) => {
                        info!(group = %name, path = %user.path, "created the group");
                        return Ok(());
                    }
                    Err(e)
                        if e.as_service_error()
                            .is_some_and(|e| e.is_entity_already_exists_exception()) => {}
                    Err(e) => return Err(Error::aws("iam:CreateGroup")(e)),
                }
            }
        }
    }
    Err(concurrent("iam:CreateGroup", &name))
}

/// Deletes the stack's group of `user` once the user is out of it: what is
/// attached and inline first. A group with other members is left alone.
pub async fn delete_group(iam: &Client, user: &UserRef) -> Result<Removal, Error> {
    let name = user.group_name();
    let Some((path, members)) = get_group(iam, &name).await? else {
        return Ok(Removal::AlreadyGone);
    };
    if path != user.path || !others(user, &members).is_empty() {
        info!(group = %name, "the group is not this stack's: left alone");
        return Ok(Removal::LeftAlone);
    }
    for arn in group_attachments(iam, &name).await? {
        attachments::detach_from_group(iam, &name, &arn).await?;
    }
    let inline = iam
        .list_group_policies()
        .group_name(&name)
        .send()
        .await
        .map_err(Error::aws("iam:ListGroupPolicies"))?;
    for policy in inline.policy_names() {
        let sent = iam
            .delete_group_policy()
            .group_name(&name)
            .policy_name(policy)
            .send()
            .await;
        gone::removal(sent, "iam:DeleteGroupPolicy")?;
    }
    let removal = gone::removal(
        iam.delete_group().group_name(&name).send().await,
        "iam:DeleteGroup",
    )?;
    if removal == Removal::Deleted {
        info!(group = %name, "deleted the group");
    }
    Ok(removal)
}
