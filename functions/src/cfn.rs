//! The CloudFormation custom resource protocol, done so that a stack never
//! waits an hour for an answer: every event that names a ResponseURL gets
//! exactly one answer PUT there, whatever happens in the handler (success,
//! error, panic, a malformed event, an unknown RequestType, or work still
//! running a margin before the Lambda deadline). The PhysicalResourceId is
//! known before the work starts and is sent with FAILED too, so a rollback
//! Delete can clean up a half-made Create; a failed Update answers with the
//! id CloudFormation holds.
//!
//! Never logged: the event, the ResponseURL (it lets anyone answer for the
//! stack), any secret.

use std::collections::BTreeMap;
use std::fmt::Display;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use aws_lambda_events::cloudformation::{
    CloudFormationCustomResourceRequest as RawRequest, CloudFormationCustomResourceResponse,
    CloudFormationCustomResourceResponseStatus as Status,
};
use futures_util::FutureExt;
use serde_json::Value;
use tracing::{error, info, warn};

use crate::names::StackRef;
use crate::text::truncate;

/// CloudFormation rejects a response body of 4096 bytes or more.
pub const MAX_RESPONSE_BYTES: usize = 4096;
const MAX_REASON_CHARS: usize = 1500;

/// Non-secret values returned in the response's `Data`.
pub type Data = BTreeMap<String, String>;

/// What CloudFormation asks for.
#[derive(Clone, Debug, PartialEq)]
pub enum Action {
    Create,
    Update {
        physical_id: String,
        old_properties: Value,
    },
    Delete {
        physical_id: String,
    },
}

impl Action {
    pub fn name(&self) -> &'static str {
        match self {
            Action::Create => "Create",
            Action::Update { .. } => "Update",
            Action::Delete { .. } => "Delete",
        }
    }

    /// The physical id CloudFormation holds for the resource (none on Create).
    pub fn current_physical_id(&self) -> Option<&str> {
        match self {
            Action::Create => None,
            Action::Update { physical_id, .. } | Action::Delete { physical_id } => {
                Some(physical_id)
            }
        }
    }
}

/// A well-formed request, as the handler sees it. Holds no ResponseURL.
#[derive(Clone, Debug)]
pub struct Request {
    pub action: Action,
    pub stack: StackRef,
    pub request_id: String,
    pub resource_type: String,
    pub properties: Value,
    /// When the handler's work must be done: the Lambda deadline minus the margin
    /// kept to answer. Polling loops stop here with a precise message.
    pub deadline: Instant,
}

impl Request {
    /// The id CloudFormation sent on Update/Delete; on Create, a marker that
    /// stands for "nothing was made" and that Delete recognizes as such.
    pub fn fallback_physical_id(&self) -> String {
        match self.action.current_physical_id() {
            Some(id) => id.to_string(),
            None => create_failed_marker(&self.stack.logical_id, &self.request_id),
        }
    }
}

fn create_failed_marker(logical_id: &str, request_id: &str) -> String {
    format!("{logical_id}-create-failed-{request_id}")
}

/// A custom resource: derives its physical id up front, then does the work.
pub trait CustomResource {
    type Error: Display;

    /// The resource type this handler serves (e.g. `Custom::CloudAppsConnector`).
    fn resource_type(&self) -> &str;

    /// The physical id to answer with, decided before any work starts.
    fn physical_id(&self, request: &Request) -> String;

    fn handle(
        &self,
        request: &Request,
        physical_id: &str,
    ) -> impl Future<Output = Result<Data, Self::Error>>;
}

/// Timing of one invocation.
#[derive(Clone, Debug)]
pub struct Invocation {
    /// The Lambda deadline: after it the process is frozen or killed.
    pub deadline: Instant,
    /// How long before the deadline the handler is cut off to answer FAILED.
    pub margin: Duration,
    /// Named in FAILED reasons so the operator knows where to look.
    pub log_stream: Option<String>,
}

impl Invocation {
    /// From a Lambda context deadline in milliseconds since the epoch. A
    /// value before 2001 cannot be one: Lambda emulators (`cargo lambda
    /// watch`) send the time left instead, and it is read as such.
    pub fn from_epoch_millis(
        deadline_ms: u64,
        margin: Duration,
        log_stream: Option<String>,
    ) -> Self {
        let left = if deadline_ms < 1_000_000_000_000 {
            Duration::from_millis(deadline_ms)
        } else {
            (UNIX_EPOCH + Duration::from_millis(deadline_ms))
                .duration_since(SystemTime::now())
                .unwrap_or(Duration::ZERO)
        };
        Self {
            deadline: crate::time::from_now(left),
            margin,
            log_stream,
        }
    }
}

