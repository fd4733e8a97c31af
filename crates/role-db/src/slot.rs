//! One database server's connection slot (how to reach it, the live connection)
//! and how a plan's actions run on it: phases in order, actions of one phase in
//! parallel except those that touch the same catalog row.

use std::collections::BTreeMap;

use model::DbEngine;

use crate::conn::Admin;
use crate::ident::Name;
use crate::managed::Managed;
use crate::mariadb::Maria;
use crate::plan::{Action, Existing};
use crate::postgres::Pg;
use crate::tools::{self, Tool};
use crate::trash::Trash;

#[derive(Clone)]
pub(crate) enum Conn {
    Maria(Maria),
    Pg(Pg),
}

/// How many actions of one phase run at the same time. PostgreSQL forces a
/// checkpoint per `DROP DATABASE`; concurrent drops share them.
pub(crate) const PARALLEL: usize = 8;

/// Reconcile phases: actions of one phase touch distinct objects and may run
/// concurrently; phases run in order (logins, databases, grants, revokes, login
/// drops, database drops).
pub(crate) fn phase(a: &Action) -> u8 {
    match a {
        Action::CreateUser(..) | Action::SetPassword(..) => 0,
        Action::CreateDb(..) | Action::RestoreDb(..) => 1,
        Action::Grant { .. } | Action::SetWritable { .. } => 2,
        Action::Revoke { .. } => 3,
        Action::DropUser(..) | Action::ForgetUser(..) => 4,
        Action::DropDb(..) | Action::ForgetDb(..) => 5,
    }
}

/// Actions with the same key run one after the other: PostgreSQL refuses
/// concurrent changes of one catalog row ("tuple concurrently updated"), e.g. two
/// grants on one database's ACL, and dropping a login touches the ACLs of every
/// database it had, so login drops run one at a time.
pub(crate) fn serial_key(a: &Action) -> String {
    match a {
        Action::Grant { db, .. } | Action::SetWritable { db, .. } => format!("db:{db}"),
        Action::Revoke { db, .. } => format!("db:{db}"),
        Action::DropUser(_) => "drop-users".into(),
        Action::CreateUser(u, _) | Action::SetPassword(u, _) => format!("user:{u}"),
        Action::ForgetUser(u) => format!("user:{u}"),
        Action::CreateDb(d) | Action::RestoreDb(d, _) | Action::DropDb(d) => format!("db:{d}"),
        Action::ForgetDb(d) => format!("db:{d}"),
    }
}

pub(crate) async fn run_action(
    conn: &Conn,
    a: &Action,
    owners: &BTreeMap<Name, String>,
    trash: &Trash,
) -> Result<(), String> {
    match conn {
        Conn::Maria(m) => m.run(a, owners, trash).await.map_err(|e| e.to_string()),
        Conn::Pg(p) => p.run(a, owners, trash).await.map_err(|e| e.to_string()),
    }
}

/// One database server: how to reach it and the live connection.
pub(crate) struct Slot {
    pub(crate) engine: DbEngine,
    pub(crate) admin: Result<Admin, String>,
    pub(crate) managed: Option<Managed>,
    pub(crate) conn: Option<Conn>,
    pub(crate) version: String,
}

impl Slot {
    pub(crate) async fn ensure_connected(&mut self, scope: &str) -> Result<(), String> {
        if self.conn.is_some() {
            return Ok(());
        }
        let admin = self.admin.clone()?;
        let conn = match self.engine {
            DbEngine::Mariadb => {
                let m = Maria::connect(&admin, scope)
                    .await
                    .map_err(|e| e.to_string())?;
                if self.managed.is_some() {
                    m.harden_managed().await.map_err(|e| e.to_string())?;
                }
                self.version = m.version.clone();
                Conn::Maria(m)
            }
            DbEngine::Postgres => {
                let p = Pg::connect(&admin, scope)
                    .await
                    .map_err(|e| e.to_string())?;
                if self.managed.is_some() {
                    p.harden_managed().await.map_err(|e| e.to_string())?;
                }
                self.version = p.version.clone();
                Conn::Pg(p)
            }
        };
        tracing::info!(engine = %self.engine, version = %self.version, "connected");
        self.conn = Some(conn);
        Ok(())
    }

    pub(crate) async fn existing(&mut self) -> Result<Existing, String> {
        match &mut self.conn {
            Some(Conn::Maria(m)) => m.existing().await.map_err(|e| e.to_string()),
            Some(Conn::Pg(p)) => p.existing().await.map_err(|e| e.to_string()),
            None => Err("not connected".into()),
        }
    }

    pub(crate) async fn sizes(&self, names: &[String]) -> Result<BTreeMap<String, u64>, String> {
        match &self.conn {
            Some(Conn::Maria(m)) => m.sizes(names).await.map_err(|e| e.to_string()),
            Some(Conn::Pg(p)) => p.sizes(names).await.map_err(|e| e.to_string()),
            None => Err("not connected".into()),
        }
    }

    pub(crate) async fn disconnect(&mut self) {
        match self.conn.take() {
            Some(Conn::Maria(m)) => m.close().await,
            Some(Conn::Pg(p)) => p.close().await,
            None => {}
        }
    }

    /// A missing-binaries hint when the server cannot be reached.
    pub(crate) fn hint(&self) -> &'static str {
        let tool = match self.engine {
            DbEngine::Mariadb => Tool::Mariadbd,
            DbEngine::Postgres => Tool::Postgres,
        };
        if tools::find(tool).is_err() {
            " (not installed here: install with `apt-get install mariadb-server postgresql`)"
        } else {
            ""
        }
    }
}
