//! The registrar's own AWS calls, beside the portal's requests instead of
//! between them: the portal's pace is the run's only limit, so a slow
//! table or a slow member account must not cost the tenant's slots.
//!
//! - [`Ahead`]: the key of the account next in line, read while the
//!   portal's requests for this one are under way (only when that account's
//!   step hands a key over; dropped, unsent, if it turns out not to).
//! - [`Writer`]: each account's row and its member's tags, written behind,
//!   in order for each account, a bounded number at a time. A row that
//!   cannot be written ends the run with that error, once every write
//!   started has ended.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio::sync::Semaphore;
use tokio::task::JoinHandle;
use tracing::warn;

use crate::error::Error;
use crate::hub_tags::HubState;
use crate::key::StoredKey;

use super::members::{Member, Seen};
use super::plan::{Context, Listing, Step, decide};
use super::table::{Row, Table};

/// A key being read ahead for one account.
#[derive(Debug)]
pub struct Ahead {
    account: String,
    key_id: String,
    read: Option<JoinHandle<Result<StoredKey, Error>>>,
}

impl Ahead {
    /// Starts reading `key_id` from `member`'s secret.
    pub fn start(member: &Member, key_id: &str) -> Self {
        let (m, id) = (member.clone(), key_id.to_string());
        Self {
            account: member.account.clone(),
            key_id: key_id.to_string(),
            read: Some(tokio::spawn(async move { m.read_key(&id).await })),
        }
    }

    /// Reads ahead the key of an account next in line (what it was `seen`
    /// as, its `row`), when its step as it stands now hands a key over.
    pub fn next(
        seen: Option<&Seen>,
        row: Option<&Row>,
        listing: &Listing,
        cx: &Context,
    ) -> Option<Self> {
        let Some(s @ Seen::Member(m)) = seen else {
            return None;
        };
        match decide(row, s, listing, cx) {
            Step::Create | Step::Update { .. } => Some(Self::start(m, m.wanted_key()?)),
            _ => None,
        }
    }

    /// Out of `ahead`, the read for `account` when its `step` hands over the
    /// key read; a read for `account` that it does not hand over is dropped.
    pub fn take(ahead: &mut Option<Self>, account: &str, step: &Step, seen: &Seen) -> Option<Self> {
        let mine = ahead.take_if(|a| a.account == account)?;
        let wanted = match (step, seen) {
            (Step::Create | Step::Update { .. }, Seen::Member(m)) => m.wanted_key()?,
            _ => return None,
        };
        mine.is_for(account, wanted).then_some(mine)
    }

    /// True when this is the read of `key_id` for `account`.
    pub fn is_for(&self, account: &str, key_id: &str) -> bool {
        self.account == account && self.key_id == key_id
    }

    /// The key, once read.
    pub async fn key(mut self) -> Result<StoredKey, Error> {
        let read = self.read.take().map(|read| async move {
            // A task's failure says nothing more (its message is not shown).
            read.await.map_err(|_| {
                Error::aws_step(
                    "secretsmanager:GetSecretValue",
                    "the read ahead did not end",
                )
            })?
        });
        match read {
            Some(read) => read.await,
            None => Err(Error::aws_step(
                "secretsmanager:GetSecretValue",
                "the key was already taken",
            )),
        }
    }
}

impl Drop for Ahead {
    /// A read nobody takes is stopped; a key already read is dropped.
    fn drop(&mut self) {
        if let Some(read) = &self.read {
            read.abort();
        }
    }
}

/// Tasks side by side, at most `at_once` under way, each after the one
/// before it under the same key, which hands it its answer.
#[derive(Debug)]
pub struct Chains<T> {
    slots: Arc<Semaphore>,
    last: HashMap<String, JoinHandle<Option<T>>>,
}

impl<T: Send + 'static> Chains<T> {
    pub fn new(at_once: usize) -> Self {
        Self {
            slots: Arc::new(Semaphore::new(at_once.max(1))),
            last: HashMap::new(),
        }
    }

    /// Starts `task` once the last task under `key` has ended, with that
    /// task's answer (`None`: there was none, or it failed); waits first
    /// while `at_once` tasks are under way.
    pub async fn then<F, Fut>(&mut self, key: &str, task: F)
    where
        F: FnOnce(Option<T>) -> Fut + Send + 'static,
        Fut: Future<Output = Option<T>> + Send + 'static,
    {
        let Ok(slot) = self.slots.clone().acquire_owned().await else {
            return;
        };
        let before = self.last.remove(key);
        let handle = tokio::spawn(async move {
            let _slot = slot;
            let answer = match before {
                Some(earlier) => earlier.await.ok().flatten(),
                None => None,
            };
            task(answer).await
        });
        self.last.insert(key.to_string(), handle);
    }

    /// Waits for every task started.
    pub async fn finish(&mut self) {
        for (_, task) in self.last.drain() {
            let _ = task.await;
        }
    }
}

/// Rows and members' tags, written behind the run, in order for each
/// account.
#[derive(Debug)]
pub struct Writer {
    table: Table,
    /// Each task answers the hub's state its member's secret holds after
    /// it (when known).
    chains: Chains<HubState>,
    fault: Arc<Mutex<Option<Error>>>,
}

