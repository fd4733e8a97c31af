//! CAA before ordering (RFC 8659): a name whose CAA records do not authorise the
//! configured CA (`[acme] caa_identities`) is left out of the order rather than
//! failing it at the CA. The relevant RRset is the one at the closest name, from
//! the name itself up the tree, that has CAA records ([`observe`], at the edge,
//! through the configured resolver); the verdict on it is pure ([`evaluate`]).

use std::net::SocketAddr;

use hickory_proto::op::ResponseCode;
use hickory_proto::rr::{Name, RData, RecordType};

/// One CAA property as published.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Property {
    /// The issuer-critical flag (bit 128).
    pub critical: bool,
    /// The tag, lowercase (`issue`, `issuewild`, `iodef` …).
    pub tag: String,
    /// The value as text.
    pub value: String,
}

/// The relevant CAA RRset of a name: where it was found and its properties;
/// `None` when no name up the tree has CAA records (any CA may issue).
pub type Relevant = Option<(String, Vec<Property>)>;

/// Climb from `name` (a wildcard's base name) towards the root, asking
/// `resolver` for CAA at each name; the first non-empty RRset is the relevant
/// one. A name that does not exist or has none passes the question up; a
/// `REFUSED` answer (an authoritative server used as the resolver, asked about
/// a name outside its zones) counts as none; any other error stops the climb,
/// since a CA must not issue when the lookup fails (RFC 8659 section 4.1).
pub async fn observe(resolver: SocketAddr, name: &str) -> Result<Relevant, String> {
    let base = name
        .strip_prefix("*.")
        .unwrap_or(name)
        .trim_end_matches('.');
    let labels: Vec<&str> = base.split('.').collect();
    for i in 0..labels.len() {
        let candidate = labels[i..].join(".");
        let qname = Name::from_ascii(format!("{candidate}."))
            .map_err(|e| format!("`{candidate}` is not a DNS name: {e}"))?;
        let msg = crate::dnsq::query(resolver, &qname, RecordType::CAA)
            .await
            .map_err(|e| {
                format!("CAA of {candidate}: the resolver {resolver} did not answer: {e}")
            })?;
        match msg.metadata.response_code {
            ResponseCode::NoError | ResponseCode::NXDomain | ResponseCode::Refused => {}
            rc => return Err(format!("CAA of {candidate}: the resolver answered {rc}")),
        }
        let props: Vec<Property> = msg
            .answers
            .iter()
            .filter_map(|r| match &r.data {
                RData::CAA(c) => Some(Property {
                    critical: c.issuer_critical,
                    tag: c.tag.to_ascii_lowercase(),
                    value: String::from_utf8_lossy(&c.value).into_owned(),
                }),
                _ => None,
            })
            .collect();
        if !props.is_empty() {
            return Ok(Some((candidate, props)));
        }
    }
    Ok(None)
}

/// The issuer domain of an `issue`/`issuewild` value (`letsencrypt.org;
/// validationmethods=dns-01` gives `letsencrypt.org`; `;` alone gives an empty
/// one: nobody).
fn issuer_of(value: &str) -> String {
    value
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .trim_end_matches('.')
        .to_ascii_lowercase()
}

