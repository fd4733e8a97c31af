//! The engine plan: the pure step from the controller's [`DnsConfig`] and what is
//! served so far ([`Served`]) to what must change ([`Plan`]) and the zones refused
//! ([`RejectedObject`]s). No I/O and no tasks: the engine ([`crate::engine`]) converges
//! on a plan and then records it with [`Served::commit`].
//!
//! At 10,000 zones the controller's config is tens of megabytes of zone text, so the
//! plan keeps none of it: what was served is remembered as a SHA-256 digest of each
//! assignment (and of its zone content) plus the parsed [`Zone`]. A config where one
//! zone changed parses only that zone; one whose transfer settings changed but whose
//! content did not reuses the parsed zone.

use std::collections::{HashMap, HashSet};
use std::hash::{Hash, Hasher};
use std::net::SocketAddr;
use std::sync::Arc;

use hickory_proto::rr::Name;
use proto::agent_v1::{DnsConfig, RejectedObject, ZoneAssignment, ZoneContent};

use crate::tsig::Key;
use crate::zone::{RecordLine, Zone, ZoneData};

/// A SHA-256 digest of a value's [`Hash`] stream (strings and sequences are
/// length-delimited there, so distinct values give distinct streams).
pub type Digest = [u8; 32];

/// Collects a value's [`Hash`] stream, to be digested in one call (feeding SHA-256
/// the many small writes of a zone one by one costs several times more).
struct StreamHasher(Vec<u8>);

impl Hasher for StreamHasher {
    fn write(&mut self, bytes: &[u8]) {
        self.0.extend_from_slice(bytes);
    }

    fn finish(&self) -> u64 {
        // Only `digest` reads the stream; a 64-bit view is never used as an identity.
        0
    }
}

/// The SHA-256 digest of `value` (what [`Served`] remembers instead of the value).
pub fn digest<T: Hash + ?Sized>(value: &T) -> Digest {
    let mut h = StreamHasher(Vec::with_capacity(4096));
    value.hash(&mut h);
    let mut out = [0u8; 32];
    out.copy_from_slice(ring::digest::digest(&ring::digest::SHA256, &h.0).as_ref());
    out
}

/// The engine's zone description from the controller's zone content.
pub fn zone_data(z: &ZoneContent) -> ZoneData {
    ZoneData {
        origin: format!("{}.", z.origin.trim_end_matches('.')),
        serial: z.serial,
        records: z
            .records
            .iter()
            .map(|r| RecordLine {
                name: format!("{}.", r.name.trim_end_matches('.')),
                ttl: r.ttl,
                rtype: r.rtype.clone(),
                rdata: r.data.clone(),
            })
            .collect(),
    }
}

/// One zone of a config, parsed and checked.
pub struct Planned {
    /// The domain as the controller names it (the key of [`Served`]).
    pub domain: String,
    /// Digest of the whole assignment.
    pub digest: Digest,
    /// The zone apex, lower case, absolute.
    pub origin: Name,
    /// This server is the zone's primary.
    pub primary: bool,
    /// The parsed content (primaries) and the digest of the content it came from.
    pub content: Option<(Digest, Arc<Zone>)>,
    /// Where a secondary transfers from.
    pub endpoints: Vec<SocketAddr>,
    /// Whom a primary notifies (and lets transfer).
    pub notify: Vec<SocketAddr>,
    /// The zone's TSIG key.
    pub key: Option<Arc<Key>>,
    /// Identity of the transfer settings (endpoints, notify targets, key): a change
    /// restarts a secondary's refresh task or re-notifies from a primary.
    pub settings: Digest,
}

/// What changed between what is served and a new config.
#[derive(Default)]
pub struct Plan {
    /// Zones added or changed, parsed.
    pub changed: Vec<Planned>,
    /// Zones no longer assigned: (domain, origin).
    pub removed: Vec<(String, Name)>,
}

/// What one served zone came from.
struct ServedZone {
    assignment: Digest,
    content: Option<(Digest, Arc<Zone>)>,
}

/// The plan served so far: per domain, digests of its assignment and content and the
/// parsed zone. Only what lets the next [`plan`] skip unchanged zones; never the text.
#[derive(Default)]
pub struct Served {
    zones: HashMap<String, ServedZone>,
}

impl Served {
    /// Nothing served yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// How many domains are served.
    pub fn len(&self) -> usize {
        self.zones.len()
    }

    /// Whether nothing is served.
    pub fn is_empty(&self) -> bool {
        self.zones.is_empty()
    }

    /// Records a plan the engine has converged on.
    pub fn commit(&mut self, plan: Plan) {
        for (domain, _) in plan.removed {
            self.zones.remove(&domain);
        }
        for p in plan.changed {
            self.zones.insert(
                p.domain,
                ServedZone {
                    assignment: p.digest,
                    content: p.content,
                },
            );
        }
    }
}

fn parse_endpoints(list: &[String], zone: &str) -> Result<Vec<SocketAddr>, String> {
    list.iter()
        .map(|e| {
            e.parse::<SocketAddr>()
                .map_err(|_| format!("zone {zone}: endpoint {e:?} is not ip:port"))
        })
        .collect()
}

