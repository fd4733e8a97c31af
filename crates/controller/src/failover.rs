//! Placement passes for `single` sites: move each one whose server is down,
//! drained, gone or outside the site's web cluster to the least-loaded usable
//! server of that cluster ([`scheduler::pick_single_server`]), and place the ones
//! that have no server yet. Suspect servers keep their sites (they may only be
//! slow) but never receive new ones.
//!
//! The decisions are made on a snapshot and written in one transaction with actor
//! `scheduler`, one `site.move` event per move; a site that must move but has
//! nowhere to go stays and gets a `placement.warning` event. Passes run when a
//! server goes down or comes back, and on drain / undrain.

use std::collections::HashMap;

use model::entity::{Domain, Kind, Site};
use model::{Id, PlacementMode, Role};
use scheduler::{pick_single_server, Health, Snapshot};
use store::Actor;

use crate::error::ApiResult;
use crate::health::health_str;
use crate::state::AppState;

/// What a pass decided for one site.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Make `to` the active server (`from` was the previous one, if any).
    Move {
        /// Site id.
        site: Id,
        /// Previous server.
        from: Option<Id>,
        /// New server.
        to: Id,
    },
    /// The site must leave `from` but no server of its cluster is usable.
    Stuck {
        /// Site id.
        site: Id,
        /// The server it stays on.
        from: Id,
    },
}

/// Decide the moves for `sites` (`(site id, web cluster id, active server)` of
/// `single` sites), optionally only in one cluster. Pure.
pub fn decide(
    snap: &Snapshot,
    sites: &[(Id, Id, Option<Id>)],
    only_cluster: Option<Id>,
) -> Vec<Decision> {
    let mut snap = snap.clone();
    let mut out = Vec::new();
    for &(site, cluster_id, current) in sites {
        if only_cluster.is_some_and(|c| c != cluster_id) {
            continue;
        }
        let Some(cluster) = snap.clusters.iter_mut().find(|c| c.id == cluster_id) else {
            continue;
        };
        let member = current.and_then(|cur| cluster.servers.iter().find(|s| s.id == cur));
        let must_move = match member {
            None => true,
            Some(s) => s.drained || s.health == Health::Down,
        };
        if !must_move {
            continue;
        }
        match pick_single_server(cluster) {
            Some(to) => {
                for s in cluster.servers.iter_mut() {
                    if Some(s.id) == current {
                        s.load = s.load.saturating_sub(1);
                    }
                    if s.id == to {
                        s.load += 1;
                    }
                }
                out.push(Decision::Move {
                    site,
                    from: current,
                    to,
                });
            }
            None => {
                if let (Some(from), Some(_)) = (current, member) {
                    out.push(Decision::Stuck { site, from });
                }
            }
        }
    }
    out
}

/// Run a placement pass (all clusters, or one) and write its moves; returns the
/// number of sites moved.
pub async fn reconcile(state: &AppState, cluster: Option<Id>, reason: &str) -> ApiResult<usize> {
    let _guard = state.placement.lock().await;
    let snap = crate::api::snapshot(state).await?;
    let domains: HashMap<Id, Domain> = state
        .store
        .all::<Domain>()
        .await?
        .into_iter()
        .map(|d| (d.meta.id, d.data))
        .collect();
    let sites = state.store.all::<Site>().await?;
    let list: Vec<(Id, Id, Option<Id>)> = sites
        .iter()
        .filter(|s| s.data.mode == PlacementMode::Single)
        .filter_map(|s| {
            let web = domains.get(&s.data.domain)?.placements.get(&Role::Web)?;
            Some((s.meta.id, *web, s.data.active_server))
        })
        .collect();
    let decisions = decide(&snap, &list, cluster);
    if decisions.is_empty() {
        return Ok(0);
    }
    let server_names: HashMap<Id, (String, Health)> = snap
        .clusters
        .iter()
        .flat_map(|c| c.servers.iter())
        .map(|s| (s.id, (s.name.clone(), s.health)))
        .collect();
    let name = |id: Option<Id>| {
        id.and_then(|i| server_names.get(&i))
            .map(|(n, _)| n.clone())
    };
    let mut tx = state
        .store
        .begin(Actor {
            account: None,
            label: "scheduler".into(),
        })
        .await?;
    let mut moved = 0;
    for d in &decisions {
        match d {
            Decision::Move { site, from, to } => {
                let Some(mut cur) = tx.get::<Site>(*site).await? else {
                    continue;
                };
                if cur.data.active_server != *from || cur.data.mode != PlacementMode::Single {
                    continue; // changed meanwhile; the next pass decides again
                }
                cur.data.active_server = Some(*to);
                let owner = cur.meta.owner;
                let updated = tx.update(cur.meta.id, &cur.meta.name, cur.data).await?;
                tx.event(
                    "site.move",
                    Kind::Site,
                    Some((updated.meta.id, &updated.meta.name)),
                    owner,
                    serde_json::json!({
                        "from": name(*from),
                        "to": name(Some(*to)),
                        "reason": reason,
                    }),
                )
                .await?;
                tracing::info!(site = %updated.meta.name, from = ?name(*from), to = ?name(Some(*to)), reason, "single site moved");
                moved += 1;
            }
            Decision::Stuck { site, from } => {
                let Some(cur) = tx.get::<Site>(*site).await? else {
                    continue;
                };
                let (from_name, health) = server_names
                    .get(from)
                    .cloned()
                    .unwrap_or_else(|| (format!("#{from}"), Health::Unknown));
                let warning = format!(
                    "site `{}` must leave server `{from_name}` ({}) but no other server of its cluster is usable; it stays",
                    cur.meta.name,
                    health_str(health)
                );
                tracing::warn!("{warning}");
                tx.event(
                    "placement.warning",
                    Kind::Site,
                    Some((cur.meta.id, &cur.meta.name)),
                    cur.meta.owner,
                    serde_json::json!({"warning": warning, "server": from_name, "reason": reason}),
                )
                .await?;
            }
        }
    }
    tx.commit().await?;
    state.changed();
    Ok(moved)
}

