//! A module of tests/template.rs: template.yaml in `PortalMode=hub` (a
//! member of the organization hub), resolved as CloudFormation would
//! (tests/support/template_resolve.py, every stack of a test in one run),
//! read without running anything: the rule that wants the hub's registrar
//! role and the organization, the parameters' patterns, no right to (and
//! no name of) a portal credential in any function, the nudge's right only
//! with a bus, and the hub's role exactly as the hub relies on it.
//! tests/hub_security.rs runs that role under moto's IAM enforcement.

use serde_json::{Value, json};
use testbed::{World, template};

use super::TEMPLATE;
use super::documents::{as_list, glob};

const REGISTRAR: &str = "arn:aws:iam::111122223333:role/cloudapps/cloudapps-registrar";
const ORG: &str = "o-a1b2c3d4e5";
const BUS: &str = "arn:aws:events:us-east-1:111122223333:event-bus/cloudapps-hub";
const PORTAL_SECRET: &str = "arn:aws:secretsmanager:us-east-1:444455556666:secret:portal-AbCdEf";
const PORTAL_KEY: &str =
    "arn:aws:kms:us-east-1:444455556666:key/0f0e0d0c-0000-4000-8000-000000000001";
const RULE: &str = "HubModeNeedsTheHub";

fn world() -> (tokio::runtime::Runtime, World) {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let w = rt.block_on(World::new());
    (rt, w)
}

/// The template resolved for a stack of `w` with each of `parameters`.
fn resolved_each(w: &World, parameters: &[Value]) -> Vec<Value> {
    let topic = format!("arn:aws:sns:us-east-1:{}:cloudapps-notify", w.account);
    let stacks: Vec<(&World, Value, Value)> = parameters
        .iter()
        .map(|p| (w, p.clone(), template::resources(w, &topic)))
        .collect();
    template::resolve_each(TEMPLATE, &stacks)
}

/// Hub mode with `extra` on top.
fn hub(extra: Value) -> Value {
    let mut parameters = json!({"PortalMode": "hub"});
    for (k, v) in extra.as_object().unwrap() {
        parameters[k] = v.clone();
    }
    parameters
}

/// A member stack as the stack set makes it, with what a shared parameter
/// set of an organization may still carry from api mode.
fn member_with_leftovers(bus: &str) -> Value {
    hub(json!({
        "HubRegistrarRoleArn": REGISTRAR, "OrganizationId": ORG, "HubEventBusArn": bus,
        "PortalUrl": "https://contoso.us3.portal.cloudappsecurity.com",
        "PortalCredentialsSecretArn": PORTAL_SECRET, "PortalCredentialsKmsKeyArn": PORTAL_KEY,
    }))
}

/// The roles of `resolved` whose policies allow `action` on `resource`
/// (any statement, condition or not: a conditioned grant is a grant).
fn roles_allowing(resolved: &Value, action: &str, resource: &str) -> Vec<String> {
    let mut found = Vec::new();
    for (name, role) in resolved["Roles"].as_object().unwrap() {
        for policy in role["Policies"].as_array().unwrap() {
            for s in policy["PolicyDocument"]["Statement"].as_array().unwrap() {
                let does = as_list(&s["Action"]).iter().any(|a| glob(a, action));
                let on = as_list(&s["Resource"]).iter().any(|r| glob(r, resource));
                if s["Effect"] == "Allow" && does && on {
                    found.push(name.clone());
                }
            }
        }
    }
    found.sort();
    found.dedup();
    found
}

fn env<'a>(resolved: &'a Value, function: &str) -> &'a Value {
    let env = &resolved["Functions"][function]["Environment"];
    assert!(env.is_object(), "no function {function}");
    env
}

const FUNCTIONS: [&str; 3] = ["ConnectorFunction", "RotationFunction", "HealthFunction"];

