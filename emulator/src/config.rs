//! What the emulator is told at start: its credentials, throttle, test
//! duration, AWS endpoint, routes and answer shape; and the faults it can
//! be told to inject.

use std::collections::BTreeMap;
use std::time::Duration;

/// An Entra ID application the token endpoint accepts.
#[derive(Clone)]
pub struct EntraApp {
    pub tenant_id: String,
    pub client_id: String,
    pub client_secret: String,
}

#[derive(Clone)]
pub struct Config {
    /// The legacy API token, accepted as `Authorization: Token <t>`.
    pub api_token: Option<String>,
    /// The application the token endpoint issues bearer tokens to.
    pub entra: Option<EntraApp>,
    /// `expires_in` of the issued tokens (default 3599 s).
    pub token_lifetime: Duration,
    /// Requests per rolling window on the portal routes (default 30).
    pub limit: u32,
    /// The throttle's window (default 60 s).
    pub window: Duration,
    /// Send `Retry-After` on natural throttles (default false: the real
    /// portal documents none).
    pub retry_after_on_throttle: bool,
    /// How long a test stays `running` (default 3 s).
    pub test_duration: Duration,
    /// The AWS endpoint the tests call (None: the SDK's default).
    pub aws_endpoint: Option<String>,
    /// The region the tests call (default us-east-1).
    pub aws_region: String,
    /// Path templates by route name, replacing the defaults.
    pub routes: BTreeMap<String, String>,
    /// Answer in the shape the real portal is seen to use: an instance's
    /// state in `state` (and `stateDetail`), its `_id` a number when it
    /// can be, and list bodies `{"data": [...]}` alone (default false: the
    /// contract's `status`, `statusDetail`, `total`, `hasNext`).
    pub observed_shape: bool,
    /// Answer `find` with every instance of every app, whatever its
    /// filters say (default false): the connector must not trust them.
    pub ignores_filters: bool,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            api_token: None,
            entra: None,
            token_lifetime: Duration::from_secs(3599),
            limit: 30,
            window: Duration::from_secs(60),
            retry_after_on_throttle: false,
            test_duration: Duration::from_secs(3),
            aws_endpoint: None,
            aws_region: "us-east-1".to_string(),
            routes: BTreeMap::new(),
            observed_shape: false,
            ignores_filters: false,
        }
    }
}

#[derive(Clone, Debug)]
pub enum FaultKind {
    /// Answer this status with a JSON `{"error": ...}` body, nothing else.
    Status(u16),
    /// Answer this status with an HTML page, nothing else.
    Html(u16),
    /// Wait this long, then handle the request normally.
    Slow(Duration),
    /// 429 `TOO MANY REQUESTS`, with this `Retry-After` when Some.
    TooMany { retry_after: Option<String> },
}

/// A fault for the next `times` requests to `route` (a route name or
/// "token"; None: any request but the control routes).
#[derive(Clone, Debug)]
pub struct Fault {
    pub route: Option<String>,
    pub kind: FaultKind,
    pub times: u32,
}
