//! An organization in moto with its hub: the hub (management) account, its
//! Organizations organization with member accounts, in each member the
//! connector in `PORTAL_MODE=hub` with its secret by the fixed name and the
//! role only the hub's registrar may assume (template.yaml's `HubAccessRole`,
//! created exactly as the template resolves it in hub mode); in the hub, the
//! tenant's credential, the table and the registrar, against one portal
//! emulator throttled at 30 requests per scaled minute.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, KeySchemaElement, KeyType, ScalarAttributeType,
};
use cloudapps::config::HubSettings;
use cloudapps::hub::Hub;
use cloudapps::hub::report::RunReport;
use cloudapps::hub::table::Row;
use cloudapps::portal::{Budget, HubLink, Portal};
use serde_json::{Value, json};

use crate::{Moto, REGION, World, portal_settings, sdk_config, template};

/// The member's secret, by the name the member template gives it in hub mode.
pub const MEMBER_SECRET: &str = "cloudapps/connector-key";
/// The role each member makes for the hub.
pub const MEMBER_ROLE: &str = "cloudapps-hub-access";
/// The hub's registrar role.
pub const REGISTRAR_ROLE: &str = "cloudapps-registrar";
/// The portal's budget: 30 requests per (scaled) minute.
pub const LIMIT: u32 = 30;

/// The organization.
pub struct Org {
    pub moto: &'static Moto,
    pub hub: World,
    pub org_id: String,
    pub members: Vec<World>,
    /// template.yaml resolved for each member's stack (hub mode), in the
    /// order of `members`.
    pub member_templates: Vec<Value>,
    pub emulator: portal_emulator::Emulator,
    /// The scaled minute of the portal's budget.
    pub window: Duration,
    /// The requests the portal takes per `window`.
    pub limit: u32,
    pub table: String,
    pub credentials_secret: String,
    pub registrar_role_arn: String,
    /// The registrar's SDK configuration (signed as its role).
    pub registrar_sdk: aws_config::SdkConfig,
}

impl Org {
    /// An organization of `members` accounts and its hub, in `moto`, with
    /// the connector made (but not created) in each member; the portal
    /// takes [`LIMIT`] requests per `window`.
    pub async fn new(moto: &'static Moto, members: usize, window: Duration) -> Org {
        Org::with_budget(moto, members, window, LIMIT).await
    }

    /// The same, with a portal that takes `limit` requests per `window`.
    pub async fn with_budget(
        moto: &'static Moto,
        members: usize,
        window: Duration,
        limit: u32,
    ) -> Org {
        let hub = World::on(moto).await;
        let (org_id, ids) = organization(&hub, members).await;
        let registrar_role_arn = format!("arn:aws:iam::{}:role/{REGISTRAR_ROLE}", hub.account);
        let mut worlds = Vec::new();
        for id in &ids {
            worlds.push(member(moto, id).await);
        }
        let member_templates = member_stacks(&worlds, &registrar_role_arn, &org_id);
        for (w, resolved) in worlds.iter().zip(&member_templates) {
            template::create_role(w, resolved, "HubAccessRole").await;
        }
        let token = format!("{:064x}", fastrand::u128(..));
        let emulator = portal_emulator::Emulator::start(portal_emulator::Config {
            api_token: Some(token.clone()),
            limit,
            window,
            test_duration: Duration::from_millis(300),
            aws_endpoint: Some(moto.endpoint.clone()),
            aws_region: REGION.to_string(),
            ..portal_emulator::Config::default()
        })
        .await
        .unwrap();
        let credentials_secret = tenant_credential(&hub, &token).await;
        let table = "cloudapps-hub-accounts".to_string();
        create_table(&hub.sdk, &table).await;
        let registrar_sdk = registrar(&hub, &table, &credentials_secret).await;
        Org {
            moto,
            hub,
            org_id,
            members: worlds,
            member_templates,
            emulator,
            window,
            limit,
            table,
            credentials_secret,
            registrar_role_arn,
            registrar_sdk,
        }
    }

    /// The hub's registrar and health check, as the hub template sets them
    /// up, with every timing of the portal's minute scaled to `window`.
    pub fn hub_with(&self, tweak: impl FnOnce(&mut HubSettings)) -> Hub {
        let scale = self.window.as_secs_f64() / 60.0;
        let mut portal = portal_settings(&self.emulator.url, &self.credentials_secret);
        portal.timings.pace = self.window / self.limit / 2;
        portal.timings.budget = Some(Budget {
            requests: self.limit,
            window: self.window,
        });
        portal.timings.test_first_poll = Duration::from_secs(15).mul_f64(scale);
        let mut settings = HubSettings {
            portal,
            table: self.table.clone(),
            member_role: MEMBER_ROLE.into(),
            member_secret: MEMBER_SECRET.into(),
            member_region: Some(REGION.into()),
            test_timeout: Duration::from_secs(30),
            gone_after: Duration::from_secs(3600),
            list_share_percent: 5,
            results_every: Duration::from_secs(300).mul_f64(scale),
            listing_kept: Duration::from_secs(1200).mul_f64(scale),
            run_margin: Duration::from_millis(200),
            concurrency: 8,
            event_bus: None,
        };
        tweak(&mut settings);
        Hub::new(settings, &self.registrar_sdk).unwrap()
    }

