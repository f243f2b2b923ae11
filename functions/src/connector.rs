//! The custom resource `Custom::CloudAppsConnector`: in one account, what
//! the Defender for Cloud Apps guide has an administrator do by hand on the
//! AWS side, as Create, Update and Delete.
//!
//! - Create/Update converge to the properties: secret checked, CloudTrail
//!   coverage, IAM user and policy, one proven key in the secret, the
//!   pre-flight of that key (unless `PORTAL_MODE=off`), hand-over to the
//!   portal (connect and test, or a hand-off notice). Each step is
//!   idempotent, so a retried event ends in the same state.
//! - The physical id is the user's ARN: a change of `UserName`/`UserPath`
//!   is a replacement, and CloudFormation then deletes the old id.
//! - Delete first stops the portal from using the key (disables the
//!   instance while it holds this id's key; never one a replacement now
//!   uses), then removes what the physical id made (user, keys, attachments,
//!   policy, the stack's trail if this id uses it), keeps the log bucket and
//!   never touches what the current id uses.

use lambda_runtime::LambdaEvent;
use serde_json::Value;
use tracing::info;

use crate::access_key;
use crate::cfn::{self, Action, Answer, CustomResource, Data, Invocation, Request};
use crate::config::Settings;
use crate::deps::Deps;
use crate::error::Error;
use crate::gone::Removal;
use crate::iam_user;
use crate::key::StoredKey;
use crate::key_store::{self, AWSCURRENT, AWSPENDING, SecretInfo};
use crate::lifecycle;
use crate::names::{self, StackRef, UserRef};
use crate::portal::{Instance, Release, Since};
use crate::properties::{Connection, Spec};
use crate::text::truncate;
use crate::trail;

pub const RESOURCE_TYPE: &str = "Custom::CloudAppsConnector";

/// The connector resource, bound to the function's clients.
pub struct Connector<'a> {
    deps: &'a Deps,
}

impl<'a> Connector<'a> {
    pub fn new(deps: &'a Deps) -> Self {
        Self { deps }
    }
}

/// The Lambda entry point: answers CloudFormation for one event.
///
/// `deps` is what init built, or why it could not: a misconfigured function
/// still answers every event FAILED with the reason (instead of leaving the
/// stack waiting), and reports the invocation as an error.
pub async fn handle_lambda_event(
    deps: Result<&Deps, &Error>,
    event: LambdaEvent<Value>,
) -> Result<Answer, lambda_runtime::Error> {
    let log_stream = Some(event.context.env_config.log_stream.clone()).filter(|s| !s.is_empty());
    match deps {
        Ok(deps) => {
            let invocation = Invocation::from_epoch_millis(
                event.context.deadline,
                deps.settings.deadline_margin,
                log_stream,
            );
            Ok(cfn::serve(
                &Connector::new(deps),
                &deps.http,
                event.payload,
                &invocation,
            )
            .await?)
        }
        Err(error) => {
            let margin = Settings::default().deadline_margin;
            let invocation =
                Invocation::from_epoch_millis(event.context.deadline, margin, log_stream);
            // Built once, as Deps would have: this path serves every event.
            static HTTP: std::sync::OnceLock<reqwest::Client> = std::sync::OnceLock::new();
            let http = HTTP.get_or_init(reqwest::Client::new);
            cfn::serve(&Misconfigured(error), http, event.payload, &invocation).await?;
            Err(format!("the function is misconfigured: {error}").into())
        }
    }
}

/// Stands in for the connector when init failed: every request fails with why.
struct Misconfigured<'a>(&'a Error);

impl CustomResource for Misconfigured<'_> {
    type Error = String;

    fn resource_type(&self) -> &str {
        RESOURCE_TYPE
    }

    fn physical_id(&self, request: &Request) -> String {
        request.fallback_physical_id()
    }

    async fn handle(&self, _request: &Request, _physical_id: &str) -> Result<Data, String> {
        Err(format!(
            "the connector function is misconfigured: {}",
            self.0
        ))
    }
}

