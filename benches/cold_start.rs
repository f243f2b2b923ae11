//! Cold start (each function and its Python peer, fresh processes, turn
//! about) and peak memory (each function handling its heaviest event).

use std::path::Path;
use std::time::Duration;

use serde_json::{Value, json};

use crate::aws_proxy::{Proxy, tally};
use crate::report::{Report, Target, median_p90};
use crate::support::runtime_api::{Function, Outcome};
use crate::support::{self, Moto, World};

pub const FUNCTIONS: [&str; 3] = ["connector", "rotation", "health"];

/// A secret ARN of `w`'s account that names nothing.
fn never_made_secret(w: &World) -> String {
    format!(
        "arn:aws:secretsmanager:{}:{}:secret:cloudapps/never-made-AbCdEf",
        support::REGION,
        w.account
    )
}

/// The environment of a function (or its peer) as the template gives it,
/// against `endpoint`, at Lambda's default log level (later entries of
/// [`support::function_env`] win).
fn env(w: &World, endpoint: &str, function: &str) -> Vec<(String, String)> {
    let missing = never_made_secret(w);
    let mut extra = vec![
        // Lambda sets both; boto3 reads only this one.
        ("AWS_DEFAULT_REGION", support::REGION),
        ("AWS_ENDPOINT_URL", endpoint),
        ("AWS_LAMBDA_LOG_LEVEL", "INFO"),
        ("STACK_ID", w.stack_id.as_str()),
        ("SECRET_ARN", missing.as_str()),
        ("PEER_FUNCTION", function),
    ];
    if function == "connector" {
        extra.extend([
            ("PORTAL_MODE", "api"),
            ("PORTAL_URL", "http://127.0.0.1:9"),
            ("PORTAL_CREDENTIALS_SECRET_ARN", missing.as_str()),
        ]);
    } else {
        extra.push(("PORTAL_MODE", "off"));
    }
    support::function_env(w, &extra)
}

/// The cheapest real event of each function: the connector deletes a
/// resource that was never made (no AWS call, one answer to CloudFormation);
/// the rotation and the health check meet a secret that does not exist.
fn first_event(w: &World, function: &str) -> Value {
    match function {
        "connector" => {
            let mut e = w.event("delete.json");
            e["PhysicalResourceId"] = json!("nothing-was-made");
            e
        }
        "rotation" => json!({
            "Step": "createSecret",
            "SecretId": never_made_secret(w),
            "ClientRequestToken": "00000000-0000-4000-8000-00000000beef",
        }),
        _ => w.event("health-scheduled.json"),
    }
}

struct Run {
    ready_ms: f64,
    answered_ms: f64,
    rss_kib: u64,
    outcome: String,
}

async fn one(program: &str, args: &[&str], env: &[(String, String)], event: &Value) -> Run {
    let f = Function::start_program(program, args, env).await;
    let ready = f.timeline().await.ready;
    let outcome = match f.invoke(event, Duration::from_secs(30)).await {
        Outcome::Response(_) => "response".to_string(),
        Outcome::Error(e) => format!("error: {}", e.chars().take(160).collect::<String>()),
    };
    let answered = f.timeline().await.first_answer.unwrap_or_default();
    let rss_kib = f.peak_rss_kib().unwrap_or(0);
    f.stop().await;
    Run {
        ready_ms: ready.as_secs_f64() * 1e3,
        answered_ms: answered.as_secs_f64() * 1e3,
        rss_kib,
        outcome,
    }
}