/// What one write is given: the row to put (when it changed), and the
/// member to tell `state` (when its secret was read).
#[derive(Debug)]
pub struct Write {
    pub account: String,
    pub row: Option<Row>,
    pub member: Option<(Member, HubState)>,
}

impl Write {
    /// What to tell `member` of `state`, unless it holds it already; its
    /// `hub` becomes `state`, what the write will leave on its secret.
    pub fn telling(member: &mut Member, state: HubState) -> Option<(Member, HubState)> {
        (member.hub != state).then(|| {
            let told = (member.clone(), state.clone());
            member.hub = state;
            told
        })
    }
}

impl Writer {
    /// At most `at_once` writes under way; more wait for one to end.
    pub fn new(table: Table, at_once: usize) -> Self {
        Self {
            table,
            chains: Chains::new(at_once),
            fault: Arc::new(Mutex::new(None)),
        }
    }

    /// Starts `write` after the account's earlier writes.
    pub async fn write(&mut self, write: Write) {
        if write.row.is_none() && write.member.is_none() {
            return;
        }
        let (table, fault) = (self.table.clone(), self.fault.clone());
        let account = write.account.clone();
        let task = move |known: Option<HubState>| async move {
            if let Some(row) = &write.row {
                if let Err(e) = table.put(row).await {
                    fault.lock().unwrap().get_or_insert(e);
                }
            }
            let (mut member, state) = write.member?;
            if let Some(held) = known {
                member.hub = held;
            }
            if let Err(e) = member.tell(&state).await {
                warn!(account = %write.account, error = %e, "could not write the hub's state on the member's secret");
            }
            Some(member.hub)
        };
        self.chains.then(&account, task).await;
    }

    /// True once a row could not be written: the run should stop.
    pub fn failed(&self) -> bool {
        self.fault.lock().unwrap().is_some()
    }

    /// Waits for every write started; the first row that could not be
    /// written is the error.
    pub async fn finish(mut self) -> Result<(), Error> {
        self.chains.finish().await;
        match self.fault.lock().unwrap().take() {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    const KEY: &str = "AKIAAAAAAAAAAAAAAAAA";
    const NEW_KEY: &str = "AKIABBBBBBBBBBBBBBBB";

    #[tokio::test]
    async fn each_keys_tasks_run_in_order_and_the_other_keys_beside_them() {
        let done = Arc::new(Mutex::new(Vec::new()));
        let log = |what: &'static str| {
            let done = done.clone();
            move || done.lock().unwrap().push(what)
        };
        let mut chains = Chains::new(4);
        let (a1, a2, b1) = (log("a1"), log("a2"), log("b1"));
        chains
            .then("a", |before: Option<u32>| async move {
                assert_eq!(before, None);
                tokio::time::sleep(Duration::from_millis(200)).await;
                a1();
                Some(1)
            })
            .await;
        chains
            .then("a", |before| async move {
                assert_eq!(before, Some(1), "the task before it answers");
                a2();
                Some(2)
            })
            .await;
        chains
            .then("b", |before| async move {
                assert_eq!(before, None);
                b1();
                None
            })
            .await;
        chains.finish().await;
        assert_eq!(*done.lock().unwrap(), ["b1", "a1", "a2"]);
        // A task that fails hands the next nothing, and the next runs.
        let mut chains = Chains::<u32>::new(1);
        chains.then("a", |_| async { panic!("a fault") }).await;
        let after = log("after");
        chains
            .then("a", |before| async move {
                assert_eq!(before, None);
                after();
                Some(3)
            })
            .await;
        chains.finish().await;
        assert_eq!(done.lock().unwrap().last(), Some(&"after"));
    }

    #[tokio::test]
    async fn a_key_read_ahead_goes_only_to_the_step_that_hands_that_key_over() {
        let m = Member::sample("111111111111", "aws-111111111111", KEY);
        let seen = Seen::Member(Box::new(m.clone()));
        let update = Step::Update {
            instance: "i-1".into(),
        };
        let test = Step::Test {
            instance: "i-1".into(),
        };
        let mut ahead = Some(Ahead::start(&m, KEY));
        // Another account's step leaves it where it is.
        assert!(Ahead::take(&mut ahead, "222222222222", &Step::Create, &seen).is_none());
        assert!(ahead.is_some());
        // Its own create takes it.
        let taken = Ahead::take(&mut ahead, "111111111111", &Step::Create, &seen);
        assert!(taken.is_some_and(|a| a.is_for("111111111111", KEY)) && ahead.is_none());
        // A step that sends no key drops it.
        ahead = Some(Ahead::start(&m, KEY));
        assert!(Ahead::take(&mut ahead, "111111111111", &test, &seen).is_none());
        assert!(ahead.is_none());
        // A rotation began since it was read: the pending key is wanted.
        let rotating = Seen::Member(Box::new(m.clone().with_pending(NEW_KEY)));
        ahead = Some(Ahead::start(&m, KEY));
        assert!(Ahead::take(&mut ahead, "111111111111", &update, &rotating).is_none());
        assert!(ahead.is_none());
    }
}
