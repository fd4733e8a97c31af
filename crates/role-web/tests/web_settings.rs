//! A site's web settings (issue 15) through the engine with real php-fpm: a
//! Laravel-like tree served from `public/` (its `../vendor` required by PHP, its
//! `.env` and `vendor/` never served, a symlink out of `public/` not followed), the
//! site's `php.ini` values in its pool as admin values (visible to `ini_get`, not
//! raised by `ini_set`, an upload over the limit refused by PHP, `memory_limit`
//! enforced), a change of them leaving another site's master and worker alone, a
//! document root that does not exist yet answering 404, a PHP version the server
//! lacks rejecting that site only, and the PHP versions reported.

#![allow(clippy::unwrap_used)] // test helpers outside #[test] functions

mod common;

use std::collections::BTreeMap;
use std::path::Path;

use agent::supervisor::{EngineContext, RoleEngine};
use common::{args, curl, site, Got};
use proto::agent_v1::{RoleConfig, RoleReport, WebConfig, WebSite};
use role_web::WebEngine;

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

/// Write `files` into the site's release `r1` and point `current` at it.
fn publish(state: &Path, domain: &str, files: &[(&str, &str)]) -> std::path::PathBuf {
    let site = state.join("engines/web/content").join(domain);
    let rel = site.join("releases/r1");
    for (name, body) in files {
        let p = rel.join(name);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, body).unwrap();
    }
    let _ = std::os::unix::fs::symlink("releases/r1", site.join("current"));
    rel
}

async fn get(engine: &WebEngine, host: &str, path: &str, extra: &[&str]) -> Got {
    let port = engine.http_addr().port();
    let mut a = args(&["--resolve", &format!("{host}:{port}:127.0.0.1")]);
    a.extend(args(extra));
    a.push(format!("http://{host}:{port}{path}"));
    curl(a).await
}

fn php_site(domain: &str) -> WebSite {
    let mut s = site(domain);
    s.php = true;
    s
}

