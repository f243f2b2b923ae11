//! What a user can see in a world's account: users, attachments, keys,
//! policies, secrets, trails, buckets. Read with the world's own
//! credentials, never through the code under test.

use cloudapps::key::StoredKey;
use cloudapps::key_store::AWSCURRENT;
use cloudapps::names::StackRef;
use cloudapps::sensitive::Sensitive;

use crate::world::declare_secret;
use crate::{World, assert_no_leak, captured_logs, sdk_config};

impl World {
    /// The stack this world stands for, as the connector parses it.
    pub fn stack_ref(&self) -> StackRef {
        StackRef::parse(&self.stack_id, "Connector").unwrap()
    }

    /// Creates a multi-region trail that this stack did not make.
    pub async fn foreign_trail(&self, name: &str, multi_region: bool, logging: bool) -> String {
        let bucket = format!("foreign-logs-{}", self.account);
        let _ = self.s3.create_bucket().bucket(&bucket).send().await;
        let arn = self
            .cloudtrail
            .create_trail()
            .name(name)
            .s3_bucket_name(&bucket)
            .is_multi_region_trail(multi_region)
            .tags_list(
                aws_sdk_cloudtrail::types::Tag::builder()
                    .key("owner")
                    .value("security-team")
                    .build()
                    .unwrap(),
            )
            .send()
            .await
            .unwrap()
            .trail_arn()
            .unwrap()
            .to_string();
        if logging {
            self.cloudtrail
                .start_logging()
                .name(name)
                .send()
                .await
                .unwrap();
        }
        arn
    }

    /// Whether the trail `name` is logging.
    pub async fn is_logging(&self, name: &str) -> bool {
        self.cloudtrail
            .get_trail_status()
            .name(name)
            .send()
            .await
            .unwrap()
            .is_logging()
            .unwrap_or(false)
    }

