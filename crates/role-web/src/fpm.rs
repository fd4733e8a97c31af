//! PHP-FPM management: one php-fpm master per engine, one pool per PHP site.
//!
//! Each pool runs as the site's own system user (created with `useradd --system`
//! when the engine runs as root; creation is serialised host-wide and the ids are
//! always looked up by name, see [`ensure_user`]), listens on its own unix socket
//! under the engine's PHP directory (mode 0660, owned by the engine's user), and is
//! confined with `open_basedir` to the site's directory plus its private temp dir.
//! The site's directory `<content_root>/<domain>` is made `root:<site group> 0750`,
//! so one site's PHP cannot even list another's files. The master is started when
//! the first pool appears, reloaded (`SIGUSR2`) when the pool set changes, and
//! stopped when none is left. [`render_config`] is pure and unit-tested.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use rustix::process::{Pid, Signal};
use tokio::process::{Child, Command};

use crate::plan::PhpSite;

/// How long a (re)started master may take to open every pool socket.
const READY_TIMEOUT: Duration = Duration::from_secs(15);

/// PHP-FPM could not be configured or started.
#[derive(Debug, thiserror::Error)]
pub enum FpmError {
    /// No php-fpm binary was found (install the Debian package `php-fpm`).
    #[error("php-fpm not found (install the `php-fpm` package or set the php_fpm option)")]
    NoBinary,
    /// A file or process operation failed.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// Why it failed.
        source: std::io::Error,
    },
    /// `useradd` failed.
    #[error("creating user {user}: {detail}")]
    User {
        /// The user.
        user: String,
        /// useradd's output.
        detail: String,
    },
    /// The master did not open the pool sockets in time.
    #[error("php-fpm did not become ready: {0}")]
    NotReady(String),
}

fn io_err(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> FpmError {
    let what = what.into();
    move |source| FpmError::Io { what, source }
}

/// A system user's ids.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ids {
    /// User id.
    pub uid: u32,
    /// Primary group id.
    pub gid: u32,
}

/// Runs and reconfigures one php-fpm master.
#[derive(Debug)]
pub struct FpmManager {
    dir: PathBuf,
    binary: Option<PathBuf>,
    child: Option<Child>,
    pools: Vec<PhpSite>,
    as_root: bool,
}

/// The php-fpm binary of this system: `/usr/sbin/php-fpm`, else the highest
/// `/usr/sbin/php-fpmX.Y`.
pub fn find_binary() -> Option<PathBuf> {
    let plain = Path::new("/usr/sbin/php-fpm");
    if plain.exists() {
        return Some(plain.to_path_buf());
    }
    let mut found: Vec<PathBuf> = std::fs::read_dir("/usr/sbin")
        .ok()?
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("php-fpm"))
        })
        .collect();
    found.sort();
    found.pop()
}

/// Quote a value for php-fpm's INI syntax (paths may not contain `"` or newlines;
/// the engine's own paths never do).
fn q(v: &Path) -> String {
    format!("\"{}\"", v.display())
}

/// The whole php-fpm configuration for `pools` (pure). `as_root` adds the
/// `user`/`group` of each pool and the socket owner.
pub fn render_config(dir: &Path, pools: &[PhpSite], as_root: bool) -> String {
    let mut c = format!(
        "; written by hostplane's web engine; changes are overwritten\n\
         [global]\n\
         pid = {}\n\
         error_log = {}\n\
         daemonize = no\n\
         process_control_timeout = 10s\n",
        q(&dir.join("php-fpm.pid")),
        q(&dir.join("php-fpm.log")),
    );
    for p in pools {
        c.push_str(&format!("\n[{}]\n", p.user));
        if as_root {
            c.push_str(&format!(
                "user = {u}\ngroup = {u}\nlisten.owner = root\nlisten.group = root\n",
                u = p.user
            ));
        }
        let basedir = format!("{}/:{}/", p.site_dir.display(), p.tmp_dir.display());
        c.push_str(&format!(
            "listen = {sock}\n\
             listen.mode = 0660\n\
             pm = ondemand\n\
             pm.max_children = 10\n\
             pm.process_idle_timeout = 60s\n\
             pm.max_requests = 1000\n\
             clear_env = yes\n\
             catch_workers_output = yes\n\
             security.limit_extensions = .php\n\
             php_admin_value[open_basedir] = \"{basedir}\"\n\
             php_admin_value[upload_tmp_dir] = {tmp}\n\
             php_admin_value[sys_temp_dir] = {tmp}\n\
             php_admin_value[session.save_path] = {tmp}\n\
             php_admin_value[upload_max_filesize] = 64M\n\
             php_admin_value[post_max_size] = 64M\n\
             php_admin_flag[log_errors] = on\n\
             php_admin_flag[expose_php] = off\n\
             php_admin_value[disable_functions] = exec,passthru,shell_exec,system,proc_open,popen,pcntl_exec\n",
            sock = q(&p.socket),
            tmp = q(&p.tmp_dir),
        ));
    }
    c
}

