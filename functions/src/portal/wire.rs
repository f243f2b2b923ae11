//! The portal's answers, as typed values (docs/portal-contract.md). Each
//! field is read leniently: a text may come as a string, a number or a
//! boolean, and a field that is missing is `None`; what the client needs and
//! does not find is an "unexpected answer" that names it.
//!
//! Field names: the contract's, plus what the real portal is seen to send
//! (`state` beside `status` for an instance; see the contract's
//! "Observed" section). Where both are present, `state` is used.

use serde::{Deserialize, Deserializer};
use serde_json::Value;

/// A scalar read as text (`"x"`, `7`, `true`); anything else is `None`.
fn text<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    Ok(match Option::<Value>::deserialize(d)? {
        Some(Value::String(s)) => Some(s),
        Some(Value::Number(n)) => Some(n.to_string()),
        Some(Value::Bool(b)) => Some(b.to_string()),
        _ => None,
    })
}

/// A whole number, from a number or a text holding one; anything else is `None`.
fn number<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    Ok(match Option::<Value>::deserialize(d)? {
        Some(Value::Number(n)) => n
            .as_u64()
            .or_else(|| n.as_f64().filter(|f| *f >= 0.0).map(|f| f as u64)),
        Some(Value::String(s)) => s.trim().parse().ok(),
        _ => None,
    })
}

/// A flag, from a boolean or the text "true"/"false".
fn flag<'de, D: Deserializer<'de>>(d: D) -> Result<Option<bool>, D::Error> {
    Ok(match Option::<Value>::deserialize(d)? {
        Some(Value::Bool(b)) => Some(b),
        Some(Value::String(s)) => s.trim().parse().ok(),
        _ => None,
    })
}

/// The texts of a list (non-texts are passed over).
fn texts<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    Ok(match Option::<Value>::deserialize(d)? {
        Some(Value::Array(items)) => items
            .into_iter()
            .filter_map(|v| match v {
                Value::String(s) => Some(s),
                _ => None,
            })
            .collect(),
        _ => Vec::new(),
    })
}

/// An AWS instance as the portal answers it.
#[derive(Clone, Debug, Default, Deserialize)]
pub struct Instance {
    #[serde(rename = "_id", alias = "id", default, deserialize_with = "text")]
    pub id: Option<String>,
    #[serde(default, deserialize_with = "text")]
    pub name: Option<String>,
    #[serde(rename = "appId", default, deserialize_with = "number")]
    pub app_id: Option<u64>,
    #[serde(default, deserialize_with = "texts")]
    pub connections: Vec<String>,
    #[serde(rename = "accessKeyId", default, deserialize_with = "text")]
    pub access_key_id: Option<String>,
    #[serde(default, deserialize_with = "flag")]
    pub enabled: Option<bool>,
    /// The contract's name for the connector's state.
    #[serde(default, deserialize_with = "text")]
    pub status: Option<String>,
    /// The name the real portal is seen to use.
    #[serde(default, deserialize_with = "text")]
    pub state: Option<String>,
    #[serde(
        rename = "statusDetail",
        alias = "stateDetail",
        default,
        deserialize_with = "text"
    )]
    pub status_detail: Option<String>,
}

impl Instance {
    /// The connector's state, by whichever name the portal sent it.
    pub fn state(&self) -> Option<&str> {
        self.state
            .as_deref()
            .filter(|s| !s.is_empty())
            .or(self.status.as_deref())
    }
}

/// A page of a list route: `{data, total, hasNext}`.
#[derive(Clone, Debug, Deserialize)]
#[serde(bound = "T: Deserialize<'de>")]
pub struct Page<T> {
    pub data: Option<Vec<T>>,
    #[serde(default, deserialize_with = "number")]
    pub total: Option<u64>,
    #[serde(rename = "hasNext", default, deserialize_with = "flag")]
    pub has_next: Option<bool>,
}

