//! A site's ACME state as stored (the JSON `public` of its
//! [`model::entity::SecretPurpose::AcmeSite`] secret) and the pure decisions over
//! it: is the site due for an order, when to renew, how long to back off.

use serde::{Deserialize, Serialize};

/// Where a site's ACME certificate stands.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Not ordered yet (the site serves its internal certificate).
    #[default]
    Pending,
    /// An order is under way.
    Ordering,
    /// Issued and served.
    Valid,
    /// The last attempt failed; retried at `next_attempt`.
    Failed,
    /// The customer's uploaded certificate is served; ACME leaves the site alone.
    Uploaded,
    /// ACME is turned off for this site.
    Disabled,
    /// Held back by the order queue: a CA limit is full until `next_attempt`
    /// (`waiting_for` names it).
    Waiting,
}

/// A name left out of an order, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeftOut {
    /// The name.
    pub name: String,
    /// Why (a sentence for people).
    pub reason: String,
}

/// One site's ACME state (unix seconds throughout).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct SiteAcme {
    /// Where it stands.
    pub status: Status,
    /// ACME turned off for this site by its owner.
    pub disabled: bool,
    /// The names wanted when the last order was made (domain and aliases), so a
    /// change of names orders again.
    pub wanted: Vec<String>,
    /// The names of the ACME certificate served.
    pub names: Vec<String>,
    /// Names the last order left out (did not resolve to the cluster, wildcard …).
    pub left_out: Vec<LeftOut>,
    /// The issuer (subject of the certificate's issuer) of the served certificate.
    pub issuer: Option<String>,
    /// Validity of the served certificate.
    pub not_before: Option<i64>,
    /// Validity of the served certificate.
    pub not_after: Option<i64>,
    /// When it is renewed (two thirds of its life, with jitter).
    pub renew_at: Option<i64>,
    /// When an order was last attempted.
    pub last_attempt: Option<i64>,
    /// When the last attempt ended well.
    pub last_success: Option<i64>,
    /// Why the last attempt failed (cleared by a success).
    pub last_error: Option<String>,
    /// Failures in a row (backoff).
    pub failures: u32,
    /// Not before this time again (backoff, `Retry-After`, rate limits).
    pub next_attempt: Option<i64>,
    /// How the site's names are validated (the owner's choice).
    pub challenge: super::plan::Choice,
    /// The challenge each name of the last order was validated with.
    pub validated: Vec<(String, super::plan::Method)>,
    /// The CA limit the order queue waits for (with [`Status::Waiting`]).
    pub waiting_for: Option<String>,
    /// The served certificate's ARI identifier (RFC 9773 `certID`: base64url AKI
    /// key identifier, `.`, base64url serial), given as `replaces` when renewing.
    pub cert_id: Option<String>,
    /// The CA's suggested renewal window (RFC 9773), when it offers one.
    pub ari_window: Option<(i64, i64)>,
    /// When to ask the CA for the renewal window again (its `Retry-After`).
    pub ari_next_check: Option<i64>,
}

impl SiteAcme {
    /// The certificate a renewal replaces (RFC 9773 `replaces`): the served
    /// one's identifier, when the CA offers renewal information.
    pub fn replaces(&self) -> Option<instant_acme::CertificateIdentifier<'static>> {
        self.ari_window?;
        super::ari::replaces(self.cert_id.as_deref()?)
    }
}

/// The kind of certificate a site serves now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Served {
    /// None yet (the key task is about to issue the internal one).
    None,
    /// The internal CA's.
    Internal,
    /// Issued by ACME.
    Acme,
    /// Uploaded by the customer.
    Uploaded,
}

/// What the task does with a site it looks at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Look {
    /// Order (or renew) its certificate.
    Order,
    /// Ask the CA for its renewal window (RFC 9773) and nothing else.
    RenewalInfo,
}

/// Whether a site must be ordered (or renewed) now: never with an uploaded
/// certificate or ACME turned off, never before its backoff ends; then when it
/// serves no ACME certificate, when its names changed since the last order, or
/// when its renewal time came.
pub fn due(state: Option<&SiteAcme>, wanted: &[String], served: Served, now: i64) -> bool {
    look(state, wanted, served, now) == Some(Look::Order)
}

