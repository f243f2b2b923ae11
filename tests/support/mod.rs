//! The test bed: a real AWS emulator (moto server) per test process, one
//! fresh AWS account per test, a catcher for the CloudFormation ResponseURL,
//! a Lambda Runtime API to run the real `connector` binary, captured logs,
//! and the leak scan.
//!
//! See tests/README.md for how it works and where moto differs from AWS.
#![allow(dead_code)]

pub mod runtime_api;
pub mod template;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_sdk_sts::config::Credentials;
use cloudapps::cfn::{self, Answer, Invocation};
use cloudapps::connector::Connector;
use cloudapps::key_store::{AWSCURRENT, StoredKey};
use cloudapps::portal::{Portal, PortalConfig};
use cloudapps::sensitive::Sensitive;
use cloudapps::{Deps, Settings};
use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};

pub const REGION: &str = "us-east-1";

/// The workspace root (tests/ is one level below it).
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// The venv python that scripts/setup installs moto into.
pub fn python() -> PathBuf {
    if let Ok(p) = std::env::var("TESTBED_PYTHON") {
        return p.into();
    }
    let p = root().join(".tools/venv/bin/python");
    assert!(
        p.exists(),
        "{} is missing: run ./scripts/setup (./scripts/test does it) to install the pinned moto server",
        p.display()
    );
    p
}

/// A moto server process on 127.0.0.1 and a free port. It stops when this
/// value is dropped, or when the test process ends (its stdin closes).
pub struct Moto {
    pub endpoint: String,
    child: Mutex<Child>,
    /// Where the launcher writes one JSON line per request it denies.
    denials: PathBuf,
}

impl Moto {
    /// A server of its own (for tests that change global state, such as IAM
    /// enforcement).
    pub fn start() -> Moto {
        Moto::start_with(&[])
    }

    /// A server of its own with `env` set (e.g.
    /// `MOTO_IAM_LOAD_MANAGED_POLICIES=false`: new accounts are much
    /// cheaper without the ~1,000 AWS managed policies).
    pub fn start_with(env: &[(&str, &str)]) -> Moto {
        let denials = std::env::temp_dir().join(format!(
            "moto-denials-{}-{:016x}.jsonl",
            std::process::id(),
            fastrand::u64(..)
        ));
        let mut child = Command::new(python())
            .arg(root().join("tests/support/moto_launcher.py"))
            .env("MOTO_DENIALS_FILE", &denials)
            .envs(env.iter().copied())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(if std::env::var_os("TESTBED_MOTO_LOGS").is_some() {
                Stdio::inherit()
            } else {
                Stdio::null()
            })
            .spawn()
            .expect("start moto server");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .expect("moto announces its port");
        let port: Value = serde_json::from_str(&line)
            .unwrap_or_else(|_| panic!("moto launcher printed {line:?} instead of its port"));
        Moto {
            endpoint: format!("http://127.0.0.1:{}", port["port"]),
            child: Mutex::new(child),
            denials,
        }
    }

    /// Every request moto denied under IAM enforcement since it started:
    /// `{"action", "resources", "principal"}`.
    pub fn denials(&self) -> Vec<Value> {
        std::fs::read_to_string(&self.denials)
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).expect("a denial is JSON"))
            .collect()
    }

    /// The server shared by the tests of this process; each test still gets
    /// an account of its own, so they do not see each other.
    pub fn shared() -> &'static Moto {
        static SHARED: OnceLock<Moto> = OnceLock::new();
        SHARED.get_or_init(Moto::start)
    }

    /// Turns IAM enforcement on: from now on every request must be allowed
    /// by the caller's IAM policies.
    pub async fn enforce_iam(&self) {
        self.reset_auth("0").await;
    }

    /// Turns IAM enforcement off again (moto counts unauthenticated
    /// requests up to this number: infinity).
    pub async fn relax_iam(&self) {
        self.reset_auth("inf").await;
    }

    async fn reset_auth(&self, count: &str) {
        let r = reqwest::Client::new()
            .post(format!("{}/moto-api/reset-auth", self.endpoint))
            .header("content-type", "text/plain")
            .body(count.to_string())
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success(), "reset-auth: {}", r.status());
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        if let Ok(mut child) = self.child.lock() {
            drop(child.stdin.take());
            let _ = child.kill();
            let _ = child.wait();
        }
        let _ = std::fs::remove_file(&self.denials);
    }
}

