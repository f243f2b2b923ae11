//! The nudges during a registrar run: read beside the work, never between
//! two portal requests. The tenant's pace does not make up a slot nobody
//! used, so an AWS call in line (the table's `GetItem` and `UpdateItem`,
//! slow under a stack set's load) costs the run the slots it takes.
//!
//! Nothing read is lost: a read under way when the run stops ends first,
//! and what the run took no turn on goes back on the table's list
//! ([`hand_back`]) for the next run, in the same tier.

use std::collections::BTreeSet;
use std::future::Future;
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tracing::warn;

use super::table::Table;

/// How long [`NudgeReader::stop`] waits for a read under way.
const STOP_WITHIN: Duration = Duration::from_secs(10);

enum Ask {
    /// Read now, and say when it is done.
    Now(oneshot::Sender<()>),
    Stop,
}

/// Reads the nudges every `every`, in its own task; the run takes what it
/// read without waiting ([`NudgeReader::ready`]).
#[derive(Debug)]
pub struct NudgeReader {
    asks: mpsc::UnboundedSender<Ask>,
    taken: mpsc::UnboundedReceiver<String>,
    task: JoinHandle<()>,
}

impl NudgeReader {
    /// Starts reading with `read` (one read of the list: the accounts
    /// taken off it), the first after `every`.
    pub fn start<F, Fut>(mut read: F, every: Duration) -> Self
    where
        F: FnMut() -> Fut + Send + 'static,
        Fut: Future<Output = Vec<String>> + Send + 'static,
    {
        let (asks, mut asked) = mpsc::unbounded_channel();
        let (tx, taken) = mpsc::unbounded_channel();
        let task = tokio::spawn(async move {
            loop {
                let reply = tokio::select! {
                    () = tokio::time::sleep(every) => None,
                    ask = asked.recv() => match ask {
                        Some(Ask::Now(reply)) => Some(reply),
                        Some(Ask::Stop) | None => return,
                    },
                };
                // A read is never cut in the middle: what it took off the
                // list reaches the run, or goes back on the list.
                for account in read().await {
                    let _ = tx.send(account);
                }
                if let Some(reply) = reply {
                    let _ = reply.send(());
                }
            }
        });
        Self { asks, taken, task }
    }

    /// What was read and not taken yet, without waiting.
    pub fn ready(&mut self) -> Vec<String> {
        std::iter::from_fn(|| self.taken.try_recv().ok()).collect()
    }

    /// A read now, waited for (when the run has nothing else to do), with
    /// what was read before it.
    pub async fn now(&mut self) -> Vec<String> {
        let (reply, done) = oneshot::channel();
        if self.asks.send(Ask::Now(reply)).is_ok() {
            let _ = done.await;
        }
        self.ready()
    }

    /// Stops reading once a read under way has ended; what was read and
    /// not taken.
    pub async fn stop(mut self) -> Vec<String> {
        let _ = self.asks.send(Ask::Stop);
        if tokio::time::timeout(STOP_WITHIN, &mut self.task)
            .await
            .is_err()
        {
            warn!("a read of the nudges did not end: the accounts are looked at anyway");
        }
        self.ready()
    }
}

impl Drop for NudgeReader {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// One read of the nudges: the accounts that nudged, among `ours` (the
/// organization's). A nudge from anywhere else is ignored, and said so.
pub async fn take(table: &Table, ours: &BTreeSet<String>) -> Vec<String> {
    let taken = match table.take_nudges().await {
        Ok(t) => t,
        Err(e) => {
            warn!(error = %e, "could not read the nudges: the accounts are looked at anyway");
            return Vec::new();
        }
    };
    taken
        .into_iter()
        .filter(|a| {
            let ours = ours.contains(a);
            if !ours {
                warn!(account = %a, "a nudge from an account outside the organization: ignored");
            }
            ours
        })
        .collect()
}

/// Puts the accounts that nudged and were not served back on the list:
/// the next run serves them among its nudges, not behind every account.
/// Best effort: every account is looked at by every run anyway.
pub async fn hand_back(table: &Table, unserved: &BTreeSet<String>) {
    if unserved.is_empty() {
        return;
    }
    match table.nudge(unserved).await {
        Ok(()) => tracing::info!(
            accounts = unserved.len(),
            "nudged accounts not served yet: handed to the next run"
        ),
        Err(e) => warn!(error = %e, "could not hand the nudges to the next run"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Instant;

    /// A list read in `takes` long: the n-th read takes account "n".
    fn slow_list(takes: Duration) -> (Arc<AtomicUsize>, impl FnMut() -> SlowRead) {
        let reads = Arc::new(AtomicUsize::new(0));
        let counter = reads.clone();
        let read = move || {
            let n = counter.fetch_add(1, Ordering::SeqCst) + 1;
            let read: SlowRead = Box::pin(async move {
                tokio::time::sleep(takes).await;
                vec![n.to_string()]
            });
            read
        };
        (reads, read)
    }

    type SlowRead = std::pin::Pin<Box<dyn Future<Output = Vec<String>> + Send>>;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_slow_read_never_holds_the_run_up_and_what_it_took_is_not_lost() {
        let (reads, read) = slow_list(Duration::from_millis(400));
        let mut reader = NudgeReader::start(read, Duration::from_millis(10));
        // The first read is under way: the run takes nothing yet, and
        // does not wait for it.
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert_eq!(reads.load(Ordering::SeqCst), 1);
        let asked = Instant::now();
        assert!(reader.ready().is_empty());
        assert!(asked.elapsed() < Duration::from_millis(50));
        // Once read, it is there.
        tokio::time::sleep(Duration::from_millis(400)).await;
        assert_eq!(reader.ready().first().map(String::as_str), Some("1"));
        // Stopped in the middle of a read: the read ends, and what it
        // took is handed over, not dropped with the task.
        tokio::time::sleep(Duration::from_millis(100)).await;
        let under_way = reads.load(Ordering::SeqCst);
        let left = reader.stop().await;
        assert!(left.contains(&under_way.to_string()), "{left:?}");
        let last = reads.load(Ordering::SeqCst);
        assert_eq!(left.last(), Some(&last.to_string()), "{left:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert_eq!(reads.load(Ordering::SeqCst), last, "no read after stop");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_read_now_brings_what_came_before_it_and_its_own() {
        let (reads, read) = slow_list(Duration::from_millis(50));
        // The schedule's reads far apart: only the read asked for runs.
        let mut reader = NudgeReader::start(read, Duration::from_secs(3600));
        assert_eq!(reader.now().await, vec!["1".to_string()]);
        assert_eq!(reader.now().await, vec!["2".to_string()]);
        assert!(reader.stop().await.is_empty());
        assert_eq!(reads.load(Ordering::SeqCst), 2);
    }
}
