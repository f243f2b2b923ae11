//! The portal itself: the Entra ID token endpoint, the credentials check and
//! the app connector routes with their instances and asynchronous tests.

use std::sync::Arc;

use serde_json::{Value, json};

use crate::answer::{Answer, Outcome, bad_request, no_instance};
use crate::state::{ActivityView, Instance, Shared};
use crate::trial;

/// The AWS app of Defender for Cloud Apps.
pub(crate) const AWS_APP_ID: u64 = 11599;
const CONNECTIONS: [&str; 2] = ["SecurityAuditing", "SecurityConfiguration"];

pub(crate) fn route(
    shared: &Arc<Shared>,
    route: &str,
    id: Option<String>,
    test_id: Option<String>,
    body: &str,
) -> Answer {
    let id = id.unwrap_or_default();
    let outcome = match route {
        "find" => find(shared, body),
        "create" => create(shared, body),
        "update" => update(shared, &id, body),
        "test" => trial::start_test(shared, &id),
        "test_result" => trial::test_result(shared, &id, &test_id.unwrap_or_default()),
        "status" => change(shared, &id, |_| {}),
        "activities" => activities(shared, body),
        "disable" => change(shared, &id, |i| {
            i.enabled = false;
            i.status = "disabled".to_string();
            i.status_detail = String::new();
        }),
        _ => Err(Answer::error(404, "no such route")),
    };
    outcome.unwrap_or_else(|refused| refused)
}

/// The JSON object of a request body (an empty body is `{}`).
fn object(body: &str) -> Result<Value, Answer> {
    if body.trim().is_empty() {
        return Ok(json!({}));
    }
    match serde_json::from_str::<Value>(body) {
        Ok(v) if v.is_object() => Ok(v),
        _ => Err(bad_request("the body is not a JSON object")),
    }
}

fn instance_json(shared: &Shared, i: &Instance) -> Value {
    if shared.config.observed_shape {
        let id =
            i.id.parse::<u64>()
                .map_or_else(|_| json!(i.id), |n| json!(n));
        return json!({
            "_id": id,
            "appId": i.app_id,
            "name": i.name,
            "connections": i.connections,
            "accessKeyId": i.access_key_id,
            "enabled": i.enabled,
            "state": i.status,
            "stateDetail": i.status_detail,
        });
    }
    json!({
        "_id": i.id,
        "appId": i.app_id,
        "name": i.name,
        "connections": i.connections,
        "accessKeyId": i.access_key_id,
        "enabled": i.enabled,
        "status": i.status,
        "statusDetail": i.status_detail,
    })
}

/// `find`: `{"filters":{"appId":{"eq":[..]},"name":{"eq":[..]}},"skip","limit"}`.
fn find(shared: &Shared, body: &str) -> Outcome {
    let req = object(body)?;
    let (mut app_ids, mut names) = (None, None);
    if let Some(filters) = req.get("filters").filter(|f| !f.is_null()) {
        let filters = filters
            .as_object()
            .ok_or_else(|| bad_request("filters is not an object"))?;
        for (field, filter) in filters {
            let eq = filter
                .as_object()
                .filter(|f| f.len() == 1)
                .and_then(|f| f.get("eq"))
                .and_then(Value::as_array)
                .ok_or_else(|| bad_request(format!("filter {field}: only {{\"eq\": [..]}}")))?;
            match field.as_str() {
                "appId" => app_ids = Some(eq.clone()),
                "name" => names = Some(eq.clone()),
                _ => return Err(bad_request(format!("unsupported filter {field}"))),
            }
        }
    }
    let number = |key: &str, default: u64| match req.get(key) {
        None | Some(Value::Null) => Ok(default),
        Some(v) => v
            .as_u64()
            .ok_or_else(|| bad_request(format!("{key} is not a count"))),
    };
    let skip = usize::try_from(number("skip", 0)?).unwrap_or(usize::MAX);
    let limit = usize::try_from(number("limit", 100)?.min(100)).unwrap_or(100);

    let state = shared.lock();
    let found: Vec<&Instance> = state
        .instances
        .iter()
        .filter(|i| {
            shared.config.ignores_filters
                || app_ids
                    .as_ref()
                    .is_none_or(|ids| ids.contains(&json!(i.app_id)))
        })
        .filter(|i| {
            shared.config.ignores_filters
                || names.as_ref().is_none_or(|n| n.contains(&json!(i.name)))
        })
        .collect();
    let page: Vec<Value> = found
        .iter()
        .skip(skip)
        .take(limit)
        .map(|i| instance_json(shared, i))
        .collect();
    let has_next = skip.saturating_add(page.len()) < found.len();
    if shared.config.observed_shape {
        return Ok(Answer::json(200, json!({ "data": page })));
    }
    Ok(Answer::json(
        200,
        json!({ "data": page, "total": found.len(), "hasNext": has_next }),
    ))
}