impl CustomResource for Connector<'_> {
    type Error = Error;

    fn resource_type(&self) -> &str {
        RESOURCE_TYPE
    }

    fn physical_id(&self, request: &Request) -> String {
        match (
            &request.action,
            Spec::parse(&request.properties, &request.stack),
        ) {
            (Action::Delete { physical_id }, _) => physical_id.clone(),
            (_, Ok(spec)) => request.stack.user(&spec.user_path, &spec.user_name).arn,
            (_, Err(_)) => request.fallback_physical_id(),
        }
    }

    async fn handle(&self, request: &Request, physical_id: &str) -> Result<Data, Error> {
        let stack = &request.stack;
        match &request.action {
            Action::Delete { physical_id } => {
                Box::pin(self.delete(request, physical_id, &request.properties)).await?;
                Ok(Data::new())
            }
            Action::Create => {
                let spec =
                    Spec::parse(&request.properties, stack).map_err(Error::InvalidProperties)?;
                Box::pin(self.converge(request, &spec, None)).await
            }
            Action::Update {
                physical_id: current,
                old_properties,
            } => {
                let spec =
                    Spec::parse(&request.properties, stack).map_err(Error::InvalidProperties)?;
                let previous = Spec::parse(old_properties, stack).ok();
                let data = Box::pin(self.converge(request, &spec, previous.as_ref())).await?;
                // A rollback after a failed Update comes back to the id
                // CloudFormation holds, with the failed properties as "old":
                // what that attempt made under another id is cleaned here,
                // since no Delete will ever name it.
                if current == physical_id {
                    if let Ok(old) = Spec::parse(old_properties, stack) {
                        let abandoned = stack.user(&old.user_path, &old.user_name);
                        if abandoned.arn != physical_id {
                            info!(abandoned = %abandoned, "cleaning up what a failed update made");
                            Box::pin(self.delete(request, &abandoned.arn, old_properties)).await?;
                        }
                    }
                }
                Ok(data)
            }
        }
    }
}

