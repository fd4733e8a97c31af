//! The plain-HTTP fast path against hyper, over raw sockets: the same requests
//! answered on a fast-path connection and on a connection handed to hyper (its
//! first request is one the fast path never takes) give the same status, headers
//! and bodies; pipelined requests, including one handed over mid-buffer; a 10 MiB
//! file sent with `sendfile` checked byte for byte with curl and logged; and a
//! client that stops reading mid-file does not hold up shutdown.

#![allow(clippy::unwrap_used)] // test helpers outside #[test] functions

mod common;

use std::time::Duration;

use common::{curl, site, Server};
use proto::agent_v1::WebConfig;
use role_web::fpm::{find_binary, FpmManager};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

const HOST: &str = "fast.example";
const SCRIPT: &str = "<?php header('Content-Type: text/plain'); \
    echo 'method=', $_SERVER['REQUEST_METHOD'], ' uri=', $_SERVER['REQUEST_URI'], \
    ' body=', file_get_contents('php://input'), \"\\n\";";

/// Deterministic bytes that do not compress.
fn noise(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

struct Fixture {
    s: Server,
    _fpm: FpmManager,
    big: Vec<u8>,
}

async fn fixture(tune: impl FnOnce(&mut role_web::ServerOptions)) -> Fixture {
    let mut w = site(HOST);
    w.php = true;
    let cfg = WebConfig {
        sites: vec![w].into_iter().map(std::sync::Arc::new).collect(),
        files_origin: None,
        peers: Vec::new(),
        acme_challenges: Vec::new(),
    };
    let s = Server::start_with(&cfg, tune).await;
    let small = noise(1024, 1);
    let big = noise(10 << 20, 2);
    let css = "p { color: red; }\n".repeat(100);
    s.publish(
        HOST,
        "r1",
        &[
            ("1k.bin", &small),
            ("10m.bin", &big),
            ("style.css", css.as_bytes()),
            ("dir/index.html", b"<p>dir</p>\n"),
            ("index.php", SCRIPT.as_bytes()),
        ],
    );
    let plan = common::render_all(&cfg, &s.layout, &role_web::Plan::default());
    let bin = find_binary().expect("php-fpm must be installed (apt-get install php-fpm)");
    let mut fpm = FpmManager::new(s.layout.php_dir.clone(), Some(bin));
    fpm.apply(&plan.php_pools()).await.unwrap();
    Fixture { s, _fpm: fpm, big }
}

#[derive(Debug, PartialEq)]
struct Resp {
    status: u16,
    /// Lowercase names, sorted, without `date`.
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Resp {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Read one response (`head`: it answers a HEAD request).
async fn read_response(r: &mut BufReader<TcpStream>, head: bool) -> Resp {
    let mut line = String::new();
    r.read_line(&mut line).await.unwrap();
    let status: u16 = line
        .split_whitespace()
        .nth(1)
        .unwrap_or_else(|| panic!("status line {line:?}"))
        .parse()
        .unwrap();
    let mut headers = Vec::new();
    loop {
        line.clear();
        r.read_line(&mut line).await.unwrap();
        let l = line.trim_end();
        if l.is_empty() {
            break;
        }
        let (k, v) = l.split_once(':').unwrap();
        headers.push((k.trim().to_ascii_lowercase(), v.trim().to_string()));
    }
    headers.sort();
    let get = |n: &str| headers.iter().find(|(k, _)| k == n).map(|(_, v)| v.clone());
    let mut body = Vec::new();
    if head || status == 304 || status == 204 {
    } else if let Some(n) = get("content-length") {
        body.resize(n.parse().unwrap(), 0);
        r.read_exact(&mut body).await.unwrap();
    } else if get("transfer-encoding").as_deref() == Some("chunked") {
        loop {
            line.clear();
            r.read_line(&mut line).await.unwrap();
            let n = usize::from_str_radix(line.trim(), 16).unwrap();
            let mut chunk = vec![0; n + 2];
            r.read_exact(&mut chunk).await.unwrap();
            if n == 0 {
                break;
            }
            body.extend_from_slice(&chunk[..n]);
        }
    } else {
        r.read_to_end(&mut body).await.unwrap();
    }
    headers.retain(|(k, _)| k != "date");
    Resp {
        status,
        headers,
        body,
    }
}

async fn connect(s: &Server) -> BufReader<TcpStream> {
    BufReader::new(TcpStream::connect(("127.0.0.1", s.http)).await.unwrap())
}

async fn exchange(c: &mut BufReader<TcpStream>, raw: &str) -> Resp {
    c.get_mut().write_all(raw.as_bytes()).await.unwrap();
    read_response(c, raw.starts_with("HEAD ")).await
}

fn get(path: &str, extra: &str) -> String {
    format!("GET {path} HTTP/1.1\r\nHost: {HOST}\r\n{extra}\r\n")
}

#[tokio::test]
async fn fast_path_answers_like_hyper() {
    let f = fixture(|_| {}).await;
    let mut fast = connect(&f.s).await;
    let mut hyper = connect(&f.s).await;
    // A request the fast path never takes: this connection is hyper's from now on.
    let first = exchange(
        &mut hyper,
        &format!("OPTIONS /1k.bin HTTP/1.1\r\nHost: {HOST}\r\n\r\n"),
    )
    .await;
    assert_eq!(first.status, 405);
    let etag = exchange(&mut fast, &get("/1k.bin", "")).await;
    let etag = etag.header("etag").unwrap().to_string();
    let requests = [
        get("/1k.bin", ""),
        format!("HEAD /1k.bin HTTP/1.1\r\nHost: {HOST}\r\n\r\n"),
        get("/1k.bin", &format!("If-None-Match: {etag}\r\n")),
        get("/1k.bin", "Range: bytes=10-19\r\n"),
        get("/1k.bin", "Range: bytes=5000-\r\n"),
        get("/10m.bin", ""),
        get("/10m.bin", "Range: bytes=1000000-1999999\r\n"),
        format!("HEAD /10m.bin HTTP/1.1\r\nHost: {HOST}\r\n\r\n"),
        get("/style.css", "Accept-Encoding: gzip\r\n"),
        get("/dir", ""),
        get("/dir/", ""),
        get("/1k.bin", "Host: other.example\r\n").replace(&format!("Host: {HOST}\r\n"), ""),
        get("/index.php?q=1", ""),
        get("/pretty/url", "Content-Length: 0\r\n"),
        get("/1k.bin?x=%41", "User-Agent: t\r\nReferer: http://r/\r\n"),
    ];
    for raw in &requests {
        let a = exchange(&mut fast, raw).await;
        let b = exchange(&mut hyper, raw).await;
        assert_eq!(a, b, "{raw}");
        assert_ne!(a.status, 0);
    }
    let big = exchange(&mut fast, &get("/10m.bin", "")).await;
    assert!(big.body == f.big, "10 MiB body differs");
    // PHP with a request body: the fast path hands over, hyper answers.
    let post = format!(
        "POST /index.php HTTP/1.1\r\nHost: {HOST}\r\nContent-Length: 5\r\n\
         Content-Type: text/plain\r\n\r\nhello"
    );
    let a = exchange(&mut fast, &post).await;
    let b = exchange(&mut hyper, &post).await;
    assert_eq!(a, b);
    assert!(String::from_utf8_lossy(&a.body).contains("method=POST uri=/index.php body=hello"));
    // HTTP/1.0 (closes after the response) and a malformed request, each on a
    // fresh connection (the second one after an OPTIONS hands it to hyper).
    for raw in [
        format!("GET /1k.bin HTTP/1.0\r\nHost: {HOST}\r\n\r\n"),
        format!("GET /index.php HTTP/1.0\r\nHost: {HOST}\r\n\r\n"),
        "GARBAGE\r\n\r\n".to_string(),
    ] {
        let mut fast = connect(&f.s).await;
        let mut hyper = connect(&f.s).await;
        exchange(
            &mut hyper,
            &format!("OPTIONS /1k.bin HTTP/1.1\r\nHost: {HOST}\r\n\r\n"),
        )
        .await;
        let a = exchange(&mut fast, &raw).await;
        let b = exchange(&mut hyper, &raw).await;
        assert_eq!(a, b, "{raw}");
        let mut rest = Vec::new();
        fast.read_to_end(&mut rest).await.unwrap();
        assert!(rest.is_empty(), "{raw}: the connection closes");
    }
    f.s.stop().await;
}

#[tokio::test]
async fn pipelined_requests_and_a_hand_over_mid_buffer() {
    let f = fixture(|_| {}).await;
    let mut c = connect(&f.s).await;
    let raw = [
        get("/1k.bin", ""),
        get("/10m.bin", "Range: bytes=0-99\r\n"),
        get("/10m.bin", ""),
        format!("POST /index.php HTTP/1.1\r\nHost: {HOST}\r\nContent-Length: 2\r\n\r\nhi"),
        get("/dir/", "Connection: close\r\n"),
    ]
    .concat();
    c.get_mut().write_all(raw.as_bytes()).await.unwrap();
    let r = read_response(&mut c, false).await;
    assert_eq!((r.status, r.body.len()), (200, 1024));
    let r = read_response(&mut c, false).await;
    assert_eq!((r.status, &r.body[..]), (206, &f.big[..100]));
    let r = read_response(&mut c, false).await;
    assert!(r.status == 200 && r.body == f.big);
    let r = read_response(&mut c, false).await;
    assert!(String::from_utf8_lossy(&r.body).contains("method=POST uri=/index.php body=hi"));
    let r = read_response(&mut c, false).await;
    assert_eq!((r.status, &r.body[..]), (200, &b"<p>dir</p>\n"[..]));
    let mut rest = Vec::new();
    c.read_to_end(&mut rest).await.unwrap();
    assert!(rest.is_empty());
    f.s.stop().await;
}

#[tokio::test]
async fn ten_mib_with_curl_byte_for_byte_and_logged() {
    let f = fixture(|_| {}).await;
    let mut a = f.s.resolve(HOST);
    a.push(f.s.http_url(HOST, "/10m.bin"));
    let g = curl(a).await;
    assert_eq!(g.status, 200, "{}", g.stderr);
    assert!(
        g.body == f.big,
        "curl got {} bytes, not the file",
        g.body.len()
    );
    f.s.log_contains(
        &format!("{HOST}.access.log"),
        "\"GET /10m.bin HTTP/1.1\" 200 10485760",
    )
    .await;
    f.s.stop().await;
}

#[tokio::test]
async fn a_client_that_stops_reading_does_not_hold_up_shutdown() {
    let f = fixture(|o| o.drain = Duration::from_millis(500)).await;
    let mut stalled = TcpStream::connect(("127.0.0.1", f.s.http)).await.unwrap();
    stalled
        .write_all(get("/10m.bin", "").as_bytes())
        .await
        .unwrap();
    let mut first = [0u8; 64];
    stalled.read_exact(&mut first).await.unwrap();
    assert!(first.starts_with(b"HTTP/1.1 200"));
    // Other clients are still served while that one stalls.
    let mut a = f.s.resolve(HOST);
    a.push(f.s.http_url(HOST, "/1k.bin"));
    assert_eq!(curl(a).await.status, 200);
    // Shutdown finishes (after the drain period) although the transfer never does.
    tokio::time::timeout(Duration::from_secs(60), f.s.stop())
        .await
        .expect("shutdown hung on a stalled sendfile");
    drop(stalled);
}
