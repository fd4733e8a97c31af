//! The PostgreSQL side: reads what the server holds, runs the reconcile actions, and
//! measures database sizes.
//!
//! Ownership: like MariaDB, every database and role hostplane creates is recorded
//! first in `hostplane.objects` (schema `hostplane` of the admin's maintenance
//! database); only those are ever altered or dropped.
//!
//! Isolation: databases belong to the admin; `CONNECT` is revoked from `PUBLIC` on
//! each, and a login gets `CONNECT, TEMPORARY, CREATE` on its databases plus
//! `USAGE, CREATE` on their `public` schema (and all privileges on tables and
//! sequences already there, e.g. after a restore). Roles are `NOCREATEDB
//! NOCREATEROLE NOSUPERUSER`. A password is set as the SCRAM verifier itself,
//! which PostgreSQL stores as given. Over quota, the role gets
//! `default_transaction_read_only = on` in that database and its sessions there are
//! ended; this is advisory (a session may `SET default_transaction_read_only = off`
//! again), see the crate docs.

use std::collections::BTreeMap;
use std::time::Duration;

use model::DbEngine;
use sqlx::postgres::{PgPool, PgPoolOptions};
use sqlx::{AssertSqlSafe, Connection, Row};

use crate::conn::Admin;
use crate::ident::Name;
use crate::plan::{Action, Existing};
use crate::trash::Trash;

/// A connected PostgreSQL server (cheap to clone: the pool is shared).
#[derive(Clone)]
pub struct Pg {
    pool: PgPool,
    admin: Admin,
    scope: String,
    /// Server version string.
    pub version: String,
}

/// A failed statement or tool.
#[derive(Debug, thiserror::Error)]
#[error("postgres: {context}: {message}")]
pub struct PgError {
    /// What was being done.
    pub context: String,
    /// The server's or tool's message.
    pub message: String,
}

fn err(context: impl Into<String>) -> impl FnOnce(sqlx::Error) -> PgError {
    let context = context.into();
    move |e| PgError {
        context,
        message: e.to_string(),
    }
}

/// Quote any server-reported identifier for PostgreSQL (double quotes doubled).
fn quote_any(raw: &str) -> String {
    format!("\"{}\"", raw.replace('\0', "").replace('"', "\"\""))
}

const READ_ONLY: &str = "default_transaction_read_only=on";

impl Pg {
    /// Connect as the administrator and make sure the registry table exists.
    pub async fn connect(admin: &Admin, scope: &str) -> Result<Self, PgError> {
        let pool = PgPoolOptions::new()
            .max_connections(12)
            .acquire_timeout(Duration::from_secs(5))
            .connect_with(admin.pg_options(None))
            .await
            .map_err(err("connect"))?;
        let version: String = sqlx::query_scalar("SHOW server_version")
            .fetch_one(&pool)
            .await
            .map_err(err("version"))?;
        let me = Self {
            pool,
            admin: admin.clone(),
            scope: scope.to_owned(),
            version,
        };
        // Parallel first starts may race on the catalog: retry once.
        for attempt in 0..3 {
            let r = me
                .exec(
                    "CREATE SCHEMA IF NOT EXISTS hostplane; \
                     CREATE TABLE IF NOT EXISTS hostplane.objects (scope text NOT NULL, \
                     kind text NOT NULL, name text NOT NULL, owner text NOT NULL DEFAULT '', \
                     PRIMARY KEY (scope, kind, name)); \
                     REVOKE ALL ON SCHEMA hostplane FROM PUBLIC"
                        .into(),
                )
                .await;
            match r {
                Ok(()) => break,
                Err(e) if attempt == 2 => return Err(e),
                Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
            }
        }
        Ok(me)
    }

    /// On a managed instance: customers' logins may not connect to the
    /// maintenance databases either.
    pub async fn harden_managed(&self) -> Result<(), PgError> {
        self.exec("REVOKE CONNECT, TEMPORARY ON DATABASE postgres, template1 FROM PUBLIC".into())
            .await
    }

