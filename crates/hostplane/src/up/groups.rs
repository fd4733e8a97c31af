//! Process groups: how `hostplane up` makes "a server" one unit of processes.
//!
//! Every child of `up` (the controller, each agent) is started as the leader of its
//! own process group, and most of what an agent's engines start stays in that group
//! (mariadbd and the postgres postmaster do not daemonize), so an orphaned mariadbd,
//! re-parented to init, is still found by its group. Two kinds leave it with
//! `setsid`: PostgreSQL's children (each its own session; they are found as
//! descendants of the postmaster and exit by themselves once it is gone) and the
//! php-fpm master (always, even with `--nodaemonize`), whose workers share its
//! group. A session leader that started after the group's leader and whose command
//! line names the server's state dir (php-fpm's title shows its config file there)
//! is therefore the server's too, found even when its agent died and init adopted
//! it; and so is every process in the group of any process found.
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
    /// Session id.
    pub session: i32,
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
        session: fields.get(3)?.parse().ok()?,
        start: fields.get(19)?.parse().ok()?,
    })
}

/// The stat of `pid`, if it exists.
pub fn stat(pid: u32) -> Option<Stat> {
    parse_stat(&std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?)
}

/// Every process of the machine (as far as `/proc` shows them), with the command
/// lines of session leaders (the only ones [`Group::members`] looks at).
pub fn all() -> Vec<(Stat, Option<String>)> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter_map(|pid| {
            let s = stat(pid)?;
            let cmdline = (s.session == s.pid).then(|| {
                std::fs::read(format!("/proc/{pid}/cmdline"))
                    .map(|b| String::from_utf8_lossy(&b).replace('\0', " "))
                    .unwrap_or_default()
            });
            Some((s, cmdline))
        })
        .collect()
}

/// This boot's id (`/proc/sys/kernel/random/boot_id`): start times count from boot.
pub fn boot_id() -> Option<String> {
    std::fs::read_to_string("/proc/sys/kernel/random/boot_id")
        .ok()
        .map(|s| s.trim().to_owned())
}

/// A process group `up` started: its id (the leader's pid), the leader's start
/// time, and the directory that names the server's own daemons (see the module doc).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Group {
    /// Group id = the leader's pid.
    pub pgid: u32,
    /// The leader's start time (clock ticks after boot).
    pub start: u64,
    /// The server's state dir: a session leader naming it is the server's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub marker: Option<String>,
}

impl Group {
    /// The group led by the running process `pid` (`None` when it is already gone).
    pub fn of(pid: u32, marker: Option<String>) -> Option<Group> {
        let s = stat(pid)?;
        Some(Group {
            pgid: pid,
            start: s.start,
            marker,
        })
    }

