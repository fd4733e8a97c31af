//! End to end: `hostplane up` with the real binary. The controller and every agent
//! run as separate processes on a per-test block of 127.0.0.0/8 addresses; the CLI
//! talks to them from "another shell" (join tokens, drain, `server stop/start`);
//! `server stop` takes the server's daemons (db-1's mariadbd and postgres) with it,
//! SIGTERM to `up` must leave no process behind, and what an `up` killed with SIGKILL
//! left running is stopped by the next `up`.

#![allow(clippy::unwrap_used)] // test helpers outside #[test] fns may panic

use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::mpsc::{channel, Receiver};
use std::time::{Duration, Instant};

mod common;

use common::{hp, ok, ok_json, run};
const STARTUP: Duration = Duration::from_secs(120);

/// A per-test block `127.A.B` from the process id and a counter (DESIGN.md).
fn address_base() -> String {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let n = std::process::id()
        .wrapping_mul(7)
        .wrapping_add(COUNTER.fetch_add(1, Ordering::Relaxed));
    format!("127.{}.{}", 1 + (n >> 8) % 254, n % 256)
}

fn pid_alive(pid: u32) -> bool {
    // A zombie still has a /proc entry; count it as gone.
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => !stat
            .rsplit_once(") ")
            .is_some_and(|(_, rest)| rest.starts_with('Z')),
        Err(_) => false,
    }
}

/// A process seen in `/proc` (pid, start time, command name).
#[derive(Debug, Clone, PartialEq, Eq)]
struct Process {
    pid: u32,
    start: u64,
    comm: String,
}

/// (parent pid, state, start time, command name) of `pid`.
fn proc_stat(pid: u32) -> Option<(u32, char, u64, String)> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let (head, rest) = text.rsplit_once(") ")?;
    let comm = head.split_once(" (")?.1.to_owned();
    let f: Vec<&str> = rest.split_whitespace().collect();
    Some((
        f.get(1)?.parse().ok()?,
        f.first()?.chars().next()?,
        f.get(19)?.parse().ok()?,
        comm,
    ))
}

/// Every live process below `root` (its children, theirs, ...).
fn descendants(root: u32) -> Vec<Process> {
    let all: Vec<(u32, (u32, char, u64, String))> = std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter_map(|pid| Some((pid, proc_stat(pid)?)))
        .collect();
    let mut found = Vec::new();
    let mut parents = vec![root];
    while let Some(parent) = parents.pop() {
        for (pid, (ppid, state, start, comm)) in &all {
            if *ppid == parent && *state != 'Z' {
                found.push(Process {
                    pid: *pid,
                    start: *start,
                    comm: comm.clone(),
                });
                parents.push(*pid);
            }
        }
    }
    found
}

/// Whether that very process (same pid and start time) still runs.
fn still_runs(p: &Process) -> bool {
    proc_stat(p.pid).is_some_and(|(_, state, start, _)| state != 'Z' && start == p.start)
}

