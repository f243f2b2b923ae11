//! Org scale: N accounts connect through one portal emulator that allows
//! 30 requests per rolling window, as a stack set rolls the connector out
//! (at most `concurrency` accounts at a time: its MaxConcurrentCount).
//! Time is scaled: the window stands for the portal's minute, and every
//! timing of the connector that the portal's minute bounds (its retry
//! pauses, its test polls, the portal's test, the function's 5-minute
//! timeout and its margin) is scaled by the same factor.

use std::sync::Arc;
use std::time::{Duration, Instant};

use cloudapps::config::Settings;
use cloudapps::deps::Deps;
use cloudapps::portal::{ApiSettings, Portal, Timings};
use serde_json::json;

use crate::report::{Report, Target};
use crate::support::{self, Moto, World};

/// The portal's budget: 30 requests per rolling minute per tenant.
pub const LIMIT: u32 = 30;
/// The connector function's timeout in template.yaml.
const FUNCTION_TIMEOUT: Duration = Duration::from_secs(300);

pub struct Scale {
    pub accounts: usize,
    /// How long the portal's "Test API" runs ("minutes", says the contract).
    pub portal_test: Duration,
    pub concurrency: usize,
    pub window: Duration,
}

struct Account {
    name: String,
    ok: bool,
    reason: String,
    began: Instant,
    ended: Instant,
}