/// An SDK configuration for `endpoint` with static credentials.
pub async fn sdk_config(
    endpoint: &str,
    key_id: &str,
    secret: &str,
    token: Option<&str>,
) -> SdkConfig {
    aws_config::defaults(BehaviorVersion::latest())
        .region(Region::new(REGION))
        .endpoint_url(endpoint)
        .credentials_provider(Credentials::new(
            key_id,
            secret,
            token.map(str::to_string),
            None,
            "testbed",
        ))
        .load()
        .await
}

/// The log lines of this test process (every test's), as the functions
/// write them: JSON, at TRACE for our code.
pub fn captured_logs() -> String {
    String::from_utf8_lossy(&log_buffer().lock().unwrap()).into_owned()
}

fn log_buffer() -> &'static Mutex<Vec<u8>> {
    static LOGS: OnceLock<Mutex<Vec<u8>>> = OnceLock::new();
    LOGS.get_or_init(|| Mutex::new(Vec::new()))
}

struct LogWriter;

impl Write for LogWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if std::env::var_os("TESTBED_ECHO_LOGS").is_some() {
            std::io::stderr().write_all(buf)?;
        }
        log_buffer().lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Installs the functions' own log setup, at TRACE, writing into the buffer
/// the leak scan reads.
pub fn capture_logs() {
    static ONCE: OnceLock<()> = OnceLock::new();
    ONCE.get_or_init(|| {
        cloudapps::logging::init_with_writer(
            || LogWriter,
            tracing::level_filters::LevelFilter::TRACE,
            true,
        );
    });
}

/// Fails when any secret value appears in any of `texts`.
pub fn assert_no_leak(secrets: &[String], texts: &[(&str, &str)]) {
    for secret in secrets.iter().filter(|s| s.len() >= 8) {
        for (name, text) in texts {
            assert!(
                !text.contains(secret.as_str()),
                "LEAK: a secret value appears in {name}"
            );
        }
    }
}

/// Every request the ResponseURL catcher received.
#[derive(Clone, Debug)]
pub struct Caught {
    pub method: String,
    pub path: String,
    pub headers: BTreeMap<String, String>,
    pub body: String,
}

impl Caught {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).expect("the response body is JSON")
    }
}

/// Stands in for the presigned S3 URL CloudFormation gives: records every
/// request; answers `fail_first` of them with HTTP 500, the rest with 200.
#[derive(Clone)]
pub struct Catcher {
    pub base: String,
    caught: Arc<Mutex<Vec<Caught>>>,
    fail_first: Arc<Mutex<usize>>,
}

impl Catcher {
    pub async fn start() -> Catcher {
        let caught = Arc::new(Mutex::new(Vec::new()));
        let fail_first = Arc::new(Mutex::new(0));
        let (c, f) = (caught.clone(), fail_first.clone());
        let base = serve(move |req: Request<Incoming>| {
            let (c, f) = (c.clone(), f.clone());
            async move {
                let method = req.method().to_string();
                let path = req.uri().to_string();
                let headers = req
                    .headers()
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or("").to_string()))
                    .collect();
                let body = req.into_body().collect().await.unwrap().to_bytes();
                c.lock().unwrap().push(Caught {
                    method,
                    path,
                    headers,
                    body: String::from_utf8_lossy(&body).into_owned(),
                });
                let status = {
                    let mut left = f.lock().unwrap();
                    if *left > 0 {
                        *left -= 1;
                        500
                    } else {
                        200
                    }
                };
                Response::builder()
                    .status(status)
                    .body(Full::new(Bytes::new()))
                    .unwrap()
            }
        })
        .await;
        Catcher {
            base,
            caught,
            fail_first,
        }
    }

    pub fn fail_first(&self, n: usize) {
        *self.fail_first.lock().unwrap() = n;
    }

    /// A URL shaped like CloudFormation's: a path per request and a
    /// signature that must never be logged.
    pub fn url_for(&self, request_id: &str) -> String {
        format!(
            "{}/cloudformation-responses/{request_id}?X-Amz-Signature=sig{:016x}{:016x}",
            self.base,
            fastrand::u64(..),
            fastrand::u64(..)
        )
    }

    pub fn all(&self) -> Vec<Caught> {
        self.caught.lock().unwrap().clone()
    }

    /// The requests made to `url`.
    pub fn for_url(&self, url: &str) -> Vec<Caught> {
        let path = url.strip_prefix(&self.base).unwrap();
        self.all().into_iter().filter(|c| c.path == path).collect()
    }
}

