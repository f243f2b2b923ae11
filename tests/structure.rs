//! The library's structure, measured from its own imports: one job per
//! module, each standing above what it uses. A room is a file of
//! `functions/src` or one of its folders (as a whole); a room uses another
//! when it names it (`crate::x`, `cloudapps::x`). The rooms form no circle,
//! stand at most 8 floors high (a room stands one floor above the highest
//! room it uses), and the files inside each folder form no circle either.
//! No source file outside tests/ is over 500 lines.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

const MAX_FLOORS: usize = 8;
const MAX_LINES: usize = 500;

fn src() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("src")
}

fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(rust_files(&path));
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
    out.sort();
    out
}

/// The code of a file without its comments and its `#[cfg(test)]` module.
fn code(path: &Path) -> String {
    let text = fs::read_to_string(path).unwrap();
    let text = match text.find("#[cfg(test)]") {
        Some(i) => &text[..i],
        None => &text[..],
    };
    text.lines()
        .map(|l| l.split("//").next().unwrap_or_default())
        .collect::<Vec<_>>()
        .join("\n")
}

/// The names that follow `prefix` in `code` (`crate::portal::x` → `portal`).
fn named_after(code: &str, prefix: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    let mut rest = code;
    while let Some(i) = rest.find(prefix) {
        let before = rest[..i].chars().last();
        rest = &rest[i + prefix.len()..];
        if before.is_some_and(|c| c.is_alphanumeric() || c == '_') {
            continue;
        }
        let name: String = rest
            .chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_')
            .collect();
        if !name.is_empty() {
            names.insert(name);
        }
        // `use crate::{a, b::c}`: every name in the braces.
        if rest.starts_with('{') {
            let inner = &rest[1..rest.find('}').unwrap_or(rest.len())];
            for part in inner.split(',') {
                let name: String = part
                    .trim()
                    .chars()
                    .take_while(|c| c.is_alphanumeric() || *c == '_')
                    .collect();
                if !name.is_empty() {
                    names.insert(name);
                }
            }
        }
    }
    names
}

/// The room of a file: its folder under src/, or the file's stem.
fn room(path: &Path) -> String {
    let rel = path.strip_prefix(src()).unwrap();
    let mut parts = rel.components();
    let first = parts
        .next()
        .unwrap()
        .as_os_str()
        .to_string_lossy()
        .into_owned();
    match parts.next() {
        Some(_) => first,
        None => first.trim_end_matches(".rs").to_string(),
    }
}

/// The floors of a graph (1 = uses nothing), or the rooms of a circle.
fn floors(
    uses: &BTreeMap<String, BTreeSet<String>>,
) -> Result<BTreeMap<String, usize>, Vec<String>> {
    fn visit(
        room: &str,
        uses: &BTreeMap<String, BTreeSet<String>>,
        done: &mut BTreeMap<String, usize>,
        path: &mut Vec<String>,
    ) -> Result<usize, Vec<String>> {
        if let Some(floor) = done.get(room) {
            return Ok(*floor);
        }
        if let Some(i) = path.iter().position(|r| r == room) {
            return Err(path[i..].to_vec());
        }
        path.push(room.to_string());
        let mut floor = 1;
        for used in uses.get(room).into_iter().flatten() {
            floor = floor.max(visit(used, uses, done, path)? + 1);
        }
        path.pop();
        done.insert(room.to_string(), floor);
        Ok(floor)
    }
    let mut done = BTreeMap::new();
    for room in uses.keys() {
        visit(room, uses, &mut done, &mut Vec::new())?;
    }
    Ok(done)
}

#[test]
fn the_library_has_no_circle_and_at_most_eight_floors() {
    let files = rust_files(&src());
    let rooms: BTreeSet<String> = files
        .iter()
        .map(|f| room(f))
        .filter(|r| r != "lib")
        .collect();
    let mut uses: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for file in &files {
        let from = room(file);
        if from == "lib" {
            continue;
        }
        let code = code(file);
        let named = named_after(&code, "crate::")
            .into_iter()
            .chain(named_after(&code, "cloudapps::"));
        let entry = uses.entry(from.clone()).or_default();
        entry.extend(named.filter(|n| rooms.contains(n) && *n != from));
    }
    let floors = floors(&uses).unwrap_or_else(|circle| panic!("a circle of imports: {circle:?}"));
    let high = floors.values().max().copied().unwrap_or(0);
    let mut sheet: Vec<(usize, &String)> = floors.iter().map(|(r, f)| (*f, r)).collect();
    sheet.sort();
    assert!(high <= MAX_FLOORS, "{high} floors: {sheet:?}");
    // The steps of the guide stand on the ground only, not on each other.
    for step in ["iam_user", "access_key", "key_store", "trail", "portal"] {
        for used in &uses[step] {
            assert!(
                floors[used] <= 2,
                "{step} uses {used}, which is no leaf (floor {})",
                floors[used]
            );
        }
    }
}

#[test]
fn the_files_of_each_folder_form_no_circle() {
    for folder in fs::read_dir(src()).unwrap() {
        let folder = folder.unwrap().path();
        if !folder.is_dir() {
            continue;
        }
        let name = folder.file_name().unwrap().to_string_lossy().into_owned();
        let files = rust_files(&folder);
        let stems: BTreeSet<String> = files
            .iter()
            .map(|f| f.file_stem().unwrap().to_string_lossy().into_owned())
            .collect();
        let mut uses: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for file in &files {
            let stem = file.file_stem().unwrap().to_string_lossy().into_owned();
            let code = code(file);
            let mut named = named_after(&code, "super::");
            named.extend(named_after(&code, &format!("crate::{name}::")));
            // A child that names `super::x` where x is no file names mod.rs.
            let named: BTreeSet<String> = named
                .into_iter()
                .map(|n| if stems.contains(&n) { n } else { "mod".into() })
                .filter(|n| *n != stem)
                .collect();
            uses.entry(stem).or_default().extend(named);
        }
        if let Some(used) = uses.get_mut("mod") {
            // mod.rs declares and re-exports its children: that is downward.
            used.retain(|n| n != "mod");
        }
        if let Err(circle) = floors(&uses) {
            panic!("a circle of imports in {name}/: {circle:?}");
        }
    }
}

#[test]
fn no_source_file_outside_tests_is_over_500_lines() {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        for entry in fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            if path.is_dir() {
                if !name.starts_with('.')
                    && !["target", "tests", "node_modules"].contains(&name.as_str())
                {
                    walk(&path, out);
                }
            } else if path.extension().is_some_and(|e| e == "rs" || e == "py") {
                out.push(path);
            }
        }
    }
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut files = Vec::new();
    walk(&root, &mut files);
    assert!(files.len() > 40, "{} source files found", files.len());
    let long: Vec<String> = files
        .iter()
        .filter_map(|file| {
            let lines = fs::read_to_string(file).unwrap().lines().count();
            (lines > MAX_LINES).then(|| format!("{} ({lines})", file.display()))
        })
        .collect();
    assert!(long.is_empty(), "over {MAX_LINES} lines: {long:?}");
}
