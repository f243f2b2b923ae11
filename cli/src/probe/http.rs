//! The probe's requests: sent one by one as the client would send them,
//! each answer kept whole (status, the throttle headers, the JSON body), so
//! that it can be compared with the contract. A 429 is waited out
//! (`Retry-After` when sent) and a 5xx or a network fault tried again, a
//! few times, within the probe's time; every attempt is recorded.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use reqwest::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE, HeaderMap, HeaderValue, RETRY_AFTER};
use reqwest::{Method, StatusCode};
use serde::Serialize;
use serde_json::Value;

use cloudapps::text::scrub;

/// Attempts per route at most.
const ATTEMPTS: usize = 4;

/// One attempt at a route.
#[derive(Clone, Debug, Serialize)]
pub struct Attempt {
    /// The HTTP status, when there was an answer.
    pub status: Option<u16>,
    /// Retry-After, and any rate-limit header, as sent.
    pub throttle_headers: BTreeMap<String, String>,
    /// Why there was no answer.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// A route as the probe called it.
#[derive(Clone, Debug, Serialize)]
pub struct Call {
    pub route: &'static str,
    pub method: String,
    /// The path template (`{id}` for the instance).
    pub path: String,
    pub attempts: Vec<Attempt>,
    /// The last answer's status.
    pub status: Option<u16>,
    /// The answer was an HTML page.
    pub html: bool,
    /// The answer's JSON (when it was JSON).
    #[serde(skip)]
    pub body: Option<Value>,
    /// The portal's `error` message, scrubbed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub portal_error: Option<String>,
}

impl Call {
    /// Answered 2xx with JSON.
    pub fn answered(&self) -> bool {
        self.status.is_some_and(|s| (200..300).contains(&s)) && !self.html && self.body.is_some()
    }

    /// The throttle headers seen, for people.
    pub fn throttle_shown(&self) -> String {
        let seen: Vec<String> = self
            .attempts
            .iter()
            .flat_map(|a| a.throttle_headers.iter())
            .map(|(k, v)| format!("{k}: {v}"))
            .collect();
        if seen.is_empty() {
            "none".into()
        } else {
            seen.join(", ")
        }
    }

    /// Every attempt's status, for people (`429 then 200`).
    pub fn statuses_shown(&self) -> String {
        self.attempts
            .iter()
            .map(|a| match (a.status, &a.error) {
                (Some(s), _) => s.to_string(),
                (None, Some(e)) => format!("no answer ({e})"),
                (None, None) => "no answer".into(),
            })
            .collect::<Vec<_>>()
            .join(" then ")
    }
}

/// Sends the probe's requests.
pub struct Http {
    client: reqwest::Client,
    base: String,
    authorization: HeaderValue,
    deadline: Instant,
}

impl Http {
    pub fn new(base: &str, authorization: HeaderValue, deadline: Instant) -> Result<Self, String> {
        let client = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(5))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| format!("HTTP client: {e}"))?;
        Ok(Self {
            client,
            base: base.trim_end_matches('/').to_string(),
            authorization,
            deadline,
        })
    }

    /// Calls `route` at `path` (filled in) whose template is `template`.
    pub async fn call(
        &self,
        route: &'static str,
        method: Method,
        template: &str,
        path: &str,
        body: Option<&Value>,
    ) -> Call {
        let mut call = Call {
            route,
            method: method.to_string(),
            path: template.to_string(),
            attempts: Vec::new(),
            status: None,
            html: false,
            body: None,
            portal_error: None,
        };
        let url = format!("{}{path}", self.base);
        for attempt in 1..=ATTEMPTS {
            let left = self.deadline.saturating_duration_since(Instant::now());
            if left < Duration::from_millis(300) {
                break;
            }
            let mut request = self
                .client
                .request(method.clone(), &url)
                .timeout(left.min(Duration::from_secs(15)))
                .header(ACCEPT, "application/json")
                .header(AUTHORIZATION, self.authorization.clone());
            if let Some(body) = body {
                request = request
                    .header(CONTENT_TYPE, "application/json")
                    .body(body.to_string());
            }
            let pause = match request.send().await {
                Err(e) => {
                    let why = if e.is_timeout() {
                        "timed out".to_string()
                    } else if e.is_connect() {
                        "the connection failed".to_string()
                    } else {
                        scrub(&e.without_url().to_string())
                    };
                    call.attempts.push(Attempt {
                        status: None,
                        throttle_headers: BTreeMap::new(),
                        error: Some(why),
                    });
                    Duration::from_secs(2)
                }
                Ok(response) => {
                    let status = response.status();
                    let headers = throttle_headers(response.headers());
                    let retry_after = response
                        .headers()
                        .get(RETRY_AFTER)
                        .and_then(cloudapps::portal::transport::retry_after);
                    let html = response
                        .headers()
                        .get(CONTENT_TYPE)
                        .and_then(|v| v.to_str().ok())
                        .is_some_and(|v| v.contains("html"));
                    let text = response.text().await.unwrap_or_default();
                    call.attempts.push(Attempt {
                        status: Some(status.as_u16()),
                        throttle_headers: headers,
                        error: None,
                    });
                    call.status = Some(status.as_u16());
                    call.html = html || text.trim_start().starts_with('<');
                    call.body = serde_json::from_str(&text).ok();
                    call.portal_error = call
                        .body
                        .as_ref()
                        .and_then(|b| b.get("error"))
                        .and_then(Value::as_str)
                        .map(scrub);
                    if status == StatusCode::TOO_MANY_REQUESTS {
                        retry_after.unwrap_or(Duration::from_secs(5 * attempt as u64))
                    } else if status.is_server_error() {
                        Duration::from_secs(2)
                    } else {
                        return call;
                    }
                }
            };
            if attempt == ATTEMPTS || cloudapps::time::reaches(pause, self.deadline) {
                break;
            }
            tokio::time::sleep(pause).await;
        }
        call
    }
}

/// `Retry-After` and every rate-limit header (`X-RateLimit-*`,
/// `RateLimit-*`, `X-Ms-Ratelimit-*`...), values scrubbed.
fn throttle_headers(headers: &HeaderMap) -> BTreeMap<String, String> {
    headers
        .iter()
        .filter(|(name, _)| {
            let n = name.as_str();
            n == "retry-after" || n.contains("ratelimit") || n.contains("rate-limit")
        })
        .map(|(name, value)| {
            (
                name.as_str().to_string(),
                scrub(&String::from_utf8_lossy(value.as_bytes())),
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_throttle_headers_are_kept() {
        let mut h = HeaderMap::new();
        h.insert("retry-after", HeaderValue::from_static("2"));
        h.insert("x-ratelimit-remaining", HeaderValue::from_static("0"));
        h.insert("set-cookie", HeaderValue::from_static("session=abc"));
        let kept = throttle_headers(&h);
        assert_eq!(kept.len(), 2);
        assert!(!kept.contains_key("set-cookie"));
    }
}
