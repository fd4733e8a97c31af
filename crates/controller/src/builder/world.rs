//! The builder's copy of the store: every object the configs are made of, by id,
//! kept current by applying the store's change feed ([`World::apply`]) instead of
//! re-reading the store for every change. Three lookups a change needs are indexed
//! ([`World::domain_named`], [`World::site_of`], [`World::secret`]), so applying
//! and building a change never scans the platform.

use std::collections::{BTreeSet, HashMap};

use model::entity::{
    Account, Cluster, Database, DbUser, DnsRecord, Domain, FtpAccount, Kind, MailAlias, Mailbox,
    Object, Plan, Secret, SecretPurpose, Server, Site,
};
use model::Id;
use proto::agent_v1::TlsMaterial;
use scheduler::Health;
use store::{Feed, RawObject, StoreError, Stored};

/// The objects of one kind, in id order with a position index: read as a slice
/// (the builders iterate), changed by id (the feed).
#[derive(Debug, Clone)]
pub struct Objects<T> {
    items: Vec<Stored<T>>,
    pos: HashMap<Id, usize>,
}

impl<T> Default for Objects<T> {
    fn default() -> Self {
        Self {
            items: Vec::new(),
            pos: HashMap::new(),
        }
    }
}

impl<T> Objects<T> {
    /// The object with this id.
    pub fn get(&self, id: Id) -> Option<&Stored<T>> {
        self.pos.get(&id).map(|&i| &self.items[i])
    }

    /// Insert or replace (by id); returns the replaced version.
    pub fn upsert(&mut self, obj: Stored<T>) -> Option<Stored<T>> {
        match self.pos.get(&obj.meta.id) {
            Some(&i) => Some(std::mem::replace(&mut self.items[i], obj)),
            None => {
                self.pos.insert(obj.meta.id, self.items.len());
                self.items.push(obj);
                None
            }
        }
    }

    /// Add an object (replacing one with the same id).
    pub fn push(&mut self, obj: Stored<T>) {
        self.upsert(obj);
    }

    /// Remove by id; returns the removed object. Order is not kept (the builders
    /// sort what they emit).
    pub fn remove(&mut self, id: Id) -> Option<Stored<T>> {
        let i = self.pos.remove(&id)?;
        let gone = self.items.swap_remove(i);
        if let Some(moved) = self.items.get(i) {
            self.pos.insert(moved.meta.id, i);
        }
        Some(gone)
    }

    /// Keep only the objects `keep` accepts.
    pub fn retain(&mut self, keep: impl FnMut(&Stored<T>) -> bool) {
        self.items.retain(keep);
        self.reindex();
    }

    fn reindex(&mut self) {
        self.pos = self
            .items
            .iter()
            .enumerate()
            .map(|(i, o)| (o.meta.id, i))
            .collect();
    }
}

impl<T> From<Vec<Stored<T>>> for Objects<T> {
    fn from(items: Vec<Stored<T>>) -> Self {
        let mut o = Self {
            items,
            pos: HashMap::new(),
        };
        o.reindex();
        o
    }
}

impl<T> std::ops::Deref for Objects<T> {
    type Target = [Stored<T>];
    fn deref(&self) -> &[Stored<T>] {
        &self.items
    }
}

/// Mutable access to the documents (tests); ids must not be changed through it.
impl<T> std::ops::DerefMut for Objects<T> {
    fn deref_mut(&mut self) -> &mut [Stored<T>] {
        &mut self.items
    }
}

impl<'a, T> IntoIterator for &'a Objects<T> {
    type Item = &'a Stored<T>;
    type IntoIter = std::slice::Iter<'a, Stored<T>>;
    fn into_iter(self) -> Self::IntoIter {
        self.items.iter()
    }
}

impl<'a, T> IntoIterator for &'a mut Objects<T> {
    type Item = &'a mut Stored<T>;
    type IntoIter = std::slice::IterMut<'a, Stored<T>>;
    fn into_iter(self) -> Self::IntoIter {
        self.items.iter_mut()
    }
}

