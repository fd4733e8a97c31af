//! Outgoing mail limits on submission: messages per clock hour per mailbox and per
//! domain (from the domain's [`MailLimits`](proto::agent_v1::MailLimits)). A message
//! is counted when its `MAIL FROM` is accepted, under one lock, so concurrent
//! sessions cannot overshoot; a transaction abandoned after `MAIL` still counts.
//! Counts live in memory per mail server and start again after a restart (at worst
//! one more hour's worth of mail); entries of past hours are dropped.

use std::collections::HashMap;
use std::sync::Mutex;

/// Which limit a message hit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Over {
    /// `mailbox` or `domain`.
    pub scope: &'static str,
    /// The limit, messages per hour.
    pub limit: u32,
}

/// Counters of the current hour.
#[derive(Debug, Default)]
pub struct SendLimits {
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    hour: u64,
    counts: HashMap<String, u32>,
    refused: u64,
    last_refused: Option<String>,
    /// Refusals per mailbox since start (at most `MAX_TRACKED` mailboxes).
    by_mailbox: HashMap<String, u64>,
}

/// Most mailboxes whose refusals are counted one by one.
const MAX_TRACKED: usize = 1000;

impl SendLimits {
    /// Count one message from `mailbox` of `domain` in clock hour `hour`, unless that
    /// reaches `per_mailbox` or `per_domain` messages this hour.
    pub fn take(
        &self,
        hour: u64,
        mailbox: &str,
        domain: &str,
        per_mailbox: u32,
        per_domain: u32,
    ) -> Result<(), Over> {
        let mut st = self
            .state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if st.hour != hour {
            st.hour = hour;
            st.counts.clear();
        }
        let (mk, dk) = (format!("m:{mailbox}"), format!("d:{domain}"));
        let used = |k: &str| st.counts.get(k).copied().unwrap_or(0);
        let over = if used(&mk) >= per_mailbox {
            Some(Over {
                scope: "mailbox",
                limit: per_mailbox,
            })
        } else if used(&dk) >= per_domain {
            Some(Over {
                scope: "domain",
                limit: per_domain,
            })
        } else {
            None
        };
        if let Some(o) = over {
            st.refused += 1;
            st.last_refused = Some(mailbox.to_owned());
            if st.by_mailbox.len() < MAX_TRACKED || st.by_mailbox.contains_key(mailbox) {
                *st.by_mailbox.entry(mailbox.to_owned()).or_insert(0) += 1;
            }
            return Err(o);
        }
        *st.counts.entry(mk).or_insert(0) += 1;
        *st.counts.entry(dk).or_insert(0) += 1;
        Ok(())
    }

    /// Messages refused since start and the last mailbox refused.
    pub fn refused(&self) -> (u64, Option<String>) {
        let st = self
            .state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        (st.refused, st.last_refused.clone())
    }
}

impl SendLimits {
    /// The mailboxes refused most, with their counts (at most `max`).
    pub fn limited(&self, max: usize) -> Vec<(String, u64)> {
        let st = self
            .state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut v: Vec<(String, u64)> =
            st.by_mailbox.iter().map(|(k, n)| (k.clone(), *n)).collect();
        v.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        v.truncate(max);
        v
    }
}

/// The current clock hour (hours since the Unix epoch).
pub fn current_hour() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() / 3600)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn per_mailbox_then_per_domain_then_next_hour() {
        let l = SendLimits::default();
        for _ in 0..2 {
            l.take(1, "a@x", "x", 2, 3).unwrap();
        }
        assert_eq!(l.take(1, "a@x", "x", 2, 3).unwrap_err().scope, "mailbox");
        l.take(1, "b@x", "x", 2, 3).unwrap();
        assert_eq!(l.take(1, "c@x", "x", 2, 3).unwrap_err().scope, "domain");
        l.take(1, "a@y", "y", 2, 3).unwrap();
        l.take(2, "a@x", "x", 2, 3).unwrap();
        assert_eq!(l.refused(), (2, Some("c@x".into())));
        assert_eq!(l.limited(10), [("a@x".into(), 1), ("c@x".into(), 1)]);
    }
}
