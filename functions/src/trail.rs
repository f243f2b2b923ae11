//! Check the trail: replaces "turn CloudTrail on, Apply to all regions: Yes".
//!
//! Covered = some trail visible to the account (organization trails and
//! shadow copies of multi-region trails included) that is multi-region,
//! logging, and records management events, read and write. `Ensure` creates
//! the stack's own trail when none covers (and a locked-down log bucket unless
//! one is given); `Verify` fails naming what is missing; `Ignore` only
//! reports. A trail the stack did not create is only ever read.

use aws_sdk_cloudtrail::Client;
use aws_sdk_cloudtrail::config::Region;
use aws_sdk_cloudtrail::types::{EventSelector, ReadWriteType, Tag};
use serde_json::json;
use tracing::info;

use crate::config::Aws;
use crate::error::Error;
use crate::iam_user::Removal;
use crate::names::{self, StackRef, UserRef};
use crate::properties::TrailMode;

/// How coverage was met (the `CloudTrailCoverage` value returned to CloudFormation).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum How {
    /// A trail of this account, not made by this stack.
    ExistingTrail,
    /// An organization trail from the management account.
    OrganizationTrail,
    /// The trail this stack created.
    CreatedTrail,
    NotCovered,
    /// `Ignore` mode and the trails could not be read.
    Unknown,
}

impl How {
    pub fn as_str(self) -> &'static str {
        match self {
            How::ExistingTrail => "existing-trail",
            How::OrganizationTrail => "organization-trail",
            How::CreatedTrail => "created-trail",
            How::NotCovered => "not-covered",
            How::Unknown => "unknown",
        }
    }
}

/// The outcome of the coverage step.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Coverage {
    pub how: How,
    /// The covering trail (empty when none).
    pub trail_arn: String,
    /// One sentence for people: which trail covers, or what is missing.
    pub detail: String,
}

/// What one trail does, as far as this account can read it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TrailView {
    pub name: String,
    pub arn: String,
    pub home_region: String,
    pub multi_region: bool,
    pub organization: bool,
    /// `Err` holds why the status could not be read.
    pub logging: Result<bool, String>,
    /// (read, write) management events; `Err` when the selectors could not be read.
    pub management: Result<(bool, bool), String>,
}

impl TrailView {
    pub fn covers(&self) -> bool {
        self.multi_region && self.logging == Ok(true) && self.management == Ok((true, true))
    }

    /// What keeps this trail from covering the account.
    pub fn gaps(&self) -> Vec<String> {
        let mut gaps = Vec::new();
        if !self.multi_region {
            gaps.push(format!("single-region ({})", self.home_region));
        }
        match &self.logging {
            Ok(true) => {}
            Ok(false) => gaps.push("not logging".into()),
            Err(e) => gaps.push(format!("status unreadable: {e}")),
        }
        match &self.management {
            Ok((true, true)) => {}
            Ok((read, write)) => {
                let missing = match (read, write) {
                    (false, false) => "no management events",
                    (true, false) => "no management write events",
                    _ => "no management read events",
                };
                gaps.push(format!("records {missing}"));
            }
            Err(e) => gaps.push(format!("event selectors unreadable: {e}")),
        }
        gaps
    }
}

/// Reads every trail visible from this account and region.
pub async fn survey(ct: &Client) -> Result<Vec<TrailView>, Error> {
    let out = ct
        .describe_trails()
        .include_shadow_trails(true)
        .send()
        .await
        .map_err(Error::aws("cloudtrail:DescribeTrails"))?;
    let here = ct
        .config()
        .region()
        .map(|r| r.to_string())
        .unwrap_or_default();
    let mut views: Vec<TrailView> = Vec::new();
    for trail in out.trail_list() {
        let Some(arn) = trail.trail_arn() else {
            continue;
        };
        if views.iter().any(|v| v.arn == arn) {
            continue;
        }
        let home = trail.home_region().unwrap_or(&here).to_string();
        let multi_region = trail.is_multi_region_trail().unwrap_or(false);
        // A trail is read in its home region; the others only hold shadows.
        let region = (home != here).then(|| Region::new(home.clone()));
        let logging = read_logging_raw(ct, arn, Some(&home))
            .await
            .map_err(|e| describe(&e));
        let management = if multi_region {
            read_management(ct, arn, region).await
        } else {
            Err("not read (single-region)".into())
        };
        views.push(TrailView {
            name: trail.name().unwrap_or(arn).to_string(),
            arn: arn.to_string(),
            home_region: home,
            multi_region,
            organization: trail.is_organization_trail().unwrap_or(false),
            logging,
            management,
        });
    }
    Ok(views)
}

