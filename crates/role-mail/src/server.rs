//! The running mail server: state shared by every session ([`Shared`]: the live
//! plan and TLS acceptor swapped as one `Arc`, limits, the queue, connection counts,
//! POP3 maildrop locks, IMAP folder notifiers) and the accept loops of the SMTP,
//! submission, POP3 and IMAP listeners. Listeners are bound by the caller (the engine adapter or a test).

use std::collections::{HashMap, HashSet};
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use tokio::io::AsyncWriteExt;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio_rustls::TlsAcceptor;

use crate::plan::Plan;
use crate::queue::Queue;

/// Protocol limits (defaults suit a public MX).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Largest message accepted (SIZE), bytes.
    pub max_message_bytes: usize,
    /// Longest line, CRLF included (RFC 5321: 1000).
    pub max_line: usize,
    /// Most recipients per transaction.
    pub max_recipients: usize,
    /// Concurrent connections from one IP address (default 50, as Postfix: a busy
    /// sender keeps many sessions open and must not get 421 when one reconnects).
    pub max_conn_per_ip: usize,
    /// Concurrent connections in total.
    pub max_conn_total: usize,
    /// Silence allowed between commands.
    pub command_timeout: Duration,
    /// Silence allowed inside DATA.
    pub data_timeout: Duration,
    /// Protocol errors before the session is dropped.
    pub max_errors: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_message_bytes: 25 * 1024 * 1024,
            max_line: 1000,
            max_recipients: 100,
            max_conn_per_ip: 50,
            max_conn_total: 1000,
            command_timeout: Duration::from_secs(300),
            data_timeout: Duration::from_secs(600),
            max_errors: 20,
        }
    }
}

/// What is swapped on apply.
pub struct Live {
    /// Domains, recipients, accounts.
    pub plan: Arc<Plan>,
    /// STARTTLS / implicit TLS, when the controller sent a certificate.
    pub tls: Option<TlsAcceptor>,
}

/// State shared by all sessions.
pub struct Shared {
    live: RwLock<Arc<Live>>,
    /// Root of mailboxes (`<root>/mail/...`).
    pub state_dir: PathBuf,
    /// Name in greetings and Received headers.
    pub hostname: String,
    /// Protocol limits.
    pub limits: Limits,
    /// The relay queue.
    pub queue: Arc<Queue>,
    conns: Mutex<(usize, HashMap<IpAddr, usize>)>,
    /// The login throttle of submission AUTH and POP3 (one per server).
    pub logins: throttle::Throttle,
    /// Outgoing limits on submission (messages per hour).
    pub sending: crate::sendlimit::SendLimits,
    pop_locks: Mutex<HashSet<PathBuf>>,
    /// IMAP folder locks and change notifiers (delivery wakes IDLE through it).
    pub imap: crate::imap::Registry,
    verifier: RwLock<Option<Arc<crate::verify::Verifier>>>,
    /// Whether this server may write its cluster's mailboxes now (issue 16).
    pub repl: crate::repl::Gate,
    /// Mailboxes changed here, for followers waiting on this server.
    pub repl_feed: crate::repl::Feed,
    repl_peers: RwLock<std::collections::BTreeSet<String>>,
    /// Replication status line and the writer epoch followed up to date.
    repl_status: Mutex<(String, Option<u64>)>,
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared")
            .field("hostname", &self.hostname)
            .finish_non_exhaustive()
    }
}

/// Holds one admitted connection's slot.
pub struct ConnSlot {
    shared: Arc<Shared>,
    ip: IpAddr,
}

impl Drop for ConnSlot {
    fn drop(&mut self) {
        let mut c = self
            .shared
            .conns
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        c.0 = c.0.saturating_sub(1);
        if let Some(n) = c.1.get_mut(&self.ip) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                c.1.remove(&self.ip);
            }
        }
    }
}

/// Holds a POP3 maildrop lock: in this process, and across processes by an
/// exclusive `flock` on `<Maildir>/hostplane-pop3.lock` (released when the file
/// closes, also when the process dies). IMAP never takes it: POP3 is exclusive
/// only against other POP3 sessions of the same mailbox.
pub struct DropLock {
    shared: Arc<Shared>,
    path: PathBuf,
    _file: std::fs::File,
}

/// The cross-process lock file of a maildrop.
pub const POP3_LOCK: &str = "hostplane-pop3.lock";

impl Drop for DropLock {
    fn drop(&mut self) {
        self.shared
            .pop_locks
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .remove(&self.path);
    }
}

impl Shared {
    /// New shared state with an empty plan.
    pub fn new(
        state_dir: PathBuf,
        hostname: String,
        limits: Limits,
        queue: Arc<Queue>,
    ) -> Arc<Self> {
        Arc::new(Self {
            live: RwLock::new(Arc::new(Live {
                plan: Arc::new(Plan::default()),
                tls: None,
            })),
            hostname,
            limits,
            queue,
            conns: Mutex::new((0, HashMap::new())),
            logins: throttle::Throttle::default(),
            sending: crate::sendlimit::SendLimits::default(),
            pop_locks: Mutex::new(HashSet::new()),
            imap: crate::imap::Registry::default(),
            verifier: RwLock::new(None),
            repl: crate::repl::Gate::new(Some(&state_dir)),
            repl_feed: crate::repl::Feed::default(),
            repl_peers: RwLock::new(Default::default()),
            repl_status: Mutex::new((String::new(), None)),
            state_dir,
        })
    }

