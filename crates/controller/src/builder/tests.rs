//! Unit and snapshot tests of the config builder (full builds).

use super::roles::mail_limits_for;
use super::*;
use model::entity::{
    Cluster, Database, DbUser, DnsRecord, Domain, FtpAccount, MailAlias, Secret, SecretPurpose,
    Server, Site,
};
use model::entity::{Mailbox, Ttls};
use model::{CountryCode, DbEngine, DbIdent, DomainName, FtpUsername, LocalPart, RelPath};
use model::{EmailAddress, Slug};
use model::{PlacementMode, Role};
use proto::agent_v1::{DesiredConfig, CONFIG_FORMAT};
use proto::agent_v1::{WebConfig, ZoneAssignment};
use scheduler::Health;
use store::Meta;
use store::Stored;
use time::OffsetDateTime;

pub(super) fn stored<T>(id: Id, name: &str, parent: Option<Id>, data: T) -> Stored<T> {
    let t = OffsetDateTime::UNIX_EPOCH;
    Stored {
        meta: Meta {
            id,
            name: name.to_owned(),
            owner: None,
            reseller: None,
            parent,
            created_rev: 1,
            updated_rev: 1,
            created_at: t,
            updated_at: t,
        },
        data,
    }
}

pub(super) fn cluster(id: Id, name: &str, role: Role) -> Stored<Cluster> {
    stored(
        id,
        name,
        None,
        Cluster {
            name: Slug::new(name).unwrap(),
            role,
            description: String::new(),
            is_default: false,
            ttls: Ttls::default(),
            external_secondaries: Vec::new(),
            mail_writer: None,
            hostname: None,
        },
    )
}

pub(super) fn server(
    id: Id,
    name: &str,
    role: Role,
    cluster: Id,
    rank: u16,
    ip: &str,
) -> Stored<Server> {
    stored(
        id,
        name,
        Some(cluster),
        Server {
            name: Slug::new(name).unwrap(),
            role,
            cluster,
            rank,
            hostname: DomainName::new(&format!("{name}.hosting.example")).unwrap(),
            addresses: vec![ip.parse().unwrap()],
            region: String::new(),
            country: CountryCode::new("DE").unwrap(),
            hardware: String::new(),
            drained: false,
            agent: None,
        },
    )
}

pub(super) fn domain(id: Id, name: &str, placements: &[(Role, Id)]) -> Stored<Domain> {
    stored(
        id,
        name,
        None,
        Domain {
            name: DomainName::new(name).unwrap(),
            customer: 1,
            placements: placements.iter().copied().collect(),
        },
    )
}

pub(super) fn site(id: Id, domain: Id, mode: PlacementMode, active: Option<Id>) -> Stored<Site> {
    stored(
        id,
        "",
        Some(domain),
        Site {
            web: Default::default(),
            domain,
            aliases: vec![],
            php: true,
            mode,
            https_redirect: false,
            active_server: active,
            deployment: None,
            previous_deployments: Vec::new(),
            files: Default::default(),
            cron: Vec::new(),
            cron_next_id: 0,
            cron_holder: None,
        },
    )
}

