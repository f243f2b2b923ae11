//! A module of tests/template.rs: the template's documents, resolved as
//! CloudFormation would for a stack (tests/support/template_resolve.py),
//! read without running anything: the roles' wildcards, the user's
//! permissions boundary (IAM's size limit, what it lets through of
//! SecurityAudit and what it refuses), the functions' asynchronous
//! invocation and the health check's alarms.

use std::collections::BTreeSet;

use serde_json::{Value, json};
use testbed::{World, template};

use super::{BOTH, TEMPLATE};

/// IAM's limit on a managed policy's document, whitespace not counted.
const MANAGED_POLICY_LIMIT: usize = 6144;

/// What SecurityAudit grants, of a service the boundary reads, that the
/// boundary refuses: log file content, CodePipeline's artifact credentials,
/// and a Config delivery (not a read).
const SECURITY_AUDIT_REFUSED: [&str; 3] = [
    "codepipeline:GetJobDetails",
    "config:Deliver*",
    "rds:DownloadDBLogFilePortion",
];

/// Reads of data or credentials, and writes: the boundary refuses each,
/// with SecurityConfiguration too.
const DATA_AND_CREDENTIALS: [&str; 44] = [
    "secretsmanager:GetSecretValue",
    "secretsmanager:BatchGetSecretValue",
    "ssm:GetParameter",
    "ssm:GetParameters",
    "ssm:GetParametersByPath",
    "ssm:GetCommandInvocation",
    "ssm:ListCommandInvocations",
    "kms:Decrypt",
    "s3:GetObject",
    "s3:GetObjectVersion",
    "s3:GetDataAccess",
    "s3:PutObject",
    "dynamodb:GetItem",
    "dynamodb:BatchGetItem",
    "dynamodb:Query",
    "dynamodb:Scan",
    "dynamodb:PartiQLSelect",
    "lambda:GetFunction",
    "lambda:GetLayerVersion",
    "lambda:InvokeFunction",
    "ecr:GetAuthorizationToken",
    "ecr:BatchGetImage",
    "ecr:GetDownloadUrlForLayer",
    "glacier:GetJobOutput",
    "logs:GetLogEvents",
    "logs:FilterLogEvents",
    "logs:GetQueryResults",
    "sqs:ReceiveMessage",
    "kinesis:GetRecords",
    "athena:GetQueryResults",
    "rds:DownloadDBLogFilePortion",
    "ec2:GetPasswordData",
    "ec2:GetConsoleOutput",
    "glue:GetConnection",
    "codepipeline:GetJobDetails",
    "storagegateway:DescribeChapCredentials",
    "wafv2:GetSampledRequests",
    "sts:GetSessionToken",
    "sts:AssumeRole",
    "iam:CreateUser",
    "iam:CreateAccessKey",
    "iam:AttachUserPolicy",
    "iam:PassRole",
    "iam:DeleteUserPermissionsBoundary",
];

/// Every option of the template on (the stack's trail key, log group and
/// delivery role, every KMS key, a role boundary, both connections).
fn every_option(w: &World) -> Value {
    let key = |n: u32| {
        format!(
            "arn:aws:kms:us-east-1:{}:key/0f0e0d0c-0000-4000-8000-00000000000{n}",
            w.account
        )
    };
    json!({
        "Connections": BOTH, "Tags": "team=security,cost-center=1234",
        "CreateTrailKmsKey": "true", "TrailCloudWatchLogs": "true",
        "TrailBucketAccessLogsBucket": format!("access-logs-{}", w.account),
        "PortalMode": "api", "PortalUrl": "https://contoso.us3.portal.cloudappsecurity.com",
        "PortalCredentialsSecretArn": "arn:aws:secretsmanager:us-east-1:444455556666:secret:portal-AbCdEf",
        "PortalCredentialsKmsKeyArn": "arn:aws:kms:us-east-1:444455556666:key/0f0e0d0c-0000-4000-8000-000000000001",
        "AdoptExistingInstance": "true", "SecretKmsKeyArn": key(2), "TopicKmsKeyArn": key(3),
        "LogsKmsKeyArn": key(4), "NotificationEmail": "secops@example.com",
        "PermissionsBoundaryArn": format!("arn:aws:iam::{}:policy/org/workload-boundary", w.account),
        "HealthRepair": "true", "HealthCheckHours": "6",
    })
}

