//! Key readiness: how long our polling waits for a new access key that AWS
//! refuses for a while after its creation, against that while itself.

use std::time::{Duration, Instant};

use cloudapps::access_key;
use cloudapps::access_key::Readiness;
use cloudapps::names::UserRef;
use serde_json::json;

use crate::aws_proxy::Proxy;
use crate::report::{Report, Target, median_p90};
use crate::support::{Moto, World};

/// The refusal delays: real IAM takes from under a second to about ten.
pub const DELAYS_MS: [u64; 6] = [500, 1000, 2000, 3500, 6000, 10000];

pub async fn run(moto: &Moto, rounds: usize, report: &mut Report) {
    eprintln!(
        "key readiness: {rounds} keys per delay, delays {DELAYS_MS:?} ms, the shipped poll settings"
    );
    let proxy = Proxy::start(&moto.endpoint).await;
    let w = World::on(moto).await;
    let through = proxy.sdk_for(&w).await;
    let readiness = Readiness::default();
    let user = UserRef {
        arn: format!("arn:aws:iam::{}:user/bench/key-wait", w.account),
        path: "/bench/".into(),
        name: "key-wait".into(),
    };
    w.iam
        .create_user()
        .user_name(&user.name)
        .path(&user.path)
        .send()
        .await
        .unwrap();
    let (mut ratios, mut rows, mut added) = (Vec::new(), Vec::new(), Vec::new());
    for delay_ms in DELAYS_MS {
        let delay = Duration::from_millis(delay_ms);
        let (mut waits, mut polls) = (Vec::new(), Vec::new());
        for _ in 0..rounds {
            proxy.take();
            let key = access_key::create(&w.iam, &user).await.unwrap();
            let created = Instant::now();
            proxy.block_until(&key.access_key_id, created + delay);
            access_key::wait_until_authenticates(
                &through,
                &key,
                &user,
                &w.account,
                &readiness,
                Instant::now() + Duration::from_secs(60),
            )
            .await
            .expect("the key authenticates once the delay is over");
            let waited = created.elapsed();
            let calls = proxy.take();
            polls.push(json!({
                "polls": calls.len(),
                "refused": calls.iter().filter(|c| c.refused).count(),
            }));
            waits.push(waited.as_secs_f64() * 1e3);
            ratios.push(waited.as_secs_f64() / delay.as_secs_f64());
            added.push((waited.as_secs_f64() - delay.as_secs_f64()) * 1e3);
            access_key::delete(&w.iam, &user.name, &key.access_key_id)
                .await
                .unwrap();
        }
        let (median, p90) = median_p90(&waits);
        rows.push(json!({"delay_ms": delay_ms, "waited_ms": waits, "median_ms": median, "p90_ms": p90, "polls": polls,
            "median_ratio": median / delay_ms as f64}));
        eprintln!("  delay {delay_ms} ms: waited {median:.0} ms (median), {p90:.0} ms (p90)");
    }
    let (median, p90) = median_p90(&ratios);
    report.add(
        "key readiness: wait ÷ delay, median",
        median,
        "×",
        Some(Target::AtMost(1.5)),
        format!(
            "key created → our poll sees it authenticate, over the delay it was refused for; {} keys, delays 0.5–10 s; p90 {p90:.2}×",
            ratios.len()
        ),
    );
    let (added_median, added_p90) = median_p90(&added);
    report.add(
        "key readiness: added wait, median",
        added_median,
        "ms",
        None,
        format!("waited minus the delay, over the same keys; p90 {added_p90:.0} ms"),
    );
    report.detail(
        "key_readiness",
        json!({"settings": format!("{readiness:?}"), "by_delay": rows}),
    );
}
