//! hub-template.yaml's least privilege, proven: the registrar runs in
//! process as the registrar role exactly as the template resolves it
//! (tests/support/hub_template.rs, template_resolve.py), with the settings
//! the template's environment gives it, under moto's IAM enforcement,
//! against an organization of member accounts (tests/support/hub.rs) and
//! the portal emulator: every member connected, moto denies nothing; then
//! what the role must not do is denied (a member's secret without its hub
//! role, another secret of the hub, another table, another role of a
//! member). The rest is read from the resolved template, nothing run: the
//! credential secret's resource policy (moto stores a secret's resource
//! policy and never evaluates it), the bus policy, the registrar's
//! concurrency, retries and schedule, the alarms.

use std::collections::BTreeSet;
use std::sync::OnceLock;
use std::time::Duration;

use cloudapps::error::is_access_denied;
use cloudapps::hub::org_health::NAMESPACE;
use cloudapps::hub::{CONTINUE_DETAIL_TYPE, CONTINUE_SOURCE, Hub};
use cloudapps::hub_tags::{HubState, Status};
use cloudapps::portal::hub::{NUDGE_DETAIL_TYPE, NUDGE_SOURCE};
use serde_json::{Value, json};
use testbed::hub::{MEMBER_ROLE, MEMBER_SECRET, Org, epoch_millis_in};
use testbed::hub_template::{self, HubStack};
use testbed::{Moto, REGION, World};

const MEMBERS: usize = 4;
const WINDOW: Duration = Duration::from_millis(1500);
const RUN: Duration = Duration::from_secs(60);

// A hub stack read without moto.
const ACCOUNT: &str = "111122223333";
const STACK_ID: &str = "arn:aws:cloudformation:us-east-1:111122223333:stack/cloudapps-hub/0f0e0d0c-0000-4000-8000-000000000000";
const SECRET: &str =
    "arn:aws:secretsmanager:us-east-1:111122223333:secret:TenantCredentialSecret-AbCdEf";
const TABLE: &str = "cloudapps-hub-HubTable-K7Q2ZB1XW3M9";
const ORG_ID: &str = "o-a1b2c3d4e5";
const PORTAL: &str = "https://contoso.us3.portal.cloudappsecurity.com";

/// The template resolved for the stack above, `extra` parameters on top.
fn resolved(extra: &Value) -> Value {
    let mut parameters = json!({"PortalUrl": PORTAL, "OrganizationId": ORG_ID});
    for (k, v) in extra.as_object().unwrap() {
        parameters[k] = v.clone();
    }
    let resources = hub_template::resources(ACCOUNT, "cloudapps-hub", SECRET, TABLE);
    hub_template::resolve(ACCOUNT, STACK_ID, &parameters, &resources)
}

fn resource<'a>(resolved: &'a Value, id: &str) -> &'a Value {
    let r = &resolved["Resources"][id];
    assert!(r.is_object(), "the template has no resource {id}");
    assert!(r.get("Unresolved").is_none(), "{id}: {r}");
    &r["Properties"]
}

fn role_arn(id: &str) -> String {
    format!("arn:aws:iam::{ACCOUNT}:role/cloudapps/{id}")
}

/// Every statement of the role's inline policies.
fn statements(resolved: &Value, role: &str) -> Vec<Value> {
    let policies = resolved["Roles"][role]["Policies"].as_array().unwrap();
    policies
        .iter()
        .flat_map(|p| p["PolicyDocument"]["Statement"].as_array().unwrap().clone())
        .collect()
}

fn strings(v: &Value) -> Vec<String> {
    match v {
        Value::String(s) => vec![s.clone()],
        Value::Array(a) => a.iter().flat_map(strings).collect(),
        other => panic!("not a string or a list: {other}"),
    }
}

/// The actions the role allows, each with the resources it names.
fn allowed(resolved: &Value, role: &str) -> Vec<(String, Vec<String>)> {
    statements(resolved, role)
        .iter()
        .filter(|s| s["Effect"] == "Allow")
        .flat_map(|s| {
            let resources = strings(&s["Resource"]);
            strings(&s["Action"])
                .into_iter()
                .map(move |a| (a, resources.clone()))
        })
        .collect()
}

