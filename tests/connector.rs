//! The connector custom resource against moto server: what a user would
//! check by hand in the console after each CloudFormation event.

mod support;

use std::time::{Duration, Instant};

use cloudapps::iam_user::{self, policy_document};
use cloudapps::key_store::{AWSCURRENT, StoredKey};
use cloudapps::names::{StackRef, TAG_STACK_ID};
use cloudapps::sensitive::Sensitive;
use cloudapps::{Settings, access_key, trail};
use serde_json::{Value, json};
use support::{Moto, World, sdk_config};

const USER: &str = "defender-cloud-apps";

fn physical_id(body: &Value) -> String {
    body["PhysicalResourceId"].as_str().unwrap().to_string()
}

fn stack(w: &World) -> StackRef {
    StackRef::parse(&w.stack_id, "Connector").unwrap()
}

/// Creates a multi-region trail that this stack did not make.
async fn foreign_trail(w: &World, name: &str, multi_region: bool, logging: bool) -> String {
    let bucket = format!("foreign-logs-{}", w.account);
    let _ = w.s3.create_bucket().bucket(&bucket).send().await;
    let arn = w
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
        w.cloudtrail
            .start_logging()
            .name(name)
            .send()
            .await
            .unwrap();
    }
    arn
}

async fn is_logging(w: &World, name: &str) -> bool {
    w.cloudtrail
        .get_trail_status()
        .name(name)
        .send()
        .await
        .unwrap()
        .is_logging()
        .unwrap_or(false)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_makes_the_user_its_policy_a_proven_key_and_a_trail() {
    // GIVEN a fresh account with no trail, and the stack's empty secret
    let w = World::new().await;
    let event = w.event("create.json");

    // WHEN CloudFormation sends Create
    let body = w.ok(&event).await;

    // THEN the user exists under its path, tagged as this stack's
    let user = w.user(USER).await.expect("the user exists");
    assert_eq!(user.path(), "/defender-cloud-apps/");
    assert_eq!(physical_id(&body), user.arn());
    let tags = w.iam.list_user_tags().user_name(USER).send().await.unwrap();
    assert!(
        tags.tags()
            .iter()
            .any(|t| t.key() == TAG_STACK_ID && t.value() == w.stack_id)
    );

    // AND exactly one policy is attached: ours, with exactly the guide's statement
    let policy_arn = body["Data"]["PolicyArn"].as_str().unwrap();
    assert_eq!(
        policy_arn,
        format!(
            "arn:aws:iam::{}:policy/defender-cloud-apps/{USER}-cloudapps",
            w.account
        )
    );
    assert_eq!(w.attached(USER).await, vec![policy_arn.to_string()]);
    assert_eq!(
        iam_user::default_document(&w.iam, policy_arn)
            .await
            .unwrap(),
        Some(policy_document())
    );

    // AND the secret holds the only key of the user, as the design's JSON,
    // and it authenticates as the user
    let raw = w.secret_text(&w.secret_arn, AWSCURRENT).await.unwrap();
    let raw: Value = serde_json::from_str(&raw).unwrap();
    let mut fields: Vec<&str> = raw
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    fields.sort();
    assert_eq!(fields, ["AccessKeyId", "SecretAccessKey", "UserName"]);
    let key = w.current_key().await;
    assert_eq!(key.user_name, USER);
    assert_eq!(w.keys(USER).await, vec![(key.access_key_id.clone(), true)]);
    assert_eq!(w.identity_of(&key).await.unwrap(), user.arn());

    // AND a trail covers all regions: multi-region, logging, management read+write
    assert_eq!(body["Data"]["CloudTrailCoverage"], "created-trail");
    let trail_arn = body["Data"]["TrailArn"].as_str().unwrap();
    let views = trail::survey(&w.cloudtrail).await.unwrap();
    let view = views
        .iter()
        .find(|v| v.arn == trail_arn)
        .expect("the created trail");
    assert!(
        view.multi_region && view.logging == Ok(true) && view.management == Ok((true, true)),
        "{view:?}"
    );
    assert_eq!(views.len(), 1);

    // AND its log bucket blocks public access, is encrypted, and lets only this trail write
    let bucket = stack(&w).bucket_name();
    let pab =
        w.s3.get_public_access_block()
            .bucket(&bucket)
            .send()
            .await
            .unwrap();
    let pab = pab.public_access_block_configuration().unwrap();
    assert_eq!(
        (
            pab.block_public_acls(),
            pab.ignore_public_acls(),
            pab.block_public_policy(),
            pab.restrict_public_buckets()
        ),
        (Some(true), Some(true), Some(true), Some(true))
    );
    let enc =
        w.s3.get_bucket_encryption()
            .bucket(&bucket)
            .send()
            .await
            .unwrap();
    let rule = &enc.server_side_encryption_configuration().unwrap().rules()[0];
    assert_eq!(
        rule.apply_server_side_encryption_by_default()
            .unwrap()
            .sse_algorithm()
            .as_str(),
        "AES256"
    );
    let policy: Value = serde_json::from_str(
        w.s3.get_bucket_policy()
            .bucket(&bucket)
            .send()
            .await
            .unwrap()
            .policy()
            .unwrap(),
    )
    .unwrap();
    for i in 0..2 {
        assert_eq!(
            policy["Statement"][i]["Principal"]["Service"],
            "cloudtrail.amazonaws.com"
        );
        assert_eq!(
            policy["Statement"][i]["Condition"]["StringEquals"]["aws:SourceArn"],
            trail_arn
        );
    }

    // AND the response names what was made, and nothing secret
    for field in [
        "UserArn",
        "PolicyArn",
        "SecretArn",
        "TrailArn",
        "CloudTrailCoverage",
    ] {
        assert!(
            body["Data"][field].as_str().is_some_and(|v| !v.is_empty()),
            "{field}"
        );
    }
    assert!(!body.to_string().contains(key.secret_access_key.expose()));
    w.assert_no_leaks().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_create_twice_ends_in_the_same_state() {
    // GIVEN a Create that succeeded
    let w = World::new().await;
    let event = w.event("create.json");
    let first = w.ok(&event).await;
    let key = w.current_key().await;

    // WHEN CloudFormation delivers the same event again (async invoke retry)
    let second = w.ok(&event).await;

    // THEN the same physical id and data, the same single key, one trail
    assert_eq!(physical_id(&first), physical_id(&second));
    assert_eq!(first["Data"], second["Data"]);
    assert_eq!(w.current_key().await, key);
    assert_eq!(w.keys(USER).await.len(), 1);
    assert_eq!(w.trail_names().await.len(), 1);
    w.assert_no_leaks().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_key_can_read_cloudtrail_and_cannot_create_users() {
    // GIVEN a moto server of its own (IAM enforcement is server-wide) and a Create
    let moto = Moto::start();
    let w = World::on(&moto).await;
    w.ok(&w.event("create.json")).await;
    let key = w.current_key().await;
    let sdk = sdk_config(
        &w.endpoint,
        &key.access_key_id,
        key.secret_access_key.expose(),
        None,
    )
    .await;

    // WHEN IAM enforcement is turned on
    moto.enforce_iam().await;

    // THEN the key does what the guide's policy allows ...
    aws_sdk_cloudtrail::Client::new(&sdk)
        .describe_trails()
        .send()
        .await
        .expect("cloudtrail:DescribeTrails");
    aws_sdk_iam::Client::new(&sdk)
        .get_user()
        .user_name(USER)
        .send()
        .await
        .expect("iam:GetUser");
    // ... and nothing more
    let denied = aws_sdk_iam::Client::new(&sdk)
        .create_user()
        .user_name("intruder")
        .send()
        .await
        .expect_err("iam:CreateUser must be denied");
    assert_eq!(
        cloudapps::error::raw_status(&denied),
        Some(403),
        "{denied:?}"
    );
    let denied = aws_sdk_secretsmanager::Client::new(&sdk)
        .get_secret_value()
        .secret_id(&w.secret_arn)
        .send()
        .await
        .expect_err("secretsmanager:GetSecretValue must be denied");
    assert!(cloudapps::error::is_access_denied(&denied), "{denied:?}");
    moto.relax_iam().await;
    w.assert_no_leaks().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn security_configuration_attaches_the_managed_policies_and_update_detaches_them() {
    // GIVEN a Create with both connections
    let w = World::new().await;
    let mut create = w.event("create.json");
    create["ResourceProperties"]["Connections"] =
        json!(["SecurityAuditing", "SecurityConfiguration"]);
    let body = w.ok(&create).await;
    let ours = body["Data"]["PolicyArn"].as_str().unwrap().to_string();
    let mut all = vec![
        ours.clone(),
        "arn:aws:iam::aws:policy/AWSSecurityHubReadOnlyAccess".to_string(),
        "arn:aws:iam::aws:policy/SecurityAudit".to_string(),
    ];
    all.sort();
    assert_eq!(w.attached(USER).await, all);
    let key = w.current_key().await;

    // WHEN an Update takes SecurityConfiguration out
    let mut props = create["ResourceProperties"].clone();
    props["Connections"] = json!(["SecurityAuditing"]);
    let update = w.follow_up(
        "update.json",
        &physical_id(&body),
        &props,
        Some(&create["ResourceProperties"]),
    );
    let updated = w.ok(&update).await;

    // THEN only our policy stays attached; same user, same key (a normal update)
    assert_eq!(w.attached(USER).await, vec![ours.clone()]);
    assert_eq!(physical_id(&updated), physical_id(&body));
    assert_eq!(w.current_key().await, key);
    // (and the same Update delivered twice ends the same)
    assert_eq!(w.ok(&update).await["Data"], updated["Data"]);
    assert_eq!(w.attached(USER).await, vec![ours.clone()]);

    // AND putting it back attaches them again
    let update = w.follow_up(
        "update.json",
        &physical_id(&body),
        &create["ResourceProperties"],
        Some(&props),
    );
    w.ok(&update).await;
    assert_eq!(w.attached(USER).await, all);
    w.assert_no_leaks().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_covering_trail_is_used_as_it_is_and_survives_delete() {
    // GIVEN the security team's own multi-region trail, logging
    let w = World::new().await;
    let theirs = foreign_trail(&w, "org-audit", true, true).await;

    // WHEN Create runs in Ensure mode
    let body = w.ok(&w.event("create.json")).await;

    // THEN that trail is reported as the coverage and no trail is added
    assert_eq!(body["Data"]["CloudTrailCoverage"], "existing-trail");
    assert_eq!(body["Data"]["TrailArn"], theirs.as_str());
    assert_eq!(w.trail_names().await, vec!["org-audit".to_string()]);

    // AND Delete leaves it untouched: still there, still logging, same tags
    let delete = w.follow_up(
        "delete.json",
        &physical_id(&body),
        &w.event("create.json")["ResourceProperties"],
        None,
    );
    w.ok(&delete).await;
    assert_eq!(w.trail_names().await, vec!["org-audit".to_string()]);
    assert!(is_logging(&w, "org-audit").await);
    let tags = w
        .cloudtrail
        .list_tags()
        .resource_id_list(&theirs)
        .send()
        .await
        .unwrap();
    let tags = tags.resource_tag_list()[0].tags_list();
    assert_eq!(tags.len(), 1);
    assert_eq!(
        (tags[0].key(), tags[0].value()),
        ("owner", Some("security-team"))
    );
    w.assert_no_leaks().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ensure_adds_a_trail_next_to_ones_that_do_not_cover_and_leaves_them_alone() {
    // GIVEN a single-region trail and a stopped multi-region trail, not ours
    let w = World::new().await;
    // and a multi-region, logging trail that records only write events
    foreign_trail(&w, "single", false, true).await;
    foreign_trail(&w, "stopped", true, false).await;
    foreign_trail(&w, "writes-only", true, true).await;
    let write_only = aws_sdk_cloudtrail::types::EventSelector::builder()
        .read_write_type(aws_sdk_cloudtrail::types::ReadWriteType::WriteOnly)
        .include_management_events(true)
        .build();
    w.cloudtrail
        .put_event_selectors()
        .trail_name("writes-only")
        .event_selectors(write_only)
        .send()
        .await
        .unwrap();

    // WHEN Create runs in Ensure mode
    let body = w.ok(&w.event("create.json")).await;

    // THEN a trail of the stack's own covers, and the others are as they were
    assert_eq!(body["Data"]["CloudTrailCoverage"], "created-trail");
    assert_eq!(w.trail_names().await.len(), 4);
    let selectors = w
        .cloudtrail
        .get_event_selectors()
        .trail_name("writes-only")
        .send()
        .await
        .unwrap();
    assert_eq!(
        selectors.event_selectors()[0].read_write_type(),
        Some(&aws_sdk_cloudtrail::types::ReadWriteType::WriteOnly)
    );
    assert!(
        !is_logging(&w, "stopped").await,
        "a trail we did not create is never started"
    );
    let single = w
        .cloudtrail
        .get_trail()
        .name("single")
        .send()
        .await
        .unwrap();
    assert_eq!(single.trail().unwrap().is_multi_region_trail(), Some(false));
    w.assert_no_leaks().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_fails_naming_what_is_missing_and_changes_nothing() {
    // GIVEN only a single-region trail
    let w = World::new().await;
    foreign_trail(&w, "single", false, true).await;
    let mut create = w.event("create.json");
    create["ResourceProperties"]["CloudTrail"] = json!("Verify");

    // WHEN Create runs in Verify mode
    let (answer, body) = w.run(&create).await;

    // THEN FAILED, with a reason that names the trail and the gap
    assert_eq!(answer.status, "FAILED");
    let reason = body["Reason"].as_str().unwrap();
    assert!(reason.contains("single: single-region"), "{reason}");
    assert!(
        reason.contains("Ensure"),
        "the reason says what to do: {reason}"
    );
    // AND nothing was made; the physical id is still the one a Delete can use
    assert!(w.user(USER).await.is_none());
    assert!(w.secret_key(AWSCURRENT).await.is_none());
    assert_eq!(w.trail_names().await, vec!["single".to_string()]);

    // AND the rollback Delete succeeds and changes nothing
    let delete = w.follow_up(
        "delete.json",
        &physical_id(&body),
        &create["ResourceProperties"],
        None,
    );
    w.ok(&delete).await;
    assert_eq!(w.trail_names().await, vec!["single".to_string()]);
    w.assert_no_leaks().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ignore_only_reports() {
    // GIVEN no trail at all, CloudTrail: Ignore
    let w = World::new().await;
    let mut create = w.event("create.json");
    create["ResourceProperties"]["CloudTrail"] = json!("Ignore");

    // WHEN Create runs
    let body = w.ok(&create).await;

    // THEN it reports the gap and creates no trail
    assert_eq!(body["Data"]["CloudTrailCoverage"], "not-covered");
    assert!(
        body["Data"]["CloudTrailDetail"]
            .as_str()
            .unwrap()
            .contains("no trail exists")
    );
    assert!(w.trail_names().await.is_empty());

    // AND an Update to Ensure re-converges: the trail is created then
    let mut props = create["ResourceProperties"].clone();
    props["CloudTrail"] = json!("Ensure");
    let update = w.follow_up(
        "update.json",
        &physical_id(&body),
        &props,
        Some(&create["ResourceProperties"]),
    );
    let updated = w.ok(&update).await;
    assert_eq!(updated["Data"]["CloudTrailCoverage"], "created-trail");
    assert_eq!(w.trail_names().await.len(), 1);
    w.assert_no_leaks().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delete_removes_all_it_made_but_keeps_the_log_bucket_and_is_repeatable() {
    // GIVEN a Create with both connections, and logs delivered to the bucket
    let w = World::new().await;
    let mut create = w.event("create.json");
    create["ResourceProperties"]["Connections"] =
        json!(["SecurityAuditing", "SecurityConfiguration"]);
    let body = w.ok(&create).await;
    let bucket = stack(&w).bucket_name();
    // moto applies the bucket policy's Deny of plain HTTP without its
    // condition: lift the policy while the test stands in for CloudTrail.
    let policy =
        w.s3.get_bucket_policy()
            .bucket(&bucket)
            .send()
            .await
            .unwrap();
    w.s3.delete_bucket_policy()
        .bucket(&bucket)
        .send()
        .await
        .unwrap();
    w.s3.put_object()
        .bucket(&bucket)
        .key(format!("AWSLogs/{}/CloudTrail/log.json.gz", w.account))
        .body(b"{}".to_vec().into())
        .send()
        .await
        .unwrap();
    w.s3.put_bucket_policy()
        .bucket(&bucket)
        .policy(policy.policy().unwrap())
        .send()
        .await
        .unwrap();
    let policy_arn = body["Data"]["PolicyArn"].as_str().unwrap().to_string();

    // WHEN CloudFormation deletes the resource
    let delete = w.follow_up(
        "delete.json",
        &physical_id(&body),
        &create["ResourceProperties"],
        None,
    );
    w.ok(&delete).await;

    // THEN the user, its keys, its policy and the trail are gone ...
    assert!(w.user(USER).await.is_none());
    assert!(!w.policy_exists(&policy_arn).await);
    assert!(w.trail_names().await.is_empty());
    // ... the managed policies themselves are untouched, and the audit logs are kept
    assert!(
        w.policy_exists("arn:aws:iam::aws:policy/SecurityAudit")
            .await
    );
    assert!(w.bucket_exists(&bucket).await);
    w.s3.delete_bucket_policy()
        .bucket(&bucket)
        .send()
        .await
        .unwrap();
    let objects = w.s3.list_objects_v2().bucket(&bucket).send().await.unwrap();
    assert_eq!(objects.contents().len(), 1, "the audit logs are kept");

    // AND a second Delete (a retry) succeeds with everything already gone
    let again = w.follow_up(
        "delete.json",
        &physical_id(&body),
        &create["ResourceProperties"],
        None,
    );
    w.ok(&again).await;
    w.assert_no_leaks().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_user_name_is_a_replacement_and_the_old_delete_spares_the_new() {
    // GIVEN a Create
    let w = World::new().await;
    let create = w.event("create.json");
    let first = w.ok(&create).await;
    let old_id = physical_id(&first);

    // WHEN an Update changes UserName
    let mut props = create["ResourceProperties"].clone();
    props["UserName"] = json!("mdca-connector");
    let update = w.follow_up(
        "update.json",
        &old_id,
        &props,
        Some(&create["ResourceProperties"]),
    );
    let second = w.ok(&update).await;
    let new_id = physical_id(&second);

    // THEN a new physical id, a new user whose key is in the secret
    assert_ne!(new_id, old_id);
    assert!(new_id.ends_with("/mdca-connector"));
    let key = w.current_key().await;
    assert_eq!(key.user_name, "mdca-connector");
    assert_eq!(w.identity_of(&key).await.unwrap(), new_id);

    // WHEN CloudFormation then deletes the old physical id
    let delete = w.follow_up("delete.json", &old_id, &create["ResourceProperties"], None);
    w.ok(&delete).await;

    // THEN the old user is gone and the new one keeps its user, policy, key and trail
    assert!(w.user(USER).await.is_none());
    assert!(w.user("mdca-connector").await.is_some());
    assert_eq!(
        w.attached("mdca-connector").await,
        vec![second["Data"]["PolicyArn"].as_str().unwrap().to_string()]
    );
    assert_eq!(
        w.keys("mdca-connector").await,
        vec![(key.access_key_id.clone(), true)]
    );
    assert_eq!(w.identity_of(&key).await.unwrap(), new_id);
    assert_eq!(w.trail_names().await.len(), 1);
    assert_eq!(second["Data"]["TrailArn"], first["Data"]["TrailArn"]);

    // AND deleting the new id then removes the trail too
    let delete = w.follow_up("delete.json", &new_id, &props, None);
    w.ok(&delete).await;
    assert!(w.user("mdca-connector").await.is_none());
    assert!(w.trail_names().await.is_empty());
    w.assert_no_leaks().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_path_moves_the_user_and_the_old_delete_only_removes_the_old_policy() {
    // GIVEN a Create under the default path
    let w = World::new().await;
    let create = w.event("create.json");
    let first = w.ok(&create).await;
    let key = w.current_key().await;

    // WHEN an Update changes UserPath, then CloudFormation deletes the old id
    let mut props = create["ResourceProperties"].clone();
    props["UserPath"] = json!("/security/mdca/");
    let update = w.follow_up(
        "update.json",
        &physical_id(&first),
        &props,
        Some(&create["ResourceProperties"]),
    );
    let second = w.ok(&update).await;
    assert_ne!(physical_id(&second), physical_id(&first));
    let delete = w.follow_up(
        "delete.json",
        &physical_id(&first),
        &create["ResourceProperties"],
        None,
    );
    w.ok(&delete).await;

    // THEN the same user lives under the new path, with the new policy only,
    // the same working key, and the trail
    let user = w.user(USER).await.expect("the user is kept");
    assert_eq!(user.path(), "/security/mdca/");
    let new_policy = second["Data"]["PolicyArn"].as_str().unwrap();
    assert!(new_policy.contains(":policy/security/mdca/"));
    assert_eq!(w.attached(USER).await, vec![new_policy.to_string()]);
    assert!(
        !w.policy_exists(first["Data"]["PolicyArn"].as_str().unwrap())
            .await
    );
    assert_eq!(w.current_key().await, key);
    assert_eq!(w.keys(USER).await, vec![(key.access_key_id.clone(), true)]);
    assert_eq!(w.trail_names().await.len(), 1);
    w.assert_no_leaks().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_rollback_of_a_failed_update_cleans_what_it_made() {
    // GIVEN a resource under USER, and what a failed Update to another
    // UserName left behind (a second user, made by this same resource)
    let w = World::new().await;
    let create = w.event("create.json");
    let body = w.ok(&create).await;
    let mut failed_props = create["ResourceProperties"].clone();
    failed_props["UserName"] = json!("half-made");
    let half = w.follow_up(
        "update.json",
        &physical_id(&body),
        &failed_props,
        Some(&create["ResourceProperties"]),
    );
    w.ok(&half).await;
    assert!(w.user("half-made").await.is_some());

    // WHEN CloudFormation rolls back: Update to the old properties, with the
    // physical id it holds, and the failed properties as "old"
    let rollback = w.follow_up(
        "update.json",
        &physical_id(&body),
        &create["ResourceProperties"],
        Some(&failed_props),
    );
    let back = w.ok(&rollback).await;

    // THEN the resource is back to USER with a working key, and the other user is gone
    assert_eq!(physical_id(&back), physical_id(&body));
    assert!(w.user("half-made").await.is_none());
    let key = w.current_key().await;
    assert_eq!(key.user_name, USER);
    assert_eq!(w.identity_of(&key).await.unwrap(), physical_id(&body));
    assert_eq!(w.keys(USER).await, vec![(key.access_key_id.clone(), true)]);
    assert_eq!(w.trail_names().await.len(), 1);
    w.assert_no_leaks().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retry_after_a_crash_between_key_and_secret_leaves_one_working_key() {
    // GIVEN a Create, then the state a crash between CreateAccessKey and
    // PutSecretValue leaves: keys nobody holds, and no key in the secret
    let w = World::new().await;
    let create = w.event("create.json");
    w.ok(&create).await;
    let old = w.current_key().await;
    let lost = w
        .iam
        .create_access_key()
        .user_name(USER)
        .send()
        .await
        .unwrap();
    let lost_id = lost.access_key().unwrap().access_key_id().to_string();
    w.secrets
        .put_secret_value()
        .secret_id(&w.secret_arn)
        .secret_string("{\"placeholder\": true}")
        .send()
        .await
        .unwrap();
    assert_eq!(
        w.keys(USER).await.len(),
        2,
        "IAM's limit of two keys is reached"
    );

    // WHEN CloudFormation retries the Create
    w.ok(&create).await;

    // THEN the user has exactly one key, the one in the secret, and it works
    let key = w.current_key().await;
    assert_ne!(key.access_key_id, old.access_key_id);
    assert_ne!(key.access_key_id, lost_id);
    assert_eq!(w.keys(USER).await, vec![(key.access_key_id.clone(), true)]);
    assert!(w.identity_of(&key).await.unwrap().ends_with(USER));
    w.assert_no_leaks().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_create_that_fails_midway_is_cleaned_by_its_rollback_delete() {
    // GIVEN a function role that may do everything but write the secret
    // (IAM enforced, on a moto server of its own): Create gets as far as the
    // trail, the user, the policy and a key
    let moto = Moto::start();
    let mut w = World::on(&moto).await;
    w.act_as_function_user(&json!({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "*", "Resource": "*"},
        {"Effect": "Deny", "Action": "secretsmanager:PutSecretValue", "Resource": "*"}
    ]}))
    .await;
    moto.enforce_iam().await;
    let create = w.event("create.json");

    // WHEN Create runs
    let (answer, body) = w.run(&create).await;

    // THEN FAILED names the failing call, with the physical id of what was begun
    moto.relax_iam().await;
    assert_eq!(answer.status, "FAILED");
    let reason = body["Reason"].as_str().unwrap();
    assert!(
        reason.contains("secretsmanager:PutSecretValue") && reason.contains("403"),
        "{reason}"
    );
    assert!(physical_id(&body).ends_with(&format!("user/defender-cloud-apps/{USER}")));
    assert!(
        w.user(USER).await.is_some(),
        "the user was made before the failure"
    );
    // AND the key that could not be stored was not left behind
    assert!(w.keys(USER).await.is_empty());

    // WHEN CloudFormation rolls back with Delete of that id (same identity)
    moto.enforce_iam().await;
    let delete = w.follow_up(
        "delete.json",
        &physical_id(&body),
        &create["ResourceProperties"],
        None,
    );
    w.ok(&delete).await;
    moto.relax_iam().await;

    // THEN nothing the stack made is left but the log bucket
    assert!(w.user(USER).await.is_none());
    assert!(w.local_policies().await.is_empty());
    assert!(w.trail_names().await.is_empty());
    assert!(w.bucket_exists(&stack(&w).bucket_name()).await);
    w.assert_no_leaks().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_create_cut_off_by_the_deadline_is_answered_and_cleaned_by_its_rollback() {
    // GIVEN how long a whole Create takes here (in a second fresh account:
    // moto's first account pays for loading the managed policies)
    let warm_up = World::new().await;
    warm_up.ok(&warm_up.event("create.json")).await;
    let w = World::new().await;
    let started = Instant::now();
    w.ok(&w.event("create.json")).await;
    let whole = started.elapsed();

    // WHEN Creates get a deadline that cuts them at different points
    let mut timed_out = 0;
    for fraction in [0.03, 0.1, 0.2, 0.35, 0.5, 0.7] {
        let w = World::new().await;
        let create = w.event("create.json");
        let margin = w.deps.settings.deadline_margin;
        let (answer, body) = w
            .run_with_budget(&create, margin + whole.mul_f64(fraction))
            .await;

        // THEN each is answered: FAILED "timed out" with the physical id (or,
        // if this run was quick, SUCCESS)
        if answer.status == "FAILED" {
            assert!(
                body["Reason"].as_str().unwrap().contains("timed out"),
                "{body}"
            );
            timed_out += 1;
        }
        assert!(physical_id(&body).starts_with("arn:aws:iam::"));

        // AND the rollback Delete leaves nothing but (possibly) the log bucket
        let delete = w.follow_up(
            "delete.json",
            &physical_id(&body),
            &create["ResourceProperties"],
            None,
        );
        w.ok(&delete).await;
        assert!(w.user(USER).await.is_none(), "cut at {fraction}");
        assert!(w.local_policies().await.is_empty(), "cut at {fraction}");
        assert!(w.trail_names().await.is_empty(), "cut at {fraction}");
        w.assert_no_leaks().await;
    }
    assert!(
        timed_out >= 2,
        "only {timed_out} of 6 runs were cut off (a whole Create took {whole:?})"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_properties_fail_clearly_and_change_nothing() {
    // GIVEN a Create with several bad properties
    let w = World::new().await;
    let mut create = w.event("create.json");
    create["ResourceProperties"]["Connections"] = json!(["SecurityAuditing", "Everything"]);
    create["ResourceProperties"]["CloudTrail"] = json!("Sometimes");
    create["ResourceProperties"]["UserPath"] = json!("no-slashes");

    // WHEN it runs
    let (answer, body) = w.run(&create).await;

    // THEN FAILED names each of them, nothing is made, and the rollback Delete is a no-op
    assert_eq!(answer.status, "FAILED");
    let reason = body["Reason"].as_str().unwrap();
    for needle in ["Everything", "Sometimes", "UserPath"] {
        assert!(reason.contains(needle), "{needle}: {reason}");
    }
    assert!(physical_id(&body).contains("create-failed"));
    assert!(w.user(USER).await.is_none());
    assert!(w.trail_names().await.is_empty());
    let delete = w.follow_up(
        "delete.json",
        &physical_id(&body),
        &create["ResourceProperties"],
        None,
    );
    w.ok(&delete).await;

    // AND an Update with a bad property fails with the physical id unchanged
    let good = w.ok(&w.event("create.json")).await;
    let update = w.follow_up(
        "update.json",
        &physical_id(&good),
        &create["ResourceProperties"],
        None,
    );
    let (answer, body) = w.run(&update).await;
    assert_eq!(answer.status, "FAILED");
    assert_eq!(physical_id(&body), physical_id(&good));
    assert_eq!(w.attached(USER).await.len(), 1);
    w.assert_no_leaks().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_belongs_to_someone_else_is_refused_and_never_deleted() {
    // GIVEN a user by the same name that the stack did not create
    let w = World::new().await;
    w.iam
        .create_user()
        .user_name(USER)
        .path("/defender-cloud-apps/")
        .send()
        .await
        .unwrap();
    let create = w.event("create.json");

    // WHEN Create runs
    let (answer, body) = w.run(&create).await;

    // THEN FAILED says so, and the rollback Delete does not delete that user
    assert_eq!(answer.status, "FAILED");
    assert!(
        body["Reason"]
            .as_str()
            .unwrap()
            .contains("was not created by this stack"),
        "{body}"
    );
    assert!(
        w.trail_names().await.is_empty(),
        "refused before anything is made"
    );
    let delete = w.follow_up(
        "delete.json",
        &physical_id(&body),
        &create["ResourceProperties"],
        None,
    );
    w.ok(&delete).await;
    assert!(w.user(USER).await.is_some());

    // AND a secret that another stack's template declared is refused before anything changes
    let w = World::new().await;
    let other = w
        .secrets
        .create_secret()
        .name(format!("other-{}", w.account))
        .secret_string("{\"keep\": \"me\"}")
        .tags(
            aws_sdk_secretsmanager::types::Tag::builder()
                .key("aws:cloudformation:stack-id")
                .value("arn:aws:cloudformation:us-east-1:111111111111:stack/other/guid")
                .build(),
        )
        .send()
        .await
        .unwrap();
    let mut create = w.event("create.json");
    create["ResourceProperties"]["SecretArn"] = json!(other.arn().unwrap());
    let (answer, body) = w.run(&create).await;
    assert_eq!(answer.status, "FAILED");
    assert!(
        body["Reason"]
            .as_str()
            .unwrap()
            .contains("belongs to another stack"),
        "{body}"
    );
    assert!(w.user(USER).await.is_none());
    let value = w
        .secrets
        .get_secret_value()
        .secret_id(other.arn().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(value.secret_string(), Some("{\"keep\": \"me\"}"));
    w.assert_no_leaks().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_leak_scan_finds_a_planted_secret() {
    // GIVEN a secret value written where the scan looks
    let w = World::new().await;
    w.ok(&w.event("create.json")).await;
    let key: StoredKey = w.current_key().await;
    tracing::info!(
        planted = key.secret_access_key.expose(),
        "deliberate leak for the scanner self-test"
    );

    // WHEN the scan runs, THEN it fails
    let scan = std::panic::AssertUnwindSafe(w.assert_no_leaks());
    let caught = futures_util::FutureExt::catch_unwind(scan).await;
    // (other tests scan for their own worlds' secrets, so the planted line
    // does not fail them)
    assert!(
        caught.is_err(),
        "the leak scan must catch a secret in the logs"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_given_trail_bucket_is_used_and_a_missing_one_is_named() {
    // GIVEN the security team's own log bucket
    let w = World::new().await;
    let bucket = format!("team-logs-{}", w.account);
    w.s3.create_bucket().bucket(&bucket).send().await.unwrap();
    let mut create = w.event("create.json");
    create["ResourceProperties"]["TrailBucketName"] = json!(bucket);

    // WHEN Create runs in Ensure mode with no trail
    w.ok(&create).await;

    // THEN the created trail logs there, no bucket of the stack's is made,
    // and the team's bucket is left as it was
    let trails = w.cloudtrail.describe_trails().send().await.unwrap();
    assert_eq!(
        trails.trail_list()[0].s3_bucket_name(),
        Some(bucket.as_str())
    );
    assert!(!w.bucket_exists(&stack(&w).bucket_name()).await);
    assert!(
        w.s3.get_bucket_policy()
            .bucket(&bucket)
            .send()
            .await
            .is_err()
    );
    w.assert_no_leaks().await;

    // AND a bucket that does not exist is named in the failure, with nothing made
    let w = World::new().await;
    let mut create = w.event("create.json");
    create["ResourceProperties"]["TrailBucketName"] = json!("no-such-bucket-anywhere");
    let (answer, body) = w.run(&create).await;
    assert_eq!(answer.status, "FAILED");
    assert!(
        body["Reason"]
            .as_str()
            .unwrap()
            .contains("no-such-bucket-anywhere"),
        "{body}"
    );
    assert!(w.trail_names().await.is_empty());
    assert!(w.user(USER).await.is_none());
    w.assert_no_leaks().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_secret_on_update_gets_the_key_and_the_old_key_is_retired() {
    // GIVEN a Create, and a second secret declared by the same stack
    let w = World::new().await;
    let create = w.event("create.json");
    let body = w.ok(&create).await;
    let old_key = w.current_key().await;
    let second_arn = w
        .declare_secret(&format!("cloudapps/second-{}", w.account))
        .await;

    // WHEN an Update points SecretArn at it
    let mut props = create["ResourceProperties"].clone();
    props["SecretArn"] = json!(second_arn);
    let update = w.follow_up(
        "update.json",
        &physical_id(&body),
        &props,
        Some(&create["ResourceProperties"]),
    );
    let updated = w.ok(&update).await;

    // THEN the new secret holds the user's only key, a working one
    assert_eq!(updated["Data"]["SecretArn"], second_arn.as_str());
    let text = w.secret_text(&second_arn, AWSCURRENT).await.unwrap();
    let key = StoredKey::parse(&Sensitive::new(text)).unwrap();
    assert_ne!(key.access_key_id, old_key.access_key_id);
    assert_eq!(w.keys(USER).await, vec![(key.access_key_id.clone(), true)]);
    assert_eq!(w.identity_of(&key).await.unwrap(), physical_id(&body));

    // AND neither key shows up in any log or response
    let bodies: String = w.catcher.all().iter().map(|c| c.body.clone()).collect();
    support::assert_no_leak(
        &[key.secret_access_key.expose().to_string()],
        &[
            ("the logs", &support::captured_logs()),
            ("a CloudFormation response", &bodies),
        ],
    );
    w.assert_no_leaks().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn waiting_for_a_key_is_bounded_and_backs_off() {
    // GIVEN a key that never authenticates as the user (moto answers an
    // unknown key as its default identity)
    let w = World::new().await;
    let user = stack(&w).user("/defender-cloud-apps/", USER);
    let key = StoredKey {
        access_key_id: "AKIAIOSFODNN7EXAMPLE".into(),
        secret_access_key: Sensitive::new("never-valid-secret-value-for-this-test"),
        user_name: USER.into(),
    };
    let bounded = Settings {
        key_ready_timeout: Duration::from_secs(2),
        ..support::test_settings()
    };

    // WHEN the connector waits for it
    let started = Instant::now();
    let far = started + Duration::from_secs(60);
    let err = access_key::wait_until_authenticates(&w.sdk, &key, &user, &w.account, &bounded, far)
        .await
        .unwrap_err()
        .to_string();

    // THEN it gives up at the bound (never past it), after more than one
    // try, saying which key, whose, and the last answer
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(1000) && took <= Duration::from_millis(2000) + CALL_SLACK,
        "{took:?}"
    );
    let tries: u32 = err
        .split(" tries")
        .next()
        .unwrap()
        .rsplit('(')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert!(tries >= 2, "{err}");
    assert!(
        err.contains("AKIAIOSFODNN7EXAMPLE") && err.contains(USER) && err.contains("instead"),
        "{err}"
    );
    assert!(!err.contains("never-valid-secret"));

    // AND the invocation's deadline bounds it too
    let started = Instant::now();
    let long = Settings {
        key_ready_timeout: Duration::from_secs(60),
        ..support::test_settings()
    };
    access_key::wait_until_authenticates(
        &w.sdk,
        &key,
        &user,
        &w.account,
        &long,
        started + Duration::from_millis(300),
    )
    .await
    .unwrap_err();
    assert!(
        started.elapsed() <= Duration::from_millis(300) + CALL_SLACK,
        "{:?}",
        started.elapsed()
    );
}

/// How far past its bound the wait may end: the last sts:GetCallerIdentity
/// in flight, which the client cuts at 5 s (a loaded 2-core machine has
/// seen one take over 1.5 s against the shared moto).
const CALL_SLACK: Duration = Duration::from_secs(5);