/// One object of any kind the builder reads.
#[derive(Debug, Clone, PartialEq)]
pub enum Obj {
    /// A cluster.
    Cluster(Stored<Cluster>),
    /// A server.
    Server(Stored<Server>),
    /// A domain.
    Domain(Stored<Domain>),
    /// A site.
    Site(Stored<Site>),
    /// A mailbox.
    Mailbox(Stored<Mailbox>),
    /// A mail alias.
    Alias(Stored<MailAlias>),
    /// An FTP account.
    Ftp(Stored<FtpAccount>),
    /// A database.
    Database(Stored<Database>),
    /// A database user.
    DbUser(Stored<DbUser>),
    /// A customer DNS record.
    DnsRecord(Stored<DnsRecord>),
    /// An account.
    Account(Stored<Account>),
    /// A plan.
    Plan(Stored<Plan>),
    /// Key material.
    Secret(Stored<Secret>),
}

/// One object changed by [`World::apply`]: its version before and after (`None`:
/// absent), so the servers of both can be rebuilt.
#[derive(Debug, Clone, PartialEq)]
pub struct Change {
    /// The version the world held before.
    pub old: Option<Obj>,
    /// The version it holds now.
    pub new: Option<Obj>,
}

/// Everything the builder reads, as stored.
#[derive(Debug, Clone, Default)]
pub struct World {
    /// All clusters.
    pub clusters: Objects<Cluster>,
    /// All servers.
    pub servers: Objects<Server>,
    /// All domains.
    pub domains: Objects<Domain>,
    /// All sites.
    pub sites: Objects<Site>,
    /// All mailboxes.
    pub mailboxes: Objects<Mailbox>,
    /// All mail aliases.
    pub aliases: Objects<MailAlias>,
    /// All FTP accounts.
    pub ftp_accounts: Objects<FtpAccount>,
    /// All databases.
    pub databases: Objects<Database>,
    /// All database users.
    pub db_users: Objects<DbUser>,
    /// All customer DNS records.
    pub dns_records: Objects<DnsRecord>,
    /// All accounts (their plans and overrides decide limits sent to servers).
    pub accounts: Objects<Account>,
    /// All plans.
    pub plans: Objects<model::entity::Plan>,
    /// Key material ([`crate::keys`]): certificates, DKIM and TSIG keys.
    pub secrets: Objects<Secret>,
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
    /// Days files servers keep overwritten and deleted site files (controller
    /// config `files.site_versions_days`).
    pub site_versions_days: u32,
    /// Health of the servers as the controller believes it (not stored; the
    /// caller fills it from the health monitor). A server absent here is `unknown`.
    pub health: HashMap<Id, Health>,
    /// Domain ids by name (kept by [`World::upsert`] and [`World::remove`]).
    pub(crate) domain_ids: HashMap<String, Id>,
    /// Site ids by domain id (one site per domain).
    pub(crate) site_ids: HashMap<Id, Id>,
    /// How many sites are active on each server (kept with `site_ids`), for
    /// placing new sites ([`crate::loads`]) without counting every site per build.
    pub(crate) active_sites: HashMap<Id, u32>,
    /// Secret ids by a hash of purpose and subject ([`World::secret_key`]): a
    /// set, as a rotated key has two for a while (the newest, highest id, is the
    /// one in force), and the rare other subject with the same hash is told apart
    /// by its secret's own purpose and subject. Keyed by the hash, not a copy of
    /// the subject: three secrets per domain made this map ~45 MB at 100,000
    /// domains with a `(purpose, String)` key and a `Vec` per entry.
    pub(crate) secret_ids: HashMap<u64, IdSet>,
    /// The keyed hasher of [`World::secret_key`] (random per process: subjects are
    /// customers' domain names).
    pub(crate) secret_hasher: std::collections::hash_map::RandomState,
    /// How many ids `secret_ids` holds: equal to the number of secrets when the
    /// index is complete.
    pub(crate) secrets_indexed: usize,
    /// Customer DNS record ids by domain id, and how many records that holds (to
    /// tell a complete index from a world built by hand).
    pub(crate) record_ids: HashMap<Id, BTreeSet<Id>>,
    pub(crate) records_indexed: usize,
    /// Every site certificate and key entered through [`World::upsert`], by secret
    /// id, as shared strings; the secret itself keeps empty PEMs. The builder's
    /// configs carry these very strings, so the world and every web server's
    /// config hold one copy of each site's PEMs (at 100,000 sites the world's
    /// strings and a cache of shared copies were two copies, ~100 MB each).
    pub(crate) site_tls: HashMap<Id, TlsMaterial>,
    /// Ids of the pending ACME HTTP-01 challenge secrets (few, and short-lived),
    /// so a web server's build finds its cluster's without a scan of every secret.
    pub(crate) acme_challenges: BTreeSet<Id>,
}