fn in_region(region: Option<Region>) -> aws_sdk_cloudtrail::config::Builder {
    let mut b = aws_sdk_cloudtrail::config::Builder::default();
    b.set_region(region);
    b
}

/// Whether the trail `arn` is logging, read in its `home` region.
pub async fn read_logging_raw(
    ct: &Client,
    arn: &str,
    home: Option<&str>,
) -> Result<
    bool,
    aws_sdk_cloudtrail::error::SdkError<
        aws_sdk_cloudtrail::operation::get_trail_status::GetTrailStatusError,
        aws_sdk_cloudtrail::config::http::HttpResponse,
    >,
> {
    let here = ct.config().region().map(|r| r.to_string());
    let mut call = ct.get_trail_status().name(arn).customize();
    if let Some(home) = home.filter(|h| Some(*h) != here.as_deref()) {
        call = call.config_override(in_region(Some(Region::new(home.to_string()))));
    }
    call.send().await.map(|s| s.is_logging().unwrap_or(false))
}

async fn read_management(
    ct: &Client,
    arn: &str,
    region: Option<Region>,
) -> Result<(bool, bool), String> {
    let mut call = ct.get_event_selectors().trail_name(arn).customize();
    if region.is_some() {
        call = call.config_override(in_region(region));
    }
    let out = call.send().await.map_err(|e| describe(&e))?;
    Ok(management_events(
        out.event_selectors(),
        out.advanced_event_selectors(),
    ))
}

fn describe<E: std::error::Error + 'static, R: std::fmt::Debug>(
    e: &aws_sdk_cloudtrail::error::SdkError<E, R>,
) -> String {
    aws_sdk_cloudtrail::error::DisplayErrorContext(e).to_string()
}

/// Which management events the selectors record: (read, write). A trail with
/// no selectors at all records all management events (AWS's default; an
/// emulator may return it as two empty lists).
pub fn management_events(
    basic: &[EventSelector],
    advanced: &[aws_sdk_cloudtrail::types::AdvancedEventSelector],
) -> (bool, bool) {
    if basic.is_empty() && advanced.is_empty() {
        return (true, true);
    }
    let (mut read, mut write) = (false, false);
    for s in basic {
        if s.include_management_events() == Some(false) {
            continue;
        }
        match s.read_write_type() {
            Some(ReadWriteType::ReadOnly) => read = true,
            Some(ReadWriteType::WriteOnly) => write = true,
            _ => (read, write) = (true, true),
        }
    }
    for s in advanced {
        let fields = s.field_selectors();
        let management = fields
            .iter()
            .any(|f| f.field() == "eventCategory" && f.equals().iter().any(|v| v == "Management"));
        if !management {
            continue;
        }
        match fields.iter().find(|f| f.field() == "readOnly") {
            Some(f) if f.equals().iter().any(|v| v == "true") => read = true,
            Some(f) if f.equals().iter().any(|v| v == "false") => write = true,
            _ => (read, write) = (true, true),
        }
    }
    (read, write)
}

fn own_detail(name: &str) -> String {
    format!(
        "the stack's trail {name} is multi-region, logging, and records management read and write events"
    )
}

/// The covering trail, or why none covers.
pub fn assess(views: &[TrailView], own_trail_arn: &str) -> Result<Coverage, String> {
    // Prefer a trail the stack does not have to pay for twice: someone else's first.
    let mut covering: Vec<&TrailView> = views.iter().filter(|v| v.covers()).collect();
    covering.sort_by_key(|v| (v.arn == own_trail_arn, !v.organization));
    if let Some(v) = covering.first() {
        let how = if v.arn == own_trail_arn {
            How::CreatedTrail
        } else if v.organization {
            How::OrganizationTrail
        } else {
            How::ExistingTrail
        };
        let detail = if how == How::CreatedTrail {
            own_detail(&v.name)
        } else {
            format!(
                "trail {} (home {}) is multi-region, logging, and records management read and write events",
                v.name, v.home_region
            )
        };
        return Ok(Coverage {
            how,
            trail_arn: v.arn.clone(),
            detail,
        });
    }
    if views.is_empty() {
        return Err("no trail exists in this account (and no organization trail applies); a multi-region trail that logs management events is needed".into());
    }
    let gaps: Vec<String> = views
        .iter()
        .map(|v| format!("trail {}: {}", v.name, v.gaps().join(", ")))
        .collect();
    Err(format!(
        "no trail is multi-region, logging and recording management read and write events ({})",
        gaps.join("; ")
    ))
}

