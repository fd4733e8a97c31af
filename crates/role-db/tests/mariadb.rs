//! The engine against the machine's MariaDB (127.0.0.1:3306, root without password
//! over the socket), checked with the real `mysql` client as the customers' logins.

#![allow(clippy::unwrap_used)] // test helpers outside #[test] functions

mod common;

use common::*;
use model::DbEngine::Mariadb;
use proto::agent_v1::DbRoleConfig;
use proto::agent_v1::EngineState;

const LOCAL: &str = "127.0.0.1";

fn engine(t: &str, dir: &std::path::Path) -> role_db::DbRole {
    role_db::start(&ctx(
        t,
        LOCAL.parse().unwrap(),
        dir,
        &[("engines", "mariadb")],
    ))
    .expect("start engine")
}

/// Customer a owns `<t>_adb` (user `<t>_au`); customer b owns `<t>zadb`, a name the
/// unescaped grant pattern `<t>_adb` would match (`_` is a wildcard in grants).
fn two_customers(t: &str) -> DbRoleConfig {
    DbRoleConfig {
        databases: vec![
            db(&format!("{t}_adb"), Mariadb, "a"),
            db(&format!("{t}zadb"), Mariadb, "b"),
        ],
        users: vec![
            user(
                &format!("{t}_au"),
                Mariadb,
                "pw-a-1",
                &[&format!("{t}_adb")],
            ),
            user(
                &format!("{t}_bu"),
                Mariadb,
                "pw-b-1",
                &[&format!("{t}zadb")],
            ),
        ],
        ..Default::default()
    }
}

#[tokio::test]
async fn mariadb_customers_are_isolated_and_cannot_create_databases() {
    let t = tag();
    let _c = Cleanup(t.clone());
    let dir = tempfile::tempdir().unwrap();
    let mut e = engine(&t, dir.path());
    e.apply_db(&two_customers(&t)).await.unwrap();
    let h = e.handle();
    assert_eq!(h.health().state, EngineState::Ok, "{}", h.health().detail);
    let ep = Endpoint::machine_mariadb();
    let (adb, bdb, au, bu) = (
        format!("{t}_adb"),
        format!("{t}zadb"),
        format!("{t}_au"),
        format!("{t}_bu"),
    );

    // a works in its own database
    ok(&mysql(
        &ep,
        &au,
        "pw-a-1",
        Some(&adb),
        "CREATE TABLE t (id INT PRIMARY KEY, v TEXT); INSERT INTO t VALUES (1, 'mine');",
    ));
    assert_eq!(
        ok(&mysql(&ep, &au, "pw-a-1", Some(&adb), "SELECT v FROM t")),
        "mine"
    );
    ok(&mysql(
        &ep,
        &bu,
        "pw-b-1",
        Some(&bdb),
        "CREATE TABLE t (id INT PRIMARY KEY, v TEXT); INSERT INTO t VALUES (1, 'secret');",
    ));

    // a cannot see, read or change b's database
    let dbs = ok(&mysql(&ep, &au, "pw-a-1", None, "SHOW DATABASES"));
    assert!(dbs.contains(&adb) && !dbs.contains(&bdb), "{dbs}");
    refused(&mysql(&ep, &au, "pw-a-1", Some(&bdb), "SELECT 1"));
    refused(&mysql(
        &ep,
        &au,
        "pw-a-1",
        None,
        &format!("SELECT v FROM `{bdb}`.t"),
    ));
    refused(&mysql(
        &ep,
        &au,
        "pw-a-1",
        None,
        &format!("INSERT INTO `{bdb}`.t VALUES (2, 'x')"),
    ));
    refused(&mysql(
        &ep,
        &au,
        "pw-a-1",
        None,
        &format!("DROP TABLE `{bdb}`.t"),
    ));
    refused(&mysql(&ep, &bu, "pw-a-1", Some(&bdb), "SELECT 1")); // wrong password

    // nobody creates databases, not even look-alikes of their own
    for name in [format!("{t}_new"), format!("{t}_adc"), format!("{t}xadb")] {
        let err = refused(&mysql(
            &ep,
            &au,
            "pw-a-1",
            None,
            &format!("CREATE DATABASE `{name}`"),
        ));
        assert!(err.contains("denied"), "{err}");
    }
    let grants = ok(&mysql(&ep, &au, "pw-a-1", None, "SHOW GRANTS"));
    assert!(grants.contains("GRANT USAGE ON *.*"), "{grants}");
    for line in grants.lines().filter(|l| l.contains("ON *.*")) {
        assert!(
            line.starts_with("GRANT USAGE ON *.*"),
            "global privilege: {line}"
        );
    }

    // a second apply of the same config changes nothing and reports nothing
    e.apply_db(&two_customers(&t)).await.unwrap();
    assert!(h.problems().is_empty(), "{:?}", h.problems());
    assert_eq!(h.last_actions(), 0, "a converged config must be a no-op");
    e.stop().await;
}

