//! The writer of each mail cluster's mailboxes through the one placement path, and
//! the lease that lets it write (issue 16).
//!
//! **Holder.** [`scheduler::mail::place_mail`] decides which server of each mail
//! cluster writes (`Cluster::mail_writer`), in the same passes, lock and
//! transactions as sites and crons; a move raises the fencing epoch by one
//! ([`scheduler::mail::advance`]; stored, so it never goes down, also across a
//! controller restart) and writes a `mail.writer_move` event (from, to, epoch).
//! A move rebuilds every server of the cluster and the zones and site entries of
//! its domains (`builder::affected`).
//!
//! **Hand-back.** A better-ranked server (the primary, returned) takes the lease
//! back once its mail report says it has applied the current writer's stream
//! (`MailReport::caught_up_epoch` equal to the current epoch). [`tick`] runs a
//! pass when that would move a writer, even when nothing else changed.
//!
//! **Lease.** As for cron ([`super::cron`]): each heartbeat answer grants the
//! holder `[health] mail_lease_s`, counted by the agent from when it *sent* the
//! heartbeat, only once it applied a config built at or after the last move
//! touching it ([`super::cron::CronLeases`], revoked before the moving commit for
//! the server left *and* the one joined). So the old holder gets no lease from the
//! move on, its last one ends within `mail_lease_s`, and the new holder starts
//! writing no earlier than `not_before` (the move's time plus the lease and a clock
//! margin). Moves made by another controller of the same store are not seen here
//! (one controller serves a platform's agents at a time).
//!
//! **Early start.** A hand-back to a returning primary would wait that whole
//! `not_before` although the previous holder is alive and stops writing as soon as
//! it applies the move. Once its mail report says it follows the new epoch (so it
//! has seen it and its write gate refuses), [`tick`] brings `not_before` forward to
//! now ([`early_starts`], [`start_writer`], a `mail.writer_start` event). A
//! previous holder that does not report so (down, cut off) is waited out.

use std::collections::{BTreeSet, HashMap};
use std::sync::Mutex;

use model::entity::{Cluster, Kind, MailWriterState};
use model::{Id, Role};
use proto::agent_v1::RoleReport;
use scheduler::mail::{MailPlaced, Writer};
use scheduler::{Decision, Snapshot};
use store::{StoreError, Stored, Tx};

use super::apply::ServerNames;
use super::cron::CronLeases;
use crate::configs::ConfigHub;
use crate::health::HealthMonitor;

/// The lease side: the holders as of the last pass, and the servers that must
/// first apply a config built after a move touching them.
#[derive(Debug, Default)]
pub struct MailLeases {
    /// Servers holding a mail cluster's writer, as the last pass left them (empty
    /// before the first pass: no lease until then).
    holders: Mutex<BTreeSet<Id>>,
    /// Revocations, as for cron.
    revoked: CronLeases,
}

impl MailLeases {
    /// A move touching `servers` commits as `revision`: no lease until they applied
    /// a config built from it. Called before the commit.
    pub fn revoke(&self, servers: &[Id], revision: i64) {
        self.revoked.revoke(servers, revision);
    }

    /// The holders after a pass (from the store, with the pass's moves).
    pub fn set_holders(&self, holders: BTreeSet<Id>) {
        *self.holders.lock().unwrap_or_else(|p| p.into_inner()) = holders;
    }

    /// Whether `server`, which applied config revision `applied`, gets a lease: it
    /// holds a writer, applied its current config, and that config is built at or
    /// after the last move touching it.
    pub fn grant(&self, server: Id, applied: i64, configs: &ConfigHub) -> bool {
        self.holders
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .contains(&server)
            && self.revoked.grant(server, applied, configs)
    }
}

/// The servers of `snap` whose mail report says they applied the stream of epoch
/// `epoch` (or later) to its end.
fn caught_up(snap: &Snapshot, cluster: Id, epoch: u64, health: &HealthMonitor) -> Vec<Id> {
    let Some(c) = snap.cluster(cluster) else {
        return Vec::new();
    };
    c.servers
        .iter()
        .filter(|s| {
            matches!(
                health.report(s.id).as_deref(),
                Some(RoleReport::Mail(m)) if m.caught_up_epoch.is_some_and(|e| e >= epoch)
            )
        })
        .map(|s| s.id)
        .collect()
}

/// Every mail cluster as a placed writer.
pub fn placed(
    clusters: &[Stored<Cluster>],
    snap: &Snapshot,
    health: &HealthMonitor,
) -> Vec<MailPlaced> {
    clusters
        .iter()
        .filter(|c| c.data.role == Role::Mail)
        .map(|c| {
            let w = c.data.mail_writer.unwrap_or_default();
            MailPlaced {
                cluster: c.meta.id,
                holder: w.holder,
                caught_up: caught_up(snap, c.meta.id, w.epoch, health),
            }
        })
        .collect()
}

/// The writer decisions for `clusters` on `snap`.
pub fn decide(
    clusters: &[Stored<Cluster>],
    snap: &Snapshot,
    health: &HealthMonitor,
) -> Vec<Decision> {
    scheduler::mail::place_mail(snap, &placed(clusters, snap, health))
}

