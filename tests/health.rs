//! The health check against moto and the portal emulator: a connected stack
//! reports every check passing; each link broken in turn fails exactly its
//! own check, with what to do; repair mode fixes what it may and nothing
//! else; a check that hangs is cut at its own timeout without hiding the
//! others; the real binary writes one metric line per run.

mod support;

use std::time::{Duration, Instant};

use aws_sdk_iam::types::StatusType;
use cloudapps::health::{self, HealthSettings, Report, State};
use cloudapps::key_store::AWSPENDING;
use portal_emulator::{Fault, FaultKind};
use serde_json::{Value, json};
use support::runtime_api::{Function, Outcome};
use support::{Moto, World, function_env, register_rotation_function, rotation_step};

const HEALTH: &str = env!("CARGO_BIN_EXE_health");
const USER: &str = "defender-cloud-apps";
const INSTANCE: &str = "aws-123456789012";

/// A stack connected in `api` mode (Create ran, the portal's test passed and
/// recorded activity), with its rotation schedule on.
async fn connected() -> World {
    let w = World::with_portal(Moto::shared()).await;
    w.ok(&w.event("create.json")).await;
    enable_rotation(&w).await;
    w
}

/// What the stack's RotationSchedule does: rotation on, every 30 days, no
/// rotation started yet.
async fn enable_rotation(w: &World) {
    let function = register_rotation_function(w).await;
    let token = token("schedule");
    support::start_rotation(w, &function, &token).await;
    w.secrets
        .update_secret_version_stage()
        .secret_id(&w.secret_arn)
        .version_stage(AWSPENDING)
        .remove_from_version_id(&token)
        .send()
        .await
        .unwrap();
}

fn token(what: &str) -> String {
    format!(
        "{:016x}-{:016x}-{what}",
        fastrand::u64(..),
        fastrand::u64(..)
    )
}

fn settings(w: &World, repair: bool) -> HealthSettings {
    HealthSettings {
        stack_id: w.stack_id.clone(),
        secret_arn: w.secret_arn.clone(),
        rotation_days: 30,
        activity_window_hours: 24,
        repair,
        check_timeout: Duration::from_secs(20),
        rotation_stuck_after: Duration::from_secs(3600),
        // Activity is expected at once: the emulator records it during Create.
        activity_grace: Duration::ZERO,
    }
}

/// One run, as the schedule starts it; its log line joins the leak scan.
async fn check(w: &World, settings: &HealthSettings) -> Report {
    let deadline = Instant::now() + Duration::from_secs(60);
    let report = Box::pin(health::run(&w.deps, settings, deadline)).await;
    w.keep_output("a health log line", report.log_line());
    report
}

/// The schedule's event (events/health-scheduled.json).
fn scheduled_event() -> Value {
    let text = std::fs::read_to_string(support::root().join("events/health-scheduled.json"));
    serde_json::from_str(&text.unwrap()).unwrap()
}

fn policy_arn(w: &World) -> String {
    format!(
        "arn:aws:iam::{}:policy/defender-cloud-apps/{USER}-cloudapps",
        w.account
    )
}

/// Stops the stack's trail; returns its name.
async fn stop_trail(w: &World) -> String {
    let trail = w.trail_names().await.pop().expect("the stack's trail");
    let stopped = w.cloudtrail.stop_logging().name(&trail).send().await;
    stopped.unwrap();
    trail
}

/// A new default version of the policy `arn`, holding `document`.
async fn set_default_document(w: &World, arn: &str, document: &Value) {
    let version = w.iam.create_policy_version().policy_arn(arn);
    let version = version.policy_document(document.to_string());
    version.set_as_default(true).send().await.unwrap();
}

/// A second key of the user, made by hand (not by the connector); its id.
async fn second_key(w: &World) -> String {
    let out = w.iam.create_access_key().user_name(USER).send().await;
    let out = out.unwrap();
    out.access_key().unwrap().access_key_id().to_string()
}

