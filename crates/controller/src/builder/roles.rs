//! Each role's part of a server's desired config: web sites, DNS zones, mail
//! domains, files and database servers' workloads.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use model::entity::{Domain, SecretPurpose, Server, Site};
use model::{Id, PlacementMode, Role};
use proto::agent_v1::{
    DbConfig, DbRoleConfig, DbUserConfig, DkimKey, DnsConfig, FileRestore, FilesConfig,
    FilesSiteOptions, FtpAccountConfig, MailAccount, MailConfig, MailDomain, MailLimits, MailPeer,
    PreviousTsigSecret, RoleConfig, ServerIdentity, SiteLogin, SiteMail, TsigKey, WebConfig,
    WebPeer, WebSite, ZoneAssignment, ZoneContent, SESSION_PORT,
};
use proto::agent_v1::{MailWriter, WebCron, WebCronJob, MAIL_REPL_PORT};
use store::Stored;

use super::affected::Dirty;
use super::index::{addrs, primary_of, Index};
use super::web_cache::SiteEntry;
use super::world::World;
use super::Built;

impl<'a> Index<'a> {
    fn web(&self, server: &Stored<Server>) -> WebConfig {
        // Each server's list points at its cluster's kept entries (shared, not
        // copied), the `active` variant of the `single` sites it serves.
        self.ensure_web_sites(server.data.cluster);
        let cache = self.web_cache.borrow();
        let sites: Vec<Arc<WebSite>> = cache
            .get(server.data.cluster)
            .map(|l| l.values())
            .into_iter()
            .flatten()
            .map(|e| Arc::clone(e.for_server(server.meta.id)))
            .collect();
        drop(cache);
        // PHP sessions are replicated to the cluster's other web servers, on
        // their first address (`role-web`'s `sessions`).
        let peers = self
            .members
            .get(&server.data.cluster)
            .map(Vec::as_slice)
            .unwrap_or_default()
            .iter()
            .filter(|s| s.meta.id != server.meta.id)
            .filter_map(|s| {
                let ip = s.data.addresses.first()?;
                Some(WebPeer {
                    name: s.meta.name.to_string(),
                    address: std::net::SocketAddr::new(*ip, SESSION_PORT).to_string(),
                })
            })
            .collect();
        // Each site names its own origin (`WebSite::files_origin`).
        WebConfig {
            sites,
            files_origin: None,
            peers,
            acme_challenges: self.acme_challenges(server.data.cluster),
        }
    }

    /// Make sure web cluster `cluster`'s site list is kept ([`super::web_cache`]):
    /// when it is not (first build, or dropped as a whole), it is made by a scan
    /// of the world.
    fn ensure_web_sites(&self, cluster: Id) {
        if self.web_cache.borrow().has(cluster) {
            return;
        }
        let placed: HashMap<Id, &Stored<Domain>> = self
            .domains_on(Role::Web, cluster)
            .into_iter()
            .map(|d| (d.meta.id, d))
            .collect();
        let entries = self
            .world
            .sites
            .iter()
            .filter_map(|s| {
                let domain = placed.get(&s.data.domain)?;
                Some((domain.meta.id, s.meta.id, self.web_entry(s, domain)))
            })
            .collect();
        self.web_cache.borrow_mut().set(cluster, entries);
    }

    /// Whether the site's certificate is one browsers trust, so HSTS may be sent:
    /// uploaded by the customer or issued by ACME. Never the internal CA's:
    /// HSTS with it would lock visitors out of the site.
    fn trusted_cert(&self, domain: &str) -> bool {
        self.world
            .secret(SecretPurpose::SiteCert, domain)
            .is_some_and(|s| s.data.uploaded || crate::acme::is_acme_cert(&s.data))
    }

    /// The pending ACME HTTP-01 challenges of the sites placed on web cluster
    /// `cluster` (issue 17), sorted by token so the config is stable.
    fn acme_challenges(&self, cluster: Id) -> Vec<proto::agent_v1::AcmeChallenge> {
        let mut out: Vec<proto::agent_v1::AcmeChallenge> = self
            .world
            .acme_challenges()
            .filter(|s| {
                self.world
                    .domain_named(&s.data.subject)
                    .and_then(|d| d.data.placements.get(&Role::Web))
                    == Some(&cluster)
            })
            .flat_map(|s| crate::acme::challenges_of(&s.data))
            .collect();
        out.sort_by(|a, b| a.token.cmp(&b.token));
        out
    }

