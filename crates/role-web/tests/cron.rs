//! A site's cron jobs run by the web engine with real php-cli (issue 15): a job
//! runs as the site's user with the pool's settings (`open_basedir` keeps it out
//! of `/etc/passwd`, `exec` is disabled, arguments arrive as argv), a tick is
//! skipped while the previous run of the job still goes, a run past the timeout is
//! killed with its process group, a `GET` job asks the engine for the site's path,
//! each run is a line in `<domain>.cron.log`, and
//! only the holder named by the config with a valid lease runs anything.

#![allow(clippy::unwrap_used)] // test helpers outside #[test] functions

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use agent::lease::CronLease;
use agent::supervisor::{EngineContext, RoleEngine};
use proto::agent_v1::{RoleConfig, WebConfig, WebCron, WebCronJob, WebSite};
use role_web::cron::Action;
use role_web::WebEngine;

const DOMAIN: &str = "cron.example";

fn ctx(state: &Path) -> EngineContext {
    let mut options = BTreeMap::new();
    options.insert("http_port".to_string(), "0".to_string());
    options.insert("https_port".to_string(), "0".to_string());
    EngineContext {
        server: "web-1".into(),
        role: "web".into(),
        bind: "127.0.0.1".parse().unwrap(),
        state_dir: state.join("engines/web"),
        identity: None,
        options,
        controllers: Vec::new(),
    }
}

fn publish(state: &Path, files: &[(&str, &str)]) {
    let site = state.join("engines/web/content").join(DOMAIN);
    std::fs::create_dir_all(site.join("releases/r1")).unwrap();
    for (name, body) in files {
        std::fs::write(site.join("releases/r1").join(name), body).unwrap();
    }
    let _ = std::os::unix::fs::symlink("releases/r1", site.join("current"));
}

fn config(holder: &str, timeout_s: u64, jobs: &[(u32, &str)]) -> RoleConfig {
    let mut s: WebSite = serde_json::from_value(serde_json::json!({
        "domain": DOMAIN, "mode": "all", "active": true, "php": true,
    }))
    .unwrap();
    s.cron = Some(WebCron {
        holder: Some(holder.into()),
        not_before: 0,
        timeout_s,
        jobs: jobs
            .iter()
            .map(|(id, command)| WebCronJob {
                id: *id,
                schedule: "* * * * *".into(),
                command: (*command).into(),
            })
            .collect(),
    });
    RoleConfig::Web(WebConfig {
        sites: vec![s].into_iter().map(std::sync::Arc::new).collect(),
        ..WebConfig::default()
    })
}

fn log_path(state: &Path) -> PathBuf {
    state.join(format!("engines/web/logs/{DOMAIN}.cron.log"))
}

fn log(state: &Path) -> String {
    std::fs::read_to_string(log_path(state)).unwrap_or_default()
}

