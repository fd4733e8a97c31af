//! Desired-config builder: from the builder's copy of the store ([`World`]), the
//! whole [`agent_v1`](proto::agent_v1) desired config of every server. Pure (no
//! I/O, no clock), so it is unit-, snapshot- and property-tested.
//!
//! Builds are incremental ([`Incremental`]): the world is kept between builds and
//! the store's change feed applied to it ([`World::apply`]); the old and new version
//! of every changed object tell which servers and zones it affects
//! ([`affected`]), and only those are rebuilt. The first build, and a change of
//! clusters or servers, rebuilds everything.
//!
//! Each web cluster's site list is kept too and patched site by site
//! (`web_cache`): a write to one site remakes that site's entry, not its cluster's
//! list (which took a scan of every domain and site of the platform).
//!
//! Every server of a cluster gets the cluster's whole workload (every web server
//! holds all of the cluster's sites, every DNS server all its zones ...); what
//! differs per server is its identity and its part: `active` of `single` sites,
//! `primary` of zones and mail domains (the server with the lowest `(rank, id)` of a
//! ranked cluster is the primary).
//!
//! Each DNS-placed domain's zone is built once per build ([`crate::zones`]) and
//! carried whole by the zone assignment of every server of its DNS cluster. The
//! zone follows the web servers' health ([`World::health`]), so a web server going
//! down changes the DNS servers' configs and no other server's.

pub mod affected;
#[cfg(test)]
pub(crate) mod feed_model;
mod index;
#[cfg(test)]
mod proptests;
mod roles;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_files;
#[cfg(test)]
mod tests_hub;
#[cfg(test)]
mod tests_mail;
#[cfg(test)]
mod tests_mailnames;
#[cfg(test)]
mod tests_mem;
mod web_cache;
pub mod world;

use std::collections::{BTreeMap, BTreeSet, HashMap};

use model::Id;
use proto::agent_v1::{RoleConfig, ServerIdentity, ZoneContent};
use store::{Feed, StoreError};

pub use affected::Dirty;
pub use world::{Change, Obj, Objects, World};

use crate::zones::ZoneSerials;
use affected::Inputs;
use index::Index;

/// One server's desired config, without its revision.
#[derive(Debug, Clone, PartialEq)]
pub struct Built {
    /// Who the server is.
    pub server: ServerIdentity,
    /// What its engine serves.
    pub role: RoleConfig,
}

impl Built {
    /// BLAKE3 hash of the content (identity and role config), to tell whether a
    /// server's config changed between builds.
    pub fn content_hash(&self) -> [u8; 32] {
        use std::hash::Hash as _;
        // Fed field by field through `Hash` (no JSON text: escaping every PEM of
        // every site of every server was the largest single cost of a build).
        let mut h = Blake3Hasher(blake3::Hasher::new());
        self.server.hash(&mut h);
        self.role.hash(&mut h);
        *h.0.finalize().as_bytes()
    }
}

/// `std::hash::Hasher` over BLAKE3, for content hashes of `Hash` values (stable
/// within one controller process, which is all the revision logic needs).
struct Blake3Hasher(blake3::Hasher);

impl std::hash::Hasher for Blake3Hasher {
    fn finish(&self) -> u64 {
        let out = self.0.finalize();
        let b = out.as_bytes();
        u64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]])
    }

    fn write(&mut self, bytes: &[u8]) {
        self.0.update(bytes);
    }
}

/// The desired config of every server, by server id. Zone serials come from (and
/// are recorded in) `serials`; `today_yyyymmdd` (e.g. `20261125`) is the date a
/// new serial is at least (`YYYYMMDD00`).
pub fn build_all(
    world: &World,
    serials: &mut ZoneSerials,
    today_yyyymmdd: u32,
) -> BTreeMap<Id, Built> {
    let mut index = Index::new(world);
    index.update_zones(None, serials, today_yyyymmdd);
    world
        .servers
        .iter()
        .map(|s| (s.meta.id, index.build(s)))
        .collect()
}

/// The builder's state between builds: the world, which servers were built and
/// the zones of the DNS-placed domains.
///
/// The configs themselves are not kept here: the hub ([`crate::configs`]) holds
/// the one copy every server's config needs (at 100,000 sites on 50 web servers a
/// second copy was about a gigabyte).
#[derive(Debug, Default)]
pub struct Incremental {
    /// The objects and inputs the configs are made of.
    pub world: World,
    /// The not-stored inputs of the last build (to tell what changed).
    inputs: Inputs,
    /// The zone of every DNS-placed domain, by domain id (shared with the DNS
    /// servers' configs).
    zones: HashMap<Id, std::sync::Arc<ZoneContent>>,
    /// The catalog of every DNS cluster, by cluster id.
    catalogs: HashMap<Id, ZoneContent>,
    /// Each catalog's member digest (its content hash without hashing every member).
    catalog_sums: HashMap<Id, crate::catalog::MemberSum>,
    /// Which catalog lists each domain's zone, under which name.
    listed: HashMap<Id, (Id, String)>,
    /// Certificates and keys shared by every build and server.
    tls: index::TlsCache,
    /// Each web cluster's site list, patched by the changes of each build.
    web: web_cache::WebCache,
    /// The servers built (to tell which ones are gone).
    built: BTreeSet<Id>,
    /// Whether a first (full) build was made.
    ready: bool,
}

