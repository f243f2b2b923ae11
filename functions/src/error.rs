//! The errors of the connector's work. Their text goes into the
//! CloudFormation Reason and the logs, so it names what failed and what to
//! do, and never holds a secret.

use std::error::Error as StdError;

use aws_sdk_iam::config::http::HttpResponse;
use aws_sdk_iam::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Bad input: nothing was changed.
    #[error("invalid properties: {0}")]
    InvalidProperties(String),
    /// Something by this name exists and was not made by this stack.
    #[error("{0}")]
    NotOurs(String),
    /// `CloudTrail: Verify` and no trail covers all regions.
    #[error("CloudTrail does not cover this account: {0}")]
    NotCovered(String),
    /// The new access key did not authenticate in time.
    #[error("{0}")]
    KeyNotReady(String),
    /// An AWS call failed; `message` names the call and the service's answer.
    #[error("{operation} failed: {message}")]
    Aws {
        operation: &'static str,
        message: String,
    },
    /// The configuration of the function itself (environment).
    #[error("configuration: {0}")]
    Config(String),
    /// The new key failed the pre-flight: a permission it lacks, or the trail.
    #[error("pre-flight of the new key failed: {0}")]
    Preflight(String),
    /// A portal call failed; `message` says what the portal answered and what to do.
    #[error("portal {operation}: {message}")]
    Portal {
        operation: &'static str,
        message: String,
    },
    /// The connector has not set the secret up (yet): its tags are missing.
    #[error("{0}")]
    NotSetUp(String),
    /// A rotation event or state that the rotation refuses (nothing changed).
    #[error("rotation: {0}")]
    Rotation(String),
    /// The hand-off notification could not be published.
    #[error("hand-off: {0}")]
    Handoff(String),
}

impl Error {
    /// An AWS error with the full context the SDK gives (the failing call, the
    /// service's code and message).
    pub fn aws<E, R>(operation: &'static str) -> impl FnOnce(SdkError<E, R>) -> Error
    where
        E: StdError + 'static,
        R: std::fmt::Debug,
    {
        move |err| Error::Aws {
            operation,
            message: DisplayErrorContext(&err).to_string(),
        }
    }

    /// An AWS error shown by its code and HTTP status only: for calls whose
    /// request or response carries a secret, where a service's message could
    /// echo a value back.
    pub fn aws_code_only<E>(
        operation: &'static str,
    ) -> impl FnOnce(SdkError<E, HttpResponse>) -> Error
    where
        E: ProvideErrorMetadata + StdError + 'static,
    {
        move |err| {
            let code = err.code().unwrap_or("no error code").to_string();
            let kind = match &err {
                SdkError::ServiceError(e) => {
                    let status = e.raw().status().as_u16();
                    format!("service error {code} (HTTP {status})")
                }
                SdkError::TimeoutError(_) => "timeout".to_string(),
                SdkError::DispatchFailure(_) => "dispatch failure (network)".to_string(),
                SdkError::ResponseError(_) => "unreadable response".to_string(),
                SdkError::ConstructionFailure(_) => "request construction failure".to_string(),
                _ => "error".to_string(),
            };
            Error::Aws {
                operation,
                message: kind,
            }
        }
    }
}

/// True when an AWS call was refused for lack of permission. Some services
/// (and moto) send AccessDenied without a parseable code: the status says it.
pub fn is_access_denied<E>(err: &SdkError<E, HttpResponse>) -> bool
where
    E: ProvideErrorMetadata,
{
    let by_code = matches!(
        err.code(),
        Some("AccessDenied" | "AccessDeniedException" | "UnauthorizedOperation")
    );
    by_code || raw_status(err) == Some(403)
}

/// The HTTP status of a service error.
pub fn raw_status<E>(err: &SdkError<E, HttpResponse>) -> Option<u16> {
    err.raw_response().map(|r| r.status().as_u16())
}
