//! Issue 16: a mail cluster's client-facing names. With a host name
//! (`mail.hosting.example`), the platform's zone (`hosting.example`) publishes
//! the servers' host names and `imap.`/`pop.`/`smtp.mail.hosting.example` at
//! the writer's addresses, moving with the writer (rebuilt incrementally exactly
//! like a full build); the mail domains' SRV records and their sites' autoconfig
//! names point at those names; every mail server's certificate covers them.

use std::collections::BTreeMap;

use model::entity::SecretPurpose;
use model::{DomainName, Id, Role};
use proto::agent_v1::RoleConfig;

use super::tests::{domain, raw, world, TODAY};
use super::{build_all, Built, Dirty, Incremental, World};
use crate::zones::ZoneSerials;

/// The test world with mail cluster 4 named `mail.hosting.example` and the
/// platform domain `hosting.example` (id 103) on the DNS cluster.
fn platform_world() -> World {
    let mut w = world();
    let mut mail = w.clusters.get(4).unwrap().clone();
    mail.data.hostname = Some(DomainName::new("mail.hosting.example").unwrap());
    w.clusters.upsert(mail);
    w.domains
        .upsert(domain(103, "hosting.example", &[(Role::Dns, 3)]));
    w
}

/// `(name, type, data)` of the zone of `domain` on ns1.
fn zone(built: &BTreeMap<Id, Built>, domain: &str) -> Vec<(String, String, String)> {
    let RoleConfig::Dns(dns) = &built[&21].role else {
        panic!("a DNS server");
    };
    dns.zones
        .iter()
        .find(|z| z.domain == domain)
        .and_then(|z| z.zone.clone())
        .unwrap()
        .records
        .iter()
        .map(|r| (r.name.clone(), r.rtype.clone(), r.data.clone()))
        .collect()
}

/// The data of the `rtype` records at `name`.
fn at(zone: &[(String, String, String)], name: &str, rtype: &str) -> Vec<String> {
    zone.iter()
        .filter(|r| r.0 == name && r.1 == rtype)
        .map(|r| r.2.clone())
        .collect()
}

#[test]
fn client_names_follow_the_writer_in_the_platform_zone() {
    let mut serials = ZoneSerials::default();
    let mut inc = Incremental::new(platform_world());
    let mut built = BTreeMap::new();
    inc.build(Dirty::default(), &mut serials, TODAY)
        .fold_into(&mut built);

    // The platform zone: every server's host name, and the client names at
    // the writer (the primary before any placement pass).
    let z = zone(&built, "hosting.example");
    for (host, ip) in [
        ("web-1.hosting.example", "127.0.0.11"),
        ("ns1.hosting.example", "127.0.0.21"),
        ("mx2.hosting.example", "127.0.0.32"),
        ("db-1.hosting.example", "127.0.0.51"),
    ] {
        assert_eq!(at(&z, host, "A"), [ip], "{host}");
    }
    for n in ["imap", "pop", "smtp"] {
        assert_eq!(
            at(&z, &format!("{n}.mail.hosting.example"), "A"),
            ["127.0.0.31"]
        );
    }
    // A mail domain's SRV records name the client names, not mx1.
    let a = zone(&built, "a.example");
    assert_eq!(
        at(&a, "_imaps._tcp.a.example", "SRV"),
        ["0 1 993 imap.mail.hosting.example."]
    );
    assert_eq!(
        at(&a, "_pop3s._tcp.a.example", "SRV"),
        ["0 1 995 pop.mail.hosting.example."]
    );
    assert_eq!(
        at(&a, "_submissions._tcp.a.example", "SRV"),
        ["0 1 465 smtp.mail.hosting.example."]
    );
    // … and no zone other than the platform's holds the platform's names.
    assert!(at(&a, "imap.mail.hosting.example", "A").is_empty());

    // mx1 fails over to mx2 (a placement pass): the platform zone's client
    // names move with the writer; the server names stay.
    let mut c = inc.world.clusters.get(4).unwrap().clone();
    c.data.mail_writer = Some(model::entity::MailWriterState {
        holder: Some(32),
        epoch: 2,
        not_before: 0,
        previous: Some(31),
    });
    c.meta.updated_rev = 2;
    let feed = store::Feed {
        revision: 2,
        changed: vec![raw(&c)],
        deleted: Vec::new(),
    };
    let dirty = inc.apply(&feed).unwrap();
    assert!(!dirty.everything);
    assert!(dirty.zones.contains(&103), "the platform zone is rebuilt");
    let pass = inc.build(dirty, &mut serials, TODAY);
    pass.fold_into(&mut built);
    let z2 = zone(&built, "hosting.example");
    for n in ["imap", "pop", "smtp"] {
        assert_eq!(
            at(&z2, &format!("{n}.mail.hosting.example"), "A"),
            ["127.0.0.32"]
        );
    }
    assert_eq!(at(&z2, "mx1.hosting.example", "A"), ["127.0.0.31"]);
    let serial = |z: &[(String, String, String)]| at(z, "hosting.example", "SOA");
    assert_ne!(serial(&z), serial(&z2), "a new serial");
    assert_eq!(built, build_all(&inc.world, &mut serials.clone(), TODAY));

    // The sites of the mail domains tell their clients the same names.
    let RoleConfig::Web(web) = &built[&11].role else {
        panic!("a web server");
    };
    let site = web.sites.iter().find(|s| s.domain == "a.example").unwrap();
    // (no submission secret made in this world: the route waits for it)
    assert!(site.mail.is_none());
}

#[test]
fn every_mail_servers_certificate_covers_the_client_names() {
    let world = platform_world();
    let certs: BTreeMap<String, Vec<String>> = crate::keys::wanted(&world)
        .into_iter()
        .filter(|w| w.purpose == SecretPurpose::ServerCert)
        .map(|w| (w.subject, w.names))
        .collect();
    for mx in ["mx1", "mx2"] {
        let names = &certs[mx];
        assert_eq!(names[0], format!("{mx}.hosting.example"), "subject first");
        for n in [
            "imap.mail.hosting.example",
            "pop.mail.hosting.example",
            "smtp.mail.hosting.example",
        ] {
            assert!(names.iter().any(|x| x == n), "{mx}: {names:?}");
        }
    }
    // Files servers keep their own names only.
    assert_eq!(certs["files-1"], ["files-1.hosting.example", "127.0.0.41"]);
}
