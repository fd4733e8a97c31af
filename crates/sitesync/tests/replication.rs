#![allow(clippy::unwrap_used)] // test helpers outside #[test] fns may panic
//! End-to-end replication through the in-process harness: one hub, two replicas, real
//! files in tempdirs. Writes, renames, deletes, the conflict cases, a dead hub
//! with the outbox, restarts in the middle, path classes, restore, a full disk.

mod harness;

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::PathBuf;
use std::time::{Duration, UNIX_EPOCH};

use harness::{body, look, write, World, SITE};
use proto::sitesync::{Mtime, Node, Outcome};
use sitesync::replica::Look;

fn set_mtime(p: &std::path::Path, secs: u64, nanos: u32) {
    let f = std::fs::File::options().write(true).open(p).unwrap();
    f.set_modified(UNIX_EPOCH + Duration::new(secs, nanos))
        .unwrap();
}

#[test]
fn write_rename_delete_reach_the_other_server_exactly() {
    let mut w = World::new();
    let rel = "wp-content/uploads/2026/a.jpg";
    let data = body(1, 300_000);
    write(&w.a.root, rel, &data);
    let pa = w.a.root.join(rel);
    std::fs::set_permissions(&pa, std::fs::Permissions::from_mode(0o640)).unwrap();
    set_mtime(&pa, 1_700_000_000, 123_456_789);
    w.observe_a(&[look(rel)]);
    assert_eq!(
        w.a.replica.pending(),
        4,
        "three dirs and the file, each once"
    );
    w.settle();
    let pb = w.b.root.join(rel);
    assert_eq!(std::fs::read(&pb).unwrap(), data);
    let (ma, mb) = (
        std::fs::metadata(&pa).unwrap(),
        std::fs::metadata(&pb).unwrap(),
    );
    assert_eq!(mb.mode() & 0o7777, 0o640);
    assert_eq!((mb.mtime(), mb.mtime_nsec()), (ma.mtime(), ma.mtime_nsec()));
    assert_eq!(mb.mtime_nsec(), 123_456_789);
    w.assert_converged();

    // a directory rename travels as one rename: the file on web-2 keeps its inode
    let ino = std::fs::metadata(&pb).unwrap().ino();
    std::fs::rename(
        w.a.root.join("wp-content/uploads"),
        w.a.root.join("wp-content/media"),
    )
    .unwrap();
    w.observe_a(&[Look::Renamed {
        from: "wp-content/uploads".into(),
        to: "wp-content/media".into(),
    }]);
    assert_eq!(w.a.replica.pending(), 1);
    w.settle();
    let moved = w.b.root.join("wp-content/media/2026/a.jpg");
    assert_eq!(std::fs::metadata(&moved).unwrap().ino(), ino);
    assert!(!w.b.root.join("wp-content/uploads").exists());
    w.assert_converged();

    // a chmod is a meta change; a delete removes it everywhere
    std::fs::set_permissions(
        w.b.root.join("wp-content/media/2026/a.jpg"),
        std::fs::Permissions::from_mode(0o600),
    )
    .unwrap();
    w.observe_b(&[look("wp-content/media/2026/a.jpg")]);
    w.settle();
    assert_eq!(
        std::fs::metadata(w.a.root.join("wp-content/media/2026/a.jpg"))
            .unwrap()
            .mode()
            & 0o777,
        0o600
    );
    w.assert_converged();
    std::fs::remove_dir_all(w.a.root.join("wp-content/media")).unwrap();
    w.observe_a(&[look("wp-content/media")]);
    w.settle();
    assert!(!w.b.root.join("wp-content/media").exists());
    w.assert_converged();
    // the deleted file is kept and restorable
    let path = "wp-content/media/2026/a.jpg";
    assert_eq!(w.hub.versions(SITE, path).unwrap().len(), 1);
    assert!(matches!(
        w.hub.restore(SITE, path, None).unwrap(),
        Outcome::Applied { .. }
    ));
    w.settle();
    assert_eq!(std::fs::read(w.b.root.join(path)).unwrap(), data);
    assert_eq!(std::fs::read(w.a.root.join(path)).unwrap(), data);
    w.assert_converged();
}