/// The lower-case absolute name of a domain as the controller writes it.
fn origin_of(domain: &str) -> Result<Name, String> {
    let mut origin = Name::from_ascii(domain.trim_end_matches('.'))
        .map_err(|e| format!("zone {domain:?}: {e}"))?;
    origin.set_fqdn(true);
    Ok(origin.to_lowercase())
}

fn plan_zone(
    a: &ZoneAssignment,
    digest: Digest,
    before: Option<&ServedZone>,
) -> Result<Planned, String> {
    let origin = origin_of(&a.domain)?;
    let key = match &a.tsig {
        Some(k) => {
            let mut key = Key::new(&k.name, &k.algorithm, &k.secret)
                .map_err(|e| format!("zone {}: {e}", a.domain))?;
            if let Some(p) = &k.previous {
                key = key
                    .with_previous(&p.secret, p.not_after)
                    .map_err(|e| format!("zone {}: previous TSIG secret: {e}", a.domain))?;
            }
            Some(Arc::new(key))
        }
        None => None,
    };
    let content = match (&a.zone, a.primary) {
        (Some(z), true) => {
            let d = self::digest(z);
            match before.and_then(|b| b.content.as_ref()) {
                Some((was, zone)) if *was == d => Some((d, Arc::clone(zone))),
                _ => Some((
                    d,
                    Arc::new(Zone::from_data(&zone_data(z)).map_err(|e| e.to_string())?),
                )),
            }
        }
        (None, true) => return Err(format!("zone {}: primary without content", a.domain)),
        (_, false) => None,
    };
    Ok(Planned {
        domain: a.domain.clone(),
        digest,
        origin,
        primary: a.primary,
        content,
        endpoints: parse_endpoints(&a.primary_endpoints, &a.domain)?,
        notify: parse_endpoints(&a.notify, &a.domain)?,
        key,
        settings: self::digest(&(&a.primary_endpoints, &a.notify, &a.tsig)),
    })
}

/// The object name of zone `domain` in a [`RejectedObject`].
fn zone_object(domain: &str) -> String {
    format!("zone {domain}")
}

/// Plans a config against what is served: only added or changed assignments are
/// parsed (a changed assignment with unchanged content reuses the parsed zone). A
/// zone that does not parse (its name, content, key or endpoints) or is assigned twice
/// is rejected: it is neither changed nor removed, so its previous version stays (or
/// it stays absent when new).
pub fn plan(cfg: &DnsConfig, served: &Served) -> (Plan, Vec<RejectedObject>) {
    let mut seen = HashSet::with_capacity(cfg.zones.len());
    let mut out = Plan::default();
    let mut rejected = Vec::new();
    for a in &cfg.zones {
        if !seen.insert(a.domain.as_str()) {
            rejected.push(RejectedObject::new(
                zone_object(&a.domain),
                "assigned twice; the first is served",
            ));
            continue;
        }
        let d = digest(a);
        let before = served.zones.get(&a.domain);
        if before.is_some_and(|b| b.assignment == d) {
            continue;
        }
        match plan_zone(a, d, before) {
            Ok(p) => out.changed.push(p),
            Err(e) => rejected.push(RejectedObject::new(zone_object(&a.domain), e)),
        }
    }
    for domain in served.zones.keys().filter(|d| !seen.contains(d.as_str())) {
        if let Ok(origin) = origin_of(domain) {
            out.removed.push((domain.clone(), origin));
        }
    }
    (out, rejected)
}

#[cfg(test)]
mod tests {
    use proto::agent_v1::ZoneRecord;

    use super::*;

    fn content(origin: &str, serial: u32, ip: &str) -> ZoneContent {
        let rec = |name: &str, rtype: &str, data: &str| ZoneRecord {
            name: name.into(),
            ttl: 300,
            rtype: rtype.into(),
            data: data.into(),
        };
        ZoneContent {
            origin: origin.into(),
            serial,
            records: vec![
                rec(
                    origin,
                    "SOA",
                    &format!("ns1.h.example. hm.h.example. {serial} 3600 600 604800 300"),
                ),
                rec(origin, "NS", "ns1.h.example."),
                rec(&format!("www.{origin}"), "A", ip),
            ],
        }
    }

    fn primary(origin: &str, serial: u32, ip: &str) -> ZoneAssignment {
        ZoneAssignment {
            domain: origin.into(),
            primary: true,
            primary_addresses: vec![],
            secondaries: vec![],
            zone: Some(Arc::new(content(origin, serial, ip))),
            primary_endpoints: vec![],
            notify: vec![],
            tsig: None,
        }
    }

    fn config(zones: Vec<ZoneAssignment>) -> DnsConfig {
        DnsConfig { zones }
    }

    fn changed(p: &Plan) -> Vec<&str> {
        let mut v: Vec<_> = p.changed.iter().map(|p| p.domain.as_str()).collect();
        v.sort_unstable();
        v
    }

