//! Delete: what the physical id made goes, whatever the portal says or does.
//! The portal is asked first (disable the instance while it holds this
//! id's key), within part of the time left; a portal that refuses, fails or
//! does not answer is logged and told through the topic, and the AWS side
//! is removed all the same: deleting the key already cuts the portal off.
//! Never removed: what the current physical id uses, an instance this stack
//! took over, the log bucket.

use std::time::{Duration, Instant};

use tracing::{info, warn};

use super::Connector;
use crate::access_key;
use crate::aws::Aws;
use crate::cfn::Request;
use crate::error::Error;
use crate::gone::Removal;
use crate::iam_user;
use crate::key_store;
use crate::names::{StackRef, UserRef, secret_tags};
use crate::portal::Release;
use crate::properties::Spec;
use crate::trail;

/// The portal gets at most this share of the time left, and this long.
const PORTAL_SHARE: u32 = 2;
const PORTAL_MAX: Duration = Duration::from_secs(120);

impl Connector<'_> {
    /// Deletes what `physical_id` made; `properties` are the ones it was made with.
    pub(super) async fn delete(
        &self,
        request: &Request,
        physical_id: &str,
        properties: &serde_json::Value,
    ) -> Result<(), Error> {
        let aws = &self.deps.aws;
        let stack = &request.stack;
        let Some(user) = stack.user_from_physical_id(physical_id) else {
            info!(
                physical_id,
                "the physical id names nothing this resource made: nothing to delete"
            );
            return Ok(());
        };
        if let Ok(spec) = Spec::parse(properties, stack) {
            self.release(request, &spec, &user).await;
        }
        let trail = trail::delete_own_trail(&aws.cloudtrail, stack, &user).await?;
        let user_removal = match iam_user::owned_by(&aws.iam, stack, &user).await? {
            Ok(()) => {
                for key in access_key::list(&aws.iam, &user.name).await? {
                    access_key::delete(&aws.iam, &user.name, &key.id).await?;
                }
                iam_user::delete_user(&aws.iam, &user).await?
            }
            Err(removal) => removal,
        };
        let group = match user_removal {
            Removal::LeftAlone => Removal::LeftAlone,
            _ => iam_user::group::delete_group(&aws.iam, &user).await?,
        };
        let policy = iam_user::delete_policy(&aws.iam, stack, &user).await?;
        info!(
            physical_id,
            user = ?user_removal,
            group = ?group,
            policy = ?policy,
            trail = ?trail,
            "delete done (log bucket kept)"
        );
        Ok(())
    }

    /// The portal side of a Delete, never in the way of the rest: what it
    /// could not do is logged and told.
    async fn release(&self, request: &Request, spec: &Spec, user: &UserRef) {
        let aws = &self.deps.aws;
        let stack = &request.stack;
        // The instance this stack took over is read from its secret (gone
        // with the stack at the very end: still there now).
        let adopted = match key_store::describe(&aws.secrets, &spec.secret_id).await {
            Ok(secret) => secret
                .tag(secret_tags::ADOPTED_INSTANCE)
                .map(str::to_string),
            Err(error) => {
                warn!(%error, "the secret could not be read: no instance counts as taken over");
                None
            }
        };
        let release = Release {
            name: &spec.connector_name,
            user_arn: &user.arn,
            account: &stack.account,
            adopted: adopted.as_deref(),
        };
        let left = request.deadline.saturating_duration_since(Instant::now());
        let deadline = Instant::now() + (left / PORTAL_SHARE).min(PORTAL_MAX);
        let released = self
            .deps
            .portal
            .release(release, own_keys(aws, stack, user), deadline)
            .await;
        match released {
            Ok(done) => info!(user = %user, portal = %done, "portal released"),
            Err(error) => {
                warn!(%error, user = %user, "the portal could not be told: the AWS side is deleted all the same");
                let subject = format!(
                    "Defender for Cloud Apps: disable the AWS instance {:?} by hand",
                    spec.connector_name
                );
                let message = format!(
                    "The connector of AWS account {account} was deleted (stack {stack_name}): the IAM user {user} and its keys are gone, so the portal can no longer sign in with them.\n\
                     \n\
                     What could not be done in the portal: disable the Amazon Web Services instance {name:?}.\n\
                     Why: {error}\n\
                     \n\
                     What to do: in the Microsoft Defender portal, open Settings > Cloud Apps > Connected apps > App Connectors, and disable or remove the instance {name:?}, unless it was connected again since.\n",
                    account = stack.account,
                    stack_name = stack.stack_name,
                    name = spec.connector_name,
                );
                self.deps.tell(&subject, &message).await;
            }
        }
    }
}

/// The ids of the keys of `user` when it is this physical id's user.
async fn own_keys(
    aws: &Aws,
    stack: &StackRef,
    user: &UserRef,
) -> Result<Option<Vec<String>>, Error> {
    match iam_user::owned_by(&aws.iam, stack, user).await? {
        Ok(()) => {
            let keys = access_key::list(&aws.iam, &user.name).await?;
            Ok(Some(keys.into_iter().map(|k| k.id).collect()))
        }
        Err(_) => Ok(None),
    }
}
