//! The organization-wide rollout: the member template the build produces
//! (scripts/member_template.py, no transform), deployed by a
//! SERVICE_MANAGED stack set to every account of an OU in moto
//! (tests/support/stackset.py says what moto creates and what it cannot),
//! then the connector's Create in each member account, all at once, against
//! one portal emulator throttled at 30 requests per (scaled) minute.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use cloudapps::key_store::AWSCURRENT;
use futures_util::future::join_all;
use portal_emulator::{Config, Emulator};
use serde_json::{Value, json};
use testbed::{Moto, REGION, World, python, root};

const ACCOUNTS: usize = 8;

fn run_python(args: &[&str]) -> String {
    let out = Command::new(python()).args(args).output().unwrap();
    assert!(
        out.status.success(),
        "python {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// The member template, built as scripts/package builds it, from stand-in
/// executables (moto stores the code and never runs it).
fn member_template(dir: &Path) -> Value {
    let mut args = vec![
        root()
            .join("scripts/member_template.py")
            .display()
            .to_string(),
        root().join("template.yaml").display().to_string(),
        dir.display().to_string(),
    ];
    for name in ["connector", "rotation", "health"] {
        std::fs::create_dir_all(dir).unwrap();
        let bootstrap = dir.join(format!("{name}.bootstrap"));
        std::fs::write(&bootstrap, format!("#!/bin/sh\necho {name}\n")).unwrap();
        args.push(format!("{name}={}", bootstrap.display()));
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    run_python(&args);
    let text = std::fs::read_to_string(dir.join("member-template.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

/// A Create as the member template's custom resource sends it: no
/// ConnectorName, so each account gets its default `aws-<AccountId>`; the
/// user's permissions boundary, the instance's.
fn create_event(w: &World, boundary: &str) -> Value {
    let mut e = w.event("create.json");
    let props = e["ResourceProperties"].as_object_mut().unwrap();
    props.remove("ConnectorName");
    props.insert("UserPermissionsBoundary".into(), json!(boundary));
    e
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stack_set_connects_every_account_of_the_organization_once() {
    // GIVEN the member template and an organization whose OU holds 8 accounts
    let moto = Moto::start();
    let dir = std::env::temp_dir().join(format!("cloudapps-org-{:016x}", fastrand::u64(..)));
    let template = member_template(&dir);
    assert!(template.get("Transform").is_none());
    let parameters = json!({
        "CodeBucketPrefix": format!("cloudapps-code-{:08x}", fastrand::u32(..)),
        "PortalMode": "api",
        "PortalUrl": "https://contoso.us3.portal.cloudappsecurity.com",
        "PortalCredentialsSecretArn": "arn:aws:secretsmanager:us-east-1:123456789012:secret:cloudapps/portal-AbCdEf",
    });

    // WHEN a SERVICE_MANAGED stack set rolls it out to the OU, one region
    let rollout: Value = serde_json::from_str(&run_python(&[
        &root()
            .join("tests/support/stackset.py")
            .display()
            .to_string(),
        "rollout",
        &moto.endpoint,
        &dir.join("member-template.json").display().to_string(),
        &dir.display().to_string(),
        &ACCOUNTS.to_string(),
        &parameters.to_string(),
    ]))
    .unwrap();

    // THEN every account has exactly one instance, in us-east-1, current
    let accounts: BTreeSet<String> = rollout["accounts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap().to_string())
        .collect();
    assert_eq!(accounts.len(), ACCOUNTS);
    let instances = rollout["instances"].as_array().unwrap();
    let instance_accounts: BTreeSet<String> = instances
        .iter()
        .map(|i| i["account"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(instances.len(), ACCOUNTS, "one instance per account");
    assert_eq!(instance_accounts, accounts);
    for i in instances {
        assert_eq!(i["region"], REGION);
        assert_eq!(
            (&i["status"], &i["detailed"]),
            (&json!("CURRENT"), &json!("SUCCEEDED"))
        );
    }
    // AND only the custom resource (moto cannot create it in a stack
    // instance) and the outputs that read it were left out
    assert_eq!(
        rollout["dropped"],
        json!([
            "Connector",
            "Outputs.CloudTrailCoverage",
            "Outputs.PortalInstance",
            "Outputs.PortalStatus",
            "Outputs.SecretArn",
            "Outputs.TrailArn",
            "Outputs.UserArn"
        ])
    );
    // AND each member account holds the three functions, their roles, log
    // groups, topic, rotation rule and health schedule, as the template
    // describes them
    for (account, member) in rollout["members"].as_object().unwrap() {
        let roles = member["roles"].as_array().unwrap();
        assert_eq!(roles.len(), 3, "{account}: {member}");
        assert!(roles.iter().all(|r| {
            r.as_str()
                .unwrap()
                .starts_with(&format!("arn:aws:iam::{account}:role/cloudapps/"))
        }));
        let functions = member["functions"].as_array().unwrap();
        assert_eq!(functions.len(), 3, "{account}: {member}");
        for f in functions {
            assert_eq!(f["runtime"], "provided.al2023");
            assert_eq!(f["handler"], "bootstrap");
            assert_eq!(f["memory"], 128);
            let health = f["environment"].get("HEALTH_REPAIR").is_some();
            let rotation = f["name"].as_str().unwrap().contains("RotationFunction");
            let timeout = match (health, rotation) {
                (true, _) => 120,
                (_, true) => 900,
                _ => 300,
            };
            assert_eq!(f["timeout"], timeout, "{f}");
            assert!(roles.contains(&f["role"]), "{f}");
            assert_eq!(f["environment"]["PORTAL_MODE"], "api");
            assert_eq!(f["environment"]["PORTAL_URL"], parameters["PortalUrl"]);
        }
        let logs = member["log_groups"].as_object().unwrap();
        assert_eq!(logs.len(), 3, "{account}: {member}");
        assert!(
            logs.iter()
                .all(|(name, days)| name.starts_with("/cloudapps/") && *days == 90)
        );
        assert_eq!(member["topics"].as_array().unwrap().len(), 1);
        assert_eq!(member["rules"].as_array().unwrap().len(), 2, "{member}");
        // AND the user's permissions boundary, under its own path
        let boundaries = member["boundaries"].as_array().unwrap();
        assert_eq!(boundaries.len(), 1, "{account}: {member}");
        assert!(boundaries[0].as_str().unwrap().starts_with(&format!(
            "arn:aws:iam::{account}:policy/cloudapps-boundary/"
        )));
    }
    let boundary = |account: &str| {
        let member = &rollout["members"][account];
        member["boundaries"][0].as_str().unwrap().to_string()
    };

    // GIVEN one portal for the organization, throttled at 30 requests per
    // window (the minute scaled down to 10 s), and each account's stack as
    // the instance made it (moto does not create its secret: the world
    // declares it for that stack)
    let token: String = (0..64)
        .map(|_| char::from_digit(fastrand::u32(0..16), 16).unwrap())
        .collect();
    let portal = Emulator::start(Config {
        api_token: Some(token.clone()),
        limit: 30,
        window: Duration::from_secs(10),
        test_duration: Duration::from_millis(300),
        aws_endpoint: Some(moto.endpoint.clone()),
        ..Config::default()
    })
    .await
    .unwrap();
    let mut worlds = Vec::new();
    for i in instances {
        let mut w = World::in_account(
            &moto,
            i["account"].as_str().unwrap(),
            i["stack_id"].as_str().unwrap(),
        )
        .await;
        w.connect_portal(&portal.url, &json!({"Token": token}), "{}")
            .await;
        worlds.push(w);
    }

    // WHEN CloudFormation sends every account's Create at once
    let creates: Vec<Value> = worlds
        .iter()
        .map(|w| create_event(w, &boundary(&w.account)))
        .collect();
    let answers = join_all(
        worlds
            .iter()
            .zip(&creates)
            .map(|(w, e)| w.run_with_budget(e, Duration::from_secs(120))),
    )
    .await;

    // THEN every account is connected, each exactly once, with its own key
    for ((w, (answer, body)), _) in worlds.iter().zip(&answers).zip(&creates) {
        assert_eq!(
            answer.status, "SUCCESS",
            "{}: {:?}",
            w.account, answer.reason
        );
        assert_eq!(body["Data"]["PortalStatus"], "connected", "{body}");
    }
    let held: BTreeMap<String, _> = portal
        .instances()
        .into_iter()
        .map(|i| (i.name.clone(), i))
        .collect();
    assert_eq!(held.len(), ACCOUNTS, "one portal instance per account");
    for w in &worlds {
        let instance = &held[&format!("aws-{}", w.account)];
        assert!(
            instance.enabled && instance.status == "connected",
            "{instance:?}"
        );
        assert_eq!(
            instance.access_key_id,
            w.secret_key(AWSCURRENT).await.unwrap().access_key_id
        );
        let user = w.user("defender-cloud-apps").await.unwrap();
        let set = user.permissions_boundary().unwrap();
        assert_eq!(
            set.permissions_boundary_arn(),
            Some(boundary(&w.account).as_str())
        );
    }
    let mut created: BTreeMap<String, usize> = BTreeMap::new();
    for r in portal.requests() {
        if r.route.as_deref() == Some("create") && r.status == 201 {
            let name = serde_json::from_str::<Value>(&r.body).unwrap()["name"]
                .as_str()
                .unwrap()
                .to_string();
            *created.entry(name).or_default() += 1;
        }
    }
    assert_eq!(created.len(), ACCOUNTS, "{created:?}");
    assert!(
        created.values().all(|n| *n == 1),
        "created twice: {created:?}"
    );
    assert!(
        portal.throttled() > 0,
        "the rollout ran into the portal's throttle (and got through it)"
    );

    // WHEN the same stack set is also deployed to a second region of an account
    let first = &worlds[0];
    let other_region = first.stack_id.replace(":us-east-1:", ":us-west-2:");
    let mut second = World::in_account(&moto, &first.account, &other_region).await;
    second
        .connect_portal(&portal.url, &json!({"Token": token}), "{}")
        .await;
    let (answer, _) = second
        .run(&create_event(&second, &boundary(&first.account)))
        .await;

    // THEN that Create fails with why, and the portal still holds one
    // instance for the account, with its first key
    assert_eq!(answer.status, "FAILED");
    let reason = answer.reason.unwrap_or_default();
    assert!(reason.contains("one region per account"), "{reason}");
    assert!(reason.contains("us-east-1"), "{reason}");
    assert_eq!(portal.instances().len(), ACCOUNTS);
    assert_eq!(
        held[&format!("aws-{}", first.account)].access_key_id,
        portal
            .instances()
            .iter()
            .find(|i| i.name == format!("aws-{}", first.account))
            .unwrap()
            .access_key_id
    );

    // WHEN the stack set is deleted: each custom resource's Delete, then the instances
    let deletes = join_all(worlds.iter().zip(&answers).zip(&creates).map(
        |((w, (_, body)), create)| async move {
            let delete = w.follow_up(
                "delete.json",
                body["PhysicalResourceId"].as_str().unwrap(),
                &create["ResourceProperties"],
                None,
            );
            w.run_with_budget(&delete, Duration::from_secs(120)).await
        },
    ))
    .await;
    for (answer, _) in &deletes {
        assert_eq!(answer.status, "SUCCESS", "{:?}", answer.reason);
    }
    let accounts: Vec<&str> = worlds.iter().map(|w| w.account.as_str()).collect();
    let mut args = vec![
        root()
            .join("tests/support/stackset.py")
            .display()
            .to_string(),
        "teardown".into(),
        moto.endpoint.clone(),
        rollout["stack_set"].as_str().unwrap().to_string(),
    ];
    args.extend(accounts.iter().map(|a| a.to_string()));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let after: Value = serde_json::from_str(&run_python(&args)).unwrap();

    // THEN no member account keeps the connector's user, functions or roles
    // (moto keeps a managed policy, the boundary, when it deletes a stack),
    // and the portal disabled every instance
    for w in &worlds {
        assert!(w.user("defender-cloud-apps").await.is_none());
        let member = &after["members"][&w.account];
        assert_eq!(member["functions"], json!([]), "{member}");
        assert_eq!(member["roles"], json!([]), "{member}");
    }
    assert!(portal.instances().iter().all(|i| !i.enabled));
    for w in &worlds {
        w.assert_no_leaks().await;
    }
    testbed::assert_no_leak(
        &portal.secrets_seen(),
        &[("the logs", &testbed::captured_logs())],
    );
    let _ = std::fs::remove_dir_all(&dir);
}
