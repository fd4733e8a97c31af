//! Test helpers: a real controller (init + serve) on 127.0.0.1 port 0 in a temp dir,
//! and a small JSON-over-HTTPS client that trusts the controller's CA.

#![allow(dead_code)]

use std::net::SocketAddr;

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

/// A running controller.
pub struct Server {
    /// Base URL.
    pub url: String,
    /// The store URL (tests may open it beside the controller).
    pub store_url: String,
    /// The CA certificate (PEM).
    pub ca: Vec<u8>,
    /// The first admin's token.
    pub admin_token: String,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<Result<(), controller::ServeError>>>,
    _dir: tempfile::TempDir,
}

impl Server {
    /// init a fresh data dir and serve it.
    pub async fn start() -> Server {
        Self::start_with(|_| {}).await
    }

    /// init a fresh data dir and serve it with a changed configuration.
    pub async fn start_with(
        change: impl FnOnce(&mut controller::config::ControllerConfig),
    ) -> Server {
        let dir = tempfile::tempdir().unwrap();
        let data_dir = dir.path().join("cp");
        let listen: SocketAddr = "127.0.0.1:0".parse().unwrap();
        let out = controller::init::init(controller::init::InitOptions {
            data_dir: data_dir.clone(),
            listen,
            store_url: None,
            extra_names: vec!["controller.test".into()],
            admin_name: "admin".into(),
            plain_http: false,
        })
        .await
        .unwrap();
        let mut config = controller::config::ControllerConfig::load(&out.config_path).unwrap();
        // Never the machine's resolver (tests send traffic to loopback only): a
        // test that needs answers points this at a DNS server of its own.
        config.names.resolver = Some("127.0.0.1:9".parse().unwrap());
        change(&mut config);
        let store_url = config.store_url();
        let listener = tokio::net::TcpListener::bind(listen).await.unwrap();
        let url = config.url(listener.local_addr().unwrap());
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(controller::serve(config, listener, async move {
            let _ = rx.await;
        }));
        Server {
            url,
            store_url,
            ca: std::fs::read(&out.ca_path).unwrap(),
            admin_token: out.admin_token,
            shutdown: Some(tx),
            task: Some(task),
            _dir: dir,
        }
    }

    /// A client acting with `token`.
    pub fn client(&self, token: Option<&str>) -> Api {
        self.client_from(token, None)
    }

    /// A client acting with `token` whose connections come from `local` (a loopback
    /// address), so tests can be several client addresses.
    pub fn client_from(&self, token: Option<&str>, local: Option<std::net::IpAddr>) -> Api {
        let cert = reqwest::Certificate::from_pem(&self.ca).unwrap();
        let http = reqwest::Client::builder()
            .add_root_certificate(cert)
            .local_address(local)
            .build()
            .unwrap();
        Api {
            http,
            url: self.url.clone(),
            token: token.map(str::to_owned),
        }
    }

    /// The admin's client.
    pub fn admin(&self) -> Api {
        self.client(Some(&self.admin_token))
    }

    /// Stop the server and wait for it.
    pub async fn stop(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(task) = self.task.take() {
            task.await.unwrap().unwrap();
        }
    }
}

/// A JSON client.
#[derive(Clone)]
pub struct Api {
    /// The HTTP client.
    pub http: reqwest::Client,
    /// Base URL.
    pub url: String,
    /// Bearer token.
    pub token: Option<String>,
}

/// A response: status, headers and JSON body (Null when empty).
#[derive(Debug)]
pub struct Resp {
    pub status: StatusCode,
    pub headers: reqwest::header::HeaderMap,
    pub body: Value,
}

impl Resp {
    /// Assert the status, returning the body.
    #[track_caller]
    pub fn expect(self, status: u16) -> Value {
        assert_eq!(
            self.status.as_u16(),
            status,
            "unexpected status; body {}",
            self.body
        );
        self.body
    }

    /// Assert an error status and error code; returns the body.
    #[track_caller]
    pub fn error(self, status: u16, code: &str) -> Value {
        assert_eq!(
            self.status.as_u16(),
            status,
            "unexpected status; body {}",
            self.body
        );
        assert_eq!(self.body["error"], code, "{}", self.body);
        self.body
    }

    /// Assert 422 `invalid` on `field`.
    #[track_caller]
    pub fn invalid(self, field: &str) -> Value {
        let b = self.error(422, "invalid");
        assert_eq!(b["field"], field, "{b}");
        assert!(b["rule"].is_string(), "{b}");
        b
    }
}

