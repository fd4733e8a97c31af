//! One import line checked with the API's rules against the request's [`View`] of
//! the store, and, if it passes, added to it: model newtypes with `.field(..)`,
//! plan limits (`limits::check_used`, `limits::quota`), placement by
//! `scheduler::place_domain` / `pick_single_server`. This file holds what every
//! line shares (outcomes, the context, ids, lookups, limits) and the dispatch;
//! accounts and domains are in `accounts.rs`, sites, mail, DNS and FTP in
//! `services.rs`, databases in `db.rs`.

use std::collections::BTreeSet;
use std::ops::Range;

use model::entity::{Account, Domain, Kind, Plan};
use model::limits::{effective_limits, Limits};
use model::{AccountKind, DomainName, Id, WithField};
use proto::v1_import::ImportLine;
use scheduler::Snapshot;
use store::{NewObject, Stored, Tx};

use super::view::{Cached, View};
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

/// Skipped when identical, refused with the difference otherwise.
pub(super) fn same_or(d: Option<String>) -> LineResult {
    match d {
        None => Ok(Applied::Skipped),
        Some(why) => Err(LineError::Refused(why)),
    }
}

/// Where the ids of new objects come from.
enum Ids {
    /// A dry run: stand-ins below zero, never written.
    StandIn(Id),
    /// Ids the store reserved for this request (`Tx::reserve_ids`).
    Reserved(Range<Id>),
}

/// What a request reads once (the scheduler's views, the default plan), its view
/// of the store and the ids of what it creates.
pub struct Context {
    pub(super) clusters: Snapshot,
    pub(super) placement: Snapshot,
    pub(super) default_plan: Limits,
    /// The web servers' PHP versions, for a site line's `php_version`.
    pub(super) php: crate::api::site_web::PhpInfo,
    pub(super) verified_clusters: BTreeSet<Id>,
    pub(super) picked: Vec<Id>,
    /// A new site came with cron jobs: their runners are placed after the commit.
    pub(super) cron_added: bool,
    pub(super) view: View,
    ids: Ids,
}

impl Context {
    /// Read the snapshots (before the transaction, like the API's handlers).
    pub async fn new(state: &AppState) -> ApiResult<Self> {
        Ok(Self {
            clusters: crate::placement::cluster_snapshot(state).await?,
            placement: crate::placement::placement_snapshot(state).await?,
            default_plan: state.config.default_plan,
            php: crate::api::site_web::PhpInfo::new(
                state,
                &state.store.all::<model::entity::Server>().await?,
            ),
            verified_clusters: BTreeSet::new(),
            picked: Vec::new(),
            cron_added: false,
            view: View::default(),
            ids: Ids::StandIn(0),
        })
    }

    /// Reserve ids for up to `n` new objects (one per line) that will be written;
    /// without it (a dry run) new objects get stand-in ids.
    pub async fn reserve(&mut self, tx: &mut Tx, n: usize) -> ApiResult<()> {
        let n = u32::try_from(n).map_err(ApiError::internal)?;
        self.ids = Ids::Reserved(tx.reserve_ids(n).await?);
        Ok(())
    }

    /// The id of the next new object.
    fn next_id(&mut self) -> Result<Id, LineError> {
        match &mut self.ids {
            Ids::StandIn(last) => {
                *last -= 1;
                Ok(*last)
            }
            Ids::Reserved(r) => r
                .next()
                .ok_or_else(|| LineError::Store(ApiError::internal("more new objects than lines"))),
        }
    }

    /// Add a new object to the view under a fresh id.
    pub(super) async fn create<T: Cached>(
        &mut self,
        tx: &mut Tx,
        obj: NewObject<T>,
    ) -> Result<Stored<T>, LineError> {
        let id = self.next_id()?;
        Ok(self.view.create(tx, id, obj).await?)
    }

    /// Write what the lines created: one multi-row insert per kind, parents first.
    pub async fn write(&mut self, tx: &mut Tx) -> ApiResult<()> {
        let c = &mut self.view.c;
        tx.create_many(std::mem::take(&mut c.accounts.new)).await?;
        tx.create_many(std::mem::take(&mut c.domains.new)).await?;
        tx.create_many(std::mem::take(&mut c.databases.new)).await?;
        tx.create_many(std::mem::take(&mut c.sites.new)).await?;
        tx.create_many(std::mem::take(&mut c.mailboxes.new)).await?;
        tx.create_many(std::mem::take(&mut c.aliases.new)).await?;
        tx.create_many(std::mem::take(&mut c.records.new)).await?;
        tx.create_many(std::mem::take(&mut c.ftp.new)).await?;
        tx.create_many(std::mem::take(&mut c.db_users.new)).await?;
        Ok(())
    }

