//! One step for one account, carried out: the portal requests it takes (at
//! most two: a create or an update, then the test), the row, and what the
//! member is told on its secret. A key is read from the member's secret
//! only for a step that hands it over (here, or just ahead of the step,
//! [`super::pipeline::Ahead`]), only to be sent, and never kept.

use std::time::Instant;

use tracing::{info, warn};

use crate::error::Error;
use crate::hub_tags::{HubState, Status};
use crate::portal::{Desired, Ownership, PortalClient};
use crate::time::now_millis;

use super::members::Member;
use super::pipeline::Ahead;
use super::plan::Step;
use super::table::Row;

/// What a step came to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Done {
    /// Nothing was asked of the portal.
    Quiet,
    /// Portal requests were sent; a test may be running (a listing tells).
    Sent,
    /// A portal request failed.
    Failed,
}

/// Milliseconds since the epoch.
pub fn now() -> i64 {
    i64::try_from(now_millis()).unwrap_or(i64::MAX)
}

/// What the member's secret should say: the row, as tags.
pub fn hub_state(row: &Row) -> HubState {
    HubState {
        status: Some(row.status),
        instance: row.instance.clone(),
        key: row.key_id.clone(),
        tested: row.last_test.map(|t| t / 1000),
        detail: (!row.detail.is_empty()).then(|| row.detail.clone()),
    }
}

/// Carries `step` out for the account of `row` (`member`: what its secret
/// showed, when it could be read; `ahead`: its key, if it was read ahead).
pub async fn act(
    portal: &PortalClient,
    step: Step,
    row: &mut Row,
    member: Option<&Member>,
    ahead: Option<Ahead>,
    deadline: Instant,
) -> Done {
    match step {
        Step::Nothing => Done::Quiet,
        Step::Wait { status, detail } => {
            row.status = status;
            row.detail = detail;
            Done::Quiet
        }
        Step::Refuse(why) => {
            warn!(account = %row.account, why = %why, "the hub does not act for this account");
            row.status = Status::Error;
            row.detail = why;
            Done::Quiet
        }
        Step::Forget(why) => {
            row.status = Status::Disabled;
            row.detail = why;
            Done::Quiet
        }
        Step::Record {
            instance,
            status,
            detail,
        } => {
            row.instance = Some(instance);
            if row.status != status || row.last_test.is_none() {
                row.last_test = Some(now());
            }
            row.status = status;
            row.detail = detail;
            Done::Quiet
        }
        Step::Disable { instance } => match portal.disable(&instance, deadline).await {
            Ok(_) => {
                info!(account = %row.account, instance = %instance, "the account is gone: its instance is disabled");
                row.status = Status::Disabled;
                row.detail = format!(
                    "{}; its instance was disabled",
                    row.detail_or("the account is gone")
                );
                Done::Sent
            }
            Err(e) => failed(row, &e),
        },
        Step::Test { instance } => test(portal, row, &instance, deadline).await,
        Step::Create | Step::Update { .. } => {
            let Some(member) = member else {
                return Done::Quiet;
            };
            hand_over(portal, step, row, member, ahead, deadline).await
        }
    }
}

async fn hand_over(
    portal: &PortalClient,
    step: Step,
    row: &mut Row,
    member: &Member,
    ahead: Option<Ahead>,
    deadline: Instant,
) -> Done {
    let Some(key_id) = member.wanted_key() else {
        return Done::Quiet;
    };
    let read = match ahead.filter(|a| a.is_for(&member.account, key_id)) {
        Some(ahead) => ahead.key().await,
        None => member.read_key(key_id).await,
    };
    let key = match read {
        Ok(key) => key,
        Err(e) => {
            row.status = Status::Error;
            row.detail = format!("could not read the account's key: {e}");
            return Done::Quiet;
        }
    };
    let connections: Vec<&str> = member.connections.iter().map(String::as_str).collect();
    let desired = Desired {
        name: &member.name,
        previous_name: None,
        connections: &connections,
        key: &key,
        owner: Ownership::default(),
    };
    row.name = member.name.clone();
    row.connections = member.connections.clone();
    row.key_id = Some(key.access_key_id.clone());
    row.key_created = member.key_created.map(|s| s.saturating_mul(1000));
    row.handed_at = Some(now());
    row.status = Status::Pending;
    let sent = match &step {
        Step::Update { instance } => portal.update_instance(instance, &desired, deadline).await,
        _ => portal.create_instance(&desired, deadline).await,
    };
    match sent {
        Ok(instance) => {
            row.instance = Some(instance.id.clone());
            row.detail = "key handed over; the portal's test is next".into();
            match test(portal, row, &instance.id, deadline).await {
                Done::Failed => Done::Failed,
                _ => Done::Sent,
            }
        }
        Err(e) => failed(row, &e),
    }
}

async fn test(portal: &PortalClient, row: &mut Row, instance: &str, deadline: Instant) -> Done {
    match portal.start_test(instance, deadline).await {
        Ok(_) => {
            row.test_started = Some(now());
            row.status = Status::Pending;
            row.detail = "the portal's test is running".into();
            Done::Sent
        }
        Err(e) => failed(row, &e),
    }
}

/// A portal request failed: a fault that may pass keeps the account
/// pending (the next listing shows what happened); a refusal is an error.
fn failed(row: &mut Row, e: &Error) -> Done {
    warn!(account = %row.account, error = %e, "a portal request for the account failed");
    if !matches!(e, Error::PortalUnreachable { .. }) {
        row.status = Status::Error;
    }
    row.detail = e.to_string();
    Done::Failed
}

impl Row {
    fn detail_or<'a>(&'a self, default: &'a str) -> &'a str {
        if self.detail.is_empty() {
            default
        } else {
            &self.detail
        }
    }
}
