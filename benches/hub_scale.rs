//! Hub scale: N member accounts connect through the organization hub
//! (`PORTAL_MODE=hub`), side by side with org scale's direct mode. A stack
//! set creates the member stacks (at most `--hub-concurrency` at a time); each
//! member's Create does the AWS side only and answers `queued`, then nudges
//! the hub; the registrar (as Lambda runs it: [`crate::hub_lambda`]) connects
//! and tests every account through one portal emulator that allows 30
//! requests per rolling window. Time is scaled as in org scale: the window
//! stands for the portal's minute, and so does every timing of the hub the
//! portal's minute bounds (its pace, retry pauses, test poll and timeout,
//! the run's 15 minutes, its margin and the schedule), and the portal's
//! test. AWS calls (moto) are not scaled, nor is the member function's
//! timeout: in hub mode its Create makes AWS calls only.
//!
//! With `--accounts N` above the reference (100), a rollout of the
//! reference size runs first, in a moto of its own: the p99 of a member's
//! Create at N and at 100 accounts, in the same run.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use cloudapps::hub::org_health::{self, OrgHealth};
use cloudapps::hub_tags::Status;

use crate::hub_lambda::{Invocation, Lambda};
use crate::hub_org::{
    self, Created, NUDGE_BATCHING_WINDOW, Organization, REGISTRAR_TIMEOUT, Scaled,
};
use crate::hub_rotation::{self, Rotated};
use crate::org_scale::{LIMIT, Scale};

/// The member connector's timeout in template.yaml.
const FUNCTION_TIMEOUT: Duration = Duration::from_secs(300);
/// How long a rotation's wait for the hub is watched (portal minutes).
const ROTATION_CAP: Duration = Duration::from_secs(60 * 60);
/// hub-template.yaml's `ScheduleMinutes` default.
const SCHEDULE: Duration = Duration::from_secs(15 * 60);

/// The hub section's own flags.
pub struct HubScale {
    /// The window that stands for the portal's minute (`--hub-window-ms`).
    pub window: Duration,
    /// The smaller rollout the p99 of a Create is compared with
    /// (`--hub-reference`).
    pub reference: usize,
    /// When the schedule's first run comes, in portal minutes after the
    /// stack set starts (`--hub-schedule-offset-min`, 0 to 15).
    pub schedule_offset_min: f64,
    /// Member stacks the stack set creates at once (`--hub-concurrency`):
    /// in hub mode no Create waits for the portal.
    pub concurrency: usize,
}

/// What one rollout measured.
pub struct Rollout {
    pub n: usize,
    pub window: Duration,
    pub portal_test: Duration,
    pub pace: Duration,
    pub run_margin: Duration,
    /// The stack set's start, then the first Create's start (t0).
    pub started: Instant,
    pub t0: Instant,
    pub created: Vec<Created>,
    /// When the emulator showed each instance connected, by name.
    pub connected_at: HashMap<String, Instant>,
    /// When the emulator showed every account connected.
    pub all_connected: Option<Instant>,
    /// When the hub's table showed every account connected.
    pub table_connected: Option<Instant>,
    pub rows_by_status: BTreeMap<String, usize>,
    pub requests: Vec<portal_emulator::Received>,
    pub invocations: Vec<Invocation>,
    pub health: Option<OrgHealth>,
    pub health_error: Option<String>,
    /// Portal requests the emulator received during the health run.
    pub health_received: usize,
    /// A rotation in the first member once it is connected, the rollout
    /// under way; and one in the last member after the rollout.
    pub rotation_busy: Option<Rotated>,
    pub rotation_idle: Option<Rotated>,
    /// Wall time of the organization's setup, and of the whole rollout.
    pub setup: Duration,
    pub wall: Duration,
}

impl Rollout {
    /// A duration in portal (real-pace) minutes.
    pub fn minutes(&self, d: Duration) -> f64 {
        d.as_secs_f64() / self.window.as_secs_f64()
    }

    /// From t0 to `at`, in portal minutes.
    pub fn at(&self, at: Instant) -> f64 {
        self.minutes(at.saturating_duration_since(self.t0))
    }
}

/// The rollout of `--accounts` accounts, and before it the reference's
/// when `--accounts` is above it: (main, reference).
pub async fn run(scale: &Scale, hub: &HubScale) -> (Rollout, Option<Rollout>) {
    let reference = (scale.accounts > hub.reference)
        .then_some(hub.reference)
        .filter(|r| *r > 0);
    let small = match reference {
        Some(r) => Some(rollout(r, scale, hub).await),
        None => None,
    };
    let main = rollout(scale.accounts, scale, hub).await;
    (main, small)
}

