//! External secondaries: the catalog zone (RFC 9432, schema version 2) every DNS
//! cluster's primary serves, and the ready-to-paste BIND and Knot configuration
//! `hostplane cluster tsig show` prints. Pure (no I/O, no clock).
//!
//! The catalog of DNS cluster `C` is the zone `catalog.C.hostplane.invalid` (the
//! `.invalid` TLD, RFC 6761, can never be a real zone, so it collides with no
//! customer's; domains under `hostplane.invalid` are never served). It holds:
//! - `SOA invalid. invalid. <serial> 3600 600 1209600 0` and `NS invalid.` (RFC 9432
//!   §4.1: the catalog is not meant to be resolved);
//! - `version TXT "2"`;
//! - `<id>.zones PTR <zone>.` for every zone of the cluster, where `<id>` is
//!   [`member_id`]: a hash of the zone name, so a zone keeps its id for as long as
//!   it exists (a secondary would otherwise drop and re-add it).
//!
//! Its serial is journaled like every zone's (`crate::zones::ZoneSerials`), so it
//! grows whenever a zone is added or removed; the primary sends NOTIFY to the
//! cluster's secondaries and external secondaries, which may transfer it signed
//! with the cluster's TSIG key only.

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::net::SocketAddr;

use model::DomainName;
use proto::agent_v1::{ZoneContent, ZoneRecord};

use crate::zones::{SOA_EXPIRE, SOA_REFRESH, SOA_RETRY};

/// The parent of every catalog zone; names under it are reserved.
pub const CATALOG_SUFFIX: &str = "hostplane.invalid";
/// The catalog schema version (RFC 9432 §4.2.1).
pub const CATALOG_VERSION: &str = "2";

/// The catalog zone of DNS cluster `cluster` (no trailing dot).
pub fn catalog_name(cluster: &str) -> String {
    format!("catalog.{cluster}.{CATALOG_SUFFIX}")
}

/// Whether `name` lies in the reserved catalog namespace (never served as a
/// customer zone).
pub fn is_reserved(name: &DomainName) -> bool {
    let n = name.as_str();
    n == CATALOG_SUFFIX || n.ends_with(&format!(".{CATALOG_SUFFIX}"))
}

/// The stable member id of a zone: the first 16 bytes of BLAKE3 over its
/// lowercase name, in hex (a valid DNS label of 32 characters).
pub fn member_id(zone: &str) -> String {
    let hash = blake3::hash(zone.trim_end_matches('.').to_ascii_lowercase().as_bytes());
    hash.as_bytes()[..16]
        .iter()
        .fold(String::with_capacity(32), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
}

/// How many records precede the members in a catalog (SOA, NS, `version`).
pub const HEAD_RECORDS: usize = 3;

/// The record listing zone `zone` in catalog `origin`.
pub fn member_record(origin: &str, zone: &str) -> ZoneRecord {
    ZoneRecord {
        name: format!("{}.zones.{origin}", member_id(zone)),
        ttl: 0,
        rtype: "PTR".to_owned(),
        data: format!("{}.", zone.trim_end_matches('.')),
    }
}

/// The catalog zone `origin` listing `members` (zone names without trailing dot),
/// with serial 0 (the caller assigns the real one). Records: SOA, NS, `version`
/// ([`HEAD_RECORDS`]), then the members sorted by name.
pub fn build_catalog(origin: &str, members: &[&str]) -> ZoneContent {
    let rec = |name: String, rtype: &str, data: String| ZoneRecord {
        name,
        ttl: 0,
        rtype: rtype.to_owned(),
        data,
    };
    let mut records = vec![
        rec(
            origin.to_owned(),
            "SOA",
            format!("invalid. invalid. 0 {SOA_REFRESH} {SOA_RETRY} {SOA_EXPIRE} 0"),
        ),
        rec(origin.to_owned(), "NS", "invalid.".to_owned()),
        rec(
            format!("version.{origin}"),
            "TXT",
            format!("\"{CATALOG_VERSION}\""),
        ),
    ];
    let mut sorted: Vec<&str> = members.to_vec();
    sorted.sort_unstable();
    sorted.dedup();
    records.extend(sorted.into_iter().map(|zone| member_record(origin, zone)));
    ZoneContent {
        origin: origin.to_owned(),
        serial: 0,
        records,
    }
}

/// The zone name a member record lists (its data without the trailing dot).
fn member_of(r: &ZoneRecord) -> &str {
    r.data.trim_end_matches('.')
}

/// An order-independent digest of a catalog's members: the number of member
/// records and the lane-wise wrapping sum (4 × 64 bits) of each one's BLAKE3
/// hash. A member joining or leaving updates it in O(1), so a catalog's content
/// hash ([`MemberSum::content_hash`]) costs O(1) per change instead of hashing
/// every member again (at 100,000 zones, ~6 MB per build while zones were being
/// added). The catalog's [`crate::zones::ZoneSerials`] entry keeps this hash,
/// so its serial still changes exactly when the member set does. A sum of
/// hashes is weaker than one hash over the whole content (sets chosen to
/// collide are easier to find), which here could only keep a catalog's serial
/// across a restart when its members changed while no controller was running;
/// a change seen by a running controller always moves the serial
/// ([`patch_members`] reports it).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MemberSum {
    lanes: [u64; 4],
    count: u64,
}

