//! The REST API under `/v1`: one module per resource family, the router
//! ([`routes`]) and the HTTP helpers they share ([`common`]). Nothing outside the
//! HTTP layer imports from here: placement and snapshots live in
//! [`crate::placement`].

pub mod account;
pub mod auth;
pub mod certs;
pub mod common;
pub mod customers;
pub mod databases;
pub mod dns;
pub mod domains;
pub mod ftp;
pub mod import;
pub mod infra;
pub mod mail;
pub mod mailcheck;
pub mod map;
pub mod names;
pub mod plans;
pub mod routes;
pub mod site_cron;
pub mod site_files;
pub mod site_logs;
pub mod site_web;
pub mod sites;
pub mod status;
pub mod tsig;

pub use common::*;
pub use routes::router;
