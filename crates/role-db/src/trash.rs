//! The trash: a compressed dump of every database before it is dropped, kept for
//! `trash_days`, and restore from it.
//!
//! Layout: `<state_dir>/trash/<engine>/<db>-<YYYYMMDD>T<HHMMSSmmm>Z.sql.gz`; the
//! entry name reported (and accepted in `restore_from`) is the file name without
//! `.sql.gz`. A dump is written to a temporary name, fsynced, renamed and its
//! directory fsynced before the database is dropped. Entries are opened with
//! `openat2(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS)` below the trash directory.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, SystemTime};

use model::DbEngine;
use serde::Serialize;
use tokio::process::Command;

use crate::conn::Admin;
use crate::ident::Name;
use crate::tools::{self, Tool};

/// Trash failures.
#[derive(Debug, thiserror::Error)]
pub enum TrashError {
    /// A file operation failed.
    #[error("trash {0}: {1}")]
    Io(String, std::io::Error),
    /// A dump or restore tool failed.
    #[error("{0}")]
    Tool(String),
    /// The entry name is not one this engine writes.
    #[error("trash entry `{0}` is not a valid entry name")]
    BadEntry(String),
    /// No such entry.
    #[error("trash entry `{0}` does not exist for {1}")]
    Missing(String, DbEngine),
}

/// One dump in the trash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TrashEntry {
    /// Engine the dump is of.
    pub engine: DbEngine,
    /// The entry name (what `restore_from` takes).
    pub name: String,
    /// The database it was dumped from.
    pub db: String,
    /// Compressed size.
    pub size_bytes: u64,
    /// When it was written (Unix seconds).
    pub created_unix: i64,
    /// The customer that owned the database (empty when unknown).
    pub owner: String,
}

/// The trash area of one engine instance.
#[derive(Debug, Clone)]
pub struct Trash {
    root: PathBuf,
}

const SUFFIX: &str = ".sql.gz";
/// Next to each dump: the owning customer's account name.
const OWNER_SUFFIX: &str = ".owner";

/// Whether `entry` has the shape `<db>-<8 digits>T<9 digits>Z`.
pub fn valid_entry(entry: &str) -> bool {
    let Some((db, stamp)) = entry.rsplit_once('-') else {
        return false;
    };
    let b = stamp.as_bytes();
    Name::new("database", db).is_ok()
        && b.len() == 19
        && b[..8].iter().all(u8::is_ascii_digit)
        && b[8] == b'T'
        && b[9..18].iter().all(u8::is_ascii_digit)
        && b[18] == b'Z'
}

fn stamp(now: time::OffsetDateTime) -> String {
    format!(
        "{:04}{:02}{:02}T{:02}{:02}{:02}{:03}Z",
        now.year(),
        u8::from(now.month()),
        now.day(),
        now.hour(),
        now.minute(),
        now.second(),
        now.millisecond()
    )
}

fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> TrashError {
    let what = what.into();
    move |e| TrashError::Io(what, e)
}

impl Trash {
    /// The trash below `state_dir`.
    pub fn new(state_dir: &Path) -> Self {
        Self {
            root: state_dir.join("trash"),
        }
    }

    /// The directory of one engine's dumps.
    pub fn dir(&self, engine: DbEngine) -> PathBuf {
        self.root.join(engine.as_str())
    }

    /// Every entry, oldest first.
    pub fn list(&self) -> Vec<TrashEntry> {
        let mut out = Vec::new();
        for engine in DbEngine::ALL {
            let Ok(rd) = std::fs::read_dir(self.dir(*engine)) else {
                continue;
            };
            for e in rd.flatten() {
                let file = e.file_name().to_string_lossy().into_owned();
                let Some(name) = file.strip_suffix(SUFFIX) else {
                    continue;
                };
                if !valid_entry(name) {
                    continue;
                }
                let Ok(meta) = e.metadata() else { continue };
                let created = meta
                    .modified()
                    .ok()
                    .and_then(|t| t.duration_since(SystemTime::UNIX_EPOCH).ok())
                    .map(|d| d.as_secs() as i64)
                    .unwrap_or(0);
                let owner = std::fs::read_to_string(
                    self.dir(*engine).join(format!("{name}{OWNER_SUFFIX}")),
                )
                .unwrap_or_default();
                out.push(TrashEntry {
                    engine: *engine,
                    name: name.to_owned(),
                    db: name.rsplit_once('-').map(|(d, _)| d).unwrap_or("").into(),
                    size_bytes: meta.len(),
                    created_unix: created,
                    owner: owner.trim().to_owned(),
                });
            }
        }
        out.sort_by(|a, b| (a.created_unix, &a.name).cmp(&(b.created_unix, &b.name)));
        out
    }

