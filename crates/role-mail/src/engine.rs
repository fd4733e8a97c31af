//! The running engine ([`MailServer`]: listeners, relay loop, live plan swaps) and
//! its agent adapter ([`start_engine`], a [`RoleEngine`]).
//!
//! Ports on the server's own address, each the standard one or standard + 10000
//! when it cannot be bound (no privilege): SMTP 25/10025, submission 587/10587,
//! submissions 465/10465, POP3 110/10110, POP3S 995/10995, IMAP 143/10143,
//! IMAPS 993/10993. State lives in
//! `ctx.state_dir`: `mail/<domain>/<local>/Maildir` and `queue/`.
//!
//! Engine options read from `ctx.options` (the agent config's `[engine]` table):
//! - `hostname`: name in greetings and Received headers (default: the server name;
//!   the agent sets it to the server's host name, which receivers check resolves);
//! - `max_message_mb`: SIZE limit (default 25);
//! - `max_conn_per_ip`: concurrent connections per client address (default 50,
//!   like Postfix's `smtpd_client_connection_count_limit`);
//! - `resolver`: `ip:port` of the DNS resolver for MX lookups; without it remote
//!   recipients (submission, remote alias destinations) are refused at RCPT;
//! - `outbound_port`: SMTP port of remote mail exchangers (default 25; tests);
//! - `repl_port`: mailbox replication port (default `MAIL_REPL_PORT`, 7445; `0`:
//!   any, tests), on the server's own address, served only when the agent has
//!   its identity certificate;
//! - `repl_catchup_secs`: how long a new writer tries to reach the previous one
//!   before writing (default 5).

use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::sync::{Arc, Mutex};

use agent::supervisor::{BoxFuture, EngineContext, EngineError, RoleEngine};
use proto::agent_v1::{EngineHealth, EngineState, MailConfig, RejectedObject, RoleConfig};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::plan::Plan;
use crate::queue::{Bounce, Outbound, Queue, QueueEntry};
use crate::server::{self, Limits, Live, Service, Shared};

/// The seven listeners of a mail server (already bound).
#[derive(Debug)]
pub struct Listeners {
    /// Inbound SMTP (25).
    pub mx: TcpListener,
    /// Submission with STARTTLS (587).
    pub submission: TcpListener,
    /// Submission over TLS (465).
    pub submissions: TcpListener,
    /// POP3 (110).
    pub pop3: TcpListener,
    /// POP3 over TLS (995).
    pub pop3s: TcpListener,
    /// IMAP (143).
    pub imap: TcpListener,
    /// IMAP over TLS (993).
    pub imaps: TcpListener,
}

impl Listeners {
    /// Bind all seven on `ip`, each on its standard port or standard + 10000.
    pub fn bind_standard(ip: IpAddr) -> std::io::Result<Self> {
        Ok(Self {
            mx: bind_port(ip, 25)?,
            submission: bind_port(ip, 587)?,
            submissions: bind_port(ip, 465)?,
            pop3: bind_port(ip, 110)?,
            pop3s: bind_port(ip, 995)?,
            imap: bind_port(ip, 143)?,
            imaps: bind_port(ip, 993)?,
        })
    }

    /// Bind all seven on `ip`, port 0 (tests).
    pub fn bind_any(ip: IpAddr) -> std::io::Result<Self> {
        let any = || bind_exact(SocketAddr::new(ip, 0));
        Ok(Self {
            mx: any()?,
            submission: any()?,
            submissions: any()?,
            pop3: any()?,
            pop3s: any()?,
            imap: any()?,
            imaps: any()?,
        })
    }
}

fn bind_exact(addr: SocketAddr) -> std::io::Result<TcpListener> {
    let l = std::net::TcpListener::bind(addr)?;
    l.set_nonblocking(true)?;
    TcpListener::from_std(l)
}

fn bind_port(ip: IpAddr, port: u16) -> std::io::Result<TcpListener> {
    bind_exact(SocketAddr::new(ip, port)).or_else(|_| bind_exact(SocketAddr::new(ip, port + 10000)))
}

/// The addresses a server listens on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Addrs {
    /// SMTP.
    pub mx: SocketAddr,
    /// Submission (STARTTLS).
    pub submission: SocketAddr,
    /// Submission (TLS).
    pub submissions: SocketAddr,
    /// POP3.
    pub pop3: SocketAddr,
    /// POP3S.
    pub pop3s: SocketAddr,
    /// IMAP.
    pub imap: SocketAddr,
    /// IMAPS.
    pub imaps: SocketAddr,
}

