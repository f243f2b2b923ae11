//! The registrar's looks at the member accounts during a run: each in the
//! background, through the account's own role ([`Reach::look`]), a few at
//! a time ([`Lookout`]), each answered on one channel with the moment it
//! started. Of two looks at one
//! account the one started last is kept: a look that began before the
//! account changed (a rotation's pending key, a stack just made) must not
//! undo what a later one saw, whichever answers first.
//!
//! The work is served in three tiers, each first come, first served: an
//! account whose look shows a rotation's pending key (its `testSecret`
//! waits on the hub), then the accounts that nudged, then the rest. While
//! a stack set makes accounts faster than the tenant's pace serves them,
//! nudges keep coming: the newest first would bury the earlier ones, and a
//! rotation with them, until the stack set is done. Within the rest, the
//! accounts the table does not show settled are looked at first
//! ([`look_order`]): where the work is, in a run that goes on from the one
//! before.

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::sync::Arc;
use std::time::Instant;

use futures_util::StreamExt;
use tokio::sync::{Semaphore, mpsc};

use super::members::{Reach, Seen};
use super::table::Row;

/// What one look at an account found, and when it started.
#[derive(Debug)]
pub struct Look {
    pub account: String,
    pub started: Instant,
    pub seen: Seen,
}

/// Where the looks are answered.
pub type Looks = mpsc::Sender<Look>;

/// The order of a run's looks: the nudged accounts, then those the table
/// does not show settled (no row yet, queued, pending, in error: where the
/// work is, in a run that goes on from the one before), then the rest.
pub fn look_order(
    accounts: &BTreeSet<String>,
    nudged: &BTreeSet<String>,
    rows: &BTreeMap<String, Row>,
) -> Vec<String> {
    use crate::hub_tags::Status::{Connected, Disabled};
    let settled = |a: &String| {
        rows.get(a)
            .is_some_and(|r| matches!(r.status, Connected | Disabled))
    };
    let rest = accounts.iter().filter(|a| !nudged.contains(*a));
    let (settled, unsettled): (Vec<&String>, Vec<&String>) = rest.partition(|a| settled(a));
    nudged
        .iter()
        .chain(unsettled)
        .chain(settled)
        .cloned()
        .collect()
}

/// A run's looks at the member accounts: at most `at_once` at a time, its
/// own looks through the organization and those at the accounts that
/// nudged during the run alike, so that the hub's calls into the members
/// (AssumeRole, DescribeSecret) stay a few at a time, however many
/// accounts a stack set makes at once. A look starts when it has its turn.
#[derive(Clone)]
pub struct Lookout {
    reach: Reach,
    at_once: usize,
    turns: Arc<Semaphore>,
}

impl Lookout {
    pub fn new(reach: Reach, at_once: usize) -> Self {
        let at_once = at_once.max(1);
        Self {
            reach,
            at_once,
            turns: Arc::new(Semaphore::new(at_once)),
        }
    }

    async fn look(&self, account: String) -> Look {
        // The semaphore is never closed.
        let _turn = self.turns.acquire().await.ok();
        let started = Instant::now();
        let seen = self.reach.look(&account).await;
        Look {
            account,
            started,
            seen,
        }
    }

    /// Says the accounts that `left` the organization are gone, then looks
    /// at every account of `order`, in that order.
    pub async fn all(self, left: Vec<String>, order: Vec<String>, tx: Looks) {
        for account in left {
            let seen = Seen::Gone("the account left the organization".into());
            let started = Instant::now();
            if tx
                .send(Look {
                    account,
                    started,
                    seen,
                })
                .await
                .is_err()
            {
                return;
            }
        }
        let mut looks = futures_util::stream::iter(order)
            .map(|account| self.look(account))
            .buffered(self.at_once);
        while let Some(item) = looks.next().await {
            if tx.send(item).await.is_err() {
                return;
            }
        }
    }

    /// Looks at `account` again, in the background, when its turn comes.
    pub fn later(&self, account: &str, tx: &Looks) {
        let (lookout, tx, account) = (self.clone(), tx.clone(), account.to_string());
        tokio::spawn(async move {
            let _ = tx.send(lookout.look(account).await).await;
        });
    }
}

/// What the run saw of each account, and when that look started.
#[derive(Debug, Default)]
pub struct Sight {
    pub seen: HashMap<String, Seen>,
    started: HashMap<String, Instant>,
}

impl Sight {
    /// Keeps `look` and queues its account in `work` in its tier
    /// ([`Sight::tier`]), behind the accounts of that tier queued before
    /// it; an account already queued keeps its turn. Unless a look at that
    /// account that started later was kept: then `look` is dropped, and
    /// false.
    pub fn keep(
        &mut self,
        look: Look,
        work: &mut VecDeque<String>,
        nudged: &BTreeSet<String>,
    ) -> bool {
        let Look {
            account,
            started,
            seen,
        } = look;
        if self.started.get(&account).is_some_and(|t| *t > started) {
            return false;
        }
        self.started.insert(account.clone(), started);
        self.seen.insert(account.clone(), seen);
        let turn = work.iter().position(|a| *a == account);
        if let Some(at) = turn {
            work.remove(at);
        }
        let tier = |a: &str| self.tier(a, nudged);
        let mine = tier(&account);
        // Behind every account of a tier before its own, before every
        // account of a tier after it; where it stood, if that is between.
        let first = work
            .iter()
            .rposition(|a| tier(a) < mine)
            .map_or(0, |i| i + 1);
        let last = work
            .iter()
            .position(|a| tier(a) > mine)
            .unwrap_or(work.len())
            .max(first);
        let at = turn.map_or(last, |t| t.clamp(first, last));
        work.insert(at, account);
        true
    }

