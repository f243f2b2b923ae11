//! Connects AWS accounts to Microsoft Defender for Cloud Apps, with no hands.
//!
//! One module per step of Microsoft's manual guide:
//! - [`iam_user`]: create the IAM user and its least-privilege policy;
//! - [`access_key`]: issue the access key and prove it authenticates;
//! - [`key_store`]: store it in Secrets Manager (instead of a .csv);
//! - [`trail`]: make sure CloudTrail covers all regions;
//! - [`preflight`]: check the new key does what the portal's "Test API" needs;
//! - [`portal`]: connect and test the instance in the portal (or [`handoff`]:
//!   tell a person what to do there);
//! - [`rotation`]: replace the key on a schedule, with zero downtime;
//!   [`lifecycle`] is the key's life both share;
//! - [`health`]: check the whole chain on a schedule (instead of a person
//!   looking at the portal now and then);
//!
//! and the plumbing: [`backoff`], [`cfn`] (the custom resource protocol), [`connector`]
//! (the custom resource itself), [`config`], [`logging`], [`names`],
//! [`properties`], [`sensitive`].

pub mod access_key;
pub mod backoff;
pub mod cfn;
pub mod config;
pub mod connector;
pub mod error;
pub mod handoff;
pub mod health;
pub mod iam_user;
pub mod key_store;
pub mod lifecycle;
pub mod logging;
pub mod names;
pub mod portal;
pub mod preflight;
pub mod properties;
pub mod rotation;
pub mod sensitive;
pub mod trail;

pub use config::{Deps, Settings};
pub use error::Error;
