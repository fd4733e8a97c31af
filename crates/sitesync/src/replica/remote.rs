//! Applying what the hub decided: the log, replayed in order (an entry whose result the
//! index already holds, typically this server's own, costs nothing), a snapshot from the manifest when this replica is too far behind, and
//! the hub's version put back when one of this server's changes lost. A path with a
//! pending local change, or with a write capture has not reported yet, is left alone:
//! the local change goes to the hub, which decides.

use std::fs::File;
use std::io::{Seek, SeekFrom, Write};
use std::sync::atomic::{AtomicU64, Ordering};

use proto::sitesync::{Change, LogRead, Node, Op};

use super::{Replica, ReplicaError};
use crate::api::{HubApi, HubError};
use crate::apply::{apply, ApplyError};
use crate::safe;

static TMP: AtomicU64 = AtomicU64::new(0);

impl Replica {
    /// Applies the hub's log after the last applied entry; returns how many entries.
    pub fn pull(&mut self, hub: &dyn HubApi) -> Result<usize, ReplicaError> {
        let mut n = 0;
        loop {
            let read = match hub.log_after(&self.cfg.site, self.index.seq, 512) {
                Ok(r) => r,
                Err(HubError::Unavailable(_)) => break,
                Err(e) => return Err(e.into()),
            };
            match read {
                LogRead::Entries { entries, .. } if entries.is_empty() => {
                    if self.index.dirty {
                        self.resync(hub)?;
                    }
                    break;
                }
                LogRead::Entries { entries, .. } => {
                    for e in entries {
                        // this server's own entries too: replaying the log in order is
                        // what makes the tree the hub's, even where another server's
                        // older entry was applied over this server's newer write
                        if !self.already_here(&e.change, e.origin == self.cfg.server) {
                            match self.apply_remote(hub, &e.change) {
                                Ok(()) => {}
                                Err(ReplicaError::Hub(HubError::Unavailable(_))) => {
                                    self.save()?;
                                    return Ok(n);
                                }
                                // one bad path must not stop the site: the manifest
                                // comparison (backstop) catches what was skipped
                                Err(err) => {
                                    tracing::warn!(site = %self.cfg.site, seq = e.seq, "sitesync: cannot apply a remote change: {err}")
                                }
                            }
                        }
                        self.index.seq = e.seq;
                        n += 1;
                    }
                    self.save()?;
                }
                LogRead::SnapshotNeeded { .. } => {
                    self.resync(hub)?;
                    n += 1;
                }
            }
        }
        Ok(n)
    }

    /// Waits (up to `wait`, a long poll) until the hub's log has something after what
    /// this replica applied, then applies it; returns how many entries.
    pub fn pull_wait(
        &mut self,
        hub: &dyn HubApi,
        wait: std::time::Duration,
    ) -> Result<usize, ReplicaError> {
        match hub.log_wait(&self.cfg.site, self.index.seq, 1, wait) {
            Ok(_) => self.pull(hub),
            Err(HubError::Unavailable(_)) => Ok(0),
            Err(e) => Err(e.into()),
        }
    }

    /// Brings the tree to the hub's manifest (this replica missed more than the log holds).
    pub fn resync(&mut self, hub: &dyn HubApi) -> Result<(), ReplicaError> {
        let m = hub.manifest(&self.cfg.site)?;
        let mut k = 0u64;
        let mut synthetic = |path: &str, op: Op| {
            k += 1;
            Change {
                id: format!("resync.{k}"),
                path: path.to_string(),
                base: None,
                op,
            }
        };
        for (p, n) in &m.nodes {
            if self.index.nodes.get(p) != Some(n) {
                let c = synthetic(p, Op::Put { node: n.clone() });
                self.apply_remote(hub, &c)?;
            }
        }
        let gone: Vec<String> = self
            .index
            .nodes
            .keys()
            .filter(|p| !m.nodes.contains_key(*p) && !self.index.kept_local.contains(*p))
            .cloned()
            .collect();
        for p in gone.iter().rev() {
            let c = synthetic(p, Op::Delete);
            self.apply_remote(hub, &c)?;
        }
        self.index.seq = m.seq;
        self.index.dirty = false;
        self.save()?;
        Ok(())
    }

    /// Whether the index already holds the result of `c` (this server's own change,
    /// or one applied before a restart): nothing to fetch or apply. A rename names no
    /// node, so only this server's `own` renames count as here: another server's rename
    /// may have brought a different mtime or mode to `to` (same content), which the
    /// manifest comparison then puts right.
    fn already_here(&self, c: &Change, own: bool) -> bool {
        let at = self.index.nodes.get(&c.path);
        match &c.op {
            Op::Put { node } => at == Some(node),
            Op::Delete => at.is_none(),
            Op::Rename { to, .. } => own && at.is_none() && self.index.nodes.contains_key(to),
            Op::Meta { mode, mtime } => match at {
                Some(Node::File {
                    mode: m, mtime: t, ..
                }) => m == mode && mtime.is_none_or(|x| x == *t),
                Some(Node::Dir { mode: m }) => m == mode,
                Some(Node::Symlink { .. }) => true,
                None => false,
            },
        }
    }

    /// Whether `path` may be changed by a remote change now; if the disk holds a write
    /// not yet observed, it is observed (queued) and the remote change waits for the hub.
    fn may_overwrite(&mut self, path: &str) -> Result<bool, ReplicaError> {
        if self.is_local(path) {
            tracing::warn!(%path, "sitesync: the hub sent a local path; ignored");
            return Ok(false);
        }
        if self.index.kept_local.contains(path) {
            return Ok(false);
        }
        // left alone now, compared with the manifest once the log is read
        if self.outbox.touches(path) {
            self.index.dirty = true;
            return Ok(false);
        }
        let disk = safe::stat_node(&self.root()?, path)?;
        if disk.as_ref() != self.index.nodes.get(path) {
            self.observe_path(path)?;
            self.index.dirty = true;
            return Ok(false);
        }
        Ok(true)
    }

