//! What an import request knows of the store: the objects, keys, counters, name
//! holders and zone records its lines refer to, read in bulk inside the request's
//! transaction (a few statements per window of lines, `prefetch`), plus the objects
//! earlier lines of the request create, which exist only here until `write` puts
//! them in the store with multi-row inserts.
//!
//! Every question a line's rules ask (does this name exist, who holds this key or
//! registrable domain, how many domains does this account hold, which records does
//! this zone have) is answered from here: from what was prefetched, else by one
//! read that is then kept (a line the prefetch could not foresee, e.g. the stored
//! owner of an object a re-run compares with). The transaction holds the store's
//! write lock, so nothing read here changes under the request; what the request
//! creates is added here as it goes, so later lines see earlier ones exactly as
//! the one-object API would.

use std::collections::{BTreeSet, HashMap, HashSet};

use model::dns::{RecordData, RecordName};
use model::entity::{
    Account, Cluster, Database, DbUser, DnsRecord, Domain, FtpAccount, Kind, MailAlias, Mailbox,
    Object, Plan, Site,
};
use model::{DomainName, EmailAddress, Id, LocalPart};
use proto::v1_import::ImportLine;
use store::{Meta, NewObject, Stored, Tx};

/// Store reads fail as the store does.
type Res<T> = Result<T, store::StoreError>;

/// The objects of one kind the request has seen or created.
pub(super) struct Cache<T> {
    /// Known objects by id (stored or created by this request).
    by_id: HashMap<Id, Stored<T>>,
    /// Known names: `Some(id)` exists, `None` known to be absent.
    by_name: HashMap<String, Option<Id>>,
    /// Objects this request creates, in line order, with their ids.
    pub(super) new: Vec<(Id, NewObject<T>)>,
}

impl<T> Default for Cache<T> {
    fn default() -> Self {
        Self {
            by_id: HashMap::new(),
            by_name: HashMap::new(),
            new: Vec::new(),
        }
    }
}

impl<T: Object> Cache<T> {
    /// Remember stored objects, and that `asked` names not among them are absent.
    fn fill(&mut self, rows: Vec<Stored<T>>, asked: &[String]) {
        for name in asked {
            self.by_name.entry(name.clone()).or_insert(None);
        }
        for r in rows {
            self.by_name.insert(r.meta.name.clone(), Some(r.meta.id));
            self.by_id.insert(r.meta.id, r);
        }
    }
}

/// The kinds an import reads or writes, each with its [`Cache`].
pub(super) trait Cached: Object {
    /// This kind's cache in `v`.
    fn cache(v: &mut View) -> &mut Cache<Self>;
}

macro_rules! cached {
    ($($t:ident => $f:ident),* $(,)?) => {
        /// One cache per kind.
        #[derive(Default)]
        pub(super) struct Caches {
            $(pub(super) $f: Cache<$t>,)*
        }
        $(impl Cached for $t {
            fn cache(v: &mut View) -> &mut Cache<Self> {
                &mut v.c.$f
            }
        })*
    };
}

cached!(
    Account => accounts,
    Plan => plans,
    Cluster => clusters,
    Domain => domains,
    Site => sites,
    Mailbox => mailboxes,
    MailAlias => aliases,
    DnsRecord => records,
    FtpAccount => ftp,
    Database => databases,
    DbUser => db_users,
);

/// A zone record as the coexistence rules see it, with its TTL (a re-run compares it).
pub(super) type ZoneRecord = (RecordName, RecordData, Option<u32>);

/// The request's picture of the store (see the module doc).
#[derive(Default)]
pub struct View {
    /// Objects per kind.
    pub(super) c: Caches,
    /// Unique keys (`ns`, key): `Some` held by (kind, id), `None` free.
    keys: HashMap<(String, String), Option<(Kind, Id)>>,
    /// Names held under each registrable domain, as `Tx::domains_under` gives them.
    holders: HashMap<String, Vec<(Id, String, Option<Id>)>>,
    /// Objects per (owner, kind), for plan limits.
    counts: HashMap<(Id, Kind), i64>,
    /// Owners whose counters are in `counts`.
    counted: HashSet<Id>,
    /// Each zone's records, for the coexistence rules.
    zones: HashMap<Id, Vec<ZoneRecord>>,
}

