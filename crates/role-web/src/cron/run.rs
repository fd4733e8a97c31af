//! One cron run: `php SCRIPT [ARGS]` as the site's user with its pool's settings,
//! or `GET /path` of the site on this engine; bounded by the site's timeout, its
//! output cut at [`MAX_OUTPUT`].

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;

use model::sitefiles::SitePath;
use tokio::io::{AsyncRead, AsyncReadExt as _, AsyncWriteExt as _};

use super::CronSite;
use crate::plan::PhpSite;

/// Bytes of a run's output kept for the log (stdout and stderr together); the
/// rest is read and dropped.
pub const MAX_OUTPUT: usize = 8 * 1024;

/// How a run ended, as the log says it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    /// `0`, `1` …, `killed (timeout after 30 s)`, `HTTP 200`, or why it did not start.
    pub status: String,
    /// The output kept (stdout then stderr; a GET: the status line and body).
    pub output: String,
    /// Whether output was dropped beyond [`MAX_OUTPUT`].
    pub truncated: bool,
}

impl Outcome {
    fn failed(why: impl Into<String>) -> Self {
        Self {
            status: format!("not started: {}", why.into()),
            output: String::new(),
            truncated: false,
        }
    }
}

/// util-linux `setsid`: runs a program in a new session.
const SETSID: &str = "/usr/bin/setsid";

/// The php-cli of a pool's version: `/usr/bin/phpX.Y`, else `/usr/bin/php`.
fn php_cli(version: Option<&str>) -> PathBuf {
    if let Some(v) = version {
        let p = PathBuf::from(format!("/usr/bin/php{v}"));
        if p.exists() {
            return p;
        }
    }
    PathBuf::from("/usr/bin/php")
}

/// The PHP settings site `p`'s pool runs with, as `key=value` pairs for php-cli's
/// `-d`: read from the very section [`crate::fpm::render_config`] writes for the
/// pool (`open_basedir`, temp and session paths, `disable_functions`, the site's
/// `php.ini` values), so a cron run and a request see the same settings.
pub fn pool_values(p: &PhpSite) -> Vec<(String, String)> {
    let config = crate::fpm::render_config(Path::new("/"), std::slice::from_ref(p), false);
    config
        .lines()
        .filter(|l| l.starts_with("php_"))
        .filter_map(|l| {
            let (directive, value) = l.split_once(" = ")?;
            let (_, key) = directive.split_once('[')?;
            let key = key.strip_suffix(']')?;
            Some((key.to_owned(), value.trim_matches('"').to_owned()))
        })
        .collect()
}

/// Kill process group `pgid` (0: none).
pub(super) fn kill_group(pgid: u32) {
    let Some(pid) = i32::try_from(pgid)
        .ok()
        .and_then(rustix::process::Pid::from_raw)
    else {
        return;
    };
    let _ = rustix::process::kill_process_group(pid, rustix::process::Signal::KILL);
}

/// Run `php SCRIPT ARGS` for `site`: no shell, the script inside the site's tree,
/// as the site's user (when the engine is root), with the pool's settings as `-d`
/// values, in the tree, in a process group of its own (`started` gets its id) that
/// is killed at the timeout.
pub(super) async fn php(
    site: &CronSite,
    script: &SitePath,
    args: &[String],
    started: impl FnOnce(u32),
) -> Outcome {
    let Some(pool) = &site.php else {
        return Outcome::failed(
            "PHP is off for this site (hostplane site update DOMAIN --php true)",
        );
    };
    let as_root = rustix::process::geteuid().is_root();
    let ids = match crate::fpm::lookup_user(&pool.user) {
        Some(ids) => Some(ids),
        None if as_root => {
            return Outcome::failed(format!("the site's user {} does not exist yet", pool.user))
        }
        None => None,
    };
    let path = site.tree.join(script.as_str());
    if !is_file_beneath(&site.tree, &path) {
        return Outcome::failed(format!("`{script}` is not a file inside the site"));
    }
    // A session (and process group) of its own, so the timeout kills the group and,
    // with its command line naming the engine's state dir, `hostplane up` and the
    // test kit find it as the server's even after the agent was killed: through
    // util-linux `setsid` (not a group leader, it calls setsid(2) and execs php in
    // place); without it, a process group of its own.
    let php = php_cli(pool.version.as_deref());
    let mut cmd = match Path::new(SETSID).exists() {
        true => {
            let mut c = tokio::process::Command::new(SETSID);
            c.arg(&php);
            c
        }
        false => {
            let mut c = tokio::process::Command::new(&php);
            c.process_group(0);
            c
        }
    };
    cmd.env_clear()
        .env("PATH", "/usr/local/bin:/usr/bin:/bin")
        .env("HOME", &pool.tmp_dir)
        .env("TMPDIR", &pool.tmp_dir);
    for (k, v) in pool_values(pool) {
        cmd.arg("-d").arg(format!("{k}={v}"));
    }
    cmd.arg("-f")
        .arg(&path)
        .arg("--")
        .args(args)
        .current_dir(&site.tree)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    if let (true, Some(ids)) = (as_root, ids) {
        cmd.uid(ids.uid).gid(ids.gid);
    }
    let mut child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) => return Outcome::failed(format!("php: {e}")),
    };
    let pgid = child.id().unwrap_or(0);
    started(pgid);
    let (out, err) = (child.stdout.take(), child.stderr.take());
    let reading = async {
        let (a, b) = tokio::join!(read_bounded(out), read_bounded(err));
        (a, b)
    };
    let waited = tokio::time::timeout(site.timeout, async {
        let (outputs, status) = tokio::join!(reading, child.wait());
        (outputs, status)
    })
    .await;
    match waited {
        Ok(((a, b), status)) => {
            let status = match status {
                Ok(s) => match s.code() {
                    Some(c) => c.to_string(),
                    None => format!("killed by signal ({s})"),
                },
                Err(e) => format!("unknown ({e})"),
            };
            // Anything the script left in its group goes with it.
            kill_group(pgid);
            joined(status, a, b)
        }
        Err(_) => {
            kill_group(pgid);
            let _ = child.wait().await;
            Outcome {
                status: format!("killed (timeout after {} s)", site.timeout.as_secs()),
                output: String::new(),
                truncated: false,
            }
        }
    }
}

