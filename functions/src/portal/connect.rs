//! Connect: the guide's "paste the keys into the portal". The AWS instance
//! is created, or its credentials updated (found by its name, or by the name
//! it had before a rename). A create is never blindly sent again: after a
//! fault or a conflict, the instance is looked up first.

use std::time::Instant;

use reqwest::{Method, StatusCode};
use serde::Serialize;
use serde_json::json;
use tracing::info;

use super::client::{AWS_APP_ID, PortalClient, RemoteInstance, instance_in, rejected};
use super::routes::Route;
use super::transport::{Failure, MIN_ATTEMPT, Resend};
use crate::backoff::Backoff;
use crate::error::Error;
use crate::key::StoredKey;
use crate::time::reaches;

/// What `connect` did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Connected {
    Created,
    Updated,
    /// The instance already held this key, name and connections.
    Unchanged,
}

/// What proves that an AWS instance by the wanted name is this stack's:
/// the portal's answer alone never does (another account, or a person, may
/// have connected an instance by that name with a key of their own).
#[derive(Clone, Copy, Debug, Default)]
pub struct Ownership<'a> {
    /// Keys this stack issued: the user's keys, and those its secret holds.
    pub keys: &'a [String],
    /// The id of the instance this stack connected before, as it recorded it.
    pub instance_id: Option<&'a str>,
    /// Take over an instance that is not proven this stack's
    /// (`AdoptExistingInstance`).
    pub adopt: bool,
}

impl Ownership<'_> {
    /// True when `instance` is proven this stack's.
    pub fn proves(&self, instance: &RemoteInstance) -> bool {
        self.instance_id == Some(instance.id.as_str())
            || instance
                .access_key_id
                .as_ref()
                .is_some_and(|k| self.keys.contains(k))
    }
}

/// What the instance should be.
#[derive(Clone, Copy, Debug)]
pub struct Desired<'a> {
    pub name: &'a str,
    /// The name it had before (an Update that renames), looked up when `name` is not found.
    pub previous_name: Option<&'a str>,
    pub connections: &'a [&'a str],
    pub key: &'a StoredKey,
    pub owner: Ownership<'a>,
}

/// The instance's credentials as the portal takes them (the body of
/// `create` and `update`). Built only to be sent.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Credentials<'a> {
    access_key_id: &'a str,
    secret_access_key: &'a str,
}

impl PortalClient {
    /// Makes the instance `desired.name` hold `desired.key` and connections:
    /// creates it, or updates it (found by its name or its previous name).
    /// An instance found that is not proven this stack's is refused, naming
    /// it and the key it holds; or, with `owner.adopt`, taken over once
    /// `adopting` (which records the take-over) has succeeded.
    pub async fn connect(
        &self,
        desired: Desired<'_>,
        adopting: impl AsyncFnOnce(&RemoteInstance) -> Result<(), Error>,
        deadline: Instant,
    ) -> Result<(RemoteInstance, Connected), Error> {
        let mut adopting = Some(adopting);
        let body = body(&desired);
        let t = self.timings();
        let mut backoff = Backoff::new(t.retry_first, t.retry_max);
        loop {
            let mut existing = self.find(desired.name, deadline).await?;
            if existing.is_none() {
                if let Some(previous) = desired.previous_name.filter(|p| *p != desired.name) {
                    existing = self.find(previous, deadline).await?;
                }
            }
            if let Some(instance) = existing {
                if !desired.owner.proves(&instance) {
                    let Some(adopt) = adopting.take().filter(|_| desired.owner.adopt) else {
                        return Err(not_ours(&instance));
                    };
                    adopt(&instance).await?;
                    info!(instance = %instance.id, name = %instance.name, held = ?instance.access_key_id, "taking over the portal instance (AdoptExistingInstance)");
                } else if holds(&instance, &desired) {
                    return Ok((instance, Connected::Unchanged));
                }
                let updated = self
                    .update_instance(&instance.id, &desired, deadline)
                    .await?;
                return Ok((updated, Connected::Updated));
            }
            // A create is not re-sent blindly: after a fault, look again first.
            let url = self.route(Route::Create, "", "");
            match self
                .call(
                    "create",
                    Method::POST,
                    &url,
                    Some(body.clone()),
                    Resend::Never,
                    deadline,
                )
                .await
            {
                Ok((StatusCode::CONFLICT, _)) | Err(Failure::Transient(_))
                    if !reaches(t.retry_first.saturating_add(MIN_ATTEMPT), deadline) =>
                {
                    tokio::time::sleep(backoff.next_pause()).await;
                }
                Ok((StatusCode::CONFLICT, text)) => {
                    return Err(rejected("create", StatusCode::CONFLICT, &text));
                }
                Ok((_, text)) => {
                    let created = instance_in("create", &text)?;
                    info!(instance = %created.id, name = desired.name, access_key_id = %desired.key.access_key_id, "portal instance created");
                    return Ok((created, Connected::Created));
                }
                Err(Failure::Transient(why)) => {
                    return Err(Error::Portal {
                        operation: "create",
                        message: format!(
                            "{why}; no time left to try again: run the operation again"
                        ),
                    });
                }
                Err(Failure::Final(e)) => return Err(e),
            }
        }
    }
}

