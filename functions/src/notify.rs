//! Telling people: a message to the stack's SNS topic (`NOTIFY_TOPIC_ARN`):
//! the hand-off steps, what a Delete could not do in the portal, a reminder
//! that a hand-off was not acted on. Never a secret value.

use tracing::info;

use crate::error::Error;
use crate::text::truncate;

/// The topic the stack's messages go to.
#[derive(Clone, Debug)]
pub struct Topic {
    sns: aws_sdk_sns::Client,
    arn: String,
}

impl Topic {
    pub fn new(sns: aws_sdk_sns::Client, arn: &str) -> Self {
        Self {
            sns,
            arn: arn.to_string(),
        }
    }

    pub fn arn(&self) -> &str {
        &self.arn
    }

    /// Publishes `message` under `subject` (cut to SNS's 100 characters);
    /// returns the message id.
    pub async fn publish(&self, subject: &str, message: &str) -> Result<String, Error> {
        let out = self
            .sns
            .publish()
            .topic_arn(&self.arn)
            .subject(truncate(subject, 96))
            .message(message)
            .send()
            .await
            .map_err(Error::aws("sns:Publish"))?;
        let id = out.message_id().unwrap_or_default().to_string();
        info!(topic = %self.arn, message_id = %id, subject, "published to the topic");
        Ok(id)
    }
}