    /// Remove entries older than `days` days; returns how many were removed.
    pub fn expire(&self, days: u32) -> usize {
        let keep = Duration::from_secs(u64::from(days.max(1)) * 86_400);
        let now = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map(|d| d.as_secs() as i64)
            .unwrap_or(0);
        let mut removed = 0;
        for e in self.list() {
            if now - e.created_unix > keep.as_secs() as i64 {
                let dir = self.dir(e.engine);
                let _ = std::fs::remove_file(dir.join(format!("{}{OWNER_SUFFIX}", e.name)));
                if std::fs::remove_file(dir.join(format!("{}{SUFFIX}", e.name))).is_ok() {
                    tracing::info!(entry = %e.name, engine = %e.engine, "trash entry expired");
                    removed += 1;
                }
            }
        }
        removed
    }

    /// Dump `db` (owned by customer `owner`) compressed into the trash, durably;
    /// returns the entry name.
    pub async fn dump(
        &self,
        engine: DbEngine,
        admin: &Admin,
        db: &Name,
        owner: &str,
    ) -> Result<String, TrashError> {
        let dir = self.dir(engine);
        durable::create_private_dir(&dir).map_err(io(dir.display().to_string()))?;
        let entry = format!("{db}-{}", stamp(time::OffsetDateTime::now_utc()));
        let path = dir.join(format!("{entry}{SUFFIX}"));
        let tmp = dir.join(format!(".{entry}{SUFFIX}.partial"));
        let result = self.dump_to(engine, admin, db, &tmp).await;
        let result = result.and_then(|()| {
            let owner_file = dir.join(format!("{entry}{OWNER_SUFFIX}"));
            durable::write_atomic(&owner_file, owner.as_bytes(), 0o600)
                .map_err(io("write owner"))?;
            std::fs::rename(&tmp, &path).map_err(io("rename dump"))?;
            durable::sync_dir(&dir).map_err(io("fsync trash dir"))
        });
        if result.is_err() {
            let _ = std::fs::remove_file(&tmp);
        }
        result.map(|()| entry)
    }

    async fn dump_to(
        &self,
        engine: DbEngine,
        admin: &Admin,
        db: &Name,
        tmp: &Path,
    ) -> Result<(), TrashError> {
        let file = {
            use std::os::unix::fs::OpenOptionsExt;
            std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(tmp)
                .map_err(io(tmp.display().to_string()))?
        };
        let (tool, args) = match engine {
            DbEngine::Mariadb => {
                let mut a = vec!["--no-defaults".to_string()];
                a.extend(admin.mysql_cli_args());
                a.extend(
                    [
                        "--single-transaction",
                        "--routines",
                        "--triggers",
                        "--events",
                        "--hex-blob",
                        "--default-character-set=utf8mb4",
                    ]
                    .map(String::from),
                );
                a.push(db.as_str().to_owned());
                (tools::find(Tool::MariadbDump)?, a)
            }
            DbEngine::Postgres => {
                let mut a = admin.pg_cli_args();
                a.extend(["--no-owner", "--no-privileges", "--format=plain"].map(String::from));
                a.push(format!("--dbname={db}"));
                (tools::find(Tool::PgDump)?, a)
            }
        };
        let mut dump = Command::new(&tool)
            .args(&args)
            .envs(admin.env())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .map_err(io(tool.display().to_string()))?;
        let pipe: Stdio = dump
            .stdout
            .take()
            .ok_or_else(|| TrashError::Tool("dump has no stdout".into()))?
            .try_into()
            .map_err(io("dump pipe"))?;
        let out = file.try_clone().map_err(io("dump file"))?;
        let mut gzip = Command::new(tools::find(Tool::Gzip)?)
            .args(["-c", "-6"])
            .stdin(pipe)
            .stdout(Stdio::from(out))
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .map_err(io("gzip"))?;
        let dumped = dump.wait_with_output().await.map_err(io("dump"))?;
        let zipped = gzip.wait().await.map_err(io("gzip"))?;
        if !dumped.status.success() {
            return Err(TrashError::Tool(format!(
                "{} {db} failed ({}): {}",
                tool.display(),
                dumped.status,
                String::from_utf8_lossy(&dumped.stderr).trim()
            )));
        }
        if !zipped.success() {
            return Err(TrashError::Tool(format!("gzip failed ({zipped})")));
        }
        file.sync_all().map_err(io("fsync dump"))
    }

    /// Open an entry of `engine` below the trash directory (no `..`, no symlinks).
    fn open(&self, engine: DbEngine, entry: &str) -> Result<std::fs::File, TrashError> {
        use rustix::fs::{Mode, OFlags, ResolveFlags};
        if !valid_entry(entry) {
            return Err(TrashError::BadEntry(
                entry.escape_debug().take(80).collect(),
            ));
        }
        let dir_path = self.dir(engine);
        let dir = std::fs::File::open(&dir_path)
            .map_err(|_| TrashError::Missing(entry.to_owned(), engine))?;
        let fd = rustix::fs::openat2(
            &dir,
            format!("{entry}{SUFFIX}"),
            OFlags::RDONLY | OFlags::CLOEXEC,
            Mode::empty(),
            ResolveFlags::BENEATH | ResolveFlags::NO_SYMLINKS,
        )
        .map_err(|e| match e {
            rustix::io::Errno::NOENT => TrashError::Missing(entry.to_owned(), engine),
            e => TrashError::Io(format!("open {entry}"), e.into()),
        })?;
        Ok(std::fs::File::from(fd))
    }