impl View {
    /// The object of kind `T` named `name`, if it exists (stored or created earlier
    /// in this request).
    pub(super) async fn by_name<T: Cached>(
        &mut self,
        tx: &mut Tx,
        name: &str,
    ) -> Res<Option<Stored<T>>> {
        let known = T::cache(self).by_name.get(name).copied();
        let id = match known {
            Some(id) => id,
            None => {
                let rows = tx.get_many_by_name::<T>(&[name.to_owned()]).await?;
                let id = rows.first().map(|r| r.meta.id);
                T::cache(self).fill(rows, &[name.to_owned()]);
                id
            }
        };
        Ok(id.and_then(|id| T::cache(self).by_id.get(&id).cloned()))
    }

    /// The object of kind `T` with id `id`, if it exists.
    pub(super) async fn by_id<T: Cached>(&mut self, tx: &mut Tx, id: Id) -> Res<Option<Stored<T>>> {
        if let Some(o) = T::cache(self).by_id.get(&id) {
            return Ok(Some(o.clone()));
        }
        let rows = tx.get_many::<T>(&[id]).await?;
        let found = rows.first().cloned();
        T::cache(self).fill(rows, &[]);
        Ok(found)
    }

    /// Who holds unique key `key` of namespace `ns`, if anyone.
    pub(super) async fn key(
        &mut self,
        tx: &mut Tx,
        ns: &str,
        key: &str,
    ) -> Res<Option<(Kind, Id)>> {
        let k = (ns.to_owned(), key.to_owned());
        if let Some(h) = self.keys.get(&k) {
            return Ok(*h);
        }
        self.load_keys(tx, ns, vec![key.to_owned()]).await?;
        Ok(self.keys.get(&k).copied().flatten())
    }

    /// The names held under registrable domain `reg`, as (id, name, owner).
    pub(super) async fn holders(
        &mut self,
        tx: &mut Tx,
        reg: &str,
    ) -> Res<Vec<(Id, String, Option<Id>)>> {
        if !self.holders.contains_key(reg) {
            self.load_holders(tx, vec![reg.to_owned()]).await?;
        }
        Ok(self.holders.get(reg).cloned().unwrap_or_default())
    }

    /// How many objects of `kind` account `owner` holds.
    pub(super) async fn count(&mut self, tx: &mut Tx, owner: Id, kind: Kind) -> Res<i64> {
        if !self.counted.contains(&owner) {
            self.load_counts(tx, vec![owner]).await?;
        }
        Ok(self.counts.get(&(owner, kind)).copied().unwrap_or(0))
    }

    /// The records of zone (domain) `domain`.
    pub(super) async fn zone(&mut self, tx: &mut Tx, domain: Id) -> Res<&mut Vec<ZoneRecord>> {
        if !self.zones.contains_key(&domain) {
            self.load_zones(tx, vec![domain]).await?;
        }
        Ok(self.zones.entry(domain).or_default())
    }

    /// Add an object this request creates under id `id`: later lines find it by
    /// name, id and unique keys, and its owner's counter counts it. The caller adds
    /// a domain to its registrable domain's holders ([`View::hold`]) and a record to
    /// its zone ([`View::zone`]).
    pub(super) async fn create<T: Cached>(
        &mut self,
        tx: &mut Tx,
        id: Id,
        obj: NewObject<T>,
    ) -> Res<Stored<T>> {
        // An account other than an admin owns itself (as the store makes it).
        let owner = match obj.owner {
            Some(o) => Some(o),
            None if T::KIND == Kind::Account => Some(id),
            None => None,
        };
        if let Some(o) = owner {
            if o == id {
                // A new account: nothing counted yet.
                self.counted.insert(o);
            } else {
                self.count(tx, o, T::KIND).await?;
            }
            *self.counts.entry((o, T::KIND)).or_default() += 1;
        }
        for k in obj.data.unique_keys(&obj.name) {
            self.keys
                .insert((k.ns.to_owned(), k.key), Some((T::KIND, id)));
        }
        if T::KIND == Kind::Domain {
            self.zones.insert(id, Vec::new());
        }
        let at = time::OffsetDateTime::now_utc();
        let stored = Stored {
            meta: Meta {
                id,
                name: obj.name.clone(),
                owner,
                reseller: None,
                parent: obj.parent,
                created_rev: tx.revision(),
                updated_rev: tx.revision(),
                created_at: at,
                updated_at: at,
            },
            data: obj.data.clone(),
        };
        let cache = T::cache(self);
        cache.by_name.insert(obj.name.clone(), Some(id));
        cache.by_id.insert(id, stored.clone());
        cache.new.push((id, obj));
        Ok(stored)
    }

