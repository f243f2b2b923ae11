//! The figures of hub scale (see hub_scale.rs), and the same figures of
//! direct mode from org scale's details, when it ran in the same invocation.

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::{Value, json};

use crate::hub_scale::{HubScale, Rollout};
use crate::org_scale::LIMIT;
use crate::report::{Report, Target};

/// The sample at quantile `q` (nearest rank); 0 for none.
pub fn quantile(samples: &[f64], q: f64) -> f64 {
    let mut s = samples.to_vec();
    s.sort_by(f64::total_cmp);
    if s.is_empty() {
        return 0.0;
    }
    s[((q * s.len() as f64).ceil() as usize).clamp(1, s.len()) - 1]
}

/// What a rollout comes to.
struct Measured {
    failed_creates: usize,
    not_queued: usize,
    never_connected: usize,
    /// First Create's start → every account connected, per the emulator.
    total: Option<Duration>,
    /// Admitted requests up to the last test's start, and the bound the
    /// rate limit sets for them alone.
    to_last_test: usize,
    rate_bound: Duration,
    /// The bound with the accounts' arrival: no hub can call the portal
    /// for an account before its Create has answered.
    arrival_bound: Duration,
    /// The larger of the two: the lower bound the figure is held to.
    bound: Duration,
    /// Admitted requests up to every account connected, by route.
    admitted: usize,
    routes: BTreeMap<String, usize>,
    listings: usize,
    /// Admitted before the health run, and throttled (429) ones.
    admitted_all: usize,
    throttled: usize,
    create_ms: Vec<f64>,
    /// A member's Create answered → its instance connected (portal minutes).
    waits: Vec<f64>,
    /// Admitted requests a window, first to last request before the end.
    per_window: f64,
}

fn measure(r: &Rollout) -> Measured {
    let end = r.all_connected;
    let portal: Vec<&portal_emulator::Received> =
        r.requests.iter().filter(|q| q.route.is_some()).collect();
    let admitted = |q: &&&portal_emulator::Received| q.status != 429;
    let until = |at| portal.iter().filter(admitted).filter(move |q| q.at <= at);
    let last_test = end.and_then(|e| {
        until(e)
            .filter(|q| q.route.as_deref() == Some("test"))
            .map(|q| q.at)
            .max()
    });
    let to_last_test = last_test.map_or(0, |t| until(t).count());
    let windows = to_last_test.div_ceil(LIMIT as usize).saturating_sub(1) as u32;
    let mut routes = BTreeMap::new();
    let mut first_last = (None, None);
    if let Some(e) = end {
        for q in until(e) {
            *routes.entry(q.route.clone().unwrap()).or_insert(0) += 1;
            first_last.0 = Some(
                first_last
                    .0
                    .map_or(q.at, |f: std::time::Instant| f.min(q.at)),
            );
            first_last.1 = Some(
                first_last
                    .1
                    .map_or(q.at, |l: std::time::Instant| l.max(q.at)),
            );
        }
    }
    let admitted_end: usize = routes.values().sum();
    let per_window = match first_last {
        (Some(f), Some(l)) if l > f => {
            (admitted_end - 1) as f64 * r.window.as_secs_f64() / (l - f).as_secs_f64()
        }
        _ => 0.0,
    };
    let names_connected = |c: &crate::hub_org::Created| {
        r.connected_at
            .get(&format!("aws-{}", c.account))
            .map(|at| r.minutes(at.saturating_duration_since(c.ended)))
    };
    let rate_bound = r.window * windows + r.portal_test;
    let arrival_bound = arrival_bound(r);
    Measured {
        failed_creates: r.created.iter().filter(|c| !c.ok).count(),
        not_queued: r.created.iter().filter(|c| c.ok && !c.queued).count(),
        never_connected: r.n.saturating_sub(r.connected_at.len()),
        total: end.map(|e| e - r.t0),
        to_last_test,
        rate_bound,
        arrival_bound,
        bound: rate_bound.max(arrival_bound),
        listings: routes.get("find").copied().unwrap_or(0),
        admitted: admitted_end,
        routes,
        admitted_all: portal.iter().filter(admitted).count(),
        throttled: portal.iter().filter(|q| q.status == 429).count(),
        create_ms: r
            .created
            .iter()
            .map(|c| (c.ended - c.began).as_secs_f64() * 1e3)
            .collect(),
        waits: r.created.iter().filter_map(names_connected).collect(),
        per_window,
    }
}

