//! Issue the access key: replaces "create access key" in the console. The
//! secret half goes from IAM's answer into a [`StoredKey`] and nowhere else;
//! before a key is reported ready it is proven to authenticate (polling
//! sts:GetCallerIdentity with backoff, bounded), because in real AWS a new
//! key takes seconds to propagate.

use std::time::{Duration, Instant};

use aws_config::SdkConfig;
use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_sdk_iam::Client;
use aws_sdk_iam::types::StatusType;
use aws_sdk_sts::config::Credentials;
use aws_sdk_sts::config::SharedCredentialsProvider;
use aws_sdk_sts::error::ProvideErrorMetadata;
use tracing::{info, warn};

use crate::backoff::Backoff;
use crate::error::Error;
use crate::gone;
use crate::key::StoredKey;
use crate::names::{UserRef, same_iam_name};
use crate::sensitive::Sensitive;
use crate::time;

/// How long a new key may take to authenticate, and how often it is asked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Readiness {
    /// Gives up after this long (real AWS: seconds). Bounded by the deadline too.
    pub timeout: Duration,
    /// The first pause between two checks; it grows by half each time.
    pub first_poll: Duration,
    /// The longest pause between two checks.
    pub max_poll: Duration,
}

impl Default for Readiness {
    fn default() -> Self {
        Self {
            timeout: Duration::from_secs(120),
            first_poll: Duration::from_millis(250),
            max_poll: Duration::from_secs(2),
        }
    }
}

/// An access key as IAM lists it (never with its secret).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyInfo {
    pub id: String,
    pub active: bool,
    /// When it was created, in seconds since the Unix epoch.
    pub created: Option<i64>,
}

pub async fn list(iam: &Client, user_name: &str) -> Result<Vec<KeyInfo>, Error> {
    let out = iam
        .list_access_keys()
        .user_name(user_name)
        .send()
        .await
        .map_err(Error::aws("iam:ListAccessKeys"))?;
    Ok(out
        .access_key_metadata()
        .iter()
        .filter_map(|k| {
            Some(KeyInfo {
                id: k.access_key_id()?.to_string(),
                active: k.status() == Some(&StatusType::Active),
                created: k.create_date().map(|d| d.secs()),
            })
        })
        .collect())
}

/// Creates a key. Its secret half is only ever in the returned value.
pub async fn create(iam: &Client, user: &UserRef) -> Result<StoredKey, Error> {
    let out = iam
        .create_access_key()
        .user_name(&user.name)
        .send()
        .await
        // The answer carries the secret: show the error code only.
        .map_err(Error::aws_code_only("iam:CreateAccessKey"))?;
    let key = out
        .access_key()
        .ok_or_else(|| Error::aws_step("iam:CreateAccessKey", "the answer holds no key"))?;
    info!(user = %user, access_key_id = key.access_key_id(), "created an access key");
    Ok(StoredKey {
        access_key_id: key.access_key_id().to_string(),
        secret_access_key: Sensitive::new(key.secret_access_key()),
        user_name: user.name.clone(),
    })
}

pub async fn delete(iam: &Client, user_name: &str, key_id: &str) -> Result<(), Error> {
    let sent = iam
        .delete_access_key()
        .user_name(user_name)
        .access_key_id(key_id)
        .send()
        .await;
    if gone::unless_gone(sent, "iam:DeleteAccessKey")?.is_some() {
        info!(
            user = user_name,
            access_key_id = key_id,
            "deleted an access key"
        );
    }
    Ok(())
}

/// Makes the key inactive (it no longer authenticates; it can be reactivated).
pub async fn deactivate(iam: &Client, user_name: &str, key_id: &str) -> Result<(), Error> {
    let sent = iam
        .update_access_key()
        .user_name(user_name)
        .access_key_id(key_id)
        .status(StatusType::Inactive)
        .send()
        .await;
    if gone::unless_gone(sent, "iam:UpdateAccessKey")?.is_some() {
        info!(
            user = user_name,
            access_key_id = key_id,
            "deactivated an access key"
        );
    }
    Ok(())
}

