//! The CloudFormation protocol on its own: every event that names a
//! ResponseURL gets exactly one answer, whatever the handler does. The
//! handlers here misbehave on purpose (error, panic, run past the deadline).

use std::time::{Duration, Instant};

use cloudapps::cfn::{self, CustomResource, Data, Invocation, ProtocolError, Request};
use serde_json::{Value, json};
use testbed::Catcher;

#[derive(Clone, Copy)]
enum Behaviour {
    Succeed,
    Fail,
    Panic,
    PanicDerivingId,
    Hang,
}

struct Fake(Behaviour);

impl CustomResource for Fake {
    type Error = String;

    fn resource_type(&self) -> &str {
        "Custom::CloudAppsConnector"
    }

    fn physical_id(&self, request: &Request) -> String {
        if let Behaviour::PanicDerivingId = self.0 {
            panic!("cannot derive an id");
        }
        format!("fake-{}", request.stack.logical_id)
    }

    async fn handle(&self, _request: &Request, _physical_id: &str) -> Result<Data, String> {
        match self.0 {
            Behaviour::Succeed | Behaviour::PanicDerivingId => {
                Ok(Data::from([("Answer".to_string(), "42".to_string())]))
            }
            Behaviour::Fail => Err("the widget is broken".into()),
            Behaviour::Panic => {
                let items: Vec<u8> = Vec::new();
                let _ = items[usize::from(items.is_empty())];
                unreachable!()
            }
            Behaviour::Hang => {
                tokio::time::sleep(Duration::from_secs(600)).await;
                Ok(Data::new())
            }
        }
    }
}

fn event(catcher: &Catcher, file: &str) -> Value {
    let text = std::fs::read_to_string(testbed::root().join("events").join(file)).unwrap();
    let mut e: Value = serde_json::from_str(&text).unwrap();
    e["ResponseURL"] = json!(catcher.url_for(&format!("{:x}", fastrand::u64(..))));
    e
}

fn invocation(budget: Duration) -> Invocation {
    Invocation {
        deadline: Instant::now() + budget,
        margin: Duration::from_secs(1),
        log_stream: Some("2026/11/23/[$LATEST]abc".into()),
    }
}

/// Serves `event` with `behaviour`; returns the one answer CloudFormation got.
async fn answer(behaviour: Behaviour, event: &Value, budget: Duration, catcher: &Catcher) -> Value {
    testbed::capture_logs();
    let http = reqwest::Client::new();
    let url = event["ResponseURL"].as_str().unwrap().to_string();
    cfn::serve(&Fake(behaviour), &http, event.clone(), &invocation(budget))
        .await
        .expect("delivered");
    let caught = catcher.for_url(&url);
    assert_eq!(caught.len(), 1, "exactly one answer");
    assert_eq!(caught[0].method, "PUT");
    assert_eq!(
        caught[0].headers.get("content-type").map(String::as_str),
        Some("")
    );
    assert!(caught[0].body.len() < cfn::MAX_RESPONSE_BYTES);
    // The ResponseURL (its signature lets anyone answer for the stack) is never logged.
    let signature = url.split("X-Amz-Signature=").nth(1).unwrap().to_string();
    testbed::assert_no_leak(&[signature], &[("the logs", &testbed::captured_logs())]);
    caught[0].json()
}

#[tokio::test]
async fn success_echoes_the_request_and_returns_data() {
    let catcher = Catcher::start().await;
    let e = event(&catcher, "create.json");
    let body = answer(Behaviour::Succeed, &e, Duration::from_secs(30), &catcher).await;
    assert_eq!(body["Status"], "SUCCESS");
    assert_eq!(body["PhysicalResourceId"], "fake-Connector");
    for field in ["StackId", "RequestId", "LogicalResourceId"] {
        assert_eq!(body[field], e[field], "{field}");
    }
    assert_eq!(body["Data"]["Answer"], "42");
    assert_eq!(body["NoEcho"], false);
}

