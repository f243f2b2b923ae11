//! The registrar: one run reconciles the organization with the portal, at
//! the tenant's pace, until it is done or its time is up.
//!
//! - Desired state: each active account of the organization, looked at
//!   through its own hub role (side by side, while the portal work goes on:
//!   the first accounts are acted on before the last are read).
//! - Actual state: the portal's AWS instances, one paged listing of them
//!   all (100 a page) at the run's start, taken while the accounts and the
//!   table are read (or the run before's: [`super::listing::Kept`]). After
//!   it, only the tests' results are read, from listings of the awaited
//!   accounts' instances alone ([`Listing`]: one page for up to 100), all
//!   of a run's listings within the share `HUB_LIST_SHARE_PERCENT` gives;
//!   while other accounts wait, only when a rotation's result is awaited
//!   or the others' have waited a while ([`super::cadence`]).
//! - The order of the work ([`Sight::keep`]): an account whose secret
//!   shows a rotation's pending key first, then the accounts that nudged,
//!   then the rest, each first come, first served. A nudge only says "look
//!   sooner": what is done is decided from what the hub reads itself. The
//!   nudges are read beside the work ([`NudgeReader`]); those a run ends
//!   without serving go back on the list, for the next run's first tiers.
//!
//! Nothing is lost when a run stops (its time, a fault, the portal down):
//! the rows, the secrets and the portal say where each account is, and the
//! next run goes on from there.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::mpsc::{self, Sender};
use tokio::task::JoinHandle;
use tracing::{info, warn};

use crate::error::Error;
use crate::portal::{PortalClient, RemoteInstance};
use crate::time::signed_millis;

use super::act::{Done, act, hub_state, now};
use super::cadence::{Awaiting, affordable, listing_due};
use super::listing::{Asked, Listing, names};
use super::looks::{Look, Lookout, Sight, look_order};
use super::members::{Reach, Seen};
use super::nudges::{NudgeReader, hand_back, take};
use super::pipeline::{Ahead, Write, Writer};
use super::plan::{Context, Step, decide, names_of};
use super::report::{RunReport, since, timed};
use super::table::{Row, Table, is_account_id};

/// What the registrar needs.
#[derive(Debug)]
pub struct Registrar {
    pub portal: PortalClient,
    pub table: Table,
    pub reach: Reach,
    pub org: aws_sdk_organizations::Client,
    pub tuning: Tuning,
}

/// The registrar's tuning (from [`crate::config::HubSettings`]).
#[derive(Clone, Copy, Debug)]
pub struct Tuning {
    pub test_timeout: Duration,
    pub gone_after: Duration,
    pub list_share_percent: u32,
    /// While other accounts wait, how long a new account's test result
    /// may wait for a listing (a rotation's is read at once).
    pub results_every: Duration,
    pub concurrency: usize,
    /// The least time between two listings that only read tests' results,
    /// and between two reads of the nudges while there is work.
    pub poll: Duration,
    /// One request's share of the portal's budget (2 s of 30 a minute):
    /// what a listing's pages cost in time.
    pub pace: Duration,
}

/// What a run starts from.
struct Start {
    /// The organization's active accounts.
    accounts: BTreeSet<String>,
    rows: BTreeMap<String, Row>,
    /// The accounts to serve first.
    nudged: BTreeSet<String>,
    /// Looks still to come.
    expected: usize,
    /// The looks at every account, under way.
    observer: JoinHandle<()>,
}

/// Consecutive failed portal requests that end a run (the portal is down,
/// or refuses the hub's credential: the next run tries again).
const GIVE_UP_AFTER: usize = 5;

impl Registrar {
    /// One run, until everything is settled or `deadline`. `nudged`: the
    /// accounts to look at first.
    pub async fn run(
        &self,
        deadline: Instant,
        nudged: BTreeSet<String>,
    ) -> Result<RunReport, Error> {
        Ok(self.run_from(deadline, nudged, None).await?.0)
    }

