//! The MariaDB side: reads what the server holds, runs the reconcile actions, and
//! measures database sizes.
//!
//! Ownership: hostplane records every database and login it creates in the table
//! `hostplane.objects` on the server itself (keyed by the registry scope, the
//! server name by default), *before* creating the object; it only ever alters,
//! revokes on or drops objects listed there. A desired name that already exists
//! without a registry entry (the operator's own database or login) is left alone
//! and reported.
//!
//! Grants: `GRANT ALL ON` the database (with `_` escaped, so the grant matches that
//! one database and no look-alike), nothing global (a login has `USAGE` only, so it
//! cannot create databases). Over quota, `INSERT, UPDATE, CREATE` are revoked and
//! the login's connections are closed (database-level privileges are only re-read
//! by new connections).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use model::DbEngine;
use sqlx::mysql::{MySqlPool, MySqlPoolOptions};
use sqlx::{AssertSqlSafe, Row};

use crate::conn::Admin;
use crate::ident::{Name, Verifier};
use crate::plan::{Action, Existing};
use crate::trash::Trash;

/// A connected MariaDB server (cheap to clone: the pool is shared).
#[derive(Clone)]
pub struct Maria {
    pool: MySqlPool,
    admin: Admin,
    scope: String,
    /// Server version string.
    pub version: String,
    /// `(user, db)` → the `Db` pattern as stored in `mysql.db` (for revokes).
    raw_grant_db: Arc<BTreeMap<(String, String), String>>,
}

/// A failed statement or tool, with the statement's first words for context.
#[derive(Debug, thiserror::Error)]
#[error("mariadb: {context}: {message}")]
pub struct MariaError {
    /// What was being done.
    pub context: String,
    /// The server's or tool's message.
    pub message: String,
}

fn err(context: impl Into<String>) -> impl FnOnce(sqlx::Error) -> MariaError {
    let context = context.into();
    move |e| MariaError {
        context,
        message: e.to_string(),
    }
}

/// Undo `mysql.db`'s escaping of `_` and `%` in a database pattern.
fn unescape_pattern(raw: &str) -> String {
    raw.replace("\\_", "_").replace("\\%", "%")
}

/// Quote any server-reported identifier for MariaDB (backticks doubled).
fn quote_any(raw: &str) -> String {
    format!("`{}`", raw.replace('`', "``"))
}

impl Maria {
    /// Connect as the administrator and make sure the registry table exists.
    pub async fn connect(admin: &Admin, scope: &str) -> Result<Self, MariaError> {
        let pool = MySqlPoolOptions::new()
            .max_connections(12)
            .acquire_timeout(Duration::from_secs(5))
            .connect_with(admin.mysql_options())
            .await
            .map_err(err("connect"))?;
        let version: String = sqlx::query_scalar("SELECT VERSION()")
            .fetch_one(&pool)
            .await
            .map_err(err("version"))?;
        let me = Self {
            pool,
            admin: admin.clone(),
            scope: scope.to_owned(),
            version,
            raw_grant_db: Arc::new(BTreeMap::new()),
        };
        me.exec("CREATE DATABASE IF NOT EXISTS `hostplane`".into())
            .await?;
        me.exec(
            "CREATE TABLE IF NOT EXISTS `hostplane`.`objects` (\
             scope VARCHAR(128) NOT NULL, kind VARCHAR(8) NOT NULL, name VARCHAR(64) NOT NULL, \
             owner VARCHAR(255) NOT NULL DEFAULT '', PRIMARY KEY (scope, kind, name)) ENGINE=InnoDB"
                .into(),
        )
        .await?;
        Ok(me)
    }

