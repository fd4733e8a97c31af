//! Database and database-user lines (like `POST /v1/databases` and `/v1/db-users`):
//! the db cluster named, the customer's default or the operator's; grants only on the
//! customer's databases of one engine and cluster; users bring the engine-native
//! verifier the old server stored (never a password).

use model::entity::{Account, Cluster, Database, DbUser, Domain, Kind};
use model::{DbEngine, DbIdent, Role, WithField};
use store::{NewObject, Stored, Tx};

use super::apply::{refused, same_or, Applied, Context, LineError, LineResult};
use super::diff::diff;
use crate::error::ApiError;

impl Context {
    /// The db cluster: the one named, else the customer's default, else the operator's.
    async fn db_cluster(
        &mut self,
        tx: &mut Tx,
        named: Option<&str>,
        owner: &Stored<Account>,
    ) -> Result<Stored<Cluster>, LineError> {
        let id = match named {
            Some(n) => match self.view.by_name::<Cluster>(tx, n).await? {
                Some(c) if c.data.role == Role::Db => return Ok(c),
                Some(c) => {
                    return Err(ApiError::invalid(
                        "cluster",
                        "wrong_role",
                        format!("cluster `{n}` is a {} cluster, not a db cluster", c.data.role),
                    )
                    .into())
                }
                None => {
                    return Err(ApiError::invalid(
                        "cluster",
                        "unknown_cluster",
                        format!("there is no cluster `{n}`"),
                    )
                    .into())
                }
            },
            None => match owner.data.default_clusters.get(&Role::Db) {
                Some(id) => *id,
                None => scheduler::default_cluster(&self.clusters, Role::Db).ok_or_else(|| {
                    ApiError::infeasible(
                        "no db cluster to place it on: create one (`hostplane cluster add NAME --role db --default`) or name one",
                    )
                })?,
            },
        };
        self.view
            .by_id::<Cluster>(tx, id)
            .await?
            .filter(|c| c.data.role == Role::Db)
            .ok_or_else(|| refused("the default db cluster no longer exists"))
    }

    pub(super) async fn database(
        &mut self,
        tx: &mut Tx,
        name: &str,
        engine: &str,
        customer: &str,
        cluster: Option<&str>,
        domain: Option<&str>,
    ) -> LineResult {
        let name = DbIdent::new(name).field("name").map_err(ApiError::from)?;
        let engine: DbEngine = engine.parse().field("engine").map_err(ApiError::from)?;
        let owner = self.customer_named(tx, customer).await?;
        let cluster = self.db_cluster(tx, cluster, &owner).await?;
        let domain = match domain {
            None | Some("") => None,
            Some(d) => {
                let d = self.domain_named(tx, "domain", d).await?;
                if d.data.customer != owner.meta.id {
                    return Err(ApiError::invalid(
                        "domain",
                        "foreign_domain",
                        format!("`{}` belongs to another customer", d.meta.name),
                    )
                    .into());
                }
                Some(d)
            }
        };
        if let Some(cur) = self.view.by_name::<Database>(tx, name.as_str()).await? {
            let c = &cur.data;
            let stored_owner = self
                .view
                .by_id::<Account>(tx, c.customer)
                .await?
                .map(|a| a.meta.name);
            let stored_cluster = self
                .view
                .by_id::<Cluster>(tx, c.cluster)
                .await?
                .map(|a| a.meta.name);
            let stored_domain = match c.domain {
                Some(id) => self
                    .view
                    .by_id::<Domain>(tx, id)
                    .await?
                    .map(|d| d.meta.name),
                None => None,
            };
            return same_or(diff(&[
                ("engine", c.engine.to_string(), engine.to_string()),
                (
                    "customer",
                    stored_owner.unwrap_or_default(),
                    owner.meta.name.clone(),
                ),
                (
                    "cluster",
                    stored_cluster.unwrap_or_default(),
                    cluster.meta.name.clone(),
                ),
                (
                    "domain",
                    stored_domain.unwrap_or_default(),
                    domain
                        .as_ref()
                        .map(|d| d.meta.name.clone())
                        .unwrap_or_default(),
                ),
            ]));
        }
        self.check_count(tx, owner.meta.id, Kind::Database).await?;
        self.create(
            tx,
            NewObject {
                name: name.to_string(),
                owner: Some(owner.meta.id),
                parent: Some(owner.meta.id),
                data: Database {
                    customer: owner.meta.id,
                    name,
                    engine,
                    cluster: cluster.meta.id,
                    domain: domain.map(|d| d.meta.id),
                    restore_from: None,
                },
            },
        )
        .await?;
        Ok(Applied::Created)
    }

