//! The organization hub: one account (the management account, or a
//! delegated security account) holds the portal's credential and connects
//! every member account at the tenant's pace. Members (`PORTAL_MODE=hub`)
//! hold no portal credential: each makes one role only the hub's registrar
//! may assume, to read its connector secret and write the hub's verdict on
//! it (`cloudapps:hub-*` tags, [`crate::hub_tags`]).
//!
//! - [`registrar`]: the reconciler (its decisions: [`plan`], from the
//!   portal's instances as [`listing`]s showed them, taken when
//!   [`cadence`] says; carried out: [`act`]);
//!   it reaches members through [`members`] (in the background: [`looks`]),
//!   reads the nudges beside its work ([`nudges`]) and records each account
//!   in the [`table`], beside the portal's requests ([`pipeline`]);
//! - [`org_health`]: the organization's health, one paged listing a run.

pub mod act;
pub mod cadence;
pub mod listing;
pub mod looks;
pub mod members;
pub mod nudges;
pub mod org_health;
pub mod pipeline;
pub mod plan;
pub mod registrar;
pub mod report;
pub mod table;

use std::io::Write;
use std::sync::Mutex;
use std::time::Duration;

use aws_config::SdkConfig;
use serde_json::{Value, json};
use tracing::{info, warn};

use crate::cfn::Invocation;
use crate::config::HubSettings;
use crate::error::Error;
use crate::portal::PortalClient;
use crate::portal::hub::{NUDGE_DETAIL_TYPE, NUDGE_SOURCE, put_event};
use listing::Kept;
use members::Reach;
use registrar::{Registrar, Tuning};
use table::{Table, is_account_id};

/// The `source` of the event a registrar run puts on the hub's own bus
/// when its time ran out with work left: the bus's rule starts the next run.
pub const CONTINUE_SOURCE: &str = "cloudapps.hub";
/// Its `detail-type`.
pub const CONTINUE_DETAIL_TYPE: &str = "Registrar run continues";

/// The hub's functions, built once at init.
#[derive(Debug)]
pub struct Hub {
    pub registrar: Registrar,
    /// A run stops this long before its invocation's deadline.
    pub margin: Duration,
    /// The hub's own bus (`HUB_EVENT_BUS_ARN`), to start the next run at
    /// once when one ran out of time with work left.
    bus: Option<(aws_sdk_eventbridge::Client, String)>,
    /// The last run's listing, in this execution environment.
    kept: Mutex<Option<Kept>>,
    /// How long a kept listing may serve (`HUB_LISTING_KEPT_MS`).
    listing_kept: Duration,
}

impl Hub {
    /// From the settings and the function's SDK configuration.
    pub fn new(settings: HubSettings, sdk: &SdkConfig) -> Result<Self, Error> {
        // The looks at the members make clients for each account: they
        // share the hub's one HTTP client.
        let sdk = &crate::aws::sharing_one_http_client(sdk);
        let region = settings
            .member_region
            .clone()
            .or_else(|| sdk.region().map(|r| r.to_string()))
            .ok_or_else(|| Error::Config("AWS_REGION is not set".into()))?;
        let tuning = Tuning {
            test_timeout: settings.test_timeout,
            gone_after: settings.gone_after,
            list_share_percent: settings.list_share_percent,
            results_every: settings.results_every,
            concurrency: settings.concurrency as usize,
            poll: settings.portal.timings.test_first_poll,
            pace: (settings.portal.timings.budget)
                .map_or(settings.portal.timings.pace, |b| b.spread())
                .max(settings.portal.timings.pace),
        };
        let secrets = aws_sdk_secretsmanager::Client::new(sdk);
        Ok(Self {
            registrar: Registrar {
                portal: PortalClient::new(settings.portal, secrets)?,
                table: Table::new(aws_sdk_dynamodb::Client::new(sdk), &settings.table),
                reach: Reach {
                    sdk: sdk.clone(),
                    role_name: settings.member_role,
                    secret_name: settings.member_secret,
                    region,
                },
                org: aws_sdk_organizations::Client::new(sdk),
                tuning,
            },
            margin: settings.run_margin,
            kept: Mutex::new(None),
            listing_kept: settings.listing_kept,
            bus: settings
                .event_bus
                .map(|b| (aws_sdk_eventbridge::Client::new(sdk), b)),
        })
    }