#[tokio::test]
async fn mariadb_password_change_takes_effect() {
    let t = tag();
    let _c = Cleanup(t.clone());
    let dir = tempfile::tempdir().unwrap();
    let mut e = engine(&t, dir.path());
    let mut cfg = two_customers(&t);
    e.apply_db(&cfg).await.unwrap();
    let ep = Endpoint::machine_mariadb();
    let au = format!("{t}_au");
    ok(&mysql(&ep, &au, "pw-a-1", None, "SELECT 1"));
    cfg.users[0].password_verifier = mariadb_verifier("pw-a-2");
    e.apply_db(&cfg).await.unwrap();
    refused(&mysql(&ep, &au, "pw-a-1", None, "SELECT 1"));
    ok(&mysql(&ep, &au, "pw-a-2", None, "SELECT 1"));
    // a verifier that is not one is refused, the login keeps its password (an
    // update of a good object); in the same config a new bad database is left out
    // and a new good database and grant apply (issue 12)
    cfg.users[0].password_verifier = "pw-a-3".into();
    cfg.databases.push(db(&format!("{t}_b/x"), Mariadb, "b"));
    cfg.databases.push(db(&format!("{t}_bnew"), Mariadb, "b"));
    cfg.users[1].databases.push(format!("{t}_bnew"));
    e.apply_db(&cfg).await.unwrap();
    assert!(e.handle().problems().iter().any(|p| p.contains("verifier")));
    let objects: Vec<String> = e
        .handle()
        .rejected()
        .into_iter()
        .map(|r| r.object)
        .collect();
    assert_eq!(
        objects,
        vec![format!("database {t}_b/x"), format!("db user {au}")]
    );
    ok(&mysql(&ep, &au, "pw-a-2", None, "SELECT 1"));
    let bu = format!("{t}_bu");
    ok(&mysql(
        &ep,
        &bu,
        "pw-b-1",
        Some(&format!("{t}_bnew")),
        "CREATE TABLE t (i INT)",
    ));
    e.stop().await;
}