    async fn exec(&self, sql: String) -> Result<(), PgError> {
        let context = crate::ident::redact(&sql);
        sqlx::raw_sql(AssertSqlSafe(sql))
            .execute(&self.pool)
            .await
            .map(|_| ())
            .map_err(err(context))
    }

    /// Run statements inside database `db` (a short-lived admin connection).
    async fn exec_in(&self, db: &str, sql: String) -> Result<(), PgError> {
        let context = format!("in {db}: {}", crate::ident::redact(&sql));
        let mut c = sqlx::PgConnection::connect_with(&self.admin.pg_options(Some(db)))
            .await
            .map_err(err(context.clone()))?;
        let r = sqlx::raw_sql(AssertSqlSafe(sql))
            .execute(&mut c)
            .await
            .map(|_| ())
            .map_err(err(context));
        let _ = c.close().await;
        r
    }

    async fn claim(&self, kind: &str, name: &Name, owner: &str) -> Result<(), PgError> {
        sqlx::query(
            "INSERT INTO hostplane.objects (scope, kind, name, owner) VALUES ($1, $2, $3, $4) \
             ON CONFLICT DO NOTHING",
        )
        .bind(&self.scope)
        .bind(kind)
        .bind(name.as_str())
        .bind(owner)
        .execute(&self.pool)
        .await
        .map(|_| ())
        .map_err(err(format!("register {kind} {name}")))
    }

    async fn forget(&self, kind: &str, name: &str) -> Result<(), PgError> {
        sqlx::query("DELETE FROM hostplane.objects WHERE scope = $1 AND kind = $2 AND name = $3")
            .bind(&self.scope)
            .bind(kind)
            .bind(name)
            .execute(&self.pool)
            .await
            .map(|_| ())
            .map_err(err(format!("unregister {kind} {name}")))
    }

    /// What the server holds now.
    pub async fn existing(&self) -> Result<Existing, PgError> {
        let mut have = Existing::default();
        let rows = sqlx::query("SELECT kind, name FROM hostplane.objects WHERE scope = $1")
            .bind(&self.scope)
            .fetch_all(&self.pool)
            .await
            .map_err(err("read registry"))?;
        for r in rows {
            let kind: String = r.try_get(0).map_err(err("registry kind"))?;
            let name: String = r.try_get(1).map_err(err("registry name"))?;
            match kind.as_str() {
                "db" => have.owned_dbs.insert(name),
                _ => have.owned_users.insert(name),
            };
        }
        have.present_dbs = sqlx::query_scalar::<_, String>("SELECT datname::text FROM pg_database")
            .fetch_all(&self.pool)
            .await
            .map_err(err("list databases"))?
            .into_iter()
            .collect();
        let users = sqlx::query("SELECT rolname::text, COALESCE(rolpassword, '') FROM pg_authid")
            .fetch_all(&self.pool)
            .await
            .map_err(err("list roles"))?;
        for r in users {
            let name: String = r.try_get(0).map_err(err("role name"))?;
            let pw: String = r.try_get(1).map_err(err("role password"))?;
            have.present_users.insert(name, pw);
        }
        let grants = sqlx::query(
            "SELECT r.rolname::text, d.datname::text, \
             EXISTS (SELECT 1 FROM pg_db_role_setting s WHERE s.setrole = r.oid \
                     AND s.setdatabase = d.oid AND $1 = ANY (s.setconfig)) \
             FROM pg_database d CROSS JOIN LATERAL aclexplode(d.datacl) a \
             JOIN pg_roles r ON r.oid = a.grantee WHERE a.privilege_type = 'CONNECT'",
        )
        .bind(READ_ONLY)
        .fetch_all(&self.pool)
        .await
        .map_err(err("list grants"))?;
        for r in grants {
            let user: String = r.try_get(0).map_err(err("grant role"))?;
            let db: String = r.try_get(1).map_err(err("grant db"))?;
            let ro: bool = r.try_get(2).map_err(err("grant read-only"))?;
            if have.owned_users.contains(&user) {
                have.grants.insert((user, db), !ro);
            }
        }
        Ok(have)
    }