    /// 0: the look shows a rotation's pending key; 1: the account nudged;
    /// 2: the rest.
    fn tier(&self, account: &str, nudged: &BTreeSet<String>) -> u8 {
        if self.rotating(account) {
            0
        } else if nudged.contains(account) {
            1
        } else {
            2
        }
    }

    /// True when the last look at `account` shows a rotation's pending
    /// key: its member's `testSecret` waits on the hub.
    pub fn rotating(&self, account: &str) -> bool {
        matches!(self.seen.get(account), Some(Seen::Member(m)) if m.pending_key_id.is_some())
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::super::members::Member;
    use super::*;

    fn look(account: &str, started: Instant, what: &str) -> Look {
        Look {
            account: account.into(),
            started,
            seen: Seen::Unknown(what.into()),
        }
    }

    fn what(sight: &Sight, account: &str) -> String {
        match &sight.seen[account] {
            Seen::Unknown(w) => w.clone(),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn of_two_looks_at_an_account_the_one_started_last_is_kept() {
        let (mut sight, mut work) = (Sight::default(), VecDeque::new());
        let nudged: BTreeSet<String> = ["111111111111".to_string()].into();
        let before = Instant::now();
        let after = before + Duration::from_millis(5);
        // The look started after a nudge answers first; the one started
        // before it (the run's first look) answers last, and is dropped.
        assert!(sight.keep(look("111111111111", after, "new"), &mut work, &nudged));
        assert!(!sight.keep(look("111111111111", before, "old"), &mut work, &nudged));
        assert_eq!(what(&sight, "111111111111"), "new");
        // In order, the later one replaces the earlier; each account is
        // queued once, a nudged one in front.
        assert!(sight.keep(look("222222222222", before, "old"), &mut work, &nudged));
        assert!(sight.keep(look("222222222222", after, "new"), &mut work, &nudged));
        assert_eq!(what(&sight, "222222222222"), "new");
        assert!(sight.keep(look("111111111111", after, "again"), &mut work, &nudged));
        assert_eq!(work, ["111111111111", "222222222222"]);
    }

    fn rotating(account: &str, started: Instant) -> Look {
        let member = Member::sample(account, "aws-rotating", "AKIAOLDKEY000000000A");
        Look {
            account: account.into(),
            started,
            seen: Seen::Member(Box::new(member.with_pending("AKIANEWKEY000000000B"))),
        }
    }

    #[test]
    fn a_pending_key_goes_first_then_the_nudges_in_the_order_they_came_then_the_rest() {
        let (mut sight, mut work) = (Sight::default(), VecDeque::new());
        let t = Instant::now();
        let nudged: BTreeSet<String> = ["1", "2", "3", "4"].map(String::from).into();
        // Not nudged: behind everything, whenever it came.
        assert!(sight.keep(look("9", t, "quiet"), &mut work, &nudged));
        // Nudges in the order they came (the newest first would bury them).
        for a in ["3", "1", "2"] {
            assert!(sight.keep(look(a, t, "nudged"), &mut work, &nudged));
        }
        assert_eq!(work, ["3", "1", "2", "9"]);
        // Looked at again, a nudged account keeps its turn.
        let later = t + Duration::from_millis(5);
        assert!(sight.keep(look("3", later, "again"), &mut work, &nudged));
        assert!(sight.keep(look("4", later, "nudged"), &mut work, &nudged));
        assert_eq!(work, ["3", "1", "2", "4", "9"]);
        // A rotation's pending key goes before every nudge, though it was
        // not nudged and came last; a second one goes behind it.
        assert!(sight.keep(rotating("8", later), &mut work, &nudged));
        assert!(sight.keep(rotating("7", later), &mut work, &nudged));
        assert_eq!(work, ["8", "7", "3", "1", "2", "4", "9"]);
        // Its pending key gone (the rotation finished), it falls back to
        // its tier, where its turn was: before the account queued after it.
        assert!(sight.keep(look("8", later, "done"), &mut work, &nudged));
        assert_eq!(work, ["7", "3", "1", "2", "4", "8", "9"]);
    }

    #[test]
    fn a_run_looks_first_at_the_nudged_then_where_the_table_shows_work_left() {
        use crate::hub_tags::Status;
        let id = |i: u32| format!("{i:012}");
        let accounts: BTreeSet<String> = (1..=6).map(id).collect();
        let nudged: BTreeSet<String> = [id(5)].into();
        let mut rows = BTreeMap::new();
        for (i, status) in [
            (1, Status::Connected),
            (2, Status::Pending),
            (3, Status::Disabled),
            (4, Status::Error),
            (5, Status::Connected),
        ] {
            let mut row = Row::new(&id(i), "us-east-1");
            row.status = status;
            rows.insert(id(i), row);
        }
        // 6 has no row yet: a new account.
        let order = look_order(&accounts, &nudged, &rows);
        assert_eq!(order, vec![id(5), id(2), id(4), id(6), id(1), id(3)]);
    }
}

#[cfg(test)]
#[path = "looks_tests.rs"]
mod lookout_tests;