    /// One site's entry as its web servers carry it.
    fn web_entry(&self, s: &Stored<Site>, domain: &Stored<Domain>) -> SiteEntry {
        let single = match s.data.mode {
            PlacementMode::All => None,
            PlacementMode::Single => Some(s.data.active_server),
        };
        let mut aliases: Vec<String> = s.data.aliases.iter().map(ToString::to_string).collect();
        aliases.sort();
        let name = domain.meta.name.as_str();
        let site = WebSite {
            domain: name.to_owned(),
            aliases,
            php: s.data.php,
            mode: s.data.mode,
            active: single.is_none(),
            https_redirect: s.data.https_redirect,
            tls: self.tls(SecretPurpose::SiteCert, name),
            files_origin: self.files_origin(domain),
            local_paths: s.data.files.local.iter().map(ToString::to_string).collect(),
            quota_mb: site_quota_mb(self.world, domain),
            docroot: s.data.web.docroot.as_ref().map(ToString::to_string),
            hsts: s.data.web.hsts && self.trusted_cert(name),
            php_version: s.data.web.php.version.as_ref().map(ToString::to_string),
            php_ini: s.data.web.php.ini.clone(),
            mail: self.site_mail(domain),
            cron: self.web_cron(s, domain),
        };
        SiteEntry::new(site, single)
    }

    /// Where a site's PHP mail goes: the submission endpoints of its domain's
    /// mail cluster, its writer first (then by rank), and the site's secret; `None`
    /// while the domain has no mail placement (or the secret is not made yet).
    fn site_mail(&self, domain: &Stored<Domain>) -> Option<SiteMail> {
        let cluster = domain.data.placements.get(&Role::Mail)?;
        let secret = self
            .world
            .secret(SecretPurpose::SiteMail, domain.meta.name.as_str())?;
        let mut members: Vec<&Stored<Server>> = self.members.get(cluster)?.clone();
        // The cluster's writer first (it takes submissions without a relay hop),
        // then by rank; its host name is the one mail clients are configured with.
        let writer = self.mail_writer_of(*cluster);
        members.sort_by_key(|s| (Some(s.meta.id) != writer, s.data.rank, s.meta.id));
        let submission = members
            .iter()
            .flat_map(|s| self.endpoints(s))
            .filter_map(|e| e.parse::<std::net::SocketAddr>().ok())
            .map(|mut a| {
                a.set_port(submission_port(a.port()));
                a.to_string()
            })
            .collect();
        Some(SiteMail {
            submission,
            secret: secret.data.private.clone(),
            client_host: members.first().map(|s| s.data.hostname.to_string()),
            client_names: self
                .world
                .clusters
                .get(*cluster)
                .and_then(|c| c.data.mail_client_names())
                .map(|n| proto::agent_v1::ClientNames {
                    imap: n.imap,
                    pop3: n.pop3,
                    smtp: n.smtp,
                }),
        })
    }

    /// A site's cron jobs and their runner (None without jobs): the holder by
    /// name, each run bounded by the owner's `php_execution_s`.
    fn web_cron(&self, s: &Stored<Site>, domain: &Stored<Domain>) -> Option<WebCron> {
        if s.data.cron.is_empty() {
            return None;
        }
        let holder = s.data.cron_holder.unwrap_or_default();
        let limits = self
            .world
            .account_limits
            .get(&domain.data.customer)
            .unwrap_or(&self.world.default_plan);
        Some(WebCron {
            holder: holder
                .server
                .and_then(|id| self.world.servers.get(id))
                .map(|srv| srv.meta.name.clone()),
            not_before: holder.not_before,
            timeout_s: limits.php_execution_s,
            jobs: s
                .data
                .cron
                .iter()
                .map(|j| WebCronJob {
                    id: j.id,
                    schedule: j.schedule.clone(),
                    command: j.command.clone(),
                })
                .collect(),
        })
    }

