//! Desired-config builder: from a snapshot of the store, the whole
//! [`agent_v1`](proto::agent_v1) desired config of every server. Pure (no I/O, no
//! clock), so it is unit- and snapshot-tested; [`World::load`] is the only part that
//! reads the store.
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

use std::collections::{BTreeMap, HashMap};

use model::entity::{
    Account, Cluster, Database, DbUser, DnsRecord, Domain, FtpAccount, MailAlias, Mailbox, Secret,
    SecretPurpose, Server, Site, Ttls,
};
use model::{Id, PlacementMode, Role};
use proto::agent_v1::{
    DbConfig, DbRoleConfig, DbUserConfig, DkimKey, DnsConfig, FilesConfig, FtpAccountConfig,
    MailAccount, MailConfig, MailDomain, MailLimits, MailPeer, PreviousTsigSecret, RoleConfig,
    ServerIdentity, TlsMaterial, TsigKey, WebConfig, WebSite, ZoneAssignment, ZoneContent,
    SYNC_PORT,
};
use scheduler::Health;
use store::{Store, StoreError, Stored};

use crate::zones::{build_zone, ZoneInput, ZoneSerials, ZoneServer};

/// Everything the builder reads, as stored.
#[derive(Debug, Clone, Default)]
pub struct World {
    /// All clusters.
    pub clusters: Vec<Stored<Cluster>>,
    /// All servers.
    pub servers: Vec<Stored<Server>>,
    /// All domains.
    pub domains: Vec<Stored<Domain>>,
    /// All sites.
    pub sites: Vec<Stored<Site>>,
    /// All mailboxes.
    pub mailboxes: Vec<Stored<Mailbox>>,
    /// All mail aliases.
    pub aliases: Vec<Stored<MailAlias>>,
    /// All FTP accounts.
    pub ftp_accounts: Vec<Stored<FtpAccount>>,
    /// All databases.
    pub databases: Vec<Stored<Database>>,
    /// All database users.
    pub db_users: Vec<Stored<DbUser>>,
    /// All customer DNS records.
    pub dns_records: Vec<Stored<DnsRecord>>,
    /// All accounts (their plans and overrides decide limits sent to servers).
    pub accounts: Vec<Stored<Account>>,
    /// All plans.
    pub plans: Vec<Stored<model::entity::Plan>>,
    /// Key material ([`crate::keys`]): certificates, DKIM and TSIG keys.
    pub secrets: Vec<Stored<Secret>>,
    /// Account names by id (database owners).
    pub account_names: HashMap<Id, String>,
    /// Database storage quotas (MiB) of the accounts that have one.
    pub db_quotas: HashMap<Id, u64>,
    /// The limits in force of each account ([`model::limits::account_limits`]:
    /// its plan or the default plan, with its overrides); filled by
    /// [`World::set_limits`]. An account absent here has the default plan's.
    pub account_limits: HashMap<Id, model::limits::Limits>,
    /// The controller's `[default_plan]`.
    pub default_plan: model::limits::Limits,
    /// The port of each server's role service (DNS, SMTP ...) as the controller
    /// knows it: the heartbeat's probe port, else the configured one. A server absent
    /// here uses the role's standard port.
    pub service_ports: HashMap<Id, u16>,
    /// The mail flush counter (`hostplane mail flush`, a mail primary coming back):
    /// mail servers retry their queues when it changes.
    pub mail_flush: u64,
    /// Days db servers keep dumps of dropped databases (controller config
    /// `databases.trash_days`).
    pub db_trash_days: u32,
    /// Health of the servers as the controller believes it (not stored; the
    /// caller fills it from the health monitor). A server absent here is `unknown`.
    pub health: HashMap<Id, Health>,
}

impl World {
    /// Read the store. Returns the store revision read *before* the objects, so the
    /// world reflects at least that revision (a change committed meanwhile triggers
    /// another build).
    pub async fn load(store: &Store) -> Result<(i64, World), StoreError> {
        let revision = store.revision().await?;
        // The kinds are read side by side (the store has several connections): at
        // 10,000 sites the reads were the larger half of a build.
        let (clusters, servers, domains, sites, mailboxes, aliases) = tokio::try_join!(
            store.all(),
            store.all(),
            store.all(),
            store.all(),
            store.all(),
            store.all(),
        )?;
        let (ftp_accounts, databases, db_users, dns_records, secrets, accounts) = tokio::try_join!(
            store.all(),
            store.all(),
            store.all(),
            store.all(),
            store.all(),
            store.all::<Account>(),
        )?;
        let plans: Vec<Stored<model::entity::Plan>> = store.all().await?;
        let mut world = World {
            clusters,
            servers,
            domains,
            sites,
            mailboxes,
            aliases,
            ftp_accounts,
            databases,
            db_users,
            dns_records,
            secrets,
            accounts: Vec::new(),
            plans: Vec::new(),
            account_names: HashMap::new(),
            db_quotas: HashMap::new(),
            account_limits: HashMap::new(),
            default_plan: model::limits::Limits::default(),
            service_ports: HashMap::new(),
            mail_flush: 0,
            db_trash_days: 0,
            health: HashMap::new(),
        };
        world.accounts = accounts;
        world.plans = plans;
        for a in &world.accounts {
            if let Some(q) = a.data.db_quota_mb {
                world.db_quotas.insert(a.meta.id, q);
            }
            world.account_names.insert(a.meta.id, a.meta.name.clone());
        }
        world.set_limits(model::limits::Limits::default());
        Ok((revision, world))
    }

    /// Compute every account's limits in force with `default_plan` (the
    /// controller's `[default_plan]`) for accounts without a plan.
    pub fn set_limits(&mut self, default_plan: model::limits::Limits) {
        self.default_plan = default_plan;
        let plans: HashMap<Id, &model::entity::Plan> =
            self.plans.iter().map(|p| (p.meta.id, &p.data)).collect();
        self.account_limits = self
            .accounts
            .iter()
            .map(|a| {
                let plan = a.data.plan.and_then(|id| plans.get(&id).copied());
                (
                    a.meta.id,
                    model::limits::account_limits(&a.data, plan, &default_plan),
                )
            })
            .collect();
    }
}

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