/// The coverage step of Create/Update, per `mode`. `owner` is the physical
/// id now using the stack's trail (see [`names::TAG_OWNER`]).
pub async fn converge(
    aws: &Aws,
    stack: &StackRef,
    mode: TrailMode,
    bucket: Option<&str>,
    owner: &UserRef,
) -> Result<Coverage, Error> {
    let ct = &aws.cloudtrail;
    let own_name = stack.trail_name();
    let own_arn = stack.trail_arn(&own_name);
    adopt(ct, stack, &own_name, owner).await?;
    let views = match survey(ct).await {
        Ok(views) => views,
        Err(e) if mode == TrailMode::Ignore => {
            return Ok(Coverage {
                how: How::Unknown,
                trail_arn: String::new(),
                detail: format!("trails could not be read: {e}"),
            });
        }
        Err(e) => return Err(e),
    };
    match (assess(&views, &own_arn), mode) {
        (Ok(coverage), _) => Ok(coverage),
        (Err(reason), TrailMode::Ignore) => Ok(Coverage {
            how: How::NotCovered,
            trail_arn: String::new(),
            detail: reason,
        }),
        (Err(reason), TrailMode::Verify) => Err(Error::NotCovered(format!(
            "{reason}. Turn on a multi-region trail, or set CloudTrail to Ensure to have one created"
        ))),
        (Err(reason), TrailMode::Ensure) => {
            info!(%reason, "no trail covers the account: creating one");
            let arn = ensure_own_trail(aws, stack, &own_name, bucket, owner).await?;
            Ok(Coverage {
                how: How::CreatedTrail,
                trail_arn: arn,
                detail: own_detail(&own_name),
            })
        }
    }
}

