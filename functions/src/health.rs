//! Check the whole chain on a schedule: replaces "a person looks at the
//! connector's status in the portal, now and then". Each link is a check of
//! its own, run side by side with its own timeout, so that one failing (or
//! hanging) check never hides the others:
//!
//! - `UserPolicy`: the IAM user exists under its path with exactly the
//!   guide's policy, attached as the stack configured it (drift is named:
//!   an added or dropped statement, a missing or extra attachment, inline
//!   policies, groups);
//! - `AccessKey`: the key in AWSCURRENT exists, is active, authenticates, and
//!   is the user's only active key (but for a rotation under way);
//! - `KeyRotation`: rotation is on, the key is not older than the schedule
//!   allows, and no rotation is stuck half-way;
//! - `CloudTrail`: coverage still holds, by the connector's own code;
//! - `PortalStatus`, `PortalActivity` (`api` mode): the portal shows the
//!   instance connected with the current key, and has recorded AWS activity
//!   in the last hours (data flows).
//!
//! One run writes one JSON line: each check's state and what to do, and a
//! CloudWatch metric per check (1 = failing) in embedded metric format, so
//! that an alarm can notify without any extra API call. With repair on,
//! what is safe is fixed first (re-attach the stack's policies, start
//! logging on the stack's own trail) and said so; nothing else is changed.

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::io::Write;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use aws_config::retry::RetryConfig;
use serde::Serialize;
use serde_json::{Map, Value, json};
use tracing::{info, warn};

use crate::access_key;
use crate::config::{Deps, millis};
use crate::error::Error;
use crate::iam_user;
use crate::key_store::{self, AWSCURRENT, AWSPENDING, AWSPREVIOUS, StoredKey};
use crate::lifecycle::{self, Connection};
use crate::names::StackRef;
use crate::portal::PortalMode;
use crate::trail;

/// The checks, in the order they are reported.
pub const CHECKS: [&str; 6] = [
    "UserPolicy",
    "AccessKey",
    "KeyRotation",
    "CloudTrail",
    "PortalStatus",
    "PortalActivity",
];
/// The CloudWatch namespace of the metrics (dimension `Stack`).
pub const NAMESPACE: &str = "DefenderForCloudApps/Connector";
/// The metric that counts the failing checks of a run.
pub const FAILING: &str = "FailingChecks";
const DAY: i64 = 86_400;

/// What the health function reads from its environment (the template sets it).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HealthSettings {
    /// `STACK_ID`: the stack whose connector is checked.
    pub stack_id: String,
    /// `SECRET_ARN`: its connector secret.
    pub secret_arn: String,
    /// `ROTATION_DAYS`: the rotation schedule (default 30).
    pub rotation_days: u32,
    /// `ACTIVITY_WINDOW_HOURS`: how recent the last AWS activity in the portal must be (default 24).
    pub activity_window_hours: u32,
    /// `HEALTH_REPAIR`: `true` repairs what is safe (default `false`).
    pub repair: bool,
    /// `HEALTH_CHECK_TIMEOUT_MS`: each check's limit (default 40 s).
    pub check_timeout: Duration,
    /// `HEALTH_ROTATION_STUCK_MS`: a rotation whose AWSPENDING version is
    /// older than this did not finish (default 1 h; a rotation takes minutes).
    pub rotation_stuck_after: Duration,
    /// `HEALTH_ACTIVITY_GRACE_MS`: no activity is no finding while the
    /// connector's secret is younger than this: the portal takes hours to
    /// show a new account's first data (default: the activity window).
    pub activity_grace: Duration,
}

