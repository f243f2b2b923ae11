//! The library as the connector's tests use it in-process: what it records
//! (requests, secrets, throttles), route overrides, the test's effect on an
//! instance whose key changed, and stopping on drop.

use std::collections::BTreeMap;
use std::time::Duration;

use portal_emulator::{Config, Emulator, EntraApp, Fault, FaultKind};
use serde_json::{Value, json};

const TOKEN: &str = "in-process-api-token-0123456789abcdef";
const BASE: &str = "/cas/api/v1/app_connectors";

async fn call(
    emu: &Emulator,
    method: &str,
    path: &str,
    body: Value,
) -> (u16, Option<String>, Value) {
    let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
    let resp = reqwest::Client::new()
        .request(method, format!("{}{path}", emu.url))
        .header("authorization", format!("Token {TOKEN}"))
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    let retry_after = resp
        .headers()
        .get("retry-after")
        .map(|v| v.to_str().unwrap().to_string());
    let text = resp.text().await.unwrap();
    (
        status,
        retry_after,
        serde_json::from_str(&text).unwrap_or(Value::Null),
    )
}

fn instance_body(name: &str, key_id: &str, secret: &str) -> Value {
    json!({
        "appId": 11599,
        "name": name,
        "connections": ["SecurityAuditing"],
        "credentials": {"accessKeyId": key_id, "secretAccessKey": secret},
    })
}

#[tokio::test]
async fn requests_throttles_and_secrets_are_recorded() {
    // GIVEN an emulator allowing 2 requests a minute, with an Entra app
    let emu = Emulator::start(Config {
        api_token: Some(TOKEN.to_string()),
        entra: Some(EntraApp {
            tenant_id: "t".into(),
            client_id: "c".into(),
            client_secret: "entra-secret-0123456789".into(),
        }),
        limit: 2,
        ..Config::default()
    })
    .await
    .unwrap();
    emu.inject(Fault {
        route: Some("find".into()),
        kind: FaultKind::TooMany { retry_after: None },
        times: 1,
    });

    // WHEN a find is throttled by a fault, a create and a find pass, and
    // one more find is throttled by the limit
    let find = format!("{BASE}/?trace=1");
    assert_eq!(call(&emu, "POST", &find, json!({})).await.0, 429);
    let create = instance_body("aws-1", "AKIA1", "create-secret-0123456789");
    assert_eq!(
        call(&emu, "POST", &format!("{BASE}/create/"), create)
            .await
            .0,
        201
    );
    assert_eq!(call(&emu, "POST", &find, json!({})).await.0, 200);
    let (status, retry_after, _) = call(&emu, "POST", &find, json!({})).await;

    // THEN the natural throttle sends no Retry-After by default
    assert_eq!((status, retry_after), (429, None));
    assert_eq!(emu.throttled(), 2);
    // AND every request is recorded with its route, query and answer
    let seen: Vec<(String, Option<String>, u16)> = emu
        .requests()
        .into_iter()
        .map(|r| (r.path, r.route, r.status))
        .collect();
    let find_seen = |status| (find.clone(), Some("find".to_string()), status);
    assert_eq!(
        seen,
        [
            find_seen(429),
            (format!("{BASE}/create/"), Some("create".into()), 201),
            find_seen(200),
            find_seen(429),
        ]
    );
    let first = &emu.requests()[0];
    assert_eq!(first.method, "POST");
    assert!(
        first
            .headers
            .iter()
            .any(|(k, v)| k == "authorization" && v.ends_with(TOKEN))
    );
    // AND the leak scan knows every secret
    let secrets = emu.secrets_seen();
    for s in [TOKEN, "entra-secret-0123456789", "create-secret-0123456789"] {
        assert!(secrets.iter().any(|x| x == s), "{s}");
    }
    // AND the views never hold the secret key
    let views = format!("{:?} {:?}", emu.instances(), emu.tests());
    assert!(views.contains("AKIA1") && !views.contains("create-secret"));
}

