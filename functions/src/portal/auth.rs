//! Signing in to the portal: the credentials, read once per cold start from
//! their secret, as an API token (`Authorization: Token`) or an Entra ID
//! application whose token (`Authorization: Bearer`) is cached until shortly
//! before it expires. No value here is ever printed.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use reqwest::header::{ACCEPT, CONTENT_TYPE, HeaderValue};
use serde::Deserialize;
use tracing::info;

use super::transport::{Resend, Transport, unexpected};
use super::wire::{self, Token};
use crate::error::Error;
use crate::sensitive::Sensitive;
use crate::text::scrub;
use crate::time;

const DAY: Duration = Duration::from_secs(86_400);

/// The scope of an Entra ID token for the Defender for Cloud Apps API.
pub const SCOPE: &str = "05a65629-4c1b-48c1-a78b-804c4abdd4af/.default";

/// The portal credentials, as the secret holds them.
enum Credentials {
    Token(Sensitive),
    Entra {
        tenant_id: String,
        client_id: String,
        client_secret: Sensitive,
    },
}

/// The secret's JSON: `{"Token"}` or `{"TenantId","ClientId","ClientSecret"}`.
#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Stored {
    token: Option<String>,
    tenant_id: Option<String>,
    client_id: Option<String>,
    client_secret: Option<String>,
}

struct CachedToken {
    header: Sensitive,
    refresh_at: Instant,
}

/// Where the credentials are, and what was read or signed in with them.
pub struct Auth {
    secrets: aws_sdk_secretsmanager::Client,
    /// `PORTAL_CREDENTIALS_SECRET_ARN`.
    pub credentials_secret: String,
    /// Entra ID's login endpoint.
    login_url: String,
    /// Read from the secret once per cold start (a failed read is tried again).
    credentials: tokio::sync::OnceCell<Credentials>,
    token: Mutex<Option<CachedToken>>,
}

impl Auth {
    pub fn new(
        secrets: aws_sdk_secretsmanager::Client,
        credentials_secret: &str,
        login_url: &str,
    ) -> Self {
        Self {
            secrets,
            credentials_secret: credentials_secret.to_string(),
            login_url: login_url.trim_end_matches('/').to_string(),
            credentials: tokio::sync::OnceCell::new(),
            token: Mutex::new(None),
        }
    }

    /// Drops a cached Entra token (the portal refused it).
    pub fn forget_token(&self) {
        self.token.lock().unwrap().take();
    }

    /// The `Authorization` header value: the token, or a cached Entra token.
    pub async fn authorization(
        &self,
        transport: &Transport,
        deadline: Instant,
    ) -> Result<HeaderValue, Error> {
        let credentials = self
            .credentials
            .get_or_try_init(|| self.read_credentials())
            .await?;
        let text = match credentials {
            Credentials::Token(token) => format!("Token {}", token.expose()),
            Credentials::Entra {
                tenant_id,
                client_id,
                client_secret,
            } => {
                let cached = self
                    .token
                    .lock()
                    .unwrap()
                    .as_ref()
                    .filter(|t| Instant::now() < t.refresh_at)
                    .map(|t| t.header.clone());
                match cached {
                    Some(header) => header.expose().to_string(),
                    None => {
                        let fresh = self
                            .sign_in(transport, tenant_id, client_id, client_secret, deadline)
                            .await?;
                        let header = fresh.header.expose().to_string();
                        *self.token.lock().unwrap() = Some(fresh);
                        header
                    }
                }
            }
        };
        let mut value = HeaderValue::from_str(&text).map_err(|_| Error::Portal {
            operation: "sign-in",
            message: "the portal token holds characters an HTTP header cannot carry".into(),
        })?;
        value.set_sensitive(true);
        Ok(value)
    }

