//! The site-file replication wire format (issue 14; crate `sitesync`): what a replica
//! (web server) pushes to the hub (files server) and what the hub's ordered log hands
//! back. A [`Node`] is one path's version (file, directory or symlink), a [`Change`] is
//! one write a server made (with the version it replaced, its `base`), an [`Entry`] is a
//! change as the hub ordered it, and an [`Outcome`] is the hub's verdict on a push.
//!
//! Every path is checked with [`crate::manifest::check_path`] by [`Change::check`] before
//! either end touches a disk, so a path from the wire can never leave the site folder.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::manifest::check_path;

/// A modification time with nanoseconds: copied exactly, because ETags are built from
/// mtime and size and must agree on every server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Mtime {
    /// Seconds since the Unix epoch.
    pub secs: i64,
    /// Nanoseconds, below 1,000,000,000.
    pub nanos: u32,
}

impl Mtime {
    /// The current time (for log entries and kept versions).
    pub fn now() -> Mtime {
        let d = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        Mtime {
            secs: i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
            nanos: d.subsec_nanos(),
        }
    }
}

/// One path's version: what a server has at a path.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Node {
    /// A regular file.
    File {
        /// BLAKE3 of the content, lower-case hex (64 characters).
        blake3: String,
        /// Size in bytes.
        size: u64,
        /// Permission bits (`& 0o777`: setuid, setgid and sticky are never replicated).
        mode: u32,
        /// Modification time, exact.
        mtime: Mtime,
    },
    /// A directory.
    Dir {
        /// Permission bits (`& 0o777`).
        mode: u32,
    },
    /// A symbolic link; replicated only when its target stays inside the site.
    Symlink {
        /// The link's target as written.
        target: String,
    },
}

impl Node {
    /// The version tag a change names as its `base`: the content hash for a file,
    /// `dir` for a directory, `link:TARGET` for a symlink. Mode and mtime are not part
    /// of the version: changing them is a `meta` change, never a conflict about content.
    pub fn version(&self) -> String {
        match self {
            Node::File { blake3, .. } => blake3.clone(),
            Node::Dir { .. } => "dir".to_string(),
            Node::Symlink { target } => format!("link:{target}"),
        }
    }

    /// Whether this is a directory.
    pub fn is_dir(&self) -> bool {
        matches!(self, Node::Dir { .. })
    }

    /// Checks the fields a peer sent: hash shape, mode bits, nanoseconds, link target.
    pub fn check(&self) -> Result<(), WireError> {
        match self {
            Node::File {
                blake3,
                mode,
                mtime,
                ..
            } => {
                if !is_hash(blake3) {
                    return Err(WireError::Hash);
                }
                check_mode(*mode)?;
                if mtime.nanos >= 1_000_000_000 {
                    return Err(WireError::Mtime);
                }
            }
            Node::Dir { mode } => check_mode(*mode)?,
            Node::Symlink { target } => {
                if target.is_empty() || target.len() > 4096 || target.contains('\0') {
                    return Err(WireError::Symlink);
                }
            }
        }
        Ok(())
    }
}

fn check_mode(mode: u32) -> Result<(), WireError> {
    if mode & !0o777 != 0 {
        return Err(WireError::Mode(mode));
    }
    Ok(())
}

/// Whether `s` is a BLAKE3 hash in lower-case hex.
pub fn is_hash(s: &str) -> bool {
    s.len() == 64
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// What a change does at its path.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case", deny_unknown_fields)]
pub enum Op {
    /// Create or replace the path with `node` (a file's content travels as a blob by hash).
    Put {
        /// The new version.
        node: Node,
    },
    /// Remove the path (a directory only when it holds nothing the writer did not know).
    Delete,
    /// Move the path (file or whole directory) to `to`, as one rename.
    Rename {
        /// The new path.
        to: String,
        /// The version the writer replaced at `to` (`None`: nothing was there).
        to_base: Option<String>,
    },
    /// Change permission bits and/or mtime, content unchanged.
    Meta {
        /// New permission bits (`& 0o777`).
        mode: u32,
        /// New mtime (`None` for a directory).
        mtime: Option<Mtime>,
    },
}

/// One write a server made to a site's tree.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Change {
    /// Unique id chosen by the writer: pushing the same change twice is harmless.
    pub id: String,
    /// The path, relative to the site root.
    pub path: String,
    /// The version the writer replaced at `path` ([`Node::version`]), `None` when the
    /// path was absent. A stale base is how the hub detects a conflict.
    pub base: Option<String>,
    /// What the change does.
    pub op: Op,
}

