//! `cloudapps rotate`: RotateSecret, then the four steps followed until
//! AWSCURRENT moves. moto never runs a rotation function: the test plays
//! Secrets Manager's part beside the command (the proxy lets moto stage
//! AWSPENDING only; the test runs each step of the library's rotation and
//! writes the function's "rotation step done" line to the rotation's log
//! group, as Lambda would).

#[allow(dead_code)]
mod support;

use std::time::Duration;

use cloudapps::key_store::AWSPENDING;
use support::proxy::Proxy;
use support::stack::{Deployed, connected};
use support::{Run, cloudapps, env, line_with};
use testbed::{Moto, fault, quick_portal, rotation_step};

const STEPS: [&str; 4] = ["createSecret", "setSecret", "testSecret", "finishSecret"];

/// The line the rotation function logged for `step` of `token` (the
/// library's own, from the captured logs).
fn step_line(step: &str, token: &str) -> String {
    testbed::captured_logs()
        .lines()
        .rev()
        .find(|l| {
            l.contains("rotation step done")
                && l.contains(token)
                && l.contains(&format!("\"step\":\"{step}\""))
        })
        .unwrap_or_else(|| panic!("the library logged no done line for {step}"))
        .to_string()
}

/// Waits (bounded) for the command's RotateSecret; its token.
async fn rotation_asked(proxy: &Proxy) -> String {
    for _ in 0..600 {
        if let Some(token) = proxy.rotation_token() {
            return token;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!(
        "the command never called RotateSecret: {:?}",
        proxy.actions()
    );
}

/// Secrets Manager's part: each step of `token`, in order, until one fails;
/// each outcome written to the rotation log group as the function does.
async fn play_secrets_manager(d: &Deployed, token: &str) -> Result<(), String> {
    for step in STEPS {
        match rotation_step(&d.world, step, token).await {
            Ok(_) => d.log("rotation", &[step_line(step, token)]).await,
            Err(e) => {
                // the function's own failure line (rotation::handle_lambda_event)
                let line = serde_json::json!({"level": "ERROR", "fields": {
                    "message": "rotation step failed", "step": step, "error": e}});
                d.log("rotation", &[line.to_string()]).await;
                return Err(e);
            }
        }
    }
    Ok(())
}

async fn rotate(d: &Deployed, proxy: &Proxy, args: &[&str]) -> (Run, Result<(), String>) {
    // the function the stack's RotationSchedule set on the secret
    proxy.rotation_function(&testbed::register_rotation_function(&d.world).await);
    let env = env(&d.world, Some(&proxy.url), &[]);
    let mut all = vec!["rotate", "--poll-ms", "200", "--timeout", "120"];
    all.extend(args);
    let args = d.args(&all);
    let command = cloudapps(&d.world, &env, &args);
    let played = async {
        let token = rotation_asked(proxy).await;
        play_secrets_manager(d, &token).await
    };
    tokio::join!(command, played)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotate_prints_each_step_until_awscurrent_moves() {
    // GIVEN a connected stack whose rotation is on
    let d = connected(Moto::shared(), quick_portal()).await;
    let w = &d.world;
    let before = w.current_key().await;
    let proxy = Proxy::start(&w.endpoint).await;

    // WHEN the operator rotates now, and Secrets Manager runs the four steps
    let (run, played) = rotate(&d, &proxy, &[]).await;

    // THEN every step is printed in order, AWSCURRENT moved, exit 0
    played.expect("the four steps pass");
    assert_eq!(run.code, 0, "{}", run.shown());
    let token = proxy.rotation_token().unwrap();
    line_with(&run, &["Rotation of", &w.secret_arn, &token]);
    let at = |step: &str| run.stdout.find(&format!("{step} ")).unwrap_or(usize::MAX);
    for step in STEPS {
        line_with(&run, &[step, "done"]);
    }
    assert!(
        STEPS.windows(2).all(|s| at(s[0]) < at(s[1])),
        "{}",
        run.shown()
    );
    line_with(&run, &["AWSCURRENT moved to", &token]);
    line_with(&run, &["rotated in"]);
    // AND the secret holds a new key that works; the old one is retired
    let after = w.current_key().await;
    assert_ne!(after.access_key_id, before.access_key_id);
    assert!(w.identity_of(&after).await.is_ok());
    let keys = w.keys(testbed::USER).await;
    assert!(
        keys.contains(&(before.access_key_id.clone(), false)),
        "{keys:?}"
    );
    // AND the command asked for the rotation once, and read no secret value
    let actions = proxy.actions();
    assert_eq!(
        actions
            .iter()
            .filter(|a| a.ends_with(":RotateSecret"))
            .count(),
        1
    );
    assert!(
        !actions.iter().any(|a| a.contains("GetSecretValue")),
        "{actions:?}"
    );
    w.assert_no_leaks().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_step_exits_1_and_says_awspending_is_left() {
    // GIVEN a connected stack whose portal refuses every update
    let d = connected(Moto::shared(), quick_portal()).await;
    let w = &d.world;
    let before = w.current_key().await;
    w.emulator().inject(fault(
        "update",
        portal_emulator::FaultKind::Status(400),
        100,
    ));
    let proxy = Proxy::start(&w.endpoint).await;

    // WHEN the operator rotates now, as JSON
    let (run, played) = rotate(&d, &proxy, &["--output", "json"]).await;

    // THEN setSecret failed, and so did the command, naming what is left
    let error = played.expect_err("setSecret fails");
    assert!(error.contains("portal"), "{error}");
    assert_eq!(run.code, 1, "{}", run.shown());
    let doc = run.json();
    assert_eq!(doc["rotated"], false);
    assert_eq!(doc["awspending_left"], true);
    let steps = doc["steps"].as_array().unwrap();
    assert_eq!(steps[0]["step"], "createSecret");
    assert_eq!(steps[0]["ok"], true);
    assert_eq!(
        (&steps[1]["step"], &steps[1]["ok"]),
        (&"setSecret".into(), &false.into())
    );
    let said = doc["error"].as_str().unwrap();
    assert!(
        said.contains("setSecret failed") && said.contains("AWSPENDING is left"),
        "{said}"
    );
    // AND AWSCURRENT still holds the key the portal has
    assert_eq!(w.current_key().await.access_key_id, before.access_key_id);
    let token = proxy.rotation_token().unwrap();
    let info = cloudapps::key_store::describe(&w.secrets, &w.secret_arn)
        .await
        .unwrap();
    assert_eq!(info.version_with(AWSPENDING), Some(token.as_str()));
    w.assert_no_leaks().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rotation_left_behind_is_named_before_anything_is_asked() {
    // GIVEN a connected stack with AWSPENDING left on a version
    let d = connected(Moto::shared(), quick_portal()).await;
    let w = &d.world;
    let function = testbed::register_rotation_function(w).await;
    testbed::start_rotation(w, &function, "left-behind-0000000000000000000000000").await;
    let proxy = Proxy::start(&w.endpoint).await;
    let env = env(w, Some(&proxy.url), &[]);

    // WHEN the operator rotates now
    let run = cloudapps(w, &env, &d.args(&["rotate"])).await;

    // THEN it exits 1, names the version and how to clear it, and asked nothing
    assert_eq!(run.code, 1, "{}", run.shown());
    assert!(
        run.stderr.contains("left-behind-0000000000000000000000000"),
        "{}",
        run.shown()
    );
    assert!(
        run.stderr.contains("update-secret-version-stage"),
        "{}",
        run.shown()
    );
    assert!(!proxy.actions().iter().any(|a| a.ends_with(":RotateSecret")));
    w.assert_no_leaks().await;
}
