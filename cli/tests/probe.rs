//! `cloudapps portal probe` against the portal emulator: as it is, in the
//! shape the real portal is seen to answer (`state`, `{"data"}` alone),
//! on other routes, throttled, and against a portal whose answers the
//! client cannot read. It must never write to the tenant.

#[allow(dead_code)]
mod support;

use std::collections::BTreeMap;

use cloudapps::key_store::AWSCURRENT;
use http_body_util::Full;
use hyper::Response;
use hyper::body::Bytes;
use serde_json::{Value, json};
use support::{cloudapps, env, line_with};
use testbed::{Moto, PortalAuth, World, assert_no_leak, fault, quick_portal};

/// A world whose connector created its instance in an emulator of `config`.
async fn connected(config: portal_emulator::Config, auth: PortalAuth) -> World {
    let mut w = World::on(Moto::shared()).await;
    w.use_portal(config, auth).await;
    w.ok(&w.event("create.json")).await;
    w
}

/// The routes every request since `since` went to: the probe's reads only.
fn only_reads(w: &World, since: usize) {
    for r in &w.emulator().requests()[since..] {
        let route = r.route.as_deref().unwrap_or("(unknown path)");
        assert!(
            ["find", "status", "activities", "token"].contains(&route) || r.status == 404,
            "the probe sent {} {} ({route})",
            r.method,
            r.path
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_probe_finds_the_emulator_fits_the_contract_and_writes_nothing() {
    // GIVEN a tenant (the emulator) with the stack's AWS instance
    let w = connected(quick_portal(), PortalAuth::Token).await;
    let before = w.emulator().instances();
    let since = w.emulator().requests().len();
    let env = env(&w, None, &[]);
    let url = w.emulator().url.clone();

    // WHEN the operator probes it with the stack's credentials secret
    let args = [
        "portal",
        "probe",
        "--url",
        &url,
        "--credentials-secret",
        &w.portal_secret,
    ];
    let run = cloudapps(&w, &env, &args).await;

    // THEN each route answered 200, every field is there by its name
    assert_eq!(run.code, 0, "{}", run.shown());
    line_with(&run, &["Signed in with: API token from", &w.portal_secret]);
    line_with(
        &run,
        &["find", "POST /cas/api/v1/app_connectors/", "200", "none"],
    );
    line_with(
        &run,
        &[
            "status",
            "GET /cas/api/v1/app_connectors/{id}/",
            "200",
            "none",
        ],
    );
    line_with(
        &run,
        &["activities", "POST /api/v1/activities/", "200", "none"],
    );
    for field in [
        "_id",
        "appId",
        "name",
        "status",
        "accessKeyId",
        "connections",
        "enabled",
        "statusDetail",
    ] {
        line_with(&run, &["instance (status)", field, "present", "ok"]);
        line_with(&run, &["instance (find)", field, "present", "ok"]);
    }
    for field in ["data", "total", "hasNext"] {
        line_with(&run, &["find", field, "present", "ok"]);
    }
    line_with(
        &run,
        &["activity", "timestamp", "required", "present", "ok"],
    );
    line_with(&run, &["States seen: connected"]);
    // AND the client itself read the same
    line_with(&run, &["find", "ok: 1 AWS instance(s)"]);
    line_with(&run, &["status", "ok:", "is \"connected\""]);
    line_with(&run, &["activities", "ok: latest at"]);
    line_with(
        &run,
        &["Verdict: the client can work with this portal's answers."],
    );
    line_with(&run, &["PORTAL_ROUTES: nothing"]);
    // AND it only read: the instance is as it was
    only_reads(&w, since);
    assert_eq!(
        format!("{:?}", w.emulator().instances()),
        format!("{before:?}")
    );
    assert!(w.emulator().tests().len() == 1, "no test was started");
    w.assert_no_leaks().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_probe_reads_the_observed_shape_with_an_entra_app() {
    // GIVEN a tenant answering as the real portal is seen to (`state`,
    // `{"data"}` alone), signed in to with an Entra ID application
    let config = portal_emulator::Config {
        observed_shape: true,
        ..quick_portal()
    };
    let w = connected(config, PortalAuth::Entra).await;
    let since = w.emulator().requests().len();
    let env = env(&w, None, &[]);
    let url = w.emulator().url.clone();

    // WHEN it is probed, for people and for scripts
    let args = [
        "portal",
        "probe",
        "--url",
        &url,
        "--credentials-secret",
        &w.portal_secret,
        "--login-url",
        &url,
    ];
    let run = cloudapps(&w, &env, &args).await;
    let mut json_args = args.to_vec();
    json_args.extend(["--output", "json"]);
    let json = cloudapps(&w, &env, &json_args).await;

    // THEN `state` is named as what it is, read by the client: it fits
    assert_eq!(run.code, 0, "{}", run.shown());
    line_with(&run, &["Entra ID application", "Bearer ***"]);
    line_with(
        &run,
        &[
            "instance (find)",
            "status",
            "named differently: state",
            "ok (the client reads state)",
        ],
    );
    line_with(
        &run,
        &[
            "instance (status)",
            "statusDetail",
            "named differently: stateDetail",
        ],
    );
    line_with(&run, &["find", "total", "missing", "ok (optional)"]);
    line_with(&run, &["find", "hasNext", "missing", "ok (optional)"]);
    assert_eq!(json.code, 0, "{}", json.shown());
    let doc = json.json();
    assert_eq!(doc["fits"], true);
    let state = doc["fields"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["object"] == "instance (status)" && f["field"] == "status")
        .unwrap();
    assert_eq!(
        (&state["found"], &state["name"]),
        (&json!("alias"), &json!("state"))
    );
    assert_eq!(doc["routes"][0]["status"], 200);
    assert!(doc["set"]["PORTAL_ROUTES"].is_null());
    only_reads(&w, since);
    w.assert_no_leaks().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_probe_names_the_route_to_set_and_tries_it() {
    // GIVEN a tenant whose list and status routes are elsewhere
    let routes: BTreeMap<String, String> = [
        ("find", "/cas/api/v2/app_connectors/search/"),
        ("status", "/cas/api/v2/app_connectors/{id}/details/"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    let w = connected(
        portal_emulator::Config {
            routes: routes.clone(),
            ..quick_portal()
        },
        PortalAuth::Token,
    )
    .await;
    let env = env(&w, None, &[]);
    let url = w.emulator().url.clone();
    let base = [
        "portal",
        "probe",
        "--url",
        &url,
        "--credentials-secret",
        &w.portal_secret,
    ];

    // WHEN it is probed with the contract's routes
    let run = cloudapps(&w, &env, &base).await;

    // THEN find is not there (404), and the probe says to set it
    assert_eq!(run.code, 1, "{}", run.shown());
    line_with(&run, &["find", "POST /cas/api/v1/app_connectors/", "404"]);
    line_with(
        &run,
        &[
            "find: the portal does not serve",
            "set PORTAL_ROUTES {\"find\"",
        ],
    );
    line_with(
        &run,
        &["PORTAL_ROUTES='{\"find\":\"<the path your portal uses>\"}'"],
    );
    line_with(
        &run,
        &["Verdict: the portal's answers do NOT fit the client"],
    );

    // WHEN it is probed again with the routes tried
    let tried = serde_json::to_string(&routes).unwrap();
    let mut args = base.to_vec();
    args.extend(["--routes", &tried]);
    let run = cloudapps(&w, &env, &args).await;

    // THEN it fits, and the value to set is exactly those routes
    assert_eq!(run.code, 0, "{}", run.shown());
    line_with(
        &run,
        &[
            "status",
            "GET /cas/api/v2/app_connectors/{id}/details/",
            "200",
        ],
    );
    line_with(&run, &[&format!("PORTAL_ROUTES='{tried}'")]);
    w.assert_no_leaks().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_probe_shows_throttling_and_signs_in_with_a_token_from_the_environment() {
    // GIVEN a tenant that throttles the first list, saying when to come back
    let w = connected(quick_portal(), PortalAuth::Token).await;
    let kind = portal_emulator::FaultKind::TooMany {
        retry_after: Some("1".into()),
    };
    w.emulator().inject(fault("find", kind, 1));
    let credentials: Value =
        serde_json::from_str(&w.secret_text(&w.portal_secret, AWSCURRENT).await.unwrap()).unwrap();
    let token = credentials["Token"].as_str().unwrap();
    let env = env(&w, None, &[("CAS_TOKEN", token)]);
    let url = w.emulator().url.clone();

    // WHEN it is probed with the token in an environment variable
    let run = cloudapps(
        &w,
        &env,
        &["portal", "probe", "--url", &url, "--token-env", "CAS_TOKEN"],
    )
    .await;

    // THEN the 429 and its Retry-After are shown, and the probe went on
    assert_eq!(run.code, 0, "{}", run.shown());
    line_with(&run, &["Signed in with: API token from $CAS_TOKEN"]);
    line_with(&run, &["find", "429 then 200", "retry-after: 1"]);
    line_with(&run, &["the client itself was not run"]);
    assert_eq!(w.emulator().throttled(), 1);
    w.assert_no_leaks().await;

    // AND a token the portal refuses is a configuration error (2)
    let wrong = format!("{:064x}", fastrand::u128(..));
    let env = support::env(&w, None, &[("CAS_TOKEN", &wrong)]);
    let run = cloudapps(
        &w,
        &env,
        &["portal", "probe", "--url", &url, "--token-env", "CAS_TOKEN"],
    )
    .await;
    assert_eq!(run.code, 2, "{}", run.shown());
    line_with(
        &run,
        &["find: the portal refused the credentials (HTTP 401)"],
    );
    // AND a portal that is not there: 3; a URL that is not https: 2
    let run = cloudapps(
        &w,
        &env,
        &[
            "portal",
            "probe",
            "--url",
            "http://127.0.0.1:9",
            "--token-env",
            "CAS_TOKEN",
            "--timeout",
            "8",
        ],
    )
    .await;
    assert_eq!(run.code, 3, "{}", run.shown());
    let run = cloudapps(
        &w,
        &env,
        &[
            "portal",
            "probe",
            "--url",
            "http://contoso.example",
            "--token-env",
            "CAS_TOKEN",
        ],
    )
    .await;
    assert_eq!(run.code, 2, "{}", run.shown());
    assert!(run.stderr.contains("plain http"), "{}", run.shown());
    assert_no_leak(
        &[wrong],
        &[("stdout", &run.stdout), ("stderr", &run.stderr)],
    );
}

/// A portal answering with names the client does not read: `items` for
/// `data`, `app_id` for `appId`, `access_key_id` for `accessKeyId`.
async fn other_names() -> String {
    testbed::serve(|req: hyper::Request<hyper::body::Incoming>| async move {
        let instance = json!({"id": "i-1", "app_id": 11599, "name": "aws-1", "state": "connected",
            "access_key_id": "AKIAEXAMPLE000000001", "connections": ["SecurityAuditing"]});
        let body = match req.uri().path() {
            "/cas/api/v1/app_connectors/" => json!({"items": [instance], "total": 1}),
            "/cas/api/v1/app_connectors/i-1/" => instance,
            "/api/v1/activities/" => json!({"data": [{"timestamp": 1_795_000_000_000u64, "description": "cloudtrail:LookupEvents"}]}),
            _ => json!({"error": "no such route"}),
        };
        Response::builder()
            .header("content-type", "application/json")
            .header("x-ratelimit-remaining", "29")
            .body(Full::new(Bytes::from(body.to_string())))
            .unwrap()
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_portal_whose_names_the_client_does_not_read_does_not_fit() {
    let w = World::new().await;
    let url = other_names().await;
    let token = format!("{:064x}", fastrand::u128(..));
    let env = env(&w, None, &[("CAS_TOKEN", &token)]);

    let run = cloudapps(
        &w,
        &env,
        &["portal", "probe", "--url", &url, "--token-env", "CAS_TOKEN"],
    )
    .await;

    assert_eq!(run.code, 1, "{}", run.shown());
    line_with(
        &run,
        &["find", "data", "named differently: items", "NOT READ"],
    );
    line_with(
        &run,
        &[
            "instance (status)",
            "accessKeyId",
            "named differently: access_key_id",
            "NOT READ",
        ],
    );
    line_with(&run, &["find", "200", "x-ratelimit-remaining: 29"]);
    line_with(
        &run,
        &["field appId: the portal names it app_id", "wire.rs"],
    );
    line_with(&run, &["field data: the portal names it items"]);
    line_with(&run, &["PORTAL_ROUTES: nothing"]);
    assert_no_leak(
        &[token],
        &[("stdout", &run.stdout), ("stderr", &run.stderr)],
    );
    w.assert_no_leaks().await;
}
