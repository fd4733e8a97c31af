//! Engine tests with an injected kernel side: synthetic events (overflow, `IN_IGNORED`,
//! unpaired moves) and injected `add_watch` failures (`ENOSPC`), over real directories.

use super::*;
use std::collections::{BTreeSet, HashMap, HashSet};

const MS: Duration = Duration::from_millis(1);

/// Hands out descriptors, can refuse watches like a user at `fs.inotify.max_user_watches`.
#[derive(Default)]
struct Fake {
    next: Wd,
    paths: HashMap<PathBuf, Wd>,
    removed: Vec<Wd>,
    /// Refuse (ENOSPC) directories whose path contains this.
    refuse: Option<&'static str>,
}

impl Backend for Fake {
    fn add_watch(&mut self, dir: &Path) -> io::Result<Wd> {
        if self
            .refuse
            .is_some_and(|r| dir.to_string_lossy().contains(r))
        {
            return Err(io::Error::from_raw_os_error(28));
        }
        if !dir.is_dir() {
            return Err(io::Error::from_raw_os_error(2));
        }
        if let Some(wd) = self.paths.get(dir) {
            return Ok(*wd);
        }
        self.next += 1;
        self.paths.insert(dir.to_path_buf(), self.next);
        Ok(self.next)
    }
    fn rm_watch(&mut self, wd: Wd) {
        self.paths.retain(|_, w| *w != wd);
        self.removed.push(wd);
    }
    fn dropped(&mut self, _wd: Wd) {}
}

fn timing() -> Timing {
    Timing {
        debounce: 200 * MS,
        max_delay: 5000 * MS,
        max_open_delay: 60_000 * MS,
    }
}

fn ev(wd: Wd, mask: EventMask, cookie: u32, name: Option<&str>) -> RawEvent {
    RawEvent {
        wd,
        mask,
        cookie,
        name: name.map(OsString::from),
    }
}

fn tree() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    for d in ["a/b", "cache/x", "c"] {
        std::fs::create_dir_all(dir.path().join(d)).expect("mkdir");
    }
    std::fs::write(dir.path().join("a/b/f.txt"), b"x").expect("write");
    dir
}

fn wd_of(e: &Engine, site: &str, rel: &str) -> Wd {
    let id = e.table.site_id(site).expect("site");
    *e.table
        .site(id)
        .expect("site")
        .dirs
        .get(Path::new(rel))
        .expect("watched")
}

fn all(e: &mut Engine, now: Instant) -> Vec<(String, Seen)> {
    e.take_due(now + 100_000 * MS)
}

#[test]
fn watching_a_tree_watches_every_directory_but_local_ones_and_reports_nothing() {
    let t = tree();
    let mut b = Fake::default();
    let mut e = Engine::new(timing());
    let now = Instant::now();
    e.watch(&mut b, "s", t.path(), vec![PathBuf::from("cache")], now)
        .expect("watch");
    let id = e.table.site_id("s").expect("site");
    let dirs: BTreeSet<&Path> = e
        .table
        .site(id)
        .expect("site")
        .dirs
        .keys()
        .map(PathBuf::as_path)
        .collect();
    let want: BTreeSet<&Path> = ["", "a", "a/b", "c"].iter().map(Path::new).collect();
    assert_eq!(dirs, want);
    assert!(all(&mut e, now).is_empty());
}

#[test]
fn a_queue_overflow_rescans_every_site_and_watches_directories_created_meanwhile() {
    let (t1, t2) = (tree(), tree());
    let mut b = Fake::default();
    let mut e = Engine::new(timing());
    let now = Instant::now();
    e.watch(&mut b, "one", t1.path(), vec![], now)
        .expect("watch");
    e.watch(&mut b, "two", t2.path(), vec![], now)
        .expect("watch");
    let root = wd_of(&e, "one", "");
    e.handle(
        &mut b,
        ev(root, EventMask::CLOSE_WRITE, 0, Some("pending.txt")),
        now,
    );
    // Created while the queue overflowed: no event will ever say so.
    std::fs::create_dir_all(t1.path().join("new/deeper")).expect("mkdir");
    e.handle(&mut b, ev(-1, EventMask::Q_OVERFLOW, 0, None), now);
    let mut got = all(&mut e, now);
    got.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(
        got,
        vec![("one".into(), Seen::Rescan), ("two".into(), Seen::Rescan)]
    );
    let deeper = wd_of(&e, "one", "new/deeper");
    e.handle(
        &mut b,
        ev(deeper, EventMask::CLOSE_WRITE, 0, Some("g")),
        now,
    );
    assert_eq!(
        all(&mut e, now),
        vec![("one".into(), Seen::Path("new/deeper/g".into()))]
    );
}

