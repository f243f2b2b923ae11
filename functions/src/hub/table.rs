//! The hub's table (DynamoDB, key `account`): one row per member account,
//! what the registrar last did and saw for it. It is the organization's
//! record (what `cloudapps org status` and the organization's health read);
//! the portal and the members' secrets stay the truth it is rebuilt from.
//! Two items that are not accounts share it: the registrar's lease (one run
//! at a time; it stays, free, with the portal's answers of the last run's
//! final minute and that run's id, for the next run) and the accounts
//! members nudged.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValue};

use crate::error::Error;
use crate::hub_tags::Status;
use crate::portal::pace::Answers;

/// The lease item's key.
const LEASE: &str = "#lease";
/// The nudges item's key.
const NUDGES: &str = "#nudges";

/// What the hub knows of one member account.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Row {
    pub account: String,
    pub region: String,
    /// The instance's name in the portal.
    pub name: String,
    pub connections: Vec<String>,
    pub status: Status,
    /// The portal instance's id, once created (or proven this account's).
    pub instance: Option<String>,
    /// The key id last handed to the portal.
    pub key_id: Option<String>,
    /// When the member's key was made (seconds since the epoch).
    pub key_created: Option<i64>,
    /// When a key was last sent (create or update), answer or not.
    pub handed_at: Option<i64>,
    /// When the portal's test was last started.
    pub test_started: Option<i64>,
    /// When a listing last showed a test's result.
    pub last_test: Option<i64>,
    /// What went wrong, or what is awaited.
    pub detail: String,
    /// Since when the member's role refuses the hub.
    pub unreachable_since: Option<i64>,
    /// When the row last changed.
    pub updated: i64,
}

impl Row {
    /// A new account, not yet handed over.
    pub fn new(account: &str, region: &str) -> Self {
        Self {
            account: account.to_string(),
            region: region.to_string(),
            name: String::new(),
            connections: Vec::new(),
            status: Status::Queued,
            instance: None,
            key_id: None,
            key_created: None,
            handed_at: None,
            test_started: None,
            last_test: None,
            detail: String::new(),
            unreachable_since: None,
            updated: 0,
        }
    }

    fn to_item(&self) -> HashMap<String, AttributeValue> {
        let mut item = HashMap::new();
        let s = |v: &str| AttributeValue::S(v.to_string());
        let n = |v: i64| AttributeValue::N(v.to_string());
        item.insert("account".into(), s(&self.account));
        item.insert("region".into(), s(&self.region));
        item.insert("name".into(), s(&self.name));
        item.insert("connections".into(), s(&self.connections.join(" ")));
        item.insert("status".into(), s(self.status.as_str()));
        item.insert("detail".into(), s(&self.detail));
        item.insert("updated".into(), n(self.updated));
        for (k, v) in [("instance", &self.instance), ("key_id", &self.key_id)] {
            if let Some(v) = v {
                item.insert(k.into(), s(v));
            }
        }
        for (k, v) in [
            ("key_created", self.key_created),
            ("handed_at", self.handed_at),
            ("test_started", self.test_started),
            ("last_test", self.last_test),
            ("unreachable_since", self.unreachable_since),
        ] {
            if let Some(v) = v {
                item.insert(k.into(), n(v));
            }
        }
        item
    }

    /// The row an item holds; `None` for the table's other items or an
    /// item this version cannot read.
    pub fn from_item(item: &HashMap<String, AttributeValue>) -> Option<Self> {
        let s = |k: &str| item.get(k).and_then(|v| v.as_s().ok()).cloned();
        let n = |k: &str| {
            item.get(k)
                .and_then(|v| v.as_n().ok())
                .and_then(|v| v.parse().ok())
        };
        let account = s("account")?;
        if !is_account_id(&account) {
            return None;
        }
        Some(Self {
            region: s("region").unwrap_or_default(),
            name: s("name").unwrap_or_default(),
            connections: s("connections")
                .unwrap_or_default()
                .split_whitespace()
                .map(str::to_string)
                .collect(),
            status: Status::parse(&s("status")?)?,
            instance: s("instance"),
            key_id: s("key_id"),
            key_created: n("key_created"),
            handed_at: n("handed_at"),
            test_started: n("test_started"),
            last_test: n("last_test"),
            detail: s("detail").unwrap_or_default(),
            unreachable_since: n("unreachable_since"),
            updated: n("updated").unwrap_or_default(),
            account,
        })
    }
}

