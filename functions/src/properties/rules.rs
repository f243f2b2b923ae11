//! The rules each property is checked against, before anything changes:
//! IAM's name and path characters and lengths, tag keys and values (the
//! user's ARN, the connector's name and the stack's `Tags` go into tag
//! values of at most 256 characters), ARNs of the right service and kind.

use serde_json::{Map, Value};

use super::Connection;
use crate::names::StackRef;

/// The limit of a tag value (IAM, Secrets Manager, CloudTrail, S3).
const TAG_VALUE_MAX: usize = 256;
/// The limit of a tag key.
const TAG_KEY_MAX: usize = 128;
/// `Tags` at most: every resource takes 50, and the stack's own tags
/// (ownership, what the rotation reads, CloudFormation's) take up to 12.
const TAGS_MAX: usize = 30;

/// The properties being read, and every problem found so far.
pub(super) struct Props<'a> {
    map: &'a Map<String, Value>,
    stack: &'a StackRef,
    problems: Vec<String>,
}

impl<'a> Props<'a> {
    pub(super) fn new(map: &'a Map<String, Value>, stack: &'a StackRef) -> Self {
        Self {
            map,
            stack,
            problems: Vec::new(),
        }
    }

    pub(super) fn problem(&mut self, problem: impl Into<String>) {
        self.problems.push(problem.into());
    }

    /// Every problem at once, or nothing.
    pub(super) fn finish(self) -> Result<(), String> {
        if self.problems.is_empty() {
            Ok(())
        } else {
            Err(self.problems.join("; "))
        }
    }

    /// A string property, trimmed; `None` when absent or empty.
    pub(super) fn text(&mut self, name: &str) -> Option<String> {
        match self.map.get(name) {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) if s.trim().is_empty() => None,
            Some(Value::String(s)) => Some(s.trim().to_string()),
            Some(other) => {
                let problem = format!("{name} must be a string, not {}", kind(other));
                self.problem(problem);
                None
            }
        }
    }

    /// `true` or `false` (a boolean, or its text in any case); absent: false.
    pub(super) fn flag(&mut self, name: &str) -> bool {
        match self.map.get(name) {
            Some(Value::Bool(b)) => *b,
            _ => match self.text(name).map(|t| t.to_ascii_lowercase()).as_deref() {
                None | Some("false") => false,
                Some("true") => true,
                Some(other) => {
                    self.problem(format!("{name} {other:?} is not true or false"));
                    false
                }
            },
        }
    }

    pub(super) fn connector_name(&mut self, name: &str) {
        if name.chars().count() > 128 || !valid_tag_text(name) {
            self.problem(format!(
                "ConnectorName {name:?} must be 1 to 128 of letters, digits, spaces and _.:/=+-@ (it is kept in a tag of the secret)"
            ));
        }
    }

    pub(super) fn user_name(&mut self, name: &str) {
        if !valid_user_name(name) {
            self.problem(format!(
                "UserName {name:?} is not a valid IAM user name (1 to 64 of letters, digits and +=,.@_-)"
            ));
        }
    }

    /// The path, and the user's ARN it makes with `name`, which is kept in
    /// a tag of the secret (256 characters at most).
    pub(super) fn user_path(&mut self, path: &str, name: &str) {
        if !valid_path(path) {
            self.problem(format!(
                "UserPath {path:?} is not a valid IAM path (starts and ends with /, up to 512 printable ASCII characters, no //)"
            ));
            return;
        }
        let arn = self.stack.user(path, name).arn;
        if arn.len() > TAG_VALUE_MAX {
            self.problem(format!(
                "UserPath is too long: the user's ARN ({} characters) must fit in a tag value of {TAG_VALUE_MAX}; shorten UserPath or UserName",
                arn.len()
            ));
        }
    }

    pub(super) fn secret_id(&mut self, id: &str) {
        if let Err(e) = check_secret_id(id, self.stack) {
            self.problem(e);
        }
    }

    /// A bucket name property.
    pub(super) fn bucket(&mut self, name: &str) -> Option<String> {
        let bucket = self.text(name)?;
        if !valid_bucket_name(&bucket) {
            self.problem(format!(
                "{name} {bucket:?} is not a valid S3 bucket name (3 to 63 of a-z, 0-9, '.', '-'; starts and ends with a letter or digit)"
            ));
        }
        Some(bucket)
    }

    /// An ARN property of `service` whose resource starts with one of `kinds`.
    fn arn(&mut self, name: &str, service: &str, kinds: &[&str], what: &str) -> Option<String> {
        let arn = self.text(name)?;
        let parts: Vec<&str> = arn.splitn(6, ':').collect();
        let ok = match parts[..] {
            ["arn", partition, s, _region, account, resource] => {
                partition == self.stack.partition
                    && s == service
                    && (account.len() == 12 && account.bytes().all(|b| b.is_ascii_digit())
                        || account == "aws")
                    && kinds.iter().any(|k| resource.starts_with(k))
                    && arn.len() <= 2048
            }
            _ => false,
        };
        if !ok {
            self.problem(format!("{name} {arn:?} is not {what}"));
        }
        Some(arn)
    }

    pub(super) fn policy_arn(&mut self, name: &str) -> Option<String> {
        self.arn(name, "iam", &["policy/"], "an IAM managed policy ARN")
    }

    pub(super) fn kms_key(&mut self, name: &str) -> Option<String> {
        self.arn(name, "kms", &["key/", "alias/"], "a KMS key (or alias) ARN")
    }

    /// `TrailCloudWatchLogsGroupArn` and `TrailCloudWatchLogsRoleArn`, both
    /// or neither; the group as CloudTrail takes it (ending in `:*`).
    pub(super) fn cloudwatch_logs(&mut self) -> Option<(String, String)> {
        let group = self.arn(
            "TrailCloudWatchLogsGroupArn",
            "logs",
            &["log-group:"],
            "a CloudWatch Logs log group ARN",
        );
        let role = self.arn(
            "TrailCloudWatchLogsRoleArn",
            "iam",
            &["role/"],
            "an IAM role ARN",
        );
        match (group, role) {
            (Some(group), Some(role)) => {
                let group = if group.ends_with(":*") {
                    group
                } else {
                    format!("{group}:*")
                };
                Some((group, role))
            }
            (None, None) => None,
            _ => {
                self.problem(
                    "TrailCloudWatchLogsGroupArn and TrailCloudWatchLogsRoleArn go together: give both or neither",
                );
                None
            }
        }
    }
}

