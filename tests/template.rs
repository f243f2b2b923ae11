//! template.yaml's least privilege, proven: each function runs as the real
//! binary with exactly the role and the environment the template gives it
//! (read from the template itself), under moto's IAM enforcement, through
//! the whole lifecycle (Create, a rotation, a health check that repairs,
//! an Update, Delete), with the custom resource's properties and the
//! user's permissions boundary as the template makes them. moto is made
//! to authorize against real resource ARNs (tests/support/moto_launcher.py),
//! and records every request it denies: any call the code makes that the
//! template does not allow fails these tests. Three modules of this test
//! (no entry of their own in functions/Cargo.toml): template_privilege.rs,
//! what the connector role and the user cannot do; template_documents.rs,
//! the template's documents read without running anything; template_hub.rs,
//! the same in hub mode (the member of the organization hub).

#[path = "template_documents.rs"]
mod documents;
#[path = "template_hub.rs"]
mod hub;
#[path = "template_privilege.rs"]
mod privilege;

use std::time::Duration;

use cloudapps::key_store::AWSCURRENT;
use serde_json::{Value, json};
use testbed::runtime_api::{Function, Outcome};
use testbed::{Moto, World, register_rotation_function, start_rotation, template};

const CONNECTOR: &str = env!("CARGO_BIN_EXE_connector");
const ROTATION: &str = env!("CARGO_BIN_EXE_rotation");
const HEALTH: &str = env!("CARGO_BIN_EXE_health");
const USER: &str = "defender-cloud-apps";
const GROUP: &str = "defender-cloud-apps-cloudapps";
const TEMPLATE: &str = "template.yaml";
const BOTH: &str = "SecurityAuditing,SecurityConfiguration";
/// Quick polls and retries for tests; nothing that changes what is called.
const TUNING: [(&str, &str); 5] = [
    ("KEY_READY_POLL_MS", "50"),
    ("PORTAL_TEST_POLL_MS", "100"),
    ("PORTAL_RETRY_FIRST_MS", "100"),
    ("PREFLIGHT_SETTLE_MS", "1000"),
    ("CFN_DEADLINE_MARGIN_MS", "2000"),
];

/// The parameters of a stack in api mode against `w`'s portal emulator,
/// repair on, with `extra` on top.
fn api_parameters(w: &World, extra: &Value) -> Value {
    let mut parameters = json!({
        "PortalMode": "api",
        "PortalUrl": w.emulator().url,
        "PortalCredentialsSecretArn": w.portal_secret,
        "HealthRepair": "true",
    });
    for (k, v) in extra.as_object().unwrap() {
        parameters[k] = v.clone();
    }
    parameters
}

/// A world in `moto` with the portal emulator (api mode) and a topic, the
/// template resolved for it (`extra` parameters on top of api mode), and
/// the user's permissions boundary created as CloudFormation would.
async fn deployed_with(moto: &Moto, extra: &Value) -> (World, Value) {
    let w = World::with_portal(moto).await;
    let topic = w.create_topic("cloudapps-notify").await;
    let resources = template::resources(&w, &topic);
    let resolved = template::resolve(TEMPLATE, &w, &api_parameters(&w, extra), &resources);
    template::put_managed_policies(&w, &resolved).await;
    (w, resolved)
}

async fn deployed(moto: &Moto) -> (World, Value) {
    deployed_with(moto, &json!({})).await
}

/// CloudFormation's Create of the template's custom resource.
fn create_event(w: &World, resolved: &Value) -> Value {
    let mut create = w.event("create.json");
    create["ResourceProperties"] = template::connector_properties(resolved);
    create
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

    // WHEN CloudFormation sends Create, with the template's properties
    let create = create_event(&w, &resolved);
    let body = send(&connector, &w, &create).await;

    // THEN it succeeds: the user, within the template's boundary, its key
    // in the secret, connected in the portal
    assert_eq!(body["Status"], "SUCCESS", "{body}");
    assert_eq!(body["Data"]["PortalStatus"], "connected", "{body}");
    let physical_id = body["PhysicalResourceId"].as_str().unwrap().to_string();
    moto.relax_iam().await;
    let boundary = template::managed_policy_arn(&resolved, "UserPermissionsBoundary");
    let user = w.user(USER).await.unwrap();
    let set = user
        .permissions_boundary()
        .and_then(|b| b.permissions_boundary_arn());
    assert_eq!(set, Some(boundary.as_str()));
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
        .detach_group_policy()
        .group_name(GROUP)
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
    assert_eq!(w.group_attached(USER).await, [policy]);

    // WHEN the stack is updated to add Security configuration: the boundary
    // gets its new document, then CloudFormation sends the Update
    let connections = json!({"Connections": BOTH});
    let topic = w.create_topic("cloudapps-notify").await; // the same topic
    let resources = template::resources(&w, &topic);
    let both = template::resolve(TEMPLATE, &w, &api_parameters(&w, &connections), &resources);
    template::put_managed_policies(&w, &both).await;
    moto.enforce_iam().await;
    let update = w.follow_up(
        "update.json",
        &physical_id,
        &template::connector_properties(&both),
        Some(&create["ResourceProperties"]),
    );
    let body = send(&connector, &w, &update).await;

    // THEN it succeeds and the AWS managed policies are attached
    assert_eq!(body["Status"], "SUCCESS", "{body}");
    moto.relax_iam().await;
    let attached = w.group_attached(USER).await;
    assert!(
        attached
            .iter()
            .any(|p| p.ends_with(":policy/SecurityAudit")),
        "{attached:?}"
    );

    // WHEN someone put an inline policy on the stack's group, then
    // CloudFormation sends Delete
    let inline = w
        .iam
        .put_group_policy()
        .group_name(GROUP)
        .policy_name("by-hand");
    let document = json!({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "sns:ListTopics", "Resource": "*"}]});
    inline
        .policy_document(document.to_string())
        .send()
        .await
        .unwrap();
    moto.enforce_iam().await;
    let delete = w.follow_up(
        "delete.json",
        &physical_id,
        &update["ResourceProperties"],
        None,
    );
    let body = send(&connector, &w, &delete).await;

    // THEN it succeeds and nothing the custom resource made is left but the
    // log bucket (the boundary is the stack's, deleted after it)
    assert_eq!(body["Status"], "SUCCESS", "{body}");
    moto.relax_iam().await;
    assert!(w.user(USER).await.is_none());
    assert!(w.iam.get_group().group_name(GROUP).send().await.is_err());
    assert_eq!(w.local_policies().await, [boundary]);
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
    let create = create_event(&w, &resolved);
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