#[tokio::test]
async fn mariadb_drop_goes_to_trash_and_restore_brings_rows_back() {
    let t = tag();
    let _c = Cleanup(t.clone());
    let dir = tempfile::tempdir().unwrap();
    let mut e = engine(&t, dir.path());
    let h = e.handle();
    let mut cfg = two_customers(&t);
    e.apply_db(&cfg).await.unwrap();
    let ep = Endpoint::machine_mariadb();
    let (adb, au) = (format!("{t}_adb"), format!("{t}_au"));
    ok(&mysql(&ep, &au, "pw-a-1", Some(&adb), "CREATE TABLE t (id INT PRIMARY KEY, v TEXT); INSERT INTO t VALUES (1, 'keep me'), (2, 'me too');"));

    // the database leaves the config: dumped, then dropped; the grant goes too
    cfg.databases.retain(|d| d.name != adb);
    cfg.users[0].databases.clear();
    e.apply_db(&cfg).await.unwrap();
    let gone = ok(&maria_admin(&format!(
        "SELECT COUNT(*) FROM information_schema.schemata WHERE schema_name = '{adb}'"
    )));
    assert_eq!(gone, "0");
    let trash = h.trash_list();
    assert_eq!(trash.len(), 1, "{trash:?}");
    assert_eq!(trash[0].db, adb);
    assert!(trash[0].size_bytes > 0);
    assert_eq!(trash[0].owner, "a");
    let wire = h.wire_report();
    assert!(
        wire.trash
            .iter()
            .any(|e| e.owner == "a" && e.database == adb && e.dropped_at.ends_with('Z')),
        "{wire:?}"
    );
    let file = dir
        .path()
        .join("trash/mariadb")
        .join(format!("{}.sql.gz", trash[0].name));
    assert!(file.is_file());

    // a restore_from naming a missing entry creates nothing and is reported
    let mut bad = db(&adb, Mariadb, "a");
    bad.restore_from = Some(format!("{adb}-20000101T000000000Z"));
    cfg.databases.push(bad);
    assert!(e.apply_db(&cfg).await.is_err());
    assert_eq!(
        ok(&maria_admin(&format!(
            "SELECT COUNT(*) FROM information_schema.schemata WHERE schema_name = '{adb}'"
        ))),
        "0"
    );

    // restore_from the real entry brings the rows back, and the grant
    cfg.databases.last_mut().unwrap().restore_from = Some(trash[0].name.clone());
    cfg.users[0].databases = vec![adb.clone()];
    e.apply_db(&cfg).await.unwrap();
    assert_eq!(
        ok(&mysql(
            &ep,
            &au,
            "pw-a-1",
            Some(&adb),
            "SELECT v FROM t ORDER BY id"
        )),
        "keep me\nme too"
    );

    // everything leaves: both databases are dumped and dropped, logins dropped
    e.apply_db(&DbRoleConfig::default()).await.unwrap();
    assert_eq!(h.trash_list().len(), 3);
    assert_eq!(
        ok(&maria_admin(&format!(
            "SELECT COUNT(*) FROM mysql.user WHERE user LIKE '{t}%'"
        ))),
        "0"
    );
    assert_eq!(
        ok(&maria_admin(&format!(
            "SELECT COUNT(*) FROM mysql.db WHERE user LIKE '{t}%'"
        ))),
        "0"
    );
    e.stop().await;
}

#[tokio::test]
async fn mariadb_operator_objects_are_never_touched() {
    let t = tag();
    let _c = Cleanup(t.clone());
    let ops = format!("{t}_ops");
    ok(&maria_admin(&format!("CREATE DATABASE `{ops}`; CREATE TABLE `{ops}`.keep (id INT); CREATE USER '{t}_opsu'@'%' IDENTIFIED BY 'x'")));
    let dir = tempfile::tempdir().unwrap();
    let mut e = engine(&t, dir.path());
    let mut cfg = two_customers(&t);
    cfg.databases.push(db(&ops, Mariadb, "a"));
    cfg.users
        .push(user(&format!("{t}_opsu"), Mariadb, "y", &[&ops]));
    // injection attempts are refused before any SQL
    cfg.databases
        .push(db(&format!("{t}`; DROP DATABASE mysql; --"), Mariadb, "a"));
    cfg.users
        .push(user(&format!("{t}' OR 1=1"), Mariadb, "z", &[]));
    e.apply_db(&cfg).await.unwrap();
    let p = e.handle().problems();
    assert!(
        p.iter()
            .any(|p| p.contains(&ops) && p.contains("not created by hostplane")),
        "{p:?}"
    );
    assert!(
        p.iter()
            .any(|p| p.contains("_opsu") && p.contains("not created by hostplane")),
        "{p:?}"
    );
    assert_eq!(
        p.iter().filter(|p| p.contains("refused")).count(),
        2,
        "{p:?}"
    );
    assert_ne!(e.handle().health().state, EngineState::Ok);
    e.apply_db(&DbRoleConfig::default()).await.unwrap();
    assert_eq!(
        ok(&maria_admin(&format!(
            "SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = '{ops}'"
        ))),
        "1"
    );
    assert_eq!(
        ok(&maria_admin(&format!(
            "SELECT COUNT(*) FROM mysql.user WHERE user = '{t}_opsu'"
        ))),
        "1"
    );
    e.stop().await;
}

