//! Every environment variable of the three functions, read in one place,
//! typed, each with its default and an error that names the variable. What
//! the variables configure is each part's own type ([`Readiness`] of a new
//! key, the portal's [`ApiSettings`]): this module only reads them, once, at
//! init. The SDK's own variables (`AWS_REGION`, credentials,
//! `AWS_ENDPOINT_URL`) are the SDK's to read.

use std::time::Duration;

use tracing::level_filters::LevelFilter;

use crate::access_key::Readiness;
use crate::error::Error;
use crate::names::StackRef;
use crate::portal::{ApiSettings, Routes, Timings};

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

/// `PORTAL_MODE` and what the mode needs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PortalChoice {
    /// `off` (the default): nothing is handed over.
    Off,
    /// `api`: `PORTAL_URL`, `PORTAL_CREDENTIALS_SECRET_ARN`, and optionally
    /// `PORTAL_LOGIN_URL`, `PORTAL_ROUTES` and the `PORTAL_*_MS` timings.
    Api(ApiSettings),
    /// `handoff`: `NOTIFY_TOPIC_ARN`.
    Handoff { topic_arn: String },
}

impl PortalChoice {
    pub fn read<L: Fn(&str) -> Option<String>>(env: &Env<L>) -> Result<Self, Error> {
        let mode = env.text("PORTAL_MODE").unwrap_or_default();
        match mode.to_ascii_lowercase().as_str() {
            "" | "off" => Ok(Self::Off),
            "api" => Ok(Self::Api(api_settings(env)?)),
            "handoff" => Ok(Self::Handoff {
                topic_arn: env
                    .text("NOTIFY_TOPIC_ARN")
                    .filter(|t| t.starts_with("arn:"))
                    .ok_or_else(|| {
                        Error::Config(
                            "PORTAL_MODE=handoff needs NOTIFY_TOPIC_ARN (an SNS topic ARN)".into(),
                        )
                    })?,
            }),
            other => Err(Error::Config(format!(
                "PORTAL_MODE={other:?} is not one of api, handoff, off"
            ))),
        }
    }
}

fn api_settings<L: Fn(&str) -> Option<String>>(env: &Env<L>) -> Result<ApiSettings, Error> {
    let required = |name: &str| {
        env.text(name)
            .ok_or_else(|| Error::Config(format!("PORTAL_MODE=api needs {name}")))
    };
    let url = secure_url("PORTAL_URL", &required("PORTAL_URL")?)?;
    let d = ApiSettings::new(&url, &required("PORTAL_CREDENTIALS_SECRET_ARN")?);
    let t = d.timings;
    let timings = Timings {
        request_timeout: env.millis("PORTAL_REQUEST_TIMEOUT_MS", t.request_timeout)?,
        retry_first: env.millis("PORTAL_RETRY_FIRST_MS", t.retry_first)?,
        retry_max: env.millis("PORTAL_RETRY_MAX_MS", t.retry_max)?,
        test_first_poll: env.millis("PORTAL_TEST_POLL_MS", t.test_first_poll)?,
        test_max_poll: env.millis("PORTAL_TEST_MAX_POLL_MS", t.test_max_poll)?,
    };
    timings.check().map_err(Error::Config)?;
    let routes = Routes::with_overrides(&env.text("PORTAL_ROUTES").unwrap_or_default())
        .map_err(|why| Error::Config(format!("PORTAL_ROUTES: {why}")))?;
    let login_url = match env.text("PORTAL_LOGIN_URL") {
        Some(v) => secure_url("PORTAL_LOGIN_URL", &v)?,
        None => d.login_url.clone(),
    };
    Ok(ApiSettings {
        login_url,
        routes,
        timings,
        ..d
    })
}

