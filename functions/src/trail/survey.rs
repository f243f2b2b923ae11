//! Read the trails: which trail covers the account (multi-region, logging,
//! management read and write events), or what each one lacks. Only ever
//! reads; shared by the connector, the pre-flight and the health check.

use aws_sdk_cloudtrail::Client;
use aws_sdk_cloudtrail::config::Region;
use aws_sdk_cloudtrail::types::{EventSelector, ReadWriteType};

use crate::error::Error;

/// How coverage was met (the `CloudTrailCoverage` value returned to CloudFormation).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum How {
    /// A trail of this account, not made by this stack.
    ExistingTrail,
    /// An organization trail from the management account.
    OrganizationTrail,
    /// The trail this stack created.
    CreatedTrail,
    NotCovered,
    /// `Ignore` mode and the trails could not be read.
    Unknown,
}

impl How {
    pub fn as_str(self) -> &'static str {
        match self {
            How::ExistingTrail => "existing-trail",
            How::OrganizationTrail => "organization-trail",
            How::CreatedTrail => "created-trail",
            How::NotCovered => "not-covered",
            How::Unknown => "unknown",
        }
    }
}

/// The outcome of the coverage step.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Coverage {
    pub how: How,
    /// The covering trail (empty when none).
    pub trail_arn: String,
    /// One sentence for people: which trail covers, or what is missing.
    pub detail: String,
}

/// What one trail does, as far as this account can read it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TrailView {
    pub name: String,
    pub arn: String,
    pub home_region: String,
    pub multi_region: bool,
    pub organization: bool,
    /// `Err` holds why the status could not be read.
    pub logging: Result<bool, String>,
    /// (read, write) management events; `Err` when the selectors could not be read.
    pub management: Result<(bool, bool), String>,
}

impl TrailView {
    pub fn covers(&self) -> bool {
        self.multi_region && self.logging == Ok(true) && self.management == Ok((true, true))
    }

    /// What keeps this trail from covering the account.
    pub fn gaps(&self) -> Vec<String> {
        let mut gaps = Vec::new();
        if !self.multi_region {
            gaps.push(format!("single-region ({})", self.home_region));
        }
        match &self.logging {
            Ok(true) => {}
            Ok(false) => gaps.push("not logging".into()),
            Err(e) => gaps.push(format!("status unreadable: {e}")),
        }
        match &self.management {
            Ok((true, true)) => {}
            Ok((read, write)) => {
                let missing = match (read, write) {
                    (false, false) => "no management events",
                    (true, false) => "no management write events",
                    _ => "no management read events",
                };
                gaps.push(format!("records {missing}"));
            }
            Err(e) => gaps.push(format!("event selectors unreadable: {e}")),
        }
        gaps
    }
}

/// Reads every trail visible from this account and region.
pub async fn survey(ct: &Client) -> Result<Vec<TrailView>, Error> {
    let out = ct
        .describe_trails()
        .include_shadow_trails(true)
        .send()
        .await
        .map_err(Error::aws("cloudtrail:DescribeTrails"))?;
    let here = ct
        .config()
        .region()
        .map(|r| r.to_string())
        .unwrap_or_default();
    let mut views: Vec<TrailView> = Vec::new();
    for trail in out.trail_list() {
        let Some(arn) = trail.trail_arn() else {
            continue;
        };
        if views.iter().any(|v| v.arn == arn) {
            continue;
        }
        let home = trail.home_region().unwrap_or(&here).to_string();
        let multi_region = trail.is_multi_region_trail().unwrap_or(false);
        // A trail is read in its home region; the others only hold shadows.
        let region = (home != here).then(|| Region::new(home.clone()));
        let logging = read_logging_raw(ct, arn, Some(&home))
            .await
            .map_err(|e| describe(&e));
        let management = if multi_region {
            read_management(ct, arn, region).await
        } else {
            Err("not read (single-region)".into())
        };
        views.push(TrailView {
            name: trail.name().unwrap_or(arn).to_string(),
            arn: arn.to_string(),
            home_region: home,
            multi_region,
            organization: trail.is_organization_trail().unwrap_or(false),
            logging,
            management,
        });
    }
    Ok(views)
}