/// Every member's Create as `[began, ms]`: seconds from the first one's
/// start, and its time, in the order they began.
fn creates(r: &Rollout) -> Vec<[f64; 2]> {
    let mut all: Vec<[f64; 2]> = r
        .created
        .iter()
        .map(|c| {
            let began = c.began.saturating_duration_since(r.t0).as_secs_f64();
            let ms = (c.ended - c.began).as_secs_f64() * 1e3;
            [(began * 10.0).round() / 10.0, ms.round()]
        })
        .collect();
    all.sort_by(|a, b| a[0].total_cmp(&b[0]));
    all
}

/// The least time from t0 to every account connected, given when each
/// member's Create answered: after the k-th of n accounts arrives, the 2
/// requests (create, test) of each of the n − k still to come pass the
/// portal at `LIMIT` a window at best, then the last test runs.
fn arrival_bound(r: &Rollout) -> Duration {
    let mut arrivals: Vec<Duration> = r
        .created
        .iter()
        .filter(|c| c.ok)
        .map(|c| c.ended.saturating_duration_since(r.t0))
        .collect();
    arrivals.sort();
    let n = arrivals.len();
    let limit = LIMIT as usize;
    arrivals
        .iter()
        .enumerate()
        .map(|(k, at)| *at + r.window * ((2 * (n - k) - 1) / limit) as u32)
        .max()
        .map_or(Duration::ZERO, |d| d + r.portal_test)
}

/// The registrar's runs, in portal minutes from t0, and the time within
/// [t0, end] that no run covered.
fn runs(r: &Rollout) -> (Vec<Value>, f64) {
    let mut ran: Vec<&crate::hub_lambda::Invocation> =
        r.invocations.iter().filter(|i| i.run.is_some()).collect();
    ran.sort_by_key(|i| i.started);
    let end = r.all_connected.map_or(0.0, |e| r.at(e));
    let (mut covered, mut reach) = (0.0, 0.0f64);
    let mut list = Vec::new();
    for i in ran {
        let (s, e) = (r.at(i.started), r.at(i.ended));
        let (cs, ce) = (s.max(reach).min(end), e.min(end));
        if ce > cs {
            covered += ce - cs;
        }
        reach = reach.max(e);
        list.push(json!({
            "by": i.kind,
            "start_min": s,
            "end_min": e,
            "waited_for_a_slot_min": r.minutes(i.started - i.queued),
            "report": i.run,
        }));
    }
    (list, (end - covered).max(0.0))
}

pub fn add(main: &Rollout, small: Option<&Rollout>, hub: &HubScale, report: &mut Report) {
    let n = main.n;
    let m = measure(main);
    let s = small.map(|r| (r, measure(r)));
    if let Some((r, sm)) = &s {
        figures(r, sm, report, false);
    }
    figures(main, &m, report, true);
    let p99 = quantile(&m.create_ms, 0.99);
    if let Some((r, sm)) = &s {
        let reference = quantile(&sm.create_ms, 0.99);
        report.add(
            format!("hub: member Create p99, {n} ÷ {} accounts", r.n),
            p99 / reference,
            "×",
            Some(Target::AtMost(1.2)),
            format!(
                "{p99:.0} ms at {n} accounts, {reference:.0} ms at {}; no Create waits for the portal",
                r.n
            ),
        );
    }
    let health_requests = main.health.as_ref().map_or(0, |h| h.requests);
    report.add(
        format!("hub ({n} accounts): portal requests per org-health run"),
        health_requests as f64,
        "requests",
        Some(Target::AtMost(n.div_ceil(100) as f64)),
        format!(
            "one paged listing (100 a page); {} received by the emulator; direct mode: 2 per account per run (PortalStatus, PortalActivity), hourly: {} an hour",
            main.health_received,
            2 * n
        ),
    );
    let direct = report.details.get(&format!("org_scale_{n}")).cloned();
    let hub_minutes = m.total.map(|t| main.minutes(t));
    if let (Some(d), Some(h)) = (&direct, hub_minutes) {
        let direct_minutes = d["total_real_minutes"].as_f64().unwrap_or(0.0);
        report.add(
            format!("hub vs direct ({n} accounts): total time, hub ÷ direct"),
            h / direct_minutes,
            "×",
            None,
            format!("{h:.1} against {direct_minutes:.1} real minutes, in the same run"),
        );
    }
    for (name, r, m) in s
        .iter()
        .map(|(r, sm)| ("hub_scale_reference", *r, sm))
        .chain([("hub_scale", main, &m)])
    {
        let key = format!("{name}_{}", r.n);
        report.detail(&key, details(r, m, hub));
    }
    if let Some(d) = direct {
        report.detail(&format!("hub_vs_direct_{n}"), side_by_side(main, &m, &d));
    }
}

