//! The key task's own view of the store ([`KeyState`]): only the facts that decide
//! which secrets should exist (domain names, owners and mail placement, site
//! aliases, files and mail servers, DNS clusters) and the stored secrets' identity,
//! names and expiry — never their PEM material, never mailboxes or the rest of the
//! world. It is kept current from the store's change feed like the builder's
//! [`World`](crate::builder::World), but is a small fraction of it, so the
//! controller no longer holds a second copy of the platform.
//!
//! Planning is incremental: applying the feed marks the secrets (by purpose and
//! subject) whose wanted or stored version may have changed, and [`KeyState::plan`]
//! compares only those, so a pass costs O(changes), not O(platform).
//! [`KeyState::mark_all`] marks everything (the first pass, the hourly renewal
//! check). The property test in `proptests.rs` checks that this plan equals the
//! full [`super::plan`] of [`super::wanted`] after random sequences of changes.

use std::collections::{BTreeSet, HashMap, HashSet};

use model::entity::{Cluster, Domain, Kind, Object, Secret, SecretPurpose, Server, Site};
use model::{Id, Role};
use store::{Feed, RawObject, StoreError, Stored};

use super::{Plan, Wanted};

/// A secret's identity: what it is for and whom.
pub type Key = (SecretPurpose, String);

/// What the key task knows of a domain.
#[derive(Debug, Clone, PartialEq, Eq)]
struct DomainFacts {
    name: String,
    owner: Option<Id>,
    mail: bool,
}

/// What the key task knows of a site.
#[derive(Debug, Clone, PartialEq, Eq)]
struct SiteFacts {
    domain: Id,
    aliases: Vec<String>,
}

/// What the key task knows of a server (only files and mail servers get a
/// certificate; others are held by name only to un-mark them).
#[derive(Debug, Clone, PartialEq, Eq)]
struct ServerFacts {
    name: String,
    /// Its cluster (a mail cluster's client names join its certificate).
    cluster: Id,
    /// Certificate names for files and mail servers; `None` for other roles.
    names: Option<Vec<String>>,
}

/// What the key task knows of a stored secret: enough to decide, not the material.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Have {
    id: Id,
    names: Vec<String>,
    not_after: Option<i64>,
    uploaded: bool,
    /// Issued by ACME: how long before expiry it falls back to an internal
    /// certificate ([`crate::acme::fallback_lead`]).
    acme: Option<i64>,
}

/// The key task's state: the facts secrets depend on, the stored secrets and the
/// secrets to look at in the next plan.
#[derive(Debug, Default)]
pub struct KeyState {
    domains: HashMap<Id, DomainFacts>,
    /// Domain id by name.
    domain_ids: HashMap<String, Id>,
    sites: HashMap<Id, SiteFacts>,
    /// Site id by domain id (one site per domain: the store names a site after it).
    site_of: HashMap<Id, Id>,
    servers: HashMap<Id, ServerFacts>,
    /// Files and mail server ids by name.
    cert_servers: HashMap<String, Id>,
    /// DNS cluster names by id.
    dns_clusters: HashMap<Id, String>,
    /// Mail clusters' client names (`Cluster::mail_client_names`), by cluster id:
    /// on every certificate of the cluster's servers.
    mail_names: HashMap<Id, Vec<String>>,
    /// DNS cluster ids by name.
    dns_cluster_ids: HashMap<String, Id>,
    /// RSA DKIM subjects: how many mail domains sign with each, and its owner.
    rsa: HashMap<String, (usize, Option<Id>)>,
    /// Stored secrets' keys by id.
    secret_keys: HashMap<Id, Key>,
    /// Stored secrets by key.
    have: HashMap<Key, Have>,
    /// Secrets whose wanted or stored version may differ since the last plan.
    pending: HashSet<Key>,
    /// Stored spare RSA DKIM keys ([`SecretPurpose::DkimRsaSpare`]), by id: never
    /// planned (nobody wants them, nobody deletes them); [`crate::dkim_rsa`] hands
    /// them out and keeps their number up.
    spares: BTreeSet<Id>,
}

impl KeyState {
    /// A state holding the objects of `feed` (read from revision 0), everything
    /// marked.
    pub fn from_feed(feed: &Feed) -> Result<Self, StoreError> {
        let mut s = Self::default();
        s.apply(feed)?;
        s.mark_all();
        Ok(s)
    }

