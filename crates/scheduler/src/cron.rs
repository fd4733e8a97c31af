//! Which web server runs a site's cron jobs: exactly one per site, so a tick fires
//! once in the cluster, not once per server.
//!
//! A `single` site's cron runs where the site is active (only that server serves
//! it); an `all` site's cron goes to any usable, undrained server of its web
//! cluster, the one with the fewest cron holdings ([`crate::replace`]'s rule, with
//! the snapshot's loads counting cron holders), and moves when that server is
//! down, drained, deleted or outside the cluster. Level-triggered like every
//! re-placement: deciding again on the result moves nothing.

use model::Id;

use crate::replace::{replace, Decision, Placed, Subject};
use crate::Snapshot;

/// A site with cron jobs as the caller sees it now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CronPlaced {
    /// The site.
    pub site: Id,
    /// Its domain's web cluster.
    pub cluster: Id,
    /// The server running its cron now, if any.
    pub current: Option<Id>,
    /// For a `single` site, the server it is active on (after this pass's site
    /// decisions): its cron runs there; `None` for `all` sites.
    pub pinned: Option<Option<Id>>,
}

/// Decide the cron holders of `placed`. `snap`'s loads are cron holdings per
/// server (the caller counts them), so `all` sites' cron spreads. Pure.
pub fn place_cron(snap: &Snapshot, placed: &[CronPlaced]) -> Vec<Decision> {
    let mut out = Vec::new();
    let mut free = Vec::new();
    for p in placed {
        let subject = Subject::Cron(p.site);
        match p.pinned {
            Some(active) if active == p.current => {}
            Some(Some(to)) => out.push(Decision::Move {
                subject,
                from: p.current,
                to,
            }),
            Some(None) => {
                if let Some(from) = p.current {
                    out.push(Decision::Unplace { subject, from });
                }
            }
            None => free.push(Placed {
                subject,
                cluster: p.cluster,
                current: p.current,
            }),
        }
    }
    out.extend(replace(snap, &free));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{ClusterInfo, Health, ServerInfo};
    use model::{CountryCode, Role};
    use proptest::prelude::*;

    fn snap(servers: &[(Id, Health, bool)]) -> Snapshot {
        Snapshot {
            clusters: vec![ClusterInfo {
                id: 1,
                name: "web".into(),
                role: Role::Web,
                is_default: true,
                servers: servers
                    .iter()
                    .map(|&(id, health, drained)| ServerInfo {
                        id,
                        name: format!("s{id}"),
                        rank: 0,
                        country: CountryCode::new("DE").unwrap(),
                        health,
                        drained,
                        load: 0,
                    })
                    .collect(),
            }],
        }
    }

    fn all(site: Id, current: Option<Id>) -> CronPlaced {
        CronPlaced {
            site,
            cluster: 1,
            current,
            pinned: None,
        }
    }

    #[test]
    fn all_sites_move_off_dead_servers_single_sites_follow_the_site() {
        let s = snap(&[(10, Health::Down, false), (11, Health::Up, false)]);
        let single = |site, current, active| CronPlaced {
            site,
            cluster: 1,
            current,
            pinned: Some(active),
        };
        assert_eq!(
            place_cron(
                &s,
                &[
                    all(1, Some(10)),
                    all(2, Some(11)),
                    all(3, None),
                    single(4, Some(10), Some(11)),
                    single(5, Some(11), Some(11)),
                    single(6, Some(11), None),
                ]
            ),
            vec![
                Decision::Move {
                    subject: Subject::Cron(4),
                    from: Some(10),
                    to: 11
                },
                Decision::Unplace {
                    subject: Subject::Cron(6),
                    from: 11
                },
                Decision::Move {
                    subject: Subject::Cron(1),
                    from: Some(10),
                    to: 11
                },
                Decision::Move {
                    subject: Subject::Cron(3),
                    from: None,
                    to: 11
                },
            ]
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

    proptest! {
        /// After one pass and its moves applied, every `all` site with a usable
        /// server in its cluster has its cron on a usable, undrained server of the
        /// cluster, each site on exactly one; a second pass moves nothing.
        #[test]
        fn one_holder_on_a_usable_server_and_converged(
            servers in prop::collection::vec((health(), any::<bool>()), 1..5),
            sites in prop::collection::vec(prop::option::of(0i64..6), 0..20),
        ) {
            let servers: Vec<(Id, Health, bool)> = servers.into_iter().enumerate()
                .map(|(i, (h, d))| (i as Id, h, d)).collect();
            let s = snap(&servers);
            let mut placed: Vec<CronPlaced> = sites.iter().enumerate()
                .map(|(i, cur)| all(100 + i as Id, *cur)).collect();
            let ds = place_cron(&s, &placed);
            for d in &ds {
                let Subject::Cron(site) = d.subject() else { panic!() };
                let p = placed.iter_mut().find(|p| p.site == site).unwrap();
                match *d {
                    Decision::Move { to, .. } => p.current = Some(to),
                    Decision::Unplace { .. } => p.current = None,
                    Decision::Stuck { .. } => {}
                }
            }
            let usable = |id: Id| servers.iter().any(|&(s, h, d)| s == id && h.is_usable() && !d);
            let any_usable = servers.iter().any(|&(_, h, d)| h.is_usable() && !d);
            for p in &placed {
                if any_usable {
                    prop_assert!(p.current.is_some_and(|c| usable(c) || servers.iter().any(|&(s, h, d)| s == c && h == Health::Suspect && !d)), "{:?}", p);
                }
            }
            let again = place_cron(&s, &placed);
            prop_assert!(again.iter().all(|d| matches!(d, Decision::Stuck { .. })), "{:?}", again);
        }
    }
}
