//! The HTTP server: accept loops on the plain and TLS listeners, TLS handshakes with
//! the SNI resolver and ALPN, and one hyper-util "auto" connection (HTTP/1.1 or
//! HTTP/2) per socket. The plan is read from a `watch` channel on every request and
//! every handshake, so a new plan applies at once without dropping connections. On
//! shutdown the listeners close and open connections are drained gracefully (up to
//! [`ServerOptions::drain`]). Connections run on the caller's runtime or on
//! dedicated per-thread runtimes ([`ServerOptions::threads`]).

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::{GracefulShutdown, Watcher};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch};
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;

use crate::body::ReqBody;
use crate::cache::ContentCache;
use crate::cork;
use crate::fast::{self, FastConn, Rewind};
use crate::handler::{self, Conn, Shared};
use crate::hot::HotFiles;
use crate::log::Logs;
use crate::plan::Plan;
use crate::tls::{self, CertStore, SniResolver};

/// Most small files kept ready to answer (see [`crate::hot`]); entries live 1 ms,
/// so this only needs to cover the files asked for within a millisecond.
const HOT_FILES: usize = 4096;

/// Server settings besides the listeners and the plan.
#[derive(Debug, Clone)]
pub struct ServerOptions {
    /// Directory of the access and error logs; `None` logs errors to `tracing` only.
    pub log_dir: Option<PathBuf>,
    /// Write access logs (when `log_dir` is set).
    pub access_log: bool,
    /// Run-time certificates (ACME), consulted before the plan's.
    pub certs: CertStore,
    /// Bytes of small files and compressed variants kept in memory.
    pub cache_bytes: usize,
    /// Largest file kept in the cache.
    pub cache_entry: usize,
    /// How long open connections may finish their requests at shutdown.
    pub drain: Duration,
    /// Time allowed for a TLS handshake, and for a request's headers.
    pub header_timeout: Duration,
    /// Dedicated server threads (each a single-threaded runtime); 0 serves on the
    /// caller's runtime.
    pub threads: usize,
}

impl Default for ServerOptions {
    fn default() -> Self {
        Self {
            log_dir: None,
            access_log: true,
            certs: CertStore::default(),
            cache_bytes: 64 << 20,
            cache_entry: 1 << 20,
            drain: Duration::from_secs(10),
            header_timeout: Duration::from_secs(30),
            threads: 0,
        }
    }
}

/// Serve until `shutdown` resolves, with default options (logs to `tracing` only).
pub async fn run(
    http: Option<TcpListener>,
    https: Option<TcpListener>,
    plan: watch::Receiver<Arc<Plan>>,
    shutdown: impl Future<Output = ()>,
) -> io::Result<()> {
    run_with_options(http, https, plan, shutdown, ServerOptions::default()).await
}

/// Serve plain HTTP on `http` and HTTPS on `https` (either may be absent) from the
/// current plan until `shutdown` resolves.
///
/// With [`ServerOptions::threads`] = 0 the connections run on the caller's runtime;
/// with n > 0 they run on n dedicated threads, each with its own single-threaded
/// runtime (nginx's worker model: a connection stays on one thread, no work
/// stealing, no cross-thread wake-ups), and one dispatcher on the caller's runtime
/// accepts and hands each connection to the thread with the fewest open ones
/// ([`pick`]).
pub async fn run_with_options(
    http: Option<TcpListener>,
    https: Option<TcpListener>,
    plan: watch::Receiver<Arc<Plan>>,
    shutdown: impl Future<Output = ()>,
    opts: ServerOptions,
) -> io::Result<()> {
    let logs = match &opts.log_dir {
        Some(dir) => Logs::start(dir.clone(), opts.access_log),
        None => Logs::default(),
    };
    let https_port = match &https {
        Some(l) => Some(l.local_addr()?.port()),
        None => None,
    };
    let tls_config = tls::server_config(SniResolver::new(plan.clone(), opts.certs.clone()))
        .map_err(io::Error::other)?;
    let acceptor = TlsAcceptor::from(tls_config);
    let shared = Arc::new(Shared {
        plan,
        cache: ContentCache::new(opts.cache_bytes, opts.cache_entry),
        hot: HotFiles::new(HOT_FILES, opts.cache_bytes / 4),
        logs,
        https_port,
    });
    if opts.threads == 0 {
        let source = Source::Listen(Listeners { http, https });
        return serve_loop(source, shared, acceptor, &opts, shutdown).await;
    }
    run_threads(http, https, shared, acceptor, opts, shutdown).await
}

