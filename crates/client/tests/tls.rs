//! HTTPS with our own CA: trusted only when the client is given that CA.

#![allow(clippy::unwrap_used)] // test helpers outside #[test] fns may panic

use client::Client;
use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
use rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};
use std::sync::Arc;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// A CA certificate (PEM) and a TLS server on 127.0.0.1 with a leaf signed by it.
async fn tls_server() -> (String, String) {
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca_cert = ca_params.self_signed(&ca_key).unwrap();
    let issuer = Issuer::new(ca_params, ca_key);
    let leaf_key = KeyPair::generate().unwrap();
    let leaf = CertificateParams::new(vec!["127.0.0.1".to_owned()])
        .unwrap()
        .signed_by(&leaf_key, &issuer)
        .unwrap();

    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(
            vec![leaf.der().clone()],
            PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(leaf_key.serialize_der())),
        )
        .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((sock, _)) = listener.accept().await else {
                return;
            };
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(mut tls) = acceptor.accept(sock).await else {
                    return;
                };
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
                    match tls.read(&mut chunk).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => buf.extend_from_slice(&chunk[..n]),
                    }
                }
                let body = r#"{"account":"admin","kind":"admin","token_id":"tok_1"}"#;
                let resp = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                tls.write_all(resp.as_bytes()).await.ok();
                tls.shutdown().await.ok();
            });
        }
    });
    (format!("https://{addr}"), ca_cert.pem())
}

#[tokio::test]
async fn trusts_exactly_the_given_ca() {
    let (url, ca_pem) = tls_server().await;

    let api = Client::new(&url, Some("t".into()), Some(ca_pem.as_bytes())).unwrap();
    let me = api.whoami().await.unwrap();
    assert_eq!(me.account, "admin");

    let untrusting = Client::new(&url, Some("t".into()), None).unwrap();
    let err = untrusting.whoami().await.unwrap_err();
    assert!(err.is_transport() && err.is_certificate_problem(), "{err}");

    let (_, other_ca) = tls_server().await;
    let wrong = Client::new(&url, Some("t".into()), Some(other_ca.as_bytes())).unwrap();
    let err = wrong.whoami().await.unwrap_err();
    assert!(err.is_certificate_problem(), "{err}");
}
