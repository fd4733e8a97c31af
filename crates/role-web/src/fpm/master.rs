//! One php-fpm master process and the pools configured in it.
//!
//! A master keeps its config, pid file and log in its own directory
//! (`<php dir>/m<id>/`), so its process title (`php-fpm: master process
//! (<state dir>/…/m<id>/php-fpm.conf)`) names the agent's state dir, which is how
//! `hostplane up` finds an orphaned master. Its pools are *live* (routed to by the
//! plan) or *retired* (no longer wanted, still configured: a master is never
//! reloaded to drop a pool, since a reload restarts every worker of every pool).
//! [`render_config`] is pure and unit-tested.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use rustix::process::{Pid, Signal};
use tokio::process::{Child, Command};

use super::{io_err, FpmError};
use crate::plan::PhpSite;

/// How long a started master may take to open every pool socket.
const READY_TIMEOUT: Duration = Duration::from_secs(15);

/// Quote a value for php-fpm's INI syntax (paths may not contain `"` or newlines;
/// the engine's own paths never do).
fn q(v: &Path) -> String {
    format!("\"{}\"", v.display())
}

/// The whole php-fpm configuration of a master in `dir` serving `pools` (pure).
/// `as_root` adds the `user`/`group` of each pool and the socket owner.
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
             php_admin_flag[log_errors] = on\n\
             php_admin_flag[expose_php] = off\n\
             php_admin_value[disable_functions] = exec,passthru,shell_exec,system,proc_open,popen,pcntl_exec\n",
            sock = q(&p.socket),
            tmp = q(&p.tmp_dir),
        ));
        // The site's php.ini values (checked by `model::web`: known keys, values
        // without spaces, quotes or newlines).
        for line in &p.ini {
            c.push_str(line);
            c.push('\n');
        }
    }
    c
}

/// One php-fpm master.
#[derive(Debug)]
pub(super) struct Master {
    /// Its directory: config, pid file, log.
    pub dir: PathBuf,
    /// The PHP version it runs (`None`: the default php-fpm); its pools all ask
    /// for this one.
    pub version: Option<String>,
    /// The process while it runs (it leads its own session: php-fpm calls `setsid`).
    child: Option<Child>,
    /// Pools the plan routes to.
    pub live: Vec<PhpSite>,
    /// Pools still configured but no longer wanted (idle: `ondemand` keeps no
    /// worker without requests, and nothing routes a request to them).
    pub retired: Vec<PhpSite>,
}

impl Master {
    /// A master (not started) in `dir` for `pools`.
    pub fn new(dir: PathBuf, version: Option<String>, pools: Vec<PhpSite>) -> Self {
        Self {
            dir,
            version,
            child: None,
            live: pools,
            retired: Vec::new(),
        }
    }

    /// Write the config of its live pools (retired ones are dropped: only ever
    /// called when the process is (re)started) and start it.
    pub fn start(&mut self, binary: &Path, as_root: bool) -> Result<(), FpmError> {
        self.retired.clear();
        std::fs::create_dir_all(&self.dir)
            .map_err(io_err(format!("creating {}", self.dir.display())))?;
        let conf = self.dir.join("php-fpm.conf");
        let text = render_config(&self.dir, &self.live, as_root);
        durable::write_atomic(&conf, text.as_bytes(), 0o644)
            .map_err(io_err(format!("writing {}", conf.display())))?;
        for p in &self.live {
            // Left by a master that was killed; nobody else holds it.
            let _ = std::fs::remove_file(&p.socket);
        }
        let child = Command::new(binary)
            .arg("--nodaemonize")
            .arg("--fpm-config")
            .arg(&conf)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(io_err(format!("starting {}", binary.display())))?;
        tracing::info!(pid = child.id(), pools = self.live.len(), dir = %self.dir.display(), "php-fpm master started");
        self.child = Some(child);
        Ok(())
    }

    /// The process id while it runs.
    pub fn pid(&mut self) -> Option<u32> {
        if !self.running() {
            return None;
        }
        self.child.as_ref().and_then(|c| c.id())
    }

    /// Whether the process is alive (reaps it when it exited).
    pub fn running(&mut self) -> bool {
        match self.child.as_mut().map(|c| c.try_wait()) {
            Some(Ok(None)) => true,
            Some(Ok(Some(status))) => {
                tracing::warn!(%status, dir = %self.dir.display(), "php-fpm master exited");
                self.child = None;
                false
            }
            Some(Err(_)) | None => false,
        }
    }

