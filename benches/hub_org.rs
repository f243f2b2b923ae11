//! The organization of the hub benchmark, built in a moto of its own: the
//! hub (management) account with its Organizations organization of N member
//! accounts, the registrar's role, its table and the tenant's credential,
//! the portal emulator (30 requests per window), and the hub's registrar
//! with the shipped settings (`HubSettings::read` of the hub template's
//! environment), every timing the portal's minute bounds scaled to the
//! window. The members' stacks are not made here: a stack set makes them
//! during the measured rollout ([`stack_instance`]).
//!
//! The pieces of tests/support/hub.rs (the organization, the credential,
//! the table, the registrar's role), not its `Org`: `Org` makes every
//! member's stack up front, where here the measured stack set makes them.

use std::sync::Arc;
use std::time::{Duration, Instant};

use cloudapps::cfn::Answer;
use cloudapps::config::{Env, HubSettings, Settings};
use cloudapps::hub::Hub;
use cloudapps::portal::{Budget, HubLink, Portal};
use serde_json::json;

use crate::support::hub::{MEMBER_ROLE, MEMBER_SECRET, REGISTRAR_ROLE};
use crate::support::{self, Moto, REGION, World};

/// The hub's registrar: Lambda's timeout, and the schedule's default.
pub const REGISTRAR_TIMEOUT: Duration = Duration::from_secs(900);
/// The nudge queue's batching window (MaximumBatchingWindowInSeconds).
pub const NUDGE_BATCHING_WINDOW: Duration = Duration::from_secs(20);

/// Scales a duration of the portal's minute to the window.
#[derive(Clone, Copy)]
pub struct Scaled(pub f64);

impl Scaled {
    pub fn of(self, d: Duration) -> Duration {
        d.mul_f64(self.0)
    }
}

pub struct Organization {
    pub moto: Arc<Moto>,
    pub org_id: String,
    pub hub_account: String,
    /// The member accounts, sorted.
    pub members: Vec<String>,
    pub registrar_role_arn: String,
    pub emulator: portal_emulator::Emulator,
    pub hub: Arc<Hub>,
    /// The registrar's pace and run margin, scaled.
    pub pace: Duration,
    pub run_margin: Duration,
}

/// An organization of `n` members; the portal takes `limit` requests per
/// `window` and its test lasts `portal_test` (already scaled).
pub async fn build(n: usize, window: Duration, limit: u32, portal_test: Duration) -> Organization {
    let scaled = Scaled(window.as_secs_f64() / 60.0);
    // Without the AWS managed policies, as org scale: moto, one Python
    // process, would otherwise be the bottleneck.
    let moto = Arc::new(Moto::start_with(&[(
        "MOTO_IAM_LOAD_MANAGED_POLICIES",
        "false",
    )]));
    let hub = World::on(&moto).await;
    let (org_id, members) = support::hub::organization(&hub, n).await;
    let token = format!("{:064x}", fastrand::u128(..));
    let emulator = portal_emulator::Emulator::start(portal_emulator::Config {
        api_token: Some(token.clone()),
        limit,
        window,
        test_duration: portal_test,
        aws_endpoint: Some(moto.endpoint.clone()),
        aws_region: REGION.to_string(),
        ..portal_emulator::Config::default()
    })
    .await
    .unwrap();
    let credentials_secret = support::hub::tenant_credential(&hub, &token).await;
    let table = "cloudapps-hub-accounts";
    support::hub::create_table(&hub.sdk, table).await;
    let bus = aws_sdk_eventbridge::Client::new(&hub.sdk)
        .create_event_bus()
        .name("cloudapps-hub")
        .send()
        .await
        .unwrap()
        .event_bus_arn()
        .unwrap()
        .to_string();
    let registrar_sdk = support::hub::registrar(&hub, table, &credentials_secret).await;
    // The hub template's environment; everything else is the shipped default.
    let env = [
        ("PORTAL_URL", emulator.url.as_str()),
        ("PORTAL_CREDENTIALS_SECRET_ARN", credentials_secret.as_str()),
        ("HUB_TABLE", table),
        ("HUB_MEMBER_REGION", REGION),
        ("HUB_EVENT_BUS_ARN", bus.as_str()),
    ];
    let mut settings = HubSettings::read(&Env(|k: &str| {
        env.iter()
            .find(|(n, _)| *n == k)
            .map(|(_, v)| v.to_string())
    }))
    .unwrap();
    let t = &mut settings.portal.timings;
    // Every timing the portal's minute bounds: the pace (1 s), the budget, the
    // retry pauses, the test polls (the registrar's listing poll), the
    // test's timeout, how long a new account's result may wait for a
    // listing, how long a run's listing serves the next; and the
    // run's margin within its 15 minutes.
    t.pace = scaled.of(t.pace);
    t.budget = t.budget.map(|b| Budget {
        window: scaled.of(b.window),
        ..b
    });
    t.retry_first = scaled.of(t.retry_first);
    t.retry_max = scaled.of(t.retry_max);
    t.test_first_poll = scaled.of(t.test_first_poll);
    t.test_max_poll = scaled.of(t.test_max_poll);
    settings.test_timeout = scaled.of(settings.test_timeout);
    settings.listing_kept = scaled.of(settings.listing_kept);
    settings.results_every = scaled.of(settings.results_every);
    settings.run_margin = scaled.of(settings.run_margin);
    let (pace, run_margin) = (settings.portal.timings.pace, settings.run_margin);
    let hub_ = Hub::new(settings, &registrar_sdk).unwrap();
    Organization {
        registrar_role_arn: format!("arn:aws:iam::{}:role/{REGISTRAR_ROLE}", hub.account),
        hub_account: hub.account.clone(),
        moto,
        org_id,
        members,
        emulator,
        hub: Arc::new(hub_),
        pace,
        run_margin,
    }
}

