//! The registrar's looks at the member accounts during a run: each in the
//! background, through the account's own role ([`Reach::look`]), each
//! answered on one channel with the moment it started. Of two looks at one
//! account the one started last is kept: a look that began before the
//! account changed (a rotation's pending key, a stack just made) must not
//! undo what a later one saw, whichever answers first.

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::time::Instant;

use futures_util::StreamExt;
use tokio::sync::mpsc;

use super::members::{Reach, Seen};

/// What one look at an account found, and when it started.
#[derive(Debug)]
pub struct Look {
    pub account: String,
    pub started: Instant,
    pub seen: Seen,
}

/// Where the looks are answered.
pub type Looks = mpsc::Sender<Look>;

async fn look(reach: &Reach, account: String) -> Look {
    let started = Instant::now();
    let seen = reach.look(&account).await;
    Look {
        account,
        started,
        seen,
    }
}

/// Says the accounts that `left` the organization are gone, then looks at
/// every account of `order`, `concurrency` at a time.
pub async fn look_at_all(
    reach: Reach,
    left: Vec<String>,
    order: Vec<String>,
    concurrency: usize,
    tx: Looks,
) {
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
        .map(|account| look(&reach, account))
        .buffered(concurrency.max(1));
    while let Some(item) = looks.next().await {
        if tx.send(item).await.is_err() {
            return;
        }
    }
}

/// Looks at `account` again, in the background.
pub fn look_later(reach: &Reach, account: &str, tx: &Looks) {
    let (reach, tx, account) = (reach.clone(), tx.clone(), account.to_string());
    tokio::spawn(async move {
        let _ = tx.send(look(&reach, account).await).await;
    });
}

/// What the run saw of each account, and when that look started.
#[derive(Debug, Default)]
pub struct Sight {
    pub seen: HashMap<String, Seen>,
    started: HashMap<String, Instant>,
}

impl Sight {
    /// Keeps `look` and queues its account in `work` (a `nudged` one in
    /// front), unless a look at that account that started later was kept:
    /// then `look` is dropped, and false.
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
        work.retain(|a| *a != account);
        if nudged.contains(&account) {
            work.push_front(account);
        } else {
            work.push_back(account);
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

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
}
