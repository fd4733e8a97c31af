#![allow(clippy::unwrap_used)] // test helpers outside #[test] fns may panic
//! Replication over the real transport: the hub served over HTTPS with mutual TLS on a
//! loopback address, two replicas as `web-1` and `web-2` (client certificates from a
//! throwaway CA), a third server the hub does not grant the site, a hub that is down.

use std::collections::BTreeSet;
use std::sync::Arc;

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose,
};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use sitesync::api::{HubApi, HubError};
use sitesync::hub::{Hub, HubConfig};
use sitesync::replica::{Look, Replica, ReplicaConfig};
use sitesync::transport::client::HttpsHub;
use sitesync::transport::server::run_hub_server;

const SITE: &str = "shop.example";

struct Pki {
    ca_pem: String,
    ca_der: CertificateDer<'static>,
    issuer: Issuer<'static, KeyPair>,
}

struct Signed {
    cert_pem: String,
    key_pem: String,
    cert_der: CertificateDer<'static>,
    key_der: Vec<u8>,
}

impl Pki {
    fn new() -> Pki {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, "test CA");
        params.distinguished_name = dn;
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let cert = params.self_signed(&key).unwrap();
        Pki {
            ca_pem: cert.pem(),
            ca_der: cert.der().clone(),
            issuer: Issuer::new(params, key),
        }
    }

    fn sign(&self, cn: &str, sans: Vec<String>, eku: ExtendedKeyUsagePurpose) -> Signed {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(sans).unwrap();
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, cn);
        params.distinguished_name = dn;
        params.extended_key_usages = vec![eku];
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        Signed {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
            cert_der: cert.der().clone(),
            key_der: key.serialize_der(),
        }
    }
}

fn server_config(pki: &Pki, ip: &str) -> Arc<rustls::ServerConfig> {
    let s = pki.sign(
        "files-1",
        vec![ip.to_string()],
        ExtendedKeyUsagePurpose::ServerAuth,
    );
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    roots.add(pki.ca_der.clone()).unwrap();
    let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
        Arc::new(roots),
        provider.clone(),
    )
    .build()
    .unwrap();
    let mut cfg = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_client_cert_verifier(verifier)
        .with_single_cert(
            vec![s.cert_der],
            PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(s.key_der)),
        )
        .unwrap();
    cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
    Arc::new(cfg)
}

fn client(pki: &Pki, base: &str, cn: &str) -> HttpsHub {
    let c = pki.sign(cn, vec![], ExtendedKeyUsagePurpose::ClientAuth);
    HttpsHub::new(base, &c.cert_pem, &c.key_pem, &pki.ca_pem).unwrap()
}