/// Whether the credential secret's resource policy denies
/// `secretsmanager:GetSecretValue` to `principal_arn`, as AWS evaluates
/// the only statement shape it holds (a Deny on `Principal: "*"` with
/// `ArnNotEquals` on `aws:PrincipalArn`): moto does not evaluate it.
fn policy_denies_read(policy: &Value, principal_arn: &str) -> bool {
    policy["Statement"].as_array().unwrap().iter().any(|s| {
        assert_eq!(s["Principal"], "*", "{s}");
        let conditions = s["Condition"].as_object().unwrap();
        assert_eq!(
            conditions.keys().collect::<Vec<_>>(),
            ["ArnNotEquals"],
            "{s}"
        );
        let keys = conditions["ArnNotEquals"].as_object().unwrap();
        assert_eq!(keys.keys().collect::<Vec<_>>(), ["aws:PrincipalArn"], "{s}");
        s["Effect"] == "Deny"
            && strings(&s["Action"]).contains(&"secretsmanager:GetSecretValue".to_string())
            && !strings(&keys["aws:PrincipalArn"]).contains(&principal_arn.to_string())
    })
}

#[test]
fn the_credential_secret_is_read_by_the_hubs_two_roles_only() {
    let r = resolved(&json!({}));
    // The stack creates the secret with a placeholder the functions refuse,
    // and its resource policy.
    let secret = resource(&r, "TenantCredentialSecret");
    assert_eq!(secret["SecretString"], r#"{"Token": ""}"#);
    let policy = resource(&r, "TenantCredentialSecretPolicy");
    assert_eq!(policy["SecretId"], SECRET);
    assert_eq!(policy["BlockPublicPolicy"], true);
    let document = &policy["ResourcePolicy"];
    assert_eq!(
        document["Statement"].as_array().unwrap().len(),
        1,
        "{document}"
    );
    for reader in [role_arn("RegistrarRole"), role_arn("OrgHealthRole")] {
        assert!(
            !policy_denies_read(document, &reader),
            "{reader}: {document}"
        );
    }
    // An administrator of the hub account, its root user, another role of
    // the stack's path, an IAM user and a member's hub role are denied.
    for other in [
        format!("arn:aws:iam::{ACCOUNT}:role/Admin"),
        format!("arn:aws:iam::{ACCOUNT}:root"),
        format!("arn:aws:iam::{ACCOUNT}:role/cloudapps/ConnectorRole"),
        format!("arn:aws:iam::{ACCOUNT}:user/admin"),
        "arn:aws:iam::444455556666:role/cloudapps-hub-access".to_string(),
    ] {
        assert!(policy_denies_read(document, &other), "{other}: {document}");
    }
    // Both roles read it, and only it.
    for role in ["RegistrarRole", "OrgHealthRole"] {
        let reads: Vec<_> = allowed(&r, role)
            .into_iter()
            .filter(|(a, _)| a.starts_with("secretsmanager:"))
            .collect();
        assert_eq!(
            reads,
            [(
                "secretsmanager:GetSecretValue".to_string(),
                vec![SECRET.to_string()]
            )]
        );
    }
    // An existing secret: nothing created, its policy left to its owner,
    // the roles and the functions read that one.
    let given = "arn:aws:secretsmanager:us-east-1:111122223333:secret:org/tenant-AbCdEf";
    let r = resolved(&json!({"TenantCredentialSecretArn": given}));
    for id in ["TenantCredentialSecret", "TenantCredentialSecretPolicy"] {
        assert!(r["Resources"].get(id).is_none(), "{id}");
    }
    for (role, function) in [
        ("RegistrarRole", "RegistrarFunction"),
        ("OrgHealthRole", "OrgHealthFunction"),
    ] {
        assert!(
            allowed(&r, role)
                .contains(&("secretsmanager:GetSecretValue".into(), vec![given.into()]))
        );
        let env = hub_template::environment(&r, function);
        assert_eq!(env["PORTAL_CREDENTIALS_SECRET_ARN"], given);
    }
}

#[test]
fn the_roles_allow_what_the_functions_call_and_nothing_else() {
    let r =
        resolved(&json!({"MemberRoleName": "org-hub-reader", "MemberSecretName": "org/connector"}));
    let table = format!("arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/{TABLE}");
    let actions = |role: &str| -> BTreeSet<String> {
        allowed(&r, role).into_iter().map(|(a, _)| a).collect()
    };
    let set = |a: &[&str]| a.iter().map(|s| s.to_string()).collect::<BTreeSet<_>>();
    assert_eq!(
        actions("RegistrarRole"),
        set(&[
            "logs:CreateLogStream",
            "logs:PutLogEvents",
            "organizations:ListAccounts",
            "sts:AssumeRole",
            "events:PutEvents",
            "sqs:ReceiveMessage",
            "sqs:DeleteMessage",
            "sqs:GetQueueAttributes",
            "secretsmanager:GetSecretValue",
            "dynamodb:Scan",
            "dynamodb:GetItem",
            "dynamodb:PutItem",
            "dynamodb:UpdateItem",
            "dynamodb:DeleteItem",
        ])
    );
    assert_eq!(
        actions("OrgHealthRole"),
        set(&[
            "logs:CreateLogStream",
            "logs:PutLogEvents",
            "secretsmanager:GetSecretValue",
            "dynamodb:Scan"
        ])
    );
    // Each on what the stack names; "*" only where AWS has no
    // resource-level permission (ListAccounts).
    for (role, logs) in [
        ("RegistrarRole", "registrar"),
        ("OrgHealthRole", "org-health"),
    ] {
        for (action, resources) in allowed(&r, role) {
            let want = match action.split(':').next().unwrap() {
                "logs" => format!(
                    "arn:aws:logs:{REGION}:{ACCOUNT}:log-group:/cloudapps/cloudapps-hub/{logs}:*"
                ),
                "organizations" => "*".into(),
                "sts" => "arn:aws:iam::*:role/org-hub-reader".into(),
                "dynamodb" => table.clone(),
                "secretsmanager" => SECRET.into(),
                "events" => format!("arn:aws:events:{REGION}:{ACCOUNT}:event-bus/cloudapps-hub"),
                "sqs" => {
                    format!("arn:aws:sqs:{REGION}:{ACCOUNT}:cloudapps-hub-NudgeQueue-K7Q2ZB1XW3M9")
                }
                other => panic!("{role}: {other}"),
            };
            assert_eq!(resources, [want], "{role}: {action}");
        }
    }
    // Lambda alone assumes them, for this account's functions.
    for role in ["RegistrarRole", "OrgHealthRole"] {
        let trust = &r["Roles"][role]["AssumeRolePolicyDocument"]["Statement"][0];
        assert_eq!(
            trust["Principal"],
            json!({"Service": "lambda.amazonaws.com"})
        );
        assert_eq!(
            trust["Condition"]["StringEquals"]["aws:SourceAccount"],
            ACCOUNT
        );
        assert_eq!(r["Roles"][role]["Path"], "/cloudapps/");
    }
    // By default, the names the member stacks give their role and secret.
    for function in ["RegistrarFunction", "OrgHealthFunction"] {
        let s = hub_template::settings(&resolved(&json!({})), function, &[]);
        assert_eq!(
            (s.member_role.as_str(), s.member_secret.as_str()),
            (MEMBER_ROLE, MEMBER_SECRET)
        );
    }
    // The functions' environment is what the hub reads.
    for function in ["RegistrarFunction", "OrgHealthFunction"] {
        let s = hub_template::settings(&r, function, &[]);
        assert_eq!(
            (s.member_role.as_str(), s.member_secret.as_str()),
            ("org-hub-reader", "org/connector")
        );
        assert_eq!(
            (s.table.as_str(), s.member_region.as_deref()),
            (TABLE, None)
        );
        assert_eq!(s.portal.url, PORTAL);
        let bus = format!("arn:aws:events:{REGION}:{ACCOUNT}:event-bus/cloudapps-hub");
        let told = (function == "RegistrarFunction").then_some(bus.as_str());
        assert_eq!(s.event_bus.as_deref(), told, "{function}");
        // The tenant's 30 requests a minute, with a margin.
        assert_eq!(s.portal.timings.pace, Duration::from_millis(1000));
    }
}

#[test]
fn only_the_organization_nudges_the_hub_and_its_nudges_reach_the_registrar_in_batches() {
    let r = resolved(&json!({}));
    let bus = resource(&r, "HubEventBus");
    assert_eq!(bus["Name"], "cloudapps-hub");
    let bus_arn = format!("arn:aws:events:{REGION}:{ACCOUNT}:event-bus/cloudapps-hub");
    let policy = resource(&r, "HubEventBusPolicy");
    assert_eq!(policy["EventBusName"], "cloudapps-hub");
    let statement = &policy["Statement"];
    assert_eq!(statement["Effect"], "Allow");
    assert_eq!(statement["Principal"], "*");
    assert_eq!(statement["Action"], "events:PutEvents");
    assert_eq!(statement["Resource"], bus_arn);
    assert_eq!(
        statement["Condition"],
        json!({"StringEquals": {"aws:PrincipalOrgID": ORG_ID, "events:source": NUDGE_SOURCE}})
    );
    // The members' nudges, and only they, go to the nudge queue; only
    // that rule may send to it; the registrar reads it in batches, one
    // execution per batch, two at most.
    let physical = hub_template::resources(ACCOUNT, "cloudapps-hub", SECRET, TABLE);
    let queue = &physical["NudgeQueue"];
    let rule = resource(&r, "NudgeRule");
    assert_eq!(rule["EventBusName"], "cloudapps-hub");
    assert_eq!(
        rule["EventPattern"],
        json!({"source": [NUDGE_SOURCE], "detail-type": [NUDGE_DETAIL_TYPE]})
    );
    assert_eq!(
        rule["Targets"],
        json!([{"Id": "nudges", "Arn": queue["Arn"]}])
    );
    let queue_policy = resource(&r, "NudgeQueuePolicy");
    assert_eq!(queue_policy["Queues"], json!([queue["Ref"]]));
    assert_eq!(
        queue_policy["PolicyDocument"]["Statement"],
        json!([{
            "Sid": "OnlyTheNudgeRuleSends",
            "Effect": "Allow",
            "Principal": {"Service": "events.amazonaws.com"},
            "Action": "sqs:SendMessage",
            "Resource": queue["Arn"],
            "Condition": {"ArnEquals": {"aws:SourceArn": physical["NudgeRule"]["Arn"]}},
        }])
    );
    let nudge_queue = resource(&r, "NudgeQueue");
    assert_eq!(nudge_queue["SqsManagedSseEnabled"], true);
    let registrar = &physical["RegistrarFunction"];
    let timeout = resource(&r, "RegistrarFunction")["Timeout"]
        .as_u64()
        .unwrap();
    let batches = &resource(&r, "RegistrarFunction")["Events"]["Nudges"];
    assert_eq!(batches["Type"], "SQS");
    let batches = &batches["Properties"];
    assert_eq!(batches["Queue"], queue["Arn"]);
    assert_eq!(batches["BatchSize"], 1000);
    assert_eq!(batches["ScalingConfig"]["MaximumConcurrency"], 2);
    // Lambda refuses a queue whose messages come back before the
    // function's timeout (and its window).
    let window = batches["MaximumBatchingWindowInSeconds"].as_u64().unwrap();
    assert!((1..=60).contains(&window), "{window}");
    assert!(nudge_queue["VisibilityTimeout"].as_u64().unwrap() >= timeout + window);
    // One run and the queue's two batches at most.
    assert_eq!(
        resource(&r, "RegistrarFunction")["ReservedConcurrentExecutions"],
        1 + batches["ScalingConfig"]["MaximumConcurrency"]
            .as_u64()
            .unwrap()
    );
    // A run out of time with work left starts the next: only this
    // account's events, and members may put no event of that source.
    let rule = resource(&r, "ContinueRule");
    assert_eq!(rule["EventBusName"], "cloudapps-hub");
    assert_eq!(
        rule["EventPattern"],
        json!({"source": [CONTINUE_SOURCE], "detail-type": [CONTINUE_DETAIL_TYPE], "account": [ACCOUNT]})
    );
    assert_eq!(
        rule["Targets"],
        json!([{"Id": "registrar", "Arn": registrar["Arn"]}])
    );
    assert_ne!(CONTINUE_SOURCE, NUDGE_SOURCE);
    assert!(r["Resources"].get("NudgeRulePermission").is_none());
    // Only the run's own continuation invokes the registrar through the bus.
    let permission = resource(&r, "ContinueRulePermission");
    assert_eq!(permission["FunctionName"], registrar["Ref"]);
    assert_eq!(permission["Principal"], "events.amazonaws.com");
    assert_eq!(permission["Action"], "lambda:InvokeFunction");
    assert_eq!(permission["SourceArn"], physical["ContinueRule"]["Arn"]);
}

#[test]
fn the_registrar_runs_one_at_a_time_on_its_schedule_with_no_retry() {
    let r = resolved(&json!({}));
    let registrar = resource(&r, "RegistrarFunction");
    assert_eq!(registrar["ReservedConcurrentExecutions"], 3);
    assert_eq!(registrar["Timeout"], 900);
    assert_eq!(
        registrar["Events"]["Schedule"]["Properties"]["Schedule"],
        "rate(15 minutes)"
    );
    let health = resource(&r, "OrgHealthFunction");
    assert_eq!(
        health["Events"]["Schedule"]["Properties"]["Schedule"],
        "rate(1 hour)"
    );
    for (config, function) in [
        ("RegistrarFunctionInvokeConfig", "RegistrarFunction"),
        ("OrgHealthFunctionInvokeConfig", "OrgHealthFunction"),
    ] {
        let c = resource(&r, config);
        assert_eq!(c["MaximumRetryAttempts"], 0, "{config}");
        assert_eq!(c["Qualifier"], "$LATEST");
        let name =
            hub_template::resources(ACCOUNT, "cloudapps-hub", SECRET, TABLE)[function]["Ref"]
                .clone();
        assert_eq!(c["FunctionName"], name);
        assert!(c.get("DestinationConfig").is_none(), "{config}");
    }
    for function in ["RegistrarFunction", "OrgHealthFunction"] {
        assert_eq!(
            r["Resources"][function]["Type"],
            "AWS::Serverless::Function"
        );
        assert_eq!(resource(&r, function)["LoggingConfig"]["LogFormat"], "JSON");
    }
    // ScheduleMinutes and HealthScheduleMinutes set them.
    let r = resolved(&json!({"ScheduleMinutes": "30", "HealthScheduleMinutes": "15"}));
    let schedule =
        |f: &str| resource(&r, f)["Events"]["Schedule"]["Properties"]["Schedule"].clone();
    assert_eq!(schedule("RegistrarFunction"), "rate(30 minutes)");
    assert_eq!(schedule("OrgHealthFunction"), "rate(15 minutes)");
    let period = &resource(&r, "OrgHealthAlarm")["Metrics"][0]["MetricStat"]["Period"];
    assert_eq!(period, 900);
}

#[test]
fn the_alarms_watch_the_registrar_and_the_organizations_health() {
    let r = resolved(&json!({}));
    let resources = hub_template::resources(ACCOUNT, "cloudapps-hub", SECRET, TABLE);
    let topic = resources["AlarmTopic"]["Ref"].clone();
    for (alarm, function) in [
        ("RegistrarErrorsAlarm", "RegistrarFunction"),
        ("OrgHealthErrorsAlarm", "OrgHealthFunction"),
    ] {
        let a = resource(&r, alarm);
        assert_eq!(
            (a["Namespace"].as_str(), a["MetricName"].as_str()),
            (Some("AWS/Lambda"), Some("Errors"))
        );
        assert_eq!(
            a["Dimensions"],
            json!([{"Name": "FunctionName", "Value": resources[function]["Ref"]}])
        );
        assert_eq!(
            (a["Threshold"].as_i64(), a["ComparisonOperator"].as_str()),
            (Some(1), Some("GreaterThanOrEqualToThreshold"))
        );
        assert_eq!(a["AlarmActions"], json!([topic]));
    }
    // Error + Missing at 1 or more, and a period with no line at all.
    let a = resource(&r, "OrgHealthAlarm");
    assert_eq!(a["TreatMissingData"], "breaching");
    assert_eq!(
        (a["Threshold"].as_i64(), a["ComparisonOperator"].as_str()),
        (Some(1), Some("GreaterThanOrEqualToThreshold"))
    );
    let metrics = a["Metrics"].as_array().unwrap();
    let hub_name = hub_template::environment(&r, "OrgHealthFunction")["HUB_NAME"].clone();
    assert_eq!(hub_name, "cloudapps-hub");
    let mut read = Vec::new();
    for m in metrics.iter().filter(|m| m.get("MetricStat").is_some()) {
        let metric = &m["MetricStat"]["Metric"];
        assert_eq!(metric["Namespace"], NAMESPACE);
        assert_eq!(
            metric["Dimensions"],
            json!([{"Name": "Hub", "Value": hub_name}])
        );
        assert_eq!(m["MetricStat"]["Period"], 3600);
        assert_eq!(m["ReturnData"], false);
        read.push((
            m["Id"].as_str().unwrap().to_string(),
            metric["MetricName"].as_str().unwrap().to_string(),
        ));
    }
    read.sort();
    assert_eq!(
        read,
        [
            ("error".to_string(), "Error".to_string()),
            ("missing".into(), "Missing".into())
        ]
    );
    let returned: Vec<&Value> = metrics.iter().filter(|m| m["ReturnData"] == true).collect();
    assert_eq!(returned.len(), 1);
    assert_eq!(returned[0]["Expression"], "error + missing");
    assert_eq!(
        (a["AlarmActions"].clone(), a["OKActions"].clone()),
        (json!([topic]), json!([topic]))
    );
    // Your own topic instead of the stack's.
    let yours = "arn:aws:sns:us-east-1:111122223333:security-alarms";
    let r = resolved(&json!({"AlarmTopicArn": yours}));
    assert!(r["Resources"].get("AlarmTopic").is_none());
    assert_eq!(
        resource(&r, "OrgHealthAlarm")["AlarmActions"],
        json!([yours])
    );
}

// ------------------------------------------------------------ under moto

/// This binary's own moto server: the test turns IAM enforcement on.
fn moto() -> &'static Moto {
    static MOTO: OnceLock<Moto> = OnceLock::new();
    MOTO.get_or_init(Moto::start)
}

