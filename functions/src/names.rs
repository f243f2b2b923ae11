//! Where things live and whose they are: the stack a request comes from, the
//! names the connector derives from it (user ARN, policy, trail, bucket), and
//! the tags that mark what this stack made. Delete removes only what carries
//! these tags, so a stack never deletes what it did not create.

use std::fmt;

/// Tag: what made the resource (constant).
pub const TAG_MANAGED_BY: &str = "cloudapps:managed-by";
/// Value of [`TAG_MANAGED_BY`].
pub const MANAGED_BY: &str = "defender-cloud-apps-connector";
/// Tag: the CloudFormation stack id that made the resource.
pub const TAG_STACK_ID: &str = "cloudapps:stack-id";
/// Tag: the logical id of the custom resource that made it.
pub const TAG_LOGICAL_ID: &str = "cloudapps:logical-id";
/// Tag on the created trail: a digest of the physical id that uses it now, so
/// that the Delete of a replaced physical id leaves the trail to its successor.
pub const TAG_OWNER: &str = "cloudapps:owner";
/// Tag CloudFormation puts on the resources it creates (the secret, say).
pub const TAG_CFN_STACK_ID: &str = "aws:cloudformation:stack-id";

/// Tags the connector writes on its secret: what the rotation, the health
/// check and a later Delete need to know.
pub mod secret_tags {
    /// The user's ARN.
    pub const USER: &str = "cloudapps:user";
    /// The instance's name in the portal.
    pub const INSTANCE: &str = "cloudapps:connector-name";
    /// The connections, separated by spaces (tag values cannot hold commas).
    pub const CONNECTIONS: &str = "cloudapps:connections";
    /// The id of the portal instance this stack connected (its proof, with
    /// the keys it issued, that an instance by that name is its own).
    pub const PORTAL_INSTANCE: &str = "cloudapps:portal-instance";
    /// The id of a portal instance this stack took over
    /// (`AdoptExistingInstance`): never disabled by this stack.
    pub const ADOPTED_INSTANCE: &str = "cloudapps:adopted-instance";
    /// When a key was about to be issued (seconds since the epoch): a key
    /// created in the next minutes that no version holds is this stack's
    /// orphan (a step cut off between CreateAccessKey and PutSecretValue).
    pub const ISSUING: &str = "cloudapps:issuing";
    /// `<key id>@<seconds since the epoch>`: the key handed to a person (or
    /// left for one to take, `off` mode) and when. The previous key is
    /// retired only once the new one is seen in use after that.
    pub const HANDED_OVER: &str = "cloudapps:handed-over";
}

/// IAM compares user, group, role and policy names without case: "Defender"
/// and "defender" are the same user.
pub fn same_iam_name(a: &str, b: &str) -> bool {
    a.eq_ignore_ascii_case(b)
}

/// The stack and resource a custom resource request comes from, parsed from
/// its `StackId` (`arn:<partition>:cloudformation:<region>:<account>:stack/<name>/<guid>`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StackRef {
    pub partition: String,
    pub region: String,
    pub account: String,
    pub stack_id: String,
    pub stack_name: String,
    pub logical_id: String,
}

impl StackRef {
    pub fn parse(stack_id: &str, logical_id: &str) -> Result<Self, String> {
        let bad = || format!("StackId is not a CloudFormation stack ARN: {stack_id:?}");
        let parts: Vec<&str> = stack_id.splitn(6, ':').collect();
        let [arn, partition, service, region, account, resource] = parts[..] else {
            return Err(bad());
        };
        let mut res = resource.split('/');
        let (Some("stack"), Some(stack_name), Some(_guid)) = (res.next(), res.next(), res.next())
        else {
            return Err(bad());
        };
        if arn != "arn"
            || service != "cloudformation"
            || partition.is_empty()
            || region.is_empty()
            || stack_name.is_empty()
            || account.len() != 12
            || !account.bytes().all(|b| b.is_ascii_digit())
        {
            return Err(bad());
        }
        if logical_id.is_empty() {
            return Err("LogicalResourceId is empty".into());
        }
        Ok(Self {
            partition: partition.into(),
            region: region.into(),
            account: account.into(),
            stack_id: stack_id.into(),
            stack_name: stack_name.into(),
            logical_id: logical_id.into(),
        })
    }

