//! The web engine against the real `curl`: virtual hosts, HTTP/1.1 and HTTP/2 over
//! TLS with SNI, unknown hosts, static-file semantics, compression, path escapes,
//! redirects, hot swaps of plan, content and certificates, access logs.

#![allow(clippy::unwrap_used)] // test helpers outside #[test] functions

mod common;

use common::{args, curl, site, Server, TestCa};
use proto::agent_v1::WebConfig;

fn two_sites(ca: &TestCa) -> WebConfig {
    let mut a = site("a.example");
    a.aliases = vec!["www.a.example".into()];
    a.tls = Some(ca.issue(&["a.example", "www.a.example"]));
    let mut b = site("b.example");
    b.tls = Some(ca.issue(&["b.example"]));
    WebConfig {
        sites: vec![a, b].into_iter().map(std::sync::Arc::new).collect(),
        files_origin: None,
        peers: Vec::new(),
        acme_challenges: Vec::new(),
    }
}

async fn two_site_server(ca: &TestCa) -> Server {
    let s = Server::start(&two_sites(ca)).await;
    s.publish(
        "a.example",
        "r1",
        &[
            ("index.html", b"<h1>site A</h1>\n"),
            ("hello.txt", b"hello from A\n"),
        ],
    );
    s.publish("b.example", "r1", &[("index.html", b"<h1>site B</h1>\n")]);
    s
}

#[tokio::test]
async fn http1_virtual_hosts_aliases_and_unknown_host() {
    let ca = TestCa::new("t");
    let s = two_site_server(&ca).await;
    for (host, want) in [
        ("a.example", "site A"),
        ("www.a.example", "site A"),
        ("b.example", "site B"),
    ] {
        let mut a = s.resolve(host);
        a.extend(args(&["--http1.1", &s.http_url(host, "/")]));
        let g = curl(a).await;
        assert_eq!(g.status, 200, "{host}: {g:?}");
        assert_eq!(g.version, "1.1");
        assert!(g.text().contains(want), "{host}: {}", g.text());
        assert_eq!(g.header("content-type").as_deref(), Some("text/html"));
    }
    // Unknown host: a plain 404, never a site's content.
    let mut a = s.resolve("c.example");
    a.push(s.http_url("c.example", "/"));
    let g = curl(a).await;
    assert_eq!(g.status, 404);
    assert_eq!(g.text(), "not found\n");
    // By IP with no matching Host either.
    let g = curl(vec![format!("http://127.0.0.1:{}/", s.http)]).await;
    assert_eq!(g.status, 404);
    assert!(!g.text().contains("site"));
}

#[tokio::test]
async fn http2_over_tls_picks_each_sites_certificate_by_sni() {
    let ca = TestCa::new("t");
    let s = two_site_server(&ca).await;
    let cafile = ca.write(s.tmp.path(), "ca.pem");
    for (host, want) in [
        ("a.example", "site A"),
        ("b.example", "site B"),
        ("www.a.example", "site A"),
    ] {
        let mut a = s.resolve(host);
        a.extend(args(&["--http2", "--cacert", cafile.to_str().unwrap()]));
        a.push(s.https_url(host, "/"));
        let g = curl(a).await;
        assert_eq!(g.exit, 0, "{host}: {}", g.stderr);
        assert_eq!(g.status, 200);
        assert_eq!(g.version, "2", "{host} negotiated {}", g.version);
        assert!(g.text().contains(want));
    }
    // HTTP/1.1 over TLS (ALPN http/1.1) works too.
    let mut a = s.resolve("b.example");
    a.extend(args(&["--http1.1", "--cacert", cafile.to_str().unwrap()]));
    a.push(s.https_url("b.example", "/"));
    let g = curl(a).await;
    assert_eq!((g.status, g.version.as_str()), (200, "1.1"), "{}", g.stderr);
    // Unknown SNI: the handshake is refused (no default certificate).
    let mut a = s.resolve("c.example");
    a.extend(args(&["-k", &s.https_url("c.example", "/")]));
    let g = curl(a).await;
    assert_ne!(g.exit, 0);
    assert_eq!(g.status, 0);
    // SNI of one site, Host of another: 421, not the other site's content.
    let mut a = s.resolve("a.example");
    a.extend(args(&[
        "--cacert",
        cafile.to_str().unwrap(),
        "-H",
        "Host: b.example",
    ]));
    a.push(s.https_url("a.example", "/"));
    let g = curl(a).await;
    assert_eq!(g.status, 421, "{}", g.stderr);
    assert!(!g.text().contains("site B"));
}

