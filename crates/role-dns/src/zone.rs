//! Zone model: the plain description the controller sends ([`ZoneData`]), its parsed form
//! ([`Zone`]) and the set of zones one server answers for ([`ZoneSet`]).
//!
//! Parsing validates everything up front (names inside the zone, absolute target names,
//! exactly one SOA at the apex, no CNAME next to other data), so the answer path never
//! meets a malformed zone.

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::str::FromStr;
use std::sync::Arc;

use hickory_proto::rr::{DNSClass, Name, RData, Record, RecordType};
use hickory_proto::serialize::binary::{
    BinDecoder, BinEncodable, BinEncoder, NameEncoding, Restrict,
};
use serde::{Deserialize, Serialize};

use crate::tsig::Key;

/// One resource record in presentation format, as the controller describes it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordLine {
    /// Absolute owner name, e.g. `www.example.com.` (a missing final dot is tolerated).
    pub name: String,
    /// Time to live in seconds.
    pub ttl: u32,
    /// Record type mnemonic: `A`, `AAAA`, `CNAME`, `MX`, `TXT`, `SRV`, `CAA`, `NS` or `SOA`.
    pub rtype: String,
    /// Record data in presentation format; names inside must be absolute (end with `.`).
    pub rdata: String,
}

/// A whole zone as the controller describes it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ZoneData {
    /// The zone apex, e.g. `example.com.`.
    pub origin: String,
    /// The zone serial; it replaces the serial written in the SOA line.
    pub serial: u32,
    /// All records, including exactly one SOA at the apex.
    pub records: Vec<RecordLine>,
}

/// Why a [`ZoneData`] could not be turned into a [`Zone`].
#[derive(Debug, thiserror::Error)]
pub enum ZoneError {
    /// The origin is not a valid domain name.
    #[error("zone origin {origin:?} is not a valid name: {reason}")]
    BadOrigin {
        /// The origin as given.
        origin: String,
        /// What the name parser said.
        reason: String,
    },
    /// A record's owner name is invalid.
    #[error("record {index}: owner {name:?} is not a valid name: {reason}")]
    BadOwner {
        /// Position of the record in [`ZoneData::records`].
        index: usize,
        /// The owner as given.
        name: String,
        /// What the name parser said.
        reason: String,
    },
    /// A record's owner lies outside the zone.
    #[error("record {index}: owner {name} is not inside zone {origin}")]
    OutOfZone {
        /// Position of the record in [`ZoneData::records`].
        index: usize,
        /// The owner name.
        name: String,
        /// The zone origin.
        origin: String,
    },
    /// The record type is unknown or not supported.
    #[error("record {index}: unsupported record type {rtype:?}")]
    UnsupportedType {
        /// Position of the record in [`ZoneData::records`].
        index: usize,
        /// The type as given.
        rtype: String,
    },
    /// The record data does not parse for its type.
    #[error("record {index}: bad {rtype} data {rdata:?}: {reason}")]
    BadRdata {
        /// Position of the record in [`ZoneData::records`].
        index: usize,
        /// The record type.
        rtype: String,
        /// The data as given.
        rdata: String,
        /// What the parser said.
        reason: String,
    },
    /// A name inside the record data is relative.
    #[error("record {index}: name {target} in the data must be absolute (end with '.')")]
    RelativeTarget {
        /// Position of the record in [`ZoneData::records`].
        index: usize,
        /// The relative name.
        target: String,
    },
    /// The zone has no SOA at its apex, more than one, or one elsewhere.
    #[error("zone {origin}: {reason}")]
    Soa {
        /// The zone origin.
        origin: String,
        /// What is wrong.
        reason: &'static str,
    },
    /// A CNAME shares its owner with other data (RFC 1034 §3.6.2).
    #[error("zone {origin}: CNAME at {name} cannot coexist with other records")]
    CnameConflict {
        /// The zone origin.
        origin: String,
        /// The owner name.
        name: String,
    },
    /// A record's data cannot be put in wire form (e.g. longer than 65535 bytes).
    #[error("records at {name} cannot be encoded: {reason}")]
    Encode {
        /// The owner name.
        name: String,
        /// What the encoder said.
        reason: String,
    },
    /// Two zones in one set have the same origin.
    #[error("zone {origin} appears twice")]
    DuplicateZone {
        /// The zone origin.
        origin: String,
    },
}