#[test]
fn a_watch_refused_by_the_kernel_rescans_that_site() {
    let t = tree();
    let mut b = Fake {
        refuse: Some("a/b"),
        ..Fake::default()
    };
    let mut e = Engine::new(timing());
    let now = Instant::now();
    e.watch(&mut b, "s", t.path(), vec![], now)
        .expect("the root is watched");
    assert_eq!(all(&mut e, now), vec![("s".into(), Seen::Rescan)]);
    // A new directory that cannot be watched: the same.
    let a = wd_of(&e, "s", "a");
    std::fs::create_dir(t.path().join("a/b2")).expect("mkdir");
    b.refuse = Some("b2");
    e.handle(
        &mut b,
        ev(a, EventMask::CREATE | EventMask::ISDIR, 0, Some("b2")),
        now,
    );
    assert_eq!(all(&mut e, now), vec![("s".into(), Seen::Rescan)]);
    // Still refused at the retry: another rescan; the retry after that succeeds and
    // rescans once more (changes in a/b2 were not seen until then), then no more.
    assert_eq!(e.next_deadline(), Some(now + WATCH_RETRY));
    e.retry_watches(&mut b, now + WATCH_RETRY);
    assert_eq!(all(&mut e, now), vec![("s".into(), Seen::Rescan)]);
    b.refuse = None;
    e.retry_watches(&mut b, now + 2 * WATCH_RETRY);
    assert_eq!(all(&mut e, now), vec![("s".into(), Seen::Rescan)]);
    assert!(e
        .table
        .site(0)
        .is_some_and(|s| s.dirs.contains_key(Path::new("a/b2"))));
    assert_eq!(e.next_deadline(), None);
    e.retry_watches(&mut b, now + 3 * WATCH_RETRY);
    assert!(all(&mut e, now).is_empty());
}

#[test]
fn a_watch_dropped_for_a_directory_not_deleted_rescans_and_a_deleted_one_does_not() {
    let t = tree();
    let mut b = Fake::default();
    let mut e = Engine::new(timing());
    let now = Instant::now();
    e.watch(&mut b, "s", t.path(), vec![], now).expect("watch");
    let (a, ab, c) = (
        wd_of(&e, "s", "a"),
        wd_of(&e, "s", "a/b"),
        wd_of(&e, "s", "c"),
    );
    // a/b deleted (after its file): DELETE_SELF then IGNORED, and the parent's DELETE.
    e.handle(&mut b, ev(ab, EventMask::DELETE, 0, Some("f.txt")), now);
    e.handle(&mut b, ev(ab, EventMask::DELETE_SELF, 0, None), now);
    e.handle(&mut b, ev(ab, EventMask::IGNORED, 0, None), now);
    e.handle(
        &mut b,
        ev(a, EventMask::DELETE | EventMask::ISDIR, 0, Some("b")),
        now,
    );
    assert_eq!(
        all(&mut e, now),
        vec![
            ("s".into(), Seen::Path("a/b/f.txt".into())),
            ("s".into(), Seen::Path("a/b".into()))
        ]
    );
    // c's watch dropped without a deletion (unmounted, or the kernel lost it).
    e.handle(&mut b, ev(c, EventMask::IGNORED, 0, None), now);
    assert_eq!(all(&mut e, now), vec![("s".into(), Seen::Rescan)]);
}

