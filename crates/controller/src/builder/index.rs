//! Indexes shared by every server's build, and the zones and catalogs of the DNS
//! servers, rebuilt per domain.

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::Arc;

use model::entity::{DnsRecord, Domain, Secret, SecretPurpose, Server, Ttls};
use model::{Id, Role};
use proto::agent_v1::{TlsMaterial, ZoneContent, SYNC_PORT};
use scheduler::Health;
use store::Stored;

use super::web_cache::WebCache;
use super::world::World;
use crate::catalog::MemberSum;
use crate::zones::{build_zone, ZoneInput, ZoneSerials, ZoneServer};

/// The primary of a cluster's servers: lowest `(rank, id)`.
pub(super) fn primary_of<'a>(members: &[&'a Stored<Server>]) -> Option<&'a Stored<Server>> {
    members
        .iter()
        .min_by_key(|s| (s.data.rank, s.meta.id))
        .copied()
}

pub(super) fn addrs(s: &Stored<Server>) -> Vec<String> {
    s.data.addresses.iter().map(ToString::to_string).collect()
}

/// Names leaving and joining one catalog in a build.
#[derive(Debug, Default)]
pub(super) struct Moves {
    leave: BTreeSet<String>,
    join: BTreeSet<String>,
}

/// Indexes shared by every server's build.
pub(super) struct Index<'a> {
    pub(super) world: &'a World,
    pub(super) cluster_names: HashMap<Id, &'a str>,
    pub(super) members: HashMap<Id, Vec<&'a Stored<Server>>>,
    /// The zone of every DNS-placed domain, by domain id; shared with the DNS
    /// servers' configs that carry it (one copy, not one per DNS server).
    pub(super) zones: HashMap<Id, Arc<ZoneContent>>,
    /// The catalog zone ([`crate::catalog`]) of every DNS cluster, by cluster id.
    pub(super) catalogs: HashMap<Id, ZoneContent>,
    /// Each catalog's member digest, for its content hash (see
    /// [`crate::catalog::MemberSum`]).
    pub(super) catalog_sums: HashMap<Id, MemberSum>,
    /// Where each domain with a zone is listed: its DNS cluster's catalog, under
    /// its name (so a change updates the catalogs it leaves and joins, not all).
    pub(super) listed: HashMap<Id, (Id, String)>,
    /// Key material by purpose and subject.
    pub(super) secrets: Secrets<'a>,
    /// Certificates and keys as shared strings (see [`TlsCache`]).
    pub(super) tls: RefCell<TlsCache>,
    /// The web clusters' site lists kept between builds ([`super::web_cache`]).
    pub(super) web_cache: RefCell<WebCache>,
    /// The platform's host names ([`PlatformHosts`]).
    pub(super) hosts: PlatformHosts,
}

/// The platform's own host names and where they point: every server's host
/// name at its addresses, and each mail cluster's client names
/// (`Cluster::mail_client_names`) at its writer's (the primary's before any
/// decision or while nobody writes, so the names still resolve). Indexed by
/// every proper ancestor of each name, so a zone finds the names below its apex
/// in one lookup.
#[derive(Debug, Default)]
pub(super) struct PlatformHosts {
    names: Vec<(String, Vec<std::net::IpAddr>)>,
    /// Ancestor name → indexes into `names`.
    below: HashMap<String, Vec<usize>>,
}

impl PlatformHosts {
    fn add(&mut self, name: String, addresses: Vec<std::net::IpAddr>) {
        let i = self.names.len();
        let mut rest = name.as_str();
        while let Some((_, parent)) = rest.split_once('.') {
            self.below.entry(parent.to_owned()).or_default().push(i);
            rest = parent;
        }
        self.names.push((name, addresses));
    }

    /// The names strictly below `origin`, sorted, each once (a name given twice
    /// keeps every address).
    pub(super) fn below(&self, origin: &str) -> Vec<(String, Vec<std::net::IpAddr>)> {
        let Some(list) = self.below.get(origin) else {
            return Vec::new();
        };
        let mut out: BTreeMap<&str, Vec<std::net::IpAddr>> = BTreeMap::new();
        for i in list {
            let (name, addresses) = &self.names[*i];
            out.entry(name)
                .or_default()
                .extend(addresses.iter().copied());
        }
        out.into_iter()
            .map(|(n, mut a)| {
                a.sort_unstable();
                a.dedup();
                (n.to_owned(), a)
            })
            .collect()
    }
}

