//! hostplane's persistent store: every object as a JSON document of its `model`
//! type plus metadata columns, unique keys enforced by the database, a global
//! revision bumped in the same transaction as every change, and an audit log.
//!
//! Two backends pass one test suite: SQLite (a file in the data dir, WAL, the
//! default) and PostgreSQL (for several controllers). Both are driven through the
//! same SQL via sqlx's `Any` driver (SQLite accepts PostgreSQL's `$n` placeholders);
//! the schema of each is embedded from `migrations/{sqlite,postgres}/` and applied on
//! open.
//!
//! Writes go through [`Tx`]: [`Store::begin`] bumps the revision first, which takes
//! the write lock (SQLite) or the revision row lock (PostgreSQL), so all writers are
//! serialised and checks made inside a transaction (uniqueness, DNS coexistence) are
//! race-free. Dropping a `Tx` without [`Tx::commit`] rolls it back. Within one process
//! writers also queue on an in-memory lock before taking a connection, so waiting
//! writers do not hold pooled connections, and queued writers share one database
//! transaction, each in its own savepoint, so a burst of writes costs one fsync
//! (group commit; `commit` still returns only after the shared commit). Do not begin a second transaction while
//! holding one in the same task: it waits for the first and fails after 30 s.
//!
//! Data model in brief:
//! - `objects`: one row per object; `(kind, name)` is unique. Extra unique keys
//!   ([`UniqueKey`], derived from each document by `Object::unique_keys`) live in
//!   `object_keys`; conflicts are [`StoreError::Conflict`].
//!   Deleting an object deletes its children (`parent`) and their keys.
//! - Every domain also holds the key `("registrable", "<eTLD+1>/<name>")`, kept by
//!   the store on create and update and synced at open ([`REGISTRABLE_NS`]), so
//!   [`Tx::domains_under`] is an index range, not a scan.
//! - Tenancy: [`Meta::owner`] is the owning account, [`Meta::reseller`] the owner's
//!   reseller, computed by the store. **Accounts own themselves**: an
//!   [`model::entity::Account`] created with `owner: None` that is not an admin gets
//!   its own id as owner (the id is unknown before the insert). [`Scope`] filters reads.
//! - `object_counts`: objects per (owner, kind), kept by triggers (migration 3), so
//!   [`Tx::count_owned`] (plan limits) is one row, not a count.
//! - `events`: the audit log. Every create/update/delete adds one event (plus
//!   [`Tx::event`] for custom ones); events are written at commit, in order, and
//!   carry the transaction's revision.
//! - Times are stored as integer unix microseconds.

#![forbid(unsafe_code)]

mod bulk;
mod feed;
mod group;
mod open;
mod sql;

pub use feed::{Changes, Feed, RawObject, Tombstone};

use std::collections::HashMap;

use model::entity::{Account, Kind, Object};
use model::{AccountKind, Id};
use sqlx::{AnyPool, AssertSqlSafe, Row};
use time::OffsetDateTime;
use tokio::sync::OwnedMutexGuard;

use sql::{object_cols, Filter};

/// Errors of the store. `Conflict` and `NotFound` are expected outcomes the API maps
/// to 409 and 404; `Backend` is an infrastructure failure (500).
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A unique key is already taken (`ns` names what, e.g. `domain`, `mail_address`).
    #[error("{ns} `{key}` already exists")]
    Conflict {
        /// Namespace of the unique key.
        ns: String,
        /// The taken key.
        key: String,
    },
    /// The object does not exist (or was deleted meanwhile).
    #[error("{kind} {id} not found")]
    NotFound {
        /// Kind looked for.
        kind: &'static str,
        /// Id looked for.
        id: Id,
    },
    /// Deleting it would orphan objects that refer to it.
    #[error("{0}")]
    InUse(String),
    /// A stored document no longer parses as its type: a bug or a bad migration.
    #[error("corrupt {kind} {id}: {source}")]
    Corrupt {
        /// Kind of the bad row.
        kind: &'static str,
        /// Id of the bad row.
        id: Id,
        /// Parse error.
        source: serde_json::Error,
    },
    /// The database failed.
    #[error("database error: {0}")]
    Backend(#[from] sqlx::Error),
    /// Migrations failed.
    #[error("migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
}

/// Result of store operations.
pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// Which objects a caller may see: everything, a reseller's customers and their
/// objects (and the reseller's own), or one customer's objects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// Admin: everything.
    All,
    /// Objects owned by this reseller or by customers whose reseller it is.
    ///
    /// The id must be a reseller account: the store selects objects whose
    /// [`Meta::reseller`] is it, which for a reseller account covers everything it
    /// owns itself (their `reseller` is the reseller) and everything its customers own.
    Reseller(Id),
    /// Objects owned by this customer.
    Customer(Id),
}

/// Who made a change, for the audit log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actor {
    /// Account that acted, if any (None for the system itself, e.g. `controller init`).
    pub account: Option<Id>,
    /// Printable name: the account name, `system`, `scheduler`, ...
    pub label: String,
}

/// Metadata kept beside every object document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Meta {
    /// Store id.
    pub id: Id,
    /// Unique (per kind) reference name: domain name, mailbox address, cluster name ...
    pub name: String,
    /// The customer (or reseller) account that owns it; None for operator objects
    /// (clusters, servers, admin accounts).
    pub owner: Option<Id>,
    /// The owner's reseller, denormalised so reseller scopes are one comparison.
    pub reseller: Option<Id>,
    /// The object it belongs to (domain of a mailbox, cluster of a server ...).
    pub parent: Option<Id>,
    /// Revision that created it.
    pub created_rev: i64,
    /// Revision that last changed it.
    pub updated_rev: i64,
    /// Creation time.
    pub created_at: OffsetDateTime,
    /// Last change time.
    pub updated_at: OffsetDateTime,
}

