//! The portal client: every call to Defender for Cloud Apps, as written in
//! docs/portal-contract.md. One seam: connect (create the AWS instance or
//! update its credentials), test, read test and status, disable.
//!
//! Built for a tenant-wide budget of 30 requests a minute: 429 waits
//! (Retry-After when sent, else growing pauses with jitter), 5xx and
//! timeouts are retried while the invocation has time, each request has its
//! own timeout, 401/403 and HTML pages fail at once with what to check.

use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime};

use reqwest::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE, HeaderValue, RETRY_AFTER};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tracing::{debug, info, warn};

use super::routes::Routes;
use crate::backoff::Backoff;
use crate::config::millis;
use crate::error::Error;
use crate::key_store::StoredKey;
use crate::sensitive::Sensitive;

/// The AWS app in Defender for Cloud Apps.
pub const AWS_APP_ID: u32 = 11599;
/// The scope of an Entra ID token for the Defender for Cloud Apps API.
pub const SCOPE: &str = "05a65629-4c1b-48c1-a78b-804c4abdd4af/.default";
/// No attempt starts with less time than this left.
const MIN_ATTEMPT: Duration = Duration::from_millis(300);

/// Where the portal is and how patient to be with it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PortalConfig {
    /// `PORTAL_URL`: the tenant's API URL.
    pub url: String,
    /// `PORTAL_CREDENTIALS_SECRET_ARN`: the secret with the token or the Entra app.
    pub credentials_secret: String,
    /// `PORTAL_LOGIN_URL`: Entra ID's login endpoint (tests serve their own).
    pub login_url: String,
    /// `PORTAL_ROUTES`: overrides of the route paths.
    pub routes: Routes,
    /// `PORTAL_REQUEST_TIMEOUT_MS`: one request's limit. Default 10 s.
    pub request_timeout: Duration,
    /// `PORTAL_RETRY_FIRST_MS`, `PORTAL_RETRY_MAX_MS`: pauses before retrying
    /// a throttled or failed request (×1.5 each time, jitter; after a 429,
    /// at most a tenth of the time left). Default 2 s, 10 s.
    pub retry_first: Duration,
    pub retry_max: Duration,
    /// `PORTAL_TEST_POLL_MS`, `PORTAL_TEST_MAX_POLL_MS`: pauses between two
    /// reads of a running test ("minutes" long; each read is one of the
    /// tenant's 30 requests a minute). Default 15 s, 30 s.
    pub test_first_poll: Duration,
    pub test_max_poll: Duration,
}

impl PortalConfig {
    pub fn new(url: &str, credentials_secret: &str) -> Self {
        Self {
            url: url.trim_end_matches('/').to_string(),
            credentials_secret: credentials_secret.to_string(),
            login_url: "https://login.microsoftonline.com".into(),
            routes: Routes::default(),
            request_timeout: Duration::from_secs(10),
            retry_first: Duration::from_secs(2),
            retry_max: Duration::from_secs(10),
            test_first_poll: Duration::from_secs(15),
            test_max_poll: Duration::from_secs(30),
        }
    }

