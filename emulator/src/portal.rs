//! The portal itself: the Entra ID token endpoint, the credentials check and
//! the app connector routes with their instances and asynchronous tests.

use std::sync::Arc;
use std::time::Instant;

use percent_encoding::percent_decode_str;
use serde_json::{Value, json};

use crate::{ActivityView, Answer, Instance, Shared, TestView, aws};

/// The AWS app of Defender for Cloud Apps.
const AWS_APP_ID: u64 = 11599;
/// The scope a token for the Defender for Cloud Apps API is asked for.
const SCOPE: &str = "05a65629-4c1b-48c1-a78b-804c4abdd4af/.default";
const CONNECTIONS: [&str; 2] = ["SecurityAuditing", "SecurityConfiguration"];

/// `POST /{tenant}/oauth2/v2.0/token`: the client credentials grant.
pub(crate) fn token(shared: &Shared, tenant: &str, body: &str) -> Answer {
    let form = parse_form(body);
    let field = |name: &str| {
        form.iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };
    let aad_error = |status, error, code: u32, text: &str| {
        Answer::json(
            status,
            json!({
                "error": error,
                "error_description": format!("AADSTS{code}: {text}"),
                "error_codes": [code],
            }),
        )
    };
    if field("grant_type") != Some("client_credentials") {
        let text = "The request body must contain 'grant_type' = 'client_credentials'.";
        return aad_error(400, "invalid_request", 900144, text);
    }
    let known = shared.config.entra.as_ref().is_some_and(|app| {
        app.tenant_id == tenant
            && field("client_id") == Some(app.client_id.as_str())
            && field("client_secret") == Some(app.client_secret.as_str())
    });
    if !known {
        let text = "Invalid client secret provided.";
        return aad_error(401, "invalid_client", 7000215, text);
    }
    if field("scope") != Some(SCOPE) {
        let text = "The provided value for the input parameter 'scope' is not valid.";
        return aad_error(400, "invalid_scope", 70011, text);
    }
    let token: String = std::iter::repeat_with(fastrand::alphanumeric)
        .take(96)
        .collect();
    let lifetime = shared.config.token_lifetime;
    {
        let mut state = shared.lock();
        state
            .tokens
            .insert(token.clone(), Instant::now() + lifetime);
        state.secrets.push(token.clone());
    }
    Answer::json(
        200,
        json!({
            "token_type": "Bearer",
            "expires_in": lifetime.as_secs(),
            "ext_expires_in": lifetime.as_secs(),
            "access_token": token,
        }),
    )
}

fn parse_form(body: &str) -> Vec<(String, String)> {
    let decode = |s: &str| {
        percent_decode_str(&s.replace('+', " "))
            .decode_utf8_lossy()
            .into_owned()
    };
    body.split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (decode(k), decode(v))
        })
        .collect()
}

/// The API token, or a bearer token this emulator issued that has not expired.
pub(crate) fn authorized(shared: &Shared, headers: &[(String, String)]) -> bool {
    let Some((_, value)) = headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("authorization"))
    else {
        return false;
    };
    if let Some(token) = value.strip_prefix("Token ") {
        let expected = shared.config.api_token.as_deref();
        return !token.is_empty() && expected == Some(token);
    }
    if let Some(token) = value.strip_prefix("Bearer ") {
        let state = shared.lock();
        return state
            .tokens
            .get(token)
            .is_some_and(|expiry| Instant::now() < *expiry);
    }
    false
}

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
        "test" => start_test(shared, &id),
        "test_result" => test_result(shared, &id, &test_id.unwrap_or_default()),
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

type Outcome = Result<Answer, Answer>;

fn bad_request(message: impl Into<String>) -> Answer {
    Answer::error(400, message)
}