    pub async fn user(&self, name: &str) -> Option<aws_sdk_iam::types::User> {
        match self.iam.get_user().user_name(name).send().await {
            Ok(out) => out.user().cloned(),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|e| e.is_no_such_entity_exception()) =>
            {
                None
            }
            Err(e) => panic!("GetUser: {e:?}"),
        }
    }

    pub async fn attached(&self, user: &str) -> Vec<String> {
        let mut v: Vec<String> = self
            .iam
            .list_attached_user_policies()
            .user_name(user)
            .send()
            .await
            .unwrap()
            .attached_policies()
            .iter()
            .map(|p| p.policy_arn().unwrap().to_string())
            .collect();
        v.sort();
        v
    }

    /// What is attached to the stack's group of `user` (`<user>-cloudapps`).
    pub async fn group_attached(&self, user: &str) -> Vec<String> {
        let out = self
            .iam
            .list_attached_group_policies()
            .group_name(format!("{user}-cloudapps"))
            .send()
            .await;
        let Ok(out) = out else { return Vec::new() };
        let mut v: Vec<String> = out
            .attached_policies()
            .iter()
            .map(|p| p.policy_arn().unwrap().to_string())
            .collect();
        v.sort();
        v
    }

    /// The groups `user` is in.
    pub async fn groups_of(&self, user: &str) -> Vec<String> {
        let out = self.iam.list_groups_for_user().user_name(user).send().await;
        let mut v: Vec<String> = out
            .unwrap()
            .groups()
            .iter()
            .map(|g| g.group_name().to_string())
            .collect();
        v.sort();
        v
    }

    pub async fn keys(&self, user: &str) -> Vec<(String, bool)> {
        self.iam
            .list_access_keys()
            .user_name(user)
            .send()
            .await
            .unwrap()
            .access_key_metadata()
            .iter()
            .map(|k| {
                (
                    k.access_key_id().unwrap().to_string(),
                    k.status() == Some(&aws_sdk_iam::types::StatusType::Active),
                )
            })
            .collect()
    }

    pub async fn policy_exists(&self, arn: &str) -> bool {
        self.iam.get_policy().policy_arn(arn).send().await.is_ok()
    }

    /// The key in this world's secret under `stage`.
    pub async fn secret_key(&self, stage: &str) -> Option<StoredKey> {
        StoredKey::parse(&Sensitive::new(
            self.secret_text(&self.secret_arn, stage).await?,
        ))
    }

    /// The text a secret holds under `stage`.
    pub async fn secret_text(&self, secret: &str, stage: &str) -> Option<String> {
        let out = self
            .secrets
            .get_secret_value()
            .secret_id(secret)
            .version_stage(stage)
            .send()
            .await
            .ok()?;
        out.secret_string().map(str::to_string)
    }

    /// A secret declared by this world's stack, as the template would.
    pub async fn declare_secret(&self, name: &str) -> String {
        declare_secret(&self.secrets, name, &self.stack_id).await
    }

    /// The customer managed policies of the account.
    pub async fn local_policies(&self) -> Vec<String> {
        let out = self
            .iam
            .list_policies()
            .scope(aws_sdk_iam::types::PolicyScopeType::Local)
            .send()
            .await
            .unwrap();
        out.policies()
            .iter()
            .filter_map(|p| p.arn().map(str::to_string))
            .collect()
    }

    pub async fn current_key(&self) -> StoredKey {
        self.secret_key(AWSCURRENT)
            .await
            .expect("a key in AWSCURRENT")
    }

    /// Who `key` authenticates as (sts:GetCallerIdentity signed with it).
    pub async fn identity_of(&self, key: &StoredKey) -> Result<String, String> {
        let sdk = sdk_config(
            &self.endpoint,
            &key.access_key_id,
            key.secret_access_key.expose(),
            None,
        )
        .await;
        aws_sdk_sts::Client::new(&sdk)
            .get_caller_identity()
            .send()
            .await
            .map(|o| o.arn().unwrap_or_default().to_string())
            .map_err(|e| format!("{}", aws_sdk_sts::error::DisplayErrorContext(e)))
    }

    pub async fn trail_names(&self) -> Vec<String> {
        let mut v: Vec<String> = self
            .cloudtrail
            .describe_trails()
            .send()
            .await
            .unwrap()
            .trail_list()
            .iter()
            .map(|t| t.name().unwrap().to_string())
            .collect();
        v.sort();
        v
    }

    pub async fn bucket_exists(&self, bucket: &str) -> bool {
        self.s3.head_bucket().bucket(bucket).send().await.is_ok()
    }

    /// Every secret value this world's secret ever held (all versions).
    pub async fn all_secret_values(&self) -> Vec<String> {
        let mut values = Vec::new();
        let versions = self
            .secrets
            .list_secret_version_ids()
            .secret_id(&self.secret_arn)
            .include_deprecated(true)
            .send()
            .await
            .unwrap();
        for v in versions.versions() {
            if let Ok(out) = self
                .secrets
                .get_secret_value()
                .secret_id(&self.secret_arn)
                .version_id(v.version_id().unwrap())
                .send()
                .await
            {
                if let Some(s) = out.secret_string() {
                    values.push(s.to_string());
                    if let Some(k) = StoredKey::parse(&Sensitive::new(s)) {
                        values.push(k.secret_access_key.expose().to_string());
                    }
                }
            }
        }
        values
    }

    /// Adds `text` (a function's output, a log line), named `name`, to
    /// what the leak scan reads.
    pub fn keep_output(&self, name: &str, text: String) {
        self.extra_output.lock().unwrap().push((name.into(), text));
    }

    /// The leak scan: no secret access key this world's secret ever held,
    /// and no ResponseURL signature, appears in the logs, in any response
    /// sent to CloudFormation, or in the output of a function process.
    pub async fn assert_no_leaks(&self) {
        let mut secrets = self.all_secret_values().await;
        secrets.push(self.credentials.1.clone());
        // Everything secret the portal saw: its tokens, the Entra client
        // secret and access tokens, every key handed to it.
        if let Some(portal) = &self.portal {
            secrets.extend(portal.secrets_seen());
        }
        if !self.portal_secret.is_empty() {
            if let Some(text) = self.secret_text(&self.portal_secret, AWSCURRENT).await {
                secrets.push(text);
            }
        }
        let caught = self.catcher.all();
        let bodies: String = caught
            .iter()
            .map(|c| c.body.clone())
            .collect::<Vec<_>>()
            .join("\n");
        let logs = captured_logs();
        let mut signatures: Vec<String> = caught
            .iter()
            .filter_map(|c| c.path.split("X-Amz-Signature=").nth(1).map(str::to_string))
            .collect();
        signatures.dedup();
        let extra = self.extra_output.lock().unwrap().clone();
        let mut texts: Vec<(&str, &str)> =
            vec![("the logs", &logs), ("a CloudFormation response", &bodies)];
        texts.extend(extra.iter().map(|(n, t)| (n.as_str(), t.as_str())));
        assert_no_leak(&secrets, &texts);
        let no_body_texts: Vec<(&str, &str)> = texts
            .iter()
            .filter(|(n, _)| *n != "a CloudFormation response")
            .copied()
            .collect();
        assert_no_leak(&signatures, &no_body_texts);
    }
}
