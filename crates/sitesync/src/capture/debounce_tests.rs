//! Unit tests of the pure debouncer over synthetic observations and explicit times.

use super::*;

const MS: Duration = Duration::from_millis(1);

fn timing() -> Timing {
    Timing {
        debounce: 200 * MS,
        max_delay: 5000 * MS,
        max_open_delay: 60_000 * MS,
    }
}

fn p(s: &str) -> PathBuf {
    PathBuf::from(s)
}

fn path(s: &str) -> (SiteId, Out) {
    (1, Out::Path(p(s)))
}

fn renamed(a: &str, b: &str) -> (SiteId, Out) {
    (
        1,
        Out::Renamed {
            from: p(a),
            to: p(b),
        },
    )
}

#[test]
fn a_change_is_reported_once_quiet_for_the_debounce() {
    let t0 = Instant::now();
    let mut d = Debouncer::new(timing());
    d.touch(1, &p("a.txt"), Touch::Created, t0);
    d.touch(1, &p("a.txt"), Touch::Closed, t0 + 100 * MS);
    assert!(d.take_due(t0 + 250 * MS).is_empty(), "changed 150 ms ago");
    assert_eq!(d.next_deadline(), Some(t0 + 300 * MS));
    assert_eq!(d.take_due(t0 + 300 * MS), vec![path("a.txt")]);
    assert_eq!(d.pending(), 0);
    assert_eq!(d.next_deadline(), None);
}

#[test]
fn a_file_rewritten_again_and_again_is_reported_at_max_delay() {
    let t0 = Instant::now();
    let mut d = Debouncer::new(timing());
    let mut t = t0;
    let mut seen = Vec::new();
    while t < t0 + 6000 * MS {
        d.touch(1, &p("cache.php"), Touch::Changed, t);
        d.touch(1, &p("cache.php"), Touch::Closed, t);
        seen.extend(d.take_due(t).into_iter().map(|o| (o, t)));
        t += 100 * MS;
    }
    assert_eq!(seen.len(), 1, "{seen:?}");
    assert_eq!(seen[0].0, path("cache.php"));
    assert_eq!(seen[0].1, t0 + 5000 * MS);
}

#[test]
fn a_file_open_for_writing_waits_for_its_close_not_for_max_delay() {
    let t0 = Instant::now();
    let mut d = Debouncer::new(timing());
    d.touch(1, &p("big.zip"), Touch::Created, t0);
    let mut t = t0;
    while t < t0 + 8000 * MS {
        d.touch(1, &p("big.zip"), Touch::Modified, t);
        assert!(
            d.take_due(t).is_empty(),
            "reported while being written at {:?}",
            t - t0
        );
        t += 100 * MS;
    }
    // Closed: it stopped changing, and it waited longer than max_delay already.
    d.touch(1, &p("big.zip"), Touch::Closed, t);
    assert_eq!(d.take_due(t), vec![path("big.zip")]);
}

#[test]
fn a_file_held_open_and_written_forever_still_travels_at_max_open_delay() {
    let t0 = Instant::now();
    let mut d = Debouncer::new(timing());
    let mut t = t0;
    let mut seen = Vec::new();
    while t <= t0 + 61_000 * MS {
        d.touch(1, &p("debug.log"), Touch::Modified, t);
        seen.extend(d.take_due(t).into_iter().map(|o| (o, t)));
        t += 500 * MS;
    }
    assert_eq!(seen, vec![(path("debug.log"), t0 + 60_000 * MS)]);
}

#[test]
fn a_temp_file_created_and_removed_within_the_window_is_never_reported() {
    let t0 = Instant::now();
    let mut d = Debouncer::new(timing());
    d.touch(1, &p("tmp123"), Touch::Created, t0);
    d.touch(1, &p("tmp123"), Touch::Closed, t0 + 10 * MS);
    d.remove(1, &p("tmp123"), false, t0 + 20 * MS);
    assert_eq!(d.pending(), 0);
    assert!(d.take_due(t0 + 10_000 * MS).is_empty());
}

#[test]
fn a_temp_directory_and_its_files_removed_within_the_window_are_never_reported() {
    let t0 = Instant::now();
    let mut d = Debouncer::new(timing());
    d.touch(1, &p("t"), Touch::Created, t0);
    d.touch(1, &p("t/x"), Touch::Created, t0);
    d.touch(1, &p("t/y"), Touch::Created, t0);
    d.remove(1, &p("t/x"), false, t0 + MS);
    // y is left for the directory removal to sweep (as when events were merged).
    d.remove(1, &p("t"), true, t0 + 2 * MS);
    assert!(d.take_due(t0 + 10_000 * MS).is_empty());
}

