//! One long poll per files server: a task waiting on the hub's logs of every running
//! site of that server at once (`HubApi::wait_many`), waking the loop of each site that
//! has news. A thousand sites cost one connection and no thread, where a long poll per
//! site cost a thousand of each.
//!
//! The poller asks each site after the larger of the site's applied position and the
//! head it last reported for it, so a site told about news is not reported again while
//! it applies; if the site has not caught up [`RENOTIFY`] later it is told again (its
//! sync may have failed). It also owns the sites' `hub_down`: set while the hub is
//! unreachable (health `degraded`), cleared when it answers, and every site is woken
//! then so its outbox drains at once.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use sitesync::transport::client::HttpsHub;
use tokio::sync::{mpsc, Notify};

use super::site::{Msg, Shared};

/// How long one long poll waits.
pub const LONG_POLL: Duration = Duration::from_secs(25);
/// How long a site told of news may take to apply it before it is told again.
pub const RENOTIFY: Duration = Duration::from_secs(5);
/// The longest pause between two attempts while the hub is unreachable: issue 14 wants
/// every tree equal within 5 s of the files server's return.
pub const MAX_BACKOFF: Duration = Duration::from_secs(4);

/// A site as the poller sees it.
#[derive(Debug, Clone)]
pub struct Member {
    /// Its position, status and stop flag.
    pub shared: Arc<Shared>,
    /// Its loop.
    pub tx: mpsc::UnboundedSender<Msg>,
}

/// The sites of one files server, shared by the engine (adds and removes), the site
/// loops (wake the poller when they start running) and the poller.
#[derive(Debug, Default)]
pub struct Registry {
    sites: Mutex<BTreeMap<String, Member>>,
    /// Wakes the poller to ask again with the new set of sites.
    pub changed: Notify,
}

impl Registry {
    /// Adds (or replaces) a site.
    pub fn insert(&self, site: &str, member: Member) {
        self.lock().insert(site.to_string(), member);
        self.changed.notify_one();
    }

    /// Removes a site.
    pub fn remove(&self, site: &str) {
        self.lock().remove(site);
    }

    /// How many sites.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// Whether no site is left.
    pub fn is_empty(&self) -> bool {
        self.lock().is_empty()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, Member>> {
        self.sites
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn snapshot(&self) -> BTreeMap<String, Member> {
        self.lock().clone()
    }
}

/// Runs until the registry is dropped by the engine (the task is aborted) — it never
/// ends by itself.
pub async fn run(origin: String, hub: HttpsHub, registry: Arc<Registry>) {
    let mut told: HashMap<String, (u64, Instant)> = HashMap::new();
    let mut backoff = Duration::from_secs(1);
    let mut was_down = false;
    loop {
        let members = registry.snapshot();
        let mut ask = BTreeMap::new();
        let mut hold = false;
        for (site, m) in &members {
            if m.shared.stop.load(Ordering::Relaxed) || !m.shared.get().running {
                continue;
            }
            let applied = m.shared.seq.load(Ordering::Relaxed);
            let mut seq = applied;
            if let Some((head, at)) = told.get_mut(site) {
                if *head <= applied {
                    told.remove(site);
                } else {
                    if at.elapsed() >= RENOTIFY {
                        let _ = m.tx.send(Msg::News);
                        *at = Instant::now();
                    }
                    seq = *head;
                    hold = true;
                }
            }
            ask.insert(site.clone(), seq);
        }
        told.retain(|s, _| members.contains_key(s));
        if ask.is_empty() {
            // nothing running yet: wait for a site to start
            let _ = tokio::time::timeout(LONG_POLL, registry.changed.notified()).await;
            continue;
        }
        let wait = if hold { RENOTIFY } else { LONG_POLL };
        let asked = Instant::now();
        let answer = tokio::select! {
            a = hub.wait_many_async(&ask, wait) => a,
            () = registry.changed.notified() => {
                // sites starting together: ask again once for all of them
                tokio::time::sleep(Duration::from_millis(200)).await;
                continue;
            }
        };
        match answer {
            Ok(answer) => {
                backoff = Duration::from_secs(1);
                if was_down {
                    tracing::info!(%origin, "sitesync: the hub answers again");
                }
                for (site, m) in &members {
                    if !ask.contains_key(site) {
                        continue;
                    }
                    let refused = answer.denied.contains(site);
                    m.shared.set(|s| {
                        s.hub_down =
                            refused.then(|| format!("refused: this server may not sync {site}"));
                    });
                    if let Some(head) = answer.ready.get(site) {
                        told.insert(site.clone(), (*head, Instant::now()));
                        let _ = m.tx.send(Msg::News);
                    } else if was_down {
                        let _ = m.tx.send(Msg::News);
                    }
                }
                was_down = false;
                if answer.ready.is_empty() && asked.elapsed() < Duration::from_secs(1) && !hold {
                    // an empty answer that did not wait: never spin on the hub
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            }
            Err(e) => {
                if !was_down {
                    tracing::warn!(%origin, error = %e, "sitesync: the hub is unreachable; serving and PHP writes go on, changes wait in the outbox");
                }
                was_down = true;
                let why = e.to_string();
                for site in ask.keys() {
                    if let Some(m) = members.get(site) {
                        m.shared.set(|s| s.hub_down = Some(why.clone()));
                    }
                }
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(MAX_BACKOFF);
            }
        }
    }
}