fn activity_json(a: &ActivityView) -> Value {
    json!({
        "_id": a.id,
        "timestamp": a.timestamp,
        "appId": AWS_APP_ID,
        "appName": "Amazon Web Services",
        "instantiation": a.instance_id,
        "description": a.description,
    })
}

/// `activities`: `{"filters":{"service":{"eq":[..]},"date":{"gte":ms,"lte":ms}},
/// "sortField":"date","sortDirection":"desc","limit":N}` (what this
/// project sends; other filters are refused, not ignored).
fn activities(shared: &Shared, body: &str) -> Outcome {
    let req = object(body)?;
    let (mut services, mut gte, mut lte) = (None, None, None);
    if let Some(filters) = req.get("filters").filter(|f| !f.is_null()) {
        let filters = filters
            .as_object()
            .ok_or_else(|| bad_request("filters is not an object"))?;
        for (field, filter) in filters {
            let ops = filter
                .as_object()
                .ok_or_else(|| bad_request(format!("filter {field} is not an object")))?;
            for (op, value) in ops {
                match (field.as_str(), op.as_str()) {
                    ("service", "eq") => {
                        let ids = value
                            .as_array()
                            .ok_or_else(|| bad_request("service.eq is not a list"))?;
                        services = Some(ids.clone());
                    }
                    ("date", "gte" | "lte") => {
                        let ms = value
                            .as_u64()
                            .ok_or_else(|| bad_request(format!("date.{op} is not a timestamp")))?;
                        if op == "gte" {
                            gte = Some(ms)
                        } else {
                            lte = Some(ms)
                        }
                    }
                    _ => return Err(bad_request(format!("unsupported filter {field}.{op}"))),
                }
            }
        }
    }
    if req.get("sortField").is_some_and(|f| f != "date") {
        return Err(bad_request("sortField: only date"));
    }
    let descending = match req.get("sortDirection").and_then(Value::as_str) {
        None | Some("asc") => false,
        Some("desc") => true,
        Some(other) => return Err(bad_request(format!("sortDirection {other:?}"))),
    };
    let limit = match req.get("limit") {
        None | Some(Value::Null) => 100,
        Some(v) => v
            .as_u64()
            .ok_or_else(|| bad_request("limit is not a count"))?,
    };
    let limit = usize::try_from(limit.min(100)).unwrap_or(100);
    let state = shared.lock();
    let mut found: Vec<&ActivityView> = state
        .activities
        .iter()
        .filter(|_| {
            services
                .as_ref()
                .is_none_or(|ids| ids.contains(&json!(AWS_APP_ID)))
        })
        .filter(|a| gte.is_none_or(|t| a.timestamp >= t) && lte.is_none_or(|t| a.timestamp <= t))
        .collect();
    found.sort_by_key(|a| a.timestamp);
    if descending {
        found.reverse();
    }
    let page: Vec<Value> = found.iter().take(limit).map(|a| activity_json(a)).collect();
    let has_next = page.len() < found.len();
    Ok(Answer::json(
        200,
        json!({ "data": page, "total": found.len(), "hasNext": has_next }),
    ))
}