/// Two web clusters (2 + 1 servers), DNS and mail primary + secondary, files, db.
pub(super) fn world() -> World {
    let web = [
        (Role::Web, 1),
        (Role::Dns, 3),
        (Role::Mail, 4),
        (Role::Files, 5),
    ];
    World {
        clusters: vec![
            cluster(1, "web-eu", Role::Web),
            cluster(2, "web-us", Role::Web),
            cluster(3, "dns", Role::Dns),
            cluster(4, "mail", Role::Mail),
            cluster(5, "files", Role::Files),
            cluster(6, "db", Role::Db),
        ]
        .into(),
        servers: vec![
            server(11, "web-1", Role::Web, 1, 0, "127.0.0.11"),
            server(12, "web-2", Role::Web, 1, 1, "127.0.0.12"),
            server(13, "web-3", Role::Web, 2, 0, "127.0.0.13"),
            server(22, "ns2", Role::Dns, 3, 1, "127.0.0.22"),
            server(21, "ns1", Role::Dns, 3, 0, "127.0.0.21"),
            server(31, "mx1", Role::Mail, 4, 0, "127.0.0.31"),
            server(32, "mx2", Role::Mail, 4, 1, "127.0.0.32"),
            server(41, "files-1", Role::Files, 5, 0, "127.0.0.41"),
            server(51, "db-1", Role::Db, 6, 0, "127.0.0.51"),
        ]
        .into(),
        domains: vec![
            domain(100, "b.example", &web),
            domain(101, "a.example", &web),
            domain(102, "us.example", &[(Role::Web, 2)]),
        ]
        .into(),
        sites: vec![
            site(200, 100, PlacementMode::Single, Some(12)),
            site(201, 101, PlacementMode::All, None),
            site(202, 102, PlacementMode::Single, Some(13)),
        ]
        .into(),
        mailboxes: vec![stored(
            300,
            "info@a.example",
            Some(101),
            Mailbox {
                domain: 101,
                local_part: LocalPart::new("info").unwrap(),
                password_hash: "$argon2id$x".into(),
                quota_mb: 0,
                display_name: String::new(),
                enabled: true,
            },
        )]
        .into(),
        aliases: vec![stored(
            301,
            "sales@a.example",
            Some(101),
            MailAlias {
                domain: 101,
                local_part: LocalPart::new("sales").unwrap(),
                destinations: vec![EmailAddress::new("info@a.example").unwrap()],
            },
        )]
        .into(),
        ftp_accounts: vec![stored(
            400,
            "a-ftp",
            Some(101),
            FtpAccount {
                domain: 101,
                username: FtpUsername::new("a-ftp").unwrap(),
                password_hash: "$argon2id$y".into(),
                home: RelPath::root(),
                quota_mb: 100,
            },
        )]
        .into(),
        databases: vec![stored(
            500,
            "shop",
            None,
            Database {
                customer: 1,
                name: DbIdent::new("shop").unwrap(),
                engine: DbEngine::Mariadb,
                cluster: 6,
                domain: None,
                restore_from: None,
            },
        )]
        .into(),
        db_users: vec![stored(
            501,
            "shopuser",
            None,
            DbUser {
                customer: 1,
                name: DbIdent::new("shopuser").unwrap(),
                engine: DbEngine::Mariadb,
                cluster: 6,
                password_verifier: "*ABC".into(),
                databases: vec![500, 999],
            },
        )]
        .into(),
        dns_records: vec![].into(),
        secrets: vec![
            secret(600, SecretPurpose::SiteCert, "a.example", "CERT-A", "KEY-A"),
            secret(601, SecretPurpose::ServerCert, "mx1", "CERT-MX1", "KEY-MX1"),
            secret(
                602,
                SecretPurpose::ServerCert,
                "files-1",
                "CERT-F1",
                "KEY-F1",
            ),
            secret(603, SecretPurpose::Dkim, "a.example", "PUBA", "DKIM-KEY-A"),
            secret(
                605,
                SecretPurpose::DkimRsa,
                "a.example",
                "RSAPUBA",
                "DKIM-RSA-KEY-A",
            ),
            secret(
                604,
                SecretPurpose::Tsig,
                "dns",
                "xfr.dns.hostplane.",
                "c2VjcmV0",
            ),
        ]
        .into(),
        account_names: HashMap::from([(1, "acme".to_owned())]),
        service_ports: HashMap::from([(21, 10053), (31, 10025)]),
        mail_flush: 0,
        db_trash_days: 7,
        site_versions_days: 7,
        db_quotas: HashMap::from([(1, 500)]),
        accounts: Objects::default(),
        plans: Objects::default(),
        account_limits: HashMap::new(),
        default_plan: model::limits::Limits::default(),
        health: HashMap::new(),
        ..World::default()
    }
}