/// The primary of a cluster's servers: lowest `(rank, id)`.
fn primary_of<'a>(members: &[&'a Stored<Server>]) -> Option<&'a Stored<Server>> {
    members
        .iter()
        .min_by_key(|s| (s.data.rank, s.meta.id))
        .copied()
}

fn addrs(s: &Stored<Server>) -> Vec<String> {
    s.data.addresses.iter().map(ToString::to_string).collect()
}

/// Indexes shared by every server's build.
struct Index<'a> {
    world: &'a World,
    cluster_names: HashMap<Id, &'a str>,
    members: HashMap<Id, Vec<&'a Stored<Server>>>,
    /// The zone of every DNS-placed domain, by domain id.
    zones: HashMap<Id, ZoneContent>,
    /// The catalog zone ([`crate::catalog`]) of every DNS cluster, by cluster id.
    catalogs: HashMap<Id, ZoneContent>,
    /// Key material by purpose and subject.
    secrets: HashMap<(SecretPurpose, &'a str), &'a Secret>,
}

/// The standard port of a role's service (what a server listens on when the
/// controller has not heard otherwise).
fn standard_port(role: Role) -> u16 {
    match role {
        Role::Web => 80,
        Role::Dns => 53,
        Role::Mail => 25,
        Role::Files => 21,
        Role::Db => 3306,
    }
}

fn tls_of(secret: Option<&&Secret>) -> Option<TlsMaterial> {
    secret.map(|s| TlsMaterial {
        cert_pem: s.public.clone(),
        key_pem: s.private.clone(),
    })
}

impl<'a> Index<'a> {
    fn new(world: &'a World) -> Self {
        let mut members: HashMap<Id, Vec<&Stored<Server>>> = HashMap::new();
        for s in &world.servers {
            members.entry(s.data.cluster).or_default().push(s);
        }
        for list in members.values_mut() {
            list.sort_by_key(|s| (s.data.rank, s.meta.id));
        }
        Self {
            world,
            cluster_names: world
                .clusters
                .iter()
                .map(|c| (c.meta.id, c.meta.name.as_str()))
                .collect(),
            members,
            zones: HashMap::new(),
            catalogs: HashMap::new(),
            secrets: world
                .secrets
                .iter()
                .map(|s| ((s.data.purpose, s.data.subject.as_str()), &s.data))
                .collect(),
        }
    }