    /// The registrar's entry point: the nudges (events members put on the
    /// hub's bus, which its rule sends to the nudge queue, delivered here in
    /// batches) are recorded by the account EventBridge says each came from
    /// (their `detail` is never read); then a run, unless one is under way
    /// (the lease), which picks the nudges up. A run that goes on straight
    /// from this environment's last one (its continuation, or a nudge's)
    /// starts from that run's listing ([`Kept`]); a scheduled one lists
    /// every instance.
    pub async fn on_registrar_event(
        &self,
        event: &Value,
        request_id: &str,
        deadline_ms: u64,
    ) -> Result<Value, Error> {
        let invocation = Invocation::from_epoch_millis(deadline_ms, self.margin, None);
        let deadline = crate::time::sub(invocation.deadline, invocation.margin);
        let r = &self.registrar;
        let nudged = nudges_in(event);
        if !nudged.is_empty() {
            r.table.nudge(&nudged).await?;
        }
        let now = act::now() / 1000;
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        let until = now + i64::try_from(left.as_secs()).unwrap_or(0) + 60;
        let Some(before) = r.table.take_lease(request_id, now, until).await? else {
            info!("a registrar run is under way: it picks the nudge up");
            return Ok(json!({"run": "under way elsewhere"}));
        };
        // The run before may have been another execution environment's:
        // its requests still count in the tenant's minute.
        r.portal.seed_answers(&before.answers);
        let kept = self.kept.lock().map(|mut k| k.take()).unwrap_or_default();
        let kept = kept
            .filter(|_| !nudged.is_empty() || continues(event))
            .and_then(|k| k.for_run(before.by.as_deref(), act::now(), self.listing_kept));
        let run = r.run_from(deadline, nudged, kept).await;
        let answers = r.portal.recent_answers();
        if let Err(e) = r.table.release_lease(request_id, &answers).await {
            warn!(error = %e, "could not give the lease back: it runs out by itself");
        }
        let (mut report, listing) = run?;
        if let (Some(listing), Ok(mut k)) = (listing, self.kept.lock()) {
            *k = Some(Kept {
                holder: request_id.to_string(),
                listing,
            });
        }
        if !report.settled && !report.gave_up {
            report.continued = self.continue_now().await;
        }
        Ok(serde_json::to_value(report).unwrap_or_default())
    }

    /// Starts the next run at once (an event on the hub's own bus, whose
    /// rule invokes the registrar), so that a long rollout is not left
    /// waiting for the schedule. Best effort: the schedule comes anyway.
    async fn continue_now(&self) -> bool {
        let Some((events, bus)) = &self.bus else {
            return false;
        };
        let put = put_event(events, bus, CONTINUE_SOURCE, CONTINUE_DETAIL_TYPE, "{}").await;
        if put {
            info!(bus = %bus, "work is left: the next run starts now");
        }
        put
    }

    /// The organization's health check's entry point: writes the run's line
    /// (the metrics) to stdout and returns the counts.
    pub async fn on_health_event(&self, hub_name: &str, deadline_ms: u64) -> Result<Value, Error> {
        let invocation = Invocation::from_epoch_millis(deadline_ms, self.margin, None);
        let deadline = crate::time::sub(invocation.deadline, invocation.margin);
        let r = &self.registrar;
        let health = org_health::check(&r.portal, &r.table, deadline).await?;
        let mut out = std::io::stdout().lock();
        let _ = writeln!(
            out,
            "{}",
            health.log_line(hub_name, crate::time::now_millis())
        );
        let _ = out.flush();
        Ok(serde_json::to_value(&health).unwrap_or_default())
    }
}

/// True for a run's continuation, the event a run out of time puts on the
/// hub's bus. It, or nudges, start a run that goes on from the one before;
/// a scheduled run, or any other, starts anew.
fn continues(event: &Value) -> bool {
    event.get("source").and_then(Value::as_str) == Some(CONTINUE_SOURCE)
        && event.get("detail-type").and_then(Value::as_str) == Some(CONTINUE_DETAIL_TYPE)
}