/// What was answered (also the Lambda's return value; never holds a secret).
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct Answer {
    pub status: &'static str,
    pub physical_id: String,
    pub reason: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum ProtocolError {
    #[error("the event has no ResponseURL: there is no CloudFormation request to answer")]
    NoResponseUrl,
    #[error("the answer could not be delivered to CloudFormation: {0}")]
    NotDelivered(String),
}

/// Handles one custom resource event end to end and answers CloudFormation.
/// Returns an error only when no answer could be delivered.
pub async fn serve<R: CustomResource>(
    resource: &R,
    http: &reqwest::Client,
    event: Value,
    invocation: &Invocation,
) -> Result<Answer, ProtocolError> {
    // Read what an answer needs before anything else, leniently: even a
    // malformed event gets its answer if it names where to send it.
    let field = |name: &str| {
        event
            .get(name)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string()
    };
    let response_url = field("ResponseURL");
    if response_url.is_empty() {
        error!("event without ResponseURL: nothing to answer");
        return Err(ProtocolError::NoResponseUrl);
    }
    let mut response = CloudFormationCustomResourceResponse::default();
    response.stack_id = field("StackId");
    response.request_id = field("RequestId");
    response.logical_resource_id = field("LogicalResourceId");
    let request_type = field("RequestType");
    let echoed_id = field("PhysicalResourceId");

    let outcome = match parse(event, invocation) {
        Err(problem) => {
            let physical_id = if echoed_id.is_empty() {
                create_failed_marker(&response.logical_resource_id, &response.request_id)
            } else {
                echoed_id
            };
            warn!(request_type = %request_type, %problem, "malformed custom resource event");
            Err((physical_id, format!("malformed event: {problem}")))
        }
        Ok(request) if request.resource_type != resource.resource_type() => Err((
            request.fallback_physical_id(),
            format!(
                "this function serves {}, not {}",
                resource.resource_type(),
                request.resource_type
            ),
        )),
        Ok(request) => run(resource, &request, invocation).await,
    };

    let (status, physical_id, reason, data) = match outcome {
        Ok((physical_id, data)) => (Status::Success, physical_id, None, data),
        Err((physical_id, reason)) => {
            let reason = match &invocation.log_stream {
                Some(stream) => format!("{reason} (log stream {stream})"),
                None => reason,
            };
            (Status::Failed, physical_id, Some(reason), Data::new())
        }
    };
    response.status = status.clone();
    response.physical_resource_id = physical_id.clone();
    response.reason = Some(truncate(
        reason.as_deref().unwrap_or("OK"),
        MAX_REASON_CHARS,
    ));
    response.data = data.into_iter().collect();
    let body = fit_body(&mut response);
    let answer = Answer {
        status: if status == Status::Success {
            "SUCCESS"
        } else {
            "FAILED"
        },
        physical_id,
        reason: response.reason.clone().filter(|_| status == Status::Failed),
    };
    deliver(http, &response_url, body, invocation.deadline).await?;
    info!(
        status = answer.status,
        physical_id = %answer.physical_id,
        request_type = %request_type,
        logical_id = %response.logical_resource_id,
        reason = answer.reason.as_deref().unwrap_or(""),
        "answered CloudFormation"
    );
    Ok(answer)
}

fn parse(event: Value, invocation: &Invocation) -> Result<Request, String> {
    let raw: RawRequest = serde_json::from_value(event).map_err(|e| {
        // serde names the missing field or the unknown variant, never a value.
        e.to_string()
    })?;
    let deadline = invocation
        .deadline
        .checked_sub(invocation.margin)
        .unwrap_or_else(Instant::now);
    let (action, stack_id, logical_id, request_id, resource_type, properties) = match raw {
        RawRequest::Create(r) => (
            Action::Create,
            r.stack_id,
            r.logical_resource_id,
            r.request_id,
            r.resource_type,
            r.resource_properties,
        ),
        RawRequest::Update(r) => (
            Action::Update {
                physical_id: r.physical_resource_id,
                old_properties: r.old_resource_properties,
            },
            r.stack_id,
            r.logical_resource_id,
            r.request_id,
            r.resource_type,
            r.resource_properties,
        ),
        RawRequest::Delete(r) => (
            Action::Delete {
                physical_id: r.physical_resource_id,
            },
            r.stack_id,
            r.logical_resource_id,
            r.request_id,
            r.resource_type,
            r.resource_properties,
        ),
        _ => return Err("unsupported RequestType".into()),
    };
    if let Some("") = action.current_physical_id() {
        return Err("PhysicalResourceId is empty".into());
    }
    let stack = StackRef::parse(&stack_id, &logical_id)?;
    Ok(Request {
        action,
        stack,
        request_id,
        resource_type,
        properties,
        deadline,
    })
}

/// Runs the handler, turning an error, a panic or the deadline into FAILED.
async fn run<R: CustomResource>(
    resource: &R,
    request: &Request,
    invocation: &Invocation,
) -> Result<(String, Data), (String, String)> {
    let action = request.action.name();
    // Deriving the id is the resource's own code: guard it like the rest.
    let physical_id =
        match std::panic::catch_unwind(AssertUnwindSafe(|| resource.physical_id(request))) {
            Ok(id) => id,
            Err(_) => {
                error!(
                    action,
                    "the handler panicked while deriving the physical id"
                );
                return Err((
                    request.fallback_physical_id(),
                    format!("{action} failed: internal error (the handler panicked)"),
                ));
            }
        };
    info!(action, logical_id = %request.stack.logical_id, physical_id = %physical_id, "handling custom resource event");
    // A failed Update keeps the id CloudFormation holds: its rollback comes
    // back to that id (and cleans what the attempt made, see the connector).
    let failed_id = request
        .action
        .current_physical_id()
        .map_or_else(|| physical_id.clone(), str::to_string);
    let budget = request.deadline.saturating_duration_since(Instant::now());
    if budget.is_zero() {
        return Err((
            failed_id,
            format!(
                "{action} failed: the invocation started with less than the {:?} kept to answer; raise the function timeout",
                invocation.margin
            ),
        ));
    }
    let work = AssertUnwindSafe(resource.handle(request, &physical_id)).catch_unwind();
    match tokio::time::timeout_at(request.deadline.into(), work).await {
        Ok(Ok(Ok(data))) => Ok((physical_id, data)),
        Ok(Ok(Err(e))) => {
            error!(action, error = %e, "custom resource handler failed");
            Err((failed_id, format!("{action} failed: {e}")))
        }
        Ok(Err(_panic)) => {
            error!(action, "custom resource handler panicked");
            Err((
                failed_id,
                format!(
                    "{action} failed: internal error (the handler panicked); nothing is left half-made that a retry or Delete cannot finish"
                ),
            ))
        }
        Err(_elapsed) => {
            error!(action, ?budget, "custom resource handler ran out of time");
            Err((
                failed_id,
                format!(
                    "{action} failed: timed out: the work did not finish within {:.0?}, answered {:?} before the Lambda deadline; a retry or Delete finishes or removes what was begun",
                    budget, invocation.margin
                ),
            ))
        }
    }
}

/// Serializes the response under CloudFormation's size limit: the reason is
/// shortened first; data that still does not fit turns the answer into FAILED.
fn fit_body(response: &mut CloudFormationCustomResourceResponse) -> String {
    let mut body = serde_json::to_string(response).expect("a response serializes");
    let mut chars = MAX_REASON_CHARS;
    while body.len() >= MAX_RESPONSE_BYTES && chars > 100 {
        chars /= 2;
        response.reason = response.reason.as_deref().map(|r| truncate(r, chars));
        body = serde_json::to_string(response).expect("a response serializes");
    }
    if body.len() >= MAX_RESPONSE_BYTES {
        response.status = Status::Failed;
        response.data.clear();
        response.reason = Some("the response data exceeds CloudFormation's 4096-byte limit".into());
        body = serde_json::to_string(response).expect("a response serializes");
    }
    body
}

/// PUTs the answer to the presigned ResponseURL, retrying within the deadline.
async fn deliver(
    http: &reqwest::Client,
    url: &str,
    body: String,
    deadline: Instant,
) -> Result<(), ProtocolError> {
    let mut last = String::new();
    for attempt in 0..4u32 {
        if attempt > 0 {
            let pause = Duration::from_millis(250 << attempt);
            if crate::time::reaches(pause, deadline) {
                break;
            }
            tokio::time::sleep(pause).await;
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            break;
        }
        // An empty Content-Type: the presigned URL is signed without one.
        let sent = http
            .put(url)
            .header(reqwest::header::CONTENT_TYPE, "")
            .body(body.clone())
            .timeout(left.min(Duration::from_secs(10)))
            .send()
            .await;
        match sent {
            Ok(r) if r.status().is_success() => return Ok(()),
            // Never show the URL: reqwest errors carry it unless stripped.
            Ok(r) => last = format!("HTTP {}", r.status().as_u16()),
            Err(e) => last = e.without_url().to_string(),
        }
        warn!(attempt, error = %last, "could not deliver the answer to CloudFormation");
    }
    Err(ProtocolError::NotDelivered(if last.is_empty() {
        "no time left before the Lambda deadline".into()
    } else {
        last
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deadline_from_an_epoch_or_from_an_emulators_time_left() {
        let margin = Duration::from_secs(1);
        let now_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_millis() as u64;
        let epoch = Invocation::from_epoch_millis(now_ms + 30_000, margin, None);
        let left = epoch.deadline.saturating_duration_since(Instant::now());
        assert!(
            left > Duration::from_secs(29) && left <= Duration::from_secs(30),
            "{left:?}"
        );
        let relative = Invocation::from_epoch_millis(600_000, margin, None);
        let left = relative.deadline.saturating_duration_since(Instant::now());
        assert!(left > Duration::from_secs(599), "{left:?}");
        let past = Invocation::from_epoch_millis(now_ms - 5_000, margin, None);
        assert!(past.deadline <= Instant::now());
    }

    #[test]
    fn body_always_fits() {
        let mut r = CloudFormationCustomResourceResponse::default();
        r.reason = Some("x".repeat(10_000));
        assert!(fit_body(&mut r).len() < MAX_RESPONSE_BYTES);
        let mut r = CloudFormationCustomResourceResponse::default();
        r.data.insert("Big".into(), "y".repeat(5000));
        let body = fit_body(&mut r);
        assert!(body.len() < MAX_RESPONSE_BYTES);
        assert_eq!(r.status, Status::Failed);
    }
}
