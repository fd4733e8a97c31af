//! Whether silent servers are dead or the controller is blind: the guard that keeps
//! a busy, stalled or partitioned controller from failing over healthy servers.
//!
//! Two rules, both pure (the controller's health monitor measures and applies them):
//!
//! - **Blind time is not silence** ([`newly_blind`]): time a task of the
//!   controller was due but could not run (the process was stopped, its runtime
//!   starved) is time it could neither receive nor judge heartbeats; it is not
//!   counted against any server.
//! - **Mass silence is not failure** ([`judge`]): when a large share of the watched
//!   servers — of the whole platform or of one cluster — would be silent at once,
//!   the likelier cause is on the controller's side or a network partition, not that
//!   many servers died together. Servers in such a scope keep their state: no new
//!   `suspect` (which withdraws them from DNS) and no new `down` (which fails their
//!   sites over) until the share falls again. Kubernetes' node lifecycle controller
//!   does the same with its `unhealthyZoneThreshold` (0.55) and more than two
//!   not-ready nodes: a partially disrupted zone of a small cluster evicts nothing,
//!   and no zone evicts when all are disrupted.
//!
//! One or two dead servers are never held: they are failed over as fast as without
//! the guard.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use model::Id;

use crate::Health;

/// Share of a scope's watched servers (in percent) that, silent together, means the
/// controller cannot tell dead from unreachable.
pub const MASS_PERCENT: usize = 55;

/// Fewest silent servers that can be a mass event: one or two silent servers are
/// always judged one by one.
pub const MASS_MIN: usize = 3;

/// One watched server (an agent joined it) as the judgement sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Watched {
    /// Its cluster.
    pub cluster: Id,
    /// Its state if this tick's transitions were all applied: servers that just
    /// outlived the silence window count as `suspect`.
    pub health: Health,
}

/// Where the controller must not trust silence this tick.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Hold {
    /// A mass event across the whole platform: hold every server.
    pub everywhere: bool,
    /// Clusters in a mass event of their own.
    pub clusters: BTreeSet<Id>,
}

impl Hold {
    /// Whether servers of `cluster` keep their state this tick.
    pub fn holds(&self, cluster: Id) -> bool {
        self.everywhere || self.clusters.contains(&cluster)
    }

    /// Whether anything is held.
    pub fn is_empty(&self) -> bool {
        !self.everywhere && self.clusters.is_empty()
    }
}

/// Whether `silent` of `total` servers is a mass event.
fn mass(silent: usize, total: usize) -> bool {
    silent >= MASS_MIN && silent.saturating_mul(100) >= total.saturating_mul(MASS_PERCENT)
}

/// Whether a state counts as silent (`suspect` or `down`).
fn silent(h: Health) -> bool {
    matches!(h, Health::Suspect | Health::Down)
}

/// The scopes (the platform, each cluster) whose servers are silent en masse.
pub fn judge(servers: &[Watched]) -> Hold {
    let mut per_cluster: BTreeMap<Id, (usize, usize)> = BTreeMap::new();
    let mut all = (0, 0);
    for s in servers {
        let c = per_cluster.entry(s.cluster).or_default();
        c.1 += 1;
        all.1 += 1;
        if silent(s.health) {
            c.0 += 1;
            all.0 += 1;
        }
    }
    Hold {
        everywhere: mass(all.0, all.1),
        clusters: per_cluster
            .into_iter()
            .filter(|(_, (s, t))| mass(*s, *t))
            .map(|(id, _)| id)
            .collect(),
    }
}