    fn apply_remote(&mut self, hub: &dyn HubApi, c: &Change) -> Result<(), ReplicaError> {
        if !self.may_overwrite(&c.path)? {
            return Ok(());
        }
        if let Op::Rename { to, .. } = &c.op {
            if !self.may_overwrite(to)? {
                return Ok(());
            }
            if self.index.nodes.get(&c.path).map(Node::version) != c.base {
                // the version it moved is not the one here (this server wrote a newer
                // one since, decided later): moving ours would be wrong
                self.index.dirty = true;
                return Ok(());
            }
        }
        self.apply_here(hub, c)
    }

    /// Applies `c` to this tree and the index (no checks: the caller decided).
    fn apply_here(&mut self, hub: &dyn HubApi, c: &Change) -> Result<(), ReplicaError> {
        let mut content = match &c.op {
            Op::Put {
                node: Node::File { blake3, size, .. },
            } => match self.fetch(hub, blake3, *size) {
                Ok(f) => Some(f),
                // replaced at the hub since: a later entry brings the newer version,
                // and the manifest comparison makes sure
                Err(ReplicaError::Hub(HubError::NotFound(_))) => {
                    self.index.dirty = true;
                    return Ok(());
                }
                Err(e) => return Err(e),
            },
            _ => None,
        };
        let res = apply(
            &self.root()?,
            c,
            content.as_mut().map(|f| f as &mut dyn std::io::Read),
            self.cfg.owner,
        );
        let created = match res {
            Ok(created) => created,
            Err(ApplyError::NotEmpty(_)) => {
                // holds what the deleting server did not know: push it back as new
                self.index.remove_subtree(&c.path);
                return self.observe_path(&c.path);
            }
            Err(ApplyError::Missing(p)) => {
                tracing::warn!(path = %p, "sitesync: remote change for a missing path");
                self.index.dirty = true;
                return Ok(());
            }
            Err(ApplyError::SymlinkEscapes(p)) => {
                tracing::warn!(path = %p, "sitesync: refusing a symlink pointing out");
                return Ok(());
            }
            Err(e) => return Err(e.into()),
        };
        for d in created {
            self.index.nodes.insert(d, Node::Dir { mode: 0o755 });
        }
        match &c.op {
            Op::Put { node } => {
                self.index.nodes.insert(c.path.clone(), node.clone());
            }
            Op::Delete => self.index.remove_subtree(&c.path),
            Op::Rename { to, .. } => self.index.move_subtree(&c.path, to),
            Op::Meta { .. } => {
                if let Some(n) = safe::stat_node(&self.root()?, &c.path)? {
                    self.index.nodes.insert(c.path.clone(), n);
                }
            }
        }
        Ok(())
    }

    /// Downloads a file's content from the hub into a temp file, in chunks.
    fn fetch(&self, hub: &dyn HubApi, hash: &str, size: u64) -> Result<File, ReplicaError> {
        let tmp = self.cfg.state.join("tmp").join(format!(
            "{}.{}",
            std::process::id(),
            TMP.fetch_add(1, Ordering::Relaxed)
        ));
        let mut f = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&tmp)?;
        // unlinked at once: the open file is all that is needed
        std::fs::remove_file(&tmp)?;
        let mut have = 0u64;
        while have < size {
            let chunk = hub.read_blob(&self.cfg.site, hash, have, self.cfg.chunk_size.max(1))?;
            if chunk.is_empty() {
                return Err(HubError::NotFound(hash.to_string()).into());
            }
            f.write_all(&chunk)?;
            have += chunk.len() as u64;
        }
        f.seek(SeekFrom::Start(0))?;
        Ok(f)
    }

    /// Puts the hub's version back after one of this server's changes lost (or was
    /// refused): the hub kept the loser, so nothing is lost.
    pub(super) fn adopt(
        &mut self,
        hub: &dyn HubApi,
        lost: &Change,
        current: Option<Node>,
    ) -> Result<(), ReplicaError> {
        if let Op::Rename { to, .. } = &lost.op {
            // the content now at `to` is this server's: push it again as new
            self.index.remove_subtree(to);
            self.observe_path(to)?;
        }
        let path = lost.path.clone();
        let mine = safe::stat_node(&self.root()?, &path)?;
        let fix = match (&current, &mine) {
            (Some(n), Some(m)) if n == m => None,
            (None, None) => None,
            (Some(n), _) => Some(Op::Put { node: n.clone() }),
            (None, Some(_)) => Some(Op::Delete),
        };
        if let Some(op) = fix {
            if matches!(op, Op::Put { .. }) && mine.as_ref().is_some_and(Node::is_dir) {
                // a directory of ours where the hub has a file: its content goes back as new
                self.index.remove_subtree(&path);
                return self.observe_path(&path);
            }
            let c = Change {
                id: "adopt".into(),
                path: path.clone(),
                base: None,
                op,
            };
            self.apply_here(hub, &c)?;
        }
        match current {
            Some(n) => {
                self.index.nodes.insert(path, n);
            }
            None => {
                if safe::stat_node(&self.root()?, &path)?.is_none() {
                    self.index.remove_subtree(&path);
                }
            }
        }
        Ok(())
    }
}
