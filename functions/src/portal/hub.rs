//! The member side of the organization hub (`PORTAL_MODE=hub`): nothing is
//! written to the portal from a member account, and the member holds no
//! portal credential. The hub (in the management or a security account)
//! reads the member's secret through the member's hub role, connects and
//! tests the instance at the tenant's pace, and writes back on the secret
//! what the portal shows. A member only nudges it (an event to the hub's
//! bus) to act sooner: a nudge is never the only path, the hub's schedule
//! gets there anyway.

use tracing::{info, warn};

/// Where the hub listens for nudges.
#[derive(Clone, Debug)]
pub struct HubLink {
    nudge: Option<(aws_sdk_eventbridge::Client, String)>,
}

/// The `source` of a member's nudge event.
pub const NUDGE_SOURCE: &str = "cloudapps.member";
/// The `detail-type` of a member's nudge event.
pub const NUDGE_DETAIL_TYPE: &str = "Defender for Cloud Apps connector changed";

impl HubLink {
    /// `bus_arn`: the hub's event bus (`HUB_EVENT_BUS_ARN`); `None`: no nudge.
    pub fn new(events: aws_sdk_eventbridge::Client, bus_arn: Option<&str>) -> Self {
        Self {
            nudge: bus_arn.map(|b| (events, b.to_string())),
        }
    }

    /// Asks the hub to look at this account now (`why`: what changed). Best
    /// effort: a nudge that cannot be sent is logged; the hub's schedule
    /// comes anyway. The event says nothing the hub trusts but its sender:
    /// EventBridge sets the account it came from.
    pub async fn nudge(&self, why: &str) {
        let Some((events, bus)) = &self.nudge else {
            return;
        };
        let detail = serde_json::json!({ "why": why }).to_string();
        if put_event(events, bus, NUDGE_SOURCE, NUDGE_DETAIL_TYPE, &detail).await {
            info!(bus = %bus, why, "nudged the hub");
        }
    }
}

/// Puts one event on the hub's bus `bus`; false (said in a warning) when
/// the bus did not take it. Best effort: the hub's schedule comes anyway.
pub async fn put_event(
    events: &aws_sdk_eventbridge::Client,
    bus: &str,
    source: &str,
    detail_type: &str,
    detail: &str,
) -> bool {
    let entry = aws_sdk_eventbridge::types::PutEventsRequestEntry::builder()
        .event_bus_name(bus)
        .source(source)
        .detail_type(detail_type)
        .detail(detail)
        .build();
    match events.put_events().entries(entry).send().await {
        Ok(out) if out.failed_entry_count() == 0 => true,
        Ok(out) => {
            warn!(bus = %bus, source, failed = out.failed_entry_count(), "the hub's bus did not take the event: the hub's schedule comes anyway");
            false
        }
        Err(error) => {
            warn!(bus = %bus, source, error = %aws_sdk_eventbridge::error::DisplayErrorContext(&error), "could not put the event on the hub's bus: the hub's schedule comes anyway");
            false
        }
    }
}
