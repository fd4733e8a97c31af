//! End to end: the real `hostplane` binary. `controller init` into a temp dir,
//! `controller run` as a child process on port 0, then the CLI against it.
//! (`hostplane up` is tested in `tests/up.rs`.)

#![allow(clippy::unwrap_used)] // test helpers outside #[test] fns may panic

use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{channel, Receiver};
use std::time::Duration;

mod common;

use common::{hp, ok, ok_json, run};
const STARTUP: Duration = Duration::from_secs(60);

/// A child process killed (and reaped) when the test ends, pass or fail.
struct Guard {
    child: Child,
    lines: Receiver<String>,
}

impl Guard {
    fn spawn(mut cmd: Command) -> Guard {
        let mut child = cmd
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn hostplane");
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, lines) = channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Guard { child, lines }
    }

    /// The first stdout line for which `pick` returns something.
    fn wait_for<T>(&mut self, what: &str, pick: impl Fn(&str) -> Option<T>) -> T {
        let deadline = std::time::Instant::now() + STARTUP;
        let mut seen = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
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

    /// SIGTERM, then wait for a clean exit.
    fn terminate(&mut self) -> std::process::ExitStatus {
        let pid = self.child.id().to_string();
        let sent = Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .expect("run kill");
        assert!(sent.success());
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                return status;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "did not stop within 30 s of SIGTERM"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        self.child.kill().ok();
        self.child.wait().ok();
    }
}

fn field<'a>(v: &'a Value, key: &str) -> &'a str {
    v[key]
        .as_str()
        .unwrap_or_else(|| panic!("no string `{key}` in {v}"))
}

