//! Each web cluster's site list kept between builds ([`super::Incremental`]), so a
//! write to one site remakes that site's entry, not the cluster's.
//!
//! Without it, every build of a web cluster scanned every domain and every site of
//! the platform to find the cluster's, made each [`WebSite`] again and sorted them:
//! at 100,000 sites (10 web clusters of 10,000) that was ~270 ms per write.
//!
//! The feed says which sites' entries may have changed ([`super::Dirty::web_sites`]:
//! a site, its domain, its certificate); changes that reach every site of a cluster
//! at once (its owner's limits, a plan) drop the cluster's list
//! ([`super::Dirty::web_whole`]), and infrastructure changes (`everything`) drop all
//! of them. A dropped or never-made list is made by a full scan the next time one of
//! the cluster's servers is built. The property test in `proptests.rs` compares
//! incremental builds with full ones.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use model::Id;
use proto::agent_v1::WebSite;

use super::affected::Dirty;

/// One site as its web cluster's servers carry it, shared by all their configs
/// (`Arc`: one copy per site, not one per server).
#[derive(Debug, Clone)]
pub(super) struct SiteEntry {
    /// The entry every server carries: for a `single` site, every server but the
    /// active one (`active: false`).
    pub(super) site: Arc<WebSite>,
    /// For a `single` site: its active server and the entry that server carries
    /// (`active: true`).
    pub(super) single: Option<(Option<Id>, Arc<WebSite>)>,
}

impl SiteEntry {
    /// The entry for `mode`'s servers from `site` (whose `active` is ignored):
    /// `single` sites get both variants, made once here.
    pub(super) fn new(mut site: WebSite, single: Option<Option<Id>>) -> Self {
        match single {
            None => {
                site.active = true;
                SiteEntry {
                    site: Arc::new(site),
                    single: None,
                }
            }
            Some(active_server) => {
                site.active = true;
                let active = Arc::new(site.clone());
                site.active = false;
                SiteEntry {
                    site: Arc::new(site),
                    single: Some((active_server, active)),
                }
            }
        }
    }

    /// The entry server `server` carries.
    pub(super) fn for_server(&self, server: Id) -> &Arc<WebSite> {
        match &self.single {
            Some((Some(active), site)) if *active == server => site,
            _ => &self.site,
        }
    }
}

/// Where a cached entry is: its cluster and its key (domain name, site id: the
/// servers' order).
type Place = (Id, (String, Id));

/// The site lists of the web clusters built so far, by cluster, in domain order.
#[derive(Debug, Default)]
pub(super) struct WebCache {
    clusters: HashMap<Id, BTreeMap<(String, Id), SiteEntry>>,
    /// Where each domain's site entry is (one site per domain, as the world's
    /// index holds them).
    at: HashMap<Id, Place>,
}

impl WebCache {
    /// The cached list of `cluster`, if one is kept.
    pub(super) fn get(&self, cluster: Id) -> Option<&BTreeMap<(String, Id), SiteEntry>> {
        self.clusters.get(&cluster)
    }

    /// Whether a list of `cluster` is kept (so changes to its sites are patched in).
    pub(super) fn has(&self, cluster: Id) -> bool {
        self.clusters.contains_key(&cluster)
    }

    /// Keep `entries` (domain id, site id, entry) as the whole list of `cluster`.
    pub(super) fn set(&mut self, cluster: Id, entries: Vec<(Id, Id, SiteEntry)>) {
        self.drop_cluster(cluster);
        let mut list = BTreeMap::new();
        for (domain, site, entry) in entries {
            let key = (entry.site.domain.clone(), site);
            self.at.insert(domain, (cluster, key.clone()));
            list.insert(key, entry);
        }
        self.clusters.insert(cluster, list);
    }

    /// Put (or replace) the entry of `domain`'s site `site` into `cluster`'s kept
    /// list (callers check [`WebCache::has`]).
    pub(super) fn put(&mut self, cluster: Id, domain: Id, site: Id, entry: SiteEntry) {
        self.remove_domain(domain);
        if let Some(list) = self.clusters.get_mut(&cluster) {
            let key = (entry.site.domain.clone(), site);
            self.at.insert(domain, (cluster, key.clone()));
            list.insert(key, entry);
        }
    }

    /// Forget the entry of `domain`'s site, wherever it is.
    pub(super) fn remove_domain(&mut self, domain: Id) {
        if let Some((cluster, key)) = self.at.remove(&domain) {
            if let Some(list) = self.clusters.get_mut(&cluster) {
                list.remove(&key);
            }
        }
    }

    /// Forget `cluster`'s list (made again by a full scan when next needed).
    pub(super) fn drop_cluster(&mut self, cluster: Id) {
        if self.clusters.remove(&cluster).is_some() {
            self.at.retain(|_, (c, _)| *c != cluster);
        }
    }

    /// Drop what `dirty` says is no longer valid as a whole: everything, or the
    /// lists of [`Dirty::web_whole`]. (The entries of [`Dirty::web_sites`] are
    /// patched by the builder, which has the world.)
    pub(super) fn invalidate(&mut self, dirty: &Dirty) {
        if dirty.everything {
            *self = Self::default();
            return;
        }
        for c in &dirty.web_whole {
            self.drop_cluster(*c);
        }
    }
}
