//! Connect the instance in Defender for Cloud Apps: the guide's last steps
//! ("paste the keys into the portal, name the instance, Test API").
//!
//! This is the seam the custom resource and the rotation call once a key is
//! stored and proven. `PORTAL_MODE=off` (the default) hands nothing over;
//! `api` and `handoff` arrive with the portal client.

use crate::error::Error;
use crate::key_store::StoredKey;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PortalMode {
    /// Hand nothing over; the key stays in the secret.
    Off,
}

/// The portal connection chosen by configuration.
#[derive(Clone, Debug)]
pub struct Portal {
    mode: PortalMode,
}

/// What the portal side says after a hand-over.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PortalStatus(pub String);

/// What the portal needs to know about the instance (never the key itself).
#[derive(Clone, Copy, Debug)]
pub struct Instance<'a> {
    pub name: &'a str,
    pub secret_arn: &'a str,
    pub security_configuration: bool,
}

impl Portal {
    pub fn off() -> Self {
        Self {
            mode: PortalMode::Off,
        }
    }

    /// `PORTAL_MODE`: `off` (default). `api` and `handoff` are refused at
    /// init until the portal client lands, rather than silently ignored.
    pub fn from_env() -> Result<Self, Error> {
        let mode = std::env::var("PORTAL_MODE").unwrap_or_default();
        match mode.trim().to_ascii_lowercase().as_str() {
            "" | "off" => Ok(Self::off()),
            "api" | "handoff" => Err(Error::Config(format!(
                "PORTAL_MODE={mode} is not available in this version; use off"
            ))),
            other => Err(Error::Config(format!(
                "PORTAL_MODE={other:?} is not one of api, handoff, off"
            ))),
        }
    }

    pub fn mode(&self) -> PortalMode {
        self.mode
    }

    /// Hands a proven key to the portal for `instance`.
    pub async fn hand_over(
        &self,
        instance: Instance<'_>,
        key: &StoredKey,
    ) -> Result<PortalStatus, Error> {
        let _ = (instance, key);
        match self.mode {
            PortalMode::Off => Ok(PortalStatus("not-connected (PORTAL_MODE=off)".into())),
        }
    }
}
