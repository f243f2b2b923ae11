//! Create the IAM user: replaces "create an IAM user with programmatic
//! access". Its policy ([`policy`]) and the group it gets its rights through
//! ([`group`], with what is attached there: [`attachments`]) are this
//! module's other rooms. The user is created with its permissions boundary
//! (the template's: whatever its policy says, it can do no more than that).
//! The user and the policy are tagged as this stack's; nothing without
//! those tags is ever changed or deleted.

pub mod attachments;
pub mod group;
mod ownership;
pub mod policy;

use aws_sdk_iam::Client;
use aws_sdk_iam::types::Tag;
use tracing::info;

use crate::error::Error;
use crate::gone::{self, Removal};
use crate::names::{MANAGED_BY, StackRef, TAG_MANAGED_BY, TAG_STACK_ID, UserRef};
use ownership::{concurrent, owned, tag, tags};

pub use attachments::{
    SECURITY_CONFIGURATION_POLICIES, attach, attached_policies, group_attachments,
    wanted_attachments,
};
pub use policy::{GUIDE_POLICY, default_document, delete_policy, ensure_policy, policy_document};

/// A user as IAM has it.
struct Found {
    /// Its name as IAM spells it (IAM finds a user whatever the case).
    name: String,
    path: String,
    tags: Vec<Tag>,
    boundary: Option<String>,
}

/// The user as IAM has it: `None` when there is no user by that name.
async fn get_user(iam: &Client, name: &str) -> Result<Option<Found>, Error> {
    let sent = iam.get_user().user_name(name).send().await;
    let Some(out) = gone::unless_gone(sent, "iam:GetUser")? else {
        return Ok(None);
    };
    let user = out.user();
    let tags = iam
        .list_user_tags()
        .user_name(name)
        .send()
        .await
        .map_err(Error::aws("iam:ListUserTags"))?;
    Ok(Some(Found {
        name: user.map_or(name, |u| u.user_name()).to_string(),
        path: user.map(|u| u.path().to_string()).unwrap_or_default(),
        tags: tags.tags().to_vec(),
        boundary: user
            .and_then(|u| u.permissions_boundary())
            .and_then(|b| b.permissions_boundary_arn())
            .map(str::to_string),
    }))
}

