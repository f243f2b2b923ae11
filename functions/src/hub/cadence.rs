//! When the registrar reads the tests' results in the middle of a run.
//!
//! A listing's pages come out of the tenant's budget, which the accounts
//! still to connect wait for. While there is other work, a listing of the
//! awaited instances is taken only
//! - within the listings' share of the run's requests
//!   (`HUB_LIST_SHARE_PERCENT`, [`affordable`]), and
//! - when a result is urgent: a rotation's pending key, whose member's
//!   `testSecret` waits on the hub's verdict; or when the first of the
//!   other results has waited `HUB_RESULTS_EVERY_MS` ([`Awaiting::due`]).
//!   A new account's result blocks nothing: its row and its secret's tags
//!   say `pending` a little longer.
//!
//! With no other work left, the run lists as soon as the poll allows
//! ([`listing_due`]).

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::time::{Duration, Instant};

use crate::time::signed_millis;

use super::act::now;
use super::listing::{Asked, Listing, next, pages};
use super::members::Seen;
use super::table::Row;

/// The accounts awaiting a test's result that a listing will show, and
/// since when the first of them has waited.
#[derive(Debug, Default)]
pub struct Awaiting {
    accounts: BTreeSet<String>,
    since: Option<Instant>,
}

impl Awaiting {
    /// `account` awaits a listing from `at` (unless it already did).
    pub fn insert(&mut self, account: String, at: Instant) {
        self.since.get_or_insert(at);
        self.accounts.insert(account);
    }

    /// What the next listing asks about (see [`next`]: `None` for every
    /// instance, `whole` or not), and the pages it takes.
    pub fn next_listing(
        &self,
        listing: &Listing,
        whole: bool,
        rows: &BTreeMap<String, Row>,
        seen: &HashMap<String, Seen>,
    ) -> (Option<Vec<Asked>>, u64) {
        let asked = next(listing, whole, &self.accounts, rows, seen);
        let pages = pages(listing, asked.as_deref());
        (asked, pages)
    }

    pub fn is_empty(&self) -> bool {
        self.accounts.is_empty()
    }

    /// True when a listing is due while other work waits: one of the
    /// accounts is `urgent` (a rotation's pending key), or the first of
    /// them has waited `every` by `now`.
    pub fn due(&self, urgent: impl Fn(&str) -> bool, every: Duration, now: Instant) -> bool {
        let waited = |since: Instant| now.saturating_duration_since(since) >= every;
        !self.accounts.is_empty()
            && (self.since.is_some_and(waited) || self.accounts.iter().any(|a| urgent(a)))
    }

    /// After a listing, the accounts that awaited it come first, before
    /// any other work: what it shows of their tests is recorded (no portal
    /// request), so an account waits one listing for its verdict, not the
    /// whole queue. Those it does not show yet await the next one, from
    /// then.
    pub fn first_in(&mut self, work: &mut VecDeque<String>) {
        self.since = None;
        for account in std::mem::take(&mut self.accounts).into_iter().rev() {
            work.retain(|a| *a != account);
            work.push_front(account);
        }
    }
}

/// True when listings of `pages` in all (this run's, and the one to take)
/// beside `acts` requests of work keep within `percent` of the requests.
pub fn affordable(percent: u32, pages: u64, acts: u64) -> bool {
    let share = u64::from(percent.clamp(1, 99));
    acts * share >= pages * (100 - share)
}

/// How long until a listing taken at `taken_at` may be taken again.
pub fn listing_due(taken_at: i64, poll: Duration) -> Duration {
    let next = taken_at.saturating_add(signed_millis(poll));
    Duration::from_millis(u64::try_from(next.saturating_sub(now())).unwrap_or(0))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(v: &[&str]) -> Vec<String> {
        v.iter().map(|a| a.to_string()).collect()
    }

    #[test]
    fn the_listings_keep_to_their_share_of_the_budget() {
        let share = affordable;
        // 10 pages (1,000 accounts) at 5 %: after 190 requests of work.
        assert!(!share(5, 10, 189) && share(5, 10, 190));
        assert!(share(5, 1, 19) && !share(5, 1, 18));
        assert!(listing_due(now() - 60_000, Duration::from_secs(15)).is_zero());
        let later = listing_due(now() + 60_000, Duration::from_secs(15));
        assert!(later > Duration::from_secs(70) && later <= Duration::from_secs(75));
    }

    #[test]
    fn a_rotations_result_is_due_at_once_a_new_accounts_after_a_while() {
        let every = Duration::from_secs(300);
        let t = Instant::now();
        let at = |s: u64| t + Duration::from_secs(s);
        let rotating = |a: &str| a == "rotating";
        let mut awaiting = Awaiting::default();
        assert!(
            !awaiting.due(rotating, Duration::ZERO, at(0)),
            "nothing awaited"
        );
        // New accounts' tests: due once the first of them has waited 5 min.
        awaiting.insert("new-1".into(), at(0));
        awaiting.insert("new-2".into(), at(200));
        assert!(!awaiting.due(rotating, every, at(299)));
        assert!(awaiting.due(rotating, every, at(300)));
        // 0: due at once, as each result is.
        assert!(awaiting.due(rotating, Duration::ZERO, at(0)));
        // A rotation's pending key: due at once.
        awaiting.insert("rotating".into(), at(250));
        assert!(awaiting.due(rotating, every, at(250)));
        // After a listing, the clock starts again with the first account
        // that awaits the next one.
        let mut work: VecDeque<String> = ids(&["queued"]).into();
        awaiting.first_in(&mut work);
        assert!(awaiting.is_empty() && !awaiting.due(rotating, every, at(900)));
        awaiting.insert("new-2".into(), at(310));
        assert!(!awaiting.due(rotating, every, at(609)));
        assert!(awaiting.due(rotating, every, at(610)));
    }

    #[test]
    fn after_a_listing_the_accounts_awaiting_it_go_before_the_queue() {
        // 900 accounts still to connect, the one being acted on in front.
        let mut work: VecDeque<String> = (0..900).map(|i| format!("{i:012}")).collect();
        work.push_front("100000000001".into());
        // Two tests to read, one of them also queued again (a nudge).
        let mut awaiting = Awaiting::default();
        for a in ["200000000002", "000000000007"] {
            awaiting.insert(a.into(), Instant::now());
        }
        awaiting.first_in(&mut work);
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
}
