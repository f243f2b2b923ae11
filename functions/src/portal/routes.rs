//! The portal's route paths, in one place (docs/portal-contract.md, "Routes").
//! App connector routes are not publicly documented: any path can be
//! overridden with `PORTAL_ROUTES`, a JSON object by route name.

use std::collections::BTreeMap;

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};

use crate::error::Error;

/// The route names and their default paths (`{id}`: instance, `{testId}`: test).
pub const DEFAULTS: [(&str, &str); 8] = [
    ("find", "/cas/api/v1/app_connectors/"),
    ("create", "/cas/api/v1/app_connectors/create/"),
    ("update", "/cas/api/v1/app_connectors/{id}/update/"),
    ("test", "/cas/api/v1/app_connectors/{id}/test/"),
    (
        "test_result",
        "/cas/api/v1/app_connectors/{id}/test/{testId}/",
    ),
    ("status", "/cas/api/v1/app_connectors/{id}/"),
    ("disable", "/cas/api/v1/app_connectors/{id}/disable/"),
    // Documented: https://learn.microsoft.com/defender-cloud-apps/api-activities
    ("activities", "/api/v1/activities/"),
];

/// Ids go into a path segment: everything but unreserved characters is escaped.
const SEGMENT: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'_').remove(b'.');

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Routes(BTreeMap<&'static str, String>);

impl Default for Routes {
    fn default() -> Self {
        Self(DEFAULTS.iter().map(|(k, v)| (*k, v.to_string())).collect())
    }
}

impl Routes {
    /// The defaults with `overrides` (a JSON object `{"name": "/path/"}`) applied.
    pub fn with_overrides(overrides: &str) -> Result<Self, Error> {
        let mut routes = Self::default();
        if overrides.trim().is_empty() {
            return Ok(routes);
        }
        let bad = |why: String| Error::Config(format!("PORTAL_ROUTES: {why}"));
        let map: BTreeMap<String, String> = serde_json::from_str(overrides)
            .map_err(|e| bad(format!("not a JSON object of strings ({e})")))?;
        for (name, path) in map {
            let Some((key, default)) = DEFAULTS.iter().find(|(k, _)| *k == name) else {
                let names: Vec<&str> = DEFAULTS.iter().map(|(k, _)| *k).collect();
                return Err(bad(format!("unknown route {name:?}; routes are {names:?}")));
            };
            if !path.starts_with('/') {
                return Err(bad(format!("the path of {name} must start with /")));
            }
            for placeholder in ["{id}", "{testId}"] {
                if default.contains(placeholder) && !path.contains(placeholder) {
                    return Err(bad(format!("the path of {name} must hold {placeholder}")));
                }
            }
            routes.0.insert(key, path);
        }
        Ok(routes)
    }

    /// The path of `name` with its placeholders filled in.
    pub fn path(&self, name: &str, id: &str, test_id: &str) -> String {
        let template = self.0.get(name).map(String::as_str).unwrap_or("/");
        template
            .replace("{id}", &utf8_percent_encode(id, SEGMENT).to_string())
            .replace(
                "{testId}",
                &utf8_percent_encode(test_id, SEGMENT).to_string(),
            )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_fill_and_escape_ids() {
        let r = Routes::default();
        assert_eq!(
            r.path("test_result", "a/b", "t 1"),
            "/cas/api/v1/app_connectors/a%2Fb/test/t%201/"
        );
        assert_eq!(r.path("find", "", ""), "/cas/api/v1/app_connectors/");
    }

    #[test]
    fn overrides_are_checked() {
        let r = Routes::with_overrides(r#"{"create": "/x/new/", "status": "/x/{id}"}"#).unwrap();
        assert_eq!(r.path("create", "", ""), "/x/new/");
        assert_eq!(r.path("status", "7", ""), "/x/7");
        assert_eq!(
            r.path("disable", "7", ""),
            "/cas/api/v1/app_connectors/7/disable/"
        );
        for bad in [
            r#"{"nope": "/x/"}"#,
            r#"{"status": "/x/"}"#,
            r#"{"find": "x/"}"#,
            r#"["find"]"#,
        ] {
            let err = Routes::with_overrides(bad).unwrap_err().to_string();
            assert!(err.contains("PORTAL_ROUTES"), "{err}");
        }
    }
}
