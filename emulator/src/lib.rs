//! An emulator of the Defender for Cloud Apps portal as this project uses it
//! (docs/portal-contract.md), for the tests (in-process, [`Emulator::start`])
//! and the local run (the `portal-emulator` binary).
//!
//! It serves on `http://127.0.0.1:PORT`:
//! - both authentications: `Authorization: Token <t>` (the legacy API token,
//!   [`Config::api_token`]) and `Authorization: Bearer <t>` with a token that
//!   its own Entra ID token endpoint issued, `POST /{tenant}/oauth2/v2.0/token`
//!   (client credentials grant for [`Config::entra`], scope
//!   `05a65629-4c1b-48c1-a78b-804c4abdd4af/.default`); an expired token gets 401;
//! - the app connector routes `find`, `create`, `update`, `test`,
//!   `test_result`, `status` and `disable` (paths overridable by name with
//!   [`Config::routes`]), with the contract's bodies and statuses;
//! - the throttle: [`Config::limit`] requests per rolling [`Config::window`]
//!   on the portal routes, then 429 `TOO MANY REQUESTS` (with `Retry-After`
//!   only when [`Config::retry_after_on_throttle`]);
//! - the asynchronous test: it really calls AWS ([`Config::aws_endpoint`],
//!   e.g. moto) with the instance's key (sts:GetCallerIdentity,
//!   cloudtrail:DescribeTrails, GetTrailStatus and LookupEvents,
//!   s3:ListAllMyBuckets, iam:GetAccountSummary), needs a logging
//!   multi-region trail, and stays `running` for [`Config::test_duration`];
//! - the documented activities API, `POST /api/v1/activities/` (route
//!   `activities`: filters `service` and `date`, `sortDirection`, `limit`),
//!   fed by the AWS calls its tests made: each call that worked is an
//!   activity of the AWS app, as the real portal records what it reads;
//!   [`Emulator::age_activities`] makes them older (data stopped flowing);
//! - [`Emulator::set_status`]: the portal's own verdict on an instance
//!   (`error` with a detail, say), as its periodic scans set it;
//! - fault injection ([`Emulator::inject`]): an error status, an HTML page, a
//!   slow answer or a 429 with or without `Retry-After`, per route.
//!
//! Each request is handled in this order: it is recorded, a matching fault
//! is used, the throttle counts it, its credentials are checked, the route
//! answers.
//!
//! Control routes (no authentication, no throttle, no faults), for the
//! local run:
//! - `GET /_emulator/instances`, `GET /_emulator/tests`: the instances and
//!   tests, as [`InstanceView`] and [`TestView`] (no secret);
//! - `POST /_emulator/faults` with a JSON list such as
//!   `[{"route":"create","kind":"status","status":503,"times":2},
//!   {"kind":"html","status":200}, {"kind":"slow","ms":3000},
//!   {"kind":"too_many","retry_after":"2"}]` (`route` omitted: any request,
//!   `times` omitted: 1) → 204.

mod aws;
mod portal;
mod routes;
mod throttle;

use std::collections::{BTreeMap, HashMap};
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use serde::Serialize;
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::sync::watch;

pub use aws::Check;
pub use routes::{DEFAULT_ROUTES, TOKEN};

use routes::{Control, Routes, Target};
use throttle::Throttle;

/// An Entra ID application the token endpoint accepts.
#[derive(Clone)]
pub struct EntraApp {
    pub tenant_id: String,
    pub client_id: String,
    pub client_secret: String,
}

#[derive(Clone)]
pub struct Config {
    /// The legacy API token, accepted as `Authorization: Token <t>`.
    pub api_token: Option<String>,
    /// The application the token endpoint issues bearer tokens to.
    pub entra: Option<EntraApp>,
    /// `expires_in` of the issued tokens (default 3599 s).
    pub token_lifetime: Duration,
    /// Requests per rolling window on the portal routes (default 30).
    pub limit: u32,
    /// The throttle's window (default 60 s).
    pub window: Duration,
    /// Send `Retry-After` on natural throttles (default false: the real
    /// portal documents none).
    pub retry_after_on_throttle: bool,
    /// How long a test stays `running` (default 3 s).
    pub test_duration: Duration,
    /// The AWS endpoint the tests call (None: the SDK's default).
    pub aws_endpoint: Option<String>,
    /// The region the tests call (default us-east-1).
    pub aws_region: String,
    /// Path templates by route name, replacing the defaults.
    pub routes: BTreeMap<String, String>,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            api_token: None,
            entra: None,
            token_lifetime: Duration::from_secs(3599),
            limit: 30,
            window: Duration::from_secs(60),
            retry_after_on_throttle: false,
            test_duration: Duration::from_secs(3),
            aws_endpoint: None,
            aws_region: "us-east-1".to_string(),
            routes: BTreeMap::new(),
        }
    }
}

