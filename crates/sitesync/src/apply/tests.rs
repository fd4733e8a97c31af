//! Tests of applying changes to a tempdir tree: exact metadata, confinement, refusals.

use super::*;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;

fn hash(b: &[u8]) -> String {
    blake3::hash(b).to_hex().to_string()
}

fn put_file(path: &str, body: &[u8], mode: u32, mtime: Mtime) -> Change {
    Change {
        id: "t".into(),
        path: path.into(),
        base: None,
        op: Op::Put {
            node: Node::File {
                blake3: hash(body),
                size: body.len() as u64,
                mode,
                mtime,
            },
        },
    }
}

fn change(path: &str, op: Op) -> Change {
    Change {
        id: "t".into(),
        path: path.into(),
        base: None,
        op,
    }
}

const T: Mtime = Mtime {
    secs: 1_600_000_000,
    nanos: 987_654_321,
};

#[test]
fn put_writes_content_mode_mtime_exactly_and_strips_setuid() {
    let d = tempfile::tempdir().unwrap();
    let root = safe::open_root(d.path()).unwrap();
    let c = put_file("a/b/c.txt", b"hello", 0o754, T);
    let created = apply(&root, &c, Some(&mut &b"hello"[..]), None).unwrap();
    assert_eq!(created, vec!["a".to_string(), "a/b".to_string()]);
    let p = d.path().join("a/b/c.txt");
    assert_eq!(std::fs::read(&p).unwrap(), b"hello");
    let md = std::fs::metadata(&p).unwrap();
    assert_eq!(md.mode() & 0o7777, 0o754);
    assert_eq!((md.mtime(), md.mtime_nsec()), (T.secs, i64::from(T.nanos)));
    assert_eq!(
        safe::stat_node(&root, "a/b/c.txt").unwrap(),
        match &c.op {
            Op::Put { node } => Some(node.clone()),
            _ => unreachable!(),
        }
    );
    // setuid/setgid/sticky never reach the disk, even if a caller skipped the wire check
    let suid = put_file("s", b"x", 0o6755, T);
    apply(&root, &suid, Some(&mut &b"x"[..]), None).unwrap();
    assert_eq!(
        std::fs::metadata(d.path().join("s")).unwrap().mode() & 0o7777,
        0o755
    );
    // no temp file left behind
    let names: Vec<_> = std::fs::read_dir(d.path().join("a/b")).unwrap().collect();
    assert_eq!(names.len(), 1);
}

#[test]
fn wrong_content_is_refused_and_leaves_the_old_file() {
    let d = tempfile::tempdir().unwrap();
    let root = safe::open_root(d.path()).unwrap();
    std::fs::write(d.path().join("f"), b"old").unwrap();
    let c = put_file("f", b"new", 0o644, T);
    let e = apply(&root, &c, Some(&mut &b"evil"[..]), None).unwrap_err();
    assert!(matches!(e, ApplyError::Corrupt(_)), "{e}");
    assert_eq!(std::fs::read(d.path().join("f")).unwrap(), b"old");
    assert_eq!(std::fs::read_dir(d.path()).unwrap().count(), 1);
}

#[test]
fn symlinks_and_dotdot_never_lead_out() {
    let d = tempfile::tempdir().unwrap();
    std::fs::create_dir(d.path().join("site")).unwrap();
    std::fs::create_dir(d.path().join("outside")).unwrap();
    std::os::unix::fs::symlink("../outside", d.path().join("site/evil")).unwrap();
    let root = safe::open_root(&d.path().join("site")).unwrap();
    // writing through a planted symlink to a directory fails
    let c = put_file("evil/x", b"x", 0o644, T);
    assert!(apply(&root, &c, Some(&mut &b"x"[..]), None).is_err());
    assert!(!d.path().join("outside/x").exists());
    // `..` in a path (a caller that skipped the wire check) fails
    let c = put_file("../outside/y", b"y", 0o644, T);
    assert!(apply(&root, &c, Some(&mut &b"y"[..]), None).is_err());
    assert!(!d.path().join("outside/y").exists());
    // a symlink whose target leaves the site is refused; one that stays inside is made
    for t in ["../outside", "/etc/passwd", "a/../../x"] {
        let c = change(
            "l",
            Op::Put {
                node: Node::Symlink { target: t.into() },
            },
        );
        let e = apply(&root, &c, None, None).unwrap_err();
        assert!(matches!(e, ApplyError::SymlinkEscapes(_)), "{t}: {e}");
    }
    let c = change(
        "sub/l",
        Op::Put {
            node: Node::Symlink {
                target: "../evil/../f".into(),
            },
        },
    );
    apply(&root, &c, None, None).unwrap();
    assert_eq!(
        std::fs::read_link(d.path().join("site/sub/l")).unwrap(),
        Path::new("../evil/../f")
    );
    // deleting through a symlinked parent fails instead of deleting outside
    std::fs::write(d.path().join("outside/keep"), b"k").unwrap();
    let c = change("evil/keep", Op::Delete);
    assert!(apply(&root, &c, None, None).is_err());
    assert!(d.path().join("outside/keep").exists());
    // meta on a symlink does not follow it
    std::fs::set_permissions(
        d.path().join("outside"),
        std::fs::Permissions::from_mode(0o755),
    )
    .unwrap();
    let c = change(
        "evil",
        Op::Meta {
            mode: 0o777,
            mtime: None,
        },
    );
    apply(&root, &c, None, None).unwrap();
    assert_eq!(
        std::fs::metadata(d.path().join("outside")).unwrap().mode() & 0o777,
        0o755
    );
}

