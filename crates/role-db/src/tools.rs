//! Finding the server and client programs the engine runs (dump, restore, the
//! managed servers), and the install hint when they are missing.

use std::path::PathBuf;

/// What to tell the operator when a program is missing.
pub const INSTALL_HINT: &str = "apt-get install mariadb-server postgresql";

/// The programs the engine may run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tool {
    /// `mariadb-dump` (or `mysqldump`).
    MariadbDump,
    /// `mariadb` (or `mysql`), the client.
    MariadbClient,
    /// `mariadbd` (or `mysqld`), the server.
    Mariadbd,
    /// `mariadb-install-db` (or `mysql_install_db`).
    MariadbInstallDb,
    /// `pg_dump` (of the newest installed PostgreSQL).
    PgDump,
    /// `psql`.
    Psql,
    /// `postgres`, the server.
    Postgres,
    /// `initdb`.
    Initdb,
    /// `gzip`.
    Gzip,
}

/// A program is not installed.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{0} is not installed (install with `{INSTALL_HINT}`)")]
pub struct Missing(pub &'static str);

impl From<Missing> for crate::trash::TrashError {
    fn from(m: Missing) -> Self {
        crate::trash::TrashError::Tool(m.to_string())
    }
}

const DIRS: &[&str] = &[
    "/usr/local/sbin",
    "/usr/local/bin",
    "/usr/sbin",
    "/usr/bin",
    "/sbin",
    "/bin",
];

fn in_path(names: &[&str]) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let mut dirs: Vec<PathBuf> = std::env::split_paths(&path).collect();
    dirs.extend(DIRS.iter().map(PathBuf::from));
    names
        .iter()
        .flat_map(|n| dirs.iter().map(move |d| d.join(n)))
        .find(|p| p.is_file())
}

/// The newest `/usr/lib/postgresql/<version>/bin/<name>` (Debian layout).
fn pg_bin(name: &str) -> Option<PathBuf> {
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .flatten()
        .filter_map(|e| {
            let v = e.file_name().to_string_lossy().parse::<u32>().ok()?;
            let p = e.path().join("bin").join(name);
            p.is_file().then_some((v, p))
        })
        .collect();
    versions.sort();
    versions.pop().map(|(_, p)| p)
}

/// Path of `tool`, or which program is missing.
pub fn find(tool: Tool) -> Result<PathBuf, Missing> {
    let found = match tool {
        Tool::MariadbDump => in_path(&["mariadb-dump", "mysqldump"]),
        Tool::MariadbClient => in_path(&["mariadb", "mysql"]),
        Tool::Mariadbd => in_path(&["mariadbd", "mysqld"]),
        Tool::MariadbInstallDb => in_path(&["mariadb-install-db", "mysql_install_db"]),
        Tool::PgDump => pg_bin("pg_dump").or_else(|| in_path(&["pg_dump"])),
        Tool::Psql => pg_bin("psql").or_else(|| in_path(&["psql"])),
        Tool::Postgres => pg_bin("postgres"),
        Tool::Initdb => pg_bin("initdb"),
        Tool::Gzip => in_path(&["gzip"]),
    };
    found.ok_or(Missing(match tool {
        Tool::MariadbDump => "mariadb-dump",
        Tool::MariadbClient => "mariadb",
        Tool::Mariadbd => "mariadbd",
        Tool::MariadbInstallDb => "mariadb-install-db",
        Tool::PgDump => "pg_dump",
        Tool::Psql => "psql",
        Tool::Postgres => "postgres",
        Tool::Initdb => "initdb",
        Tool::Gzip => "gzip",
    }))
}

/// A system user's uid and gid from `/etc/passwd`.
pub fn system_user(name: &str) -> Option<(u32, u32)> {
    let passwd = std::fs::read_to_string("/etc/passwd").ok()?;
    passwd.lines().find_map(|l| {
        let mut f = l.split(':');
        (f.next()? == name).then_some(())?;
        let _pw = f.next()?;
        let uid = f.next()?.parse().ok()?;
        let gid = f.next()?.parse().ok()?;
        Some((uid, gid))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_tools_name_the_install_command() {
        let m = Missing("mariadbd").to_string();
        assert!(m.contains("mariadbd is not installed"), "{m}");
        assert!(
            m.contains("apt-get install mariadb-server postgresql"),
            "{m}"
        );
        assert!(find(Tool::Gzip).is_ok());
        assert_eq!(system_user("root"), Some((0, 0)));
        assert_eq!(system_user("no-such-user-here"), None);
    }
}
