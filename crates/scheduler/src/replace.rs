//! Re-placement: which placed things must move, and where to. One pure function,
//! [`replace`], answers for every occasion — a server deleted (the caller leaves it
//! out of the snapshot), drained, down, back up, or a domain moved to another web
//! cluster — so failover, drain, server deletion and domain moves decide the same way.
//!
//! The decision type names *what* is placed ([`Subject`]): a `single` site's active
//! web server, and the web server running a site's cron ([`crate::cron`]). Later
//! placement needs — which mail server holds a domain's write lease — add a
//! [`Subject`] variant and a rule producing [`Decision`]s; the controller's one
//! applying path writes them with the same lock, transaction and events.

use model::Id;

use crate::{pick_single_server, Health, Snapshot};

/// What a decision places.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Subject {
    /// The active web server of a `single` site (site id).
    Site(Id),
    /// The one web server that runs a site's cron jobs (site id;
    /// [`crate::cron::place_cron`]).
    Cron(Id),
    /// The one server of a mail cluster that writes its mailboxes (cluster id;
    /// [`crate::mail::place_mail`]).
    MailWriter(Id),
}

/// One placed thing as the caller sees it now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Placed {
    /// What it is.
    pub subject: Subject,
    /// The cluster it must be placed in (a site: its domain's web cluster).
    pub cluster: Id,
    /// The server it is on now, if any.
    pub current: Option<Id>,
}

/// What a pass decided for one subject.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Make `to` its server (`from` was the previous one, if any).
    Move {
        /// What moves.
        subject: Subject,
        /// Previous server.
        from: Option<Id>,
        /// New server.
        to: Id,
    },
    /// Its server is gone (deleted, or outside its cluster) and no server of the
    /// cluster is usable: it is left without one until a server becomes usable.
    Unplace {
        /// What loses its server.
        subject: Subject,
        /// The server it was on.
        from: Id,
    },
    /// It must leave `from` (down or drained) but no server of its cluster is
    /// usable: it stays, and the operator is warned.
    Stuck {
        /// What stays.
        subject: Subject,
        /// The server it stays on.
        from: Id,
    },
}

impl Decision {
    /// What the decision is about.
    pub fn subject(&self) -> Subject {
        match *self {
            Decision::Move { subject, .. }
            | Decision::Unplace { subject, .. }
            | Decision::Stuck { subject, .. } => subject,
        }
    }
}

/// Why a placed thing must move, if it must: its server is not in its cluster
/// (deleted, or the domain moved), is down, or is drained. Suspect servers keep
/// what they have (they may only be slow); nothing placed yet must "move" too.
fn must_move(snap: &Snapshot, p: &Placed) -> Option<bool> {
    let cluster = snap.cluster(p.cluster)?;
    let member = p
        .current
        .and_then(|cur| cluster.servers.iter().find(|s| s.id == cur));
    Some(match member {
        None => true,
        Some(s) => s.drained || s.health == Health::Down,
    })
}

/// Decide the moves for `placed`, least-loaded first ([`pick_single_server`]), the
/// loads updated as the pass goes so a batch of moves spreads. Things in a cluster
/// the snapshot does not know are left alone. Pure.
pub fn replace(snap: &Snapshot, placed: &[Placed]) -> Vec<Decision> {
    let mut snap = snap.clone();
    let mut out = Vec::new();
    for p in placed {
        if must_move(&snap, p) != Some(true) {
            continue;
        }
        let Some(cluster) = snap.cluster(p.cluster) else {
            continue;
        };
        let member = p
            .current
            .is_some_and(|cur| cluster.servers.iter().any(|s| s.id == cur));
        let decision = match (pick_single_server(cluster), p.current, member) {
            (Some(to), from, _) => Decision::Move {
                subject: p.subject,
                from,
                to,
            },
            (None, Some(from), true) => Decision::Stuck {
                subject: p.subject,
                from,
            },
            (None, Some(from), false) => Decision::Unplace {
                subject: p.subject,
                from,
            },
            (None, None, _) => continue,
        };
        shift_load(&mut snap, &decision);
        out.push(decision);
    }
    out
}

/// Count a decision in the snapshot's loads: the server left (possibly of another
/// cluster, when the domain moved) carries one less, the new one one more.
fn shift_load(snap: &mut Snapshot, d: &Decision) {
    let (from, to) = match *d {
        Decision::Move { from, to, .. } => (from, Some(to)),
        Decision::Unplace { from, .. } => (Some(from), None),
        Decision::Stuck { .. } => return,
    };
    for s in snap.clusters.iter_mut().flat_map(|c| c.servers.iter_mut()) {
        if Some(s.id) == from {
            s.load = s.load.saturating_sub(1);
        }
        if Some(s.id) == to {
            s.load += 1;
        }
    }
}

