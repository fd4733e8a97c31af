//! The engine against the machine's PostgreSQL (127.0.0.1:5432), checked with the
//! real `psql` client as the customers' logins.
//!
//! That server trusts every TCP client from 127.0.0.1 (its pg_hba.conf), so
//! passwords are NOT checked here: the password tests run against the managed
//! instance (tests/managed.rs), whose pg_hba.conf requires scram-sha-256.

#![allow(clippy::unwrap_used)] // test helpers outside #[test] functions

mod common;

use common::*;
use model::DbEngine::{Mariadb, Postgres};
use proto::agent_v1::{DbRoleConfig, EngineState};

const LOCAL: &str = "127.0.0.1";

fn engine(t: &str, dir: &std::path::Path) -> role_db::DbRole {
    role_db::start(&ctx(
        t,
        LOCAL.parse().unwrap(),
        dir,
        &[("engines", "postgres")],
    ))
    .expect("start engine")
}

fn two_customers(t: &str) -> DbRoleConfig {
    DbRoleConfig {
        databases: vec![
            db(&format!("{t}_adb"), Postgres, "a"),
            db(&format!("{t}_bdb"), Postgres, "b"),
        ],
        users: vec![
            user(
                &format!("{t}_au"),
                Postgres,
                "pw-a-1",
                &[&format!("{t}_adb")],
            ),
            user(
                &format!("{t}_bu"),
                Postgres,
                "pw-b-1",
                &[&format!("{t}_bdb")],
            ),
        ],
        ..Default::default()
    }
}

#[tokio::test]
async fn postgres_customers_are_isolated_and_cannot_create_databases() {
    let t = tag();
    let _c = Cleanup(t.clone());
    let dir = tempfile::tempdir().unwrap();
    let mut e = engine(&t, dir.path());
    let mut cfg = two_customers(&t);
    // several logins may share a database (their grants are applied one by one)
    for i in 0..4 {
        cfg.users.push(user(
            &format!("{t}_a{i}"),
            Postgres,
            "pw-a-x",
            &[&format!("{t}_adb")],
        ));
    }
    e.apply_db(&cfg).await.unwrap();
    let h = e.handle();
    assert!(h.problems().is_empty(), "{:?}", h.problems());
    ok(&psql(
        &Endpoint::machine_postgres(),
        &format!("{t}_a3"),
        "pw-a-x",
        &format!("{t}_adb"),
        "CREATE TABLE t3 (id int)",
    ));
    assert_eq!(h.health().state, EngineState::Ok, "{}", h.health().detail);
    let ep = Endpoint::machine_postgres();
    let (adb, bdb, au, bu) = (
        format!("{t}_adb"),
        format!("{t}_bdb"),
        format!("{t}_au"),
        format!("{t}_bu"),
    );

    ok(&psql(
        &ep,
        &au,
        "pw-a-1",
        &adb,
        "CREATE TABLE t (id int PRIMARY KEY, v text); INSERT INTO t VALUES (1, 'mine')",
    ));
    assert_eq!(
        ok(&psql(&ep, &au, "pw-a-1", &adb, "SELECT v FROM t")),
        "mine"
    );
    ok(&psql(
        &ep,
        &bu,
        "pw-b-1",
        &bdb,
        "CREATE TABLE t (id int PRIMARY KEY, v text); INSERT INTO t VALUES (1, 'secret')",
    ));

    // a cannot connect to b's database (so cannot read or change it)
    let err = refused(&psql(&ep, &au, "pw-a-1", &bdb, "SELECT 1"));
    assert!(err.contains("permission denied"), "{err}");
    // nor create databases or roles
    let err = refused(&psql(
        &ep,
        &au,
        "pw-a-1",
        &adb,
        &format!("CREATE DATABASE {t}_new"),
    ));
    assert!(err.contains("permission denied"), "{err}");
    refused(&psql(
        &ep,
        &au,
        "pw-a-1",
        &adb,
        &format!("CREATE ROLE {t}_r"),
    ));
    // nor does its own database let b in
    refused(&psql(&ep, &bu, "pw-b-1", &adb, "SELECT 1"));

    e.apply_db(&cfg).await.unwrap();
    assert!(h.problems().is_empty(), "{:?}", h.problems());
    assert_eq!(h.last_actions(), 0, "a converged config must be a no-op");

    // a login that loses a database loses access (and its open sessions)
    cfg.users[0].databases.clear();
    e.apply_db(&cfg).await.unwrap();
    refused(&psql(&ep, &au, "pw-a-1", &adb, "SELECT 1"));
    e.stop().await;
}