#[test]
fn hub_mode_needs_the_hubs_registrar_role_and_the_organization() {
    // GIVEN hub mode without the registrar role, without the organization,
    // without both, with both; and api mode (the rule does not apply)
    let (_rt, w) = world();
    let [none, no_org, no_role, both, api, bad] = resolved_each(
        &w,
        &[
            hub(json!({})),
            hub(json!({"HubRegistrarRoleArn": REGISTRAR})),
            hub(json!({"OrganizationId": ORG})),
            hub(json!({"HubRegistrarRoleArn": REGISTRAR, "OrganizationId": ORG})),
            json!({"PortalMode": "api", "PortalUrl": "https://t.portal.cloudappsecurity.com",
                   "PortalCredentialsSecretArn": PORTAL_SECRET}),
            hub(json!({
                "HubRegistrarRoleArn": "arn:aws:iam::111122223333:user/cloudapps-registrar",
                "OrganizationId": "ou-a1b2-c3d4e5f6",
                "HubEventBusArn": "arn:aws:sns:us-east-1:111122223333:cloudapps-hub",
            })),
        ],
    )
    .try_into()
    .unwrap();
    let failed = |r: &Value| {
        let rule = &r["Rules"][RULE];
        assert!(rule.get("Unresolved").is_none(), "{rule}");
        (rule["Applies"].as_bool().unwrap(), as_list(&rule["Failed"]))
    };
    let role_wanted =
        "PortalMode hub needs HubRegistrarRoleArn (the hub stack's RegistrarRoleArn output).";
    let org_wanted = "PortalMode hub needs OrganizationId (o-...).";

    // THEN CloudFormation refuses the stack but with both, and says which
    assert_eq!(
        failed(&none),
        (true, vec![role_wanted.into(), org_wanted.into()])
    );
    assert_eq!(failed(&no_org), (true, vec![org_wanted.into()]));
    assert_eq!(failed(&no_role), (true, vec![role_wanted.into()]));
    assert_eq!(failed(&both), (true, vec![]));
    assert_eq!(failed(&api), (false, vec![]));
    for r in [&none, &no_org, &no_role, &both, &api] {
        assert_eq!(r["ParameterErrors"], json!([]));
        for (name, rule) in r["Rules"].as_object().unwrap() {
            if name != RULE {
                assert_eq!(rule["Failed"], json!([]), "{name}");
            }
        }
    }
    // AND a user for the role, an OU for the organization, a topic for the
    // bus are refused by their patterns
    let errors = as_list(&bad["ParameterErrors"]);
    let named: Vec<&str> = errors
        .iter()
        .map(|e| e.split_once(':').unwrap().0)
        .collect();
    assert_eq!(
        named,
        ["HubRegistrarRoleArn", "OrganizationId", "HubEventBusArn"],
        "{errors:?}"
    );
}

#[test]
fn in_hub_mode_no_function_may_read_or_is_told_a_portal_credential() {
    // GIVEN a member stack in hub mode whose parameters still name the
    // portal's credential secret and its key (from api mode), with and
    // without the hub's bus; and the same in api mode, the control
    let (_rt, w) = world();
    let mut api = member_with_leftovers(BUS);
    api["PortalMode"] = json!("api");
    let [with_bus, without_bus, api] = resolved_each(
        &w,
        &[member_with_leftovers(BUS), member_with_leftovers(""), api],
    )
    .try_into()
    .unwrap();

    for (name, r) in [("with a bus", &with_bus), ("without a bus", &without_bus)] {
        // THEN no role may read the credential or decrypt it
        for (action, resource) in [
            ("secretsmanager:GetSecretValue", PORTAL_SECRET),
            ("secretsmanager:DescribeSecret", PORTAL_SECRET),
            ("kms:Decrypt", PORTAL_KEY),
        ] {
            let roles = roles_allowing(r, action, resource);
            assert!(roles.is_empty(), "{name}: {roles:?} may {action}");
        }
        // AND no function is told where it is, every one runs in hub mode
        for f in FUNCTIONS {
            let env = env(r, f);
            assert_eq!(env["PORTAL_MODE"], "hub", "{name}: {f}");
            assert_eq!(
                env["PORTAL_CREDENTIALS_SECRET_ARN"], "",
                "{name}: {f}: {env}"
            );
        }
    }
    // AND the control: in api mode the same parameters give each function
    // its read (so the check above finds a grant where there is one)
    assert_eq!(
        roles_allowing(&api, "secretsmanager:GetSecretValue", PORTAL_SECRET),
        ["ConnectorRole", "HealthRole", "RotationRole"]
    );
    assert_eq!(
        env(&api, "ConnectorFunction")["PORTAL_CREDENTIALS_SECRET_ARN"],
        PORTAL_SECRET
    );

    // AND with the bus, the connector (Create, Update) and the rotation
    // (setSecret, testSecret) may put events on that bus alone, and each
    // function is told the bus; without it, no function may put events
    // and none is told a bus
    assert_eq!(
        roles_allowing(&with_bus, "events:PutEvents", BUS),
        ["ConnectorRole", "RotationRole"]
    );
    let elsewhere = BUS.replace("cloudapps-hub", "default");
    assert!(roles_allowing(&with_bus, "events:PutEvents", &elsewhere).is_empty());
    for f in FUNCTIONS {
        assert_eq!(env(&with_bus, f)["HUB_EVENT_BUS_ARN"], BUS, "{f}");
        assert_eq!(env(&without_bus, f)["HUB_EVENT_BUS_ARN"], "", "{f}");
        assert_eq!(env(&api, f)["HUB_EVENT_BUS_ARN"], "", "{f}");
    }
    for r in [&without_bus, &api] {
        assert!(roles_allowing(r, "events:PutEvents", "*").is_empty());
    }
    // AND the rotation may wait for the hub's verdict as long as Lambda
    // allows (testSecret waits until its deadline)
    assert_eq!(
        with_bus["Resources"]["RotationFunction"]["Properties"]["Timeout"],
        900
    );
}

