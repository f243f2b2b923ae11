//! The portal client: every call to Defender for Cloud Apps, as written in
//! docs/portal-contract.md. One seam: find, read the status, disable, the
//! documented activities; connect ([`super::connect`]) and the portal's
//! test ([`super::verification`]) are its other rooms. How requests are
//! sent is [`super::transport`]; how they are signed, [`super::auth`]; what
//! the answers hold, [`super::wire`].

use std::time::Instant;

use reqwest::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tracing::warn;

use super::auth::Auth;
use super::pace::Answers;
use super::routes::{Route, Routes};
use super::transport::{Failure, Resend, Timings, Transport, unexpected};
use super::wire::{self, ErrorBody, Page};
use crate::error::Error;
use crate::text::scrub;

/// The AWS app in Defender for Cloud Apps.
pub const AWS_APP_ID: u32 = 11599;
/// Instances asked for per page of `find`.
pub const PAGE: usize = 100;
/// Pages read at most (10,000 instances).
const MAX_PAGES: usize = 100;

/// Where the portal is and how to reach it (`PORTAL_*`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApiSettings {
    /// The tenant's API URL.
    pub url: String,
    /// The secret with the token or the Entra app.
    pub credentials_secret: String,
    /// Entra ID's login endpoint (tests serve their own).
    pub login_url: String,
    pub routes: Routes,
    pub timings: Timings,
}

impl ApiSettings {
    /// The defaults for the tenant at `url`.
    pub fn new(url: &str, credentials_secret: &str) -> Self {
        Self {
            url: url.trim_end_matches('/').to_string(),
            credentials_secret: credentials_secret.to_string(),
            login_url: "https://login.microsoftonline.com".into(),
            routes: Routes::default(),
            timings: Timings::default(),
        }
    }
}

/// An AWS instance as the portal shows it (never with a secret).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RemoteInstance {
    pub id: String,
    pub name: String,
    /// The app it is an instance of (11599 for AWS), when the portal says.
    pub app_id: Option<u64>,
    pub connections: Vec<String>,
    pub access_key_id: Option<String>,
    pub enabled: bool,
    /// The connector's state (`status`, or `state` as the real portal names it).
    pub status: String,
    pub status_detail: String,
}

impl RemoteInstance {
    fn from_wire(operation: &'static str, w: wire::Instance) -> Result<Self, Error> {
        let id = w.id.clone().filter(|id| !id.is_empty());
        let id = id.ok_or_else(|| unexpected(operation, "an instance without _id"))?;
        Ok(Self {
            status: w.state().unwrap_or_default().to_string(),
            id,
            name: w.name.unwrap_or_default(),
            app_id: w.app_id,
            connections: w.connections,
            access_key_id: w.access_key_id,
            enabled: w.enabled.unwrap_or(true),
            status_detail: scrub(w.status_detail.as_deref().unwrap_or_default()),
        })
    }
}

/// The newest activity of the AWS app the portal holds (never its raw data).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Activity {
    /// Milliseconds since the Unix epoch.
    pub timestamp: u64,
    pub description: String,
}

pub struct PortalClient {
    url: String,
    routes: Routes,
    transport: Transport,
    auth: Auth,
}

impl std::fmt::Debug for PortalClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PortalClient")
            .field("url", &self.url)
            .finish_non_exhaustive()
    }
}

impl PortalClient {
    pub fn new(
        settings: ApiSettings,
        secrets: aws_sdk_secretsmanager::Client,
    ) -> Result<Self, Error> {
        Ok(Self {
            auth: Auth::new(secrets, &settings.credentials_secret, &settings.login_url),
            transport: Transport::new(settings.timings)?,
            url: settings.url,
            routes: settings.routes,
        })
    }

    /// How many requests this client sent so far (retries included).
    pub fn requests_sent(&self) -> u64 {
        self.transport.sent()
    }

    /// When the `n`-th request from now (1: the next) could start at the
    /// earliest, by the pace and the tenant's budget.
    pub fn start_of(&self, n: usize) -> Instant {
        self.transport.pacer.start_of(n)
    }

    /// The answers still inside the tenant's budget window, for the next
    /// process to keep the budget.
    pub fn recent_answers(&self) -> Answers {
        self.transport.pacer.recent()
    }

    /// Takes in the answers another process recorded.
    pub fn seed_answers(&self, answers: &Answers) {
        self.transport.pacer.seed(answers);
    }

    pub(super) fn timings(&self) -> &Timings {
        &self.transport.timings
    }

    // ---- the operations of the contract ----