impl Connector<'_> {
    /// `previous`: the properties before an Update.
    async fn converge(
        &self,
        request: &Request,
        spec: &Spec,
        previous: Option<&Spec>,
    ) -> Result<Data, Error> {
        let aws = &self.deps.aws;
        let stack = &request.stack;
        let user = stack.user(&spec.user_path, &spec.user_name);

        // Read-only checks first: a secret or a user that is not ours is refused
        // before anything is made.
        let secret = key_store::describe(&aws.secrets, &spec.secret_id).await?;
        key_store::check_owner(&secret, stack)?;
        iam_user::check_user_free(&aws.iam, stack, &user.name).await?;

        let coverage = Box::pin(trail::converge(
            aws,
            stack,
            spec.cloudtrail,
            spec.trail_bucket.as_deref(),
            &user,
        ))
        .await?;

        iam_user::ensure_user(&aws.iam, stack, &user).await?;
        let policy_arn = iam_user::ensure_policy(&aws.iam, stack, &user).await?;
        iam_user::converge_attachments(
            &aws.iam,
            stack,
            &user,
            &policy_arn,
            spec.has(Connection::SecurityConfiguration),
        )
        .await?;

        let connections: Vec<&str> = spec.connections.iter().map(|c| c.as_str()).collect();
        let connections_tag = connections.join(" ");
        // What the rotation needs to know, on the secret it rotates.
        key_store::tag_owner(
            &aws.secrets,
            &secret,
            stack,
            &[
                (names::TAG_LOGICAL_ID, &stack.logical_id),
                (lifecycle::TAG_USER, &user.arn),
                (lifecycle::TAG_INSTANCE, &spec.connector_name),
                (lifecycle::TAG_CONNECTIONS, &connections_tag),
            ],
        )
        .await?;
        let (key, fresh) = Box::pin(self.ensure_key(&user, &secret)).await?;
        let checked = lifecycle::prove(self.deps, &key, &user, stack, request.deadline).await?;
        let changed = fresh
            || previous.is_none_or(|p| {
                p.connector_name != spec.connector_name || p.connections != spec.connections
            });
        let since = if changed {
            Since::Changed
        } else {
            Since::Unchanged
        };
        let instance = Instance {
            name: &spec.connector_name,
            previous_name: previous.map(|p| p.connector_name.as_str()),
            connections: &connections,
            secret_arn: &secret.arn,
            user_arn: &user.arn,
            account: &stack.account,
            region: &stack.region,
        };
        let handed = self
            .deps
            .portal
            .connect(instance, &key, since, &checked, request.deadline)
            .await?;

        let mut data = Data::new();
        data.insert("UserArn".into(), user.arn.clone());
        data.insert("UserName".into(), user.name.clone());
        data.insert("PolicyArn".into(), policy_arn);
        data.insert("SecretArn".into(), secret.arn.clone());
        data.insert("ConnectorName".into(), spec.connector_name.clone());
        data.insert("Connections".into(), spec.connections_text());
        data.insert("CloudTrail".into(), spec.cloudtrail.as_str().into());
        data.insert("CloudTrailCoverage".into(), coverage.how.as_str().into());
        data.insert("TrailArn".into(), coverage.trail_arn);
        data.insert("CloudTrailDetail".into(), truncate(&coverage.detail, 600));
        data.insert("Preflight".into(), truncate(&checked, 300));
        data.insert("PortalStatus".into(), handed.status);
        data.insert("PortalInstance".into(), handed.instance);
        data.insert("PortalTest".into(), truncate(&handed.test, 300));
        Ok(data)
    }

    /// One working key for `user` in the secret's AWSCURRENT: the one already
    /// there when it is the user's and active, otherwise a new one. Keys
    /// nobody can use (not in AWSCURRENT nor AWSPENDING, e.g. left by a crash
    /// between CreateAccessKey and PutSecretValue) are deleted first, which
    /// also keeps room under IAM's limit of two keys. `true` with a key
    /// made now; the caller proves it.
    async fn ensure_key(
        &self,
        user: &UserRef,
        secret: &SecretInfo,
    ) -> Result<(StoredKey, bool), Error> {
        let aws = &self.deps.aws;
        let keys = access_key::list(&aws.iam, &user.name).await?;
        let current = key_store::read(&aws.secrets, &secret.arn, AWSCURRENT).await?;
        let usable = current.filter(|k| {
            k.user_name == user.name && keys.iter().any(|m| m.id == k.access_key_id && m.active)
        });
        let fresh = usable.is_none();
        let key = match usable {
            Some(key) => key,
            None => {
                let pending = if secret.version_with(AWSPENDING).is_some() {
                    key_store::read(&aws.secrets, &secret.arn, AWSPENDING)
                        .await?
                        .filter(|k| k.user_name == user.name)
                        .map(|k| k.access_key_id)
                } else {
                    None
                };
                for stale in keys.iter().filter(|m| Some(&m.id) != pending.as_ref()) {
                    access_key::delete(&aws.iam, &user.name, &stale.id).await?;
                }
                lifecycle::issue(self.deps, user, &secret.arn, None, &[AWSCURRENT]).await?
            }
        };
        Ok((key, fresh))
    }

    /// Deletes what `physical_id` made; `properties` are the ones it was made with.
    async fn delete(
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
        // The portal first: if it fails, nothing is gone yet and a retry can
        // still tell which instance holds this user's key.
        if let Ok(spec) = Spec::parse(properties, stack) {
            let release = Release {
                name: &spec.connector_name,
                user_arn: &user.arn,
                account: &stack.account,
            };
            let done = self
                .deps
                .portal
                .release(release, own_keys(aws, stack, &user), request.deadline)
                .await?;
            info!(physical_id, portal = %done, "portal released");
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
        let policy = iam_user::delete_policy(&aws.iam, stack, &user).await?;
        info!(
            physical_id,
            user = ?user_removal,
            policy = ?policy,
            trail = ?trail,
            "delete done (log bucket kept)"
        );
        Ok(())
    }
}

/// The ids of the keys of `user` when it is this physical id's user.
async fn own_keys(
    aws: &crate::aws::Aws,
    stack: &StackRef,
    user: &UserRef,
) -> Result<Option<Vec<String>>, Error> {
    match iam_user::owned_by(&aws.iam, stack, user).await? {
        Ok(()) => {
            let keys = access_key::list(&aws.iam, &user.name).await?;
            Ok(Some(keys.into_iter().map(|k| k.id).collect()))
        }
        Err(Removal::AlreadyGone | Removal::LeftAlone | Removal::Deleted) => Ok(None),
    }
}
