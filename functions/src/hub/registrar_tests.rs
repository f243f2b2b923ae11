//! The registrar's unit tests: its queue's order, the listings' share,
//! and when a run stops sending.

use super::*;

#[test]
fn the_listings_keep_to_their_share_of_the_budget() {
    let share = affordable;
    // 10 pages (1,000 accounts) at 5 %: after 190 requests of work.
    assert!(!share(5, 10, 189) && share(5, 10, 190));
    assert!(share(5, 1, 19) && !share(5, 1, 18));
    assert!(listing_due(now() - 60_000, Duration::from_secs(15)).is_zero());
}

#[test]
fn a_step_that_sends_is_not_started_when_its_second_request_no_longer_fits() {
    let deadline = Instant::now() + Duration::from_secs(4);
    let second = |s: u64| Instant::now() + Duration::from_millis(s);
    assert!(too_late_to_send(deadline, second(3_500)));
    assert!(!too_late_to_send(deadline, second(3_000)));
    // The budget holding the second request back counts, not the pace.
    let budget = crate::portal::Budget {
        requests: 1,
        window: Duration::from_secs(10),
    };
    let pacer = crate::portal::pace::Pacer::new(Duration::from_millis(10), Some(budget));
    pacer.answered();
    assert!(too_late_to_send(deadline, pacer.start_of(2)));
    let instance = || "i-1".to_string();
    assert!(
        sends(&Step::Create)
            && sends(&Step::Test {
                instance: instance()
            })
    );
    assert!(sends(&Step::Disable {
        instance: instance()
    }));
    assert!(!sends(&Step::Forget("gone".into())) && !sends(&Step::Refuse("no".into())));
}

#[test]
fn after_a_listing_the_accounts_awaiting_it_go_before_the_queue() {
    let ids = |v: &[&str]| v.iter().map(|a| a.to_string()).collect::<Vec<_>>();
    // 900 accounts still to connect, the one being acted on in front.
    let mut work: VecDeque<String> = (0..900).map(|i| format!("{i:012}")).collect();
    work.push_front("100000000001".into());
    // Two tests to read, one of them also queued again (a nudge).
    let mut awaiting: BTreeSet<String> = ["200000000002", "000000000007"]
        .into_iter()
        .map(String::from)
        .collect();
    awaited_first(&mut work, &mut awaiting);
    assert!(awaiting.is_empty());
    let head: Vec<String> = work.iter().take(4).cloned().collect();
    assert_eq!(
        head,
        ids(&[
            "000000000007",
            "200000000002",
            "100000000001",
            "000000000000"
        ])
    );
    assert_eq!(work.len(), 902, "each account once");
}