/// Waits until `key` authenticates as `user` (sts:GetCallerIdentity answers
/// with that user of `account`). Polls with a [`Backoff`] from
/// `readiness.first_poll` up to `max_poll`, and gives up before
/// `readiness.timeout` or `deadline` would pass. Returns how long it took.
pub async fn wait_until_authenticates(
    sdk: &SdkConfig,
    key: &StoredKey,
    user: &UserRef,
    account: &str,
    readiness: &Readiness,
    deadline: Instant,
) -> Result<Duration, Error> {
    let sts = key_client(sdk, key);
    let started = Instant::now();
    let give_up = deadline.min(time::add(started, readiness.timeout));
    let mut backoff = Backoff::new(readiness.first_poll, readiness.max_poll);
    let mut attempts = 0u32;
    loop {
        attempts += 1;
        let last = match sts.get_caller_identity().send().await {
            Ok(id) if id.account() == Some(account) && is_user(id.arn(), &user.name) => {
                let waited = started.elapsed();
                info!(user = %user, access_key_id = %key.access_key_id, attempts, ?waited, "the access key authenticates");
                return Ok(waited);
            }
            Ok(id) => format!(
                "authenticated as {} instead",
                id.arn().unwrap_or("an unknown identity")
            ),
            Err(e) => e.code().unwrap_or("no answer").to_string(),
        };
        let pause = backoff.next_pause();
        if time::reaches(pause, give_up) {
            warn!(user = %user, attempts, last = %last, "the access key did not authenticate in time");
            return Err(Error::KeyNotReady(format!(
                "the new access key {} of {user} did not authenticate within {:.1?} ({attempts} tries, last answer: {last}); run the operation again",
                key.access_key_id,
                started.elapsed()
            )));
        }
        tokio::time::sleep(pause).await;
    }
}

/// An STS client that signs with `key`. No SDK retries (the loop above is
/// the retry).
fn key_client(sdk: &SdkConfig, key: &StoredKey) -> aws_sdk_sts::Client {
    aws_sdk_sts::Client::new(&signed_with(sdk, key, RetryConfig::disabled()))
}

/// The function's SDK configuration (HTTP client, region, endpoint), signing
/// with `key` instead, with `retry` and a short timeout per call: for checks
/// of a new key.
pub fn signed_with(sdk: &SdkConfig, key: &StoredKey, retry: RetryConfig) -> SdkConfig {
    let credentials = Credentials::new(
        &key.access_key_id,
        key.secret_access_key.expose(),
        None,
        None,
        "cloudapps-new-key",
    );
    sdk.to_builder()
        .credentials_provider(SharedCredentialsProvider::new(credentials))
        .retry_config(retry)
        .timeout_config(
            TimeoutConfig::builder()
                .operation_attempt_timeout(Duration::from_secs(5))
                .build(),
        )
        .build()
}

/// True when `arn` (as STS answers it) is the IAM user `user_name`, named
/// as IAM compares names: without case (STS keeps the spelling the user was
/// created with).
pub fn is_user(arn: Option<&str>, user_name: &str) -> bool {
    arn.is_some_and(|arn| {
        arn.contains(":user/")
            && arn
                .rsplit('/')
                .next()
                .is_some_and(|n| same_iam_name(n, user_name))
    })
}

/// When `key_id` was last used to sign a request (seconds since the
/// epoch); `None` when never, or when IAM does not know the key any more.
/// AWS updates this within hours, not at once.
pub async fn last_used(iam: &Client, key_id: &str) -> Result<Option<i64>, Error> {
    let sent = iam
        .get_access_key_last_used()
        .access_key_id(key_id)
        .send()
        .await;
    Ok(
        gone::unless_gone(sent, "iam:GetAccessKeyLastUsed")?.and_then(|out| {
            out.access_key_last_used()
                .and_then(|u| u.last_used_date())
                .map(|d| d.secs())
        }),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identity_must_be_the_user() {
        assert!(is_user(Some("arn:aws:iam::123456789012:user/p/u"), "u"));
        assert!(is_user(Some("arn:aws:iam::123456789012:user/u"), "u"));
        assert!(!is_user(Some("arn:aws:iam::123456789012:root"), "u"));
        assert!(!is_user(
            Some("arn:aws:sts::123456789012:assumed-role/r/u"),
            "u"
        ));
        assert!(!is_user(Some("arn:aws:iam::123456789012:user/p/uu"), "u"));
        // IAM names have no case: STS keeps the spelling of the creation.
        assert!(is_user(
            Some("arn:aws:iam::123456789012:user/p/Defender"),
            "defender"
        ));
        assert!(!is_user(None, "u"));
    }
}
