//! What a command ends with: an exit code scripts can rely on, and, when it
//! could not do its work, why (one sentence that names what to do).
//!
//! | code | meaning |
//! |---|---|
//! | 0 | done; what was checked holds |
//! | 1 | what was checked does not hold (a check fails, the portal's answers do not fit the client, a rotation failed): the output says what |
//! | 2 | usage or configuration: a bad argument, a stack or secret that is not there or not a connector's, a file that is not a HAR, AWS refusing the caller's rights |
//! | 3 | AWS or the portal could not be reached (network, timeouts, 5xx, throttled to the end) |

use std::fmt;

use aws_sdk_iam::config::http::HttpResponse;
use aws_sdk_iam::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};

/// The exit codes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Exit {
    Ok = 0,
    DoesNotHold = 1,
    Usage = 2,
    Unreachable = 3,
}

impl Exit {
    pub fn code(self) -> u8 {
        self as u8
    }
}

/// Why a command could not do its work.
#[derive(Debug)]
pub struct Failure {
    pub exit: Exit,
    pub message: String,
}

impl Failure {
    pub fn usage(message: impl Into<String>) -> Self {
        Self {
            exit: Exit::Usage,
            message: message.into(),
        }
    }

    pub fn unreachable(message: impl Into<String>) -> Self {
        Self {
            exit: Exit::Unreachable,
            message: message.into(),
        }
    }

    pub fn does_not_hold(message: impl Into<String>) -> Self {
        Self {
            exit: Exit::DoesNotHold,
            message: message.into(),
        }
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

/// What a command returns: its exit code (its output is printed already).
pub type Outcome = Result<Exit, Failure>;

/// Service codes that mean "try later", not "fix something".
const TRANSIENT: &[&str] = &[
    "Throttling",
    "ThrottlingException",
    "TooManyRequestsException",
    "RequestLimitExceeded",
    "ServiceUnavailable",
    "ServiceUnavailableException",
    "InternalFailure",
    "InternalServiceError",
    "InternalServiceErrorException",
];

/// An AWS call that failed: unreachable (3) for the network, timeouts,
/// 5xx and throttling; configuration (2) for what the service refused (no
/// such stack, access denied) and for missing credentials.
pub fn aws<E>(operation: &str) -> impl FnOnce(SdkError<E, HttpResponse>) -> Failure
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    let operation = operation.to_string();
    move |err| {
        let text = cloudapps::text::scrub(&DisplayErrorContext(&err).to_string());
        let lower = text.to_ascii_lowercase();
        if lower.contains("loading credentials") || lower.contains("no credentials") {
            return Failure::usage(format!(
                "{operation}: no AWS credentials could be loaded: give them as for the AWS CLI (AWS_PROFILE, `aws sso login`, the environment, an instance role)"
            ));
        }
        let status = err.raw_response().map(|r| r.status().as_u16());
        let code = err.code().unwrap_or_default().to_string();
        let exit = match &err {
            SdkError::TimeoutError(_) | SdkError::ResponseError(_) => Exit::Unreachable,
            SdkError::DispatchFailure(d) if d.is_io() || d.is_timeout() => Exit::Unreachable,
            SdkError::ServiceError(_)
                if status.is_some_and(|s| s >= 500 || s == 429)
                    || TRANSIENT.contains(&code.as_str()) =>
            {
                Exit::Unreachable
            }
            SdkError::DispatchFailure(_) => Exit::Unreachable,
            _ => Exit::Usage,
        };
        let hint = if access_denied(&code, status) {
            " (your AWS credentials lack this permission)"
        } else {
            ""
        };
        Failure {
            exit,
            message: format!("{operation} failed{hint}: {text}"),
        }
    }
}

/// Whether a service error means "not allowed".
fn access_denied(code: &str, status: Option<u16>) -> bool {
    matches!(
        code,
        "AccessDenied" | "AccessDeniedException" | "UnauthorizedOperation"
    ) || status == Some(403)
}
