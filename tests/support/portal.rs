//! A world's portal: the portal emulator (in-process, its test calling the
//! world's moto) with credentials in a secret of the account, or a hand-off
//! topic whose messages reach the catcher.

use std::time::Duration;

use cloudapps::deps::{self, Deps};
use cloudapps::portal::{ApiSettings, Portal, Routes, Timings};
use serde_json::{Value, json};

use crate::{REGION, World, test_settings};

/// How the world signs in to the portal emulator.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PortalAuth {
    /// `{"Token"}`, the one the emulator accepts.
    Token,
    /// `{"TenantId","ClientId","ClientSecret"}` of the emulator's Entra app.
    Entra,
    /// A token the emulator does not know.
    WrongToken,
    /// The Entra app with a wrong client secret.
    WrongClientSecret,
}

/// Portal client settings for tests: quick retries and polls.
pub fn portal_settings(url: &str, credentials_secret: &str) -> ApiSettings {
    ApiSettings {
        timings: Timings {
            request_timeout: Duration::from_secs(2),
            retry_first: Duration::from_millis(100),
            retry_max: Duration::from_millis(800),
            test_first_poll: Duration::from_millis(100),
            test_max_poll: Duration::from_millis(400),
            pace: Duration::ZERO,
            budget: None,
        },
        login_url: url.to_string(),
        ..ApiSettings::new(url, credentials_secret)
    }
}

fn hex(len: usize) -> String {
    (0..len)
        .map(|_| char::from_digit(fastrand::u32(0..16), 16).unwrap())
        .collect()
}

/// The portal emulator for most tests: its "Test API" takes 200 ms.
pub fn quick_portal() -> portal_emulator::Config {
    portal_emulator::Config {
        test_duration: Duration::from_millis(200),
        ..portal_emulator::Config::default()
    }
}

impl World {
    /// Starts a portal emulator (its test calls this world's moto), stores
    /// portal credentials in a secret of the account, and switches the
    /// connector to `PORTAL_MODE=api` against it. `config` may preset the
    /// throttle, the test duration or routes.
    pub async fn use_portal(&mut self, mut config: portal_emulator::Config, auth: PortalAuth) {
        let token = hex(64);
        // A tenant id as Entra ID gives it: a GUID, sent in the token path as it is.
        let tenant = format!("{}-{}-4{}-8{}-{}", hex(8), hex(4), hex(3), hex(3), hex(12));
        let (client, client_secret) = (hex(12), hex(40));
        config.api_token = Some(token.clone());
        config.entra = Some(portal_emulator::EntraApp {
            tenant_id: tenant.clone(),
            client_id: client.clone(),
            client_secret: client_secret.clone(),
        });
        config.aws_endpoint.get_or_insert(self.endpoint.clone());
        config.aws_region = REGION.to_string();
        let emulator = portal_emulator::Emulator::start(config.clone())
            .await
            .unwrap();
        let routes = serde_json::to_string(&config.routes).unwrap();
        let credentials = match auth {
            PortalAuth::Token => json!({"Token": token}),
            PortalAuth::WrongToken => json!({"Token": hex(64)}),
            PortalAuth::Entra => {
                json!({"TenantId": tenant, "ClientId": client, "ClientSecret": client_secret})
            }
            PortalAuth::WrongClientSecret => {
                json!({"TenantId": tenant, "ClientId": client, "ClientSecret": hex(40)})
            }
        };
        self.connect_portal(&emulator.url, &credentials, &routes)
            .await;
        self.portal = Some(emulator);
    }

    /// Switches the connector to `PORTAL_MODE=api` against the portal at
    /// `url` (an emulator another world or the test owns), signing in with
    /// `credentials`, stored in a secret of this account. `routes`: JSON
    /// route overrides ("{}" for none).
    pub async fn connect_portal(&mut self, url: &str, credentials: &Value, routes: &str) {
        let name = format!("cloudapps/portal-{:08x}", fastrand::u32(..));
        let out = self
            .secrets
            .create_secret()
            .name(&name)
            .secret_string(credentials.to_string())
            .send()
            .await
            .unwrap();
        self.portal_secret = out.arn().unwrap().to_string();
        let mut portal = portal_settings(url, &self.portal_secret);
        portal.routes = Routes::with_overrides(routes).unwrap();
        self.deps = Deps::new(
            &self.sdk,
            test_settings(),
            Portal::api(portal, aws_sdk_secretsmanager::Client::new(&self.sdk)).unwrap(),
        )
        .unwrap();
    }

    /// Switches the connector to `PORTAL_MODE=handoff`, with an SNS topic
    /// of the account that delivers to the catcher (`notifications`); the
    /// same topic is the one people are told through.
    pub async fn use_handoff(&mut self) {
        let topic = self.subscribed_topic().await;
        let topic = deps::topic(&self.sdk, &topic);
        self.deps = Deps::new(&self.sdk, test_settings(), Portal::handoff(topic.clone())).unwrap();
        self.deps.notify = Some(topic);
    }

    /// Gives the functions a topic to tell people through
    /// (`NOTIFY_TOPIC_ARN`), which delivers to the catcher
    /// (`notifications`), whatever the portal mode.
    pub async fn use_notify_topic(&mut self) {
        let topic = self.subscribed_topic().await;
        self.deps.notify = Some(deps::topic(&self.sdk, &topic));
    }

    /// A new SNS topic of the account, subscribed by the catcher.
    async fn subscribed_topic(&self) -> String {
        let topic = self
            .create_topic(&format!("cloudapps-{:08x}", fastrand::u32(..)))
            .await;
        aws_sdk_sns::Client::new(&self.sdk)
            .subscribe()
            .topic_arn(&topic)
            .protocol("http")
            .endpoint(format!("{}/inbox", self.catcher.base))
            .send()
            .await
            .unwrap();
        topic
    }

    /// Creates an SNS topic `name` in this account; returns its ARN.
    pub async fn create_topic(&self, name: &str) -> String {
        aws_sdk_sns::Client::new(&self.sdk)
            .create_topic()
            .name(name)
            .send()
            .await
            .unwrap()
            .topic_arn()
            .unwrap()
            .to_string()
    }

    /// The hand-off messages SNS delivered (after `use_handoff`).
    pub fn notifications(&self) -> Vec<Value> {
        self.catcher
            .all()
            .iter()
            .filter(|c| c.path == "/inbox")
            .map(|c| c.json())
            .filter(|m| m["Type"] == "Notification")
            .collect()
    }

    /// The portal emulator (after `use_portal`).
    pub fn emulator(&self) -> &portal_emulator::Emulator {
        self.portal.as_ref().expect("use_portal first")
    }
}

/// A fault for the next `times` requests to `route`.
pub fn fault(route: &str, kind: portal_emulator::FaultKind, times: u32) -> portal_emulator::Fault {
    portal_emulator::Fault {
        route: Some(route.to_string()),
        kind,
        times,
    }
}

/// A value of `Data` in a CloudFormation response body.
pub fn data<'a>(body: &'a Value, key: &str) -> &'a str {
    body["Data"][key].as_str().unwrap_or_default()
}
