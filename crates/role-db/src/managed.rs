//! Managed instances (`managed = "true"`): the engine runs its own `mariadbd`
//! and/or `postgres` with a private data directory, bound to the server's own
//! address, and restarts them when they exit.
//!
//! Layout below the managed directory (the engine's state dir by default):
//! `mariadb/data`, `mariadb/run/{mariadb.sock,mariadb.pid,error.log}`,
//! `postgres/data`, `postgres/run/{.s.PGSQL.<port>,postgres.log}`. When the agent
//! runs as root the servers run as the `mysql` / `postgres` system users, which own
//! their directories (so the managed directory's parents must be traversable by
//! them). MariaDB gets `root@localhost` over the socket only (the accounts
//! `mariadb-install-db` adds for TCP are dropped); PostgreSQL gets
//! `local all postgres trust` and `scram-sha-256` for every TCP client.
//! Ports: 3306 / 5432, or 13306 / 15432 when the standard port cannot be bound.

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use model::DbEngine;
use tokio::process::{Child, Command};
use tokio::sync::watch;

use crate::conn::Admin;
use crate::tools::{self, Tool};

/// Parent of the data directories used when the state dir is not reachable by
/// the service users (see [`fallback_dir`]).
pub const FALLBACK_ROOT: &str = "/var/lib/hostplane/db";
/// In each fallback directory: the state dir it belongs to.
const FALLBACK_OWNER: &str = "state-dir";

/// `/var/lib/hostplane/db/<server>-<hash of the state dir>`: one per engine state
/// dir, so several agents (e.g. parallel `hostplane up` runs) never share one.
pub fn fallback_dir(server: &str, state_dir: &Path) -> PathBuf {
    use std::os::unix::ffi::OsStrExt;
    let mut h: u64 = 0xcbf2_9ce4_8422_2325; // FNV-1a
    for b in state_dir.as_os_str().as_bytes() {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    let server: String = server
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect();
    PathBuf::from(FALLBACK_ROOT).join(format!("{server}-{h:016x}"))
}

/// Create a fallback directory and record which state dir owns it.
pub fn claim_fallback(dir: &Path, state_dir: &Path) -> std::io::Result<()> {
    use std::os::unix::ffi::OsStrExt;
    std::fs::create_dir_all(dir)?;
    durable::write_atomic(
        &dir.join(FALLBACK_OWNER),
        state_dir.as_os_str().as_bytes(),
        0o600,
    )
}

fn pid_alive(file: &Path) -> bool {
    std::fs::read_to_string(file)
        .ok()
        .and_then(|t| t.lines().next().and_then(|l| l.trim().parse::<i32>().ok()))
        .and_then(rustix::process::Pid::from_raw)
        .map(|pid| rustix::process::test_kill_process(pid).is_ok())
        .unwrap_or(false)
}

/// Remove fallback directories whose state dir no longer exists and whose servers
/// do not run (a finished `hostplane up` test, say). Directories without the
/// owner record are never touched. Returns how many were removed.
pub fn collect_stale_fallbacks() -> usize {
    let Ok(rd) = std::fs::read_dir(FALLBACK_ROOT) else {
        return 0;
    };
    let mut removed = 0;
    for e in rd.flatten() {
        let dir = e.path();
        let Ok(owner) = std::fs::read_to_string(dir.join(FALLBACK_OWNER)) else {
            continue;
        };
        let running = pid_alive(&dir.join("mariadb/run/mariadb.pid"))
            || pid_alive(&dir.join("postgres/data/postmaster.pid"));
        if Path::new(owner.trim()).exists() || running {
            continue;
        }
        if std::fs::remove_dir_all(&dir).is_ok() {
            tracing::info!(dir = %dir.display(), "removed managed data of a vanished state dir");
            removed += 1;
        }
    }
    removed
}

/// What a managed instance is doing, for health.
#[derive(Debug, Clone, Default)]
pub struct ManagedInfo {
    /// The server process's pid while it runs.
    pub pid: Option<u32>,
    /// How many times it was started.
    pub starts: u32,
    /// Last problem (start failure, exit status and log tail).
    pub last_error: Option<String>,
}

/// A supervised server process.
pub struct Managed {
    /// Which engine.
    pub engine: DbEngine,
    /// Address and port it listens on.
    pub listen: (IpAddr, u16),
    /// How the engine reaches it as administrator (local socket).
    pub admin: Admin,
    info: Arc<Mutex<ManagedInfo>>,
    stop: watch::Sender<bool>,
    task: Option<tokio::task::JoinHandle<()>>,
}

struct Spec {
    program: PathBuf,
    args: Vec<String>,
    run_as: Option<(u32, u32)>,
    log: PathBuf,
    /// The signal for a clean shutdown that does not wait for clients: SIGTERM for
    /// mariadbd, SIGINT ("fast" shutdown) for postgres, whose SIGTERM ("smart")
    /// waits until every session has ended.
    stop_signal: rustix::process::Signal,
}

fn pick_port(bind: IpAddr, standard: u16) -> u16 {
    match std::net::TcpListener::bind((bind, standard)) {
        Ok(_) => standard,
        Err(_) => standard + 10_000,
    }
}

fn is_root() -> bool {
    rustix::process::geteuid().is_root()
}

fn make_dir(path: &Path, mode: u32, owner: Option<(u32, u32)>) -> Result<(), String> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::create_dir_all(path).map_err(|e| format!("create {}: {e}", path.display()))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .map_err(|e| format!("chmod {}: {e}", path.display()))?;
    if let Some((uid, gid)) = owner {
        std::os::unix::fs::chown(path, Some(uid), Some(gid))
            .map_err(|e| format!("chown {}: {e}", path.display()))?;
    }
    Ok(())
}

