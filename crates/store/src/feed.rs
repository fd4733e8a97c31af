//! The change feed: what changed in the store since a revision, so a reader (the
//! controller's config builder, its key task) keeps an in-memory copy current
//! without re-reading every object.
//!
//! Changed and created objects are those with `updated_rev` greater than the
//! reader's revision (indexed). Deleted objects, children removed by `ON DELETE
//! CASCADE` included, leave a tombstone written by an `AFTER DELETE` trigger with the
//! revision of the deleting transaction (migration `0002_feed.sql`). Revisions are
//! bumped first thing in every write transaction under the write lock, so they
//! commit in order and `> last` misses nothing; the feed is read in one snapshot
//! (SQLite read transaction, PostgreSQL `REPEATABLE READ`), so the revision it
//! reports covers exactly the objects and tombstones it returns.
//!
//! Tombstones are pruned ([`Store::prune_tombstones`]); the highest pruned revision
//! is remembered, and a reader older than it gets [`Changes::TooFarBehind`] and
//! reloads everything (`changes_since(0)`).

use model::entity::{Kind, Object};
use model::Id;
use sqlx::Row;
use time::OffsetDateTime;

use crate::{BackendKind, Meta, Result, Store, StoreError, Stored};

/// One created or changed object as stored: its kind, metadata and JSON document
/// (parsed by the reader with [`RawObject::parse`], since only it knows which kinds
/// it cares about).
#[derive(Debug, Clone, PartialEq)]
pub struct RawObject {
    /// Kind of the object.
    pub kind: Kind,
    /// Metadata columns.
    pub meta: Meta,
    /// The JSON document.
    pub data: String,
}

impl RawObject {
    /// The object as its type; `Corrupt` if the document does not parse (or the
    /// kinds differ, a caller's bug).
    pub fn parse<T: Object>(&self) -> Result<Stored<T>> {
        let corrupt = |source| StoreError::Corrupt {
            kind: T::KIND.as_str(),
            id: self.meta.id,
            source,
        };
        if self.kind != T::KIND {
            return Err(corrupt(serde::de::Error::custom(format!(
                "a {} is not a {}",
                self.kind.as_str(),
                T::KIND.as_str()
            ))));
        }
        Ok(Stored {
            meta: self.meta.clone(),
            data: serde_json::from_str(&self.data).map_err(corrupt)?,
        })
    }
}

/// A deleted object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tombstone {
    /// Kind it had.
    pub kind: Kind,
    /// Its id (ids are never reused).
    pub id: Id,
    /// Revision of the transaction that deleted it.
    pub rev: i64,
}

/// Everything that changed after a revision, up to [`Feed::revision`].
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Feed {
    /// The store revision this feed brings the reader to.
    pub revision: i64,
    /// Objects created or changed, in id order (the current version of each).
    pub changed: Vec<RawObject>,
    /// Objects deleted (ids are never reused, so none of them is in `changed`), in
    /// revision order.
    pub deleted: Vec<Tombstone>,
}

/// The answer of [`Store::changes_since`].
#[derive(Debug, Clone, PartialEq)]
pub enum Changes {
    /// The changes since the asked revision.
    Feed(Feed),
    /// Tombstones the reader would need were pruned: reload with `changes_since(0)`.
    TooFarBehind {
        /// The highest pruned revision.
        pruned: i64,
    },
}

/// Columns of a feed row: the kind, then [`crate::sql::object_cols`].
const FEED_COLS: &str = concat!("kind, ", crate::sql::object_cols!());

/// Decode a row of [`FEED_COLS`].
fn raw_object(row: &sqlx::any::AnyRow) -> Result<RawObject> {
    let kind: String = row.try_get(0)?;
    let meta = crate::sql::meta(row, 1)?;
    Ok(RawObject {
        kind: parse_kind(&kind, meta.id)?,
        meta,
        data: row.try_get(6)?,
    })
}

/// A stored kind name; an unknown one is a decode error (a newer schema).
fn parse_kind(kind: &str, id: Id) -> Result<Kind> {
    Kind::parse(kind).ok_or_else(|| {
        StoreError::Backend(sqlx::Error::Decode(
            format!("unknown kind `{kind}` of object {id}").into(),
        ))
    })
}

impl Store {
    /// What changed after revision `since` (everything for `since <= 0`), read in
    /// one snapshot; [`Changes::TooFarBehind`] when tombstones after `since` may
    /// have been pruned.
    pub async fn changes_since(&self, since: i64) -> Result<Changes> {
        let begin = match self.backend {
            BackendKind::Sqlite => "BEGIN",
            BackendKind::Postgres => "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY",
        };
        let mut tx = self.pool.begin_with(begin).await?;
        let revision: i64 = sqlx::query_scalar("SELECT rev FROM revision WHERE id = 1")
            .fetch_one(&mut *tx)
            .await?;
        if since > 0 {
            let pruned: i64 = sqlx::query_scalar("SELECT pruned FROM feed_horizon WHERE id = 1")
                .fetch_one(&mut *tx)
                .await?;
            if since < pruned {
                return Ok(Changes::TooFarBehind { pruned });
            }
        }
        // No ORDER BY: with `ORDER BY id` SQLite walks the whole table in id order
        // instead of the `updated_rev` index (measured: 20 ms per read at 20,000
        // objects, every build and key pass), so the rows are sorted here.
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {FEED_COLS} FROM objects WHERE updated_rev > $1"
        )))
        .bind(since)
        .fetch_all(&mut *tx)
        .await?;
        let mut changed = rows.iter().map(raw_object).collect::<Result<Vec<_>>>()?;
        changed.sort_unstable_by_key(|o| o.meta.id);
        let deleted = if since > 0 {
            let rows = sqlx::query(
                "SELECT kind, object_id, rev FROM tombstones WHERE rev > $1 ORDER BY rev, object_id",
            )
            .bind(since)
            .fetch_all(&mut *tx)
            .await?;
            rows.iter()
                .map(|r| {
                    let kind: String = r.try_get(0)?;
                    let id: Id = r.try_get(1)?;
                    Ok(Tombstone {
                        kind: parse_kind(&kind, id)?,
                        id,
                        rev: r.try_get(2)?,
                    })
                })
                .collect::<Result<Vec<_>>>()?
        } else {
            Vec::new()
        };
        tx.rollback().await?;
        Ok(Changes::Feed(Feed {
            revision,
            changed,
            deleted,
        }))
    }

    /// Drop the tombstones written before `before` and remember the highest
    /// revision dropped (readers behind it reload fully). Returns how many went.
    pub async fn prune_tombstones(&self, before: OffsetDateTime) -> Result<u64> {
        let cutoff = i64::try_from(before.unix_timestamp_nanos() / 1000).unwrap_or(i64::MAX);
        let mut tx = self.pool.begin().await?;
        let upto: Option<i64> = sqlx::query_scalar("SELECT MAX(rev) FROM tombstones WHERE at < $1")
            .bind(cutoff)
            .fetch_one(&mut *tx)
            .await?;
        let Some(upto) = upto else {
            return Ok(0);
        };
        let gone = sqlx::query("DELETE FROM tombstones WHERE rev <= $1")
            .bind(upto)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        sqlx::query("UPDATE feed_horizon SET pruned = $1 WHERE id = 1 AND pruned < $1")
            .bind(upto)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(gone)
    }
}
