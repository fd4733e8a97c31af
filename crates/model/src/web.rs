//! A site's web settings (issue 15): the folder it serves (document root), HSTS,
//! and its PHP version and `php.ini` values.
//!
//! The rules live here once. The API checks a request with [`DocRoot::parse`],
//! [`PhpVersion::new`] and [`PhpSettings::set`] (the value against the key's rule
//! and the owner's plan, [`PhpCeilings`]); the bulk import calls the same; the web
//! engine checks what reaches it with [`PhpSettings::check`] before a value goes
//! into a php-fpm pool file, so a value the API accepts is one every engine accepts,
//! and nothing else can reach the pool file (no newline, no `;`, no unknown key).
//!
//! Stored settings load without re-validation (like [`crate::LocalPart::stored`]):
//! a rule tightened later never stops an old site from loading; the engine rejects
//! that one site instead.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::error::Invalid;

mod ini;

pub use ini::{IniKind, IniSpec, PhpCeilings, INI_KEYS};

/// Longest folder name in a document root, in bytes (Linux's `NAME_MAX`).
pub const MAX_DOCROOT_NAME: usize = 255;
/// Longest document root, in bytes.
pub const MAX_DOCROOT: usize = 1024;

/// The folder of a site's tree that is served, relative to the tree (e.g. `public`,
/// `web/public`): no `..`, no empty part, no control character, no leading `/`
/// (the one exception: `/` alone, which [`DocRoot::parse`] reads as "the tree
/// itself"), at most [`MAX_DOCROOT_NAME`] bytes per folder and [`MAX_DOCROOT`] in
/// all. `.` parts and one trailing `/` are dropped (the normal form). The engine
/// opens it beneath the tree with the kernel's `RESOLVE_BENEATH`, so even a
/// symlink cannot make it leave the tree; this rule makes the API say so first.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct DocRoot(String);

impl DocRoot {
    /// Validate and normalise; `Ok(None)` for the tree itself (`/`, `.`, `./`).
    pub fn parse(input: &str) -> Result<Option<Self>, Invalid> {
        if input.len() > MAX_DOCROOT {
            return Err(Invalid::new(
                "too_long",
                format!("a document root is at most {MAX_DOCROOT} bytes"),
            ));
        }
        if input.chars().any(char::is_control) {
            return Err(Invalid::new(
                "bad_character",
                "a document root cannot contain control characters",
            ));
        }
        if input.contains('\\') {
            return Err(Invalid::new(
                "bad_character",
                "a document root is written with `/` between folders, not `\\`",
            ));
        }
        if input == "/" {
            return Ok(None);
        }
        if input.starts_with('/') {
            return Err(Invalid::new(
                "absolute",
                format!("`{input}` is absolute; give the folder relative to the site's files, e.g. `public` (or `/` for all of them)"),
            ));
        }
        if input.is_empty() {
            return Err(Invalid::new(
                "empty",
                "the document root is empty; name a folder, e.g. `public`, or `/` for the whole site",
            ));
        }
        let trimmed = input.strip_suffix('/').unwrap_or(input);
        let mut parts = Vec::new();
        for part in trimmed.split('/') {
            match part {
                "" => {
                    return Err(Invalid::new(
                        "empty_part",
                        "a document root cannot contain `//`",
                    ))
                }
                "." => {}
                ".." => {
                    return Err(Invalid::new(
                        "dot_dot",
                        format!(
                        "`{input}` has a `..` part; the document root is a folder inside the site"
                    ),
                    ))
                }
                p if p.len() > MAX_DOCROOT_NAME => {
                    return Err(Invalid::new(
                        "name_too_long",
                        format!("a folder name is at most {MAX_DOCROOT_NAME} bytes"),
                    ))
                }
                p => parts.push(p),
            }
        }
        Ok((!parts.is_empty()).then(|| Self(parts.join("/"))))
    }

    /// The normalised relative path.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for DocRoot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A PHP version as Debian names its packages: `MAJOR.MINOR` (`8.2`), major 5 to 9,
/// minor 0 to 99. Whether a server has it is the engine's report, not a rule here.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct PhpVersion(String);

impl PhpVersion {
    /// Validate `8.2`-style input.
    pub fn new(input: &str) -> Result<Self, Invalid> {
        let bad = || {
            Invalid::new(
                "bad_php_version",
                format!("`{input}` is not a PHP version; write MAJOR.MINOR, e.g. `8.2`"),
            )
        };
        let (major, minor) = input.split_once('.').ok_or_else(bad)?;
        let digits = |s: &str, max_len| {
            !s.is_empty() && s.len() <= max_len && s.bytes().all(|b| b.is_ascii_digit())
        };
        if !digits(major, 1) || !digits(minor, 2) || (minor.len() > 1 && minor.starts_with('0')) {
            return Err(bad());
        }
        if !(b'5'..=b'9').contains(&major.as_bytes()[0]) {
            return Err(bad());
        }
        Ok(Self(input.to_owned()))
    }

