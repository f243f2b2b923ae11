//! The asynchronous "Test API" against a real AWS emulator (moto server,
//! started through tests/support/moto_launcher.py, which adds
//! cloudtrail:LookupEvents), with IAM enforcement on so that a made-up key
//! is refused as AWS refuses it.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_sdk_sts::config::Credentials;
use portal_emulator::{Config, Emulator};
use serde_json::{Value, json};

const TOKEN: &str = "moto-test-api-token-0123456789abcdef";
const BASE: &str = "/cas/api/v1/app_connectors";

/// A moto server on 127.0.0.1; stopped when dropped.
struct Moto {
    endpoint: String,
    child: Child,
}

impl Moto {
    fn start() -> Moto {
        let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
        let python = std::env::var_os("TESTBED_PYTHON")
            .map(PathBuf::from)
            .unwrap_or_else(|| root.join(".tools/venv/bin/python"));
        let mut child = Command::new(&python)
            .arg(root.join("tests/support/moto_launcher.py"))
            .arg("0")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("start moto with {}: {e}", python.display()));
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .expect("moto announces its port");
        let port: Value = serde_json::from_str(&line)
            .unwrap_or_else(|_| panic!("moto launcher printed {line:?}"));
        Moto {
            endpoint: format!("http://127.0.0.1:{}", port["port"]),
            child,
        }
    }

    async fn sdk(&self, key_id: &str, secret: &str) -> SdkConfig {
        aws_config::defaults(BehaviorVersion::latest())
            .region(Region::new("us-east-1"))
            .endpoint_url(&self.endpoint)
            .credentials_provider(Credentials::new(key_id, secret, None, None, "test"))
            .load()
            .await
    }

    /// From now on every request must be signed by a known key and allowed
    /// by its policies.
    async fn enforce_iam(&self) {
        let resp = reqwest::Client::new()
            .post(format!("{}/moto-api/reset-auth", self.endpoint))
            .body("0")
            .send()
            .await
            .unwrap();
        assert!(resp.status().is_success());
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        drop(self.child.stdin.take());
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The portal as the connector sees it: the emulator and an HTTP client.
struct Portal {
    emulator: Emulator,
    http: reqwest::Client,
}

impl Portal {
    async fn call(&self, method: &str, path: &str, body: Value) -> (u16, Value) {
        let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let resp = self
            .http
            .request(method, format!("{}{path}", self.emulator.url))
            .header("authorization", format!("Token {TOKEN}"))
            .body(body.to_string())
            .send()
            .await
            .unwrap();
        let status = resp.status().as_u16();
        (
            status,
            serde_json::from_str(&resp.text().await.unwrap()).unwrap(),
        )
    }

    /// Starts a test, sees it running, and waits for its end.
    async fn test(&self, id: &str) -> (Value, Duration) {
        let started = Instant::now();
        let (status, test) = self
            .call("POST", &format!("{BASE}/{id}/test/"), json!({}))
            .await;
        assert_eq!(
            (status, test["state"].clone()),
            (202, json!("running")),
            "{test}"
        );
        let path = format!("{BASE}/{id}/test/{}/", test["testId"].as_str().unwrap());
        let (status, first) = self.call("GET", &path, Value::Null).await;
        assert_eq!((status, first["state"].clone()), (200, json!("running")));
        loop {
            let (status, test) = self.call("GET", &path, Value::Null).await;
            assert_eq!(status, 200);
            if test["state"] != "running" {
                return (test, started.elapsed());
            }
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "the test never ends"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn status(&self, id: &str) -> Value {
        self.call("GET", &format!("{BASE}/{id}/"), Value::Null)
            .await
            .1
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_test_calls_aws_with_the_instance_key() {
    // GIVEN an account with a user allowed everything, its key, and a
    // multi-region trail that logs
    let moto = Moto::start();
    let admin = moto.sdk("AKIAADMINSETUP000000", "setup-secret").await;
    let iam = aws_sdk_iam::Client::new(&admin);
    let suffix = fastrand::u32(..);
    let user = format!("portal-{suffix}");
    iam.create_user().user_name(&user).send().await.unwrap();
    let allow_all = json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]});
    iam.put_user_policy()
        .user_name(&user)
        .policy_name("all")
        .policy_document(allow_all.to_string())
        .send()
        .await
        .unwrap();
    let key = iam
        .create_access_key()
        .user_name(&user)
        .send()
        .await
        .unwrap();
    let key = key.access_key().unwrap();
    let (key_id, secret) = (
        key.access_key_id().to_string(),
        key.secret_access_key().to_string(),
    );
    let bucket = format!("trail-logs-{suffix}");
    let s3 = aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::config::Builder::from(&admin)
            .force_path_style(true)
            .build(),
    );
    s3.create_bucket().bucket(&bucket).send().await.unwrap();
    let trail = format!("org-trail-{suffix}");
    let cloudtrail = aws_sdk_cloudtrail::Client::new(&admin);
    cloudtrail
        .create_trail()
        .name(&trail)
        .s3_bucket_name(&bucket)
        .is_multi_region_trail(true)
        .send()
        .await
        .unwrap();
    cloudtrail
        .start_logging()
        .name(&trail)
        .send()
        .await
        .unwrap();
    moto.enforce_iam().await;

    // AND the portal holding that key, whose tests last 300 ms
    let emulator = Emulator::start(Config {
        api_token: Some(TOKEN.to_string()),
        aws_endpoint: Some(moto.endpoint.clone()),
        test_duration: Duration::from_millis(300),
        limit: 10_000,
        ..Config::default()
    })
    .await
    .unwrap();
    let portal = Portal {
        emulator,
        http: reqwest::Client::new(),
    };
    let body = |key_id: &str, secret: &str| {
        json!({
            "appId": 11599,
            "name": "aws-123456789012",
            "connections": ["SecurityAuditing", "SecurityConfiguration"],
            "credentials": {"accessKeyId": key_id, "secretAccessKey": secret},
        })
    };
    let (status, created) = portal
        .call("POST", &format!("{BASE}/create/"), body(&key_id, &secret))
        .await;
    assert_eq!(status, 201);
    let id = created["_id"].as_str().unwrap().to_string();

    // WHEN the portal tests it
    let (test, took) = portal.test(&id).await;

    // THEN every call worked, the test ran its duration, the instance is connected
    assert_eq!(test["state"], "succeeded", "{test}");
    assert_eq!(test["reason"], Value::Null);
    let calls: Vec<&str> = test["checks"]
        .as_array()
        .unwrap()
        .iter()
        .inspect(|c| assert_eq!(c["ok"], true, "{c}"))
        .map(|c| c["call"].as_str().unwrap())
        .collect();
    assert_eq!(
        calls,
        [
            "sts:GetCallerIdentity",
            "cloudtrail:DescribeTrails",
            "cloudtrail:GetTrailStatus",
            "cloudtrail:LookupEvents",
            "s3:ListAllMyBuckets",
            "iam:GetAccountSummary",
        ]
    );
    assert!(took >= Duration::from_millis(300));
    let instance = portal.status(&id).await;
    assert_eq!(
        (instance["status"].clone(), instance["statusDetail"].clone()),
        (json!("connected"), json!(""))
    );

    // WHEN the trail stops logging and the portal tests again
    let user_sdk = moto.sdk(&key_id, &secret).await;
    aws_sdk_cloudtrail::Client::new(&user_sdk)
        .stop_logging()
        .name(&trail)
        .send()
        .await
        .unwrap();
    let (test, _) = portal.test(&id).await;

    // THEN the test fails because of the trail, and the instance shows why
    assert_eq!(test["state"], "failed");
    assert_eq!(test["reason"], "no multi-region trail is logging");
    let instance = portal.status(&id).await;
    assert_eq!(
        (instance["status"].clone(), instance["statusDetail"].clone()),
        (json!("error"), test["reason"].clone())
    );

    // WHEN the instance holds a key AWS does not know
    let fake_secret = "made-up-secret-0123456789abcdefghijklmno";
    let update = format!("{BASE}/{id}/update/");
    assert_eq!(
        portal
            .call("POST", &update, body("AKIAMADEUP0000000000", fake_secret))
            .await
            .0,
        200
    );
    let (test, _) = portal.test(&id).await;

    // THEN the test fails naming the calls refused, and nothing secret
    assert_eq!(test["state"], "failed");
    let reason = test["reason"].as_str().unwrap();
    assert!(reason.starts_with("sts:GetCallerIdentity: "), "{reason}");
    assert!(reason.contains("(HTTP 403)"), "{reason}");
    assert!(!reason.contains(fake_secret) && !reason.contains(&secret));
    assert_eq!(portal.status(&id).await["status"], "error");

    // AND the views tell the same story
    let tests = portal.emulator.tests();
    let states: Vec<&str> = tests.iter().map(|t| t.state.as_str()).collect();
    assert_eq!(states, ["succeeded", "failed", "failed"]);
    assert_eq!(tests[2].access_key_id, "AKIAMADEUP0000000000");
    assert!(portal.emulator.secrets_seen().contains(&secret));
}
