//! hub-template.yaml as CloudFormation would deploy it into the hub account
//! of an organization ([`crate::hub::Org`]): its roles (exact policies) and
//! its functions' environment, read from the template by
//! `template_resolve.py`, so that the registrar and the organization's
//! health check run with what the template gives them and nothing more.

use std::collections::BTreeMap;
use std::io::Write;
use std::process::{Command, Stdio};

use cloudapps::config::{Env, HubSettings};
use serde_json::{Value, json};

use crate::hub::{LIMIT, MEMBER_ROLE, Org};
use crate::{REGION, python, root, sdk_config, template};

pub const TEMPLATE: &str = "hub-template.yaml";

/// The physical ids a hub stack named `stack_name` in `account` gives the
/// resources its policies and its functions name: the tenant's credential
/// secret (`credential_secret`, when the stack creates it), the table, the
/// functions, roles (named after their logical id, as
/// [`template::assume_role`] creates them), log groups, the bus, its rule
/// and the alarm topic.
pub fn resources(account: &str, stack_name: &str, credential_secret: &str, table: &str) -> Value {
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
    let role = |id: &str| json!({"Arn": format!("arn:aws:iam::{account}:role/cloudapps/{id}")});
    let bus = "cloudapps-hub";
    json!({
        "TenantCredentialSecret": {"Ref": credential_secret},
        "HubTable": {"Ref": table, "Arn": format!("arn:aws:dynamodb:{REGION}:{account}:table/{table}")},
        "RegistrarFunctionLogs": log_group("registrar"),
        "OrgHealthFunctionLogs": log_group("org-health"),
        "RegistrarFunction": function("RegistrarFunction"),
        "OrgHealthFunction": function("OrgHealthFunction"),
        "RegistrarRole": role("RegistrarRole"),
        "OrgHealthRole": role("OrgHealthRole"),
        "HubEventBus": {"Ref": bus, "Arn": format!("arn:aws:events:{REGION}:{account}:event-bus/{bus}")},
        "NudgeRule": {"Arn": format!("arn:aws:events:{REGION}:{account}:rule/{bus}/{stack_name}-NudgeRule-K7Q2ZB1XW3M9")},
        "ContinueRule": {"Arn": format!("arn:aws:events:{REGION}:{account}:rule/{bus}/{stack_name}-ContinueRule-K7Q2ZB1XW3M9")},
        "NudgeQueue": {
            "Ref": format!("https://sqs.{REGION}.amazonaws.com/{account}/{stack_name}-NudgeQueue-K7Q2ZB1XW3M9"),
            "Arn": format!("arn:aws:sqs:{REGION}:{account}:{stack_name}-NudgeQueue-K7Q2ZB1XW3M9"),
        },
        "AlarmTopic": {"Ref": format!("arn:aws:sns:{REGION}:{account}:{stack_name}-AlarmTopic-K7Q2ZB1XW3M9")},
    })
}

