//! Delta configs on the controller: each server's current config split into
//! items ([`proto::agent_delta`]) with a short history of which items changed at
//! which revision, so `GET /v1/agent/config?after=REV&delta=1` answers only the
//! items changed since `REV`, and `GET /v1/agent/blobs/{hash}` the large material
//! they refer to.
//!
//! Memory is bounded: the history keeps the changed ids of at most
//! [`MAX_REVISIONS`] revisions and [`MAX_CHANGED_IDS`] ids in all; items are held
//! as their JSON text. An agent further behind (or whose revision this controller
//! never served: it restarted, or another controller did) gets a snapshot: every
//! item, large material still by hash, so it fetches only blobs it lacks.
//!
//! A blob is served only to a server whose current config (or the one just before
//! it) refers to it: a web server can never fetch another cluster's keys.

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::sync::{Arc, Weak};

use axum::extract::{Path, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use proto::agent_delta::{digest, split, Item, SplitChanges};
use proto::agent_v1::DesiredConfig;

use crate::agent_api::AgentIdentity;
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;

/// Most revisions whose changes a server's history keeps.
pub const MAX_REVISIONS: usize = 64;
/// Most changed item ids a server's history keeps over all its revisions.
pub const MAX_CHANGED_IDS: usize = 50_000;

/// A blob's key: its BLAKE3 hash as 32 bytes, not the 64-character hex string
/// the wire carries (every server's blob map holds one per site: at 100,000
/// sites on 50 web servers, 500,000 keys).
type BlobKey = [u8; 32];

/// The key of blob `hash` (hex, as items name it). A name that is not 64 hex
/// digits (never made by [`proto::agent_delta::split`]) is keyed by its own
/// hash, the same way at insert and lookup.
fn blob_key(hash: &str) -> BlobKey {
    let b = hash.as_bytes();
    let mut out = [0u8; 32];
    let nibble = |c: u8| match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        _ => None,
    };
    if b.len() == 64 {
        let mut ok = true;
        for (i, o) in out.iter_mut().enumerate() {
            match (nibble(b[2 * i]), nibble(b[2 * i + 1])) {
                (Some(h), Some(l)) => *o = (h << 4) | l,
                _ => ok = false,
            }
        }
        if ok {
            return out;
        }
    }
    *blake3::hash(b).as_bytes()
}

/// One item as sent: its JSON, content hash and the blobs it refers to.
#[derive(Debug)]
struct StoredItem {
    hash: [u8; 32],
    json: Box<str>,
    blobs: Box<[BlobKey]>,
}

impl StoredItem {
    fn of(item: &Item) -> Self {
        let json = serde_json::to_string(item).unwrap_or_default();
        StoredItem {
            hash: *blake3::hash(json.as_bytes()).as_bytes(),
            json: json.into(),
            blobs: item.blobs.values().map(|h| blob_key(h)).collect(),
        }
    }
}

/// Items and blobs shared by every server's [`Tracked`], by content hash: the
/// servers of a cluster carry the same sites (and the same certificate blobs), so
/// each is held once however many servers carry it. Entries are weak: an item or
/// blob lives as long as a tracker refers to it; dead entries are swept when they
/// outnumber the live ones.
#[derive(Debug, Default)]
pub struct Shared {
    items: HashMap<[u8; 32], Weak<StoredItem>>,
    blobs: HashMap<BlobKey, Weak<[u8]>>,
    /// Entries left by the last sweep (the next one runs at twice that).
    swept_to: usize,
}

impl Shared {
    /// The one shared copy of `item` (serialized and hashed here).
    fn item(&mut self, item: &Item) -> Arc<StoredItem> {
        let stored = StoredItem::of(item);
        if let Some(live) = self.items.get(&stored.hash).and_then(Weak::upgrade) {
            if live.json == stored.json {
                return live;
            }
        }
        let arc = Arc::new(stored);
        self.items.insert(arc.hash, Arc::downgrade(&arc));
        arc
    }

    /// The one shared copy of blob `hash` (whose content is `bytes`).
    fn blob(&mut self, hash: BlobKey, bytes: &Arc<[u8]>) -> Arc<[u8]> {
        if let Some(live) = self.blobs.get(&hash).and_then(Weak::upgrade) {
            return live;
        }
        self.blobs.insert(hash, Arc::downgrade(bytes));
        Arc::clone(bytes)
    }

