//! What the probe prints: each route's request, status and throttle
//! headers; each answer's fields against the contract; the client's own
//! run; the verdict and what to set.

use std::collections::BTreeMap;

use serde_json::json;

use super::Probe;
use crate::contract::Found;
use crate::out::{Out, table};
use crate::outcome::Exit;

/// The `PORTAL_ROUTES` value to set (what worked, plus placeholders for
/// what the portal does not serve), or `None` when the defaults fit.
fn routes_to_set(p: &Probe) -> Option<BTreeMap<String, String>> {
    let mut set = p.overrides.clone();
    for route in &p.routes_missing {
        set.insert(route.to_string(), "<the path your portal uses>".into());
    }
    (!set.is_empty()).then_some(set)
}

/// Field names the client should also read: (contract name, portal's name).
fn aliases(p: &Probe) -> Vec<(String, String)> {
    let mut v: Vec<(String, String)> = p
        .findings
        .iter()
        .filter_map(|f| match &f.found {
            Found::Renamed { name, .. } => Some((f.field.to_string(), name.clone())),
            _ => None,
        })
        .collect();
    v.sort();
    v.dedup();
    v
}

pub fn print(p: &Probe, exit: Exit, out: &Out) {
    let routes = routes_to_set(p);
    if out.json() {
        out.document(&json!({
            "url": p.url,
            "sign_in": p.sign_in,
            "fits": exit == Exit::Ok,
            "exit": exit.code(),
            "routes": p.calls,
            "fields": p.findings,
            "extra_fields": p.extra,
            "states": p.states.iter().map(|(s, known)| json!({"state": s, "in_contract": known})).collect::<Vec<_>>(),
            "client": p.client.iter().map(|(route, r)| match r {
                Ok(what) => json!({"route": route, "ok": true, "result": what}),
                Err(why) => json!({"route": route, "ok": false, "error": why}),
            }).collect::<Vec<_>>(),
            "notes": p.notes,
            "problems": p.problems,
            "set": {
                "PORTAL_ROUTES": routes,
                "field_aliases": aliases(p).iter().map(|(f, n)| json!({"field": f, "portal_name": n})).collect::<Vec<_>>(),
            },
        }));
        return;
    }
    let mut text = vec![
        format!(
            "Portal probe of {} (read-only: find, status, activities)",
            p.url
        ),
        format!("Signed in with: {}", p.sign_in),
        String::new(),
    ];
    let rows: Vec<Vec<String>> = p
        .calls
        .iter()
        .map(|c| {
            vec![
                c.route.to_string(),
                format!("{} {}", c.method, c.path),
                c.statuses_shown(),
                c.throttle_shown(),
            ]
        })
        .collect();
    text.push(table(
        &["ROUTE", "REQUEST", "HTTP", "THROTTLE HEADERS"],
        &rows,
    ));
    if !p.findings.is_empty() {
        text.push(String::new());
        let rows: Vec<Vec<String>> = p
            .findings
            .iter()
            .map(|f| {
                vec![
                    f.object.clone(),
                    f.field.to_string(),
                    f.need.as_str().to_string(),
                    f.shown(),
                    f.verdict(),
                ]
            })
            .collect();
        text.push(table(
            &["ANSWER", "FIELD", "CONTRACT", "PORTAL", "CLIENT"],
            &rows,
        ));
    }
    if !p.extra.is_empty() {
        text.push(String::new());
        text.push("Also sent (not in the contract):".into());
        for (what, names) in &p.extra {
            text.push(format!("  {what}: {}", names.join(", ")));
        }
    }
    if !p.states.is_empty() {
        let states: Vec<String> = p
            .states
            .iter()
            .map(|(s, known)| {
                if *known {
                    s.clone()
                } else {
                    format!("{s} (not in the contract)")
                }
            })
            .collect();
        text.push(format!("States seen: {}", states.join(", ")));
    }
    if !p.client.is_empty() {
        text.push(String::new());
        text.push("The client itself (cloudapps::portal::PortalClient, read-only):".into());
        for (route, r) in &p.client {
            match r {
                Ok(what) => text.push(format!("  {route:<11} ok: {what}")),
                Err(why) => text.push(format!("  {route:<11} FAILED: {why}")),
            }
        }
    }
    if !p.notes.is_empty() {
        text.push(String::new());
        text.push("Notes:".into());
        text.extend(p.notes.iter().map(|n| format!("  - {n}")));
    }
    text.push(String::new());
    text.push(match exit {
        Exit::Ok => "Verdict: the client can work with this portal's answers.".to_string(),
        Exit::DoesNotHold => format!(
            "Verdict: the portal's answers do NOT fit the client ({} problem(s)).",
            p.problems.len()
        ),
        Exit::Usage => "Verdict: not checked: the portal refused the credentials.".to_string(),
        Exit::Unreachable => {
            "Verdict: not checked: the portal could not be reached (or stayed throttled)."
                .to_string()
        }
    });
    if !p.problems.is_empty() {
        text.push("Problems:".into());
        text.extend(p.problems.iter().map(|n| format!("  - {n}")));
    }
    text.push("What to set:".into());
    let fields = aliases(p);
    match &routes {
        Some(set) => text.push(format!(
            "  PORTAL_ROUTES='{}'",
            serde_json::to_string(set).unwrap_or_default()
        )),
        None => text.push("  PORTAL_ROUTES: nothing (the contract's default paths)".into()),
    }
    if fields.is_empty() {
        text.push("  field names: nothing (the client reads every name the portal sent)".into());
    } else {
        for (field, name) in fields {
            text.push(format!(
                "  field {field}: the portal names it {name}: add #[serde(alias = \"{name}\")] to it in functions/src/portal/wire.rs"
            ));
        }
    }
    out.line(&text.join("\n"));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_to_set_merge_overrides_and_missing_routes() {
        let mut p = Probe::default();
        assert!(routes_to_set(&p).is_none());
        p.overrides.insert("status".into(), "/x/{id}/".into());
        p.routes_missing.push("find");
        let set = routes_to_set(&p).unwrap();
        assert_eq!(set["status"], "/x/{id}/");
        assert_eq!(set["find"], "<the path your portal uses>");
    }
}