    /// The AWS instance named exactly `name`, if any. The portal's filter
    /// is not trusted: what it answers is checked (see [`Self::list`]).
    pub async fn find(
        &self,
        name: &str,
        deadline: Instant,
    ) -> Result<Option<RemoteInstance>, Error> {
        let mut found = self.list(Some(&[name]), deadline).await?;
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

    /// Every AWS instance of the tenant (named exactly one of `names`,
    /// when given), page after page. Only what is proven is kept: appId
    /// 11599 and, with names, one of them exactly; anything else the portal
    /// answers (another app, another name: its filter may be ignored) is
    /// passed over.
    pub async fn list(
        &self,
        names: Option<&[&str]>,
        deadline: Instant,
    ) -> Result<Vec<RemoteInstance>, Error> {
        let mut filters = json!({"appId": {"eq": [AWS_APP_ID]}});
        if let Some(names) = names {
            filters["name"] = json!({ "eq": names });
        }
        let (mut kept, mut passed_over) = (Vec::new(), 0usize);
        for page in 0..MAX_PAGES {
            let body = json!({"filters": filters, "skip": page * PAGE, "limit": PAGE});
            let (_, text) = self
                .portal(Route::Find, Method::POST, ("", ""), Some(body), deadline)
                .await?;
            let answer: Page<wire::Instance> =
                wire::parse(&text).ok_or_else(|| unexpected("find", "not a list page"))?;
            let data = answer
                .data
                .ok_or_else(|| unexpected("find", "no data list"))?;
            // Without hasNext (the observed shape), a full page may have more.
            let more = answer.has_next.unwrap_or(data.len() >= PAGE);
            for w in data {
                let instance = RemoteInstance::from_wire("find", w)?;
                let ours = instance.app_id == Some(u64::from(AWS_APP_ID))
                    && names.is_none_or(|n| n.contains(&instance.name.as_str()));
                if ours {
                    kept.push(instance);
                } else {
                    passed_over += 1;
                }
            }
            if !more {
                if passed_over > 0 {
                    warn!(
                        passed_over,
                        names = ?names,
                        "the portal answered instances its filter excludes: passed over"
                    );
                }
                return Ok(kept);
            }
        }
        Err(unexpected(
            "find",
            &format!("more than {} pages of instances", MAX_PAGES),
        ))
    }

    /// The instance `id` as the portal shows it now (`None` when gone).
    pub async fn status(
        &self,
        id: &str,
        deadline: Instant,
    ) -> Result<Option<RemoteInstance>, Error> {
        let (status, text) = self
            .portal(Route::Status, Method::GET, (id, ""), None, deadline)
            .await?;
        instance_unless_gone("status", status, &text)
    }

    /// Disables the instance `id` (it stops using its key). Idempotent.
    pub async fn disable(
        &self,
        id: &str,
        deadline: Instant,
    ) -> Result<Option<RemoteInstance>, Error> {
        let (status, text) = self
            .portal(
                Route::Disable,
                Method::POST,
                (id, ""),
                Some(json!({})),
                deadline,
            )
            .await?;
        instance_unless_gone("disable", status, &text)
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
        let (status, text) = self
            .portal(
                Route::Activities,
                Method::POST,
                ("", ""),
                Some(body),
                deadline,
            )
            .await?;
        if status == StatusCode::NOT_FOUND {
            return Err(unexpected("activities", "HTTP 404"));
        }
        let page: Page<wire::Activity> =
            wire::parse(&text).ok_or_else(|| unexpected("activities", "not a list page"))?;
        let data = page
            .data
            .ok_or_else(|| unexpected("activities", "no data list"))?;
        Ok(data.into_iter().next().map(|a| Activity {
            timestamp: a.timestamp.unwrap_or_default(),
            description: scrub(a.description.as_deref().unwrap_or_default()),
        }))
    }

    // ---- plumbing ----

    pub(super) fn route(&self, route: Route, id: &str, test_id: &str) -> String {
        format!("{}{}", self.url, self.routes.path(route, id, test_id))
    }

    /// A portal route, retried as the contract says; 404 and 409 come back
    /// to the caller.
    pub(super) async fn portal(
        &self,
        route: Route,
        method: Method,
        (id, test_id): (&str, &str),
        body: Option<Value>,
        deadline: Instant,
    ) -> Result<(StatusCode, String), Error> {
        let url = self.route(route, id, test_id);
        self.call(route.name(), method, &url, body, Resend::OnFault, deadline)
            .await
            .map_err(|f| f.into_error(route.name()))
    }

    /// One portal request, as the contract says: the answer's status and
    /// JSON text; 401/403 and HTML pages are final errors.
    pub(super) async fn call(
        &self,
        operation: &'static str,
        method: Method,
        url: &str,
        body: Option<Value>,
        resend: Resend,
        deadline: Instant,
    ) -> Result<(StatusCode, String), Failure> {
        let authorization = self.auth.authorization(&self.transport, deadline).await?;
        let answer = self
            .transport
            .send(operation, resend, deadline, |timeout| {
                let request = self
                    .transport
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
                    self.url
                ),
            }
            .into()),
            StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => {
                self.auth.forget_token();
                Err(credentials_rejected(operation, status, &self.auth.credentials_secret).into())
            }
            s if s.is_success() || s == StatusCode::NOT_FOUND || s == StatusCode::CONFLICT => {
                if !text.trim().is_empty() && serde_json::from_str::<Value>(&text).is_err() {
                    return Err(unexpected(operation, "the body is not JSON").into());
                }
                Ok((s, text))
            }
            s => Err(rejected(operation, s, &text).into()),
        }
    }
}

/// The instance an answer holds.
pub(super) fn instance_in(operation: &'static str, text: &str) -> Result<RemoteInstance, Error> {
    let w: wire::Instance =
        wire::parse(text).ok_or_else(|| unexpected(operation, "not an instance"))?;
    RemoteInstance::from_wire(operation, w)
}

/// The instance in the answer, or `None` when the portal answered 404.
fn instance_unless_gone(
    operation: &'static str,
    status: StatusCode,
    text: &str,
) -> Result<Option<RemoteInstance>, Error> {
    if status == StatusCode::NOT_FOUND {
        return Ok(None);
    }
    instance_in(operation, text).map(Some)
}

pub(super) fn rejected(operation: &'static str, status: StatusCode, text: &str) -> Error {
    let said = wire::parse::<ErrorBody>(text)
        .and_then(|b| b.error)
        .map_or(String::new(), |e| format!(": {}", scrub(&e)));
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