pub async fn cold_start(moto: &Moto, bins: &Path, samples: usize, report: &mut Report) {
    eprintln!("cold start: {samples} fresh processes per function and per peer");
    let proxy = Proxy::start(&moto.endpoint).await;
    let w = World::on(moto).await;
    let python = support::python();
    let peer = support::root().join("benches/peer.py");
    let mut details = serde_json::Map::new();
    for function in FUNCTIONS {
        let binary = bins.join(function);
        let env = env(&w, &proxy.url, function);
        let (mut ours, mut theirs) = (Vec::new(), Vec::new());
        let mut calls = json!(null);
        for i in 0..samples {
            // Turn about, so that both meet the same machine.
            let event = first_event(&w, function);
            proxy.take();
            ours.push(one(binary.to_str().unwrap(), &[], &env, &event).await);
            let our_calls = tally(&proxy.take());
            let event = first_event(&w, function);
            theirs.push(
                one(
                    python.to_str().unwrap(),
                    &[peer.to_str().unwrap()],
                    &env,
                    &event,
                )
                .await,
            );
            let peer_calls = tally(&proxy.take());
            if i == 0 {
                calls = json!({"ours": our_calls, "peer": peer_calls});
            }
        }
        let pick = |runs: &[Run], f: fn(&Run) -> f64| runs.iter().map(f).collect::<Vec<f64>>();
        let (ready, ready90) = median_p90(&pick(&ours, |r| r.ready_ms));
        let (answered, answered90) = median_p90(&pick(&ours, |r| r.answered_ms));
        let (peer_ready, peer_ready90) = median_p90(&pick(&theirs, |r| r.ready_ms));
        let (peer_answered, peer_answered90) = median_p90(&pick(&theirs, |r| r.answered_ms));
        let (rss, _) = median_p90(&pick(&ours, |r| r.rss_kib as f64));
        let (peer_rss, _) = median_p90(&pick(&theirs, |r| r.rss_kib as f64));
        let n = format!("median of {samples} fresh processes");
        report.add(
            format!("{function}: init, median"),
            ready,
            "ms",
            None,
            format!("process start → first GET /runtime/invocation/next, {n}"),
        );
        report.add(
            format!("{function}: init, p90"),
            ready90,
            "ms",
            None,
            "process start → first GET /runtime/invocation/next, 90th percentile",
        );
        report.add(
            format!("{function}: first response, median"),
            answered,
            "ms",
            None,
            format!("process start → first event answered, {n}"),
        );
        report.add(
            format!("{function}: first response, p90"),
            answered90,
            "ms",
            None,
            "process start → first event answered, 90th percentile",
        );
        report.add(
            format!("{function}: Python peer init, median"),
            peer_ready,
            "ms",
            None,
            format!("import boto3, the same 4 clients, then the same runtime loop; p90 {peer_ready90:.0} ms"),
        );
        report.add(
            format!("{function}: Python peer first response, median"),
            peer_answered,
            "ms",
            None,
            format!("the same event, the same AWS calls; p90 {peer_answered90:.0} ms"),
        );
        report.add(
            format!("{function}: init, peer ÷ ours"),
            peer_ready / ready,
            "×",
            Some(Target::AtLeast(5.0)),
            "ratio of the medians of init",
        );
        report.add(
            format!("{function}: first response, peer ÷ ours"),
            peer_answered / answered,
            "×",
            Some(Target::AtLeast(5.0)),
            "ratio of the medians of process start → first event answered",
        );
        details.insert(
            function.to_string(),
            json!({
                "ours": {"init_ms": pick(&ours, |r| r.ready_ms), "first_response_ms": pick(&ours, |r| r.answered_ms),
                         "peak_rss_kib_median": rss, "outcome": ours[0].outcome},
                "peer": {"init_ms": pick(&theirs, |r| r.ready_ms), "first_response_ms": pick(&theirs, |r| r.answered_ms),
                         "peak_rss_kib_median": peer_rss, "outcome": theirs[0].outcome},
                "aws_calls_of_the_first_event": calls,
            }),
        );
    }
    report.detail("cold_start", Value::Object(details));
}

