//! Sending to the portal: each request with its own timeout, never past the
//! invocation's deadline; a 429 always waited out (`Retry-After` when sent,
//! else growing pauses with jitter, shortened near the deadline); 5xx and
//! network faults retried when the request may be sent again. Built for a
//! tenant-wide budget of 30 requests a minute.

use std::time::{Duration, Instant, SystemTime};

use reqwest::StatusCode;
use reqwest::header::{CONTENT_TYPE, HeaderValue, RETRY_AFTER};
use tracing::{debug, warn};

use crate::backoff::Backoff;
use crate::error::Error;
use crate::time::reaches;

use super::pace::{Budget, Pacer};

/// No attempt starts with less time than this left.
pub const MIN_ATTEMPT: Duration = Duration::from_millis(300);
/// The largest answer body read: the contract's answers are a few KB; a
/// page of 100 instances, some 50 KB.
pub const MAX_BODY: usize = 4 * 1024 * 1024;
/// The longest pause a `Retry-After` is taken for (the invocation's
/// deadline cuts it shorter anyway).
const MAX_RETRY_AFTER: Duration = Duration::from_secs(3600);

/// How patient to be with the portal.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Timings {
    /// One request's limit.
    pub request_timeout: Duration,
    /// Pauses before retrying a throttled or failed request (×1.5 each
    /// time, jitter; after a 429, at most a tenth of the time left).
    pub retry_first: Duration,
    pub retry_max: Duration,
    /// Pauses between two reads of a running test ("minutes" long; each
    /// read is one of the tenant's 30 requests a minute).
    pub test_first_poll: Duration,
    pub test_max_poll: Duration,
    /// The least time between the starts of two requests ([`Pacer`]).
    /// Zero: no pacing.
    pub pace: Duration,
    /// The tenant's rolling budget, kept by the answers: a caller that owns
    /// it (the organization hub) meets no 429 ([`Pacer`]). None: the pace
    /// alone.
    pub budget: Option<Budget>,
}

impl Default for Timings {
    fn default() -> Self {
        Self {
            request_timeout: Duration::from_secs(10),
            retry_first: Duration::from_secs(2),
            retry_max: Duration::from_secs(10),
            test_first_poll: Duration::from_secs(15),
            test_max_poll: Duration::from_secs(30),
            pace: Duration::ZERO,
            budget: None,
        }
    }
}

impl Timings {
    /// Why these timings cannot work, if they cannot.
    pub fn check(&self) -> Result<(), String> {
        if self.retry_first.is_zero()
            || self.retry_max < self.retry_first
            || self.test_first_poll.is_zero()
            || self.test_max_poll < self.test_first_poll
            || self.request_timeout.is_zero()
        {
            return Err(
                "portal timings must be > 0, with each *_MAX_* at least its first pause".into(),
            );
        }
        Ok(())
    }
}

/// Whether a request may be sent again after a 5xx or a network fault (the
/// portal may have acted on it). A 429 is always sent again: the portal did
/// nothing with it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Resend {
    /// Reads and idempotent writes.
    OnFault,
    /// A create: after a fault the caller looks first.
    Never,
}

/// An answer that is neither throttled nor a fault that may pass.
pub struct Answered {
    pub status: StatusCode,
    /// An HTML page (by its Content-Type or its first character).
    pub html: bool,
    pub text: String,
}

/// Why a request did not give an answer.
pub enum Failure {
    /// Do not retry: the error says what to fix.
    Final(Error),
    /// A fault that may pass (5xx, timeout), for a request that must not be
    /// blindly re-sent (a create): the caller decides.
    Transient(String),
}

impl Failure {
    pub fn into_error(self, operation: &'static str) -> Error {
        match self {
            Failure::Final(e) => e,
            Failure::Transient(why) => Error::PortalUnreachable {
                operation,
                message: why,
            },
        }
    }
}

impl From<Error> for Failure {
    fn from(e: Error) -> Self {
        Failure::Final(e)
    }
}

/// The HTTP client for the portal and its patience.
pub struct Transport {
    pub http: reqwest::Client,
    pub timings: Timings,
    /// When each request may start ([`Timings::pace`], [`Timings::budget`]).
    pub pacer: Pacer,
    /// Requests sent (answered or not), for the hub's accounting.
    sent: std::sync::atomic::AtomicU64,
}

