#![allow(clippy::unwrap_used)] // test helpers outside #[test] fns may panic
//! Random interleavings of writes, deletes, renames and folder removals on two servers,
//! with pushes and pulls in any order, the hub going down and up, and restarts of the
//! hub and the replicas (from what they persisted): after everything
//! is pushed and pulled, the hub and both servers hold the same tree (disk and index).

mod harness;

use harness::{look, World};
use proptest::prelude::*;
use sitesync::replica::Look;

const FILES: [&str; 5] = ["a", "b", "d/c", "d/e", "d/f/g"];

#[derive(Debug, Clone)]
enum Step {
    Write(bool, usize, u8),
    Delete(bool, usize),
    RemoveDir(bool),
    Rename(bool, usize, usize),
    Sync(bool),
    Hub(bool),
    RestartReplica(bool),
    RestartHub,
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        4 => (any::<bool>(), 0..FILES.len(), any::<u8>()).prop_map(|(s, f, b)| Step::Write(s, f, b)),
        2 => (any::<bool>(), 0..FILES.len()).prop_map(|(s, f)| Step::Delete(s, f)),
        1 => any::<bool>().prop_map(Step::RemoveDir),
        2 => (any::<bool>(), 0..FILES.len(), 0..FILES.len()).prop_map(|(s, f, t)| Step::Rename(s, f, t)),
        4 => any::<bool>().prop_map(Step::Sync),
        1 => any::<bool>().prop_map(Step::Hub),
        1 => any::<bool>().prop_map(Step::RestartReplica),
        1 => Just(Step::RestartHub),
    ]
}

fn run(w: &mut World, steps: &[Step]) {
    for s in steps {
        match s {
            Step::Write(on_a, f, b) => {
                let server = if *on_a { &w.a } else { &w.b };
                let p = server.root.join(FILES[*f]);
                if std::fs::create_dir_all(p.parent().unwrap()).is_ok() {
                    let _ = std::fs::write(&p, vec![*b; 100 + usize::from(*b)]);
                }
                observe(w, *on_a, &[look(FILES[*f])]);
            }
            Step::Delete(on_a, f) => {
                let server = if *on_a { &w.a } else { &w.b };
                let _ = std::fs::remove_file(server.root.join(FILES[*f]));
                observe(w, *on_a, &[look(FILES[*f])]);
            }
            Step::RemoveDir(on_a) => {
                let server = if *on_a { &w.a } else { &w.b };
                let _ = std::fs::remove_dir_all(server.root.join("d"));
                observe(w, *on_a, &[look("d")]);
            }
            Step::Rename(on_a, f, t) => {
                let server = if *on_a { &w.a } else { &w.b };
                let (from, to) = (server.root.join(FILES[*f]), server.root.join(FILES[*t]));
                if f != t
                    && from.is_file()
                    && std::fs::create_dir_all(to.parent().unwrap()).is_ok()
                    && std::fs::rename(&from, &to).is_ok()
                {
                    observe(
                        w,
                        *on_a,
                        &[Look::Renamed {
                            from: FILES[*f].into(),
                            to: FILES[*t].into(),
                        }],
                    );
                }
            }
            Step::Sync(on_a) => {
                if *on_a {
                    w.sync_a();
                } else {
                    w.sync_b();
                }
            }
            Step::Hub(up) => w.set_up(*up),
            Step::RestartReplica(on_a) => World::restart(if *on_a { &mut w.a } else { &mut w.b }),
            Step::RestartHub => w.restart_hub(|_| {}),
        }
    }
}

fn observe(w: &mut World, on_a: bool, looks: &[Look]) {
    if on_a {
        w.observe_a(looks);
    } else {
        w.observe_b(looks);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 32, max_shrink_iters: 200, ..ProptestConfig::default() })]
    #[test]
    fn any_interleaving_converges(steps in proptest::collection::vec(step(), 1..40)) {
        let mut w = World::new();
        run(&mut w, &steps);
        w.set_up(true);
        w.settle();
        w.assert_converged();
    }
}

#[test]
fn found_case_1() {
    let mut w = World::new();
    run(
        &mut w,
        &[
            Step::Write(false, 0, 0),
            Step::Write(true, 3, 0),
            Step::Write(false, 3, 0),
            Step::Write(false, 2, 0),
            Step::RemoveDir(true),
        ],
    );
    w.settle();
    w.assert_converged();
}

/// Found by `any_interleaving_converges`: a file renamed over an identical copy on one
/// server while the other server deletes the source.
#[test]
fn found_case_2() {
    let mut w = World::new();
    run(
        &mut w,
        &[
            Step::Write(true, 0, 0),
            Step::Rename(true, 0, 2),
            Step::Write(true, 0, 0),
            Step::Sync(true),
            Step::Sync(false),
            Step::Delete(false, 0),
            Step::Rename(true, 0, 2),
            Step::Sync(false),
        ],
    );
    w.set_up(true);
    w.settle();
    w.assert_converged();
}

/// Found by `any_interleaving_converges`: like [`found_case_2`], but the rename reaches
/// the hub before the other server's deletion of its source.
#[test]
fn found_case_3() {
    let mut w = World::new();
    run(
        &mut w,
        &[
            Step::Write(true, 0, 0),
            Step::Rename(true, 0, 2),
            Step::Write(true, 0, 0),
            Step::Sync(true),
            Step::Sync(false),
            Step::Delete(false, 0),
            Step::Rename(true, 0, 2),
            Step::Sync(true),
        ],
    );
    w.set_up(true);
    w.settle();
    w.assert_converged();
}

/// A file written into a folder that is renamed before capture reported the write (its
/// events folded into the rename, as under load): the moved subtree is compared, so the
/// file reaches the hub and the other server.
#[test]
fn a_write_folded_into_a_folder_rename_is_not_lost() {
    let mut w = World::new();
    std::fs::create_dir_all(w.a.root.join("old/sub")).unwrap();
    std::fs::write(w.a.root.join("old/sub/one.txt"), b"one").unwrap();
    w.observe_a(&[look("old")]);
    w.settle();
    std::fs::write(
        w.a.root.join("old/sub/x.txt"),
        b"written just before the move",
    )
    .unwrap();
    std::fs::rename(w.a.root.join("old"), w.a.root.join("new")).unwrap();
    w.observe_a(&[Look::Renamed {
        from: "old".into(),
        to: "new".into(),
    }]);
    w.settle();
    w.assert_converged();
    assert!(w.hub_nodes().contains_key("new/sub/x.txt"));
    assert!(w.b.root.join("new/sub/x.txt").is_file());
}
