//! Site files (issue 14) in the built configs: kept and local paths, modes and
//! quotas in `FilesConfig.site_options`, pending restores in `FilesConfig.restores`,
//! `versions_days`, and `WebSite.local_paths` / `quota_mb`; and each web server's
//! PHP session peers, `WebConfig.peers` (issue 15).

use std::collections::BTreeMap;

use model::entity::{Account, Site};
use model::limits::LimitOverrides;
use model::sitefiles::{restore_id, RestoreState, SiteFiles, SitePath, SiteRestore};
use model::{AccountKind, Id, Slug};
use proto::agent_v1::{FilesConfig, RoleConfig, WebConfig, WebPeer, SESSION_PORT};

use super::tests::{stored, world, TODAY};
use super::{build_all, Built, World};
use crate::zones::ZoneSerials;

fn built(w: &World) -> BTreeMap<Id, Built> {
    build_all(w, &mut ZoneSerials::default(), TODAY)
}

fn files(b: &BTreeMap<Id, Built>) -> FilesConfig {
    match &b[&41].role {
        RoleConfig::Files(f) => f.clone(),
        other => panic!("{other:?}"),
    }
}

fn web(b: &BTreeMap<Id, Built>, server: Id) -> WebConfig {
    match &b[&server].role {
        RoleConfig::Web(w) => w.clone(),
        other => panic!("{other:?}"),
    }
}

fn restore(site: Id, n: u64, state: RestoreState) -> SiteRestore {
    SiteRestore {
        id: restore_id(site, n),
        path: SitePath::new("wp-content/uploads/x.jpg").unwrap(),
        at: Some(1_700_000_000),
        requested_at: 1,
        state,
        message: String::new(),
    }
}

fn site_mut(w: &mut World, id: Id) -> &mut Site {
    &mut w.sites.iter_mut().find(|s| s.meta.id == id).unwrap().data
}

#[test]
fn files_servers_get_paths_modes_quotas_and_pending_restores() {
    let mut w = world();
    w.site_versions_days = 9;
    *site_mut(&mut w, 201) = Site {
        files: SiteFiles {
            keep: vec![SitePath::new("wp-content/uploads").unwrap()],
            local: vec![SitePath::new("wp-content/cache").unwrap()],
            restores: vec![
                restore(201, 1, RestoreState::Ok),
                restore(201, 2, RestoreState::Pending),
            ],
            sqlite_paths: Vec::new(),
        },
        ..site_mut(&mut w, 201).clone()
    };
    w.set_limits(model::limits::Limits::default());
    let b = built(&w);
    let f = files(&b);
    assert_eq!(f.versions_days, Some(9));
    // a.example (`all`) with its paths and the default plan's quota.
    let a = f
        .site_options
        .iter()
        .find(|o| o.domain == "a.example")
        .unwrap();
    assert_eq!(a.keep_paths, vec!["wp-content/uploads"]);
    assert_eq!(a.local_paths, vec!["wp-content/cache"]);
    assert_eq!(a.mode, model::PlacementMode::All);
    assert_eq!(a.quota_mb, 10_240);
    // Only the pending restore travels.
    assert_eq!(f.restores.len(), 1);
    assert_eq!(f.restores[0].id, restore_id(201, 2));
    assert_eq!(f.restores[0].domain, "a.example");
    assert_eq!(f.restores[0].path, "wp-content/uploads/x.jpg");
    assert_eq!(f.restores[0].at, Some(1_700_000_000));
    // The web servers: local paths and the quota.
    let site = web(&b, 11)
        .sites
        .into_iter()
        .find(|s| s.domain == "a.example")
        .unwrap();
    assert_eq!(site.local_paths, vec!["wp-content/cache"]);
    assert_eq!(site.quota_mb, 10_240);
}

#[test]
fn the_owners_site_disk_limit_is_the_quota_and_zero_means_none() {
    let mut w = world();
    let limits = LimitOverrides {
        site_disk_mb: Some(0),
        ..Default::default()
    };
    w.accounts = vec![stored(
        1,
        "acme",
        None,
        Account {
            name: Slug::new("acme").unwrap(),
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
    )]
    .into();
    w.derive_accounts();
    let b = built(&w);
    // Every site held is listed, sorted, without a quota.
    let f = files(&b);
    assert_eq!(
        f.site_options
            .iter()
            .map(|o| (o.domain.as_str(), o.quota_mb))
            .collect::<Vec<_>>(),
        vec![("a.example", 0), ("b.example", 0)],
    );
    assert!(web(&b, 11).sites.iter().all(|s| s.quota_mb == 0));
}

#[test]
fn a_restore_or_path_change_rebuilds_only_the_sites_servers() {
    let before = built(&world());
    let mut w = world();
    site_mut(&mut w, 202)
        .files
        .restores
        .push(restore(202, 1, RestoreState::Pending));
    // us.example has no files placement: no server's config changes.
    let after = built(&w);
    let changed: Vec<Id> = before
        .iter()
        .filter(|(id, b)| after[id].content_hash() != b.content_hash())
        .map(|(id, _)| *id)
        .collect();
    assert!(changed.is_empty(), "{changed:?}");
    // A local path of a.example: its web servers and its files server.
    site_mut(&mut w, 201).files.local = vec![SitePath::new("cache").unwrap()];
    let after = built(&w);
    let changed: Vec<Id> = before
        .iter()
        .filter(|(id, b)| after[id].content_hash() != b.content_hash())
        .map(|(id, _)| *id)
        .collect();
    assert_eq!(changed, vec![11, 12, 41]);
}

#[test]
fn web_servers_get_the_other_servers_of_their_cluster_as_session_peers() {
    let b = built(&world());
    let peer = |name: &str, ip: &str| WebPeer {
        name: name.into(),
        address: format!("{ip}:{SESSION_PORT}"),
    };
    assert_eq!(web(&b, 11).peers, vec![peer("web-2", "127.0.0.12")]);
    assert_eq!(web(&b, 12).peers, vec![peer("web-1", "127.0.0.11")]);
    // web-3 is alone in its cluster: its sessions go nowhere else
    assert!(web(&b, 13).peers.is_empty());
}
