//! Property test: random sequences of changes to domains (owner, mail placement),
//! sites (aliases), servers, clusters and stored secrets, fed as the store's change
//! feed would bring them (cascaded deletes as tombstones), give the key task's
//! incremental plan ([`KeyState::plan`] over the marked secrets) exactly the full
//! plan ([`plan`] of [`wanted`] over the whole world) after every step; after the
//! plan is carried out (its writes coming back through the feed) both are empty.

use std::collections::{BTreeMap, BTreeSet};

use model::entity::{Cluster, Domain, Kind, Object, Secret, SecretPurpose, Server, Site};
use model::{CountryCode, DomainName, Id, PlacementMode, Role, Slug};
use proptest::prelude::*;
use store::{Feed, Meta, Stored};

use super::{plan, wanted, KeyState, Plan};
use crate::builder::feed_model::FeedModel;
use crate::builder::World;

const NOW: i64 = 1_000_000_000;

/// One change.
#[derive(Debug, Clone)]
enum Op {
    Domain {
        slot: u8,
        owner: u8,
        mail: bool,
    },
    DeleteDomain {
        slot: u8,
    },
    Site {
        slot: u8,
        aliases: u8,
    },
    DeleteSite {
        slot: u8,
    },
    Server {
        slot: u8,
        role: u8,
        ip: u8,
    },
    DeleteServer {
        slot: u8,
    },
    Cluster {
        slot: u8,
        /// web, dns, mail, mail with a client-facing host name (whose names
        /// join its servers' certificates).
        kind: u8,
    },
    DeleteCluster {
        slot: u8,
    },
    Secret {
        purpose: u8,
        slot: u8,
        names: u8,
        expiry: u8,
        uploaded: bool,
    },
    DeleteSecret {
        purpose: u8,
        slot: u8,
    },
    /// Carry out the plan (as [`super::ensure`] and the RSA task would).
    Execute,
}

fn op() -> impl Strategy<Value = Op> {
    let slot = 0u8..5;
    prop_oneof![
        4 => (slot.clone(), 0u8..3, any::<bool>())
            .prop_map(|(slot, owner, mail)| Op::Domain { slot, owner, mail }),
        1 => slot.clone().prop_map(|slot| Op::DeleteDomain { slot }),
        3 => (slot.clone(), 0u8..4).prop_map(|(slot, aliases)| Op::Site { slot, aliases }),
        1 => slot.clone().prop_map(|slot| Op::DeleteSite { slot }),
        2 => (0u8..3, 0u8..3, 0u8..3).prop_map(|(slot, role, ip)| Op::Server { slot, role, ip }),
        1 => (0u8..3).prop_map(|slot| Op::DeleteServer { slot }),
        1 => (0u8..2, 0u8..5).prop_map(|(slot, kind)| Op::Cluster { slot, kind }),
        1 => (0u8..2).prop_map(|slot| Op::DeleteCluster { slot }),
        3 => (0u8..9, slot.clone(), 0u8..3, 0u8..4, any::<bool>()).prop_map(
            |(purpose, slot, names, expiry, uploaded)| Op::Secret { purpose, slot, names, expiry, uploaded }),
        1 => (0u8..9, slot).prop_map(|(purpose, slot)| Op::DeleteSecret { purpose, slot }),
        2 => Just(Op::Execute),
    ]
}

/// The store as the test sees it: the shared feed model, with names unique per kind.
#[derive(Default)]
struct Truth {
    model: FeedModel,
    next_id: Id,
}

impl Truth {
    fn find(&self, kind: Kind, name: &str) -> Option<Id> {
        self.model
            .objects
            .values()
            .find(|o| o.kind == kind && o.meta.name == name)
            .map(|o| o.meta.id)
    }

    /// Create or update the object of `T::KIND` named `name`.
    fn put<T: Object + serde::Serialize>(
        &mut self,
        name: &str,
        owner: Option<Id>,
        parent: Option<Id>,
        data: T,
    ) -> Id {
        let id = self.find(T::KIND, name).unwrap_or_else(|| {
            self.next_id += 1;
            self.next_id
        });
        let t = time::OffsetDateTime::UNIX_EPOCH;
        let meta = Meta {
            id,
            name: name.to_owned(),
            owner,
            reseller: None,
            parent,
            created_rev: 1,
            updated_rev: 0,
            created_at: t,
            updated_at: t,
        };
        self.model.put(Stored { meta, data });
        id
    }

    fn delete(&mut self, id: Id) {
        self.model.delete(id);
    }

    fn delete_named(&mut self, kind: Kind, name: &str) {
        if let Some(id) = self.find(kind, name) {
            self.delete(id);
        }
    }

    fn feed(&mut self) -> Feed {
        self.model.feed()
    }

    fn everything(&self) -> Feed {
        self.model.everything()
    }
}

fn domain_name(slot: u8) -> String {
    format!("d{slot}.example")
}