/// The part of a blind span not excused yet: the controller expected to run at
/// `due` (plus `jitter`, the timer slack that is normal even on an idle machine and
/// must not slow a real failover) but ran only at `ran`; the time up to
/// `excused_until` was excused already (two observers may report the same stall).
pub fn newly_blind(
    due: Instant,
    ran: Instant,
    jitter: Duration,
    excused_until: Option<Instant>,
) -> Duration {
    let from = due.checked_add(jitter).unwrap_or(due);
    let from = excused_until.map_or(from, |u| u.max(from));
    ran.saturating_duration_since(from)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn w(cluster: Id, health: Health) -> Watched {
        Watched { cluster, health }
    }

    #[test]
    fn one_or_two_dead_servers_are_never_held() {
        // A two-server cluster losing one, or both: judged one by one.
        assert!(judge(&[w(1, Health::Up), w(1, Health::Suspect)]).is_empty());
        assert!(judge(&[w(1, Health::Down), w(1, Health::Suspect)]).is_empty());
        // Three servers, one silent: fails over.
        let three = [w(1, Health::Up), w(1, Health::Up), w(1, Health::Suspect)];
        assert!(judge(&three).is_empty());
    }

    #[test]
    fn a_cluster_mostly_silent_at_once_is_held_alone() {
        let mut servers = vec![w(1, Health::Suspect), w(1, Health::Suspect)];
        servers.push(w(1, Health::Down));
        servers.extend((0..10).map(|_| w(2, Health::Up)));
        let hold = judge(&servers);
        assert!(!hold.everywhere);
        assert!(hold.holds(1));
        assert!(!hold.holds(2));
    }

    #[test]
    fn most_of_the_platform_silent_is_held_everywhere() {
        // 50 servers of 10 clusters, 30 silent (a busy controller): nothing moves.
        let servers: Vec<_> = (0..50)
            .map(|i| {
                let h = if i % 5 < 3 {
                    Health::Suspect
                } else {
                    Health::Up
                };
                w(i / 5, h)
            })
            .collect();
        let hold = judge(&servers);
        assert!(hold.everywhere);
        assert!((0..10).all(|c| hold.holds(c)));
    }

    #[test]
    fn timer_jitter_is_not_excused_a_stall_is_once() {
        let t0 = Instant::now();
        let ms = Duration::from_millis;
        let jitter = ms(20);
        assert_eq!(newly_blind(t0, t0 + ms(15), jitter, None), Duration::ZERO);
        assert_eq!(newly_blind(t0, t0 + ms(5000), jitter, None), ms(4980));
        // The second observer of the same stall adds nothing; a later one only the rest.
        let until = Some(t0 + ms(5000));
        assert_eq!(
            newly_blind(t0, t0 + ms(5000), jitter, until),
            Duration::ZERO
        );
        assert_eq!(newly_blind(t0, t0 + ms(5300), jitter, until), ms(300));
    }

    fn arb_health() -> impl Strategy<Value = Health> {
        prop_oneof![
            Just(Health::Unknown),
            Just(Health::Up),
            Just(Health::Suspect),
            Just(Health::Down)
        ]
    }

    fn arb_servers() -> impl Strategy<Value = Vec<Watched>> {
        proptest::collection::vec((0..4i64, arb_health()).prop_map(|(c, h)| w(c, h)), 0..40)
    }

    proptest! {
        /// A scope is held exactly when at least three of its servers, and at least
        /// 55% of them, are silent; fewer than three silent servers anywhere never
        /// hold anything (a lone dead server always fails over).
        #[test]
        fn holds_exactly_the_mass_silent_scopes(servers in arb_servers()) {
            let hold = judge(&servers);
            let count = |f: &dyn Fn(&Watched) -> bool| servers.iter().filter(|s| f(s)).count();
            let all_silent = count(&|s| silent(s.health));
            prop_assert_eq!(
                hold.everywhere,
                all_silent >= 3 && all_silent * 100 >= servers.len() * 55
            );
            for c in 0..4i64 {
                let total = count(&|s| s.cluster == c);
                let sil = count(&|s| s.cluster == c && silent(s.health));
                prop_assert_eq!(hold.clusters.contains(&c), sil >= 3 && sil * 100 >= total * 55);
            }
            if all_silent < MASS_MIN {
                prop_assert!(hold.is_empty());
            }
        }

        /// One more silent server never releases a hold (the guard does not flap
        /// as an outage grows), and one server coming back never creates one.
        #[test]
        fn more_silence_never_releases_a_hold(
            servers in arb_servers(),
            pick in any::<proptest::sample::Index>(),
        ) {
            prop_assume!(!servers.is_empty());
            let i = pick.index(servers.len());
            let mut worse = servers.clone();
            worse[i].health = Health::Suspect;
            let mut better = servers.clone();
            better[i].health = Health::Up;
            let (h, hw, hb) = (judge(&servers), judge(&worse), judge(&better));
            prop_assert!(!h.everywhere || hw.everywhere);
            prop_assert!(h.clusters.is_subset(&hw.clusters));
            prop_assert!(!hb.everywhere || h.everywhere);
            prop_assert!(hb.clusters.is_subset(&h.clusters));
        }

        /// Excused time never exceeds the lag, is all of it beyond the jitter when
        /// nothing was excused before, and a stall reported in two parts (or by two
        /// observers) is excused once.
        #[test]
        fn a_stall_is_excused_once(lag in 0u64..100_000, jitter in 0u64..1_000, split in 0u64..100_000) {
            let t0 = Instant::now();
            let ms = Duration::from_millis;
            let (j, ran) = (ms(jitter), t0 + ms(lag));
            let e = newly_blind(t0, ran, j, None);
            prop_assert!(e <= ms(lag));
            prop_assert_eq!(e, ms(lag.saturating_sub(jitter)));
            let mid = t0 + ms(split.min(lag));
            let first = newly_blind(t0, mid, j, None);
            let until = (first > Duration::ZERO).then_some(mid);
            let second = newly_blind(t0, ran, j, until);
            prop_assert_eq!(first + second, e);
            prop_assert_eq!(newly_blind(t0, ran, j, Some(ran)), Duration::ZERO);
        }
    }
}
