//! How a policy document differs from the guide's, grant by grant: "adds
//! Allow iam:PassRole on *", "drops Allow cloudtrail:GetTrailStatus on *".

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

/// Each grant of a policy document: (effect, action, resource, condition).
fn grants(document: &Value) -> BTreeSet<(String, String, String, String)> {
    let statements = match &document["Statement"] {
        Value::Array(list) => list.clone(),
        one @ Value::Object(_) => vec![one.clone()],
        _ => Vec::new(),
    };
    let list = |v: &Value| -> Vec<String> {
        match v {
            Value::String(s) => vec![s.clone()],
            Value::Array(a) => a
                .iter()
                .filter_map(|x| x.as_str().map(str::to_string))
                .collect(),
            _ => Vec::new(),
        }
    };
    let mut out = BTreeSet::new();
    for s in statements {
        let effect = s["Effect"].as_str().unwrap_or("?").to_string();
        let actions = match s.get("NotAction") {
            Some(v) => list(v)
                .into_iter()
                .map(|a| format!("NotAction {a}"))
                .collect(),
            None => list(&s["Action"]),
        };
        let resources = match s.get("NotResource") {
            Some(v) => list(v)
                .into_iter()
                .map(|r| format!("NotResource {r}"))
                .collect(),
            None => list(&s["Resource"]),
        };
        let condition = s.get("Condition").map(Value::to_string).unwrap_or_default();
        for a in &actions {
            for r in &resources {
                out.insert((effect.clone(), a.clone(), r.clone(), condition.clone()));
            }
        }
    }
    out
}

/// How `actual` differs from `expected`: "adds Allow iam:CreateUser on *",
/// "drops Allow s3:GetBucketAcl on *". Empty when they grant the same.
pub fn policy_drift(expected: &Value, actual: &Value) -> Vec<String> {
    let (want, have) = (grants(expected), grants(actual));
    let mut out = Vec::new();
    for (verb, diff) in [("adds", &have - &want), ("drops", &want - &have)] {
        let mut grouped: BTreeMap<(String, String, String), Vec<String>> = BTreeMap::new();
        for (effect, action, resource, condition) in diff {
            grouped
                .entry((effect, resource, condition))
                .or_default()
                .push(action);
        }
        for ((effect, resource, condition), actions) in grouped {
            let when = if condition.is_empty() {
                String::new()
            } else {
                format!(" when {condition}")
            };
            out.push(format!(
                "{verb} {effect} {} on {resource}{when}",
                actions.join(" ")
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::iam_user;
    use serde_json::json;

    #[test]
    fn drift_names_added_and_dropped_grants() {
        let guide = iam_user::policy_document();
        assert!(policy_drift(&guide, &guide).is_empty());
        let mut changed = guide.clone();
        changed["Statement"][0]["Action"] = json!(["cloudtrail:DescribeTrails", "iam:Get*"]);
        changed["Statement"]
            .as_array_mut()
            .unwrap()
            .push(json!({"Effect": "Allow", "Action": ["iam:CreateUser", "iam:PassRole"], "Resource": "*"}));
        let drift = policy_drift(&guide, &changed);
        assert_eq!(drift.len(), 2, "{drift:?}");
        assert_eq!(drift[0], "adds Allow iam:CreateUser iam:PassRole on *");
        assert!(
            drift[1].starts_with("drops Allow cloudtrail:GetTrailStatus"),
            "{drift:?}"
        );
        assert!(!drift[1].contains("iam:Get*"), "{drift:?}");
        let conditioned = json!({"Statement": {"Effect": "Deny", "NotAction": "s3:*", "Resource": "*",
            "Condition": {"Bool": {"aws:MultiFactorAuthPresent": "false"}}}});
        let drift = policy_drift(&json!({}), &conditioned);
        assert_eq!(drift.len(), 1);
        assert!(
            drift[0].starts_with("adds Deny NotAction s3:* on * when"),
            "{drift:?}"
        );
    }
}
