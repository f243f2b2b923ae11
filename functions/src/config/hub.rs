//! What the organization hub's functions (the registrar and the
//! organization's health check) read.

use std::time::Duration;

use crate::error::Error;
use crate::portal::ApiSettings;
use crate::portal::Budget;

use super::Env;
use super::portal::{api_settings, hub_event_bus};

/// The least time between two of the hub's requests: half the budget's
/// even spread (2 s), so that slots a pause left unused are caught up on
/// while the portal's minute still has them. The budget, kept by the
/// answers ([`HUB_BUDGET`]), is what keeps the hub from a 429.
pub const HUB_PACE: Duration = Duration::from_millis(1_000);
/// The tenant's budget, 30 requests per rolling minute, which the hub
/// keeps by the portal's answers ([`crate::portal::pace::Pacer`]): a
/// request late on its way cannot bring 31 into the portal's minute.
pub const HUB_BUDGET: Budget = Budget {
    requests: 30,
    window: Duration::from_secs(60),
};

/// The hub's settings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HubSettings {
    /// The portal (`PORTAL_URL`, `PORTAL_CREDENTIALS_SECRET_ARN`, ...);
    /// `PORTAL_PACE_MS` defaults to [`HUB_PACE`].
    pub portal: ApiSettings,
    /// `HUB_TABLE`: the DynamoDB table of the accounts.
    pub table: String,
    /// `HUB_MEMBER_ROLE_NAME`: the role each member stack makes for the hub
    /// (default `cloudapps-hub-access`).
    pub member_role: String,
    /// `HUB_MEMBER_SECRET_NAME`: the member's connector secret (default
    /// `cloudapps/connector-key`).
    pub member_secret: String,
    /// `HUB_MEMBER_REGION`: where the member stacks are (default: the hub's
    /// own region).
    pub member_region: Option<String>,
    /// `HUB_TEST_TIMEOUT_MS`: a portal test whose result no listing showed
    /// after this long is started again (default 30 min).
    pub test_timeout: Duration,
    /// `HUB_GONE_AFTER_MS`: how long a member's role must have refused the
    /// hub before the account counts as gone (default 1 h; an account that
    /// left the organization, or whose secret is deleted, is gone at once).
    pub gone_after: Duration,
    /// `HUB_LIST_SHARE_PERCENT`: the share of the portal's budget the
    /// listings that read the tests' results may take (default 5).
    pub list_share_percent: u32,
    /// `HUB_RESULTS_EVERY_MS`: while other accounts wait to be connected,
    /// how long a new account's test result may wait for a listing
    /// (default 5 min; 0: read as soon as the share allows, as a
    /// rotation's pending key always is).
    pub results_every: Duration,
    /// `HUB_LISTING_KEPT_MS`: a run that goes on straight from the one
    /// before (its continuation, or a nudge's run, in the same execution
    /// environment) starts from that run's listing instead of listing
    /// every instance again, while that listing began less than this long
    /// ago (default 20 min; 0: every run lists every instance). A scheduled
    /// run always lists them all.
    pub listing_kept: Duration,
    /// `HUB_RUN_MARGIN_MS`: a run stops this long before its deadline
    /// (default 20 s).
    pub run_margin: Duration,
    /// `HUB_CONCURRENCY`: member accounts a run looks at at once, and rows
    /// it writes at once (default 4: a look through 1,000 accounts takes a
    /// minute or two, far ahead of the tenant's pace, and the hub's calls
    /// into the members stay a few at a time).
    pub concurrency: u32,
    /// `HUB_EVENT_BUS_ARN`: the hub's own bus. A run whose time ran out
    /// with work left puts an event there, and the bus's rule starts the
    /// next run at once (unset: the schedule starts it).
    pub event_bus: Option<String>,
}