    /// Whether an entry exists.
    pub fn exists(&self, engine: DbEngine, entry: &str) -> bool {
        self.open(engine, entry).is_ok()
    }

    /// Load entry `entry` into the (existing, empty) database `db`.
    pub async fn restore(
        &self,
        engine: DbEngine,
        admin: &Admin,
        db: &Name,
        entry: &str,
    ) -> Result<(), TrashError> {
        let file = self.open(engine, entry)?;
        let mut gunzip = Command::new(tools::find(Tool::Gzip)?)
            .arg("-dc")
            .stdin(Stdio::from(file))
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .map_err(io("gzip"))?;
        let pipe: Stdio = gunzip
            .stdout
            .take()
            .ok_or_else(|| TrashError::Tool("gzip has no stdout".into()))?
            .try_into()
            .map_err(io("gzip pipe"))?;
        let (tool, args) = match engine {
            DbEngine::Mariadb => {
                let mut a = vec!["--no-defaults".to_string()];
                a.extend(admin.mysql_cli_args());
                a.push("--default-character-set=utf8mb4".into());
                a.push(format!("--database={db}"));
                (tools::find(Tool::MariadbClient)?, a)
            }
            DbEngine::Postgres => {
                let mut a = admin.pg_cli_args();
                a.extend(
                    ["-X", "-q", "-v", "ON_ERROR_STOP=1", "--single-transaction"].map(String::from),
                );
                a.push(format!("--dbname={db}"));
                (tools::find(Tool::Psql)?, a)
            }
        };
        let client = Command::new(&tool)
            .args(&args)
            .envs(admin.env())
            .stdin(pipe)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .map_err(io(tool.display().to_string()))?;
        let loaded = client.wait_with_output().await.map_err(io("restore"))?;
        let unzipped = gunzip.wait_with_output().await.map_err(io("gzip"))?;
        if !unzipped.status.success() {
            return Err(TrashError::Tool(format!(
                "gzip -dc {entry} failed: {}",
                String::from_utf8_lossy(&unzipped.stderr).trim()
            )));
        }
        if !loaded.status.success() {
            return Err(TrashError::Tool(format!(
                "loading {entry} into {db} failed ({}): {}",
                loaded.status,
                String::from_utf8_lossy(&loaded.stderr).trim()
            )));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entry_names() {
        let s = stamp(time::macros::datetime!(2026-11-26 01:02:03.456 UTC));
        assert_eq!(s, "20261126T010203456Z");
        assert!(valid_entry(&format!("shop_1-{s}")));
        for bad in [
            "shop",
            "../x-20261126T010203456Z",
            "shop-20261126T010203456Z/..",
            "Shop-20261126T010203456Z",
            "shop-2026112xT010203456Z",
            "shop-20261126T010203456",
        ] {
            assert!(!valid_entry(bad), "{bad}");
        }
    }

    #[test]
    fn expire_removes_only_old_entries() {
        let d = tempfile::tempdir().unwrap();
        let t = Trash::new(d.path());
        let dir = t.dir(DbEngine::Postgres);
        std::fs::create_dir_all(&dir).unwrap();
        let old = dir.join(format!("shop-20200101T000000000Z{SUFFIX}"));
        let new = dir.join(format!("shop-20261126T010203456Z{SUFFIX}"));
        std::fs::write(&old, "x").unwrap();
        std::fs::write(&new, "y").unwrap();
        let ten_days = SystemTime::now() - Duration::from_secs(10 * 86_400);
        std::fs::File::options()
            .write(true)
            .open(&old)
            .unwrap()
            .set_modified(ten_days)
            .unwrap();
        assert_eq!(t.list().len(), 2);
        assert_eq!(t.expire(30), 0);
        assert_eq!(t.expire(7), 1);
        let left = t.list();
        assert_eq!(left.len(), 1);
        assert_eq!(left[0].name, "shop-20261126T010203456Z");
        assert_eq!(
            (left[0].db.as_str(), left[0].engine),
            ("shop", DbEngine::Postgres)
        );
    }

    #[test]
    fn open_refuses_escapes_and_symlinks() {
        let d = tempfile::tempdir().unwrap();
        let t = Trash::new(d.path());
        let dir = t.dir(DbEngine::Mariadb);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(d.path().join("secret"), "x").unwrap();
        let e = "shop-20261126T010203456Z";
        std::os::unix::fs::symlink(d.path().join("secret"), dir.join(format!("{e}{SUFFIX}")))
            .unwrap();
        assert!(t.open(DbEngine::Mariadb, e).is_err());
        assert!(matches!(
            t.open(DbEngine::Mariadb, "../secret"),
            Err(TrashError::BadEntry(_))
        ));
        assert!(t.list().is_empty() || t.list()[0].name == e);
    }
}
