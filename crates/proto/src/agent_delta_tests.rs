//! Property tests of [`super::split`] / [`super::join`] and of applying a delta.

use super::*;
use crate::agent_v1::*;
use model::{DbEngine, PlacementMode};
use proptest::prelude::*;

/// Short names from a tiny alphabet, so duplicate keys and unsorted lists happen.
fn name() -> impl Strategy<Value = String> {
    "[a-c/#]{0,3}"
}

/// Sometimes large (a blob), sometimes small.
fn material() -> impl Strategy<Value = String> {
    prop_oneof!["[A-Z]{0,8}", "[A-Z]{300,400}"]
}

fn tls() -> impl Strategy<Value = Option<TlsMaterial>> {
    proptest::option::of(
        (material(), material()).prop_map(|(cert_pem, key_pem)| TlsMaterial {
            cert_pem: cert_pem.into(),
            key_pem: key_pem.into(),
        }),
    )
}

fn web() -> impl Strategy<Value = RoleConfig> {
    let site = (
        name(),
        proptest::collection::vec(name(), 0..3),
        any::<bool>(),
        any::<bool>(),
        tls(),
        proptest::option::of(name()),
    )
        .prop_map(
            |(domain, aliases, php, active, tls, files_origin)| WebSite {
                docroot: None,
                hsts: false,
                php_version: None,
                php_ini: Default::default(),
                mail: None,
                cron: None,
                domain,
                aliases,
                php,
                mode: if php {
                    PlacementMode::Single
                } else {
                    PlacementMode::All
                },
                active,
                https_redirect: !active,
                tls,
                files_origin,
                local_paths: Vec::new(),
                quota_mb: 0,
            },
        );
    (
        proptest::collection::vec(site, 0..8),
        proptest::option::of(name()),
    )
        .prop_map(|(sites, files_origin)| {
            RoleConfig::Web(WebConfig {
                sites: sites.into_iter().map(std::sync::Arc::new).collect(),
                files_origin,
                peers: Vec::new(),
                acme_challenges: Vec::new(),
            })
        })
}

fn dns() -> impl Strategy<Value = RoleConfig> {
    let zone = (name(), any::<bool>(), material(), any::<u32>()).prop_map(
        |(domain, primary, data, serial)| ZoneAssignment {
            domain: domain.clone(),
            primary,
            primary_addresses: vec![],
            secondaries: vec!["127.0.0.2".into()],
            zone: primary.then(|| {
                std::sync::Arc::new(ZoneContent {
                    origin: domain,
                    serial,
                    records: vec![ZoneRecord {
                        name: "x".into(),
                        ttl: 60,
                        rtype: "TXT".into(),
                        data,
                    }],
                })
            }),
            primary_endpoints: vec![],
            notify: vec![],
            tsig: None,
        },
    );
    proptest::collection::vec(zone, 0..8).prop_map(|zones| RoleConfig::Dns(DnsConfig { zones }))
}

fn mail() -> impl Strategy<Value = RoleConfig> {
    let domain = (
        name(),
        any::<bool>(),
        material(),
        proptest::collection::vec(name(), 0..4),
    )
        .prop_map(|(domain, primary, key, locals)| MailDomain {
            domain,
            primary,
            mailboxes: locals.clone(),
            aliases: vec![],
            accounts: locals
                .into_iter()
                .map(|local_part| MailAccount {
                    local_part,
                    password_hash: "$argon2id$x".into(),
                    quota_mb: 1,
                    enabled: true,
                })
                .collect(),
            primary_smtp: None,
            dkim: Some(DkimKey {
                selector: "hp1".into(),
                algorithm: "ed25519-sha256".into(),
                private_key_pem: key,
            }),
            dkim_rsa: None,
            limits: None,
            site_login: None,
        });
    (proptest::collection::vec(domain, 0..6), any::<u64>(), tls()).prop_map(
        |(domains, flush, tls)| {
            RoleConfig::Mail(MailConfig {
                domains,
                flush,
                tls,
                peers: vec![],
                writer: None,
            })
        },
    )
}

