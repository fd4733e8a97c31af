//! The session data: one namespace per site, each key with its value and expiry
//! (pure; the caller passes the clock, so tests drive time).
//!
//! - **Namespaces.** Every call names the site; a key of one site is invisible to
//!   every other whatever its name, since the namespace is chosen by the server from
//!   the caller's identity, never from the key.
//! - **Expiry.** Every key expires: a write without a time to live gets
//!   [`Limits::max_ttl`], and none may ask for more. An expired key is gone for reads at
//!   once and its memory is freed by [`Store::sweep`] (the server runs it every second).
//! - **Memory bound per site.** A site's keys and values may use at most
//!   [`Limits::site_bytes`] (counted as key + value + [`ENTRY_OVERHEAD`]). A write
//!   that would go over it evicts that site's keys closest to expiry, never another
//!   site's; a single entry larger than the whole bound is refused ([`Full`]).

use std::collections::{BTreeSet, HashMap};
use std::time::{Duration, Instant};

/// Bytes counted per entry beside its key and value (map slots, expiry index).
pub const ENTRY_OVERHEAD: usize = 96;

/// The bounds of the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Memory one site's sessions may use.
    pub site_bytes: usize,
    /// The longest time to live (also that of keys written without one).
    pub max_ttl: Duration,
}

impl Default for Limits {
    /// 64 MiB per site, 30 days.
    fn default() -> Self {
        Limits {
            site_bytes: 64 << 20,
            max_ttl: Duration::from_secs(30 * 86_400),
        }
    }
}

/// A write larger than the site's whole memory bound.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("OOM a session of {size} bytes is over this site's limit of {limit} bytes")]
pub struct Full {
    /// The entry's counted size.
    pub size: usize,
    /// The site's bound.
    pub limit: usize,
}

#[derive(Debug)]
struct Entry {
    value: Vec<u8>,
    expires: Instant,
}

fn cost(key: &[u8], value: &[u8]) -> usize {
    // the key is held twice: in the map and in the expiry index
    2 * key.len() + value.len() + ENTRY_OVERHEAD
}

/// One site's keys.
#[derive(Debug, Default)]
struct Space {
    map: HashMap<Vec<u8>, Entry>,
    by_expiry: BTreeSet<(Instant, Vec<u8>)>,
    bytes: usize,
}

impl Space {
    fn remove(&mut self, key: &[u8]) -> Option<Entry> {
        let e = self.map.remove(key)?;
        self.by_expiry.remove(&(e.expires, key.to_vec()));
        self.bytes -= cost(key, &e.value);
        Some(e)
    }

    fn live(&self, key: &[u8], now: Instant) -> Option<&Entry> {
        self.map.get(key).filter(|e| e.expires > now)
    }
}

/// Every site's sessions.
#[derive(Debug, Default)]
pub struct Store {
    limits: Limits,
    sites: HashMap<String, Space>,
    evicted: u64,
}

impl Store {
    /// An empty store with `limits`.
    pub fn new(limits: Limits) -> Self {
        Store {
            limits,
            ..Store::default()
        }
    }

    /// The bounds.
    pub fn limits(&self) -> Limits {
        self.limits
    }

    /// `ttl` clamped to the longest allowed (`None`: the longest).
    pub fn clamp(&self, ttl: Option<Duration>) -> Duration {
        ttl.map_or(self.limits.max_ttl, |t| t.min(self.limits.max_ttl))
    }

    /// The value of `key` in `site`, unless absent or expired.
    pub fn get(&self, site: &str, key: &[u8], now: Instant) -> Option<&[u8]> {
        let e = self.sites.get(site)?.live(key, now)?;
        Some(&e.value)
    }

    /// The time left of `key`, unless absent or expired.
    pub fn ttl(&self, site: &str, key: &[u8], now: Instant) -> Option<Duration> {
        let e = self.sites.get(site)?.live(key, now)?;
        Some(e.expires - now)
    }