impl MemberSum {
    /// The digest of `catalog`'s members (every record after the head). O(members).
    pub fn of(catalog: &ZoneContent) -> Self {
        let mut sum = Self::default();
        for r in catalog.records.iter().skip(HEAD_RECORDS) {
            sum.add(r);
        }
        sum
    }

    fn lanes_of(r: &ZoneRecord) -> [u64; 4] {
        let mut h = blake3::Hasher::new();
        for part in [r.name.as_str(), r.rtype.as_str(), r.data.as_str()] {
            h.update(part.as_bytes());
            h.update(b"\0");
        }
        h.update(&r.ttl.to_le_bytes());
        let b = h.finalize();
        let mut lanes = [0u64; 4];
        for (lane, chunk) in lanes.iter_mut().zip(b.as_bytes().chunks_exact(8)) {
            let mut w = [0u8; 8];
            w.copy_from_slice(chunk);
            *lane = u64::from_le_bytes(w);
        }
        lanes
    }

    /// Count member record `r` in.
    pub fn add(&mut self, r: &ZoneRecord) {
        for (a, b) in self.lanes.iter_mut().zip(Self::lanes_of(r)) {
            *a = a.wrapping_add(b);
        }
        self.count = self.count.wrapping_add(1);
    }

    /// Count member record `r` out.
    pub fn remove(&mut self, r: &ZoneRecord) {
        for (a, b) in self.lanes.iter_mut().zip(Self::lanes_of(r)) {
            *a = a.wrapping_sub(b);
        }
        self.count = self.count.wrapping_sub(1);
    }

    /// The content hash of `catalog` (whose members this digest sums), serial
    /// excluded: BLAKE3 over its origin, its head records and this digest.
    pub fn content_hash(&self, catalog: &ZoneContent) -> [u8; 32] {
        let mut h = blake3::Hasher::new();
        h.update(b"catalog members v1\0");
        h.update(catalog.origin.as_bytes());
        for r in catalog.records.iter().take(HEAD_RECORDS) {
            h.update(b"\n");
            h.update(r.name.as_bytes());
            h.update(&r.ttl.to_le_bytes());
            h.update(r.rtype.as_bytes());
            h.update(b" ");
            if r.rtype == "SOA" {
                // Everything but the serial.
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
        for lane in self.lanes {
            h.update(&lane.to_le_bytes());
        }
        h.update(&self.count.to_le_bytes());
        *h.finalize().as_bytes()
    }
}

/// Drop the members `leave` names from catalog `catalog` (built by
/// [`build_catalog`]) and add those `join` names (a name in both stays listed),
/// keeping the members in name order, so the result equals `build_catalog` of the
/// new member set (serial aside). `sum` (the catalog's [`MemberSum`]) follows the
/// members that came and went. Returns whether a member came or went.
///
/// Work proportional to the change, not to the catalog: each name is found by
/// binary search, and only the members after the first one leaving (joining) are
/// moved, once. New zones mostly sort last (a bulk fill in name order) or anywhere
/// (then the move is one pass of plain copies); the catalog is never rebuilt or
/// reallocated as a whole. A merge into a new list per build made the builder's
/// cost grow with the platform (measured: 8% of the controller's CPU at 80,000
/// zones while domains were being added, most of it the new list's page faults).
pub fn patch_members(
    catalog: &mut ZoneContent,
    sum: &mut MemberSum,
    leave: &BTreeSet<String>,
    join: &BTreeSet<String>,
) -> bool {
    let head = HEAD_RECORDS.min(catalog.records.len());
    let origin = &catalog.origin;
    let records = &mut catalog.records;
    let find = |records: &[ZoneRecord], name: &str| {
        records[head..].binary_search_by(|r| member_of(r).cmp(name))
    };
    // Leaving members (in name order, so their places ascend), dropped in one
    // compaction from the first of them.
    let gone: Vec<usize> = leave
        .iter()
        .filter(|n| !join.contains(*n))
        .filter_map(|n| find(records, n).ok())
        .map(|i| head + i)
        .collect();
    let mut changed = false;
    if let Some(&first) = gone.first() {
        changed = true;
        let mut next = gone.iter().copied().peekable();
        let mut kept = first;
        for i in first..records.len() {
            if next.next_if_eq(&i).is_some() {
                sum.remove(&records[i]);
                continue;
            }
            records.swap(kept, i);
            kept += 1;
        }
        records.truncate(kept);
    }
    // Joining members not listed yet, merged in from the place of the first.
    let joining: Vec<&String> = join.iter().filter(|n| find(records, n).is_err()).collect();
    let Some(first) = joining.first() else {
        return changed;
    };
    let at = head + find(records, first).unwrap_or_else(|i| i);
    let after = records.split_off(at);
    records.reserve(after.len() + joining.len());
    let mut after = after.into_iter().peekable();
    for name in joining {
        while let Some(r) = after.next_if(|r| member_of(r) < name.as_str()) {
            records.push(r);
        }
        let r = member_record(origin, name);
        sum.add(&r);
        records.push(r);
    }
    records.extend(after);
    true
}

/// What an external secondary needs to know.
#[derive(Debug, Clone)]
pub struct SecondarySetup<'a> {
    /// The DNS cluster.
    pub cluster: &'a str,
    /// TSIG key name (absolute, with the trailing dot).
    pub key_name: &'a str,
    /// TSIG algorithm (`hmac-sha256`).
    pub algorithm: &'a str,
    /// TSIG secret, base64.
    pub secret: &'a str,
    /// Where to transfer from: the cluster primary's DNS endpoints.
    pub primaries: &'a [SocketAddr],
}

impl SecondarySetup<'_> {
    fn remote_id(&self) -> String {
        format!("hostplane-{}", self.cluster)
    }

