//! The control socket of a running `hostplane up` (`<data_dir>/up.sock`) and the
//! client side used by `hostplane server stop NAME` / `server start NAME`.
//!
//! Protocol: one request line per connection, `stop NAME` or `start NAME`; one
//! answer line, `ok MESSAGE` or `err MESSAGE`. `up` stays the supervisor: it kills
//! and re-spawns the agent itself.

use anyhow::{bail, Context};
use std::path::{Path, PathBuf};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::{mpsc, oneshot};

use crate::cli::UpServerArg;
use crate::output::{print_json, Output};

/// Name of the control socket inside the data dir.
pub const SOCKET_FILE: &str = "up.sock";
/// Longest request line accepted.
const MAX_LINE: u64 = 512;

/// What a client asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Kill the server's agent.
    Stop,
    /// Start the server's agent again.
    Start,
}

/// One request, with the channel for its answer (`Ok(message)` or `Err(message)`).
#[derive(Debug)]
pub struct Request {
    /// What to do.
    pub action: Action,
    /// Server name.
    pub server: String,
    /// Where the answer goes.
    pub reply: oneshot::Sender<Result<String, String>>,
}

/// Parse a request line.
pub fn parse(line: &str) -> Result<(Action, String), String> {
    let mut words = line.split_whitespace();
    let action = match words.next() {
        Some("stop") => Action::Stop,
        Some("start") => Action::Start,
        Some(other) => return Err(format!("unknown request `{other}` (stop or start)")),
        None => return Err("empty request".into()),
    };
    match (words.next(), words.next()) {
        (Some(name), None) => Ok((action, name.to_owned())),
        _ => Err("expected `stop NAME` or `start NAME`".into()),
    }
}

/// Path of the control socket of a data dir.
pub fn socket_path(data_dir: &Path) -> PathBuf {
    data_dir.join(SOCKET_FILE)
}

/// Refuse to start when another `up` already serves this data dir; remove a stale
/// socket left by one that died.
pub async fn ensure_not_running(data_dir: &Path) -> anyhow::Result<()> {
    let path = socket_path(data_dir);
    if !path.exists() {
        return Ok(());
    }
    if UnixStream::connect(&path).await.is_ok() {
        bail!(
            "another `hostplane up` is already running with the data dir {} (stop it with Ctrl-C first)",
            data_dir.display()
        );
    }
    std::fs::remove_file(&path)
        .with_context(|| format!("cannot remove the stale socket {}", path.display()))?;
    Ok(())
}

/// Listen on the control socket; each request goes to `tx`. The socket is 0600.
pub fn listen(data_dir: &Path, tx: mpsc::Sender<Request>) -> anyhow::Result<()> {
    let path = socket_path(data_dir);
    let listener = UnixListener::bind(&path).with_context(|| {
        format!(
            "cannot listen on the control socket {} (a data dir path under ~100 characters is needed)",
            path.display()
        )
    })?;
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))
            .with_context(|| format!("cannot restrict {}", path.display()))?;
    }
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let tx = tx.clone();
            tokio::spawn(async move {
                if let Err(e) = serve_one(stream, tx).await {
                    tracing::debug!("control connection: {e}");
                }
            });
        }
    });
    Ok(())
}

async fn serve_one(stream: UnixStream, tx: mpsc::Sender<Request>) -> std::io::Result<()> {
    let (read, mut write) = stream.into_split();
    let mut line = String::new();
    BufReader::new(read.take(MAX_LINE))
        .read_line(&mut line)
        .await?;
    let answer = match parse(&line) {
        Err(e) => Err(e),
        Ok((action, server)) => {
            let (reply, rx) = oneshot::channel();
            let req = Request {
                action,
                server,
                reply,
            };
            if tx.send(req).await.is_err() {
                Err("`hostplane up` is shutting down".into())
            } else {
                rx.await
                    .unwrap_or_else(|_| Err("`hostplane up` is shutting down".into()))
            }
        }
    };
    let text = match answer {
        Ok(m) => format!("ok {m}\n"),
        Err(m) => format!("err {m}\n"),
    };
    write.write_all(text.as_bytes()).await?;
    write.shutdown().await
}

/// Which data dir `server stop/start` talks to: `--data-dir`, else the one of the
/// `up` that saved the CLI login.
fn resolve_data_dir(arg: &UpServerArg) -> anyhow::Result<PathBuf> {
    if let Some(d) = &arg.data_dir {
        return std::path::absolute(d).with_context(|| format!("bad data dir {}", d.display()));
    }
    match crate::login::load()?.and_then(|l| l.up_data_dir) {
        Some(d) => Ok(d),
        None => bail!(
            "`server stop` and `server start` control the servers of a running `hostplane up`, \
             and the CLI login was not saved by one; pass --data-dir DIR of the `up` \
             (for a real server, stop its agent with the service manager, or use `hostplane server drain`)"
        ),
    }
}

/// `hostplane server stop|start NAME`: ask the running `up` to do it.
pub async fn client_command(out: Output, verb: &str, arg: UpServerArg) -> anyhow::Result<()> {
    let data_dir = resolve_data_dir(&arg)?;
    let path = socket_path(&data_dir);
    let stream = match UnixStream::connect(&path).await {
        Ok(s) => s,
        Err(e)
            if matches!(
                e.kind(),
                std::io::ErrorKind::NotFound | std::io::ErrorKind::ConnectionRefused
            ) =>
        {
            bail!(
                "no `hostplane up` is running with the data dir {}: `server {verb}` works only \
                 while `hostplane up` runs (start it, or pass --data-dir of the one that runs)",
                data_dir.display()
            )
        }
        Err(e) => return Err(e).with_context(|| format!("cannot connect to {}", path.display())),
    };
    let (read, mut write) = stream.into_split();
    write
        .write_all(format!("{verb} {}\n", arg.name).as_bytes())
        .await?;
    write.shutdown().await?;
    let mut line = String::new();
    BufReader::new(read.take(4096))
        .read_line(&mut line)
        .await
        .context("no answer from `hostplane up`")?;
    let line = line.trim();
    if let Some(msg) = line.strip_prefix("ok ") {
        if out.json {
            return print_json(&serde_json::json!({
                "server": arg.name, "action": verb, "message": msg,
            }));
        }
        println!("{msg}");
        Ok(())
    } else if let Some(msg) = line.strip_prefix("err ") {
        bail!("{msg}")
    } else {
        bail!("unexpected answer from `hostplane up`: {line:?}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_parse() {
        assert_eq!(parse("stop web-1\n"), Ok((Action::Stop, "web-1".into())));
        assert_eq!(parse(" start ns1 "), Ok((Action::Start, "ns1".into())));
        assert!(parse("").is_err());
        assert!(parse("kill web-1").is_err());
        assert!(parse("stop").is_err());
        assert!(parse("stop a b").is_err());
    }
}