/// The listeners one accept loop serves.
struct Listeners {
    http: Option<TcpListener>,
    https: Option<TcpListener>,
}

/// A connection the dispatcher accepted for a worker thread (std form: it moves
/// between runtimes).
enum Accepted {
    Plain(std::net::TcpStream, SocketAddr),
    Tls(std::net::TcpStream, SocketAddr),
}

/// Where a serving loop takes its connections from.
enum Source {
    /// Accept on the listeners itself (threads = 0: the caller's runtime).
    Listen(Listeners),
    /// Connections handed over by the dispatcher, and this worker's count of open
    /// connections (the dispatcher's balance).
    Queue(mpsc::UnboundedReceiver<Accepted>, Arc<AtomicUsize>),
}

/// A connection ready to serve: plain or TLS, on this runtime.
enum Incoming {
    Plain(TcpStream, SocketAddr),
    Tls(TcpStream, SocketAddr),
}

impl Source {
    /// The next connection (pending forever once a queue's dispatcher is gone:
    /// the loop ends by its shutdown signal).
    async fn next(&mut self) -> Option<Incoming> {
        match self {
            Source::Listen(l) => tokio::select! {
                r = accept(l.http.as_ref()) => accepted(r).await.map(|(s, a)| Incoming::Plain(s, a)),
                r = accept(l.https.as_ref()) => accepted(r).await.map(|(s, a)| Incoming::Tls(s, a)),
            },
            Source::Queue(rx, _) => {
                let Some(a) = rx.recv().await else {
                    return std::future::pending().await;
                };
                let (std, remote, tls) = match a {
                    Accepted::Plain(s, r) => (s, r, false),
                    Accepted::Tls(s, r) => (s, r, true),
                };
                match TcpStream::from_std(std) {
                    Ok(s) if tls => Some(Incoming::Tls(s, remote)),
                    Ok(s) => Some(Incoming::Plain(s, remote)),
                    Err(e) => {
                        tracing::warn!(error = %e, "web: handing over a connection failed");
                        None
                    }
                }
            }
        }
    }

    /// Counts one connection open on this worker until the guard drops.
    fn guard(&self) -> Option<OpenGuard> {
        match self {
            Source::Listen(_) => None,
            Source::Queue(_, open) => Some(OpenGuard(open.clone())),
        }
    }
}

/// Decrements a worker's open-connection count when its connection ends (the
/// dispatcher incremented it when it handed the connection over).
struct OpenGuard(Arc<AtomicUsize>);

