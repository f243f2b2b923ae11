//! The real `connector` binary, run as Lambda runs it (a Runtime API on
//! 127.0.0.1 hands it events with a deadline), against moto server: init and
//! wiring, JSON logs even at TRACE with no secret in them, the deadline, and
//! a bad configuration.

use std::time::Duration;

use serde_json::Value;
use testbed::World;
use testbed::runtime_api::{Function, Outcome};

const BINARY: &str = env!("CARGO_BIN_EXE_connector");

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_binary_creates_and_deletes_with_json_logs_and_no_secret_in_them() {
    // GIVEN the connector binary started as Lambda starts it, logging at TRACE
    let w = World::new().await;
    let f = Function::start(BINARY, &testbed::function_env(&w, &[])).await;

    // WHEN CloudFormation sends Create
    let create = w.event("create.json");
    let outcome = f.invoke(&create, Duration::from_secs(60)).await;

    // THEN the function returns its answer and CloudFormation got SUCCESS
    let Outcome::Response(result) = outcome else {
        panic!("{outcome:?}")
    };
    assert_eq!(result["status"], "SUCCESS");
    let body = w.answer_to(&create);
    assert_eq!(body["Status"], "SUCCESS", "{body}");
    let key = w.current_key().await;
    assert_eq!(
        w.identity_of(&key).await.unwrap(),
        body["PhysicalResourceId"].as_str().unwrap()
    );

    // WHEN Delete follows in the same process (a warm start)
    let delete = w.follow_up(
        "delete.json",
        body["PhysicalResourceId"].as_str().unwrap(),
        &create["ResourceProperties"],
        None,
    );
    let Outcome::Response(_) = f.invoke(&delete, Duration::from_secs(60)).await else {
        panic!("delete")
    };
    assert_eq!(w.answer_to(&delete)["Status"], "SUCCESS");
    assert!(w.user("defender-cloud-apps").await.is_none());

    // THEN every log line is JSON, the work is logged, and no secret is
    let output = f.stop().await;
    assert!(output.contains("created the IAM user"), "{output}");
    for line in output.lines().filter(|l| !l.trim().is_empty()) {
        serde_json::from_str::<Value>(line).unwrap_or_else(|_| panic!("not JSON: {line}"));
    }
    w.extra_output
        .lock()
        .unwrap()
        .push(("the connector's output".into(), output));
    w.assert_no_leaks().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_binary_answers_before_the_lambda_deadline_and_keeps_serving() {
    // GIVEN the binary with a 1 s margin, and an event with no ResponseURL first
    let w = World::new().await;
    let f = Function::start(
        BINARY,
        &testbed::function_env(&w, &[("CFN_DEADLINE_MARGIN_MS", "1000")]),
    )
    .await;
    let mut broken = w.event("create.json");
    broken.as_object_mut().unwrap().remove("ResponseURL");
    let outcome = f.invoke(&broken, Duration::from_secs(30)).await;
    let Outcome::Error(e) = outcome else {
        panic!("{outcome:?}")
    };
    assert!(e.contains("no ResponseURL"), "{e}");

    // WHEN a Create arrives with 1.15 s left: too little for the whole work
    let create = w.event("create.json");
    let outcome = f.invoke(&create, Duration::from_millis(1150)).await;

    // THEN CloudFormation gets FAILED "timed out" with the physical id, in time
    let Outcome::Response(result) = outcome else {
        panic!("{outcome:?}")
    };
    assert_eq!(result["status"], "FAILED");
    let body = w.answer_to(&create);
    assert!(
        body["Reason"].as_str().unwrap().contains("timed out"),
        "{body}"
    );
    assert!(
        body["Reason"].as_str().unwrap().contains("log stream"),
        "{body}"
    );
    let id = body["PhysicalResourceId"].as_str().unwrap().to_string();
    assert!(
        id.ends_with("user/defender-cloud-apps/defender-cloud-apps"),
        "{id}"
    );

    // AND the same process then serves the rollback Delete, which cleans up
    let delete = w.follow_up("delete.json", &id, &create["ResourceProperties"], None);
    let Outcome::Response(_) = f.invoke(&delete, Duration::from_secs(60)).await else {
        panic!("delete")
    };
    assert_eq!(w.answer_to(&delete)["Status"], "SUCCESS");
    assert!(w.user("defender-cloud-apps").await.is_none());
    assert!(w.trail_names().await.is_empty());
    let output = f.stop().await;
    w.extra_output
        .lock()
        .unwrap()
        .push(("the connector's output".into(), output));
    w.assert_no_leaks().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_misconfigured_function_still_answers_failed_naming_the_setting() {
    let w = World::new().await;
    for (name, value) in [
        ("PORTAL_MODE", "sometimes"),
        ("KEY_READY_TIMEOUT_MS", "soon"),
    ] {
        // GIVEN the binary started with a bad setting
        let f = Function::start(BINARY, &testbed::function_env(&w, &[(name, value)])).await;

        // WHEN CloudFormation sends Create
        let create = w.event("create.json");
        let outcome = f.invoke(&create, Duration::from_secs(30)).await;

        // THEN CloudFormation gets FAILED naming the setting (no hour-long
        // wait), and, once it has its answer, the invocation succeeds: Lambda
        // must not run the event again (asynchronous retries could recreate
        // what a rollback deleted)
        let body = w.answer_to(&create);
        assert_eq!(body["Status"], "FAILED");
        assert!(body["Reason"].as_str().unwrap().contains(name), "{body}");
        let Outcome::Response(answer) = outcome else {
            panic!("{outcome:?}")
        };
        assert_eq!(answer["status"], "FAILED");
        assert!(
            answer["reason"].as_str().unwrap().contains(name),
            "{answer}"
        );
        assert!(w.user("defender-cloud-apps").await.is_none());
        let _ = f.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_binary_connects_the_portal_from_its_environment() {
    // GIVEN the binary in PORTAL_MODE=api, configured only by environment,
    // against the portal emulator with an Entra ID application
    let mut w = World::new().await;
    w.use_portal(testbed::quick_portal(), testbed::PortalAuth::Entra)
        .await;
    let url = w.emulator().url.clone();
    let secret = w.portal_secret.clone();
    let f = Function::start(
        BINARY,
        &testbed::function_env(
            &w,
            &[
                ("PORTAL_MODE", "api"),
                ("PORTAL_URL", &url),
                ("PORTAL_LOGIN_URL", &url),
                ("PORTAL_CREDENTIALS_SECRET_ARN", &secret),
                ("PORTAL_TEST_POLL_MS", "100"),
                ("PORTAL_RETRY_FIRST_MS", "100"),
            ],
        ),
    )
    .await;

    // WHEN CloudFormation sends Create, then Delete
    let create = w.event("create.json");
    let Outcome::Response(_) = f.invoke(&create, Duration::from_secs(60)).await else {
        panic!("create")
    };
    let body = w.answer_to(&create);
    assert_eq!(body["Status"], "SUCCESS", "{body}");

    // THEN the portal instance holds the key in the secret and its test passed
    let key = w.current_key().await;
    let instance = w.emulator().instances()[0].clone();
    assert_eq!(instance.access_key_id, key.access_key_id);
    assert_eq!(instance.status, "connected");
    assert_eq!(body["Data"]["PortalStatus"], "connected");

    let delete = w.follow_up(
        "delete.json",
        body["PhysicalResourceId"].as_str().unwrap(),
        &create["ResourceProperties"],
        None,
    );
    let Outcome::Response(_) = f.invoke(&delete, Duration::from_secs(60)).await else {
        panic!("delete")
    };
    assert_eq!(w.answer_to(&delete)["Status"], "SUCCESS");
    // AND Delete disabled it
    assert_eq!(w.emulator().instances()[0].status, "disabled");

    // AND the process's logs hold no key, token or client secret
    let output = f.stop().await;
    assert!(output.contains("portal instance created"), "{output}");
    w.extra_output
        .lock()
        .unwrap()
        .push(("the connector's output".into(), output));
    w.assert_no_leaks().await;
}