    #[test]
    fn digests_tell_values_apart() {
        assert_eq!(digest("ab"), digest("ab"));
        assert_ne!(digest(&("ab", "c")), digest(&("a", "bc")));
        assert_ne!(
            digest(&primary("a.example", 1, "192.0.2.1")),
            digest(&primary("a.example", 1, "192.0.2.2"))
        );
    }

    #[test]
    fn only_changed_zones_are_planned_and_unchanged_content_is_not_reparsed() {
        let mut served = Served::new();
        let cfg = config(vec![
            primary("a.example", 1, "192.0.2.1"),
            primary("b.example", 1, "192.0.2.2"),
        ]);
        let (p, rejected) = plan(&cfg, &served);
        assert!(rejected.is_empty());
        assert_eq!(changed(&p), ["a.example", "b.example"]);
        served.commit(p);
        assert_eq!(served.len(), 2);

        // The same config again: nothing to do.
        let (p, _) = plan(&cfg, &served);
        assert!(p.changed.is_empty() && p.removed.is_empty());

        // One zone's content changes: only that one is parsed.
        let cfg2 = config(vec![
            primary("a.example", 2, "192.0.2.9"),
            primary("b.example", 1, "192.0.2.2"),
        ]);
        let (p, _) = plan(&cfg2, &served);
        assert_eq!(changed(&p), ["a.example"]);
        assert_eq!(p.changed[0].content.as_ref().map(|c| c.1.serial()), Some(2));
        let old_b = Arc::clone(&served.zones["b.example"].content.as_ref().unwrap().1);
        served.commit(p);

        // Only b's notify targets change: planned, but its parsed zone is reused.
        let mut b = primary("b.example", 1, "192.0.2.2");
        b.notify = vec!["127.0.0.2:53".into()];
        let (p, _) = plan(
            &config(vec![primary("a.example", 2, "192.0.2.9"), b]),
            &served,
        );
        assert_eq!(changed(&p), ["b.example"]);
        assert!(Arc::ptr_eq(
            &p.changed[0].content.as_ref().unwrap().1,
            &old_b
        ));
        assert_eq!(p.changed[0].notify, ["127.0.0.2:53".parse().unwrap()]);
    }

    #[test]
    fn removed_and_rejected_zones() {
        let mut served = Served::new();
        let (p, _) = plan(
            &config(vec![
                primary("a.example", 1, "192.0.2.1"),
                primary("b.example", 1, "192.0.2.2"),
            ]),
            &served,
        );
        served.commit(p);

        let mut bad = primary("c.example", 1, "192.0.2.3");
        Arc::make_mut(bad.zone.as_mut().unwrap()).records[2].data = "not an address".into();
        let mut bad_endpoint = primary("d.example", 1, "192.0.2.4");
        bad_endpoint.notify = vec!["nowhere".into()];
        let mut no_content = primary("e.example", 1, "192.0.2.5");
        no_content.zone = None;
        let cfg = config(vec![
            primary("a.example", 1, "192.0.2.1"),
            primary("a.example", 2, "192.0.2.7"),
            bad,
            bad_endpoint,
            no_content,
        ]);
        let (p, rejected) = plan(&cfg, &served);
        assert!(p.changed.is_empty());
        assert_eq!(p.removed.len(), 1);
        assert_eq!(p.removed[0].0, "b.example");
        assert_eq!(p.removed[0].1, Name::from_ascii("b.example.").unwrap());
        let objects: Vec<_> = rejected.iter().map(|r| r.object.as_str()).collect();
        assert_eq!(
            objects,
            [
                "zone a.example",
                "zone c.example",
                "zone d.example",
                "zone e.example"
            ]
        );
        assert!(
            rejected[0].reason.contains("assigned twice"),
            "{:?}",
            rejected[0]
        );
        assert!(
            rejected[1].reason.contains("not an address"),
            "{:?}",
            rejected[1]
        );
        assert!(
            rejected[2].reason.contains("\"nowhere\" is not ip:port"),
            "{:?}",
            rejected[2]
        );
        assert!(
            rejected[3].reason.contains("primary without content"),
            "{:?}",
            rejected[3]
        );
        served.commit(p);
        assert_eq!(served.len(), 1);
    }

    #[test]
    fn secondaries_carry_no_content_and_upper_case_domains_are_lowered() {
        let a = ZoneAssignment {
            domain: "Sec.Example".into(),
            primary: false,
            primary_addresses: vec![],
            secondaries: vec![],
            zone: Some(Arc::new(content("Sec.Example", 1, "192.0.2.1"))),
            primary_endpoints: vec!["127.0.0.1:53".into()],
            notify: vec![],
            tsig: None,
        };
        let (p, rejected) = plan(&config(vec![a]), &Served::new());
        assert!(rejected.is_empty());
        assert!(p.changed[0].content.is_none());
        assert_eq!(
            p.changed[0].origin,
            Name::from_ascii("sec.example.").unwrap()
        );
        assert_eq!(p.changed[0].endpoints, ["127.0.0.1:53".parse().unwrap()]);
    }
}
