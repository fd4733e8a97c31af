//! The replica's index: the version of every path it knows (what it last pushed or
//! applied) and the hub log position it has applied. Comparing the disk with the index
//! is how a write is told from an echo of an applied change. It is persisted as a base
//! (`index.json`, written atomically) plus a journal of the paths changed since
//! ([`super::journal`]): a change to one file of a 100,000-file site appends a line, it
//! does not rewrite megabytes.

use std::collections::{BTreeMap, BTreeSet};
use std::io;
use std::path::Path;

use proto::sitesync::Node;
use serde::{Deserialize, Serialize};

use super::journal;

/// Every path with its version, remembering which paths changed since the index was
/// last saved (so a save writes only those). Read it like the map it derefs to.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Nodes {
    map: BTreeMap<String, Node>,
    #[serde(skip)]
    touched: BTreeSet<String>,
}

impl PartialEq for Nodes {
    fn eq(&self, other: &Nodes) -> bool {
        self.map == other.map
    }
}

impl Eq for Nodes {}

impl PartialEq<BTreeMap<String, Node>> for Nodes {
    fn eq(&self, other: &BTreeMap<String, Node>) -> bool {
        &self.map == other
    }
}

impl std::ops::Deref for Nodes {
    type Target = BTreeMap<String, Node>;
    fn deref(&self) -> &BTreeMap<String, Node> {
        &self.map
    }
}

impl FromIterator<(String, Node)> for Nodes {
    fn from_iter<I: IntoIterator<Item = (String, Node)>>(iter: I) -> Nodes {
        let map: BTreeMap<String, Node> = iter.into_iter().collect();
        Nodes {
            touched: map.keys().cloned().collect(),
            map,
        }
    }
}

impl Nodes {
    /// Sets `path`'s version.
    pub fn insert(&mut self, path: String, node: Node) -> Option<Node> {
        self.touched.insert(path.clone());
        self.map.insert(path, node)
    }

    /// Forgets `path` (not what is beneath it).
    pub fn remove(&mut self, path: &str) -> Option<Node> {
        let old = self.map.remove(path);
        if old.is_some() {
            self.touched.insert(path.to_string());
        }
        old
    }

    /// The paths changed since the last save, with their version (`None`: removed);
    /// forgets them.
    pub(super) fn take_touched(&mut self) -> Vec<(String, Option<Node>)> {
        std::mem::take(&mut self.touched)
            .into_iter()
            .map(|p| {
                let n = self.map.get(&p).cloned();
                (p, n)
            })
            .collect()
    }

    /// Marks `paths` as changed again (a save that failed).
    pub(super) fn retouch(&mut self, paths: impl IntoIterator<Item = String>) {
        self.touched.extend(paths);
    }

    /// Replays a journal line: no path counts as changed after it.
    pub(super) fn replay(&mut self, path: String, node: Option<Node>) {
        match node {
            Some(n) => self.map.insert(path, n),
            None => self.map.remove(&path),
        };
    }

    /// Forgets which paths changed (they are in a fresh base).
    pub(super) fn clear_touched(&mut self) {
        self.touched.clear();
    }
}

/// What a replica knows of its site.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Index {
    /// The last hub log entry applied (or found already applied).
    pub seq: u64,
    /// Every path with the version this server last pushed or applied.
    pub nodes: Nodes,
    /// An entry could not be applied faithfully (a rename of a version this server no
    /// longer has, content gone from the hub): compare with the manifest once the log
    /// is read to its head.
    #[serde(default)]
    pub dirty: bool,
    /// Paths the hub refused (over the size limit): kept here, local to this server,
    /// until they change again; the manifest comparison leaves them alone.
    #[serde(default)]
    pub kept_local: BTreeSet<String>,
    /// The base's generation: journal lines of an older one are already in the base.
    #[serde(default)]
    pub(super) gen: u64,
    /// Bytes of the base and of the journal on disk: when the journal outgrows the
    /// base, the next save writes a new base.
    #[serde(skip)]
    pub(super) sizes: (u64, u64),
}

/// Equal when they know the same (where they are stored does not count).
impl PartialEq for Index {
    fn eq(&self, other: &Index) -> bool {
        self.seq == other.seq
            && self.nodes == other.nodes
            && self.dirty == other.dirty
            && self.kept_local == other.kept_local
    }
}

impl Eq for Index {}

impl Index {
    /// Loads the index at `path` (the base) with its journal (an empty index when
    /// there is none yet). A torn last journal line (a crash mid-append) is cut off.
    pub fn load(path: &Path) -> io::Result<Index> {
        journal::load(path)
    }

    /// Saves the paths changed since the last save, fsynced before this returns: a
    /// journal line, or a new base when the journal has outgrown the last one.
    pub fn save(&mut self, path: &Path) -> io::Result<()> {
        journal::save(self, path)
    }

    /// The paths strictly beneath `path`, sorted.
    pub fn subtree(&self, path: &str) -> Vec<String> {
        let prefix = format!("{path}/");
        self.nodes
            .range(prefix.clone()..)
            .take_while(|(k, _)| k.starts_with(&prefix))
            .map(|(k, _)| k.clone())
            .collect()
    }

    /// Moves `from` and everything beneath it to `to` (a directory rename).
    pub fn move_subtree(&mut self, from: &str, to: &str) {
        for old in self.subtree(to) {
            self.nodes.remove(&old);
        }
        for old in std::iter::once(from.to_string()).chain(self.subtree(from)) {
            if let Some(n) = self.nodes.remove(&old) {
                self.nodes.insert(format!("{to}{}", &old[from.len()..]), n);
            }
        }
    }

    /// Forgets `path` and everything beneath it.
    pub fn remove_subtree(&mut self, path: &str) {
        for p in self.subtree(path) {
            self.nodes.remove(&p);
        }
        self.nodes.remove(path);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subtree_moves_stay_exact() {
        let mut i = Index::default();
        for p in ["a", "a/b", "a/b/c", "ab", "a-x"] {
            i.nodes.insert(p.into(), Node::Dir { mode: 0o755 });
        }
        assert_eq!(i.subtree("a"), ["a/b", "a/b/c"]);
        i.move_subtree("a", "z/y");
        let keys: Vec<_> = i.nodes.keys().cloned().collect();
        assert_eq!(keys, ["a-x", "ab", "z/y", "z/y/b", "z/y/b/c"]);
        i.remove_subtree("z/y");
        assert_eq!(i.nodes.len(), 2);
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("index.json");
        assert_eq!(Index::load(&p).unwrap(), Index::default());
        i.seq = 9;
        i.save(&p).unwrap();
        assert_eq!(Index::load(&p).unwrap(), i);
    }
}
