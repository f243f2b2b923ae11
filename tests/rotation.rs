//! The rotation, driven as Secrets Manager drives it: moto's RotateSecret
//! (registered function, `RotateImmediately=false`) stages the token's
//! version AWSPENDING, then the tests send the four steps as events. The
//! portal is the emulator; after every step a probe checks that the key the
//! portal holds works (zero downtime).

use std::time::{Duration, Instant};

use cloudapps::key::StoredKey;
use cloudapps::key_store::{AWSCURRENT, AWSPENDING};
use cloudapps::rotation::{self, Event};
use cloudapps::sensitive::Sensitive;
use portal_emulator::{Fault, FaultKind};
use serde_json::json;
use testbed::runtime_api::{Function, Outcome};
use testbed::{Moto, World, register_rotation_function, start_rotation};

const USER: &str = "defender-cloud-apps";
const STEPS: [&str; 4] = ["createSecret", "setSecret", "testSecret", "finishSecret"];

/// A connected stack (api mode) whose secret can be rotated.
async fn connected() -> (World, String) {
    let w = World::with_portal(Moto::shared()).await;
    w.ok(&w.event("create.json")).await;
    let function = register_rotation_function(&w).await;
    (w, function)
}

fn token() -> String {
    format!(
        "{:016x}-{:016x}-rotation",
        fastrand::u64(..),
        fastrand::u64(..)
    )
}

async fn step(w: &World, step: &str, token: &str) -> Result<String, String> {
    testbed::rotation_step(w, step, token).await
}

/// The zero-downtime probe: the key the portal holds is an active key of the
/// user, it authenticates as the user, and the portal says it is connected.
async fn probe(w: &World, when: &str) {
    let instance = w.emulator().instances()[0].clone();
    assert!(instance.enabled, "{when}: the instance is enabled");
    let keys = w.keys(USER).await;
    assert!(
        keys.contains(&(instance.access_key_id.clone(), true)),
        "{when}: the portal holds {} which is not an active key of the user ({keys:?})",
        instance.access_key_id
    );
    let held = stored_keys(w)
        .await
        .into_iter()
        .find(|k| k.access_key_id == instance.access_key_id)
        .unwrap_or_else(|| panic!("{when}: the secret holds the portal's key"));
    let identity = w.identity_of(&held).await.unwrap();
    assert!(
        identity.ends_with(&format!("user/{USER}/{USER}")),
        "{when}: {identity}"
    );
    assert_ne!(
        instance.status, "error",
        "{when}: {}",
        instance.status_detail
    );
}

/// Every key any version of the secret holds.
async fn stored_keys(w: &World) -> Vec<StoredKey> {
    w.all_secret_values()
        .await
        .iter()
        .filter_map(|v| StoredKey::parse(&Sensitive::new(v.clone())))
        .collect()
}

async fn rotate(w: &World, function: &str) -> String {
    let t = token();
    start_rotation(w, function, &t).await;
    for s in STEPS {
        step(w, s, &t).await.unwrap_or_else(|e| panic!("{s}: {e}"));
        probe(w, &format!("after {s}")).await;
    }
    t
}