fn service_user(name: &str) -> Result<Option<(u32, u32)>, String> {
    if !is_root() {
        return Ok(None);
    }
    tools::system_user(name)
        .map(Some)
        .ok_or_else(|| format!("system user `{name}` does not exist"))
}

fn log_tail(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().rev().take(3).collect();
    lines.into_iter().rev().collect::<Vec<_>>().join(" | ")
}

async fn run_setup(mut cmd: Command, what: &str) -> Result<(), String> {
    let out = cmd
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .output()
        .await
        .map_err(|e| format!("{what}: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        let tail: Vec<&str> = text.lines().rev().take(4).collect();
        Err(format!(
            "{what} failed ({}): {}",
            out.status,
            tail.join(" | ")
        ))
    }
}

/// Prepare a MariaDB data directory and the server's command line.
async fn mariadb_spec(dir: &Path, bind: IpAddr) -> Result<(Spec, Admin, u16), String> {
    let server = tools::find(Tool::Mariadbd).map_err(|e| e.to_string())?;
    let install = tools::find(Tool::MariadbInstallDb).map_err(|e| e.to_string())?;
    let user = service_user("mysql")?;
    let base = dir.join("mariadb");
    let data = base.join("data");
    let run = base.join("run");
    make_dir(&base, 0o711, None)?;
    make_dir(&run, 0o700, user)?;
    if !data.join("mysql").is_dir() {
        make_dir(&data, 0o700, user)?;
        let mut cmd = Command::new(&install);
        cmd.arg("--no-defaults")
            .arg(format!("--datadir={}", data.display()))
            .args(["--auth-root-authentication-method=normal", "--skip-test-db"]);
        if user.is_some() {
            cmd.arg("--user=mysql");
        }
        // Bootstrap temporary tables go to our own directory, not the shared /tmp.
        cmd.arg(format!("--tmpdir={}", run.display()));
        if let Err(e) = run_setup(cmd, "mariadb-install-db").await {
            // Not initialised (no `mysql` schema): start from scratch next time.
            let _ = std::fs::remove_dir_all(&data);
            return Err(e);
        }
    }
    let port = pick_port(bind, 3306);
    let socket = run.join("mariadb.sock");
    let log = run.join("error.log");
    let mut args = vec![
        "--no-defaults".to_string(),
        format!("--datadir={}", data.display()),
        format!("--bind-address={bind}"),
        format!("--port={port}"),
        format!("--socket={}", socket.display()),
        format!("--pid-file={}", run.join("mariadb.pid").display()),
        format!("--log-error={}", log.display()),
        "--skip-name-resolve".into(),
        format!("--tmpdir={}", run.display()),
        "--innodb-buffer-pool-size=64M".into(),
        "--max-connections=500".into(),
        "--character-set-server=utf8mb4".into(),
        "--collation-server=utf8mb4_unicode_ci".into(),
    ];
    if user.is_some() {
        args.push("--user=mysql".into());
    }
    let admin = Admin::socket(&socket, port, "root", "");
    Ok((
        Spec {
            program: server,
            args,
            run_as: None,
            log,
            stop_signal: rustix::process::Signal::TERM,
        },
        admin,
        port,
    ))
}

const PG_HBA: &str =
    "# written by hostplane role-db: the admin over the socket, everyone else by SCRAM\n\
local all postgres trust\n\
host all all 0.0.0.0/0 scram-sha-256\n\
host all all ::/0 scram-sha-256\n";

/// Prepare a PostgreSQL cluster and the server's command line.
async fn postgres_spec(dir: &Path, bind: IpAddr) -> Result<(Spec, Admin, u16), String> {
    let server = tools::find(Tool::Postgres).map_err(|e| e.to_string())?;
    let initdb = tools::find(Tool::Initdb).map_err(|e| e.to_string())?;
    let user = service_user("postgres")?;
    let base = dir.join("postgres");
    let data = base.join("data");
    let run = base.join("run");
    make_dir(&base, 0o711, None)?;
    make_dir(&run, 0o700, user)?;
    if !data.join("PG_VERSION").is_file() {
        make_dir(&data, 0o700, user)?;
        let mut cmd = Command::new(&initdb);
        cmd.arg(format!("--pgdata={}", data.display())).args([
            "--username=postgres",
            "--auth-local=trust",
            "--auth-host=scram-sha-256",
            "--encoding=UTF8",
            "--locale=C.UTF-8",
        ]);
        if let Some((uid, gid)) = user {
            cmd.uid(uid).gid(gid);
        }
        if let Err(e) = run_setup(cmd, "initdb").await {
            // Not initialised (no PG_VERSION): start from scratch next time.
            let _ = std::fs::remove_dir_all(&data);
            return Err(e);
        }
        let hba = data.join("pg_hba.conf");
        durable::write_atomic(&hba, PG_HBA.as_bytes(), 0o600)
            .map_err(|e| format!("write pg_hba.conf: {e}"))?;
        if let Some((uid, gid)) = user {
            std::os::unix::fs::chown(&hba, Some(uid), Some(gid))
                .map_err(|e| format!("chown pg_hba.conf: {e}"))?;
        }
    }
    let port = pick_port(bind, 5432);
    let args = vec![
        "-D".to_string(),
        data.display().to_string(),
        "-c".into(),
        format!("listen_addresses={bind}"),
        "-p".into(),
        port.to_string(),
        "-c".into(),
        format!("unix_socket_directories={}", run.display()),
        "-c".into(),
        "shared_buffers=32MB".into(),
        "-c".into(),
        "max_connections=200".into(),
        "-c".into(),
        "password_encryption=scram-sha-256".into(),
    ];
    let admin = Admin::socket(&run, port, "postgres", "postgres");
    Ok((
        Spec {
            program: server,
            args,
            run_as: user,
            log: run.join("postgres.log"),
            stop_signal: rustix::process::Signal::INT,
        },
        admin,
        port,
    ))
}

impl Spec {
    fn spawn(&self) -> std::io::Result<Child> {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)?;
        if let Some((uid, gid)) = self.run_as {
            let _ = std::os::unix::fs::chown(&self.log, Some(uid), Some(gid));
        }
        let mut cmd = Command::new(&self.program);
        cmd.args(&self.args)
            .stdin(Stdio::null())
            .stdout(Stdio::from(log.try_clone()?))
            .stderr(Stdio::from(log))
            .kill_on_drop(true);
        if let Some((uid, gid)) = self.run_as {
            cmd.uid(uid).gid(gid);
        }
        cmd.spawn()
    }
}