/// What to do with a site at `now`, if anything: [`due`]'s order, or the renewal
/// window's check when its time came.
pub fn look(state: Option<&SiteAcme>, wanted: &[String], served: Served, now: i64) -> Option<Look> {
    if served == Served::Uploaded {
        return None;
    }
    let Some(s) = state else {
        return Some(Look::Order);
    };
    if s.disabled || s.next_attempt.is_some_and(|t| t > now) {
        return None;
    }
    if served != Served::Acme
        || sorted(&s.wanted) != sorted(wanted)
        || s.renew_at.is_none_or(|t| t <= now)
    {
        return Some(Look::Order);
    }
    s.ari_next_check
        .is_some_and(|t| t <= now)
        .then_some(Look::RenewalInfo)
}

/// The earliest time [`look`] answers something for this site (`i64::MIN`: now;
/// `None`: never, until its state, names or certificate change).
pub fn next_look(state: Option<&SiteAcme>, wanted: &[String], served: Served) -> Option<i64> {
    if served == Served::Uploaded {
        return None;
    }
    let Some(s) = state else {
        return Some(i64::MIN);
    };
    if s.disabled {
        return None;
    }
    let earliest = s.next_attempt.unwrap_or(i64::MIN);
    if served != Served::Acme || sorted(&s.wanted) != sorted(wanted) {
        return Some(earliest);
    }
    let renew = s.renew_at.unwrap_or(i64::MIN);
    let t = s.ari_next_check.map_or(renew, |c| c.min(renew));
    Some(t.max(earliest))
}

fn sorted(v: &[String]) -> Vec<&str> {
    let mut out: Vec<&str> = v.iter().map(String::as_str).collect();
    out.sort_unstable();
    out.dedup();
    out
}

/// When to renew a certificate valid from `not_before` to `not_after`: at two
/// thirds of its lifetime, moved by a jitter of up to a twentieth of the lifetime
/// either way, fixed per `seed` (the domain) so every controller computes the
/// same time and renewals of many sites spread out.
pub fn renew_at(not_before: i64, not_after: i64, seed: &str) -> i64 {
    let life = (not_after - not_before).max(0);
    let base = not_before + life * 2 / 3;
    let spread = life / 20;
    if spread == 0 {
        return base;
    }
    let h = blake3::hash(seed.as_bytes());
    let x = i64::from(u32::from_le_bytes([
        h.as_bytes()[0],
        h.as_bytes()[1],
        h.as_bytes()[2],
        h.as_bytes()[3],
    ]));
    base + (x % (2 * spread + 1)) - spread
}

/// First retry after this many seconds; doubled per failure in a row.
pub const BACKOFF_BASE: i64 = 60;
/// Longest backoff (seconds).
pub const BACKOFF_MAX: i64 = 6 * 3600;
/// Wait after a CA's rate-limit answer without `Retry-After` (seconds).
pub const RATE_LIMITED_WAIT: i64 = 3600;

