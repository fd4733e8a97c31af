//! hostplane files engine.
//!
//! A files server holds every site's content in the site-file hub's trees
//! ([`sitehub`]: the authoritative copy of issue 14's replication, whose log orders
//! every change) and offers it through these doors:
//! - FTP and explicit FTPS for customers ([`ftp`]): accounts with argon2id passwords, a home
//!   confined to one site (or a folder of it), per-account quotas, fsync before `226`;
//! - the hub's HTTPS routes for web servers' replicas (`sitesync::transport`: push,
//!   log long-poll, manifest, blobs), on the mutual-TLS sync port.
//!
//! The whole design, both halves, is in `docs/site-files.md`. [`engine`] plugs both
//! into the agent's supervisor; [`plan`] is the pure translation of the controller's
//! desired config into what the engine serves; [`trash`] keeps the folders of domains
//! the server no longer holds for a week before deleting them.

#![forbid(unsafe_code)]

pub mod auth;
pub mod engine;
pub mod error;
pub mod ftp;
pub mod plan;
pub mod safe_fs;
pub mod sitehub;
pub mod storage;
pub mod tls;
pub mod trash;

pub use engine::start_engine;
pub use error::FilesError;
