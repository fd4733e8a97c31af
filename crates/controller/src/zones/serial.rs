//! Zone serials: RFC 1982 arithmetic, the date-based next serial, and
//! [`ZoneSerials`], the per-zone memory that makes a serial change exactly when
//! the zone's content does.

use std::collections::HashMap;

use proto::agent_v1::ZoneContent;

use super::RType;

/// Set the serial of a built zone (its field and the SOA record's data). A zone
/// has one SOA, first in every zone and catalog built here, so this stops there.
pub fn set_serial(zone: &mut ZoneContent, serial: u32) {
    zone.serial = serial;
    if let Some(r) = zone
        .records
        .iter_mut()
        .find(|r| r.rtype == RType::Soa.as_str())
    {
        let mut fields: Vec<&str> = r.data.split_whitespace().collect();
        let text = serial.to_string();
        if let Some(f) = fields.get_mut(2) {
            *f = &text;
        }
        r.data = fields.join(" ");
    }
}

/// True if serial `a` is greater than `b` in RFC 1982 serial arithmetic (32 bits):
/// `a` is ahead of `b` by less than 2^31. Undefined pairs (exactly 2^31 apart)
/// compare false both ways.
pub fn serial_gt(a: u32, b: u32) -> bool {
    a != b && a.wrapping_sub(b) < 0x8000_0000
}

/// The serial for new content of a zone: one more than the previous serial, or
/// the date serial `today × 100` (`YYYYMMDD00`) when that is greater in serial
/// arithmetic. `today_yyyymmdd` is e.g. `20261125`.
pub fn next_serial(prev: Option<u32>, today_yyyymmdd: u32) -> u32 {
    let date = today_yyyymmdd.saturating_mul(100);
    match prev {
        None => date.max(1),
        Some(p) => {
            let next = p.wrapping_add(1);
            if serial_gt(date, next) {
                date
            } else {
                next
            }
        }
    }
}

/// The per-zone memory of the serial: the hash of the last content and the serial
/// it got, so a serial changes exactly when the zone's content does.
#[derive(Debug, Clone, Default)]
pub struct ZoneSerials {
    zones: HashMap<String, ([u8; 32], u32)>,
    /// Zones whose serial changed since [`ZoneSerials::take_changes`].
    changed: Vec<String>,
}

/// BLAKE3 hash of a zone's content, serial excluded. The bytes are gathered in a
/// buffer and hashed a block at a time (no string per record, one hasher call per
/// 64 KiB): a catalog of 100,000 members is hashed each time a member comes or goes.
fn content_hash(zone: &ZoneContent) -> [u8; 32] {
    use std::io::Write as _;
    const FLUSH: usize = 64 * 1024;
    let mut h = blake3::Hasher::new();
    let mut buf: Vec<u8> = Vec::with_capacity(FLUSH + 1024);
    buf.extend_from_slice(zone.origin.as_bytes());
    for r in &zone.records {
        buf.push(b'\n');
        buf.extend_from_slice(r.name.as_bytes());
        // Writing into a Vec cannot fail.
        let _ = write!(buf, " {} ", r.ttl);
        buf.extend_from_slice(r.rtype.as_bytes());
        buf.push(b' ');
        if r.rtype == RType::Soa.as_str() {
            // Everything but the serial.
            for (i, f) in r.data.split_whitespace().enumerate() {
                if i != 2 {
                    buf.extend_from_slice(f.as_bytes());
                    buf.push(b' ');
                }
            }
        } else {
            buf.extend_from_slice(r.data.as_bytes());
        }
        if buf.len() >= FLUSH {
            h.update(&buf);
            buf.clear();
        }
    }
    h.update(&buf);
    *h.finalize().as_bytes()
}

impl ZoneSerials {
    /// Give `zone` its serial: the previous one if its content did not change,
    /// else [`next_serial`].
    pub fn assign(&mut self, zone: &mut ZoneContent, today_yyyymmdd: u32) {
        let hash = content_hash(zone);
        self.assign_hashed(zone, hash, today_yyyymmdd);
    }

