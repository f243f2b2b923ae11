//! `cloudapps portal probe`: checks a tenant against this project's portal
//! contract without writing to it. It signs in as the client does, calls
//! `find` (the AWS instances), `status` (one instance, when there is one)
//! and the documented activities API once, compares every answer with the
//! contract field by field, and, with a credentials secret, runs the
//! client itself (`PortalClient::list`, `status`, `latest_activity`: reads
//! only). It never calls create, update, test or disable.

mod client;
mod http;
mod report;

use std::collections::BTreeMap;
use std::time::Duration;

use reqwest::Method;
use reqwest::header::HeaderValue;
use serde_json::{Map, Value, json};

use cloudapps::config::secure_url;
use cloudapps::portal::auth::Auth;
use cloudapps::portal::transport::{Timings, Transport};
use cloudapps::portal::{AWS_APP_ID, ApiSettings, Route, Routes};
use cloudapps::text::scrub;

use crate::cli::ProbeArgs;
use crate::contract::{self, Finding};
use crate::out::Out;
use crate::outcome::{Exit, Failure, Outcome};
use http::{Call, Http};

/// How far back the activities are asked for.
const ACTIVITY_DAYS: u64 = 7;

/// What the probe found.
#[derive(Default)]
pub struct Probe {
    pub url: String,
    pub sign_in: String,
    pub calls: Vec<Call>,
    pub findings: Vec<Finding>,
    /// Names the portal sent that the contract does not know, by answer.
    pub extra: BTreeMap<String, Vec<String>>,
    /// State values seen, and whether the contract knows them.
    pub states: Vec<(String, bool)>,
    pub notes: Vec<String>,
    /// What does not fit, each with what to do.
    pub problems: Vec<String>,
    /// Routes whose path the portal does not serve.
    pub routes_missing: Vec<&'static str>,
    /// The overrides tried (`--routes`).
    pub overrides: BTreeMap<String, String>,
    /// The client's own run, route by route.
    pub client: Vec<(String, Result<String, String>)>,
    pub exit: Option<Exit>,
}

impl Probe {
    fn worst(&mut self, exit: Exit) {
        let rank = |e: Exit| match e {
            Exit::Ok => 0,
            Exit::DoesNotHold => 1,
            Exit::Usage => 2,
            Exit::Unreachable => 3,
        };
        if self.exit.is_none_or(|e| rank(exit) > rank(e)) {
            self.exit = Some(exit);
        }
    }

    fn problem(&mut self, text: String) {
        self.problems.push(text);
        self.worst(Exit::DoesNotHold);
    }
}

pub async fn run(args: &ProbeArgs, region: Option<&str>, out: &Out) -> Outcome {
    let url = secure_url("--url", &args.url).map_err(|e| Failure::usage(e.to_string()))?;
    let login_url =
        secure_url("--login-url", &args.login_url).map_err(|e| Failure::usage(e.to_string()))?;
    let routes = Routes::with_overrides(args.routes.as_deref().unwrap_or_default())
        .map_err(|why| Failure::usage(format!("--routes: {why}")))?;
    let deadline = cloudapps::time::from_now(Duration::from_secs(args.timeout.max(1)));
    let mut probe = Probe {
        url: url.clone(),
        overrides: routes
            .overrides()
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        ..Probe::default()
    };

    out.progress("signing in to the portal");
    let mut secrets = None;
    let authorization = match (&args.token_env, &args.credentials_secret) {
        (Some(name), _) => {
            let token = std::env::var(name).unwrap_or_default().trim().to_string();
            if token.is_empty() {
                return Err(Failure::usage(format!(
                    "--token-env {name}: the environment variable {name} is not set"
                )));
            }
            out.never_print(&token);
            probe.sign_in = format!("API token from ${name} (Authorization: Token ***)");
            let mut value = HeaderValue::from_str(&format!("Token {token}")).map_err(|_| {
                Failure::usage(format!(
                    "${name} holds characters an HTTP header cannot carry"
                ))
            })?;
            value.set_sensitive(true);
            value
        }
        (None, Some(arn)) => {
            let sdk = crate::aws::sdk(region).await?;
            let client = aws_sdk_secretsmanager::Client::new(&sdk);
            let auth = Auth::new(client.clone(), arn, &login_url);
            let transport = Transport::new(timings()).map_err(|e| Failure::usage(e.to_string()))?;
            let value = auth
                .authorization(&transport, deadline)
                .await
                .map_err(sign_in_failure)?;
            probe.sign_in = if value.to_str().is_ok_and(|v| v.starts_with("Bearer")) {
                format!("Entra ID application from {arn} (Authorization: Bearer ***)")
            } else {
                format!("API token from {arn} (Authorization: Token ***)")
            };
            secrets = Some((client, arn.clone()));
            value
        }
        (None, None) => {
            return Err(Failure::usage(
                "give --credentials-secret ARN or --token-env NAME",
            ));
        }
    };
    let http = Http::new(&url, authorization, deadline).map_err(Failure::usage)?;

    out.progress("find: listing the AWS instances");
    let instance = find(&mut probe, &http, &routes, args.instance.as_deref()).await;
    if let Some(id) = &instance {
        out.progress("status: reading one instance");
        status(&mut probe, &http, &routes, id).await;
    }
    out.progress("activities: the documented activities API, once");
    activities(&mut probe, &http, &routes).await;

    match secrets {
        Some((client, arn)) if probe.exit.is_none_or(|e| e == Exit::DoesNotHold) => {
            out.progress("the client itself: list, status, activities");
            let settings = ApiSettings {
                login_url,
                routes: routes.clone(),
                timings: timings(),
                ..ApiSettings::new(&url, &arn)
            };
            client::run(&mut probe, settings, client, args.instance.as_deref(), deadline).await;
        }
        Some(_) => {}
        None => probe.notes.push(
            "the client itself was not run: it reads its credentials from a secret (give --credentials-secret to run it too)"
                .into(),
        ),
    }
    let exit = probe.exit.unwrap_or(Exit::Ok);
    report::print(&probe, exit, out);
    Ok(exit)
}