/// The processes below `root` once they include every command in `wanted` (a
/// server's daemons start in the background after its agent is up).
fn wait_for_processes(root: u32, wanted: &[&str]) -> Vec<Process> {
    let deadline = Instant::now() + STARTUP;
    loop {
        let found = descendants(root);
        if wanted
            .iter()
            .all(|w| found.iter().any(|p| p.comm.as_str() == *w))
        {
            return found;
        }
        assert!(
            Instant::now() < deadline,
            "no {wanted:?} below pid {root} after {STARTUP:?}: {found:?}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn kill(signal: &str, pid: u32) {
    Command::new("kill")
        .args([signal, &pid.to_string()])
        .stderr(Stdio::null())
        .status()
        .ok();
}

/// The pids `up` records in `up-run.toml`: controller first, then the agents.
fn recorded_pids(data: &Path) -> Vec<(String, u32)> {
    let text = std::fs::read_to_string(data.join("up-run.toml")).unwrap();
    let v: toml::Value = toml::from_str(&text).unwrap();
    let mut out = Vec::new();
    if let Some(pid) = v["controller"].get("pid").and_then(|p| p.as_integer()) {
        out.push(("controller".to_owned(), pid as u32));
    }
    for (name, s) in v["servers"].as_table().unwrap() {
        if let Some(pid) = s.get("pid").and_then(|p| p.as_integer()) {
            out.push((name.clone(), pid as u32));
        }
    }
    out
}

/// A running `hostplane up`: SIGTERM (then SIGKILL, and its recorded children) when
/// the test ends, pass or fail.
struct Up {
    child: Child,
    lines: Receiver<String>,
    data: PathBuf,
    seen_pids: Vec<u32>,
    /// Processes killed when the test ends, should they still run.
    leftovers: Vec<Process>,
}

impl Up {
    fn start(login: &Path, args: &[&str], data: &Path) -> Up {
        let mut cmd = hp(login);
        cmd.args(args);
        let mut child = cmd
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn hostplane up");
        let stdout = child.stdout.take().unwrap();
        let (tx, lines) = channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Up {
            child,
            lines,
            data: data.to_owned(),
            seen_pids: Vec::new(),
            leftovers: Vec::new(),
        }
    }

    fn wait_for<T>(&mut self, what: &str, pick: impl Fn(&str) -> Option<T>) -> T {
        let deadline = Instant::now() + STARTUP;
        let mut seen = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    if let Some(v) = pick(&line) {
                        return v;
                    }
                    seen.push(line);
                }
                Err(_) => {
                    let status = self.child.try_wait().ok().flatten();
                    panic!(
                        "no {what} on stdout (exit status {status:?}); got:\n{}",
                        seen.join("\n")
                    );
                }
            }
        }
    }

    /// Remember the children's pids (for the leftover check and the cleanup).
    fn note_pids(&mut self) -> Vec<(String, u32)> {
        let pids = recorded_pids(&self.data);
        self.seen_pids.extend(pids.iter().map(|(_, p)| *p));
        pids
    }

    fn terminate(&mut self) -> std::process::ExitStatus {
        kill("-TERM", self.child.id());
        let deadline = Instant::now() + Duration::from_secs(40);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "up did not stop within 40 s of SIGTERM"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Up {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            kill("-TERM", self.child.id());
            let deadline = Instant::now() + Duration::from_secs(15);
            while Instant::now() < deadline && self.child.try_wait().ok().flatten().is_none() {
                std::thread::sleep(Duration::from_millis(50));
            }
            self.child.kill().ok();
            self.child.wait().ok();
        }
        for pid in &self.seen_pids {
            if pid_alive(*pid) {
                kill("-KILL", *pid);
            }
        }
        for p in &self.leftovers {
            if still_runs(p) {
                kill("-KILL", p.pid);
            }
        }
    }
}

fn servers(login: &Path) -> Vec<Value> {
    ok_json(login, &["server", "list"])
        .as_array()
        .unwrap()
        .clone()
}

