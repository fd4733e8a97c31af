//! Pure name resolution: a question (name, type) and a [`ZoneSet`] in, the rcode and
//! the three record sections out ([`resolve`]). The request's bytes, EDNS0, size
//! limits, transfers and NOTIFY are [`crate::request`]'s.
//!
//! Nothing here touches a socket, so every behaviour (NXDOMAIN vs NODATA, referrals,
//! wildcards, CNAME chains, additional addresses) is unit-tested directly.

use hickory_proto::op::ResponseCode;
use hickory_proto::rr::{Name, RData, Record, RecordType};

use crate::zone::{Node, Zone, ZoneSet};

/// Longest CNAME chain followed inside a zone.
const MAX_CNAME_CHAIN: usize = 16;

/// The outcome of looking a name up: the rcode and the three record sections.
#[derive(Clone, Debug, PartialEq)]
pub struct Resolution {
    /// Response code (NOERROR, NXDOMAIN or REFUSED).
    pub rcode: ResponseCode,
    /// Whether the AA flag is set (false for referrals and refusals).
    pub authoritative: bool,
    /// The answer section.
    pub answers: Vec<Record>,
    /// The authority section (SOA for negative answers, NS for referrals).
    pub authorities: Vec<Record>,
    /// The additional section (in-zone addresses of NS/MX/SRV targets, glue).
    pub additionals: Vec<Record>,
}

impl Resolution {
    fn new(rcode: ResponseCode, authoritative: bool) -> Self {
        Self {
            rcode,
            authoritative,
            answers: Vec::new(),
            authorities: Vec::new(),
            additionals: Vec::new(),
        }
    }
}

/// What one name yields inside one zone.
enum Found {
    /// RRset(s) answering the question, owners already set to the looked-up name.
    Records(Vec<Record>),
    /// A CNAME (owner set) to follow.
    Cname(Box<Record>),
    /// The name is at or below a zone cut: the delegation's NS RRset.
    Referral(Vec<Record>),
    /// The name exists but has no data of this type.
    NoData,
    /// The name does not exist and no wildcard covers it.
    NxDomain,
}

pub(crate) fn fqdn(mut name: Name) -> Name {
    name.set_fqdn(true);
    name
}

fn from_node(node: &Node, owner: &Name, qtype: RecordType) -> Found {
    if qtype == RecordType::ANY {
        let all: Vec<Record> = node.rrsets().flat_map(|s| s.records(owner)).collect();
        return if all.is_empty() {
            Found::NoData
        } else {
            Found::Records(all)
        };
    }
    if let Some(rrset) = node.get(qtype) {
        return Found::Records(rrset.records(owner));
    }
    if let Some(cname) = node
        .get(RecordType::CNAME)
        .and_then(|c| c.records(owner).into_iter().next())
    {
        return Found::Cname(Box::new(cname));
    }
    Found::NoData
}

/// Looks `name` (inside `zone`) up: zone cuts first, then the exact node, then the
/// wildcard at the closest encloser (RFC 4592 §3.3.1).
fn find_in_zone(zone: &Zone, name: &Name, qtype: RecordType) -> Found {
    let origin_labels = usize::from(zone.origin().num_labels());
    let labels = usize::from(name.num_labels());
    let mut closest_encloser = zone.origin().clone();
    let mut exact = labels == origin_labels;
    for n in origin_labels + 1..=labels {
        let candidate = fqdn(name.trim_to(n));
        let Some((owner, node)) = zone.named_node(&candidate) else {
            break;
        };
        // NS below the apex is a zone cut; DS for the cut itself is parent-side data.
        if let Some(ns) = node.get(RecordType::NS) {
            if !(n == labels && qtype == RecordType::DS) {
                return Found::Referral(ns.records(owner));
            }
        }
        closest_encloser = candidate;
        exact = n == labels;
    }
    if exact {
        return match zone.node(name) {
            Some(node) => from_node(node, name, qtype),
            None => Found::NxDomain,
        };
    }
    match closest_encloser
        .prepend_label("*")
        .ok()
        .and_then(|wild| zone.node(&fqdn(wild)))
    {
        Some(node) => from_node(node, name, qtype),
        None => Found::NxDomain,
    }
}

