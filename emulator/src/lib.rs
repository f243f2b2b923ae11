//! An emulator of the Defender for Cloud Apps portal as this project uses it
//! (docs/portal-contract.md), for the tests (in-process, [`Emulator::start`])
//! and the local run (the `portal-emulator` binary).
//!
//! It serves on `http://127.0.0.1:PORT`:
//! - both authentications: `Authorization: Token <t>` (the legacy API token,
//!   [`Config::api_token`]) and `Authorization: Bearer <t>` with a token that
//!   its own Entra ID token endpoint issued, `POST /{tenant}/oauth2/v2.0/token`
//!   (client credentials grant for [`Config::entra`], scope
//!   `05a65629-4c1b-48c1-a78b-804c4abdd4af/.default`); an expired token gets 401;
//! - the app connector routes `find`, `create`, `update`, `test`,
//!   `test_result`, `status` and `disable` (paths overridable by name with
//!   [`Config::routes`]), with the contract's bodies and statuses;
//! - the throttle: [`Config::limit`] requests per rolling [`Config::window`]
//!   on the portal routes, then 429 `TOO MANY REQUESTS` (with `Retry-After`
//!   only when [`Config::retry_after_on_throttle`]);
//! - the asynchronous test: it really calls AWS ([`Config::aws_endpoint`],
//!   e.g. moto) with the instance's key (sts:GetCallerIdentity,
//!   cloudtrail:DescribeTrails, GetTrailStatus and LookupEvents,
//!   s3:ListAllMyBuckets, iam:GetAccountSummary), needs a logging
//!   multi-region trail, and stays `running` for [`Config::test_duration`];
//! - the documented activities API, `POST /api/v1/activities/` (route
//!   `activities`: filters `service` and `date`, `sortDirection`, `limit`),
//!   fed by the AWS calls its tests made: each call that worked is an
//!   activity of the AWS app, as the real portal records what it reads;
//!   [`Emulator::age_activities`] makes them older (data stopped flowing);
//! - [`Emulator::set_status`]: the portal's own verdict on an instance
//!   (`error` with a detail, say), as its periodic scans set it;
//! - fault injection ([`Emulator::inject`]): an error status, an HTML page, a
//!   slow answer or a 429 with or without `Retry-After`, per route.
//! - what a real tenant may hold or do besides: instances of other apps, or
//!   AWS instances connected by hand ([`Emulator::add_instance`]); `find`
//!   ignoring its filters ([`Config::ignores_filters`]); answers in the shape
//!   the real portal is seen to use, `state` for `status` and `{"data"}`
//!   alone ([`Config::observed_shape`]). `find` pages by `skip`/`limit`
//!   (100 at most).
//!
//! Each request is handled in this order: it is recorded, a matching fault
//! is used, the throttle counts it, its credentials are checked, the route
//! answers.
//!
//! Control routes (no authentication, no throttle, no faults), for the
//! local run:
//! - `GET /_emulator/instances`, `GET /_emulator/tests`: the instances and
//!   tests, as [`InstanceView`] and [`TestView`] (no secret);
//! - `POST /_emulator/faults` with a JSON list such as
//!   `[{"route":"create","kind":"status","status":503,"times":2},
//!   {"kind":"html","status":200}, {"kind":"slow","ms":3000},
//!   {"kind":"too_many","retry_after":"2"}]` (`route` omitted: any request,
//!   `times` omitted: 1) → 204.

mod answer;
mod auth;
mod aws;
mod config;
mod portal;
mod routes;
mod server;
mod state;
mod throttle;
mod trial;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::watch;

pub use aws::Check;
pub use config::{Config, EntraApp, Fault, FaultKind};
pub use routes::{DEFAULT_ROUTES, TOKEN};
pub use state::{ActivityView, InstanceView, Received, TestView};

use routes::Routes;
use state::{Instance, Shared, State};
use throttle::Throttle;

/// A running emulator; it stops when dropped.
pub struct Emulator {
    pub url: String,
    shared: Arc<Shared>,
    stop: watch::Sender<bool>,
}

impl Emulator {
    /// Serves on 127.0.0.1 and a free port, on the current tokio runtime.
    pub async fn start(config: Config) -> std::io::Result<Emulator> {
        Emulator::start_on(config, 0).await
    }