impl Transport {
    pub fn new(timings: Timings) -> Result<Self, Error> {
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(5))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| Error::Config(format!("portal HTTP client: {e}")))?;
        Ok(Self {
            http,
            timings,
            pacer: Pacer::new(timings.pace, timings.budget),
            sent: std::sync::atomic::AtomicU64::new(0),
        })
    }

    /// How many requests were sent so far.
    pub fn sent(&self) -> u64 {
        self.sent.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Waits for this request's slot at the pace and within the budget
    /// (none without either).
    async fn slot(&self) {
        if !self.pacer.unbounded() {
            tokio::time::sleep_until(self.pacer.take().into()).await;
        }
    }

    /// Sends what `request` builds (for each attempt, with that attempt's
    /// timeout) until an answer that is not a 429, a 5xx or a network
    /// fault, while the deadline allows.
    pub async fn send(
        &self,
        operation: &'static str,
        resend: Resend,
        deadline: Instant,
        request: impl Fn(Duration) -> reqwest::RequestBuilder,
    ) -> Result<Answered, Failure> {
        let t = &self.timings;
        let mut backoff = Backoff::new(t.retry_first, t.retry_max);
        let mut attempts = 0u32;
        loop {
            attempts += 1;
            let left = deadline.saturating_duration_since(Instant::now());
            if left < MIN_ATTEMPT {
                return Err(Failure::Final(out_of_time(operation, attempts - 1, "")));
            }
            self.slot().await;
            self.sent.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let left = deadline.saturating_duration_since(Instant::now());
            if left < MIN_ATTEMPT {
                return Err(Failure::Final(out_of_time(operation, attempts - 1, "")));
            }
            let started = Instant::now();
            let sent = request(t.request_timeout.min(left)).send().await;
            self.pacer.answered();
            let (why, hint, throttled) = match sent {
                Err(e) if e.is_timeout() => (
                    format!("no answer within {:.1?}", started.elapsed()),
                    None,
                    false,
                ),
                Err(e) if e.is_connect() => ("the connection failed".to_string(), None, false),
                Err(e) => (
                    format!("the request failed ({})", e.without_url()),
                    None,
                    false,
                ),
                Ok(response) => {
                    let status = response.status();
                    let retry_after = response.headers().get(RETRY_AFTER).and_then(retry_after);
                    let html = response
                        .headers()
                        .get(CONTENT_TYPE)
                        .and_then(|v| v.to_str().ok())
                        .is_some_and(|v| v.contains("html"));
                    let text = match read_body(response).await {
                        Ok(t) => t,
                        Err(Body::TooLarge) => {
                            return Err(unexpected(
                                operation,
                                &format!("an answer larger than {} MiB", MAX_BODY >> 20),
                            )
                            .into());
                        }
                        Err(Body::Unreadable(e)) if status.is_server_error() || e.is_timeout() => {
                            String::new()
                        }
                        Err(Body::Unreadable(e)) => {
                            return Err(unexpected(
                                operation,
                                &format!("unreadable body ({})", e.without_url()),
                            )
                            .into());
                        }
                    };
                    let html = html || text.trim_start().starts_with('<');
                    debug!(operation, status = status.as_u16(), attempts, "answered");
                    match status {
                        StatusCode::TOO_MANY_REQUESTS => {
                            ("throttled (HTTP 429)".to_string(), retry_after, true)
                        }
                        s if s.is_server_error() => (
                            format!(
                                "HTTP {}{}",
                                s.as_u16(),
                                if html { " with an HTML error page" } else { "" }
                            ),
                            None,
                            false,
                        ),
                        status => return Ok(Answered { status, html, text }),
                    }
                }
            };
            if !throttled && resend == Resend::Never {
                return Err(Failure::Transient(why));
            }
            let pause = match hint {
                Some(wait) => with_jitter(wait),
                None if throttled => throttle_pause(
                    backoff.next_pause(),
                    deadline.saturating_duration_since(Instant::now()),
                    t.retry_first,
                ),
                None => backoff.next_pause(),
            };
            if reaches(pause.saturating_add(MIN_ATTEMPT), deadline) {
                return Err(Failure::Final(out_of_time(operation, attempts, &why)));
            }
            warn!(operation, attempts, ?pause, why = %why, "will be tried again");
            tokio::time::sleep(pause).await;
        }
    }
}

/// Why an answer's body was not read.
enum Body {
    TooLarge,
    Unreadable(reqwest::Error),
}

