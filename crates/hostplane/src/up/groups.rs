//! Process groups: how `hostplane up` makes "a server" one unit of processes.
//!
//! Every child of `up` (the controller, each agent) is started as the leader of its
//! own process group, and what an agent's engines start (php-fpm and its workers,
//! mariadbd, the postgres postmaster) stays in that group: none of them daemonizes
//! (php-fpm runs with `--nodaemonize`), so an orphaned mariadbd, re-parented to
//! init, is still found by its group. PostgreSQL's children alone call `setsid`
//! (each its own session); they are found as descendants of a member (and they exit
//! by themselves once their postmaster is gone).
//!
//! A group is identified by its id (= the leader's pid) and the leader's start time
//! (field 22 of `/proc/PID/stat`, clock ticks since boot), recorded with the boot id
//! in `up-run.toml`. Its processes are the live processes with that group id that
//! started no earlier than the leader, and their descendants. While any member lives
//! the kernel does not hand the number out again, so a leader-less group with live
//! members is still ours; a live process whose pid is the group id but whose start
//! time differs means the group is gone and the number reused: it is left alone.

use rustix::process::{Pid, Signal};
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// What `/proc/PID/stat` says about one process.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stat {
    /// Process id.
    pub pid: i32,
    /// Parent process id.
    pub ppid: i32,
    /// Command name (at most 15 bytes, as the kernel keeps it).
    pub comm: String,
    /// State letter (`R`, `S`, `Z`, ...).
    pub state: char,
    /// Process group id.
    pub pgrp: i32,
    /// Start time in clock ticks after boot.
    pub start: u64,
}

impl Stat {
    /// A zombie has exited; it only waits to be reaped.
    pub fn alive(&self) -> bool {
        self.state != 'Z' && self.state != 'X'
    }
}

/// Parse the text of `/proc/PID/stat` (pure). The command name may contain spaces
/// and parentheses, so fields are counted from the last `)`.
pub fn parse_stat(text: &str) -> Option<Stat> {
    let (head, rest) = text.rsplit_once(") ")?;
    let (pid, comm) = head.split_once(" (")?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // `rest` starts at field 3 (state): field N is fields[N - 3].
    Some(Stat {
        pid: pid.trim().parse().ok()?,
        ppid: fields.get(1)?.parse().ok()?,
        comm: comm.to_owned(),
        state: fields.first()?.chars().next()?,
        pgrp: fields.get(2)?.parse().ok()?,
        start: fields.get(19)?.parse().ok()?,
    })
}

/// The stat of `pid`, if it exists.
pub fn stat(pid: u32) -> Option<Stat> {
    parse_stat(&std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?)
}

/// Every process of the machine (as far as `/proc` shows them).
pub fn all() -> Vec<Stat> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter_map(stat)
        .collect()
}

/// This boot's id (`/proc/sys/kernel/random/boot_id`): start times count from boot.
pub fn boot_id() -> Option<String> {
    std::fs::read_to_string("/proc/sys/kernel/random/boot_id")
        .ok()
        .map(|s| s.trim().to_owned())
}

/// A process group `up` started: its id (the leader's pid) and the leader's start time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Group {
    /// Group id = the leader's pid.
    pub pgid: u32,
    /// The leader's start time (clock ticks after boot).
    pub start: u64,
}

impl Group {
    /// The group led by the running process `pid` (`None` when it is already gone).
    pub fn of(pid: u32) -> Option<Group> {
        let s = stat(pid)?;
        Some(Group {
            pgid: pid,
            start: s.start,
        })
    }

    /// The live processes of this group among `procs`: its members and their
    /// descendants (pure; see the module doc for why this cannot pick up an
    /// unrelated process).
    pub fn members<'a>(&self, procs: &'a [Stat]) -> Vec<&'a Stat> {
        let Ok(pgid) = i32::try_from(self.pgid) else {
            return Vec::new();
        };
        let reused = procs
            .iter()
            .any(|p| p.pid == pgid && p.alive() && p.start != self.start);
        if reused {
            return Vec::new();
        }
        let ours = |p: &Stat| p.alive() && p.start >= self.start;
        let mut found: Vec<&Stat> = procs.iter().filter(|p| p.pgrp == pgid && ours(p)).collect();
        let mut next = 0;
        while next < found.len() {
            let parent = found[next].pid;
            for p in procs {
                if p.ppid == parent && ours(p) && !found.iter().any(|f| f.pid == p.pid) {
                    found.push(p);
                }
            }
            next += 1;
        }
        found
    }

    /// The live processes of this group now, plus those of `seen` that still run
    /// (a descendant re-parented to init once its parent died is no longer found
    /// through it).
    fn live_with(&self, seen: &[Stat]) -> Vec<Stat> {
        let procs = all();
        let mut out: Vec<Stat> = self.members(&procs).into_iter().cloned().collect();
        for s in seen {
            let runs = procs
                .iter()
                .any(|p| p.pid == s.pid && p.start == s.start && p.alive());
            if runs && !out.iter().any(|o| o.pid == s.pid) {
                out.push(s.clone());
            }
        }
        out
    }

    /// The live processes of this group now.
    pub fn live(&self) -> Vec<Stat> {
        self.live_with(&[])
    }

    /// Send `sig` to the whole group and to each of `procs` outside it.
    fn signal(&self, procs: &[Stat], sig: Signal) {
        let pgid = i32::try_from(self.pgid).ok();
        if let Some(pid) = pgid.and_then(Pid::from_raw) {
            rustix::process::kill_process_group(pid, sig).ok();
        }
        for p in procs.iter().filter(|p| Some(p.pgrp) != pgid) {
            if let Some(pid) = Pid::from_raw(p.pid) {
                rustix::process::kill_process(pid, sig).ok();
            }
        }
    }

    /// Wait until none of the group's processes (nor of `seen`) lives, at most
    /// `within`; true when none does.
    async fn wait_gone(&self, seen: &[Stat], within: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            if self.live_with(seen).is_empty() {
                return true;
            }
            if tokio::time::Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// SIGKILL every process of the group now and wait (briefly) until they are
    /// gone; returns those there were.
    pub async fn kill(&self) -> Vec<Stat> {
        let procs = self.live();
        if procs.is_empty() {
            return procs;
        }
        self.signal(&procs, Signal::KILL);
        if !self.wait_gone(&procs, Duration::from_secs(5)).await {
            tracing::warn!(pgid = self.pgid, "processes survive SIGKILL");
        }
        procs
    }

    /// SIGTERM (and SIGCONT, should one be stopped) the group's members, wait up
    /// to `grace`, then SIGKILL every process of the group that is left. Returns
    /// those there were. (Descendants outside the group, PostgreSQL's backends, are
    /// left to their postmaster, which stops them in order.)
    pub async fn stop(&self, grace: Duration) -> Vec<Stat> {
        let procs = self.live();
        if procs.is_empty() {
            return procs;
        }
        self.signal(&[], Signal::TERM);
        self.signal(&[], Signal::CONT);
        if !self.wait_gone(&procs, grace).await {
            tracing::warn!(
                pgid = self.pgid,
                "processes did not stop within {grace:?} of SIGTERM; killing them"
            );
            let left = self.live_with(&procs);
            self.signal(&left, Signal::KILL);
            if !self.wait_gone(&procs, Duration::from_secs(5)).await {
                tracing::warn!(pgid = self.pgid, "processes survive SIGKILL");
            }
        }
        procs
    }
}

