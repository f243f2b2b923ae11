//! Create and Update: converge to the properties. The secret checked, the
//! CloudTrail coverage, the IAM user (with its boundary), its policy and its
//! group, one proven key in the secret, the pre-flight of that key, the
//! hand-over to the portal. Each step is idempotent, so a retried event
//! ends in the same state.

use std::time::Duration;

use tracing::info;

use super::Connector;
use crate::access_key;
use crate::cfn::{Data, Request};
use crate::error::Error;
use crate::hub_tags;
use crate::iam_user::{self, UserSettings};
use crate::key::StoredKey;
use crate::key_store::{self, AWSCURRENT, AWSPENDING, AWSPREVIOUS, SecretInfo};
use crate::lifecycle;
use crate::names::{self, UserRef, secret_tags};
use crate::portal::{Instance, Ownership, RemoteInstance, Since};
use crate::properties::{Connection, Spec};
use crate::retirement::HandedOver;
use crate::text::truncate;
use crate::time;
use crate::trail;

/// Time kept, after the portal's step, for what follows it before the
/// handler's deadline: the instance's id on the secret and the answer. A
/// test still running when the portal's time is up is then answered
/// "running", never cut off as a timeout.
const AFTER_THE_PORTAL: Duration = Duration::from_secs(2);

/// The key in AWSCURRENT once converged, and whether it changed.
struct Current {
    key: StoredKey,
    fresh: bool,
}