#[test]
fn two_writers_same_base_the_second_loses_and_is_kept() {
    let mut w = World::new();
    write(&w.a.root, "index.php", b"<?php // v0");
    w.observe_a(&[look("index.php")]);
    w.settle();
    // FTP on one server and PHP on the other, both from v0
    write(&w.a.root, "index.php", b"<?php // ftp upload");
    write(&w.b.root, "index.php", b"<?php // php write");
    w.observe_a(&[look("index.php")]);
    w.observe_b(&[look("index.php")]);
    assert_eq!(w.sync_a().applied, 1);
    assert_eq!(w.sync_b().conflicts, 1);
    w.settle();
    for root in [&w.a.root, &w.b.root] {
        assert_eq!(
            std::fs::read(root.join("index.php")).unwrap(),
            b"<?php // ftp upload"
        );
    }
    let c = w.hub.conflicts(SITE).unwrap();
    assert_eq!(c.len(), 1);
    assert_eq!(
        (c[0].path.as_str(), c[0].origin.as_str()),
        ("index.php", "web-2")
    );
    assert_eq!(
        w.hub.conflict_content(SITE, &c[0].id).unwrap(),
        b"<?php // php write"
    );
    w.assert_converged();
}

#[test]
fn a_modification_beats_a_deletion_in_either_order() {
    for delete_first in [true, false] {
        let mut w = World::new();
        write(&w.a.root, "cfg.php", b"v0");
        w.observe_a(&[look("cfg.php")]);
        w.settle();
        std::fs::remove_file(w.a.root.join("cfg.php")).unwrap();
        write(&w.b.root, "cfg.php", b"v1 from web-2");
        w.observe_a(&[look("cfg.php")]);
        w.observe_b(&[look("cfg.php")]);
        if delete_first {
            w.sync_a();
            w.sync_b();
        } else {
            w.sync_b();
            w.sync_a();
        }
        w.settle();
        for root in [&w.a.root, &w.b.root] {
            assert_eq!(
                std::fs::read(root.join("cfg.php")).unwrap(),
                b"v1 from web-2",
                "delete first: {delete_first}"
            );
        }
        w.assert_converged();
    }
}

#[test]
fn a_folder_deleted_while_a_file_is_created_in_it_loses_nothing() {
    for delete_first in [true, false] {
        let mut w = World::new();
        write(&w.a.root, "cache/old.txt", b"old");
        w.observe_a(&[look("cache/old.txt")]);
        w.settle();
        std::fs::remove_dir_all(w.a.root.join("cache")).unwrap();
        write(&w.b.root, "cache/new.txt", b"created on web-2");
        w.observe_a(&[look("cache")]);
        w.observe_b(&[look("cache/new.txt")]);
        if delete_first {
            w.sync_a();
            w.sync_b();
        } else {
            w.sync_b();
            w.sync_a();
        }
        w.settle();
        for root in [&w.a.root, &w.b.root] {
            assert_eq!(
                std::fs::read(root.join("cache/new.txt")).unwrap(),
                b"created on web-2",
                "delete first: {delete_first}"
            );
            assert!(!root.join("cache/old.txt").exists());
        }
        w.assert_converged();
    }
}

#[test]
fn hub_down_writes_wait_in_the_outbox_across_a_restart_and_converge() {
    let mut w = World::new();
    write(&w.a.root, "a.txt", b"a0");
    w.observe_a(&[look("a.txt")]);
    w.settle();
    w.set_up(false);
    for i in 0..5 {
        write(
            &w.a.root,
            &format!("up/{i}.bin"),
            &body(i, 10_000 + usize::from(i)),
        );
        w.observe_a(&[look(&format!("up/{i}.bin"))]);
    }
    write(&w.b.root, "b.txt", b"from web-2");
    w.observe_b(&[look("b.txt")]);
    std::fs::remove_file(w.a.root.join("a.txt")).unwrap();
    w.observe_a(&[look("a.txt")]);
    assert!(w.sync_a().hub_down);
    assert!(w.sync_b().hub_down);
    let pending = w.a.replica.pending();
    assert!(pending >= 7, "{pending}");
    // the web server restarts while the hub is still down: nothing is lost
    World::restart(&mut w.a);
    assert_eq!(w.a.replica.pending(), pending);
    // and the hub restarts too
    w.restart_hub(|_| {});
    w.set_up(true);
    w.settle();
    for i in 0..5u8 {
        assert_eq!(
            std::fs::read(w.b.root.join(format!("up/{i}.bin"))).unwrap(),
            body(i, 10_000 + usize::from(i))
        );
    }
    assert_eq!(
        std::fs::read(w.a.root.join("b.txt")).unwrap(),
        b"from web-2"
    );
    assert!(!w.b.root.join("a.txt").exists());
    w.assert_converged();
}

