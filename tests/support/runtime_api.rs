//! A Lambda Runtime API on 127.0.0.1, enough to run the real function
//! binaries as Lambda does: it hands out events with a deadline, records
//! what the function answers, and captures the process's output.

use std::collections::VecDeque;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::{Request, Response};
use serde_json::Value;
use tokio::io::AsyncReadExt;
use tokio::sync::Notify;

/// What the function posted back for one invocation.
#[derive(Clone, Debug)]
pub enum Outcome {
    Response(Value),
    Error(String),
}

#[derive(Default)]
struct State {
    queue: VecDeque<(String, Value, u64)>,
    outcomes: Vec<(String, Outcome)>,
    init_error: Option<String>,
    /// When the process first asked for an event, and first answered one.
    first_next: Option<Instant>,
    first_outcome: Option<Instant>,
}

/// When a function process got ready and first answered, from its start.
#[derive(Clone, Copy, Debug)]
pub struct Timeline {
    /// Process start to its first `GET /runtime/invocation/next` (Lambda's init).
    pub ready: Duration,
    /// Process start to its first response or error posted.
    pub first_answer: Option<Duration>,
}

/// The Runtime API server and the function process it serves.
pub struct Function {
    state: Arc<Mutex<State>>,
    changed: Arc<Notify>,
    child: tokio::process::Child,
    output: Arc<Mutex<String>>,
    started: Instant,
}

impl Function {
    /// Starts `binary` against a new Runtime API, with `env` on top of the
    /// Lambda variables.
    pub async fn start(binary: &str, env: &[(String, String)]) -> Function {
        Function::start_program(binary, &[], env).await
    }

    /// Starts `program` with `args` (an interpreter and its script, say)
    /// against a new Runtime API, with `env` on top of the Lambda variables.
    pub async fn start_program(program: &str, args: &[&str], env: &[(String, String)]) -> Function {
        let state = Arc::new(Mutex::new(State::default()));
        let changed = Arc::new(Notify::new());
        let (s, n) = (state.clone(), changed.clone());
        let base = super::serve(move |req: Request<Incoming>| {
            let (s, n) = (s.clone(), n.clone());
            async move { handle(req, s, n).await }
        })
        .await;
        let mut cmd = tokio::process::Command::new(program);
        cmd.args(args)
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("AWS_LAMBDA_RUNTIME_API", base.trim_start_matches("http://"))
            .env("AWS_LAMBDA_FUNCTION_NAME", "connector")
            .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128")
            .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
            .env("AWS_LAMBDA_LOG_GROUP_NAME", "/aws/lambda/connector")
            .env("AWS_LAMBDA_LOG_STREAM_NAME", "2026/11/23/[$LATEST]testbed")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        for (k, v) in env {
            cmd.env(k, v);
        }
        let started = Instant::now();
        let mut child = cmd.spawn().expect("start the function binary");
        let output = Arc::new(Mutex::new(String::new()));
        for stream in [
            Box::new(child.stdout.take().unwrap()) as Box<dyn tokio::io::AsyncRead + Unpin + Send>,
            Box::new(child.stderr.take().unwrap()),
        ] {
            let out = output.clone();
            tokio::spawn(async move {
                let mut stream = stream;
                let mut buf = [0u8; 4096];
                while let Ok(n) = stream.read(&mut buf).await {
                    if n == 0 {
                        break;
                    }
                    out.lock()
                        .unwrap()
                        .push_str(&String::from_utf8_lossy(&buf[..n]));
                }
            });
        }
        Function {
            state,
            changed,
            child,
            output,
            started,
        }
    }

    /// Waits until the process asks for its first event; then when that
    /// was, and when it first answered (if it did yet), from its start.
    pub async fn timeline(&self) -> Timeline {
        let wait = async {
            loop {
                let notified = self.changed.notified();
                let seen = {
                    let s = self.state.lock().unwrap();
                    s.first_next.map(|ready| Timeline {
                        ready: ready - self.started,
                        first_answer: s.first_outcome.map(|t| t - self.started),
                    })
                };
                if let Some(timeline) = seen {
                    return timeline;
                }
                notified.await;
            }
        };
        tokio::time::timeout(Duration::from_secs(30), wait)
            .await
            .expect("the function asks for an event")
    }

