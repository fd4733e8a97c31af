//! Mail from sites (issue 15) in the built configs: a site's submission secret
//! and its mail cluster's endpoints in `WebSite.mail`, only the hash in
//! `MailDomain.site_login`, rebuilt incrementally like a full build.

use std::collections::BTreeMap;

use model::entity::SecretPurpose;
use model::Id;
use proto::agent_v1::RoleConfig;

use super::tests::{raw, secret, world, TODAY};
use super::{build_all, Built, Dirty, Incremental};
use crate::zones::ZoneSerials;

#[test]
fn a_sites_mail_secret_reaches_its_web_servers_and_its_hash_the_mail_servers() {
    let mut serials = ZoneSerials::default();
    let mut inc = Incremental::new(world());
    let mut built = BTreeMap::new();
    inc.build(Dirty::default(), &mut serials, TODAY)
        .fold_into(&mut built);
    let web_site = |b: &BTreeMap<Id, Built>, server: Id| {
        let RoleConfig::Web(web) = &b[&server].role else {
            panic!("a web server");
        };
        web.sites
            .iter()
            .find(|s| s.domain == "a.example")
            .map(|s| (**s).clone())
            .unwrap()
    };
    let mail_domain = |b: &BTreeMap<Id, Built>, server: Id| {
        let RoleConfig::Mail(mail) = &b[&server].role else {
            panic!("a mail server");
        };
        mail.domains
            .iter()
            .find(|d| d.domain == "a.example")
            .cloned()
            .unwrap()
    };
    // no secret made yet: no route, no login
    assert!(web_site(&built, 11).mail.is_none());
    assert!(mail_domain(&built, 31).site_login.is_none());

    // the key task stores the secret: web-1/2 get it with the mail cluster's
    // submission endpoints (primary first; mx1's SMTP is on 10025, so 10587),
    // mx1/mx2 only its hash
    let s = secret(
        610,
        SecretPurpose::SiteMail,
        "a.example",
        "$argon2id$HASH",
        "SECRET",
    );
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
        vec![11, 12, 31, 32]
    );
    let route = web_site(&built, 12).mail.unwrap();
    assert_eq!(route.secret, "SECRET");
    assert_eq!(route.submission, ["127.0.0.31:10587", "127.0.0.32:587"]);
    for mx in [31, 32] {
        let login = mail_domain(&built, mx).site_login.unwrap();
        assert_eq!(login.password_hash, "$argon2id$HASH");
    }
    let RoleConfig::Mail(mail) = &built[&31].role else {
        panic!("a mail server");
    };
    assert!(
        !serde_json::to_string(mail).unwrap().contains("SECRET"),
        "the secret itself never reaches a mail server"
    );

    // mx2 starts reporting its port: the sites routed to it follow
    inc.world.service_ports.insert(32, 10025);
    let pass = inc.build(Dirty::default(), &mut serials, TODAY);
    pass.fold_into(&mut built);
    assert_eq!(
        web_site(&built, 11).mail.unwrap().submission,
        ["127.0.0.31:10587", "127.0.0.32:10587"]
    );
    assert_eq!(built, build_all(&inc.world, &mut serials.clone(), TODAY));
    // and the full answer of the key task wants one secret per site with mail
    let wanted: Vec<String> = crate::keys::wanted(&inc.world)
        .into_iter()
        .filter(|w| w.purpose == SecretPurpose::SiteMail)
        .map(|w| w.subject)
        .collect();
    assert_eq!(wanted, ["b.example", "a.example"]);
}

/// The zone records of `domain` on DNS server `ns` as `(name, type, data)`.
fn records(built: &BTreeMap<Id, Built>, ns: Id, domain: &str) -> Vec<(String, String, String)> {
    let RoleConfig::Dns(dns) = &built[&ns].role else {
        panic!("a DNS server");
    };
    let zone = dns
        .zones
        .iter()
        .find(|z| z.domain == domain)
        .and_then(|z| z.zone.clone())
        .unwrap();
    zone.records
        .iter()
        .map(|r| (r.name.clone(), r.rtype.clone(), r.data.clone()))
        .collect()
}

fn mail_of(built: &BTreeMap<Id, Built>, server: Id) -> proto::agent_v1::MailConfig {
    let RoleConfig::Mail(mail) = &built[&server].role else {
        panic!("a mail server");
    };
    mail.clone()
}