fn world() -> (tokio::runtime::Runtime, World) {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let w = rt.block_on(World::new());
    (rt, w)
}

fn resolved(w: &World, parameters: &Value) -> Value {
    let topic = format!("arn:aws:sns:us-east-1:{}:cloudapps-notify", w.account);
    template::resolve(TEMPLATE, w, parameters, &template::resources(w, &topic))
}

/// The template resolved with the defaults, with both connections, and
/// with every option on.
fn variants(w: &World) -> Vec<(&'static str, Value)> {
    vec![
        ("defaults", resolved(w, &json!({}))),
        (
            "both connections",
            resolved(w, &json!({"Connections": BOTH})),
        ),
        ("every option", resolved(w, &every_option(w))),
    ]
}

/// A resource of the resolved template, every intrinsic resolved.
fn resource<'a>(resolved: &'a Value, name: &str) -> &'a Value {
    let r = &resolved["Resources"][name];
    assert!(r.is_object(), "the template has no resource {name} here");
    assert!(r.get("Unresolved").is_none(), "{name}: {r}");
    &r["Properties"]
}

pub(super) fn as_list(v: &Value) -> Vec<String> {
    match v {
        Value::String(s) => vec![s.clone()],
        Value::Array(a) => a.iter().map(|x| x.as_str().unwrap().to_string()).collect(),
        _ => panic!("not a string or list: {v}"),
    }
}

/// IAM's wildcard match of `pattern` against `value`: `*` any run, `?` one
/// character, without case (action names are case-insensitive).
pub(super) fn glob(pattern: &str, value: &str) -> bool {
    let (p, v): (Vec<char>, Vec<char>) = (
        pattern.to_lowercase().chars().collect(),
        value.to_lowercase().chars().collect(),
    );
    let (mut i, mut j, mut star, mut mark) = (0, 0, None, 0);
    while j < v.len() {
        if i < p.len() && (p[i] == '?' || p[i] == v[j]) {
            (i, j) = (i + 1, j + 1);
        } else if i < p.len() && p[i] == '*' {
            (star, mark, i) = (Some(i), j, i + 1);
        } else if let Some(s) = star {
            (i, mark, j) = (s + 1, mark + 1, mark + 1);
        } else {
            return false;
        }
    }
    p[i..].iter().all(|c| *c == '*')
}

/// Whether the policy `document` allows `action` on `resource`: a statement
/// without a condition whose actions and resources match it, and no such
/// Deny. `action` may itself be a pattern of SecurityAudit's ("ec2:Describe*"):
/// a statement matches it when its pattern matches the text, or the other way.
fn allows(document: &Value, action: &str, resource: &str) -> bool {
    let mut allowed = false;
    for s in document["Statement"].as_array().unwrap() {
        if s.get("Condition").is_some() {
            continue;
        }
        let matches = as_list(&s["Action"])
            .iter()
            .any(|p| glob(p, action) || glob(action, p));
        let on = as_list(&s["Resource"]).iter().any(|r| glob(r, resource));
        if matches && on {
            if s["Effect"] == "Deny" {
                return false;
            }
            allowed = true;
        }
    }
    allowed
}

fn boundary(resolved: &Value) -> &Value {
    let policy = &resolved["ManagedPolicies"]["UserPermissionsBoundary"];
    assert!(
        policy.is_object(),
        "the template has no UserPermissionsBoundary"
    );
    &policy["PolicyDocument"]
}

/// Each statement of every policy document in `node` (roles' inline
/// policies, managed policies, key and topic policies, trust policies).
fn statements<'a>(node: &'a Value, out: &mut Vec<&'a Value>) {
    match node {
        Value::Object(map) => {
            if let Some(Value::Array(list)) = map.get("Statement") {
                out.extend(list.iter());
            }
            map.values().for_each(|v| statements(v, out));
        }
        Value::Array(list) => list.iter().for_each(|v| statements(v, out)),
        _ => {}
    }
}

