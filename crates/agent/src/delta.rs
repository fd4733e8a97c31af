//! The agent's side of delta configs ([`proto::agent_delta`]): its current config
//! as item hashes, a [`ConfigDelta`] applied to them, and the whole
//! [`DesiredConfig`] rebuilt for the cache and the role engine (which keep
//! receiving whole documents). The rebuild patches the config last built with
//! the items that changed since ([`proto::agent_delta::patch`]), so a one-site
//! change parses one site, not every item; it joins every item only when the
//! change is not a patchable one.
//!
//! Memory: the config is held once, as the typed document last built, shared
//! (`Arc`) with the watch channel and the supervisor. Of the items only their
//! hashes (and the hashes of the blobs they refer to) are kept; the content of an
//! item that did not change since the last build is in that document, and
//! [`proto::agent_delta::split_element`] regenerates its blobs when a patch needs
//! them. Only the items changed since the last build and the blobs fetched since
//! are held whole, until the next build. (At 10,000 zones the agent held the
//! config three times before: the document, a copy of it to patch, and every
//! item's JSON with every zone's blob.)
//!
//! The state is derived from the cached `desired.json` (0600) at start, so the
//! blob cache by hash is that file: nothing else is written. A blob the agent
//! lacks is fetched once and verified against its hash
//! ([`crate::client::AgentClient::fetch_blob`]). Any mismatch (a delta from another
//! revision, a digest that differs after applying, a blob that does not fit) makes
//! the caller ask for a snapshot; the engine keeps the config it has until a whole
//! one is rebuilt.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use proto::agent_delta::{
    digest, join, patch, split, split_element, ConfigDelta, DeltaError, Item, Split,
};
use proto::agent_v1::{DesiredConfig, ServerIdentity};

/// Why a delta could not be applied; the caller asks for a snapshot.
#[derive(Debug, thiserror::Error)]
pub enum Mismatch {
    /// The delta starts from another revision than the one held.
    #[error("delta from revision {from}, but this agent holds {held}")]
    From {
        /// The delta's start.
        from: i64,
        /// The revision held.
        held: i64,
    },
    /// The items after applying do not have the controller's digest.
    #[error("items differ from the controller's after applying the delta to {to}")]
    Digest {
        /// The delta's revision.
        to: i64,
    },
    /// The items do not form a config.
    #[error(transparent)]
    Join(#[from] DeltaError),
}

/// What is kept of an item: its hash and its blobs' (field → hash).
#[derive(Debug, Clone)]
struct Held {
    hash: [u8; 32],
    blobs: BTreeMap<String, String>,
}

impl Held {
    fn of(item: &Item) -> Self {
        Self {
            hash: item.hash(),
            blobs: item.blobs.clone(),
        }
    }
}

/// A config held as item hashes over the document last built.
#[derive(Debug, Clone)]
pub struct ItemState {
    format: u32,
    revision: i64,
    server: ServerIdentity,
    items: BTreeMap<String, Held>,
    /// The document last built: the content of every item not in `pending`.
    last: Arc<DesiredConfig>,
    /// Items changed since `last` was built: the new item, `None` when removed.
    pending: BTreeMap<String, Option<Item>>,
    /// Blobs fetched since `last` was built.
    fetched: HashMap<String, Arc<[u8]>>,
    /// Blob hash → an item of `last` that refers to it: where to regenerate it.
    known: HashMap<String, String>,
}

/// Each blob the items refer to, with one item referring to it.
fn blob_sources<'a>(
    items: impl Iterator<Item = (&'a String, &'a BTreeMap<String, String>)>,
) -> HashMap<String, String> {
    let mut out = HashMap::new();
    for (id, blobs) in items {
        for h in blobs.values() {
            out.entry(h.clone()).or_insert_with(|| id.clone());
        }
    }
    out
}

impl ItemState {
    /// The state of a whole config (`None` if it cannot be split, which the types
    /// here never cause).
    pub fn from_config(cfg: &Arc<DesiredConfig>) -> Option<Self> {
        let s = split(&cfg.role).ok()?;
        let items: BTreeMap<String, Held> = s
            .items
            .into_iter()
            .map(|(id, item)| {
                let held = Held::of(&item);
                (id, held)
            })
            .collect();
        let known = blob_sources(items.iter().map(|(id, h)| (id, &h.blobs)));
        Some(Self {
            format: cfg.format,
            revision: cfg.revision,
            server: cfg.server.clone(),
            items,
            last: Arc::clone(cfg),
            pending: BTreeMap::new(),
            fetched: HashMap::new(),
            known,
        })
    }

    /// The revision held.
    pub fn revision(&self) -> i64 {
        self.revision
    }

