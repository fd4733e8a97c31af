//! One login throttle for every door (API login, SMTP AUTH, POP3, FTP, and later
//! IMAP and the panel).
//!
//! The rules, all decided under one lock so concurrent attempts cannot slip past:
//!
//! - **A failure is reserved before the password is checked.** [`Throttle::reserve`]
//!   counts the attempt as a failure at once and hands out a [`Ticket`]; the door
//!   verifies the password and calls [`Ticket::succeeded`] when it was right (the
//!   reservation is released and that source's failures are forgotten). A ticket
//!   dropped without success stays a failure. So N concurrent wrong guesses see each
//!   other's reservations: at most `free_per_source` of them reach the password check.
//! - **Keyed by (account, source address).** Past `free_per_source` failures, a source
//!   must wait `source_base · 2^(extra failures)` (capped at `source_cap`) after its
//!   last failure before its next attempt on that account; earlier attempts are
//!   refused with the time to wait. IPv6 sources count per /64.
//! - **Address-wide: password spraying is slow too.** Past `free_per_address`
//!   failures from one source over all accounts, that source waits the same way
//!   (doubling from `source_base`, capped at `source_cap`) between attempts.
//! - **Account-wide: a capped delay, never a lockout.** Past `free_per_account`
//!   failures on an account (from all sources together), the account's next attempt
//!   may start only `source_base · 2^(extra)` (capped at `account_cap`) after its last
//!   failure. A source with failures of its own is refused until then; a source with
//!   none is *delayed* instead ([`Ticket::wait`], at most `account_cap`), so the
//!   right password from a clean address always gets through within the cap.
//! - **Bearer tokens are no part of this**: doors throttle password attempts only;
//!   the API keeps a separate throttle for bad tokens, keyed by address.
//! - **Bounded memory.** Entries are forgotten `forget_after` after their last
//!   failure; each map holds at most `max_entries` (the stalest entry goes first).
//!
//! Time comes from a [`Clock`], so tests drive it by hand ([`ManualClock`]). Counts
//! for status pages: [`Throttle::counts`].

#![forbid(unsafe_code)]

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// A monotonic clock: time elapsed since some fixed origin.
pub trait Clock: Send + Sync + std::fmt::Debug {
    /// Time since the clock's origin; never goes backwards.
    fn now(&self) -> Duration;
}

/// The real monotonic clock.
#[derive(Debug)]
pub struct SystemClock(Instant);

impl Default for SystemClock {
    fn default() -> Self {
        Self(Instant::now())
    }
}

impl Clock for SystemClock {
    fn now(&self) -> Duration {
        self.0.elapsed()
    }
}

/// A clock moved by hand (tests).
#[derive(Debug, Default)]
pub struct ManualClock(AtomicU64);

impl ManualClock {
    /// Move the clock forward.
    pub fn advance(&self, by: Duration) {
        let nanos = u64::try_from(by.as_nanos()).unwrap_or(u64::MAX);
        self.0.fetch_add(nanos, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Duration {
        Duration::from_nanos(self.0.load(Ordering::SeqCst))
    }
}

/// Throttle settings. The defaults suit every door.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// Failures one source may make on one account before it must wait (default 5).
    pub free_per_source: u32,
    /// The first wait; each further failure doubles it (default 1 s).
    pub source_base: Duration,
    /// Longest wait imposed on one source (default 15 min).
    pub source_cap: Duration,
    /// Failures from one source over all accounts before it must wait (default 30).
    pub free_per_address: u32,
    /// Failures on one account, all sources together, before the account-wide delay
    /// starts (default 20).
    pub free_per_account: u32,
    /// Longest account-wide delay (default 30 s): the most a clean source waits.
    pub account_cap: Duration,
    /// An entry is forgotten this long after its last failure (default 30 min).
    pub forget_after: Duration,
    /// Most entries per map (default 100,000).
    pub max_entries: usize,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            free_per_source: 5,
            source_base: Duration::from_secs(1),
            source_cap: Duration::from_secs(15 * 60),
            free_per_address: 30,
            free_per_account: 20,
            account_cap: Duration::from_secs(30),
            forget_after: Duration::from_secs(30 * 60),
            max_entries: 100_000,
        }
    }
}

/// Why an attempt was refused without checking its password.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// This source failed too often on this account.
    Source,
    /// This source failed too often over all accounts.
    Address,
    /// The account failed too often (from many sources), and this source has failed too.
    Account,
}