    /// A domain created by this request now holds a name under `reg` (whose holders
    /// the caller read first with [`View::holders`]).
    pub(super) fn hold(&mut self, reg: &str, id: Id, name: &str, owner: Id) {
        self.holders
            .entry(reg.to_owned())
            .or_default()
            .push((id, name.to_owned(), Some(owner)));
    }

    async fn load_keys(&mut self, tx: &mut Tx, ns: &str, keys: Vec<String>) -> Res<()> {
        let keys: Vec<String> = keys
            .into_iter()
            .filter(|k| !self.keys.contains_key(&(ns.to_owned(), k.clone())))
            .collect();
        if keys.is_empty() {
            return Ok(());
        }
        let held = tx.find_keys(ns, &keys).await?;
        for k in keys {
            self.keys.insert((ns.to_owned(), k), None);
        }
        for (k, kind, id) in held {
            self.keys.insert((ns.to_owned(), k), Some((kind, id)));
        }
        Ok(())
    }

    async fn load_holders(&mut self, tx: &mut Tx, regs: Vec<String>) -> Res<()> {
        let regs: Vec<String> = regs
            .into_iter()
            .filter(|r| !self.holders.contains_key(r))
            .collect();
        if regs.is_empty() {
            return Ok(());
        }
        let rows = tx.domains_under_many(&regs).await?;
        for r in regs {
            self.holders.insert(r, Vec::new());
        }
        // Rows come in id order, as `Tx::domains_under` gives them.
        for (reg, id, name, owner) in rows {
            self.holders.entry(reg).or_default().push((id, name, owner));
        }
        Ok(())
    }

    async fn load_counts(&mut self, tx: &mut Tx, owners: Vec<Id>) -> Res<()> {
        let owners: Vec<Id> = owners
            .into_iter()
            .filter(|o| !self.counted.contains(o))
            .collect();
        if owners.is_empty() {
            return Ok(());
        }
        for (owner, kind, n) in tx.counts_owned_many(&owners).await? {
            self.counts.insert((owner, kind), n);
        }
        self.counted.extend(owners);
        Ok(())
    }

    async fn load_zones(&mut self, tx: &mut Tx, domains: Vec<Id>) -> Res<()> {
        let domains: Vec<Id> = domains
            .into_iter()
            .filter(|d| !self.zones.contains_key(d))
            .collect();
        if domains.is_empty() {
            return Ok(());
        }
        let rows = tx.children_of_many::<DnsRecord>(&domains).await?;
        for d in domains {
            self.zones.insert(d, Vec::new());
        }
        for r in rows {
            if let Some(p) = r.meta.parent {
                self.zones
                    .entry(p)
                    .or_default()
                    .push((r.data.name, r.data.data, r.data.ttl));
            }
        }
        Ok(())
    }

    /// Load by name the objects of kind `T` among `names` not known yet.
    async fn load_names<T: Cached>(&mut self, tx: &mut Tx, names: BTreeSet<String>) -> Res<()> {
        let names: Vec<String> = {
            let cache = T::cache(self);
            names
                .into_iter()
                .filter(|n| !cache.by_name.contains_key(n))
                .collect()
        };
        if names.is_empty() {
            return Ok(());
        }
        let rows = tx.get_many_by_name::<T>(&names).await?;
        T::cache(self).fill(rows, &names);
        Ok(())
    }

    /// Read in bulk what `lines` will ask about (a few statements per kind). Names
    /// are normalised as the rules do; one this misses is read when asked.
    pub(super) async fn prefetch(&mut self, tx: &mut Tx, lines: &[&ImportLine]) -> Res<()> {
        let mut n = Names::default();
        for line in lines {
            n.add(line);
        }
        self.load_names::<Account>(tx, n.accounts).await?;
        self.load_names::<Plan>(tx, n.plans).await?;
        self.load_names::<Cluster>(tx, n.clusters).await?;
        self.load_names::<Domain>(tx, n.domains.clone()).await?;
        self.load_names::<Site>(tx, n.sites).await?;
        self.load_names::<Mailbox>(tx, n.addresses.clone()).await?;
        self.load_names::<MailAlias>(tx, n.addresses.clone())
            .await?;
        self.load_names::<FtpAccount>(tx, n.ftp).await?;
        self.load_names::<Database>(tx, n.databases).await?;
        self.load_names::<DbUser>(tx, n.db_users).await?;
        self.load_keys(
            tx,
            model::entity::MAIL_ADDRESS_NS,
            n.addresses.into_iter().collect(),
        )
        .await?;
        self.load_keys(
            tx,
            model::entity::HOSTNAME_NS,
            n.hostnames.into_iter().collect(),
        )
        .await?;
        self.load_holders(tx, n.registrables.into_iter().collect())
            .await?;
        // Counters of every account involved; zones of the domains given records.
        let mut owners: Vec<Id> = self.c.accounts.by_id.keys().copied().collect();
        owners.extend(self.c.domains.by_id.values().filter_map(|d| d.meta.owner));
        owners.sort_unstable();
        owners.dedup();
        owners.retain(|o| *o > 0);
        self.load_counts(tx, owners).await?;
        let zones: Vec<Id> = n
            .zones
            .iter()
            .filter_map(|d| self.c.domains.by_name.get(d).copied().flatten())
            .filter(|id| *id > 0)
            .collect();
        self.load_zones(tx, zones).await
    }
}