    /// One run, from the listing the run before `kept` (see
    /// [`super::listing::Kept`]), else from a listing of every instance.
    /// With its report, the listing it leaves for the next run, if any.
    pub async fn run_from(
        &self,
        deadline: Instant,
        nudged: BTreeSet<String>,
        kept: Option<Listing>,
    ) -> Result<(RunReport, Option<Listing>), Error> {
        let sent_before = self.portal.requests_sent();
        let began = Instant::now();
        let mut report = RunReport {
            listing_kept: kept.is_some(),
            ..RunReport::default()
        };
        let (tx, mut rx) = mpsc::channel::<Look>(256);
        let lookout = Lookout::new(self.reach.clone(), self.tuning.concurrency);
        // The first listing goes out while the organization's accounts,
        // the table and the nudges are read, and the looks begin: none
        // waits on the other.
        let first = async {
            match kept {
                Some(listing) => Ok(listing),
                None => (self.list(deadline, &mut report, None).await)
                    .map(|(taken_at, instances)| Listing::new(taken_at, instances)),
            }
        };
        let (first, start) = tokio::join!(first, self.start(nudged, lookout.clone(), tx.clone()));
        let Start {
            accounts,
            mut rows,
            mut nudged,
            mut expected,
            observer,
        } = start?;
        report.accounts = accounts.len();
        // The accounts nudged that this run has not served yet.
        let mut unserved = nudged.clone();
        let mut listing = match first {
            Ok(listing) => listing,
            Err(e) => {
                observer.abort();
                hand_back(&self.table, &unserved).await;
                return Err(e);
            }
        };
        let ours = Arc::new(accounts.clone());
        let table = self.table.clone();
        let mut reader = NudgeReader::start(
            move || {
                let (table, ours) = (table.clone(), ours.clone());
                async move { take(&table, &ours).await }
            },
            self.tuning.poll,
        );
        let mut sight = Sight::default();
        let mut work: VecDeque<String> = VecDeque::new();
        let mut awaiting = Awaiting::default();
        let mut failures_in_a_row = 0usize;
        // A narrow listing missed an account: the next lists them all.
        let mut whole_next = false;
        let mut writer = Writer::new(self.table.clone(), self.tuning.concurrency);
        let mut ahead: Option<Ahead> = None;
        loop {
            if Instant::now() >= deadline || writer.failed() {
                break;
            }
            while let Ok(look) = rx.try_recv() {
                expected = expected.saturating_sub(1);
                sight.keep(look, &mut work, &nudged);
            }
            for account in reader.ready() {
                // Looked at again even when it was nudged before in this
                // run: what it changed since is what counts.
                nudged.insert(account.clone());
                unserved.insert(account.clone());
                expected += 1;
                lookout.later(&account, &tx);
            }
            let Some(account) = work.pop_front() else {
                if expected > 0 {
                    let answer = tokio::time::timeout_at(deadline.into(), rx.recv());
                    let answer = timed(&mut report.spent.looks, answer).await;
                    match answer {
                        Ok(Some(look)) => {
                            expected -= 1;
                            sight.keep(look, &mut work, &nudged);
                        }
                        Ok(None) | Err(_) => break,
                    }
                    continue;
                }
                if awaiting.is_empty() {
                    // A nudge since the last read is work too.
                    let late = timed(&mut report.spent.nudges, reader.now()).await;
                    if late.is_empty() {
                        report.settled = true;
                        break;
                    }
                    for account in late {
                        nudged.insert(account.clone());
                        unserved.insert(account.clone());
                        expected += 1;
                        lookout.later(&account, &tx);
                    }
                    continue;
                }
                // Only tests' results are awaited: the next listing shows them.
                let (asked, pages) =
                    awaiting.next_listing(&listing, whole_next, &rows, &sight.seen);
                let pages = pages as u32;
                let poll = self.tuning.poll.max(self.tuning.pace * pages * 4);
                let due = listing_due(listing.latest, poll);
                if crate::time::reaches(due, deadline) {
                    break;
                }
                timed(&mut report.spent.tests, tokio::time::sleep(due)).await;
                let relisted = self.relist(deadline, &mut report, &mut listing, asked);
                let Some(missed) = relisted.await else {
                    whole_next = true;
                    break;
                };
                whole_next = missed;
                awaiting.first_in(&mut work);
                continue;
            };
            let (asked, pages) = awaiting.next_listing(&listing, whole_next, &rows, &sight.seen);
            let share = self.tuning.list_share_percent;
            let worked = self.portal.requests_sent() - sent_before - report.listed;
            let rotating = |a: &str| sight.rotating(a);
            let due = awaiting.due(rotating, self.tuning.results_every, Instant::now());
            if due && affordable(share, report.listed + pages, worked) {
                let relisted = self.relist(deadline, &mut report, &mut listing, asked);
                let Some(missed) = relisted.await else {
                    whole_next = true;
                    break;
                };
                whole_next = missed;
                work.push_front(account);
                awaiting.first_in(&mut work);
                continue;
            }
            let Some(s) = sight.seen.get(&account) else {
                continue;
            };
            let names = names_of(&rows);
            let mut cx = Context {
                now: now(),
                nudged: nudged.contains(&account),
                test_timeout: signed_millis(self.tuning.test_timeout),
                gone_after: signed_millis(self.tuning.gone_after),
                names: &names,
            };
            let step = decide(rows.get(&account), s, &listing, &cx);
            if sends(&step) && too_late_to_send(deadline, self.portal.start_of(2)) {
                // The run's own deadline is no portal fault: the account
                // is left as it is, for the next run.
                break;
            }
            unserved.remove(&account);
            if step == Step::Nothing {
                // The verdict on the member's secret is the row's: one that
                // did not reach it (a write that failed, a tag changed by
                // hand) is written again.
                let member = match (rows.get(&account), sight.seen.get_mut(&account)) {
                    (Some(row), Some(Seen::Member(m))) => Write::telling(m, hub_state(row)),
                    _ => None,
                };
                let row = None;
                let write = writer.write(Write {
                    account,
                    row,
                    member,
                });
                timed(&mut report.spent.writes, write).await;
                continue;
            }
            let mine = Ahead::take(&mut ahead, &account, &step, s);
            report.keys_read_ahead += usize::from(mine.is_some());
            if let Some(next) = work.front().filter(|_| sends(&step)) {
                cx.nudged = nudged.contains(next);
                ahead = Ahead::next(sight.seen.get(next), rows.get(next), &listing, &cx).or(ahead);
            }
            let region = self.reach.region.clone();
            let row = rows
                .entry(account.clone())
                .or_insert_with(|| Row::new(&account, &region));
            let before = row.clone();
            match s {
                Seen::Refused(_) => {
                    row.unreachable_since.get_or_insert(now());
                }
                Seen::Member(_) => row.unreachable_since = None,
                _ => {}
            }
            let member = match sight.seen.get_mut(&account) {
                Some(Seen::Member(m)) => Some(m.as_mut()),
                _ => None,
            };
            let done = act(&self.portal, step, row, member.as_deref(), mine, deadline);
            let done = timed(&mut report.spent.steps, done).await;
            match done {
                Done::Sent => {
                    // A nudge buys one round of requests (a failed test is
                    // run again once, not at every listing).
                    nudged.remove(&account);
                    report.acted += 1;
                    failures_in_a_row = 0;
                }
                Done::Failed => {
                    report.failures += 1;
                    failures_in_a_row += 1;
                }
                Done::Quiet => {}
            }
            if row.status == crate::hub_tags::Status::Pending {
                awaiting.insert(account.clone(), Instant::now());
            }
            let changed = *row != before;
            if changed {
                row.updated = now();
            }
            // Written behind, while the next account's requests go on.
            let told = member.and_then(|m| Write::telling(m, hub_state(row)));
            let row = changed.then(|| row.clone());
            let write = writer.write(Write {
                account,
                row,
                member: told,
            });
            timed(&mut report.spent.writes, write).await;
            if failures_in_a_row >= GIVE_UP_AFTER {
                warn!(
                    failures = failures_in_a_row,
                    "the portal keeps failing: this run stops, the next goes on"
                );
                report.gave_up = true;
                break;
            }
        }
        observer.abort();
        drop(ahead);
        // Nudges read after the last turn are work left: the next run
        // starts at once for them, as for any other.
        let left = timed(&mut report.spent.nudges, reader.stop()).await;
        report.settled &= left.is_empty();
        unserved.extend(left);
        timed(&mut report.spent.nudges, hand_back(&self.table, &unserved)).await;
        let written = timed(&mut report.spent.writes, writer.finish()).await;
        report.spent.total = since(began);
        report.requests = self.portal.requests_sent() - sent_before;
        info!(report = ?report, "registrar run");
        let kept = (!whole_next && !report.gave_up).then_some(listing);
        written.map(|()| (report, kept))
    }

