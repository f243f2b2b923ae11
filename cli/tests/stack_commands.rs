//! `cloudapps status` and `cloudapps check` against a connector deployed in
//! moto (a stack of moto's CloudFormation whose outputs carry what the
//! connector's Create answered) and the portal emulator.

#[allow(dead_code)]
mod support;

use cloudapps::health::{Check, CheckResult, Report, State};
use support::proxy::Proxy;
use support::stack::{self, connected};
use support::{cloudapps, env, line_with};
use testbed::{Moto, USER, quick_portal};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_shows_the_connector_and_reads_no_secret_value() {
    // GIVEN a connected stack whose health function wrote a passing run's line
    let d = connected(Moto::shared(), quick_portal()).await;
    let w = &d.world;
    let report = testbed::health::check(w, &testbed::health::settings(w, false)).await;
    testbed::health::all_pass(&report);
    let start = "START RequestId: 1f0 Version: $LATEST".to_string();
    d.log(
        "health",
        &[start, report.log_line(), "END RequestId: 1f0".into()],
    )
    .await;
    let proxy = Proxy::start(&w.endpoint).await;
    let env = env(w, Some(&proxy.url), &[]);

    // WHEN an operator asks for its status
    let run = cloudapps(w, &env, &d.args(&["status"])).await;

    // THEN every part of the connector is shown, with no problem
    assert_eq!(run.code, 0, "{}", run.shown());
    let key = w.current_key().await;
    let instance = &w.emulator().instances()[0];
    line_with(&run, &["User", &format!("user/defender-cloud-apps/{USER}")]);
    line_with(&run, &["Access key", &key.access_key_id, "Active", "old"]);
    line_with(&run, &["Rotation", "enabled, every 30 days", "next"]);
    line_with(&run, &["Trail", "created-trail"]);
    line_with(
        &run,
        &["Portal", "api: connected", &instance.id, &instance.name],
    );
    line_with(&run, &["Last health", "all 6 checks pass"]);
    line_with(&run, &["Problems", "none"]);
    // AND the JSON document says the same
    let json = cloudapps(w, &env, &d.args(&["status", "--output", "json", "--quiet"])).await;
    assert_eq!(json.code, 0, "{}", json.shown());
    assert_eq!(json.stderr, "", "--quiet: no progress line");
    assert!(
        run.stderr.contains("reading the stack"),
        "a progress line on stderr"
    );
    let doc = json.json();
    assert_eq!(doc["keys"][0]["id"], key.access_key_id.as_str());
    assert_eq!(doc["keys"].as_array().unwrap().len(), 1);
    assert_eq!(doc["rotation"]["enabled"], true);
    assert_eq!(doc["last_health_run"]["healthy"], true);
    assert_eq!(
        doc["last_health_run"]["checks"]["CloudTrail"]["state"],
        "pass"
    );
    assert_eq!(
        doc["secret"]["tags"]["cloudapps:connector-name"],
        instance.name.as_str()
    );
    assert_eq!(doc["healthy"], true);
    // AND it read the secret's description, never its value
    let actions = proxy.actions();
    for read in [
        "secretsmanager:DescribeSecret",
        "iam:ListAccessKeys",
        "logs:GetLogEvents",
    ] {
        assert!(actions.iter().any(|a| a == read), "{read} in {actions:?}");
    }
    assert!(
        !actions.iter().any(|a| a.contains("GetSecretValue")),
        "status read a secret value: {actions:?}"
    );

    // WHEN the portal reports the instance in error and the next run fails
    assert!(
        w.emulator()
            .set_status(&instance.name, "error", "the key was refused")
    );
    let failing = testbed::health::check(w, &testbed::health::settings(w, false)).await;
    assert_eq!(failing.failing(), ["PortalStatus"]);
    d.log("health", &[failing.log_line()]).await;
    let run = cloudapps(w, &env, &d.args(&["status"])).await;

    // THEN status exits 1 and names it
    assert_eq!(run.code, 1, "{}", run.shown());
    line_with(
        &run,
        &["Problem", "last health run", "failed", "PortalStatus"],
    );
    w.assert_no_leaks().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_runs_the_health_checks_from_here_and_changes_nothing() {
    // GIVEN a connected stack
    let d = connected(Moto::shared(), quick_portal()).await;
    let w = &d.world;
    let env = env(w, None, &[]);

    // WHEN the checks run from the operator's machine
    let run = cloudapps(w, &env, &d.args(&["check"])).await;

    // THEN every check passes, in run-local's table
    assert_eq!(run.code, 0, "{}", run.shown());
    for check in Check::ALL {
        line_with(&run, &[check.name(), "pass"]);
    }
    assert_eq!(
        run.stdout.lines().last(),
        Some("healthy"),
        "{}",
        run.shown()
    );

    // WHEN the stack's trail stops logging
    let trail = testbed::health::stop_trail(w).await;
    let run = cloudapps(w, &env, &d.args(&["check", "--output", "json"])).await;

    // THEN the CloudTrail check fails (exit 1) and the trail is left as it is
    assert_eq!(run.code, 1, "{}", run.shown());
    let doc = run.json();
    assert_eq!(doc["failing"], serde_json::json!(["CloudTrail"]));
    assert_eq!(doc["checks"]["CloudTrail"]["state"], "fail");
    assert!(
        doc["checks"]["CloudTrail"]["detail"]
            .as_str()
            .unwrap()
            .contains("What to do"),
        "{doc}"
    );
    assert!(
        !w.is_logging(&trail).await,
        "a check run by hand changes nothing"
    );
    let table = cloudapps(w, &env, &d.args(&["check"])).await;
    assert_eq!(table.code, 1);
    assert_eq!(table.stdout.lines().last(), Some("FAILING: CloudTrail"));

    // WHEN it runs with --repair
    let run = cloudapps(w, &env, &d.args(&["check", "--repair"])).await;

    // THEN the stack's own trail logs again, and the run says it repaired it
    assert_eq!(run.code, 0, "{}", run.shown());
    line_with(&run, &["CloudTrail", "pass", "repaired"]);
    assert!(w.is_logging(&trail).await);
    w.assert_no_leaks().await;
}

/// The answer of the health function, as `handle_lambda_event` gives it.
fn outcome(failing: Option<Check>) -> String {
    let report = Report {
        stack_name: "s".into(),
        at: 0,
        checks: Check::ALL
            .into_iter()
            .map(|check| CheckResult {
                check,
                state: if Some(check) == failing {
                    State::Fail
                } else {
                    State::Pass
                },
                detail: String::new(),
                repaired: Vec::new(),
                ms: 1,
            })
            .collect(),
    };
    report.outcome().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_remote_invokes_the_stacks_health_function() {
    // GIVEN moto's Lambda answering without running anything (its
    // "simple" backend: moto cannot run a function here, there is no
    // docker), and a stack with a HealthFunction
    let moto = Moto::start_with(&[("MOTO_IAM_LOAD_MANAGED_POLICIES", "false")]);
    let http = reqwest::Client::new();
    let config = http
        .post(format!("{}/moto-api/config", moto.endpoint))
        .body(r#"{"lambda": {"use_docker": false}}"#)
        .send()
        .await
        .unwrap();
    assert!(config.status().is_success());
    let d = stack::stack(&moto, true).await;
    let w = &d.world;
    d.set(&[("SecretArn".into(), w.secret_arn.clone())]).await;
    // the two answers the function gives, in order
    let answers = [outcome(Some(Check::PortalStatus)), outcome(None)];
    let queued = http
        .post(format!(
            "{}/moto-api/static/lambda-simple/response",
            moto.endpoint
        ))
        .body(
            serde_json::json!({"results": answers, "account_id": w.account, "region": "us-east-1"})
                .to_string(),
        )
        .send()
        .await
        .unwrap();
    assert!(queued.status().is_success());
    let env = env(w, None, &[]);

    // WHEN the operator runs the deployed check
    let run = cloudapps(w, &env, &d.args(&["check", "--remote"])).await;

    // THEN its answer is the table, and a failing check exits 1
    assert_eq!(run.code, 1, "{}", run.shown());
    let function = d
        .cfn
        .describe_stack_resource()
        .stack_name(&d.name)
        .logical_resource_id("HealthFunction")
        .send()
        .await
        .unwrap();
    let function = function
        .stack_resource_detail()
        .unwrap()
        .physical_resource_id()
        .unwrap();
    line_with(
        &run,
        &["Health of stack", "the deployed function", function],
    );
    line_with(
        &run,
        &[
            "PortalStatus",
            "fail",
            &format!("/cloudapps/{}/health", d.name),
        ],
    );
    assert_eq!(run.stdout.lines().last(), Some("FAILING: PortalStatus"));

    // AND a healthy answer exits 0
    let run = cloudapps(w, &env, &d.args(&["check", "--remote", "-o", "json"])).await;
    assert_eq!(run.code, 0, "{}", run.shown());
    assert_eq!(run.json()["healthy"], true);
    assert_eq!(run.json()["checks"]["AccessKey"]["state"], "pass");
    w.assert_no_leaks().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exit_codes_say_whose_problem_it_is() {
    let d = stack::stack(Moto::shared(), false).await;
    let w = &d.world;
    let env = env(w, None, &[]);
    // a stack that does not exist, and one with no connector's outputs: 2
    let run = cloudapps(
        w,
        &env,
        &["status", "--stack", "nope", "--region", "us-east-1"],
    )
    .await;
    assert_eq!(run.code, 2, "{}", run.shown());
    assert!(run.stderr.contains("no stack \"nope\""), "{}", run.shown());
    let run = cloudapps(w, &env, &d.args(&["check"])).await;
    assert_eq!(run.code, 2, "{}", run.shown());
    assert!(run.stderr.contains("SecretArn"), "{}", run.shown());
    // the JSON of a failure is a document too
    let run = cloudapps(w, &env, &d.args(&["rotate", "-o", "json"])).await;
    assert_eq!(
        (run.code, run.json()["error"]["exit"].as_u64()),
        (2, Some(2))
    );
    // no region: 2
    let no_region: Vec<_> = env
        .iter()
        .filter(|(k, _)| k != "AWS_REGION")
        .cloned()
        .collect();
    let run = cloudapps(w, &no_region, &["status", "--stack", &d.name]).await;
    assert_eq!(run.code, 2, "{}", run.shown());
    assert!(run.stderr.contains("--region"), "{}", run.shown());
    // no credentials at all: 2
    let no_credentials: Vec<_> = env
        .iter()
        .filter(|(k, _)| {
            !k.starts_with("AWS_ACCESS_KEY")
                && !k.starts_with("AWS_SECRET")
                && !k.starts_with("AWS_SESSION")
        })
        .cloned()
        .collect();
    let run = cloudapps(w, &no_credentials, &d.args(&["status"])).await;
    assert_eq!(run.code, 2, "{}", run.shown());
    assert!(run.stderr.contains("no AWS credentials"), "{}", run.shown());
    // AWS unreachable: 3
    let closed = support::env(w, Some("http://127.0.0.1:9"), &[]);
    let run = cloudapps(w, &closed, &d.args(&["status"])).await;
    assert_eq!(run.code, 3, "{}", run.shown());
    // a usage error: 2 (clap's)
    let run = cloudapps(w, &env, &["status"]).await;
    assert_eq!(run.code, 2, "{}", run.shown());
    w.assert_no_leaks().await;
}