const PURPOSES: [SecretPurpose; 10] = [
    SecretPurpose::SiteCert,
    SecretPurpose::ServerCert,
    SecretPurpose::Dkim,
    SecretPurpose::DkimRsa,
    SecretPurpose::Tsig,
    SecretPurpose::TsigPrevious,
    SecretPurpose::SiteMail,
    // The ACME task's: neither wanted nor deleted by the key task.
    SecretPurpose::AcmeSite,
    SecretPurpose::AcmeChallenge,
    SecretPurpose::DkimRsaSpare,
];

/// The subject a secret of `purpose` in `slot` has (one that may be wanted).
fn subject(purpose: SecretPurpose, slot: u8) -> String {
    match purpose {
        SecretPurpose::SiteCert | SecretPurpose::SiteMail | SecretPurpose::Dkim => {
            domain_name(slot)
        }
        SecretPurpose::ServerCert => format!("s{}", slot % 3),
        SecretPurpose::DkimRsa if slot < 2 => format!("account-{}", slot + 1),
        SecretPurpose::DkimRsa => domain_name(slot),
        SecretPurpose::Tsig | SecretPurpose::TsigPrevious => format!("c{}", slot % 2),
        SecretPurpose::DkimRsaSpare => format!("spare-{slot}"),
        SecretPurpose::AcmeSite | SecretPurpose::AcmeChallenge => domain_name(slot),
        SecretPurpose::AcmeAccount => "platform".into(),
        SecretPurpose::AcmeLease => "issuer".into(),
        SecretPurpose::Totp => "acme".into(),
    }
}

fn secret(
    purpose: SecretPurpose,
    subject: &str,
    names: Vec<String>,
    not_after: Option<i64>,
    uploaded: bool,
) -> Secret {
    Secret {
        purpose,
        subject: subject.to_owned(),
        public: "pub".into(),
        private: "priv".into(),
        algorithm: "test".into(),
        not_after,
        uploaded,
        names,
    }
}

fn apply_op(truth: &mut Truth, op: &Op) {
    match *op {
        Op::Domain { slot, owner, mail } => {
            let name = domain_name(slot);
            let mut placements = BTreeMap::new();
            placements.insert(Role::Web, 1);
            if mail {
                placements.insert(Role::Mail, 2);
            }
            let owner = (owner > 0).then_some(Id::from(owner));
            truth.put(
                &name,
                owner,
                None,
                Domain {
                    name: DomainName::new(&name).unwrap(),
                    customer: owner.unwrap_or(1),
                    placements: placements.into_iter().collect(),
                },
            );
        }
        Op::DeleteDomain { slot } => truth.delete_named(Kind::Domain, &domain_name(slot)),
        Op::Site { slot, aliases } => {
            let name = domain_name(slot);
            let Some(domain) = truth.find(Kind::Domain, &name) else {
                return;
            };
            let aliases: Vec<String> = match aliases {
                0 => vec![],
                1 => vec![format!("www.{name}")],
                2 => vec![format!("www.{name}"), name.clone()],
                _ => vec![format!("a.{name}"), format!("www.{name}")],
            };
            truth.put(
                &name,
                None,
                Some(domain),
                Site {
                    web: Default::default(),
                    domain,
                    aliases: aliases
                        .iter()
                        .map(|a| DomainName::new(a).unwrap())
                        .collect(),
                    php: false,
                    mode: PlacementMode::All,
                    https_redirect: false,
                    active_server: None,
                    deployment: None,
                    previous_deployments: Vec::new(),
                    files: Default::default(),
                    cron: Vec::new(),
                    cron_next_id: 0,
                    cron_holder: None,
                },
            );
        }
        Op::DeleteSite { slot } => truth.delete_named(Kind::Site, &domain_name(slot)),
        Op::Server { slot, role, ip } => {
            let name = format!("s{slot}");
            let role = [Role::Web, Role::Files, Role::Mail][usize::from(role)];
            // In cluster c0 or c1 when it exists (its client names may join the
            // certificate), else in a cluster the store does not hold.
            let cluster = truth
                .find(Kind::Cluster, &format!("c{}", ip % 2))
                .unwrap_or(1);
            truth.put(
                &name,
                None,
                None,
                Server {
                    name: Slug::new(&name).unwrap(),
                    role,
                    cluster,
                    rank: 0,
                    hostname: DomainName::new(&format!("{name}.hosting.example")).unwrap(),
                    addresses: vec![format!("192.0.2.{ip}").parse().unwrap()],
                    region: String::new(),
                    country: CountryCode::new("DE").unwrap(),
                    hardware: String::new(),
                    drained: false,
                    agent: None,
                },
            );
        }
        Op::DeleteServer { slot } => truth.delete_named(Kind::Server, &format!("s{slot}")),
        Op::Cluster { slot, kind } => {
            let name = format!("c{slot}");
            let (role, hostname) = match kind {
                0 => (Role::Web, None),
                1 => (Role::Dns, None),
                2 => (Role::Mail, None),
                3 => (Role::Mail, Some("mail.hosting.example")),
                _ => (Role::Mail, Some("m2.hosting.example")),
            };
            truth.put(
                &name,
                None,
                None,
                Cluster {
                    name: Slug::new(&name).unwrap(),
                    role,
                    description: String::new(),
                    is_default: false,
                    ttls: Default::default(),
                    external_secondaries: Vec::new(),
                    mail_writer: None,
                    hostname: hostname.map(|h| DomainName::new(h).unwrap()),
                },
            );
        }
        Op::DeleteCluster { slot } => truth.delete_named(Kind::Cluster, &format!("c{slot}")),
        Op::Secret {
            purpose,
            slot,
            names,
            expiry,
            uploaded,
        } => {
            let purpose = PURPOSES[usize::from(purpose)];
            let subject = subject(purpose, slot);
            let names = match names {
                0 => vec![subject.clone()],
                1 => vec![format!("www.{subject}"), subject.clone()],
                _ => vec![],
            };
            let not_after = match expiry {
                0 => None,
                1 => Some(NOW + 10),
                2 => Some(NOW - 10),
                _ => Some(NOW + 400 * 24 * 3600),
            };
            truth.put(
                &purpose.store_name(&subject),
                None,
                None,
                secret(purpose, &subject, names, not_after, uploaded),
            );
        }
        Op::DeleteSecret { purpose, slot } => {
            let purpose = PURPOSES[usize::from(purpose)];
            truth.delete_named(Kind::Secret, &purpose.store_name(&subject(purpose, slot)));
        }
        Op::Execute => {}
    }
}

