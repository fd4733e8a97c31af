//! Child processes of `hostplane up`: the controller and one agent per server.
//! Spawned from this same binary, with their logs in `<data_dir>/logs/`; stopped
//! with SIGTERM and, after a grace period, SIGKILL.

use anyhow::{bail, Context};
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, Command};

/// How long a child gets between SIGTERM and SIGKILL.
pub const GRACE: Duration = Duration::from_secs(10);
/// How long the controller gets to say where it listens.
const CONTROLLER_START: Duration = Duration::from_secs(60);

/// One supervised process.
#[derive(Debug)]
pub struct Proc {
    /// `controller` or the server name.
    pub name: String,
    /// Arguments after the binary.
    pub args: Vec<String>,
    /// Log file (stdout and stderr, appended).
    pub log: PathBuf,
    /// The running process, if any.
    pub child: Option<Child>,
}

impl Proc {
    /// The process id while running.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().and_then(Child::id)
    }

    /// Start it (output appended to its log). No-op when it runs.
    pub fn spawn(&mut self) -> anyhow::Result<u32> {
        if let Some(pid) = self.pid() {
            return Ok(pid);
        }
        let exe = std::env::current_exe().context("cannot find the hostplane binary")?;
        let log = open_log(&self.log)?;
        let log2 = log
            .try_clone()
            .with_context(|| format!("cannot reuse {}", self.log.display()))?;
        let child = Command::new(exe)
            .args(&self.args)
            .env(crate::EXIT_WITH_PARENT_ENV, "1")
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log2)
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("cannot start the process of {}", self.name))?;
        let pid = child.id().unwrap_or(0);
        self.child = Some(child);
        Ok(pid)
    }

    /// If it has exited since the last look: its status (and it is forgotten).
    pub fn exited(&mut self) -> Option<ExitStatus> {
        let status = self.child.as_mut()?.try_wait().ok().flatten()?;
        self.child = None;
        Some(status)
    }

    /// Kill it at once (SIGKILL) and reap it. Returns the pid it had.
    pub async fn kill(&mut self) -> Option<u32> {
        let mut child = self.child.take()?;
        let pid = child.id();
        child.kill().await.ok();
        pid
    }

    /// SIGTERM, wait up to `grace`, then SIGKILL; reaps it.
    pub async fn terminate(&mut self, grace: Duration) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        if let Some(pid) = child.id() {
            let pid = i32::try_from(pid)
                .ok()
                .and_then(rustix::process::Pid::from_raw);
            if let Some(pid) = pid {
                rustix::process::kill_process(pid, rustix::process::Signal::TERM).ok();
            }
        }
        if tokio::time::timeout(grace, child.wait()).await.is_err() {
            tracing::warn!("{} did not stop within {grace:?}; killing it", self.name);
            child.kill().await.ok();
        }
    }
}

fn open_log(path: &Path) -> anyhow::Result<std::fs::File> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .with_context(|| format!("cannot open the log {}", path.display()))
}

/// The last lines of a log, for error messages.
pub fn log_tail(path: &Path, lines: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// Start `hostplane controller run --config CONFIG --listen LISTEN` and return the
/// process and the URL it announces. Its stdout and stderr go to `log`.
pub async fn start_controller(
    config: &Path,
    listen: std::net::SocketAddr,
    log: PathBuf,
) -> anyhow::Result<(Proc, String)> {
    let exe = std::env::current_exe().context("cannot find the hostplane binary")?;
    let args = vec![
        "controller".to_owned(),
        "run".to_owned(),
        "--config".to_owned(),
        config.display().to_string(),
        "--listen".to_owned(),
        listen.to_string(),
    ];
    let log_file = open_log(&log)?;
    let mut child = Command::new(exe)
        .args(&args)
        .env(crate::EXIT_WITH_PARENT_ENV, "1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(log_file)
        .kill_on_drop(true)
        .spawn()
        .context("cannot start the controller process")?;
    let stdout = child.stdout.take().context("no controller stdout")?;
    let mut lines = BufReader::new(stdout).lines();
    let mut proc = Proc {
        name: "controller".into(),
        args,
        log: log.clone(),
        child: Some(child),
    };
    let announced = tokio::time::timeout(CONTROLLER_START, async {
        while let Ok(Some(line)) = lines.next_line().await {
            if let Some(url) = line
                .trim()
                .strip_prefix("hostplane controller listening on ")
            {
                return Some(url.trim().to_owned());
            }
        }
        None
    })
    .await;
    let url = match announced {
        Ok(Some(url)) => url,
        Ok(None) | Err(_) => {
            proc.terminate(Duration::from_secs(2)).await;
            bail!(
                "the controller did not start; the end of its log ({}):\n{}",
                log.display(),
                log_tail(&log, 15)
            );
        }
    };
    // Keep draining its stdout into the log so it never blocks on a full pipe.
    tokio::spawn(async move {
        let Ok(file) = tokio::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)
            .await
        else {
            return;
        };
        let mut file = file;
        while let Ok(Some(line)) = lines.next_line().await {
            if file
                .write_all(format!("{line}\n").as_bytes())
                .await
                .is_err()
            {
                break;
            }
        }
    });
    Ok((proc, url))
}
