#![allow(clippy::unwrap_used)] // test helpers outside #[test] fns may panic
//! Writes made on the files server itself (FTP, deployments) adopted into the hub's log
//! (`Hub::observe_local`), the race with a pushed change over the same path (the local
//! write is adopted first, the stale push conflicts and is kept), per-site quotas and
//! the site status (usage, files, SQLite databases).

use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;

use proptest::prelude::*;
use proto::sitesync::{Change, LogRead, Mtime, Node, Op, Outcome};
use sitesync::capture::Seen;
use sitesync::hub::{Hub, HubConfig};

const SITE: &str = "shop.example";

fn hub(dir: &std::path::Path) -> Hub {
    let mut cfg = HubConfig::new(dir.to_path_buf());
    cfg.origin = "files-1".into();
    cfg.ignore_prefixes = vec![".hostplane-upload.".into()];
    cfg.reserve_bytes = 0;
    Hub::open(cfg).unwrap()
}

fn hash(data: &[u8]) -> String {
    blake3::hash(data).to_hex().to_string()
}

fn file_node(data: &[u8], secs: i64) -> Node {
    Node::File {
        blake3: hash(data),
        size: data.len() as u64,
        mode: 0o644,
        mtime: Mtime { secs, nanos: 0 },
    }
}

/// Pushes a file as web server `origin` would: content first, then the change.
fn push_file(
    h: &Hub,
    origin: &str,
    id: &str,
    path: &str,
    base: Option<&[u8]>,
    data: &[u8],
) -> Outcome {
    h.put_chunk(SITE, &hash(data), data.len() as u64, 0, data)
        .unwrap();
    let change = Change {
        id: id.into(),
        path: path.into(),
        base: base.map(hash),
        op: Op::Put {
            node: file_node(data, 1_700_000_000),
        },
    };
    h.push(SITE, origin, &change).unwrap()
}

fn entries(h: &Hub, after: u64) -> Vec<proto::sitesync::Entry> {
    match h.log_after(SITE, after, 1000).unwrap() {
        LogRead::Entries { entries, .. } => entries,
        other => panic!("{other:?}"),
    }
}

fn seen(p: &str) -> Seen {
    Seen::Path(PathBuf::from(p))
}

#[test]
fn local_writes_are_logged_with_this_server_as_origin() {
    let d = tempfile::tempdir().unwrap();
    let h = hub(d.path());
    let tree = h.tree_path(SITE);
    h.manifest(SITE).unwrap(); // opens (creates) the site
    std::fs::create_dir_all(tree.join("a/b")).unwrap();
    std::fs::write(tree.join("a/b/f.txt"), b"one").unwrap();
    std::fs::write(tree.join(".hostplane-upload.123"), b"partial").unwrap();
    assert_eq!(
        h.observe_local(SITE, &[seen("a/b/f.txt"), seen(".hostplane-upload.123")])
            .unwrap(),
        3,
        "two directories and the file"
    );
    let log = entries(&h, 0);
    assert!(log.iter().all(|e| e.origin == "files-1"));
    assert_eq!(log.last().unwrap().change.path, "a/b/f.txt");
    let m = h.manifest(SITE).unwrap();
    assert_eq!(m.nodes.get("a/b/f.txt").unwrap().version(), hash(b"one"));
    assert!(!m.nodes.keys().any(|k| k.contains("hostplane-upload")));
    // the content is readable by hash, as a replica reads it
    assert_eq!(h.read_blob(SITE, &hash(b"one"), 0, 100).unwrap(), b"one");
    // nothing new: nothing logged
    assert_eq!(h.observe_local(SITE, &[seen("a/b/f.txt")]).unwrap(), 0);

    // modify, chmod, rename, delete, each one entry
    std::fs::write(tree.join("a/b/f.txt"), b"two").unwrap();
    h.observe_local(SITE, &[seen("a/b/f.txt")]).unwrap();
    let e = entries(&h, 3);
    assert_eq!(e[0].change.base, Some(hash(b"one")));
    std::fs::set_permissions(
        tree.join("a/b/f.txt"),
        std::fs::Permissions::from_mode(0o600),
    )
    .unwrap();
    assert_eq!(h.observe_local(SITE, &[seen("a/b/f.txt")]).unwrap(), 1);
    assert!(matches!(
        entries(&h, 4)[0].change.op,
        Op::Meta { mode: 0o600, .. }
    ));
    std::fs::rename(tree.join("a/b"), tree.join("a/c")).unwrap();
    let n = h
        .observe_local(
            SITE,
            &[Seen::Renamed {
                from: "a/b".into(),
                to: "a/c".into(),
            }],
        )
        .unwrap();
    assert_eq!(n, 1);
    assert!(matches!(&entries(&h, 5)[0].change.op, Op::Rename { to, .. } if to == "a/c"));
    std::fs::remove_dir_all(tree.join("a")).unwrap();
    assert_eq!(
        h.observe_local(SITE, &[seen("a")]).unwrap(),
        3,
        "deepest first"
    );
    assert!(h.manifest(SITE).unwrap().nodes.is_empty());
}

