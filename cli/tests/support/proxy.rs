//! A proxy in front of moto server for `cloudapps`'s AWS calls: it records
//! each call (service and action), and plays one part of Secrets Manager
//! that moto plays otherwise. moto 5.2.1's RotateSecret moves AWSCURRENT to
//! the new, empty version at once, where AWS leaves that to the rotation
//! function's finishSecret: with RotateImmediately (the default, and what
//! "rotate now" is), and also when RotationLambdaARN is left out (moto then
//! forgets the secret's function; AWS uses the configured one). The proxy
//! sends RotateSecret on with the secret's function and RotateImmediately
//! false, so that moto only stages AWSPENDING (as AWS does before
//! createSecret) and the test runs the four steps itself.

use std::sync::{Arc, Mutex};

use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::{Request, Response};
use serde_json::Value;

/// One call that passed.
#[derive(Clone, Debug)]
pub struct Call {
    /// `secretsmanager`, `iam`, `logs`... (from the signature's scope).
    pub service: String,
    /// `DescribeSecret`, `ListAccessKeys`...
    pub action: String,
    /// The JSON body (JSON protocols).
    pub body: Option<Value>,
}

#[derive(Clone)]
pub struct Proxy {
    pub url: String,
    calls: Arc<Mutex<Vec<Call>>>,
    /// The rotation function configured on the secret (as AWS knows it).
    function: Arc<Mutex<String>>,
}

impl Proxy {
    pub async fn start(upstream: &str) -> Proxy {
        let calls = Arc::new(Mutex::new(Vec::new()));
        let function = Arc::new(Mutex::new(String::new()));
        let (c, f) = (calls.clone(), function.clone());
        let upstream = upstream.trim_end_matches('/').to_string();
        let client = reqwest::Client::new();
        let url = testbed::serve(move |req: Request<Incoming>| {
            let (c, f, client, upstream) = (c.clone(), f.clone(), client.clone(), upstream.clone());
            async move {
                let function = f.lock().unwrap().clone();
                forward(req, &c, &function, &client, &upstream).await
            }
        })
        .await;
        Proxy {
            url,
            calls,
            function,
        }
    }

    /// The rotation function of the secret (what RotateSecret uses).
    pub fn rotation_function(&self, arn: &str) {
        *self.function.lock().unwrap() = arn.to_string();
    }

    pub fn calls(&self) -> Vec<Call> {
        self.calls.lock().unwrap().clone()
    }

    /// `service:Action` of every call, in order.
    pub fn actions(&self) -> Vec<String> {
        self.calls()
            .iter()
            .map(|c| format!("{}:{}", c.service, c.action))
            .collect()
    }

    /// The ClientRequestToken of the RotateSecret that passed, if one did.
    pub fn rotation_token(&self) -> Option<String> {
        self.calls().iter().find_map(|c| {
            (c.action == "RotateSecret")
                .then(|| {
                    c.body.as_ref()?["ClientRequestToken"]
                        .as_str()
                        .map(str::to_string)
                })
                .flatten()
        })
    }
}

async fn forward(
    req: Request<Incoming>,
    calls: &Mutex<Vec<Call>>,
    function: &str,
    client: &reqwest::Client,
    upstream: &str,
) -> Response<Full<Bytes>> {
    let (parts, body) = req.into_parts();
    let mut body = body
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let header = |name: &str| {
        parts
            .headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string()
    };
    let service = header("authorization")
        .split("Credential=")
        .nth(1)
        .unwrap_or("")
        .split('/')
        .nth(3)
        .unwrap_or("unsigned")
        .to_string();
    let target = header("x-amz-target");
    let form = String::from_utf8_lossy(&body).into_owned();
    let action = match target.rsplit_once('.') {
        Some((_, op)) => op.to_string(),
        None => form
            .split('&')
            .chain(parts.uri.query().unwrap_or("").split('&'))
            .find_map(|p| p.strip_prefix("Action="))
            .map_or_else(
                || format!("{} {}", parts.method, parts.uri.path()),
                str::to_string,
            ),
    };
    let mut json: Option<Value> = serde_json::from_slice(&body).ok();
    if action == "RotateSecret" {
        if let Some(Value::Object(m)) = &mut json {
            m.insert("RotateImmediately".into(), Value::Bool(false));
            if !function.is_empty() {
                m.entry("RotationLambdaARN")
                    .or_insert(Value::String(function.to_string()));
            }
            body = Bytes::from(Value::Object(m.clone()).to_string());
        }
    }
    calls.lock().unwrap().push(Call {
        service,
        action,
        body: json,
    });
    let url = format!(
        "{upstream}{}",
        parts.uri.path_and_query().map_or("", |p| p.as_str())
    );
    let mut out = client.request(parts.method.clone(), url);
    for (name, value) in &parts.headers {
        if name != "host" && name != "content-length" {
            out = out.header(name, value);
        }
    }
    // moto keys the region and the signature's host on Host: keep it.
    if let Some(host) = parts.headers.get("host") {
        out = out.header("host", host);
    }
    match out.body(body).send().await {
        Ok(answer) => {
            let mut response = Response::builder().status(answer.status().as_u16());
            for (name, value) in answer.headers() {
                if name != "content-length" && name != "transfer-encoding" {
                    response = response.header(name, value);
                }
            }
            let bytes = answer.bytes().await.unwrap_or_default();
            response.body(Full::new(bytes)).unwrap()
        }
        Err(e) => Response::builder()
            .status(502)
            .body(Full::new(Bytes::from(format!("proxy: {e}"))))
            .unwrap(),
    }
}
