//! What goes wrong, against moto server: crashes and deadlines mid-way, bad
//! properties, what belongs to someone else, and the leak scan itself.

use std::time::Instant;

use cloudapps::key::StoredKey;
use serde_json::json;
use testbed::{Moto, USER, World, physical_id};

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

    // THEN the user has exactly one key, the one in the secret, and it
    // works: the previous key, still active and perhaps in the portal's
    // hands, is current again; the key nobody holds is deleted
    let key = w.current_key().await;
    assert_eq!(key.access_key_id, old.access_key_id);
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
    assert!(w.bucket_exists(&w.stack_ref().bucket_name()).await);
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

    // AND limits a later call would hit fail just as early: a UserPath so
    // long that the user's ARN no longer fits the secret's tag, a connector
    // name a tag cannot hold, a tag of the stack's own
    let mut limits = w.event("create.json");
    let props = &mut limits["ResourceProperties"];
    props["UserPath"] = json!(format!("/{}/", "p".repeat(230)));
    props["ConnectorName"] = json!("aws&co");
    props["Tags"] = json!(["cloudapps:user=me"]);
    let (answer, body) = w.run(&limits).await;
    assert_eq!(answer.status, "FAILED");
    let reason = body["Reason"].as_str().unwrap();
    for needle in ["user's ARN", "ConnectorName", "reserved"] {
        assert!(reason.contains(needle), "{needle}: {reason}");
    }
    assert!(w.user(USER).await.is_none());
    assert!(w.trail_names().await.is_empty());
    assert!(w.local_policies().await.is_empty());

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
    assert_eq!(w.group_attached(USER).await.len(), 1);
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
