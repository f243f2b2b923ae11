//! `cloudapps status --stack`: the connector's state from the stack's
//! outputs, the secret's description and tags (DescribeSecret: never its
//! value), the user's keys (ListAccessKeys) and the health function's last
//! run line (CloudWatch Logs). Exit 1 when it shows a problem.

use aws_sdk_secretsmanager::operation::describe_secret::DescribeSecretOutput;
use serde_json::{Map, Value, json};

use cloudapps::hub_tags::{KEY_ID, PENDING_KEY_ID};
use cloudapps::key_store::{AWSCURRENT, AWSPENDING};

use crate::aws::Stack;
use crate::cli::StackArgs;
use crate::logs::{self, LastRun};
use crate::out::{Out, age, now_secs, when};
use crate::outcome::{self, Exit, Failure, Outcome};

/// A key of the user, as IAM lists it.
struct Key {
    id: String,
    status: String,
    created: Option<i64>,
}

pub async fn run(args: &StackArgs, region: Option<&str>, out: &Out) -> Outcome {
    let sdk = crate::aws::sdk(region).await?;
    out.progress("reading the stack");
    let cfn = aws_sdk_cloudformation::Client::new(&sdk);
    let stack = Stack::describe(&cfn, &args.stack).await?;
    let mut problems: Vec<String> = Vec::new();
    let mut notes: Vec<String> = crate::aws::OUTPUTS
        .iter()
        .filter(|o| !stack.outputs.contains_key(**o))
        .map(|o| format!("the stack has no {o} output (an older template?)"))
        .collect();

    out.progress("reading the user's access keys");
    let user_arn = stack.output("UserArn").to_string();
    let user_name = user_arn.rsplit('/').next().unwrap_or_default().to_string();
    let keys = list_keys(&aws_sdk_iam::Client::new(&sdk), &user_name, &mut problems).await?;
    let active: Vec<&Key> = keys.iter().filter(|k| k.status == "Active").collect();

    out.progress("reading the secret's description (never its value)");
    let secrets = aws_sdk_secretsmanager::Client::new(&sdk);
    let secret = secrets
        .describe_secret()
        .secret_id(stack.output("SecretArn"))
        .send()
        .await
        .map_err(outcome::aws("secretsmanager:DescribeSecret"))?;
    let rotation = rotation(&secret, stack.parameter("RotationDays"));
    let pending = rotation["pending_version"].is_string();
    match active.len() {
        0 if !user_name.is_empty() && !keys.is_empty() => {
            problems.push(format!("the user {user_name} has no active key"))
        }
        0 => {}
        1 => {}
        n if pending && n == 2 => notes.push("two active keys: a rotation is under way".into()),
        n => problems.push(format!(
            "the user {user_name} has {n} active keys: the portal holds one; run `cloudapps check` to see which is stray"
        )),
    }
    if !rotation["enabled"].as_bool().unwrap_or(false) {
        problems.push("rotation is not enabled on the secret: the key lives forever (see the stack's ConnectorSecretRotation)".into());
    }
    if let (Some(days), Some(key)) = (rotation["every_days"].as_i64(), active.first()) {
        let key_age = key.created.map(|c| now_secs() - c).unwrap_or_default();
        if !pending && key_age > (days + 2) * 86_400 {
            problems.push(format!(
                "the key {} is {} old, past the {days} days of the rotation: run `cloudapps rotate --stack {}`",
                key.id,
                age(key_age),
                stack.name
            ));
        }
    }
    let coverage = stack.output("CloudTrailCoverage");
    if matches!(coverage, "not-covered" | "unknown") {
        problems.push(format!(
            "CloudTrail coverage: {coverage}: the portal sees no activity of this account"
        ));
    }

    out.progress("reading the last health run");
    let group = stack.log_group("health");
    let last = logs::last_health_run(&aws_sdk_cloudwatchlogs::Client::new(&sdk), &group).await;
    let health = match &last {
        LastRun::Found { at, line } => {
            if line.get("healthy") != Some(&Value::Bool(true)) {
                problems.push(format!(
                    "the last health run ({}) failed: {}",
                    when(at / 1000),
                    line.get("message")
                        .and_then(Value::as_str)
                        .unwrap_or("see its line")
                ));
            }
            json!({"at": when(at / 1000), "log_group": group, "healthy": line.get("healthy"), "message": line.get("message"), "checks": line.get("checks")})
        }
        LastRun::NoneYet => {
            notes.push(format!("no health run line in {group} yet"));
            Value::Null
        }
        LastRun::Unreadable(why) => {
            notes.push(format!(
                "the health log group {group} could not be read: {why}"
            ));
            Value::Null
        }
    };

    let tags: Map<String, Value> = secret
        .tags()
        .iter()
        .filter_map(|t| Some((t.key()?.to_string(), json!(t.value().unwrap_or_default()))))
        .filter(|(k, _)| k.starts_with("cloudapps:"))
        .collect();
    let keys_json: Vec<Value> = keys
        .iter()
        .map(|k| json!({"id": k.id, "status": k.status, "created": k.created.map(when), "age_days": k.created.map(|c| (now_secs() - c) / 86_400)}))
        .collect();
    let exit = if problems.is_empty() {
        Exit::Ok
    } else {
        Exit::DoesNotHold
    };
    let doc = json!({
        "stack": {"name": stack.name, "id": stack.id, "status": stack.status},
        "user": {"arn": user_arn, "name": user_name},
        "keys": keys_json,
        "rotation": rotation,
        "trail": {"arn": stack.output("TrailArn"), "coverage": coverage},
        "portal": {
            "mode": stack.parameter("PortalMode"),
            "status": stack.output("PortalStatus"),
            "instance": stack.output("PortalInstance"),
            "url": stack.parameter("PortalUrl"),
        },
        "notification_topic": stack.output("NotificationTopicArn"),
        "secret": {"arn": secret.arn(), "tags": tags},
        "last_health_run": health,
        "problems": problems,
        "notes": notes,
        "healthy": exit == Exit::Ok,
    });
    if out.json() {
        out.document(&doc);
    } else {
        out.line(&render(&doc, &keys));
    }
    Ok(exit)
}