    pub fn from_lookup(lookup: &impl Fn(&str) -> Option<String>) -> Result<Self, Error> {
        let required = |name: &str| {
            lookup(name)
                .map(|v| v.trim().to_string())
                .filter(|v| !v.is_empty())
                .ok_or_else(|| Error::Config(format!("PORTAL_MODE=api needs {name}")))
        };
        let url = required("PORTAL_URL")?;
        if !(url.starts_with("https://") || url.starts_with("http://")) {
            return Err(Error::Config(format!(
                "PORTAL_URL={url:?} is not an http(s) URL"
            )));
        }
        let d = Self::new(&url, &required("PORTAL_CREDENTIALS_SECRET_ARN")?);
        let c = Self {
            login_url: lookup("PORTAL_LOGIN_URL")
                .map(|v| v.trim().trim_end_matches('/').to_string())
                .filter(|v| !v.is_empty())
                .unwrap_or(d.login_url.clone()),
            routes: Routes::with_overrides(&lookup("PORTAL_ROUTES").unwrap_or_default())?,
            request_timeout: millis(lookup, "PORTAL_REQUEST_TIMEOUT_MS", d.request_timeout)?,
            retry_first: millis(lookup, "PORTAL_RETRY_FIRST_MS", d.retry_first)?,
            retry_max: millis(lookup, "PORTAL_RETRY_MAX_MS", d.retry_max)?,
            test_first_poll: millis(lookup, "PORTAL_TEST_POLL_MS", d.test_first_poll)?,
            test_max_poll: millis(lookup, "PORTAL_TEST_MAX_POLL_MS", d.test_max_poll)?,
            ..d
        };
        if c.retry_first.is_zero()
            || c.retry_max < c.retry_first
            || c.test_first_poll.is_zero()
            || c.test_max_poll < c.test_first_poll
            || c.request_timeout.is_zero()
        {
            return Err(Error::Config(
                "portal timings must be > 0, with each *_MAX_* at least its first pause".into(),
            ));
        }
        Ok(c)
    }
}

/// The portal credentials, as the secret holds them.
enum Credentials {
    Token(Sensitive),
    Entra {
        tenant_id: String,
        client_id: String,
        client_secret: Sensitive,
    },
}

struct CachedToken {
    header: Sensitive,
    refresh_at: Instant,
}

/// An AWS instance as the portal shows it (never with a secret).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RemoteInstance {
    pub id: String,
    pub name: String,
    pub connections: Vec<String>,
    pub access_key_id: Option<String>,
    pub enabled: bool,
    pub status: String,
    pub status_detail: String,
}

/// What `connect` did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Connected {
    Created,
    Updated,
    /// The instance already held this key, name and connections.
    Unchanged,
}

/// What the instance should be.
#[derive(Clone, Copy, Debug)]
pub struct Desired<'a> {
    pub name: &'a str,
    /// The name it had before (an Update that renames), looked up when `name` is not found.
    pub previous_name: Option<&'a str>,
    pub connections: &'a [&'a str],
    pub key: &'a StoredKey,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TestState {
    Running,
    Succeeded,
    Failed(String),
}

/// The newest activity of the AWS app the portal holds (never its raw data).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Activity {
    /// Milliseconds since the Unix epoch.
    pub timestamp: u64,
    pub description: String,
}

/// The end of `run_test`: the test's id and how far it got before the deadline.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TestOutcome {
    pub test_id: String,
    pub state: TestState,
}

/// An answer that is neither throttled nor a fault that may pass.
struct Answered {
    status: StatusCode,
    /// An HTML page (by its Content-Type or its first character).
    html: bool,
    text: String,
}

/// Why a call did not give an answer.
enum Failure {
    /// Do not retry: the error says what to fix.
    Final(Error),
    /// A fault that may pass (5xx, timeout), for a call that must not be
    /// blindly re-sent (a create): the caller decides.
    Transient(String),
}

impl Failure {
    fn into_error(self, operation: &'static str) -> Error {
        match self {
            Failure::Final(e) => e,
            Failure::Transient(why) => Error::Portal {
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

pub struct PortalClient {
    config: PortalConfig,
    http: reqwest::Client,
    secrets: aws_sdk_secretsmanager::Client,
    /// Read from the secret once per cold start (a failed read is tried again).
    credentials: tokio::sync::OnceCell<Credentials>,
    token: Mutex<Option<CachedToken>>,
}

impl std::fmt::Debug for PortalClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PortalClient")
            .field("url", &self.config.url)
            .finish_non_exhaustive()
    }
}

impl PortalClient {
    pub fn new(
        config: PortalConfig,
        secrets: aws_sdk_secretsmanager::Client,
    ) -> Result<Self, Error> {
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(5))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| Error::Config(format!("portal HTTP client: {e}")))?;
        Ok(Self {
            config,
            http,
            secrets,
            credentials: tokio::sync::OnceCell::new(),
            token: Mutex::new(None),
        })
    }

