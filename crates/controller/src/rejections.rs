//! Objects a server's role engine could not apply.
//!
//! Engines apply desired configs object by object: an object they cannot apply
//! keeps its last applied version (or stays absent) and is listed in the agent's
//! heartbeat (`rejected`) and named in the engine's health detail. The controller
//! keeps the last list per server ([`crate::health::HealthMonitor::set_rejected`])
//! and records each change as an event: `server.object_rejected` when an object
//! (or its reason) appears, `server.object_applied` when it is gone from the list.

use std::collections::BTreeMap;

use model::entity::Server;
use proto::agent_v1::RejectedObject;
use store::Stored;

use crate::error::ApiError;
use crate::state::AppState;

/// Most rejected objects one heartbeat may list.
pub const MAX_REJECTED: usize = 256;
/// Longest object name or reason.
const MAX_TEXT: usize = 1024;

/// What changed between two lists of rejected objects.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Change {
    /// Newly rejected (or rejected for another reason).
    pub rejected: Vec<RejectedObject>,
    /// No longer rejected (applied, or gone from the config), by object name.
    pub applied: Vec<String>,
}

impl Change {
    /// Nothing changed.
    pub fn is_empty(&self) -> bool {
        self.rejected.is_empty() && self.applied.is_empty()
    }
}

/// The change from `before` to `now` (pure).
pub fn diff(before: &[RejectedObject], now: &[RejectedObject]) -> Change {
    let old: BTreeMap<&str, &str> = before
        .iter()
        .map(|r| (r.object.as_str(), r.reason.as_str()))
        .collect();
    let new: BTreeMap<&str, &str> = now
        .iter()
        .map(|r| (r.object.as_str(), r.reason.as_str()))
        .collect();
    Change {
        rejected: new
            .iter()
            .filter(|(o, r)| old.get(*o) != Some(*r))
            .map(|(o, r)| RejectedObject::new(*o, r))
            .collect(),
        applied: old
            .keys()
            .filter(|o| !new.contains_key(*o))
            .map(|o| o.to_string())
            .collect(),
    }
}

/// Refuse a heartbeat's list when it is too long or its texts are.
pub fn check(list: &[RejectedObject]) -> Result<(), ApiError> {
    if list.len() > MAX_REJECTED {
        return Err(ApiError::invalid(
            "rejected",
            "too_many",
            format!("at most {MAX_REJECTED} rejected objects"),
        ));
    }
    for (i, r) in list.iter().enumerate() {
        if r.object.len() > MAX_TEXT || r.reason.len() > MAX_TEXT {
            return Err(ApiError::invalid(
                format!("rejected[{i}]"),
                "too_long",
                format!("object names and reasons are at most {MAX_TEXT} bytes"),
            ));
        }
    }
    Ok(())
}

/// Record `change` of `server`'s list as events (one transaction).
pub async fn record(state: &AppState, server: &Stored<Server>, change: Change) {
    let mut events = Vec::new();
    for r in &change.rejected {
        tracing::warn!(server = %server.meta.name, object = %r.object, reason = %r.reason, "object not applied");
        events.push((
            "server.object_rejected",
            serde_json::json!({
                "object": r.object,
                "reason": r.reason,
                "cluster": server.data.cluster,
            }),
        ));
    }
    for o in &change.applied {
        tracing::info!(server = %server.meta.name, object = %o, "object no longer rejected");
        events.push((
            "server.object_applied",
            serde_json::json!({ "object": o, "cluster": server.data.cluster }),
        ));
    }
    crate::health::record_server_events(&state.store, server, events, "rejected object").await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn diff_names_new_changed_and_cleared_objects() {
        let a = RejectedObject::new("mailbox a/b@x.test", "bad");
        let b = RejectedObject::new("zone y.test", "bad record");
        let b2 = RejectedObject::new("zone y.test", "other");
        let one = vec![a.clone()];
        assert!(diff(&one, &one).is_empty());
        let c = diff(&[a.clone(), b], std::slice::from_ref(&b2));
        assert_eq!(c.rejected, vec![b2]);
        assert_eq!(c.applied, vec!["mailbox a/b@x.test".to_string()]);
        assert_eq!(diff(&[], &one).rejected, one);
    }
}
