//! `up-run.toml`: the processes of a running `hostplane up` (for people and scripts,
//! and for the next `up`). Each child is recorded with its process group (pid and
//! start time) and the boot id, so when an `up` was killed with SIGKILL (no chance to
//! stop anything) the next `up` on the data dir finds whatever is left of its
//! controller, agents and their engines' daemons and stops it before starting.

use anyhow::{bail, Context};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::groups::{self, Group};
use super::procs::{Proc, LEFTOVER_GRACE};
use crate::login::write_private;

/// Name of the file listing the processes of a running `up`.
pub const RUN_STATE_FILE: &str = "up-run.toml";

/// The processes of a running `up`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunState {
    /// The `up` process.
    pub up_pid: u32,
    /// Its start time (clock ticks after boot).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub up_start: Option<u64>,
    /// `/proc/sys/kernel/random/boot_id` when written: start times count from boot.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub boot_id: Option<String>,
    /// The controller's API URL.
    pub url: String,
    /// The control socket.
    pub control_socket: PathBuf,
    /// The controller process.
    pub controller: ProcState,
    /// Each server's agent process.
    pub servers: BTreeMap<String, ProcState>,
}

/// One child of `up`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ProcState {
    /// Its pid (= its process group id) while it runs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pid: Option<u32>,
    /// Start time of that process (clock ticks after boot).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start: Option<u64>,
    /// The path naming its daemons (an agent's state dir).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub marker: Option<String>,
    /// Its config file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config: Option<PathBuf>,
    /// Its log.
    pub log: PathBuf,
}

impl ProcState {
    /// The record of `proc`.
    pub fn of(proc: &Proc, config: Option<PathBuf>) -> ProcState {
        // A leader that exited keeps its group recorded until its leftovers are
        // stopped.
        let group = proc.group.as_ref();
        ProcState {
            pid: group.map(|g| g.pgid),
            start: group.map(|g| g.start),
            marker: group.and_then(|g| g.marker.clone()),
            config,
            log: proc.log.clone(),
        }
    }

    fn group(&self) -> Option<Group> {
        Some(Group {
            pgid: self.pid?,
            start: self.start?,
            marker: self.marker.clone(),
        })
    }
}

/// Write `state` to `<data_dir>/up-run.toml` (0600); a failure is logged only.
pub fn write(data_dir: &Path, state: &RunState) {
    let path = data_dir.join(RUN_STATE_FILE);
    match toml::to_string(state) {
        Ok(text) => {
            if let Err(e) = write_private(&path, text.as_bytes()) {
                tracing::warn!("cannot write {}: {e:#}", path.display());
            }
        }
        Err(e) => tracing::warn!("cannot encode the run state: {e}"),
    }
}

/// What an earlier `up` of this data dir left running (it was killed with SIGKILL,
/// or crashed): stop it all, SIGTERM then SIGKILL, and say so. Refuses when that
/// `up` itself still runs. Call only once no `up` answers on the control socket.
pub async fn stop_leftovers(data_dir: &Path, say: impl Fn(String)) -> anyhow::Result<()> {
    let path = data_dir.join(RUN_STATE_FILE);
    let Ok(text) = std::fs::read_to_string(&path) else {
        return Ok(());
    };
    let Ok(old) = toml::from_str::<RunState>(&text) else {
        tracing::warn!("ignoring the unreadable {}", path.display());
        return Ok(());
    };
    if old.boot_id.is_none() || old.boot_id != groups::boot_id() {
        // Written before a reboot (or by an older `up`): nothing of it can run.
        std::fs::remove_file(&path).ok();
        return Ok(());
    }
    if let Some(start) = old.up_start {
        let up_alive = groups::stat(old.up_pid).is_some_and(|s| s.alive() && s.start == start);
        if up_alive {
            bail!(
                "another `hostplane up` (pid {}) still runs with the data dir {}; stop it first",
                old.up_pid,
                data_dir.display()
            );
        }
    }
    let recorded = std::iter::once(("controller", &old.controller))
        .chain(old.servers.iter().map(|(n, s)| (n.as_str(), s)))
        .filter_map(|(n, s)| s.group().map(|g| (n, g)));
    let mut stopping = Vec::new();
    for (name, group) in recorded {
        let live = group.live();
        if !live.is_empty() {
            stopping.push((name, group, groups::describe(&live)));
        }
    }
    if !stopping.is_empty() {
        let what: Vec<String> = stopping
            .iter()
            .map(|(n, g, d)| format!("{n} (group {}: {d})", g.pgid))
            .collect();
        say(format!(
            "hostplane up: an earlier `up` of this data dir (pid {}) ended without stopping its processes; stopping them: {}",
            old.up_pid,
            what.join("; ")
        ));
        let mut left = Vec::new();
        for (name, group, _) in &stopping {
            // One by one is fine: each takes at most the grace, usually milliseconds.
            group.stop(LEFTOVER_GRACE).await;
            if !group.live().is_empty() {
                left.push(*name);
            }
        }
        if !left.is_empty() {
            bail!(
                "cannot stop what an earlier `up` left running ({}); see `ps -eo pid,pgid,args`",
                left.join(", ")
            );
        }
    }
    std::fs::remove_file(&path)
        .or_else(|e| {
            if e.kind() == std::io::ErrorKind::NotFound {
                Ok(())
            } else {
                Err(e)
            }
        })
        .with_context(|| format!("cannot remove {}", path.display()))?;
    Ok(())
}
