//! Reading the functions' log groups (CloudWatch Logs): the health check's
//! last run line, and the rotation's step lines. A line is the functions'
//! own JSON (`{"level", "fields": {"message", ...}}`), or that JSON wrapped
//! by Lambda's JSON log format (`{"message": "<the line>"}`); both are read.

use std::collections::BTreeSet;

use aws_sdk_cloudwatchlogs::Client;
use serde_json::{Map, Value};

use crate::outcome::{self, Failure};

/// A line's fields, flattened: the tracing JSON's `fields` beside `level`,
/// or a health run's document as it is.
pub fn fields_of(message: &str) -> Option<Map<String, Value>> {
    let value: Value = serde_json::from_str(message.trim()).ok()?;
    let mut object = value.as_object()?.clone();
    if let Some(Value::String(inner)) = object.get("message") {
        if inner.trim_start().starts_with('{') {
            if let Some(nested) = fields_of(inner) {
                return Some(nested);
            }
        }
    }
    if let Some(Value::Object(fields)) = object.remove("fields") {
        for (k, v) in fields {
            object.insert(k, v);
        }
    }
    Some(object)
}

/// Whether a line is a health run's (its embedded metric document).
pub fn is_health_line(fields: &Map<String, Value>) -> bool {
    fields.get("checks").is_some_and(Value::is_object) && fields.contains_key("healthy")
}

/// What the health log group says of the last run.
pub enum LastRun {
    /// The run's line and when it was written (ms since the epoch).
    Found { at: i64, line: Map<String, Value> },
    /// No run line in the newest streams.
    NoneYet,
    /// The log group could not be read (its reason).
    Unreadable(String),
}

/// The newest health run line of `group`.
pub async fn last_health_run(logs: &Client, group: &str) -> LastRun {
    let streams = logs
        .describe_log_streams()
        .log_group_name(group)
        .order_by(aws_sdk_cloudwatchlogs::types::OrderBy::LastEventTime)
        .descending(true)
        .limit(5)
        .send()
        .await;
    let streams = match streams {
        Ok(s) => s,
        Err(e) => {
            let f = outcome::aws("logs:DescribeLogStreams")(e);
            return LastRun::Unreadable(f.message);
        }
    };
    let mut best: Option<(i64, Map<String, Value>)> = None;
    for stream in streams.log_streams() {
        let Some(name) = stream.log_stream_name() else {
            continue;
        };
        let events = logs
            .get_log_events()
            .log_group_name(group)
            .log_stream_name(name)
            .start_from_head(false)
            .limit(200)
            .send()
            .await;
        let events = match events {
            Ok(e) => e,
            Err(e) => {
                return LastRun::Unreadable(outcome::aws("logs:GetLogEvents")(e).message);
            }
        };
        for event in events.events().iter().rev() {
            let at = event.timestamp().unwrap_or_default();
            let Some(fields) = event.message().and_then(fields_of) else {
                continue;
            };
            if is_health_line(&fields) {
                if best.as_ref().is_none_or(|(t, _)| at > *t) {
                    best = Some((at, fields));
                }
                break;
            }
        }
    }
    match best {
        Some((at, line)) => LastRun::Found { at, line },
        None => LastRun::NoneYet,
    }
}

/// A rotation step as its function logged it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StepLine {
    /// When it was logged (ms since the epoch).
    pub at: i64,
    pub step: String,
    /// Done, or failed.
    pub ok: bool,
    /// What the step did, or why it failed (scrubbed).
    pub detail: String,
}

/// Follows the rotation function's log group: the step lines since a time,
/// each once.
pub struct StepFollower {
    group: String,
    since_ms: i64,
    seen: BTreeSet<String>,
}

impl StepFollower {
    pub fn new(group: &str, since_ms: i64) -> Self {
        Self {
            group: group.to_string(),
            since_ms,
            seen: BTreeSet::new(),
        }
    }

    pub fn group(&self) -> &str {
        &self.group
    }

    /// The step lines not seen before for the rotation `token`: "rotation
    /// step done" lines carry the token; "rotation step failed" lines do
    /// not, and are taken when they come after the rotation began.
    pub async fn next(&mut self, logs: &Client, token: &str) -> Result<Vec<StepLine>, Failure> {
        let mut lines = Vec::new();
        let mut next: Option<String> = None;
        for _page in 0..20 {
            let out = logs
                .filter_log_events()
                .log_group_name(&self.group)
                .start_time(self.since_ms)
                .set_next_token(next.take())
                .send()
                .await
                .map_err(outcome::aws("logs:FilterLogEvents"))?;
            for event in out.events() {
                let id = event.event_id().unwrap_or_default().to_string();
                let key = if id.is_empty() {
                    format!("{:?}{:?}", event.timestamp(), event.message())
                } else {
                    id
                };
                if self.seen.contains(&key) {
                    continue;
                }
                let Some(fields) = event.message().and_then(fields_of) else {
                    continue;
                };
                let text = |k: &str| fields.get(k).and_then(Value::as_str).unwrap_or_default();
                let ok = match text("message") {
                    "rotation step done" if text("token") == token => true,
                    "rotation step failed" => false,
                    _ => continue,
                };
                self.seen.insert(key);
                let detail = if ok { text("done") } else { text("error") };
                lines.push(StepLine {
                    at: event.timestamp().unwrap_or_default(),
                    step: text("step").to_string(),
                    ok,
                    detail: cloudapps::text::scrub(detail),
                });
            }
            match out.next_token() {
                Some(t) if !t.is_empty() && !out.events().is_empty() => next = Some(t.to_string()),
                _ => break,
            }
        }
        lines.sort_by_key(|l| l.at);
        Ok(lines)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_read_bare_or_wrapped_by_lambda() {
        let bare = r#"{"level":"INFO","fields":{"message":"rotation step done","step":"setSecret","token":"t"}}"#;
        let f = fields_of(bare).unwrap();
        assert_eq!(f["step"], "setSecret");
        assert_eq!(f["level"], "INFO");
        let wrapped =
            serde_json::json!({"timestamp": "x", "requestId": "r", "message": bare}).to_string();
        assert_eq!(
            fields_of(&wrapped).unwrap()["message"],
            "rotation step done"
        );
        let health = r#"{"Stack":"s","healthy":true,"checks":{"UserPolicy":{"state":"pass"}},"message":"connector health: all 6 checks pass"}"#;
        assert!(is_health_line(&fields_of(health).unwrap()));
        assert!(fields_of("START RequestId: 1").is_none());
    }
}