/// The name an NS, MX or SRV record points at.
fn target(record: &Record) -> Option<&Name> {
    match &record.data {
        RData::NS(ns) => Some(&ns.0),
        RData::MX(mx) => Some(&mx.exchange),
        RData::SRV(srv) => Some(&srv.target),
        _ => None,
    }
}

/// Adds the in-zone A/AAAA records of every NS/MX/SRV target in `records`.
fn add_additionals(zone: &Zone, records: &[Record], additionals: &mut Vec<Record>) {
    for target in records.iter().filter_map(target) {
        if !zone.origin().zone_of(target) {
            continue;
        }
        let Some((owner, node)) = zone.named_node(target) else {
            continue;
        };
        for rtype in [RecordType::A, RecordType::AAAA] {
            for record in node
                .get(rtype)
                .map(|s| s.records(owner))
                .unwrap_or_default()
            {
                if !additionals.contains(&record) {
                    additionals.push(record);
                }
            }
        }
    }
}

/// Answers `qname`/`qtype` (class IN) from `zones`.
pub fn resolve(zones: &ZoneSet, qname: &Name, qtype: RecordType) -> Resolution {
    let qname = fqdn(qname.clone());
    let Some(zone) = zones.find(&qname) else {
        // A secondary zone we hold no (unexpired) copy of: SERVFAIL, not REFUSED.
        let rcode = match zones.find_meta(&qname) {
            Some((_, meta)) if meta.unavailable => ResponseCode::ServFail,
            _ => ResponseCode::Refused,
        };
        return Resolution::new(rcode, false);
    };
    let mut res = Resolution::new(ResponseCode::NoError, true);
    let mut name = qname;
    let mut visited: Vec<Name> = Vec::new();
    for _ in 0..MAX_CNAME_CHAIN {
        match find_in_zone(zone, &name, qtype) {
            Found::Records(records) => {
                add_additionals(zone, &records, &mut res.additionals);
                res.answers.extend(records);
                return res;
            }
            Found::Cname(cname) => {
                let next = match &cname.data {
                    RData::CNAME(c) => fqdn(c.0.clone()),
                    _ => return res,
                };
                res.answers.push(*cname);
                visited.push(name);
                if !zone.origin().zone_of(&next) || visited.contains(&next) {
                    return res;
                }
                name = next;
            }
            Found::Referral(ns) => {
                // A chain that runs into a delegation stops at the last CNAME.
                if res.answers.is_empty() {
                    res.authoritative = false;
                    add_additionals(zone, &ns, &mut res.additionals);
                    res.authorities = ns;
                }
                return res;
            }
            Found::NoData => {
                res.authorities.push(zone.negative_soa());
                return res;
            }
            Found::NxDomain => {
                // RFC 6604: the rcode describes the last name in the chain.
                res.rcode = ResponseCode::NXDomain;
                res.authorities.push(zone.negative_soa());
                return res;
            }
        }
    }
    res
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::zone::{RecordLine, ZoneData};

    pub(crate) fn line(name: &str, ttl: u32, rtype: &str, rdata: &str) -> RecordLine {
        RecordLine {
            name: name.into(),
            ttl,
            rtype: rtype.into(),
            rdata: rdata.into(),
        }
    }

    pub(crate) fn example_com() -> ZoneData {
        let o = "example.com.";
        ZoneData {
            origin: o.into(),
            serial: 7,
            records: vec![
                line(
                    o,
                    3600,
                    "SOA",
                    "ns1.example.com. hostmaster.example.com. 1 7200 900 1209600 300",
                ),
                line(o, 3600, "NS", "ns1.example.com."),
                line(o, 3600, "NS", "ns.other.net."),
                line(o, 60, "A", "192.0.2.1"),
                line(o, 300, "MX", "10 mail.example.com."),
                line("ns1.example.com.", 3600, "A", "192.0.2.53"),
                line("mail.example.com.", 300, "A", "192.0.2.25"),
                line("mail.example.com.", 300, "AAAA", "2001:db8::25"),
                line("www.example.com.", 300, "CNAME", "web.example.com."),
                line("web.example.com.", 300, "CNAME", "example.com."),
                line("loop1.example.com.", 300, "CNAME", "loop2.example.com."),
                line("loop2.example.com.", 300, "CNAME", "loop1.example.com."),
                line("dangling.example.com.", 300, "CNAME", "gone.example.com."),
                line("out.example.com.", 300, "CNAME", "www.example.org."),
                line("a.b.c.example.com.", 300, "A", "192.0.2.9"),
                line("*.wild.example.com.", 120, "A", "192.0.2.77"),
                line("*.wild.example.com.", 120, "TXT", "\"wild\""),
                line("exists.wild.example.com.", 120, "TXT", "\"real\""),
                line("sub.example.com.", 3600, "NS", "ns.sub.example.com."),
                line("sub.example.com.", 3600, "NS", "ns.elsewhere.net."),
                line("ns.sub.example.com.", 3600, "A", "192.0.2.200"),
                line("into-sub.example.com.", 300, "CNAME", "x.sub.example.com."),
            ],
        }
    }

    pub(crate) fn zones() -> ZoneSet {
        ZoneSet::from_data([&example_com()]).expect("zones")
    }

    pub(crate) fn n(s: &str) -> Name {
        Name::from_ascii(s).expect("name")
    }

    fn names(records: &[Record]) -> Vec<(String, RecordType)> {
        records
            .iter()
            .map(|r| (r.name.to_ascii().to_lowercase(), r.record_type()))
            .collect()
    }

    #[test]
    fn positive_answer_with_additional_addresses() {
        let r = resolve(&zones(), &n("Example.COM."), RecordType::MX);
        assert_eq!(r.rcode, ResponseCode::NoError);
        assert!(r.authoritative);
        assert_eq!(
            names(&r.answers),
            vec![("example.com.".into(), RecordType::MX)]
        );
        assert_eq!(
            names(&r.additionals),
            vec![
                ("mail.example.com.".into(), RecordType::A),
                ("mail.example.com.".into(), RecordType::AAAA)
            ]
        );
        // Apex NS: answered (not a referral), in-zone server's address added.
        let r = resolve(&zones(), &n("example.com."), RecordType::NS);
        assert!(r.authoritative);
        assert_eq!(r.answers.len(), 2);
        assert_eq!(
            names(&r.additionals),
            vec![("ns1.example.com.".into(), RecordType::A)]
        );
    }

    #[test]
    fn nxdomain_and_nodata_carry_negative_soa() {
        let r = resolve(&zones(), &n("nope.example.com."), RecordType::A);
        assert_eq!(r.rcode, ResponseCode::NXDomain);
        assert!(r.authoritative);
        assert!(r.answers.is_empty());
        assert_eq!(r.authorities.len(), 1);
        assert_eq!(r.authorities[0].record_type(), RecordType::SOA);
        assert_eq!(r.authorities[0].ttl, 300, "min(SOA ttl 3600, minimum 300)");

        let r = resolve(&zones(), &n("mail.example.com."), RecordType::TXT);
        assert_eq!(r.rcode, ResponseCode::NoError);
        assert!(r.answers.is_empty());
        assert_eq!(
            names(&r.authorities),
            vec![("example.com.".into(), RecordType::SOA)]
        );

        // Empty non-terminals are NODATA, not NXDOMAIN.
        for ent in ["b.c.example.com.", "c.example.com."] {
            let r = resolve(&zones(), &n(ent), RecordType::A);
            assert_eq!(r.rcode, ResponseCode::NoError, "{ent}");
            assert!(r.answers.is_empty());
        }
    }

    #[test]
    fn refused_outside_our_zones() {
        let r = resolve(&zones(), &n("www.example.org."), RecordType::A);
        assert_eq!(r.rcode, ResponseCode::Refused);
        assert!(!r.authoritative);
        let r = resolve(&zones(), &n("com."), RecordType::NS);
        assert_eq!(r.rcode, ResponseCode::Refused);
    }

    #[test]
    fn cname_chains() {
        let r = resolve(&zones(), &n("www.example.com."), RecordType::A);
        assert_eq!(
            names(&r.answers),
            vec![
                ("www.example.com.".into(), RecordType::CNAME),
                ("web.example.com.".into(), RecordType::CNAME),
                ("example.com.".into(), RecordType::A)
            ]
        );
        // Asking for the CNAME itself does not follow it.
        let r = resolve(&zones(), &n("www.example.com."), RecordType::CNAME);
        assert_eq!(r.answers.len(), 1);
        // Loops stop; dangling targets make NXDOMAIN with the chain kept.
        let r = resolve(&zones(), &n("loop1.example.com."), RecordType::A);
        assert_eq!(r.answers.len(), 2);
        assert_eq!(r.rcode, ResponseCode::NoError);
        let r = resolve(&zones(), &n("dangling.example.com."), RecordType::A);
        assert_eq!(r.rcode, ResponseCode::NXDomain);
        assert_eq!(r.answers.len(), 1);
        assert_eq!(r.authorities.len(), 1);
        // Targets outside the zone are left to the resolver.
        let r = resolve(&zones(), &n("out.example.com."), RecordType::A);
        assert_eq!(r.answers.len(), 1);
        assert!(r.authorities.is_empty());
        // A chain into a delegation stops at the CNAME, still authoritative.
        let r = resolve(&zones(), &n("into-sub.example.com."), RecordType::A);
        assert_eq!(r.answers.len(), 1);
        assert!(r.authoritative);
    }

    #[test]
    fn wildcards() {
        let r = resolve(&zones(), &n("Anything.wild.example.com."), RecordType::A);
        assert_eq!(r.rcode, ResponseCode::NoError);
        assert_eq!(
            names(&r.answers),
            vec![("anything.wild.example.com.".into(), RecordType::A)]
        );
        // Deeper names are covered too (closest encloser is wild.example.com).
        let r = resolve(&zones(), &n("x.y.wild.example.com."), RecordType::A);
        assert_eq!(r.answers.len(), 1);
        // Existing names block the wildcard (RFC 4592 §2.2.1): NODATA, not synthesis.
        let r = resolve(&zones(), &n("exists.wild.example.com."), RecordType::A);
        assert!(r.answers.is_empty());
        assert_eq!(r.rcode, ResponseCode::NoError);
        // Below an existing name the wildcard does not apply.
        let r = resolve(&zones(), &n("x.exists.wild.example.com."), RecordType::A);
        assert_eq!(r.rcode, ResponseCode::NXDomain);
        // Wildcard NODATA.
        let r = resolve(&zones(), &n("q.wild.example.com."), RecordType::MX);
        assert!(r.answers.is_empty());
        assert_eq!(r.rcode, ResponseCode::NoError);
        // ANY at a wildcard gives all its RRsets.
        let r = resolve(&zones(), &n("q.wild.example.com."), RecordType::ANY);
        assert_eq!(r.answers.len(), 2);
        // The wildcard owner itself answers literally.
        let r = resolve(&zones(), &n("*.wild.example.com."), RecordType::A);
        assert_eq!(r.answers.len(), 1);
    }

    #[test]
    fn referrals_with_glue() {
        for q in ["sub.example.com.", "deep.host.sub.example.com."] {
            let r = resolve(&zones(), &n(q), RecordType::A);
            assert_eq!(r.rcode, ResponseCode::NoError, "{q}");
            assert!(!r.authoritative, "{q}");
            assert!(r.answers.is_empty());
            assert_eq!(
                names(&r.authorities),
                vec![
                    ("sub.example.com.".into(), RecordType::NS),
                    ("sub.example.com.".into(), RecordType::NS)
                ]
            );
            assert_eq!(
                names(&r.additionals),
                vec![("ns.sub.example.com.".into(), RecordType::A)]
            );
        }
        // DS at the cut is answered by the parent (NODATA here).
        let r = resolve(&zones(), &n("sub.example.com."), RecordType::DS);
        assert!(r.authoritative);
        assert_eq!(
            names(&r.authorities),
            vec![("example.com.".into(), RecordType::SOA)]
        );
    }
}
