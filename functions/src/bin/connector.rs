//! Lambda `connector`: the CloudFormation custom resource
//! `Custom::CloudAppsConnector`. Wiring only; the work is in the library.

use cloudapps::config::{LogSettings, process_env};
use cloudapps::connector;
use cloudapps::deps::Deps;
use lambda_runtime::{LambdaEvent, service_fn};
use serde_json::Value;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_runtime::Error> {
    let log = LogSettings::read(&process_env());
    cloudapps::logging::init(log.level, log.json);
    let deps = Deps::from_env().await;
    if let Err(error) = &deps {
        tracing::error!(%error, "misconfigured: every event will be answered FAILED with this reason");
    }
    lambda_runtime::run(service_fn(|event: LambdaEvent<Value>| {
        connector::handle_lambda_event(deps.as_ref(), event)
    }))
    .await
}
