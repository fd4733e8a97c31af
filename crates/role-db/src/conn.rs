//! Admin connection settings of the two servers: parsed from the engine options'
//! URLs (or made for a managed instance), turned into sqlx options and into the
//! arguments and environment of the command-line tools (dump, restore).

use std::path::{Path, PathBuf};
use std::str::FromStr;

use sqlx::mysql::MySqlConnectOptions;
use sqlx::postgres::PgConnectOptions;

/// Default admin URL of MariaDB: root over the Debian socket.
pub const DEFAULT_MARIADB_URL: &str = "mysql://root@localhost/?socket=/run/mysqld/mysqld.sock";
/// Default admin URL of PostgreSQL: `postgres` over the Debian socket directory.
pub const DEFAULT_POSTGRES_URL: &str =
    "postgres:///postgres?host=/var/run/postgresql&user=postgres";

/// How to reach one server as its administrator.
#[derive(Clone)]
pub struct Admin {
    /// Host name or address (ignored when `socket` is set).
    pub host: String,
    /// TCP port.
    pub port: u16,
    /// MariaDB: the socket file; PostgreSQL: the socket directory.
    pub socket: Option<PathBuf>,
    /// Admin user.
    pub user: String,
    /// Admin password, if any (never logged).
    pub password: Option<String>,
    /// PostgreSQL: the maintenance database the admin connects to.
    pub database: String,
}

impl std::fmt::Debug for Admin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Admin")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("socket", &self.socket)
            .field("user", &self.user)
            .finish_non_exhaustive()
    }
}

fn password_of(url: &str) -> Option<String> {
    let u = url::Url::parse(url).ok()?;
    let p = u.password()?;
    Some(
        url::form_urlencoded::parse(format!("p={p}").as_bytes())
            .next()
            .map(|(_, v)| v.into_owned())
            .unwrap_or_else(|| p.to_owned()),
    )
}

impl Admin {
    /// Parse a `mysql://` URL (sqlx syntax, `?socket=` for a socket file).
    pub fn mariadb_url(url: &str) -> Result<Self, String> {
        let o = MySqlConnectOptions::from_str(url).map_err(|e| format!("mariadb_url: {e}"))?;
        Ok(Self {
            host: o.get_host().to_owned(),
            port: o.get_port(),
            socket: o.get_socket().cloned(),
            user: o.get_username().to_owned(),
            password: password_of(url),
            database: String::new(),
        })
    }

    /// Parse a `postgres://` URL (libpq syntax, `?host=/dir` for a socket directory).
    pub fn postgres_url(url: &str) -> Result<Self, String> {
        let o = PgConnectOptions::from_str(url).map_err(|e| format!("postgres_url: {e}"))?;
        Ok(Self {
            host: o.get_host().to_owned(),
            port: o.get_port(),
            socket: o.get_socket().cloned(),
            user: o.get_username().to_owned(),
            password: password_of(url),
            database: o.get_database().unwrap_or("postgres").to_owned(),
        })
    }

    /// A local socket login without password.
    pub fn socket(socket: &Path, port: u16, user: &str, database: &str) -> Self {
        Self {
            host: "localhost".into(),
            port,
            socket: Some(socket.to_owned()),
            user: user.into(),
            password: None,
            database: database.into(),
        }
    }

    /// sqlx options for MariaDB.
    pub fn mysql_options(&self) -> MySqlConnectOptions {
        let mut o = MySqlConnectOptions::new()
            .host(&self.host)
            .port(self.port)
            .username(&self.user);
        if let Some(s) = &self.socket {
            o = o.socket(s);
        }
        if let Some(p) = &self.password {
            o = o.password(p);
        }
        o
    }

    /// sqlx options for PostgreSQL, connected to `database` (the maintenance
    /// database when `None`).
    pub fn pg_options(&self, database: Option<&str>) -> PgConnectOptions {
        let mut o = PgConnectOptions::new_without_pgpass()
            .host(&self.host)
            .port(self.port)
            .username(&self.user)
            .database(database.unwrap_or(&self.database))
            .application_name("hostplane-role-db");
        if let Some(s) = &self.socket {
            o = o.socket(s);
        }
        if let Some(p) = &self.password {
            o = o.password(p);
        }
        o
    }

    /// Arguments of `mariadb`/`mariadb-dump` reaching this server (after
    /// `--no-defaults`); the password goes into [`Admin::env`].
    pub fn mysql_cli_args(&self) -> Vec<String> {
        let mut a = vec![format!("--user={}", self.user)];
        match &self.socket {
            Some(s) => a.push(format!("--socket={}", s.display())),
            None => {
                a.push(format!("--host={}", self.host));
                a.push(format!("--port={}", self.port));
                a.push("--protocol=tcp".into());
            }
        }
        a
    }

    /// Arguments of `psql`/`pg_dump` reaching this server.
    pub fn pg_cli_args(&self) -> Vec<String> {
        let host = match &self.socket {
            Some(s) => s.display().to_string(),
            None => self.host.clone(),
        };
        vec![
            format!("--host={host}"),
            format!("--port={}", self.port),
            format!("--username={}", self.user),
            "--no-password".into(),
        ]
    }

    /// Environment carrying the password to the command-line tools.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        match &self.password {
            Some(p) => vec![("MYSQL_PWD", p.clone()), ("PGPASSWORD", p.clone())],
            None => vec![],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_parse() {
        let m = Admin::mariadb_url(DEFAULT_MARIADB_URL).unwrap();
        assert_eq!(
            m.socket.as_deref(),
            Some(Path::new("/run/mysqld/mysqld.sock"))
        );
        assert_eq!(m.user, "root");
        assert!(m.password.is_none());
        let p = Admin::postgres_url(DEFAULT_POSTGRES_URL).unwrap();
        assert_eq!(p.socket.as_deref(), Some(Path::new("/var/run/postgresql")));
        assert_eq!(p.user, "postgres");
        assert_eq!(p.database, "postgres");
        let t = Admin::postgres_url("postgres://adm:p%40ss@127.0.0.1:5433/maint").unwrap();
        assert_eq!(t.password.as_deref(), Some("p@ss"));
        assert_eq!((t.port, t.database.as_str()), (5433, "maint"));
        assert!(!format!("{t:?}").contains("p@ss"));
        assert_eq!(
            t.pg_cli_args(),
            [
                "--host=127.0.0.1",
                "--port=5433",
                "--username=adm",
                "--no-password"
            ]
        );
    }
}
