//! Tests of [`super`]: deltas and snapshots against whole documents, shared
//! items and blobs, TLS blobs made again from the sites, history bounds.

use super::*;
use proto::agent_delta::{join, ConfigDelta, Item};
use proto::agent_v1::{RoleConfig, ServerIdentity, TlsMaterial, WebConfig, WebSite};
use std::collections::BTreeMap;

fn hex(k: &BlobKey) -> String {
    k.iter().map(|b| format!("{b:02x}")).collect()
}

#[test]
fn blob_keys_are_the_hashes_bytes() {
    let h = blake3::hash(b"x");
    assert_eq!(blob_key(&h.to_hex()), *h.as_bytes());
    assert_eq!(hex(&blob_key(&h.to_hex())), h.to_hex().as_str());
    // Anything else is keyed by its own hash, alike each time.
    assert_eq!(blob_key("not-hex"), blob_key("not-hex"));
    assert_ne!(blob_key("not-hex"), blob_key("not-hey"));
}

fn doc(revision: i64, sites: &[&str]) -> DesiredConfig {
    DesiredConfig {
        format: proto::agent_v1::CONFIG_FORMAT,
        revision,
        server: ServerIdentity {
            name: "web-1".into(),
            role: "web".into(),
            cluster: "web-eu".into(),
            rank: 0,
            addresses: vec![],
            hostname: "web-1.example".into(),
        },
        role: RoleConfig::Web(WebConfig {
            sites: sites
                .iter()
                .map(|d| WebSite {
                    docroot: None,
                    hsts: false,
                    php_version: None,
                    php_ini: Default::default(),
                    mail: None,
                    cron: None,
                    domain: (*d).into(),
                    aliases: vec![],
                    php: false,
                    mode: model::PlacementMode::All,
                    active: true,
                    https_redirect: false,
                    tls: Some(TlsMaterial {
                        cert_pem: format!("CERT {d} {}", "c".repeat(600)).into(),
                        key_pem: format!("KEY {d} {}", "k".repeat(300)).into(),
                    }),
                    files_origin: None,
                    local_paths: Vec::new(),
                    quota_mb: 0,
                })
                .map(std::sync::Arc::new)
                .collect(),
            files_origin: None,
            peers: Vec::new(),
            acme_challenges: Vec::new(),
        }),
    }
}

/// What an agent does: apply the answer to its items, fetch blobs, join.
fn apply(
    items: &mut BTreeMap<String, Item>,
    answer: &str,
    t: &Tracked,
) -> (ConfigDelta, RoleConfig) {
    let d: ConfigDelta = serde_json::from_str(answer).unwrap();
    if d.is_snapshot() {
        items.clear();
    }
    for id in &d.removals {
        items.remove(id);
    }
    for item in &d.upserts {
        items.insert(item.id.clone(), item.clone());
    }
    let got = digest(
        items
            .iter()
            .map(|(id, i)| (id.as_str(), i.hash()))
            .collect::<Vec<_>>()
            .iter()
            .map(|(id, h)| (*id, h)),
    );
    assert_eq!(got, d.digest);
    let blobs: HashMap<String, Vec<u8>> = items
        .values()
        .flat_map(|i| i.blobs.values())
        .map(|h| (h.clone(), t.blob(h).expect("blob served")))
        .collect();
    let role = join(items.values(), |h| blobs.get(h).map(|b| &b[..])).unwrap();
    (d, role)
}

#[test]
fn deltas_and_snapshots_rebuild_the_full_document() {
    let mut sh = Shared::default();
    let d1 = doc(5, &["a.example", "b.example"]);
    let t1 = Tracked::new(&d1, None, &mut sh);
    let mut items = BTreeMap::new();
    let (snap, role) = apply(&mut items, &t1.answer(0, &d1), &t1);
    assert!(snap.is_snapshot());
    assert_eq!(role, d1.role);

    let d2 = doc(9, &["a.example", "b.example", "c.example"]);
    let t2 = Tracked::new(&d2, Some(&t1), &mut sh);
    let d3 = doc(12, &["a.example", "c.example"]);
    let t3 = Tracked::new(&d3, Some(&t2), &mut sh);
    // From 5: one site added, one removed; from 9: one removed.
    let (delta, role) = apply(&mut items.clone(), &t3.answer(5, &d3), &t3);
    assert_eq!((delta.from, delta.to), (5, 12));
    assert_eq!(delta.upserts.len(), 1);
    assert_eq!(delta.removals, ["sites/b.example"]);
    assert_eq!(role, d3.role);
    let (d, role) = apply(&mut items, &t2.answer(5, &d2), &t2);
    assert_eq!(d.upserts[0].id, "sites/c.example");
    assert_eq!(role, d2.role);
    let (d, role) = apply(&mut items, &t3.answer(9, &d3), &t3);
    assert!(d.upserts.is_empty() && d.removals == ["sites/b.example"]);
    assert_eq!(role, d3.role);
    // Unknown revisions (restart, another controller, too old) → snapshot.
    assert!(!t3.knows(7) && !t3.knows(13) && !t3.knows(0));
    let (d, role) = apply(&mut BTreeMap::new(), &t3.answer(7, &d3), &t3);
    assert!(d.is_snapshot());
    assert_eq!(role, d3.role);
}

