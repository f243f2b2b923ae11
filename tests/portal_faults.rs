//! What a real portal may do to the connector, against the portal emulator:
//! refuse, fail, answer HTML or nothing while the stack is deleted (Delete
//! still removes everything on the AWS side and tells people); answer
//! instances of other apps and names whatever the filter asks; hold, under
//! the connector's name, an instance someone else connected; and answer
//! what no client should take on trust (a `Retry-After` of 2^63 seconds, a
//! token for 2^63 seconds, a body of megabytes, an activity in the year
//! 10000, a test it cannot report before the deadline).

use std::time::{Duration, Instant};

use cloudapps::health::{Check, State};
use http_body_util::Full;
use hyper::Response;
use hyper::body::Bytes;
use portal_emulator::{Config, FaultKind};
use serde_json::{Value, json};
use testbed::{PortalAuth, USER, World, data, fault, physical_id};

fn fast() -> Config {
    testbed::quick_portal()
}

/// A connected stack whose functions can tell people (NOTIFY_TOPIC_ARN).
async fn connected(config: Config) -> (World, Value, Value) {
    let mut w = World::new().await;
    w.use_portal(config, PortalAuth::Token).await;
    w.use_notify_topic().await;
    let create = w.event("create.json");
    let body = w.ok(&create).await;
    (w, create, body)
}