/// Queue status and flush, for the agent (`hostplane mail queue` / `flush`).
#[derive(Debug, Clone)]
pub struct MailHandle {
    queue: Arc<Queue>,
}

impl MailHandle {
    /// Every queued message.
    pub fn queue_list(&self) -> Vec<QueueEntry> {
        self.queue.list()
    }

    /// Retry every queued message now (e.g. when the controller reports the primary up).
    pub fn flush(&self) {
        self.queue.flush();
    }
}

/// A running mail server.
pub struct MailServer {
    shared: Arc<Shared>,
    bind: Option<IpAddr>,
    last_flush: Mutex<Option<u64>>,
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
    addrs: Addrs,
    repl: Option<watch::Sender<crate::repl::ReplConfig>>,
    repl_addr: Option<SocketAddr>,
}

impl std::fmt::Debug for MailServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MailServer")
            .field("addrs", &self.addrs)
            .finish()
    }
}

impl MailServer {
    /// Start serving on `listeners` with state in `state_dir`; outgoing relay
    /// connections bind `bind`. Needs a Tokio runtime.
    pub fn start(
        listeners: Listeners,
        state_dir: &Path,
        hostname: &str,
        bind: Option<IpAddr>,
        limits: Limits,
    ) -> std::io::Result<Self> {
        durable::create_private_dir(state_dir)?;
        crate::dedup::prune(state_dir);
        let queue = Queue::open(&state_dir.join("queue"), bind, hostname)?;
        let shared = Shared::new(
            state_dir.to_path_buf(),
            hostname.to_string(),
            limits,
            Arc::clone(&queue),
        );
        let addrs = Addrs {
            mx: listeners.mx.local_addr()?,
            submission: listeners.submission.local_addr()?,
            submissions: listeners.submissions.local_addr()?,
            pop3: listeners.pop3.local_addr()?,
            pop3s: listeners.pop3s.local_addr()?,
            imap: listeners.imap.local_addr()?,
            imaps: listeners.imaps.local_addr()?,
        };
        let (stop, rx) = watch::channel(false);
        let mut tasks = Vec::new();
        for (l, s) in [
            (listeners.mx, Service::Mx),
            (listeners.submission, Service::Submission),
            (listeners.submissions, Service::Submissions),
            (listeners.pop3, Service::Pop3),
            (listeners.pop3s, Service::Pop3s),
            (listeners.imap, Service::Imap),
            (listeners.imaps, Service::Imaps),
        ] {
            tasks.push(tokio::spawn(server::serve(
                Arc::clone(&shared),
                l,
                s,
                rx.clone(),
            )));
        }
        let (btx, brx) = tokio::sync::mpsc::unbounded_channel();
        queue.set_bounces(btx);
        tasks.push(tokio::spawn(bounce_loop(Arc::clone(&shared), brx)));
        tasks.push(tokio::spawn(queue.run(rx)));
        Ok(Self {
            shared,
            bind,
            last_flush: Mutex::new(None),
            stop,
            tasks,
            addrs,
            repl: None,
            repl_addr: None,
        })
    }

    /// Take part in mailbox replication as server `me` (issue 16): serve the
    /// replication port on `listener` with `identity` (the agent's certificate)
    /// and run the coordinator that follows the writer or catches up before
    /// writing. Without an identity nothing is served or followed, and a server
    /// the config names the writer writes without catching up. Call once, before
    /// the first [`MailServer::apply`] that names a writer.
    pub fn enable_replication(
        &mut self,
        me: &str,
        identity: Option<&agent::supervisor::AgentTlsPaths>,
        listener: Option<TcpListener>,
        catchup: std::time::Duration,
    ) -> std::io::Result<()> {
        self.shared.repl.set_me(me);
        let identity = identity
            .map(crate::repl::tls::Identity::load)
            .transpose()
            .map_err(|e| std::io::Error::other(e.to_string()))?;
        if let (Some(id), Some(l)) = (&identity, listener) {
            self.repl_addr = Some(l.local_addr()?);
            let tls = id
                .server_config()
                .map_err(|e| std::io::Error::other(e.to_string()))?;
            self.tasks.push(tokio::spawn(crate::repl::serve::serve(
                Arc::clone(&self.shared),
                l,
                tls,
                self.stop.subscribe(),
            )));
        }
        let (tx, rx) = watch::channel(crate::repl::ReplConfig::default());
        self.tasks.push(tokio::spawn(crate::repl::follow::run(
            Arc::clone(&self.shared),
            identity,
            rx,
            catchup,
            self.stop.subscribe(),
        )));
        self.repl = Some(tx);
        Ok(())
    }