#[test]
fn a_rescan_adopts_everything_and_a_reopened_hub_agrees() {
    let d = tempfile::tempdir().unwrap();
    let h = hub(d.path());
    let tree = h.tree_path(SITE);
    h.manifest(SITE).unwrap();
    std::fs::create_dir_all(tree.join("x/y")).unwrap();
    std::fs::write(tree.join("x/y/1"), b"1").unwrap();
    std::fs::write(tree.join("top"), b"t").unwrap();
    std::os::unix::fs::symlink("/etc/passwd", tree.join("evil")).unwrap();
    std::os::unix::fs::symlink("top", tree.join("fine")).unwrap();
    h.observe_local(SITE, &[Seen::Rescan]).unwrap();
    let m = h.manifest(SITE).unwrap();
    assert!(m.nodes.contains_key("x/y/1") && m.nodes.contains_key("fine"));
    assert!(
        !m.nodes.contains_key("evil"),
        "a symlink out is not replicated"
    );
    assert_eq!(h.observe_local(SITE, &[Seen::Rescan]).unwrap(), 0);
    let seq = m.seq;
    drop(h);
    let h = hub(d.path());
    assert_eq!(h.manifest(SITE).unwrap().seq, seq);
}

#[test]
fn a_stale_push_after_a_local_write_conflicts_and_nothing_is_lost() {
    let d = tempfile::tempdir().unwrap();
    let h = hub(d.path());
    let tree = h.tree_path(SITE);
    assert!(matches!(
        push_file(&h, "web-1", "c1", "index.php", None, b"v1"),
        Outcome::Applied { .. }
    ));
    // FTP writes v2 on the files server; the hub has not been told yet
    std::fs::write(tree.join("index.php"), b"v2 from ftp").unwrap();
    // web-1 pushes v3 based on v1: stale, since the disk holds v2
    let o = push_file(&h, "web-1", "c2", "index.php", Some(b"v1"), b"v3 from php");
    let Outcome::Conflict { kept: Some(id), .. } = o else {
        panic!("{o:?}")
    };
    assert_eq!(
        std::fs::read(tree.join("index.php")).unwrap(),
        b"v2 from ftp"
    );
    assert_eq!(h.conflict_content(SITE, &id).unwrap(), b"v3 from php");
    let log = entries(&h, 0);
    assert_eq!(log.len(), 2);
    assert_eq!(
        log[1].origin, "files-1",
        "the local write was ordered first"
    );
    // a delete based on the old version loses too (modification beats deletion)
    std::fs::write(tree.join("index.php"), b"v4 from ftp").unwrap();
    let del = Change {
        id: "c3".into(),
        path: "index.php".into(),
        base: Some(hash(b"v2 from ftp")),
        op: Op::Delete,
    };
    assert!(matches!(
        h.push(SITE, "web-2", &del).unwrap(),
        Outcome::Conflict { .. }
    ));
    assert_eq!(
        std::fs::read(tree.join("index.php")).unwrap(),
        b"v4 from ftp"
    );
}

