//! Benchmark (bench/db/run.sh): provision N databases, each with its own login,
//! through the engine's apply on the machine's MariaDB and/or PostgreSQL; time
//! the first convergence, a no-op re-apply (the level-triggered diff), a
//! password change of every login, and the teardown (every database dumped to the
//! trash, then dropped).
//!
//! `cargo run -p role-db --example bench_provision -- [N] [mariadb|postgres|both]`
//! (the dev profile is fine: the time is spent in the database servers).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::process::Command;
use std::time::Instant;

use agent::supervisor::EngineContext;
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use model::DbEngine;
use proto::agent_v1::{DbConfig, DbRoleConfig, DbUserConfig};
use ring::{digest, hmac, pbkdf2};

fn verifier(engine: DbEngine, i: usize, round: usize) -> String {
    let password = format!("bench-{i}-{round}");
    match engine {
        DbEngine::Mariadb => {
            let inner = digest::digest(&digest::SHA1_FOR_LEGACY_USE_ONLY, password.as_bytes());
            let outer = digest::digest(&digest::SHA1_FOR_LEGACY_USE_ONLY, inner.as_ref());
            let hex: String = outer.as_ref().iter().map(|b| format!("{b:02X}")).collect();
            format!("*{hex}")
        }
        DbEngine::Postgres => {
            let salt = (i as u128 * 7 + round as u128).to_be_bytes();
            let mut salted = [0u8; 32];
            pbkdf2::derive(
                pbkdf2::PBKDF2_HMAC_SHA256,
                std::num::NonZeroU32::new(4096).unwrap(),
                &salt,
                password.as_bytes(),
                &mut salted,
            );
            let key = hmac::Key::new(hmac::HMAC_SHA256, &salted);
            let stored = digest::digest(&digest::SHA256, hmac::sign(&key, b"Client Key").as_ref());
            let server = hmac::sign(&key, b"Server Key");
            format!(
                "SCRAM-SHA-256$4096:{}${}:{}",
                STANDARD.encode(salt),
                STANDARD.encode(stored.as_ref()),
                STANDARD.encode(server.as_ref())
            )
        }
    }
}

fn config(engine: DbEngine, tag: &str, n: usize, round: usize) -> DbRoleConfig {
    DbRoleConfig {
        databases: (0..n)
            .map(|i| DbConfig {
                name: format!("{tag}_d{i}"),
                engine,
                owner: format!("cust{}", i % 100),
                restore_from: None,
            })
            .collect(),
        users: (0..n)
            .map(|i| DbUserConfig {
                name: format!("{tag}_u{i}"),
                engine,
                password_verifier: verifier(engine, i, round),
                databases: vec![format!("{tag}_d{i}")],
            })
            .collect(),
        quotas: (0..100).map(|c| (format!("cust{c}"), 1024)).collect(),
        trash_days: 1,
    }
}

async fn bench(engine: DbEngine, n: usize) {
    let tag = format!("hpb{:05}", std::process::id() % 100_000);
    let dir = tempfile::tempdir().unwrap();
    let ctx = EngineContext {
        server: tag.clone(),
        role: "db".into(),
        bind: "127.0.0.1".parse().unwrap(),
        state_dir: dir.path().to_path_buf(),
        identity: None,
        options: BTreeMap::from([
            ("engines".to_string(), engine.as_str().to_string()),
            ("registry_scope".to_string(), tag.clone()),
            ("size_interval_secs".to_string(), "3600".to_string()),
        ]),
        controllers: Vec::new(),
    };
    let mut e = role_db::start(&ctx).unwrap();
    let h = e.handle();
    let step = |what: &str, t: Instant| {
        let s = t.elapsed().as_secs_f64();
        println!(
            "{engine:8} {n:5} {what:32} {s:8.2} s  {:8.1} objects/s",
            n as f64 / s
        );
    };
    // verifiers are computed before the clock starts
    let (first, second) = (config(engine, &tag, n, 0), config(engine, &tag, n, 1));
    let t = Instant::now();
    e.apply_db(&first).await.unwrap();
    step("create dbs+users+grants", t);
    let t = Instant::now();
    e.apply_db(&first).await.unwrap();
    step("re-apply, nothing to do", t);
    assert_eq!(h.last_actions(), 0);
    let t = Instant::now();
    e.apply_db(&second).await.unwrap();
    step("change every password", t);
    let t = Instant::now();
    h.refresh().await.unwrap();
    step("measure sizes + quotas", t);
    assert_eq!(h.report().len(), n);
    let t = Instant::now();
    e.apply_db(&DbRoleConfig::default()).await.unwrap();
    step("drop all (dump to trash first)", t);
    assert_eq!(h.trash_list().len(), n);
    assert!(h.problems().is_empty(), "{:?}", h.problems());
    e.stop().await;
    // registry rows of this run
    match engine {
        DbEngine::Mariadb => {
            let _ = Command::new("mysql")
                .args(["--no-defaults", "-uroot", "-h127.0.0.1", "-e"])
                .arg(format!(
                    "DELETE FROM hostplane.objects WHERE scope = '{tag}'"
                ))
                .status();
        }
        DbEngine::Postgres => {
            let _ = Command::new("psql")
                .args(["-X", "-q", "-h", "127.0.0.1", "-U", "postgres", "-c"])
                .arg(format!(
                    "DELETE FROM hostplane.objects WHERE scope = '{tag}'"
                ))
                .status();
        }
    }
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let n: usize = args.get(1).and_then(|s| s.parse().ok()).unwrap_or(1000);
    let which = args.get(2).map(String::as_str).unwrap_or("both");
    println!("engine       N  step                              seconds   rate");
    if which == "mariadb" || which == "both" {
        bench(DbEngine::Mariadb, n).await;
    }
    if which == "postgres" || which == "both" {
        bench(DbEngine::Postgres, n).await;
    }
}