#[tokio::test]
async fn postgres_drop_goes_to_trash_and_restore_brings_rows_back() {
    let t = tag();
    let _c = Cleanup(t.clone());
    let dir = tempfile::tempdir().unwrap();
    let mut e = engine(&t, dir.path());
    let h = e.handle();
    let mut cfg = two_customers(&t);
    e.apply_db(&cfg).await.unwrap();
    let ep = Endpoint::machine_postgres();
    let (adb, au) = (format!("{t}_adb"), format!("{t}_au"));
    ok(&psql(&ep, &au, "pw-a-1", &adb, "CREATE TABLE t (id serial PRIMARY KEY, v text); INSERT INTO t (v) VALUES ('keep me'), ('me too')"));

    cfg.databases.retain(|d| d.name != adb);
    cfg.users[0].databases.clear();
    e.apply_db(&cfg).await.unwrap();
    assert_eq!(
        ok(&pg_admin(&format!(
            "SELECT count(*) FROM pg_database WHERE datname = '{adb}'"
        ))),
        "0"
    );
    let trash = h.trash_list();
    assert_eq!(trash.len(), 1, "{trash:?}");
    assert_eq!(
        (trash[0].db.as_str(), trash[0].engine),
        (adb.as_str(), Postgres)
    );

    let mut back = db(&adb, Postgres, "a");
    back.restore_from = Some(trash[0].name.clone());
    cfg.databases.push(back);
    cfg.users[0].databases = vec![adb.clone()];
    e.apply_db(&cfg).await.unwrap();
    assert_eq!(
        ok(&psql(
            &ep,
            &au,
            "pw-a-1",
            &adb,
            "SELECT v FROM t ORDER BY id"
        )),
        "keep me\nme too"
    );
    // restored tables (and their sequences) are writable by the login again
    ok(&psql(
        &ep,
        &au,
        "pw-a-1",
        &adb,
        "INSERT INTO t (v) VALUES ('new')",
    ));

    // a dropped login's objects are handed to the admin, the data stays
    cfg.users.remove(0);
    e.apply_db(&cfg).await.unwrap();
    assert_eq!(
        ok(&pg_admin(&format!(
            "SELECT count(*) FROM pg_roles WHERE rolname = '{au}'"
        ))),
        "0"
    );
    e.apply_db(&DbRoleConfig::default()).await.unwrap();
    assert_eq!(h.trash_list().len(), 3);
    assert_eq!(
        ok(&pg_admin(&format!(
            "SELECT count(*) FROM pg_database WHERE datname LIKE '{t}%'"
        ))),
        "0"
    );
    e.stop().await;
}

#[tokio::test]
async fn postgres_quota_makes_the_database_read_only_until_back_under() {
    let t = tag();
    let _c = Cleanup(t.clone());
    let dir = tempfile::tempdir().unwrap();
    let mut e = engine(&t, dir.path());
    let h = e.handle();
    let mut cfg = two_customers(&t);
    // an empty PostgreSQL database is about 7.5 MB of catalog
    cfg.quotas = vec![("a".into(), 9)];
    e.apply_db(&cfg).await.unwrap();
    let ep = Endpoint::machine_postgres();
    let (adb, au) = (format!("{t}_adb"), format!("{t}_au"));
    ok(&psql(&ep, &au, "pw-a-1", &adb, "CREATE TABLE t (id int, v text); INSERT INTO t SELECT g, repeat(md5(g::text), 40) FROM generate_series(1, 4000) g"));
    h.refresh().await.unwrap();
    assert_eq!(
        h.quotas()[0].level,
        role_db::QuotaLevel::Exceeded,
        "{:?}",
        h.quotas()
    );
    let err = refused(&psql(
        &ep,
        &au,
        "pw-a-1",
        &adb,
        "INSERT INTO t VALUES (0, 'more')",
    ));
    assert!(err.contains("read-only"), "{err}");
    assert_eq!(
        ok(&psql(&ep, &au, "pw-a-1", &adb, "SELECT count(*) FROM t")),
        "4000"
    );
    ok(&psql(
        &ep,
        &format!("{t}_bu"),
        "pw-b-1",
        &format!("{t}_bdb"),
        "CREATE TABLE t (id int)",
    ));

    cfg.quotas = vec![("a".into(), 100)];
    e.apply_db(&cfg).await.unwrap();
    h.refresh().await.unwrap();
    assert_eq!(h.quotas()[0].level, role_db::QuotaLevel::Ok);
    ok(&psql(
        &ep,
        &au,
        "pw-a-1",
        &adb,
        "INSERT INTO t VALUES (0, 'more')",
    ));
    e.stop().await;
}

#[tokio::test]
async fn an_unreachable_server_does_not_block_the_other() {
    let t = tag();
    let _c = Cleanup(t.clone());
    let dir = tempfile::tempdir().unwrap();
    let bogus = format!(
        "mysql://root@localhost/?socket={}/none.sock",
        dir.path().display()
    );
    let mut e = role_db::start(&ctx(
        &t,
        LOCAL.parse().unwrap(),
        dir.path(),
        &[("mariadb_url", bogus.as_str())],
    ))
    .unwrap();
    let mut cfg = two_customers(&t);
    cfg.databases.push(db(&format!("{t}_m"), Mariadb, "a"));
    e.apply_db(&cfg).await.unwrap();
    let h = e.handle();
    assert!(h.available(Postgres) && !h.available(Mariadb));
    let health = h.health();
    assert_eq!(health.state, EngineState::Degraded);
    assert!(
        health.detail.contains("mariadb unavailable"),
        "{}",
        health.detail
    );
    ok(&psql(
        &Endpoint::machine_postgres(),
        &format!("{t}_au"),
        "pw-a-1",
        &format!("{t}_adb"),
        "SELECT 1",
    ));
    e.stop().await;
}