/// True for a 12-digit AWS account id.
pub fn is_account_id(text: &str) -> bool {
    text.len() == 12 && text.bytes().all(|b| b.is_ascii_digit())
}

/// The table, through the hub's own credentials.
#[derive(Clone, Debug)]
pub struct Table {
    client: Client,
    name: String,
}

impl Table {
    pub fn new(client: Client, name: &str) -> Self {
        Self {
            client,
            name: name.to_string(),
        }
    }

    /// Every account's row, by account id.
    pub async fn rows(&self) -> Result<BTreeMap<String, Row>, Error> {
        let mut rows = BTreeMap::new();
        let mut start = None;
        loop {
            let page = self
                .client
                .scan()
                .table_name(&self.name)
                .consistent_read(true)
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(Error::aws("dynamodb:Scan"))?;
            for item in page.items() {
                if let Some(row) = Row::from_item(item) {
                    rows.insert(row.account.clone(), row);
                }
            }
            match page.last_evaluated_key {
                Some(key) if !key.is_empty() => start = Some(key),
                _ => return Ok(rows),
            }
        }
    }

    pub async fn put(&self, row: &Row) -> Result<(), Error> {
        self.client
            .put_item()
            .table_name(&self.name)
            .set_item(Some(row.to_item()))
            .send()
            .await
            .map_err(Error::aws("dynamodb:PutItem"))?;
        Ok(())
    }

    /// Takes the lease for `holder` until `until` (seconds since the epoch)
    /// unless another holder's lease runs past `now`. `Some`: taken, with
    /// what the run before handed on ([`Self::release_lease`]).
    pub async fn take_lease(
        &self,
        holder: &str,
        now: i64,
        until: i64,
    ) -> Result<Option<Handed>, Error> {
        let taken = self
            .client
            .put_item()
            .table_name(&self.name)
            .item("account", AttributeValue::S(LEASE.into()))
            .item("holder", AttributeValue::S(holder.into()))
            .item("until", AttributeValue::N(until.to_string()))
            .condition_expression("attribute_not_exists(account) OR #u < :now OR holder = :me")
            .expression_attribute_names("#u", "until")
            .expression_attribute_values(":now", AttributeValue::N(now.to_string()))
            .expression_attribute_values(":me", AttributeValue::S(holder.into()))
            .return_values(ReturnValue::AllOld)
            .send()
            .await;
        match taken {
            Ok(out) => Ok(Some(handed_by(out.attributes()))),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_conditional_check_failed_exception()) =>
            {
                Ok(None)
            }
            Err(e) => Err(Error::aws("dynamodb:PutItem (lease)")(e)),
        }
    }

    /// Gives the lease back, if `holder` still holds it, with the portal's
    /// answers still inside the budget's window, for the next run: it may
    /// run in another execution environment, and keeps the budget too.
    pub async fn release_lease(&self, holder: &str, answers: &Answers) -> Result<(), Error> {
        let at = answers
            .at
            .iter()
            .map(|a| AttributeValue::N(a.to_string()))
            .collect();
        let released = self
            .client
            .update_item()
            .table_name(&self.name)
            .key("account", AttributeValue::S(LEASE.into()))
            .update_expression("SET #u = :free, answered = :at, answered_by = :by")
            .condition_expression("holder = :me")
            .expression_attribute_names("#u", "until")
            .expression_attribute_values(":free", AttributeValue::N("0".into()))
            .expression_attribute_values(":at", AttributeValue::L(at))
            .expression_attribute_values(":by", AttributeValue::S(answers.by.clone()))
            .expression_attribute_values(":me", AttributeValue::S(holder.into()))
            .send()
            .await;
        match released {
            Ok(_) => Ok(()),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_conditional_check_failed_exception()) =>
            {
                Ok(())
            }
            Err(e) => Err(Error::aws("dynamodb:UpdateItem (lease)")(e)),
        }
    }

    /// Records that `accounts` asked to be looked at (one write).
    pub async fn nudge(&self, accounts: &BTreeSet<String>) -> Result<(), Error> {
        self.client
            .update_item()
            .table_name(&self.name)
            .key("account", AttributeValue::S(NUDGES.into()))
            .update_expression("ADD accounts :a")
            .expression_attribute_values(
                ":a",
                AttributeValue::Ss(accounts.iter().cloned().collect()),
            )
            .send()
            .await
            .map_err(Error::aws("dynamodb:UpdateItem (nudge)"))?;
        Ok(())
    }

    /// The accounts that nudged since the last call (taken off the list).
    pub async fn take_nudges(&self) -> Result<BTreeSet<String>, Error> {
        let item = self
            .client
            .get_item()
            .table_name(&self.name)
            .key("account", AttributeValue::S(NUDGES.into()))
            .consistent_read(true)
            .send()
            .await
            .map_err(Error::aws("dynamodb:GetItem (nudges)"))?;
        let accounts: Vec<String> = item
            .item()
            .and_then(|i| i.get("accounts"))
            .and_then(|v| v.as_ss().ok())
            .cloned()
            .unwrap_or_default();
        if accounts.is_empty() {
            return Ok(BTreeSet::new());
        }
        self.client
            .update_item()
            .table_name(&self.name)
            .key("account", AttributeValue::S(NUDGES.into()))
            .update_expression("DELETE accounts :a")
            .expression_attribute_values(":a", AttributeValue::Ss(accounts.clone()))
            .send()
            .await
            .map_err(Error::aws("dynamodb:UpdateItem (nudges)"))?;
        Ok(accounts.into_iter().collect())
    }
}

