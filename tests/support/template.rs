//! template.yaml as CloudFormation would deploy it into a test's account:
//! its roles (exact policies) and the user's permissions boundary created in
//! moto, its functions' environment and its custom resource's properties,
//! all read from the template itself by `template_resolve.py`, so that a
//! test runs each function with what the template gives it and nothing more.

use std::io::Write;
use std::process::{Command, Stdio};

use serde_json::{Value, json};

use crate::{REGION, World, python, root, sdk_config};

/// The template resolved for one stack of `w`: `{"Roles", "Functions",
/// "ManagedPolicies", "CustomResources", "Resources"}` (see
/// tests/support/template_resolve.py). `parameters` override the
/// template's defaults; `resources` name the physical ids of the resources
/// the policies and the environment refer to.
pub fn resolve(template: &str, w: &World, parameters: &Value, resources: &Value) -> Value {
    run_resolver(template, &context(w, parameters, resources))
}

/// The template resolved for one stack of each world, in one run of the
/// resolver (the template read once): `(world, parameters, resources)` as
/// for [`resolve`].
pub fn resolve_each(template: &str, stacks: &[(&World, Value, Value)]) -> Vec<Value> {
    let contexts: Vec<Value> = stacks
        .iter()
        .map(|(w, parameters, resources)| context(w, parameters, resources))
        .collect();
    match run_resolver(template, &Value::Array(contexts)) {
        Value::Array(answers) if answers.len() == stacks.len() => answers,
        other => panic!("template_resolve.py answered {other}"),
    }
}

/// What CloudFormation knows of a stack of `w`.
fn context(w: &World, parameters: &Value, resources: &Value) -> Value {
    let stack_name = w.stack_id.split('/').nth(1).unwrap();
    json!({
        "Parameters": parameters,
        "Pseudo": {
            "AWS::AccountId": w.account,
            "AWS::Region": REGION,
            "AWS::StackName": stack_name,
            "AWS::StackId": w.stack_id,
        },
        "Resources": resources,
    })
}

