//! Property test: random sequences of changes (domains, sites, mailboxes,
//! aliases, DNS records, FTP accounts, databases, key material, server ranks,
//! health, service ports, mail flushes, mail writer moves (the mail cluster
//! has a client-facing host name inside one of the domains, whose zone its
//! `imap.`/`smtp.` names follow the writer in); a site's kept and local paths and
//! restores, its aliases and the active server of a `single` site, its owner's
//! site disk limit, the days site file versions are kept; domains moving between
//! web clusters), fed to the incremental builder as the
//! store's change feed would bring them (cascaded deletes as tombstones), give
//! exactly the configs of a full build from scratch after every step. This also
//! checks the web clusters' site lists the builder keeps and patches between
//! builds (`web_cache`) against lists made from scratch.

use model::entity::{Account, Database, DnsRecord, FtpAccount, MailAlias, Mailbox, SecretPurpose};
use model::sitefiles::{RestoreState, SiteFiles, SitePath, SiteRestore};
use model::{
    AccountKind, DbEngine, DbIdent, EmailAddress, FtpUsername, Id, LocalPart, PlacementMode,
    RelPath, Role, Slug,
};
use proptest::prelude::*;
use scheduler::Health;

use super::tests::{domain, secret, site, stored, world, TODAY};
use super::{build_all, Incremental, World};
use crate::zones::ZoneSerials;

/// One change.
#[derive(Debug, Clone)]
enum Op {
    /// Create or update domain `slot` with placement variant `p`.
    Domain { slot: u8, p: u8 },
    /// Delete domain `slot` (children by cascade).
    DeleteDomain { slot: u8 },
    /// Create or update the site of domain `slot`.
    Site {
        slot: u8,
        php: bool,
        single: bool,
        /// The active server of a `single` site: none, web-1 (11) or web-2 (12).
        active: u8,
        /// Which aliases: none, one, two (in another order than stored).
        aliases: u8,
        /// Which file settings: none, paths, a pending restore, or both and a
        /// finished restore.
        files: u8,
    },
    /// The owner ([`OWNER`]) gets another site disk limit (0: none).
    SiteDisk { mb: u8 },
    /// `files.site_versions_days` changes.
    Versions { days: u8 },
    /// Delete the site of domain `slot`.
    DeleteSite { slot: u8 },
    /// Create or update mailbox `n` of domain `slot`.
    Mailbox { slot: u8, n: u8, enabled: bool },
    /// Delete mailbox `n` of domain `slot`.
    DeleteMailbox { slot: u8, n: u8 },
    /// Create or update alias `n` of domain `slot`.
    Alias { slot: u8, n: u8, to: u8 },
    /// Create or update DNS record `n` of domain `slot`.
    Record { slot: u8, n: u8, ip: u8 },
    /// Delete DNS record `n` of domain `slot`.
    DeleteRecord { slot: u8, n: u8 },
    /// Create or update the FTP account of domain `slot`.
    Ftp { slot: u8, quota: u8 },
    /// Create or update database `n` on the db cluster.
    Database { n: u8 },
    /// Create or update the site certificate (or DKIM key) of domain `slot`.
    Secret { slot: u8, dkim: bool, v: u8 },
    /// Delete the site certificate (or DKIM key) of domain `slot`.
    DeleteSecret { slot: u8, dkim: bool },
    /// Change a server's rank (infrastructure).
    Rank { server: u8, rank: u8 },
    /// A server's health changes.
    Health { server: u8, h: u8 },
    /// A server reports another service port.
    Port { server: u8, port: u8 },
    /// `mail flush`.
    Flush,
    /// The mail cluster's writer moves (placement): none decided, nobody, mx1, mx2.
    MailWriter { holder: u8 },
}

/// The servers of [`world`].
const SERVERS: [Id; 9] = [11, 12, 13, 21, 22, 31, 32, 41, 51];