    /// End the sessions of `user` (in `db`, or everywhere).
    async fn end_sessions(&self, user: &Name, db: Option<&str>) -> Result<(), PgError> {
        sqlx::query(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
             WHERE usename = $1 AND ($2::text IS NULL OR datname = $2)",
        )
        .bind(user.as_str())
        .bind(db)
        .execute(&self.pool)
        .await
        .map(|_| ())
        .map_err(err(format!("end sessions of {user}")))
    }

    async fn set_writable(&self, user: &Name, db: &Name, writable: bool) -> Result<(), PgError> {
        if writable {
            self.exec(format!(
                "ALTER ROLE {} IN DATABASE {} RESET default_transaction_read_only",
                user.pg(),
                db.pg()
            ))
            .await
        } else {
            self.exec(format!(
                "ALTER ROLE {} IN DATABASE {} SET default_transaction_read_only = on",
                user.pg(),
                db.pg()
            ))
            .await?;
            self.end_sessions(user, Some(db.as_str())).await
        }
    }

    /// Run one reconcile action. `owners` gives each desired database's owner.
    pub async fn run(
        &self,
        action: &Action,
        owners: &BTreeMap<Name, String>,
        trash: &Trash,
    ) -> Result<(), PgError> {
        match action {
            Action::CreateUser(u, v) => {
                self.claim("user", u, "").await?;
                self.exec(format!(
                    "CREATE ROLE {} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION \
                     NOBYPASSRLS NOINHERIT PASSWORD {}",
                    u.pg(),
                    v.literal()
                ))
                .await
            }
            Action::SetPassword(u, v) => {
                self.exec(format!("ALTER ROLE {} PASSWORD {}", u.pg(), v.literal()))
                    .await
            }
            Action::CreateDb(d) => {
                let owner = owners.get(d).map(String::as_str).unwrap_or("");
                self.claim("db", d, owner).await?;
                self.create_db(d).await
            }
            Action::RestoreDb(d, entry) => self.restore_db(d, entry, owners, trash).await,
            Action::Grant { user, db, writable } => {
                self.exec(format!(
                    "GRANT CONNECT, TEMPORARY, CREATE ON DATABASE {} TO {}",
                    db.pg(),
                    user.pg()
                ))
                .await?;
                self.exec_in(
                    db.as_str(),
                    format!(
                        "GRANT USAGE, CREATE ON SCHEMA public TO {u}; \
                         GRANT ALL ON ALL TABLES IN SCHEMA public TO {u}; \
                         GRANT ALL ON ALL SEQUENCES IN SCHEMA public TO {u}",
                        u = user.pg()
                    ),
                )
                .await?;
                self.set_writable(user, db, *writable).await
            }
            Action::SetWritable { user, db, writable } => {
                self.set_writable(user, db, *writable).await
            }
            Action::Revoke { user, db } => {
                self.exec(format!(
                    "REVOKE ALL ON DATABASE {q} FROM {u}; ALTER ROLE {u} IN DATABASE {q} RESET ALL",
                    q = quote_any(db),
                    u = user.pg()
                ))
                .await?;
                self.end_sessions(user, Some(db)).await
            }
            Action::DropUser(u) => self.drop_user(u).await,
            Action::DropDb(d) => self.drop_db(d, trash).await,
            Action::ForgetUser(u) => self.forget("user", u).await,
            Action::ForgetDb(d) => self.forget("db", d).await,
        }
    }

    async fn create_db(&self, d: &Name) -> Result<(), PgError> {
        self.exec(format!(
            "CREATE DATABASE {} TEMPLATE template0 ENCODING 'UTF8'",
            d.pg()
        ))
        .await?;
        self.exec(format!("REVOKE ALL ON DATABASE {} FROM PUBLIC", d.pg()))
            .await?;
        self.exec_in(d.as_str(), "REVOKE ALL ON SCHEMA public FROM PUBLIC".into())
            .await
    }