    /// Tell the in-memory site loads about the sites placed by a committed chunk,
    /// and place the cron runners of new sites with jobs through the one placement
    /// path (a pass under its lock; a failed pass is logged: the runner is then
    /// placed by the next pass).
    pub async fn after_commit(&self, state: &AppState) {
        for s in &self.picked {
            state.site_loads.picked(*s);
        }
        if self.cron_added {
            if let Err(e) = crate::placement::reconcile(state, "import").await {
                tracing::warn!(error = %e, "placing imported sites' cron runners failed; the next placement pass retries");
            }
        }
    }

    /// Read in bulk what these lines will ask about.
    pub async fn prefetch(&mut self, tx: &mut Tx, lines: &[&ImportLine]) -> ApiResult<()> {
        Ok(self.view.prefetch(tx, lines).await?)
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
                keep,
                local,
                docroot,
                hsts,
                php_version,
                php_set,
                cron,
            } => {
                let line = super::services::SiteLine {
                    domain,
                    aliases,
                    php: *php,
                    mode: mode.as_deref(),
                    https_redirect: *https_redirect,
                    keep,
                    local,
                    web: crate::api::site_web::WebChange {
                        docroot: docroot.as_deref(),
                        hsts: Some(*hsts),
                        php_version: php_version.as_deref(),
                        php_set: Some(php_set),
                        php_unset: None,
                    },
                    cron,
                };
                self.site(tx, line).await
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

    /// The customer account a line names (created by an earlier line or stored).
    pub(super) async fn customer_named(
        &mut self,
        tx: &mut Tx,
        name: &str,
    ) -> Result<Stored<Account>, LineError> {
        match self.view.by_name::<Account>(tx, name).await? {
            Some(a) if a.data.kind == AccountKind::Customer => Ok(a),
            _ => Err(ApiError::invalid(
                "customer",
                "unknown_customer",
                format!("there is no customer `{name}` (put its customer line before it)"),
            )
            .into()),
        }
    }

    /// The domain a line names in `field`.
    pub(super) async fn domain_named(
        &mut self,
        tx: &mut Tx,
        field: &str,
        name: &str,
    ) -> Result<Stored<Domain>, LineError> {
        let dn = DomainName::new(name).field(field).map_err(ApiError::from)?;
        self.view
            .by_name::<Domain>(tx, dn.as_str())
            .await?
            .ok_or_else(|| {
                ApiError::invalid(
                    field,
                    "unknown_domain",
                    format!("there is no domain `{dn}` (put its domain line before it)"),
                )
                .into()
            })
    }

    /// The name of a stored object of kind `T` (a re-run's report shows names).
    pub(super) async fn name_of<T: Cached>(
        &mut self,
        tx: &mut Tx,
        id: Id,
    ) -> Result<String, LineError> {
        Ok(self
            .view
            .by_id::<T>(tx, id)
            .await?
            .map(|o| o.meta.name)
            .unwrap_or_default())
    }

    /// The limits of account `owner`: its plan's (or the default), with its overrides.
    pub(super) async fn limits_of(&mut self, tx: &mut Tx, owner: Id) -> Result<Limits, LineError> {
        let account = self
            .view
            .by_id::<Account>(tx, owner)
            .await?
            .ok_or_else(|| ApiError::not_found("the owning account no longer exists"))?;
        let plan = match account.data.plan {
            Some(id) => match self.view.by_id::<Plan>(tx, id).await? {
                Some(p) => p.data.limits,
                None => self.default_plan,
            },
            None => self.default_plan,
        };
        Ok(effective_limits(&plan, &account.data.limits))
    }

    /// Refuse one more object of `kind` for `owner` beyond its plan's count.
    pub(super) async fn check_count(
        &mut self,
        tx: &mut Tx,
        owner: Id,
        kind: Kind,
    ) -> Result<(), LineError> {
        let limits = self.limits_of(tx, owner).await?;
        let used = self.view.count(tx, owner, kind).await?;
        crate::limits::check_used(&limits, kind, u64::try_from(used).unwrap_or(0))?;
        Ok(())
    }
}

/// `field: (stored hash)` vs the file's hash when they disagree ([`super::same_hash`]).
pub(super) fn hash_pair(same: bool, file: &str, stored_label: &str) -> (String, String) {
    if same {
        (String::new(), String::new())
    } else {
        (stored_label.to_owned(), file.to_owned())
    }
}
