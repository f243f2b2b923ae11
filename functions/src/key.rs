//! The access key as it is kept: the secret value
//! `{"AccessKeyId", "SecretAccessKey", "UserName"}`, whose secret half is a
//! [`Sensitive`] and is never printed.

use serde::{Deserialize, Serialize};

use crate::names;
use crate::sensitive::Sensitive;

/// The secret value: `{"AccessKeyId", "SecretAccessKey", "UserName"}`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredKey {
    pub access_key_id: String,
    pub secret_access_key: Sensitive,
    pub user_name: String,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct Wire<'a> {
    access_key_id: &'a str,
    secret_access_key: &'a str,
    user_name: &'a str,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct OwnedWire {
    access_key_id: String,
    secret_access_key: String,
    #[serde(default)]
    user_name: String,
}

impl StoredKey {
    /// The JSON text stored in the secret (itself a secret).
    pub fn to_secret_string(&self) -> Sensitive {
        let wire = Wire {
            access_key_id: &self.access_key_id,
            secret_access_key: self.secret_access_key.expose(),
            user_name: &self.user_name,
        };
        Sensitive::new(serde_json::to_string(&wire).expect("strings serialize"))
    }

    /// Parses a secret value; `None` when it is not a key in this format
    /// (an empty or placeholder secret, say).
    pub fn parse(text: &Sensitive) -> Option<Self> {
        let wire: OwnedWire = serde_json::from_str(text.expose()).ok()?;
        (!wire.access_key_id.is_empty() && !wire.secret_access_key.is_empty()).then(|| Self {
            access_key_id: wire.access_key_id,
            secret_access_key: Sensitive::new(wire.secret_access_key),
            user_name: wire.user_name,
        })
    }

    /// True when the key is `user_name`'s (IAM names have no case).
    pub fn belongs_to(&self, user_name: &str) -> bool {
        names::same_iam_name(&self.user_name, user_name)
    }

    /// The idempotency token of the secret version that holds this key: a
    /// retried write of the same key is the same version, not a new one.
    /// Secrets Manager takes 32 to 64 characters; key ids are usually 20.
    pub fn version_token(&self) -> String {
        let token = format!("cloudapps-key-{}", self.access_key_id);
        if (32..=64).contains(&token.len())
            && token
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        {
            token
        } else {
            format!(
                "cloudapps-key-version-{:016x}",
                names::digest(&[&self.access_key_id])
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_json_round_trips_and_is_the_design_format() {
        let key = StoredKey {
            access_key_id: "AKIAEXAMPLE".into(),
            secret_access_key: Sensitive::new("s3cr3t/value"),
            user_name: "defender-cloud-apps".into(),
        };
        let text = key.to_secret_string();
        let v: serde_json::Value = serde_json::from_str(text.expose()).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"AccessKeyId": "AKIAEXAMPLE", "SecretAccessKey": "s3cr3t/value", "UserName": "defender-cloud-apps"})
        );
        assert_eq!(StoredKey::parse(&text), Some(key.clone()));
        assert!(!format!("{key:?}").contains("s3cr3t"));
        for id in ["AKIAEXAMPLE", "AKIAIOSFODNN7EXAMPLE", &"A".repeat(128)] {
            let k = StoredKey {
                access_key_id: id.to_string(),
                ..key.clone()
            };
            let token = k.version_token();
            assert!((32..=64).contains(&token.len()), "{token}");
            assert_eq!(token, k.clone().version_token());
        }
        assert_eq!(StoredKey::parse(&Sensitive::new("{}")), None);
        assert_eq!(StoredKey::parse(&Sensitive::new("placeholder")), None);
    }
}
