//! Replication between the web servers of a cluster, over HTTPS with mutual TLS
//! ([`super::peer_tls`]).
//!
//! - **Sending** ([`Replicator::send`]): a write applied here is posted to every other
//!   server of the cluster at once (`POST /v1/sessions/apply`, the body one command of
//!   [`Write::encode`]); PHP's answer waits for them up to [`Replicator::wait`]. A peer
//!   that has not answered by then is skipped for this write (it still gets it if it
//!   answers later) and logged; one that failed is *down* for [`DOWN_FOR`]: writes
//!   still go to it in the background but nothing waits for it, so a dead server costs
//!   at most one bounded wait every [`DOWN_FOR`], never a stall. At most
//!   [`IN_FLIGHT`] writes per peer are under way; beyond that a write to it is dropped
//!   (and logged).
//! - **Receiving** ([`handle`]): only from a certificate naming a server of this
//!   cluster (the config's peers), only for a site this server has; applied, then
//!   answered `204`.
//! - **Snapshot** (`GET /v1/sessions/snapshot`): every live key with its time left, so
//!   a server that starts (or restarts) asks its peers for the sessions written while
//!   it was away ([`Replicator::fetch_snapshot`]).

use std::collections::BTreeSet;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use bytes::Bytes;
use http::{Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use tokio::sync::Semaphore;

use super::command::Write;
use super::peer_tls::PeerNames;
use super::resp::{parse, MAX_COMMAND};
use super::Shared;

/// How long a peer that failed is not waited for.
pub const DOWN_FOR: Duration = Duration::from_secs(5);
/// Writes under way to one peer at most.
pub const IN_FLIGHT: usize = 256;
/// How long a write may take to reach a peer in the background.
const SEND_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a snapshot may take from one peer (PHP waits less, see
/// [`super::READY_WAIT`]).
const SNAPSHOT_TIMEOUT: Duration = Duration::from_secs(30);
/// Largest snapshot accepted from a peer.
const MAX_SNAPSHOT: usize = 1 << 30;

/// Another web server of the cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Peer {
    /// Its server name (its certificate's common name).
    pub name: String,
    /// Its session replication address.
    pub addr: SocketAddr,
}

struct PeerState {
    peer: Peer,
    slots: Arc<Semaphore>,
    down_until: Mutex<Option<Instant>>,
}

impl PeerState {
    fn down(&self) -> bool {
        self.down_until
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .is_some_and(|t| t > Instant::now())
    }

    fn mark(&self, ok: bool) {
        let mut d = self
            .down_until
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        match ok {
            true => *d = None,
            false => *d = Some(Instant::now() + DOWN_FOR),
        }
    }
}

/// Sends this server's writes to its peers.
pub struct Replicator {
    client: Option<reqwest::Client>,
    peers: ArcSwap<Vec<Arc<PeerState>>>,
    names: PeerNames,
    wait: Duration,
}

impl std::fmt::Debug for Replicator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Replicator")
            .field("peers", &self.peers.load().len())
            .field("wait", &self.wait)
            .finish_non_exhaustive()
    }
}

impl Replicator {
    /// `client` is `None` without an identity (then nothing is replicated); `names`
    /// is shared with the TLS verifiers; `wait` bounds PHP's wait for the peers.
    pub fn new(client: Option<reqwest::Client>, names: PeerNames, wait: Duration) -> Self {
        Replicator {
            client,
            peers: ArcSwap::from_pointee(Vec::new()),
            names,
            wait,
        }
    }

    /// The HTTPS client of the replication (connections from `bind`).
    pub fn client(tls: rustls::ClientConfig, bind: IpAddr) -> Result<reqwest::Client, String> {
        reqwest::Client::builder()
            .use_preconfigured_tls(tls)
            .https_only(true)
            .local_address(Some(bind))
            .connect_timeout(Duration::from_secs(2))
            .timeout(SEND_TIMEOUT)
            .pool_max_idle_per_host(16)
            .build()
            .map_err(|e| e.to_string())
    }

    /// How long PHP waits for the peers at most.
    pub fn wait(&self) -> Duration {
        self.wait
    }

    /// Replace the peers (a peer kept keeps its state).
    pub fn set_peers(&self, peers: Vec<Peer>) {
        let old = self.peers.load();
        let next: Vec<Arc<PeerState>> = peers
            .into_iter()
            .map(|p| match old.iter().find(|s| s.peer == p) {
                Some(s) => s.clone(),
                None => Arc::new(PeerState {
                    peer: p,
                    slots: Arc::new(Semaphore::new(IN_FLIGHT)),
                    down_until: Mutex::new(None),
                }),
            })
            .collect();
        let names: BTreeSet<String> = next.iter().map(|s| s.peer.name.clone()).collect();
        self.names.store(Arc::new(names));
        self.peers.store(Arc::new(next));
    }

    /// The peers now.
    pub fn peers(&self) -> Vec<Peer> {
        self.peers.load().iter().map(|s| s.peer.clone()).collect()
    }

