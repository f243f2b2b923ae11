//! The member accounts as the hub reaches them: only through each account's
//! own hub role (`arn:aws:iam::<account>:role/<HUB_MEMBER_ROLE_NAME>`),
//! which lets it read that account's connector secret and its tags, and
//! write the `cloudapps:hub-*` tags back. Nothing a member writes is taken
//! on trust: the account is the one the hub assumed a role in, the secret
//! is the one by the fixed name there, the key is the one its value holds,
//! and every tag is checked before it is used.

use aws_config::SdkConfig;
use aws_sdk_secretsmanager::Client as Secrets;
use aws_sdk_secretsmanager::config::{Credentials, Region};

use crate::error::{Error, is_access_denied};
use crate::gone::is_gone;
use crate::hub_tags::{self, HubState};
use crate::key::StoredKey;
use crate::key_store;
use crate::names::secret_tags;
use crate::sensitive::Sensitive;

/// What the hub needs to reach the members.
#[derive(Clone, Debug)]
pub struct Reach {
    pub sdk: SdkConfig,
    pub role_name: String,
    pub secret_name: String,
    pub region: String,
}

/// A member account as its secret shows it.
#[derive(Clone, Debug)]
pub struct Member {
    pub account: String,
    pub secret_arn: String,
    pub name: String,
    pub connections: Vec<String>,
    /// The AWSCURRENT key's id.
    pub key_id: Option<String>,
    /// The AWSPENDING key's id, during a rotation.
    pub pending_key_id: Option<String>,
    /// When the key was made (seconds since the epoch).
    pub key_created: Option<i64>,
    /// What the hub wrote back last.
    pub hub: HubState,
    /// What is wrong with the secret's tags (the hub does nothing then).
    pub invalid: Option<String>,
    secrets: Secrets,
}

/// What looking at an account found.
#[derive(Clone, Debug)]
pub enum Seen {
    Member(Box<Member>),
    /// The account's connector is gone: it left the organization, or its
    /// secret is deleted.
    Gone(String),
    /// Its role refused the hub (it may be gone: its stack deleted).
    Refused(String),
    /// A fault that may pass (throttled, network): nothing is concluded.
    Unknown(String),
}

impl Member {
    /// The key the portal should hold: the pending one during a rotation.
    pub fn wanted_key(&self) -> Option<&str> {
        self.pending_key_id.as_deref().or(self.key_id.as_deref())
    }

    /// True when `key_id` is one of this account's keys now.
    pub fn holds(&self, key_id: &str) -> bool {
        self.key_id.as_deref() == Some(key_id) || self.pending_key_id.as_deref() == Some(key_id)
    }

    /// The key `key_id` from the secret's value (AWSPENDING for the pending
    /// key): read only to hand it to the portal. An error unless the value
    /// holds exactly that key.
    pub async fn read_key(&self, key_id: &str) -> Result<StoredKey, Error> {
        let stage = if self.pending_key_id.as_deref() == Some(key_id) {
            "AWSPENDING"
        } else {
            "AWSCURRENT"
        };
        let value = self
            .secrets
            .get_secret_value()
            .secret_id(&self.secret_arn)
            .version_stage(stage)
            .send()
            .await
            .map_err(Error::aws_code_only("secretsmanager:GetSecretValue"))?;
        let text = Sensitive::new(value.secret_string().unwrap_or_default().to_string());
        match StoredKey::parse(&text) {
            Some(key) if key.access_key_id == key_id => Ok(key),
            Some(key) => Err(Error::aws_step(
                "secretsmanager:GetSecretValue",
                format!(
                    "the {stage} value holds key {}, its tag says {key_id}",
                    key.access_key_id
                ),
            )),
            None => Err(Error::aws_step(
                "secretsmanager:GetSecretValue",
                format!("the {stage} value is not a key"),
            )),
        }
    }

    /// Writes what the portal shows on the member's secret (only what
    /// changed; only `cloudapps:hub-*` tags).
    pub async fn tell(&mut self, state: &HubState) -> Result<(), Error> {
        if *state == self.hub {
            return Ok(());
        }
        let tags = state.to_tags();
        let pairs: Vec<(&str, &str)> = tags.iter().map(|(k, v)| (*k, v.as_str())).collect();
        key_store::set_tags(&self.secrets, &self.secret_arn, &pairs).await?;
        let before = self.hub.to_tags();
        let stale: Vec<&str> = before
            .iter()
            .map(|(k, _)| *k)
            .filter(|k| !tags.iter().any(|(t, _)| t == k))
            .collect();
        if !stale.is_empty() {
            key_store::remove_tags(&self.secrets, &self.secret_arn, &stale).await?;
        }
        self.hub = state.clone();
        Ok(())
    }
}

