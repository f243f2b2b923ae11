//! moto server, the AWS emulator: one process per test binary (shared by
//! its tests, each in an account of its own), or one of a test's own when it
//! changes server-wide state (IAM enforcement).

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, OnceLock};

use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_sdk_sts::config::{Credentials, SharedCredentialsProvider};
use serde_json::Value;

use crate::{REGION, python, root};

/// A moto server process on 127.0.0.1 and a free port. It stops when this
/// value is dropped, or when the test process ends (its stdin closes).
pub struct Moto {
    pub endpoint: String,
    child: Mutex<Child>,
    /// Where the launcher writes one JSON line per request it denies.
    denials: PathBuf,
}

impl Moto {
    /// A server of its own (for tests that change global state, such as IAM
    /// enforcement).
    pub fn start() -> Moto {
        Moto::start_with(&[])
    }

    /// A server of its own with `env` set (e.g.
    /// `MOTO_IAM_LOAD_MANAGED_POLICIES=false`: new accounts are much
    /// cheaper without the ~1,000 AWS managed policies).
    pub fn start_with(env: &[(&str, &str)]) -> Moto {
        let denials = std::env::temp_dir().join(format!(
            "moto-denials-{}-{:016x}.jsonl",
            std::process::id(),
            fastrand::u64(..)
        ));
        let mut child = Command::new(python())
            .arg(root().join("tests/support/moto_launcher.py"))
            .env("MOTO_DENIALS_FILE", &denials)
            .envs(env.iter().copied())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(if std::env::var_os("TESTBED_MOTO_LOGS").is_some() {
                Stdio::inherit()
            } else {
                Stdio::null()
            })
            .spawn()
            .expect("start moto server");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .expect("moto announces its port");
        let port: Value = serde_json::from_str(&line)
            .unwrap_or_else(|_| panic!("moto launcher printed {line:?} instead of its port"));
        Moto {
            endpoint: format!("http://127.0.0.1:{}", port["port"]),
            child: Mutex::new(child),
            denials,
        }
    }

    /// Every request moto denied under IAM enforcement since it started:
    /// `{"action", "resources", "principal"}`.
    pub fn denials(&self) -> Vec<Value> {
        std::fs::read_to_string(&self.denials)
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).expect("a denial is JSON"))
            .collect()
    }

    /// The server shared by the tests of this process; each test still gets
    /// an account of its own, so they do not see each other.
    pub fn shared() -> &'static Moto {
        static SHARED: OnceLock<Moto> = OnceLock::new();
        SHARED.get_or_init(Moto::start)
    }

    /// Turns IAM enforcement on: from now on every request must be allowed
    /// by the caller's IAM policies.
    pub async fn enforce_iam(&self) {
        self.reset_auth("0").await;
    }

    /// Turns IAM enforcement off again (moto counts unauthenticated
    /// requests up to this number: infinity).
    pub async fn relax_iam(&self) {
        self.reset_auth("inf").await;
    }

    async fn reset_auth(&self, count: &str) {
        let r = reqwest::Client::new()
            .post(format!("{}/moto-api/reset-auth", self.endpoint))
            .header("content-type", "text/plain")
            .body(count.to_string())
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success(), "reset-auth: {}", r.status());
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        if let Ok(mut child) = self.child.lock() {
            drop(child.stdin.take());
            let _ = child.kill();
            let _ = child.wait();
        }
        let _ = std::fs::remove_file(&self.denials);
    }
}

/// An SDK configuration for `endpoint` with static credentials.
pub async fn sdk_config(
    endpoint: &str,
    key_id: &str,
    secret: &str,
    token: Option<&str>,
) -> SdkConfig {
    let sdk = aws_config::defaults(BehaviorVersion::latest())
        .region(Region::new(REGION))
        .endpoint_url(endpoint)
        .credentials_provider(credentials(key_id, secret, token))
        .load()
        .await;
    // The world's clients share one HTTP client, as a function's do.
    cloudapps::aws::sharing_one_http_client(&sdk)
}

/// `base` signing with another key: its endpoint, region and HTTP client
/// (one world's configurations share their connections, on its runtime).
pub fn signing_as(base: &SdkConfig, key_id: &str, secret: &str, token: Option<&str>) -> SdkConfig {
    base.to_builder()
        .credentials_provider(SharedCredentialsProvider::new(credentials(
            key_id, secret, token,
        )))
        .build()
}

fn credentials(key_id: &str, secret: &str, token: Option<&str>) -> Credentials {
    Credentials::new(key_id, secret, token.map(str::to_string), None, "testbed")
}

#[cfg(test)]
mod tests {
    use std::process::Command;

    use crate::{python, root};

    /// The launcher's moto_scale.py answers as moto does (a key's account,
    /// an account's backends), with work that does not grow with the
    /// accounts moto knows: moto_scale_check.py says what it checks.
    #[test]
    fn a_requests_account_is_found_as_moto_finds_it_without_walking_every_account() {
        let out = Command::new(python())
            .arg(root().join("tests/support/moto_scale_check.py"))
            .output()
            .expect("run moto_scale_check.py");
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success() && stdout.starts_with("ok"),
            "moto_scale_check.py: {stdout}{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}
