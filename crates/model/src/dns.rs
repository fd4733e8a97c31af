//! Customer DNS records: owner names relative to the zone, typed record data with
//! per-type validation, and the coexistence rules between records at one name
//! (CNAME alone, delegations hold only NS and glue).

use serde::{Deserialize, Deserializer, Serialize};
use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr};

use crate::names::{check_label, MAX_DOMAIN_LEN};
use crate::{DomainName, Invalid};

/// Owner name of a record relative to its zone: `@` for the apex, otherwise labels
/// such as `www`, `_sip._tcp` or `*.dev` (a wildcard only as the leftmost label).
/// Stored lowercase in A-label form.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct RecordName(String);

impl RecordName {
    /// The zone apex.
    pub fn apex() -> Self {
        Self("@".into())
    }

    /// Validate a relative owner name. A name ending in a dot is taken as absolute
    /// and must lie inside `zone` when one is given.
    pub fn new(input: &str) -> Result<Self, Invalid> {
        let s = input.trim();
        if s.is_empty() || s == "@" {
            return Ok(Self::apex());
        }
        if s.ends_with('.') {
            return Err(Invalid::new(
                "absolute_name",
                "write the record name relative to the domain (`www`, not `www.example.com.`); use `@` for the domain itself",
            ));
        }
        let mut out = Vec::new();
        for (i, label) in s.split('.').enumerate() {
            if label == "*" {
                if i != 0 {
                    return Err(Invalid::new(
                        "bad_wildcard",
                        "`*` is only allowed as the leftmost label",
                    ));
                }
                out.push("*".to_owned());
                continue;
            }
            let ascii = if label.is_ascii() {
                label.to_ascii_lowercase()
            } else {
                idna::domain_to_ascii_strict(label).map_err(|_| {
                    Invalid::new("bad_idna", format!("label `{label}` is not valid IDNA"))
                })?
            };
            check_label(&ascii, true)?;
            out.push(ascii);
        }
        Ok(Self(out.join(".")))
    }

    /// `@` or the relative labels.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// True for the zone apex.
    pub fn is_apex(&self) -> bool {
        self.0 == "@"
    }

    /// The absolute name inside `zone`, without trailing dot.
    pub fn absolute(&self, zone: &DomainName) -> String {
        if self.is_apex() {
            zone.to_string()
        } else {
            format!("{}.{}", self.0, zone)
        }
    }

    /// True if `self` is strictly below `other` (both relative to one zone).
    pub fn is_below(&self, other: &RecordName) -> bool {
        if other.is_apex() {
            return !self.is_apex();
        }
        self.0.len() > other.0.len()
            && self.0.ends_with(&other.0)
            && self.0.as_bytes()[self.0.len() - other.0.len() - 1] == b'.'
    }

    /// Check the name fits inside `zone` within the 253-octet limit.
    pub fn check_in_zone(&self, zone: &DomainName) -> Result<(), Invalid> {
        let len = self.absolute(zone).len();
        if len > MAX_DOMAIN_LEN {
            return Err(Invalid::new(
                "name_too_long",
                format!(
                    "`{}` is {len} characters with the domain; at most {MAX_DOMAIN_LEN}",
                    self.0
                ),
            ));
        }
        Ok(())
    }
}

impl fmt::Display for RecordName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for RecordName {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Self::new(&s).map_err(serde::de::Error::custom)
    }
}

/// A target host name in record data (CNAME, MX, SRV, NS). Absolute, any domain.
/// `.` (the root) is allowed only where the record type gives it meaning (null MX,
/// "no service" SRV); see [`RecordData::validate`].
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct Target(String);

impl Target {
    /// Validate a target host name; a trailing dot is optional; `.` is the root.
    pub fn new(input: &str) -> Result<Self, Invalid> {
        let s = input.trim();
        if s == "." {
            return Ok(Self(".".into()));
        }
        let stripped = s.strip_suffix('.').unwrap_or(s);
        if stripped.is_empty() {
            return Err(Invalid::new("empty", "a target host name is required"));
        }
        let ascii = if stripped.is_ascii() {
            stripped.to_ascii_lowercase()
        } else {
            idna::domain_to_ascii_strict(stripped).map_err(|_| {
                Invalid::new(
                    "bad_idna",
                    format!("`{stripped}` is not a valid domain name"),
                )
            })?
        };
        crate::names::check_ldh_name(&ascii, true)?;
        if !ascii.contains('.') {
            return Err(Invalid::new(
                "not_fully_qualified",
                format!(
                    "target `{stripped}` must be a fully qualified name such as mail.example.com"
                ),
            ));
        }
        Ok(Self(ascii))
    }