fn replica(dir: &std::path::Path, name: &str) -> Replica {
    let root = dir.join(name).join("site");
    std::fs::create_dir_all(&root).unwrap();
    Replica::open(ReplicaConfig {
        site: SITE.into(),
        server: name.into(),
        root,
        state: dir.join(name).join("state"),
        local: vec![],
        keep: vec![],
        owner: None,
        chunk_size: 64 * 1024,
    })
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_sync_over_mutual_tls_and_strangers_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = HubConfig::new(dir.path().join("hub"));
    cfg.reserve_bytes = 0;
    let hub = Arc::new(Hub::open(cfg).unwrap());
    let sites: BTreeSet<String> = [SITE.to_string()].into();
    hub.set_grants([("web-1".into(), sites.clone()), ("web-2".into(), sites)].into());
    let pki = Pki::new();
    let listener = tokio::net::TcpListener::bind("127.0.6.1:0").await.unwrap();
    let base = format!("https://{}", listener.local_addr().unwrap());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(run_hub_server(
        listener,
        server_config(&pki, "127.0.6.1"),
        hub.clone(),
        async {
            let _ = stopped.await;
        },
    ));
    let (h1, h2, h9) = (
        client(&pki, &base, "web-1"),
        client(&pki, &base, "web-2"),
        client(&pki, &base, "web-9"),
    );
    // a hub nobody listens on: the replica keeps its outbox
    let closed = {
        let l = std::net::TcpListener::bind("127.0.6.1:0").unwrap();
        format!("https://{}", l.local_addr().unwrap())
    };
    let hdown = client(&pki, &closed, "web-1");
    let path = dir.path().to_path_buf();
    tokio::task::spawn_blocking(move || {
        let mut a = replica(&path, "web-1");
        let mut b = replica(&path, "web-2");
        let data: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
        let f = path.join("web-1/site/wp-content/uploads/a.bin");
        std::fs::create_dir_all(f.parent().unwrap()).unwrap();
        std::fs::write(&f, &data).unwrap();
        a.observe(&[Look::Path("wp-content/uploads/a.bin".into())])
            .unwrap();
        assert!(a.sync(&hdown).unwrap().hub_down);
        assert!(a.pending() > 0);
        let r = a.sync(&h1).unwrap();
        assert_eq!((r.applied, a.pending()), (3, 0), "{r:?}");
        b.sync(&h2).unwrap();
        let g = path.join("web-2/site/wp-content/uploads/a.bin");
        assert_eq!(std::fs::read(&g).unwrap(), data);
        use std::os::unix::fs::MetadataExt;
        let (ma, mb) = (
            std::fs::metadata(&f).unwrap(),
            std::fs::metadata(&g).unwrap(),
        );
        assert_eq!((ma.mtime(), ma.mtime_nsec()), (mb.mtime(), mb.mtime_nsec()));
        assert_eq!(b.disk_nodes().unwrap(), h2.manifest(SITE).unwrap().nodes);
        // a long poll on web-2 answers as soon as web-1 writes (it would wait 30 s and
        // come back empty otherwise)
        let head = b.index().seq;
        let waiter = {
            let h2 = h2.clone();
            std::thread::spawn(move || {
                h2.log_wait(SITE, head, 10, std::time::Duration::from_secs(30))
                    .unwrap()
            })
        };
        std::thread::sleep(std::time::Duration::from_millis(300));
        std::fs::write(path.join("web-1/site/robots.txt"), b"User-agent: *").unwrap();
        a.observe(&[Look::Path("robots.txt".into())]).unwrap();
        a.push(&h1).unwrap();
        match waiter.join().unwrap() {
            proto::sitesync::LogRead::Entries { entries, .. } => {
                assert_eq!(entries.len(), 1);
                assert_eq!(entries[0].change.path, "robots.txt");
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(
            b.pull_wait(&h2, std::time::Duration::from_secs(30))
                .unwrap(),
            1
        );
        assert_eq!(
            std::fs::read(path.join("web-2/site/robots.txt")).unwrap(),
            b"User-agent: *"
        );
        // a server the plan does not grant the site reaches nothing
        let c = proto::sitesync::Change {
            id: "web-9.1".into(),
            path: "wp-content/uploads/a.bin".into(),
            base: None,
            op: proto::sitesync::Op::Delete,
        };
        assert!(matches!(h9.push(SITE, &c), Err(HubError::Refused(_))));
        assert!(matches!(h9.manifest(SITE), Err(HubError::Refused(_))));
        assert!(matches!(
            h1.manifest("other.example"),
            Err(HubError::Refused(_))
        ));
        // a path trying to leave the site is refused before the hub looks at it
        let evil = proto::sitesync::Change {
            path: "../../etc/passwd".into(),
            id: "web-1.evil".into(),
            ..c
        };
        assert!(matches!(h1.push(SITE, &evil), Err(HubError::Refused(_))));
        // content gone from the hub is a 404, not an error of the transport
        assert!(matches!(
            h1.read_blob(SITE, &"00".repeat(32), 0, 10),
            Err(HubError::NotFound(_))
        ));
    })
    .await
    .unwrap();
    let _ = stop.send(());
    server.await.unwrap();
    assert_eq!(hub.manifest(SITE).unwrap().seq, 4);
}

/// A `Dir` put at `path` of `site` by `id` (no blob needed).
fn mkdir(id: &str, path: &str) -> proto::sitesync::Change {
    proto::sitesync::Change {
        id: id.into(),
        path: path.into(),
        base: None,
        op: proto::sitesync::Op::Put {
            node: proto::sitesync::Node::Dir { mode: 0o755 },
        },
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_wait_covers_many_sites_and_names_the_ones_not_granted() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = HubConfig::new(dir.path().join("hub"));
    cfg.reserve_bytes = 0;
    let hub = Arc::new(Hub::open(cfg).unwrap());
    let mine: BTreeSet<String> = (0..50).map(|i| format!("s{i}.example")).collect();
    hub.set_grants([("web-1".into(), mine.clone()), ("web-2".into(), mine)].into());
    let pki = Pki::new();
    let listener = tokio::net::TcpListener::bind("127.0.6.2:0").await.unwrap();
    let base = format!("https://{}", listener.local_addr().unwrap());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(run_hub_server(
        listener,
        server_config(&pki, "127.0.6.2"),
        hub.clone(),
        async {
            let _ = stopped.await;
        },
    ));
    let (h1, h2) = (client(&pki, &base, "web-1"), client(&pki, &base, "web-2"));
    tokio::task::spawn_blocking(move || {
        use std::collections::BTreeMap;
        use std::time::{Duration, Instant};
        h1.push("s7.example", &mkdir("web-1.1", "a")).unwrap();
        let mut ask: BTreeMap<String, u64> =
            (0..50).map(|i| (format!("s{i}.example"), 0)).collect();
        ask.insert("stranger.example".into(), 0);
        // at once: the one site with entries after 0, with its head; the stranger named
        let a = h2.wait_many(&ask, Duration::from_secs(30)).unwrap();
        assert_eq!(a.ready, [("s7.example".to_string(), 1)].into());
        assert_eq!(a.denied, vec!["stranger.example".to_string()]);
        // asked after the head: the wait answers as soon as another site grows
        ask.insert("s7.example".into(), 1);
        let waiter = {
            let (h2, ask) = (h2.clone(), ask.clone());
            std::thread::spawn(move || {
                let t = Instant::now();
                (
                    h2.wait_many(&ask, Duration::from_secs(30)).unwrap(),
                    t.elapsed(),
                )
            })
        };
        std::thread::sleep(Duration::from_millis(300));
        h1.push("s42.example", &mkdir("web-1.2", "b")).unwrap();
        let (a, took) = waiter.join().unwrap();
        assert_eq!(a.ready, [("s42.example".to_string(), 1)].into());
        assert!(took < Duration::from_secs(20), "{took:?}");
        // nothing new: an empty answer after the wait
        ask.insert("s42.example".into(), 1);
        let a = h2.wait_many(&ask, Duration::from_secs(1)).unwrap();
        assert!(a.ready.is_empty(), "{a:?}");
    })
    .await
    .unwrap();
    // bad bodies are refused with 400 before the hub looks at them
    let c = pki.sign("web-1", vec![], ExtendedKeyUsagePurpose::ClientAuth);
    let mut pem = c.cert_pem.clone();
    pem.push_str(&c.key_pem);
    let raw = reqwest::Client::builder()
        .use_rustls_tls()
        .tls_built_in_root_certs(false)
        .add_root_certificate(reqwest::Certificate::from_pem(pki.ca_pem.as_bytes()).unwrap())
        .identity(reqwest::Identity::from_pem(pem.as_bytes()).unwrap())
        .build()
        .unwrap();
    for body in [
        &br#"{"sites":{"../etc":0},"wait_secs":1}"#[..],
        br#"{"sites":{"a":0},"wait_secs":600}"#,
        b"[",
    ] {
        let r = raw
            .post(format!("{base}/v1/sitesync/wait"))
            .body(body.to_vec())
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 400, "{}", String::from_utf8_lossy(body));
    }
    let _ = stop.send(());
    server.await.unwrap();
}