/// Whether `path` is a regular file under `tree` once symlinks are resolved.
fn is_file_beneath(tree: &Path, path: &Path) -> bool {
    match (tree.canonicalize(), path.canonicalize()) {
        (Ok(t), Ok(p)) => p.starts_with(&t) && p.is_file(),
        _ => false,
    }
}

/// Up to [`MAX_OUTPUT`] bytes of `r`, the rest drained; whether any was dropped.
async fn read_bounded(r: Option<impl AsyncRead + Unpin>) -> (Vec<u8>, bool) {
    let Some(mut r) = r else {
        return (Vec::new(), false);
    };
    let mut kept = Vec::new();
    let mut buf = [0u8; 4096];
    let mut dropped = false;
    loop {
        match r.read(&mut buf).await {
            Ok(0) | Err(_) => return (kept, dropped),
            Ok(n) => {
                let room = MAX_OUTPUT.saturating_sub(kept.len());
                kept.extend_from_slice(&buf[..n.min(room)]);
                dropped |= n > room;
            }
        }
    }
}

fn joined(status: String, (a, da): (Vec<u8>, bool), (b, db): (Vec<u8>, bool)) -> Outcome {
    let mut all = a;
    all.extend_from_slice(&b);
    let truncated = da || db || all.len() > MAX_OUTPUT;
    all.truncate(MAX_OUTPUT);
    Outcome {
        status,
        output: String::from_utf8_lossy(&all).into_owned(),
        truncated,
    }
}

/// `GET path` of the site from this engine's plain HTTP listener, with the site's
/// host name; the status line and the body (bounded) are the output.
pub(super) async fn get(http: SocketAddr, site: &CronSite, path: &str) -> Outcome {
    let addr = match http.ip() {
        ip if ip.is_unspecified() => {
            SocketAddr::new(std::net::Ipv4Addr::LOCALHOST.into(), http.port())
        }
        _ => http,
    };
    let req = format!(
        "GET {path} HTTP/1.1\r\nHost: {}\r\nUser-Agent: hostplane-cron\r\nConnection: close\r\n\r\n",
        site.domain
    );
    let run = async {
        let mut s = tokio::net::TcpStream::connect(addr).await?;
        s.write_all(req.as_bytes()).await?;
        Ok::<_, std::io::Error>(read_bounded(Some(s)).await)
    };
    match tokio::time::timeout(site.timeout, run).await {
        Err(_) => Outcome {
            status: format!("killed (timeout after {} s)", site.timeout.as_secs()),
            output: String::new(),
            truncated: false,
        },
        Ok(Err(e)) => Outcome::failed(format!("GET: {e}")),
        Ok(Ok((bytes, dropped))) => {
            let text = String::from_utf8_lossy(&bytes).into_owned();
            let status = text
                .lines()
                .next()
                .and_then(|l| l.split_whitespace().nth(1))
                .map_or_else(|| "no HTTP answer".to_owned(), |c| format!("HTTP {c}"));
            let body = text.split_once("\r\n\r\n").map_or("", |x| x.1).to_owned();
            Outcome {
                status,
                output: body,
                truncated: dropped,
            }
        }
    }
}
