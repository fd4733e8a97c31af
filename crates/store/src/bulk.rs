//! Bulk reads and writes inside a [`Tx`], for callers that handle thousands of
//! objects at once (the controller's bulk import): one statement per few hundred
//! names, ids or keys instead of one per object, and multi-row inserts.
//!
//! They keep every rule of their one-object counterparts ([`Tx::get_by_name`],
//! [`Tx::find_key`], [`Tx::count_owned`], [`Tx::domains_under`], [`Tx::create`]):
//! same visibility of the transaction's own writes, same unique keys derived from
//! each document, same `Conflict`s, same audit events, the same counters kept by
//! the triggers. Values are always bound, never spliced: only the `$n` placeholders
//! are generated.

use std::collections::{HashMap, HashSet};
use std::ops::Range;

use model::entity::{Account, Kind, Object};
use model::{AccountKind, Id};
use sqlx::{AssertSqlSafe, Row};

use crate::sql::{self, object_cols};
use crate::{
    dedup_keys, kind_and_id, registrable_key, BackendKind, NewObject, Result, StoreError, Stored,
    Tx, UniqueKey, REGISTRABLE_NS,
};

/// Values per `IN (...)` list or rows per multi-row statement (well under both
/// backends' parameter limits: SQLite 32,766, PostgreSQL 65,535).
const PER_STATEMENT: usize = 500;

/// Object rows per multi-row `INSERT` (11 parameters each).
const OBJECTS_PER_INSERT: usize = 90;

/// `$from, $from+1, ... ` for `n` parameters ([`sql::param`]: `?` on SQLite).
fn placeholders(b: BackendKind, from: usize, n: usize) -> String {
    (from..from + n)
        .map(|i| sql::param(b, i))
        .collect::<Vec<_>>()
        .join(", ")
}

