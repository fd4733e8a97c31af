//! Property tests of the placement rules over random snapshots and requests.

use model::{CountryCode, Id, Role};
use proptest::prelude::*;
use proptest::sample::select;
use scheduler::{
    default_cluster, pick_single_server, place_domain, same_country_violations, ClusterInfo,
    DomainRequest, Health, Infeasible, ServerInfo, Snapshot,
};
use std::collections::{BTreeMap, BTreeSet};

/// Few countries, so shared countries happen often.
const COUNTRIES: &[&str] = &["DE", "FR", "NL", "US"];

fn role() -> impl Strategy<Value = Role> {
    select(Role::ALL)
}

fn health() -> impl Strategy<Value = Health> {
    select(&[Health::Unknown, Health::Up, Health::Suspect, Health::Down][..])
}

/// Servers with unique ids (drawn from `0..1000`, offset by the cluster's base).
fn servers(base: Id) -> impl Strategy<Value = Vec<ServerInfo>> {
    prop::collection::btree_set(0..1000i64, 0..7).prop_flat_map(move |ids| {
        let n = ids.len();
        (
            Just(ids),
            prop::collection::vec(
                (0..4u16, select(COUNTRIES), health(), any::<bool>(), 0..5u32),
                n,
            ),
        )
            .prop_map(move |(ids, attrs)| {
                ids.into_iter()
                    .zip(attrs)
                    .map(|(id, (rank, country, health, drained, load))| ServerInfo {
                        id: base + id,
                        name: format!("srv-{}", base + id),
                        rank,
                        country: CountryCode::new(country).expect("known country"),
                        health,
                        drained,
                        load,
                    })
                    .collect()
            })
    })
}

fn cluster(id: Id) -> impl Strategy<Value = ClusterInfo> {
    (role(), prop::bool::weighted(0.3), servers(id * 1000)).prop_map(
        move |(role, is_default, servers)| ClusterInfo {
            id,
            name: format!("cluster-{id}"),
            role,
            is_default,
            servers,
        },
    )
}

/// 0–8 clusters with ids 1..=n.
fn snapshot() -> impl Strategy<Value = Snapshot> {
    (0..9i64).prop_flat_map(|n| {
        (1..=n)
            .map(cluster)
            .collect::<Vec<_>>()
            .prop_map(|clusters| Snapshot { clusters })
    })
}

/// Choices per role; ids 1..=10 so some name clusters that do not exist.
fn choices() -> impl Strategy<Value = BTreeMap<Role, Id>> {
    prop::collection::btree_map(role(), 1..=10i64, 0..4)
}

