//! The hub's conflict rules as one pure function (issue 14): a change based on a stale
//! version is a conflict, a modification beats a deletion, otherwise arrival order wins
//! (the change that arrived first is the current version). No I/O here, so the rules are
//! property-tested on their own.

use proto::sitesync::{Change, Node, Op};

/// What the hub does with one pushed change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Apply it to the tree and log it.
    Apply,
    /// Its result is already the current state (a retry, or two writers wrote the same):
    /// acknowledge without a new entry.
    AlreadyThere,
    /// It lost; the current version stays. `keep_loser`: the change carries content that
    /// must be kept in the conflicts area (nothing is silently lost).
    Conflict {
        /// Whether the losing change has content to keep.
        keep_loser: bool,
    },
}

/// The state of the hub's tree a verdict depends on.
#[derive(Debug, Clone, Copy)]
pub struct Current<'a> {
    /// What is at the change's path.
    pub at_path: Option<&'a Node>,
    /// Whether that path (a directory) holds anything.
    pub has_children: bool,
    /// What is at a rename's destination.
    pub at_to: Option<&'a Node>,
}

/// Decides a change against the hub's current state.
pub fn decide(change: &Change, cur: Current<'_>) -> Verdict {
    let base_ok = change.base == cur.at_path.map(Node::version);
    match &change.op {
        Op::Put { node } => {
            if cur.at_path == Some(node) {
                return Verdict::AlreadyThere;
            }
            let has_content = !node.is_dir();
            match cur.at_path {
                // Modification beats deletion: the path was deleted meanwhile, the put wins.
                None => Verdict::Apply,
                // A directory never replaces something else in one step, and a file never
                // replaces a directory (which may hold files the writer did not know).
                Some(c) if c.is_dir() != node.is_dir() => Verdict::Conflict {
                    keep_loser: has_content,
                },
                Some(c) if c.is_dir() => Verdict::Apply,
                Some(_) if base_ok => Verdict::Apply,
                // The same content from a stale base (another server wrote the same bytes,
                // or a rename brought them there): nothing of the writer's is lost, it
                // adopts the hub's mode and mtime, so every server agrees on the ETag.
                Some(c) if c.version() == node.version() => Verdict::Conflict { keep_loser: false },
                Some(_) => Verdict::Conflict {
                    keep_loser: has_content,
                },
            }
        }
        Op::Delete => match cur.at_path {
            None => Verdict::AlreadyThere,
            // Modification beats deletion; a folder holding what the writer did not know
            // (a file created in it elsewhere) is not deleted.
            Some(_) if !base_ok || cur.has_children => Verdict::Conflict { keep_loser: false },
            Some(_) => Verdict::Apply,
        },
        Op::Rename { to_base, .. } => {
            let to_ok = match cur.at_to {
                None => true,
                Some(t) if t.is_dir() => false,
                Some(t) => to_base.as_deref() == Some(t.version().as_str()),
            };
            match cur.at_path {
                // The source is gone and `to` already holds that content (moved there by
                // another server, or a retry after the hub lost its memory of ids): the
                // writer pushes its `to` again as a put, which adopts the hub's mode and
                // mtime (same content) instead of keeping its own and disagreeing.
                Some(_) if base_ok && to_ok => Verdict::Apply,
                // The writer still has the content at `to` and pushes it again as a put.
                _ => Verdict::Conflict { keep_loser: false },
            }
        }
        Op::Meta { .. } => match cur.at_path {
            Some(Node::Symlink { .. }) if base_ok => Verdict::AlreadyThere,
            Some(_) if base_ok => Verdict::Apply,
            _ => Verdict::Conflict { keep_loser: false },
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use proto::sitesync::Mtime;

    fn file(h: u8) -> Node {
        Node::File {
            blake3: format!("{h:02x}").repeat(32),
            size: 1,
            mode: 0o644,
            mtime: Mtime { secs: 1, nanos: 0 },
        }
    }

    fn node() -> impl Strategy<Value = Option<Node>> {
        prop_oneof![
            Just(None),
            (0u8..3).prop_map(|h| Some(file(h))),
            Just(Some(Node::Dir { mode: 0o755 })),
        ]
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            node().prop_filter_map("put", |n| n.map(|node| Op::Put { node })),
            Just(Op::Delete),
            node().prop_map(|b| Op::Rename {
                to: "t".into(),
                to_base: b.map(|n| n.version())
            }),
            Just(Op::Meta {
                mode: 0o600,
                mtime: None
            }),
        ]
    }

    fn change(base: Option<Node>, op: Op) -> Change {
        Change {
            id: "c".into(),
            path: "p".into(),
            base: base.map(|n| n.version()),
            op,
        }
    }

    #[test]
    fn the_issue_cases() {
        let (a, b) = (file(1), file(2));
        let cur = |n| Current {
            at_path: n,
            has_children: false,
            at_to: None,
        };
        // FTP upload and PHP write from the same base: the second to arrive loses, kept.
        let second = change(Some(file(0)), Op::Put { node: b.clone() });
        assert_eq!(
            decide(&second, cur(Some(&a))),
            Verdict::Conflict { keep_loser: true }
        );
        // modify vs delete, either order: the modification wins
        let delete = change(Some(file(0)), Op::Delete);
        assert_eq!(
            decide(&delete, cur(Some(&a))),
            Verdict::Conflict { keep_loser: false }
        );
        let modify = change(Some(file(0)), Op::Put { node: a.clone() });
        assert_eq!(decide(&modify, cur(None)), Verdict::Apply);
        // folder deleted while a file was created in it elsewhere: the folder stays
        let dir = Node::Dir { mode: 0o755 };
        let rmdir = change(Some(dir.clone()), Op::Delete);
        let with_child = Current {
            at_path: Some(&dir),
            has_children: true,
            at_to: None,
        };
        assert_eq!(
            decide(&rmdir, with_child),
            Verdict::Conflict { keep_loser: false }
        );
        assert_eq!(decide(&rmdir, cur(Some(&dir))), Verdict::Apply);
    }

    proptest! {
        #[test]
        fn rules_hold(base in node(), at in node(), kids in any::<bool>(), at_to in node(), op in op()) {
            let c = change(base.clone(), op.clone());
            let cur = Current { at_path: at.as_ref(), has_children: kids && at.as_ref().is_some_and(Node::is_dir), at_to: at_to.as_ref() };
            let v = decide(&c, cur);
            let stale = base.as_ref().map(Node::version) != at.as_ref().map(Node::version);
            match &op {
                Op::Put { node } => {
                    // a put that loses always has its file content kept
                    if let Verdict::Conflict { keep_loser } = v {
                        prop_assert_eq!(keep_loser, !node.is_dir());
                        prop_assert!(at.is_some());
                    }
                    // a put on a deleted path always wins (modification beats deletion)
                    if at.is_none() { prop_assert_eq!(&v, &Verdict::Apply); }
                    // an up-to-date put over a file with another file always applies
                    if !stale && at.as_ref().is_some_and(|n| !n.is_dir()) && !node.is_dir() && at.as_ref() != Some(node) {
                        prop_assert_eq!(&v, &Verdict::Apply);
                    }
                }
                Op::Delete => {
                    // a deletion never removes a version its writer did not know
                    if v == Verdict::Apply { prop_assert!(!stale && !cur.has_children); }
                }
                Op::Rename { .. } | Op::Meta { .. } => {
                    if v == Verdict::Apply { prop_assert!(!stale); }
                }
            }
            if stale && at.is_some() && !matches!(op, Op::Put { .. }) {
                prop_assert!(v != Verdict::Apply);
            }
        }
    }
}