    /// Wait until every live pool's socket listens. Checked in `/proc/net/unix`,
    /// not by connecting: with `pm = ondemand` a connection starts a worker, and
    /// a master with a worker counts as in use ([`Master::idle`]) for a minute.
    pub async fn wait_ready(&mut self) -> Result<(), FpmError> {
        let deadline = tokio::time::Instant::now() + READY_TIMEOUT;
        loop {
            let listening = listening_unix_sockets().unwrap_or_default();
            let missing = self
                .live
                .iter()
                .find(|p| !listening.contains(p.socket.as_os_str().as_encoded_bytes()))
                .map(|p| p.socket.display().to_string());
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
                return Err(FpmError::NotReady(format!("{missing} does not listen")));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    fn signal(&self, sig: Signal) {
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

    /// Ask it to stop (SIGTERM: it stops its workers); [`Master::reap`] waits.
    pub fn terminate(&mut self) {
        if self.running() {
            self.signal(Signal::TERM);
        }
    }

    /// Ask it to stop gracefully (SIGQUIT: workers finish their request first).
    pub fn quit(&mut self) {
        if self.running() {
            self.signal(Signal::QUIT);
        }
    }

    /// Whether it runs without a single worker: none of its pools served a
    /// request within `pm.process_idle_timeout`, so nothing of it is in use.
    pub fn idle(&mut self) -> bool {
        let Some(pid) = self.pid() else {
            return false;
        };
        std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children"))
            .is_ok_and(|c| c.trim().is_empty())
    }

    /// Wait up to 5 s for the process to exit after [`Master::terminate`], then
    /// kill it.
    pub async fn reap(&mut self) {
        if let Some(mut child) = self.child.take() {
            if tokio::time::timeout(Duration::from_secs(5), child.wait())
                .await
                .is_err()
            {
                let _ = child.kill().await;
            }
            tracing::info!(dir = %self.dir.display(), "php-fpm master stopped");
        }
    }
}

impl Drop for Master {
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

/// `__SO_ACCEPTCON` in `/proc/net/unix`'s flags: the socket listens.
const SO_ACCEPTCON: u32 = 0x10000;

/// The paths of the listening unix sockets of this network namespace.
fn listening_unix_sockets() -> std::io::Result<std::collections::HashSet<Vec<u8>>> {
    let text = std::fs::read("/proc/net/unix")?;
    Ok(parse_listening(&text))
}

/// The listening paths in the text of `/proc/net/unix` (pure): lines of
/// `Num RefCount Protocol Flags Type St Inode [Path]`, flags in hex.
fn parse_listening(text: &[u8]) -> std::collections::HashSet<Vec<u8>> {
    text.split(|b| *b == b'\n')
        .skip(1)
        .filter_map(|line| {
            let mut f = line.split(|b| *b == b' ').filter(|f| !f.is_empty());
            let flags = f.nth(3)?;
            let flags = u32::from_str_radix(std::str::from_utf8(flags).ok()?, 16).ok()?;
            let path = f.nth(3)?;
            (flags & SO_ACCEPTCON != 0).then(|| path.to_vec())
        })
        .collect()
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
            version: None,
            ini: vec!["php_admin_value[memory_limit] = 256M".into()],
        };
        let c = render_config(Path::new("/st/php/m1"), &[pool], true);
        assert!(c.contains("[hp-a-example]\nuser = hp-a-example\ngroup = hp-a-example\n"));
        assert!(c.contains("listen = \"/st/php/hp-a-example.sock\"\n"));
        assert!(c.contains(
            "php_admin_value[open_basedir] = \"/st/content/a.example/:/st/php/tmp/a.example/\"\n"
        ));
        assert!(c.contains("daemonize = no\n"));
        assert!(c.contains("\nphp_admin_value[memory_limit] = 256M\n"));
        assert!(c.contains("pid = \"/st/php/m1/php-fpm.pid\"\n"));
        let c = render_config(Path::new("/st/php/m1"), &[], false);
        assert!(!c.contains("user ="));
    }

    #[test]
    fn listening_sockets_are_read_from_proc_net_unix() {
        let text = b"Num       RefCount Protocol Flags    Type St Inode Path\n\
            0000000000000000: 00000002 00000000 00010000 0001 01 41093 /st/php/hp-a.sock\n\
            0000000000000000: 00000002 00000000 00000000 0001 03 41094 /st/php/hp-b.sock\n\
            0000000000000000: 00000002 00000000 00010000 0001 01 41095\n\
            0000000000000000: 00000002 00000000 00010000 0001 01 41096 @abstract\n";
        let l = parse_listening(text);
        assert!(l.contains(&b"/st/php/hp-a.sock"[..]));
        assert!(!l.contains(&b"/st/php/hp-b.sock"[..]));
        assert_eq!(l.len(), 2);
        // This process's own listening socket is seen.
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.sock");
        let _l = std::os::unix::net::UnixListener::bind(&path).unwrap();
        let all = listening_unix_sockets().unwrap();
        assert!(all.contains(path.as_os_str().as_encoded_bytes()));
    }
}