async fn detach(w: &World, policy: &str) {
    let iam = w.iam.detach_user_policy().user_name(USER);
    iam.policy_arn(policy).send().await.unwrap();
}

/// Exactly `name` fails, with every word of `says` in its detail; the rest pass.
fn only_fails(report: &Report, name: &str, says: &[&str]) {
    assert_eq!(report.failing(), [name], "{}", report.summary());
    let detail = &report.check(name).detail;
    for word in says {
        assert!(detail.contains(word), "{name}: {word:?} not in {detail}");
    }
    assert!(
        detail.contains("What to do"),
        "{name} says what to do: {detail}"
    );
    for c in &report.checks {
        if c.name != name {
            assert_eq!(c.state, State::Pass, "{}: {}", c.name, c.detail);
        }
    }
}

fn all_pass(report: &Report) {
    for c in &report.checks {
        assert_eq!(c.state, State::Pass, "{}: {}", c.name, c.detail);
        assert!(c.repaired.is_empty(), "{}: {:?}", c.name, c.repaired);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_healthy_connection_passes_every_check_and_says_why() {
    // GIVEN a connected stack
    let w = connected().await;

    // WHEN the health check runs
    let report = check(&w, &settings(&w, false)).await;

    // THEN all six checks pass, each naming what holds
    all_pass(&report);
    assert_eq!(report.checks.len(), 6);
    let key = w.current_key().await;
    for (name, says) in [
        ("AccessKey", key.access_key_id.as_str()),
        ("UserPolicy", "exactly the guide's policy"),
        ("KeyRotation", "every 30 days"),
        ("CloudTrail", "multi-region, logging"),
        ("PortalStatus", "connected"),
        ("PortalActivity", "recorded AWS activity"),
    ] {
        let detail = &report.check(name).detail;
        assert!(detail.contains(says), "{name}: {detail}");
    }

    // AND its line carries a metric of 0 per check and no failing check
    let line: Value = serde_json::from_str(&report.log_line()).unwrap();
    for name in health::CHECKS {
        assert_eq!(line[name], 0, "{name}");
    }
    assert_eq!(line[health::FAILING], 0);
    assert_eq!(line["healthy"], true);
    w.assert_no_leaks().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_broken_link_fails_exactly_its_own_check_and_nothing_is_changed() {
    // GIVEN a connected stack whose rotation schedule is not on yet (and a
    // portal that lets its 15 runs through: 2 requests each)
    let mut w = World::new().await;
    let portal = portal_emulator::Config {
        limit: 100,
        ..support::quick_portal()
    };
    w.use_portal(portal, support::PortalAuth::Token).await;
    w.ok(&w.event("create.json")).await;
    let s = settings(&w, false);

    // THEN the rotation check fails, and only it
    only_fails(&check(&w, &s).await, "KeyRotation", &["not enabled"]);
    enable_rotation(&w).await;
    all_pass(&check(&w, &s).await);

    // WHEN the policy is detached from the user
    let arn = policy_arn(&w);
    detach(&w, &arn).await;
    // THEN UserPolicy fails naming it, and the check changed nothing
    only_fails(
        &check(&w, &s).await,
        "UserPolicy",
        &[&arn, "is not attached"],
    );
    assert!(w.attached(USER).await.is_empty());
    w.iam
        .attach_user_policy()
        .user_name(USER)
        .policy_arn(&arn)
        .send()
        .await
        .unwrap();

    // WHEN a statement is added to the policy (a new default version)
    let mut document = cloudapps::iam_user::policy_document();
    document["Statement"]
        .as_array_mut()
        .unwrap()
        .push(json!({"Effect": "Allow", "Action": "iam:CreateAccessKey", "Resource": "*"}));
    set_default_document(&w, &arn, &document).await;
    // THEN UserPolicy fails naming the added grant
    only_fails(
        &check(&w, &s).await,
        "UserPolicy",
        &["adds Allow iam:CreateAccessKey on *"],
    );
    w.iam
        .set_default_policy_version()
        .policy_arn(&arn)
        .version_id("v1")
        .send()
        .await
        .unwrap();

    // WHEN the user is moved to another path
    let moved = w.iam.update_user().user_name(USER).new_path("/moved/");
    moved.send().await.unwrap();
    // THEN UserPolicy fails naming both paths
    only_fails(
        &check(&w, &s).await,
        "UserPolicy",
        &["under the path /moved/", "/defender-cloud-apps/"],
    );
    let back = w.iam.update_user().user_name(USER);
    back.new_path("/defender-cloud-apps/").send().await.unwrap();

    // WHEN an extra policy is attached to the user
    let extra = format!("arn:aws:iam::{}:policy/extra", w.account);
    w.iam
        .create_policy()
        .policy_name("extra")
        .policy_document(cloudapps::iam_user::policy_document().to_string())
        .send()
        .await
        .unwrap();
    w.iam
        .attach_user_policy()
        .user_name(USER)
        .policy_arn(&extra)
        .send()
        .await
        .unwrap();
    only_fails(
        &check(&w, &s).await,
        "UserPolicy",
        &[&extra, "attached too"],
    );
    detach(&w, &extra).await;
    all_pass(&check(&w, &s).await);

    // WHEN the key in AWSCURRENT is deactivated
    let key = w.current_key().await;
    let set_status = |status: StatusType| {
        w.iam
            .update_access_key()
            .user_name(USER)
            .access_key_id(&key.access_key_id)
            .status(status)
            .send()
    };
    set_status(StatusType::Inactive).await.unwrap();
    // THEN AccessKey fails: the portal cannot sign in
    only_fails(
        &check(&w, &s).await,
        "AccessKey",
        &[&key.access_key_id, "inactive"],
    );
    set_status(StatusType::Active).await.unwrap();

    // WHEN a second key is created for the user (by hand, outside the connector)
    let second_id = second_key(&w).await;
    // THEN AccessKey fails naming it, and it is left alone
    only_fails(
        &check(&w, &s).await,
        "AccessKey",
        &[&second_id, "second active key"],
    );
    assert_eq!(w.keys(USER).await.len(), 2);
    w.iam
        .delete_access_key()
        .user_name(USER)
        .access_key_id(&second_id)
        .send()
        .await
        .unwrap();

    // WHEN the trail stops logging
    let trail = stop_trail(&w).await;
    // THEN CloudTrail fails naming the trail and the gap
    only_fails(&check(&w, &s).await, "CloudTrail", &[&trail, "not logging"]);
    w.cloudtrail
        .start_logging()
        .name(&trail)
        .send()
        .await
        .unwrap();

    // WHEN the portal reports an error for the instance
    let detail = "AccessDenied calling cloudtrail:LookupEvents";
    assert!(w.emulator().set_status(INSTANCE, "error", detail));
    // THEN PortalStatus fails with the portal's own words
    only_fails(&check(&w, &s).await, "PortalStatus", &["as error", detail]);
    w.emulator().set_status(INSTANCE, "connected", "");

    // WHEN no activity reached the portal for a day
    w.emulator().age_activities(Duration::from_secs(25 * 3600));
    // THEN a connection younger than the grace (a day, by default) is not
    // failed for it: the portal takes hours to show a new account's data
    let young = HealthSettings {
        activity_grace: Duration::from_secs(24 * 3600),
        ..s.clone()
    };
    let report = check(&w, &young).await;
    assert!(report.failing().is_empty(), "{}", report.summary());
    let activity = report.check("PortalActivity");
    assert_eq!(activity.state, State::Skip, "{}", activity.detail);
    assert!(
        activity.detail.contains("no AWS activity yet"),
        "{}",
        activity.detail
    );
    // AND an older one fails
    only_fails(
        &check(&w, &s).await,
        "PortalActivity",
        &["no AWS activity in the last 24 hours"],
    );

    // AND every request to the activities API is the documented filter
    let asked: Vec<Value> = w
        .emulator()
        .requests()
        .iter()
        .filter(|r| r.route.as_deref() == Some("activities"))
        .map(|r| serde_json::from_str(&r.body).unwrap())
        .collect();
    assert!(!asked.is_empty());
    for body in asked {
        assert_eq!(body["filters"]["service"], json!({"eq": [11599]}));
        assert!(body["filters"]["date"]["gte"].is_u64(), "{body}");
        assert_eq!(
            (&body["limit"], &body["sortDirection"]),
            (&json!(1), &json!("desc"))
        );
    }
    w.assert_no_leaks().await;
}

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

    // THEN the policy is attached again and the trail logs again
    assert_eq!(w.attached(USER).await, std::slice::from_ref(&arn));
    let status = w
        .cloudtrail
        .get_trail_status()
        .name(&trail)
        .send()
        .await
        .unwrap();
    assert_eq!(status.is_logging(), Some(true));
    assert_eq!(report.check("CloudTrail").state, State::Pass);
    assert!(report.check("CloudTrail").repaired[0].contains(&trail));
    assert!(report.check("UserPolicy").repaired[0].contains(&arn));

    // AND what is not safe to repair is reported, not changed: the added
    // statement stays, the second key stays active
    let user_policy = report.check("UserPolicy");
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
async fn a_rotation_under_way_is_no_finding_but_one_that_stopped_is() {
    // GIVEN a connected stack in the middle of a rotation: createSecret made
    // a second active key, staged AWSPENDING
    let w = connected().await;
    let function = register_rotation_function(&w).await;
    let t = token("under-way");
    support::start_rotation(&w, &function, &t).await;
    rotation_step(&w, "createSecret", &t).await.unwrap();
    assert_eq!(w.keys(USER).await.len(), 2);

    // WHEN the health check runs
    let report = check(&w, &settings(&w, false)).await;

    // THEN the pending key is expected and a young rotation is not stuck
    all_pass(&report);
    assert!(
        report
            .check("AccessKey")
            .detail
            .contains("but for a rotation's")
    );

    // WHEN the rotation is older than the limit (it stopped after createSecret)
    let s = HealthSettings {
        rotation_stuck_after: Duration::ZERO,
        ..settings(&w, false)
    };
    // THEN KeyRotation fails naming the version, and only it
    only_fails(&check(&w, &s).await, "KeyRotation", &["did not finish", &t]);
    w.assert_no_leaks().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deleted_key_then_a_deleted_user_are_named() {
    // GIVEN a connected stack whose key is deleted in IAM
    let w = connected().await;
    let key = w.current_key().await;
    let deleted = w.iam.delete_access_key().user_name(USER);
    deleted
        .access_key_id(&key.access_key_id)
        .send()
        .await
        .unwrap();

    // THEN AccessKey fails: the portal cannot sign in
    only_fails(
        &check(&w, &settings(&w, false)).await,
        "AccessKey",
        &[&key.access_key_id, "no longer exists"],
    );

    // WHEN the user is deleted too
    detach(&w, &policy_arn(&w)).await;
    w.iam.delete_user().user_name(USER).send().await.unwrap();

    // THEN UserPolicy says so, and what to do
    let report = check(&w, &settings(&w, false)).await;
    let user_policy = &report.check("UserPolicy").detail;
    assert!(
        user_policy.contains("is gone") && user_policy.contains("What to do"),
        "{user_policy}"
    );
    assert_eq!(report.failing(), ["UserPolicy", "AccessKey", "KeyRotation"]);
    assert_eq!(report.check("CloudTrail").state, State::Pass);
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
            .check("PortalStatus")
            .detail
            .contains("no answer within")
    );
    assert_eq!(report.check("PortalActivity").state, State::Pass);
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
    support::start_rotation(&w, &function, &t).await;
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

fn skipped_without_metric(report: &Report) {
    for name in ["PortalStatus", "PortalActivity"] {
        assert_eq!(report.check(name).state, State::Skip);
    }
    let line: Value = serde_json::from_str(&report.log_line()).unwrap();
    assert!(line.get("PortalStatus").is_none() && line["UserPolicy"] == 0);
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