/// Read-only: fails when a user by this name exists and is not this stack's.
pub async fn check_user_free(iam: &Client, stack: &StackRef, name: &str) -> Result<(), Error> {
    match get_user(iam, name).await? {
        Some(found) if !owned(stack, &found.tags) => Err(not_ours_user(stack, name, &found.tags)),
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

/// What the user must have besides its name and path.
#[derive(Clone, Copy, Debug, Default)]
pub struct UserSettings<'a> {
    /// Its permissions boundary (the template's `UserPermissionsBoundary`).
    pub boundary: Option<&'a str>,
    /// The stack's `Tags`, besides its own.
    pub tags: &'a [(String, String)],
}

/// Makes sure the user exists under `user.path`, tagged as this stack's,
/// with `settings`' boundary and tags. A user of this stack found under
/// another path (moved by hand) is refused: the functions' rights are
/// scoped to `UserPath`.
pub async fn ensure_user(
    iam: &Client,
    stack: &StackRef,
    user: &UserRef,
    settings: UserSettings<'_>,
) -> Result<(), Error> {
    // Twice at most: a concurrent retry may create the user between our read
    // and our CreateUser; the second read then sees it.
    for _ in 0..2 {
        match get_user(iam, &user.name).await? {
            Some(found) if !owned(stack, &found.tags) => {
                return Err(not_ours_user(stack, &user.name, &found.tags));
            }
            Some(found) if found.path != user.path => {
                return Err(Error::NotOurs(format!(
                    "the IAM user {} is under the path {}, not {} (UserPath): move it back (aws iam update-user --user-name {} --new-path {}), then retry",
                    found.name, found.path, user.path, found.name, user.path
                )));
            }
            Some(found) => return settle_user(iam, user, &found, settings).await,
            None => {
                let created = iam
                    .create_user()
                    .user_name(&user.name)
                    .path(&user.path)
                    .set_permissions_boundary(settings.boundary.map(str::to_string))
                    .set_tags(Some(tags(stack, settings.tags)))
                    .send()
                    .await;
                match created {
                    Ok(_) => {
                        info!(user = %user, boundary = ?settings.boundary, "created the IAM user");
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

/// An existing user of this stack gets the boundary and the tags asked now.
async fn settle_user(
    iam: &Client,
    user: &UserRef,
    found: &Found,
    settings: UserSettings<'_>,
) -> Result<(), Error> {
    if let Some(boundary) = settings
        .boundary
        .filter(|b| found.boundary.as_deref() != Some(*b))
    {
        iam.put_user_permissions_boundary()
            .user_name(&found.name)
            .permissions_boundary(boundary)
            .send()
            .await
            .map_err(Error::aws("iam:PutUserPermissionsBoundary"))?;
        info!(user = %user, boundary, "set the user's permissions boundary");
    }
    let missing: Vec<Tag> = settings
        .tags
        .iter()
        .filter(|(k, v)| {
            !found
                .tags
                .iter()
                .any(|t| t.key() == k.as_str() && t.value() == v.as_str())
        })
        .map(|(k, v)| tag(k, v))
        .collect();
    if !missing.is_empty() {
        iam.tag_user()
            .user_name(&found.name)
            .set_tags(Some(missing))
            .send()
            .await
            .map_err(Error::aws("iam:TagUser"))?;
    }
    Ok(())
}

/// Whether `user` is what this physical id made: `Ok(())` when it exists
/// under its path, spelt as this id spells it, with this stack's tags;
/// otherwise why it is not ([`Removal::AlreadyGone`] or
/// [`Removal::LeftAlone`]).
pub async fn owned_by(
    iam: &Client,
    stack: &StackRef,
    user: &UserRef,
) -> Result<Result<(), Removal>, Error> {
    let Some(found) = get_user(iam, &user.name).await? else {
        return Ok(Err(Removal::AlreadyGone));
    };
    // IAM finds "defender" when asked for "Defender": a physical id names
    // the user it made, spelt as it made it, and no other.
    if !owned(stack, &found.tags) || found.path != user.path || found.name != user.name {
        info!(user = %user, current = %found.name, current_path = %found.path, "the IAM user is not this physical id's: left alone");
        return Ok(Err(Removal::LeftAlone));
    }
    Ok(Ok(()))
}

/// Deletes the user with what IAM requires gone first: attached and inline
/// policies, the stack's group, the console password. Its access keys must
/// be gone already (the caller deletes them: `access_key::delete`). Only
/// call it for a user [`owned_by`] this physical id. A group that is not
/// the stack's is not left on the user's behalf: the error names it.
pub async fn delete_user(iam: &Client, user: &UserRef) -> Result<Removal, Error> {
    let name = user.name.as_str();
    for arn in attached_policies(iam, name).await? {
        attachments::detach(iam, name, &arn).await?;
    }
    let inline = iam
        .list_user_policies()
        .user_name(name)
        .send()
        .await
        .map_err(Error::aws("iam:ListUserPolicies"))?;
    for policy in inline.policy_names() {
        let sent = iam
            .delete_user_policy()
            .user_name(name)
            .policy_name(policy)
            .send()
            .await;
        gone::removal(sent, "iam:DeleteUserPolicy")?;
    }
    let groups = iam
        .list_groups_for_user()
        .user_name(name)
        .send()
        .await
        .map_err(Error::aws("iam:ListGroupsForUser"))?;
    for g in groups.groups() {
        if !group::is_the_stacks(user, g.group_name(), g.path()) {
            return Err(Error::NotOurs(format!(
                "the user {user} is also in the group {} ({}), which this stack does not own and may not change: remove the user from it, then Delete again",
                g.group_name(),
                g.arn()
            )));
        }
        let sent = iam
            .remove_user_from_group()
            .user_name(name)
            .group_name(g.group_name())
            .send()
            .await;
        gone::removal(sent, "iam:RemoveUserFromGroup")?;
    }
    let sent = iam.delete_login_profile().user_name(name).send().await;
    gone::removal(sent, "iam:DeleteLoginProfile")?;
    let removal = gone::removal(
        iam.delete_user().user_name(name).send().await,
        "iam:DeleteUser",
    )?;
    if removal == Removal::Deleted {
        info!(user = %user, "deleted the IAM user");
    }
    Ok(removal)
}

#[cfg(test)]
mod tests {
    use super::*;

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
