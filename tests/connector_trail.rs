//! The connector's CloudTrail step against moto server: a covering trail is
//! used as it is, `Ensure` creates the stack's own next to ones that do not
//! cover, `Verify` and `Ignore` only read, a given bucket is used.

use cloudapps::key_store::AWSCURRENT;
use serde_json::json;
use testbed::{USER, World, physical_id};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_covering_trail_is_used_as_it_is_and_survives_delete() {
    // GIVEN the security team's own multi-region trail, logging
    let w = World::new().await;
    let theirs = w.foreign_trail("org-audit", true, true).await;

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
    assert!(w.is_logging("org-audit").await);
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
    w.foreign_trail("single", false, true).await;
    w.foreign_trail("stopped", true, false).await;
    w.foreign_trail("writes-only", true, true).await;
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
        !w.is_logging("stopped").await,
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
    w.foreign_trail("single", false, true).await;
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
    assert!(!w.bucket_exists(&w.stack_ref().bucket_name()).await);
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