/// The answer's body as text, read up to [`MAX_BODY`] bytes.
async fn read_body(mut response: reqwest::Response) -> Result<String, Body> {
    if response
        .content_length()
        .is_some_and(|n| n > MAX_BODY as u64)
    {
        return Err(Body::TooLarge);
    }
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(Body::Unreadable)? {
        if body.len().saturating_add(chunk.len()) > MAX_BODY {
            return Err(Body::TooLarge);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(String::from_utf8_lossy(&body).into_owned())
}

/// `Retry-After`: seconds, or an HTTP date; at most an hour.
pub fn retry_after(value: &HeaderValue) -> Option<Duration> {
    let text = value.to_str().ok()?.trim();
    if let Ok(seconds) = text.parse::<u64>() {
        return Some(Duration::from_secs(seconds).min(MAX_RETRY_AFTER));
    }
    let at = httpdate::parse_http_date(text).ok()?;
    Some(
        at.duration_since(SystemTime::now())
            .unwrap_or(Duration::ZERO)
            .min(MAX_RETRY_AFTER),
    )
}

/// The pause after a 429 without `Retry-After`: the growing pause, but never
/// more than a tenth of the time `left`, nor less than `first`. Every
/// account's connector shares the tenant's 30 requests a minute, and a slot
/// goes to whoever asks first once it frees: near its deadline, a connector
/// asks more often, so the ones about to run out of time get the slots
/// (earliest deadline first) instead of failing while others, with minutes
/// left, connect.
pub fn throttle_pause(grown: Duration, left: Duration, first: Duration) -> Duration {
    grown.min((left / 10).max(first))
}

/// A pause the portal asked for, plus up to 10 % (at most 1 s) so that many
/// callers do not come back in step.
fn with_jitter(pause: Duration) -> Duration {
    let max = (pause / 10).min(Duration::from_secs(1)).as_millis() as u64;
    pause.saturating_add(Duration::from_millis(fastrand::u64(0..=max.max(50))))
}

/// The portal answered something the contract does not describe.
pub fn unexpected(operation: &'static str, what: &str) -> Error {
    Error::Portal {
        operation,
        message: format!(
            "unexpected answer: {what} (see docs/portal-contract.md; the routes may need PORTAL_ROUTES)"
        ),
    }
}

fn out_of_time(operation: &'static str, attempts: u32, last: &str) -> Error {
    let last = if last.is_empty() {
        String::new()
    } else {
        format!(", last: {last}")
    };
    Error::PortalUnreachable {
        operation,
        message: format!(
            "no time left in this invocation after {attempts} attempt(s){last}; the portal may be throttled or unwell: run the operation again later"
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn throttle_pauses_shorten_near_the_deadline() {
        let s = Duration::from_secs;
        // Minutes left: the grown pause.
        assert_eq!(throttle_pause(s(10), s(280), s(2)), s(10));
        // A minute left: a tenth of it.
        assert_eq!(throttle_pause(s(10), s(60), s(2)), s(6));
        // Seconds left: never less than the first pause.
        assert_eq!(throttle_pause(s(10), s(5), s(2)), s(2));
        assert_eq!(throttle_pause(s(1), s(5), s(2)), s(1));
    }

    #[test]
    fn retry_after_reads_seconds_and_dates() {
        assert_eq!(
            retry_after(&HeaderValue::from_static("7")),
            Some(Duration::from_secs(7))
        );
        let later = httpdate::fmt_http_date(SystemTime::now() + Duration::from_secs(30));
        let d = retry_after(&HeaderValue::from_str(&later).unwrap()).unwrap();
        assert!(
            d > Duration::from_secs(27) && d <= Duration::from_secs(30),
            "{d:?}"
        );
        let past = httpdate::fmt_http_date(SystemTime::now() - Duration::from_secs(30));
        assert_eq!(
            retry_after(&HeaderValue::from_str(&past).unwrap()),
            Some(Duration::ZERO)
        );
        assert_eq!(retry_after(&HeaderValue::from_static("soon")), None);
        // 2^63 seconds: waited at most an hour, and no arithmetic overflows.
        let huge = retry_after(&HeaderValue::from_static("9223372036854775808")).unwrap();
        assert_eq!(huge, MAX_RETRY_AFTER);
        assert!(reaches(Duration::MAX, Instant::now()));
        assert!(with_jitter(Duration::MAX) == Duration::MAX);
    }

    #[test]
    fn timings_are_checked() {
        assert!(Timings::default().check().is_ok());
        let bad = Timings {
            retry_max: Duration::from_millis(1),
            ..Timings::default()
        };
        assert!(bad.check().unwrap_err().contains("portal timings"));
    }
}
