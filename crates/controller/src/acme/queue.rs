//! The order queue's rules: the CA's rate limits, counted over the recorded
//! history of this account's orders, failed validations and issued certificates.
//!
//! Let's Encrypt's limits are the defaults ([`Limits::default`]; each can be set
//! in `[acme]`): at most 5 failed validations per name per hour, 300 new orders
//! per account per 3 hours, 50 certificates per registered domain per week. The
//! decision [`decide`] is pure: given the [`History`] and a site's names at `now`
//! it says go, or wait until a time, and why. The history is kept in the store
//! (the [`model::entity::SecretPurpose::AcmeAccount`] secret `acme_account:queue`,
//! written with every order's outcome), so a restarted controller or a new leader
//! counts what the previous one did.

use std::collections::BTreeMap;

use model::entity::{Secret, SecretPurpose};
use serde::{Deserialize, Serialize};

/// One hour (seconds).
pub const HOUR: i64 = 3600;
/// The window of [`Limits::failed_validations_per_hour`].
pub const FAILED_WINDOW: i64 = HOUR;
/// The window of [`Limits::orders_per_3h`].
pub const ORDERS_WINDOW: i64 = 3 * HOUR;
/// The window of [`Limits::certs_per_domain_week`].
pub const CERTS_WINDOW: i64 = 7 * 24 * HOUR;

/// The CA's limits the queue keeps under (Let's Encrypt's by default).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Failed validations of one name in an hour.
    pub failed_validations_per_hour: u32,
    /// New orders of the account in three hours.
    pub orders_per_3h: u32,
    /// Certificates of one registered domain (eTLD+1) in a week.
    pub certs_per_domain_week: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            failed_validations_per_hour: 5,
            orders_per_3h: 300,
            certs_per_domain_week: 50,
        }
    }
}

/// What the account did, as far as the limits look back (unix seconds).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct History {
    /// The CA directory this history is of (another CA starts afresh).
    pub directory: String,
    /// When new orders were made.
    pub orders: Vec<i64>,
    /// When validations of each name failed.
    pub failed: BTreeMap<String, Vec<i64>>,
    /// When certificates of each registered domain were issued.
    pub issued: BTreeMap<String, Vec<i64>>,
}

/// The queue's answer for one site.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// It may be ordered now.
    Go,
    /// Not before `until`, because of `reason` (a sentence naming the limit).
    Wait {
        /// When the limit lets it through.
        until: i64,
        /// Which limit.
        reason: String,
    },
}

/// When the `limit`-th newest of `times` (within `window` of `now`) leaves the
/// window, if `limit` are in it; `None` when there is room.
fn full_until(times: &[i64], limit: u32, window: i64, now: i64) -> Option<i64> {
    let mut inside: Vec<i64> = times
        .iter()
        .copied()
        .filter(|t| *t > now - window && *t <= now)
        .collect();
    if (inside.len() as u64) < u64::from(limit) {
        return None;
    }
    inside.sort_unstable();
    // Room comes back when enough of the oldest leave: the (len - limit)-th.
    let i = inside.len() - limit as usize;
    Some(inside[i] + window)
}

/// May an order for `names` (of registered domain `registered`) be made at `now`?
/// The latest of the limits that are full decides the wait.
pub fn decide(
    limits: &Limits,
    history: &History,
    names: &[String],
    registered: &str,
    now: i64,
) -> Verdict {
    let mut wait: Option<(i64, String)> = None;
    let mut consider = |until: Option<i64>, reason: &dyn Fn() -> String| {
        if let Some(u) = until {
            if wait.as_ref().is_none_or(|(w, _)| u > *w) {
                wait = Some((u, reason()));
            }
        }
    };
    consider(
        full_until(&history.orders, limits.orders_per_3h, ORDERS_WINDOW, now),
        &|| {
            format!(
                "new orders per account per 3 hours ({})",
                limits.orders_per_3h
            )
        },
    );
    if let Some(t) = history.issued.get(registered) {
        consider(
            full_until(t, limits.certs_per_domain_week, CERTS_WINDOW, now),
            &|| {
                format!(
                    "certificates per registered domain per week ({}) for {registered}",
                    limits.certs_per_domain_week
                )
            },
        );
    }
    for n in names {
        if let Some(t) = history.failed.get(n) {
            consider(
                full_until(t, limits.failed_validations_per_hour, FAILED_WINDOW, now),
                &|| {
                    format!(
                        "failed validations per name per hour ({}) for {n}",
                        limits.failed_validations_per_hour
                    )
                },
            );
        }
    }
    match wait {
        None => Verdict::Go,
        Some((until, reason)) => Verdict::Wait { until, reason },
    }
}