/// The snapshot as it is once server `id` is gone (for deciding a deletion).
pub fn without_server(snap: &Snapshot, id: Id) -> Snapshot {
    let mut snap = snap.clone();
    for c in &mut snap.clusters {
        c.servers.retain(|s| s.id != id);
    }
    snap
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{ClusterInfo, ServerInfo};
    use model::{CountryCode, Role};
    use proptest::prelude::*;

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

    fn site(id: Id, cluster: Id, current: Option<Id>) -> Placed {
        Placed {
            subject: Subject::Site(id),
            cluster,
            current,
        }
    }

    fn mv(id: Id, from: Option<Id>, to: Id) -> Decision {
        Decision::Move {
            subject: Subject::Site(id),
            from,
            to,
        }
    }

    #[test]
    fn moves_off_down_drained_and_gone_only() {
        let s = snap(vec![
            server(10, Health::Down, false, 2),
            server(11, Health::Up, false, 0),
            server(12, Health::Suspect, false, 1),
            server(13, Health::Up, true, 0),
        ]);
        let sites = [
            site(100, 1, Some(10)),
            site(101, 1, Some(10)),
            site(102, 1, Some(12)),
            site(103, 1, Some(13)),
            site(104, 1, None),
            site(105, 2, Some(10)),
            site(106, 1, Some(99)),
        ];
        // Everything lands on 11 (the only usable one); the suspect keeps its site,
        // the site of an unknown cluster is left alone.
        assert_eq!(
            replace(&s, &sites),
            vec![
                mv(100, Some(10), 11),
                mv(101, Some(10), 11),
                mv(103, Some(13), 11),
                mv(104, None, 11),
                mv(106, Some(99), 11),
            ]
        );
    }

    #[test]
    fn spreads_by_load_and_reports_stuck_and_unplaced() {
        let s = snap(vec![
            server(10, Health::Down, false, 0),
            server(11, Health::Up, false, 0),
            server(12, Health::Unknown, false, 0),
        ]);
        let sites = [
            site(100, 1, Some(10)),
            site(101, 1, Some(10)),
            site(102, 1, Some(10)),
        ];
        let tos: Vec<Id> = replace(&s, &sites)
            .into_iter()
            .filter_map(|d| match d {
                Decision::Move { to, .. } => Some(to),
                _ => None,
            })
            .collect();
        assert_eq!(tos, vec![11, 12, 11]);
        let none = snap(vec![
            server(10, Health::Down, false, 0),
            server(11, Health::Suspect, false, 0),
        ]);
        assert_eq!(
            replace(
                &none,
                &[
                    site(100, 1, Some(10)),
                    site(101, 1, None),
                    site(102, 1, Some(7))
                ]
            ),
            vec![
                Decision::Stuck {
                    subject: Subject::Site(100),
                    from: 10
                },
                Decision::Unplace {
                    subject: Subject::Site(102),
                    from: 7
                },
            ]
        );
    }

    #[test]
    fn deleting_a_server_moves_its_sites() {
        let s = snap(vec![
            server(10, Health::Up, false, 2),
            server(11, Health::Up, false, 0),
        ]);
        let gone = without_server(&s, 10);
        assert_eq!(
            replace(&gone, &[site(100, 1, Some(10)), site(101, 1, Some(10))]),
            vec![mv(100, Some(10), 11), mv(101, Some(10), 11)]
        );
        let last = without_server(&gone, 11);
        assert_eq!(
            replace(&last, &[site(100, 1, Some(11))]),
            vec![Decision::Unplace {
                subject: Subject::Site(100),
                from: 11
            }]
        );
    }

    fn health() -> impl Strategy<Value = Health> {
        prop_oneof![
            Just(Health::Unknown),
            Just(Health::Up),
            Just(Health::Suspect),
            Just(Health::Down),
        ]
    }

    /// Up to 3 web clusters (ids 1..=3) of up to 5 servers (ids 10c + i), and up to
    /// 40 sites on a server of their cluster, of another cluster, a gone one, or none.
    fn world() -> impl Strategy<Value = (Snapshot, Vec<Placed>)> {
        let servers = prop::collection::vec((health(), any::<bool>(), 0u32..6), 0..5);
        let clusters = prop::collection::vec(servers, 1..4);
        let sites = prop::collection::vec((1i64..4, prop::option::of(0i64..60)), 0..40);
        (clusters, sites).prop_map(|(clusters, sites)| {
            let snap = Snapshot {
                clusters: clusters
                    .into_iter()
                    .enumerate()
                    .map(|(c, servers)| {
                        let cid = c as Id + 1;
                        ClusterInfo {
                            id: cid,
                            name: format!("c{cid}"),
                            role: Role::Web,
                            is_default: c == 0,
                            servers: servers
                                .into_iter()
                                .enumerate()
                                .map(|(i, (h, d, l))| server(cid * 10 + i as Id, h, d, l))
                                .collect(),
                        }
                    })
                    .collect(),
            };
            let placed = sites
                .into_iter()
                .enumerate()
                .map(|(i, (c, cur))| site(1000 + i as Id, c, cur))
                .collect();
            (snap, placed)
        })
    }

    fn server_of(snap: &Snapshot, id: Id) -> Option<(Id, &ServerInfo)> {
        snap.clusters
            .iter()
            .flat_map(|c| c.servers.iter().map(move |s| (c.id, s)))
            .find(|(_, s)| s.id == id)
    }

    /// Apply decisions: the new `placed` and the snapshot with loads moved.
    fn apply(snap: &Snapshot, placed: &[Placed], ds: &[Decision]) -> (Snapshot, Vec<Placed>) {
        let mut snap = snap.clone();
        let mut placed = placed.to_vec();
        for d in ds {
            let p = placed
                .iter_mut()
                .find(|p| p.subject == d.subject())
                .unwrap();
            let to = match *d {
                Decision::Move { to, .. } => Some(to),
                Decision::Unplace { .. } => None,
                Decision::Stuck { .. } => continue,
            };
            for s in snap.clusters.iter_mut().flat_map(|c| c.servers.iter_mut()) {
                if Some(s.id) == p.current {
                    s.load = s.load.saturating_sub(1);
                }
                if Some(s.id) == to {
                    s.load += 1;
                }
            }
            p.current = to;
        }
        (snap, placed)
    }

    proptest! {
        /// Every move goes to a usable, undrained server of the subject's cluster;
        /// exactly the subjects that must move get a decision, at most one each; a
        /// subject stays (stuck) or loses its server only when its cluster has no
        /// usable server.
        #[test]
        fn decisions_are_sound((snap, placed) in world()) {
            let ds = replace(&snap, &placed);
            let mut seen = std::collections::HashSet::new();
            for d in &ds {
                prop_assert!(seen.insert(d.subject()), "two decisions for {:?}", d.subject());
                let p = placed.iter().find(|p| p.subject == d.subject()).unwrap();
                prop_assert_eq!(must_move(&snap, p), Some(true));
                let usable = pick_single_server(snap.cluster(p.cluster).unwrap()).is_some();
                match *d {
                    Decision::Move { from, to, .. } => {
                        prop_assert_eq!(from, p.current);
                        let (c, s) = server_of(&snap, to).unwrap();
                        prop_assert_eq!(c, p.cluster);
                        prop_assert!(s.health.is_usable() && !s.drained);
                    }
                    Decision::Stuck { from, .. } => {
                        prop_assert!(!usable);
                        prop_assert_eq!(server_of(&snap, from).map(|(c, _)| c), Some(p.cluster));
                    }
                    Decision::Unplace { from, .. } => {
                        prop_assert!(!usable);
                        prop_assert_eq!(Some(from), p.current);
                    }
                }
            }
            for p in &placed {
                let needs = must_move(&snap, p) == Some(true)
                    && (p.current.is_some()
                        || pick_single_server(snap.cluster(p.cluster).unwrap()).is_some());
                prop_assert_eq!(needs, seen.contains(&p.subject), "{:?}", p);
            }
        }

        /// A pass converges: deciding again on its result moves nothing (only the
        /// stuck stay stuck), so a level-triggered loop writes nothing once done.
        #[test]
        fn a_second_pass_moves_nothing((snap, placed) in world()) {
            let ds = replace(&snap, &placed);
            let (snap2, placed2) = apply(&snap, &placed, &ds);
            let again = replace(&snap2, &placed2);
            prop_assert!(again.iter().all(|d| matches!(d, Decision::Stuck { .. })), "{:?}", again);
            let stuck = |v: &[Decision]| v.iter().filter(|d| matches!(d, Decision::Stuck { .. })).count();
            prop_assert_eq!(stuck(&again), stuck(&ds));
        }

        /// Least-loaded with loads updated as it goes: each move goes to a server
        /// with the least load among the usable ones of its cluster, counting the
        /// moves decided before it.
        #[test]
        fn moves_spread_by_load((snap, placed) in world()) {
            let ds = replace(&snap, &placed);
            let mut now = snap.clone();
            let mut placed_now = placed.clone();
            for d in &ds {
                if let Decision::Move { subject, to, .. } = *d {
                    let p = placed_now.iter().find(|p| p.subject == subject).unwrap();
                    let cluster = now.cluster(p.cluster).unwrap();
                    let min = cluster.servers.iter().filter(|s| s.health.is_usable() && !s.drained)
                        .map(|s| s.load).min().unwrap();
                    let load = server_of(&now, to).unwrap().1.load;
                    prop_assert_eq!(load, min, "server {} chosen", to);
                }
                let (n, p) = apply(&now, &placed_now, std::slice::from_ref(d));
                now = n;
                placed_now = p;
            }
        }

        /// Deleting a server: what was on it moves within its cluster or loses its
        /// server; nothing is ever moved onto the deleted one.
        #[test]
        fn deletion_empties_the_server((snap, placed) in world(), pick in 0usize..20) {
            let all: Vec<Id> = snap.clusters.iter().flat_map(|c| c.servers.iter().map(|s| s.id)).collect();
            prop_assume!(!all.is_empty());
            let gone = all[pick % all.len()];
            let after = without_server(&snap, gone);
            let ds = replace(&after, &placed);
            let (_, placed2) = apply(&after, &placed, &ds);
            for p in placed2.iter().filter(|p| after.cluster(p.cluster).is_some()) {
                prop_assert_ne!(p.current, Some(gone));
            }
        }
    }
}
