//! Which servers a change affects: from the old and the new version of every
//! changed object (a domain moving cluster affects both clusters), and from changed
//! inputs that are not stored (health, service ports, the mail flush counter).
//!
//! The answer is a [`Dirty`]: clusters and servers to rebuild, domains whose zone
//! to rebuild (their DNS servers are rebuilt only if the zone's content changed),
//! or everything. It may say more than needed (a server whose config comes out the
//! same keeps its revision), never less: the property test in `proptests.rs`
//! compares incremental builds with full ones.

use std::collections::{BTreeSet, HashMap};

use model::entity::{Cluster, Domain, SecretPurpose};
use model::{Id, Role};
use scheduler::Health;
use store::Stored;

use super::world::{Change, Obj, World};

/// What to rebuild.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Dirty {
    /// Every server and every zone (infrastructure changed: clusters, servers).
    pub everything: bool,
    /// Every server of these clusters.
    pub clusters: BTreeSet<Id>,
    /// These servers.
    pub servers: BTreeSet<Id>,
    /// The zones of these domains.
    pub zones: BTreeSet<Id>,
    /// Domains whose site entry in their web cluster's list is to be remade (the
    /// site, its domain or its certificate changed; see `web_cache`).
    pub web_sites: BTreeSet<Id>,
    /// Web clusters whose whole site list is to be remade (a change that reaches
    /// all their sites at once: an owner's limits, a plan).
    pub web_whole: BTreeSet<Id>,
}

impl Dirty {
    /// Nothing to rebuild.
    pub fn is_empty(&self) -> bool {
        !self.everything
            && self.clusters.is_empty()
            && self.servers.is_empty()
            && self.zones.is_empty()
    }

    /// Mark every server of every cluster of `role`.
    fn role(&mut self, world: &World, role: Role) {
        self.clusters.extend(
            world
                .clusters
                .iter()
                .filter(|c| c.data.role == role)
                .map(|c| c.meta.id),
        );
    }

    /// Mark the `roles` placements of domain `id` (if the world holds it).
    fn domain_roles(&mut self, world: &World, id: Id, roles: &[Role], zone: bool) {
        if let Some(d) = world.domains.get(id) {
            self.placements(d, roles);
        }
        if zone {
            self.zones.insert(id);
        }
    }

    /// Mark the clusters `d` is placed on for `roles`.
    fn placements(&mut self, d: &Stored<Domain>, roles: &[Role]) {
        for r in roles {
            if let Some(c) = d.data.placements.get(r) {
                self.clusters.insert(*c);
            }
        }
    }
}

