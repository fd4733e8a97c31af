//! The agent's side of delta configs ([`proto::agent_delta`]): its current config
//! as items and blobs, a [`ConfigDelta`] applied to them, and the whole
//! [`DesiredConfig`] rebuilt for the cache and the role engine (which keep
//! receiving whole documents). The rebuild patches the config last built with
//! the items that changed since ([`proto::agent_delta::patch`]), so a one-site
//! change parses one site, not every item; it joins every item only when the
//! change is not a patchable one.
//!
//! The items and blobs are derived from the cached `desired.json` (0600) at start,
//! so the blob cache by hash is that file: nothing else is written. A blob the
//! agent lacks is fetched once and verified against its hash
//! ([`crate::client::AgentClient::fetch_blob`]). Any mismatch (a delta from another
//! revision, a digest that differs after applying, a blob that does not fit) makes
//! the caller drop this state and ask for a snapshot; the engine keeps the config it
//! has until a whole one is rebuilt.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use proto::agent_delta::{digest, join, patch, split, ConfigDelta, DeltaError, Item};
use proto::agent_v1::{DesiredConfig, RoleConfig, ServerIdentity};

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

/// A config held as items and blobs.
#[derive(Debug, Clone)]
pub struct ItemState {
    format: u32,
    revision: i64,
    server: ServerIdentity,
    items: BTreeMap<String, (Item, [u8; 32])>,
    blobs: HashMap<String, Arc<[u8]>>,
    /// The role config last built, and (a superset of) the ids of the items
    /// changed since: what [`ItemState::build`] patches. `None`: join every item.
    last: Option<(RoleConfig, BTreeSet<String>)>,
}

impl ItemState {
    /// The items and blobs of a whole config (`None` if it cannot be split, which
    /// the types here never cause).
    pub fn from_config(cfg: &DesiredConfig) -> Option<Self> {
        let s = split(&cfg.role).ok()?;
        Some(Self {
            format: cfg.format,
            revision: cfg.revision,
            server: cfg.server.clone(),
            items: s
                .items
                .into_iter()
                .map(|(id, item)| {
                    let h = item.hash();
                    (id, (item, h))
                })
                .collect(),
            blobs: s.blobs.into_iter().collect(),
            last: Some((cfg.role.clone(), BTreeSet::new())),
        })
    }

    /// The revision held.
    pub fn revision(&self) -> i64 {
        self.revision
    }

    /// Apply `delta` (a snapshot replaces every item; blobs held stay usable) and
    /// check the digest; returns the hashes of the blobs still to fetch. On error
    /// this state is unusable: drop it and ask for a snapshot.
    pub fn apply(&mut self, delta: ConfigDelta) -> Result<Vec<String>, Mismatch> {
        if !delta.is_snapshot() && delta.from != self.revision {
            return Err(Mismatch::From {
                from: delta.from,
                held: self.revision,
            });
        }
        let before = delta.is_snapshot().then(|| std::mem::take(&mut self.items));
        for id in &delta.removals {
            self.items.remove(id);
        }
        let mut touched: Vec<String> = match before {
            None => delta.removals.clone(),
            Some(_) => Vec::new(),
        };
        for item in delta.upserts {
            let h = item.hash();
            if before.is_none() {
                touched.push(item.id.clone());
            }
            self.items.insert(item.id.clone(), (item, h));
        }
        if let Some(before) = &before {
            // A snapshot: what differs from the items held (a resync usually
            // changes nothing).
            touched.extend(
                self.items
                    .iter()
                    .filter(|(id, (_, h))| before.get(*id).map(|(_, o)| o) != Some(h))
                    .map(|(id, _)| id.clone()),
            );
            touched.extend(
                before
                    .keys()
                    .filter(|id| !self.items.contains_key(*id))
                    .cloned(),
            );
        }
        if let Some((_, changed)) = self.last.as_mut() {
            changed.extend(touched);
        }
        let got = digest(self.items.iter().map(|(id, (_, h))| (id.as_str(), h)));
        if got != delta.digest {
            self.last = None;
            return Err(Mismatch::Digest { to: delta.to });
        }
        self.format = delta.format;
        self.revision = delta.to;
        self.server = delta.server;
        let referenced: std::collections::BTreeSet<String> = self
            .items
            .values()
            .flat_map(|(i, _)| i.blobs.values().cloned())
            .collect();
        self.blobs.retain(|h, _| referenced.contains(h));
        Ok(referenced
            .into_iter()
            .filter(|h| !self.blobs.contains_key(h))
            .collect())
    }

