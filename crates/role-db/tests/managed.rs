//! `managed = true`: the engine runs its own mariadbd and postgres on a private
//! 127.x address with private data directories; checked with the real `mysql` and
//! `psql` clients. The managed PostgreSQL requires scram-sha-256 over TCP, so this
//! is where PostgreSQL password checks (and password changes) are tested.

#![allow(clippy::unwrap_used)] // test helpers outside #[test] functions

mod common;

use std::net::IpAddr;
use std::os::unix::fs::PermissionsExt;

use common::*;
use model::DbEngine::{Mariadb, Postgres};
use proto::agent_v1::{DbRoleConfig, EngineState};
use rand::Rng;

#[tokio::test]
async fn managed_instances_serve_customers_with_passwords_and_restart_when_killed() {
    let t = tag();
    let base = tempfile::tempdir().unwrap();
    // the servers run as mysql/postgres when the test runs as root: they must be
    // able to traverse the state dir's parents
    std::fs::set_permissions(base.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let state = base.path().join("db");
    let mut rng = rand::thread_rng();
    let ip: IpAddr = format!(
        "127.{}.{}.{}",
        rng.gen_range(100..200),
        rng.gen_range(0..255),
        rng.gen_range(2..250)
    )
    .parse()
    .unwrap();
    let mut e = role_db::start(&ctx(
        &t,
        ip,
        &state,
        &[("managed", "true"), ("size_interval_secs", "1")],
    ))
    .unwrap();
    let h = e.handle();
    let (mdb, mu, pdb, pu) = (
        format!("{t}_m"),
        format!("{t}_mu"),
        format!("{t}_p"),
        format!("{t}_pu"),
    );
    let mut cfg = DbRoleConfig {
        databases: vec![db(&mdb, Mariadb, "a"), db(&pdb, Postgres, "a")],
        users: vec![
            user(&mu, Mariadb, "m-pw-1", &[&mdb]),
            user(&pu, Postgres, "p-pw-1", &[&pdb]),
        ],
        ..Default::default()
    };
    e.apply_db(&cfg).await.unwrap();
    until_or(
        "both managed servers",
        || h.available(Mariadb) && h.available(Postgres),
        || h.health().detail,
    )
    .await;
    // the background loop converges once the servers accept connections
    until_or(
        "a clean reconcile",
        || h.health().state == EngineState::Ok,
        || h.health().detail,
    )
    .await;
    let listen = h.listen();
    let (mip, mport) = listen[&Mariadb];
    let (pip, pport) = listen[&Postgres];
    assert_eq!((mip, pip), (ip, ip));
    assert!([3306, 13306].contains(&mport) && [5432, 15432].contains(&pport));
    let detail = h.health().detail;
    assert!(
        detail.contains(&format!("managed on {ip}:{mport}")),
        "{detail}"
    );
    let m = Endpoint {
        host: ip.to_string(),
        port: mport,
    };
    let p = Endpoint {
        host: ip.to_string(),
        port: pport,
    };

    // MariaDB: the login works in its database with its password only
    ok(&mysql(
        &m,
        &mu,
        "m-pw-1",
        Some(&mdb),
        "CREATE TABLE t (v TEXT); INSERT INTO t VALUES ('m'); SELECT v FROM t",
    ));
    refused(&mysql(&m, &mu, "wrong", Some(&mdb), "SELECT 1"));
    // root is reachable over the private socket only
    refused(&mysql(&m, "root", "", None, "SELECT 1"));

    // PostgreSQL with scram-sha-256: right password in, wrong one out
    ok(&psql(
        &p,
        &pu,
        "p-pw-1",
        &pdb,
        "CREATE TABLE t (v text); INSERT INTO t VALUES ('p')",
    ));
    assert_eq!(ok(&psql(&p, &pu, "p-pw-1", &pdb, "SELECT v FROM t")), "p");
    let err = refused(&psql(&p, &pu, "wrong", &pdb, "SELECT 1"));
    assert!(err.contains("password authentication failed"), "{err}");
    refused(&psql(&p, "postgres", "", "postgres", "SELECT 1"));
    let err = refused(&psql(&p, &pu, "p-pw-1", "postgres", "SELECT 1"));
    assert!(err.contains("permission denied"), "{err}");

    // password changes take effect on both
    cfg.users[0].password_verifier = mariadb_verifier("m-pw-2");
    cfg.users[1].password_verifier = postgres_verifier("p-pw-2");
    e.apply_db(&cfg).await.unwrap();
    refused(&mysql(&m, &mu, "m-pw-1", Some(&mdb), "SELECT 1"));
    assert_eq!(
        ok(&mysql(&m, &mu, "m-pw-2", Some(&mdb), "SELECT v FROM t")),
        "m"
    );
    refused(&psql(&p, &pu, "p-pw-1", &pdb, "SELECT 1"));
    assert_eq!(ok(&psql(&p, &pu, "p-pw-2", &pdb, "SELECT v FROM t")), "p");
    // the servers keep the verifiers exactly as given: nothing left to do
    e.apply_db(&cfg).await.unwrap();
    assert_eq!(h.last_actions(), 0);

    // killed, mariadbd is restarted and keeps its data
    let pid_file = state.join("mariadb/run/mariadb.pid");
    let pid: i32 = std::fs::read_to_string(&pid_file)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    rustix::process::kill_process(
        rustix::process::Pid::from_raw(pid).unwrap(),
        rustix::process::Signal::KILL,
    )
    .unwrap();
    until_or(
        "mariadbd back",
        || {
            mysql(&m, &mu, "m-pw-2", Some(&mdb), "SELECT v FROM t")
                .status
                .success()
        },
        || {
            let log = state.join("mariadb/run/error.log");
            let text = std::fs::read_to_string(log).unwrap_or_default();
            let tail: Vec<&str> = text.lines().rev().take(15).collect();
            format!("{} | log: {}", h.health().detail, tail.join("\n"))
        },
    )
    .await;
    assert_eq!(
        ok(&mysql(&m, &mu, "m-pw-2", Some(&mdb), "SELECT v FROM t")),
        "m"
    );

    e.stop().await;
    // stopped: nothing listens any more
    assert!(std::net::TcpStream::connect((ip, mport)).is_err());
    assert!(std::net::TcpStream::connect((ip, pport)).is_err());
}

/// Running as root under a private agent state dir (0700, as the agent makes it):
/// the data goes where the `mysql` user can reach it.
#[tokio::test]
async fn managed_data_moves_out_of_a_private_state_dir_when_root() {
    if !rustix::process::geteuid().is_root() {
        // Not root: the servers run as this user and can reach the state dir.
        return;
    }
    let t = tag();
    let base = tempfile::tempdir().unwrap(); // 0700
    let state = base.path().join("engines/db");
    let mut rng = rand::thread_rng();
    let ip: IpAddr = format!(
        "127.{}.{}.{}",
        rng.gen_range(200..250),
        rng.gen_range(0..255),
        rng.gen_range(2..250)
    )
    .parse()
    .unwrap();
    let fallback = role_db::managed::fallback_dir(&t, &state);
    struct Rm(std::path::PathBuf);
    impl Drop for Rm {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
            // only when empty (another test may use them)
            let _ = std::fs::remove_dir("/var/lib/hostplane/db");
            let _ = std::fs::remove_dir("/var/lib/hostplane");
        }
    }
    let _rm = Rm(fallback.clone());
    let mut e = role_db::start(&ctx(
        &t,
        ip,
        &state,
        &[("managed", "true"), ("engines", "mariadb")],
    ))
    .unwrap();
    let h = e.handle();
    let cfg = DbRoleConfig {
        databases: vec![db(&format!("{t}_m"), Mariadb, "a")],
        users: vec![user(
            &format!("{t}_mu"),
            Mariadb,
            "pw",
            &[&format!("{t}_m")],
        )],
        ..Default::default()
    };
    e.apply_db(&cfg).await.unwrap();
    until_or(
        "a clean reconcile",
        || h.health().state == EngineState::Ok,
        || h.health().detail,
    )
    .await;
    assert!(
        h.health().detail.contains(&fallback.display().to_string()),
        "{}",
        h.health().detail
    );
    assert!(fallback.join("mariadb/data/mysql").is_dir());
    let (_, port) = h.listen()[&Mariadb];
    let m = Endpoint {
        host: ip.to_string(),
        port,
    };
    ok(&mysql(
        &m,
        &format!("{t}_mu"),
        "pw",
        Some(&format!("{t}_m")),
        "CREATE TABLE t (id INT)",
    ));
    e.stop().await;
}

/// Fallback data of a state dir that no longer exists is removed by a later
/// start; fallback data of a live state dir is kept.
#[test]
fn stale_fallback_data_is_collected() {
    if !rustix::process::geteuid().is_root() {
        return;
    }
    let t = tag();
    let live_state = tempfile::tempdir().unwrap();
    let gone_state = live_state.path().join("gone");
    let live = role_db::managed::fallback_dir(&t, live_state.path());
    let stale = role_db::managed::fallback_dir(&t, &gone_state);
    assert_ne!(live, stale);
    role_db::managed::claim_fallback(&live, live_state.path()).unwrap();
    role_db::managed::claim_fallback(&stale, &gone_state).unwrap();
    std::fs::create_dir_all(stale.join("mariadb/data")).unwrap();
    role_db::managed::collect_stale_fallbacks();
    assert!(live.is_dir() && !stale.exists());
    std::fs::remove_dir_all(&live).unwrap();
}