#[cfg(test)]
mod tests {
    use super::*;
    use model::CountryCode;
    use scheduler::{ClusterInfo, ServerInfo};

    fn server(id: Id, health: Health, drained: bool, load: u32) -> ServerInfo {
        ServerInfo {
            id,
            name: format!("s{id}"),
            rank: 0,
            country: CountryCode::new("DE").unwrap(),
            health,
            drained,
            load,
        }
    }

    fn snap(servers: Vec<ServerInfo>) -> Snapshot {
        Snapshot {
            clusters: vec![ClusterInfo {
                id: 1,
                name: "web".into(),
                role: Role::Web,
                is_default: true,
                servers,
            }],
        }
    }

    #[test]
    fn moves_off_down_and_drained_only() {
        let s = snap(vec![
            server(10, Health::Down, false, 2),
            server(11, Health::Up, false, 0),
            server(12, Health::Suspect, false, 1),
            server(13, Health::Up, true, 0),
        ]);
        let sites = [
            (100, 1, Some(10)),
            (101, 1, Some(10)),
            (102, 1, Some(12)),
            (103, 1, Some(13)),
            (104, 1, None),
            (105, 2, Some(10)),
        ];
        let d = decide(&s, &sites, None);
        // Everything lands on 11 (the only usable one); the suspect keeps its site,
        // the site of an unknown cluster is left alone.
        assert_eq!(
            d,
            vec![
                Decision::Move {
                    site: 100,
                    from: Some(10),
                    to: 11
                },
                Decision::Move {
                    site: 101,
                    from: Some(10),
                    to: 11
                },
                Decision::Move {
                    site: 103,
                    from: Some(13),
                    to: 11
                },
                Decision::Move {
                    site: 104,
                    from: None,
                    to: 11
                },
            ]
        );
        assert!(decide(&s, &sites, Some(2)).is_empty());
    }

    #[test]
    fn spreads_by_load_and_reports_stuck() {
        let s = snap(vec![
            server(10, Health::Down, false, 0),
            server(11, Health::Up, false, 0),
            server(12, Health::Unknown, false, 0),
        ]);
        let sites = [(100, 1, Some(10)), (101, 1, Some(10)), (102, 1, Some(10))];
        let tos: Vec<Id> = decide(&s, &sites, None)
            .into_iter()
            .filter_map(|d| match d {
                Decision::Move { to, .. } => Some(to),
                Decision::Stuck { .. } => None,
            })
            .collect();
        assert_eq!(tos, vec![11, 12, 11]);
        let none = snap(vec![
            server(10, Health::Down, false, 0),
            server(11, Health::Suspect, false, 0),
        ]);
        assert_eq!(
            decide(&none, &[(100, 1, Some(10)), (101, 1, None)], None),
            vec![Decision::Stuck {
                site: 100,
                from: 10
            }]
        );
    }
}