/// hub-template.yaml resolved for a stack `stack_id` of `account`, with
/// `parameters` (others: their defaults) and `resources`' physical ids (see
/// tests/support/template_resolve.py for the answer's shape).
pub fn resolve(account: &str, stack_id: &str, parameters: &Value, resources: &Value) -> Value {
    let context = json!({
        "Parameters": parameters,
        "Pseudo": {
            "AWS::AccountId": account,
            "AWS::Region": REGION,
            "AWS::StackName": stack_name(stack_id),
            "AWS::StackId": stack_id,
        },
        "Resources": resources,
    });
    let mut child = Command::new(python())
        .arg(root().join("tests/support/template_resolve.py"))
        .arg(root().join(TEMPLATE))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run template_resolve.py");
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(context.to_string().as_bytes()).unwrap();
    drop(stdin);
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "template_resolve.py: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// The stack's name in its id.
pub fn stack_name(stack_id: &str) -> &str {
    stack_id.split('/').nth(1).unwrap()
}

/// The hub stack of `org`, as deployed in moto: the template resolved for
/// the org's hub account, its portal and its organization.
pub struct HubStack {
    pub resolved: Value,
    pub registrar_role_arn: String,
    pub health_role_arn: String,
    /// Signed as the template's registrar role.
    pub registrar_sdk: aws_config::SdkConfig,
    /// Signed as the template's health check role.
    pub health_sdk: aws_config::SdkConfig,
}

/// The template's parameters for `org`'s hub: its portal emulator, its
/// organization; the credential secret created by the stack (the org's
/// stands for it) unless `extra` says otherwise.
pub fn parameters(org: &Org, extra: &Value) -> Value {
    let mut parameters = json!({
        "PortalUrl": org.emulator.url,
        "OrganizationId": org.org_id,
    });
    for (k, v) in extra.as_object().unwrap() {
        parameters[k] = v.clone();
    }
    parameters
}

/// Deploys hub-template.yaml's roles into `org`'s hub account, exactly as
/// resolved (path, trust, inline policies), signs in as each (as Lambda
/// does), and points every member's hub role at the template's registrar
/// role within the organization, as the member stack set does with the
/// hub's `RegistrarRoleArn` output. Call with IAM enforcement off.
pub async fn deploy(org: &Org, extra: &Value) -> HubStack {
    let hub = &org.hub;
    let resources = resources(
        &hub.account,
        stack_name(&hub.stack_id),
        &org.credentials_secret,
        &org.table,
    );
    let resolved = resolve(
        &hub.account,
        &hub.stack_id,
        &parameters(org, extra),
        &resources,
    );
    let mut sdks = Vec::new();
    for role in ["RegistrarRole", "OrgHealthRole"] {
        let (key, secret, token) = template::assume_role(hub, &resolved, role).await;
        sdks.push(sdk_config(&hub.endpoint, &key, &secret, Some(&token)).await);
    }
    let arn = |id: &str| resources[id]["Arn"].as_str().unwrap().to_string();
    let registrar_role_arn = arn("RegistrarRole");
    let trust = json!({"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow",
        "Principal": {"AWS": registrar_role_arn},
        "Action": "sts:AssumeRole",
        "Condition": {"StringEquals": {"aws:PrincipalOrgID": org.org_id}},
    }]});
    for w in &org.members {
        w.iam
            .update_assume_role_policy()
            .role_name(MEMBER_ROLE)
            .policy_document(trust.to_string())
            .send()
            .await
            .expect("UpdateAssumeRolePolicy of a member's hub role");
    }
    let health_sdk = sdks.pop().unwrap();
    let registrar_sdk = sdks.pop().unwrap();
    HubStack {
        resolved,
        registrar_role_arn,
        health_role_arn: arn("OrgHealthRole"),
        registrar_sdk,
        health_sdk,
    }
}

/// The environment variables that scale the hub's timings to `org`'s
/// portal minute (the registrar's pace, its polls) and keep test runs
/// short; nothing that changes what is called.
pub fn tuning(org: &Org) -> Vec<(String, String)> {
    let scale = org.window.as_secs_f64() / 60.0;
    let pace = (org.window / LIMIT).mul_f64(1.02).as_millis();
    let poll = std::time::Duration::from_secs(15)
        .mul_f64(scale)
        .as_millis();
    [
        ("PORTAL_PACE_MS", pace.to_string()),
        ("PORTAL_TEST_POLL_MS", poll.to_string()),
        ("PORTAL_TEST_MAX_POLL_MS", (poll * 4).to_string()),
        ("PORTAL_REQUEST_TIMEOUT_MS", "2000".into()),
        ("PORTAL_RETRY_FIRST_MS", "100".into()),
        ("PORTAL_RETRY_MAX_MS", "800".into()),
        ("HUB_TEST_TIMEOUT_MS", "30000".into()),
        ("HUB_RUN_MARGIN_MS", "200".into()),
        ("HUB_CONCURRENCY", "8".into()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect()
}

/// The template's function `logical_id`'s environment, as resolved.
pub fn environment(resolved: &Value, logical_id: &str) -> BTreeMap<String, String> {
    let function = &resolved["Functions"][logical_id];
    assert!(
        function.is_object(),
        "the template has no function {logical_id}"
    );
    function["Environment"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
        .collect()
}

/// The hub's settings as the function `logical_id` reads them from the
/// environment the template gives it, with `tuning` on top.
pub fn settings(resolved: &Value, logical_id: &str, tuning: &[(String, String)]) -> HubSettings {
    let mut env = environment(resolved, logical_id);
    env.extend(tuning.iter().cloned());
    HubSettings::read(&Env(|k: &str| env.get(k).cloned()))
        .unwrap_or_else(|e| panic!("{logical_id}'s environment: {e}"))
}
