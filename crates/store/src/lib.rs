//! hostplane's persistent store: every object as a JSON document of its `model`
//! type plus metadata columns, unique keys enforced by the database, a global
//! revision bumped in the same transaction as every change, and an audit log.
//!
//! Two backends pass one test suite: SQLite (a file in the data dir, WAL, the
//! default) and PostgreSQL (for several controllers). Both are driven through the
//! same SQL; see `migrations/` for the schema of each.
//!
//! Writes go through [`Tx`]: [`Store::begin`] bumps the revision first, which takes
//! the write lock (SQLite) or the revision row lock (PostgreSQL), so all writers are
//! serialised and checks made inside a transaction (uniqueness, DNS coexistence) are
//! race-free. Dropping a `Tx` without [`Tx::commit`] rolls it back.

#![forbid(unsafe_code)]

use model::entity::{Kind, Object};
use model::Id;
use time::OffsetDateTime;

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

/// An additional unique key an object claims, beyond (kind, name). For example
/// mailboxes and aliases both claim `("mail_address", "info@a.com")`, so one
/// address is never both; a site claims one `("hostname", ...)` per alias.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UniqueKey {
    /// Namespace.
    pub ns: &'static str,
    /// The key within it.
    pub key: String,
}

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
    /// Extra unique keys.
    pub keys: Vec<UniqueKey>,
    /// The document.
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
        Self { scope, owner: None, parent: None, after: None, limit }
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
    _private: (),
}

impl Store {
    /// Open (creating if needed) a SQLite store file in WAL mode and run migrations.
    pub async fn open_sqlite(_path: &std::path::Path) -> Result<Self> {
        unimplemented!()
    }

    /// Connect to PostgreSQL (`postgres://...`) and run migrations.
    pub async fn open_postgres(_url: &str) -> Result<Self> {
        unimplemented!()
    }

    /// `sqlite:///path` / `sqlite:path` or `postgres://...`.
    pub async fn open_url(_url: &str) -> Result<Self> {
        unimplemented!()
    }

    /// The backend in use.
    pub fn backend(&self) -> BackendKind {
        unimplemented!()
    }

    /// Current global revision (0 for a new store).
    pub async fn revision(&self) -> Result<i64> {
        unimplemented!()
    }

    /// One object by id, if visible in `scope`.
    pub async fn get<T: Object>(&self, _scope: Scope, _id: Id) -> Result<Option<Stored<T>>> {
        unimplemented!()
    }

    /// One object by its unique name, if visible in `scope`.
    pub async fn get_by_name<T: Object>(&self, _scope: Scope, _name: &str) -> Result<Option<Stored<T>>> {
        unimplemented!()
    }

    /// A page of objects of one kind.
    pub async fn list<T: Object>(&self, _q: &ListQuery) -> Result<Vec<Stored<T>>> {
        unimplemented!()
    }

    /// Every object of one kind (for snapshots: scheduler, config builders).
    pub async fn all<T: Object>(&self) -> Result<Vec<Stored<T>>> {
        unimplemented!()
    }

    /// Number of objects of a kind visible in `scope`.
    pub async fn count(&self, _kind: Kind, _scope: Scope) -> Result<i64> {
        unimplemented!()
    }

    /// Which object holds a unique key, if any.
    pub async fn find_key(&self, _ns: &str, _key: &str) -> Result<Option<(Kind, Id)>> {
        unimplemented!()
    }

    /// A page of the audit log after event id `after`, visible in `scope`.
    pub async fn events(&self, _scope: Scope, _after: Option<Id>, _limit: u32) -> Result<Vec<Event>> {
        unimplemented!()
    }

    /// Start a write transaction; bumps the revision (and so takes the write lock).
    pub async fn begin(&self, _actor: Actor) -> Result<Tx> {
        unimplemented!()
    }
}

/// A write transaction. Every mutation records an audit event; `commit` makes it
/// durable (fsync on SQLite) and returns the new revision.
pub struct Tx {
    _private: (),
}

impl Tx {
    /// The revision this transaction will commit as.
    pub fn revision(&self) -> i64 {
        unimplemented!()
    }

    /// Insert an object; `Conflict` if its (kind, name) or any key is taken.
    pub async fn create<T: Object>(&mut self, _obj: NewObject<T>) -> Result<Stored<T>> {
        unimplemented!()
    }

    /// Replace an object's document (and name and extra keys); `NotFound` if gone.
    pub async fn update<T: Object>(&mut self, _id: Id, _name: &str, _keys: Vec<UniqueKey>, _data: T) -> Result<Stored<T>> {
        unimplemented!()
    }

    /// Delete an object and (by cascade) its children; `NotFound` if gone.
    pub async fn delete(&mut self, _kind: Kind, _id: Id) -> Result<()> {
        unimplemented!()
    }

    /// Read inside the transaction (sees its own writes).
    pub async fn get<T: Object>(&mut self, _id: Id) -> Result<Option<Stored<T>>> {
        unimplemented!()
    }

    /// Read by name inside the transaction.
    pub async fn get_by_name<T: Object>(&mut self, _name: &str) -> Result<Option<Stored<T>>> {
        unimplemented!()
    }

    /// Children of `parent` of one kind, inside the transaction.
    pub async fn children<T: Object>(&mut self, _parent: Id) -> Result<Vec<Stored<T>>> {
        unimplemented!()
    }

    /// Which object holds a unique key, inside the transaction.
    pub async fn find_key(&mut self, _ns: &str, _key: &str) -> Result<Option<(Kind, Id)>> {
        unimplemented!()
    }

    /// Record an extra event (e.g. a placement warning) in this transaction.
    pub async fn event(&mut self, _action: &str, _kind: Kind, _object: Option<(Id, &str)>, _owner: Option<Id>, _detail: serde_json::Value) -> Result<()> {
        unimplemented!()
    }

    /// Commit; returns the revision.
    pub async fn commit(self) -> Result<i64> {
        unimplemented!()
    }
}
