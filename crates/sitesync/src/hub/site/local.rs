//! Writes made on the files server itself (FTP uploads, deployments, anything else that
//! touches a tree directly) adopted into the site's ordered log: the path on disk is
//! compared with the hub's index and each difference is logged (fsynced) as a change
//! whose origin is this server, so every replica applies it. The same comparison runs,
//! by a quick stat, before a pushed change overwrites, deletes or renames a path: a
//! write made here meanwhile is logged first and the push is decided against it (a
//! stale push then conflicts and its content is kept), never silently overwritten.
//!
//! The content of an adopted file is read from the tree by hash when a replica asks;
//! if it changed again meanwhile, the later change is adopted in turn and supersedes it.

use std::io;
use std::path::Path;

use proto::sitesync::{Change, Entry, Mtime, Node, Op};

use super::{ignored, SiteHub};
use crate::apply::{symlink_stays_inside, TMP_PREFIX};
use crate::capture::Seen;
use crate::safe;
use crate::safe::quick_eq;

fn as_rel(p: &Path) -> Option<String> {
    let s = p.to_str()?.trim_start_matches("./").to_string();
    proto::manifest::check_path(&s).then_some(s)
}

/// Whether `path` is one of `local` or beneath one.
fn is_local(local: &[String], path: &str) -> bool {
    local.iter().any(|l| {
        path == l
            || path
                .strip_prefix(l.as_str())
                .is_some_and(|rest| rest.starts_with('/'))
    })
}

fn is_errno(e: &io::Error, errno: rustix::io::Errno) -> bool {
    e.raw_os_error() == Some(errno.raw_os_error())
}

impl SiteHub {
    /// Adopts what `seen` points at; returns how many changes were logged.
    pub(in crate::hub) fn observe(&mut self, seen: &[Seen]) -> io::Result<u64> {
        let before = self.log.head();
        for s in seen {
            match s {
                Seen::Path(p) => match as_rel(p) {
                    Some(p) => self.observe_path(&p)?,
                    None => {
                        tracing::warn!(path = %p.display(), "sitesync: ignoring an unusable path")
                    }
                },
                Seen::Renamed { from, to } => match (as_rel(from), as_rel(to)) {
                    (Some(f), Some(t)) => self.observe_rename(&f, &t)?,
                    (f, t) => {
                        for p in [f, t].into_iter().flatten() {
                            self.observe_path(&p)?;
                        }
                    }
                },
                Seen::Rescan => self.rescan_local()?,
            }
        }
        Ok(self.log.head() - before)
    }

    /// Before a pushed change touches `path`: adopts the disk's version when a stat says
    /// it differs from the index.
    pub(super) fn adopt_disk(&mut self, path: &str) -> io::Result<()> {
        if self.skipped(path) {
            return Ok(());
        }
        let mut none = Vec::new();
        let quick = match safe::open_parent(&self.root()?, path, false, &mut none) {
            Ok((dir, name)) => safe::stat_in(&dir, name, false)?,
            Err(e) if safe::gone(&e) || is_errno(&e, rustix::io::Errno::LOOP) => None,
            Err(e) if is_errno(&e, rustix::io::Errno::NAMETOOLONG) => return Ok(()),
            Err(e) => return Err(e),
        };
        let same = match (self.nodes.get(path), &quick) {
            (None, None) => true,
            (Some(a), Some(b)) => quick_eq(a, b),
            _ => false,
        };
        if same {
            return Ok(());
        }
        tracing::info!(site = %self.name, %path, "sitesync: adopting a local write before a push");
        self.observe_path(path)
    }

    fn skipped(&self, path: &str) -> bool {
        safe::split(path).1.starts_with(TMP_PREFIX)
            || ignored(&self.ignore, path)
            || is_local(&self.local, path)
    }

    /// Keeps the version of `path` a local write is about to replace or delete (a file
    /// the index knows, unchanged on disk as far as a stat tells), so it can be restored
    /// like a version a push displaced. Returns whether one was kept.
    pub(in crate::hub) fn preserve(&mut self, path: &str) -> io::Result<bool> {
        let Some(node @ Node::File { .. }) = self.nodes.get(path).cloned() else {
            return Ok(false);
        };
        let mut none = Vec::new();
        let (dir, name) = match safe::open_parent(&self.root()?, path, false, &mut none) {
            Ok(p) => p,
            Err(e) if safe::gone(&e) => return Ok(false),
            Err(e) => return Err(e),
        };
        if !safe::stat_in(&dir, name, false)?.is_some_and(|d| quick_eq(&node, &d)) {
            return Ok(false);
        }
        let mut f = safe::open_file_in(&dir, name)?;
        self.keep
            .keep_version(path, &node, Some(&mut f), Mtime::now())?;
        Ok(true)
    }

