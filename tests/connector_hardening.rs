//! What the connector creates in each account, held to what security teams
//! check (Security Hub, CIS): the user's rights come through the stack's
//! group (IAM.2), moved there from the user of an older version without a
//! moment of fewer rights; the user carries its permissions boundary and the
//! stack's `Tags`, as do the secret, the trail and its bucket; the trail the
//! stack creates is encrypted with the key given (CloudTrail.2), delivers to
//! CloudWatch Logs (CloudTrail.5), and its bucket logs its access (S3.9).

use std::time::{Duration, Instant};

use cloudapps::preflight;
use serde_json::json;
use testbed::{USER, World, captured_logs, physical_id};

/// The layout of an older version: the policy attached to the user itself.
async fn as_an_older_version_left_it(w: &World, policy: &str) {
    let group = format!("{USER}-cloudapps");
    let iam = &w.iam;
    iam.attach_user_policy()
        .user_name(USER)
        .policy_arn(policy)
        .send()
        .await
        .unwrap();
    let leave = iam
        .remove_user_from_group()
        .group_name(&group)
        .user_name(USER);
    leave.send().await.unwrap();
    let detach = iam
        .detach_group_policy()
        .group_name(&group)
        .policy_arn(policy);
    detach.send().await.unwrap();
    iam.delete_group().group_name(&group).send().await.unwrap();
}