#[test]
fn the_hub_keeps_its_sequence_and_replays_an_interrupted_change() {
    let mut w = World::new();
    write(&w.a.root, "one.txt", b"1");
    w.observe_a(&[look("one.txt")]);
    w.settle();
    let head = w.hub.manifest(SITE).unwrap().seq;
    assert_eq!(head, 1);
    w.restart_hub(|_| {});
    assert_eq!(w.hub.manifest(SITE).unwrap().seq, head);
    // a crash after the log entry was written but before the tree changed: the blob is
    // in the store, the entry in the log, the tree without the file
    let data = b"logged before the crash".to_vec();
    let hash = blake3::hash(&data).to_hex().to_string();
    let site_dir = w.hub_cfg.dir.join(SITE);
    std::fs::write(site_dir.join("blobs").join(&hash), &data).unwrap();
    let entry = proto::sitesync::Entry {
        seq: head + 1,
        origin: "ftp".into(),
        time: Mtime::now(),
        change: proto::sitesync::Change {
            id: "web-2.crash.1".into(),
            path: "two.txt".into(),
            base: None,
            op: proto::sitesync::Op::Put {
                node: Node::File {
                    blake3: hash,
                    size: data.len() as u64,
                    mode: 0o644,
                    mtime: Mtime {
                        secs: 1_650_000_000,
                        nanos: 5,
                    },
                },
            },
        },
    };
    let mut line = serde_json::to_vec(&entry).unwrap();
    line.push(b'\n');
    let mut log = std::fs::OpenOptions::new()
        .append(true)
        .open(site_dir.join("log.jsonl"))
        .unwrap();
    std::io::Write::write_all(&mut log, &line).unwrap();
    drop(log);
    w.restart_hub(|_| {});
    // the site's state is opened (and repaired) on first use
    assert_eq!(w.hub.manifest(SITE).unwrap().seq, head + 1);
    assert_eq!(
        std::fs::read(w.hub.tree_path(SITE).join("two.txt")).unwrap(),
        data
    );
    w.settle();
    assert_eq!(std::fs::read(w.a.root.join("two.txt")).unwrap(), data);
    assert_eq!(std::fs::read(w.b.root.join("two.txt")).unwrap(), data);
    // the sequence goes on from the log
    write(&w.b.root, "three.txt", b"3");
    w.observe_b(&[look("three.txt")]);
    w.settle();
    assert_eq!(w.hub.manifest(SITE).unwrap().seq, head + 2);
    w.assert_converged();
}

#[test]
fn local_paths_stay_local_and_rescan_finds_what_events_missed() {
    let mut w = World::with(|_| {}, &["wp-content/cache"]);
    write(&w.a.root, "wp-content/cache/page.html", b"cached");
    write(&w.a.root, "wp-content/plugins/p/p.php", b"plugin");
    write(&w.a.root, "robots.txt", b"robots");
    std::os::unix::fs::symlink("../../etc/passwd", w.a.root.join("evil")).unwrap();
    std::os::unix::fs::symlink("robots.txt", w.a.root.join("robots-link")).unwrap();
    // no events at all: an overflowed queue, then a rescan
    w.observe_a(&[Look::Rescan]);
    w.settle();
    assert!(!w.b.root.join("wp-content/cache").exists());
    assert_eq!(
        std::fs::read(w.b.root.join("wp-content/plugins/p/p.php")).unwrap(),
        b"plugin"
    );
    assert_eq!(
        std::fs::read_link(w.b.root.join("robots-link")).unwrap(),
        PathBuf::from("robots.txt")
    );
    assert!(std::fs::symlink_metadata(w.b.root.join("evil")).is_err());
    // deletions found by a rescan too
    std::fs::remove_dir_all(w.a.root.join("wp-content/plugins")).unwrap();
    std::fs::remove_file(w.a.root.join("evil")).unwrap();
    w.observe_a(&[Look::Rescan]);
    w.settle();
    assert!(!w.b.root.join("wp-content/plugins").exists());
    // a remote change never overwrites a local path either
    let hub = w.hub_nodes();
    assert!(hub.keys().all(|p| !p.starts_with("wp-content/cache")));
    assert!(w.a.root.join("wp-content/cache/page.html").exists());
    let m = w.hub.manifest(SITE).unwrap();
    assert_eq!(w.b.replica.disk_nodes().unwrap(), m.nodes);
}