    /// Forget the items and blobs no tracker holds any more, once there are as
    /// many entries again as after the last sweep (amortized O(1) per entry).
    pub fn sweep(&mut self) {
        let len = self.items.len() + self.blobs.len();
        if len < (2 * self.swept_to).max(4096) {
            return;
        }
        self.items.retain(|_, w| w.strong_count() > 0);
        self.blobs.retain(|_, w| w.strong_count() > 0);
        self.swept_to = self.items.len() + self.blobs.len();
    }

    /// What the shared table holds, for the hub's memory log: live items and
    /// the bytes of their JSON, live blobs and their bytes.
    pub fn usage(&self) -> (usize, usize, usize, usize) {
        let items: Vec<Arc<StoredItem>> = self.items.values().filter_map(Weak::upgrade).collect();
        let blobs: Vec<Arc<[u8]>> = self.blobs.values().filter_map(Weak::upgrade).collect();
        (
            items.len(),
            items.iter().map(|i| i.json.len()).sum(),
            blobs.len(),
            blobs.iter().map(|b| b.len()).sum(),
        )
    }

    /// How many items and blobs are held, and their bytes (for tests and
    /// diagnostics).
    pub fn held(&self) -> (usize, usize, usize) {
        let items = self.items.values().filter(|w| w.strong_count() > 0).count();
        let blobs: Vec<Arc<[u8]>> = self.blobs.values().filter_map(Weak::upgrade).collect();
        (items, blobs.len(), blobs.iter().map(|b| b.len()).sum())
    }
}

/// A blob with the number of items referring to it.
#[derive(Debug, Clone)]
struct Blob {
    bytes: Arc<[u8]>,
    refs: u32,
}

/// A server's current config as items, with the history of item changes.
///
/// A new revision is reached from the previous one by [`Tracked::advance`] with
/// the items that changed ([`proto::agent_delta::split_changes`]), so the work per
/// change is proportional to the change, not to the server's config; only the
/// digest is recomputed over every item's (id, hash).
#[derive(Clone)]
pub struct Tracked {
    revision: i64,
    /// `None` when the config could not be split (never expected): then deltas are
    /// answered with the whole document.
    items: Option<BTreeMap<String, Arc<StoredItem>>>,
    blobs: HashMap<BlobKey, Blob>,
    /// Blobs the previous revision had and this one dropped, still served so an
    /// agent applying the previous delta can finish.
    retired: HashMap<BlobKey, Arc<[u8]>>,
    digest: String,
    /// `(revision, ids changed to reach it)`, oldest first.
    history: VecDeque<(i64, Arc<[String]>)>,
    /// The oldest revision a delta can start from.
    base: i64,
}

impl std::fmt::Debug for Tracked {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tracked")
            .field("revision", &self.revision)
            .field("items", &self.items.as_ref().map(BTreeMap::len))
            .field("blobs", &self.blobs.len())
            .field("base", &self.base)
            .finish_non_exhaustive()
    }
}

impl Tracked {
    /// Track `doc` whole (a server's first config, or one that changed role),
    /// continuing the history of `prev` (the server's previous config).
    pub fn new(doc: &DesiredConfig, prev: Option<&Tracked>, shared: &mut Shared) -> Self {
        let (items, blobs) = match split(&doc.role) {
            Ok(s) => {
                let items: BTreeMap<String, Arc<StoredItem>> = s
                    .items
                    .iter()
                    .map(|(id, item)| (id.clone(), shared.item(item)))
                    .collect();
                let mut blobs: HashMap<BlobKey, Blob> = s
                    .blobs
                    .into_iter()
                    .map(|(h, bytes)| {
                        let key = blob_key(&h);
                        let bytes = shared.blob(key, &bytes);
                        (key, Blob { bytes, refs: 0 })
                    })
                    .collect();
                for item in items.values() {
                    for h in item.blobs.iter() {
                        if let Some(b) = blobs.get_mut(h) {
                            b.refs += 1;
                        }
                    }
                }
                (Some(items), blobs)
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot split a desired config; serving it whole");
                (None, HashMap::new())
            }
        };
        let mut t = Tracked {
            revision: doc.revision,
            items,
            blobs,
            retired: HashMap::new(),
            digest: String::new(),
            history: VecDeque::new(),
            base: doc.revision,
        };
        t.digest = t.compute_digest();
        let Some(prev) = prev else { return t };
        let (Some(old), Some(new)) = (&prev.items, &t.items) else {
            return t;
        };
        let mut changed: Vec<String> = new
            .iter()
            .filter(|(id, s)| old.get(*id).map(|o| o.hash) != Some(s.hash))
            .map(|(id, _)| id.clone())
            .collect();
        changed.extend(old.keys().filter(|id| !new.contains_key(*id)).cloned());
        t.retired = prev
            .blobs
            .iter()
            .filter(|(h, _)| !t.blobs.contains_key(*h))
            .map(|(h, b)| (*h, Arc::clone(&b.bytes)))
            .collect();
        t.history = prev.history.clone();
        t.base = prev.base;
        t.push_history(doc.revision, changed);
        t
    }

