//! Package size: each function's arm64 zip (scripts/package), and which
//! crates its code is made of (symbol sizes of the same build with its
//! symbol table kept, grouped by crate, as cargo-bloat does).

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

use serde_json::json;

use crate::report::{Report, Target};
use crate::support;

/// The zip of `function` in `zips` (`<function>-<hash>.zip`) and the size
/// of its `bootstrap` once unpacked.
fn zip_of(zips: &Path, function: &str) -> (std::path::PathBuf, u64, u64) {
    let zip = std::fs::read_dir(zips)
        .unwrap_or_else(|e| panic!("{}: {e} (run ./scripts/package)", zips.display()))
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with(&format!("{function}-")) && n.ends_with(".zip"))
        })
        .max_by_key(|p| p.metadata().and_then(|m| m.modified()).ok())
        .unwrap_or_else(|| {
            panic!(
                "no {function}-*.zip in {}: run ./scripts/package",
                zips.display()
            )
        });
    let size = zip.metadata().unwrap().len();
    let out = Command::new(support::python())
        .args([
            "-c",
            "import sys, zipfile; print(zipfile.ZipFile(sys.argv[1]).getinfo('bootstrap').file_size)",
        ])
        .arg(&zip)
        .output()
        .expect("python reads the zip");
    let unpacked = String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .unwrap_or(0);
    (zip, size, unpacked)
}

/// The crate a (demangled) symbol belongs to, by its leading path.
fn crate_of(symbol: &str) -> String {
    let mut s = symbol.trim_start_matches(['<', '&', '*', '(', '[', ' ']);
    for prefix in ["_<", "dyn ", "mut ", "const ", "impl "] {
        s = s.trim_start_matches(prefix);
    }
    s = s.trim_start_matches(['<', '&', '*', '(', '[', ' ']);
    match s.split_once("::") {
        Some((krate, _)) if !krate.contains(' ') && !krate.is_empty() => krate.to_string(),
        // Symbols with no Rust path: aws-lc's C and assembly (prefixed
        // aws_lc_* or not: its tables, curve code), and a few bytes of libc start-up.
        _ => "C and asm (aws-lc-sys)".into(),
    }
}

/// Bytes of code and read-only data per crate in `binary`.
fn by_crate(binary: &Path) -> BTreeMap<String, u64> {
    let out = Command::new("nm")
        .args([
            "--print-size",
            "--size-sort",
            "--demangle",
            "--defined-only",
        ])
        .arg(binary)
        .output()
        .expect("nm (binutils) reads the symbol table");
    let mut sizes = BTreeMap::new();
    let mut seen = std::collections::HashSet::new();
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let mut parts = line.splitn(4, ' ');
        let (address, size, kind, name) = (parts.next(), parts.next(), parts.next(), parts.next());
        let (Some(address), Some(size), Some(kind), Some(name)) = (address, size, kind, name)
        else {
            continue;
        };
        // Code, read-only and initialised data; an alias of an address counted once.
        if !matches!(
            kind,
            "T" | "t" | "W" | "w" | "R" | "r" | "D" | "d" | "V" | "v"
        ) || !seen.insert(address.to_string())
        {
            continue;
        }
        let size = u64::from_str_radix(size, 16).unwrap_or(0);
        *sizes.entry(crate_of(name)).or_insert(0) += size;
    }
    sizes
}

pub fn run(bins: &Path, zips: &Path, report: &mut Report) {
    eprintln!("package size: {}", zips.display());
    let mut details = serde_json::Map::new();
    for function in crate::cold_start::FUNCTIONS {
        let (zip, size, unpacked) = zip_of(zips, function);
        let crates = by_crate(&bins.join(function));
        let attributed: u64 = crates.values().sum();
        let mut top: Vec<(String, u64)> = crates.into_iter().collect();
        top.sort_by_key(|(_, bytes)| std::cmp::Reverse(*bytes));
        let share = |b: u64| 100.0 * b as f64 / attributed.max(1) as f64;
        let leaders: Vec<String> = top
            .iter()
            .take(4)
            .map(|(c, b)| format!("{c} {:.0}%", share(*b)))
            .collect();
        report.add(
            format!("{function}: arm64 zip"),
            size as f64 / 1e6,
            "MB",
            Some(Target::AtMost(5.0)),
            format!(
                "{} ({:.1} MB unpacked); code by crate (x86_64 build): {}",
                zip.file_name().unwrap().to_string_lossy(),
                unpacked as f64 / 1e6,
                leaders.join(", ")
            ),
        );
        details.insert(
            function.to_string(),
            json!({
                "zip": zip.file_name().unwrap().to_string_lossy(),
                "zip_bytes": size,
                "bootstrap_bytes": unpacked,
                "symbol_bytes": attributed,
                "by_crate_kib": top.iter().take(15)
                    .map(|(c, b)| json!({"crate": c, "kib": b / 1024, "percent": (share(*b) * 10.0).round() / 10.0}))
                    .collect::<Vec<_>>(),
            }),
        );
    }
    let tree = Command::new("cargo")
        .args([
            "tree",
            "-p",
            "cloudapps",
            "-e",
            "normal",
            "--prefix",
            "none",
            "--target",
            "aarch64-unknown-linux-gnu",
        ])
        .current_dir(support::root())
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default();
    let mut names: Vec<&str> = tree
        .lines()
        .filter_map(|l| l.split(" (").next())
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    names.sort();
    names.dedup();
    report.add(
        "dependencies shipped",
        names.len() as f64,
        "crates",
        None,
        "distinct crates (name and version) of `cargo tree -e normal` for aarch64, cloudapps included",
    );
    details.insert("crates".into(), json!(names));
    report.detail("package", serde_json::Value::Object(details));
}