#[test]
fn a_file_that_existed_and_is_removed_is_reported() {
    let t0 = Instant::now();
    let mut d = Debouncer::new(timing());
    d.touch(1, &p("old.txt"), Touch::Modified, t0);
    d.remove(1, &p("old.txt"), false, t0 + MS);
    d.remove(1, &p("other.txt"), false, t0 + MS);
    assert_eq!(
        d.take_due(t0 + 300 * MS),
        vec![path("old.txt"), path("other.txt")]
    );
}

#[test]
fn write_to_temp_then_rename_over_the_target_reports_the_target_only() {
    let t0 = Instant::now();
    let mut d = Debouncer::new(timing());
    d.touch(1, &p("c/.tmp-1"), Touch::Created, t0);
    d.touch(1, &p("c/.tmp-1"), Touch::Modified, t0);
    d.touch(1, &p("c/.tmp-1"), Touch::Closed, t0 + MS);
    d.rename(1, &p("c/.tmp-1"), &p("c/plugin.php"), false, t0 + 2 * MS);
    assert_eq!(d.take_due(t0 + 10_000 * MS), vec![path("c/plugin.php")]);
}

#[test]
fn a_temp_renamed_over_a_target_then_deleted_still_reports_the_target() {
    // The target may have existed before: its deletion must reach the replica.
    let t0 = Instant::now();
    let mut d = Debouncer::new(timing());
    d.touch(1, &p(".tmp"), Touch::Created, t0);
    d.rename(1, &p(".tmp"), &p("t.php"), false, t0 + MS);
    d.remove(1, &p("t.php"), false, t0 + 2 * MS);
    assert_eq!(d.take_due(t0 + 10_000 * MS), vec![path("t.php")]);
}

#[test]
fn a_stable_file_renamed_is_one_rename_and_a_modified_one_also_a_path_after_it() {
    let t0 = Instant::now();
    let mut d = Debouncer::new(timing());
    d.rename(1, &p("a"), &p("b"), false, t0);
    assert_eq!(d.take_due(t0), vec![renamed("a", "b")]);
    d.touch(1, &p("x"), Touch::Closed, t0);
    d.rename(1, &p("x"), &p("y"), false, t0 + MS);
    assert_eq!(d.take_due(t0 + MS), vec![renamed("x", "y")]);
    assert_eq!(d.take_due(t0 + 300 * MS), vec![path("y")]);
}

#[test]
fn a_directory_rename_moves_pending_children_after_it() {
    let t0 = Instant::now();
    let mut d = Debouncer::new(timing());
    d.touch(1, &p("a/x"), Touch::Closed, t0);
    d.touch(1, &p("a/sub/y"), Touch::Created, t0);
    d.touch(1, &p("z"), Touch::Closed, t0);
    d.rename(1, &p("a"), &p("b"), true, t0 + MS);
    assert_eq!(d.take_due(t0 + MS), vec![renamed("a", "b")]);
    assert_eq!(
        d.take_due(t0 + 300 * MS),
        vec![path("z"), path("b/x"), path("b/sub/y")]
    );
}

#[test]
fn deletions_under_a_rename_target_are_reported_before_the_rename() {
    let t0 = Instant::now();
    let mut d = Debouncer::new(timing());
    d.remove(1, &p("dst/old"), false, t0);
    d.rename(1, &p("src"), &p("dst"), true, t0 + MS);
    assert!(
        d.take_due(t0 + 100 * MS).is_empty(),
        "the rename waits for dst/old"
    );
    assert_eq!(
        d.take_due(t0 + 200 * MS),
        vec![path("dst/old"), renamed("src", "dst")]
    );
}

#[test]
fn a_change_after_a_pending_rename_is_not_merged_before_it() {
    let t0 = Instant::now();
    let mut d = Debouncer::new(timing());
    d.remove(1, &p("d/f"), false, t0);
    d.rename(1, &p("e"), &p("d"), true, t0 + MS);
    d.touch(1, &p("d/f"), Touch::Closed, t0 + 2 * MS);
    assert_eq!(
        d.take_due(t0 + 1000 * MS),
        vec![path("d/f"), renamed("e", "d"), path("d/f")],
        "the later write of d/f must come after the rename"
    );
}

