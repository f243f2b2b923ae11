//! Which request of a capture is which route of the contract. The ids the
//! portal gave (an instance's, a test's) are found in the answers first;
//! each path is then made a template (`{id}`, `{testId}`) and each request
//! is told apart by its method, its path, its body and its answer:
//! a body with credentials is a `create` (no id) or an `update`; an answer
//! with a test id is a `test`; a GET of a `{testId}` path a `test_result`;
//! an answer that lists instances a `find`; and so on.

use serde_json::{Map, Value};

use cloudapps::portal::Route;

use super::har::{Entry, Har};
use crate::contract::{self, Found};

/// A route as the capture shows it.
#[derive(Clone, Debug)]
pub struct Seen {
    pub route: Route,
    pub method: String,
    /// The path, as a template (masked).
    pub template: String,
    pub status: u16,
    /// Its entry in the HAR.
    pub entry: usize,
}

pub struct Classified {
    /// The tenant's URL (the API requests' origin).
    pub origin: Option<String>,
    /// The first request of each route (an answered one when there is one).
    pub seen: Vec<Seen>,
    /// API requests that are none of the contract's routes.
    pub others: usize,
}

fn squash(s: &str) -> String {
    s.chars()
        .filter(char::is_ascii_alphanumeric)
        .flat_map(|c| c.to_lowercase())
        .collect()
}

fn object(v: Option<&Value>) -> Option<&Map<String, Value>> {
    v.and_then(Value::as_object)
}

fn found(findings: &[contract::Finding], field: &str) -> bool {
    findings
        .iter()
        .any(|f| f.field == field && f.found != Found::Missing)
}

/// An answer that is an instance (of any app).
pub fn is_instance(o: &Map<String, Value>) -> bool {
    let (f, _) = contract::compare("", o, contract::INSTANCE);
    found(&f, "_id")
        && found(&f, "name")
        && (found(&f, "appId") || found(&f, "accessKeyId") || found(&f, "connections"))
}

/// The instances a list answer holds.
pub fn items(v: Option<&Value>) -> Vec<&Map<String, Value>> {
    let Some(page) = object(v) else {
        return Vec::new();
    };
    let (f, _) = contract::compare("", page, contract::PAGE);
    match contract::value_of(page, &f, "data") {
        Some(Value::Array(items)) => items
            .iter()
            .filter_map(Value::as_object)
            .filter(|i| is_instance(i))
            .collect(),
        _ => Vec::new(),
    }
}

fn text(v: Option<&Value>) -> Option<String> {
    match v? {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

fn id_of(o: &Map<String, Value>, fields: &[contract::Field], field: &str) -> Option<String> {
    let (f, _) = contract::compare("", o, fields);
    text(contract::value_of(o, &f, field))
}

/// A test's id, when the answer is a test.
fn test_id(o: &Map<String, Value>) -> Option<String> {
    let (f, _) = contract::compare("", o, contract::TEST);
    let state = text(contract::value_of(o, &f, "state"))?;
    contract::TEST_STATES
        .contains(&state.to_ascii_lowercase().as_str())
        .then(|| text(contract::value_of(o, &f, "testId")))
        .flatten()
}

/// A body carrying AWS credentials (a create or an update).
pub fn has_credentials(v: Option<&Value>) -> bool {
    fn walk(v: &Value) -> bool {
        match v {
            Value::Object(m) => m.iter().any(|(k, v)| {
                let k = squash(k);
                k.contains("secretaccesskey")
                    || k.contains("secretkey")
                    || k == "credentials"
                    || walk(v)
            }),
            Value::Array(items) => items.iter().any(walk),
            _ => false,
        }
    }
    v.is_some_and(walk)
}

/// A segment that may be an id or a secret: long and key-like.
fn key_like(segment: &str) -> bool {
    segment.len() >= 24
        && segment
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '=' | '_' | '-' | '.'))
}

pub fn classify(har: &Har) -> Classified {
    let api: Vec<(usize, &Entry)> = har
        .entries
        .iter()
        .enumerate()
        .filter(|(_, e)| e.path.to_ascii_lowercase().contains("/api/"))
        .filter(|(_, e)| !e.origin.contains("login.microsoftonline"))
        .collect();
    let (mut instances, mut tests) = (Vec::new(), Vec::new());
    for (_, e) in &api {
        if let Some(o) = object(e.response.as_ref()) {
            if is_instance(o) {
                instances.extend(id_of(o, contract::INSTANCE, "_id"));
            }
            tests.extend(test_id(o));
        }
        for i in items(e.response.as_ref()) {
            instances.extend(id_of(i, contract::INSTANCE, "_id"));
        }
    }
    let template = |path: &str| -> String {
        path.split('/')
            .map(|s| {
                if !s.is_empty() && instances.iter().any(|i| i == s) {
                    "{id}".to_string()
                } else if !s.is_empty() && tests.iter().any(|t| t == s) {
                    "{testId}".to_string()
                } else {
                    let s = har.mask_known(s);
                    if key_like(&s) { "***".to_string() } else { s }
                }
            })
            .collect::<Vec<_>>()
            .join("/")
    };
    let mut seen: Vec<Seen> = Vec::new();
    let mut others = 0;
    for (index, e) in api {
        let path = template(&e.path);
        let lower = path.to_ascii_lowercase();
        let (has_id, has_test) = (path.contains("{id}"), path.contains("{testId}"));
        let answer = object(e.response.as_ref());
        let credentials = has_credentials(e.request.as_ref());
        let route = if lower.contains("activities") {
            Some(Route::Activities)
        } else if has_test {
            Some(Route::TestResult)
        } else if has_id && credentials {
            Some(Route::Update)
        } else if has_id
            && (lower.contains("disable")
                || e.request
                    .as_ref()
                    .is_some_and(|b| b.get("enabled") == Some(&Value::Bool(false))))
        {
            Some(Route::Disable)
        } else if has_id
            && e.method != "GET"
            && (lower.contains("test") || answer.is_some_and(|o| test_id(o).is_some()))
        {
            Some(Route::Test)
        } else if has_id && answer.is_some_and(is_instance) {
            Some(Route::Status)
        } else if !has_id && credentials {
            Some(Route::Create)
        } else if !has_id
            && (!items(e.response.as_ref()).is_empty()
                || (lower.contains("connector")
                    && e.request
                        .as_ref()
                        .is_some_and(|b| b.get("filters").is_some())))
        {
            Some(Route::Find)
        } else {
            None
        };
        let Some(route) = route else {
            others += 1;
            continue;
        };
        let candidate = Seen {
            route,
            method: e.method.clone(),
            template: path,
            status: e.status,
            entry: index,
        };
        let ok = |s: u16| (200..300).contains(&s);
        match seen.iter_mut().find(|s| s.route == route) {
            Some(s) if !ok(s.status) && ok(candidate.status) => *s = candidate,
            Some(_) => {}
            None => seen.push(candidate),
        }
    }
    seen.sort_by_key(|s| s.route);
    let origin = seen.first().map(|s| har.entries[s.entry].origin.clone());
    Classified {
        origin,
        seen,
        others,
    }
}
