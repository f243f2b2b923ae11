//! The custom resource `Custom::CloudAppsConnector`: in one account, what
//! the Defender for Cloud Apps guide has an administrator do by hand on the
//! AWS side, as Create, Update and Delete.
//!
//! - Create/Update converge to the properties: secret checked, CloudTrail
//!   coverage, IAM user and policy, one proven key in the secret, the
//!   pre-flight of that key (unless `PORTAL_MODE=off`), hand-over to the
//!   portal (connect and test, or a hand-off notice). Each step is
//!   idempotent, so a retried event ends in the same state.
//! - The physical id is the user's ARN: a change of `UserName` is a
//!   replacement, and CloudFormation then deletes the old id. A change of
//!   `UserPath`, or of the name's case only (IAM names have none), is
//!   refused before anything changes.
//! - Delete ([`delete`]) first tries to stop the portal from using the key
//!   (disables the instance while it holds this id's key; never one a
//!   replacement now uses, nor one the stack took over), within a part of
//!   the time left, and whatever the portal does, then removes what the
//!   physical id made (user, keys, group, policy, the stack's trail if this
//!   id uses it), keeps the log bucket and never touches what the current
//!   id uses. What it could not do in the portal is logged and told.
//!
//! Create and Update are [`converge`].

mod converge;
mod delete;

use lambda_runtime::LambdaEvent;
use serde_json::Value;
use tracing::info;

use crate::cfn::{self, Action, Answer, CustomResource, Data, Invocation, Request};
use crate::config::Settings;
use crate::deps::Deps;
use crate::error::Error;
use crate::names::{self, StackRef};
use crate::properties::Spec;

pub const RESOURCE_TYPE: &str = "Custom::CloudAppsConnector";

/// The connector resource, bound to the function's clients.
pub struct Connector<'a> {
    deps: &'a Deps,
}

impl<'a> Connector<'a> {
    pub fn new(deps: &'a Deps) -> Self {
        Self { deps }
    }
}

/// The Lambda entry point: answers CloudFormation for one event.
///
/// `deps` is what init built, or why it could not: a misconfigured function
/// still answers every event FAILED with the reason (instead of leaving the
/// stack waiting). Once CloudFormation has its answer, the invocation
/// succeeds: Lambda must not run the event again (an event run again after
/// CloudFormation moved on could recreate what a rollback deleted). Only an
/// answer that could not be delivered is the invocation's error.
pub async fn handle_lambda_event(
    deps: Result<&Deps, &Error>,
    event: LambdaEvent<Value>,
) -> Result<Answer, lambda_runtime::Error> {
    let log_stream = Some(event.context.env_config.log_stream.clone()).filter(|s| !s.is_empty());
    match deps {
        Ok(deps) => {
            let invocation = Invocation::from_epoch_millis(
                event.context.deadline,
                deps.settings.deadline_margin,
                log_stream,
            );
            Ok(cfn::serve(
                &Connector::new(deps),
                &deps.http,
                event.payload,
                &invocation,
            )
            .await?)
        }
        Err(error) => {
            let margin = Settings::default().deadline_margin;
            let invocation =
                Invocation::from_epoch_millis(event.context.deadline, margin, log_stream);
            // Built once, as Deps would have: this path serves every event.
            static HTTP: std::sync::OnceLock<reqwest::Client> = std::sync::OnceLock::new();
            let http = HTTP.get_or_init(reqwest::Client::new);
            let answer =
                cfn::serve(&Misconfigured(error), http, event.payload, &invocation).await?;
            tracing::error!(%error, "answered FAILED: the function is misconfigured");
            Ok(answer)
        }
    }
}

/// Stands in for the connector when init failed: every request fails with why.
struct Misconfigured<'a>(&'a Error);

impl CustomResource for Misconfigured<'_> {
    type Error = String;

    fn resource_type(&self) -> &str {
        RESOURCE_TYPE
    }

    fn physical_id(&self, request: &Request) -> String {
        request.fallback_physical_id()
    }

    async fn handle(&self, _request: &Request, _physical_id: &str) -> Result<Data, String> {
        Err(format!(
            "the connector function is misconfigured: {}",
            self.0
        ))
    }
}

impl CustomResource for Connector<'_> {
    type Error = Error;

    fn resource_type(&self) -> &str {
        RESOURCE_TYPE
    }

    fn physical_id(&self, request: &Request) -> String {
        match (
            &request.action,
            Spec::parse(&request.properties, &request.stack),
        ) {
            (Action::Delete { physical_id }, _) => physical_id.clone(),
            (_, Ok(spec)) => request.stack.user(&spec.user_path, &spec.user_name).arn,
            (_, Err(_)) => request.fallback_physical_id(),
        }
    }

    async fn handle(&self, request: &Request, physical_id: &str) -> Result<Data, Error> {
        let stack = &request.stack;
        match &request.action {
            Action::Delete { physical_id } => {
                Box::pin(self.delete(request, physical_id, &request.properties)).await?;
                Ok(Data::new())
            }
            Action::Create => {
                let spec =
                    Spec::parse(&request.properties, stack).map_err(Error::InvalidProperties)?;
                Box::pin(self.converge(request, &spec, None)).await
            }
            Action::Update {
                physical_id: current,
                old_properties,
            } => {
                let spec =
                    Spec::parse(&request.properties, stack).map_err(Error::InvalidProperties)?;
                refuse_in_place_changes(stack, current, &spec)?;
                let previous = Spec::parse(old_properties, stack).ok();
                let data = Box::pin(self.converge(request, &spec, previous.as_ref())).await?;
                // A rollback after a failed Update comes back to the id
                // CloudFormation holds, with the failed properties as "old":
                // what that attempt made under another id is cleaned here,
                // since no Delete will ever name it.
                if current == physical_id {
                    if let Ok(old) = Spec::parse(old_properties, stack) {
                        let abandoned = stack.user(&old.user_path, &old.user_name);
                        if abandoned.arn != physical_id {
                            info!(abandoned = %abandoned, "cleaning up what a failed update made");
                            Box::pin(self.delete(request, &abandoned.arn, old_properties)).await?;
                        }
                    }
                }
                Ok(data)
            }
        }
    }
}

/// What an Update cannot do to the user the physical id `current` names,
/// refused before anything changes:
/// - move it to another `UserPath`: the functions' roles are scoped to the
///   path, so under them the user at the old path could neither be moved
///   nor deleted;
/// - rename it by case only: IAM names have no case, so "Defender" and
///   "defender" are one user, and the replacement's Delete of the old id
///   would delete the live user.
fn refuse_in_place_changes(stack: &StackRef, current: &str, spec: &Spec) -> Result<(), Error> {
    let Some(now) = stack.user_from_physical_id(current) else {
        return Ok(());
    };
    if now.path != spec.user_path {
        return Err(Error::InvalidProperties(format!(
            "UserPath cannot change on a stack (from {} to {}): the functions' rights are scoped to the path, so the user under {} could not be moved or deleted. Nothing was changed. To use {}, create a new stack with it (another UserName and ConnectorName), then delete this one",
            now.path, spec.user_path, now.path, spec.user_path
        )));
    }
    if now.name != spec.user_name && names::same_iam_name(&now.name, &spec.user_name) {
        return Err(Error::InvalidProperties(format!(
            "UserName {:?} differs from {:?} by case only, and IAM names have no case: it is the same user. Nothing was changed; keep {:?}, or choose another name (a replacement)",
            spec.user_name, now.name, now.name
        )));
    }
    Ok(())
}