/// The record types a [`RecordLine`] may carry.
const SUPPORTED: [RecordType; 10] = [
    RecordType::A,
    RecordType::AAAA,
    RecordType::CNAME,
    RecordType::MX,
    RecordType::TXT,
    RecordType::SRV,
    RecordType::CAA,
    RecordType::NS,
    RecordType::SOA,
    RecordType::PTR,
];

/// All data at one owner name. An empty node is an empty non-terminal (RFC 4592 §2.2.2):
/// the name exists (so queries for it are NODATA, not NXDOMAIN) but holds no records.
///
/// Stored compactly, as an exact-size slice of [`RRset`]s sorted by type, each in wire
/// form: a server holds tens of thousands of zones, and a parsed hickory `Record` is
/// 272 bytes (plus its heap) where most RDATA is 4 to 40 bytes on the wire.
#[derive(Clone, Debug, Default)]
pub(crate) struct Node {
    rrsets: Box<[RRset]>,
}

/// One RRset in wire form: its type, its one TTL (RFC 2181 §5.2) and every record's
/// RDATA, uncompressed with the case it was given, each prefixed by its 16-bit length.
/// Records are decoded back (owner set by the caller) only when an answer needs them.
#[derive(Clone, Debug)]
pub(crate) struct RRset {
    rtype: RecordType,
    ttl: u32,
    rdata: Box<[u8]>,
}

impl RRset {
    /// Encodes an RRset whose records all have `rtype` (TTLs already unified).
    fn encode(rtype: RecordType, records: &[Record]) -> Result<Self, String> {
        let ttl = records.iter().map(|r| r.ttl).min().unwrap_or(0);
        let mut rdata = Vec::new();
        for r in records {
            let mut one = Vec::new();
            let mut enc = BinEncoder::new(&mut one);
            enc.set_name_encoding(NameEncoding::Uncompressed);
            r.data.emit(&mut enc).map_err(|e| e.to_string())?;
            let len = u16::try_from(one.len()).map_err(|_| "RDATA longer than 65535 bytes")?;
            rdata.extend_from_slice(&len.to_be_bytes());
            rdata.extend_from_slice(&one);
        }
        Ok(Self {
            rtype,
            ttl,
            rdata: rdata.into_boxed_slice(),
        })
    }

    /// The RRset's type.
    pub(crate) fn rtype(&self) -> RecordType {
        self.rtype
    }

    /// The records, decoded, with `owner` as their name. Our own encoding always
    /// decodes; a record that would not is left out rather than answered wrongly.
    pub(crate) fn records(&self, owner: &Name) -> Vec<Record> {
        let mut out = Vec::new();
        let mut at = 0;
        while let Some(len) = self.rdata.get(at..at + 2) {
            let len = usize::from(u16::from_be_bytes([len[0], len[1]]));
            let Some(bytes) = self.rdata.get(at + 2..at + 2 + len) else {
                break;
            };
            at += 2 + len;
            let mut dec = BinDecoder::new(bytes);
            let Ok(len16) = u16::try_from(len) else { break };
            if let Ok(data) = RData::read(&mut dec, self.rtype, Restrict::new(len16)) {
                let mut r = Record::from_rdata(owner.clone(), self.ttl, data);
                r.dns_class = DNSClass::IN;
                out.push(r);
            }
        }
        out
    }
}

impl Node {
    /// The RRset of one type, if present.
    pub(crate) fn get(&self, rtype: RecordType) -> Option<&RRset> {
        self.rrsets
            .binary_search_by(|s| s.rtype.cmp(&rtype))
            .ok()
            .map(|i| &self.rrsets[i])
    }