    /// `ip:port` of each address of `s`'s role service.
    fn endpoints(&self, s: &Stored<Server>) -> Vec<String> {
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

    /// The content origin (`https://ip:port`) of a domain's files placement: the
    /// files cluster's primary.
    fn files_origin(&self, domain: &Stored<Domain>) -> Option<String> {
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
    fn dkim_records(&self, domain: &str, owner: Option<Id>) -> Vec<(&'static str, String)> {
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

    fn zone_servers(&self, cluster: Option<Id>) -> Vec<ZoneServer<'a>> {
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

    fn ttls(&self, cluster: Option<Id>) -> Ttls {
        cluster
            .and_then(|c| self.world.clusters.iter().find(|x| x.meta.id == c))
            .map(|c| c.data.ttls)
            .unwrap_or_default()
    }

    /// Build the zone of every DNS-placed domain, with serials from `serials`.
    fn build_zones(&mut self, serials: &mut ZoneSerials, today_yyyymmdd: u32) {
        let world = self.world;
        let sites: HashMap<Id, &Site> = world
            .sites
            .iter()
            .map(|s| (s.data.domain, &s.data))
            .collect();
        let mut records: HashMap<Id, Vec<&DnsRecord>> = HashMap::new();
        for r in &world.dns_records {
            records.entry(r.data.domain).or_default().push(&r.data);
        }
        for list in records.values_mut() {
            list.sort_by(|a, b| (&a.name, a.data.rtype()).cmp(&(&b.name, b.data.rtype())));
        }
        let mut zones = HashMap::new();
        for d in &world.domains {
            let placed = |role: Role| d.data.placements.get(&role).copied();
            let Some(dns) = placed(Role::Dns) else {
                continue;
            };
            if crate::catalog::is_reserved(&d.data.name) {
                continue;
            }
            let web = placed(Role::Web);
            let input = ZoneInput {
                origin: &d.data.name,
                serial: 0,
                dns: self.zone_servers(Some(dns)),
                web: self.zone_servers(web),
                site: web.and_then(|_| sites.get(&d.meta.id).copied()),
                mail: self.zone_servers(placed(Role::Mail)),
                files: self.zone_servers(placed(Role::Files)),
                records: records.remove(&d.meta.id).unwrap_or_default(),
                ttls: Ttls {
                    web: web.map_or(Ttls::default().web, |w| self.ttls(Some(w)).web),
                    default: self.ttls(Some(dns)).default,
                },
                dkim: placed(Role::Mail)
                    .map(|_| self.dkim_records(&d.meta.name, d.meta.owner))
                    .unwrap_or_default(),
            };
            let mut zone = build_zone(&input);
            serials.assign(&mut zone, today_yyyymmdd);
            zones.insert(d.meta.id, zone);
        }
        let mut catalogs = HashMap::new();
        for c in world.clusters.iter().filter(|c| c.data.role == Role::Dns) {
            let members: Vec<&str> = self
                .domains_on(Role::Dns, c.meta.id)
                .into_iter()
                .filter(|d| zones.contains_key(&d.meta.id))
                .map(|d| d.meta.name.as_str())
                .collect();
            let mut catalog = crate::catalog::build_catalog(
                &crate::catalog::catalog_name(c.meta.name.as_str()),
                &members,
            );
            serials.assign(&mut catalog, today_yyyymmdd);
            catalogs.insert(c.meta.id, catalog);
        }
        let built: std::collections::HashSet<&str> = zones
            .values()
            .chain(catalogs.values())
            .map(|z| z.origin.as_str())
            .collect();
        serials.retain(|origin| built.contains(origin));
        self.zones = zones;
        self.catalogs = catalogs;
    }

    /// Domains placed on `cluster` for `role`, by name.
    fn domains_on(&self, role: Role, cluster: Id) -> Vec<&'a Stored<Domain>> {
        let mut v: Vec<_> = self
            .world
            .domains
            .iter()
            .filter(|d| d.data.placements.get(&role) == Some(&cluster))
            .collect();
        v.sort_by(|a, b| a.meta.name.cmp(&b.meta.name));
        v
    }

    fn web(&self, server: &Stored<Server>) -> WebConfig {
        let placed: HashMap<Id, &Stored<Domain>> = self
            .domains_on(Role::Web, server.data.cluster)
            .into_iter()
            .map(|d| (d.meta.id, d))
            .collect();
        let mut sites: Vec<WebSite> = self
            .world
            .sites
            .iter()
            .filter_map(|s| {
                let domain = placed.get(&s.data.domain)?;
                let active = match s.data.mode {
                    PlacementMode::All => true,
                    PlacementMode::Single => s.data.active_server == Some(server.meta.id),
                };
                let mut aliases: Vec<String> =
                    s.data.aliases.iter().map(ToString::to_string).collect();
                aliases.sort();
                let name = domain.meta.name.as_str();
                Some(WebSite {
                    domain: name.to_owned(),
                    aliases,
                    php: s.data.php,
                    mode: s.data.mode,
                    active,
                    https_redirect: s.data.https_redirect,
                    tls: tls_of(self.secrets.get(&(SecretPurpose::SiteCert, name))),
                    files_origin: self.files_origin(domain),
                })
            })
            .collect();
        sites.sort_by(|a, b| a.domain.cmp(&b.domain));
        // Each site names its own origin (`WebSite::files_origin`).
        WebConfig {
            sites,
            files_origin: None,
        }
    }

    fn dns(&self, server: &Stored<Server>) -> DnsConfig {
        let members = self
            .members
            .get(&server.data.cluster)
            .map(Vec::as_slice)
            .unwrap_or_default();
        let Some(primary) = primary_of(members) else {
            return DnsConfig::default();
        };
        let primary_addresses = addrs(primary);
        let secondaries: Vec<String> = members
            .iter()
            .filter(|s| s.meta.id != primary.meta.id)
            .flat_map(|s| addrs(s))
            .collect();
        let is_primary = primary.meta.id == server.meta.id;
        let cluster = self
            .world
            .clusters
            .iter()
            .find(|c| c.meta.id == server.data.cluster);
        let primary_endpoints = if is_primary {
            Vec::new()
        } else {
            self.endpoints(primary)
        };
        let notify: Vec<String> = if is_primary {
            members
                .iter()
                .filter(|s| s.meta.id != primary.meta.id)
                .flat_map(|s| self.endpoints(s))
                .chain(
                    cluster
                        .into_iter()
                        .flat_map(|c| c.data.external_secondaries.iter().map(ToString::to_string)),
                )
                .collect()
        } else {
            Vec::new()
        };
        let tsig = cluster
            .and_then(|c| {
                self.secrets
                    .get(&(SecretPurpose::Tsig, c.meta.name.as_str()))
            })
            .map(|k| TsigKey {
                name: k.public.clone(),
                algorithm: k.algorithm.clone(),
                secret: k.private.clone(),
                previous: cluster
                    .and_then(|c| {
                        self.secrets
                            .get(&(SecretPurpose::TsigPrevious, c.meta.name.as_str()))
                    })
                    .and_then(|p| {
                        Some(PreviousTsigSecret {
                            secret: p.private.clone(),
                            not_after: u64::try_from(p.not_after?).ok()?,
                        })
                    }),
            });
        let assignment = |domain: &str, zone: Option<&ZoneContent>| ZoneAssignment {
            domain: domain.to_owned(),
            primary: is_primary,
            primary_addresses: primary_addresses.clone(),
            secondaries: secondaries.clone(),
            zone: zone.cloned(),
            primary_endpoints: primary_endpoints.clone(),
            notify: notify.clone(),
            tsig: tsig.clone(),
        };
        let mut zones: Vec<ZoneAssignment> = self
            .domains_on(Role::Dns, server.data.cluster)
            .into_iter()
            .filter(|d| self.zones.contains_key(&d.meta.id))
            .map(|d| assignment(&d.meta.name, self.zones.get(&d.meta.id)))
            .collect();
        // The catalog, only with a key: it is never transferred unsigned.
        if let (Some(catalog), Some(_)) = (self.catalogs.get(&server.data.cluster), &tsig) {
            zones.push(assignment(&catalog.origin, Some(catalog)));
        }
        DnsConfig { zones }
    }

    fn mail(&self, server: &Stored<Server>) -> MailConfig {
        let members = self
            .members
            .get(&server.data.cluster)
            .map(Vec::as_slice)
            .unwrap_or_default();
        let primary = primary_of(members);
        let is_primary = primary.map(|p| p.meta.id) == Some(server.meta.id);
        let primary_smtp = if is_primary {
            None
        } else {
            primary.and_then(|p| self.endpoints(p).into_iter().next())
        };
        let domains = self
            .domains_on(Role::Mail, server.data.cluster)
            .into_iter()
            .map(|d| {
                let mut mailboxes: Vec<String> = self
                    .world
                    .mailboxes
                    .iter()
                    .filter(|m| m.data.domain == d.meta.id)
                    .map(|m| m.data.local_part.to_string())
                    .collect();
                mailboxes.sort();
                let mut aliases: Vec<(String, Vec<String>)> = self
                    .world
                    .aliases
                    .iter()
                    .filter(|a| a.data.domain == d.meta.id)
                    .map(|a| {
                        (
                            a.data.local_part.to_string(),
                            a.data
                                .destinations
                                .iter()
                                .map(ToString::to_string)
                                .collect(),
                        )
                    })
                    .collect();
                aliases.sort();
                MailDomain {
                    domain: d.meta.name.clone(),
                    primary: is_primary,
                    mailboxes,
                    aliases,
                    accounts: if is_primary {
                        self.mail_accounts(d.meta.id)
                    } else {
                        Vec::new()
                    },
                    primary_smtp: primary_smtp.clone(),
                    dkim: self
                        .secrets
                        .get(&(SecretPurpose::Dkim, d.meta.name.as_str()))
                        .map(|k| DkimKey {
                            selector: crate::keys::DKIM_SELECTOR.to_owned(),
                            algorithm: k.algorithm.clone(),
                            private_key_pem: k.private.clone(),
                        }),
                    dkim_rsa: self
                        .secrets
                        .get(&(
                            SecretPurpose::DkimRsa,
                            crate::dkim_rsa::subject_for(d.meta.owner, &d.meta.name).as_str(),
                        ))
                        .map(|k| DkimKey {
                            selector: crate::dkim_rsa::SELECTOR.to_owned(),
                            algorithm: crate::dkim_rsa::ALGORITHM.to_owned(),
                            private_key_pem: k.private.clone(),
                        }),
                    limits: mail_limits_for(self.world, d),
                }
            })
            .collect();
        let peers = members
            .iter()
            .filter(|s| s.meta.id != server.meta.id)
            .map(|s| MailPeer {
                addresses: s.data.addresses.iter().map(ToString::to_string).collect(),
                names: vec![s.meta.name.to_string(), s.data.hostname.to_string()],
            })
            .collect();
        MailConfig {
            domains,
            flush: self.world.mail_flush,
            tls: tls_of(
                self.secrets
                    .get(&(SecretPurpose::ServerCert, server.meta.name.as_str())),
            ),
            peers,
        }
    }

    /// Mailbox logins of a domain, by local part.
    fn mail_accounts(&self, domain: Id) -> Vec<MailAccount> {
        let mut out: Vec<MailAccount> = self
            .world
            .mailboxes
            .iter()
            .filter(|m| m.data.domain == domain)
            .map(|m| MailAccount {
                local_part: m.data.local_part.to_string(),
                password_hash: m.data.password_hash.clone(),
                quota_mb: m.data.quota_mb,
                enabled: m.data.enabled,
            })
            .collect();
        out.sort_by(|a, b| a.local_part.cmp(&b.local_part));
        out
    }

    fn files(&self, server: &Stored<Server>) -> FilesConfig {
        let placed = self.domains_on(Role::Files, server.data.cluster);
        let ids: HashMap<Id, &str> = placed
            .iter()
            .map(|d| (d.meta.id, d.meta.name.as_str()))
            .collect();
        let mut ftp_accounts: Vec<FtpAccountConfig> = self
            .world
            .ftp_accounts
            .iter()
            .filter_map(|f| {
                let domain = ids.get(&f.data.domain)?;
                Some(FtpAccountConfig {
                    username: f.data.username.to_string(),
                    domain: (*domain).to_owned(),
                    password_hash: f.data.password_hash.clone(),
                    home: f.data.home.to_string(),
                    quota_mb: f.data.quota_mb,
                })
            })
            .collect();
        ftp_accounts.sort_by(|a, b| a.username.cmp(&b.username));
        // Web servers that host these domains may pull exactly those.
        let mut pullers: BTreeMap<&str, Vec<String>> = BTreeMap::new();
        for d in &placed {
            let Some(web) = d.data.placements.get(&Role::Web) else {
                continue;
            };
            for w in self.members.get(web).map(Vec::as_slice).unwrap_or_default() {
                pullers
                    .entry(w.meta.name.as_str())
                    .or_default()
                    .push(d.meta.name.clone());
            }
        }
        let site_of: HashMap<Id, &Site> = self
            .world
            .sites
            .iter()
            .map(|s| (s.data.domain, &s.data))
            .collect();
        let deployments = placed
            .iter()
            .filter_map(|d| {
                let dep = site_of.get(&d.meta.id)?.deployment.as_ref()?;
                Some(proto::agent_v1::SiteDeployment {
                    domain: d.meta.name.clone(),
                    id: dep.id.clone(),
                    size: dep.size,
                })
            })
            .collect();
        FilesConfig {
            sites: placed.iter().map(|d| d.meta.name.clone()).collect(),
            deployments,
            ftp_accounts,
            tls: tls_of(
                self.secrets
                    .get(&(SecretPurpose::ServerCert, server.meta.name.as_str())),
            ),
            sync_clients: pullers
                .into_iter()
                .map(|(s, d)| (s.to_owned(), d))
                .collect(),
        }
    }

    fn db(&self, server: &Stored<Server>) -> DbRoleConfig {
        let cluster = server.data.cluster;
        let db_names: HashMap<Id, &str> = self
            .world
            .databases
            .iter()
            .filter(|d| d.data.cluster == cluster)
            .map(|d| (d.meta.id, d.data.name.as_str()))
            .collect();
        let mut databases: Vec<DbConfig> = self
            .world
            .databases
            .iter()
            .filter(|d| d.data.cluster == cluster)
            .map(|d| DbConfig {
                name: d.data.name.to_string(),
                engine: d.data.engine,
                owner: self
                    .world
                    .account_names
                    .get(&d.data.customer)
                    .cloned()
                    .unwrap_or_default(),
                restore_from: d.data.restore_from.clone(),
            })
            .collect();
        databases.sort_by(|a, b| a.name.cmp(&b.name));
        let mut users: Vec<DbUserConfig> = self
            .world
            .db_users
            .iter()
            .filter(|u| u.data.cluster == cluster)
            .map(|u| {
                let mut dbs: Vec<String> = u
                    .data
                    .databases
                    .iter()
                    .filter_map(|id| db_names.get(id).map(|n| (*n).to_owned()))
                    .collect();
                dbs.sort();
                DbUserConfig {
                    name: u.data.name.to_string(),
                    engine: u.data.engine,
                    password_verifier: u.data.password_verifier.clone(),
                    databases: dbs,
                }
            })
            .collect();
        users.sort_by(|a, b| a.name.cmp(&b.name));
        // Quotas of the customers owning databases here.
        let mut quotas: Vec<(String, u64)> = self
            .world
            .databases
            .iter()
            .filter(|d| d.data.cluster == cluster)
            .filter_map(|d| {
                let q = self.world.db_quotas.get(&d.data.customer)?;
                Some((self.world.account_names.get(&d.data.customer)?.clone(), *q))
            })
            .collect();
        quotas.sort();
        quotas.dedup();
        DbRoleConfig {
            databases,
            users,
            quotas,
            trash_days: self.world.db_trash_days,
        }
    }

    fn build(&self, server: &Stored<Server>) -> Built {
        let identity = ServerIdentity {
            name: server.meta.name.clone(),
            role: server.data.role.to_string(),
            cluster: self
                .cluster_names
                .get(&server.data.cluster)
                .map(|n| (*n).to_owned())
                .unwrap_or_default(),
            rank: server.data.rank,
            addresses: addrs(server),
            hostname: server.data.hostname.to_string(),
        };
        let role = match server.data.role {
            Role::Web => RoleConfig::Web(self.web(server)),
            Role::Dns => RoleConfig::Dns(self.dns(server)),
            Role::Mail => RoleConfig::Mail(self.mail(server)),
            Role::Files => RoleConfig::Files(self.files(server)),
            Role::Db => RoleConfig::Db(self.db(server)),
        };
        Built {
            server: identity,
            role,
        }
    }
}

/// The outgoing mail limits of a domain and its mailboxes, as sent to its mail
/// servers. The one place they are decided: the owning account's limits in force
/// (plan or `[default_plan]`, with overrides): `mail_messages_per_hour` bounds each
/// mailbox and the domain as a whole, `mail_recipients_per_message` each message.
fn mail_limits_for(world: &World, domain: &Stored<Domain>) -> Option<MailLimits> {
    let limits = world
        .account_limits
        .get(&domain.data.customer)
        .unwrap_or(&world.default_plan);
    let per_hour = u32::try_from(limits.mail_messages_per_hour).unwrap_or(u32::MAX);
    Some(MailLimits {
        messages_per_hour_per_mailbox: Some(per_hour),
        messages_per_hour_per_domain: Some(per_hour),
        recipients_per_message: Some(
            u32::try_from(limits.mail_recipients_per_message).unwrap_or(u32::MAX),
        ),
    })
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
    index.build_zones(serials, today_yyyymmdd);
    world
        .servers
        .iter()
        .map(|s| (s.meta.id, index.build(s)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use model::entity::{Mailbox, Ttls};
    use model::{CountryCode, DbEngine, DbIdent, DomainName, FtpUsername, LocalPart, RelPath};
    use model::{EmailAddress, Slug};
    use proto::agent_v1::{DesiredConfig, CONFIG_FORMAT};
    use store::Meta;
    use time::OffsetDateTime;

    fn stored<T>(id: Id, name: &str, parent: Option<Id>, data: T) -> Stored<T> {
        let t = OffsetDateTime::UNIX_EPOCH;
        Stored {
            meta: Meta {
                id,
                name: name.to_owned(),
                owner: None,
                reseller: None,
                parent,
                created_rev: 1,
                updated_rev: 1,
                created_at: t,
                updated_at: t,
            },
            data,
        }
    }

    fn cluster(id: Id, name: &str, role: Role) -> Stored<Cluster> {
        stored(
            id,
            name,
            None,
            Cluster {
                name: Slug::new(name).unwrap(),
                role,
                description: String::new(),
                is_default: false,
                ttls: Ttls::default(),
                external_secondaries: Vec::new(),
            },
        )
    }

    fn server(id: Id, name: &str, role: Role, cluster: Id, rank: u16, ip: &str) -> Stored<Server> {
        stored(
            id,
            name,
            Some(cluster),
            Server {
                name: Slug::new(name).unwrap(),
                role,
                cluster,
                rank,
                hostname: DomainName::new(&format!("{name}.hosting.example")).unwrap(),
                addresses: vec![ip.parse().unwrap()],
                region: String::new(),
                country: CountryCode::new("DE").unwrap(),
                hardware: String::new(),
                drained: false,
                agent: None,
            },
        )
    }

    fn domain(id: Id, name: &str, placements: &[(Role, Id)]) -> Stored<Domain> {
        stored(
            id,
            name,
            None,
            Domain {
                name: DomainName::new(name).unwrap(),
                customer: 1,
                placements: placements.iter().copied().collect(),
            },
        )
    }

    fn site(id: Id, domain: Id, mode: PlacementMode, active: Option<Id>) -> Stored<Site> {
        stored(
            id,
            "",
            Some(domain),
            Site {
                domain,
                aliases: vec![],
                php: true,
                mode,
                https_redirect: false,
                active_server: active,
                deployment: None,
                previous_deployments: Vec::new(),
            },
        )
    }

    /// Two web clusters (2 + 1 servers), DNS and mail primary + secondary, files, db.
    fn world() -> World {
        let web = [
            (Role::Web, 1),
            (Role::Dns, 3),
            (Role::Mail, 4),
            (Role::Files, 5),
        ];
        World {
            clusters: vec![
                cluster(1, "web-eu", Role::Web),
                cluster(2, "web-us", Role::Web),
                cluster(3, "dns", Role::Dns),
                cluster(4, "mail", Role::Mail),
                cluster(5, "files", Role::Files),
                cluster(6, "db", Role::Db),
            ],
            servers: vec![
                server(11, "web-1", Role::Web, 1, 0, "127.0.0.11"),
                server(12, "web-2", Role::Web, 1, 1, "127.0.0.12"),
                server(13, "web-3", Role::Web, 2, 0, "127.0.0.13"),
                server(22, "ns2", Role::Dns, 3, 1, "127.0.0.22"),
                server(21, "ns1", Role::Dns, 3, 0, "127.0.0.21"),
                server(31, "mx1", Role::Mail, 4, 0, "127.0.0.31"),
                server(32, "mx2", Role::Mail, 4, 1, "127.0.0.32"),
                server(41, "files-1", Role::Files, 5, 0, "127.0.0.41"),
                server(51, "db-1", Role::Db, 6, 0, "127.0.0.51"),
            ],
            domains: vec![
                domain(100, "b.example", &web),
                domain(101, "a.example", &web),
                domain(102, "us.example", &[(Role::Web, 2)]),
            ],
            sites: vec![
                site(200, 100, PlacementMode::Single, Some(12)),
                site(201, 101, PlacementMode::All, None),
                site(202, 102, PlacementMode::Single, Some(13)),
            ],
            mailboxes: vec![stored(
                300,
                "info@a.example",
                Some(101),
                Mailbox {
                    domain: 101,
                    local_part: LocalPart::new("info").unwrap(),
                    password_hash: "$argon2id$x".into(),
                    quota_mb: 0,
                    display_name: String::new(),
                    enabled: true,
                },
            )],
            aliases: vec![stored(
                301,
                "sales@a.example",
                Some(101),
                MailAlias {
                    domain: 101,
                    local_part: LocalPart::new("sales").unwrap(),
                    destinations: vec![EmailAddress::new("info@a.example").unwrap()],
                },
            )],
            ftp_accounts: vec![stored(
                400,
                "a-ftp",
                Some(101),
                FtpAccount {
                    domain: 101,
                    username: FtpUsername::new("a-ftp").unwrap(),
                    password_hash: "$argon2id$y".into(),
                    home: RelPath::root(),
                    quota_mb: 100,
                },
            )],
            databases: vec![stored(
                500,
                "shop",
                None,
                Database {
                    customer: 1,
                    name: DbIdent::new("shop").unwrap(),
                    engine: DbEngine::Mariadb,
                    cluster: 6,
                    domain: None,
                    restore_from: None,
                },
            )],
            db_users: vec![stored(
                501,
                "shopuser",
                None,
                DbUser {
                    customer: 1,
                    name: DbIdent::new("shopuser").unwrap(),
                    engine: DbEngine::Mariadb,
                    cluster: 6,
                    password_verifier: "*ABC".into(),
                    databases: vec![500, 999],
                },
            )],
            dns_records: vec![],
            secrets: vec![
                secret(600, SecretPurpose::SiteCert, "a.example", "CERT-A", "KEY-A"),
                secret(601, SecretPurpose::ServerCert, "mx1", "CERT-MX1", "KEY-MX1"),
                secret(
                    602,
                    SecretPurpose::ServerCert,
                    "files-1",
                    "CERT-F1",
                    "KEY-F1",
                ),
                secret(603, SecretPurpose::Dkim, "a.example", "PUBA", "DKIM-KEY-A"),
                secret(
                    605,
                    SecretPurpose::DkimRsa,
                    "a.example",
                    "RSAPUBA",
                    "DKIM-RSA-KEY-A",
                ),
                secret(
                    604,
                    SecretPurpose::Tsig,
                    "dns",
                    "xfr.dns.hostplane.",
                    "c2VjcmV0",
                ),
            ],
            account_names: HashMap::from([(1, "acme".to_owned())]),
            service_ports: HashMap::from([(21, 10053), (31, 10025)]),
            mail_flush: 0,
            db_trash_days: 7,
            db_quotas: HashMap::from([(1, 500)]),
            accounts: Vec::new(),
            plans: Vec::new(),
            account_limits: HashMap::new(),
            default_plan: model::limits::Limits::default(),
            health: HashMap::new(),
        }
    }

    fn secret(
        id: Id,
        purpose: SecretPurpose,
        subject: &str,
        public: &str,
        private: &str,
    ) -> Stored<Secret> {
        stored(
            id,
            &purpose.store_name(subject),
            None,
            Secret {
                purpose,
                subject: subject.into(),
                public: public.into(),
                private: private.into(),
                algorithm: match purpose {
                    SecretPurpose::Dkim => "ed25519-sha256".into(),
                    SecretPurpose::DkimRsa => "rsa-sha256".into(),
                    SecretPurpose::Tsig => "hmac-sha256".into(),
                    _ => "ecdsa-p256".into(),
                },
                not_after: None,
                uploaded: false,
                names: vec![subject.into()],
            },
        )
    }

    const TODAY: u32 = 20_261_125;

    fn build(world: &World) -> BTreeMap<Id, Built> {
        build_all(world, &mut ZoneSerials::default(), TODAY)
    }

    fn documents(world: &World) -> BTreeMap<String, DesiredConfig> {
        build(world)
            .into_values()
            .map(|b| {
                (
                    b.server.name.clone(),
                    DesiredConfig {
                        format: CONFIG_FORMAT,
                        revision: 1,
                        server: b.server,
                        role: b.role,
                    },
                )
            })
            .collect()
    }

    #[test]
    fn one_rsa_dkim_key_per_owning_account() {
        let mut w = world();
        for d in &mut w.domains {
            d.meta.owner = Some(1);
        }
        let mail = w
            .domains
            .iter()
            .filter(|d| d.data.placements.contains_key(&Role::Mail))
            .count();
        assert!(mail >= 2, "the fixture has {mail} mail domains");
        let wanted = crate::keys::wanted(&w);
        let rsa: Vec<&str> = wanted
            .iter()
            .filter(|x| x.purpose == SecretPurpose::DkimRsa)
            .map(|x| x.subject.as_str())
            .collect();
        assert_eq!(rsa, ["account-1"]);
        let ed25519 = wanted
            .iter()
            .filter(|x| x.purpose == SecretPurpose::Dkim)
            .count();
        assert_eq!(ed25519, mail);
    }

    #[test]
    fn mail_limits_follow_the_owners_plan_and_overrides() {
        use model::entity::{Account, Plan};
        use model::limits::{LimitOverrides, Limits};
        use model::AccountKind;
        let mut w = world();
        let domain = w.domains[0].clone();
        // No account record: the default plan's values.
        w.set_limits(Limits::default());
        let l = mail_limits_for(&w, &domain).expect("limits");
        assert_eq!(l.messages_per_hour_per_mailbox, Some(1_000));
        assert_eq!(l.recipients_per_message, Some(100));
        // A plan with 50/h, and an override of the recipients.
        w.plans = vec![stored(
            900,
            "small",
            None,
            Plan {
                name: model::Slug::new("small").expect("slug"),
                description: String::new(),
                limits: Limits {
                    mail_messages_per_hour: 50,
                    ..Limits::default()
                },
            },
        )];
        w.accounts = vec![stored(
            domain.data.customer,
            "acme",
            None,
            Account {
                name: model::Slug::new("acme").expect("slug"),
                kind: AccountKind::Customer,
                display_name: String::new(),
                email: None,
                reseller: None,
                default_clusters: BTreeMap::new(),
                password_hash: None,
                disabled: false,
                db_quota_mb: None,
                plan: Some(900),
                limits: LimitOverrides {
                    mail_recipients_per_message: Some(7),
                    ..LimitOverrides::default()
                },
                may_choose_clusters: false,
            },
        )];
        w.set_limits(Limits::default());
        let l = mail_limits_for(&w, &domain).expect("limits");
        assert_eq!(l.messages_per_hour_per_mailbox, Some(50));
        assert_eq!(l.messages_per_hour_per_domain, Some(50));
        assert_eq!(l.recipients_per_message, Some(7));
    }

    #[test]
    fn every_role_snapshot() {
        insta::assert_json_snapshot!(documents(&world()));
    }

    #[test]
    fn per_server_parts() {
        let docs = documents(&world());
        let web = |name: &str| match &docs[name].role {
            RoleConfig::Web(w) => w.clone(),
            other => panic!("{other:?}"),
        };
        let (w1, w2, w3) = (web("web-1"), web("web-2"), web("web-3"));
        let names = |w: &WebConfig| w.sites.iter().map(|s| s.domain.clone()).collect::<Vec<_>>();
        assert_eq!(names(&w1), vec!["a.example", "b.example"]);
        assert_eq!(names(&w3), vec!["us.example"]);
        // `all` is active everywhere; `single` only on its server.
        assert!(w1.sites[0].active && w2.sites[0].active);
        assert!(!w1.sites[1].active && w2.sites[1].active);
        assert!(w3.sites[0].active);
        // The DNS primary is the lowest rank, whatever the listing order.
        let zone = |name: &str| match &docs[name].role {
            RoleConfig::Dns(d) => d.zones.clone(),
            other => panic!("{other:?}"),
        };
        assert!(zone("ns1").iter().all(|z| z.primary));
        assert!(zone("ns2").iter().all(|z| !z.primary));
        assert_eq!(zone("ns2")[0].primary_addresses, vec!["127.0.0.21"]);
        assert_eq!(zone("ns1")[0].secondaries, vec!["127.0.0.22"]);
        // A user's grant on a missing database is dropped.
        match &docs["db-1"].role {
            RoleConfig::Db(d) => assert_eq!(d.users[0].databases, vec!["shop"]),
            other => panic!("{other:?}"),
        }
    }

    fn changed(before: &BTreeMap<Id, Built>, after: &BTreeMap<Id, Built>) -> Vec<Id> {
        before
            .iter()
            .filter(|(id, b)| after[id].content_hash() != b.content_hash())
            .map(|(id, _)| *id)
            .collect()
    }

    fn zones_of(built: &BTreeMap<Id, Built>, server: Id) -> Vec<ZoneAssignment> {
        match &built[&server].role {
            RoleConfig::Dns(d) => d.zones.clone(),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn hashes_change_only_for_affected_servers() {
        let mut serials = ZoneSerials::default();
        let before = build_all(&world(), &mut serials, TODAY);
        // Nothing changed: nothing changes, serials included.
        assert!(changed(&before, &build_all(&world(), &mut serials, TODAY)).is_empty());
        let mut w = world();
        // A site of web-us changes: only web-3 sees it (us.example has no DNS).
        w.sites[2].data.php = false;
        let after = build_all(&w, &mut serials, TODAY);
        assert_eq!(changed(&before, &after), vec![13]);
        // A failover of a single site changes both web-eu servers' parts and the
        // zone, so the DNS servers' configs.
        let mut w = world();
        w.sites[0].data.active_server = Some(11);
        let after = build_all(&w, &mut serials, TODAY);
        assert_eq!(changed(&before, &after), vec![11, 12, 21, 22]);
    }

    #[test]
    fn dns_servers_carry_the_zones() {
        let mut serials = ZoneSerials::default();
        let built = build_all(&world(), &mut serials, TODAY);
        let (ns1, ns2) = (zones_of(&built, 21), zones_of(&built, 22));
        // Two domains and the cluster's catalog zone, listing them.
        assert_eq!(ns1.len(), 3);
        let catalog = ns1[2].zone.as_ref().unwrap();
        assert_eq!(ns1[2].domain, "catalog.dns.hostplane.invalid");
        assert!(ns1[2].primary && !ns2[2].primary);
        assert!(ns1[2].tsig.is_some());
        let ptrs: Vec<&str> = catalog
            .records
            .iter()
            .filter(|r| r.rtype == "PTR")
            .map(|r| r.data.as_str())
            .collect();
        assert_eq!(ptrs, ["a.example.", "b.example."]);
        for (a, b) in ns1.iter().zip(&ns2) {
            let (za, zb) = (a.zone.as_ref().unwrap(), b.zone.as_ref().unwrap());
            // Primary and secondary get the same content.
            assert_eq!(za, zb);
            assert_eq!(za.origin, a.domain);
            assert_eq!(za.serial, 2_026_112_500);
        }
        // b.example is `single` on web-2; a.example is `all` on web-1 and web-2.
        let addresses = |z: &ZoneAssignment, name: &str| -> Vec<String> {
            let zone = z.zone.as_ref().unwrap();
            zone.records
                .iter()
                .filter(|r| r.name == name && r.rtype == "A")
                .map(|r| r.data.clone())
                .collect()
        };
        assert_eq!(
            addresses(&ns1[0], "a.example"),
            ["127.0.0.11", "127.0.0.12"]
        );
        assert_eq!(addresses(&ns1[1], "b.example"), ["127.0.0.12"]);
        // A customer record lands in its zone.
        let mut w = world();
        w.dns_records.push(stored(
            600,
            "",
            Some(101),
            DnsRecord {
                domain: 101,
                name: model::dns::RecordName::new("_dmarc").unwrap(),
                ttl: None,
                data: model::dns::RecordData::Txt {
                    text: "v=DMARC1; p=quarantine".into(),
                },
            },
        ));
        let after = build_all(&w, &mut serials, TODAY);
        let z = zones_of(&after, 21)[0].zone.clone().unwrap();
        assert!(z.records.iter().any(|r| r.name == "_dmarc.a.example"));
        assert_eq!(z.serial, 2_026_112_501);
        // b.example did not change: same serial.
        assert_eq!(
            zones_of(&after, 21)[1].zone.as_ref().unwrap().serial,
            2_026_112_500
        );
    }

    #[test]
    fn the_catalog_follows_the_zones_and_carries_a_rotated_key() {
        let mut serials = ZoneSerials::default();
        let catalog = |b: &BTreeMap<Id, Built>| zones_of(b, 21).last().cloned().unwrap();
        let before = build_all(&world(), &mut serials, TODAY);
        let first = catalog(&before).zone.unwrap();
        // A new DNS zone: the catalog lists it under a new serial.
        let mut w = world();
        w.domains.push(domain(103, "c.example", &[(Role::Dns, 3)]));
        // A name in the reserved catalog namespace is never served.
        w.domains
            .push(domain(104, "x.hostplane.invalid", &[(Role::Dns, 3)]));
        let after = build_all(&w, &mut serials, TODAY);
        let added = catalog(&after).zone.unwrap();
        assert_eq!(added.serial, first.serial + 1);
        assert!(added.records.iter().any(|r| r.data == "c.example."));
        assert!(!added
            .records
            .iter()
            .any(|r| r.data.contains("invalid.") && r.rtype == "PTR"));
        assert!(zones_of(&after, 21)
            .iter()
            .all(|z| z.domain != "x.hostplane.invalid"));
        // Removed again: a newer serial, without it.
        let back = build_all(&world(), &mut serials, TODAY);
        let removed = catalog(&back).zone.unwrap();
        assert_eq!(removed.serial, first.serial + 2);
        assert!(!removed.records.iter().any(|r| r.data == "c.example."));
        // A rotation's previous secret travels with the key of every zone.
        let mut w = world();
        let mut old = secret(
            605,
            SecretPurpose::TsigPrevious,
            "dns",
            "xfr.dns.hostplane.",
            "b2xk",
        );
        old.data.not_after = Some(1_900_000_000);
        w.secrets.push(old);
        let rotated = build_all(&w, &mut serials, TODAY);
        for z in zones_of(&rotated, 22) {
            let prev = z.tsig.unwrap().previous.unwrap();
            assert_eq!(
                (prev.secret.as_str(), prev.not_after),
                ("b2xk", 1_900_000_000)
            );
        }
        // Without a TSIG key there is no catalog (never transferable unsigned).
        let mut w = world();
        w.secrets.retain(|s| s.data.purpose != SecretPurpose::Tsig);
        let unkeyed = build_all(&w, &mut serials, TODAY);
        assert!(zones_of(&unkeyed, 21)
            .iter()
            .all(|z| !z.domain.starts_with("catalog.")));
    }

    #[test]
    fn web_health_reaches_only_the_dns_servers() {
        let mut serials = ZoneSerials::default();
        let mut w = world();
        w.health = w.servers.iter().map(|s| (s.meta.id, Health::Up)).collect();
        let before = build_all(&w, &mut serials, TODAY);
        // web-1 goes down: a.example (`all` on web-1, web-2) loses its address.
        w.health.insert(11, Health::Down);
        let after = build_all(&w, &mut serials, TODAY);
        assert_eq!(changed(&before, &after), vec![21, 22]);
        let zone = zones_of(&after, 22)[0].zone.clone().unwrap();
        assert_eq!(zone.origin, "a.example");
        assert_eq!(zone.serial, 2_026_112_501);
        let apex: Vec<&str> = zone
            .records
            .iter()
            .filter(|r| r.name == "a.example" && r.rtype == "A")
            .map(|r| r.data.as_str())
            .collect();
        assert_eq!(apex, ["127.0.0.12"]);
        // The health of a server no zone names changes nothing.
        w.health.insert(51, Health::Down);
        assert!(changed(&after, &build_all(&w, &mut serials, TODAY)).is_empty());
        // Back up: the address returns with yet another serial.
        w.health.insert(11, Health::Up);
        let back = build_all(&w, &mut serials, TODAY);
        assert_eq!(changed(&after, &back), vec![21, 22]);
        assert_eq!(
            zones_of(&back, 21)[0].zone.as_ref().unwrap().serial,
            2_026_112_502
        );
        // The next day a change takes the date serial.
        w.health.insert(12, Health::Down);
        let next_day = build_all(&w, &mut serials, TODAY + 1);
        assert_eq!(
            zones_of(&next_day, 21)[0].zone.as_ref().unwrap().serial,
            2_026_112_600
        );
    }
}
