//! The replication client and the coordinator that decides what this server
//! does for its cluster's mailboxes, from the config's writer ([`ReplConfig`]):
//!
//! - another server holds the writer lease: *follow* it — list every mailbox,
//!   apply each one's state ([`super::store`]), then wait for changes and apply
//!   them as they come (long poll; a full sweep again every minute and after any
//!   error). Messages written here while this server was the writer are handed
//!   back. The writer must claim the lease in its own config with an epoch no
//!   lower than the highest seen here, or its stream is refused (fencing).
//! - this server holds it at a new epoch: *catch up* first — pull from every
//!   peer what it has that we lack (bounded: an unreachable peer is given up
//!   after `catchup` ), then open the write gate ([`super::gate`]).
//! - nobody holds it, or no replication: nothing.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use proto::agent_v1::MailWriter;
use tokio::net::TcpStream;
use tokio::sync::watch;
use tokio_rustls::client::TlsStream;
use tokio_rustls::TlsConnector;

use crate::server::Shared;

use super::serve::blocking;
use super::store::{self, Mode};
use super::tls::Identity;
use super::wire::{self, MailboxId, Req, Resp};

/// What the coordinator acts on (from the applied config).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReplConfig {
    /// The config's writer.
    pub writer: Option<MailWriter>,
    /// Peers: server name → replication address.
    pub peers: BTreeMap<String, String>,
}

/// Messages asked for at once (pipelined).
const GET_BATCH: usize = 64;

/// Full sweep at least this often while following.
const SWEEP_EVERY: Duration = Duration::from_secs(60);

type Conn = TlsStream<TcpStream>;

fn err(msg: impl Into<String>) -> std::io::Error {
    std::io::Error::other(msg.into())
}

/// Run the coordinator until `stop`.
pub async fn run(
    shared: Arc<Shared>,
    identity: Option<Identity>,
    mut cfg: watch::Receiver<ReplConfig>,
    catchup: Duration,
    mut stop: watch::Receiver<bool>,
) {
    loop {
        let c = cfg.borrow_and_update().clone();
        let work = act(&shared, identity.as_ref(), &c, catchup);
        tokio::select! {
            () = work => {
                // done (caught up, or nothing to do): wait for the next config
                tokio::select! {
                    r = cfg.changed() => if r.is_err() { return },
                    _ = stop.changed() => return,
                }
            }
            r = cfg.changed() => if r.is_err() { return },
            _ = stop.changed() => return,
        }
    }
}