/// A few ids in ascending order: the secrets of one purpose and subject (one,
/// two while a key rotates). A sorted boxed slice, not a `BTreeSet`, whose first
/// insert allocates a whole B-tree node (~100 bytes) for one id (with three
/// secrets per domain that was ~30 MB at 100,000 domains), nor a `Vec` (8 bytes
/// more per entry for a capacity that is never used).
#[derive(Debug, Clone, Default)]
pub struct IdSet(Box<[Id]>);

impl IdSet {
    /// Add `id`; `false` when it was there.
    pub fn insert(&mut self, id: Id) -> bool {
        match self.0.binary_search(&id) {
            Ok(_) => false,
            Err(i) => {
                let mut v = std::mem::take(&mut self.0).into_vec();
                v.insert(i, id);
                self.0 = v.into_boxed_slice();
                true
            }
        }
    }

    /// Remove `id`; `false` when it was not there.
    pub fn remove(&mut self, id: &Id) -> bool {
        match self.0.binary_search(id) {
            Ok(i) => {
                let mut v = std::mem::take(&mut self.0).into_vec();
                v.remove(i);
                self.0 = v.into_boxed_slice();
                true
            }
            Err(_) => false,
        }
    }

    /// The highest id.
    pub fn last(&self) -> Option<&Id> {
        self.0.last()
    }

    /// The ids, highest first.
    pub fn newest_first(&self) -> impl Iterator<Item = Id> + '_ {
        self.0.iter().rev().copied()
    }

    /// Whether no id is held.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// What an object is indexed by in [`World`], if anything.
enum Indexed {
    Domain(String),
    Site(Id, Option<Id>),
    Secret((SecretPurpose, String)),
    Record(Id),
    Not,
}

impl Indexed {
    fn of(obj: &Obj) -> Self {
        match obj {
            Obj::Domain(d) => Self::Domain(d.meta.name.clone()),
            Obj::Site(s) => Self::Site(s.data.domain, s.data.active_server),
            Obj::Secret(s) => Self::Secret((s.data.purpose, s.data.subject.clone())),
            Obj::DnsRecord(r) => Self::Record(r.data.domain),
            _ => Self::Not,
        }
    }
}

impl World {
    /// The domain named `name` (by index; by a scan in a world built by hand, whose
    /// index is not complete).
    pub fn domain_named(&self, name: &str) -> Option<&Stored<Domain>> {
        if self.domain_ids.len() == self.domains.len() {
            return self
                .domain_ids
                .get(name)
                .and_then(|id| self.domains.get(*id));
        }
        self.domains.iter().rev().find(|d| d.meta.name == name)
    }

