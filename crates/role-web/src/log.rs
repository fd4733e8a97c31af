//! Access, error and PHP logs, per site, rotated by size and age.
//!
//! Request handlers never touch log files: they append lines to one shared in-memory
//! buffer (a full buffer drops the line and counts it, so logging can never stall
//! serving), and one writer task takes the whole buffer every [`FLUSH_EVERY`], or
//! sooner once [`FLUSH_LINES`] lines wait. A request costs a lock and a push, not a
//! wake-up of another thread: waking the writer per line cost a third of the
//! engine's CPU in context switches. At most that much (100 ms or 512 lines) is
//! lost if the process is killed. The writer appends to `<dir>/<domain>.access.log` (NCSA combined
//! format), `<dir>/<domain>.error.log` (the engine's errors about the site),
//! `<dir>/<domain>.php.log` (what PHP wrote to stderr: warnings, fatal errors,
//! `error_log()`) and the server-wide `<dir>/error.log`, flushing after every batch.
//! Error lines also go to `tracing`.
//!
//! **Rotation** ([`Rotation`]): a file over `max_bytes`, or older than `max_age`,
//! is renamed to `NAME.1` (older ones shift up to `NAME.<keep>`, the oldest is
//! deleted) before the next line is written. Only the writer writes these files,
//! so rotation needs no lock; `logread` reads the current and rotated files.

use std::collections::HashMap;
use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use proto::agent_ops::LogKind;

/// Lines buffered before new ones are dropped (the writer fell behind).
const QUEUE: usize = 16 * 1024;

/// The writer takes the buffer at least this often.
pub const FLUSH_EVERY: std::time::Duration = std::time::Duration::from_millis(100);

/// ... and as soon as this many lines wait.
pub const FLUSH_LINES: usize = 512;

/// What the handles and the writer share.
struct Buffer {
    lines: std::sync::Mutex<Vec<Line>>,
    /// Wakes the writer early (a full batch).
    full: tokio::sync::Notify,
}

/// When log files are rotated and how many old ones are kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rotation {
    /// A file reaching this size is rotated.
    pub max_bytes: u64,
    /// A file started longer ago than this is rotated (at its next line).
    pub max_age: std::time::Duration,
    /// Rotated files kept (`NAME.1` … `NAME.<keep>`).
    pub keep: u32,
}

impl Default for Rotation {
    /// 64 MiB or one day, a week of old files: a busy site's access log stays
    /// readable and a quiet site's still rotates daily.
    fn default() -> Self {
        Self {
            max_bytes: 64 << 20,
            max_age: std::time::Duration::from_secs(24 * 3600),
            keep: 7,
        }
    }
}

