//! One test's own world: a fresh AWS account in moto, the secret the
//! template would declare, a stack id, a ResponseURL catcher, and the
//! connector run in-process against them, as the Lambda runs it.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use aws_config::SdkConfig;
use cloudapps::access_key::Readiness;
use cloudapps::cfn::{self, Answer, Invocation};
use cloudapps::config::Settings;
use cloudapps::connector::Connector;
use cloudapps::deps::Deps;
use cloudapps::portal::Portal;
use serde_json::{Value, json};

use crate::moto::signing_as;
use crate::portal::{PortalAuth, quick_portal};
use crate::{Catcher, Moto, REGION, capture_logs, root, sdk_config};

/// Creates a secret as a template declares it: CloudFormation tags it with
/// the stack id. Returns its ARN.
pub(crate) async fn declare_secret(
    secrets: &aws_sdk_secretsmanager::Client,
    name: &str,
    stack_id: &str,
) -> String {
    let tag = aws_sdk_secretsmanager::types::Tag::builder()
        .key("aws:cloudformation:stack-id")
        .value(stack_id)
        .build();
    let out = secrets
        .create_secret()
        .name(name)
        .tags(tag)
        .send()
        .await
        .unwrap();
    out.arn().unwrap().to_string()
}

/// Settings for tests: quick polls, a short margin.
pub fn test_settings() -> Settings {
    Settings {
        deadline_margin: Duration::from_secs(2),
        key_ready: Readiness {
            timeout: Duration::from_secs(20),
            first_poll: Duration::from_millis(50),
            max_poll: Duration::from_millis(500),
        },
        preflight_settle: Duration::from_secs(1),
    }
}

/// One test's own world: a fresh AWS account in moto, the secret the
/// template would declare, a stack id, a ResponseURL catcher.
pub struct World {
    pub endpoint: String,
    pub account: String,
    pub sdk: SdkConfig,
    /// The credentials of `sdk` (to hand to a function process).
    pub credentials: (String, String, String),
    pub stack_id: String,
    pub secret_arn: String,
    pub catcher: Catcher,
    pub deps: Deps,
    pub iam: aws_sdk_iam::Client,
    pub secrets: aws_sdk_secretsmanager::Client,
    pub cloudtrail: aws_sdk_cloudtrail::Client,
    pub s3: aws_sdk_s3::Client,
    /// Extra texts to scan for leaks (outputs of function processes).
    pub extra_output: Mutex<Vec<(String, String)>>,
    /// The portal emulator, once `use_portal` connected the world to one.
    pub portal: Option<portal_emulator::Emulator>,
    /// The secret that holds the portal credentials (`use_portal`).
    pub portal_secret: String,
}

/// The environment of a function process run against `w` (JSON logs at
/// TRACE, quick key polls), plus `extra`.
pub fn function_env(w: &World, extra: &[(&str, &str)]) -> Vec<(String, String)> {
    [
        ("AWS_REGION", REGION),
        ("AWS_ENDPOINT_URL", &w.endpoint),
        ("AWS_ACCESS_KEY_ID", &w.credentials.0),
        ("AWS_SECRET_ACCESS_KEY", &w.credentials.1),
        ("AWS_SESSION_TOKEN", &w.credentials.2),
        ("AWS_LAMBDA_LOG_FORMAT", "JSON"),
        ("AWS_LAMBDA_LOG_LEVEL", "TRACE"),
        ("KEY_READY_POLL_MS", "50"),
    ]
    .iter()
    .chain(extra)
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect()
}

impl World {
    pub async fn new() -> World {
        World::on(Moto::shared()).await
    }

    /// A world in `moto` whose connector uses the portal emulator
    /// ([`quick_portal`], API token): `PORTAL_MODE=api`.
    pub async fn with_portal(moto: &Moto) -> World {
        let mut w = World::on(moto).await;
        w.use_portal(quick_portal(), PortalAuth::Token).await;
        w
    }

    /// A world in a new account of `moto` (entered with sts:AssumeRole, as
    /// moto keys accounts by the credentials).
    pub async fn on(moto: &Moto) -> World {
        let account = format!("{:012}", fastrand::u64(100_000_000_000..999_999_999_999));
        let suffix = format!("{:08x}", fastrand::u32(..));
        let stack_id = format!(
            "arn:aws:cloudformation:{REGION}:{account}:stack/cloudapps-test-{suffix}/{:08x}-0000-4000-8000-{:012x}",
            fastrand::u32(..),
            fastrand::u64(..0xffff_ffff_ffff)
        );
        World::in_account(moto, &account, &stack_id).await
    }