/// An object as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct Stored<T> {
    /// Metadata columns.
    pub meta: Meta,
    /// The document.
    pub data: T,
}

/// An additional unique key an object claims (re-exported from `model`, where each
/// kind's [`Object::unique_keys`] derives them).
pub use model::entity::UniqueKey;

/// A new object to insert.
#[derive(Debug, Clone)]
pub struct NewObject<T> {
    /// Unique-per-kind reference name.
    pub name: String,
    /// Owner account (customer or reseller), None for operator objects. The store
    /// fills [`Meta::reseller`] from it: the owner itself if it is a reseller account,
    /// else the owner account's `reseller`. A customer account is its own owner.
    pub owner: Option<Id>,
    /// Parent object; deleting a parent deletes its children (ON DELETE CASCADE).
    /// Callers refuse deletions that would cascade further than users expect (the
    /// controller refuses to delete a customer that still owns domains).
    pub parent: Option<Id>,
    /// The document. Its extra unique keys come from [`Object::unique_keys`].
    pub data: T,
}

/// Filter and page of a listing. Results are in id order; `after` is the last id of
/// the previous page.
#[derive(Debug, Clone)]
pub struct ListQuery {
    /// Visibility.
    pub scope: Scope,
    /// Only objects with this owner.
    pub owner: Option<Id>,
    /// Only children of this parent.
    pub parent: Option<Id>,
    /// Start after this id (cursor).
    pub after: Option<Id>,
    /// At most this many (the store caps it at 1000).
    pub limit: u32,
}

impl ListQuery {
    /// Everything visible in `scope`, first page of `limit`.
    pub fn new(scope: Scope, limit: u32) -> Self {
        Self {
            scope,
            owner: None,
            parent: None,
            after: None,
            limit,
        }
    }
}

/// One audit log entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// Sequence number (cursor for `GET /v1/events`).
    pub id: Id,
    /// Revision the change produced.
    pub revision: i64,
    /// When.
    pub at: OffsetDateTime,
    /// Who (account id).
    pub actor: Option<Id>,
    /// Who (printable).
    pub actor_label: String,
    /// `create`, `update`, `delete`, or a named action such as `placement.warning`.
    pub action: String,
    /// Object kind.
    pub kind: String,
    /// Object id, if the event is about one object.
    pub object_id: Option<Id>,
    /// Object name at the time.
    pub object_name: String,
    /// Owner of the object (for tenant-scoped event listings).
    pub owner: Option<Id>,
    /// Free-form JSON details (e.g. the warning text).
    pub detail: serde_json::Value,
}

/// Which backend a store runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BackendKind {
    /// SQLite file.
    Sqlite,
    /// PostgreSQL server.
    Postgres,
}

/// Handle to the store; cheap to clone (a connection pool inside).
#[derive(Clone, Debug)]
pub struct Store {
    /// Connections (SQLite or PostgreSQL behind sqlx's `Any` driver).
    pool: AnyPool,
    /// Which backend `pool` talks to.
    backend: BackendKind,
    /// Serialises this process's writers before they take a connection, so waiting
    /// writers queue here instead of holding pooled connections while they wait for
    /// the database's write lock (which still serialises writers across processes);
    /// queued writers share one database transaction (group commit, see `group`).
    writers: group::Writers,
}

impl Store {
    /// Wrap an opened, migrated pool.
    fn new(pool: AnyPool, backend: BackendKind) -> Self {
        Self {
            pool,
            backend,
            writers: group::Writers::default(),
        }
    }

    /// Open (creating if needed) a SQLite store file in WAL mode and run migrations.
    ///
    /// Creates the parent directory and the file (mode 0600; SQLite gives its `-wal`
    /// and `-shm` files the same mode). Every connection uses `synchronous=FULL`, so a
    /// committed transaction has been fsynced, `foreign_keys=ON` and a 5 s busy timeout.
    pub async fn open_sqlite(path: &std::path::Path) -> Result<Self> {
        let store = Self::new(open::sqlite(path).await?, BackendKind::Sqlite);
        store.sync_registrable_index().await?;
        Ok(store)
    }

    /// Connect to PostgreSQL (`postgres://...`) and run migrations.
    pub async fn open_postgres(url: &str) -> Result<Self> {
        let store = Self::new(open::postgres(url).await?, BackendKind::Postgres);
        store.sync_registrable_index().await?;
        Ok(store)
    }

