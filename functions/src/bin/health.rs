//! Lambda `health`: the scheduled check of the whole chain (IAM user and
//! policy, key, rotation, CloudTrail, portal). Wiring only; the work is in
//! the library.

use cloudapps::health::{self, HealthSettings};
use cloudapps::{Deps, Error};
use lambda_runtime::{LambdaEvent, service_fn};
use serde_json::Value;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_runtime::Error> {
    cloudapps::logging::init();
    let deps = Deps::from_env().await;
    let settings = HealthSettings::from_env();
    let setup: Result<(&Deps, &HealthSettings), &Error> = match (&deps, &settings) {
        (Ok(deps), Ok(settings)) => Ok((deps, settings)),
        (Err(e), _) | (_, Err(e)) => Err(e),
    };
    if let Err(error) = &setup {
        tracing::error!(%error, "misconfigured: every run will report every check failing with this reason");
    }
    lambda_runtime::run(service_fn(|event: LambdaEvent<Value>| {
        health::handle_lambda_event(setup, event)
    }))
    .await
}