    /// Apply what changed in the store, marking the secrets it may concern. A
    /// document that does not parse is logged and skipped (its old version stays):
    /// one bad object never stops the key task.
    pub fn apply(&mut self, feed: &Feed) -> Result<(), StoreError> {
        for t in &feed.deleted {
            self.remove(t.kind, t.id);
        }
        for raw in &feed.changed {
            if let Err(e) = self.upsert(raw) {
                tracing::warn!(kind = raw.kind.as_str(), id = raw.meta.id, error = %e,
                    "key task: skipping an object that does not parse");
            }
        }
        Ok(())
    }

    /// Mark every secret that is wanted or stored (first pass, renewal check).
    pub fn mark_all(&mut self) {
        let wanted = self.wanted_keys();
        self.pending.extend(wanted);
        self.pending.extend(self.have.keys().cloned());
    }

    /// The stored spare RSA DKIM keys' ids, lowest first.
    pub fn spares(&self) -> Vec<Id> {
        self.spares.iter().copied().collect()
    }

    /// Whether some domain is placed on mail (so RSA DKIM keys are in use).
    pub fn has_mail(&self) -> bool {
        !self.rsa.is_empty()
    }

    /// How many secrets are marked.
    pub fn pending(&self) -> usize {
        self.pending.len()
    }

    /// Compare the marked secrets' wanted and stored versions at `now`.
    pub fn plan(&self, now: i64) -> Plan {
        let mut plan = Plan::default();
        let mut keys: Vec<&Key> = self.pending.iter().collect();
        keys.sort_unstable();
        for key in keys {
            let wanted = self.wanted(key);
            match (wanted, self.have.get(key)) {
                (None, None) => {}
                (Some(w), None) => plan.create.push(w),
                (Some(w), Some(h)) => {
                    if stale(&w, h, now) {
                        plan.reissue.push((h.id, w));
                    }
                }
                (None, Some(h)) => {
                    let kept = key.0 == SecretPurpose::TsigPrevious
                        && self.dns_cluster_ids.contains_key(&key.1)
                        && h.not_after.is_some_and(|t| t > now);
                    if !kept {
                        plan.delete.push(h.id);
                    }
                }
            }
        }
        plan
    }

    /// Forget the marks [`KeyState::plan`] looked at, except RSA DKIM keys still
    /// missing (made in the background; asked for again until stored). What the
    /// plan writes comes back through the feed and is marked again then; what it
    /// could not make (a name the CA refuses) waits for a change or the renewal
    /// check.
    pub fn settle(&mut self) {
        let rsa_missing: Vec<Key> = self
            .pending
            .iter()
            .filter(|k| {
                k.0 == SecretPurpose::DkimRsa
                    && !self.have.contains_key(*k)
                    && self.rsa.contains_key(&k.1)
            })
            .cloned()
            .collect();
        self.pending.clear();
        self.pending.extend(rsa_missing);
    }

    /// Mark the secrets of `plan` again (its write failed).
    pub fn unsettle(&mut self, plan: &Plan) {
        for w in plan
            .create
            .iter()
            .chain(plan.reissue.iter().map(|(_, w)| w))
        {
            self.pending.insert((w.purpose, w.subject.clone()));
        }
        for id in &plan.delete {
            if let Some(k) = self.secret_keys.get(id) {
                self.pending.insert(k.clone());
            }
        }
    }

    /// The secret `key` names as it should be, if it should exist.
    fn wanted(&self, key: &Key) -> Option<Wanted> {
        let (purpose, subject) = key;
        let want = |names: Vec<String>, owner: Option<Id>| Wanted {
            purpose: *purpose,
            subject: subject.clone(),
            names,
            owner,
        };
        match purpose {
            SecretPurpose::SiteCert => {
                let id = self.domain_ids.get(subject)?;
                let d = self.domains.get(id)?;
                let site = self.sites.get(self.site_of.get(id)?)?;
                let mut names = vec![d.name.clone()];
                for a in &site.aliases {
                    if !names.contains(a) {
                        names.push(a.clone());
                    }
                }
                Some(want(names, d.owner))
            }
            SecretPurpose::ServerCert => {
                let s = self.servers.get(self.cert_servers.get(subject)?)?;
                let mut names = s.names.clone()?;
                if let Some(client) = self.mail_names.get(&s.cluster) {
                    super::push_new(&mut names, client.iter().map(String::as_str));
                }
                Some(want(names, None))
            }
            SecretPurpose::Dkim => {
                let d = self.domains.get(self.domain_ids.get(subject)?)?;
                d.mail.then(|| want(Vec::new(), d.owner))
            }
            SecretPurpose::DkimRsa => {
                let (_, owner) = self.rsa.get(subject)?;
                Some(want(Vec::new(), *owner))
            }
            SecretPurpose::Tsig => self
                .dns_cluster_ids
                .contains_key(subject)
                .then(|| want(Vec::new(), None)),
            SecretPurpose::SiteMail => {
                let id = self.domain_ids.get(subject)?;
                let d = self.domains.get(id)?;
                (d.mail && self.site_of.contains_key(id)).then(|| want(Vec::new(), d.owner))
            }
            SecretPurpose::TsigPrevious | SecretPurpose::DkimRsaSpare => None,
            SecretPurpose::AcmeAccount
            | SecretPurpose::AcmeSite
            | SecretPurpose::AcmeChallenge
            | SecretPurpose::AcmeLease => None,
            SecretPurpose::Totp => None,
        }
    }

