//! HAR files as a browser's developer tools save them: a recorder that
//! sends requests as the portal's own page would (its cookie, its CSRF
//! header, the API token) and keeps each request and answer whole, secrets
//! included, as a HAR 1.2 entry.

use std::path::PathBuf;

use serde_json::{Value, json};

/// One entry, as HAR 1.2 writes it.
#[allow(clippy::too_many_arguments)]
pub fn entry(
    method: &str,
    url: &str,
    headers: &[(&str, &str)],
    body: Option<&str>,
    status: u16,
    response_headers: &[(&str, &str)],
    response: &str,
) -> Value {
    let pairs = |h: &[(&str, &str)]| -> Vec<Value> {
        h.iter()
            .map(|(n, v)| json!({"name": n, "value": v}))
            .collect()
    };
    let query: Vec<Value> = reqwest::Url::parse(url)
        .map(|u| {
            u.query_pairs()
                .map(|(n, v)| json!({"name": n, "value": v}))
                .collect()
        })
        .unwrap_or_default();
    let cookies: Vec<Value> = headers
        .iter()
        .filter(|(n, _)| n.eq_ignore_ascii_case("cookie"))
        .flat_map(|(_, v)| v.split("; "))
        .filter_map(|c| c.split_once('='))
        .map(|(n, v)| json!({"name": n, "value": v}))
        .collect();
    let mut request = json!({
        "method": method, "url": url, "httpVersion": "HTTP/2",
        "headers": pairs(headers), "queryString": query, "cookies": cookies,
        "headersSize": -1, "bodySize": body.map_or(0, str::len),
    });
    if let Some(body) = body {
        let mime = if body.trim_start().starts_with('{') {
            "application/json"
        } else {
            "application/x-www-form-urlencoded"
        };
        request["postData"] = json!({"mimeType": mime, "text": body});
    }
    json!({
        "startedDateTime": "2026-11-23T10:00:00.000Z",
        "time": 120,
        "request": request,
        "response": {
            "status": status, "statusText": "", "httpVersion": "HTTP/2",
            "headers": pairs(response_headers), "cookies": [],
            "content": {"size": response.len(), "mimeType": "application/json", "text": response},
            "redirectURL": "", "headersSize": -1, "bodySize": response.len(),
        },
        "cache": {}, "timings": {"send": 1, "wait": 100, "receive": 19},
    })
}

/// A HAR document of `entries`.
pub fn document(entries: Vec<Value>) -> Value {
    json!({"log": {"version": "1.2", "creator": {"name": "Firefox", "version": "146.0"},
        "pages": [], "entries": entries}})
}

/// Writes `doc` to a new temporary file; its path.
pub fn save(doc: &Value) -> PathBuf {
    let path =
        std::env::temp_dir().join(format!("cloudapps-capture-{:016x}.har", fastrand::u64(..)));
    std::fs::write(&path, serde_json::to_string_pretty(doc).unwrap()).unwrap();
    path
}

/// Sends requests to a portal as its page does, and records them.
pub struct Recorder {
    http: reqwest::Client,
    base: String,
    headers: Vec<(String, String)>,
    pub entries: Vec<Value>,
}

impl Recorder {
    /// For the portal at `base`, signing with `authorization`, and sending
    /// the page's cookie and CSRF header.
    pub fn new(base: &str, authorization: &str, cookie: &str, csrf: &str) -> Recorder {
        Recorder {
            http: reqwest::Client::new(),
            base: base.trim_end_matches('/').to_string(),
            headers: vec![
                ("Authorization".into(), authorization.into()),
                ("Cookie".into(), cookie.into()),
                ("X-CSRFToken".into(), csrf.into()),
                ("Accept".into(), "application/json".into()),
            ],
            entries: Vec::new(),
        }
    }

    /// Sends `method path` with `body`; records it; the answer's JSON.
    pub async fn send(&mut self, method: &str, path: &str, body: Option<Value>) -> Value {
        let url = format!("{}{path}", self.base);
        let mut request = self.http.request(method.parse().unwrap(), &url);
        for (n, v) in &self.headers {
            request = request.header(n, v);
        }
        let text = body.as_ref().map(Value::to_string);
        if let Some(text) = &text {
            request = request
                .header("Content-Type", "application/json")
                .body(text.clone());
        }
        let answer = request.send().await.unwrap();
        let status = answer.status().as_u16();
        let response = answer.text().await.unwrap();
        let headers: Vec<(&str, &str)> = self
            .headers
            .iter()
            .map(|(n, v)| (n.as_str(), v.as_str()))
            .collect();
        self.entries.push(entry(
            method,
            &url,
            &headers,
            text.as_deref(),
            status,
            &[
                ("content-type", "application/json"),
                (
                    "set-cookie",
                    "csrftoken=rotated0csrf0value0000001; Path=/; Secure",
                ),
            ],
            &response,
        ));
        serde_json::from_str(&response).unwrap_or(Value::Null)
    }
}
