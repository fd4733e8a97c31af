//! HTTP/2 and HTTP/1.1 over TLS under many requests at once, against real clients:
//! what the corked TLS writes (`cork.rs`) send must be every response, whole and in
//! order, whether one poll of the connection wrote one frame or a hundred.

#![allow(clippy::unwrap_used)] // test helpers outside #[test] functions

mod common;

use std::path::Path;
use std::process::Command;

use common::{site, Server, TestCa};
use proto::agent_v1::WebConfig;

const HOST: &str = "h2.example";

/// Bytes that differ at every offset (a shifted or lost chunk shows).
fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u32).wrapping_mul(2_654_435_761).to_le_bytes()[i % 4] ^ seed)
        .collect()
}

/// The files served: small (one frame), 100 KiB (in the memory cache, several
/// frames) and 3 MiB (streamed from the file, past the high-water mark).
fn files() -> Vec<(String, Vec<u8>)> {
    vec![
        ("1k.bin".into(), pattern(1024, 1)),
        ("100k.bin".into(), pattern(100 << 10, 2)),
        ("3m.bin".into(), pattern(3 << 20, 3)),
        ("odd.bin".into(), pattern(16_384 * 2 + 7, 4)),
    ]
}

async fn server(ca: &TestCa) -> Server {
    let mut s = site(HOST);
    s.tls = Some(ca.issue(&[HOST]));
    let cfg = WebConfig {
        sites: vec![std::sync::Arc::new(s)],
        files_origin: None,
        peers: Vec::new(),
        acme_challenges: Vec::new(),
    };
    let s = Server::start_with(&cfg, |o| o.threads = 2).await;
    let files = files();
    let refs: Vec<(&str, &[u8])> = files
        .iter()
        .map(|(n, d)| (n.as_str(), d.as_slice()))
        .collect();
    s.publish(HOST, "r1", &refs);
    s
}

/// Run a client in a blocking thread; (exit status, stdout, stderr).
async fn run(program: &'static str, args: Vec<String>) -> (i32, String, String) {
    tokio::task::spawn_blocking(move || {
        let out = Command::new(program)
            .args(&args)
            .output()
            .unwrap_or_else(|e| panic!("{program} must be installed: {e}"));
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    })
    .await
    .unwrap()
}

/// curl fetching each file `copies` times in one invocation (`--parallel` over
/// one HTTP/2 connection, or one after another on a kept-alive HTTP/1.1 one);
/// checks every body and returns how many were fetched.
async fn fetch_all(s: &Server, cafile: &Path, version: &str, copies: usize) -> usize {
    let out = s.tmp.path().join(format!("out-{version}"));
    std::fs::create_dir_all(&out).unwrap();
    let mut args: Vec<String> = vec![
        "-sS".into(),
        "--fail".into(),
        "--max-time".into(),
        "60".into(),
        version.into(),
        "--cacert".into(),
        cafile.to_str().unwrap().into(),
        "-w".into(),
        "%{http_version} %{num_connects}\\n".into(),
    ];
    args.extend(s.resolve(HOST));
    if version == "--http2" {
        args.extend(["--parallel".into(), "--parallel-max".into(), "100".into()]);
    }
    let files = files();
    let mut want = Vec::new();
    for i in 0..copies {
        for (name, data) in &files {
            let path = out.join(format!("{i}-{name}"));
            args.extend([
                "-o".into(),
                path.to_str().unwrap().into(),
                s.https_url(HOST, &format!("/{name}")),
            ]);
            want.push((path, data));
        }
    }
    let (code, stdout, stderr) = run("curl", args).await;
    assert_eq!(code, 0, "curl failed: {stderr}");
    let expect_version = if version == "--http2" { "2" } else { "1.1" };
    for line in stdout.lines() {
        assert!(line.starts_with(expect_version), "{line}");
    }
    let new_connections: usize = stdout
        .lines()
        .filter_map(|l| l.split_whitespace().nth(1)?.parse::<usize>().ok())
        .sum();
    assert!(
        new_connections <= 2,
        "requests should share a connection: {new_connections}"
    );
    for (path, data) in &want {
        let got = std::fs::read(path).unwrap();
        assert_eq!(got.len(), data.len(), "{}", path.display());
        assert!(got == **data, "{} differs", path.display());
    }
    want.len()
}

#[tokio::test]
async fn many_streams_over_one_h2_connection_get_whole_bodies() {
    let ca = TestCa::new("t");
    let s = server(&ca).await;
    let cafile = ca.write(s.tmp.path(), "ca.pem");
    let n = fetch_all(&s, &cafile, "--http2", 25).await;
    assert_eq!(n, 100);
    // Each response is in the access log, with its full size.
    let log = s.log_contains("h2.example.access.log", "3m.bin").await;
    for _ in 0..200 {
        let text =
            std::fs::read_to_string(s.tmp.path().join("logs/h2.example.access.log")).unwrap();
        if text.lines().count() >= n {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let text = std::fs::read_to_string(s.tmp.path().join("logs/h2.example.access.log")).unwrap();
    assert_eq!(text.lines().count(), n, "{log}");
    assert!(
        text.contains("\"GET /100k.bin HTTP/2.0\" 200 102400"),
        "{text}"
    );
    s.stop().await;
}

#[tokio::test]
async fn kept_alive_http1_over_tls_gets_whole_bodies() {
    let ca = TestCa::new("t");
    let s = server(&ca).await;
    let cafile = ca.write(s.tmp.path(), "ca.pem");
    assert_eq!(fetch_all(&s, &cafile, "--http1.1", 5).await, 20);
    s.stop().await;
}

#[tokio::test]
async fn h2load_gets_every_response() {
    if Command::new("h2load").arg("--version").output().is_err() {
        eprintln!("h2load not installed (apt-get install nghttp2-client): skipped");
        return;
    }
    let ca = TestCa::new("t");
    let s = server(&ca).await;
    for (file, len) in [("1k.bin", 1024u64), ("100k.bin", 100 << 10)] {
        let n = 2000u64;
        let args = vec![
            "-n".into(),
            n.to_string(),
            "-c".into(),
            "4".into(),
            "-m".into(),
            "32".into(),
            format!("--connect-to=127.0.0.1:{}", s.https),
            s.https_url(HOST, &format!("/{file}")),
        ];
        let (code, out, err) = run("h2load", args).await;
        assert_eq!(code, 0, "{out}{err}");
        assert!(
            out.contains(&format!("status codes: {n} 2xx")),
            "{file}: {out}"
        );
        // h2load's count of body bytes ("traffic: … total, … headers, N data").
        let data = out
            .lines()
            .find(|l| l.starts_with("traffic:"))
            .and_then(|l| l.rsplit_once('(')?.1.split_once(')')?.0.parse::<u64>().ok())
            .unwrap();
        assert_eq!(data, n * len, "{file}: {out}");
        assert!(out.contains("h2"), "{out}");
    }
    s.stop().await;
}
