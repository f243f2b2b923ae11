//! The probe's last part: the client itself (`PortalClient`), read-only,
//! with the routes tried: `list` (find), `status`, `latest_activity`.

use std::time::Instant;

use cloudapps::portal::{ApiSettings, PortalClient};
use cloudapps::text::scrub;

use super::{ACTIVITY_DAYS, Probe};
use crate::outcome::Exit;

/// The client itself, read-only: list, status, latest_activity.
pub async fn run(
    probe: &mut Probe,
    settings: ApiSettings,
    secrets: aws_sdk_secretsmanager::Client,
    name: Option<&str>,
    deadline: Instant,
) {
    let client = match PortalClient::new(settings, secrets) {
        Ok(c) => c,
        Err(e) => {
            probe.problem(format!("the client could not be set up: {e}"));
            return;
        }
    };
    let listed = client
        .list(name.as_ref().map(std::slice::from_ref), deadline)
        .await;
    let first = listed.as_ref().ok().and_then(|l| l.first().cloned());
    record(
        probe,
        "find",
        listed.map(|l| format!("{} AWS instance(s)", l.len())),
    );
    if let Some(instance) = first {
        let read = client.status(&instance.id, deadline).await;
        let shown = read.map(|i| match i {
            Some(i) => format!("{:?} is {:?}", scrub(&i.name), i.status),
            None => "the instance is gone (HTTP 404)".to_string(),
        });
        record(probe, "status", shown);
    }
    let since = cloudapps::time::now_millis().saturating_sub(ACTIVITY_DAYS * 86_400_000);
    let latest = client.latest_activity(since, deadline).await;
    record(
        probe,
        "activities",
        latest.map(|a| match a {
            Some(a) => format!(
                "latest at {}",
                cloudapps::time::http_date(i64::try_from(a.timestamp / 1000).unwrap_or_default())
            ),
            None => format!("no activity in {ACTIVITY_DAYS} days"),
        }),
    );
}

fn record(probe: &mut Probe, route: &str, result: Result<String, cloudapps::error::Error>) {
    let result = result.map_err(|e| {
        let unreachable = matches!(e, cloudapps::error::Error::PortalUnreachable { .. });
        let text = scrub(&e.to_string());
        if unreachable {
            probe.worst(Exit::Unreachable);
        } else {
            probe.problem(format!("the client's {route}: {text}"));
        }
        text
    });
    probe.client.push((route.to_string(), result));
}