#[tokio::test]
async fn certificates_and_plans_change_without_restart() {
    let ca = TestCa::new("t");
    let s = two_site_server(&ca).await;
    let ca2 = TestCa::new("second");
    let ca2file = ca2.write(s.tmp.path(), "ca2.pem");
    let fetch = |host: &'static str| {
        let mut a = s.resolve(host);
        a.extend(args(&["--cacert", ca2file.to_str().unwrap()]));
        a.push(s.https_url(host, "/"));
        curl(a)
    };
    assert_ne!(fetch("a.example").await.exit, 0, "CA2 must not verify yet");
    let mut cfg = two_sites(&ca);
    std::sync::Arc::make_mut(&mut cfg.sites[0]).tls =
        Some(ca2.issue(&["a.example", "www.a.example"]));
    let mut c = site("c.example");
    c.tls = Some(ca2.issue(&["c.example"]));
    cfg.sites.push(c.into());
    s.publish("c.example", "r1", &[("index.html", b"site C")]);
    s.apply(&cfg);
    let g = fetch("a.example").await;
    assert_eq!((g.exit, g.status), (0, 200), "{}", g.stderr);
    let g = fetch("c.example").await;
    assert_eq!(g.text(), "site C");
    // Deactivating a site (single placement moved away): unknown from now on.
    std::sync::Arc::make_mut(&mut cfg.sites[2]).active = false;
    s.apply(&cfg);
    let mut a = s.resolve("c.example");
    a.push(s.http_url("c.example", "/"));
    assert_eq!(curl(a).await.status, 404);
}

#[tokio::test]
async fn content_swap_takes_effect_at_once() {
    let ca = TestCa::new("t");
    let s = two_site_server(&ca).await;
    let url = s.http_url("b.example", "/");
    let mut a = s.resolve("b.example");
    a.push(url);
    assert!(curl(a.clone()).await.text().contains("site B"));
    s.publish("b.example", "r2", &[("index.html", b"site B, release 2")]);
    assert_eq!(curl(a).await.text(), "site B, release 2");
}

/// Small files are answered from the 1 ms hot-file cache; an edit in place or a
/// swap must still show a few milliseconds later, however hot the file is.
#[tokio::test]
async fn hot_small_files_follow_edits_and_swaps() {
    let ca = TestCa::new("t");
    let s = two_site_server(&ca).await;
    let dir = s.publish("b.example", "r5", &[("hot.txt", b"version one")]);
    let get = || {
        let mut a = s.resolve("b.example");
        a.push(s.http_url("b.example", "/hot.txt"));
        curl(a)
    };
    for _ in 0..3 {
        assert_eq!(get().await.text(), "version one");
    }
    std::fs::write(dir.join("hot.txt"), b"version two, edited in place").unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    assert_eq!(get().await.text(), "version two, edited in place");
    s.publish("b.example", "r6", &[("hot.txt", b"version three")]);
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    assert_eq!(get().await.text(), "version three");
    // Another site's file of the same path is never answered from this one's entry.
    let mut a = s.resolve("a.example");
    a.push(s.http_url("a.example", "/hot.txt"));
    assert_eq!(curl(a).await.status, 404);
}