fn timings() -> Timings {
    Timings {
        request_timeout: Duration::from_secs(15),
        retry_first: Duration::from_secs(2),
        retry_max: Duration::from_secs(10),
        ..Timings::default()
    }
}

fn sign_in_failure(e: cloudapps::error::Error) -> Failure {
    use cloudapps::error::Error;
    match e {
        Error::PortalUnreachable { .. } => Failure::unreachable(e.to_string()),
        Error::Aws { ref message, .. }
            if message.contains("dispatch") || message.contains("timeout") =>
        {
            Failure::unreachable(e.to_string())
        }
        _ => Failure::usage(e.to_string()),
    }
}

/// The portal does not serve the route at that path.
fn route_missing(probe: &mut Probe, call: &Call) {
    let route = call.route;
    probe.routes_missing.push(route);
    let said = call
        .portal_error
        .as_deref()
        .map_or(String::new(), |e| format!(": {e}"));
    probe.problem(format!(
        "{route}: the portal does not serve {} {} (HTTP {}{}{said}): set PORTAL_ROUTES {{\"{route}\": \"<the path your portal uses>\"}} (`cloudapps portal capture` reads it from the browser), and try it with --routes",
        call.method,
        call.path,
        call.status.unwrap_or_default(),
        if call.html { ", an HTML page" } else { "" }
    ));
}

/// What a call that did not answer with JSON means, and its exit.
fn unanswered(probe: &mut Probe, call: &Call) {
    let route = call.route;
    match call.status {
        Some(401 | 403) => {
            probe.problems.push(format!(
                "{route}: the portal refused the credentials (HTTP {}): check the token or the Entra ID application, and its permissions in the portal",
                call.status.unwrap_or_default()
            ));
            probe.worst(Exit::Usage);
        }
        Some(300..=399 | 404 | 405) => route_missing(probe, call),
        Some(200..=299) if call.html => route_missing(probe, call),
        Some(200..=299) => probe.problem(format!(
            "{route}: the portal answered HTTP {} with something that is not JSON",
            call.status.unwrap_or_default()
        )),
        Some(429) | Some(500..=599) | None => {
            probe.problems.push(format!(
                "{route}: no usable answer ({}): the portal is throttled or unreachable; try again later",
                call.statuses_shown()
            ));
            probe.worst(Exit::Unreachable);
        }
        Some(s) => {
            let said = call
                .portal_error
                .as_deref()
                .map_or(String::new(), |e| format!(": {e}"));
            probe.problem(format!(
                "{route}: the portal refused the request the client sends (HTTP {s}{said}): its body differs from the contract's (docs/portal-contract.md, Routes)"
            ));
        }
    }
}

fn compare(
    probe: &mut Probe,
    what: &str,
    object: &Map<String, Value>,
    fields: &[contract::Field],
) -> Vec<Finding> {
    let (findings, extra) = contract::compare(what, object, fields);
    for f in findings.iter().filter(|f| f.breaks()) {
        probe.problem(format!(
            "{what}: {} is {}: {}",
            f.field,
            f.shown(),
            f.verdict()
        ));
    }
    if !extra.is_empty() {
        probe
            .extra
            .entry(what.to_string())
            .or_default()
            .extend(extra.into_iter().map(|n| scrub(&n)));
    }
    probe.findings.extend(findings.iter().cloned());
    findings
}