async fn until(what: &str, within: Duration, mut ok: impl FnMut() -> bool) {
    let end = Instant::now() + within;
    while !ok() {
        assert!(Instant::now() < end, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn minute() -> i64 {
    (std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        / 60) as i64
}

/// php processes running a script of this test's state dir.
fn php_procs(marker: &str) -> Vec<i32> {
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let Ok(cmd) = std::fs::read(e.path().join("cmdline")) else {
            continue;
        };
        let cmd = String::from_utf8_lossy(&cmd).replace('\0', " ");
        if cmd.contains("/usr/bin/php") && cmd.contains(marker) {
            out.push(pid);
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cron_jobs_run_confined_skip_while_running_and_time_out() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path();
    let marker = state.to_string_lossy().into_owned();
    publish(
        state,
        &[
            (
                "who.php",
                "<?php\n\
                 echo 'uid=', function_exists('posix_geteuid') ? posix_geteuid() : -1, \"\\n\";\n\
                 echo 'passwd=', @file_get_contents('/etc/passwd') === false ? 'denied' : 'read', \"\\n\";\n\
                 echo 'exec=', function_exists('exec') ? 'on' : 'off', \"\\n\";\n\
                 echo 'arg=', $argv[1] ?? '', '|', $argv[2] ?? '', \"\\n\";\n\
                 echo 'cwd=', getcwd(), \"\\n\";\n",
            ),
            ("slow.php", "<?php sleep(4); echo \"slept\\n\";\n"),
            ("forever.php", "<?php while (true) { usleep(100000); }\n"),
            ("ping.txt", "pong\n"),
        ],
    );
    // The engine's own minute task fires at each minute boundary too: start
    // early in a minute so the explicit ticks below do not meet it.
    let second = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        % 60;
    if second > 30 {
        tokio::time::sleep(Duration::from_secs(61 - second)).await;
    }
    let lease = CronLease::default();
    lease.extend(Instant::now() + Duration::from_secs(600));
    let mut engine = WebEngine::start(&ctx(state)).unwrap();
    engine.set_cron_lease(lease.clone());
    engine
        .apply(&config(
            "web-1",
            30,
            &[(1, "php who.php 'hello world' -x"), (2, "php slow.php")],
        ))
        .await
        .unwrap();

    // Both jobs start; the second tick while slow.php sleeps skips it only.
    let m = minute();
    let first = engine.cron().tick(m);
    assert_eq!(
        first,
        vec![
            Action::Run { site: 0, job: 0 },
            Action::Run { site: 0, job: 1 }
        ]
    );
    until("who.php's line", Duration::from_secs(15), || {
        log(state).contains("job=1 | cwd=")
    })
    .await;
    let second = engine.cron().tick(m + 1);
    assert_eq!(second[0], Action::Run { site: 0, job: 0 });
    assert!(
        matches!(&second[1], Action::Skip { reason, .. } if reason.contains("still going")),
        "{second:?}"
    );
    until("slow.php's run", Duration::from_secs(15), || {
        log(state).contains("job=2 | slept")
    })
    .await;
    let text = log(state);
    let uid = role_web::fpm::lookup_user(&role_web::plan::pool_user(DOMAIN)).map(|i| i.uid);
    if rustix::process::geteuid().is_root() {
        assert!(
            text.contains(&format!("job=1 | uid={}\n", uid.unwrap())),
            "runs as the site's user: {text}"
        );
    }
    assert!(text.contains("job=1 | passwd=denied"), "{text}");
    assert!(text.contains("job=1 | exec=off"), "{text}");
    assert!(text.contains("job=1 | arg=hello world|-x"), "{text}");
    assert!(
        text.contains("/current\n") || text.contains("/r1\n"),
        "{text}"
    );
    assert!(text.contains(" job=1 start="), "{text}");
    assert!(
        text.contains(" exit=0 command=\"php who.php 'hello world' -x\""),
        "{text}"
    );
    assert!(
        text.contains("job=2 skipped: the previous run is still going"),
        "{text}"
    );

    // A run past the timeout is killed with its process group.
    engine
        .apply(&config("web-1", 2, &[(3, "php forever.php")]))
        .await
        .unwrap();
    let t0 = Instant::now();
    engine.cron().tick(m + 2);
    until("the timeout's line", Duration::from_secs(15), || {
        log(state).contains("exit=killed (timeout after 2 s)")
    })
    .await;
    assert!(t0.elapsed() < Duration::from_secs(10));
    until("forever.php gone", Duration::from_secs(5), || {
        php_procs(&marker).is_empty()
    })
    .await;
    assert!(engine.cron().running().is_empty());

    // A GET job asks this engine for the site's path.
    engine
        .apply(&config("web-1", 30, &[(4, "GET /ping.txt")]))
        .await
        .unwrap();
    engine.cron().tick(m + 3);
    until("the GET's line", Duration::from_secs(15), || {
        log(state).contains("job=4 | pong")
    })
    .await;
    assert!(log(state).contains(" exit=HTTP 200 command=\"GET /ping.txt\""));

    // Another holder, or no lease: nothing runs here.
    engine
        .apply(&config("web-2", 30, &[(1, "php who.php")]))
        .await
        .unwrap();
    assert!(engine.cron().tick(m + 4).is_empty());
    engine
        .apply(&config("web-1", 30, &[(1, "php who.php")]))
        .await
        .unwrap();
    let mut other = WebEngine::start(&EngineContext {
        state_dir: state.join("other"),
        ..ctx(state)
    })
    .unwrap();
    other.set_cron_lease(CronLease::default());
    other
        .apply(&config("web-1", 30, &[(1, "php who.php")]))
        .await
        .unwrap();
    let a = other.cron().tick(m + 4);
    assert!(
        matches!(&a[0], Action::Skip { reason, .. } if reason.contains("no valid lease")),
        "{a:?}"
    );
    other.shutdown().await;
    engine.shutdown().await;
    assert!(php_procs(&marker).is_empty());
}
