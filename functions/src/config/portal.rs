//! `PORTAL_MODE` and the settings of each mode.

use crate::error::Error;
use crate::portal::{ApiSettings, Routes, Timings};

use super::Env;

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
    /// `hub`: a member of an organization whose hub connects it; optionally
    /// `HUB_EVENT_BUS_ARN`, the hub's bus, to nudge it.
    Hub { event_bus: Option<String> },
}

impl PortalChoice {
    pub fn read<L: Fn(&str) -> Option<String>>(env: &Env<L>) -> Result<Self, Error> {
        let mode = env.text("PORTAL_MODE").unwrap_or_default();
        match mode.to_ascii_lowercase().as_str() {
            "" | "off" => Ok(Self::Off),
            "api" => Ok(Self::Api(api_settings(env, "PORTAL_MODE=api")?)),
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
            "hub" => Ok(Self::Hub {
                event_bus: hub_event_bus(env)?,
            }),
            other => Err(Error::Config(format!(
                "PORTAL_MODE={other:?} is not one of api, handoff, hub, off"
            ))),
        }
    }
}

/// `HUB_EVENT_BUS_ARN`: the organization hub's event bus, if set.
pub(super) fn hub_event_bus<L: Fn(&str) -> Option<String>>(
    env: &Env<L>,
) -> Result<Option<String>, Error> {
    match env.text("HUB_EVENT_BUS_ARN") {
        None => Ok(None),
        Some(b) if b.starts_with("arn:") && b.contains(":event-bus/") => Ok(Some(b)),
        Some(b) => Err(Error::Config(format!(
            "HUB_EVENT_BUS_ARN={b:?} is not an EventBridge event bus ARN"
        ))),
    }
}

/// The portal's settings (`PORTAL_*`); `who` names what needs them in errors.
pub(super) fn api_settings<L: Fn(&str) -> Option<String>>(
    env: &Env<L>,
    who: &str,
) -> Result<ApiSettings, Error> {
    let required = |name: &str| {
        env.text(name)
            .ok_or_else(|| Error::Config(format!("{who} needs {name}")))
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
        pace: env.millis("PORTAL_PACE_MS", t.pace)?,
        budget: t.budget,
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::test_env as env;
    use std::time::Duration;

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
}
