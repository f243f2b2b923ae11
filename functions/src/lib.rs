//! Connects AWS accounts to Microsoft Defender for Cloud Apps, with no hands.
//!
//! One module per step of Microsoft's manual guide, each standing on the
//! leaves below it and on nothing else:
//! - [`iam_user`]: create the IAM user and its least-privilege policy;
//! - [`access_key`]: issue the access key and prove it authenticates;
//! - [`key_store`]: store it in Secrets Manager (instead of a .csv);
//! - [`trail`]: make sure CloudTrail covers all regions;
//! - [`portal`]: connect and test the instance in the portal (or hand off
//!   to a person what to do there).
//!
//! Above them, what puts the steps together:
//! - [`preflight`]: check the new key does what the portal's "Test API" needs;
//! - [`lifecycle`]: the key's life, shared by [`connector`] (the custom
//!   resource) and [`rotation`] (replace the key on a schedule, with zero
//!   downtime);
//! - [`health`]: check the whole chain on a schedule;
//! - [`retirement`]: when a key the portal may hold can be retired;
//! - [`hub`]: the organization hub (its registrar and the organization's
//!   health), which connects member accounts (`PORTAL_MODE=hub`) through
//!   one portal credential.
//!
//! And the ground they stand on: [`config`] (every environment variable),
//! [`deps`] (what init builds), [`aws`], [`notify`], [`cfn`] (the custom resource
//! protocol), [`properties`], [`names`], [`key`], [`error`], [`gone`],
//! [`backoff`], [`text`], [`time`], [`logging`], [`sensitive`].

pub mod access_key;
pub mod aws;
pub mod backoff;
pub mod cfn;
pub mod config;
pub mod connector;
pub mod deps;
pub mod error;
pub mod gone;
pub mod health;
pub mod hub;
pub mod hub_tags;
pub mod iam_user;
pub mod key;
pub mod key_store;
pub mod lifecycle;
pub mod logging;
pub mod names;
pub mod notify;
pub mod portal;
pub mod preflight;
pub mod properties;
pub mod retirement;
pub mod rotation;
pub mod sensitive;
pub mod text;
pub mod time;
pub mod trail;
