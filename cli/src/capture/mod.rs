//! `cloudapps portal capture <file.har>`: what the portal itself sends
//! when a person adds an AWS instance and presses "Test API", read from a
//! HAR file, against this project's contract: the routes' paths (the
//! `PORTAL_ROUTES` value), the methods, the field names of each body and
//! answer, the states seen. Every secret in the file (authorization
//! headers, cookies, tokens, the access key's secret half...) is masked in
//! all it prints; only names, paths, statuses and states are printed.

mod classify;
mod har;

use std::collections::BTreeMap;

use serde_json::{Map, Value, json};

use cloudapps::portal::{Route, Routes};

use crate::cli::CaptureArgs;
use crate::contract::{self, Field, Finding, Found};
use crate::out::{Out, table};
use crate::outcome::{Exit, Failure, Outcome};
use classify::{Seen, classify, items};
use har::Har;

/// What the capture found.
struct Report {
    origin: Option<String>,
    seen: Vec<Seen>,
    others: usize,
    findings: Vec<Finding>,
    extra: BTreeMap<String, Vec<String>>,
    states: Vec<String>,
    routes: BTreeMap<String, String>,
    differences: Vec<String>,
}

pub fn run(args: &CaptureArgs, out: &Out) -> Outcome {
    let har = Har::read(&args.file)?;
    for s in har.secrets() {
        out.never_print(s);
    }
    let c = classify(&har);
    if c.seen.is_empty() {
        return Err(Failure::usage(format!(
            "{} holds no app connector request ({} entries, {} API requests): record while adding an AWS instance and pressing \"Test API\" (docs/portal-contract.md, \"Capturing what your portal sends\")",
            args.file.display(),
            har.entries.len(),
            c.others
        )));
    }
    let mut r = Report {
        origin: c.origin.map(|o| har.mask(&o)),
        seen: c.seen,
        others: c.others,
        findings: Vec::new(),
        extra: BTreeMap::new(),
        states: Vec::new(),
        routes: BTreeMap::new(),
        differences: Vec::new(),
    };
    for s in r.seen.clone() {
        let entry = &har.entries[s.entry];
        if s.template != s.route.default_path() {
            r.routes
                .insert(s.route.name().to_string(), s.template.clone());
            r.differences.push(format!(
                "route {}: the portal uses {}, the contract {}",
                s.route.name(),
                s.template,
                s.route.default_path()
            ));
        }
        let method = contract::method(s.route);
        if s.method != method {
            r.differences.push(format!(
                "route {}: the portal sends {}, the client {method}: a change of functions/src/portal/client.rs (methods are not configuration)",
                s.route.name(),
                har.mask(&s.method)
            ));
        }
        let name = s.route.name();
        let request = entry.request.as_ref().and_then(Value::as_object);
        let response = entry.response.as_ref();
        match s.route {
            Route::Find => {
                if let Some(body) = request {
                    r.compare(&har, "find request", body, contract::FIND_BODY, true);
                }
                if let Some(page) = response.and_then(Value::as_object) {
                    r.compare(&har, "find answer", page, contract::PAGE, false);
                }
                let listed = items(response);
                let aws = listed.iter().find(|i| {
                    let (f, _) = contract::compare("", i, contract::INSTANCE);
                    contract::value_of(i, &f, "appId")
                        .is_some_and(|a| a.to_string().trim_matches('"') == "11599")
                });
                if let Some(i) = aws.or(listed.first()) {
                    r.instance(&har, "instance (find)", i);
                }
            }
            Route::Create | Route::Update => {
                if let Some(body) = request {
                    r.compare(
                        &har,
                        &format!("{name} request"),
                        body,
                        contract::CREATE_BODY,
                        true,
                    );
                    let (f, _) = contract::compare("", body, contract::CREATE_BODY);
                    if let Some(Value::Object(credentials)) =
                        contract::value_of(body, &f, "credentials")
                    {
                        r.compare(
                            &har,
                            &format!("{name} credentials"),
                            credentials,
                            contract::CREDENTIALS,
                            true,
                        );
                    }
                }
                if let Some(i) = response.and_then(Value::as_object) {
                    r.instance(&har, &format!("instance ({name})"), i);
                }
            }
            Route::Status | Route::Disable => {
                if let Some(i) = response.and_then(Value::as_object) {
                    r.instance(&har, &format!("instance ({name})"), i);
                }
            }
            Route::Test | Route::TestResult => {
                if let Some(t) = response.and_then(Value::as_object) {
                    let f = r.compare(&har, &format!("test ({name})"), t, contract::TEST, false);
                    if let Some(Value::String(state)) = contract::value_of(t, &f, "state") {
                        r.state(&har, state, contract::TEST_STATES);
                    }
                }
            }
            Route::Activities => {
                if let Some(page) = response.and_then(Value::as_object) {
                    let f = r.compare(&har, "activities answer", page, contract::PAGE, false);
                    if let Some(first) = contract::value_of(page, &f, "data")
                        .and_then(Value::as_array)
                        .and_then(|a| a.first())
                        .and_then(Value::as_object)
                    {
                        r.compare(&har, "activity", first, contract::ACTIVITY, false);
                    }
                }
            }
        }
    }
    if let Some(checked) = (!r.routes.is_empty())
        .then(|| Routes::with_overrides(&serde_json::to_string(&r.routes).unwrap_or_default()))
        .and_then(Result::err)
    {
        r.differences.push(format!(
            "the routes seen cannot be set as they are: {checked}"
        ));
    }
    let mut said = Vec::new();
    r.differences.retain(|d| {
        let first = !said.contains(d);
        said.push(d.clone());
        first
    });
    let exit = if r.differences.is_empty() {
        Exit::Ok
    } else {
        Exit::DoesNotHold
    };
    print(&r, exit, out);
    Ok(exit)
}