/// `mariadbd, postgres ×6` (pure): what a list of processes is, for messages.
pub fn describe(procs: &[Stat]) -> String {
    let mut counts: Vec<(&str, usize)> = Vec::new();
    for p in procs {
        match counts.iter_mut().find(|(n, _)| *n == p.comm) {
            Some((_, c)) => *c += 1,
            None => counts.push((&p.comm, 1)),
        }
    }
    counts
        .iter()
        .map(|(n, c)| {
            if *c == 1 {
                (*n).to_owned()
            } else {
                format!("{n} ×{c}")
            }
        })
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn st(pid: i32, comm: &str, state: char, pgrp: i32, start: u64) -> Stat {
        Stat {
            pid,
            ppid: 1,
            comm: comm.into(),
            state,
            pgrp,
            start,
        }
    }

    #[test]
    fn stat_lines_parse_even_with_odd_names() {
        let line = "4242 (php-fpm: pool (x) y) S 1 4200 4200 0 -1 4194560 84 0 0 0 0 0 0 0 20 0 1 0 987654 1000 10 18446744073709551615";
        assert_eq!(
            parse_stat(line),
            Some(Stat {
                ppid: 1,
                ..st(4242, "php-fpm: pool (x) y", 'S', 4200, 987654)
            })
        );
        assert_eq!(parse_stat("garbage"), None);
        assert_eq!(parse_stat("1 (init) S 0 1"), None);
    }

    #[test]
    fn members_are_the_live_processes_of_the_group_started_after_the_leader() {
        let g = Group {
            pgid: 100,
            start: 5000,
        };
        let procs = vec![
            st(100, "hostplane", 'S', 100, 5000),
            st(130, "mariadbd", 'S', 100, 5100),
            st(131, "postgres", 'Z', 100, 5100),
            st(140, "bash", 'S', 140, 5200),
            st(150, "older", 'S', 100, 10),
        ];
        let m: Vec<i32> = g.members(&procs).iter().map(|p| p.pid).collect();
        assert_eq!(m, vec![100, 130]);
        // PostgreSQL's children leave the group (setsid) but stay below a member,
        // down to grandchildren; an older process below a member is not ours.
        let mut procs = procs;
        procs.push(Stat {
            ppid: 130,
            ..st(160, "postgres", 'S', 160, 5300)
        });
        procs.push(Stat {
            ppid: 160,
            ..st(161, "postgres", 'S', 161, 5400)
        });
        procs.push(Stat {
            ppid: 130,
            ..st(170, "stray", 'S', 170, 20)
        });
        let m: Vec<i32> = g.members(&procs).iter().map(|p| p.pid).collect();
        assert_eq!(m, vec![100, 130, 160, 161]);
        procs.truncate(5);
        // Leader gone, orphans left: still ours.
        let m: Vec<i32> = g.members(&procs[1..]).iter().map(|p| p.pid).collect();
        assert_eq!(m, vec![130]);
        // The number now belongs to another process: the group is gone, hands off.
        let reused = vec![
            st(100, "vim", 'S', 100, 9000),
            st(101, "cat", 'S', 100, 9001),
        ];
        assert!(g.members(&reused).is_empty());
    }

    #[test]
    fn descriptions_count_repeats() {
        let procs = vec![
            st(1, "mariadbd", 'S', 1, 1),
            st(2, "postgres", 'S', 1, 1),
            st(3, "postgres", 'S', 1, 1),
        ];
        assert_eq!(describe(&procs), "mariadbd, postgres ×2");
        assert_eq!(describe(&[]), "");
    }
}