#[derive(Clone, Debug)]
pub enum FaultKind {
    /// Answer this status with a JSON `{"error": ...}` body, nothing else.
    Status(u16),
    /// Answer this status with an HTML page, nothing else.
    Html(u16),
    /// Wait this long, then handle the request normally.
    Slow(Duration),
    /// 429 `TOO MANY REQUESTS`, with this `Retry-After` when Some.
    TooMany { retry_after: Option<String> },
}

/// A fault for the next `times` requests to `route` (a route name or
/// "token"; None: any request but the control routes).
#[derive(Clone, Debug)]
pub struct Fault {
    pub route: Option<String>,
    pub kind: FaultKind,
    pub times: u32,
}

#[derive(Clone, Debug, Serialize)]
pub struct InstanceView {
    pub id: String,
    pub name: String,
    pub connections: Vec<String>,
    pub access_key_id: String,
    pub enabled: bool,
    pub status: String,
    pub status_detail: String,
}

/// An activity of the AWS app, as the activities API lists it.
#[derive(Clone, Debug, Serialize)]
pub struct ActivityView {
    pub id: String,
    /// Milliseconds since the Unix epoch.
    pub timestamp: u64,
    pub instance_id: String,
    pub description: String,
}

#[derive(Clone, Debug, Serialize)]
pub struct TestView {
    pub test_id: String,
    pub instance_id: String,
    pub access_key_id: String,
    pub state: String,
    pub reason: Option<String>,
    pub checks: Vec<Check>,
}

/// A request as received, and the status it was answered.
#[derive(Clone, Debug)]
pub struct Received {
    pub method: String,
    /// The path with its query.
    pub path: String,
    /// The route name, "token", or None (control routes, unknown paths).
    pub route: Option<String>,
    /// 0 while it is being handled.
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
    /// When it arrived.
    pub at: Instant,
}

/// A running emulator; it stops when dropped.
pub struct Emulator {
    pub url: String,
    shared: Arc<Shared>,
    stop: watch::Sender<bool>,
}

struct Shared {
    config: Config,
    routes: Routes,
    state: Mutex<State>,
    log_to_stderr: AtomicBool,
}

/// A stored instance; it holds the secret key, so it has no `Debug`.
struct Instance {
    id: String,
    name: String,
    connections: Vec<String>,
    access_key_id: String,
    secret_access_key: String,
    enabled: bool,
    status: String,
    status_detail: String,
}

struct State {
    instances: Vec<Instance>,
    tests: Vec<TestView>,
    activities: Vec<ActivityView>,
    requests: Vec<Received>,
    faults: Vec<Fault>,
    throttle: Throttle,
    /// Issued access tokens and when they expire.
    tokens: HashMap<String, Instant>,
    secrets: Vec<String>,
    throttled: usize,
    test_duration: Duration,
}

impl Emulator {
    /// Serves on 127.0.0.1 and a free port, on the current tokio runtime.
    pub async fn start(config: Config) -> std::io::Result<Emulator> {
        Emulator::start_on(config, 0).await
    }

