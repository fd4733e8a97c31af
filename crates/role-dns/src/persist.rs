//! Transferred zones on disk: `<dir>/<zone>.json`, written atomically and fsynced
//! (file and directory) with the `durable` crate, loaded at start so a restarted
//! secondary answers at once.
//!
//! Records are stored in DNS wire format (base64), so every record type a primary
//! sends survives exactly, and the time of the last successful refresh is kept so the
//! SOA expire timer keeps running across restarts.
//!
//! File names are the zone name restricted to `[a-z0-9._-]` (no `/`, no leading dot),
//! so a name can never leave the directory.

use std::path::{Path, PathBuf};

use base64::Engine as _;
use hickory_proto::rr::{Name, Record};
use hickory_proto::serialize::binary::{BinDecodable, BinDecoder, BinEncodable};
use serde::{Deserialize, Serialize};

use crate::zone::Zone;

/// A persistence failure.
#[derive(Debug, thiserror::Error)]
pub enum PersistError {
    /// Reading or writing failed.
    #[error(transparent)]
    Io(#[from] std::io::Error),
    /// The zone name cannot be a file name.
    #[error("zone name {0:?} cannot be stored")]
    BadName(String),
    /// The file content is unusable.
    #[error("corrupt zone file {0}")]
    Corrupt(String),
}

/// The stored form of a transferred zone.
#[derive(Serialize, Deserialize)]
struct Stored {
    origin: String,
    serial: u32,
    /// Seconds since the epoch of the last successful refresh from the primary.
    refreshed_at: u64,
    /// Every record (SOA first), wire format, concatenated, base64.
    records: String,
}

/// A zone loaded from disk.
#[derive(Debug)]
pub struct Loaded {
    /// The zone.
    pub zone: Zone,
    /// When it was last confirmed by the primary (seconds since the epoch).
    pub refreshed_at: u64,
}

/// The file that holds `origin`.
pub fn path_for(dir: &Path, origin: &Name) -> Result<PathBuf, PersistError> {
    let text = origin.to_lowercase().to_ascii();
    let stem = text.trim_end_matches('.');
    let ok = !stem.is_empty()
        && !stem.starts_with('.')
        && stem
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b));
    if !ok {
        return Err(PersistError::BadName(text));
    }
    Ok(dir.join(format!("{stem}.json")))
}

/// Writes `zone` durably.
pub fn save(dir: &Path, zone: &Zone, refreshed_at: u64) -> Result<(), PersistError> {
    durable::create_private_dir(dir)?;
    let path = path_for(dir, zone.origin())?;
    let mut wire = Vec::new();
    for r in zone.records() {
        wire.extend(
            r.to_bytes()
                .map_err(|e| PersistError::Corrupt(e.to_string()))?,
        );
    }
    let stored = Stored {
        origin: zone.origin().to_ascii(),
        serial: zone.serial(),
        refreshed_at,
        records: base64::engine::general_purpose::STANDARD.encode(wire),
    };
    let json = serde_json::to_vec(&stored).map_err(|e| PersistError::Corrupt(e.to_string()))?;
    durable::write_atomic(&path, &json, 0o600)?;
    Ok(())
}

/// Removes the stored copy of `origin` (absent is fine).
pub fn remove(dir: &Path, origin: &Name) -> Result<(), PersistError> {
    let path = path_for(dir, origin)?;
    match std::fs::remove_file(&path) {
        Ok(()) => Ok(durable::sync_dir(dir)?),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e.into()),
    }
}

