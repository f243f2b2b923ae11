//! A module of tests/template.rs: what a compromised connector function
//! could do with the role the template gives it, under moto's IAM
//! enforcement (which evaluates users' permissions boundaries:
//! tests/support/moto_iam.py). It cannot make a user outside UserPath or
//! without the template's boundary, take the boundary off, nor attach
//! AdministratorAccess; and what it can write (a version of the stack's
//! policy) gives the user nothing beyond the boundary. Each denial is
//! checked against a control that the same caller is allowed, so that a
//! test never passes because everything is refused.

use std::fmt::Debug;

use aws_config::SdkConfig;
use aws_sdk_iam::config::http::HttpResponse;
use aws_sdk_iam::error::{ProvideErrorMetadata, SdkError};
use serde_json::{Value, json};
use testbed::runtime_api::Function;
use testbed::{Moto, World, sdk_config, template};

use super::{BOTH, CONNECTOR, GROUP, TUNING, USER, create_event, deployed_with, send};

const PATH: &str = "/defender-cloud-apps/";
const ADMIN: &str = "arn:aws:iam::aws:policy/AdministratorAccess";

/// A policy allowing every action on every resource (no spaces: moto's
/// signature check under enforcement fails on them in Query API bodies).
fn everything() -> String {
    json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]})
        .to_string()
}

/// A stack with both connections whose connector (the real binary, as the
/// template's role) ran Create under IAM enforcement: the world, the
/// resolved template and the connector role's own credentials. Enforcement
/// is off again.
async fn connected(moto: &Moto) -> (World, Value, SdkConfig) {
    let (w, resolved) = deployed_with(moto, &json!({"Connections": BOTH})).await;
    let credentials = template::assume_role(&w, &resolved, "ConnectorRole").await;
    let env = template::function_env(&w, &resolved, "ConnectorFunction", &credentials, &TUNING);
    let connector = Function::start(CONNECTOR, &env).await;
    moto.enforce_iam().await;
    let body = send(&connector, &w, &create_event(&w, &resolved)).await;
    moto.relax_iam().await;
    assert_eq!(body["Status"], "SUCCESS", "{body}");
    connector.stop().await;
    let (key, secret, token) = credentials;
    let role = sdk_config(&w.endpoint, &key, &secret, Some(&token)).await;
    (w, resolved, role)
}

/// `result` is an AccessDenied (moto's IAM wraps it in an `<Errors>` element
/// the SDK does not read: then its body says it).
fn denied<T: Debug, E: ProvideErrorMetadata + Debug>(
    what: &str,
    result: Result<T, SdkError<E, HttpResponse>>,
) {
    let e = match result {
        Err(e) => e,
        Ok(out) => panic!("{what} was allowed: {out:?}"),
    };
    let raw = e.raw_response();
    let body = raw.and_then(|r| r.body().bytes()).unwrap_or_default();
    let said = String::from_utf8_lossy(body).contains("<Code>AccessDenied</Code>");
    let forbidden = raw.is_some_and(|r| r.status().as_u16() == 403);
    assert!(
        e.code() == Some("AccessDenied") || (forbidden && said),
        "{what}: {e:?}"
    );
}

fn allowed<T, E: Debug>(what: &str, result: Result<T, E>) -> T {
    result.unwrap_or_else(|e| panic!("{what} was refused: {e:?}"))
}

