//! What the level-triggered failover loop remembers between health ticks, and the
//! pure rule deciding whether a tick must run a pass.
//!
//! A tick compares a [`Fingerprint`] of the placement-relevant state (each server's
//! cluster, health, drained flag, and the load still on servers that must be
//! vacated) with the one of the last pass that succeeded. Equal and no failure
//! since: nothing can have changed what a pass would decide, so the tick reads no
//! sites and writes nothing. A failed pass (store error) leaves the loop
//! unconverged, so the next tick tries again instead of only logging.

use std::collections::BTreeSet;

use model::Id;
use scheduler::{Health, Snapshot, Subject};

/// One server's part of the fingerprint: id, cluster, health, drained, and the
/// number of sites still on it when it must be vacated (down or drained; else 0).
pub type ServerPrint = (Id, Id, Health, bool, u32);

/// The placement-relevant state a pass decided on, sorted by server id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fingerprint(Vec<ServerPrint>);

/// The fingerprint of a snapshot whose loads come from memory
/// ([`crate::loads::SiteLoads`]): a site placed on a server just before it went
/// down shows as load there and makes the loop look again.
pub fn fingerprint(snap: &Snapshot) -> Fingerprint {
    let mut v: Vec<ServerPrint> = snap
        .clusters
        .iter()
        .flat_map(|c| {
            c.servers.iter().map(move |s| {
                let vacate = s.drained || s.health == Health::Down;
                (
                    s.id,
                    c.id,
                    s.health,
                    s.drained,
                    if vacate { s.load } else { 0 },
                )
            })
        })
        .collect();
    v.sort_by_key(|p| p.0);
    Fingerprint(v)
}

/// The loop's memory; lives inside the placement lock.
#[derive(Debug, Default)]
pub struct Memory {
    /// The fingerprint of the last successful pass (None: none yet).
    converged: Option<Fingerprint>,
    /// A pass failed since: run again whatever the fingerprint says.
    failed: bool,
    /// Subjects already warned about as stuck, with the server they stay on: a
    /// warning is written once per (subject, server), not on every pass.
    pub(super) warned: BTreeSet<(Subject, Id)>,
}

impl Memory {
    /// Whether a tick seeing `fp` must run a pass.
    pub fn needs_pass(&self, fp: &Fingerprint) -> bool {
        self.failed || self.converged.as_ref() != Some(fp)
    }

    /// A pass over `fp` succeeded: converged until something changes.
    pub fn succeeded(&mut self, fp: Fingerprint) {
        self.converged = Some(fp);
        self.failed = false;
    }

    /// A pass failed: the next tick runs one again.
    pub fn failed(&mut self) {
        self.failed = true;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use model::{CountryCode, Role};
    use scheduler::{ClusterInfo, ServerInfo};

    fn snap(servers: &[(Id, Health, bool, u32)]) -> Snapshot {
        Snapshot {
            clusters: vec![ClusterInfo {
                id: 1,
                name: "web".into(),
                role: Role::Web,
                is_default: true,
                servers: servers
                    .iter()
                    .map(|&(id, health, drained, load)| ServerInfo {
                        id,
                        name: format!("s{id}"),
                        rank: 0,
                        country: CountryCode::new("DE").unwrap(),
                        health,
                        drained,
                        load,
                    })
                    .collect(),
            }],
        }
    }

    #[test]
    fn a_failed_pass_is_retried_and_a_converged_loop_stays_quiet() {
        let mut m = Memory::default();
        let fp = fingerprint(&snap(&[
            (1, Health::Up, false, 3),
            (2, Health::Down, false, 2),
        ]));
        assert!(m.needs_pass(&fp), "the first tick after start runs a pass");
        m.failed();
        assert!(
            m.needs_pass(&fp),
            "a failed pass is retried on the next tick"
        );
        m.failed();
        assert!(m.needs_pass(&fp), "and again until it succeeds");
        m.succeeded(fp.clone());
        assert!(
            !m.needs_pass(&fp),
            "converged: no pass while nothing changes"
        );
        // New sites on a usable server change nothing placement would decide.
        let busier = fingerprint(&snap(&[
            (1, Health::Up, false, 9),
            (2, Health::Down, false, 2),
        ]));
        assert!(!m.needs_pass(&busier));
        // A server coming back, or a site landing on a down server, does.
        let back = fingerprint(&snap(&[
            (1, Health::Up, false, 3),
            (2, Health::Up, false, 2),
        ]));
        assert!(m.needs_pass(&back));
        let landed = fingerprint(&snap(&[
            (1, Health::Up, false, 3),
            (2, Health::Down, false, 3),
        ]));
        assert!(m.needs_pass(&landed));
        let drained = fingerprint(&snap(&[
            (1, Health::Up, true, 3),
            (2, Health::Down, false, 2),
        ]));
        assert!(m.needs_pass(&drained));
        let gone = fingerprint(&snap(&[(1, Health::Up, false, 3)]));
        assert!(m.needs_pass(&gone));
    }
}
