//! The test bed: a real AWS emulator (moto server) per test process, one
//! fresh AWS account per test, a catcher for the CloudFormation ResponseURL,
//! a Lambda Runtime API to run the real function binaries, captured logs,
//! and the leak scan. One module per concern:
//!
//! - [`moto`]: the moto server and SDK configurations for it;
//! - [`world`]: one test's own account, stack and secret, and the connector
//!   run in-process against them; [`account`]: what a user can see there;
//! - [`portal`]: the portal emulator and the hand-off topic of a world;
//! - [`catcher`]: the stand-in for CloudFormation's ResponseURL;
//! - [`runtime_api`]: the Lambda Runtime API for the built binaries;
//! - [`rotation`]: driving a rotation as Secrets Manager does;
//! - [`health`]: a stack connected for the health check, and its runs;
//! - [`hub`]: an organization in moto with its hub (registrar, table,
//!   members in `PORTAL_MODE=hub`);
//! - [`template`]: template.yaml's roles and environment, resolved;
//! - [`leaks`]: the captured logs and the leak scan.
//!
//! See tests/README.md for how it works and where moto differs from AWS.

pub mod account;
pub mod catcher;
pub mod health;
pub mod hub;
pub mod hub_template;
pub mod leaks;
pub mod moto;
pub mod portal;
pub mod rotation;
pub mod runtime_api;
pub mod template;
pub mod world;

use std::path::PathBuf;

pub use catcher::{Catcher, Caught, serve};
pub use leaks::{assert_no_leak, capture_logs, captured_logs};
pub use moto::{Moto, sdk_config};
pub use portal::{PortalAuth, data, fault, portal_settings, quick_portal};
pub use rotation::{register_rotation_function, rotation_step, start_rotation};
pub use world::{World, function_env, test_settings};

pub const REGION: &str = "us-east-1";

/// The connector's default user name.
pub const USER: &str = "defender-cloud-apps";

/// The physical id in a CloudFormation response body.
pub fn physical_id(body: &serde_json::Value) -> String {
    body["PhysicalResourceId"].as_str().unwrap().to_string()
}

/// The workspace root (this crate is tests/support).
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .expect("the workspace root")
}

/// The venv python that scripts/setup installs moto into.
pub fn python() -> PathBuf {
    if let Ok(p) = std::env::var("TESTBED_PYTHON") {
        return p.into();
    }
    let p = root().join(".tools/venv/bin/python");
    assert!(
        p.exists(),
        "{} is missing: run ./scripts/setup (./scripts/test does it) to install the pinned moto server",
        p.display()
    );
    p
}
