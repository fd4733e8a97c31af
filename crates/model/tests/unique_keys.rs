//! The unique keys each entity kind claims, derived by `Object::unique_keys`, equal
//! what the controller's call sites passed by hand before the store derived them
//! (issue 13): existing stores hold exactly these namespaces and key formats.

use std::collections::BTreeMap;

use model::dns::{RecordData, RecordName};
use model::entity::{
    Account, ApiToken, Cluster, Database, DbUser, DnsRecord, Domain, FtpAccount, JoinToken,
    MailAlias, Mailbox, Object, Plan, Secret, SecretPurpose, Server, Site, Ttls, UniqueKey,
};
use model::{
    AccountKind, CountryCode, DbEngine, DbIdent, DomainName, EmailAddress, FtpUsername, LocalPart,
    PlacementMode, RelPath, Role, Slug,
};

type R = Result<(), Box<dyn std::error::Error>>;

/// `(ns, key)` pairs of an object stored under `name`.
fn keys<T: Object>(obj: &T, name: &str) -> Vec<(&'static str, String)> {
    obj.unique_keys(name)
        .into_iter()
        .map(|UniqueKey { ns, key }| (ns, key))
        .collect()
}

fn site(aliases: &[&str]) -> Result<Site, model::Invalid> {
    Ok(Site {
        web: Default::default(),
        domain: 7,
        aliases: aliases
            .iter()
            .map(|a| DomainName::new(a))
            .collect::<Result<_, _>>()?,
        php: false,
        mode: PlacementMode::Single,
        https_redirect: false,
        active_server: None,
        deployment: None,
        previous_deployments: Vec::new(),
        files: Default::default(),
        cron: Vec::new(),
        cron_next_id: 0,
        cron_holder: None,
    })
}

#[test]
fn sites_claim_one_hostname_per_host_name() -> R {
    // Before: `site_keys(&site, &domain_name)` in api/sites.rs: the domain name,
    // then every alias, in order, in namespace `hostname`.
    assert_eq!(
        keys(&site(&[])?, "a.example"),
        vec![("hostname", "a.example".to_owned())]
    );
    assert_eq!(
        keys(&site(&["www.a.example", "shop.b.example"])?, "a.example"),
        vec![
            ("hostname", "a.example".to_owned()),
            ("hostname", "www.a.example".to_owned()),
            ("hostname", "shop.b.example".to_owned()),
        ]
    );
    Ok(())
}

#[test]
fn mailboxes_and_aliases_claim_their_address() -> R {
    // Before: `address_key(address)` in api/mail.rs, namespace `mail_address`.
    let mailbox = Mailbox {
        domain: 7,
        local_part: LocalPart::new("info")?,
        password_hash: String::new(),
        quota_mb: 0,
        display_name: String::new(),
        enabled: true,
    };
    assert_eq!(
        keys(&mailbox, "info@a.example"),
        vec![("mail_address", "info@a.example".to_owned())]
    );
    let alias = MailAlias {
        domain: 7,
        local_part: LocalPart::new("sales")?,
        destinations: vec![EmailAddress::new("x@b.example")?],
    };
    assert_eq!(
        keys(&alias, "sales@a.example"),
        vec![("mail_address", "sales@a.example".to_owned())]
    );
    Ok(())
}

#[test]
fn every_other_kind_claims_none() -> R {
    // Before: `keys: Vec::new()` at every other call site. (A domain's
    // `registrable` index key is the store's own, not an entity key.)
    let none: Vec<(&'static str, String)> = Vec::new();
    let account = Account {
        name: Slug::new("acme")?,
        kind: AccountKind::Customer,
        display_name: String::new(),
        email: None,
        reseller: None,
        default_clusters: BTreeMap::new(),
        password_hash: None,
        disabled: false,
        db_quota_mb: None,
        plan: None,
        limits: Default::default(),
        may_choose_clusters: false,
    };
    assert_eq!(keys(&account, "acme"), none);
    let plan = Plan {
        name: Slug::new("basic")?,
        description: String::new(),
        limits: Default::default(),
    };
    assert_eq!(keys(&plan, "basic"), none);
    let token = ApiToken {
        account: 1,
        name: "ci".into(),
        public_id: "abc".into(),
        secret_hash: String::new(),
        expires_at: None,
        impersonator: None,
    };
    assert_eq!(keys(&token, "abc"), none);
    let cluster = Cluster {
        name: Slug::new("web-1")?,
        role: Role::Web,
        description: String::new(),
        is_default: true,
        ttls: Ttls {
            web: 60,
            default: 3600,
        },
        external_secondaries: Vec::new(),
        mail_writer: None,
        hostname: None,
    };
    assert_eq!(keys(&cluster, "web-1"), none);
    let server = Server {
        name: Slug::new("web1")?,
        role: Role::Web,
        cluster: 1,
        rank: 0,
        hostname: DomainName::new("web1.example.net")?,
        addresses: Vec::new(),
        region: String::new(),
        country: CountryCode::new("DE")?,
        hardware: String::new(),
        drained: false,
        agent: None,
    };
    assert_eq!(keys(&server, "web1"), none);
    let join = JoinToken {
        cluster: 1,
        public_id: "jt".into(),
        secret_hash: String::new(),
        expires_at: 0,
        created_by: None,
    };
    assert_eq!(keys(&join, "jt"), none);
    let domain = Domain {
        name: DomainName::new("a.example")?,
        customer: 2,
        placements: BTreeMap::new(),
    };
    assert_eq!(keys(&domain, "a.example"), none);
    let database = Database {
        customer: 2,
        name: DbIdent::new("acme_db")?,
        engine: DbEngine::Mariadb,
        cluster: 1,
        domain: None,
        restore_from: None,
    };
    assert_eq!(keys(&database, "mariadb/acme_db"), none);
    let user = DbUser {
        customer: 2,
        name: DbIdent::new("acme_u")?,
        engine: DbEngine::Mariadb,
        cluster: 1,
        password_verifier: String::new(),
        databases: Vec::new(),
    };
    assert_eq!(keys(&user, "mariadb/acme_u"), none);
    let ftp = FtpAccount {
        domain: 7,
        username: FtpUsername::new("web.a")?,
        password_hash: String::new(),
        home: RelPath::new("")?,
        quota_mb: 0,
    };
    assert_eq!(keys(&ftp, "web.a"), none);
    let record = DnsRecord {
        domain: 7,
        name: RecordName::apex(),
        ttl: None,
        data: RecordData::A {
            address: "192.0.2.1".parse()?,
        },
    };
    assert_eq!(keys(&record, "7/1"), none);
    let secret = Secret {
        purpose: SecretPurpose::Dkim,
        subject: "a.example".into(),
        public: String::new(),
        private: String::new(),
        algorithm: String::new(),
        not_after: None,
        uploaded: false,
        names: Vec::new(),
    };
    assert_eq!(keys(&secret, "dkim/a.example"), none);
    Ok(())
}