fn figures(r: &Rollout, m: &Measured, report: &mut Report, main: bool) {
    let n = r.n;
    let failures = m.failed_creates + m.never_connected;
    let minutes = m.total.map_or(f64::NAN, |t| r.minutes(t));
    let target = |t: Target| main.then_some(t);
    report.add(
        format!("hub ({n} accounts): failures"),
        failures as f64,
        "accounts",
        Some(Target::AtMost(0.0)),
        format!(
            "Creates not answered SUCCESS ({}) and accounts not connected in the portal ({}); {} answered without PortalStatus queued",
            m.failed_creates, m.never_connected, m.not_queued
        ),
    );
    report.add(
        format!("hub ({n} accounts): total time ÷ rate-limit bound"),
        m.total.map_or(f64::NAN, |t| t.as_secs_f64() / m.bound.as_secs_f64()),
        "×",
        target(Target::AtMost(1.05)),
        format!(
            "{minutes:.1} real minutes from the first Create's start to every account connected (the emulator), against the larger of (⌈{} ÷ {LIMIT}⌉ − 1) windows for the requests admitted up to the last test's start, plus that test ({:.0} s) = {:.1} real minutes, and the same for 2 requests an account counted from each Create's answer (the stack set's pace: AWS calls are not scaled) = {:.1} real minutes",
            m.to_last_test,
            r.minutes(r.portal_test) * 60.0,
            r.minutes(m.rate_bound),
            r.minutes(m.arrival_bound)
        ),
    );
    report.add(
        format!("hub ({n} accounts): total, real time"),
        minutes,
        "min",
        target(Target::AtMost(0.07 * n as f64)).filter(|_| n >= 1000),
        format!(
            "at 30 portal requests per real minute (the window ×{:.0}); the bench took {:.1} min of wall time, the stack set's Creates done at {:.1} real min",
            60.0 / r.window.as_secs_f64(),
            r.wall.as_secs_f64() / 60.0,
            r.created.iter().map(|c| r.at(c.ended)).fold(0.0, f64::max)
        ),
    );
    if !main {
        report.add(
            format!("hub ({n} accounts): member Create p99"),
            quantile(&m.create_ms, 0.99),
            "ms",
            None,
            format!("median {:.0} ms", quantile(&m.create_ms, 0.5)),
        );
        return;
    }
    report.add(
        format!("hub ({n} accounts): portal requests per account"),
        m.admitted as f64 / n as f64,
        "requests",
        None,
        format!(
            "admitted up to every account connected, by route: {:?}; {} before the health run",
            m.routes, m.admitted_all
        ),
    );
    report.add(
        format!("hub ({n} accounts): listings' share of the portal requests"),
        100.0 * m.listings as f64 / m.admitted.max(1) as f64,
        "%",
        Some(Target::AtMost(5.0)),
        "listing pages (find) over the requests admitted up to every account connected; HUB_LIST_SHARE_PERCENT=5".to_string(),
    );
    report.add(
        format!("hub ({n} accounts): throttled portal requests"),
        m.throttled as f64,
        "requests",
        Some(Target::AtMost(0.0)),
        format!(
            "429s the hub met, paced at {:?} a request at most (1 s scaled), within the budget kept by the answers; {:.1} requests admitted a window, first to last",
            r.pace, m.per_window
        ),
    );
    report.add(
        format!("hub ({n} accounts): member Create p99"),
        quantile(&m.create_ms, 0.99),
        "ms",
        None,
        format!(
            "median {:.0} ms, max {:.0} ms; the connector's Create in hub mode, AWS side only",
            quantile(&m.create_ms, 0.5),
            quantile(&m.create_ms, 1.0),
        ),
    );
    for (when, rotated) in [
        ("the rollout under way", &r.rotation_busy),
        ("the rollout done", &r.rotation_idle),
    ] {
        let Some(rotated) = rotated else { continue };
        report.add(
            format!("hub ({n} accounts): a rotation's wait for the hub, {when}"),
            rotated.waited.map_or(f64::NAN, |w| r.minutes(w)),
            "min",
            None,
            format!(
                "real minutes from the member's nudge (its pending key set) to the hub's confirmation on its secret, what testSecret waits for (the rotation function's timeout: 15 min); testSecret then: {}",
                match &rotated.test_secret {
                    Ok(_) => "passed".to_string(),
                    Err(e) => format!("failed ({e})"),
                }
            ),
        );
    }
    report.add(
        format!("hub ({n} accounts): a member's wait for the hub, max"),
        quantile(&m.waits, 1.0),
        "min",
        None,
        format!(
            "real minutes from its Create's answer to its instance connected; median {:.1}, p90 {:.1}",
            quantile(&m.waits, 0.5),
            quantile(&m.waits, 0.9)
        ),
    );
}