/// The holders once `decisions` are written over `clusters`.
pub fn holders_after(clusters: &[Stored<Cluster>], decisions: &[Decision]) -> BTreeSet<Id> {
    let mut by_cluster: HashMap<Id, Option<Id>> = clusters
        .iter()
        .filter(|c| c.data.role == Role::Mail)
        .map(|c| (c.meta.id, c.data.mail_writer.and_then(|w| w.holder)))
        .collect();
    for d in decisions {
        match *d {
            Decision::Move {
                subject: scheduler::Subject::MailWriter(c),
                to,
                ..
            } => {
                by_cluster.insert(c, Some(to));
            }
            Decision::Unplace {
                subject: scheduler::Subject::MailWriter(c),
                ..
            } => {
                by_cluster.insert(c, None);
            }
            _ => {}
        }
    }
    by_cluster.into_values().flatten().collect()
}

/// Set mail cluster `cluster`'s writer from `from` to `to` if it is still `from`,
/// raising the epoch, with a `mail.writer_move` event; whether it moved.
pub async fn move_writer(
    tx: &mut Tx,
    cluster: Id,
    from: Option<Id>,
    to: Option<Id>,
    servers: &ServerNames,
    reason: &str,
    lease_s: u64,
) -> Result<bool, StoreError> {
    let Some(mut cur) = tx.get::<Cluster>(cluster).await? else {
        return Ok(false);
    };
    let was = cur.data.mail_writer.unwrap_or_default();
    if was.holder != from || cur.data.role != Role::Mail {
        return Ok(false); // changed meanwhile; the next pass decides again
    }
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let w = scheduler::mail::advance(
        Writer {
            holder: was.holder,
            epoch: was.epoch,
            not_before: was.not_before,
            previous: was.previous,
        },
        to,
        now,
        lease_s,
    );
    cur.data.mail_writer = Some(MailWriterState {
        holder: w.holder,
        epoch: w.epoch,
        not_before: w.not_before,
        previous: w.previous,
    });
    let updated = tx.update(cur.meta.id, &cur.meta.name, cur.data).await?;
    let (from, to) = (servers.name(from), servers.name(to));
    tracing::info!(cluster = %updated.meta.name, ?from, ?to, epoch = w.epoch, reason, "mail writer moved");
    tx.event(
        "mail.writer_move",
        Kind::Cluster,
        Some((updated.meta.id, &updated.meta.name)),
        None,
        serde_json::json!({
            "from": from,
            "to": to,
            "epoch": w.epoch,
            "not_before": w.not_before,
            "reason": reason,
        }),
    )
    .await?;
    Ok(true)
}

/// The writers that may start now rather than at their `not_before`, as
/// (cluster, epoch, start): their previous holder's mail report shows it follows
/// the current epoch ([`scheduler::mail::start_early`]).
pub fn early_starts(
    clusters: &[Stored<Cluster>],
    health: &HealthMonitor,
    now: i64,
) -> Vec<(Id, u64, i64)> {
    clusters
        .iter()
        .filter(|c| c.data.role == Role::Mail)
        .filter_map(|c| {
            let w = c.data.mail_writer?;
            let prev = w.previous?;
            let reported = match health.report(prev).as_deref() {
                Some(RoleReport::Mail(m)) => vec![(prev, m.caught_up_epoch)],
                _ => Vec::new(),
            };
            let writer = Writer {
                holder: w.holder,
                epoch: w.epoch,
                not_before: w.not_before,
                previous: w.previous,
            };
            scheduler::mail::start_early(writer, &reported, now).map(|t| (c.meta.id, w.epoch, t))
        })
        .collect()
}

/// Bring the start of mail cluster `cluster`'s writer forward to `at` if it is
/// still at `epoch` and later than that, with a `mail.writer_start` event;
/// whether it changed.
pub async fn start_writer(
    tx: &mut Tx,
    cluster: Id,
    epoch: u64,
    at: i64,
    servers: &ServerNames,
) -> Result<bool, StoreError> {
    let Some(mut cur) = tx.get::<Cluster>(cluster).await? else {
        return Ok(false);
    };
    let Some(mut w) = cur.data.mail_writer else {
        return Ok(false);
    };
    if w.epoch != epoch || w.not_before <= at {
        return Ok(false); // moved or started meanwhile
    }
    let waited_until = w.not_before;
    w.not_before = at;
    cur.data.mail_writer = Some(w);
    let updated = tx.update(cur.meta.id, &cur.meta.name, cur.data).await?;
    let (holder, previous) = (servers.name(w.holder), servers.name(w.previous));
    tracing::info!(cluster = %updated.meta.name, ?holder, ?previous, epoch, "mail writer starts early: the previous holder follows it");
    tx.event(
        "mail.writer_start",
        Kind::Cluster,
        Some((updated.meta.id, &updated.meta.name)),
        None,
        serde_json::json!({
            "holder": holder,
            "previous": previous,
            "epoch": epoch,
            "not_before": at,
            "instead_of": waited_until,
        }),
    )
    .await?;
    Ok(true)
}

/// A `placement.warning` event on a mail cluster whose writer must leave a server
/// but has nowhere to go.
pub async fn warn_stuck(
    tx: &mut Tx,
    cluster: Id,
    from: Option<String>,
    health: &str,
    reason: &str,
) -> Result<(), StoreError> {
    let Some(cur) = tx.get::<Cluster>(cluster).await? else {
        return Ok(());
    };
    let warning = format!(
        "the mail writer of cluster `{}` must leave server `{}` ({health}) but no other server of the cluster is usable; it stays",
        cur.meta.name,
        from.as_deref().unwrap_or_default()
    );
    tracing::warn!("{warning}");
    tx.event(
        "placement.warning",
        Kind::Cluster,
        Some((cur.meta.id, &cur.meta.name)),
        None,
        serde_json::json!({"warning": warning, "server": from, "reason": reason}),
    )
    .await
}
