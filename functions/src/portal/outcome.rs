//! What the portal side is told and what it answers, whatever the mode:
//! the instance as the connector describes it, the status it reports, and
//! the outcomes of a rotation's steps and of a Delete.

use super::connect::Ownership;

/// What the portal needs to know about the instance (never the key itself).
#[derive(Clone, Copy, Debug)]
pub struct Instance<'a> {
    pub name: &'a str,
    /// The name before an Update that renames.
    pub previous_name: Option<&'a str>,
    pub connections: &'a [&'a str],
    pub secret_arn: &'a str,
    pub user_arn: &'a str,
    pub account: &'a str,
    pub region: &'a str,
    /// What proves an instance by that name is this stack's.
    pub owner: Ownership<'a>,
}

/// What the portal side says after a hand-over (values of `Data`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PortalStatus {
    /// `connected`, `pending`, `handed-off`, `not-connected`.
    pub status: String,
    /// The instance's id in the portal (empty when not known).
    pub instance: String,
    /// The portal test: `succeeded`, `running`, `not-run`.
    pub test: String,
}

impl PortalStatus {
    pub(super) fn new(status: &str, instance: &str, test: &str) -> Self {
        Self {
            status: status.into(),
            instance: instance.into(),
            test: test.into(),
        }
    }
}

/// Whether what the portal should hold (the key, the name, the connections)
/// changed since it was last handed over.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Since {
    Changed,
    Unchanged,
}

/// The outcome of a rotation's testSecret on the portal side.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Tested {
    /// The portal's test of the pending key passed.
    Portal(PortalStatus),
    /// No portal test in this mode: the pre-flight's summary.
    Preflight(String),
    /// The hub tests it: its verdict comes on the secret's tags (the
    /// pre-flight's summary).
    AwaitHub(String),
}

/// Whether AWSCURRENT moved in this finishSecret, or in an earlier try of it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Promotion {
    Now,
    Earlier,
}

/// What becomes of the previous key once AWSCURRENT moved.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Previous {
    /// The portal holds the new key and its test passed: deactivate it.
    Retire,
    /// A person (or nobody, `off`) has the new key to put in place: keep
    /// the previous key active until the new one is seen in use; what was
    /// done, if anything.
    AwaitUse(Option<String>),
    /// Retire it once the hub's verdict on the secret confirms the new key.
    AwaitHub,
}

/// Why [`Portal::read`] did not read the portal.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NotRead {
    /// Nothing to read in this mode: why.
    Skip(&'static str),
    /// The hub reads it: its verdict is on the secret's tags.
    FromHub,
}

/// What Delete tells the portal side about.
#[derive(Clone, Copy, Debug)]
pub struct Release<'a> {
    pub name: &'a str,
    pub user_arn: &'a str,
    pub account: &'a str,
    /// The instance this stack took over (`AdoptExistingInstance`): it is
    /// never disabled.
    pub adopted: Option<&'a str>,
}