#[test]
fn controller_and_cli_end_to_end() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("cp");
    let login = tmp.path().join("cli.toml");

    // init: prints the admin token once, the CA and the config path.
    let init = ok_json(
        &login,
        &[
            "controller",
            "init",
            "--data-dir",
            data.to_str().unwrap(),
            "--listen",
            "127.0.0.1:0",
        ],
    );
    let token = field(&init, "admin_token").to_owned();
    let ca = PathBuf::from(field(&init, "ca"));
    let config = PathBuf::from(field(&init, "config"));
    assert!(!token.is_empty());
    assert!(ca.is_file(), "CA {} missing", ca.display());
    // A second init into the same dir must refuse.
    let again = run(
        hp(&login),
        &["controller", "init", "--data-dir", data.to_str().unwrap()],
    );
    assert_ne!(again.code, 0, "init over an existing data dir succeeded");
    assert!(again.stderr.starts_with("error: "), "{}", again.stderr);

    // run: the listening line carries the real URL; controller.url matches it.
    let mut controller = Guard::spawn({
        let mut c = hp(&login);
        c.args([
            "controller",
            "run",
            "--config",
            config.to_str().unwrap(),
            "--listen",
            "127.0.0.1:0",
        ]);
        c
    });
    let url = controller.wait_for("listening line", |l| {
        l.strip_prefix("hostplane controller listening on ")
            .map(str::to_owned)
    });
    assert!(url.starts_with("https://127.0.0.1:"), "{url}");
    assert!(!url.ends_with(":0"), "{url}");
    assert_eq!(
        std::fs::read_to_string(data.join("controller.url"))
            .unwrap()
            .trim(),
        url
    );

    // Not logged in: a helpful message, exit 1.
    let r = run(hp(&login), &["domain", "list"]);
    assert_eq!(r.code, 1);
    assert!(r.stderr.contains("hostplane login"), "{}", r.stderr);

    // Without the CA the certificate is not trusted, and the hint says so.
    let r = run(hp(&login), &["--server", &url, "login", "--token", &token]);
    assert_eq!(r.code, 1, "{}", r.stdout);
    assert!(r.stderr.contains("--ca"), "{}", r.stderr);

    // Login with the admin token; the file is private.
    let out = ok(
        &login,
        &[
            "login",
            "--server",
            &url,
            "--ca",
            ca.to_str().unwrap(),
            "--token",
            &token,
        ],
    );
    assert!(out.contains("admin"), "{out}");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&login).unwrap().permissions().mode() & 0o777,
            0o600
        );
    }
    let me = ok_json(&login, &["whoami"]);
    assert_eq!(field(&me, "account"), "admin");
    assert_eq!(field(&me, "kind"), "admin");

    // A wrong token: the server's refusal plus what to do.
    let r = run(
        {
            let mut c = hp(&login);
            c.env("HOSTPLANE_TOKEN", "hp_not_a_real_token");
            c
        },
        &["whoami"],
    );
    assert_eq!(r.code, 1);
    assert!(r.stderr.starts_with("error: "), "{}", r.stderr);
    assert!(r.stderr.contains("hostplane login"), "{}", r.stderr);

    // Clusters, one default per role.
    for role in ["web", "dns", "mail", "files"] {
        let out = ok(
            &login,
            &["cluster", "add", role, "--role", role, "--default"],
        );
        assert!(out.contains(role), "{out}");
    }
    let clusters = ok_json(&login, &["cluster", "list"]);
    let names: Vec<&str> = clusters
        .as_array()
        .unwrap()
        .iter()
        .map(|c| field(c, "name"))
        .collect();
    for role in ["web", "dns", "mail", "files"] {
        assert!(names.contains(&role), "{names:?}");
    }

    ok(
        &login,
        &["customer", "add", "acme", "--display-name", "ACME Ltd"],
    );
    let domain = ok(
        &login,
        &["domain", "add", "example.com", "--customer", "acme"],
    );
    assert!(
        domain.contains("example.com") && domain.contains("acme"),
        "{domain}"
    );

    // A mailbox with a generated password, shown once.
    let mailbox = ok(&login, &["mailbox", "add", "info@example.com"]);
    assert!(mailbox.contains("info@example.com"), "{mailbox}");
    assert!(mailbox.contains("generated password: "), "{mailbox}");
    assert!(mailbox.contains("shown once"), "{mailbox}");
    let shown = ok_json(&login, &["mailbox", "show", "info@example.com"]);
    assert_eq!(field(&shown, "address"), "info@example.com");
    assert!(shown.get("generated_password").is_none());

    // DNS records in zone-file syntax.
    let rec = ok_json(
        &login,
        &[
            "dns",
            "add",
            "example.com",
            "www",
            "A",
            "192.0.2.1",
            "--ttl",
            "300",
        ],
    );
    assert_eq!(rec["type"], "A");
    assert_eq!(rec["ttl"], 300);
    let mx = ok_json(
        &login,
        &[
            "dns",
            "add",
            "example.com",
            "@",
            "MX",
            "10",
            "mx.example.net",
        ],
    );
    assert_eq!(mx["data"]["preference"], 10);
    ok(
        &login,
        &["dns", "add", "example.com", "@", "TXT", "v=spf1 -all"],
    );
    let records = ok_json(&login, &["dns", "list", "example.com"]);
    assert_eq!(records.as_array().unwrap().len(), 3, "{records}");
    let table = ok(&login, &["dns", "list", "example.com"]);
    assert!(table.contains("10 mx.example.net"), "{table}");

    // Listings as JSON: every item, or one page with a cursor.
    let domains = ok_json(&login, &["domain", "list"]);
    let list = domains.as_array().expect("a JSON array");
    assert_eq!(list.len(), 1);
    assert_eq!(field(&list[0], "name"), "example.com");
    assert_eq!(list[0]["placements"]["web"], "web");
    assert_eq!(list[0]["placements"]["dns"], "dns");
    let page = ok_json(&login, &["cluster", "list", "--limit", "2"]);
    assert_eq!(page["items"].as_array().unwrap().len(), 2, "{page}");
    let cursor = field(&page, "next_cursor").to_owned();
    let rest = ok_json(
        &login,
        &["cluster", "list", "--limit", "2", "--cursor", &cursor],
    );
    assert_eq!(rest["items"].as_array().unwrap().len(), 2, "{rest}");

    // Plans: define, assign with an override, refuse past the limit.
    let plan = ok_json(
        &login,
        &[
            "plan",
            "add",
            "small",
            "--max-domains",
            "1",
            "--max-mailbox-quota-mb",
            "2048",
        ],
    );
    assert_eq!(plan["limits"]["max_domains"], 1, "{plan}");
    let plans = ok_json(&login, &["plan", "list"]);
    assert_eq!(plans.as_array().unwrap().len(), 1, "{plans}");
    let acme = ok_json(
        &login,
        &[
            "customer",
            "update",
            "acme",
            "--plan",
            "small",
            "--max-mailboxes",
            "5",
        ],
    );
    assert_eq!(acme["plan"], "small", "{acme}");
    assert_eq!(acme["limits"]["max_mailboxes"], 5, "{acme}");
    assert_eq!(acme["limits"]["max_mailbox_quota_mb"], 2048, "{acme}");
    let r = run(
        hp(&login),
        &["domain", "add", "second.example", "--customer", "acme"],
    );
    assert_eq!(r.code, 1, "{}", r.stdout);
    assert!(r.stderr.contains("max_domains"), "{}", r.stderr);
    let shown = ok(&login, &["customer", "show", "acme"]);
    assert!(
        shown.contains("small") && shown.contains("max domains"),
        "{shown}"
    );
    let r = run(hp(&login), &["plan", "delete", "small"]);
    assert_eq!(r.code, 1, "a plan in use stays");
    let ep = ok_json(&login, &["endpoints", "--domain", "example.com"]);
    assert_eq!(ep[0]["domain"], "example.com", "{ep}");

    // An invalid domain: non-zero exit and the API's message on stderr.
    let r = run(
        hp(&login),
        &["domain", "add", "bad..name", "--customer", "acme"],
    );
    assert_eq!(r.code, 1, "{}", r.stdout);
    assert!(r.stderr.starts_with("error: "), "{}", r.stderr);
    assert!(r.stderr.contains("field: name"), "{}", r.stderr);
    assert!(r.stdout.is_empty(), "{}", r.stdout);

    // Deleting works and is reflected.
    ok(&login, &["mailbox", "delete", "info@example.com"]);
    let r = run(hp(&login), &["mailbox", "show", "info@example.com"]);
    assert_eq!(r.code, 1);

    // Names are owned per registrable domain: the TXT proof another customer would
    // publish, and an admin transfer of example.com's names.
    ok(&login, &["customer", "add", "globex"]);
    let ch = ok_json(
        &login,
        &[
            "domain",
            "challenge",
            "www.example.com",
            "--customer",
            "globex",
        ],
    );
    assert_eq!(field(&ch, "record"), "_hostplane-challenge.example.com");
    assert!(field(&ch, "value").starts_with("hostplane-"), "{ch}");
    let moved = ok_json(
        &login,
        &["domain", "transfer", "example.com", "--to", "globex"],
    );
    assert_eq!(moved["domains"], serde_json::json!(["example.com"]));
    let www = ok_json(
        &login,
        &["domain", "add", "www.example.com", "--customer", "globex"],
    );
    assert_eq!(field(&www, "customer"), "globex");

    // Events recorded the changes.
    let events = ok_json(&login, &["events"]);
    assert!(events.as_array().unwrap().len() >= 6, "{events}");

    // A customer logs in with a password on stdin; logout revokes that token.
    ok(
        &login,
        &[
            "customer",
            "add",
            "bob",
            "--password",
            "correct horse battery",
        ],
    );
    let bob_login = tmp.path().join("bob.toml");
    let mut cmd = hp(&bob_login);
    cmd.args([
        "login",
        "--server",
        &url,
        "--ca",
        ca.to_str().unwrap(),
        "--account",
        "bob",
    ])
    .stdin(Stdio::piped());
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    {
        use std::io::Write;
        let mut stdin = child.stdin.take().unwrap();
        stdin.write_all(b"correct horse battery\n").unwrap();
    }
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let bob = ok_json(&bob_login, &["whoami"]);
    assert_eq!(field(&bob, "account"), "bob");
    let saved = std::fs::read_to_string(&bob_login).unwrap();
    let bob_token = saved
        .lines()
        .find_map(|l| l.strip_prefix("token = "))
        .unwrap()
        .trim_matches('"')
        .to_owned();
    ok(&bob_login, &["logout"]);
    let r = run(
        {
            let mut c = hp(&bob_login);
            c.env("HOSTPLANE_URL", &url)
                .env("HOSTPLANE_CA", &ca)
                .env("HOSTPLANE_TOKEN", &bob_token);
            c
        },
        &["whoami"],
    );
    assert_eq!(r.code, 1, "the token still works after logout");

    site_files(&login, tmp.path());

    // Status, then logout forgets the login.
    let status = ok_json(&login, &["status"]);
    assert!(status["revision"].as_i64().unwrap() > 0, "{status}");
    ok(&login, &["logout"]);
    assert!(!login.exists());

    let stopped = controller.terminate();
    assert!(stopped.success(), "controller exit status {stopped:?}");
}