#[tokio::test]
async fn ranges_conditional_get_and_head() {
    let ca = TestCa::new("t");
    let s = two_site_server(&ca).await;
    let data: Vec<u8> = (0..2_000_000u32).map(|i| (i % 251) as u8).collect();
    let dir = s.publish(
        "a.example",
        "r1",
        &[("big.bin", &data), ("small.txt", b"0123456789abcdef")],
    );
    assert!(dir.join("big.bin").exists());
    let get = |path: &str, extra: &[&str]| {
        let mut a = s.resolve("a.example");
        a.extend(args(extra));
        a.push(s.http_url("a.example", path));
        curl(a)
    };
    let g = get("/small.txt", &["-H", "Range: bytes=2-5"]).await;
    assert_eq!(g.status, 206);
    assert_eq!(g.text(), "2345");
    assert_eq!(g.header("content-range").as_deref(), Some("bytes 2-5/16"));
    let g = get("/small.txt", &["-H", "Range: bytes=-3"]).await;
    assert_eq!((g.status, g.text().as_str()), (206, "def"));
    let g = get("/small.txt", &["-H", "Range: bytes=100-"]).await;
    assert_eq!(g.status, 416);
    assert_eq!(g.header("content-range").as_deref(), Some("bytes */16"));
    // A large (streamed, uncached) file: whole and a range in the middle.
    let g = get("/big.bin", &[]).await;
    assert_eq!(g.status, 200);
    assert_eq!(g.body, data);
    assert_eq!(
        g.header("content-type").as_deref(),
        Some("application/octet-stream")
    );
    let g = get("/big.bin", &["-H", "Range: bytes=1000000-1000099"]).await;
    assert_eq!(g.status, 206);
    assert_eq!(g.body, &data[1_000_000..1_000_100]);
    // Conditional GET.
    let g = get("/small.txt", &[]).await;
    let etag = g.header("etag").unwrap();
    let lm = g.header("last-modified").unwrap();
    assert_eq!(g.header("accept-ranges").as_deref(), Some("bytes"));
    let g = get("/small.txt", &["-H", &format!("If-None-Match: {etag}")]).await;
    assert_eq!(g.status, 304);
    assert!(g.body.is_empty());
    let g = get("/small.txt", &["-H", &format!("If-Modified-Since: {lm}")]).await;
    assert_eq!(g.status, 304);
    let g = get("/small.txt", &["-H", "If-None-Match: \"other\""]).await;
    assert_eq!(g.status, 200);
    let g = get(
        "/small.txt",
        &["-H", "If-Modified-Since: Thu, 01 Jan 1970 00:00:00 GMT"],
    )
    .await;
    assert_eq!(g.status, 200);
    // If-Range with a stale validator sends the whole file.
    let g = get(
        "/small.txt",
        &["-H", "Range: bytes=0-1", "-H", "If-Range: \"stale\""],
    )
    .await;
    assert_eq!((g.status, g.body.len()), (200, 16));
    // HEAD: headers, no body.
    let g = get("/small.txt", &["-I"]).await;
    assert_eq!(g.status, 200);
    assert_eq!(g.header("content-length").as_deref(), Some("16"));
    // (with -I curl writes the headers where the body would go)
    assert!(!g.text().contains("0123"), "{}", g.text());
    // Directory without slash → 301; POST on a static file → 405.
    std::fs::create_dir_all(dir.join("docs")).unwrap();
    std::fs::write(dir.join("docs/index.htm"), "docs").unwrap();
    let g = get("/docs?x=1", &[]).await;
    assert_eq!(g.status, 301);
    assert_eq!(g.header("location").as_deref(), Some("/docs/?x=1"));
    assert_eq!(get("/docs/", &[]).await.text(), "docs");
    let g = get("/small.txt", &["-X", "POST", "-d", "x=1"]).await;
    assert_eq!(g.status, 405);
}

#[tokio::test]
async fn text_is_compressed_when_accepted() {
    let ca = TestCa::new("t");
    let s = two_site_server(&ca).await;
    let css = "body { color: red; margin: 0 auto; }\n".repeat(200);
    let png = vec![0x89u8; 5000];
    s.publish(
        "a.example",
        "r1",
        &[("style.css", css.as_bytes()), ("img.png", &png)],
    );
    let get = |path: &str, extra: &[&str]| {
        let mut a = s.resolve("a.example");
        a.extend(args(extra));
        a.push(s.http_url("a.example", path));
        curl(a)
    };
    let g = get("/style.css", &["--compressed"]).await;
    assert_eq!(g.status, 200);
    assert_eq!(g.header("content-encoding").as_deref(), Some("br"));
    assert_eq!(g.header("vary").as_deref(), Some("Accept-Encoding"));
    assert_eq!(g.text(), css);
    let g = get(
        "/style.css",
        &["--compressed", "-H", "Accept-Encoding: gzip"],
    )
    .await;
    assert_eq!(g.header("content-encoding").as_deref(), Some("gzip"));
    assert_eq!(g.text(), css);
    let clen: usize = g.header("content-length").unwrap().parse().unwrap();
    assert!(clen < css.len() / 5, "{clen}");
    // Encoded variants have their own ETag, and 304 works with it.
    let etag = g.header("etag").unwrap();
    assert!(etag.ends_with("-gzip\""), "{etag}");
    let g = get(
        "/style.css",
        &[
            "-H",
            "Accept-Encoding: gzip",
            "-H",
            &format!("If-None-Match: {etag}"),
        ],
    )
    .await;
    assert_eq!(g.status, 304);
    // Not accepted, or not text: identity.
    let g = get("/style.css", &[]).await;
    assert_eq!(g.header("content-encoding"), None);
    assert_eq!(g.text(), css);
    let g = get("/img.png", &["--compressed"]).await;
    assert_eq!(g.header("content-encoding"), None);
    assert_eq!(g.body, png);
}