#[test]
fn the_users_boundary_fits_iams_size_limit_for_a_managed_policy() {
    // GIVEN the boundary as the template resolves it, SecurityConfiguration's
    // reads included
    let (_rt, w) = world();
    for (name, resolved) in variants(&w) {
        // WHEN it is measured as IAM measures it (no whitespace)
        let text = boundary(&resolved).to_string();
        let size = text.chars().filter(|c| !c.is_whitespace()).count();

        // THEN it fits
        println!("UserPermissionsBoundary ({name}): {size} of {MANAGED_POLICY_LIMIT} characters");
        assert!(size <= MANAGED_POLICY_LIMIT, "{name}: {size} characters");
    }
}

#[test]
fn no_action_of_the_template_has_a_wildcard_in_its_service_prefix() {
    // GIVEN every policy document of the template, every resource resolved
    let (_rt, w) = world();
    for (name, resolved) in variants(&w) {
        let all = resolved["Resources"].as_object().unwrap();
        for (id, r) in all {
            assert!(r.get("Unresolved").is_none(), "{name}: {id}: {r}");
        }
        let mut found = Vec::new();
        statements(&resolved["Resources"], &mut found);
        // THEN each action names its service: IAM documents wildcards only
        // in the action's name
        let mut actions = 0;
        for s in found {
            for key in ["Action", "NotAction"] {
                let Some(list) = s.get(key) else { continue };
                for action in as_list(list) {
                    let (service, verb) = action.split_once(':').unwrap_or(("", ""));
                    assert!(
                        !service.is_empty() && !verb.is_empty() && !service.contains(['*', '?']),
                        "{name}: {action} in {s}"
                    );
                    actions += 1;
                }
            }
        }
        assert!(actions > 100, "{name}: only {actions} actions found");
    }
}

#[test]
fn the_boundary_lets_securityaudit_through_for_its_services_and_refuses_data_reads() {
    // GIVEN the boundary with SecurityConfiguration, and SecurityAudit and
    // AWSSecurityHubReadOnlyAccess as moto ships them
    let (rt, w) = world();
    let both = resolved(&w, &json!({"Connections": BOTH}));
    let document = boundary(&both);
    let mut services = BTreeSet::new();
    for s in document["Statement"].as_array().unwrap() {
        if s["Effect"] == "Allow" {
            for a in as_list(&s["Action"]) {
                services.insert(a.split_once(':').unwrap().0.to_lowercase());
            }
        }
    }
    let mut managed = Vec::new();
    for name in ["SecurityAudit", "AWSSecurityHubReadOnlyAccess"] {
        let arn = format!("arn:aws:iam::aws:policy/{name}");
        let doc = rt.block_on(cloudapps::iam_user::default_document(&w.iam, &arn));
        let doc = doc.unwrap().unwrap_or_else(|| panic!("moto has no {name}"));
        let mut found = Vec::new();
        statements(&doc, &mut found);
        for s in found {
            managed.extend(as_list(&s["Action"]));
        }
    }

    // WHEN each of their actions is put to the boundary
    let (mut covered, mut refused) = (0, Vec::new());
    for action in &managed {
        let service = action.split_once(':').unwrap().0.to_lowercase();
        if allows(document, action, "arn:aws:service:::resource") {
            covered += 1;
        } else if services.contains(&service) {
            refused.push(action.as_str());
        }
    }

    // THEN every read of the services it names goes through, but the few it
    // refuses on purpose
    println!(
        "the boundary names {} services and lets through {covered} of the {} actions of SecurityAudit and AWSSecurityHubReadOnlyAccess",
        services.len(),
        managed.len()
    );
    refused.sort();
    assert_eq!(refused, SECURITY_AUDIT_REFUSED, "refused: {refused:?}");
    assert!(covered > 500, "{covered}");
    // AND no read of data or credentials, and no write, goes through
    for action in DATA_AND_CREDENTIALS {
        assert!(
            !allows(document, action, "arn:aws:service:::resource"),
            "{action}"
        );
    }
    // AND API Gateway's configuration, but not its API keys
    let api = |path: &str| format!("arn:aws:apigateway:us-east-1::{path}");
    assert!(allows(
        document,
        "apigateway:GET",
        &api("/restapis/a1b2c3/stages")
    ));
    for path in ["/apikeys", "/apikeys/k1", "/usageplans/u1/keys"] {
        assert!(!allows(document, "apigateway:GET", &api(path)), "{path}");
    }
    // AND without SecurityConfiguration, the guide's reads alone
    let defaults = resolved(&w, &json!({}));
    assert!(allows(boundary(&defaults), "iam:GetAccountSummary", "*"));
    assert!(!allows(boundary(&defaults), "ec2:DescribeInstances", "*"));
}

