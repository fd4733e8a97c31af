//! A site's cron runner through the one placement path, and the lease that lets a
//! web server run what it holds.
//!
//! **Holder.** [`scheduler::cron::place_cron`] decides which web server runs each
//! site's jobs (`Site::cron_holder`), in the same passes, lock and transactions as
//! the sites themselves; a move writes a `site.cron_move` event.
//!
//! **Lease.** Rather than a store write per site, each heartbeat answer grants the
//! web server a lease of `[health] cron_lease_s` ([`CronLeases::grant`]); the agent
//! counts it from when it *sent* the heartbeat and runs the jobs its desired
//! config assigns to it only while the lease lasts — so a server cut off from the
//! controller stops within one lease, and keeps running while the controller is
//! merely down. A lease is granted only to a server that has applied its current
//! config, and, after cron left it, only once that config was built from the
//! moving transaction ([`CronLeases::revoke`], set before the commit). So from the
//! move on the old holder gets no lease that covers the site, and the leases it got
//! before end within `cron_lease_s`: the new holder starts no earlier than
//! [`not_before`] (the move's time plus the lease and a clock margin).
//! Cron moves made by another controller of the same store are not seen here (one
//! controller serves a platform's agents at a time).

use std::collections::HashMap;
use std::sync::Mutex;

use model::cron::CronHolder;
use model::entity::{Domain, Site};
use model::{Id, PlacementMode, Role};
use scheduler::cron::CronPlaced;
use scheduler::{Decision, Snapshot};
use store::{StoreError, Stored, Tx};

use super::apply::ServerNames;
use crate::configs::ConfigHub;

/// Seconds added to a handover for the clocks of the controller and the new
/// holder differing (agents warn above 30 s of skew).
pub const CLOCK_MARGIN_S: i64 = 5;

/// When a cron leaving a server at unix second `now` may start elsewhere.
pub fn not_before(now: i64, lease_s: u64) -> i64 {
    now + i64::try_from(lease_s).unwrap_or(i64::MAX / 4) + CLOCK_MARGIN_S
}

/// The lease side: which servers must first catch up before a new lease.
#[derive(Debug, Default)]
pub struct CronLeases {
    /// Server → the store revision of the last transaction that moved a cron
    /// away from it.
    revoked: Mutex<HashMap<Id, i64>>,
}

impl CronLeases {
    /// Cron left `servers` in the transaction committing as `revision`: no lease
    /// until they applied a config built from it. Called before the commit.
    pub fn revoke(&self, servers: &[Id], revision: i64) {
        let mut r = self.revoked.lock().unwrap_or_else(|p| p.into_inner());
        for s in servers {
            let e = r.entry(*s).or_default();
            *e = (*e).max(revision);
        }
    }

    /// Whether `server`, which applied config revision `applied`, gets a lease:
    /// it applied its current config, and that config is built at or after the
    /// last move of a cron away from it.
    pub fn grant(&self, server: Id, applied: i64, configs: &ConfigHub) -> bool {
        let (Some(current), Some(built)) = (configs.revision(server), configs.built_revision())
        else {
            return false;
        };
        let revoked = self
            .revoked
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&server)
            .copied()
            .unwrap_or(0);
        applied >= current && built >= revoked
    }
}

/// The sites with cron jobs as placed things; `single` sites pinned to their
/// active server after `decisions` (this pass's site moves).
pub fn placed(
    domains: &HashMap<Id, Domain>,
    sites: &[Stored<Site>],
    decisions: &[Decision],
) -> Vec<CronPlaced> {
    let moved: HashMap<Id, Option<Id>> = decisions
        .iter()
        .filter_map(|d| match *d {
            Decision::Move {
                subject: scheduler::Subject::Site(s),
                to,
                ..
            } => Some((s, Some(to))),
            Decision::Unplace {
                subject: scheduler::Subject::Site(s),
                ..
            } => Some((s, None)),
            _ => None,
        })
        .collect();
    sites
        .iter()
        .filter(|s| !s.data.cron.is_empty())
        .filter_map(|s| {
            let web = domains.get(&s.data.domain)?.placements.get(&Role::Web)?;
            let pinned = (s.data.mode == PlacementMode::Single).then(|| {
                moved
                    .get(&s.meta.id)
                    .copied()
                    .unwrap_or(s.data.active_server)
            });
            Some(CronPlaced {
                site: s.meta.id,
                cluster: *web,
                current: s.data.cron_holder.and_then(|h| h.server),
                pinned,
            })
        })
        .collect()
}