#[tokio::test]
async fn path_escapes_and_dotfiles_are_not_served() {
    let ca = TestCa::new("t");
    let s = two_site_server(&ca).await;
    let dir = s.publish(
        "a.example",
        "r1",
        &[
            ("index.html", b"A"),
            ("sub/page.txt", b"page"),
            (".env", b"SECRET=1"),
            (".git/config", b"[core]"),
        ],
    );
    std::os::unix::fs::symlink("/etc/passwd", dir.join("passwd")).unwrap();
    std::os::unix::fs::symlink("/etc", dir.join("etc")).unwrap();
    let other = s.layout.content_root.join("b.example/current/index.html");
    std::os::unix::fs::symlink(&other, dir.join("other-abs.html")).unwrap();
    std::os::unix::fs::symlink(
        "../../../b.example/current/index.html",
        dir.join("other-rel.html"),
    )
    .unwrap();
    std::os::unix::fs::symlink("sub/page.txt", dir.join("inside.txt")).unwrap();
    let get = |path: &str| {
        let mut a = s.resolve("a.example");
        a.extend(args(&["--path-as-is"]));
        a.push(s.http_url("a.example", path));
        curl(a)
    };
    for bad in [
        "/../../../../etc/passwd",
        "/sub/../../b.example/current/index.html",
        "/%2e%2e/%2e%2e/%2e%2e/etc/passwd",
        "/sub/%2E%2E%2F%2E%2E%2Fb.example/current/index.html",
        "/passwd",
        "/etc/passwd",
        "/other-abs.html",
        "/other-rel.html",
        "/.env",
        "/.git/config",
        "/%2eenv",
        "/sub/..%2f.env",
    ] {
        let g = get(bad).await;
        assert!(
            g.status == 404 || g.status == 403 || g.status == 400,
            "{bad}: {}",
            g.status
        );
        let body = g.text();
        assert!(
            !body.contains("root:") && !body.contains("site B") && !body.contains("SECRET"),
            "{bad} leaked: {body}"
        );
    }
    // A symlink that stays inside the site is fine.
    assert_eq!(get("/inside.txt").await.text(), "page");
    s.log_contains("error.log", "refused a path leaving the site root")
        .await;
}

#[tokio::test]
async fn https_redirect_and_access_log() {
    let ca = TestCa::new("t");
    let mut cfg = two_sites(&ca);
    std::sync::Arc::make_mut(&mut cfg.sites[1]).https_redirect = true;
    // (on two dedicated server threads, as the agent's engine runs)
    let s = Server::start_with(&cfg, |o| o.threads = 2).await;
    s.publish("b.example", "r1", &[("index.html", b"B")]);
    s.publish("a.example", "r1", &[("hello.txt", b"hello from A\n")]);
    let mut a = s.resolve("b.example");
    a.push(s.http_url("b.example", "/x/y?z=1"));
    let g = curl(a).await;
    assert_eq!(g.status, 301);
    assert_eq!(
        g.header("location"),
        Some(format!("https://b.example:{}/x/y?z=1", s.https))
    );
    // Following it over TLS lands on the site.
    let cafile = ca.write(s.tmp.path(), "ca.pem");
    let mut a = s.resolve("b.example");
    a.extend(args(&["-L", "--cacert", cafile.to_str().unwrap()]));
    a.push(s.http_url("b.example", "/"));
    let g = curl(a).await;
    assert_eq!((g.status, g.text().as_str()), (200, "B"), "{}", g.stderr);
    // The access log of site A records requests in combined format.
    let mut a = s.resolve("a.example");
    a.extend(args(&["-A", "test-agent/1", "-e", "http://ref.example/"]));
    a.push(s.http_url("a.example", "/hello.txt"));
    assert_eq!(curl(a).await.status, 200);
    let log = s
        .log_contains("a.example.access.log", "\"GET /hello.txt HTTP/1.1\" 200 13")
        .await;
    assert!(
        log.contains("\"http://ref.example/\" \"test-agent/1\"")
            && log.starts_with("127.0.0.1 - - ["),
        "{log}"
    );
    s.stop().await;
}

