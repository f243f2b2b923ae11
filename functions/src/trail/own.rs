//! The stack's own trail: created when no trail covers the account
//! (`CloudTrail: Ensure`), marked with the physical id that uses it, started
//! again by the health check's repair, deleted only by that physical id.
//! A trail the stack did not create is never written to.

use aws_sdk_cloudtrail::Client;
use aws_sdk_cloudtrail::types::{EventSelector, ReadWriteType, Tag};
use tracing::info;

use super::{OwnTrail, bucket, survey};
use crate::aws::Aws;
use crate::error::Error;
use crate::gone::{self, Removal};
use crate::names::{self, StackRef, UserRef};

/// The trail's tags; `None` when there is no trail by that name here.
async fn trail_tags(ct: &Client, name: &str) -> Result<Option<(String, Vec<Tag>)>, Error> {
    let sent = ct.get_trail().name(name).send().await;
    let trail = gone::unless_gone(sent, "cloudtrail:GetTrail")?
        .and_then(|out| out.trail().and_then(|t| t.trail_arn()).map(str::to_string));
    let Some(arn) = trail else { return Ok(None) };
    let out = ct
        .list_tags()
        .resource_id_list(&arn)
        .send()
        .await
        .map_err(Error::aws("cloudtrail:ListTags"))?;
    let tags = out
        .resource_tag_list()
        .iter()
        .flat_map(|r| r.tags_list().iter().cloned())
        .collect();
    Ok(Some((arn, tags)))
}

fn tag_pairs(tags: &[Tag]) -> impl Iterator<Item = (&str, &str)> {
    tags.iter()
        .map(|t| (t.key(), t.value().unwrap_or_default()))
}

fn owner_of(tags: &[Tag]) -> Option<&str> {
    tag_pairs(tags)
        .find(|(k, _)| *k == names::TAG_OWNER)
        .map(|(_, v)| v)
}

/// Marks the stack's own trail (if any) as used by `owner`: after a
/// replacement, the Delete of the old physical id then leaves it in place.
pub(super) async fn adopt(
    ct: &Client,
    stack: &StackRef,
    name: &str,
    owner: &UserRef,
) -> Result<(), Error> {
    let Some((arn, tags)) = trail_tags(ct, name).await? else {
        return Ok(());
    };
    let want = owner.owner_tag();
    if stack.owns(tag_pairs(&tags)) && owner_of(&tags) != Some(want.as_str()) {
        ct.add_tags()
            .resource_id(&arn)
            .tags_list(tag(names::TAG_OWNER, &want))
            .send()
            .await
            .map_err(Error::aws("cloudtrail:AddTags"))?;
    }
    Ok(())
}

fn tag(key: &str, value: &str) -> Tag {
    Tag::builder()
        .key(key)
        .value(value)
        .build()
        .expect("key is set")
}

