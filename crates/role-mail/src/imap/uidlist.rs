//! UIDs and UIDVALIDITY that persist: one `hostplane-uidlist` file per mailbox
//! folder, next to its `cur/` (like Dovecot's `dovecot-uidlist`), and the keyword
//! table `hostplane-keywords` at the root of the user's Maildir (like
//! `dovecot-keywords`: keyword *i* is the flag letter `a`+*i* in file names).
//!
//! A folder is synchronised ([`Folder::sync`]) under the folder's lock: `new/` is
//! moved into `cur/` with an empty `:2,` info, files not in the list get the next
//! UIDs in delivery order, and the list is written durably (file and directory
//! fsynced, `durable::write_atomic`) before any of those UIDs is returned, so a UID
//! a client has seen never changes or is reused. The list is the unit a future
//! replica will copy (issue 16 point 3): UIDs are assigned only here.
//!
//! File format: first line `V1 <uidvalidity> <uidnext>`, then `<uid> <base name>`
//! per message, ascending. APPEND adds its message by appending one line
//! ([`append_uid`]) instead of rewriting the list, so the header's next UID may
//! lag: the next UID is the larger of it and the last listed UID + 1.

use std::collections::{BTreeSet, HashMap};
use std::fs;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

/// Name of the per-folder UID list.
pub const UIDLIST: &str = "hostplane-uidlist";
/// Its cross-process lock file.
pub const UIDLIST_LOCK: &str = "hostplane-uidlist.lock";
/// Name of the keyword table at the Maildir root.
pub const KEYWORDS: &str = "hostplane-keywords";
/// Most keywords a mailbox can hold (one file-name letter each).
pub const MAX_KEYWORDS: usize = 26;

/// One message of a folder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Msg {
    /// Its UID.
    pub uid: u32,
    /// The Maildir base name (before `:2,`).
    pub base: String,
    /// The current file name in `cur/`.
    pub file: String,
}

impl Msg {
    /// The flag letters of the file name (after `:2,`).
    pub fn letters(&self) -> &str {
        self.file.split_once(":2,").map(|(_, f)| f).unwrap_or("")
    }

    /// Size with CRLF line ends (from `,W=`, else computed).
    pub fn size(&self, dir: &Path) -> u64 {
        crate::maildir::name_field(&self.file, "W").unwrap_or_else(|| {
            crate::maildir::read_crlf(&dir.join("cur").join(&self.file))
                .map(|d| d.len() as u64)
                .unwrap_or(0)
        })
    }
}

/// A synchronised view of one folder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Folder {
    /// The folder's Maildir directory.
    pub dir: PathBuf,
    /// Its UIDVALIDITY.
    pub uidvalidity: u32,
    /// The next UID to assign.
    pub uidnext: u32,
    /// Messages, ascending UID.
    pub msgs: Vec<Msg>,
}

/// Order of a base name in delivery time (`<secs>.M<usec>...`).
fn order_key(base: &str) -> (u64, u64, String) {
    let (secs, rest) = base.split_once('.').unwrap_or((base, ""));
    let usec = rest
        .strip_prefix('M')
        .and_then(|r| r.split('P').next())
        .and_then(|u| u.parse().ok())
        .unwrap_or(0);
    (secs.parse().unwrap_or(0), usec, base.to_string())
}

/// A fresh UIDVALIDITY (seconds since the epoch, never 0).
fn new_uidvalidity() -> u32 {
    let s = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(1);
    u32::try_from(s).unwrap_or(u32::MAX).max(1)
}

/// A parsed list: UIDVALIDITY, next UID, (UID, base name) pairs.
type Listed = (u32, u32, Vec<(u32, String)>);

fn parse_list(text: &str) -> Option<Listed> {
    // A last line without its newline is an append cut short by a crash: its UID
    // was never acknowledged (the line is synced before it is), so it is dropped.
    let text = match text.rfind('\n') {
        Some(i) => &text[..=i],
        None => text,
    };
    let mut lines = text.lines();
    let mut head = lines.next()?.split_whitespace();
    if head.next()? != "V1" {
        return None;
    }
    let validity: u32 = head.next()?.parse().ok()?;
    let mut next: u32 = head.next()?.parse().ok()?;
    let mut out = Vec::new();
    for l in lines {
        let (u, b) = l.split_once(' ')?;
        let uid: u32 = u.parse().ok()?;
        // lines appended by [`append_uid`] run ahead of the header's next UID
        next = next.max(uid.saturating_add(1));
        out.push((uid, b.to_string()));
    }
    Some((validity, next, out))
}