/// Certificates and keys as shared strings, by secret id, with the revision of
/// the secret they were made from. Kept between builds ([`super::Incremental`]),
/// so every server of a cluster and every later build carry the very same PEM
/// strings: one copy per site whatever the number of servers, and equal configs
/// compare by pointer.
///
/// An entry lives exactly as long as its secret: the builder evicts it when the
/// change feed deletes the secret ([`TlsCache::evict`], work proportional to the
/// change) and keeps only the world's secrets after a reload ([`TlsCache::retain_in`]),
/// so a deleted site's certificate and key do not stay in memory.
#[derive(Debug, Default)]
pub(super) struct TlsCache(HashMap<Id, (i64, TlsMaterial)>);

impl TlsCache {
    /// Forget the entry of secret `id` (deleted: no config refers to it any more).
    pub(super) fn evict(&mut self, id: Id) {
        self.0.remove(&id);
    }

    /// Keep only the entries of secrets `world` holds (after a reload, when no
    /// feed said what was deleted).
    pub(super) fn retain_in(&mut self, world: &World) {
        self.0.retain(|id, _| world.secrets.get(*id).is_some());
    }

    /// How many certificates are cached (for tests).
    #[cfg(test)]
    pub(super) fn len(&self) -> usize {
        self.0.len()
    }
}

/// Key material by purpose and subject: the world's index (no per-build map of
/// every secret).
pub(super) struct Secrets<'a>(&'a World);

impl<'a> Secrets<'a> {
    /// The secret of `purpose` for `subject`.
    pub(super) fn get(&self, (purpose, subject): &(SecretPurpose, &str)) -> Option<&'a Secret> {
        self.0.secret(*purpose, subject).map(|s| &s.data)
    }
}

/// The standard port of a role's service (what a server listens on when the
/// controller has not heard otherwise).
pub(super) fn standard_port(role: Role) -> u16 {
    match role {
        Role::Web => 80,
        Role::Dns => 53,
        Role::Mail => 25,
        Role::Files => 21,
        Role::Db => 3306,
    }
}

impl<'a> Index<'a> {
    pub(super) fn new(world: &'a World) -> Self {
        let mut members: HashMap<Id, Vec<&Stored<Server>>> = HashMap::new();
        for s in &world.servers {
            members.entry(s.data.cluster).or_default().push(s);
        }
        for list in members.values_mut() {
            list.sort_by_key(|s| (s.data.rank, s.meta.id));
        }
        let mut index = Self {
            world,
            cluster_names: world
                .clusters
                .iter()
                .map(|c| (c.meta.id, c.meta.name.as_str()))
                .collect(),
            members,
            zones: HashMap::new(),
            catalogs: HashMap::new(),
            catalog_sums: HashMap::new(),
            listed: HashMap::new(),
            secrets: Secrets(world),
            tls: RefCell::default(),
            web_cache: RefCell::default(),
            hosts: PlatformHosts::default(),
        };
        index.hosts = index.platform_hosts();
        index
    }

    /// The platform's host names (see [`PlatformHosts`]).
    fn platform_hosts(&self) -> PlatformHosts {
        let mut hosts = PlatformHosts::default();
        for s in &self.world.servers {
            hosts.add(s.data.hostname.to_string(), s.data.addresses.clone());
        }
        for c in &self.world.clusters {
            let Some(names) = c.data.mail_client_names() else {
                continue;
            };
            let members = self.members.get(&c.meta.id);
            let writer = self
                .mail_writer_of(c.meta.id)
                .and_then(|w| self.world.servers.get(w))
                .filter(|w| w.data.cluster == c.meta.id)
                .or_else(|| members.and_then(|m| primary_of(m)));
            let Some(writer) = writer else { continue };
            for n in names.all() {
                hosts.add(n.to_owned(), writer.data.addresses.clone());
            }
        }
        hosts
    }