fn text_of(v: Option<&Value>) -> Option<String> {
    match v? {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// Compares an instance; notes its state. Returns its id.
fn instance(probe: &mut Probe, what: &str, object: &Map<String, Value>) -> Option<String> {
    let findings = compare(probe, what, object, contract::INSTANCE);
    if let Some(state) = text_of(contract::value_of(object, &findings, "status")) {
        let known = contract::INSTANCE_STATES.contains(&state.as_str());
        if !known {
            probe.notes.push(format!(
                "{what}: the state {:?} is not one the contract knows ({}): the client takes anything but \"connected\" as not connected",
                scrub(&state),
                contract::INSTANCE_STATES.join(", ")
            ));
        }
        let state = scrub(&state);
        if !probe.states.iter().any(|(s, _)| *s == state) {
            probe.states.push((state, known));
        }
    }
    text_of(contract::value_of(object, &findings, "_id"))
}

async fn find(
    probe: &mut Probe,
    http: &Http,
    routes: &Routes,
    name: Option<&str>,
) -> Option<String> {
    let mut filters = json!({"appId": {"eq": [AWS_APP_ID]}});
    if let Some(name) = name {
        filters["name"] = json!({"eq": [name]});
    }
    let body = json!({"filters": filters, "skip": 0, "limit": 100});
    let template = routes_template(routes, Route::Find);
    let call = http
        .call(
            "find",
            Method::POST,
            &template,
            &routes.path(Route::Find, "", ""),
            Some(&body),
        )
        .await;
    let page = call.answered().then(|| call.body.clone()).flatten();
    probe.calls.push(call.clone());
    let Some(Value::Object(page)) = page else {
        if call.answered() {
            probe.problem(
                "find: the answer is not a JSON object (a list page is {\"data\": [...]})".into(),
            );
        } else {
            unanswered(probe, &call);
        }
        return None;
    };
    let findings = compare(probe, "find", &page, contract::PAGE);
    let items: Vec<Map<String, Value>> = match contract::value_of(&page, &findings, "data") {
        Some(Value::Array(items)) => items
            .iter()
            .filter_map(|i| i.as_object().cloned())
            .collect(),
        _ => return None,
    };
    let aws = |i: &Map<String, Value>| {
        let (f, _) = contract::compare("", i, contract::INSTANCE);
        text_of(contract::value_of(i, &f, "appId")).is_some_and(|a| a == AWS_APP_ID.to_string())
    };
    let named = |i: &Map<String, Value>| {
        name.is_none_or(|n| i.get("name").and_then(Value::as_str) == Some(n))
    };
    let total = items.len();
    let chosen = items.iter().find(|i| aws(i) && named(i)).or(items.first());
    let Some(chosen) = chosen else {
        probe.notes.push(format!(
            "find answered no instance{}: the instance fields and the status route were not checked (connect one AWS instance by hand, or give --instance)",
            name.map_or(String::new(), |n| format!(" named {n:?}"))
        ));
        return None;
    };
    let aws_count = items.iter().filter(|i| aws(i)).count();
    probe.notes.push(format!(
        "find listed {total} instance(s), {aws_count} of the AWS app ({AWS_APP_ID}); compared: {:?}",
        scrub(chosen.get("name").and_then(Value::as_str).unwrap_or("(no name)"))
    ));
    instance(probe, "instance (find)", chosen)
}

async fn status(probe: &mut Probe, http: &Http, routes: &Routes, id: &str) {
    let template = routes_template(routes, Route::Status);
    let call = http
        .call(
            "status",
            Method::GET,
            &template,
            &routes.path(Route::Status, id, ""),
            None,
        )
        .await;
    probe.calls.push(call.clone());
    match &call.body {
        Some(Value::Object(object)) if call.answered() => {
            instance(probe, "instance (status)", object);
        }
        _ if call.answered() => {
            probe.problem("status: the answer is not an instance (a JSON object)".into())
        }
        _ => unanswered(probe, &call),
    }
}

async fn activities(probe: &mut Probe, http: &Http, routes: &Routes) {
    let since = cloudapps::time::now_millis().saturating_sub(ACTIVITY_DAYS * 86_400_000);
    let body = json!({
        "filters": {"service": {"eq": [AWS_APP_ID]}, "date": {"gte": since}},
        "sortField": "date",
        "sortDirection": "desc",
        "limit": 1,
    });
    let template = routes_template(routes, Route::Activities);
    let call = http
        .call(
            "activities",
            Method::POST,
            &template,
            &routes.path(Route::Activities, "", ""),
            Some(&body),
        )
        .await;
    probe.calls.push(call.clone());
    let Some(Value::Object(page)) = call.body.clone().filter(|_| call.answered()) else {
        if call.answered() {
            probe.problem("activities: the answer is not a JSON object".into());
        } else {
            unanswered(probe, &call);
        }
        return;
    };
    let findings = compare(probe, "activities", &page, contract::PAGE);
    if let Some(Value::Array(items)) = contract::value_of(&page, &findings, "data") {
        match items.first().and_then(Value::as_object) {
            Some(first) => {
                compare(probe, "activity", first, contract::ACTIVITY);
            }
            None => probe.notes.push(format!(
                "no AWS activity in the last {ACTIVITY_DAYS} days: the activity fields were not checked"
            )),
        }
    }
}

fn routes_template(routes: &Routes, route: Route) -> String {
    routes
        .path(route, "{id}", "{testId}")
        .replace("%7Bid%7D", "{id}")
        .replace("%7BtestId%7D", "{testId}")
}