/// HSTS (issue 15): sent on HTTPS answers of a site whose config says so (the
/// controller sets it only with a trusted certificate), never over plain HTTP,
/// never for a site without it; the HTTP→HTTPS redirect is unchanged.
#[tokio::test]
async fn hsts_only_over_https_and_only_when_on() {
    let ca = TestCa::new("t");
    let mut cfg = two_sites(&ca);
    std::sync::Arc::make_mut(&mut cfg.sites[0]).hsts = true;
    let s = Server::start(&cfg).await;
    s.publish("a.example", "r1", &[("i.txt", b"A")]);
    s.publish("b.example", "r1", &[("i.txt", b"B")]);
    let cafile = ca.write(s.tmp.path(), "ca.pem");
    let get = |host: &'static str, https: bool| {
        let mut a = s.resolve(host);
        a.extend(args(&["--cacert", cafile.to_str().unwrap()]));
        a.push(match https {
            true => s.https_url(host, "/i.txt"),
            false => s.http_url(host, "/i.txt"),
        });
        curl(a)
    };
    let g = get("a.example", true).await;
    assert_eq!(g.status, 200, "{}", g.stderr);
    assert_eq!(
        g.header("strict-transport-security").as_deref(),
        Some("max-age=31536000")
    );
    let g = get("a.example", false).await;
    assert_eq!(g.status, 200);
    assert_eq!(
        g.header("strict-transport-security"),
        None,
        "never over HTTP"
    );
    let g = get("b.example", true).await;
    assert_eq!(g.status, 200, "{}", g.stderr);
    assert_eq!(g.header("strict-transport-security"), None, "b has it off");
    // Turned off: gone at once.
    std::sync::Arc::make_mut(&mut cfg.sites[0]).hsts = false;
    s.apply(&cfg);
    let g = get("a.example", true).await;
    assert_eq!(g.header("strict-transport-security"), None);
    s.stop().await;
}

/// ACME HTTP-01 (issue 17): a pending challenge is answered at
/// `/.well-known/acme-challenge/<token>` for its own name only, before the site's
/// redirect to HTTPS (and before its files, which have the same path here); other
/// tokens fall through to the site; a challenge removed from the config is gone.
#[tokio::test]
async fn acme_challenge_answered_before_https_redirect() {
    let ca = TestCa::new("t");
    let mut cfg = two_sites(&ca);
    std::sync::Arc::make_mut(&mut cfg.sites[1]).https_redirect = true;
    cfg.acme_challenges = vec![proto::agent_v1::AcmeChallenge {
        name: "b.example".into(),
        token: "tok-1_ABC".into(),
        key_authorization: "tok-1_ABC.thumb".into(),
    }];
    let s = Server::start(&cfg).await;
    s.publish(
        "a.example",
        "r1",
        &[(".well-known/acme-challenge/tok-1_ABC", b"site file")],
    );
    s.publish("b.example", "r1", &[("index.html", b"B")]);
    let get = |host: &'static str, path: &'static str| {
        let mut a = s.resolve(host);
        a.push(s.http_url(host, path));
        curl(a)
    };
    let g = get("b.example", "/.well-known/acme-challenge/tok-1_ABC").await;
    assert_eq!((g.status, g.text().as_str()), (200, "tok-1_ABC.thumb"));
    // Another token of the redirecting site: the redirect as usual.
    let g = get("b.example", "/.well-known/acme-challenge/other").await;
    assert_eq!(g.status, 301);
    // The token under another site's name is that site's business (its file).
    let g = get("a.example", "/.well-known/acme-challenge/tok-1_ABC").await;
    assert_eq!((g.status, g.text().as_str()), (200, "site file"));
    // Validated and removed from the config: back to the redirect.
    cfg.acme_challenges.clear();
    s.apply(&cfg);
    let g = get("b.example", "/.well-known/acme-challenge/tok-1_ABC").await;
    assert_eq!(g.status, 301);
    s.stop().await;
}