    /// Set `key` to `value` for `ttl` (clamped, see [`Store::clamp`]), evicting the
    /// site's keys closest to expiry while it would be over its bound.
    pub fn set(
        &mut self,
        site: &str,
        key: &[u8],
        value: Vec<u8>,
        ttl: Option<Duration>,
        now: Instant,
    ) -> Result<(), Full> {
        let size = cost(key, &value);
        let limit = self.limits.site_bytes;
        if size > limit {
            return Err(Full { size, limit });
        }
        let expires = now + self.clamp(ttl);
        let space = self.sites.entry(site.to_owned()).or_default();
        space.remove(key);
        while space.bytes + size > limit {
            let Some((_, victim)) = space.by_expiry.iter().next().cloned() else {
                break;
            };
            space.remove(&victim);
            self.evicted += 1;
        }
        space.bytes += size;
        space.by_expiry.insert((expires, key.to_vec()));
        space.map.insert(key.to_vec(), Entry { value, expires });
        Ok(())
    }

    /// Delete `key`; whether a live key was there.
    pub fn del(&mut self, site: &str, key: &[u8], now: Instant) -> bool {
        let Some(space) = self.sites.get_mut(site) else {
            return false;
        };
        space.remove(key).is_some_and(|e| e.expires > now)
    }

    /// Give a live `key` a new time to live (clamped); whether it was there.
    pub fn expire(&mut self, site: &str, key: &[u8], ttl: Duration, now: Instant) -> bool {
        let expires = now + self.clamp(Some(ttl));
        let Some(space) = self.sites.get_mut(site) else {
            return false;
        };
        let Some(e) = space.map.get_mut(key).filter(|e| e.expires > now) else {
            return false;
        };
        let old = std::mem::replace(&mut e.expires, expires);
        space.by_expiry.remove(&(old, key.to_vec()));
        space.by_expiry.insert((expires, key.to_vec()));
        true
    }

    /// Free every expired key; returns how many.
    pub fn sweep(&mut self, now: Instant) -> usize {
        let mut n = 0;
        for space in self.sites.values_mut() {
            while let Some((at, key)) = space.by_expiry.iter().next().cloned() {
                if at > now {
                    break;
                }
                space.remove(&key);
                n += 1;
            }
        }
        self.sites.retain(|_, s| !s.map.is_empty());
        n
    }

    /// Drop the namespaces of sites not in `keep` (sites gone from this server).
    pub fn retain_sites(&mut self, keep: impl Fn(&str) -> bool) {
        self.sites.retain(|site, _| keep(site));
    }

    /// Bytes a site uses (as counted against its bound).
    pub fn site_bytes(&self, site: &str) -> usize {
        self.sites.get(site).map_or(0, |s| s.bytes)
    }

    /// Live keys of every site, for a peer that starts empty: (site, key, value,
    /// time left).
    pub fn snapshot(&self, now: Instant) -> Vec<(&str, &[u8], &[u8], Duration)> {
        let mut out = Vec::new();
        for (site, space) in &self.sites {
            for (k, e) in &space.map {
                if e.expires > now {
                    out.push((
                        site.as_str(),
                        k.as_slice(),
                        e.value.as_slice(),
                        e.expires - now,
                    ));
                }
            }
        }
        out
    }

    /// Keys evicted to stay within a site's bound since start.
    pub fn evicted(&self) -> u64 {
        self.evicted
    }

    /// Live and expired-but-unswept keys of all sites.
    pub fn len(&self) -> usize {
        self.sites.values().map(|s| s.map.len()).sum()
    }

