//! The portal's asynchronous "Test API": a test is recorded `running`, runs
//! in the background against AWS with the instance's key, and ends after the
//! configured duration, setting the instance's status.

use std::sync::Arc;

use crate::answer::{Answer, Outcome, no_instance};
use crate::aws;
use crate::state::{ActivityView, Instance, Shared, TestView, now_millis};

pub(crate) fn test_result(shared: &Shared, id: &str, test_id: &str) -> Outcome {
    let state = shared.lock();
    let test = state
        .tests
        .iter()
        .find(|t| t.test_id == test_id && t.instance_id == id)
        .ok_or_else(|| Answer::error(404, format!("no test {test_id} of instance {id}")))?;
    Ok(Answer::json(200, test.json()))
}

/// `test`: records a running test and runs it in the background.
pub(crate) fn start_test(shared: &Arc<Shared>, id: &str) -> Outcome {
    let mut state = shared.lock();
    let instance = state
        .instances
        .iter()
        .find(|i| i.id == id)
        .ok_or_else(|| no_instance(id))?;
    if !instance.enabled {
        return Err(Answer::error(409, format!("instance {id} is disabled")));
    }
    let test = TestView {
        test_id: std::iter::repeat_with(fastrand::alphanumeric)
            .take(16)
            .collect(),
        instance_id: id.to_string(),
        access_key_id: instance.access_key_id.clone(),
        state: "running".to_string(),
        reason: None,
        checks: Vec::new(),
    };
    let secret = instance.secret_access_key.clone();
    let duration = state.test_duration;
    state.tests.push(test.clone());
    drop(state);
    let answer = Answer::json(202, test.json());
    tokio::spawn(run_test(shared.clone(), test, secret, duration));
    Ok(answer)
}

/// Calls AWS with the tested key, then ends the test no earlier than
/// `duration` after it started, and sets the instance's status when the
/// instance still holds that key and is enabled.
async fn run_test(
    shared: Arc<Shared>,
    test: TestView,
    secret: String,
    duration: std::time::Duration,
) {
    let started = tokio::time::Instant::now();
    let (checks, outcome) = aws::test_account(&shared.aws, &test.access_key_id, &secret).await;
    tokio::time::sleep_until(started + duration).await;

    let (state_name, status, reason) = match outcome {
        Ok(()) => ("succeeded", "connected", None),
        Err(reason) => ("failed", "error", Some(reason)),
    };
    let mut state = shared.lock();
    // What the portal read with the key is what it shows as activity.
    let at = now_millis();
    let seen: Vec<ActivityView> = checks
        .iter()
        .filter(|c| c.ok)
        .map(|c| ActivityView {
            id: std::iter::repeat_with(fastrand::alphanumeric)
                .take(20)
                .collect(),
            timestamp: at,
            instance_id: test.instance_id.clone(),
            description: c.call.clone(),
        })
        .collect();
    state.activities.extend(seen);
    if let Some(t) = state.tests.iter_mut().find(|t| t.test_id == test.test_id) {
        t.state = state_name.to_string();
        t.reason = reason.clone();
        t.checks = checks;
    }
    let tested = |i: &&mut Instance| {
        i.id == test.instance_id
            && i.enabled
            && i.access_key_id == test.access_key_id
            && i.secret_access_key == secret
    };
    if let Some(instance) = state.instances.iter_mut().find(tested) {
        instance.status = status.to_string();
        instance.status_detail = reason.unwrap_or_default();
    }
}
