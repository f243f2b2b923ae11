//! What the health function reads besides the shared settings.

use std::time::Duration;

use crate::error::Error;

use super::Env;

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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::test_env as env;

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
}