impl FpmManager {
    /// A manager keeping its config, pid, log and sockets in `dir`; `binary` is the
    /// php-fpm executable (found with [`find_binary`] when `None`).
    pub fn new(dir: PathBuf, binary: Option<PathBuf>) -> Self {
        Self {
            dir,
            binary: binary.or_else(find_binary),
            child: None,
            pools: Vec::new(),
            as_root: rustix::process::geteuid().is_root(),
        }
    }

    /// The master's pid while it runs.
    pub fn pid(&mut self) -> Option<u32> {
        if !self.running() {
            return None;
        }
        self.child.as_ref().and_then(|c| c.id())
    }

    /// Whether the master is alive.
    pub fn running(&mut self) -> bool {
        match self.child.as_mut().map(|c| c.try_wait()) {
            Some(Ok(None)) => true,
            Some(Ok(Some(status))) => {
                tracing::warn!(%status, "php-fpm master exited");
                self.child = None;
                false
            }
            Some(Err(_)) | None => false,
        }
    }

    /// The pools configured now.
    pub fn pools(&self) -> &[PhpSite] {
        &self.pools
    }

    /// Converge on exactly `pools` (idempotent): users, directories, config file,
    /// then start, reload or stop the master; returns when every socket accepts.
    pub async fn apply(&mut self, pools: &[PhpSite]) -> Result<(), FpmError> {
        if pools.is_empty() {
            self.stop().await;
            self.pools.clear();
            return Ok(());
        }
        let binary = self.binary.clone().ok_or(FpmError::NoBinary)?;
        let running = self.running();
        if running && self.pools == pools {
            return Ok(());
        }
        prepare_dir(&self.dir, self.as_root)?;
        for p in pools {
            prepare_pool(p, self.as_root)?;
        }
        let conf = self.dir.join("php-fpm.conf");
        let text = render_config(&self.dir, pools, self.as_root);
        durable::write_atomic(&conf, text.as_bytes(), 0o644)
            .map_err(io_err(format!("writing {}", conf.display())))?;
        if running {
            self.signal(Signal::USR2);
        } else {
            self.start(&binary, &conf, pools)?;
        }
        self.pools = pools.to_vec();
        self.wait_ready(pools).await
    }

    fn start(&mut self, binary: &Path, conf: &Path, pools: &[PhpSite]) -> Result<(), FpmError> {
        for p in pools {
            let _ = std::fs::remove_file(&p.socket);
        }
        let child = Command::new(binary)
            .arg("--nodaemonize")
            .arg("--fpm-config")
            .arg(conf)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(io_err(format!("starting {}", binary.display())))?;
        tracing::info!(pid = child.id(), pools = pools.len(), "php-fpm started");
        self.child = Some(child);
        Ok(())
    }