    /// Compares `path` on disk with the index and logs what differs.
    fn observe_path(&mut self, path: &str) -> io::Result<()> {
        if self.skipped(path) {
            return Ok(());
        }
        let disk = match safe::stat_node(&self.root()?, path) {
            Ok(d) => d,
            Err(e) if is_errno(&e, rustix::io::Errno::NAMETOOLONG) => {
                tracing::warn!(site = %self.name, %path, "sitesync: name too long, not replicated");
                return Ok(());
            }
            Err(e) if is_errno(&e, rustix::io::Errno::LOOP) => None,
            Err(e) => return Err(e),
        };
        let disk = match disk {
            Some(Node::Symlink { target }) if !symlink_stays_inside(path, &target) => {
                tracing::warn!(site = %self.name, %path, "sitesync: symlink pointing outside the site, not replicated");
                None
            }
            d => d,
        };
        let old = self.nodes.get(path).cloned();
        match (old, disk) {
            (None, None) => {}
            (Some(old), None) => self.delete_tree(path, &old)?,
            (old, Some(d)) if old.as_ref() == Some(&d) => {}
            (Some(Node::Dir { .. }), Some(Node::Dir { mode })) => {
                self.log_local(path, Some("dir".into()), Op::Meta { mode, mtime: None })?;
            }
            (
                Some(Node::File { blake3: h1, .. }),
                Some(Node::File {
                    ref blake3,
                    mode,
                    mtime,
                    ..
                }),
            ) if &h1 == blake3 => {
                self.log_local(
                    path,
                    Some(h1),
                    Op::Meta {
                        mode,
                        mtime: Some(mtime),
                    },
                )?;
            }
            (Some(old), Some(d)) if old.is_dir() != d.is_dir() => {
                self.delete_tree(path, &old)?;
                self.put_local(path, d)?;
            }
            (_, Some(d)) => self.put_local(path, d)?,
        }
        Ok(())
    }

    fn delete_tree(&mut self, path: &str, old: &Node) -> io::Result<()> {
        if old.is_dir() {
            for child in self.subtree(path).into_iter().rev() {
                if let Some(n) = self.nodes.get(&child).cloned() {
                    self.log_local(&child, Some(n.version()), Op::Delete)?;
                }
            }
        }
        self.log_local(path, Some(old.version()), Op::Delete)
    }

    fn ensure_ancestors(&mut self, path: &str) -> io::Result<()> {
        let mut at = 0;
        while let Some(i) = path[at..].find('/') {
            let anc = path[..at + i].to_string();
            at += i + 1;
            if !self.nodes.get(&anc).is_some_and(Node::is_dir) {
                self.observe_path(&anc)?;
            }
        }
        Ok(())
    }

    fn put_local(&mut self, path: &str, node: Node) -> io::Result<()> {
        self.ensure_ancestors(path)?;
        if self.nodes.get(path) == Some(&node) {
            return Ok(());
        }
        let base = self.nodes.get(path).map(Node::version);
        let new_dir = node.is_dir() && base.is_none();
        self.log_local(path, base, Op::Put { node })?;
        if new_dir {
            // made or moved in whole: its content comes along
            let sub = safe::open_dir(&self.root()?, path)?;
            let children = safe::walk(&sub, false, &|_| false)?;
            for child in children.keys() {
                self.observe_path(&format!("{path}/{child}"))?;
            }
        }
        Ok(())
    }

    fn observe_rename(&mut self, from: &str, to: &str) -> io::Result<()> {
        let Some(old) = self.nodes.get(from).cloned() else {
            return self.observe_path(to);
        };
        let moved = safe::stat_node(&self.root()?, to)?;
        if self.skipped(from)
            || self.skipped(to)
            || moved.as_ref().map(Node::is_dir) != Some(old.is_dir())
            || self.nodes.get(to).is_some_and(Node::is_dir)
            || to.starts_with(&format!("{from}/"))
        {
            self.observe_path(from)?;
            return self.observe_path(to);
        }
        self.ensure_ancestors(to)?;
        let to_base = self.nodes.get(to).map(Node::version);
        self.log_local(
            from,
            Some(old.version()),
            Op::Rename {
                to: to.to_string(),
                to_base,
            },
        )?;
        // changed after the move, or something new at the old path: compared as usual
        self.observe_path(to)?;
        self.observe_path(from)
    }

    /// Compares the whole tree (a stat per path, a hash only where it differs).
    fn rescan_local(&mut self) -> io::Result<()> {
        let (ignore, local) = (self.ignore.clone(), self.local.clone());
        let disk = safe::walk(&self.root()?, false, &|p| {
            ignored(&ignore, p) || is_local(&local, p)
        })?;
        for (p, d) in &disk {
            if !self.nodes.get(p).is_some_and(|o| quick_eq(o, d)) {
                self.observe_path(p)?;
            }
        }
        let gone: Vec<String> = self
            .nodes
            .keys()
            .filter(|p| !disk.contains_key(*p))
            .cloned()
            .collect();
        for p in gone.iter().rev() {
            if self.nodes.contains_key(p) && !is_local(&self.local, p) {
                self.observe_path(p)?;
            }
        }
        Ok(())
    }

    /// Logs (fsynced) one change already made to the tree, and indexes it.
    fn log_local(&mut self, path: &str, base: Option<String>, op: Op) -> io::Result<()> {
        let now = Mtime::now();
        self.local_seq += 1;
        let change = Change {
            id: format!(
                "local.{}.{}.{}.{}",
                self.origin, now.secs, now.nanos, self.local_seq
            ),
            path: path.to_string(),
            base,
            op,
        };
        change
            .check()
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e.to_string()))?;
        let entry = Entry {
            seq: self.log.head() + 1,
            origin: self.origin.clone(),
            time: now,
            change: change.clone(),
        };
        self.log.append(entry)?;
        self.update_index(&change);
        if let Err(e) = self.log.compact() {
            tracing::warn!(site = %self.name, "sitesync: log compaction failed: {e}");
        }
        Ok(())
    }
}
