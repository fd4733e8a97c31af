//! Property test of the debouncer against a model replica: random file-system operations on
//! a model disk are fed to the debouncer as the engine would; a model replica applies what
//! comes out, at the time it comes out, the way the contract says (`Path`: copy what the
//! disk holds now, or remove; `Renamed`: move what it knows). Once everything is due, the
//! replica must hold exactly the disk: no order, merge or drop may lose a change.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use proptest::prelude::*;

use super::{Debouncer, Out, Timing, Touch};

#[derive(Debug, Clone, PartialEq, Eq)]
enum Node {
    File(u32),
    Dir,
}

type Tree = BTreeMap<PathBuf, Node>;

#[derive(Debug, Clone)]
enum Op {
    Write(usize, u32),
    /// Written through a descriptor kept open (no close seen).
    WriteOpen(usize, u32),
    Chmod(usize),
    Delete(usize),
    Mkdir(usize),
    RemoveTree(usize),
    Rename(usize, usize),
    Wait(u64),
}

/// A small namespace so that operations collide: two levels of three names.
fn names() -> Vec<PathBuf> {
    let mut v = Vec::new();
    for a in ["a", "b", "c"] {
        v.push(PathBuf::from(a));
        for b in ["x", "y", "z"] {
            v.push(Path::new(a).join(b));
            for c in ["1", "2"] {
                v.push(Path::new(a).join(b).join(c));
            }
        }
    }
    v
}

fn op() -> impl Strategy<Value = Op> {
    let n = names().len();
    prop_oneof![
        4 => (0..n, any::<u32>()).prop_map(|(p, c)| Op::Write(p, c)),
        1 => (0..n, any::<u32>()).prop_map(|(p, c)| Op::WriteOpen(p, c)),
        1 => (0..n).prop_map(Op::Chmod),
        2 => (0..n).prop_map(Op::Delete),
        3 => (0..n).prop_map(Op::Mkdir),
        1 => (0..n).prop_map(Op::RemoveTree),
        3 => (0..n, 0..n).prop_map(|(a, b)| Op::Rename(a, b)),
        3 => (0u64..400).prop_map(Op::Wait),
    ]
}

fn parent_is_dir(t: &Tree, p: &Path) -> bool {
    match p.parent() {
        Some(q) if q.as_os_str().is_empty() => true,
        Some(q) => t.get(q) == Some(&Node::Dir),
        None => false,
    }
}

fn subtree(t: &Tree, top: &Path) -> Vec<PathBuf> {
    t.keys().filter(|k| k.starts_with(top)).cloned().collect()
}

fn move_subtree(t: &mut Tree, from: &Path, to: &Path) {
    for k in subtree(t, to) {
        t.remove(&k);
    }
    for k in subtree(t, from) {
        if let Some(v) = t.remove(&k) {
            let rest = k
                .strip_prefix(from)
                .map(Path::to_path_buf)
                .unwrap_or_default();
            let new = if rest.as_os_str().is_empty() {
                to.to_path_buf()
            } else {
                to.join(rest)
            };
            t.insert(new, v);
        }
    }
}

/// Apply one output to the replica, reading the disk as it is now.
fn apply(replica: &mut Tree, disk: &Tree, out: &Out) -> Result<(), String> {
    match out {
        Out::Path(p) => match disk.get(p) {
            Some(node) => {
                if replica.get(p) != Some(node) {
                    for k in subtree(replica, p) {
                        replica.remove(&k);
                    }
                }
                // Missing parents are created, as a replica writing a file would.
                let mut q = p.parent();
                while let Some(d) = q.filter(|d| !d.as_os_str().is_empty()) {
                    replica.insert(d.to_path_buf(), Node::Dir);
                    q = d.parent();
                }
                replica.insert(p.clone(), node.clone());
            }
            None => {
                for k in subtree(replica, p) {
                    replica.remove(&k);
                }
            }
        },
        Out::Renamed { from, to } => {
            // rename(2)'s rules, as the hub applying it will meet them.
            let Some(node) = replica.get(from) else {
                return Err(format!(
                    "rename of {from:?}, which the replica does not know"
                ));
            };
            if !parent_is_dir(replica, to) {
                return Err(format!("rename to {to:?}, whose parent the replica lacks"));
            }
            match (replica.get(to), node) {
                (None, _) | (Some(Node::File(_)), Node::File(_)) => {}
                (Some(Node::Dir), Node::Dir) if subtree(replica, to).len() == 1 => {}
                (Some(_), _) => {
                    return Err(format!(
                        "rename over {to:?}, which the replica cannot replace"
                    ))
                }
            }
            move_subtree(replica, from, to);
        }
        Out::Rescan => return Err("no rescan expected".into()),
    }
    Ok(())
}