/// An attempt refused without checking its password.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Refused {
    /// How long until an attempt may be made again (at least 1 s when rounded up).
    pub retry_after: Duration,
    /// Which limit refused it.
    pub scope: Scope,
}

impl Refused {
    /// `retry_after` in whole seconds, rounded up, at least 1 (for `Retry-After`).
    pub fn retry_after_secs(&self) -> u64 {
        let s = self.retry_after.as_secs();
        let s = if self.retry_after.subsec_nanos() > 0 {
            s + 1
        } else {
            s
        };
        s.max(1)
    }
}

/// Counters for status pages.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    /// (account, source) pairs with recent failures.
    pub sources: u64,
    /// Sources with recent failures.
    pub addresses: u64,
    /// Accounts with recent failures.
    pub accounts: u64,
    /// Failed attempts since start (password checked and wrong).
    pub failures: u64,
    /// Attempts refused without checking the password since start.
    pub refused: u64,
    /// Attempts from clean sources held back by the account-wide delay since start.
    pub delayed: u64,
}

#[derive(Debug, Clone, Copy)]
struct Entry {
    failures: u32,
    last: Duration,
}

#[derive(Debug, Default)]
struct State {
    sources: HashMap<(String, IpAddr), Entry>,
    addresses: HashMap<IpAddr, Entry>,
    accounts: HashMap<String, Entry>,
    ops: u64,
    counts: Counts,
}

#[derive(Debug)]
struct Inner {
    config: Config,
    clock: Arc<dyn Clock>,
    state: Mutex<State>,
}

/// The throttle; cheap to clone (clones share state).
#[derive(Debug, Clone)]
pub struct Throttle(Arc<Inner>);

impl Default for Throttle {
    fn default() -> Self {
        Self::new(Config::default())
    }
}

/// A reserved attempt. Call [`Ticket::succeeded`] when the password was right;
/// dropping it otherwise counts the attempt as a failure.
#[derive(Debug)]
#[must_use = "a ticket must be resolved with `succeeded` or dropped as a failure"]
pub struct Ticket {
    throttle: Throttle,
    account: String,
    source: IpAddr,
    wait: Duration,
    done: bool,
}

impl Ticket {
    /// How long the door must wait before checking the password (account-wide delay
    /// for a clean source; zero otherwise; never more than `account_cap`).
    pub fn wait(&self) -> Duration {
        self.wait
    }

    /// The password was right: release the reservation and forget this source's
    /// failures on this account.
    pub fn succeeded(mut self) {
        self.done = true;
        let mut st = self.throttle.lock();
        st.sources.remove(&(self.account.clone(), self.source));
        if let Some(a) = st.accounts.get_mut(&self.account) {
            a.failures = a.failures.saturating_sub(1);
            if a.failures == 0 {
                st.accounts.remove(&self.account);
            }
        }
        if let Some(a) = st.addresses.get_mut(&self.source) {
            a.failures = a.failures.saturating_sub(1);
            if a.failures == 0 {
                st.addresses.remove(&self.source);
            }
        }
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        if !self.done {
            let mut st = self.throttle.lock();
            st.counts.failures = st.counts.failures.saturating_add(1);
        }
    }
}

/// The key of a source address: IPv4 as is (IPv4-mapped IPv6 too), IPv6 per /64.
pub fn source_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let s = v6.segments();
                IpAddr::V6(std::net::Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
            }
        },
    }
}

/// `base · 2^extra`, capped.
fn backoff(base: Duration, extra: u32, cap: Duration) -> Duration {
    let factor = 1u32.checked_shl(extra.min(31)).unwrap_or(u32::MAX);
    base.checked_mul(factor).unwrap_or(cap).min(cap)
}

impl Throttle {
    /// A throttle on the system clock.
    pub fn new(config: Config) -> Self {
        Self::with_clock(config, Arc::new(SystemClock::default()))
    }

    /// A throttle on `clock`.
    pub fn with_clock(config: Config, clock: Arc<dyn Clock>) -> Self {
        Self(Arc::new(Inner {
            config,
            clock,
            state: Mutex::new(State::default()),
        }))
    }

