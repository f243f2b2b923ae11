//! What the `cloudapps` tests share: running the built binary with a test
//! world's environment (its account in moto, its credentials), a stack in
//! moto's CloudFormation that stands for a deployed connector, and a proxy
//! in front of moto that records every AWS call.

pub mod har;
pub mod proxy;
pub mod stack;

use serde_json::Value;
use testbed::World;

pub const BINARY: &str = env!("CARGO_BIN_EXE_cloudapps");

/// One run of `cloudapps`.
#[derive(Debug)]
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    /// stdout as the JSON document of `--output json`.
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| {
            panic!(
                "stdout is not one JSON document ({e}):\n{}\nstderr:\n{}",
                self.stdout, self.stderr
            )
        })
    }

    /// Both streams, for assertion messages.
    pub fn shown(&self) -> String {
        format!(
            "exit {}\n--- stdout\n{}\n--- stderr\n{}",
            self.code, self.stdout, self.stderr
        )
    }
}

/// The environment of a `cloudapps` run against `w` (as `function_env`
/// gives it: region, endpoint, credentials), with `endpoint` in place of
/// moto's when given (a proxy), and `extra`.
pub fn env(w: &World, endpoint: Option<&str>, extra: &[(&str, &str)]) -> Vec<(String, String)> {
    let mut env = testbed::function_env(w, extra);
    if let Some(endpoint) = endpoint {
        for (k, v) in &mut env {
            if k == "AWS_ENDPOINT_URL" {
                *v = endpoint.to_string();
            }
        }
    }
    env
}

/// Runs `cloudapps args` with `env` (nothing from a profile), keeping what
/// it printed for `w`'s leak scan (and showing it on stderr with
/// `CLOUDAPPS_TEST_ECHO` set).
pub async fn cloudapps(w: &World, env: &[(String, String)], args: &[&str]) -> Run {
    let run = run_with(env, args).await;
    let what = args.iter().take(3).copied().collect::<Vec<_>>().join(" ");
    w.keep_output(&format!("cloudapps {what} stdout"), run.stdout.clone());
    w.keep_output(&format!("cloudapps {what} stderr"), run.stderr.clone());
    if std::env::var_os("CLOUDAPPS_TEST_ECHO").is_some() {
        eprintln!("=== cloudapps {}\n{}", args.join(" "), run.shown());
    }
    run
}

/// Runs `cloudapps args` with `env` only added to a clean AWS setup.
pub async fn run_with(env: &[(String, String)], args: &[&str]) -> Run {
    let out = tokio::process::Command::new(BINARY)
        .args(args)
        .env_remove("AWS_PROFILE")
        .env_remove("AWS_DEFAULT_PROFILE")
        .env("AWS_CONFIG_FILE", "/nonexistent/cloudapps-test-config")
        .env(
            "AWS_SHARED_CREDENTIALS_FILE",
            "/nonexistent/cloudapps-test-credentials",
        )
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .stdin(std::process::Stdio::null())
        .output()
        .await
        .expect("run the cloudapps binary");
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// A line of `text` holding every word of `words`, or a panic that shows `run`.
pub fn line_with<'a>(run: &'a Run, words: &[&str]) -> &'a str {
    run.stdout
        .lines()
        .find(|l| words.iter().all(|w| l.contains(w)))
        .unwrap_or_else(|| panic!("no line with {words:?}:\n{}", run.shown()))
}