#[tokio::test]
async fn an_error_is_failed_with_the_reason_the_id_and_the_log_stream() {
    let catcher = Catcher::start().await;
    let e = event(&catcher, "create.json");
    let body = answer(Behaviour::Fail, &e, Duration::from_secs(30), &catcher).await;
    assert_eq!(body["Status"], "FAILED");
    assert_eq!(body["PhysicalResourceId"], "fake-Connector");
    let reason = body["Reason"].as_str().unwrap();
    assert!(
        reason.starts_with("Create failed: the widget is broken"),
        "{reason}"
    );
    assert!(
        reason.contains("log stream 2026/11/23/[$LATEST]abc"),
        "{reason}"
    );
}

#[tokio::test]
async fn a_panic_is_answered_failed_with_the_physical_id() {
    let catcher = Catcher::start().await;
    for file in ["create.json", "update.json", "delete.json"] {
        let e = event(&catcher, file);
        let body = answer(Behaviour::Panic, &e, Duration::from_secs(30), &catcher).await;
        assert_eq!(body["Status"], "FAILED");
        assert!(
            body["Reason"].as_str().unwrap().contains("panicked"),
            "{body}"
        );
        // Create: the id derived before the work (a rollback Delete cleans
        // with it); Update and Delete: the id CloudFormation holds.
        let expected = e
            .get("PhysicalResourceId")
            .cloned()
            .unwrap_or(json!("fake-Connector"));
        assert_eq!(body["PhysicalResourceId"], expected, "{file}");
    }
    // A panic while deriving the id: the id CloudFormation holds, or on Create
    // a marker that a rollback Delete treats as "nothing was made".
    let e = event(&catcher, "update.json");
    let body = answer(
        Behaviour::PanicDerivingId,
        &e,
        Duration::from_secs(30),
        &catcher,
    )
    .await;
    assert_eq!(body["Status"], "FAILED");
    assert_eq!(body["PhysicalResourceId"], e["PhysicalResourceId"]);
    let e = event(&catcher, "create.json");
    let body = answer(
        Behaviour::PanicDerivingId,
        &e,
        Duration::from_secs(30),
        &catcher,
    )
    .await;
    assert_eq!(
        body["PhysicalResourceId"],
        format!(
            "Connector-create-failed-{}",
            e["RequestId"].as_str().unwrap()
        )
    );
}

