//! `cloudapps check --stack`: the health checks, now. By default from this
//! machine with the caller's credentials: `Deps` and `HealthSettings` are
//! built from the stack (its parameters and outputs, read through the same
//! configuration code as the function's environment) and
//! `cloudapps::health::run` runs every check. With `--remote`, the stack's
//! deployed health function is invoked instead (lambda:InvokeFunction) and
//! its answer and log line are read. Exit 1 when a check fails.

use std::collections::BTreeMap;
use std::time::Duration;

use aws_sdk_lambda::primitives::Blob;
use aws_sdk_lambda::types::LogType;
use serde_json::{Map, Value, json};

use cloudapps::config::{Env, HealthSettings, PortalChoice, Settings};
use cloudapps::deps::{self, Deps};
use cloudapps::health;

use crate::aws::Stack;
use crate::cli::CheckArgs;
use crate::logs;
use crate::out::{Out, table};
use crate::outcome::{self, Exit, Failure, Outcome};

/// The schedule's event (events/health-scheduled.json).
const SCHEDULED: &str = r#"{"version":"0","id":"cloudapps-check","detail-type":"Scheduled Event","source":"aws.events","account":"000000000000","time":"1970-01-01T00:00:00Z","region":"us-east-1","resources":[],"detail":{}}"#;

/// One check's row.
struct Row {
    name: String,
    state: String,
    detail: String,
    repaired: Vec<String>,
}

pub async fn run(args: &CheckArgs, region: Option<&str>, out: &Out) -> Outcome {
    let sdk = crate::aws::sdk(region).await?;
    out.progress("reading the stack");
    let cfn = aws_sdk_cloudformation::Client::new(&sdk);
    let stack = Stack::describe(&cfn, &args.stack.stack).await?;
    let (rows, source) = if args.remote {
        remote(&stack, &cfn, &sdk, out).await?
    } else {
        local(args, &stack, &sdk, out).await?
    };
    let failing: Vec<&str> = rows
        .iter()
        .filter(|r| r.state == "fail")
        .map(|r| r.name.as_str())
        .collect();
    let exit = if failing.is_empty() {
        Exit::Ok
    } else {
        Exit::DoesNotHold
    };
    if out.json() {
        let checks: Map<String, Value> = rows
            .iter()
            .map(|r| {
                (
                    r.name.clone(),
                    json!({"state": r.state, "detail": r.detail, "repaired": r.repaired}),
                )
            })
            .collect();
        out.document(&json!({
            "stack": stack.name,
            "ran": source,
            "healthy": failing.is_empty(),
            "failing": failing,
            "checks": checks,
        }));
    } else {
        let mut text = vec![format!("Health of stack {} ({source})", stack.name)];
        let lines: Vec<Vec<String>> = rows
            .iter()
            .map(|r| {
                let mut detail = r.detail.clone();
                if !r.repaired.is_empty() {
                    detail = format!("repaired: {}; {detail}", r.repaired.join(", "));
                }
                vec![format!("  {}", r.name), r.state.clone(), detail]
            })
            .collect();
        text.push(table(&["  CHECK", "STATE", "DETAIL"], &lines));
        text.push(if failing.is_empty() {
            "healthy".to_string()
        } else {
            format!("FAILING: {}", failing.join(", "))
        });
        out.line(&text.join("\n"));
    }
    Ok(exit)
}

/// The function's environment, as template.yaml sets it, from the stack.
fn environment(args: &CheckArgs, stack: &Stack) -> BTreeMap<&'static str, String> {
    let p = |k: &str| stack.parameter(k).to_string();
    let mut env = BTreeMap::from([
        ("PORTAL_MODE", p("PortalMode")),
        ("PORTAL_URL", p("PortalUrl")),
        (
            "PORTAL_CREDENTIALS_SECRET_ARN",
            p("PortalCredentialsSecretArn"),
        ),
        (
            "NOTIFY_TOPIC_ARN",
            stack.output("NotificationTopicArn").to_string(),
        ),
        ("STACK_ID", stack.id.clone()),
        ("SECRET_ARN", stack.output("SecretArn").to_string()),
        ("ROTATION_DAYS", p("RotationDays")),
        ("ACTIVITY_WINDOW_HOURS", p("ActivityWindowHours")),
        ("HEALTH_REPAIR", args.repair.to_string()),
        (
            "HEALTH_CHECK_TIMEOUT_MS",
            (args.timeout.max(1) * 1000).to_string(),
        ),
    ]);
    if let Some(routes) = &args.routes {
        env.insert("PORTAL_ROUTES", routes.clone());
    }
    env
}