    /// Bring the [`REGISTRABLE_NS`] keys of every domain up to date (a store written
    /// before they existed, or a Public Suffix List that changed since): one
    /// transaction, only if something differs; no revision, no events (an index).
    async fn sync_registrable_index(&self) -> Result<()> {
        let rows = sqlx::query(
            "SELECT o.id, o.name, k.key FROM objects o LEFT JOIN object_keys k \
             ON k.object_id = o.id AND k.ns = $1 WHERE o.kind = $2",
        )
        .bind(REGISTRABLE_NS)
        .bind(Kind::Domain.as_str())
        .fetch_all(&self.pool)
        .await?;
        let mut stale = Vec::new();
        for r in &rows {
            let (id, name, key): (Id, String, Option<String>) =
                (r.try_get(0)?, r.try_get(1)?, r.try_get(2)?);
            if key.as_deref() != Some(registrable_key(&name).as_str()) {
                stale.push((id, name));
            }
        }
        if stale.is_empty() {
            return Ok(());
        }
        let mut tx = self.pool.begin().await?;
        for (id, name) in stale {
            sqlx::query("DELETE FROM object_keys WHERE object_id = $1 AND ns = $2")
                .bind(id)
                .bind(REGISTRABLE_NS)
                .execute(&mut *tx)
                .await?;
            sqlx::query("INSERT INTO object_keys (ns, key, object_id) VALUES ($1, $2, $3)")
                .bind(REGISTRABLE_NS)
                .bind(registrable_key(&name))
                .bind(id)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// `sqlite:///path` / `sqlite:path` or `postgres://...`.
    ///
    /// Accepted forms: `sqlite:PATH`, `sqlite://PATH` (so `sqlite:///abs/path` is the
    /// absolute `/abs/path`), `postgres://...` and `postgresql://...`. The SQLite path
    /// is taken literally (no percent-decoding, no query parameters).
    pub async fn open_url(url: &str) -> Result<Self> {
        if let Some(path) = url
            .strip_prefix("sqlite://")
            .or_else(|| url.strip_prefix("sqlite:"))
        {
            if path.is_empty() {
                return Err(config_error("store URL `sqlite:` names no file"));
            }
            Self::open_sqlite(std::path::Path::new(path)).await
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Self::open_postgres(url).await
        } else {
            Err(config_error(
                "store URL must start with sqlite: or postgres://",
            ))
        }
    }

    /// The backend in use.
    pub fn backend(&self) -> BackendKind {
        self.backend
    }

    /// Close every connection (waits for checked-out ones to come back).
    pub async fn close(&self) {
        self.pool.close().await;
    }

    /// Current global revision (0 for a new store).
    pub async fn revision(&self) -> Result<i64> {
        Ok(sqlx::query_scalar("SELECT rev FROM revision WHERE id = 1")
            .fetch_one(&self.pool)
            .await?)
    }

    /// One object by id, if visible in `scope`.
    pub async fn get<T: Object>(&self, scope: Scope, id: Id) -> Result<Option<Stored<T>>> {
        let mut f = Filter::new(
            concat!(
                "SELECT ",
                object_cols!(),
                " FROM objects WHERE id = $1 AND kind = $2"
            ),
            2,
        );
        f.scope(scope);
        let q = sqlx::query(AssertSqlSafe(f.sql.clone()))
            .bind(id)
            .bind(T::KIND.as_str());
        let row = f.bind(q).fetch_optional(&self.pool).await?;
        row.as_ref().map(sql::object).transpose()
    }

    /// One object by its unique name, if visible in `scope`.
    pub async fn get_by_name<T: Object>(
        &self,
        scope: Scope,
        name: &str,
    ) -> Result<Option<Stored<T>>> {
        let mut f = Filter::new(
            concat!(
                "SELECT ",
                object_cols!(),
                " FROM objects WHERE kind = $1 AND name = $2"
            ),
            2,
        );
        f.scope(scope);
        let q = sqlx::query(AssertSqlSafe(f.sql.clone()))
            .bind(T::KIND.as_str())
            .bind(name.to_owned());
        let row = f.bind(q).fetch_optional(&self.pool).await?;
        row.as_ref().map(sql::object).transpose()
    }

    /// A page of objects of one kind.
    ///
    /// Objects of `T::KIND` visible in `q.scope`, optionally only those of `q.owner`
    /// and/or children of `q.parent`, with id greater than `q.after`, in id order; at
    /// most `q.limit` of them (0 means 100, more than 1000 means 1000).
    pub async fn list<T: Object>(&self, q: &ListQuery) -> Result<Vec<Stored<T>>> {
        let mut f = Filter::new(
            concat!(
                "SELECT ",
                object_cols!(),
                " FROM objects WHERE kind = $1 AND id > $2"
            ),
            2,
        );
        f.scope(q.scope);
        if let Some(owner) = q.owner {
            f.eq("owner", owner);
        }
        if let Some(parent) = q.parent {
            f.eq("parent", parent);
        }
        f.page(q.limit);
        let query = sqlx::query(AssertSqlSafe(f.sql.clone()))
            .bind(T::KIND.as_str())
            .bind(q.after.unwrap_or(0));
        let rows = f.bind(query).fetch_all(&self.pool).await?;
        rows.iter().map(sql::object).collect()
    }

    /// Every object of one kind (for snapshots: scheduler, config builders).
    pub async fn all<T: Object>(&self) -> Result<Vec<Stored<T>>> {
        let rows = sqlx::query(concat!(
            "SELECT ",
            object_cols!(),
            " FROM objects WHERE kind = $1 ORDER BY id"
        ))
        .bind(T::KIND.as_str())
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(sql::object).collect()
    }

    /// Number of objects of a kind visible in `scope`.
    pub async fn count(&self, kind: Kind, scope: Scope) -> Result<i64> {
        let mut f = Filter::new("SELECT COUNT(*) FROM objects WHERE kind = $1", 1);
        f.scope(scope);
        let mut q = sqlx::query_scalar(AssertSqlSafe(f.sql.clone())).bind(kind.as_str());
        for a in &f.args {
            q = q.bind(*a);
        }
        Ok(q.fetch_one(&self.pool).await?)
    }

    /// Which object holds a unique key, if any.
    pub async fn find_key(&self, ns: &str, key: &str) -> Result<Option<(Kind, Id)>> {
        let row = sqlx::query(FIND_KEY)
            .bind(ns.to_owned())
            .bind(key.to_owned())
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(kind_and_id).transpose()
    }

    /// A page of the audit log after event id `after`, visible in `scope`.
    ///
    /// In id order; `limit` as in [`Store::list`]. Scopes filter on the owner of the
    /// object each event is about (and that owner's reseller).
    pub async fn events(&self, scope: Scope, after: Option<Id>, limit: u32) -> Result<Vec<Event>> {
        let mut f = Filter::new(
            &format!("SELECT {} FROM events WHERE id > $1", sql::EVENT_COLS),
            1,
        );
        f.scope(scope);
        f.page(limit);
        let q = sqlx::query(AssertSqlSafe(f.sql.clone())).bind(after.unwrap_or(0));
        let rows = f.bind(q).fetch_all(&self.pool).await?;
        rows.iter().map(sql::event).collect()
    }

    /// Domains whose registrable domain (Public Suffix List eTLD+1) is
    /// `registrable`, as (id, name, owner), in id order; an index lookup (see
    /// [`Tx::domains_under`] for the race-free read).
    pub async fn domains_under(&self, registrable: &str) -> Result<Vec<(Id, String, Option<Id>)>> {
        let rows = domains_under_query(registrable)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(id_name_owner).collect()
    }

    /// Start a write transaction; bumps the revision (and so takes the write lock).
    pub async fn begin(&self, actor: Actor) -> Result<Tx> {
        // Bounded, so a task that begins a second transaction while holding one fails
        // instead of waiting for itself forever.
        let mut slot = self
            .writers
            .lock(WRITER_WAIT)
            .await
            .ok_or(StoreError::Backend(sqlx::Error::PoolTimedOut))?;
        if slot.batch.is_none() {
            let tx = match self.backend {
                // Take SQLite's write lock now (waiting up to the busy timeout) rather
                // than upgrading a read transaction later.
                BackendKind::Sqlite => self.pool.begin_with("BEGIN IMMEDIATE").await?,
                BackendKind::Postgres => self.pool.begin().await?,
            };
            slot.batch = Some(group::Batch::new(tx));
        }
        let mut tx = Tx {
            slot: Some(slot),
            writers: self.writers.clone(),
            rev: 0,
            backend: self.backend,
            actor,
            resellers: HashMap::new(),
            events: Vec::new(),
        };
        // From here on, an error drops `tx`, which undoes this writer's part only.
        sqlx::query(group::SAVEPOINT).execute(tx.conn()).await?;
        tx.rev = sqlx::query_scalar("UPDATE revision SET rev = rev + 1 WHERE id = 1 RETURNING rev")
            .fetch_one(tx.conn())
            .await?;
        Ok(tx)
    }
}

/// Longest wait for this process's other writers before `begin` gives up.
const WRITER_WAIT: std::time::Duration = std::time::Duration::from_secs(30);

/// Lookup of the holder of a unique key.
const FIND_KEY: &str =
    "SELECT o.kind, o.id FROM object_keys k JOIN objects o ON o.id = k.object_id WHERE k.ns = $1 AND k.key = $2";

/// Decode a `(kind, id)` row of [`FIND_KEY`].
fn kind_and_id(row: &sqlx::any::AnyRow) -> Result<(Kind, Id)> {
    let kind: String = row.try_get(0)?;
    let id: Id = row.try_get(1)?;
    let kind = Kind::parse(&kind).ok_or_else(|| {
        StoreError::Backend(sqlx::Error::Decode(
            format!("unknown kind `{kind}` of object {id}").into(),
        ))
    })?;
    Ok((kind, id))
}

/// A configuration error (bad URL).
fn config_error(msg: &'static str) -> StoreError {
    StoreError::Backend(sqlx::Error::Configuration(msg.into()))
}

/// The keys without duplicates (an object claiming one key twice claims it once).
fn dedup_keys(mut keys: Vec<UniqueKey>) -> Vec<UniqueKey> {
    let mut seen = std::collections::HashSet::new();
    keys.retain(|k| seen.insert((k.ns, k.key.clone())));
    keys
}

/// A write transaction. Every mutation records an audit event; `commit` makes it
/// durable (fsync on SQLite) and returns the new revision.
pub struct Tx {
    /// The writer lock and the open batch (database transaction) this writer works
    /// in, inside its own savepoint; `None` once committed.
    slot: Option<OwnedMutexGuard<group::Slot>>,
    /// The writer queue, to finish or abandon the batch.
    writers: group::Writers,
    /// Revision this transaction commits as.
    rev: i64,
    /// Which backend the transaction runs on (for the few statements that differ).
    backend: BackendKind,
    /// Who acts, for the audit log.
    actor: Actor,
    /// Reseller of each owner account looked up in this transaction.
    resellers: HashMap<Id, Option<Id>>,
    /// Audit events to write at commit.
    events: Vec<PendingEvent>,
}

impl Drop for Tx {
    fn drop(&mut self) {
        // Not committed: undo this writer's savepoint; the batch lives on for the
        // others.
        if let Some(slot) = self.slot.take() {
            self.writers.abandon(slot);
        }
    }
}

impl std::fmt::Debug for Tx {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tx")
            .field("rev", &self.rev)
            .field("actor", &self.actor)
            .finish_non_exhaustive()
    }
}

impl Tx {
    /// The revision this transaction will commit as.
    pub fn revision(&self) -> i64 {
        self.rev
    }