    /// [`ZoneSerials::assign`] with the content's hash computed by the caller
    /// (a catalog's, kept from its members as they come and go:
    /// [`crate::catalog::MemberSum`]). The same zone must always be given the
    /// same kind of hash.
    pub fn assign_hashed(&mut self, zone: &mut ZoneContent, hash: [u8; 32], today_yyyymmdd: u32) {
        let serial = match self.zones.get(&zone.origin) {
            Some((h, s)) if *h == hash => *s,
            prev => {
                self.changed.push(zone.origin.clone());
                next_serial(prev.map(|(_, s)| *s), today_yyyymmdd)
            }
        };
        self.zones.insert(zone.origin.clone(), (hash, serial));
        set_serial(zone, serial);
    }

    /// Remember a zone's last content hash and serial (from persisted state), so a
    /// restarted controller continues the zone's serials instead of starting over.
    pub fn restore(&mut self, origin: String, hash: [u8; 32], serial: u32) {
        self.zones.insert(origin, (hash, serial));
    }

    /// The zones whose serial changed since the last call: `(origin, hash, serial)`.
    pub fn take_changes(&mut self) -> Vec<(String, [u8; 32], u32)> {
        let mut out = Vec::new();
        for origin in std::mem::take(&mut self.changed) {
            if let Some((h, s)) = self.zones.get(&origin) {
                out.push((origin, *h, *s));
            }
        }
        out
    }

    /// Every zone's memory, for compaction: `(origin, hash, serial)`.
    pub fn entries(&self) -> impl Iterator<Item = (&str, &[u8; 32], u32)> {
        self.zones.iter().map(|(o, (h, s))| (o.as_str(), h, *s))
    }

    /// Forget the zones not in `keep` (deleted domains).
    pub fn retain(&mut self, keep: impl Fn(&str) -> bool) {
        self.zones.retain(|k, _| keep(k));
    }

    /// The last serial of a zone.
    pub fn serial(&self, origin: &str) -> Option<u32> {
        self.zones.get(origin).map(|(_, s)| *s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proto::agent_v1::ZoneRecord;

    /// The hash as it was computed before the buffer (field by field), so that
    /// serials remembered by an older controller stay valid.
    fn field_by_field(zone: &ZoneContent) -> [u8; 32] {
        let mut h = blake3::Hasher::new();
        h.update(zone.origin.as_bytes());
        for r in &zone.records {
            h.update(b"\n");
            h.update(r.name.as_bytes());
            h.update(b" ");
            h.update(r.ttl.to_string().as_bytes());
            h.update(b" ");
            h.update(r.rtype.as_bytes());
            h.update(b" ");
            if r.rtype == "SOA" {
                for (i, f) in r.data.split_whitespace().enumerate() {
                    if i != 2 {
                        h.update(f.as_bytes());
                        h.update(b" ");
                    }
                }
            } else {
                h.update(r.data.as_bytes());
            }
        }
        *h.finalize().as_bytes()
    }

    #[test]
    fn buffered_hash_equals_the_field_by_field_hash_and_ignores_the_serial() {
        let names: Vec<String> = (0..3000).map(|i| format!("z{i}.test")).collect();
        let refs: Vec<&str> = names.iter().map(String::as_str).collect();
        let mut big = crate::catalog::build_catalog("catalog.c.hostplane.invalid", &refs);
        big.records.push(ZoneRecord {
            name: "x".into(),
            ttl: 4_294_967_295,
            rtype: "TXT".into(),
            data: "\"a b\"".into(),
        });
        assert_eq!(content_hash(&big), field_by_field(&big));
        let before = content_hash(&big);
        set_serial(&mut big, 7);
        assert_eq!(content_hash(&big), before);
        big.records.pop();
        assert_ne!(content_hash(&big), before);
    }
}
