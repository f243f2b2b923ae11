//! `cloudapps rotate --stack`: asks Secrets Manager to rotate the
//! connector's secret now (RotateSecret, with a token of its own), then
//! follows the rotation until AWSCURRENT moves to that version: the secret's
//! stages (DescribeSecret), the rotation function's "rotation step done" and
//! "rotation step failed" lines (its log group, when readable), and
//! Secrets Manager's RotationFailed event (CloudTrail, when readable).
//! Each step is printed as it is seen. Exit 1 when the rotation fails or
//! does not finish within `--timeout`.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use cloudapps::key_store::{AWSCURRENT, AWSPENDING, AWSPREVIOUS};

use crate::aws::Stack;
use crate::cli::RotateArgs;
use crate::logs::{StepFollower, StepLine};
use crate::out::{Out, when};
use crate::outcome::{self, Exit, Failure, Outcome};

/// Polls after a failure is seen before it is taken as the end.
const GRACE_POLLS: u32 = 2;
/// CloudTrail is asked for RotationFailed every this many polls.
const TRAIL_EVERY: u32 = 5;

/// What the rotation went through.
#[derive(Default)]
struct Followed {
    steps: Vec<StepLine>,
    events: Vec<String>,
    failure: Option<String>,
}

pub async fn run(args: &RotateArgs, region: Option<&str>, out: &Out) -> Outcome {
    let sdk = crate::aws::sdk(region).await?;
    out.progress("reading the stack");
    let stack = Stack::describe(
        &aws_sdk_cloudformation::Client::new(&sdk),
        &args.stack.stack,
    )
    .await?;
    let secret_arn = stack.output("SecretArn").to_string();
    let secrets = aws_sdk_secretsmanager::Client::new(&sdk);
    let (before, enabled) = stages(&secrets, &secret_arn).await?;
    if !enabled {
        return Err(Failure::usage(format!(
            "rotation is not enabled on {secret_arn}: the stack's ConnectorSecretRotation sets it up (deploy the stack)"
        )));
    }
    let previous = with(&before, AWSCURRENT);
    if let Some(pending) = with(&before, AWSPENDING).filter(|p| Some(p) != previous.as_ref()) {
        return Err(Failure::does_not_hold(format!(
            "a rotation is under way already, or was left behind: AWSPENDING is on version {pending}. Secrets Manager starts no other until it is gone: follow the rotation's log group {}, or remove the label (aws secretsmanager update-secret-version-stage --secret-id {secret_arn} --version-stage AWSPENDING --remove-from-version-id {pending}) and run this again",
            stack.log_group("rotation")
        )));
    }
    let token = format!(
        "{:08x}-{:04x}-4{:03x}-a{:03x}-{:012x}",
        fastrand::u32(..),
        fastrand::u16(..),
        fastrand::u16(..0x1000),
        fastrand::u16(..0x1000),
        fastrand::u64(..0x1_0000_0000_0000)
    );
    // Log times are AWS's clock: a margin for this machine's.
    let started_ms = i64::try_from(cloudapps::time::now_millis()).unwrap_or(i64::MAX) - 30_000;
    out.progress("asking Secrets Manager to rotate now");
    secrets
        .rotate_secret()
        .secret_id(&secret_arn)
        .client_request_token(&token)
        .send()
        .await
        .map_err(outcome::aws("secretsmanager:RotateSecret"))?;
    // The new version's id is the token (moto answers another VersionId).
    let version = token;
    let show = |text: String| {
        if !out.json() {
            out.line(&text);
        }
    };
    show(format!(
        "Rotation of {secret_arn} (stack {}): version {version}; AWSCURRENT is {}",
        stack.name,
        previous.as_deref().unwrap_or("(none)")
    ));

    let logs = aws_sdk_cloudwatchlogs::Client::new(&sdk);
    let trail = aws_sdk_cloudtrail::Client::new(&sdk);
    let mut follower = StepFollower::new(&stack.log_group("rotation"), started_ms);
    let mut logs_readable = true;
    let mut trail_readable = true;
    let mut followed = Followed::default();
    let mut pending_seen = false;
    let mut grace = 0;
    let begun = Instant::now();
    let deadline = cloudapps::time::from_now(Duration::from_secs(args.timeout));
    let pause = Duration::from_millis(args.poll_ms.max(50));
    let mut poll = 0u32;
    let rotated = loop {
        poll += 1;
        let waited = begun.elapsed().as_secs();
        let next = ["createSecret", "setSecret", "testSecret", "finishSecret"]
            .get(followed.steps.iter().filter(|s| s.ok).count())
            .copied()
            .unwrap_or("AWSCURRENT to move");
        out.progress_ticking(&format!("waiting for {next}"), &format!("{waited} s"));
        if logs_readable {
            logs_readable = read_steps(&mut follower, &logs, &version, &mut followed, out).await;
        }
        let (now, _) = stages(&secrets, &secret_arn).await?;
        let has = |stage: &str| {
            now.get(&version)
                .is_some_and(|s| s.iter().any(|x| x == stage))
        };
        if has(AWSCURRENT) {
            // finishSecret logs its line once AWSCURRENT moved: wait for it a little.
            let settle = deadline.min(cloudapps::time::from_now(Duration::from_secs(15)));
            while logs_readable && !finished(&followed) && Instant::now() < settle {
                tokio::time::sleep(pause).await;
                logs_readable =
                    read_steps(&mut follower, &logs, &version, &mut followed, out).await;
            }
            let text = format!(
                "AWSCURRENT moved to {version}{}",
                with(&now, AWSPREVIOUS).map_or(String::new(), |p| format!("; AWSPREVIOUS is {p}"))
            );
            show(text.clone());
            followed.events.push(text);
            break true;
        }
        if has(AWSPENDING) && !pending_seen {
            pending_seen = true;
            let text = format!("AWSPENDING staged on {version}");
            show(text.clone());
            followed.events.push(text);
        }
        if trail_readable && poll % TRAIL_EVERY == 1 {
            match rotation_failed(&trail, &secret_arn, started_ms).await {
                Ok(Some(why)) => {
                    followed.failure.get_or_insert(why);
                }
                Ok(None) => {}
                Err(_) => trail_readable = false,
            }
        }
        if followed.failure.is_some() {
            grace += 1;
            if grace > GRACE_POLLS {
                break false;
            }
        }
        if cloudapps::time::reaches(pause, deadline) {
            followed
                .failure
                .get_or_insert(format!("it did not finish within {} s", args.timeout));
            break false;
        }
        tokio::time::sleep(pause).await;
    };

    let (now, _) = stages(&secrets, &secret_arn).await.unwrap_or_default();
    let left_pending = !rotated
        && now
            .get(&version)
            .is_some_and(|s| s.iter().any(|x| x == AWSPENDING));
    let reason = (!rotated).then(|| {
        let mut why = format!(
            "the rotation failed: {}",
            followed.failure.clone().unwrap_or_else(|| "no step finished".into())
        );
        if left_pending {
            why.push_str(&format!(
                ". AWSPENDING is left on version {version}: fix the cause (the step's error above; `cloudapps check --stack {}`), remove the label (aws secretsmanager update-secret-version-stage --secret-id {secret_arn} --version-stage AWSPENDING --remove-from-version-id {version}) and rotate again",
                stack.name
            ));
        }
        why
    });
    if out.json() {
        out.document(&json!({
            "stack": stack.name,
            "secret": secret_arn,
            "version": version,
            "previous_version": previous,
            "rotated": rotated,
            "steps": followed.steps.iter().map(|s| json!({"step": s.step, "ok": s.ok, "detail": s.detail, "at": when(s.at / 1000)})).collect::<Vec<Value>>(),
            "events": followed.events,
            "awspending_left": left_pending,
            "error": reason,
        }));
    } else if let Some(reason) = &reason {
        show(reason.clone());
    } else {
        show(format!("rotated in {} s", begun.elapsed().as_secs()));
    }
    Ok(if rotated { Exit::Ok } else { Exit::DoesNotHold })
}