/// The end state every rotation must reach: AWSCURRENT holds an active key
/// that the portal holds too, no AWSPENDING, at most one other key and it is inactive.
async fn assert_rotated(w: &World, before: &StoredKey) -> StoredKey {
    let now = w.current_key().await;
    assert_ne!(now.access_key_id, before.access_key_id);
    assert!(
        w.secret_key(AWSPENDING).await.is_none(),
        "AWSPENDING is gone"
    );
    let keys = w.keys(USER).await;
    assert!(keys.len() <= 2, "{keys:?}");
    assert!(keys.contains(&(now.access_key_id.clone(), true)));
    assert_eq!(
        keys.iter().filter(|(_, active)| *active).count(),
        1,
        "{keys:?}"
    );
    assert_eq!(w.emulator().instances()[0].access_key_id, now.access_key_id);
    assert_eq!(w.emulator().instances()[0].status, "connected");
    probe(w, "after the rotation").await;
    now
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rotation_replaces_the_key_everywhere_with_no_downtime() {
    // GIVEN a connected stack
    let (w, function) = connected().await;
    let first = w.current_key().await;

    // WHEN a rotation runs its four steps (probing the portal after each)
    rotate(&w, &function).await;

    // THEN AWSCURRENT and the portal hold a new working key, the old one is inactive
    let second = assert_rotated(&w, &first).await;
    assert!(
        w.keys(USER)
            .await
            .contains(&(first.access_key_id.clone(), false))
    );
    assert_eq!(
        w.emulator().tests().last().unwrap().access_key_id,
        second.access_key_id
    );

    // WHEN the next rotation runs
    rotate(&w, &function).await;

    // THEN the old inactive key is deleted, and the second one is now inactive
    let third = assert_rotated(&w, &second).await;
    let keys = w.keys(USER).await;
    assert!(
        !keys.iter().any(|(id, _)| *id == first.access_key_id),
        "{keys:?}"
    );
    assert!(keys.contains(&(second.access_key_id.clone(), false)));
    assert!(keys.contains(&(third.access_key_id.clone(), true)));
    w.assert_no_leaks().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_portal_test_puts_the_current_key_back_and_a_retry_completes() {
    // GIVEN a rotation past setSecret: the portal holds the pending key
    let (w, function) = connected().await;
    let first = w.current_key().await;
    let t = token();
    start_rotation(&w, &function, &t).await;
    step(&w, "createSecret", &t).await.unwrap();
    step(&w, "setSecret", &t).await.unwrap();
    let pending = w.secret_key(AWSPENDING).await.unwrap();
    assert_eq!(
        w.emulator().instances()[0].access_key_id,
        pending.access_key_id
    );

    // WHEN the portal refuses to test it
    w.emulator().inject(Fault {
        route: Some("test".into()),
        kind: FaultKind::Status(400),
        times: 1,
    });
    let failed = step(&w, "testSecret", &t).await.unwrap_err();

    // THEN testSecret fails, and the portal holds the AWSCURRENT key again, working
    assert!(failed.contains("HTTP 400"), "{failed}");
    assert_eq!(
        w.emulator().instances()[0].access_key_id,
        first.access_key_id
    );
    probe(&w, "after the failed testSecret").await;
    assert_eq!(w.current_key().await.access_key_id, first.access_key_id);

    // WHEN Secrets Manager retries the rotation (same token)
    for s in STEPS {
        step(&w, s, &t).await.unwrap_or_else(|e| panic!("{s}: {e}"));
        probe(&w, &format!("after the retried {s}")).await;
    }

    // THEN it completes with the key createSecret made
    let now = assert_rotated(&w, &first).await;
    assert_eq!(now.access_key_id, pending.access_key_id);
    w.assert_no_leaks().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_step_run_twice_ends_in_one_good_state() {
    // GIVEN a connected stack
    let (w, function) = connected().await;
    let first = w.current_key().await;
    let t = token();
    start_rotation(&w, &function, &t).await;

    // WHEN each step is delivered twice (Secrets Manager retries)
    for s in STEPS {
        let once = step(&w, s, &t).await.unwrap_or_else(|e| panic!("{s}: {e}"));
        let twice = step(&w, s, &t)
            .await
            .unwrap_or_else(|e| panic!("{s} again: {e}"));
        probe(&w, &format!("after {s} twice ({once} / {twice})")).await;
        assert!(w.keys(USER).await.len() <= 2);
    }

    // THEN one rotation happened, not two
    assert_rotated(&w, &first).await;
    assert_eq!(w.keys(USER).await.len(), 2);
    w.assert_no_leaks().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_between_steps_then_a_whole_new_rotation_converges() {
    // GIVEN a connected stack
    let (w, function) = connected().await;
    for crash_after in 1..STEPS.len() {
        let before = w.current_key().await;
        // WHEN a rotation stops after `crash_after` steps (the function died)
        let t = token();
        start_rotation(&w, &function, &t).await;
        for s in &STEPS[..crash_after] {
            step(&w, s, &t).await.unwrap();
        }
        let orphan = w.secret_key(AWSPENDING).await.unwrap();
        probe(
            &w,
            &format!("after a crash after {}", STEPS[crash_after - 1]),
        )
        .await;

        // AND the next rotation runs all four steps with a new token
        rotate(&w, &function).await;

        // THEN one good state: never three keys, the working key never lost,
        // and the key the crashed attempt made (maybe already in the portal)
        // was taken up, not left behind or duplicated
        let now = assert_rotated(&w, &before).await;
        let keys = w.keys(USER).await;
        assert_eq!(keys.len(), 2, "crash after {crash_after}: {keys:?}");
        assert!(keys.contains(&(before.access_key_id.clone(), false)));
        assert_eq!(now.access_key_id, orphan.access_key_id);
    }
    w.assert_no_leaks().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stray_inactive_key_is_cleared_but_two_active_keys_are_refused() {
    // GIVEN a connected stack whose user also has a stray inactive key
    let (w, function) = connected().await;
    let first = w.current_key().await;
    let stray = w
        .iam
        .create_access_key()
        .user_name(USER)
        .send()
        .await
        .unwrap();
    let stray_id = stray.access_key().unwrap().access_key_id().to_string();
    w.iam
        .update_access_key()
        .user_name(USER)
        .access_key_id(&stray_id)
        .status(aws_sdk_iam::types::StatusType::Inactive)
        .send()
        .await
        .unwrap();

    // WHEN a rotation runs
    rotate(&w, &function).await;

    // THEN it went fine: the stray key made room
    let second = assert_rotated(&w, &first).await;
    assert!(!w.keys(USER).await.iter().any(|(id, _)| *id == stray_id));

    // GIVEN now a second active key nobody stored (the inactive old one made room for it)
    w.iam
        .delete_access_key()
        .user_name(USER)
        .access_key_id(&first.access_key_id)
        .send()
        .await
        .unwrap();
    let active = w
        .iam
        .create_access_key()
        .user_name(USER)
        .send()
        .await
        .unwrap();
    let active_id = active.access_key().unwrap().access_key_id().to_string();
    let keys_before = w.keys(USER).await;

    // WHEN a rotation starts
    let t = token();
    start_rotation(&w, &function, &t).await;
    let refused = step(&w, "createSecret", &t).await.unwrap_err();

    // THEN it is refused, naming the key, and nothing was deleted or made
    assert!(refused.contains("two active keys"), "{refused}");
    assert!(refused.contains(&active_id), "{refused}");
    assert_eq!(w.keys(USER).await, keys_before);
    assert_eq!(w.current_key().await.access_key_id, second.access_key_id);
    probe(&w, "after the refusal").await;
    w.assert_no_leaks().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_events_are_refused_with_clear_errors_and_change_nothing() {
    // GIVEN a connected stack, its rotation not yet enabled
    let (w, function) = connected().await;
    let keys = w.keys(USER).await;
    let t = token();

    // unknown step
    let e = Event::parse(
        &json!({"Step": "dropSecret", "SecretId": w.secret_arn, "ClientRequestToken": t}),
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("unknown step"), "{e}");

    // rotation not enabled
    let e = step(&w, "createSecret", &t).await.unwrap_err();
    assert!(e.contains("rotation is not enabled"), "{e}");

    // a token that is not a version of the secret
    start_rotation(&w, &function, &t).await;
    let e = step(&w, "createSecret", &token()).await.unwrap_err();
    assert!(e.contains("is not a version of"), "{e}");

    // a secret that is not this stack's
    let other = w
        .declare_secret(&format!("someone-else-{:08x}", fastrand::u32(..)))
        .await;
    let event =
        Event::parse(&json!({"Step": "createSecret", "SecretId": other, "ClientRequestToken": t}))
            .unwrap();
    let e = rotation::handle(
        &w.deps,
        &w.stack_id.replace("cloudapps-test", "other"),
        &event,
        Instant::now() + Duration::from_secs(30),
    )
    .await
    .unwrap_err()
    .to_string();
    assert!(e.contains("not this stack's connector secret"), "{e}");

    // setSecret before createSecret
    let e = step(&w, "setSecret", &t).await.unwrap_err();
    assert!(e.contains("createSecret has not run"), "{e}");

    // THEN nothing changed
    assert_eq!(w.keys(USER).await, keys);
    assert_eq!(
        w.secret_key(AWSCURRENT).await.unwrap().access_key_id,
        keys[0].0
    );
    w.assert_no_leaks().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_rotation_binary_runs_the_four_steps_and_logs_no_secret() {
    // GIVEN a connected stack and the real `rotation` binary, configured by
    // environment as the template does (api mode against the emulator)
    let (w, function) = connected().await;
    let first = w.current_key().await;
    let url = w.emulator().url.clone();
    let secret = w.portal_secret.clone();
    let f = Function::start(
        env!("CARGO_BIN_EXE_rotation"),
        &testbed::function_env(
            &w,
            &[
                ("STACK_ID", &w.stack_id),
                ("PORTAL_MODE", "api"),
                ("PORTAL_URL", &url),
                ("PORTAL_CREDENTIALS_SECRET_ARN", &secret),
                ("PORTAL_TEST_POLL_MS", "100"),
                ("PREFLIGHT_SETTLE_MS", "1000"),
            ],
        ),
    )
    .await;

    // WHEN Secrets Manager starts a rotation and invokes the four steps
    let t = token();
    start_rotation(&w, &function, &t).await;
    for s in STEPS {
        let event = json!({"Step": s, "SecretId": w.secret_arn, "ClientRequestToken": t});
        let outcome = f.invoke(&event, Duration::from_secs(60)).await;
        let Outcome::Response(done) = outcome else {
            panic!("{s}: {outcome:?}")
        };
        assert_eq!(done["step"], s);
        probe(&w, &format!("after {s}")).await;
    }

    // THEN the key rotated everywhere
    assert_rotated(&w, &first).await;

    // AND a bad event is the invocation's error, with the reason
    let bad = json!({"Step": "dropSecret", "SecretId": w.secret_arn, "ClientRequestToken": t});
    let Outcome::Error(e) = f.invoke(&bad, Duration::from_secs(30)).await else {
        panic!("a bad step must fail")
    };
    assert!(e.contains("unknown step"), "{e}");

    // AND its logs are JSON and hold no secret
    let output = f.stop().await;
    assert!(output.contains("rotation step done"), "{output}");
    w.extra_output
        .lock()
        .unwrap()
        .push(("the rotation's output".into(), output));
    w.assert_no_leaks().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_handoff_mode_the_previous_key_is_retired_only_once_the_new_one_is_in_use() {
    // GIVEN a stack in hand-off mode (a person pastes keys into the portal)
    let mut w = World::new().await;
    w.use_handoff().await;
    w.ok(&w.event("create.json")).await;
    let function = register_rotation_function(&w).await;
    let first = w.current_key().await;
    assert_eq!(w.notifications().len(), 1);

    // WHEN a rotation runs
    let t = token();
    start_rotation(&w, &function, &t).await;
    for s in STEPS {
        step(&w, s, &t).await.unwrap_or_else(|e| panic!("{s}: {e}"));
    }

    // THEN the person is told, and the key they pasted still works meanwhile
    let second = w.current_key().await;
    assert_ne!(second.access_key_id, first.access_key_id);
    let sent = w.notifications();
    assert_eq!(sent.len(), 2);
    let message = sent[1]["Message"].as_str().unwrap();
    assert!(message.contains(&second.access_key_id), "{message}");
    assert!(!message.contains(second.secret_access_key.expose()));
    let mut both = vec![
        (first.access_key_id.clone(), true),
        (second.access_key_id.clone(), true),
    ];
    both.sort();
    let sorted_keys = async || {
        let mut keys = w.keys(USER).await;
        keys.sort();
        keys
    };
    assert_eq!(sorted_keys().await, both);

    // WHEN the next rotation runs before anyone put the new key in place
    let early = token();
    start_rotation(&w, &function, &early).await;
    let refused = step(&w, "createSecret", &early).await.unwrap_err();

    // THEN it is refused, nothing changes, and people are reminded
    assert!(refused.contains("was not acted on"), "{refused}");
    assert_eq!(sorted_keys().await, both);
    assert_eq!(w.current_key().await, second);
    let sent = w.notifications();
    assert_eq!(sent.len(), 3);
    assert!(
        sent[2]["Message"]
            .as_str()
            .unwrap()
            .contains(&second.access_key_id),
        "{sent:?}"
    );
    // AND the health check names it, once past its grace
    let mut late = testbed::health::settings(&w, false);
    late.handoff_grace = Duration::ZERO;
    let report = testbed::health::check(&w, &late).await;
    let rotation = report.check(cloudapps::health::Check::KeyRotation);
    assert!(
        rotation.detail.contains("hand-off not acted on since"),
        "{}",
        rotation.detail
    );

    // WHEN the person puts the new key in place (the portal signs with it)
    tokio::time::sleep(Duration::from_millis(1100)).await;
    w.identity_of(&second).await.unwrap();

    // THEN the next rotation retires the first key, on that evidence
    let t = token();
    start_rotation(&w, &function, &t).await;
    for s in STEPS {
        step(&w, s, &t).await.unwrap_or_else(|e| panic!("{s}: {e}"));
    }
    let third = w.current_key().await;
    let mut both = vec![
        (second.access_key_id.clone(), true),
        (third.access_key_id.clone(), true),
    ];
    both.sort();
    assert_eq!(sorted_keys().await, both, "never three keys");
    assert_eq!(w.notifications().len(), 4);
    w.assert_no_leaks().await;
}

#[test]
fn the_sample_events_are_the_four_steps_secrets_manager_sends() {
    // GIVEN events/rotation-<step>.json (run-local and `cargo lambda invoke` use them)
    for s in STEPS {
        let text =
            std::fs::read_to_string(testbed::root().join(format!("events/rotation-{s}.json")))
                .unwrap();
        // WHEN the function reads one
        let event = Event::parse(&serde_json::from_str(&text).unwrap()).unwrap();
        // THEN it is that step, for the connector's secret, with a token
        assert_eq!(event.step.as_str(), s);
        assert_eq!(event.secret_id, "cloudapps/connector-key");
        assert!(event.token.len() >= 32);
    }
}
