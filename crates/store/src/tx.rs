//! [`Tx`], the write transaction: creating, updating, deleting and reassigning
//! objects with their unique keys and audit events, and the group commit.

use std::collections::HashMap;

use model::entity::{Account, Kind, Object};
use model::{AccountKind, Id};
use sqlx::{AssertSqlSafe, Row};
use tokio::sync::OwnedMutexGuard;

use crate::sql;
use crate::{
    group, registrable_key, Actor, BackendKind, Meta, NewObject, Result, StoreError, Stored,
    UniqueKey, REGISTRABLE_NS,
};

/// The keys without duplicates (an object claiming one key twice claims it once).
pub(crate) fn dedup_keys(mut keys: Vec<UniqueKey>) -> Vec<UniqueKey> {
    let mut seen = std::collections::HashSet::new();
    keys.retain(|k| seen.insert((k.ns, k.key.clone())));
    keys
}

/// A write transaction. Every mutation records an audit event; `commit` makes it
/// durable (fsync on SQLite) and returns the new revision.
pub struct Tx {
    /// The writer lock and the open batch (database transaction) this writer works
    /// in, inside its own savepoint; `None` once committed.
    pub(crate) slot: Option<OwnedMutexGuard<group::Slot>>,
    /// The writer queue, to finish or abandon the batch.
    pub(crate) writers: group::Writers,
    /// Revision this transaction commits as.
    pub(crate) rev: i64,
    /// Which backend the transaction runs on (for the few statements that differ).
    pub(crate) backend: BackendKind,
    /// Who acts, for the audit log.
    pub(crate) actor: Actor,
    /// Reseller of each owner account looked up in this transaction.
    pub(crate) resellers: HashMap<Id, Option<Id>>,
    /// Audit events to write at commit.
    pub(crate) events: Vec<PendingEvent>,
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
    pub(crate) fn conn(&mut self) -> &mut sqlx::AnyConnection {
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
    pub(crate) async fn check_key(&mut self, key: &UniqueKey, except: Option<Id>) -> Result<()> {
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
    pub(crate) async fn insert_keys(&mut self, id: Id, keys: &[UniqueKey]) -> Result<()> {
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
    pub(crate) async fn reseller_for(&mut self, owner: Id) -> Result<Option<Id>> {
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
    pub(crate) fn record(
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
    pub(crate) async fn flush_events(&mut self) -> Result<()> {
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
                    sql.push_str(&crate::sql::param(self.backend, b + p));
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
pub(crate) const EVENTS_PER_INSERT: usize = 50;

/// An audit event waiting for [`Tx::commit`].
pub(crate) struct PendingEvent {
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
pub(crate) fn insert_error(
    e: sqlx::Error,
    kind: &'static str,
    name: &str,
    parent: Option<Id>,
) -> StoreError {
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