    /// Every key that should exist.
    fn wanted_keys(&self) -> Vec<Key> {
        let mut out = Vec::new();
        for (id, d) in &self.domains {
            if self.site_of.contains_key(id) {
                out.push((SecretPurpose::SiteCert, d.name.clone()));
                if d.mail {
                    out.push((SecretPurpose::SiteMail, d.name.clone()));
                }
            }
            if d.mail {
                out.push((SecretPurpose::Dkim, d.name.clone()));
            }
        }
        out.extend(self.rsa.keys().map(|s| (SecretPurpose::DkimRsa, s.clone())));
        out.extend(
            self.cert_servers
                .keys()
                .map(|n| (SecretPurpose::ServerCert, n.clone())),
        );
        out.extend(
            self.dns_cluster_ids
                .keys()
                .map(|n| (SecretPurpose::Tsig, n.clone())),
        );
        out
    }

    /// Mark the secrets that depend on domain `d`.
    fn mark_domain(&mut self, d: &DomainFacts) {
        self.pending
            .insert((SecretPurpose::SiteCert, d.name.clone()));
        self.pending
            .insert((SecretPurpose::SiteMail, d.name.clone()));
        self.pending.insert((SecretPurpose::Dkim, d.name.clone()));
        self.pending.insert((
            SecretPurpose::DkimRsa,
            crate::dkim_rsa::subject_for(d.owner, &d.name),
        ));
    }

    /// Mark the certificate of the site of domain `domain`.
    fn mark_site(&mut self, domain: Id) {
        if let Some(d) = self.domains.get(&domain) {
            self.pending
                .insert((SecretPurpose::SiteCert, d.name.clone()));
            self.pending
                .insert((SecretPurpose::SiteMail, d.name.clone()));
        }
    }

    fn mark_cluster(&mut self, name: &str) {
        self.pending.insert((SecretPurpose::Tsig, name.to_owned()));
        self.pending
            .insert((SecretPurpose::TsigPrevious, name.to_owned()));
    }

    fn add_rsa(&mut self, d: &DomainFacts, by: isize) {
        if !d.mail {
            return;
        }
        let subject = crate::dkim_rsa::subject_for(d.owner, &d.name);
        let entry = self.rsa.entry(subject.clone()).or_insert((0, d.owner));
        entry.0 = entry.0.saturating_add_signed(by);
        if entry.0 == 0 {
            self.rsa.remove(&subject);
        }
    }

    fn remove_domain(&mut self, id: Id) {
        if let Some(old) = self.domains.remove(&id) {
            if self.domain_ids.get(&old.name) == Some(&id) {
                self.domain_ids.remove(&old.name);
            }
            self.add_rsa(&old, -1);
            self.mark_domain(&old);
        }
    }

    fn remove_site(&mut self, id: Id) {
        if let Some(old) = self.sites.remove(&id) {
            if self.site_of.get(&old.domain) == Some(&id) {
                self.site_of.remove(&old.domain);
            }
            self.mark_site(old.domain);
        }
    }

    fn remove_server(&mut self, id: Id) {
        if let Some(old) = self.servers.remove(&id) {
            if self.cert_servers.get(&old.name) == Some(&id) {
                self.cert_servers.remove(&old.name);
            }
            self.pending.insert((SecretPurpose::ServerCert, old.name));
        }
    }

    /// Mark the certificates of cluster `cluster`'s servers.
    fn mark_cluster_servers(&mut self, cluster: Id) {
        let names: Vec<String> = self
            .servers
            .values()
            .filter(|s| s.cluster == cluster)
            .map(|s| s.name.clone())
            .collect();
        for n in names {
            self.pending.insert((SecretPurpose::ServerCert, n));
        }
    }

