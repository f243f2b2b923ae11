//! The health check's test bed: a stack connected in `api` mode with its
//! rotation schedule on, its health settings, one run, and ways to break
//! one link of the chain and to read what the run reported.

use std::time::{Duration, Instant};

use cloudapps::config::HealthSettings;
use cloudapps::health::{self, Check, Report, State};
use cloudapps::key_store::AWSPENDING;
use serde_json::Value;

use crate::{Moto, USER, World, register_rotation_function};

/// A stack connected in `api` mode (Create ran, the portal's test passed and
/// recorded activity), with its rotation schedule on.
pub async fn connected() -> World {
    let w = World::with_portal(Moto::shared()).await;
    w.ok(&w.event("create.json")).await;
    enable_rotation(&w).await;
    w
}

/// What the stack's RotationSchedule does: rotation on, every 30 days, no
/// rotation started yet.
pub async fn enable_rotation(w: &World) {
    let function = register_rotation_function(w).await;
    let token = token("schedule");
    crate::start_rotation(w, &function, &token).await;
    w.secrets
        .update_secret_version_stage()
        .secret_id(&w.secret_arn)
        .version_stage(AWSPENDING)
        .remove_from_version_id(&token)
        .send()
        .await
        .unwrap();
}

pub fn token(what: &str) -> String {
    format!(
        "{:016x}-{:016x}-{what}",
        fastrand::u64(..),
        fastrand::u64(..)
    )
}

/// The health settings of `w`'s stack, with repair on or off.
pub fn settings(w: &World, repair: bool) -> HealthSettings {
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
        handoff_grace: Duration::from_secs(86_400),
    }
}

/// One run, as the schedule starts it; its log line joins the leak scan.
pub async fn check(w: &World, settings: &HealthSettings) -> Report {
    let deadline = Instant::now() + Duration::from_secs(60);
    let report = Box::pin(health::run(&w.deps, settings, deadline)).await;
    w.keep_output("a health log line", report.log_line());
    report
}

/// The schedule's event (events/health-scheduled.json).
pub fn scheduled_event() -> Value {
    let text = std::fs::read_to_string(crate::root().join("events/health-scheduled.json"));
    serde_json::from_str(&text.unwrap()).unwrap()
}

/// The stack's policy (default user and path).
pub fn policy_arn(w: &World) -> String {
    format!(
        "arn:aws:iam::{}:policy/defender-cloud-apps/{USER}-cloudapps",
        w.account
    )
}

/// Stops the stack's trail; returns its name.
pub async fn stop_trail(w: &World) -> String {
    let trail = w.trail_names().await.pop().expect("the stack's trail");
    let stopped = w.cloudtrail.stop_logging().name(&trail).send().await;
    stopped.unwrap();
    trail
}

/// A new default version of the policy `arn`, holding `document`.
pub async fn set_default_document(w: &World, arn: &str, document: &Value) {
    let version = w.iam.create_policy_version().policy_arn(arn);
    let version = version.policy_document(document.to_string());
    version.set_as_default(true).send().await.unwrap();
}

/// A second key of the user, made by hand (not by the connector); its id.
pub async fn second_key(w: &World) -> String {
    let out = w.iam.create_access_key().user_name(USER).send().await;
    let out = out.unwrap();
    out.access_key().unwrap().access_key_id().to_string()
}

/// Detaches `policy` from the stack's group of the user.
pub async fn detach(w: &World, policy: &str) {
    let group = format!("{USER}-cloudapps");
    let iam = w.iam.detach_group_policy().group_name(group);
    iam.policy_arn(policy).send().await.unwrap();
}

/// Attaches `policy` to the stack's group of the user.
pub async fn attach(w: &World, policy: &str) {
    let group = format!("{USER}-cloudapps");
    let iam = w.iam.attach_group_policy().group_name(group);
    iam.policy_arn(policy).send().await.unwrap();
}

/// Exactly `name` fails, with every word of `says` in its detail; the rest pass.
pub fn only_fails(report: &Report, check: Check, says: &[&str]) {
    let name = check.name();
    assert_eq!(report.failing(), [name], "{}", report.summary());
    let detail = &report.check(check).detail;
    for word in says {
        assert!(detail.contains(word), "{name}: {word:?} not in {detail}");
    }
    assert!(
        detail.contains("What to do"),
        "{name} says what to do: {detail}"
    );
    for c in &report.checks {
        if c.check != check {
            assert_eq!(c.state, State::Pass, "{:?}: {}", c.check, c.detail);
        }
    }
}

/// Every check passes, and nothing was repaired.
pub fn all_pass(report: &Report) {
    for c in &report.checks {
        assert_eq!(c.state, State::Pass, "{:?}: {}", c.check, c.detail);
        assert!(c.repaired.is_empty(), "{:?}: {:?}", c.check, c.repaired);
    }
}

/// The portal checks are skipped and carry no metric.
pub fn skipped_without_metric(report: &Report) {
    for check in [Check::PortalStatus, Check::PortalActivity] {
        assert_eq!(report.check(check).state, State::Skip);
    }
    let line: Value = serde_json::from_str(&report.log_line()).unwrap();
    assert!(line.get("PortalStatus").is_none() && line["UserPolicy"] == 0);
}