    /// Remove the accounts `mariadb-install-db` creates besides `root@localhost`
    /// (root over TCP without password) from a managed instance.
    pub async fn harden_managed(&self) -> Result<(), MariaError> {
        let rows = sqlx::query(
            "SELECT CAST(User AS CHAR), CAST(Host AS CHAR) FROM mysql.user \
             WHERE (User = 'root' AND Host <> 'localhost') OR User = ''",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(err("list install accounts"))?;
        for r in rows {
            let (user, host): (String, String) = (
                r.try_get(0).unwrap_or_default(),
                r.try_get(1).unwrap_or_default(),
            );
            let sql = format!(
                "DROP USER IF EXISTS '{}'@'{}'",
                user.replace('\\', "\\\\").replace('\'', "''"),
                host.replace('\\', "\\\\").replace('\'', "''")
            );
            self.exec(sql).await?;
        }
        Ok(())
    }

    async fn exec(&self, sql: String) -> Result<(), MariaError> {
        let context = crate::ident::redact(&sql);
        sqlx::raw_sql(AssertSqlSafe(sql))
            .execute(&self.pool)
            .await
            .map(|_| ())
            .map_err(err(context))
    }

    async fn claim(&self, kind: &str, name: &Name, owner: &str) -> Result<(), MariaError> {
        sqlx::query("INSERT IGNORE INTO `hostplane`.`objects` (scope, kind, name, owner) VALUES (?, ?, ?, ?)")
            .bind(&self.scope)
            .bind(kind)
            .bind(name.as_str())
            .bind(owner)
            .execute(&self.pool)
            .await
            .map(|_| ())
            .map_err(err(format!("register {kind} {name}")))
    }

    async fn forget(&self, kind: &str, name: &str) -> Result<(), MariaError> {
        sqlx::query("DELETE FROM `hostplane`.`objects` WHERE scope = ? AND kind = ? AND name = ?")
            .bind(&self.scope)
            .bind(kind)
            .bind(name)
            .execute(&self.pool)
            .await
            .map(|_| ())
            .map_err(err(format!("unregister {kind} {name}")))
    }

    /// What the server holds now.
    pub async fn existing(&mut self) -> Result<Existing, MariaError> {
        let mut have = Existing::default();
        let rows = sqlx::query("SELECT kind, name FROM `hostplane`.`objects` WHERE scope = ?")
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
        have.present_dbs = sqlx::query_scalar::<_, String>(
            "SELECT CAST(schema_name AS CHAR) FROM information_schema.schemata",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(err("list databases"))?
        .into_iter()
        .collect();
        let users = sqlx::query(
            "SELECT CAST(User AS CHAR), CAST(authentication_string AS CHAR) FROM mysql.user WHERE Host = '%'",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(err("list users"))?;
        for r in users {
            let name: String = r.try_get(0).map_err(err("user name"))?;
            let auth: Option<String> = r.try_get(1).map_err(err("user auth"))?;
            have.present_users.insert(name, auth.unwrap_or_default());
        }
        let grants = sqlx::query(
            "SELECT CAST(User AS CHAR), CAST(Db AS CHAR), \
             CAST(CONCAT(Insert_priv, Update_priv, Create_priv) AS CHAR) FROM mysql.db WHERE Host = '%'",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(err("list grants"))?;
        let mut raw_grant_db = BTreeMap::new();
        for r in grants {
            let user: String = r.try_get(0).map_err(err("grant user"))?;
            let raw: String = r.try_get(1).map_err(err("grant db"))?;
            let privs: String = r.try_get(2).map_err(err("grant privileges"))?;
            if !have.owned_users.contains(&user) {
                continue;
            }
            let db = unescape_pattern(&raw);
            raw_grant_db.insert((user.clone(), db.clone()), raw);
            have.grants.insert((user, db), privs == "YYY");
        }
        self.raw_grant_db = Arc::new(raw_grant_db);
        Ok(have)
    }

    /// Close every connection of `user` (after its privileges shrank).
    async fn kill_sessions(&self, user: &Name) -> Result<(), MariaError> {
        let ids: Vec<u64> = sqlx::query_scalar(
            "SELECT CAST(ID AS UNSIGNED) FROM information_schema.processlist WHERE USER = ?",
        )
        .bind(user.as_str())
        .fetch_all(&self.pool)
        .await
        .map_err(err("list sessions"))?;
        for id in ids {
            // The session may be gone already.
            let _ = self.exec(format!("KILL CONNECTION {id}")).await;
        }
        Ok(())
    }

    async fn set_writable(&self, user: &Name, db: &Name, writable: bool) -> Result<(), MariaError> {
        if writable {
            self.exec(format!(
                "GRANT ALL PRIVILEGES ON {}.* TO {}",
                db.mysql_grant_db(),
                user.mysql_account()
            ))
            .await
        } else {
            self.exec(format!(
                "REVOKE INSERT, UPDATE, CREATE ON {}.* FROM {}",
                db.mysql_grant_db(),
                user.mysql_account()
            ))
            .await?;
            self.kill_sessions(user).await
        }
    }

    /// Run one reconcile action. `owners` gives each desired database's owner.
    pub async fn run(
        &self,
        action: &Action,
        owners: &BTreeMap<Name, String>,
        trash: &Trash,
    ) -> Result<(), MariaError> {
        match action {
            Action::CreateUser(u, v) => {
                self.claim("user", u, "").await?;
                self.exec(format!(
                    "CREATE USER IF NOT EXISTS {} IDENTIFIED BY PASSWORD {}",
                    u.mysql_account(),
                    v.literal()
                ))
                .await
            }
            Action::SetPassword(u, v) => self.set_password(u, v).await,
            Action::CreateDb(d) => {
                let owner = owners.get(d).map(String::as_str).unwrap_or("");
                self.claim("db", d, owner).await?;
                self.create_db(d).await
            }
            Action::RestoreDb(d, entry) => self.restore_db(d, entry, owners, trash).await,
            Action::Grant { user, db, writable } => {
                self.set_writable(user, db, true).await?;
                if !writable {
                    self.set_writable(user, db, false).await?;
                }
                Ok(())
            }
            Action::SetWritable { user, db, writable } => {
                self.set_writable(user, db, *writable).await
            }
            Action::Revoke { user, db } => {
                let raw = self
                    .raw_grant_db
                    .get(&(user.as_str().to_owned(), db.clone()))
                    .cloned()
                    .unwrap_or_else(|| db.clone());
                self.exec(format!(
                    "REVOKE ALL PRIVILEGES ON {}.* FROM {}",
                    quote_any(&raw),
                    user.mysql_account()
                ))
                .await?;
                self.kill_sessions(user).await
            }
            Action::DropUser(u) => {
                self.kill_sessions(u).await?;
                self.exec(format!("DROP USER IF EXISTS {}", u.mysql_account()))
                    .await?;
                self.forget("user", u.as_str()).await
            }
            Action::DropDb(d) => self.drop_db(d, trash).await,
            Action::ForgetUser(u) => self.forget("user", u).await,
            Action::ForgetDb(d) => self.forget("db", d).await,
        }
    }

    async fn set_password(&self, u: &Name, v: &Verifier) -> Result<(), MariaError> {
        self.exec(format!(
            "ALTER USER {} IDENTIFIED BY PASSWORD {}",
            u.mysql_account(),
            v.literal()
        ))
        .await
    }

    async fn create_db(&self, d: &Name) -> Result<(), MariaError> {
        self.exec(format!(
            "CREATE DATABASE IF NOT EXISTS {} CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci",
            d.mysql()
        ))
        .await
    }

    async fn restore_db(
        &self,
        d: &Name,
        entry: &str,
        owners: &BTreeMap<Name, String>,
        trash: &Trash,
    ) -> Result<(), MariaError> {
        let ctx = |m: String| MariaError {
            context: format!("restore {d} from {entry}"),
            message: m,
        };
        if !trash.exists(DbEngine::Mariadb, entry) {
            return Err(ctx(
                "no such trash entry; the database is not created".into()
            ));
        }
        let owner = owners.get(d).map(String::as_str).unwrap_or("");
        self.claim("db", d, owner).await?;
        self.create_db(d).await?;
        if let Err(e) = trash
            .restore(DbEngine::Mariadb, &self.admin, d, entry)
            .await
        {
            // Leave no half-loaded database behind: it is retried from scratch.
            let _ = self
                .exec(format!("DROP DATABASE IF EXISTS {}", d.mysql()))
                .await;
            return Err(ctx(e.to_string()));
        }
        tracing::info!(db = %d, entry, "mariadb database restored from trash");
        Ok(())
    }

    async fn drop_db(&self, d: &Name, trash: &Trash) -> Result<(), MariaError> {
        let owner: String = sqlx::query_scalar(
            "SELECT owner FROM `hostplane`.`objects` WHERE scope = ? AND kind = 'db' AND name = ?",
        )
        .bind(&self.scope)
        .bind(d.as_str())
        .fetch_optional(&self.pool)
        .await
        .map_err(err(format!("owner of {d}")))?
        .unwrap_or_default();
        let entry = trash
            .dump(DbEngine::Mariadb, &self.admin, d, &owner)
            .await
            .map_err(|e| MariaError {
                context: format!("dump {d} before drop (not dropped)"),
                message: e.to_string(),
            })?;
        tracing::info!(db = %d, entry, "mariadb database dumped to trash; dropping");
        self.exec(format!("DROP DATABASE IF EXISTS {}", d.mysql()))
            .await?;
        // Grants outlive a dropped database in mysql.db; remove our logins' grants.
        let pats = [d.as_str().to_owned(), d.as_str().replace('_', "\\_")];
        for ((user, db), raw) in self.raw_grant_db.iter() {
            if db == d.as_str() || pats.contains(raw) {
                if let Ok(u) = Name::new("user", user) {
                    let _ = self
                        .exec(format!(
                            "REVOKE ALL PRIVILEGES ON {}.* FROM {}",
                            quote_any(raw),
                            u.mysql_account()
                        ))
                        .await;
                }
            }
        }
        self.forget("db", d.as_str()).await
    }

    /// Size in bytes (data + indexes) of every database that has tables.
    pub async fn sizes(&self, _names: &[String]) -> Result<BTreeMap<String, u64>, MariaError> {
        let rows = sqlx::query(
            "SELECT CAST(table_schema AS CHAR), \
             CAST(COALESCE(SUM(data_length + index_length), 0) AS UNSIGNED) \
             FROM information_schema.tables GROUP BY table_schema",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(err("database sizes"))?;
        let mut out = BTreeMap::new();
        for r in rows {
            let name: String = r.try_get(0).map_err(err("size name"))?;
            let size: u64 = r.try_get(1).map_err(err("size"))?;
            out.insert(name, size);
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
    fn patterns() {
        assert_eq!(unescape_pattern("a\\_b"), "a_b");
        assert_eq!(quote_any("we`ird"), "`we``ird`");
    }
}