    // ---- the operations of the contract ----

    /// The AWS instance named `name`, if any.
    pub async fn find(
        &self,
        name: &str,
        deadline: Instant,
    ) -> Result<Option<RemoteInstance>, Error> {
        let body = json!({
            "filters": {"appId": {"eq": [AWS_APP_ID]}, "name": {"eq": [name]}},
            "skip": 0,
            "limit": 10,
        });
        let (_, answer) = self
            .portal("find", Method::POST, ("", ""), Some(body), deadline)
            .await?;
        let mut found: Vec<RemoteInstance> = answer["data"]
            .as_array()
            .ok_or_else(|| unexpected("find", "no data list"))?
            .iter()
            .map(|v| parse_instance("find", v))
            .collect::<Result<Vec<_>, _>>()?;
        found.retain(|i| i.name == name);
        match found.len() {
            0 | 1 => Ok(found.pop()),
            n => Err(Error::Portal {
                operation: "find",
                message: format!(
                    "{n} AWS instances are named {name:?}: remove or rename the extra ones in the portal"
                ),
            }),
        }
    }

    /// Makes the instance `desired.name` hold `desired.key` and connections:
    /// creates it, or updates it (found by its name or its previous name).
    pub async fn connect(
        &self,
        desired: Desired<'_>,
        deadline: Instant,
    ) -> Result<(RemoteInstance, Connected), Error> {
        let body = json!({
            "appId": AWS_APP_ID,
            "name": desired.name,
            "connections": desired.connections,
            "credentials": {
                "accessKeyId": desired.key.access_key_id,
                "secretAccessKey": desired.key.secret_access_key.expose(),
            },
        });
        let mut backoff = Backoff::new(self.config.retry_first, self.config.retry_max);
        loop {
            let mut existing = self.find(desired.name, deadline).await?;
            if existing.is_none() {
                if let Some(previous) = desired.previous_name.filter(|p| *p != desired.name) {
                    existing = self.find(previous, deadline).await?;
                }
            }
            if let Some(instance) = existing {
                if holds(&instance, &desired) {
                    return Ok((instance, Connected::Unchanged));
                }
                let (_, answer) = self
                    .portal(
                        "update",
                        Method::POST,
                        (&instance.id, ""),
                        Some(body.clone()),
                        deadline,
                    )
                    .await?;
                let updated = parse_instance("update", &answer)?;
                info!(instance = %updated.id, name = desired.name, access_key_id = %desired.key.access_key_id, "portal instance updated");
                return Ok((updated, Connected::Updated));
            }
            // A create is not re-sent blindly: after a fault, look again first.
            match self
                .call(
                    "create",
                    Method::POST,
                    &self.route("create", "", ""),
                    Some(body.clone()),
                    false,
                    deadline,
                )
                .await
            {
                Ok((StatusCode::CONFLICT, _)) | Err(Failure::Transient(_))
                    if Instant::now() + self.config.retry_first + MIN_ATTEMPT < deadline =>
                {
                    tokio::time::sleep(backoff.next_pause()).await;
                }
                Ok((StatusCode::CONFLICT, answer)) => {
                    return Err(rejected("create", StatusCode::CONFLICT, &answer));
                }
                Ok((_, answer)) => {
                    let created = parse_instance("create", &answer)?;
                    info!(instance = %created.id, name = desired.name, access_key_id = %desired.key.access_key_id, "portal instance created");
                    return Ok((created, Connected::Created));
                }
                Err(Failure::Transient(why)) => {
                    return Err(Error::Portal {
                        operation: "create",
                        message: format!(
                            "{why}; no time left to try again: run the operation again"
                        ),
                    });
                }
                Err(Failure::Final(e)) => return Err(e),
            }
        }
    }

    /// Starts the portal's "Test API"; returns the test's id.
    pub async fn start_test(&self, id: &str, deadline: Instant) -> Result<String, Error> {
        let (_, answer) = self
            .portal("test", Method::POST, (id, ""), Some(json!({})), deadline)
            .await?;
        answer["testId"]
            .as_str()
            .map(str::to_string)
            .ok_or_else(|| unexpected("test", "no testId"))
    }

