//! Sockets: UDP and TCP listeners answering from the current [`ZoneSet`].
//!
//! Each packet reads the zone set once (an `Arc` clone out of the watch channel), so a
//! new set published by the controller takes effect on the next query and no query is
//! ever dropped or answered from a half-updated set.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use hickory_proto::rr::Name;
use std::net::SocketAddr;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::sync::{mpsc, watch, Semaphore};
use tokio::task::JoinSet;

use crate::request::{handle_from, Outcome, Transport};
use crate::udp::{Batch, Reply};
use crate::zone::ZoneSet;

/// An accepted NOTIFY: the zone to check now.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Notified {
    /// Zone origin.
    pub zone: Name,
    /// Where the NOTIFY came from.
    pub from: SocketAddr,
}

/// Tunables of the socket layer.
#[derive(Clone, Debug)]
pub struct ServerOptions {
    /// Where accepted NOTIFY messages are reported (dropped when full or absent).
    pub notify_events: Option<mpsc::Sender<Notified>>,
    /// Tasks receiving on the UDP socket concurrently (at least 1).
    pub udp_workers: usize,
    /// A TCP connection with no complete query for this long is closed.
    pub tcp_idle_timeout: Duration,
    /// At most this many TCP connections are served at once; extra ones are closed.
    pub max_tcp_connections: usize,
}

impl Default for ServerOptions {
    fn default() -> Self {
        Self {
            tcp_idle_timeout: Duration::from_secs(10),
            max_tcp_connections: 1024,
            notify_events: None,
            udp_workers: 1,
        }
    }
}

/// Serves DNS on `udp` and `tcp` until `shutdown` completes, with default options.
///
/// `zones` is the live zone set: sending a new `Arc<ZoneSet>` adds, changes or removes
/// zones without a restart. Returns once `shutdown` resolves; open TCP connections are
/// closed then.
pub async fn run(
    udp: UdpSocket,
    tcp: TcpListener,
    zones: watch::Receiver<Arc<ZoneSet>>,
    shutdown: impl Future<Output = ()>,
) {
    run_with_options(udp, tcp, zones, shutdown, ServerOptions::default()).await;
}

/// [`run`] with explicit [`ServerOptions`].
pub async fn run_with_options(
    udp: UdpSocket,
    tcp: TcpListener,
    zones: watch::Receiver<Arc<ZoneSet>>,
    shutdown: impl Future<Output = ()>,
    options: ServerOptions,
) {
    tokio::select! {
        () = shutdown => {}
        () = serve_udp_workers(udp, zones.clone(), options.notify_events.clone(), options.udp_workers) => {}
        () = serve_tcp(&tcp, zones, options) => {}
    }
}

/// Reports an accepted NOTIFY (never blocks the answer path).
fn report(events: Option<&mpsc::Sender<Notified>>, outcome: &mut Outcome, from: SocketAddr) {
    if let (Some(events), Some(zone)) = (events, outcome.notified.take()) {
        if events.try_send(Notified { zone, from }).is_err() {
            tracing::debug!(%from, "notify queue full; the refresh timer will catch up");
        }
    }
}

/// Runs `workers` UDP receive loops on one socket; ends only if all of them end.
async fn serve_udp_workers(
    udp: UdpSocket,
    zones: watch::Receiver<Arc<ZoneSet>>,
    events: Option<mpsc::Sender<Notified>>,
    workers: usize,
) {
    let udp = Arc::new(udp);
    let mut tasks = JoinSet::new();
    for _ in 0..workers.max(1) {
        let (udp, zones, events) = (Arc::clone(&udp), zones.clone(), events.clone());
        tasks.spawn(async move { serve_udp(&udp, zones, events).await });
    }
    while tasks.join_next().await.is_some() {}
}

/// Most answers one UDP worker keeps encoded, over its two generations.
const ANSWER_CACHE_ENTRIES: usize = 50_000;