async fn list_keys(
    iam: &aws_sdk_iam::Client,
    user: &str,
    problems: &mut Vec<String>,
) -> Result<Vec<Key>, Failure> {
    if user.is_empty() {
        problems
            .push("the stack has no UserArn output: the connector did not set the user up".into());
        return Ok(Vec::new());
    }
    let listed = iam.list_access_keys().user_name(user).send().await;
    let listed = match listed {
        Ok(l) => l,
        Err(e)
            if e.as_service_error()
                .is_some_and(|e| e.is_no_such_entity_exception()) =>
        {
            problems.push(format!(
                "the user {user} does not exist: run an Update of the stack"
            ));
            return Ok(Vec::new());
        }
        Err(e) => return Err(outcome::aws("iam:ListAccessKeys")(e)),
    };
    Ok(listed
        .access_key_metadata()
        .iter()
        .map(|k| Key {
            id: k.access_key_id().unwrap_or_default().to_string(),
            status: k
                .status()
                .map(|s| s.as_str().to_string())
                .unwrap_or_default(),
            created: k.create_date().map(|d| d.secs()),
        })
        .collect())
}

fn rotation(secret: &DescribeSecretOutput, rotation_days: &str) -> Value {
    let stages = secret.version_ids_to_stages().cloned().unwrap_or_default();
    let with = |stage: &str| {
        stages
            .iter()
            .find(|(_, s)| s.iter().any(|x| x == stage))
            .map(|(v, _)| v.clone())
    };
    let current = with(AWSCURRENT);
    let pending = with(AWSPENDING).filter(|p| Some(p) != current.as_ref());
    let every = secret
        .rotation_rules()
        .and_then(|r| r.automatically_after_days())
        .or_else(|| rotation_days.parse().ok());
    json!({
        "enabled": secret.rotation_enabled().unwrap_or(false),
        "every_days": every,
        "last_rotated": secret.last_rotated_date().map(|d| when(d.secs())),
        "next_rotation": secret.next_rotation_date().map(|d| when(d.secs())),
        "current_version": current,
        "pending_version": pending,
        "function": secret.rotation_lambda_arn(),
    })
}

