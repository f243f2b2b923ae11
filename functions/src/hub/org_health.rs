//! The organization's health: one paged listing of the portal's AWS
//! instances (one request per 100 instances, whatever the number of
//! accounts) beside the hub's table. Each run writes one line in embedded
//! metric format: how many accounts are connected, pending, in error and
//! missing (the table says connected or handed over, and the portal has no
//! such enabled instance), and which accounts are in error or missing.

use std::collections::BTreeMap;
use std::time::Instant;

use serde::Serialize;
use serde_json::json;

use crate::error::Error;
use crate::hub_tags::Status;
use crate::portal::{PortalClient, RemoteInstance};

use super::table::{Row, Table};

/// The metrics' namespace.
pub const NAMESPACE: &str = "CloudApps/Organization";

/// Where one account stands, the table and the portal side by side.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Standing {
    Connected,
    Pending,
    Error,
    Missing,
}

/// One run's counts.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct OrgHealth {
    pub connected: usize,
    pub pending: usize,
    pub error: usize,
    pub missing: usize,
    /// The accounts in error, and why.
    pub in_error: BTreeMap<String, String>,
    /// The accounts missing from the portal.
    pub accounts_missing: Vec<String>,
    /// Portal requests this run sent.
    pub requests: u64,
}

/// Where `row` stands, given the portal's instance it names (if listed).
pub fn standing(row: &Row, listed: Option<&RemoteInstance>) -> Standing {
    match (row.status, listed) {
        (Status::Error, _) => Standing::Error,
        (_, Some(i)) if !i.enabled => Standing::Missing,
        (_, Some(i)) if i.status == "error" => Standing::Error,
        (_, Some(i)) if i.status == "connected" && i.access_key_id == row.key_id => {
            Standing::Connected
        }
        (_, Some(_)) => Standing::Pending,
        (Status::Connected, None) => Standing::Missing,
        (_, None) if row.instance.is_some() && row.status != Status::Pending => Standing::Missing,
        (_, None) => Standing::Pending,
    }
}

impl OrgHealth {
    /// Compares the table's accounts (but those gone) with `instances`.
    pub fn compare(rows: &BTreeMap<String, Row>, instances: &[RemoteInstance]) -> Self {
        let by_id: BTreeMap<&str, &RemoteInstance> =
            instances.iter().map(|i| (i.id.as_str(), i)).collect();
        let mut health = Self::default();
        for row in rows.values().filter(|r| r.status != Status::Disabled) {
            let listed = row
                .instance
                .as_deref()
                .and_then(|id| by_id.get(id).copied());
            match standing(row, listed) {
                Standing::Connected => health.connected += 1,
                Standing::Pending => health.pending += 1,
                Standing::Error => {
                    health.error += 1;
                    let why = match listed {
                        Some(i) if i.status == "error" && row.status != Status::Error => {
                            format!("the portal's test failed: {}", i.status_detail)
                        }
                        _ => row.detail.clone(),
                    };
                    health.in_error.insert(row.account.clone(), why);
                }
                Standing::Missing => {
                    health.missing += 1;
                    health.accounts_missing.push(row.account.clone());
                }
            }
        }
        health
    }

    /// True when no account is in error or missing.
    pub fn healthy(&self) -> bool {
        self.error == 0 && self.missing == 0
    }

    /// The run's line, in embedded metric format (`hub`: the dimension).
    pub fn log_line(&self, hub: &str, at_millis: u64) -> String {
        let metric = |name: &str| json!({"Name": name, "Unit": "Count"});
        json!({
            "_aws": {
                "Timestamp": at_millis,
                "CloudWatchMetrics": [{
                    "Namespace": NAMESPACE,
                    "Dimensions": [["Hub"]],
                    "Metrics": [metric("Connected"), metric("Pending"), metric("Error"), metric("Missing")],
                }],
            },
            "Hub": hub,
            "Connected": self.connected,
            "Pending": self.pending,
            "Error": self.error,
            "Missing": self.missing,
            "level": if self.healthy() { "INFO" } else { "WARN" },
            "message": format!(
                "organization: {} connected, {} pending, {} in error, {} missing",
                self.connected, self.pending, self.error, self.missing
            ),
            "accountsInError": self.in_error,
            "accountsMissing": self.accounts_missing,
            "portalRequests": self.requests,
        })
        .to_string()
    }
}

/// One run: the table, one paged listing, the counts.
pub async fn check(
    portal: &PortalClient,
    table: &Table,
    deadline: Instant,
) -> Result<OrgHealth, Error> {
    let rows = table.rows().await?;
    let before = portal.requests_sent();
    let instances = portal.list(None, deadline).await?;
    let mut health = OrgHealth::compare(&rows, &instances);
    health.requests = portal.requests_sent() - before;
    Ok(health)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn instance(id: &str, key: &str, status: &str, enabled: bool) -> RemoteInstance {
        RemoteInstance {
            id: id.into(),
            name: format!("aws-{id}"),
            app_id: Some(11599),
            connections: vec![],
            access_key_id: Some(key.into()),
            enabled,
            status: status.into(),
            status_detail: "denied".into(),
        }
    }

    fn row(account: &str, instance: Option<&str>, status: Status) -> Row {
        let mut r = Row::new(account, "us-east-1");
        r.instance = instance.map(str::to_string);
        r.key_id = Some("AKIAKEY".into());
        r.status = status;
        r.detail = "what the hub saw".into();
        r
    }

    #[test]
    fn the_table_and_one_listing_give_each_accounts_standing() {
        let rows: BTreeMap<String, Row> = [
            row("000000000001", Some("1"), Status::Connected),
            row("000000000002", Some("2"), Status::Pending),
            row("000000000003", Some("3"), Status::Pending),
            row("000000000004", Some("4"), Status::Connected),
            row("000000000005", None, Status::Queued),
            row("000000000006", None, Status::Error),
            row("000000000007", Some("7"), Status::Connected),
            row("000000000008", Some("8"), Status::Disabled),
        ]
        .into_iter()
        .map(|r| (r.account.clone(), r))
        .collect();
        let listed = vec![
            instance("1", "AKIAKEY", "connected", true),
            instance("2", "AKIAKEY", "pending", true),
            instance("3", "AKIAKEY", "error", true),
            instance("7", "AKIAKEY", "disabled", false),
        ];
        let h = OrgHealth::compare(&rows, &listed);
        assert_eq!((h.connected, h.pending, h.error, h.missing), (1, 2, 2, 2));
        assert_eq!(h.accounts_missing, vec!["000000000004", "000000000007"]);
        assert!(h.in_error["000000000003"].contains("test failed"));
        let line: serde_json::Value = serde_json::from_str(&h.log_line("hub", 1)).unwrap();
        assert_eq!(line["Error"], 2);
        assert_eq!(line["_aws"]["CloudWatchMetrics"][0]["Namespace"], NAMESPACE);
        assert_eq!(line["level"], "WARN");
    }
}
