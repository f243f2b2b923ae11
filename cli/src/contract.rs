//! The contract's answers, field by field (docs/portal-contract.md and
//! `cloudapps::portal::wire`): what the client needs of each, which other
//! names it already reads, and which names a portal might use instead.
//! An object the portal answered is compared with them: each field is
//! present, named differently (and read by the client, or not), or missing.

use serde::Serialize;
use serde_json::{Map, Value};

/// What the client needs of a field.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Need {
    /// Without it the client cannot work (or would act on the wrong thing).
    Required,
    /// The client works, less well, without it.
    Used,
    /// Read when present.
    Optional,
}

impl Need {
    pub fn as_str(self) -> &'static str {
        match self {
            Need::Required => "required",
            Need::Used => "used",
            Need::Optional => "optional",
        }
    }
}

pub struct Field {
    pub name: &'static str,
    pub need: Need,
    /// Other names `wire.rs` reads for it.
    pub read_as: &'static [&'static str],
    /// Names a portal might use for it (compared without case, `_` or `-`).
    pub like: &'static [&'static str],
}

const fn f(
    name: &'static str,
    need: Need,
    read_as: &'static [&'static str],
    like: &'static [&'static str],
) -> Field {
    Field {
        name,
        need,
        read_as,
        like,
    }
}

/// A list answer (`find`, `activities`).
pub const PAGE: &[Field] = &[
    f(
        "data",
        Need::Required,
        &[],
        &[
            "items",
            "value",
            "results",
            "records",
            "instances",
            "connectors",
        ],
    ),
    f("total", Need::Optional, &[], &["count", "totalCount"]),
    f("hasNext", Need::Optional, &[], &["more", "hasMore", "next"]),
];

/// An AWS instance (`find`'s items, `status`, `create`, `update`).
pub const INSTANCE: &[Field] = &[
    f(
        "_id",
        Need::Required,
        &["id"],
        &["instanceId", "connectorId", "uid"],
    ),
    f(
        "appId",
        Need::Required,
        &[],
        &[
            "app",
            "application",
            "applicationId",
            "service",
            "serviceId",
        ],
    ),
    f(
        "name",
        Need::Required,
        &[],
        &["displayName", "instanceName", "title"],
    ),
    f(
        "status",
        Need::Required,
        &["state"],
        &["connectionState", "connectionStatus", "health"],
    ),
    f(
        "accessKeyId",
        Need::Required,
        &[],
        &["accessKey", "awsAccessKeyId", "keyId"],
    ),
    f(
        "connections",
        Need::Used,
        &[],
        &["connectionTypes", "types", "capabilities"],
    ),
    f(
        "enabled",
        Need::Optional,
        &[],
        &["isEnabled", "active", "isActive", "disabled"],
    ),
    f(
        "statusDetail",
        Need::Optional,
        &["stateDetail"],
        &["statusMessage", "stateMessage", "error", "errorMessage"],
    ),
];

/// An activity of the activities API.
pub const ACTIVITY: &[Field] = &[
    f(
        "timestamp",
        Need::Required,
        &[],
        &["time", "date", "created", "eventTime"],
    ),
    f(
        "description",
        Need::Optional,
        &[],
        &["action", "actionType", "eventType"],
    ),
];

/// A test of the portal (`test`, `test_result`).
pub const TEST: &[Field] = &[
    f(
        "testId",
        Need::Required,
        &["_id"],
        &["id", "jobId", "taskId"],
    ),
    f(
        "state",
        Need::Required,
        &[],
        &["status", "result", "outcome"],
    ),
    f(
        "reason",
        Need::Optional,
        &[],
        &["error", "message", "detail", "statusDetail"],
    ),
];

/// The body of a `create` (and `update`) request.
pub const CREATE_BODY: &[Field] = &[
    f(
        "appId",
        Need::Required,
        &[],
        &["app", "application", "applicationId", "service"],
    ),
    f(
        "name",
        Need::Required,
        &[],
        &["displayName", "instanceName"],
    ),
    f(
        "connections",
        Need::Required,
        &[],
        &["connectionTypes", "types"],
    ),
    f(
        "credentials",
        Need::Required,
        &[],
        &["auth", "secrets", "keys", "awsCredentials"],
    ),
];

/// `credentials` in a create or update body.
pub const CREDENTIALS: &[Field] = &[
    f(
        "accessKeyId",
        Need::Required,
        &[],
        &["accessKey", "awsAccessKeyId", "keyId"],
    ),
    f(
        "secretAccessKey",
        Need::Required,
        &[],
        &["secretKey", "awsSecretAccessKey", "secret"],
    ),
];

/// The body of a `find` request.
pub const FIND_BODY: &[Field] = &[
    f("filters", Need::Used, &[], &["filter", "query", "where"]),
    f("skip", Need::Used, &[], &["offset", "start", "page"]),
    f(
        "limit",
        Need::Used,
        &[],
        &["pageSize", "size", "top", "count"],
    ),
];

/// The method the client sends each route with (not configurable).
pub fn method(route: cloudapps::portal::Route) -> &'static str {
    use cloudapps::portal::Route;
    match route {
        Route::TestResult | Route::Status => "GET",
        _ => "POST",
    }
}

/// The states the contract knows (an instance's; a test's).
pub const INSTANCE_STATES: &[&str] = &["pending", "connected", "error", "disabled"];
pub const TEST_STATES: &[&str] = &["running", "succeeded", "failed"];

