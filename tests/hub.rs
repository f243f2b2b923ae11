//! The organization hub in moto: an organization of 8 member accounts and
//! its hub (support/hub.rs), the members' connectors in `PORTAL_MODE=hub`,
//! the registrar run in-process against one portal emulator throttled at
//! 30 requests per scaled minute. Rollout, a key that fails the portal's
//! test, the pace, a rotation with the zero-downtime probe, accounts
//! deleted (queued, and connected), the hub and the portal down then
//! catching up, nudges and forged input, the order of the work (a
//! rotation's pending key first, then the nudges in turn, those a run did
//! not serve first in the next), the registrar's own AWS calls beside
//! the portal's requests (keys read ahead, writes behind), the listings
//! (narrow ones for the tests' results, a rotation's at once and new
//! accounts' while no work waits, a run's listing kept for the run that
//! goes on from it) and the budget across execution environments.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use cloudapps::health::{Check, State};
use cloudapps::hub::Hub;
use cloudapps::hub_tags::{self, HubState, Status};
use portal_emulator::FaultKind;
use serde_json::{Value, json};
use testbed::hub::{Org, create_event};
use testbed::{
    Moto, USER, World, data, fault, register_rotation_function, rotation_step, start_rotation,
};

const MEMBERS: usize = 8;
const WINDOW: Duration = Duration::from_millis(1500);
const RUN: Duration = Duration::from_secs(60);

/// A moto server of the test's own, without the ~1,000 AWS managed
/// policies in each account (nothing here attaches one): an organization
/// of 9 accounts is then cheap, and tests side by side do not slow each
/// other's AWS calls (the portal emulator's tests of the keys among them).
fn own_moto() -> &'static Moto {
    Box::leak(Box::new(Moto::start_with(&[(
        "MOTO_IAM_LOAD_MANAGED_POLICIES",
        "false",
    )])))
}

