//! Validated names: domain names (IDNA), mailbox local parts (RFC 5321), object
//! slugs, database identifiers, FTP user names, relative paths and passwords.
//!
//! Each type normalises on construction (lowercase, A-labels) and then serialises
//! as its plain string; deserialising re-validates, so a stored or received value is
//! never trusted blindly.

use idna::uts46::{AsciiDenyList, DnsLength, Hyphens, Uts46};
use serde::{Deserialize, Deserializer, Serialize};
use std::fmt;

use crate::Invalid;

macro_rules! string_newtype {
    ($(#[$meta:meta])* $name:ident) => {
        string_newtype!(@base $(#[$meta])* $name);

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = String::deserialize(d)?;
                Self::new(&s).map_err(serde::de::Error::custom)
            }
        }
    };
    // Deserialised through `Self::stored`: values stored under an older, looser
    // rule still load (see the type's `stored`).
    ($(#[$meta:meta])* $name:ident, stored) => {
        string_newtype!(@base $(#[$meta])* $name);

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = String::deserialize(d)?;
                Self::stored(&s).map_err(serde::de::Error::custom)
            }
        }
    };
    (@base $(#[$meta:meta])* $name:ident) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            /// The normalised string.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl std::str::FromStr for $name {
            type Err = Invalid;
            fn from_str(s: &str) -> Result<Self, Invalid> {
                Self::new(s)
            }
        }
    };
}

string_newtype! {
    /// A fully qualified domain name stored as lowercase IDNA A-labels, without the
    /// trailing dot. At least two labels; each label 1–63 octets of letters, digits
    /// and inner hyphens; 253 octets in all; the top-level label is not all digits.
    /// Unicode input (`bücher.example`) is converted to `xn--bcher-kva.example`.
    DomainName
}

/// Longest domain name in presentation form without the trailing dot (RFC 1035).
pub const MAX_DOMAIN_LEN: usize = 253;
/// Longest DNS label (RFC 1035).
pub const MAX_LABEL_LEN: usize = 63;

impl DomainName {
    /// Validate and normalise a domain name typed by a person or a client.
    pub fn new(input: &str) -> Result<Self, Invalid> {
        let trimmed = input.trim();
        let trimmed = trimmed.strip_suffix('.').unwrap_or(trimmed);
        if trimmed.is_empty() {
            return Err(Invalid::new("empty", "a domain name is required"));
        }
        if trimmed.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(Invalid::new(
                "bad_character",
                "a domain name cannot contain spaces or control characters",
            ));
        }
        let ascii = to_ascii(trimmed)?;
        check_ldh_name(&ascii, false)?;
        let labels: Vec<&str> = ascii.split('.').collect();
        if labels.len() < 2 {
            return Err(Invalid::new(
                "too_few_labels",
                format!("`{trimmed}` needs at least two labels, like example.com"),
            ));
        }
        if labels
            .last()
            .is_some_and(|tld| tld.bytes().all(|b| b.is_ascii_digit()))
        {
            return Err(Invalid::new(
                "numeric_tld",
                "the top-level label cannot be all digits",
            ));
        }
        Ok(Self(ascii))
    }

    /// The Unicode (U-label) form for display; the A-label form if decoding fails.
    pub fn to_unicode(&self) -> String {
        let (s, res) = idna::domain_to_unicode(&self.0);
        if res.is_ok() {
            s
        } else {
            self.0.clone()
        }
    }

    /// Labels from left to right.
    pub fn labels(&self) -> impl Iterator<Item = &str> {
        self.0.split('.')
    }

    /// A site's host name, which may be a wildcard (`*.example.com`, one
    /// leading `*` label before at least two labels of [`DomainName::new`]): the
    /// form site aliases take. Matches every name one label below the rest
    /// (RFC 4592's and the certificate's wildcard, not deeper names).
    pub fn host_pattern(input: &str) -> Result<Self, Invalid> {
        let trimmed = input.trim();
        match trimmed.strip_prefix("*.") {
            Some(rest) => {
                if rest.contains('*') {
                    return Err(Invalid::new(
                        "bad_wildcard",
                        "a wildcard host name has one `*`, as its first label (`*.example.com`)",
                    ));
                }
                let base = Self::new(rest)?;
                Ok(Self(format!("*.{}", base.0)))
            }
            None if trimmed.contains('*') => Err(Invalid::new(
                "bad_wildcard",
                "a wildcard host name has one `*`, as its first label (`*.example.com`)",
            )),
            None => Self::new(trimmed),
        }
    }

    /// Whether this is a wildcard host name (`*.example.com`).
    pub fn is_wildcard(&self) -> bool {
        self.0.starts_with("*.")
    }

    /// True if `self` equals `other` or lies below it (`www.a.com` under `a.com`).
    pub fn is_within(&self, other: &DomainName) -> bool {
        self.0 == other.0
            || (self.0.len() > other.0.len()
                && self.0.ends_with(other.as_str())
                && self.0.as_bytes()[self.0.len() - other.0.len() - 1] == b'.')
    }
}

/// Convert one name to ASCII with IDNA (UTS 46, transitional processing off).
fn to_ascii(input: &str) -> Result<String, Invalid> {
    if input.is_ascii() {
        let lower = input.to_ascii_lowercase();
        // Pure ASCII still has to be valid: xn-- labels must decode.
        if lower.split('.').any(|l| l.starts_with("xn--")) {
            // Plain LDH mistakes first, so they get their own rule.
            check_ldh_name(&lower, false)?;
            idna::domain_to_unicode(&lower).1.map_err(|_| {
                Invalid::new(
                    "bad_punycode",
                    format!("`{input}` has an xn-- label that is not valid punycode"),
                )
            })?;
            // Round-trip: the A-label must be the canonical encoding, and the U-label
            // must pass the same rules as Unicode input (hyphens: RFC 5891 §4.2.3.1).
            let (uni, _) = idna::domain_to_unicode(&lower);
            let back = Uts46::new()
                .to_ascii(
                    uni.as_bytes(),
                    AsciiDenyList::STD3,
                    Hyphens::Check,
                    DnsLength::Ignore,
                )
                .map_err(|_| {
                    Invalid::new(
                        "bad_punycode",
                        format!("`{input}` has an xn-- label that is not valid IDNA"),
                    )
                })?;
            if back != lower {
                return Err(Invalid::new(
                    "bad_punycode",
                    format!("`{input}` is not in canonical IDNA form"),
                ));
            }
        }
        return Ok(lower);
    }
    idna::domain_to_ascii_strict(input).map_err(|_| {
        Invalid::new(
            "bad_idna",
            format!("`{input}` is not a valid internationalised domain name (IDNA 2008 / UTS 46)"),
        )
    })
}

/// Length and letter-digit-hyphen rules on an ASCII name. `allow_underscore` admits
/// `_service` labels (DNS owner names, not host names).
pub(crate) fn check_ldh_name(ascii: &str, allow_underscore: bool) -> Result<(), Invalid> {
    if ascii.len() > MAX_DOMAIN_LEN {
        return Err(Invalid::new(
            "name_too_long",
            format!(
                "a domain name is at most {MAX_DOMAIN_LEN} characters, this one has {}",
                ascii.len()
            ),
        ));
    }
    for label in ascii.split('.') {
        check_label(label, allow_underscore)?;
    }
    Ok(())
}

pub(crate) fn check_label(label: &str, allow_underscore: bool) -> Result<(), Invalid> {
    if label.is_empty() {
        return Err(Invalid::new(
            "empty_label",
            "a domain name cannot have an empty label (two dots in a row, or a leading dot)",
        ));
    }
    if label.len() > MAX_LABEL_LEN {
        return Err(Invalid::new(
            "label_too_long",
            format!(
                "label `{label}` is {} characters; a label is at most {MAX_LABEL_LEN}",
                label.len()
            ),
        ));
    }
    let ok_char = |b: u8| {
        b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || (allow_underscore && b == b'_')
    };
    if let Some(bad) = label.bytes().find(|&b| !ok_char(b)) {
        return Err(Invalid::new(
            "bad_character",
            format!(
                "label `{label}` contains `{}`; use letters, digits and hyphens",
                bad as char
            ),
        ));
    }
    if label.starts_with('-') || label.ends_with('-') {
        return Err(Invalid::new(
            "hyphen_at_edge",
            format!("label `{label}` cannot start or end with a hyphen"),
        ));
    }
    if label.len() >= 4 && &label[2..4] == "--" && !label.starts_with("xn--") {
        return Err(Invalid::new(
            "reserved_hyphens",
            format!("label `{label}` has hyphens in positions 3 and 4, reserved for IDNA"),
        ));
    }
    Ok(())
}

string_newtype! {
    /// The local part of a hosted mailbox or alias address: an RFC 5321 dot-string
    /// (atoms of `atext` joined by single dots), at most 64 octets, stored lowercase.
    /// Quoted-string local parts are not accepted for hosted addresses, and neither
    /// is `/`: a mailbox is a folder named by its local part (`<domain>/<local>/
    /// Maildir`), so a local part must be one path component (no `/`, NUL, `.`,
    /// `..` or leading dot). The API and the mail engine both check with
    /// [`LocalPart::new`].
    LocalPart, stored
}

/// Longest local part (RFC 5321 §4.5.3.1.1).
pub const MAX_LOCAL_PART_LEN: usize = 64;

/// RFC 5321 `atext` less `/` (see [`LocalPart`]).
fn is_atext(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-=?^_`{|}~".contains(&b)
}

impl LocalPart {
    /// Validate and lowercase a local part.
    pub fn new(input: &str) -> Result<Self, Invalid> {
        Self::check(input, false)
    }

    /// A local part as stored: [`LocalPart::new`], except that `/` (allowed
    /// before it was refused) still loads, so one old object cannot stop the
    /// controller from reading the others. The mail engine refuses such an
    /// object (it is named in the server's health) until it is deleted.
    pub fn stored(input: &str) -> Result<Self, Invalid> {
        Self::check(input, true)
    }

    fn check(input: &str, legacy_slash: bool) -> Result<Self, Invalid> {
        if input.is_empty() {
            return Err(Invalid::new(
                "empty",
                "a local part (the part before @) is required",
            ));
        }
        if input.len() > MAX_LOCAL_PART_LEN {
            return Err(Invalid::new(
                "local_part_too_long",
                format!(
                    "a local part is at most {MAX_LOCAL_PART_LEN} characters, this one has {}",
                    input.len()
                ),
            ));
        }
        if input.starts_with('.') || input.ends_with('.') || input.contains("..") {
            return Err(Invalid::new(
                "bad_dots",
                "a local part cannot start or end with a dot or have two dots in a row",
            ));
        }
        if let Some(bad) = input
            .bytes()
            .find(|&b| b != b'.' && !is_atext(b) && !(legacy_slash && b == b'/'))
        {
            let shown = if bad.is_ascii_graphic() {
                format!("`{}`", bad as char)
            } else {
                format!("byte 0x{bad:02x}")
            };
            return Err(Invalid::new(
                "bad_character",
                format!("a local part cannot contain {shown}; use letters, digits and . _ - + (RFC 5321 dot-string, no /)"),
            ));
        }
        Ok(Self(input.to_ascii_lowercase()))
    }
}

string_newtype! {
    /// A complete mail address `local@domain` (dot-string local part, IDNA domain).
    /// Used for forward destinations and sender addresses.
    EmailAddress, stored
}

impl EmailAddress {
    /// Validate and normalise an address.
    pub fn new(input: &str) -> Result<Self, Invalid> {
        Self::parse(input, LocalPart::new)
    }

    /// An address as stored: its local part checked with [`LocalPart::stored`].
    pub fn stored(input: &str) -> Result<Self, Invalid> {
        Self::parse(input, LocalPart::stored)
    }

    fn parse(
        input: &str,
        local_part: fn(&str) -> Result<LocalPart, Invalid>,
    ) -> Result<Self, Invalid> {
        let input = input.trim();
        let (local, domain) = input.rsplit_once('@').ok_or_else(|| {
            Invalid::new(
                "missing_at",
                format!("`{input}` is not a mail address: it has no @"),
            )
        })?;
        let local = local_part(local)?;
        let domain = DomainName::new(domain)?;
        Ok(Self::from_parts(&local, &domain))
    }

    /// Join a validated local part and domain.
    pub fn from_parts(local: &LocalPart, domain: &DomainName) -> Self {
        Self(format!("{local}@{domain}"))
    }

    /// The part before the last `@`.
    pub fn local_part(&self) -> &str {
        self.0.rsplit_once('@').map(|(l, _)| l).unwrap_or_default()
    }

    /// The domain after the last `@`.
    pub fn domain(&self) -> &str {
        self.0.rsplit_once('@').map(|(_, d)| d).unwrap_or_default()
    }
}

string_newtype! {
    /// Name of an operator object or account: clusters, servers, customers. Lowercase
    /// letters, digits and single hyphens, starting with a letter, 1–63 characters, so
    /// it also works as a DNS label and a file name.
    Slug
}

impl Slug {
    /// Validate a slug.
    pub fn new(input: &str) -> Result<Self, Invalid> {
        if input.is_empty() {
            return Err(Invalid::new("empty", "a name is required"));
        }
        if input.len() > 63 {
            return Err(Invalid::new(
                "too_long",
                format!(
                    "a name is at most 63 characters, this one has {}",
                    input.len()
                ),
            ));
        }
        if !input.as_bytes()[0].is_ascii_lowercase() {
            return Err(Invalid::new(
                "must_start_with_letter",
                format!("`{input}` must start with a lowercase letter"),
            ));
        }
        if let Some(bad) = input
            .bytes()
            .find(|&b| !(b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-'))
        {
            return Err(Invalid::new(
                "bad_character",
                format!(
                    "`{input}` contains `{}`; use lowercase letters, digits and hyphens",
                    bad.escape_ascii()
                ),
            ));
        }
        if input.ends_with('-') || input.contains("--") {
            return Err(Invalid::new(
                "bad_hyphens",
                format!("`{input}` cannot end with a hyphen or contain two in a row"),
            ));
        }
        Ok(Self(input.to_owned()))
    }
}

string_newtype! {
    /// Name of a customer database or database user, safe unquoted in both MariaDB
    /// and PostgreSQL: `[a-z][a-z0-9_]*`, at most 32 characters (MariaDB and
    /// PostgreSQL both accept that for users and databases), not a reserved system
    /// name and not starting with `pg_` or `mysql`.
    DbIdent
}

/// Longest database or database user name we accept.
pub const MAX_DB_IDENT_LEN: usize = 32;

const RESERVED_DB_NAMES: &[&str] = &[
    "root",
    "admin",
    "postgres",
    "template0",
    "template1",
    "public",
    "information_schema",
    "performance_schema",
    "sys",
    "mysql",
    "mariadb",
    "test",
    "replication",
    "hostplane",
    "all",
    "user",
    "current_user",
    "session_user",
    "none",
    "default",
];

impl DbIdent {
    /// Validate a database identifier.
    pub fn new(input: &str) -> Result<Self, Invalid> {
        if input.is_empty() {
            return Err(Invalid::new("empty", "a database or user name is required"));
        }
        if input.len() > MAX_DB_IDENT_LEN {
            return Err(Invalid::new(
                "too_long",
                format!("a database or user name is at most {MAX_DB_IDENT_LEN} characters, this one has {}", input.len()),
            ));
        }
        if !input.as_bytes()[0].is_ascii_lowercase() {
            return Err(Invalid::new(
                "must_start_with_letter",
                format!(
                    "`{}` must start with a lowercase letter",
                    input.escape_debug()
                ),
            ));
        }
        if let Some(bad) = input
            .bytes()
            .find(|&b| !(b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_'))
        {
            return Err(Invalid::new(
                "bad_character",
                format!("database and user names may use lowercase letters, digits and _ only, not `{}`", bad.escape_ascii()),
            ));
        }
        if RESERVED_DB_NAMES.contains(&input)
            || input.starts_with("pg_")
            || input.starts_with("mysql")
        {
            return Err(Invalid::new(
                "reserved",
                format!("`{input}` is reserved by the database server; choose another name"),
            ));
        }
        Ok(Self(input.to_owned()))
    }
}

string_newtype! {
    /// FTP login name: `[a-z][a-z0-9._-]*`, 2–32 characters, no dot at the end.
    FtpUsername
}

impl FtpUsername {
    /// Validate an FTP login name.
    pub fn new(input: &str) -> Result<Self, Invalid> {
        if input.len() < 2 || input.len() > 32 {
            return Err(Invalid::new(
                "bad_length",
                "an FTP user name has 2 to 32 characters",
            ));
        }
        if !input.as_bytes()[0].is_ascii_lowercase() {
            return Err(Invalid::new(
                "must_start_with_letter",
                "an FTP user name starts with a lowercase letter",
            ));
        }
        if let Some(bad) = input
            .bytes()
            .find(|&b| !(b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b)))
        {
            return Err(Invalid::new(
                "bad_character",
                format!(
                    "an FTP user name uses lowercase letters, digits and . _ - only, not `{}`",
                    bad.escape_ascii()
                ),
            ));
        }
        if input.ends_with('.') || input.contains("..") {
            return Err(Invalid::new(
                "bad_dots",
                "an FTP user name cannot end with a dot or contain two in a row",
            ));
        }
        Ok(Self(input.to_owned()))
    }
}

string_newtype! {
    /// A relative path inside a site's files, such as an FTP account's home. Segments
    /// of letters, digits, `.`, `_` and `-`, never empty, never `.` or `..`, never
    /// starting with a dot; no leading slash; at most 255 characters. The empty path
    /// (the site root) is allowed and written as "".
    RelPath
}

impl RelPath {
    /// Validate a relative path; a leading or trailing `/` is trimmed.
    pub fn new(input: &str) -> Result<Self, Invalid> {
        let trimmed = input.trim_matches('/');
        if trimmed.len() > 255 {
            return Err(Invalid::new("too_long", "a path is at most 255 characters"));
        }
        if trimmed.is_empty() {
            return Ok(Self(String::new()));
        }
        for seg in trimmed.split('/') {
            if seg.is_empty() {
                return Err(Invalid::new("empty_segment", "a path cannot contain `//`"));
            }
            if seg.starts_with('.') {
                return Err(Invalid::new(
                    "dot_segment",
                    format!(
                        "path segment `{seg}` cannot start with a dot (no `..`, no hidden files)"
                    ),
                ));
            }
            if let Some(bad) = seg
                .bytes()
                .find(|&b| !(b.is_ascii_alphanumeric() || b"._-".contains(&b)))
            {
                return Err(Invalid::new(
                    "bad_character",
                    format!(
                        "path segment `{}` contains `{}`; use letters, digits and . _ -",
                        seg.escape_debug(),
                        bad.escape_ascii()
                    ),
                ));
            }
        }
        Ok(Self(trimmed.to_owned()))
    }

    /// The site root.
    pub fn root() -> Self {
        Self(String::new())
    }
}