/// Encoded answers to plain UDP queries, valid for one zone set: keyed by the exact
/// question (and OPT record) bytes, so a hit differs from the query only in its id
/// and RD/CD bits, which are patched in. Signed requests, transfers, NOTIFY and
/// anything unusual never enter it.
///
/// Two generations: when the young one is full it becomes the old one (the previous
/// old one is dropped) and a hit in the old one moves back to the young one. So a
/// stream of one-off questions (random names answered NXDOMAIN) cycles through
/// without flushing the answers asked again and again.
///
/// The maps hash with foldhash, randomly seeded per map: the keys come from the
/// network, so the seed keeps collisions unpredictable, while the hash of a ~30-byte
/// question costs a fraction of SipHash's (std's default: ~1% of the answer path's
/// CPU in `perf`, with the lookup around it another ~8%).
#[derive(Default)]
struct AnswerCache {
    set: Option<Arc<ZoneSet>>,
    young: CacheMap,
    old: CacheMap,
}

/// One generation of the [`AnswerCache`]: question bytes → encoded answer.
type CacheMap = std::collections::HashMap<Vec<u8>, Arc<[u8]>, foldhash::fast::RandomState>;

/// The cache key of a plain query: the bytes after the header when the request is
/// opcode QUERY with one question, no answer/authority records and at most an OPT.
fn cache_key(req: &[u8]) -> Option<&[u8]> {
    let count = |at: usize| u16::from_be_bytes([req[at], req[at + 1]]);
    if req.len() < 17 || req[2] & 0xFE != 0 || req[3] & 0x0F != 0 {
        return None;
    }
    if count(4) != 1 || count(6) != 0 || count(8) != 0 || count(10) > 1 {
        return None;
    }
    let end = crate::tsig::skip_name(req, 12)? + 4;
    let qtype = u16::from_be_bytes([*req.get(end - 4)?, *req.get(end - 3)?]);
    if matches!(qtype, 251 | 252) {
        return None;
    }
    match count(10) {
        0 if end == req.len() => Some(&req[12..]),
        1 if req.get(end..end + 3) == Some(&[0, 0, 41]) => Some(&req[12..]),
        _ => None,
    }
}

impl AnswerCache {
    /// The cached answer to `req`, to be sent with its id and flags.
    fn get(&mut self, set: &Arc<ZoneSet>, req: &[u8]) -> Option<Reply> {
        if !self.set.as_ref().is_some_and(|s| Arc::ptr_eq(s, set)) {
            self.set = Some(Arc::clone(set));
            self.young.clear();
            self.old.clear();
            return None;
        }
        let key = cache_key(req)?;
        let hit = match self.young.get(key) {
            Some(hit) => Arc::clone(hit),
            None => {
                let (key, hit) = self.old.remove_entry(key)?;
                self.insert(key, Arc::clone(&hit));
                hit
            }
        };
        let flags = hit.get(2..4)?;
        let head = [
            req[0],
            req[1],
            (flags[0] & !0x01) | (req[2] & 0x01),
            (flags[1] & !0x10) | (req[3] & 0x10),
        ];
        Some(Reply::patched(head, hit))
    }

    /// Keeps `answer`, the only message answering `req` (a plain query).
    fn put(&mut self, req: &[u8], answer: &Arc<[u8]>) {
        let Some(key) = cache_key(req) else {
            return;
        };
        if answer.len() < 12 {
            return;
        }
        self.insert(key.to_vec(), Arc::clone(answer));
    }

    fn insert(&mut self, key: Vec<u8>, answer: Arc<[u8]>) {
        if self.young.len() >= ANSWER_CACHE_ENTRIES / 2 {
            self.old = std::mem::take(&mut self.young);
        }
        self.young.insert(key, answer);
    }
}

/// Answers UDP queries forever, a batch at a time ([`crate::udp`]): every datagram
/// waiting is received in one call, answered (from the answer cache when it can be),
/// and the answers are sent in one call.
async fn serve_udp(
    socket: &UdpSocket,
    zones: watch::Receiver<Arc<ZoneSet>>,
    events: Option<mpsc::Sender<Notified>>,
) {
    let mut batch = Batch::new();
    let mut cache = AnswerCache::default();
    let mut out = Vec::with_capacity(crate::udp::BATCH);
    loop {
        let got = match batch.recv(socket).await {
            Ok(got) => got,
            Err(e) => {
                tracing::debug!(error = %e, "udp receive failed");
                tokio::task::yield_now().await;
                continue;
            }
        };
        let set = zones.borrow().clone();
        out.clear();
        for (i, r) in got.iter().enumerate() {
            let request = batch.datagram(i, r.len);
            if let Some(reply) = cache.get(&set, request) {
                out.push((reply, r.addr));
                continue;
            }
            match handle_from(&set, request, r.peer.ip(), Transport::Udp) {
                Ok(mut outcome) => {
                    report(events.as_ref(), &mut outcome, r.peer);
                    let single = outcome.messages.len() == 1;
                    if let Some(message) = outcome.messages.into_iter().next() {
                        let message: Arc<[u8]> = message.into();
                        if single {
                            cache.put(request, &message);
                        }
                        out.push((Reply::whole(message), r.addr));
                    }
                }
                Err(e) => tracing::warn!(peer = %r.peer, error = %e, "dropping udp query"),
            }
        }
        drop(set);
        batch.send(socket, &out).await;
    }
}

