//! `cloudapps portal capture`: HAR files the tests write, as a browser
//! saves them while a person adds an AWS instance and presses "Test API":
//! recorded against the portal emulator (with the contract's routes, and
//! with other routes and the observed shape), and written by hand (an
//! Entra ID sign-in, cookies, tokens in a query, a secret key echoed back).
//! Nothing secret in them may appear in what the command prints.

#[allow(dead_code)]
mod support;

use std::collections::BTreeMap;

use cloudapps::key_store::AWSCURRENT;
use serde_json::{Value, json};
use support::har::{self, Recorder};
use support::{Run, cloudapps, env, line_with};
use testbed::{Moto, PortalAuth, World, assert_no_leak, quick_portal};

/// The test's own secrets, beside the world's: the page's cookie and CSRF
/// token, and the one the portal's answers set.
fn page_secrets() -> (String, String, Vec<String>) {
    let session = format!("{:032x}", fastrand::u128(..));
    let csrf = format!("{:032x}", fastrand::u128(..));
    let all = vec![
        session.clone(),
        csrf.clone(),
        "rotated0csrf0value0000001".to_string(),
    ];
    (format!("sessionid={session}; theme=dark"), csrf, all)
}

/// A person adds an AWS instance and presses "Test API", with the world's
/// emulator (its routes per `routes`), recorded as a HAR. Returns the file.
async fn record(w: &World, routes: &BTreeMap<String, String>) -> (std::path::PathBuf, Vec<String>) {
    let path = |route: &str, id: &str, test: &str| {
        routes
            .get(route)
            .cloned()
            .unwrap_or_else(|| {
                cloudapps::portal::Route::from_name(route)
                    .unwrap()
                    .default_path()
                    .to_string()
            })
            .replace("{id}", id)
            .replace("{testId}", test)
    };
    let credentials: Value =
        serde_json::from_str(&w.secret_text(&w.portal_secret, AWSCURRENT).await.unwrap()).unwrap();
    let token = credentials["Token"].as_str().unwrap();
    let (cookie, csrf, secrets) = page_secrets();
    let mut page = Recorder::new(&w.emulator().url, &format!("Token {token}"), &cookie, &csrf);
    // the key a person pastes: a real key of a user of the account
    w.iam
        .create_user()
        .user_name("pasted")
        .send()
        .await
        .unwrap();
    let key = w
        .iam
        .create_access_key()
        .user_name("pasted")
        .send()
        .await
        .unwrap();
    let key = key.access_key().unwrap();
    let created = page
        .send("POST", &path("create", "", ""), Some(json!({
            "appId": 11599, "name": "aws-by-hand", "connections": ["SecurityAuditing"],
            "credentials": {"accessKeyId": key.access_key_id(), "secretAccessKey": key.secret_access_key()},
        })))
        .await;
    let id = created["_id"].to_string().trim_matches('"').to_string();
    let test = page
        .send("POST", &path("test", &id, ""), Some(json!({})))
        .await;
    let test_id = test["testId"].as_str().unwrap().to_string();
    page.send("GET", &path("test_result", &id, &test_id), None)
        .await;
    page.send("GET", &path("status", &id, ""), None).await;
    page.send(
        "POST",
        &path("find", "", ""),
        Some(json!({"filters": {}, "skip": 0, "limit": 20})),
    )
    .await;
    (har::save(&har::document(page.entries)), secrets)
}

async fn capture(w: &World, file: &std::path::Path, json: bool) -> Run {
    let env = env(w, None, &[]);
    let file = file.to_str().unwrap();
    let mut args = vec!["portal", "capture", file];
    if json {
        args.extend(["--output", "json"]);
    }
    cloudapps(w, &env, &args).await
}

