use super::*;
use crate::portal::RemoteInstance;

const A: &str = "111111111111";
const B: &str = "222222222222";
const KEY: &str = "AKIAAAAAAAAAAAAAAAA1";
const NEW_KEY: &str = "AKIAAAAAAAAAAAAAAAA2";
const NOW: i64 = 1_800_000_000_000;

fn instance(id: &str, name: &str, key: &str, status: &str) -> RemoteInstance {
    RemoteInstance {
        id: id.into(),
        name: name.into(),
        app_id: Some(11599),
        connections: vec!["SecurityAuditing".into()],
        access_key_id: Some(key.into()),
        enabled: status != "disabled",
        status: status.into(),
        status_detail: if status == "error" {
            "cloudtrail:LookupEvents denied".into()
        } else {
            String::new()
        },
    }
}

fn seen(member: Member) -> Seen {
    Seen::Member(Box::new(member))
}

fn a() -> Member {
    Member::sample(A, "aws-a", KEY)
}

/// A row of `A` whose key was handed over (and tested) at `handed`.
fn row(handed: i64, tested: Option<i64>) -> Row {
    let mut r = Row::new(A, "us-east-1");
    r.name = "aws-a".into();
    r.instance = Some("i-a".into());
    r.key_id = Some(KEY.into());
    r.handed_at = Some(handed);
    r.test_started = tested;
    r.status = Status::Pending;
    r
}

fn decide_at(row: Option<&Row>, seen: &Seen, listing: &Listing, nudged: bool) -> Step {
    let names = HashMap::new();
    let cx = Context {
        now: NOW,
        nudged,
        test_timeout: 1_800_000,
        gone_after: 3_600_000,
        names: &names,
    };
    decide(row, seen, listing, &cx)
}

fn listing(instances: Vec<RemoteInstance>) -> Listing {
    Listing::new(NOW - 1_000, instances)
}

#[test]
fn a_new_account_is_created_once_and_waits_for_the_listing_to_show_it() {
    assert_eq!(
        decide_at(None, &seen(a()), &listing(vec![]), false),
        Step::Create
    );
    // The create was sent after the listing began: never sent twice.
    let sent = row(NOW - 10, None);
    let step = decide_at(Some(&sent), &seen(a()), &listing(vec![]), false);
    assert!(
        matches!(
            step,
            Step::Wait {
                status: Status::Pending,
                ..
            }
        ),
        "{step:?}"
    );
    // A listing after it that still does not show it: created again.
    let mut lost = sent.clone();
    lost.instance = None;
    lost.handed_at = Some(NOW - 5_000);
    assert_eq!(
        decide_at(Some(&lost), &seen(a()), &listing(vec![]), false),
        Step::Create
    );
}

#[test]
fn a_handed_over_key_is_tested_once_and_its_result_read_from_the_listing() {
    let untested = row(NOW - 60_000, None);
    let pending = listing(vec![instance("i-a", "aws-a", KEY, "pending")]);
    let test = Step::Test {
        instance: "i-a".into(),
    };
    assert_eq!(
        decide_at(Some(&untested), &seen(a()), &pending, false),
        test
    );
    let testing = row(NOW - 60_000, Some(NOW - 50_000));
    let step = decide_at(Some(&testing), &seen(a()), &pending, false);
    assert!(
        matches!(
            step,
            Step::Wait {
                status: Status::Pending,
                ..
            }
        ),
        "{step:?}"
    );
    // Started after the listing began: its result cannot show yet.
    let fresh = row(NOW - 60_000, Some(NOW - 10));
    let done = listing(vec![instance("i-a", "aws-a", KEY, "error")]);
    assert!(matches!(
        decide_at(Some(&fresh), &seen(a()), &done, false),
        Step::Wait { .. }
    ));
    // A test no listing showed for longer than the timeout is run again.
    let stuck = row(NOW - 4_000_000, Some(NOW - 3_000_000));
    assert_eq!(decide_at(Some(&stuck), &seen(a()), &pending, false), test);
    let connected = listing(vec![instance("i-a", "aws-a", KEY, "connected")]);
    assert_eq!(
        decide_at(Some(&testing), &seen(a()), &connected, false),
        Step::Record {
            instance: "i-a".into(),
            status: Status::Connected,
            detail: String::new()
        }
    );
    let Step::Record {
        status: Status::Error,
        detail,
        ..
    } = decide_at(Some(&testing), &seen(a()), &done, false)
    else {
        panic!("an error is recorded");
    };
    assert!(detail.contains("LookupEvents"), "{detail}");
    // A nudge runs a failed test again: the key is handed over again first,
    // which sets the instance pending, so that the listing shows the new result.
    assert_eq!(
        decide_at(Some(&testing), &seen(a()), &done, true),
        Step::Update {
            instance: "i-a".into()
        }
    );
}

#[test]
fn a_rotation_hands_over_the_pending_key_then_tests_it() {
    let testing = row(NOW - 60_000, Some(NOW - 50_000));
    let connected = listing(vec![instance("i-a", "aws-a", KEY, "connected")]);
    let rotating = seen(a().with_pending(NEW_KEY));
    assert_eq!(
        decide_at(Some(&testing), &rotating, &connected, false),
        Step::Update {
            instance: "i-a".into()
        }
    );
    // The listing shows the new key connected: recorded, which the member's testSecret awaits.
    let mut handed = row(NOW - 20_000, Some(NOW - 15_000));
    handed.key_id = Some(NEW_KEY.into());
    let shown = listing(vec![instance("i-a", "aws-a", NEW_KEY, "connected")]);
    assert!(matches!(
        decide_at(Some(&handed), &rotating, &shown, false),
        Step::Record {
            status: Status::Connected,
            ..
        }
    ));
}

