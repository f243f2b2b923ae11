//! The log bucket of the trail the stack creates: public access blocked,
//! encrypted, versioned, tagged, written only by that trail, refusing plain
//! HTTP. Kept on Delete (audit logs).

use serde_json::json;
use tracing::info;

use super::OwnTrail;
use crate::aws::Aws;
use crate::error::Error;
use crate::names::StackRef;

/// A bucket given by the user: must exist and be reachable. Its policy is the
/// user's to keep (CreateTrail reports a policy CloudTrail cannot write with).
pub(super) async fn check_bucket(s3: &aws_sdk_s3::Client, bucket: &str) -> Result<(), Error> {
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
            source: Some(Box::new(e)),
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
pub(super) async fn ensure_bucket(
    aws: &Aws,
    stack: &StackRef,
    bucket: &str,
    trail_arn: &str,
    want: &OwnTrail,
) -> Result<(), Error> {
    use aws_sdk_s3::types::{
        BucketLocationConstraint, BucketLoggingStatus, BucketVersioningStatus,
        CreateBucketConfiguration, LoggingEnabled, PublicAccessBlockConfiguration,
        ServerSideEncryption, ServerSideEncryptionByDefault, ServerSideEncryptionConfiguration,
        ServerSideEncryptionRule, Tagging, VersioningConfiguration,
    };
    let (s3, region) = (&aws.s3, aws.region());
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
        .copied()
        .chain(want.tags.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .map(|(k, v)| {
            aws_sdk_s3::types::Tag::builder()
                .key(k)
                .value(v)
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
    if let Some(target) = &want.access_logs_bucket {
        // Server access logging (S3.9, CIS 3.6), under a prefix of its own.
        let logging = LoggingEnabled::builder()
            .target_bucket(target)
            .target_prefix(format!("{bucket}/"))
            .build()
            .expect("target bucket and prefix are set");
        s3.put_bucket_logging()
            .bucket(bucket)
            .bucket_logging_status(
                BucketLoggingStatus::builder()
                    .logging_enabled(logging)
                    .build(),
            )
            .send()
            .await
            .map_err(|e| Error::Aws {
                operation: "s3:PutBucketLogging",
                message: format!(
                    "server access logging to TrailBucketAccessLogsBucket {target} was refused ({}): the bucket must exist in this region and let the S3 logging service write (a bucket policy for logging.s3.amazonaws.com)",
                    aws_sdk_s3::error::DisplayErrorContext(&e)
                ),
                source: Some(Box::new(e)),
            })?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

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
