//! Store the key: replaces "download the .csv with the access key". The key
//! goes straight from CreateAccessKey into the Secrets Manager secret, as
//! the JSON of [`StoredKey`], and exists nowhere else.

use std::collections::HashMap;

use aws_sdk_secretsmanager::Client;
use aws_sdk_secretsmanager::types::Tag;

use crate::error::Error;
use crate::gone;
use crate::key::StoredKey;
use crate::names::{self, StackRef};
use crate::sensitive::Sensitive;

pub const AWSCURRENT: &str = "AWSCURRENT";
pub const AWSPENDING: &str = "AWSPENDING";
pub const AWSPREVIOUS: &str = "AWSPREVIOUS";

/// What the connector reads about the secret before writing to it.
#[derive(Clone, Debug)]
pub struct SecretInfo {
    pub arn: String,
    pub tags: Vec<(String, String)>,
    pub stages: HashMap<String, Vec<String>>,
    pub rotation_enabled: bool,
    /// When the last rotation finished, in seconds since the Unix epoch.
    pub last_rotated: Option<i64>,
    /// When the secret was created (seconds since the Unix epoch).
    pub created: Option<i64>,
}

impl SecretInfo {
    /// The value of tag `key`, if any.
    pub fn tag(&self, key: &str) -> Option<&str> {
        self.tags
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// The version holding `stage`, if any.
    pub fn version_with(&self, stage: &str) -> Option<&str> {
        self.stages
            .iter()
            .find(|(_, stages)| stages.iter().any(|s| s == stage))
            .map(|(v, _)| v.as_str())
    }
}

pub async fn describe(secrets: &Client, secret_id: &str) -> Result<SecretInfo, Error> {
    let out = secrets
        .describe_secret()
        .secret_id(secret_id)
        .send()
        .await
        .map_err(Error::aws("secretsmanager:DescribeSecret"))?;
    Ok(SecretInfo {
        arn: out.arn().unwrap_or(secret_id).to_string(),
        tags: out
            .tags()
            .iter()
            .map(|t| {
                (
                    t.key().unwrap_or_default().to_string(),
                    t.value().unwrap_or_default().to_string(),
                )
            })
            .collect(),
        stages: out.version_ids_to_stages().cloned().unwrap_or_default(),
        rotation_enabled: out.rotation_enabled().unwrap_or(false),
        last_rotated: out.last_rotated_date().map(|d| d.secs()),
        created: out.created_date().map(|d| d.secs()),
    })
}

/// Refuses a secret that belongs to another stack: one CloudFormation made
/// for another stack, or one another connector already writes to.
pub fn check_owner(info: &SecretInfo, stack: &StackRef) -> Result<(), Error> {
    for (key, value) in &info.tags {
        if (key == names::TAG_CFN_STACK_ID || key == names::TAG_STACK_ID)
            && value != &stack.stack_id
        {
            return Err(Error::NotOurs(format!(
                "the secret {} belongs to another stack ({key} = {value}); give this stack its own secret",
                info.arn
            )));
        }
    }
    Ok(())
}

/// Marks the secret as this stack's (so a second stack cannot take it
/// over), with `more` tags (what the rotation needs to know: the resource,
/// the user, the instance). Writes only what differs.
pub async fn tag_owner(
    secrets: &Client,
    info: &SecretInfo,
    stack: &StackRef,
    more: &[(&str, &str)],
) -> Result<(), Error> {
    let wanted: Vec<(&str, &str)> = [(names::TAG_STACK_ID, stack.stack_id.as_str())]
        .into_iter()
        .chain(more.iter().copied())
        .collect();
    let missing: Vec<Tag> = wanted
        .iter()
        .filter(|(k, v)| info.tag(k) != Some(*v))
        .map(|(k, v)| Tag::builder().key(*k).value(*v).build())
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    secrets
        .tag_resource()
        .secret_id(&info.arn)
        .set_tags(Some(missing))
        .send()
        .await
        .map_err(Error::aws("secretsmanager:TagResource"))?;
    Ok(())
}

/// Sets the tags `pairs` on the secret (replacing their values).
pub async fn set_tags(secrets: &Client, arn: &str, pairs: &[(&str, &str)]) -> Result<(), Error> {
    let tags: Vec<Tag> = pairs
        .iter()
        .map(|(k, v)| Tag::builder().key(*k).value(*v).build())
        .collect();
    secrets
        .tag_resource()
        .secret_id(arn)
        .set_tags(Some(tags))
        .send()
        .await
        .map_err(Error::aws("secretsmanager:TagResource"))?;
    Ok(())
}

/// Removes the tags `keys` from the secret (done when they are not there).
pub async fn remove_tags(secrets: &Client, arn: &str, keys: &[&str]) -> Result<(), Error> {
    secrets
        .untag_resource()
        .secret_id(arn)
        .set_tag_keys(Some(keys.iter().map(|k| k.to_string()).collect()))
        .send()
        .await
        .map_err(Error::aws("secretsmanager:UntagResource"))?;
    Ok(())
}

/// The key held by version `version_id` (with `stage` when given).
pub async fn read_version(
    secrets: &Client,
    secret_arn: &str,
    version_id: &str,
    stage: Option<&str>,
) -> Result<Option<StoredKey>, Error> {
    let got = secrets
        .get_secret_value()
        .secret_id(secret_arn)
        .version_id(version_id)
        .set_version_stage(stage.map(str::to_string))
        .send()
        .await;
    parse_read(got)
}

/// Every version of the secret, labelled or not: (version id, stages,
/// when it was created in seconds since the Unix epoch).
pub async fn versions(
    secrets: &Client,
    secret_arn: &str,
) -> Result<Vec<(String, Vec<String>, Option<i64>)>, Error> {
    let out = secrets
        .list_secret_version_ids()
        .secret_id(secret_arn)
        .include_deprecated(true)
        .send()
        .await
        .map_err(Error::aws("secretsmanager:ListSecretVersionIds"))?;
    Ok(out
        .versions()
        .iter()
        .filter_map(|v| {
            Some((
                v.version_id()?.to_string(),
                v.version_stages().to_vec(),
                v.created_date().map(|d| d.secs()),
            ))
        })
        .collect())
}

/// Moves `stage` to version `to` (removing it from `from`), or only removes
/// it from `from` when `to` is `None`.
pub async fn move_stage(
    secrets: &Client,
    secret_arn: &str,
    stage: &str,
    to: Option<&str>,
    from: Option<&str>,
) -> Result<(), Error> {
    secrets
        .update_secret_version_stage()
        .secret_id(secret_arn)
        .version_stage(stage)
        .set_move_to_version_id(to.map(str::to_string))
        .set_remove_from_version_id(from.map(str::to_string))
        .send()
        .await
        .map_err(Error::aws("secretsmanager:UpdateSecretVersionStage"))?;
    Ok(())
}

/// The key held under `stage`; `None` when there is no such version or it
/// does not hold a key in our format.
pub async fn read(
    secrets: &Client,
    secret_arn: &str,
    stage: &str,
) -> Result<Option<StoredKey>, Error> {
    let got = secrets
        .get_secret_value()
        .secret_id(secret_arn)
        .version_stage(stage)
        .send()
        .await;
    parse_read(got)
}

fn parse_read(
    got: Result<
        aws_sdk_secretsmanager::operation::get_secret_value::GetSecretValueOutput,
        aws_sdk_secretsmanager::error::SdkError<
            aws_sdk_secretsmanager::operation::get_secret_value::GetSecretValueError,
            aws_sdk_secretsmanager::config::http::HttpResponse,
        >,
    >,
) -> Result<Option<StoredKey>, Error> {
    match got {
        Ok(out) => Ok(out
            .secret_string()
            .and_then(|s| StoredKey::parse(&Sensitive::new(s)))),
        Err(e) if gone::is_gone(&e) => Ok(None),
        // The answer carries the secret: show the error code only.
        Err(e) => Err(Error::aws_code_only("secretsmanager:GetSecretValue")(e)),
    }
}

/// Writes `key` as a new version staged `stages` (AWSCURRENT moves there and
/// AWSPREVIOUS follows, as Secrets Manager does). Idempotent per key, or
/// per rotation when `version` is the rotation's token.
pub async fn write(
    secrets: &Client,
    secret_arn: &str,
    key: &StoredKey,
    version: Option<&str>,
    stages: &[&str],
) -> Result<String, Error> {
    let out = secrets
        .put_secret_value()
        .secret_id(secret_arn)
        .client_request_token(version.map_or_else(|| key.version_token(), str::to_string))
        .secret_string(key.to_secret_string().expose())
        .set_version_stages(Some(stages.iter().map(|s| s.to_string()).collect()))
        .send()
        .await
        .map_err(Error::aws_code_only("secretsmanager:PutSecretValue"))?;
    Ok(out.version_id().unwrap_or_default().to_string())
}