fn files() -> impl Strategy<Value = RoleConfig> {
    (
        proptest::collection::vec(name(), 0..6),
        proptest::collection::vec((name(), name()), 0..5),
        proptest::collection::vec((name(), proptest::collection::vec(name(), 0..3)), 0..4),
        tls(),
    )
        .prop_map(|(sites, ftp, sync_clients, tls)| {
            RoleConfig::Files(FilesConfig {
                deployments: sites
                    .iter()
                    .map(|d| SiteDeployment {
                        domain: d.clone(),
                        id: "ab".into(),
                        size: 3,
                    })
                    .collect(),
                site_options: Vec::new(),
                restores: Vec::new(),
                versions_days: None,
                sites,
                ftp_accounts: ftp
                    .into_iter()
                    .map(|(username, domain)| FtpAccountConfig {
                        username,
                        domain,
                        password_hash: "h".into(),
                        home: String::new(),
                        quota_mb: 0,
                    })
                    .collect(),
                tls,
                sync_clients,
            })
        })
}

fn db() -> impl Strategy<Value = RoleConfig> {
    (
        proptest::collection::vec((name(), any::<bool>()), 0..6),
        proptest::collection::vec((name(), name()), 0..4),
        proptest::collection::vec((name(), any::<u64>()), 0..4),
        any::<u32>(),
    )
        .prop_map(|(dbs, users, quotas, trash_days)| {
            let engine = |pg: bool| {
                if pg {
                    DbEngine::Postgres
                } else {
                    DbEngine::Mariadb
                }
            };
            RoleConfig::Db(DbRoleConfig {
                databases: dbs
                    .iter()
                    .map(|(n, pg)| DbConfig {
                        name: n.clone(),
                        engine: engine(*pg),
                        owner: "o".into(),
                        restore_from: None,
                    })
                    .collect(),
                users: users
                    .into_iter()
                    .map(|(name, db)| DbUserConfig {
                        name,
                        engine: DbEngine::Postgres,
                        password_verifier: "v".into(),
                        databases: vec![db],
                    })
                    .collect(),
                quotas,
                trash_days,
            })
        })
}

fn role() -> impl Strategy<Value = RoleConfig> {
    prop_oneof![web(), dns(), mail(), files(), db()]
}

fn rejoin(s: &Split) -> Result<RoleConfig, DeltaError> {
    join(s.items.values(), |h| s.blobs.get(h).map(|b| &b[..]))
}

fn hashes(s: &Split) -> BTreeMap<String, [u8; 32]> {
    s.items
        .iter()
        .map(|(id, i)| (id.clone(), i.hash()))
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn join_is_the_exact_inverse_of_split(c in role()) {
        let s = split(&c).unwrap();
        prop_assert_eq!(rejoin(&s).unwrap(), c);
        // Every blob is referenced, every reference has its blob, and no inline
        // item carries large material.
        for item in s.items.values() {
            for hash in item.blobs.values() {
                prop_assert!(s.blobs.contains_key(hash));
            }
        }
        for (hash, bytes) in &s.blobs {
            prop_assert_eq!(&blob_hash(bytes), hash);
        }
    }

    /// Every element item regenerated alone is the item `split` made, with the
    /// very blobs; other ids give nothing.
    #[test]
    fn split_element_gives_the_item_split_makes(c in role()) {
        let s = split(&c).unwrap();
        for (id, item) in &s.items {
            match split_element(&c, id) {
                Some(one) => {
                    prop_assert_eq!(one.items.len(), 1);
                    prop_assert_eq!(&one.items[id], item);
                    for (hash, bytes) in &one.blobs {
                        prop_assert_eq!(&s.blobs[hash], bytes);
                    }
                    prop_assert_eq!(one.blobs.len(), item.blobs.values().collect::<std::collections::BTreeSet<_>>().len());
                }
                None => prop_assert!(!id.contains('/'), "element {} not regenerated", id),
            }
        }
        prop_assert!(split_element(&c, "zones/ no such key").is_none());
    }

    #[test]
    fn a_delta_applied_to_the_old_items_gives_the_new_config(a in role(), b in role()) {
        let (sa, sb) = (split(&a).unwrap(), split(&b).unwrap());
        let (ha, hb) = (hashes(&sa), hashes(&sb));
        let (upserts, removals) = diff(&ha, &hb);
        let mut items = sa.items.clone();
        for id in removals {
            items.remove(id);
        }
        for id in upserts {
            items.insert(id.to_owned(), sb.items[id].clone());
        }
        prop_assert_eq!(&items, &sb.items);
        let got = join(items.values(), |h| {
            sb.blobs.get(h).or_else(|| sa.blobs.get(h)).map(|b| &b[..])
        })
        .unwrap();
        prop_assert_eq!(got, b);
        prop_assert_eq!(sa.digest() == sb.digest(), ha == hb);
    }
}