pub(super) fn secret(
    id: Id,
    purpose: SecretPurpose,
    subject: &str,
    public: &str,
    private: &str,
) -> Stored<Secret> {
    stored(
        id,
        &purpose.store_name(subject),
        None,
        Secret {
            purpose,
            subject: subject.into(),
            public: public.into(),
            private: private.into(),
            algorithm: match purpose {
                SecretPurpose::Dkim => "ed25519-sha256".into(),
                SecretPurpose::DkimRsa => "rsa-sha256".into(),
                SecretPurpose::Tsig => "hmac-sha256".into(),
                _ => "ecdsa-p256".into(),
            },
            not_after: None,
            uploaded: false,
            names: vec![subject.into()],
        },
    )
}

pub(super) const TODAY: u32 = 20_261_125;

fn build(world: &World) -> BTreeMap<Id, Built> {
    build_all(world, &mut ZoneSerials::default(), TODAY)
}

fn documents(world: &World) -> BTreeMap<String, DesiredConfig> {
    build(world)
        .into_values()
        .map(|b| {
            (
                b.server.name.clone(),
                DesiredConfig {
                    format: CONFIG_FORMAT,
                    revision: 1,
                    server: b.server,
                    role: b.role,
                },
            )
        })
        .collect()
}

#[test]
fn one_rsa_dkim_key_per_owning_account() {
    let mut w = world();
    for d in &mut w.domains {
        d.meta.owner = Some(1);
    }
    let mail = w
        .domains
        .iter()
        .filter(|d| d.data.placements.contains_key(&Role::Mail))
        .count();
    assert!(mail >= 2, "the fixture has {mail} mail domains");
    let wanted = crate::keys::wanted(&w);
    let rsa: Vec<&str> = wanted
        .iter()
        .filter(|x| x.purpose == SecretPurpose::DkimRsa)
        .map(|x| x.subject.as_str())
        .collect();
    assert_eq!(rsa, ["account-1"]);
    let ed25519 = wanted
        .iter()
        .filter(|x| x.purpose == SecretPurpose::Dkim)
        .count();
    assert_eq!(ed25519, mail);
}

#[test]
fn mail_limits_follow_the_owners_plan_and_overrides() {
    use model::entity::{Account, Plan};
    use model::limits::{LimitOverrides, Limits};
    use model::AccountKind;
    let mut w = world();
    let domain = w.domains[0].clone();
    // No account record: the default plan's values.
    w.set_limits(Limits::default());
    let l = mail_limits_for(&w, &domain).expect("limits");
    assert_eq!(l.messages_per_hour_per_mailbox, Some(1_000));
    assert_eq!(l.recipients_per_message, Some(100));
    // A plan with 50/h, and an override of the recipients.
    w.plans = vec![stored(
        900,
        "small",
        None,
        Plan {
            name: model::Slug::new("small").expect("slug"),
            description: String::new(),
            limits: Limits {
                mail_messages_per_hour: 50,
                ..Limits::default()
            },
        },
    )]
    .into();
    w.accounts = vec![stored(
        domain.data.customer,
        "acme",
        None,
        Account {
            name: model::Slug::new("acme").expect("slug"),
            kind: AccountKind::Customer,
            display_name: String::new(),
            email: None,
            reseller: None,
            default_clusters: BTreeMap::new(),
            password_hash: None,
            disabled: false,
            db_quota_mb: None,
            plan: Some(900),
            limits: LimitOverrides {
                mail_recipients_per_message: Some(7),
                ..LimitOverrides::default()
            },
            may_choose_clusters: false,
        },
    )]
    .into();
    w.set_limits(Limits::default());
    let l = mail_limits_for(&w, &domain).expect("limits");
    assert_eq!(l.messages_per_hour_per_mailbox, Some(50));
    assert_eq!(l.messages_per_hour_per_domain, Some(50));
    assert_eq!(l.recipients_per_message, Some(7));
}

#[test]
fn every_role_snapshot() {
    insta::assert_json_snapshot!(documents(&world()));
}