/// [`Tracked::advance`] with only the changed items gives the very tracker a
/// whole split gives: items, digest, answers from every revision, blobs
/// (retired ones included).
#[test]
fn advancing_by_changes_equals_tracking_the_whole_document() {
    let mut sh = Shared::default();
    let mut docs = [
        doc(5, &["a.example", "b.example", "d.example"]),
        doc(9, &["a.example", "b.example", "c.example", "d.example"]),
        doc(12, &["a.example", "c.example", "d.example"]),
        doc(13, &["a.example", "c.example", "d.example"]),
        doc(20, &[]),
        doc(21, &["e.example"]),
    ];
    // A changed certificate (same site, new blob) at 13.
    if let RoleConfig::Web(w) = &mut docs[3].role {
        if let Some(tls) = std::sync::Arc::make_mut(&mut w.sites[1]).tls.as_mut() {
            tls.key_pem = format!("{}rotated", tls.key_pem).into();
        }
    }
    let mut whole = Tracked::new(&docs[0], None, &mut sh);
    let mut advanced = Tracked::new(&docs[0], None, &mut sh);
    for pair in docs.windows(2) {
        let (old, new) = (&pair[0], &pair[1]);
        whole = Tracked::new(new, Some(&whole), &mut sh);
        let changes = proto::agent_delta::split_changes(&old.role, &new.role).unwrap();
        advanced = advanced.advance(new, changes, &mut sh);
        assert_eq!(advanced.digest, whole.digest);
        assert_eq!(advanced.base, whole.base);
        let ids = |t: &Tracked| {
            t.history
                .iter()
                .map(|(r, ids)| {
                    let mut ids = ids.to_vec();
                    ids.sort();
                    (*r, ids)
                })
                .collect::<Vec<_>>()
        };
        assert_eq!(ids(&advanced), ids(&whole));
        for after in [0, 5, 7, 9, 12, 13, 20] {
            assert_eq!(advanced.answer(after, new), whole.answer(after, new));
        }
        let blobs = |t: &Tracked| {
            let mut b: Vec<(BlobKey, u32)> = t.blobs.iter().map(|(h, b)| (*h, b.refs)).collect();
            b.sort();
            let mut r: Vec<BlobKey> = t.retired.keys().copied().collect();
            r.sort();
            (b, r)
        };
        assert_eq!(blobs(&advanced), blobs(&whole));
        let mut items = BTreeMap::new();
        let (_, role) = apply(&mut items, &advanced.answer(0, new), &advanced);
        assert_eq!(role, new.role);
    }
}