/// What `create` and `update` set.
struct Settings {
    name: String,
    connections: Vec<String>,
    access_key_id: String,
    secret_access_key: String,
}

/// Reads the settings of a create (`app_id_required`) or update body, and
/// notes the secret key it carries for the leak scans.
fn settings(shared: &Shared, body: &str, app_id_required: bool) -> Result<Settings, Answer> {
    let req = object(body)?;
    let text = |v: &Value| v.as_str().filter(|s| !s.is_empty()).map(str::to_string);
    let secret = text(&req["credentials"]["secretAccessKey"]);
    if let Some(secret) = &secret {
        shared.lock().secrets.push(secret.clone());
    }
    match req.get("appId") {
        None if !app_id_required => {}
        Some(id) if *id == json!(AWS_APP_ID) => {}
        _ => return Err(bad_request(format!("appId must be {AWS_APP_ID} (AWS)"))),
    }
    let name = text(&req["name"]).ok_or_else(|| bad_request("name is missing"))?;
    let connections: Vec<String> = req["connections"]
        .as_array()
        .filter(|c| !c.is_empty())
        .ok_or_else(|| bad_request("connections must list at least one connection"))?
        .iter()
        .map(|c| match c.as_str() {
            Some(c) if CONNECTIONS.contains(&c) => Ok(c.to_string()),
            _ => Err(bad_request(format!("unknown connection {c}"))),
        })
        .collect::<Result<_, _>>()?;
    let access_key_id = text(&req["credentials"]["accessKeyId"]);
    let (Some(access_key_id), Some(secret_access_key)) = (access_key_id, secret) else {
        return Err(bad_request(
            "credentials need accessKeyId and secretAccessKey",
        ));
    };
    Ok(Settings {
        name,
        connections,
        access_key_id,
        secret_access_key,
    })
}

fn name_taken(shared: &Shared, name: &str, except: &str) -> bool {
    let state = shared.lock();
    state
        .instances
        .iter()
        .any(|i| i.app_id == AWS_APP_ID && i.name == name && i.id != except)
}

fn create(shared: &Shared, body: &str) -> Outcome {
    let s = settings(shared, body, true)?;
    let mut state = shared.lock();
    if state
        .instances
        .iter()
        .any(|i| i.app_id == AWS_APP_ID && i.name == s.name)
    {
        let message = format!("an AWS instance named {} exists", s.name);
        return Err(Answer::error(409, message));
    }
    let instance = Instance {
        id: (0..24).map(|_| fastrand::digit(16)).collect(),
        app_id: AWS_APP_ID,
        name: s.name,
        connections: s.connections,
        access_key_id: s.access_key_id,
        secret_access_key: s.secret_access_key,
        enabled: true,
        status: "pending".to_string(),
        status_detail: String::new(),
    };
    let answer = Answer::json(201, instance_json(shared, &instance));
    state.instances.push(instance);
    Ok(answer)
}

fn update(shared: &Shared, id: &str, body: &str) -> Outcome {
    let s = settings(shared, body, false)?;
    if name_taken(shared, &s.name, id) {
        let message = format!("another AWS instance is named {}", s.name);
        return Err(Answer::error(409, message));
    }
    change(shared, id, |i| {
        i.name = s.name;
        i.connections = s.connections;
        i.access_key_id = s.access_key_id;
        i.secret_access_key = s.secret_access_key;
        i.enabled = true;
        i.status = "pending".to_string();
        i.status_detail = String::new();
    })
}

/// Applies `f` to instance `id` and answers it.
fn change(shared: &Shared, id: &str, f: impl FnOnce(&mut Instance)) -> Outcome {
    let mut state = shared.lock();
    let instance = state
        .instances
        .iter_mut()
        .find(|i| i.id == id)
        .ok_or_else(|| no_instance(id))?;
    f(instance);
    Ok(Answer::json(200, instance_json(shared, instance)))
}