fn op() -> impl Strategy<Value = Op> {
    let slot = 0u8..6;
    prop_oneof![
        4 => (slot.clone(), 0u8..6).prop_map(|(slot, p)| Op::Domain { slot, p }),
        1 => slot.clone().prop_map(|slot| Op::DeleteDomain { slot }),
        4 => (slot.clone(), any::<bool>(), any::<bool>(), 0u8..3, 0u8..4, 0u8..3)
            .prop_map(|(slot, php, single, active, files, aliases)| Op::Site { slot, php, single, active, files, aliases }),
        1 => (0u8..3).prop_map(|mb| Op::SiteDisk { mb }),
        1 => (1u8..4).prop_map(|days| Op::Versions { days }),
        1 => slot.clone().prop_map(|slot| Op::DeleteSite { slot }),
        2 => (slot.clone(), 0u8..3, any::<bool>())
            .prop_map(|(slot, n, enabled)| Op::Mailbox { slot, n, enabled }),
        1 => (slot.clone(), 0u8..3).prop_map(|(slot, n)| Op::DeleteMailbox { slot, n }),
        2 => (slot.clone(), 0u8..3, 0u8..3).prop_map(|(slot, n, to)| Op::Alias { slot, n, to }),
        2 => (slot.clone(), 0u8..3, any::<u8>()).prop_map(|(slot, n, ip)| Op::Record { slot, n, ip }),
        1 => (slot.clone(), 0u8..3).prop_map(|(slot, n)| Op::DeleteRecord { slot, n }),
        1 => (slot.clone(), any::<u8>()).prop_map(|(slot, quota)| Op::Ftp { slot, quota }),
        1 => (0u8..3).prop_map(|n| Op::Database { n }),
        2 => (slot.clone(), any::<bool>(), any::<u8>())
            .prop_map(|(slot, dkim, v)| Op::Secret { slot, dkim, v }),
        1 => (slot.clone(), any::<bool>()).prop_map(|(slot, dkim)| Op::DeleteSecret { slot, dkim }),
        1 => (0u8..9, 0u8..3).prop_map(|(server, rank)| Op::Rank { server, rank }),
        3 => (0u8..9, 0u8..4).prop_map(|(server, h)| Op::Health { server, h }),
        1 => (0u8..9, 0u8..3).prop_map(|(server, port)| Op::Port { server, port }),
        1 => Just(Op::Flush),
        2 => (0u8..4).prop_map(|holder| Op::MailWriter { holder }),
    ]
}

use super::feed_model::FeedModel as Truth;

const PLACEMENTS: [&[(Role, Id)]; 6] = [
    &[],
    &[
        (Role::Web, 1),
        (Role::Dns, 3),
        (Role::Mail, 4),
        (Role::Files, 5),
    ],
    &[(Role::Web, 2), (Role::Dns, 3)],
    &[(Role::Web, 1)],
    &[(Role::Dns, 3), (Role::Mail, 4)],
    &[(Role::Web, 2), (Role::Dns, 3), (Role::Files, 5)],
];

/// The account owning every domain (an id no base object has).
const OWNER: Id = 900;

fn domain_id(slot: u8) -> Id {
    1000 + Id::from(slot)
}

fn name(slot: u8) -> String {
    // Slot 5 is the platform's own domain: the servers' host names
    // (`*.hosting.example`) and the mail cluster's client names
    // (`imap.mail.hosting.example` …, following its writer) live in its zone.
    if slot == 5 {
        return "hosting.example".into();
    }
    format!("d{slot}.example")
}