impl PortalClient {
    /// One `update` of the instance `id` to what `desired` asks (the
    /// organization hub, which listed the instances already, calls it alone).
    pub async fn update_instance(
        &self,
        id: &str,
        desired: &Desired<'_>,
        deadline: Instant,
    ) -> Result<RemoteInstance, Error> {
        let (_, text) = self
            .portal(
                Route::Update,
                Method::POST,
                (id, ""),
                Some(body(desired)),
                deadline,
            )
            .await?;
        let updated = instance_in("update", &text)?;
        info!(instance = %updated.id, name = desired.name, access_key_id = %desired.key.access_key_id, "portal instance updated");
        Ok(updated)
    }

    /// One `create` of the instance `desired` asks, never sent twice: after
    /// a fault or a conflict it is the caller's to look again (the hub's
    /// next listing does).
    pub async fn create_instance(
        &self,
        desired: &Desired<'_>,
        deadline: Instant,
    ) -> Result<RemoteInstance, Error> {
        let url = self.route(Route::Create, "", "");
        let sent = self
            .call(
                "create",
                Method::POST,
                &url,
                Some(body(desired)),
                Resend::Never,
                deadline,
            )
            .await
            .map_err(|f| f.into_error("create"))?;
        match sent {
            (StatusCode::CONFLICT, text) => Err(rejected("create", StatusCode::CONFLICT, &text)),
            (_, text) => {
                let created = instance_in("create", &text)?;
                info!(instance = %created.id, name = desired.name, access_key_id = %desired.key.access_key_id, "portal instance created");
                Ok(created)
            }
        }
    }
}

/// The body of `create` and `update`: the only request that carries a key's
/// secret half.
fn body(desired: &Desired<'_>) -> serde_json::Value {
    json!({
        "appId": AWS_APP_ID,
        "name": desired.name,
        "connections": desired.connections,
        "credentials": Credentials {
            access_key_id: &desired.key.access_key_id,
            secret_access_key: desired.key.secret_access_key.expose(),
        },
    })
}

/// The instance already is what `desired` asks, and works.
fn holds(instance: &RemoteInstance, desired: &Desired<'_>) -> bool {
    let mut have = instance.connections.clone();
    have.sort();
    let mut want: Vec<String> = desired.connections.iter().map(|c| c.to_string()).collect();
    want.sort();
    instance.name == desired.name
        && instance.access_key_id.as_deref() == Some(desired.key.access_key_id.as_str())
        && have == want
        && instance.enabled
        && instance.status == "connected"
}

/// Why an instance by the wanted name is left alone.
fn not_ours(instance: &RemoteInstance) -> Error {
    Error::NotOurs(format!(
        "the portal already has an AWS instance named {:?} ({}) holding the key {}, which this stack never issued (connected by hand, or by another account using that name): it is left as it is. Choose another ConnectorName, or set AdoptExistingInstance to true to take it over",
        instance.name,
        instance.id,
        instance.access_key_id.as_deref().unwrap_or("(none shown)")
    ))
}
