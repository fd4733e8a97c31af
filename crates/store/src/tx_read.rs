//! Reads inside a write transaction (they see its own writes), and the
//! registrable-domain key range behind [`Tx::domains_under`].

use model::entity::{Kind, Object};
use model::Id;
use sqlx::Row;

use crate::sql::{self, object_cols};
use crate::{kind_and_id, Result, Stored, Tx, FIND_KEY, REGISTRABLE_NS};

impl Tx {
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
}

/// The [`REGISTRABLE_NS`] key of a domain name (its own name if it has no
/// registrable domain, which validated names always have).
pub(crate) fn registrable_key(name: &str) -> String {
    let reg = model::DomainName::new(name)
        .ok()
        .and_then(|d| model::namespace::registrable(&d).ok())
        .map_or_else(|| name.to_owned(), |r| r.to_string());
    format!("{reg}/{name}")
}

/// The query behind `domains_under`: the key range `registrable/` .. `registrable0`
/// (`0` follows `/`; neither occurs in domain names).
pub(crate) fn domains_under_query(
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
pub(crate) fn id_name_owner(r: &sqlx::any::AnyRow) -> Result<(Id, String, Option<Id>)> {
    Ok((r.try_get(0)?, r.try_get(1)?, r.try_get(2)?))
}