impl Connector<'_> {
    /// `previous`: the properties before an Update.
    pub(super) async fn converge(
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
            &spec.trail,
            &user,
        ))
        .await?;

        let settings = UserSettings {
            boundary: spec.user_boundary.as_deref(),
            tags: spec.tags(),
        };
        iam_user::ensure_user(&aws.iam, stack, &user, settings).await?;
        let policy_arn = iam_user::ensure_policy(&aws.iam, stack, &user).await?;
        iam_user::group::converge(
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
        let mut tags: Vec<(&str, &str)> = vec![
            (names::TAG_LOGICAL_ID, &stack.logical_id),
            (secret_tags::USER, &user.arn),
            (secret_tags::INSTANCE, &spec.connector_name),
            (secret_tags::CONNECTIONS, &connections_tag),
        ];
        tags.extend(spec.tags().iter().map(|(k, v)| (k.as_str(), v.as_str())));
        key_store::tag_owner(&aws.secrets, &secret, stack, &tags).await?;
        let current = Box::pin(self.ensure_key(&user, &secret)).await?;
        let key = &current.key;
        if secret.tag(hub_tags::KEY_ID) != Some(key.access_key_id.as_str()) {
            // Which key the portal should hold: what an organization hub reads.
            let id = [(hub_tags::KEY_ID, key.access_key_id.as_str())];
            key_store::set_tags(&aws.secrets, &secret.arn, &id).await?;
        }
        let checked = lifecycle::prove(self.deps, key, &user, stack, request.deadline).await?;
        if let Some(mut handed) = HandedOver::of(&secret, &key.access_key_id) {
            // We just signed with the key a person is to put in place: that
            // use is ours, not evidence of theirs.
            handed.at = i64::try_from(time::now_millis() / 1000).unwrap_or(i64::MAX);
            let value = handed.tag_value();
            key_store::set_tags(
                &aws.secrets,
                &secret.arn,
                &[(secret_tags::HANDED_OVER, &value)],
            )
            .await?;
        }
        let changed = current.fresh
            || previous.is_none_or(|p| {
                p.connector_name != spec.connector_name || p.connections != spec.connections
            });
        let since = if changed {
            Since::Changed
        } else {
            Since::Unchanged
        };
        let issued = self.issued_keys(&user, &secret).await?;
        let instance = Instance {
            name: &spec.connector_name,
            previous_name: previous.map(|p| p.connector_name.as_str()),
            connections: &connections,
            secret_arn: &secret.arn,
            user_arn: &user.arn,
            account: &stack.account,
            region: &stack.region,
            owner: Ownership {
                keys: &issued,
                instance_id: secret.tag(secret_tags::PORTAL_INSTANCE),
                adopt: spec.adopt_existing_instance,
            },
        };
        // Recorded before the take-over is written: a rollback then knows
        // the instance is not to be disabled.
        let adopting = async |found: &RemoteInstance| {
            key_store::set_tags(
                &aws.secrets,
                &secret.arn,
                &[
                    (secret_tags::ADOPTED_INSTANCE, &found.id),
                    (secret_tags::PORTAL_INSTANCE, &found.id),
                ],
            )
            .await
        };
        let handed = self
            .deps
            .portal
            .connect(
                instance,
                key,
                since,
                &checked,
                adopting,
                time::sub(request.deadline, AFTER_THE_PORTAL),
            )
            .await?;
        if !handed.instance.is_empty()
            && secret.tag(secret_tags::PORTAL_INSTANCE) != Some(handed.instance.as_str())
        {
            let id = [(secret_tags::PORTAL_INSTANCE, handed.instance.as_str())];
            key_store::set_tags(&aws.secrets, &secret.arn, &id).await?;
        }

        let mut data = Data::new();
        data.insert("UserArn".into(), user.arn.clone());
        data.insert("UserName".into(), user.name.clone());
        data.insert("PolicyArn".into(), policy_arn);
        data.insert("GroupArn".into(), user.group_arn(stack));
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

    /// The keys this stack issued that an instance may hold: the user's, and
    /// those the secret holds in its stages.
    async fn issued_keys(&self, user: &UserRef, secret: &SecretInfo) -> Result<Vec<String>, Error> {
        let aws = &self.deps.aws;
        let mut keys: Vec<String> = access_key::list(&aws.iam, &user.name)
            .await?
            .into_iter()
            .map(|k| k.id)
            .collect();
        for stage in [AWSCURRENT, AWSPENDING, AWSPREVIOUS] {
            if secret.version_with(stage).is_some() {
                if let Some(k) = key_store::read(&aws.secrets, &secret.arn, stage).await? {
                    keys.push(k.access_key_id);
                }
            }
        }
        Ok(keys)
    }

    /// One working key for `user` in the secret's AWSCURRENT: the one already
    /// there when it is the user's and active; else the previous one, still
    /// active, which the portal may hold (put back in AWSCURRENT); else a new
    /// one. Keys nobody can use (in no stage: left by a crash between
    /// CreateAccessKey and PutSecretValue, say) are deleted first, which
    /// also keeps room under IAM's limit of two keys.
    async fn ensure_key(&self, user: &UserRef, secret: &SecretInfo) -> Result<Current, Error> {
        let aws = &self.deps.aws;
        let keys = access_key::list(&aws.iam, &user.name).await?;
        let active = |k: &StoredKey| {
            k.belongs_to(&user.name) && keys.iter().any(|m| m.id == k.access_key_id && m.active)
        };
        let current = key_store::read(&aws.secrets, &secret.arn, AWSCURRENT).await?;
        if let Some(key) = current.filter(|k| active(k)) {
            return Ok(Current { key, fresh: false });
        }
        let staged = |stage: &'static str| async move {
            if secret.version_with(stage).is_none() {
                return Ok(None);
            }
            key_store::read(&aws.secrets, &secret.arn, stage).await
        };
        let pending = staged(AWSPENDING)
            .await?
            .filter(|k| k.belongs_to(&user.name));
        let previous = staged(AWSPREVIOUS).await?.filter(|k| active(k));
        let keep: Vec<&str> = [&pending, &previous]
            .into_iter()
            .flatten()
            .map(|k| k.access_key_id.as_str())
            .collect();
        for stale in keys.iter().filter(|m| !keep.contains(&m.id.as_str())) {
            access_key::delete(&aws.iam, &user.name, &stale.id).await?;
        }
        if let (Some(key), Some(version)) = (previous, secret.version_with(AWSPREVIOUS)) {
            // The portal may well hold it: it goes back to AWSCURRENT.
            let from = secret.version_with(AWSCURRENT);
            key_store::move_stage(&aws.secrets, &secret.arn, AWSCURRENT, Some(version), from)
                .await?;
            info!(user = %user, access_key_id = %key.access_key_id, "AWSCURRENT was unusable: the previous key, still active, is current again");
            return Ok(Current { key, fresh: true });
        }
        let key = lifecycle::issue(self.deps, user, &secret.arn, None, &[AWSCURRENT]).await?;
        Ok(Current { key, fresh: true })
    }
}