#[test]
fn a_directory_moved_out_is_a_removal_and_loses_its_watches() {
    let t = tree();
    let mut b = Fake::default();
    let mut e = Engine::new(timing());
    let now = Instant::now();
    e.watch(&mut b, "s", t.path(), vec![], now).expect("watch");
    let (root, a, ab) = (
        wd_of(&e, "s", ""),
        wd_of(&e, "s", "a"),
        wd_of(&e, "s", "a/b"),
    );
    e.handle(
        &mut b,
        ev(root, EventMask::MOVED_FROM | EventMask::ISDIR, 7, Some("a")),
        now,
    );
    assert_eq!(e.next_deadline(), Some(now + MOVE_PAIR_GRACE));
    e.settle_moves(&mut b, now + MOVE_PAIR_GRACE);
    let mut removed = b.removed.clone();
    removed.sort();
    assert_eq!(removed, vec![a, ab]);
    assert_eq!(e.table.lookup(ab), None);
    assert_eq!(all(&mut e, now), vec![("s".into(), Seen::Path("a".into()))]);
}

#[test]
fn a_paired_rename_moves_the_watches_and_later_events_use_the_new_path() {
    let t = tree();
    let mut b = Fake::default();
    let mut e = Engine::new(timing());
    let now = Instant::now();
    e.watch(&mut b, "s", t.path(), vec![], now).expect("watch");
    let (root, c, ab) = (
        wd_of(&e, "s", ""),
        wd_of(&e, "s", "c"),
        wd_of(&e, "s", "a/b"),
    );
    e.handle(
        &mut b,
        ev(root, EventMask::MOVED_FROM | EventMask::ISDIR, 9, Some("a")),
        now,
    );
    e.handle(
        &mut b,
        ev(c, EventMask::MOVED_TO | EventMask::ISDIR, 9, Some("a2")),
        now,
    );
    e.handle(&mut b, ev(ab, EventMask::CLOSE_WRITE, 0, Some("g")), now);
    assert_eq!(
        e.table.lookup(ab).map(|(_, p)| p.to_path_buf()),
        Some(PathBuf::from("c/a2/b"))
    );
    assert_eq!(
        all(&mut e, now),
        vec![
            (
                "s".into(),
                Seen::Renamed {
                    from: "a".into(),
                    to: "c/a2".into()
                }
            ),
            ("s".into(), Seen::Path("c/a2/b/g".into()))
        ]
    );
    assert!(b.removed.is_empty());
}

#[test]
fn a_directory_moved_in_is_reported_with_its_content() {
    let t = tree();
    let outside = tree();
    let mut b = Fake::default();
    let mut e = Engine::new(timing());
    let now = Instant::now();
    e.watch(&mut b, "s", t.path(), vec![], now).expect("watch");
    std::fs::rename(outside.path().join("a"), t.path().join("c/in")).expect("move in");
    let c = wd_of(&e, "s", "c");
    e.handle(
        &mut b,
        ev(c, EventMask::MOVED_TO | EventMask::ISDIR, 3, Some("in")),
        now,
    );
    let got: HashSet<Seen> = all(&mut e, now).into_iter().map(|(_, s)| s).collect();
    let want: HashSet<Seen> = ["c/in", "c/in/b", "c/in/b/f.txt"]
        .iter()
        .map(|p| Seen::Path(p.into()))
        .collect();
    assert_eq!(got, want);
    assert!(e
        .table
        .site(0)
        .is_some_and(|s| s.dirs.contains_key(Path::new("c/in/b"))));
}

#[test]
fn local_paths_are_never_reported_and_moving_into_one_is_a_removal() {
    let t = tree();
    let mut b = Fake::default();
    let mut e = Engine::new(timing());
    let now = Instant::now();
    e.watch(&mut b, "s", t.path(), vec![PathBuf::from("cache")], now)
        .expect("watch");
    let root = wd_of(&e, "s", "");
    e.handle(
        &mut b,
        ev(root, EventMask::ATTRIB | EventMask::ISDIR, 0, Some("cache")),
        now,
    );
    e.handle(
        &mut b,
        ev(root, EventMask::MOVED_FROM, 4, Some("page.html")),
        now,
    );
    e.handle(&mut b, ev(root, EventMask::MOVED_TO, 4, Some("cache")), now);
    assert_eq!(
        all(&mut e, now),
        vec![("s".into(), Seen::Path("page.html".into()))]
    );
}

