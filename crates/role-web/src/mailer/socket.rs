//! The sendmail socket: a unix socket every site's PHP may connect to. The site is
//! the one whose pool user has the peer's uid (`SO_PEERCRED`, from the kernel);
//! nothing the client sends can change that. The request ([`SendmailRequest`]) and
//! the message are read whole (bounded in size and time), prepared
//! ([`super::message`]), spooled and fsynced; only then the reply says `ok`.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use proto::sendmail::{SendmailReply, SendmailRequest, SENDMAIL_FORMAT};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};

use super::{Envelope, Shared, MAX_MESSAGE_BYTES};

/// How long a client may take to send its request and message.
const READ_TIMEOUT: Duration = Duration::from_secs(60);
/// Longest request line.
const MAX_REQUEST: u64 = 64 * 1024;
/// Connections served at once (more wait in the listen backlog).
const MAX_CONCURRENT: usize = 64;

/// Bind `path` (a stale socket file is replaced), mode 0666.
pub fn bind(path: &Path) -> std::io::Result<UnixListener> {
    use std::os::unix::fs::PermissionsExt;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
        _ => {}
    }
    let l = UnixListener::bind(path)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o666))?;
    Ok(l)
}

/// Accept and serve connections until the task is aborted.
pub(crate) async fn serve(listener: UnixListener, shared: Arc<Shared>) {
    let permits = Arc::new(tokio::sync::Semaphore::new(MAX_CONCURRENT));
    loop {
        let Ok(permit) = Arc::clone(&permits).acquire_owned().await else {
            return;
        };
        let stream = match listener.accept().await {
            Ok((s, _)) => s,
            Err(e) => {
                tracing::warn!(error = %e, "sendmail socket accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let shared = Arc::clone(&shared);
        tokio::spawn(async move {
            connection(stream, &shared).await;
            drop(permit);
        });
    }
}

async fn connection(mut stream: UnixStream, shared: &Shared) {
    let reply = match tokio::time::timeout(READ_TIMEOUT, handle(&mut stream, shared)).await {
        Ok(Ok(id)) => SendmailReply {
            ok: true,
            detail: id,
        },
        Ok(Err(e)) => SendmailReply {
            ok: false,
            detail: e,
        },
        Err(_) => SendmailReply {
            ok: false,
            detail: "the message did not arrive in time".into(),
        },
    };
    let mut line = serde_json::to_vec(&reply).unwrap_or_default();
    line.push(b'\n');
    let _ = stream.write_all(&line).await;
    let _ = stream.shutdown().await;
}

/// The user name of `uid` in `/etc/passwd` (blocking).
fn user_of(uid: u32) -> Option<String> {
    let passwd = std::fs::read_to_string("/etc/passwd").ok()?;
    passwd.lines().find_map(|l| {
        let mut f = l.split(':');
        let name = f.next()?;
        (f.nth(1)?.parse::<u32>().ok()? == uid).then(|| name.to_string())
    })
}

/// Read, check and spool one message; the spool id, or the sentence for the site.
async fn handle(stream: &mut UnixStream, shared: &Shared) -> Result<String, String> {
    let uid = stream
        .peer_cred()
        .map_err(|e| format!("cannot tell who is calling: {e}"))?
        .uid();
    let user = tokio::task::spawn_blocking(move || user_of(uid))
        .await
        .ok()
        .flatten();
    // Read everything first: the client writes its whole message before it reads.
    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    (&mut reader)
        .take(MAX_REQUEST)
        .read_line(&mut line)
        .await
        .map_err(|e| format!("reading the request: {e}"))?;
    let req: SendmailRequest =
        serde_json::from_str(&line).map_err(|e| format!("bad request: {e}"))?;
    if req.format != SENDMAIL_FORMAT {
        return Err(format!(
            "request format {} (this server speaks {SENDMAIL_FORMAT})",
            req.format
        ));
    }
    let mut raw = Vec::new();
    (&mut reader)
        .take(MAX_MESSAGE_BYTES as u64 + 1)
        .read_to_end(&mut raw)
        .await
        .map_err(|e| format!("reading the message: {e}"))?;
    if raw.len() > MAX_MESSAGE_BYTES {
        return Err(format!(
            "the message is larger than {} MiB",
            MAX_MESSAGE_BYTES >> 20
        ));
    }
    let routes = shared.routes.load_full();
    let site = user
        .as_deref()
        .and_then(|u| routes.by_user.get(u))
        .ok_or_else(|| {
            tracing::warn!(uid, user = ?user, "sendmail from a user that is no site's PHP user; refused");
            format!(
                "uid {uid} ({}) is not the PHP user of a site on this web server; mail is sent only from sites' PHP",
                user.as_deref().unwrap_or("unknown")
            )
        })?;
    let site = model::DomainName::new(site).map_err(|e| format!("site {site}: {}", e.message))?;
    let result = spool_site_mail(shared, &routes, &site, uid, &req, &raw).await;
    if let (Err(why), Some(dir)) = (&result, shared.opts.log_dir.clone()) {
        // The customer reads why mail() returned false in the site's error log.
        let (domain, text) = (site.to_string(), format!("[error] mail() refused: {why}"));
        let _ = tokio::task::spawn_blocking(move || {
            crate::log::append_site_line(&dir, &domain, proto::agent_ops::LogKind::Error, &text)
        })
        .await;
    }
    result
}

/// Check and spool the message of site `site`; the spool id, or why not.
async fn spool_site_mail(
    shared: &Shared,
    routes: &super::Routes,
    site: &model::DomainName,
    uid: u32,
    req: &SendmailRequest,
    raw: &[u8],
) -> Result<String, String> {
    if routes
        .by_domain
        .get(site.as_str())
        .is_none_or(Option::is_none)
    {
        tracing::info!(site = %site, "mail from a site whose domain has no mail role; refused");
        return Err(format!(
            "the domain {site} has no mail service, so its site cannot send mail: \
             add mail to the domain (`hostplane domain update {site} --cluster mail=CLUSTER`) \
             and try again"
        ));
    }
    let now = time::OffsetDateTime::now_utc();
    let date = now
        .format(&time::format_description::well_known::Rfc2822)
        .unwrap_or_default();
    let unique = format!(
        "{}.{}.{}",
        now.unix_timestamp_nanos(),
        std::process::id(),
        uid
    );
    let prepared = super::message::prepare(site, req, raw, &unique, &date)?;
    let envelope = Envelope {
        domain: site.to_string(),
        from: prepared.from,
        recipients: prepared.recipients,
        spooled_at: u64::try_from(now.unix_timestamp()).unwrap_or(0),
    };
    let spool = shared.spool.clone();
    let env = envelope.clone();
    let id = tokio::task::spawn_blocking(move || spool.put(&env, &prepared.message))
        .await
        .map_err(|e| format!("spooling: {e}"))?
        .map_err(|e| {
            tracing::error!(error = %e, "cannot spool site mail");
            "the web server cannot store the message now; try again later".to_string()
        })?;
    tracing::info!(site = %site, id, from = %envelope.from, recipients = envelope.recipients.len(),
        "site mail spooled");
    shared.wake.notify_one();
    Ok(id)
}
