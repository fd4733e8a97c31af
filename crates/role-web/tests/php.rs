//! PHP through a real php-fpm that the engine's [`FpmManager`] runs: query strings,
//! form POST, multipart upload stored by PHP, pretty URLs through `index.php`,
//! `PATH_INFO`, pool confinement (own user, `open_basedir`), HTTP/2 POST, and a 502
//! with an error-log line when php-fpm is gone.

#![allow(clippy::unwrap_used)] // test helpers outside #[test] functions

mod common;

use common::{args, curl, site, Server, TestCa};
use proto::agent_v1::WebConfig;
use role_web::fpm::{find_binary, FpmManager};

const INDEX: &str = r#"<?php
header('Content-Type: text/plain');
header('X-Script: index');
echo "route=", $_SERVER['REQUEST_URI'], "\n";
echo "script=", $_SERVER['SCRIPT_NAME'], "\n";
echo "path_info=", $_SERVER['PATH_INFO'] ?? '', "\n";
echo "method=", $_SERVER['REQUEST_METHOD'], "\n";
echo "q=", $_GET['q'] ?? '', "\n";
echo "name=", $_POST['name'] ?? '', "\n";
echo "https=", $_SERVER['HTTPS'] ?? 'off', "\n";
echo "host=", $_SERVER['HTTP_HOST'] ?? '', "\n";
if (isset($_FILES['file'])) {
    $f = $_FILES['file'];
    $dest = sys_get_temp_dir() . '/stored-' . basename($f['name']);
    if ($f['error'] === UPLOAD_ERR_OK && move_uploaded_file($f['tmp_name'], $dest)) {
        echo "stored=", $dest, " size=", filesize($dest), " sha1=", sha1_file($dest), "\n";
    } else {
        echo "upload-error=", $f['error'], "\n";
    }
}
"#;

const INFO: &str = r#"<?php
header('Content-Type: text/plain');
echo "user=", posix_getpwuid(posix_geteuid())['name'], "\n";
echo "basedir=", ini_get('open_basedir'), "\n";
echo "passwd=", @file_get_contents('/etc/passwd') === false ? 'blocked' : 'READABLE', "\n";
echo "other=", @file_get_contents($_GET['f'] ?? '/nonexistent') === false ? 'blocked' : 'READABLE', "\n";
echo "exec=", function_exists('exec') ? 'on' : 'off', "\n";
"#;

const REDIRECT: &str = "<?php header('Location: /elsewhere'); echo 'moved';";
const TEAPOT: &str = "<?php http_response_code(418); echo 'teapot';";

fn fpm_binary() -> std::path::PathBuf {
    find_binary().expect("php-fpm must be installed (apt-get install php-fpm)")
}

struct PhpServer {
    s: Server,
    fpm: FpmManager,
    domain: &'static str,
    cafile: std::path::PathBuf,
}

async fn php_server(domain: &'static str) -> PhpServer {
    let ca = TestCa::new("t");
    let mut shop = site(domain);
    shop.php = true;
    shop.tls = Some(ca.issue(&[domain]));
    let cfg = WebConfig {
        sites: vec![shop, site("static.example")]
            .into_iter()
            .map(std::sync::Arc::new)
            .collect(),
        files_origin: None,
        peers: Vec::new(),
        acme_challenges: Vec::new(),
    };
    let s = Server::start(&cfg).await;
    s.publish(
        domain,
        "r1",
        &[
            ("index.php", INDEX.as_bytes()),
            ("info.php", INFO.as_bytes()),
            ("redirect.php", REDIRECT.as_bytes()),
            ("teapot.php", TEAPOT.as_bytes()),
            ("style.css", b"p{}"),
        ],
    );
    s.publish(
        "static.example",
        "r1",
        &[("secret.txt", b"other site's file")],
    );
    let plan = common::render_all(&cfg, &s.layout, &role_web::Plan::default());
    let mut fpm = FpmManager::new(s.layout.php_dir.clone(), Some(fpm_binary()));
    fpm.apply(&plan.php_pools()).await.unwrap();
    let cafile = ca.write(s.tmp.path(), "ca.pem");
    PhpServer {
        s,
        fpm,
        domain,
        cafile,
    }
}

impl PhpServer {
    async fn get(&self, path: &str, extra: &[&str]) -> common::Got {
        let mut a = self.s.resolve(self.domain);
        a.extend(args(extra));
        a.push(self.s.http_url(self.domain, path));
        curl(a).await
    }
}

fn field(text: &str, key: &str) -> String {
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("{key}=")))
        .unwrap_or_else(|| panic!("no {key} in {text}"))
        .to_string()
}

