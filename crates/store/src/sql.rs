//! SQL shared by both backends (SQLite accepts PostgreSQL's `$n` placeholders;
//! statements built with many parameters use [`param`]) and the decoding of rows
//! into the public types.

use model::entity::{Account, Object};
use model::{AccountKind, Id};
use sqlx::any::AnyRow;
use sqlx::Row;
use time::OffsetDateTime;

use crate::{BackendKind, Event, Meta, Result, Scope, StoreError, Stored};

/// Columns of `objects` in the order [`object`] decodes them.
macro_rules! object_cols {
    () => {
        "id, name, owner, reseller, parent, data, created_rev, updated_rev, created_at, updated_at"
    };
}
pub(crate) use object_cols;

/// Columns of `events` in the order [`event`] decodes them.
pub(crate) const EVENT_COLS: &str =
    "id, revision, at, actor, actor_label, action, kind, object_id, object_name, owner, detail";

/// Parameter `i` (from 1) of a statement built with many parameters. SQLite gets a
/// bare `?`: sqlx asks SQLite for the name of every parameter it binds
/// (`sqlite3_bind_parameter_name`), which walks the statement's list of named
/// parameters, so binding N `$n` parameters costs O(N²) — with the bulk import's
/// 990-parameter inserts it was 12% of the controller's CPU. A bare `?` has no name
/// (nothing to walk) and takes the next argument, so a statement built with this
/// must use its parameters once each, in text order, and bind them in that order.
pub(crate) fn param(backend: BackendKind, i: usize) -> String {
    match backend {
        BackendKind::Sqlite => "?".to_owned(),
        BackendKind::Postgres => format!("${i}"),
    }
}

/// Largest page of a listing.
pub(crate) const MAX_PAGE: u32 = 1000;
/// Page size when the caller asks for 0.
pub(crate) const DEFAULT_PAGE: u32 = 100;

/// The effective page size of a requested `limit`.
pub(crate) fn page_size(limit: u32) -> i64 {
    i64::from(match limit {
        0 => DEFAULT_PAGE,
        n => n.min(MAX_PAGE),
    })
}

/// Now, truncated to the microseconds the store keeps.
pub(crate) fn now_micros() -> i64 {
    let nanos = OffsetDateTime::now_utc().unix_timestamp_nanos();
    i64::try_from(nanos / 1000).unwrap_or(i64::MAX)
}

/// Stored microseconds back to a time.
pub(crate) fn time_of(micros: i64) -> Result<OffsetDateTime> {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(micros) * 1000)
        .map_err(|e| StoreError::Backend(sqlx::Error::Decode(Box::new(e))))
}

/// A SQL text under construction with its numbered integer parameters. Fragments are
/// fixed strings of this crate; values are always bound, never spliced.
pub(crate) struct Filter {
    /// SQL text so far.
    pub(crate) sql: String,
    /// Integer parameters after the ones the caller binds first.
    pub(crate) args: Vec<i64>,
    /// Number of parameters the caller binds before `args`.
    first: usize,
}

impl Filter {
    /// Start with `sql`, which already uses parameters `$1..=$first`.
    pub(crate) fn new(sql: &str, first: usize) -> Self {
        Self {
            sql: sql.to_owned(),
            args: Vec::new(),
            first,
        }
    }

    /// Placeholder for a new integer parameter with value `v`.
    pub(crate) fn arg(&mut self, v: i64) -> String {
        self.args.push(v);
        format!("${}", self.first + self.args.len())
    }

    /// Append `AND <visibility>` for `scope` over columns `owner` and `reseller`
    /// (present in both `objects` and `events`).
    pub(crate) fn scope(&mut self, scope: Scope) {
        match scope {
            Scope::All => {}
            // Equivalent to `owner = r OR reseller = r` for a reseller account r: the
            // store sets `reseller = r` on everything r owns (see `reseller_of`), and
            // this form is one index range scan in id order.
            Scope::Reseller(r) => {
                let p = self.arg(r);
                self.sql.push_str(&format!(" AND reseller = {p}"));
            }
            Scope::Customer(c) => {
                let p = self.arg(c);
                self.sql.push_str(&format!(" AND owner = {p}"));
            }
        }
    }

    /// Append `AND <column> = <v>`.
    pub(crate) fn eq(&mut self, column: &str, v: i64) {
        let p = self.arg(v);
        self.sql.push_str(&format!(" AND {column} = {p}"));
    }

    /// Append ` ORDER BY id LIMIT <n>`.
    pub(crate) fn page(&mut self, limit: u32) {
        let p = self.arg(page_size(limit));
        self.sql.push_str(&format!(" ORDER BY id LIMIT {p}"));
    }

    /// Bind the integer arguments to a query whose first parameters are bound.
    pub(crate) fn bind<'q>(
        &self,
        mut q: sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments>,
    ) -> sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments> {
        for a in &self.args {
            q = q.bind(*a);
        }
        q
    }
}

/// Decode a row of [`object_cols`] as a `T`.
pub(crate) fn object<T: Object>(row: &AnyRow) -> Result<Stored<T>> {
    let id: Id = row.try_get(0)?;
    let data: String = row.try_get(5)?;
    let data = serde_json::from_str(&data).map_err(|source| StoreError::Corrupt {
        kind: T::KIND.as_str(),
        id,
        source,
    })?;
    Ok(Stored {
        meta: meta(row, 0)?,
        data,
    })
}

/// The [`Meta`] of a row whose [`object_cols`] start at column `at` (the change
/// feed puts `kind` before them).
pub(crate) fn meta(row: &AnyRow, at: usize) -> Result<Meta> {
    Ok(Meta {
        id: row.try_get(at)?,
        name: row.try_get(at + 1)?,
        owner: row.try_get(at + 2)?,
        reseller: row.try_get(at + 3)?,
        parent: row.try_get(at + 4)?,
        created_rev: row.try_get(at + 6)?,
        updated_rev: row.try_get(at + 7)?,
        created_at: time_of(row.try_get(at + 8)?)?,
        updated_at: time_of(row.try_get(at + 9)?)?,
    })
}

/// Decode a row of [`EVENT_COLS`].
pub(crate) fn event(row: &AnyRow) -> Result<Event> {
    let detail: String = row.try_get(10)?;
    Ok(Event {
        id: row.try_get(0)?,
        revision: row.try_get(1)?,
        at: time_of(row.try_get(2)?)?,
        actor: row.try_get(3)?,
        actor_label: row.try_get(4)?,
        action: row.try_get(5)?,
        kind: row.try_get(6)?,
        object_id: row.try_get(7)?,
        object_name: row.try_get(8)?,
        owner: row.try_get(9)?,
        detail: serde_json::from_str(&detail)
            .map_err(|e| StoreError::Backend(sqlx::Error::Decode(Box::new(e))))?,
    })
}

/// The reseller of objects owned by account `id`: the account itself if it is a
/// reseller, else the reseller that manages it.
pub(crate) fn reseller_of(id: Id, account: &Account) -> Option<Id> {
    match account.kind {
        AccountKind::Reseller => Some(id),
        _ => account.reseller,
    }
}

/// `Conflict` for a database unique violation, else the database error.
pub(crate) fn unique(e: sqlx::Error, ns: &str, key: &str) -> StoreError {
    match &e {
        sqlx::Error::Database(db) if db.is_unique_violation() => StoreError::Conflict {
            ns: ns.to_owned(),
            key: key.to_owned(),
        },
        _ => StoreError::Backend(e),
    }
}