#[test]
fn a_full_disk_on_the_hub_refuses_keeps_the_outbox_and_corrupts_nothing() {
    let mut w = World::new();
    write(&w.a.root, "keep.txt", b"before");
    w.observe_a(&[look("keep.txt")]);
    w.settle();
    let before = w.hub.manifest(SITE).unwrap();
    w.restart_hub(|c| c.reserve_bytes = u64::MAX / 4);
    write(&w.a.root, "keep.txt", b"after");
    write(&w.a.root, "new.bin", &body(3, 50_000));
    w.observe_a(&[look("keep.txt"), look("new.bin")]);
    let r = w.sync_a();
    assert!(r.hub_full, "{r:?}");
    assert_eq!(w.a.replica.pending(), 2);
    assert_eq!(w.hub.manifest(SITE).unwrap(), before);
    assert_eq!(
        std::fs::read(w.hub.tree_path(SITE).join("keep.txt")).unwrap(),
        b"before"
    );
    // the application's files are untouched on the writing server
    assert_eq!(std::fs::read(w.a.root.join("keep.txt")).unwrap(), b"after");
    // space again: everything goes through
    w.restart_hub(|c| c.reserve_bytes = 0);
    w.settle();
    assert_eq!(std::fs::read(w.b.root.join("keep.txt")).unwrap(), b"after");
    w.assert_converged();
}

#[test]
fn large_files_go_in_chunks_and_the_size_limit_keeps_them_local() {
    let mut w = World::with(|c| c.max_file_size = 1 << 20, &[]);
    let big = body(9, (1 << 20) - 7);
    write(&w.a.root, "big.bin", &big);
    w.observe_a(&[look("big.bin")]);
    w.settle();
    assert_eq!(std::fs::read(w.b.root.join("big.bin")).unwrap(), big);
    let huge = body(8, (1 << 20) + 1);
    write(&w.a.root, "huge.bin", &huge);
    w.observe_a(&[look("huge.bin")]);
    w.settle();
    assert!(!w.b.root.join("huge.bin").exists());
    assert_eq!(std::fs::read(w.a.root.join("huge.bin")).unwrap(), huge);
    assert!(!w.hub_nodes().contains_key("huge.bin"));
}

#[test]
fn echoes_of_applied_changes_are_not_pushed_back() {
    let mut w = World::new();
    write(&w.a.root, "x/y.txt", b"y");
    w.observe_a(&[look("x/y.txt")]);
    w.settle();
    let seq = w.hub.manifest(SITE).unwrap().seq;
    // capture on web-2 reports what the replica itself wrote
    w.observe_b(&[look("x"), look("x/y.txt"), Look::Rescan]);
    assert_eq!(w.b.replica.pending(), 0);
    w.settle();
    assert_eq!(w.hub.manifest(SITE).unwrap().seq, seq);
}

#[test]
fn a_server_reaches_only_the_sites_granted_to_it() {
    use sitesync::api::{HubApi, HubError};
    let w = World::new();
    let stranger = sitesync::inprocess::InProcess::new(w.hub.clone(), "web-9", w.up.clone());
    let c = proto::sitesync::Change {
        id: "web-9.1".into(),
        path: "index.php".into(),
        base: None,
        op: proto::sitesync::Op::Delete,
    };
    assert!(matches!(stranger.push(SITE, &c), Err(HubError::Refused(_))));
    assert!(matches!(
        stranger.log_after(SITE, 0, 10),
        Err(HubError::Refused(_))
    ));
    assert!(matches!(stranger.manifest(SITE), Err(HubError::Refused(_))));
    let granted = w.conn(&w.a);
    assert!(matches!(
        granted.manifest("other.example"),
        Err(HubError::Refused(_))
    ));
    assert!(granted.manifest(SITE).is_ok());
}

#[test]
fn a_replica_behind_the_retained_log_catches_up_from_the_manifest() {
    let mut w = World::with(|c| c.log_keep = 2, &[]);
    write(&w.b.root, "old.txt", b"old");
    write(&w.b.root, "local-edit.txt", b"b0");
    w.observe_b(&[look("old.txt"), look("local-edit.txt")]);
    w.settle();
    // web-2 is away while web-1 makes many changes
    for i in 0..8u8 {
        write(&w.a.root, &format!("n/{i}.txt"), &[i; 10]);
        w.observe_a(&[look(&format!("n/{i}.txt"))]);
        w.sync_a();
    }
    std::fs::remove_file(w.a.root.join("old.txt")).unwrap();
    w.observe_a(&[look("old.txt")]);
    w.sync_a();
    // and writes something itself meanwhile, not yet pushed
    write(&w.b.root, "local-edit.txt", b"b1");
    w.observe_b(&[look("local-edit.txt")]);
    let seq = w.b.replica.index().seq;
    assert!(matches!(
        w.hub.log_after(SITE, seq, 10).unwrap(),
        proto::sitesync::LogRead::SnapshotNeeded { .. }
    ));
    w.settle();
    assert!(!w.b.root.join("old.txt").exists());
    assert_eq!(std::fs::read(w.b.root.join("n/7.txt")).unwrap(), [7; 10]);
    assert_eq!(
        std::fs::read(w.a.root.join("local-edit.txt")).unwrap(),
        b"b1"
    );
    w.assert_converged();
}