    /// The site of domain `domain` (by index, like [`World::domain_named`]).
    pub fn site_of(&self, domain: Id) -> Option<&Stored<Site>> {
        if self.site_ids.len() == self.sites.len() {
            return self
                .site_ids
                .get(&domain)
                .and_then(|id| self.sites.get(*id));
        }
        self.sites.iter().rev().find(|s| s.data.domain == domain)
    }

    /// How many sites are active on each server (servers without any absent): by
    /// index, O(servers); by a count of every site in a world built by hand.
    pub fn active_sites(&self) -> HashMap<Id, u32> {
        if self.site_ids.len() == self.sites.len() {
            return self.active_sites.clone();
        }
        let mut out: HashMap<Id, u32> = HashMap::new();
        for s in &self.sites {
            if let Some(id) = s.data.active_server {
                *out.entry(id).or_default() += 1;
            }
        }
        out
    }

    /// The secret of `purpose` for `subject`, the newest (highest id) if a rotation
    /// left two (by index, like [`World::domain_named`]).
    pub fn secret(&self, purpose: SecretPurpose, subject: &str) -> Option<&Stored<Secret>> {
        if self.secrets_indexed == self.secrets.len() {
            return self
                .secret_ids
                .get(&self.secret_key(purpose, subject))
                .into_iter()
                .flat_map(IdSet::newest_first)
                .filter_map(|id| self.secrets.get(id))
                .find(|s| s.data.purpose == purpose && s.data.subject == subject);
        }
        self.secrets
            .iter()
            .filter(|s| s.data.purpose == purpose && s.data.subject == subject)
            .max_by_key(|s| s.meta.id)
    }

    /// The customer DNS records of domain `domain`, in id order (by index, like
    /// [`World::domain_named`]).
    pub fn records_of(&self, domain: Id) -> Vec<&Stored<DnsRecord>> {
        if self.records_indexed == self.dns_records.len() {
            return self
                .record_ids
                .get(&domain)
                .into_iter()
                .flatten()
                .filter_map(|id| self.dns_records.get(*id))
                .collect();
        }
        let mut out: Vec<_> = self
            .dns_records
            .iter()
            .filter(|r| r.data.domain == domain)
            .collect();
        out.sort_by_key(|r| r.meta.id);
        out
    }

    /// The key of `(purpose, subject)` in [`World::secret_ids`].
    pub(crate) fn secret_key(&self, purpose: SecretPurpose, subject: &str) -> u64 {
        use std::hash::BuildHasher;
        self.secret_hasher.hash_one((purpose, subject))
    }

    fn index(&mut self, id: Id, key: Indexed) {
        match key {
            Indexed::Domain(n) => {
                self.domain_ids.insert(n, id);
            }
            Indexed::Site(d, server) => {
                self.site_ids.insert(d, id);
                if let Some(server) = server {
                    *self.active_sites.entry(server).or_default() += 1;
                }
            }
            Indexed::Secret((purpose, subject)) => {
                let k = self.secret_key(purpose, &subject);
                if self.secret_ids.entry(k).or_default().insert(id) {
                    self.secrets_indexed += 1;
                }
            }
            Indexed::Record(d) => {
                if self.record_ids.entry(d).or_default().insert(id) {
                    self.records_indexed += 1;
                }
            }
            Indexed::Not => {}
        }
    }

    fn unindex(&mut self, id: Id, key: Indexed) {
        match key {
            Indexed::Domain(n) => {
                if self.domain_ids.get(&n) == Some(&id) {
                    self.domain_ids.remove(&n);
                }
            }
            Indexed::Site(d, server) => {
                if self.site_ids.get(&d) == Some(&id) {
                    self.site_ids.remove(&d);
                }
                if let Some(server) = server {
                    if let Some(n) = self.active_sites.get_mut(&server) {
                        *n = n.saturating_sub(1);
                        if *n == 0 {
                            self.active_sites.remove(&server);
                        }
                    }
                }
            }
            Indexed::Secret((purpose, subject)) => {
                let k = self.secret_key(purpose, &subject);
                if let Some(ids) = self.secret_ids.get_mut(&k) {
                    if ids.remove(&id) {
                        self.secrets_indexed -= 1;
                    }
                    if ids.is_empty() {
                        self.secret_ids.remove(&k);
                    }
                }
            }
            Indexed::Record(d) => {
                if let Some(set) = self.record_ids.get_mut(&d) {
                    if set.remove(&id) {
                        self.records_indexed -= 1;
                    }
                    if set.is_empty() {
                        self.record_ids.remove(&d);
                    }
                }
            }
            Indexed::Not => {}
        }
    }
}