    /// The replication port's address, when served.
    pub fn repl_addr(&self) -> Option<SocketAddr> {
        self.repl_addr
    }

    /// Take the mail writer lease the agent's heartbeat loop extends.
    pub fn set_mail_lease(&self, lease: agent::lease::MailLease) {
        self.shared.repl.set_lease(lease);
    }

    /// Whether this server may write its mailboxes now, and why not.
    pub fn may_write(&self) -> Result<(), crate::repl::Refusal> {
        self.shared.repl.check()
    }

    /// Replication status: a line for health, and the writer epoch this server
    /// follows up to date (a follower that finished its sweep) or caught up for
    /// (a writer that finished its takeover catch-up).
    pub fn replication(&self) -> (String, Option<u64>) {
        let (line, followed) = self.shared.repl_status();
        (line, followed.or(self.shared.repl.caught_up()))
    }

    /// Converge on `cfg`, object by object ([`Plan::render`] against the plan
    /// served so far): returns the objects not applied, which keep their previous
    /// version (a server certificate that does not load keeps the previous one). A
    /// changed `cfg.flush` retries the whole queue now.
    pub fn apply(&self, cfg: &MailConfig) -> Vec<RejectedObject> {
        let live = self.shared.live();
        let (plan, mut rejected) = Plan::render(cfg, &live.plan);
        self.shared.repl.set_writer(cfg.writer.clone());
        self.shared.set_repl_peers(
            cfg.peers
                .iter()
                .filter(|p| !p.server.is_empty())
                .map(|p| p.server.clone())
                .collect(),
        );
        let tls = match cfg.tls.as_ref().map(crate::tls::acceptor).transpose() {
            Ok(tls) => tls,
            Err(e) => {
                rejected.push(RejectedObject::new("mail server certificate", e));
                live.tls.clone()
            }
        };
        self.shared.set_live(Live {
            plan: Arc::new(plan),
            tls,
        });
        let mut last = self
            .last_flush
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if *last != Some(cfg.flush) {
            if last.is_some() {
                tracing::info!(flush = cfg.flush, "flush requested; retrying the queue now");
            }
            *last = Some(cfg.flush);
            self.shared.queue.flush();
        }
        drop(last);
        if let Some(tx) = &self.repl {
            let peers = cfg
                .peers
                .iter()
                .filter_map(|p| Some((p.server.clone(), p.replication.clone()?)))
                .filter(|(s, _)| !s.is_empty())
                .collect();
            tx.send_if_modified(|c| {
                let new = crate::repl::ReplConfig {
                    writer: cfg.writer.clone(),
                    peers,
                };
                let changed = *c != new;
                *c = new;
                changed
            });
        }
        rejected
    }

    /// Enable outbound delivery: MX lookups through `resolver`, exchangers on
    /// `port` (25 in production).
    /// Inbound SPF/DKIM checks use the same resolver.
    pub fn set_outbound(&self, resolver: Option<SocketAddr>, port: u16) {
        self.shared
            .queue
            .set_outbound(resolver.map(|resolver| Outbound { resolver, port }));
        let verifier = resolver.and_then(|r| {
            crate::verify::Verifier::new(r, self.bind)
                .map_err(|e| tracing::warn!(error = %e, "no SPF/DKIM checks"))
                .ok()
        });
        self.shared.set_verifier(verifier);
    }

    /// Listening addresses.
    pub fn addrs(&self) -> Addrs {
        self.addrs
    }

    /// Queue status and flush.
    pub fn handle(&self) -> MailHandle {
        MailHandle {
            queue: Arc::clone(&self.shared.queue),
        }
    }

    /// Counters of the login throttle (submission AUTH and POP3).
    pub fn login_counts(&self) -> throttle::Counts {
        self.shared.logins.counts()
    }

    /// Messages refused by the outgoing limits since start, and the last mailbox.
    pub fn sending_refused(&self) -> (u64, Option<String>) {
        self.shared.sending.refused()
    }

    /// Mailboxes the outgoing limits refused, with their counts (at most 100).
    pub fn sending_limited(&self) -> Vec<(String, u64)> {
        self.shared.sending.limited(100)
    }

    /// Number of hosted domains.
    pub fn domain_count(&self) -> usize {
        self.shared.live().plan.domains.len()
    }

    /// Stop accepting and relaying (open sessions finish on their own).
    pub fn stop(&mut self) {
        let _ = self.stop.send(true);
        for t in self.tasks.drain(..) {
            t.abort();
        }
    }
}

