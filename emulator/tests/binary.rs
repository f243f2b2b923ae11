//! The `portal-emulator` binary as the local run starts it: flags,
//! environment, the announced port, both authentications, the routes, fault
//! injection, the throttle, and the end of the process when its stdin closes.

use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

const TOKEN: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
const BASE: &str = "/cas/api/v1/app_connectors";

/// A running binary; killed when dropped.
struct Binary {
    child: Child,
    url: String,
    http: reqwest::Client,
}

impl Binary {
    fn start(args: &[&str], env: &[(&str, &str)]) -> Binary {
        let mut child = Command::new(env!("CARGO_BIN_EXE_portal-emulator"))
            .args(args)
            .envs(env.iter().copied())
            .env_remove("AWS_ENDPOINT_URL")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start portal-emulator");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .expect("the emulator announces its port");
        let announced: Value = serde_json::from_str(&line)
            .unwrap_or_else(|_| panic!("portal-emulator printed {line:?}"));
        let port = announced["port"].as_u64().expect("a port");
        let url = announced["url"].as_str().expect("a url").to_string();
        assert_eq!(url, format!("http://127.0.0.1:{port}"));
        Binary {
            child,
            url,
            http: reqwest::Client::new(),
        }
    }

    /// Sends a request; answers the status, the headers and the body.
    async fn call(
        &self,
        method: &str,
        path: &str,
        auth: Option<&str>,
        body: Option<String>,
    ) -> (u16, reqwest::header::HeaderMap, String) {
        let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let mut req = self.http.request(method, format!("{}{path}", self.url));
        if let Some(auth) = auth {
            req = req.header("authorization", auth);
        }
        if let Some(body) = body {
            req = req.header("content-type", "application/json").body(body);
        }
        let resp = req.send().await.expect("the emulator answers");
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        (status, headers, resp.text().await.unwrap())
    }

    /// A portal call with the API token and a JSON body; answers status and JSON.
    async fn portal(&self, method: &str, path: &str, body: Value) -> (u16, Value) {
        let body = (method == "POST").then(|| body.to_string());
        let auth = format!("Token {TOKEN}");
        let (status, _, text) = self.call(method, path, Some(&auth), body).await;
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }
}