async fn preflight_passes(w: &World) {
    let key = w.current_key().await;
    let user = w.stack_ref().user("/defender-cloud-apps/", USER);
    let report = preflight::probe(
        &preflight::KeyClients::new(&cloudapps::access_key::signed_with(
            &w.sdk,
            &key,
            aws_config::retry::RetryConfig::disabled(),
        )),
        &user,
        &w.account,
    )
    .await;
    assert!(report.passed(), "{:?}", report.problems(&user));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_older_stacks_user_gets_its_rights_moved_to_the_group_without_losing_any() {
    // GIVEN a stack as an older version left it: the policy attached to the
    // user itself, no group; its key passes the pre-flight
    let w = World::new().await;
    let create = w.event("create.json");
    let body = w.ok(&create).await;
    let policy = body["Data"]["PolicyArn"].as_str().unwrap().to_string();
    as_an_older_version_left_it(&w, &policy).await;
    assert_eq!(w.attached(USER).await, vec![policy.clone()]);
    preflight_passes(&w).await;

    // WHEN the stack is updated to this version
    let update = w.follow_up(
        "update.json",
        &physical_id(&body),
        &create["ResourceProperties"],
        Some(&create["ResourceProperties"]),
    );
    w.ok(&update).await;

    // THEN the user reaches the policy through its group and has nothing
    // attached itself, and the key passes the pre-flight
    assert_eq!(w.group_attached(USER).await, vec![policy.clone()]);
    assert_eq!(w.groups_of(USER).await, vec![format!("{USER}-cloudapps")]);
    assert!(w.attached(USER).await.is_empty());
    preflight_passes(&w).await;
    // AND the group held the policy, with the user in it, before the policy
    // left the user: at no moment did the key have less
    let logs = captured_logs();
    let lines: Vec<&str> = logs.lines().filter(|l| l.contains(&w.account)).collect();
    let at = |what: &str| {
        lines
            .iter()
            .position(|l| l.contains(what))
            .unwrap_or_else(|| panic!("no log line {what:?}"))
    };
    let moved = at("moved the policy from the user to its group");
    assert!(at("attached policy to the group") < moved);
    assert!(at("added the user to its group") < moved);
    w.assert_no_leaks().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_boundary_and_the_stacks_tags_are_on_what_it_creates() {
    // GIVEN a permissions boundary (the template's) and the stack's Tags
    let w = World::new().await;
    let boundary = w
        .iam
        .create_policy()
        .policy_name("cloudapps-user-boundary")
        .path("/cloudapps-boundary/")
        .policy_document(cloudapps::iam_user::GUIDE_POLICY.replace(['\n', ' '], ""))
        .send()
        .await
        .unwrap();
    let boundary = boundary.policy().unwrap().arn().unwrap().to_string();
    let mut create = w.event("create.json");
    create["ResourceProperties"]["UserPermissionsBoundary"] = json!(boundary);
    create["ResourceProperties"]["Tags"] = json!(["Team=security", "CostCenter=42"]);

    // WHEN Create runs
    let body = w.ok(&create).await;

    // THEN the user has the boundary and the tags
    let user = w.user(USER).await.unwrap();
    let set = user.permissions_boundary().unwrap();
    assert_eq!(set.permissions_boundary_arn(), Some(boundary.as_str()));
    let tags = w.iam.list_user_tags().user_name(USER).send().await.unwrap();
    let has = |tags: Vec<(String, String)>| {
        for (k, v) in [("Team", "security"), ("CostCenter", "42")] {
            assert!(
                tags.iter().any(|(tk, tv)| tk == k && tv == v),
                "{k}={v} not in {tags:?}"
            );
        }
    };
    has(tags
        .tags()
        .iter()
        .map(|t| (t.key().to_string(), t.value().to_string()))
        .collect());
    // AND so do the secret, the trail and its bucket
    let secret = w
        .secrets
        .describe_secret()
        .secret_id(&w.secret_arn)
        .send()
        .await
        .unwrap();
    has(secret
        .tags()
        .iter()
        .map(|t| (t.key().unwrap().to_string(), t.value().unwrap().to_string()))
        .collect());
    let trail_arn = body["Data"]["TrailArn"].as_str().unwrap();
    let trail = w
        .cloudtrail
        .list_tags()
        .resource_id_list(trail_arn)
        .send()
        .await
        .unwrap();
    has(trail.resource_tag_list()[0]
        .tags_list()
        .iter()
        .map(|t| {
            (
                t.key().to_string(),
                t.value().unwrap_or_default().to_string(),
            )
        })
        .collect());
    let bucket = w.stack_ref().bucket_name();
    let tagging =
        w.s3.get_bucket_tagging()
            .bucket(&bucket)
            .send()
            .await
            .unwrap();
    has(tagging
        .tag_set()
        .iter()
        .map(|t| (t.key().to_string(), t.value().to_string()))
        .collect());
    w.assert_no_leaks().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_trail_the_stack_creates_meets_the_cis_controls_it_is_given() {
    // GIVEN a KMS key (moto does not check CloudTrail's use of it), a log group and its delivery role, and a bucket for
    // access logs that lets the logging service write
    let w = World::new().await;
    let key_arn = format!(
        "arn:aws:kms:us-east-1:{}:key/5f2b3c4d-0000-4000-8000-00000000c1a5",
        w.account
    );
    let group = format!(
        "arn:aws:logs:us-east-1:{}:log-group:/cloudapps/trail",
        w.account
    );
    let role = format!("arn:aws:iam::{}:role/cloudapps-trail-logs", w.account);
    let logs_bucket = format!("access-logs-{}", w.account);
    w.s3.create_bucket()
        .bucket(&logs_bucket)
        .send()
        .await
        .unwrap();
    let policy = json!({"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow", "Principal": {"Service": "logging.s3.amazonaws.com"},
        "Action": "s3:PutObject", "Resource": format!("arn:aws:s3:::{logs_bucket}/*")}]});
    let put =
        w.s3.put_bucket_policy()
            .bucket(&logs_bucket)
            .policy(policy.to_string());
    put.send().await.unwrap();
    let mut create = w.event("create.json");
    let props = &mut create["ResourceProperties"];
    props["TrailKmsKeyArn"] = json!(key_arn);
    props["TrailCloudWatchLogsGroupArn"] = json!(group);
    props["TrailCloudWatchLogsRoleArn"] = json!(role);
    props["TrailBucketAccessLogsBucket"] = json!(logs_bucket);

    // WHEN Create runs (no trail covers the account: the stack makes one)
    let started = Instant::now();
    let body = w.ok(&create).await;
    assert!(started.elapsed() < Duration::from_secs(60));

    // THEN the trail is encrypted with the key and delivers to the log group
    let trail = w
        .cloudtrail
        .get_trail()
        .name(body["Data"]["TrailArn"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    let trail = trail.trail().unwrap();
    assert_eq!(trail.kms_key_id(), Some(key_arn.as_str()));
    assert_eq!(
        trail.cloud_watch_logs_log_group_arn(),
        Some(format!("{group}:*").as_str())
    );
    assert_eq!(trail.cloud_watch_logs_role_arn(), Some(role.as_str()));
    assert_eq!(trail.log_file_validation_enabled(), Some(true));
    // AND its bucket logs its access to the bucket given
    let bucket = w.stack_ref().bucket_name();
    let logging =
        w.s3.get_bucket_logging()
            .bucket(&bucket)
            .send()
            .await
            .unwrap();
    let enabled = logging.logging_enabled().expect("access logging is on");
    assert_eq!(enabled.target_bucket(), logs_bucket);
    w.assert_no_leaks().await;
}
