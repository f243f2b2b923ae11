//! The portal's "Test API": with an instance's key, the calls Defender for
//! Cloud Apps makes against the AWS account, and whether a multi-region
//! trail is logging.

use std::time::Duration;

use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_sdk_sts::config::http::HttpResponse;
use aws_sdk_sts::config::{Credentials, SharedCredentialsProvider};
use aws_sdk_sts::error::{ProvideErrorMetadata, SdkError};
use aws_smithy_http_client::tls::{Provider, rustls_provider::CryptoMode};
use serde::Serialize;

/// One AWS call of a test and how it went.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct Check {
    pub call: String,
    pub ok: bool,
    pub detail: String,
}

/// The tests' SDK configuration, loaded once when the emulator starts:
/// `region`, `endpoint` (None: AWS's own), no retries, short timeouts, and
/// one HTTP client. A client of a test made without one would make its own:
/// read the system's TLS roots and open its own connections, four times a
/// test.
pub(crate) async fn tests_config(endpoint: Option<&str>, region: &str) -> SdkConfig {
    let timeouts = TimeoutConfig::builder()
        .connect_timeout(Duration::from_secs(2))
        .operation_timeout(Duration::from_secs(10))
        .build();
    let http = aws_smithy_http_client::Builder::new()
        .tls_provider(Provider::Rustls(CryptoMode::AwsLc))
        .build_https();
    let mut loader = aws_config::defaults(BehaviorVersion::latest())
        .region(Region::new(region.to_string()))
        .retry_config(RetryConfig::disabled())
        .timeout_config(timeouts)
        .http_client(http);
    if let Some(endpoint) = endpoint {
        loader = loader.endpoint_url(endpoint);
    }
    loader.load().await
}

/// Runs every call with the key `access_key_id`, through `config` (see
/// [`tests_config`]); `Err(reason)` names the calls that failed, or says
/// that no multi-region trail is logging.
pub(crate) async fn test_account(
    config: &SdkConfig,
    access_key_id: &str,
    secret_access_key: &str,
) -> (Vec<Check>, Result<(), String>) {
    let key = Credentials::new(
        access_key_id,
        secret_access_key,
        None,
        None,
        "portal-emulator",
    );
    let sdk = config
        .to_builder()
        .credentials_provider(SharedCredentialsProvider::new(key))
        .build();
    let cloudtrail = aws_sdk_cloudtrail::Client::new(&sdk);
    let s3 = aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::config::Builder::from(&sdk)
            .force_path_style(sdk.endpoint_url().is_some())
            .build(),
    );

    let mut checks = Vec::new();
    let mut check = |call: &str, outcome: Result<String, String>| {
        let ok = outcome.is_ok();
        let detail = outcome.unwrap_or_else(|e| e);
        checks.push(Check {
            call: call.to_string(),
            ok,
            detail,
        });
    };

    let identity = aws_sdk_sts::Client::new(&sdk)
        .get_caller_identity()
        .send()
        .await;
    check(
        "sts:GetCallerIdentity",
        identity
            .map(|o| format!("account {}", o.account().unwrap_or("?")))
            .map_err(|e| failure(&e)),
    );

    let mut logging = None;
    let trails = cloudtrail
        .describe_trails()
        .include_shadow_trails(true)
        .send()
        .await;
    match trails {
        Ok(out) => {
            let multi_region: Vec<_> = out
                .trail_list()
                .iter()
                .filter(|t| t.is_multi_region_trail() == Some(true))
                .collect();
            check(
                "cloudtrail:DescribeTrails",
                Ok(format!(
                    "{} trails, {} multi-region",
                    out.trail_list().len(),
                    multi_region.len()
                )),
            );
            let mut any = false;
            for trail in multi_region {
                let name = trail.name().unwrap_or_default();
                let status = cloudtrail
                    .get_trail_status()
                    .name(trail.trail_arn().unwrap_or(name))
                    .send()
                    .await;
                let is_logging = status.as_ref().is_ok_and(|s| s.is_logging() == Some(true));
                any |= is_logging;
                let state = if is_logging { "logging" } else { "not logging" };
                check(
                    "cloudtrail:GetTrailStatus",
                    status
                        .map(|_| format!("trail {name}: {state}"))
                        .map_err(|e| format!("trail {name}: {}", failure(&e))),
                );
            }
            logging = Some(any);
        }
        Err(e) => check("cloudtrail:DescribeTrails", Err(failure(&e))),
    }

    let events = cloudtrail.lookup_events().max_results(1).send().await;
    check(
        "cloudtrail:LookupEvents",
        events.map(|_| String::new()).map_err(|e| failure(&e)),
    );
    let buckets = s3.list_buckets().send().await;
    check(
        "s3:ListAllMyBuckets",
        buckets
            .map(|o| format!("{} buckets", o.buckets().len()))
            .map_err(|e| failure(&e)),
    );
    let summary = aws_sdk_iam::Client::new(&sdk)
        .get_account_summary()
        .send()
        .await;
    check(
        "iam:GetAccountSummary",
        summary.map(|_| String::new()).map_err(|e| failure(&e)),
    );

    let mut problems: Vec<String> = checks
        .iter()
        .filter(|c| !c.ok)
        .map(|c| format!("{}: {}", c.call, c.detail))
        .collect();
    if logging == Some(false) {
        problems.push("no multi-region trail is logging".to_string());
    }
    let outcome = if problems.is_empty() {
        Ok(())
    } else {
        Err(problems.join("; "))
    };
    (checks, outcome)
}

