//! `PortalStatus` and `PortalActivity` (`api` mode; skipped otherwise): the
//! portal shows the instance connected with the current key, and has
//! recorded AWS activity in the last hours (data flows).

use std::time::Duration;

use super::check::Verdict;
use super::context::Context;
use crate::hub_tags::HubState;
use crate::portal::{NotRead, PortalClient};
use crate::time::{http_date, now_millis};

/// `PortalStatus`.
pub async fn status(ctx: &Context<'_>) -> Result<Verdict, Verdict> {
    match ctx
        .deps
        .portal
        .read(async |api| status_of(api, ctx).await)
        .await
    {
        Ok(verdict) => verdict,
        Err(NotRead::Skip(why)) => Ok(Verdict::skip(why)),
        Err(NotRead::FromHub) => status_from_hub(ctx),
    }
}

/// `PortalActivity`.
pub async fn activity(ctx: &Context<'_>) -> Result<Verdict, Verdict> {
    match ctx
        .deps
        .portal
        .read(async |api| activity_of(api, ctx).await)
        .await
    {
        Ok(verdict) => verdict,
        Err(NotRead::Skip(why)) => Ok(Verdict::skip(why)),
        Err(NotRead::FromHub) => Ok(Verdict::skip(
            "PORTAL_MODE=hub: the organization hub checks the activity of every account at once",
        )),
    }
}

/// `PortalStatus` in hub mode: what the hub wrote back on the secret; no
/// portal call (the hub reads the whole organization in one listing).
fn status_from_hub(ctx: &Context<'_>) -> Result<Verdict, Verdict> {
    let c = ctx.connection()?;
    let current = ctx.current()?;
    let hub = HubState::from_tags(c.secret.tags.iter().map(|(k, v)| (k.as_str(), v.as_str())));
    if hub.confirms(&current.access_key_id) {
        let tested = hub
            .tested
            .map_or(String::new(), |t| format!(", tested {}", http_date(t)));
        return Ok(Verdict::pass(format!(
            "the hub reports the instance {:?} ({}) connected with the key {}{tested}",
            c.instance,
            hub.instance.as_deref().unwrap_or("?"),
            current.access_key_id
        )));
    }
    let status = hub.status.map_or("no verdict yet", |s| s.as_str());
    let detail = hub.detail.map_or(String::new(), |d| format!(": {d}"));
    Ok(Verdict::fail(format!(
        "the hub reports {status} for the key {} (the portal holds {}){detail}. What to do: `cloudapps org status` in the hub account says what the hub sees; it retries on its schedule",
        current.access_key_id,
        hub.key.as_deref().unwrap_or("no key of this account")
    )))
}

async fn status_of(api: &PortalClient, ctx: &Context<'_>) -> Result<Verdict, Verdict> {
    let c = ctx.connection()?;
    let current = ctx.current()?;
    let found = api
        .find(&c.instance, ctx.call_deadline())
        .await
        .map_err(|e| Verdict::fail(format!("the portal could not be read: {e}")))?;
    let Some(instance) = found else {
        return Ok(Verdict::fail(format!(
            "the portal has no AWS instance named {:?}: this account is not monitored. What to do: run an Update of the stack to connect it again",
            c.instance
        )));
    };
    let mut problems = Vec::new();
    if !instance.enabled {
        problems.push(format!(
            "the instance {:?} is disabled in the portal",
            c.instance
        ));
    } else if instance.status != "connected" {
        let detail = if instance.status_detail.is_empty() {
            String::new()
        } else {
            format!(": {}", instance.status_detail)
        };
        problems.push(format!(
            "the portal reports the instance {:?} as {}{detail}",
            c.instance, instance.status
        ));
    }
    if instance.access_key_id.as_deref() != Some(current.access_key_id.as_str()) {
        problems.push(format!(
            "the portal holds the key {}, the secret's AWSCURRENT is {}",
            instance.access_key_id.as_deref().unwrap_or("(none)"),
            current.access_key_id
        ));
    }
    Ok(Verdict::from_problems(
        problems,
        "fix what the portal names, then run an Update of the stack (it hands the current key over and runs the portal's test)",
        format!(
            "the portal shows the instance {:?} ({}) connected with the key {}",
            c.instance, instance.id, current.access_key_id
        ),
    ))
}

async fn activity_of(api: &PortalClient, ctx: &Context<'_>) -> Result<Verdict, Verdict> {
    let hours = ctx.settings.activity_window_hours;
    let since = now_millis().saturating_sub(u64::from(hours) * 3_600_000);
    Ok(
        match api.latest_activity(since, ctx.call_deadline()).await {
            Ok(Some(a)) => Verdict::pass(format!(
                "the portal recorded AWS activity at {} ({})",
                http_date(i64::try_from(a.timestamp / 1000).unwrap_or_default()),
                a.description
            )),
            Ok(None) => match too_early(ctx) {
                Some(age) => Verdict::skip(format!(
                    "no AWS activity yet, and the connection is {age} old: the portal takes hours to show a new account's first data"
                )),
                None => Verdict::fail(format!(
                    "the portal recorded no AWS activity in the last {hours} hours: no data flows. What to do: check the instance's status in the portal and the CloudTrail check"
                )),
            },
            Err(e) => Verdict::fail(format!("the portal's activities could not be read: {e}")),
        },
    )
}

/// How old the connection is, when it is younger than the activity grace.
fn too_early(ctx: &Context<'_>) -> Option<String> {
    let created = ctx.connection.as_ref().ok()?.secret.created?;
    let age = (now_millis() / 1000).saturating_sub(u64::try_from(created).ok()?);
    (Duration::from_secs(age) < ctx.settings.activity_grace)
        .then(|| format!("{:.1} hours", age as f64 / 3600.0))
}
