//! A stand-in controller for agent tests: the three agent endpoints of
//! `proto::agent_v1` over real HTTPS with mutual TLS, on 127.0.0.1 port 0.
//!
//! It has its own CA (rcgen); `POST /v1/agent/join` accepts one-time tokens and
//! signs the agent's CSR; `GET /v1/agent/config` and `POST /v1/agent/heartbeat`
//! require a client certificate it issued (401 otherwise); the TLS layer refuses
//! certificates of any other CA. Replace it with the real controller once its
//! agent endpoints exist.

#![allow(dead_code, clippy::unwrap_used)]

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Json, Router};
use proto::agent_v1::{
    ConfigQuery, DesiredConfig, Heartbeat, HeartbeatAck, JoinRequest, JoinResponse, CONFIG_PATH,
    HEARTBEAT_PATH, JOIN_PATH,
};
use rcgen::{
    BasicConstraints, CertificateParams, CertificateSigningRequestParams, DistinguishedName,
    DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair, KeyUsagePurpose,
};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio::sync::watch;

/// A CA made for a test.
pub struct TestCa {
    /// CA certificate (PEM).
    pub cert_pem: String,
    /// CA certificate (DER).
    pub cert_der: Vec<u8>,
    issuer: Issuer<'static, KeyPair>,
}

impl TestCa {
    /// A fresh CA.
    pub fn new(name: &str) -> TestCa {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, name);
        params.distinguished_name = dn;
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let cert = params.self_signed(&key).unwrap();
        TestCa {
            cert_pem: cert.pem(),
            cert_der: cert.der().to_vec(),
            issuer: Issuer::new(params, key),
        }
    }

    /// A leaf certificate for `names`: (certificate PEM, certificate DER, key PEM,
    /// key PKCS#8 DER).
    pub fn leaf(
        &self,
        names: &[&str],
        eku: ExtendedKeyUsagePurpose,
    ) -> (String, Vec<u8>, String, Vec<u8>) {
        let key = KeyPair::generate().unwrap();
        let mut params =
            CertificateParams::new(names.iter().map(|s| s.to_string()).collect::<Vec<_>>())
                .unwrap();
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, names[0]);
        params.distinguished_name = dn;
        params.extended_key_usages = vec![eku];
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        (
            cert.pem(),
            cert.der().to_vec(),
            key.serialize_pem(),
            key.serialize_der(),
        )
    }
}

/// One config query the server answered.
#[derive(Debug, Clone)]
pub struct ConfigCall {
    /// The server (certificate) that asked.
    pub server: String,
    /// Its `after`.
    pub after: i64,
    /// 200 or 304.
    pub status: u16,
}

/// One heartbeat received.
#[derive(Debug, Clone)]
pub struct SeenHeartbeat {
    /// The server (certificate) that sent it.
    pub server: String,
    /// Source address of the connection.
    pub peer: SocketAddr,
    /// The body.
    pub heartbeat: Heartbeat,
}

struct Shared {
    ca: TestCa,
    wait: Duration,
    tokens: Mutex<HashMap<String, (String, String)>>,
    issued: Mutex<HashMap<Vec<u8>, String>>,
    configs: watch::Sender<BTreeMap<String, DesiredConfig>>,
    joins: Mutex<Vec<JoinRequest>>,
    config_calls: Mutex<Vec<ConfigCall>>,
    heartbeats: Mutex<Vec<SeenHeartbeat>>,
}

/// Who is on the other end of a connection.
#[derive(Clone)]
struct Peer {
    addr: SocketAddr,
    server: Option<String>,
}

/// The running stand-in controller.
pub struct TestController {
    /// `https://127.0.0.1:PORT`.
    pub url: String,
    shared: Arc<Shared>,
    task: Option<tokio::task::JoinHandle<()>>,
}

fn error(status: StatusCode, code: &str, message: &str) -> Response {
    (
        status,
        Json(proto::v1::ErrorBody {
            error: code.into(),
            message: message.into(),
            field: None,
            rule: None,
        }),
    )
        .into_response()
}