    /// Every RRset, by type.
    pub(crate) fn rrsets(&self) -> impl Iterator<Item = &RRset> {
        self.rrsets.iter()
    }

    /// Whether the node holds no records (an empty non-terminal).
    #[cfg(test)]
    pub(crate) fn is_empty(&self) -> bool {
        self.rrsets.is_empty()
    }

    fn from_map(map: BTreeMap<RecordType, Vec<Record>>) -> Result<Self, String> {
        Ok(Self {
            rrsets: map
                .into_iter()
                .map(|(t, r)| RRset::encode(t, &r))
                .collect::<Result<_, _>>()?,
        })
    }
}

/// A parsed, validated authoritative zone.
#[derive(Clone, Debug)]
pub struct Zone {
    origin: Name,
    soa: Record,
    nodes: HashMap<Name, Node>,
}

fn fqdn_name(mut name: Name) -> Name {
    name.set_fqdn(true);
    name
}

fn parse_name(text: &str) -> Result<Name, String> {
    let mut name = Name::from_ascii(text.trim()).map_err(|e| e.to_string())?;
    name.set_fqdn(true);
    Ok(name)
}

/// The names inside an RData that must be absolute.
fn target_names(data: &RData) -> Vec<&Name> {
    match data {
        RData::CNAME(n) => vec![&n.0],
        RData::NS(n) => vec![&n.0],
        RData::PTR(n) => vec![&n.0],
        RData::MX(mx) => vec![&mx.exchange],
        RData::SRV(srv) => vec![&srv.target],
        RData::SOA(soa) => vec![&soa.mname, &soa.rname],
        _ => Vec::new(),
    }
}

impl Zone {
    /// Parses and validates a zone description.
    pub fn from_data(data: &ZoneData) -> Result<Self, ZoneError> {
        let origin = parse_name(&data.origin).map_err(|reason| ZoneError::BadOrigin {
            origin: data.origin.clone(),
            reason,
        })?;
        let mut records = Vec::with_capacity(data.records.len());
        for (index, line) in data.records.iter().enumerate() {
            let name = parse_name(&line.name).map_err(|reason| ZoneError::BadOwner {
                index,
                name: line.name.clone(),
                reason,
            })?;
            let rtype = RecordType::from_str(&line.rtype.trim().to_ascii_uppercase())
                .ok()
                .filter(|t| SUPPORTED.contains(t))
                .ok_or_else(|| ZoneError::UnsupportedType {
                    index,
                    rtype: line.rtype.clone(),
                })?;
            let mut rdata =
                RData::try_from_str(rtype, &line.rdata).map_err(|e| ZoneError::BadRdata {
                    index,
                    rtype: rtype.to_string(),
                    rdata: line.rdata.clone(),
                    reason: e.to_string(),
                })?;
            if let Some(relative) = target_names(&rdata).into_iter().find(|n| !n.is_fqdn()) {
                return Err(ZoneError::RelativeTarget {
                    index,
                    target: relative.to_ascii(),
                });
            }
            if let RData::SOA(s) = &mut rdata {
                s.serial = data.serial;
            }
            records.push(Record::from_rdata(name, line.ttl, rdata));
        }
        Self::from_records(origin, records)
    }

