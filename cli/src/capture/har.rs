//! A HAR file (HTTP Archive 1.2, what the browser's developer tools save):
//! its entries, reduced to what the capture reads (method, URL, JSON
//! bodies, status), and every secret it holds, gathered as it is read so
//! that nothing printed can carry one: header values of authorization,
//! cookies, tokens and keys; cookies; query and form values; body values
//! under a key named like a secret (credentials, tokens, passwords...).

use std::path::Path;

use serde_json::Value;

use crate::outcome::Failure;

/// The shortest value taken for a secret.
const MIN_SECRET: usize = 8;

/// One request and its answer.
#[derive(Clone, Debug)]
pub struct Entry {
    pub method: String,
    /// `scheme://host[:port]`.
    pub origin: String,
    /// The path, without the query.
    pub path: String,
    pub request: Option<Value>,
    pub status: u16,
    pub response: Option<Value>,
}

/// The entries, and the secrets found in them.
pub struct Har {
    pub entries: Vec<Entry>,
    secrets: Vec<String>,
}

/// A header, cookie, query or body key whose value is a secret.
pub fn secret_name(name: &str) -> bool {
    let n = name.to_ascii_lowercase();
    [
        "authorization",
        "cookie",
        "token",
        "secret",
        "password",
        "passwd",
        "credential",
        "session",
        "signature",
        "apikey",
        "api-key",
        "api_key",
        "csrf",
        "xsrf",
        "auth",
        "privatekey",
        "private_key",
        "assertion",
        "code_verifier",
    ]
    .iter()
    .any(|s| n.contains(s))
}

impl Har {
    pub fn read(path: &Path) -> Result<Har, Failure> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| Failure::usage(format!("{}: {e}", path.display())))?;
        let doc: Value = serde_json::from_str(&text).map_err(|_| {
            Failure::usage(format!(
                "{} is not a HAR file (JSON with log.entries): save it from the browser's developer tools (Network, \"Save all as HAR\")",
                path.display()
            ))
        })?;
        let entries = doc["log"]["entries"].as_array().ok_or_else(|| {
            Failure::usage(format!(
                "{} has no log.entries: it is not a HAR file",
                path.display()
            ))
        })?;
        let mut har = Har {
            entries: Vec::new(),
            secrets: Vec::new(),
        };
        for e in entries {
            har.gather(e);
            if let Some(entry) = har.entry(e) {
                har.entries.push(entry);
            }
        }
        har.secrets.retain(|s| s.len() >= MIN_SECRET);
        har.secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
        har.secrets.dedup();
        Ok(har)
    }

    fn entry(&self, e: &Value) -> Option<Entry> {
        let url = reqwest::Url::parse(e["request"]["url"].as_str()?).ok()?;
        let origin = url.origin().ascii_serialization();
        Some(Entry {
            method: e["request"]["method"]
                .as_str()
                .unwrap_or("GET")
                .to_ascii_uppercase(),
            origin,
            path: url.path().to_string(),
            request: body(&e["request"]["postData"]["text"], &Value::Null),
            status: e["response"]["status"]
                .as_u64()
                .and_then(|s| u16::try_from(s).ok())
                .unwrap_or(0),
            response: body(
                &e["response"]["content"]["text"],
                &e["response"]["content"]["encoding"],
            ),
        })
    }

    /// Every secret of one entry.
    fn gather(&mut self, e: &Value) {
        for side in ["request", "response"] {
            for h in e[side]["headers"].as_array().into_iter().flatten() {
                let name = h["name"].as_str().unwrap_or_default();
                let value = h["value"].as_str().unwrap_or_default();
                if secret_name(name) {
                    self.secret(value);
                    // "Bearer x", "Token x", "a=b; c=d": each part too.
                    for part in value.split([' ', ';', ',']) {
                        let part = part.trim();
                        self.secret(part);
                        if let Some((_, v)) = part.split_once('=') {
                            self.secret(v);
                        }
                    }
                }
            }
            for c in e[side]["cookies"].as_array().into_iter().flatten() {
                self.secret(c["value"].as_str().unwrap_or_default());
            }
        }
        for q in e["request"]["queryString"].as_array().into_iter().flatten() {
            self.secret(q["value"].as_str().unwrap_or_default());
        }
        for p in e["request"]["postData"]["params"]
            .as_array()
            .into_iter()
            .flatten()
        {
            if secret_name(p["name"].as_str().unwrap_or_default()) {
                self.secret(p["value"].as_str().unwrap_or_default());
            }
        }
        let request = e["request"]["postData"]["text"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        self.text_secrets(&request);
        if let Some(response) = body_text(
            &e["response"]["content"]["text"],
            &e["response"]["content"]["encoding"],
        ) {
            self.text_secrets(&response);
        }
    }

    /// Secrets of a body: JSON values under secret keys, or form values.
    fn text_secrets(&mut self, text: &str) {
        if let Ok(v) = serde_json::from_str::<Value>(text) {
            self.json_secrets(&v, false);
            return;
        }
        for pair in text.split('&') {
            if let Some((k, v)) = pair.split_once('=') {
                if secret_name(k) {
                    self.secret(v);
                    if let Ok(decoded) = percent_decode(v) {
                        self.secret(&decoded);
                    }
                }
            }
        }
    }

    fn json_secrets(&mut self, v: &Value, under_secret: bool) {
        match v {
            Value::String(s) if under_secret => self.secret(s),
            Value::Number(n) if under_secret => self.secret(&n.to_string()),
            Value::Array(items) => items
                .iter()
                .for_each(|i| self.json_secrets(i, under_secret)),
            Value::Object(map) => {
                for (k, v) in map {
                    let secret =
                        under_secret || secret_name(k) || k.eq_ignore_ascii_case("credentials");
                    self.json_secrets(v, secret);
                }
            }
            _ => {}
        }
    }

    /// A value to mask: 8 characters or more (shorter ones, `dark` or
    /// `true` in a cookie, are no secret, and masking them everywhere would
    /// garble what is printed).
    fn secret(&mut self, value: &str) {
        let value = value.trim().trim_matches('"');
        if value.len() >= MIN_SECRET {
            self.secrets.push(value.to_string());
        }
    }

    /// `text` with every secret of the file masked, then any long key-like
    /// run (`cloudapps::text::scrub`).
    pub fn mask(&self, text: &str) -> String {
        cloudapps::text::scrub(&self.mask_known(text))
    }

    /// `text` with every secret of the file masked (nothing else changed).
    pub fn mask_known(&self, text: &str) -> String {
        let mut text = text.to_string();
        for s in &self.secrets {
            if text.contains(s.as_str()) {
                text = text.replace(s.as_str(), "***");
            }
        }
        text
    }

    /// Every secret found (for the last guard on what is printed).
    pub fn secrets(&self) -> &[String] {
        &self.secrets
    }
}

