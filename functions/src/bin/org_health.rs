//! Lambda `org_health` (the organization hub): on a schedule, one paged
//! listing of the portal beside the hub's table; writes the counts of
//! connected, pending, error and missing accounts as metrics. Wiring only.

use aws_config::BehaviorVersion;
use cloudapps::config::{HubSettings, LogSettings, process_env};
use cloudapps::error::Error;
use cloudapps::hub::Hub;
use lambda_runtime::{LambdaEvent, service_fn};
use serde_json::Value;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_runtime::Error> {
    let env = process_env();
    let log = LogSettings::read(&env);
    cloudapps::logging::init(log.level, log.json);
    let sdk = aws_config::defaults(BehaviorVersion::latest()).load().await;
    let hub = HubSettings::read(&env).and_then(|s| Hub::new(s, &sdk));
    if let Err(e) = &hub {
        tracing::error!(error = %e, "misconfigured: every run fails with this reason");
    }
    let name = env.text("HUB_NAME").unwrap_or_else(|| "hub".into());
    let (hub, name) = (hub.as_ref(), name.as_str());
    lambda_runtime::run(service_fn(|event: LambdaEvent<Value>| async move {
        let hub = hub.map_err(|e: &Error| {
            format!("the organization's health check is misconfigured: {e}")
        })?;
        hub.on_health_event(name, event.context.deadline)
            .await
            .map_err(|e| lambda_runtime::Error::from(e.to_string()))
    }))
    .await
}