/// Apply one change to the store or to the inputs of `inputs`.
fn apply(truth: &mut Truth, inputs: &mut World, op: &Op) {
    let d = |slot: u8| domain_id(slot);
    match *op {
        Op::Domain { slot, p } => {
            let mut dom = domain(d(slot), &name(slot), PLACEMENTS[usize::from(p)]);
            dom.data.customer = OWNER;
            truth.put(dom)
        }
        Op::DeleteDomain { slot } => truth.delete(d(slot)),
        Op::Site {
            slot,
            php,
            single,
            active,
            files,
            aliases,
        } if truth.has(d(slot)) => {
            let mode = if single {
                PlacementMode::Single
            } else {
                PlacementMode::All
            };
            let active = [None, Some(11), Some(12)][usize::from(active)];
            let mut s = site(2000 + d(slot), d(slot), mode, active);
            let alias =
                |a: &str| model::DomainName::new(&format!("{a}.{}", name(slot))).expect("alias");
            s.data.aliases = match aliases {
                0 => vec![],
                1 => vec![alias("www")],
                _ => vec![alias("www"), alias("blog")],
            };
            s.meta.parent = Some(d(slot));
            s.data.php = php;
            s.data.files = site_files(2000 + d(slot), files);
            truth.put(s);
        }
        Op::SiteDisk { mb } => {
            let limits = model::limits::LimitOverrides {
                site_disk_mb: Some(u64::from(mb) * 100),
                ..Default::default()
            };
            truth.put(stored(
                OWNER,
                "acme",
                None,
                Account {
                    name: Slug::new("acme").expect("slug"),
                    kind: AccountKind::Customer,
                    display_name: String::new(),
                    email: None,
                    reseller: None,
                    default_clusters: Default::default(),
                    password_hash: None,
                    disabled: false,
                    db_quota_mb: None,
                    plan: None,
                    limits,
                    may_choose_clusters: false,
                },
            ));
        }
        Op::Versions { days } => inputs.site_versions_days = u32::from(days) * 7,
        Op::DeleteSite { slot } => truth.delete(2000 + d(slot)),
        Op::Mailbox { slot, n, enabled } if truth.has(d(slot)) => truth.put(stored(
            3000 + d(slot) * 10 + Id::from(n),
            &format!("m{n}@{}", name(slot)),
            Some(d(slot)),
            Mailbox {
                domain: d(slot),
                local_part: LocalPart::new(&format!("m{n}")).expect("local"),
                password_hash: format!("$argon2id${n}"),
                quota_mb: 0,
                display_name: String::new(),
                enabled,
            },
        )),
        Op::DeleteMailbox { slot, n } => truth.delete(3000 + d(slot) * 10 + Id::from(n)),
        Op::Alias { slot, n, to } if truth.has(d(slot)) => truth.put(stored(
            5000 + d(slot) * 10 + Id::from(n),
            &format!("a{n}@{}", name(slot)),
            Some(d(slot)),
            MailAlias {
                domain: d(slot),
                local_part: LocalPart::new(&format!("a{n}")).expect("local"),
                destinations: vec![EmailAddress::new(&format!("m{to}@x.example")).expect("addr")],
            },
        )),
        Op::Record { slot, n, ip } if truth.has(d(slot)) => truth.put(stored(
            7000 + d(slot) * 10 + Id::from(n),
            &format!("r{n}.{}", name(slot)),
            Some(d(slot)),
            DnsRecord {
                domain: d(slot),
                name: model::dns::RecordName::new(&format!("r{n}")).expect("name"),
                ttl: None,
                data: model::dns::RecordData::A {
                    address: std::net::Ipv4Addr::new(192, 0, 2, ip),
                },
            },
        )),
        Op::DeleteRecord { slot, n } => truth.delete(7000 + d(slot) * 10 + Id::from(n)),
        Op::Ftp { slot, quota } if truth.has(d(slot)) => truth.put(stored(
            9000 + d(slot),
            &format!("ftp{slot}"),
            Some(d(slot)),
            FtpAccount {
                domain: d(slot),
                username: FtpUsername::new(&format!("ftp{slot}")).expect("user"),
                password_hash: "$argon2id$f".into(),
                home: RelPath::root(),
                quota_mb: u64::from(quota),
            },
        )),
        Op::Database { n } => truth.put(stored(
            600 + Id::from(n),
            &format!("db{n}"),
            None,
            Database {
                customer: 1,
                name: DbIdent::new(&format!("db{n}")).expect("ident"),
                engine: DbEngine::Mariadb,
                cluster: 6,
                domain: None,
                restore_from: None,
            },
        )),
        Op::Secret { slot, dkim, v } => {
            let (purpose, base) = match (dkim, v % 4) {
                (true, _) => (SecretPurpose::Dkim, 100_000),
                // A pending ACME HTTP-01 challenge (issue 17): web configs only.
                (false, 3) => (SecretPurpose::AcmeChallenge, 120_000),
                (false, _) => (SecretPurpose::SiteCert, 110_000),
            };
            let public = match purpose {
                SecretPurpose::AcmeChallenge => format!(
                    r#"[{{"name":"{}","token":"t{v}","key_authorization":"t{v}.k"}}]"#,
                    name(slot)
                ),
                _ => format!("PUB{v}"),
            };
            truth.put(secret(
                base + d(slot),
                purpose,
                &name(slot),
                &public,
                &format!("KEY{v}"),
            ));
        }
        Op::DeleteSecret { slot, dkim } => {
            truth.delete(if dkim { 100_000 } else { 110_000 } + d(slot));
            if !dkim {
                truth.delete(120_000 + d(slot));
            }
        }
        Op::Rank { server, rank } => {
            let id = SERVERS[usize::from(server)];
            if let Some(mut s) = inputs.servers.get(id).cloned() {
                s.data.rank = u16::from(rank);
                inputs.servers.upsert(s.clone());
                truth.put(s);
            }
        }
        Op::Health { server, h } => {
            let h = [Health::Unknown, Health::Up, Health::Suspect, Health::Down][usize::from(h)];
            inputs.health.insert(SERVERS[usize::from(server)], h);
        }
        Op::Port { server, port } => {
            inputs
                .service_ports
                .insert(SERVERS[usize::from(server)], 10_000 + u16::from(port));
        }
        Op::Flush => inputs.mail_flush += 1,
        Op::MailWriter { holder } => {
            if let Some(mut c) = inputs.clusters.get(4).cloned() {
                let epoch = c.data.mail_writer.map_or(0, |w| w.epoch) + 1;
                c.data.mail_writer = match holder {
                    0 => None,
                    h => Some(model::entity::MailWriterState {
                        holder: [None, Some(31), Some(32)][usize::from(h - 1)],
                        epoch,
                        not_before: i64::try_from(epoch).unwrap_or_default(),
                        previous: None,
                    }),
                };
                inputs.clusters.upsert(c.clone());
                truth.put(c);
            }
        }
        // A child of a domain that does not exist: the store refuses it.
        _ => {}
    }
}