    fn remove_cluster(&mut self, id: Id) {
        if self.mail_names.remove(&id).is_some() {
            self.mark_cluster_servers(id);
        }
        if let Some(name) = self.dns_clusters.remove(&id) {
            if self.dns_cluster_ids.get(&name) == Some(&id) {
                self.dns_cluster_ids.remove(&name);
            }
            self.mark_cluster(&name);
        }
    }

    fn remove_secret(&mut self, id: Id) {
        self.spares.remove(&id);
        if let Some(key) = self.secret_keys.remove(&id) {
            if self.have.get(&key).is_some_and(|h| h.id == id) {
                self.have.remove(&key);
            }
            self.pending.insert(key);
        }
    }

    /// Forget an object (a tombstone).
    fn remove(&mut self, kind: Kind, id: Id) {
        match kind {
            Kind::Domain => self.remove_domain(id),
            Kind::Site => self.remove_site(id),
            Kind::Server => self.remove_server(id),
            Kind::Cluster => self.remove_cluster(id),
            Kind::Secret => self.remove_secret(id),
            _ => {}
        }
    }

    /// Take a new or changed object (kinds that decide no secret are skipped
    /// unparsed).
    fn upsert(&mut self, raw: &RawObject) -> Result<(), StoreError> {
        let id = raw.meta.id;
        if raw.kind == Domain::KIND {
            let d: Stored<Domain> = raw.parse()?;
            self.remove_domain(id);
            let facts = DomainFacts {
                name: d.meta.name,
                owner: d.meta.owner,
                mail: d.data.placements.contains_key(&Role::Mail),
            };
            self.add_rsa(&facts, 1);
            self.mark_domain(&facts);
            self.domain_ids.insert(facts.name.clone(), id);
            self.domains.insert(id, facts);
        } else if raw.kind == Site::KIND {
            let s: Stored<Site> = raw.parse()?;
            self.remove_site(id);
            let facts = SiteFacts {
                domain: s.data.domain,
                aliases: s.data.aliases.iter().map(ToString::to_string).collect(),
            };
            self.mark_site(facts.domain);
            self.site_of.insert(facts.domain, id);
            self.sites.insert(id, facts);
        } else if raw.kind == Server::KIND {
            let s: Stored<Server> = raw.parse()?;
            self.remove_server(id);
            let names = matches!(s.data.role, Role::Files | Role::Mail).then(|| {
                let mut names = vec![s.data.hostname.to_string()];
                names.extend(s.data.addresses.iter().map(ToString::to_string));
                names
            });
            if names.is_some() {
                self.cert_servers.insert(s.meta.name.clone(), id);
            }
            self.pending
                .insert((SecretPurpose::ServerCert, s.meta.name.clone()));
            self.servers.insert(
                id,
                ServerFacts {
                    name: s.meta.name,
                    cluster: s.data.cluster,
                    names,
                },
            );
        } else if raw.kind == Cluster::KIND {
            let c: Stored<Cluster> = raw.parse()?;
            let names = c
                .data
                .mail_client_names()
                .map(|n| n.all().map(str::to_owned).to_vec());
            if self.mail_names.get(&id) != names.as_ref() {
                self.mark_cluster_servers(id);
            }
            self.remove_cluster(id);
            if let Some(names) = names {
                self.mail_names.insert(id, names);
            }
            if c.data.role == Role::Dns {
                self.mark_cluster(&c.meta.name);
                self.dns_cluster_ids.insert(c.meta.name.clone(), id);
                self.dns_clusters.insert(id, c.meta.name);
            }
        } else if raw.kind == Secret::KIND {
            let s: Stored<Secret> = raw.parse()?;
            self.remove_secret(id);
            if s.data.purpose == SecretPurpose::DkimRsaSpare {
                self.spares.insert(id);
                return Ok(());
            }
            if super::is_acme_purpose(s.data.purpose) {
                return Ok(());
            }
            let acme = crate::acme::fallback_lead(&s.data);
            let key = (s.data.purpose, s.data.subject);
            self.pending.insert(key.clone());
            self.secret_keys.insert(id, key.clone());
            self.have.insert(
                key,
                Have {
                    id,
                    names: s.data.names,
                    not_after: s.data.not_after,
                    uploaded: s.data.uploaded,
                    acme,
                },
            );
        }
        Ok(())
    }
}

/// Whether a stored certificate must be re-issued for `w` at `now` (the rule of
/// [`super::plan`]).
fn stale(w: &Wanted, h: &Have, now: i64) -> bool {
    let is_cert = matches!(
        w.purpose,
        SecretPurpose::SiteCert | SecretPurpose::ServerCert
    );
    is_cert && super::cert_stale(&h.names, h.not_after, h.uploaded, h.acme, &w.names, now)
}