fn body_text(text: &Value, encoding: &Value) -> Option<String> {
    let text = text.as_str()?;
    if encoding.as_str() == Some("base64") {
        crate::b64::decode(text)
    } else {
        Some(text.to_string())
    }
}

fn body(text: &Value, encoding: &Value) -> Option<Value> {
    serde_json::from_str(&body_text(text, encoding)?).ok()
}

fn percent_decode(v: &str) -> Result<String, ()> {
    let bytes = v.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).map_err(|_| ())?;
                out.push(u8::from_str_radix(hex, 16).map_err(|_| ())?);
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out).map_err(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn secrets_are_gathered_from_headers_cookies_queries_and_bodies() {
        let entry = json!({
            "request": {"method": "POST", "url": "https://t.portal/cas/api/v1/x/?csrf=q1q1q1q1",
                "headers": [{"name": "Authorization", "value": "Bearer eyJhbGciOi.payload.sig"},
                            {"name": "Cookie", "value": "sessionid=abcd1234; other=zzzz9999; consent=true"}],
                "cookies": [{"name": "sessionid", "value": "abcd1234"}],
                "queryString": [{"name": "csrf", "value": "q1q1q1q1"}],
                "postData": {"mimeType": "application/json", "text": "{\"credentials\": {\"secretAccessKey\": \"wJalr/K7MDENG\"}}"}},
            "response": {"status": 200, "headers": [{"name": "Set-Cookie", "value": "s=setcookie42; Path=/"}],
                "content": {"mimeType": "application/json", "text": "{\"access_token\": \"tok-987654\"}"}}
        });
        let mut har = Har {
            entries: Vec::new(),
            secrets: Vec::new(),
        };
        har.gather(&entry);
        let entry = har.entry(&entry).unwrap();
        assert_eq!(entry.path, "/cas/api/v1/x/");
        assert_eq!(entry.origin, "https://t.portal");
        for s in [
            "eyJhbGciOi.payload.sig",
            "abcd1234",
            "zzzz9999",
            "q1q1q1q1",
            "wJalr/K7MDENG",
            "setcookie42",
            "tok-987654",
        ] {
            let masked = har.mask_known(&format!("x {s} y"));
            assert_eq!(masked, "x *** y", "{s}");
        }
        // a short value is no secret: what is printed is not garbled
        assert_eq!(har.mask_known(r#"{"fits": true}"#), r#"{"fits": true}"#);
        assert_eq!(percent_decode("a%2Fb+c").unwrap(), "a/b c");
    }
}
