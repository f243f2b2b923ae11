//! The properties of `Custom::CloudAppsConnector`, checked before anything is
//! changed: a bad value is a clear error that names the property and what it
//! accepts. The defaults are the README's.

use serde_json::{Map, Value};

use crate::names::StackRef;
use crate::trail::TrailMode;

pub const DEFAULT_USER_NAME: &str = "defender-cloud-apps";
pub const DEFAULT_USER_PATH: &str = "/defender-cloud-apps/";

/// What the portal is allowed to do with the key (the guide's two check boxes).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Connection {
    SecurityAuditing,
    SecurityConfiguration,
}

impl Connection {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::SecurityAuditing => "SecurityAuditing",
            Self::SecurityConfiguration => "SecurityConfiguration",
        }
    }
}

/// The checked properties of one connector resource.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Spec {
    pub connector_name: String,
    pub user_name: String,
    pub user_path: String,
    /// Sorted, without duplicates, never empty.
    pub connections: Vec<Connection>,
    pub cloudtrail: TrailMode,
    /// The secret's ARN or name, as given.
    pub secret_id: String,
    pub trail_bucket: Option<String>,
}

const KNOWN: &[&str] = &[
    "ServiceToken",
    "ServiceTimeout",
    "ConnectorName",
    "UserName",
    "UserPath",
    "Connections",
    "CloudTrail",
    "SecretArn",
    "TrailBucketName",
];

impl Spec {
    /// Checks `ResourceProperties`. All problems are reported at once.
    pub fn parse(props: &Value, stack: &StackRef) -> Result<Spec, String> {
        let empty = Map::new();
        let props = match props {
            Value::Object(map) => map,
            Value::Null => &empty,
            _ => return Err("ResourceProperties is not an object".into()),
        };
        let mut problems = Vec::new();
        for key in props.keys() {
            if !KNOWN.contains(&key.as_str()) {
                problems.push(format!(
                    "unknown property {key:?} (known: {})",
                    KNOWN[2..].join(", ")
                ));
            }
        }
        let mut text = |name: &str| -> Option<String> {
            match props.get(name) {
                None | Some(Value::Null) => None,
                Some(Value::String(s)) if s.trim().is_empty() => None,
                Some(Value::String(s)) => Some(s.trim().to_string()),
                Some(other) => {
                    problems.push(format!("{name} must be a string, not {}", kind(other)));
                    None
                }
            }
        };
        let connector_name = text("ConnectorName");
        let user_name = text("UserName");
        let user_path = text("UserPath");
        let cloudtrail = text("CloudTrail");
        let secret_id = text("SecretArn");
        let trail_bucket = text("TrailBucketName");

        let connector_name = connector_name.unwrap_or_else(|| format!("aws-{}", stack.account));
        if connector_name.chars().count() > 128 || connector_name.chars().any(char::is_control) {
            problems.push("ConnectorName must be 1 to 128 printable characters".into());
        }
        let user_name = user_name.unwrap_or_else(|| DEFAULT_USER_NAME.into());
        if !valid_user_name(&user_name) {
            problems.push(format!(
                "UserName {user_name:?} is not a valid IAM user name (1 to 64 of letters, digits and +=,.@_-)"
            ));
        }
        let user_path = user_path.unwrap_or_else(|| DEFAULT_USER_PATH.into());
        if !valid_path(&user_path) {
            problems.push(format!(
                "UserPath {user_path:?} is not a valid IAM path (starts and ends with /, up to 512 printable ASCII characters)"
            ));
        }
        let connections = match parse_connections(props.get("Connections")) {
            Ok(c) => c,
            Err(e) => {
                problems.push(e);
                vec![Connection::SecurityAuditing]
            }
        };
        let cloudtrail = match cloudtrail.as_deref() {
            None | Some("Ensure") => TrailMode::Ensure,
            Some("Verify") => TrailMode::Verify,
            Some("Ignore") => TrailMode::Ignore,
            Some(other) => {
                problems.push(format!(
                    "CloudTrail {other:?} is not one of Ensure, Verify, Ignore"
                ));
                TrailMode::Ensure
            }
        };
        let secret_id = match secret_id {
            None => {
                problems
                    .push("SecretArn is required: the secret that receives the access key".into());
                String::new()
            }
            Some(id) => {
                if let Err(e) = check_secret_id(&id, stack) {
                    problems.push(e);
                }
                id
            }
        };
        if let Some(bucket) = &trail_bucket {
            if !valid_bucket_name(bucket) {
                problems.push(format!(
                    "TrailBucketName {bucket:?} is not a valid S3 bucket name (3 to 63 of a-z, 0-9, '.', '-'; starts and ends with a letter or digit)"
                ));
            }
        }
        if !problems.is_empty() {
            return Err(problems.join("; "));
        }
        Ok(Spec {
            connector_name,
            user_name,
            user_path,
            connections,
            cloudtrail,
            secret_id,
            trail_bucket,
        })
    }

    pub fn has(&self, connection: Connection) -> bool {
        self.connections.contains(&connection)
    }

