//! Site-file replication (issue 14; DESIGN.md "Site files: one writable tree, replicated").
//!
//! A site's tree is writable on every web server of its cluster. The files server runs the
//! **hub**: it holds the authoritative copy, orders every change of a site (one sequence per
//! site), detects conflicts by the version each change says it replaced, keeps overwritten
//! and deleted versions for restore, and fans changes out. Each web server runs a
//! **replica** per site: [`capture`] watches the tree for local writes (PHP, as the site's
//! user), the replica turns what it sees into changes against the versions it knows, pushes
//! them to the hub (through a durable outbox while the hub is unreachable) and applies the
//! changes other servers made, by temp file + rename with exact mtimes.
//!
//! The wire format lives in `proto::sitesync` so that role-files (hub) and role-web
//! (replica) depend on this crate and never on each other.
//!
//! Modules of the core: [`apply`] (one change to a tree, confined, durable), [`hub`]
//! (ordering, conflicts, log, versions), [`replica`] (index, outbox, observe, remote apply),
//! [`api`] (the replica's view of the hub, [`api::HubApi`]), [`inprocess`] (that view
//! by a direct call, for tests and the harness) and [`transport`] (that view over HTTPS
//! with mutual TLS, and the hub's server).

pub mod api;
pub mod apply;
pub mod capture;
pub mod hub;
pub mod inprocess;
pub mod replica;
pub mod safe;
pub mod transport;