impl HealthSettings {
    pub fn from_env() -> Result<Self, Error> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, Error> {
        let text = |name: &str| lookup(name).map(|v| v.trim().to_string());
        let stack_id = text("STACK_ID")
            .filter(|s| StackRef::parse(s, "health").is_ok())
            .ok_or_else(|| Error::Config("STACK_ID (the stack's ARN) is not set".into()))?;
        let secret_arn = text("SECRET_ARN")
            .filter(|s| s.starts_with("arn:"))
            .ok_or_else(|| {
                Error::Config("SECRET_ARN (the connector secret's ARN) is not set".into())
            })?;
        let number = |name: &str, default: u32, max: u32| match text(name).as_deref() {
            None | Some("") => Ok(default),
            Some(v) => v
                .parse::<u32>()
                .ok()
                .filter(|n| (1..=max).contains(n))
                .ok_or_else(|| {
                    Error::Config(format!("{name}={v:?} is not a number from 1 to {max}"))
                }),
        };
        let repair = match text("HEALTH_REPAIR")
            .unwrap_or_default()
            .to_ascii_lowercase()
            .as_str()
        {
            "" | "false" => false,
            "true" => true,
            other => {
                return Err(Error::Config(format!(
                    "HEALTH_REPAIR={other:?} is not true or false"
                )));
            }
        };
        let check_timeout = millis(&lookup, "HEALTH_CHECK_TIMEOUT_MS", Duration::from_secs(40))?;
        if check_timeout.is_zero() {
            return Err(Error::Config("HEALTH_CHECK_TIMEOUT_MS must be > 0".into()));
        }
        let rotation_stuck_after = millis(
            &lookup,
            "HEALTH_ROTATION_STUCK_MS",
            Duration::from_secs(3600),
        )?;
        let activity_window_hours = number("ACTIVITY_WINDOW_HOURS", 24, 720)?;
        let activity_grace = millis(
            &lookup,
            "HEALTH_ACTIVITY_GRACE_MS",
            Duration::from_secs(u64::from(activity_window_hours) * 3600),
        )?;
        Ok(Self {
            stack_id,
            secret_arn,
            rotation_stuck_after,
            activity_grace,
            rotation_days: number("ROTATION_DAYS", 30, 365)?,
            activity_window_hours,
            repair,
            check_timeout,
        })
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum State {
    Pass,
    Fail,
    /// Not checked in this configuration (the portal outside `api` mode).
    Skip,
}

/// One check's result.
#[derive(Clone, Debug, Serialize)]
pub struct CheckResult {
    /// The key it is reported under.
    #[serde(skip)]
    pub name: &'static str,
    pub state: State,
    /// What holds, or what broke and what to do.
    pub detail: String,
    /// What repair mode fixed before the check passed or failed.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub repaired: Vec<String>,
    pub ms: u64,
}

/// One run: every check, in [`CHECKS`] order.
#[derive(Clone, Debug)]
pub struct Report {
    pub stack_name: String,
    pub checks: Vec<CheckResult>,
    /// When the run started, milliseconds since the Unix epoch.
    pub at: u64,
}

impl Report {
    pub fn check(&self, name: &str) -> &CheckResult {
        self.checks
            .iter()
            .find(|c| c.name == name)
            .expect("every check is reported")
    }

    pub fn failing(&self) -> Vec<&'static str> {
        self.checks
            .iter()
            .filter(|c| c.state == State::Fail)
            .map(|c| c.name)
            .collect()
    }

    /// One sentence: all well, or which checks fail and why.
    pub fn summary(&self) -> String {
        let checked = self
            .checks
            .iter()
            .filter(|c| c.state != State::Skip)
            .count();
        let failing: Vec<String> = self
            .checks
            .iter()
            .filter(|c| c.state == State::Fail)
            .map(|c| format!("{}: {}", c.name, c.detail))
            .collect();
        if failing.is_empty() {
            format!("connector health: all {checked} checks pass")
        } else {
            format!(
                "connector health: {} of {checked} checks fail. {}",
                failing.len(),
                failing.join(" | ")
            )
        }
    }

    /// The run's log line: a CloudWatch embedded metric format document
    /// (one metric per check, 1 when failing, 0 when passing, none when
    /// skipped; and [`FAILING`]), with each check's state and detail.
    pub fn log_line(&self) -> String {
        let mut metrics = Vec::new();
        let mut doc = Map::new();
        doc.insert("Stack".into(), json!(self.stack_name));
        for c in self.checks.iter().filter(|c| c.state != State::Skip) {
            metrics.push(json!({"Name": c.name, "Unit": "Count"}));
            doc.insert(c.name.into(), json!(u8::from(c.state == State::Fail)));
        }
        metrics.push(json!({"Name": FAILING, "Unit": "Count"}));
        let failing = self.failing();
        doc.insert(FAILING.into(), json!(failing.len()));
        doc.insert(
            "_aws".into(),
            json!({
                "Timestamp": self.at,
                "CloudWatchMetrics": [{
                    "Namespace": NAMESPACE,
                    "Dimensions": [["Stack"]],
                    "Metrics": metrics,
                }],
            }),
        );
        let level = if failing.is_empty() { "INFO" } else { "WARN" };
        doc.insert("level".into(), json!(level));
        doc.insert("message".into(), json!(self.summary()));
        doc.insert("healthy".into(), json!(failing.is_empty()));
        let checks: Map<String, Value> = self
            .checks
            .iter()
            .map(|c| {
                (
                    c.name.to_string(),
                    serde_json::to_value(c).unwrap_or_default(),
                )
            })
            .collect();
        doc.insert("checks".into(), Value::Object(checks));
        Value::Object(doc).to_string()
    }

    /// What the invocation returns: healthy or not, and each check's state.
    pub fn outcome(&self) -> Value {
        let states: Map<String, Value> = self
            .checks
            .iter()
            .map(|c| (c.name.to_string(), json!(c.state)))
            .collect();
        json!({"healthy": self.failing().is_empty(), "failing": self.failing(), "checks": states})
    }

    /// Every check failing for the same reason (a function that cannot run).
    fn all_failing(stack_name: String, why: &str) -> Self {
        Self {
            stack_name,
            at: now_millis(),
            checks: CHECKS
                .iter()
                .map(|name| CheckResult {
                    name,
                    state: State::Fail,
                    detail: why.to_string(),
                    repaired: Vec::new(),
                    ms: 0,
                })
                .collect(),
        }
    }
}

/// A check's verdict before it is timed.
struct Verdict {
    state: State,
    detail: String,
    repaired: Vec<String>,
}

impl Verdict {
    fn pass(detail: impl Into<String>) -> Self {
        Self {
            state: State::Pass,
            detail: detail.into(),
            repaired: Vec::new(),
        }
    }