fn decode(bytes: &[u8], what: &str) -> Result<Loaded, PersistError> {
    let corrupt = |m: String| PersistError::Corrupt(format!("{what}: {m}"));
    let stored: Stored = serde_json::from_slice(bytes).map_err(|e| corrupt(e.to_string()))?;
    let wire = base64::engine::general_purpose::STANDARD
        .decode(stored.records)
        .map_err(|e| corrupt(e.to_string()))?;
    let mut decoder = BinDecoder::new(&wire);
    let mut records = Vec::new();
    while !decoder.is_empty() {
        records.push(Record::read(&mut decoder).map_err(|e| corrupt(e.to_string()))?);
    }
    let origin = Name::from_ascii(&stored.origin).map_err(|e| corrupt(e.to_string()))?;
    let zone = Zone::from_records(origin, records).map_err(|e| corrupt(e.to_string()))?;
    Ok(Loaded {
        zone,
        refreshed_at: stored.refreshed_at,
    })
}

/// Loads every stored zone of `dir`; unreadable files are skipped with a warning.
pub fn load_all(dir: &Path) -> Vec<Loaded> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for entry in entries.flatten() {
        let path = entry.path();
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with('.') || !name.ends_with(".json") {
            continue;
        }
        match std::fs::read(&path)
            .map_err(PersistError::from)
            .and_then(|b| decode(&b, &name))
        {
            Ok(loaded) => out.push(loaded),
            Err(e) => tracing::warn!(file = %path.display(), error = %e, "skipping stored zone"),
        }
    }
    out
}

/// The zone in master-file presentation format (for `named-checkzone` and humans).
pub fn to_text(zone: &Zone) -> String {
    let mut out = format!("$ORIGIN {}\n", zone.origin().to_ascii());
    for r in zone.records() {
        let data = match &r.data {
            hickory_proto::rr::RData::TXT(txt) => txt
                .txt_data
                .iter()
                .map(|s| {
                    let mut q = String::from("\"");
                    for b in s.iter() {
                        match b {
                            b'"' | b'\\' => {
                                q.push('\\');
                                q.push(char::from(*b));
                            }
                            0x20..=0x7e => q.push(char::from(*b)),
                            _ => q.push_str(&format!("\\{b:03}")),
                        }
                    }
                    q.push('"');
                    q
                })
                .collect::<Vec<_>>()
                .join(" "),
            other => other.to_string(),
        };
        out.push_str(&format!(
            "{} {} IN {} {}\n",
            r.name.to_ascii(),
            r.ttl,
            r.record_type(),
            data
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::zone::{RecordLine, ZoneData};

    #[test]
    fn round_trips_and_rejects_bad_names() {
        let dir = tempfile::tempdir().expect("dir");
        let line = |n: &str, t: &str, d: &str| RecordLine {
            name: n.into(),
            ttl: 300,
            rtype: t.into(),
            rdata: d.into(),
        };
        let zone = Zone::from_data(&ZoneData {
            origin: "example.com.".into(),
            serial: 9,
            records: vec![
                line(
                    "example.com.",
                    "SOA",
                    "ns1.example.com. h.example.com. 1 60 30 600 300",
                ),
                line("example.com.", "TXT", "\"v=spf1 mx -all\" \"a\\\"b\""),
                line("example.com.", "CAA", "0 issue \"letsencrypt.org\""),
            ],
        })
        .expect("zone");
        save(dir.path(), &zone, 1234).expect("save");
        let loaded = load_all(dir.path());
        assert_eq!(loaded.len(), 1);
        assert_eq!(loaded[0].refreshed_at, 1234);
        assert_eq!(loaded[0].zone.serial(), 9);
        let (d, a) = crate::xfr::diff(&loaded[0].zone, &zone);
        assert!(d.is_empty() && a.is_empty());
        assert!(to_text(&zone).contains("\"v=spf1 mx -all\""));
        std::fs::write(dir.path().join("bad.json"), b"{").expect("write");
        assert_eq!(load_all(dir.path()).len(), 1);
        let bad = Name::from_labels(vec![&b"a/b"[..], b"example"]).expect("name");
        assert!(path_for(dir.path(), &bad).is_err());
        remove(dir.path(), zone.origin()).expect("remove");
        assert!(load_all(dir.path()).is_empty());
    }
}