/// Mark what one version of a changed object affects, looked up in the world
/// after the change (a parent that changed too is marked through its own versions).
pub fn mark(world: &World, obj: &Obj, dirty: &mut Dirty) {
    match obj {
        Obj::Cluster(_) | Obj::Server(_) => dirty.everything = true,
        Obj::Domain(d) => {
            dirty.placements(d, &[Role::Web, Role::Dns, Role::Mail, Role::Files]);
            dirty.zones.insert(d.meta.id);
            dirty.web_sites.insert(d.meta.id);
        }
        Obj::Site(s) => {
            dirty.domain_roles(world, s.data.domain, &[Role::Web, Role::Files], true);
            dirty.web_sites.insert(s.data.domain);
        }
        Obj::Mailbox(m) => dirty.domain_roles(world, m.data.domain, &[Role::Mail], false),
        Obj::Alias(a) => dirty.domain_roles(world, a.data.domain, &[Role::Mail], false),
        Obj::Ftp(f) => dirty.domain_roles(world, f.data.domain, &[Role::Files], false),
        Obj::DnsRecord(r) => {
            dirty.zones.insert(r.data.domain);
        }
        Obj::Database(d) => {
            dirty.clusters.insert(d.data.cluster);
        }
        Obj::DbUser(u) => {
            dirty.clusters.insert(u.data.cluster);
        }
        // Names, quotas and limits reach the db and mail servers; an account's
        // `site_disk_mb` its sites' web and files servers.
        Obj::Account(a) => {
            dirty.role(world, Role::Mail);
            dirty.role(world, Role::Db);
            for d in world
                .domains
                .iter()
                .filter(|d| d.data.customer == a.meta.id)
            {
                dirty.placements(d, &[Role::Web, Role::Files]);
                dirty.web_whole.extend(d.data.placements.get(&Role::Web));
            }
        }
        // A plan may be any account's: every site's quota may change.
        Obj::Plan(_) => {
            for role in [Role::Mail, Role::Db, Role::Web, Role::Files] {
                dirty.role(world, role);
            }
            dirty.web_whole.extend(
                world
                    .clusters
                    .iter()
                    .filter(|c| c.data.role == Role::Web)
                    .map(|c| c.meta.id),
            );
        }
        Obj::Secret(s) => {
            let subject = s.data.subject.as_str();
            match s.data.purpose {
                SecretPurpose::SiteCert => {
                    if let Some(d) = domain_named(world, subject) {
                        dirty.placements(d, &[Role::Web]);
                        dirty.web_sites.insert(d.meta.id);
                    }
                }
                SecretPurpose::ServerCert => dirty.servers.extend(
                    world
                        .servers
                        .iter()
                        .filter(|x| x.meta.name == subject)
                        .map(|x| x.meta.id),
                ),
                SecretPurpose::Dkim => {
                    if let Some(d) = domain_named(world, subject) {
                        dirty.placements(d, &[Role::Mail]);
                        dirty.zones.insert(d.meta.id);
                    }
                }
                SecretPurpose::DkimRsa => {
                    for d in world.domains.iter().filter(|d| {
                        crate::dkim_rsa::subject_for(d.meta.owner, &d.meta.name) == subject
                    }) {
                        dirty.placements(d, &[Role::Mail]);
                        dirty.zones.insert(d.meta.id);
                    }
                }
                SecretPurpose::Tsig | SecretPurpose::TsigPrevious => dirty.clusters.extend(
                    world
                        .clusters
                        .iter()
                        .filter(|c| c.meta.name == subject)
                        .map(|c| c.meta.id),
                ),
                // A spare key signs for nobody: no server carries it.
                SecretPurpose::DkimRsaSpare => {}
                // The secret reaches the site's web servers, its hash the mail
                // servers.
                SecretPurpose::SiteMail => {
                    if let Some(d) = domain_named(world, subject) {
                        dirty.placements(d, &[Role::Web, Role::Mail]);
                        dirty.web_sites.insert(d.meta.id);
                    }
                }
                // A pending HTTP-01 challenge reaches every web server of the
                // site's cluster (`WebConfig::acme_challenges`), its site entry
                // unchanged.
                // A DNS-01 challenge's TXT records reach the zones holding
                // their names.
                SecretPurpose::AcmeChallenge => {
                    if let Some(d) = domain_named(world, subject) {
                        dirty.placements(d, &[Role::Web]);
                    }
                    for t in crate::acme::dns01::records_of(&s.data) {
                        if let Some(d) = zone_holding(world, &t.record) {
                            dirty.zones.insert(d.meta.id);
                        }
                    }
                }
                // The ACME task's bookkeeping: no server carries it.
                SecretPurpose::AcmeAccount | SecretPurpose::AcmeSite | SecretPurpose::AcmeLease => {
                }
                // An account's two-factor secret: the controller's alone.
                SecretPurpose::Totp => {}
            }
        }
    }
}

/// Whether a cluster changed only in its mail writer (a placement move, far
/// more frequent than an operator's edit, and reaching far less than "everything").
fn only_mail_writer_changed(old: &Stored<Cluster>, new: &Stored<Cluster>) -> bool {
    let mut same = old.data.clone();
    same.mail_writer = new.data.mail_writer;
    same == new.data && old.meta.name == new.meta.name
}

/// A mail cluster's writer moved: every server of the cluster (who writes, who
/// relays to whom), the zones of its domains (client names follow the writer),
/// the zones holding the cluster's own client names (`imap.<hostname>` …, at the
/// writer's addresses: every domain at or above them) and their sites' entries
/// (the mail client host and submission order).
fn mail_writer_moved(world: &World, cluster: Id, dirty: &mut Dirty) {
    dirty.clusters.insert(cluster);
    if let Some(names) = world
        .clusters
        .get(cluster)
        .and_then(|c| c.data.mail_client_names())
    {
        for name in names.all() {
            let mut rest = name;
            while let Some((_, parent)) = rest.split_once('.') {
                if let Some(d) = world.domain_named(parent) {
                    dirty.zones.insert(d.meta.id);
                }
                rest = parent;
            }
        }
    }
    for d in world
        .domains
        .iter()
        .filter(|d| d.data.placements.get(&Role::Mail) == Some(&cluster))
    {
        dirty.zones.insert(d.meta.id);
        dirty.web_sites.insert(d.meta.id);
        dirty.placements(d, &[Role::Web]);
    }
}

