//! How the replica's [`Index`] is stored: a base (`index.json`, written atomically and
//! fsynced) and beside it a journal (`index.journal`), one JSON line per save with the
//! paths changed since the previous one, appended and fsynced before the save returns
//! (so before a push is acknowledged locally). A save costs what changed, not the size
//! of the site; when the journal grows past the base (at least [`MIN_JOURNAL`]), the
//! next save writes a new base and empties the journal, so the work stays within twice
//! the changes.
//!
//! Each line carries the base's generation: a new base gets the next one before the
//! journal is emptied, so after a crash between the two the stale lines are skipped
//! (they are in the base), never replayed over newer state. A torn last line (a crash
//! mid-append) is cut off on load.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::OpenOptions;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use proto::sitesync::Node;
use serde::{Deserialize, Serialize};

use super::index::Index;

/// The journal may grow to this size before a new base is written, however small the
/// base.
pub const MIN_JOURNAL: u64 = 1 << 20;

/// One save.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Line {
    gen: u64,
    seq: u64,
    dirty: bool,
    kept_local: BTreeSet<String>,
    /// Changed paths with their version, `None` when removed.
    nodes: BTreeMap<String, Option<Node>>,
}

fn journal_path(base: &Path) -> PathBuf {
    base.with_extension("journal")
}

/// Loads the base at `path` and replays its journal.
pub fn load(path: &Path) -> io::Result<Index> {
    let (mut index, base_len) = match std::fs::read(path) {
        Ok(b) => (
            serde_json::from_slice::<Index>(&b)
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?,
            b.len() as u64,
        ),
        Err(e) if e.kind() == io::ErrorKind::NotFound => (Index::default(), 0),
        Err(e) => return Err(e),
    };
    let jpath = journal_path(path);
    let bytes = match std::fs::read(&jpath) {
        Ok(b) => b,
        Err(e) if e.kind() == io::ErrorKind::NotFound => Vec::new(),
        Err(e) => return Err(e),
    };
    let mut good = 0usize;
    for line in bytes.split_inclusive(|b| *b == b'\n') {
        if line.last() != Some(&b'\n') {
            break;
        }
        let Ok(l) = serde_json::from_slice::<Line>(line) else {
            break;
        };
        good += line.len();
        if l.gen != index.gen {
            continue;
        }
        index.seq = l.seq;
        index.dirty = l.dirty;
        index.kept_local = l.kept_local;
        for (p, n) in l.nodes {
            index.nodes.replay(p, n);
        }
    }
    if good != bytes.len() {
        tracing::warn!(path = %jpath.display(), "sitesync: cutting a torn index journal tail");
        let f = OpenOptions::new().write(true).open(&jpath)?;
        f.set_len(good as u64)?;
        f.sync_all()?;
    }
    index.nodes.clear_touched();
    index.sizes = (base_len, good as u64);
    Ok(index)
}

/// Saves what changed since the last save (see the module).
pub fn save(index: &mut Index, path: &Path) -> io::Result<()> {
    let (base_len, journal_len) = index.sizes;
    if journal_len >= MIN_JOURNAL.max(base_len) {
        return compact(index, path);
    }
    let line = Line {
        gen: index.gen,
        seq: index.seq,
        dirty: index.dirty,
        kept_local: index.kept_local.clone(),
        nodes: index.nodes.take_touched().into_iter().collect(),
    };
    let written = append(&line, path, journal_len);
    match written {
        Ok(n) => {
            index.sizes.1 += n;
            Ok(())
        }
        Err(e) => {
            // still to be saved next time
            index.nodes.retouch(line.nodes.into_keys());
            Err(e)
        }
    }
}

