//! A site's durable ordered log: one JSON [`Entry`] per line, appended and fsynced before
//! the hub acknowledges, so the sequence number survives restarts. A torn last line (a
//! crash or a full disk mid-append) is cut off on open. The log keeps the newest
//! `keep` entries (rewritten atomically when it holds twice that); a replica asking for
//! an older position is told to read the manifest instead.
//!
//! No descriptor is held between calls: an append opens the file, writes, fsyncs and
//! closes it, so a files server with 100,000 sites does not hold 100,000 open logs
//! (the per-process limit is far lower). The file and its directory were fsynced when
//! the log was opened, so an append to the existing file needs only its own fsync.

use std::fs::{File, OpenOptions};
use std::io::{self, BufRead, BufReader, Write};
use std::path::{Path, PathBuf};

use proto::sitesync::{Entry, LogRead};

/// The log of one site.
#[derive(Debug)]
pub struct Log {
    path: PathBuf,
    entries: Vec<Entry>,
    len: u64,
    keep: usize,
    /// The length before the last append, for [`Log::undo_last`].
    before_last: Option<(u64, usize)>,
}

impl Log {
    /// Opens (or creates) the log at `path`, cutting off a torn tail.
    pub fn open(path: &Path, keep: usize) -> io::Result<Log> {
        let file = OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .open(path)?;
        // closed on return: nothing is held between calls
        let mut entries: Vec<Entry> = Vec::new();
        let mut good = 0u64;
        let mut r = BufReader::new(&file);
        let mut line = Vec::new();
        loop {
            line.clear();
            let n = r.read_until(b'\n', &mut line)?;
            if n == 0 || line.last() != Some(&b'\n') {
                break;
            }
            match serde_json::from_slice::<Entry>(&line) {
                Ok(e) if entries.last().is_none_or(|l| l.seq + 1 == e.seq) => entries.push(e),
                _ => break,
            }
            good += n as u64;
        }
        if file.metadata()?.len() != good {
            tracing::warn!(path = %path.display(), "sitesync: cutting a torn log tail");
            file.set_len(good)?;
            file.sync_all()?;
        }
        if let Some(dir) = path.parent() {
            durable::sync_dir(dir)?;
        }
        Ok(Log {
            path: path.to_path_buf(),
            entries,
            len: good,
            keep: keep.max(1),
            before_last: None,
        })
    }

    /// Opens the existing log for one append or cut. Never creates it: a log deleted
    /// behind the hub's back is an error, not a fresh log starting at a later seq.
    /// Opened with `O_APPEND`, so a write lands at the end. A tail beyond the known
    /// length (an append whose cut-back failed) is cut off first; a shorter file
    /// (truncated behind the hub's back) is refused rather than appended to.
    fn reopen(&self) -> io::Result<File> {
        let file = OpenOptions::new().append(true).open(&self.path)?;
        let len = file.metadata()?.len();
        if len > self.len {
            tracing::warn!(path = %self.path.display(), "sitesync: cutting a torn log tail");
            file.set_len(self.len)?;
            file.sync_all()?;
        } else if len < self.len {
            return Err(io::Error::other(format!(
                "{} is {len} bytes, {} expected: truncated behind the hub's back",
                self.path.display(),
                self.len
            )));
        }
        Ok(file)
    }

    /// The newest sequence number (0 for an empty log).
    pub fn head(&self) -> u64 {
        self.entries.last().map_or(0, |e| e.seq)
    }

    /// The newest entry.
    pub fn last(&self) -> Option<&Entry> {
        self.entries.last()
    }

    /// The retained entries, oldest first.
    pub fn entries(&self) -> &[Entry] {
        &self.entries
    }

