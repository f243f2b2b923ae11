//! Signing in: the Entra ID token endpoint (client credentials grant) and
//! the check of a request's credentials (the API token, or a bearer token
//! it issued that has not expired).

use std::time::Instant;

use percent_encoding::percent_decode_str;
use serde_json::json;

use crate::answer::Answer;
use crate::state::Shared;

/// The scope a token for the Defender for Cloud Apps API is asked for.
const SCOPE: &str = "05a65629-4c1b-48c1-a78b-804c4abdd4af/.default";

/// `POST /{tenant}/oauth2/v2.0/token`: the client credentials grant.
pub(crate) fn token(shared: &Shared, tenant: &str, body: &str) -> Answer {
    let form = parse_form(body);
    let field = |name: &str| {
        form.iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };
    let aad_error = |status, error, code: u32, text: &str| {
        Answer::json(
            status,
            json!({
                "error": error,
                "error_description": format!("AADSTS{code}: {text}"),
                "error_codes": [code],
            }),
        )
    };
    if field("grant_type") != Some("client_credentials") {
        let text = "The request body must contain 'grant_type' = 'client_credentials'.";
        return aad_error(400, "invalid_request", 900144, text);
    }
    let known = shared.config.entra.as_ref().is_some_and(|app| {
        app.tenant_id == tenant
            && field("client_id") == Some(app.client_id.as_str())
            && field("client_secret") == Some(app.client_secret.as_str())
    });
    if !known {
        let text = "Invalid client secret provided.";
        return aad_error(401, "invalid_client", 7000215, text);
    }
    if field("scope") != Some(SCOPE) {
        let text = "The provided value for the input parameter 'scope' is not valid.";
        return aad_error(400, "invalid_scope", 70011, text);
    }
    let token: String = std::iter::repeat_with(fastrand::alphanumeric)
        .take(96)
        .collect();
    let lifetime = shared.config.token_lifetime;
    {
        let mut state = shared.lock();
        state
            .tokens
            .insert(token.clone(), Instant::now() + lifetime);
        state.secrets.push(token.clone());
    }
    Answer::json(
        200,
        json!({
            "token_type": "Bearer",
            "expires_in": lifetime.as_secs(),
            "ext_expires_in": lifetime.as_secs(),
            "access_token": token,
        }),
    )
}

fn parse_form(body: &str) -> Vec<(String, String)> {
    let decode = |s: &str| {
        percent_decode_str(&s.replace('+', " "))
            .decode_utf8_lossy()
            .into_owned()
    };
    body.split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (decode(k), decode(v))
        })
        .collect()
}

/// The API token, or a bearer token this emulator issued that has not expired.
pub(crate) fn authorized(shared: &Shared, headers: &[(String, String)]) -> bool {
    let Some((_, value)) = headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("authorization"))
    else {
        return false;
    };
    if let Some(token) = value.strip_prefix("Token ") {
        let expected = shared.config.api_token.as_deref();
        return !token.is_empty() && expected == Some(token);
    }
    if let Some(token) = value.strip_prefix("Bearer ") {
        let state = shared.lock();
        return state
            .tokens
            .get(token)
            .is_some_and(|expiry| Instant::now() < *expiry);
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forms_decode_plus_and_percent() {
        let form = parse_form(
            "grant_type=client_credentials&client_secret=a%2Bb+c%3D&scope=x%2F.default&flag",
        );
        assert_eq!(
            form,
            [
                ("grant_type".to_string(), "client_credentials".to_string()),
                ("client_secret".to_string(), "a+b c=".to_string()),
                ("scope".to_string(), "x/.default".to_string()),
                ("flag".to_string(), String::new()),
            ]
        );
    }
}