/// A failed call as its error code and HTTP status only: never the message,
/// which may echo request details.
fn failure<E: ProvideErrorMetadata>(err: &SdkError<E, HttpResponse>) -> String {
    let status = err.raw_response().map(|r| r.status().as_u16());
    match (err, err.code(), status) {
        (SdkError::TimeoutError(_), _, _) => "timeout".to_string(),
        (SdkError::DispatchFailure(_), _, _) => "no answer (connection failed)".to_string(),
        (SdkError::ConstructionFailure(_), _, _) => "request not built".to_string(),
        (_, Some(code), Some(status)) => format!("{code} (HTTP {status})"),
        (_, Some(code), None) => code.to_string(),
        (_, None, Some(status)) => format!("HTTP {status}"),
        (_, None, None) => "unknown error".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use http_body_util::Full;
    use hyper::body::Bytes;
    use hyper::server::conn::http1;
    use hyper::service::service_fn;
    use hyper::{Request, Response};
    use hyper_util::rt::TokioIo;
    use tokio::net::TcpListener;

    use super::*;

    /// A local server that answers every request 403: its endpoint, and the
    /// connections and requests it was sent so far.
    async fn refusing_server() -> (String, Arc<AtomicUsize>, Arc<AtomicUsize>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let endpoint = format!("http://{}", listener.local_addr().unwrap());
        let (connections, requests) =
            (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
        let (c, r) = (connections.clone(), requests.clone());
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                c.fetch_add(1, Ordering::SeqCst);
                let r = r.clone();
                let service = service_fn(move |_req: Request<hyper::body::Incoming>| {
                    r.fetch_add(1, Ordering::SeqCst);
                    async {
                        let mut answer = Response::new(Full::new(Bytes::new()));
                        *answer.status_mut() = hyper::StatusCode::FORBIDDEN;
                        Ok::<_, std::convert::Infallible>(answer)
                    }
                });
                let conn = http1::Builder::new().serve_connection(TokioIo::new(stream), service);
                tokio::spawn(conn);
            }
        });
        (endpoint, connections, requests)
    }

    #[tokio::test]
    async fn the_calls_of_every_test_go_through_the_emulators_one_http_client() {
        // GIVEN an AWS that refuses every call (a 5xx would end the connection),
        // and the emulator's configuration for its tests
        let (endpoint, connections, requests) = refusing_server().await;
        let config = tests_config(Some(&endpoint), "us-east-1").await;
        // WHEN two keys are tested, one after the other
        for key in ["AKIAFIRSTTESTEDKEY00", "AKIASECONDTESTEDKEY0"] {
            let (checks, outcome) = test_account(&config, key, "not-a-real-secret").await;
            assert_eq!(checks.len(), 5, "{checks:?}");
            assert!(checks.iter().all(|c| !c.ok) && outcome.is_err());
        }
        // THEN the ten calls of both tests, to four services, went through
        // one connection: the clients share one HTTP client and its pool
        assert_eq!(requests.load(Ordering::SeqCst), 10);
        assert_eq!(connections.load(Ordering::SeqCst), 1);
    }
}