pub(super) fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

/// The items of a list property, or of one comma separated string (what a
/// `CommaDelimitedList` parameter or a plain string gives); blanks dropped.
fn items(name: &str, value: Option<&Value>) -> Result<Option<Vec<String>>, String> {
    let items: Vec<String> = match value {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::String(s)) => s.split(',').map(|s| s.trim().to_string()).collect(),
        Some(Value::Array(items)) => {
            let mut out = Vec::new();
            for item in items {
                match item {
                    Value::String(s) => out.push(s.trim().to_string()),
                    other => return Err(format!("{name} must hold strings, not {}", kind(other))),
                }
            }
            out
        }
        Some(other) => return Err(format!("{name} must be a list, not {}", kind(other))),
    };
    Ok(Some(items.into_iter().filter(|s| !s.is_empty()).collect()))
}

/// `Connections`: SecurityAuditing (the default) and/or SecurityConfiguration.
pub(super) fn parse_connections(value: Option<&Value>) -> Result<Vec<Connection>, String> {
    let Some(items) = items("Connections", value)? else {
        return Ok(vec![Connection::SecurityAuditing]);
    };
    let mut connections = Vec::new();
    for item in &items {
        connections.push(match item.as_str() {
            "SecurityAuditing" => Connection::SecurityAuditing,
            "SecurityConfiguration" => Connection::SecurityConfiguration,
            other => {
                return Err(format!(
                    "Connections: {other:?} is not one of SecurityAuditing, SecurityConfiguration"
                ));
            }
        });
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

/// `Tags`: `Key=Value` items, each a tag every service takes: a key of 1
/// to 128 and a value of up to 256 of letters, digits, spaces and
/// `_.:/=+-@`, the key not starting with `aws:` (AWS's) or `cloudapps:`
/// (the stack's own), no key twice.
pub(super) fn parse_tags(value: Option<&Value>) -> Result<Vec<(String, String)>, String> {
    let Some(items) = items("Tags", value)? else {
        return Ok(Vec::new());
    };
    if items.len() > TAGS_MAX {
        return Err(format!("Tags: {} tags, {TAGS_MAX} at most", items.len()));
    }
    let mut tags: Vec<(String, String)> = Vec::new();
    for item in items {
        let Some((key, value)) = item.split_once('=') else {
            return Err(format!("Tags: {item:?} is not Key=Value"));
        };
        let (key, value) = (key.trim(), value.trim());
        if key.is_empty() || key.chars().count() > TAG_KEY_MAX || !valid_tag_text(key) {
            return Err(format!(
                "Tags: the key {key:?} must be 1 to {TAG_KEY_MAX} of letters, digits, spaces and _.:/=+-@"
            ));
        }
        if value.chars().count() > TAG_VALUE_MAX || !valid_tag_text(value) {
            return Err(format!(
                "Tags: the value of {key:?} must be up to {TAG_VALUE_MAX} of letters, digits, spaces and _.:/=+-@"
            ));
        }
        let lower = key.to_ascii_lowercase();
        if lower.starts_with("aws:") || lower.starts_with("cloudapps:") {
            return Err(format!(
                "Tags: the key {key:?} is reserved (aws: is AWS's, cloudapps: the stack's own)"
            ));
        }
        if tags.iter().any(|(k, _)| k.eq_ignore_ascii_case(key)) {
            return Err(format!("Tags: the key {key:?} is given twice"));
        }
        tags.push((key.to_string(), value.to_string()));
    }
    Ok(tags)
}

/// Characters every service takes in a tag key or value.
fn valid_tag_text(text: &str) -> bool {
    text.chars()
        .all(|c| c.is_alphanumeric() || c == ' ' || "_.:/=+-@".contains(c))
}

pub(super) fn valid_user_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"+=,.@_-".contains(&b))
}

pub(super) fn valid_path(path: &str) -> bool {
    (1..=512).contains(&path.len())
        && path.starts_with('/')
        && path.ends_with('/')
        && path.bytes().all(|b| (0x21..=0x7e).contains(&b))
        && !path.contains("//")
}

pub(super) fn valid_bucket_name(name: &str) -> bool {
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