pub async fn run(scale: &Scale, report: &mut Report) {
    // A moto server of its own, without the AWS managed policies (the
    // Create attaches none): each new account costs moto ~1,000 policies
    // otherwise, and moto (one Python process) would be the bottleneck,
    // where in AWS every account's calls are independent of the others'.
    let moto: &'static Moto = Box::leak(Box::new(Moto::start_with(&[(
        "MOTO_IAM_LOAD_MANAGED_POLICIES",
        "false",
    )])));
    let factor = scale.window.as_secs_f64() / 60.0;
    let scaled = move |d: Duration| d.mul_f64(factor);
    eprintln!(
        "org scale: {} accounts, {} at a time, {LIMIT} portal requests per {:?} (the minute ×{factor:.3})",
        scale.accounts, scale.concurrency, scale.window
    );
    let token = format!("{:032x}", fastrand::u128(..));
    let emulator = portal_emulator::Emulator::start(portal_emulator::Config {
        api_token: Some(token.clone()),
        limit: LIMIT,
        window: scale.window,
        test_duration: scaled(scale.portal_test),
        aws_endpoint: Some(moto.endpoint.clone()),
        aws_region: support::REGION.to_string(),
        ..portal_emulator::Config::default()
    })
    .await
    .unwrap();
    let url = emulator.url.clone();
    let credentials = json!({ "Token": token });
    let gate = Arc::new(tokio::sync::Semaphore::new(scale.concurrency));
    let budget = scaled(FUNCTION_TIMEOUT);
    let started = Instant::now();
    let mut tasks = Vec::new();
    for i in 0..scale.accounts {
        let (gate, url, credentials) = (gate.clone(), url.clone(), credentials.clone());
        tasks.push(tokio::spawn(async move {
            let _slot = gate.acquire_owned().await.unwrap();
            let began = Instant::now();
            let account = format!("{:012}", 300_000_000_000u64 + i as u64);
            // As the template names it: one instance per account.
            let name = format!("aws-{account}");
            let stack_id = format!(
                "arn:aws:cloudformation:{}:{account}:stack/StackSet-cloudapps-connector-{:08x}/{:08x}-0000-4000-8000-{:012x}",
                support::REGION,
                fastrand::u32(..),
                fastrand::u32(..),
                i
            );
            let mut w = World::in_account(moto, &account, &stack_id).await;
            w.connect_portal(&url, &credentials, "{}").await;
            // The shipped client timings (Timings::default), scaled.
            let shipped = Timings::default();
            let portal = ApiSettings {
                timings: Timings {
                    retry_first: scaled(shipped.retry_first),
                    retry_max: scaled(shipped.retry_max),
                    test_first_poll: scaled(shipped.test_first_poll),
                    test_max_poll: scaled(shipped.test_max_poll),
                    ..shipped
                },
                login_url: url.clone(),
                ..ApiSettings::new(&url, &w.portal_secret)
            };
            let settings = Settings {
                deadline_margin: scaled(Settings::default().deadline_margin),
                ..support::test_settings()
            };
            let portal = Portal::api(portal, aws_sdk_secretsmanager::Client::new(&w.sdk)).unwrap();
            w.deps = Deps::new(&w.sdk, settings, portal).unwrap();
            let mut create = w.event("create.json");
            create["ResourceProperties"]["ConnectorName"] = json!(name);
            let (answer, _) = w.run_with_budget(&create, budget).await;
            Account {
                name,
                ok: answer.status == "SUCCESS",
                reason: answer.reason.unwrap_or_default(),
                began,
                ended: Instant::now(),
            }
        }));
    }
    let mut outcomes = Vec::new();
    for t in tasks {
        outcomes.push(t.await.expect("an account's task"));
    }
    let total = started.elapsed();
    let failures: Vec<&String> = outcomes
        .iter()
        .filter(|o| !o.ok)
        .map(|o| &o.reason)
        .collect();
    let connected = emulator
        .instances()
        .iter()
        .filter(|i| i.status == "connected")
        .count();
    let requests = emulator.requests();
    let portal: Vec<_> = requests.iter().filter(|r| r.route.is_some()).collect();
    let admitted = portal.iter().filter(|r| r.status != 429).count();
    let throttled = portal.len() - admitted;
    // Answered requests by route (`find`: the listings that look for an
    // account's instance by its name).
    let mut routes = std::collections::BTreeMap::new();
    for r in portal.iter().filter(|r| r.status != 429) {
        *routes
            .entry(r.route.clone().unwrap_or_default())
            .or_insert(0usize) += 1;
    }
    // With a rolling window, `admitted` requests need at least
    // (⌈admitted / limit⌉ − 1) windows between the first and the last.
    let windows = admitted.div_ceil(LIMIT as usize).saturating_sub(1);
    let bound = scale.window * windows as u32;
    let first = portal.iter().map(|r| r.at).min();
    let last = portal.iter().map(|r| r.at).max();
    let span = match (first, last) {
        (Some(a), Some(b)) => b - a,
        _ => Duration::ZERO,
    };
    // Answered and throttled requests in each window from the start: where
    // the budget went unused.
    let buckets = (total.as_secs_f64() / scale.window.as_secs_f64()).ceil() as usize;
    let mut per_window = vec![(0usize, 0usize); buckets.max(1)];
    for r in &portal {
        let i = ((r.at.saturating_duration_since(started)).as_secs_f64()
            / scale.window.as_secs_f64()) as usize;
        let slot = &mut per_window[i.min(buckets.max(1) - 1)];
        if r.status == 429 {
            slot.1 += 1;
        } else {
            slot.0 += 1;
        }
    }
    let longest = outcomes
        .iter()
        .map(|o| o.ended - o.began)
        .max()
        .unwrap_or_default();
    // Each account's two phases: its AWS work (start → its first portal
    // request) and its portal work (→ its answer). A request names its
    // account by the instance id in its path, or the connector name in its body.
    let names: Vec<(String, String)> = emulator
        .instances()
        .into_iter()
        .map(|i| (i.id, i.name))
        .collect();
    let account_of = |r: &portal_emulator::Received| {
        names
            .iter()
            .find(|(id, _)| r.path.contains(&format!("/{id}/")))
            .map(|(_, name)| name.clone())
            .or_else(|| {
                let at = r.body.find("aws-")?;
                Some(r.body[at..at + 16.min(r.body.len() - at)].to_string())
            })
    };
    let mut first_request = std::collections::HashMap::new();
    for r in &portal {
        if let Some(name) = account_of(r) {
            first_request.entry(name).or_insert(r.at);
        }
    }
    let (mut aws_phase, mut portal_phase) = (Vec::new(), Vec::new());
    for o in &outcomes {
        if let Some(at) = first_request.get(&o.name) {
            aws_phase.push((*at - o.began).as_secs_f64() * 1e3);
            portal_phase.push((o.ended - *at).as_secs_f64() * 1e3);
        }
    }
    let (aws_median, aws_p90) = crate::report::median_p90(&aws_phase);
    let (portal_median, portal_p90) = crate::report::median_p90(&portal_phase);
    let max = |v: &[f64]| v.iter().copied().fold(0.0, f64::max);
    let real = |d: Duration| d.as_secs_f64() / factor / 60.0;
    let n = scale.accounts;
    report.add(
        format!("org scale ({n} accounts): failures"),
        failures.len() as f64,
        "accounts",
        Some(Target::AtMost(0.0)),
        format!(
            "Creates that did not answer SUCCESS; {} at a time (the stack set's MaxConcurrentCount)",
            scale.concurrency
        ),
    );
    report.add(
        format!("org scale ({n} accounts): portal requests per account"),
        admitted as f64 / n as f64,
        "requests",
        None,
        format!("answered requests over accounts; besides, {throttled} were throttled (429)"),
    );
    report.add(
        format!("org scale ({n} accounts): total time ÷ rate-limit bound"),
        total.as_secs_f64() / bound.as_secs_f64().max(f64::MIN_POSITIVE),
        "×",
        Some(Target::AtMost(1.1)),
        format!(
            "{:.1} s from the first account's start to the last one's answer, against (⌈{admitted} ÷ {LIMIT}⌉ − 1) windows of {:?} = {:.1} s; portal requests spanned {:.1} s",
            total.as_secs_f64(),
            scale.window,
            bound.as_secs_f64(),
            span.as_secs_f64()
        ),
    );
    report.add(
        format!("org scale ({n} accounts): total, real time"),
        real(total),
        "min",
        None,
        format!(
            "the run at 30 requests per real minute; the longest Create took {:.1} real min (the function's timeout: {} min)",
            real(longest),
            FUNCTION_TIMEOUT.as_secs() / 60
        ),
    );
    let mut reasons: Vec<&String> = failures.clone();
    reasons.sort();
    reasons.dedup();
    report.detail(
        &format!("org_scale_{n}"),
        json!({
            "accounts": n,
            "concurrency": scale.concurrency,
            "window_ms": scale.window.as_millis() as u64,
            "limit": LIMIT,
            "portal_test_ms": scaled(scale.portal_test).as_millis() as u64,
            "function_budget_ms": budget.as_millis() as u64,
            "failures": failures.len(),
            "instances_connected": connected,
            "failure_reasons": reasons.iter().take(5).collect::<Vec<_>>(),
            "portal_requests_answered": admitted,
            "portal_requests_throttled": throttled,
            "routes": routes,
            "total_ms": total.as_millis() as u64,
            "bound_ms": bound.as_millis() as u64,
            "portal_span_ms": span.as_millis() as u64,
            "longest_create_ms": longest.as_millis() as u64,
            "total_real_minutes": real(total),
            "answered_and_throttled_per_window": per_window,
            "aws_phase_ms": {"median": aws_median, "p90": aws_p90, "max": max(&aws_phase)},
            "portal_phase_ms": {"median": portal_median, "p90": portal_p90, "max": max(&portal_phase)},
        }),
    );
}