impl World {
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
/// Dispatch over the kinds the builder reads: `$m!(field, Variant, Type)` for each.
macro_rules! kinds {
    ($m:ident) => {
        $m!(clusters, Cluster, Cluster);
        $m!(servers, Server, Server);
        $m!(domains, Domain, Domain);
        $m!(sites, Site, Site);
        $m!(mailboxes, Mailbox, Mailbox);
        $m!(aliases, Alias, MailAlias);
        $m!(ftp_accounts, Ftp, FtpAccount);
        $m!(databases, Database, Database);
        $m!(db_users, DbUser, DbUser);
        $m!(dns_records, DnsRecord, DnsRecord);
        $m!(accounts, Account, Account);
        $m!(plans, Plan, Plan);
        $m!(secrets, Secret, Secret);
    };
}

impl Obj {
    /// Parse a feed object; `None` for kinds the builder does not read (tokens,
    /// join tokens).
    pub fn parse(raw: &RawObject) -> Result<Option<Obj>, StoreError> {
        macro_rules! arm {
            ($field:ident, $variant:ident, $ty:ident) => {
                if raw.kind == <$ty as Object>::KIND {
                    return Ok(Some(Obj::$variant(raw.parse::<$ty>()?)));
                }
            };
        }
        kinds!(arm);
        Ok(None)
    }

    /// Store id of the object.
    pub fn id(&self) -> Id {
        macro_rules! arm {
            ($field:ident, $variant:ident, $ty:ident) => {
                if let Obj::$variant(o) = self {
                    return o.meta.id;
                }
            };
        }
        kinds!(arm);
        0
    }
}

impl World {
    /// A world holding the objects of `feed` (read from revision 0).
    pub fn from_feed(feed: &Feed) -> Result<World, StoreError> {
        let mut world = World::default();
        world.apply(feed)?;
        Ok(world)
    }

    /// Insert or replace an object; returns the version it replaced.
    pub fn upsert(&mut self, obj: Obj) -> Option<Obj> {
        let obj = self.take_site_tls(obj);
        let (id, key) = (obj.id(), Indexed::of(&obj));
        let old = self.upsert_unindexed(obj);
        if let Some(o) = &old {
            self.unindex(id, Indexed::of(o));
        }
        self.index(id, key);
        old
    }

    fn upsert_unindexed(&mut self, obj: Obj) -> Option<Obj> {
        macro_rules! arm {
            ($field:ident, $variant:ident, $ty:ident) => {
                if let Obj::$variant(o) = obj {
                    return self.$field.upsert(o).map(Obj::$variant);
                }
            };
        }
        kinds!(arm);
        None
    }

    /// A site certificate's PEMs move to [`World::site_tls`] (shared strings);
    /// other objects pass unchanged.
    fn take_site_tls(&mut self, obj: Obj) -> Obj {
        let Obj::Secret(mut s) = obj else {
            return obj;
        };
        if s.data.purpose == SecretPurpose::AcmeChallenge {
            self.acme_challenges.insert(s.meta.id);
        } else {
            self.acme_challenges.remove(&s.meta.id);
        }
        if s.data.purpose == SecretPurpose::SiteCert {
            let m = TlsMaterial {
                cert_pem: std::mem::take(&mut s.data.public).into(),
                key_pem: std::mem::take(&mut s.data.private).into(),
            };
            self.site_tls.insert(s.meta.id, m);
        } else {
            self.site_tls.remove(&s.meta.id);
        }
        Obj::Secret(s)
    }

