//! The errors of the connector's work. Their text goes into the
//! CloudFormation Reason and the logs, so it names what failed and what to
//! do, and never holds a secret. An AWS error keeps its cause
//! ([`std::error::Error::source`]); where the call carries a secret, the
//! cause kept is its code and status only.

use std::error::Error as StdError;
use std::fmt;

use aws_sdk_iam::config::http::HttpResponse;
use aws_sdk_iam::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};

/// The cause of an [`Error::Aws`].
pub type Source = Box<dyn StdError + Send + Sync + 'static>;

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
        #[source]
        source: Option<Source>,
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
    /// The portal could not be reached or kept failing (5xx, timeouts,
    /// throttled) until the time ran out: a fault that may pass.
    #[error("portal {operation}: {message}")]
    PortalUnreachable {
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

/// The cause kept for a call whose request or answer carries a secret: its
/// code and HTTP status, never the service's message.
#[derive(Debug)]
pub struct CodeOnly(String);

impl fmt::Display for CodeOnly {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl StdError for CodeOnly {}

impl Error {
    /// An AWS error with the full context the SDK gives (the failing call, the
    /// service's code and message), keeping the SDK error as its cause.
    pub fn aws<E, R>(operation: &'static str) -> impl FnOnce(SdkError<E, R>) -> Error
    where
        E: StdError + Send + Sync + 'static,
        R: fmt::Debug + Send + Sync + 'static,
    {
        move |err| Error::Aws {
            operation,
            message: DisplayErrorContext(&err).to_string(),
            source: Some(Box::new(err)),
        }
    }

    /// An AWS error shown by its code and HTTP status only: for calls whose
    /// request or response carries a secret, where a service's message could
    /// echo a value back. The cause kept is that code and status too.
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
                message: kind.clone(),
                source: Some(Box::new(CodeOnly(kind))),
            }
        }
    }

    /// An AWS step that failed for a reason of ours, not an SDK error.
    pub fn aws_step(operation: &'static str, message: impl Into<String>) -> Error {
        Error::Aws {
            operation,
            message: message.into(),
            source: None,
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

#[cfg(test)]
mod tests {
    use super::*;

    fn sdk_error(
        text: &str,
    ) -> SdkError<aws_sdk_iam::operation::get_user::GetUserError, HttpResponse> {
        SdkError::construction_failure(CodeOnly(text.to_string()))
    }

    #[test]
    fn an_aws_error_keeps_its_cause() {
        let e = Error::aws("iam:GetUser")(sdk_error("the cause"));
        let source = StdError::source(&e).expect("the SDK error is the source");
        assert!(e.to_string().starts_with("iam:GetUser failed: "), "{e}");
        assert!(source.to_string().contains("construct"), "{source}");
    }

    #[test]
    fn a_code_only_error_keeps_no_message_in_its_cause_either() {
        let e = Error::aws_code_only("secretsmanager:PutSecretValue")(sdk_error(
            "echoed wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
        ));
        let mut chain = e.to_string();
        let mut next = StdError::source(&e);
        while let Some(cause) = next {
            chain.push_str(&cause.to_string());
            next = cause.source();
        }
        assert!(StdError::source(&e).is_some());
        assert!(!chain.contains("wJalrXUtnFEMI"), "{chain}");
        assert!(chain.contains("request construction failure"), "{chain}");
    }
}