    async fn restore_db(
        &self,
        d: &Name,
        entry: &str,
        owners: &BTreeMap<Name, String>,
        trash: &Trash,
    ) -> Result<(), PgError> {
        let ctx = |m: String| PgError {
            context: format!("restore {d} from {entry}"),
            message: m,
        };
        if !trash.exists(DbEngine::Postgres, entry) {
            return Err(ctx(
                "no such trash entry; the database is not created".into()
            ));
        }
        let owner = owners.get(d).map(String::as_str).unwrap_or("");
        self.claim("db", d, owner).await?;
        self.create_db(d).await?;
        if let Err(e) = trash
            .restore(DbEngine::Postgres, &self.admin, d, entry)
            .await
        {
            let _ = self
                .exec(format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", d.pg()))
                .await;
            return Err(ctx(e.to_string()));
        }
        tracing::info!(db = %d, entry, "postgres database restored from trash");
        Ok(())
    }

    async fn drop_user(&self, u: &Name) -> Result<(), PgError> {
        self.end_sessions(u, None).await?;
        // Databases where the role owns objects or holds privileges.
        let dbs: Vec<String> = sqlx::query_scalar(
            "SELECT DISTINCT d.datname::text FROM pg_shdepend s JOIN pg_database d ON d.oid = s.dbid \
             WHERE s.refclassid = 'pg_authid'::regclass \
             AND s.refobjid = (SELECT oid FROM pg_roles WHERE rolname = $1) AND d.datallowconn",
        )
        .bind(u.as_str())
        .fetch_all(&self.pool)
        .await
        .map_err(err(format!("dependencies of {u}")))?;
        for db in dbs {
            self.exec_in(
                &db,
                format!(
                    "REASSIGN OWNED BY {u} TO CURRENT_USER; DROP OWNED BY {u}",
                    u = u.pg()
                ),
            )
            .await?;
        }
        self.exec(format!(
            "DROP OWNED BY {u}; DROP ROLE IF EXISTS {u}",
            u = u.pg()
        ))
        .await?;
        self.forget("user", u.as_str()).await
    }

    async fn drop_db(&self, d: &Name, trash: &Trash) -> Result<(), PgError> {
        let owner: String = sqlx::query_scalar(
            "SELECT owner FROM hostplane.objects WHERE scope = $1 AND kind = 'db' AND name = $2",
        )
        .bind(&self.scope)
        .bind(d.as_str())
        .fetch_optional(&self.pool)
        .await
        .map_err(err(format!("owner of {d}")))?
        .unwrap_or_default();
        let entry = trash
            .dump(DbEngine::Postgres, &self.admin, d, &owner)
            .await
            .map_err(|e| PgError {
                context: format!("dump {d} before drop (not dropped)"),
                message: e.to_string(),
            })?;
        tracing::info!(db = %d, entry, "postgres database dumped to trash; dropping");
        self.exec(format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", d.pg()))
            .await?;
        self.forget("db", d.as_str()).await
    }

    /// Size in bytes of every database (`pg_database_size`).
    /// Only `names` are measured: `pg_database_size` fails on a database another
    /// session drops meanwhile.
    pub async fn sizes(&self, names: &[String]) -> Result<BTreeMap<String, u64>, PgError> {
        let rows = sqlx::query(
            "SELECT datname::text, pg_database_size(oid) FROM pg_database \
             WHERE datallowconn AND datname = ANY($1)",
        )
        .bind(names)
        .fetch_all(&self.pool)
        .await
        .map_err(err("database sizes"))?;
        let mut out = BTreeMap::new();
        for r in rows {
            let name: String = r.try_get(0).map_err(err("size name"))?;
            let size: i64 = r.try_get(1).map_err(err("size"))?;
            out.insert(name, u64::try_from(size).unwrap_or(0));
        }
        Ok(out)
    }

    /// Close the pool.
    pub async fn close(&self) {
        self.pool.close().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting() {
        assert_eq!(quote_any("we\"ird"), "\"we\"\"ird\"");
    }
}