impl Api {
    /// Send a request with an optional JSON body.
    pub async fn call(&self, method: Method, path: &str, body: Option<Value>) -> Resp {
        let mut req = self.http.request(method, format!("{}{}", self.url, path));
        if let Some(t) = &self.token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        let res = req.send().await.unwrap();
        let status = res.status();
        let headers = res.headers().clone();
        let bytes = res.bytes().await.unwrap();
        let body = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes).unwrap_or_else(|e| {
                panic!("non-JSON body ({e}): {}", String::from_utf8_lossy(&bytes))
            })
        };
        Resp {
            status,
            headers,
            body,
        }
    }

    pub async fn get(&self, path: &str) -> Resp {
        self.call(Method::GET, path, None).await
    }
    pub async fn post(&self, path: &str, body: Value) -> Resp {
        self.call(Method::POST, path, Some(body)).await
    }
    pub async fn patch(&self, path: &str, body: Value) -> Resp {
        self.call(Method::PATCH, path, Some(body)).await
    }
    pub async fn delete(&self, path: &str) -> Resp {
        self.call(Method::DELETE, path, None).await
    }

    /// Every item of a listing, following cursors.
    pub async fn list_all(&self, path: &str) -> Vec<Value> {
        let mut items = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let sep = if path.contains('?') { '&' } else { '?' };
            let p = match &cursor {
                Some(c) => format!("{path}{sep}cursor={c}"),
                None => path.to_owned(),
            };
            let page = self.get(&p).await.expect(200);
            items.extend(page["items"].as_array().unwrap().iter().cloned());
            match page["next_cursor"].as_str() {
                Some(c) => cursor = Some(c.to_owned()),
                None => return items,
            }
        }
    }

    /// Names (field `key`) of every item of a listing.
    pub async fn names(&self, path: &str, key: &str) -> Vec<String> {
        self.list_all(path)
            .await
            .iter()
            .map(|v| v[key].as_str().unwrap_or_default().to_owned())
            .collect()
    }
}

/// Create the four domain-role clusters as defaults (admin).
pub async fn default_clusters(admin: &Api) {
    for role in ["web", "dns", "mail", "files", "db"] {
        admin
            .post(
                "/v1/clusters",
                json!({"name": format!("{role}-1"), "role": role, "default": true}),
            )
            .await
            .expect(201);
    }
}

/// Create a customer (admin) and return a client acting as it.
pub async fn customer(server: &Server, admin: &Api, name: &str, body: Value) -> Api {
    let mut b = body;
    b["name"] = json!(name);
    admin.post("/v1/customers", b).await.expect(201);
    let t = admin
        .post("/v1/tokens", json!({"name": "test", "account": name}))
        .await
        .expect(201);
    server.client(Some(t["token"].as_str().unwrap()))
}

/// A server joined through the agent protocol: the controller's URL and a client
/// presenting the server's certificate (mutual TLS), for the agent endpoints.
pub struct Joined {
    pub url: String,
    pub http: reqwest::Client,
}

/// Join a server named `name` to cluster `cluster` as an agent does (join token,
/// CSR, the certificate the controller signs).
/// A new agent key and a certificate signing request for `name` (what an agent
/// sends when it joins).
pub fn csr(name: &str) -> (rcgen::KeyPair, String) {
    use rcgen::{CertificateParams, DistinguishedName, DnType, KeyPair};
    let key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, name);
    params.distinguished_name = dn;
    let pem = params.serialize_request(&key).unwrap().pem().unwrap();
    (key, pem)
}

pub async fn join_agent(srv: &Server, admin: &Api, cluster: &str, name: &str) -> Joined {
    join_agent_in(srv, admin, cluster, name, "DE").await
}

/// [`join_agent`] for a server standing in `country` (a secondary of a ranked
/// cluster must stand elsewhere than its primary).
pub async fn join_agent_in(
    srv: &Server,
    admin: &Api,
    cluster: &str,
    name: &str,
    country: &str,
) -> Joined {
    let token = admin
        .post("/v1/join-tokens", json!({"cluster": cluster}))
        .await
        .expect(201)["token"]
        .as_str()
        .unwrap()
        .to_owned();
    let (key, csr) = csr(name);
    let r = srv
        .client(None)
        .post(
            proto::agent_v1::JOIN_PATH,
            json!({
                "token": token, "csr_pem": csr, "name": name,
                "hostname": format!("{name}.hosting.example"), "addresses": ["127.0.0.1"],
                "country": country, "region": "eu-test", "hardware": "test",
            }),
        )
        .await
        .expect(200);
    let identity = reqwest::Identity::from_pem(
        format!("{}{}", r["cert_pem"].as_str().unwrap(), key.serialize_pem()).as_bytes(),
    )
    .unwrap();
    Joined {
        url: srv.url.clone(),
        http: reqwest::Client::builder()
            .use_rustls_tls()
            .add_root_certificate(reqwest::Certificate::from_pem(&srv.ca).unwrap())
            .identity(identity)
            .build()
            .unwrap(),
    }
}

/// `POST /v1/import` of `lines` (numbered from `first`) as the admin.
pub async fn import(api: &Api, lines: &[Value], first: u64, dry_run: bool) -> Value {
    let body: Vec<String> = lines.iter().map(Value::to_string).collect();
    let res = api
        .http
        .post(format!(
            "{}/v1/import?dry_run={dry_run}&first_line={first}",
            api.url
        ))
        .bearer_auth(api.token.as_deref().unwrap())
        .header("content-type", "application/x-ndjson")
        .body(body.join("\n"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 200);
    res.json().await.unwrap()
}

/// `(status, reason)` of line `n`.
pub fn outcome(report: &Value, n: u64) -> (String, String) {
    let r = report["results"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["line"] == n)
        .unwrap_or_else(|| panic!("no line {n}: {report}"));
    (
        r["status"].as_str().unwrap().to_owned(),
        r["reason"].as_str().unwrap_or_default().to_owned(),
    )
}

#[track_caller]
pub fn expect(report: &Value, n: u64, status: &str, reason_has: &str) {
    let (s, why) = outcome(report, n);
    assert_eq!(s, status, "line {n}: {why}; {report}");
    assert!(why.contains(reason_has), "line {n}: {why}");
}
