//! The agent's side of delta configs ([`proto::agent_delta`]): its current config
//! as items and blobs, a [`ConfigDelta`] applied to them, and the whole
//! [`DesiredConfig`] rebuilt for the cache and the role engine (which keep
//! receiving whole documents).
//!
//! The items and blobs are derived from the cached `desired.json` (0600) at start,
//! so the blob cache by hash is that file: nothing else is written. A blob the
//! agent lacks is fetched once and verified against its hash
//! ([`crate::client::AgentClient::fetch_blob`]). Any mismatch (a delta from another
//! revision, a digest that differs after applying, a blob that does not fit) makes
//! the caller drop this state and ask for a snapshot; the engine keeps the config it
//! has until a whole one is rebuilt.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use proto::agent_delta::{digest, join, split, ConfigDelta, DeltaError, Item};
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

/// A config held as items and blobs.
#[derive(Debug, Clone)]
pub struct ItemState {
    format: u32,
    revision: i64,
    server: ServerIdentity,
    items: BTreeMap<String, (Item, [u8; 32])>,
    blobs: HashMap<String, Arc<[u8]>>,
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
        if delta.is_snapshot() {
            self.items.clear();
        } else if delta.from != self.revision {
            return Err(Mismatch::From {
                from: delta.from,
                held: self.revision,
            });
        }
        for id in &delta.removals {
            self.items.remove(id);
        }
        for item in delta.upserts {
            let h = item.hash();
            self.items.insert(item.id.clone(), (item, h));
        }
        let got = digest(self.items.iter().map(|(id, (_, h))| (id.as_str(), h)));
        if got != delta.digest {
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

    /// The whole desired config the items form.
    pub fn build(&self) -> Result<DesiredConfig, DeltaError> {
        let role = join(self.items.values().map(|(i, _)| i), |h| {
            self.blobs.get(h).map(|b| &b[..])
        })?;
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
                        domain: (*d).into(),
                        aliases: vec![],
                        php: true,
                        mode: model::PlacementMode::All,
                        active: true,
                        https_redirect: false,
                        tls: Some(TlsMaterial {
                            cert_pem: "C".repeat(500),
                            key_pem: format!("{k}{}", "K".repeat(300)),
                        }),
                        files_origin: None,
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
}