/// The time format of error, PHP and cron lines (`2026/11/26 01:02:03`), also
/// parsed by `logread`.
pub(crate) const ERROR_TIME: &[time::format_description::FormatItem<'static>] =
    time::macros::format_description!("[year]/[month]/[day] [hour]:[minute]:[second]");

enum Line {
    /// A line of one of a site's logs.
    Site {
        domain: Arc<str>,
        kind: LogKind,
        line: String,
    },
    Error(String),
}

/// Handle to the log writer; cheap to clone. A `Logs` without a directory only
/// forwards errors to `tracing`.
#[derive(Clone, Default)]
pub struct Logs {
    buf: Option<Arc<Buffer>>,
    access: bool,
    dropped: Arc<AtomicU64>,
}

/// One site's error and PHP logs: what a request handler or the FastCGI client
/// holds while it serves the site. `who` (`domain [pool user]`) prefixes the
/// server-wide error log's copy of each line.
#[derive(Clone, Debug)]
pub struct SiteLog {
    logs: Logs,
    domain: Arc<str>,
    who: Arc<str>,
}

impl SiteLog {
    /// An engine error about the site: to its error log and the server's.
    pub fn error(&self, msg: impl AsRef<str>) {
        let msg = msg.as_ref();
        self.logs.error(format!("{}: {msg}", self.who));
        self.logs.site_line(
            &self.domain,
            LogKind::Error,
            format!("[error] {}", escape(msg)),
        );
    }

    /// A line PHP wrote to stderr: to the site's PHP log and the server's error log.
    pub fn php(&self, line: &str) {
        self.logs.error(format!("{}: php: {line}", self.who));
        self.logs
            .site_line(&self.domain, LogKind::Php, escape(line));
    }

    /// `domain [user]`, for messages that go to `tracing` only.
    pub fn who(&self) -> &str {
        &self.who
    }
}

impl std::fmt::Debug for Logs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Logs")
            .field("files", &self.buf.is_some())
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
        // One format per second per thread, not one per request.
        thread_local! {
            static STAMP: std::cell::RefCell<(i64, String)> = const { std::cell::RefCell::new((i64::MIN, String::new())) };
        }
        let when = STAMP.with(|c| {
            let mut c = c.borrow_mut();
            let second = now.unix_timestamp();
            if c.0 != second {
                *c = (
                    second,
                    now.to_offset(time::UtcOffset::UTC)
                        .format(&fmt)
                        .unwrap_or_default(),
                );
            }
            c.1.clone()
        });
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
        Self::start_with(dir, access, Rotation::default())
    }

    /// [`Logs::start`] with explicit rotation.
    pub fn start_with(dir: PathBuf, access: bool, rotation: Rotation) -> Self {
        let buf = Arc::new(Buffer {
            lines: std::sync::Mutex::new(Vec::with_capacity(FLUSH_LINES)),
            full: tokio::sync::Notify::new(),
        });
        tokio::spawn(writer(dir, rotation, buf.clone()));
        Self {
            buf: Some(buf),
            access,
            dropped: Arc::new(AtomicU64::new(0)),
        }
    }

    /// Whether access lines are recorded.
    pub fn access_enabled(&self) -> bool {
        self.access && self.buf.is_some()
    }

    /// Record a request of `domain`.
    pub fn access(&self, domain: Arc<str>, rec: &AccessRecord) {
        if !self.access_enabled() {
            return;
        }
        let line = rec.combined(time::OffsetDateTime::now_utc());
        self.send(Line::Site {
            domain,
            kind: LogKind::Access,
            line,
        });
    }

    /// The error and PHP logs of site `domain` (`who`: `domain [pool user]`).
    pub fn site(&self, domain: Arc<str>, who: impl Into<Arc<str>>) -> SiteLog {
        SiteLog {
            logs: self.clone(),
            domain,
            who: who.into(),
        }
    }

    /// Append `text` to log `kind` of site `domain`, time-stamped now.
    pub fn site_line(&self, domain: &Arc<str>, kind: LogKind, text: String) {
        if self.buf.is_none() {
            return;
        }
        let when = time::OffsetDateTime::now_utc()
            .format(ERROR_TIME)
            .unwrap_or_default();
        self.send(Line::Site {
            domain: domain.clone(),
            kind,
            line: format!("{when} {text}"),
        });
    }

    /// Record an error (also logged through `tracing`).
    pub fn error(&self, msg: impl Into<String>) {
        let msg = msg.into();
        tracing::warn!(target: "role_web::error_log", "{msg}");
        if self.buf.is_some() {
            let when = time::OffsetDateTime::now_utc()
                .format(ERROR_TIME)
                .unwrap_or_default();
            self.send(Line::Error(format!("{when} [error] {}", escape(&msg))));
        }
    }

    /// Lines dropped because the writer fell behind.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    fn send(&self, line: Line) {
        if let Some(buf) = &self.buf {
            let mut lines = buf.lines.lock().unwrap_or_else(|e| e.into_inner());
            if lines.len() >= QUEUE {
                drop(lines);
                self.dropped.fetch_add(1, Ordering::Relaxed);
                return;
            }
            lines.push(line);
            if lines.len() == FLUSH_LINES {
                drop(lines);
                buf.full.notify_one();
            }
        }
    }
}

async fn writer(dir: PathBuf, rotation: Rotation, buf: Arc<Buffer>) {
    let mut files: HashMap<String, Open> = HashMap::new();
    let mut spare: Vec<Line> = Vec::with_capacity(FLUSH_LINES);
    loop {
        // Every handle gone (the engine stopped): write what is left, then end.
        let last = Arc::strong_count(&buf) == 1;
        if !last {
            let _ = tokio::time::timeout(FLUSH_EVERY, buf.full.notified()).await;
        }
        let lines = {
            let mut b = buf.lines.lock().unwrap_or_else(|e| e.into_inner());
            std::mem::replace(&mut *b, spare)
        };
        if lines.is_empty() {
            spare = lines;
            if last {
                return;
            }
            continue;
        }
        let dir = dir.clone();
        // File writes are blocking; keep them off the async threads.
        let result = tokio::task::spawn_blocking(move || {
            let mut files = files;
            write_batch(&dir, rotation, &mut files, &lines);
            let mut lines = lines;
            lines.clear();
            (files, lines)
        })
        .await;
        match result {
            Ok((f, l)) => {
                files = f;
                spare = l;
            }
            Err(_) => return,
        }
        if last {
            return;
        }
    }
}