#[test]
fn quota_refuses_what_would_exceed_it_and_status_counts() {
    let d = tempfile::tempdir().unwrap();
    let h = hub(d.path());
    h.set_quotas([(SITE.to_string(), 1000u64)].into());
    assert!(matches!(
        push_file(&h, "web-1", "a", "a.bin", None, &[1u8; 600]),
        Outcome::Applied { .. }
    ));
    match push_file(&h, "web-1", "b", "b.bin", None, &[2u8; 600]) {
        Outcome::Refused { reason, retry, .. } => {
            assert!(!retry);
            assert!(reason.contains("quota"), "{reason}");
        }
        o => panic!("{o:?}"),
    }
    // replacing a file counts only the difference
    assert!(matches!(
        push_file(&h, "web-1", "c", "a.bin", Some(&[1u8; 600]), &[3u8; 900]),
        Outcome::Applied { .. }
    ));
    let mut db = b"SQLite format 3\0".to_vec();
    db.extend([0u8; 50]);
    std::fs::write(h.tree_path(SITE).join("data.sqlite"), &db).unwrap();
    h.observe_local(SITE, &[seen("data.sqlite")]).unwrap();
    let s = h.status(SITE, 20).unwrap();
    assert_eq!(s.files, 2);
    assert_eq!(s.usage_bytes, 900 + db.len() as u64);
    assert_eq!(s.sqlite_paths, ["data.sqlite"]);
    assert!(h.status(SITE, 0).unwrap().sqlite_paths.is_empty());
}

#[test]
fn local_paths_are_not_adopted_and_preserved_versions_restore() {
    let d = tempfile::tempdir().unwrap();
    let h = hub(d.path());
    let tree = h.tree_path(SITE);
    h.set_local_paths([(SITE.to_string(), vec!["cache".to_string()])].into());
    h.manifest(SITE).unwrap();
    std::fs::create_dir_all(tree.join("cache/x")).unwrap();
    std::fs::write(tree.join("cache/x/page"), b"c").unwrap();
    std::fs::write(tree.join("cache.txt"), b"not local").unwrap();
    h.observe_local(SITE, &[seen("cache/x/page"), Seen::Rescan])
        .unwrap();
    let m = h.manifest(SITE).unwrap();
    assert!(m.nodes.contains_key("cache.txt"));
    assert!(
        !m.nodes
            .keys()
            .any(|k| k.starts_with("cache/") || k == "cache"),
        "{m:?}"
    );

    // a local delete keeps the version first when asked, and a restore brings it back
    assert!(h.preserve_local(SITE, "cache.txt").unwrap());
    std::fs::remove_file(tree.join("cache.txt")).unwrap();
    h.observe_local(SITE, &[seen("cache.txt")]).unwrap();
    assert!(!h.manifest(SITE).unwrap().nodes.contains_key("cache.txt"));
    assert!(matches!(
        h.restore(SITE, "cache.txt", None).unwrap(),
        Outcome::Applied { .. }
    ));
    assert_eq!(std::fs::read(tree.join("cache.txt")).unwrap(), b"not local");
    // nothing to keep: unknown or already changed on disk
    assert!(!h.preserve_local(SITE, "nothing").unwrap());
    std::fs::write(tree.join("cache.txt"), b"changed behind the index").unwrap();
    assert!(!h.preserve_local(SITE, "cache.txt").unwrap());
    assert!(!h.preserve_local(SITE, "../x").unwrap());
}