impl Drop for Binary {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn instance_body(name: &str, key: &str, secret: &str) -> Value {
    json!({
        "appId": 11599,
        "name": name,
        "connections": ["SecurityAuditing"],
        "credentials": {"accessKeyId": key, "secretAccessKey": secret},
    })
}

fn find_body(name: &str) -> Value {
    json!({"filters": {"appId": {"eq": [11599]}, "name": {"eq": [name]}}, "skip": 0, "limit": 10})
}

#[tokio::test(flavor = "multi_thread")]
async fn the_api_token_drives_find_create_update_status_and_disable() {
    // GIVEN an emulator with an API token
    let emu = Binary::start(&["--limit", "1000"], &[("EMULATOR_API_TOKEN", TOKEN)]);
    let find = format!("{BASE}/");

    // THEN missing or wrong credentials are refused
    let (status, _, _) = emu.call("POST", &find, None, Some("{}".into())).await;
    assert_eq!(status, 401);
    let (status, _, body) = emu
        .call("POST", &find, Some("Token wrong"), Some("{}".into()))
        .await;
    assert_eq!(status, 401);
    assert!(serde_json::from_str::<Value>(&body).unwrap()["error"].is_string());

    // WHEN the instance is looked up before it exists
    let (status, found) = emu
        .portal("POST", &find, find_body("aws-111122223333"))
        .await;
    assert_eq!(
        (status, found),
        (200, json!({"data": [], "total": 0, "hasNext": false}))
    );

    // AND created
    let secret = "first/secret+KEY0123456789abcdefghijklmn";
    let create = format!("{BASE}/create/");
    let (status, created) = emu
        .portal(
            "POST",
            &create,
            instance_body("aws-111122223333", "AKIAFIRST", secret),
        )
        .await;
    assert_eq!(status, 201, "{created}");
    let id = created["_id"].as_str().unwrap().to_string();
    assert_eq!(created["appId"], 11599);
    assert_eq!(created["accessKeyId"], "AKIAFIRST");
    assert_eq!(
        (created["enabled"].clone(), created["status"].clone()),
        (json!(true), json!("pending"))
    );
    assert!(
        !created.to_string().contains(secret),
        "an instance never shows its secret"
    );

    // THEN the same name again is a conflict, and bad bodies are refused
    let again = instance_body("aws-111122223333", "AKIAOTHER", "other-secret");
    assert_eq!(emu.portal("POST", &create, again).await.0, 409);
    let mut no_credentials = instance_body("aws-2", "AKIA2", "s");
    no_credentials
        .as_object_mut()
        .unwrap()
        .remove("credentials");
    let mut wrong_app = instance_body("aws-3", "AKIA3", "s");
    wrong_app["appId"] = json!(11770);
    let mut wrong_connection = instance_body("aws-4", "AKIA4", "s");
    wrong_connection["connections"] = json!(["Everything"]);
    let mut no_name = instance_body("", "AKIA5", "s");
    no_name.as_object_mut().unwrap().remove("name");
    for bad in [no_credentials, wrong_app, wrong_connection, no_name] {
        assert_eq!(
            emu.portal("POST", &create, bad.clone()).await.0,
            400,
            "{bad}"
        );
    }

    // AND find sees exactly the created instance
    let (status, found) = emu
        .portal("POST", &find, find_body("aws-111122223333"))
        .await;
    assert_eq!(status, 200);
    assert_eq!(
        (found["total"].clone(), found["data"][0]["_id"].clone()),
        (json!(1), json!(id))
    );
    assert_eq!(
        emu.portal("POST", &find, find_body("aws-999")).await.1["total"],
        0
    );

    // WHEN it is disabled, twice
    let disable = format!("{BASE}/{id}/disable/");
    for _ in 0..2 {
        let (status, disabled) = emu.portal("POST", &disable, json!({})).await;
        assert_eq!(status, 200);
        assert_eq!(
            (disabled["enabled"].clone(), disabled["status"].clone()),
            (json!(false), json!("disabled"))
        );
    }
    // THEN it cannot be tested
    assert_eq!(
        emu.portal("POST", &format!("{BASE}/{id}/test/"), json!({}))
            .await
            .0,
        409
    );

    // WHEN its credentials are updated
    let mut update = instance_body("aws-111122223333", "AKIASECOND", "second-secret-0123456789");
    update.as_object_mut().unwrap().remove("appId");
    update["connections"] = json!(["SecurityAuditing", "SecurityConfiguration"]);
    let (status, updated) = emu
        .portal("POST", &format!("{BASE}/{id}/update/"), update)
        .await;
    assert_eq!(status, 200, "{updated}");

    // THEN it is enabled again, pending, holding the new key
    let (status, shown) = emu
        .portal("GET", &format!("{BASE}/{id}/"), Value::Null)
        .await;
    assert_eq!(status, 200);
    assert_eq!(shown, updated);
    assert_eq!(shown["accessKeyId"], "AKIASECOND");
    assert_eq!(
        (shown["enabled"].clone(), shown["status"].clone()),
        (json!(true), json!("pending"))
    );
    assert_eq!(shown["connections"].as_array().unwrap().len(), 2);

    // AND unknown instances and tests are 404
    assert_eq!(
        emu.portal("GET", &format!("{BASE}/nope/"), Value::Null)
            .await
            .0,
        404
    );
    assert_eq!(
        emu.portal("POST", &format!("{BASE}/nope/disable/"), json!({}))
            .await
            .0,
        404
    );
    let result = format!("{BASE}/{id}/test/nope/");
    assert_eq!(emu.portal("GET", &result, Value::Null).await.0, 404);

    // AND the control route lists the instance without any secret
    let (status, _, listed) = emu.call("GET", "/_emulator/instances", None, None).await;
    assert_eq!(status, 200);
    assert!(listed.contains("AKIASECOND") && !listed.contains("second-secret"));
}

#[tokio::test(flavor = "multi_thread")]
async fn the_entra_token_flow_issues_bearer_tokens() {
    // GIVEN an emulator that knows one Entra app, and no API token
    let secret = "entra~client~secret~0123456789";
    let emu = Binary::start(
        &[
            "--entra-tenant-id",
            "tenant-1",
            "--entra-client-id",
            "client-1",
            "--token-lifetime-s",
            "1",
        ],
        &[("EMULATOR_ENTRA_CLIENT_SECRET", secret)],
    );
    let token = |tenant: &str, grant: &str, client_secret: &str, scope: &str| {
        let form = format!(
            "grant_type={grant}&client_id=client-1&client_secret={client_secret}&scope={scope}"
        );
        let req = emu
            .http
            .post(format!("{}/{tenant}/oauth2/v2.0/token", emu.url))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(form);
        async move {
            let resp = req.send().await.unwrap();
            let status = resp.status().as_u16();
            (
                status,
                serde_json::from_str::<Value>(&resp.text().await.unwrap()).unwrap(),
            )
        }
    };
    let scope = "05a65629-4c1b-48c1-a78b-804c4abdd4af%2F.default";
    let good = "entra%7Eclient%7Esecret%7E0123456789";

    // THEN a wrong secret or tenant is invalid_client, as Entra ID says it
    for (tenant, client_secret) in [("tenant-1", "wrong"), ("tenant-2", good)] {
        let (status, body) = token(tenant, "client_credentials", client_secret, scope).await;
        assert_eq!(status, 401);
        assert_eq!(body["error"], "invalid_client");
        assert_eq!(body["error_codes"], json!([7000215]));
    }
    let (status, body) = token("tenant-1", "password", good, scope).await;
    assert_eq!(
        (status, body["error"].clone()),
        (400, json!("invalid_request"))
    );
    let (status, body) = token("tenant-1", "client_credentials", good, "graph").await;
    assert_eq!(
        (status, body["error"].clone()),
        (400, json!("invalid_scope"))
    );

    // WHEN the app asks for a token rightly
    let (status, body) = token("tenant-1", "client_credentials", good, scope).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        (body["token_type"].clone(), body["expires_in"].clone()),
        (json!("Bearer"), json!(1))
    );
    let access = body["access_token"].as_str().unwrap().to_string();
    assert!(access.len() >= 64);

