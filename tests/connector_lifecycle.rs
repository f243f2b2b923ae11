//! The connector custom resource against moto server, from Create to Delete:
//! what a user would check by hand in the console after each CloudFormation
//! event (the user, its policy, the key, the secret).

use std::time::{Duration, Instant};

use cloudapps::access_key::Readiness;
use cloudapps::iam_user::{self, policy_document};
use cloudapps::key::StoredKey;
use cloudapps::key_store::AWSCURRENT;
use cloudapps::names::TAG_STACK_ID;
use cloudapps::sensitive::Sensitive;
use cloudapps::{access_key, trail};
use serde_json::{Value, json};
use testbed::{Moto, USER, World, physical_id, sdk_config};

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

    // AND the user reaches exactly one policy, through its group (nothing
    // attached to the user itself, nothing inline: Security Hub IAM.2):
    // ours, with exactly the guide's statement
    let policy_arn = body["Data"]["PolicyArn"].as_str().unwrap();
    assert_eq!(
        policy_arn,
        format!(
            "arn:aws:iam::{}:policy/defender-cloud-apps/{USER}-cloudapps",
            w.account
        )
    );
    assert_eq!(w.group_attached(USER).await, vec![policy_arn.to_string()]);
    assert_eq!(w.groups_of(USER).await, vec![format!("{USER}-cloudapps")]);
    assert!(
        w.attached(USER).await.is_empty(),
        "nothing attached to the user"
    );
    let inline = w
        .iam
        .list_user_policies()
        .user_name(USER)
        .send()
        .await
        .unwrap();
    assert!(inline.policy_names().is_empty(), "no inline policy");
    let group = w.iam.get_group().group_name(format!("{USER}-cloudapps"));
    let group = group.send().await.unwrap();
    assert_eq!(group.group().unwrap().path(), "/defender-cloud-apps/");
    assert_eq!(
        body["Data"]["GroupArn"],
        format!(
            "arn:aws:iam::{}:group/defender-cloud-apps/{USER}-cloudapps",
            w.account
        )
    );
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
    let bucket = w.stack_ref().bucket_name();
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
    assert_eq!(w.group_attached(USER).await, all);
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
    assert_eq!(w.group_attached(USER).await, vec![ours.clone()]);
    assert_eq!(physical_id(&updated), physical_id(&body));
    assert_eq!(w.current_key().await, key);
    // (and the same Update delivered twice ends the same)
    assert_eq!(w.ok(&update).await["Data"], updated["Data"]);
    assert_eq!(w.group_attached(USER).await, vec![ours.clone()]);

    // AND putting it back attaches them again
    let update = w.follow_up(
        "update.json",
        &physical_id(&body),
        &create["ResourceProperties"],
        Some(&props),
    );
    w.ok(&update).await;
    assert_eq!(w.group_attached(USER).await, all);
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
    let bucket = w.stack_ref().bucket_name();
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
    testbed::assert_no_leak(
        &[key.secret_access_key.expose().to_string()],
        &[
            ("the logs", &testbed::captured_logs()),
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
    let user = w.stack_ref().user("/defender-cloud-apps/", USER);
    let key = StoredKey {
        access_key_id: "AKIAIOSFODNN7EXAMPLE".into(),
        secret_access_key: Sensitive::new("never-valid-secret-value-for-this-test"),
        user_name: USER.into(),
    };
    let bounded = Readiness {
        timeout: Duration::from_secs(2),
        ..testbed::test_settings().key_ready
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
    let long = Readiness {
        timeout: Duration::from_secs(60),
        ..testbed::test_settings().key_ready
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