fn health_of(login: &Path, name: &str) -> String {
    servers(login)
        .iter()
        .find(|s| s["name"] == name)
        .unwrap_or_else(|| panic!("no server {name}"))["health"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// Wait until `pred(health)` holds for server `name`; the last health seen otherwise.
fn wait_health(login: &Path, name: &str, within: Duration, pred: impl Fn(&str) -> bool) {
    let deadline = Instant::now() + within;
    loop {
        let h = health_of(login, name);
        if pred(&h) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{name} still {h} after {within:?}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn up_runs_the_topology_and_supervises_it() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("up");
    let login = tmp.path().join("cli.toml");
    let base = address_base();
    let data_s = data.to_str().unwrap().to_owned();
    let up_args = [
        "up",
        "--data-dir",
        &data_s,
        "--listen",
        "127.0.0.1:0",
        "--web",
        "2",
        "--address-base",
        &base,
        "--health-interval-ms",
        "200",
    ];

    // Not under `up` yet: stop/start say so.
    let r = run(hp(&login), &["server", "stop", "web-1"]);
    assert_eq!(r.code, 1);
    assert!(r.stderr.contains("hostplane up"), "{}", r.stderr);

    let mut up = Up::start(&login, &up_args, &data);
    let url = up.wait_for("API URL", |l| {
        l.trim()
            .strip_prefix("API URL")
            .map(|u| u.trim().to_owned())
    });
    assert!(url.starts_with("https://127.0.0.1:"), "{url}");
    assert!(!url.ends_with(":0"), "the bound port is printed: {url}");
    up.wait_for("ready line", |l| l.contains("Ctrl-C").then_some(()));
    let pids = up.note_pids();
    assert_eq!(pids.len(), 10, "controller + 9 agents: {pids:?}");
    let token = std::fs::read_to_string(data.join("admin.token"))
        .unwrap()
        .trim()
        .to_owned();

    // Another shell, no flags: the whole topology, every server up.
    let me = ok_json(&login, &["whoami"]);
    assert_eq!(me["account"], "admin");
    let list = servers(&login);
    let mut names: Vec<&str> = list.iter().map(|s| s["name"].as_str().unwrap()).collect();
    names.sort();
    assert_eq!(
        names,
        ["db-1", "files-1", "mx1", "mx2", "ns1", "ns2", "web-1", "web-2", "web-3"]
    );
    for s in &list {
        assert_eq!(s["health"], "up", "{s}");
        assert!(s["last_heartbeat"].is_string(), "{s}");
    }
    let find = |n: &str| list.iter().find(|s| s["name"] == n).unwrap().clone();
    assert_eq!(find("web-1")["cluster"], "web-eu");
    assert_eq!(find("web-3")["cluster"], "web-us");
    assert_eq!(find("web-2")["addresses"][0], format!("{base}.12"));
    assert_eq!(find("ns1")["rank"], 0);
    assert_eq!(find("ns2")["country"], "US");
    assert_eq!(find("mx1")["country"], "GB");
    let clusters = ok_json(&login, &["cluster", "list"]);
    let web_eu = clusters
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "web-eu")
        .unwrap()
        .clone();
    assert_eq!(web_eu["default"], true);
    let table = ok(&login, &["server", "list"]);
    assert!(
        table.contains("HEARTBEAT") && table.contains("REGION"),
        "{table}"
    );
    let status = ok(&login, &["status"]);
    assert!(status.contains("9 servers: 9 up"), "{status}");

    // Join tokens: create (shown once, with an agent.toml), list, delete.
    let created = ok_json(
        &login,
        &["server", "token", "create", "--cluster", "web-eu"],
    );
    assert!(created["token"].as_str().unwrap().starts_with("hpj_"));
    let id = created["id"].as_str().unwrap().to_owned();
    let text = ok(
        &login,
        &[
            "server",
            "token",
            "create",
            "--cluster",
            "db-main",
            "--expires-in",
            "2h",
        ],
    );
    assert!(text.contains("hostplane agent --config"), "{text}");
    assert!(text.contains(&url), "{text}");
    let listed = ok_json(&login, &["server", "token", "list"]);
    assert!(listed.as_array().unwrap().iter().any(|t| t["id"] == id));
    ok(&login, &["server", "token", "delete", &id]);
    let listed = ok_json(&login, &["server", "token", "list"]);
    assert!(!listed.as_array().unwrap().iter().any(|t| t["id"] == id));
    let bad = run(
        hp(&login),
        &["server", "token", "create", "--cluster", "nope"],
    );
    assert_eq!(bad.code, 1, "{}", bad.stdout);

    // Drain and undrain.
    assert_eq!(
        ok_json(&login, &["server", "drain", "web-2"])["drained"],
        true
    );
    assert_eq!(
        ok_json(&login, &["server", "undrain", "web-2"])["drained"],
        false
    );

    // Stop web-1: its agent process dies and the controller notices; start it again.
    let web1_pid = pids.iter().find(|(n, _)| n == "web-1").unwrap().1;
    let stopped = ok(&login, &["server", "stop", "web-1"]);
    assert!(stopped.contains("stopped web-1"), "{stopped}");
    let deadline = Instant::now() + Duration::from_secs(5);
    while pid_alive(web1_pid) {
        assert!(Instant::now() < deadline, "web-1's agent still runs");
        std::thread::sleep(Duration::from_millis(50));
    }
    wait_health(&login, "web-1", Duration::from_secs(15), |h| {
        h == "suspect" || h == "down"
    });
    assert_eq!(health_of(&login, "web-2"), "up", "failure stays isolated");
    let again = run(hp(&login), &["server", "stop", "web-1"]);
    assert_eq!(again.code, 1);
    assert!(again.stderr.contains("already stopped"), "{}", again.stderr);
    let unknown = run(hp(&login), &["server", "start", "web-99"]);
    assert_eq!(unknown.code, 1);
    assert!(
        unknown.stderr.contains("no server `web-99`"),
        "{}",
        unknown.stderr
    );

    let started = ok(&login, &["server", "start", "web-1"]);
    assert!(started.contains("started web-1"), "{started}");
    wait_health(&login, "web-1", Duration::from_secs(15), |h| h == "up");
    let pids = up.note_pids();
    assert_ne!(
        pids.iter().find(|(n, _)| n == "web-1").unwrap().1,
        web1_pid,
        "a new process"
    );

    // The controller dies: `up` says so and starts it again (same URL) while every
    // agent keeps running.
    let controller_pid = pids.iter().find(|(n, _)| n == "controller").unwrap().1;
    kill("-KILL", controller_pid);
    up.wait_for("restart notice", |l| {
        l.contains("the controller exited").then_some(())
    });
    up.wait_for("controller back", |l| {
        l.contains("the controller runs again").then_some(())
    });
    let after = up.note_pids();
    for (name, pid) in &after {
        if name == "controller" {
            assert_ne!(*pid, controller_pid, "a new controller");
        } else {
            assert!(pids.contains(&(name.clone(), *pid)), "{name} kept running");
        }
    }
    assert!(ok(&login, &["status"]).contains("9 servers"));

    // Stop db-1: its agent dies and so do the mariadbd and postgres it runs (a
    // stopped database server must not keep answering); start brings them back.
    let db1_pid = pids.iter().find(|(n, _)| n == "db-1").unwrap().1;
    let db1 = wait_for_processes(db1_pid, &["mariadbd", "postgres"]);
    up.leftovers.extend(db1.clone());
    let stopped = ok(&login, &["server", "stop", "db-1"]);
    assert!(
        stopped.contains("mariadbd") && stopped.contains("postgres"),
        "{stopped}"
    );
    for p in &db1 {
        assert!(!still_runs(p), "{p:?} outlived `server stop db-1`");
    }
    ok(&login, &["server", "start", "db-1"]);
    let pids = up.note_pids();
    let db1_pid = pids.iter().find(|(n, _)| n == "db-1").unwrap().1;
    up.leftovers
        .extend(wait_for_processes(db1_pid, &["mariadbd", "postgres"]));

    // SIGTERM stops every child and everything they run.
    let all = descendants(up.child.id());
    up.leftovers.extend(all.clone());
    let status = up.terminate();
    assert!(status.success(), "up exit status {status:?}");
    for pid in up.seen_pids.clone() {
        assert!(!pid_alive(pid), "process {pid} outlived `up`");
    }
    for p in &all {
        assert!(!still_runs(p), "{p:?} outlived `up`");
    }
    assert!(!data.join("up.sock").exists());
    let r = run(hp(&login), &["server", "start", "web-1"]);
    assert_eq!(r.code, 1);
    assert!(
        r.stderr.contains("no `hostplane up` is running"),
        "{}",
        r.stderr
    );
    drop(up);

    // A second run reuses the data dir: same token, agents already joined.
    let mut up = Up::start(&login, &up_args, &data);
    let shown = up.wait_for("admin token", |l| {
        l.trim()
            .strip_prefix("admin token")
            .map(|t| t.trim().to_owned())
    });
    assert_eq!(shown, token);
    up.wait_for("ready line", |l| l.contains("Ctrl-C").then_some(()));
    up.note_pids();
    assert!(
        !data.join("agents/web-1/join-token").exists(),
        "a joined agent needs no new token"
    );
    for s in servers(&login) {
        assert_eq!(s["health"], "up", "{s}");
    }
    // A second `up` on the same data dir is refused while the first runs.
    let twice = run(hp(&login), &up_args);
    assert_eq!(twice.code, 1);
    assert!(twice.stderr.contains("already running"), "{}", twice.stderr);
    // `up` killed with SIGKILL together with its controller and agents (say, `pkill
    // -9 hostplane`): nothing could stop the engines' daemons, which outlive them.
    // The next `up` on the data dir finds and stops them before it starts.
    let old = wait_for_processes(up.child.id(), &["mariadbd", "postgres"]);
    up.leftovers.extend(old.clone());
    kill("-KILL", up.child.id());
    for pid in up.seen_pids.clone() {
        kill("-KILL", pid);
    }
    up.child.wait().unwrap();
    let orphans: Vec<&Process> = old
        .iter()
        .filter(|p| still_runs(p) && p.comm != "hostplane")
        .collect();
    assert!(
        orphans.iter().any(|p| p.comm == "mariadbd"),
        "the daemons outlive a killed agent: {orphans:?}"
    );
    let old = std::mem::take(&mut up.leftovers);
    drop(up);
    let mut up = Up::start(&login, &up_args, &data);
    up.leftovers = old.clone();
    let said = up.wait_for("leftovers line", |l| {
        l.contains("ended without stopping its processes")
            .then(|| l.to_owned())
    });
    assert!(said.contains("db-1"), "{said}");
    up.wait_for("ready line", |l| l.contains("Ctrl-C").then_some(()));
    up.note_pids();
    for p in &old {
        assert!(!still_runs(p), "{p:?} of the killed `up` still runs");
    }

    // Even a killed `up` alone leaves no process behind: its children notice and stop.
    up.leftovers
        .extend(wait_for_processes(up.child.id(), &["mariadbd", "postgres"]));
    up.child.kill().unwrap();
    up.child.wait().unwrap();
    let deadline = Instant::now() + Duration::from_secs(15);
    for pid in up.seen_pids.clone() {
        while pid_alive(pid) {
            assert!(
                Instant::now() < deadline,
                "process {pid} ({:?}) outlived a killed `up`",
                proc_stat(pid)
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
    drop(up);

    // A taken port: said plainly, with the way out, before anything starts.
    let busy = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = busy.local_addr().unwrap().to_string();
    let r = run(
        hp(&login),
        &[
            "up",
            "--data-dir",
            &data_s,
            "--listen",
            &addr,
            "--address-base",
            &base,
        ],
    );
    assert_eq!(r.code, 1);
    assert!(
        r.stderr.contains("already in use") && r.stderr.contains("--listen"),
        "{}",
        r.stderr
    );
}

#[test]
fn up_options_are_checked() {
    let tmp = tempfile::tempdir().unwrap();
    let login = tmp.path().join("cli.toml");
    for bad in [
        ["up", "--address-base", "10.0.0"],
        ["up", "--address-base", "127.0"],
        ["up", "--web", "0"],
        ["up", "--web", "9"],
    ] {
        let r = run(hp(&login), &bad);
        assert_eq!(r.code, 2, "{bad:?}: {}", r.stderr);
    }
}

#[test]
fn agent_reports_a_bad_config() {
    let tmp = tempfile::tempdir().unwrap();
    let login = tmp.path().join("cli.toml");
    let cfg = tmp.path().join("agent.toml");
    std::fs::write(&cfg, "name = \"Web 1\"\n").unwrap();
    let r = run(hp(&login), &["agent", "--config", cfg.to_str().unwrap()]);
    assert_eq!(r.code, 1);
    assert!(r.stderr.contains("agent config"), "{}", r.stderr);
    let missing = tmp.path().join("missing.toml");
    let r = run(
        hp(&login),
        &["agent", "--config", missing.to_str().unwrap()],
    );
    assert_eq!(r.code, 1);
    assert!(r.stderr.contains("missing.toml"), "{}", r.stderr);
}