    fn fail(detail: impl Into<String>) -> Self {
        Self {
            state: State::Fail,
            detail: detail.into(),
            repaired: Vec::new(),
        }
    }

    fn skip(detail: impl Into<String>) -> Self {
        Self {
            state: State::Skip,
            detail: detail.into(),
            repaired: Vec::new(),
        }
    }

    /// Fails with `problems` and what to do, or passes with `ok`.
    fn from_problems(problems: Vec<String>, todo: &str, ok: String) -> Self {
        if problems.is_empty() {
            Self::pass(ok)
        } else {
            Self::fail(format!("{}. What to do: {todo}", problems.join("; ")))
        }
    }

    fn repaired(mut self, repaired: Vec<String>) -> Self {
        self.repaired = repaired;
        self
    }
}

/// What every check may read: the connection (from the secret's tags) and
/// the key in AWSCURRENT, each read once, or why they could not be.
struct Context<'a> {
    deps: &'a Deps,
    settings: &'a HealthSettings,
    stack: Option<StackRef>,
    connection: Result<Connection, String>,
    current: Result<StoredKey, String>,
    deadline: Instant,
}

impl Context<'_> {
    fn connection(&self) -> Result<&Connection, Verdict> {
        self.connection
            .as_ref()
            .map_err(|e| Verdict::fail(format!("the connector's secret could not be read: {e}")))
    }

    fn current(&self) -> Result<&StoredKey, Verdict> {
        self.current.as_ref().map_err(|e| Verdict::fail(e.clone()))
    }

    async fn keys(&self, c: &Connection) -> Result<Vec<access_key::KeyInfo>, Verdict> {
        access_key::list(&self.deps.aws.iam, &c.user.name)
            .await
            .map_err(|e| Verdict::fail(format!("the user's keys could not be listed: {e}")))
    }
}

/// Runs every check, each within `settings.check_timeout` and `deadline`.
pub async fn run(deps: &Deps, settings: &HealthSettings, deadline: Instant) -> Report {
    let at = now_millis();
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
        let current = read_current(deps, &connection).await;
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
    let checks = tokio::join!(
        timed("UserPolicy", limit(), user_policy(&ctx)),
        timed("AccessKey", limit(), access_key_check(&ctx)),
        timed("KeyRotation", limit(), key_rotation(&ctx)),
        timed("CloudTrail", limit(), cloudtrail(&ctx)),
        timed("PortalStatus", limit(), portal_status(&ctx)),
        timed("PortalActivity", limit(), portal_activity(&ctx)),
    );
    let report = Report {
        stack_name,
        at,
        checks: vec![checks.0, checks.1, checks.2, checks.3, checks.4, checks.5],
    };
    if report.failing().is_empty() {
        info!(stack = %report.stack_name, "connector health: all checks pass");
    } else {
        warn!(stack = %report.stack_name, failing = ?report.failing(), "connector health: checks fail");
    }
    report
}

async fn read_current(deps: &Deps, c: &Connection) -> Result<StoredKey, String> {
    match key_store::read(&deps.aws.secrets, &c.secret.arn, AWSCURRENT).await {
        Ok(Some(key)) if key.user_name == c.user.name => Ok(key),
        Ok(Some(key)) => Err(format!(
            "the key in AWSCURRENT belongs to the user {:?}, not to {}: run an Update of the stack to issue one for its user",
            key.user_name, c.user
        )),
        Ok(None) => Err(format!(
            "the secret {} holds no key in AWSCURRENT: run an Update of the stack to issue one",
            c.secret.arn
        )),
        Err(e) => Err(format!("the key in AWSCURRENT could not be read: {e}")),
    }
}

/// Runs `check` within `limit`; a check that does not answer in time fails.
async fn timed(
    name: &'static str,
    limit: Duration,
    check: impl Future<Output = Result<Verdict, Verdict>>,
) -> CheckResult {
    let started = Instant::now();
    // Boxed: six SDK call chains side by side make a large future.
    let verdict = tokio::time::timeout(limit, Box::pin(check))
        .await
        .map(|v| v.unwrap_or_else(|e| e))
        .unwrap_or_else(|_| {
        Verdict::fail(format!(
            "no answer within {limit:.0?}: AWS or the portal is slow or unreachable; it is tried again at the next run"
        ))
    });
    CheckResult {
        name,
        state: verdict.state,
        detail: crate::cfn::truncate(&verdict.detail, 900),
        repaired: verdict.repaired,
        ms: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
    }
}

// ---- UserPolicy ----

