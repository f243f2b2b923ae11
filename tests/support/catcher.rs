//! Stands in for the presigned S3 URL that CloudFormation gives as the
//! ResponseURL, and serves small HTTP handlers for the tests.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use serde_json::Value;

/// Every request the ResponseURL catcher received.
#[derive(Clone, Debug)]
pub struct Caught {
    pub method: String,
    pub path: String,
    pub headers: BTreeMap<String, String>,
    pub body: String,
}

impl Caught {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).expect("the response body is JSON")
    }
}

/// Stands in for the presigned S3 URL CloudFormation gives: records every
/// request; answers `fail_first` of them with HTTP 500, the rest with 200.
#[derive(Clone)]
pub struct Catcher {
    pub base: String,
    caught: Arc<Mutex<Vec<Caught>>>,
    fail_first: Arc<Mutex<usize>>,
}

impl Catcher {
    pub async fn start() -> Catcher {
        let caught = Arc::new(Mutex::new(Vec::new()));
        let fail_first = Arc::new(Mutex::new(0));
        let (c, f) = (caught.clone(), fail_first.clone());
        let base = serve(move |req: Request<Incoming>| {
            let (c, f) = (c.clone(), f.clone());
            async move {
                let method = req.method().to_string();
                let path = req.uri().to_string();
                let headers = req
                    .headers()
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or("").to_string()))
                    .collect();
                let body = req.into_body().collect().await.unwrap().to_bytes();
                c.lock().unwrap().push(Caught {
                    method,
                    path,
                    headers,
                    body: String::from_utf8_lossy(&body).into_owned(),
                });
                let status = {
                    let mut left = f.lock().unwrap();
                    if *left > 0 {
                        *left -= 1;
                        500
                    } else {
                        200
                    }
                };
                Response::builder()
                    .status(status)
                    .body(Full::new(Bytes::new()))
                    .unwrap()
            }
        })
        .await;
        Catcher {
            base,
            caught,
            fail_first,
        }
    }

    pub fn fail_first(&self, n: usize) {
        *self.fail_first.lock().unwrap() = n;
    }

    /// A URL shaped like CloudFormation's: a path per request and a
    /// signature that must never be logged.
    pub fn url_for(&self, request_id: &str) -> String {
        format!(
            "{}/cloudformation-responses/{request_id}?X-Amz-Signature=sig{:016x}{:016x}",
            self.base,
            fastrand::u64(..),
            fastrand::u64(..)
        )
    }

    pub fn all(&self) -> Vec<Caught> {
        self.caught.lock().unwrap().clone()
    }

    /// The requests made to `url`.
    pub fn for_url(&self, url: &str) -> Vec<Caught> {
        let path = url.strip_prefix(&self.base).unwrap();
        self.all().into_iter().filter(|c| c.path == path).collect()
    }
}

/// Serves `handler` over HTTP/1 on 127.0.0.1 and a free port; returns the base URL.
pub async fn serve<F, Fut>(handler: F) -> String
where
    F: Fn(Request<Incoming>) -> Fut + Clone + Send + Sync + 'static,
    Fut: std::future::Future<Output = Response<Full<Bytes>>> + Send + 'static,
{
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            let handler = handler.clone();
            tokio::spawn(async move {
                let service = service_fn(move |req| {
                    let fut = handler(req);
                    async move { Ok::<_, std::convert::Infallible>(fut.await) }
                });
                let _ = http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    format!("http://{addr}")
}
