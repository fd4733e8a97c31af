//! Leases the controller grants with heartbeat answers: the cron lease (how long
//! this server may run the cron jobs its desired config assigns to it, issue 15)
//! and the mail writer lease (how long this mail server may accept writes to the
//! mailboxes of its cluster when its desired config names it the writer, issue 16).
//!
//! Both work alike; the text below says "cron" for either.
//!
//! Each heartbeat answer may grant `cron_lease_secs`; the heartbeat loop extends
//! the lease to the heartbeat's *send* time plus that (the controller granted it
//! later, so the agent's lease never outlasts the controller's idea of it). The
//! web engine's cron runner starts a run only while [`CronLease::valid`]. An
//! answer without a grant does not shorten the lease: the controller's
//! handover delay already covers every lease it granted. With the controller
//! unreachable the lease runs out and the server stops starting runs.

use std::sync::{Arc, Mutex};
use std::time::Instant;

/// A shared, monotonic-clock lease (cloned into the engine's context).
#[derive(Debug, Clone, Default)]
pub struct Lease(Arc<Mutex<Option<Instant>>>);

/// The cron lease (`HeartbeatAck::cron_lease_secs`).
pub type CronLease = Lease;

/// The mail writer lease (`HeartbeatAck::mail_lease_secs`).
pub type MailLease = Lease;

/// Every lease heartbeat answers grant, as the agent holds them.
#[derive(Debug, Clone, Default)]
pub struct Leases {
    /// `HeartbeatAck::cron_lease_secs`.
    pub cron: CronLease,
    /// `HeartbeatAck::mail_lease_secs`.
    pub mail: MailLease,
}

impl Lease {
    /// Extend the lease to `until` (never shortens it).
    pub fn extend(&self, until: Instant) {
        let mut l = self.0.lock().unwrap_or_else(|p| p.into_inner());
        if l.is_none_or(|cur| cur < until) {
            *l = Some(until);
        }
    }

    /// When the lease ends (None: never granted).
    pub fn until(&self) -> Option<Instant> {
        *self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Whether the lease is valid now.
    pub fn valid(&self) -> bool {
        self.until().is_some_and(|u| Instant::now() < u)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn extends_only_forward_and_expires() {
        let l = CronLease::default();
        assert!(!l.valid());
        let now = Instant::now();
        l.extend(now + Duration::from_secs(60));
        assert!(l.valid());
        l.extend(now);
        assert_eq!(l.until(), Some(now + Duration::from_secs(60)));
        let c = CronLease::default();
        c.extend(now);
        assert!(!c.valid());
    }
}
