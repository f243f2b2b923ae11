//! `cargo install --path cli` gives a working `cloudapps`: installed into a
//! temporary root (a debug build, sharing this workspace's target
//! directory, so that the test does not build the AWS SDK again in
//! release), then run: its help lists every command and the exit codes.

use std::path::PathBuf;
use std::process::Command;

#[test]
fn cargo_install_gives_a_working_cloudapps() {
    let cli = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let workspace = cli.parent().unwrap().to_path_buf();
    let root = std::env::temp_dir().join(format!("cloudapps-install-{:016x}", fastrand::u64(..)));
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map_or_else(|| workspace.join("target"), PathBuf::from);
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let out = Command::new(cargo)
        .current_dir(&workspace)
        .args([
            "install",
            "--path",
            "cli",
            "--debug",
            "--locked",
            "--offline",
            "--quiet",
        ])
        .arg("--root")
        .arg(&root)
        .arg("--target-dir")
        .arg(&target)
        .output()
        .expect("run cargo install");
    assert!(
        out.status.success(),
        "cargo install failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let installed = root.join("bin").join("cloudapps");
    assert!(installed.exists(), "{} is installed", installed.display());

    let help = Command::new(&installed).arg("--help").output().unwrap();
    assert!(help.status.success());
    let text = String::from_utf8_lossy(&help.stdout);
    for part in [
        "portal",
        "status",
        "check",
        "rotate",
        "Exit codes:",
        "--output",
    ] {
        assert!(text.contains(part), "{part} in:\n{text}");
    }
    let version = Command::new(&installed).arg("--version").output().unwrap();
    assert_eq!(
        String::from_utf8_lossy(&version.stdout).trim(),
        format!("cloudapps {}", env!("CARGO_PKG_VERSION"))
    );
    // a usage error is exit 2, from the installed binary too
    let bad = Command::new(&installed).args(["rotate"]).output().unwrap();
    assert_eq!(bad.status.code(), Some(2));
    std::fs::remove_dir_all(&root).unwrap();
}
