//! Turning what capture saw into changes: the path on disk is compared with the version
//! the index holds. Equal means an echo (a change this replica applied itself) or
//! nothing; otherwise a put, delete, rename or meta change goes to the outbox with the
//! index's version as its base, and the index takes the new version. A directory that
//! appears (moved in from outside) brings its whole content; one that vanishes takes
//! everything the index knew beneath it, deepest first.

use std::path::Path;

use proto::sitesync::{Node, Op};

use super::{Look, Replica, ReplicaError};
use crate::apply::{symlink_stays_inside, TMP_PREFIX};
use crate::safe;
use crate::safe::quick_eq;

fn as_rel(p: &Path) -> Option<String> {
    let s = p.to_str()?.trim_start_matches("./").to_string();
    proto::manifest::check_path(&s).then_some(s)
}

impl Replica {
    /// Takes what capture saw and queues the changes it means (durably) before returning.
    pub fn observe(&mut self, looks: &[Look]) -> Result<(), ReplicaError> {
        for look in looks {
            match look {
                Look::Path(p) => match as_rel(p) {
                    Some(p) => self.observe_path(&p)?,
                    None => {
                        tracing::warn!(path = %p.display(), "sitesync: ignoring an unusable path")
                    }
                },
                Look::Renamed { from, to } => match (as_rel(from), as_rel(to)) {
                    (Some(f), Some(t)) => self.observe_rename(&f, &t)?,
                    (f, t) => {
                        for p in [f, t].into_iter().flatten() {
                            self.observe_path(&p)?;
                        }
                    }
                },
                Look::Rescan => self.rescan()?,
            }
        }
        self.save()?;
        Ok(())
    }

    /// Compares `path` on disk with the index and queues what differs.
    pub(super) fn observe_path(&mut self, path: &str) -> Result<(), ReplicaError> {
        let name = safe::split(path).1;
        if self.is_local(path) || name.starts_with(TMP_PREFIX) {
            return Ok(());
        }
        let disk = match safe::stat_node(&self.root()?, path) {
            Ok(d) => d,
            Err(e) if e.raw_os_error() == Some(rustix::io::Errno::NAMETOOLONG.raw_os_error()) => {
                tracing::warn!(%path, "sitesync: name too long, not replicated");
                return Ok(());
            }
            // a symlink in the way of the parent (ELOOP) or similar: nothing we replicate
            Err(e) if e.raw_os_error() == Some(rustix::io::Errno::LOOP.raw_os_error()) => None,
            Err(e) => return Err(e.into()),
        };
        let old = self.index.nodes.get(path).cloned();
        match (old, disk) {
            (None, None) => {}
            (Some(old), None) => self.delete_tree(path, &old)?,
            (old, Some(d)) if old.as_ref() == Some(&d) => {}
            (Some(Node::Dir { .. }), Some(Node::Dir { mode })) => {
                self.enqueue(path, Some("dir".into()), Op::Meta { mode, mtime: None })?;
                self.index
                    .nodes
                    .insert(path.to_string(), Node::Dir { mode });
            }
            (
                Some(Node::File { blake3: h1, .. }),
                Some(
                    ref d @ Node::File {
                        ref blake3,
                        mode,
                        mtime,
                        ..
                    },
                ),
            ) if &h1 == blake3 => {
                self.enqueue(
                    path,
                    Some(h1),
                    Op::Meta {
                        mode,
                        mtime: Some(mtime),
                    },
                )?;
                self.index.nodes.insert(path.to_string(), d.clone());
            }
            (Some(old), Some(d)) if old.is_dir() != d.is_dir() => {
                self.delete_tree(path, &old)?;
                self.put(path, d)?;
            }
            (_, Some(d)) => self.put(path, d)?,
        }
        Ok(())
    }

    fn delete_tree(&mut self, path: &str, old: &Node) -> Result<(), ReplicaError> {
        if old.is_dir() {
            for child in self.index.subtree(path).into_iter().rev() {
                if let Some(n) = self.index.nodes.remove(&child) {
                    self.enqueue(&child, Some(n.version()), Op::Delete)?;
                }
            }
        }
        self.index.nodes.remove(path);
        self.enqueue(path, Some(old.version()), Op::Delete)?;
        Ok(())
    }

    fn ensure_ancestors(&mut self, path: &str) -> Result<(), ReplicaError> {
        let mut at = 0;
        while let Some(i) = path[at..].find('/') {
            let anc = &path[..at + i];
            at += i + 1;
            if !self.index.nodes.get(anc).is_some_and(Node::is_dir) {
                self.observe_path(anc)?;
            }
        }
        Ok(())
    }