async fn join(State(s): State<Arc<Shared>>, Json(req): Json<JoinRequest>) -> Response {
    let Some((cluster, role)) = s.tokens.lock().unwrap().remove(&req.token) else {
        return error(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "unknown, used or expired join token",
        );
    };
    let Ok(mut csr) = CertificateSigningRequestParams::from_pem(&req.csr_pem) else {
        return error(StatusCode::BAD_REQUEST, "invalid", "csr_pem is not a CSR");
    };
    let cn_ok = csr.params.distinguished_name.iter().any(|(t, v)| {
        *t == DnType::CommonName && matches!(v, rcgen::DnValue::Utf8String(s) if *s == req.name)
    });
    if !cn_ok {
        return error(
            StatusCode::BAD_REQUEST,
            "invalid",
            "CSR common name != name",
        );
    }
    csr.params.is_ca = IsCa::ExplicitNoCa;
    csr.params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    let cert = csr.signed_by(&s.ca.issuer).unwrap();
    s.issued
        .lock()
        .unwrap()
        .insert(cert.der().to_vec(), req.name.clone());
    let resp = JoinResponse {
        server: req.name.clone(),
        cluster,
        role,
        cert_pem: cert.pem(),
        ca_pem: s.ca.cert_pem.clone(),
    };
    s.joins.lock().unwrap().push(req);
    Json(resp).into_response()
}

async fn config(
    State(s): State<Arc<Shared>>,
    Extension(peer): Extension<Peer>,
    Query(q): Query<ConfigQuery>,
) -> Response {
    if q.resync != 0 {
        // This fake stands for a controller that predates `resync` (it answered 400
        // when `ConfigQuery` had no such field): the agent falls back to `after=0`
        // resyncs, which the resync tests count.
        return error(
            StatusCode::BAD_REQUEST,
            "bad_request",
            "unknown field `resync`",
        );
    }
    let Some(server) = peer.server else {
        return error(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "a client certificate is required",
        );
    };
    let mut rx = s.configs.subscribe();
    let deadline = tokio::time::Instant::now() + s.wait;
    loop {
        let found = rx
            .borrow_and_update()
            .get(&server)
            .filter(|c| q.after == 0 || c.revision > q.after)
            .cloned();
        if let Some(cfg) = found {
            s.config_calls.lock().unwrap().push(ConfigCall {
                server,
                after: q.after,
                status: 200,
            });
            return Json(cfg).into_response();
        }
        match tokio::time::timeout_at(deadline, rx.changed()).await {
            Ok(Ok(())) => continue,
            _ => {
                s.config_calls.lock().unwrap().push(ConfigCall {
                    server,
                    after: q.after,
                    status: 304,
                });
                return StatusCode::NOT_MODIFIED.into_response();
            }
        }
    }
}

async fn heartbeat(
    State(s): State<Arc<Shared>>,
    Extension(peer): Extension<Peer>,
    Json(hb): Json<Heartbeat>,
) -> Response {
    let Some(server) = peer.server else {
        return error(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "a client certificate is required",
        );
    };
    s.heartbeats.lock().unwrap().push(SeenHeartbeat {
        server,
        peer: peer.addr,
        heartbeat: hb,
    });
    let now = time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap();
    Json(HeartbeatAck {
        server_time: now,
        cron_lease_secs: None,
        mail_lease_secs: None,
    })
    .into_response()
}