    /// Builds a zone from records (e.g. received by zone transfer): every owner must
    /// be inside `origin`, exactly one SOA at the apex, no CNAME beside other data.
    /// Records of any type are kept; the class is forced to IN.
    pub fn from_records(
        origin: Name,
        records: impl IntoIterator<Item = Record>,
    ) -> Result<Self, ZoneError> {
        let origin = fqdn_name(origin);
        let origin_text = origin.to_ascii();
        let mut nodes: HashMap<Name, BTreeMap<RecordType, Vec<Record>>> = HashMap::new();
        nodes.insert(origin.clone(), BTreeMap::new());
        let mut soa: Option<Record> = None;

        for (index, mut record) in records.into_iter().enumerate() {
            record.name = fqdn_name(record.name);
            let name = record.name.clone();
            if !origin.zone_of(&name) {
                return Err(ZoneError::OutOfZone {
                    index,
                    name: name.to_ascii(),
                    origin: origin_text,
                });
            }
            let rtype = record.record_type();
            if matches!(
                rtype,
                RecordType::OPT | RecordType::TSIG | RecordType::AXFR | RecordType::IXFR
            ) {
                continue;
            }
            record.dns_class = DNSClass::IN;
            if rtype == RecordType::SOA {
                if name != origin {
                    return Err(ZoneError::Soa {
                        origin: origin_text,
                        reason: "SOA record is not at the apex",
                    });
                }
                if soa.is_some() {
                    return Err(ZoneError::Soa {
                        origin: origin_text,
                        reason: "more than one SOA record",
                    });
                }
                soa = Some(record.clone());
            }
            // Every ancestor up to the apex exists, as an empty non-terminal if nothing else.
            let mut parent = name.base_name();
            while parent.num_labels() > origin.num_labels() {
                let next = parent.base_name();
                nodes.entry(parent).or_default();
                parent = next;
            }
            let rrset = nodes.entry(name).or_default().entry(rtype).or_default();
            if !rrset.iter().any(|r| r.data == record.data) {
                rrset.push(record);
            }
        }

        let soa = soa.ok_or_else(|| ZoneError::Soa {
            origin: origin_text.clone(),
            reason: "no SOA record at the apex",
        })?;
        for (name, node) in &nodes {
            if node.contains_key(&RecordType::CNAME) && node.len() > 1 {
                return Err(ZoneError::CnameConflict {
                    origin: origin_text,
                    name: name.to_ascii(),
                });
            }
        }
        // One TTL per RRset (RFC 2181 §5.2): the smallest given (`RRset::encode`).
        let mut nodes: HashMap<Name, Node> = nodes
            .into_iter()
            .map(|(name, map)| {
                let node = Node::from_map(map).map_err(|reason| ZoneError::Encode {
                    name: name.to_ascii(),
                    reason,
                })?;
                Ok((name, node))
            })
            .collect::<Result<_, ZoneError>>()?;
        nodes.shrink_to_fit();
        Ok(Self { origin, soa, nodes })
    }

    /// The SOA timers `(refresh, retry, expire)` in seconds (negative values read as 0).
    pub fn timers(&self) -> (u32, u32, u32) {
        match &self.soa.data {
            RData::SOA(s) => (
                u32::try_from(s.refresh).unwrap_or(0),
                u32::try_from(s.retry).unwrap_or(0),
                u32::try_from(s.expire).unwrap_or(0),
            ),
            _ => (0, 0, 0),
        }
    }

    /// The zone apex.
    pub fn origin(&self) -> &Name {
        &self.origin
    }

    /// The zone's SOA record (with the serial from [`ZoneData::serial`]).
    pub fn soa(&self) -> &Record {
        &self.soa
    }

    /// The zone serial.
    pub fn serial(&self) -> u32 {
        match &self.soa.data {
            RData::SOA(soa) => soa.serial,
            _ => 0,
        }
    }

    /// The SOA to put in the authority section of negative answers: its TTL is
    /// `min(SOA TTL, SOA MINIMUM)` (RFC 2308 §3).
    pub fn negative_soa(&self) -> Record {
        let mut soa = self.soa.clone();
        if let RData::SOA(data) = &self.soa.data {
            soa.ttl = soa.ttl.min(data.minimum);
        }
        soa
    }