    /// The name without trailing dot, or `.` for the root.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// True for the root name `.`.
    pub fn is_root(&self) -> bool {
        self.0 == "."
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for Target {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Self::new(&s).map_err(serde::de::Error::custom)
    }
}

/// Longest TXT value we accept in total (rendered as 255-octet strings).
pub const MAX_TXT_LEN: usize = 4000;

/// Typed data of a customer record. Serialised as `{"type": "MX", "preference": 10, ...}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", deny_unknown_fields)]
pub enum RecordData {
    /// IPv4 address.
    A {
        /// The address.
        address: Ipv4Addr,
    },
    /// IPv6 address.
    #[serde(rename = "AAAA")]
    Aaaa {
        /// The address.
        address: Ipv6Addr,
    },
    /// Alias of another name; must be alone at its name and not at the apex.
    #[serde(rename = "CNAME")]
    Cname {
        /// The canonical name.
        target: Target,
    },
    /// Mail exchanger.
    #[serde(rename = "MX")]
    Mx {
        /// Lower is preferred.
        preference: u16,
        /// Mail server host name, or `.` for a null MX (RFC 7505, preference 0).
        exchange: Target,
    },
    /// Text (SPF, site verification, ...). Printable ASCII, at most 4000 characters.
    #[serde(rename = "TXT")]
    Txt {
        /// The text; split into 255-octet strings when rendered.
        text: String,
    },
    /// Service location (RFC 2782). The name should look like `_service._proto`.
    #[serde(rename = "SRV")]
    Srv {
        /// Lower is preferred.
        priority: u16,
        /// Relative weight among equal priorities.
        weight: u16,
        /// TCP/UDP port.
        port: u16,
        /// Host name, or `.` when the service is decidedly not available.
        target: Target,
    },
    /// Certification authority authorisation (RFC 8659).
    #[serde(rename = "CAA")]
    Caa {
        /// 0, or 128 for critical.
        flags: u8,
        /// `issue`, `issuewild`, `iodef`, or another lowercase alphanumeric tag.
        tag: String,
        /// The property value, e.g. `letsencrypt.org`.
        value: String,
    },
    /// Delegation of a subdomain to other name servers (not allowed at the apex).
    #[serde(rename = "NS")]
    Ns {
        /// Name server host name.
        target: Target,
    },
}

impl RecordData {
    /// The record type mnemonic.
    pub fn rtype(&self) -> &'static str {
        match self {
            RecordData::A { .. } => "A",
            RecordData::Aaaa { .. } => "AAAA",
            RecordData::Cname { .. } => "CNAME",
            RecordData::Mx { .. } => "MX",
            RecordData::Txt { .. } => "TXT",
            RecordData::Srv { .. } => "SRV",
            RecordData::Caa { .. } => "CAA",
            RecordData::Ns { .. } => "NS",
        }
    }