#[test]
fn a_rescan_replaces_what_was_pending_for_its_site_only() {
    let t0 = Instant::now();
    let mut d = Debouncer::new(timing());
    d.touch(1, &p("a"), Touch::Closed, t0);
    d.touch(2, &p("b"), Touch::Closed, t0);
    d.rename(1, &p("c"), &p("e"), false, t0);
    d.rescan(1, t0);
    d.touch(1, &p("after"), Touch::Closed, t0 + MS);
    assert_eq!(d.take_due(t0 + MS), vec![(1, Out::Rescan)]);
    assert_eq!(
        d.take_due(t0 + 500 * MS),
        vec![(2, Out::Path(p("b"))), path("after")]
    );
}

#[test]
fn forgetting_a_site_drops_its_items() {
    let t0 = Instant::now();
    let mut d = Debouncer::new(timing());
    d.touch(1, &p("a"), Touch::Closed, t0);
    d.rescan(1, t0);
    d.touch(2, &p("b"), Touch::Closed, t0);
    d.forget(1);
    assert_eq!(d.take_due(t0 + 500 * MS), vec![(2, Out::Path(p("b")))]);
}

#[test]
fn items_due_but_blocked_do_not_make_the_deadline_fall_in_the_past() {
    let t0 = Instant::now();
    let mut d = Debouncer::new(timing());
    d.touch(1, &p("src/x"), Touch::Changed, t0);
    d.remove(1, &p("dst/old"), false, t0 + 4900 * MS);
    d.rename(1, &p("src"), &p("dst"), true, t0 + 4950 * MS);
    // dst/x is due (changed at t0) but waits for the rename, which waits for dst/old.
    assert!(d.take_due(t0 + 4950 * MS).is_empty());
    assert_eq!(d.next_deadline(), Some(t0 + 5100 * MS));
    assert_eq!(
        d.take_due(t0 + 5100 * MS),
        vec![path("dst/old"), renamed("src", "dst"), path("dst/x")]
    );
    assert_eq!(d.next_deadline(), None);
}

#[test]
fn a_rename_below_a_directory_not_reported_yet_is_a_removal_and_a_creation() {
    // Found by the model property test: `c` is new and gone again before it is reported,
    // so the replica could never rename `b` into it.
    let t0 = Instant::now();
    let mut d = Debouncer::new(timing());
    d.touch(1, &p("c"), Touch::Created, t0);
    assert!(
        d.rename(1, &p("b"), &p("c/x"), false, t0),
        "reported as gone + appeared"
    );
    d.remove(1, &p("c/x"), false, t0);
    d.remove(1, &p("c"), true, t0);
    // c/x is looked at too (harmless: missing, and unknown to the replica).
    assert_eq!(d.take_due(t0 + 200 * MS), vec![path("b"), path("c/x")]);
}

#[test]
fn renaming_a_collapsed_temp_target_again_is_a_removal_and_a_creation() {
    // t.php may or may not have existed before: the replica may not know it, so it
    // cannot be told to rename it.
    let t0 = Instant::now();
    let mut d = Debouncer::new(timing());
    d.touch(1, &p(".tmp"), Touch::Created, t0);
    d.rename(1, &p(".tmp"), &p("t.php"), false, t0);
    assert!(d.rename(1, &p("t.php"), &p("u.php"), false, t0));
    let mut got = d.take_due(t0 + 200 * MS);
    got.sort_by(|a, b| format!("{a:?}").cmp(&format!("{b:?}")));
    assert_eq!(got, vec![path("t.php"), path("u.php")]);
}

#[test]
fn a_deleted_file_replaced_by_a_renamed_directory_is_reported_before_the_rename() {
    // Found by the model property test: the replica holds the file `a`; renaming the
    // directory `b` over it can only work once it learned that `a` was deleted.
    let t0 = Instant::now();
    let mut d = Debouncer::new(timing());
    d.remove(1, &p("a"), false, t0);
    d.rename(1, &p("b"), &p("a"), true, t0 + MS);
    assert!(
        d.take_due(t0 + MS).is_empty(),
        "the rename waits for the deletion"
    );
    assert_eq!(
        d.take_due(t0 + 200 * MS),
        vec![path("a"), renamed("b", "a")]
    );
}