    /// Serves on 127.0.0.1:`port` (0: a free one).
    pub async fn start_on(config: Config, port: u16) -> std::io::Result<Emulator> {
        let routes = Routes::new(&config.routes)?;
        let listener = TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], port))).await?;
        let url = format!("http://{}", listener.local_addr()?);
        let mut secrets: Vec<String> = config.api_token.iter().cloned().collect();
        secrets.extend(config.entra.iter().map(|e| e.client_secret.clone()));
        let state = State {
            instances: Vec::new(),
            tests: Vec::new(),
            activities: Vec::new(),
            requests: Vec::new(),
            faults: Vec::new(),
            throttle: Throttle::new(config.limit, config.window),
            tokens: HashMap::new(),
            secrets,
            throttled: 0,
            test_duration: config.test_duration,
        };
        let shared = Arc::new(Shared {
            config,
            routes,
            state: Mutex::new(state),
            log_to_stderr: AtomicBool::new(false),
        });
        let (stop, stopped) = watch::channel(false);
        tokio::spawn(serve(listener, shared.clone(), stopped));
        Ok(Emulator { url, shared, stop })
    }

    /// Writes one line per request to stderr: method, path without query,
    /// route and status (never headers or bodies).
    pub fn log_to_stderr(&self) {
        self.shared.log_to_stderr.store(true, Ordering::Relaxed);
    }

    pub fn inject(&self, fault: Fault) {
        self.shared.lock().faults.push(fault);
    }

    /// How long the tests started from now stay running.
    pub fn set_test_duration(&self, d: Duration) {
        self.shared.lock().test_duration = d;
    }

    pub fn instances(&self) -> Vec<InstanceView> {
        self.shared
            .lock()
            .instances
            .iter()
            .map(Instance::view)
            .collect()
    }

    pub fn tests(&self) -> Vec<TestView> {
        self.shared.lock().tests.clone()
    }

    /// Moves every activity `by` into the past: as if no data had come
    /// since.
    pub fn age_activities(&self, by: Duration) {
        let by = u64::try_from(by.as_millis()).unwrap_or(u64::MAX);
        for a in &mut self.shared.lock().activities {
            a.timestamp = a.timestamp.saturating_sub(by);
        }
    }

    /// Sets the status the portal shows for the instance named `name`, as
    /// its own scans do (`error` with a detail, say). False when there is
    /// no such instance.
    pub fn set_status(&self, name: &str, status: &str, detail: &str) -> bool {
        let mut state = self.shared.lock();
        let Some(i) = state.instances.iter_mut().find(|i| i.name == name) else {
            return false;
        };
        i.status = status.to_string();
        i.status_detail = detail.to_string();
        true
    }

    /// Every request received, in order.
    pub fn requests(&self) -> Vec<Received> {
        self.shared.lock().requests.clone()
    }

    /// The secrets a leak scan looks for: the API token, the client secret,
    /// every access token issued and every secret key received.
    pub fn secrets_seen(&self) -> Vec<String> {
        self.shared.lock().secrets.clone()
    }

    /// How many 429s were answered (natural and injected).
    pub fn throttled(&self) -> usize {
        self.shared.lock().throttled
    }
}

impl Drop for Emulator {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
    }
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic elsewhere leaves the state usable: keep serving.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Instance {
    fn view(&self) -> InstanceView {
        InstanceView {
            id: self.id.clone(),
            name: self.name.clone(),
            connections: self.connections.clone(),
            access_key_id: self.access_key_id.clone(),
            enabled: self.enabled,
            status: self.status.clone(),
            status_detail: self.status_detail.clone(),
        }
    }
}

async fn serve(listener: TcpListener, shared: Arc<Shared>, mut stopped: watch::Receiver<bool>) {
    loop {
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(_) => continue,
            },
            _ = stopped.changed() => return,
        };
        let shared = shared.clone();
        let mut stopped = stopped.clone();
        tokio::spawn(async move {
            let service = service_fn(move |req| handle(shared.clone(), req));
            let conn = http1::Builder::new().serve_connection(TokioIo::new(stream), service);
            tokio::select! {
                _ = conn => {}
                _ = stopped.changed() => {}
            }
        });
    }
}

/// An answer before it becomes an HTTP response.
pub(crate) struct Answer {
    status: u16,
    content_type: &'static str,
    body: String,
    retry_after: Option<String>,
}

impl Answer {
    pub(crate) fn json(status: u16, body: Value) -> Answer {
        Answer {
            status,
            content_type: "application/json",
            body: body.to_string(),
            retry_after: None,
        }
    }

    pub(crate) fn error(status: u16, message: impl Into<String>) -> Answer {
        Answer::json(status, json!({ "error": message.into() }))
    }

    fn html(status: u16) -> Answer {
        Answer {
            status,
            content_type: "text/html; charset=utf-8",
            body: "<!DOCTYPE html><html><head><title>Sign in</title></head>\
                   <body><p>Sign in to your account</p></body></html>"
                .to_string(),
            retry_after: None,
        }
    }

    fn too_many(retry_after: Option<String>) -> Answer {
        Answer {
            status: 429,
            content_type: "text/plain",
            body: "TOO MANY REQUESTS".to_string(),
            retry_after,
        }
    }

