//! Placement and failover decisions, as pure functions over a [`Snapshot`] of the
//! clusters and servers. No I/O and no clock: the controller builds the snapshot
//! from the store and health monitor, calls these functions, and writes the plan.
//! Being pure, every rule here is property-tested.
//!
//! Every placement decision of the platform is made here: a domain's clusters
//! ([`place_domain`]), a new `single` site's server ([`pick_single_server`]), and
//! re-placement when a server is deleted, drained, down or back, or a domain moves
//! ([`replace::replace`]), and which web server runs a site's cron
//! ([`cron::place_cron`]), and which server writes a mail cluster's mailboxes
//! ([`mail::place_mail`]). The controller's `placement` module is the one place that
//! takes snapshots and writes these decisions. Whether silence may fail a server
//! over at all is [`disruption::judge`]'s decision.

#![forbid(unsafe_code)]

pub mod cron;
pub mod disruption;
pub mod mail;
pub mod replace;

pub use replace::{replace, without_server, Decision, Placed, Subject};

use model::{CountryCode, Id, Role};
use std::collections::BTreeMap;

/// Health of a server as the controller currently believes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Health {
    /// Never heard from (just added).
    Unknown,
    /// Heartbeats arriving.
    Up,
    /// Heartbeats missed; not yet confirmed down.
    Suspect,
    /// Heartbeats missed and the active probe failed.
    Down,
}

impl Health {
    /// Whether new work may be placed on (or kept on) a server in this state.
    pub fn is_usable(self) -> bool {
        matches!(self, Health::Up | Health::Unknown)
    }
}

/// What the scheduler needs to know about one server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerInfo {
    /// Store id.
    pub id: Id,
    /// Name, for messages.
    pub name: String,
    /// 0 = primary in ranked (DNS, mail) clusters.
    pub rank: u16,
    /// Where it stands.
    pub country: CountryCode,
    /// Current health.
    pub health: Health,
    /// Drained for maintenance: takes no work.
    pub drained: bool,
    /// Number of `single` sites active on it (for least-loaded placement).
    pub load: u32,
}

/// What the scheduler needs to know about one cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterInfo {
    /// Store id.
    pub id: Id,
    /// Name, for messages.
    pub name: String,
    /// Role of its servers.
    pub role: Role,
    /// The operator's default cluster for its role.
    pub is_default: bool,
    /// Its servers.
    pub servers: Vec<ServerInfo>,
}

/// Everything placement looks at.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Snapshot {
    /// All clusters.
    pub clusters: Vec<ClusterInfo>,
}

impl Snapshot {
    /// The cluster with this id.
    pub fn cluster(&self, id: Id) -> Option<&ClusterInfo> {
        self.clusters.iter().find(|c| c.id == id)
    }
}

/// A request to place a new (or moved) domain.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DomainRequest {
    /// Roles that must be placed.
    pub roles: Vec<Role>,
    /// Clusters the caller chose explicitly, per role.
    pub explicit: BTreeMap<Role, Id>,
    /// The customer's default clusters, per role.
    pub customer_defaults: BTreeMap<Role, Id>,
}

/// Where a domain's services go: one cluster per role.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Plan {
    /// Cluster id per role.
    pub placements: BTreeMap<Role, Id>,
}

/// Why a placement cannot be made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Infeasible {
    /// No cluster of a needed role exists, or none was chosen and none is default.
    #[error("no {role} cluster to place it on: create one (`hostplane cluster add NAME --role {role} --default`) or name one explicitly")]
    NoCluster {
        /// The role.
        role: Role,
    },
    /// A chosen cluster does not exist.
    #[error("cluster {id} chosen for {role} does not exist")]
    UnknownCluster {
        /// The role.
        role: Role,
        /// The missing id.
        id: Id,
    },
    /// A chosen cluster has another role.
    #[error("cluster `{cluster}` is a {actual} cluster, not a {role} cluster")]
    WrongRole {
        /// The role it was chosen for.
        role: Role,
        /// The cluster's name.
        cluster: String,
        /// Its actual role.
        actual: Role,
    },
}

/// Choose one cluster per requested role: the explicit choice, else the customer's
/// default, else the operator's default cluster of that role, else — when exactly one
/// cluster of that role exists — that one.
pub fn place_domain(snap: &Snapshot, req: &DomainRequest) -> Result<Plan, Infeasible> {
    let mut plan = Plan::default();
    for &role in &req.roles {
        let chosen = match req
            .explicit
            .get(&role)
            .or_else(|| req.customer_defaults.get(&role))
        {
            Some(&id) => {
                let cluster = snap
                    .cluster(id)
                    .ok_or(Infeasible::UnknownCluster { role, id })?;
                if cluster.role != role {
                    return Err(Infeasible::WrongRole {
                        role,
                        cluster: cluster.name.clone(),
                        actual: cluster.role,
                    });
                }
                id
            }
            None => default_cluster(snap, role).ok_or(Infeasible::NoCluster { role })?,
        };
        plan.placements.insert(role, chosen);
    }
    Ok(plan)
}