#[test]
fn per_server_parts() {
    let docs = documents(&world());
    let web = |name: &str| match &docs[name].role {
        RoleConfig::Web(w) => w.clone(),
        other => panic!("{other:?}"),
    };
    let (w1, w2, w3) = (web("web-1"), web("web-2"), web("web-3"));
    let names = |w: &WebConfig| w.sites.iter().map(|s| s.domain.clone()).collect::<Vec<_>>();
    assert_eq!(names(&w1), vec!["a.example", "b.example"]);
    assert_eq!(names(&w3), vec!["us.example"]);
    // `all` is active everywhere; `single` only on its server.
    assert!(w1.sites[0].active && w2.sites[0].active);
    assert!(!w1.sites[1].active && w2.sites[1].active);
    assert!(w3.sites[0].active);
    // The DNS primary is the lowest rank, whatever the listing order.
    let zone = |name: &str| match &docs[name].role {
        RoleConfig::Dns(d) => d.zones.clone(),
        other => panic!("{other:?}"),
    };
    assert!(zone("ns1").iter().all(|z| z.primary));
    assert!(zone("ns2").iter().all(|z| !z.primary));
    assert_eq!(zone("ns2")[0].primary_addresses, vec!["127.0.0.21"]);
    assert_eq!(zone("ns1")[0].secondaries, vec!["127.0.0.22"]);
    // A user's grant on a missing database is dropped.
    match &docs["db-1"].role {
        RoleConfig::Db(d) => assert_eq!(d.users[0].databases, vec!["shop"]),
        other => panic!("{other:?}"),
    }
}

fn changed(before: &BTreeMap<Id, Built>, after: &BTreeMap<Id, Built>) -> Vec<Id> {
    before
        .iter()
        .filter(|(id, b)| after[id].content_hash() != b.content_hash())
        .map(|(id, _)| *id)
        .collect()
}

fn zones_of(built: &BTreeMap<Id, Built>, server: Id) -> Vec<ZoneAssignment> {
    match &built[&server].role {
        RoleConfig::Dns(d) => d.zones.clone(),
        other => panic!("{other:?}"),
    }
}

#[test]
fn hashes_change_only_for_affected_servers() {
    let mut serials = ZoneSerials::default();
    let before = build_all(&world(), &mut serials, TODAY);
    // Nothing changed: nothing changes, serials included.
    assert!(changed(&before, &build_all(&world(), &mut serials, TODAY)).is_empty());
    let mut w = world();
    // A site of web-us changes: only web-3 sees it (us.example has no DNS).
    w.sites[2].data.php = false;
    let after = build_all(&w, &mut serials, TODAY);
    assert_eq!(changed(&before, &after), vec![13]);
    // A failover of a single site changes both web-eu servers' parts and the
    // zone, so the DNS servers' configs.
    let mut w = world();
    w.sites[0].data.active_server = Some(11);
    let after = build_all(&w, &mut serials, TODAY);
    assert_eq!(changed(&before, &after), vec![11, 12, 21, 22]);
}