    /// This config advanced to `doc`, whose items differ from this one's by
    /// `changes` (see [`proto::agent_delta::split_changes`]): only the changed
    /// items are serialized and hashed.
    pub fn advance(
        mut self,
        doc: &DesiredConfig,
        changes: SplitChanges,
        shared: &mut Shared,
    ) -> Self {
        let Some(items) = self.items.as_mut() else {
            return Tracked::new(doc, Some(&self), shared);
        };
        let SplitChanges { upserts, removals } = changes;
        let mut changed = Vec::with_capacity(upserts.items.len() + removals.len());
        let mut released: Vec<Arc<StoredItem>> = Vec::new();
        for id in removals {
            if let Some(old) = items.remove(&id) {
                released.push(old);
                changed.push(id);
            }
        }
        for (id, item) in &upserts.items {
            let stored = shared.item(item);
            if items.get(id).is_some_and(|o| o.hash == stored.hash) {
                continue;
            }
            for (name, h) in item.blobs.values().zip(stored.blobs.iter()) {
                if let Some(b) = self.blobs.get_mut(h) {
                    b.refs += 1;
                } else if let Some(bytes) = upserts.blobs.get(name) {
                    self.blobs.insert(
                        *h,
                        Blob {
                            bytes: shared.blob(*h, bytes),
                            refs: 1,
                        },
                    );
                } else {
                    tracing::error!(item = %id, blob = %name, "a changed item's blob is missing");
                }
            }
            if let Some(old) = items.insert(id.clone(), stored) {
                released.push(old);
            }
            changed.push(id.clone());
        }
        let mut retired = HashMap::new();
        for old in released {
            for h in old.blobs.iter() {
                if let Some(b) = self.blobs.get_mut(h) {
                    b.refs = b.refs.saturating_sub(1);
                    if b.refs == 0 {
                        if let Some(b) = self.blobs.remove(h) {
                            retired.insert(*h, b.bytes);
                        }
                    }
                }
            }
        }
        self.retired = retired;
        self.revision = doc.revision;
        self.digest = self.compute_digest();
        self.push_history(doc.revision, changed);
        self
    }

    fn compute_digest(&self) -> String {
        self.items
            .as_ref()
            .map(|i| digest(i.iter().map(|(id, s)| (id.as_str(), &s.hash))))
            .unwrap_or_default()
    }

    /// Record that `changed` were changed to reach `revision`, within the bounds.
    fn push_history(&mut self, revision: i64, changed: Vec<String>) {
        self.history.push_back((revision, changed.into()));
        let mut total: usize = self.history.iter().map(|(_, ids)| ids.len()).sum();
        while self.history.len() > MAX_REVISIONS || total > MAX_CHANGED_IDS {
            let Some((rev, ids)) = self.history.pop_front() else {
                break;
            };
            total -= ids.len();
            self.base = rev;
        }
    }

    /// Whether a delta can start from `revision`.
    pub fn knows(&self, revision: i64) -> bool {
        self.items.is_some()
            && revision > 0
            && (revision == self.base || self.history.iter().any(|(r, _)| *r == revision))
    }

    /// The revision tracked.
    pub fn revision(&self) -> i64 {
        self.revision
    }

