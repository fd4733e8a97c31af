//! Access and error logs.
//!
//! Request handlers never touch log files: they send lines to one writer task over a
//! bounded channel (a full channel drops the line and counts it, so logging can never
//! stall serving). The writer appends to `<dir>/<domain>.access.log` (NCSA combined
//! format) and `<dir>/error.log`, flushing after every batch. Error lines also go to
//! `tracing`.

use std::collections::HashMap;
use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use tokio::sync::mpsc;

/// Lines queued before new ones are dropped.
const QUEUE: usize = 16 * 1024;

enum Line {
    Access { domain: Arc<str>, line: String },
    Error(String),
}

/// Handle to the log writer; cheap to clone. A `Logs` without a directory only
/// forwards errors to `tracing`.
#[derive(Clone, Default)]
pub struct Logs {
    tx: Option<mpsc::Sender<Line>>,
    access: bool,
    dropped: Arc<AtomicU64>,
}

impl std::fmt::Debug for Logs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Logs")
            .field("files", &self.tx.is_some())
            .field("access", &self.access)
            .finish()
    }
}

/// One request, as the access log records it.
#[derive(Debug)]
pub struct AccessRecord {
    /// Client address.
    pub remote: SocketAddr,
    /// `GET /path?q HTTP/1.1`
    pub request_line: String,
    /// Response status.
    pub status: u16,
    /// Body bytes sent.
    pub bytes: u64,
    /// `Referer` header, if any.
    pub referer: Option<String>,
    /// `User-Agent` header, if any.
    pub user_agent: Option<String>,
}

impl AccessRecord {
    /// The combined-format line (without newline).
    pub fn combined(&self, now: time::OffsetDateTime) -> String {
        let fmt = time::macros::format_description!(
            "[day]/[month repr:short]/[year]:[hour]:[minute]:[second] +0000"
        );
        let when = now
            .to_offset(time::UtcOffset::UTC)
            .format(&fmt)
            .unwrap_or_default();
        format!(
            "{} - - [{when}] \"{}\" {} {} \"{}\" \"{}\"",
            self.remote.ip(),
            escape(&self.request_line),
            self.status,
            self.bytes,
            escape(self.referer.as_deref().unwrap_or("-")),
            escape(self.user_agent.as_deref().unwrap_or("-")),
        )
    }
}

/// Escape `"`, `\` and control characters so a client cannot forge log lines.
fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if c.is_control() => out.push_str(&format!("\\x{:02x}", u32::from(c))),
            c => out.push(c),
        }
    }
    out
}

impl Logs {
    /// Start the writer task appending under `dir` (created if missing). With
    /// `access` false only the error log is written (e.g. for benchmarks).
    pub fn start(dir: PathBuf, access: bool) -> Self {
        let (tx, rx) = mpsc::channel(QUEUE);
        tokio::spawn(writer(dir, rx));
        Self {
            tx: Some(tx),
            access,
            dropped: Arc::new(AtomicU64::new(0)),
        }
    }

    /// Whether access lines are recorded.
    pub fn access_enabled(&self) -> bool {
        self.access && self.tx.is_some()
    }

    /// Record a request of `domain`.
    pub fn access(&self, domain: Arc<str>, rec: &AccessRecord) {
        if !self.access_enabled() {
            return;
        }
        let line = rec.combined(time::OffsetDateTime::now_utc());
        self.send(Line::Access { domain, line });
    }

    /// Record an error (also logged through `tracing`).
    pub fn error(&self, msg: impl Into<String>) {
        let msg = msg.into();
        tracing::warn!(target: "role_web::error_log", "{msg}");
        if self.tx.is_some() {
            let fmt =
                time::macros::format_description!("[year]/[month]/[day] [hour]:[minute]:[second]");
            let when = time::OffsetDateTime::now_utc()
                .format(&fmt)
                .unwrap_or_default();
            self.send(Line::Error(format!("{when} [error] {}", escape(&msg))));
        }
    }

    /// Lines dropped because the writer fell behind.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    fn send(&self, line: Line) {
        if let Some(tx) = &self.tx {
            if tx.try_send(line).is_err() {
                self.dropped.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}

async fn writer(dir: PathBuf, mut rx: mpsc::Receiver<Line>) {
    let mut files: HashMap<String, std::io::BufWriter<std::fs::File>> = HashMap::new();
    let mut batch = Vec::with_capacity(256);
    loop {
        batch.clear();
        if rx.recv_many(&mut batch, 256).await == 0 {
            return;
        }
        let dir = dir.clone();
        let lines = std::mem::take(&mut batch);
        // File writes are blocking; keep them off the async threads.
        let result = tokio::task::spawn_blocking(move || {
            let mut files = files;
            write_batch(&dir, &mut files, &lines);
            (files, lines)
        })
        .await;
        match result {
            Ok((f, l)) => {
                files = f;
                batch = l;
            }
            Err(_) => return,
        }
    }
}

fn write_batch(
    dir: &std::path::Path,
    files: &mut HashMap<String, std::io::BufWriter<std::fs::File>>,
    lines: &[Line],
) {
    for line in lines {
        let (name, text) = match line {
            Line::Access { domain, line } => (format!("{domain}.access.log"), line),
            Line::Error(line) => ("error.log".to_string(), line),
        };
        if !files.contains_key(&name) {
            match open_log(dir, &name) {
                Ok(f) => {
                    files.insert(name.clone(), std::io::BufWriter::new(f));
                }
                Err(e) => {
                    tracing::error!(file = %dir.join(&name).display(), error = %e, "cannot open log");
                    continue;
                }
            }
        }
        if let Some(f) = files.get_mut(&name) {
            let _ = writeln!(f, "{text}");
        }
    }
    for f in files.values_mut() {
        let _ = f.flush();
    }
}

fn open_log(dir: &std::path::Path, name: &str) -> std::io::Result<std::fs::File> {
    std::fs::create_dir_all(dir)?;
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join(name))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn combined_format_escapes_quotes() {
        let rec = AccessRecord {
            remote: "127.0.0.9:5555".parse().unwrap(),
            request_line: "GET /a\"b HTTP/1.1".into(),
            status: 200,
            bytes: 12,
            referer: None,
            user_agent: Some("curl/7.88.1".into()),
        };
        let now = time::macros::datetime!(2026-11-26 01:02:03 UTC);
        assert_eq!(
            rec.combined(now),
            "127.0.0.9 - - [26/Nov/2026:01:02:03 +0000] \"GET /a\\\"b HTTP/1.1\" 200 12 \"-\" \"curl/7.88.1\""
        );
    }
}
