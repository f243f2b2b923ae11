use super::*;
use crate::hub::members::Member;

const BASE: i64 = 1_800_000_000_000;
const KEY: &str = "AKIAAAAAAAAAAAAAAAA1";

fn instance(id: &str, name: &str, status: &str) -> RemoteInstance {
    RemoteInstance {
        id: id.into(),
        name: name.into(),
        app_id: Some(11599),
        connections: vec!["SecurityAuditing".into()],
        access_key_id: Some(KEY.into()),
        enabled: true,
        status: status.into(),
        status_detail: String::new(),
    }
}

fn asked(account: &str, names: &[&str], instance: Option<&str>) -> Asked {
    Asked {
        account: account.into(),
        names: names.iter().map(|n| n.to_string()).collect(),
        instance: instance.map(String::from),
    }
}

/// `n` instances of other accounts, and `a`'s instance `i-a` pending.
fn whole(n: usize) -> Listing {
    let mut all: Vec<RemoteInstance> = (0..n)
        .map(|i| instance(&format!("i-{i}"), &format!("other-{i}"), "connected"))
        .collect();
    all.push(instance("i-a", "aws-a", "pending"));
    Listing::new(BASE, all)
}

#[test]
fn a_narrow_listing_replaces_what_was_shown_of_the_accounts_it_saw_anew() {
    let mut listing = whole(150);
    assert_eq!(listing.taken_for("a"), BASE);
    // The test of `a` passed, and `b`'s instance was created after the
    // listing of them all.
    let missed = listing.refresh(
        BASE + 5_000,
        &[
            asked("a", &["aws-a"], Some("i-a")),
            asked("b", &["aws-b"], Some("i-b")),
        ],
        vec![
            instance("i-a", "aws-a", "connected"),
            instance("i-b", "aws-b", "pending"),
        ],
    );
    assert!(missed.is_empty(), "{missed:?}");
    assert_eq!(listing.get("i-a").unwrap().status, "connected");
    assert_eq!(listing.named("aws-a").len(), 1, "replaced, not added");
    assert_eq!(listing.named("aws-b")[0].id, "i-b");
    assert_eq!(
        (listing.taken_for("a"), listing.taken_for("b")),
        (BASE + 5_000, BASE + 5_000)
    );
    // The others are as the listing of them all showed them, and as old.
    assert_eq!(listing.len(), 152);
    assert_eq!(listing.taken_for("other"), BASE);
    assert_eq!((listing.taken_at, listing.latest), (BASE, BASE + 5_000));
}

#[test]
fn an_instance_renamed_moves_to_its_new_name_and_one_gone_from_its_name_is_dropped() {
    let mut listing = whole(10);
    listing.refresh(
        BASE + 1,
        &[asked("a", &["aws-a", "aws-a-new"], Some("i-a"))],
        vec![instance("i-a", "aws-a-new", "pending")],
    );
    assert!(listing.named("aws-a").is_empty());
    assert_eq!(listing.named("aws-a-new")[0].id, "i-a");
    assert_eq!(listing.len(), 11);
    // `c` records no instance yet: whatever bore its name and no longer
    // shows is gone (its create is then awaited, as `plan` decides).
    let mut listing = Listing::new(BASE, vec![instance("i-c", "aws-c", "pending")]);
    let missed = listing.refresh(BASE + 1, &[asked("c", &["aws-c"], None)], vec![]);
    assert!(missed.is_empty() && listing.is_empty());
    assert_eq!(listing.taken_for("c"), BASE + 1);
}

#[test]
fn an_account_whose_instance_does_not_show_keeps_what_was_known_and_is_missed() {
    // `a`'s instance was renamed in the portal since: the name asked for
    // shows nothing. A narrow listing never makes an instance gone.
    let mut listing = whole(10);
    let missed = listing.refresh(BASE + 1, &[asked("a", &["aws-a"], Some("i-a"))], vec![]);
    assert_eq!(missed, vec!["a".to_string()]);
    assert_eq!(listing.get("i-a").unwrap().status, "pending");
    assert_eq!(listing.named("aws-a").len(), 1);
    assert_eq!(listing.taken_for("a"), BASE);
}

#[test]
fn the_next_listing_is_narrow_only_when_it_takes_fewer_pages() {
    let awaiting: BTreeSet<String> = ["a".to_string()].into();
    let mut rows = BTreeMap::new();
    let mut row = Row::new("a", "us-east-1");
    row.name = "aws-a".into();
    row.instance = Some("i-a".into());
    rows.insert("a".to_string(), row);
    let mut seen = HashMap::new();
    seen.insert(
        "a".to_string(),
        Seen::Member(Box::new(Member::sample("a", "aws-a-renamed", KEY))),
    );
    // 100 instances: one page either way, so every instance is listed.
    let small = whole(99);
    assert_eq!(pages(&small, None), 1);
    assert!(next(&small, false, &awaiting, &rows, &seen).is_none());
    // 251 instances: 3 pages, against 1 for the awaited account's names.
    let big = whole(250);
    assert_eq!(pages(&big, None), 3);
    let narrow = next(&big, false, &awaiting, &rows, &seen).unwrap();
    assert_eq!(
        narrow,
        vec![asked("a", &["aws-a", "aws-a-renamed"], Some("i-a"))]
    );
    assert_eq!(names(&narrow), vec!["aws-a", "aws-a-renamed"]);
    assert_eq!(pages(&big, Some(&narrow)), 1);
    // A narrow listing that missed one: the next lists them all; nothing
    // awaited: nothing narrow to ask.
    assert!(next(&big, true, &awaiting, &rows, &seen).is_none());
    assert!(next(&big, false, &BTreeSet::new(), &rows, &seen).is_none());
}

#[test]
fn a_kept_listing_serves_only_the_run_straight_after_its_own_and_while_young() {
    let within = Duration::from_secs(1200);
    let kept = |taken_at: i64| Kept {
        holder: "run-1".into(),
        listing: Listing::new(taken_at, vec![instance("i-1", "aws-1", "connected")]),
    };
    let now = 10_000_000;
    // The run straight after, 19 minutes after the listing began: served.
    let served = kept(now - 1_140_000).for_run(Some("run-1"), now, within);
    assert_eq!(served.map(|l| l.len()), Some(1));
    // Another run gave the lease back since (another execution environment).
    assert!(kept(now).for_run(Some("run-2"), now, within).is_none());
    // The lease was never given back (the run before ran out, or crashed).
    assert!(kept(now).for_run(None, now, within).is_none());
    // The listing of every instance began 20 minutes ago or more.
    assert!(
        kept(now - 1_200_000)
            .for_run(Some("run-1"), now, within)
            .is_none()
    );
    // 0: every run lists every instance.
    assert!(
        kept(now)
            .for_run(Some("run-1"), now, Duration::ZERO)
            .is_none()
    );
}