    fn put(&mut self, path: &str, disk: Node) -> Result<(), ReplicaError> {
        self.ensure_ancestors(path)?;
        if self.index.nodes.get(path) == Some(&disk) {
            // queued already by a new ancestor bringing its content along
            return Ok(());
        }
        let base = self.index.nodes.get(path).map(Node::version);
        let node = match disk {
            Node::File { .. } => {
                let mut f = match safe::open_file(&self.root()?, path) {
                    Ok(f) => f,
                    Err(e) if safe::gone(&e) => return Ok(()),
                    Err(e) => return Err(e.into()),
                };
                let md = f.metadata()?;
                let (h, n) = self.outbox.stage_blob(&mut f)?;
                match safe::file_node(&md, h) {
                    Node::File {
                        blake3,
                        mode,
                        mtime,
                        ..
                    } => Node::File {
                        blake3,
                        size: n,
                        mode,
                        mtime,
                    },
                    other => other,
                }
            }
            Node::Symlink { ref target } if !symlink_stays_inside(path, target) => {
                tracing::warn!(%path, "sitesync: symlink pointing outside the site, not replicated");
                return Ok(());
            }
            other => other,
        };
        let new_dir = node.is_dir() && base.is_none();
        self.enqueue(path, base, Op::Put { node: node.clone() })?;
        self.index.nodes.insert(path.to_string(), node);
        if new_dir {
            // moved in from outside the tree: its content comes along
            let sub = safe::open_dir(&self.root()?, path)?;
            let children = safe::walk(&sub, false, &|_| false)?;
            for child in children.keys() {
                self.observe_path(&format!("{path}/{child}"))?;
            }
        }
        Ok(())
    }

    fn observe_rename(&mut self, from: &str, to: &str) -> Result<(), ReplicaError> {
        let Some(old) = self.index.nodes.get(from).cloned() else {
            return self.observe_path(to);
        };
        let moved = safe::stat_node(&self.root()?, to)?;
        if self.is_local(from)
            || self.is_local(to)
            || moved.as_ref().map(Node::is_dir) != Some(old.is_dir())
            || self.index.nodes.get(to).is_some_and(Node::is_dir)
            || to.starts_with(&format!("{from}/"))
        {
            self.observe_path(from)?;
            return self.observe_path(to);
        }
        self.ensure_ancestors(to)?;
        let to_base = self.index.nodes.get(to).map(Node::version);
        self.enqueue(
            from,
            Some(old.version()),
            Op::Rename {
                to: to.to_string(),
                to_base,
            },
        )?;
        self.index.move_subtree(from, to);
        // changed after the move (or on the way): the usual comparison queues it
        self.observe_path(to)?;
        if old.is_dir() {
            // what was written inside the folder just before it moved (its events
            // folded into the rename) is in none of the moved entries: compare the
            // whole moved subtree, as a rescan would
            self.rescan_under(to)?;
        }
        // something new may already sit at the old path
        self.observe_path(from)
    }

    /// [`Self::rescan`] of the subtree under the folder `dir` only.
    fn rescan_under(&mut self, dir: &str) -> Result<(), ReplicaError> {
        let sub = match safe::open_dir(&self.root()?, dir) {
            Ok(d) => d,
            // moved on again or replaced: the events of that bring it
            Err(_) => return Ok(()),
        };
        let prefix = format!("{dir}/");
        let disk = safe::walk(&sub, false, &|p| self.is_local(&format!("{prefix}{p}")))?;
        for (p, d) in &disk {
            let full = format!("{prefix}{p}");
            if !self.index.nodes.get(&full).is_some_and(|o| quick_eq(o, d)) {
                self.observe_path(&full)?;
            }
        }
        let gone: Vec<String> = self
            .index
            .subtree(dir)
            .into_iter()
            .filter(|p| p != dir && !disk.contains_key(&p[prefix.len()..]))
            .collect();
        for p in gone.iter().rev() {
            if self.index.nodes.contains_key(p) {
                self.observe_path(p)?;
            }
        }
        Ok(())
    }

    fn rescan(&mut self) -> Result<(), ReplicaError> {
        let disk = safe::walk(&self.root()?, false, &|p| self.is_local(p))?;
        for (p, d) in &disk {
            if !self.index.nodes.get(p).is_some_and(|o| quick_eq(o, d)) {
                self.observe_path(p)?;
            }
        }
        let gone: Vec<String> = self
            .index
            .nodes
            .keys()
            .filter(|p| !disk.contains_key(*p))
            .cloned()
            .collect();
        for p in gone.iter().rev() {
            if self.index.nodes.contains_key(p) {
                self.observe_path(p)?;
            }
        }
        Ok(())
    }
}