/// The AWS side of the stack is gone: user, keys, group, policy, trail.
async fn aws_side_gone(w: &World) {
    assert!(w.user(USER).await.is_none(), "the user is deleted");
    assert!(w.local_policies().await.is_empty(), "the policy is deleted");
    assert!(w.trail_names().await.is_empty(), "the trail is deleted");
    let group = w.iam.get_group().group_name(format!("{USER}-cloudapps"));
    assert!(group.send().await.is_err(), "the group is deleted");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_create_refused_by_the_portal_is_rolled_back_and_its_delete_succeeds() {
    // GIVEN credentials the portal refuses (401), and a topic to tell people
    let mut w = World::new().await;
    w.use_portal(fast(), PortalAuth::WrongToken).await;
    w.use_notify_topic().await;

    // WHEN Create runs: the AWS side is made, then the portal refuses
    let create = w.event("create.json");
    let (answer, body) = w.run(&create).await;
    assert_eq!(answer.status, "FAILED");
    assert!(w.user(USER).await.is_some());

    // AND CloudFormation rolls back with Delete, the portal refusing again
    let delete = w.follow_up(
        "delete.json",
        &physical_id(&body),
        &create["ResourceProperties"],
        None,
    );
    let (answer, _) = w.run(&delete).await;

    // THEN Delete succeeds (no ROLLBACK_FAILED), the AWS side is gone: no
    // user with an active key is left behind
    assert_eq!(answer.status, "SUCCESS", "{:?}", answer.reason);
    aws_side_gone(&w).await;
    // AND people are told what to do in the portal, and why
    let told = w.notifications();
    let message = told.last().expect("a message to the topic")["Message"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        message.contains("disable") && message.contains("credentials rejected"),
        "{message}"
    );
    w.assert_no_leaks().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delete_finishes_the_aws_side_whatever_the_portal_does() {
    for (what, kind, times) in [
        ("5xx", FaultKind::Status(503), 1000),
        ("an HTML page", FaultKind::Html(200), 1000),
        ("no answer", FaultKind::Slow(Duration::from_secs(30)), 1000),
    ] {
        // GIVEN a connected stack, then a portal that answers with `what`
        let (w, create, body) = connected(fast()).await;
        w.emulator().inject(fault("find", kind, times));

        // WHEN CloudFormation deletes the stack, with 40 s left
        let delete = w.follow_up(
            "delete.json",
            &physical_id(&body),
            &create["ResourceProperties"],
            None,
        );
        let started = Instant::now();
        let (answer, _) = w.run_with_budget(&delete, Duration::from_secs(40)).await;

        // THEN it answers SUCCESS in time, the AWS side gone (the key is
        // deleted: the portal can no longer sign in with it), people told
        assert_eq!(answer.status, "SUCCESS", "{what}: {:?}", answer.reason);
        assert!(started.elapsed() < Duration::from_secs(38), "{what}");
        aws_side_gone(&w).await;
        let told = w.notifications();
        assert!(
            told.last().unwrap()["Message"]
                .as_str()
                .unwrap()
                .contains(data(&body, "ConnectorName")),
            "{what}: {told:?}"
        );
        w.assert_no_leaks().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn instances_the_filter_should_have_excluded_are_never_written_to() {
    // GIVEN a portal that ignores the filters of its list, holding an
    // instance of another app by the connector's name, AWS instances of
    // other names, and enough of them for several pages
    let config = Config {
        ignores_filters: true,
        limit: 1000,
        ..fast()
    };
    let mut w = World::new().await;
    w.use_portal(config, PortalAuth::Token).await;
    let name = w.event("create.json")["ResourceProperties"]["ConnectorName"]
        .as_str()
        .unwrap()
        .to_string();
    let other_app = w
        .emulator()
        .add_instance(20595, &name, "AKIAOTHERAPP00000000");
    let mut others = Vec::new();
    for i in 0..150 {
        let id = w
            .emulator()
            .add_instance(11599, &format!("aws-{i:012}"), "AKIAOTHERACCOUNT0000");
        others.push(id);
    }

    // WHEN Create runs
    let body = w.ok(&w.event("create.json")).await;

    // THEN it created and tested its own instance, reading every page
    let ours = data(&body, "PortalInstance").to_string();
    assert!(!ours.is_empty() && ours != other_app);
    let find_pages = w
        .emulator()
        .requests()
        .iter()
        .filter(|r| r.route.as_deref() == Some("find"))
        .count();
    assert!(find_pages >= 2, "{find_pages} find requests");
    // AND nothing was ever sent to an instance that is not its own
    for r in w.emulator().requests() {
        for foreign in others.iter().chain([&other_app]) {
            assert!(
                !r.path.contains(foreign.as_str()),
                "{} {}",
                r.method,
                r.path
            );
        }
    }
    let views = w.emulator().instances();
    let app = views.iter().find(|i| i.id == other_app).unwrap();
    assert_eq!(app.access_key_id, "AKIAOTHERAPP00000000");
    assert!(app.enabled);

    // AND Delete disables its own instance only
    let delete = w.follow_up(
        "delete.json",
        &physical_id(&body),
        &w.event("create.json")["ResourceProperties"],
        None,
    );
    w.ok(&delete).await;
    for i in w.emulator().instances() {
        assert_eq!(i.enabled, i.id != ours, "{} {}", i.id, i.name);
    }
    w.assert_no_leaks().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_instance_connected_by_someone_else_is_refused_or_taken_over_only_when_asked() {
    // GIVEN an AWS instance by the connector's name, connected with a key
    // this stack never issued (by hand, or by another account)
    let mut w = World::new().await;
    w.use_portal(fast(), PortalAuth::Token).await;
    w.use_notify_topic().await;
    let name = w.event("create.json")["ResourceProperties"]["ConnectorName"]
        .as_str()
        .unwrap()
        .to_string();
    let theirs = w
        .emulator()
        .add_instance(11599, &name, "AKIAHANDMADE00000000");

    // WHEN Create runs
    let create = w.event("create.json");
    let (answer, body) = w.run(&create).await;

    // THEN it is refused, naming the instance and the key it holds, and the
    // instance is untouched
    assert_eq!(answer.status, "FAILED");
    let reason = body["Reason"].as_str().unwrap();
    assert!(
        reason.contains(&theirs) && reason.contains("AKIAHANDMADE00000000"),
        "{reason}"
    );
    assert!(reason.contains("AdoptExistingInstance"), "{reason}");
    let instance = &w.emulator().instances()[0];
    assert_eq!(instance.access_key_id, "AKIAHANDMADE00000000");
    assert!(instance.enabled);
    // AND its rollback Delete succeeds and leaves the instance alone
    let delete = w.follow_up(
        "delete.json",
        &physical_id(&body),
        &create["ResourceProperties"],
        None,
    );
    w.ok(&delete).await;
    assert!(w.emulator().instances()[0].enabled);

    // WHEN Create runs with AdoptExistingInstance, and the portal's test fails
    let mut adopt = w.event("create.json");
    adopt["ResourceProperties"]["AdoptExistingInstance"] = json!("true");
    w.emulator()
        .inject(fault("test_result", FaultKind::Status(400), 1));
    let (answer, body) = w.run(&adopt).await;
    assert_eq!(answer.status, "FAILED", "the test could not be read");
    // THEN the instance was taken over (it holds the stack's key) ...
    let key = w
        .secret_key(cloudapps::key_store::AWSCURRENT)
        .await
        .unwrap();
    assert_eq!(w.emulator().instances()[0].access_key_id, key.access_key_id);
    // ... and the rollback never disables it
    let delete = w.follow_up(
        "delete.json",
        &physical_id(&body),
        &adopt["ResourceProperties"],
        None,
    );
    w.ok(&delete).await;
    let instance = &w.emulator().instances()[0];
    assert!(instance.enabled, "an adopted instance is never disabled");
    assert_eq!(instance.id, theirs);
    assert!(w.user(USER).await.is_none());
    w.assert_no_leaks().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_test_unreadable_at_the_deadline_is_reported_as_still_running() {
    // GIVEN a portal whose test takes minutes, and whose test results
    // cannot be read (503) by the end of the invocation
    let config = Config {
        test_duration: Duration::from_secs(300),
        ..fast()
    };
    let mut w = World::new().await;
    w.use_portal(config, PortalAuth::Token).await;
    w.emulator()
        .inject(fault("test_result", FaultKind::Status(503), 1000));

    // WHEN Create runs with 20 s left (the AWS side takes some of it)
    let (answer, body) = w
        .run_with_budget(&w.event("create.json"), Duration::from_secs(20))
        .await;

    // THEN it answers "running (test id)" as the contract says, not FAILED
    assert_eq!(answer.status, "SUCCESS", "{:?}", answer.reason);
    let test = data(&body, "PortalTest");
    let test_id = &w.emulator().tests()[0].test_id;
    assert!(
        test.starts_with("running (") && test.contains(test_id.as_str()),
        "{test}"
    );
    w.assert_no_leaks().await;
}

/// A portal of the test's own making, answering `answer` to every route.
async fn hostile(answer: fn(&str) -> Response<Full<Bytes>>) -> String {
    testbed::serve(move |req: hyper::Request<hyper::body::Incoming>| {
        let path = req.uri().path().to_string();
        async move { answer(&path) }
    })
    .await
}

fn json_answer(status: u16, body: Value) -> Response<Full<Bytes>> {
    Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(body.to_string())))
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn answers_no_client_should_trust_never_panic_or_flood_a_function() {
    // GIVEN a portal that asks for a wait of 2^63 seconds
    let mut w = World::new().await;
    let url = hostile(|_| {
        Response::builder()
            .status(429)
            .header("retry-after", "9223372036854775808")
            .body(Full::new(Bytes::from("TOO MANY REQUESTS")))
            .unwrap()
    })
    .await;
    w.connect_portal(&url, &json!({"Token": "t".repeat(64)}), "{}")
        .await;
    // WHEN Create runs with 20 s left
    let started = Instant::now();
    let (answer, body) = w
        .run_with_budget(&w.event("create.json"), Duration::from_secs(20))
        .await;
    // THEN it fails in time, saying why (no overflow, no wait of ages)
    assert_eq!(answer.status, "FAILED");
    assert!(started.elapsed() < Duration::from_secs(20));
    assert!(
        body["Reason"].as_str().unwrap().contains("throttled"),
        "{body}"
    );

    // GIVEN a portal whose answer is 5 MB
    let mut w = World::new().await;
    let url = hostile(|_| {
        let big = "x".repeat(5 * 1024 * 1024);
        json_answer(200, json!({"data": [], "padding": big}))
    })
    .await;
    w.connect_portal(&url, &json!({"Token": "t".repeat(64)}), "{}")
        .await;
    let (answer, body) = w.run(&w.event("create.json")).await;
    // THEN it is refused, not read whole
    assert_eq!(answer.status, "FAILED");
    assert!(
        body["Reason"]
            .as_str()
            .unwrap()
            .contains("larger than 4 MiB"),
        "{body}"
    );

    // GIVEN an Entra ID token "valid" for 2^63 seconds, and an activity
    // dated in the year 10000
    let mut w = World::new().await;
    let url = hostile(|path| {
        if path.ends_with("/oauth2/v2.0/token") {
            return json_answer(
                200,
                json!({"token_type": "Bearer", "access_token": "a".repeat(40), "expires_in": 9_223_372_036_854_775_808u64}),
            );
        }
        json_answer(
            200,
            json!({"data": [{"_id": "x", "timestamp": 253_402_300_800_000u64, "description": "far"}]}),
        )
    })
    .await;
    let entra = json!({"TenantId": "contoso.onmicrosoft.com", "ClientId": "c", "ClientSecret": "s".repeat(40)});
    w.connect_portal(&url, &entra, "{}").await;
    // WHEN the health check reads the activities
    let report = testbed::health::check(&w, &testbed::health::settings(&w, false)).await;
    // THEN it reads them (the date shown as the last one there is)
    let activity = report.check(Check::PortalActivity);
    assert_eq!(activity.state, State::Pass, "{}", activity.detail);
    assert!(activity.detail.contains("9999"), "{}", activity.detail);
}
