//! The registrar's unit tests: when a run stops sending (its queue's
//! order and its listings: `hub::looks`, `hub::cadence`).

use super::*;

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