impl HubSettings {
    pub fn read<L: Fn(&str) -> Option<String>>(env: &Env<L>) -> Result<Self, Error> {
        let mut portal = api_settings(env, "the hub")?;
        if env.text("PORTAL_PACE_MS").is_none() {
            portal.timings.pace = HUB_PACE;
        }
        portal.timings.budget = Some(HUB_BUDGET);
        let table = env
            .text("HUB_TABLE")
            .ok_or_else(|| Error::Config("the hub needs HUB_TABLE (its DynamoDB table)".into()))?;
        let name = |var: &str, default: &str, allowed: &str| -> Result<String, Error> {
            let value = env.text(var).unwrap_or_else(|| default.to_string());
            let ok = !value.is_empty()
                && value.len() <= 512
                && value
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || allowed.contains(c));
            if ok {
                Ok(value)
            } else {
                Err(Error::Config(format!(
                    "{var}={value:?}: letters, digits and {allowed:?} only"
                )))
            }
        };
        let member_region = match env.text("HUB_MEMBER_REGION") {
            None => None,
            Some(r)
                if r.chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-') =>
            {
                Some(r)
            }
            Some(r) => {
                return Err(Error::Config(format!(
                    "HUB_MEMBER_REGION={r:?} is not a region"
                )));
            }
        };
        let list_share_percent = env.number("HUB_LIST_SHARE_PERCENT", 5, 50)?;
        Ok(Self {
            portal,
            table,
            member_role: name("HUB_MEMBER_ROLE_NAME", "cloudapps-hub-access", "+=,.@_-")?,
            member_secret: name(
                "HUB_MEMBER_SECRET_NAME",
                "cloudapps/connector-key",
                "/_+=.@-",
            )?,
            member_region,
            test_timeout: env.millis("HUB_TEST_TIMEOUT_MS", Duration::from_secs(1800))?,
            gone_after: env.millis("HUB_GONE_AFTER_MS", Duration::from_secs(3600))?,
            list_share_percent,
            results_every: env.millis("HUB_RESULTS_EVERY_MS", Duration::from_secs(300))?,
            listing_kept: env.millis("HUB_LISTING_KEPT_MS", Duration::from_secs(1200))?,
            run_margin: env.millis("HUB_RUN_MARGIN_MS", Duration::from_secs(20))?,
            concurrency: env.number("HUB_CONCURRENCY", 4, 64)?,
            event_bus: hub_event_bus(env)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::test_env as env;

    const PORTAL: [(&str, &str); 3] = [
        ("PORTAL_URL", "https://t.portal"),
        (
            "PORTAL_CREDENTIALS_SECRET_ARN",
            "arn:aws:secretsmanager:us-east-1:1:secret:t",
        ),
        ("HUB_TABLE", "accounts"),
    ];

    #[test]
    fn the_hub_reads_its_defaults_and_refuses_what_is_wrong() {
        let s = HubSettings::read(&env(&PORTAL)).unwrap();
        assert_eq!(s.portal.timings.pace, HUB_PACE);
        assert_eq!(s.portal.timings.budget, Some(HUB_BUDGET));
        assert_eq!(s.member_role, "cloudapps-hub-access");
        assert_eq!(s.member_secret, "cloudapps/connector-key");
        assert_eq!((s.list_share_percent, s.concurrency), (5, 4));
        assert_eq!(s.event_bus, None);
        assert_eq!(s.listing_kept, Duration::from_secs(1200));
        assert_eq!(s.results_every, Duration::from_secs(300));
        let mut paced = PORTAL.to_vec();
        paced.push(("PORTAL_PACE_MS", "10"));
        let s = HubSettings::read(&env(&paced)).unwrap();
        assert_eq!(s.portal.timings.pace, Duration::from_millis(10));
        for (drop, more, says) in [
            ("HUB_TABLE", ("", ""), "HUB_TABLE"),
            ("PORTAL_URL", ("", ""), "the hub needs PORTAL_URL"),
            (
                "",
                ("HUB_MEMBER_ROLE_NAME", "a role"),
                "HUB_MEMBER_ROLE_NAME",
            ),
            ("", ("HUB_MEMBER_REGION", "Mars"), "HUB_MEMBER_REGION"),
            (
                "",
                ("HUB_EVENT_BUS_ARN", "arn:aws:sns:us-east-1:1:topic"),
                "HUB_EVENT_BUS_ARN",
            ),
            (
                "",
                ("HUB_LIST_SHARE_PERCENT", "90"),
                "HUB_LIST_SHARE_PERCENT",
            ),
            ("", ("HUB_LISTING_KEPT_MS", "20m"), "HUB_LISTING_KEPT_MS"),
            ("", ("HUB_RESULTS_EVERY_MS", "-1"), "HUB_RESULTS_EVERY_MS"),
        ] {
            let mut pairs: Vec<(&str, &str)> =
                PORTAL.iter().copied().filter(|(k, _)| *k != drop).collect();
            if !more.0.is_empty() {
                pairs.push(more);
            }
            let err = HubSettings::read(&env(&pairs)).unwrap_err().to_string();
            assert!(err.contains(says), "{err}");
        }
    }
}