#[tokio::test]
async fn routes_can_be_moved_and_the_token_endpoint_is_faulted_apart() {
    let emu = Emulator::start(Config {
        api_token: Some(TOKEN.to_string()),
        routes: BTreeMap::from([("create".to_string(), "/v2/connectors/new".to_string())]),
        ..Config::default()
    })
    .await
    .unwrap();
    emu.inject(Fault {
        route: Some("token".into()),
        kind: FaultKind::Status(503),
        times: 5,
    });
    let create = instance_body("aws-1", "AKIA1", "secret-0123456789");
    assert_eq!(
        call(&emu, "POST", &format!("{BASE}/create/"), create.clone())
            .await
            .0,
        404
    );
    assert_eq!(
        call(&emu, "POST", "/v2/connectors/new", create).await.0,
        201
    );
    assert_eq!(
        call(&emu, "POST", "/t/oauth2/v2.0/token", Value::Null)
            .await
            .0,
        503
    );
    assert_eq!(emu.requests()[1].route.as_deref(), Some("create"));
    assert_eq!(emu.requests()[2].route.as_deref(), Some("token"));

    let bad = Config {
        routes: BTreeMap::from([("status".to_string(), "/no/placeholder/".to_string())]),
        ..Config::default()
    };
    assert!(Emulator::start(bad).await.is_err());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_test_that_ends_after_a_key_change_leaves_the_new_key_pending() {
    // GIVEN an instance under test against an AWS endpoint that is not there
    let emu = Emulator::start(Config {
        api_token: Some(TOKEN.to_string()),
        aws_endpoint: Some("http://127.0.0.1:1".to_string()),
        ..Config::default()
    })
    .await
    .unwrap();
    emu.set_test_duration(Duration::from_millis(400));
    let created = call(
        &emu,
        "POST",
        &format!("{BASE}/create/"),
        instance_body("aws-1", "AKIAOLD", "s-0123456789"),
    )
    .await;
    let id = created.2["_id"].as_str().unwrap().to_string();
    let (status, _, started) = call(&emu, "POST", &format!("{BASE}/{id}/test/"), json!({})).await;
    assert_eq!((status, started["state"].clone()), (202, json!("running")));

    // WHEN the key changes while the test runs
    let update = instance_body("aws-1", "AKIANEW", "s-0123456789");
    assert_eq!(
        call(&emu, "POST", &format!("{BASE}/{id}/update/"), update)
            .await
            .0,
        200
    );
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(emu.tests()[0].state, "running", "a test lasts its duration");
    tokio::time::sleep(Duration::from_millis(400)).await;

    // THEN the old key's test failed, naming the unreachable calls...
    let path = format!("{BASE}/{id}/test/{}/", started["testId"].as_str().unwrap());
    let test = call(&emu, "GET", &path, Value::Null).await.2;
    assert_eq!(test["state"], "failed");
    let reason = test["reason"].as_str().unwrap();
    assert!(
        reason.starts_with("sts:GetCallerIdentity: no answer"),
        "{reason}"
    );
    assert_eq!(test["checks"].as_array().unwrap().len(), 5, "{test}");
    // ...but the instance, holding the new key, is still pending
    let instance = &emu.instances()[0];
    assert_eq!(
        (instance.status.as_str(), instance.access_key_id.as_str()),
        ("pending", "AKIANEW")
    );
}

#[tokio::test]
async fn dropping_the_emulator_stops_it() {
    let emu = Emulator::start(Config::default()).await.unwrap();
    let url = emu.url.clone();
    let client = reqwest::Client::new();
    assert_eq!(
        client
            .get(format!("{url}/_emulator/tests"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    drop(emu);
    tokio::time::sleep(Duration::from_millis(50)).await;
    let fresh = reqwest::Client::new();
    assert!(
        fresh
            .get(format!("{url}/_emulator/tests"))
            .send()
            .await
            .is_err()
    );
}