    pub async fn test_result(
        &self,
        id: &str,
        test_id: &str,
        deadline: Instant,
    ) -> Result<TestState, Error> {
        let (_, answer) = self
            .portal("test_result", Method::GET, (id, test_id), None, deadline)
            .await?;
        match answer["state"].as_str() {
            Some("running") => Ok(TestState::Running),
            Some("succeeded") => Ok(TestState::Succeeded),
            Some("failed") => Ok(TestState::Failed(scrub(
                answer["reason"].as_str().unwrap_or("no reason given"),
            ))),
            other => Err(unexpected(
                "test_result",
                &format!("unknown state {other:?}"),
            )),
        }
    }

    /// Starts a test and polls it until it ends or the deadline is near:
    /// then the state is still `Running`, never a wait past the deadline.
    pub async fn run_test(&self, id: &str, deadline: Instant) -> Result<TestOutcome, Error> {
        let test_id = self.start_test(id, deadline).await?;
        let mut polls = Backoff::new(self.config.test_first_poll, self.config.test_max_poll);
        // Keep enough time for the last read and the answer to CloudFormation.
        let reserve = self.config.request_timeout.min(Duration::from_secs(2)) + MIN_ATTEMPT;
        loop {
            let pause = polls.next_pause();
            if Instant::now() + pause + reserve >= deadline {
                warn!(
                    instance = id,
                    test_id, "the portal test is still running at the deadline"
                );
                return Ok(TestOutcome {
                    test_id,
                    state: TestState::Running,
                });
            }
            tokio::time::sleep(pause).await;
            let state = self.test_result(id, &test_id, deadline).await?;
            if state != TestState::Running {
                info!(instance = id, test_id, state = ?state, "portal test ended");
                return Ok(TestOutcome { test_id, state });
            }
        }
    }

    /// The instance `id` as the portal shows it now (`None` when gone).
    pub async fn status(
        &self,
        id: &str,
        deadline: Instant,
    ) -> Result<Option<RemoteInstance>, Error> {
        let (status, answer) = self
            .portal("status", Method::GET, (id, ""), None, deadline)
            .await?;
        instance_unless_gone("status", status, &answer)
    }

    /// Disables the instance `id` (it stops using its key). Idempotent.
    pub async fn disable(
        &self,
        id: &str,
        deadline: Instant,
    ) -> Result<Option<RemoteInstance>, Error> {
        let (status, answer) = self
            .portal("disable", Method::POST, (id, ""), Some(json!({})), deadline)
            .await?;
        instance_unless_gone("disable", status, &answer)
    }

    /// The newest activity of the AWS app recorded at or after `since`
    /// (milliseconds since the Unix epoch): the documented activities API,
    /// filtered on the app and the date, `limit: 1`. `None`: no activity.
    pub async fn latest_activity(
        &self,
        since: u64,
        deadline: Instant,
    ) -> Result<Option<Activity>, Error> {
        let body = json!({
            "filters": {"service": {"eq": [AWS_APP_ID]}, "date": {"gte": since}},
            "sortField": "date",
            "sortDirection": "desc",
            "limit": 1,
        });
        let (status, answer) = self
            .portal("activities", Method::POST, ("", ""), Some(body), deadline)
            .await?;
        if status == StatusCode::NOT_FOUND {
            return Err(unexpected("activities", "HTTP 404"));
        }
        let data = answer["data"]
            .as_array()
            .ok_or_else(|| unexpected("activities", "no data list"))?;
        Ok(data.first().map(|a| Activity {
            timestamp: a["timestamp"].as_u64().unwrap_or_default(),
            description: scrub(a["description"].as_str().unwrap_or_default()),
        }))
    }

    // ---- plumbing ----

    fn route(&self, name: &str, id: &str, test_id: &str) -> String {
        format!(
            "{}{}",
            self.config.url,
            self.config.routes.path(name, id, test_id)
        )
    }