#[test]
fn the_connector_is_invoked_once_and_its_event_is_never_sent_anywhere() {
    let (_rt, w) = world();
    let given = format!("arn:aws:sns:us-east-1:{}:security", w.account);
    let stacks = format!("arn:aws:sns:us-east-1:{}:cloudapps-notify", w.account);
    for (parameters, topic) in [
        (json!({}), &stacks),
        (json!({"NotificationTopicArn": given}), &given),
    ] {
        // GIVEN the template resolved, with the stack's topic or a given one
        let stack = resolved(&w, &parameters);
        let function = |id: &str| template::resources(&w, topic)[id]["Ref"].clone();

        // THEN the connector is invoked once, never after its
        // ServiceTimeout, and its event (which holds the pre-signed
        // ResponseURL) goes to no destination and no dead-letter queue
        let config = resource(&stack, "ConnectorFunctionInvokeConfig");
        assert_eq!(config["FunctionName"], function("ConnectorFunction"));
        assert_eq!(config["Qualifier"], "$LATEST");
        assert_eq!(config["MaximumRetryAttempts"], 0, "{config}");
        assert_eq!(config["MaximumEventAgeInSeconds"], 300, "{config}");
        assert!(config.get("DestinationConfig").is_none(), "{config}");
        let connector = resource(&stack, "ConnectorFunction");
        for property in ["DeadLetterQueue", "EventInvokeConfig"] {
            assert!(connector.get(property).is_none(), "{property}: {connector}");
        }
        let configs: Vec<&Value> = stack["Resources"]
            .as_object()
            .unwrap()
            .values()
            .filter(|r| r["Type"] == "AWS::Lambda::EventInvokeConfig")
            .map(|r| &r["Properties"])
            .collect();
        assert_eq!(
            configs.len(),
            2,
            "one for the connector, one for the health check"
        );

        // AND the health check is invoked once per schedule; its event holds
        // no secret, and a failed run goes to the topic
        let config = resource(&stack, "HealthFunctionInvokeConfig");
        assert_eq!(config["FunctionName"], function("HealthFunction"));
        assert_eq!(config["MaximumRetryAttempts"], 0, "{config}");
        let destination = &config["DestinationConfig"]["OnFailure"]["Destination"];
        assert_eq!(destination, topic.as_str(), "{config}");
    }
}

#[test]
fn the_health_check_alarms_when_it_fails_and_when_it_does_not_run() {
    // GIVEN the template resolved with a check every 6 hours
    let (_rt, w) = world();
    let resolved = resolved(&w, &json!({"HealthCheckHours": "6"}));
    let topic = json!([format!(
        "arn:aws:sns:us-east-1:{}:cloudapps-notify",
        w.account
    )]);
    let health = template::resources(&w, "t")["HealthFunction"]["Ref"].clone();

    // THEN the health function's errors (a crash, a timeout) raise an alarm
    let errors = resource(&resolved, "HealthErrorsAlarm");
    assert_eq!(errors["Namespace"], "AWS/Lambda");
    assert_eq!(errors["MetricName"], "Errors");
    assert_eq!(
        errors["Dimensions"],
        json!([{"Name": "FunctionName", "Value": health}])
    );
    assert_eq!(errors["Threshold"], 1);
    assert_eq!(
        errors["ComparisonOperator"],
        "GreaterThanOrEqualToThreshold"
    );
    assert_eq!(errors["AlarmActions"], topic);
    // AND a failing check raises the health alarm, and so does a period with
    // no check at all (missing data is breaching), over the schedule's period
    let alarm = resource(&resolved, "HealthAlarm");
    assert_eq!(alarm["TreatMissingData"], "breaching");
    assert_eq!(alarm["Period"], 21600);
    assert_eq!(alarm["AlarmActions"], topic);
    assert_eq!(alarm["OKActions"], topic);
}