    /// The answer to `after=REV&delta=1` for `doc` (this tracker's config): the
    /// delta from `after` when known, else a snapshot; the whole document when the
    /// config could not be split.
    pub fn answer(&self, after: i64, doc: &DesiredConfig) -> String {
        let Some(items) = &self.items else {
            return serde_json::to_string(doc).unwrap_or_default();
        };
        let (from, upserts, removals): (i64, Vec<&str>, Vec<&str>) = if self.knows(after) {
            let ids: BTreeSet<&str> = self
                .history
                .iter()
                .filter(|(r, _)| *r > after)
                .flat_map(|(_, ids)| ids.iter().map(String::as_str))
                .collect();
            let mut up = Vec::new();
            let mut rm = Vec::new();
            for id in ids {
                match items.get(id) {
                    Some(s) => up.push(&*s.json),
                    None => rm.push(id),
                }
            }
            (after, up, rm)
        } else {
            (0, items.values().map(|s| &*s.json).collect(), Vec::new())
        };
        let len: usize = upserts.iter().map(|j| j.len() + 1).sum();
        let mut out = String::with_capacity(len + 512);
        out.push_str(&format!(
            "{{\"format\":{},\"from\":{from},\"to\":{},\"server\":{},\"upserts\":[",
            doc.format,
            doc.revision,
            serde_json::to_string(&doc.server).unwrap_or_default()
        ));
        for (i, json) in upserts.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            out.push_str(json);
        }
        out.push_str("],\"removals\":");
        out.push_str(&serde_json::to_string(&removals).unwrap_or_default());
        out.push_str(",\"digest\":\"");
        out.push_str(&self.digest);
        out.push_str("\"}");
        out
    }

    /// The content of blob `hash`, if this config (or the previous one) refers to it.
    pub fn blob(&self, hash: &str) -> Option<Arc<[u8]>> {
        let key = blob_key(hash);
        self.blobs
            .get(&key)
            .map(|b| &b.bytes)
            .or_else(|| self.retired.get(&key))
            .cloned()
    }
}

/// `GET /v1/agent/blobs/{hash}`: large material of the requesting server's config.
/// `404` for a hash its config does not refer to (whether or not another server's
/// does).
pub async fn blob(
    State(state): State<AppState>,
    agent: AgentIdentity,
    Path(hash): Path<String>,
) -> ApiResult<Response> {
    let found = state
        .configs
        .tracked(agent.server.meta.id)
        .and_then(|(_, t)| t.blob(&hash));
    match found {
        Some(bytes) => Ok((
            StatusCode::OK,
            [(header::CONTENT_TYPE, "application/json")],
            bytes.to_vec(),
        )
            .into_response()),
        None => Err(ApiError::not_found(format!(
            "no blob {hash} in this server's desired config"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proto::agent_delta::{join, ConfigDelta, Item};
    use proto::agent_v1::{RoleConfig, ServerIdentity, TlsMaterial, WebConfig, WebSite};

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
        let blobs: HashMap<String, Arc<[u8]>> = items
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
                let mut b: Vec<(BlobKey, u32)> =
                    t.blobs.iter().map(|(h, b)| (*h, b.refs)).collect();
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
        let params =
            rcgen::CertificateParams::new(vec!["site-000000.example".to_string()]).unwrap();
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

    /// Servers with the same sites hold one copy of each item and blob, answer
    /// exactly as unshared trackers do, and a sweep forgets what no one holds.
    #[test]
    fn servers_with_the_same_sites_share_items_and_blobs() {
        let mut sh = Shared::default();
        let names: Vec<String> = (0..3000).map(|i| format!("s{i}.example")).collect();
        let names: Vec<&str> = names.iter().map(String::as_str).collect();
        let d = doc(4, &names);
        let mut other = d.clone();
        other.server.name = "web-2".into();
        let a = Tracked::new(&d, None, &mut sh);
        let b = Tracked::new(&other, None, &mut sh);
        let alone = Tracked::new(&d, None, &mut Shared::default());
        let (items, blobs, _) = sh.held();
        assert_eq!(items, a.items.as_ref().unwrap().len());
        assert_eq!(blobs, a.blobs.len());
        assert_eq!(b.answer(0, &other), alone.answer(0, &other));
        assert_eq!(a.answer(0, &d), alone.answer(0, &d));
        // One server moves on: the other keeps its items and blobs.
        let d2 = doc(5, &names[1..]);
        let changes = proto::agent_delta::split_changes(&d.role, &d2.role).unwrap();
        let a = a.advance(&d2, changes, &mut sh);
        assert_eq!(b.answer(0, &other), alone.answer(0, &other));
        assert!(b.blob(&hex(b.blobs.keys().next().unwrap())).is_some());
        drop((a, b, alone));
        assert_eq!(sh.held(), (0, 0, 0));
        sh.sweep();
        assert!(sh.items.is_empty() && sh.blobs.is_empty());
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
}