async fn user_policy(ctx: &Context<'_>) -> Result<Verdict, Verdict> {
    let c = ctx.connection()?;
    let iam = &ctx.deps.aws.iam;
    let aws = |e: Error| Verdict::fail(format!("could not be read: {e}"));
    let todo = "run an Update of the stack (it restores the user, its policy and attachments; or turn repair on for attachments), and find who changed it in CloudTrail";
    let user = match iam.get_user().user_name(&c.user.name).send().await {
        Ok(out) => out.user().cloned(),
        Err(e)
            if e.as_service_error()
                .is_some_and(|e| e.is_no_such_entity_exception()) =>
        {
            None
        }
        Err(e) => return Err(aws(Error::aws("iam:GetUser")(e))),
    };
    let Some(user) = user else {
        return Ok(Verdict::fail(format!(
            "the IAM user {} is gone: the portal cannot sign in. What to do: run an Update of the stack to create it again, and find who deleted it in CloudTrail (iam:DeleteUser)",
            c.user.name
        )));
    };
    let mut problems = Vec::new();
    if user.path() != c.user.path {
        problems.push(format!(
            "the user is under the path {}, the stack made it under {}",
            user.path(),
            c.user.path
        ));
    }
    let policy_arn = c.user.policy_arn(&c.stack);
    let mut policy_exists = true;
    match iam_user::default_document(iam, &policy_arn).await {
        Ok(Some(document)) => {
            let drift = policy_drift(&iam_user::policy_document(), &document);
            if !drift.is_empty() {
                problems.push(format!(
                    "the policy {policy_arn} is not the guide's: its default version {}",
                    drift.join(", ")
                ));
            }
        }
        Ok(None) => {
            policy_exists = false;
            problems.push(format!("the policy {policy_arn} is gone"));
        }
        Err(e) => return Err(aws(e)),
    }
    let security_configuration = c.connections.iter().any(|x| x == "SecurityConfiguration");
    let wanted = iam_user::wanted_attachments(&c.stack, &policy_arn, security_configuration);
    let mut attached = iam_user::attached_policies(iam, &c.user.name)
        .await
        .map_err(aws)?;
    let mut repaired = Vec::new();
    if ctx.settings.repair {
        let missing: Vec<&String> = wanted
            .iter()
            .filter(|arn| !attached.contains(*arn))
            .filter(|arn| policy_exists || **arn != policy_arn)
            .collect();
        for arn in missing {
            match iam_user::attach(iam, &c.user, arn).await {
                Ok(()) => {
                    repaired.push(format!("attached {arn} again"));
                    attached.insert(arn.clone());
                }
                Err(e) => problems.push(format!("repair could not attach {arn}: {e}")),
            }
        }
    }
    for arn in wanted.difference(&attached) {
        problems.push(format!("the policy {arn} is not attached to the user"));
    }
    for arn in attached.difference(&wanted) {
        problems.push(format!(
            "the policy {arn} is attached too (not the stack's): detach it"
        ));
    }
    let inline = iam
        .list_user_policies()
        .user_name(&c.user.name)
        .send()
        .await
        .map_err(|e| aws(Error::aws("iam:ListUserPolicies")(e)))?;
    if !inline.policy_names().is_empty() {
        problems.push(format!(
            "inline policies were added to the user ({}): delete them",
            inline.policy_names().join(", ")
        ));
    }
    let groups = iam
        .list_groups_for_user()
        .user_name(&c.user.name)
        .send()
        .await
        .map_err(|e| aws(Error::aws("iam:ListGroupsForUser")(e)))?;
    if !groups.groups().is_empty() {
        let names: Vec<&str> = groups.groups().iter().map(|g| g.group_name()).collect();
        problems.push(format!(
            "the user is in the groups {} and gets their rights too: remove it from them",
            names.join(", ")
        ));
    }
    let ok = format!(
        "the user {} has exactly the guide's policy and {} attachment(s) as configured",
        c.user,
        wanted.len()
    );
    Ok(Verdict::from_problems(problems, todo, ok).repaired(repaired))
}

/// Each grant of a policy document: (effect, action, resource, condition).
fn grants(document: &Value) -> BTreeSet<(String, String, String, String)> {
    let statements = match &document["Statement"] {
        Value::Array(list) => list.clone(),
        one @ Value::Object(_) => vec![one.clone()],
        _ => Vec::new(),
    };
    let list = |v: &Value| -> Vec<String> {
        match v {
            Value::String(s) => vec![s.clone()],
            Value::Array(a) => a
                .iter()
                .filter_map(|x| x.as_str().map(str::to_string))
                .collect(),
            _ => Vec::new(),
        }
    };
    let mut out = BTreeSet::new();
    for s in statements {
        let effect = s["Effect"].as_str().unwrap_or("?").to_string();
        let actions = match s.get("NotAction") {
            Some(v) => list(v)
                .into_iter()
                .map(|a| format!("NotAction {a}"))
                .collect(),
            None => list(&s["Action"]),
        };
        let resources = match s.get("NotResource") {
            Some(v) => list(v)
                .into_iter()
                .map(|r| format!("NotResource {r}"))
                .collect(),
            None => list(&s["Resource"]),
        };
        let condition = s.get("Condition").map(Value::to_string).unwrap_or_default();
        for a in &actions {
            for r in &resources {
                out.insert((effect.clone(), a.clone(), r.clone(), condition.clone()));
            }
        }
    }
    out
}

