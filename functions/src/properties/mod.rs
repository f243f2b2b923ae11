//! The properties of `Custom::CloudAppsConnector`, checked before anything is
//! changed: a bad value is a clear error that names the property and what it
//! accepts, and every limit a later call would hit (a tag value's length,
//! an IAM name's characters) is checked here, not half-way through a
//! Create. The defaults are the README's.

mod rules;

use serde_json::{Map, Value};

use crate::names::StackRef;
use crate::trail::{OwnTrail, TrailMode};
use rules::{Props, parse_connections, parse_tags};

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
    /// What the trail the stack creates (if it creates one) must be; its
    /// `tags` are the stack's `Tags`.
    pub trail: OwnTrail,
    /// `UserPermissionsBoundary`: the user's permissions boundary.
    pub user_boundary: Option<String>,
    /// `AdoptExistingInstance`: take over a portal instance by that name
    /// that this stack did not connect.
    pub adopt_existing_instance: bool,
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
    "TrailKmsKeyArn",
    "TrailCloudWatchLogsGroupArn",
    "TrailCloudWatchLogsRoleArn",
    "TrailBucketAccessLogsBucket",
    "UserPermissionsBoundary",
    "AdoptExistingInstance",
    "Tags",
];

impl Spec {
    /// Checks `ResourceProperties`. All problems are reported at once.
    pub fn parse(props: &Value, stack: &StackRef) -> Result<Spec, String> {
        let empty = Map::new();
        let map = match props {
            Value::Object(map) => map,
            Value::Null => &empty,
            _ => return Err("ResourceProperties is not an object".into()),
        };
        let mut p = Props::new(map, stack);
        for key in map.keys() {
            if !KNOWN.contains(&key.as_str()) {
                p.problem(format!(
                    "unknown property {key:?} (known: {})",
                    KNOWN[2..].join(", ")
                ));
            }
        }
        let connector_name = p
            .text("ConnectorName")
            .unwrap_or_else(|| format!("aws-{}", stack.account));
        p.connector_name(&connector_name);
        let user_name = p
            .text("UserName")
            .unwrap_or_else(|| DEFAULT_USER_NAME.into());
        p.user_name(&user_name);
        let user_path = p
            .text("UserPath")
            .unwrap_or_else(|| DEFAULT_USER_PATH.into());
        p.user_path(&user_path, &user_name);
        let connections = match parse_connections(map.get("Connections")) {
            Ok(c) => c,
            Err(e) => {
                p.problem(e);
                vec![Connection::SecurityAuditing]
            }
        };
        let cloudtrail = match p.text("CloudTrail").as_deref() {
            None | Some("Ensure") => TrailMode::Ensure,
            Some("Verify") => TrailMode::Verify,
            Some("Ignore") => TrailMode::Ignore,
            Some(other) => {
                p.problem(format!(
                    "CloudTrail {other:?} is not one of Ensure, Verify, Ignore"
                ));
                TrailMode::Ensure
            }
        };
        let secret_id = match p.text("SecretArn") {
            None => {
                p.problem("SecretArn is required: the secret that receives the access key");
                String::new()
            }
            Some(id) => {
                p.secret_id(&id);
                id
            }
        };
        let tags = match parse_tags(map.get("Tags")) {
            Ok(tags) => tags,
            Err(e) => {
                p.problem(e);
                Vec::new()
            }
        };
        let trail = OwnTrail {
            bucket: p.bucket("TrailBucketName"),
            kms_key: p.kms_key("TrailKmsKeyArn"),
            cloudwatch_logs: p.cloudwatch_logs(),
            access_logs_bucket: p.bucket("TrailBucketAccessLogsBucket"),
            tags,
        };
        let user_boundary = p.policy_arn("UserPermissionsBoundary");
        let adopt_existing_instance = p.flag("AdoptExistingInstance");
        p.finish()?;
        Ok(Spec {
            connector_name,
            user_name,
            user_path,
            connections,
            cloudtrail,
            secret_id,
            trail,
            user_boundary,
            adopt_existing_instance,
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

    /// The stack's `Tags`, as pairs.
    pub fn tags(&self) -> &[(String, String)] {
        &self.trail.tags
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
        assert_eq!(spec.trail, OwnTrail::default());
        assert!(!spec.adopt_existing_instance && spec.user_boundary.is_none());
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

    #[test]
    fn every_limit_a_later_call_would_hit_is_checked_first() {
        // A path so long that the user's ARN no longer fits a tag value.
        let long_path = format!("/{}/", "p".repeat(240));
        let err =
            Spec::parse(&json!({"SecretArn": "s", "UserPath": long_path}), &stack()).unwrap_err();
        assert!(err.contains("user's ARN") && err.contains("256"), "{err}");
        // Characters a tag value cannot hold.
        let err =
            Spec::parse(&json!({"SecretArn": "s", "ConnectorName": "a&b"}), &stack()).unwrap_err();
        assert!(err.contains("ConnectorName"), "{err}");
        for (tags, says) in [
            (json!(["Team"]), "not Key=Value"),
            (json!(["aws:x=1"]), "reserved"),
            (json!(["cloudapps:user=1"]), "reserved"),
            (json!(["a=1", "A=2"]), "twice"),
            (json!([format!("k={}", "v".repeat(257))]), "value of"),
            (json!(["k=a#b"]), "value of"),
            (json!([7]), "strings"),
        ] {
            let err = Spec::parse(&json!({"SecretArn": "s", "Tags": tags}), &stack()).unwrap_err();
            assert!(err.contains(says), "{tags}: {err}");
        }
        let spec = Spec::parse(
            &json!({"SecretArn": "s", "Tags": "Team=security, CostCenter=42",
                    "AdoptExistingInstance": "True",
                    "UserPermissionsBoundary": "arn:aws:iam::123456789012:policy/b/boundary",
                    "TrailKmsKeyArn": "arn:aws:kms:us-east-1:123456789012:key/k",
                    "TrailCloudWatchLogsGroupArn": "arn:aws:logs:us-east-1:123456789012:log-group:g",
                    "TrailCloudWatchLogsRoleArn": "arn:aws:iam::123456789012:role/r",
                    "TrailBucketAccessLogsBucket": "access-logs"}),
            &stack(),
        )
        .unwrap();
        assert_eq!(
            spec.tags(),
            [
                ("Team".to_string(), "security".to_string()),
                ("CostCenter".to_string(), "42".to_string())
            ]
        );
        assert!(spec.adopt_existing_instance);
        assert_eq!(
            spec.trail.cloudwatch_logs.as_ref().map(|(g, _)| g.as_str()),
            Some("arn:aws:logs:us-east-1:123456789012:log-group:g:*")
        );
        for (props, says) in [
            (
                json!({"TrailCloudWatchLogsRoleArn": "arn:aws:iam::123456789012:role/r"}),
                "go together",
            ),
            (
                json!({"TrailKmsKeyArn": "arn:aws:s3:::bucket"}),
                "TrailKmsKeyArn",
            ),
            (
                json!({"UserPermissionsBoundary": "arn:aws:iam::123456789012:role/r"}),
                "UserPermissionsBoundary",
            ),
            (
                json!({"AdoptExistingInstance": "maybe"}),
                "AdoptExistingInstance",
            ),
            (
                json!({"TrailBucketAccessLogsBucket": "Bad_Bucket"}),
                "TrailBucketAccessLogsBucket",
            ),
        ] {
            let mut props = props;
            props["SecretArn"] = json!("s");
            let err = Spec::parse(&props, &stack()).unwrap_err();
            assert!(err.contains(says), "{props}: {err}");
        }
    }
}