    /// Serves on 127.0.0.1:`port` (0: a free one).
    pub async fn start_on(config: Config, port: u16) -> std::io::Result<Emulator> {
        let routes = Routes::new(&config.routes)?;
        let listener = TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], port))).await?;
        let url = format!("http://{}", listener.local_addr()?);
        let mut secrets: Vec<String> = config.api_token.iter().cloned().collect();
        secrets.extend(config.entra.iter().map(|e| e.client_secret.clone()));
        let state = State {
            instances: Vec::new(),
            tests: Vec::new(),
            activities: Vec::new(),
            requests: Vec::new(),
            faults: Vec::new(),
            throttle: Throttle::new(config.limit, config.window),
            tokens: HashMap::new(),
            secrets,
            throttled: 0,
            test_duration: config.test_duration,
        };
        let aws = aws::tests_config(config.aws_endpoint.as_deref(), &config.aws_region).await;
        let shared = Arc::new(Shared {
            config,
            routes,
            state: Mutex::new(state),
            log_to_stderr: AtomicBool::new(false),
            aws,
        });
        let (stop, stopped) = watch::channel(false);
        tokio::spawn(server::serve(listener, shared.clone(), stopped));
        Ok(Emulator { url, shared, stop })
    }

    /// Writes one line per request to stderr: method, path without query,
    /// route and status (never headers or bodies).
    pub fn log_to_stderr(&self) {
        self.shared.log_to_stderr.store(true, Ordering::Relaxed);
    }

    pub fn inject(&self, fault: Fault) {
        self.shared.lock().faults.push(fault);
    }

    /// How long the tests started from now stay running.
    pub fn set_test_duration(&self, d: Duration) {
        self.shared.lock().test_duration = d;
    }

    pub fn instances(&self) -> Vec<InstanceView> {
        self.shared
            .lock()
            .instances
            .iter()
            .map(Instance::view)
            .collect()
    }

    pub fn tests(&self) -> Vec<TestView> {
        self.shared.lock().tests.clone()
    }

    /// Moves every activity `by` into the past: as if no data had come
    /// since.
    pub fn age_activities(&self, by: Duration) {
        let by = u64::try_from(by.as_millis()).unwrap_or(u64::MAX);
        for a in &mut self.shared.lock().activities {
            a.timestamp = a.timestamp.saturating_sub(by);
        }
    }

    /// Adds an instance as a person or another tenant's tool would have
    /// made it: of the app `app_id` (11599: AWS; e.g. 20595 for another
    /// app), named `name`, holding `access_key_id` (a key the caller made
    /// up or issued), connected. Returns its id.
    pub fn add_instance(&self, app_id: u64, name: &str, access_key_id: &str) -> String {
        let id: String = (0..24).map(|_| fastrand::digit(16)).collect();
        self.shared.lock().instances.push(Instance {
            id: id.clone(),
            app_id,
            name: name.to_string(),
            connections: vec!["SecurityAuditing".to_string()],
            access_key_id: access_key_id.to_string(),
            secret_access_key: String::new(),
            enabled: true,
            status: "connected".to_string(),
            status_detail: String::new(),
        });
        id
    }

    /// Sets the status the portal shows for the instance named `name`, as
    /// its own scans do (`error` with a detail, say). False when there is
    /// no such instance.
    pub fn set_status(&self, name: &str, status: &str, detail: &str) -> bool {
        let mut state = self.shared.lock();
        let Some(i) = state.instances.iter_mut().find(|i| i.name == name) else {
            return false;
        };
        i.status = status.to_string();
        i.status_detail = detail.to_string();
        true
    }

    /// Every request received, in order.
    pub fn requests(&self) -> Vec<Received> {
        self.shared.lock().requests.clone()
    }

    /// The secrets a leak scan looks for: the API token, the client secret,
    /// every access token issued and every secret key received.
    pub fn secrets_seen(&self) -> Vec<String> {
        self.shared.lock().secrets.clone()
    }

    /// How many 429s were answered (natural and injected).
    pub fn throttled(&self) -> usize {
        self.shared.lock().throttled
    }
}

impl Drop for Emulator {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
    }
}
