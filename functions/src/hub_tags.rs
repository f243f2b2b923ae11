//! What the organization hub and a member account tell each other, on the
//! member's connector secret and nowhere else. The member writes which key
//! the portal should hold (`cloudapps:key-id`, and `cloudapps:pending-key-id`
//! while a rotation is under way); the hub writes back, through the member's
//! hub role (which may write `cloudapps:hub-*` tags only), what the portal
//! shows: [`HubState`]. No value here is a secret.

/// The member's AWSCURRENT key id.
pub const KEY_ID: &str = "cloudapps:key-id";
/// The member's AWSPENDING key id, while a rotation is under way.
pub const PENDING_KEY_ID: &str = "cloudapps:pending-key-id";
/// The hub's verdict: queued, pending, connected, error, disabled.
pub const STATUS: &str = "cloudapps:hub-status";
/// The portal instance's id.
pub const INSTANCE: &str = "cloudapps:hub-instance";
/// The key the portal's instance holds (its id).
pub const KEY: &str = "cloudapps:hub-key";
/// When the portal last showed that key tested (seconds since the epoch).
pub const TESTED: &str = "cloudapps:hub-tested";
/// What went wrong, or what is awaited (at most 256 characters).
pub const DETAIL: &str = "cloudapps:hub-detail";

/// An account's state as the hub sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Status {
    /// Not yet handed to the portal.
    Queued,
    /// Handed over; the portal's test has not shown its result yet.
    Pending,
    /// The portal holds the key and its test passed.
    Connected,
    /// The portal's test failed, or the hub cannot act (see the detail).
    Error,
    /// The account is gone; its instance was disabled.
    Disabled,
}

impl Status {
    pub const ALL: [Status; 5] = [
        Status::Queued,
        Status::Pending,
        Status::Connected,
        Status::Error,
        Status::Disabled,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Status::Queued => "queued",
            Status::Pending => "pending",
            Status::Connected => "connected",
            Status::Error => "error",
            Status::Disabled => "disabled",
        }
    }

    pub fn parse(text: &str) -> Option<Status> {
        Status::ALL.into_iter().find(|s| s.as_str() == text)
    }
}

/// What the hub wrote back on a member's secret.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HubState {
    pub status: Option<Status>,
    pub instance: Option<String>,
    pub key: Option<String>,
    pub tested: Option<i64>,
    pub detail: Option<String>,
}

impl HubState {
    /// Read from a secret's tags.
    pub fn from_tags<'a>(tags: impl IntoIterator<Item = (&'a str, &'a str)>) -> Self {
        let mut state = Self::default();
        for (k, v) in tags {
            match k {
                STATUS => state.status = Status::parse(v),
                INSTANCE => state.instance = Some(v.to_string()),
                KEY => state.key = Some(v.to_string()),
                TESTED => state.tested = v.parse().ok(),
                DETAIL => state.detail = Some(v.to_string()),
                _ => {}
            }
        }
        state
    }

    /// The tags to write (the detail cut to a tag value's 256 characters).
    pub fn to_tags(&self) -> Vec<(&'static str, String)> {
        let mut tags = Vec::new();
        if let Some(s) = self.status {
            tags.push((STATUS, s.as_str().to_string()));
        }
        if let Some(i) = &self.instance {
            tags.push((INSTANCE, i.clone()));
        }
        if let Some(k) = &self.key {
            tags.push((KEY, k.clone()));
        }
        if let Some(t) = self.tested {
            tags.push((TESTED, t.to_string()));
        }
        if let Some(d) = &self.detail {
            tags.push((DETAIL, tag_text(d)));
        }
        tags
    }

    /// True when the portal holds `key_id` and its test passed.
    pub fn confirms(&self, key_id: &str) -> bool {
        self.status == Some(Status::Connected) && self.key.as_deref() == Some(key_id)
    }
}

/// `text` as a tag value takes it: the characters every service accepts
/// (others become a space), at most 256 characters.
pub fn tag_text(text: &str) -> String {
    text.chars()
        .map(|c| {
            if c.is_alphanumeric() || " _.:/=+-@".contains(c) {
                c
            } else {
                ' '
            }
        })
        .take(256)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_state_round_trips_through_tags() {
        let state = HubState {
            status: Some(Status::Error),
            instance: Some("i-1".into()),
            key: Some("AKIA1".into()),
            tested: Some(1_800_000_000),
            detail: Some(format!("the test failed: {}", "x".repeat(400))),
        };
        let tags = state.to_tags();
        assert!(tags.iter().all(|(_, v)| v.chars().count() <= 256));
        let back = HubState::from_tags(tags.iter().map(|(k, v)| (*k, v.as_str())));
        assert_eq!(back.status, Some(Status::Error));
        assert_eq!(back.key.as_deref(), Some("AKIA1"));
        assert!(!back.confirms("AKIA1"));
        assert_eq!(tag_text("a;b\nc"), "a b c");
        for s in Status::ALL {
            assert_eq!(Status::parse(s.as_str()), Some(s));
        }
    }
}