/// `a` with some elements of each keyed list taken from `b` (same role), so most
/// elements are equal and some changed, added or removed.
fn mix(a: &RoleConfig, b: &RoleConfig, picks: &[u8]) -> RoleConfig {
    let (Value::Object(mut ma), Value::Object(mb)) = (
        serde_json::to_value(a).unwrap(),
        serde_json::to_value(b).unwrap(),
    ) else {
        unreachable!("role configs are objects")
    };
    if a.role() != b.role() {
        return a.clone();
    }
    let mut pick = picks.iter().cycle();
    for (field, va) in ma.iter_mut() {
        let (Value::Array(la), Some(Value::Array(lb))) = (va, mb.get(field)) else {
            continue;
        };
        if keyed_field(a.role(), field).is_none() {
            continue;
        }
        let mut out = Vec::new();
        for i in 0..la.len().max(lb.len()) {
            match (pick.next().copied().unwrap_or(0) % 4, la.get(i), lb.get(i)) {
                (0, _, Some(e)) | (1, Some(_), Some(e)) => out.push(e.clone()),
                (2, _, _) => {}
                (_, Some(e), _) => out.push(e.clone()),
                _ => {}
            }
        }
        *la = out;
    }
    serde_json::from_value(Value::Object(ma)).unwrap()
}

fn check_changes(a: &RoleConfig, b: &RoleConfig) -> Result<(), TestCaseError> {
    let (sa, sb) = (split(a).unwrap(), split(b).unwrap());
    let ch = split_changes(a, b).unwrap();
    let mut items = sa.items.clone();
    apply_changes(&mut items, &ch);
    prop_assert_eq!(&items, &sb.items);
    // Only changed items are upserted and only gone ones removed.
    let (ha, hb) = (hashes(&sa), hashes(&sb));
    let (up, rm) = diff(&ha, &hb);
    let got_up: Vec<&str> = ch.upserts.items.keys().map(String::as_str).collect();
    prop_assert_eq!(got_up, up);
    let mut got_rm: Vec<&str> = ch.removals.iter().map(String::as_str).collect();
    got_rm.sort_unstable();
    prop_assert_eq!(got_rm, rm);
    for item in ch.upserts.items.values() {
        for h in item.blobs.values() {
            prop_assert_eq!(ch.upserts.blobs.get(h), sb.blobs.get(h));
        }
    }
    prop_assert_eq!(ch.is_empty(), ha == hb);
    Ok(())
}

/// [`patch`] of `a` by the items that changed to `b`: when it patches, the
/// result is exactly `b` (what joining the new items gives). Returns whether it
/// patched.
fn check_patch(a: &RoleConfig, b: &RoleConfig) -> Result<bool, TestCaseError> {
    let (sa, sb) = (split(a).unwrap(), split(b).unwrap());
    let (ha, hb) = (hashes(&sa), hashes(&sb));
    let (up, rm) = diff(&ha, &hb);
    let changed = up
        .iter()
        .map(|id| (*id, sb.items.get(*id)))
        .chain(rm.iter().map(|id| (*id, None)));
    let mut r = a.clone();
    let patched = patch(&mut r, changed, |h| sb.blobs.get(h).map(|b| &b[..])).unwrap();
    if patched {
        prop_assert_eq!(&r, b);
    }
    Ok(patched)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn a_patch_by_the_changed_items_equals_the_new_config(
        a in role(),
        b in role(),
        picks in proptest::collection::vec(any::<u8>(), 1..16),
    ) {
        check_patch(&a, &b)?;
        let c = mix(&a, &b, &picks);
        check_patch(&a, &c)?;
        check_patch(&c, &a)?;
        check_patch(&a, &a)?;
    }

    #[test]
    fn split_changes_gives_the_items_of_the_new_split(
        a in role(),
        b in role(),
        picks in proptest::collection::vec(any::<u8>(), 1..16),
    ) {
        check_changes(&a, &b)?;
        let c = mix(&a, &b, &picks);
        check_changes(&a, &c)?;
        check_changes(&c, &a)?;
        check_changes(&a, &a)?;
    }
}

fn site(domain: &str, key: &str) -> WebSite {
    WebSite {
        docroot: None,
        hsts: false,
        php_version: None,
        php_ini: Default::default(),
        mail: None,
        cron: None,
        domain: domain.into(),
        aliases: vec![],
        php: false,
        mode: PlacementMode::All,
        active: true,
        https_redirect: true,
        tls: Some(TlsMaterial {
            cert_pem: format!("-----BEGIN CERTIFICATE-----\n{}", "C".repeat(900)).into(),
            key_pem: format!("-----BEGIN PRIVATE KEY-----\n{key}{}", "K".repeat(200)).into(),
        }),
        files_origin: None,
        local_paths: Vec::new(),
        quota_mb: 0,
    }
}