/// Serves `handler` over HTTP/1 on 127.0.0.1 and a free port; returns the base URL.
pub async fn serve<F, Fut>(handler: F) -> String
where
    F: Fn(Request<Incoming>) -> Fut + Clone + Send + Sync + 'static,
    Fut: std::future::Future<Output = Response<Full<Bytes>>> + Send + 'static,
{
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            let handler = handler.clone();
            tokio::spawn(async move {
                let service = service_fn(move |req| {
                    let fut = handler(req);
                    async move { Ok::<_, std::convert::Infallible>(fut.await) }
                });
                let _ = http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    format!("http://{addr}")
}

/// Creates a secret as a template declares it: CloudFormation tags it with
/// the stack id. Returns its ARN.
async fn declare_secret(
    secrets: &aws_sdk_secretsmanager::Client,
    name: &str,
    stack_id: &str,
) -> String {
    let tag = aws_sdk_secretsmanager::types::Tag::builder()
        .key("aws:cloudformation:stack-id")
        .value(stack_id)
        .build();
    let out = secrets
        .create_secret()
        .name(name)
        .tags(tag)
        .send()
        .await
        .unwrap();
    out.arn().unwrap().to_string()
}

/// Settings for tests: quick polls, a short margin.
pub fn test_settings() -> Settings {
    Settings {
        deadline_margin: Duration::from_secs(2),
        key_ready_timeout: Duration::from_secs(20),
        key_ready_first_poll: Duration::from_millis(50),
        key_ready_max_poll: Duration::from_millis(500),
        preflight_settle: Duration::from_secs(1),
    }
}

/// One test's own world: a fresh AWS account in moto, the secret the
/// template would declare, a stack id, a ResponseURL catcher.
pub struct World {
    pub endpoint: String,
    pub account: String,
    pub sdk: SdkConfig,
    /// The credentials of `sdk` (to hand to a function process).
    pub credentials: (String, String, String),
    pub stack_id: String,
    pub secret_arn: String,
    pub catcher: Catcher,
    pub deps: Deps,
    pub iam: aws_sdk_iam::Client,
    pub secrets: aws_sdk_secretsmanager::Client,
    pub cloudtrail: aws_sdk_cloudtrail::Client,
    pub s3: aws_sdk_s3::Client,
    /// Extra texts to scan for leaks (outputs of function processes).
    pub extra_output: Mutex<Vec<(String, String)>>,
    /// The portal emulator, once `use_portal` connected the world to one.
    pub portal: Option<portal_emulator::Emulator>,
    /// The secret that holds the portal credentials (`use_portal`).
    pub portal_secret: String,
}

/// How the world signs in to the portal emulator.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PortalAuth {
    /// `{"Token"}`, the one the emulator accepts.
    Token,
    /// `{"TenantId","ClientId","ClientSecret"}` of the emulator's Entra app.
    Entra,
    /// A token the emulator does not know.
    WrongToken,
    /// The Entra app with a wrong client secret.
    WrongClientSecret,
}

/// The environment of a function process run against `w` (JSON logs at
/// TRACE, quick key polls), plus `extra`.
pub fn function_env(w: &World, extra: &[(&str, &str)]) -> Vec<(String, String)> {
    [
        ("AWS_REGION", REGION),
        ("AWS_ENDPOINT_URL", &w.endpoint),
        ("AWS_ACCESS_KEY_ID", &w.credentials.0),
        ("AWS_SECRET_ACCESS_KEY", &w.credentials.1),
        ("AWS_SESSION_TOKEN", &w.credentials.2),
        ("AWS_LAMBDA_LOG_FORMAT", "JSON"),
        ("AWS_LAMBDA_LOG_LEVEL", "TRACE"),
        ("KEY_READY_POLL_MS", "50"),
    ]
    .iter()
    .chain(extra)
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect()
}

/// Portal client timings for tests: quick retries and polls.
pub fn portal_config(url: &str, credentials_secret: &str) -> PortalConfig {
    PortalConfig {
        request_timeout: Duration::from_secs(2),
        retry_first: Duration::from_millis(100),
        retry_max: Duration::from_millis(800),
        test_first_poll: Duration::from_millis(100),
        test_max_poll: Duration::from_millis(400),
        login_url: url.to_string(),
        ..PortalConfig::new(url, credentials_secret)
    }
}

fn hex(len: usize) -> String {
    (0..len)
        .map(|_| char::from_digit(fastrand::u32(0..16), 16).unwrap())
        .collect()
}

/// The portal emulator for most tests: its "Test API" takes 200 ms.
pub fn quick_portal() -> portal_emulator::Config {
    portal_emulator::Config {
        test_duration: Duration::from_millis(200),
        ..portal_emulator::Config::default()
    }
}

impl World {
    pub async fn new() -> World {
        World::on(Moto::shared()).await
    }

    /// A world in `moto` whose connector uses the portal emulator
    /// ([`quick_portal`], API token): `PORTAL_MODE=api`.
    pub async fn with_portal(moto: &Moto) -> World {
        let mut w = World::on(moto).await;
        w.use_portal(quick_portal(), PortalAuth::Token).await;
        w
    }

    /// A world in a new account of `moto` (entered with sts:AssumeRole, as
    /// moto keys accounts by the credentials).
    pub async fn on(moto: &Moto) -> World {
        let account = format!("{:012}", fastrand::u64(100_000_000_000..999_999_999_999));
        let suffix = format!("{:08x}", fastrand::u32(..));
        let stack_id = format!(
            "arn:aws:cloudformation:{REGION}:{account}:stack/cloudapps-test-{suffix}/{:08x}-0000-4000-8000-{:012x}",
            fastrand::u32(..),
            fastrand::u64(..0xffff_ffff_ffff)
        );
        World::in_account(moto, &account, &stack_id).await
    }

    /// A world in `account` of `moto` for the stack `stack_id` (a stack
    /// instance of a stack set, say): its secret is declared as that stack's.
    pub async fn in_account(moto: &Moto, account: &str, stack_id: &str) -> World {
        capture_logs();
        let account = account.to_string();
        let stack_id = stack_id.to_string();
        let base = sdk_config(&moto.endpoint, "testing", "testing", None).await;
        let assumed = aws_sdk_sts::Client::new(&base)
            .assume_role()
            .role_arn(format!("arn:aws:iam::{account}:role/testbed-admin"))
            .role_session_name("testbed")
            .send()
            .await
            .expect("assume a role in a fresh account");
        let c = assumed.credentials().unwrap();
        let credentials = (
            c.access_key_id().to_string(),
            c.secret_access_key().to_string(),
            c.session_token().to_string(),
        );
        let sdk = sdk_config(
            &moto.endpoint,
            &credentials.0,
            &credentials.1,
            Some(&credentials.2),
        )
        .await;
        let deps = Deps::new(&sdk, test_settings(), Portal::off()).unwrap();
        let suffix = format!("{:08x}", fastrand::u32(..));
        let secrets = aws_sdk_secretsmanager::Client::new(&sdk);
        let secret_arn = declare_secret(
            &secrets,
            &format!("cloudapps/connector-key-{suffix}"),
            &stack_id,
        )
        .await;
        let s3 = aws_sdk_s3::Client::from_conf(
            aws_sdk_s3::config::Builder::from(&sdk)
                .force_path_style(true)
                .build(),
        );
        World {
            endpoint: moto.endpoint.clone(),
            account,
            iam: aws_sdk_iam::Client::new(&sdk),
            cloudtrail: aws_sdk_cloudtrail::Client::new(&sdk),
            s3,
            secrets,
            sdk,
            credentials,
            stack_id,
            secret_arn,
            catcher: Catcher::start().await,
            deps,
            extra_output: Mutex::new(Vec::new()),
            portal: None,
            portal_secret: String::new(),
        }
    }

    /// Starts a portal emulator (its test calls this world's moto), stores
    /// portal credentials in a secret of the account, and switches the
    /// connector to `PORTAL_MODE=api` against it. `config` may preset the
    /// throttle, the test duration or routes.
    pub async fn use_portal(&mut self, mut config: portal_emulator::Config, auth: PortalAuth) {
        let token = hex(64);
        let (tenant, client, client_secret) = (hex(8), hex(12), hex(40));
        config.api_token = Some(token.clone());
        config.entra = Some(portal_emulator::EntraApp {
            tenant_id: tenant.clone(),
            client_id: client.clone(),
            client_secret: client_secret.clone(),
        });
        config.aws_endpoint.get_or_insert(self.endpoint.clone());
        config.aws_region = REGION.to_string();
        let emulator = portal_emulator::Emulator::start(config.clone())
            .await
            .unwrap();
        let routes = serde_json::to_string(&config.routes).unwrap();
        let credentials = match auth {
            PortalAuth::Token => json!({"Token": token}),
            PortalAuth::WrongToken => json!({"Token": hex(64)}),
            PortalAuth::Entra => {
                json!({"TenantId": tenant, "ClientId": client, "ClientSecret": client_secret})
            }
            PortalAuth::WrongClientSecret => {
                json!({"TenantId": tenant, "ClientId": client, "ClientSecret": hex(40)})
            }
        };
        self.connect_portal(&emulator.url, &credentials, &routes)
            .await;
        self.portal = Some(emulator);
    }

    /// Switches the connector to `PORTAL_MODE=api` against the portal at
    /// `url` (an emulator another world or the test owns), signing in with
    /// `credentials`, stored in a secret of this account. `routes`: JSON
    /// route overrides ("{}" for none).
    pub async fn connect_portal(&mut self, url: &str, credentials: &Value, routes: &str) {
        let name = format!("cloudapps/portal-{:08x}", fastrand::u32(..));
        let out = self
            .secrets
            .create_secret()
            .name(&name)
            .secret_string(credentials.to_string())
            .send()
            .await
            .unwrap();
        self.portal_secret = out.arn().unwrap().to_string();
        let mut portal = portal_config(url, &self.portal_secret);
        portal.routes = cloudapps::portal::routes::Routes::with_overrides(routes).unwrap();
        self.deps = Deps::new(
            &self.sdk,
            test_settings(),
            Portal::api(portal, &self.sdk).unwrap(),
        )
        .unwrap();
    }

    /// Runs the connector as an IAM user of this account with the inline
    /// `policy` (for tests under IAM enforcement, where the world's assumed
    /// role cannot act): `sdk` and `deps` sign as that user from now on.
    pub async fn act_as_function_user(&mut self, policy: &Value) {
        let name = "cloudapps-function";
        self.iam.create_user().user_name(name).send().await.unwrap();
        self.iam
            .put_user_policy()
            .user_name(name)
            .policy_name("function")
            .policy_document(policy.to_string())
            .send()
            .await
            .unwrap();
        let out = self
            .iam
            .create_access_key()
            .user_name(name)
            .send()
            .await
            .unwrap();
        let k = out.access_key().unwrap();
        self.sdk = sdk_config(
            &self.endpoint,
            k.access_key_id(),
            k.secret_access_key(),
            None,
        )
        .await;
        self.deps = Deps::new(&self.sdk, test_settings(), Portal::off()).unwrap();
    }

    /// Switches the connector to `PORTAL_MODE=handoff`, with an SNS topic
    /// of the account that delivers to the catcher (`notifications`).
    pub async fn use_handoff(&mut self) {
        let sns = aws_sdk_sns::Client::new(&self.sdk);
        let topic = self
            .create_topic(&format!("cloudapps-{:08x}", fastrand::u32(..)))
            .await;
        sns.subscribe()
            .topic_arn(&topic)
            .protocol("http")
            .endpoint(format!("{}/inbox", self.catcher.base))
            .send()
            .await
            .unwrap();
        self.deps = Deps::new(
            &self.sdk,
            test_settings(),
            Portal::handoff(&topic, &self.sdk),
        )
        .unwrap();
    }

    /// Creates an SNS topic `name` in this account; returns its ARN.
    pub async fn create_topic(&self, name: &str) -> String {
        aws_sdk_sns::Client::new(&self.sdk)
            .create_topic()
            .name(name)
            .send()
            .await
            .unwrap()
            .topic_arn()
            .unwrap()
            .to_string()
    }

    /// The one answer CloudFormation got for `event` (sent by a function
    /// process, whose outcome says nothing of what reached CloudFormation).
    pub fn answer_to(&self, event: &Value) -> Value {
        let caught = self.catcher.for_url(event["ResponseURL"].as_str().unwrap());
        assert_eq!(caught.len(), 1, "exactly one answer to CloudFormation");
        caught[0].json()
    }

    /// The hand-off messages SNS delivered (after `use_handoff`).
    pub fn notifications(&self) -> Vec<Value> {
        self.catcher
            .all()
            .iter()
            .filter(|c| c.path == "/inbox")
            .map(|c| c.json())
            .filter(|m| m["Type"] == "Notification")
            .collect()
    }

    /// The portal emulator (after `use_portal`).
    pub fn emulator(&self) -> &portal_emulator::Emulator {
        self.portal.as_ref().expect("use_portal first")
    }

    /// A sample event from events/, made this world's: its stack, secret,
    /// a fresh RequestId and a ResponseURL to the catcher.
    pub fn event(&self, file: &str) -> Value {
        let text = std::fs::read_to_string(root().join("events").join(file)).unwrap();
        let mut event: Value = serde_json::from_str(&text).unwrap();
        let request_id = format!("{:08x}-{:04x}", fastrand::u32(..), fastrand::u16(..));
        event["RequestId"] = json!(request_id);
        event["ResponseURL"] = json!(self.catcher.url_for(&request_id));
        event["StackId"] = json!(self.stack_id);
        for props in ["ResourceProperties", "OldResourceProperties"] {
            if event.get(props).is_some() {
                event[props]["SecretArn"] = json!(self.secret_arn);
            }
        }
        event
    }

    /// Runs one event through the connector, as the Lambda does, with a
    /// deadline `budget` away. Returns the answer and the body CloudFormation got.
    pub async fn run_with_budget(&self, event: &Value, budget: Duration) -> (Answer, Value) {
        let url = event["ResponseURL"].as_str().unwrap().to_string();
        let invocation = Invocation {
            deadline: Instant::now() + budget,
            margin: self.deps.settings.deadline_margin,
            log_stream: Some("2026/11/23/[$LATEST]testbed".into()),
        };
        let before = self.catcher.for_url(&url).len();
        let answer = cfn::serve(
            &Connector::new(&self.deps),
            &self.deps.http,
            event.clone(),
            &invocation,
        )
        .await
        .expect("the answer is delivered");
        let caught = self.catcher.for_url(&url);
        assert_eq!(
            caught.len(),
            before + 1,
            "exactly one answer per invocation"
        );
        let last = caught.last().unwrap();
        assert_eq!(last.method, "PUT");
        assert!(
            last.body.len() < 4096,
            "response body is {} bytes",
            last.body.len()
        );
        let body = last.json();
        assert_eq!(body["PhysicalResourceId"], answer.physical_id.as_str());
        assert_eq!(body["RequestId"], event["RequestId"]);
        assert_eq!(body["StackId"], event["StackId"]);
        assert_eq!(body["LogicalResourceId"], event["LogicalResourceId"]);
        (answer, body)
    }

    pub async fn run(&self, event: &Value) -> (Answer, Value) {
        self.run_with_budget(event, Duration::from_secs(60)).await
    }

    /// Runs an event that must succeed; returns the response body.
    pub async fn ok(&self, event: &Value) -> Value {
        let (answer, body) = self.run(event).await;
        assert_eq!(answer.status, "SUCCESS", "{:?}", answer.reason);
        assert_eq!(body["Status"], "SUCCESS");
        body
    }

    /// Update and Delete events that follow `response` to `event`.
    pub fn follow_up(
        &self,
        file: &str,
        physical_id: &str,
        props: &Value,
        old_props: Option<&Value>,
    ) -> Value {
        let mut e = self.event(file);
        e["PhysicalResourceId"] = json!(physical_id);
        e["ResourceProperties"] = props.clone();
        if let Some(old) = old_props {
            e["OldResourceProperties"] = old.clone();
        }
        e
    }

    // ---- what a user can see in the account ----

    pub async fn user(&self, name: &str) -> Option<aws_sdk_iam::types::User> {
        match self.iam.get_user().user_name(name).send().await {
            Ok(out) => out.user().cloned(),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|e| e.is_no_such_entity_exception()) =>
            {
                None
            }
            Err(e) => panic!("GetUser: {e:?}"),
        }
    }

    pub async fn attached(&self, user: &str) -> Vec<String> {
        let mut v: Vec<String> = self
            .iam
            .list_attached_user_policies()
            .user_name(user)
            .send()
            .await
            .unwrap()
            .attached_policies()
            .iter()
            .map(|p| p.policy_arn().unwrap().to_string())
            .collect();
        v.sort();
        v
    }

    pub async fn keys(&self, user: &str) -> Vec<(String, bool)> {
        self.iam
            .list_access_keys()
            .user_name(user)
            .send()
            .await
            .unwrap()
            .access_key_metadata()
            .iter()
            .map(|k| {
                (
                    k.access_key_id().unwrap().to_string(),
                    k.status() == Some(&aws_sdk_iam::types::StatusType::Active),
                )
            })
            .collect()
    }

    pub async fn policy_exists(&self, arn: &str) -> bool {
        self.iam.get_policy().policy_arn(arn).send().await.is_ok()
    }

    /// The key in this world's secret under `stage`.
    pub async fn secret_key(&self, stage: &str) -> Option<StoredKey> {
        StoredKey::parse(&Sensitive::new(
            self.secret_text(&self.secret_arn, stage).await?,
        ))
    }

    /// The text a secret holds under `stage`.
    pub async fn secret_text(&self, secret: &str, stage: &str) -> Option<String> {
        let out = self
            .secrets
            .get_secret_value()
            .secret_id(secret)
            .version_stage(stage)
            .send()
            .await
            .ok()?;
        out.secret_string().map(str::to_string)
    }

    /// A secret declared by this world's stack, as the template would.
    pub async fn declare_secret(&self, name: &str) -> String {
        declare_secret(&self.secrets, name, &self.stack_id).await
    }

    /// The customer managed policies of the account.
    pub async fn local_policies(&self) -> Vec<String> {
        let out = self
            .iam
            .list_policies()
            .scope(aws_sdk_iam::types::PolicyScopeType::Local)
            .send()
            .await
            .unwrap();
        out.policies()
            .iter()
            .filter_map(|p| p.arn().map(str::to_string))
            .collect()
    }

    pub async fn current_key(&self) -> StoredKey {
        self.secret_key(AWSCURRENT)
            .await
            .expect("a key in AWSCURRENT")
    }

    /// Who `key` authenticates as (sts:GetCallerIdentity signed with it).
    pub async fn identity_of(&self, key: &StoredKey) -> Result<String, String> {
        let sdk = sdk_config(
            &self.endpoint,
            &key.access_key_id,
            key.secret_access_key.expose(),
            None,
        )
        .await;
        aws_sdk_sts::Client::new(&sdk)
            .get_caller_identity()
            .send()
            .await
            .map(|o| o.arn().unwrap_or_default().to_string())
            .map_err(|e| format!("{}", aws_sdk_sts::error::DisplayErrorContext(e)))
    }

    pub async fn trail_names(&self) -> Vec<String> {
        let mut v: Vec<String> = self
            .cloudtrail
            .describe_trails()
            .send()
            .await
            .unwrap()
            .trail_list()
            .iter()
            .map(|t| t.name().unwrap().to_string())
            .collect();
        v.sort();
        v
    }

    pub async fn bucket_exists(&self, bucket: &str) -> bool {
        self.s3.head_bucket().bucket(bucket).send().await.is_ok()
    }

    /// Every secret value this world's secret ever held (all versions).
    pub async fn all_secret_values(&self) -> Vec<String> {
        let mut values = Vec::new();
        let versions = self
            .secrets
            .list_secret_version_ids()
            .secret_id(&self.secret_arn)
            .include_deprecated(true)
            .send()
            .await
            .unwrap();
        for v in versions.versions() {
            if let Ok(out) = self
                .secrets
                .get_secret_value()
                .secret_id(&self.secret_arn)
                .version_id(v.version_id().unwrap())
                .send()
                .await
            {
                if let Some(s) = out.secret_string() {
                    values.push(s.to_string());
                    if let Some(k) = StoredKey::parse(&Sensitive::new(s)) {
                        values.push(k.secret_access_key.expose().to_string());
                    }
                }
            }
        }
        values
    }

    /// Adds `text` (a function's output, a log line), named `name`, to
    /// what the leak scan reads.
    pub fn keep_output(&self, name: &str, text: String) {
        self.extra_output.lock().unwrap().push((name.into(), text));
    }

    /// The leak scan: no secret access key this world's secret ever held,
    /// and no ResponseURL signature, appears in the logs, in any response
    /// sent to CloudFormation, or in the output of a function process.
    pub async fn assert_no_leaks(&self) {
        let mut secrets = self.all_secret_values().await;
        secrets.push(self.credentials.1.clone());
        // Everything secret the portal saw: its tokens, the Entra client
        // secret and access tokens, every key handed to it.
        if let Some(portal) = &self.portal {
            secrets.extend(portal.secrets_seen());
        }
        if !self.portal_secret.is_empty() {
            if let Some(text) = self.secret_text(&self.portal_secret, AWSCURRENT).await {
                secrets.push(text);
            }
        }
        let caught = self.catcher.all();
        let bodies: String = caught
            .iter()
            .map(|c| c.body.clone())
            .collect::<Vec<_>>()
            .join("\n");
        let logs = captured_logs();
        let mut signatures: Vec<String> = caught
            .iter()
            .filter_map(|c| c.path.split("X-Amz-Signature=").nth(1).map(str::to_string))
            .collect();
        signatures.dedup();
        let extra = self.extra_output.lock().unwrap().clone();
        let mut texts: Vec<(&str, &str)> =
            vec![("the logs", &logs), ("a CloudFormation response", &bodies)];
        texts.extend(extra.iter().map(|(n, t)| (n.as_str(), t.as_str())));
        assert_no_leak(&secrets, &texts);
        let no_body_texts: Vec<(&str, &str)> = texts
            .iter()
            .filter(|(n, _)| *n != "a CloudFormation response")
            .copied()
            .collect();
        assert_no_leak(&signatures, &no_body_texts);
    }
}