    /// The version text, e.g. `8.2`.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for PhpVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A site's PHP: the version its pool runs (`None`: the server's default php-fpm)
/// and the `php.ini` values set for it, by key, in their normal form (see
/// [`INI_KEYS`] for the allowed keys and each one's rule).
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct PhpSettings {
    /// The PHP version, or the server's default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<PhpVersion>,
    /// `php.ini` key → value (normal form, e.g. `64M`, `on`, `Europe/Berlin`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub ini: BTreeMap<String, String>,
}

impl PhpSettings {
    /// Whether nothing is set (the default pool).
    pub fn is_empty(&self) -> bool {
        self.version.is_none() && self.ini.is_empty()
    }

    /// Set `key` to `raw` after checking it against the key's rule and `ceilings`
    /// (the owner's plan); the value is stored in its normal form. The error
    /// names the rule; the caller names the field.
    pub fn set(&mut self, key: &str, raw: &str, ceilings: &PhpCeilings) -> Result<(), Invalid> {
        let spec = ini::spec(key)?;
        let value = spec.normalise(raw, ceilings)?;
        let mut next = self.ini.clone();
        next.insert(spec.key.to_owned(), value);
        ini::check_pair(&next)?;
        self.ini = next;
        Ok(())
    }

    /// Remove `key` (back to the default); an unknown key is an error, so a typo
    /// does not pass silently.
    pub fn unset(&mut self, key: &str) -> Result<(), Invalid> {
        let spec = ini::spec(key)?;
        self.ini.remove(spec.key);
        Ok(())
    }

    /// Check every stored value against its rule, without plan ceilings (the
    /// engine's check before writing a pool file: known keys and well-formed
    /// values only). The first failure names its key.
    pub fn check(&self) -> Result<(), Invalid> {
        let open = PhpCeilings::unbounded();
        for (k, v) in &self.ini {
            let spec = ini::spec(k)?;
            let normal = spec
                .normalise(v, &open)
                .map_err(|e| Invalid::new(e.rule, format!("php.ini `{k}`: {}", e.message)))?;
            if &normal != v {
                return Err(Invalid::new(
                    "not_normal",
                    format!("php.ini `{k}` = `{v}` is not in its normal form `{normal}`"),
                ));
            }
        }
        Ok(())
    }

    /// The lines a php-fpm pool gets for these values, in key order:
    /// `php_admin_value[k] = v` for the keys scripts may not change
    /// ([`IniSpec::admin`]), `php_value[k] = v` for the others. Values are
    /// assumed [`Self::check`]ed.
    pub fn pool_lines(&self) -> Vec<String> {
        self.ini
            .iter()
            .filter_map(|(k, v)| {
                let spec = ini::spec(k).ok()?;
                let kind = match (spec.admin, matches!(spec.kind, IniKind::Flag)) {
                    (true, true) => "php_admin_flag",
                    (true, false) => "php_admin_value",
                    (false, true) => "php_flag",
                    (false, false) => "php_value",
                };
                Some(format!("{kind}[{k}] = {v}"))
            })
            .collect()
    }
}

/// A site's web settings, stored on [`crate::entity::Site`] (absent when all are
/// default, so sites stored before issue 15 load unchanged).
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct WebSettings {
    /// The folder served (`None`: the whole tree).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub docroot: Option<DocRoot>,
    /// Send `Strict-Transport-Security` on HTTPS answers — only while the site's
    /// certificate is one browsers trust (the controller decides, see
    /// `proto::agent_v1::WebSite::hsts`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub hsts: bool,
    /// PHP version and `php.ini` values.
    #[serde(default, skip_serializing_if = "PhpSettings::is_empty")]
    pub php: PhpSettings,
}

impl WebSettings {
    /// Whether everything is default (not serialised then).
    pub fn is_default(&self) -> bool {
        *self == Self::default()
    }
}

#[cfg(test)]
mod tests;