/// Prints and keeps the step lines not seen yet; false when the log group
/// cannot be read (said once).
async fn read_steps(
    follower: &mut StepFollower,
    logs: &aws_sdk_cloudwatchlogs::Client,
    version: &str,
    followed: &mut Followed,
    out: &Out,
) -> bool {
    match follower.next(logs, version).await {
        Ok(lines) => {
            for line in lines {
                if !out.json() {
                    out.line(&step_text(&line));
                }
                if !line.ok {
                    followed
                        .failure
                        .get_or_insert(format!("{} failed: {}", line.step, line.detail));
                }
                followed.steps.push(line);
            }
            true
        }
        Err(f) => {
            let note = format!(
                "the rotation's log group {} could not be read ({}): following the secret's stages only",
                follower.group(),
                f.message
            );
            if !out.json() {
                out.line(&format!("note: {note}"));
            }
            followed.events.push(note);
            false
        }
    }
}

fn finished(followed: &Followed) -> bool {
    followed
        .steps
        .iter()
        .any(|s| s.ok && s.step == "finishSecret")
}

fn step_text(line: &StepLine) -> String {
    if line.ok {
        format!(
            "{} {:<12} done: {}",
            when(line.at / 1000),
            line.step,
            line.detail
        )
    } else {
        format!(
            "{} {:<12} FAILED: {}",
            when(line.at / 1000),
            line.step,
            line.detail
        )
    }
}