    /// A run's start: the organization's active accounts, the table's
    /// rows and the nudges waiting (taken off the list, after those of the
    /// run's event); then the looks at every account begin ([`look_order`]),
    /// and those at accounts that left the organization.
    async fn start(
        &self,
        nudged: BTreeSet<String>,
        lookout: Lookout,
        tx: Sender<Look>,
    ) -> Result<Start, Error> {
        let (accounts, rows) = tokio::try_join!(self.accounts(), self.table.rows())?;
        let taken = take(&self.table, &accounts).await;
        let nudged: BTreeSet<String> = nudged
            .into_iter()
            .filter(|a| accounts.contains(a))
            .chain(taken)
            .collect();
        // Accounts that left the organization are gone; the rest are looked at.
        let left: Vec<String> = rows
            .keys()
            .filter(|a| !accounts.contains(*a))
            .cloned()
            .collect();
        let order = look_order(&accounts, &nudged, &rows);
        let expected = left.len() + order.len();
        let observer = tokio::spawn(lookout.all(left, order, tx));
        Ok(Start {
            accounts,
            rows,
            nudged,
            expected,
            observer,
        })
    }

    /// The organization's active accounts.
    async fn accounts(&self) -> Result<BTreeSet<String>, Error> {
        let mut accounts = BTreeSet::new();
        let mut pages = self.org.list_accounts().into_paginator().send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(Error::aws("organizations:ListAccounts"))?;
            for a in page.accounts() {
                let active = a.status().is_some_and(|s| s.as_str() == "ACTIVE");
                if let Some(id) = a.id().filter(|id| active && is_account_id(id)) {
                    accounts.insert(id.to_string());
                }
            }
        }
        Ok(accounts)
    }

    /// One paged listing of the portal's AWS instances (of those of the
    /// accounts `asked` about only, when given).
    async fn list(
        &self,
        deadline: Instant,
        report: &mut RunReport,
        asked: Option<&[Asked]>,
    ) -> Result<(i64, Vec<RemoteInstance>), Error> {
        let (taken_at, start, sent) = (now(), Instant::now(), self.portal.requests_sent());
        let names = asked.map(names);
        let instances = self.portal.list(names.as_deref(), deadline).await;
        report.spent.listings += since(start);
        report.listed += self.portal.requests_sent() - sent;
        report.listings += 1;
        Ok((taken_at, instances?))
    }

    /// A listing in the middle of a run, into `listing`: of every instance,
    /// or of those of the accounts `asked` about. `Some(true)`: the narrow
    /// listing missed one of them. `None` ends the run, which keeps what
    /// it did, unsettled: the next run goes on (and if the portal is down,
    /// its first listing fails and leaves the retry to the schedule).
    async fn relist(
        &self,
        deadline: Instant,
        report: &mut RunReport,
        listing: &mut Listing,
        asked: Option<Vec<Asked>>,
    ) -> Option<bool> {
        match self.list(deadline, report, asked.as_deref()).await {
            Ok((taken_at, instances)) => Some(match asked {
                None => {
                    *listing = Listing::new(taken_at, instances);
                    false
                }
                Some(asked) => !listing.refresh(taken_at, &asked, instances).is_empty(),
            }),
            Err(e) => {
                report.failures += 1;
                warn!(error = %e, "a listing failed: this run stops, the next goes on");
                None
            }
        }
    }
}

/// True for a step that sends portal requests (a create or an update, each
/// with its test, at most two).
fn sends(step: &Step) -> bool {
    matches!(
        step,
        Step::Create | Step::Update { .. } | Step::Test { .. } | Step::Disable { .. }
    )
}

/// True when a step's second request, which could start at `second` at
/// the earliest (the pace, the budget), no longer fits before `deadline`.
fn too_late_to_send(deadline: Instant, second: Instant) -> bool {
    let needed = crate::portal::transport::MIN_ATTEMPT * 2;
    crate::time::add(second, needed) >= deadline
}

#[cfg(test)]
#[path = "registrar_tests.rs"]
mod tests;