    /// The live processes of this group among `procs` (with session leaders'
    /// command lines): its members, their descendants, the session leaders naming
    /// the marker, and the groups of all these (pure; see the module doc for why
    /// this cannot pick up an unrelated process).
    pub fn members<'a>(&self, procs: &'a [(Stat, Option<String>)]) -> Vec<&'a Stat> {
        let Ok(pgid) = i32::try_from(self.pgid) else {
            return Vec::new();
        };
        let reused = procs
            .iter()
            .any(|(p, _)| p.pid == pgid && p.alive() && p.start != self.start);
        if reused {
            return Vec::new();
        }
        let ours = |p: &Stat| p.alive() && p.start >= self.start;
        let marked = |cmdline: &Option<String>| match (&self.marker, cmdline) {
            (Some(m), Some(c)) => !m.is_empty() && c.contains(m.as_str()),
            _ => false,
        };
        let mut found: Vec<&Stat> = procs
            .iter()
            .filter(|(p, c)| ours(p) && (p.pgrp == pgid || marked(c)))
            .map(|(p, _)| p)
            .collect();
        let mut next = 0;
        while next < found.len() {
            let (parent, group) = (found[next].pid, found[next].pgrp);
            for (p, _) in procs {
                let related = p.ppid == parent || p.pgrp == group;
                if related && ours(p) && !found.iter().any(|f| f.pid == p.pid) {
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
                .any(|(p, _)| p.pid == s.pid && p.start == s.start && p.alive());
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

    /// SIGTERM (and SIGCONT, should one be stopped) the group's members and the
    /// processes whose parent is not the group's, wait up to `grace`, then SIGKILL
    /// every process of the group that is left. Returns those there were.
    /// (PostgreSQL's backends and php-fpm's workers are left to their parents,
    /// which stop them in order.)
    pub async fn stop(&self, grace: Duration) -> Vec<Stat> {
        let procs = self.live();
        if procs.is_empty() {
            return procs;
        }
        // The group, and processes outside it whose parent is not ours (an orphaned
        // php-fpm master); the others are stopped by their parents.
        let roots: Vec<Stat> = procs
            .iter()
            .filter(|p| !procs.iter().any(|q| q.pid == p.ppid))
            .cloned()
            .collect();
        self.signal(&roots, Signal::TERM);
        self.signal(&roots, Signal::CONT);
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
            session: 1,
            start,
        }
    }

    fn pids(g: &Group, procs: &[(Stat, Option<String>)]) -> Vec<i32> {
        g.members(procs).iter().map(|p| p.pid).collect()
    }

    fn plain(procs: Vec<Stat>) -> Vec<(Stat, Option<String>)> {
        procs.into_iter().map(|p| (p, None)).collect()
    }

    #[test]
    fn stat_lines_parse_even_with_odd_names() {
        let line = "4242 (php-fpm: pool (x) y) S 1 4200 4199 0 -1 4194560 84 0 0 0 0 0 0 0 20 0 1 0 987654 1000 10 18446744073709551615";
        assert_eq!(
            parse_stat(line),
            Some(Stat {
                session: 4199,
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
            marker: None,
        };
        let procs = vec![
            st(100, "hostplane", 'S', 100, 5000),
            st(130, "mariadbd", 'S', 100, 5100),
            st(131, "postgres", 'Z', 100, 5100),
            st(140, "bash", 'S', 140, 5200),
            st(150, "older", 'S', 100, 10),
        ];
        assert_eq!(pids(&g, &plain(procs.clone())), vec![100, 130]);
        // Leader gone, orphans left: still ours.
        assert_eq!(pids(&g, &plain(procs[1..].to_vec())), vec![130]);
        // PostgreSQL's children leave the group (setsid) but stay below a member,
        // down to grandchildren; an older process below a member is not ours.
        let mut more = procs.clone();
        more.push(Stat {
            ppid: 130,
            ..st(160, "postgres", 'S', 160, 5300)
        });
        more.push(Stat {
            ppid: 160,
            ..st(161, "postgres", 'S', 161, 5400)
        });
        more.push(Stat {
            ppid: 130,
            ..st(170, "stray", 'S', 170, 20)
        });
        assert_eq!(pids(&g, &plain(more)), vec![100, 130, 160, 161]);
        // The number now belongs to another process: the group is gone, hands off.
        let reused = vec![
            st(100, "vim", 'S', 100, 9000),
            st(101, "cat", 'S', 100, 9001),
        ];
        assert!(pids(&g, &plain(reused)).is_empty());
    }

    #[test]
    fn an_orphaned_php_fpm_is_found_by_its_title_and_takes_its_workers() {
        let g = Group {
            pgid: 100,
            start: 5000,
            marker: Some("/up/agents/web-1/state/".into()),
        };
        let master = Stat {
            session: 300,
            ..st(300, "php-fpm8.2", 'S', 300, 6000)
        };
        let title = "php-fpm: master process (/up/agents/web-1/state/engines/web/php/php-fpm.conf)";
        let procs = vec![
            (master.clone(), Some(title.to_owned())),
            (
                Stat {
                    ppid: 1,
                    session: 300,
                    ..st(301, "php-fpm8.2", 'S', 300, 6100)
                },
                None,
            ),
            // web-2's, and a shell of someone looking at web-1's files.
            (
                Stat {
                    session: 400,
                    ..st(400, "php-fpm8.2", 'S', 400, 6000)
                },
                Some(title.replace("web-1", "web-2")),
            ),
            (
                Stat {
                    session: 500,
                    ..st(501, "tail", 'S', 501, 6000)
                },
                None,
            ),
            // Older than the group: not this run's.
            (
                Stat {
                    session: 600,
                    ..st(600, "php-fpm8.2", 'S', 600, 10)
                },
                Some(title.to_owned()),
            ),
        ];
        assert_eq!(pids(&g, &procs), vec![300, 301]);
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