/// How `actual` differs from `expected`: "adds Allow iam:CreateUser on *",
/// "drops Allow s3:GetBucketAcl on *". Empty when they grant the same.
pub fn policy_drift(expected: &Value, actual: &Value) -> Vec<String> {
    let (want, have) = (grants(expected), grants(actual));
    let mut out = Vec::new();
    for (verb, diff) in [("adds", &have - &want), ("drops", &want - &have)] {
        let mut grouped: BTreeMap<(String, String, String), Vec<String>> = BTreeMap::new();
        for (effect, action, resource, condition) in diff {
            grouped
                .entry((effect, resource, condition))
                .or_default()
                .push(action);
        }
        for ((effect, resource, condition), actions) in grouped {
            let when = if condition.is_empty() {
                String::new()
            } else {
                format!(" when {condition}")
            };
            out.push(format!(
                "{verb} {effect} {} on {resource}{when}",
                actions.join(" ")
            ));
        }
    }
    out
}

// ---- AccessKey ----

async fn access_key_check(ctx: &Context<'_>) -> Result<Verdict, Verdict> {
    let c = ctx.connection()?;
    let current = ctx.current()?;
    let aws = &ctx.deps.aws;
    let keys = ctx.keys(c).await?;
    let id = &current.access_key_id;
    let Some(key) = keys.iter().find(|k| &k.id == id) else {
        return Ok(Verdict::fail(format!(
            "the key {id} in the secret no longer exists in IAM: the portal cannot sign in. What to do: rotate the secret now (it issues and hands over a new key), and find who deleted the key in CloudTrail (iam:DeleteAccessKey)"
        )));
    };
    if !key.active {
        return Ok(Verdict::fail(format!(
            "the key {id} in AWSCURRENT is inactive: the portal cannot sign in. What to do: if it was deactivated on purpose (a suspected leak), rotate the secret now; otherwise make it active again"
        )));
    }
    // A rotation under way holds a second key in AWSPENDING; in hand-off
    // mode the previous key stays active until the next rotation.
    let mut expected = BTreeSet::from([id.clone()]);
    let mut stages = vec![AWSPENDING];
    if ctx.deps.portal.mode() == PortalMode::Handoff {
        stages.push(AWSPREVIOUS);
    }
    for stage in stages {
        match key_store::read(&aws.secrets, &c.secret.arn, stage).await {
            Ok(Some(k)) => {
                expected.insert(k.access_key_id);
            }
            Ok(None) => {}
            Err(e) => return Err(Verdict::fail(format!("{stage} could not be read: {e}"))),
        }
    }
    let mut problems = Vec::new();
    for other in keys
        .iter()
        .filter(|k| k.active && !expected.contains(&k.id))
    {
        problems.push(format!(
            "a second active key {} exists on {}, which the connector did not issue: deactivate and delete it (only the key in the secret should sign in as this user)",
            other.id, c.user.name
        ));
    }
    let sts = aws_sdk_sts::Client::new(&access_key::signed_with(
        &aws.sdk,
        current,
        RetryConfig::standard().with_max_attempts(2),
    ));
    match sts.get_caller_identity().send().await {
        Ok(who) if who.account() == Some(c.stack.account.as_str())
            && access_key::is_user(who.arn(), &c.user.name) => {}
        Ok(who) => problems.push(format!(
            "the key {id} signs in as {} instead of {}: rotate the secret now",
            who.arn().unwrap_or("an unknown identity"),
            c.user
        )),
        Err(e) => problems.push(format!(
            "the key {id} does not authenticate ({}): the portal cannot sign in; rotate the secret now",
            Error::aws_code_only("sts:GetCallerIdentity")(e)
        )),
    }
    let ok = format!(
        "the key {id} in AWSCURRENT is active, authenticates as {}, and is the user's only active key{}",
        c.user.name,
        if expected.len() > 1 {
            " (but for a rotation's)"
        } else {
            ""
        }
    );
    Ok(Verdict::from_problems(problems, "see each finding", ok))
}

// ---- KeyRotation ----

/// What the rotation check decides on (seconds since the Unix epoch).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RotationFacts {
    pub enabled: bool,
    pub key_id: String,
    pub key_created: Option<i64>,
    pub last_rotated: Option<i64>,
    /// The version AWSPENDING is on (when not AWSCURRENT) and its creation.
    pub pending: Option<(String, Option<i64>)>,
}

/// The findings about the rotation at `now`, for a schedule of `days`; a
/// pending version older than `stuck_after` seconds did not finish.
pub fn rotation_findings(
    now: i64,
    facts: &RotationFacts,
    days: u32,
    stuck_after: i64,
) -> Vec<String> {
    let mut problems = Vec::new();
    if !facts.enabled {
        problems.push("rotation is not enabled on the secret: the key lives forever. What to do: run an Update of the stack (its RotationSchedule turns it on)".to_string());
    }
    if let Some(created) = facts.key_created {
        let age = (now - created).max(0) / DAY;
        if now - created > (i64::from(days) + 1) * DAY {
            problems.push(format!(
                "the key {} is {age} days old: rotation every {days} days is overdue. What to do: rotate the secret now and read the rotation function's log group for why it did not run",
                facts.key_id
            ));
        }
    }
    if let Some((version, created)) = &facts.pending {
        if created.is_none_or(|t| now - t >= stuck_after) {
            problems.push(format!(
                "the last rotation did not finish (AWSPENDING stays on version {version}); the portal keeps the previous key. What to do: read the rotation function's log group, fix the cause, then rotate the secret again"
            ));
        }
    }
    problems
}