#[test]
fn a_site_is_one_item_its_tls_one_blob_and_a_new_site_changes_only_its_item() {
    let one = RoleConfig::Web(WebConfig {
        sites: vec![site("a.example", "1"), site("c.example", "2")]
            .into_iter()
            .map(std::sync::Arc::new)
            .collect(),
        files_origin: None,
        peers: Vec::new(),
        acme_challenges: Vec::new(),
    });
    let s = split(&one).unwrap();
    let ids: Vec<&str> = s.items.keys().map(String::as_str).collect();
    assert_eq!(ids, ["role", "sites/a.example", "sites/c.example"]);
    let a = &s.items["sites/a.example"];
    assert!(a.value.get("tls").is_none(), "tls travels as a blob");
    assert_eq!(a.blobs.keys().collect::<Vec<_>>(), ["tls"]);
    assert_eq!(s.blobs.len(), 2);

    let two = RoleConfig::Web(WebConfig {
        sites: vec![
            site("a.example", "1"),
            site("b.example", "3"),
            site("c.example", "2"),
        ]
        .into_iter()
        .map(std::sync::Arc::new)
        .collect(),
        files_origin: None,
        peers: Vec::new(),
        acme_challenges: Vec::new(),
    });
    let s2 = split(&two).unwrap();
    let (h1, h2) = (hashes(&s), hashes(&s2));
    let (up, rm) = diff(&h1, &h2);
    assert_eq!(up, ["sites/b.example"]);
    assert!(rm.is_empty());
}

/// The common changes of a web server (a site changed, added, removed) are
/// patched, not joined; an unsorted list is left to a join.
#[test]
fn site_changes_are_patched_and_unsorted_lists_joined() {
    let web = |sites: Vec<WebSite>| {
        RoleConfig::Web(WebConfig {
            sites: sites.into_iter().map(std::sync::Arc::new).collect(),
            files_origin: None,
            peers: Vec::new(),
            acme_challenges: Vec::new(),
        })
    };
    let a = web(vec![site("a.example", "1"), site("c.example", "2")]);
    let mut changed = site("a.example", "1");
    changed.https_redirect = !changed.https_redirect;
    let b = web(vec![
        changed,
        site("b.example", "3"),
        site("c.example", "2"),
    ]);
    let c = web(vec![site("c.example", "2")]);
    for (x, y) in [(&a, &b), (&b, &a), (&a, &c), (&c, &b), (&b, &b)] {
        assert_eq!(check_patch(x, y).map_err(|e| e.to_string()), Ok(true));
    }
    let unsorted = web(vec![site("c.example", "2"), site("a.example", "1")]);
    assert_eq!(
        check_patch(&a, &unsorted).map_err(|e| e.to_string()),
        Ok(false)
    );
    assert_eq!(
        check_patch(&unsorted, &a).map_err(|e| e.to_string()),
        Ok(false)
    );
    let empty = web(Vec::new());
    assert_eq!(
        check_patch(&a, &empty).map_err(|e| e.to_string()),
        Ok(false)
    );
}

#[test]
fn unsorted_and_duplicate_keys_survive_with_an_order_item() {
    let c = RoleConfig::Files(FilesConfig {
        sites: vec!["b".into(), "a".into(), "b".into()],
        ..FilesConfig::default()
    });
    let s = split(&c).unwrap();
    assert!(s.items.contains_key("sites#order"));
    assert!(s.items.contains_key("sites#1/b"));
    assert_eq!(rejoin(&s).unwrap(), c);
}

#[test]
fn missing_blobs_and_malformed_items_are_errors_naming_the_item() {
    let c = RoleConfig::Web(WebConfig {
        sites: vec![site("a.example", "1")]
            .into_iter()
            .map(std::sync::Arc::new)
            .collect(),
        files_origin: None,
        peers: Vec::new(),
        acme_challenges: Vec::new(),
    });
    let s = split(&c).unwrap();
    let err = join(s.items.values(), |_| None).unwrap_err();
    assert!(matches!(err, DeltaError::MissingBlob { ref id, .. } if id == "sites/a.example"));
    let bad = Item {
        id: "sites#x/a".into(),
        value: Value::Null,
        blobs: BTreeMap::new(),
    };
    let err = join([&bad], |_| None).unwrap_err();
    assert!(err.to_string().contains("sites#x/a"), "{err}");
}
