//! A deployed connector as `cloudapps` sees it, in moto: a CloudFormation
//! stack of a small template of its own (moto's CloudFormation cannot run
//! the custom resource), with the real template's parameters, its
//! functions' log groups (`/cloudapps/<stack>/health`, `.../rotation`) and
//! outputs that carry the values of a world where the connector ran: the
//! stack is made first (its id is the one the world's secret is tagged
//! with), the connector's Create runs in that world, and a stack update
//! gives the outputs the values Create answered.

use aws_config::SdkConfig;
use serde_json::{Value, json};
use testbed::{Moto, PortalAuth, REGION, World, data, sdk_config};

/// The outputs of template.yaml that Create's `Data` carries.
const FROM_DATA: [&str; 5] = [
    "UserArn",
    "SecretArn",
    "TrailArn",
    "CloudTrailCoverage",
    "PortalInstance",
];

/// The test stack's template: parameters for the real template's and for
/// each output; the two log groups; with `function`, a HealthFunction.
fn template(function: bool) -> Value {
    let mut parameters = serde_json::Map::new();
    let names = [
        "PortalMode",
        "PortalUrl",
        "PortalCredentialsSecretArn",
        "RotationDays",
        "ActivityWindowHours",
        "HealthRepair",
        "UserArn",
        "SecretArn",
        "TrailArn",
        "CloudTrailCoverage",
        "PortalInstance",
        "PortalStatus",
        "NotificationTopicArn",
    ];
    for name in names {
        parameters.insert(name.into(), json!({"Type": "String", "Default": ""}));
    }
    let mut outputs = serde_json::Map::new();
    for name in &names[6..] {
        outputs.insert(name.to_string(), json!({"Value": {"Ref": name}}));
    }
    outputs.insert(
        "HealthLogGroup".into(),
        json!({"Value": {"Ref": "HealthFunctionLogs"}}),
    );
    let mut resources = json!({
        "HealthFunctionLogs": {"Type": "AWS::Logs::LogGroup",
            "Properties": {"LogGroupName": {"Fn::Sub": "/cloudapps/${AWS::StackName}/health"}}},
        "RotationFunctionLogs": {"Type": "AWS::Logs::LogGroup",
            "Properties": {"LogGroupName": {"Fn::Sub": "/cloudapps/${AWS::StackName}/rotation"}}},
    });
    if function {
        resources["HealthRole"] = json!({"Type": "AWS::IAM::Role", "Properties": {
            "AssumeRolePolicyDocument": {"Version": "2012-10-17", "Statement": [{"Effect": "Allow",
                "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}]}}});
        resources["HealthFunction"] = json!({"Type": "AWS::Lambda::Function", "Properties": {
            "Runtime": "python3.12", "Handler": "index.handler",
            "Role": {"Fn::GetAtt": ["HealthRole", "Arn"]},
            "Code": {"ZipFile": "def handler(event, context):\n    return {}\n"}}});
    }
    json!({"AWSTemplateFormatVersion": "2010-09-09", "Parameters": parameters,
        "Resources": resources, "Outputs": outputs})
}

/// A connector's stack in moto and the world it stands for.
pub struct Deployed {
    pub world: World,
    pub name: String,
    pub cfn: aws_sdk_cloudformation::Client,
    pub logs: aws_sdk_cloudwatchlogs::Client,
}

/// The SDK configuration of a role in `account` (a fresh account of moto).
async fn account_sdk(moto: &Moto, account: &str) -> SdkConfig {
    let base = sdk_config(&moto.endpoint, "testing", "testing", None).await;
    let assumed = aws_sdk_sts::Client::new(&base)
        .assume_role()
        .role_arn(format!("arn:aws:iam::{account}:role/testbed-admin"))
        .role_session_name("cloudapps-cli-test")
        .send()
        .await
        .unwrap();
    let c = assumed.credentials().unwrap();
    sdk_config(
        &moto.endpoint,
        c.access_key_id(),
        c.secret_access_key(),
        Some(c.session_token()),
    )
    .await
}

/// A stack (with a HealthFunction when `function`) and a world in its
/// account whose secret is that stack's; nothing ran yet.
pub async fn stack(moto: &Moto, function: bool) -> Deployed {
    let account = format!("{:012}", fastrand::u64(100_000_000_000..999_999_999_999));
    let name = format!("cloudapps-{:08x}", fastrand::u32(..));
    let sdk = account_sdk(moto, &account).await;
    let cfn = aws_sdk_cloudformation::Client::new(&sdk);
    let made = cfn
        .create_stack()
        .stack_name(&name)
        .template_body(template(function).to_string())
        .send()
        .await
        .expect("CreateStack in moto");
    let stack_id = made.stack_id().unwrap().to_string();
    let world = World::in_account(moto, &account, &stack_id).await;
    Deployed {
        world,
        name,
        cfn,
        logs: aws_sdk_cloudwatchlogs::Client::new(&sdk),
    }
}

/// A connector deployed in `api` mode against the portal emulator
/// (`config`), its Create run, rotation on, and the stack's outputs set.
pub async fn connected(moto: &Moto, config: portal_emulator::Config) -> Deployed {
    let mut d = stack(moto, false).await;
    d.world.use_portal(config, PortalAuth::Token).await;
    let body = d.world.ok(&d.world.event("create.json")).await;
    testbed::health::enable_rotation(&d.world).await;
    let portal_url = d.world.emulator().url.clone();
    let mut values: Vec<(String, String)> = FROM_DATA
        .iter()
        .map(|k| (k.to_string(), data(&body, k).to_string()))
        .collect();
    values.extend([
        (
            "PortalStatus".to_string(),
            data(&body, "PortalStatus").to_string(),
        ),
        ("PortalMode".to_string(), "api".to_string()),
        ("PortalUrl".to_string(), portal_url),
        (
            "PortalCredentialsSecretArn".to_string(),
            d.world.portal_secret.clone(),
        ),
        ("RotationDays".to_string(), "30".to_string()),
        ("ActivityWindowHours".to_string(), "24".to_string()),
        ("HealthRepair".to_string(), "false".to_string()),
    ]);
    d.set(&values).await;
    d
}

impl Deployed {
    /// Updates the stack's parameters (and so its outputs).
    pub async fn set(&self, values: &[(String, String)]) {
        let parameters: Vec<_> = values
            .iter()
            .map(|(k, v)| {
                aws_sdk_cloudformation::types::Parameter::builder()
                    .parameter_key(k)
                    .parameter_value(v)
                    .build()
            })
            .collect();
        self.cfn
            .update_stack()
            .stack_name(&self.name)
            .use_previous_template(true)
            .set_parameters(Some(parameters))
            .send()
            .await
            .expect("UpdateStack in moto");
    }

    /// Writes `lines` to the stack's log group of `function`, as the
    /// function's Lambda would (one stream per call).
    pub async fn log(&self, function: &str, lines: &[String]) {
        let group = format!("/cloudapps/{}/{function}", self.name);
        let stream = format!("2026/11/23/[$LATEST]{:016x}", fastrand::u64(..));
        self.logs
            .create_log_stream()
            .log_group_name(&group)
            .log_stream_name(&stream)
            .send()
            .await
            .expect("CreateLogStream");
        let now = i64::try_from(cloudapps::time::now_millis()).unwrap();
        let events: Vec<_> = lines
            .iter()
            .map(|l| {
                aws_sdk_cloudwatchlogs::types::InputLogEvent::builder()
                    .timestamp(now)
                    .message(l)
                    .build()
                    .unwrap()
            })
            .collect();
        self.logs
            .put_log_events()
            .log_group_name(&group)
            .log_stream_name(&stream)
            .set_log_events(Some(events))
            .send()
            .await
            .expect("PutLogEvents");
    }

    /// The stack's name in the region of the tests.
    pub fn args<'a>(&'a self, command: &'a [&'a str]) -> Vec<&'a str> {
        let mut args = command.to_vec();
        args.extend(["--stack", self.name.as_str(), "--region", REGION]);
        args
    }
}