/// An open log file and what rotation needs to know of it.
struct Open {
    w: std::io::BufWriter<std::fs::File>,
    size: u64,
    started: std::time::SystemTime,
}

/// The file name of log `kind` of `domain`.
pub(crate) fn site_file(domain: &str, kind: LogKind) -> String {
    format!("{domain}.{}.log", kind.as_str())
}

fn write_batch(
    dir: &std::path::Path,
    rotation: Rotation,
    files: &mut HashMap<String, Open>,
    lines: &[Line],
) {
    let now = std::time::SystemTime::now();
    for line in lines {
        let (name, text) = match line {
            Line::Site { domain, kind, line } => (site_file(domain, *kind), line),
            Line::Error(line) => ("error.log".to_string(), line),
        };
        let due = files.get(&name).is_some_and(|f| {
            f.size > 0
                && (f.size + text.len() as u64 + 1 > rotation.max_bytes
                    || now
                        .duration_since(f.started)
                        .is_ok_and(|age| age > rotation.max_age))
        });
        if due {
            if let Some(mut f) = files.remove(&name) {
                let _ = f.w.flush();
            }
            if let Err(e) = rotate(dir, &name, rotation.keep) {
                tracing::error!(file = %dir.join(&name).display(), error = %e, "cannot rotate log");
            }
        }
        if !files.contains_key(&name) {
            match open_log(dir, &name) {
                Ok(f) => {
                    files.insert(name.clone(), f);
                }
                Err(e) => {
                    tracing::error!(file = %dir.join(&name).display(), error = %e, "cannot open log");
                    continue;
                }
            }
        }
        if let Some(f) = files.get_mut(&name) {
            if writeln!(f.w, "{text}").is_ok() {
                f.size += text.len() as u64 + 1;
            }
        }
    }
    for f in files.values_mut() {
        let _ = f.w.flush();
    }
}

/// Append one line (time-stamped now) to log `kind` of `domain` in `dir` from
/// outside the writer task (the sendmail socket's refusals). `O_APPEND` keeps the
/// line whole beside the writer's; rotation stays the writer's.
pub fn append_site_line(
    dir: &std::path::Path,
    domain: &str,
    kind: LogKind,
    text: &str,
) -> std::io::Result<()> {
    let when = time::OffsetDateTime::now_utc()
        .format(ERROR_TIME)
        .unwrap_or_default();
    std::fs::create_dir_all(dir)?;
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join(site_file(domain, kind)))?;
    f.write_all(format!("{when} {}\n", escape(text)).as_bytes())
}

/// Rotate `dir/name` first if it is due by `rotation` (for logs written outside
/// the writer task, e.g. the cron runner's, under their writer's own lock).
pub(crate) fn rotate_if_due(dir: &std::path::Path, name: &str, rotation: Rotation) {
    let Ok(meta) = std::fs::metadata(dir.join(name)) else {
        return;
    };
    let age = meta
        .created()
        .or_else(|_| meta.modified())
        .ok()
        .and_then(|t| t.elapsed().ok());
    let due = meta.len() > 0
        && (meta.len() >= rotation.max_bytes || age.is_some_and(|a| a > rotation.max_age));
    if due {
        if let Err(e) = rotate(dir, name, rotation.keep) {
            tracing::error!(file = %dir.join(name).display(), error = %e, "cannot rotate log");
        }
    }
}

/// `NAME` → `NAME.1`, `NAME.1` → `NAME.2` … dropping `NAME.<keep>`.
fn rotate(dir: &std::path::Path, name: &str, keep: u32) -> std::io::Result<()> {
    let path = |i: u32| dir.join(format!("{name}.{i}"));
    if keep == 0 {
        return std::fs::remove_file(dir.join(name));
    }
    match std::fs::remove_file(path(keep)) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    for i in (1..keep).rev() {
        match std::fs::rename(path(i), path(i + 1)) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
    }
    std::fs::rename(dir.join(name), path(1))
}

fn open_log(dir: &std::path::Path, name: &str) -> std::io::Result<Open> {
    std::fs::create_dir_all(dir)?;
    let file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join(name))?;
    let meta = file.metadata()?;
    // A file kept from before a restart: its age counts from its creation (or,
    // where the file system does not record it, from its last change).
    let started = if meta.len() == 0 {
        std::time::SystemTime::now()
    } else {
        meta.created()
            .or_else(|_| meta.modified())
            .unwrap_or_else(|_| std::time::SystemTime::now())
    };
    Ok(Open {
        w: std::io::BufWriter::new(file),
        size: meta.len(),
        started,
    })
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