type Stages = std::collections::HashMap<String, Vec<String>>;

/// The secret's versions and their stages, and whether rotation is on.
async fn stages(
    secrets: &aws_sdk_secretsmanager::Client,
    arn: &str,
) -> Result<(Stages, bool), Failure> {
    let d = secrets
        .describe_secret()
        .secret_id(arn)
        .send()
        .await
        .map_err(outcome::aws("secretsmanager:DescribeSecret"))?;
    Ok((
        d.version_ids_to_stages().cloned().unwrap_or_default(),
        d.rotation_enabled().unwrap_or(false),
    ))
}

fn with(stages: &Stages, stage: &str) -> Option<String> {
    stages
        .iter()
        .find(|(_, s)| s.iter().any(|x| x == stage))
        .map(|(v, _)| v.clone())
}

/// Secrets Manager's RotationFailed event for `secret` since `since_ms`.
async fn rotation_failed(
    trail: &aws_sdk_cloudtrail::Client,
    secret: &str,
    since_ms: i64,
) -> Result<Option<String>, Failure> {
    use aws_sdk_cloudtrail::types::{LookupAttribute, LookupAttributeKey};
    let attribute = LookupAttribute::builder()
        .attribute_key(LookupAttributeKey::EventName)
        .attribute_value("RotationFailed")
        .build()
        .map_err(|e| Failure::usage(e.to_string()))?;
    let out = trail
        .lookup_events()
        .lookup_attributes(attribute)
        .start_time(aws_sdk_cloudtrail::primitives::DateTime::from_millis(
            since_ms,
        ))
        .send()
        .await
        .map_err(outcome::aws("cloudtrail:LookupEvents"))?;
    Ok(out
        .events()
        .iter()
        .find(|e| {
            e.cloud_trail_event().is_some_and(|t| t.contains(secret))
                || e.resources()
                    .iter()
                    .any(|r| r.resource_name() == Some(secret))
        })
        .map(|e| {
            format!(
                "Secrets Manager reported RotationFailed at {}",
                e.event_time().map_or("?".to_string(), |t| when(t.secs()))
            )
        }))
}
