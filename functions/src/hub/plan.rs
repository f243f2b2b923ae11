//! What the registrar does for one account, decided from what it knows and
//! nothing else: the account's row, what its secret shows, and the portal's
//! last listing. Pure: no call is made here, so every case is a unit test.
//!
//! The rules that keep it safe:
//! - an instance is this account's only on proof (the row's instance id, or
//!   it holds one of the account's keys); a name is never proof;
//! - a key sent after the last listing is never sent again before a listing
//!   shows what became of it (a create whose answer was lost is found by
//!   the next listing, not created twice);
//! - a test's result is read from the listing, never polled one by one (a
//!   test is only ever started on a `pending` instance, whose state the
//!   listing shows changing);
//! - an instance is disabled only while it holds the account's own key.

use std::collections::{BTreeMap, HashMap};

use crate::hub_tags::Status;

pub use super::listing::Listing;
use super::members::{Member, Seen};
use super::table::Row;

/// What the registrar knows besides, to decide.
#[derive(Clone, Copy, Debug)]
pub struct Context<'a> {
    pub now: i64,
    /// The account asked to be looked at (a nudge): a failed test is run again.
    pub nudged: bool,
    /// A test started longer ago than this (ms) whose result no listing showed is started again.
    pub test_timeout: i64,
    /// A role refusing the hub this long (ms) means the account is gone.
    pub gone_after: i64,
    /// Which account's row holds each instance name.
    pub names: &'a HashMap<String, String>,
}

/// One step for one account.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Step {
    /// Nothing to do.
    Nothing,
    /// Nothing to do now: what is awaited (the status stays or becomes `status`).
    Wait { status: Status, detail: String },
    /// Create the instance with the account's key, then test it.
    Create,
    /// Hand the instance the account's key (and name, connections), then test it.
    Update { instance: String },
    /// Start the portal's test of the instance.
    Test { instance: String },
    /// The listing shows the test's result: record it (no portal request).
    Record {
        instance: String,
        status: Status,
        detail: String,
    },
    /// The account is gone and its instance still holds its key: disable it.
    Disable { instance: String },
    /// The account is gone and nothing in the portal holds its key.
    Forget(String),
    /// The hub will not act for this account (see the detail).
    Refuse(String),
}

/// The step for one account.
pub fn decide(row: Option<&Row>, seen: &Seen, listing: &Listing, cx: &Context<'_>) -> Step {
    match seen {
        Seen::Member(m) => member(row, m, listing, cx),
        Seen::Gone(why) => gone(row, why, listing),
        Seen::Refused(why) => match row {
            None => Step::Nothing,
            Some(r) if r.status == Status::Disabled => Step::Nothing,
            Some(r)
                if r.unreachable_since
                    .is_some_and(|t| cx.now - t >= cx.gone_after) =>
            {
                gone(row, why, listing)
            }
            Some(r) => Step::Wait {
                status: r.status,
                detail: why.clone(),
            },
        },
        Seen::Unknown(why) => match row {
            None => Step::Nothing,
            Some(r) => Step::Wait {
                status: r.status,
                detail: format!("could not look at the account: {why}"),
            },
        },
    }
}

fn gone(row: Option<&Row>, why: &str, listing: &Listing) -> Step {
    let Some(row) = row.filter(|r| r.status != Status::Disabled) else {
        return Step::Nothing;
    };
    let holding = row
        .instance
        .as_deref()
        .and_then(|id| listing.get(id))
        .filter(|i| i.enabled && i.access_key_id.is_some() && i.access_key_id == row.key_id);
    match holding {
        Some(i) => Step::Disable {
            instance: i.id.clone(),
        },
        None => Step::Forget(format!("{why}: nothing in the portal holds its key")),
    }
}

