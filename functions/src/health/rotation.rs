//! `KeyRotation`: rotation is on, the key is not older than the schedule
//! allows (a day of grace), and no rotation is stuck half-way.

use super::check::Verdict;
use crate::time::{http_date, now_millis};

/// A day, in seconds.
const DAY: i64 = 86_400;
use super::context::Context;
use crate::key_store::{self, AWSCURRENT, AWSPENDING, AWSPREVIOUS};
use crate::retirement::{Evidence, HandedOver, Uses, judge};

/// What the rotation check decides on (seconds since the Unix epoch).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RotationFacts {
    pub enabled: bool,
    pub key_id: String,
    pub key_created: Option<i64>,
    pub last_rotated: Option<i64>,
    /// The version AWSPENDING is on (when not AWSCURRENT) and its creation.
    pub pending: Option<(String, Option<i64>)>,
}

/// The findings about the rotation at `now`, for a schedule of `days`; a
/// pending version older than `stuck_after` seconds did not finish.
pub fn rotation_findings(
    now: i64,
    facts: &RotationFacts,
    days: u32,
    stuck_after: i64,
) -> Vec<String> {
    let mut problems = Vec::new();
    if !facts.enabled {
        problems.push("rotation is not enabled on the secret: the key lives forever. What to do: run an Update of the stack (its RotationSchedule turns it on)".to_string());
    }
    if let Some(created) = facts.key_created {
        let age = now.saturating_sub(created).max(0) / DAY;
        if now.saturating_sub(created) > (i64::from(days) + 1) * DAY {
            problems.push(format!(
                "the key {} is {age} days old: rotation every {days} days is overdue. What to do: rotate the secret now and read the rotation function's log group for why it did not run",
                facts.key_id
            ));
        }
    }
    if let Some((version, created)) = &facts.pending {
        if created.is_none_or(|t| now.saturating_sub(t) >= stuck_after) {
            problems.push(format!(
                "the last rotation did not finish (AWSPENDING stays on version {version}); the portal keeps the previous key. What to do: read the rotation function's log group, fix the cause, then rotate the secret again"
            ));
        }
    }
    problems
}

pub async fn check(ctx: &Context<'_>) -> Result<Verdict, Verdict> {
    let c = ctx.connection()?;
    let current = ctx.current()?;
    let aws = &ctx.deps.aws;
    let keys = ctx.keys(c).await?;
    let versions = key_store::versions(&aws.secrets, &c.secret.arn)
        .await
        .map_err(|e| Verdict::fail(format!("the secret's versions could not be listed: {e}")))?;
    let has = |stages: &[String], s: &str| stages.iter().any(|x| x == s);
    let facts = RotationFacts {
        enabled: c.secret.rotation_enabled,
        key_id: current.access_key_id.clone(),
        key_created: keys
            .iter()
            .find(|k| k.id == current.access_key_id)
            .and_then(|k| k.created),
        last_rotated: c.secret.last_rotated,
        pending: versions
            .into_iter()
            .find(|(_, stages, _)| has(stages, AWSPENDING) && !has(stages, AWSCURRENT))
            .map(|(v, _, created)| (v, created)),
    };
    let now = i64::try_from(now_millis() / 1000).unwrap_or(i64::MAX);
    let stuck_after =
        i64::try_from(ctx.settings.rotation_stuck_after.as_secs()).unwrap_or(i64::MAX);
    let mut problems = rotation_findings(now, &facts, ctx.settings.rotation_days, stuck_after);
    let handoff = handoff(ctx, now).await?;
    problems.extend(handoff.as_ref().and_then(|h| h.problem.clone()));
    if !problems.is_empty() {
        return Ok(Verdict::fail(problems.join("; ")));
    }
    let age = facts.key_created.map_or("of unknown age".to_string(), |t| {
        format!("{} days old", now.saturating_sub(t).max(0) / DAY)
    });
    let last = facts
        .last_rotated
        .map_or("never rotated yet".to_string(), |t| {
            format!("last rotated {}", http_date(t))
        });
    let note = handoff.map_or(String::new(), |h| format!("; {}", h.note));
    Ok(Verdict::pass(format!(
        "rotation is on every {} days; the key {} is {age}; {last}{note}",
        ctx.settings.rotation_days, facts.key_id
    )))
}