/// How a contract field was found in an answer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "found", rename_all = "snake_case")]
pub enum Found {
    /// By the contract's name.
    Present {
        kind: String,
    },
    /// By another name the client reads.
    Alias {
        name: String,
        kind: String,
    },
    /// By another name the client does not read.
    Renamed {
        name: String,
        kind: String,
    },
    Missing,
}

/// One field of one answer, compared.
#[derive(Clone, Debug, Serialize)]
pub struct Finding {
    /// What was compared (`find`, `instance`, `activity`...).
    pub object: String,
    pub field: &'static str,
    pub need: Need,
    #[serde(flatten)]
    pub found: Found,
}

impl Finding {
    /// The client reads it (or does not need it).
    pub fn readable(&self) -> bool {
        matches!(self.found, Found::Present { .. } | Found::Alias { .. })
    }

    /// A problem: a required field the client cannot read.
    pub fn breaks(&self) -> bool {
        self.need == Need::Required && !self.readable()
    }

    /// For people: `present (number)`, `named differently: state`...
    pub fn shown(&self) -> String {
        match &self.found {
            Found::Present { kind } => format!("present ({kind})"),
            Found::Alias { name, kind } => format!("named differently: {name} ({kind})"),
            Found::Renamed { name, kind } => format!("named differently: {name} ({kind})"),
            Found::Missing => "missing".to_string(),
        }
    }

    /// What the client makes of it.
    pub fn verdict(&self) -> String {
        match (&self.found, self.need) {
            (Found::Present { .. }, _) => "ok".into(),
            (Found::Alias { name, .. }, _) => format!("ok (the client reads {name})"),
            (Found::Renamed { name, .. }, _) => format!(
                "NOT READ: add alias = \"{name}\" on `{}` in functions/src/portal/wire.rs",
                self.field
            ),
            (Found::Missing, Need::Required) => "NOT THERE: the client needs it".into(),
            (Found::Missing, Need::Used) => {
                "missing: the client works without it, less well".into()
            }
            (Found::Missing, Need::Optional) => "ok (optional)".into(),
        }
    }
}

/// The JSON type of a value, for people.
pub fn kind(v: &Value) -> String {
    match v {
        Value::Null => "null".into(),
        Value::Bool(_) => "boolean".into(),
        Value::Number(_) => "number".into(),
        Value::String(_) => "text".into(),
        Value::Array(items) => format!("list of {}", items.len()),
        Value::Object(_) => "object".into(),
    }
}

fn squash(name: &str) -> String {
    name.chars()
        .filter(|c| !matches!(c, '_' | '-'))
        .flat_map(char::to_lowercase)
        .collect()
}

/// Compares `object` with `fields`; returns the findings and the names the
/// answer holds that the contract does not know.
pub fn compare(
    what: &str,
    object: &Map<String, Value>,
    fields: &[Field],
) -> (Vec<Finding>, Vec<String>) {
    let mut used: Vec<&str> = Vec::new();
    let mut findings = Vec::new();
    for field in fields {
        let found = if let Some(v) = object.get(field.name) {
            used.push(field.name);
            Found::Present { kind: kind(v) }
        } else if let Some((name, v)) = field.read_as.iter().find_map(|a| object.get_key_value(*a))
        {
            used.push(name.as_str());
            Found::Alias {
                name: name.clone(),
                kind: kind(v),
            }
        } else {
            let wanted: Vec<String> = std::iter::once(field.name)
                .chain(field.like.iter().copied())
                .map(squash)
                .collect();
            let candidate = object.iter().find(|(k, _)| {
                !used.contains(&k.as_str())
                    && !fields.iter().any(|o| o.name == k.as_str())
                    && wanted.contains(&squash(k))
            });
            match candidate {
                Some((name, v)) => {
                    used.push(name.as_str());
                    Found::Renamed {
                        name: name.clone(),
                        kind: kind(v),
                    }
                }
                None => Found::Missing,
            }
        };
        findings.push(Finding {
            object: what.to_string(),
            field: field.name,
            need: field.need,
            found,
        });
    }
    let extra = object
        .keys()
        .filter(|k| !used.contains(&k.as_str()))
        .cloned()
        .collect();
    (findings, extra)
}

/// The value of a field by the contract's name or the one it was found by.
pub fn value_of<'a>(
    object: &'a Map<String, Value>,
    findings: &[Finding],
    field: &str,
) -> Option<&'a Value> {
    let f = findings.iter().find(|f| f.field == field)?;
    match &f.found {
        Found::Present { .. } => object.get(field),
        Found::Alias { name, .. } | Found::Renamed { name, .. } => object.get(name),
        Found::Missing => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn obj(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn fields_are_present_aliased_renamed_or_missing() {
        let observed = obj(
            json!({"_id": 7, "appId": 11599, "name": "n", "state": "connected",
            "access_key_id": "AKIA1", "stateDetail": "", "extra": 1}),
        );
        let (findings, extra) = compare("instance", &observed, INSTANCE);
        let by = |name: &str| findings.iter().find(|f| f.field == name).unwrap();
        assert_eq!(
            by("_id").found,
            Found::Present {
                kind: "number".into()
            }
        );
        assert!(matches!(&by("status").found, Found::Alias { name, .. } if name == "state"));
        assert!(
            matches!(&by("accessKeyId").found, Found::Renamed { name, .. } if name == "access_key_id")
        );
        assert!(by("accessKeyId").breaks());
        assert_eq!(by("connections").found, Found::Missing);
        assert!(!by("connections").breaks());
        assert_eq!(extra, ["extra"]);
        assert_eq!(
            value_of(&observed, &findings, "status"),
            Some(&json!("connected"))
        );
    }
}
