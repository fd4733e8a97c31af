//! The one placement path. Every placement decision is a pure function of the
//! `scheduler` crate over a [`Snapshot`]; this module is the only place that takes
//! snapshots (store + health monitor + loads) and writes decisions:
//!
//! - **domain create** — [`place_domain`]: one cluster per role
//!   ([`scheduler::place_domain`]); the creating transaction writes the plan and
//!   re-checks the clusters.
//! - **site create** — [`place_site`]: the least-loaded usable server
//!   ([`scheduler::pick_single_server`]) with loads from memory
//!   ([`crate::loads`]), picked and counted under the lock so concurrent creates
//!   spread; the creating transaction writes it.
//! - **re-placement** — [`scheduler::replace`] decides for every occasion: a
//!   server down, drained or back ([`reconcile`], run by drain / undrain and by
//!   [`tick`]), a server deleted ([`delete_server`], in the deleting transaction),
//!   a domain moved to another web cluster ([`replace_domain_sites`]).
//!   [`apply::write`] writes the decisions under the [`Placement`] lock, one
//!   transaction per pass, with a `site.move` event per move and a
//!   `placement.warning` the first time something is stuck.
//!
//! **Failover is level-triggered.** The health monitor calls [`tick`] on every
//! tick; it compares a fingerprint of what placement depends on with the last
//! converged pass ([`converge`]) and runs a pass only when it differs or the last
//! pass failed — so a failed pass is retried on the next tick, and a converged
//! platform costs two small reads (clusters, servers) per tick, no site read, no
//! store write, no event.
//!
//! - **cron runner** — [`cron`]: which web server runs a site's cron jobs
//!   ([`scheduler::cron::place_cron`]), decided in the same passes after the
//!   sites' moves, and the lease a heartbeat grants.
//!
//! - **mail writer** — [`mail`]: which server of each mail cluster writes its
//!   mailboxes ([`scheduler::mail::place_mail`]), decided in the same passes, its
//!   fencing epoch, and the lease a heartbeat grants.
//!
//! **Later placement needs** add a [`scheduler::Subject`] variant and a rule in the scheduler producing
//! [`scheduler::Decision`]s for it, feed their placed things into the pass next to
//! the sites, and an arm in [`apply::write`]; the lock, the transaction, the
//! events and the level-triggered loop stay.
//!
//! Errors are this module's own ([`PlacementError`]); `error.rs` maps them to HTTP.

pub mod apply;
pub mod converge;
pub mod cron;
pub mod mail;
pub mod snapshot;

use std::collections::HashMap;

use model::entity::{Domain, Server, Site};
use model::{Id, PlacementMode, Role};
use scheduler::{Decision, DomainRequest, Placed, Plan, Snapshot, Subject};
use store::{Actor, Stored, Tx};

pub use snapshot::server_info;

use crate::state::AppState;
use apply::ServerNames;
use converge::Memory;

