//! template.yaml's least privilege, proven: each function runs as the real
//! binary with exactly the role and the environment the template gives it
//! (read from the template itself), under moto's IAM enforcement, through
//! the whole lifecycle (Create, a rotation, a health check that repairs,
//! an Update, Delete). moto is made
//! to authorize against real resource ARNs (tests/support/moto_launcher.py),
//! and records every request it denies: any call the code makes that the
//! template does not allow fails these tests.

use std::collections::BTreeSet;
use std::time::Duration;

use cloudapps::key_store::AWSCURRENT;
use serde_json::{Value, json};
use testbed::runtime_api::{Function, Outcome};
use testbed::{Moto, World, register_rotation_function, start_rotation, template};

const CONNECTOR: &str = env!("CARGO_BIN_EXE_connector");
const ROTATION: &str = env!("CARGO_BIN_EXE_rotation");
const HEALTH: &str = env!("CARGO_BIN_EXE_health");
const USER: &str = "defender-cloud-apps";
const TEMPLATE: &str = "template.yaml";
/// Quick polls and retries for tests; nothing that changes what is called.
const TUNING: [(&str, &str); 5] = [
    ("KEY_READY_POLL_MS", "50"),
    ("PORTAL_TEST_POLL_MS", "100"),
    ("PORTAL_RETRY_FIRST_MS", "100"),
    ("PREFLIGHT_SETTLE_MS", "1000"),
    ("CFN_DEADLINE_MARGIN_MS", "2000"),
];

/// A world in `moto` with the portal emulator (api mode) and a topic, and
/// the template resolved for it.
async fn deployed(moto: &Moto) -> (World, Value) {
    let w = World::with_portal(moto).await;
    let topic = w.create_topic("cloudapps-notify").await;
    let parameters = json!({
        "PortalMode": "api",
        "PortalUrl": w.emulator().url,
        "PortalCredentialsSecretArn": w.portal_secret,
        "HealthRepair": "true",
    });
    let resolved = template::resolve(TEMPLATE, &w, &parameters, &template::resources(&w, &topic));
    (w, resolved)
}

/// The template's `function` as the real `binary`, signed in as the role
/// the template gives it (created now), with its environment.
async fn start(w: &World, resolved: &Value, binary: &str, function: &str) -> Function {
    let role = resolved["Functions"][function]["Role"].as_str().unwrap();
    let credentials = template::assume_role(w, resolved, role).await;
    Function::start(
        binary,
        &template::function_env(w, resolved, function, &credentials, &TUNING),
    )
    .await
}

