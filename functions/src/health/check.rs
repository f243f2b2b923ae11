//! The checks of a run, in one place: [`Check`] holds each one's name
//! (its key in the report and its CloudWatch metric) and their order. A
//! check's [`Verdict`] says what holds, or what broke and what to do.

use serde::Serialize;

/// One link of the chain, as reported and as a metric (1 = failing).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Check {
    /// The IAM user and its policy, attached as configured.
    UserPolicy,
    /// The key in AWSCURRENT exists, is active, authenticates, is the only one.
    AccessKey,
    /// Rotation is on, on schedule, and not stuck half-way.
    KeyRotation,
    /// A trail covers the account.
    CloudTrail,
    /// The portal shows the instance connected with the current key.
    PortalStatus,
    /// The portal has recorded AWS activity lately (data flows).
    PortalActivity,
}

impl Check {
    /// Every check, in the order they are reported.
    pub const ALL: [Check; 6] = [
        Check::UserPolicy,
        Check::AccessKey,
        Check::KeyRotation,
        Check::CloudTrail,
        Check::PortalStatus,
        Check::PortalActivity,
    ];

    /// Its key in the report's `checks`.
    pub fn name(self) -> &'static str {
        match self {
            Check::UserPolicy => "UserPolicy",
            Check::AccessKey => "AccessKey",
            Check::KeyRotation => "KeyRotation",
            Check::CloudTrail => "CloudTrail",
            Check::PortalStatus => "PortalStatus",
            Check::PortalActivity => "PortalActivity",
        }
    }

    /// Its CloudWatch metric (namespace `DefenderForCloudApps/Connector`).
    pub fn metric(self) -> &'static str {
        self.name()
    }

    pub fn from_name(name: &str) -> Option<Check> {
        Check::ALL.into_iter().find(|c| c.name() == name)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum State {
    Pass,
    Fail,
    /// Not checked in this configuration (the portal outside `api` mode).
    Skip,
}

/// One check's result.
#[derive(Clone, Debug, Serialize)]
pub struct CheckResult {
    /// The check it is the result of.
    #[serde(skip)]
    pub check: Check,
    pub state: State,
    /// What holds, or what broke and what to do.
    pub detail: String,
    /// What repair mode fixed before the check passed or failed.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub repaired: Vec<String>,
    pub ms: u64,
}

/// A check's verdict before it is timed.
pub struct Verdict {
    pub state: State,
    pub detail: String,
    pub repaired: Vec<String>,
}

impl Verdict {
    pub fn pass(detail: impl Into<String>) -> Self {
        Self {
            state: State::Pass,
            detail: detail.into(),
            repaired: Vec::new(),
        }
    }

    pub fn fail(detail: impl Into<String>) -> Self {
        Self {
            state: State::Fail,
            detail: detail.into(),
            repaired: Vec::new(),
        }
    }

    pub fn skip(detail: impl Into<String>) -> Self {
        Self {
            state: State::Skip,
            detail: detail.into(),
            repaired: Vec::new(),
        }
    }

    /// Fails with `problems` and what to do, or passes with `ok`.
    pub fn from_problems(problems: Vec<String>, todo: &str, ok: String) -> Self {
        if problems.is_empty() {
            Self::pass(ok)
        } else {
            Self::fail(format!("{}. What to do: {todo}", problems.join("; ")))
        }
    }

    pub fn repaired(mut self, repaired: Vec<String>) -> Self {
        self.repaired = repaired;
        self
    }
}