async fn terminate(child: &mut Child, signal: rustix::process::Signal) {
    if let Some(pid) = child
        .id()
        .and_then(|p| rustix::process::Pid::from_raw(p as i32))
    {
        let _ = rustix::process::kill_process(pid, signal);
        if tokio::time::timeout(Duration::from_secs(30), child.wait())
            .await
            .is_ok()
        {
            return;
        }
    }
    let _ = child.kill().await;
}

async fn supervise(spec: Spec, mut stop: watch::Receiver<bool>, info: Arc<Mutex<ManagedInfo>>) {
    let set = |f: &dyn Fn(&mut ManagedInfo)| {
        if let Ok(mut i) = info.lock() {
            f(&mut i);
        }
    };
    loop {
        if *stop.borrow() {
            return;
        }
        match spec.spawn() {
            Ok(mut child) => {
                let pid = child.id();
                set(&|i| {
                    i.pid = pid;
                    i.starts += 1;
                });
                tokio::select! {
                    status = child.wait() => {
                        let why = format!(
                            "{} exited ({}); restarting: {}",
                            spec.program.display(),
                            status.map(|s| s.to_string()).unwrap_or_else(|e| e.to_string()),
                            log_tail(&spec.log)
                        );
                        tracing::warn!("{why}");
                        set(&|i| { i.pid = None; i.last_error = Some(why.clone()); });
                    }
                    _ = stop.changed() => {
                        terminate(&mut child, spec.stop_signal).await;
                        set(&|i| i.pid = None);
                        return;
                    }
                }
            }
            Err(e) => {
                let why = format!("starting {} failed: {e}", spec.program.display());
                set(&|i| i.last_error = Some(why.clone()));
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs(1)) => {}
            _ = stop.changed() => return,
        }
    }
}