async fn local(
    args: &CheckArgs,
    stack: &Stack,
    sdk: &aws_config::SdkConfig,
    out: &Out,
) -> Result<(Vec<Row>, String), Failure> {
    let vars = environment(args, stack);
    let env = Env(move |k: &str| vars.get(k).cloned());
    let config = |e: cloudapps::error::Error| {
        Failure::usage(format!("the stack's configuration cannot be used: {e}"))
    };
    let choice = PortalChoice::read(&env).map_err(config)?;
    let settings = HealthSettings::read(&env).map_err(config)?;
    let portal = deps::portal(choice, sdk).map_err(config)?;
    // No topic: a check run by hand tells nobody.
    let deps = Deps::new(sdk, Settings::default(), portal).map_err(config)?;
    out.progress("running the health checks from here");
    let deadline = cloudapps::time::from_now(
        settings.check_timeout.saturating_mul(2) + Duration::from_secs(10),
    );
    let report = Box::pin(health::run(&deps, &settings, deadline)).await;
    let rows = report
        .checks
        .iter()
        .map(|c| Row {
            name: c.check.name().to_string(),
            state: state(&json!(c.state)),
            detail: c.detail.clone(),
            repaired: c.repaired.clone(),
        })
        .collect();
    let how = if settings.repair {
        "checked from here, repairing what is safe"
    } else {
        "checked from here, changing nothing"
    };
    Ok((rows, how.to_string()))
}

fn state(v: &Value) -> String {
    v.as_str().unwrap_or("unknown").to_string()
}

async fn remote(
    stack: &Stack,
    cfn: &aws_sdk_cloudformation::Client,
    sdk: &aws_config::SdkConfig,
    out: &Out,
) -> Result<(Vec<Row>, String), Failure> {
    let function = stack.resource(cfn, "HealthFunction").await?;
    out.progress(&format!("invoking the health function {function}"));
    let answer = aws_sdk_lambda::Client::new(sdk)
        .invoke()
        .function_name(&function)
        .payload(Blob::new(SCHEDULED))
        .log_type(LogType::Tail)
        .send()
        .await
        .map_err(outcome::aws("lambda:InvokeFunction"))?;
    let payload: Value = answer
        .payload()
        .and_then(|p| serde_json::from_slice(p.as_ref()).ok())
        .unwrap_or(Value::Null);
    if let Some(error) = answer.function_error() {
        let message = payload["errorMessage"].as_str().unwrap_or(error);
        return Err(Failure::does_not_hold(format!(
            "the health function {function} failed: {}",
            cloudapps::text::scrub(message)
        )));
    }
    let line = answer
        .log_result()
        .and_then(crate::b64::decode)
        .and_then(|tail| {
            tail.lines()
                .rev()
                .filter_map(logs::fields_of)
                .find(logs::is_health_line)
        });
    let how = format!("the deployed function {function}");
    if let Some(line) = line {
        let rows = line["checks"]
            .as_object()
            .map(|checks| {
                checks
                    .iter()
                    .map(|(name, c)| Row {
                        name: name.clone(),
                        state: state(&c["state"]),
                        detail: c["detail"].as_str().unwrap_or_default().to_string(),
                        repaired: c["repaired"]
                            .as_array()
                            .map(|a| {
                                a.iter()
                                    .filter_map(Value::as_str)
                                    .map(str::to_string)
                                    .collect()
                            })
                            .unwrap_or_default(),
                    })
                    .collect()
            })
            .unwrap_or_default();
        return Ok((sorted(rows), how));
    }
    let Some(checks) = payload["checks"].as_object() else {
        return Err(Failure::does_not_hold(format!(
            "the health function {function} answered no report: {}",
            cloudapps::text::scrub(&payload.to_string())
        )));
    };
    let group = stack.log_group("health");
    let rows = checks
        .iter()
        .map(|(name, s)| Row {
            name: name.clone(),
            state: state(s),
            detail: format!("details in its line in {group}"),
            repaired: Vec::new(),
        })
        .collect();
    Ok((sorted(rows), how))
}

/// In the report's order.
fn sorted(mut rows: Vec<Row>) -> Vec<Row> {
    rows.sort_by_key(|r| crate::status::order(&r.name));
    rows
}