/// Carry out `plan` in the store: every secret made (RSA included, as the
/// background task would), re-issued for a year, deleted.
fn execute(truth: &mut Truth, plan: &Plan) {
    let year = Some(NOW + 365 * 24 * 3600);
    for w in plan
        .create
        .iter()
        .chain(plan.reissue.iter().map(|(_, w)| w))
    {
        let not_after = matches!(
            w.purpose,
            SecretPurpose::SiteCert | SecretPurpose::ServerCert
        )
        .then_some(year)
        .flatten();
        truth.put(
            &w.purpose.store_name(&w.subject),
            w.owner,
            None,
            secret(w.purpose, &w.subject, w.names.clone(), not_after, false),
        );
    }
    for id in &plan.delete {
        truth.delete(*id);
    }
}

/// A plan in a canonical order (the incremental plan walks keys, the full one the world).
fn canonical(mut p: Plan) -> Plan {
    p.create
        .sort_by(|a, b| (a.purpose, &a.subject).cmp(&(b.purpose, &b.subject)));
    p.reissue.sort_by_key(|(id, _)| *id);
    p.delete.sort_unstable();
    p
}

fn full_plan(world: &World) -> Plan {
    let existing: Vec<Stored<Secret>> = world.secrets.to_vec();
    canonical(plan(wanted(world), &existing, NOW))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

    #[test]
    fn incremental_key_plans_equal_full_plans(ops in proptest::collection::vec(op(), 1..60)) {
        let mut truth = Truth::default();
        let mut world = World::default();
        let mut state = KeyState::default();
        for (step, op) in ops.iter().enumerate() {
            apply_op(&mut truth, op);
            let feed = truth.feed();
            world.apply(&feed).unwrap();
            state.apply(&feed).unwrap();
            let full = full_plan(&world);
            prop_assert_eq!(&canonical(state.plan(NOW)), &full, "step {}: {:?}", step, op);
            let fresh = KeyState::from_feed(&truth.everything()).unwrap();
            prop_assert_eq!(&canonical(fresh.plan(NOW)), &full, "from scratch, step {}", step);
            if matches!(op, Op::Execute) {
                state.settle();
                execute(&mut truth, &full);
                let feed = truth.feed();
                world.apply(&feed).unwrap();
                state.apply(&feed).unwrap();
                let after = full_plan(&world);
                prop_assert!(after.is_empty(), "full plan after executing: {:?}", after);
                prop_assert_eq!(&canonical(state.plan(NOW)), &after, "after executing, step {}", step);
            }
        }
    }
}

#[test]
fn a_failed_write_keeps_its_marks() {
    let mut truth = Truth::default();
    apply_op(
        &mut truth,
        &Op::Domain {
            slot: 1,
            owner: 1,
            mail: true,
        },
    );
    apply_op(
        &mut truth,
        &Op::Site {
            slot: 1,
            aliases: 1,
        },
    );
    let state_feed = truth.feed();
    let mut state = KeyState::from_feed(&state_feed).unwrap();
    let p = state.plan(NOW);
    let subjects: BTreeSet<(SecretPurpose, String)> = p
        .create
        .iter()
        .map(|w| (w.purpose, w.subject.clone()))
        .collect();
    assert!(subjects.contains(&(SecretPurpose::SiteCert, "d1.example".into())));
    assert!(subjects.contains(&(SecretPurpose::Dkim, "d1.example".into())));
    state.settle();
    // The RSA key is still missing: asked for again until it is stored.
    assert_eq!(state.plan(NOW).create.len(), 1);
    state.unsettle(&p);
    assert_eq!(canonical(state.plan(NOW)), canonical(p));
}