/// Registers a function in moto's Lambda (moto never runs it) for RotateSecret.
/// A second call returns the function registered first.
pub async fn register_rotation_function(w: &World) -> String {
    let existing = format!(
        "arn:aws:lambda:{REGION}:{}:function:cloudapps-rotation",
        w.account
    );
    if w.iam
        .get_role()
        .role_name("cloudapps-rotation")
        .send()
        .await
        .is_ok()
    {
        return existing;
    }
    let role = w
        .iam
        .create_role()
        .role_name("cloudapps-rotation")
        .assume_role_policy_document(
            json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow",
                "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}]})
            .to_string(),
        )
        .send()
        .await
        .unwrap();
    let body = json!({
        "FunctionName": "cloudapps-rotation",
        "Runtime": "provided.al2023",
        "Role": role.role().unwrap().arn(),
        "Handler": "bootstrap",
        // an empty zip: moto stores it and never runs it
        "Code": {"ZipFile": "UEsFBgAAAAAAAAAAAAAAAAAAAAAAAA=="},
    });
    let answer: Value = reqwest::Client::new()
        .post(format!("{}/2015-03-31/functions", w.endpoint))
        .header("content-type", "application/json")
        .header("x-moto-account-id", &w.account)
        .header(
            "authorization",
            "AWS4-HMAC-SHA256 Credential=testbed/20261123/us-east-1/lambda/aws4_request, SignedHeaders=host, Signature=0",
        )
        .body(body.to_string())
        .send()
        .await
        .unwrap()
        .text()
        .await
        .map(|t| serde_json::from_str(&t).unwrap())
        .unwrap();
    answer["FunctionArn"]
        .as_str()
        .expect("function registered")
        .to_string()
}

/// One rotation step of `w`'s secret, as Secrets Manager invokes it.
pub async fn rotation_step(w: &World, step: &str, token: &str) -> Result<String, String> {
    let event = cloudapps::rotation::Event::parse(&json!({
        "Step": step, "SecretId": w.secret_arn, "ClientRequestToken": token
    }))
    .map_err(|e| e.to_string())?;
    let deadline = Instant::now() + Duration::from_secs(60);
    cloudapps::rotation::handle(&w.deps, &w.stack_id, &event, deadline)
        .await
        .map_err(|e| e.to_string())
}

/// What Secrets Manager does when a rotation starts: version `token` staged AWSPENDING.
pub async fn start_rotation(w: &World, function: &str, token: &str) {
    w.secrets
        .rotate_secret()
        .secret_id(&w.secret_arn)
        .client_request_token(token)
        .rotation_lambda_arn(function)
        .rotation_rules(
            aws_sdk_secretsmanager::types::RotationRulesType::builder()
                .automatically_after_days(30)
                .build(),
        )
        .rotate_immediately(false)
        .send()
        .await
        .expect("RotateSecret");
}