fn in_region(region: Option<Region>) -> aws_sdk_cloudtrail::config::Builder {
    let mut b = aws_sdk_cloudtrail::config::Builder::default();
    b.set_region(region);
    b
}

/// Whether the trail `arn` is logging, read in its `home` region.
pub async fn read_logging_raw(
    ct: &Client,
    arn: &str,
    home: Option<&str>,
) -> Result<
    bool,
    aws_sdk_cloudtrail::error::SdkError<
        aws_sdk_cloudtrail::operation::get_trail_status::GetTrailStatusError,
        aws_sdk_cloudtrail::config::http::HttpResponse,
    >,
> {
    let here = ct.config().region().map(|r| r.to_string());
    let mut call = ct.get_trail_status().name(arn).customize();
    if let Some(home) = home.filter(|h| Some(*h) != here.as_deref()) {
        call = call.config_override(in_region(Some(Region::new(home.to_string()))));
    }
    call.send().await.map(|s| s.is_logging().unwrap_or(false))
}

async fn read_management(
    ct: &Client,
    arn: &str,
    region: Option<Region>,
) -> Result<(bool, bool), String> {
    let mut call = ct.get_event_selectors().trail_name(arn).customize();
    if region.is_some() {
        call = call.config_override(in_region(region));
    }
    let out = call.send().await.map_err(|e| describe(&e))?;
    Ok(management_events(
        out.event_selectors(),
        out.advanced_event_selectors(),
    ))
}

fn describe<E: std::error::Error + 'static, R: std::fmt::Debug>(
    e: &aws_sdk_cloudtrail::error::SdkError<E, R>,
) -> String {
    aws_sdk_cloudtrail::error::DisplayErrorContext(e).to_string()
}

/// Which management events the selectors record: (read, write). A trail with
/// no selectors at all records all management events (AWS's default; an
/// emulator may return it as two empty lists).
pub fn management_events(
    basic: &[EventSelector],
    advanced: &[aws_sdk_cloudtrail::types::AdvancedEventSelector],
) -> (bool, bool) {
    if basic.is_empty() && advanced.is_empty() {
        return (true, true);
    }
    let (mut read, mut write) = (false, false);
    for s in basic {
        if s.include_management_events() == Some(false) {
            continue;
        }
        match s.read_write_type() {
            Some(ReadWriteType::ReadOnly) => read = true,
            Some(ReadWriteType::WriteOnly) => write = true,
            _ => (read, write) = (true, true),
        }
    }
    for s in advanced {
        let fields = s.field_selectors();
        let management = fields
            .iter()
            .any(|f| f.field() == "eventCategory" && f.equals().iter().any(|v| v == "Management"));
        if !management {
            continue;
        }
        match fields.iter().find(|f| f.field() == "readOnly") {
            Some(f) if f.equals().iter().any(|v| v == "true") => read = true,
            Some(f) if f.equals().iter().any(|v| v == "false") => write = true,
            _ => (read, write) = (true, true),
        }
    }
    (read, write)
}

pub(super) fn own_detail(name: &str) -> String {
    format!(
        "the stack's trail {name} is multi-region, logging, and records management read and write events"
    )
}

