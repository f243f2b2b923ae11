//! template.yaml as CloudFormation would deploy it into a test's account:
//! its roles (exact policies) created in moto, its functions' environment,
//! both read from the template itself by `template_resolve.py`, so that a
//! test runs each function with what the template gives it and nothing more.

use std::io::Write;
use std::process::{Command, Stdio};

use serde_json::{Value, json};

use crate::{REGION, World, python, root, sdk_config};

/// The template resolved for one stack of `w`: `{"Roles", "Functions"}`
/// (see tests/support/template_resolve.py). `parameters` override the
/// template's defaults; `resources` name the physical ids of the resources
/// the policies and the environment refer to.
pub fn resolve(template: &str, w: &World, parameters: &Value, resources: &Value) -> Value {
    let stack_name = w.stack_id.split('/').nth(1).unwrap();
    let context = json!({
        "Parameters": parameters,
        "Pseudo": {
            "AWS::AccountId": w.account,
            "AWS::Region": REGION,
            "AWS::StackName": stack_name,
            "AWS::StackId": w.stack_id,
        },
        "Resources": resources,
    });
    let mut child = Command::new(python())
        .arg(root().join("tests/support/template_resolve.py"))
        .arg(root().join(template))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run template_resolve.py");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(context.to_string().as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "template_resolve.py: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// The physical ids a stack of `w` gives the resources its policies name:
/// the world's secret, `topic`, the log groups and the rotation rule.
pub fn resources(w: &World, topic: &str) -> Value {
    let stack_name = w.stack_id.split('/').nth(1).unwrap();
    let log_group = |f: &str| {
        format!(
            "arn:aws:logs:{REGION}:{}:log-group:/cloudapps/{stack_name}/{f}:*",
            w.account
        )
    };
    json!({
        "ConnectorSecret": {"Ref": w.secret_arn},
        "NotificationTopic": {"Ref": topic},
        "ConnectorFunctionLogs": {"Arn": log_group("connector")},
        "RotationFunctionLogs": {"Arn": log_group("rotation")},
        "HealthFunctionLogs": {"Arn": log_group("health")},
        "RotationFailedRule": {"Arn": format!("arn:aws:events:{REGION}:{}:rule/{stack_name}-RotationFailedRule", w.account)},
    })
}

/// Creates the template's role `logical_id` in `w`'s account, with its path,
/// trust policy and inline policies exactly as resolved, then signs in as
/// it (sts:AssumeRole, as Lambda does). Returns `(key id, secret, token)`.
/// Call with IAM enforcement off.
pub async fn assume_role(
    w: &World,
    resolved: &Value,
    logical_id: &str,
) -> (String, String, String) {
    let role = &resolved["Roles"][logical_id];
    assert!(role.is_object(), "the template has no role {logical_id}");
    let created = w
        .iam
        .create_role()
        .role_name(logical_id)
        .path(role["Path"].as_str().unwrap_or("/"))
        .assume_role_policy_document(role["AssumeRolePolicyDocument"].to_string())
        .send()
        .await
        .expect("CreateRole");
    for policy in role["Policies"].as_array().unwrap() {
        w.iam
            .put_role_policy()
            .role_name(logical_id)
            .policy_name(policy["PolicyName"].as_str().unwrap())
            .policy_document(policy["PolicyDocument"].to_string())
            .send()
            .await
            .expect("PutRolePolicy");
    }
    let base = sdk_config(&w.endpoint, "testing", "testing", None).await;
    let assumed = aws_sdk_sts::Client::new(&base)
        .assume_role()
        .role_arn(created.role().unwrap().arn())
        .role_session_name(logical_id)
        .send()
        .await
        .expect("AssumeRole");
    let c = assumed.credentials().unwrap();
    (
        c.access_key_id().to_string(),
        c.secret_access_key().to_string(),
        c.session_token().to_string(),
    )
}

/// The environment of the template's function `logical_id` as Lambda would
/// give it: its variables from the template, the role's credentials, the
/// emulator's endpoint, plus `tuning` (quick polls for tests).
pub fn function_env(
    w: &World,
    resolved: &Value,
    logical_id: &str,
    credentials: &(String, String, String),
    tuning: &[(&str, &str)],
) -> Vec<(String, String)> {
    let function = &resolved["Functions"][logical_id];
    assert!(
        function.is_object(),
        "the template has no function {logical_id}"
    );
    let mut env: Vec<(String, String)> = function["Environment"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
        .collect();
    for (k, v) in [
        ("AWS_REGION", REGION),
        ("AWS_ENDPOINT_URL", &w.endpoint),
        ("AWS_ACCESS_KEY_ID", &credentials.0),
        ("AWS_SECRET_ACCESS_KEY", &credentials.1),
        ("AWS_SESSION_TOKEN", &credentials.2),
        ("AWS_LAMBDA_LOG_FORMAT", "JSON"),
        ("AWS_LAMBDA_LOG_LEVEL", "TRACE"),
    ]
    .iter()
    .chain(tuning)
    {
        env.push((k.to_string(), v.to_string()));
    }
    env
}
