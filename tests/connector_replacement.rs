//! Replacements and rollbacks against moto server: a new user name or path,
//! and the rollback of a failed Update, each clean what they made and spare
//! what the current physical id uses.

use serde_json::json;
use testbed::{USER, World, physical_id};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_user_name_is_a_replacement_and_the_old_delete_spares_the_new() {
    // GIVEN a Create
    let w = World::new().await;
    let create = w.event("create.json");
    let first = w.ok(&create).await;
    let old_id = physical_id(&first);

    // WHEN an Update changes UserName
    let mut props = create["ResourceProperties"].clone();
    props["UserName"] = json!("mdca-connector");
    let update = w.follow_up(
        "update.json",
        &old_id,
        &props,
        Some(&create["ResourceProperties"]),
    );
    let second = w.ok(&update).await;
    let new_id = physical_id(&second);

    // THEN a new physical id, a new user whose key is in the secret
    assert_ne!(new_id, old_id);
    assert!(new_id.ends_with("/mdca-connector"));
    let key = w.current_key().await;
    assert_eq!(key.user_name, "mdca-connector");
    assert_eq!(w.identity_of(&key).await.unwrap(), new_id);

    // WHEN CloudFormation then deletes the old physical id
    let delete = w.follow_up("delete.json", &old_id, &create["ResourceProperties"], None);
    w.ok(&delete).await;

    // THEN the old user is gone and the new one keeps its user, policy, key and trail
    assert!(w.user(USER).await.is_none());
    assert!(w.user("mdca-connector").await.is_some());
    assert_eq!(
        w.group_attached("mdca-connector").await,
        vec![second["Data"]["PolicyArn"].as_str().unwrap().to_string()]
    );
    assert_eq!(
        w.keys("mdca-connector").await,
        vec![(key.access_key_id.clone(), true)]
    );
    assert_eq!(w.identity_of(&key).await.unwrap(), new_id);
    assert_eq!(w.trail_names().await.len(), 1);
    assert_eq!(second["Data"]["TrailArn"], first["Data"]["TrailArn"]);

    // AND deleting the new id then removes the trail too
    let delete = w.follow_up("delete.json", &new_id, &props, None);
    w.ok(&delete).await;
    assert!(w.user("mdca-connector").await.is_none());
    assert!(w.trail_names().await.is_empty());
    w.assert_no_leaks().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_user_path_is_refused_before_anything_changes_and_the_rollback_succeeds() {
    // GIVEN a Create under the default path
    let w = World::new().await;
    let create = w.event("create.json");
    let first = w.ok(&create).await;
    let key = w.current_key().await;
    let policies = w.local_policies().await;

    // WHEN an Update changes UserPath (the template's roles would then be
    // scoped to the new path, the user still under the old one)
    let mut props = create["ResourceProperties"].clone();
    props["UserPath"] = json!("/security/mdca/");
    let update = w.follow_up(
        "update.json",
        &physical_id(&first),
        &props,
        Some(&create["ResourceProperties"]),
    );
    let (answer, body) = w.run(&update).await;

    // THEN it fails saying what to do instead, with the physical id unchanged
    assert_eq!(answer.status, "FAILED");
    let reason = body["Reason"].as_str().unwrap();
    assert!(
        reason.contains("UserPath cannot change") && reason.contains("create a new stack"),
        "{reason}"
    );
    assert_eq!(physical_id(&body), physical_id(&first));
    // AND nothing changed: the user, its key, its group, no new policy
    let user = w.user(USER).await.expect("the user is kept");
    assert_eq!(user.path(), "/defender-cloud-apps/");
    assert_eq!(w.current_key().await, key);
    assert_eq!(w.keys(USER).await, vec![(key.access_key_id.clone(), true)]);
    assert_eq!(w.local_policies().await, policies);
    assert_eq!(w.groups_of(USER).await, vec![format!("{USER}-cloudapps")]);

    // WHEN CloudFormation rolls back (the old properties, the failed ones as "old")
    let rollback = w.follow_up(
        "update.json",
        &physical_id(&first),
        &create["ResourceProperties"],
        Some(&props),
    );
    // THEN the rollback succeeds and still changes nothing
    let back = w.ok(&rollback).await;
    assert_eq!(physical_id(&back), physical_id(&first));
    assert_eq!(w.current_key().await, key);
    w.assert_no_leaks().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_name_changed_by_case_only_is_the_same_user_and_is_never_deleted() {
    // GIVEN a Create with UserName "Defender" (the test bed compares IAM
    // names without case, as IAM does)
    let w = World::new().await;
    let mut create = w.event("create.json");
    create["ResourceProperties"]["UserName"] = json!("Defender");
    let first = w.ok(&create).await;
    let key = w.current_key().await;
    let live = physical_id(&first);
    assert!(live.ends_with("/Defender"));

    // WHEN an Update renames it "defender": the same user for IAM
    let mut props = create["ResourceProperties"].clone();
    props["UserName"] = json!("defender");
    let update = w.follow_up(
        "update.json",
        &live,
        &props,
        Some(&create["ResourceProperties"]),
    );
    let (answer, body) = w.run(&update).await;

    // THEN it is refused, nothing changed, and the key still signs in
    assert_eq!(answer.status, "FAILED");
    let reason = body["Reason"].as_str().unwrap();
    assert!(reason.contains("by case only"), "{reason}");
    assert_eq!(physical_id(&body), live);
    assert_eq!(w.current_key().await, key);
    assert!(w.identity_of(&key).await.unwrap().ends_with("/Defender"));

    // AND the rollback succeeds
    let rollback = w.follow_up(
        "update.json",
        &live,
        &create["ResourceProperties"],
        Some(&props),
    );
    w.ok(&rollback).await;

    // WHEN a Delete names the user spelt otherwise (as the Delete of a
    // replacement's old id would, had the rename been let through)
    let other = live.replace("/Defender", "/defender");
    let delete = w.follow_up("delete.json", &other, &props, None);
    w.ok(&delete).await;

    // THEN the live user, its key and its rights are all still there
    let user = w.user("Defender").await.expect("the live user is kept");
    assert_eq!(user.user_name(), "Defender");
    assert_eq!(
        w.keys("Defender").await,
        vec![(key.access_key_id.clone(), true)]
    );
    assert_eq!(w.group_attached("Defender").await.len(), 1);
    assert!(w.identity_of(&key).await.unwrap().ends_with("/Defender"));
    w.assert_no_leaks().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_rollback_of_a_failed_update_cleans_what_it_made() {
    // GIVEN a resource under USER, and what a failed Update to another
    // UserName left behind (a second user, made by this same resource)
    let w = World::new().await;
    let create = w.event("create.json");
    let body = w.ok(&create).await;
    let mut failed_props = create["ResourceProperties"].clone();
    failed_props["UserName"] = json!("half-made");
    let half = w.follow_up(
        "update.json",
        &physical_id(&body),
        &failed_props,
        Some(&create["ResourceProperties"]),
    );
    w.ok(&half).await;
    assert!(w.user("half-made").await.is_some());

    // WHEN CloudFormation rolls back: Update to the old properties, with the
    // physical id it holds, and the failed properties as "old"
    let rollback = w.follow_up(
        "update.json",
        &physical_id(&body),
        &create["ResourceProperties"],
        Some(&failed_props),
    );
    let back = w.ok(&rollback).await;

    // THEN the resource is back to USER with a working key, and the other user is gone
    assert_eq!(physical_id(&back), physical_id(&body));
    assert!(w.user("half-made").await.is_none());
    let key = w.current_key().await;
    assert_eq!(key.user_name, USER);
    assert_eq!(w.identity_of(&key).await.unwrap(), physical_id(&body));
    assert_eq!(w.keys(USER).await, vec![(key.access_key_id.clone(), true)]);
    assert_eq!(w.trail_names().await.len(), 1);
    w.assert_no_leaks().await;
}