    /// The settings.
    pub fn config(&self) -> &Config {
        &self.0.config
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.0
            .state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Reserve an attempt on `account` (compared case-insensitively; unknown names
    /// count too) from `source`: `Ok` with a ticket to check the password under, or
    /// `Err` when the attempt must be refused without checking it.
    pub fn reserve(&self, account: &str, source: IpAddr) -> Result<Ticket, Refused> {
        let cfg = &self.0.config;
        let now = self.0.clock.now();
        let account = account.trim().to_lowercase();
        let source = source_key(source);
        let mut st = self.lock();
        st.ops = st.ops.wrapping_add(1);
        if st.ops.is_multiple_of(4096) {
            forget_expired(&mut st, now, cfg.forget_after);
        }
        let fresh = |e: Option<&Entry>| {
            e.copied()
                .filter(|e| now.saturating_sub(e.last) < cfg.forget_after)
        };
        let key = (account.clone(), source);
        let src = fresh(st.sources.get(&key));
        let addr = fresh(st.addresses.get(&source));
        let acc = fresh(st.accounts.get(&account));
        let refuse = |st: &mut State, retry_after, scope| {
            st.counts.refused = st.counts.refused.saturating_add(1);
            Err(Refused { retry_after, scope })
        };
        if let Some(e) = src.filter(|e| e.failures >= cfg.free_per_source) {
            let gap = backoff(
                cfg.source_base,
                e.failures - cfg.free_per_source,
                cfg.source_cap,
            );
            let open = e.last + gap;
            if now < open {
                return refuse(&mut st, open - now, Scope::Source);
            }
        }
        if let Some(e) = addr.filter(|e| e.failures >= cfg.free_per_address) {
            let gap = backoff(
                cfg.source_base,
                e.failures - cfg.free_per_address,
                cfg.source_cap,
            );
            let open = e.last + gap;
            if now < open {
                return refuse(&mut st, open - now, Scope::Address);
            }
        }
        let mut wait = Duration::ZERO;
        if let Some(e) = acc.filter(|e| e.failures >= cfg.free_per_account) {
            let gap = backoff(
                cfg.source_base,
                e.failures - cfg.free_per_account,
                cfg.account_cap,
            );
            let open = e.last + gap;
            if now < open {
                if src.is_some() {
                    return refuse(&mut st, open - now, Scope::Account);
                }
                wait = open - now;
                st.counts.delayed = st.counts.delayed.saturating_add(1);
            }
        }
        let bump = |e: Option<Entry>| Entry {
            failures: e.map_or(0, |e| e.failures).saturating_add(1),
            last: now,
        };
        insert_bounded(&mut st.sources, key, bump(src), cfg, now);
        insert_bounded(&mut st.addresses, source, bump(addr), cfg, now);
        insert_bounded(&mut st.accounts, account.clone(), bump(acc), cfg, now);
        drop(st);
        Ok(Ticket {
            throttle: self.clone(),
            account,
            source,
            wait,
            done: false,
        })
    }

    /// Counters for status pages.
    pub fn counts(&self) -> Counts {
        let now = self.0.clock.now();
        let forget = self.0.config.forget_after;
        let mut st = self.lock();
        forget_expired(&mut st, now, forget);
        Counts {
            sources: st.sources.len() as u64,
            addresses: st.addresses.len() as u64,
            accounts: st.accounts.len() as u64,
            ..st.counts
        }
    }
}

fn forget_expired(st: &mut State, now: Duration, forget: Duration) {
    st.sources
        .retain(|_, e| now.saturating_sub(e.last) < forget);
    st.addresses
        .retain(|_, e| now.saturating_sub(e.last) < forget);
    st.accounts
        .retain(|_, e| now.saturating_sub(e.last) < forget);
}

fn insert_bounded<K: std::hash::Hash + Eq + Clone>(
    map: &mut HashMap<K, Entry>,
    key: K,
    entry: Entry,
    cfg: &Config,
    now: Duration,
) {
    if !map.contains_key(&key) && map.len() >= cfg.max_entries {
        map.retain(|_, e| now.saturating_sub(e.last) < cfg.forget_after);
        while map.len() >= cfg.max_entries.max(1) {
            let Some(oldest) = map
                .iter()
                .min_by_key(|(_, e)| e.last)
                .map(|(k, _)| k.clone())
            else {
                break;
            };
            map.remove(&oldest);
        }
    }
    map.insert(key, entry);
}

#[cfg(test)]
mod tests;