impl Drop for MailServer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Turn permanent failures into DSNs to their senders.
async fn bounce_loop(shared: Arc<Shared>, mut rx: tokio::sync::mpsc::UnboundedReceiver<Bounce>) {
    while let Some(b) = rx.recv().await {
        let message = crate::dsn::render(&shared.hostname, &b);
        let plan = shared.live().plan.clone();
        let s = Arc::clone(&shared);
        let to = b.entry.from.clone();
        let r = tokio::task::spawn_blocking(move || {
            crate::smtp::data::inject(&s, &plan, "", &to, &message)
        })
        .await;
        match r {
            Ok(Ok(id)) => tracing::info!(id = %id, to = %b.entry.from, "DSN sent"),
            Ok(Err(e)) => tracing::warn!(to = %b.entry.from, error = %e, "DSN not sent"),
            Err(e) => tracing::warn!(error = %e, "DSN task failed"),
        }
    }
}

/// The agent adapter.
struct MailEngine {
    server: MailServer,
    status: Mutex<(EngineState, String)>,
    /// Objects of the last config not applied.
    rejected: Vec<RejectedObject>,
}

/// Parsed engine options.
struct Options {
    hostname: String,
    limits: Limits,
    resolver: Option<SocketAddr>,
    outbound_port: u16,
    repl_port: u16,
    catchup: std::time::Duration,
}

/// Parse the engine options.
fn options(ctx: &EngineContext) -> Result<Options, EngineError> {
    let mut limits = Limits::default();
    let num = |k: &str| -> Result<Option<usize>, EngineError> {
        ctx.options
            .get(k)
            .map(|v| {
                v.parse::<usize>().map_err(|_| {
                    EngineError::Invalid(format!("engine option {k}: not a number: {v:?}"))
                })
            })
            .transpose()
    };
    if let Some(mb) = num("max_message_mb")? {
        limits.max_message_bytes = mb.saturating_mul(1024 * 1024);
    }
    if let Some(n) = num("max_conn_per_ip")? {
        limits.max_conn_per_ip = n;
    }
    let resolver = ctx
        .options
        .get("resolver")
        .map(|r| {
            r.parse::<SocketAddr>().map_err(|_| {
                EngineError::Invalid(format!("engine option resolver: not ip:port: {r:?}"))
            })
        })
        .transpose()?;
    let outbound_port = match num("outbound_port")? {
        Some(p) => u16::try_from(p)
            .map_err(|_| EngineError::Invalid(format!("engine option outbound_port: {p}")))?,
        None => 25,
    };
    let repl_port = match num("repl_port")? {
        Some(p) => u16::try_from(p)
            .map_err(|_| EngineError::Invalid(format!("engine option repl_port: {p}")))?,
        None => proto::agent_v1::MAIL_REPL_PORT,
    };
    let catchup = std::time::Duration::from_secs(num("repl_catchup_secs")?.unwrap_or(5) as u64);
    let hostname = ctx
        .options
        .get("hostname")
        .cloned()
        .unwrap_or_else(|| ctx.server.clone());
    Ok(Options {
        hostname,
        limits,
        resolver,
        outbound_port,
        repl_port,
        catchup,
    })
}

/// Start the mail engine for the agent (binds every port on `ctx.bind`).
pub fn start_engine(ctx: &EngineContext) -> Result<Box<dyn RoleEngine>, EngineError> {
    start_engine_with_handle(ctx).map(|(e, _)| e)
}

/// [`start_engine`], also returning the queue handle the agent keeps for
/// `mail queue` / `mail flush` and for flushing when the primary comes back.
pub fn start_engine_with_handle(
    ctx: &EngineContext,
) -> Result<(Box<dyn RoleEngine>, MailHandle), EngineError> {
    let o = options(ctx)?;
    agent::rehash::install(ctx);
    let listeners = Listeners::bind_standard(ctx.bind)?;
    let server = MailServer::start(
        listeners,
        &ctx.state_dir,
        &o.hostname,
        Some(ctx.bind),
        o.limits,
    )?;
    let mut server = server;
    server.set_outbound(o.resolver, o.outbound_port);
    let repl_listener = match &ctx.identity {
        Some(_) => Some(bind_exact(SocketAddr::new(ctx.bind, o.repl_port))?),
        None => None,
    };
    server.enable_replication(&ctx.server, ctx.identity.as_ref(), repl_listener, o.catchup)?;
    let handle = server.handle();
    let engine = MailEngine {
        server,
        status: Mutex::new((EngineState::Ok, String::new())),
        rejected: Vec::new(),
    };
    engine.set_status(EngineState::Ok, String::new());
    tracing::info!(addrs = ?engine.server.addrs(), "mail engine listening");
    Ok((Box::new(engine), handle))
}

