//! The ACME task's own view of the store ([`AcmeView`]), kept from the change
//! feed like the key task's `KeyState`: each site's names and web placement, the
//! kind of certificate it serves, its stored [`SiteAcme`] state, the servers and
//! the pending challenge secrets — never certificate material.
//!
//! Each site has a time the task must look at it next ([`state::next_look`]: at
//! once when it has no ACME certificate or its names changed, its renewal time,
//! its renewal information check, the end of its backoff); the view keeps the
//! sites ordered by that time, so a pass takes only the sites whose time has
//! come ([`AcmeView::take_due`]) and costs O(due + changes), not O(platform):
//! with 100,000 sites the task touches the few that are due.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use model::entity::{Domain, Kind, Object, Secret, SecretPurpose, Server, Site};
use model::{Id, Role};
use store::{Feed, RawObject, Stored};

use super::state::{self, Served, SiteAcme};

/// What the view knows of a domain.
#[derive(Debug, Clone)]
struct DomainFacts {
    name: String,
    /// Placed on a web cluster (only those get certificates by HTTP-01).
    web: bool,
}

/// What the view knows of a site.
#[derive(Debug, Clone)]
struct SiteFacts {
    domain: Id,
    aliases: Vec<String>,
}

/// One site whose time has come, as [`AcmeView::take_due`] hands it out.
#[derive(Debug, Clone)]
pub struct DueSite {
    /// The site's id.
    pub site: Id,
    /// Its domain's id.
    pub domain: Id,
    /// The domain's name.
    pub name: String,
    /// The names wanted (domain first, then aliases).
    pub wanted: Vec<String>,
    /// Its stored state.
    pub state: Option<SiteAcme>,
    /// What it serves now.
    pub served: Served,
}

/// The ACME task's view (see the module docs).
#[derive(Debug, Default)]
pub struct AcmeView {
    domains: HashMap<Id, DomainFacts>,
    domain_ids: HashMap<String, Id>,
    sites: HashMap<Id, SiteFacts>,
    site_of: HashMap<Id, Id>,
    /// Served certificate kind by domain name (with the secret's id).
    served: HashMap<String, (Id, Served)>,
    /// Stored states by domain name (with the secret's id).
    states: HashMap<String, (Id, SiteAcme)>,
    /// Secret ids to domain names, for tombstones (certificates and states).
    secret_subjects: HashMap<Id, (SecretPurpose, String)>,
    /// Pending challenge secrets (ids).
    challenges: BTreeSet<Id>,
    servers: HashMap<Id, Stored<Server>>,
    servers_list: Arc<Vec<Stored<Server>>>,
    servers_dirty: bool,
    /// Next look time per domain id, and the same ordered.
    look_at: HashMap<Id, i64>,
    schedule: BTreeSet<(i64, Id)>,
    /// Domains whose look time must be computed again.
    marked: BTreeSet<Id>,
}

impl AcmeView {
    /// Apply what changed in the store. A document that does not parse is
    /// logged and skipped.
    pub fn apply(&mut self, feed: &Feed) {
        for t in &feed.deleted {
            self.remove(t.kind, t.id);
        }
        for raw in &feed.changed {
            if let Err(e) = self.upsert(raw) {
                tracing::warn!(kind = raw.kind.as_str(), id = raw.meta.id, error = %e,
                    "ACME task: skipping an object that does not parse");
            }
        }
        if self.servers_dirty {
            let mut v: Vec<Stored<Server>> = self.servers.values().cloned().collect();
            v.sort_by_key(|s| s.meta.id);
            self.servers_list = Arc::new(v);
            self.servers_dirty = false;
        }
        let marked = std::mem::take(&mut self.marked);
        for d in marked {
            self.reschedule(d);
        }
    }

    /// The sites whose look time is at or before `now`, earliest first, at most
    /// `max`; they are not handed out again until their state or names change
    /// (what the task writes comes back through the feed) or [`AcmeView::again`].
    pub fn take_due(&mut self, now: i64, max: usize) -> Vec<DueSite> {
        let ids: Vec<(i64, Id)> = self
            .schedule
            .range(..=(now, Id::MAX))
            .take(max)
            .copied()
            .collect();
        let mut out = Vec::new();
        for (t, d) in ids {
            self.schedule.remove(&(t, d));
            self.look_at.remove(&d);
            if let Some(due) = self.due_site(d) {
                out.push(due);
            }
        }
        out
    }

    /// Look at domain `domain` again at `at` (a pass that could not finish it).
    pub fn again(&mut self, domain: Id, at: i64) {
        self.unschedule(domain);
        self.look_at.insert(domain, at);
        self.schedule.insert((at, domain));
    }

    /// How many sites are scheduled, and the earliest time (for tests and logs).
    pub fn scheduled(&self) -> (usize, Option<i64>) {
        (self.schedule.len(), self.schedule.first().map(|(t, _)| *t))
    }

    /// Every server, shared.
    pub fn servers(&self) -> Arc<Vec<Stored<Server>>> {
        Arc::clone(&self.servers_list)
    }

    /// The ids of pending challenge secrets.
    pub fn challenges(&self) -> Vec<Id> {
        self.challenges.iter().copied().collect()
    }

    /// State secrets of domains that have no site any more (removing a site
    /// stops its renewal: its state goes).
    pub fn orphan_states(&self) -> Vec<Id> {
        self.states
            .iter()
            .filter(|(name, _)| {
                self.domain_ids
                    .get(*name)
                    .is_none_or(|d| !self.site_of.contains_key(d))
            })
            .map(|(_, (id, _))| *id)
            .collect()
    }

