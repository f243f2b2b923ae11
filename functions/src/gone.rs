//! "A thing already gone is done": Delete succeeds when what it removes is
//! not there any more, and a read of what may not exist answers `None`
//! instead of an error. One rule for every service, by the error code AWS
//! gives for "no such thing".

use std::error::Error as StdError;
use std::fmt;

use aws_sdk_iam::error::{ProvideErrorMetadata, SdkError};

use crate::error::Error;

/// The codes AWS answers when the named thing does not exist.
const GONE: [&str; 6] = [
    "NoSuchEntity",
    "TrailNotFoundException",
    "ResourceNotFoundException",
    "NoSuchBucket",
    "NotFound",
    "NotFoundException",
];

/// What a delete step did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Removal {
    Deleted,
    AlreadyGone,
    /// Exists but is not what this physical id made (another stack's, or the
    /// user now used under another path by the resource's successor).
    LeftAlone,
}

/// True when the call failed because what it names does not exist.
pub fn is_gone<E: ProvideErrorMetadata, R>(err: &SdkError<E, R>) -> bool {
    matches!(err, SdkError::ServiceError(_)) && err.code().is_some_and(|c| GONE.contains(&c))
}

/// The call's answer, or `None` when what it names is already gone; any
/// other failure is the error of `operation`.
pub fn unless_gone<T, E, R>(
    sent: Result<T, SdkError<E, R>>,
    operation: &'static str,
) -> Result<Option<T>, Error>
where
    E: ProvideErrorMetadata + StdError + Send + Sync + 'static,
    R: fmt::Debug + Send + Sync + 'static,
{
    match sent {
        Ok(out) => Ok(Some(out)),
        Err(e) if is_gone(&e) => Ok(None),
        Err(e) => Err(Error::aws(operation)(e)),
    }
}

/// A delete call: [`Removal::Deleted`], or [`Removal::AlreadyGone`].
pub fn removal<T, E, R>(
    sent: Result<T, SdkError<E, R>>,
    operation: &'static str,
) -> Result<Removal, Error>
where
    E: ProvideErrorMetadata + StdError + Send + Sync + 'static,
    R: fmt::Debug + Send + Sync + 'static,
{
    Ok(match unless_gone(sent, operation)? {
        Some(_) => Removal::Deleted,
        None => Removal::AlreadyGone,
    })
}