    /// The connection of the batch this writer works in.
    #[allow(clippy::expect_used)]
    fn conn(&mut self) -> &mut sqlx::AnyConnection {
        // Invariant: `slot` holds an open batch from `Store::begin` until `commit`
        // consumes the `Tx`; no method runs after that.
        &mut self
            .slot
            .as_mut()
            .and_then(|s| s.batch.as_mut())
            .expect("a live Tx holds an open batch")
            .tx
    }

    /// Insert an object; `Conflict` if its (kind, name) or any key is taken.
    ///
    /// [`Meta::reseller`] is derived from the owner account (which must exist, else
    /// `NotFound`). **Accounts own themselves:** an [`model::entity::Account`] created
    /// with `owner: None` whose kind is not admin gets `owner` = its own new id, and
    /// `reseller` = its own id for a reseller or `data.reseller` for a customer, so
    /// customers see their own account in `Scope::Customer` and resellers see their
    /// customers' accounts. A missing `parent` is `NotFound { kind: "parent", .. }`
    /// (on PostgreSQL the transaction is unusable after that; drop it).
    pub async fn create<T: Object>(&mut self, obj: NewObject<T>) -> Result<Stored<T>> {
        let kind = T::KIND.as_str();
        let json = serde_json::to_string(&obj.data).map_err(|source| StoreError::Corrupt {
            kind,
            id: 0,
            source,
        })?;
        let keys = dedup_keys(obj.data.unique_keys(&obj.name));
        for k in &keys {
            self.check_key(k, None).await?;
        }
        let mut owner = obj.owner;
        let mut reseller = match owner {
            Some(o) => self.reseller_for(o).await?,
            None => None,
        };
        let now = sql::now_micros();
        let inserted: Option<Id> = sqlx::query_scalar(
            "INSERT INTO objects (kind, name, owner, reseller, parent, data, created_rev, updated_rev, \
             created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $7, $8, $8) \
             ON CONFLICT (kind, name) DO NOTHING RETURNING id",
        )
        .bind(kind)
        .bind(obj.name.clone())
        .bind(owner)
        .bind(reseller)
        .bind(obj.parent)
        .bind(json.clone())
        .bind(self.rev)
        .bind(now)
        .fetch_optional(self.conn())
        .await
        .map_err(|e| insert_error(e, kind, &obj.name, obj.parent))?;
        let Some(id) = inserted else {
            return Err(StoreError::Conflict {
                ns: kind.to_owned(),
                key: obj.name,
            });
        };
        if T::KIND == Kind::Account && owner.is_none() {
            let account: Account = serde_json::from_str(&json)
                .map_err(|source| StoreError::Corrupt { kind, id, source })?;
            if account.kind != AccountKind::Admin {
                owner = Some(id);
                reseller = sql::reseller_of(id, &account);
                sqlx::query("UPDATE objects SET owner = $1, reseller = $2 WHERE id = $1")
                    .bind(id)
                    .bind(reseller)
                    .execute(self.conn())
                    .await?;
            }
        }
        self.insert_keys(id, &keys).await?;
        if T::KIND == Kind::Domain {
            self.insert_keys(
                id,
                &[UniqueKey {
                    ns: REGISTRABLE_NS,
                    key: registrable_key(&obj.name),
                }],
            )
            .await?;
        }
        self.record(
            "create",
            kind,
            Some(id),
            &obj.name,
            owner,
            reseller,
            "{}".to_owned(),
        );
        let at = sql::time_of(now)?;
        Ok(Stored {
            meta: Meta {
                id,
                name: obj.name,
                owner,
                reseller,
                parent: obj.parent,
                created_rev: self.rev,
                updated_rev: self.rev,
                created_at: at,
                updated_at: at,
            },
            data: obj.data,
        })
    }

