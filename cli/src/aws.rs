//! The caller's AWS configuration (as the AWS CLI finds it: environment,
//! profile, SSO, instance role; `--region` first) and the connector's stack
//! as CloudFormation describes it: its outputs (template.yaml's
//! `Outputs`), its parameters and its resources.

use std::collections::BTreeMap;

use aws_config::{BehaviorVersion, Region, SdkConfig};

use crate::outcome::{self, Failure};

/// The SDK configuration of the caller: aws_config's defaults, with
/// `region` when given.
pub async fn sdk(region: Option<&str>) -> Result<SdkConfig, Failure> {
    let mut loader = aws_config::defaults(BehaviorVersion::latest());
    if let Some(region) = region {
        loader = loader.region(Region::new(region.to_string()));
    }
    let sdk = loader.load().await;
    if sdk.region().is_none() {
        return Err(Failure::usage(
            "no AWS region: give --region, or set AWS_REGION (or a region in your AWS profile)",
        ));
    }
    Ok(sdk)
}

/// The connector's stack, as DescribeStacks shows it.
#[derive(Clone, Debug)]
pub struct Stack {
    pub name: String,
    pub id: String,
    pub status: String,
    pub outputs: BTreeMap<String, String>,
    pub parameters: BTreeMap<String, String>,
}

/// The outputs a connector stack has (template.yaml).
pub const OUTPUTS: [&str; 8] = [
    "UserArn",
    "SecretArn",
    "TrailArn",
    "CloudTrailCoverage",
    "PortalInstance",
    "PortalStatus",
    "HealthLogGroup",
    "NotificationTopicArn",
];

impl Stack {
    /// The stack `name` (or ARN); it must have a connector's outputs.
    pub async fn describe(
        cfn: &aws_sdk_cloudformation::Client,
        name: &str,
    ) -> Result<Stack, Failure> {
        let out = cfn
            .describe_stacks()
            .stack_name(name)
            .send()
            .await
            .map_err(|e| {
                let f = outcome::aws("cloudformation:DescribeStacks")(e);
                if f.message.contains("does not exist") {
                    Failure::usage(format!(
                        "no stack {name:?} in this account and region (give --region, or the stack's name as `aws cloudformation list-stacks` shows it)"
                    ))
                } else {
                    f
                }
            })?;
        let s = out
            .stacks()
            .first()
            .ok_or_else(|| Failure::usage(format!("no stack {name:?}")))?;
        let stack = Stack {
            name: s.stack_name().unwrap_or(name).to_string(),
            id: s.stack_id().unwrap_or_default().to_string(),
            status: s
                .stack_status()
                .map(|st| st.as_str().to_string())
                .unwrap_or_default(),
            outputs: s
                .outputs()
                .iter()
                .filter_map(|o| {
                    Some((
                        o.output_key()?.to_string(),
                        o.output_value().unwrap_or_default().to_string(),
                    ))
                })
                .collect(),
            parameters: s
                .parameters()
                .iter()
                .filter_map(|p| {
                    Some((
                        p.parameter_key()?.to_string(),
                        p.parameter_value().unwrap_or_default().to_string(),
                    ))
                })
                .collect(),
        };
        if stack.output("SecretArn").is_empty() {
            return Err(Failure::usage(format!(
                "the stack {} ({}) has no SecretArn output: it is not a Defender for Cloud Apps connector stack (template.yaml), or its creation did not finish",
                stack.name, stack.status
            )));
        }
        Ok(stack)
    }

    /// An output's value; empty when the stack has none by that name.
    pub fn output(&self, key: &str) -> &str {
        self.outputs.get(key).map_or("", String::as_str)
    }

    /// A parameter's value; empty when not set.
    pub fn parameter(&self, key: &str) -> &str {
        self.parameters.get(key).map_or("", String::as_str)
    }

    /// The physical id of the resource `logical` (a function's name, say).
    pub async fn resource(
        &self,
        cfn: &aws_sdk_cloudformation::Client,
        logical: &str,
    ) -> Result<String, Failure> {
        let out = cfn
            .describe_stack_resource()
            .stack_name(&self.name)
            .logical_resource_id(logical)
            .send()
            .await
            .map_err(outcome::aws("cloudformation:DescribeStackResource"))?;
        out.stack_resource_detail()
            .and_then(|d| d.physical_resource_id())
            .filter(|id| !id.is_empty())
            .map(str::to_string)
            .ok_or_else(|| {
                Failure::usage(format!("the stack {} has no {logical} resource", self.name))
            })
    }

    /// The log group of one of the stack's functions (template.yaml names
    /// them `/cloudapps/<stack>/<function>`).
    pub fn log_group(&self, function: &str) -> String {
        match (function, self.output("HealthLogGroup")) {
            ("health", group) if !group.is_empty() => group.to_string(),
            _ => format!("/cloudapps/{}/{function}", self.name),
        }
    }
}