/// What one [`Incremental::build`] made.
#[derive(Debug, Default)]
pub struct Pass {
    /// The servers rebuilt, with their new config (possibly the same as before).
    pub rebuilt: BTreeMap<Id, Built>,
    /// Servers that no longer exist.
    pub removed: Vec<Id>,
}

impl Incremental {
    /// A builder over `world`; its first build is a full one.
    pub fn new(world: World) -> Self {
        Self {
            world,
            ..Self::default()
        }
    }

    /// Apply the store's changes to the world; returns what they affect.
    pub fn apply(&mut self, feed: &Feed) -> Result<Dirty, StoreError> {
        let changes = self.world.apply(feed)?;
        for c in &changes {
            if let (Some(world::Obj::Secret(gone)), None) = (&c.old, &c.new) {
                self.tls.evict(gone.meta.id);
            }
        }
        let mut dirty = Dirty::default();
        affected::mark_changes(&self.world, &changes, &mut dirty);
        Ok(dirty)
    }

    /// Replace the world (a reload from scratch): the next build is a full one.
    pub fn reset(&mut self, world: World) {
        self.world = world;
        self.tls.retain_in(&self.world);
        self.ready = false;
    }

    /// Rebuild what `dirty` names and what the changed inputs (health, ports,
    /// mail flush ...) affect; everything on the first build. Zone serials come
    /// from and go to `serials` (see [`build_all`]). Collects every rebuilt
    /// server's config (see [`Incremental::build_into`] to hand them on one by one).
    pub fn build(&mut self, dirty: Dirty, serials: &mut ZoneSerials, today_yyyymmdd: u32) -> Pass {
        let mut rebuilt = BTreeMap::new();
        let removed = self.build_into(dirty, serials, today_yyyymmdd, &mut |_| {}, &mut |id, b| {
            rebuilt.insert(id, b);
        });
        Pass { rebuilt, removed }
    }

    /// [`Incremental::build`], handing each rebuilt server's config to `sink` as
    /// soon as it is made (in server order) instead of collecting them: at 100,000
    /// sites a web server's config is megabytes, and holding all 50 of a first
    /// build at once (next to the hub's previous ones) made the controller's peak.
    /// `zones_done` sees the serials once every zone is numbered and before any
    /// server is built (the hub journals them there, before any config can reach
    /// an agent). Returns the servers that no longer exist.
    pub fn build_into(
        &mut self,
        mut dirty: Dirty,
        serials: &mut ZoneSerials,
        today_yyyymmdd: u32,
        zones_done: &mut dyn FnMut(&mut ZoneSerials),
        sink: &mut dyn FnMut(Id, Built),
    ) -> Vec<Id> {
        affected::mark_inputs(&self.world, &self.inputs, &mut dirty);
        self.inputs = Inputs::of(&self.world);
        if !self.ready {
            dirty.everything = true;
            self.ready = true;
        }
        let world = &self.world;
        let mut index = Index::new(world);
        index.zones = std::mem::take(&mut self.zones);
        index.catalogs = std::mem::take(&mut self.catalogs);
        index.catalog_sums = std::mem::take(&mut self.catalog_sums);
        index.listed = std::mem::take(&mut self.listed);
        index.tls = std::mem::take(&mut self.tls).into();
        index.web_cache = std::mem::take(&mut self.web).into();
        index.patch_web_sites(&dirty);
        let which = (!dirty.everything).then_some(&dirty.zones);
        let touched = index.update_zones(which, serials, today_yyyymmdd);
        zones_done(serials);
        let mut built = Vec::new();
        for s in world.servers.iter().filter(|s| {
            dirty.everything
                || dirty.servers.contains(&s.meta.id)
                || dirty.clusters.contains(&s.data.cluster)
                || touched.contains(&s.data.cluster)
        }) {
            sink(s.meta.id, index.build(s));
            built.push(s.meta.id);
        }
        self.zones = std::mem::take(&mut index.zones);
        self.catalogs = std::mem::take(&mut index.catalogs);
        self.catalog_sums = std::mem::take(&mut index.catalog_sums);
        self.listed = std::mem::take(&mut index.listed);
        self.tls = index.tls.into_inner();
        self.web = index.web_cache.into_inner();
        let removed: Vec<Id> = self
            .built
            .iter()
            .filter(|id| world.servers.get(**id).is_none())
            .copied()
            .collect();
        for id in &removed {
            self.built.remove(id);
        }
        self.built.extend(built);
        removed
    }
}

#[cfg(test)]
impl Pass {
    /// Bring `built` (every server's last config) up to this pass, as the hub
    /// does with its copies.
    pub(crate) fn fold_into(&self, built: &mut BTreeMap<Id, Built>) {
        for id in &self.removed {
            built.remove(id);
        }
        for (id, b) in &self.rebuilt {
            built.insert(*id, b.clone());
        }
    }
}
