//! What the hub keeps outside a site's tree: overwritten and deleted versions (for
//! `versions_days`, restorable by path and time) and the losers of conflicts (listed by
//! the API). Each kept item is a JSON record plus, for a file, a copy of its content,
//! both fsynced before the change that displaced it is acknowledged.

use std::fs::File;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use proto::sitesync::{ConflictRecord, Mtime, Node, VersionRecord};

/// The versions and conflicts areas of one site.
#[derive(Debug)]
pub struct Keep {
    versions: PathBuf,
    conflicts: PathBuf,
}

fn key(path: &str) -> String {
    // a fixed-length directory name per path: any path fits, no nesting between paths
    blake3::hash(path.as_bytes()).to_hex()[..32].to_string()
}

fn stamp(t: Mtime) -> String {
    format!("{:012}.{:09}", t.secs.max(0), t.nanos)
}

fn write_durable(
    dir: &Path,
    name: &str,
    content: Option<&mut dyn Read>,
    meta: &[u8],
) -> io::Result<()> {
    if let Some(r) = content {
        let data = dir.join(format!("{name}.data"));
        let mut f = File::create(&data)?;
        io::copy(r, &mut f)?;
        f.sync_all()?;
    }
    durable::write_atomic(&dir.join(format!("{name}.json")), meta, 0o600)
}

impl Keep {
    /// Opens (creating) both areas under `dir`.
    pub fn open(dir: &Path) -> io::Result<Keep> {
        let k = Keep {
            versions: dir.join("versions"),
            conflicts: dir.join("conflicts"),
        };
        durable::create_private_dir(&k.versions)?;
        durable::create_private_dir(&k.conflicts)?;
        Ok(k)
    }

    /// Keeps the version `node` of `path` (content from `content` for a file), replaced at `now`.
    pub fn keep_version(
        &self,
        path: &str,
        node: &Node,
        content: Option<&mut dyn Read>,
        now: Mtime,
    ) -> io::Result<()> {
        let dir = self.versions.join(key(path));
        durable::create_private_dir(&dir)?;
        let rec = VersionRecord {
            path: path.to_string(),
            replaced: now,
            node: node.clone(),
        };
        let meta = serde_json::to_vec(&rec).map_err(io::Error::other)?;
        write_durable(&dir, &stamp(now), content, &meta)?;
        durable::sync_dir(&self.versions)
    }

    /// The kept versions of `path`, oldest first.
    pub fn versions(&self, path: &str) -> io::Result<Vec<VersionRecord>> {
        read_records(&self.versions.join(key(path)))
    }

    /// The kept versions of every path beneath the folder `dir`, by path, each oldest
    /// first (reads every record: for restoring a deleted folder, which is rare).
    pub fn versions_under(
        &self,
        dir: &str,
    ) -> io::Result<std::collections::BTreeMap<String, Vec<VersionRecord>>> {
        let prefix = format!("{dir}/");
        let mut out: std::collections::BTreeMap<String, Vec<VersionRecord>> = Default::default();
        for d in std::fs::read_dir(&self.versions)? {
            for rec in read_records::<VersionRecord>(&d?.path())? {
                if rec.path.starts_with(&prefix) {
                    out.entry(rec.path.clone()).or_default().push(rec);
                }
            }
        }
        Ok(out)
    }

    /// Opens the content of a kept file version.
    pub fn open_version(&self, rec: &VersionRecord) -> io::Result<File> {
        File::open(
            self.versions
                .join(key(&rec.path))
                .join(format!("{}.data", stamp(rec.replaced))),
        )
    }

    /// Removes versions replaced before `cutoff`; returns how many.
    pub fn expire(&self, cutoff: Mtime) -> io::Result<usize> {
        let mut n = 0;
        for d in std::fs::read_dir(&self.versions)? {
            let d = d?.path();
            for rec in read_records::<VersionRecord>(&d)? {
                if rec.replaced < cutoff {
                    let s = stamp(rec.replaced);
                    let _ = std::fs::remove_file(d.join(format!("{s}.data")));
                    std::fs::remove_file(d.join(format!("{s}.json")))?;
                    n += 1;
                }
            }
            // an emptied directory goes too (fails harmlessly when not empty)
            let _ = std::fs::remove_dir(&d);
        }
        durable::sync_dir(&self.versions)?;
        Ok(n)
    }

    /// Keeps a conflict's loser; returns its record id.
    pub fn keep_conflict(
        &self,
        mut rec: ConflictRecord,
        content: Option<&mut dyn Read>,
    ) -> io::Result<String> {
        rec.id = format!("{}-{}", stamp(rec.time), &key(&rec.change_id)[..12]);
        let meta = serde_json::to_vec(&rec).map_err(io::Error::other)?;
        write_durable(&self.conflicts, &rec.id, content, &meta)?;
        durable::sync_dir(&self.conflicts)?;
        Ok(rec.id)
    }

    /// Every kept conflict, oldest first.
    pub fn conflicts(&self) -> io::Result<Vec<ConflictRecord>> {
        read_records(&self.conflicts)
    }

    /// The content of a kept conflict (a file's losing version).
    pub fn conflict_content(&self, id: &str) -> io::Result<Vec<u8>> {
        if id.contains('/') || id.starts_with('.') {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, "bad id"));
        }
        std::fs::read(self.conflicts.join(format!("{id}.data")))
    }
}

fn read_records<T: serde::de::DeserializeOwned>(dir: &Path) -> io::Result<Vec<T>> {
    let mut names: Vec<PathBuf> = match std::fs::read_dir(dir) {
        Ok(rd) => rd
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "json"))
            .collect(),
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    names.sort();
    let mut out = Vec::new();
    for p in names {
        match serde_json::from_slice(&std::fs::read(&p)?) {
            Ok(r) => out.push(r),
            Err(e) => tracing::warn!(path = %p.display(), "sitesync: unreadable record: {e}"),
        }
    }
    Ok(out)
}