impl Reach {
    /// Looks at `account` through its hub role.
    pub async fn look(&self, account: &str) -> Seen {
        let secrets = match self.assume(account).await {
            Ok(s) => s,
            Err(seen) => return seen,
        };
        let described = secrets
            .describe_secret()
            .secret_id(&self.secret_name)
            .send()
            .await;
        let info = match described {
            Ok(info) => info,
            Err(e) if is_gone(&e) => {
                return Seen::Gone(format!("no secret {} in the account", self.secret_name));
            }
            Err(e) if is_access_denied(&e) => {
                return Seen::Refused(format!("the hub role may not read {}", self.secret_name));
            }
            Err(e) => {
                return Seen::Unknown(Error::aws("secretsmanager:DescribeSecret")(e).to_string());
            }
        };
        if info.deleted_date().is_some() {
            return Seen::Gone("the connector secret is deleted".into());
        }
        let tags: Vec<(&str, &str)> = info
            .tags()
            .iter()
            .filter_map(|t| Some((t.key()?, t.value()?)))
            .collect();
        let tag = |k: &str| {
            tags.iter()
                .find(|(t, _)| *t == k)
                .map(|(_, v)| v.to_string())
        };
        let created = info
            .last_rotated_date()
            .or(info.created_date())
            .map(|d| d.secs());
        let mut member = Member {
            account: account.to_string(),
            secret_arn: info.arn().unwrap_or_default().to_string(),
            name: tag(secret_tags::INSTANCE).unwrap_or_default(),
            connections: tag(secret_tags::CONNECTIONS)
                .unwrap_or_default()
                .split_whitespace()
                .map(str::to_string)
                .collect(),
            key_id: tag(hub_tags::KEY_ID),
            pending_key_id: tag(hub_tags::PENDING_KEY_ID),
            key_created: created,
            hub: HubState::from_tags(tags.iter().copied()),
            invalid: None,
            secrets,
        };
        member.invalid = check(&member);
        Seen::Member(Box::new(member))
    }

    async fn assume(&self, account: &str) -> Result<Secrets, Seen> {
        let partition = partition(&self.region);
        let role = format!("arn:{partition}:iam::{account}:role/{}", self.role_name);
        let sts = aws_sdk_sts::Client::new(&self.sdk);
        let assumed = sts
            .assume_role()
            .role_arn(&role)
            .role_session_name("cloudapps-registrar")
            .duration_seconds(3600)
            .send()
            .await;
        let creds = match assumed {
            Ok(out) => out.credentials,
            Err(e) if is_access_denied(&e) => {
                return Err(Seen::Refused(format!("{role} refused the hub")));
            }
            Err(e) => return Err(Seen::Unknown(Error::aws("sts:AssumeRole")(e).to_string())),
        };
        let Some(c) = creds else {
            return Err(Seen::Unknown(
                "sts:AssumeRole answered no credentials".into(),
            ));
        };
        let credentials = Credentials::new(
            c.access_key_id(),
            c.secret_access_key(),
            Some(c.session_token().to_string()),
            None,
            "hub-member-role",
        );
        let config = aws_sdk_secretsmanager::config::Builder::from(&self.sdk)
            .credentials_provider(credentials)
            .region(Region::new(self.region.clone()))
            .build();
        Ok(Secrets::from_conf(config))
    }
}

/// The partition of `region`.
fn partition(region: &str) -> &'static str {
    if region.starts_with("cn-") {
        "aws-cn"
    } else if region.starts_with("us-gov-") {
        "aws-us-gov"
    } else {
        "aws"
    }
}

/// What is wrong with the member's tags, if anything: the hub neither
/// names an instance nor hands over a key from tags it cannot vouch for.
pub(crate) fn check(m: &Member) -> Option<String> {
    let name_ok = !m.name.is_empty()
        && m.name.chars().count() <= 128
        && !m
            .name
            .chars()
            .any(|c| c.is_control() || c == '"' || c == '\\');
    if !name_ok {
        return Some(format!(
            "the secret's {} tag is not an instance name",
            secret_tags::INSTANCE
        ));
    }
    let known = ["SecurityAuditing", "SecurityConfiguration"];
    if m.connections.is_empty() || m.connections.iter().any(|c| !known.contains(&c.as_str())) {
        return Some(format!(
            "the secret's {} tag is not SecurityAuditing and/or SecurityConfiguration",
            secret_tags::CONNECTIONS
        ));
    }
    let key_ok = |k: &String| {
        (16..=128).contains(&k.len())
            && k.bytes()
                .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
    };
    for (tag, key) in [
        (hub_tags::KEY_ID, &m.key_id),
        (hub_tags::PENDING_KEY_ID, &m.pending_key_id),
    ] {
        if key.as_ref().is_some_and(|k| !key_ok(k)) {
            return Some(format!("the secret's {tag} tag is not an access key id"));
        }
    }
    None
}

#[cfg(test)]
impl Member {
    /// A member as its secret would show it, for the tests of the decisions.
    pub(crate) fn sample(account: &str, name: &str, key_id: &str) -> Self {
        let config = aws_sdk_secretsmanager::Config::builder()
            .behavior_version(aws_sdk_secretsmanager::config::BehaviorVersion::latest())
            .region(Region::new("us-east-1"))
            .build();
        let mut member = Self {
            account: account.into(),
            secret_arn: format!(
                "arn:aws:secretsmanager:us-east-1:{account}:secret:cloudapps/connector-key-AbCdEf"
            ),
            name: name.into(),
            connections: vec!["SecurityAuditing".into()],
            key_id: Some(key_id.into()),
            pending_key_id: None,
            key_created: None,
            hub: HubState::default(),
            invalid: None,
            secrets: Secrets::from_conf(config),
        };
        member.invalid = check(&member);
        member
    }

    pub(crate) fn with_pending(mut self, key_id: &str) -> Self {
        self.pending_key_id = Some(key_id.into());
        self.invalid = check(&self);
        self
    }
}
