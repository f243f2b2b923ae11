//! `cloudapps org status` against an organization whose hub connected it in
//! moto (testbed::hub): one member's key fails the portal's test.

#[allow(dead_code)]
mod support;

use std::time::Duration;

use support::{cloudapps, env, line_with};
use testbed::Moto;
use testbed::hub::Org;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn org_status_shows_every_account_and_fails_while_one_is_in_error() {
    // GIVEN an organization of three accounts, one whose trail stopped
    let org = Org::new(Moto::shared(), 3, Duration::from_millis(1500)).await;
    org.create_all().await;
    let failing = &org.members[1];
    let trail = failing.trail_names().await.pop().unwrap();
    failing
        .cloudtrail
        .stop_logging()
        .name(&trail)
        .send()
        .await
        .unwrap();
    let hub = org.hub();
    org.settle(&hub, Duration::from_secs(60)).await;
    let env = env(&org.hub, None, &[]);

    // WHEN an operator asks for the organization's status in the hub account
    let run = cloudapps(&org.hub, &env, &["org", "status", "--table", &org.table]).await;

    // THEN every account has its line, the counts say it, and the exit is 1
    assert_eq!(run.code, 1, "{}", run.shown());
    line_with(
        &run,
        &[
            "ACCOUNT",
            "REGION",
            "STATUS",
            "INSTANCE",
            "KEY AGE",
            "LAST TEST",
            "DETAIL",
        ],
    );
    for w in &org.members {
        let status = if w.account == failing.account {
            "error"
        } else {
            "connected"
        };
        line_with(&run, &[&w.account, "us-east-1", status]);
    }
    line_with(&run, &[&failing.account, "test failed"]);
    line_with(&run, &["3 accounts", "connected 2", "error 1"]);
    // AND the JSON document says the same
    let json = cloudapps(
        &org.hub,
        &env,
        &["org", "status", "--table", &org.table, "-o", "json", "-q"],
    )
    .await;
    assert_eq!(json.code, 1, "{}", json.shown());
    let doc = json.json();
    assert_eq!(doc["counts"]["connected"], 2);
    assert_eq!(doc["counts"]["error"], 1);
    assert_eq!(doc["healthy"], false);
    assert_eq!(doc["accounts"].as_array().unwrap().len(), 3);

    // WHEN the trail logs again and the member asks the hub to look again
    failing
        .cloudtrail
        .start_logging()
        .name(&trail)
        .send()
        .await
        .unwrap();
    hub.registrar
        .table
        .nudge(&[failing.account.clone()].into())
        .await
        .unwrap();
    org.settle(&hub, Duration::from_secs(60)).await;

    // THEN every account is connected and the exit is 0
    let run = cloudapps(&org.hub, &env, &["org", "status", "--table", &org.table]).await;
    assert_eq!(run.code, 0, "{}", run.shown());
    line_with(&run, &["3 accounts", "connected 3", "error 0"]);
    // AND a table that is not there is a usage error
    let run = cloudapps(
        &org.hub,
        &env,
        &["org", "status", "--table", "no-such-table"],
    )
    .await;
    assert_eq!(run.code, 2, "{}", run.shown());
    org.hub.assert_no_leaks().await;
}