async fn key_rotation(ctx: &Context<'_>) -> Result<Verdict, Verdict> {
    let c = ctx.connection()?;
    let current = ctx.current()?;
    let aws = &ctx.deps.aws;
    let keys = ctx.keys(c).await?;
    let versions = key_store::versions(&aws.secrets, &c.secret.arn)
        .await
        .map_err(|e| Verdict::fail(format!("the secret's versions could not be listed: {e}")))?;
    let has = |stages: &[String], s: &str| stages.iter().any(|x| x == s);
    let facts = RotationFacts {
        enabled: c.secret.rotation_enabled,
        key_id: current.access_key_id.clone(),
        key_created: keys
            .iter()
            .find(|k| k.id == current.access_key_id)
            .and_then(|k| k.created),
        last_rotated: c.secret.last_rotated,
        pending: versions
            .into_iter()
            .find(|(_, stages, _)| has(stages, AWSPENDING) && !has(stages, AWSCURRENT))
            .map(|(v, _, created)| (v, created)),
    };
    let now = now_millis() as i64 / 1000;
    let stuck_after =
        i64::try_from(ctx.settings.rotation_stuck_after.as_secs()).unwrap_or(i64::MAX);
    let problems = rotation_findings(now, &facts, ctx.settings.rotation_days, stuck_after);
    if !problems.is_empty() {
        return Ok(Verdict::fail(problems.join("; ")));
    }
    let age = facts.key_created.map_or("of unknown age".to_string(), |t| {
        format!("{} days old", (now - t).max(0) / DAY)
    });
    let last = facts
        .last_rotated
        .map_or("never rotated yet".to_string(), |t| {
            format!("last rotated {}", http_date(t))
        });
    Ok(Verdict::pass(format!(
        "rotation is on every {} days; the key {} is {age}; {last}",
        ctx.settings.rotation_days, facts.key_id
    )))
}

// ---- CloudTrail ----

async fn cloudtrail(ctx: &Context<'_>) -> Result<Verdict, Verdict> {
    let stack = ctx
        .stack
        .as_ref()
        .ok_or_else(|| Verdict::fail("the stack id is unreadable"))?;
    let ct = &ctx.deps.aws.cloudtrail;
    let own = stack.trail_arn(&stack.trail_name());
    let assess = || async {
        let views = trail::survey(ct).await?;
        Ok::<_, Error>(trail::assess(&views, &own))
    };
    let mut repaired = Vec::new();
    let mut outcome = assess().await;
    if matches!(outcome, Ok(Err(_))) && ctx.settings.repair && ctx.connection.is_ok() {
        match trail::restart_own_trail(ct, stack).await {
            Ok(Some(name)) => {
                repaired.push(format!("started logging on the stack's trail {name} again"));
                outcome = assess().await;
            }
            Ok(None) => {}
            Err(e) => repaired.push(format!("repair could not start the stack's trail: {e}")),
        }
    }
    let verdict = match outcome {
        Ok(Ok(coverage)) => Verdict::pass(coverage.detail),
        Ok(Err(reason)) => Verdict::fail(format!(
            "{reason}. The portal sees no activity without it. What to do: start logging on the trail (or turn repair on for the stack's own trail), or run an Update of the stack with CloudTrail set to Ensure"
        )),
        Err(e) => Verdict::fail(format!("the trails could not be read: {e}")),
    };
    Ok(verdict.repaired(repaired))
}

// ---- PortalStatus, PortalActivity ----

fn not_api(ctx: &Context<'_>) -> Option<Verdict> {
    match ctx.deps.portal.mode() {
        PortalMode::Api => None,
        PortalMode::Handoff => Some(Verdict::skip(
            "PORTAL_MODE=handoff: the portal is not read; a person checks the instance there",
        )),
        PortalMode::Off => Some(Verdict::skip(
            "PORTAL_MODE=off: nothing is handed to the portal",
        )),
    }
}

async fn portal_status(ctx: &Context<'_>) -> Result<Verdict, Verdict> {
    if let Some(skip) = not_api(ctx) {
        return Ok(skip);
    }
    let c = ctx.connection()?;
    let current = ctx.current()?;
    let api = ctx
        .deps
        .portal
        .client()
        .ok_or_else(|| Verdict::fail("no portal client"))?;
    let deadline = ctx
        .deadline
        .min(Instant::now() + ctx.settings.check_timeout);
    let found = api
        .find(&c.instance, deadline)
        .await
        .map_err(|e| Verdict::fail(format!("the portal could not be read: {e}")))?;
    let Some(instance) = found else {
        return Ok(Verdict::fail(format!(
            "the portal has no AWS instance named {:?}: this account is not monitored. What to do: run an Update of the stack to connect it again",
            c.instance
        )));
    };
    let mut problems = Vec::new();
    if !instance.enabled {
        problems.push(format!(
            "the instance {:?} is disabled in the portal",
            c.instance
        ));
    } else if instance.status != "connected" {
        let detail = if instance.status_detail.is_empty() {
            String::new()
        } else {
            format!(": {}", instance.status_detail)
        };
        problems.push(format!(
            "the portal reports the instance {:?} as {}{detail}",
            c.instance, instance.status
        ));
    }
    if instance.access_key_id.as_deref() != Some(current.access_key_id.as_str()) {
        problems.push(format!(
            "the portal holds the key {}, the secret's AWSCURRENT is {}",
            instance.access_key_id.as_deref().unwrap_or("(none)"),
            current.access_key_id
        ));
    }
    Ok(Verdict::from_problems(
        problems,
        "fix what the portal names, then run an Update of the stack (it hands the current key over and runs the portal's test)",
        format!(
            "the portal shows the instance {:?} ({}) connected with the key {}",
            c.instance, instance.id, current.access_key_id
        ),
    ))
}