    pub(super) async fn db_user(
        &mut self,
        tx: &mut Tx,
        name: &str,
        engine: &str,
        customer: &str,
        verifier: &str,
        databases: &[String],
    ) -> LineResult {
        let name = DbIdent::new(name).field("name").map_err(ApiError::from)?;
        let engine: DbEngine = engine.parse().field("engine").map_err(ApiError::from)?;
        check_verifier(engine, verifier)?;
        let owner = self.customer_named(tx, customer).await?;
        let mut ids = Vec::new();
        let mut cluster = None;
        for (i, db) in databases.iter().enumerate() {
            let field = format!("databases[{i}]");
            let found = self.view.by_name::<Database>(tx, db).await?;
            let Some(d) = found.filter(|d| d.data.customer == owner.meta.id) else {
                return Err(ApiError::invalid(
                    field,
                    "unknown_database",
                    format!("the customer has no database `{db}` (put its line before)"),
                )
                .into());
            };
            if d.data.engine != engine || cluster.is_some_and(|c| c != d.data.cluster) {
                return Err(ApiError::invalid(
                    field,
                    "other_server",
                    "a user's databases share its engine and db cluster",
                )
                .into());
            }
            cluster = Some(d.data.cluster);
            ids.push(d.meta.id);
        }
        let cluster = match cluster {
            Some(c) => c,
            None => self.db_cluster(tx, None, &owner).await?.meta.id,
        };
        if let Some(cur) = self.view.by_name::<DbUser>(tx, name.as_str()).await? {
            let u = &cur.data;
            let mut stored: Vec<String> = Vec::new();
            for id in &u.databases {
                if let Some(d) = self.view.by_id::<Database>(tx, *id).await? {
                    stored.push(d.meta.name);
                }
            }
            stored.sort();
            let mut file: Vec<String> = databases.to_vec();
            file.sort();
            let stored_owner = self
                .view
                .by_id::<Account>(tx, u.customer)
                .await?
                .map(|a| a.meta.name);
            return same_or(diff(&[
                ("engine", u.engine.to_string(), engine.to_string()),
                (
                    "customer",
                    stored_owner.unwrap_or_default(),
                    owner.meta.name.clone(),
                ),
                ("databases", stored.join(","), file.join(",")),
                (
                    "password_verifier",
                    if u.password_verifier == verifier {
                        String::new()
                    } else {
                        "(stored verifier)".into()
                    },
                    if u.password_verifier == verifier {
                        String::new()
                    } else {
                        "(file verifier)".into()
                    },
                ),
            ]));
        }
        self.create(
            tx,
            NewObject {
                name: name.to_string(),
                owner: Some(owner.meta.id),
                parent: Some(owner.meta.id),
                data: DbUser {
                    customer: owner.meta.id,
                    name,
                    engine,
                    cluster,
                    password_verifier: verifier.to_owned(),
                    databases: ids,
                },
            },
        )
        .await?;
        Ok(Applied::Created)
    }
}

/// The shape of an engine-native verifier (the db engine checks it fully and
/// rejects a bad one object by object).
fn check_verifier(engine: DbEngine, v: &str) -> Result<(), LineError> {
    let ok = match engine {
        DbEngine::Mariadb => v
            .strip_prefix('*')
            .is_some_and(|h| h.len() == 40 && h.bytes().all(|b| b.is_ascii_hexdigit())),
        DbEngine::Postgres => v.starts_with("SCRAM-SHA-256$") && v.len() <= 400,
    };
    if ok {
        Ok(())
    } else {
        Err(ApiError::invalid(
            "password_verifier",
            "verifier",
            "MariaDB: `*` and 40 hex digits; PostgreSQL: `SCRAM-SHA-256$<iter>:<salt>$<stored>:<server>`",
        )
        .into())
    }
}