/// The answer to starting a test, and to reading it.
#[derive(Clone, Debug, Default, Deserialize)]
pub struct Test {
    #[serde(rename = "testId", alias = "_id", default, deserialize_with = "text")]
    pub test_id: Option<String>,
    #[serde(default, deserialize_with = "text")]
    pub state: Option<String>,
    #[serde(default, deserialize_with = "text")]
    pub reason: Option<String>,
}

/// An activity of the activities API (only what the health check reads).
#[derive(Clone, Debug, Default, Deserialize)]
pub struct Activity {
    /// Milliseconds since the Unix epoch.
    #[serde(default, deserialize_with = "number")]
    pub timestamp: Option<u64>,
    #[serde(default, deserialize_with = "text")]
    pub description: Option<String>,
}

/// Entra ID's token endpoint answer (success or error).
#[derive(Clone, Default, Deserialize)]
pub struct Token {
    #[serde(default, deserialize_with = "text")]
    pub access_token: Option<String>,
    #[serde(default, deserialize_with = "number")]
    pub expires_in: Option<u64>,
    #[serde(default, deserialize_with = "text")]
    pub error: Option<String>,
    #[serde(default)]
    pub error_codes: Vec<Value>,
}

impl Token {
    /// The first AADSTS code, when the answer names one.
    pub fn aadsts(&self) -> Option<u64> {
        self.error_codes.first().and_then(Value::as_u64)
    }
}

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Token")
            .field("expires_in", &self.expires_in)
            .field("error", &self.error)
            .finish_non_exhaustive()
    }
}

/// An error answer: `{"error": "..."}`.
#[derive(Clone, Debug, Default, Deserialize)]
pub struct ErrorBody {
    #[serde(default, deserialize_with = "text")]
    pub error: Option<String>,
}

/// Parses `text` as `T`; `None` when it is not that shape.
pub fn parse<T: for<'de> Deserialize<'de>>(text: &str) -> Option<T> {
    serde_json::from_str(text).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_instance_is_read_by_the_contracts_names_or_the_observed_ones() {
        let ours: Instance = parse(
            r#"{"_id": "i1", "appId": 11599, "name": "n", "connections": ["SecurityAuditing"],
                "accessKeyId": "AKIA1", "enabled": true, "status": "connected", "statusDetail": ""}"#,
        )
        .unwrap();
        assert_eq!(ours.state(), Some("connected"));
        assert_eq!(ours.app_id, Some(11599));
        let observed: Instance =
            parse(r#"{"_id": 42, "appId": "11599", "name": "n", "state": "connected"}"#).unwrap();
        assert_eq!(observed.state(), Some("connected"));
        assert_eq!(observed.id.as_deref(), Some("42"));
        assert_eq!(observed.app_id, Some(11599));
        assert_eq!(observed.enabled, None);
        let both: Instance =
            parse(r#"{"_id": "x", "status": "pending", "state": "error"}"#).unwrap();
        assert_eq!(both.state(), Some("error"));
    }

    #[test]
    fn pages_tests_and_tokens_are_typed() {
        let page: Page<Instance> =
            parse(r#"{"data": [{"_id": "a"}], "total": 3, "hasNext": true}"#).unwrap();
        assert_eq!(page.data.unwrap().len(), 1);
        assert_eq!((page.total, page.has_next), (Some(3), Some(true)));
        let bare: Page<Instance> = parse(r#"{"data": []}"#).unwrap();
        assert_eq!(bare.has_next, None);
        assert!(
            parse::<Page<Instance>>(r#"{"items": []}"#)
                .unwrap()
                .data
                .is_none()
        );
        let test: Test = parse(r#"{"testId": "t", "state": "failed", "reason": "no"}"#).unwrap();
        assert_eq!(test.reason.as_deref(), Some("no"));
        let token: Token = parse(
            r#"{"error": "invalid_client", "error_codes": [7000215], "access_token": "secret"}"#,
        )
        .unwrap();
        assert_eq!(token.aadsts(), Some(7_000_215));
        assert!(!format!("{token:?}").contains("secret"));
    }
}
