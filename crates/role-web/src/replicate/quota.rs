//! The per-site disk limit (`quota_mb`), enforced where PHP writes. Usage is the sum of
//! the file sizes the replica's index holds (what the site replicates; local paths are
//! not counted). Over the limit, every entry of the tree is given to root (modes
//! unchanged, so nothing replicates): PHP, running as the site's user, can no longer
//! create, modify, rename or delete anything, and cannot undo that itself (only an
//! owner may chmod, only root may chown). Its next write fails at once with
//! `Permission denied`, and the engine's error log says why, once per transition.
//! Back under the limit (files deleted through FTP, a deployment, another server, or a
//! raised limit) the tree is given back to the site's user.
//!
//! Known gap: a file another server writes while this tree is locked arrives owned by
//! the site's user (the replica applies with one owner), so PHP here may still rewrite
//! that one file (never create, rename or delete: the directories stay root's). Such
//! files are rare (the other servers are over the same limit and locked as well).
//!
//! Without a site user (a static site, or an engine not running as root) there is no
//! writer to stop: usage is only reported.

use std::io::Write;
use std::path::Path;

use proto::sitesync::Node;
use sitesync::apply::Owner;
use sitesync::replica::Replica;

use super::site::SiteSpec;
use super::tree::chown_tree;
use crate::fpm::Ids;

/// Bytes of the site's files, from the replica's index.
pub fn usage(replica: &Replica) -> u64 {
    replica
        .index()
        .nodes
        .values()
        .map(|n| match n {
            Node::File { size, .. } => *size,
            _ => 0,
        })
        .sum()
}

/// Whether `usage` bytes exceed a limit of `quota_mb` MiB (0: no limit).
pub fn over(usage: u64, quota_mb: u64) -> bool {
    quota_mb > 0 && usage > quota_mb.saturating_mul(1 << 20)
}

/// Whether the tree is locked now.
#[derive(Debug, Default)]
pub struct Lock {
    locked: bool,
}

impl Lock {
    /// Whether the tree is locked now.
    pub fn locked(&self) -> bool {
        self.locked
    }

    /// Locks or unlocks the tree for `usage`; returns whether the site is over.
    pub fn enforce(
        &mut self,
        spec: &SiteSpec,
        root: &Path,
        owner: Option<Owner>,
        usage: u64,
    ) -> bool {
        let over = over(usage, spec.quota_mb);
        let Some(owner) = owner else {
            return over;
        };
        if over == self.locked {
            return over;
        }
        let (to, msg) = if over {
            (
                Ids { uid: 0, gid: 0 },
                format!(
                    "{}: over its disk quota ({} MiB used of {} MiB): the site's files are read-only for PHP until it is back under",
                    spec.domain,
                    usage.div_ceil(1 << 20),
                    spec.quota_mb
                ),
            )
        } else {
            (
                Ids {
                    uid: owner.uid,
                    gid: owner.gid,
                },
                format!(
                    "{}: back under its disk quota ({} MiB of {} MiB): the site's files are writable again",
                    spec.domain,
                    usage.div_ceil(1 << 20),
                    spec.quota_mb
                ),
            )
        };
        match chown_tree(root, to) {
            Ok(_) => {
                self.locked = over;
                tracing::warn!("{msg}");
                error_log(&spec.error_log, &msg);
            }
            Err(e) => {
                tracing::error!(site = %spec.domain, error = %e, "cannot change the quota lock of the site's tree")
            }
        }
        over
    }
}

/// Appends one line to the engine's error log (the file the server's log writer
/// appends to as well; one `write` of a whole line with `O_APPEND` keeps lines whole).
fn error_log(path: &Path, msg: &str) {
    // the format of the server's own error lines (`crate::log`)
    let fmt = time::macros::format_description!("[year]/[month]/[day] [hour]:[minute]:[second]");
    let when = time::OffsetDateTime::now_utc()
        .format(&fmt)
        .unwrap_or_default();
    let line = format!("{when} [error] {msg}\n");
    if let Some(dir) = path.parent() {
        let _ = std::fs::create_dir_all(dir);
    }
    let res = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .and_then(|mut f| f.write_all(line.as_bytes()));
    if let Err(e) = res {
        tracing::warn!(path = %path.display(), error = %e, "cannot write the error log");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_limit_is_in_mib_and_zero_means_none() {
        assert!(!over(u64::MAX, 0));
        assert!(!over(1 << 20, 1));
        assert!(over((1 << 20) + 1, 1));
    }
}