/// `($a, $b, ...), (...)`: `rows` tuples of `width` parameters from `$from`.
fn tuples(b: BackendKind, from: usize, rows: usize, width: usize) -> String {
    (0..rows)
        .map(|r| format!("({})", placeholders(b, from + r * width, width)))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Which column a bulk read matches, with the values it matches.
#[derive(Clone, Copy)]
enum In<'a> {
    Name(&'a [String]),
    Id(&'a [Id]),
    Parent(&'a [Id]),
}

/// One object row of [`Tx::create_many`], ready to bind.
struct Row1 {
    id: Id,
    name: String,
    owner: Option<Id>,
    reseller: Option<Id>,
    parent: Option<Id>,
    json: String,
}

impl Tx {
    /// Objects of `T` with any of these names, inside the transaction (sees its own
    /// writes), in no particular order; names that do not exist are absent.
    pub async fn get_many_by_name<T: Object>(
        &mut self,
        names: &[String],
    ) -> Result<Vec<Stored<T>>> {
        self.objects_in(In::Name(names)).await
    }

    /// Objects of `T` with any of these ids, inside the transaction, in no
    /// particular order; ids that do not exist (or are of another kind) are absent.
    pub async fn get_many<T: Object>(&mut self, ids: &[Id]) -> Result<Vec<Stored<T>>> {
        self.objects_in(In::Id(ids)).await
    }

    /// Children of `T` of any of these parents, inside the transaction, in id order
    /// per statement (callers group them by `meta.parent`).
    pub async fn children_of_many<T: Object>(&mut self, parents: &[Id]) -> Result<Vec<Stored<T>>> {
        self.objects_in(In::Parent(parents)).await
    }

    /// The one `SELECT ... WHERE kind = $1 AND column IN (...)` of the three reads
    /// above, one statement per [`PER_STATEMENT`] values.
    async fn objects_in<T: Object>(&mut self, by: In<'_>) -> Result<Vec<Stored<T>>> {
        let (column, order, len) = match by {
            In::Name(v) => ("name", "", v.len()),
            In::Id(v) => ("id", "", v.len()),
            In::Parent(v) => ("parent", " ORDER BY id", v.len()),
        };
        let mut out = Vec::with_capacity(len);
        for start in (0..len).step_by(PER_STATEMENT) {
            let end = (start + PER_STATEMENT).min(len);
            let q = format!(
                "SELECT {} FROM objects WHERE kind = {} AND {column} IN ({}){order}",
                object_cols!(),
                sql::param(self.backend, 1),
                placeholders(self.backend, 2, end - start)
            );
            let mut q = sqlx::query(AssertSqlSafe(q)).bind(T::KIND.as_str());
            match by {
                In::Name(v) => {
                    for n in &v[start..end] {
                        q = q.bind(n.clone());
                    }
                }
                In::Id(v) | In::Parent(v) => {
                    for id in &v[start..end] {
                        q = q.bind(*id);
                    }
                }
            }
            for row in q.fetch_all(self.conn()).await? {
                out.push(sql::object(&row)?);
            }
        }
        Ok(out)
    }

    /// The holders of any of these keys of namespace `ns`, as (key, kind, id),
    /// inside the transaction; free keys are absent.
    pub async fn find_keys(
        &mut self,
        ns: &str,
        keys: &[String],
    ) -> Result<Vec<(String, Kind, Id)>> {
        let mut out = Vec::new();
        for part in keys.chunks(PER_STATEMENT) {
            let q = format!(
                "SELECT o.kind, o.id, k.key FROM object_keys k JOIN objects o ON o.id = k.object_id \
                 WHERE k.ns = {} AND k.key IN ({})",
                sql::param(self.backend, 1),
                placeholders(self.backend, 2, part.len())
            );
            let mut q = sqlx::query(AssertSqlSafe(q)).bind(ns.to_owned());
            for k in part {
                q = q.bind(k.clone());
            }
            for row in q.fetch_all(self.conn()).await? {
                let (kind, id) = kind_and_id(&row)?;
                out.push((row.try_get(2)?, kind, id));
            }
        }
        Ok(out)
    }

    /// The counters of these owners, as (owner, kind, number of objects), inside the
    /// transaction: [`Tx::count_owned`] for many owners and every kind at once. A
    /// (owner, kind) without objects may be absent or 0.
    pub async fn counts_owned_many(&mut self, owners: &[Id]) -> Result<Vec<(Id, Kind, i64)>> {
        let mut out = Vec::new();
        for part in owners.chunks(PER_STATEMENT) {
            let q = format!(
                "SELECT owner, kind, n FROM object_counts WHERE owner IN ({})",
                placeholders(self.backend, 1, part.len())
            );
            let mut q = sqlx::query(AssertSqlSafe(q));
            for id in part {
                q = q.bind(*id);
            }
            for row in q.fetch_all(self.conn()).await? {
                let kind: String = row.try_get(1)?;
                // Kinds this build does not know hold no limit it could check.
                if let Some(kind) = Kind::parse(&kind) {
                    out.push((row.try_get(0)?, kind, row.try_get(2)?));
                }
            }
        }
        Ok(out)
    }

    /// [`Tx::domains_under`] for many registrable domains at once: every domain
    /// under each, as (registrable, id, name, owner), in id order, inside the
    /// transaction. One key range of the index per registrable domain, as a `UNION
    /// ALL` of range reads (a join against a `VALUES` list made SQLite scan the
    /// index once per registrable domain instead).
    pub async fn domains_under_many(
        &mut self,
        registrables: &[String],
    ) -> Result<Vec<(String, Id, String, Option<Id>)>> {
        let mut out = Vec::new();
        // SQLite allows at most 500 terms in a compound SELECT.
        for part in registrables.chunks(100) {
            // Bound in text order (see `sql::param`): the namespace with each range.
            let b = self.backend;
            let arms: Vec<String> = (0..part.len())
                .map(|i| {
                    format!(
                        "SELECT k.key, o.id, o.name, o.owner FROM object_keys k \
                         JOIN objects o ON o.id = k.object_id \
                         WHERE k.ns = {} AND k.key >= {} AND k.key < {}",
                        sql::param(b, 1 + 3 * i),
                        sql::param(b, 2 + 3 * i),
                        sql::param(b, 3 + 3 * i)
                    )
                })
                .collect();
            let mut q = sqlx::query(AssertSqlSafe(arms.join(" UNION ALL ")));
            for reg in part {
                q = q
                    .bind(REGISTRABLE_NS)
                    .bind(format!("{reg}/"))
                    .bind(format!("{reg}0"));
            }
            for row in q.fetch_all(self.conn()).await? {
                let key: String = row.try_get(0)?;
                // The key is `<registrable>/<name>`; neither part holds a `/`.
                let reg = key.split_once('/').map_or(key.as_str(), |(r, _)| r);
                out.push((
                    reg.to_owned(),
                    row.try_get(1)?,
                    row.try_get(2)?,
                    row.try_get(3)?,
                ));
            }
        }
        out.sort_by_key(|(_, id, _, _)| *id);
        Ok(out)
    }

    /// Reserve `n` object ids for [`Tx::create_many`]: the database will not hand
    /// them to any other insert, so a caller can refer to objects (owner, parent,
    /// ids inside documents) before writing them. Writers are serialised (see
    /// [`crate::Store::begin`]), so the reservation is race-free; on SQLite it is
    /// undone with the transaction, on PostgreSQL (sequences are not transactional)
    /// an abandoned reservation leaves a gap.
    pub async fn reserve_ids(&mut self, n: u32) -> Result<Range<Id>> {
        if n == 0 {
            return Ok(0..0);
        }
        let n = i64::from(n);
        let last: i64 = match self.backend {
            BackendKind::Sqlite => {
                // AUTOINCREMENT gives max(sqlite_sequence, max(id)) + 1.
                let seq: Option<i64> =
                    sqlx::query_scalar("SELECT seq FROM sqlite_sequence WHERE name = 'objects'")
                        .fetch_optional(self.conn())
                        .await?;
                let max: Option<i64> = sqlx::query_scalar("SELECT MAX(id) FROM objects")
                    .fetch_one(self.conn())
                    .await?;
                let last = seq.unwrap_or(0).max(max.unwrap_or(0)) + n;
                if seq.is_some() {
                    sqlx::query("UPDATE sqlite_sequence SET seq = $1 WHERE name = 'objects'")
                        .bind(last)
                        .execute(self.conn())
                        .await?;
                } else {
                    sqlx::query("INSERT INTO sqlite_sequence (name, seq) VALUES ('objects', $1)")
                        .bind(last)
                        .execute(self.conn())
                        .await?;
                }
                last
            }
            BackendKind::Postgres => {
                sqlx::query_scalar(
                    "SELECT setval(pg_get_serial_sequence('objects', 'id'), \
                     nextval(pg_get_serial_sequence('objects', 'id')) + $1 - 1)",
                )
                .bind(n)
                .fetch_one(self.conn())
                .await?
            }
        };
        Ok(last - n + 1..last + 1)
    }

    /// Insert many objects of one kind with ids from [`Tx::reserve_ids`]: what
    /// [`Tx::create`] does for each (unique keys derived from the document, the
    /// reseller from the owner, accounts owning themselves, one `create` event each),
    /// in a few multi-row statements. All or nothing: a taken name or key, one
    /// claimed twice in `objs`, a missing owner or parent is an error and the caller
    /// drops the transaction. Parents must exist before their children's call.
    pub async fn create_many<T: Object>(&mut self, objs: Vec<(Id, NewObject<T>)>) -> Result<()> {
        if objs.is_empty() {
            return Ok(());
        }
        let kind = T::KIND.as_str();
        let mut names = HashSet::with_capacity(objs.len());
        let mut claimed: HashSet<(&'static str, String)> = HashSet::new();
        let mut keys_of: Vec<(Id, Vec<UniqueKey>)> = Vec::with_capacity(objs.len());
        let mut rows = Vec::with_capacity(objs.len());
        for (id, obj) in objs {
            if !names.insert(obj.name.clone()) {
                return Err(StoreError::Conflict {
                    ns: kind.to_owned(),
                    key: obj.name,
                });
            }
            let mut keys = dedup_keys(obj.data.unique_keys(&obj.name));
            if T::KIND == Kind::Domain {
                keys.push(UniqueKey {
                    ns: REGISTRABLE_NS,
                    key: registrable_key(&obj.name),
                });
            }
            for k in &keys {
                if !claimed.insert((k.ns, k.key.clone())) {
                    return Err(StoreError::Conflict {
                        ns: k.ns.to_owned(),
                        key: k.key.clone(),
                    });
                }
            }
            keys_of.push((id, keys));
            let json = serde_json::to_string(&obj.data).map_err(|source| StoreError::Corrupt {
                kind,
                id,
                source,
            })?;
            let (owner, reseller) = match obj.owner {
                Some(o) => (Some(o), self.reseller_for(o).await?),
                None if T::KIND == Kind::Account => {
                    let account: Account = serde_json::from_str(&json)
                        .map_err(|source| StoreError::Corrupt { kind, id, source })?;
                    if account.kind == AccountKind::Admin {
                        (None, None)
                    } else {
                        (Some(id), sql::reseller_of(id, &account))
                    }
                }
                None => (None, None),
            };
            rows.push(Row1 {
                id,
                name: obj.name,
                owner,
                reseller,
                parent: obj.parent,
                json,
            });
        }
        // Names and keys already held (writers are serialised: no one takes them
        // between this check and the insert).
        let names: Vec<String> = names.into_iter().collect();
        for part in names.chunks(PER_STATEMENT) {
            let q = format!(
                "SELECT name FROM objects WHERE kind = {} AND name IN ({})",
                sql::param(self.backend, 1),
                placeholders(self.backend, 2, part.len())
            );
            let mut q = sqlx::query_scalar(AssertSqlSafe(q)).bind(kind);
            for n in part {
                q = q.bind(n.clone());
            }
            let taken: Option<String> = q.fetch_optional(self.conn()).await?;
            if let Some(key) = taken {
                return Err(StoreError::Conflict {
                    ns: kind.to_owned(),
                    key,
                });
            }
        }
        let mut by_ns: HashMap<&'static str, Vec<String>> = HashMap::new();
        for (ns, key) in claimed {
            by_ns.entry(ns).or_default().push(key);
        }
        for (ns, keys) in &by_ns {
            if let Some((key, _, _)) = self.find_keys(ns, keys).await?.into_iter().next() {
                return Err(StoreError::Conflict {
                    ns: (*ns).to_owned(),
                    key,
                });
            }
        }
        let now = sql::now_micros();
        for part in rows.chunks(OBJECTS_PER_INSERT) {
            let q = format!(
                "INSERT INTO objects (id, kind, name, owner, reseller, parent, data, created_rev, \
                 updated_rev, created_at, updated_at) VALUES {}",
                tuples(self.backend, 1, part.len(), 11)
            );
            let mut q = sqlx::query(AssertSqlSafe(q));
            for r in part {
                q = q
                    .bind(r.id)
                    .bind(kind)
                    .bind(r.name.clone())
                    .bind(r.owner)
                    .bind(r.reseller)
                    .bind(r.parent)
                    .bind(r.json.clone())
                    .bind(self.rev)
                    .bind(self.rev)
                    .bind(now)
                    .bind(now);
            }
            q.execute(self.conn()).await.map_err(|e| {
                let parent = part.iter().find_map(|r| r.parent);
                crate::insert_error(e, kind, &format!("one of {} names", part.len()), parent)
            })?;
        }
        let keys: Vec<(Id, UniqueKey)> = keys_of
            .into_iter()
            .flat_map(|(id, ks)| ks.into_iter().map(move |k| (id, k)))
            .collect();
        for part in keys.chunks(PER_STATEMENT / 3) {
            let q = format!(
                "INSERT INTO object_keys (ns, key, object_id) VALUES {}",
                tuples(self.backend, 1, part.len(), 3)
            );
            let mut q = sqlx::query(AssertSqlSafe(q));
            for (id, k) in part {
                q = q.bind(k.ns).bind(k.key.clone()).bind(*id);
            }
            q.execute(self.conn())
                .await
                .map_err(|e| sql::unique(e, "key", &format!("one of {} keys", part.len())))?;
        }
        for r in rows {
            self.record(
                "create",
                kind,
                Some(r.id),
                &r.name,
                r.owner,
                r.reseller,
                "{}".to_owned(),
            );
        }
        Ok(())
    }
}
