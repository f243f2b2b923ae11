//! `cloudapps org status`: the organization as the hub's table records it
//! (DynamoDB Scan, with your credentials in the hub account): one line per
//! member account, the counts per status. Exit 1 when any account is in
//! error. Reads no secret and calls no portal.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use cloudapps::hub::table::{Row, Table};
use cloudapps::hub_tags::Status;

use crate::aws::Stack;
use crate::cli::OrgStatusArgs;
use crate::out::{Out, age, now_secs, table, when};
use crate::outcome::{Exit, Failure, Outcome};

pub async fn status(args: &OrgStatusArgs, region: Option<&str>, out: &Out) -> Outcome {
    let sdk = crate::aws::sdk(region).await?;
    let name = match (&args.table, &args.stack) {
        (Some(t), _) => t.clone(),
        (None, Some(stack)) => {
            out.progress("reading the hub's stack");
            let cfn = aws_sdk_cloudformation::Client::new(&sdk);
            let hub = Stack::describe(&cfn, stack).await?;
            match hub.output("TableName") {
                "" => {
                    return Err(Failure::usage(format!(
                        "the stack {stack} has no TableName output: is it the hub's stack (hub-template.yaml)?"
                    )));
                }
                t => t.to_string(),
            }
        }
        (None, None) => return Err(Failure::usage("give --table or --stack")),
    };
    out.progress("reading the hub's table");
    let rows = Table::new(aws_sdk_dynamodb::Client::new(&sdk), &name)
        .rows()
        .await
        .map_err(|e| {
            let text = e.to_string();
            let unreachable = ["dispatch failure", "timeout", "HTTP 5"]
                .iter()
                .any(|w| text.contains(w));
            Failure {
                exit: if unreachable {
                    Exit::Unreachable
                } else {
                    Exit::Usage
                },
                message: format!("the hub's table {name}: {text}"),
            }
        })?;
    let report = Report::of(&rows, now_secs());
    if out.json() {
        out.document(&report.json(&name));
    } else {
        out.line(&report.text());
    }
    Ok(if report.in_error() {
        Exit::DoesNotHold
    } else {
        Exit::Ok
    })
}

/// The table's rows, as printed.
struct Report {
    lines: Vec<Value>,
    counts: BTreeMap<&'static str, usize>,
}

impl Report {
    fn of(rows: &BTreeMap<String, Row>, now: i64) -> Self {
        let mut counts: BTreeMap<&'static str, usize> =
            Status::ALL.iter().map(|s| (s.as_str(), 0)).collect();
        let lines = rows
            .values()
            .map(|r| {
                *counts.entry(r.status.as_str()).or_default() += 1;
                json!({
                    "account": r.account,
                    "region": r.region,
                    "name": r.name,
                    "status": r.status.as_str(),
                    "instance": r.instance,
                    "key_id": r.key_id,
                    "key_age_seconds": r.key_created.map(|c| now - c / 1000),
                    "last_test": r.last_test.map(|t| when(t / 1000)),
                    "detail": r.detail,
                    "updated": when(r.updated / 1000),
                })
            })
            .collect();
        Self { lines, counts }
    }

    fn in_error(&self) -> bool {
        self.counts
            .get(Status::Error.as_str())
            .copied()
            .unwrap_or(0)
            > 0
    }

    fn text(&self) -> String {
        let text = |v: &Value| v.as_str().unwrap_or("-").to_string();
        let rows: Vec<Vec<String>> = self
            .lines
            .iter()
            .map(|l| {
                vec![
                    text(&l["account"]),
                    text(&l["region"]),
                    text(&l["status"]),
                    text(&l["instance"]),
                    l["key_age_seconds"].as_i64().map_or("-".into(), age),
                    text(&l["last_test"]),
                    match l["detail"].as_str() {
                        Some("") | None => "-".into(),
                        Some(d) => d.to_string(),
                    },
                ]
            })
            .collect();
        let header = [
            "ACCOUNT",
            "REGION",
            "STATUS",
            "INSTANCE",
            "KEY AGE",
            "LAST TEST",
            "DETAIL",
        ];
        let counts: Vec<String> = self
            .counts
            .iter()
            .map(|(s, n)| format!("{s} {n}"))
            .collect();
        format!(
            "{}\n\n{} accounts: {}",
            table(&header, &rows),
            self.lines.len(),
            counts.join(", ")
        )
    }

    fn json(&self, table: &str) -> Value {
        json!({
            "table": table,
            "accounts": self.lines,
            "counts": self.counts,
            "healthy": !self.in_error(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_and_lines_come_from_the_rows() {
        let mut ok = Row::new("000000000001", "us-east-1");
        ok.status = Status::Connected;
        ok.instance = Some("i-1".into());
        ok.key_created = Some(1_000_000);
        ok.last_test = Some(2_000_000);
        let mut bad = Row::new("000000000002", "us-east-1");
        bad.status = Status::Error;
        bad.detail = "the portal's test failed: trail".into();
        let rows = [ok, bad]
            .into_iter()
            .map(|r| (r.account.clone(), r))
            .collect();
        let report = Report::of(&rows, 1_000 + 86_400 * 3);
        assert!(report.in_error());
        let text = report.text();
        assert!(
            text.contains("connected 1") && text.contains("error 1"),
            "{text}"
        );
        assert!(text.contains("3 days") && text.contains("trail"), "{text}");
        assert_eq!(report.json("t")["healthy"], false);
    }
}