impl TestController {
    /// Start on 127.0.0.1 port 0; blocking queries answer 304 after `wait`.
    pub async fn start(wait: Duration) -> TestController {
        let ca = TestCa::new("test controller CA");
        let (_, cert_der, _, key_der) =
            ca.leaf(&["127.0.0.1"], ExtendedKeyUsagePurpose::ServerAuth);
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut roots = rustls::RootCertStore::empty();
        roots
            .add(CertificateDer::from(ca.cert_der.clone()))
            .unwrap();
        let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
            Arc::new(roots),
            provider.clone(),
        )
        .allow_unauthenticated()
        .build()
        .unwrap();
        let mut tls = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_client_cert_verifier(verifier)
            .with_single_cert(
                vec![CertificateDer::from(cert_der)],
                PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key_der)),
            )
            .unwrap();
        tls.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(tls));

        let shared = Arc::new(Shared {
            ca,
            wait,
            tokens: Mutex::default(),
            issued: Mutex::default(),
            configs: watch::channel(BTreeMap::new()).0,
            joins: Mutex::default(),
            config_calls: Mutex::default(),
            heartbeats: Mutex::default(),
        });
        let app = Router::new()
            .route(JOIN_PATH, post(join))
            .route(CONFIG_PATH, get(config))
            .route(HEARTBEAT_PATH, post(heartbeat))
            .with_state(shared.clone());

        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("https://{}", listener.local_addr().unwrap());
        let accept_shared = shared.clone();
        let task = tokio::spawn(async move {
            let mut conns = tokio::task::JoinSet::new();
            loop {
                let Ok((tcp, addr)) = listener.accept().await else {
                    continue;
                };
                let acceptor = acceptor.clone();
                let app = app.clone();
                let shared = accept_shared.clone();
                conns.spawn(async move {
                    let Ok(stream) = acceptor.accept(tcp).await else {
                        return; // handshake refused (e.g. a certificate of another CA)
                    };
                    let server = stream
                        .get_ref()
                        .1
                        .peer_certificates()
                        .and_then(|c| c.first())
                        .and_then(|c| shared.issued.lock().unwrap().get(c.as_ref()).cloned());
                    let svc = hyper_util::service::TowerToHyperService::new(
                        app.layer(Extension(Peer { addr, server })),
                    );
                    let _ = hyper_util::server::conn::auto::Builder::new(
                        hyper_util::rt::TokioExecutor::new(),
                    )
                    .serve_connection(hyper_util::rt::TokioIo::new(stream), svc)
                    .await;
                });
                // reap finished connections
                while conns.try_join_next().is_some() {}
            }
        });
        TestController {
            url,
            shared,
            task: Some(task),
        }
    }

    /// The CA certificate (PEM) agents trust.
    pub fn ca_pem(&self) -> &str {
        &self.shared.ca.cert_pem
    }

    /// The test CA (to make client certificates for negative tests).
    pub fn ca(&self) -> &TestCa {
        &self.shared.ca
    }

    /// A new one-time join token for `cluster` of `role`.
    pub fn token(&self, cluster: &str, role: &str) -> String {
        let token = format!("tok-{}", rand_suffix());
        self.shared
            .tokens
            .lock()
            .unwrap()
            .insert(token.clone(), (cluster.into(), role.into()));
        token
    }

    /// Set (or replace) the desired config of `server`; wakes blocking queries.
    pub fn set_config(&self, server: &str, cfg: DesiredConfig) {
        self.shared.configs.send_modify(|m| {
            m.insert(server.to_string(), cfg);
        });
    }

    /// How many joins succeeded.
    pub fn joins(&self) -> usize {
        self.shared.joins.lock().unwrap().len()
    }

    /// The join requests received.
    pub fn join_requests(&self) -> Vec<JoinRequest> {
        self.shared.joins.lock().unwrap().clone()
    }

    /// Config queries answered so far.
    pub fn config_calls(&self) -> Vec<ConfigCall> {
        self.shared.config_calls.lock().unwrap().clone()
    }

    /// Heartbeats received so far.
    pub fn heartbeats(&self) -> Vec<SeenHeartbeat> {
        self.shared.heartbeats.lock().unwrap().clone()
    }

    /// Stop listening and drop every connection.
    pub async fn stop(mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
            let _ = task.await;
        }
    }
}

impl Drop for TestController {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

fn rand_suffix() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    format!(
        "{}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed),
        time::OffsetDateTime::now_utc().unix_timestamp_nanos()
    )
}

/// A TCP port on 127.0.0.1 with nobody listening (connections are refused).
pub fn dead_url() -> String {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    drop(l);
    format!("https://{addr}")
}