    /// Replace an object's document (and name); `NotFound` if gone.
    ///
    /// The object's extra keys are derived again ([`Object::unique_keys`]) and replace
    /// all it held. Owner and parent never change.
    /// Updating an account whose effective reseller changes (its kind or `reseller`)
    /// moves every object it owns to the new reseller.
    pub async fn update<T: Object>(&mut self, id: Id, name: &str, data: T) -> Result<Stored<T>> {
        let kind = T::KIND.as_str();
        let json = serde_json::to_string(&data).map_err(|source| StoreError::Corrupt {
            kind,
            id,
            source,
        })?;
        let rows = sqlx::query(
            "SELECT id, owner, reseller, parent, created_rev, created_at, data FROM objects \
             WHERE kind = $1 AND (id = $2 OR name = $3)",
        )
        .bind(kind)
        .bind(id)
        .bind(name.to_owned())
        .fetch_all(self.conn())
        .await?;
        let mut current = None;
        let mut name_taken = false;
        for row in rows {
            if row.try_get::<Id, _>(0)? == id {
                current = Some(row);
            } else {
                name_taken = true;
            }
        }
        let Some(current) = current else {
            return Err(StoreError::NotFound { kind, id });
        };
        if name_taken {
            return Err(StoreError::Conflict {
                ns: kind.to_owned(),
                key: name.to_owned(),
            });
        }
        let keys = dedup_keys(data.unique_keys(name));
        for k in &keys {
            self.check_key(k, Some(id)).await?;
        }
        let owner: Option<Id> = current.try_get(1)?;
        let mut reseller: Option<Id> = current.try_get(2)?;
        let now = sql::now_micros();
        sqlx::query("UPDATE objects SET name = $1, data = $2, updated_rev = $3, updated_at = $4 WHERE id = $5")
            .bind(name.to_owned())
            .bind(json.clone())
            .bind(self.rev)
            .bind(now)
            .bind(id)
            .execute(self.conn())
            .await
            .map_err(|e| sql::unique(e, kind, name))?;
        sqlx::query("DELETE FROM object_keys WHERE object_id = $1")
            .bind(id)
            .execute(self.conn())
            .await?;
        self.insert_keys(id, &keys).await?;
        if T::KIND == Kind::Domain {
            self.insert_keys(
                id,
                &[UniqueKey {
                    ns: REGISTRABLE_NS,
                    key: registrable_key(name),
                }],
            )
            .await?;
        }
        if T::KIND == Kind::Account {
            let old_json: String = current.try_get(6)?;
            let corrupt = |source| StoreError::Corrupt { kind, id, source };
            let old: Account = serde_json::from_str(&old_json).map_err(corrupt)?;
            let new: Account = serde_json::from_str(&json).map_err(corrupt)?;
            self.resellers.remove(&id);
            let new_reseller = sql::reseller_of(id, &new);
            if sql::reseller_of(id, &old) != new_reseller {
                sqlx::query("UPDATE objects SET reseller = $1 WHERE owner = $2")
                    .bind(new_reseller)
                    .bind(id)
                    .execute(self.conn())
                    .await?;
                if owner == Some(id) {
                    reseller = new_reseller;
                }
            }
        }
        self.record(
            "update",
            kind,
            Some(id),
            name,
            owner,
            reseller,
            "{}".to_owned(),
        );
        Ok(Stored {
            meta: Meta {
                id,
                name: name.to_owned(),
                owner,
                reseller,
                parent: current.try_get(3)?,
                created_rev: current.try_get(4)?,
                updated_rev: self.rev,
                created_at: sql::time_of(current.try_get(5)?)?,
                updated_at: sql::time_of(now)?,
            },
            data,
        })
    }

