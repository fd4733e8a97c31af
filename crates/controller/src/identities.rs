//! The joined agents' identities in memory, so that a heartbeat or config poll is
//! authenticated without a store read: under load the store's few pooled
//! connections are busy with writes and builds, and a heartbeat queued behind them
//! arrived late enough to make its server suspect.
//!
//! Only an exact (certificate common name, certificate digest) match is answered
//! from memory; anything else — a new join, a re-join with a new certificate, an
//! unknown name — goes to the store, which stays the authority. The health monitor
//! replaces the whole map from the store every tick ([`Identities::refresh`]), and
//! this controller's reset and delete of a server [`Identities::forget`] it at once
//! (a store read that began before a forget is not put back: [`Generation`]); a
//! reset or delete made through *another* controller on the same store is seen here
//! within one health tick (half a heartbeat interval).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use model::entity::Server;
use store::Stored;

/// Joined servers by certificate common name (the server's name).
#[derive(Debug, Default)]
pub struct Identities {
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    by_name: HashMap<String, Arc<Stored<Server>>>,
    /// Bumped by every [`Identities::forget`].
    forgets: u64,
}

/// Taken before a store read whose servers are then remembered: if a server was
/// forgotten meanwhile, the read may predate its reset and is not remembered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Generation(u64);

impl Identities {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The server named `name` if it joined with the certificate of digest `sha256`.
    pub fn get(&self, name: &str, sha256: &str) -> Option<Arc<Stored<Server>>> {
        self.lock()
            .by_name
            .get(name)
            .filter(|s| joined_with(s, sha256))
            .cloned()
    }

    /// Take before reading servers from the store to [`Identities::insert`] or
    /// [`Identities::refresh`] them.
    pub fn generation(&self) -> Generation {
        Generation(self.lock().forgets)
    }

    /// Remember a server read from the store (only if it has joined, and nothing
    /// was forgotten since `read` began).
    pub fn insert(&self, read: Generation, server: Stored<Server>) {
        let mut inner = self.lock();
        if server.data.agent.is_some() && inner.forgets == read.0 {
            inner
                .by_name
                .insert(server.meta.name.clone(), Arc::new(server));
        }
    }

    /// Forget a server whose identity was reset or which was deleted.
    pub fn forget(&self, name: &str) {
        let mut inner = self.lock();
        inner.by_name.remove(name);
        inner.forgets += 1;
    }

    /// Replace everything with the joined ones of `servers` (all servers, as read
    /// from the store since `read`); skipped if something was forgotten meanwhile
    /// (the next refresh catches up).
    pub fn refresh(&self, read: Generation, servers: &[Stored<Server>]) {
        let fresh: HashMap<String, Arc<Stored<Server>>> = servers
            .iter()
            .filter(|s| s.data.agent.is_some())
            .map(|s| (s.meta.name.clone(), Arc::new(s.clone())))
            .collect();
        let mut inner = self.lock();
        if inner.forgets == read.0 {
            inner.by_name = fresh;
        }
    }
}

/// Whether `server` last joined with the certificate of digest `sha256`.
pub fn joined_with(server: &Stored<Server>, sha256: &str) -> bool {
    server
        .data
        .agent
        .as_ref()
        .is_some_and(|a| a.cert_sha256 == sha256)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn server(name: &str, sha: Option<&str>) -> Stored<Server> {
        let mut data: serde_json::Value = serde_json::json!({
            "name": name, "role": "web", "cluster": 1, "hostname": format!("{name}.example"),
            "addresses": ["192.0.2.1"], "country": "GB",
        });
        if let Some(sha) = sha {
            data["agent"] = serde_json::json!({"joined_at": 0, "cert_sha256": sha});
        }
        let now = time::OffsetDateTime::UNIX_EPOCH;
        Stored {
            meta: store::Meta {
                id: 1,
                name: name.into(),
                owner: None,
                reseller: None,
                parent: Some(1),
                created_rev: 1,
                updated_rev: 1,
                created_at: now,
                updated_at: now,
            },
            data: serde_json::from_value(data).expect("a valid server"),
        }
    }

    #[test]
    fn only_the_joined_certificate_is_answered_from_memory() {
        let ids = Identities::default();
        let g = ids.generation();
        ids.refresh(g, &[server("w1", Some("aa")), server("w2", None)]);
        assert!(ids.get("w1", "aa").is_some());
        assert!(ids.get("w1", "bb").is_none(), "another certificate");
        assert!(ids.get("w2", "").is_none(), "never joined");
        assert!(ids.get("w3", "aa").is_none(), "unknown");
    }

    #[test]
    fn a_read_older_than_a_forget_is_not_remembered() {
        let ids = Identities::default();
        ids.insert(ids.generation(), server("w1", Some("aa")));
        assert!(ids.get("w1", "aa").is_some());
        // A tick's read began, then the server was reset (forget), then the read
        // (still showing the old certificate) finished: it must not come back.
        let before = ids.generation();
        ids.forget("w1");
        ids.refresh(before, &[server("w1", Some("aa"))]);
        assert!(ids.get("w1", "aa").is_none());
        ids.insert(before, server("w1", Some("aa")));
        assert!(ids.get("w1", "aa").is_none());
        // A read after the forget is remembered again.
        ids.refresh(ids.generation(), &[server("w1", Some("cc"))]);
        assert!(ids.get("w1", "cc").is_some());
    }
}