#[test]
fn dns_servers_carry_the_zones() {
    let mut serials = ZoneSerials::default();
    let built = build_all(&world(), &mut serials, TODAY);
    let (ns1, ns2) = (zones_of(&built, 21), zones_of(&built, 22));
    // Two domains and the cluster's catalog zone, listing them.
    assert_eq!(ns1.len(), 3);
    let catalog = ns1[2].zone.as_ref().unwrap();
    assert_eq!(ns1[2].domain, "catalog.dns.hostplane.invalid");
    assert!(ns1[2].primary && !ns2[2].primary);
    assert!(ns1[2].tsig.is_some());
    let ptrs: Vec<&str> = catalog
        .records
        .iter()
        .filter(|r| r.rtype == "PTR")
        .map(|r| r.data.as_str())
        .collect();
    assert_eq!(ptrs, ["a.example.", "b.example."]);
    for (a, b) in ns1.iter().zip(&ns2) {
        let (za, zb) = (a.zone.as_ref().unwrap(), b.zone.as_ref().unwrap());
        // Primary and secondary get the same content.
        assert_eq!(za, zb);
        assert_eq!(za.origin, a.domain);
        assert_eq!(za.serial, 2_026_112_500);
    }
    // b.example is `single` on web-2; a.example is `all` on web-1 and web-2.
    let addresses = |z: &ZoneAssignment, name: &str| -> Vec<String> {
        let zone = z.zone.as_ref().unwrap();
        zone.records
            .iter()
            .filter(|r| r.name == name && r.rtype == "A")
            .map(|r| r.data.clone())
            .collect()
    };
    assert_eq!(
        addresses(&ns1[0], "a.example"),
        ["127.0.0.11", "127.0.0.12"]
    );
    assert_eq!(addresses(&ns1[1], "b.example"), ["127.0.0.12"]);
    // A customer record lands in its zone.
    let mut w = world();
    w.dns_records.push(stored(
        600,
        "",
        Some(101),
        DnsRecord {
            domain: 101,
            name: model::dns::RecordName::new("_dmarc").unwrap(),
            ttl: None,
            data: model::dns::RecordData::Txt {
                text: "v=DMARC1; p=quarantine".into(),
            },
        },
    ));
    let after = build_all(&w, &mut serials, TODAY);
    let z = zones_of(&after, 21)[0].zone.clone().unwrap();
    assert!(z.records.iter().any(|r| r.name == "_dmarc.a.example"));
    assert_eq!(z.serial, 2_026_112_501);
    // b.example did not change: same serial.
    assert_eq!(
        zones_of(&after, 21)[1].zone.as_ref().unwrap().serial,
        2_026_112_500
    );
}

#[test]
fn the_catalog_follows_the_zones_and_carries_a_rotated_key() {
    let mut serials = ZoneSerials::default();
    let catalog = |b: &BTreeMap<Id, Built>| zones_of(b, 21).last().cloned().unwrap();
    let before = build_all(&world(), &mut serials, TODAY);
    let first = catalog(&before).zone.unwrap();
    // A new DNS zone: the catalog lists it under a new serial.
    let mut w = world();
    w.domains.push(domain(103, "c.example", &[(Role::Dns, 3)]));
    // A name in the reserved catalog namespace is never served.
    w.domains
        .push(domain(104, "x.hostplane.invalid", &[(Role::Dns, 3)]));
    let after = build_all(&w, &mut serials, TODAY);
    let added = catalog(&after).zone.unwrap();
    assert_eq!(added.serial, first.serial + 1);
    assert!(added.records.iter().any(|r| r.data == "c.example."));
    assert!(!added
        .records
        .iter()
        .any(|r| r.data.contains("invalid.") && r.rtype == "PTR"));
    assert!(zones_of(&after, 21)
        .iter()
        .all(|z| z.domain != "x.hostplane.invalid"));
    // Removed again: a newer serial, without it.
    let back = build_all(&world(), &mut serials, TODAY);
    let removed = catalog(&back).zone.unwrap();
    assert_eq!(removed.serial, first.serial + 2);
    assert!(!removed.records.iter().any(|r| r.data == "c.example."));
    // A rotation's previous secret travels with the key of every zone.
    let mut w = world();
    let mut old = secret(
        605,
        SecretPurpose::TsigPrevious,
        "dns",
        "xfr.dns.hostplane.",
        "b2xk",
    );
    old.data.not_after = Some(1_900_000_000);
    w.secrets.push(old);
    let rotated = build_all(&w, &mut serials, TODAY);
    for z in zones_of(&rotated, 22) {
        let prev = z.tsig.unwrap().previous.unwrap();
        assert_eq!(
            (prev.secret.as_str(), prev.not_after),
            ("b2xk", 1_900_000_000)
        );
    }
    // Without a TSIG key there is no catalog (never transferable unsigned).
    let mut w = world();
    w.secrets.retain(|s| s.data.purpose != SecretPurpose::Tsig);
    let unkeyed = build_all(&w, &mut serials, TODAY);
    assert!(zones_of(&unkeyed, 21)
        .iter()
        .all(|z| !z.domain.starts_with("catalog.")));
}

