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
        w.attached("mdca-connector").await,
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
async fn a_new_path_moves_the_user_and_the_old_delete_only_removes_the_old_policy() {
    // GIVEN a Create under the default path
    let w = World::new().await;
    let create = w.event("create.json");
    let first = w.ok(&create).await;
    let key = w.current_key().await;

    // WHEN an Update changes UserPath, then CloudFormation deletes the old id
    let mut props = create["ResourceProperties"].clone();
    props["UserPath"] = json!("/security/mdca/");
    let update = w.follow_up(
        "update.json",
        &physical_id(&first),
        &props,
        Some(&create["ResourceProperties"]),
    );
    let second = w.ok(&update).await;
    assert_ne!(physical_id(&second), physical_id(&first));
    let delete = w.follow_up(
        "delete.json",
        &physical_id(&first),
        &create["ResourceProperties"],
        None,
    );
    w.ok(&delete).await;

    // THEN the same user lives under the new path, with the new policy only,
    // the same working key, and the trail
    let user = w.user(USER).await.expect("the user is kept");
    assert_eq!(user.path(), "/security/mdca/");
    let new_policy = second["Data"]["PolicyArn"].as_str().unwrap();
    assert!(new_policy.contains(":policy/security/mdca/"));
    assert_eq!(w.attached(USER).await, vec![new_policy.to_string()]);
    assert!(
        !w.policy_exists(first["Data"]["PolicyArn"].as_str().unwrap())
            .await
    );
    assert_eq!(w.current_key().await, key);
    assert_eq!(w.keys(USER).await, vec![(key.access_key_id.clone(), true)]);
    assert_eq!(w.trail_names().await.len(), 1);
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