    /// Apply `delta` (a snapshot replaces every item; blobs held stay usable) and
    /// check the digest; returns the hashes of the blobs still to fetch. On a
    /// [`Mismatch`] the caller asks for a snapshot, which this state can apply.
    pub fn apply(&mut self, delta: ConfigDelta) -> Result<Vec<String>, Mismatch> {
        if !delta.is_snapshot() && delta.from != self.revision {
            return Err(Mismatch::From {
                from: delta.from,
                held: self.revision,
            });
        }
        if delta.is_snapshot() {
            // Only what differs from the items held (a resync usually changes
            // nothing) is kept whole.
            let mut items = BTreeMap::new();
            for item in delta.upserts {
                let held = Held::of(&item);
                if self.items.get(&item.id).map(|h| h.hash) != Some(held.hash) {
                    self.pending.insert(item.id.clone(), Some(item.clone()));
                }
                items.insert(item.id, held);
            }
            for id in self.items.keys().filter(|id| !items.contains_key(*id)) {
                self.pending.insert(id.clone(), None);
            }
            self.items = items;
        } else {
            for id in delta.removals {
                self.items.remove(&id);
                self.pending.insert(id, None);
            }
            for item in delta.upserts {
                self.items.insert(item.id.clone(), Held::of(&item));
                self.pending.insert(item.id.clone(), Some(item));
            }
        }
        let got = digest(self.items.iter().map(|(id, h)| (id.as_str(), &h.hash)));
        if got != delta.digest {
            return Err(Mismatch::Digest { to: delta.to });
        }
        self.format = delta.format;
        self.revision = delta.to;
        self.server = delta.server;
        let needed: BTreeSet<&String> = self
            .pending
            .values()
            .flatten()
            .flat_map(|i| i.blobs.values())
            .collect();
        self.fetched.retain(|h, _| needed.contains(h));
        Ok(needed
            .into_iter()
            .filter(|h| !self.fetched.contains_key(*h) && !self.known.contains_key(*h))
            .cloned()
            .collect())
    }

    /// Add a fetched blob (the caller verified its hash).
    pub fn add_blob(&mut self, hash: String, bytes: Arc<[u8]>) {
        self.fetched.insert(hash, bytes);
    }