    /// Appends `entry` (its seq must be `head() + 1`) and fsyncs. On failure the file is
    /// cut back to what it was, so a full disk leaves no half entry.
    pub fn append(&mut self, entry: Entry) -> io::Result<()> {
        if entry.seq != self.head() + 1 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "log entries must be consecutive",
            ));
        }
        let mut line = serde_json::to_vec(&entry).map_err(io::Error::other)?;
        line.push(b'\n');
        let mut file = self.reopen()?;
        let res = file.write_all(&line).and_then(|()| file.sync_data());
        if let Err(e) = res {
            let _ = file.set_len(self.len);
            let _ = file.sync_all();
            return Err(e);
        }
        self.before_last = Some((self.len, self.entries.len()));
        self.len += line.len() as u64;
        self.entries.push(entry);
        Ok(())
    }

    /// Takes back the entry just appended (its change could not be applied).
    pub fn undo_last(&mut self) -> io::Result<()> {
        if let Some((len, n)) = self.before_last.take() {
            let file = self.reopen()?;
            file.set_len(len)?;
            file.sync_all()?;
            self.len = len;
            self.entries.truncate(n);
        }
        Ok(())
    }

    /// The entries after `seq`, at most `max`; `SnapshotNeeded` when `seq` is older than
    /// the retained log.
    pub fn read_after(&self, seq: u64, max: usize) -> LogRead {
        let head = self.head();
        let first = self.entries.first().map_or(head + 1, |e| e.seq);
        if seq + 1 < first {
            return LogRead::SnapshotNeeded { head };
        }
        let skip = usize::try_from(seq + 1 - first).unwrap_or(usize::MAX);
        LogRead::Entries {
            entries: self.entries.iter().skip(skip).take(max).cloned().collect(),
            head,
        }
    }

    /// Drops the oldest entries once the log holds twice `keep`: the newest `keep` are
    /// written to a new file that atomically replaces the old one.
    pub fn compact(&mut self) -> io::Result<()> {
        if self.entries.len() < self.keep.saturating_mul(2) {
            return Ok(());
        }
        let from = self.entries.len() - self.keep;
        let mut text = Vec::new();
        for e in &self.entries[from..] {
            text.extend(serde_json::to_vec(e).map_err(io::Error::other)?);
            text.push(b'\n');
        }
        durable::write_atomic(&self.path, &text, 0o600)?;
        let reopened = Log::open(&self.path, self.keep)?;
        *self = reopened;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proto::sitesync::{Change, Mtime, Op};

    fn entry(seq: u64) -> Entry {
        Entry {
            seq,
            origin: "web-1".into(),
            time: Mtime { secs: 1, nanos: 2 },
            change: Change {
                id: format!("c{seq}"),
                path: "a".into(),
                base: None,
                op: Op::Delete,
            },
        }
    }

    #[test]
    fn survives_restart_cuts_torn_tail_and_compacts() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("log.jsonl");
        let mut log = Log::open(&p, 3).unwrap();
        for s in 1..=4 {
            log.append(entry(s)).unwrap();
        }
        assert!(log.append(entry(9)).is_err());
        drop(log);
        // a torn append
        let mut f = OpenOptions::new().append(true).open(&p).unwrap();
        f.write_all(br#"{"seq":5,"ori"#).unwrap();
        drop(f);
        let mut log = Log::open(&p, 3).unwrap();
        assert_eq!(log.head(), 4);
        log.append(entry(5)).unwrap();
        log.undo_last().unwrap();
        assert_eq!(log.head(), 4);
        log.append(entry(5)).unwrap();
        log.append(entry(6)).unwrap();
        log.compact().unwrap();
        assert_eq!(log.entries().len(), 3);
        assert_eq!(Log::open(&p, 3).unwrap().head(), 6);
        assert_eq!(log.read_after(1, 10), LogRead::SnapshotNeeded { head: 6 });
        match log.read_after(3, 2) {
            LogRead::Entries { entries, head } => {
                assert_eq!(head, 6);
                assert_eq!(entries.iter().map(|e| e.seq).collect::<Vec<_>>(), [4, 5]);
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(
            log.read_after(6, 10),
            LogRead::Entries {
                entries: vec![],
                head: 6
            }
        );
    }
}
