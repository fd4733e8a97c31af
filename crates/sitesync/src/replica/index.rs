//! The replica's index: the version of every path it knows (what it last pushed or
//! applied) and the hub log position it has applied. Comparing the disk with the index
//! is how a write is told from an echo of an applied change; it is persisted atomically.

use std::collections::BTreeMap;
use std::io;
use std::path::Path;

use proto::sitesync::Node;
use serde::{Deserialize, Serialize};

/// What a replica knows of its site.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Index {
    /// The last hub log entry applied (or found already applied).
    pub seq: u64,
    /// Every path with the version this server last pushed or applied.
    pub nodes: BTreeMap<String, Node>,
    /// An entry could not be applied faithfully (a rename of a version this server no
    /// longer has, content gone from the hub): compare with the manifest once the log
    /// is read to its head.
    #[serde(default)]
    pub dirty: bool,
    /// Paths the hub refused (over the size limit): kept here, local to this server,
    /// until they change again; the manifest comparison leaves them alone.
    #[serde(default)]
    pub kept_local: std::collections::BTreeSet<String>,
}

impl Index {
    /// Loads the index (an empty one when there is none yet).
    pub fn load(path: &Path) -> io::Result<Index> {
        match std::fs::read(path) {
            Ok(b) => serde_json::from_slice(&b)
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Index::default()),
            Err(e) => Err(e),
        }
    }

    /// Writes the index durably (temp file, fsync, rename, directory fsync).
    pub fn save(&self, path: &Path) -> io::Result<()> {
        let b = serde_json::to_vec(self).map_err(io::Error::other)?;
        durable::write_atomic(path, &b, 0o600)
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