/// The names a window of lines refers to, normalised like the rules normalise them.
#[derive(Default)]
struct Names {
    accounts: BTreeSet<String>,
    plans: BTreeSet<String>,
    clusters: BTreeSet<String>,
    domains: BTreeSet<String>,
    sites: BTreeSet<String>,
    addresses: BTreeSet<String>,
    hostnames: BTreeSet<String>,
    registrables: BTreeSet<String>,
    zones: BTreeSet<String>,
    ftp: BTreeSet<String>,
    databases: BTreeSet<String>,
    db_users: BTreeSet<String>,
}

impl Names {
    /// The canonical form of a domain name, if it is one.
    fn domain(name: &str) -> Option<DomainName> {
        DomainName::new(name).ok()
    }

    /// The domain a line names, remembered; its canonical name.
    fn add_domain(&mut self, name: &str) -> Option<String> {
        let d = Self::domain(name)?.to_string();
        self.domains.insert(d.clone());
        Some(d)
    }

    /// A mail address and its domain.
    fn add_address(&mut self, input: &str) {
        let Ok(addr) = EmailAddress::new(input) else {
            return;
        };
        let Ok(local) = LocalPart::new(addr.local_part()) else {
            return;
        };
        if let Some(d) = Self::domain(addr.domain()) {
            self.domains.insert(d.to_string());
            self.addresses
                .insert(EmailAddress::from_parts(&local, &d).to_string());
        }
    }

    fn add(&mut self, line: &ImportLine) {
        match line {
            ImportLine::Customer {
                name,
                reseller,
                plan,
                ..
            } => {
                self.accounts.insert(name.clone());
                self.accounts.extend(reseller.iter().cloned());
                self.plans.extend(plan.iter().cloned());
            }
            ImportLine::Domain { name, customer } => {
                self.accounts.insert(customer.clone());
                if let Some(d) = Self::domain(name) {
                    if let Ok(reg) = model::namespace::registrable(&d) {
                        self.registrables.insert(reg.to_string());
                    }
                    self.domains.insert(d.to_string());
                }
            }
            ImportLine::Site {
                domain, aliases, ..
            } => {
                if let Some(d) = self.add_domain(domain) {
                    self.sites.insert(d.clone());
                    self.hostnames.insert(d);
                }
                for a in aliases {
                    if let Some(a) = Self::domain(a) {
                        self.hostnames.insert(a.to_string());
                        // The customer's domains an alias may sit in: it and its parents.
                        let mut name = a.to_string();
                        loop {
                            self.domains.insert(name.clone());
                            match name.split_once('.') {
                                Some((_, rest)) if rest.contains('.') => name = rest.to_owned(),
                                _ => break,
                            }
                        }
                    }
                }
            }
            ImportLine::Mailbox { address, .. } | ImportLine::Alias { address, .. } => {
                self.add_address(address);
            }
            ImportLine::DnsRecord { domain, .. } => {
                if let Some(d) = self.add_domain(domain) {
                    self.zones.insert(d);
                }
            }
            ImportLine::FtpAccount {
                username, domain, ..
            } => {
                self.ftp.insert(username.clone());
                self.add_domain(domain);
            }
            ImportLine::Database {
                name,
                customer,
                cluster,
                domain,
                ..
            } => {
                self.databases.insert(name.clone());
                self.accounts.insert(customer.clone());
                self.clusters.extend(cluster.iter().cloned());
                if let Some(d) = domain {
                    self.add_domain(d);
                }
            }
            ImportLine::DbUser {
                name,
                customer,
                databases,
                ..
            } => {
                self.db_users.insert(name.clone());
                self.accounts.insert(customer.clone());
                self.databases.extend(databases.iter().cloned());
            }
        }
    }
}
