//! Before ordering, each name of a site is checked. For HTTP-01 it must resolve,
//! through the configured resolver, to addresses of the site's web cluster only,
//! or the CA's HTTP-01 request would land elsewhere (and count as a failed
//! validation against the CA's limits). For DNS-01 its zone must be delegated to
//! our name servers (the NS the resolver gives for the zone are ours), or the
//! CA would ask servers that never see the TXT. What DNS answers is observed at
//! the edge ([`observe`], [`observe_ns`]); the verdicts are pure ([`evaluate`],
//! [`evaluate_delegation`]). CAA is [`super::caa`]'s.

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
        return Err(format!(
            "{name} is a wildcard, which only DNS-01 validates (the site's challenge is http-01)"
        ));
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

/// Ask `resolver` for the NS records of `zone`: the name servers' names,
/// lowercase without the trailing dot.
pub async fn observe_ns(resolver: SocketAddr, zone: &str) -> Result<Vec<String>, String> {
    let qname = Name::from_ascii(format!("{}.", zone.trim_end_matches('.')))
        .map_err(|e| format!("`{zone}` is not a DNS name: {e}"))?;
    let msg = crate::dnsq::query(resolver, &qname, RecordType::NS)
        .await
        .map_err(|e| format!("the resolver {resolver} did not answer for {zone} NS: {e}"))?;
    match msg.metadata.response_code {
        ResponseCode::NoError => {}
        ResponseCode::NXDomain => return Ok(Vec::new()),
        rc => return Err(format!("the resolver answered {rc} for {zone} NS")),
    }
    Ok(msg
        .answers
        .iter()
        .filter_map(|r| match &r.data {
            RData::NS(ns) => Some(ns.0.to_ascii().trim_end_matches('.').to_ascii_lowercase()),
            _ => None,
        })
        .collect())
}

/// The verdict on `zone`'s delegation for DNS-01: `Ok` when the resolver gave
/// NS records, at least one of them is one of `ours` (the zone's DNS cluster's
/// host names), and the others are ours too unless the cluster has external
/// secondaries (whose names the platform does not know: they serve the zone by
/// transfer). Otherwise the reason. Pure.
pub fn evaluate_delegation(
    zone: &str,
    observed: &Result<Vec<String>, String>,
    ours: &BTreeSet<String>,
    external_secondaries: bool,
) -> Result<(), String> {
    let ns = observed.as_ref().map_err(Clone::clone)?;
    if ns.is_empty() {
        return Err(format!("{zone} is not delegated (no NS records)"));
    }
    let norm = |n: &str| n.trim_end_matches('.').to_ascii_lowercase();
    let (mine, foreign): (Vec<String>, Vec<String>) =
        ns.iter().map(|n| norm(n)).partition(|n| ours.contains(n));
    if mine.is_empty() {
        return Err(format!(
            "{zone} is delegated to {}, not to this platform's name servers",
            foreign.join(", ")
        ));
    }
    if !foreign.is_empty() && !external_secondaries {
        return Err(format!(
            "{zone} is delegated to {} too, which would not serve the challenge",
            foreign.join(", ")
        ));
    }
    Ok(())
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

    #[test]
    fn delegation_verdicts() {
        let ours: BTreeSet<String> =
            ["ns1.host.example".to_owned(), "ns2.host.example".to_owned()].into();
        let ns = |v: &[&str]| -> Result<Vec<String>, String> {
            Ok(v.iter().map(|s| s.to_string()).collect())
        };
        assert!(
            evaluate_delegation("a.example", &ns(&["NS1.host.example."]), &ours, false).is_ok()
        );
        let e = evaluate_delegation("a.example", &ns(&["ns.other.net"]), &ours, false).unwrap_err();
        assert!(e.contains("ns.other.net"), "{e}");
        let mixed = ns(&["ns1.host.example", "ns.other.net"]);
        assert!(evaluate_delegation("a.example", &mixed, &ours, false).is_err());
        assert!(
            evaluate_delegation("a.example", &mixed, &ours, true).is_ok(),
            "external secondary"
        );
        assert!(evaluate_delegation("a.example", &ns(&[]), &ours, true)
            .unwrap_err()
            .contains("not delegated"));
        assert_eq!(
            evaluate_delegation("a.example", &Err("timeout".into()), &ours, false).unwrap_err(),
            "timeout"
        );
    }
}
