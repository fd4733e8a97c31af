//! The in-memory IMAP session driver: run a session against a byte script with no
//! socket and get the transcript, like [`crate::harness`] does for SMTP and POP3.

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::server::Shared;

/// Run one IMAP session fed with `script` (no TLS); returns what the server said.
pub async fn run(shared: &Arc<Shared>, script: &[u8]) -> String {
    let shared = Arc::clone(shared);
    let (server, mut client) = tokio::io::duplex(1 << 20);
    let peer = SocketAddr::from(([192, 0, 2, 9], 40001));
    let task = tokio::spawn(super::run(shared, Box::new(server), peer, false));
    let _ = client.write_all(script).await;
    let _ = client.shutdown().await;
    let mut out = Vec::new();
    let _ = client.read_to_end(&mut out).await;
    let _ = task.await;
    String::from_utf8_lossy(&out).into_owned()
}
