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
