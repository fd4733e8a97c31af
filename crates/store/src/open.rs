//! Opening a store: connection pools for each backend and the embedded migrations.

use std::path::Path;
use std::time::Duration;

use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::migrate::{Migration, MigrationType, Migrator};
use sqlx::sqlite::SqliteConnectOptions;
use sqlx::{AnyPool, ConnectOptions, Connection, Executor, SqlSafeStr};

use crate::{BackendKind, Result, StoreError};

/// Migrations of the SQLite backend: (version, description, SQL).
const SQLITE_MIGRATIONS: &[(i64, &str, &str)] = &[
    (
        1,
        "init sqlite",
        include_str!("../migrations/sqlite/0001_init.sql"),
    ),
    (
        2,
        "feed sqlite",
        include_str!("../migrations/sqlite/0002_feed.sql"),
    ),
    (
        3,
        "object counts sqlite",
        include_str!("../migrations/sqlite/0003_counters.sql"),
    ),
];
/// Migrations of the PostgreSQL backend: (version, description, SQL).
const POSTGRES_MIGRATIONS: &[(i64, &str, &str)] = &[
    (
        1,
        "init postgres",
        include_str!("../migrations/postgres/0001_init.sql"),
    ),
    (
        2,
        "feed postgres",
        include_str!("../migrations/postgres/0002_feed.sql"),
    ),
    (
        3,
        "object counts postgres",
        include_str!("../migrations/postgres/0003_counters.sql"),
    ),
];

/// Connections of a SQLite store. Writers are serialised anyway (one write lock), so
/// a few connections serve concurrent readers while one transaction writes.
const SQLITE_MAX_CONNECTIONS: u32 = 4;
/// Connections of a PostgreSQL store (per controller process).
const POSTGRES_MAX_CONNECTIONS: u32 = 10;
/// How long a connection waits for another process's write lock (SQLite) and how
/// long a caller waits for a free pooled connection.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);
/// Per-connection settings of SQLite: fsync every commit (`synchronous=FULL`, so an
/// acknowledged write survives power loss), enforce foreign keys (cascades), and wait
/// for other processes' locks.
const SQLITE_PRAGMAS: &str =
    "PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON; PRAGMA busy_timeout = 5000;";

/// The embedded migrations of one backend.
fn migrator(backend: BackendKind) -> Migrator {
    let list = match backend {
        BackendKind::Sqlite => SQLITE_MIGRATIONS,
        BackendKind::Postgres => POSTGRES_MIGRATIONS,
    };
    Migrator::with_migrations(
        list.iter()
            .map(|(version, desc, sql)| {
                Migration::new(
                    *version,
                    (*desc).into(),
                    MigrationType::Simple,
                    (*sql).into_sql_str(),
                    false,
                )
            })
            .collect(),
    )
}

/// Create `path`'s directory and the file itself (mode 0600) if missing.
fn create_private_file(path: &Path) -> std::io::Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    match opts.open(path) {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(e),
    }
}

/// Open a SQLite file: create it (0600), switch it to WAL, migrate, then build the pool.
pub(crate) async fn sqlite(path: &Path) -> Result<AnyPool> {
    sqlx::any::install_default_drivers();
    let path = std::path::absolute(path).map_err(|e| StoreError::Backend(sqlx::Error::Io(e)))?;
    // The Any driver passes the file name through a URL that is percent-decoded.
    if path.to_string_lossy().contains('%') {
        return Err(StoreError::Backend(sqlx::Error::Configuration(
            "the SQLite store path must not contain `%`".into(),
        )));
    }
    create_private_file(&path).map_err(|e| StoreError::Backend(sqlx::Error::Io(e)))?;

    let native = SqliteConnectOptions::new()
        .filename(&path)
        .create_if_missing(true)
        .busy_timeout(BUSY_TIMEOUT);
    // The journal mode is a property of the file; switching needs an exclusive lock
    // that busy_timeout does not wait for, so do it once, alone, before the pool.
    let mut first = native.connect().await?;
    first.execute("PRAGMA journal_mode = WAL").await?;
    first.close().await?;

    let opts = AnyConnectOptions::from_url(&native.to_url_lossy())?;
    let pool = AnyPoolOptions::new()
        .max_connections(SQLITE_MAX_CONNECTIONS)
        .min_connections(0)
        .acquire_timeout(BUSY_TIMEOUT * 6)
        .after_connect(|conn, _meta| {
            Box::pin(async move {
                conn.execute(sqlx::raw_sql(SQLITE_PRAGMAS)).await?;
                Ok(())
            })
        })
        .connect_with(opts)
        .await?;
    migrator(BackendKind::Sqlite).run(&pool).await?;
    Ok(pool)
}

/// Connect to PostgreSQL and migrate (the migrator holds an advisory lock, so several
/// controllers starting at once are safe).
pub(crate) async fn postgres(url: &str) -> Result<AnyPool> {
    sqlx::any::install_default_drivers();
    let opts: AnyConnectOptions = url.parse()?;
    let pool = AnyPoolOptions::new()
        .max_connections(POSTGRES_MAX_CONNECTIONS)
        .min_connections(0)
        .acquire_timeout(BUSY_TIMEOUT * 6)
        .connect_with(opts)
        .await?;
    migrator(BackendKind::Postgres).run(&pool).await?;
    Ok(pool)
}