/// The verdict on `name` (a wildcard when it starts with `*.`) given its
/// relevant CAA RRset and the CA's identities (issuer domains, e.g.
/// `letsencrypt.org`): `Ok` when the CA may issue, else the reason. Pure.
///
/// RFC 8659: no RRset, or one with neither `issue` nor `issuewild`, lets any CA
/// issue; for a wildcard, `issuewild` properties when there are any, else
/// `issue`; a critical property of a tag not understood forbids issuance.
pub fn evaluate(name: &str, relevant: &Relevant, identities: &[String]) -> Result<(), String> {
    let Some((at, props)) = relevant else {
        return Ok(());
    };
    let known = [
        "issue",
        "issuewild",
        "iodef",
        "issuemail",
        "contactemail",
        "contactphone",
    ];
    if let Some(p) = props
        .iter()
        .find(|p| p.critical && !known.contains(&p.tag.as_str()))
    {
        return Err(format!(
            "CAA at {at} has a critical `{}` property this platform does not understand",
            p.tag
        ));
    }
    let wildcard = name.starts_with("*.");
    let of = |tag: &str| props.iter().filter(|p| p.tag == tag).collect::<Vec<_>>();
    let wild = of("issuewild");
    let set = match (wildcard, wild.is_empty()) {
        (true, false) => wild,
        _ => of("issue"),
    };
    if set.is_empty() {
        return Ok(());
    }
    let allowed: Vec<String> = set.iter().map(|p| issuer_of(&p.value)).collect();
    if allowed.iter().any(|a| {
        !a.is_empty()
            && identities
                .iter()
                .any(|i| i.trim_end_matches('.').eq_ignore_ascii_case(a))
    }) {
        return Ok(());
    }
    let named: Vec<&str> = allowed
        .iter()
        .filter(|a| !a.is_empty())
        .map(String::as_str)
        .collect();
    Err(format!(
        "CAA at {at} does not allow this CA ({}) to issue{} for {name}: {}",
        identities.join(", "),
        if wildcard { " wildcards" } else { "" },
        if named.is_empty() {
            "no CA may".to_owned()
        } else {
            format!("only {}", named.join(", "))
        }
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(critical: bool, tag: &str, value: &str) -> Property {
        Property {
            critical,
            tag: tag.into(),
            value: value.into(),
        }
    }

    fn at(props: Vec<Property>) -> Relevant {
        Some(("a.example".into(), props))
    }

    #[test]
    fn issue_and_issuewild_rules() {
        let le = vec!["letsencrypt.org".to_owned()];
        assert!(evaluate("a.example", &None, &le).is_ok(), "no CAA: anyone");
        assert!(evaluate(
            "a.example",
            &at(vec![p(false, "iodef", "mailto:x@a.example")]),
            &le
        )
        .is_ok());
        let only_le = at(vec![p(false, "issue", "letsencrypt.org")]);
        assert!(evaluate("a.example", &only_le, &le).is_ok());
        assert!(
            evaluate("*.a.example", &only_le, &le).is_ok(),
            "issue covers wildcards"
        );
        let other = at(vec![p(
            false,
            "issue",
            "pki.goog; validationmethods=dns-01",
        )]);
        let e = evaluate("a.example", &other, &le).unwrap_err();
        assert!(
            e.contains("only pki.goog") && e.contains("a.example"),
            "{e}"
        );
        let with_params = at(vec![p(false, "issue", " LetsEncrypt.org. ; accounturi=x")]);
        assert!(evaluate("a.example", &with_params, &le).is_ok());
        let nobody = at(vec![p(false, "issue", ";")]);
        assert!(evaluate("a.example", &nobody, &le)
            .unwrap_err()
            .contains("no CA may"));
        // issuewild governs wildcards only, and wins over issue for them.
        let split = at(vec![
            p(false, "issue", "letsencrypt.org"),
            p(false, "issuewild", ";"),
        ]);
        assert!(evaluate("a.example", &split, &le).is_ok());
        assert!(evaluate("*.a.example", &split, &le).is_err());
        let wild_only = at(vec![p(false, "issuewild", "letsencrypt.org")]);
        assert!(evaluate("*.a.example", &wild_only, &le).is_ok());
        assert!(
            evaluate("a.example", &wild_only, &le).is_ok(),
            "no issue: anyone"
        );
        // Critical unknown tags forbid; non-critical ones are ignored.
        assert!(evaluate("a.example", &at(vec![p(true, "future", "x")]), &le).is_err());
        assert!(evaluate("a.example", &at(vec![p(false, "future", "x")]), &le).is_ok());
        assert!(
            evaluate("a.example", &only_le, &[]).is_err(),
            "no identity matches"
        );
    }

    #[test]
    fn issuer_domain_parse() {
        assert_eq!(issuer_of("ca.example; a=b"), "ca.example");
        assert_eq!(issuer_of(""), "");
        assert_eq!(issuer_of(";"), "");
    }

    mod props {
        use super::super::*;
        use proptest::prelude::*;

        fn prop() -> impl Strategy<Value = Property> {
            (
                any::<bool>(),
                prop_oneof![
                    Just("issue".to_owned()),
                    Just("issuewild".to_owned()),
                    Just("iodef".to_owned()),
                    "[a-z]{1,8}",
                ],
                prop_oneof![
                    Just("ca.example".to_owned()),
                    Just("other.example; a=b".to_owned()),
                    Just(";".to_owned()),
                    "[ -~]{0,20}",
                ],
            )
                .prop_map(|(critical, tag, value)| Property {
                    critical,
                    tag,
                    value,
                })
        }

        proptest! {
            /// Never panics; a non-critical property of an unknown tag never
            /// changes the verdict; a CA named by every `issue`/`issuewild`
            /// value is allowed unless a critical unknown tag forbids.
            #[test]
            fn verdict_invariants(props in prop::collection::vec(prop(), 0..6), wild in any::<bool>()) {
                let name = if wild { "*.a.example" } else { "a.example" };
                let ids = vec!["ca.example".to_owned()];
                let rel: Relevant = Some(("a.example".into(), props.clone()));
                let v = evaluate(name, &rel, &ids);
                let mut more = props.clone();
                more.push(Property { critical: false, tag: "zzunknown".into(), value: "x".into() });
                prop_assert_eq!(v.is_ok(), evaluate(name, &Some(("a.example".into(), more)), &ids).is_ok());
                let all: Vec<String> = props
                    .iter()
                    .filter(|p| p.tag == "issue" || p.tag == "issuewild")
                    .map(|p| issuer_of(&p.value))
                    .filter(|i| !i.is_empty())
                    .collect();
                let critical_unknown = props.iter().any(|p| {
                    p.critical
                        && !["issue", "issuewild", "iodef", "issuemail", "contactemail", "contactphone"]
                            .contains(&p.tag.as_str())
                });
                if !critical_unknown && !props.iter().any(|p| (p.tag == "issue" || p.tag == "issuewild") && issuer_of(&p.value).is_empty()) {
                    let mut every = all.clone();
                    every.push("ca.example".into());
                    prop_assert!(evaluate(name, &rel, &every).is_ok());
                }
            }
        }
    }
}