#[test]
fn the_hub_role_trusts_only_the_registrar_within_the_organization_and_reads_only_its_secret() {
    // GIVEN a member stack in hub mode, and the stack in the other modes
    let (_rt, w) = world();
    let member = hub(json!({"HubRegistrarRoleArn": REGISTRAR, "OrganizationId": ORG}));
    let [member, handoff, api] = resolved_each(
        &w,
        &[
            member,
            json!({}),
            json!({"PortalMode": "api", "PortalUrl": "https://t.portal.cloudappsecurity.com",
                   "PortalCredentialsSecretArn": PORTAL_SECRET}),
        ],
    )
    .try_into()
    .unwrap();
    let secret = &w.secret_arn;

    // THEN the hub's role is named as the hub finds it, at path /, and is
    // exactly: only the registrar role, within the organization, may assume
    // it; it may read the connector's secret and write the hub's tags on
    // it, nothing else
    let role = &member["Roles"]["HubAccessRole"];
    let mut without_description = role.clone();
    let description = without_description
        .as_object_mut()
        .unwrap()
        .remove("Description");
    assert!(description.is_some_and(|d| d.is_string()));
    assert_eq!(
        without_description,
        json!({
            "RoleName": "cloudapps-hub-access",
            "Path": "/",
            "AssumeRolePolicyDocument": {"Version": "2012-10-17", "Statement": [{
                "Effect": "Allow",
                "Principal": {"AWS": REGISTRAR},
                "Action": "sts:AssumeRole",
                "Condition": {"StringEquals": {"aws:PrincipalOrgID": ORG}},
            }]},
            "Policies": [{"PolicyName": "hub-access", "PolicyDocument": {
                "Version": "2012-10-17",
                "Statement": [
                    {"Sid": "ReadTheConnectorKey", "Effect": "Allow",
                     "Action": ["secretsmanager:DescribeSecret", "secretsmanager:GetSecretValue"],
                     "Resource": secret},
                    {"Sid": "WriteOnlyTheHubsTags", "Effect": "Allow",
                     "Action": ["secretsmanager:TagResource", "secretsmanager:UntagResource"],
                     "Resource": secret,
                     "Condition": {"ForAllValues:StringLike": {"aws:TagKeys": "cloudapps:hub-*"}}},
                ],
            }}],
        })
    );
    // AND the secret has the name the hub reads, no resource policy (in
    // AWS, without one no principal of another account reads it, whatever
    // its own policies say), and the stack outputs the role's ARN
    let resources = member["Resources"].as_object().unwrap();
    assert_eq!(
        resources["ConnectorSecret"]["Properties"]["Name"],
        "cloudapps/connector-key"
    );
    for (id, r) in resources {
        assert_ne!(r["Type"], "AWS::SecretsManager::ResourcePolicy", "{id}");
        assert!(r["Properties"].get("ResourcePolicy").is_none(), "{id}");
    }
    assert_eq!(
        member["Outputs"]["HubAccessRoleArn"]["Value"],
        format!("arn:aws:iam::{}:role/cloudapps-hub-access", w.account)
    );
    // AND in the other modes there is no such role, the secret is named by
    // CloudFormation (several stacks may share an account), no such output
    for (name, r) in [("handoff", &handoff), ("api", &api)] {
        assert!(r["Roles"].get("HubAccessRole").is_none(), "{name}");
        assert!(r["Outputs"].get("HubAccessRoleArn").is_none(), "{name}");
        let secret = &r["Resources"]["ConnectorSecret"]["Properties"];
        assert!(secret.get("Name").is_none(), "{name}: {secret}");
    }
}