#[test]
fn web_health_reaches_only_the_dns_servers() {
    let mut serials = ZoneSerials::default();
    let mut w = world();
    w.health = w.servers.iter().map(|s| (s.meta.id, Health::Up)).collect();
    let before = build_all(&w, &mut serials, TODAY);
    // web-1 goes down: a.example (`all` on web-1, web-2) loses its address.
    w.health.insert(11, Health::Down);
    let after = build_all(&w, &mut serials, TODAY);
    assert_eq!(changed(&before, &after), vec![21, 22]);
    let zone = zones_of(&after, 22)[0].zone.clone().unwrap();
    assert_eq!(zone.origin, "a.example");
    assert_eq!(zone.serial, 2_026_112_501);
    let apex: Vec<&str> = zone
        .records
        .iter()
        .filter(|r| r.name == "a.example" && r.rtype == "A")
        .map(|r| r.data.as_str())
        .collect();
    assert_eq!(apex, ["127.0.0.12"]);
    // The health of a server no zone names changes nothing.
    w.health.insert(51, Health::Down);
    assert!(changed(&after, &build_all(&w, &mut serials, TODAY)).is_empty());
    // Back up: the address returns with yet another serial.
    w.health.insert(11, Health::Up);
    let back = build_all(&w, &mut serials, TODAY);
    assert_eq!(changed(&after, &back), vec![21, 22]);
    assert_eq!(
        zones_of(&back, 21)[0].zone.as_ref().unwrap().serial,
        2_026_112_502
    );
    // The next day a change takes the date serial.
    w.health.insert(12, Health::Down);
    let next_day = build_all(&w, &mut serials, TODAY + 1);
    assert_eq!(
        zones_of(&next_day, 21)[0].zone.as_ref().unwrap().serial,
        2_026_112_600
    );
}

/// A feed object of `obj`, as the store would bring it.
pub(super) fn raw<T: model::entity::Object + serde::Serialize>(
    obj: &Stored<T>,
) -> store::RawObject {
    store::RawObject {
        kind: T::KIND,
        meta: obj.meta.clone(),
        data: serde_json::to_string(&obj.data).unwrap(),
    }
}

#[test]
fn incremental_builds_rebuild_only_the_affected_servers() {
    let mut serials = ZoneSerials::default();
    let mut inc = Incremental::new(world());
    let mut built = BTreeMap::new();
    let first = inc.build(Dirty::default(), &mut serials, TODAY);
    first.fold_into(&mut built);
    assert_eq!(first.rebuilt.len(), 9, "the first build is a full one");
    assert!(inc
        .build(Dirty::default(), &mut serials, TODAY)
        .rebuilt
        .is_empty());

    // Health reaches the DNS servers only (through the zones).
    inc.world.health = inc
        .world
        .servers
        .iter()
        .map(|s| (s.meta.id, Health::Up))
        .collect();
    inc.build(Dirty::default(), &mut serials, TODAY)
        .fold_into(&mut built);
    inc.world.health.insert(11, Health::Down);
    let pass = inc.build(Dirty::default(), &mut serials, TODAY);
    pass.fold_into(&mut built);
    assert_eq!(
        pass.rebuilt.keys().copied().collect::<Vec<_>>(),
        vec![21, 22]
    );

    // A site's change: its web cluster and files server; its zone did not change.
    let mut s = inc.world.sites.get(201).unwrap().clone();
    s.data.php = !s.data.php;
    s.meta.updated_rev = 2;
    let feed = store::Feed {
        revision: 2,
        changed: vec![raw(&s)],
        deleted: Vec::new(),
    };
    let dirty = inc.apply(&feed).unwrap();
    let pass = inc.build(dirty, &mut serials, TODAY);
    pass.fold_into(&mut built);
    assert_eq!(
        pass.rebuilt.keys().copied().collect::<Vec<_>>(),
        vec![11, 12, 41]
    );
    let RoleConfig::Web(web) = &pass.rebuilt[&11].role else {
        panic!("web-1 is a web server");
    };
    assert!(web
        .sites
        .iter()
        .any(|x| x.domain == "a.example" && x.php == s.data.php));

    // Deleting a domain (and by cascade its site) drops it from the web servers.
    let feed = store::Feed {
        revision: 3,
        changed: Vec::new(),
        deleted: vec![
            store::Tombstone {
                kind: model::entity::Kind::Domain,
                id: 101,
                rev: 3,
            },
            store::Tombstone {
                kind: model::entity::Kind::Site,
                id: 201,
                rev: 3,
            },
        ],
    };
    let dirty = inc.apply(&feed).unwrap();
    let pass = inc.build(dirty, &mut serials, TODAY);
    pass.fold_into(&mut built);
    assert!(pass.rebuilt.contains_key(&11) && pass.rebuilt.contains_key(&21));
    assert!(
        !pass.rebuilt.contains_key(&51),
        "the db server is not touched"
    );
    assert_eq!(built, build_all(&inc.world, &mut serials.clone(), TODAY));
}

