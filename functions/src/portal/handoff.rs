//! Hand-off: for tenants without API access, the guide's portal steps stay
//! with a person. Instead of writing to the portal, publish to SNS
//! (`NOTIFY_TOPIC_ARN`) what to do: the instance name, where the key is (the
//! secret's ARN, never the key) and the console steps.

use crate::error::Error;
use crate::notify::Topic;

/// What a hand-off message is about.
#[derive(Clone, Debug)]
pub struct Notice<'a> {
    pub account: &'a str,
    pub region: &'a str,
    pub instance: &'a str,
    pub connections: &'a [&'a str],
    pub user_arn: &'a str,
    pub secret_arn: &'a str,
    pub access_key_id: &'a str,
    /// The pre-flight's summary.
    pub checked: &'a str,
}

#[derive(Clone, Debug)]
pub struct Handoff {
    topic: Topic,
}

impl Handoff {
    pub fn new(topic: Topic) -> Self {
        Self { topic }
    }

    /// Asks a person to connect (or update) the instance with the stored key.
    pub async fn connect(&self, n: &Notice<'_>) -> Result<String, Error> {
        let subject = format!(
            "Connect AWS account {} to Defender for Cloud Apps",
            n.account
        );
        let configuration = n.connections.contains(&"SecurityConfiguration");
        let message = format!(
            "The AWS side of the Defender for Cloud Apps connector is ready in account {account} ({region}).\n\
             \n\
             Instance name:  {instance}\n\
             Connections:    {connections}\n\
             IAM user:       {user}\n\
             Access key id:  {key_id}\n\
             Secret:         {secret}\n\
             Checked:        the key authenticates; {checked}\n\
             \n\
             The key itself is only in the secret. To finish in the portal:\n\
             1. In the Microsoft Defender portal, open Settings > Cloud Apps > Connected apps > App Connectors.\n\
             2. If an Amazon Web Services instance named \"{instance}\" exists, open its menu and choose Edit settings; \
             otherwise choose + Connect an app > Amazon Web Services and name the instance \"{instance}\".\n\
             3. Select {boxes}.\n\
             4. In the AWS console, open Secrets Manager > {secret} > Retrieve secret value \
             (https://{region}.console.aws.amazon.com/secretsmanager/secret?name={secret_q}&region={region}); \
             paste AccessKeyId and SecretAccessKey into the form. Do not save them anywhere else.\n\
             5. Choose Connect, then Test API. The status turns Connected within minutes.\n\
             Key rotation replaces the key in the secret; repeat steps 2 to 5 after each rotation notice.\n",
            account = n.account,
            region = n.region,
            instance = n.instance,
            connections = n.connections.join(", "),
            user = n.user_arn,
            key_id = n.access_key_id,
            secret = n.secret_arn,
            secret_q = percent_encoding::utf8_percent_encode(
                n.secret_arn,
                percent_encoding::NON_ALPHANUMERIC
            ),
            checked = n.checked,
            boxes = if configuration {
                "Security auditing and Security configuration"
            } else {
                "Security auditing"
            },
        );
        self.topic.publish(&subject, &message).await
    }

    /// Asks a person to disable the instance: its key no longer exists.
    pub async fn disconnect(
        &self,
        account: &str,
        instance: &str,
        user_arn: &str,
    ) -> Result<String, Error> {
        let subject = format!("Disconnect AWS account {account} from Defender for Cloud Apps");
        let message = format!(
            "The connector for AWS account {account} was deleted: the IAM user {user_arn} and its keys are gone.\n\
             \n\
             In the Microsoft Defender portal, open Settings > Cloud Apps > Connected apps > App Connectors, \
             and disable or remove the Amazon Web Services instance \"{instance}\", unless it was connected again since.\n"
        );
        self.topic.publish(&subject, &message).await
    }
}