/// Appends `line` to the journal of `path` (now `len` bytes long), fsynced; on failure
/// the journal is cut back to `len`, so no torn line sits before the next one.
fn append(line: &Line, path: &Path, len: u64) -> io::Result<u64> {
    let mut b = serde_json::to_vec(line).map_err(io::Error::other)?;
    b.push(b'\n');
    let mut f = OpenOptions::new()
        .create(true)
        .append(true)
        .open(journal_path(path))?;
    let res = f.write_all(&b).and_then(|()| f.sync_data());
    if let Err(e) = res {
        let _ = f.set_len(len);
        return Err(e);
    }
    if len == 0 {
        if let Some(dir) = path.parent() {
            durable::sync_dir(dir)?;
        }
    }
    Ok(b.len() as u64)
}

/// Writes a new base of the next generation, then empties the journal.
fn compact(index: &mut Index, path: &Path) -> io::Result<()> {
    index.gen += 1;
    let b = serde_json::to_vec(&*index).map_err(io::Error::other)?;
    if let Err(e) = durable::write_atomic(path, &b, 0o600) {
        index.gen -= 1;
        return Err(e);
    }
    index.nodes.clear_touched();
    let f = OpenOptions::new()
        .create(true)
        .truncate(true)
        .write(true)
        .open(journal_path(path))?;
    f.sync_all()?;
    index.sizes = (b.len() as u64, 0);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(n: u64) -> Node {
        Node::File {
            blake3: "ab".repeat(32),
            size: n,
            mode: 0o644,
            mtime: proto::sitesync::Mtime { secs: 1, nanos: 2 },
        }
    }

    #[test]
    fn a_save_appends_only_what_changed_and_loads_back_equal() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("index.json");
        let mut i = Index::default();
        for n in 0..10_000 {
            i.nodes.insert(format!("dir/f{n}"), file(n));
        }
        i.save(&p).unwrap();
        // the first save is a journal line; force a base
        i.sizes.1 = u64::MAX;
        i.save(&p).unwrap();
        let base = std::fs::metadata(&p).unwrap().len();
        assert!(base > 100_000, "{base}");
        assert_eq!(std::fs::metadata(journal_path(&p)).unwrap().len(), 0);
        // one change: one short line, the base untouched
        i.nodes.insert("dir/f7".into(), file(70));
        i.nodes.remove("dir/f8");
        i.seq = 5;
        i.kept_local.insert("big.iso".into());
        i.save(&p).unwrap();
        let j = std::fs::metadata(journal_path(&p)).unwrap().len();
        assert!(j < 400, "{j}");
        assert_eq!(std::fs::metadata(&p).unwrap().len(), base);
        assert_eq!(load(&p).unwrap(), i);
        // a torn tail is cut off; what was saved before it stays
        let mut f = OpenOptions::new()
            .append(true)
            .open(journal_path(&p))
            .unwrap();
        f.write_all(b"{\"gen\":1,\"seq\":9").unwrap();
        let back = load(&p).unwrap();
        assert_eq!(back, i);
        assert_eq!(std::fs::metadata(journal_path(&p)).unwrap().len(), j);
    }

    #[test]
    fn stale_lines_after_a_crash_mid_compaction_are_not_replayed() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("index.json");
        let mut i = Index::default();
        i.nodes.insert("a".into(), file(1));
        i.save(&p).unwrap();
        i.nodes.insert("a".into(), file(2));
        i.save(&p).unwrap();
        let old_journal = std::fs::read(journal_path(&p)).unwrap();
        i.sizes.1 = u64::MAX;
        i.nodes.insert("a".into(), file(3));
        i.save(&p).unwrap();
        // the crash: the new base is written, the old journal still there
        std::fs::write(journal_path(&p), &old_journal).unwrap();
        let back = load(&p).unwrap();
        assert_eq!(back.nodes.get("a"), Some(&file(3)));
        // and saving on top of it keeps the newest state
        let mut back = back;
        back.nodes.insert("b".into(), file(4));
        back.save(&p).unwrap();
        let again = load(&p).unwrap();
        assert_eq!(again.nodes.get("a"), Some(&file(3)));
        assert_eq!(again.nodes.get("b"), Some(&file(4)));
    }
}
