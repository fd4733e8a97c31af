//! Panel sessions: an opaque random id in a cookie, mapped here to the API token
//! of the signed-in account. Nothing about the account is trusted from the
//! browser; the token never leaves the server. Sessions live in memory: a
//! controller restart signs everyone out (their tokens expire on their own, see
//! [`crate::signin`]).
//!
//! The logic is pure over a clock value passed in (`now`), so the idle timeout is
//! tested without waiting.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use base64::Engine;
use rand::RngCore;
use subtle::ConstantTimeEq;

/// A session unused this long is gone (its token revoked).
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(30 * 60);
/// Most sessions held; past it the least recently used one is dropped.
pub const MAX_SESSIONS: usize = 20_000;
/// The session cookie. `__Host-`: the browser keeps it only when set Secure, with
/// `Path=/` and no `Domain`, so no sibling host can plant or read it.
pub const COOKIE: &str = "__Host-hp_session";
/// The cookie of the sign-in form's CSRF token (double submit: no session yet).
pub const LOGIN_COOKIE: &str = "__Host-hp_login";

/// A random, URL-safe secret of 256 bits (session ids and CSRF tokens).
pub fn random_secret() -> String {
    let mut b = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut b);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b)
}

/// Constant-time comparison of a submitted CSRF token with the expected one.
pub fn csrf_matches(expected: &str, submitted: Option<&str>) -> bool {
    match submitted {
        Some(s) if !expected.is_empty() => bool::from(expected.as_bytes().ct_eq(s.as_bytes())),
        _ => false,
    }
}

/// What a signed-in session holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    /// The API token it acts with (`hp_<id>_<secret>`).
    pub token: String,
    /// The token's public id, to revoke it at sign-out.
    pub token_id: String,
    /// The account's name.
    pub account: String,
    /// `admin`, `reseller` or `customer`.
    pub kind: String,
    /// The CSRF token every form of this session carries.
    pub csrf: String,
    /// While acting as a customer (an impersonation token above): the signed-in
    /// account's own session, back in place when acting stops.
    pub own: Option<Box<Session>>,
}

impl Session {
    /// The name of the person signed in: the impersonator while acting as a
    /// customer, the account otherwise.
    pub fn person(&self) -> &str {
        self.own.as_ref().map_or(&self.account, |o| &o.account)
    }

    /// Every API token the session holds (the acting one first), to revoke at
    /// its end.
    pub fn tokens(&self) -> Vec<(String, String)> {
        let mut v = vec![(self.token.clone(), self.token_id.clone())];
        if let Some(o) = &self.own {
            v.extend(o.tokens());
        }
        v
    }
}

#[derive(Debug)]
struct Entry {
    session: Session,
    last_seen: Instant,
}

/// The table of sessions.
#[derive(Debug)]
pub struct Sessions {
    idle: Duration,
    map: Mutex<HashMap<String, Entry>>,
}