    /// A world in `account` of `moto` for the stack `stack_id` (a stack
    /// instance of a stack set, say): its secret is declared as that stack's.
    pub async fn in_account(moto: &Moto, account: &str, stack_id: &str) -> World {
        capture_logs();
        let account = account.to_string();
        let stack_id = stack_id.to_string();
        let base = sdk_config(&moto.endpoint, "testing", "testing", None).await;
        let assumed = aws_sdk_sts::Client::new(&base)
            .assume_role()
            .role_arn(format!("arn:aws:iam::{account}:role/testbed-admin"))
            .role_session_name("testbed")
            .send()
            .await
            .expect("assume a role in a fresh account");
        let c = assumed.credentials().unwrap();
        let credentials = (
            c.access_key_id().to_string(),
            c.secret_access_key().to_string(),
            c.session_token().to_string(),
        );
        let sdk = signing_as(&base, &credentials.0, &credentials.1, Some(&credentials.2));
        let deps = Deps::new(&sdk, test_settings(), Portal::Off).unwrap();
        let suffix = format!("{:08x}", fastrand::u32(..));
        let secrets = aws_sdk_secretsmanager::Client::new(&sdk);
        let secret_arn = declare_secret(
            &secrets,
            &format!("cloudapps/connector-key-{suffix}"),
            &stack_id,
        )
        .await;
        let s3 = cloudapps::aws::s3_client(&sdk);
        World {
            endpoint: moto.endpoint.clone(),
            account,
            iam: aws_sdk_iam::Client::new(&sdk),
            cloudtrail: aws_sdk_cloudtrail::Client::new(&sdk),
            s3,
            secrets,
            sdk,
            credentials,
            stack_id,
            secret_arn,
            catcher: Catcher::start().await,
            deps,
            extra_output: Mutex::new(Vec::new()),
            portal: None,
            portal_secret: String::new(),
        }
    }

    /// Runs the connector as an IAM user of this account with the inline
    /// `policy` (for tests under IAM enforcement, where the world's assumed
    /// role cannot act): `sdk` and `deps` sign as that user from now on.
    pub async fn act_as_function_user(&mut self, policy: &Value) {
        let name = "cloudapps-function";
        self.iam.create_user().user_name(name).send().await.unwrap();
        self.iam
            .put_user_policy()
            .user_name(name)
            .policy_name("function")
            .policy_document(policy.to_string())
            .send()
            .await
            .unwrap();
        let out = self
            .iam
            .create_access_key()
            .user_name(name)
            .send()
            .await
            .unwrap();
        let k = out.access_key().unwrap();
        self.sdk = sdk_config(
            &self.endpoint,
            k.access_key_id(),
            k.secret_access_key(),
            None,
        )
        .await;
        self.deps = Deps::new(&self.sdk, test_settings(), Portal::Off).unwrap();
    }

    /// The one answer CloudFormation got for `event` (sent by a function
    /// process, whose outcome says nothing of what reached CloudFormation).
    pub fn answer_to(&self, event: &Value) -> Value {
        let caught = self.catcher.for_url(event["ResponseURL"].as_str().unwrap());
        assert_eq!(caught.len(), 1, "exactly one answer to CloudFormation");
        caught[0].json()
    }

    /// A sample event from events/, made this world's: its stack, secret,
    /// a fresh RequestId and a ResponseURL to the catcher.
    pub fn event(&self, file: &str) -> Value {
        let text = std::fs::read_to_string(root().join("events").join(file)).unwrap();
        let mut event: Value = serde_json::from_str(&text).unwrap();
        let request_id = format!("{:08x}-{:04x}", fastrand::u32(..), fastrand::u16(..));
        event["RequestId"] = json!(request_id);
        event["ResponseURL"] = json!(self.catcher.url_for(&request_id));
        event["StackId"] = json!(self.stack_id);
        for props in ["ResourceProperties", "OldResourceProperties"] {
            if event.get(props).is_some() {
                event[props]["SecretArn"] = json!(self.secret_arn);
            }
        }
        event
    }

    /// Runs one event through the connector, as the Lambda does, with a
    /// deadline `budget` away. Returns the answer and the body CloudFormation got.
    pub async fn run_with_budget(&self, event: &Value, budget: Duration) -> (Answer, Value) {
        let url = event["ResponseURL"].as_str().unwrap().to_string();
        let invocation = Invocation {
            deadline: Instant::now() + budget,
            margin: self.deps.settings.deadline_margin,
            log_stream: Some("2026/11/23/[$LATEST]testbed".into()),
        };
        let before = self.catcher.for_url(&url).len();
        let answer = cfn::serve(
            &Connector::new(&self.deps),
            &self.deps.http,
            event.clone(),
            &invocation,
        )
        .await
        .expect("the answer is delivered");
        let caught = self.catcher.for_url(&url);
        assert_eq!(
            caught.len(),
            before + 1,
            "exactly one answer per invocation"
        );
        let last = caught.last().unwrap();
        assert_eq!(last.method, "PUT");
        assert!(
            last.body.len() < 4096,
            "response body is {} bytes",
            last.body.len()
        );
        let body = last.json();
        assert_eq!(body["PhysicalResourceId"], answer.physical_id.as_str());
        assert_eq!(body["RequestId"], event["RequestId"]);
        assert_eq!(body["StackId"], event["StackId"]);
        assert_eq!(body["LogicalResourceId"], event["LogicalResourceId"]);
        (answer, body)
    }

    pub async fn run(&self, event: &Value) -> (Answer, Value) {
        self.run_with_budget(event, Duration::from_secs(60)).await
    }

    /// Runs an event that must succeed; returns the response body.
    pub async fn ok(&self, event: &Value) -> Value {
        let (answer, body) = self.run(event).await;
        assert_eq!(answer.status, "SUCCESS", "{:?}", answer.reason);
        assert_eq!(body["Status"], "SUCCESS");
        body
    }

    /// Update and Delete events that follow `response` to `event`.
    pub fn follow_up(
        &self,
        file: &str,
        physical_id: &str,
        props: &Value,
        old_props: Option<&Value>,
    ) -> Value {
        let mut e = self.event(file);
        e["PhysicalResourceId"] = json!(physical_id);
        e["ResourceProperties"] = props.clone();
        if let Some(old) = old_props {
            e["OldResourceProperties"] = old.clone();
        }
        e
    }
}