    /// The tags every resource this custom resource creates carries.
    pub fn ownership_tags(&self) -> [(&'static str, &str); 3] {
        [
            (TAG_MANAGED_BY, MANAGED_BY),
            (TAG_STACK_ID, &self.stack_id),
            (TAG_LOGICAL_ID, &self.logical_id),
        ]
    }

    /// True when `tags` say the resource was made by this stack's resource.
    pub fn owns<'a>(&self, tags: impl IntoIterator<Item = (&'a str, &'a str)>) -> bool {
        let (mut stack, mut logical) = (false, false);
        for (k, v) in tags {
            stack |= k == TAG_STACK_ID && v == self.stack_id;
            logical |= k == TAG_LOGICAL_ID && v == self.logical_id;
        }
        stack && logical
    }

    /// A short stable digest of the stack and logical id, to make names unique.
    fn short_digest(&self) -> String {
        format!("{:016x}", digest(&[&self.stack_id, &self.logical_id]))[..8].to_string()
    }

    /// The name of the trail this resource creates when none covers all regions:
    /// `<stack name>-cloudapps-<digest>`, within CloudTrail's naming rules.
    pub fn trail_name(&self) -> String {
        let mut base = String::new();
        for c in self.stack_name.chars() {
            let c = if c.is_ascii_alphanumeric() { c } else { '-' };
            if !(c == '-' && (base.is_empty() || base.ends_with('-'))) {
                base.push(c);
            }
        }
        base.truncate(100);
        let base = base.trim_end_matches('-');
        if base.is_empty() {
            format!("cloudapps-{}", self.short_digest())
        } else {
            format!("{base}-cloudapps-{}", self.short_digest())
        }
    }

    pub fn trail_arn(&self, trail_name: &str) -> String {
        format!(
            "arn:{}:cloudtrail:{}:{}:trail/{}",
            self.partition, self.region, self.account, trail_name
        )
    }

    /// The log bucket created for that trail: `cloudapps-trail-<account>-<digest>`.
    pub fn bucket_name(&self) -> String {
        format!("cloudapps-trail-{}-{}", self.account, self.short_digest())
    }

    pub fn user(&self, path: &str, name: &str) -> UserRef {
        UserRef {
            arn: format!(
                "arn:{}:iam::{}:user{}{}",
                self.partition, self.account, path, name
            ),
            path: path.into(),
            name: name.into(),
        }
    }

    /// Parses a physical id this resource returned earlier (a user ARN in this
    /// stack's account). `None` for anything else: a marker of a Create that
    /// failed before it made anything, or an id from another account.
    pub fn user_from_physical_id(&self, physical_id: &str) -> Option<UserRef> {
        let prefix = format!("arn:{}:iam::{}:user/", self.partition, self.account);
        let rest = physical_id.strip_prefix(&prefix)?;
        let (path, name) = match rest.rfind('/') {
            Some(i) => (format!("/{}", &rest[..=i]), &rest[i + 1..]),
            None => ("/".to_string(), rest),
        };
        (!name.is_empty()).then(|| self.user(&path, name))
    }

    /// ARN of an AWS managed policy in this partition.
    pub fn aws_managed_policy_arn(&self, name: &str) -> String {
        format!("arn:{}:iam::aws:policy/{}", self.partition, name)
    }
}

/// The IAM user a physical id stands for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UserRef {
    pub arn: String,
    pub path: String,
    pub name: String,
}

impl UserRef {
    /// The customer managed policy made for this user: same path, named after it.
    pub fn policy_name(&self) -> String {
        format!("{}-cloudapps", self.name)
    }

    pub fn policy_arn(&self, stack: &StackRef) -> String {
        format!(
            "arn:{}:iam::{}:policy{}{}",
            stack.partition,
            stack.account,
            self.path,
            self.policy_name()
        )
    }

