//! The organization hub's boundaries, under moto's IAM enforcement: an
//! organization in moto (tests/support/hub.rs) whose members' hub role is
//! template.yaml's `HubAccessRole`, created exactly as the template
//! resolves it in hub mode. The hub's registrar reads a member's key and
//! writes the hub's own tags only through that member's role, and nothing
//! else there; a member's administrator reaches neither the hub nor
//! another member; an account outside the organization cannot assume a
//! member's role, not even with a role named as the registrar.
//!
//! moto keeps each account's resources apart: a call naming another
//! account's secret or table is looked up in the caller's own account, and
//! answers not-found where AWS answers AccessDenied (no resource policy
//! grants it). Such calls are asserted "refused" (either answer); what is
//! decided by a policy here (the trust policy, the role's own policy) is
//! asserted AccessDenied, next to a control that the same call is allowed
//! to whom it should be. tests/README.md says what moto cannot show.
//! Each test runs on a moto server of its own: IAM enforcement is
//! server-wide.

use std::collections::BTreeSet;
use std::fmt::Debug;
use std::time::Duration;

use aws_config::SdkConfig;
use aws_sdk_secretsmanager::Client as Secrets;
use aws_sdk_secretsmanager::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_secretsmanager::types::Tag;
use aws_sdk_sts::config::http::HttpResponse;
use cloudapps::error::is_access_denied;
use serde_json::{Value, json};
use testbed::hub::{MEMBER_ROLE, MEMBER_SECRET, Org, REGISTRAR_ROLE};
use testbed::{Moto, World, sdk_config};

const WINDOW: Duration = Duration::from_millis(1500);
const ADMIN: &str = "arn:aws:iam::aws:policy/AdministratorAccess";
const KEY: &str = r#"{"AccessKeyId":"AKIAIOSFODNN7EXAMPLE","SecretAccessKey":"wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY","UserName":"defender-cloud-apps"}"#;

/// A moto server of the test's own (enforcement is server-wide); it stops
/// when the test process ends (its stdin closes).
fn own_moto() -> &'static Moto {
    Box::leak(Box::new(Moto::start()))
}

/// An organization of two members (A, B), each member's key in its secret.
async fn organization(moto: &'static Moto) -> Org {
    let org = Org::new(moto, 2, WINDOW).await;
    for w in &org.members {
        w.secrets
            .put_secret_value()
            .secret_id(&w.secret_arn)
            .secret_string(KEY)
            .send()
            .await
            .unwrap();
    }
    org
}

fn hub_role(account: &str) -> String {
    format!("arn:aws:iam::{account}:role/{MEMBER_ROLE}")
}

/// A role session: an SDK configuration signed as it (shown by its ARN).
struct Session {
    arn: String,
    sdk: SdkConfig,
}

impl Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "a session {}", self.arn)
    }
}

/// `sdk` assumes `role_arn`.
async fn assume(
    sdk: &SdkConfig,
    role_arn: &str,
) -> Result<Session, SdkError<aws_sdk_sts::operation::assume_role::AssumeRoleError, HttpResponse>> {
    let out = aws_sdk_sts::Client::new(sdk)
        .assume_role()
        .role_arn(role_arn)
        .role_session_name("cloudapps-registrar")
        .send()
        .await?;
    let c = out.credentials().unwrap();
    let endpoint = sdk.endpoint_url().unwrap();
    let sdk = sdk_config(
        endpoint,
        c.access_key_id(),
        c.secret_access_key(),
        Some(c.session_token()),
    )
    .await;
    let arn = out.assumed_role_user().map(|u| u.arn().to_string());
    Ok(Session {
        arn: arn.unwrap_or_default(),
        sdk,
    })
}

/// A role `name` in `w`'s account that its account may assume, allowed
/// everything (`policy` None: AdministratorAccess), and an SDK
/// configuration signed as it. Call with IAM enforcement off.
async fn role_of(w: &World, name: &str, policy: Option<Value>) -> SdkConfig {
    let trust = json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow",
        "Principal": {"AWS": format!("arn:aws:iam::{}:root", w.account)},
        "Action": "sts:AssumeRole"}]});
    let arn = w
        .iam
        .create_role()
        .role_name(name)
        .assume_role_policy_document(trust.to_string())
        .send()
        .await
        .unwrap()
        .role()
        .unwrap()
        .arn()
        .to_string();
    match policy {
        None => {
            let attach = w.iam.attach_role_policy().role_name(name).policy_arn(ADMIN);
            attach.send().await.unwrap();
        }
        Some(p) => {
            let put = w.iam.put_role_policy().role_name(name).policy_name(name);
            put.policy_document(p.to_string()).send().await.unwrap();
        }
    }
    assume(&w.sdk, &arn).await.unwrap().sdk
}