/// The operator's default cluster of a role; the only one if there is exactly one.
pub fn default_cluster(snap: &Snapshot, role: Role) -> Option<Id> {
    let of_role: Vec<&ClusterInfo> = snap.clusters.iter().filter(|c| c.role == role).collect();
    of_role
        .iter()
        .find(|c| c.is_default)
        .or(if of_role.len() == 1 {
            of_role.first()
        } else {
            None
        })
        .map(|c| c.id)
}

/// A secondary that would stand in the same country as its primary.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("server `{secondary}` would be a secondary in {country}, the same country as primary `{primary}`; secondaries must be elsewhere so one country's outage does not take both (use --force to override; a warning is recorded)")]
pub struct SameCountry {
    /// The primary's name.
    pub primary: String,
    /// The secondary's name.
    pub secondary: String,
    /// The shared country.
    pub country: CountryCode,
}

/// Check the "secondaries are elsewhere" rule for a ranked cluster after a server is
/// added or changed: every secondary must be in another country than the primary.
/// Returns every violation (empty = fine). Unranked roles never violate.
pub fn same_country_violations(cluster: &ClusterInfo) -> Vec<SameCountry> {
    if !cluster.role.is_ranked() {
        return Vec::new();
    }
    let Some(primary) = cluster.servers.iter().min_by_key(|s| (s.rank, s.id)) else {
        return Vec::new();
    };
    cluster
        .servers
        .iter()
        .filter(|s| s.id != primary.id && s.country == primary.country)
        .map(|s| SameCountry {
            primary: primary.name.clone(),
            secondary: s.name.clone(),
            country: s.country,
        })
        .collect()
}