    pub fn hub(&self) -> Hub {
        self.hub_with(|_| {})
    }

    /// Registrar runs (each at most `budget`) until one settles; their reports.
    pub async fn settle(&self, hub: &Hub, budget: Duration) -> Vec<RunReport> {
        let mut reports = Vec::new();
        for _ in 0..5 {
            let report = hub
                .registrar
                .run(Instant::now() + budget, Default::default())
                .await
                .expect("a registrar run");
            let settled = report.settled;
            reports.push(report);
            if settled {
                return reports;
            }
        }
        panic!("the registrar did not settle: {reports:?}");
    }

    /// The hub's table, by account.
    pub async fn rows(&self, hub: &Hub) -> BTreeMap<String, Row> {
        hub.registrar.table.rows().await.unwrap()
    }

    /// Every member's Create, all at once; their response bodies.
    pub async fn create_all(&self) -> Vec<Value> {
        futures_util::future::join_all(
            self.members
                .iter()
                .map(|w| async move { w.ok(&create_event(w)).await }),
        )
        .await
    }

    /// The most portal requests any `window` held.
    pub fn busiest_window(&self) -> usize {
        let mut at: Vec<Instant> = self
            .emulator
            .requests()
            .iter()
            .filter(|r| r.route.is_some() && r.status != 429)
            .map(|r| r.at)
            .collect();
        at.sort();
        (0..at.len())
            .map(|i| {
                at[i..]
                    .iter()
                    .take_while(|t| **t < at[i] + self.window)
                    .count()
            })
            .max()
            .unwrap_or(0)
    }
}

/// A member's Create, its connector named `aws-<account>`.
pub fn create_event(w: &World) -> Value {
    let mut e = w.event("create.json");
    e["ResourceProperties"]["ConnectorName"] = json!(format!("aws-{}", w.account));
    e
}

/// The template's parameters of a member stack in hub mode: the hub's
/// registrar role, the organization; no bus (the in-process connector does
/// not nudge).
pub fn member_parameters(registrar_role_arn: &str, org_id: &str) -> Value {
    json!({
        "PortalMode": "hub",
        "HubRegistrarRoleArn": registrar_role_arn,
        "OrganizationId": org_id,
    })
}

/// template.yaml resolved for the member stack of each world in hub mode
/// (`member_parameters`), in one run of the resolver. Checks what the
/// hub relies on: the secret's fixed name, the role's name and path.
pub fn member_stacks(members: &[World], registrar_role_arn: &str, org_id: &str) -> Vec<Value> {
    let stacks: Vec<(&World, Value, Value)> = members
        .iter()
        .map(|w| {
            let topic = format!("arn:aws:sns:{REGION}:{}:cloudapps-notify", w.account);
            let parameters = member_parameters(registrar_role_arn, org_id);
            (w, parameters, template::resources(w, &topic))
        })
        .collect();
    let resolved = template::resolve_each("template.yaml", &stacks);
    for r in &resolved {
        assert_eq!(r["ParameterErrors"], json!([]));
        for (name, rule) in r["Rules"].as_object().unwrap() {
            assert_eq!(rule["Failed"], json!([]), "{name}: {rule}");
        }
        let secret = &r["Resources"]["ConnectorSecret"]["Properties"];
        assert_eq!(secret["Name"], MEMBER_SECRET, "{secret}");
        let role = &r["Roles"]["HubAccessRole"];
        assert_eq!(
            (&role["RoleName"], &role["Path"]),
            (&json!(MEMBER_ROLE), &json!("/"))
        );
    }
    resolved
}

/// A member account: the connector in hub mode and its secret by the fixed
/// name (its hub role: [`member_stacks`], [`template::create_role`]).
async fn member(moto: &Moto, account: &str) -> World {
    let stack_id = format!(
        "arn:aws:cloudformation:{REGION}:{account}:stack/StackSet-cloudapps-{:08x}/{:08x}-0000-4000-8000-{:012x}",
        fastrand::u32(..),
        fastrand::u32(..),
        fastrand::u64(..0xffff_ffff_ffff)
    );
    let mut w = World::in_account(moto, account, &stack_id).await;
    w.secret_arn = w.declare_secret(MEMBER_SECRET).await;
    let events = aws_sdk_eventbridge::Client::new(&w.sdk);
    w.deps.portal = Portal::hub(HubLink::new(events, None));
    w
}

