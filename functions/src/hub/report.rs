//! What one registrar run did, and where its time went: read by the
//! benchmark (each run's report) and logged at each run's end.

use std::future::Future;
use std::time::Instant;

use serde::Serialize;

use crate::time::as_millis;

/// What one run did.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct RunReport {
    /// Active accounts of the organization.
    pub accounts: usize,
    /// Accounts acted on with portal requests.
    pub acted: usize,
    /// Listings taken (of every instance, or of those awaited).
    pub listings: usize,
    /// The run started from the listing of the run before it (its own
    /// execution environment's), not from one of every instance.
    pub listing_kept: bool,
    /// Portal requests the listings took (their pages; retries included).
    pub listed: u64,
    /// Portal requests sent (retries included).
    pub requests: u64,
    /// Portal requests that failed.
    pub failures: usize,
    /// Keys handed over that were read ahead, while the account before
    /// them was served.
    pub keys_read_ahead: usize,
    /// Nothing was left to do (false: the time ran out first).
    pub settled: bool,
    /// The portal kept failing: the run stopped early and leaves the next
    /// attempt to the schedule.
    pub gave_up: bool,
    /// The time ran out with work left, and the next run was started at
    /// once through the hub's bus.
    pub continued: bool,
    /// Where the run's time went.
    pub spent: Spent,
}

/// Where a run's time went, in milliseconds. What the parts leave of
/// `total` is the run's own work: the organization's accounts, the table,
/// the decisions.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Spent {
    /// The whole run, until its writes behind ended.
    pub total: u64,
    /// Steps carried out: their portal requests at the pace, and the keys
    /// not read ahead.
    pub steps: u64,
    /// Listings (paged, at the pace).
    pub listings: u64,
    /// Nothing queued: waiting for a look at an account to answer.
    pub looks: u64,
    /// Only tests' results awaited: waiting for the next listing's turn.
    pub tests: u64,
    /// The writes behind all busy: waiting for one to end (and, at the
    /// run's end, for all of them).
    pub writes: u64,
    /// Reading the nudges in line: when nothing else is left, and at the
    /// run's end (the reads at its start are beside its first listing,
    /// those during the work beside the work).
    pub nudges: u64,
}

/// Awaits `work`, adding the time it took to `spent`.
pub async fn timed<T>(spent: &mut u64, work: impl Future<Output = T>) -> T {
    let start = Instant::now();
    let out = work.await;
    *spent += since(start);
    out
}

/// Milliseconds since `start`.
pub fn since(start: Instant) -> u64 {
    as_millis(start.elapsed())
}
