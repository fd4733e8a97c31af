//! The scheduler's view of the platform ([`Snapshot`]): clusters and servers from
//! the store, health from the monitor, and per server the number of `single` sites
//! active on it (from the store for passes, from memory for new sites).

use std::collections::HashMap;

use model::entity::{Cluster, Server, Site};
use model::Id;
use scheduler::{ClusterInfo, Health, ServerInfo, Snapshot};
use store::{Store, Stored};

use super::PlacementResult;
use crate::health::HealthMonitor;

/// Sites per server counted from `sites` (every site with an active server).
pub fn loads_of(sites: &[Stored<Site>]) -> HashMap<Id, u32> {
    let mut load: HashMap<Id, u32> = HashMap::new();
    for s in sites {
        if let Some(id) = s.data.active_server {
            *load.entry(id).or_default() += 1;
        }
    }
    load
}

/// Clusters and servers with their health and the given loads.
pub async fn snapshot_of(
    store: &Store,
    health: &HealthMonitor,
    load: &HashMap<Id, u32>,
) -> PlacementResult<Snapshot> {
    Ok(snapshot_and_clusters(store, health, load).await?.0)
}

/// [`snapshot_of`], with the clusters it was made from (their mail writers).
pub async fn snapshot_and_clusters(
    store: &Store,
    health: &HealthMonitor,
    load: &HashMap<Id, u32>,
) -> PlacementResult<(Snapshot, Vec<Stored<Cluster>>)> {
    let clusters = store.all::<Cluster>().await?;
    let servers = store.all::<Server>().await?;
    let snap = Snapshot {
        clusters: clusters
            .iter()
            .map(|c| ClusterInfo {
                id: c.meta.id,
                name: c.meta.name.clone(),
                role: c.data.role,
                is_default: c.data.is_default,
                servers: servers
                    .iter()
                    .filter(|s| s.data.cluster == c.meta.id)
                    .map(|s| {
                        let mut info = server_info(s, load.get(&s.meta.id).copied().unwrap_or(0));
                        info.health = health.state(s.meta.id);
                        info
                    })
                    .collect(),
            })
            .collect(),
    };
    Ok((snap, clusters))
}

/// The scheduler's view of one server (health `unknown`; the caller sets it).
pub fn server_info(s: &Stored<Server>, load: u32) -> ServerInfo {
    ServerInfo {
        id: s.meta.id,
        name: s.meta.name.clone(),
        rank: s.data.rank,
        country: s.data.country,
        health: Health::Unknown,
        drained: s.data.drained,
        load,
    }
}