    /// BIND 9.18+: the part that goes inside `options { }` (or a `view`).
    pub fn bind_options(&self) -> String {
        let catalog = catalog_name(self.cluster);
        format!(
            "catalog-zones {{\n    zone \"{catalog}\" default-primaries {{ {}; }};\n}};\n",
            self.remote_id()
        )
    }

    /// BIND 9.18+: the key, the primaries list and the catalog zone (top level of
    /// `named.conf`).
    pub fn bind_config(&self) -> String {
        let id = self.remote_id();
        let key = self.key_name;
        let mut out = format!(
            "key \"{key}\" {{\n    algorithm {};\n    secret \"{}\";\n}};\nprimaries \"{id}\" {{\n",
            self.algorithm, self.secret
        );
        for p in self.primaries {
            let _ = writeln!(out, "    {} port {} key \"{key}\";", p.ip(), p.port());
        }
        let _ = write!(
            out,
            "}};\nzone \"{}\" {{\n    type secondary;\n    primaries {{ {id}; }};\n}};\n",
            catalog_name(self.cluster)
        );
        out
    }

    /// Knot DNS 3.1+: key, remote, notify ACL, the template of member zones and the
    /// catalog zone (`catalog-role: interpret`). Sections may be appended to an
    /// existing `knot.conf` or put in an included file.
    pub fn knot_config(&self) -> String {
        let id = self.remote_id();
        let key = self.key_name;
        let addresses: Vec<String> = self
            .primaries
            .iter()
            .map(|p| format!("{}@{}", p.ip(), p.port()))
            .collect();
        let ips: Vec<String> = self.primaries.iter().map(|p| p.ip().to_string()).collect();
        format!(
            "key:\n  - id: {key}\n    algorithm: {alg}\n    secret: {secret}\n\
             remote:\n  - id: {id}\n    address: [{addresses}]\n    key: {key}\n\
             acl:\n  - id: {id}-notify\n    address: [{ips}]\n    key: {key}\n    action: notify\n\
             template:\n  - id: {id}\n    master: {id}\n    acl: {id}-notify\n\
             \x20   # storage, zonefile-sync ...: as for your other secondary zones\n\
             zone:\n  - domain: {catalog}.\n    master: {id}\n    acl: {id}-notify\n\
             \x20   catalog-role: interpret\n    catalog-template: {id}\n",
            alg = self.algorithm,
            secret = self.secret,
            addresses = addresses.join(", "),
            ips = ips.join(", "),
            catalog = catalog_name(self.cluster),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::zones::to_zone_file;
    use proptest::prelude::*;

    proptest! {
        /// Patching a catalog equals building it from the new member set, for few
        /// changes and many alike.
        #[test]
        fn patched_catalog_equals_the_built_one(
            before in proptest::collection::btree_set("[a-e]{1,3}\\.test", 0..40),
            leave in proptest::collection::btree_set("[a-e]{1,3}\\.test", 0..30),
            join in proptest::collection::btree_set("[a-e]{1,3}\\.test", 0..30),
        ) {
            let origin = catalog_name("c1");
            fn names(set: &BTreeSet<String>) -> Vec<&str> {
                set.iter().map(String::as_str).collect()
            }
            let mut catalog = build_catalog(&origin, &names(&before));
            let after: BTreeSet<String> = before
                .iter()
                .filter(|n| !leave.contains(*n) || join.contains(*n))
                .chain(join.iter())
                .cloned()
                .collect();
            let mut sum = MemberSum::of(&catalog);
            let hash_before = sum.content_hash(&catalog);
            let changed = patch_members(&mut catalog, &mut sum, &leave, &join);
            let built = build_catalog(&origin, &names(&after));
            prop_assert_eq!(&catalog, &built);
            prop_assert_eq!(changed, after != before);
            // The digest kept by the patch equals the one of the built catalog,
            // and the content hash moves exactly when the members do.
            prop_assert_eq!(sum, MemberSum::of(&built));
            prop_assert_eq!(sum.content_hash(&built) != hash_before, after != before);
        }
    }

    fn catalog() -> ZoneContent {
        let mut z = build_catalog(
            &catalog_name("dns-eu"),
            &[
                "example.com",
                "b.example",
                "xn--bcher-kva.example",
                "b.example",
            ],
        );
        crate::zones::set_serial(&mut z, 2_026_112_500);
        z
    }

    #[test]
    fn catalog_zone_snapshot() {
        insta::assert_snapshot!("catalog", to_zone_file(&catalog()));
    }

    #[test]
    fn member_ids_are_stable_labels() {
        let id = member_id("example.com");
        assert_eq!(id.len(), 32);
        assert!(id.bytes().all(|b| b.is_ascii_hexdigit()));
        assert_eq!(id, member_id("Example.COM."));
        assert_ne!(id, member_id("example.net"));
        // The id does not depend on the other members.
        let alone = build_catalog("c.invalid", &["example.com"]);
        let with = build_catalog("c.invalid", &["a.example", "example.com"]);
        let ptr = |z: &ZoneContent| {
            z.records
                .iter()
                .find(|r| r.data == "example.com.")
                .map(|r| r.name.clone())
        };
        assert_eq!(ptr(&alone), ptr(&with));
        assert!(is_reserved(
            &DomainName::new("catalog.x.hostplane.invalid").unwrap()
        ));
        assert!(is_reserved(&DomainName::new("hostplane.invalid").unwrap()));
        assert!(!is_reserved(
            &DomainName::new("myhostplane.invalid").unwrap()
        ));
    }

    /// BIND's checker loads the catalog zone.
    #[test]
    fn catalog_passes_named_checkzone() {
        let z = catalog();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("catalog.zone");
        std::fs::write(&path, to_zone_file(&z)).unwrap();
        let out = std::process::Command::new("named-checkzone")
            .args(["-k", "fail", "-i", "local"])
            .arg(&z.origin)
            .arg(&path)
            .output()
            .expect("named-checkzone (bind9-utils)");
        assert!(
            out.status.success(),
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    fn setup() -> SecondarySetup<'static> {
        static PRIMARIES: std::sync::LazyLock<Vec<SocketAddr>> =
            std::sync::LazyLock::new(|| vec!["192.0.2.53:53".parse().unwrap()]);
        SecondarySetup {
            cluster: "dns-eu",
            key_name: "xfr.dns-eu.hostplane.",
            algorithm: "hmac-sha256",
            secret: "aG9zdHBsYW5lLXRlc3QtdHNpZy1rZXktMzItYnl0ZXMh",
            primaries: &PRIMARIES,
        }
    }

    #[test]
    fn secondary_config_snapshots() {
        let s = setup();
        insta::assert_snapshot!("bind_options", s.bind_options());
        insta::assert_snapshot!("bind_config", s.bind_config());
        insta::assert_snapshot!("knot_config", s.knot_config());
    }

    /// The BIND text is accepted by `named-checkconf`, the Knot text by `knotc
    /// conf-check`.
    #[test]
    fn secondary_configs_pass_the_daemons_checkers() {
        let s = setup();
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().display();
        let named = format!(
            "options {{\n  directory \"{d}\";\n{}}};\n{}",
            s.bind_options(),
            s.bind_config()
        );
        let path = dir.path().join("named.conf");
        std::fs::write(&path, &named).unwrap();
        let out = std::process::Command::new("named-checkconf")
            .arg(&path)
            .output()
            .expect("named-checkconf (bind9-utils)");
        assert!(
            out.status.success(),
            "{named}\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        let knot = format!(
            "server:\n    rundir: \"{d}\"\ndatabase:\n    storage: \"{d}\"\n{}",
            s.knot_config()
        );
        let path = dir.path().join("knot.conf");
        std::fs::write(&path, &knot).unwrap();
        let out = std::process::Command::new("knotc")
            .arg("-c")
            .arg(&path)
            .arg("conf-check")
            .output()
            .expect("knotc (knot)");
        assert!(
            out.status.success(),
            "{knot}\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}