    /// Add a fetched blob (the caller verified its hash).
    pub fn add_blob(&mut self, hash: String, bytes: Arc<[u8]>) {
        self.blobs.insert(hash, bytes);
    }

    /// The whole desired config the items form: the config last built patched
    /// with the items changed since, or (when that cannot be patched) every item
    /// joined.
    pub fn build(&mut self) -> Result<DesiredConfig, DeltaError> {
        let blob = |h: &str| self.blobs.get(h).map(|b| &b[..]);
        let patched = match self.last.take() {
            Some((mut role, changed)) => {
                let changed = changed
                    .iter()
                    .map(|id| (id.as_str(), self.items.get(id).map(|(i, _)| i)));
                patch(&mut role, changed, blob)?.then_some(role)
            }
            None => None,
        };
        let role = match patched {
            Some(role) => role,
            None => join(self.items.values().map(|(i, _)| i), blob)?,
        };
        self.last = Some((role.clone(), BTreeSet::new()));
        Ok(DesiredConfig {
            format: self.format,
            revision: self.revision,
            server: self.server.clone(),
            role,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
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
                    .collect(),
                files_origin: None,
            }),
        }
    }

    /// The delta from `a` to `b` as a controller would send it.
    fn delta(a: &DesiredConfig, b: &DesiredConfig) -> (ConfigDelta, ItemState) {
        let (sa, sb) = (
            ItemState::from_config(a).unwrap(),
            ItemState::from_config(b).unwrap(),
        );
        let upserts = sb
            .items
            .iter()
            .filter(|(id, (_, h))| sa.items.get(*id).map(|x| x.1) != Some(*h))
            .map(|(_, (i, _))| i.clone())
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
            digest: digest(sb.items.iter().map(|(id, (_, h))| (id.as_str(), h))),
        };
        (d, sb)
    }

    #[test]
    fn a_delta_needs_only_the_new_blobs_and_rebuilds_the_document() {
        let a = cfg(3, &[("a.example", "1"), ("b.example", "2")]);
        let b = cfg(4, &[("a.example", "1"), ("c.example", "3")]);
        let (d, sb) = delta(&a, &b);
        assert_eq!(d.upserts.len(), 1);
        let mut st = ItemState::from_config(&a).unwrap();
        let missing = st.apply(d.clone()).unwrap();
        assert_eq!(missing.len(), 1, "only the new site's TLS blob");
        assert!(st.build().is_err(), "a blob is still missing");
        for h in missing {
            st.add_blob(h.clone(), Arc::clone(&sb.blobs[&h]));
        }
        assert_eq!(st.build().unwrap(), b);

        // The same delta again starts from the wrong revision.
        assert!(matches!(
            st.apply(d.clone()),
            Err(Mismatch::From { from: 3, held: 4 })
        ));
        // A tampered delta fails the digest.
        let mut st = ItemState::from_config(&a).unwrap();
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
        let mut st = ItemState::from_config(&a).unwrap();
        let mut built = st.build().unwrap();
        assert_eq!(built, a);
        for next in [&b, &c] {
            let (d, sn) = delta(&built, next);
            for h in st.apply(d).unwrap() {
                st.add_blob(h.clone(), Arc::clone(&sn.blobs[&h]));
            }
            let now = st.build().unwrap();
            assert_eq!(&now, next);
            assert!(Arc::ptr_eq(&site_tls(&built, 0), &site_tls(&now, 0)));
            built = now;
        }
        // A snapshot (a resync) of what is held: nothing to patch, nothing joined.
        let mut d = delta(&a, &c).0;
        d.from = 0;
        d.to = 7;
        d.upserts = ItemState::from_config(&c)
            .unwrap()
            .items
            .into_values()
            .map(|(i, _)| i)
            .collect();
        st.apply(d).unwrap();
        let now = st.build().unwrap();
        assert_eq!(now.role, c.role);
        assert!(Arc::ptr_eq(&site_tls(&built, 0), &site_tls(&now, 0)));
    }
}