/// No secret of the HAR in anything printed.
fn scan(runs: &[&Run], secrets: &[String]) {
    let texts: Vec<(&str, &str)> = runs
        .iter()
        .flat_map(|r| [("stdout", r.stdout.as_str()), ("stderr", r.stderr.as_str())])
        .collect();
    assert_no_leak(secrets, &texts);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_capture_of_todays_contract_has_no_difference() {
    // GIVEN a HAR of the emulator serving the contract as it is
    let mut w = World::on(Moto::shared()).await;
    w.use_portal(quick_portal(), PortalAuth::Token).await;
    let (file, secrets) = record(&w, &BTreeMap::new()).await;

    // WHEN it is read
    let run = capture(&w, &file, false).await;

    // THEN every route it holds is the contract's, with nothing to set
    assert_eq!(run.code, 0, "{}", run.shown());
    for (route, path) in [
        ("create", "/cas/api/v1/app_connectors/create/"),
        ("test", "/cas/api/v1/app_connectors/{id}/test/"),
        (
            "test_result",
            "/cas/api/v1/app_connectors/{id}/test/{testId}/",
        ),
        ("status", "/cas/api/v1/app_connectors/{id}/"),
        ("find", "/cas/api/v1/app_connectors/"),
    ] {
        line_with(&run, &[route, path, "same"]);
    }
    line_with(
        &run,
        &["Not in the capture", "update", "disable", "activities"],
    );
    line_with(&run, &["create request", "credentials", "present"]);
    line_with(&run, &["create credentials", "secretAccessKey", "present"]);
    line_with(&run, &["test (test_result)", "state", "present"]);
    line_with(&run, &["PORTAL_URL=", &w.emulator().url]);
    line_with(&run, &["PORTAL_ROUTES: nothing to set"]);
    line_with(&run, &["Differences from today's contract: none"]);
    scan(&[&run], &secrets);
    std::fs::remove_file(&file).unwrap();
    w.assert_no_leaks().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_capture_gives_the_routes_and_names_a_portal_uses() {
    // GIVEN a HAR of a portal on other paths, answering in the observed shape
    let routes: BTreeMap<String, String> = [
        ("create", "/cas/api/v1/connectors/aws/new/"),
        ("test", "/cas/api/v1/connectors/{id}/validate/"),
        (
            "test_result",
            "/cas/api/v1/connectors/{id}/validate/{testId}/",
        ),
        ("status", "/cas/api/v1/connectors/{id}/"),
        ("find", "/cas/api/v1/connectors/list/"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    let mut w = World::on(Moto::shared()).await;
    let config = portal_emulator::Config {
        routes: routes.clone(),
        observed_shape: true,
        ..quick_portal()
    };
    w.use_portal(config, PortalAuth::Token).await;
    let (file, secrets) = record(&w, &routes).await;

    // WHEN it is read, for people and for scripts
    let run = capture(&w, &file, false).await;
    let json = capture(&w, &file, true).await;

    // THEN it prints the PORTAL_ROUTES value that makes the client use them
    assert_eq!(run.code, 1, "{}", run.shown());
    let set = line_with(&run, &["PORTAL_ROUTES='"]);
    let value = set
        .trim()
        .trim_start_matches("PORTAL_ROUTES='")
        .trim_end_matches('\'');
    assert_eq!(
        serde_json::from_str::<BTreeMap<String, String>>(value).unwrap(),
        routes
    );
    assert!(cloudapps::portal::Routes::with_overrides(value).is_ok());
    line_with(
        &run,
        &["find", "POST /cas/api/v1/connectors/list/", "DIFFERS"],
    );
    // AND the field names the portal uses, against the contract's
    line_with(
        &run,
        &["instance (status)", "status", "named differently: state"],
    );
    line_with(&run, &["find answer", "hasNext", "missing"]);
    line_with(&run, &["States seen", "pending", "running"]);
    line_with(&run, &["Differences from today's contract (5)"]);
    line_with(
        &run,
        &["route status: the portal uses /cas/api/v1/connectors/{id}/"],
    );
    let doc = json.json();
    assert_eq!(json.code, 1);
    assert_eq!(
        serde_json::from_value::<BTreeMap<String, String>>(doc["PORTAL_ROUTES"].clone()).unwrap(),
        routes
    );
    assert_eq!(doc["matches_contract"], false);
    assert!(
        doc["fields"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f["field"] == "status" && f["found"] == "alias" && f["name"] == "state")
    );
    // AND no secret of the HAR was printed (the API token, the pasted key,
    // the cookie, the CSRF tokens)
    scan(&[&run, &json], &secrets);
    std::fs::remove_file(&file).unwrap();
    w.assert_no_leaks().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_secret_of_a_har_is_masked() {
    // GIVEN a HAR with an Entra ID sign-in, a bearer token, cookies, a
    // token in a query, and a portal that echoes the secret key back
    let w = World::new().await;
    let client_secret = format!("Qx8~{:032x}", fastrand::u128(..));
    let access_token = format!(
        "eyJ0eXAiOiJKV1QiLCJhbGciOiJSUzI1NiJ9.{:064x}.sig{:016x}",
        fastrand::u128(..),
        fastrand::u64(..)
    );
    let secret_key = format!("wJalrXUtnFEMI/K7MDENG/{:018x}", fastrand::u128(..));
    let query_token = format!("{:040x}", fastrand::u128(..));
    let cookie_value = format!("{:048x}", fastrand::u128(..));
    let short_cookie = "s3ss10n!";
    let base = "https://contoso.us3.portal.cloudappsecurity.com";
    let bearer = format!("Bearer {access_token}");
    let cookie = format!("MCAS_SESSION={cookie_value}; lang={short_cookie}");
    let page: Vec<(&str, &str)> = vec![
        ("Authorization", &bearer),
        ("Cookie", &cookie),
        ("x-xsrf-token", short_cookie),
    ];
    let form = format!(
        "grant_type=client_credentials&client_id=app-1&client_secret={}&scope=05a65629-4c1b-48c1-a78b-804c4abdd4af%2F.default",
        client_secret.replace('~', "%7E")
    );
    let instance = json!({"id": "6501", "app_id": 11599, "name": "aws-111122223333", "state": "Connected",
        "access_key_id": "AKIAEXAMPLE123456789", "enabled": true,
        "stateDetail": format!("key {secret_key} accepted"), "region": "us-east-1"});
    let entries = vec![
        har::entry("POST", "https://login.microsoftonline.com/contoso.onmicrosoft.com/oauth2/v2.0/token", &[], Some(&form), 200, &[],
            &json!({"token_type": "Bearer", "expires_in": 3599, "access_token": access_token}).to_string()),
        har::entry("POST", &format!("{base}/cas/api/v1/app_connectors/aws/?token={query_token}"), &page,
            Some(&json!({"appId": 11599, "name": "aws-111122223333", "connections": ["SecurityAuditing"], "region": "us-east-1",
                "credentials": {"accessKeyId": "AKIAEXAMPLE123456789", "secretAccessKey": secret_key}}).to_string()),
            201, &[("Set-Cookie", &format!("MCAS_SESSION={cookie_value}; HttpOnly"))], &instance.to_string()),
        har::entry("GET", &format!("{base}/cas/api/v1/app_connectors/6501/"), &page, None, 200, &[], &instance.to_string()),
        har::entry("GET", &format!("{base}/cas/api/v1/alerts/"), &page, None, 200, &[], r#"{"data": []}"#),
    ];
    let file = har::save(&har::document(entries));

    // WHEN it is read
    let run = capture(&w, &file, false).await;
    let json = capture(&w, &file, true).await;

    // THEN what it found is there, and no secret
    assert_eq!(run.code, 1, "{}", run.shown());
    line_with(
        &run,
        &["create", "POST /cas/api/v1/app_connectors/aws/", "DIFFERS"],
    );
    line_with(
        &run,
        &["status", "GET /cas/api/v1/app_connectors/{id}/", "same"],
    );
    line_with(
        &run,
        &["instance (create)", "appId", "named differently: app_id"],
    );
    line_with(
        &run,
        &[
            "instance (status)",
            "accessKeyId",
            "named differently: access_key_id",
        ],
    );
    line_with(&run, &["create request: the portal also sends region"]);
    line_with(
        &run,
        &["the state \"Connected\" is not one the contract knows"],
    );
    line_with(&run, &["Other API requests in the capture: 1"]);
    line_with(
        &run,
        &["PORTAL_URL=https://contoso.us3.portal.cloudappsecurity.com"],
    );
    assert_eq!(
        json.json()["PORTAL_ROUTES"]["create"],
        "/cas/api/v1/app_connectors/aws/"
    );
    let secrets = vec![
        client_secret.clone(),
        client_secret.replace('~', "%7E"),
        access_token.clone(),
        secret_key.clone(),
        query_token.clone(),
        cookie_value.clone(),
        short_cookie.to_string(),
        "wJalrXUtnFEMI".to_string(),
    ];
    scan(&[&run, &json], &secrets);
    std::fs::remove_file(&file).unwrap();
    w.assert_no_leaks().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_that_is_not_a_capture_of_the_portal_is_refused() {
    let w = World::new().await;
    let not_json =
        std::env::temp_dir().join(format!("cloudapps-not-{:08x}.har", fastrand::u32(..)));
    std::fs::write(&not_json, "<html>").unwrap();
    let no_log = har::save(&json!({"entries": []}));
    let unrelated = har::save(&har::document(vec![har::entry(
        "GET",
        "https://example.com/index.html",
        &[],
        None,
        200,
        &[],
        "{}",
    )]));
    for (file, says) in [
        (&not_json, "not a HAR"),
        (&no_log, "no log.entries"),
        (&unrelated, "no app connector request"),
    ] {
        let run = capture(&w, file, false).await;
        assert_eq!(run.code, 2, "{}", run.shown());
        assert!(run.stderr.contains(says), "{says}: {}", run.shown());
    }
    let missing = capture(&w, std::path::Path::new("/nonexistent/x.har"), false).await;
    assert_eq!(missing.code, 2, "{}", missing.shown());
    for file in [not_json, no_log, unrelated] {
        std::fs::remove_file(file).unwrap();
    }
}