    /// Entra ID client credentials: a token for the portal's API.
    async fn sign_in(
        &self,
        transport: &Transport,
        tenant_id: &str,
        client_id: &str,
        client_secret: &Sensitive,
        deadline: Instant,
    ) -> Result<CachedToken, Error> {
        let form = |v: &str| {
            percent_encoding::utf8_percent_encode(v, percent_encoding::NON_ALPHANUMERIC).to_string()
        };
        let body = Sensitive::new(format!(
            "grant_type=client_credentials&client_id={}&client_secret={}&scope={}",
            form(client_id),
            form(client_secret.expose()),
            form(SCOPE)
        ));
        // As it is: a GUID or a domain name (checked when read).
        let url = format!("{}/{tenant_id}/oauth2/v2.0/token", self.login_url);
        let answer = transport
            .send("sign-in", Resend::OnFault, deadline, |timeout| {
                transport
                    .http
                    .post(&url)
                    .timeout(timeout)
                    .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
                    .header(ACCEPT, "application/json")
                    .body(body.expose().to_string())
            })
            .await
            .map_err(|f| f.into_error("sign-in"))?;
        let token: Token = wire::parse(&answer.text).unwrap_or_default();
        if !answer.status.is_success() {
            let code = token.error.as_deref().unwrap_or("no error code");
            let aadsts = token
                .aadsts()
                .map_or(String::new(), |c| format!(", AADSTS{c}"));
            return Err(Error::Portal {
                operation: "sign-in",
                message: format!(
                    "portal credentials rejected by Entra ID (HTTP {}: {}{aadsts}): check TenantId, ClientId and ClientSecret in the secret {}",
                    answer.status.as_u16(),
                    scrub(code),
                    self.credentials_secret
                ),
            });
        }
        let access = token
            .access_token
            .filter(|t| !t.is_empty())
            .ok_or_else(|| unexpected("sign-in", "no access_token in the token answer"))?;
        // Entra ID tokens live about an hour; a day at most is believed.
        let lifetime = Duration::from_secs(token.expires_in.unwrap_or(300)).min(DAY);
        let early = (lifetime / 2).min(Duration::from_secs(300));
        info!(expires_in = ?lifetime, "signed in to Entra ID for the portal");
        Ok(CachedToken {
            header: Sensitive::new(format!("Bearer {access}")),
            refresh_at: time::from_now(lifetime.saturating_sub(early)),
        })
    }

    async fn read_credentials(&self) -> Result<Credentials, Error> {
        let secret = &self.credentials_secret;
        let out = self
            .secrets
            .get_secret_value()
            .secret_id(secret)
            .send()
            .await
            .map_err(Error::aws_code_only(
                "secretsmanager:GetSecretValue (portal credentials)",
            ))?;
        let text = Sensitive::new(out.secret_string().unwrap_or_default());
        let shape = || {
            Error::Config(format!(
                "the portal credentials secret {secret} must hold {{\"Token\": \"...\"}} or {{\"TenantId\", \"ClientId\", \"ClientSecret\"}}"
            ))
        };
        let stored: Stored = serde_json::from_str(text.expose()).map_err(|_| shape())?;
        let field = |v: Option<String>| v.map(|v| v.trim().to_string()).filter(|v| !v.is_empty());
        let credentials = match (
            field(stored.token),
            field(stored.tenant_id),
            field(stored.client_id),
            field(stored.client_secret),
        ) {
            (Some(token), None, None, None) => Credentials::Token(Sensitive::new(token)),
            (None, Some(tenant_id), Some(client_id), Some(secret)) => {
                if !valid_tenant(&tenant_id) {
                    return Err(Error::Config(format!(
                        "the TenantId in the portal credentials secret {secret_arn} must be the tenant's id (a GUID) or its domain name (letters, digits, '-' and '.')",
                        secret_arn = self.credentials_secret
                    )));
                }
                Credentials::Entra {
                    tenant_id,
                    client_id,
                    client_secret: Sensitive::new(secret),
                }
            }
            _ => return Err(shape()),
        };
        info!(
            secret,
            method = match credentials {
                Credentials::Token(_) => "API token",
                Credentials::Entra { .. } => "Entra ID application",
            },
            "read the portal credentials"
        );
        Ok(credentials)
    }
}

/// A tenant id as Entra ID takes it in the token path: a GUID, or a domain
/// name such as contoso.onmicrosoft.com.
fn valid_tenant(tenant: &str) -> bool {
    (1..=256).contains(&tenant.len())
        && tenant
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.')
        && !tenant.starts_with('.')
        && !tenant.contains("..")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tenants_are_guids_or_domain_names() {
        assert!(valid_tenant("72f988bf-86f1-41af-91ab-2d7cd011db47"));
        assert!(valid_tenant("contoso.onmicrosoft.com"));
        for bad in ["", "a/b", "x?y=1", "..", "../x", "a b"] {
            assert!(!valid_tenant(bad), "{bad:?}");
        }
    }
}