#[test]
fn a_deleted_certificate_leaves_the_tls_cache() {
    let mut serials = ZoneSerials::default();
    let mut inc = Incremental::new(world());
    inc.build(Dirty::default(), &mut serials, TODAY);
    let cached = inc.tls.len();
    assert!(cached >= 2, "a.example's and mx1's certificates: {cached}");

    // a.example's certificate is deleted (its site went): the next build no longer
    // carries it and the cache forgets it, whatever the number of other secrets
    let feed = store::Feed {
        revision: 2,
        changed: Vec::new(),
        deleted: vec![store::Tombstone {
            kind: model::entity::Kind::Secret,
            id: 600,
            rev: 2,
        }],
    };
    let dirty = inc.apply(&feed).unwrap();
    inc.build(dirty, &mut serials, TODAY);
    assert_eq!(inc.tls.len(), cached - 1);

    // a reload keeps only the world's secrets
    let mut w = world();
    w.secrets
        .retain(|s| s.data.purpose != SecretPurpose::ServerCert);
    inc.reset(w);
    assert_eq!(
        inc.tls.len(),
        0,
        "only the deleted and server certs were cached"
    );
}

/// ACME HTTP-01 (issue 17): a pending challenge secret of a site reaches every web
/// server of the site's cluster, and no other; a bad secret adds nothing; removed,
/// it is gone from the configs.
#[test]
fn acme_challenges_reach_the_sites_web_cluster_only() {
    let mut w = world();
    let tokens = r#"[{"name":"a.example","token":"t1","key_authorization":"t1.k"}]"#;
    w.upsert(Obj::Secret(secret(
        700,
        SecretPurpose::AcmeChallenge,
        "a.example",
        tokens,
        "",
    )));
    w.upsert(Obj::Secret(secret(
        701,
        SecretPurpose::AcmeChallenge,
        "us.example",
        "not json",
        "",
    )));
    let docs = documents(&w);
    let web = |docs: &BTreeMap<String, DesiredConfig>, name: &str| match &docs[name].role {
        RoleConfig::Web(w) => w.acme_challenges.clone(),
        other => panic!("{other:?}"),
    };
    for s in ["web-1", "web-2"] {
        let c = web(&docs, s);
        assert_eq!(c.len(), 1, "{s}");
        assert_eq!(
            (c[0].token.as_str(), c[0].key_authorization.as_str()),
            ("t1", "t1.k")
        );
        assert_eq!(c[0].name, "a.example");
    }
    assert!(web(&docs, "web-3").is_empty(), "another cluster's site");
    w.remove(model::entity::Kind::Secret, 700);
    assert!(web(&documents(&w), "web-1").is_empty());
}
