//! What the emulator holds: its instances (with their secret keys: no
//! `Debug`), tests, activities, the requests it received and the faults it
//! was told to inject; and the views of them it shows (never a secret).

use std::collections::HashMap;
use std::sync::atomic::AtomicBool;
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use aws_config::SdkConfig;
use serde::Serialize;
use serde_json::{Value, json};

use crate::aws::Check;
use crate::config::{Config, Fault};
use crate::routes::Routes;
use crate::throttle::Throttle;

#[derive(Clone, Debug, Serialize)]
pub struct InstanceView {
    pub id: String,
    pub app_id: u64,
    pub name: String,
    pub connections: Vec<String>,
    pub access_key_id: String,
    pub enabled: bool,
    pub status: String,
    pub status_detail: String,
}

/// An activity of the AWS app, as the activities API lists it.
#[derive(Clone, Debug, Serialize)]
pub struct ActivityView {
    pub id: String,
    /// Milliseconds since the Unix epoch.
    pub timestamp: u64,
    pub instance_id: String,
    pub description: String,
}

#[derive(Clone, Debug, Serialize)]
pub struct TestView {
    pub test_id: String,
    pub instance_id: String,
    pub access_key_id: String,
    pub state: String,
    pub reason: Option<String>,
    pub checks: Vec<Check>,
}

/// A request as received, and the status it was answered.
#[derive(Clone, Debug)]
pub struct Received {
    pub method: String,
    /// The path with its query.
    pub path: String,
    /// The route name, "token", or None (control routes, unknown paths).
    pub route: Option<String>,
    /// 0 while it is being handled.
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
    /// When it arrived.
    pub at: Instant,
}

pub(crate) struct Shared {
    pub(crate) config: Config,
    pub(crate) routes: Routes,
    pub(crate) state: Mutex<State>,
    pub(crate) log_to_stderr: AtomicBool,
    /// What every test's AWS calls go through (`aws::tests_config`).
    pub(crate) aws: SdkConfig,
}

/// A stored instance; it holds the secret key, so it has no `Debug`.
pub(crate) struct Instance {
    pub(crate) id: String,
    /// The app it is an instance of (11599: AWS).
    pub(crate) app_id: u64,
    pub(crate) name: String,
    pub(crate) connections: Vec<String>,
    pub(crate) access_key_id: String,
    pub(crate) secret_access_key: String,
    pub(crate) enabled: bool,
    pub(crate) status: String,
    pub(crate) status_detail: String,
}

pub(crate) struct State {
    pub(crate) instances: Vec<Instance>,
    pub(crate) tests: Vec<TestView>,
    pub(crate) activities: Vec<ActivityView>,
    pub(crate) requests: Vec<Received>,
    pub(crate) faults: Vec<Fault>,
    pub(crate) throttle: Throttle,
    /// Issued access tokens and when they expire.
    pub(crate) tokens: HashMap<String, Instant>,
    pub(crate) secrets: Vec<String>,
    pub(crate) throttled: usize,
    pub(crate) test_duration: Duration,
}

impl Shared {
    pub(crate) fn lock(&self) -> MutexGuard<'_, State> {
        // A panic elsewhere leaves the state usable: keep serving.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Instance {
    pub(crate) fn view(&self) -> InstanceView {
        InstanceView {
            id: self.id.clone(),
            app_id: self.app_id,
            name: self.name.clone(),
            connections: self.connections.clone(),
            access_key_id: self.access_key_id.clone(),
            enabled: self.enabled,
            status: self.status.clone(),
            status_detail: self.status_detail.clone(),
        }
    }
}

impl TestView {
    /// As the `test` and `test_result` routes answer it.
    pub(crate) fn json(&self) -> Value {
        json!({
            "testId": self.test_id,
            "state": self.state,
            "reason": self.reason,
            "checks": self.checks,
        })
    }
}

/// Milliseconds since the Unix epoch, now.
pub(crate) fn now_millis() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}
