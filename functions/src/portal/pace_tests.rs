use super::*;

const S: fn(u64) -> Duration = Duration::from_secs;

/// The hub's: 30 a rolling minute.
const MINUTE: Budget = Budget {
    requests: 30,
    window: Duration::from_secs(60),
};

fn near(at: Instant, expected: Instant) -> bool {
    let d = if at > expected {
        at - expected
    } else {
        expected - at
    };
    d < Duration::from_millis(50)
}

#[tokio::test]
async fn a_request_answered_late_holds_back_the_one_a_budget_after_it() {
    let window = Duration::from_millis(400);
    let budget = Budget {
        requests: 3,
        window,
    };
    let p = Pacer::new(Duration::from_millis(10), Some(budget));
    let began = Instant::now();
    // The first request's answer comes 200 ms after it started (the
    // portal may have counted it as late as that); two quick ones.
    tokio::time::sleep_until(p.take().into()).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    p.answered();
    let first_answered = Instant::now();
    for _ in 0..2 {
        tokio::time::sleep_until(p.take().into()).await;
        p.answered();
    }
    // The pace alone would start the fourth at once; the budget waits for
    // the first's answer to leave the window.
    tokio::time::sleep_until(p.take().into()).await;
    assert!(first_answered.elapsed() >= window, "{:?}", began.elapsed());
    // The budget alone, with no pace, is kept too.
    let alone = Pacer::new(Duration::ZERO, Some(budget));
    assert!(!alone.unbounded() && Pacer::new(Duration::ZERO, None).unbounded());
    for _ in 0..3 {
        tokio::time::sleep_until(alone.take().into()).await;
        alone.answered();
    }
    let fourth = Instant::now();
    tokio::time::sleep_until(alone.take().into()).await;
    assert!(fourth.elapsed() >= window - Duration::from_millis(50));
}

#[test]
fn slots_a_pause_left_unused_are_caught_up_on_within_the_budget() {
    // 30 requests answered 2 s apart, the last 12 s ago: a pause.
    let p = Pacer::new(S(1), Some(MINUTE));
    let now = Instant::now();
    for k in 0..30 {
        p.note(now - S(70) + S(2 * k));
    }
    // At the pace (1 s) until the window binds: the i-th from now may
    // start at max(i s, the answer 30 before it + 60 s = 2i - 10 s).
    assert!(near(p.start_of(1), now));
    assert!(near(p.start_of(6), now + S(5)));
    assert!(near(p.start_of(11), now + S(10)));
    assert!(near(p.start_of(12), now + S(12)));
    assert!(near(p.start_of(14), now + S(16)));
    // Taking a slot moves the next by the pace.
    assert!(near(p.take(), now));
    assert!(near(p.start_of(1), now + S(1)));
    // With the pace at the budget's even spread, the pause is lost.
    let even = Pacer::new(S(2), Some(MINUTE));
    for k in 0..30 {
        even.note(now - S(70) + S(2 * k));
    }
    assert!(near(even.start_of(12), now + S(22)));
}

#[test]
fn the_answers_go_from_one_process_to_the_next() {
    let budget = Budget {
        requests: 2,
        window: S(60),
    };
    let first = Pacer::new(S(1), Some(budget));
    let now = Instant::now();
    // One answer has left the window; two are inside it, out of order.
    first.note(now - S(90));
    first.note(now - S(10));
    first.note(now - S(30));
    let recent = first.recent();
    let epoch = now_millis();
    assert_eq!(recent.at.len(), 2, "{recent:?}");
    assert!(recent.at[0].abs_diff(epoch - 30_000) < 50, "{recent:?}");
    assert!(recent.at[1].abs_diff(epoch - 10_000) < 50, "{recent:?}");
    // The next process starts its first request only when the older of
    // them leaves the window, its second when the newer does.
    let next = Pacer::new(S(1), Some(budget));
    next.seed(&recent);
    assert!(near(next.start_of(1), now + S(30)));
    assert!(near(next.start_of(2), now + S(50)));
    // Answers from the future (another clock) are not taken in.
    next.seed(&Answers {
        by: "elsewhere".into(),
        at: vec![epoch + 60_000],
    });
    assert!(near(next.start_of(1), now + S(30)));
    // A process handed its own answers back counts them once.
    let own = Pacer::new(S(1), Some(budget));
    own.note(now - S(40));
    own.seed(&own.recent());
    assert!(near(own.start_of(1), now));
    assert!(near(own.start_of(2), now + S(20)));
    // No budget: nothing to hand on.
    assert!(Pacer::new(S(1), None).recent().at.is_empty());
}