/// What the lease, when taken, tells of the run before.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Handed {
    /// The portal's answers of its final minute.
    pub answers: Answers,
    /// Its holder, when it gave the lease back (`None`: there was none, or
    /// its lease ran out).
    pub by: Option<String>,
}

/// What a lease item hands on (nothing when there was none).
fn handed_by(item: Option<&HashMap<String, AttributeValue>>) -> Handed {
    let Some(item) = item else {
        return Handed::default();
    };
    let given_back = matches!(item.get("until"), Some(AttributeValue::N(n)) if n == "0");
    let by = match item.get("holder") {
        Some(AttributeValue::S(holder)) if given_back => Some(holder.clone()),
        _ => None,
    };
    Handed {
        answers: answers_of(item),
        by,
    }
}

/// The answers a lease item hands on (none when it holds none).
fn answers_of(item: &HashMap<String, AttributeValue>) -> Answers {
    let by = match item.get("answered_by") {
        Some(AttributeValue::S(by)) => by.clone(),
        _ => String::new(),
    };
    let at = match item.get("answered") {
        Some(AttributeValue::L(at)) => at
            .iter()
            .filter_map(|a| a.as_n().ok()?.parse().ok())
            .collect(),
        _ => Vec::new(),
    };
    Answers { by, at }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_row_round_trips_and_other_items_are_not_rows() {
        let mut row = Row::new("123456789012", "eu-west-1");
        row.name = "aws-123456789012".into();
        row.connections = vec!["SecurityAuditing".into(), "SecurityConfiguration".into()];
        row.status = Status::Connected;
        row.instance = Some("i-1".into());
        row.key_id = Some("AKIAEXAMPLE".into());
        row.last_test = Some(1_800_000_000);
        assert_eq!(Row::from_item(&row.to_item()), Some(row.clone()));
        let mut lease = row.to_item();
        lease.insert("account".into(), AttributeValue::S(LEASE.into()));
        assert_eq!(Row::from_item(&lease), None);
        assert!(!is_account_id("12345678901a") && is_account_id("000000000001"));
    }
}