    /// A portal route, retried as the contract says; 404 and 409 come back
    /// to the caller.
    async fn portal(
        &self,
        route: &'static str,
        method: Method,
        (id, test_id): (&str, &str),
        body: Option<Value>,
        deadline: Instant,
    ) -> Result<(StatusCode, Value), Error> {
        let url = self.route(route, id, test_id);
        self.call(route, method, &url, body, true, deadline)
            .await
            .map_err(|f| f.into_error(route))
    }

    /// One portal request, as the contract says: the answer's status and
    /// JSON body; 401/403 and HTML pages are final errors.
    async fn call(
        &self,
        operation: &'static str,
        method: Method,
        url: &str,
        body: Option<Value>,
        resend: bool,
        deadline: Instant,
    ) -> Result<(StatusCode, Value), Failure> {
        let authorization = self.authorization(deadline).await?;
        let answer = self
            .send(operation, resend, deadline, |timeout| {
                let request = self
                    .http
                    .request(method.clone(), url)
                    .timeout(timeout)
                    .header(ACCEPT, "application/json")
                    .header(AUTHORIZATION, authorization.clone());
                match &body {
                    Some(body) => request
                        .header(CONTENT_TYPE, "application/json")
                        .body(body.to_string()),
                    None => request,
                }
            })
            .await?;
        let (status, text) = (answer.status, answer.text);
        match status {
            s if answer.html => Err(Error::Portal {
                operation,
                message: format!(
                    "the portal answered an HTML page instead of JSON (HTTP {}): check PORTAL_URL ({}) and the routes (PORTAL_ROUTES)",
                    s.as_u16(),
                    self.config.url
                ),
            }
            .into()),
            StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => {
                self.token.lock().unwrap().take();
                Err(credentials_rejected(operation, status, &self.config.credentials_secret).into())
            }
            s if s.is_success() || s == StatusCode::NOT_FOUND || s == StatusCode::CONFLICT => {
                let value = if text.trim().is_empty() {
                    Value::Null
                } else {
                    serde_json::from_str(&text)
                        .map_err(|_| unexpected(operation, "the body is not JSON"))?
                };
                Ok((s, value))
            }
            s => {
                let value = serde_json::from_str(&text).unwrap_or(Value::Null);
                Err(rejected(operation, s, &value).into())
            }
        }
    }

