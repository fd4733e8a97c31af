//! Shared helpers of the role-db tests: unique names, verifiers made like the
//! controller makes them, the real `mysql` / `psql` clients, and cleanup of every
//! object a test created on the machine's servers (run on drop, so also on failure).

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use agent::supervisor::EngineContext;
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use model::DbEngine;
use proto::agent_v1::{DbConfig, DbUserConfig};
use rand::{Rng, RngCore};
use ring::{digest, hmac, pbkdf2};

/// A random lowercase tag starting with a letter, e.g. `hpt3fa9c1`.
pub fn tag() -> String {
    let n: u32 = rand::thread_rng().gen();
    format!("hpt{:06x}", n & 0xff_ffff)
}

/// MariaDB `mysql_native_password` verifier (as crates/controller/src/secrets.rs).
pub fn mariadb_verifier(password: &str) -> String {
    let inner = digest::digest(&digest::SHA1_FOR_LEGACY_USE_ONLY, password.as_bytes());
    let outer = digest::digest(&digest::SHA1_FOR_LEGACY_USE_ONLY, inner.as_ref());
    let hex: String = outer.as_ref().iter().map(|b| format!("{b:02X}")).collect();
    format!("*{hex}")
}

/// PostgreSQL SCRAM-SHA-256 verifier (as crates/controller/src/secrets.rs).
pub fn postgres_verifier(password: &str) -> String {
    let mut salt = [0u8; 16];
    rand::rngs::OsRng.fill_bytes(&mut salt);
    let iterations = 4096u32;
    let mut salted = [0u8; 32];
    pbkdf2::derive(
        pbkdf2::PBKDF2_HMAC_SHA256,
        std::num::NonZeroU32::new(iterations).unwrap(),
        &salt,
        password.as_bytes(),
        &mut salted,
    );
    let key = hmac::Key::new(hmac::HMAC_SHA256, &salted);
    let client_key = hmac::sign(&key, b"Client Key");
    let stored_key = digest::digest(&digest::SHA256, client_key.as_ref());
    let server_key = hmac::sign(&key, b"Server Key");
    format!(
        "SCRAM-SHA-256${iterations}:{}${}:{}",
        STANDARD.encode(salt),
        STANDARD.encode(stored_key.as_ref()),
        STANDARD.encode(server_key.as_ref())
    )
}

pub fn verifier(engine: DbEngine, password: &str) -> String {
    match engine {
        DbEngine::Mariadb => mariadb_verifier(password),
        DbEngine::Postgres => postgres_verifier(password),
    }
}

pub fn db(name: &str, engine: DbEngine, owner: &str) -> DbConfig {
    DbConfig {
        name: name.into(),
        engine,
        owner: owner.into(),
        restore_from: None,
    }
}

pub fn user(name: &str, engine: DbEngine, password: &str, dbs: &[&str]) -> DbUserConfig {
    DbUserConfig {
        name: name.into(),
        engine,
        password_verifier: verifier(engine, password),
        databases: dbs.iter().map(|s| s.to_string()).collect(),
    }
}

/// An engine context for a test: its own server name (= registry scope), state dir
/// and options.
pub fn ctx(scope: &str, bind: IpAddr, state: &Path, options: &[(&str, &str)]) -> EngineContext {
    let mut opts: BTreeMap<String, String> = options
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    opts.entry("registry_scope".into()).or_insert(scope.into());
    EngineContext {
        server: scope.into(),
        role: "db".into(),
        bind,
        state_dir: state.to_path_buf(),
        identity: None,
        options: opts,
        controllers: Vec::new(),
    }
}

fn need(tool: &str) {
    let ok = Command::new(tool)
        .arg("--version")
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    assert!(
        ok,
        "`{tool}` is required (apt-get install mariadb-client postgresql-client)"
    );
}

/// Where a client connects.
#[derive(Debug, Clone)]
pub struct Endpoint {
    pub host: String,
    pub port: u16,
}

impl Endpoint {
    pub fn machine_mariadb() -> Self {
        Self {
            host: "127.0.0.1".into(),
            port: 3306,
        }
    }
    pub fn machine_postgres() -> Self {
        Self {
            host: "127.0.0.1".into(),
            port: 5432,
        }
    }
}