/// The covering trail, or why none covers.
pub fn assess(views: &[TrailView], own_trail_arn: &str) -> Result<Coverage, String> {
    // Prefer a trail the stack does not have to pay for twice: someone else's first.
    let mut covering: Vec<&TrailView> = views.iter().filter(|v| v.covers()).collect();
    covering.sort_by_key(|v| (v.arn == own_trail_arn, !v.organization));
    if let Some(v) = covering.first() {
        let how = if v.arn == own_trail_arn {
            How::CreatedTrail
        } else if v.organization {
            How::OrganizationTrail
        } else {
            How::ExistingTrail
        };
        let detail = if how == How::CreatedTrail {
            own_detail(&v.name)
        } else {
            format!(
                "trail {} (home {}) is multi-region, logging, and records management read and write events",
                v.name, v.home_region
            )
        };
        return Ok(Coverage {
            how,
            trail_arn: v.arn.clone(),
            detail,
        });
    }
    if views.is_empty() {
        return Err("no trail exists in this account (and no organization trail applies); a multi-region trail that logs management events is needed".into());
    }
    let gaps: Vec<String> = views
        .iter()
        .map(|v| format!("trail {}: {}", v.name, v.gaps().join(", ")))
        .collect();
    Err(format!(
        "no trail is multi-region, logging and recording management read and write events ({})",
        gaps.join("; ")
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_cloudtrail::types::{AdvancedEventSelector, AdvancedFieldSelector};

    fn view(name: &str, multi: bool, logging: bool, mgmt: (bool, bool)) -> TrailView {
        TrailView {
            name: name.into(),
            arn: format!("arn:aws:cloudtrail:us-east-1:123456789012:trail/{name}"),
            home_region: "us-east-1".into(),
            multi_region: multi,
            organization: false,
            logging: Ok(logging),
            management: Ok(mgmt),
        }
    }

    fn advanced(fields: &[(&str, &str)]) -> AdvancedEventSelector {
        let mut b = AdvancedEventSelector::builder();
        for (f, v) in fields {
            b = b.field_selectors(
                AdvancedFieldSelector::builder()
                    .field(*f)
                    .equals(*v)
                    .build()
                    .unwrap(),
            );
        }
        b.build().unwrap()
    }

    #[test]
    fn management_events_from_selectors() {
        assert_eq!(management_events(&[], &[]), (true, true));
        let basic = |rw: ReadWriteType, mgmt: bool| {
            EventSelector::builder()
                .read_write_type(rw)
                .include_management_events(mgmt)
                .build()
        };
        assert_eq!(
            management_events(&[basic(ReadWriteType::All, true)], &[]),
            (true, true)
        );
        assert_eq!(
            management_events(&[basic(ReadWriteType::WriteOnly, true)], &[]),
            (false, true)
        );
        assert_eq!(
            management_events(&[basic(ReadWriteType::All, false)], &[]),
            (false, false)
        );
        assert_eq!(
            management_events(
                &[
                    basic(ReadWriteType::ReadOnly, true),
                    basic(ReadWriteType::WriteOnly, true)
                ],
                &[]
            ),
            (true, true)
        );
        assert_eq!(
            management_events(&[], &[advanced(&[("eventCategory", "Management")])]),
            (true, true)
        );
        assert_eq!(
            management_events(
                &[],
                &[advanced(&[
                    ("eventCategory", "Management"),
                    ("readOnly", "true")
                ])]
            ),
            (true, false)
        );
        assert_eq!(
            management_events(&[], &[advanced(&[("eventCategory", "Data")])]),
            (false, false)
        );
    }

    #[test]
    fn assessment_names_what_is_missing() {
        assert!(assess(&[], "own").unwrap_err().contains("no trail exists"));
        let views = [
            view("single", false, true, (true, true)),
            view("stopped", true, false, (true, true)),
            view("writes", true, true, (false, true)),
        ];
        let reason = assess(&views, "own").unwrap_err();
        for needle in [
            "single: single-region",
            "stopped: not logging",
            "writes: records no management read events",
        ] {
            assert!(reason.contains(needle), "{needle} not in {reason}");
        }
        let mut ok = views.to_vec();
        ok.push(view("good", true, true, (true, true)));
        let c = assess(&ok, "own").unwrap();
        assert_eq!(
            (c.how, c.trail_arn.ends_with("/good")),
            (How::ExistingTrail, true)
        );
        let mut org = view("org", true, true, (true, true));
        org.organization = true;
        ok.push(org);
        assert_eq!(assess(&ok, "own").unwrap().how, How::OrganizationTrail);
        let own = view("mine", true, true, (true, true));
        assert_eq!(
            assess(std::slice::from_ref(&own), &own.arn).unwrap().how,
            How::CreatedTrail
        );
    }
}