/// Creates (or repairs) the stack's own trail as `want` says, and starts
/// it. Returns its ARN.
pub(super) async fn ensure_own_trail(
    aws: &Aws,
    stack: &StackRef,
    name: &str,
    want: &OwnTrail,
    owner: &UserRef,
) -> Result<String, Error> {
    let ct = &aws.cloudtrail;
    let arn = stack.trail_arn(name);
    let existing = trail_tags(ct, name).await?;
    if let Some((_, tags)) = &existing {
        if !stack.owns(tag_pairs(tags)) {
            return Err(Error::NotOurs(format!(
                "a trail named {name} exists and was not created by this stack; it is left as it is"
            )));
        }
    }
    let bucket = match &want.bucket {
        Some(given) => {
            bucket::check_bucket(&aws.s3, given).await?;
            given.clone()
        }
        None => {
            let own = stack.bucket_name();
            bucket::ensure_bucket(aws, stack, &own, &arn, want).await?;
            own
        }
    };
    let (logs_group, logs_role) = want
        .cloudwatch_logs
        .clone()
        .map_or((None, None), |(g, r)| (Some(g), Some(r)));
    let tags: Vec<Tag> = stack
        .ownership_tags()
        .iter()
        .map(|(k, v)| tag(k, v))
        .chain([tag(names::TAG_OWNER, &owner.owner_tag())])
        .chain(want.tags.iter().map(|(k, v)| tag(k, v)))
        .collect();
    if existing.is_none() {
        let created = ct
            .create_trail()
            .name(name)
            .s3_bucket_name(&bucket)
            .is_multi_region_trail(true)
            .include_global_service_events(true)
            .enable_log_file_validation(true)
            .set_kms_key_id(want.kms_key.clone())
            .set_cloud_watch_logs_log_group_arn(logs_group)
            .set_cloud_watch_logs_role_arn(logs_role)
            .set_tags_list(Some(tags))
            .send()
            .await;
        match created {
            Ok(_) => info!(trail = %arn, bucket = %bucket, "created the trail"),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|e| e.is_trail_already_exists_exception()) => {}
            Err(e) => return Err(Error::aws("cloudtrail:CreateTrail")(e)),
        }
    } else {
        ct.update_trail()
            .name(name)
            .s3_bucket_name(&bucket)
            .is_multi_region_trail(true)
            .include_global_service_events(true)
            .enable_log_file_validation(true)
            .set_kms_key_id(want.kms_key.clone())
            .set_cloud_watch_logs_log_group_arn(logs_group)
            .set_cloud_watch_logs_role_arn(logs_role)
            .send()
            .await
            .map_err(Error::aws("cloudtrail:UpdateTrail"))?;
        if !want.tags.is_empty() {
            ct.add_tags()
                .resource_id(&arn)
                .set_tags_list(Some(want.tags.iter().map(|(k, v)| tag(k, v)).collect()))
                .send()
                .await
                .map_err(Error::aws("cloudtrail:AddTags"))?;
        }
        info!(trail = %arn, "brought the stack's trail to what the stack asks");
    }
    ct.put_event_selectors()
        .trail_name(name)
        .event_selectors(
            EventSelector::builder()
                .read_write_type(ReadWriteType::All)
                .include_management_events(true)
                .build(),
        )
        .send()
        .await
        .map_err(Error::aws("cloudtrail:PutEventSelectors"))?;
    ct.start_logging()
        .name(name)
        .send()
        .await
        .map_err(Error::aws("cloudtrail:StartLogging"))?;
    Ok(arn)
}

/// The health check's repair: starts logging on the stack's own trail when
/// it exists, carries this stack's tags, and is stopped. Returns its name
/// when it was started; any other trail is never touched.
pub async fn restart_own_trail(ct: &Client, stack: &StackRef) -> Result<Option<String>, Error> {
    let name = stack.trail_name();
    let Some((arn, tags)) = trail_tags(ct, &name).await? else {
        return Ok(None);
    };
    if !stack.owns(tag_pairs(&tags)) {
        return Ok(None);
    }
    let logging = survey::read_logging_raw(ct, &arn, None)
        .await
        .map_err(Error::aws("cloudtrail:GetTrailStatus"))?;
    if logging {
        return Ok(None);
    }
    ct.start_logging()
        .name(&name)
        .send()
        .await
        .map_err(Error::aws("cloudtrail:StartLogging"))?;
    info!(trail = %arn, "started logging on the stack's trail again (health repair)");
    Ok(Some(name))
}

/// Deletes the stack's own trail when `owner` is the physical id using it.
/// The log bucket and its objects are always kept.
pub async fn delete_own_trail(
    ct: &Client,
    stack: &StackRef,
    owner: &UserRef,
) -> Result<Removal, Error> {
    let name = stack.trail_name();
    let Some((arn, tags)) = trail_tags(ct, &name).await? else {
        return Ok(Removal::AlreadyGone);
    };
    if !stack.owns(tag_pairs(&tags)) || owner_of(&tags) != Some(owner.owner_tag().as_str()) {
        info!(trail = %arn, "the trail is not this physical id's: left alone");
        return Ok(Removal::LeftAlone);
    }
    let removal = gone::removal(
        ct.delete_trail().name(&name).send().await,
        "cloudtrail:DeleteTrail",
    )?;
    if removal == Removal::Deleted {
        info!(trail = %arn, "deleted the trail (its log bucket is kept)");
    }
    Ok(removal)
}
