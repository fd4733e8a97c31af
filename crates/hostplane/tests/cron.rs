//! A site's cron end to end with real processes (issue 15): `cron add` through
//! the client → API → placement → the web servers' desired config → the holder's
//! runner (real php-cli at the real minute) → its `cron.log`; the other web server
//! runs nothing; the holder killed (its long run goes with it), the runner moves
//! to the survivor, which runs the job once the handover (the short lease of this
//! test) has passed.

#![allow(clippy::unwrap_used)] // test helpers outside #[test] fns may panic

use std::path::PathBuf;
use std::time::Duration;

use proto::v1::{CreateCronJob, CreateDomain, CreateSite};
use testkit::{Options, TestCluster};

const BIN: &str = env!("CARGO_BIN_EXE_hostplane");
const DOMAIN: &str = "cron.test";

fn content(c: &TestCluster, agent: &str) -> PathBuf {
    c.agent(agent)
        .unwrap()
        .state_dir
        .join("engines/web/content")
        .join(DOMAIN)
}

fn cron_log(c: &TestCluster, agent: &str) -> String {
    let path = c
        .agent(agent)
        .unwrap()
        .state_dir
        .join(format!("engines/web/logs/{DOMAIN}.cron.log"));
    std::fs::read_to_string(path).unwrap_or_default()
}

fn runs(c: &TestCluster, agent: &str) -> usize {
    cron_log(c, agent).matches(" exit=0 ").count()
}

/// php processes whose command line names `dir`.
fn php_under(dir: &std::path::Path) -> Vec<i32> {
    let marker = dir.to_string_lossy().into_owned();
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| {
            let pid = e.file_name().to_string_lossy().parse::<i32>().ok()?;
            let cmd = std::fs::read(e.path().join("cmdline")).ok()?;
            let cmd = String::from_utf8_lossy(&cmd).replace('\0', " ");
            (cmd.starts_with("/usr/bin/php") && cmd.contains(&marker)).then_some(pid)
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cron_runs_on_one_server_and_moves_when_it_dies() {
    let mut c = TestCluster::start(
        BIN,
        Options {
            cron_lease_s: 3,
            ..Options::default()
        },
    )
    .await
    .unwrap();
    c.add_cluster("web-1", "web", true).await.unwrap();
    c.add_cluster("dns-1", "dns", true).await.unwrap();
    c.add_cluster("mail-1", "mail", true).await.unwrap();
    c.add_cluster("files-1", "files", true).await.unwrap();
    c.add_customer("acme").await.unwrap();
    for name in ["w1", "w2"] {
        c.add_agent(name, "web-1", "DE").await.unwrap();
    }
    for name in ["w1", "w2"] {
        c.wait_converged(name, Duration::from_secs(30))
            .await
            .unwrap();
    }
    c.admin()
        .create_domain(&CreateDomain {
            name: DOMAIN.into(),
            customer: Some("acme".into()),
            clusters: None,
        })
        .await
        .unwrap();
    c.admin()
        .create_site(&CreateSite {
            domain: DOMAIN.into(),
            aliases: None,
            php: Some(true),
            mode: Some("all".into()),
            https_redirect: None,
        })
        .await
        .unwrap();
    for name in ["w1", "w2"] {
        c.wait_converged(name, Duration::from_secs(30))
            .await
            .unwrap();
        let site = content(&c, name);
        std::fs::create_dir_all(site.join("r1")).unwrap();
        std::fs::write(site.join("r1/job.php"), "<?php echo \"tick\\n\";\n").unwrap();
        std::fs::write(site.join("r1/slow.php"), "<?php sleep(600);\n").unwrap();
        let _ = std::os::unix::fs::symlink("r1", site.join("current"));
    }
    let job = c
        .admin()
        .create_cron_job(
            DOMAIN,
            &CreateCronJob {
                schedule: "* * * * *".into(),
                command: "php job.php".into(),
            },
        )
        .await
        .unwrap();
    let holder = job.server.clone().unwrap();
    c.admin()
        .create_cron_job(
            DOMAIN,
            &CreateCronJob {
                schedule: "* * * * *".into(),
                command: "php slow.php".into(),
            },
        )
        .await
        .unwrap();
    let other = if holder == "w1" { "w2" } else { "w1" };
    c.wait_until("a run on the holder", Duration::from_secs(90), async |c| {
        Ok(runs(c, &holder) >= 1)
    })
    .await
    .unwrap();
    assert!(cron_log(&c, &holder).contains("  job=1 | tick\n"));
    assert_eq!(runs(&c, other), 0, "{}", cron_log(&c, other));

    // The holder dies (with its run of slow.php: a session of its own naming the
    // server's state dir): the runner moves, and the survivor runs the job.
    let marker = c.agent(&holder).unwrap().state_dir.clone();
    c.wait_until("slow.php running", Duration::from_secs(30), async |_| {
        Ok(!php_under(&marker).is_empty())
    })
    .await
    .unwrap();
    c.kill_agent(&holder).unwrap();
    c.wait_until(
        "the killed server's cron run gone",
        Duration::from_secs(5),
        async |_| Ok(php_under(&marker).is_empty()),
    )
    .await
    .unwrap();
    c.wait_until("the runner moved", Duration::from_secs(30), async |c| {
        let list = c.admin().list_cron_jobs(DOMAIN).await?;
        Ok(list[0].server.as_deref() == Some(other))
    })
    .await
    .unwrap();
    c.wait_until(
        "a run on the survivor",
        Duration::from_secs(90),
        async |c| Ok(runs(c, other) >= 1),
    )
    .await
    .unwrap();
    let moves = c.events("site.cron_move").await.unwrap();
    assert_eq!(moves.len(), 2, "placed, then moved: {moves:?}");
}