/// One member's connector Create, as its stack answered it.
pub struct Created {
    pub account: String,
    pub ok: bool,
    pub queued: bool,
    pub reason: String,
    pub began: Instant,
    pub ended: Instant,
}

/// The member stack's id in `account`: the same for every call, so that a
/// later rotation finds the secret the stack's Create tagged.
pub fn stack_id(account: &str) -> String {
    format!(
        "arn:aws:cloudformation:{REGION}:{account}:stack/StackSet-cloudapps-bench/00000000-0000-4000-8000-{account:0>12}"
    )
}

/// The member's connector in hub mode, its function's margin `margin`, in a
/// world of `account` (its secret not set).
async fn member(org: &Organization, account: &str, margin: Duration) -> World {
    let mut w = World::in_account(&org.moto, account, &stack_id(account)).await;
    let settings = Settings {
        deadline_margin: margin,
        ..support::test_settings()
    };
    let events = aws_sdk_eventbridge::Client::new(&w.sdk);
    // No bus here: moto cannot carry an event to the hub's account; the
    // rollout nudges the registrar as the bus rule would.
    w.deps.settings = settings;
    w.deps.portal = Portal::hub(HubLink::new(events, None));
    w
}

/// A member whose stack is made: its secret by the fixed name.
pub async fn made_member(org: &Organization, account: &str, margin: Duration) -> World {
    let mut w = member(org, account, margin).await;
    let described = w
        .secrets
        .describe_secret()
        .secret_id(MEMBER_SECRET)
        .send()
        .await
        .expect("the member's secret");
    w.secret_arn = described.arn().unwrap().to_string();
    w
}

/// One stack instance of the member stack set in hub mode: the resources
/// CloudFormation makes before the connector (its secret by the fixed name,
/// the role only the registrar may assume, as template.yaml's
/// `HubAccessRole`), then the connector's Create (timed), with the
/// function's timeout `budget` and its margin `margin` (scaled).
pub async fn stack_instance(
    org: &Organization,
    account: &str,
    budget: Duration,
    margin: Duration,
) -> Created {
    let mut w = member(org, account, margin).await;
    w.secret_arn = w.declare_secret(MEMBER_SECRET).await;
    hub_access_role(&w, &org.registrar_role_arn, &org.org_id).await;
    let mut create = w.event("create.json");
    create["ResourceProperties"]["ConnectorName"] = json!(format!("aws-{account}"));
    let began = Instant::now();
    let (answer, body): (Answer, _) = w.run_with_budget(&create, budget).await;
    let ended = Instant::now();
    Created {
        account: account.to_string(),
        ok: answer.status == "SUCCESS",
        queued: support::data(&body, "PortalStatus") == "queued",
        reason: answer.reason.unwrap_or_default(),
        began,
        ended,
    }
}

/// The member's hub role as template.yaml makes it in hub mode.
async fn hub_access_role(w: &World, registrar_role_arn: &str, org_id: &str) {
    let trust = json!({"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow",
        "Principal": {"AWS": registrar_role_arn},
        "Action": "sts:AssumeRole",
        "Condition": {"StringEquals": {"aws:PrincipalOrgID": org_id}},
    }]});
    w.iam
        .create_role()
        .role_name(MEMBER_ROLE)
        .path("/")
        .assume_role_policy_document(trust.to_string())
        .send()
        .await
        .unwrap();
    let policy = json!({"Version": "2012-10-17", "Statement": [
        {"Sid": "ReadTheConnectorKey", "Effect": "Allow",
         "Action": ["secretsmanager:DescribeSecret", "secretsmanager:GetSecretValue"],
         "Resource": w.secret_arn},
        {"Sid": "WriteOnlyTheHubsTags", "Effect": "Allow",
         "Action": ["secretsmanager:TagResource", "secretsmanager:UntagResource"],
         "Resource": w.secret_arn,
         "Condition": {"ForAllValues:StringLike": {"aws:TagKeys": "cloudapps:hub-*"}}},
    ]});
    w.iam
        .put_role_policy()
        .role_name(MEMBER_ROLE)
        .policy_name("hub-access")
        .policy_document(policy.to_string())
        .send()
        .await
        .unwrap();
}