impl Drop for OpenGuard {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// The worker to hand the next connection to: the one with the fewest open
/// connections, ties going round-robin from `next`.
///
/// Why not let every thread accept on the shared sockets: an awake thread drains
/// the whole backlog before the others wake, so a burst of keep-alive
/// connections (a load balancer's pool, a benchmark's 64) all lands on one
/// thread and the others idle. Measured as deployed (`bench/web/deployed.sh`,
/// 100 KiB): 85% of the work on one of two threads.
fn pick(open: &[usize], next: usize) -> usize {
    let n = open.len().max(1);
    (0..n)
        .map(|k| (next + k) % n)
        .min_by_key(|&i| open.get(i).copied().unwrap_or(usize::MAX))
        .unwrap_or(0)
}

/// One worker thread as the dispatcher sees it.
struct Worker {
    tx: mpsc::UnboundedSender<Accepted>,
    open: Arc<AtomicUsize>,
}

/// The dispatcher: accepts on the caller's runtime and hands each connection to
/// the least busy worker thread until `shutdown`.
async fn dispatch(listeners: Listeners, workers: &[Worker], shutdown: impl Future<Output = ()>) {
    tokio::pin!(shutdown);
    let mut source = Source::Listen(listeners);
    let mut next = 0usize;
    loop {
        let incoming = tokio::select! {
            () = &mut shutdown => break,
            i = source.next() => i,
        };
        let Some(incoming) = incoming else { continue };
        let open: Vec<usize> = workers
            .iter()
            .map(|w| w.open.load(Ordering::Relaxed))
            .collect();
        let i = pick(&open, next);
        next = i + 1;
        let Some(w) = workers.get(i) else { continue };
        let handed = match incoming {
            Incoming::Plain(s, r) => s.into_std().map(|s| Accepted::Plain(s, r)),
            Incoming::Tls(s, r) => s.into_std().map(|s| Accepted::Tls(s, r)),
        };
        match handed {
            Ok(a) => {
                w.open.fetch_add(1, Ordering::Relaxed);
                if w.tx.send(a).is_err() {
                    w.open.fetch_sub(1, Ordering::Relaxed);
                }
            }
            Err(e) => tracing::warn!(error = %e, "web: handing over a connection failed"),
        }
    }
}

async fn run_threads(
    http: Option<TcpListener>,
    https: Option<TcpListener>,
    shared: Arc<Shared>,
    acceptor: TlsAcceptor,
    opts: ServerOptions,
    shutdown: impl Future<Output = ()>,
) -> io::Result<()> {
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut threads = Vec::with_capacity(opts.threads);
    let mut workers = Vec::with_capacity(opts.threads);
    for i in 0..opts.threads {
        let (tx, rx) = mpsc::unbounded_channel();
        let open = Arc::new(AtomicUsize::new(0));
        workers.push(Worker {
            tx,
            open: open.clone(),
        });
        let (shared, acceptor, opts) = (shared.clone(), acceptor.clone(), opts.clone());
        let mut stop = stop_rx.clone();
        let thread = std::thread::Builder::new().name(format!("web-{i}")).spawn(
            move || -> io::Result<()> {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()?;
                rt.block_on(async move {
                    let stopped = async move {
                        let _ = stop.wait_for(|s| *s).await;
                    };
                    serve_loop(Source::Queue(rx, open), shared, acceptor, &opts, stopped).await
                })
            },
        )?;
        threads.push(thread);
    }
    dispatch(Listeners { http, https }, &workers, shutdown).await;
    drop(workers);
    let _ = stop_tx.send(true);
    tokio::task::spawn_blocking(move || {
        for t in threads {
            match t.join() {
                Ok(Err(e)) => tracing::warn!(error = %e, "web: server thread failed"),
                Err(_) => tracing::error!("web: server thread panicked"),
                Ok(Ok(())) => {}
            }
        }
    })
    .await
    .map_err(io::Error::other)
}

async fn serve_loop(
    mut source: Source,
    shared: Arc<Shared>,
    acceptor: TlsAcceptor,
    opts: &ServerOptions,
    shutdown: impl Future<Output = ()>,
) -> io::Result<()> {
    let builder = Arc::new(builder(opts));
    let graceful = GracefulShutdown::new();
    let stop = CancellationToken::new();
    tokio::pin!(shutdown);
    loop {
        let incoming = tokio::select! {
            () = &mut shutdown => break,
            i = source.next() => i,
        };
        let guard = source.guard();
        let w = graceful.watcher();
        let t = opts.header_timeout;
        match incoming {
            None => {}
            Some(Incoming::Plain(stream, remote)) => {
                let (shared, stop) = (shared.clone(), stop.clone());
                tokio::spawn(async move {
                    serve_plain(shared, w, t, stop, stream, remote).await;
                    drop(guard);
                });
            }
            Some(Incoming::Tls(stream, remote)) => {
                let (shared, builder, acc) = (shared.clone(), builder.clone(), acceptor.clone());
                tokio::spawn(async move {
                    serve_tls(shared, builder, w, acc, t, stream, remote).await;
                    drop(guard);
                });
            }
        }
    }
    drop(source);
    stop.cancel();
    if tokio::time::timeout(opts.drain, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::info!("web: drain timed out; closing remaining connections");
    }
    Ok(())
}

fn builder(opts: &ServerOptions) -> auto::Builder<TokioExecutor> {
    let mut b = auto::Builder::new(TokioExecutor::new());
    b.http1()
        .timer(TokioTimer::new())
        .header_read_timeout(opts.header_timeout)
        .keep_alive(true);
    b.http2()
        .timer(TokioTimer::new())
        .max_concurrent_streams(256)
        .keep_alive_interval(Duration::from_secs(30));
    b
}

async fn accept(l: Option<&TcpListener>) -> io::Result<(TcpStream, SocketAddr)> {
    match l {
        Some(l) => l.accept().await,
        None => std::future::pending().await,
    }
}

/// Log accept errors (e.g. out of descriptors) and back off briefly.
async fn accepted(r: io::Result<(TcpStream, SocketAddr)>) -> Option<(TcpStream, SocketAddr)> {
    match r {
        Ok((s, a)) => {
            let _ = s.set_nodelay(true);
            Some((s, a))
        }
        Err(e) => {
            tracing::warn!(error = %e, "web: accept failed");
            tokio::time::sleep(Duration::from_millis(50)).await;
            None
        }
    }
}

/// A plain-HTTP connection: on the fast path ([`crate::fast`]; `stop` is the
/// server's shutdown signal) until a request needs hyper, then on hyper.
async fn serve_plain(
    shared: Arc<Shared>,
    watcher: Watcher,
    header_timeout: Duration,
    stop: CancellationToken,
    stream: TcpStream,
    remote: SocketAddr,
) {
    let Ok(local) = stream.local_addr() else {
        return;
    };
    let conn = Arc::new(Conn {
        remote,
        local,
        tls: false,
        sni: None,
    });
    let fc = FastConn {
        shared,
        conn,
        header_timeout,
        stop,
    };
    if let Some(handed) = fast::serve(&fc, stream).await {
        let FastConn { shared, conn, .. } = fc;
        let io = Rewind::new(handed);
        serve_plain_hyper(shared, conn, watcher, header_timeout, io).await;
    }
}

async fn serve_plain_hyper(
    shared: Arc<Shared>,
    conn: Arc<Conn>,
    watcher: Watcher,
    header_timeout: Duration,
    io: Rewind,
) {
    let remote = conn.remote;
    let svc = service_fn(move |req| {
        handler::handle(shared.clone(), conn.clone(), req.map(ReqBody::Incoming))
    });
    // Plain HTTP is HTTP/1.1 only (HTTP/2 is offered over TLS by ALPN): the HTTP/1
    // connection directly, without the auto builder's version sniffing.
    let c = http1_builder(header_timeout).serve_connection(TokioIo::new(io), svc);
    if let Err(e) = watcher.watch(c).await {
        tracing::debug!(%remote, error = %e, "web: connection ended with an error");
    }
}

/// The HTTP/1.1 connection settings of plain connections.
fn http1_builder(header_timeout: Duration) -> hyper::server::conn::http1::Builder {
    let mut b = hyper::server::conn::http1::Builder::new();
    b.timer(TokioTimer::new())
        .header_read_timeout(header_timeout)
        .keep_alive(true);
    b
}

async fn serve_tls(
    shared: Arc<Shared>,
    builder: Arc<auto::Builder<TokioExecutor>>,
    watcher: Watcher,
    acceptor: TlsAcceptor,
    timeout: Duration,
    stream: TcpStream,
    remote: SocketAddr,
) {
    let Ok(local) = stream.local_addr() else {
        return;
    };
    let tls = match tokio::time::timeout(timeout, acceptor.accept(stream)).await {
        Ok(Ok(s)) => s,
        Ok(Err(e)) => {
            tracing::debug!(%remote, error = %e, "web: TLS handshake failed");
            return;
        }
        Err(_) => return,
    };
    let sni = tls
        .get_ref()
        .1
        .server_name()
        .map(|s| s.trim_end_matches('.').to_ascii_lowercase());
    let conn = Arc::new(Conn {
        remote,
        local,
        tls: true,
        sni,
    });
    let svc = service_fn(move |req| {
        handler::handle(shared.clone(), conn.clone(), req.map(ReqBody::Incoming))
    });
    let (io, uncork) = cork::cork(tls);
    let c = builder.serve_connection(TokioIo::new(io), svc);
    if let Err(e) = uncork.drive(watcher.watch(c.into_owned()), timeout).await {
        tracing::debug!(%remote, error = %e, "web: connection ended with an error");
    }
}

#[cfg(test)]
mod tests {
    use super::pick;

    #[test]
    fn pick_takes_the_least_busy_worker_and_rotates_ties() {
        assert_eq!(pick(&[3, 1, 2], 0), 1);
        assert_eq!(pick(&[0, 0], 0), 0);
        assert_eq!(pick(&[0, 0], 1), 1);
        assert_eq!(pick(&[0, 0, 0], 5), 2);
        assert_eq!(pick(&[1, 0, 0], 3), 1);
        assert_eq!(pick(&[], 7), 0);
        // A burst of connections with none closing spreads evenly.
        let mut open = [0usize; 2];
        let mut next = 0;
        for _ in 0..64 {
            let i = pick(&open, next);
            open[i] += 1;
            next = i + 1;
        }
        assert_eq!(open, [32, 32]);
    }
}