/// A check's place in the report's order.
pub fn order(name: &str) -> usize {
    cloudapps::health::Check::ALL
        .iter()
        .position(|c| c.name() == name)
        .unwrap_or(usize::MAX)
}

fn text(v: &Value) -> String {
    match v {
        Value::String(s) if !s.is_empty() => s.clone(),
        Value::Number(n) => n.to_string(),
        Value::Bool(b) => b.to_string(),
        _ => "-".into(),
    }
}

fn render(doc: &Value, keys: &[Key]) -> String {
    let mut rows: Vec<(String, String)> = Vec::new();
    let s = &doc["stack"];
    rows.push((
        "Stack".into(),
        format!("{} ({})", text(&s["name"]), text(&s["status"])),
    ));
    rows.push(("User".into(), text(&doc["user"]["arn"])));
    let tags = &doc["secret"]["tags"];
    if keys.is_empty() {
        rows.push(("Access key".into(), "none".into()));
    }
    for k in keys {
        let age_text = k.created.map_or(String::new(), |c| {
            format!(", {} old (created {})", age(now_secs() - c), when(c))
        });
        // The connector tags the secret with the key ids it holds (never a value).
        let held = if tags[KEY_ID] == k.id.as_str() {
            ", in AWSCURRENT"
        } else if tags[PENDING_KEY_ID] == k.id.as_str() {
            ", in AWSPENDING"
        } else {
            ""
        };
        rows.push((
            "Access key".into(),
            format!("{} {}{held}{age_text}", k.id, k.status),
        ));
    }
    let r = &doc["rotation"];
    let mut rotation = if r["enabled"] == true {
        format!("enabled, every {} days", text(&r["every_days"]))
    } else {
        "NOT enabled".to_string()
    };
    rotation.push_str(&format!(
        "; last {}; next {}",
        text(&r["last_rotated"]),
        text(&r["next_rotation"])
    ));
    if r["pending_version"].is_string() {
        rotation.push_str(&format!(
            "; under way (AWSPENDING on {})",
            text(&r["pending_version"])
        ));
    }
    rows.push(("Rotation".into(), rotation));
    let t = &doc["trail"];
    rows.push((
        "Trail".into(),
        format!("{} ({})", text(&t["arn"]), text(&t["coverage"])),
    ));
    let p = &doc["portal"];
    rows.push((
        "Portal".into(),
        format!(
            "{}: {} (at the last deploy), instance {}, name {}, connections {}",
            text(&p["mode"]),
            text(&p["status"]),
            text(&p["instance"]),
            text(&tags["cloudapps:connector-name"]),
            text(&tags["cloudapps:connections"]),
        ),
    ));
    rows.push(("Topic".into(), text(&doc["notification_topic"])));
    let h = &doc["last_health_run"];
    if h.is_null() {
        rows.push(("Last health".into(), "none found".into()));
    } else {
        rows.push((
            "Last health".into(),
            format!("{}: {}", text(&h["at"]), text(&h["message"])),
        ));
        if let Some(checks) = h["checks"].as_object() {
            let mut states: Vec<(usize, String)> = checks
                .iter()
                .map(|(name, c)| (order(name), format!("{name} {}", text(&c["state"]))))
                .collect();
            states.sort();
            let states: Vec<String> = states.into_iter().map(|(_, s)| s).collect();
            rows.push((String::new(), states.join(", ")));
        }
    }
    let list = |v: &Value| -> Vec<String> {
        v.as_array()
            .map(|a| a.iter().map(text).collect())
            .unwrap_or_default()
    };
    let problems = list(&doc["problems"]);
    if problems.is_empty() {
        rows.push(("Problems".into(), "none".into()));
    }
    for p in problems {
        rows.push(("Problem".into(), p));
    }
    for n in list(&doc["notes"]) {
        rows.push(("Note".into(), n));
    }
    let width = rows.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
    rows.iter()
        .map(|(k, v)| format!("{k:<width$}  {v}"))
        .collect::<Vec<_>>()
        .join("\n")
}