    fn no_content() -> Answer {
        Answer {
            status: 204,
            content_type: "text/plain",
            body: String::new(),
            retry_after: None,
        }
    }
}

async fn handle(
    shared: Arc<Shared>,
    req: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let method = req.method().as_str().to_string();
    let path = req.uri().path().to_string();
    let path_and_query = req
        .uri()
        .path_and_query()
        .map_or(path.clone(), |p| p.as_str().to_string());
    let headers: Vec<(String, String)> = req
        .headers()
        .iter()
        .map(|(k, v)| {
            (
                k.to_string(),
                String::from_utf8_lossy(v.as_bytes()).into_owned(),
            )
        })
        .collect();
    let body = match req.into_body().collect().await {
        Ok(collected) => String::from_utf8_lossy(&collected.to_bytes()).into_owned(),
        Err(_) => String::new(),
    };
    let target = shared.routes.classify(&method, &path);
    let route = target.name().map(str::to_string);
    let index = {
        let mut state = shared.lock();
        state.requests.push(Received {
            method: method.clone(),
            path: path_and_query,
            route: route.clone(),
            status: 0,
            headers: headers.clone(),
            body: body.clone(),
            at: Instant::now(),
        });
        state.requests.len() - 1
    };

    let answer = answer(&shared, target, &headers, &body).await;

    shared.lock().requests[index].status = answer.status;
    if shared.log_to_stderr.load(Ordering::Relaxed) {
        let route = route.as_deref().unwrap_or("-");
        eprintln!("{method} {path} route={route} status={}", answer.status);
    }
    let mut response = Response::builder()
        .status(answer.status)
        .header("content-type", answer.content_type);
    if let Some(retry_after) = answer.retry_after {
        response = response.header("retry-after", retry_after);
    }
    Ok(response
        .body(Full::new(Bytes::from(answer.body)))
        .unwrap_or_else(|_| Response::new(Full::new(Bytes::from("bad response")))))
}

async fn answer(
    shared: &Arc<Shared>,
    target: Target,
    headers: &[(String, String)],
    body: &str,
) -> Answer {
    let fault = target
        .name()
        .and_then(|name| take_fault(&mut shared.lock().faults, name));
    match fault {
        Some(FaultKind::Status(status)) => {
            return Answer::error(status, format!("injected fault: HTTP {status}"));
        }
        Some(FaultKind::Html(status)) => return Answer::html(status),
        Some(FaultKind::TooMany { retry_after }) => {
            shared.lock().throttled += 1;
            return Answer::too_many(retry_after);
        }
        Some(FaultKind::Slow(wait)) => tokio::time::sleep(wait).await,
        None => {}
    }
    match target {
        Target::Control(control) => control_route(shared, control, body),
        Target::Unknown => Answer::error(404, "no such route"),
        Target::Token { tenant } => portal::token(shared, &tenant, body),
        Target::Portal { route, id, test_id } => {
            if let Some(refused) = throttle(shared) {
                return refused;
            }
            if !portal::authorized(shared, headers) {
                return Answer::error(401, "missing, wrong or expired credentials");
            }
            portal::route(shared, route, id, test_id, body)
        }
    }
}

/// Uses one of the first fault aimed at `route` (or at any route).
fn take_fault(faults: &mut Vec<Fault>, route: &str) -> Option<FaultKind> {
    let i = faults
        .iter()
        .position(|f| f.times > 0 && f.route.as_deref().is_none_or(|r| r == route))?;
    let kind = faults[i].kind.clone();
    faults[i].times -= 1;
    if faults[i].times == 0 {
        faults.remove(i);
    }
    Some(kind)
}

fn throttle(shared: &Shared) -> Option<Answer> {
    let mut state = shared.lock();
    let wait = state.throttle.admit(Instant::now()).err()?;
    state.throttled += 1;
    let retry_after = shared
        .config
        .retry_after_on_throttle
        .then(|| throttle::whole_seconds(wait).to_string());
    Some(Answer::too_many(retry_after))
}

fn control_route(shared: &Shared, control: Control, body: &str) -> Answer {
    let to_json = |v: Result<Value, serde_json::Error>| v.unwrap_or(Value::Null);
    match control {
        Control::Instances => {
            let state = shared.lock();
            let views: Vec<_> = state.instances.iter().map(Instance::view).collect();
            Answer::json(200, to_json(serde_json::to_value(views)))
        }
        Control::Tests => Answer::json(200, to_json(serde_json::to_value(&shared.lock().tests))),
        Control::Faults => match parse_faults(body) {
            Ok(faults) => {
                shared.lock().faults.extend(faults);
                Answer::no_content()
            }
            Err(e) => Answer::error(400, e),
        },
    }
}

