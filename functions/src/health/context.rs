//! What every check may read, read once per run: the connection (from the
//! tags the connector wrote on its secret) and the key in AWSCURRENT, or why
//! they could not be read.

use std::time::Instant;

use super::check::Verdict;
use crate::access_key;
use crate::config::HealthSettings;
use crate::deps::Deps;
use crate::key::StoredKey;
use crate::key_store::{self, AWSCURRENT};
use crate::lifecycle::Connection;
use crate::names::StackRef;

/// What every check may read: the connection (from the secret's tags) and
/// the key in AWSCURRENT, each read once, or why they could not be.
pub struct Context<'a> {
    pub deps: &'a Deps,
    pub settings: &'a HealthSettings,
    pub stack: Option<StackRef>,
    pub connection: Result<Connection, String>,
    pub current: Result<StoredKey, String>,
    pub deadline: Instant,
}

impl Context<'_> {
    pub fn connection(&self) -> Result<&Connection, Verdict> {
        self.connection
            .as_ref()
            .map_err(|e| Verdict::fail(format!("the connector's secret could not be read: {e}")))
    }

    pub fn current(&self) -> Result<&StoredKey, Verdict> {
        self.current.as_ref().map_err(|e| Verdict::fail(e.clone()))
    }

    pub async fn keys(&self, c: &Connection) -> Result<Vec<access_key::KeyInfo>, Verdict> {
        access_key::list(&self.deps.aws.iam, &c.user.name)
            .await
            .map_err(|e| Verdict::fail(format!("the user's keys could not be listed: {e}")))
    }

    /// A deadline for one portal call of a check: its timeout, within the run's.
    pub fn call_deadline(&self) -> Instant {
        self.deadline
            .min(crate::time::from_now(self.settings.check_timeout))
    }
}

pub async fn read_current(deps: &Deps, c: &Connection) -> Result<StoredKey, String> {
    match key_store::read(&deps.aws.secrets, &c.secret.arn, AWSCURRENT).await {
        Ok(Some(key)) if key.belongs_to(&c.user.name) => Ok(key),
        Ok(Some(key)) => Err(format!(
            "the key in AWSCURRENT belongs to the user {:?}, not to {}: run an Update of the stack to issue one for its user",
            key.user_name, c.user
        )),
        Ok(None) => Err(format!(
            "the secret {} holds no key in AWSCURRENT: run an Update of the stack to issue one",
            c.secret.arn
        )),
        Err(e) => Err(format!("the key in AWSCURRENT could not be read: {e}")),
    }
}
