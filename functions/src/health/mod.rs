//! Check the whole chain on a schedule: replaces "a person looks at the
//! connector's status in the portal, now and then". Each link is a
//! [`Check`] of its own, in a module of its own, run side by side with its
//! own timeout, so that one failing (or hanging) check never hides the
//! others:
//!
//! - [`user_policy`]: the IAM user and exactly the guide's policy, attached
//!   as configured;
//! - [`access_key`]: the key in AWSCURRENT exists, is active, authenticates,
//!   and is the user's only active key (but for a rotation under way);
//! - [`rotation`]: rotation is on, on schedule, and not stuck half-way;
//! - [`cloudtrail`]: coverage still holds, by the connector's own code;
//! - [`portal`] (`api` mode): the instance is connected with the current
//!   key, and the portal has recorded AWS activity lately.
//!
//! One run writes one JSON line ([`report`]): each check's state and what to
//! do, and a CloudWatch metric per check in embedded metric format. With
//! repair on, what is safe is fixed first (re-attach the stack's policies,
//! start logging on the stack's own trail) and said so; nothing else is
//! changed.

pub mod access_key;
pub mod check;
pub mod cloudtrail;
pub mod context;
pub mod drift;
pub mod portal;
pub mod report;
pub mod rotation;
pub mod user_policy;

use std::io::Write;
use std::time::{Duration, Instant};

use futures_util::future::join_all;
use serde_json::Value;
use tracing::{info, warn};

pub use check::{Check, CheckResult, State, Verdict};
pub use report::{FAILING, NAMESPACE, Report};

use crate::cfn::Invocation;
use crate::config::HealthSettings;
use crate::deps::Deps;
use crate::error::Error;
use crate::lifecycle;
use crate::names::StackRef;
use crate::text::truncate;
use crate::time::as_millis;
use context::Context;

/// Runs every check, each within `settings.check_timeout` and `deadline`.
pub async fn run(deps: &Deps, settings: &HealthSettings, deadline: Instant) -> Report {
    let at = crate::time::now_millis();
    let limit = || {
        settings
            .check_timeout
            .min(deadline.saturating_duration_since(Instant::now()))
    };
    let read = async {
        let connection =
            lifecycle::connection(deps, &settings.stack_id, &settings.secret_arn, "checks")
                .await
                .map_err(|e| e.to_string())?;
        let current = context::read_current(deps, &connection).await;
        Ok::<_, String>((connection, current))
    };
    let (connection, current) = match tokio::time::timeout(limit(), read).await {
        Ok(Ok((connection, current))) => (Ok(connection), current),
        Ok(Err(e)) => (Err(e.clone()), Err(e)),
        Err(_) => {
            let e = format!("no answer within {:.0?}", limit());
            (Err(e.clone()), Err(e))
        }
    };
    let stack = match &connection {
        Ok(c) => Some(c.stack.clone()),
        Err(_) => StackRef::parse(&settings.stack_id, "Connector").ok(),
    };
    let stack_name = stack
        .as_ref()
        .map_or_else(|| "unknown".to_string(), |s| s.stack_name.clone());
    let ctx = Context {
        deps,
        settings,
        stack,
        connection,
        current,
        deadline,
    };
    let checks = join_all(
        Check::ALL
            .into_iter()
            .map(|check| timed(check, limit(), verdict(check, &ctx))),
    )
    .await;
    let report = Report {
        stack_name,
        at,
        checks,
    };
    if report.failing().is_empty() {
        info!(stack = %report.stack_name, "connector health: all checks pass");
    } else {
        warn!(stack = %report.stack_name, failing = ?report.failing(), "connector health: checks fail");
    }
    report
}

/// The verdict of `check`: its module's work.
async fn verdict(check: Check, ctx: &Context<'_>) -> Result<Verdict, Verdict> {
    match check {
        Check::UserPolicy => user_policy::check(ctx).await,
        Check::AccessKey => access_key::check(ctx).await,
        Check::KeyRotation => rotation::check(ctx).await,
        Check::CloudTrail => cloudtrail::check(ctx).await,
        Check::PortalStatus => portal::status(ctx).await,
        Check::PortalActivity => portal::activity(ctx).await,
    }
}

/// Runs `check` within `limit`; a check that does not answer in time fails.
async fn timed(
    check: Check,
    limit: Duration,
    work: impl Future<Output = Result<Verdict, Verdict>>,
) -> CheckResult {
    let started = Instant::now();
    // Boxed: six SDK call chains side by side make a large future.
    let verdict = tokio::time::timeout(limit, Box::pin(work))
        .await
        .map(|v| v.unwrap_or_else(|e| e))
        .unwrap_or_else(|_| {
        Verdict::fail(format!(
            "no answer within {limit:.0?}: AWS or the portal is slow or unreachable; it is tried again at the next run"
        ))
    });
    CheckResult {
        check,
        state: verdict.state,
        detail: truncate(&verdict.detail, 900),
        repaired: verdict.repaired,
        ms: as_millis(started.elapsed()),
    }
}

/// Why the health function could not be set up, and the stack it belongs
/// to as far as it can tell (`unknown` otherwise).
#[derive(Debug)]
pub struct Misconfigured {
    pub error: Error,
    pub stack_name: String,
}

/// The Lambda entry point: runs the checks, writes the run's line (the
/// metrics) to stdout, returns each check's state. A misconfigured function
/// still writes a line, with every check failing for that reason, so that
/// the alarm fires, and fails the invocation.
pub async fn handle_lambda_event(
    setup: Result<(&Deps, &HealthSettings), &Misconfigured>,
    event: lambda_runtime::LambdaEvent<Value>,
) -> Result<Value, lambda_runtime::Error> {
    let report = match setup {
        Ok((deps, settings)) => {
            let invocation = Invocation::from_epoch_millis(
                event.context.deadline,
                deps.settings.deadline_margin,
                None,
            );
            let deadline = crate::time::sub(invocation.deadline, invocation.margin);
            run(deps, settings, deadline).await
        }
        Err(m) => Report::all_failing(
            m.stack_name.clone(),
            &format!("the health function is misconfigured: {}", m.error),
        ),
    };
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{}", report.log_line());
    let _ = out.flush();
    match setup {
        Ok(_) => Ok(report.outcome()),
        Err(m) => Err(format!("the health function is misconfigured: {}", m.error).into()),
    }
}