    /// Rules of the data itself, independent of other records. Returns the sub-field
    /// and the failure.
    pub fn validate(&self, name: &RecordName) -> Result<(), (&'static str, Invalid)> {
        match self {
            RecordData::A { address } => {
                if address.is_unspecified() || address.is_broadcast() || address.is_multicast() {
                    return Err((
                        "address",
                        Invalid::new("bad_address", format!("{address} cannot be a host address")),
                    ));
                }
            }
            RecordData::Aaaa { address } => {
                if address.is_unspecified() || address.is_multicast() {
                    return Err((
                        "address",
                        Invalid::new("bad_address", format!("{address} cannot be a host address")),
                    ));
                }
            }
            RecordData::Cname { target } => {
                if name.is_apex() {
                    return Err(("name", Invalid::new("cname_at_apex", "a CNAME cannot be at the domain itself (@): it would hide the SOA and NS records")));
                }
                if target.is_root() {
                    return Err((
                        "target",
                        Invalid::new("root_target", "a CNAME target cannot be the root"),
                    ));
                }
            }
            RecordData::Mx {
                preference,
                exchange,
            } => {
                if exchange.is_root() && *preference != 0 {
                    return Err((
                        "preference",
                        Invalid::new(
                            "null_mx_preference",
                            "a null MX (exchange `.`) must have preference 0 (RFC 7505)",
                        ),
                    ));
                }
            }
            RecordData::Txt { text } => {
                if text.is_empty() {
                    return Err(("text", Invalid::new("empty", "TXT text cannot be empty")));
                }
                if text.len() > MAX_TXT_LEN {
                    return Err((
                        "text",
                        Invalid::new(
                            "too_long",
                            format!("TXT text is at most {MAX_TXT_LEN} characters"),
                        ),
                    ));
                }
                if !text.bytes().all(|b| (0x20..0x7f).contains(&b)) {
                    return Err((
                        "text",
                        Invalid::new("bad_character", "TXT text must be printable ASCII"),
                    ));
                }
            }
            RecordData::Srv { target, .. } => {
                let _ = target;
                let first = name.as_str().split('.').next().unwrap_or_default();
                if !first.starts_with('_') {
                    return Err((
                        "name",
                        Invalid::new(
                            "srv_name",
                            "an SRV record name looks like `_service._proto`, e.g. `_sip._tcp`",
                        ),
                    ));
                }
            }
            RecordData::Caa { flags, tag, value } => {
                if *flags != 0 && *flags != 128 {
                    return Err((
                        "flags",
                        Invalid::new("bad_flags", "CAA flags are 0 or 128 (critical)"),
                    ));
                }
                if tag.is_empty()
                    || tag.len() > 15
                    || !tag
                        .bytes()
                        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
                {
                    return Err(("tag", Invalid::new("bad_tag", "a CAA tag is 1-15 lowercase letters or digits, e.g. issue, issuewild, iodef")));
                }
                if value.len() > 255 || !value.bytes().all(|b| (0x20..0x7f).contains(&b)) {
                    return Err((
                        "value",
                        Invalid::new(
                            "bad_value",
                            "a CAA value is at most 255 printable ASCII characters",
                        ),
                    ));
                }
            }
            RecordData::Ns { target } => {
                if name.is_apex() {
                    return Err(("name", Invalid::new("ns_at_apex", "NS records at the domain itself come from its DNS cluster; NS records here delegate a subdomain")));
                }
                if target.is_root() {
                    return Err((
                        "target",
                        Invalid::new("root_target", "an NS target cannot be the root"),
                    ));
                }
                if name.as_str().starts_with('*') {
                    return Err((
                        "name",
                        Invalid::new("ns_wildcard", "a delegation cannot be a wildcard"),
                    ));
                }
            }
        }
        Ok(())
    }
}

