//! Which route a request is for: the portal routes (path templates with
//! `{id}` and `{testId}`, overridable by name), the Entra token endpoint and
//! the emulator's own control routes.

use std::collections::BTreeMap;
use std::io;

/// The portal routes: name, method and default path, as in the contract.
pub const DEFAULT_ROUTES: [(&str, &str, &str); 8] = [
    ("find", "POST", "/cas/api/v1/app_connectors/"),
    ("create", "POST", "/cas/api/v1/app_connectors/create/"),
    ("update", "POST", "/cas/api/v1/app_connectors/{id}/update/"),
    ("test", "POST", "/cas/api/v1/app_connectors/{id}/test/"),
    (
        "test_result",
        "GET",
        "/cas/api/v1/app_connectors/{id}/test/{testId}/",
    ),
    ("status", "GET", "/cas/api/v1/app_connectors/{id}/"),
    (
        "disable",
        "POST",
        "/cas/api/v1/app_connectors/{id}/disable/",
    ),
    // The documented activities API (the health check's evidence of data).
    ("activities", "POST", "/api/v1/activities/"),
];

/// The name under which requests to the token endpoint are recorded and
/// faults are aimed at it.
pub const TOKEN: &str = "token";

#[derive(Debug, PartialEq)]
pub(crate) enum Target {
    Portal {
        route: &'static str,
        id: Option<String>,
        test_id: Option<String>,
    },
    /// `POST /{tenant}/oauth2/v2.0/token`
    Token {
        tenant: String,
    },
    Control(Control),
    Unknown,
}

#[derive(Debug, PartialEq)]
pub(crate) enum Control {
    Instances,
    Tests,
    Faults,
}

impl Target {
    /// The route name a fault can aim at (portal routes and "token").
    pub(crate) fn name(&self) -> Option<&str> {
        match self {
            Target::Portal { route, .. } => Some(route),
            Target::Token { .. } => Some(TOKEN),
            Target::Control(_) | Target::Unknown => None,
        }
    }
}

#[derive(Debug, PartialEq)]
enum Segment {
    Literal(String),
    Id,
    TestId,
}

struct Route {
    name: &'static str,
    method: &'static str,
    segments: Vec<Segment>,
}

pub(crate) struct Routes(Vec<Route>);

impl Routes {
    /// The default routes with `overrides` (route name → path template).
    pub(crate) fn new(overrides: &BTreeMap<String, String>) -> io::Result<Routes> {
        let invalid = |msg: String| io::Error::new(io::ErrorKind::InvalidInput, msg);
        if let Some(name) = overrides
            .keys()
            .find(|k| !DEFAULT_ROUTES.iter().any(|(n, _, _)| n == k))
        {
            return Err(invalid(format!("unknown route name {name:?}")));
        }
        let mut routes = Vec::new();
        for (name, method, default) in DEFAULT_ROUTES {
            let template = overrides.get(name).map_or(default, String::as_str);
            let segments = parse(template).map_err(|e| invalid(format!("route {name}: {e}")))?;
            let has = |s: Segment| segments.contains(&s);
            let needs_id = !matches!(name, "find" | "create" | "activities");
            if needs_id != has(Segment::Id) || (name == "test_result") != has(Segment::TestId) {
                return Err(invalid(format!(
                    "route {name}: {template:?} has the wrong placeholders"
                )));
            }
            routes.push(Route {
                name,
                method,
                segments,
            });
        }
        Ok(Routes(routes))
    }

    pub(crate) fn classify(&self, method: &str, path: &str) -> Target {
        if let Some(control) = path.strip_prefix("/_emulator/") {
            return match (method, control) {
                ("GET", "instances") => Target::Control(Control::Instances),
                ("GET", "tests") => Target::Control(Control::Tests),
                ("POST", "faults") => Target::Control(Control::Faults),
                _ => Target::Unknown,
            };
        }
        // The portal route that matches with the most literal segments, so
        // that `.../create/` wins over `.../{id}/` whatever the overrides.
        let best = self
            .0
            .iter()
            .filter(|r| r.method == method)
            .filter_map(|r| matches(r, path).map(|captures| (r, captures)))
            .max_by_key(|(r, _)| {
                r.segments
                    .iter()
                    .filter(|s| matches!(s, Segment::Literal(_)))
                    .count()
            });
        if let Some((route, (id, test_id))) = best {
            return Target::Portal {
                route: route.name,
                id,
                test_id,
            };
        }
        match path.split('/').collect::<Vec<_>>()[..] {
            ["", tenant, "oauth2", "v2.0", "token"] if method == "POST" && !tenant.is_empty() => {
                Target::Token {
                    tenant: tenant.to_string(),
                }
            }
            _ => Target::Unknown,
        }
    }
}