/// The domain named `name` (by the world's index: a burst of site creations
/// brings a certificate and a DKIM key per domain, and a scan per secret made the
/// builder O(platform) per key).
fn domain_named<'a>(world: &'a World, name: &str) -> Option<&'a Stored<Domain>> {
    world.domain_named(name)
}

/// The domain whose zone holds `name`: the longest domain `name` is at or below.
fn zone_holding<'a>(world: &'a World, name: &str) -> Option<&'a Stored<Domain>> {
    std::iter::once(0)
        .chain(name.match_indices('.').map(|(i, _)| i + 1))
        .find_map(|start| domain_named(world, &name[start..]))
}

/// Mark what the changes of one feed affect.
pub fn mark_changes(world: &World, changes: &[Change], dirty: &mut Dirty) {
    for c in changes {
        if let (Some(Obj::Cluster(old)), Some(Obj::Cluster(new))) = (&c.old, &c.new) {
            if only_mail_writer_changed(old, new) {
                mail_writer_moved(world, new.meta.id, dirty);
                continue;
            }
        }
        for v in [&c.old, &c.new].into_iter().flatten() {
            mark(world, v, dirty);
            if dirty.everything {
                return;
            }
        }
    }
}

/// The inputs that are not stored objects, as one build saw them.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Inputs {
    /// [`World::health`].
    pub health: HashMap<Id, Health>,
    /// [`World::service_ports`].
    pub service_ports: HashMap<Id, u16>,
    /// [`World::mail_flush`].
    pub mail_flush: u64,
    /// [`World::db_trash_days`].
    pub db_trash_days: u32,
    /// [`World::site_versions_days`].
    pub site_versions_days: u32,
    /// [`World::default_plan`].
    pub default_plan: model::limits::Limits,
}

impl Inputs {
    /// The inputs `world` holds.
    pub fn of(world: &World) -> Self {
        Self {
            health: world.health.clone(),
            service_ports: world.service_ports.clone(),
            mail_flush: world.mail_flush,
            db_trash_days: world.db_trash_days,
            site_versions_days: world.site_versions_days,
            default_plan: world.default_plan,
        }
    }
}

/// Mark what changed between the inputs `before` and those `world` holds now.
/// A server's health reaches only zones (web records follow healthy servers): the
/// zones of the domains placed on its cluster; its service port reaches its
/// cluster's peers (NOTIFY targets, the mail primary's SMTP endpoint).
pub fn mark_inputs(world: &World, before: &Inputs, dirty: &mut Dirty) {
    if world.db_trash_days != before.db_trash_days
        || world.site_versions_days != before.site_versions_days
        || world.default_plan != before.default_plan
    {
        dirty.everything = true;
        return;
    }
    if world.mail_flush != before.mail_flush {
        dirty.role(world, Role::Mail);
    }
    let cluster_of = |id: Id| world.servers.get(id).map(|s| s.data.cluster);
    let mut health_clusters = BTreeSet::new();
    for (id, h) in &world.health {
        if before.health.get(id).unwrap_or(&Health::Unknown) != h {
            health_clusters.extend(cluster_of(*id));
        }
    }
    for (id, h) in &before.health {
        if !world.health.contains_key(id) && *h != Health::Unknown {
            health_clusters.extend(cluster_of(*id));
        }
    }
    if !health_clusters.is_empty() {
        for d in &world.domains {
            if d.data
                .placements
                .values()
                .any(|c| health_clusters.contains(c))
            {
                dirty.zones.insert(d.meta.id);
            }
        }
    }
    let mut port_clusters = BTreeSet::new();
    for (id, p) in &world.service_ports {
        if before.service_ports.get(id) != Some(p) {
            port_clusters.extend(cluster_of(*id));
        }
    }
    for id in before.service_ports.keys() {
        if !world.service_ports.contains_key(id) {
            port_clusters.extend(cluster_of(*id));
        }
    }
    // A mail server's port is in the mail route of every site of its domains.
    if !port_clusters.is_empty() {
        for d in &world.domains {
            if d.data
                .placements
                .get(&Role::Mail)
                .is_some_and(|c| port_clusters.contains(c))
                && d.data.placements.contains_key(&Role::Web)
            {
                dirty.placements(d, &[Role::Web]);
                dirty.web_sites.insert(d.meta.id);
            }
        }
    }
    dirty.clusters.extend(port_clusters);
}