/// Give message `base`, already renamed into the folder's `cur/`, the next UID
/// without rescanning the folder (what APPEND pays at 10,000 messages): under
/// the folder's `flock`, one `<uid> <base>` line appended to the UID list and the
/// list's data synced before the UID is returned. [`Folder::sync`] reads such
/// lines like any other (the next UID is past the largest listed) and folds them
/// into the header when it next rewrites the list. Returns UIDVALIDITY and UID,
/// or `None` when there is no readable list yet (the caller rescans with
/// [`Folder::sync`], which writes one). The caller holds the folder's in-process
/// lock.
pub fn append_uid(dir: &Path, base: &str) -> std::io::Result<Option<(u32, u32)>> {
    use std::io::{Read, Write};
    let lock = fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(dir.join(UIDLIST_LOCK))?;
    rustix::fs::flock(&lock, rustix::fs::FlockOperation::LockExclusive)?;
    let mut f = match fs::OpenOptions::new()
        .read(true)
        .append(true)
        .open(dir.join(UIDLIST))
    {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    let mut text = String::new();
    if f.read_to_string(&mut text).is_err() || !text.ends_with('\n') {
        return Ok(None);
    }
    let Some((validity, next, listed)) = parse_list(&text) else {
        return Ok(None);
    };
    // a rescan (another session, another process) may have listed it already
    if let Some((uid, _)) = listed.iter().find(|(_, b)| b == base) {
        return Ok(Some((validity, *uid)));
    }
    f.write_all(format!("{next} {base}\n").as_bytes())?;
    f.sync_data()?;
    Ok(Some((validity, next)))
}

fn render_list(f: &Folder) -> String {
    let mut s = format!("V1 {} {}\n", f.uidvalidity, f.uidnext);
    for m in &f.msgs {
        s.push_str(&format!("{} {}\n", m.uid, m.base));
    }
    s
}

/// Write `f`'s UID list durably (the replication applier sets a folder to the
/// writer's UIDs with it; the caller holds the folder's locks).
pub fn write_list(f: &Folder) -> std::io::Result<()> {
    durable::write_atomic(&f.dir.join(UIDLIST), render_list(f).as_bytes(), 0o600)
}

/// Create `tmp/`, `new/`, `cur/` of a folder and Maildir++'s `maildirfolder` marker.
pub fn create_folder(dir: &Path, is_sub: bool) -> std::io::Result<()> {
    crate::maildir::ensure(dir)?;
    if is_sub {
        fs::write(dir.join("maildirfolder"), b"")?;
    }
    if let Some(p) = dir.parent() {
        durable::sync_dir(p)?;
    }
    Ok(())
}

impl Folder {
    /// The message with `uid`: a binary search, `msgs` being in ascending UID order
    /// (a linear scan per message made FETCH 1:* quadratic in the folder's size).
    pub fn get(&self, uid: u32) -> Option<&Msg> {
        self.msgs
            .binary_search_by_key(&uid, |m| m.uid)
            .ok()
            .map(|i| &self.msgs[i])
    }

    /// Synchronise the folder at `dir` (which must exist): see the module doc.
    /// The caller holds the folder's in-process lock; an exclusive `flock` on
    /// `hostplane-uidlist.lock` keeps another process (a second server on the same
    /// state, a future replica applier) from assigning the same UIDs meanwhile.
    pub fn sync(dir: &Path) -> std::io::Result<Folder> {
        crate::maildir::ensure(dir)?;
        let lock = fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(dir.join(UIDLIST_LOCK))?;
        rustix::fs::flock(&lock, rustix::fs::FlockOperation::LockExclusive)?;
        let new = dir.join("new");
        let cur = dir.join("cur");
        let mut moved = false;
        for entry in fs::read_dir(&new)? {
            let name = entry?.file_name().to_string_lossy().into_owned();
            if name.starts_with('.') {
                continue;
            }
            let base = name.split(':').next().unwrap_or(&name).to_string();
            fs::rename(new.join(&name), cur.join(format!("{base}:2,")))?;
            moved = true;
        }
        if moved {
            durable::sync_dir(&cur)?;
            durable::sync_dir(&new)?;
        }
        let mut files: HashMap<String, String> = HashMap::new();
        for entry in fs::read_dir(&cur)? {
            let name = entry?.file_name().to_string_lossy().into_owned();
            if name.starts_with('.') {
                continue;
            }
            let base = name.split(':').next().unwrap_or(&name).to_string();
            files.insert(base, name);
        }
        let text = fs::read_to_string(dir.join(UIDLIST)).ok();
        // a torn last line (see `parse_list`) is written out of the list now
        let torn = text.as_ref().is_some_and(|t| !t.ends_with('\n'));
        let listed = text.as_deref().and_then(parse_list);
        let (uidvalidity, mut uidnext, known) = match listed {
            Some(l) => l,
            None => (new_uidvalidity(), 1, Vec::new()),
        };
        let mut changed = torn || (known.is_empty() && !dir.join(UIDLIST).exists());
        let mut msgs = Vec::with_capacity(files.len());
        for (uid, base) in known {
            match files.remove(&base) {
                Some(file) => msgs.push(Msg { uid, base, file }),
                None => changed = true,
            }
        }
        let mut fresh: Vec<(String, String)> = files.into_iter().collect();
        fresh.sort_by_key(|(b, _)| order_key(b));
        for (base, file) in fresh {
            msgs.push(Msg {
                uid: uidnext,
                base,
                file,
            });
            uidnext += 1;
            changed = true;
        }
        msgs.sort_by_key(|m| m.uid);
        let folder = Folder {
            dir: dir.to_path_buf(),
            uidvalidity,
            uidnext,
            msgs,
        };
        if changed {
            durable::write_atomic(&dir.join(UIDLIST), render_list(&folder).as_bytes(), 0o600)?;
        }
        Ok(folder)
    }

    /// Path of message `m`'s file.
    pub fn path(&self, m: &Msg) -> PathBuf {
        self.dir.join("cur").join(&m.file)
    }
}

/// The keyword table of the Maildir at `root`.
pub fn keywords(root: &Path) -> Vec<String> {
    fs::read_to_string(root.join(KEYWORDS))
        .map(|t| t.lines().map(str::to_string).collect())
        .unwrap_or_default()
}

/// The letters for `names` (system flags and keywords), adding new keywords to the
/// table durably; `None` when the table is full.
pub fn letters_for(root: &Path, names: &BTreeSet<String>) -> std::io::Result<Option<String>> {
    let mut table = keywords(root);
    let before = table.len();
    let mut letters = BTreeSet::new();
    for n in names {
        let l = match system_letter(n) {
            Some(l) => l,
            None => {
                let i = match table.iter().position(|k| k.eq_ignore_ascii_case(n)) {
                    Some(i) => i,
                    None => {
                        if table.len() >= MAX_KEYWORDS {
                            return Ok(None);
                        }
                        table.push(n.clone());
                        table.len() - 1
                    }
                };
                char::from(b'a' + i as u8)
            }
        };
        letters.insert(l);
    }
    if table.len() != before {
        let text: String = table.iter().map(|k| format!("{k}\n")).collect();
        durable::write_atomic(&root.join(KEYWORDS), text.as_bytes(), 0o600)?;
    }
    Ok(Some(letters.into_iter().collect()))
}

/// The flag names of `letters`.
pub fn names_of(letters: &str, table: &[String]) -> BTreeSet<String> {
    letters
        .chars()
        .filter_map(|c| match c {
            'D' => Some("\\Draft".to_string()),
            'F' => Some("\\Flagged".to_string()),
            'R' => Some("\\Answered".to_string()),
            'S' => Some("\\Seen".to_string()),
            'T' => Some("\\Deleted".to_string()),
            'a'..='z' => table.get((c as u8 - b'a') as usize).cloned(),
            _ => None,
        })
        .collect()
}

fn system_letter(name: &str) -> Option<char> {
    Some(match name.to_ascii_lowercase().as_str() {
        "\\draft" => 'D',
        "\\flagged" => 'F',
        "\\answered" => 'R',
        "\\seen" => 'S',
        "\\deleted" => 'T',
        _ => return None,
    })
}

/// Rename message `m` of `folder` to carry `letters`; returns the new file name.
pub fn set_letters(folder: &Folder, m: &Msg, letters: &str) -> std::io::Result<String> {
    let file = format!("{}:2,{}", m.base, letters);
    if file != m.file {
        let cur = folder.dir.join("cur");
        fs::rename(cur.join(&m.file), cur.join(&file))?;
    }
    Ok(file)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uids_persist_and_grow() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        let md = crate::maildir::maildir_path(root, "example.com", "a");
        crate::maildir::deliver(root, "example.com", "a", "h", b"S: 1\r\n\r\nx\r\n").unwrap();
        crate::maildir::deliver(root, "example.com", "a", "h", b"S: 2\r\n\r\nx\r\n").unwrap();
        let f = Folder::sync(&md).unwrap();
        assert_eq!(f.msgs.iter().map(|m| m.uid).collect::<Vec<_>>(), [1, 2]);
        let v = f.uidvalidity;
        fs::remove_file(f.path(&f.msgs[0])).unwrap();
        crate::maildir::deliver(root, "example.com", "a", "h", b"S: 3\r\n\r\nx\r\n").unwrap();
        let g = Folder::sync(&md).unwrap();
        assert_eq!(g.uidvalidity, v);
        assert_eq!(g.msgs.iter().map(|m| m.uid).collect::<Vec<_>>(), [2, 3]);
        assert_eq!(g.uidnext, 4);
        let text = fs::read_to_string(md.join(UIDLIST)).unwrap();
        assert!(text.starts_with(&format!("V1 {v} 4\n2 ")), "{text}");
        let names: BTreeSet<String> = ["\\Seen".to_string(), "$Forwarded".to_string()].into();
        let l = letters_for(&md, &names).unwrap().unwrap();
        assert_eq!(l, "Sa");
        assert_eq!(names_of(&l, &keywords(&md)), names);
        // quota usage counts the Maildir++ folders too
        let before = crate::maildir::usage(&md).unwrap();
        let sent = md.join(".Sent");
        create_folder(&sent, true).unwrap();
        fs::write(sent.join("cur").join("1.M1P1.h,S=7:2,S"), b"1234567").unwrap();
        assert_eq!(crate::maildir::usage(&md).unwrap(), before + 7);
    }

    /// APPEND's fast path: a line appended to the list, read back by a full sync
    /// (which keeps the UID and goes on counting after it), a message a rescan
    /// listed first keeps that UID, and a line cut short by a crash is dropped
    /// (never a new UIDVALIDITY).
    #[test]
    fn appended_uids_are_kept_by_a_rescan() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        let md = crate::maildir::maildir_path(root, "example.com", "a");
        assert_eq!(
            append_uid(&{ ensure_dir(&md) }, "x").unwrap(),
            None,
            "no list yet"
        );
        crate::maildir::deliver(root, "example.com", "a", "h", b"S: 1\r\n\r\nx\r\n").unwrap();
        let f = Folder::sync(&md).unwrap();
        let v = f.uidvalidity;
        fs::write(md.join("cur").join("1.M1P1.h,S=3:2,S"), b"a\n").unwrap();
        assert_eq!(append_uid(&md, "1.M1P1.h,S=3").unwrap(), Some((v, 2)));
        assert_eq!(
            append_uid(&md, "1.M1P1.h,S=3").unwrap(),
            Some((v, 2)),
            "listed once"
        );
        let text = fs::read_to_string(md.join(UIDLIST)).unwrap();
        assert!(
            text.starts_with(&format!("V1 {v} 2\n")),
            "header untouched: {text}"
        );
        assert!(text.ends_with("\n2 1.M1P1.h,S=3\n"), "{text}");
        // a delivery after it counts on from the appended UID
        crate::maildir::deliver(root, "example.com", "a", "h", b"S: 3\r\n\r\nx\r\n").unwrap();
        let g = Folder::sync(&md).unwrap();
        assert_eq!(g.uidvalidity, v);
        assert_eq!(g.msgs.iter().map(|m| m.uid).collect::<Vec<_>>(), [1, 2, 3]);
        assert_eq!(g.uidnext, 4);
        // a file a rescan listed before the append came to it keeps its UID
        fs::write(md.join("cur").join("2.M1P1.h,S=3:2,"), b"b\n").unwrap();
        let h = Folder::sync(&md).unwrap();
        assert_eq!(h.get(4).map(|m| m.base.as_str()), Some("2.M1P1.h,S=3"));
        assert_eq!(append_uid(&md, "2.M1P1.h,S=3").unwrap(), Some((v, 4)));
        // an append cut short: the partial line is ignored, the rest kept
        let mut text = fs::read_to_string(md.join(UIDLIST)).unwrap();
        text.push_str("5 3.M1P1");
        fs::write(md.join(UIDLIST), &text).unwrap();
        let k = Folder::sync(&md).unwrap();
        assert_eq!(k.uidvalidity, v);
        assert_eq!(
            k.msgs.iter().map(|m| m.uid).collect::<Vec<_>>(),
            [1, 2, 3, 4]
        );
        let text = fs::read_to_string(md.join(UIDLIST)).unwrap();
        assert!(
            text.starts_with(&format!("V1 {v} 5\n")),
            "rewritten: {text}"
        );
        assert!(!text.contains("3.M1P1"), "{text}");
    }

    fn ensure_dir(md: &Path) -> PathBuf {
        crate::maildir::ensure(md).unwrap();
        md.to_path_buf()
    }
}