/// A URL the credentials are sent to: `https://`, or plain `http://` only
/// to a loopback address (the tests' emulators). Without a trailing `/`.
pub fn secure_url(name: &str, value: &str) -> Result<String, Error> {
    let bad = |why: &str| Error::Config(format!("{name}={value:?} {why}"));
    let url = reqwest::Url::parse(value).map_err(|_| bad("is not a URL"))?;
    let loopback = match url.host() {
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => return Err(bad("has no host")),
    };
    match url.scheme() {
        "https" => {}
        "http" if loopback => {}
        "http" => {
            return Err(bad(
                "is plain http: the portal credentials only go over https (http is allowed for a loopback address only, for tests)",
            ));
        }
        _ => return Err(bad("is not an https URL")),
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(bad(
            "holds credentials: give them in the credentials secret",
        ));
    }
    Ok(value.trim_end_matches('/').to_string())
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

/// What the health function reads besides (the template sets it).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HealthSettings {
    /// `STACK_ID`: the stack whose connector is checked.
    pub stack_id: String,
    /// `SECRET_ARN`: its connector secret.
    pub secret_arn: String,
    /// `ROTATION_DAYS`: the rotation schedule (default 30).
    pub rotation_days: u32,
    /// `ACTIVITY_WINDOW_HOURS`: how recent the last AWS activity in the portal must be (default 24).
    pub activity_window_hours: u32,
    /// `HEALTH_REPAIR`: `true` repairs what is safe (default `false`).
    pub repair: bool,
    /// `HEALTH_CHECK_TIMEOUT_MS`: each check's limit (default 40 s).
    pub check_timeout: Duration,
    /// `HEALTH_ROTATION_STUCK_MS`: a rotation whose AWSPENDING version is
    /// older than this did not finish (default 1 h; a rotation takes minutes).
    pub rotation_stuck_after: Duration,
    /// `HEALTH_ACTIVITY_GRACE_MS`: no activity is no finding while the
    /// connector's secret is younger than this: the portal takes hours to
    /// show a new account's first data (default: the activity window).
    pub activity_grace: Duration,
    /// `HEALTH_HANDOFF_GRACE_MS`: how long a hand-off may wait for a person
    /// before "hand-off not acted on" is a finding (default 24 h).
    pub handoff_grace: Duration,
}

