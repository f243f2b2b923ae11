//! When a key the portal may still hold can be retired. In `api` mode the
//! portal itself says so (the instance holds the new key and its test
//! passed). With a hand-off (or `off` mode), a person puts the new key in
//! place, or not: the previous key is retired only on evidence from AWS
//! that the new key is in use: `iam:GetAccessKeyLastUsed` shows the new key
//! used after the hand-over and, before the previous key is deleted, the
//! previous key not used since. The hand-over time is kept on the secret
//! (`cloudapps:handed-over`), and moved forward whenever this stack itself
//! signs with the new key (an Update's pre-flight), so its own use never
//! counts as evidence.

use aws_sdk_iam::Client;

use crate::access_key;
use crate::error::Error;
use crate::key_store::SecretInfo;
use crate::names::secret_tags;
use crate::time::http_date;

/// The hand-over the previous key waits on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HandedOver {
    /// The key handed over (AWSCURRENT).
    pub key_id: String,
    /// When, in seconds since the epoch.
    pub at: i64,
}

impl HandedOver {
    /// What the secret's tag says, if it is about `key_id`.
    pub fn of(secret: &SecretInfo, key_id: &str) -> Option<Self> {
        let (id, at) = secret.tag(secret_tags::HANDED_OVER)?.split_once('@')?;
        let at = at.parse().ok()?;
        (id == key_id).then(|| Self {
            key_id: id.to_string(),
            at,
        })
    }

    /// The tag's value.
    pub fn tag_value(&self) -> String {
        format!("{}@{}", self.key_id, self.at)
    }

    pub fn date(&self) -> String {
        http_date(self.at)
    }
}

/// What IAM shows of the use of both keys (seconds since the epoch).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Uses {
    pub new: Option<i64>,
    pub previous: Option<i64>,
}

impl Uses {
    pub async fn read(iam: &Client, new_key: &str, previous_key: &str) -> Result<Self, Error> {
        Ok(Self {
            new: access_key::last_used(iam, new_key).await?,
            previous: access_key::last_used(iam, previous_key).await?,
        })
    }
}

/// Whether the previous key may go, as AWS shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Evidence {
    /// It may: why.
    Proven(String),
    /// Not yet: what is missing.
    NotYet(String),
}

/// The verdict on the previous key `previous_key`, after `handed`, as `uses` show.
pub fn judge(handed: &HandedOver, previous_key: &str, uses: Uses) -> Evidence {
    let when = |t: i64| http_date(t);
    match (uses.new, uses.previous) {
        (Some(new), previous) if new > handed.at && previous.is_none_or(|p| p <= handed.at) => {
            Evidence::Proven(format!(
                "the key {} handed over on {} was used on {}, and the previous key {previous_key} not since",
                handed.key_id,
                handed.date(),
                when(new)
            ))
        }
        (Some(new), Some(previous)) if new > handed.at => Evidence::NotYet(format!(
            "the key {} is in use since {}, but the previous key {previous_key} was used too, on {}: something still signs with it; find what in CloudTrail before it is retired",
            handed.key_id,
            when(new),
            when(previous)
        )),
        _ => Evidence::NotYet(format!(
            "the hand-off of the key {} on {} was not acted on: it has not been used since (the previous key {previous_key} stays active)",
            handed.key_id,
            handed.date()
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_previous_key_goes_only_on_evidence() {
        let handed = HandedOver {
            key_id: "AKIANEW".into(),
            at: 1_800_000_000,
        };
        let at = handed.at;
        let proven = judge(
            &handed,
            "AKIAOLD",
            Uses {
                new: Some(at + 60),
                previous: Some(at - 60),
            },
        );
        assert!(matches!(proven, Evidence::Proven(_)), "{proven:?}");
        let never_used = judge(
            &handed,
            "AKIAOLD",
            Uses {
                new: None,
                previous: Some(at - 60),
            },
        );
        assert!(
            matches!(&never_used, Evidence::NotYet(why) if why.contains("was not acted on")),
            "{never_used:?}"
        );
        // Our own pre-flight before the hand-over is no evidence.
        let own = judge(
            &handed,
            "AKIAOLD",
            Uses {
                new: Some(at - 5),
                previous: None,
            },
        );
        assert!(matches!(own, Evidence::NotYet(_)));
        let both = judge(
            &handed,
            "AKIAOLD",
            Uses {
                new: Some(at + 60),
                previous: Some(at + 120),
            },
        );
        assert!(
            matches!(&both, Evidence::NotYet(why) if why.contains("still signs with it")),
            "{both:?}"
        );
        assert_eq!(handed.tag_value(), "AKIANEW@1800000000");
    }
}
