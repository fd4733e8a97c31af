//! The in-memory session harness: run an SMTP or POP3 session against a byte
//! script with no socket, and get back everything the server said. Protocol unit
//! tests (and anyone debugging a transcript) use it.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use proto::agent_v1::MailConfig;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::plan::Plan;
use crate::queue::Queue;
use crate::server::{Limits, Live, Shared};
use crate::smtp::Mode;

/// Shared state for sessions over `state_dir` serving `cfg` (no TLS).
pub fn shared(state_dir: &Path, cfg: &MailConfig, limits: Limits) -> std::io::Result<Arc<Shared>> {
    let queue = Queue::open(&state_dir.join("queue"), None, "mx.test")?;
    let shared = Shared::new(state_dir.to_path_buf(), "mx.test".into(), limits, queue);
    let (plan, rejected) = Plan::render(cfg, &Plan::default());
    if let Some(r) = rejected.first() {
        return Err(std::io::Error::other(format!("{}: {}", r.object, r.reason)));
    }
    shared.set_live(Live {
        plan: Arc::new(plan),
        tls: None,
    });
    Ok(shared)
}

fn peer() -> SocketAddr {
    SocketAddr::from(([192, 0, 2, 7], 40000))
}

async fn drive<F, Fut>(script: &[u8], session: F) -> String
where
    F: FnOnce(Box<dyn crate::conn::Io>) -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let (server, mut client) = tokio::io::duplex(1 << 20);
    let task = tokio::spawn(session(Box::new(server)));
    let _ = client.write_all(script).await;
    let _ = client.shutdown().await;
    let mut out = Vec::new();
    let _ = client.read_to_end(&mut out).await;
    let _ = task.await;
    String::from_utf8_lossy(&out).into_owned()
}

/// Run one SMTP session in `mode` fed with `script`; returns the transcript of
/// replies.
pub async fn smtp(shared: &Arc<Shared>, mode: Mode, script: &[u8]) -> String {
    let shared = Arc::clone(shared);
    drive(script, move |io| {
        crate::smtp::run(shared, io, peer(), mode, false)
    })
    .await
}

/// Run one POP3 session fed with `script`.
pub async fn pop3(shared: &Arc<Shared>, script: &[u8]) -> String {
    let shared = Arc::clone(shared);
    drive(script, move |io| {
        crate::pop3::run(shared, io, peer(), false)
    })
    .await
}

/// The reply codes (first three characters of each final reply line) of a
/// transcript.
pub fn codes(transcript: &str) -> Vec<String> {
    transcript
        .lines()
        .filter(|l| l.as_bytes().get(3) != Some(&b'-'))
        .filter_map(|l| l.get(..3).map(str::to_string))
        .collect()
}