fn run(ops: Vec<Op>) -> Result<(), String> {
    let names = names();
    let timing = Timing {
        debounce: Duration::from_millis(200),
        max_delay: Duration::from_millis(1000),
        max_open_delay: Duration::from_millis(3000),
    };
    let mut d = Debouncer::new(timing);
    let (mut disk, mut replica) = (Tree::new(), Tree::new());
    let t0 = Instant::now();
    let mut now = t0;
    let mut log = Vec::new();
    for op in ops {
        match op {
            Op::Wait(ms) => now += Duration::from_millis(ms),
            Op::Write(i, c) => {
                let p = &names[i];
                if parent_is_dir(&disk, p) && disk.get(p) != Some(&Node::Dir) {
                    let new = !disk.contains_key(p);
                    disk.insert(p.clone(), Node::File(c));
                    if new {
                        d.touch(1, p, Touch::Created, now);
                    }
                    d.touch(1, p, Touch::Modified, now);
                    d.touch(1, p, Touch::Closed, now);
                }
            }
            Op::WriteOpen(i, c) => {
                let p = &names[i];
                if matches!(disk.get(p), Some(Node::File(_))) {
                    disk.insert(p.clone(), Node::File(c));
                    d.touch(1, p, Touch::Modified, now);
                }
            }
            Op::Chmod(i) => {
                if disk.contains_key(&names[i]) {
                    d.touch(1, &names[i], Touch::Changed, now);
                }
            }
            Op::Delete(i) => {
                if matches!(disk.get(&names[i]), Some(Node::File(_))) {
                    disk.remove(&names[i]);
                    d.remove(1, &names[i], false, now);
                }
            }
            Op::Mkdir(i) => {
                let p = &names[i];
                if parent_is_dir(&disk, p) && !disk.contains_key(p) {
                    disk.insert(p.clone(), Node::Dir);
                    d.touch(1, p, Touch::Created, now);
                }
            }
            Op::RemoveTree(i) => {
                let p = &names[i];
                if disk.get(p) == Some(&Node::Dir) {
                    // rm -rf: deepest first, as the kernel reports it.
                    let mut all = subtree(&disk, p);
                    all.sort_by_key(|k| std::cmp::Reverse(k.components().count()));
                    for k in all {
                        let is_dir = disk.remove(&k) == Some(Node::Dir);
                        d.remove(1, &k, is_dir, now);
                    }
                }
            }
            Op::Rename(a, b) => {
                let (from, to) = (&names[a], &names[b]);
                let Some(node) = disk.get(from).cloned() else {
                    continue;
                };
                let ok = from != to
                    && !to.starts_with(from)
                    && parent_is_dir(&disk, to)
                    && match (disk.get(to), &node) {
                        (None, _) => true,
                        (Some(Node::File(_)), Node::File(_)) => true,
                        (Some(Node::Dir), Node::Dir) => subtree(&disk, to).len() == 1,
                        _ => false,
                    };
                if ok {
                    move_subtree(&mut disk, from, to);
                    if d.rename(1, from, to, node == Node::Dir, now) {
                        // As the engine does: a directory's content is reported.
                        for k in subtree(&disk, to).into_iter().filter(|k| k != to) {
                            d.touch(1, &k, Touch::Created, now);
                        }
                    }
                }
            }
        }
        log.push(format!("{:?}", op));
        for (_, out) in d.take_due(now) {
            log.push(format!("  -> {out:?}"));
            apply(&mut replica, &disk, &out).map_err(|e| format!("{e}\n{}", log.join("\n")))?;
        }
    }
    let end = now + Duration::from_secs(3600);
    for (_, out) in d.take_due(end) {
        log.push(format!("  -> {out:?} (end)"));
        apply(&mut replica, &disk, &out).map_err(|e| format!("{e}\n{}", log.join("\n")))?;
    }
    if d.pending() != 0 {
        return Err(format!(
            "{} items still pending\n{}",
            d.pending(),
            log.join("\n")
        ));
    }
    if replica != disk {
        return Err(format!(
            "replica diverged\n disk:    {disk:?}\n replica: {replica:?}\n{}",
            log.join("\n")
        ));
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]
    #[test]
    fn the_replica_converges_to_the_disk(ops in prop::collection::vec(op(), 1..60)) {
        if let Err(e) = run(ops) {
            prop_assert!(false, "{}", e);
        }
    }
}

fn at(name: &str) -> usize {
    names()
        .iter()
        .position(|n| n == Path::new(name))
        .unwrap_or(usize::MAX)
}

#[test]
fn a_known_file_moved_into_a_new_directory_that_is_then_removed() {
    let ops = vec![
        Op::Write(at("b"), 1),
        Op::Wait(300),
        Op::Mkdir(at("c")),
        Op::Rename(at("b"), at("c/x")),
        Op::RemoveTree(at("c")),
    ];
    if let Err(e) = run(ops) {
        panic!("{e}");
    }
}
