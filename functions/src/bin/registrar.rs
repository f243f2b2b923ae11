//! Lambda `registrar` (the organization hub): reconciles the organization's
//! member accounts with the portal, at the tenant's pace, on a schedule and
//! when a member nudges it. Wiring only; the work is in the library.

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
    let hub = hub.as_ref();
    lambda_runtime::run(service_fn(|event: LambdaEvent<Value>| async move {
        let hub = hub.map_err(|e: &Error| format!("the registrar is misconfigured: {e}"))?;
        let out = hub
            .on_registrar_event(
                &event.payload,
                &event.context.request_id,
                event.context.deadline,
            )
            .await;
        out.map_err(|e| {
            tracing::error!(error = %e, "the registrar run failed; the next one goes on");
            lambda_runtime::Error::from(e.to_string())
        })
    }))
    .await
}