fn member(row: Option<&Row>, m: &Member, listing: &Listing, cx: &Context<'_>) -> Step {
    if let Some(why) = &m.invalid {
        return Step::Refuse(why.clone());
    }
    let Some(key) = m.wanted_key() else {
        return Step::Wait {
            status: Status::Queued,
            detail: "the member's connector has not stored its key yet".into(),
        };
    };
    if let Some(other) = cx.names.get(&m.name).filter(|a| **a != m.account) {
        return Step::Refuse(format!(
            "account {other}'s instance is named {:?}: give this account's connector another name",
            m.name
        ));
    }
    let handed_at = row.and_then(|r| r.handed_at);
    // What was sent after the listing began may not show in it yet.
    let listed_at = listing.taken_for(&m.account);
    let sent_since_listing = handed_at.is_some_and(|h| h >= listed_at);
    let recorded = row.and_then(|r| r.instance.as_deref());
    let instance = match recorded.and_then(|id| listing.get(id)) {
        Some(i) => Some(i),
        None => {
            let named = listing.named(&m.name);
            match named.as_slice() {
                [] => None,
                [one] => {
                    let proven = one.access_key_id.as_deref().is_some_and(|k| {
                        m.holds(k) || row.and_then(|r| r.key_id.as_deref()) == Some(k)
                    });
                    if !proven {
                        return Step::Refuse(format!(
                            "the portal's instance {} is named {:?} and holds key {}, not one of this account's: remove or rename it in the portal",
                            one.id,
                            m.name,
                            one.access_key_id.as_deref().unwrap_or("none")
                        ));
                    }
                    Some(*one)
                }
                many => {
                    return Step::Refuse(format!(
                        "{} AWS instances are named {:?}: remove or rename the extra ones in the portal",
                        many.len(),
                        m.name
                    ));
                }
            }
        }
    };
    let Some(i) = instance else {
        if sent_since_listing {
            return pending("sent after the last listing; the next one shows it");
        }
        return Step::Create;
    };
    let mut wanted: Vec<&str> = m.connections.iter().map(String::as_str).collect();
    let mut held: Vec<&str> = i.connections.iter().map(String::as_str).collect();
    wanted.sort_unstable();
    held.sort_unstable();
    let holds_all =
        i.enabled && i.access_key_id.as_deref() == Some(key) && i.name == m.name && wanted == held;
    if !holds_all {
        if sent_since_listing {
            return pending("sent after the last listing; the next one shows it");
        }
        return Step::Update {
            instance: i.id.clone(),
        };
    }
    let test_started = row.and_then(|r| r.test_started);
    if test_started.is_some_and(|t| t >= listed_at) || sent_since_listing {
        return pending("the portal's test is running");
    }
    let tested_since_handover = match (test_started, handed_at) {
        (Some(t), Some(h)) => t >= h,
        (Some(_), None) => true,
        (None, _) => false,
    };
    let test = Step::Test {
        instance: i.id.clone(),
    };
    match i.status.as_str() {
        "connected" => Step::Record {
            instance: i.id.clone(),
            status: Status::Connected,
            detail: String::new(),
        },
        // A test of an instance in error leaves it in error until it ends: a
        // listing could not tell the new result from the old. Handing the
        // key over again sets it `pending` first (the contract's `update`).
        "error" if cx.nudged || !tested_since_handover => Step::Update {
            instance: i.id.clone(),
        },
        "error" => Step::Record {
            instance: i.id.clone(),
            status: Status::Error,
            detail: format!("the portal's test failed: {}", i.status_detail),
        },
        _ if !tested_since_handover => test,
        _ if test_started.is_some_and(|t| cx.now - t >= cx.test_timeout) => test,
        _ => pending("the portal's test is running"),
    }
}

/// Which account's row holds each instance name.
pub fn names_of(rows: &BTreeMap<String, Row>) -> HashMap<String, String> {
    rows.values()
        .filter(|r| !r.name.is_empty() && r.status != crate::hub_tags::Status::Disabled)
        .map(|r| (r.name.clone(), r.account.clone()))
        .collect()
}

fn pending(detail: &str) -> Step {
    Step::Wait {
        status: Status::Pending,
        detail: detail.into(),
    }
}

#[cfg(test)]
#[path = "plan_tests.rs"]
mod tests;