/// The trail's tags; `None` when there is no trail by that name here.
async fn trail_tags(ct: &Client, name: &str) -> Result<Option<(String, Vec<Tag>)>, Error> {
    let trail = match ct.get_trail().name(name).send().await {
        Ok(out) => out.trail().and_then(|t| t.trail_arn()).map(str::to_string),
        Err(e)
            if e.as_service_error()
                .is_some_and(|e| e.is_trail_not_found_exception()) =>
        {
            None
        }
        Err(e) => return Err(Error::aws("cloudtrail:GetTrail")(e)),
    };
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
async fn adopt(ct: &Client, stack: &StackRef, name: &str, owner: &UserRef) -> Result<(), Error> {
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
async fn ensure_own_trail(
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
            check_bucket(&aws.s3, given).await?;
            given.to_string()
        }
        None => {
            let own = stack.bucket_name();
            ensure_bucket(aws, stack, &own, &arn).await?;
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

/// A bucket given by the user: must exist and be reachable. Its policy is the
/// user's to keep (CreateTrail reports a policy CloudTrail cannot write with).
async fn check_bucket(s3: &aws_sdk_s3::Client, bucket: &str) -> Result<(), Error> {
    s3.head_bucket()
        .bucket(bucket)
        .send()
        .await
        .map(|_| ())
        .map_err(|e| Error::Aws {
            operation: "s3:HeadBucket",
            message: format!(
                "TrailBucketName {bucket} does not exist or is not reachable from this account ({})",
                aws_sdk_s3::error::DisplayErrorContext(&e)
            ),
        })
}

/// The bucket policy CloudTrail needs, scoped to this trail with aws:SourceArn,
/// and refusing plain HTTP.
pub fn bucket_policy(stack: &StackRef, bucket: &str, trail_arn: &str) -> serde_json::Value {
    let bucket_arn = format!("arn:{}:s3:::{bucket}", stack.partition);
    json!({
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "AWSCloudTrailAclCheck",
                "Effect": "Allow",
                "Principal": {"Service": "cloudtrail.amazonaws.com"},
                "Action": "s3:GetBucketAcl",
                "Resource": bucket_arn,
                "Condition": {"StringEquals": {"aws:SourceArn": trail_arn}}
            },
            {
                "Sid": "AWSCloudTrailWrite",
                "Effect": "Allow",
                "Principal": {"Service": "cloudtrail.amazonaws.com"},
                "Action": "s3:PutObject",
                "Resource": format!("{bucket_arn}/AWSLogs/{}/*", stack.account),
                "Condition": {"StringEquals": {
                    "s3:x-amz-acl": "bucket-owner-full-control",
                    "aws:SourceArn": trail_arn
                }}
            },
            {
                "Sid": "DenyInsecureTransport",
                "Effect": "Deny",
                "Principal": "*",
                "Action": "s3:*",
                "Resource": [bucket_arn.clone(), format!("{bucket_arn}/*")],
                "Condition": {"Bool": {"aws:SecureTransport": "false"}}
            }
        ]
    })
}

/// Creates the log bucket: public access blocked, encrypted, versioned,
/// tagged, with the CloudTrail policy. Kept on Delete (audit logs).
async fn ensure_bucket(
    aws: &Aws,
    stack: &StackRef,
    bucket: &str,
    trail_arn: &str,
) -> Result<(), Error> {
    use aws_sdk_s3::types::{
        BucketLocationConstraint, BucketVersioningStatus, CreateBucketConfiguration,
        PublicAccessBlockConfiguration, ServerSideEncryption, ServerSideEncryptionByDefault,
        ServerSideEncryptionConfiguration, ServerSideEncryptionRule, Tagging,
        VersioningConfiguration,
    };
    let s3 = &aws.s3;
    let region = aws.region().unwrap_or("us-east-1");
    let mut create = s3.create_bucket().bucket(bucket);
    if region != "us-east-1" {
        create = create.create_bucket_configuration(
            CreateBucketConfiguration::builder()
                .location_constraint(BucketLocationConstraint::from(region))
                .build(),
        );
    }
    match create.send().await {
        Ok(_) => info!(bucket, "created the trail log bucket"),
        Err(e)
            if e.as_service_error()
                .is_some_and(|e| e.is_bucket_already_owned_by_you()) => {}
        Err(e)
            if e.as_service_error()
                .is_some_and(|e| e.is_bucket_already_exists()) =>
        {
            return Err(Error::NotOurs(format!(
                "the bucket name {bucket} is taken by another account; give TrailBucketName"
            )));
        }
        Err(e) => return Err(Error::aws("s3:CreateBucket")(e)),
    }
    s3.put_public_access_block()
        .bucket(bucket)
        .public_access_block_configuration(
            PublicAccessBlockConfiguration::builder()
                .block_public_acls(true)
                .ignore_public_acls(true)
                .block_public_policy(true)
                .restrict_public_buckets(true)
                .build(),
        )
        .send()
        .await
        .map_err(Error::aws("s3:PutPublicAccessBlock"))?;
    let sse = ServerSideEncryptionByDefault::builder()
        .sse_algorithm(ServerSideEncryption::Aes256)
        .build()
        .expect("algorithm is set");
    s3.put_bucket_encryption()
        .bucket(bucket)
        .server_side_encryption_configuration(
            ServerSideEncryptionConfiguration::builder()
                .rules(
                    ServerSideEncryptionRule::builder()
                        .apply_server_side_encryption_by_default(sse)
                        .build(),
                )
                .build()
                .expect("rules are set"),
        )
        .send()
        .await
        .map_err(Error::aws("s3:PutBucketEncryption"))?;
    s3.put_bucket_versioning()
        .bucket(bucket)
        .versioning_configuration(
            VersioningConfiguration::builder()
                .status(BucketVersioningStatus::Enabled)
                .build(),
        )
        .send()
        .await
        .map_err(Error::aws("s3:PutBucketVersioning"))?;
    let tags = stack
        .ownership_tags()
        .iter()
        .map(|(k, v)| {
            aws_sdk_s3::types::Tag::builder()
                .key(*k)
                .value(*v)
                .build()
                .expect("key and value are set")
        })
        .collect();
    s3.put_bucket_tagging()
        .bucket(bucket)
        .tagging(
            Tagging::builder()
                .set_tag_set(Some(tags))
                .build()
                .expect("tags are set"),
        )
        .send()
        .await
        .map_err(Error::aws("s3:PutBucketTagging"))?;
    s3.put_bucket_policy()
        .bucket(bucket)
        .policy(bucket_policy(stack, bucket, trail_arn).to_string())
        .send()
        .await
        .map_err(Error::aws("s3:PutBucketPolicy"))?;
    Ok(())
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
    let logging = read_logging_raw(ct, &arn, None)
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
    match ct.delete_trail().name(&name).send().await {
        Ok(_) => {
            info!(trail = %arn, "deleted the trail (its log bucket is kept)");
            Ok(Removal::Deleted)
        }
        Err(e)
            if e.as_service_error()
                .is_some_and(|e| e.is_trail_not_found_exception()) =>
        {
            Ok(Removal::AlreadyGone)
        }
        Err(e) => Err(Error::aws("cloudtrail:DeleteTrail")(e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_cloudtrail::types::{AdvancedEventSelector, AdvancedFieldSelector};

    fn view(name: &str, multi: bool, logging: bool, mgmt: (bool, bool)) -> TrailView {
        TrailView {
            name: name.into(),
            arn: format!("arn:aws:cloudtrail:us-east-1:123456789012:trail/{name}"),
            home_region: "us-east-1".into(),
            multi_region: multi,
            organization: false,
            logging: Ok(logging),
            management: Ok(mgmt),
        }
    }

    fn advanced(fields: &[(&str, &str)]) -> AdvancedEventSelector {
        let mut b = AdvancedEventSelector::builder();
        for (f, v) in fields {
            b = b.field_selectors(
                AdvancedFieldSelector::builder()
                    .field(*f)
                    .equals(*v)
                    .build()
                    .unwrap(),
            );
        }
        b.build().unwrap()
    }

    #[test]
    fn management_events_from_selectors() {
        assert_eq!(management_events(&[], &[]), (true, true));
        let basic = |rw: ReadWriteType, mgmt: bool| {
            EventSelector::builder()
                .read_write_type(rw)
                .include_management_events(mgmt)
                .build()
        };
        assert_eq!(
            management_events(&[basic(ReadWriteType::All, true)], &[]),
            (true, true)
        );
        assert_eq!(
            management_events(&[basic(ReadWriteType::WriteOnly, true)], &[]),
            (false, true)
        );
        assert_eq!(
            management_events(&[basic(ReadWriteType::All, false)], &[]),
            (false, false)
        );
        assert_eq!(
            management_events(
                &[
                    basic(ReadWriteType::ReadOnly, true),
                    basic(ReadWriteType::WriteOnly, true)
                ],
                &[]
            ),
            (true, true)
        );
        assert_eq!(
            management_events(&[], &[advanced(&[("eventCategory", "Management")])]),
            (true, true)
        );
        assert_eq!(
            management_events(
                &[],
                &[advanced(&[
                    ("eventCategory", "Management"),
                    ("readOnly", "true")
                ])]
            ),
            (true, false)
        );
        assert_eq!(
            management_events(&[], &[advanced(&[("eventCategory", "Data")])]),
            (false, false)
        );
    }

    #[test]
    fn assessment_names_what_is_missing() {
        assert!(assess(&[], "own").unwrap_err().contains("no trail exists"));
        let views = [
            view("single", false, true, (true, true)),
            view("stopped", true, false, (true, true)),
            view("writes", true, true, (false, true)),
        ];
        let reason = assess(&views, "own").unwrap_err();
        for needle in [
            "single: single-region",
            "stopped: not logging",
            "writes: records no management read events",
        ] {
            assert!(reason.contains(needle), "{needle} not in {reason}");
        }
        let mut ok = views.to_vec();
        ok.push(view("good", true, true, (true, true)));
        let c = assess(&ok, "own").unwrap();
        assert_eq!(
            (c.how, c.trail_arn.ends_with("/good")),
            (How::ExistingTrail, true)
        );
        let mut org = view("org", true, true, (true, true));
        org.organization = true;
        ok.push(org);
        assert_eq!(assess(&ok, "own").unwrap().how, How::OrganizationTrail);
        let own = view("mine", true, true, (true, true));
        assert_eq!(
            assess(std::slice::from_ref(&own), &own.arn).unwrap().how,
            How::CreatedTrail
        );
    }

    #[test]
    fn bucket_policy_is_scoped_to_the_trail() {
        let stack = StackRef::parse(
            "arn:aws:cloudformation:eu-west-1:123456789012:stack/s/g",
            "C",
        )
        .unwrap();
        let p = bucket_policy(
            &stack,
            "b",
            "arn:aws:cloudtrail:eu-west-1:123456789012:trail/t",
        );
        let text = p.to_string();
        assert_eq!(
            p["Statement"][0]["Condition"]["StringEquals"]["aws:SourceArn"],
            "arn:aws:cloudtrail:eu-west-1:123456789012:trail/t"
        );
        assert_eq!(
            p["Statement"][1]["Resource"],
            "arn:aws:s3:::b/AWSLogs/123456789012/*"
        );
        assert!(text.contains("bucket-owner-full-control"));
    }
}