fn everything() -> Value {
    json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]})
}

/// `result` is AccessDenied: a policy refused it.
fn denied<T: Debug, E: ProvideErrorMetadata + Debug>(
    what: &str,
    result: Result<T, SdkError<E, HttpResponse>>,
) {
    match result {
        Err(e) => assert!(is_access_denied(&e), "{what}: {e:?}"),
        Ok(out) => panic!("{what} was allowed: {out:?}"),
    }
}

/// `result` is refused: AccessDenied (AWS, and moto where a policy decides
/// it), or not-found (moto, where the resource is another account's).
fn refused<T: Debug, E: ProvideErrorMetadata + Debug>(
    what: &str,
    result: Result<T, SdkError<E, HttpResponse>>,
) {
    match result {
        Err(e) => assert!(
            is_access_denied(&e) || e.code() == Some("ResourceNotFoundException"),
            "{what}: {e:?}"
        ),
        Ok(out) => panic!("{what} was allowed: {out:?}"),
    }
}

fn allowed<T, E: Debug>(what: &str, result: Result<T, E>) -> T {
    result.unwrap_or_else(|e| panic!("{what} was refused: {e:?}"))
}

fn tag(key: &str, value: &str) -> Tag {
    Tag::builder().key(key).value(value).build()
}

/// The denials moto logged for the principals whose ARN contains `who`.
fn denials_of(moto: &Moto, who: &str) -> BTreeSet<(String, String)> {
    moto.denials()
        .iter()
        .filter(|d| d["principal"].as_str().unwrap_or_default().contains(who))
        .map(|d| {
            let action = d["action"].as_str().unwrap().to_string();
            (action, d["resources"][0].as_str().unwrap().to_string())
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn through_a_members_role_the_registrar_reads_its_key_and_writes_only_the_hubs_tags() {
    // GIVEN an organization, a member A with its key and another secret
    let moto = own_moto();
    let org = organization(moto).await;
    let (a, b) = (&org.members[0], &org.members[1]);
    let other = a
        .secrets
        .create_secret()
        .name("app/database-password")
        .secret_string("hunter2")
        .send()
        .await
        .unwrap()
        .arn()
        .unwrap()
        .to_string();
    moto.enforce_iam().await;

    // WHEN the hub's registrar assumes A's hub role
    let session = allowed(
        "the registrar assumes A's hub role",
        assume(&org.registrar_sdk, &hub_role(&a.account)).await,
    );
    let secrets = Secrets::new(&session.sdk);

    // THEN it reads A's key, by the secret's fixed name, and writes and
    // removes the hub's tags
    let described = secrets.describe_secret().secret_id(MEMBER_SECRET).send();
    let described = allowed("DescribeSecret", described.await);
    assert_eq!(described.arn(), Some(a.secret_arn.as_str()));
    let read = secrets
        .get_secret_value()
        .secret_id(MEMBER_SECRET)
        .version_stage("AWSCURRENT")
        .send();
    assert_eq!(
        allowed("GetSecretValue", read.await).secret_string(),
        Some(KEY)
    );
    let hub_tags = secrets
        .tag_resource()
        .secret_id(&a.secret_arn)
        .tags(tag("cloudapps:hub-status", "queued"))
        .tags(tag("cloudapps:hub-detail", "seen"));
    allowed("TagResource cloudapps:hub-*", hub_tags.send().await);
    let untag = secrets
        .untag_resource()
        .secret_id(&a.secret_arn)
        .tag_keys("cloudapps:hub-detail");
    allowed("UntagResource cloudapps:hub-*", untag.send().await);

    // AND nothing else: no other tag key (not with a hub tag beside it),
    // no removal of another, no new value, no deletion, no other secret of
    // A, no secret of B
    let key_id = tag("cloudapps:key-id", "AKIAIOSFODNN7EXAMPLE");
    let write = secrets.tag_resource().secret_id(&a.secret_arn);
    denied(
        "TagResource cloudapps:key-id",
        write.tags(key_id.clone()).send().await,
    );
    let write = secrets.tag_resource().secret_id(&a.secret_arn);
    let both = write
        .tags(tag("cloudapps:hub-status", "connected"))
        .tags(key_id);
    denied("TagResource hub-status and key-id", both.send().await);
    let untag = secrets.untag_resource().secret_id(&a.secret_arn);
    denied(
        "UntagResource cloudapps:stack-id",
        untag.tag_keys("cloudapps:stack-id").send().await,
    );
    let put = secrets.put_secret_value().secret_id(&a.secret_arn);
    denied("PutSecretValue", put.secret_string("{}").send().await);
    let delete = secrets.delete_secret().secret_id(&a.secret_arn);
    denied("DeleteSecret", delete.send().await);
    for id in [&other, &b.secret_arn] {
        denied(id, secrets.get_secret_value().secret_id(id).send().await);
        denied(id, secrets.describe_secret().secret_id(id).send().await);
    }
    // AND exactly those were denied, by A's role's own policy
    let session_of = format!("assumed-role/{MEMBER_ROLE}/");
    let actions: BTreeSet<String> = denials_of(moto, &session_of)
        .into_iter()
        .map(|(action, _)| action)
        .collect();
    let want = [
        "secretsmanager:TagResource",
        "secretsmanager:UntagResource",
        "secretsmanager:PutSecretValue",
        "secretsmanager:DeleteSecret",
        "secretsmanager:GetSecretValue",
        "secretsmanager:DescribeSecret",
    ];
    assert_eq!(actions, want.iter().map(|a| a.to_string()).collect());
    moto.relax_iam().await;
    // AND the secret holds what the role was allowed, nothing else
    let info = cloudapps::key_store::describe(&a.secrets, &a.secret_arn)
        .await
        .unwrap();
    let tags: Vec<(&str, &str)> = info
        .tags
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    assert!(
        tags.contains(&("cloudapps:hub-status", "queued")),
        "{tags:?}"
    );
    for gone in ["cloudapps:hub-detail", "cloudapps:key-id"] {
        assert!(tags.iter().all(|(k, _)| *k != gone), "{gone}: {tags:?}");
    }
    let current = a.secrets.get_secret_value().secret_id(&a.secret_arn);
    let current = current.version_stage("AWSCURRENT").send().await.unwrap();
    assert_eq!(current.secret_string(), Some(KEY));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_registrar_itself_cannot_read_a_members_key_without_its_role() {
    // GIVEN an organization
    let moto = own_moto();
    let org = organization(moto).await;
    let a = &org.members[0];
    // and, as a hub that grants its registrar more than it needs might,
    // a copy of the registrar role allowed every Secrets Manager action
    // on every member's connector secret
    let loose = json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow",
        "Action": "secretsmanager:*",
        "Resource": format!("arn:aws:secretsmanager:*:*:secret:{MEMBER_SECRET}-*")}]});
    let broad = role_of(&org.hub, "cloudapps-registrar-broad", Some(loose)).await;
    moto.enforce_iam().await;

    // WHEN the registrar role, signed as itself, names A's secret
    let own = Secrets::new(&org.registrar_sdk);
    let broad = Secrets::new(&broad);

    // THEN it is refused (its own policy allows only the tenant's credential)
    for (who, secrets) in [("the registrar", &own), ("the broad registrar", &broad)] {
        let read = secrets.get_secret_value().secret_id(&a.secret_arn).send();
        refused(&format!("{who}: GetSecretValue"), read.await);
        let described = secrets.describe_secret().secret_id(&a.secret_arn).send();
        refused(&format!("{who}: DescribeSecret"), described.await);
        let write = secrets.tag_resource().secret_id(&a.secret_arn);
        let write = write.tags(tag("cloudapps:hub-status", "connected")).send();
        refused(&format!("{who}: TagResource"), write.await);
    }
    // by its policy (moto: AccessDenied for the registrar; the broad one's
    // call reaches A's secret only in AWS, where A's secret has no resource
    // policy, and is AccessDenied there; moto answers not-found)
    let denied_to = denials_of(moto, &format!("assumed-role/{REGISTRAR_ROLE}/"));
    let want: BTreeSet<(String, String)> = [
        "secretsmanager:GetSecretValue",
        "secretsmanager:DescribeSecret",
        "secretsmanager:TagResource",
    ]
    .iter()
    .map(|action| (action.to_string(), a.secret_arn.clone()))
    .collect();
    assert_eq!(denied_to, want);

    // AND the same registrar, through A's hub role, reads it (the control)
    let session = assume(&org.registrar_sdk, &hub_role(&a.account)).await;
    let session = allowed("the registrar assumes A's hub role", session);
    let read = Secrets::new(&session.sdk)
        .get_secret_value()
        .secret_id(&a.secret_arn)
        .version_stage("AWSCURRENT")
        .send();
    assert_eq!(
        allowed("through the role", read.await).secret_string(),
        Some(KEY)
    );
    moto.relax_iam().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_members_administrator_reaches_neither_the_hub_nor_another_member() {
    // GIVEN an organization and, in its member B, a role with
    // AdministratorAccess
    let moto = own_moto();
    let org = organization(moto).await;
    let (a, b) = (&org.members[0], &org.members[1]);
    let admin = role_of(b, "member-admin", None).await;
    let table_arn = format!(
        "arn:aws:dynamodb:us-east-1:{}:table/{}",
        org.hub.account, org.table
    );
    moto.enforce_iam().await;
    let secrets = Secrets::new(&admin);
    let tables = aws_sdk_dynamodb::Client::new(&admin);
    let sts = aws_sdk_sts::Client::new(&admin);

    // THEN it holds its own account (the control: its key, by the name)
    let own = secrets
        .get_secret_value()
        .secret_id(MEMBER_SECRET)
        .version_stage("AWSCURRENT");
    let own = allowed("B's admin reads B's key", own.send().await);
    assert_eq!(own.secret_string(), Some(KEY));

    // AND it cannot read the hub's tenant credential, nor A's key
    for id in [&org.credentials_secret, &a.secret_arn] {
        refused(id, secrets.get_secret_value().secret_id(id).send().await);
        refused(id, secrets.describe_secret().secret_id(id).send().await);
    }
    // AND it cannot read the hub's table
    refused("Scan", tables.scan().table_name(&table_arn).send().await);
    let key = aws_sdk_dynamodb::types::AttributeValue::S(a.account.clone());
    let get = tables.get_item().table_name(&table_arn).key("account", key);
    refused("GetItem", get.send().await);
    // AND it cannot assume A's hub role, nor become the hub's registrar
    for role in [
        hub_role(&a.account),
        format!("arn:aws:iam::{}:role/{REGISTRAR_ROLE}", org.hub.account),
    ] {
        let assumed = sts
            .assume_role()
            .role_arn(&role)
            .role_session_name("b-admin");
        denied(&role, assumed.send().await);
    }
    // (the two AssumeRole decided by their trust policies, logged by moto)
    let assumed: BTreeSet<String> = denials_of(moto, "assumed-role/member-admin/")
        .into_iter()
        .filter(|(action, _)| action == "sts:AssumeRole")
        .map(|(_, role)| role)
        .collect();
    assert_eq!(assumed.len(), 2, "{assumed:?}");
    // AND the hub's registrar may assume A's hub role (the control)
    let session = assume(&org.registrar_sdk, &hub_role(&a.account)).await;
    allowed("the registrar assumes A's hub role", session);
    moto.relax_iam().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_account_outside_the_organization_cannot_assume_a_members_role_even_as_cloudapps_registrar()
 {
    // GIVEN an organization, and an account outside it with a role named
    // as the hub's registrar, at the same path, allowed everything
    let moto = own_moto();
    let org = organization(moto).await;
    let a = &org.members[0];
    let outside = World::on(moto).await;
    let impostor = role_of(&outside, REGISTRAR_ROLE, Some(everything())).await;
    moto.enforce_iam().await;

    // WHEN the outside `cloudapps-registrar` assumes A's hub role
    let assumed = assume(&impostor, &hub_role(&a.account)).await;

    // THEN it is refused: the trust names the hub's registrar role by its
    // ARN, and wants the caller within the organization; the hub's
    // registrar gets in
    denied("the outside cloudapps-registrar", assumed);
    let session = assume(&org.registrar_sdk, &hub_role(&a.account)).await;
    allowed("the hub's registrar", session);

    // AND with A's role trusting one half of the template's trust policy
    // (any principal within the organization; the registrar anywhere),
    // each half alone still refuses it and lets the registrar in; with
    // neither, it gets in (moto evaluates the trust: the refusal is the
    // template trust's doing)
    let trust = &org.member_templates[0]["Roles"]["HubAccessRole"]["AssumeRolePolicyDocument"];
    let mut any_in_org = trust.clone();
    any_in_org["Statement"][0]["Principal"] = json!({"AWS": "*"});
    let mut registrar_anywhere = trust.clone();
    let statement = registrar_anywhere["Statement"][0].as_object_mut().unwrap();
    statement
        .remove("Condition")
        .expect("the trust has a condition");
    let mut anyone = registrar_anywhere.clone();
    anyone["Statement"][0]["Principal"] = json!({"AWS": "*"});
    for (name, document, impostor_gets_in) in [
        ("any principal in the organization", &any_in_org, false),
        ("the registrar anywhere", &registrar_anywhere, false),
        ("anyone", &anyone, true),
        ("the template's", trust, false),
    ] {
        moto.relax_iam().await;
        let update = a.iam.update_assume_role_policy().role_name(MEMBER_ROLE);
        let update = update.policy_document(document.to_string()).send().await;
        update.expect("UpdateAssumeRolePolicy");
        moto.enforce_iam().await;
        let assumed = assume(&impostor, &hub_role(&a.account)).await;
        if impostor_gets_in {
            allowed(&format!("{name}: the outside cloudapps-registrar"), assumed);
        } else {
            denied(&format!("{name}: the outside cloudapps-registrar"), assumed);
        }
        let session = assume(&org.registrar_sdk, &hub_role(&a.account)).await;
        allowed(&format!("{name}: the hub's registrar"), session);
    }
    moto.relax_iam().await;
}