#[test]
fn a_name_is_never_proof_of_whose_instance_it_is() {
    let foreign = listing(vec![instance(
        "i-x",
        "aws-a",
        "AKIAOTHERACCOUNTKEY1",
        "connected",
    )]);
    let Step::Refuse(why) = decide_at(None, &seen(a()), &foreign, false) else {
        panic!("refused");
    };
    assert!(
        why.contains("i-x") && why.contains("AKIAOTHERACCOUNTKEY1"),
        "{why}"
    );
    // The row was lost, but the instance holds this account's key: it is its own.
    let ours = listing(vec![instance("i-a", "aws-a", KEY, "connected")]);
    assert!(matches!(
        decide_at(None, &seen(a()), &ours, false),
        Step::Record { .. }
    ));
    // Another account's row holds the name.
    let names = HashMap::from([("aws-a".to_string(), B.to_string())]);
    let cx = Context {
        now: NOW,
        nudged: false,
        test_timeout: 1,
        gone_after: 1,
        names: &names,
    };
    let Step::Refuse(why) = decide(None, &seen(a()), &listing(vec![]), &cx) else {
        panic!("refused");
    };
    assert!(why.contains(B), "{why}");
    let twice = listing(vec![
        instance("i-1", "aws-a", KEY, "connected"),
        instance("i-2", "aws-a", KEY, "connected"),
    ]);
    assert!(matches!(
        decide_at(None, &seen(a()), &twice, false),
        Step::Refuse(_)
    ));
}

#[test]
fn what_a_member_writes_is_checked_before_it_is_used() {
    let mut bad = a();
    bad.name = "x\"y".into();
    bad.invalid = invalid_of(&bad);
    assert!(matches!(
        decide_at(None, &seen(bad), &listing(vec![]), false),
        Step::Refuse(_)
    ));
    let mut keyless = a();
    keyless.key_id = None;
    assert!(matches!(
        decide_at(None, &seen(keyless), &listing(vec![]), false),
        Step::Wait {
            status: Status::Queued,
            ..
        }
    ));
    let mut connections = a();
    connections.connections = vec!["Everything".into()];
    connections.invalid = invalid_of(&connections);
    assert!(matches!(
        decide_at(None, &seen(connections), &listing(vec![]), false),
        Step::Refuse(_)
    ));
}

fn invalid_of(m: &Member) -> Option<String> {
    super::super::members::check(m)
}

#[test]
fn a_gone_account_is_disabled_only_while_its_instance_holds_its_key() {
    let r = row(NOW - 60_000, Some(NOW - 50_000));
    let holding = listing(vec![instance("i-a", "aws-a", KEY, "connected")]);
    let gone = Seen::Gone("left the organization".into());
    assert_eq!(
        decide_at(Some(&r), &gone, &holding, false),
        Step::Disable {
            instance: "i-a".into()
        }
    );
    let replaced = listing(vec![instance(
        "i-a",
        "aws-a",
        "AKIAAREPLACEMENTKEY1",
        "connected",
    )]);
    assert!(matches!(
        decide_at(Some(&r), &gone, &replaced, false),
        Step::Forget(_)
    ));
    assert_eq!(decide_at(None, &gone, &holding, false), Step::Nothing);
    // A role that refuses the hub: gone only after a while.
    let refused = Seen::Refused("the role refused".into());
    let mut r2 = r.clone();
    r2.unreachable_since = Some(NOW - 60_000);
    assert!(matches!(
        decide_at(Some(&r2), &refused, &holding, false),
        Step::Wait { .. }
    ));
    r2.unreachable_since = Some(NOW - 4_000_000);
    assert_eq!(
        decide_at(Some(&r2), &refused, &holding, false),
        Step::Disable {
            instance: "i-a".into()
        }
    );
    let mut off = r.clone();
    off.status = Status::Disabled;
    assert_eq!(decide_at(Some(&off), &gone, &holding, false), Step::Nothing);
}

#[test]
fn a_test_started_after_the_listing_of_them_all_is_read_from_a_narrow_one_after_it() {
    use crate::hub::listing::Asked;
    // Listed at NOW - 1,000; A's key handed over and its test started after.
    let started = row(NOW - 900, Some(NOW - 800));
    let mut seen_by = listing(vec![
        instance("i-a", "aws-a", KEY, "pending"),
        instance("i-b", "aws-b", KEY, "pending"),
    ]);
    let pending = decide_at(Some(&started), &seen(a()), &seen_by, false);
    assert!(matches!(pending, Step::Wait { .. }), "{pending:?}");
    // A narrow listing of A's instance alone, begun after the test started.
    let asked = Asked {
        account: A.into(),
        names: vec!["aws-a".into()],
        instance: Some("i-a".into()),
    };
    let missed = seen_by.refresh(
        NOW - 500,
        &[asked],
        vec![instance("i-a", "aws-a", KEY, "connected")],
    );
    assert!(missed.is_empty());
    assert_eq!(
        decide_at(Some(&started), &seen(a()), &seen_by, false),
        Step::Record {
            instance: "i-a".into(),
            status: Status::Connected,
            detail: String::new()
        }
    );
    // B, handed over after the listing of them all and not in the narrow
    // one: what shows of it is as old as that listing, so it still waits.
    let mut b_row = row(NOW - 900, Some(NOW - 800));
    b_row.account = B.into();
    b_row.name = "aws-b".into();
    b_row.instance = Some("i-b".into());
    let b = Member::sample(B, "aws-b", KEY);
    let step = decide_at(Some(&b_row), &seen(b), &seen_by, false);
    assert!(matches!(step, Step::Wait { .. }), "{step:?}");
}