    /// Bring the kept site lists up to the world: drop what `dirty` invalidates
    /// as a whole, remake the entries of the sites it names (a domain moving
    /// between clusters leaves one list and joins the other).
    pub(super) fn patch_web_sites(&self, dirty: &Dirty) {
        let mut cache = self.web_cache.borrow_mut();
        cache.invalidate(dirty);
        if dirty.everything {
            return;
        }
        for &d in &dirty.web_sites {
            cache.remove_domain(d);
            let Some(domain) = self.world.domains.get(d) else {
                continue;
            };
            let Some(&cluster) = domain.data.placements.get(&Role::Web) else {
                continue;
            };
            if !cache.has(cluster) {
                continue;
            }
            if let Some(s) = self.world.site_of(d) {
                cache.put(cluster, d, s.meta.id, self.web_entry(s, domain));
            }
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
        let assignment = |domain: &str, zone: Option<std::sync::Arc<ZoneContent>>| ZoneAssignment {
            domain: domain.to_owned(),
            primary: is_primary,
            primary_addresses: primary_addresses.clone(),
            secondaries: secondaries.clone(),
            zone,
            primary_endpoints: primary_endpoints.clone(),
            notify: notify.clone(),
            tsig: tsig.clone(),
        };
        let mut zones: Vec<ZoneAssignment> = self
            .domains_on(Role::Dns, server.data.cluster)
            .into_iter()
            .filter(|d| self.zones.contains_key(&d.meta.id))
            .map(|d| assignment(&d.meta.name, self.zones.get(&d.meta.id).cloned()))
            .collect();
        // The catalog, only with a key: it is never transferred unsigned.
        if let (Some(catalog), Some(_)) = (self.catalogs.get(&server.data.cluster), &tsig) {
            zones.push(assignment(
                &catalog.origin,
                Some(std::sync::Arc::new(catalog.clone())),
            ));
        }
        DnsConfig { zones }
    }

    fn mail(&self, server: &Stored<Server>) -> MailConfig {
        let members = self
            .members
            .get(&server.data.cluster)
            .map(Vec::as_slice)
            .unwrap_or_default();
        // The writer of the cluster's mailboxes (`placement::mail`) stores mail;
        // before the first placement pass (no writer decided), the primary does and
        // nothing is replicated, as before issue 16.
        let state = self
            .world
            .clusters
            .get(server.data.cluster)
            .and_then(|c| c.data.mail_writer);
        let writer_server = match state {
            Some(w) => w
                .holder
                .and_then(|h| members.iter().find(|s| s.meta.id == h).copied()),
            None => primary_of(members),
        };
        let is_primary = writer_server.map(|p| p.meta.id) == Some(server.meta.id);
        let primary_smtp = if is_primary {
            None
        } else {
            writer_server.and_then(|p| self.endpoints(p).into_iter().next())
        };
        // Replicas serve IMAP/POP3 reads, and everything after a failover: every
        // server of a replicated cluster gets the logins.
        let logins_here = is_primary || state.is_some();
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
                    accounts: if logins_here {
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
                    site_login: self
                        .world
                        .secret(SecretPurpose::SiteMail, d.meta.name.as_str())
                        .map(|k| SiteLogin {
                            password_hash: k.data.public.clone(),
                        }),
                }
            })
            .collect();
        let peers = members
            .iter()
            .filter(|s| s.meta.id != server.meta.id)
            .map(|s| MailPeer {
                addresses: s.data.addresses.iter().map(ToString::to_string).collect(),
                names: vec![s.meta.name.to_string(), s.data.hostname.to_string()],
                server: s.meta.name.to_string(),
                replication: state.and_then(|_| {
                    let ip = s.data.addresses.first()?;
                    Some(std::net::SocketAddr::new(*ip, MAIL_REPL_PORT).to_string())
                }),
            })
            .collect();
        MailConfig {
            domains,
            flush: self.world.mail_flush,
            tls: self.tls(SecretPurpose::ServerCert, server.meta.name.as_str()),
            peers,
            writer: state.map(|w| MailWriter {
                holder: writer_server.map(|s| s.meta.name.to_string()),
                epoch: w.epoch,
                not_before: w.not_before,
            }),
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
        let mut site_options = Vec::new();
        let mut restores = Vec::new();
        for d in &placed {
            let Some(site) = site_of.get(&d.meta.id) else {
                continue;
            };
            let files = &site.files;
            let paths =
                |l: &[model::sitefiles::SitePath]| l.iter().map(ToString::to_string).collect();
            // Every site held is listed: its mode alone decides the SQLite check.
            site_options.push(FilesSiteOptions {
                domain: d.meta.name.clone(),
                keep_paths: paths(&files.keep),
                local_paths: paths(&files.local),
                mode: site.mode,
                quota_mb: site_quota_mb(self.world, d),
            });
            restores.extend(files.pending().map(|r| FileRestore {
                id: r.id.clone(),
                domain: d.meta.name.clone(),
                path: r.path.to_string(),
                at: r.at,
            }));
        }
        site_options.sort_by(|a, b| a.domain.cmp(&b.domain));
        restores.sort_by(|a, b| a.id.cmp(&b.id));
        FilesConfig {
            sites: placed.iter().map(|d| d.meta.name.clone()).collect(),
            deployments,
            ftp_accounts,
            tls: self.tls(SecretPurpose::ServerCert, server.meta.name.as_str()),
            sync_clients: pullers
                .into_iter()
                .map(|(s, d)| (s.to_owned(), d))
                .collect(),
            site_options,
            restores,
            versions_days: Some(self.world.site_versions_days),
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

    pub(super) fn build(&self, server: &Stored<Server>) -> Built {
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
pub(super) fn mail_limits_for(world: &World, domain: &Stored<Domain>) -> Option<MailLimits> {
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

/// A mail server's submission port from its SMTP service port: 587 beside 25,
/// 10587 beside 10025 (an engine that may not bind privileged ports binds each at
/// standard + 10000, `role_mail::Listeners::bind_standard`).
pub(super) fn submission_port(smtp: u16) -> u16 {
    if smtp >= 10000 {
        10587
    } else {
        587
    }
}

/// A site's disk limit in MiB (0: none) as its web and files servers get it: from
/// the owning account's limits in force ([`model::limits::site_quota_mb`]).
pub(super) fn site_quota_mb(world: &World, domain: &Stored<Domain>) -> u64 {
    model::limits::site_quota_mb(
        world
            .account_limits
            .get(&domain.data.customer)
            .unwrap_or(&world.default_plan),
    )
}
