//! The hub's registrar as Lambda runs it (hub-template.yaml): invoked
//! asynchronously by its schedule (every 15 minutes) and by the bus rule
//! on the event a run puts there when it ran out of time with work left;
//! and with batches of the nudge queue, where the bus rule sends each
//! member's nudge: a batch is what came in during the batching window
//! (20 s, scaled) that opens with its first nudge, up to 1,000, and at
//! most 2 batches are in the function at once (the queue's
//! MaximumConcurrency: a batch beyond waits, as its messages wait in the
//! queue). At most 3 executions at once (reserved concurrency: an
//! invocation beyond waits, as Lambda's asynchronous queue keeps a
//! throttled event and tries it again); each with the function's timeout
//! (900 s, scaled). Each invocation is the function's handler,
//! `Hub::on_registrar_event`: the nudges are recorded, then a run unless
//! another holds the table's lease.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use cloudapps::hub::Hub;
use cloudapps::portal::hub::{NUDGE_DETAIL_TYPE, NUDGE_SOURCE};
use serde_json::{Value, json};
use tokio::sync::Semaphore;
use tokio::task::JoinHandle;

/// The registrar's reserved concurrency.
const RESERVED: usize = 3;
/// The nudge queue's batches in the function at once (MaximumConcurrency).
const BATCHES: usize = 2;
/// The most nudges in a batch (BatchSize).
const BATCH_SIZE: usize = 1000;

/// One invocation of the registrar.
#[derive(Clone, Debug)]
pub struct Invocation {
    /// "schedule", "nudge" (a batch of the nudge queue) or "continue" (a
    /// run that ran out of time started the next through the hub's bus).
    pub kind: &'static str,
    pub queued: Instant,
    pub started: Instant,
    pub ended: Instant,
    /// Its run's report (`None`: it found the lease taken, or failed).
    pub run: Option<Value>,
    pub error: Option<String>,
}

pub struct Lambda {
    hub: Arc<Hub>,
    slots: Arc<Semaphore>,
    pollers: Arc<Semaphore>,
    /// The nudges in the queue, not yet in a batch.
    queued: Mutex<Vec<String>>,
    batching_window: Duration,
    timeout: Duration,
    hub_account: String,
    seq: AtomicU64,
    pub log: Mutex<Vec<Invocation>>,
    tasks: Mutex<Vec<JoinHandle<()>>>,
}

impl Lambda {
    /// `timeout`: the function's, scaled; `batching_window`: the nudge
    /// queue's, scaled.
    pub fn new(
        hub: Arc<Hub>,
        timeout: Duration,
        batching_window: Duration,
        hub_account: &str,
    ) -> Arc<Self> {
        Arc::new(Self {
            hub,
            slots: Arc::new(Semaphore::new(RESERVED)),
            pollers: Arc::new(Semaphore::new(BATCHES)),
            queued: Mutex::new(Vec::new()),
            batching_window,
            timeout,
            hub_account: hub_account.to_string(),
            seq: AtomicU64::new(0),
            log: Mutex::new(Vec::new()),
            tasks: Mutex::new(Vec::new()),
        })
    }

    /// What the bus rule sends to the nudge queue when `account`'s
    /// connector nudges; the first nudge of a batch opens its window.
    pub fn nudge(self: &Arc<Self>, account: &str) {
        let first = {
            let mut queued = self.queued.lock().unwrap();
            queued.push(account.to_string());
            queued.len() == 1
        };
        if first {
            self.batch();
        }
    }

    /// The next batch: once a poller is free and the window has passed,
    /// what the queue holds (up to `BATCH_SIZE`; the rest makes the next).
    fn batch(self: &Arc<Self>) {
        let me = self.clone();
        let task = tokio::spawn(async move {
            let queued = Instant::now();
            let _poller = me.pollers.clone().acquire_owned().await.unwrap();
            tokio::time::sleep(me.batching_window).await;
            let (batch, more) = {
                let mut q = me.queued.lock().unwrap();
                let n = q.len().min(BATCH_SIZE);
                let batch: Vec<String> = q.drain(..n).collect();
                (batch, !q.is_empty())
            };
            if more {
                me.batch();
            }
            let records: Vec<Value> = batch
                .iter()
                .map(|account| {
                    let event = json!({
                        "version": "0",
                        "source": NUDGE_SOURCE,
                        "detail-type": NUDGE_DETAIL_TYPE,
                        "account": account,
                        "region": crate::support::REGION,
                        "detail": {"why": "the connector was created"},
                    });
                    json!({"eventSource": "aws:sqs", "body": event.to_string()})
                })
                .collect();
            me.call("nudge", queued, json!({ "Records": records }))
                .await;
        });
        self.tasks.lock().unwrap().push(task);
    }

    /// What the hub's bus delivers when a run ran out of time with work left.
    fn continued(self: &Arc<Self>) {
        let event = json!({
            "version": "0",
            "source": cloudapps::hub::CONTINUE_SOURCE,
            "detail-type": cloudapps::hub::CONTINUE_DETAIL_TYPE,
            "account": self.hub_account,
            "region": crate::support::REGION,
            "detail": {},
        });
        self.invoke("continue", event);
    }

    /// What the schedule delivers.
    pub fn scheduled(self: &Arc<Self>) {
        let event = json!({
            "version": "0",
            "source": "aws.events",
            "detail-type": "Scheduled Event",
            "account": self.hub_account,
            "region": crate::support::REGION,
            "detail": {},
        });
        self.invoke("schedule", event);
    }

    fn invoke(self: &Arc<Self>, kind: &'static str, event: Value) {
        let me = self.clone();
        let queued = Instant::now();
        let task = tokio::spawn(async move { me.call(kind, queued, event).await });
        self.tasks.lock().unwrap().push(task);
    }

    /// One execution, once a slot of the reserved concurrency is free.
    async fn call(self: &Arc<Self>, kind: &'static str, queued: Instant, event: Value) {
        let _slot = self.slots.clone().acquire_owned().await.unwrap();
        let started = Instant::now();
        let id = format!("bench-{:06}", self.seq.fetch_add(1, Ordering::Relaxed));
        // A deadline under 10^12 ms is taken as the time left.
        let left = self.timeout.as_millis() as u64;
        let out = self.hub.on_registrar_event(&event, &id, left).await;
        let (run, error) = match out {
            Ok(v) if v.get("accounts").is_some() => (Some(v), None),
            Ok(_) => (None, None),
            Err(e) => (None, Some(e.to_string())),
        };
        // The run put its event on the hub's bus: the rule starts the next.
        if run.as_ref().is_some_and(|r| r["continued"] == json!(true)) {
            self.continued();
        }
        self.log.lock().unwrap().push(Invocation {
            kind,
            queued,
            started,
            ended: Instant::now(),
            run,
            error,
        });
    }

    /// Invokes the registrar every `every` from `first` (the schedule),
    /// until the task is aborted.
    pub fn schedule(self: &Arc<Self>, first: Instant, every: Duration) -> JoinHandle<()> {
        let me = self.clone();
        tokio::spawn(async move {
            let mut next = first;
            loop {
                tokio::time::sleep_until(next.into()).await;
                me.scheduled();
                next += every;
            }
        })
    }

    /// Waits for every invocation so far to end.
    pub async fn drain(&self) {
        loop {
            let tasks: Vec<JoinHandle<()>> = std::mem::take(&mut *self.tasks.lock().unwrap());
            if tasks.is_empty() {
                return;
            }
            for t in tasks {
                let _ = t.await;
            }
        }
    }
}