    async fn wait_ready(&mut self, pools: &[PhpSite]) -> Result<(), FpmError> {
        let deadline = tokio::time::Instant::now() + READY_TIMEOUT;
        loop {
            let mut missing = None;
            for p in pools {
                if tokio::net::UnixStream::connect(&p.socket).await.is_err() {
                    missing = Some(p.socket.display().to_string());
                    break;
                }
            }
            let Some(missing) = missing else {
                return Ok(());
            };
            if !self.running() {
                return Err(FpmError::NotReady(format!(
                    "master exited; see {}",
                    self.dir.join("php-fpm.log").display()
                )));
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(FpmError::NotReady(format!("{missing} does not accept")));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    fn signal(&mut self, sig: Signal) {
        let pid = self
            .child
            .as_ref()
            .and_then(|c| c.id())
            .and_then(|id| i32::try_from(id).ok())
            .and_then(Pid::from_raw);
        if let Some(pid) = pid {
            if let Err(e) = rustix::process::kill_process(pid, sig) {
                tracing::warn!(error = %e, "signalling php-fpm failed");
            }
        }
    }

    /// Stop the master (SIGTERM: it stops its workers), waiting up to 5 s.
    pub async fn stop(&mut self) {
        if !self.running() {
            self.child = None;
            return;
        }
        self.signal(Signal::TERM);
        if let Some(mut child) = self.child.take() {
            if tokio::time::timeout(Duration::from_secs(5), child.wait())
                .await
                .is_err()
            {
                let _ = child.kill().await;
            }
        }
        tracing::info!("php-fpm stopped");
    }
}

impl Drop for FpmManager {
    fn drop(&mut self) {
        // SIGTERM lets the master take its workers down with it; wait (briefly) so
        // it is reaped here rather than left to whoever inherits it.
        if !self.running() {
            return;
        }
        self.signal(Signal::TERM);
        for _ in 0..200 {
            match self.child.as_mut().map(|c| c.try_wait()) {
                Some(Ok(None)) => std::thread::sleep(Duration::from_millis(10)),
                _ => return,
            }
        }
        if let Some(c) = self.child.as_mut() {
            let _ = c.start_kill();
        }
    }
}

fn set_mode(p: &Path, mode: u32) -> Result<(), FpmError> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode))
        .map_err(io_err(format!("chmod {}", p.display())))
}

fn chown(p: &Path, ids: Ids) -> Result<(), FpmError> {
    std::os::unix::fs::chown(p, Some(ids.uid), Some(ids.gid))
        .map_err(io_err(format!("chown {}", p.display())))
}

fn prepare_dir(dir: &Path, as_root: bool) -> Result<(), FpmError> {
    let tmp = dir.join("tmp");
    std::fs::create_dir_all(&tmp).map_err(io_err(format!("creating {}", tmp.display())))?;
    if as_root {
        // Pool users must reach their socket and temp dir, not list others.
        set_mode(dir, 0o711)?;
        set_mode(&tmp, 0o711)?;
    }
    Ok(())
}

fn prepare_pool(p: &PhpSite, as_root: bool) -> Result<(), FpmError> {
    std::fs::create_dir_all(&p.tmp_dir)
        .map_err(io_err(format!("creating {}", p.tmp_dir.display())))?;
    set_mode(&p.tmp_dir, 0o700)?;
    if !as_root {
        return Ok(());
    }
    let ids = ensure_user(&p.user)?;
    chown(&p.tmp_dir, ids)?;
    ensure_traversable(&p.tmp_dir)?;
    ensure_traversable(&p.site_dir)?;
    if p.site_dir.is_dir() {
        chown(
            &p.site_dir,
            Ids {
                uid: 0,
                gid: ids.gid,
            },
        )?;
        set_mode(&p.site_dir, 0o750)?;
    } else {
        tracing::info!(dir = %p.site_dir.display(), "site content not synced yet");
    }
    Ok(())
}

/// Give "others" search (x) permission on every ancestor of `path` that lacks it,
/// so pool users can reach their site and temp dirs below a private (0700) state
/// directory. Only the x bit is added: nothing becomes listable, and files keep
/// their own modes (the agent's secrets are 0600).
fn ensure_traversable(path: &Path) -> Result<(), FpmError> {
    use std::os::unix::fs::PermissionsExt;
    for dir in path.ancestors().skip(1) {
        if dir.as_os_str().is_empty() {
            continue;
        }
        let meta = std::fs::metadata(dir).map_err(io_err(format!("stat {}", dir.display())))?;
        let mode = meta.permissions().mode() & 0o7777;
        if mode & 0o001 == 0 {
            set_mode(dir, mode | 0o001)?;
        }
    }
    Ok(())
}

/// The ids of system user `name`: its uid from `/etc/passwd` and the gid of the
/// group of the same name from `/etc/group` (the `group = name` php-fpm runs the
/// pool with). `None` unless both exist.
pub fn lookup_user(name: &str) -> Option<Ids> {
    let passwd = std::fs::read_to_string("/etc/passwd").ok()?;
    let group = std::fs::read_to_string("/etc/group").ok()?;
    Some(Ids {
        uid: id_field(&passwd, name)?,
        gid: id_field(&group, name)?,
    })
}