#[tokio::test]
async fn php_get_post_routing_and_status() {
    let p = php_server("shop.example").await;
    let g = p.get("/index.php?q=hello%20world", &[]).await;
    assert_eq!(g.status, 200, "{g:?}");
    assert_eq!(g.header("x-script").as_deref(), Some("index"));
    let t = g.text();
    assert_eq!(field(&t, "q"), "hello world");
    assert_eq!(field(&t, "method"), "GET");
    assert_eq!(field(&t, "host"), format!("shop.example:{}", p.s.http));
    // Pretty URL: not a file, so index.php runs with the original REQUEST_URI.
    let t = p.get("/blog/2026/hello-world/?q=x", &[]).await.text();
    assert_eq!(field(&t, "route"), "/blog/2026/hello-world/?q=x");
    assert_eq!(field(&t, "script"), "/index.php");
    // The directory index of a PHP site is index.php.
    assert_eq!(field(&p.get("/", &[]).await.text(), "script"), "/index.php");
    // PATH_INFO.
    let t = p.get("/index.php/foo/bar", &[]).await.text();
    assert_eq!(field(&t, "path_info"), "/foo/bar");
    assert_eq!(field(&t, "script"), "/index.php");
    // A missing .php is a 404, not the front controller.
    assert_eq!(p.get("/missing.php", &[]).await.status, 404);
    // Static files of a PHP site are served directly.
    let g = p.get("/style.css", &[]).await;
    assert_eq!((g.status, g.text().as_str()), (200, "p{}"));
    // Form POST.
    let t = p.get("/index.php", &["-d", "name=alice&x=1"]).await.text();
    assert_eq!(field(&t, "method"), "POST");
    assert_eq!(field(&t, "name"), "alice");
    // Chunked request body (length unknown up front).
    let t = p
        .get(
            "/index.php",
            &["-H", "Transfer-Encoding: chunked", "-d", "name=bob"],
        )
        .await
        .text();
    assert_eq!(field(&t, "name"), "bob");
    // Status and Location from PHP.
    let g = p.get("/redirect.php", &[]).await;
    assert_eq!(g.status, 302);
    assert_eq!(g.header("location").as_deref(), Some("/elsewhere"));
    assert_eq!(p.get("/teapot.php", &[]).await.status, 418);
    // Access log records PHP requests too.
    p.s.log_contains(
        "shop.example.access.log",
        "\"GET /teapot.php HTTP/1.1\" 418 6",
    )
    .await;
}

#[tokio::test]
async fn php_file_upload_is_stored_by_php() {
    let p = php_server("upload.example").await;
    let data: Vec<u8> = (0..3_000_000u32).map(|i| (i * 7 % 256) as u8).collect();
    let src = p.s.tmp.path().join("photo.bin");
    std::fs::write(&src, &data).unwrap();
    let form = format!("file=@{}", src.display());
    let g = p.get("/upload", &["-F", &form, "-F", "name=carol"]).await;
    assert_eq!(g.status, 200, "{g:?}");
    let t = g.text();
    assert_eq!(field(&t, "name"), "carol");
    let stored = field(&t, "stored");
    let path = stored.split_whitespace().next().unwrap();
    assert!(stored.contains(&format!("size={}", data.len())), "{t}");
    assert!(
        path.starts_with(p.s.layout.php_dir.to_str().unwrap()),
        "{path}"
    );
    assert_eq!(std::fs::read(path).unwrap(), data);
    // HTTP/2 over TLS, multipart too.
    let mut a = p.s.resolve(p.domain);
    a.extend(args(&[
        "--http2",
        "--cacert",
        p.cafile.to_str().unwrap(),
        "-F",
        &form,
    ]));
    a.push(p.s.https_url(p.domain, "/index.php?q=h2"));
    let g = curl(a).await;
    assert_eq!((g.status, g.version.as_str()), (200, "2"), "{}", g.stderr);
    let t = g.text();
    assert_eq!(field(&t, "https"), "on");
    assert_eq!(field(&t, "q"), "h2");
    assert!(field(&t, "stored").contains(&format!("size={}", data.len())));
}

#[tokio::test]
async fn php_pool_is_confined_to_its_site() {
    let p = php_server("confined.example").await;
    let other =
        p.s.layout
            .content_root
            .join("static.example/current/secret.txt");
    let g = p
        .get(&format!("/info.php?f={}", other.display()), &[])
        .await;
    assert_eq!(g.status, 200, "{g:?}");
    let t = g.text();
    assert_eq!(field(&t, "passwd"), "blocked");
    assert_eq!(field(&t, "other"), "blocked");
    assert_eq!(field(&t, "exec"), "off");
    let site_dir = p.s.layout.content_root.join("confined.example");
    assert!(field(&t, "basedir").starts_with(&format!("{}/:", site_dir.display())));
    if rustix::process::geteuid().is_root() {
        assert_eq!(field(&t, "user"), "hp-confined-example");
    }
}

#[tokio::test]
async fn php_fpm_down_is_a_502_with_a_log_line() {
    let mut p = php_server("down.example").await;
    assert_eq!(p.get("/index.php", &[]).await.status, 200);
    p.fpm.stop().await;
    let g = p.get("/index.php", &[]).await;
    assert_eq!(g.status, 502);
    p.s.log_contains("error.log", "down.example [hp-down-example]: FastCGI to")
        .await;
    // Static files keep working.
    assert_eq!(p.get("/style.css", &[]).await.status, 200);
}