fn no_instance(id: &str) -> Answer {
    Answer::error(404, format!("no instance {id}"))
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

fn instance_json(i: &Instance) -> Value {
    json!({
        "_id": i.id,
        "appId": AWS_APP_ID,
        "name": i.name,
        "connections": i.connections,
        "accessKeyId": i.access_key_id,
        "enabled": i.enabled,
        "status": i.status,
        "statusDetail": i.status_detail,
    })
}

fn test_json(t: &TestView) -> Value {
    json!({
        "testId": t.test_id,
        "state": t.state,
        "reason": t.reason,
        "checks": t.checks,
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
        .filter(|_| {
            app_ids
                .as_ref()
                .is_none_or(|ids| ids.contains(&json!(AWS_APP_ID)))
        })
        .filter(|i| names.as_ref().is_none_or(|n| n.contains(&json!(i.name))))
        .collect();
    let page: Vec<Value> = found
        .iter()
        .skip(skip)
        .take(limit)
        .map(|i| instance_json(i))
        .collect();
    let has_next = skip.saturating_add(page.len()) < found.len();
    Ok(Answer::json(
        200,
        json!({ "data": page, "total": found.len(), "hasNext": has_next }),
    ))
}

/// Milliseconds since the Unix epoch, now.
fn now_millis() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
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
        .any(|i| i.name == name && i.id != except)
}

fn create(shared: &Shared, body: &str) -> Outcome {
    let s = settings(shared, body, true)?;
    let mut state = shared.lock();
    if state.instances.iter().any(|i| i.name == s.name) {
        let message = format!("an AWS instance named {} exists", s.name);
        return Err(Answer::error(409, message));
    }
    let instance = Instance {
        id: (0..24).map(|_| fastrand::digit(16)).collect(),
        name: s.name,
        connections: s.connections,
        access_key_id: s.access_key_id,
        secret_access_key: s.secret_access_key,
        enabled: true,
        status: "pending".to_string(),
        status_detail: String::new(),
    };
    let answer = Answer::json(201, instance_json(&instance));
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
    Ok(Answer::json(200, instance_json(instance)))
}

fn test_result(shared: &Shared, id: &str, test_id: &str) -> Outcome {
    let state = shared.lock();
    let test = state
        .tests
        .iter()
        .find(|t| t.test_id == test_id && t.instance_id == id)
        .ok_or_else(|| Answer::error(404, format!("no test {test_id} of instance {id}")))?;
    Ok(Answer::json(200, test_json(test)))
}

/// `test`: records a running test and runs it in the background.
fn start_test(shared: &Arc<Shared>, id: &str) -> Outcome {
    let mut state = shared.lock();
    let instance = state
        .instances
        .iter()
        .find(|i| i.id == id)
        .ok_or_else(|| no_instance(id))?;
    if !instance.enabled {
        return Err(Answer::error(409, format!("instance {id} is disabled")));
    }
    let test = TestView {
        test_id: std::iter::repeat_with(fastrand::alphanumeric)
            .take(16)
            .collect(),
        instance_id: id.to_string(),
        access_key_id: instance.access_key_id.clone(),
        state: "running".to_string(),
        reason: None,
        checks: Vec::new(),
    };
    let secret = instance.secret_access_key.clone();
    let duration = state.test_duration;
    state.tests.push(test.clone());
    drop(state);
    let answer = Answer::json(202, test_json(&test));
    tokio::spawn(run_test(shared.clone(), test, secret, duration));
    Ok(answer)
}

/// Calls AWS with the tested key, then ends the test no earlier than
/// `duration` after it started, and sets the instance's status when the
/// instance still holds that key and is enabled.
async fn run_test(
    shared: Arc<Shared>,
    test: TestView,
    secret: String,
    duration: std::time::Duration,
) {
    let started = tokio::time::Instant::now();
    let target = aws::Target {
        endpoint: shared.config.aws_endpoint.as_deref(),
        region: &shared.config.aws_region,
        access_key_id: &test.access_key_id,
        secret_access_key: &secret,
    };
    let (checks, outcome) = aws::test_account(target).await;
    tokio::time::sleep_until(started + duration).await;

    let (state_name, status, reason) = match outcome {
        Ok(()) => ("succeeded", "connected", None),
        Err(reason) => ("failed", "error", Some(reason)),
    };
    let mut state = shared.lock();
    // What the portal read with the key is what it shows as activity.
    let at = now_millis();
    let seen: Vec<ActivityView> = checks
        .iter()
        .filter(|c| c.ok)
        .map(|c| ActivityView {
            id: std::iter::repeat_with(fastrand::alphanumeric)
                .take(20)
                .collect(),
            timestamp: at,
            instance_id: test.instance_id.clone(),
            description: c.call.clone(),
        })
        .collect();
    state.activities.extend(seen);
    if let Some(t) = state.tests.iter_mut().find(|t| t.test_id == test.test_id) {
        t.state = state_name.to_string();
        t.reason = reason.clone();
        t.checks = checks;
    }
    let tested = |i: &&mut Instance| {
        i.id == test.instance_id
            && i.enabled
            && i.access_key_id == test.access_key_id
            && i.secret_access_key == secret
    };
    if let Some(instance) = state.instances.iter_mut().find(tested) {
        instance.status = status.to_string();
        instance.status_detail = reason.unwrap_or_default();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forms_decode_plus_and_percent() {
        let form = parse_form(
            "grant_type=client_credentials&client_secret=a%2Bb+c%3D&scope=x%2F.default&flag",
        );
        assert_eq!(
            form,
            [
                ("grant_type".to_string(), "client_credentials".to_string()),
                ("client_secret".to_string(), "a+b c=".to_string()),
                ("scope".to_string(), "x/.default".to_string()),
                ("flag".to_string(), String::new()),
            ]
        );
    }
}