    /// Delete an object and (by cascade) its children; `NotFound` if gone.
    ///
    /// One `delete` event is recorded, for the object itself (not for its children).
    pub async fn delete(&mut self, kind: Kind, id: Id) -> Result<()> {
        let row = sqlx::query(
            "DELETE FROM objects WHERE id = $1 AND kind = $2 RETURNING name, owner, reseller",
        )
        .bind(id)
        .bind(kind.as_str())
        .fetch_optional(self.conn())
        .await?;
        let Some(row) = row else {
            return Err(StoreError::NotFound {
                kind: kind.as_str(),
                id,
            });
        };
        // Accounts may have gone with it (directly or by cascade).
        self.resellers.clear();
        let name: String = row.try_get(0)?;
        self.record(
            "delete",
            kind.as_str(),
            Some(id),
            &name,
            row.try_get(1)?,
            row.try_get(2)?,
            "{}".to_owned(),
        );
        Ok(())
    }

    /// Read inside the transaction (sees its own writes).
    pub async fn get<T: Object>(&mut self, id: Id) -> Result<Option<Stored<T>>> {
        let row = sqlx::query(concat!(
            "SELECT ",
            object_cols!(),
            " FROM objects WHERE id = $1 AND kind = $2"
        ))
        .bind(id)
        .bind(T::KIND.as_str())
        .fetch_optional(self.conn())
        .await?;
        row.as_ref().map(sql::object).transpose()
    }

    /// Read by name inside the transaction.
    pub async fn get_by_name<T: Object>(&mut self, name: &str) -> Result<Option<Stored<T>>> {
        let row = sqlx::query(concat!(
            "SELECT ",
            object_cols!(),
            " FROM objects WHERE kind = $1 AND name = $2"
        ))
        .bind(T::KIND.as_str())
        .bind(name.to_owned())
        .fetch_optional(self.conn())
        .await?;
        row.as_ref().map(sql::object).transpose()
    }

    /// Children of `parent` of one kind, inside the transaction.
    pub async fn children<T: Object>(&mut self, parent: Id) -> Result<Vec<Stored<T>>> {
        let rows = sqlx::query(concat!(
            "SELECT ",
            object_cols!(),
            " FROM objects WHERE kind = $1 AND parent = $2 ORDER BY id"
        ))
        .bind(T::KIND.as_str())
        .bind(parent)
        .fetch_all(self.conn())
        .await?;
        rows.iter().map(sql::object).collect()
    }

    /// Number of objects of `kind` owned by `owner`, inside the transaction. Writers
    /// are serialised (see [`Store::begin`]), so a count checked here before a
    /// `create` cannot be overtaken by a concurrent writer.
    ///
    /// One row of `object_counts`, which triggers keep in the same transaction as
    /// every insert, delete (cascades included) and change of owner: O(1) however
    /// many objects the account holds.
    pub async fn count_owned(&mut self, kind: Kind, owner: Id) -> Result<i64> {
        let n: Option<i64> =
            sqlx::query_scalar("SELECT n FROM object_counts WHERE owner = $1 AND kind = $2")
                .bind(owner)
                .bind(kind.as_str())
                .fetch_optional(self.conn())
                .await?;
        Ok(n.unwrap_or(0))
    }

    /// Objects of one kind owned by `owner`, inside the transaction, in id order.
    pub async fn owned<T: Object>(&mut self, owner: Id) -> Result<Vec<Stored<T>>> {
        let rows = sqlx::query(concat!(
            "SELECT ",
            object_cols!(),
            " FROM objects WHERE kind = $1 AND owner = $2 ORDER BY id"
        ))
        .bind(T::KIND.as_str())
        .bind(owner)
        .fetch_all(self.conn())
        .await?;
        rows.iter().map(sql::object).collect()
    }

