//! Before ordering, each name of a site is checked: it must resolve, through the
//! configured resolver, to addresses of the site's web cluster only, or the CA's
//! HTTP-01 request would land elsewhere (and count as a failed validation against
//! the CA's limits). What DNS answers is observed at the edge ([`observe`]); the
//! verdict is pure ([`evaluate`]).

use std::collections::BTreeSet;
use std::net::{IpAddr, SocketAddr};

use hickory_proto::op::ResponseCode;
use hickory_proto::rr::{Name, RData, RecordType};

/// What the resolver said about one name: its addresses (A and AAAA), or why
/// there are none to judge.
pub type Observed = Result<Vec<IpAddr>, String>;

/// Ask `resolver` for the A and AAAA records of `name` (CNAMEs followed by the
/// resolver; an authoritative server answers with the chain it holds).
pub async fn observe(resolver: SocketAddr, name: &str) -> Observed {
    let qname = Name::from_ascii(format!("{}.", name.trim_end_matches('.')))
        .map_err(|e| format!("`{name}` is not a DNS name: {e}"))?;
    let mut out = Vec::new();
    for rtype in [RecordType::A, RecordType::AAAA] {
        let msg = crate::dnsq::query(resolver, &qname, rtype)
            .await
            .map_err(|e| format!("the resolver {resolver} did not answer for {name}: {e}"))?;
        match msg.metadata.response_code {
            ResponseCode::NoError => {}
            ResponseCode::NXDomain => return Ok(Vec::new()),
            rc => return Err(format!("the resolver answered {rc} for {name} {rtype}")),
        }
        out.extend(msg.answers.iter().filter_map(|r| match &r.data {
            RData::A(a) => Some(IpAddr::V4(a.0)),
            RData::AAAA(a) => Some(IpAddr::V6(a.0)),
            _ => None,
        }));
    }
    Ok(out)
}

/// The verdict on one name: `Ok` when it resolves to at least one address and
/// every address is one of `published` (the site's web servers); otherwise the
/// reason, for the site's status.
pub fn evaluate(
    name: &str,
    observed: &Observed,
    published: &BTreeSet<IpAddr>,
) -> Result<(), String> {
    if name.starts_with("*.") {
        return Err("a wildcard name needs DNS-01, which is not offered yet".into());
    }
    let addrs = observed.as_ref().map_err(Clone::clone)?;
    if addrs.is_empty() {
        return Err(format!("{name} does not resolve (no A or AAAA record)"));
    }
    let foreign: Vec<String> = addrs
        .iter()
        .filter(|a| !published.contains(a))
        .map(ToString::to_string)
        .collect();
    if foreign.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "{name} resolves to {}, not to this site's web servers",
            foreign.join(", ")
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verdicts() {
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        let published: BTreeSet<IpAddr> = [ip("192.0.2.1"), ip("192.0.2.2")].into();
        assert!(evaluate("a.example", &Ok(vec![ip("192.0.2.2")]), &published).is_ok());
        let e = evaluate(
            "a.example",
            &Ok(vec![ip("192.0.2.1"), ip("198.51.100.7")]),
            &published,
        )
        .unwrap_err();
        assert!(e.contains("198.51.100.7"), "{e}");
        let e = evaluate("a.example", &Ok(vec![]), &published).unwrap_err();
        assert!(e.contains("does not resolve"), "{e}");
        let e = evaluate("a.example", &Err("timeout".into()), &published).unwrap_err();
        assert_eq!(e, "timeout");
        assert!(evaluate("*.a.example", &Ok(vec![ip("192.0.2.1")]), &published).is_err());
    }
}
