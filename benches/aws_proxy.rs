//! A proxy in front of moto server: it counts every AWS call that passes
//! (service, action, and the access key that signed it), and can refuse a
//! new access key for a while, as IAM does while a key propagates.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::{Request, Response};

/// One call that reached the proxy.
#[derive(Clone, Debug)]
pub struct Call {
    /// `iam`, `sts`, `secretsmanager`, `cloudtrail`, `s3`, … (from the signature).
    pub service: String,
    /// `CreateAccessKey`, `secretsmanager.DescribeSecret` → `DescribeSecret`;
    /// for S3 (REST) the method and the first query parameter or `object`.
    pub action: String,
    /// The access key id that signed it.
    pub key: String,
    /// Refused by the proxy (a blocked key), never sent on.
    pub refused: bool,
}

#[derive(Default)]
struct State {
    calls: Vec<Call>,
    /// Access key id → until when its calls are refused.
    blocked: HashMap<String, Instant>,
}

#[derive(Clone)]
pub struct Proxy {
    pub url: String,
    state: Arc<Mutex<State>>,
}

impl Proxy {
    /// Starts a proxy to `upstream` (moto's endpoint) on a free port.
    pub async fn start(upstream: &str) -> Proxy {
        let state = Arc::new(Mutex::new(State::default()));
        let client = reqwest::Client::new();
        let (s, upstream) = (state.clone(), upstream.trim_end_matches('/').to_string());
        let url = crate::support::serve(move |req: Request<Incoming>| {
            let (s, client, upstream) = (s.clone(), client.clone(), upstream.clone());
            async move { forward(req, &s, &client, &upstream).await }
        })
        .await;
        Proxy { url, state }
    }

    /// Refuses every call signed with `access_key_id` until `until`
    /// (`InvalidClientTokenId`, as STS answers for a key not yet known).
    pub fn block_until(&self, access_key_id: &str, until: Instant) {
        self.state
            .lock()
            .unwrap()
            .blocked
            .insert(access_key_id.to_string(), until);
    }

    /// The SDK configuration of `w`'s credentials, through this proxy.
    pub async fn sdk_for(&self, w: &crate::support::World) -> aws_config::SdkConfig {
        crate::support::sdk_config(
            &self.url,
            &w.credentials.0,
            &w.credentials.1,
            Some(&w.credentials.2),
        )
        .await
    }

    /// The calls since the last `take`, and forgets them.
    pub fn take(&self) -> Vec<Call> {
        std::mem::take(&mut self.state.lock().unwrap().calls)
    }
}

/// `calls` counted by `service:Action`, in name order.
pub fn tally<'a>(calls: impl IntoIterator<Item = &'a Call>) -> BTreeMap<String, usize> {
    let mut counts = BTreeMap::new();
    for c in calls {
        *counts
            .entry(format!("{}:{}", c.service, c.action))
            .or_insert(0) += 1;
    }
    counts
}

async fn forward(
    req: Request<Incoming>,
    state: &Mutex<State>,
    client: &reqwest::Client,
    upstream: &str,
) -> Response<Full<Bytes>> {
    let (parts, body) = req.into_parts();
    let body = body
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
    // Credential=AKID/20261124/us-east-1/iam/aws4_request
    let credential = header("authorization")
        .split("Credential=")
        .nth(1)
        .unwrap_or("")
        .split([',', ' '])
        .next()
        .unwrap_or("")
        .to_string();
    let mut scope = credential.split('/');
    let key = scope.next().unwrap_or("").to_string();
    let service = scope.nth(2).unwrap_or("unsigned").to_string();
    let target = header("x-amz-target");
    let query = parts.uri.query().unwrap_or("");
    let form = String::from_utf8_lossy(&body);
    let action = if let Some((_, op)) = target.rsplit_once('.') {
        op.to_string()
    } else if let Some(a) = form
        .split('&')
        .chain(query.split('&'))
        .find_map(|p| p.strip_prefix("Action="))
    {
        a.to_string()
    } else {
        // S3's REST calls: the method, and the sub-resource if any.
        let sub = query.split('&').find(|p| !p.is_empty()).unwrap_or("");
        let sub = match sub.split_once('=') {
            Some(("x-id", operation)) => operation,
            Some((name, _)) => name,
            None => sub,
        };
        let what = if !sub.is_empty() {
            sub.to_string()
        } else if parts.uri.path().trim_matches('/').contains('/') {
            "object".to_string()
        } else {
            "bucket".to_string()
        };
        format!("{} {what}", parts.method)
    };
    let refused = {
        let mut s = state.lock().unwrap();
        let refused = s
            .blocked
            .get(&key)
            .is_some_and(|until| Instant::now() < *until);
        s.calls.push(Call {
            service,
            action,
            key,
            refused,
        });
        refused
    };
    if refused {
        let body = "<ErrorResponse><Error><Type>Sender</Type><Code>InvalidClientTokenId</Code>\
            <Message>The security token included in the request is invalid.</Message></Error>\
            <RequestId>proxy</RequestId></ErrorResponse>";
        return Response::builder()
            .status(403)
            .header("content-type", "text/xml")
            .body(Full::new(Bytes::from(body)))
            .unwrap();
    }
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