#[tokio::test]
async fn a_handler_still_running_near_the_deadline_is_answered_before_it() {
    // GIVEN a handler that would run for ten minutes, and 1.5 s before the
    // deadline (1 s of it kept as the margin)
    let catcher = Catcher::start().await;
    let e = event(&catcher, "update.json");
    let started = Instant::now();

    // WHEN it is served
    let body = answer(Behaviour::Hang, &e, Duration::from_millis(1500), &catcher).await;

    // THEN FAILED "timed out" arrives before the deadline, with the id
    // CloudFormation holds (a failed Update changes nothing in its view)
    assert!(
        started.elapsed() < Duration::from_millis(1500),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(body["Status"], "FAILED");
    assert!(
        body["Reason"].as_str().unwrap().contains("timed out"),
        "{body}"
    );
    assert_eq!(body["PhysicalResourceId"], e["PhysicalResourceId"]);

    // AND an invocation that starts inside the margin is answered at once
    let e = event(&catcher, "create.json");
    let body = answer(Behaviour::Succeed, &e, Duration::from_millis(500), &catcher).await;
    assert_eq!(body["Status"], "FAILED");
    assert!(
        body["Reason"]
            .as_str()
            .unwrap()
            .contains("function timeout"),
        "{body}"
    );
}

#[tokio::test]
async fn malformed_events_still_get_an_answer() {
    let catcher = Catcher::start().await;
    type Breaker = Box<dyn Fn(&mut Value)>;
    let cases: Vec<(&str, Breaker, &str)> = vec![
        (
            "unknown RequestType",
            Box::new(|e| e["RequestType"] = json!("Upsert")),
            "unknown variant",
        ),
        (
            "no RequestType",
            Box::new(|e| {
                e.as_object_mut().unwrap().remove("RequestType");
            }),
            "RequestType",
        ),
        (
            "no StackId",
            Box::new(|e| {
                e.as_object_mut().unwrap().remove("StackId");
            }),
            "StackId",
        ),
        (
            "bad StackId",
            Box::new(|e| e["StackId"] = json!("not-an-arn")),
            "StackId",
        ),
        (
            "no LogicalResourceId",
            Box::new(|e| {
                e.as_object_mut().unwrap().remove("LogicalResourceId");
            }),
            "LogicalResourceId",
        ),
        (
            "Update without PhysicalResourceId",
            Box::new(|e| {
                e["RequestType"] = json!("Update");
                e["PhysicalResourceId"] = json!("");
                e["OldResourceProperties"] = json!({});
            }),
            "PhysicalResourceId",
        ),
        (
            "another resource type",
            Box::new(|e| e["ResourceType"] = json!("Custom::Other")),
            "not Custom::Other",
        ),
    ];
    for (name, break_it, needle) in cases {
        let mut e = event(&catcher, "create.json");
        break_it(&mut e);
        let body = answer(Behaviour::Succeed, &e, Duration::from_secs(30), &catcher).await;
        assert_eq!(body["Status"], "FAILED", "{name}");
        let reason = body["Reason"].as_str().unwrap();
        assert!(reason.contains(needle), "{name}: {reason}");
        let id = body["PhysicalResourceId"].as_str().unwrap();
        assert!(
            !id.is_empty(),
            "{name}: a FAILED answer still has a physical id"
        );
        assert_eq!(body["RequestId"], e["RequestId"], "{name}");
    }
}

#[tokio::test]
async fn an_event_without_response_url_is_an_error_and_sends_nothing() {
    let catcher = Catcher::start().await;
    let mut e = event(&catcher, "create.json");
    e.as_object_mut().unwrap().remove("ResponseURL");
    let http = reqwest::Client::new();
    for bad in [e, json!([1, 2, 3]), json!("Create"), Value::Null] {
        let err = cfn::serve(
            &Fake(Behaviour::Succeed),
            &http,
            bad,
            &invocation(Duration::from_secs(30)),
        )
        .await
        .unwrap_err();
        assert!(matches!(err, ProtocolError::NoResponseUrl));
    }
    assert!(catcher.all().is_empty());
}

#[tokio::test]
async fn delivery_is_retried_and_a_lost_answer_never_shows_the_url() {
    // GIVEN a ResponseURL that fails twice with HTTP 500
    let catcher = Catcher::start().await;
    catcher.fail_first(2);
    let e = event(&catcher, "create.json");
    let url = e["ResponseURL"].as_str().unwrap().to_string();
    let http = reqwest::Client::new();

    // WHEN served, THEN the third attempt delivers
    cfn::serve(
        &Fake(Behaviour::Succeed),
        &http,
        e,
        &invocation(Duration::from_secs(30)),
    )
    .await
    .expect("delivered on a retry");
    assert_eq!(catcher.for_url(&url).len(), 3);

    // AND when nothing listens, the error says why without the URL
    let mut e = event(&catcher, "create.json");
    let dead = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = dead.local_addr().unwrap().port();
    drop(dead);
    let secret_url = format!("http://127.0.0.1:{port}/r?X-Amz-Signature=topsecretsignature");
    e["ResponseURL"] = json!(secret_url);
    let err = cfn::serve(
        &Fake(Behaviour::Succeed),
        &http,
        e,
        &invocation(Duration::from_secs(8)),
    )
    .await
    .unwrap_err();
    let text = format!("{err} {err:?}");
    assert!(matches!(err, ProtocolError::NotDelivered(_)), "{text}");
    assert!(
        !text.contains("topsecretsignature") && !text.contains("127.0.0.1"),
        "{text}"
    );
}
