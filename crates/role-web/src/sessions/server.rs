//! The unix socket PHP reaches the store on. Each connection is identified once, by
//! the uid of the process at the other end (`SO_PEERCRED`): pools run as their site's
//! own user ([`crate::fpm`]), so the uid names the site and so the namespace, whatever
//! keys the site asks for. A uid that is no site's is answered with `-NOPERM` and
//! disconnected. Commands are answered in order; a write is applied, sent to the
//! cluster's other servers ([`super::peers`]), and only then acknowledged.

use std::sync::Arc;
use std::time::Instant;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use super::command::execute;
use super::resp::{parse, Reply, MAX_COMMAND};
use super::Shared;

/// Connections served at once (php-fpm keeps one per worker at most).
pub const MAX_CONNECTIONS: usize = 4096;

/// Serve `listener` until `shutdown` resolves.
pub async fn serve(
    listener: UnixListener,
    shared: Arc<Shared>,
    shutdown: impl std::future::Future<Output = ()>,
) {
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    let mut conns = JoinSet::new();
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            _ = &mut shutdown => break,
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
            accepted = listener.accept() => {
                let Ok((stream, _)) = accepted else {
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    continue;
                };
                let Ok(permit) = slots.clone().try_acquire_owned() else {
                    tracing::warn!("session store: too many connections, one refused");
                    continue;
                };
                let shared = shared.clone();
                conns.spawn(async move {
                    let _permit = permit;
                    if let Err(e) = connection(stream, shared).await {
                        tracing::debug!(error = %e, "session connection ended");
                    }
                });
            }
        }
    }
    conns.abort_all();
}

async fn connection(mut stream: UnixStream, shared: Arc<Shared>) -> std::io::Result<()> {
    let uid = stream.peer_cred()?.uid();
    let Some(site) = shared.site_of(uid) else {
        // Read the request first: closing with unread bytes would reset the
        // connection and lose the answer that says why.
        let mut chunk = [0u8; 4096];
        let _ =
            tokio::time::timeout(std::time::Duration::from_secs(1), stream.read(&mut chunk)).await;
        let mut out = Vec::new();
        Reply::Error(format!("NOPERM uid {uid} has no site on this server")).encode(&mut out);
        stream.write_all(&out).await?;
        stream.shutdown().await?;
        return Ok(());
    };
    shared.wait_ready().await;
    let mut buf: Vec<u8> = Vec::with_capacity(4096);
    let mut out = Vec::new();
    loop {
        // every complete command in the buffer, answered in order
        loop {
            let (args, used) = match parse(&buf) {
                Ok(Some(c)) => c,
                Ok(None) => break,
                Err(e) => {
                    Reply::Error(format!("ERR {e}")).encode(&mut out);
                    stream.write_all(&out).await?;
                    return Ok(());
                }
            };
            buf.drain(..used);
            let outcome = {
                let mut store = shared.lock_store();
                execute(&mut store, &site, &args, Instant::now())
            };
            if let Some(w) = &outcome.write {
                shared.replicator.send(&site, w).await;
            }
            outcome.reply.encode(&mut out);
            if outcome.close {
                stream.write_all(&out).await?;
                return Ok(());
            }
        }
        if !out.is_empty() {
            stream.write_all(&out).await?;
            out.clear();
        }
        // the parser refuses a command over MAX_COMMAND from its length lines, and
        // complete commands are consumed above: more is not a session client
        if buf.len() > MAX_COMMAND + 64 * 1024 {
            return Ok(());
        }
        let mut chunk = [0u8; 16 * 1024];
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            return Ok(());
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}
