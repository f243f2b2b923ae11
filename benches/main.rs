//! The benchmarks: cold start against a Python peer, peak memory, package
//! size, the key-readiness wait, org-scale throughput through one portal
//! (direct mode, and through the organization hub), and API calls per
//! Create and per rotation. Run by `./scripts/bench`
//! (see BENCHMARKS.md), which builds what they measure first. Prints a
//! table and writes it as JSON; every figure names its target.
//!
//! `cargo bench --bench benchmarks -- [--accounts N] [--concurrency C]
//! [--window-ms W] [--portal-test-s T] [--samples S] [--key-rounds R] [--only a,b]
//! [--hub-window-ms W] [--hub-reference R] [--hub-schedule-offset-min M] [--hub-concurrency C]
//! [--bins DIR] [--zips DIR] [--out FILE]`; sections: size, calls, memory,
//! cold, keys, org, hub. `--accounts` and `--portal-test-s` serve org and
//! hub alike; `--window-ms` and `--concurrency` are org's, `--hub-window-ms`
//! and `--hub-concurrency` hub's (member Creates in hub mode never wait for
//! the portal, so the stack set may run more at once).

use testbed as support;

mod aws_proxy;
mod calls;
mod cold_start;
mod hub_figures;
mod hub_lambda;
mod hub_org;
mod hub_rotation;
mod hub_scale;
mod key_wait;
mod org_scale;
mod report;
mod size;

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, SystemTime};

use serde_json::json;

use report::Report;
use support::Moto;

struct Args {
    sections: Vec<String>,
    scale: org_scale::Scale,
    hub: hub_scale::HubScale,
    samples: usize,
    key_rounds: usize,
    bins: PathBuf,
    zips: PathBuf,
    out: PathBuf,
}

const SECTIONS: [&str; 7] = ["size", "calls", "memory", "cold", "keys", "org", "hub"];

fn parse_args() -> Result<Args, String> {
    let root = support::root();
    let mut a = Args {
        sections: SECTIONS.iter().map(|s| s.to_string()).collect(),
        scale: org_scale::Scale {
            accounts: 100,
            portal_test: Duration::from_secs(60),
            concurrency: 10,
            window: Duration::from_millis(3000),
        },
        hub: hub_scale::HubScale {
            window: Duration::from_millis(20_000),
            reference: 100,
            schedule_offset_min: 0.0,
            concurrency: 50,
        },
        samples: 20,
        key_rounds: 3,
        bins: root.join("target/symbols"),
        zips: root.join("target/member"),
        out: root.join("target/bench/benchmarks.json"),
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        if flag == "--bench" {
            continue; // cargo bench passes it
        }
        let mut value = || it.next().ok_or(format!("{flag} needs a value"));
        let number = |v: String| {
            v.parse::<usize>()
                .ok()
                .filter(|n| *n > 0)
                .ok_or(format!("{flag} takes a whole number > 0, not {v:?}"))
        };
        match flag.as_str() {
            "--accounts" => a.scale.accounts = number(value()?)?,
            "--concurrency" => a.scale.concurrency = number(value()?)?,
            "--portal-test-s" => {
                a.scale.portal_test = Duration::from_secs(number(value()?)? as u64)
            }
            "--window-ms" => a.scale.window = Duration::from_millis(number(value()?)? as u64),
            "--hub-window-ms" => a.hub.window = Duration::from_millis(number(value()?)? as u64),
            "--hub-reference" => a.hub.reference = number(value()?)?,
            "--hub-concurrency" => a.hub.concurrency = number(value()?)?,
            "--hub-schedule-offset-min" => {
                let v = value()?;
                a.hub.schedule_offset_min = v
                    .parse::<f64>()
                    .ok()
                    .filter(|m| (0.0..=15.0).contains(m))
                    .ok_or(format!("{flag} takes minutes from 0 to 15, not {v:?}"))?;
            }
            "--samples" => a.samples = number(value()?)?,
            "--key-rounds" => a.key_rounds = number(value()?)?,
            "--bins" => a.bins = value()?.into(),
            "--zips" => a.zips = value()?.into(),
            "--out" => a.out = value()?.into(),
            "--only" => {
                let v = value()?;
                a.sections = v.split(',').map(|s| s.trim().to_string()).collect();
                if let Some(bad) = a.sections.iter().find(|s| !SECTIONS.contains(&s.as_str())) {
                    return Err(format!(
                        "--only: no section {bad:?}; sections: {}",
                        SECTIONS.join(",")
                    ));
                }
            }
            _ => return Err(format!("unknown argument {flag:?}")),
        }
    }
    Ok(a)
}

fn run_facts() -> serde_json::Value {
    let text = |cmd: &str, args: &[&str]| {
        Command::new(cmd)
            .args(args)
            .current_dir(support::root())
            .output()
            .ok()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
            .unwrap_or_default()
    };
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .unwrap_or_default()
        .lines()
        .find_map(|l| {
            l.strip_prefix("model name")
                .map(|v| v.trim_start_matches([' ', '\t', ':']).to_string())
        })
        .unwrap_or_default();
    json!({
        "date": httpdate::fmt_http_date(SystemTime::now()),
        "commit": text("git", &["rev-parse", "--short=12", "HEAD"]),
        "cpus": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0),
        "cpu": cpu,
        "rustc": text("rustc", &["--version"]),
    })
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("benchmarks: {e}");
            std::process::exit(2);
        }
    };
    let on = |s: &str| args.sections.iter().any(|x| x == s);
    for f in cold_start::FUNCTIONS {
        if (on("cold") || on("memory") || on("size")) && !args.bins.join(f).exists() {
            eprintln!(
                "benchmarks: {} is missing: build it with `cargo build --profile symbols -p cloudapps --bins` (./scripts/bench does)",
                args.bins.join(f).display()
            );
            std::process::exit(2);
        }
    }
    let moto = Moto::shared();
    let mut report = Report::default();
    if on("size") {
        size::run(&args.bins, &args.zips, &mut report);
    }
    if on("calls") {
        calls::run(moto, &mut report).await;
    }
    if on("memory") {
        cold_start::memory(moto, &args.bins, &mut report).await;
    }
    if on("cold") {
        cold_start::cold_start(moto, &args.bins, args.samples, &mut report).await;
    }
    if on("keys") {
        key_wait::run(moto, args.key_rounds, &mut report).await;
    }
    if on("org") {
        org_scale::run(&args.scale, &mut report).await;
    }
    if on("hub") {
        let (main, small) = hub_scale::run(&args.scale, &args.hub).await;
        hub_figures::add(&main, small.as_ref(), &args.hub, &mut report);
    }
    let document = report.json(run_facts());
    if let Some(dir) = args.out.parent() {
        std::fs::create_dir_all(dir).unwrap();
    }
    std::fs::write(&args.out, serde_json::to_string_pretty(&document).unwrap()).unwrap();
    println!("{}", report.table());
    println!("\nJSON: {}", args.out.display());
    let missed: Vec<&str> = report
        .figures
        .iter()
        .filter(|f| f.met() == Some(false))
        .map(|f| f.name.as_str())
        .collect();
    if !missed.is_empty() {
        println!("missed targets: {}", missed.join("; "));
    }
}