/// Seconds to wait after `failures` failures in a row (the newest included);
/// `retry_after` (seconds from now) when the CA said so, and at least
/// [`RATE_LIMITED_WAIT`] when it refused for a rate limit.
pub fn backoff(failures: u32, rate_limited: bool, retry_after: Option<i64>) -> i64 {
    let shift = failures.saturating_sub(1).min(20);
    let mut wait = BACKOFF_BASE.saturating_mul(1 << shift).min(BACKOFF_MAX);
    if rate_limited {
        wait = wait.max(RATE_LIMITED_WAIT);
    }
    if let Some(r) = retry_after {
        wait = wait.max(r);
    }
    wait
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn due_rules() {
        let w = names(&["a.example", "www.a.example"]);
        assert!(due(None, &w, Served::Internal, 10));
        assert!(
            !due(None, &w, Served::Uploaded, 10),
            "uploaded is never replaced"
        );
        let mut s = SiteAcme {
            wanted: w.clone(),
            renew_at: Some(100),
            ..SiteAcme::default()
        };
        assert!(!due(Some(&s), &w, Served::Acme, 10));
        assert!(due(Some(&s), &w, Served::Acme, 100), "renewal time");
        assert!(due(Some(&s), &w, Served::Internal, 10), "no ACME cert yet");
        let more = names(&["a.example", "www.a.example", "b.example"]);
        assert!(due(Some(&s), &more, Served::Acme, 10), "names changed");
        s.next_attempt = Some(50);
        assert!(!due(Some(&s), &more, Served::Acme, 10), "backing off");
        assert!(due(Some(&s), &more, Served::Acme, 50));
        s.disabled = true;
        assert!(!due(Some(&s), &more, Served::Internal, 60), "turned off");
    }

    #[test]
    fn look_times_agree_with_look() {
        let w = names(&["a.example", "www.a.example"]);
        let acme = SiteAcme {
            wanted: w.clone(),
            renew_at: Some(100),
            ari_next_check: Some(40),
            ..SiteAcme::default()
        };
        assert_eq!(next_look(Some(&acme), &w, Served::Acme), Some(40));
        assert_eq!(look(Some(&acme), &w, Served::Acme, 39), None);
        assert_eq!(
            look(Some(&acme), &w, Served::Acme, 40),
            Some(Look::RenewalInfo)
        );
        assert_eq!(look(Some(&acme), &w, Served::Acme, 100), Some(Look::Order));
        // Removing a name: ordered again (the new certificate drops it).
        let fewer = names(&["a.example"]);
        assert_eq!(next_look(Some(&acme), &fewer, Served::Acme), Some(i64::MIN));
        assert!(due(Some(&acme), &fewer, Served::Acme, 0));
        // Turned off, or an uploaded certificate: never looked at.
        let off = SiteAcme {
            disabled: true,
            ..acme.clone()
        };
        assert_eq!(next_look(Some(&off), &w, Served::Acme), None);
        assert_eq!(next_look(Some(&acme), &w, Served::Uploaded), None);
        assert_eq!(next_look(None, &w, Served::Internal), Some(i64::MIN));
        let waiting = SiteAcme {
            next_attempt: Some(500),
            ..acme.clone()
        };
        assert_eq!(next_look(Some(&waiting), &w, Served::Acme), Some(500));
        assert_eq!(next_look(Some(&waiting), &w, Served::Internal), Some(500));
    }

    proptest::proptest! {
        /// Before `next_look` nothing is to be done; at it, something is (unless
        /// never).
        #[test]
        fn nothing_to_do_before_next_look(
            renew in proptest::option::of(0i64..1000), ari in proptest::option::of(0i64..1000),
            next in proptest::option::of(0i64..1000), disabled in proptest::bool::ANY,
            same in proptest::bool::ANY, served in 0u8..4, now in 0i64..1000,
        ) {
            let w = names(&["a.example"]);
            let s = SiteAcme { wanted: if same { w.clone() } else { Vec::new() }, renew_at: renew,
                ari_next_check: ari, next_attempt: next, disabled, ..SiteAcme::default() };
            let served = [Served::None, Served::Internal, Served::Acme, Served::Uploaded][served as usize];
            match next_look(Some(&s), &w, served) {
                None => proptest::prop_assert_eq!(look(Some(&s), &w, served, now), None),
                Some(t) if now < t => proptest::prop_assert_eq!(look(Some(&s), &w, served, now), None),
                Some(t) => {
                    let t = t.max(0);
                    proptest::prop_assert!(look(Some(&s), &w, served, t).is_some());
                }
            }
        }
    }

    #[test]
    fn renewal_two_thirds_with_bounded_jitter() {
        let day = 86_400;
        for seed in ["a.example", "b.example", "c.example", "x"] {
            let t = renew_at(0, 90 * day, seed);
            assert!((55 * day..=65 * day).contains(&t), "{seed}: {t}");
            assert_eq!(t, renew_at(0, 90 * day, seed), "stable per site");
        }
        assert_ne!(
            renew_at(0, 90 * day, "a.example"),
            renew_at(0, 90 * day, "b.example")
        );
        assert_eq!(renew_at(0, 3, "a"), 2);
    }

    #[test]
    fn backoff_doubles_capped_and_honours_the_ca() {
        assert_eq!(backoff(1, false, None), 60);
        assert_eq!(backoff(2, false, None), 120);
        assert_eq!(backoff(40, false, None), BACKOFF_MAX);
        assert_eq!(backoff(1, true, None), RATE_LIMITED_WAIT);
        assert_eq!(backoff(1, false, Some(900)), 900);
    }
}
