//! Answering the controller's questions (the operations channel,
//! `proto::agent_ops`): an engine that can answer some ([`Op`]s) calls [`serve`]
//! with a handler; one task per controller long-polls `GET /v1/agent/ops` with the
//! agent's client certificate and posts each answer back. The handler runs on the
//! blocking pool (it reads files), one question at a time per controller, each
//! answer bounded by what the handler returns.
//!
//! Without an identity (tests without a controller) nothing is started.

use std::sync::Arc;
use std::time::Duration;

use proto::agent_ops::{Op, OpAnswer, OpRequest, MAX_WAIT_SECS, OPS_PATH};

use crate::supervisor::EngineContext;

/// What answers a question (runs on the blocking pool).
pub type Handler = Arc<dyn Fn(Op) -> OpAnswer + Send + Sync>;

/// How long a poll waits at the controller.
const WAIT: u64 = 25;

/// Start answering; the returned tasks stop when aborted (the engine's stop).
pub fn serve(ctx: &EngineContext, handler: Handler) -> Vec<tokio::task::JoinHandle<()>> {
    let timeout = Duration::from_secs(MAX_WAIT_SECS + 10);
    let Some(http) = crate::rehash::controller_client(ctx, ctx.bind, timeout) else {
        return Vec::new();
    };
    ctx.controllers
        .iter()
        .map(|base| {
            let base = base.trim_end_matches('/').to_owned();
            tokio::spawn(poll_loop(http.clone(), base, handler.clone()))
        })
        .collect()
}

async fn poll_loop(http: reqwest::Client, base: String, handler: Handler) {
    let mut backoff = Duration::from_secs(1);
    loop {
        match poll_once(&http, &base, &handler).await {
            Ok(()) => backoff = Duration::from_secs(1),
            Err(e) => {
                tracing::debug!(controller = %base, error = %e, "operations poll failed");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(15));
            }
        }
    }
}

async fn poll_once(http: &reqwest::Client, base: &str, handler: &Handler) -> Result<(), String> {
    let url = format!("{base}{OPS_PATH}?wait={WAIT}");
    let res = http.get(&url).send().await.map_err(|e| e.to_string())?;
    if !res.status().is_success() {
        return Err(format!("{url}: {}", res.status()));
    }
    let asks: Vec<OpRequest> = res.json().await.map_err(|e| e.to_string())?;
    for ask in asks {
        let h = handler.clone();
        let answer = tokio::task::spawn_blocking(move || h(ask.op))
            .await
            .unwrap_or_else(|e| OpAnswer::Error {
                message: format!("the answer failed: {e}"),
            });
        let url = format!("{base}{OPS_PATH}/{}", ask.id);
        let res = http
            .post(&url)
            .json(&answer)
            .send()
            .await
            .map_err(|e| e.to_string())?;
        if !res.status().is_success() {
            // The controller gave up waiting (or restarted): nothing to do.
            tracing::debug!(%url, status = %res.status(), "answer not taken");
        }
    }
    Ok(())
}
