//! Events for the mass-silence hold ([`scheduler::disruption::judge`]): while a hold
//! lasts its silent servers keep their state, so no `server.health` event shows them;
//! without these events `hostplane events` would not say why a dead-looking server
//! was not failed over. One `health.hold_started` when a scope (the platform, or one
//! cluster) starts being held and one `health.hold_ended` when it stops, never one per
//! tick: [`changes`] compares the hold of a tick with the previous one.

use std::collections::{BTreeSet, HashMap};
use std::time::Instant;

use model::entity::{Cluster, Kind, Server};
use model::Id;
use scheduler::disruption::Hold;
use scheduler::Health;
use store::{Actor, Stored};

use crate::health::HealthDeps;

/// What a hold covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Scope {
    /// Most servers of the whole platform.
    Everywhere,
    /// Most servers of one cluster.
    Cluster(Id),
}

/// A hold of one scope that started or ended between two ticks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HoldChange {
    /// The scope held or released.
    pub scope: Scope,
    /// `true` when the hold started, `false` when it ended.
    pub started: bool,
}

fn scopes(h: &Hold) -> BTreeSet<Scope> {
    let mut s: BTreeSet<Scope> = h.clusters.iter().map(|c| Scope::Cluster(*c)).collect();
    if h.everywhere {
        s.insert(Scope::Everywhere);
    }
    s
}

/// The scopes whose hold started or ended from `before` to `now` (empty when the
/// hold did not change, so a hold lasting many ticks is recorded once).
pub fn changes(before: &Hold, now: &Hold) -> Vec<HoldChange> {
    let (b, n) = (scopes(before), scopes(now));
    let ended = b.difference(&n).map(|s| HoldChange {
        scope: *s,
        started: false,
    });
    let started = n.difference(&b).map(|s| HoldChange {
        scope: *s,
        started: true,
    });
    ended.chain(started).collect()
}

/// Records one event per change: `health.hold_started` / `health.hold_ended`, about
/// the cluster held (none for the platform), naming (sorted) the servers silent in the
/// scope then (the held ones: their silence outlived the window, or they were already
/// `suspect` or `down`). A store error is logged, never returned.
pub async fn record(state: &HealthDeps, changes: &[HoldChange]) {
    if changes.is_empty() {
        return;
    }
    let (servers, clusters) = match (
        state.store.all::<Server>().await,
        state.store.all::<Cluster>().await,
    ) {
        (Ok(s), Ok(c)) => (s, c),
        (Err(e), _) | (_, Err(e)) => {
            tracing::warn!(error = %e, "cannot read servers to record a silence hold");
            return;
        }
    };
    let clusters: HashMap<Id, &Stored<Cluster>> = clusters.iter().map(|c| (c.meta.id, c)).collect();
    let overdue: BTreeSet<Id> = state.health.overdue(Instant::now()).into_iter().collect();
    let states = state.health.states();
    let silent_in = |scope: Scope| -> Vec<String> {
        let mut names: Vec<String> = servers
            .iter()
            .filter(|s| match scope {
                Scope::Everywhere => true,
                Scope::Cluster(c) => s.data.cluster == c,
            })
            .filter(|s| {
                overdue.contains(&s.meta.id)
                    || matches!(states.get(&s.meta.id), Some(Health::Suspect | Health::Down))
            })
            .map(|s| s.meta.name.clone())
            .collect();
        names.sort();
        names
    };
    let result = async {
        let mut tx = state
            .store
            .begin(Actor {
                account: None,
                label: "health".into(),
            })
            .await?;
        for c in changes {
            let action = if c.started {
                "health.hold_started"
            } else {
                "health.hold_ended"
            };
            let silent = silent_in(c.scope);
            let (kind, object, scope) = match c.scope {
                Scope::Everywhere => (Kind::Server, None, "platform".to_string()),
                Scope::Cluster(id) => {
                    let name = clusters
                        .get(&id)
                        .map_or_else(|| id.to_string(), |c| c.meta.name.clone());
                    (Kind::Cluster, Some(id), name)
                }
            };
            let detail = serde_json::json!({
                "scope": scope,
                "silent": silent,
                "why": if c.started {
                    "most servers are silent at once: the controller's trouble or a partition; they keep their state, nothing fails over"
                } else {
                    "silent servers are judged one by one again"
                },
            });
            tx.event(
                action,
                kind,
                object.map(|id| (id, scope.as_str())),
                None,
                detail,
            )
            .await?;
        }
        tx.commit().await
    }
    .await;
    if let Err(e) = result {
        tracing::warn!(error = %e, "cannot record a silence hold");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hold(everywhere: bool, clusters: &[Id]) -> Hold {
        Hold {
            everywhere,
            clusters: clusters.iter().copied().collect(),
        }
    }

    #[test]
    fn a_hold_is_recorded_when_it_starts_and_when_it_ends_only() {
        let none = Hold::default();
        let one = hold(false, &[7]);
        assert_eq!(
            changes(&none, &one),
            [HoldChange {
                scope: Scope::Cluster(7),
                started: true
            }]
        );
        assert!(changes(&one, &one).is_empty(), "a lasting hold: nothing");
        let more = hold(true, &[7, 9]);
        assert_eq!(
            changes(&one, &more),
            [
                HoldChange {
                    scope: Scope::Everywhere,
                    started: true
                },
                HoldChange {
                    scope: Scope::Cluster(9),
                    started: true
                }
            ]
        );
        assert_eq!(
            changes(&more, &none),
            [
                HoldChange {
                    scope: Scope::Everywhere,
                    started: false
                },
                HoldChange {
                    scope: Scope::Cluster(7),
                    started: false
                },
                HoldChange {
                    scope: Scope::Cluster(9),
                    started: false
                }
            ]
        );
    }
}