async fn portal_activity(ctx: &Context<'_>) -> Result<Verdict, Verdict> {
    if let Some(skip) = not_api(ctx) {
        return Ok(skip);
    }
    let api = ctx
        .deps
        .portal
        .client()
        .ok_or_else(|| Verdict::fail("no portal client"))?;
    let hours = ctx.settings.activity_window_hours;
    let since = now_millis().saturating_sub(u64::from(hours) * 3_600_000);
    let deadline = ctx
        .deadline
        .min(Instant::now() + ctx.settings.check_timeout);
    Ok(match api.latest_activity(since, deadline).await {
        Ok(Some(a)) => Verdict::pass(format!(
            "the portal recorded AWS activity at {} ({})",
            http_date(i64::try_from(a.timestamp / 1000).unwrap_or_default()),
            a.description
        )),
        Ok(None) => match too_early(ctx) {
            Some(age) => Verdict::skip(format!(
                "no AWS activity yet, and the connection is {age} old: the portal takes hours to show a new account's first data"
            )),
            None => Verdict::fail(format!(
                "the portal recorded no AWS activity in the last {hours} hours: no data flows. What to do: check the instance's status in the portal and the CloudTrail check"
            )),
        },
        Err(e) => Verdict::fail(format!("the portal's activities could not be read: {e}")),
    })
}

/// How old the connection is, when it is younger than the activity grace.
fn too_early(ctx: &Context<'_>) -> Option<String> {
    let created = ctx.connection.as_ref().ok()?.secret.created?;
    let age = (now_millis() / 1000).saturating_sub(u64::try_from(created).ok()?);
    (Duration::from_secs(age) < ctx.settings.activity_grace)
        .then(|| format!("{:.1} hours", age as f64 / 3600.0))
}

// ---- the Lambda ----

/// The Lambda entry point: runs the checks, writes the run's line (the
/// metrics) to stdout, returns each check's state. A misconfigured function
/// still writes a line, with every check failing for that reason, so that
/// the alarm fires, and fails the invocation.
pub async fn handle_lambda_event(
    setup: Result<(&Deps, &HealthSettings), &Error>,
    event: lambda_runtime::LambdaEvent<Value>,
) -> Result<Value, lambda_runtime::Error> {
    let report = match setup {
        Ok((deps, settings)) => {
            let invocation = crate::cfn::Invocation::from_epoch_millis(
                event.context.deadline,
                deps.settings.deadline_margin,
                None,
            );
            run(deps, settings, invocation.deadline - invocation.margin).await
        }
        Err(e) => {
            let stack_name = std::env::var("STACK_ID")
                .ok()
                .and_then(|id| StackRef::parse(&id, "health").ok())
                .map_or_else(|| "unknown".into(), |s| s.stack_name);
            Report::all_failing(
                stack_name,
                &format!("the health function is misconfigured: {e}"),
            )
        }
    };
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{}", report.log_line());
    let _ = out.flush();
    match setup {
        Ok(_) => Ok(report.outcome()),
        Err(e) => Err(format!("the health function is misconfigured: {e}").into()),
    }
}

fn now_millis() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