/// The accounts that nudged, in a batch of the nudge queue's messages
/// (each message's body is the event as the bus's rule sent it), or in one
/// event delivered as it is. Anything else in a batch (another source, a
/// body that is not an event) counts for nothing.
pub fn nudges_in(event: &Value) -> std::collections::BTreeSet<String> {
    match event.get("Records").and_then(Value::as_array) {
        Some(records) => records
            .iter()
            .filter(|r| r.get("eventSource").and_then(Value::as_str) == Some("aws:sqs"))
            .filter_map(|r| r.get("body").and_then(Value::as_str))
            .filter_map(|body| serde_json::from_str::<Value>(body).ok())
            .filter_map(|e| nudge_from(&e))
            .collect(),
        None => nudge_from(event).into_iter().collect(),
    }
}

/// The account a member's nudge came from: the envelope's `account`, which
/// EventBridge sets (a member cannot name another account there); `None`
/// for any other event.
pub fn nudge_from(event: &Value) -> Option<String> {
    let is_nudge = event.get("source").and_then(Value::as_str) == Some(NUDGE_SOURCE)
        && event.get("detail-type").and_then(Value::as_str) == Some(NUDGE_DETAIL_TYPE);
    let account = event.get("account").and_then(Value::as_str)?;
    (is_nudge && is_account_id(account)).then(|| account.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_envelopes_account_of_a_nudge_counts() {
        let nudge = json!({
            "source": NUDGE_SOURCE,
            "detail-type": NUDGE_DETAIL_TYPE,
            "account": "222222222222",
            "detail": {"account": "111111111111", "secret": "arn:aws:secretsmanager:us-east-1:111111111111:secret:x"},
        });
        assert_eq!(nudge_from(&nudge).as_deref(), Some("222222222222"));
        let mut other = nudge.clone();
        other["source"] = json!("aws.events");
        assert_eq!(nudge_from(&other), None);
        let mut forged = nudge.clone();
        forged["account"] = json!("not-an-account");
        assert_eq!(nudge_from(&forged), None);
    }

    #[test]
    fn only_the_hubs_own_event_is_a_continuation() {
        let event = |source: &str, detail_type: &str| json!({"source": source, "detail-type": detail_type, "account": "222222222222", "detail": {}});
        assert!(continues(&event(CONTINUE_SOURCE, CONTINUE_DETAIL_TYPE)));
        assert!(!continues(&event(NUDGE_SOURCE, NUDGE_DETAIL_TYPE)));
        assert!(!continues(&event("aws.events", "Scheduled Event")));
        assert!(!continues(&event(CONTINUE_SOURCE, "Scheduled Event")));
        assert!(!continues(&json!({"Records": []})));
        assert!(!continues(&json!({})));
    }

    #[test]
    fn a_batch_of_the_queue_counts_each_nudges_envelope_and_nothing_else() {
        let nudge = |account: &str| {
            json!({
                "source": NUDGE_SOURCE,
                "detail-type": NUDGE_DETAIL_TYPE,
                "account": account,
                "detail": {"account": "111111111111"},
            })
        };
        let record = |source: &str, body: String| json!({"eventSource": source, "body": body});
        let batch = json!({"Records": [
            record("aws:sqs", nudge("222222222222").to_string()),
            record("aws:sqs", nudge("333333333333").to_string()),
            record("aws:sqs", nudge("222222222222").to_string()),
            record("aws:sqs", json!({"source": "aws.events", "account": "444444444444"}).to_string()),
            record("aws:sqs", "444444444444".into()),
            record("aws:sns", nudge("555555555555").to_string()),
        ]});
        let accounts: Vec<String> = nudges_in(&batch).into_iter().collect();
        assert_eq!(accounts, ["222222222222", "333333333333"]);
        let one: Vec<String> = nudges_in(&nudge("666666666666")).into_iter().collect();
        assert_eq!(one, ["666666666666"]);
        assert!(nudges_in(&json!({"source": "aws.events", "account": "666666666666"})).is_empty());
        assert!(nudges_in(&json!({"Records": []})).is_empty());
    }
}
