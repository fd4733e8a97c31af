//! hostplane's wire formats. Everything that crosses a process boundary is defined
//! here and nowhere else: REST request and response bodies under [`v1`] (and later
//! the controller⇄agent messages). Types are versioned by module; a shipped type is
//! never changed incompatibly: add optional fields, or add a `v2`.
//!
//! Request bodies reject unknown fields and carry plain strings: the controller
//! validates each field with the `model` newtypes, so an error can name the field
//! and the rule.

#![forbid(unsafe_code)]

pub mod agent_delta;
pub mod agent_ops;
pub mod agent_v1;
mod agent_v1_heartbeat;
mod agent_v1_sitemail;
pub mod manifest;
pub mod rehash;
pub mod sendmail;
pub mod sitesync;
pub mod v1;
mod v1_acme;
mod v1_cron;
pub mod v1_import;
mod v1_infra;
mod v1_logs;
mod v1_map;
mod v1_plans;
mod v1_services;
mod v1_sitefiles;