    /// Sends what `request` builds (for each attempt, with that attempt's
    /// timeout) until an answer that is not a 429, a 5xx or a network
    /// fault, while the deadline allows. A 429 is always tried again (the
    /// server did nothing with the request), waiting `Retry-After` when
    /// sent; 5xx and network faults only with `resend` (else they come
    /// back as `Transient`).
    async fn send(
        &self,
        operation: &'static str,
        resend: bool,
        deadline: Instant,
        request: impl Fn(Duration) -> reqwest::RequestBuilder,
    ) -> Result<Answered, Failure> {
        let mut backoff = Backoff::new(self.config.retry_first, self.config.retry_max);
        let mut attempts = 0u32;
        loop {
            attempts += 1;
            let left = deadline.saturating_duration_since(Instant::now());
            if left < MIN_ATTEMPT {
                return Err(Failure::Final(out_of_time(operation, attempts - 1, "")));
            }
            let started = Instant::now();
            let (why, hint, throttled) =
                match request(self.config.request_timeout.min(left)).send().await {
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
                        let text = match response.text().await {
                            Ok(t) => t,
                            Err(e) if status.is_server_error() || e.is_timeout() => String::new(),
                            Err(e) => {
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
            if !throttled && !resend {
                return Err(Failure::Transient(why));
            }
            let pause = match hint {
                Some(wait) => with_jitter(wait),
                None if throttled => throttle_pause(
                    backoff.next_pause(),
                    deadline.saturating_duration_since(Instant::now()),
                    self.config.retry_first,
                ),
                None => backoff.next_pause(),
            };
            if Instant::now() + pause + MIN_ATTEMPT >= deadline {
                return Err(Failure::Final(out_of_time(operation, attempts, &why)));
            }
            warn!(operation, attempts, ?pause, why = %why, "will be tried again");
            tokio::time::sleep(pause).await;
        }
    }

    /// The `Authorization` header value: the token, or a cached Entra token.
    async fn authorization(&self, deadline: Instant) -> Result<HeaderValue, Error> {
        let credentials = self
            .credentials
            .get_or_try_init(|| self.read_credentials())
            .await?;
        let text = match credentials {
            Credentials::Token(token) => format!("Token {}", token.expose()),
            Credentials::Entra {
                tenant_id,
                client_id,
                client_secret,
            } => {
                let cached = self
                    .token
                    .lock()
                    .unwrap()
                    .as_ref()
                    .filter(|t| Instant::now() < t.refresh_at)
                    .map(|t| t.header.clone());
                match cached {
                    Some(header) => header.expose().to_string(),
                    None => {
                        let fresh = self
                            .sign_in(tenant_id, client_id, client_secret, deadline)
                            .await?;
                        let header = fresh.header.expose().to_string();
                        *self.token.lock().unwrap() = Some(fresh);
                        header
                    }
                }
            }
        };
        let mut value = HeaderValue::from_str(&text).map_err(|_| Error::Portal {
            operation: "sign-in",
            message: "the portal token holds characters an HTTP header cannot carry".into(),
        })?;
        value.set_sensitive(true);
        Ok(value)
    }

    /// Entra ID client credentials: a token for the portal's API.
    async fn sign_in(
        &self,
        tenant_id: &str,
        client_id: &str,
        client_secret: &Sensitive,
        deadline: Instant,
    ) -> Result<CachedToken, Error> {
        let form = |v: &str| {
            percent_encoding::utf8_percent_encode(v, percent_encoding::NON_ALPHANUMERIC).to_string()
        };
        let body = format!(
            "grant_type=client_credentials&client_id={}&client_secret={}&scope={}",
            form(client_id),
            form(client_secret.expose()),
            form(SCOPE)
        );
        let url = format!(
            "{}/{}/oauth2/v2.0/token",
            self.config.login_url,
            form(tenant_id)
        );
        let answer = self
            .send("sign-in", true, deadline, |timeout| {
                self.http
                    .post(&url)
                    .timeout(timeout)
                    .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
                    .header(ACCEPT, "application/json")
                    .body(body.clone())
            })
            .await
            .map_err(|f| f.into_error("sign-in"))?;
        let value: Value = serde_json::from_str(&answer.text).unwrap_or(Value::Null);
        if !answer.status.is_success() {
            let code = value["error"].as_str().unwrap_or("no error code");
            let aadsts = value["error_codes"][0]
                .as_u64()
                .map_or(String::new(), |c| format!(", AADSTS{c}"));
            return Err(Error::Portal {
                operation: "sign-in",
                message: format!(
                    "portal credentials rejected by Entra ID (HTTP {}: {}{aadsts}): check TenantId, ClientId and ClientSecret in the secret {}",
                    answer.status.as_u16(),
                    scrub(code),
                    self.config.credentials_secret
                ),
            });
        }
        let token = value["access_token"]
            .as_str()
            .filter(|t| !t.is_empty())
            .ok_or_else(|| unexpected("sign-in", "no access_token in the token answer"))?;
        let lifetime = Duration::from_secs(value["expires_in"].as_u64().unwrap_or(300));
        let early = (lifetime / 2).min(Duration::from_secs(300));
        info!(expires_in = ?lifetime, "signed in to Entra ID for the portal");
        Ok(CachedToken {
            header: Sensitive::new(format!("Bearer {token}")),
            refresh_at: Instant::now() + lifetime - early,
        })
    }

    async fn read_credentials(&self) -> Result<Credentials, Error> {
        let secret = &self.config.credentials_secret;
        let out = self
            .secrets
            .get_secret_value()
            .secret_id(secret)
            .send()
            .await
            .map_err(Error::aws_code_only(
                "secretsmanager:GetSecretValue (portal credentials)",
            ))?;
        let text = Sensitive::new(out.secret_string().unwrap_or_default());
        let shape = || {
            Error::Config(format!(
                "the portal credentials secret {secret} must hold {{\"Token\": \"...\"}} or {{\"TenantId\", \"ClientId\", \"ClientSecret\"}}"
            ))
        };
        let value: Value = serde_json::from_str(text.expose()).map_err(|_| shape())?;
        let field = |name: &str| {
            value[name]
                .as_str()
                .map(str::trim)
                .filter(|v| !v.is_empty())
        };
        let credentials = match (
            field("Token"),
            field("TenantId"),
            field("ClientId"),
            field("ClientSecret"),
        ) {
            (Some(token), None, None, None) => Credentials::Token(Sensitive::new(token)),
            (None, Some(tenant), Some(client), Some(secret)) => Credentials::Entra {
                tenant_id: tenant.to_string(),
                client_id: client.to_string(),
                client_secret: Sensitive::new(secret),
            },
            _ => return Err(shape()),
        };
        info!(
            secret,
            method = match credentials {
                Credentials::Token(_) => "API token",
                Credentials::Entra { .. } => "Entra ID application",
            },
            "read the portal credentials"
        );
        Ok(credentials)
    }
}

/// The instance already is what `desired` asks, and works.
fn holds(instance: &RemoteInstance, desired: &Desired<'_>) -> bool {
    let mut have = instance.connections.clone();
    have.sort();
    let mut want: Vec<String> = desired.connections.iter().map(|c| c.to_string()).collect();
    want.sort();
    instance.name == desired.name
        && instance.access_key_id.as_deref() == Some(desired.key.access_key_id.as_str())
        && have == want
        && instance.enabled
        && instance.status == "connected"
}

/// The instance in `answer`, or `None` when the portal answered 404.
fn instance_unless_gone(
    operation: &'static str,
    status: StatusCode,
    answer: &Value,
) -> Result<Option<RemoteInstance>, Error> {
    if status == StatusCode::NOT_FOUND {
        return Ok(None);
    }
    parse_instance(operation, answer).map(Some)
}

fn parse_instance(operation: &'static str, v: &Value) -> Result<RemoteInstance, Error> {
    let text = |k: &str| v[k].as_str().unwrap_or_default().to_string();
    let id = text("_id");
    if id.is_empty() {
        return Err(unexpected(operation, "an instance without _id"));
    }
    Ok(RemoteInstance {
        id,
        name: text("name"),
        connections: v["connections"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|c| c.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default(),
        access_key_id: v["accessKeyId"].as_str().map(str::to_string),
        enabled: v["enabled"].as_bool().unwrap_or(true),
        status: text("status"),
        status_detail: scrub(&text("statusDetail")),
    })
}

/// `Retry-After`: seconds, or an HTTP date.
fn retry_after(value: &HeaderValue) -> Option<Duration> {
    let text = value.to_str().ok()?.trim();
    if let Ok(seconds) = text.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let at = httpdate::parse_http_date(text).ok()?;
    Some(
        at.duration_since(SystemTime::now())
            .unwrap_or(Duration::ZERO),
    )
}

/// The pause after a 429 without `Retry-After`: the growing pause, but never
/// more than a tenth of the time `left`, nor less than `first`. Every
/// account's connector shares the tenant's 30 requests a minute, and a slot
/// goes to whoever asks first once it frees: near its deadline, a connector
/// asks more often, so the ones about to run out of time get the slots
/// (earliest deadline first) instead of failing while others, with minutes
/// left, connect.
fn throttle_pause(grown: Duration, left: Duration, first: Duration) -> Duration {
    grown.min((left / 10).max(first))
}

/// A pause the portal asked for, plus up to 10 % (at most 1 s) so that many
/// callers do not come back in step.
fn with_jitter(pause: Duration) -> Duration {
    let max = (pause / 10).min(Duration::from_secs(1)).as_millis() as u64;
    pause + Duration::from_millis(fastrand::u64(0..=max.max(50)))
}

/// Removes what could be a secret echoed back (long runs of key-like
/// characters) and bounds the length of a text the portal wrote.
pub fn scrub(text: &str) -> String {
    let mut out = String::new();
    let mut run = String::new();
    let flush = |run: &mut String, out: &mut String| {
        if run.len() >= 24 {
            out.push_str("***");
        } else {
            out.push_str(run);
        }
        run.clear();
    };
    for c in text.chars() {
        if c.is_ascii_alphanumeric() || matches!(c, '/' | '+' | '=') {
            run.push(c);
        } else {
            flush(&mut run, &mut out);
            out.push(c);
        }
    }
    flush(&mut run, &mut out);
    crate::cfn::truncate(&out, 300)
}

fn unexpected(operation: &'static str, what: &str) -> Error {
    Error::Portal {
        operation,
        message: format!(
            "unexpected answer: {what} (see docs/portal-contract.md; the routes may need PORTAL_ROUTES)"
        ),
    }
}

fn rejected(operation: &'static str, status: StatusCode, answer: &Value) -> Error {
    let said = answer["error"]
        .as_str()
        .map_or(String::new(), |e| format!(": {}", scrub(e)));
    Error::Portal {
        operation,
        message: format!(
            "the portal refused the request (HTTP {}{said})",
            status.as_u16()
        ),
    }
}

fn credentials_rejected(operation: &'static str, status: StatusCode, secret: &str) -> Error {
    Error::Portal {
        operation,
        message: format!(
            "portal credentials rejected (HTTP {}): check the token or the Entra ID app in {secret}, and its permissions in the portal",
            status.as_u16()
        ),
    }
}

fn out_of_time(operation: &'static str, attempts: u32, last: &str) -> Error {
    let last = if last.is_empty() {
        String::new()
    } else {
        format!(", last: {last}")
    };
    Error::Portal {
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
    }

    #[test]
    fn scrub_hides_key_like_runs() {
        let echoed = "bad key wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY for AKIA1234";
        assert_eq!(scrub(echoed), "bad key *** for AKIA1234");
        assert_eq!(scrub("name already exists"), "name already exists");
    }

    #[test]
    fn config_from_lookup_needs_url_and_secret() {
        let env = |pairs: &'static [(&'static str, &'static str)]| {
            move |k: &str| {
                pairs
                    .iter()
                    .find(|(n, _)| *n == k)
                    .map(|(_, v)| v.to_string())
            }
        };
        let err =
            PortalConfig::from_lookup(&env(&[("PORTAL_URL", "https://t.portal")])).unwrap_err();
        assert!(
            err.to_string().contains("PORTAL_CREDENTIALS_SECRET_ARN"),
            "{err}"
        );
        let err = PortalConfig::from_lookup(&env(&[
            ("PORTAL_URL", "t.portal"),
            ("PORTAL_CREDENTIALS_SECRET_ARN", "s"),
        ]))
        .unwrap_err();
        assert!(err.to_string().contains("not an http(s) URL"), "{err}");
        let c = PortalConfig::from_lookup(&env(&[
            ("PORTAL_URL", "https://t.portal/"),
            ("PORTAL_CREDENTIALS_SECRET_ARN", "s"),
            ("PORTAL_LOGIN_URL", "http://127.0.0.1:9/"),
            ("PORTAL_TEST_POLL_MS", "100"),
        ]))
        .unwrap();
        assert_eq!(c.url, "https://t.portal");
        assert_eq!(c.login_url, "http://127.0.0.1:9");
        assert_eq!(c.test_first_poll, Duration::from_millis(100));
        let err = PortalConfig::from_lookup(&env(&[
            ("PORTAL_URL", "https://t.portal"),
            ("PORTAL_CREDENTIALS_SECRET_ARN", "s"),
            ("PORTAL_RETRY_MAX_MS", "1"),
        ]))
        .unwrap_err();
        assert!(err.to_string().contains("portal timings"), "{err}");
    }
}