    /// Which object holds a unique key, inside the transaction.
    pub async fn find_key(&mut self, ns: &str, key: &str) -> Result<Option<(Kind, Id)>> {
        let row = sqlx::query(FIND_KEY)
            .bind(ns.to_owned())
            .bind(key.to_owned())
            .fetch_optional(self.conn())
            .await?;
        row.as_ref().map(kind_and_id).transpose()
    }

    /// Domains whose registrable domain is `registrable`, as (id, name, owner), in
    /// id order, inside the transaction (sees its own writes).
    pub async fn domains_under(
        &mut self,
        registrable: &str,
    ) -> Result<Vec<(Id, String, Option<Id>)>> {
        let rows = domains_under_query(registrable)
            .fetch_all(self.conn())
            .await?;
        rows.iter().map(id_name_owner).collect()
    }

    /// Give object `id` and every object below it (children, their children …) to
    /// account `owner` (reseller recomputed); the object's own parent becomes
    /// `parent`. The one exception to "owner and parent never change": an admin
    /// transfer of names between accounts. Records one `transfer` event per moved
    /// object; `NotFound` if the object or the account is gone.
    pub async fn reassign(
        &mut self,
        kind: Kind,
        id: Id,
        owner: Id,
        parent: Option<Id>,
    ) -> Result<()> {
        let reseller = self.reseller_for(owner).await?;
        let rows = sqlx::query(
            "WITH RECURSIVE sub(id) AS (SELECT id FROM objects WHERE id = $1 AND kind = $2 \
             UNION ALL SELECT o.id FROM objects o JOIN sub ON o.parent = sub.id) \
             SELECT o.id, o.kind, o.name FROM objects o WHERE o.id IN (SELECT id FROM sub) \
             ORDER BY o.id",
        )
        .bind(id)
        .bind(kind.as_str())
        .fetch_all(self.conn())
        .await?;
        if rows.is_empty() {
            return Err(StoreError::NotFound {
                kind: kind.as_str(),
                id,
            });
        }
        let now = sql::now_micros();
        for row in &rows {
            let oid: Id = row.try_get(0)?;
            let okind: String = row.try_get(1)?;
            let oname: String = row.try_get(2)?;
            sqlx::query(
                "UPDATE objects SET owner = $1, reseller = $2, updated_rev = $3, updated_at = $4 \
                 WHERE id = $5",
            )
            .bind(owner)
            .bind(reseller)
            .bind(self.rev)
            .bind(now)
            .bind(oid)
            .execute(self.conn())
            .await?;
            self.record(
                "transfer",
                &okind,
                Some(oid),
                &oname,
                Some(owner),
                reseller,
                "{}".to_owned(),
            );
        }
        sqlx::query("UPDATE objects SET parent = $1 WHERE id = $2")
            .bind(parent)
            .bind(id)
            .execute(self.conn())
            .await?;
        Ok(())
    }

    /// Record an extra event (e.g. a placement warning) in this transaction.
    ///
    /// The event's reseller (for reseller-scoped listings) is derived from `owner`
    /// like an object's; an owner that is not an account gives none.
    pub async fn event(
        &mut self,
        action: &str,
        kind: Kind,
        object: Option<(Id, &str)>,
        owner: Option<Id>,
        detail: serde_json::Value,
    ) -> Result<()> {
        let reseller = match owner {
            Some(o) => match self.reseller_for(o).await {
                Ok(r) => r,
                Err(StoreError::NotFound { .. }) => None,
                Err(e) => return Err(e),
            },
            None => None,
        };
        let (id, name) = match object {
            Some((id, name)) => (Some(id), name),
            None => (None, ""),
        };
        self.record(
            action,
            kind.as_str(),
            id,
            name,
            owner,
            reseller,
            detail.to_string(),
        );
        Ok(())
    }

    /// Commit; returns the revision.
    ///
    /// Returns once the change is durable: the database transaction that carries it
    /// (possibly with other writers' changes, see the `group` module) has committed.
    pub async fn commit(mut self) -> Result<i64> {
        self.flush_events().await?;
        sqlx::query(group::RELEASE).execute(self.conn()).await?;
        let Some(slot) = self.slot.take() else {
            return Ok(self.rev);
        };
        self.writers
            .finish(slot)
            .await
            .map_err(|msg| StoreError::Backend(sqlx::Error::Protocol(msg.to_string())))?;
        Ok(self.rev)
    }

    /// `Conflict` if `key` is held by an object other than `except`.
    async fn check_key(&mut self, key: &UniqueKey, except: Option<Id>) -> Result<()> {
        let holder: Option<Id> =
            sqlx::query_scalar("SELECT object_id FROM object_keys WHERE ns = $1 AND key = $2")
                .bind(key.ns)
                .bind(key.key.clone())
                .fetch_optional(self.conn())
                .await?;
        match holder {
            Some(h) if Some(h) != except => Err(StoreError::Conflict {
                ns: key.ns.to_owned(),
                key: key.key.clone(),
            }),
            _ => Ok(()),
        }
    }

    /// Claim `keys` for object `id` (already checked free).
    async fn insert_keys(&mut self, id: Id, keys: &[UniqueKey]) -> Result<()> {
        for k in keys {
            sqlx::query("INSERT INTO object_keys (ns, key, object_id) VALUES ($1, $2, $3)")
                .bind(k.ns)
                .bind(k.key.clone())
                .bind(id)
                .execute(self.conn())
                .await
                .map_err(|e| sql::unique(e, k.ns, &k.key))?;
        }
        Ok(())
    }

