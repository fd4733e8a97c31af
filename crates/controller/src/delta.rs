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

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::sync::{Arc, Weak};

use axum::extract::{Path, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use proto::agent_delta::{digest, split, Item, SplitChanges};
use proto::agent_v1::{DesiredConfig, RoleConfig, WebSite};

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

/// One item as sent: its id, JSON, content hash and the blobs it refers to.
#[derive(Debug)]
struct StoredItem {
    id: Box<str>,
    hash: [u8; 32],
    json: Box<str>,
    blobs: Box<[BlobKey]>,
}

impl StoredItem {
    fn of(item: &Item) -> Self {
        let json = serde_json::to_string(item).unwrap_or_default();
        StoredItem {
            id: item.id.as_str().into(),
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

    /// How blob `hash` of item `id` (its field `field`, content `bytes`) of
    /// `doc` is held: as the web site whose `tls` field it is when that site
    /// serializes to exactly these bytes (the PEMs are the world's shared
    /// strings, so nothing is copied), else as the one shared copy of the bytes.
    fn body(
        &mut self,
        hash: BlobKey,
        doc: &DesiredConfig,
        id: &str,
        field: &str,
        bytes: &Arc<[u8]>,
    ) -> Body {
        if let Some(site) = tls_site(doc, id, field, bytes) {
            return Body::Tls(site);
        }
        Body::Bytes(self.blob(hash, bytes))
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

/// Where a blob's content is held.
#[derive(Debug, Clone)]
enum Body {
    /// The content itself (shared between trackers through [`Shared`]).
    Bytes(Arc<[u8]>),
    /// A web site's `tls` field, serialized again when served: its PEMs are
    /// `World::site_tls`'s strings, which the web configs share, so the
    /// controller holds no second copy of every site's certificate and key as
    /// blob JSON (~100 MB at 100,000 sites). Only made when the site's `tls`
    /// serializes to the very bytes the blob's hash was taken of.
    Tls(Arc<WebSite>),
}

impl Body {
    /// Point a TLS body at `doc`'s entry of the same site when that carries the
    /// same material, so a site whose other fields changed does not keep its
    /// previous entry alive through the blob.
    fn refresh(&mut self, doc: &DesiredConfig, id: &str) {
        let Body::Tls(held) = self else { return };
        if let Some(site) = site_of(doc, id) {
            if !Arc::ptr_eq(held, site) && site.tls.is_some() && site.tls == held.tls {
                *held = Arc::clone(site);
            }
        }
    }

    /// The blob's content (the JSON the agent asked for by hash).
    fn bytes(&self) -> Vec<u8> {
        match self {
            Body::Bytes(b) => b.to_vec(),
            Body::Tls(site) => tls_json(site).unwrap_or_default(),
        }
    }
}

/// The JSON of a web site's `tls` field as [`proto::agent_delta::split`] makes
/// it (through a `serde_json::Value`, as split does); `None` without TLS.
fn tls_json(site: &WebSite) -> Option<Vec<u8>> {
    let tls = site.tls.as_ref()?;
    let value = serde_json::to_value(tls).ok()?;
    serde_json::to_vec(&value).ok()
}

/// The site of `doc` whose `tls` field is blob `bytes` of item `id`, if the
/// blob is that field of a web site's item (`sites/DOMAIN`) and the site
/// serializes to exactly these bytes.
fn tls_site(doc: &DesiredConfig, id: &str, field: &str, bytes: &[u8]) -> Option<Arc<WebSite>> {
    if field != "tls" {
        return None;
    }
    let site = site_of(doc, id)?;
    (tls_json(site)?.as_slice() == bytes).then(|| Arc::clone(site))
}

/// The web site of `doc` that item `id` (`sites/DOMAIN`) is, if any.
fn site_of<'a>(doc: &'a DesiredConfig, id: &str) -> Option<&'a Arc<WebSite>> {
    let RoleConfig::Web(web) = &doc.role else {
        return None;
    };
    let domain = id.strip_prefix("sites/")?;
    // The builder sorts sites by domain; a list that is not sorted is searched.
    match web
        .sites
        .binary_search_by(|s| s.domain.as_str().cmp(domain))
    {
        Ok(i) => Some(&web.sites[i]),
        Err(_) => web.sites.iter().find(|s| s.domain == domain),
    }
}

/// A server's item, ordered and looked up by its id (`Borrow<str>`): a
/// server's item set holds one pointer per item, not an id string of its own
/// beside it (50 web servers of 10,000 sites each: 500,000 ids).
#[derive(Debug, Clone)]
struct ItemRef(Arc<StoredItem>);

impl ItemRef {
    fn id(&self) -> &str {
        &self.0.id
    }
}

impl std::borrow::Borrow<str> for ItemRef {
    fn borrow(&self) -> &str {
        &self.0.id
    }
}

impl PartialEq for ItemRef {
    fn eq(&self, other: &Self) -> bool {
        self.0.id == other.0.id
    }
}

impl Eq for ItemRef {}

impl PartialOrd for ItemRef {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for ItemRef {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.0.id.cmp(&other.0.id)
    }
}

/// A blob with the number of items referring to it.
#[derive(Debug, Clone)]
struct Blob {
    body: Body,
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
    items: Option<BTreeSet<ItemRef>>,
    blobs: HashMap<BlobKey, Blob>,
    /// Blobs the previous revision had and this one dropped, still served so an
    /// agent applying the previous delta can finish.
    retired: HashMap<BlobKey, Body>,
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
            .field("items", &self.items.as_ref().map(BTreeSet::len))
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
                let items: BTreeSet<ItemRef> = s
                    .items
                    .values()
                    .map(|item| ItemRef(shared.item(item)))
                    .collect();
                let mut blobs: HashMap<BlobKey, Blob> = HashMap::with_capacity(s.blobs.len());
                for (id, item) in &s.items {
                    for (field, name) in &item.blobs {
                        let key = blob_key(name);
                        if let Some(b) = blobs.get_mut(&key) {
                            b.refs += 1;
                        } else if let Some(bytes) = s.blobs.get(name) {
                            let body = shared.body(key, doc, id, field, bytes);
                            blobs.insert(key, Blob { body, refs: 1 });
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
            .filter(|s| old.get(s.id()).map(|o| o.0.hash) != Some(s.0.hash))
            .map(|s| s.id().to_owned())
            .collect();
        changed.extend(
            old.iter()
                .filter(|o| !new.contains(o.id()))
                .map(|o| o.id().to_owned()),
        );
        t.retired = prev
            .blobs
            .iter()
            .filter(|(h, _)| !t.blobs.contains_key(*h))
            .map(|(h, b)| (*h, b.body.clone()))
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
            if let Some(ItemRef(old)) = items.take(id.as_str()) {
                released.push(old);
                changed.push(id);
            }
        }
        for (id, item) in &upserts.items {
            let stored = shared.item(item);
            if items
                .get(id.as_str())
                .is_some_and(|o| o.0.hash == stored.hash)
            {
                continue;
            }
            for ((field, name), h) in item.blobs.iter().zip(stored.blobs.iter()) {
                if let Some(b) = self.blobs.get_mut(h) {
                    b.refs += 1;
                    b.body.refresh(doc, id);
                } else if let Some(bytes) = upserts.blobs.get(name) {
                    self.blobs.insert(
                        *h,
                        Blob {
                            body: shared.body(*h, doc, id, field, bytes),
                            refs: 1,
                        },
                    );
                } else {
                    tracing::error!(item = %id, blob = %name, "a changed item's blob is missing");
                }
            }
            if let Some(ItemRef(old)) = items.replace(ItemRef(stored)) {
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
                            retired.insert(*h, b.body);
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
            .map(|i| digest(i.iter().map(|s| (s.id(), &s.0.hash))))
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
                    Some(s) => up.push(&*s.0.json),
                    None => rm.push(id),
                }
            }
            (after, up, rm)
        } else {
            (0, items.iter().map(|s| &*s.0.json).collect(), Vec::new())
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
    pub fn blob(&self, hash: &str) -> Option<Vec<u8>> {
        let key = blob_key(hash);
        self.blobs
            .get(&key)
            .map(|b| &b.body)
            .or_else(|| self.retired.get(&key))
            .map(Body::bytes)
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
            bytes,
        )
            .into_response()),
        None => Err(ApiError::not_found(format!(
            "no blob {hash} in this server's desired config"
        ))),
    }
}

#[cfg(test)]
#[path = "delta_tests.rs"]
mod tests;