impl History {
    /// A new order was made at `now`.
    pub fn record_order(&mut self, now: i64) {
        self.orders.push(now);
    }

    /// Validation of `names` failed at `now`.
    pub fn record_failed(&mut self, names: &[String], now: i64) {
        for n in names {
            self.failed.entry(n.clone()).or_default().push(now);
        }
    }

    /// A certificate of registered domain `registered` was issued at `now`.
    pub fn record_issued(&mut self, registered: &str, now: i64) {
        self.issued
            .entry(registered.to_owned())
            .or_default()
            .push(now);
    }

    /// Forget what no limit looks at any more at `now` (keeps the stored history
    /// bounded by what the windows hold).
    pub fn prune(&mut self, now: i64) {
        self.orders.retain(|t| *t > now - ORDERS_WINDOW);
        for (map, window) in [
            (&mut self.failed, FAILED_WINDOW),
            (&mut self.issued, CERTS_WINDOW),
        ] {
            map.retain(|_, v| {
                v.retain(|t| *t > now - window);
                !v.is_empty()
            });
        }
    }
}

/// The registered domain (eTLD+1, Public Suffix List) a certificate of `name`
/// counts against; the name itself when the list has no answer.
pub fn registered_domain(name: &str) -> String {
    model::DomainName::new(name)
        .ok()
        .and_then(|d| model::namespace::registrable(&d).ok())
        .map_or_else(|| name.to_owned(), |d| d.as_str().to_owned())
}

/// The stored history for `directory` (empty when none, or when it is of
/// another CA), pruned at `now`.
pub async fn load(
    store: &store::Store,
    directory: &str,
    now: i64,
) -> Result<History, store::StoreError> {
    let name = SecretPurpose::AcmeAccount.store_name(super::client::QUEUE_SUBJECT);
    let stored = store
        .get_by_name::<Secret>(store::Scope::All, &name)
        .await?;
    let mut h: History = stored
        .and_then(|s| serde_json::from_str(&s.data.public).ok())
        .unwrap_or_default();
    if h.directory != directory {
        h = History {
            directory: directory.to_owned(),
            ..History::default()
        };
    }
    h.prune(now);
    Ok(h)
}