/// Copy the inputs that are not stored from `from` into `to`.
fn copy_inputs(from: &World, to: &mut World) {
    to.health = from.health.clone();
    to.service_ports = from.service_ports.clone();
    to.mail_flush = from.mail_flush;
    to.db_trash_days = from.db_trash_days;
    to.site_versions_days = from.site_versions_days;
}

/// A site's file settings of variant `v` ([`Op::Site`]'s `files`).
fn site_files(site: Id, v: u8) -> SiteFiles {
    let path = |p: &str| SitePath::new(p).expect("path");
    let restore = |n: u64, state: RestoreState| SiteRestore {
        id: model::sitefiles::restore_id(site, n),
        path: path("wp-content/uploads/a.jpg"),
        at: None,
        requested_at: 1,
        state,
        message: String::new(),
    };
    let mut f = SiteFiles::default();
    if v == 1 || v == 3 {
        f.keep = vec![path("wp-content/uploads")];
        f.local = vec![path("wp-content/cache")];
    }
    if v >= 2 {
        f.restores.push(restore(1, RestoreState::Pending));
    }
    if v == 3 {
        f.restores.push(restore(2, RestoreState::Ok));
    }
    f
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn incremental_builds_equal_full_builds(steps in prop::collection::vec(prop::collection::vec(op(), 1..4), 1..25)) {
        // The base: the unit tests' clusters, servers and TSIG key, stored.
        let base = world();
        let mut truth = Truth::default();
        for c in base.clusters.iter() {
            let mut c = c.clone();
            if c.data.role == model::Role::Mail {
                c.data.hostname = Some(model::DomainName::new("mail.hosting.example").expect("name"));
            }
            truth.put(c);
        }
        for s in base.servers.iter() { truth.put(s.clone()); }
        for s in base.secrets.iter().filter(|s| s.data.purpose == SecretPurpose::Tsig) {
            truth.put(s.clone());
        }
        let mut inputs = World::from_feed(&truth.everything()).expect("feed");
        inputs.db_trash_days = 7;
        inputs.site_versions_days = 7;
        let mut inc = Incremental::new(World::from_feed(&truth.feed()).expect("feed"));
        let mut serials = ZoneSerials::default();
        copy_inputs(&inputs, &mut inc.world);
        // Every server's last config, kept from the passes as the hub keeps them.
        let mut built = std::collections::BTreeMap::new();
        inc.build(super::Dirty::default(), &mut serials, TODAY).fold_into(&mut built);
        for batch in &steps {
            for op in batch {
                apply(&mut truth, &mut inputs, op);
            }
            let feed = truth.feed();
            let dirty = inc.apply(&feed).expect("apply");
            copy_inputs(&inputs, &mut inc.world);
            inc.build(dirty, &mut serials, TODAY).fold_into(&mut built);

            let mut scratch = World::from_feed(&truth.everything()).expect("feed");
            copy_inputs(&inputs, &mut scratch);
            let full = build_all(&scratch, &mut serials.clone(), TODAY);
            prop_assert_eq!(built.keys().collect::<Vec<_>>(), full.keys().collect::<Vec<_>>());
            for (id, b) in &full {
                prop_assert_eq!(built.get(id), Some(b), "server {} differs after {:?}", id, batch);
            }
            // The active sites per server, kept by the world's index, equal a count
            // of every site (what placement reads after each build).
            let mut counted = std::collections::HashMap::new();
            for s in scratch.sites.iter() {
                if let Some(id) = s.data.active_server {
                    *counted.entry(id).or_insert(0u32) += 1;
                }
            }
            prop_assert_eq!(inc.world.active_sites(), counted);
        }
    }
}