/// Check that adding `new` at `name` to the zone's existing custom records keeps the
/// zone consistent: a CNAME is alone at its name (RFC 1034 §3.6.2); a delegated name
/// (NS) holds only NS records and nothing below it but address (glue) records.
/// `existing` must not contain the record being replaced on update.
pub fn check_coexistence(
    existing: &[(RecordName, RecordData)],
    name: &RecordName,
    new: &RecordData,
) -> Result<(), Invalid> {
    let at_name: Vec<&RecordData> = existing
        .iter()
        .filter(|(n, _)| n == name)
        .map(|(_, d)| d)
        .collect();
    let is_cname = matches!(new, RecordData::Cname { .. });
    if is_cname && !at_name.is_empty() {
        return Err(Invalid::new(
            "cname_conflict",
            format!("`{name}` already has records; a CNAME must be the only record at its name"),
        ));
    }
    if !is_cname
        && at_name
            .iter()
            .any(|d| matches!(d, RecordData::Cname { .. }))
    {
        return Err(Invalid::new(
            "cname_conflict",
            format!("`{name}` has a CNAME; no other record can be at that name"),
        ));
    }
    let is_ns = matches!(new, RecordData::Ns { .. });
    if is_ns && at_name.iter().any(|d| !matches!(d, RecordData::Ns { .. })) {
        return Err(Invalid::new(
            "delegation_conflict",
            format!("`{name}` has other records; a delegated name holds only NS records"),
        ));
    }
    if !is_ns && at_name.iter().any(|d| matches!(d, RecordData::Ns { .. })) {
        return Err(Invalid::new(
            "delegation_conflict",
            format!("`{name}` is delegated (NS); only NS records can be added there"),
        ));
    }
    // Below a delegation: only glue.
    let is_glue = matches!(new, RecordData::A { .. } | RecordData::Aaaa { .. });
    for (n, d) in existing {
        if matches!(d, RecordData::Ns { .. }) && name.is_below(n) && !is_glue {
            return Err(Invalid::new(
                "below_delegation",
                format!(
                    "`{name}` is inside the delegated `{n}`; only glue (A/AAAA) can be added there"
                ),
            ));
        }
        if is_ns && n.is_below(name) && !matches!(d, RecordData::A { .. } | RecordData::Aaaa { .. })
        {
            return Err(Invalid::new(
                "delegation_conflict",
                format!("`{n}` below `{name}` has records that a delegation would hide"),
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn n(s: &str) -> RecordName {
        RecordName::new(s).unwrap()
    }
    fn cname(t: &str) -> RecordData {
        RecordData::Cname {
            target: Target::new(t).unwrap(),
        }
    }
    fn a() -> RecordData {
        RecordData::A {
            address: Ipv4Addr::new(192, 0, 2, 1),
        }
    }

    #[test]
    fn names() {
        assert!(n("@").is_apex());
        assert_eq!(n("WWW").as_str(), "www");
        assert_eq!(n("*.dev").as_str(), "*.dev");
        assert_eq!(RecordName::new("a.*").unwrap_err().rule, "bad_wildcard");
        assert_eq!(n("_sip._tcp").as_str(), "_sip._tcp");
        assert!(n("a.b").is_below(&n("b")));
        assert!(!n("ab").is_below(&n("b")));
    }

    #[test]
    fn cname_is_alone() {
        let existing = vec![(n("www"), a())];
        assert_eq!(
            check_coexistence(&existing, &n("www"), &cname("x.example.net"))
                .unwrap_err()
                .rule,
            "cname_conflict"
        );
        let existing = vec![(n("www"), cname("x.example.net"))];
        assert_eq!(
            check_coexistence(&existing, &n("www"), &a())
                .unwrap_err()
                .rule,
            "cname_conflict"
        );
        assert!(check_coexistence(&existing, &n("other"), &a()).is_ok());
    }

    #[test]
    fn delegation() {
        let ns = RecordData::Ns {
            target: Target::new("ns1.other.net").unwrap(),
        };
        let existing = vec![(n("sub"), ns.clone())];
        assert!(check_coexistence(&existing, &n("ns.sub"), &a()).is_ok());
        let txt = RecordData::Txt { text: "x".into() };
        assert_eq!(
            check_coexistence(&existing, &n("x.sub"), &txt)
                .unwrap_err()
                .rule,
            "below_delegation"
        );
        assert_eq!(
            check_coexistence(&existing, &n("sub"), &txt)
                .unwrap_err()
                .rule,
            "delegation_conflict"
        );
        assert_eq!(ns.validate(&n("@")).unwrap_err().1.rule, "ns_at_apex");
    }

    #[test]
    fn data_rules() {
        assert_eq!(
            cname("a.example.com").validate(&n("@")).unwrap_err().1.rule,
            "cname_at_apex"
        );
        let mx = RecordData::Mx {
            preference: 10,
            exchange: Target::new(".").unwrap(),
        };
        assert_eq!(
            mx.validate(&n("@")).unwrap_err().1.rule,
            "null_mx_preference"
        );
        let json = r#"{"type":"MX","preference":10,"exchange":"mx.example.com"}"#;
        let d: RecordData = serde_json::from_str(json).unwrap();
        assert_eq!(d.rtype(), "MX");
        assert!(
            serde_json::from_str::<RecordData>(r#"{"type":"A","address":"1.2.3.4","x":1}"#)
                .is_err()
        );
    }
}