#[tokio::test]
async fn mariadb_quota_stops_writes_and_restores_them() {
    let t = tag();
    let _c = Cleanup(t.clone());
    let dir = tempfile::tempdir().unwrap();
    let mut e = engine(&t, dir.path());
    let h = e.handle();
    let mut cfg = two_customers(&t);
    cfg.quotas = vec![("a".into(), 2)];
    e.apply_db(&cfg).await.unwrap();
    let ep = Endpoint::machine_mariadb();
    let (adb, au) = (format!("{t}_adb"), format!("{t}_au"));
    ok(&mysql(
        &ep,
        &au,
        "pw-a-1",
        Some(&adb),
        "CREATE TABLE t (id INT PRIMARY KEY AUTO_INCREMENT, v TEXT); \
        INSERT INTO t (v) SELECT REPEAT('x', 1000) FROM seq_1_to_3000; \
        ANALYZE TABLE t;",
    ));
    h.refresh().await.unwrap();
    let q = h.quotas();
    assert_eq!(q[0].level, role_db::QuotaLevel::Exceeded, "{q:?}");
    assert!(h
        .report()
        .iter()
        .any(|d| d.name == adb && d.size_bytes.unwrap_or(0) > 2 << 20));
    assert!(
        h.health().detail.contains("quota a: EXCEEDED"),
        "{}",
        h.health().detail
    );
    let wire = h.wire_report();
    assert!(
        wire.databases.iter().any(|d| d.name == adb && d.read_only),
        "{wire:?}"
    );
    assert!(wire
        .quota_notes
        .iter()
        .any(|(c, n)| c == "a" && n.contains("writes stopped")));
    let status = std::fs::read_to_string(dir.path().join("status.json")).unwrap();
    assert!(
        status.contains(&adb) && status.contains("exceeded"),
        "{status}"
    );
    let err = refused(&mysql(
        &ep,
        &au,
        "pw-a-1",
        Some(&adb),
        "INSERT INTO t (v) VALUES ('more')",
    ));
    assert!(err.contains("denied"), "{err}");
    refused(&mysql(
        &ep,
        &au,
        "pw-a-1",
        Some(&adb),
        "UPDATE t SET v = 'y' WHERE id = 1",
    ));
    refused(&mysql(
        &ep,
        &au,
        "pw-a-1",
        Some(&adb),
        "CREATE TABLE t2 (id INT)",
    ));
    assert_eq!(
        ok(&mysql(
            &ep,
            &au,
            "pw-a-1",
            Some(&adb),
            "SELECT COUNT(*) FROM t"
        )),
        "3000"
    );
    ok(&mysql(
        &ep,
        &au,
        "pw-a-1",
        Some(&adb),
        "DELETE FROM t WHERE id = 1",
    ));
    // b is not affected
    ok(&mysql(
        &ep,
        &format!("{t}_bu"),
        "pw-b-1",
        Some(&format!("{t}zadb")),
        "CREATE TABLE t (id INT)",
    ));

    // a larger quota: writes come back at the next measurement
    cfg.quotas = vec![("a".into(), 100)];
    e.apply_db(&cfg).await.unwrap();
    h.refresh().await.unwrap();
    assert_eq!(h.quotas()[0].level, role_db::QuotaLevel::Ok);
    ok(&mysql(
        &ep,
        &au,
        "pw-a-1",
        Some(&adb),
        "INSERT INTO t (v) VALUES ('more'); CREATE TABLE t2 (id INT)",
    ));
    e.stop().await;
}