    pub fn connections_text(&self) -> String {
        self.connections
            .iter()
            .map(|c| c.as_str())
            .collect::<Vec<_>>()
            .join(",")
    }
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

/// A list of strings, or one comma separated string (what a
/// `CommaDelimitedList` parameter or a plain string gives).
fn parse_connections(value: Option<&Value>) -> Result<Vec<Connection>, String> {
    let items: Vec<String> = match value {
        None | Some(Value::Null) => return Ok(vec![Connection::SecurityAuditing]),
        Some(Value::String(s)) => s.split(',').map(|s| s.trim().to_string()).collect(),
        Some(Value::Array(items)) => {
            let mut out = Vec::new();
            for item in items {
                match item {
                    Value::String(s) => out.push(s.trim().to_string()),
                    other => {
                        return Err(format!(
                            "Connections must hold strings, not {}",
                            kind(other)
                        ));
                    }
                }
            }
            out
        }
        Some(other) => return Err(format!("Connections must be a list, not {}", kind(other))),
    };
    let mut connections = Vec::new();
    for item in items.iter().filter(|s| !s.is_empty()) {
        let c = match item.as_str() {
            "SecurityAuditing" => Connection::SecurityAuditing,
            "SecurityConfiguration" => Connection::SecurityConfiguration,
            other => {
                return Err(format!(
                    "Connections: {other:?} is not one of SecurityAuditing, SecurityConfiguration"
                ));
            }
        };
        connections.push(c);
    }
    if connections.is_empty() {
        return Err(
            "Connections is empty: give SecurityAuditing, SecurityConfiguration or both".into(),
        );
    }
    connections.sort();
    connections.dedup();
    Ok(connections)
}

fn valid_user_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"+=,.@_-".contains(&b))
}

fn valid_path(path: &str) -> bool {
    (1..=512).contains(&path.len())
        && path.starts_with('/')
        && path.ends_with('/')
        && path.bytes().all(|b| (0x21..=0x7e).contains(&b))
        && !path.contains("//")
}

fn valid_bucket_name(name: &str) -> bool {
    let b = name.as_bytes();
    (3..=63).contains(&b.len())
        && b.iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'.' || *c == b'-')
        && b[0].is_ascii_alphanumeric()
        && b[b.len() - 1].is_ascii_alphanumeric()
        && !name.contains("..")
}

/// A secret name, or the ARN of a secret in this stack's account and partition.
fn check_secret_id(id: &str, stack: &StackRef) -> Result<(), String> {
    if let Some(rest) = id.strip_prefix("arn:") {
        let parts: Vec<&str> = rest.splitn(6, ':').collect();
        match parts[..] {
            [
                partition,
                "secretsmanager",
                _region,
                account,
                "secret",
                name,
            ] if !name.is_empty() => {
                if partition != stack.partition || account != stack.account {
                    return Err(format!(
                        "SecretArn must be a secret of this account ({}), not {account}",
                        stack.account
                    ));
                }
                Ok(())
            }
            _ => Err(format!(
                "SecretArn {id:?} is not a Secrets Manager secret ARN"
            )),
        }
    } else if id.len() <= 512
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"/_+=.@-".contains(&b))
    {
        Ok(())
    } else {
        Err(format!(
            "SecretArn {id:?} is neither a secret ARN nor a secret name"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn stack() -> StackRef {
        StackRef::parse(
            "arn:aws:cloudformation:us-east-1:123456789012:stack/s/guid",
            "Connector",
        )
        .unwrap()
    }

    #[test]
    fn defaults() {
        let spec = Spec::parse(
            &json!({"ServiceToken": "arn:x", "SecretArn": "s"}),
            &stack(),
        )
        .unwrap();
        assert_eq!(spec.connector_name, "aws-123456789012");
        assert_eq!(spec.user_name, "defender-cloud-apps");
        assert_eq!(spec.user_path, "/defender-cloud-apps/");
        assert_eq!(spec.connections, vec![Connection::SecurityAuditing]);
        assert_eq!(spec.cloudtrail, TrailMode::Ensure);
        assert_eq!(spec.trail_bucket, None);
    }

    #[test]
    fn empty_strings_mean_default_and_lists_take_both_forms() {
        let a = Spec::parse(
            &json!({"SecretArn": "s", "UserName": "", "TrailBucketName": "",
                    "Connections": "SecurityConfiguration, SecurityAuditing"}),
            &stack(),
        )
        .unwrap();
        let b = Spec::parse(
            &json!({"SecretArn": "s",
                    "Connections": ["SecurityAuditing", "SecurityConfiguration", "SecurityAuditing"]}),
            &stack(),
        )
        .unwrap();
        assert_eq!(a, b);
        assert_eq!(
            a.connections_text(),
            "SecurityAuditing,SecurityConfiguration"
        );
    }

    #[test]
    fn bad_values_are_all_named() {
        let err = Spec::parse(
            &json!({"UserName": "bad name", "UserPath": "nopath", "Connections": ["Everything"],
                    "CloudTrail": "Maybe", "TrailBucketName": "Bad_Bucket", "Colour": "red"}),
            &stack(),
        )
        .unwrap_err();
        for needle in [
            "UserName",
            "UserPath",
            "Everything",
            "Maybe",
            "Bad_Bucket",
            "Colour",
            "SecretArn is required",
        ] {
            assert!(err.contains(needle), "{needle} missing from: {err}");
        }
        assert!(Spec::parse(&json!({"SecretArn": "s", "Connections": []}), &stack()).is_err());
        assert!(Spec::parse(&json!({"SecretArn": "s", "UserName": 7}), &stack()).is_err());
        assert!(Spec::parse(&json!([1]), &stack()).is_err());
    }

    #[test]
    fn secret_must_be_in_this_account() {
        let ok = "arn:aws:secretsmanager:us-east-1:123456789012:secret:cloudapps-AbCdEf";
        assert!(Spec::parse(&json!({"SecretArn": ok}), &stack()).is_ok());
        let other = "arn:aws:secretsmanager:us-east-1:999999999999:secret:cloudapps-AbCdEf";
        let err = Spec::parse(&json!({"SecretArn": other}), &stack()).unwrap_err();
        assert!(err.contains("this account"), "{err}");
        assert!(Spec::parse(&json!({"SecretArn": "arn:aws:s3:::bucket"}), &stack()).is_err());
    }
}