    /// Every record of the zone, SOA first (the order a zone transfer needs),
    /// decoded from the compact form (transfers and persistence; not the query path).
    pub fn records(&self) -> impl Iterator<Item = Record> + '_ {
        std::iter::once(self.soa.clone()).chain(self.nodes.iter().flat_map(|(name, node)| {
            node.rrsets()
                .filter(|s| s.rtype() != RecordType::SOA)
                .flat_map(move |s| s.records(name))
        }))
    }

    /// The node at `name`, if the name exists in the zone.
    pub(crate) fn node(&self, name: &Name) -> Option<&Node> {
        self.nodes.get(name)
    }

    /// The node at `name` with its owner name as the zone spells it.
    pub(crate) fn named_node(&self, name: &Name) -> Option<(&Name, &Node)> {
        self.nodes.get_key_value(name)
    }
}

/// How one zone may be transferred and notified, and its recent history (for IXFR).
#[derive(Clone, Debug, Default)]
pub struct ZoneMeta {
    /// Addresses allowed to transfer (AXFR/IXFR) the zone; empty: nobody.
    pub transfer_acl: Vec<IpAddr>,
    /// Addresses whose NOTIFY for the zone is accepted (the primary's, on a secondary).
    pub notify_from: Vec<IpAddr>,
    /// The TSIG key transfers of this zone must be signed with.
    pub tsig: Option<Arc<Key>>,
    /// Earlier versions of the zone, oldest first (the IXFR journal).
    pub history: Vec<Arc<Zone>>,
    /// The zone is a secondary that has no usable content (never transferred or
    /// expired): queries for it get SERVFAIL.
    pub unavailable: bool,
}

/// The zones one server is authoritative for, keyed by origin. Swapped as a whole
/// (behind an `Arc`) whenever anything changes; zones are shared `Arc`s, so building
/// a new set after one zone changed is cheap.
#[derive(Clone, Debug, Default)]
pub struct ZoneSet {
    zones: HashMap<Name, Arc<Zone>>,
    meta: HashMap<Name, Arc<ZoneMeta>>,
    keys: HashMap<Name, Arc<Key>>,
}

impl ZoneSet {
    /// An empty set: every query is answered REFUSED.
    pub fn new() -> Self {
        Self::default()
    }

    /// Builds a set from parsed zones; two zones with one origin are an error.
    pub fn from_zones(zones: impl IntoIterator<Item = Zone>) -> Result<Self, ZoneError> {
        let mut set = Self::new();
        for zone in zones {
            set.insert(zone)?;
        }
        Ok(set)
    }