/// The server a `single` site should be active on: the least-loaded usable,
/// undrained server of the cluster (ties to the lowest id). None if no server is usable.
pub fn pick_single_server(cluster: &ClusterInfo) -> Option<Id> {
    cluster
        .servers
        .iter()
        .filter(|s| s.health.is_usable() && !s.drained)
        .min_by_key(|s| (s.load, s.id))
        .map(|s| s.id)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn server(
        id: Id,
        rank: u16,
        country: &str,
        health: Health,
        drained: bool,
        load: u32,
    ) -> ServerInfo {
        ServerInfo {
            id,
            name: format!("s{id}"),
            rank,
            country: CountryCode::new(country).unwrap(),
            health,
            drained,
            load,
        }
    }

    fn cluster(id: Id, role: Role, is_default: bool, servers: Vec<ServerInfo>) -> ClusterInfo {
        ClusterInfo {
            id,
            name: format!("c{id}"),
            role,
            is_default,
            servers,
        }
    }

    fn snap() -> Snapshot {
        Snapshot {
            clusters: vec![
                cluster(1, Role::Web, false, vec![]),
                cluster(2, Role::Web, true, vec![]),
                cluster(3, Role::Dns, false, vec![]),
                cluster(4, Role::Mail, false, vec![]),
                cluster(5, Role::Mail, false, vec![]),
            ],
        }
    }

    fn req(roles: &[Role]) -> DomainRequest {
        DomainRequest {
            roles: roles.to_vec(),
            ..DomainRequest::default()
        }
    }

    #[test]
    fn defaults_and_single_clusters() {
        let plan = place_domain(&snap(), &req(&[Role::Web, Role::Dns])).unwrap();
        assert_eq!(
            plan.placements,
            BTreeMap::from([(Role::Web, 2), (Role::Dns, 3)])
        );
        assert_eq!(
            place_domain(&snap(), &req(&[Role::Mail])),
            Err(Infeasible::NoCluster { role: Role::Mail })
        );
        assert_eq!(
            place_domain(&snap(), &req(&[Role::Files])),
            Err(Infeasible::NoCluster { role: Role::Files })
        );
        assert_eq!(place_domain(&snap(), &req(&[])), Ok(Plan::default()));
    }

    #[test]
    fn explicit_beats_customer_default_beats_operator_default() {
        let mut r = req(&[Role::Web, Role::Mail]);
        r.customer_defaults.insert(Role::Web, 1);
        r.customer_defaults.insert(Role::Mail, 4);
        assert_eq!(
            place_domain(&snap(), &r).unwrap().placements,
            BTreeMap::from([(Role::Web, 1), (Role::Mail, 4)])
        );
        r.explicit.insert(Role::Mail, 5);
        assert_eq!(
            place_domain(&snap(), &r).unwrap().placements[&Role::Mail],
            5
        );
        // An explicit choice is checked even when the customer default would work.
        r.explicit.insert(Role::Web, 3);
        assert_eq!(
            place_domain(&snap(), &r),
            Err(Infeasible::WrongRole {
                role: Role::Web,
                cluster: "c3".into(),
                actual: Role::Dns
            })
        );
        r.explicit.insert(Role::Web, 99);
        assert_eq!(
            place_domain(&snap(), &r),
            Err(Infeasible::UnknownCluster {
                role: Role::Web,
                id: 99
            })
        );
    }

    #[test]
    fn single_server_choice() {
        let c = cluster(
            1,
            Role::Web,
            false,
            vec![
                server(10, 0, "DE", Health::Down, false, 0),
                server(11, 0, "DE", Health::Up, true, 0),
                server(12, 0, "DE", Health::Suspect, false, 0),
                server(13, 0, "DE", Health::Up, false, 3),
                server(14, 0, "DE", Health::Unknown, false, 2),
                server(15, 0, "DE", Health::Up, false, 2),
            ],
        );
        assert_eq!(pick_single_server(&c), Some(14));
        let none = cluster(
            2,
            Role::Web,
            false,
            vec![
                server(10, 0, "DE", Health::Down, false, 0),
                server(11, 0, "DE", Health::Up, true, 0),
            ],
        );
        assert_eq!(pick_single_server(&none), None);
        assert_eq!(
            pick_single_server(&cluster(3, Role::Web, false, vec![])),
            None
        );
    }

    fn role() -> impl proptest::strategy::Strategy<Value = Role> {
        proptest::sample::select(Role::ALL.to_vec())
    }

    proptest::proptest! {
        /// A plan places exactly the requested roles, each on an existing cluster of
        /// that role: the explicit choice if any, else the customer's default, else the
        /// operator's default (or the only cluster of the role); infeasible otherwise.
        #[test]
        fn domain_plans_follow_the_precedence(
            clusters in proptest::collection::vec((role(), proptest::bool::ANY), 0..8),
            roles in proptest::collection::btree_set(role(), 0..5),
            explicit in proptest::collection::btree_map(role(), 1i64..10, 0..3),
            customer in proptest::collection::btree_map(role(), 1i64..10, 0..3),
        ) {
            let snap = Snapshot {
                clusters: clusters
                    .iter()
                    .enumerate()
                    .map(|(i, (r, d))| cluster(i as Id + 1, *r, *d, vec![]))
                    .collect(),
            };
            let req = DomainRequest {
                roles: roles.iter().copied().collect(),
                explicit: explicit.clone(),
                customer_defaults: customer.clone(),
            };
            match place_domain(&snap, &req) {
                Ok(plan) => {
                    proptest::prop_assert_eq!(
                        plan.placements.keys().copied().collect::<Vec<_>>(),
                        roles.iter().copied().collect::<Vec<_>>()
                    );
                    for (role, id) in &plan.placements {
                        proptest::prop_assert_eq!(snap.cluster(*id).map(|c| c.role), Some(*role));
                        let want = explicit
                            .get(role)
                            .or(customer.get(role))
                            .copied()
                            .or_else(|| default_cluster(&snap, *role));
                        proptest::prop_assert_eq!(Some(*id), want);
                    }
                }
                Err(Infeasible::NoCluster { role }) => {
                    proptest::prop_assert!(!explicit.contains_key(&role) && !customer.contains_key(&role));
                    proptest::prop_assert_eq!(default_cluster(&snap, role), None);
                }
                Err(Infeasible::UnknownCluster { role, id }) => {
                    proptest::prop_assert_eq!(explicit.get(&role).or(customer.get(&role)), Some(&id));
                    proptest::prop_assert!(snap.cluster(id).is_none());
                }
                Err(Infeasible::WrongRole { role, actual, .. }) => {
                    proptest::prop_assert_ne!(role, actual);
                }
            }
        }
    }

    #[test]
    fn secondaries_elsewhere() {
        let servers = vec![
            server(20, 1, "DE", Health::Up, false, 0),
            server(21, 0, "FR", Health::Up, false, 0),
            server(22, 2, "FR", Health::Up, false, 0),
            server(23, 3, "NL", Health::Up, false, 0),
        ];
        let dns = cluster(1, Role::Dns, false, servers.clone());
        let v = same_country_violations(&dns);
        assert_eq!(v.len(), 1);
        assert_eq!(
            (
                v[0].primary.as_str(),
                v[0].secondary.as_str(),
                v[0].country.as_str()
            ),
            ("s21", "s22", "FR")
        );
        assert_eq!(
            same_country_violations(&cluster(2, Role::Mail, false, servers.clone())).len(),
            1
        );
        assert!(same_country_violations(&cluster(3, Role::Web, false, servers)).is_empty());
        assert!(same_country_violations(&cluster(4, Role::Dns, false, vec![])).is_empty());
    }
}