/// `site update --keep/--local`, `site show`, `site conflicts`, `site deployments`,
/// `site rollback` and `site restore --no-wait` / `site restore-status` (issue 14);
/// the restore's result needs a files server and is tested in the controller's
/// `tests/siteapi.rs`.
fn site_files(login: &std::path::Path, tmp: &std::path::Path) {
    ok(login, &["site", "add", "example.com"]);
    let v = ok_json(
        login,
        &[
            "site",
            "update",
            "example.com",
            "--keep",
            "wp-content/uploads/",
            "--local",
            "wp-content/cache",
        ],
    );
    assert_eq!(v["keep"], serde_json::json!(["wp-content/uploads"]), "{v}");
    assert_eq!(v["local"], serde_json::json!(["wp-content/cache"]), "{v}");
    // Bad input: exit 1, the field and the rule.
    let r = run(
        hp(login),
        &["site", "update", "example.com", "--keep", "../x"],
    );
    assert_eq!(r.code, 1);
    assert!(r.stderr.contains("keep[0]"), "{}", r.stderr);
    let shown = ok(login, &["site", "show", "example.com"]);
    for want in [
        "kept paths",
        "wp-content/uploads",
        "local paths",
        "disk usage",
        "not reported yet",
    ] {
        assert!(
            shown.contains(want),
            "{want} missing:
{shown}"
        );
    }
    let v = ok_json(login, &["site", "update", "example.com", "--clear-local"]);
    assert_eq!(v["local"], serde_json::json!([]), "{v}");
    assert_eq!(v["keep"], serde_json::json!(["wp-content/uploads"]), "{v}");
    assert_eq!(
        ok_json(login, &["site", "conflicts", "example.com"]),
        serde_json::json!([])
    );
    assert!(ok(login, &["site", "conflicts", "example.com"]).contains("(none)"));
    // Two deployments, then back to the first.
    let dir = tmp.join("public");
    std::fs::create_dir_all(&dir).unwrap();
    let mut ids = Vec::new();
    for body in ["one", "two"] {
        std::fs::write(dir.join("index.html"), body).unwrap();
        let d = ok_json(
            login,
            &["site", "upload", "example.com", dir.to_str().unwrap()],
        );
        ids.push(field(&d, "id").to_owned());
    }
    let kept = ok_json(login, &["site", "deployments", "example.com"]);
    assert_eq!(kept[0]["id"], ids[1].as_str(), "{kept}");
    assert_eq!(kept[0]["current"], true, "{kept}");
    let table = ok(login, &["site", "deployments", "example.com"]);
    assert!(table.contains(&ids[0]), "{table}");
    let back = ok_json(login, &["site", "rollback", "example.com"]);
    assert_eq!(field(&back, "id"), ids[0]);
    let r = run(
        hp(login),
        &["site", "rollback", "example.com", &"0".repeat(64)],
    );
    assert_eq!(r.code, 1);
    assert!(r.stderr.contains("site deployments"), "{}", r.stderr);
    // A restore asked without waiting, then followed.
    let req = ok_json(
        login,
        &[
            "site",
            "restore",
            "example.com",
            "wp-content/uploads/logo.png",
            "--no-wait",
        ],
    );
    assert_eq!(field(&req, "state"), "pending");
    let id = field(&req, "id").to_owned();
    let st = ok_json(login, &["site", "restore-status", "example.com", &id]);
    assert_eq!(field(&st, "path"), "wp-content/uploads/logo.png");
    let r = run(
        hp(login),
        &["site", "restore", "example.com", "x", "--at", "yesterday"],
    );
    assert_eq!(r.code, 1);
    assert!(r.stderr.contains("RFC 3339"), "{}", r.stderr);
}

#[test]
fn help_teaches_with_examples() {
    let tmp = tempfile::tempdir().unwrap();
    let login = tmp.path().join("cli.toml");
    let top = ok(&login, &["--help"]);
    assert!(top.contains("Examples:"), "{top}");
    assert!(top.contains("hostplane domain add example.com"), "{top}");
    let sub = ok(&login, &["domain", "add", "--help"]);
    assert!(sub.contains("hostplane domain add"), "{sub}");
    let plan = ok(&login, &["plan", "--help"]);
    assert!(plan.contains("hostplane plan add small"), "{plan}");
    let dns = ok(&login, &["dns", "add", "--help"]);
    assert!(dns.contains("MX 10 mx.example.net"), "{dns}");
    let restore = ok(&login, &["site", "restore", "--help"]);
    assert!(restore.contains("--at 2026-12-06T18:00:00Z"), "{restore}");
    let update = ok(&login, &["site", "update", "--help"]);
    assert!(update.contains("--local wp-content/cache"), "{update}");
    let usage = run(hp(&login), &["domain", "add"]);
    assert_eq!(usage.code, 2, "usage errors exit 2");
}