    /// The whole desired config the items form: the config last built patched
    /// with the items changed since, or (when that cannot be patched) every item
    /// joined. The result is also what the next build starts from.
    pub fn build(&mut self) -> Result<Arc<DesiredConfig>, DeltaError> {
        let last = &self.last;
        if self.pending.is_empty()
            && (last.format, last.revision, &last.server)
                == (self.format, self.revision, &self.server)
        {
            return Ok(Arc::clone(last));
        }
        // The blobs of the changed items: fetched, or regenerated from `last`.
        let mut blobs: HashMap<&str, Arc<[u8]>> = HashMap::new();
        for h in self
            .pending
            .values()
            .flatten()
            .flat_map(|i| i.blobs.values())
        {
            if let Some(b) = self.fetched.get(h) {
                blobs.insert(h, Arc::clone(b));
            } else if let Some(b) = self
                .known
                .get(h)
                .and_then(|id| split_element(&last.role, id))
                .and_then(|mut s| s.blobs.remove(h))
            {
                blobs.insert(h, b);
            }
        }
        let mut role = last.role.clone();
        let changed = self
            .pending
            .iter()
            .map(|(id, item)| (id.as_str(), item.as_ref()));
        let patched = match patch(&mut role, changed, |h| blobs.get(h).map(|b| &b[..])) {
            Ok(patched) => patched,
            // A blob only a whole-field item of `last` has: the join below finds it.
            Err(DeltaError::MissingBlob { .. }) => false,
            Err(e) => return Err(e),
        };
        if !patched {
            // Every item: those of `last` (split again) with the changes over them.
            let Split {
                items: mut all,
                blobs: old,
            } = split(&last.role)?;
            for (id, item) in &self.pending {
                match item {
                    Some(item) => all.insert(id.clone(), item.clone()),
                    None => all.remove(id),
                };
            }
            role = join(all.values(), |h| {
                blobs.get(h).or_else(|| old.get(h)).map(|b| &b[..])
            })?;
        }
        let built = Arc::new(DesiredConfig {
            format: self.format,
            revision: self.revision,
            server: self.server.clone(),
            role,
        });
        self.last = Arc::clone(&built);
        self.pending.clear();
        self.fetched.clear();
        self.known = blob_sources(self.items.iter().map(|(id, h)| (id, &h.blobs)));
        Ok(built)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proto::agent_delta::Split;
    use proto::agent_v1::{RoleConfig, TlsMaterial, WebConfig, WebSite, CONFIG_FORMAT};

    fn cfg(revision: i64, sites: &[(&str, &str)]) -> DesiredConfig {
        DesiredConfig {
            format: CONFIG_FORMAT,
            revision,
            server: ServerIdentity {
                name: "web-1".into(),
                role: "web".into(),
                cluster: "c".into(),
                rank: 0,
                addresses: vec![],
                hostname: "web-1.example".into(),
            },
            role: RoleConfig::Web(WebConfig {
                sites: sites
                    .iter()
                    .map(|(d, k)| WebSite {
                        docroot: None,
                        hsts: false,
                        php_version: None,
                        php_ini: Default::default(),
                        mail: None,
                        cron: None,
                        domain: (*d).into(),
                        aliases: vec![],
                        php: true,
                        mode: model::PlacementMode::All,
                        active: true,
                        https_redirect: false,
                        tls: Some(TlsMaterial {
                            cert_pem: "C".repeat(500).into(),
                            key_pem: format!("{k}{}", "K".repeat(300)).into(),
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

    /// The delta from `a` to `b` as a controller would send it, and `b`'s split.
    fn delta(a: &DesiredConfig, b: &DesiredConfig) -> (ConfigDelta, Split) {
        let (sa, sb) = (split(&a.role).unwrap(), split(&b.role).unwrap());
        let upserts = sb
            .items
            .iter()
            .filter(|(id, i)| sa.items.get(*id).map(Item::hash) != Some(i.hash()))
            .map(|(_, i)| i.clone())
            .collect();
        let removals = sa
            .items
            .keys()
            .filter(|id| !sb.items.contains_key(*id))
            .cloned()
            .collect();
        let d = ConfigDelta {
            format: b.format,
            from: a.revision,
            to: b.revision,
            server: b.server.clone(),
            upserts,
            removals,
            digest: sb.digest(),
        };
        (d, sb)
    }

    #[test]
    fn a_delta_needs_only_the_new_blobs_and_rebuilds_the_document() {
        let a = cfg(3, &[("a.example", "1"), ("b.example", "2")]);
        let b = cfg(4, &[("a.example", "1"), ("c.example", "3")]);
        let (d, sb) = delta(&a, &b);
        assert_eq!(d.upserts.len(), 1);
        let mut st = ItemState::from_config(&Arc::new(a.clone())).unwrap();
        let missing = st.apply(d.clone()).unwrap();
        assert_eq!(missing.len(), 1, "only the new site's TLS blob");
        assert!(st.build().is_err(), "a blob is still missing");
        for h in missing {
            st.add_blob(h.clone(), Arc::clone(&sb.blobs[&h]));
        }
        assert_eq!(*st.build().unwrap(), b);

        // The same delta again starts from the wrong revision.
        assert!(matches!(
            st.apply(d.clone()),
            Err(Mismatch::From { from: 3, held: 4 })
        ));
        // A tampered delta fails the digest.
        let mut st = ItemState::from_config(&Arc::new(a.clone())).unwrap();
        let mut bad = d;
        bad.removals.clear();
        assert!(matches!(st.apply(bad), Err(Mismatch::Digest { to: 4 })));
    }

    /// A chain of deltas and a snapshot: every build equals the controller's
    /// config, and a site that did not change keeps its very certificate string
    /// (the config was patched, not joined from every item).
    #[test]
    fn deltas_patch_the_config_last_built() {
        let site_tls = |c: &DesiredConfig, i: usize| match &c.role {
            RoleConfig::Web(w) => w.sites[i].tls.clone().unwrap().cert_pem,
            _ => unreachable!("a web config"),
        };
        let a = cfg(3, &[("a.example", "1"), ("b.example", "2")]);
        let b = cfg(
            4,
            &[("a.example", "1"), ("b.example", "2"), ("c.example", "3")],
        );
        let c = cfg(6, &[("a.example", "1"), ("c.example", "4")]);
        let mut st = ItemState::from_config(&Arc::new(a.clone())).unwrap();
        let mut built = st.build().unwrap();
        assert_eq!(*built, a);
        for next in [&b, &c] {
            let (d, sn) = delta(&built, next);
            for h in st.apply(d).unwrap() {
                st.add_blob(h.clone(), Arc::clone(&sn.blobs[&h]));
            }
            let now = st.build().unwrap();
            assert_eq!(&*now, next);
            assert!(Arc::ptr_eq(&site_tls(&built, 0), &site_tls(&now, 0)));
            built = now;
        }
        // A snapshot (a resync) of what is held: nothing to patch, nothing joined.
        let mut d = delta(&a, &c).0;
        d.from = 0;
        d.to = 7;
        d.upserts = split(&c.role).unwrap().items.into_values().collect();
        st.apply(d).unwrap();
        let now = st.build().unwrap();
        assert_eq!(now.role, c.role);
        assert!(Arc::ptr_eq(&site_tls(&built, 0), &site_tls(&now, 0)));
    }

    fn dns(revision: i64, zones: &[(&str, u32)]) -> DesiredConfig {
        use proto::agent_v1::{DnsConfig, ZoneAssignment, ZoneContent, ZoneRecord};
        let mut c = cfg(revision, &[]);
        c.role = RoleConfig::Dns(DnsConfig {
            zones: zones
                .iter()
                .map(|(d, serial)| ZoneAssignment {
                    domain: (*d).into(),
                    primary: true,
                    primary_addresses: vec![],
                    secondaries: vec!["127.0.0.2".into()],
                    zone: Some(Arc::new(ZoneContent {
                        origin: (*d).into(),
                        serial: *serial,
                        records: (0..20)
                            .map(|i| ZoneRecord {
                                name: format!("h{i}.{d}"),
                                ttl: 300,
                                rtype: "A".into(),
                                data: format!("192.0.2.{i}"),
                            })
                            .collect(),
                    })),
                    primary_endpoints: vec![],
                    notify: vec!["127.0.0.2:53".into()],
                    tsig: None,
                })
                .collect(),
        });
        c
    }

    /// A DNS config patched by a delta shares every unchanged zone's content with
    /// the config before (nothing copied per revision but the changed zones).
    #[test]
    fn unchanged_zones_are_shared_between_builds() {
        let zone = |c: &DesiredConfig, i: usize| match &c.role {
            RoleConfig::Dns(d) => d.zones[i].zone.clone().unwrap(),
            _ => unreachable!("a dns config"),
        };
        let a = dns(3, &[("a.example", 1), ("b.example", 1)]);
        let b = dns(4, &[("a.example", 1), ("b.example", 2)]);
        let mut st = ItemState::from_config(&Arc::new(a)).unwrap();
        let before = st.build().unwrap();
        let (d, sb) = delta(&before, &b);
        assert_eq!(d.upserts.len(), 1, "only b.example changed");
        for h in st.apply(d).unwrap() {
            st.add_blob(h.clone(), Arc::clone(&sb.blobs[&h]));
        }
        let after = st.build().unwrap();
        assert_eq!(*after, b);
        assert!(Arc::ptr_eq(&zone(&before, 0), &zone(&after, 0)));
        assert!(!Arc::ptr_eq(&zone(&before, 1), &zone(&after, 1)));
    }

    fn web_mut(c: &mut DesiredConfig) -> &mut WebConfig {
        match &mut c.role {
            RoleConfig::Web(w) => w,
            _ => unreachable!("a web config"),
        }
    }

    /// Apply `d` fetching nothing (every blob must be held), and build.
    fn apply_held(st: &mut ItemState, d: ConfigDelta) -> Arc<DesiredConfig> {
        assert_eq!(
            st.apply(d).unwrap(),
            Vec::<String>::new(),
            "nothing to fetch"
        );
        st.build().unwrap()
    }

    /// Only hashes are held of unchanged items: a change of a site's inline part
    /// regenerates its certificate blob from the document last built (nothing
    /// fetched); a change that is not patchable (a top-level field) joins every
    /// item from that document; a snapshot after a failed digest recovers without
    /// fetching what is held.
    #[test]
    fn blobs_held_are_regenerated_from_the_document_last_built() {
        let a = Arc::new(cfg(3, &[("a.example", "1"), ("b.example", "2")]));
        let mut st = ItemState::from_config(&a).unwrap();

        let mut b = cfg(4, &[("a.example", "1"), ("b.example", "2")]);
        std::sync::Arc::make_mut(&mut web_mut(&mut b).sites[1]).https_redirect = true;
        let (d, _) = delta(&a, &b);
        assert_eq!(d.upserts.len(), 1);
        assert!(
            !d.upserts[0].blobs.is_empty(),
            "the site's TLS travels by hash"
        );
        let built = apply_held(&mut st, d);
        assert_eq!(*built, b);
        assert!(st.pending.is_empty() && st.fetched.is_empty());

        let mut c = b.clone();
        c.revision = 5;
        web_mut(&mut c).files_origin = Some("files-1.example".into());
        std::sync::Arc::make_mut(&mut web_mut(&mut c).sites[0]).https_redirect = true;
        let (d, _) = delta(&b, &c);
        assert_eq!(*apply_held(&mut st, d), c);

        // A delta that does not lead to the controller's items, then a snapshot.
        let mut e = c.clone();
        e.revision = 6;
        std::sync::Arc::make_mut(&mut web_mut(&mut e).sites[0]).aliases =
            vec!["www.a.example".into()];
        let (mut bad, _) = delta(&c, &e);
        bad.digest = "0".repeat(64);
        assert!(matches!(st.apply(bad), Err(Mismatch::Digest { to: 6 })));
        let (mut snap, _) = delta(&c, &e);
        snap.from = 0;
        snap.upserts = split(&e.role).unwrap().items.into_values().collect();
        snap.removals.clear();
        assert_eq!(*apply_held(&mut st, snap), e);
    }
}
