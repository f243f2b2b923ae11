//! When a portal request may start: at most one every `pace`, and never
//! past the tenant's rolling budget, kept by the portal's answers (a
//! request never starts within `window` of the answer to the one
//! `requests` before it: the portal counted that one no later than it
//! answered it, so no rolling window of the portal's ever holds more than
//! `requests` of ours, however late a request reached it).
//!
//! With the budget kept so, the pace may be shorter than the budget's even
//! spread (the hub's: 1 s against 2 s): slots a pause left unused (a run's
//! start, writes behind all busy) are caught up on while the window still
//! has them, instead of lost. The answers also outlive the process: the
//! hub hands them from one run to the next through its lease, so that a
//! run in another execution environment keeps the budget too.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::time::{add, as_millis, now_millis};

/// `requests` per rolling `window`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Budget {
    pub requests: u32,
    pub window: Duration,
}

impl Budget {
    /// The budget spread evenly: the time one request takes of it.
    pub fn spread(&self) -> Duration {
        self.window / self.requests.max(1)
    }
}

/// The slots of one process's requests.
pub struct Pacer {
    pace: Duration,
    budget: Option<Budget>,
    /// This pacer among the processes that hand their answers on.
    origin: String,
    state: Mutex<State>,
}

/// A process's answers still inside the budget's window, handed to the
/// next process: `at`, in milliseconds since the Unix epoch, oldest first.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Answers {
    pub by: String,
    pub at: Vec<u64>,
}

struct State {
    /// When the next request may start, by the pace.
    next: Instant,
    /// When the last requests were answered, oldest first, as many as the
    /// budget holds.
    answered: VecDeque<Instant>,
}

impl Pacer {
    pub fn new(pace: Duration, budget: Option<Budget>) -> Self {
        let since_epoch = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        Self {
            pace,
            budget,
            origin: format!("{}-{}", std::process::id(), since_epoch.as_nanos()),
            state: Mutex::new(State {
                next: Instant::now(),
                answered: VecDeque::new(),
            }),
        }
    }

    /// True when requests go as soon as they are asked for.
    pub fn unbounded(&self) -> bool {
        self.pace.is_zero() && self.budget.is_none()
    }

    /// Takes the next request's slot: when it may start.
    pub fn take(&self) -> Instant {
        let mut state = self.state.lock().unwrap();
        let start = self.start(&state, 0, Instant::now());
        state.next = add(start, self.pace);
        start
    }

    /// When the `n`-th request from now (1: the next) could start at the
    /// earliest, were each answered as soon as it started.
    pub fn start_of(&self, n: usize) -> Instant {
        let state = self.state.lock().unwrap();
        let mut at = Instant::now();
        for i in 0..n {
            at = self.start(&state, i, at);
            if i + 1 < n {
                at = add(at, self.pace);
            }
        }
        at
    }

    /// The earliest start, not before `at`, of the request `ahead` after
    /// the next one.
    fn start(&self, state: &State, ahead: usize, at: Instant) -> Instant {
        let mut start = state.next.max(at);
        if let Some(b) = self.budget {
            let held = (state.answered.len() + ahead).checked_sub(b.requests as usize);
            if let Some(oldest) = held.and_then(|i| state.answered.get(i)) {
                start = start.max(add(*oldest, b.window));
            }
        }
        start
    }

    /// Notes that a request was answered (or failed) now.
    pub fn answered(&self) {
        self.note(Instant::now());
    }

    fn note(&self, at: Instant) {
        let Some(b) = self.budget else {
            return;
        };
        let mut state = self.state.lock().unwrap();
        let place = state
            .answered
            .iter()
            .position(|a| *a > at)
            .unwrap_or(state.answered.len());
        state.answered.insert(place, at);
        while state.answered.len() > b.requests as usize {
            state.answered.pop_front();
        }
    }

    /// The answers still inside the budget's window: what another process
    /// needs to keep the budget after this one.
    pub fn recent(&self) -> Answers {
        let Some(b) = self.budget else {
            return Answers::default();
        };
        let (now, epoch) = (Instant::now(), now_millis());
        let state = self.state.lock().unwrap();
        let at = state
            .answered
            .iter()
            .map(|a| now.saturating_duration_since(*a))
            .filter(|ago| *ago < b.window)
            .map(|ago| epoch.saturating_sub(as_millis(ago)))
            .collect();
        Answers {
            by: self.origin.clone(),
            at,
        }
    }

    /// Takes in the answers another process recorded ([`Self::recent`]):
    /// the budget counts them as this process's own. This process's own,
    /// handed back to it, are already counted.
    pub fn seed(&self, answers: &Answers) {
        if answers.by == self.origin {
            return;
        }
        let (now, epoch) = (Instant::now(), now_millis());
        for at in answers.at.iter().filter(|at| **at <= epoch) {
            if let Some(at) = now.checked_sub(Duration::from_millis(epoch - at)) {
                self.note(at);
            }
        }
    }
}

#[cfg(test)]
#[path = "pace_tests.rs"]
mod tests;