    // THEN the bearer token is accepted, another one or a Token is not
    let find = format!("{BASE}/");
    let bearer = format!("Bearer {access}");
    let (status, _, _) = emu
        .call("POST", &find, Some(&bearer), Some("{}".into()))
        .await;
    assert_eq!(status, 200);
    for wrong in [
        "Bearer nope".to_string(),
        format!("Token {access}"),
        access.clone(),
    ] {
        let (status, _, _) = emu
            .call("POST", &find, Some(&wrong), Some("{}".into()))
            .await;
        assert_eq!(status, 401, "{wrong}");
    }

    // AND once expired it is refused
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let (status, _, _) = emu
        .call("POST", &find, Some(&bearer), Some("{}".into()))
        .await;
    assert_eq!(status, 401);
}

#[tokio::test(flavor = "multi_thread")]
async fn injected_faults_are_answered_then_used_up() {
    let emu = Binary::start(&[], &[("EMULATOR_API_TOKEN", TOKEN)]);
    let faults = json!([
        {"route": "find", "kind": "status", "status": 503, "times": 2},
        {"route": "status", "kind": "html", "status": 200},
        {"route": "create", "kind": "too_many", "retry_after": "2"},
        {"route": "find", "kind": "slow", "ms": 400},
    ]);
    let (status, _, _) = emu
        .call("POST", "/_emulator/faults", None, Some(faults.to_string()))
        .await;
    assert_eq!(status, 204);
    let (status, _, _) = emu
        .call(
            "POST",
            "/_emulator/faults",
            None,
            Some(r#"[{"kind":"boom"}]"#.into()),
        )
        .await;
    assert_eq!(status, 400);

    let find = format!("{BASE}/");
    for _ in 0..2 {
        let (status, body) = emu.portal("POST", &find, json!({})).await;
        assert_eq!(status, 503);
        assert!(body["error"].is_string());
    }
    let started = Instant::now();
    assert_eq!(emu.portal("POST", &find, json!({})).await.0, 200);
    assert!(
        started.elapsed() >= Duration::from_millis(400),
        "the slow fault waits"
    );
    assert_eq!(emu.portal("POST", &find, json!({})).await.0, 200);

    let (status, headers, body) = emu
        .call(
            "GET",
            &format!("{BASE}/any/"),
            Some(&format!("Token {TOKEN}")),
            None,
        )
        .await;
    assert_eq!(status, 200);
    assert!(
        headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    assert!(body.contains("<html>"));

    let create = instance_body("aws-1", "AKIA1", "s");
    let (status, headers, body) = emu
        .call(
            "POST",
            &format!("{BASE}/create/"),
            Some(&format!("Token {TOKEN}")),
            Some(create.to_string()),
        )
        .await;
    assert_eq!((status, body.as_str()), (429, "TOO MANY REQUESTS"));
    assert_eq!(headers["retry-after"], "2");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_throttle_refuses_requests_past_the_limit() {
    // GIVEN 3 requests per second, with Retry-After
    let emu = Binary::start(
        &["--limit", "3", "--window-ms", "1000", "--retry-after"],
        &[("EMULATOR_API_TOKEN", TOKEN)],
    );
    let find = format!("{BASE}/");
    for _ in 0..3 {
        assert_eq!(emu.portal("POST", &find, json!({})).await.0, 200);
    }
    // WHEN a fourth comes within the window
    let (status, headers, body) = emu
        .call(
            "POST",
            &find,
            Some(&format!("Token {TOKEN}")),
            Some("{}".into()),
        )
        .await;
    // THEN it is refused as the portal does, whatever its credentials
    assert_eq!((status, body.as_str()), (429, "TOO MANY REQUESTS"));
    assert_eq!(headers["retry-after"], "1");
    assert_eq!(emu.call("POST", &find, None, None).await.0, 429);
    // AND the control routes are not throttled
    assert_eq!(emu.call("GET", "/_emulator/tests", None, None).await.0, 200);
    // AND after the window a slot is free again
    tokio::time::sleep(Duration::from_millis(1050)).await;
    assert_eq!(emu.portal("POST", &find, json!({})).await.0, 200);
}

#[tokio::test(flavor = "multi_thread")]
async fn closing_stdin_ends_the_process_and_the_log_holds_no_secret() {
    let mut emu = Binary::start(&[], &[("EMULATOR_API_TOKEN", TOKEN)]);
    let body = instance_body("aws-1", "AKIA1", "the-secret-key-0123456789");
    let created = emu
        .portal("POST", &format!("{BASE}/create/?x=1"), body)
        .await;
    assert_eq!(created.0, 201, "the query is not part of the route");

    // WHEN its parent closes its stdin
    drop(emu.child.stdin.take());

    // THEN it exits on its own, soon
    let deadline = Instant::now() + Duration::from_secs(10);
    let exit = loop {
        if let Some(exit) = emu.child.try_wait().unwrap() {
            break exit;
        }
        assert!(Instant::now() < deadline, "portal-emulator still runs");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(exit.success());
    let mut log = String::new();
    emu.child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut log)
        .unwrap();
    assert!(
        log.contains("POST /cas/api/v1/app_connectors/create/ route=create status=201"),
        "{log}"
    );
    assert!(!log.contains(TOKEN) && !log.contains("the-secret-key") && !log.contains("x=1"));
}

#[test]
fn an_unknown_flag_is_a_clear_error() {
    let out = Command::new(env!("CARGO_BIN_EXE_portal-emulator"))
        .arg("--nope")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown flag \"--nope\""));
    assert!(out.stdout.is_empty());
}