    /// The group the user gets its rights through: same path, named like
    /// its policy (IAM.2: no policy attached to the user itself).
    pub fn group_name(&self) -> String {
        format!("{}-cloudapps", self.name)
    }

    pub fn group_arn(&self, stack: &StackRef) -> String {
        format!(
            "arn:{}:iam::{}:group{}{}",
            stack.partition,
            stack.account,
            self.path,
            self.group_name()
        )
    }

    /// The digest written in [`TAG_OWNER`] on the trail this physical id uses.
    pub fn owner_tag(&self) -> String {
        format!("{:016x}", digest(&[&self.arn]))
    }
}

impl fmt::Display for UserRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.arn)
    }
}

/// FNV-1a, 64 bits: stable across builds and platforms (unlike `DefaultHasher`).
pub fn digest(parts: &[&str]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for (i, part) in parts.iter().enumerate() {
        if i > 0 {
            h = (h ^ 0x1f).wrapping_mul(0x0100_0000_01b3);
        }
        for b in part.bytes() {
            h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
        }
    }
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stack() -> StackRef {
        StackRef::parse(
            "arn:aws:cloudformation:eu-west-1:123456789012:stack/my--stack-/5f0e-11ee",
            "Connector",
        )
        .unwrap()
    }

    #[test]
    fn parses_stack_arn() {
        let s = stack();
        assert_eq!(s.partition, "aws");
        assert_eq!(s.region, "eu-west-1");
        assert_eq!(s.account, "123456789012");
        assert_eq!(s.stack_name, "my--stack-");
        for bad in [
            "",
            "arn:aws:cloudformation:eu-west-1:123:stack/a/b",
            "arn:aws:s3:eu-west-1:123456789012:stack/a/b",
            "arn:aws:cloudformation:eu-west-1:123456789012:stackset/a/b",
            "arn:aws:cloudformation:eu-west-1:123456789012:stack/a",
        ] {
            assert!(StackRef::parse(bad, "L").is_err(), "{bad}");
        }
        assert!(StackRef::parse("arn:aws:cloudformation:r:123456789012:stack/a/b", "").is_err());
    }

    #[test]
    fn names_follow_service_rules_and_are_stable() {
        let s = stack();
        let trail = s.trail_name();
        assert!(trail.starts_with("my-stack-cloudapps-"), "{trail}");
        assert!(!trail.contains("--"));
        assert_eq!(trail, stack().trail_name());
        let bucket = s.bucket_name();
        assert!(
            bucket.len() <= 63 && bucket == bucket.to_lowercase(),
            "{bucket}"
        );
        let mut other = s.clone();
        other.logical_id = "Other".into();
        assert_ne!(other.trail_name(), trail);
        let mut long = s.clone();
        long.stack_name = "a".repeat(128);
        assert!(long.trail_name().len() <= 128);
    }

    #[test]
    fn physical_id_round_trips() {
        let s = stack();
        for (path, name) in [
            ("/", "u"),
            ("/defender-cloud-apps/", "defender-cloud-apps"),
            ("/a/b/", "x@y"),
        ] {
            let user = s.user(path, name);
            assert_eq!(s.user_from_physical_id(&user.arn), Some(user.clone()));
        }
        assert_eq!(
            s.user_from_physical_id("Connector-create-failed-1234"),
            None
        );
        assert_eq!(
            s.user_from_physical_id("arn:aws:iam::999999999999:user/p/u"),
            None,
            "another account's user is never ours"
        );
        let user = s.user("/p/", "u");
        assert_eq!(
            user.policy_arn(&s),
            "arn:aws:iam::123456789012:policy/p/u-cloudapps"
        );
    }

    #[test]
    fn ownership_needs_stack_and_logical_id() {
        let s = stack();
        let tags: Vec<(&str, &str)> = s.ownership_tags().to_vec();
        assert!(s.owns(tags.iter().copied()));
        assert!(!s.owns([(TAG_STACK_ID, s.stack_id.as_str())]));
        assert!(!s.owns([(TAG_STACK_ID, "other"), (TAG_LOGICAL_ID, "Connector")]));
    }
}