impl Report {
    /// Compares a body or an answer; a request's extra fields are
    /// differences (the portal may need them), an answer's are noted.
    fn compare(
        &mut self,
        har: &Har,
        what: &str,
        o: &Map<String, Value>,
        fields: &[Field],
        request: bool,
    ) -> Vec<Finding> {
        let (findings, extra) = contract::compare(what, o, fields);
        for f in &findings {
            match (&f.found, f.need) {
                (Found::Renamed { name, .. }, _) => self.differences.push(format!(
                    "{what}: the portal names {} {}: {}",
                    f.field,
                    har.mask(name),
                    if request {
                        "the client sends the contract's name: a change of functions/src/portal/"
                            .to_string()
                    } else {
                        f.verdict()
                    }
                )),
                (Found::Missing, contract::Need::Required) => self
                    .differences
                    .push(format!("{what}: no {} (the contract needs it)", f.field)),
                _ => {}
            }
        }
        let extra: Vec<String> = extra.iter().map(|n| har.mask(n)).collect();
        if request && !extra.is_empty() {
            self.differences.push(format!(
                "{what}: the portal also sends {} (the client does not: the portal may need them)",
                extra.join(", ")
            ));
        }
        if !extra.is_empty() {
            self.extra
                .entry(what.to_string())
                .or_default()
                .extend(extra);
        }
        let mut masked = findings.clone();
        for f in &mut masked {
            if let Found::Renamed { name, .. } | Found::Alias { name, .. } = &mut f.found {
                *name = har.mask(name);
            }
        }
        self.findings.extend(masked);
        findings
    }

    fn instance(&mut self, har: &Har, what: &str, i: &Map<String, Value>) {
        let f = self.compare(har, what, i, contract::INSTANCE, false);
        if let Some(Value::String(state)) = contract::value_of(i, &f, "status") {
            self.state(har, state, contract::INSTANCE_STATES);
        }
    }

    fn state(&mut self, har: &Har, state: &str, known: &[&str]) {
        let state = har.mask(state);
        if !known.contains(&state.as_str()) {
            self.differences.push(format!(
                "the state {state:?} is not one the contract knows ({})",
                known.join(", ")
            ));
        }
        if !self.states.contains(&state) {
            self.states.push(state);
        }
    }
}

fn print(r: &Report, exit: Exit, out: &Out) {
    let unseen: Vec<&str> = Route::ALL
        .iter()
        .filter(|route| !r.seen.iter().any(|s| s.route == **route))
        .map(|route| route.name())
        .collect();
    if out.json() {
        out.document(&json!({
            "portal_url": r.origin,
            "matches_contract": exit == Exit::Ok,
            "exit": exit.code(),
            "routes": r.seen.iter().map(|s| json!({
                "route": s.route.name(), "method": s.method, "path": s.template, "status": s.status,
                "contract": {"method": contract::method(s.route), "path": s.route.default_path()},
            })).collect::<Vec<_>>(),
            "routes_not_seen": unseen,
            "other_api_requests": r.others,
            "PORTAL_ROUTES": r.routes,
            "fields": r.findings,
            "extra_fields": r.extra,
            "states": r.states,
            "differences": r.differences,
        }));
        return;
    }
    let mut text = vec![format!(
        "Capture of {} (secrets masked)",
        r.origin.as_deref().unwrap_or("an unknown portal")
    )];
    text.push(String::new());
    let rows: Vec<Vec<String>> = r
        .seen
        .iter()
        .map(|s| {
            let same =
                s.template == s.route.default_path() && s.method == contract::method(s.route);
            vec![
                s.route.name().to_string(),
                format!("{} {}", s.method, s.template),
                s.status.to_string(),
                format!("{} {}", contract::method(s.route), s.route.default_path()),
                if same { "same" } else { "DIFFERS" }.to_string(),
            ]
        })
        .collect();
    text.push(table(
        &["ROUTE", "THE PORTAL SENT", "HTTP", "THE CONTRACT", ""],
        &rows,
    ));
    if !unseen.is_empty() {
        text.push(format!(
            "Not in the capture (left as they are): {}",
            unseen.join(", ")
        ));
    }
    text.push(format!("Other API requests in the capture: {}", r.others));
    if !r.findings.is_empty() {
        text.push(String::new());
        let rows: Vec<Vec<String>> = r
            .findings
            .iter()
            .map(|f| {
                vec![
                    f.object.clone(),
                    f.field.to_string(),
                    f.need.as_str().to_string(),
                    f.shown(),
                ]
            })
            .collect();
        text.push(table(&["BODY", "FIELD", "CONTRACT", "THE PORTAL"], &rows));
    }
    for (what, names) in &r.extra {
        text.push(format!("Also in {what}: {}", names.join(", ")));
    }
    if !r.states.is_empty() {
        text.push(format!("States seen: {}", r.states.join(", ")));
    }
    text.push(String::new());
    text.push("What this project should use:".into());
    text.push(format!(
        "  PORTAL_URL={}",
        r.origin.as_deref().unwrap_or("?")
    ));
    text.push(if r.routes.is_empty() {
        "  PORTAL_ROUTES: nothing to set (the paths seen are the contract's)".to_string()
    } else {
        format!(
            "  PORTAL_ROUTES='{}'",
            serde_json::to_string(&r.routes).unwrap_or_default()
        )
    });
    if r.differences.is_empty() {
        text.push("Differences from today's contract: none".into());
    } else {
        text.push(format!(
            "Differences from today's contract ({}):",
            r.differences.len()
        ));
        text.extend(r.differences.iter().map(|d| format!("  - {d}")));
    }
    out.line(&text.join("\n"));
}