/// Peak RSS (VmHWM) of each function's process over its heaviest work:
/// the connector's Create end to end (api mode: AWS, then the portal), a
/// whole rotation (four steps, the portal updated and tested), a health run.
pub async fn memory(moto: &Moto, bins: &Path, report: &mut Report) {
    eprintln!("memory: the connector's Create, a whole rotation, a health run");
    let mut w = World::on(moto).await;
    w.use_portal(support::quick_portal(), support::PortalAuth::Token)
        .await;
    let url = w.emulator().url.clone();
    let portal_env = [
        ("PORTAL_MODE", "api"),
        ("PORTAL_URL", url.as_str()),
        ("PORTAL_CREDENTIALS_SECRET_ARN", w.portal_secret.as_str()),
        ("PORTAL_TEST_POLL_MS", "100"),
        ("PORTAL_RETRY_FIRST_MS", "100"),
        ("AWS_LAMBDA_LOG_LEVEL", "INFO"),
    ];
    let env = |extra: &[(&str, &str)]| {
        let mut all = portal_env.to_vec();
        all.extend_from_slice(extra);
        support::function_env(&w, &all)
    };
    let mut details = serde_json::Map::new();

    let connector = Function::start(bins.join("connector").to_str().unwrap(), &env(&[])).await;
    let create = w.event("create.json");
    let outcome = connector.invoke(&create, Duration::from_secs(120)).await;
    assert!(matches!(outcome, Outcome::Response(_)), "{outcome:?}");
    let answer = w.answer_to(&create);
    assert_eq!(answer["Status"], "SUCCESS", "{answer}");
    record_peak(
        &w,
        connector,
        "connector",
        "Create",
        "VmHWM of the process: init, then Create end to end in api mode (moto + portal emulator)",
        report,
        &mut details,
    )
    .await;

    let stack = w.stack_id.clone();
    let secret = w.secret_arn.clone();
    let rotation = Function::start(
        bins.join("rotation").to_str().unwrap(),
        &env(&[("STACK_ID", &stack)]),
    )
    .await;
    let function = support::register_rotation_function(&w).await;
    let token = "11111111-2222-4333-8444-555555555555";
    support::start_rotation(&w, &function, token).await;
    for step in ["createSecret", "setSecret", "testSecret", "finishSecret"] {
        let event = json!({"Step": step, "SecretId": secret, "ClientRequestToken": token});
        let outcome = rotation.invoke(&event, Duration::from_secs(120)).await;
        assert!(
            matches!(outcome, Outcome::Response(_)),
            "{step}: {outcome:?}"
        );
    }
    record_peak(
        &w,
        rotation,
        "rotation",
        "whole rotation",
        "VmHWM of one process over the four steps (new key, portal updated and tested, old key retired)",
        report,
        &mut details,
    )
    .await;

    let health = Function::start(
        bins.join("health").to_str().unwrap(),
        &env(&[("STACK_ID", &stack), ("SECRET_ARN", &secret)]),
    )
    .await;
    let outcome = health
        .invoke(&w.event("health-scheduled.json"), Duration::from_secs(120))
        .await;
    assert!(matches!(outcome, Outcome::Response(_)), "{outcome:?}");
    record_peak(
        &w,
        health,
        "health",
        "a run",
        "VmHWM of the process: init, then the six checks in api mode",
        report,
        &mut details,
    )
    .await;
    w.assert_no_leaks().await;
    report.detail("memory", Value::Object(details));
}

/// Reports the peak RSS of `f` after its work as `<function>: peak RSS,
/// <work>`, and stops it, keeping its output for the leak scan.
async fn record_peak(
    w: &World,
    f: Function,
    function: &str,
    work: &str,
    how: &str,
    report: &mut Report,
    details: &mut serde_json::Map<String, Value>,
) {
    let peak = f.peak_rss_kib().unwrap_or(0);
    w.keep_output(&format!("the {function} function's output"), f.stop().await);
    report.add(
        format!("{function}: peak RSS, {work}"),
        peak as f64 / 1024.0,
        "MiB",
        Some(Target::AtMost(32.0)),
        how,
    );
    details.insert(function.to_string(), json!({ "peak_kib": peak }));
}