impl HealthSettings {
    pub fn read<L: Fn(&str) -> Option<String>>(env: &Env<L>) -> Result<Self, Error> {
        let check_timeout = env.millis("HEALTH_CHECK_TIMEOUT_MS", Duration::from_secs(40))?;
        if check_timeout.is_zero() {
            return Err(Error::Config("HEALTH_CHECK_TIMEOUT_MS must be > 0".into()));
        }
        let activity_window_hours = env.number("ACTIVITY_WINDOW_HOURS", 24, 720)?;
        Ok(Self {
            stack_id: env.stack_id()?,
            secret_arn: env.arn("SECRET_ARN", "the connector secret's ARN")?,
            rotation_days: env.number("ROTATION_DAYS", 30, 365)?,
            activity_window_hours,
            repair: env.flag("HEALTH_REPAIR", false)?,
            check_timeout,
            rotation_stuck_after: env
                .millis("HEALTH_ROTATION_STUCK_MS", Duration::from_secs(3600))?,
            activity_grace: env.millis(
                "HEALTH_ACTIVITY_GRACE_MS",
                Duration::from_secs(u64::from(activity_window_hours) * 3600),
            )?,
            handoff_grace: env.millis("HEALTH_HANDOFF_GRACE_MS", Duration::from_secs(86_400))?,
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn env(pairs: &[(&str, &str)]) -> Env<impl Fn(&str) -> Option<String>> {
        let map: BTreeMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Env(move |k: &str| map.get(k).cloned())
    }

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
    fn the_portal_mode_needs_what_it_uses() {
        assert_eq!(PortalChoice::read(&env(&[])).unwrap(), PortalChoice::Off);
        let err = PortalChoice::read(&env(&[
            ("PORTAL_MODE", "api"),
            ("PORTAL_URL", "https://t.portal"),
        ]))
        .unwrap_err();
        assert!(
            err.to_string().contains("PORTAL_CREDENTIALS_SECRET_ARN"),
            "{err}"
        );
        for (url, says) in [
            ("t.portal", "not a URL"),
            ("http://t.portal", "plain http"),
            ("ftp://t.portal", "not an https URL"),
            ("https://user:pw@t.portal", "holds credentials"),
        ] {
            let err = PortalChoice::read(&env(&[
                ("PORTAL_MODE", "api"),
                ("PORTAL_URL", url),
                ("PORTAL_CREDENTIALS_SECRET_ARN", "s"),
            ]))
            .unwrap_err();
            assert!(
                err.to_string().contains(says) && err.to_string().contains("PORTAL_URL"),
                "{url}: {err}"
            );
        }
        for loopback in [
            "http://127.0.0.1:9",
            "http://localhost:8080/",
            "http://[::1]:7",
        ] {
            assert!(secure_url("PORTAL_URL", loopback).is_ok(), "{loopback}");
        }
        let err = PortalChoice::read(&env(&[
            ("PORTAL_MODE", "api"),
            ("PORTAL_URL", "https://t.portal"),
            ("PORTAL_CREDENTIALS_SECRET_ARN", "s"),
            ("PORTAL_LOGIN_URL", "http://login.example"),
        ]))
        .unwrap_err();
        assert!(err.to_string().contains("PORTAL_LOGIN_URL"), "{err}");
        let api = [
            ("PORTAL_MODE", "API"),
            ("PORTAL_URL", "https://t.portal/"),
            ("PORTAL_CREDENTIALS_SECRET_ARN", "s"),
            ("PORTAL_LOGIN_URL", "http://127.0.0.1:9/"),
            ("PORTAL_TEST_POLL_MS", "100"),
        ];
        let PortalChoice::Api(c) = PortalChoice::read(&env(&api)).unwrap() else {
            panic!("api mode");
        };
        assert_eq!(c.url, "https://t.portal");
        assert_eq!(c.login_url, "http://127.0.0.1:9");
        assert_eq!(c.timings.test_first_poll, Duration::from_millis(100));
        let with = |more: (&'static str, &'static str)| {
            let mut pairs = api.to_vec();
            pairs.push(more);
            PortalChoice::read(&env(&pairs)).unwrap_err().to_string()
        };
        assert!(with(("PORTAL_RETRY_MAX_MS", "1")).contains("portal timings"));
        let routes = with(("PORTAL_ROUTES", r#"{"lookup": "/x/"}"#));
        assert!(
            routes.contains("PORTAL_ROUTES") && routes.contains("find, create"),
            "{routes}"
        );
        let err = PortalChoice::read(&env(&[("PORTAL_MODE", "handoff")])).unwrap_err();
        assert!(err.to_string().contains("NOTIFY_TOPIC_ARN"), "{err}");
        let err = PortalChoice::read(&env(&[("PORTAL_MODE", "sometimes")])).unwrap_err();
        assert!(err.to_string().contains("PORTAL_MODE"), "{err}");
    }

    #[test]
    fn health_settings_are_checked() {
        const STACK: &str = "arn:aws:cloudformation:us-east-1:123456789012:stack/s/g";
        const SECRET: &str = "arn:aws:secretsmanager:us-east-1:123456789012:secret:x";
        let read = |more: &[(&str, &str)], drop: &str| {
            let pairs: Vec<(&str, &str)> = [("STACK_ID", STACK), ("SECRET_ARN", SECRET)]
                .iter()
                .chain(more)
                .filter(|(k, _)| *k != drop)
                .copied()
                .collect();
            HealthSettings::read(&env(&pairs))
        };
        let s = read(&[], "").unwrap();
        assert_eq!(
            (s.rotation_days, s.activity_window_hours, s.repair),
            (30, 24, false)
        );
        assert_eq!(s.activity_grace, Duration::from_secs(24 * 3600));
        let s = read(&[("ACTIVITY_WINDOW_HOURS", "6")], "").unwrap();
        assert_eq!(s.activity_grace, Duration::from_secs(6 * 3600));
        let s = read(&[("HEALTH_REPAIR", "True"), ("ROTATION_DAYS", "90")], "").unwrap();
        assert!(s.repair && s.rotation_days == 90);
        for (more, drop, says) in [
            (&[][..], "STACK_ID", "STACK_ID"),
            (&[][..], "SECRET_ARN", "SECRET_ARN"),
            (&[("HEALTH_REPAIR", "yes")][..], "", "HEALTH_REPAIR"),
            (&[("ROTATION_DAYS", "0")][..], "", "ROTATION_DAYS"),
        ] {
            let err = read(more, drop).unwrap_err().to_string();
            assert!(err.contains(says), "{err}");
        }
        assert_eq!(
            env(&[("STACK_ID", STACK)]).stack_name().as_deref(),
            Some("s")
        );
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