/// Wire sizes for a synthetic web server (`HP_DELTA_SITES` sites, default
/// 2,000; the report's figures are for 100,000), each with a real ECDSA P-256
/// certificate and key from rcgen (varied per site): the whole document, the
/// snapshot of items, and what one new site costs as a delta.
#[test]
fn wire_sizes_of_snapshot_and_one_site_delta() {
    let mut sh = Shared::default();
    let n: usize = std::env::var("HP_DELTA_SITES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2_000);
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let params = rcgen::CertificateParams::new(vec!["site-000000.example".to_string()]).unwrap();
    let cert = params.self_signed(&key).unwrap().pem();
    let key = key.serialize_pem();
    let site = |i: usize| WebSite {
        docroot: None,
        hsts: false,
        php_version: None,
        php_ini: Default::default(),
        mail: None,
        cron: None,
        domain: format!("site-{i:06}.example"),
        aliases: vec![format!("www.site-{i:06}.example")],
        php: i.is_multiple_of(3),
        mode: model::PlacementMode::All,
        active: true,
        https_redirect: true,
        tls: Some(TlsMaterial {
            cert_pem: format!("{cert}{i:06}").into(),
            key_pem: format!("{key}{i:06}").into(),
        }),
        files_origin: Some("https://127.0.0.1:7443".into()),
        local_paths: Vec::new(),
        quota_mb: 0,
    };
    let mut d1 = doc(10, &[]);
    let mut sites: Vec<std::sync::Arc<WebSite>> = (0..n).map(site).map(Into::into).collect();
    d1.role = RoleConfig::Web(WebConfig {
        sites: sites.clone(),
        files_origin: None,
        peers: Vec::new(),
        acme_challenges: Vec::new(),
    });
    let t1 = Tracked::new(&d1, None, &mut sh);
    sites.push(site(n).into());
    let mut d2 = d1.clone();
    d2.revision = 11;
    d2.role = RoleConfig::Web(WebConfig {
        sites,
        files_origin: None,
        peers: Vec::new(),
        acme_challenges: Vec::new(),
    });
    let t2 = Tracked::new(&d2, Some(&t1), &mut sh);
    let full = serde_json::to_vec(&d2).unwrap().len();
    let snapshot = t2.answer(0, &d2).len();
    let delta = t2.answer(10, &d2);
    let parsed: ConfigDelta = serde_json::from_str(&delta).unwrap();
    assert_eq!(parsed.upserts.len(), 1);
    let blob_bytes: usize = parsed.upserts[0]
        .blobs
        .values()
        .map(|h| t2.blob(h).unwrap().len())
        .sum();
    let per_change = delta.len() + blob_bytes;
    println!(
        "sites={} full_doc_bytes={full} snapshot_bytes={snapshot} one_site_delta_bytes={} \
         new_site_blob_bytes={blob_bytes} per_change_bytes={per_change} full/per_change={}",
        n + 1,
        delta.len(),
        full / per_change.max(1)
    );
    assert!(
        per_change * 100 < full,
        "one change costs under 1% of the document"
    );
    assert!(
        snapshot * 3 < full,
        "the snapshot leaves the TLS material out"
    );
}

/// `doc(revision, sites)` with so many aliases per site that the aliases
/// travel as a blob too (one that is held as bytes, not made again).
fn doc_with_aliases(revision: i64, sites: &[&str]) -> DesiredConfig {
    let mut d = doc(revision, sites);
    if let RoleConfig::Web(w) = &mut d.role {
        for s in &mut w.sites {
            let s = std::sync::Arc::make_mut(s);
            s.aliases = (0..16)
                .map(|i| format!("alias-{i:02}.{}", s.domain))
                .collect();
        }
    }
    d
}

/// Servers with the same sites hold one copy of each item and blob, answer
/// exactly as unshared trackers do, and a sweep forgets what no one holds.
/// A site's TLS blob is held as the site (its PEMs are the config's own
/// strings), other blobs as one shared copy of their bytes.
#[test]
fn servers_with_the_same_sites_share_items_and_blobs() {
    let mut sh = Shared::default();
    let names: Vec<String> = (0..3000).map(|i| format!("s{i:04}.example")).collect();
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    let d = doc_with_aliases(4, &names);
    let mut other = d.clone();
    other.server.name = "web-2".into();
    let a = Tracked::new(&d, None, &mut sh);
    let b = Tracked::new(&other, None, &mut sh);
    let alone = Tracked::new(&d, None, &mut Shared::default());
    let (items, blobs, _) = sh.held();
    assert_eq!(items, a.items.as_ref().unwrap().len());
    assert_eq!(
        a.blobs.len(),
        2 * names.len(),
        "a TLS and an aliases blob per site"
    );
    let tls: Vec<&Arc<WebSite>> = a
        .blobs
        .values()
        .filter_map(|b| match &b.body {
            Body::Tls(site) => Some(site),
            Body::Bytes(_) => None,
        })
        .collect();
    assert_eq!(tls.len(), names.len());
    assert_eq!(blobs, a.blobs.len() - tls.len(), "bytes blobs are shared");
    let RoleConfig::Web(web) = &d.role else {
        unreachable!()
    };
    for site in tls {
        let mine = web.sites.iter().find(|s| s.domain == site.domain).unwrap();
        let (x, y) = (site.tls.as_ref().unwrap(), mine.tls.as_ref().unwrap());
        assert!(Arc::ptr_eq(&x.cert_pem, &y.cert_pem) && Arc::ptr_eq(&x.key_pem, &y.key_pem));
    }
    assert_eq!(b.answer(0, &other), alone.answer(0, &other));
    assert_eq!(a.answer(0, &d), alone.answer(0, &d));
    // Every blob as served is the content its hash was taken of.
    for h in a.blobs.keys() {
        let bytes = a.blob(&hex(h)).unwrap();
        assert_eq!(blake3::hash(&bytes).as_bytes(), h);
    }
    // One server moves on: the other keeps its items and blobs.
    let d2 = doc_with_aliases(5, &names[1..]);
    let changes = proto::agent_delta::split_changes(&d.role, &d2.role).unwrap();
    let a = a.advance(&d2, changes, &mut sh);
    assert_eq!(b.answer(0, &other), alone.answer(0, &other));
    for h in b.blobs.keys() {
        let bytes = b.blob(&hex(h)).unwrap();
        assert_eq!(blake3::hash(&bytes).as_bytes(), h);
    }
    drop((a, b, alone));
    assert_eq!(sh.held(), (0, 0, 0));
    sh.sweep();
    assert!(sh.items.is_empty() && sh.blobs.is_empty());
}

/// A TLS blob whose site no longer serializes to it (a config built by hand
/// whose `sites` entry differs from the item) is held as bytes: what is
/// served is always the content of the hash asked for.
#[test]
fn a_tls_blob_is_made_again_only_from_a_matching_site() {
    let d = doc(1, &["a.example"]);
    let s = split(&d.role).unwrap();
    let item = &s.items["sites/a.example"];
    let bytes = &s.blobs[&item.blobs["tls"]];
    assert!(tls_site(&d, "sites/a.example", "tls", bytes).is_some());
    assert!(tls_site(&d, "sites/a.example", "aliases", bytes).is_none());
    assert!(tls_site(&d, "sites/b.example", "tls", bytes).is_none());
    let changed = doc(1, &["a.example"]);
    let mut changed = changed;
    if let RoleConfig::Web(w) = &mut changed.role {
        let site = Arc::make_mut(&mut w.sites[0]);
        if let Some(tls) = site.tls.as_mut() {
            tls.key_pem = "another key".into();
        }
    }
    assert!(tls_site(&changed, "sites/a.example", "tls", bytes).is_none());
}

#[test]
fn history_is_bounded_and_blobs_belong_to_the_server() {
    let mut sh = Shared::default();
    let mut t = Tracked::new(&doc(1, &["a.example"]), None, &mut sh);
    for rev in 2..(MAX_REVISIONS as i64 + 10) {
        let name = format!("s{rev}.example");
        t = Tracked::new(&doc(rev, &[name.as_str()]), Some(&t), &mut sh);
    }
    assert_eq!(t.history.len(), MAX_REVISIONS);
    assert!(!t.knows(1) && t.knows(t.base) && t.knows(t.revision()));
    let other = Tracked::new(&doc(1, &["secret.example"]), None, &mut sh);
    let foreign: Vec<String> = other.blobs.keys().map(hex).collect();
    assert!(!foreign.is_empty());
    for h in foreign {
        assert!(other.blob(&h).is_some());
        assert!(t.blob(&h).is_none(), "another server's blob is not served");
    }
}

/// A site whose other fields change while its certificate stays: its TLS blob
/// is then held as the new entry, not the replaced one.
#[test]
fn a_tls_body_follows_its_site_entry() {
    let mut sh = Shared::default();
    let d1 = doc(1, &["a.example", "b.example"]);
    let t = Tracked::new(&d1, None, &mut sh);
    let mut d2 = d1.clone();
    d2.revision = 2;
    if let RoleConfig::Web(w) = &mut d2.role {
        std::sync::Arc::make_mut(&mut w.sites[0]).php = true;
    }
    let changes = proto::agent_delta::split_changes(&d1.role, &d2.role).unwrap();
    assert_eq!(changes.upserts.items.len(), 1);
    let t = t.advance(&d2, changes, &mut sh);
    let (RoleConfig::Web(w1), RoleConfig::Web(w2)) = (&d1.role, &d2.role) else {
        unreachable!()
    };
    let held: Vec<&Arc<WebSite>> = t
        .blobs
        .values()
        .filter_map(|b| match &b.body {
            Body::Tls(s) => Some(s),
            Body::Bytes(_) => None,
        })
        .collect();
    assert_eq!(held.len(), 2);
    assert!(held.iter().any(|s| Arc::ptr_eq(s, &w2.sites[0])));
    assert!(!held.iter().any(|s| Arc::ptr_eq(s, &w1.sites[0])));
    let (_, role) = apply(&mut BTreeMap::new(), &t.answer(0, &d2), &t);
    assert_eq!(role, d2.role);
}
