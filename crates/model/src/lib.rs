//! hostplane's domain model: the validated newtypes every other crate trusts, the
//! persisted shapes of every object (version 1), and the pure rules that relate them
//! (DNS record coexistence, ownership). Nothing here does I/O; everything here is
//! cheap to property-test.
//!
//! A value of a newtype such as [`DomainName`] or [`LocalPart`] has passed validation:
//! code that holds one never re-checks it. Every constructor returns a [`Invalid`]
//! that names the rule that failed, so the API can answer with the field and the rule.

#![forbid(unsafe_code)]

mod country;
pub mod cron;
pub mod dns;
pub mod entity;
mod error;
pub mod limits;
mod names;
pub mod namespace;
mod roles;
pub mod sitefiles;
pub mod sitemail;
mod text;
pub mod web;

pub use country::CountryCode;
pub use error::{FieldError, Invalid, WithField};
pub use names::{
    DbIdent, DomainName, EmailAddress, FtpUsername, LocalPart, Password, RelPath, Slug,
};
pub use roles::{AccountKind, DbEngine, PlacementMode, Role};
pub use text::{forbidden_in_text, FreeText};

/// Database identifier of a stored object. Assigned by the store, never reused.
pub type Id = i64;