    /// The certificate and key of `purpose` for `subject`, shared through the
    /// [`TlsCache`].
    pub(super) fn tls(&self, purpose: SecretPurpose, subject: &str) -> Option<TlsMaterial> {
        let s = self.world.secret(purpose, subject)?;
        if let Some(m) = self.world.site_tls(s.meta.id) {
            return Some(m.clone());
        }
        let mut cache = self.tls.borrow_mut();
        if let Some((rev, m)) = cache.0.get(&s.meta.id) {
            if *rev == s.meta.updated_rev {
                return Some(m.clone());
            }
        }
        let m = TlsMaterial {
            cert_pem: s.data.public.as_str().into(),
            key_pem: s.data.private.as_str().into(),
        };
        cache.0.insert(s.meta.id, (s.meta.updated_rev, m.clone()));
        Some(m)
    }

    /// `ip:port` of each address of `s`'s role service.
    pub(super) fn endpoints(&self, s: &Stored<Server>) -> Vec<String> {
        let port = self
            .world
            .service_ports
            .get(&s.meta.id)
            .copied()
            .unwrap_or_else(|| standard_port(s.data.role));
        s.data
            .addresses
            .iter()
            .map(|ip| std::net::SocketAddr::new(*ip, port).to_string())
            .collect()
    }

    /// The server writing mail cluster `cluster`'s mailboxes (`placement::mail`):
    /// the decided holder, or, before any decision, the primary. `None` when the
    /// decision is that nobody writes.
    pub(super) fn mail_writer_of(&self, cluster: Id) -> Option<Id> {
        match self
            .world
            .clusters
            .get(cluster)
            .and_then(|c| c.data.mail_writer)
        {
            Some(w) => w.holder,
            None => primary_of(self.members.get(&cluster)?).map(|s| s.meta.id),
        }
    }

    /// The content origin (`https://ip:port`) of a domain's files placement: the
    /// files cluster's primary.
    pub(super) fn files_origin(&self, domain: &Stored<Domain>) -> Option<String> {
        let cluster = domain.data.placements.get(&Role::Files)?;
        let members = self.members.get(cluster)?;
        let origin = primary_of(members)?;
        let ip = origin.data.addresses.first()?;
        Some(format!(
            "https://{}",
            std::net::SocketAddr::new(*ip, SYNC_PORT)
        ))
    }

    /// The DKIM TXT records `(selector, text)` of a mail-placed domain: Ed25519
    /// and, once made, RSA.
    pub(super) fn dkim_records(
        &self,
        domain: &str,
        owner: Option<Id>,
    ) -> Vec<(&'static str, String)> {
        let mut out = Vec::new();
        if let Some(k) = self.secrets.get(&(SecretPurpose::Dkim, domain)) {
            out.push((
                crate::keys::DKIM_SELECTOR,
                format!("v=DKIM1; k=ed25519; p={}", k.public),
            ));
        }
        let rsa = crate::dkim_rsa::subject_for(owner, domain);
        if let Some(k) = self.secrets.get(&(SecretPurpose::DkimRsa, rsa.as_str())) {
            out.push((crate::dkim_rsa::SELECTOR, crate::dkim_rsa::txt(&k.public)));
        }
        out
    }