#[test]
fn a_deleted_folder_is_restored_file_by_file() {
    let d = tempfile::tempdir().unwrap();
    let h = hub(d.path());
    for (i, p) in ["wp-content/plugins/a/a.php", "wp-content/plugins/b.php"]
        .iter()
        .enumerate()
    {
        push_file(&h, "web-1", &format!("c{i}"), p, None, p.as_bytes());
    }
    push_file(&h, "web-1", "keep", "wp-content/other.php", None, b"other");
    // rm -rf pushed by a replica, deepest first
    for (i, p) in [
        "wp-content/plugins/a/a.php",
        "wp-content/plugins/a",
        "wp-content/plugins/b.php",
        "wp-content/plugins",
    ]
    .iter()
    .enumerate()
    {
        let base = h.manifest(SITE).unwrap().nodes.get(*p).map(Node::version);
        let c = Change {
            id: format!("rm{i}"),
            path: (*p).into(),
            base,
            op: Op::Delete,
        };
        assert!(matches!(
            h.push(SITE, "web-1", &c).unwrap(),
            Outcome::Applied { .. }
        ));
    }
    let tree = h.tree_path(SITE);
    assert!(!tree.join("wp-content/plugins").exists());
    assert!(matches!(
        h.restore(SITE, "wp-content/plugins", None).unwrap(),
        Outcome::Applied { .. }
    ));
    assert_eq!(
        std::fs::read(tree.join("wp-content/plugins/a/a.php")).unwrap(),
        b"wp-content/plugins/a/a.php"
    );
    assert_eq!(
        std::fs::read(tree.join("wp-content/plugins/b.php")).unwrap(),
        b"wp-content/plugins/b.php"
    );
    assert!(h.restore(SITE, "wp-content/nothing", None).is_err());
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]
    /// Whatever local writes and pushes interleave, the hub's index ends equal to the
    /// disk, every version written is either on disk or in the conflicts area, and a
    /// rescan finds nothing left to adopt.
    #[test]
    fn local_writes_and_pushes_never_lose_content(steps in proptest::collection::vec((any::<bool>(), 0u8..3, 0u8..8), 1..12)) {
        let d = tempfile::tempdir().unwrap();
        let h = hub(d.path());
        let tree = h.tree_path(SITE);
        h.manifest(SITE).unwrap();
        let paths = ["a", "b", "d/c"];
        let mut written = Vec::new();
        for (i, (local, p, v)) in steps.iter().enumerate() {
            let path = paths[*p as usize];
            let data = format!("{path}-{i}-{v}").into_bytes();
            written.push((path, data.clone()));
            if *local {
                std::fs::create_dir_all(tree.join(path).parent().unwrap()).unwrap();
                std::fs::write(tree.join(path), &data).unwrap();
            } else {
                // a push based on whatever the hub's index holds
                let base = h.manifest(SITE).unwrap().nodes.get(path).map(Node::version);
                h.put_chunk(SITE, &hash(&data), data.len() as u64, 0, &data).unwrap();
                let c = Change { id: format!("p{i}"), path: path.into(), base, op: Op::Put { node: file_node(&data, 1_700_000_000 + i as i64) } };
                h.push(SITE, "web-1", &c).unwrap();
            }
        }
        h.observe_local(SITE, &[Seen::Rescan]).unwrap();
        prop_assert_eq!(h.observe_local(SITE, &[Seen::Rescan]).unwrap(), 0);
        let kept: Vec<Vec<u8>> = h.conflicts(SITE).unwrap().iter().map(|c| h.conflict_content(SITE, &c.id).unwrap()).collect();
        let m = h.manifest(SITE).unwrap();
        for (path, data) in &written {
            let last_for_path = written.iter().rev().find(|(p, _)| p == path).unwrap();
            let on_disk = std::fs::read(tree.join(path)).unwrap();
            prop_assert_eq!(m.nodes.get(*path).unwrap().version(), hash(&on_disk));
            if last_for_path.1 == *data {
                // the newest write of a path is never lost
                prop_assert!(on_disk == *data || kept.contains(data), "{} lost", path);
            }
        }
    }
}