fn run_resolver(template: &str, context: &Value) -> Value {
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

/// The physical ids a stack of `w` gives the resources its policies, its
/// functions and its custom resource name: the world's secret, `topic`, the
/// functions, roles and log groups, the rotation rule, the user's
/// permissions boundary ([`put_managed_policies`] creates it), the trail's
/// KMS key, log group and delivery role, and the hub's role (named whether
/// or not their conditions are on: the resolver reads only what the
/// template uses).
pub fn resources(w: &World, topic: &str) -> Value {
    let stack_name = w.stack_id.split('/').nth(1).unwrap();
    let account = &w.account;
    let log_group = |f: &str| {
        let name = format!("/cloudapps/{stack_name}/{f}");
        let arn = format!("arn:aws:logs:{REGION}:{account}:log-group:{name}:*");
        json!({"Ref": name, "Arn": arn})
    };
    let function = |id: &str| {
        let name = format!("{stack_name}-{id}-K7Q2ZB1XW3M9");
        let arn = format!("arn:aws:lambda:{REGION}:{account}:function:{name}");
        json!({"Ref": name, "Arn": arn})
    };
    // As assume_role creates them: named after their logical id.
    let role = |id: &str| json!({"Arn": format!("arn:aws:iam::{account}:role/cloudapps/{id}")});
    json!({
        "ConnectorSecret": {"Ref": w.secret_arn},
        "NotificationTopic": {"Ref": topic},
        "ConnectorFunctionLogs": log_group("connector"),
        "RotationFunctionLogs": log_group("rotation"),
        "HealthFunctionLogs": log_group("health"),
        "TrailLogGroup": log_group("trail"),
        "ConnectorFunction": function("ConnectorFunction"),
        "RotationFunction": function("RotationFunction"),
        "HealthFunction": function("HealthFunction"),
        "ConnectorRole": role("ConnectorRole"),
        "RotationRole": role("RotationRole"),
        "HealthRole": role("HealthRole"),
        "TrailDeliveryRole": role("TrailDeliveryRole"),
        // Its RoleName, at path /: the hub finds it by name.
        "HubAccessRole": {"Arn": format!("arn:aws:iam::{account}:role/cloudapps-hub-access")},
        "RotationFailedRule": {"Arn": format!("arn:aws:events:{REGION}:{account}:rule/{stack_name}-RotationFailedRule")},
        "UserPermissionsBoundary": {"Ref": format!(
            "arn:aws:iam::{account}:policy/cloudapps-boundary/{stack_name}-UserPermissionsBoundary-K7Q2ZB1XW3M9"
        )},
        "TrailKmsKey": {"Arn": format!("arn:aws:kms:{REGION}:{account}:key/7e1d2c3b-0000-4000-8000-00000000b0b0")},
    })
}

/// The resolved boundary (or other managed policy) `logical_id`'s ARN.
pub fn managed_policy_arn(resolved: &Value, logical_id: &str) -> String {
    let policy = &resolved["ManagedPolicies"][logical_id];
    assert!(
        policy.is_object(),
        "the template has no managed policy {logical_id}"
    );
    policy["Arn"].as_str().unwrap().to_string()
}

/// Creates the template's managed policies (the user's permissions boundary)
/// in `w`'s account as resolved, at the ARN [`resources`] names; one that
/// exists gets the resolved document as a new default version, as
/// CloudFormation updates it. Call with IAM enforcement off.
pub async fn put_managed_policies(w: &World, resolved: &Value) {
    for (logical_id, policy) in resolved["ManagedPolicies"].as_object().unwrap() {
        let arn = managed_policy_arn(resolved, logical_id);
        let document = policy["PolicyDocument"].to_string();
        if w.iam.get_policy().policy_arn(&arn).send().await.is_err() {
            let created = w
                .iam
                .create_policy()
                .policy_name(arn.rsplit('/').next().unwrap())
                .path(policy["Path"].as_str().unwrap_or("/"))
                .set_description(policy["Description"].as_str().map(str::to_string))
                .policy_document(document)
                .send()
                .await
                .unwrap_or_else(|e| panic!("CreatePolicy {logical_id}: {e:?}"));
            assert_eq!(created.policy().unwrap().arn(), Some(arn.as_str()));
            continue;
        }
        let versions = w.iam.list_policy_versions().policy_arn(&arn).send().await;
        for v in versions.unwrap().versions() {
            if !v.is_default_version() {
                let id = v.version_id().unwrap();
                let deleted = w
                    .iam
                    .delete_policy_version()
                    .policy_arn(&arn)
                    .version_id(id);
                deleted.send().await.expect("DeletePolicyVersion");
            }
        }
        w.iam
            .create_policy_version()
            .policy_arn(&arn)
            .policy_document(document)
            .set_as_default(true)
            .send()
            .await
            .unwrap_or_else(|e| panic!("CreatePolicyVersion {logical_id}: {e:?}"));
    }
}

/// The connector custom resource's `ResourceProperties`, as CloudFormation
/// sends them for the resolved template.
pub fn connector_properties(resolved: &Value) -> Value {
    let connector = &resolved["CustomResources"]["Connector"];
    assert!(
        connector.is_object(),
        "the template has no custom resource Connector"
    );
    connector["Properties"].clone()
}

/// Creates the template's role `logical_id` in `w`'s account, with its name
/// (its `RoleName`, else the logical id), path, trust policy, permissions
/// boundary and inline policies exactly as resolved. Returns its ARN. Call
/// with IAM enforcement off.
pub async fn create_role(w: &World, resolved: &Value, logical_id: &str) -> String {
    let role = &resolved["Roles"][logical_id];
    assert!(role.is_object(), "the template has no role {logical_id}");
    let name = role["RoleName"].as_str().unwrap_or(logical_id);
    let created = w
        .iam
        .create_role()
        .role_name(name)
        .path(role["Path"].as_str().unwrap_or("/"))
        .assume_role_policy_document(role["AssumeRolePolicyDocument"].to_string())
        .set_permissions_boundary(role["PermissionsBoundary"].as_str().map(str::to_string))
        .send()
        .await
        .expect("CreateRole");
    for policy in role["Policies"].as_array().unwrap() {
        w.iam
            .put_role_policy()
            .role_name(name)
            .policy_name(policy["PolicyName"].as_str().unwrap())
            .policy_document(policy["PolicyDocument"].to_string())
            .send()
            .await
            .expect("PutRolePolicy");
    }
    created.role().unwrap().arn().to_string()
}

/// Creates the template's role `logical_id` ([`create_role`]), then signs
/// in as it (sts:AssumeRole, as Lambda does). Returns `(key id, secret,
/// token)`. Call with IAM enforcement off.
pub async fn assume_role(
    w: &World,
    resolved: &Value,
    logical_id: &str,
) -> (String, String, String) {
    let arn = create_role(w, resolved, logical_id).await;
    let base = sdk_config(&w.endpoint, "testing", "testing", None).await;
    let assumed = aws_sdk_sts::Client::new(&base)
        .assume_role()
        .role_arn(arn)
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
