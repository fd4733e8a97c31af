//! Sockets: UDP and TCP listeners answering from the current [`ZoneSet`].
//!
//! Each packet reads the zone set once (an `Arc` clone out of the watch channel), so a
//! new set published by the controller takes effect on the next query and no query is
//! ever dropped or answered from a half-updated set.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::sync::{watch, Semaphore};
use tokio::task::JoinSet;

use crate::lookup::{handle, Transport};
use crate::zone::ZoneSet;

/// Tunables of the socket layer.
#[derive(Clone, Debug)]
pub struct ServerOptions {
    /// A TCP connection with no complete query for this long is closed.
    pub tcp_idle_timeout: Duration,
    /// At most this many TCP connections are served at once; extra ones are closed.
    pub max_tcp_connections: usize,
}

impl Default for ServerOptions {
    fn default() -> Self {
        Self {
            tcp_idle_timeout: Duration::from_secs(10),
            max_tcp_connections: 1024,
        }
    }
}

/// Serves DNS on `udp` and `tcp` until `shutdown` completes, with default options.
///
/// `zones` is the live zone set: sending a new `Arc<ZoneSet>` adds, changes or removes
/// zones without a restart. Returns once `shutdown` resolves; open TCP connections are
/// closed then.
pub async fn run(
    udp: UdpSocket,
    tcp: TcpListener,
    zones: watch::Receiver<Arc<ZoneSet>>,
    shutdown: impl Future<Output = ()>,
) {
    run_with_options(udp, tcp, zones, shutdown, ServerOptions::default()).await;
}

/// [`run`] with explicit [`ServerOptions`].
pub async fn run_with_options(
    udp: UdpSocket,
    tcp: TcpListener,
    zones: watch::Receiver<Arc<ZoneSet>>,
    shutdown: impl Future<Output = ()>,
    options: ServerOptions,
) {
    tokio::select! {
        () = shutdown => {}
        () = serve_udp(&udp, zones.clone()) => {}
        () = serve_tcp(&tcp, zones, options) => {}
    }
}

/// Answers UDP queries forever.
async fn serve_udp(socket: &UdpSocket, zones: watch::Receiver<Arc<ZoneSet>>) {
    let mut buf = vec![0u8; usize::from(u16::MAX)];
    loop {
        let (len, peer) = match socket.recv_from(&mut buf).await {
            Ok(got) => got,
            Err(e) => {
                tracing::debug!(error = %e, "udp receive failed");
                tokio::task::yield_now().await;
                continue;
            }
        };
        let set = zones.borrow().clone();
        match handle(&set, &buf[..len], Transport::Udp) {
            Ok(Some(reply)) => {
                if let Err(e) = socket.send_to(&reply, peer).await {
                    tracing::debug!(%peer, error = %e, "udp send failed");
                }
            }
            Ok(None) => {}
            Err(e) => tracing::warn!(%peer, error = %e, "dropping udp query"),
        }
    }
}

/// Accepts TCP connections forever; dropping the future closes every connection.
async fn serve_tcp(
    listener: &TcpListener,
    zones: watch::Receiver<Arc<ZoneSet>>,
    options: ServerOptions,
) {
    let slots = Arc::new(Semaphore::new(options.max_tcp_connections));
    let mut connections = JoinSet::new();
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            Some(_) = connections.join_next(), if !connections.is_empty() => continue,
        };
        let (stream, peer) = match accepted {
            Ok(got) => got,
            Err(e) => {
                // Usually EMFILE: back off instead of spinning.
                tracing::warn!(error = %e, "tcp accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let Ok(permit) = Arc::clone(&slots).try_acquire_owned() else {
            tracing::debug!(%peer, "too many tcp connections, closing");
            continue;
        };
        let zones = zones.clone();
        let idle = options.tcp_idle_timeout;
        connections.spawn(async move {
            if let Err(e) = serve_connection(stream, zones, idle).await {
                tracing::debug!(%peer, error = %e, "tcp connection ended");
            }
            drop(permit);
        });
    }
}

/// Answers length-prefixed queries on one connection until EOF, error or idleness.
async fn serve_connection(
    mut stream: TcpStream,
    zones: watch::Receiver<Arc<ZoneSet>>,
    idle: Duration,
) -> std::io::Result<()> {
    let mut len_buf = [0u8; 2];
    let mut buf = Vec::new();
    loop {
        match tokio::time::timeout(idle, stream.read_exact(&mut len_buf)).await {
            Ok(Ok(_)) => {}
            Ok(Err(e)) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(()),
            Ok(Err(e)) => return Err(e),
            Err(_) => return Ok(()),
        }
        let len = usize::from(u16::from_be_bytes(len_buf));
        buf.resize(len, 0);
        match tokio::time::timeout(idle, stream.read_exact(&mut buf)).await {
            Ok(read) => {
                read?;
            }
            Err(_) => return Ok(()),
        }
        let set = zones.borrow().clone();
        let reply = match handle(&set, &buf, Transport::Tcp) {
            Ok(Some(reply)) => reply,
            Ok(None) => continue,
            Err(e) => {
                tracing::warn!(error = %e, "closing tcp connection after unanswerable query");
                return Ok(());
            }
        };
        let Ok(reply_len) = u16::try_from(reply.len()) else {
            return Ok(());
        };
        let mut framed = Vec::with_capacity(reply.len() + 2);
        framed.extend_from_slice(&reply_len.to_be_bytes());
        framed.extend_from_slice(&reply);
        match tokio::time::timeout(idle, stream.write_all(&framed)).await {
            Ok(written) => written?,
            Err(_) => return Ok(()),
        }
    }
}
