//! Zone transfer logic, without sockets: the record streams a primary sends for AXFR
//! (RFC 5936) and IXFR (RFC 1995) from its journal, how a stream is cut into messages,
//! and on the secondary side how a received stream is recognised as complete and
//! applied to the zone it holds.

use std::collections::HashMap;
use std::sync::Arc;

use hickory_proto::op::{Message, OpCode, Query};
use hickory_proto::rr::{Name, RData, Record, RecordType};
use hickory_proto::serialize::binary::BinEncodable;

use crate::zone::{Zone, ZoneError};

/// Target size of one transfer message (well below the 64 KiB TCP limit).
const MESSAGE_TARGET: usize = 16 * 1024;

/// A transfer that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum XfrError {
    /// The stream does not follow RFC 5936 / RFC 1995.
    #[error("malformed transfer: {0}")]
    Malformed(&'static str),
    /// The incremental transfer does not start from the version we hold.
    #[error("incremental transfer does not apply to serial {0}")]
    Mismatch(u32),
    /// The transferred zone is not valid.
    #[error(transparent)]
    Zone(#[from] ZoneError),
}

/// RFC 1982 serial comparison: whether `a` is newer than `b`.
pub fn serial_gt(a: u32, b: u32) -> bool {
    a != b && (a.wrapping_sub(b) as i32) > 0
}

/// The serial of a SOA record.
pub fn soa_serial(record: &Record) -> Option<u32> {
    match &record.data {
        RData::SOA(soa) => Some(soa.serial),
        _ => None,
    }
}

/// The AXFR record stream: SOA, every other record, SOA.
pub fn axfr_records(zone: &Zone) -> Vec<Record> {
    let mut out: Vec<Record> = zone.records().collect();
    out.push(zone.soa().clone());
    out
}

/// Identity of a record for diffs: owner (lowercase), type and RDATA (TTL excluded
/// when `with_ttl` is false, as RFC 1995 deletions match without it).
fn record_key(record: &Record, with_ttl: bool) -> Vec<u8> {
    let mut key = record.name.to_lowercase().to_ascii().into_bytes();
    key.push(0);
    key.extend_from_slice(&u16::from(record.record_type()).to_be_bytes());
    if with_ttl {
        key.extend_from_slice(&record.ttl.to_be_bytes());
    }
    key.extend(record.data.to_bytes().unwrap_or_default());
    key
}

/// Records of `old` missing from `new` and records of `new` missing from `old`
/// (SOA excluded; a TTL change is a deletion plus an addition).
pub fn diff(old: &Zone, new: &Zone) -> (Vec<Record>, Vec<Record>) {
    let body = |z: &Zone| -> HashMap<Vec<u8>, Record> {
        z.records()
            .filter(|r| r.record_type() != RecordType::SOA)
            .map(|r| (record_key(&r, true), r))
            .collect()
    };
    let (a, b) = (body(old), body(new));
    let deleted = a
        .iter()
        .filter(|(k, _)| !b.contains_key(*k))
        .map(|(_, r)| r.clone())
        .collect();
    let added = b
        .iter()
        .filter(|(k, _)| !a.contains_key(*k))
        .map(|(_, r)| r.clone())
        .collect();
    (deleted, added)
}

/// The IXFR record stream for a client at `client_serial`: the SOA alone when it is
/// up to date, one condensed difference when the journal holds its version, else the
/// whole zone AXFR-style (RFC 1995 §4).
pub fn ixfr_records(current: &Zone, history: &[Arc<Zone>], client_serial: u32) -> Vec<Record> {
    if !serial_gt(current.serial(), client_serial) {
        return vec![current.soa().clone()];
    }
    let Some(old) = history.iter().rev().find(|z| z.serial() == client_serial) else {
        return axfr_records(current);
    };
    let (deleted, added) = diff(old, current);
    let mut out = Vec::with_capacity(deleted.len() + added.len() + 4);
    out.push(current.soa().clone());
    out.push(old.soa().clone());
    out.extend(deleted);
    out.push(current.soa().clone());
    out.extend(added);
    out.push(current.soa().clone());
    out
}

/// Cuts a record stream into response messages to `request` (id, question in the
/// first message only, AA set).
pub fn pack(id: u16, query: &Query, records: Vec<Record>) -> Vec<Message> {
    let new_message = |first: bool| {
        let mut m = Message::response(id, OpCode::Query);
        m.metadata.authoritative = true;
        if first {
            m.add_query(query.clone());
        }
        m
    };
    let mut out = Vec::new();
    let mut current = new_message(true);
    let mut size = 0usize;
    for record in records {
        let len = record.to_bytes().map(|b| b.len()).unwrap_or(512);
        if size + len > MESSAGE_TARGET && !current.answers.is_empty() {
            out.push(std::mem::replace(&mut current, new_message(false)));
            size = 0;
        }
        size += len;
        current.add_answer(record);
    }
    out.push(current);
    out
}

/// What a received transfer says.
#[derive(Debug)]
pub enum Received {
    /// The primary has nothing newer (IXFR answered with its SOA only).
    UpToDate(u32),
    /// The whole zone (AXFR, or IXFR answered AXFR-style).
    Full(Vec<Record>),
    /// Differences: `(old SOA, deletions, new SOA, additions)` in order.
    Incremental(Vec<(Record, Vec<Record>, Record, Vec<Record>)>),
}

/// Collects the answer records of a transfer stream until it is complete.
#[derive(Debug, Default)]
pub struct Collector {
    records: Vec<Record>,
    serial: Option<u32>,
    incremental: Option<bool>,
    in_additions: bool,
    done: bool,
}

/// Refuse streams longer than this many records (a lying or runaway primary).
const MAX_RECORDS: usize = 2_000_000;

impl Collector {
    /// An empty collector.
    pub fn new() -> Self {
        Self::default()
    }

    /// Feeds one message's answers; returns whether the stream is complete.
    pub fn push(&mut self, answers: Vec<Record>, ixfr: bool) -> Result<bool, XfrError> {
        let single = self.records.is_empty() && answers.len() == 1;
        for r in answers {
            self.push_record(r)?;
        }
        if ixfr && single && !self.done {
            // IXFR answered with the SOA alone.
            self.done = true;
            self.incremental = None;
        }
        Ok(self.done)
    }

    fn push_record(&mut self, r: Record) -> Result<(), XfrError> {
        if self.done {
            return Err(XfrError::Malformed("records after the final SOA"));
        }
        if self.records.len() >= MAX_RECORDS {
            return Err(XfrError::Malformed("too many records"));
        }
        let serial = soa_serial(&r);
        match (self.serial, self.records.len()) {
            (None, _) => {
                self.serial = Some(serial.ok_or(XfrError::Malformed("first record is not SOA"))?);
            }
            (Some(s), 1) => {
                let inc = serial.is_some_and(|x| x != s);
                self.incremental = Some(inc);
                if serial == Some(s) {
                    self.done = true; // an empty zone: SOA, SOA
                }
            }
            (Some(s), _) => match (self.incremental, serial) {
                (Some(false), Some(_)) => self.done = true,
                (Some(true), Some(x)) => {
                    if self.in_additions && x == s {
                        self.done = true;
                    } else {
                        self.in_additions = !self.in_additions;
                    }
                }
                _ => {}
            },
        }
        self.records.push(r);
        Ok(())
    }

    /// The complete stream's meaning.
    pub fn finish(self) -> Result<Received, XfrError> {
        let serial = self.serial.ok_or(XfrError::Malformed("empty transfer"))?;
        if !self.done {
            return Err(XfrError::Malformed("transfer ended early"));
        }
        let mut records = self.records;
        match self.incremental {
            None => Ok(Received::UpToDate(serial)),
            Some(false) => {
                records.pop();
                Ok(Received::Full(records))
            }
            Some(true) => split_incremental(records),
        }
    }
}

/// Splits `SOA(new) [SOA(old) dels.. SOA(new) adds..]+ SOA(new)` into differences.
fn split_incremental(records: Vec<Record>) -> Result<Received, XfrError> {
    let mut it = records.into_iter().skip(1).peekable();
    let mut diffs = Vec::new();
    while let Some(old) = it.next() {
        if it.peek().is_none() {
            break; // the final SOA
        }
        let mut dels = Vec::new();
        let new = loop {
            let r = it
                .next()
                .ok_or(XfrError::Malformed("difference without new SOA"))?;
            if r.record_type() == RecordType::SOA {
                break r;
            }
            dels.push(r);
        };
        let mut adds = Vec::new();
        while let Some(r) = it.peek() {
            if r.record_type() == RecordType::SOA {
                break;
            }
            if let Some(r) = it.next() {
                adds.push(r);
            }
        }
        diffs.push((old, dels, new, adds));
    }
    Ok(Received::Incremental(diffs))
}

/// Applies incremental differences to `current`; every difference must start at
/// the serial reached so far.
pub fn apply_incremental(
    current: &Zone,
    diffs: Vec<(Record, Vec<Record>, Record, Vec<Record>)>,
) -> Result<Zone, XfrError> {
    let mut records: Vec<Record> = current
        .records()
        .filter(|r| r.record_type() != RecordType::SOA)
        .collect();
    let mut soa = current.soa().clone();
    for (old, dels, new, adds) in diffs {
        let at = soa_serial(&soa).unwrap_or(0);
        if soa_serial(&old) != Some(at) {
            return Err(XfrError::Mismatch(at));
        }
        let gone: std::collections::HashSet<Vec<u8>> =
            dels.iter().map(|r| record_key(r, false)).collect();
        records.retain(|r| !gone.contains(&record_key(r, false)));
        records.extend(adds);
        soa = new;
    }
    let origin: Name = current.origin().clone();
    Ok(Zone::from_records(
        origin,
        std::iter::once(soa).chain(records),
    )?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::zone::{RecordLine, ZoneData};

    fn zone(serial: u32, extra: &[(&str, &str, &str)]) -> Zone {
        let mut records = vec![RecordLine {
            name: "example.com.".into(),
            ttl: 3600,
            rtype: "SOA".into(),
            rdata: "ns1.example.com. h.example.com. 1 60 30 600 300".into(),
        }];
        for (n, t, d) in extra {
            records.push(RecordLine {
                name: (*n).into(),
                ttl: 300,
                rtype: (*t).into(),
                rdata: (*d).into(),
            });
        }
        Zone::from_data(&ZoneData {
            origin: "example.com.".into(),
            serial,
            records,
        })
        .expect("zone")
    }

    fn collect(records: Vec<Record>, ixfr: bool) -> Received {
        let mut c = Collector::new();
        // Split across two messages to exercise the streaming.
        let mid = records.len() / 2;
        let mut first = records;
        let second = first.split_off(mid.max(1).min(first.len()));
        let done = c.push(first, ixfr).expect("push");
        if !done && !second.is_empty() {
            assert!(c.push(second, ixfr).expect("push"));
        }
        c.finish().expect("finish")
    }

    #[test]
    fn serials_follow_rfc1982() {
        assert!(serial_gt(2, 1));
        assert!(serial_gt(0, u32::MAX));
        assert!(!serial_gt(1, 1));
        assert!(!serial_gt(1, 2));
    }

    #[test]
    fn ixfr_round_trips_a_difference() {
        let v1 = zone(
            1,
            &[
                ("a.example.com.", "A", "192.0.2.1"),
                ("b.example.com.", "A", "192.0.2.2"),
            ],
        );
        let v2 = zone(
            2,
            &[
                ("a.example.com.", "A", "192.0.2.1"),
                ("c.example.com.", "TXT", "\"hi there\""),
            ],
        );
        let history = vec![Arc::new(v1.clone())];
        let stream = ixfr_records(&v2, &history, 1);
        assert_eq!(stream.len(), 6);
        let Received::Incremental(diffs) = collect(stream, true) else {
            panic!("expected incremental");
        };
        let applied = apply_incremental(&v1, diffs).expect("apply");
        assert_eq!(applied.serial(), 2);
        let (d, a) = diff(&applied, &v2);
        assert!(d.is_empty() && a.is_empty());
        // Up to date: SOA only.
        assert!(matches!(
            collect(ixfr_records(&v2, &history, 2), true),
            Received::UpToDate(2)
        ));
        // Unknown serial: AXFR-style.
        let Received::Full(all) = collect(ixfr_records(&v2, &history, 0), true) else {
            panic!("expected full");
        };
        assert_eq!(all.len(), v2.records().count());
        // Applying a difference to the wrong version is refused.
        let Received::Incremental(diffs) = collect(ixfr_records(&v2, &history, 1), true) else {
            panic!("expected incremental");
        };
        assert!(matches!(
            apply_incremental(&v2, diffs),
            Err(XfrError::Mismatch(2))
        ));
    }

    #[test]
    fn axfr_streams_and_packs() {
        let many: Vec<(String, &str, String)> = (0..2000)
            .map(|i| {
                (
                    format!("h{i}.example.com."),
                    "A",
                    format!("192.0.2.{}", i % 250),
                )
            })
            .collect();
        let refs: Vec<(&str, &str, &str)> = many
            .iter()
            .map(|(a, b, c)| (a.as_str(), *b, c.as_str()))
            .collect();
        let z = zone(5, &refs);
        let stream = axfr_records(&z);
        let q = Query::query(z.origin().clone(), RecordType::AXFR);
        let msgs = pack(7, &q, stream.clone());
        assert!(msgs.len() > 1);
        assert!(msgs.iter().all(|m| m.to_vec().expect("enc").len() < 65535));
        let Received::Full(all) = collect(stream, false) else {
            panic!("expected full");
        };
        assert_eq!(all.len(), 2001);
        assert!(Collector::new().push(vec![], false).is_ok());
        assert!(Collector::new().finish().is_err());
    }
}