fn ini(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// The pid PHP printed after `pid=`.
fn pid_of(body: &str) -> String {
    let rest = body.split_once("pid=").map(|x| x.1).unwrap_or_default();
    rest.chars().take_while(char::is_ascii_digit).collect()
}

/// The pid of the php-fpm master whose config is under `marker` and whose child
/// is `worker`.
fn parent_of(worker: &str) -> String {
    let stat = std::fs::read_to_string(format!("/proc/{worker}/stat")).unwrap();
    let (_, rest) = stat.rsplit_once(") ").unwrap();
    rest.split_whitespace().nth(1).unwrap().to_string()
}

#[tokio::test]
async fn docroot_php_settings_and_a_neighbour_left_alone() {
    assert!(
        role_web::fpm::find_binary().is_some(),
        "php-fpm must be installed (apt-get install php-fpm)"
    );
    let tmp = tempfile::tempdir().unwrap();
    let mut engine = WebEngine::start(&ctx(tmp.path())).unwrap();
    let (app, other) = ("app.example", "other.example");
    let rel = publish(
        tmp.path(),
        app,
        &[
            (".env", "APP_KEY=SECRET-KEY\n"),
            ("vendor/x.php", "<?php function x() { return 'vendor-ok'; }"),
            (
                "public/index.php",
                "<?php require __DIR__ . '/../vendor/x.php'; \
                 echo 'x=', x(), \"\\n\", 'root=', $_SERVER['DOCUMENT_ROOT'], \"\\n\", \
                 'script=', $_SERVER['SCRIPT_FILENAME'], \"\\n\";",
            ),
            (
                "public/ini.php",
                "<?php ini_set('memory_limit', '1024M'); ini_set('upload_max_filesize', '1G'); \
                 foreach (['upload_max_filesize', 'post_max_size', 'memory_limit', \
                 'max_execution_time', 'date.timezone', 'display_errors'] as $k) \
                 { echo $k, '=', ini_get($k), \"\\n\"; }",
            ),
            (
                "public/upload.php",
                "<?php echo 'error=', $_FILES['f']['error'] ?? 'none', \"\\n\";",
            ),
            (
                "public/mem.php",
                "<?php $a = str_repeat('x', 48 * 1024 * 1024); echo 'allocated';",
            ),
            ("public/style.css", "body{}"),
        ],
    );
    std::os::unix::fs::symlink("../vendor", rel.join("public/v")).unwrap();
    publish(
        tmp.path(),
        other,
        &[("pid.php", "<?php echo 'pid=', getmypid(), \"\\n\";")],
    );
    let mut a = php_site(app);
    a.docroot = Some("public".into());
    a.php_ini = ini(&[
        ("upload_max_filesize", "1M"),
        ("post_max_size", "4M"),
        ("memory_limit", "32M"),
        ("date.timezone", "Europe/Berlin"),
    ]);
    let mut cfg = WebConfig {
        sites: vec![a, php_site(other)]
            .into_iter()
            .map(std::sync::Arc::new)
            .collect(),
        files_origin: None,
        peers: Vec::new(),
        acme_challenges: Vec::new(),
    };
    engine.apply(&RoleConfig::Web(cfg.clone())).await.unwrap();
    assert!(engine.rejected().is_empty(), "{:?}", engine.rejected());

    // The front controller requires ../vendor (open_basedir is the whole tree).
    let g = get(&engine, app, "/", &[]).await;
    assert_eq!(g.status, 200, "{}", g.text());
    let body = g.text();
    assert!(body.contains("x=vendor-ok"), "{body}");
    assert!(
        body.contains("/releases/r1/public\n"),
        "DOCUMENT_ROOT: {body}"
    );
    assert!(body.contains("/releases/r1/public/index.php"), "{body}");
    assert_eq!(get(&engine, app, "/style.css", &[]).await.text(), "body{}");
    // Nothing outside public/ is served: a missing path goes to the front
    // controller, never to the file; `..` and a symlink out are refused.
    for path in [
        "/.env",
        "/vendor/x.php",
        "/../.env",
        "/%2e%2e/.env",
        "/v/x.php",
    ] {
        let g = get(&engine, app, path, &["--path-as-is"]).await;
        let text = g.text();
        assert!(
            !text.contains("SECRET") && !text.contains("function x"),
            "{path}: {text}"
        );
        assert!(
            g.status == 404 || text.contains("x=vendor-ok"),
            "{path}: {} {text}",
            g.status
        );
    }
    assert_eq!(get(&engine, app, "/v/x.php", &[]).await.status, 404);

    // php.ini values: set as admin values, which ini_set cannot raise.
    let body = get(&engine, app, "/ini.php", &[]).await.text();
    for line in [
        "upload_max_filesize=1M",
        "post_max_size=4M",
        "memory_limit=32M",
        "date.timezone=Europe/Berlin",
    ] {
        assert!(body.contains(line), "{line}: {body}");
    }
    // An upload over upload_max_filesize is refused by PHP (UPLOAD_ERR_INI_SIZE);
    // one under it arrives.
    let big = tmp.path().join("big.bin");
    std::fs::write(&big, vec![b'z'; 2 << 20]).unwrap();
    let small = tmp.path().join("small.bin");
    std::fs::write(&small, vec![b'z'; 1000]).unwrap();
    let form = |p: &Path| format!("f=@{}", p.display());
    let g = get(&engine, app, "/upload.php", &["-F", &form(&big)]).await;
    assert!(g.text().contains("error=1"), "{}", g.text());
    let g = get(&engine, app, "/upload.php", &["-F", &form(&small)]).await;
    assert!(g.text().contains("error=0"), "{}", g.text());
    // memory_limit is enforced: 48 MiB do not fit in 32M.
    let g = get(&engine, app, "/mem.php", &[]).await;
    assert!(!g.text().contains("allocated"), "{} {}", g.status, g.text());
    assert_eq!(g.status, 500);

    // The neighbour's worker and master, before and after app's settings change.
    let before = pid_of(&get(&engine, other, "/pid.php", &[]).await.text());
    let master = parent_of(&before);
    std::sync::Arc::make_mut(&mut cfg.sites[0])
        .php_ini
        .insert("memory_limit".into(), "64M".into());
    engine.apply(&RoleConfig::Web(cfg.clone())).await.unwrap();
    let body = get(&engine, app, "/ini.php", &[]).await.text();
    assert!(body.contains("memory_limit=64M"), "{body}");
    assert_eq!(get(&engine, app, "/mem.php", &[]).await.text(), "allocated");
    let after = pid_of(&get(&engine, other, "/pid.php", &[]).await.text());
    assert_eq!(before, after, "the other site's worker was not restarted");
    assert_eq!(parent_of(&after), master, "nor its master");

    // A document root that does not exist yet: 404, never the tree above it.
    std::sync::Arc::make_mut(&mut cfg.sites[0]).docroot = Some("web".into());
    engine.apply(&RoleConfig::Web(cfg.clone())).await.unwrap();
    let g = get(&engine, app, "/", &[]).await;
    assert_eq!(g.status, 404);
    assert!(!g.text().contains("vendor-ok"));
    assert_eq!(get(&engine, app, "/.env", &[]).await.status, 404);
    std::fs::create_dir_all(rel.join("web")).unwrap();
    std::fs::write(rel.join("web/index.html"), "web root").unwrap();
    assert_eq!(get(&engine, app, "/", &[]).await.text(), "web root");
    // Back to the whole tree.
    std::sync::Arc::make_mut(&mut cfg.sites[0]).docroot = None;
    engine.apply(&RoleConfig::Web(cfg.clone())).await.unwrap();
    assert_eq!(
        get(&engine, app, "/web/index.html", &[]).await.text(),
        "web root"
    );

    // A version this server lacks: that site is rejected (keeps what it had),
    // the other is served.
    std::sync::Arc::make_mut(&mut cfg.sites[0]).php_version = Some("5.6".into());
    engine.apply(&RoleConfig::Web(cfg.clone())).await.unwrap();
    let rejected = engine.rejected();
    assert_eq!(rejected.len(), 1, "{rejected:?}");
    assert_eq!(rejected[0].object, "site app.example");
    assert!(
        rejected[0].reason.contains("PHP 5.6 is not installed"),
        "{rejected:?}"
    );
    assert!(
        rejected[0].reason.contains("8.2"),
        "names what is: {rejected:?}"
    );
    assert_eq!(
        get(&engine, app, "/web/index.html", &[]).await.text(),
        "web root"
    );
    assert_eq!(
        pid_of(&get(&engine, other, "/pid.php", &[]).await.text()),
        after
    );

    // The PHP versions of this server, as the heartbeat reports them.
    let Some(RoleReport::Web(report)) = engine.report() else {
        panic!("no web report");
    };
    let v82 = report.php.iter().find(|p| p.version == "8.2").expect("8.2");
    assert!(v82.default, "{report:?}");
    assert!(
        v82.full.as_deref().is_some_and(|f| f.starts_with("8.2.")),
        "{report:?}"
    );
    // And a site asking for it by name runs on it.
    std::sync::Arc::make_mut(&mut cfg.sites[0]).php_version = Some("8.2".into());
    engine.apply(&RoleConfig::Web(cfg.clone())).await.unwrap();
    assert!(engine.rejected().is_empty(), "{:?}", engine.rejected());
    let body = get(&engine, app, "/public/ini.php", &[]).await.text();
    assert!(body.contains("memory_limit=64M"), "{body}");
    engine.shutdown().await;
}