    /// The server names of the cluster's other mail servers (replication peers).
    pub fn repl_peers(&self) -> std::collections::BTreeSet<String> {
        self.repl_peers
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// Set the replication peers' names.
    pub fn set_repl_peers(&self, names: std::collections::BTreeSet<String>) {
        *self
            .repl_peers
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = names;
    }

    /// Set the replication status line (health).
    pub fn set_repl_status(&self, s: String) {
        self.repl_status
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .0 = s;
    }

    /// Record that this server is up to date with the writer at `epoch`.
    pub fn set_followed(&self, epoch: Option<u64>) {
        self.repl_status
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .1 = epoch;
    }

    /// The replication status line and the writer epoch followed up to date.
    pub fn repl_status(&self) -> (String, Option<u64>) {
        self.repl_status
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// Tell followers the mailbox at `root` changed (a write was made here).
    pub fn touched(&self, root: &std::path::Path) {
        self.repl_feed.touch(root);
    }

    /// The current plan and TLS.
    pub fn live(&self) -> Arc<Live> {
        self.live
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// Swap in a new plan and TLS (sessions pick it up at their next command).
    pub fn set_live(&self, live: Live) {
        *self
            .live
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Arc::new(live);
    }

    /// The SPF/DKIM verifier, when a resolver is configured.
    pub fn verifier(&self) -> Option<Arc<crate::verify::Verifier>> {
        self.verifier
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// Set (or clear) the SPF/DKIM verifier.
    pub fn set_verifier(&self, v: Option<crate::verify::Verifier>) {
        *self
            .verifier
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = v.map(Arc::new);
    }

    /// Admit a connection from `ip`, or `None` when a limit is reached. IMAP
    /// sessions (`uncapped`) count only against the per-address limit: a server
    /// holds one long-lived session per client device, so there is no total cap.
    pub fn admit(self: &Arc<Self>, ip: IpAddr) -> Option<ConnSlot> {
        self.admit_with(ip, false)
    }

    fn admit_with(self: &Arc<Self>, ip: IpAddr, uncapped: bool) -> Option<ConnSlot> {
        let mut c = self
            .conns
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let per_ip = c.1.get(&ip).copied().unwrap_or(0);
        if (!uncapped && c.0 >= self.limits.max_conn_total) || per_ip >= self.limits.max_conn_per_ip
        {
            return None;
        }
        c.0 += 1;
        *c.1.entry(ip).or_insert(0) += 1;
        Some(ConnSlot {
            shared: Arc::clone(self),
            ip,
        })
    }

    /// Lock the maildrop at `path` for one POP3 session (`None`: another POP3
    /// session, of this process or another, holds it).
    pub fn lock_maildrop(self: &Arc<Self>, path: PathBuf) -> Option<DropLock> {
        let mut l = self
            .pop_locks
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if l.contains(&path) {
            return None;
        }
        std::fs::create_dir_all(&path).ok()?;
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(path.join(POP3_LOCK))
            .ok()?;
        rustix::fs::flock(&file, rustix::fs::FlockOperation::NonBlockingLockExclusive).ok()?;
        l.insert(path.clone());
        Some(DropLock {
            shared: Arc::clone(self),
            path,
            _file: file,
        })
    }
}

/// Which protocol a listener speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Service {
    /// Inbound SMTP (port 25).
    Mx,
    /// Submission with STARTTLS (587).
    Submission,
    /// Submission over implicit TLS (465).
    Submissions,
    /// POP3 with STLS (110).
    Pop3,
    /// POP3 over implicit TLS (995).
    Pop3s,
    /// IMAP with STARTTLS (143).
    Imap,
    /// IMAP over implicit TLS (993).
    Imaps,
}

impl Service {
    fn implicit_tls(self) -> bool {
        matches!(self, Service::Submissions | Service::Pop3s | Service::Imaps)
    }
}

/// Accept connections on `listener` until `stop` turns true.
pub async fn serve(
    shared: Arc<Shared>,
    listener: TcpListener,
    service: Service,
    mut stop: watch::Receiver<bool>,
) {
    loop {
        let accepted = tokio::select! {
            a = listener.accept() => a,
            r = stop.changed() => {
                if r.is_err() || *stop.borrow() { return; }
                continue;
            }
        };
        let (stream, peer) = match accepted {
            Ok(x) => x,
            Err(e) => {
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let shared = Arc::clone(&shared);
        tokio::spawn(async move { handle(shared, stream, peer, service).await });
    }
}

async fn handle(
    shared: Arc<Shared>,
    mut stream: tokio::net::TcpStream,
    peer: SocketAddr,
    service: Service,
) {
    let imap = matches!(service, Service::Imap | Service::Imaps);
    let Some(_slot) = shared.admit_with(peer.ip(), imap) else {
        let msg: &[u8] = match service {
            Service::Pop3 | Service::Pop3s => b"-ERR [SYS/TEMP] too many connections\r\n",
            Service::Imap | Service::Imaps => b"* BYE too many connections from your address\r\n",
            _ => b"421 4.7.0 too many connections, try again later\r\n",
        };
        if !service.implicit_tls() {
            let _ = stream.write_all(msg).await;
        }
        return;
    };
    let io: Box<dyn crate::conn::Io> = if service.implicit_tls() {
        let Some(acceptor) = shared.live().tls.clone() else {
            return;
        };
        match tokio::time::timeout(shared.limits.command_timeout, acceptor.accept(stream)).await {
            Ok(Ok(tls)) => Box::new(tls),
            _ => return,
        }
    } else {
        Box::new(stream)
    };
    let tls = service.implicit_tls();
    match service {
        Service::Mx => crate::smtp::run(shared, io, peer, crate::smtp::Mode::Mx, tls).await,
        Service::Submission | Service::Submissions => {
            crate::smtp::run(shared, io, peer, crate::smtp::Mode::Submission, tls).await
        }
        Service::Pop3 | Service::Pop3s => crate::pop3::run(shared, io, peer, tls).await,
        Service::Imap | Service::Imaps => crate::imap::run(shared, io, peer, tls).await,
    }
}
