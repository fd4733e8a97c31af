//! One import line applied inside the chunk's transaction, with the API's rules:
//! model newtypes with `.field(..)`, name ownership per registrable domain
//! (`ownership::decide`), plan limits (`limits::check_count`, `limits::quota`),
//! placement by `scheduler::place_domain` / `pick_single_server`, DNS coexistence
//! (`api::dns::coexist`), alias destinations (`api::mail::destinations`).

use std::collections::{BTreeMap, BTreeSet};

use model::dns::RecordName;
use model::entity::{
    Account, Cluster, DnsRecord, Domain, FtpAccount, Kind, MailAlias, Mailbox, Plan, Site,
};
use model::limits::{LimitField, Limits};
use model::namespace::registrable;
use model::{
    AccountKind, DomainName, EmailAddress, FtpUsername, Id, LocalPart, PlacementMode, RelPath,
    Role, Slug, WithField,
};
use proto::v1_import::ImportLine;
use scheduler::{pick_single_server, place_domain, DomainRequest, Snapshot};
use store::{NewObject, Stored, Tx};

use super::diff::{diff, same_hash};
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;

/// What a line did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Applied {
    /// A new object.
    Created,
    /// An identical object was there.
    Skipped,
}

/// Why a line did nothing.
#[derive(Debug)]
pub enum LineError {
    /// The line breaks a rule or differs from what exists: the reason.
    Refused(String),
    /// The store failed: the chunk is abandoned.
    Store(ApiError),
}

impl From<ApiError> for LineError {
    fn from(e: ApiError) -> Self {
        // A 5xx is the store's or ours, not the line's.
        if e.status.is_server_error() {
            LineError::Store(e)
        } else {
            LineError::Refused(reason(&e))
        }
    }
}

impl From<store::StoreError> for LineError {
    fn from(e: store::StoreError) -> Self {
        LineError::from(ApiError::from(e))
    }
}

/// `message (field `f`, rule `r`)`.
fn reason(e: &ApiError) -> String {
    let b = &e.body;
    match (&b.field, &b.rule) {
        (Some(f), Some(r)) => format!("{} (field `{f}`, rule `{r}`)", b.message),
        (Some(f), None) => format!("{} (field `{f}`)", b.message),
        _ => b.message.clone(),
    }
}

pub(super) fn refused(msg: impl Into<String>) -> LineError {
    LineError::Refused(msg.into())
}

pub(super) type LineResult = Result<Applied, LineError>;

/// What a chunk reads once: the scheduler's views and the default plan.
pub struct Context {
    pub(super) clusters: Snapshot,
    placement: Snapshot,
    pub(super) default_plan: Limits,
    verified_clusters: BTreeSet<Id>,
    picked: Vec<Id>,
}

impl Context {
    /// Read the snapshots (before the transaction, like the API's handlers).
    pub async fn new(state: &AppState) -> ApiResult<Self> {
        Ok(Self {
            clusters: crate::placement::cluster_snapshot(state).await?,
            placement: crate::placement::placement_snapshot(state).await?,
            default_plan: state.config.default_plan,
            verified_clusters: BTreeSet::new(),
            picked: Vec::new(),
        })
    }

    /// Tell the in-memory site loads about the sites placed by a committed chunk.
    pub fn after_commit(&self, state: &AppState) {
        for s in &self.picked {
            state.site_loads.picked(*s);
        }
    }

