//! Every environment variable of the functions, read in one place, typed,
//! each with its default and an error that names the variable. What the
//! variables configure is each part's own type ([`Readiness`] of a new key,
//! the portal's [`crate::portal::ApiSettings`], the hub's [`HubSettings`]):
//! this module only reads them, once, at init. The SDK's own variables (`AWS_REGION`, credentials,
//! `AWS_ENDPOINT_URL`) are the SDK's to read.

use std::time::Duration;

use tracing::level_filters::LevelFilter;

use crate::access_key::Readiness;
use crate::error::Error;
use crate::names::StackRef;

mod health;
mod hub;
mod portal;

pub use health::HealthSettings;
pub use hub::HubSettings;
pub use portal::{PortalChoice, secure_url};

/// Reads variables through a lookup: the process environment, or a map in
/// tests. An empty (or blank) value is the same as an unset one.
pub struct Env<L: Fn(&str) -> Option<String>>(pub L);

/// The process environment.
pub fn process_env() -> Env<impl Fn(&str) -> Option<String>> {
    Env(|name: &str| std::env::var(name).ok())
}

impl<L: Fn(&str) -> Option<String>> Env<L> {
    /// The trimmed value of `name`; `None` when unset or blank.
    pub fn text(&self, name: &str) -> Option<String> {
        (self.0)(name)
            .map(|v| v.trim().to_string())
            .filter(|v| !v.is_empty())
    }

    /// A duration in milliseconds, or `default` when unset.
    pub fn millis(&self, name: &str, default: Duration) -> Result<Duration, Error> {
        match self.text(name) {
            None => Ok(default),
            Some(v) => v.parse::<u64>().map(Duration::from_millis).map_err(|_| {
                Error::Config(format!("{name}={v:?} is not a number of milliseconds"))
            }),
        }
    }

    /// A whole number from 1 to `max`, or `default` when unset.
    pub fn number(&self, name: &str, default: u32, max: u32) -> Result<u32, Error> {
        match self.text(name) {
            None => Ok(default),
            Some(v) => v
                .parse::<u32>()
                .ok()
                .filter(|n| (1..=max).contains(n))
                .ok_or_else(|| {
                    Error::Config(format!("{name}={v:?} is not a number from 1 to {max}"))
                }),
        }
    }

    /// `true` or `false` (any case), or `default` when unset.
    pub fn flag(&self, name: &str, default: bool) -> Result<bool, Error> {
        match self.text(name).map(|v| v.to_ascii_lowercase()).as_deref() {
            None => Ok(default),
            Some("true") => Ok(true),
            Some("false") => Ok(false),
            Some(other) => Err(Error::Config(format!(
                "{name}={other:?} is not true or false"
            ))),
        }
    }

    /// An ARN, required; `what` says what it should be.
    pub fn arn(&self, name: &str, what: &str) -> Result<String, Error> {
        self.text(name)
            .filter(|v| v.starts_with("arn:"))
            .ok_or_else(|| Error::Config(format!("{name} ({what}) is not set")))
    }

    /// `STACK_ID`: the stack this function belongs to (the template sets it).
    pub fn stack_id(&self) -> Result<String, Error> {
        self.text("STACK_ID")
            .filter(|s| StackRef::parse(s, "-").is_ok())
            .ok_or_else(|| Error::Config("STACK_ID (the stack's ARN) is not set".into()))
    }

    /// The stack's name from `STACK_ID`, when it can be read: for reports
    /// of a function that could not be set up.
    pub fn stack_name(&self) -> Option<String> {
        let id = self.stack_id().ok()?;
        StackRef::parse(&id, "-").ok().map(|s| s.stack_name)
    }
}

/// Tuning shared by every function.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Settings {
    /// `CFN_DEADLINE_MARGIN_MS`: how long before the Lambda deadline the
    /// handler is cut off so that FAILED can still be delivered. Default 10 s.
    pub deadline_margin: Duration,
    /// `KEY_READY_TIMEOUT_MS` (120 s), `KEY_READY_POLL_MS` (250 ms),
    /// `KEY_READY_MAX_POLL_MS` (2 s): how long a new key may take to
    /// authenticate, and the pauses between two checks.
    pub key_ready: Readiness,
    /// `PREFLIGHT_SETTLE_MS`: how long a pre-flight refusal of a new key is
    /// tried again (IAM propagates a new policy in seconds). Default 20 s.
    pub preflight_settle: Duration,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            deadline_margin: Duration::from_secs(10),
            key_ready: Readiness::default(),
            preflight_settle: Duration::from_secs(20),
        }
    }
}

