//! The connector with the portal: `PORTAL_MODE=api` against the portal
//! emulator (whose test really calls moto with the handed key), the
//! pre-flight, and `PORTAL_MODE=handoff` through moto's SNS.

use std::time::{Duration, Instant};

use cloudapps::config::{Env, PortalChoice};
use cloudapps::deps::{self, Deps};
use cloudapps::portal::Portal;
use portal_emulator::{Config, Fault, FaultKind};
use serde_json::{Value, json};
use testbed::{Moto, PortalAuth, World, sdk_config};

const USER: &str = "defender-cloud-apps";

fn fast() -> Config {
    testbed::quick_portal()
}

async fn portal_world(config: Config, auth: PortalAuth) -> World {
    let mut w = World::new().await;
    w.use_portal(config, auth).await;
    w
}

fn fault(route: &str, kind: FaultKind, times: u32) -> Fault {
    Fault {
        route: Some(route.to_string()),
        kind,
        times,
    }
}

fn data<'a>(body: &'a Value, key: &str) -> &'a str {
    body["Data"][key].as_str().unwrap_or_default()
}

fn routes_called(w: &World) -> Vec<String> {
    w.emulator()
        .requests()
        .iter()
        .filter_map(|r| r.route.clone())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_connects_the_instance_and_its_test_succeeds_with_the_stored_key() {
    // GIVEN the connector in api mode, with a legacy API token
    let w = portal_world(fast(), PortalAuth::Token).await;

    // WHEN CloudFormation sends Create
    let body = w.ok(&w.event("create.json")).await;

    // THEN the portal holds one AWS instance, named as asked, with the key in
    // AWSCURRENT and the chosen connections, and the portal's own test of
    // that key against AWS succeeded
    let key = w.current_key().await;
    let instances = w.emulator().instances();
    assert_eq!(instances.len(), 1, "{instances:?}");
    let instance = &instances[0];
    assert_eq!(instance.name, data(&body, "ConnectorName"));
    assert_eq!(instance.access_key_id, key.access_key_id);
    assert_eq!(instance.connections, vec!["SecurityAuditing".to_string()]);
    assert_eq!(instance.status, "connected");
    let tests = w.emulator().tests();
    assert_eq!(tests.len(), 1);
    assert_eq!(tests[0].state, "succeeded", "{:?}", tests[0].reason);
    assert_eq!(tests[0].access_key_id, key.access_key_id);
    // AND CloudFormation's Data says so, with the pre-flight's summary
    assert_eq!(data(&body, "PortalStatus"), "connected");
    assert_eq!(data(&body, "PortalInstance"), instance.id);
    assert!(data(&body, "PortalTest").starts_with("succeeded"), "{body}");
    assert!(
        data(&body, "Preflight").contains("6 calls allowed"),
        "{body}"
    );
    // AND the requests were: find, create, test, then reads of the test
    let routes = routes_called(&w);
    assert_eq!(&routes[..3], ["find", "create", "test"], "{routes:?}");
    assert!(routes[3..].iter().all(|r| r == "test_result"), "{routes:?}");
    w.assert_no_leaks().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_entra_app_signs_in_once_and_updates_retest_only_when_something_changed() {
    // GIVEN the connector in api mode with an Entra ID application, after a Create
    let w = portal_world(fast(), PortalAuth::Entra).await;
    let create = w.event("create.json");
    let body = w.ok(&create).await;
    let id = body["PhysicalResourceId"].as_str().unwrap().to_string();
    let props = create["ResourceProperties"].clone();

    // WHEN an Update changes nothing the portal holds (the trail mode)
    let before = w.emulator().requests().len();
    let mut same = props.clone();
    same["CloudTrail"] = json!("Verify");
    let body = w
        .ok(&w.follow_up("update.json", &id, &same, Some(&props)))
        .await;

    // THEN the portal was only looked at: one find, no new test
    let routes = routes_called(&w);
    assert_eq!(&routes[before..], ["find"], "{routes:?}");
    assert!(data(&body, "PortalTest").starts_with("not-run"), "{body}");
    assert_eq!(data(&body, "PortalStatus"), "connected");

    // WHEN an Update adds Security configuration
    let mut more = same.clone();
    more["Connections"] = json!(["SecurityAuditing", "SecurityConfiguration"]);
    let body = w
        .ok(&w.follow_up("update.json", &id, &more, Some(&same)))
        .await;

    // THEN the same instance was updated and tested again
    let instances = w.emulator().instances();
    assert_eq!(instances.len(), 1);
    assert_eq!(
        instances[0].connections,
        vec!["SecurityAuditing", "SecurityConfiguration"]
    );
    assert_eq!(w.emulator().tests().len(), 2);
    assert!(data(&body, "PortalTest").starts_with("succeeded"), "{body}");

    // AND the Entra token was asked for once and used as a bearer token
    let requests = w.emulator().requests();
    let sign_ins = requests
        .iter()
        .filter(|r| r.route.as_deref() == Some("token"))
        .count();
    assert_eq!(sign_ins, 1, "the token is cached");
    let portal_calls: Vec<_> = requests
        .iter()
        .filter(|r| r.route.as_deref().is_some_and(|r| r != "token"))
        .collect();
    assert!(portal_calls.iter().all(|r| {
        r.headers
            .iter()
            .any(|(k, v)| k.eq_ignore_ascii_case("authorization") && v.starts_with("Bearer "))
    }));
    w.assert_no_leaks().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rename_updates_the_same_instance_and_delete_disables_it() {
    // GIVEN a connected instance
    let w = portal_world(fast(), PortalAuth::Token).await;
    let create = w.event("create.json");
    let body = w.ok(&create).await;
    let id = body["PhysicalResourceId"].as_str().unwrap().to_string();
    let props = create["ResourceProperties"].clone();

    // WHEN an Update renames the connector
    let mut renamed = props.clone();
    renamed["ConnectorName"] = json!("aws-production");
    w.ok(&w.follow_up("update.json", &id, &renamed, Some(&props)))
        .await;

    // THEN the instance is renamed, not duplicated
    let instances = w.emulator().instances();
    assert_eq!(instances.len(), 1);
    assert_eq!(instances[0].name, "aws-production");
    assert_eq!(instances[0].status, "connected");

    // WHEN the stack is deleted
    w.ok(&w.follow_up("delete.json", &id, &renamed, None)).await;

    // THEN the instance is disabled (it no longer has a key that works)
    let instances = w.emulator().instances();
    assert!(!instances[0].enabled);
    assert_eq!(instances[0].status, "disabled");
    assert!(w.user(USER).await.is_none());

    // AND a repeated Delete is fine
    w.ok(&w.follow_up("delete.json", &id, &renamed, None)).await;
    w.assert_no_leaks().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_delete_of_a_replaced_user_leaves_the_successors_instance_alone() {
    // GIVEN a Create, then an Update that replaces the user (new UserName):
    // the same instance now holds the new user's key
    let w = portal_world(fast(), PortalAuth::Token).await;
    let create = w.event("create.json");
    let old = w.ok(&create).await;
    let old_id = old["PhysicalResourceId"].as_str().unwrap().to_string();
    let props = create["ResourceProperties"].clone();
    let mut replaced = props.clone();
    replaced["UserName"] = json!("defender-cloud-apps-2");
    let new = w
        .ok(&w.follow_up("update.json", &old_id, &replaced, Some(&props)))
        .await;
    let new_id = new["PhysicalResourceId"].as_str().unwrap().to_string();
    assert_ne!(new_id, old_id);
    let key = w.current_key().await;
    assert_eq!(key.user_name, "defender-cloud-apps-2");

    // WHEN CloudFormation deletes the old physical id
    w.ok(&w.follow_up("delete.json", &old_id, &props, None))
        .await;

    // THEN the instance still works with the new key, and the old user is gone
    let instances = w.emulator().instances();
    assert_eq!(instances.len(), 1);
    assert_eq!(instances[0].access_key_id, key.access_key_id);
    assert!(instances[0].enabled);
    assert_eq!(instances[0].status, "connected");
    assert!(w.user(USER).await.is_none());
    assert!(w.user("defender-cloud-apps-2").await.is_some());
    w.assert_no_leaks().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_without_a_needed_permission_fails_the_preflight_naming_it() {
    // GIVEN IAM enforced (a moto server of its own), a function identity
    // that may do everything, and a connected instance
    let moto = Moto::start();
    let mut w = World::on(&moto).await;
    w.act_as_function_user(&json!({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "*", "Resource": "*"}]}))
        .await;
    w.use_portal(fast(), PortalAuth::Token).await;
    moto.enforce_iam().await;
    let create = w.event("create.json");
    let body = w.ok(&create).await;
    let id = body["PhysicalResourceId"].as_str().unwrap().to_string();
    let props = create["ResourceProperties"].clone();

    // WHEN someone denies the user cloudtrail:LookupEvents and an Update
    // hands the key over again (new connections)
    aws_sdk_iam::Client::new(&w.sdk)
        .put_user_policy()
        .user_name(USER)
        .policy_name("deny-lookup")
        .policy_document(
            json!({"Version": "2012-10-17", "Statement": [
                {"Effect": "Deny", "Action": "cloudtrail:LookupEvents", "Resource": "*"}]})
            .to_string(),
        )
        .send()
        .await
        .unwrap();
    let before = w.emulator().requests().len();
    let mut more = props.clone();
    more["Connections"] = json!(["SecurityAuditing", "SecurityConfiguration"]);
    let (answer, body) = w
        .run(&w.follow_up("update.json", &id, &more, Some(&props)))
        .await;
    moto.relax_iam().await;

    // THEN FAILED names the missing permission and the policy to fix
    assert_eq!(answer.status, "FAILED");
    let reason = body["Reason"].as_str().unwrap();
    assert!(reason.contains("pre-flight"), "{reason}");
    assert!(reason.contains("cloudtrail:LookupEvents"), "{reason}");
    assert!(
        !reason.contains("s3:ListAllMyBuckets"),
        "only what is missing: {reason}"
    );
    assert!(reason.contains(&format!("{USER}-cloudapps")), "{reason}");
    // AND nothing was handed to the portal: it still holds the old connections
    assert_eq!(w.emulator().requests().len(), before);
    assert_eq!(
        w.emulator().instances()[0].connections,
        vec!["SecurityAuditing"]
    );
    w.assert_no_leaks().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_trail_fails_the_preflight_with_that_reason() {
    // GIVEN a multi-region trail of the account that does not log, and a
    // connector told to leave CloudTrail alone
    let w = portal_world(fast(), PortalAuth::Token).await;
    let bucket = format!("audit-{:08x}", fastrand::u32(..));
    w.s3.create_bucket().bucket(&bucket).send().await.unwrap();
    w.cloudtrail
        .create_trail()
        .name("org-audit")
        .s3_bucket_name(&bucket)
        .is_multi_region_trail(true)
        .send()
        .await
        .unwrap();
    let mut create = w.event("create.json");
    create["ResourceProperties"]["CloudTrail"] = json!("Ignore");

    // WHEN Create runs
    let (answer, body) = w.run(&create).await;

    // THEN FAILED says the trail is not logging and how to fix it
    assert_eq!(answer.status, "FAILED");
    let reason = body["Reason"].as_str().unwrap();
    assert!(
        reason.contains("no multi-region trail is logging (org-audit not logging)"),
        "{reason}"
    );
    assert!(reason.contains("StartLogging"), "{reason}");
    // AND the portal was never called
    assert!(w.emulator().requests().is_empty());
    w.assert_no_leaks().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn throttling_bursts_and_retry_after_are_waited_out() {
    // GIVEN a portal that allows 3 requests per 1.5 s and a 429 with
    // Retry-After: 1 on the first look-up
    let config = Config {
        limit: 3,
        window: Duration::from_millis(1500),
        ..fast()
    };
    let w = portal_world(config, PortalAuth::Token).await;
    w.emulator().inject(fault(
        "find",
        FaultKind::TooMany {
            retry_after: Some("1".into()),
        },
        1,
    ));

    // WHEN Create runs
    let started = Instant::now();
    let body = w.ok(&w.event("create.json")).await;

    // THEN it connected, after waiting as told
    assert_eq!(data(&body, "PortalStatus"), "connected", "{body}");
    assert!(
        w.emulator().throttled() >= 2,
        "{}",
        w.emulator().throttled()
    );
    let requests = w.emulator().requests();
    assert_eq!(requests[0].status, 429);
    // a second after the 429 with Retry-After: 1; the natural 429s (no
    // Retry-After) were waited out too
    let waited = requests[1].at - requests[0].at;
    assert!(
        waited >= Duration::from_secs(1) && waited < Duration::from_millis(1500),
        "{waited:?}"
    );
    assert!(requests.iter().skip(1).any(|r| r.status == 429));
    assert!(started.elapsed() >= Duration::from_secs(1));
    w.assert_no_leaks().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_throttled_connector_asks_more_often_as_its_deadline_nears() {
    // GIVEN a portal that throttles the look-up 10 times without
    // Retry-After, and a client whose pauses grow from 100 ms to 30 s
    let mut w = portal_world(fast(), PortalAuth::Token).await;
    let mut config = testbed::portal_settings(&w.emulator().url, &w.portal_secret);
    config.timings.retry_max = Duration::from_secs(30);
    w.deps = Deps::new(
        &w.sdk,
        testbed::test_settings(),
        Portal::api(config, aws_sdk_secretsmanager::Client::new(&w.sdk)).unwrap(),
    )
    .unwrap();
    w.emulator()
        .inject(fault("find", FaultKind::TooMany { retry_after: None }, 10));

    // WHEN Create runs with 14 s left (12 s before the 2 s margin); the
    // ten growing pauses alone would take 11.3 s
    let (answer, body) = w
        .run_with_budget(&w.event("create.json"), Duration::from_secs(14))
        .await;

    // THEN it connected: no pause was longer than a tenth of the time left
    assert_eq!(answer.status, "SUCCESS", "{:?}", answer.reason);
    assert_eq!(data(&body, "PortalStatus"), "connected", "{body}");
    let finds: Vec<Instant> = w
        .emulator()
        .requests()
        .iter()
        .filter(|r| r.route.as_deref() == Some("find"))
        .map(|r| r.at)
        .collect();
    assert!(finds.len() >= 11, "{}", finds.len());
    let longest = finds.windows(2).map(|p| p[1] - p[0]).max().unwrap();
    assert!(longest < Duration::from_millis(1400), "{longest:?}");
    w.assert_no_leaks().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_errors_html_error_pages_and_slow_answers_are_survived() {
    // GIVEN a portal that fails now and then: 503s, an HTML 502 page, an
    // answer slower than the client's 2 s timeout
    let w = portal_world(fast(), PortalAuth::Token).await;
    let e = w.emulator();
    e.inject(fault("find", FaultKind::Status(503), 2));
    e.inject(fault("test", FaultKind::Html(502), 1));
    e.inject(fault(
        "test_result",
        FaultKind::Slow(Duration::from_secs(3)),
        1,
    ));
    e.inject(fault("create", FaultKind::Status(500), 1));

    // WHEN Create runs
    let body = w.ok(&w.event("create.json")).await;

    // THEN it connected once: the failed create was looked up, not re-sent blindly
    assert_eq!(data(&body, "PortalStatus"), "connected", "{body}");
    assert_eq!(w.emulator().instances().len(), 1);
    let statuses: Vec<u16> = w.emulator().requests().iter().map(|r| r.status).collect();
    assert!(statuses.contains(&503) && statuses.contains(&502) && statuses.contains(&500));
    w.assert_no_leaks().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_html_page_instead_of_json_fails_at_once_with_what_to_check() {
    // GIVEN a PORTAL_URL that answers a web page (a login page, a proxy)
    let w = portal_world(fast(), PortalAuth::Token).await;
    w.emulator().inject(fault("find", FaultKind::Html(200), 10));

    // WHEN Create runs
    let (answer, body) = w.run(&w.event("create.json")).await;

    // THEN FAILED says so, after one request
    assert_eq!(answer.status, "FAILED");
    let reason = body["Reason"].as_str().unwrap();
    assert!(reason.contains("HTML page instead of JSON"), "{reason}");
    assert!(reason.contains("PORTAL_URL"), "{reason}");
    assert_eq!(w.emulator().requests().len(), 1);
    w.assert_no_leaks().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_portal_credentials_fail_clearly_and_are_not_retried() {
    for (auth, expected) in [
        (
            PortalAuth::WrongToken,
            "portal credentials rejected (HTTP 401)",
        ),
        (PortalAuth::WrongClientSecret, "AADSTS7000215"),
    ] {
        // GIVEN portal credentials the portal (or Entra ID) refuses
        let w = portal_world(fast(), auth).await;

        // WHEN Create runs
        let (answer, body) = w.run(&w.event("create.json")).await;

        // THEN FAILED says the portal credentials were rejected, after one try
        assert_eq!(answer.status, "FAILED");
        let reason = body["Reason"].as_str().unwrap();
        assert!(reason.contains(expected), "{reason}");
        assert!(
            reason.contains(&w.portal_secret),
            "names the secret: {reason}"
        );
        assert_eq!(w.emulator().requests().len(), 1, "{auth:?}");
        // AND nothing in the portal, while the AWS side is ready for a retry
        assert!(w.emulator().instances().is_empty());
        w.assert_no_leaks().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_portal_that_stays_down_is_reported_before_the_deadline() {
    // GIVEN a portal answering 503 to everything, and 12 s left
    let w = portal_world(fast(), PortalAuth::Token).await;
    w.emulator()
        .inject(fault("find", FaultKind::Status(503), 10_000));

    // WHEN Create runs
    let started = Instant::now();
    let (answer, body) = w
        .run_with_budget(&w.event("create.json"), Duration::from_secs(12))
        .await;

    // THEN FAILED, in time, says what the portal answered and what to do
    assert!(started.elapsed() < Duration::from_secs(12));
    assert_eq!(answer.status, "FAILED");
    let reason = body["Reason"].as_str().unwrap();
    assert!(reason.contains("HTTP 503"), "{reason}");
    assert!(reason.contains("run the operation again"), "{reason}");
    assert!(w.emulator().requests().len() > 3, "it was retried");
    w.assert_no_leaks().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_test_that_outlasts_the_invocation_is_reported_as_still_running() {
    // GIVEN a portal whose test takes 5 minutes, and 15 s left
    let config = Config {
        test_duration: Duration::from_secs(300),
        ..fast()
    };
    let w = portal_world(config, PortalAuth::Token).await;

    // WHEN Create runs
    let started = Instant::now();
    let (answer, body) = w
        .run_with_budget(&w.event("create.json"), Duration::from_secs(15))
        .await;

    // THEN it answers SUCCESS before the deadline, saying the test still runs
    assert!(started.elapsed() < Duration::from_secs(15));
    assert_eq!(answer.status, "SUCCESS", "{:?}", answer.reason);
    assert_eq!(data(&body, "PortalStatus"), "pending");
    assert!(
        data(&body, "PortalTest").contains("test still running"),
        "{body}"
    );
    assert_eq!(w.emulator().tests()[0].state, "running");
    w.assert_no_leaks().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_portal_test_fails_the_create_with_the_portals_reason() {
    // GIVEN a portal that cannot reach AWS (its test calls a closed port)
    let config = Config {
        aws_endpoint: Some("http://127.0.0.1:9".into()),
        ..fast()
    };
    let w = portal_world(config, PortalAuth::Token).await;

    // WHEN Create runs
    let (answer, body) = w.run(&w.event("create.json")).await;

    // THEN FAILED carries the portal test's reason
    assert_eq!(answer.status, "FAILED");
    let reason = body["Reason"].as_str().unwrap();
    assert!(reason.contains("portal's test of instance"), "{reason}");
    assert!(reason.contains("sts:GetCallerIdentity"), "{reason}");
    // AND its rollback Delete disables the instance that was made
    let id = body["PhysicalResourceId"].as_str().unwrap().to_string();
    let create = w.event("create.json");
    w.ok(&w.follow_up("delete.json", &id, &create["ResourceProperties"], None))
        .await;
    assert_eq!(w.emulator().instances()[0].status, "disabled");
    w.assert_no_leaks().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn routes_follow_the_configuration() {
    // GIVEN a portal whose app connector routes live elsewhere, and the same
    // routes configured in the client
    let mut config = fast();
    config.routes = [
        ("find".to_string(), "/v2/aws/list".to_string()),
        ("create".to_string(), "/v2/aws/new".to_string()),
        ("test".to_string(), "/v2/aws/{id}/check".to_string()),
        (
            "test_result".to_string(),
            "/v2/aws/{id}/check/{testId}".to_string(),
        ),
    ]
    .into();
    let w = portal_world(config, PortalAuth::Token).await;

    // WHEN Create runs
    let body = w.ok(&w.event("create.json")).await;

    // THEN it connected through those paths
    assert_eq!(data(&body, "PortalStatus"), "connected", "{body}");
    let requests = w.emulator().requests();
    assert!(
        requests[0].path.starts_with("/v2/aws/list"),
        "{:?}",
        requests[0]
    );
    assert!(requests[1].path.starts_with("/v2/aws/new"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn handoff_publishes_the_steps_and_never_the_key() {
    // GIVEN hand-off mode with a topic that delivers to an HTTP endpoint
    let mut w = World::new().await;
    w.use_handoff().await;
    let notifications = |w: &World| w.notifications();

    // WHEN Create runs
    let create = w.event("create.json");
    let body = w.ok(&create).await;

    // THEN one message names the instance, the secret and the steps
    let key = w.current_key().await;
    let sent = notifications(&w);
    assert_eq!(sent.len(), 1);
    let message = sent[0]["Message"].as_str().unwrap();
    assert!(sent[0]["Subject"].as_str().unwrap().contains(&w.account));
    assert!(message.contains(data(&body, "ConnectorName")), "{message}");
    assert!(message.contains(&w.secret_arn), "{message}");
    assert!(message.contains("Test API"), "{message}");
    assert!(message.contains(&key.access_key_id));
    assert!(!message.contains(key.secret_access_key.expose()));
    assert_eq!(data(&body, "PortalStatus"), "handed-off");

    // WHEN an Update changes nothing the portal holds
    let id = body["PhysicalResourceId"].as_str().unwrap().to_string();
    let props = create["ResourceProperties"].clone();
    let mut same = props.clone();
    same["CloudTrail"] = json!("Verify");
    w.ok(&w.follow_up("update.json", &id, &same, Some(&props)))
        .await;
    // THEN no new message
    assert_eq!(notifications(&w).len(), 1);

    // WHEN the stack is deleted
    w.ok(&w.follow_up("delete.json", &id, &same, None)).await;
    // THEN a message asks to disable the instance
    let sent = notifications(&w);
    assert_eq!(sent.len(), 2);
    assert!(sent[1]["Message"].as_str().unwrap().contains("disable"));
    // AND the leak scan covers the messages (they are among the caught bodies)
    w.assert_no_leaks().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn portal_mode_settings_are_checked_at_init() {
    let sdk = sdk_config("http://127.0.0.1:9", "k", "s", None).await;
    let env = |pairs: &'static [(&'static str, &'static str)]| {
        Env(move |k: &str| {
            pairs
                .iter()
                .find(|(n, _)| *n == k)
                .map(|(_, v)| v.to_string())
        })
    };
    for (pairs, expected) in [
        (&[("PORTAL_MODE", "api")][..], "PORTAL_URL"),
        (
            &[("PORTAL_MODE", "api"), ("PORTAL_URL", "https://t.example")][..],
            "PORTAL_CREDENTIALS_SECRET_ARN",
        ),
        (&[("PORTAL_MODE", "handoff")][..], "NOTIFY_TOPIC_ARN"),
        (
            &[("PORTAL_MODE", "sometimes")][..],
            "not one of api, handoff, hub, off",
        ),
        (
            &[
                ("PORTAL_MODE", "api"),
                ("PORTAL_URL", "https://t.example"),
                ("PORTAL_CREDENTIALS_SECRET_ARN", "arn:aws:secretsmanager:x"),
                (
                    "PORTAL_ROUTES",
                    "{\"create\": \"/x/{id}/\", \"oops\": \"/\"}",
                ),
            ][..],
            "unknown route",
        ),
    ] {
        let err = PortalChoice::read(&env(pairs)).unwrap_err().to_string();
        assert!(err.contains(expected), "{pairs:?}: {err}");
    }
    let choice = PortalChoice::read(&env(&[
        ("PORTAL_MODE", "handoff"),
        ("NOTIFY_TOPIC_ARN", "arn:aws:sns:us-east-1:123456789012:t"),
    ]))
    .unwrap();
    let ok = deps::portal(choice, &sdk).unwrap();
    assert!(matches!(ok, Portal::Handoff(_)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn portal_credentials_are_read_once_and_the_entra_token_is_renewed_before_it_expires() {
    // GIVEN an Entra app whose tokens live 6 s (renewed after 3 s), after a Create
    let config = Config {
        token_lifetime: Duration::from_secs(6),
        ..fast()
    };
    let w = portal_world(config, PortalAuth::Entra).await;
    let create = w.event("create.json");
    let body = w.ok(&create).await;
    let id = body["PhysicalResourceId"].as_str().unwrap().to_string();
    let props = create["ResourceProperties"].clone();
    let sign_ins = |w: &World| {
        w.emulator()
            .requests()
            .iter()
            .filter(|r| r.route.as_deref() == Some("token"))
            .count()
    };
    assert_eq!(sign_ins(&w), 1);

    // WHEN the credentials secret changes (a warm function keeps what it
    // read at its cold start), and an Update comes after the token's renewal time
    w.secrets
        .put_secret_value()
        .secret_id(&w.portal_secret)
        .secret_string(json!({"Token": "0".repeat(64)}).to_string())
        .send()
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(3200)).await;
    let mut more = props.clone();
    more["Connections"] = json!(["SecurityAuditing", "SecurityConfiguration"]);
    let body = w
        .ok(&w.follow_up("update.json", &id, &more, Some(&props)))
        .await;

    // THEN it signed in again with the app it read first, and never got a 401
    assert!(data(&body, "PortalTest").starts_with("succeeded"), "{body}");
    assert_eq!(sign_ins(&w), 2);
    assert!(w.emulator().requests().iter().all(|r| r.status != 401));
    w.assert_no_leaks().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_portal_that_answers_in_the_observed_shape_is_read_the_same() {
    // GIVEN a portal that names an instance's state `state` (as the real
    // portal is seen to), its id a number, and lists `{"data": [...]}` alone
    let config = Config {
        observed_shape: true,
        ..fast()
    };
    let w = portal_world(config, PortalAuth::Token).await;

    // WHEN Create runs, then an Update that changes nothing
    let create = w.event("create.json");
    let body = w.ok(&create).await;
    let id = body["PhysicalResourceId"].as_str().unwrap().to_string();
    let props = create["ResourceProperties"].clone();
    let update = w
        .ok(&w.follow_up("update.json", &id, &props, Some(&props)))
        .await;

    // THEN the instance is connected, and the Update saw it so (from
    // `state`): it neither updated nor tested it again
    assert_eq!(data(&body, "PortalStatus"), "connected");
    assert_eq!(data(&update, "PortalStatus"), "connected");
    assert!(
        data(&update, "PortalTest").contains("already connected"),
        "{update}"
    );
    let routes = routes_called(&w);
    assert_eq!(
        routes.iter().filter(|r| *r == "update").count(),
        0,
        "{routes:?}"
    );
    assert_eq!(
        routes.iter().filter(|r| *r == "test").count(),
        1,
        "{routes:?}"
    );
    // AND the health check reads the same state
    let report = testbed::health::check(&w, &testbed::health::settings(&w, false)).await;
    let status = report.check(cloudapps::health::Check::PortalStatus);
    assert_eq!(
        status.state,
        cloudapps::health::State::Pass,
        "{}",
        status.detail
    );
    w.assert_no_leaks().await;
}