#[test]
fn versions_are_kept_restorable_by_time_and_expire() {
    let mut w = World::new();
    let mut times = Vec::new();
    for v in [b"v1", b"v2", b"v3"] {
        write(&w.a.root, "page.php", v);
        w.observe_a(&[look("page.php")]);
        w.settle();
        times.push(Mtime::now());
    }
    // v1 and v2 were overwritten: both kept, oldest first
    let kept = w.hub.versions(SITE, "page.php").unwrap();
    assert_eq!(kept.len(), 2);
    // as it was just after v2 was written (v3 replaced it later)
    assert!(matches!(
        w.hub.restore(SITE, "page.php", Some(times[1])).unwrap(),
        Outcome::Applied { .. }
    ));
    w.settle();
    assert_eq!(std::fs::read(w.b.root.join("page.php")).unwrap(), b"v2");
    assert_eq!(std::fs::read(w.a.root.join("page.php")).unwrap(), b"v2");
    w.assert_converged();
    // as it was just after v1 was written
    w.hub.restore(SITE, "page.php", Some(times[0])).unwrap();
    w.settle();
    assert_eq!(std::fs::read(w.b.root.join("page.php")).unwrap(), b"v1");
    w.assert_converged();
    // after the last replacement the current file is the one of that time
    assert!(w.hub.restore(SITE, "page.php", Some(Mtime::now())).is_err());
    // seven days later they are still there, eight days later gone
    let now = Mtime::now();
    let later = |days: i64| Mtime {
        secs: now.secs + days * 86_400,
        nanos: 0,
    };
    assert_eq!(w.hub.expire(SITE, later(6)).unwrap(), 0);
    assert_eq!(w.hub.expire(SITE, later(8)).unwrap(), 4);
    assert!(w.hub.versions(SITE, "page.php").unwrap().is_empty());
}

#[test]
fn a_garbled_partial_upload_is_detected_and_sent_again() {
    let mut w = World::new();
    let data = body(5, 200_000);
    write(&w.a.root, "video.mp4", &data);
    w.observe_a(&[look("video.mp4")]);
    // what a crash of the hub mid-upload may leave: a part file with a wrong tail
    let hash = blake3::hash(&data).to_hex().to_string();
    w.hub.manifest(SITE).unwrap();
    let part = w
        .hub_cfg
        .dir
        .join(SITE)
        .join("blobs")
        .join(format!("{hash}.part"));
    std::fs::write(&part, vec![0u8; 70_000]).unwrap();
    // the upload resumes after the part, the whole does not verify: nothing accepted,
    // the change stays queued
    let r = w.sync_a();
    assert!(r.hub_down, "{r:?}");
    assert_eq!(w.a.replica.pending(), 1);
    assert!(!w.hub_nodes().contains_key("video.mp4"));
    // the next round sends it whole
    w.settle();
    assert_eq!(std::fs::read(w.b.root.join("video.mp4")).unwrap(), data);
    w.assert_converged();
}

#[test]
fn a_write_refused_over_the_quota_is_pushed_again_once_requeued() {
    let mut w = World::new();
    w.hub
        .set_quotas([(SITE.to_string(), 1000)].into_iter().collect());
    write(&w.a.root, "small.txt", &body(1, 600));
    w.observe_a(&[look("small.txt")]);
    w.settle();
    write(&w.a.root, "over.txt", &body(2, 600));
    w.observe_a(&[look("over.txt")]);
    w.settle();
    assert!(!w.hub_nodes().contains_key("over.txt"), "the hub took it");
    assert!(w.a.replica.index().kept_local.contains("over.txt"));
    // room again (another server deleted a file): what was refused goes out
    std::fs::remove_file(w.b.root.join("small.txt")).unwrap();
    w.observe_b(&[look("small.txt")]);
    w.settle();
    assert_eq!(w.a.replica.requeue_kept_local().unwrap(), 1);
    w.settle();
    assert_eq!(
        std::fs::read(w.b.root.join("over.txt")).unwrap(),
        body(2, 600)
    );
    assert!(w.a.replica.index().kept_local.is_empty());
    w.assert_converged();
}
