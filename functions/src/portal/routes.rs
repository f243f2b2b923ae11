//! The portal's routes, in one place (docs/portal-contract.md, "Routes"):
//! each [`Route`] has a name and a default path. App connector routes are
//! not publicly documented, so any path can be overridden by name
//! (`PORTAL_ROUTES`, a JSON object); an unknown name is refused with the
//! list of known ones.

use std::collections::BTreeMap;

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};

/// One route of the portal contract.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Route {
    /// List the AWS instances (paged, filtered).
    Find,
    Create,
    Update,
    /// Start the portal's "Test API".
    Test,
    TestResult,
    Status,
    Disable,
    /// The documented activities API.
    Activities,
}

impl Route {
    /// Every route, in the contract's order.
    pub const ALL: [Route; 8] = [
        Route::Find,
        Route::Create,
        Route::Update,
        Route::Test,
        Route::TestResult,
        Route::Status,
        Route::Disable,
        Route::Activities,
    ];

    /// The name used in `PORTAL_ROUTES`, the logs and the errors.
    pub fn name(self) -> &'static str {
        match self {
            Route::Find => "find",
            Route::Create => "create",
            Route::Update => "update",
            Route::Test => "test",
            Route::TestResult => "test_result",
            Route::Status => "status",
            Route::Disable => "disable",
            Route::Activities => "activities",
        }
    }

    /// The path the contract assumes (`{id}`: instance, `{testId}`: test).
    pub fn default_path(self) -> &'static str {
        match self {
            Route::Find => "/cas/api/v1/app_connectors/",
            Route::Create => "/cas/api/v1/app_connectors/create/",
            Route::Update => "/cas/api/v1/app_connectors/{id}/update/",
            Route::Test => "/cas/api/v1/app_connectors/{id}/test/",
            Route::TestResult => "/cas/api/v1/app_connectors/{id}/test/{testId}/",
            Route::Status => "/cas/api/v1/app_connectors/{id}/",
            Route::Disable => "/cas/api/v1/app_connectors/{id}/disable/",
            // Documented: https://learn.microsoft.com/defender-cloud-apps/api-activities
            Route::Activities => "/api/v1/activities/",
        }
    }

    pub fn from_name(name: &str) -> Option<Route> {
        Route::ALL.into_iter().find(|r| r.name() == name)
    }

    /// The names of every route, for errors and help.
    pub fn names() -> Vec<&'static str> {
        Route::ALL.iter().map(|r| r.name()).collect()
    }
}

/// Ids go into a path segment: everything but unreserved characters is escaped.
const SEGMENT: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'_').remove(b'.');
const PLACEHOLDERS: [&str; 2] = ["{id}", "{testId}"];

/// The path of every route: the defaults, with overrides.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Routes(BTreeMap<Route, String>);

impl Default for Routes {
    fn default() -> Self {
        Self(
            Route::ALL
                .iter()
                .map(|r| (*r, r.default_path().to_string()))
                .collect(),
        )
    }
}

impl Routes {
    /// The defaults with `overrides` (a JSON object `{"name": "/path/"}`)
    /// applied. The error says what is wrong, without the variable's name.
    pub fn with_overrides(overrides: &str) -> Result<Self, String> {
        let mut routes = Self::default();
        if overrides.trim().is_empty() {
            return Ok(routes);
        }
        let map: BTreeMap<String, String> = serde_json::from_str(overrides)
            .map_err(|e| format!("not a JSON object of strings ({e})"))?;
        for (name, path) in map {
            let route = Route::from_name(&name).ok_or_else(|| {
                format!(
                    "unknown route {name:?}; the routes are {}",
                    Route::names().join(", ")
                )
            })?;
            if !path.starts_with('/') {
                return Err(format!("the path of {name} must start with /"));
            }
            for placeholder in PLACEHOLDERS {
                if route.default_path().contains(placeholder) && !path.contains(placeholder) {
                    return Err(format!("the path of {name} must hold {placeholder}"));
                }
            }
            routes.0.insert(route, path);
        }
        Ok(routes)
    }

    /// The path of `route` with its placeholders filled in.
    pub fn path(&self, route: Route, id: &str, test_id: &str) -> String {
        let template = self
            .0
            .get(&route)
            .map_or(route.default_path(), String::as_str);
        template
            .replace("{id}", &utf8_percent_encode(id, SEGMENT).to_string())
            .replace(
                "{testId}",
                &utf8_percent_encode(test_id, SEGMENT).to_string(),
            )
    }

    /// The routes whose path differs from the default, by name (what
    /// `PORTAL_ROUTES` would hold).
    pub fn overrides(&self) -> BTreeMap<&'static str, &str> {
        self.0
            .iter()
            .filter(|(r, p)| r.default_path() != p.as_str())
            .map(|(r, p)| (r.name(), p.as_str()))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_fill_and_escape_ids() {
        let r = Routes::default();
        assert_eq!(
            r.path(Route::TestResult, "a/b", "t 1"),
            "/cas/api/v1/app_connectors/a%2Fb/test/t%201/"
        );
        assert_eq!(r.path(Route::Find, "", ""), "/cas/api/v1/app_connectors/");
        for route in Route::ALL {
            assert_eq!(Route::from_name(route.name()), Some(route));
        }
    }

    #[test]
    fn overrides_are_checked_and_an_unknown_name_lists_the_known_ones() {
        let r = Routes::with_overrides(r#"{"create": "/x/new/", "status": "/x/{id}"}"#).unwrap();
        assert_eq!(r.path(Route::Create, "", ""), "/x/new/");
        assert_eq!(r.path(Route::Status, "7", ""), "/x/7");
        assert_eq!(
            r.path(Route::Disable, "7", ""),
            "/cas/api/v1/app_connectors/7/disable/"
        );
        assert_eq!(
            r.overrides(),
            BTreeMap::from([("create", "/x/new/"), ("status", "/x/{id}")])
        );
        let unknown = Routes::with_overrides(r#"{"nope": "/x/"}"#).unwrap_err();
        assert!(
            unknown.contains("\"nope\"")
                && unknown.contains(
                    "find, create, update, test, test_result, status, disable, activities"
                ),
            "{unknown}"
        );
        for bad in [r#"{"status": "/x/"}"#, r#"{"find": "x/"}"#, r#"["find"]"#] {
            assert!(Routes::with_overrides(bad).is_err(), "{bad}");
        }
    }
}
