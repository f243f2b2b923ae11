//! A rotation in a member account of the hub benchmark's organization:
//! what `testSecret` waits for in hub mode, the hub's confirmation of the
//! pending key on the member's secret (the portal holds it and its test
//! passed), timed from the member's nudge. Once while the rollout is under
//! way (the hub busy with every other account) and once after it (idle).

use std::sync::Arc;
use std::time::{Duration, Instant};

use cloudapps::hub_tags::{self, HubState};
use serde_json::{Value, json};

use crate::hub_lambda::Lambda;
use crate::hub_org::{self, Organization};
use crate::support::{self, World, rotation};

/// The wait of one rotation, in the units of the portal's minute.
pub struct Rotated {
    pub account: String,
    /// Nudge → the hub's confirmation; `None`: none by the cap.
    pub waited: Option<Duration>,
    /// `testSecret` after the confirmation (it must pass at once).
    pub test_secret: Result<String, String>,
}

impl Rotated {
    pub fn json(&self, window: Duration) -> Value {
        json!({
            "account": self.account,
            "waited_real_min": self.waited.map(|w| w.as_secs_f64() / window.as_secs_f64()),
            "test_secret": match &self.test_secret { Ok(m) => m.clone(), Err(e) => format!("failed: {e}") },
        })
    }
}

/// Rotates `account`'s key as far as `setSecret` (its pending key on the
/// secret), nudges the hub, then reads the secret's tags every `poll` until
/// the hub confirms the pending key, at most `cap`.
pub async fn rotate(
    org: &Organization,
    lambda: &Arc<Lambda>,
    account: &str,
    margin: Duration,
    poll: Duration,
    cap: Duration,
) -> Rotated {
    let w = hub_org::made_member(org, account, margin).await;
    let function = support::register_rotation_function(&w).await;
    let token = rotation::token();
    support::start_rotation(&w, &function, &token).await;
    for step in ["createSecret", "setSecret"] {
        if let Err(e) = support::rotation_step(&w, step, &token).await {
            return Rotated {
                account: account.to_string(),
                waited: None,
                test_secret: Err(format!("{step}: {e}")),
            };
        }
    }
    let pending = tags(&w)
        .await
        .into_iter()
        .find(|(k, _)| k == hub_tags::PENDING_KEY_ID)
        .map(|(_, v)| v)
        .expect("createSecret tags the pending key");
    let began = Instant::now();
    lambda.nudge(account);
    let mut waited = None;
    while began.elapsed() < cap {
        let t = tags(&w).await;
        let state = HubState::from_tags(t.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        if state.confirms(&pending) {
            waited = Some(began.elapsed());
            break;
        }
        tokio::time::sleep(poll).await;
    }
    let test_secret = match waited {
        Some(_) => support::rotation_step(&w, "testSecret", &token).await,
        None => Err("the hub did not confirm the pending key by the cap".to_string()),
    };
    Rotated {
        account: account.to_string(),
        waited,
        test_secret,
    }
}

async fn tags(w: &World) -> Vec<(String, String)> {
    cloudapps::key_store::describe(&w.secrets, &w.secret_arn)
        .await
        .map(|i| i.tags)
        .unwrap_or_default()
}