    /// Whether no site has a key.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn small(site_bytes: usize) -> Store {
        Store::new(Limits {
            site_bytes,
            max_ttl: Duration::from_secs(100),
        })
    }

    #[test]
    fn sites_never_see_each_other() {
        let (mut s, t) = (Store::default(), Instant::now());
        s.set("a.example", b"k", b"secret".to_vec(), None, t)
            .unwrap();
        assert_eq!(s.get("a.example", b"k", t), Some(&b"secret"[..]));
        assert_eq!(s.get("b.example", b"k", t), None);
        assert!(!s.del("b.example", b"k", t));
        assert!(!s.expire("b.example", b"k", Duration::from_secs(1), t));
        assert_eq!(s.get("a.example", b"k", t), Some(&b"secret"[..]));
    }

    #[test]
    fn ttls_are_honoured_clamped_and_swept() {
        let (mut s, t) = (small(1 << 20), Instant::now());
        s.set("a", b"k", b"v".to_vec(), Some(Duration::from_secs(10)), t)
            .unwrap();
        s.set("a", b"forever", b"v".to_vec(), None, t).unwrap();
        s.set(
            "a",
            b"long",
            b"v".to_vec(),
            Some(Duration::from_secs(1000)),
            t,
        )
        .unwrap();
        assert_eq!(s.ttl("a", b"forever", t), Some(Duration::from_secs(100)));
        assert_eq!(s.ttl("a", b"long", t), Some(Duration::from_secs(100)));
        let later = t + Duration::from_secs(10);
        assert_eq!(s.get("a", b"k", later), None, "expired at its deadline");
        assert!(!s.expire("a", b"k", Duration::from_secs(5), later));
        assert_eq!(s.sweep(later), 1);
        assert_eq!(s.len(), 2);
        assert!(s.expire("a", b"long", Duration::from_secs(50), later));
        assert_eq!(s.sweep(later + Duration::from_secs(50)), 1);
        assert_eq!(s.sweep(later + Duration::from_secs(90)), 1);
        assert!(s.is_empty());
        assert_eq!(s.site_bytes("a"), 0);
    }

    #[test]
    fn a_full_site_evicts_its_own_soonest_to_expire() {
        let one = cost(b"k0", &[0; 100]);
        let (mut s, t) = (small(3 * one), Instant::now());
        s.set(
            "other",
            b"k0",
            vec![0; 100],
            Some(Duration::from_secs(1)),
            t,
        )
        .unwrap();
        for i in 0..3u64 {
            let ttl = Some(Duration::from_secs(10 + i));
            s.set("a", format!("k{i}").as_bytes(), vec![0; 100], ttl, t)
                .unwrap();
        }
        s.set("a", b"k3", vec![0; 100], Some(Duration::from_secs(5)), t)
            .unwrap();
        assert_eq!(s.get("a", b"k0", t), None, "the soonest to expire went");
        assert!(s.get("a", b"k1", t).is_some() && s.get("a", b"k3", t).is_some());
        assert_eq!(s.site_bytes("a"), 3 * one);
        assert!(
            s.get("other", b"k0", t).is_some(),
            "another site is untouched"
        );
        assert_eq!(s.evicted(), 1);
        // rewriting a key replaces its size, it does not add to it
        s.set("a", b"k3", vec![0; 100], None, t).unwrap();
        assert_eq!(s.site_bytes("a"), 3 * one);
        let err = s.set("a", b"huge", vec![0; 3 * one], None, t).unwrap_err();
        assert_eq!(err.limit, 3 * one);
        assert!(
            s.get("a", b"k1", t).is_some(),
            "a refused write evicts nothing"
        );
    }

    #[test]
    fn snapshot_lists_live_keys_with_time_left() {
        let (mut s, t) = (small(1 << 20), Instant::now());
        s.set("a", b"k", b"v".to_vec(), Some(Duration::from_secs(10)), t)
            .unwrap();
        s.set("b", b"gone", b"v".to_vec(), Some(Duration::from_secs(1)), t)
            .unwrap();
        let snap = s.snapshot(t + Duration::from_secs(4));
        assert_eq!(
            snap,
            vec![("a", &b"k"[..], &b"v"[..], Duration::from_secs(6))]
        );
        s.retain_sites(|site| site != "a");
        assert_eq!(s.get("a", b"k", t), None);
    }
}
