//! API calls per Create and per rotation: every AWS call counted by a proxy
//! in front of moto, every portal request by the portal emulator.

use std::collections::BTreeMap;

use serde_json::json;

use crate::aws_proxy::{Call, Proxy, tally};
use crate::report::Report;
use crate::support::{self, Moto, World};

/// A world whose connector, rotation and portal emulator reach moto
/// through `proxy` (the test bed's own set-up calls go straight to moto).
async fn world_through(moto: &Moto, proxy: &Proxy) -> World {
    let mut w = World::on(moto).await;
    w.endpoint = proxy.url.clone();
    w.sdk = proxy.sdk_for(&w).await;
    w.use_portal(support::quick_portal(), support::PortalAuth::Token)
        .await;
    w
}

/// The function's own calls (signed with the function's credentials)
/// apart from the portal's, which its test signs with the connector's key.
fn split(calls: &[Call], function_key: &str) -> (BTreeMap<String, usize>, BTreeMap<String, usize>) {
    let (ours, portal): (Vec<&Call>, Vec<&Call>) =
        calls.iter().partition(|c| c.key == function_key);
    (tally(ours), tally(portal))
}

fn portal_requests(w: &World, from: usize) -> BTreeMap<String, usize> {
    let mut counts = BTreeMap::new();
    for r in w.emulator().requests().iter().skip(from) {
        let route = r.route.clone().unwrap_or_else(|| r.path.clone());
        *counts.entry(format!("{route} {}", r.status)).or_insert(0) += 1;
    }
    counts
}

fn total(counts: &BTreeMap<String, usize>) -> f64 {
    counts.values().sum::<usize>() as f64
}

pub async fn run(moto: &Moto, report: &mut Report) {
    eprintln!("API calls: a Create and a whole rotation, api mode");
    let proxy = Proxy::start(&moto.endpoint).await;
    let w = world_through(moto, &proxy).await;
    let key = w.credentials.0.clone();

    proxy.take();
    let create = w.event("create.json");
    w.ok(&create).await;
    let (aws, tested) = split(&proxy.take(), &key);
    let portal = portal_requests(&w, 0);
    report.add(
        "Create: AWS calls",
        total(&aws),
        "calls",
        None,
        "the connector's own calls, counted by a proxy in front of moto (api mode, a new trail)",
    );
    report.add(
        "Create: portal requests",
        total(&portal),
        "requests",
        None,
        "requests the portal emulator received (token auth, its test 200 ms)",
    );
    let create_detail =
        json!({"aws": aws, "portal": portal, "aws_calls_of_the_portals_test": tested});

    let function = support::register_rotation_function(&w).await;
    let token = "aaaaaaaa-bbbb-4ccc-8ddd-eeeeeeeeeeee";
    support::start_rotation(&w, &function, token).await;
    let before = w.emulator().requests().len();
    proxy.take();
    for step in ["createSecret", "setSecret", "testSecret", "finishSecret"] {
        support::rotation_step(&w, step, token)
            .await
            .unwrap_or_else(|e| panic!("{step}: {e}"));
    }
    let (aws, tested) = split(&proxy.take(), &key);
    let portal = portal_requests(&w, before);
    report.add(
        "rotation: AWS calls",
        total(&aws),
        "calls",
        None,
        "the four steps' own calls",
    );
    report.add(
        "rotation: portal requests",
        total(&portal),
        "requests",
        None,
        "the four steps: the new key handed to the portal and tested",
    );
    w.assert_no_leaks().await;
    report.detail(
        "api_calls",
        json!({"create": create_detail,
               "rotation": {"aws": aws, "portal": portal, "aws_calls_of_the_portals_test": tested}}),
    );
}