fn request() -> impl Strategy<Value = DomainRequest> {
    (prop::collection::vec(role(), 0..6), choices(), choices()).prop_map(
        |(roles, explicit, customer_defaults)| DomainRequest {
            roles,
            explicit,
            customer_defaults,
        },
    )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2048, ..ProptestConfig::default() })]

    #[test]
    fn place_domain_plans_or_explains(snap in snapshot(), req in request()) {
        match place_domain(&snap, &req) {
            Ok(plan) => {
                let wanted: BTreeSet<Role> = req.roles.iter().copied().collect();
                let got: BTreeSet<Role> = plan.placements.keys().copied().collect();
                prop_assert_eq!(got, wanted, "one placement per requested role, no more");
                for (&role, &id) in &plan.placements {
                    let c = snap.cluster(id);
                    prop_assert!(c.is_some(), "{} placed on missing cluster {}", role, id);
                    let c = c.unwrap();
                    prop_assert_eq!(c.role, role, "{} placed on {} cluster {}", role, c.role, id);
                    // Precedence: explicit > customer default > operator default > only one.
                    if let Some(&e) = req.explicit.get(&role) {
                        prop_assert_eq!(id, e);
                    } else if let Some(&d) = req.customer_defaults.get(&role) {
                        prop_assert_eq!(id, d);
                    } else {
                        let of_role: Vec<&ClusterInfo> = snap.clusters.iter().filter(|c| c.role == role).collect();
                        if of_role.iter().any(|c| c.is_default) {
                            prop_assert!(c.is_default, "{} placed on non-default {} while a default exists", role, id);
                        } else {
                            prop_assert_eq!(of_role.len(), 1, "{} placed on {} without a choice or default", role, id);
                        }
                    }
                }
            }
            Err(err) => {
                // The error must be justified for some requested role...
                let role = match &err {
                    Infeasible::NoCluster { role } | Infeasible::UnknownCluster { role, .. } | Infeasible::WrongRole { role, .. } => *role,
                };
                prop_assert!(req.roles.contains(&role), "error about unrequested role {}", role);
                let choice = req.explicit.get(&role).or_else(|| req.customer_defaults.get(&role)).copied();
                match &err {
                    Infeasible::NoCluster { .. } => {
                        prop_assert_eq!(choice, None, "NoCluster although {} was chosen", role);
                        let of_role: Vec<&ClusterInfo> = snap.clusters.iter().filter(|c| c.role == role).collect();
                        prop_assert!(!of_role.iter().any(|c| c.is_default), "NoCluster although a default {} exists", role);
                        prop_assert_ne!(of_role.len(), 1, "NoCluster although exactly one {} cluster exists", role);
                    }
                    Infeasible::UnknownCluster { id, .. } => {
                        prop_assert_eq!(choice, Some(*id));
                        prop_assert!(snap.cluster(*id).is_none(), "UnknownCluster for existing {}", id);
                    }
                    Infeasible::WrongRole { cluster, actual, .. } => {
                        let c = choice.and_then(|id| snap.cluster(id));
                        prop_assert!(c.is_some(), "WrongRole without an existing chosen cluster");
                        let c = c.unwrap();
                        prop_assert_eq!(&c.name, cluster);
                        prop_assert_eq!(c.role, *actual);
                        prop_assert_ne!(c.role, role);
                    }
                }
                // ...and every role before it in the request must have been placeable.
                let first = req.roles.iter().position(|r| *r == role).unwrap();
                for &earlier in &req.roles[..first] {
                    let single = DomainRequest { roles: vec![earlier], ..req.clone() };
                    prop_assert!(place_domain(&snap, &single).is_ok(), "reported {} but {} before it fails", role, earlier);
                }
            }
        }
    }

    #[test]
    fn placement_without_choices_uses_default_cluster(snap in snapshot(), role in role()) {
        let req = DomainRequest { roles: vec![role], ..DomainRequest::default() };
        let of_role: Vec<&ClusterInfo> = snap.clusters.iter().filter(|c| c.role == role).collect();
        match (place_domain(&snap, &req), default_cluster(&snap, role)) {
            (Ok(plan), Some(d)) => {
                prop_assert_eq!(plan.placements.get(&role), Some(&d));
                let c = snap.cluster(d).unwrap();
                prop_assert!(c.role == role && (c.is_default || of_role.len() == 1));
            }
            (Err(Infeasible::NoCluster { role: r }), None) => {
                prop_assert_eq!(r, role);
                prop_assert!(of_role.len() != 1 && of_role.iter().all(|c| !c.is_default));
            }
            (res, d) => prop_assert!(false, "place_domain {:?} disagrees with default_cluster {:?}", res, d),
        }
    }

    #[test]
    fn pick_single_server_picks_least_loaded_usable(c in cluster(1)) {
        let usable: Vec<&ServerInfo> = c.servers.iter().filter(|s| s.health.is_usable() && !s.drained).collect();
        match pick_single_server(&c) {
            None => prop_assert!(usable.is_empty(), "None although {} servers are usable", usable.len()),
            Some(id) => {
                let s = c.servers.iter().find(|s| s.id == id);
                prop_assert!(s.is_some(), "picked unknown server {}", id);
                let s = s.unwrap();
                prop_assert!(matches!(s.health, Health::Up | Health::Unknown), "picked {:?} server", s.health);
                prop_assert!(!s.drained, "picked a drained server");
                let min = usable.iter().map(|u| u.load).min().unwrap();
                prop_assert_eq!(s.load, min);
                let lowest_tied = usable.iter().filter(|u| u.load == min).map(|u| u.id).min().unwrap();
                prop_assert_eq!(id, lowest_tied, "ties go to the lowest id");
            }
        }
    }

    #[test]
    fn same_country_violations_are_exactly_the_secondaries_at_home(c in cluster(1)) {
        let found: BTreeSet<String> = same_country_violations(&c).into_iter().map(|v| {
            assert!(c.servers.iter().any(|s| s.name == v.primary && s.country == v.country));
            v.secondary
        }).collect();
        let expected: BTreeSet<String> = if matches!(c.role, Role::Dns | Role::Mail) {
            // The primary: lowest rank, ties to the lowest id.
            match c.servers.iter().min_by_key(|s| (s.rank, s.id)) {
                Some(p) => c.servers.iter().filter(|s| s.id != p.id && s.country == p.country).map(|s| s.name.clone()).collect(),
                None => BTreeSet::new(),
            }
        } else {
            BTreeSet::new()
        };
        prop_assert_eq!(found, expected);
    }
}