async fn rollout(n: usize, scale: &Scale, hub: &HubScale) -> Rollout {
    let window = hub.window;
    let scaled = Scaled(window.as_secs_f64() / 60.0);
    let portal_test = scaled.of(scale.portal_test);
    eprintln!(
        "hub scale: {n} accounts, the stack set {} at a time, {LIMIT} portal requests per {window:?} (the minute ×{:.3}); building the organization",
        hub.concurrency, scaled.0
    );
    let setup_began = Instant::now();
    let org = Arc::new(hub_org::build(n, window, LIMIT, portal_test).await);
    let setup = setup_began.elapsed();
    eprintln!("  organization built in {:.0} s", setup.as_secs_f64());
    let lambda = Lambda::new(
        org.hub.clone(),
        scaled.of(REGISTRAR_TIMEOUT),
        scaled.of(NUDGE_BATCHING_WINDOW),
        &org.hub_account,
    );
    let interval = scaled.of(SCHEDULE);
    let started = Instant::now();
    let offset = scaled.of(Duration::from_secs_f64(hub.schedule_offset_min * 60.0));
    let ticker = lambda.schedule(started + offset, interval);
    // The rollout cannot take longer than this (a generous multiple of
    // what 2.1 requests an account need): the accounts not connected by
    // then count as failures.
    let expected = window.mul_f64(2.1 * n as f64 / f64::from(LIMIT)) + portal_test;
    let limit = started + (expected * 3).max(expected + interval * 4);
    let watch = tokio::spawn(watch(org.clone(), n, window / 60, limit));
    let gate = Arc::new(tokio::sync::Semaphore::new(hub.concurrency));
    // A member's Create in hub mode makes AWS calls only, which are not
    // scaled: nor are its function's timeout and margin.
    let budget = FUNCTION_TIMEOUT;
    let margin = cloudapps::config::Settings::default().deadline_margin;
    let rotation_cap = scaled.of(ROTATION_CAP);
    let busy = {
        let (org, lambda) = (org.clone(), lambda.clone());
        let first = org.members[0].clone();
        tokio::spawn(async move {
            let name = format!("aws-{first}");
            while !org
                .emulator
                .instances()
                .iter()
                .any(|i| i.name == name && i.status == "connected")
            {
                if Instant::now() >= limit {
                    return None;
                }
                tokio::time::sleep(window / 60).await;
            }
            eprintln!("  a rotation in {first}, the rollout under way");
            Some(
                hub_rotation::rotate(&org, &lambda, &first, margin, window / 60, rotation_cap)
                    .await,
            )
        })
    };
    let mut tasks = Vec::new();
    for account in org.members.clone() {
        let (gate, org, lambda) = (gate.clone(), org.clone(), lambda.clone());
        tasks.push(tokio::spawn(async move {
            let _slot = gate.acquire_owned().await.unwrap();
            let created = hub_org::stack_instance(&org, &account, budget, margin).await;
            // The connector nudges the hub as its Create ends; the bus rule
            // sends the nudge to the queue the registrar reads in batches.
            if created.ok {
                lambda.nudge(&account);
            }
            created
        }));
    }
    let mut created = Vec::new();
    for t in tasks {
        created.push(t.await.expect("a stack instance"));
    }
    let stack_set_done = Instant::now();
    eprintln!(
        "  stack set done in {:.1} portal min",
        (stack_set_done - started).as_secs_f64() / window.as_secs_f64()
    );
    let (connected_at, all_connected) = watch.await.unwrap();
    // The hub's table says connected once a listing showed each test's
    // result: the next runs record it.
    let mut table_connected = None;
    let mut rows_by_status = BTreeMap::new();
    let table_limit = Instant::now() + interval * 3;
    loop {
        let rows = org.hub.registrar.table.rows().await.unwrap();
        rows_by_status.clear();
        for r in rows.values() {
            *rows_by_status
                .entry(r.status.as_str().to_string())
                .or_insert(0) += 1;
        }
        let connected = rows
            .values()
            .filter(|r| r.status == Status::Connected)
            .count();
        if connected == n {
            table_connected = Some(Instant::now());
            break;
        }
        if Instant::now() >= table_limit || all_connected.is_none() {
            break;
        }
        tokio::time::sleep(interval / 20).await;
    }
    ticker.abort();
    lambda.drain().await;
    let requests = org.emulator.requests();
    eprintln!("  the organization's health: one run");
    let before = requests.len();
    let registrar = &org.hub.registrar;
    let deadline = Instant::now() + scaled.of(REGISTRAR_TIMEOUT);
    let (health, health_error) =
        match org_health::check(&registrar.portal, &registrar.table, deadline).await {
            Ok(h) => (Some(h), None),
            Err(e) => (None, Some(e.to_string())),
        };
    let health_received = org.emulator.requests().len() - before;
    let rotation_busy = busy.await.unwrap();
    let last = org.members[n - 1].clone();
    eprintln!("  a rotation in {last}, the rollout done");
    let rotation_idle =
        Some(hub_rotation::rotate(&org, &lambda, &last, margin, window / 60, rotation_cap).await);
    lambda.drain().await;
    let t0 = created.iter().map(|c| c.began).min().unwrap_or(started);
    let invocations = lambda.log.lock().unwrap().clone();
    let rollout = Rollout {
        n,
        window,
        portal_test,
        pace: org.pace,
        run_margin: org.run_margin,
        started,
        t0,
        created,
        connected_at,
        all_connected,
        table_connected,
        rows_by_status,
        requests,
        invocations,
        health,
        health_error,
        health_received,
        rotation_busy,
        rotation_idle,
        setup,
        wall: started.elapsed(),
    };
    drop(lambda);
    // The moto server stops with the last reference to the organization.
    drop(org);
    rollout
}

/// Polls the emulator every `poll` until every one of the `n` accounts'
/// instances is connected, or `limit`: when each was first seen connected.
async fn watch(
    org: Arc<Organization>,
    n: usize,
    poll: Duration,
    limit: Instant,
) -> (HashMap<String, Instant>, Option<Instant>) {
    let poll = poll.max(Duration::from_millis(50));
    let mut seen: HashMap<String, Instant> = HashMap::new();
    let mut said = Instant::now();
    loop {
        let now = Instant::now();
        for i in org.emulator.instances() {
            if i.status == "connected" {
                seen.entry(i.name).or_insert(now);
            }
        }
        if seen.len() >= n {
            return (seen, Some(now));
        }
        if now >= limit {
            return (seen, None);
        }
        if said.elapsed() >= Duration::from_secs(30) {
            said = Instant::now();
            let received = org.emulator.requests().len();
            eprintln!(
                "  {} of {n} connected; {received} portal requests so far",
                seen.len()
            );
        }
        tokio::time::sleep(poll).await;
    }
}
