//! Check the trail: replaces "turn CloudTrail on, Apply to all regions: Yes".
//!
//! Covered = some trail visible to the account (organization trails and
//! shadow copies of multi-region trails included) that is multi-region,
//! logging, and records management events, read and write ([`survey`]).
//! `Ensure` creates the stack's own trail when none covers ([`own`]), with a
//! locked-down log bucket unless one is given ([`bucket`]); `Verify` fails
//! naming what is missing; `Ignore` only reports. A trail the stack did not
//! create is only ever read.

mod bucket;
pub mod own;
pub mod survey;

use tracing::info;

use crate::aws::Aws;
use crate::error::Error;
use crate::names::{StackRef, UserRef};

pub use bucket::bucket_policy;
pub use own::{delete_own_trail, restart_own_trail};
pub use survey::{Coverage, How, TrailView, assess, management_events, read_logging_raw, survey};

/// What to do about CloudTrail coverage (the `CloudTrail` property).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TrailMode {
    /// Create a multi-region trail when none covers all regions.
    Ensure,
    /// Fail with the reason when none covers all regions.
    Verify,
    /// Only report.
    Ignore,
}

/// What the trail the stack creates must be (when it creates one): the
/// CIS controls it can meet with what it is given.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct OwnTrail {
    /// An existing bucket for its logs, instead of one the stack creates.
    pub bucket: Option<String>,
    /// The KMS key its log files are encrypted with (CloudTrail.2, CIS 3.5).
    pub kms_key: Option<String>,
    /// Delivery to CloudWatch Logs (CloudTrail.5, CIS 3.4): the log group
    /// (its ARN ending in `:*`) and the role CloudTrail assumes to write.
    pub cloudwatch_logs: Option<(String, String)>,
    /// Server access logging of the bucket the stack creates, into this
    /// bucket (S3.9, CIS 3.6).
    pub access_logs_bucket: Option<String>,
    /// The stack's `Tags`, besides its own.
    pub tags: Vec<(String, String)>,
}

impl TrailMode {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Ensure => "Ensure",
            Self::Verify => "Verify",
            Self::Ignore => "Ignore",
        }
    }
}

/// The coverage step of Create/Update, per `mode`. `owner` is the physical
/// id now using the stack's trail (see [`crate::names::TAG_OWNER`]).
pub async fn converge(
    aws: &Aws,
    stack: &StackRef,
    mode: TrailMode,
    want: &OwnTrail,
    owner: &UserRef,
) -> Result<Coverage, Error> {
    let ct = &aws.cloudtrail;
    let own_name = stack.trail_name();
    let own_arn = stack.trail_arn(&own_name);
    own::adopt(ct, stack, &own_name, owner).await?;
    let views = match survey(ct).await {
        Ok(views) => views,
        Err(e) if mode == TrailMode::Ignore => {
            return Ok(Coverage {
                how: How::Unknown,
                trail_arn: String::new(),
                detail: format!("trails could not be read: {e}"),
            });
        }
        Err(e) => return Err(e),
    };
    match (assess(&views, &own_arn), mode) {
        // The stack's own trail covers: it is brought to what is asked now
        // (a key, CloudWatch Logs, tags given in an Update).
        (Ok(coverage), TrailMode::Ensure) if coverage.how == How::CreatedTrail => {
            own::ensure_own_trail(aws, stack, &own_name, want, owner).await?;
            Ok(coverage)
        }
        (Ok(coverage), _) => Ok(coverage),
        (Err(reason), TrailMode::Ignore) => Ok(Coverage {
            how: How::NotCovered,
            trail_arn: String::new(),
            detail: reason,
        }),
        (Err(reason), TrailMode::Verify) => Err(Error::NotCovered(format!(
            "{reason}. Turn on a multi-region trail, or set CloudTrail to Ensure to have one created"
        ))),
        (Err(reason), TrailMode::Ensure) => {
            info!(%reason, "no trail covers the account: creating one");
            let arn = own::ensure_own_trail(aws, stack, &own_name, want, owner).await?;
            Ok(Coverage {
                how: How::CreatedTrail,
                trail_arn: arn,
                detail: survey::own_detail(&own_name),
            })
        }
    }
}
