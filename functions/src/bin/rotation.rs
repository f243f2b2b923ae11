//! Lambda `rotation`: the Secrets Manager rotation function of the
//! connector's secret (four steps). Wiring only; the work is in the library.

use cloudapps::config::{LogSettings, process_env};
use cloudapps::deps::Deps;
use cloudapps::rotation;
use lambda_runtime::{LambdaEvent, service_fn};
use serde_json::Value;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_runtime::Error> {
    let env = process_env();
    let log = LogSettings::read(&env);
    cloudapps::logging::init(log.level, log.json);
    let deps = Deps::from_env().await;
    // The stack whose secret this function may rotate (the template sets it).
    let stack_id = env.stack_id();
    let setup = match (&deps, &stack_id) {
        (Ok(deps), Ok(stack_id)) => Ok((deps, stack_id.as_str())),
        (Err(e), _) | (_, Err(e)) => Err(e),
    };
    if let Err(error) = &setup {
        tracing::error!(%error, "misconfigured: every step will fail with this reason");
    }
    lambda_runtime::run(service_fn(|event: LambdaEvent<Value>| {
        rotation::handle_lambda_event(setup, event)
    }))
    .await
}