    /// The pending ACME HTTP-01 challenges (secrets of purpose
    /// [`SecretPurpose::AcmeChallenge`] entered through [`World::upsert`]).
    pub fn acme_challenges(&self) -> impl Iterator<Item = &Stored<Secret>> + '_ {
        self.acme_challenges
            .iter()
            .filter_map(|id| self.secrets.get(*id))
    }

    /// The certificate and key of site-certificate secret `id`, if it entered
    /// through [`World::upsert`] (a world built by hand keeps them in the secret).
    pub fn site_tls(&self, id: Id) -> Option<&TlsMaterial> {
        self.site_tls.get(&id)
    }

    /// Remove an object; returns it (`None`: a kind the builder does not read, or
    /// not held).
    pub fn remove(&mut self, kind: Kind, id: Id) -> Option<Obj> {
        if kind == Kind::Secret {
            self.site_tls.remove(&id);
            self.acme_challenges.remove(&id);
        }
        let old = self.remove_unindexed(kind, id);
        if let Some(o) = &old {
            self.unindex(id, Indexed::of(o));
        }
        old
    }

    fn remove_unindexed(&mut self, kind: Kind, id: Id) -> Option<Obj> {
        macro_rules! arm {
            ($field:ident, $variant:ident, $ty:ident) => {
                if kind == <$ty as Object>::KIND {
                    return self.$field.remove(id).map(Obj::$variant);
                }
            };
        }
        kinds!(arm);
        None
    }

    /// Apply what changed in the store; returns every object whose version
    /// changed, with its old and new version. A document that does not parse is
    /// logged and skipped (its old version stays): one bad object never stops the
    /// builder.
    pub fn apply(&mut self, feed: &Feed) -> Result<Vec<Change>, StoreError> {
        let mut changes = Vec::new();
        let mut accounts = false;
        for t in &feed.deleted {
            if let Some(old) = self.remove(t.kind, t.id) {
                accounts |= matches!(old, Obj::Account(_) | Obj::Plan(_));
                changes.push(Change {
                    old: Some(old),
                    new: None,
                });
            }
        }
        for raw in &feed.changed {
            let new = match Obj::parse(raw) {
                Ok(Some(o)) => o,
                Ok(None) => continue,
                Err(e) => {
                    tracing::warn!(kind = raw.kind.as_str(), id = raw.meta.id, error = %e,
                        "skipping an object that does not parse");
                    continue;
                }
            };
            accounts |= matches!(new, Obj::Account(_) | Obj::Plan(_));
            let old = self.upsert(new.clone());
            if old.as_ref() != Some(&new) {
                changes.push(Change {
                    old,
                    new: Some(new),
                });
            }
        }
        if accounts {
            self.derive_accounts();
        }
        Ok(changes)
    }

    /// Recompute what is derived from accounts and plans: names, database quotas,
    /// limits in force.
    pub fn derive_accounts(&mut self) {
        self.account_names.clear();
        self.db_quotas.clear();
        for a in &self.accounts {
            if let Some(q) = a.data.db_quota_mb {
                self.db_quotas.insert(a.meta.id, q);
            }
            self.account_names.insert(a.meta.id, a.meta.name.clone());
        }
        self.set_limits(self.default_plan);
    }
}

#[cfg(test)]
mod secret_index_tests {
    use super::*;
    use crate::builder::tests::secret;