#[test]
fn mode_changes_never_go_through_a_symlink() {
    let d = tempfile::tempdir().unwrap();
    std::fs::create_dir(d.path().join("site")).unwrap();
    std::fs::write(d.path().join("secret"), b"s").unwrap();
    std::fs::set_permissions(
        d.path().join("secret"),
        std::fs::Permissions::from_mode(0o600),
    )
    .unwrap();
    std::os::unix::fs::symlink("../secret", d.path().join("site/f")).unwrap();
    let root = safe::open_root(&d.path().join("site")).unwrap();
    // what a swap between the type check and the change would meet
    assert!(safe::set_mode(&root, "f", 0o666).is_err());
    assert_eq!(
        std::fs::metadata(d.path().join("secret")).unwrap().mode() & 0o777,
        0o600
    );
    // a put of a directory over it refuses too
    let c = change(
        "f",
        Op::Put {
            node: Node::Dir { mode: 0o777 },
        },
    );
    assert!(apply(&root, &c, None, None).is_err());
    assert_eq!(
        std::fs::metadata(d.path().join("secret")).unwrap().mode() & 0o777,
        0o600
    );
}

#[test]
fn names_over_the_os_limit_are_an_error_not_a_panic() {
    let d = tempfile::tempdir().unwrap();
    let root = safe::open_root(d.path()).unwrap();
    let long = "n".repeat(300);
    for p in [long.clone(), format!("{long}/x"), format!("a/{long}")] {
        let c = put_file(&p, b"x", 0o644, T);
        assert!(apply(&root, &c, Some(&mut &b"x"[..]), None).is_err(), "{p}");
        // a delete of such a name must return, whatever it returns (no panic)
        let _ = apply(&root, &change(&p, Op::Delete), None, None);
        assert!(safe::stat_node(&root, &p).is_err());
    }
}

#[test]
fn directory_rename_is_one_rename_and_delete_refuses_unknown_content() {
    let d = tempfile::tempdir().unwrap();
    let root = safe::open_root(d.path()).unwrap();
    std::fs::create_dir_all(d.path().join("d/e")).unwrap();
    std::fs::write(d.path().join("d/e/f"), b"f").unwrap();
    let ino = std::fs::metadata(d.path().join("d/e/f")).unwrap().ino();
    let c = change(
        "d",
        Op::Rename {
            to: "x/y".into(),
            to_base: None,
        },
    );
    apply(&root, &c, None, None).unwrap();
    assert!(!d.path().join("d").exists());
    assert_eq!(
        std::fs::metadata(d.path().join("x/y/e/f")).unwrap().ino(),
        ino
    );
    // rename of something absent
    let e = apply(
        &root,
        &change(
            "nope",
            Op::Rename {
                to: "z".into(),
                to_base: None,
            },
        ),
        None,
        None,
    )
    .unwrap_err();
    assert!(matches!(e, ApplyError::Missing(_)));
    // a directory that still holds a file is not deleted
    let e = apply(&root, &change("x/y/e", Op::Delete), None, None).unwrap_err();
    assert!(matches!(e, ApplyError::NotEmpty(_)), "{e}");
    assert!(d.path().join("x/y/e/f").exists());
    apply(&root, &change("x/y/e/f", Op::Delete), None, None).unwrap();
    apply(&root, &change("x/y/e", Op::Delete), None, None).unwrap();
    assert!(!d.path().join("x/y/e").exists());
    // deleting what is not there is fine (idempotent)
    apply(&root, &change("x/y/e", Op::Delete), None, None).unwrap();
    apply(&root, &change("q/r/s", Op::Delete), None, None).unwrap();
}

#[test]
fn meta_sets_mode_and_exact_mtime() {
    let d = tempfile::tempdir().unwrap();
    let root = safe::open_root(d.path()).unwrap();
    std::fs::write(d.path().join("f"), b"f").unwrap();
    let c = change(
        "f",
        Op::Meta {
            mode: 0o600,
            mtime: Some(T),
        },
    );
    apply(&root, &c, None, None).unwrap();
    let md = std::fs::metadata(d.path().join("f")).unwrap();
    assert_eq!(md.mode() & 0o777, 0o600);
    assert_eq!((md.mtime(), md.mtime_nsec()), (T.secs, i64::from(T.nanos)));
    let c = change(
        "gone",
        Op::Meta {
            mode: 0o600,
            mtime: None,
        },
    );
    assert!(matches!(
        apply(&root, &c, None, None),
        Err(ApplyError::Missing(_))
    ));
}

proptest::proptest! {
    #[test]
    fn lexical_symlink_check_matches_a_reference(
        parent in proptest::collection::vec(proptest::sample::select(vec!["a", "b"]), 0..3),
        target in proptest::collection::vec(proptest::sample::select(vec!["..", ".", "x", ""]), 1..6),
    ) {
        let path = if parent.is_empty() { "l".to_string() } else { format!("{}/l", parent.join("/")) };
        let target = target.join("/");
        let mut depth = parent.len() as i64;
        let mut escaped = false;
        for c in target.split('/') {
            match c {
                ".." => { depth -= 1; if depth < 0 { escaped = true; } }
                "" | "." => {}
                _ => depth += 1,
            }
        }
        let expect = !target.is_empty() && !target.starts_with('/') && !escaped;
        proptest::prop_assert_eq!(symlink_stays_inside(&path, &target), expect);
    }
}