/// Faults as `POST /_emulator/faults` takes them: a list (or one object).
fn parse_faults(body: &str) -> Result<Vec<Fault>, String> {
    let value: Value = serde_json::from_str(body).map_err(|e| format!("not JSON: {e}"))?;
    let items = match value {
        Value::Array(items) => items,
        one => vec![one],
    };
    items
        .iter()
        .map(|f| {
            let status = || {
                f["status"]
                    .as_u64()
                    .and_then(|s| u16::try_from(s).ok())
                    .filter(|s| (100..600).contains(s))
                    .ok_or("a status between 100 and 599 is needed")
            };
            let kind = match f["kind"].as_str() {
                Some("status") => FaultKind::Status(status()?),
                Some("html") => FaultKind::Html(status()?),
                Some("slow") => FaultKind::Slow(Duration::from_millis(
                    f["ms"].as_u64().ok_or("slow needs ms")?,
                )),
                Some("too_many") => FaultKind::TooMany {
                    retry_after: f["retry_after"].as_str().map(str::to_string),
                },
                other => return Err(format!("unknown fault kind {other:?}")),
            };
            let route = f["route"].as_str().map(str::to_string);
            if let Some(r) = &route {
                if r != TOKEN && !DEFAULT_ROUTES.iter().any(|(n, _, _)| n == r) {
                    return Err(format!("unknown route {r:?}"));
                }
            }
            let times = f["times"].as_u64().map_or(Ok(1), u32::try_from);
            let times = times.map_err(|_| "times is too large")?;
            Ok(Fault { route, kind, times })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fault(route: Option<&str>, status: u16, times: u32) -> Fault {
        Fault {
            route: route.map(str::to_string),
            kind: FaultKind::Status(status),
            times,
        }
    }

    fn statuses(faults: &mut Vec<Fault>, route: &str, n: usize) -> Vec<Option<u16>> {
        (0..n)
            .map(|_| match take_fault(faults, route) {
                Some(FaultKind::Status(s)) => Some(s),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn faults_are_used_up_in_the_order_injected() {
        // GIVEN two faults for create and one for any route
        let mut faults = vec![
            fault(Some("create"), 503, 2),
            fault(None, 500, 1),
            fault(Some("create"), 502, 1),
        ];
        // WHEN find is called, then create four times
        assert_eq!(statuses(&mut faults, "find", 1), [Some(500)]);
        // THEN create gets its own faults in order, then none
        assert_eq!(
            statuses(&mut faults, "create", 4),
            [Some(503), Some(503), Some(502), None]
        );
        assert!(faults.is_empty());
    }

    #[test]
    fn a_fault_for_any_route_comes_first_when_injected_first() {
        let mut faults = vec![fault(None, 500, 1), fault(Some("token"), 503, 1)];
        assert_eq!(
            statuses(&mut faults, "token", 3),
            [Some(500), Some(503), None]
        );
    }

    #[test]
    fn faults_parse_from_the_control_route() {
        let faults = parse_faults(
            r#"[{"route":"create","kind":"status","status":503,"times":2},
                {"kind":"html","status":200}, {"kind":"slow","ms":3000},
                {"kind":"too_many","retry_after":"2"}, {"kind":"too_many","route":"token"}]"#,
        )
        .unwrap();
        let shown: Vec<String> = faults
            .iter()
            .map(|f| format!("{:?} {:?} {}", f.route, f.kind, f.times))
            .collect();
        assert_eq!(
            shown,
            [
                "Some(\"create\") Status(503) 2",
                "None Html(200) 1",
                "None Slow(3s) 1",
                "None TooMany { retry_after: Some(\"2\") } 1",
                "Some(\"token\") TooMany { retry_after: None } 1",
            ]
        );
        for bad in [
            r#"{"kind":"boom"}"#,
            r#"{"kind":"status"}"#,
            r#"{"kind":"html","status":700}"#,
            r#"{"kind":"slow"}"#,
            r#"{"kind":"status","status":500,"route":"nope"}"#,
            "not json",
        ] {
            assert!(parse_faults(bad).is_err(), "{bad}");
        }
    }
}
