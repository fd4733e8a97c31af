//! The replication port's server side (every mail server runs it): a follower
//! (or a server taking over) connects with mutual TLS, proves it is one of the
//! cluster's servers, and asks for mailboxes, manifests and messages, or waits for
//! changes ([`super::wire`]). Each side records the other's fencing epoch: a
//! writer that meets a higher one stops writing at once.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio_rustls::TlsAcceptor;

use crate::server::Shared;

use super::store;
use super::wire::{self, MailboxId, Req, Resp};

/// How long a `Wait` blocks before answering "nothing changed".
const WAIT_MAX: Duration = Duration::from_secs(20);

/// Accept replication connections until `stop`.
pub async fn serve(
    shared: Arc<Shared>,
    listener: TcpListener,
    tls: Arc<rustls::ServerConfig>,
    mut stop: watch::Receiver<bool>,
) {
    let acceptor = TlsAcceptor::from(tls);
    loop {
        let (tcp, peer) = tokio::select! {
            r = listener.accept() => match r {
                Ok(c) => c,
                Err(e) => {
                    tracing::warn!(error = %e, "mail replication: accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            r = stop.changed() => if r.is_err() || *stop.borrow() { return } else { continue },
        };
        let shared = Arc::clone(&shared);
        let acceptor = acceptor.clone();
        tokio::spawn(async move {
            if let Err(e) = session(&shared, acceptor, tcp).await {
                tracing::debug!(%peer, error = %e, "mail replication session ended");
            }
        });
    }
}

async fn session(
    shared: &Arc<Shared>,
    acceptor: TlsAcceptor,
    tcp: TcpStream,
) -> std::io::Result<()> {
    let _ = tcp.set_nodelay(true);
    let mut tls = tokio::time::timeout(Duration::from_secs(10), acceptor.accept(tcp))
        .await
        .map_err(|_| std::io::Error::other("TLS handshake timed out"))??;
    let name = tls
        .get_ref()
        .1
        .peer_certificates()
        .and_then(|c| c.first())
        .and_then(super::tls::common_name)
        .unwrap_or_default();
    if !shared.repl_peers().contains(&name) {
        let msg = format!("{name:?} is not a server of this mail cluster");
        wire::send(&mut tls, &Resp::Error(msg.clone())).await?;
        return Err(std::io::Error::other(msg));
    }
    // what this connection was sent of each mailbox (`Delta` answers only changes)
    let mut sent: std::collections::HashMap<MailboxId, store::Sent> = Default::default();
    loop {
        let req: Req = match wire::recv(&mut tls).await {
            Ok(r) => r,
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(()),
            Err(e) => return Err(e),
        };
        match req {
            Req::Hello { epoch, .. } => {
                shared.repl.saw_epoch(epoch);
                let w = shared.repl.writer();
                let me = shared.repl.me();
                wire::send(
                    &mut tls,
                    &Resp::Hello {
                        server: me.clone(),
                        epoch: w.as_ref().map_or(0, |w| w.epoch),
                        holder: w.is_some_and(|w| w.holder.as_deref() == Some(me.as_str())),
                        delta: true,
                    },
                )
                .await?;
            }
            Req::List => {
                let seq = shared.repl_feed.seq();
                let mailboxes = store::mailboxes(shared);
                wire::send(&mut tls, &Resp::List { seq, mailboxes }).await?;
            }
            Req::Manifest(id) => {
                let (s, peer) = (Arc::clone(shared), name.clone());
                let r = blocking(move || {
                    let root = store::root_of(&s, &id)?;
                    store::manifest(&s, &root, &peer)
                })
                .await;
                match r {
                    Ok(m) => wire::send(&mut tls, &Resp::Manifest(m)).await?,
                    Err(e) => wire::send(&mut tls, &Resp::Error(e.to_string())).await?,
                }
            }
            Req::Delta { mailbox, fresh } => {
                let before = if fresh {
                    store::Sent::new()
                } else {
                    sent.remove(&mailbox).unwrap_or_default()
                };
                let (s, id, peer) = (Arc::clone(shared), mailbox.clone(), name.clone());
                let r = blocking(move || {
                    let root = store::root_of(&s, &id)?;
                    store::delta(&s, &root, &peer, &before)
                })
                .await;
                match r {
                    Ok((d, now)) => {
                        sent.insert(mailbox, now);
                        wire::send(&mut tls, &Resp::Delta(d)).await?
                    }
                    Err(e) => wire::send(&mut tls, &Resp::Error(e.to_string())).await?,
                }
            }
            Req::Get {
                mailbox,
                dir,
                base,
                letters,
            } => {
                let s = Arc::clone(shared);
                let r = blocking(move || {
                    store::check_dir(&dir)?;
                    store::check_base(&base)?;
                    store::check_letters(&letters)?;
                    let root = store::root_of(&s, &mailbox)?;
                    store::read_body(&s, &root, &dir, &base, &letters)
                })
                .await;
                match r {
                    Ok(data) => {
                        wire::send(&mut tls, &Resp::Body).await?;
                        wire::write_frame(&mut tls, &data).await?;
                    }
                    Err(e) => wire::send(&mut tls, &Resp::Error(e.to_string())).await?,
                }
            }
            Req::Put {
                mailbox,
                dir,
                base,
                letters,
                mtime,
            } => {
                let data = wire::read_frame(&mut tls).await?;
                let s = Arc::clone(shared);
                let r = blocking(move || {
                    store::check_dir(&dir)?;
                    store::check_base(&base)?;
                    store::check_letters(&letters)?;
                    if let Err(why) = s.repl.check() {
                        return Err(std::io::Error::other(format!("not writing here: {why}")));
                    }
                    let root = store::root_of(&s, &mailbox)?;
                    store::put(&s, &root, &dir, &base, &letters, mtime, &data)
                })
                .await;
                match r {
                    Ok(()) => wire::send(&mut tls, &Resp::Done).await?,
                    Err(e) => wire::send(&mut tls, &Resp::Error(e.to_string())).await?,
                }
            }
            Req::Folder { mailbox, dir } => {
                let s = Arc::clone(shared);
                let r = blocking(move || {
                    store::check_dir(&dir)?;
                    if dir.is_empty() {
                        return Err(store::invalid("bad folder"));
                    }
                    if let Err(why) = s.repl.check() {
                        return Err(std::io::Error::other(format!("not writing here: {why}")));
                    }
                    let root = store::root_of(&s, &mailbox)?;
                    store::make_folder(&s, &root, &dir)
                })
                .await;
                match r {
                    Ok(()) => wire::send(&mut tls, &Resp::Done).await?,
                    Err(e) => wire::send(&mut tls, &Resp::Error(e.to_string())).await?,
                }
            }
            Req::Wait { since } => {
                let resp = wait(shared, since).await;
                wire::send(&mut tls, &resp).await?;
            }
        }
    }
}

/// Answer a `Wait`: the mailboxes changed after `since`, as soon as there are any.
async fn wait(shared: &Arc<Shared>, since: u64) -> Resp {
    let mut rx = shared.repl_feed.subscribe();
    let deadline = tokio::time::Instant::now() + WAIT_MAX;
    loop {
        rx.borrow_and_update();
        let Some((roots, seq)) = shared.repl_feed.since(since) else {
            return Resp::Changed {
                seq: shared.repl_feed.seq(),
                mailboxes: Vec::new(),
                resync: true,
            };
        };
        if !roots.is_empty() {
            let mailboxes: BTreeSet<MailboxId> = roots
                .iter()
                .filter_map(|r| store::id_of(shared, r))
                .collect();
            return Resp::Changed {
                seq,
                mailboxes: mailboxes.into_iter().collect(),
                resync: false,
            };
        }
        if tokio::time::timeout_at(deadline, rx.changed())
            .await
            .is_err()
        {
            return Resp::Changed {
                seq,
                mailboxes: Vec::new(),
                resync: false,
            };
        }
    }
}

/// Run blocking file work off the async workers.
pub(crate) async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> std::io::Result<T> + Send + 'static,
) -> std::io::Result<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| std::io::Error::other(format!("task failed: {e}")))?
}
