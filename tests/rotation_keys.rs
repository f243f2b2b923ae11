//! Which key a rotation may retire, against moto and the portal emulator: in
//! `api` mode the previous key goes only once the portal's instance holds
//! the new one and its test passed (an Update between testSecret and
//! finishSecret handed the old key back: finishSecret hands the new one
//! over again, or fails and retires nothing); and a key this stack issued
//! but never stored (a step cut off between CreateAccessKey and
//! PutSecretValue) is recognised as its own orphan, never someone else's.

use cloudapps::key_store::AWSCURRENT;
use cloudapps::names::secret_tags;
use portal_emulator::FaultKind;
use testbed::rotation::{rotate_with, token};
use testbed::{
    Moto, USER, World, fault, register_rotation_function, rotation_step, start_rotation,
};

/// A connected stack (api mode) whose secret can be rotated.
async fn connected() -> (World, String) {
    let w = World::with_portal(Moto::shared()).await;
    w.ok(&w.event("create.json")).await;
    let function = register_rotation_function(&w).await;
    (w, function)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_update_between_test_and_finish_never_leaves_the_portal_with_a_retired_key() {
    // GIVEN a rotation up to testSecret: the portal holds the new key
    let (w, function) = connected().await;
    let old = w.current_key().await;
    let t = token();
    start_rotation(&w, &function, &t).await;
    for s in ["createSecret", "setSecret", "testSecret"] {
        rotation_step(&w, s, &t).await.unwrap();
    }
    // WHEN a stack Update runs then (it hands AWSCURRENT, the old key, back)
    let create = w.event("create.json");
    let update = w.follow_up(
        "update.json",
        &format!("arn:aws:iam::{}:user/defender-cloud-apps/{USER}", w.account),
        &create["ResourceProperties"],
        Some(&create["ResourceProperties"]),
    );
    w.ok(&update).await;
    assert_eq!(w.emulator().instances()[0].access_key_id, old.access_key_id);

    // AND finishSecret runs, the portal's test failing this time
    w.emulator()
        .inject(fault("test_result", FaultKind::Status(400), 1));
    let failed = rotation_step(&w, "finishSecret", &t).await.unwrap_err();

    // THEN nothing is retired: the old key, which the portal holds, works
    assert!(failed.contains("test"), "{failed}");
    let keys = w.keys(USER).await;
    assert!(
        keys.contains(&(old.access_key_id.clone(), true)),
        "{keys:?}"
    );

    // WHEN Secrets Manager tries finishSecret again
    rotation_step(&w, "finishSecret", &t).await.unwrap();

    // THEN the portal holds the new key, its test passed, and only then is
    // the old key inactive
    let new = w.current_key().await;
    assert_ne!(new.access_key_id, old.access_key_id);
    let instance = &w.emulator().instances()[0];
    assert_eq!(instance.access_key_id, new.access_key_id);
    assert_eq!(instance.status, "connected");
    assert!(
        w.keys(USER)
            .await
            .contains(&(old.access_key_id.clone(), false))
    );
    w.assert_no_leaks().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_issued_and_never_stored_is_the_next_rotations_to_delete_and_no_other_is() {
    // GIVEN a connected stack, then what a step cut off between
    // CreateAccessKey and PutSecretValue leaves: the mark it left on the
    // secret, and an active key no version holds
    let (w, function) = connected().await;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let mark = |at: u64| {
        w.secrets
            .tag_resource()
            .secret_id(&w.secret_arn)
            .tags(
                aws_sdk_secretsmanager::types::Tag::builder()
                    .key(secret_tags::ISSUING)
                    .value(at.to_string())
                    .build(),
            )
            .send()
    };
    mark(now).await.unwrap();
    let orphan = w
        .iam
        .create_access_key()
        .user_name(USER)
        .send()
        .await
        .unwrap();
    let orphan = orphan.access_key().unwrap().access_key_id().to_string();

    // WHEN the next rotation runs
    rotate_with(&w, &function, &token()).await.unwrap();

    // THEN the orphan is gone, and the rotation went through
    let keys = w.keys(USER).await;
    assert!(!keys.iter().any(|(id, _)| *id == orphan), "{keys:?}");
    let current = w.secret_key(AWSCURRENT).await.unwrap();
    assert!(keys.contains(&(current.access_key_id.clone(), true)));

    // GIVEN now a key made by someone else (room made for it), long before
    // any mark
    for (id, active) in w.keys(USER).await {
        if !active {
            let delete = w.iam.delete_access_key().user_name(USER).access_key_id(id);
            delete.send().await.unwrap();
        }
    }
    let theirs = w.iam.create_access_key().user_name(USER).send().await;
    let theirs = theirs
        .unwrap()
        .access_key()
        .unwrap()
        .access_key_id()
        .to_string();
    mark(now + 3600).await.unwrap();

    // WHEN a rotation runs
    let refused = rotate_with(&w, &function, &token()).await.unwrap_err();

    // THEN it is refused, and their key is never deleted
    assert!(
        refused.contains("two active keys") && refused.contains(&theirs),
        "{refused}"
    );
    assert!(w.keys(USER).await.contains(&(theirs.clone(), true)));
    w.assert_no_leaks().await;
}