/// Run SQL with the real `mysql` client as `user`/`password` over TCP.
pub fn mysql(ep: &Endpoint, user: &str, password: &str, db: Option<&str>, sql: &str) -> Output {
    need("mysql");
    let mut c = Command::new("mysql");
    c.args(["--no-defaults", "--protocol=tcp", "-N", "-B"])
        .arg(format!("--host={}", ep.host))
        .arg(format!("--port={}", ep.port))
        .arg(format!("--user={user}"))
        .env("MYSQL_PWD", password)
        .args(["-e", sql]);
    if let Some(d) = db {
        c.arg(d);
    }
    c.output().expect("run mysql")
}

/// Run SQL with the real `psql` client as `user`/`password` over TCP.
pub fn psql(ep: &Endpoint, user: &str, password: &str, db: &str, sql: &str) -> Output {
    need("psql");
    Command::new("psql")
        .args(["-X", "-A", "-t", "-v", "ON_ERROR_STOP=1"])
        .arg(format!(
            "host={} port={} user={user} dbname={db} connect_timeout=10",
            ep.host, ep.port
        ))
        .args(["-c", sql])
        .env("PGPASSWORD", password)
        .output()
        .expect("run psql")
}

pub fn ok(o: &Output) -> String {
    assert!(
        o.status.success(),
        "expected success, got {}: {}",
        o.status,
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).trim().to_string()
}

pub fn refused(o: &Output) -> String {
    assert!(
        !o.status.success(),
        "expected refusal, got success: {}",
        String::from_utf8_lossy(&o.stdout)
    );
    String::from_utf8_lossy(&o.stderr).trim().to_string()
}

/// Admin SQL on the machine's MariaDB (root over 127.0.0.1, no password).
pub fn maria_admin(sql: &str) -> Output {
    mysql(&Endpoint::machine_mariadb(), "root", "", None, sql)
}

/// Admin SQL on the machine's PostgreSQL (trust as postgres on 127.0.0.1).
pub fn pg_admin(sql: &str) -> Output {
    psql(
        &Endpoint::machine_postgres(),
        "postgres",
        "",
        "postgres",
        sql,
    )
}

/// Drops every database and user whose name starts with the tag, and the tag's
/// registry rows, on both machine servers, when dropped.
pub struct Cleanup(pub String);

impl Drop for Cleanup {
    fn drop(&mut self) {
        let t = &self.0;
        let list = maria_admin(&format!(
            "SELECT CONCAT('DROP DATABASE IF EXISTS `', schema_name, '`;') FROM information_schema.schemata WHERE schema_name LIKE '{t}%'; \
             SELECT CONCAT('DROP USER IF EXISTS ''', user, '''@''', host, ''';') FROM mysql.user WHERE user LIKE '{t}%'"
        ));
        let mut sql = String::from_utf8_lossy(&list.stdout).to_string();
        sql.push_str(&format!(
            "DELETE FROM hostplane.objects WHERE scope = '{t}';"
        ));
        let _ = maria_admin(&sql);
        let dbs = pg_admin(&format!(
            "SELECT datname FROM pg_database WHERE datname LIKE '{t}%'"
        ));
        for d in String::from_utf8_lossy(&dbs.stdout)
            .lines()
            .filter(|l| !l.is_empty())
        {
            let _ = pg_admin(&format!("DROP DATABASE IF EXISTS \"{d}\" WITH (FORCE)"));
        }
        let roles = pg_admin(&format!(
            "SELECT rolname FROM pg_roles WHERE rolname LIKE '{t}%'"
        ));
        for r in String::from_utf8_lossy(&roles.stdout)
            .lines()
            .filter(|l| !l.is_empty())
        {
            let _ = pg_admin(&format!(
                "DROP OWNED BY \"{r}\"; DROP ROLE IF EXISTS \"{r}\""
            ));
        }
        let _ = pg_admin(&format!(
            "DELETE FROM hostplane.objects WHERE scope = '{t}'"
        ));
    }
}

/// Poll `f` until it is true (deadline generous: never a timing assertion).
pub async fn until(what: &str, f: impl FnMut() -> bool) {
    until_or(what, f, String::new).await
}

/// [`until`], printing `diag()` when giving up.
pub async fn until_or(what: &str, mut f: impl FnMut() -> bool, diag: impl Fn() -> String) {
    let deadline = Instant::now() + Duration::from_secs(120);
    while !f() {
        assert!(
            Instant::now() < deadline,
            "gave up waiting for {what}: {}",
            diag()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