/// Issue 16: the mail writer a placement pass stores on the mail cluster reaches
/// every server of it (who writes, whom the others relay to, the fencing epoch,
/// the replication peers, logins everywhere), the client names of its domains'
/// zones and its sites' mail client host — rebuilt incrementally (only the mail
/// cluster, its domains' web servers and the DNS servers), exactly like a full
/// build.
#[test]
fn a_mail_writer_move_reaches_the_cluster_its_zones_and_sites() {
    let mut serials = ZoneSerials::default();
    let mut inc = Incremental::new(world());
    let mut built = BTreeMap::new();
    inc.build(Dirty::default(), &mut serials, TODAY)
        .fold_into(&mut built);
    // Before any placement pass: the primary stores, nothing replicates.
    let mx1 = mail_of(&built, 31);
    assert!(mx1.writer.is_none());
    assert!(mx1.domains.iter().all(|d| d.primary));
    assert!(mx1.peers.iter().all(|p| p.replication.is_none()));
    let mx2 = mail_of(&built, 32);
    assert!(mx2
        .domains
        .iter()
        .all(|d| !d.primary && d.accounts.is_empty()));

    let mut revision = 1;
    let mut set_writer = |inc: &mut Incremental, holder: Option<Id>, epoch: u64| {
        let mut c = inc.world.clusters.get(4).unwrap().clone();
        c.data.mail_writer = Some(model::entity::MailWriterState {
            holder,
            epoch,
            not_before: 1_700_000_000 + i64::try_from(epoch).unwrap(),
            previous: None,
        });
        revision += 1;
        c.meta.updated_rev = revision;
        let feed = store::Feed {
            revision,
            changed: vec![raw(&c)],
            deleted: Vec::new(),
        };
        inc.apply(&feed).unwrap()
    };

    // The first pass makes mx1 the writer (epoch 1).
    let dirty = set_writer(&mut inc, Some(31), 1);
    assert!(
        !dirty.everything,
        "a writer move is not an infrastructure change"
    );
    let pass = inc.build(dirty, &mut serials, TODAY);
    pass.fold_into(&mut built);
    let mx1 = mail_of(&built, 31);
    let w = mx1.writer.clone().unwrap();
    assert_eq!((w.holder.as_deref(), w.epoch), (Some("mx1"), 1));
    assert_eq!(mx1.peers[0].server, "mx2");
    assert_eq!(mx1.peers[0].replication.as_deref(), Some("127.0.0.32:7445"));
    let mx2 = mail_of(&built, 32);
    assert_eq!(mx2.writer, mx1.writer, "every server sees the same writer");
    let a = |m: &proto::agent_v1::MailConfig| {
        m.domains
            .iter()
            .find(|d| d.domain == "a.example")
            .cloned()
            .unwrap()
    };
    assert!(a(&mx1).primary && !a(&mx2).primary);
    assert_eq!(a(&mx2).primary_smtp.as_deref(), Some("127.0.0.31:10025"));
    assert_eq!(a(&mx1).accounts.len(), 1);
    assert_eq!(
        a(&mx2).accounts,
        a(&mx1).accounts,
        "replicas get the logins"
    );
    assert_eq!(built, build_all(&inc.world, &mut serials.clone(), TODAY));

    // mx1 fails: mx2 writes (epoch 2). Rebuilt: the mail cluster, the web
    // servers of its domains' sites (mail client host, submission order) and the
    // DNS servers (client names follow the writer) — not web-3 or the rest.
    let dirty = set_writer(&mut inc, Some(32), 2);
    let pass = inc.build(dirty, &mut serials, TODAY);
    pass.fold_into(&mut built);
    assert_eq!(
        pass.rebuilt.keys().copied().collect::<Vec<_>>(),
        vec![11, 12, 21, 22, 31, 32]
    );
    let (mx1, mx2) = (mail_of(&built, 31), mail_of(&built, 32));
    assert_eq!(mx1.writer.as_ref().unwrap().holder.as_deref(), Some("mx2"));
    assert_eq!(mx1.writer.as_ref().unwrap().epoch, 2);
    assert!(!a(&mx1).primary && a(&mx2).primary);
    assert_eq!(a(&mx1).primary_smtp.as_deref(), Some("127.0.0.32:25"));
    assert_eq!(a(&mx2).primary_smtp, None);
    let zone = records(&built, 21, "a.example");
    let srv: Vec<&str> = zone
        .iter()
        .filter(|r| r.0 == "_imaps._tcp.a.example")
        .map(|r| r.2.as_str())
        .collect();
    assert_eq!(srv, ["0 1 993 mx2.hosting.example."]);
    assert!(zone.contains(&("mail.a.example".into(), "A".into(), "127.0.0.32".into())));
    let mx: Vec<&str> = zone
        .iter()
        .filter(|r| r.0 == "a.example" && r.1 == "MX")
        .map(|r| r.2.as_str())
        .collect();
    assert_eq!(
        mx,
        ["10 mx1.hosting.example.", "20 mx2.hosting.example."],
        "MX keeps listing both, in rank order"
    );
    assert_eq!(built, build_all(&inc.world, &mut serials.clone(), TODAY));

    // Nobody usable: nobody stores; the others answer 4xx (no relay target).
    let dirty = set_writer(&mut inc, None, 3);
    inc.build(dirty, &mut serials, TODAY).fold_into(&mut built);
    for mx in [31, 32] {
        let m = mail_of(&built, mx);
        assert_eq!(m.writer.as_ref().unwrap().holder, None);
        assert!(!a(&m).primary && a(&m).primary_smtp.is_none());
    }
    assert_eq!(built, build_all(&inc.world, &mut serials.clone(), TODAY));
}