/// `hub`'s Organizations organization with `members` new member accounts:
/// its id, and the members' account ids, sorted.
pub async fn organization(hub: &World, members: usize) -> (String, Vec<String>) {
    use futures_util::StreamExt;
    let orgs = aws_sdk_organizations::Client::new(&hub.sdk);
    let org_id = orgs
        .create_organization()
        .feature_set(aws_sdk_organizations::types::OrganizationFeatureSet::All)
        .send()
        .await
        .unwrap()
        .organization
        .unwrap()
        .id
        .unwrap();
    futures_util::stream::iter(0..members)
        .map(|i| {
            let orgs = orgs.clone();
            async move {
                orgs.create_account()
                    .email(format!("member{i}-{:08x}@example.com", fastrand::u32(..)))
                    .account_name(format!("member-{i}"))
                    .send()
                    .await
                    .unwrap();
            }
        })
        .buffer_unordered(8)
        .collect::<Vec<()>>()
        .await;
    let mut ids = Vec::new();
    let mut pages = orgs.list_accounts().into_paginator().send();
    while let Some(page) = pages.next().await {
        for a in page.unwrap().accounts() {
            ids.extend(a.id().filter(|id| *id != hub.account).map(str::to_string));
        }
    }
    ids.sort();
    assert_eq!(ids.len(), members, "the organization's members");
    (org_id, ids)
}

/// The tenant's credential (an API token) in a secret of the hub: its ARN.
pub async fn tenant_credential(hub: &World, token: &str) -> String {
    hub.secrets
        .create_secret()
        .name("cloudapps/tenant-credential")
        .secret_string(json!({"Token": token}).to_string())
        .send()
        .await
        .unwrap()
        .arn()
        .unwrap()
        .to_string()
}

/// A table of the hub's shape (one item per account).
pub async fn create_table(sdk: &aws_config::SdkConfig, name: &str) {
    aws_sdk_dynamodb::Client::new(sdk)
        .create_table()
        .table_name(name)
        .attribute_definitions(
            AttributeDefinition::builder()
                .attribute_name("account")
                .attribute_type(ScalarAttributeType::S)
                .build()
                .unwrap(),
        )
        .key_schema(
            KeySchemaElement::builder()
                .attribute_name("account")
                .key_type(KeyType::Hash)
                .build()
                .unwrap(),
        )
        .billing_mode(BillingMode::PayPerRequest)
        .send()
        .await
        .unwrap();
}

/// The registrar role in the hub, and an SDK configuration signed as it.
pub async fn registrar(
    hub: &World,
    table: &str,
    credentials_secret: &str,
) -> aws_config::SdkConfig {
    let trust = json!({"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow", "Principal": {"AWS": format!("arn:aws:iam::{}:root", hub.account)},
        "Action": "sts:AssumeRole"}]});
    hub.iam
        .create_role()
        .role_name(REGISTRAR_ROLE)
        .assume_role_policy_document(trust.to_string())
        .send()
        .await
        .unwrap();
    let policy = json!({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "sts:AssumeRole",
         "Resource": format!("arn:aws:iam::*:role/{MEMBER_ROLE}")},
        {"Effect": "Allow", "Action": "organizations:ListAccounts", "Resource": "*"},
        {"Effect": "Allow", "Action": "secretsmanager:GetSecretValue", "Resource": credentials_secret},
        {"Effect": "Allow",
         "Action": ["dynamodb:Scan", "dynamodb:PutItem", "dynamodb:GetItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem"],
         "Resource": format!("arn:aws:dynamodb:{REGION}:{}:table/{table}", hub.account)},
    ]});
    hub.iam
        .put_role_policy()
        .role_name(REGISTRAR_ROLE)
        .policy_name("registrar")
        .policy_document(policy.to_string())
        .send()
        .await
        .unwrap();
    let assumed = aws_sdk_sts::Client::new(&hub.sdk)
        .assume_role()
        .role_arn(format!(
            "arn:aws:iam::{}:role/{REGISTRAR_ROLE}",
            hub.account
        ))
        .role_session_name("registrar")
        .send()
        .await
        .unwrap();
    let c = assumed.credentials().unwrap();
    sdk_config(
        &hub.endpoint,
        c.access_key_id(),
        c.secret_access_key(),
        Some(c.session_token()),
    )
    .await
}

/// A Lambda deadline `d` from now, in milliseconds since the epoch.
pub fn epoch_millis_in(d: Duration) -> u64 {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap();
    u64::try_from((now + d).as_millis()).unwrap()
}
