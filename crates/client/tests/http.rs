//! The client against a minimal HTTP/1.1 server on a real socket: path encoding,
//! bearer auth, cursor following, error bodies and empty 204 answers.

#![allow(clippy::unwrap_used)] // test helpers outside #[test] fns may panic

use client::{Client, ClientError};
use proto::v1::{CreateDomain, ListParams};
use std::sync::{Arc, Mutex};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// One recorded request: method, target (path + query), authorization header, body.
#[derive(Debug, Clone)]
struct Seen {
    method: String,
    target: String,
    auth: Option<String>,
    body: String,
}

type Handler = fn(&Seen) -> (u16, String);

async fn serve(handler: Handler) -> (String, Arc<Mutex<Vec<Seen>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    tokio::spawn(async move {
        loop {
            let Ok((mut sock, _)) = listener.accept().await else {
                return;
            };
            let log = log.clone();
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                let header_end = loop {
                    let n = sock.read(&mut chunk).await.unwrap();
                    if n == 0 {
                        return;
                    }
                    buf.extend_from_slice(&chunk[..n]);
                    if let Some(pos) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                        break pos + 4;
                    }
                };
                let head = String::from_utf8_lossy(&buf[..header_end]).to_string();
                let mut lines = head.split("\r\n");
                let mut first = lines.next().unwrap().split(' ');
                let method = first.next().unwrap().to_owned();
                let target = first.next().unwrap().to_owned();
                let mut auth = None;
                let mut len = 0usize;
                for line in lines {
                    if let Some((k, v)) = line.split_once(':') {
                        match k.trim().to_ascii_lowercase().as_str() {
                            "authorization" => auth = Some(v.trim().to_owned()),
                            "content-length" => len = v.trim().parse().unwrap(),
                            _ => {}
                        }
                    }
                }
                while buf.len() < header_end + len {
                    let n = sock.read(&mut chunk).await.unwrap();
                    buf.extend_from_slice(&chunk[..n]);
                }
                let body = String::from_utf8_lossy(&buf[header_end..header_end + len]).to_string();
                let req = Seen {
                    method,
                    target,
                    auth,
                    body,
                };
                let (status, answer) = handler(&req);
                log.lock().unwrap().push(req);
                let resp = format!(
                    "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{answer}",
                    answer.len()
                );
                sock.write_all(resp.as_bytes()).await.unwrap();
                sock.shutdown().await.ok();
            });
        }
    });
    (format!("http://{addr}"), seen)
}

fn domain(name: &str) -> String {
    format!(
        r#"{{"name":"{name}","unicode":"{name}","customer":"acme","placements":{{"web":"web"}},"created_at":"2026-01-01T00:00:00Z"}}"#
    )
}

fn router(req: &Seen) -> (u16, String) {
    match (req.method.as_str(), req.target.as_str()) {
        ("GET", "/v1/domains/..%2F..%2Fetc") => (404, r#"{"error":"not_found","message":"encoded as one segment"}"#.into()),
        ("GET", "/v1/domains?limit=2") => (200, format!(r#"{{"items":[{},{}],"next_cursor":"c2"}}"#, domain("a.example"), domain("b.example"))),
        ("GET", "/v1/domains?cursor=c2&limit=2") => (200, format!(r#"{{"items":[{}]}}"#, domain("c.example"))),
        ("POST", "/v1/domains") => (
            422,
            r#"{"error":"invalid","message":"`bad..name` is not a valid domain name","field":"name","rule":"empty_label"}"#.into(),
        ),
        ("DELETE", "/v1/mailboxes/info%40example.com") => (204, String::new()),
        ("GET", "/v1/status") => (502, "<html>bad gateway</html>".into()),
        _ => (404, r#"{"error":"not_found","message":"no such thing"}"#.into()),
    }
}

#[tokio::test]
async fn follows_cursors_and_sends_token() {
    let (url, seen) = serve(router).await;
    let api = Client::new(&url, Some("secret-token".into()), None).unwrap();
    let all = api
        .list_all_domains(&ListParams {
            limit: Some(2),
            ..Default::default()
        })
        .await
        .unwrap();
    let names: Vec<_> = all.iter().map(|d| d.name.as_str()).collect();
    assert_eq!(names, ["a.example", "b.example", "c.example"]);
    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 2);
    assert!(seen
        .iter()
        .all(|s| s.auth.as_deref() == Some("Bearer secret-token")));
}

#[tokio::test]
async fn api_error_carries_the_servers_message_and_field() {
    let (url, seen) = serve(router).await;
    let api = Client::new(&url, None, None).unwrap();
    let err = api
        .create_domain(&CreateDomain {
            name: "bad..name".into(),
            customer: None,
            clusters: None,
        })
        .await
        .unwrap_err();
    assert_eq!(err.status(), Some(422));
    assert_eq!(
        err.to_string(),
        "`bad..name` is not a valid domain name (field: name)"
    );
    let body = err.api_body().unwrap();
    assert_eq!(body.rule.as_deref(), Some("empty_label"));
    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen[0].auth, None, "no token, no header");
    let sent: serde_json::Value = serde_json::from_str(&seen[0].body).unwrap();
    assert_eq!(sent, serde_json::json!({"name": "bad..name"}));
}

#[tokio::test]
async fn path_segments_are_percent_encoded_and_204_is_ok() {
    let (url, _) = serve(router).await;
    let api = Client::new(&format!("{url}/"), None, None).unwrap();
    api.delete_mailbox("info@example.com").await.unwrap();
    let err = api.get_domain("../../etc").await.unwrap_err();
    assert_eq!(err.status(), Some(404));
    assert_eq!(err.to_string(), "encoded as one segment");
}

#[tokio::test]
async fn non_json_error_bodies_become_readable_errors() {
    let (url, _) = serve(router).await;
    let api = Client::new(&url, None, None).unwrap();
    let err = api.status().await.unwrap_err();
    assert_eq!(err.status(), Some(502));
    assert!(err.to_string().contains("502"), "{err}");
    assert!(err.to_string().contains("bad gateway"), "{err}");
}

#[tokio::test]
async fn connection_refused_is_a_transport_error() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let api = Client::new(&format!("http://{addr}"), None, None).unwrap();
    let err = api.whoami().await.unwrap_err();
    assert!(err.is_transport(), "{err:?}");
    assert!(err.to_string().contains(&addr.to_string()), "{err}");
}

#[test]
fn bad_urls_and_cas_are_rejected() {
    for bad in ["", "ftp://host", "not a url", "https://host/?q=1"] {
        assert!(
            matches!(
                Client::new(bad, None, None),
                Err(ClientError::InvalidUrl { .. })
            ),
            "{bad}"
        );
    }
    assert!(matches!(
        Client::new("https://127.0.0.1:1", None, Some(b"not pem")),
        Err(ClientError::Ca(_))
    ));
}

#[test]
fn urls_keep_a_path_prefix() {
    let api = Client::new("https://h.example:8443/api/", None, None).unwrap();
    assert_eq!(
        api.url(&["v1", "aliases", "a b@x.example"])
            .unwrap()
            .as_str(),
        "https://h.example:8443/api/v1/aliases/a%20b%40x.example"
    );
    assert!(matches!(
        api.url(&["v1", ".."]),
        Err(ClientError::InvalidKey(_))
    ));
    assert!(matches!(
        api.url(&["v1", ""]),
        Err(ClientError::InvalidKey(_))
    ));
    assert_eq!(api.base_url(), "https://h.example:8443/api");
}