async fn hub_state(w: &World) -> HubState {
    let info = cloudapps::key_store::describe(&w.secrets, &w.secret_arn)
        .await
        .unwrap();
    HubState::from_tags(info.tags.iter().map(|(k, v)| (k.as_str(), v.as_str())))
}

/// An item of the hub's table shape.
fn item(
    account: &str,
) -> std::collections::HashMap<String, aws_sdk_dynamodb::types::AttributeValue> {
    [(
        "account".to_string(),
        aws_sdk_dynamodb::types::AttributeValue::S(account.into()),
    )]
    .into()
}

/// Registrar invocations as Lambda sends them (a batch of the nudge queue
/// holding a member's nudge first, then the schedule's events) until a run
/// settles; their answers.
async fn run_until_settled(hub: &Hub, nudging: &World, hub_account: &str) -> Vec<Value> {
    let nudge = json!({
        "source": NUDGE_SOURCE, "detail-type": NUDGE_DETAIL_TYPE,
        "account": nudging.account, "region": REGION, "detail": {"why": "created"},
    });
    let nudge = json!({"Records": [{
        "messageId": "0d9c8b7a-0000-4000-8000-000000000001",
        "eventSource": "aws:sqs",
        "eventSourceARN": format!("arn:aws:sqs:{REGION}:{hub_account}:cloudapps-hub-NudgeQueue-K7Q2ZB1XW3M9"),
        "body": nudge.to_string(),
    }]});
    let scheduled = json!({
        "source": "aws.events", "detail-type": "Scheduled Event",
        "account": hub_account, "region": REGION, "detail": {},
    });
    let mut answers = Vec::new();
    for i in 0..6 {
        let event = if i == 0 { &nudge } else { &scheduled };
        let answer = hub
            .on_registrar_event(event, &format!("request-{i}"), epoch_millis_in(RUN))
            .await
            .expect("a registrar invocation");
        let settled = answer["settled"] == true;
        answers.push(answer);
        if settled {
            return answers;
        }
    }
    panic!("the registrar did not settle: {answers:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_templates_registrar_role_connects_the_organization_and_nothing_more_under_iam_enforcement()
 {
    // GIVEN an organization whose members were created (queued), the hub
    // template's two roles created as resolved, the members' hub roles
    // trusting the template's registrar role, the credential secret's
    // resource policy put as resolved, and what the registrar must not
    // touch: another secret and another table of the hub account
    let moto = moto();
    let org = Org::new(moto, MEMBERS, WINDOW).await;
    org.create_all().await;
    let stack: HubStack = hub_template::deploy(&org, &json!({})).await;
    let policy = resource(&stack.resolved, "TenantCredentialSecretPolicy");
    assert_eq!(policy["SecretId"], org.credentials_secret.as_str());
    org.hub
        .secrets
        .put_resource_policy()
        .secret_id(&org.credentials_secret)
        .resource_policy(policy["ResourcePolicy"].to_string())
        .block_public_policy(true)
        .send()
        .await
        .expect("moto takes the resolved resource policy");
    for reader in [&stack.registrar_role_arn, &stack.health_role_arn] {
        assert!(!policy_denies_read(&policy["ResourcePolicy"], reader));
    }
    let other_secret = org
        .hub
        .secrets
        .create_secret()
        .name("app/database-password")
        .secret_string("not the hub's")
        .send()
        .await
        .unwrap()
        .arn()
        .unwrap()
        .to_string();
    testbed::hub::create_table(&org.hub.sdk, "app-table").await;
    let tuning = hub_template::tuning(&org);
    let registrar = Hub::new(
        hub_template::settings(&stack.resolved, "RegistrarFunction", &tuning),
        &stack.registrar_sdk,
    )
    .unwrap();
    let health = Hub::new(
        hub_template::settings(&stack.resolved, "OrgHealthFunction", &tuning),
        &stack.health_sdk,
    )
    .unwrap();
    moto.enforce_iam().await;

    // WHEN the registrar is invoked as Lambda would (a member's nudge,
    // then the schedule) until a run settles, then the health check runs
    let answers = run_until_settled(&registrar, &org.members[0], &org.hub.account).await;
    let rows = registrar.registrar.table.rows().await.unwrap();
    let checked = health
        .on_health_event("hub", epoch_millis_in(RUN))
        .await
        .unwrap();

    // THEN every member is connected, and moto denied the template's
    // roles nothing. The organization lists the hub's own (management)
    // account too, where no member stack is (a service-managed stack set
    // never deploys there): its hub role does not exist, which AWS refuses
    // at sts:AssumeRole and moto only at the next call (its credentials
    // for a role that does not exist); the registrar takes either as
    // "refused" and leaves the account out of its table.
    assert_eq!(rows.len(), MEMBERS, "{rows:?}");
    for (account, row) in &rows {
        assert_eq!(row.status, Status::Connected, "{account}: {row:?}");
    }
    assert_eq!(checked["connected"], MEMBERS, "{checked}");
    let hub = &org.hub.account;
    let in_the_hub_without_a_member_stack = |d: &Value| {
        d["principal"]
            == format!("arn:aws:sts::{hub}:assumed-role/{MEMBER_ROLE}/cloudapps-registrar")
            && d["action"] == "secretsmanager:DescribeSecret"
            && d["resources"]
                == json!([format!(
                    "arn:aws:secretsmanager:{REGION}:{hub}:secret:{MEMBER_SECRET}"
                )])
    };
    let denials = moto.denials();
    let (hub_itself, others): (Vec<Value>, Vec<Value>) = denials
        .into_iter()
        .partition(in_the_hub_without_a_member_stack);
    assert_eq!(others, Vec::<Value>::new(), "{answers:?}");
    assert!(
        !hub_itself.is_empty() && answers.iter().all(|a| a["accounts"] == MEMBERS + 1),
        "{answers:?}"
    );
    let before = hub_itself.len();

    // AND what it must not do is denied: a member's secret read with the
    // hub's own credentials, another secret of the hub, another table, a
    // member's other role (OrganizationAccountAccessRole trusts the
    // management account); the health check writes nothing
    let secrets = aws_sdk_secretsmanager::Client::new(&stack.registrar_sdk);
    let member = &org.members[0];
    let read = secrets
        .get_secret_value()
        .secret_id(&member.secret_arn)
        .send()
        .await;
    assert!(
        read.as_ref().is_err_and(is_access_denied),
        "a member's secret: {read:?}"
    );
    let read = secrets
        .get_secret_value()
        .secret_id("app/database-password")
        .send()
        .await;
    assert!(
        read.as_ref().is_err_and(is_access_denied),
        "another secret: {read:?}"
    );
    let tables = aws_sdk_dynamodb::Client::new(&stack.registrar_sdk);
    let put = tables
        .put_item()
        .table_name("app-table")
        .set_item(Some(item("000000000001")))
        .send()
        .await;
    assert!(
        put.as_ref().is_err_and(is_access_denied),
        "another table: {put:?}"
    );
    let assumed = aws_sdk_sts::Client::new(&stack.registrar_sdk)
        .assume_role()
        .role_arn(format!(
            "arn:aws:iam::{}:role/OrganizationAccountAccessRole",
            member.account
        ))
        .role_session_name("registrar")
        .send()
        .await;
    assert!(
        assumed.as_ref().is_err_and(is_access_denied),
        "another role: {assumed:?}"
    );
    let put = aws_sdk_dynamodb::Client::new(&stack.health_sdk)
        .put_item()
        .table_name(&org.table)
        .set_item(Some(item("000000000001")))
        .send()
        .await;
    assert!(
        put.as_ref().is_err_and(is_access_denied),
        "the health check writes: {put:?}"
    );
    let denials: Vec<Value> = moto.denials().split_off(before);
    let denied: BTreeSet<(String, String)> = denials
        .iter()
        .map(|d| {
            let role = if d["principal"].as_str().unwrap().contains("/OrgHealthRole/") {
                "health"
            } else {
                "registrar"
            };
            (role.to_string(), d["action"].as_str().unwrap().to_string())
        })
        .collect();
    let want = [
        ("registrar", "secretsmanager:GetSecretValue"),
        ("registrar", "dynamodb:PutItem"),
        ("registrar", "sts:AssumeRole"),
        ("health", "dynamodb:PutItem"),
    ];
    assert_eq!(
        denied,
        want.iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect(),
        "{denials:?}"
    );
    let denied_secrets: BTreeSet<String> = denials
        .iter()
        .filter(|d| d["action"] == "secretsmanager:GetSecretValue")
        .map(|d| d["resources"][0].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        denied_secrets,
        [member.secret_arn.clone(), other_secret].into()
    );
    moto.relax_iam().await;

    // AND the members' secrets say so, the portal holds each account once
    for w in &org.members {
        let state = hub_state(w).await;
        assert!(
            state.confirms(&w.current_key().await.access_key_id),
            "{}: {state:?}",
            w.account
        );
    }
    let instances = org.emulator.instances();
    assert_eq!(instances.len(), MEMBERS);
    assert!(
        instances.iter().all(|i| i.status == "connected"),
        "{instances:?}"
    );
    assert_eq!(org.emulator.throttled(), 0);
    let role = org.members[1]
        .iam
        .get_role()
        .role_name(MEMBER_ROLE)
        .send()
        .await
        .unwrap();
    let trust = role
        .role()
        .unwrap()
        .assume_role_policy_document()
        .unwrap()
        .to_string();
    assert!(
        percent_decoded(&trust).contains(&stack.registrar_role_arn),
        "{trust}"
    );
}

fn percent_decoded(text: &str) -> String {
    percent_encoding::percent_decode_str(text)
        .decode_utf8_lossy()
        .into_owned()
}