impl Managed {
    /// Prepare (first start: create the data directory) and start supervising the
    /// server of `engine` below `dir`, listening on `bind`.
    pub async fn start(engine: DbEngine, dir: &Path, bind: IpAddr) -> Result<Self, String> {
        let (spec, admin, port) = match engine {
            DbEngine::Mariadb => mariadb_spec(dir, bind).await?,
            DbEngine::Postgres => postgres_spec(dir, bind).await?,
        };
        let info = Arc::new(Mutex::new(ManagedInfo::default()));
        let (stop, rx) = watch::channel(false);
        let task = tokio::spawn(supervise(spec, rx, info.clone()));
        tracing::info!(%engine, %bind, port, "managed database server started");
        Ok(Self {
            engine,
            listen: (bind, port),
            admin,
            info,
            stop,
            task: Some(task),
        })
    }

    /// What the supervisor reports.
    pub fn info(&self) -> ManagedInfo {
        self.info.lock().map(|i| i.clone()).unwrap_or_default()
    }

    /// Stop the server (clean shutdown: SIGTERM for mariadbd, SIGINT for postgres;
    /// SIGKILL after 30 s) and wait for it.
    pub async fn stop(&mut self) {
        let _ = self.stop.send(true);
        if let Some(t) = self.task.take() {
            let _ = t.await;
        }
    }
}

impl Drop for Managed {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
    }
}
