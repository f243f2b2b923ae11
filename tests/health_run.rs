//! A health run as a whole: repair mode fixes what it may and nothing else; a
//! check that hangs is cut at its own timeout without hiding the others;
//! without the portal API the portal checks are skipped; the real binary
//! writes one metric line per run, and a misconfigured one reports every
//! check failing.

use std::time::{Duration, Instant};

use cloudapps::config::HealthSettings;
use cloudapps::health::{self, Check, State};
use portal_emulator::{Fault, FaultKind};
use serde_json::{Value, json};
use testbed::health::{
    check, connected, detach, enable_rotation, policy_arn, scheduled_event, second_key,
    set_default_document, settings, skipped_without_metric, stop_trail, token,
};
use testbed::runtime_api::{Function, Outcome};
use testbed::{USER, World, function_env, register_rotation_function, rotation_step};

const HEALTH: &str = env!("CARGO_BIN_EXE_health");

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn repair_mode_fixes_what_it_may_and_nothing_else() {
    // GIVEN a connected stack with four links broken: the policy detached,
    // the stack's trail stopped, a statement added, a second key
    let w = connected().await;
    let arn = policy_arn(&w);
    detach(&w, &arn).await;
    let trail = stop_trail(&w).await;
    let mut document = cloudapps::iam_user::policy_document();
    document["Statement"][0]["Action"]
        .as_array_mut()
        .unwrap()
        .push(json!("iam:PassRole"));
    set_default_document(&w, &arn, &document).await;
    let second_id = second_key(&w).await;

    // WHEN the health check runs with repair on
    let report = check(&w, &settings(&w, true)).await;

    // THEN the policy is attached to the group again (never to the user
    // itself) and the trail logs again
    assert_eq!(w.group_attached(USER).await, std::slice::from_ref(&arn));
    assert!(w.attached(USER).await.is_empty());
    let status = w
        .cloudtrail
        .get_trail_status()
        .name(&trail)
        .send()
        .await
        .unwrap();
    assert_eq!(status.is_logging(), Some(true));
    assert_eq!(report.check(Check::CloudTrail).state, State::Pass);
    assert!(report.check(Check::CloudTrail).repaired[0].contains(&trail));
    assert!(report.check(Check::UserPolicy).repaired[0].contains(&arn));

    // AND what is not safe to repair is reported, not changed: the added
    // statement stays, the second key stays active
    let user_policy = report.check(Check::UserPolicy);
    assert_eq!(user_policy.state, State::Fail);
    assert!(
        user_policy.detail.contains("adds Allow iam:PassRole"),
        "{}",
        user_policy.detail
    );
    assert!(
        !user_policy.detail.contains("is not attached"),
        "{}",
        user_policy.detail
    );
    let versions = w
        .iam
        .list_policy_versions()
        .policy_arn(&arn)
        .send()
        .await
        .unwrap();
    assert_eq!(versions.versions().len(), 2);
    assert!(w.keys(USER).await.contains(&(second_id.clone(), true)));
    assert_eq!(report.failing(), ["UserPolicy", "AccessKey"]);

    // AND a second run repairs nothing more
    let again = check(&w, &settings(&w, true)).await;
    assert!(again.checks.iter().all(|c| c.repaired.is_empty()));
    assert_eq!(again.failing(), ["UserPolicy", "AccessKey"]);
    w.assert_no_leaks().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hanging_check_is_cut_at_its_timeout_and_hides_no_other() {
    // GIVEN a connected stack and a portal that answers `find` after 5 s
    let w = connected().await;
    w.emulator().inject(Fault {
        route: Some("find".into()),
        kind: FaultKind::Slow(Duration::from_secs(5)),
        times: 1,
    });
    let s = HealthSettings {
        check_timeout: Duration::from_millis(1500),
        ..settings(&w, false)
    };

    // WHEN the health check runs with 1.5 s per check
    let started = Instant::now();
    let report = check(&w, &s).await;

    // THEN PortalStatus fails for want of an answer, in time, and the others pass
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(report.failing(), ["PortalStatus"], "{}", report.summary());
    assert!(
        report
            .check(Check::PortalStatus)
            .detail
            .contains("no answer within")
    );
    assert_eq!(report.check(Check::PortalActivity).state, State::Pass);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_the_portal_api_the_portal_checks_are_skipped_not_failed() {
    // GIVEN a stack connected in hand-off mode
    let mut w = World::new().await;
    w.use_handoff().await;
    w.ok(&w.event("create.json")).await;
    enable_rotation(&w).await;

    // WHEN the health check runs
    let report = check(&w, &settings(&w, false)).await;

    // THEN the AWS checks pass, the portal ones are skipped and carry no metric
    assert!(report.failing().is_empty(), "{}", report.summary());
    skipped_without_metric(&report);

    // WHEN a rotation ran: the previous key stays active until the next one
    // (a person pastes the new key in the portal meanwhile)
    let function = register_rotation_function(&w).await;
    let t = token("handoff");
    testbed::start_rotation(&w, &function, &t).await;
    for step in ["createSecret", "setSecret", "testSecret", "finishSecret"] {
        rotation_step(&w, step, &t).await.unwrap();
    }
    assert_eq!(
        w.keys(USER)
            .await
            .iter()
            .filter(|(_, active)| *active)
            .count(),
        2
    );

    // THEN that second active key is expected: every AWS check still passes
    let report = check(&w, &settings(&w, false)).await;
    assert!(report.failing().is_empty(), "{}", report.summary());
    w.assert_no_leaks().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_binary_writes_one_metric_line_per_run_and_no_secret() {
    // GIVEN a connected stack and the real `health` binary (api mode)
    let w = connected().await;
    let f = Function::start(
        HEALTH,
        &function_env(
            &w,
            &[
                ("STACK_ID", &w.stack_id),
                ("SECRET_ARN", &w.secret_arn),
                ("PORTAL_MODE", "api"),
                ("PORTAL_URL", &w.emulator().url),
                ("PORTAL_CREDENTIALS_SECRET_ARN", &w.portal_secret),
            ],
        ),
    )
    .await;

    // WHEN the schedule invokes it twice, the trail stopped before the second
    let scheduled = scheduled_event();
    let first = f.invoke(&scheduled, Duration::from_secs(60)).await;
    stop_trail(&w).await;
    let second = f.invoke(&scheduled, Duration::from_secs(60)).await;
    let output = f.stop().await;

    // THEN each run answers its state, and wrote one metric line
    assert!(
        matches!(&first, Outcome::Response(v) if v["healthy"] == true),
        "{first:?}"
    );
    assert!(
        matches!(&second, Outcome::Response(v) if v["failing"] == json!(["CloudTrail"])),
        "{second:?}"
    );
    let lines: Vec<Value> = output
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|v| v.get("_aws").is_some())
        .collect();
    assert_eq!(lines.len(), 2, "{output}");
    assert_eq!(lines[0][health::FAILING], 0);
    assert_eq!(
        (&lines[1]["CloudTrail"], &lines[1][health::FAILING]),
        (&json!(1), &json!(1))
    );
    assert!(
        lines[1]["message"]
            .as_str()
            .unwrap()
            .contains("not logging")
    );
    w.keep_output("the health function's output", output);
    w.assert_no_leaks().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_misconfigured_binary_still_reports_every_check_failing() {
    // GIVEN the binary without SECRET_ARN
    let w = World::new().await;
    let f = Function::start(HEALTH, &function_env(&w, &[("STACK_ID", &w.stack_id)])).await;

    // WHEN the schedule invokes it
    let outcome = f.invoke(&scheduled_event(), Duration::from_secs(30)).await;
    let output = f.stop().await;

    // THEN the invocation fails naming the setting, and the line counts six failing checks
    assert!(
        matches!(&outcome, Outcome::Error(e) if e.contains("SECRET_ARN")),
        "{outcome:?}"
    );
    let line: Value = output
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .find(|v| v.get("_aws").is_some())
        .expect("a metric line");
    assert_eq!(line[health::FAILING], 6);
}
