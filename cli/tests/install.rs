//! The `cloudapps` binary as `cargo install --path cli` installs it (the
//! package's one binary, built from the same manifest): its help lists
//! every command and the exit codes, `--version` names the package's
//! version, and a usage error is exit 2. The binary cargo built for these
//! tests is run, not a second build: `cargo install` of the package alone
//! resolves the dependencies' features apart from the workspace and would
//! build the AWS SDK again (about 5 minutes of the suite).

use std::process::Command;

#[test]
fn the_installed_binary_is_a_working_cloudapps() {
    let manifest: toml_like::Manifest = toml_like::read(env!("CARGO_MANIFEST_DIR"));
    assert_eq!(manifest.bin_name.as_deref(), Some("cloudapps"));
    let installed = env!("CARGO_BIN_EXE_cloudapps");

    let help = Command::new(installed).arg("--help").output().unwrap();
    assert!(help.status.success());
    let text = String::from_utf8_lossy(&help.stdout);
    for part in [
        "portal",
        "status",
        "check",
        "rotate",
        "org",
        "Exit codes:",
        "--output",
    ] {
        assert!(text.contains(part), "{part} in:\n{text}");
    }
    let version = Command::new(installed).arg("--version").output().unwrap();
    assert_eq!(
        String::from_utf8_lossy(&version.stdout).trim(),
        format!("cloudapps {}", env!("CARGO_PKG_VERSION"))
    );
    let bad = Command::new(installed).args(["rotate"]).output().unwrap();
    assert_eq!(bad.status.code(), Some(2));
}

/// The little of cli/Cargo.toml the test reads: the `[[bin]]` name that
/// `cargo install` gives the installed file.
mod toml_like {
    pub struct Manifest {
        pub bin_name: Option<String>,
    }

    pub fn read(dir: &str) -> Manifest {
        let text = std::fs::read_to_string(std::path::Path::new(dir).join("Cargo.toml")).unwrap();
        let mut in_bin = false;
        let mut bin_name = None;
        for line in text.lines().map(str::trim) {
            if line.starts_with('[') {
                in_bin = line == "[[bin]]";
            } else if in_bin && line.starts_with("name") {
                bin_name = line
                    .split('=')
                    .nth(1)
                    .map(|v| v.trim().trim_matches('"').to_string());
            }
        }
        Manifest { bin_name }
    }
}
