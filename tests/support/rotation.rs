//! A rotation as Secrets Manager drives it: moto never runs a rotation
//! function, so a test registers one, calls RotateSecret, then sends the
//! four steps itself.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::{REGION, World};

/// Registers a function in moto's Lambda (moto never runs it) for RotateSecret.
/// A second call returns the function registered first.
pub async fn register_rotation_function(w: &World) -> String {
    let existing = format!(
        "arn:aws:lambda:{REGION}:{}:function:cloudapps-rotation",
        w.account
    );
    if w.iam
        .get_role()
        .role_name("cloudapps-rotation")
        .send()
        .await
        .is_ok()
    {
        return existing;
    }
    let role = w
        .iam
        .create_role()
        .role_name("cloudapps-rotation")
        .assume_role_policy_document(
            json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow",
                "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}]})
            .to_string(),
        )
        .send()
        .await
        .unwrap();
    let body = json!({
        "FunctionName": "cloudapps-rotation",
        "Runtime": "provided.al2023",
        "Role": role.role().unwrap().arn(),
        "Handler": "bootstrap",
        // an empty zip: moto stores it and never runs it
        "Code": {"ZipFile": "UEsFBgAAAAAAAAAAAAAAAAAAAAAAAA=="},
    });
    let answer: Value = reqwest::Client::new()
        .post(format!("{}/2015-03-31/functions", w.endpoint))
        .header("content-type", "application/json")
        .header("x-moto-account-id", &w.account)
        .header(
            "authorization",
            "AWS4-HMAC-SHA256 Credential=testbed/20261123/us-east-1/lambda/aws4_request, SignedHeaders=host, Signature=0",
        )
        .body(body.to_string())
        .send()
        .await
        .unwrap()
        .text()
        .await
        .map(|t| serde_json::from_str(&t).unwrap())
        .unwrap();
    answer["FunctionArn"]
        .as_str()
        .expect("function registered")
        .to_string()
}

/// One rotation step of `w`'s secret, as Secrets Manager invokes it.
pub async fn rotation_step(w: &World, step: &str, token: &str) -> Result<String, String> {
    let event = cloudapps::rotation::Event::parse(&json!({
        "Step": step, "SecretId": w.secret_arn, "ClientRequestToken": token
    }))
    .map_err(|e| e.to_string())?;
    let deadline = Instant::now() + Duration::from_secs(60);
    cloudapps::rotation::handle(&w.deps, &w.stack_id, &event, deadline)
        .await
        .map_err(|e| e.to_string())
}

/// What Secrets Manager does when a rotation starts: version `token` staged AWSPENDING.
pub async fn start_rotation(w: &World, function: &str, token: &str) {
    w.secrets
        .rotate_secret()
        .secret_id(&w.secret_arn)
        .client_request_token(token)
        .rotation_lambda_arn(function)
        .rotation_rules(
            aws_sdk_secretsmanager::types::RotationRulesType::builder()
                .automatically_after_days(30)
                .build(),
        )
        .rotate_immediately(false)
        .send()
        .await
        .expect("RotateSecret");
}

/// A fresh ClientRequestToken, as Secrets Manager makes one.
pub fn token() -> String {
    format!(
        "{:016x}-{:016x}-rotation",
        fastrand::u64(..),
        fastrand::u64(..)
    )
}

/// A whole rotation, as Secrets Manager runs it: RotateSecret with
/// `function` and `token`, then the four steps in order; the first error
/// stops them.
pub async fn rotate_with(w: &World, function: &str, token: &str) -> Result<(), String> {
    start_rotation(w, function, token).await;
    for step in ["createSecret", "setSecret", "testSecret", "finishSecret"] {
        rotation_step(w, step, token)
            .await
            .map_err(|e| format!("{step}: {e}"))?;
    }
    Ok(())
}