/// Accepts TCP connections forever; dropping the future closes every connection.
async fn serve_tcp(
    listener: &TcpListener,
    zones: watch::Receiver<Arc<ZoneSet>>,
    options: ServerOptions,
) {
    let slots = Arc::new(Semaphore::new(options.max_tcp_connections));
    let mut connections = JoinSet::new();
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            Some(_) = connections.join_next(), if !connections.is_empty() => continue,
        };
        let (stream, peer) = match accepted {
            Ok(got) => got,
            Err(e) => {
                // Usually EMFILE: back off instead of spinning.
                tracing::warn!(error = %e, "tcp accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let Ok(permit) = Arc::clone(&slots).try_acquire_owned() else {
            tracing::debug!(%peer, "too many tcp connections, closing");
            continue;
        };
        let zones = zones.clone();
        let idle = options.tcp_idle_timeout;
        let events = options.notify_events.clone();
        connections.spawn(async move {
            if let Err(e) = serve_connection(stream, peer, zones, idle, events).await {
                tracing::debug!(%peer, error = %e, "tcp connection ended");
            }
            drop(permit);
        });
    }
}

/// Answers length-prefixed queries on one connection until EOF, error or idleness.
async fn serve_connection(
    mut stream: TcpStream,
    peer: SocketAddr,
    zones: watch::Receiver<Arc<ZoneSet>>,
    idle: Duration,
    events: Option<mpsc::Sender<Notified>>,
) -> std::io::Result<()> {
    let mut len_buf = [0u8; 2];
    let mut buf = Vec::new();
    loop {
        match tokio::time::timeout(idle, stream.read_exact(&mut len_buf)).await {
            Ok(Ok(_)) => {}
            Ok(Err(e)) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(()),
            Ok(Err(e)) => return Err(e),
            Err(_) => return Ok(()),
        }
        let len = usize::from(u16::from_be_bytes(len_buf));
        buf.resize(len, 0);
        match tokio::time::timeout(idle, stream.read_exact(&mut buf)).await {
            Ok(read) => {
                read?;
            }
            Err(_) => return Ok(()),
        }
        let set = zones.borrow().clone();
        let mut outcome = match handle_from(&set, &buf, peer.ip(), Transport::Tcp) {
            Ok(outcome) => outcome,
            Err(e) => {
                tracing::warn!(error = %e, "closing tcp connection after unanswerable query");
                return Ok(());
            }
        };
        drop(set);
        report(events.as_ref(), &mut outcome, peer);
        for reply in &outcome.messages {
            let Ok(reply_len) = u16::try_from(reply.len()) else {
                return Ok(());
            };
            let mut framed = Vec::with_capacity(reply.len() + 2);
            framed.extend_from_slice(&reply_len.to_be_bytes());
            framed.extend_from_slice(reply);
            match tokio::time::timeout(idle, stream.write_all(&framed)).await {
                Ok(written) => written?,
                Err(_) => return Ok(()),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::zone::{RecordLine, ZoneData};
    use hickory_proto::op::{Edns, Message, OpCode, Query};
    use hickory_proto::rr::RecordType;

    fn set(ip: &str) -> Arc<ZoneSet> {
        let line = |n: &str, t: &str, d: &str| RecordLine {
            name: n.into(),
            ttl: 60,
            rtype: t.into(),
            rdata: d.into(),
        };
        let data = ZoneData {
            origin: "example.com.".into(),
            serial: 1,
            records: vec![
                line(
                    "example.com.",
                    "SOA",
                    "ns.example.com. h.example.com. 1 2 3 4 5",
                ),
                line("www.example.com.", "A", ip),
            ],
        };
        Arc::new(ZoneSet::from_data([&data]).expect("zones"))
    }

    fn query(id: u16, name: &str, qtype: RecordType, rd: bool, edns: bool, op: OpCode) -> Vec<u8> {
        let mut m = Message::query();
        m.metadata.id = id;
        m.metadata.op_code = op;
        m.metadata.recursion_desired = rd;
        m.add_query(Query::query(Name::from_ascii(name).expect("name"), qtype));
        if edns {
            m.set_edns(Edns::new());
        }
        m.to_vec().expect("encode")
    }

    fn answer(cache: &mut AnswerCache, zones: &Arc<ZoneSet>, req: &[u8]) -> (bool, Message) {
        if let Some(hit) = cache.get(zones, req) {
            return (true, Message::from_vec(&hit.to_vec()).expect("decode"));
        }
        let peer = std::net::IpAddr::from([127, 0, 0, 1]);
        let outcome = handle_from(zones, req, peer, Transport::Udp).expect("answer");
        let message: Arc<[u8]> = outcome.messages[0].clone().into();
        if outcome.messages.len() == 1 {
            cache.put(req, &message);
        }
        (false, Message::from_vec(&message).expect("decode"))
    }

    #[test]
    fn answer_cache_patches_id_and_flags_and_follows_zone_changes() {
        let mut cache = AnswerCache::default();
        let zones = set("192.0.2.1");
        let q = |id, rd| {
            query(
                id,
                "www.example.com.",
                RecordType::A,
                rd,
                false,
                OpCode::Query,
            )
        };
        assert!(!answer(&mut cache, &zones, &q(1, true)).0);
        let (hit, m) = answer(&mut cache, &zones, &q(2, false));
        assert!(hit);
        assert_eq!(m.metadata.id, 2);
        assert!(!m.metadata.recursion_desired);
        assert!(m.metadata.authoritative);
        assert_eq!(m.answers.len(), 1);
        // Other case, EDNS: separate entries with their own answers.
        let upper = query(
            3,
            "WWW.example.com.",
            RecordType::A,
            true,
            true,
            OpCode::Query,
        );
        let (hit, m) = answer(&mut cache, &zones, &upper);
        assert!(!hit);
        assert_eq!(m.queries[0].name().to_ascii(), "WWW.example.com.");
        assert!(m.edns.is_some());
        // A new zone set empties the cache.
        let changed = set("192.0.2.2");
        let (hit, m) = answer(&mut cache, &changed, &q(4, true));
        assert!(!hit);
        assert_eq!(m.answers[0].data.to_string(), "192.0.2.2");
        // Transfers and NOTIFY never use it.
        assert!(cache_key(&query(
            5,
            "example.com.",
            RecordType::AXFR,
            false,
            false,
            OpCode::Query
        ))
        .is_none());
        assert!(cache_key(&query(
            6,
            "example.com.",
            RecordType::SOA,
            false,
            false,
            OpCode::Notify
        ))
        .is_none());
        assert!(cache_key(&[0u8; 11]).is_none());
    }

    /// One-off questions cycle through the cache without pushing out an answer that
    /// keeps being asked; an answer asked no more ages out.
    #[test]
    fn answer_cache_keeps_what_is_asked_again() {
        let mut cache = AnswerCache::default();
        let zones = set("192.0.2.1");
        let q = |name: &str| query(1, name, RecordType::A, false, false, OpCode::Query);
        let hot = q("www.example.com.");
        let cold = q("cold.example.com.");
        assert!(!answer(&mut cache, &zones, &hot).0);
        assert!(!answer(&mut cache, &zones, &cold).0);
        for i in 0..ANSWER_CACHE_ENTRIES * 2 {
            let name = format!("nx{i}.example.com.");
            assert!(!answer(&mut cache, &zones, &q(&name)).0);
            if i % 1000 == 0 {
                assert!(answer(&mut cache, &zones, &hot).0, "hot answer lost at {i}");
            }
        }
        assert!(!answer(&mut cache, &zones, &cold).0, "cold answer kept");
        assert!(cache.young.len() + cache.old.len() <= ANSWER_CACHE_ENTRIES);
    }
}