impl Settings {
    pub fn read<L: Fn(&str) -> Option<String>>(env: &Env<L>) -> Result<Self, Error> {
        let d = Self::default();
        let key_ready = Readiness {
            timeout: env.millis("KEY_READY_TIMEOUT_MS", d.key_ready.timeout)?,
            first_poll: env.millis("KEY_READY_POLL_MS", d.key_ready.first_poll)?,
            max_poll: env.millis("KEY_READY_MAX_POLL_MS", d.key_ready.max_poll)?,
        };
        if key_ready.first_poll.is_zero() || key_ready.max_poll < key_ready.first_poll {
            return Err(Error::Config(
                "KEY_READY_POLL_MS must be > 0 and <= KEY_READY_MAX_POLL_MS".into(),
            ));
        }
        Ok(Self {
            deadline_margin: env.millis("CFN_DEADLINE_MARGIN_MS", d.deadline_margin)?,
            key_ready,
            preflight_settle: env.millis("PREFLIGHT_SETTLE_MS", d.preflight_settle)?,
        })
    }
}

/// The configuration of a function: the shared tuning, the portal mode and
/// the topic people are told through (`NOTIFY_TOPIC_ARN`, optional but in
/// `handoff` mode).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FunctionConfig {
    pub settings: Settings,
    pub portal: PortalChoice,
    pub notify_topic: Option<String>,
}

impl FunctionConfig {
    pub fn read<L: Fn(&str) -> Option<String>>(env: &Env<L>) -> Result<Self, Error> {
        let portal = PortalChoice::read(env)?;
        let notify_topic = match env.text("NOTIFY_TOPIC_ARN") {
            None => None,
            Some(t) if t.starts_with("arn:") => Some(t),
            Some(t) => {
                return Err(Error::Config(format!(
                    "NOTIFY_TOPIC_ARN={t:?} is not an SNS topic ARN"
                )));
            }
        };
        Ok(Self {
            settings: Settings::read(env)?,
            portal,
            notify_topic,
        })
    }
}

/// How the functions log: `AWS_LAMBDA_LOG_FORMAT` (`JSON` or text) and
/// `AWS_LAMBDA_LOG_LEVEL` (or `RUST_LOG`; INFO when unset or unreadable),
/// as Lambda's logging configuration sets them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LogSettings {
    pub level: LevelFilter,
    pub json: bool,
}

impl LogSettings {
    pub fn read<L: Fn(&str) -> Option<String>>(env: &Env<L>) -> Self {
        let asked = env
            .text("AWS_LAMBDA_LOG_LEVEL")
            .or_else(|| env.text("RUST_LOG"))
            .unwrap_or_default();
        Self {
            level: asked.parse().unwrap_or(LevelFilter::INFO),
            json: env
                .text("AWS_LAMBDA_LOG_FORMAT")
                .is_some_and(|f| f.eq_ignore_ascii_case("json")),
        }
    }
}

/// A lookup over `pairs`, for the tests of each reader.
#[cfg(test)]
pub(crate) fn test_env(pairs: &[(&str, &str)]) -> Env<impl Fn(&str) -> Option<String> + use<>> {
    let map: std::collections::BTreeMap<String, String> = pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    Env(move |k: &str| map.get(k).cloned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use test_env as env;

    #[test]
    fn settings_defaults_and_overrides() {
        assert_eq!(Settings::read(&env(&[])).unwrap(), Settings::default());
        let s = Settings::read(&env(&[
            ("CFN_DEADLINE_MARGIN_MS", "1500"),
            ("KEY_READY_TIMEOUT_MS", " 30000 "),
        ]))
        .unwrap();
        assert_eq!(s.deadline_margin, Duration::from_millis(1500));
        assert_eq!(s.key_ready.timeout, Duration::from_secs(30));
        let err = Settings::read(&env(&[("KEY_READY_POLL_MS", "soon")]))
            .unwrap_err()
            .to_string();
        assert!(err.contains("KEY_READY_POLL_MS"), "{err}");
    }

    #[test]
    fn log_settings_follow_lambdas_logging_config() {
        let s = LogSettings::read(&env(&[
            ("AWS_LAMBDA_LOG_FORMAT", "json"),
            ("AWS_LAMBDA_LOG_LEVEL", "DEBUG"),
        ]));
        assert_eq!((s.level, s.json), (LevelFilter::DEBUG, true));
        let s = LogSettings::read(&env(&[("RUST_LOG", "loud")]));
        assert_eq!((s.level, s.json), (LevelFilter::INFO, false));
    }
}
