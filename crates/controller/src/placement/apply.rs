//! Writing decisions: each inside the caller's transaction, re-checked against
//! what the transaction reads (a subject changed since the snapshot is skipped; the
//! next pass decides again), with one `site.move` (a site), `site.cron_move` (its
//! cron runner) or `mail.writer_move` (a mail cluster's writer) event per move and
//! a `placement.warning` event the first time a subject is stuck.

use std::collections::{BTreeSet, HashMap};

use model::entity::{Kind, Site};
use model::{Id, PlacementMode};
use scheduler::{Decision, Health, Snapshot, Subject};
use store::{StoreError, Stored, Tx};

use crate::health::health_str;

/// Server names and health by id, for events.
pub struct ServerNames(HashMap<Id, (String, Health)>);

impl ServerNames {
    /// From the snapshot the decisions were made on (plus servers deleted since,
    /// which the caller adds).
    pub fn of(snap: &Snapshot) -> Self {
        Self(
            snap.clusters
                .iter()
                .flat_map(|c| c.servers.iter())
                .map(|s| (s.id, (s.name.clone(), s.health)))
                .collect(),
        )
    }

    /// Add a server (one being deleted).
    pub fn add(&mut self, id: Id, name: &str, health: Health) {
        self.0.insert(id, (name.to_owned(), health));
    }

    pub(super) fn name(&self, id: Option<Id>) -> Option<String> {
        id.map(|i| {
            self.0
                .get(&i)
                .map(|(n, _)| n.clone())
                .unwrap_or_else(|| format!("#{i}"))
        })
    }

    fn health(&self, id: Id) -> Health {
        self.0.get(&id).map(|(_, h)| *h).unwrap_or(Health::Unknown)
    }
}

/// What writing a batch of decisions did.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Written {
    /// Subjects moved (or unplaced).
    pub moved: usize,
    /// Subjects stuck, with the server they stay on (warned or already warned).
    pub stuck: BTreeSet<(Subject, Id)>,
    /// Servers some site's cron left: the caller revokes their cron lease until
    /// they applied a config built from this transaction
    /// ([`super::cron::CronLeases::revoke`]), before committing.
    pub cron_left: Vec<Id>,
    /// Servers a mail writer left or joined: the caller revokes their mail lease
    /// likewise ([`super::mail::MailLeases::revoke`]).
    pub mail_touched: Vec<Id>,
}

/// The leases agents get, in seconds: a cron or mail writer leaving a server may
/// start on the next one that much later.
#[derive(Debug, Clone, Copy)]
pub struct LeaseSecs {
    /// `[health] cron_lease_s`.
    pub cron: u64,
    /// `[health] mail_lease_s`.
    pub mail: u64,
}

impl LeaseSecs {
    /// From the controller's `[health]` section.
    pub fn of(h: &crate::config::HealthConfig) -> Self {
        Self {
            cron: h.cron_lease_s,
            mail: h.mail_lease_s,
        }
    }
}

/// Whether writing `decisions` would change anything: a move, or a stuck subject
/// not warned about yet. A pass with nothing to write opens no transaction.
pub fn anything_to_write(decisions: &[Decision], warned: &BTreeSet<(Subject, Id)>) -> bool {
    decisions.iter().any(|d| match *d {
        Decision::Stuck { subject, from } => !warned.contains(&(subject, from)),
        Decision::Move { .. } | Decision::Unplace { .. } => true,
    })
}