impl Sessions {
    /// Sessions that end after `idle` without a request.
    pub fn new(idle: Duration) -> Self {
        Self {
            idle,
            map: Mutex::new(HashMap::new()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Entry>> {
        self.map.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Store `session` under a new id; returns the id and the sessions dropped to
    /// make room or found idle (whose tokens the caller revokes).
    pub fn create(&self, session: Session, now: Instant) -> (String, Vec<Session>) {
        let id = random_secret();
        let mut map = self.lock();
        let mut dropped = Self::sweep(&mut map, self.idle, now);
        if map.len() >= MAX_SESSIONS {
            if let Some(oldest) = map
                .iter()
                .min_by_key(|(_, e)| e.last_seen)
                .map(|(k, _)| k.clone())
            {
                dropped.extend(map.remove(&oldest).map(|e| e.session));
            }
        }
        map.insert(
            id.clone(),
            Entry {
                session,
                last_seen: now,
            },
        );
        (id, dropped)
    }

    /// The session of `id` if it exists and was used within the idle timeout (the
    /// use counts: its idle time starts again). An idle session is removed and
    /// returned as `Err` so its token can be revoked.
    pub fn touch(&self, id: &str, now: Instant) -> Result<Option<Session>, Box<Session>> {
        let mut map = self.lock();
        let Some(entry) = map.get_mut(id) else {
            return Ok(None);
        };
        if now.saturating_duration_since(entry.last_seen) >= self.idle {
            let gone = map.remove(id).map(|e| Box::new(e.session));
            return gone.map_or(Ok(None), Err);
        }
        entry.last_seen = now;
        Ok(Some(entry.session.clone()))
    }

    /// Put `session` in place of the session `id` holds (acting as a customer and
    /// back); false when `id` is gone.
    pub fn replace(&self, id: &str, session: Session, now: Instant) -> bool {
        match self.lock().get_mut(id) {
            Some(e) => {
                e.session = session;
                e.last_seen = now;
                true
            }
            None => false,
        }
    }

    /// Remove a session (sign-out, or its token no longer works).
    pub fn remove(&self, id: &str) -> Option<Session> {
        self.lock().remove(id).map(|e| e.session)
    }

    /// How many sessions are held.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// True when no session is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn sweep(map: &mut HashMap<String, Entry>, idle: Duration, now: Instant) -> Vec<Session> {
        let idle_ids: Vec<String> = map
            .iter()
            .filter(|(_, e)| now.saturating_duration_since(e.last_seen) >= idle)
            .map(|(k, _)| k.clone())
            .collect();
        idle_ids
            .iter()
            .filter_map(|k| map.remove(k).map(|e| e.session))
            .collect()
    }
}

/// The value of cookie `name` in a request's `Cookie` headers.
pub fn cookie<'a>(headers: &'a http::HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// A `Set-Cookie` value for `name`: HttpOnly, Secure, SameSite=Strict, `Path=/`;
/// `None` clears it.
pub fn set_cookie(name: &str, value: Option<&str>) -> String {
    match value {
        Some(v) => format!("{name}={v}; Path=/; HttpOnly; Secure; SameSite=Strict"),
        None => format!("{name}=; Path=/; HttpOnly; Secure; SameSite=Strict; Max-Age=0"),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn session(name: &str) -> Session {
        Session {
            token: format!("hp_{name}_secret"),
            token_id: name.to_owned(),
            account: name.to_owned(),
            kind: "customer".to_owned(),
            csrf: random_secret(),
            own: None,
        }
    }

    #[test]
    fn acting_as_a_customer_and_back() {
        let s = Sessions::new(Duration::from_secs(60));
        let now = Instant::now();
        let mut own = session("reseller");
        own.kind = "reseller".to_owned();
        let (id, _) = s.create(own.clone(), now);
        let acting = Session {
            own: Some(Box::new(own.clone())),
            ..session("acme")
        };
        assert_eq!(acting.person(), "reseller");
        assert_eq!(
            acting.tokens(),
            vec![
                ("hp_acme_secret".to_owned(), "acme".to_owned()),
                ("hp_reseller_secret".to_owned(), "reseller".to_owned())
            ]
        );
        assert!(s.replace(&id, acting, now));
        assert_eq!(s.touch(&id, now).unwrap().unwrap().account, "acme");
        assert!(s.replace(&id, own, now));
        assert_eq!(s.touch(&id, now).unwrap().unwrap().person(), "reseller");
        assert!(!s.replace("gone", session("x"), now));
    }

    #[test]
    fn idle_sessions_end_and_use_keeps_them() {
        let s = Sessions::new(Duration::from_secs(60));
        let t0 = Instant::now();
        let (id, dropped) = s.create(session("a"), t0);
        assert!(dropped.is_empty());
        // Used every 50 s: alive after 150 s.
        for i in 1..=3 {
            let got = s.touch(&id, t0 + Duration::from_secs(50 * i)).unwrap();
            assert_eq!(got.unwrap().account, "a");
        }
        // 60 s without use: ended, handed back for revocation, then unknown.
        let gone = s.touch(&id, t0 + Duration::from_secs(210)).unwrap_err();
        assert_eq!(gone.token_id, "a");
        assert_eq!(s.touch(&id, t0 + Duration::from_secs(211)), Ok(None));
        assert!(s.is_empty());
    }

    #[test]
    fn creating_sweeps_idle_sessions() {
        let s = Sessions::new(Duration::from_secs(60));
        let t0 = Instant::now();
        let (old, _) = s.create(session("old"), t0);
        let (_, dropped) = s.create(session("new"), t0 + Duration::from_secs(61));
        assert_eq!(dropped.len(), 1);
        assert_eq!(dropped[0].account, "old");
        assert_eq!(s.touch(&old, t0 + Duration::from_secs(62)), Ok(None));
        assert_eq!(s.len(), 1);
    }

    #[test]
    fn ids_are_distinct_and_unguessable_length() {
        let s = Sessions::new(IDLE_TIMEOUT);
        let now = Instant::now();
        let (a, _) = s.create(session("a"), now);
        let (b, _) = s.create(session("a"), now);
        assert_ne!(a, b);
        assert_eq!(a.len(), 43); // 32 bytes, base64url without padding
        assert!(s.touch("not-an-id", now).unwrap().is_none());
        assert_eq!(s.remove(&a).unwrap().account, "a");
        assert!(s.touch(&a, now).unwrap().is_none());
    }

    #[test]
    fn csrf_comparison() {
        let t = random_secret();
        assert!(csrf_matches(&t, Some(&t)));
        assert!(!csrf_matches(&t, None));
        assert!(!csrf_matches(&t, Some("")));
        assert!(!csrf_matches(&t, Some(&t[1..])));
        assert!(!csrf_matches(&t, Some(&random_secret())));
        // An empty expected token never matches (not even an empty submission).
        assert!(!csrf_matches("", Some("")));
    }

    #[test]
    fn cookies_parse_and_set() {
        let mut h = http::HeaderMap::new();
        h.append(
            http::header::COOKIE,
            "a=1; __Host-hp_session=xyz".parse().unwrap(),
        );
        h.append(http::header::COOKIE, "b=2".parse().unwrap());
        assert_eq!(cookie(&h, COOKIE), Some("xyz"));
        assert_eq!(cookie(&h, "b"), Some("2"));
        assert_eq!(cookie(&h, "hp_session"), None);
        let set = set_cookie(COOKIE, Some("v"));
        for attr in ["HttpOnly", "Secure", "SameSite=Strict", "Path=/"] {
            assert!(set.contains(attr), "{set}");
        }
        assert!(set_cookie(COOKIE, None).contains("Max-Age=0"));
    }
}