    pub(super) fn zone_servers(&self, cluster: Option<Id>) -> Vec<ZoneServer<'a>> {
        cluster
            .and_then(|c| self.members.get(&c))
            .map(|list| {
                list.iter()
                    .map(|s| ZoneServer {
                        id: s.meta.id,
                        server: &s.data,
                        health: self
                            .world
                            .health
                            .get(&s.meta.id)
                            .copied()
                            .unwrap_or(Health::Unknown),
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    pub(super) fn ttls(&self, cluster: Option<Id>) -> Ttls {
        cluster
            .and_then(|c| self.world.clusters.iter().find(|x| x.meta.id == c))
            .map(|c| c.data.ttls)
            .unwrap_or_default()
    }

    /// Rebuild the zones of the domains `which` names (every domain for `None`;
    /// then zones of domains no longer there are dropped too), with serials from
    /// `serials`, and then the catalogs. Returns the DNS clusters whose servers
    /// carry a zone or catalog that changed (added, removed or new content).
    pub(super) fn update_zones(
        &mut self,
        which: Option<&BTreeSet<Id>>,
        serials: &mut ZoneSerials,
        today_yyyymmdd: u32,
    ) -> BTreeSet<Id> {
        let world = self.world;
        let mut touched = BTreeSet::new();
        let mut removed = false;
        // Per DNS cluster: names leaving and joining its catalog.
        let mut moves: BTreeMap<Id, Moves> = BTreeMap::new();
        let wanted: Vec<Id> = match which {
            Some(ids) => ids.iter().copied().collect(),
            None => {
                let all: Vec<Id> = world.domains.iter().map(|d| d.meta.id).collect();
                let present: HashSet<Id> = all.iter().copied().collect();
                let gone: Vec<Id> = self
                    .zones
                    .keys()
                    .filter(|id| !present.contains(id))
                    .copied()
                    .collect();
                all.into_iter().chain(gone).collect()
            }
        };
        if !wanted.is_empty() {
            let mut records: HashMap<Id, Vec<&DnsRecord>> = HashMap::new();
            if which.is_none() {
                for r in world.dns_records.iter() {
                    records.entry(r.data.domain).or_default().push(&r.data);
                }
            } else {
                // Only the changed domains' records, by index: O(change).
                for id in &wanted {
                    let list: Vec<&DnsRecord> =
                        world.records_of(*id).into_iter().map(|r| &r.data).collect();
                    if !list.is_empty() {
                        records.insert(*id, list);
                    }
                }
            }
            for list in records.values_mut() {
                list.sort_by(|a, b| (&a.name, a.data.rtype()).cmp(&(&b.name, b.data.rtype())));
            }
            for id in wanted {
                let zone = world.domains.get(id).and_then(|d| {
                    let input = self.zone_input(d, records.remove(&id))?;
                    let mut zone = build_zone(&input);
                    serials.assign(&mut zone, today_yyyymmdd);
                    let dns = d.data.placements.get(&Role::Dns).copied();
                    Some((dns, d.meta.name.as_str(), zone))
                });
                let listing = zone
                    .as_ref()
                    .and_then(|(dns, name, _)| dns.map(|c| (c, (*name).to_owned())));
                if self.listed.get(&id) != listing.as_ref() {
                    if let Some((c, name)) = self.listed.remove(&id) {
                        moves.entry(c).or_default().leave.insert(name);
                    }
                    if let Some((c, name)) = listing {
                        moves.entry(c).or_default().join.insert(name.clone());
                        self.listed.insert(id, (c, name));
                    }
                }
                let old = match zone {
                    Some((dns, _, zone)) => {
                        let old = self.zones.get(&id);
                        if old.map(|z| &**z) == Some(&zone) {
                            continue;
                        }
                        touched.extend(dns);
                        self.zones.insert(id, Arc::new(zone))
                    }
                    None => self.zones.remove(&id),
                };
                if old.is_some() && !self.zones.contains_key(&id) {
                    removed = true;
                }
            }
        }
        if which.is_none() {
            touched.extend(self.update_catalogs(serials, today_yyyymmdd));
        } else if !moves.is_empty() {
            touched.extend(self.patch_catalogs(moves, serials, today_yyyymmdd));
        }
        if removed || which.is_none() {
            let built: HashSet<&str> = self
                .zones
                .values()
                .map(|z| z.origin.as_str())
                .chain(self.catalogs.values().map(|z| z.origin.as_str()))
                .collect();
            serials.retain(|origin| built.contains(origin));
        }
        touched
    }

    /// Apply the catalogs' `moves` to the catalogs as they are: members leaving
    /// are dropped and joining ones put in their place in name order (the order of
    /// [`crate::catalog::build_catalog`]), without touching the other members (no
    /// string per member); a catalog whose members did not really change is not
    /// hashed again. Returns the clusters whose catalog changed.
    fn patch_catalogs(
        &mut self,
        moves: BTreeMap<Id, Moves>,
        serials: &mut ZoneSerials,
        today_yyyymmdd: u32,
    ) -> Vec<Id> {
        let mut changed = Vec::new();
        for (cluster, m) in moves {
            let Some(catalog) = self.catalogs.get_mut(&cluster) else {
                // Not a DNS cluster the last full build knew: the infrastructure
                // change that made it rebuilds everything.
                continue;
            };
            let sum = self
                .catalog_sums
                .entry(cluster)
                .or_insert_with(|| MemberSum::of(catalog));
            if crate::catalog::patch_members(catalog, sum, &m.leave, &m.join) {
                let hash = sum.content_hash(catalog);
                serials.assign_hashed(catalog, hash, today_yyyymmdd);
                changed.push(cluster);
            }
        }
        changed
    }

    /// What [`build_zone`] needs for domain `d`; `None` if `d` has no zone (not
    /// placed on DNS, or a reserved name).
    fn zone_input(
        &self,
        d: &'a Stored<Domain>,
        records: Option<Vec<&'a DnsRecord>>,
    ) -> Option<ZoneInput<'a>> {
        let placed = |role: Role| d.data.placements.get(&role).copied();
        let dns = placed(Role::Dns)?;
        if crate::catalog::is_reserved(&d.data.name) {
            return None;
        }
        let web = placed(Role::Web);
        Some(ZoneInput {
            origin: &d.data.name,
            serial: 0,
            dns: self.zone_servers(Some(dns)),
            web: self.zone_servers(web),
            site: web.and_then(|_| self.world.site_of(d.meta.id).map(|s| &s.data)),
            mail: self.zone_servers(placed(Role::Mail)),
            mail_writer: placed(Role::Mail).and_then(|c| self.mail_writer_of(c)),
            mail_names: placed(Role::Mail)
                .and_then(|c| self.world.clusters.get(c))
                .and_then(|c| c.data.mail_client_names()),
            hosts: self.hosts.below(d.data.name.as_str()),
            files: self.zone_servers(placed(Role::Files)),
            records: records.unwrap_or_default(),
            ttls: Ttls {
                web: web.map_or(Ttls::default().web, |w| self.ttls(Some(w)).web),
                default: self.ttls(Some(dns)).default,
            },
            dkim: placed(Role::Mail)
                .map(|_| self.dkim_records(&d.meta.name, d.meta.owner))
                .unwrap_or_default(),
            // Pending DNS-01 challenges (one order at a time: a few secrets);
            // the zone keeps those whose name lies in it.
            acme_txt: self
                .world
                .acme_challenges()
                .flat_map(|s| crate::acme::dns01::records_of(&s.data))
                .map(|t| (t.record, t.value))
                .collect(),
        })
    }

    /// Rebuild every DNS cluster's catalog; returns the clusters whose catalog
    /// changed.
    fn update_catalogs(&mut self, serials: &mut ZoneSerials, today_yyyymmdd: u32) -> Vec<Id> {
        let mut changed = Vec::new();
        let mut catalogs = HashMap::new();
        let mut sums = HashMap::new();
        for c in self
            .world
            .clusters
            .iter()
            .filter(|c| c.data.role == Role::Dns)
        {
            let members: Vec<&str> = self
                .domains_on(Role::Dns, c.meta.id)
                .into_iter()
                .filter(|d| self.zones.contains_key(&d.meta.id))
                .map(|d| d.meta.name.as_str())
                .collect();
            let mut catalog = crate::catalog::build_catalog(
                &crate::catalog::catalog_name(c.meta.name.as_str()),
                &members,
            );
            let sum = MemberSum::of(&catalog);
            let hash = sum.content_hash(&catalog);
            serials.assign_hashed(&mut catalog, hash, today_yyyymmdd);
            if self.catalogs.get(&c.meta.id) != Some(&catalog) {
                changed.push(c.meta.id);
            }
            catalogs.insert(c.meta.id, catalog);
            sums.insert(c.meta.id, sum);
        }
        self.catalogs = catalogs;
        self.catalog_sums = sums;
        self.listed = self
            .world
            .domains
            .iter()
            .filter(|d| self.zones.contains_key(&d.meta.id))
            .filter_map(|d| {
                let c = d.data.placements.get(&Role::Dns)?;
                Some((d.meta.id, (*c, d.meta.name.clone())))
            })
            .collect();
        changed
    }

    /// Domains placed on `cluster` for `role`, by name.
    pub(super) fn domains_on(&self, role: Role, cluster: Id) -> Vec<&'a Stored<Domain>> {
        let mut v: Vec<_> = self
            .world
            .domains
            .iter()
            .filter(|d| d.data.placements.get(&role) == Some(&cluster))
            .collect();
        v.sort_by(|a, b| a.meta.name.cmp(&b.meta.name));
        v
    }
}