fn parse(template: &str) -> Result<Vec<Segment>, String> {
    if !template.starts_with('/') {
        return Err(format!("{template:?} does not start with /"));
    }
    template
        .split('/')
        .map(|s| match s {
            "{id}" => Ok(Segment::Id),
            "{testId}" => Ok(Segment::TestId),
            _ if s.contains(['{', '}']) => Err(format!("unknown placeholder in {s:?}")),
            _ => Ok(Segment::Literal(s.to_string())),
        })
        .collect()
}

/// The captured `{id}` and `{testId}` when `path` matches the route.
fn matches(route: &Route, path: &str) -> Option<(Option<String>, Option<String>)> {
    let parts: Vec<&str> = path.split('/').collect();
    if parts.len() != route.segments.len() {
        return None;
    }
    let (mut id, mut test_id) = (None, None);
    for (segment, part) in route.segments.iter().zip(parts) {
        match segment {
            Segment::Literal(l) if l == part => {}
            Segment::Literal(_) => return None,
            _ if part.is_empty() => return None,
            Segment::Id => id = Some(part.to_string()),
            Segment::TestId => test_id = Some(part.to_string()),
        }
    }
    Some((id, test_id))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn portal(route: &'static str, id: Option<&str>, test_id: Option<&str>) -> Target {
        Target::Portal {
            route,
            id: id.map(str::to_string),
            test_id: test_id.map(str::to_string),
        }
    }

    #[test]
    fn default_routes_are_told_apart() {
        let routes = Routes::new(&BTreeMap::new()).unwrap();
        let base = "/cas/api/v1/app_connectors";
        let cases = [
            ("POST", format!("{base}/"), portal("find", None, None)),
            (
                "POST",
                format!("{base}/create/"),
                portal("create", None, None),
            ),
            (
                "POST",
                format!("{base}/a1/update/"),
                portal("update", Some("a1"), None),
            ),
            (
                "POST",
                format!("{base}/a1/test/"),
                portal("test", Some("a1"), None),
            ),
            (
                "GET",
                format!("{base}/a1/test/t9/"),
                portal("test_result", Some("a1"), Some("t9")),
            ),
            (
                "GET",
                format!("{base}/a1/"),
                portal("status", Some("a1"), None),
            ),
            (
                "POST",
                format!("{base}/a1/disable/"),
                portal("disable", Some("a1"), None),
            ),
            (
                "POST",
                "/api/v1/activities/".to_string(),
                portal("activities", None, None),
            ),
            ("GET", format!("{base}/a1/update/"), Target::Unknown),
            ("POST", format!("{base}/a1/update"), Target::Unknown),
            ("GET", format!("{base}//"), Target::Unknown),
        ];
        for (method, path, want) in cases {
            assert_eq!(routes.classify(method, &path), want, "{method} {path}");
        }
    }

    #[test]
    fn token_and_control_routes() {
        let routes = Routes::new(&BTreeMap::new()).unwrap();
        assert_eq!(
            routes.classify("POST", "/tenant-1/oauth2/v2.0/token"),
            Target::Token {
                tenant: "tenant-1".into()
            }
        );
        assert_eq!(
            routes.classify("GET", "/tenant-1/oauth2/v2.0/token"),
            Target::Unknown
        );
        assert_eq!(
            routes.classify("POST", "/_emulator/faults"),
            Target::Control(Control::Faults)
        );
        assert_eq!(routes.classify("GET", "/_emulator/faults"), Target::Unknown);
    }

    #[test]
    fn overrides_replace_paths_by_name() {
        let overrides = BTreeMap::from([
            ("create".to_string(), "/x/new".to_string()),
            (
                "test_result".to_string(),
                "/x/results/{testId}/of/{id}".to_string(),
            ),
        ]);
        let routes = Routes::new(&overrides).unwrap();
        assert_eq!(
            routes.classify("POST", "/x/new"),
            portal("create", None, None)
        );
        assert_eq!(
            routes.classify("GET", "/x/results/t/of/i"),
            portal("test_result", Some("i"), Some("t"))
        );
        assert_eq!(
            routes.classify("POST", "/cas/api/v1/app_connectors/create/"),
            Target::Unknown
        );
    }

    #[test]
    fn bad_overrides_are_refused() {
        for (name, template) in [
            ("nope", "/x/"),
            ("status", "/x/"),
            ("find", "/x/{id}/"),
            ("test_result", "/x/{id}/"),
            ("update", "x/{id}/"),
            ("update", "/x/{other}/"),
        ] {
            let overrides = BTreeMap::from([(name.to_string(), template.to_string())]);
            assert!(Routes::new(&overrides).is_err(), "{name} {template}");
        }
    }
}