fn details(r: &Rollout, m: &Measured, hub: &HubScale) -> Value {
    let (runs, idle) = runs(r);
    let kinds = |k: &str| r.invocations.iter().filter(|i| i.kind == k).count();
    let errors: Vec<&String> = r
        .invocations
        .iter()
        .filter_map(|i| i.error.as_ref())
        .collect();
    let mut reasons: Vec<&String> = r
        .created
        .iter()
        .filter(|c| !c.ok)
        .map(|c| &c.reason)
        .collect();
    reasons.dedup();
    json!({
        "accounts": r.n,
        "window_ms": r.window.as_millis() as u64,
        "limit": LIMIT,
        "pace_ms": r.pace.as_secs_f64() * 1e3,
        "run_margin_ms": r.run_margin.as_secs_f64() * 1e3,
        "stack_set_start_to_first_create_ms": (r.t0 - r.started).as_secs_f64() * 1e3,
        "portal_test_ms": r.portal_test.as_millis() as u64,
        "schedule_offset_min": hub.schedule_offset_min,
        "stack_set_concurrency": hub.concurrency,
        "failed_creates": m.failed_creates,
        "failure_reasons": reasons.iter().take(5).collect::<Vec<_>>(),
        "never_connected": m.never_connected,
        "total_real_minutes": m.total.map(|t| r.minutes(t)),
        "bound_real_minutes": r.minutes(m.bound),
        "rate_bound_real_minutes": r.minutes(m.rate_bound),
        "arrival_bound_real_minutes": r.minutes(m.arrival_bound),
        "requests_to_last_test": m.to_last_test,
        "requests_admitted_to_all_connected": m.admitted,
        "routes_to_all_connected": m.routes,
        "requests_admitted_before_health": m.admitted_all,
        "throttled": m.throttled,
        "admitted_per_window": m.per_window,
        "create_ms": {"median": quantile(&m.create_ms, 0.5), "p90": quantile(&m.create_ms, 0.9),
            "p99": quantile(&m.create_ms, 0.99), "max": quantile(&m.create_ms, 1.0)},
        // Every Create: when it began (s from the first one's start) and
        // how long it took (ms), in the order they began.
        "creates": creates(r),
        "wait_for_the_hub_real_min": {"median": quantile(&m.waits, 0.5),
            "p90": quantile(&m.waits, 0.9), "max": quantile(&m.waits, 1.0)},
        "stack_set_done_real_min": r.created.iter().map(|c| r.at(c.ended)).fold(0.0, f64::max),
        "table_connected_real_min": r.table_connected.map(|t| r.at(t)),
        "table_rows_by_status": r.rows_by_status,
        "invocations": {"schedule": kinds("schedule"), "nudge": kinds("nudge"), "continue": kinds("continue"), "errors": errors},
        "runs": runs,
        "no_run_under_way_real_min": idle,
        "org_health": r.health,
        "org_health_error": r.health_error,
        "org_health_requests_received": r.health_received,
        "rotation_busy": r.rotation_busy.as_ref().map(|x| x.json(r.window)),
        "rotation_idle": r.rotation_idle.as_ref().map(|x| x.json(r.window)),
        "setup_s": r.setup.as_secs_f64(),
        "wall_s": r.wall.as_secs_f64(),
    })
}

fn side_by_side(r: &Rollout, m: &Measured, direct: &Value) -> Value {
    let n = r.n as f64;
    let answered = direct["portal_requests_answered"].as_f64().unwrap_or(0.0);
    let finds = direct["routes"]["find"].as_f64().unwrap_or(0.0);
    json!({
        "hub": {
            "real_minutes": m.total.map(|t| r.minutes(t)),
            "requests_per_account": m.admitted as f64 / n,
            "listing_share_percent": 100.0 * m.listings as f64 / m.admitted.max(1) as f64,
            "throttled": m.throttled,
            "ratio_to_bound": m.total.map(|t| t.as_secs_f64() / m.bound.as_secs_f64()),
            "health_requests_per_run": r.health.as_ref().map(|h| h.requests),
        },
        "direct": {
            "real_minutes": direct["total_real_minutes"],
            "requests_per_account": answered / n,
            "listing_share_percent": 100.0 * finds / answered.max(1.0),
            "throttled": direct["portal_requests_throttled"],
            "ratio_to_bound": direct["total_ms"].as_f64().unwrap_or(0.0)
                / direct["bound_ms"].as_f64().unwrap_or(f64::MAX),
            "health_requests_per_run": 2.0 * n,
        },
    })
}
