//! Serving: each request is recorded, a matching fault is used, the
//! throttle counts it, its credentials are checked, and its route answers;
//! the control routes (no authentication, no throttle, no faults) show the
//! state and take faults.

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use serde_json::Value;
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::answer::Answer;
use crate::config::{Fault, FaultKind};
use crate::routes::{Control, DEFAULT_ROUTES, TOKEN, Target};
use crate::state::{Instance, Received, Shared};
use crate::{auth, portal, throttle};

pub(crate) async fn serve(
    listener: TcpListener,
    shared: Arc<Shared>,
    mut stopped: watch::Receiver<bool>,
) {
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
        Target::Token { tenant } => auth::token(shared, &tenant, body),
        Target::Portal { route, id, test_id } => {
            if let Some(refused) = throttle(shared) {
                return refused;
            }
            if !auth::authorized(shared, headers) {
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
