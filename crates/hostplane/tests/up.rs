//! End to end: `hostplane up` with the real binary. The controller and every agent
//! run as separate processes on a per-test block of 127.0.0.0/8 addresses; the CLI
//! talks to them from "another shell" (join tokens, drain, `server stop/start`),
//! and SIGTERM to `up` must leave no process behind.

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

    // SIGTERM stops every child.
    let status = up.terminate();
    assert!(status.success(), "up exit status {status:?}");
    for pid in up.seen_pids.clone() {
        assert!(!pid_alive(pid), "process {pid} outlived `up`");
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
    // Even a killed `up` leaves no process behind: its children notice and stop.
    up.child.kill().unwrap();
    up.child.wait().unwrap();
    let deadline = Instant::now() + Duration::from_secs(15);
    for pid in up.seen_pids.clone() {
        while pid_alive(pid) {
            assert!(
                Instant::now() < deadline,
                "process {pid} outlived a killed `up`"
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
