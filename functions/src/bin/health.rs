//! Lambda `health`: the scheduled check of the whole chain (IAM user and
//! policy, key, rotation, CloudTrail, portal). Wiring only; the work is in
//! the library.

use cloudapps::config::{HealthSettings, LogSettings, process_env};
use cloudapps::deps::Deps;
use cloudapps::health::{self, Misconfigured};
use lambda_runtime::{LambdaEvent, service_fn};
use serde_json::Value;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_runtime::Error> {
    let env = process_env();
    let log = LogSettings::read(&env);
    cloudapps::logging::init(log.level, log.json);
    let setup = match (Deps::from_env().await, HealthSettings::read(&env)) {
        (Ok(deps), Ok(settings)) => Ok((deps, settings)),
        (Err(error), _) | (_, Err(error)) => Err(Misconfigured {
            error,
            stack_name: env.stack_name().unwrap_or_else(|| "unknown".into()),
        }),
    };
    if let Err(m) = &setup {
        tracing::error!(error = %m.error, "misconfigured: every run will report every check failing with this reason");
    }
    let setup = setup.as_ref().map(|(deps, settings)| (deps, settings));
    lambda_runtime::run(service_fn(|event: LambdaEvent<Value>| {
        health::handle_lambda_event(setup, event)
    }))
    .await
}