    fn due_site(&self, domain: Id) -> Option<DueSite> {
        let d = self.domains.get(&domain)?;
        let site_id = *self.site_of.get(&domain)?;
        let site = self.sites.get(&site_id)?;
        Some(DueSite {
            site: site_id,
            domain,
            name: d.name.clone(),
            wanted: wanted(&d.name, &site.aliases),
            state: self.states.get(&d.name).map(|(_, s)| s.clone()),
            served: self.served_of(&d.name),
        })
    }

    fn served_of(&self, name: &str) -> Served {
        self.served.get(name).map_or(Served::None, |(_, s)| *s)
    }

    fn unschedule(&mut self, domain: Id) {
        if let Some(t) = self.look_at.remove(&domain) {
            self.schedule.remove(&(t, domain));
        }
    }

    fn reschedule(&mut self, domain: Id) {
        self.unschedule(domain);
        let Some(d) = self.domains.get(&domain) else {
            return;
        };
        if !d.web {
            return;
        }
        let Some(site) = self.site_of.get(&domain).and_then(|s| self.sites.get(s)) else {
            return;
        };
        let w = wanted(&d.name, &site.aliases);
        let st = self.states.get(&d.name).map(|(_, s)| s);
        if let Some(t) = state::next_look(st, &w, self.served_of(&d.name)) {
            self.look_at.insert(domain, t);
            self.schedule.insert((t, domain));
        }
    }

    fn mark_name(&mut self, name: &str) {
        if let Some(d) = self.domain_ids.get(name) {
            self.marked.insert(*d);
        }
    }

    fn remove(&mut self, kind: Kind, id: Id) {
        match kind {
            Kind::Domain => {
                if let Some(d) = self.domains.remove(&id) {
                    if self.domain_ids.get(&d.name) == Some(&id) {
                        self.domain_ids.remove(&d.name);
                    }
                }
                self.unschedule(id);
                self.marked.remove(&id);
            }
            Kind::Site => {
                if let Some(s) = self.sites.remove(&id) {
                    if self.site_of.get(&s.domain) == Some(&id) {
                        self.site_of.remove(&s.domain);
                    }
                    self.marked.insert(s.domain);
                }
            }
            Kind::Server => {
                self.servers.remove(&id);
                self.servers_dirty = true;
            }
            Kind::Secret => {
                self.challenges.remove(&id);
                if let Some((purpose, name)) = self.secret_subjects.remove(&id) {
                    if purpose == SecretPurpose::SiteCert {
                        if self.served.get(&name).is_some_and(|(i, _)| *i == id) {
                            self.served.remove(&name);
                        }
                    } else if self.states.get(&name).is_some_and(|(i, _)| *i == id) {
                        self.states.remove(&name);
                    }
                    self.mark_name(&name);
                }
            }
            _ => {}
        }
    }

    fn upsert(&mut self, raw: &RawObject) -> Result<(), store::StoreError> {
        let id = raw.meta.id;
        if raw.kind == Domain::KIND {
            let d: Stored<Domain> = raw.parse()?;
            if let Some(old) = self.domains.get(&id) {
                if old.name != d.meta.name && self.domain_ids.get(&old.name) == Some(&id) {
                    let old = old.name.clone();
                    self.domain_ids.remove(&old);
                }
            }
            self.domain_ids.insert(d.meta.name.clone(), id);
            self.domains.insert(
                id,
                DomainFacts {
                    name: d.meta.name,
                    web: d.data.placements.contains_key(&Role::Web),
                },
            );
            self.marked.insert(id);
        } else if raw.kind == Site::KIND {
            let s: Stored<Site> = raw.parse()?;
            self.remove(Kind::Site, id);
            self.site_of.insert(s.data.domain, id);
            self.marked.insert(s.data.domain);
            self.sites.insert(
                id,
                SiteFacts {
                    domain: s.data.domain,
                    aliases: s.data.aliases.iter().map(ToString::to_string).collect(),
                },
            );
        } else if raw.kind == Server::KIND {
            let s: Stored<Server> = raw.parse()?;
            self.servers.insert(id, s);
            self.servers_dirty = true;
        } else if raw.kind == Secret::KIND {
            let s: Stored<Secret> = raw.parse()?;
            match s.data.purpose {
                SecretPurpose::SiteCert => {
                    let served = if s.data.uploaded {
                        Served::Uploaded
                    } else if super::is_acme_cert(&s.data) {
                        Served::Acme
                    } else {
                        Served::Internal
                    };
                    let name = s.data.subject;
                    self.secret_subjects
                        .insert(id, (SecretPurpose::SiteCert, name.clone()));
                    self.served.insert(name.clone(), (id, served));
                    self.mark_name(&name);
                }
                SecretPurpose::AcmeSite => {
                    let st: SiteAcme = serde_json::from_str(&s.data.public).unwrap_or_default();
                    let name = s.data.subject;
                    self.secret_subjects
                        .insert(id, (SecretPurpose::AcmeSite, name.clone()));
                    self.states.insert(name.clone(), (id, st));
                    self.mark_name(&name);
                }
                SecretPurpose::AcmeChallenge => {
                    self.challenges.insert(id);
                }
                _ => {}
            }
        }
        Ok(())
    }
}

/// The names a site wants: its domain, then its aliases, once each.
pub fn wanted(domain: &str, aliases: &[String]) -> Vec<String> {
    let mut out = vec![domain.to_owned()];
    for a in aliases {
        if !out.contains(a) {
            out.push(a.clone());
        }
    }
    out
}