/// Why placement could not be decided or written.
#[derive(Debug, thiserror::Error)]
pub enum PlacementError {
    /// The store failed (the pass is retried on the next tick).
    #[error(transparent)]
    Store(#[from] store::StoreError),
    /// No placement satisfies the request.
    #[error(transparent)]
    Infeasible(#[from] scheduler::Infeasible),
}

/// Result of placement functions.
pub type PlacementResult<T> = Result<T, PlacementError>;

/// The placement lock, with what the failover loop remembers inside it. Every
/// write of a placement decision happens while holding it.
#[derive(Debug, Default)]
pub struct Placement {
    memory: tokio::sync::Mutex<Memory>,
    /// The cron leases heartbeats grant ([`cron::CronLeases`]).
    pub cron: cron::CronLeases,
    /// The mail writer leases heartbeats grant ([`mail::MailLeases`]).
    pub mail: mail::MailLeases,
}

impl Placement {
    /// Wait for the lock.
    pub async fn lock(&self) -> tokio::sync::MutexGuard<'_, Memory> {
        self.memory.lock().await
    }
}

/// Clusters and servers without site loads: enough to place a domain on clusters,
/// and it does not read every site.
pub async fn cluster_snapshot(state: &AppState) -> PlacementResult<Snapshot> {
    snapshot::snapshot_of(&state.store, &state.health, &HashMap::new()).await
}

/// Clusters and servers with loads from memory ([`crate::loads`]).
pub async fn placement_snapshot(state: &AppState) -> PlacementResult<Snapshot> {
    let load = state.site_loads.loads();
    snapshot::snapshot_of(&state.store, &state.health, &load).await
}

/// Clusters, servers and loads counted from `sites`.
async fn snapshot_with(state: &AppState, sites: &[Stored<Site>]) -> PlacementResult<Snapshot> {
    snapshot::snapshot_of(&state.store, &state.health, &snapshot::loads_of(sites)).await
}

/// Domain create: one cluster per requested role. Returns the plan and the
/// snapshot it was made on (its cluster names serve the response).
pub async fn place_domain(
    state: &AppState,
    req: &DomainRequest,
) -> PlacementResult<(Plan, Snapshot)> {
    let snap = cluster_snapshot(state).await?;
    let plan = scheduler::place_domain(&snap, req)?;
    Ok((plan, snap))
}

/// Site create: the server a new site of `domain` is active on (None for `all`
/// sites, or when no server of the web cluster is usable: a later pass places it).
pub async fn place_site(
    state: &AppState,
    domain: &Domain,
    mode: PlacementMode,
) -> PlacementResult<Option<Id>> {
    if mode == PlacementMode::All {
        return Ok(None);
    }
    let Some(&web) = domain.placements.get(&Role::Web) else {
        return Ok(None);
    };
    let mut snap = snapshot::snapshot_of(&state.store, &state.health, &HashMap::new()).await?;
    let _guard = state.placement.lock().await;
    // Loads read, picked and counted under the lock: concurrent creates spread.
    let load = state.site_loads.loads();
    for s in snap.clusters.iter_mut().flat_map(|c| c.servers.iter_mut()) {
        s.load = load.get(&s.id).copied().unwrap_or(0);
    }
    let server = snap.cluster(web).and_then(scheduler::pick_single_server);
    if let Some(s) = server {
        state.site_loads.picked(s);
    }
    Ok(server)
}

/// The `single` sites of the platform as placed things (site, web cluster, server).
fn placed_sites(domains: &HashMap<Id, Domain>, sites: &[Stored<Site>]) -> Vec<Placed> {
    sites
        .iter()
        .filter(|s| s.data.mode == PlacementMode::Single)
        .filter_map(|s| {
            let web = domains.get(&s.data.domain)?.placements.get(&Role::Web)?;
            Some(Placed {
                subject: Subject::Site(s.meta.id),
                cluster: *web,
                current: s.data.active_server,
            })
        })
        .collect()
}

/// The actor of passes no person started.
fn scheduler_actor() -> Actor {
    Actor {
        account: None,
        label: "scheduler".into(),
    }
}

/// A re-placement pass over every cluster, under the lock; returns how many sites
/// moved. Writes nothing when nothing must move.
pub async fn reconcile(state: &AppState, reason: &str) -> PlacementResult<usize> {
    let mut memory = state.placement.lock().await;
    pass(state, &mut memory, reason).await
}

/// One pass with the lock held.
async fn pass(state: &AppState, memory: &mut Memory, reason: &str) -> PlacementResult<usize> {
    let sites = state.store.all::<Site>().await?;
    let (snap, clusters) =
        snapshot::snapshot_and_clusters(&state.store, &state.health, &snapshot::loads_of(&sites))
            .await?;
    let domains: HashMap<Id, Domain> = state
        .store
        .all::<Domain>()
        .await?
        .into_iter()
        .map(|d| (d.meta.id, d.data))
        .collect();
    let mut decisions = scheduler::replace(&snap, &placed_sites(&domains, &sites));
    let crons = cron::placed(&domains, &sites, &decisions);
    decisions.extend(scheduler::cron::place_cron(
        &cron::with_cron_loads(&snap, &sites),
        &crons,
    ));
    decisions.extend(mail::decide(&clusters, &snap, &state.health));
    let holders = mail::holders_after(&clusters, &decisions);
    let stuck: std::collections::BTreeSet<(Subject, Id)> = decisions
        .iter()
        .filter_map(|d| match *d {
            Decision::Stuck { subject, from } => Some((subject, from)),
            _ => None,
        })
        .collect();
    if !apply::anything_to_write(&decisions, &memory.warned) {
        memory.warned = stuck;
        state.placement.mail.set_holders(holders);
        return Ok(0);
    }
    let mut tx = state.store.begin(scheduler_actor()).await?;
    let written = apply::write(
        &mut tx,
        &decisions,
        &ServerNames::of(&snap),
        &memory.warned,
        reason,
        apply::LeaseSecs::of(&state.config.health),
    )
    .await?;
    revoke(state, &written, tx.revision());
    tx.commit().await?;
    state.placement.mail.set_holders(holders);
    changed(state, &written);
    memory.warned = written.stuck;
    Ok(written.moved)
}

/// Bring the start of the writers in `early` forward (their previous holders
/// follow the new epoch), in one transaction, and rebuild.
async fn start_writers(
    state: &AppState,
    snap: &Snapshot,
    early: &[(Id, u64, i64)],
) -> PlacementResult<()> {
    let mut tx = state.store.begin(scheduler_actor()).await?;
    let names = ServerNames::of(snap);
    let mut any = false;
    for &(cluster, epoch, at) in early {
        any |= mail::start_writer(&mut tx, cluster, epoch, at, &names).await?;
    }
    if any {
        tx.commit().await?;
        state.changed();
    }
    Ok(())
}

/// Revoke the leases of the servers `written` moved something away from (or a
/// mail writer onto), before the commit of revision `revision`.
fn revoke(state: &AppState, written: &apply::Written, revision: i64) {
    state.placement.cron.revoke(&written.cron_left, revision);
    state.placement.mail.revoke(&written.mail_touched, revision);
}

/// After a placement commit: rebuild, and when a mail writer moved, have the
/// other mail servers deliver what they queued to the new writer at once.
fn changed(state: &AppState, written: &apply::Written) {
    state.changed();
    if !written.mail_touched.is_empty() {
        state.flush_mail();
    }
}

/// Server delete: delete `server` and move the `single` sites active on it to
/// other usable servers of its cluster (or leave them without one), in one
/// transaction under the lock, with `site.move` events.
pub async fn delete_server(
    state: &AppState,
    actor: Actor,
    server: &Stored<Server>,
) -> PlacementResult<usize> {
    let memory = state.placement.lock().await;
    let sites = state.store.all::<Site>().await?;
    let snap = snapshot_with(state, &sites).await?;
    let mut names = ServerNames::of(&snap);
    names.add(
        server.meta.id,
        &server.meta.name,
        state.health.state(server.meta.id),
    );
    let after = scheduler::without_server(&snap, server.meta.id);
    let on_it: Vec<Placed> = sites
        .iter()
        .filter(|s| s.data.active_server == Some(server.meta.id))
        .filter(|s| s.data.mode == PlacementMode::Single)
        .map(|s| Placed {
            subject: Subject::Site(s.meta.id),
            cluster: server.data.cluster,
            current: Some(server.meta.id),
        })
        .collect();
    let mut decisions = scheduler::replace(&after, &on_it);
    let domains: HashMap<Id, Domain> = state
        .store
        .all::<Domain>()
        .await?
        .into_iter()
        .map(|d| (d.meta.id, d.data))
        .collect();
    let crons: Vec<_> = cron::placed(&domains, &sites, &decisions)
        .into_iter()
        .filter(|c| c.current == Some(server.meta.id))
        .collect();
    decisions.extend(scheduler::cron::place_cron(
        &cron::with_cron_loads(&after, &sites),
        &crons,
    ));
    // A mail writer on it moves in the same transaction.
    let clusters = state.store.all::<model::entity::Cluster>().await?;
    decisions.extend(
        mail::decide(&clusters, &after, &state.health)
            .into_iter()
            .filter(|d| match *d {
                Decision::Move { from, .. } => from == Some(server.meta.id),
                Decision::Unplace { from, .. } | Decision::Stuck { from, .. } => {
                    from == server.meta.id
                }
            }),
    );
    let mut tx = state.store.begin(actor).await?;
    tx.delete(model::entity::Kind::Server, server.meta.id)
        .await?;
    let written = apply::write(
        &mut tx,
        &decisions,
        &names,
        &memory.warned,
        "server deleted",
        apply::LeaseSecs::of(&state.config.health),
    )
    .await?;
    revoke(state, &written, tx.revision());
    tx.commit().await?;
    drop(memory);
    changed(state, &written);
    Ok(written.moved)
}

/// Domain moved to web cluster `web`: inside the caller's transaction (which holds
/// the lock, `held`), move its `single` sites to servers of that cluster, with
/// `site.move` events; `all` sites have no active server.
pub async fn replace_domain_sites(
    held: &tokio::sync::MutexGuard<'_, Memory>,
    state: &AppState,
    tx: &mut Tx,
    snap: &Snapshot,
    domain: Id,
    web: Id,
) -> PlacementResult<usize> {
    let mut placed = Vec::new();
    let children = tx.children::<Site>(domain).await?;
    let mut crons = Vec::new();
    for site in &children {
        if !site.data.cron.is_empty() {
            crons.push(scheduler::cron::CronPlaced {
                site: site.meta.id,
                cluster: web,
                current: site.data.cron_holder.and_then(|h| h.server),
                pinned: (site.data.mode == PlacementMode::Single)
                    .then_some(site.data.active_server),
            });
        }
    }
    for site in children {
        match site.data.mode {
            PlacementMode::Single => placed.push(Placed {
                subject: Subject::Site(site.meta.id),
                cluster: web,
                current: site.data.active_server,
            }),
            PlacementMode::All if site.data.active_server.is_some() => {
                let mut cur = site;
                cur.data.active_server = None;
                tx.update(cur.meta.id, &cur.meta.name, cur.data).await?;
            }
            PlacementMode::All => {}
        }
    }
    let mut decisions = scheduler::replace(snap, &placed);
    // A `single` site's cron follows the site; an `all` site's goes to any
    // usable server of the new cluster.
    for c in &mut crons {
        let moved = decisions.iter().find_map(|d| match *d {
            Decision::Move { subject, to, .. } if subject == Subject::Site(c.site) => {
                Some(Some(to))
            }
            Decision::Unplace { subject, .. } if subject == Subject::Site(c.site) => Some(None),
            _ => None,
        });
        if let Some(m) = moved {
            c.pinned = Some(m);
        }
    }
    decisions.extend(scheduler::cron::place_cron(snap, &crons));
    let written = apply::write(
        tx,
        &decisions,
        &ServerNames::of(snap),
        &held.warned,
        "domain moved",
        apply::LeaseSecs::of(&state.config.health),
    )
    .await?;
    revoke(state, &written, tx.revision());
    Ok(written.moved)
}

/// The snapshot a domain move decides on (loads counted from the store).
pub async fn move_snapshot(state: &AppState) -> PlacementResult<Snapshot> {
    let sites = state.store.all::<Site>().await?;
    snapshot_with(state, &sites).await
}

/// Level-triggered failover, called on every health tick: run a pass when what
/// placement depends on changed since the last converged pass or that pass failed
/// (see [`converge`]). Errors are logged and retried on the next tick. It waits
/// for the lock rather than skipping, so a stream of site creates (which hold it
/// for microseconds) never starves failover.
pub async fn tick(state: &AppState) {
    let mut memory = state.placement.lock().await;
    let load = state.site_loads.loads();
    let (snap, clusters) =
        match snapshot::snapshot_and_clusters(&state.store, &state.health, &load).await {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(error = %e, "placement check cannot read the servers; retrying");
                return;
            }
        };
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let early = mail::early_starts(&clusters, &state.health, now);
    if !early.is_empty() {
        if let Err(e) = start_writers(state, &snap, &early).await {
            tracing::warn!(error = %e, "mail writer start cannot be written; retrying");
        }
    }
    let fp = converge::fingerprint(&snap);
    // A mail writer to hand back (its primary caught up) changes no fingerprint.
    let mail = mail::decide(&clusters, &snap, &state.health);
    if !memory.needs_pass(&fp) && !apply::anything_to_write(&mail, &memory.warned) {
        return;
    }
    match pass(state, &mut memory, "health").await {
        Ok(_) => memory.succeeded(fp),
        Err(e) => {
            tracing::warn!(error = %e, "placement pass failed; retrying on the next tick");
            memory.failed();
        }
    }
}