    /// The reseller of objects owned by account `owner` (`NotFound` if no such account).
    async fn reseller_for(&mut self, owner: Id) -> Result<Option<Id>> {
        if let Some(r) = self.resellers.get(&owner) {
            return Ok(*r);
        }
        let data: Option<String> =
            sqlx::query_scalar("SELECT data FROM objects WHERE id = $1 AND kind = $2")
                .bind(owner)
                .bind(Kind::Account.as_str())
                .fetch_optional(self.conn())
                .await?;
        let Some(data) = data else {
            return Err(StoreError::NotFound {
                kind: Kind::Account.as_str(),
                id: owner,
            });
        };
        let account: Account =
            serde_json::from_str(&data).map_err(|source| StoreError::Corrupt {
                kind: Kind::Account.as_str(),
                id: owner,
                source,
            })?;
        let r = sql::reseller_of(owner, &account);
        self.resellers.insert(owner, r);
        Ok(r)
    }

    /// Queue an audit event at this transaction's revision; [`Tx::commit`] writes
    /// the queued events in one statement.
    #[allow(clippy::too_many_arguments)]
    fn record(
        &mut self,
        action: &str,
        kind: &str,
        object_id: Option<Id>,
        name: &str,
        owner: Option<Id>,
        reseller: Option<Id>,
        detail: String,
    ) {
        self.events.push(PendingEvent {
            at: sql::now_micros(),
            action: action.to_owned(),
            kind: kind.to_owned(),
            object_id,
            name: name.to_owned(),
            owner,
            reseller,
            detail,
        });
    }

    /// Insert the queued events, in order.
    async fn flush_events(&mut self) -> Result<()> {
        let events = std::mem::take(&mut self.events);
        for chunk in events.chunks(EVENTS_PER_INSERT) {
            let mut sql = String::from(
                "INSERT INTO events (revision, at, actor, actor_label, action, kind, object_id, \
                 object_name, owner, reseller, detail) VALUES ",
            );
            for i in 0..chunk.len() {
                let b = i * 11;
                if i > 0 {
                    sql.push_str(", ");
                }
                sql.push('(');
                for p in 1..=11 {
                    if p > 1 {
                        sql.push_str(", ");
                    }
                    sql.push_str(&format!("${}", b + p));
                }
                sql.push(')');
            }
            let mut q = sqlx::query(AssertSqlSafe(sql));
            for e in chunk {
                q = q
                    .bind(self.rev)
                    .bind(e.at)
                    .bind(self.actor.account)
                    .bind(self.actor.label.clone())
                    .bind(e.action.clone())
                    .bind(e.kind.clone())
                    .bind(e.object_id)
                    .bind(e.name.clone())
                    .bind(e.owner)
                    .bind(e.reseller)
                    .bind(e.detail.clone());
            }
            q.execute(self.conn()).await?;
        }
        Ok(())
    }
}

/// Events written per `INSERT` statement at commit (11 parameters each).
const EVENTS_PER_INSERT: usize = 50;

/// An audit event waiting for [`Tx::commit`].
struct PendingEvent {
    /// When the change was made.
    at: i64,
    /// What was done.
    action: String,
    /// Kind of the object.
    kind: String,
    /// The object, if the event is about one.
    object_id: Option<Id>,
    /// Object name at the time.
    name: String,
    /// Owner of the object.
    owner: Option<Id>,
    /// The owner's reseller.
    reseller: Option<Id>,
    /// JSON details.
    detail: String,
}

/// Map an object insert failure: a unique violation is a name conflict, a foreign key
/// violation a missing parent.
fn insert_error(e: sqlx::Error, kind: &'static str, name: &str, parent: Option<Id>) -> StoreError {
    if let sqlx::Error::Database(db) = &e {
        if db.is_foreign_key_violation() {
            return StoreError::NotFound {
                kind: "parent",
                id: parent.unwrap_or(0),
            };
        }
    }
    sql::unique(e, kind, name)
}

/// Namespace of the index keys `<registrable>/<domain name>` every domain holds
/// (kept by the store on create and update, synced at open), so the domains under
/// one registrable domain are one range of the `object_keys` primary key.
pub const REGISTRABLE_NS: &str = "registrable";

/// The [`REGISTRABLE_NS`] key of a domain name (its own name if it has no
/// registrable domain, which validated names always have).
fn registrable_key(name: &str) -> String {
    let reg = model::DomainName::new(name)
        .ok()
        .and_then(|d| model::namespace::registrable(&d).ok())
        .map_or_else(|| name.to_owned(), |r| r.to_string());
    format!("{reg}/{name}")
}

/// The query behind `domains_under`: the key range `registrable/` .. `registrable0`
/// (`0` follows `/`; neither occurs in domain names).
fn domains_under_query(
    registrable: &str,
) -> sqlx::query::Query<'static, sqlx::Any, sqlx::any::AnyArguments> {
    sqlx::query(
        "SELECT o.id, o.name, o.owner FROM object_keys k JOIN objects o ON o.id = k.object_id \
         WHERE k.ns = $1 AND k.key >= $2 AND k.key < $3 ORDER BY o.id",
    )
    .bind(REGISTRABLE_NS)
    .bind(format!("{registrable}/"))
    .bind(format!("{registrable}0"))
}

/// (id, name, owner) of a `domains_under` row.
fn id_name_owner(r: &sqlx::any::AnyRow) -> Result<(Id, String, Option<Id>)> {
    Ok((r.try_get(0)?, r.try_get(1)?, r.try_get(2)?))
}