impl MailEngine {
    fn set_status(&self, state: EngineState, note: String) {
        let a = self.server.addrs();
        let detail = format!(
            "{}smtp {}, submission {} and {}, pop3 {} and {}, imap {} and {}; {} domains",
            if note.is_empty() {
                String::new()
            } else {
                format!("{note}; ")
            },
            a.mx,
            a.submission.port(),
            a.submissions.port(),
            a.pop3.port(),
            a.pop3s.port(),
            a.imap.port(),
            a.imaps.port(),
            self.server.domain_count(),
        );
        *self
            .status
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = (state, detail);
    }
}

/// Most queue entries one report carries.
const REPORT_QUEUE_MAX: usize = 1000;

impl RoleEngine for MailEngine {
    fn name(&self) -> &str {
        "mail"
    }

    fn apply<'a>(&'a mut self, cfg: &'a RoleConfig) -> BoxFuture<'a, Result<(), EngineError>> {
        Box::pin(async move {
            let RoleConfig::Mail(mail) = cfg else {
                return Err(EngineError::Invalid(format!(
                    "a mail engine got a {} config",
                    cfg.role()
                )));
            };
            self.rejected = self.server.apply(mail);
            self.set_status(EngineState::Ok, String::new());
            Ok(())
        })
    }

    fn rejected(&self) -> Vec<RejectedObject> {
        self.rejected.clone()
    }

    fn set_mail_lease(&mut self, lease: agent::lease::MailLease) {
        self.server.set_mail_lease(lease);
    }

    fn health(&self) -> EngineHealth {
        let (state, detail) = self
            .status
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone();
        let queued = self.server.handle().queue_list().len();
        let logins = self.server.login_counts();
        let (over, last) = self.server.sending_refused();
        let over = match last {
            Some(m) => format!("; outgoing limit hit {over} times (last by {m})"),
            None => String::new(),
        };
        let (repl, epoch) = self.server.replication();
        let repl = match (repl.is_empty(), epoch) {
            (true, _) => String::new(),
            (false, Some(e)) => format!("; replication: {repl} (caught up to epoch {e})"),
            (false, None) => format!("; replication: {repl}"),
        };
        EngineHealth {
            name: "mail".into(),
            state,
            detail: format!(
                "{detail}; queue {queued}; logins: {} wrong, {} throttled{over}{repl}",
                logins.failures, logins.refused
            ),
        }
    }

    fn service_port(&self) -> Option<u16> {
        Some(self.server.addrs().mx.port())
    }

    fn report(&self) -> Option<proto::agent_v1::RoleReport> {
        // At most REPORT_QUEUE_MAX entries, oldest first, so a huge queue cannot
        // outgrow the heartbeat's body limit.
        let mut list = self.server.handle().queue_list();
        list.sort_by_key(|e| e.created);
        list.truncate(REPORT_QUEUE_MAX);
        let when = |secs: u64| {
            i64::try_from(secs)
                .ok()
                .and_then(|s| time::OffsetDateTime::from_unix_timestamp(s).ok())
                .and_then(|t| {
                    t.format(&time::format_description::well_known::Rfc3339)
                        .ok()
                })
                .unwrap_or_else(|| secs.to_string())
        };
        Some(proto::agent_v1::RoleReport::Mail(
            proto::agent_v1::MailReport {
                queue: list
                    .into_iter()
                    .map(|e| proto::agent_v1::QueuedMail {
                        id: e.id,
                        from: e.from,
                        to: e.rcpts,
                        size: e.size,
                        attempts: e.attempts,
                        queued_at: when(e.created),
                        next_attempt: Some(when(e.next_attempt)),
                        last_error: e.last_error,
                    })
                    .collect(),
                limited: self
                    .server
                    .sending_limited()
                    .into_iter()
                    .map(|(mailbox, refused)| proto::agent_v1::LimitedSender { mailbox, refused })
                    .collect(),
                // The writer epoch this server has caught up with: the controller
                // hands the lease back to a better-ranked server only from then.
                caught_up_epoch: self.server.replication().1,
            },
        ))
    }

    fn shutdown(&mut self) -> BoxFuture<'_, ()> {
        Box::pin(async move { self.server.stop() })
    }
}
