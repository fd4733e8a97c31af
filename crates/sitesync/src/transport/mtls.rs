//! HTTP/1.1 over TLS with verified client certificates: the accept loop of the site-file
//! hub ([`super::server::run_hub_server`]), kept apart from its request handler so any
//! mutual-TLS endpoint can reuse it. The caller's identity is the
//! common name of the client certificate the handshake verified (the `ServerConfig` must
//! require one from the cluster CA); a handshake that fails or takes over 10 s ends the
//! connection without a request.

use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use http::{Request, Response};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use rustls::ServerConfig;
use tokio::net::TcpListener;
use tokio::task::JoinSet;
use tokio_rustls::TlsAcceptor;

/// How long a client has to finish the TLS handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// The common name of the client certificate the handshake verified.
pub fn peer_name(tls: &tokio_rustls::server::TlsStream<tokio::net::TcpStream>) -> Option<Arc<str>> {
    let cert = tls.get_ref().1.peer_certificates()?.first()?;
    let (_, parsed) = x509_parser::parse_x509_certificate(cert.as_ref()).ok()?;
    let cn = parsed.subject().iter_common_name().next()?.as_str().ok()?;
    Some(Arc::from(cn))
}

/// Serves `handler` on `listener` with `tls` until `shutdown` resolves; each request is
/// passed with the caller's certificate name. `label` names the service in log lines.
pub async fn serve_mutual_tls<H, Fut, B>(
    listener: TcpListener,
    tls: Arc<ServerConfig>,
    label: &'static str,
    handler: H,
    shutdown: impl Future<Output = ()>,
) where
    H: Fn(Option<Arc<str>>, Request<Incoming>) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = Response<B>> + Send + 'static,
    B: hyper::body::Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let acceptor = TlsAcceptor::from(tls);
    let mut conns = JoinSet::new();
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            _ = &mut shutdown => break,
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
            accepted = listener.accept() => {
                let Ok((tcp, peer)) = accepted else {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                };
                let (acceptor, handler) = (acceptor.clone(), handler.clone());
                conns.spawn(async move {
                    let tls = match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
                        Ok(Ok(s)) => s,
                        Ok(Err(e)) => {
                            tracing::info!(%peer, error = %e, "{label}: TLS handshake refused");
                            return;
                        }
                        Err(_) => return,
                    };
                    let client = peer_name(&tls);
                    let svc = hyper::service::service_fn(move |req| {
                        let fut = handler(client.clone(), req);
                        async move { Ok::<_, Infallible>(fut.await) }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(tls), svc)
                        .await;
                });
            }
        }
    }
    conns.abort_all();
}