/// A password as given by a user, before hashing. Never serialised; never printed.
#[derive(Clone, PartialEq, Eq)]
pub struct Password(String);

/// Shortest password we accept.
pub const MIN_PASSWORD_LEN: usize = 10;
/// Longest password we accept (bounds hashing cost).
pub const MAX_PASSWORD_LEN: usize = 256;

impl Password {
    /// Validate a password: 10–256 characters, no control characters.
    pub fn new(input: &str) -> Result<Self, Invalid> {
        let n = input.chars().count();
        if n < MIN_PASSWORD_LEN {
            return Err(Invalid::new(
                "too_short",
                format!("a password has at least {MIN_PASSWORD_LEN} characters"),
            ));
        }
        if input.len() > MAX_PASSWORD_LEN {
            return Err(Invalid::new(
                "too_long",
                format!("a password has at most {MAX_PASSWORD_LEN} bytes"),
            ));
        }
        if input.chars().any(char::is_control) {
            return Err(Invalid::new(
                "bad_character",
                "a password cannot contain control characters",
            ));
        }
        Ok(Self(input.to_owned()))
    }

    /// The secret itself, for hashing.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password(***)")
    }
}

/// Deserialise host names that may be wildcards ([`DomainName::host_pattern`]):
/// site aliases.
pub fn de_host_patterns<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<DomainName>, D::Error> {
    let v = Vec::<String>::deserialize(d)?;
    v.iter()
        .map(|s| DomainName::host_pattern(s).map_err(serde::de::Error::custom))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn domain_unicode_to_a_label() {
        assert_eq!(
            DomainName::new("Bücher.Example.").unwrap().as_str(),
            "xn--bcher-kva.example"
        );
        assert_eq!(
            DomainName::new("xn--bcher-kva.example")
                .unwrap()
                .to_unicode(),
            "bücher.example"
        );
    }

    #[test]
    fn domain_rules() {
        assert_eq!(DomainName::new("com").unwrap_err().rule, "too_few_labels");
        assert_eq!(DomainName::new("a..com").unwrap_err().rule, "empty_label");
        assert_eq!(
            DomainName::new("-a.com").unwrap_err().rule,
            "hyphen_at_edge"
        );
        assert_eq!(
            DomainName::new("a_b.com").unwrap_err().rule,
            "bad_character"
        );
        assert_eq!(
            DomainName::new(&format!("{}.com", "a".repeat(64)))
                .unwrap_err()
                .rule,
            "label_too_long"
        );
        assert_eq!(DomainName::new("a.123").unwrap_err().rule, "numeric_tld");
        assert_eq!(
            DomainName::new("ab--c.com").unwrap_err().rule,
            "reserved_hyphens"
        );
        assert_eq!(
            DomainName::new("xn--zz.com").unwrap_err().rule,
            "bad_punycode"
        );
        let long = format!("{}.com", vec!["a".repeat(63); 4].join("."));
        assert_eq!(DomainName::new(&long).unwrap_err().rule, "name_too_long");
    }

    #[test]
    fn within() {
        let a = DomainName::new("a.com").unwrap();
        assert!(DomainName::new("www.a.com").unwrap().is_within(&a));
        assert!(a.is_within(&a));
        assert!(!DomainName::new("xa.com").unwrap().is_within(&a));
    }

    #[test]
    fn local_parts() {
        assert_eq!(
            LocalPart::new("John.Doe+tag").unwrap().as_str(),
            "john.doe+tag"
        );
        assert_eq!(LocalPart::new(".a").unwrap_err().rule, "bad_dots");
        assert_eq!(LocalPart::new("a b").unwrap_err().rule, "bad_character");
        // A mailbox is a folder named by its local part: no `/`.
        assert_eq!(LocalPart::new("a/b").unwrap_err().rule, "bad_character");
        assert_eq!(
            EmailAddress::new("a/b@example.com").unwrap_err().rule,
            "bad_character"
        );
        // ... but one stored before the rule still loads.
        assert_eq!(LocalPart::stored("a/b").unwrap().as_str(), "a/b");
        let loaded: LocalPart = serde_json::from_str("\"A/b\"").unwrap();
        assert_eq!(loaded.as_str(), "a/b");
        assert!(serde_json::from_str::<LocalPart>("\"../x\"").is_err());
        assert!(serde_json::from_str::<EmailAddress>("\"a/b@example.com\"").is_ok());
        assert_eq!(
            LocalPart::new(&"a".repeat(65)).unwrap_err().rule,
            "local_part_too_long"
        );
    }

    #[test]
    fn db_idents() {
        assert!(DbIdent::new("shop_db1").is_ok());
        assert_eq!(
            DbIdent::new("x; DROP TABLE y").unwrap_err().rule,
            "bad_character"
        );
        assert_eq!(DbIdent::new("pg_foo").unwrap_err().rule, "reserved");
        assert_eq!(
            DbIdent::new("Abc").unwrap_err().rule,
            "must_start_with_letter"
        );
        assert_eq!(DbIdent::new("a`b").unwrap_err().rule, "bad_character");
    }

    #[test]
    fn rel_paths() {
        assert_eq!(RelPath::new("/public/img/").unwrap().as_str(), "public/img");
        assert_eq!(RelPath::new("a/../b").unwrap_err().rule, "dot_segment");
        assert_eq!(RelPath::new("a//b").unwrap_err().rule, "empty_segment");
    }

    #[test]
    fn host_patterns_admit_one_leading_wildcard() {
        let w = DomainName::host_pattern("*.Example.com").unwrap();
        assert_eq!(w.as_str(), "*.example.com");
        assert!(w.is_wildcard());
        assert!(w.is_within(&DomainName::new("example.com").unwrap()));
        assert!(!DomainName::host_pattern("www.example.com")
            .unwrap()
            .is_wildcard());
        for bad in [
            "*.com",
            "a.*.example.com",
            "*.*.example.com",
            "*example.com",
            "*",
        ] {
            assert!(DomainName::host_pattern(bad).is_err(), "{bad}");
        }
        assert!(
            DomainName::new("*.example.com").is_err(),
            "domains stay plain"
        );
    }
}