impl Change {
    /// Checks everything a peer could get wrong: the id, every path (no `..`, no
    /// absolute path, no empty component), the node's fields.
    pub fn check(&self) -> Result<(), WireError> {
        if self.id.is_empty() || self.id.len() > 200 || self.id.contains(['/', '\0']) {
            return Err(WireError::Id);
        }
        if !check_path(&self.path) {
            return Err(WireError::Path(self.path.clone()));
        }
        match &self.op {
            Op::Put { node } => node.check()?,
            Op::Rename { to, .. } => {
                if !check_path(to) {
                    return Err(WireError::Path(to.clone()));
                }
                if to == &self.path || to.starts_with(&format!("{}/", self.path)) {
                    return Err(WireError::RenameIntoItself);
                }
            }
            Op::Meta { mode, mtime } => {
                check_mode(*mode)?;
                if mtime.is_some_and(|m| m.nanos >= 1_000_000_000) {
                    return Err(WireError::Mtime);
                }
            }
            Op::Delete => {}
        }
        Ok(())
    }
}

/// A change as the hub ordered it: what replicas read from the log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Entry {
    /// The site's sequence number: 1, 2, 3, … with no gaps, kept across restarts.
    pub seq: u64,
    /// The server that made the change (replicas skip their own).
    pub origin: String,
    /// When the hub accepted it.
    pub time: Mtime,
    /// The change.
    pub change: Change,
}

/// The hub's verdict on one pushed change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "result", rename_all = "snake_case", deny_unknown_fields)]
pub enum Outcome {
    /// Accepted and logged at `seq`.
    Applied {
        /// The entry's sequence number.
        seq: u64,
    },
    /// The change lost: its base was stale. The hub kept its current version, which the
    /// writer must put back; the loser's content (if it had any) is in the conflicts area.
    Conflict {
        /// The conflict record holding the losing version (`None`: nothing to keep, e.g.
        /// a deletion that lost to a modification).
        kept: Option<String>,
        /// The hub's version at the path, which the writer adopts.
        current: Option<Node>,
    },
    /// Not accepted (bad path, over the size limit, disk full, blob missing, …).
    Refused {
        /// Why, for the writer's log.
        reason: String,
        /// The hub's version at the path.
        current: Option<Node>,
        /// The same change may succeed later (the files server's disk is full): the
        /// writer keeps it queued. Otherwise the writer drops it and keeps its file local.
        #[serde(default)]
        retry: bool,
    },
}

/// A read of a site's log after a sequence number.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum LogRead {
    /// The entries after the asked sequence number, in order (possibly fewer than exist).
    Entries {
        /// The entries.
        entries: Vec<Entry>,
        /// The site's newest sequence number.
        head: u64,
    },
    /// The asked position is older than the retained log: read the [`TreeManifest`].
    SnapshotNeeded {
        /// The site's newest sequence number.
        head: u64,
    },
}

/// The whole tree of a site with the sequence number it reflects: the backstop that
/// makes divergence visible, and the snapshot a far-behind replica starts from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TreeManifest {
    /// The site.
    pub site: String,
    /// The last log entry reflected.
    pub seq: u64,
    /// Every path with its version, sorted.
    pub nodes: BTreeMap<String, Node>,
}

/// A losing version kept in a site's conflicts area, as the API lists it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConflictRecord {
    /// The record's id (its name in the conflicts area).
    pub id: String,
    /// The path the losing change was for.
    pub path: String,
    /// The server that made the losing change.
    pub origin: String,
    /// The losing change's id.
    pub change_id: String,
    /// When the hub decided.
    pub time: Mtime,
    /// The losing version (its content is kept next to the record).
    pub node: Node,
}

/// An overwritten or deleted version the hub keeps for `versions_days`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VersionRecord {
    /// The path it was at.
    pub path: String,
    /// When it was replaced or deleted.
    pub replaced: Mtime,
    /// The version.
    pub node: Node,
}