    /// The process's peak resident memory so far (`VmHWM`), in KiB.
    pub fn peak_rss_kib(&self) -> Option<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()?)).ok()?;
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
    }

    /// Invokes the function with `event` and a deadline `budget` away;
    /// waits for what it posts back.
    pub async fn invoke(&self, event: &Value, budget: Duration) -> Outcome {
        let id = format!("{:016x}", fastrand::u64(..));
        let deadline = SystemTime::now().duration_since(UNIX_EPOCH).unwrap() + budget;
        self.state.lock().unwrap().queue.push_back((
            id.clone(),
            event.clone(),
            deadline.as_millis() as u64,
        ));
        self.changed.notify_waiters();
        let wait = async {
            loop {
                let notified = self.changed.notified();
                if let Some((_, o)) = self
                    .state
                    .lock()
                    .unwrap()
                    .outcomes
                    .iter()
                    .find(|(i, _)| *i == id)
                {
                    return o.clone();
                }
                if let Some(e) = &self.state.lock().unwrap().init_error {
                    return Outcome::Error(format!("init error: {e}"));
                }
                notified.await;
            }
        };
        tokio::time::timeout(budget + Duration::from_secs(30), wait)
            .await
            .expect("the function answers the Runtime API")
    }

    /// Waits for the init error the function reports (a bad configuration).
    pub async fn init_error(&self) -> String {
        let wait = async {
            loop {
                let notified = self.changed.notified();
                if let Some(e) = self.state.lock().unwrap().init_error.clone() {
                    return e;
                }
                notified.await;
            }
        };
        tokio::time::timeout(Duration::from_secs(30), wait)
            .await
            .expect("the function reports its init error")
    }

    /// Everything the process wrote to stdout and stderr so far.
    pub fn output(&self) -> String {
        self.output.lock().unwrap().clone()
    }

    pub async fn stop(mut self) -> String {
        let _ = self.child.kill().await;
        tokio::time::sleep(Duration::from_millis(50)).await;
        self.output()
    }
}

async fn handle(
    req: Request<Incoming>,
    state: Arc<Mutex<State>>,
    changed: Arc<Notify>,
) -> Response<Full<Bytes>> {
    let path = req.uri().path().to_string();
    let method = req.method().clone();
    let body = req
        .into_body()
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let ok = |b: Bytes| Response::builder().status(202).body(Full::new(b)).unwrap();
    if method == hyper::Method::GET && path.ends_with("/runtime/invocation/next") {
        {
            let mut s = state.lock().unwrap();
            s.first_next.get_or_insert_with(Instant::now);
        }
        changed.notify_waiters();
        loop {
            let notified = changed.notified();
            let next = state.lock().unwrap().queue.pop_front();
            if let Some((id, event, deadline)) = next {
                return Response::builder()
                    .status(200)
                    .header("Lambda-Runtime-Aws-Request-Id", id)
                    .header("Lambda-Runtime-Deadline-Ms", deadline.to_string())
                    .header(
                        "Lambda-Runtime-Invoked-Function-Arn",
                        "arn:aws:lambda:us-east-1:123456789012:function:connector",
                    )
                    .header(
                        "Lambda-Runtime-Trace-Id",
                        "Root=1-00000000-000000000000000000000000",
                    )
                    .header("content-type", "application/json")
                    .body(Full::new(Bytes::from(event.to_string())))
                    .unwrap();
            }
            notified.await;
        }
    }
    let text = String::from_utf8_lossy(&body).into_owned();
    let mut parts = path.trim_start_matches('/').split('/');
    let (_version, _runtime, kind, id, what) = (
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
    );
    let mut s = state.lock().unwrap();
    if kind == Some("invocation") {
        s.first_outcome.get_or_insert_with(Instant::now);
    }
    match (kind, id, what) {
        (Some("invocation"), Some(id), Some("response")) => {
            let value = serde_json::from_str(&text).unwrap_or(Value::String(text));
            s.outcomes.push((id.to_string(), Outcome::Response(value)));
        }
        (Some("invocation"), Some(id), Some("error")) => {
            s.outcomes.push((id.to_string(), Outcome::Error(text)));
        }
        (Some("init"), Some("error"), _) => s.init_error = Some(text),
        _ => {
            return Response::builder()
                .status(404)
                .body(Full::new(Bytes::new()))
                .unwrap();
        }
    }
    drop(s);
    changed.notify_waiters();
    ok(Bytes::new())
}