async fn send(f: &Function, w: &World, event: &Value) -> Value {
    let outcome = f.invoke(event, Duration::from_secs(90)).await;
    assert!(matches!(outcome, Outcome::Response(_)), "{outcome:?}");
    w.answer_to(event)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_template_roles_suffice_for_the_whole_lifecycle_under_iam_enforcement() {
    // GIVEN the template's roles created in moto and the functions run as
    // them, with the template's environment (api mode), IAM enforced
    let moto = Moto::start();
    let (w, resolved) = deployed(&moto).await;
    let connector = start(&w, &resolved, CONNECTOR, "ConnectorFunction").await;
    let rotation = start(&w, &resolved, ROTATION, "RotationFunction").await;
    let health = start(&w, &resolved, HEALTH, "HealthFunction").await;
    moto.enforce_iam().await;

    // WHEN CloudFormation sends Create
    let create = w.event("create.json");
    let body = send(&connector, &w, &create).await;

    // THEN it succeeds: the user, its key in the secret, connected in the portal
    assert_eq!(body["Status"], "SUCCESS", "{body}");
    assert_eq!(body["Data"]["PortalStatus"], "connected", "{body}");
    let physical_id = body["PhysicalResourceId"].as_str().unwrap().to_string();
    moto.relax_iam().await;
    let first = w.current_key().await;
    assert!(w.identity_of(&first).await.unwrap().ends_with(USER));
    assert_eq!(
        w.emulator().instances()[0].access_key_id,
        first.access_key_id
    );

    // WHEN Secrets Manager rotates the key (its four steps, as the rotation role)
    let function = register_rotation_function(&w).await;
    let token = format!("{:016x}-{:016x}-lp", fastrand::u64(..), fastrand::u64(..));
    start_rotation(&w, &function, &token).await;
    moto.enforce_iam().await;
    for step in ["createSecret", "setSecret", "testSecret", "finishSecret"] {
        let event = json!({"Step": step, "SecretId": w.secret_arn, "ClientRequestToken": token});
        let outcome = rotation.invoke(&event, Duration::from_secs(90)).await;
        assert!(
            matches!(&outcome, Outcome::Response(done) if done["step"] == step),
            "{step}: {outcome:?}"
        );
    }

    // THEN a new key is current and the portal holds it
    moto.relax_iam().await;
    let second = w.current_key().await;
    assert_ne!(second.access_key_id, first.access_key_id);
    assert!(w.identity_of(&second).await.unwrap().ends_with(USER));
    assert_eq!(
        w.emulator().instances()[0].access_key_id,
        second.access_key_id
    );

    // WHEN the policy is detached and the trail stopped, then the health
    // check runs (as the health role, repair on)
    let policy = format!(
        "arn:aws:iam::{}:policy/defender-cloud-apps/{USER}-cloudapps",
        w.account
    );
    w.iam
        .detach_user_policy()
        .user_name(USER)
        .policy_arn(&policy)
        .send()
        .await
        .unwrap();
    let trail = w.trail_names().await.pop().unwrap();
    w.cloudtrail
        .stop_logging()
        .name(&trail)
        .send()
        .await
        .unwrap();
    moto.enforce_iam().await;
    let scheduled = std::fs::read_to_string(testbed::root().join("events/health-scheduled.json"));
    let scheduled: Value = serde_json::from_str(&scheduled.unwrap()).unwrap();
    let outcome = health.invoke(&scheduled, Duration::from_secs(90)).await;

    // THEN it repaired both and every check passes
    assert!(
        matches!(&outcome, Outcome::Response(v) if v["healthy"] == true),
        "{outcome:?}"
    );
    moto.relax_iam().await;
    assert_eq!(w.attached(USER).await, [policy]);

    // WHEN CloudFormation sends an Update (adds Security configuration)
    moto.enforce_iam().await;
    let update = w.follow_up(
        "update.json",
        &physical_id,
        &w.event("update.json")["ResourceProperties"],
        Some(&create["ResourceProperties"]),
    );
    let body = send(&connector, &w, &update).await;

    // THEN it succeeds and the AWS managed policies are attached
    assert_eq!(body["Status"], "SUCCESS", "{body}");
    moto.relax_iam().await;
    let attached = w.attached(USER).await;
    assert!(
        attached
            .iter()
            .any(|p| p.ends_with(":policy/SecurityAudit")),
        "{attached:?}"
    );

    // WHEN CloudFormation sends Delete
    moto.enforce_iam().await;
    let delete = w.follow_up(
        "delete.json",
        &physical_id,
        &update["ResourceProperties"],
        None,
    );
    let body = send(&connector, &w, &delete).await;

    // THEN it succeeds and nothing the stack made is left but the log bucket
    assert_eq!(body["Status"], "SUCCESS", "{body}");
    moto.relax_iam().await;
    assert!(w.user(USER).await.is_none());
    assert!(w.local_policies().await.is_empty());
    assert!(w.trail_names().await.is_empty());
    assert!(!w.emulator().instances()[0].enabled);

    // AND moto denied nothing the functions asked for
    let denied = moto.denials();
    assert!(
        denied.is_empty(),
        "calls the template does not allow: {denied:#?}"
    );
    for (name, f) in [
        ("connector", connector),
        ("rotation", rotation),
        ("health", health),
    ] {
        let output = f.stop().await;
        w.extra_output
            .lock()
            .unwrap()
            .push((format!("the {name} function's output"), output));
    }
    w.assert_no_leaks().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_right_missing_from_the_template_fails_the_lifecycle() {
    // GIVEN the connector role without one statement of the template
    // (writing the key to its secret)
    let moto = Moto::start();
    let (w, mut resolved) = deployed(&moto).await;
    let statements =
        resolved["Roles"]["ConnectorRole"]["Policies"][0]["PolicyDocument"]["Statement"]
            .as_array_mut()
            .unwrap();
    let before = statements.len();
    statements.retain(|s| s["Sid"] != "WriteTheKeyToItsSecret");
    assert_eq!(statements.len(), before - 1, "the statement exists");
    let connector = start(&w, &resolved, CONNECTOR, "ConnectorFunction").await;
    moto.enforce_iam().await;

    // WHEN CloudFormation sends Create
    let create = w.event("create.json");
    let body = send(&connector, &w, &create).await;
    moto.relax_iam().await;

    // THEN it fails, naming the call, and moto recorded the denial
    assert_eq!(body["Status"], "FAILED", "{body}");
    let reason = body["Reason"].as_str().unwrap();
    assert!(reason.contains("secretsmanager:"), "{reason}");
    let denied = moto.denials();
    assert!(
        denied
            .iter()
            .any(|d| d["action"].as_str().unwrap().starts_with("secretsmanager:")),
        "{denied:#?}"
    );
    assert!(w.secret_key(AWSCURRENT).await.is_none());
    connector.stop().await;
}

#[test]
fn the_template_roles_grant_no_wildcard_action_and_no_wildcard_resource_but_where_aws_has_none() {
    // GIVEN the template's roles as resolved for a stack in every mode
    let rt = tokio::runtime::Runtime::new().unwrap();
    let w = rt.block_on(World::new());
    for parameters in [
        json!({}),
        json!({"PortalMode": "api", "PortalUrl": "https://t.portal.cloudappsecurity.com",
               "PortalCredentialsSecretArn": "arn:aws:secretsmanager:us-east-1:111122223333:secret:p-AbCdEf",
               "PortalCredentialsKmsKeyArn": "arn:aws:kms:us-east-1:111122223333:key/0f0e0d0c-0000-4000-8000-000000000000",
               "SecretKmsKeyArn": format!("arn:aws:kms:us-east-1:{}:key/1f0e0d0c-0000-4000-8000-000000000000", w.account),
               "TrailBucketName": "my-audit-logs", "HealthRepair": "true",
               "NotificationTopicArn": format!("arn:aws:sns:us-east-1:{}:security", w.account)}),
    ] {
        let resolved = template::resolve(
            TEMPLATE,
            &w,
            &parameters,
            &template::resources(&w, "arn:aws:sns:us-east-1:1:t"),
        );
        let roles = resolved["Roles"].as_object().unwrap();
        assert_eq!(
            roles.keys().map(String::as_str).collect::<BTreeSet<_>>(),
            BTreeSet::from(["ConnectorRole", "HealthRole", "RotationRole"])
        );
        for (name, role) in roles {
            assert!(
                role.get("ManagedPolicyArns").is_none(),
                "{name}: no managed policy"
            );
            for policy in role["Policies"].as_array().unwrap() {
                for s in policy["PolicyDocument"]["Statement"].as_array().unwrap() {
                    // THEN no action is a wildcard, every statement allows
                    let actions = as_list(&s["Action"]);
                    assert_eq!(s["Effect"], "Allow");
                    assert!(
                        actions.iter().all(|a| !a.contains('*')),
                        "{name}: {actions:?}"
                    );
                    // AND "*" is the resource only of what has no resource-level permission
                    for r in as_list(&s["Resource"]) {
                        if r == "*" {
                            assert_eq!(actions, ["cloudtrail:DescribeTrails"], "{name}: {s}");
                        } else {
                            assert!(r.starts_with("arn:aws:"), "{name}: {r}");
                        }
                    }
                }
            }
        }
    }
}

fn as_list(v: &Value) -> Vec<String> {
    match v {
        Value::String(s) => vec![s.clone()],
        Value::Array(a) => a.iter().map(|x| x.as_str().unwrap().to_string()).collect(),
        _ => panic!("not a string or list: {v}"),
    }
}
