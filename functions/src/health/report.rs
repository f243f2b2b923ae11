//! A run's report: every check's result, one sentence for people, and the
//! run's log line, a CloudWatch embedded metric format document (one metric
//! per check, and the count of failing ones), so that an alarm can notify
//! without any extra API call.

use serde_json::{Map, Value, json};

use super::check::{Check, CheckResult, State};
use crate::time::now_millis;

/// The CloudWatch namespace of the metrics (dimension `Stack`).
pub const NAMESPACE: &str = "DefenderForCloudApps/Connector";
/// The metric that counts the failing checks of a run.
pub const FAILING: &str = "FailingChecks";

/// One run: every check, in [`Check::ALL`] order.
#[derive(Clone, Debug)]
pub struct Report {
    pub stack_name: String,
    pub checks: Vec<CheckResult>,
    /// When the run started, milliseconds since the Unix epoch.
    pub at: u64,
}

impl Report {
    pub fn check(&self, check: Check) -> &CheckResult {
        self.checks
            .iter()
            .find(|c| c.check == check)
            .expect("every check is reported")
    }

    pub fn failing(&self) -> Vec<&'static str> {
        self.checks
            .iter()
            .filter(|c| c.state == State::Fail)
            .map(|c| c.check.name())
            .collect()
    }

    /// One sentence: all well, or which checks fail and why.
    pub fn summary(&self) -> String {
        let checked = self
            .checks
            .iter()
            .filter(|c| c.state != State::Skip)
            .count();
        let failing: Vec<String> = self
            .checks
            .iter()
            .filter(|c| c.state == State::Fail)
            .map(|c| format!("{}: {}", c.check.name(), c.detail))
            .collect();
        if failing.is_empty() {
            format!("connector health: all {checked} checks pass")
        } else {
            format!(
                "connector health: {} of {checked} checks fail. {}",
                failing.len(),
                failing.join(" | ")
            )
        }
    }

    /// The run's log line: a CloudWatch embedded metric format document
    /// (one metric per check, 1 when failing, 0 when passing, none when
    /// skipped; and [`FAILING`]), with each check's state and detail.
    pub fn log_line(&self) -> String {
        let mut metrics = Vec::new();
        let mut doc = Map::new();
        doc.insert("Stack".into(), json!(self.stack_name));
        for c in self.checks.iter().filter(|c| c.state != State::Skip) {
            metrics.push(json!({"Name": c.check.metric(), "Unit": "Count"}));
            doc.insert(
                c.check.metric().into(),
                json!(u8::from(c.state == State::Fail)),
            );
        }
        metrics.push(json!({"Name": FAILING, "Unit": "Count"}));
        let failing = self.failing();
        doc.insert(FAILING.into(), json!(failing.len()));
        doc.insert(
            "_aws".into(),
            json!({
                "Timestamp": self.at,
                "CloudWatchMetrics": [{
                    "Namespace": NAMESPACE,
                    "Dimensions": [["Stack"]],
                    "Metrics": metrics,
                }],
            }),
        );
        let level = if failing.is_empty() { "INFO" } else { "WARN" };
        doc.insert("level".into(), json!(level));
        doc.insert("message".into(), json!(self.summary()));
        doc.insert("healthy".into(), json!(failing.is_empty()));
        let checks: Map<String, Value> = self
            .checks
            .iter()
            .map(|c| {
                (
                    c.check.name().to_string(),
                    serde_json::to_value(c).unwrap_or_default(),
                )
            })
            .collect();
        doc.insert("checks".into(), Value::Object(checks));
        Value::Object(doc).to_string()
    }

    /// What the invocation returns: healthy or not, and each check's state.
    pub fn outcome(&self) -> Value {
        let states: Map<String, Value> = self
            .checks
            .iter()
            .map(|c| (c.check.name().to_string(), json!(c.state)))
            .collect();
        json!({"healthy": self.failing().is_empty(), "failing": self.failing(), "checks": states})
    }

    /// Every check failing for the same reason (a function that cannot run).
    pub fn all_failing(stack_name: String, why: &str) -> Self {
        Self {
            stack_name,
            at: now_millis(),
            checks: Check::ALL
                .into_iter()
                .map(|check| CheckResult {
                    check,
                    state: State::Fail,
                    detail: why.to_string(),
                    repaired: Vec::new(),
                    ms: 0,
                })
                .collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_log_line_is_an_embedded_metric_document() {
        let mut report = Report::all_failing("stack-1".into(), "why");
        report.checks[0].state = State::Pass;
        report.checks[5].state = State::Skip;
        let line = report.log_line();
        assert!(!line.contains('\n'));
        let doc: Value = serde_json::from_str(&line).unwrap();
        let directive = &doc["_aws"]["CloudWatchMetrics"][0];
        assert_eq!(directive["Namespace"], NAMESPACE);
        assert_eq!(directive["Dimensions"], json!([["Stack"]]));
        let names: Vec<&str> = directive["Metrics"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["Name"].as_str().unwrap())
            .collect();
        assert_eq!(
            names,
            [
                "UserPolicy",
                "AccessKey",
                "KeyRotation",
                "CloudTrail",
                "PortalStatus",
                FAILING
            ]
        );
        assert_eq!(Check::from_name("KeyRotation"), Some(Check::KeyRotation));
        for name in &names {
            assert!(doc[name].is_number(), "{name} has a value");
        }
        assert_eq!(
            (&doc["UserPolicy"], &doc["AccessKey"], &doc[FAILING]),
            (&json!(0), &json!(1), &json!(4))
        );
        assert!(doc.get("PortalActivity").is_none());
        assert_eq!(doc["Stack"], "stack-1");
        assert_eq!(doc["checks"]["PortalActivity"]["state"], "skip");
        assert_eq!(doc["healthy"], false);
    }
}