    /// Parses and validates every description, failing on the first bad zone.
    pub fn from_data<'a>(data: impl IntoIterator<Item = &'a ZoneData>) -> Result<Self, ZoneError> {
        Self::from_zones(
            data.into_iter()
                .map(Zone::from_data)
                .collect::<Result<Vec<_>, _>>()?,
        )
    }

    /// Adds a zone; a zone with the same origin already present is an error.
    pub fn insert(&mut self, zone: Zone) -> Result<(), ZoneError> {
        if self.zones.contains_key(zone.origin()) {
            return Err(ZoneError::DuplicateZone {
                origin: zone.origin().to_ascii(),
            });
        }
        self.zones.insert(zone.origin().clone(), Arc::new(zone));
        Ok(())
    }

    /// Adds or replaces a zone, returning the one it replaced.
    pub fn replace(&mut self, zone: Zone) -> Option<Arc<Zone>> {
        self.replace_shared(Arc::new(zone))
    }

    /// Adds or replaces a shared zone, returning the one it replaced.
    pub fn replace_shared(&mut self, zone: Arc<Zone>) -> Option<Arc<Zone>> {
        self.zones.insert(zone.origin().clone(), zone)
    }

    /// Removes the zone with this origin (and its metadata), returning it.
    pub fn remove(&mut self, origin: &Name) -> Option<Arc<Zone>> {
        self.meta.remove(origin);
        self.zones.remove(origin)
    }

    /// Removes only the zone content, keeping its metadata.
    pub fn remove_content(&mut self, origin: &Name) -> Option<Arc<Zone>> {
        self.zones.remove(origin)
    }

    /// Sets the transfer/notify metadata of the zone at `origin` (the zone itself
    /// may be absent, e.g. a secondary zone not transferred yet).
    pub fn set_meta(&mut self, origin: Name, meta: Arc<ZoneMeta>) {
        self.meta.insert(fqdn_name(origin), meta);
    }

    /// The metadata of the zone at exactly `origin`.
    pub fn meta(&self, origin: &Name) -> Option<&Arc<ZoneMeta>> {
        self.meta.get(origin)
    }

    /// The metadata entry of the closest enclosing origin of `name` (used when no
    /// zone content answers for it).
    pub fn find_meta(&self, name: &Name) -> Option<(&Name, &Arc<ZoneMeta>)> {
        let mut candidate = fqdn_name(name.clone());
        loop {
            if let Some(entry) = self.meta.get_key_value(&candidate) {
                return Some(entry);
            }
            if candidate.is_root() {
                return None;
            }
            candidate = candidate.base_name();
        }
    }

    /// Replaces the TSIG keyring (keys by name) requests are verified with.
    pub fn set_keys(&mut self, keys: impl IntoIterator<Item = Arc<Key>>) {
        self.keys = keys.into_iter().map(|k| (k.name().clone(), k)).collect();
    }

    /// The TSIG key with this name (names compare case-insensitively).
    pub fn key(&self, name: &Name) -> Option<&Arc<Key>> {
        self.keys.get(name)
    }

    /// The zone with exactly this origin.
    pub fn get(&self, origin: &Name) -> Option<&Zone> {
        self.zones.get(origin).map(|z| &**z)
    }

    /// The shared zone with exactly this origin.
    pub fn get_shared(&self, origin: &Name) -> Option<&Arc<Zone>> {
        self.zones.get(origin)
    }

    /// The most specific zone containing `name` (the closest enclosing apex).
    pub fn find(&self, name: &Name) -> Option<&Zone> {
        let mut candidate = name.clone();
        candidate.set_fqdn(true);
        loop {
            if let Some(zone) = self.zones.get(&candidate) {
                return Some(zone);
            }
            if candidate.is_root() {
                return None;
            }
            candidate = candidate.base_name();
        }
    }

    /// Number of zones with content.
    pub fn len(&self) -> usize {
        self.zones.len()
    }

    /// Whether the set holds no zone.
    pub fn is_empty(&self) -> bool {
        self.zones.is_empty()
    }

    /// All zones, in no particular order.
    pub fn zones(&self) -> impl Iterator<Item = &Zone> {
        self.zones.values().map(|z| &**z)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn line(name: &str, ttl: u32, rtype: &str, rdata: &str) -> RecordLine {
        RecordLine {
            name: name.into(),
            ttl,
            rtype: rtype.into(),
            rdata: rdata.into(),
        }
    }

    fn soa_line() -> RecordLine {
        line(
            "example.com.",
            3600,
            "SOA",
            "ns1.example.com. hostmaster.example.com. 1 7200 900 1209600 300",
        )
    }

    fn zone(records: Vec<RecordLine>) -> Result<Zone, ZoneError> {
        Zone::from_data(&ZoneData {
            origin: "example.com.".into(),
            serial: 42,
            records,
        })
    }

    #[test]
    fn parses_every_supported_type_and_overrides_serial() {
        let z = zone(vec![
            soa_line(),
            line("example.com.", 60, "A", "192.0.2.1"),
            line("example.com.", 60, "AAAA", "2001:db8::1"),
            line("example.com.", 300, "MX", "10 mail.example.com."),
            line("example.com.", 300, "TXT", "\"v=spf1 mx -all\""),
            line("example.com.", 300, "CAA", "0 issue \"letsencrypt.org\""),
            line("example.com.", 300, "NS", "ns1.example.com."),
            line(
                "_sip._tcp.example.com.",
                300,
                "SRV",
                "10 5 5060 sip.example.com.",
            ),
            line("www.example.com.", 300, "cname", "example.com."),
        ])
        .expect("valid zone");
        assert_eq!(z.serial(), 42);
        assert_eq!(z.records().count(), 9);
        assert_eq!(z.negative_soa().ttl, 300);
        // `_tcp` is an empty non-terminal.
        let ent = parse_name("_tcp.example.com.").expect("name");
        assert!(z.node(&ent).is_some_and(Node::is_empty));
    }

    #[test]
    fn zone_data_round_trips_through_json() {
        let data = ZoneData {
            origin: "example.com.".into(),
            serial: 9,
            records: vec![soa_line(), line("example.com.", 60, "TXT", "\"a b\"")],
        };
        let json = serde_json::to_string(&data).expect("serialise");
        let back: ZoneData = serde_json::from_str(&json).expect("deserialise");
        assert_eq!(back, data);
        assert_eq!(Zone::from_data(&back).expect("zone").serial(), 9);
    }

    #[test]
    fn rejects_bad_zones() {
        assert!(matches!(zone(vec![]), Err(ZoneError::Soa { .. })));
        assert!(matches!(
            zone(vec![soa_line(), soa_line()]),
            Err(ZoneError::Soa { .. })
        ));
        assert!(matches!(
            zone(vec![soa_line(), line("example.org.", 1, "A", "192.0.2.1")]),
            Err(ZoneError::OutOfZone { .. })
        ));
        assert!(matches!(
            zone(vec![soa_line(), line("a.example.com.", 1, "A", "nope")]),
            Err(ZoneError::BadRdata { .. })
        ));
        assert!(matches!(
            zone(vec![soa_line(), line("a.example.com.", 1, "HINFO", "a b")]),
            Err(ZoneError::UnsupportedType { .. })
        ));
        assert!(matches!(
            zone(vec![
                soa_line(),
                line("a.example.com.", 1, "CNAME", "relative")
            ]),
            Err(ZoneError::RelativeTarget { .. })
        ));
        assert!(matches!(
            zone(vec![
                soa_line(),
                line("a.example.com.", 1, "CNAME", "b.example.com."),
                line("a.example.com.", 1, "A", "192.0.2.1"),
            ]),
            Err(ZoneError::CnameConflict { .. })
        ));
        assert!(matches!(
            zone(vec![
                soa_line(),
                line("a..example.com.", 1, "A", "192.0.2.1")
            ]),
            Err(ZoneError::BadOwner { .. })
        ));
    }

    #[test]
    fn deduplicates_and_unifies_ttl() {
        let z = zone(vec![
            soa_line(),
            line("a.example.com.", 100, "A", "192.0.2.1"),
            line("a.example.com.", 50, "A", "192.0.2.2"),
            line("a.example.com.", 100, "A", "192.0.2.1"),
        ])
        .expect("zone");
        let node = z
            .node(&parse_name("A.EXAMPLE.COM").expect("name"))
            .expect("node");
        let rrset = node.get(RecordType::A).expect("rrset").records(z.origin());
        assert_eq!(rrset.len(), 2);
        assert!(rrset.iter().all(|r| r.ttl == 50));
    }

    #[test]
    fn zone_set_finds_closest_apex() {
        let mut set = ZoneSet::new();
        set.insert(zone(vec![soa_line()]).expect("zone"))
            .expect("insert");
        let sub = Zone::from_data(&ZoneData {
            origin: "sub.example.com".into(),
            serial: 1,
            records: vec![line(
                "sub.example.com",
                60,
                "SOA",
                "ns.example.com. h.example.com. 1 2 3 4 5",
            )],
        })
        .expect("sub");
        set.insert(sub.clone()).expect("insert");
        assert!(matches!(
            set.insert(sub),
            Err(ZoneError::DuplicateZone { .. })
        ));
        let find = |n: &str| {
            set.find(&parse_name(n).expect("name"))
                .map(|z| z.origin().to_ascii())
        };
        assert_eq!(find("x.Sub.Example.com."), Some("sub.example.com.".into()));
        assert_eq!(find("www.example.com."), Some("example.com.".into()));
        assert_eq!(find("example.org."), None);
        assert_eq!(find("."), None);
    }
}