    /// Apply one line.
    pub async fn apply(&mut self, tx: &mut Tx, line: &ImportLine) -> LineResult {
        match line {
            ImportLine::Customer {
                name,
                display_name,
                email,
                reseller,
                password_hash,
                plan,
            } => {
                self.customer(tx, name, display_name, email, reseller, password_hash, plan)
                    .await
            }
            ImportLine::Domain { name, customer } => self.domain(tx, name, customer).await,
            ImportLine::Site {
                domain,
                aliases,
                php,
                mode,
                https_redirect,
            } => {
                self.site(tx, domain, aliases, *php, mode.as_deref(), *https_redirect)
                    .await
            }
            ImportLine::Mailbox {
                address,
                password_hash,
                quota_mb,
                display_name,
            } => {
                self.mailbox(tx, address, password_hash, *quota_mb, display_name)
                    .await
            }
            ImportLine::Alias {
                address,
                destinations,
            } => self.alias(tx, address, destinations).await,
            ImportLine::DnsRecord {
                domain,
                name,
                ttl,
                data,
            } => self.record(tx, domain, name, *ttl, data).await,
            ImportLine::FtpAccount {
                username,
                domain,
                password_hash,
                home,
                quota_mb,
            } => {
                self.ftp(
                    tx,
                    username,
                    domain,
                    password_hash,
                    home.as_deref(),
                    *quota_mb,
                )
                .await
            }
            ImportLine::Database {
                name,
                engine,
                customer,
                cluster,
                domain,
            } => {
                self.database(
                    tx,
                    name,
                    engine,
                    customer,
                    cluster.as_deref(),
                    domain.as_deref(),
                )
                .await
            }
            ImportLine::DbUser {
                name,
                engine,
                customer,
                password_verifier,
                databases,
            } => {
                self.db_user(tx, name, engine, customer, password_verifier, databases)
                    .await
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    async fn customer(
        &mut self,
        tx: &mut Tx,
        name: &str,
        display_name: &Option<String>,
        email: &Option<String>,
        reseller: &Option<String>,
        password_hash: &Option<String>,
        plan: &Option<String>,
    ) -> LineResult {
        let name = Slug::new(name).field("name").map_err(ApiError::from)?;
        let display_name =
            crate::api::text_field(display_name.clone(), "display_name", 200)?.unwrap_or_default();
        let email = email
            .as_deref()
            .map(EmailAddress::new)
            .transpose()
            .field("email")
            .map_err(ApiError::from)?;
        if let Some(h) = password_hash {
            passhash::scheme(h)
                .map_err(|e| ApiError::invalid("password_hash", "hash_scheme", e.to_string()))?;
        }
        let reseller_id = match reseller.as_deref() {
            None => None,
            Some(r) => match tx.get_by_name::<Account>(r).await? {
                Some(a) if a.data.kind == AccountKind::Reseller => Some(a.meta.id),
                _ => {
                    return Err(ApiError::invalid(
                        "reseller",
                        "unknown_reseller",
                        format!("there is no reseller `{r}`"),
                    )
                    .into())
                }
            },
        };
        let plan_id = match plan.as_deref() {
            None => None,
            Some(p) => match tx.get_by_name::<Plan>(p).await? {
                Some(pl) if pl.meta.owner.is_none() || pl.meta.owner == reseller_id => {
                    Some(pl.meta.id)
                }
                _ => {
                    return Err(ApiError::invalid(
                        "plan",
                        "unknown_plan",
                        format!("there is no plan `{p}` for this account"),
                    )
                    .into())
                }
            },
        };
        if let Some(cur) = tx.get_by_name::<Account>(name.as_str()).await? {
            let a = &cur.data;
            let hash_same = match (&a.password_hash, password_hash) {
                (Some(s), Some(f)) => same_hash(s, f),
                (None, None) => true,
                _ => false,
            };
            let show = |o: &Option<String>| o.clone().unwrap_or_default();
            let d = diff(&[
                (
                    "kind",
                    a.kind.to_string(),
                    AccountKind::Customer.to_string(),
                ),
                ("display_name", a.display_name.clone(), display_name),
                (
                    "email",
                    a.email
                        .as_ref()
                        .map(ToString::to_string)
                        .unwrap_or_default(),
                    email.map(|e| e.to_string()).unwrap_or_default(),
                ),
                (
                    "reseller",
                    format!("{:?}", a.reseller),
                    format!("{reseller_id:?}"),
                ),
                ("plan", format!("{:?}", a.plan), format!("{plan_id:?}")),
                (
                    "password_hash",
                    if hash_same {
                        String::new()
                    } else {
                        "(stored hash)".into()
                    },
                    if hash_same {
                        String::new()
                    } else {
                        show(password_hash)
                    },
                ),
            ]);
            return same_or(d);
        }
        tx.create(NewObject {
            name: name.to_string(),
            owner: None,
            parent: reseller_id,
            data: Account {
                name,
                kind: AccountKind::Customer,
                display_name,
                email,
                reseller: reseller_id,
                default_clusters: BTreeMap::new(),
                password_hash: password_hash.clone(),
                disabled: false,
                db_quota_mb: None,
                plan: plan_id,
                limits: Default::default(),
                may_choose_clusters: false,
            },
        })
        .await?;
        Ok(Applied::Created)
    }

    pub(super) async fn customer_named(
        &self,
        tx: &mut Tx,
        name: &str,
    ) -> Result<Stored<Account>, LineError> {
        match tx.get_by_name::<Account>(name).await? {
            Some(a) if a.data.kind == AccountKind::Customer => Ok(a),
            _ => Err(ApiError::invalid(
                "customer",
                "unknown_customer",
                format!("there is no customer `{name}` (put its customer line before it)"),
            )
            .into()),
        }
    }

    pub(super) async fn domain_named(
        &self,
        tx: &mut Tx,
        field: &str,
        name: &str,
    ) -> Result<Stored<Domain>, LineError> {
        let dn = DomainName::new(name).field(field).map_err(ApiError::from)?;
        tx.get_by_name::<Domain>(dn.as_str()).await?.ok_or_else(|| {
            ApiError::invalid(
                field,
                "unknown_domain",
                format!("there is no domain `{dn}` (put its domain line before it)"),
            )
            .into()
        })
    }

    async fn domain(&mut self, tx: &mut Tx, name: &str, customer: &str) -> LineResult {
        let name = DomainName::new(name)
            .field("name")
            .map_err(ApiError::from)?;
        let owner = self.customer_named(tx, customer).await?;
        if let Some(cur) = tx.get_by_name::<Domain>(name.as_str()).await? {
            let stored_owner = match tx.get::<Account>(cur.data.customer).await? {
                Some(a) => a.meta.name,
                None => String::new(),
            };
            return same_or(diff(&[("customer", stored_owner, owner.meta.name.clone())]));
        }
        // Name ownership as for the API: one account per registrable domain (an
        // import proves no TXT challenge).
        let reg = registrable(&name).field("name").map_err(ApiError::from)?;
        let holders = tx.domains_under(reg.as_str()).await?;
        if let Err(crate::ownership::Refusal::OwnedElsewhere(names)) =
            crate::ownership::decide(owner.meta.id, &holders, false)
        {
            return Err(ApiError::conflict(
                "name",
                format!(
                    "names under `{reg}` belong to another account ({}); an admin transfer moves them",
                    names.join(", ")
                ),
            )
            .with_rule("namespace_owned")
            .into());
        }
        let customer_defaults = owner
            .data
            .default_clusters
            .iter()
            .filter(|(r, _)| Role::DOMAIN_ROLES.contains(r))
            .map(|(r, c)| (*r, *c))
            .collect();
        let plan = place_domain(
            &self.clusters,
            &DomainRequest {
                roles: Role::DOMAIN_ROLES.to_vec(),
                explicit: BTreeMap::new(),
                customer_defaults,
            },
        )
        .map_err(|e| ApiError::infeasible(e.to_string()))?;
        for (role, id) in &plan.placements {
            if self.verified_clusters.contains(id) {
                continue;
            }
            match tx.get::<Cluster>(*id).await? {
                Some(c) if c.data.role == *role => {
                    self.verified_clusters.insert(*id);
                }
                _ => {
                    return Err(refused(format!(
                        "the {role} cluster chosen was removed meanwhile; run the import again"
                    )))
                }
            }
        }
        crate::limits::check_count(tx, &self.default_plan, owner.meta.id, Kind::Domain).await?;
        tx.create(NewObject {
            name: name.to_string(),
            owner: Some(owner.meta.id),
            parent: Some(owner.meta.id),
            data: Domain {
                name,
                customer: owner.meta.id,
                placements: plan.placements,
            },
        })
        .await?;
        Ok(Applied::Created)
    }

    async fn site(
        &mut self,
        tx: &mut Tx,
        domain: &str,
        aliases: &[String],
        php: bool,
        mode: Option<&str>,
        https_redirect: bool,
    ) -> LineResult {
        let domain = self.domain_named(tx, "domain", domain).await?;
        let mode = match mode {
            Some(m) => m
                .parse::<PlacementMode>()
                .field("mode")
                .map_err(ApiError::from)?,
            None => PlacementMode::Single,
        };
        let aliases = self
            .site_aliases(tx, domain.data.customer, &domain.data.name, aliases)
            .await?;
        if let Some(cur) = tx.get_by_name::<Site>(&domain.meta.name).await? {
            let s = &cur.data;
            let list = |a: &[DomainName]| {
                a.iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join(",")
            };
            return same_or(diff(&[
                ("php", s.php.to_string(), php.to_string()),
                ("mode", s.mode.to_string(), mode.to_string()),
                (
                    "https_redirect",
                    s.https_redirect.to_string(),
                    https_redirect.to_string(),
                ),
                ("aliases", list(&s.aliases), list(&aliases)),
            ]));
        }
        let active_server = if mode == PlacementMode::All {
            None
        } else {
            self.pick(&domain.data)
        };
        let data = Site {
            domain: domain.meta.id,
            aliases,
            php,
            mode,
            https_redirect,
            active_server,
            deployment: None,
            previous_deployments: Vec::new(),
        };
        for k in &model::entity::Object::unique_keys(&data, &domain.meta.name) {
            if tx.find_key(k.ns, &k.key).await?.is_some() {
                return Err(ApiError::conflict(
                    "aliases",
                    format!("host name `{}` is already served by another site", k.key),
                )
                .into());
            }
        }
        tx.create(NewObject {
            name: domain.meta.name.clone(),
            owner: domain.meta.owner,
            parent: Some(domain.meta.id),
            data,
        })
        .await?;
        if let Some(s) = active_server {
            self.picked.push(s);
        }
        Ok(Applied::Created)
    }

    /// The least-loaded usable server of the domain's web cluster; counts the pick in
    /// this chunk's view so a bulk import spreads its sites.
    fn pick(&mut self, domain: &Domain) -> Option<Id> {
        let cluster_id = *domain.placements.get(&Role::Web)?;
        let cluster = self
            .placement
            .clusters
            .iter_mut()
            .find(|c| c.id == cluster_id)?;
        let server = pick_single_server(cluster)?;
        if let Some(s) = cluster.servers.iter_mut().find(|s| s.id == server) {
            s.load = s.load.saturating_add(1);
        }
        Some(server)
    }

    async fn site_aliases(
        &self,
        tx: &mut Tx,
        customer: Id,
        domain: &DomainName,
        list: &[String],
    ) -> Result<Vec<DomainName>, LineError> {
        if list.is_empty() {
            return Ok(Vec::new());
        }
        if list.len() > 100 {
            return Err(refused("a site has at most 100 aliases (field `aliases`)"));
        }
        let owned: Vec<DomainName> = tx
            .owned::<Domain>(customer)
            .await?
            .into_iter()
            .map(|d| d.data.name)
            .collect();
        let mut out: Vec<DomainName> = Vec::new();
        for (i, a) in list.iter().enumerate() {
            let field = format!("aliases[{i}]");
            let name = DomainName::new(a).field(&field).map_err(ApiError::from)?;
            if &name == domain || out.contains(&name) {
                return Err(ApiError::invalid(
                    field,
                    "duplicate",
                    format!("`{name}` is listed twice"),
                )
                .into());
            }
            if !owned.iter().any(|d| name.is_within(d)) {
                return Err(ApiError::invalid(
                    field,
                    "not_in_own_domain",
                    format!("`{name}` is not inside one of this customer's domains; add the domain first"),
                )
                .into());
            }
            out.push(name);
        }
        Ok(out)
    }

    /// `local@domain` of an existing domain, canonical.
    async fn address(
        &self,
        tx: &mut Tx,
        input: &str,
    ) -> Result<(EmailAddress, LocalPart, Stored<Domain>), LineError> {
        let addr = EmailAddress::new(input)
            .field("address")
            .map_err(ApiError::from)?;
        let local = LocalPart::new(addr.local_part())
            .field("address")
            .map_err(ApiError::from)?;
        let domain = self.domain_named(tx, "address", addr.domain()).await?;
        let addr = EmailAddress::from_parts(&local, &domain.data.name);
        Ok((addr, local, domain))
    }

    /// Refuse an address held by the other kind (mailbox vs alias).
    async fn address_free(&self, tx: &mut Tx, addr: &EmailAddress) -> Result<(), LineError> {
        if let Some((kind, _)) = tx.find_key("mail_address", addr.as_str()).await? {
            return Err(ApiError::conflict(
                "address",
                format!("`{addr}` is already a {}", kind.as_str().replace('_', " ")),
            )
            .into());
        }
        Ok(())
    }

    async fn mailbox(
        &mut self,
        tx: &mut Tx,
        address: &str,
        password_hash: &str,
        quota_mb: Option<u64>,
        display_name: &Option<String>,
    ) -> LineResult {
        let (addr, local, domain) = self.address(tx, address).await?;
        passhash::scheme(password_hash)
            .map_err(|e| ApiError::invalid("password_hash", "hash_scheme", e.to_string()))?;
        let display_name =
            crate::api::text_field(display_name.clone(), "display_name", 200)?.unwrap_or_default();
        if let Some(cur) = tx.get_by_name::<Mailbox>(addr.as_str()).await? {
            let m = &cur.data;
            let hash_same = same_hash(&m.password_hash, password_hash);
            return same_or(diff(&[
                ("display_name", m.display_name.clone(), display_name),
                (
                    "quota_mb",
                    m.quota_mb.to_string(),
                    quota_mb.unwrap_or(m.quota_mb).to_string(),
                ),
                (
                    "password_hash",
                    if hash_same {
                        String::new()
                    } else {
                        "(stored hash)".into()
                    },
                    if hash_same {
                        String::new()
                    } else {
                        password_hash.to_owned()
                    },
                ),
            ]));
        }
        self.address_free(tx, &addr).await?;
        let mut quota = 0;
        if let Some(owner) = domain.meta.owner {
            crate::limits::check_count(tx, &self.default_plan, owner, Kind::Mailbox).await?;
            let limits = crate::limits::limits_of(tx, &self.default_plan, owner).await?;
            quota = crate::limits::quota(
                &limits,
                LimitField::MaxMailboxQuotaMb,
                "quota_mb",
                quota_mb,
                1024,
                None,
            )?;
        }
        tx.create(NewObject {
            name: addr.to_string(),
            owner: domain.meta.owner,
            parent: Some(domain.meta.id),
            data: Mailbox {
                domain: domain.meta.id,
                local_part: local,
                password_hash: password_hash.to_owned(),
                quota_mb: quota,
                display_name,
                enabled: true,
            },
        })
        .await?;
        Ok(Applied::Created)
    }

    async fn alias(&mut self, tx: &mut Tx, address: &str, destinations: &[String]) -> LineResult {
        let (addr, local, domain) = self.address(tx, address).await?;
        let dests = crate::api::mail::destinations(destinations)?;
        if dests.contains(&addr) {
            return Err(ApiError::invalid(
                "destinations",
                "loop",
                "an alias cannot forward to itself",
            )
            .into());
        }
        if let Some(cur) = tx.get_by_name::<MailAlias>(addr.as_str()).await? {
            let list = |d: &[EmailAddress]| {
                let mut v: Vec<String> = d.iter().map(ToString::to_string).collect();
                v.sort();
                v.join(",")
            };
            return same_or(diff(&[(
                "destinations",
                list(&cur.data.destinations),
                list(&dests),
            )]));
        }
        self.address_free(tx, &addr).await?;
        tx.create(NewObject {
            name: addr.to_string(),
            owner: domain.meta.owner,
            parent: Some(domain.meta.id),
            data: MailAlias {
                domain: domain.meta.id,
                local_part: local,
                destinations: dests,
            },
        })
        .await?;
        Ok(Applied::Created)
    }

    async fn record(
        &mut self,
        tx: &mut Tx,
        domain: &str,
        name: &str,
        ttl: Option<u32>,
        data: &serde_json::Value,
    ) -> LineResult {
        let domain = self.domain_named(tx, "domain", domain).await?;
        let name = RecordName::new(name)
            .field("name")
            .map_err(ApiError::from)?;
        name.check_in_zone(&domain.data.name)
            .field("name")
            .map_err(ApiError::from)?;
        let data = crate::api::dns::parse_data(data.clone(), &name)?;
        let ttl = crate::api::dns::ttl(ttl)?;
        // Records are many per name: an identical one means this line ran before.
        let existing = tx.children::<DnsRecord>(domain.meta.id).await?;
        if existing
            .iter()
            .any(|r| r.data.name == name && r.data.data == data && r.data.ttl == ttl)
        {
            return Ok(Applied::Skipped);
        }
        crate::api::dns::insert_record(tx, &domain, name, ttl, data).await?;
        Ok(Applied::Created)
    }

    async fn ftp(
        &mut self,
        tx: &mut Tx,
        username: &str,
        domain: &str,
        password_hash: &str,
        home: Option<&str>,
        quota_mb: Option<u64>,
    ) -> LineResult {
        let username = FtpUsername::new(username)
            .field("username")
            .map_err(ApiError::from)?;
        let domain = self.domain_named(tx, "domain", domain).await?;
        let home = match home {
            Some(h) => RelPath::new(h).field("home").map_err(ApiError::from)?,
            None => RelPath::root(),
        };
        passhash::scheme(password_hash)
            .map_err(|e| ApiError::invalid("password_hash", "hash_scheme", e.to_string()))?;
        if let Some(cur) = tx.get_by_name::<FtpAccount>(username.as_str()).await? {
            let f = &cur.data;
            let hash_same = same_hash(&f.password_hash, password_hash);
            let stored_domain = match tx.get::<Domain>(f.domain).await? {
                Some(d) => d.meta.name,
                None => String::new(),
            };
            return same_or(diff(&[
                ("domain", stored_domain, domain.meta.name.clone()),
                ("home", f.home.to_string(), home.to_string()),
                (
                    "quota_mb",
                    f.quota_mb.to_string(),
                    quota_mb.unwrap_or(f.quota_mb).to_string(),
                ),
                (
                    "password_hash",
                    if hash_same {
                        String::new()
                    } else {
                        "(stored hash)".into()
                    },
                    if hash_same {
                        String::new()
                    } else {
                        password_hash.to_owned()
                    },
                ),
            ]));
        }
        let mut quota = 0;
        if let Some(owner) = domain.meta.owner {
            crate::limits::check_count(tx, &self.default_plan, owner, Kind::FtpAccount).await?;
            let limits = crate::limits::ftp_limits(
                crate::limits::limits_of(tx, &self.default_plan, owner).await?,
            );
            quota = crate::limits::quota(
                &limits,
                LimitField::MaxFtpQuotaMb,
                "quota_mb",
                quota_mb,
                limits.max_ftp_quota_mb,
                None,
            )?;
        }
        tx.create(NewObject {
            name: username.to_string(),
            owner: domain.meta.owner,
            parent: Some(domain.meta.id),
            data: FtpAccount {
                domain: domain.meta.id,
                username,
                password_hash: password_hash.to_owned(),
                home,
                quota_mb: quota,
            },
        })
        .await?;
        Ok(Applied::Created)
    }
}

/// Skipped when identical, refused with the difference otherwise.
pub(super) fn same_or(d: Option<String>) -> LineResult {
    match d {
        None => Ok(Applied::Skipped),
        Some(why) => Err(LineError::Refused(why)),
    }
}