/// `snap` with each server's load replaced by the crons it holds.
pub fn with_cron_loads(snap: &Snapshot, sites: &[Stored<Site>]) -> Snapshot {
    let mut load: HashMap<Id, u32> = HashMap::new();
    for s in sites {
        if let Some(id) = s.data.cron_holder.and_then(|h| h.server) {
            *load.entry(id).or_default() += 1;
        }
    }
    let mut snap = snap.clone();
    for s in snap.clusters.iter_mut().flat_map(|c| c.servers.iter_mut()) {
        s.load = load.get(&s.id).copied().unwrap_or(0);
    }
    snap
}

/// Set a site's cron holder from `from` to `to` if it is still on `from`, with a
/// `site.cron_move` event; whether it moved. Leaving a server delays the start on
/// the next by the lease ([`not_before`]).
pub async fn move_cron(
    tx: &mut Tx,
    site: Id,
    from: Option<Id>,
    to: Option<Id>,
    servers: &ServerNames,
    reason: &str,
    lease_s: u64,
) -> Result<bool, StoreError> {
    let Some(mut cur) = tx.get::<Site>(site).await? else {
        return Ok(false);
    };
    let holder = cur.data.cron_holder.unwrap_or_default();
    if holder.server != from {
        return Ok(false); // changed meanwhile; the next pass decides again
    }
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    cur.data.cron_holder = Some(CronHolder {
        server: to,
        not_before: match from {
            Some(_) => not_before(now, lease_s),
            None => holder.not_before,
        },
    });
    super::apply::write_moved(
        tx,
        cur,
        [from, to],
        servers,
        reason,
        ("site.cron_move", "cron runner"),
    )
    .await?;
    Ok(true)
}

/// The holder a site's first cron job gets (decided on `snap`, under the lock the
/// caller holds): the site's active server for a `single` site, else the
/// least-loaded usable server of `domain`'s web cluster.
pub fn first_holder(snap: &Snapshot, domain: &Domain, site: &Stored<Site>) -> Option<Id> {
    let web = *domain.placements.get(&Role::Web)?;
    let placed = CronPlaced {
        site: site.meta.id,
        cluster: web,
        current: None,
        pinned: (site.data.mode == PlacementMode::Single).then_some(site.data.active_server),
    };
    scheduler::cron::place_cron(snap, &[placed])
        .into_iter()
        .find_map(|d| match d {
            Decision::Move { to, .. } => Some(to),
            _ => None,
        })
}

/// Decide `placed` on `snap` and write the moves in `tx` (which the caller
/// commits), holding the placement lock (`held`).
pub async fn write_placed(
    held: &tokio::sync::MutexGuard<'_, super::converge::Memory>,
    state: &crate::state::AppState,
    tx: &mut Tx,
    snap: &Snapshot,
    placed: &[CronPlaced],
    reason: &str,
) -> Result<(), StoreError> {
    let decisions = scheduler::cron::place_cron(snap, placed);
    let written = super::apply::write(
        tx,
        &decisions,
        &ServerNames::of(snap),
        &held.warned,
        reason,
        super::apply::LeaseSecs::of(&state.config.health),
    )
    .await?;
    state
        .placement
        .cron
        .revoke(&written.cron_left, tx.revision());
    Ok(())
}