async fn act(shared: &Arc<Shared>, identity: Option<&Identity>, c: &ReplConfig, catchup: Duration) {
    let Some(w) = &c.writer else {
        shared.set_repl_status(String::new());
        return;
    };
    let me = shared.repl.me();
    match w.holder.as_deref() {
        Some(h) if h == me => {
            if shared.repl.caught_up() == Some(w.epoch) {
                return;
            }
            shared.set_repl_status(format!("writer at epoch {}: catching up", w.epoch));
            if let Some(id) = identity {
                take_over(shared, id, c, catchup).await;
            }
            shared.repl.set_caught_up(w.epoch);
            shared.set_repl_status(format!("writer at epoch {}, caught up", w.epoch));
            tracing::info!(epoch = w.epoch, "mail replication: writing");
        }
        Some(h) => {
            let (Some(id), Some(addr)) = (identity, c.peers.get(h)) else {
                shared.set_repl_status(format!("writer {h} not reachable by replication"));
                std::future::pending::<()>().await;
                return;
            };
            loop {
                if let Err(e) = follow(shared, id, h, addr).await {
                    tracing::warn!(writer = %h, error = %e, "mail replication: following failed; retrying");
                    shared.set_repl_status(format!("following {h}: {e}"));
                }
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
        None => shared.set_repl_status(format!("no writer at epoch {}", w.epoch)),
    }
}

/// What a peer said in its hello.
#[derive(Debug, Clone, Copy)]
struct Hello {
    /// Its config epoch.
    epoch: u64,
    /// Its config names it the writer.
    holder: bool,
    /// It answers `Delta`.
    delta: bool,
}

/// The writer's folders as last received on this connection, per mailbox (what
/// its `Delta` answers are relative to).
type Known = std::collections::HashMap<MailboxId, BTreeMap<String, wire::FolderState>>;

/// Connect to `peer` at `addr` with mutual TLS and say hello.
async fn connect(
    shared: &Shared,
    id: &Identity,
    peer: &str,
    addr: &str,
) -> std::io::Result<(Conn, Hello)> {
    let cfg = id.client_config(peer).map_err(|e| err(e.to_string()))?;
    let tcp = tokio::time::timeout(Duration::from_secs(5), TcpStream::connect(addr))
        .await
        .map_err(|_| err(format!("connecting to {addr} timed out")))??;
    let _ = tcp.set_nodelay(true);
    let name = rustls::pki_types::ServerName::try_from(peer.to_string())
        .unwrap_or_else(|_| rustls::pki_types::ServerName::try_from("peer").expect("a valid name"));
    let mut tls = tokio::time::timeout(
        Duration::from_secs(10),
        TlsConnector::from(cfg).connect(name, tcp),
    )
    .await
    .map_err(|_| err("TLS handshake timed out"))??;
    wire::send(
        &mut tls,
        &Req::Hello {
            server: shared.repl.me(),
            epoch: shared.repl.highest_epoch(),
        },
    )
    .await?;
    match wire::recv(&mut tls).await? {
        Resp::Hello {
            epoch,
            holder,
            delta,
            ..
        } => {
            shared.repl.saw_epoch(epoch);
            Ok((
                tls,
                Hello {
                    epoch,
                    holder,
                    delta,
                },
            ))
        }
        Resp::Error(e) => Err(err(e)),
        other => Err(err(format!("unexpected answer {other:?}"))),
    }
}

async fn call(conn: &mut Conn, req: &Req) -> std::io::Result<Resp> {
    wire::send(conn, req).await?;
    match wire::recv(conn).await? {
        Resp::Error(e) => Err(err(e)),
        r => Ok(r),
    }
}

async fn list(conn: &mut Conn) -> std::io::Result<(u64, Vec<MailboxId>)> {
    match call(conn, &Req::List).await? {
        Resp::List { seq, mailboxes } => Ok((seq, mailboxes)),
        other => Err(err(format!("unexpected answer {other:?}"))),
    }
}

/// Follow the writer `peer` until an error.
async fn follow(
    shared: &Arc<Shared>,
    id: &Identity,
    peer: &str,
    addr: &str,
) -> std::io::Result<()> {
    let (mut conn, hello) = connect(shared, id, peer, addr).await?;
    let Hello {
        epoch,
        holder,
        delta,
    } = hello;
    // only what changed since the last round, when the writer offers it
    let mut known: Option<Known> = delta.then(Known::default);
    let highest = shared.repl.highest_epoch();
    if !holder || epoch < highest {
        return Err(err(format!(
            "{peer} is not the writer at epoch {highest} (it says epoch {epoch}, holder {holder}): stream refused"
        )));
    }
    let (mut seq, boxes) = list(&mut conn).await?;
    for b in &boxes {
        sync_mailbox(shared, &mut conn, peer, b, Mode::Follow, known.as_mut()).await?;
    }
    shared.set_repl_status(format!("following {peer} at epoch {epoch}, caught up"));
    shared.set_followed(Some(epoch));
    tracing::info!(writer = %peer, epoch, mailboxes = boxes.len(), "mail replication: caught up");
    let mut swept = Instant::now();
    loop {
        if shared.repl.highest_epoch() > epoch {
            return Err(err(format!("{peer}'s epoch {epoch} is stale now")));
        }
        match call(&mut conn, &Req::Wait { since: seq }).await? {
            Resp::Changed {
                seq: now,
                mailboxes,
                resync,
            } => {
                let todo = if resync || swept.elapsed() > SWEEP_EVERY {
                    swept = Instant::now();
                    // every folder compared in full again
                    if let Some(k) = known.as_mut() {
                        k.clear();
                    }
                    let (now, all) = list(&mut conn).await?;
                    seq = now;
                    all
                } else {
                    seq = now;
                    mailboxes
                };
                for b in &todo {
                    sync_mailbox(shared, &mut conn, peer, b, Mode::Follow, known.as_mut()).await?;
                }
            }
            other => return Err(err(format!("unexpected answer {other:?}"))),
        }
    }
}

/// Pull from every peer what it has that we lack, each bounded by `catchup` to
/// connect (an unreachable previous writer is given up).
async fn take_over(shared: &Arc<Shared>, id: &Identity, c: &ReplConfig, catchup: Duration) {
    let me = shared.repl.me();
    for (peer, addr) in &c.peers {
        if *peer == me {
            continue;
        }
        let r = async {
            let (mut conn, Hello { epoch, .. }) =
                tokio::time::timeout(catchup, connect(shared, id, peer, addr))
                    .await
                    .map_err(|_| err("not reachable"))??;
            if epoch > c.writer.as_ref().map_or(0, |w| w.epoch) {
                return Err(err(format!("{peer} has a newer epoch {epoch}")));
            }
            let (_, boxes) = list(&mut conn).await?;
            for b in &boxes {
                sync_mailbox(shared, &mut conn, peer, b, Mode::CatchUp, None).await?;
            }
            Ok::<usize, std::io::Error>(boxes.len())
        };
        match tokio::time::timeout(catchup * 20, r).await {
            Ok(Ok(n)) => {
                tracing::info!(%peer, mailboxes = n, "mail replication: caught up before writing")
            }
            Ok(Err(e)) => {
                tracing::warn!(%peer, error = %e, "mail replication: could not catch up; writing anyway")
            }
            Err(_) => {
                tracing::warn!(%peer, "mail replication: catch-up took too long; writing anyway")
            }
        }
    }
}

/// The writer's state of mailbox `id`: its whole manifest, or (with `known`) its
/// changes since the last round on this connection, applied to what was received
/// then. Also the folders that changed (`None`: all of them).
async fn fetch_state(
    conn: &mut Conn,
    id: &MailboxId,
    known: Option<&mut Known>,
) -> std::io::Result<(wire::Manifest, Option<BTreeSet<String>>)> {
    let Some(known) = known else {
        return match call(conn, &Req::Manifest(id.clone())).await? {
            Resp::Manifest(m) => Ok((m, None)),
            other => Err(err(format!("unexpected answer {other:?}"))),
        };
    };
    let prev = known.remove(id);
    let req = Req::Delta {
        mailbox: id.clone(),
        fresh: prev.is_none(),
    };
    let d = match call(conn, &req).await? {
        Resp::Delta(d) => d,
        other => return Err(err(format!("unexpected answer {other:?}"))),
    };
    let prev = prev.unwrap_or_default();
    let mut folders = Vec::with_capacity(d.dirs.len());
    let mut changed = BTreeSet::new();
    for dir in &d.dirs {
        let state = match d.folders.iter().find(|f| &f.dir == dir) {
            Some(fd) => {
                changed.insert(dir.clone());
                fd.apply(prev.get(dir))
            }
            None => prev.get(dir).cloned(),
        };
        folders
            .push(state.ok_or_else(|| err(format!("a change of folder {dir:?} not sent before")))?);
    }
    known.insert(
        id.clone(),
        folders.iter().map(|f| (f.dir.clone(), f.clone())).collect(),
    );
    let m = wire::Manifest {
        keywords: d.keywords,
        subscriptions: d.subscriptions,
        folders,
    };
    Ok((m, Some(changed)))
}

/// One round for one mailbox: fetch its manifest (or its changes) and the
/// messages we lack, apply folder by folder (only the folders that changed), hand
/// back what only we have (when following).
async fn sync_mailbox(
    shared: &Arc<Shared>,
    conn: &mut Conn,
    peer: &str,
    id: &MailboxId,
    mode: Mode,
    known: Option<&mut Known>,
) -> std::io::Result<()> {
    let root = match store::root_of(shared, id) {
        Ok(r) => r,
        Err(_) => return Ok(()), // not hosted here (yet): the next sweep
    };
    let (m, changed) = fetch_state(conn, id, known).await?;
    for f in &m.folders {
        store::check_dir(&f.dir)?;
    }
    {
        let (s, r, m) = (Arc::clone(shared), root.clone(), m.clone());
        blocking(move || {
            crate::maildir::ensure(&r)?;
            store::follow_renames(&s, &r, &m)
        })
        .await?;
    }
    let mut only: Vec<(String, store::LocalOnly)> = Vec::new();
    for f in &m.folders {
        if changed.as_ref().is_some_and(|c| !c.contains(&f.dir)) {
            continue; // as applied in an earlier round
        }
        let fdir = if f.dir.is_empty() {
            root.clone()
        } else {
            root.join(&f.dir)
        };
        let want = {
            let (fd, p, ff) = (fdir.clone(), peer.to_string(), f.clone());
            blocking(move || {
                let want = store::wanted(&fd, &p, &ff, mode)?;
                if !want.is_empty() && !fd.join("tmp").is_dir() {
                    crate::imap::uidlist::create_folder(&fd, !ff.dir.is_empty())?;
                }
                Ok(want)
            })
            .await?
        };
        let mut staged = BTreeMap::new();
        // requests pipelined in batches (one round trip per batch, not per message)
        for batch in want.chunks(GET_BATCH) {
            for w in batch {
                store::check_base(&w.base)?;
                let get = Req::Get {
                    mailbox: id.clone(),
                    dir: f.dir.clone(),
                    base: w.base.clone(),
                    letters: w.letters.clone(),
                };
                wire::send(conn, &get).await?;
            }
            // each written and fsynced on its own blocking thread while the next
            // arrives (concurrent fsyncs share the file system's journal commits)
            let mut writes = Vec::with_capacity(batch.len());
            for w in batch {
                match wire::recv(conn).await? {
                    Resp::Body => {}
                    // expunged meanwhile: the next round sees it gone
                    Resp::Error(e) => {
                        tracing::debug!(error = %e, base = %w.base, "mail replication: message not fetched");
                        continue;
                    }
                    other => return Err(err(format!("unexpected answer {other:?}"))),
                }
                let data = wire::read_frame(conn).await?;
                let (r, d, b, t) = (root.clone(), f.dir.clone(), w.base.clone(), w.mtime);
                writes.push((
                    w.base.clone(),
                    tokio::spawn(blocking(move || store::stage(&r, &d, &b, t, &data))),
                ));
            }
            for (base, task) in writes {
                let path = task.await.map_err(|e| err(format!("task failed: {e}")))??;
                staged.insert(base, path);
            }
        }
        let (s, r, ff, p) = (
            Arc::clone(shared),
            root.clone(),
            f.clone(),
            peer.to_string(),
        );
        let kept = blocking(move || store::apply_folder(&s, &r, &ff, &p, &staged, mode)).await?;
        only.extend(kept.into_iter().map(|k| (f.dir.clone(), k)));
    }
    // folders only we have (created here while we wrote): their messages go back
    let theirs: BTreeSet<String> = m.folders.iter().map(|f| f.dir.clone()).collect();
    let (s, r, p) = (Arc::clone(shared), root.clone(), peer.to_string());
    let extra = blocking(move || {
        let known = store::read_folder_base(&r, &p);
        let mut out = Vec::new();
        for d in store::folder_dirs(&r) {
            if d.is_empty() || theirs.contains(&d) || known.contains(&d) {
                continue;
            }
            let f = s.imap.sync(&r.join(&d))?;
            for msg in &f.msgs {
                out.push((
                    d.clone(),
                    store::LocalOnly {
                        base: msg.base.clone(),
                        letters: msg.letters().to_string(),
                        path: f.path(msg),
                    },
                ));
            }
            if f.msgs.is_empty() {
                out.push((
                    d.clone(),
                    store::LocalOnly {
                        base: String::new(),
                        letters: String::new(),
                        path: Default::default(),
                    },
                ));
            }
        }
        Ok(out)
    })
    .await?;
    only.extend(extra);
    let keep: BTreeSet<String> = only.iter().map(|(d, _)| d.clone()).collect();
    {
        let (s, r, m, p) = (
            Arc::clone(shared),
            root.clone(),
            m.clone(),
            peer.to_string(),
        );
        blocking(move || store::apply_mailbox(&s, &r, &m, &p, &keep)).await?;
    }
    if mode == Mode::Follow {
        for (dir, o) in only {
            if o.base.is_empty() {
                // an empty folder made here while this server wrote: the writer
                // creates it too (writers that answer `Delta` know `Folder`)
                if changed.is_some() {
                    let req = Req::Folder {
                        mailbox: id.clone(),
                        dir: dir.clone(),
                    };
                    match call(conn, &req).await {
                        Ok(_) => {
                            tracing::info!(%dir, "mail replication: handed a folder back to the writer")
                        }
                        Err(e) => {
                            tracing::warn!(%dir, error = %e, "mail replication: the writer did not take a folder back yet")
                        }
                    }
                }
                continue;
            }
            let data = {
                let p = o.path.clone();
                blocking(move || std::fs::read(p)).await?
            };
            let mtime = {
                let p = o.path.clone();
                blocking(move || {
                    Ok(std::fs::metadata(p)?
                        .modified()?
                        .duration_since(std::time::UNIX_EPOCH)
                        .map(|d| d.as_secs() as i64)
                        .unwrap_or(0))
                })
                .await?
            };
            wire::send(
                conn,
                &Req::Put {
                    mailbox: id.clone(),
                    dir: dir.clone(),
                    base: o.base.clone(),
                    letters: o.letters.clone(),
                    mtime,
                },
            )
            .await?;
            wire::write_frame(conn, &data).await?;
            match wire::recv(conn).await? {
                Resp::Done => {
                    tracing::info!(base = %o.base, "mail replication: handed a message back to the writer")
                }
                Resp::Error(e) => {
                    tracing::warn!(base = %o.base, error = %e, "mail replication: the writer did not take a message back yet")
                }
                other => return Err(err(format!("unexpected answer {other:?}"))),
            }
        }
    }
    Ok(())
}