async fn hub_state(w: &World) -> HubState {
    let info = cloudapps::key_store::describe(&w.secrets, &w.secret_arn)
        .await
        .unwrap();
    HubState::from_tags(info.tags.iter().map(|(k, v)| (k.as_str(), v.as_str())))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_organization_rolls_out_through_the_hub_at_the_tenants_pace() {
    // A budget the rollout's requests need several windows of.
    let org = Org::with_budget(own_moto(), MEMBERS, Duration::from_secs(1), 5).await;
    let bodies = org.create_all().await;
    for body in &bodies {
        assert_eq!(data(body, "PortalStatus"), "queued", "{body}");
    }
    assert!(
        org.emulator.requests().is_empty(),
        "no member Create calls the portal"
    );
    // One account's key fails the portal's test: its trail stopped logging.
    let failing = &org.members[3];
    let trail = failing.trail_names().await.pop().unwrap();
    failing
        .cloudtrail
        .stop_logging()
        .name(&trail)
        .send()
        .await
        .unwrap();

    let hub = org.hub();
    let reports = org.settle(&hub, RUN).await;
    let rows = org.rows(&hub).await;
    assert_eq!(rows.len(), MEMBERS);
    for w in &org.members {
        let row = &rows[&w.account];
        let state = hub_state(w).await;
        let key = w.current_key().await.access_key_id;
        if w.account == failing.account {
            assert_eq!(row.status, Status::Error, "{row:?}");
            assert!(row.detail.contains("test failed"), "{}", row.detail);
            assert_eq!(state.status, Some(Status::Error));
        } else {
            assert_eq!(row.status, Status::Connected, "{row:?}");
            assert!(state.confirms(&key), "{state:?}");
            assert!(state.tested.is_some());
        }
        assert_eq!(row.key_id.as_deref(), Some(key.as_str()));
        assert_eq!(state.instance, row.instance);
    }
    let instances = org.emulator.instances();
    assert_eq!(instances.len(), MEMBERS);
    assert_eq!(
        instances.iter().filter(|i| i.status == "connected").count(),
        MEMBERS - 1
    );
    // The pace: never throttled, never more than the budget in any minute,
    // two requests an account (create, test) and the listings; no test
    // polled one by one.
    let requests = org.emulator.requests();
    let routes: Vec<&str> = requests.iter().filter_map(|r| r.route.as_deref()).collect();
    assert_eq!(org.emulator.throttled(), 0, "{routes:?}");
    assert!(org.busiest_window() <= org.limit as usize);
    let (first, last) = (requests.first().unwrap().at, requests.last().unwrap().at);
    let windows = (routes.len() as u32).div_ceil(org.limit) - 1;
    assert!(
        last - first >= org.window * windows,
        "{:?} for {} requests",
        last - first,
        routes.len()
    );
    assert_eq!(routes.iter().filter(|r| **r == "create").count(), MEMBERS);
    assert_eq!(routes.iter().filter(|r| **r == "test").count(), MEMBERS);
    assert!(
        !routes.contains(&"test_result") && !routes.contains(&"status"),
        "{routes:?}"
    );
    let listings: usize = reports.iter().map(|r| r.listings).sum();
    assert_eq!(routes.len(), 2 * MEMBERS + listings, "{routes:?}");
    // Each key but the first accounts' was read while the account before
    // it was served (the first: before the others were looked at).
    let ahead: usize = reports.iter().map(|r| r.keys_read_ahead).sum();
    assert!(ahead >= MEMBERS / 2, "{ahead} keys read ahead: {reports:?}");
    // A verdict that did not reach a secret (here changed by hand) is
    // written again by the next run, without a portal request.
    let (a, a_state) = (&org.members[0], hub_state(&org.members[0]).await);
    assert_eq!(a_state.status, Some(Status::Connected), "{a_state:?}");
    a.secrets
        .tag_resource()
        .secret_id(&a.secret_arn)
        .tags(
            aws_sdk_secretsmanager::types::Tag::builder()
                .key(hub_tags::STATUS)
                .value("error")
                .build(),
        )
        .send()
        .await
        .unwrap();
    a.secrets
        .untag_resource()
        .secret_id(&a.secret_arn)
        .tag_keys(hub_tags::KEY)
        .send()
        .await
        .unwrap();
    assert_ne!(hub_state(a).await, a_state);
    // A run with nothing to do settles at once, with one listing.
    let again = org.settle(&hub, RUN).await;
    assert_eq!(hub_state(a).await, a_state, "the verdict written again");
    assert_eq!(
        (again.len(), again[0].acted, again[0].listings),
        (1, 0, 1),
        "{again:?}"
    );
    // The organization's health: one listing, the counts.
    let health = hub.on_health_event("test-hub", 60_000).await.unwrap();
    assert_eq!(
        (health["connected"].as_u64(), health["error"].as_u64()),
        (Some(7), Some(1)),
        "{health}"
    );
    assert_eq!(health["requests"], 1);
    for w in &org.members {
        w.assert_no_leaks().await;
    }
}

/// The zero-downtime probe of one member: the portal's instance of the
/// account holds an active key of its user, and is not in error.
async fn probe(org: &Org, w: &World, when: &str) {
    let name = format!("aws-{}", w.account);
    let instance = org
        .emulator
        .instances()
        .into_iter()
        .find(|i| i.name == name)
        .unwrap_or_else(|| panic!("{when}: the account's instance"));
    assert!(instance.enabled, "{when}");
    let keys = w.keys(USER).await;
    assert!(
        keys.contains(&(instance.access_key_id.clone(), true)),
        "{when}: the portal holds {}, not an active key of the user ({keys:?})",
        instance.access_key_id
    );
    assert_ne!(
        instance.status, "error",
        "{when}: {}",
        instance.status_detail
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rotation_in_hub_mode_waits_for_the_hub_and_keeps_zero_downtime() {
    let org = Org::new(own_moto(), MEMBERS, WINDOW).await;
    org.create_all().await;
    let hub = org.hub();
    org.settle(&hub, RUN).await;
    let w = &org.members[0];
    let before = w.current_key().await;
    let function = register_rotation_function(w).await;
    let token = testbed::rotation::token();
    start_rotation(w, &function, &token).await;
    for step in ["createSecret", "setSecret"] {
        rotation_step(w, step, &token).await.unwrap();
        probe(&org, w, step).await;
    }
    // Without the hub, testSecret fails at its deadline and the old key stays.
    let alone = tokio::time::timeout(
        Duration::from_secs(90),
        rotation_step(w, "testSecret", &token),
    )
    .await
    .unwrap();
    let err = alone.unwrap_err();
    assert!(err.contains("has not confirmed the pending key"), "{err}");
    assert!(
        w.keys(USER)
            .await
            .contains(&(before.access_key_id.clone(), true))
    );
    probe(&org, w, "a testSecret the hub did not confirm").await;
    // With the hub running beside it, testSecret passes once the portal's
    // test of the pending key passed.
    let (tested, runs) = tokio::join!(
        rotation_step(w, "testSecret", &token),
        org.settle(&hub, RUN)
    );
    let said = tested.unwrap();
    assert!(said.contains("its test passed"), "{said}");
    assert!(runs.iter().any(|r| r.acted == 1), "{runs:?}");
    probe(&org, w, "testSecret").await;
    rotation_step(w, "finishSecret", &token).await.unwrap();
    probe(&org, w, "finishSecret").await;
    let after = w.current_key().await;
    assert_ne!(after.access_key_id, before.access_key_id);
    let state = hub_state(w).await;
    assert!(state.confirms(&after.access_key_id), "{state:?}");
    org.settle(&hub, RUN).await;
    probe(&org, w, "the next registrar run").await;
    let rows = org.rows(&hub).await;
    assert_eq!(
        rows[&w.account].key_id.as_deref(),
        Some(after.access_key_id.as_str())
    );
    // The others were not touched.
    let instances = org.emulator.instances();
    assert_eq!(
        instances.iter().filter(|i| i.status == "connected").count(),
        MEMBERS,
        "{:?}",
        instances
            .iter()
            .map(|i| (&i.name, &i.status, &i.status_detail))
            .collect::<Vec<_>>()
    );
}

/// What CloudFormation does once a member stack's Delete is through: the
/// connector's Delete, then the secret and the hub role go with the stack.
async fn delete_member(w: &World) {
    w.ok(&w.event("delete.json")).await;
    w.secrets
        .delete_secret()
        .secret_id(&w.secret_arn)
        .force_delete_without_recovery(true)
        .send()
        .await
        .unwrap();
    let policies = w
        .iam
        .list_role_policies()
        .role_name(testbed::hub::MEMBER_ROLE)
        .send()
        .await
        .unwrap();
    for name in policies.policy_names() {
        w.iam
            .delete_role_policy()
            .role_name(testbed::hub::MEMBER_ROLE)
            .policy_name(name)
            .send()
            .await
            .unwrap();
    }
    w.iam
        .delete_role()
        .role_name(testbed::hub::MEMBER_ROLE)
        .send()
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn accounts_deleted_leave_nothing_enabled_in_the_portal() {
    let org = Org::new(own_moto(), MEMBERS, WINDOW).await;
    org.create_all().await;
    let (queued, connected) = (&org.members[1], &org.members[2]);
    // Deleted while still queued: the hub never connected it.
    delete_member(queued).await;
    let hub = org.hub_with(|s| s.gone_after = Duration::ZERO);
    org.settle(&hub, RUN).await;
    let name = |w: &World| format!("aws-{}", w.account);
    assert!(
        org.emulator
            .instances()
            .iter()
            .all(|i| i.name != name(queued))
    );
    assert!(!org.rows(&hub).await.contains_key(&queued.account));
    // Deleted once connected: its instance still holds its key, and is disabled.
    delete_member(connected).await;
    org.settle(&hub, RUN).await;
    let instances = org.emulator.instances();
    let gone = instances
        .iter()
        .find(|i| i.name == name(connected))
        .unwrap();
    assert!(!gone.enabled, "{gone:?}");
    assert_eq!(
        org.rows(&hub).await[&connected.account].status,
        Status::Disabled
    );
    let enabled = instances.iter().filter(|i| i.enabled).count();
    assert_eq!(enabled, MEMBERS - 2);
    // Disabled once: the next run asks nothing of the portal.
    let quiet = org.settle(&hub, RUN).await;
    assert_eq!(quiet[0].acted, 0, "{quiet:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_hub_and_the_portal_down_only_delay_the_work() {
    let org = Org::new(own_moto(), MEMBERS, WINDOW).await;
    // The hub is down while the members are created: they wait, queued.
    org.create_all().await;
    // The portal fails the first run: it stops without losing anything.
    org.emulator
        .inject(fault("create", FaultKind::Status(503), 5));
    let hub = org.hub();
    let failed = hub
        .registrar
        .run(Instant::now() + RUN, BTreeSet::new())
        .await
        .unwrap();
    assert!(!failed.settled && failed.failures == 5, "{failed:?}");
    assert!(org.emulator.instances().is_empty());
    let rows = org.rows(&hub).await;
    assert_eq!(rows.len(), 5, "{rows:?}");
    assert!(
        rows.values().all(|r| r.status == Status::Pending),
        "{rows:?}"
    );
    // The portal is back: the next runs connect every account once.
    org.settle(&hub, RUN).await;
    let instances = org.emulator.instances();
    assert_eq!(
        instances.len(),
        MEMBERS,
        "one instance per account, never two"
    );
    assert!(instances.iter().all(|i| i.status == "connected"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nudges_and_tags_are_never_taken_on_trust() {
    let org = Org::new(own_moto(), MEMBERS, WINDOW).await;
    org.create_all().await;
    let hub = org.hub();
    org.settle(&hub, RUN).await;
    let (a, b) = (&org.members[0], &org.members[1]);
    let a_before = hub_state(a).await;
    let a_instance = org
        .emulator
        .instances()
        .into_iter()
        .find(|i| i.name == format!("aws-{}", a.account))
        .unwrap();
    // B's secret names A's instance, and claims A's key.
    let tag = |k: &str, v: &str| {
        aws_sdk_secretsmanager::types::Tag::builder()
            .key(k)
            .value(v)
            .build()
    };
    b.secrets
        .tag_resource()
        .secret_id(&b.secret_arn)
        .tags(tag(
            cloudapps::names::secret_tags::INSTANCE,
            &format!("aws-{}", a.account),
        ))
        .send()
        .await
        .unwrap();
    // An event from B that names A's secret in its detail, and one from
    // an account outside the organization.
    let event = |account: &str| {
        json!({
            "source": cloudapps::portal::hub::NUDGE_SOURCE,
            "detail-type": cloudapps::portal::hub::NUDGE_DETAIL_TYPE,
            "account": account,
            "detail": {"secret": a.secret_arn, "account": a.account, "status": "connected"},
        })
    };
    // Delivered as the nudge queue's batch, B's with one from outside the
    // organization, and one event put as it is.
    let record = |e: Value| json!({"eventSource": "aws:sqs", "body": e.to_string()});
    let batch = json!({"Records": [record(event(&b.account)), record(event("999999999999"))]});
    let deadline = testbed::hub::epoch_millis_in(RUN);
    hub.on_registrar_event(&batch, "run-1", deadline)
        .await
        .unwrap();
    hub.on_registrar_event(&event("999999999999"), "run-2", deadline)
        .await
        .unwrap();
    let rows = org.rows(&hub).await;
    assert!(!rows.contains_key("999999999999"));
    assert_eq!(rows[&b.account].status, Status::Error);
    assert!(
        rows[&b.account].detail.contains(&a.account),
        "{}",
        rows[&b.account].detail
    );
    assert_eq!(hub_state(a).await, a_before, "nothing changed in A");
    let a_now = org
        .emulator
        .instances()
        .into_iter()
        .find(|i| i.id == a_instance.id)
        .unwrap();
    assert_eq!(a_now.access_key_id, a_instance.access_key_id);
    // B claims A's key id: the value it holds is read, and does not match.
    b.secrets
        .tag_resource()
        .secret_id(&b.secret_arn)
        .tags(tag(
            cloudapps::names::secret_tags::INSTANCE,
            &format!("aws-{}", b.account),
        ))
        .tags(tag(
            hub_tags::PENDING_KEY_ID,
            &a.current_key().await.access_key_id,
        ))
        .send()
        .await
        .unwrap();
    org.settle(&hub, RUN).await;
    let rows = org.rows(&hub).await;
    assert_eq!(
        rows[&b.account].status,
        Status::Error,
        "{:?}",
        rows[&b.account]
    );
    assert!(
        rows[&b.account]
            .detail
            .contains("could not read the account's key"),
        "{}",
        rows[&b.account].detail
    );
    let a_now = org
        .emulator
        .instances()
        .into_iter()
        .find(|i| i.id == a_instance.id)
        .unwrap();
    assert_eq!(
        a_now.access_key_id, a_instance.access_key_id,
        "A's instance keeps A's key"
    );
    assert!(org.emulator.secrets_seen().iter().all(|s| !s.is_empty()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_members_health_check_reads_the_hubs_verdict_and_never_the_portal() {
    let org = Org::new(own_moto(), 2, WINDOW).await;
    org.create_all().await;
    let (ok, failing) = (&org.members[0], &org.members[1]);
    let trail = failing.trail_names().await.pop().unwrap();
    failing
        .cloudtrail
        .stop_logging()
        .name(&trail)
        .send()
        .await
        .unwrap();
    let hub = org.hub();
    org.settle(&hub, RUN).await;
    let sent = org.emulator.requests().len();
    let state = |report: &cloudapps::health::Report, check: Check| {
        let c = report
            .checks
            .iter()
            .find(|c| c.check == check)
            .unwrap()
            .clone();
        (c.state, c.detail)
    };
    testbed::health::enable_rotation(ok).await;
    let report = testbed::health::check(ok, &testbed::health::settings(ok, false)).await;
    let (status, detail) = state(&report, Check::PortalStatus);
    assert_eq!(status, State::Pass, "{detail}");
    assert!(detail.contains("the hub reports"), "{detail}");
    assert_eq!(state(&report, Check::PortalActivity).0, State::Skip);
    let report = testbed::health::check(failing, &testbed::health::settings(failing, false)).await;
    let (status, detail) = state(&report, Check::PortalStatus);
    assert_eq!(status, State::Fail, "{detail}");
    assert!(
        detail.contains("error") && detail.contains("cloudapps org status"),
        "{detail}"
    );
    assert_eq!(
        org.emulator.requests().len(),
        sent,
        "a member's health check calls no portal"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_out_of_time_with_work_left_starts_the_next_at_once() {
    // A budget that 8 accounts need several seconds of.
    let org = Org::with_budget(own_moto(), MEMBERS, Duration::from_secs(1), 5).await;
    org.create_all().await;
    let bus = aws_sdk_eventbridge::Client::new(&org.hub.sdk)
        .create_event_bus()
        .name("cloudapps-hub")
        .send()
        .await
        .unwrap()
        .event_bus_arn()
        .unwrap()
        .to_string();
    let event = |source: &str, detail_type: &str| json!({"source": source, "detail-type": detail_type, "account": org.hub.account, "detail": {}});
    let scheduled = event("aws.events", "Scheduled Event");
    let next = event(
        cloudapps::hub::CONTINUE_SOURCE,
        cloudapps::hub::CONTINUE_DETAIL_TYPE,
    );
    let short = || testbed::hub::epoch_millis_in(Duration::from_millis(1500));
    // Without the bus, a run out of time leaves the rest to the schedule.
    let alone = org
        .hub()
        .on_registrar_event(&scheduled, "run-0", short())
        .await
        .unwrap();
    assert_eq!(
        (&alone["settled"], &alone["continued"]),
        (&json!(false), &json!(false)),
        "{alone}"
    );
    let hub = org.hub_with(|s| s.event_bus = Some(bus.clone()));
    // A portal that keeps failing: the run gives up and starts nothing
    // (the schedule tries again, instead of runs one after the other).
    org.emulator
        .inject(fault("create", FaultKind::Status(503), 5));
    let failing = hub
        .on_registrar_event(&scheduled, "run-1", testbed::hub::epoch_millis_in(RUN))
        .await
        .unwrap();
    assert_eq!(
        (&failing["gave_up"], &failing["continued"]),
        (&json!(true), &json!(false)),
        "{failing}"
    );
    // Out of time with work left: the next run starts at once, through
    // the hub's own bus (moto takes the event on it).
    let cut = hub
        .on_registrar_event(&scheduled, "run-2", short())
        .await
        .unwrap();
    assert_eq!(
        (&cut["settled"], &cut["gave_up"], &cut["continued"]),
        (&json!(false), &json!(false), &json!(true)),
        "{cut}"
    );
    // Its deadline is no portal fault: no account was left with a request
    // cut by it, none counted as a failure (five in a row would end the
    // run as "gave up", and leave the rest to the schedule).
    assert_eq!(cut["failures"], json!(0), "{cut}");
    for (account, row) in org.rows(&hub).await {
        assert!(!row.detail.contains("no time left"), "{account}: {row:?}");
    }
    // The runs the bus's rule starts go on until one settles, which
    // starts none.
    let mut last = cut;
    for i in 3..10 {
        last = hub
            .on_registrar_event(
                &next,
                &format!("run-{i}"),
                testbed::hub::epoch_millis_in(RUN),
            )
            .await
            .unwrap();
        if last["settled"] == json!(true) {
            break;
        }
        assert_eq!(last["continued"], json!(true), "{last}");
    }
    assert_eq!(
        (&last["settled"], &last["continued"]),
        (&json!(true), &json!(false)),
        "{last}"
    );
    let instances = org.emulator.instances();
    assert_eq!(instances.len(), MEMBERS, "one instance per account");
    assert!(instances.iter().all(|i| i.status == "connected"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_behind_keep_each_accounts_order_and_a_key_read_ahead_is_that_key() {
    use cloudapps::hub::members::Seen;
    use cloudapps::hub::pipeline::{Ahead, Write, Writer};
    use cloudapps::hub::table::{Row, Table};

    let org = Org::new(own_moto(), 2, WINDOW).await;
    org.create_all().await;
    let hub = org.hub();
    let w = &org.members[0];
    let Seen::Member(seen) = hub.registrar.reach.look(&w.account).await else {
        panic!("the member's secret is not seen");
    };
    let mut member = *seen;
    // 24 writes for one account, 8 at once (each after the one before it:
    // the order itself is shown by the lib's unit test, as moto answers in
    // turn): the last is what the row and the secret say. The odd ones set
    // a detail tag, the even ones remove it.
    let mut writer = Writer::new(hub.registrar.table.clone(), 8);
    for i in 1..=24 {
        let mut row = Row::new(&w.account, testbed::REGION);
        row.detail = format!("write {i}");
        let state = HubState {
            status: Some(Status::Pending),
            detail: (i % 2 == 1).then(|| format!("write {i}")),
            ..HubState::default()
        };
        let told = (member.clone(), state.clone());
        member.hub = state;
        let (account, row, member) = (w.account.clone(), Some(row), Some(told));
        writer
            .write(Write {
                account,
                row,
                member,
            })
            .await;
    }
    writer.finish().await.unwrap();
    assert_eq!(org.rows(&hub).await[&w.account].detail, "write 24");
    let state = hub_state(w).await;
    assert_eq!((state.status, state.detail), (Some(Status::Pending), None));
    // A row that cannot be written: the writer says so, and its end is
    // the error (a run stops on it, and returns it).
    let nowhere = Table::new(
        aws_sdk_dynamodb::Client::new(&org.registrar_sdk),
        "no-such-table",
    );
    let mut writer = Writer::new(nowhere, 2);
    let row = Some(Row::new(&w.account, testbed::REGION));
    let account = w.account.clone();
    writer
        .write(Write {
            account,
            row,
            member: None,
        })
        .await;
    let waited = Instant::now();
    while !writer.failed() && waited.elapsed() < Duration::from_secs(30) {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(writer.failed());
    let e = writer.finish().await.unwrap_err().to_string();
    assert!(e.contains("dynamodb:PutItem"), "{e}");
    // A key read ahead is the key its tag names, or an error that shows
    // no secret.
    let key = w.current_key().await;
    let ahead = Ahead::start(&member, &key.access_key_id);
    assert!(ahead.is_for(&w.account, &key.access_key_id));
    assert_eq!(ahead.key().await.unwrap(), key);
    let other = "AKIAOTHERKEYIDOTHER1";
    let e = Ahead::start(&member, other)
        .key()
        .await
        .unwrap_err()
        .to_string();
    assert!(e.contains(other), "{e}");
    assert!(!e.contains(key.secret_access_key.expose()), "{e}");
    w.assert_no_leaks().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_nudge_during_a_run_is_looked_at_though_the_account_nudged_before() {
    let org = Org::new(own_moto(), 2, WINDOW).await;
    let (a, b) = (&org.members[0], &org.members[1]);
    b.ok(&create_event(b)).await;
    // B's test runs long: the run waits for its result.
    org.emulator.set_test_duration(Duration::from_secs(15));
    let hub = std::sync::Arc::new(org.hub());
    // The run starts with a batch holding A's nudge too, before A's
    // connector is made: A is looked at, and there is nothing to do yet.
    let nudge = |account: &str| {
        json!({"eventSource": "aws:sqs", "body": json!({
            "source": cloudapps::portal::hub::NUDGE_SOURCE,
            "detail-type": cloudapps::portal::hub::NUDGE_DETAIL_TYPE,
            "account": account,
            "detail": {},
        }).to_string()})
    };
    let batch = json!({"Records": [nudge(&a.account), nudge(&b.account)]});
    let run = {
        let hub = hub.clone();
        let deadline = testbed::hub::epoch_millis_in(RUN);
        tokio::spawn(async move { hub.on_registrar_event(&batch, "run-1", deadline).await })
    };
    let began = Instant::now();
    while !org
        .emulator
        .requests()
        .iter()
        .any(|r| r.route.as_deref() == Some("test"))
    {
        assert!(began.elapsed() < RUN, "B's test never started");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // While the run waits for B's test, A's connector is made, and A
    // nudges again: the run looks at A again and connects it.
    a.ok(&create_event(a)).await;
    hub.registrar
        .table
        .nudge(&[a.account.clone()].into())
        .await
        .unwrap();
    let report = run.await.unwrap().unwrap();
    assert_eq!(report["settled"], json!(true), "{report}");
    // Where the run's time went: mostly waiting for B's test (15 s), the
    // parts within the whole.
    let spent = &report["spent"];
    let part = |name: &str| spent[name].as_u64().unwrap();
    assert!(part("tests") >= 5_000, "{spent}");
    assert!(part("steps") > 0 && part("listings") > 0, "{spent}");
    let parts: u64 = ["steps", "listings", "looks", "tests", "writes", "nudges"]
        .into_iter()
        .map(part)
        .sum();
    assert!(parts <= part("total"), "{spent}");
    assert!(part("total") >= 15_000, "{spent}");
    let rows = org.rows(&hub).await;
    assert_eq!(rows[&a.account].status, Status::Connected, "{report}");
    assert_eq!(rows[&b.account].status, Status::Connected, "{report}");
    let names: Vec<String> = org
        .emulator
        .instances()
        .into_iter()
        .map(|i| i.name)
        .collect();
    assert!(names.contains(&format!("aws-{}", a.account)), "{names:?}");
}

/// The first member connected, then a rotation under way in it (its
/// pending key on the secret, its nudge lost) while every other member's
/// connector is made and nudges: one registrar run, which settles. The
/// portal's requests before that run.
async fn rotation_beside_new_accounts(org: &Org, hub: &Hub) -> usize {
    let (rotating, new) = org.members.split_first().unwrap();
    rotating.ok(&create_event(rotating)).await;
    org.settle(hub, RUN).await;
    let function = register_rotation_function(rotating).await;
    let token = testbed::rotation::token();
    start_rotation(rotating, &function, &token).await;
    for step in ["createSecret", "setSecret"] {
        rotation_step(rotating, step, &token).await.unwrap();
    }
    for w in new {
        w.ok(&create_event(w)).await;
    }
    let nudged: BTreeSet<String> = new.iter().map(|w| w.account.clone()).collect();
    let before = org.emulator.requests().len();
    let report = hub
        .registrar
        .run(Instant::now() + RUN, nudged)
        .await
        .unwrap();
    assert!(report.settled, "{report:?}");
    before
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pending_key_goes_before_the_nudges_and_the_nudges_are_served_in_turn() {
    // A slower portal (200 ms a request): the looks are all in while the
    // first accounts are served.
    let org = Org::new(own_moto(), 5, Duration::from_secs(6)).await;
    let (rotating, new) = org.members.split_first().unwrap();
    // A rotation under way whose nudge was lost; four new accounts, nudged.
    let hub = org.hub();
    let before = rotation_beside_new_accounts(&org, &hub).await;
    let instance = org.rows(&hub).await[&rotating.account]
        .instance
        .clone()
        .unwrap();
    // Whose each request was, in the order they came.
    let served: Vec<String> = org.emulator.requests()[before..]
        .iter()
        .filter_map(|r| match r.route.as_deref()? {
            "update" if r.path.contains(&instance) => Some(rotating.account.clone()),
            "create" => new
                .iter()
                .find(|w| r.body.contains(&format!("aws-{}", w.account)))
                .map(|w| w.account.clone()),
            _ => None,
        })
        .collect();
    let order: Vec<String> = new.iter().map(|w| w.account.clone()).collect();
    let creates: Vec<String> = served
        .iter()
        .filter(|a| **a != rotating.account)
        .cloned()
        .collect();
    // The nudges in the order they came (here: one batch, by account id),
    // not the newest first.
    assert_eq!(creates, order, "{served:?}");
    // The pending key before the nudged accounts still queued when it was
    // seen (at most the one being served then goes before it).
    let at = served.iter().position(|a| *a == rotating.account);
    assert!(at.is_some_and(|at| at <= 1), "{served:?}");
    let state = hub_state(rotating).await;
    let pending = rotating.secret_key("AWSPENDING").await.unwrap();
    assert!(state.confirms(&pending.access_key_id), "{state:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_nudges_a_run_did_not_serve_go_first_in_the_next_run() {
    // 200 ms a request: a run of 1.5 s serves two or three accounts.
    let org = Org::new(own_moto(), MEMBERS, Duration::from_secs(6)).await;
    org.create_all().await;
    let hub = org.hub();
    let mut ids: Vec<String> = org.members.iter().map(|w| w.account.clone()).collect();
    ids.sort();
    // The two accounts looked at first among the rest did not nudge.
    let (quiet, nudged) = ids.split_at(2);
    let nudged: BTreeSet<String> = nudged.iter().cloned().collect();
    let first = hub
        .registrar
        .run(Instant::now() + Duration::from_millis(1500), nudged.clone())
        .await
        .unwrap();
    assert!(!first.settled, "{first:?}");
    let created = |requests: &[portal_emulator::Received]| -> Vec<String> {
        requests
            .iter()
            .filter(|r| r.route.as_deref() == Some("create"))
            .filter_map(|r| ids.iter().find(|a| r.body.contains(&format!("aws-{a}"))))
            .cloned()
            .collect()
    };
    let served: BTreeSet<String> = created(&org.emulator.requests()).into_iter().collect();
    // Those nudged and not served are back on the list, and only those.
    let table = &hub.registrar.table;
    let handed = table.take_nudges().await.unwrap();
    let due: BTreeSet<String> = nudged.difference(&served).cloned().collect();
    assert!(!due.is_empty(), "the run served every account: {first:?}");
    assert_eq!(handed, due, "served in the first run: {served:?}");
    table.nudge(&handed).await.unwrap();
    // The next run serves them before the accounts that never nudged.
    let before = org.emulator.requests().len();
    org.settle(&hub, RUN).await;
    let next = created(&org.emulator.requests()[before..]);
    let last_due = next.iter().rposition(|a| due.contains(a)).unwrap();
    for q in quiet {
        let at = next.iter().position(|a| a == q).unwrap();
        assert!(at > last_due, "{q} before a nudge handed over: {next:?}");
    }
    assert!(table.take_nudges().await.unwrap().is_empty());
    assert_eq!(org.emulator.instances().len(), MEMBERS);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tests_results_are_read_from_listings_of_the_awaited_instances_alone() {
    // The tenant also holds 250 AWS instances the hub has nothing to do
    // with (accounts connected by hand): a listing of them all takes 3
    // pages.
    let org = Org::new(own_moto(), MEMBERS, Duration::from_secs(1)).await;
    for i in 0..250 {
        org.emulator
            .add_instance(11599, &format!("by-hand-{i:03}"), "AKIAHANDHANDHANDHAND");
    }
    let by_hand = org.emulator.instances();
    org.create_all().await;
    let hub = org.hub();
    let reports = org.settle(&hub, RUN).await;
    for (account, row) in org.rows(&hub).await {
        assert_eq!(row.status, Status::Connected, "{account}: {row:?}");
    }
    let ours: BTreeSet<String> = org
        .members
        .iter()
        .map(|w| format!("aws-{}", w.account))
        .collect();
    let listings: Vec<Value> = org
        .emulator
        .requests()
        .iter()
        .filter(|r| r.route.as_deref() == Some("find") && r.status == 200)
        .map(|r| serde_json::from_str(&r.body).unwrap())
        .collect();
    let (narrow, whole): (Vec<&Value>, Vec<&Value>) = listings
        .iter()
        .partition(|b| !b["filters"]["name"].is_null());
    // Each run's first listing takes every instance (3 pages); after it,
    // the tests' results come from listings that name the awaited
    // instances only: one page each, never an instance of another.
    assert_eq!(whole.len(), 3 * reports.len(), "{reports:?}");
    assert!(!narrow.is_empty(), "{reports:?}");
    for body in &narrow {
        let names = body["filters"]["name"]["eq"].as_array().unwrap();
        assert!(!names.is_empty() && names.len() <= MEMBERS, "{body}");
        for name in names {
            assert!(ours.contains(name.as_str().unwrap()), "{body}");
        }
        assert_eq!(body["skip"], 0, "one page: {body}");
    }
    let listed: u64 = reports.iter().map(|r| r.listed).sum();
    assert_eq!(listed, listings.len() as u64);
    // The instances connected by hand are as they were.
    let after = org.emulator.instances();
    assert_eq!(after.len(), 250 + MEMBERS);
    for before in &by_hand {
        let now = after.iter().find(|i| i.id == before.id).unwrap();
        assert_eq!(
            (&now.name, now.enabled, &now.access_key_id),
            (&before.name, before.enabled, &before.access_key_id)
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn while_accounts_wait_only_a_rotations_result_is_listed_at_once() {
    // 250 instances connected by hand: a listing of them all takes 3
    // pages, one of the awaited instances 1. A portal of 200 ms a request,
    // listings allowed half the requests, and new accounts' results
    // allowed to wait an hour while there is work.
    let org = Org::new(own_moto(), MEMBERS, Duration::from_secs(6)).await;
    for i in 0..250 {
        org.emulator
            .add_instance(11599, &format!("by-hand-{i:03}"), "AKIAHANDHANDHANDHAND");
    }
    let hub = org.hub_with(|s| {
        s.list_share_percent = 50;
        s.results_every = Duration::from_secs(3600);
    });
    let rotating = &org.members[0];
    // A rotation under way, and seven new accounts, nudged.
    let before = rotation_beside_new_accounts(&org, &hub).await;
    for (account, row) in org.rows(&hub).await {
        assert_eq!(row.status, Status::Connected, "{account}: {row:?}");
    }
    let pending = rotating.secret_key("AWSPENDING").await.unwrap();
    let state = hub_state(rotating).await;
    assert!(state.confirms(&pending.access_key_id), "{state:?}");
    // The run's requests: while tests were still to send, every listing
    // but the first (of every instance) asked about the rotating account:
    // none was taken for new accounts' results alone.
    let requests = &org.emulator.requests()[before..];
    let last_test = requests
        .iter()
        .rposition(|r| r.route.as_deref() == Some("test"))
        .unwrap();
    let narrow: Vec<(usize, Value)> = requests
        .iter()
        .enumerate()
        .filter(|(_, r)| r.route.as_deref() == Some("find") && r.status == 200)
        .map(|(at, r)| (at, serde_json::from_str::<Value>(&r.body).unwrap()))
        .filter(|(_, b)| !b["filters"]["name"].is_null())
        .collect();
    let mine = json!(format!("aws-{}", rotating.account));
    let names = |b: &Value| b["filters"]["name"]["eq"].as_array().unwrap().clone();
    let (amid, after): (Vec<_>, Vec<_>) = narrow.iter().partition(|(at, _)| *at < last_test);
    assert!(
        !amid.is_empty(),
        "the rotation's result waited for the work"
    );
    for (at, body) in &amid {
        assert!(names(body).contains(&mine), "request {at}: {body}");
    }
    // The new accounts' results: read once the tests were all sent.
    assert!(
        after
            .iter()
            .any(|(_, b)| names(b).len() > 1 || !names(b).contains(&mine)),
        "{after:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runs_in_two_execution_environments_keep_one_budget() {
    // 5 requests a second; each run is out of time after 1.5 s, and the
    // next runs in the other execution environment (its own pace), right
    // after: the lease hands the answers on.
    let org = Org::with_budget(own_moto(), MEMBERS, Duration::from_secs(1), 5).await;
    org.create_all().await;
    let environments = [org.hub(), org.hub()];
    let scheduled = json!({"source": "aws.events", "detail-type": "Scheduled Event", "account": org.hub.account, "detail": {}});
    let mut runs = Vec::new();
    for i in 0..20 {
        let deadline = testbed::hub::epoch_millis_in(Duration::from_millis(1500));
        let run = environments[i % 2]
            .on_registrar_event(&scheduled, &format!("run-{i}"), deadline)
            .await
            .unwrap();
        let settled = run["settled"] == json!(true);
        runs.push(run);
        if settled {
            break;
        }
    }
    assert!(runs.len() >= 3, "{runs:?}");
    assert_eq!(runs.last().unwrap()["settled"], json!(true), "{runs:?}");
    assert_eq!(org.emulator.throttled(), 0, "{runs:?}");
    assert!(org.busiest_window() <= org.limit as usize);
    assert!(runs.iter().all(|r| r["failures"] == json!(0)), "{runs:?}");
    let instances = org.emulator.instances();
    assert_eq!(instances.len(), MEMBERS, "one instance per account");
    assert!(instances.iter().all(|i| i.status == "connected"));
}

/// One registrar execution of `hub` for `event`, with `left` to run.
async fn execute(hub: &cloudapps::hub::Hub, event: &Value, id: &str, left: Duration) -> Value {
    let deadline = testbed::hub::epoch_millis_in(left);
    hub.on_registrar_event(event, id, deadline).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_that_goes_on_from_the_one_before_lists_every_instance_only_once() {
    // 250 instances connected by hand: a listing of every instance takes 3
    // pages; 5 requests a second.
    let org = Org::with_budget(own_moto(), MEMBERS, Duration::from_secs(1), 5).await;
    for i in 0..250 {
        org.emulator
            .add_instance(11599, &format!("by-hand-{i:03}"), "AKIAHANDHANDHANDHAND");
    }
    org.create_all().await;
    let event = |source: &str, detail_type: &str, account: &str| json!({"source": source, "detail-type": detail_type, "account": account, "detail": {}});
    let hub_account = org.hub.account.as_str();
    let scheduled = event("aws.events", "Scheduled Event", hub_account);
    let next = event(
        cloudapps::hub::CONTINUE_SOURCE,
        cloudapps::hub::CONTINUE_DETAIL_TYPE,
        hub_account,
    );
    let nudge = event(
        cloudapps::portal::hub::NUDGE_SOURCE,
        cloudapps::portal::hub::NUDGE_DETAIL_TYPE,
        &org.members[0].account,
    );
    // Pages of listings of every instance since request `from`.
    let whole_pages = |from: usize| {
        org.emulator.requests()[from..]
            .iter()
            .filter(|r| r.route.as_deref() == Some("find") && r.status == 200)
            .filter(|r| {
                serde_json::from_str::<Value>(&r.body).unwrap()["filters"]["name"].is_null()
            })
            .count()
    };
    let (hub, other) = (org.hub(), org.hub());
    // A scheduled run lists every instance, and runs out of time.
    let from = org.emulator.requests().len();
    let first = execute(&hub, &scheduled, "run-1", Duration::from_millis(1500)).await;
    assert_eq!(
        (&first["settled"], &first["listing_kept"]),
        (&json!(false), &json!(false)),
        "{first}"
    );
    assert_eq!(whole_pages(from), 3, "{first}");
    // Its continuations start from its listing: the tests' results come
    // from narrow listings, and every account is connected.
    let mut last = first;
    for i in 2..8 {
        let from = org.emulator.requests().len();
        last = execute(&hub, &next, &format!("run-{i}"), RUN).await;
        assert_eq!(last["listing_kept"], json!(true), "{last}");
        assert_eq!(whole_pages(from), 0, "{last}");
        if last["settled"] == json!(true) {
            break;
        }
    }
    assert_eq!(last["settled"], json!(true), "{last}");
    let connected = |org: &Org| {
        let instances = org.emulator.instances();
        let ours: Vec<_> = instances
            .iter()
            .filter(|i| !i.name.starts_with("by-hand-"))
            .collect();
        instances.len() == 250 + MEMBERS
            && ours.len() == MEMBERS
            && ours.iter().all(|i| i.status == "connected" && i.enabled)
    };
    assert!(connected(&org), "{:?}", org.emulator.instances());
    for (account, row) in org.rows(&hub).await {
        assert_eq!(row.status, Status::Connected, "{account}: {row:?}");
    }
    // A scheduled run lists every instance again; a nudge's run straight
    // after it starts from that listing.
    let runs = [
        (&hub, &scheduled, "run-s", false, 3),
        (&hub, &nudge, "run-n", true, 0),
        // Another execution environment has no listing of its own ...
        (&other, &next, "run-o", false, 3),
        // ... and after its run, this one's listing no longer serves.
        (&hub, &next, "run-x", false, 3),
        (&hub, &next, "run-y", true, 0),
    ];
    for (hub, event, id, kept, pages) in runs {
        let from = org.emulator.requests().len();
        let run = execute(hub, event, id, RUN).await;
        assert_eq!(
            (&run["listing_kept"], &run["settled"]),
            (&json!(kept), &json!(true)),
            "{id}: {run}"
        );
        assert_eq!(whole_pages(from), pages, "{id}: {run}");
    }
    assert!(connected(&org), "{:?}", org.emulator.instances());
    assert_eq!(org.emulator.throttled(), 0);
}
