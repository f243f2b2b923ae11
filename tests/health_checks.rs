//! The health checks against moto and the portal emulator: a connected stack
//! passes every check and says why; each link broken in turn fails exactly
//! its own check, with what to do, and the check changes nothing; a rotation
//! under way is no finding, one that stopped is; a deleted key, then a
//! deleted user, are named.

use std::time::Duration;

use aws_sdk_iam::types::StatusType;
use cloudapps::config::HealthSettings;
use cloudapps::health::{self, Check, State};
use serde_json::{Value, json};
use testbed::health::{
    all_pass, attach, check, connected, detach, enable_rotation, only_fails, policy_arn,
    second_key, set_default_document, settings, stop_trail, token,
};
use testbed::{USER, World, register_rotation_function, rotation_step};

const INSTANCE: &str = "aws-123456789012";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_healthy_connection_passes_every_check_and_says_why() {
    // GIVEN a connected stack
    let w = connected().await;

    // WHEN the health check runs
    let report = check(&w, &settings(&w, false)).await;

    // THEN all six checks pass, each naming what holds
    all_pass(&report);
    assert_eq!(report.checks.len(), 6);
    let key = w.current_key().await;
    for (check, says) in [
        (Check::AccessKey, key.access_key_id.as_str()),
        (Check::UserPolicy, "exactly the guide's policy"),
        (Check::KeyRotation, "every 30 days"),
        (Check::CloudTrail, "multi-region, logging"),
        (Check::PortalStatus, "connected"),
        (Check::PortalActivity, "recorded AWS activity"),
    ] {
        let detail = &report.check(check).detail;
        assert!(detail.contains(says), "{check:?}: {detail}");
    }

    // AND its line carries a metric of 0 per check and no failing check
    let line: Value = serde_json::from_str(&report.log_line()).unwrap();
    for check in Check::ALL {
        assert_eq!(line[check.metric()], 0, "{check:?}");
    }
    assert_eq!(line[health::FAILING], 0);
    assert_eq!(line["healthy"], true);
    w.assert_no_leaks().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_broken_link_fails_exactly_its_own_check_and_nothing_is_changed() {
    // GIVEN a connected stack whose rotation schedule is not on yet (and a
    // portal that lets its 15 runs through: 2 requests each)
    let mut w = World::new().await;
    let portal = portal_emulator::Config {
        limit: 100,
        ..testbed::quick_portal()
    };
    w.use_portal(portal, testbed::PortalAuth::Token).await;
    w.ok(&w.event("create.json")).await;
    let s = settings(&w, false);

    // THEN the rotation check fails, and only it
    only_fails(&check(&w, &s).await, Check::KeyRotation, &["not enabled"]);
    enable_rotation(&w).await;
    all_pass(&check(&w, &s).await);

    // WHEN the policy is detached from the user's group
    let arn = policy_arn(&w);
    detach(&w, &arn).await;
    // THEN UserPolicy fails naming it, and the check changed nothing
    only_fails(
        &check(&w, &s).await,
        Check::UserPolicy,
        &[&arn, "is not attached"],
    );
    assert!(w.group_attached(USER).await.is_empty());
    attach(&w, &arn).await;

    // WHEN the policy is attached to the user itself too (Security Hub IAM.2)
    w.iam
        .attach_user_policy()
        .user_name(USER)
        .policy_arn(&arn)
        .send()
        .await
        .unwrap();
    // THEN UserPolicy fails: the user's rights come from its group only
    only_fails(
        &check(&w, &s).await,
        Check::UserPolicy,
        &[&arn, "attached to the user itself", "IAM.2"],
    );
    let direct = w.iam.detach_user_policy().user_name(USER).policy_arn(&arn);
    direct.send().await.unwrap();

    // WHEN the user leaves its group
    let group = format!("{USER}-cloudapps");
    let leave = w
        .iam
        .remove_user_from_group()
        .group_name(&group)
        .user_name(USER);
    leave.send().await.unwrap();
    // THEN UserPolicy fails: it has none of its rights
    only_fails(
        &check(&w, &s).await,
        Check::UserPolicy,
        &["not in its group", &group],
    );
    let join = w.iam.add_user_to_group().group_name(&group).user_name(USER);
    join.send().await.unwrap();

    // WHEN a statement is added to the policy (a new default version)
    let mut document = cloudapps::iam_user::policy_document();
    document["Statement"]
        .as_array_mut()
        .unwrap()
        .push(json!({"Effect": "Allow", "Action": "iam:CreateAccessKey", "Resource": "*"}));
    set_default_document(&w, &arn, &document).await;
    // THEN UserPolicy fails naming the added grant
    only_fails(
        &check(&w, &s).await,
        Check::UserPolicy,
        &["adds Allow iam:CreateAccessKey on *"],
    );
    w.iam
        .set_default_policy_version()
        .policy_arn(&arn)
        .version_id("v1")
        .send()
        .await
        .unwrap();

    // WHEN the user is moved to another path
    let moved = w.iam.update_user().user_name(USER).new_path("/moved/");
    moved.send().await.unwrap();
    // THEN UserPolicy fails naming both paths
    only_fails(
        &check(&w, &s).await,
        Check::UserPolicy,
        &["under the path /moved/", "/defender-cloud-apps/"],
    );
    let back = w.iam.update_user().user_name(USER);
    back.new_path("/defender-cloud-apps/").send().await.unwrap();

    // WHEN an extra policy is attached to the user's group
    let extra = format!("arn:aws:iam::{}:policy/extra", w.account);
    w.iam
        .create_policy()
        .policy_name("extra")
        .policy_document(cloudapps::iam_user::policy_document().to_string())
        .send()
        .await
        .unwrap();
    attach(&w, &extra).await;
    only_fails(
        &check(&w, &s).await,
        Check::UserPolicy,
        &[&extra, "attached to the group", "too"],
    );
    detach(&w, &extra).await;
    all_pass(&check(&w, &s).await);

    // WHEN the key in AWSCURRENT is deactivated
    let key = w.current_key().await;
    let set_status = |status: StatusType| {
        w.iam
            .update_access_key()
            .user_name(USER)
            .access_key_id(&key.access_key_id)
            .status(status)
            .send()
    };
    set_status(StatusType::Inactive).await.unwrap();
    // THEN AccessKey fails: the portal cannot sign in
    only_fails(
        &check(&w, &s).await,
        Check::AccessKey,
        &[&key.access_key_id, "inactive"],
    );
    set_status(StatusType::Active).await.unwrap();

    // WHEN a second key is created for the user (by hand, outside the connector)
    let second_id = second_key(&w).await;
    // THEN AccessKey fails naming it, and it is left alone
    only_fails(
        &check(&w, &s).await,
        Check::AccessKey,
        &[&second_id, "second active key"],
    );
    assert_eq!(w.keys(USER).await.len(), 2);
    w.iam
        .delete_access_key()
        .user_name(USER)
        .access_key_id(&second_id)
        .send()
        .await
        .unwrap();

    // WHEN the trail stops logging
    let trail = stop_trail(&w).await;
    // THEN CloudTrail fails naming the trail and the gap
    only_fails(
        &check(&w, &s).await,
        Check::CloudTrail,
        &[&trail, "not logging"],
    );
    w.cloudtrail
        .start_logging()
        .name(&trail)
        .send()
        .await
        .unwrap();

    // WHEN the portal reports an error for the instance
    let detail = "AccessDenied calling cloudtrail:LookupEvents";
    assert!(w.emulator().set_status(INSTANCE, "error", detail));
    // THEN PortalStatus fails with the portal's own words
    only_fails(
        &check(&w, &s).await,
        Check::PortalStatus,
        &["as error", detail],
    );
    w.emulator().set_status(INSTANCE, "connected", "");

    // WHEN no activity reached the portal for a day
    w.emulator().age_activities(Duration::from_secs(25 * 3600));
    // THEN a connection younger than the grace (a day, by default) is not
    // failed for it: the portal takes hours to show a new account's data
    let young = HealthSettings {
        activity_grace: Duration::from_secs(24 * 3600),
        ..s.clone()
    };
    let report = check(&w, &young).await;
    assert!(report.failing().is_empty(), "{}", report.summary());
    let activity = report.check(Check::PortalActivity);
    assert_eq!(activity.state, State::Skip, "{}", activity.detail);
    assert!(
        activity.detail.contains("no AWS activity yet"),
        "{}",
        activity.detail
    );
    // AND an older one fails
    only_fails(
        &check(&w, &s).await,
        Check::PortalActivity,
        &["no AWS activity in the last 24 hours"],
    );

    // AND every request to the activities API is the documented filter
    let asked: Vec<Value> = w
        .emulator()
        .requests()
        .iter()
        .filter(|r| r.route.as_deref() == Some("activities"))
        .map(|r| serde_json::from_str(&r.body).unwrap())
        .collect();
    assert!(!asked.is_empty());
    for body in asked {
        assert_eq!(body["filters"]["service"], json!({"eq": [11599]}));
        assert!(body["filters"]["date"]["gte"].is_u64(), "{body}");
        assert_eq!(
            (&body["limit"], &body["sortDirection"]),
            (&json!(1), &json!("desc"))
        );
    }
    w.assert_no_leaks().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rotation_under_way_is_no_finding_but_one_that_stopped_is() {
    // GIVEN a connected stack in the middle of a rotation: createSecret made
    // a second active key, staged AWSPENDING
    let w = connected().await;
    let function = register_rotation_function(&w).await;
    let t = token("under-way");
    testbed::start_rotation(&w, &function, &t).await;
    rotation_step(&w, "createSecret", &t).await.unwrap();
    assert_eq!(w.keys(USER).await.len(), 2);

    // WHEN the health check runs
    let report = check(&w, &settings(&w, false)).await;

    // THEN the pending key is expected and a young rotation is not stuck
    all_pass(&report);
    assert!(
        report
            .check(Check::AccessKey)
            .detail
            .contains("but for a rotation's")
    );

    // WHEN the rotation is older than the limit (it stopped after createSecret)
    let s = HealthSettings {
        rotation_stuck_after: Duration::ZERO,
        ..settings(&w, false)
    };
    // THEN KeyRotation fails naming the version, and only it
    only_fails(
        &check(&w, &s).await,
        Check::KeyRotation,
        &["did not finish", &t],
    );
    w.assert_no_leaks().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deleted_key_then_a_deleted_user_are_named() {
    // GIVEN a connected stack whose key is deleted in IAM
    let w = connected().await;
    let key = w.current_key().await;
    let deleted = w.iam.delete_access_key().user_name(USER);
    deleted
        .access_key_id(&key.access_key_id)
        .send()
        .await
        .unwrap();

    // THEN AccessKey fails: the portal cannot sign in
    only_fails(
        &check(&w, &settings(&w, false)).await,
        Check::AccessKey,
        &[&key.access_key_id, "no longer exists"],
    );

    // WHEN the user is deleted too
    let group = format!("{USER}-cloudapps");
    let leave = w
        .iam
        .remove_user_from_group()
        .group_name(&group)
        .user_name(USER);
    leave.send().await.unwrap();
    w.iam.delete_user().user_name(USER).send().await.unwrap();

    // THEN UserPolicy says so, and what to do
    let report = check(&w, &settings(&w, false)).await;
    let user_policy = &report.check(Check::UserPolicy).detail;
    assert!(
        user_policy.contains("is gone") && user_policy.contains("What to do"),
        "{user_policy}"
    );
    assert_eq!(report.failing(), ["UserPolicy", "AccessKey", "KeyRotation"]);
    assert_eq!(report.check(Check::CloudTrail).state, State::Pass);
}
