//! The agent adapter: `start_engine` / `WebEngine` with an `EngineContext` as the
//! agent builds it, applying desired configs (static + PHP + TLS sites), refusing
//! bad ones while serving the previous plan, and shutting down cleanly.

#![allow(clippy::unwrap_used)] // test helpers outside #[test] functions

mod common;

use std::collections::BTreeMap;

use agent::supervisor::{EngineContext, RoleEngine};
use common::{args, curl, site, TestCa};
use proto::agent_v1::{DnsConfig, EngineState, RoleConfig, WebConfig};
use role_web::WebEngine;

fn ctx(state: &std::path::Path) -> EngineContext {
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

fn publish(state: &std::path::Path, domain: &str, name: &str, body: &str) {
    let dir = state
        .join("engines/web/content")
        .join(domain)
        .join("releases/r1");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join(name), body).unwrap();
    let link = state
        .join("engines/web/content")
        .join(domain)
        .join("current");
    if !link.exists() {
        std::os::unix::fs::symlink("releases/r1", link).unwrap();
    }
}

async fn get(host: &str, url: String, extra: &[&str]) -> common::Got {
    let port = url
        .rsplit(':')
        .next()
        .unwrap()
        .split('/')
        .next()
        .unwrap()
        .to_string();
    let mut a = args(&["--resolve", &format!("{host}:{port}:127.0.0.1")]);
    a.extend(args(extra));
    a.push(url);
    curl(a).await
}

#[tokio::test]
async fn engine_applies_configs_and_keeps_the_previous_on_error() {
    let tmp = tempfile::tempdir().unwrap();
    let ca = TestCa::new("t");
    let cafile = ca.write(tmp.path(), "ca.pem");
    let mut engine = WebEngine::start(&ctx(tmp.path())).unwrap();
    let (http, https) = (engine.http_addr().port(), engine.https_addr().port());
    assert!(engine
        .health()
        .detail
        .contains(&format!("127.0.0.1:{http}")));

    let mut a = site("a.example");
    a.tls = Some(ca.issue(&["a.example"]));
    let mut p = site("p.example");
    p.php = true;
    let cfg = WebConfig {
        sites: vec![a, p].into_iter().map(std::sync::Arc::new).collect(),
        // no files server: the content stays as published (replication is
        // tests/replication.rs)
        files_origin: None,
        peers: Vec::new(),
        acme_challenges: Vec::new(),
    };
    publish(tmp.path(), "a.example", "index.html", "engine A");
    publish(
        tmp.path(),
        "p.example",
        "index.php",
        "<?php echo 'php ', PHP_MAJOR_VERSION;",
    );
    std::fs::create_dir_all(tmp.path().join("engines/web/content/.keep-me")).unwrap();
    std::fs::create_dir_all(tmp.path().join("engines/web/content/Not_A_Host!")).unwrap();
    engine.apply(&RoleConfig::Web(cfg.clone())).await.unwrap();
    let h = engine.health();
    assert_eq!(h.state, EngineState::Ok, "{}", h.detail);
    assert!(
        h.detail.contains("serving 2 sites (1 with PHP)"),
        "{}",
        h.detail
    );

    let g = get("a.example", format!("http://a.example:{http}/"), &[]).await;
    assert_eq!(g.text(), "engine A");
    let g = get(
        "a.example",
        format!("https://a.example:{https}/"),
        &["--http2", "--cacert", cafile.to_str().unwrap()],
    )
    .await;
    assert_eq!((g.status, g.version.as_str()), (200, "2"), "{}", g.stderr);
    let g = get("p.example", format!("http://p.example:{http}/"), &[]).await;
    assert_eq!(g.text(), "php 8", "{g:?}");

    // A config of another role, and a broken one, are refused; A is still served.
    assert!(engine
        .apply(&RoleConfig::Dns(DnsConfig::default()))
        .await
        .is_err());
    // One bad site beside good ones (issue 12): a new site claiming A's host and an
    // update of P to a bad alias are rejected and named; P keeps its old version,
    // the new one stays absent, and a good new site is served.
    let mut bad = cfg.clone();
    std::sync::Arc::make_mut(&mut bad.sites[1]).aliases = vec!["a/b.p.example".into()];
    std::sync::Arc::make_mut(&mut bad.sites[1]).php = false;
    let mut thief = site("b.example");
    thief.aliases = vec!["a.example".into()];
    bad.sites.insert(0, thief.into());
    bad.sites.push(site("c.example").into());
    publish(tmp.path(), "c.example", "index.html", "engine C");
    engine.apply(&RoleConfig::Web(bad)).await.unwrap();
    let objects: Vec<String> = engine.rejected().into_iter().map(|r| r.object).collect();
    assert_eq!(objects, vec!["site b.example", "site p.example"]);
    let g = get("a.example", format!("http://a.example:{http}/"), &[]).await;
    assert_eq!(g.text(), "engine A");
    let g = get("p.example", format!("http://p.example:{http}/"), &[]).await;
    assert_eq!(g.text(), "php 8", "the old version of p.example: {g:?}");
    let g = get("c.example", format!("http://c.example:{http}/"), &[]).await;
    assert_eq!(g.text(), "engine C");
    let g = get("b.example", format!("http://b.example:{http}/"), &[]).await;
    assert_eq!(g.status, 404);

    // Re-applying the good config recovers; dropping PHP stops php-fpm.
    engine.apply(&RoleConfig::Web(cfg.clone())).await.unwrap();
    assert_eq!(engine.health().state, EngineState::Ok);
    assert!(engine.rejected().is_empty());
    let mut no_php = cfg.clone();
    no_php.sites.truncate(1);
    engine.apply(&RoleConfig::Web(no_php)).await.unwrap();
    let g = get("p.example", format!("http://p.example:{http}/"), &[]).await;
    assert_eq!(g.status, 404);
    // The removed site's files are deleted; the kept site's, and anything not named
    // like a site, stay.
    let content = tmp.path().join("engines/web/content");
    assert!(!content.join("p.example").exists());
    assert!(content.join("a.example/current/index.html").exists());
    assert!(content.join(".keep-me").exists() && content.join("Not_A_Host!").exists());

    engine.shutdown().await;
    let g = get("a.example", format!("http://a.example:{http}/"), &[]).await;
    assert_ne!(g.exit, 0, "still listening after shutdown");
}

#[tokio::test]
async fn factory_builds_the_engine() {
    let tmp = tempfile::tempdir().unwrap();
    let mut engine = role_web::start_engine(&ctx(tmp.path())).unwrap();
    assert_eq!(engine.name(), "web");
    assert_eq!(engine.health().state, EngineState::Ok);
    engine
        .apply(&RoleConfig::Web(WebConfig::default()))
        .await
        .unwrap();
    engine.shutdown().await;
}