fn http_date(secs: i64) -> String {
    let at = UNIX_EPOCH + Duration::from_secs(u64::try_from(secs).unwrap_or_default());
    httpdate::fmt_http_date(at)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn drift_names_added_and_dropped_grants() {
        let guide = iam_user::policy_document();
        assert!(policy_drift(&guide, &guide).is_empty());
        let mut changed = guide.clone();
        changed["Statement"][0]["Action"] = json!(["cloudtrail:DescribeTrails", "iam:Get*"]);
        changed["Statement"]
            .as_array_mut()
            .unwrap()
            .push(json!({"Effect": "Allow", "Action": ["iam:CreateUser", "iam:PassRole"], "Resource": "*"}));
        let drift = policy_drift(&guide, &changed);
        assert_eq!(drift.len(), 2, "{drift:?}");
        assert_eq!(drift[0], "adds Allow iam:CreateUser iam:PassRole on *");
        assert!(
            drift[1].starts_with("drops Allow cloudtrail:GetTrailStatus"),
            "{drift:?}"
        );
        assert!(!drift[1].contains("iam:Get*"), "{drift:?}");
        let conditioned = json!({"Statement": {"Effect": "Deny", "NotAction": "s3:*", "Resource": "*",
            "Condition": {"Bool": {"aws:MultiFactorAuthPresent": "false"}}}});
        let drift = policy_drift(&json!({}), &conditioned);
        assert_eq!(drift.len(), 1);
        assert!(
            drift[0].starts_with("adds Deny NotAction s3:* on * when"),
            "{drift:?}"
        );
    }

    #[test]
    fn rotation_findings_follow_the_schedule() {
        let now = 1_800_000_000;
        let fresh = RotationFacts {
            enabled: true,
            key_id: "AKIA1".into(),
            key_created: Some(now - 10 * DAY),
            last_rotated: Some(now - 10 * DAY),
            pending: None,
        };
        assert!(rotation_findings(now, &fresh, 30, 3600).is_empty());
        // A day of grace past the schedule, then overdue.
        let due = RotationFacts {
            key_created: Some(now - 31 * DAY + 60),
            ..fresh.clone()
        };
        assert!(rotation_findings(now, &due, 30, 3600).is_empty());
        let overdue = RotationFacts {
            key_created: Some(now - 45 * DAY),
            ..fresh.clone()
        };
        let found = rotation_findings(now, &overdue, 30, 3600);
        assert!(
            found[0].contains("45 days old") && found[0].contains("overdue"),
            "{found:?}"
        );
        let off = RotationFacts {
            enabled: false,
            ..fresh.clone()
        };
        assert!(rotation_findings(now, &off, 30, 3600)[0].contains("not enabled"));
        // A rotation under way is not stuck; one older than an hour is.
        let running = RotationFacts {
            pending: Some(("v2".into(), Some(now - 120))),
            ..fresh.clone()
        };
        assert!(rotation_findings(now, &running, 30, 3600).is_empty());
        let stuck = RotationFacts {
            pending: Some(("v2".into(), Some(now - 2 * 3600))),
            ..fresh
        };
        let found = rotation_findings(now, &stuck, 30, 3600);
        assert!(
            found[0].contains("did not finish") && found[0].contains("v2"),
            "{found:?}"
        );
    }

    #[test]
    fn settings_are_checked() {
        const STACK: &str = "arn:aws:cloudformation:us-east-1:123456789012:stack/s/g";
        const SECRET: &str = "arn:aws:secretsmanager:us-east-1:123456789012:secret:x";
        let read = |more: &[(&str, &str)], drop: &str| {
            let env: BTreeMap<String, String> = [("STACK_ID", STACK), ("SECRET_ARN", SECRET)]
                .iter()
                .chain(more)
                .filter(|(k, _)| *k != drop)
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect();
            HealthSettings::from_lookup(|k| env.get(k).cloned())
        };
        let s = read(&[], "").unwrap();
        assert_eq!(
            (s.rotation_days, s.activity_window_hours, s.repair),
            (30, 24, false)
        );
        assert_eq!(s.activity_grace, Duration::from_secs(24 * 3600));
        let s = read(&[("ACTIVITY_WINDOW_HOURS", "6")], "").unwrap();
        assert_eq!(s.activity_grace, Duration::from_secs(6 * 3600));
        let s = read(&[("HEALTH_REPAIR", "True"), ("ROTATION_DAYS", "90")], "").unwrap();
        assert!(s.repair && s.rotation_days == 90);
        for (more, drop, says) in [
            (&[][..], "STACK_ID", "STACK_ID"),
            (&[][..], "SECRET_ARN", "SECRET_ARN"),
            (&[("HEALTH_REPAIR", "yes")][..], "", "HEALTH_REPAIR"),
            (&[("ROTATION_DAYS", "0")][..], "", "ROTATION_DAYS"),
        ] {
            let err = read(more, drop).unwrap_err().to_string();
            assert!(err.contains(says), "{err}");
        }
    }

    #[test]
    fn the_log_line_is_an_embedded_metric_document() {
        let mut report = Report::all_failing("stack-1".into(), "why");
        report.checks[0].state = State::Pass;
        report.checks[5].state = State::Skip;
        let line = report.log_line();
        assert!(!line.contains('\n'));
        let doc: Value = serde_json::from_str(&line).unwrap();
        let directive = &doc["_aws"]["CloudWatchMetrics"][0];
        assert_eq!(directive["Namespace"], NAMESPACE);
        assert_eq!(directive["Dimensions"], json!([["Stack"]]));
        let names: Vec<&str> = directive["Metrics"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["Name"].as_str().unwrap())
            .collect();
        assert_eq!(
            names,
            [
                "UserPolicy",
                "AccessKey",
                "KeyRotation",
                "CloudTrail",
                "PortalStatus",
                FAILING
            ]
        );
        for name in &names {
            assert!(doc[name].is_number(), "{name} has a value");
        }
        assert_eq!(
            (&doc["UserPolicy"], &doc["AccessKey"], &doc[FAILING]),
            (&json!(0), &json!(1), &json!(4))
        );
        assert!(doc.get("PortalActivity").is_none());
        assert_eq!(doc["Stack"], "stack-1");
        assert_eq!(doc["checks"]["PortalActivity"]["state"], "skip");
        assert_eq!(doc["healthy"], false);
    }
}
