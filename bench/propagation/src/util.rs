//! Helpers of the benchmark: process figures, percentiles, HTTP calls, a bounded
//! parallel runner and a counter of the agents' WARN/ERROR log events.

use anyhow::{bail, Result};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

pub fn rss_kib(pid: u32) -> (u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

pub fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "?".into())
}

pub fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let idx = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[idx]
}

pub fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

pub async fn send_json<T: serde::Serialize>(
    c: &reqwest::Client,
    method: reqwest::Method,
    url: &str,
    body: &T,
) -> Result<reqwest::Response> {
    let r = c.request(method.clone(), url).json(body).send().await?;
    if !r.status().is_success() {
        bail!(
            "{method} {url}: {} {}",
            r.status(),
            r.text().await.unwrap_or_default()
        );
    }
    Ok(r)
}

/// POST and read the answer to its end: an HTTP/2 response dropped unread resets its
/// stream, and h2 ends the connection after 1,024 such resets
/// (`too_many_internal_resets`), which broke the 100,000-domain setup.
pub async fn post<T: serde::Serialize>(c: &reqwest::Client, url: &str, body: &T) -> Result<()> {
    send_json(c, reqwest::Method::POST, url, body)
        .await?
        .bytes()
        .await?;
    Ok(())
}

/// Run `make(i)` for `i in 0..total` with at most `n` in flight; returns elapsed time.
pub async fn run_parallel<F, Fut>(total: usize, n: usize, make: F) -> Result<Duration>
where
    F: Fn(usize) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = Result<()>> + Send + 'static,
{
    let make = Arc::new(make);
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let start = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..n {
        let make = make.clone();
        let next = next.clone();
        tasks.push(tokio::spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= total {
                    return Ok::<(), anyhow::Error>(());
                }
                make(i).await?;
            }
        }));
    }
    for t in tasks {
        t.await??;
    }
    Ok(start.elapsed())
}

/// Counts the WARN and ERROR events of the agents in this process.
#[derive(Default)]
pub struct Counter {
    /// WARN events.
    pub warn: AtomicU64,
    /// ERROR events.
    pub error: AtomicU64,
}

pub struct CountLayer(pub Arc<Counter>);

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for CountLayer {
    fn on_event(
        &self,
        event: &tracing::Event<'_>,
        _ctx: tracing_subscriber::layer::Context<'_, S>,
    ) {
        match *event.metadata().level() {
            tracing::Level::WARN => self.0.warn.fetch_add(1, Ordering::Relaxed),
            tracing::Level::ERROR => self.0.error.fetch_add(1, Ordering::Relaxed),
            _ => 0,
        };
    }
}