/// Write `decisions` in `tx`. Stuck subjects in `warned` get no new warning.
/// `leases` are the leases agents get: a cron or mail writer leaving a server may
/// start on the next one that much later ([`super::cron::not_before`],
/// [`scheduler::mail::advance`]).
pub async fn write(
    tx: &mut Tx,
    decisions: &[Decision],
    servers: &ServerNames,
    warned: &BTreeSet<(Subject, Id)>,
    reason: &str,
    leases: LeaseSecs,
) -> Result<Written, StoreError> {
    let cron_lease_s = leases.cron;
    let mut out = Written::default();
    for d in decisions {
        match *d {
            Decision::Move {
                subject: Subject::MailWriter(cluster),
                from,
                to,
            } => {
                let moved = super::mail::move_writer(
                    tx,
                    cluster,
                    from,
                    Some(to),
                    servers,
                    reason,
                    leases.mail,
                )
                .await?;
                if moved {
                    out.moved += 1;
                    out.mail_touched.extend(from);
                    out.mail_touched.push(to);
                }
            }
            Decision::Unplace {
                subject: Subject::MailWriter(cluster),
                from,
            } => {
                let moved = super::mail::move_writer(
                    tx,
                    cluster,
                    Some(from),
                    None,
                    servers,
                    reason,
                    leases.mail,
                )
                .await?;
                if moved {
                    out.moved += 1;
                    out.mail_touched.push(from);
                }
            }
            Decision::Move {
                subject: Subject::Cron(site),
                from,
                to,
            } => {
                let moved =
                    super::cron::move_cron(tx, site, from, Some(to), servers, reason, cron_lease_s)
                        .await?;
                if moved {
                    out.moved += 1;
                    out.cron_left.extend(from);
                }
            }
            Decision::Unplace {
                subject: Subject::Cron(site),
                from,
            } => {
                let moved = super::cron::move_cron(
                    tx,
                    site,
                    Some(from),
                    None,
                    servers,
                    reason,
                    cron_lease_s,
                )
                .await?;
                if moved {
                    out.moved += 1;
                    out.cron_left.push(from);
                }
            }
            Decision::Move {
                subject: Subject::Site(site),
                from,
                to,
            } => {
                if move_site(tx, site, from, Some(to), servers, reason).await? {
                    out.moved += 1;
                }
            }
            Decision::Unplace {
                subject: Subject::Site(site),
                from,
            } => {
                if move_site(tx, site, Some(from), None, servers, reason).await? {
                    out.moved += 1;
                    let warning = format!(
                        "lost server `{}` (gone, or outside its cluster) and no other server of its cluster is usable; it is placed when one is",
                        servers.name(Some(from)).unwrap_or_default()
                    );
                    warn(tx, site, &warning, servers.name(Some(from)), reason).await?;
                }
            }
            Decision::Stuck { subject, from } => {
                out.stuck.insert((subject, from));
                if warned.contains(&(subject, from)) {
                    continue;
                }
                let (site, what) = match subject {
                    Subject::Site(s) => (s, ""),
                    Subject::Cron(s) => (s, "(its cron) "),
                    Subject::MailWriter(c) => {
                        let health = health_str(servers.health(from));
                        super::mail::warn_stuck(tx, c, servers.name(Some(from)), health, reason)
                            .await?;
                        continue;
                    }
                };
                let from_name = servers.name(Some(from)).unwrap_or_default();
                let warning = format!(
                    "{what}must leave server `{from_name}` ({}) but no other server of its cluster is usable; it stays",
                    health_str(servers.health(from))
                );
                warn(tx, site, &warning, Some(from_name), reason).await?;
            }
        }
    }
    Ok(out)
}

/// Set a site's active server from `from` to `to`, if it is still a `single` site on
/// `from`; with a `site.move` event. Whether it moved.
async fn move_site(
    tx: &mut Tx,
    site: Id,
    from: Option<Id>,
    to: Option<Id>,
    servers: &ServerNames,
    reason: &str,
) -> Result<bool, StoreError> {
    let Some(mut cur) = tx.get::<Site>(site).await? else {
        return Ok(false);
    };
    if cur.data.active_server != from || cur.data.mode != PlacementMode::Single {
        return Ok(false); // changed meanwhile; the next pass decides again
    }
    cur.data.active_server = to;
    write_moved(
        tx,
        cur,
        [from, to],
        servers,
        reason,
        ("site.move", "single site"),
    )
    .await?;
    Ok(true)
}

/// Write `cur`, a site just re-placed from `from` to `to`, with its event
/// (`action`, e.g. `site.move`) naming both servers and the reason; `what` names
/// the move in the log.
pub(super) async fn write_moved(
    tx: &mut Tx,
    cur: Stored<Site>,
    [from, to]: [Option<Id>; 2],
    servers: &ServerNames,
    reason: &str,
    (action, what): (&str, &str),
) -> Result<(), StoreError> {
    let owner = cur.meta.owner;
    let updated = tx.update(cur.meta.id, &cur.meta.name, cur.data).await?;
    let (from, to) = (servers.name(from), servers.name(to));
    tracing::info!(site = %updated.meta.name, ?from, ?to, reason, "{what} moved");
    tx.event(
        action,
        Kind::Site,
        Some((updated.meta.id, &updated.meta.name)),
        owner,
        serde_json::json!({ "from": from, "to": to, "reason": reason }),
    )
    .await?;
    Ok(())
}

/// A `placement.warning` event on a site.
async fn warn(
    tx: &mut Tx,
    site: Id,
    warning: &str,
    server: Option<String>,
    reason: &str,
) -> Result<(), StoreError> {
    let Some(cur) = tx.get::<Site>(site).await? else {
        return Ok(());
    };
    let warning = format!("site `{}` {warning}", cur.meta.name);
    tracing::warn!("{warning}");
    tx.event(
        "placement.warning",
        Kind::Site,
        Some((cur.meta.id, &cur.meta.name)),
        cur.meta.owner,
        serde_json::json!({"warning": warning, "server": server, "reason": reason}),
    )
    .await
}