    #[test]
    fn two_secrets_of_one_subject_stay_indexed_and_the_newest_wins() {
        let mut w = World::default();
        let key = |id, v: &str| Obj::Secret(secret(id, SecretPurpose::SiteCert, "a.example", v, v));
        w.upsert(key(7, "old"));
        w.upsert(key(9, "new"));
        w.upsert(Obj::Secret(secret(
            8,
            SecretPurpose::Dkim,
            "a.example",
            "d",
            "d",
        )));
        // The index stays complete (no scan), and the newer secret is the one in force.
        assert_eq!(w.secrets_indexed, w.secrets.len());
        let found = |w: &World| {
            w.secret(SecretPurpose::SiteCert, "a.example")
                .map(|s| s.meta.id)
        };
        assert_eq!(found(&w), Some(9));
        assert_eq!(
            w.secret(SecretPurpose::Dkim, "a.example")
                .map(|s| s.meta.id),
            Some(8)
        );
        // Replacing the newer one with another subject moves it in the index.
        w.upsert(Obj::Secret(secret(
            9,
            SecretPurpose::SiteCert,
            "b.example",
            "n",
            "n",
        )));
        assert_eq!(found(&w), Some(7));
        assert_eq!(w.secrets_indexed, w.secrets.len());
        w.remove(Kind::Secret, 7);
        assert_eq!(found(&w), None);
        assert!(w.site_tls(7).is_none());
        assert_eq!(w.secrets_indexed, w.secrets.len());
        assert!(!w
            .secret_ids
            .contains_key(&w.secret_key(SecretPurpose::SiteCert, "a.example")));
        // Site certificates keep their PEMs once, as shared strings, not in the
        // secret; removing the secret drops them.
        assert_eq!(w.secrets.get(9).map(|s| s.data.public.as_str()), Some(""));
        assert_eq!(w.site_tls(9).map(|m| &*m.cert_pem), Some("n"));
        assert!(w.site_tls(8).is_none(), "a DKIM key stays in its secret");
        assert_eq!(w.secrets.get(8).map(|s| s.data.private.as_str()), Some("d"));
        w.remove(Kind::Secret, 9);
        assert!(w.site_tls(9).is_none());
        // A world built by hand (index incomplete) finds the newest by a scan.
        let mut hand = World::default();
        hand.secrets
            .push(secret(3, SecretPurpose::Tsig, "dns", "x", "x"));
        hand.secrets
            .push(secret(2, SecretPurpose::Tsig, "dns", "y", "y"));
        assert_eq!(
            hand.secret(SecretPurpose::Tsig, "dns").map(|s| s.meta.id),
            Some(3)
        );
    }

    /// Two subjects whose keys collide in `secret_ids` share one id set; each
    /// still finds its own secret (and none when only the other has one).
    #[test]
    fn subjects_sharing_an_index_key_find_their_own_secret() {
        let mut w = World::default();
        let cert =
            |id, subject: &str| Obj::Secret(secret(id, SecretPurpose::SiteCert, subject, "c", "k"));
        w.upsert(cert(5, "a.example"));
        w.upsert(cert(6, "b.example"));
        // Force the collision: b's id also under a's key, a's also under b's.
        let (ka, kb) = (
            w.secret_key(SecretPurpose::SiteCert, "a.example"),
            w.secret_key(SecretPurpose::SiteCert, "b.example"),
        );
        assert!(w.secret_ids.get_mut(&ka).unwrap().insert(6));
        assert!(w.secret_ids.get_mut(&kb).unwrap().insert(5));
        assert_eq!(
            w.secrets_indexed,
            w.secrets.len(),
            "the index is still used"
        );
        let found = |w: &World, s: &str| w.secret(SecretPurpose::SiteCert, s).map(|s| s.meta.id);
        assert_eq!(found(&w, "a.example"), Some(5));
        assert_eq!(found(&w, "b.example"), Some(6));
        assert_eq!(
            w.secret(SecretPurpose::Dkim, "a.example")
                .map(|s| s.meta.id),
            None
        );
        w.remove(Kind::Secret, 5);
        assert_eq!(found(&w, "a.example"), None);
        assert_eq!(found(&w, "b.example"), Some(6));
    }
}