/// Store `history` (one small secret; bounded by the windows).
pub async fn save(store: &store::Store, history: &History) -> Result<(), store::StoreError> {
    let name = SecretPurpose::AcmeAccount.store_name(super::client::QUEUE_SUBJECT);
    let data = Secret {
        purpose: SecretPurpose::AcmeAccount,
        subject: super::client::QUEUE_SUBJECT.into(),
        public: serde_json::to_string(history).unwrap_or_default(),
        private: String::new(),
        algorithm: "queue".into(),
        not_after: None,
        uploaded: false,
        names: vec![history.directory.clone()],
    };
    let mut tx = store.begin(super::lease::actor()).await?;
    super::task::upsert_secret(&mut tx, name, None, data).await?;
    tx.commit().await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn names(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn each_limit_and_when_it_opens() {
        let l = Limits {
            failed_validations_per_hour: 2,
            orders_per_3h: 3,
            certs_per_domain_week: 2,
        };
        let mut h = History::default();
        let n = names(&["a.example.com", "www.a.example.com"]);
        assert_eq!(decide(&l, &h, &n, "example.com", 100), Verdict::Go);
        h.record_failed(&names(&["www.a.example.com"]), 10);
        h.record_failed(&names(&["www.a.example.com"]), 20);
        match decide(&l, &h, &n, "example.com", 100) {
            Verdict::Wait { until, reason } => {
                assert_eq!(until, 10 + HOUR);
                assert!(reason.contains("www.a.example.com"), "{reason}");
            }
            v => panic!("{v:?}"),
        }
        assert_eq!(decide(&l, &h, &n, "example.com", 10 + HOUR), Verdict::Go);
        // Other names are not held back by this one's failures.
        assert_eq!(
            decide(&l, &h, &names(&["b.example.com"]), "example.com", 100),
            Verdict::Go
        );
        let mut h = History::default();
        h.record_issued("example.com", 5);
        h.record_issued("example.com", 7);
        h.record_issued("other.org", 8);
        assert_eq!(
            decide(&l, &h, &n, "example.com", 100),
            Verdict::Wait {
                until: 5 + CERTS_WINDOW,
                reason: "certificates per registered domain per week (2) for example.com".into()
            }
        );
        assert_eq!(decide(&l, &h, &n, "other.org", 100), Verdict::Go);
        let mut h = History::default();
        for t in [1, 2, 3, 4] {
            h.record_order(t);
        }
        // Four in the window, three allowed: room when two have left.
        assert!(matches!(
            decide(&l, &h, &n, "example.com", 10),
            Verdict::Wait { until, .. } if until == 2 + ORDERS_WINDOW
        ));
    }

    #[test]
    fn the_latest_full_limit_decides_and_prune_keeps_what_counts() {
        let l = Limits {
            failed_validations_per_hour: 1,
            orders_per_3h: 1,
            certs_per_domain_week: 1,
        };
        let mut h = History::default();
        h.record_order(50);
        h.record_failed(&names(&["x.example"]), 60);
        h.record_issued("example", 40);
        assert!(matches!(
            decide(&l, &h, &names(&["x.example"]), "example", 70),
            Verdict::Wait { until, .. } if until == 40 + CERTS_WINDOW
        ));
        h.prune(60 + HOUR);
        assert!(h.failed.is_empty());
        assert_eq!(h.orders, [50]);
        h.prune(50 + ORDERS_WINDOW);
        assert!(h.orders.is_empty());
        assert_eq!(h.issued["example"], [40]);
        h.prune(40 + CERTS_WINDOW);
        assert!(h.issued.is_empty());
    }

    #[test]
    fn registered_domains() {
        assert_eq!(registered_domain("www.shop.example.co.uk"), "example.co.uk");
        assert_eq!(registered_domain("a.b.shop.test"), "shop.test");
    }

    proptest! {
        /// Going ahead whenever [`decide`] says so, and recording every order,
        /// failure and issuance, never exceeds a limit in any window; and a wait
        /// always ends in the future, after which that limit has room.
        #[test]
        fn following_the_queue_never_exceeds_a_limit(
            steps in proptest::collection::vec((0i64..2_000, 0usize..3, 0u8..3), 1..200),
            orders in 1u32..6, failed in 1u32..4, certs in 1u32..4,
        ) {
            let l = Limits { failed_validations_per_hour: failed, orders_per_3h: orders,
                certs_per_domain_week: certs };
            let sites = [("a.one.test", "one.test"), ("b.one.test", "one.test"), ("c.two.test", "two.test")];
            let mut h = History::default();
            let mut now = 0i64;
            for (dt, site, outcome) in steps {
                now += dt;
                let (name, reg) = sites[site];
                let n = vec![name.to_owned()];
                match decide(&l, &h, &n, reg, now) {
                    Verdict::Wait { until, .. } => {
                        prop_assert!(until > now);
                        prop_assert_eq!(decide(&l, &h, &n, reg, until), Verdict::Go);
                    }
                    Verdict::Go => {
                        h.record_order(now);
                        match outcome {
                            0 => h.record_issued(reg, now),
                            1 => h.record_failed(&n, now),
                            _ => {}
                        }
                    }
                }
                let inside = |v: &[i64], w: i64| v.iter().filter(|t| **t > now - w).count() as u32;
                prop_assert!(inside(&h.orders, ORDERS_WINDOW) <= orders);
                for v in h.failed.values() { prop_assert!(inside(v, FAILED_WINDOW) <= failed); }
                for v in h.issued.values() { prop_assert!(inside(v, CERTS_WINDOW) <= certs); }
                if now % 7 == 0 { h.prune(now); }
            }
        }
    }
}