    /// Send `write` of `site` to every peer; returns when all that are up answered,
    /// or after [`Replicator::wait`].
    pub async fn send(&self, site: &str, write: &Write) {
        let Some(client) = &self.client else {
            return;
        };
        let peers = self.peers.load_full();
        if peers.is_empty() {
            return;
        }
        let mut body = Vec::new();
        write.encode(site, &mut body);
        let body = Bytes::from(body);
        let mut waits = Vec::new();
        for p in peers.iter() {
            let Ok(permit) = p.slots.clone().try_acquire_owned() else {
                tracing::warn!(peer = %p.peer.name, site, "session replication: peer too slow, a write dropped");
                continue;
            };
            let (client, p2, body) = (client.clone(), p.clone(), body.clone());
            let task = tokio::spawn(async move {
                let _permit = permit;
                let url = format!("https://{}/v1/sessions/apply", p2.peer.addr);
                let r = client.post(url).body(body).send().await;
                // Any answer but a server error means the peer is up; a 404 is a
                // site it does not have (yet, or any more), other 4xx a refusal
                // (a 403: it does not count this server in its cluster yet).
                let up = match &r {
                    Ok(resp) => {
                        let st = resp.status();
                        if st.is_client_error() && st != StatusCode::NOT_FOUND {
                            tracing::warn!(peer = %p2.peer.name, status = %st, "session replication: the peer refused a write");
                        }
                        !st.is_server_error()
                    }
                    Err(_) => false,
                };
                if !up && !p2.down() {
                    let why = match r {
                        Ok(resp) => resp.status().to_string(),
                        Err(e) => e.to_string(),
                    };
                    tracing::warn!(peer = %p2.peer.name, error = %why, "session replication: write not delivered");
                }
                p2.mark(up);
            });
            if !p.down() {
                waits.push((p.clone(), task));
            }
        }
        let deadline = tokio::time::Instant::now() + self.wait;
        for (p, task) in waits {
            if tokio::time::timeout_at(deadline, task).await.is_err() {
                tracing::warn!(peer = %p.peer.name, site, wait_ms = self.wait.as_millis() as u64,
                    "session replication: peer did not answer in time, skipped");
                p.mark(false);
            }
        }
    }

    /// Ask the peers, one after the other, for their sessions; the first answer is
    /// applied (keys this server has already written stay). Returns the keys taken.
    pub async fn fetch_snapshot(&self, shared: &Shared) -> Option<usize> {
        let client = self.client.as_ref()?;
        for p in self.peers.load().iter() {
            let url = format!("https://{}/v1/sessions/snapshot", p.peer.addr);
            let got = async {
                let r = client.get(url).timeout(SNAPSHOT_TIMEOUT).send().await?;
                r.error_for_status()?.bytes().await
            }
            .await;
            let body = match got {
                Ok(b) if b.len() <= MAX_SNAPSHOT => b,
                Ok(_) => continue,
                Err(e) => {
                    tracing::info!(peer = %p.peer.name, error = %e, "no session snapshot from this peer");
                    continue;
                }
            };
            let mut rest = &body[..];
            let mut n = 0;
            let now = Instant::now();
            let mut store = shared.lock_store();
            while let Ok(Some((args, used))) = parse(rest) {
                rest = &rest[used..];
                if let Some((site, Write::Set { key, value, ttl })) = Write::decode(&args) {
                    if store.get(&site, &key, now).is_none() {
                        let _ = store.set(&site, &key, value, Some(ttl), now);
                        n += 1;
                    }
                }
            }
            return Some(n);
        }
        None
    }
}

fn answer(status: StatusCode, body: impl Into<Bytes>) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(body.into()));
    *r.status_mut() = status;
    r
}

/// One request on the replication port from `client` (its certificate's name).
pub async fn handle(
    shared: Arc<Shared>,
    client: Option<Arc<str>>,
    req: Request<Incoming>,
) -> Response<Full<Bytes>> {
    let allowed = client
        .as_deref()
        .is_some_and(|c| shared.replicator.names.load().contains(c));
    if !allowed {
        let who = client.as_deref().unwrap_or("?").to_owned();
        tracing::warn!(client = %who, "session replication: refused a server outside this cluster");
        return answer(
            StatusCode::FORBIDDEN,
            format!("{who} is not a server of this cluster\n"),
        );
    }
    match (req.method(), req.uri().path()) {
        (&Method::POST, "/v1/sessions/apply") => {
            let body = match Limited::new(req.into_body(), MAX_COMMAND + 4096)
                .collect()
                .await
            {
                Ok(b) => b.to_bytes(),
                Err(_) => return answer(StatusCode::PAYLOAD_TOO_LARGE, "body too large\n"),
            };
            let Ok(Some((args, _))) = parse(&body) else {
                return answer(StatusCode::BAD_REQUEST, "body: not one session write\n");
            };
            let Some((site, write)) = Write::decode(&args) else {
                return answer(StatusCode::BAD_REQUEST, "body: not one session write\n");
            };
            if !shared.has_site(&site) {
                return answer(
                    StatusCode::NOT_FOUND,
                    format!("site {site} is not on this server\n"),
                );
            }
            write.apply(&mut shared.lock_store(), &site, Instant::now());
            answer(StatusCode::NO_CONTENT, Bytes::new())
        }
        (&Method::GET, "/v1/sessions/snapshot") => {
            let mut out = Vec::new();
            {
                let store = shared.lock_store();
                for (site, key, value, ttl) in store.snapshot(Instant::now()) {
                    let w = Write::Set {
                        key: key.to_vec(),
                        value: value.to_vec(),
                        ttl,
                    };
                    w.encode(site, &mut out);
                }
            }
            answer(StatusCode::OK, out)
        }
        _ => answer(StatusCode::NOT_FOUND, "no such route\n"),
    }
}