/// The most sites one [`WaitRequest`] may name (a web server holds about 1,000).
pub const MAX_WAIT_SITES: usize = 100_000;

/// The longest a [`WaitRequest`] may ask the hub to wait, in seconds.
pub const MAX_WAIT_SECS: u64 = 60;

/// One long poll over many sites at once (`POST /v1/sitesync/wait`): a web server holds
/// hundreds of sites of one files server, and one connection waiting on all of them costs
/// what one per site would cost a thousand times over.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WaitRequest {
    /// Each site with the last log position the caller has applied.
    pub sites: BTreeMap<String, u64>,
    /// How long the hub may wait for one of them to have entries after that position
    /// (at most [`MAX_WAIT_SECS`]; 0 answers at once).
    pub wait_secs: u64,
}

impl WaitRequest {
    /// Checks the site names (one clean path component each, as the routes take them),
    /// the count and the wait.
    pub fn check(&self) -> Result<(), WireError> {
        if self.sites.len() > MAX_WAIT_SITES {
            return Err(WireError::TooMany(self.sites.len()));
        }
        if self.wait_secs > MAX_WAIT_SECS {
            return Err(WireError::Wait(self.wait_secs));
        }
        for site in self.sites.keys() {
            if !check_path(site) || site.contains('/') || site.starts_with('.') || site.len() > 253
            {
                return Err(WireError::Site(site.clone()));
            }
        }
        Ok(())
    }
}

/// The hub's answer to a [`WaitRequest`]: as soon as one site has news, or when the wait
/// is over (then `ready` is empty).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WaitAnswer {
    /// Sites with entries after the asked position (or whose position the log no longer
    /// holds), each with the log's newest sequence number: the caller asks after that
    /// next time, so a site it already told about does not answer again at once.
    pub ready: BTreeMap<String, u64>,
    /// Sites the caller may not sync (not granted to its certificate's name).
    pub denied: Vec<String>,
}

/// Parses and checks a [`WaitRequest`] body: the one entry point for it from the wire.
pub fn parse_wait(body: &[u8]) -> Result<WaitRequest, ParseError> {
    let w: WaitRequest =
        serde_json::from_slice(body).map_err(|e| ParseError::Json(e.to_string()))?;
    w.check()?;
    Ok(w)
}

/// What is wrong with a change or node from the wire.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    /// A path with `..`, `.`, an empty component, a leading `/`, NUL, or over 4096 bytes.
    #[error("bad path {0:?}")]
    Path(String),
    /// An id that is empty, too long or has `/`.
    #[error("bad change id")]
    Id,
    /// A hash that is not 64 lower-case hex digits.
    #[error("bad content hash")]
    Hash,
    /// Mode bits beyond `0o777` (setuid, setgid, sticky are never replicated).
    #[error("bad mode {0:o}")]
    Mode(u32),
    /// Nanoseconds of a second over 999,999,999.
    #[error("bad mtime")]
    Mtime,
    /// An empty, too long or NUL-holding symlink target.
    #[error("bad symlink target")]
    Symlink,
    /// A rename onto itself or into its own subtree.
    #[error("rename into itself")]
    RenameIntoItself,
    /// A site name that is not one clean path component.
    #[error("bad site name {0:?}")]
    Site(String),
    /// More sites in one wait than [`MAX_WAIT_SITES`].
    #[error("{0} sites in one wait (at most {MAX_WAIT_SITES})")]
    TooMany(usize),
    /// A wait longer than [`MAX_WAIT_SECS`].
    #[error("wait of {0} s (at most {MAX_WAIT_SECS})")]
    Wait(u64),
}

/// Parses and checks a pushed change: the one entry point for change bodies from the wire.
pub fn parse_change(body: &[u8]) -> Result<Change, ParseError> {
    let c: Change = serde_json::from_slice(body).map_err(|e| ParseError::Json(e.to_string()))?;
    c.check()?;
    Ok(c)
}

/// Why a change body was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    /// Not the JSON shape of the body (a [`Change`], a [`WaitRequest`]).
    #[error("malformed change: {0}")]
    Json(String),
    /// Well-formed but unsafe or invalid.
    #[error(transparent)]
    Wire(#[from] WireError),
}

#[cfg(test)]
mod tests;
