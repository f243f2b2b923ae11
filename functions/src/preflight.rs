//! Pre-flight: what "Test API" in the portal checks, done first by us with
//! the new key, so that a failure names the missing permission or the trail
//! problem instead of the portal's "Test API failed".
//!
//! With the key itself: sts:GetCallerIdentity (it is the connector's user),
//! cloudtrail:DescribeTrails, cloudtrail:GetTrailStatus,
//! cloudtrail:LookupEvents, s3:ListAllMyBuckets, iam:GetAccountSummary; and
//! some multi-region trail is logging. A refusal right after the user and its
//! policy were made can be IAM propagating: it is tried again for a bounded
//! time (`PREFLIGHT_SETTLE_MS`) before it is reported.

use std::time::Instant;

use aws_config::SdkConfig;
use aws_config::retry::RetryConfig;
use aws_sdk_sts::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_sts::operation::get_caller_identity::GetCallerIdentityOutput;
use tracing::{info, warn};

use crate::access_key;
use crate::aws::Aws;
use crate::backoff::Backoff;
use crate::config::Settings;
use crate::error::{Error, is_access_denied};
use crate::key::StoredKey;
use crate::names::UserRef;
use crate::time;
use crate::trail;

/// The calls the portal makes with the key, in the order they are reported.
pub const CALLS: [&str; 6] = [
    "sts:GetCallerIdentity",
    "cloudtrail:DescribeTrails",
    "cloudtrail:GetTrailStatus",
    "cloudtrail:LookupEvents",
    "s3:ListAllMyBuckets",
    "iam:GetAccountSummary",
];

/// How one call went.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    Allowed,
    /// Refused for lack of permission.
    Denied,
    /// Failed otherwise (code or kind, never a message that could echo input).
    Failed(String),
}

/// What one run of the pre-flight saw.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Report {
    pub calls: Vec<(&'static str, Outcome)>,
    /// `Ok(trail name)` of a multi-region trail that is logging, or what is wrong.
    pub trail: Result<String, String>,
}

impl Report {
    pub fn passed(&self) -> bool {
        self.trail.is_ok() && self.calls.iter().all(|(_, o)| *o == Outcome::Allowed)
    }

    fn denied(&self) -> Vec<&'static str> {
        self.calls
            .iter()
            .filter(|(_, o)| *o == Outcome::Denied)
            .map(|(c, _)| *c)
            .collect()
    }

    /// One sentence per problem, each saying what to do.
    pub fn problems(&self, user: &UserRef) -> Vec<String> {
        let mut problems = Vec::new();
        let denied = self.denied();
        if !denied.is_empty() {
            problems.push(format!(
                "the key of {user} is refused {} (AccessDenied): the policy {} must allow {}, and no other policy, boundary or SCP may deny {}",
                denied.join(", "),
                user.policy_name(),
                if denied.len() == 1 { "it" } else { "them" },
                if denied.len() == 1 { "it" } else { "them" },
            ));
        }
        for (call, outcome) in &self.calls {
            if let Outcome::Failed(why) = outcome {
                problems.push(format!("{call} failed: {why}"));
            }
        }
        if let Err(why) = &self.trail {
            problems.push(format!("CloudTrail: {why}"));
        }
        problems
    }

    /// The summary of a pass, for Data and the logs.
    pub fn summary(&self) -> String {
        match &self.trail {
            Ok(trail) => format!(
                "{} calls allowed; trail {trail} is multi-region and logging",
                self.calls.len()
            ),
            Err(why) => why.clone(),
        }
    }
}

/// Runs the pre-flight with `key` until it passes, or until a refusal has
/// lasted `settings.preflight_settle` (or `deadline` is near); then fails
/// with every problem named.
pub async fn check(
    sdk: &SdkConfig,
    key: &StoredKey,
    user: &UserRef,
    account: &str,
    settings: &Settings,
    deadline: Instant,
) -> Result<Report, Error> {
    let started = Instant::now();
    let give_up = deadline.min(time::add(started, settings.preflight_settle));
    let mut backoff = Backoff::new(settings.key_ready.first_poll, settings.key_ready.max_poll);
    let clients = KeyClients::new(&access_key::signed_with(
        sdk,
        key,
        RetryConfig::standard().with_max_attempts(2),
    ));
    loop {
        let report = probe(&clients, user, account).await;
        if report.passed() {
            info!(user = %user, summary = %report.summary(), "pre-flight passed");
            return Ok(report);
        }
        let pause = backoff.next_pause();
        // Only a refusal may be IAM still propagating; the rest is final.
        let may_settle = !report.denied().is_empty();
        if !may_settle || time::reaches(pause, give_up) {
            let problems = report.problems(user);
            warn!(user = %user, problems = ?problems, "pre-flight failed");
            return Err(Error::Preflight(problems.join("; ")));
        }
        tokio::time::sleep(pause).await;
    }
}

/// The clients the checks use, signed with the key under test.
pub struct KeyClients {
    sts: aws_sdk_sts::Client,
    ct: aws_sdk_cloudtrail::Client,
    s3: aws_sdk_s3::Client,
    iam: aws_sdk_iam::Client,
}

impl KeyClients {
    /// From an SDK configuration that signs with the key.
    pub fn new(signed: &SdkConfig) -> Self {
        let aws = Aws::new(signed);
        Self {
            sts: aws_sdk_sts::Client::new(signed),
            ct: aws.cloudtrail,
            s3: aws.s3,
            iam: aws.iam,
        }
    }
}