fn boundary_of(user: &aws_sdk_iam::types::User) -> Option<String> {
    let boundary = user.permissions_boundary()?;
    boundary.permissions_boundary_arn().map(str::to_string)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_connector_role_cannot_make_a_user_beyond_the_templates_boundary() {
    // GIVEN a connected stack and the connector role's credentials
    let moto = Moto::start();
    let (w, resolved, role) = connected(&moto).await;
    let boundary = template::managed_policy_arn(&resolved, "UserPermissionsBoundary");
    let iam = aws_sdk_iam::Client::new(&role);
    let everything = everything();
    moto.enforce_iam().await;

    // WHEN it creates a user outside UserPath, without the boundary, or
    // with another one
    let create = |name: &str, path: &str, with: Option<&str>| {
        let call = iam.create_user().user_name(name).path(path);
        call.set_permissions_boundary(with.map(str::to_string))
            .send()
    };
    denied(
        "a user outside UserPath",
        create("intruder", "/elsewhere/", Some(&boundary)).await,
    );
    denied(
        "a user without the boundary",
        create("intruder", PATH, None).await,
    );
    denied(
        "a user within AdministratorAccess",
        create("intruder", PATH, Some(ADMIN)).await,
    );

    // AND takes the boundary off the user, or swaps it
    let take_off = iam.delete_user_permissions_boundary().user_name(USER);
    denied("DeleteUserPermissionsBoundary", take_off.send().await);
    let swap = iam.put_user_permissions_boundary().user_name(USER);
    denied(
        "another boundary",
        swap.permissions_boundary(ADMIN).send().await,
    );

    // AND rewrites the boundary itself
    let rewrite = iam.create_policy_version().policy_arn(&boundary);
    denied(
        "a new version of the boundary",
        rewrite
            .policy_document(&everything)
            .set_as_default(true)
            .send()
            .await,
    );

    // AND attaches AdministratorAccess to the user or to its group, or
    // puts an inline policy allowing everything on either
    let attach = iam.attach_user_policy().user_name(USER).policy_arn(ADMIN);
    denied("AdministratorAccess on the user", attach.send().await);
    let attach = iam
        .attach_group_policy()
        .group_name(GROUP)
        .policy_arn(ADMIN);
    denied("AdministratorAccess on the group", attach.send().await);
    let inline = iam.put_user_policy().user_name(USER).policy_name("all");
    denied(
        "an inline policy on the user",
        inline.policy_document(&everything).send().await,
    );
    let inline = iam.put_group_policy().group_name(GROUP).policy_name("all");
    denied(
        "an inline policy on the group",
        inline.policy_document(&everything).send().await,
    );

    // THEN each was refused, and moto recorded it
    let refused: Vec<String> = moto
        .denials()
        .iter()
        .map(|d| d["action"].as_str().unwrap().to_string())
        .collect();
    for action in [
        "iam:CreateUser",
        "iam:DeleteUserPermissionsBoundary",
        "iam:PutUserPermissionsBoundary",
        "iam:CreatePolicyVersion",
        "iam:AttachUserPolicy",
        "iam:AttachGroupPolicy",
        "iam:PutUserPolicy",
        "iam:PutGroupPolicy",
    ] {
        assert!(refused.iter().any(|a| a == action), "{action}: {refused:?}");
    }
    // AND the same role may create a user under UserPath within the boundary
    // (the refusals above are the conditions', not a blanket denial)
    allowed(
        "a user within the boundary",
        create("intruder", PATH, Some(&boundary)).await,
    );
    moto.relax_iam().await;
    let user = w.user(USER).await.unwrap();
    assert_eq!(boundary_of(&user), Some(boundary.clone()));
    let intruder = w.user("intruder").await.unwrap();
    assert_eq!(boundary_of(&intruder), Some(boundary));
    assert!(w.attached(USER).await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_policy_allowing_everything_on_the_group_gives_the_user_nothing_beyond_its_boundary() {
    // GIVEN a connected stack (with SecurityConfiguration: the boundary's
    // widest), a bucket holding an object, and the user's key
    let moto = Moto::start();
    let (w, _resolved, role) = connected(&moto).await;
    let bucket = format!("cloudapps-data-{}", w.account);
    w.s3.create_bucket().bucket(&bucket).send().await.unwrap();
    let tag = aws_sdk_s3::types::Tag::builder()
        .key("data")
        .value("payroll");
    let tags = aws_sdk_s3::types::Tagging::builder().tag_set(tag.build().unwrap());
    let tagged = w.s3.put_bucket_tagging().bucket(&bucket);
    tagged.tagging(tags.build().unwrap()).send().await.unwrap();
    let object = w.s3.put_object().bucket(&bucket).key("payroll.csv");
    object
        .body(b"name,salary\n".to_vec().into())
        .send()
        .await
        .unwrap();
    let key = w.current_key().await;
    let user = sdk_config(
        &w.endpoint,
        &key.access_key_id,
        key.secret_access_key.expose(),
        None,
    )
    .await;
    let (iam, s3) = (
        aws_sdk_iam::Client::new(&user),
        cloudapps::aws::s3_client(&user),
    );
    let secrets = aws_sdk_secretsmanager::Client::new(&user);

    // WHEN the connector role makes the stack's policy allow everything
    // (its role may: the policy is under UserPath), and an inline policy
    // on the group allows everything too
    moto.enforce_iam().await;
    let policy = format!("arn:aws:iam::{}:policy{PATH}{USER}-cloudapps", w.account);
    let version = aws_sdk_iam::Client::new(&role)
        .create_policy_version()
        .policy_arn(&policy);
    allowed(
        "a version of the stack's policy",
        version
            .policy_document(everything())
            .set_as_default(true)
            .send()
            .await,
    );
    moto.relax_iam().await;
    let inline = w
        .iam
        .put_group_policy()
        .group_name(GROUP)
        .policy_name("all");
    inline.policy_document(everything()).send().await.unwrap();
    moto.enforce_iam().await;

    // THEN the user, signed with its key, still reads what the boundary
    // allows (the guide's iam:List*, SecurityConfiguration's s3:Get*)
    allowed("iam:ListUsers", iam.list_users().send().await);
    allowed(
        "s3:GetBucketTagging",
        s3.get_bucket_tagging().bucket(&bucket).send().await,
    );
    // AND nothing beyond: no user, no policy on itself, no key, no object, no secret
    denied(
        "iam:CreateUser",
        iam.create_user().user_name("escalated").send().await,
    );
    let attach = iam.attach_user_policy().user_name(USER).policy_arn(ADMIN);
    denied("iam:AttachUserPolicy", attach.send().await);
    denied(
        "iam:CreateAccessKey",
        iam.create_access_key().user_name(USER).send().await,
    );
    denied(
        "s3:GetObject",
        s3.get_object()
            .bucket(&bucket)
            .key("payroll.csv")
            .send()
            .await,
    );
    denied(
        "secretsmanager:GetSecretValue",
        secrets
            .get_secret_value()
            .secret_id(&w.secret_arn)
            .send()
            .await,
    );

    // AND it is the boundary alone that stands in the way: without it, the
    // same key reads the object and creates a user
    moto.relax_iam().await;
    let take_off = w.iam.delete_user_permissions_boundary().user_name(USER);
    take_off.send().await.unwrap();
    moto.enforce_iam().await;
    allowed(
        "s3:GetObject without the boundary",
        s3.get_object()
            .bucket(&bucket)
            .key("payroll.csv")
            .send()
            .await,
    );
    allowed(
        "iam:CreateUser without the boundary",
        iam.create_user().user_name("escalated").send().await,
    );
    moto.relax_iam().await;
}
