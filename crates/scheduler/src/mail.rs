//! Which server of a mail cluster writes its mailboxes (issue 16): exactly one at a
//! time, so UIDs are assigned in one place and the other servers replicate.
//!
//! The rule, per mail cluster, over the snapshot:
//! - no holder yet (a new cluster): the best usable server — lowest rank (the
//!   primary), then lowest id — without waiting for anything (nobody has mail yet);
//! - the holder is gone from the cluster, down or drained: the best usable other
//!   server takes over (a suspect holder keeps it, as a `single` site does: it may
//!   only be slow, and its lease ends on its own if it is cut off); with none usable
//!   it stays ([`Decision::Stuck`]) or, gone, the cluster has no writer
//!   ([`Decision::Unplace`]);
//! - the holder is fine but a better-ranked server (the primary, back) is usable
//!   *and caught up* with the holder's stream ([`MailPlaced::caught_up`]): the lease
//!   goes back to it ("when the primary returns it catches up and takes the lease
//!   back"). Without that signal it never moves back: a stale primary never writes.
//!
//! Level-triggered like every re-placement: deciding again on the result of the
//! moves, with the same snapshot, moves nothing. The epoch and the start time of a
//! new holder are [`advance`]'s (pure too), applied by the controller with the move;
//! [`start_early`] ends the wait once the previous holder shows it stopped writing.

use model::Id;

use crate::replace::{Decision, Subject};
use crate::{Health, ServerInfo, Snapshot};

/// A mail cluster's writer as the caller sees it now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MailPlaced {
    /// The mail cluster.
    pub cluster: Id,
    /// Its writer now, if any.
    pub holder: Option<Id>,
    /// Servers of the cluster that have applied the current holder's replication
    /// stream up to its end, at the current epoch (from their mail reports): a
    /// better-ranked one of them takes the lease back.
    pub caught_up: Vec<Id>,
}

/// Whether a server may take (or be handed) the lease.
fn usable(s: &ServerInfo) -> bool {
    s.health.is_usable() && !s.drained
}

/// Whether the holder must give the lease up.
fn must_leave(s: &ServerInfo) -> bool {
    s.drained || s.health == Health::Down
}

/// The usable server a lease goes to: lowest rank (the primary), then lowest id.
fn best<'a>(servers: impl Iterator<Item = &'a ServerInfo>) -> Option<&'a ServerInfo> {
    servers.filter(|s| usable(s)).min_by_key(|s| (s.rank, s.id))
}

/// Decide the writer of every cluster in `placed` (clusters the snapshot does not
/// know are left alone). Pure; at most one decision per cluster, each about
/// [`Subject::MailWriter`].
pub fn place_mail(snap: &Snapshot, placed: &[MailPlaced]) -> Vec<Decision> {
    let mut out = Vec::new();
    for p in placed {
        let Some(cluster) = snap.cluster(p.cluster) else {
            continue;
        };
        let subject = Subject::MailWriter(p.cluster);
        let member = p
            .holder
            .and_then(|h| cluster.servers.iter().find(|s| s.id == h));
        let decision = match (p.holder, member) {
            (None, _) => best(cluster.servers.iter()).map(|to| Decision::Move {
                subject,
                from: None,
                to: to.id,
            }),
            (Some(from), None) => Some(match best(cluster.servers.iter()) {
                Some(to) => Decision::Move {
                    subject,
                    from: Some(from),
                    to: to.id,
                },
                None => Decision::Unplace { subject, from },
            }),
            (Some(from), Some(h)) if must_leave(h) => Some(
                match best(cluster.servers.iter().filter(|s| s.id != from)) {
                    Some(to) => Decision::Move {
                        subject,
                        from: Some(from),
                        to: to.id,
                    },
                    None => Decision::Stuck { subject, from },
                },
            ),
            (Some(from), Some(h)) => best(
                cluster
                    .servers
                    .iter()
                    .filter(|s| (s.rank, s.id) < (h.rank, h.id))
                    .filter(|s| s.health == Health::Up && p.caught_up.contains(&s.id)),
            )
            .map(|to| Decision::Move {
                subject,
                from: Some(from),
                to: to.id,
            }),
        };
        out.extend(decision);
    }
    out
}

/// A writer as it is kept: holder, fencing epoch, start time.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Writer {
    /// The holder.
    pub holder: Option<Id>,
    /// The fencing epoch.
    pub epoch: u64,
    /// Unix seconds before which the holder must not write.
    pub not_before: i64,
    /// The holder before the last move (whose lease `not_before` waits out).
    pub previous: Option<Id>,
}

/// Seconds added to a handover for the clocks of the controller and the new
/// holder differing (agents warn above 30 s of skew).
pub const CLOCK_MARGIN_S: i64 = 5;

/// The writer after the holder changes to `to` at unix second `now`, with leases
/// of `lease_s`: the epoch one higher (never lower, never the same for two
/// holders), and, when a server held it, no writes before its last lease can have
/// ended (plus [`CLOCK_MARGIN_S`]). Unchanged when `to` already holds it.
pub fn advance(w: Writer, to: Option<Id>, now: i64, lease_s: u64) -> Writer {
    if w.holder == to {
        return w;
    }
    Writer {
        holder: to,
        epoch: w.epoch.saturating_add(1),
        not_before: match w.holder {
            Some(_) => now
                .saturating_add(i64::try_from(lease_s).unwrap_or(i64::MAX / 4))
                .saturating_add(CLOCK_MARGIN_S),
            None => w.not_before,
        },
        previous: w.holder,
    }
}

/// The writer may start at `now` instead of waiting out `not_before` (the hand-back
/// gap): its previous holder reports (`reported`: server, epoch its mail report
/// says it applied the writer's stream of) that it follows the current epoch or a
/// later one. A server that reports that has seen the new epoch, so its write gate
/// refuses every write (it is not the holder, or it is fenced) whatever lease it
/// still has. A previous holder that does not report it (down, cut off, deleted)
/// is waited out in full. `None`: nothing to change. Pure.
pub fn start_early(w: Writer, reported: &[(Id, Option<u64>)], now: i64) -> Option<i64> {
    let prev = w.previous?;
    if w.holder.is_none() || w.holder == Some(prev) || w.not_before <= now {
        return None;
    }
    reported
        .iter()
        .any(|&(id, e)| id == prev && e.is_some_and(|e| e >= w.epoch))
        .then_some(now)
}

#[cfg(test)]
#[path = "mail_tests.rs"]
mod tests;