#[test]
fn the_template_roles_grant_no_wildcard_action_and_no_wildcard_resource_but_where_aws_has_none() {
    // GIVEN the template's roles as resolved for a stack in every mode
    let (_rt, w) = world();
    let hub = json!({"PortalMode": "hub",
        "HubRegistrarRoleArn": "arn:aws:iam::111122223333:role/cloudapps-registrar",
        "OrganizationId": "o-a1b2c3d4e5",
        "HubEventBusArn": "arn:aws:events:us-east-1:111122223333:event-bus/cloudapps-hub"});
    for parameters in [
        json!({}),
        hub,
        json!({"PortalMode": "api", "PortalUrl": "https://t.portal.cloudappsecurity.com",
               "PortalCredentialsSecretArn": "arn:aws:secretsmanager:us-east-1:111122223333:secret:p-AbCdEf",
               "PortalCredentialsKmsKeyArn": "arn:aws:kms:us-east-1:111122223333:key/0f0e0d0c-0000-4000-8000-000000000000",
               "SecretKmsKeyArn": format!("arn:aws:kms:us-east-1:{}:key/1f0e0d0c-0000-4000-8000-000000000000", w.account),
               "TrailBucketName": "my-audit-logs", "HealthRepair": "true",
               "NotificationTopicArn": format!("arn:aws:sns:us-east-1:{}:security", w.account)}),
    ] {
        let stack = resolved(&w, &parameters);
        let roles = stack["Roles"].as_object().unwrap();
        let mut want = BTreeSet::from(["ConnectorRole", "HealthRole", "RotationRole"]);
        if parameters["PortalMode"] == "hub" {
            want.insert("HubAccessRole");
        }
        assert_eq!(
            roles.keys().map(String::as_str).collect::<BTreeSet<_>>(),
            want
        );
        for (name, role) in roles {
            assert!(
                role.get("ManagedPolicyArns").is_none(),
                "{name}: no managed policy"
            );
            for policy in role["Policies"].as_array().unwrap() {
                for s in policy["PolicyDocument"]["Statement"].as_array().unwrap() {
                    // THEN no action is a wildcard, every statement allows
                    let actions = as_list(&s["Action"]);
                    assert_eq!(s["Effect"], "Allow");
                    assert!(
                        actions.iter().all(|a| !a.contains('*')),
                        "{name}: {actions:?}"
                    );
                    // AND "*" is the resource only of what has no resource-level permission
                    for r in as_list(&s["Resource"]) {
                        if r == "*" {
                            assert_eq!(actions, ["cloudtrail:DescribeTrails"], "{name}: {s}");
                        } else {
                            assert!(r.starts_with("arn:aws:"), "{name}: {r}");
                        }
                    }
                }
            }
        }
    }
}

#[test]
fn the_wildcard_match_is_iams() {
    assert!(glob("ec2:Describe*", "ec2:DescribeInstances"));
    assert!(glob("ec2:Describe*", "EC2:describeinstances"));
    assert!(glob(
        "codepipeline:Get*JobDetails",
        "codepipeline:GetThirdPartyJobDetails"
    ));
    assert!(glob("s3:GetObject?", "s3:GetObjectX"));
    assert!(!glob("s3:GetObject", "s3:GetObjectAcl"));
    assert!(!glob("ec2:Get*", "ec2:DescribeInstances"));
    assert!(glob("*", "anything"));
}
