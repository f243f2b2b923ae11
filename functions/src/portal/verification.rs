//! The portal's "Test API": asynchronous, minutes long. A test is started,
//! then read with pauses (each read is one of the tenant's 30 requests a
//! minute) until it ends or the invocation's deadline is near.

use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::json;
use tracing::{info, warn};

use super::client::PortalClient;
use super::routes::Route;
use super::transport::{MIN_ATTEMPT, unexpected};
use super::wire;
use crate::backoff::Backoff;
use crate::error::Error;
use crate::text::scrub;
use crate::time::reaches;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TestState {
    Running,
    Succeeded,
    Failed(String),
}

/// The end of `run_test`: the test's id and how far it got before the deadline.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TestOutcome {
    pub test_id: String,
    pub state: TestState,
}

impl PortalClient {
    /// Starts the portal's "Test API"; returns the test's id.
    pub async fn start_test(&self, id: &str, deadline: Instant) -> Result<String, Error> {
        let (_, text) = self
            .portal(
                Route::Test,
                Method::POST,
                (id, ""),
                Some(json!({})),
                deadline,
            )
            .await?;
        wire::parse::<wire::Test>(&text)
            .and_then(|t| t.test_id)
            .filter(|t| !t.is_empty())
            .ok_or_else(|| unexpected("test", "no testId"))
    }

    pub async fn test_result(
        &self,
        id: &str,
        test_id: &str,
        deadline: Instant,
    ) -> Result<TestState, Error> {
        let (_, text) = self
            .portal(
                Route::TestResult,
                Method::GET,
                (id, test_id),
                None,
                deadline,
            )
            .await?;
        let test: wire::Test = wire::parse(&text).unwrap_or_default();
        match test.state.as_deref() {
            Some("running") => Ok(TestState::Running),
            Some("succeeded") => Ok(TestState::Succeeded),
            Some("failed") => Ok(TestState::Failed(scrub(
                test.reason.as_deref().unwrap_or("no reason given"),
            ))),
            other => Err(unexpected(
                "test_result",
                &format!("unknown state {:?}", other.map(scrub)),
            )),
        }
    }

    /// Starts a test and polls it until it ends or the deadline is near:
    /// then the state is still `Running`, never a wait past the deadline.
    pub async fn run_test(&self, id: &str, deadline: Instant) -> Result<TestOutcome, Error> {
        let test_id = self.start_test(id, deadline).await?;
        let t = self.timings();
        let mut polls = Backoff::new(t.test_first_poll, t.test_max_poll);
        // Keep enough time for the last read and the answer to CloudFormation.
        let reserve = t.request_timeout.min(Duration::from_secs(2)) + MIN_ATTEMPT;
        loop {
            let pause = polls.next_pause();
            if reaches(pause.saturating_add(reserve), deadline) {
                warn!(
                    instance = id,
                    test_id, "the portal test is still running at the deadline"
                );
                return Ok(TestOutcome {
                    test_id,
                    state: TestState::Running,
                });
            }
            tokio::time::sleep(pause).await;
            let state = match self.test_result(id, &test_id, deadline).await {
                Ok(state) => state,
                // The portal is unwell or throttled until the deadline: the
                // test may well be running; say so, as the contract does.
                Err(Error::PortalUnreachable { message, .. }) => {
                    warn!(instance = id, test_id, why = %message, "the portal's test could not be read before the deadline");
                    return Ok(TestOutcome {
                        test_id,
                        state: TestState::Running,
                    });
                }
                Err(e) => return Err(e),
            };
            if state != TestState::Running {
                info!(instance = id, test_id, state = ?state, "portal test ended");
                return Ok(TestOutcome { test_id, state });
            }
        }
    }
}