/// One run of every check, with the key's clients.
pub async fn probe(clients: &KeyClients, user: &UserRef, account: &str) -> Report {
    let KeyClients { sts, ct, s3, iam } = clients;

    let (identity, trails, events, buckets, summary) = tokio::join!(
        sts.get_caller_identity().send(),
        ct.describe_trails().include_shadow_trails(true).send(),
        ct.lookup_events().max_results(1).send(),
        s3.list_buckets().send(),
        iam.get_account_summary().send(),
    );

    let mut calls = vec![(
        "sts:GetCallerIdentity",
        identity_outcome(identity, user, account),
    )];
    let (describe, trail) = match trails {
        Ok(out) => (Outcome::Allowed, Some(out)),
        Err(e) => (outcome(&e), None),
    };
    calls.push(("cloudtrail:DescribeTrails", describe));

    // GetTrailStatus of each multi-region trail, in its home region.
    let mut status = Outcome::Allowed;
    let trail = match trail {
        None => Err("the trails could not be listed (cloudtrail:DescribeTrails)".to_string()),
        Some(out) => {
            let multi: Vec<_> = out
                .trail_list()
                .iter()
                .filter(|t| t.is_multi_region_trail() == Some(true))
                .filter_map(|t| Some((t.name()?, t.trail_arn()?, t.home_region())))
                .collect();
            let mut stopped = Vec::new();
            let mut logging = None;
            for (name, arn, home) in multi {
                match trail::read_logging_raw(ct, arn, home).await {
                    Ok(true) => {
                        logging = Some(name.to_string());
                        break;
                    }
                    Ok(false) => stopped.push(name.to_string()),
                    Err(e) => {
                        status = outcome(&e);
                        stopped.push(format!("{name} (status unreadable)"));
                    }
                }
            }
            match (logging, stopped.is_empty()) {
                (Some(name), _) => Ok(name),
                (None, true) => Err(
                    "no multi-region trail exists: create one (CloudTrail: Ensure) or turn \"apply to all regions\" on for an existing trail".into(),
                ),
                (None, false) => Err(format!(
                    "no multi-region trail is logging ({} not logging): start logging (cloudtrail:StartLogging)",
                    stopped.join(", ")
                )),
            }
        }
    };
    calls.push(("cloudtrail:GetTrailStatus", status));
    calls.push((
        "cloudtrail:LookupEvents",
        events.map_or_else(|e| outcome(&e), |_| Outcome::Allowed),
    ));
    calls.push((
        "s3:ListAllMyBuckets",
        buckets.map_or_else(|e| outcome(&e), |_| Outcome::Allowed),
    ));
    calls.push((
        "iam:GetAccountSummary",
        summary.map_or_else(|e| outcome(&e), |_| Outcome::Allowed),
    ));
    Report { calls, trail }
}

fn identity_outcome<E>(
    identity: Result<GetCallerIdentityOutput, SdkError<E, aws_sdk_sts::config::http::HttpResponse>>,
    user: &UserRef,
    account: &str,
) -> Outcome
where
    E: ProvideErrorMetadata,
{
    match identity {
        Ok(id) if id.account() == Some(account) && access_key::is_user(id.arn(), &user.name) => {
            Outcome::Allowed
        }
        Ok(id) => Outcome::Failed(format!(
            "the key authenticates as {} instead of {user}",
            id.arn().unwrap_or("an unknown identity")
        )),
        Err(e) => outcome(&e),
    }
}

fn outcome<E: ProvideErrorMetadata>(
    e: &SdkError<E, aws_sdk_sts::config::http::HttpResponse>,
) -> Outcome {
    if is_access_denied(e) {
        return Outcome::Denied;
    }
    let status = crate::error::raw_status(e).map_or(String::new(), |s| format!(" (HTTP {s})"));
    Outcome::Failed(match e {
        SdkError::TimeoutError(_) => "timeout".into(),
        SdkError::DispatchFailure(_) => "no answer (network)".into(),
        _ => format!("{}{status}", e.code().unwrap_or("error")),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::names::StackRef;

    fn user() -> UserRef {
        StackRef::parse(
            "arn:aws:cloudformation:us-east-1:123456789012:stack/s/abc",
            "Connector",
        )
        .unwrap()
        .user("/defender-cloud-apps/", "defender-cloud-apps")
    }

    #[test]
    fn problems_name_each_refused_call_and_the_trail() {
        let report = Report {
            calls: vec![
                ("sts:GetCallerIdentity", Outcome::Allowed),
                ("cloudtrail:LookupEvents", Outcome::Denied),
                ("s3:ListAllMyBuckets", Outcome::Denied),
                (
                    "iam:GetAccountSummary",
                    Outcome::Failed("Throttling (HTTP 400)".into()),
                ),
            ],
            trail: Err("no multi-region trail is logging (t not logging)".into()),
        };
        assert!(!report.passed());
        let text = report.problems(&user()).join("; ");
        assert!(
            text.contains("refused cloudtrail:LookupEvents, s3:ListAllMyBuckets (AccessDenied)"),
            "{text}"
        );
        assert!(
            text.contains("defender-cloud-apps-cloudapps must allow them"),
            "{text}"
        );
        assert!(
            text.contains("iam:GetAccountSummary failed: Throttling"),
            "{text}"
        );
        assert!(
            text.contains("CloudTrail: no multi-region trail is logging"),
            "{text}"
        );
    }

    #[test]
    fn a_pass_needs_every_call_and_a_logging_trail() {
        let all = CALLS.iter().map(|c| (*c, Outcome::Allowed)).collect();
        let report = Report {
            calls: all,
            trail: Ok("t".into()),
        };
        assert!(report.passed());
        assert!(report.problems(&user()).is_empty());
        let no_trail = Report {
            trail: Err("x".into()),
            ..report
        };
        assert!(!no_trail.passed());
    }
}
