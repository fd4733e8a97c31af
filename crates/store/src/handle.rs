//! The store handle's own operations: opening (SQLite or PostgreSQL, migrations,
//! the registrable-domain index), reads outside a transaction, and [`Store::begin`].

use std::collections::HashMap;

use model::entity::{Kind, Object};
use model::Id;
use sqlx::{AnyPool, AssertSqlSafe, Row};

use crate::sql::{self, object_cols, Filter};
use crate::{
    domains_under_query, group, id_name_owner, open, registrable_key, Actor, BackendKind, Event,
    ListQuery, Result, Scope, Store, StoreError, Stored, Tx, REGISTRABLE_NS,
};

impl Store {
    /// Wrap an opened, migrated pool.
    pub(crate) fn new(pool: AnyPool, backend: BackendKind) -> Self {
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
pub(crate) const WRITER_WAIT: std::time::Duration = std::time::Duration::from_secs(30);

/// Lookup of the holder of a unique key.
pub(crate) const FIND_KEY: &str =
    "SELECT o.kind, o.id FROM object_keys k JOIN objects o ON o.id = k.object_id WHERE k.ns = $1 AND k.key = $2";

/// Decode a `(kind, id)` row of [`FIND_KEY`].
pub(crate) fn kind_and_id(row: &sqlx::any::AnyRow) -> Result<(Kind, Id)> {
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
pub(crate) fn config_error(msg: &'static str) -> StoreError {
    StoreError::Backend(sqlx::Error::Configuration(msg.into()))
}