/// The third field (uid or gid) of the entry `name` in a passwd/group file (pure).
fn id_field(text: &str, name: &str) -> Option<u32> {
    text.lines().find_map(|l| {
        let mut f = l.split(':');
        if f.next()? != name {
            return None;
        }
        f.nth(1)?.parse().ok()
    })
}

/// Directories tried, in order, for the host-wide lock file of [`ensure_user`].
const LOCK_DIRS: [&str; 3] = ["/run/lock", "/run", "/tmp"];
/// Name of that lock file.
const LOCK_FILE: &str = "hostplane-site-users.lock";

/// Take the host-wide lock that serialises site-user creation among every engine of
/// this machine (released when the file is dropped).
fn users_lock() -> Result<std::fs::File, FpmError> {
    let dir = LOCK_DIRS
        .iter()
        .map(Path::new)
        .find(|d| d.is_dir())
        .unwrap_or(Path::new("/tmp"));
    let path = dir.join(LOCK_FILE);
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(io_err(format!("opening {}", path.display())))?;
    file.lock()
        .map_err(io_err(format!("locking {}", path.display())))?;
    Ok(file)
}

/// Create system user `name` (with its own group, no home, no shell) if missing,
/// and return the ids the system keeps for it.
///
/// Safe when several engines of one host (the web servers of `hostplane up`) create
/// the same user at once: `useradd` checks that the name is free *before* it locks
/// the account files, so two concurrent runs both succeed and the second replaces
/// the first's uid and gid. Creation therefore happens under a host-wide lock, the
/// name is looked up again under it, and the ids returned are always looked up by
/// name afterwards (never taken from what one `useradd` run made).
pub fn ensure_user(name: &str) -> Result<Ids, FpmError> {
    if let Some(ids) = lookup_user(name) {
        return Ok(ids);
    }
    let _lock = users_lock()?;
    if let Some(ids) = lookup_user(name) {
        return Ok(ids);
    }
    let out = std::process::Command::new("useradd")
        .args(["--system", "--user-group", "--no-create-home"])
        .args(["--home-dir", "/nonexistent", "--shell", "/usr/sbin/nologin"])
        .arg(name)
        .output()
        .map_err(io_err("running useradd"))?;
    // Exit 9: the name is taken (created meanwhile outside this lock); fine.
    if !out.status.success() && out.status.code() != Some(9) {
        return Err(FpmError::User {
            user: name.to_string(),
            detail: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        });
    }
    for _ in 0..20 {
        if let Some(ids) = lookup_user(name) {
            return Ok(ids);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Err(FpmError::User {
        user: name.to_string(),
        detail: "no user and group of that name after useradd".into(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_confines_each_pool() {
        let pool = PhpSite {
            user: "hp-a-example".into(),
            socket: "/st/php/hp-a-example.sock".into(),
            tmp_dir: "/st/php/tmp/a.example".into(),
            site_dir: "/st/content/a.example".into(),
        };
        let c = render_config(Path::new("/st/php"), &[pool], true);
        assert!(c.contains("[hp-a-example]\nuser = hp-a-example\ngroup = hp-a-example\n"));
        assert!(c.contains("listen = \"/st/php/hp-a-example.sock\"\n"));
        assert!(c.contains(
            "php_admin_value[open_basedir] = \"/st/content/a.example/:/st/php/tmp/a.example/\"\n"
        ));
        assert!(c.contains("daemonize = no\n"));
        let c = render_config(Path::new("/st/php"), &[], false);
        assert!(!c.contains("user ="));
    }

    #[test]
    fn ids_are_read_by_exact_name() {
        let passwd = "root:x:0:0::/root:/bin/sh\nhp-ab:x:998:990::/:/x\nhp-a:x:997:991::/:/x\n";
        assert_eq!(id_field(passwd, "hp-a"), Some(997));
        assert_eq!(id_field(passwd, "hp-ab"), Some(998));
        assert_eq!(id_field(passwd, "hp"), None);
        let group = "hp-a:x:996:\nbad:x:nope:\n";
        assert_eq!(id_field(group, "hp-a"), Some(996));
        assert_eq!(id_field(group, "bad"), None);
    }
}
