//! The stack's own trail: created when no trail covers the account
//! (`CloudTrail: Ensure`), marked with the physical id that uses it, started
//! again by the health check's repair, deleted only by that physical id.
//! A trail the stack did not create is never written to.

use aws_sdk_cloudtrail::Client;
use aws_sdk_cloudtrail::types::{EventSelector, ReadWriteType, Tag};
use tracing::info;

use super::{bucket, survey};
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
            .tags_list(
                Tag::builder()
                    .key(names::TAG_OWNER)
                    .value(want)
                    .build()
                    .expect("key is set"),
            )
            .send()
            .await
            .map_err(Error::aws("cloudtrail:AddTags"))?;
    }
    Ok(())
}

/// Creates (or repairs) the stack's own trail and starts it. Returns its ARN.
pub(super) async fn ensure_own_trail(
    aws: &Aws,
    stack: &StackRef,
    name: &str,
    bucket: Option<&str>,
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
    let bucket = match bucket {
        Some(given) => {
            bucket::check_bucket(&aws.s3, given).await?;
            given.to_string()
        }
        None => {
            let own = stack.bucket_name();
            bucket::ensure_bucket(&aws.s3, aws.region(), stack, &own, &arn).await?;
            own
        }
    };
    if existing.is_none() {
        let mut tags: Vec<Tag> = stack
            .ownership_tags()
            .iter()
            .map(|(k, v)| {
                Tag::builder()
                    .key(*k)
                    .value(*v)
                    .build()
                    .expect("key is set")
            })
            .collect();
        tags.push(
            Tag::builder()
                .key(names::TAG_OWNER)
                .value(owner.owner_tag())
                .build()
                .expect("key is set"),
        );
        let created = ct
            .create_trail()
            .name(name)
            .s3_bucket_name(&bucket)
            .is_multi_region_trail(true)
            .include_global_service_events(true)
            .enable_log_file_validation(true)
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
            .send()
            .await
            .map_err(Error::aws("cloudtrail:UpdateTrail"))?;
        info!(trail = %arn, "repaired the stack's trail");
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