/// A hand-off (or `off` mode) awaiting evidence that the new key is in use.
struct Handoff {
    /// What holds, when nothing is wrong yet.
    note: String,
    /// "hand-off not acted on since <date>", once past the grace.
    problem: Option<String>,
}

/// The previous key still active in a mode that keeps it until the new one
/// is seen in use: whether that was seen, and since when it is awaited.
async fn handoff(ctx: &Context<'_>, now: i64) -> Result<Option<Handoff>, Verdict> {
    if !ctx.deps.portal.keeps_previous_key() {
        return Ok(None);
    }
    let c = ctx.connection()?;
    let current = ctx.current()?;
    let aws = &ctx.deps.aws;
    let read = |e: crate::error::Error| Verdict::fail(format!("could not be read: {e}"));
    let previous = key_store::read(&aws.secrets, &c.secret.arn, AWSPREVIOUS)
        .await
        .map_err(read)?
        .filter(|k| k.access_key_id != current.access_key_id);
    let Some(previous) = previous else {
        return Ok(None);
    };
    let keys = ctx.keys(c).await?;
    if !keys
        .iter()
        .any(|k| k.id == previous.access_key_id && k.active)
    {
        return Ok(None);
    }
    let handed = HandedOver::of(&c.secret, &current.access_key_id).unwrap_or(HandedOver {
        key_id: current.access_key_id.clone(),
        at: c.secret.last_rotated.unwrap_or(now),
    });
    let uses = Uses::read(&aws.iam, &current.access_key_id, &previous.access_key_id)
        .await
        .map_err(read)?;
    Ok(Some(match judge(&handed, &previous.access_key_id, uses) {
        Evidence::Proven(why) => Handoff {
            note: format!("{why}: the previous key goes at the next rotation"),
            problem: None,
        },
        Evidence::NotYet(why) => {
            let grace = i64::try_from(ctx.settings.handoff_grace.as_secs()).unwrap_or(i64::MAX);
            let late = now.saturating_sub(handed.at) >= grace;
            Handoff {
                note: format!("a person has the new key to put in place since {}", handed.date()),
                problem: late.then(|| {
                    format!(
                        "hand-off not acted on since {}: {why}. What to do: put the key {} (the secret's AWSCURRENT) in the portal's instance {:?}, as the hand-off message says",
                        handed.date(),
                        current.access_key_id,
                        c.instance
                    )
                }),
            }
        }
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rotation_findings_follow_the_schedule() {
        let now = 1_800_000_000;
        let fresh = RotationFacts {
            enabled: true,
            key_id: "AKIA1".into(),
            key_created: Some(now - 10 * DAY),
            last_rotated: Some(now - 10 * DAY),
            pending: None,
        };
        assert!(rotation_findings(now, &fresh, 30, 3600).is_empty());
        // A day of grace past the schedule, then overdue.
        let due = RotationFacts {
            key_created: Some(now - 31 * DAY + 60),
            ..fresh.clone()
        };
        assert!(rotation_findings(now, &due, 30, 3600).is_empty());
        let overdue = RotationFacts {
            key_created: Some(now - 45 * DAY),
            ..fresh.clone()
        };
        let found = rotation_findings(now, &overdue, 30, 3600);
        assert!(
            found[0].contains("45 days old") && found[0].contains("overdue"),
            "{found:?}"
        );
        let off = RotationFacts {
            enabled: false,
            ..fresh.clone()
        };
        assert!(rotation_findings(now, &off, 30, 3600)[0].contains("not enabled"));
        // A rotation under way is not stuck; one older than an hour is.
        let running = RotationFacts {
            pending: Some(("v2".into(), Some(now - 120))),
            ..fresh.clone()
        };
        assert!(rotation_findings(now, &running, 30, 3600).is_empty());
        let stuck = RotationFacts {
            pending: Some(("v2".into(), Some(now - 2 * 3600))),
            ..fresh
        };
        let found = rotation_findings(now, &stuck, 30, 3600);
        assert!(
            found[0].contains("did not finish") && found[0].contains("v2"),
            "{found:?}"
        );
    }
}
