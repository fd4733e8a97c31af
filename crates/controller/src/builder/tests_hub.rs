//! The hub fed server by server ([`crate::configs::ConfigHub::build_and_apply`],
//! one new config in flight at a time) ends where the hub fed a collected build
//! ([`Incremental::build`] then [`crate::configs::ConfigHub::apply`]) ends: same
//! configs, revisions and changed servers, build after build.

use super::tests::{raw, world, TODAY};
use super::*;
use crate::configs::ConfigHub;

/// Every server's config in `hub` as (id, revision, JSON).
fn docs(hub: &ConfigHub, world: &World) -> Vec<(Id, i64, String)> {
    world
        .servers
        .iter()
        .filter_map(|s| {
            let d = hub.get(s.meta.id)?;
            Some((s.meta.id, d.revision, serde_json::to_string(&*d).unwrap()))
        })
        .collect()
}

#[test]
fn streamed_builds_reach_the_hub_as_collected_ones() {
    let (streamed, collected) = (ConfigHub::default(), ConfigHub::default());
    let (mut a, mut b) = (Incremental::new(world()), Incremental::new(world()));
    let mut serials = ZoneSerials::default();

    let (rebuilt, changed) = streamed.build_and_apply(&mut a, Dirty::default(), TODAY, 1);
    let pass = b.build(Dirty::default(), &mut serials, TODAY);
    assert_eq!(rebuilt, pass.rebuilt.len());
    assert_eq!(changed, collected.apply(1, pass.rebuilt));
    assert_eq!(rebuilt, 9, "the first build is a full one");
    assert_eq!(docs(&streamed, &a.world), docs(&collected, &b.world));
    assert_eq!(streamed.built_revision(), Some(1));

    // A site's change reaches its web servers in both.
    let mut s = a.world.sites.get(201).unwrap().clone();
    s.data.php = !s.data.php;
    s.meta.updated_rev = 2;
    let feed = store::Feed {
        revision: 2,
        changed: vec![raw(&s)],
        deleted: Vec::new(),
    };
    let (da, db) = (a.apply(&feed).unwrap(), b.apply(&feed).unwrap());
    let (rebuilt, changed) = streamed.build_and_apply(&mut a, da, TODAY, 2);
    let pass = b.build(db, &mut serials, TODAY);
    assert_eq!(rebuilt, pass.rebuilt.len());
    assert_eq!(changed, collected.apply(2, pass.rebuilt));
    assert_eq!(rebuilt, 3, "its web cluster and its files server");
    assert_eq!(
        changed,
        vec![11, 12],
        "the files server's config is the same"
    );
    assert_eq!(docs(&streamed, &a.world), docs(&collected, &b.world));

    // Nothing changed: nothing rebuilt, no revision moves.
    let before = docs(&streamed, &a.world);
    let (rebuilt, changed) = streamed.build_and_apply(&mut a, Dirty::default(), TODAY, 3);
    assert_eq!((rebuilt, changed), (0, Vec::new()));
    assert_eq!(docs(&streamed, &a.world), before);
    assert_eq!(streamed.built_revision(), Some(3));
}
