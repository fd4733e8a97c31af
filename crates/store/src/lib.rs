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
mod handle;
mod open;
mod sql;
mod tx;
mod tx_read;

pub use feed::{Changes, Feed, RawObject, Tombstone};
pub use tx::Tx;

pub(crate) use handle::{kind_and_id, FIND_KEY};
pub(crate) use tx::{dedup_keys, insert_error};
pub(crate) use tx_read::{domains_under_query, id_name_owner, registrable_key};

use model::Id;
use sqlx::AnyPool;
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

/// Namespace of the index keys `<registrable>/<domain name>` every domain holds
/// (kept by the store on create and update, synced at open), so the domains under
/// one registrable domain are one range of the `object_keys` primary key.
pub const REGISTRABLE_NS: &str = "registrable";