#[test]
fn a_root_swapped_by_a_deployment_is_unwatched_then_watched_again_at_its_path() {
    let t = tree();
    let mut b = Fake::default();
    let mut e = Engine::new(timing());
    let now = Instant::now();
    e.watch(&mut b, "s", t.path(), vec![], now).expect("watch");
    let (root, ab) = (wd_of(&e, "s", ""), wd_of(&e, "s", "a/b"));
    let old = t.path().with_extension("old");
    std::fs::rename(t.path(), &old).expect("move the root away");
    std::fs::create_dir_all(t.path().join("fresh")).expect("new root");
    e.handle(&mut b, ev(root, EventMask::MOVE_SELF, 0, None), now);
    assert_eq!(b.removed.len(), 6, "every watch of the old tree is dropped");
    assert_eq!(
        e.table.lookup(ab),
        None,
        "the old tree's events are no longer ours"
    );
    assert_eq!(e.next_deadline(), Some(now));
    e.retry_watches(&mut b, now);
    assert_eq!(all(&mut e, now), vec![("s".into(), Seen::Rescan)]);
    let dirs: Vec<PathBuf> = e
        .table
        .site(0)
        .expect("site")
        .dirs
        .keys()
        .cloned()
        .collect();
    assert_eq!(dirs, vec![PathBuf::new(), PathBuf::from("fresh")]);
    assert_eq!(e.next_deadline(), None);
    std::fs::remove_dir_all(old).expect("cleanup");
}

#[test]
fn a_missing_root_is_tried_again_soon() {
    let t = tree();
    let mut b = Fake::default();
    let mut e = Engine::new(timing());
    let now = Instant::now();
    e.watch(&mut b, "s", t.path(), vec![], now).expect("watch");
    let root = wd_of(&e, "s", "");
    let old = t.path().with_extension("gone");
    std::fs::rename(t.path(), &old).expect("move the root away");
    e.handle(&mut b, ev(root, EventMask::MOVE_SELF, 0, None), now);
    e.retry_watches(&mut b, now);
    assert_eq!(all(&mut e, now), vec![("s".into(), Seen::Rescan)]);
    assert_eq!(e.next_deadline(), Some(now + ROOT_RETRY));
    std::fs::create_dir(t.path()).expect("the new root arrives");
    e.retry_watches(&mut b, now + ROOT_RETRY);
    assert_eq!(all(&mut e, now), vec![("s".into(), Seen::Rescan)]);
    assert_eq!(e.table.len(), 1);
    assert_eq!(e.next_deadline(), None);
    std::fs::remove_dir_all(old).expect("cleanup");
}

#[test]
fn a_directory_renamed_before_its_creation_was_handled_is_watched_under_its_new_name() {
    let t = tree();
    let mut b = Fake::default();
    let mut e = Engine::new(timing());
    let now = Instant::now();
    e.watch(&mut b, "s", t.path(), vec![], now).expect("watch");
    let root = wd_of(&e, "s", "");
    // mkdir n; touch n/f; mv n m — all before the CREATE of n is read.
    std::fs::create_dir(t.path().join("m")).expect("mkdir");
    std::fs::write(t.path().join("m/f"), b"f").expect("write");
    e.handle(
        &mut b,
        ev(root, EventMask::CREATE | EventMask::ISDIR, 0, Some("n")),
        now,
    );
    e.handle(
        &mut b,
        ev(root, EventMask::MOVED_FROM | EventMask::ISDIR, 5, Some("n")),
        now,
    );
    e.handle(
        &mut b,
        ev(root, EventMask::MOVED_TO | EventMask::ISDIR, 5, Some("m")),
        now,
    );
    assert!(e
        .table
        .site(0)
        .is_some_and(|s| s.dirs.contains_key(Path::new("m"))));
    let got: HashSet<Seen> = all(&mut e, now).into_iter().map(|(_, s)| s).collect();
    let want: HashSet<Seen> = ["m", "m/f"].iter().map(|p| Seen::Path(p.into())).collect();
    assert_eq!(got, want);
}
