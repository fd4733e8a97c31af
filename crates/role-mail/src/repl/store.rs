//! The mailbox side of replication: a mailbox's [`Manifest`] as the writer sees
//! it, one message's bytes, a message a follower hands back ([`put`]), and the
//! follower's apply of a folder ([`apply_folder`]), which sets its folder to the
//! writer's UIDs, flags and UIDVALIDITY with every file and list fsynced before it
//! returns.
//!
//! What the follower keeps between rounds, per folder and writer, is the *base*:
//! `hostplane-replbase.<server>`, the messages (base name and flag letters) both
//! had after the last round. It tells a message the writer expunged (in the base,
//! gone there: removed here) from one written here while this server was the
//! writer (not in the base: kept, and handed to the writer, which gives it a new
//! UID there; only such messages are ever renumbered). `hostplane-replfolders.<server>`
//! at the Maildir root does the same for folders.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::imap::uidlist::{self, Folder, Msg};
use crate::server::Shared;

use super::wire::{FolderState, MailboxId, Manifest, MsgState};

/// A replication request names something we do not hold or cannot name safely.
pub fn invalid(what: &str) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::InvalidInput, what.to_string())
}

/// The Maildir root of `id`, if the plan hosts it (never a path from the wire).
pub fn root_of(shared: &Shared, id: &MailboxId) -> std::io::Result<PathBuf> {
    let plan = shared.live().plan.clone();
    let d = plan
        .domains
        .get(&id.domain)
        .ok_or_else(|| invalid("domain not hosted"))?;
    if !d.accounts.contains_key(&id.local) && !d.mailboxes.contains(&id.local) {
        return Err(invalid("no such mailbox"));
    }
    Ok(crate::maildir::maildir_path(
        &shared.state_dir,
        &d.name,
        &id.local,
    ))
}

/// Every mailbox the plan hosts.
pub fn mailboxes(shared: &Shared) -> Vec<MailboxId> {
    let plan = shared.live().plan.clone();
    let mut out = BTreeSet::new();
    for d in plan.domains.values() {
        for l in d.accounts.keys().chain(d.mailboxes.iter()) {
            out.insert(MailboxId {
                domain: d.name.clone(),
                local: l.clone(),
            });
        }
    }
    out.into_iter().collect()
}

/// The mailbox whose Maildir root is `root` (for the change feed).
pub fn id_of(shared: &Shared, root: &Path) -> Option<MailboxId> {
    let rel = root.strip_prefix(shared.state_dir.join("mail")).ok()?;
    let mut parts = rel.iter().map(|p| p.to_string_lossy().into_owned());
    let (domain, local, md) = (parts.next()?, parts.next()?, parts.next()?);
    (md == "Maildir" && parts.next().is_none()).then_some(MailboxId { domain, local })
}

/// A folder directory name from the wire: `""` or `.Name` (one component).
pub fn check_dir(dir: &str) -> std::io::Result<()> {
    let ok = dir.is_empty()
        || (dir.starts_with('.')
            && dir.len() > 1
            && dir != ".."
            && !dir.contains('/')
            && !dir.contains('\0'));
    ok.then_some(()).ok_or_else(|| invalid("bad folder"))
}

/// A base name from the wire: one file name component, no flags.
pub fn check_base(base: &str) -> std::io::Result<()> {
    let ok = !base.is_empty()
        && !base.starts_with('.')
        && !base.contains(['/', ':', '\0'])
        && base.len() < 250;
    ok.then_some(()).ok_or_else(|| invalid("bad message name"))
}

/// Folder letters from the wire: flag letters only.
pub fn check_letters(l: &str) -> std::io::Result<()> {
    l.chars()
        .all(|c| c.is_ascii_alphabetic())
        .then_some(())
        .ok_or_else(|| invalid("bad flags"))
}

fn folder_path(root: &Path, dir: &str) -> PathBuf {
    if dir.is_empty() {
        root.to_path_buf()
    } else {
        root.join(dir)
    }
}

/// The folder directories of a Maildir: `""` (INBOX) and every `.Name` with `cur/`.
pub fn folder_dirs(root: &Path) -> Vec<String> {
    let mut out = vec![String::new()];
    let mut subs: Vec<String> = fs::read_dir(root)
        .map(|rd| {
            rd.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.starts_with('.') && n != "." && n != "..")
                .filter(|n| root.join(n).join("cur").is_dir())
                .collect()
        })
        .unwrap_or_default();
    subs.sort();
    out.extend(subs);
    out
}

fn mtime(path: &Path) -> i64 {
    fs::metadata(path)
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// The wire state of `f`; internal dates of messages in `known` (the state sent
/// before) are taken from there, not read again.
fn state_of(f: &Folder, dir: &str, known: Option<&FolderState>) -> FolderState {
    let dates: HashMap<&str, i64> = known
        .map(|k| k.msgs.iter().map(|m| (m.base.as_str(), m.mtime)).collect())
        .unwrap_or_default();
    FolderState {
        dir: dir.to_string(),
        uidvalidity: f.uidvalidity,
        uidnext: f.uidnext,
        msgs: f
            .msgs
            .iter()
            .map(|m| MsgState {
                uid: m.uid,
                base: m.base.clone(),
                letters: m.letters().to_string(),
                mtime: dates
                    .get(m.base.as_str())
                    .copied()
                    .unwrap_or_else(|| mtime(&f.path(m))),
            })
            .collect(),
        gone: Vec::new(),
    }
}

/// The bases of `state` (the writer's folder at `fdir`) that `peer` is to remove:
/// in this server's base with `peer` (both had them after their last round),
/// gone here since (see [`FolderState::gone`]).
fn gone_for(fdir: &Path, peer: &str, state: &mut FolderState) {
    let now: BTreeSet<&str> = state.msgs.iter().map(|m| m.base.as_str()).collect();
    state.gone = read_base(fdir, peer)
        .into_keys()
        .filter(|b| !now.contains(b.as_str()))
        .collect();
}

/// What the writer sent one follower connection of a mailbox: per folder
/// directory, the folder's version in the IMAP registry and its state.
pub type Sent = BTreeMap<String, (u64, FolderState)>;

/// The mailbox at `root` as changed since `sent` (what this connection was sent
/// of it before; empty: everything). A folder whose registry version did not
/// move is not read again (only its directories' time stamps are).
pub fn delta(
    shared: &Shared,
    root: &Path,
    peer: &str,
    sent: &Sent,
) -> std::io::Result<(super::wire::Delta, Sent)> {
    crate::maildir::ensure(root)?;
    let dirs = folder_dirs(root);
    let mut next = Sent::new();
    let mut folders = Vec::new();
    for dir in &dirs {
        let before = sent.get(dir);
        let since = before.map_or(0, |(v, _)| *v);
        match shared.imap.sync_since(&folder_path(root, dir), since)? {
            None => {
                if let Some(b) = before {
                    next.insert(dir.clone(), b.clone());
                }
            }
            Some((f, version)) => {
                let prev = before.map(|(_, st)| st);
                let mut now = state_of(&f, dir, prev);
                gone_for(&folder_path(root, dir), peer, &mut now);
                let d = super::wire::FolderDelta::between(prev, &now);
                if !d.full
                    && d.upsert.is_empty()
                    && d.removed.is_empty()
                    && prev.is_some_and(|p| p.uidnext == now.uidnext)
                {
                    next.insert(dir.clone(), (version, now));
                    continue;
                }
                folders.push(d);
                next.insert(dir.clone(), (version, now));
            }
        }
    }
    Ok((
        super::wire::Delta {
            keywords: uidlist::keywords(root),
            subscriptions: fs::read_to_string(root.join("subscriptions")).unwrap_or_default(),
            dirs,
            folders,
        },
        next,
    ))
}

/// The mailbox at `root` as this server holds it (synchronising each folder,
/// which assigns UIDs to new deliveries: only a writer serves manifests).
pub fn manifest(shared: &Shared, root: &Path, peer: &str) -> std::io::Result<Manifest> {
    crate::maildir::ensure(root)?;
    let mut folders = Vec::new();
    for dir in folder_dirs(root) {
        let fdir = folder_path(root, &dir);
        let f = shared.imap.sync(&fdir)?;
        let mut st = state_of(&f, &dir, None);
        gone_for(&fdir, peer, &mut st);
        folders.push(st);
    }
    Ok(Manifest {
        keywords: uidlist::keywords(root),
        subscriptions: fs::read_to_string(root.join("subscriptions")).unwrap_or_default(),
        folders,
    })
}

/// The stored bytes of message `base` in folder `dir`: its file as the manifest
/// named it (`letters`), else found by a rescan (its flags changed since).
pub fn read_body(
    shared: &Shared,
    root: &Path,
    dir: &str,
    base: &str,
    letters: &str,
) -> std::io::Result<Vec<u8>> {
    let fdir = folder_path(root, dir);
    match fs::read(fdir.join("cur").join(format!("{base}:2,{letters}"))) {
        Ok(d) => return Ok(d),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    let f = shared.imap.sync(&fdir)?;
    let m = f
        .msgs
        .iter()
        .find(|m| m.base == base)
        .ok_or_else(|| invalid("no such message"))?;
    fs::read(f.path(m))
}

/// Write `data` durably to `path` with internal date `mtime`.
fn write_file(path: &Path, data: &[u8], mtime: i64) -> std::io::Result<()> {
    let mut f = fs::OpenOptions::new()
        .create(true)
        .truncate(true)
        .write(true)
        .open(path)?;
    f.write_all(data)?;
    if let Ok(secs) = u64::try_from(mtime) {
        let t = std::time::UNIX_EPOCH + std::time::Duration::from_secs(secs);
        f.set_times(fs::FileTimes::new().set_modified(t))?;
    }
    f.sync_all()
}

/// Add a message a follower hands back (the writer's side): it gets the next
/// UID of the folder here (created when missing). Idempotent by base name.
pub fn put(
    shared: &Shared,
    root: &Path,
    dir: &str,
    base: &str,
    letters: &str,
    mtime: i64,
    data: &[u8],
) -> std::io::Result<()> {
    let fdir = folder_path(root, dir);
    if !fdir.join("cur").is_dir() {
        uidlist::create_folder(&fdir, !dir.is_empty())?;
    }
    let slot = shared.imap.slot(&fdir);
    {
        let _g = slot.lock.lock().unwrap_or_else(|p| p.into_inner());
        let f = Folder::sync(&fdir)?;
        if !f.msgs.iter().any(|m| m.base == base) {
            let tmp = fdir.join("tmp").join(format!("repl-{base}"));
            write_file(&tmp, data, mtime)?;
            fs::rename(&tmp, fdir.join("cur").join(format!("{base}:2,{letters}")))?;
            durable::sync_dir(&fdir.join("cur"))?;
            Folder::sync(&fdir)?;
        }
    }
    shared.imap.changed(&fdir);
    shared.repl_feed.touch(root);
    Ok(())
}

/// Create folder `dir` a follower hands back (the writer's side); nothing if it
/// exists.
pub fn make_folder(shared: &Shared, root: &Path, dir: &str) -> std::io::Result<()> {
    let fdir = folder_path(root, dir);
    if !fdir.join("cur").is_dir() {
        uidlist::create_folder(&fdir, true)?;
        shared.imap.sync(&fdir)?;
    }
    shared.imap.changed(&fdir);
    shared.repl_feed.touch(root);
    Ok(())
}

/// Stage a fetched message in the folder's `tmp/` (fsynced), for [`apply_folder`].
pub fn stage(
    root: &Path,
    dir: &str,
    base: &str,
    mtime: i64,
    data: &[u8],
) -> std::io::Result<PathBuf> {
    let fdir = folder_path(root, dir);
    if !fdir.join("tmp").is_dir() {
        uidlist::create_folder(&fdir, !dir.is_empty())?;
    }
    let tmp = fdir.join("tmp").join(format!("repl-{base}"));
    write_file(&tmp, data, mtime)?;
    Ok(tmp)
}

fn safe_peer(peer: &str) -> String {
    peer.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// The base of a folder with `peer`: base name → flag letters.
pub fn read_base(fdir: &Path, peer: &str) -> BTreeMap<String, String> {
    fs::read_to_string(fdir.join(format!("hostplane-replbase.{}", safe_peer(peer))))
        .map(|t| {
            t.lines()
                .filter_map(|l| {
                    let (b, f) = l.split_once(' ').unwrap_or((l, ""));
                    (!b.is_empty()).then(|| (b.to_string(), f.to_string()))
                })
                .collect()
        })
        .unwrap_or_default()
}

fn write_base(fdir: &Path, peer: &str, base: &BTreeMap<String, String>) -> std::io::Result<()> {
    let text: String = base.iter().map(|(b, f)| format!("{b} {f}\n")).collect();
    durable::write_atomic(
        &fdir.join(format!("hostplane-replbase.{}", safe_peer(peer))),
        text.as_bytes(),
        0o600,
    )
}

/// The folders both had after the last round with `peer`.
pub fn read_folder_base(root: &Path, peer: &str) -> BTreeSet<String> {
    fs::read_to_string(root.join(format!("hostplane-replfolders.{}", safe_peer(peer))))
        .map(|t| t.lines().map(str::to_string).collect())
        .unwrap_or_default()
}

/// Record the folders both have now.
pub fn write_folder_base(root: &Path, peer: &str, dirs: &BTreeSet<String>) -> std::io::Result<()> {
    let text: String = dirs.iter().map(|d| format!("{d}\n")).collect();
    durable::write_atomic(
        &root.join(format!("hostplane-replfolders.{}", safe_peer(peer))),
        text.as_bytes(),
        0o600,
    )
}

/// How a round treats the other server's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Following the writer: its state wins (messages written here while this
    /// server wrote are kept and handed back).
    Follow,
    /// Taking over from the previous writer: take what it has that we lack, keep
    /// our own later changes (flags changed here since the base, messages
    /// expunged here since the base).
    CatchUp,
}

/// The base names of `remote` this server should fetch.
pub fn wanted(
    fdir: &Path,
    peer: &str,
    remote: &FolderState,
    mode: Mode,
) -> std::io::Result<Vec<MsgState>> {
    let local: BTreeSet<String> = if fdir.join("cur").is_dir() {
        Folder::sync(fdir)?
            .msgs
            .into_iter()
            .map(|m| m.base)
            .collect()
    } else {
        BTreeSet::new()
    };
    let base = read_base(fdir, peer);
    Ok(remote
        .msgs
        .iter()
        .filter(|m| !local.contains(&m.base))
        .filter(|m| mode == Mode::Follow || !base.contains_key(&m.base))
        .cloned()
        .collect())
}

/// A message kept here that the other server lacks (to hand back).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalOnly {
    /// Base name.
    pub base: String,
    /// Flag letters.
    pub letters: String,
    /// Its file.
    pub path: PathBuf,
}

/// What [`merge`] decided for a folder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Merged {
    /// (UID, base name, flag letters), ascending UID.
    pub list: Vec<(u32, String, String)>,
    /// The new UIDNEXT.
    pub uidnext: u32,
    /// Base names to remove here.
    pub remove: Vec<String>,
    /// Base names only here (kept, handed back).
    pub only: Vec<String>,
}

/// The new message list of a folder (pure): the remote's UIDs for messages both
/// have, local-only messages keep their UID unless it collides (then the next
/// free one), expunges and flag changes per [`Mode`]. Returns the list, the new
/// UIDNEXT, the bases to remove here and the local-only ones.
pub fn merge(
    local: &Folder,
    remote: &FolderState,
    base: &BTreeMap<String, String>,
    staged: &BTreeSet<String>,
    mode: Mode,
) -> Merged {
    let mine: HashMap<&str, &Msg> = local.msgs.iter().map(|m| (m.base.as_str(), m)).collect();
    let theirs: BTreeSet<&str> = remote.msgs.iter().map(|m| m.base.as_str()).collect();
    let gone: BTreeSet<&str> = remote.gone.iter().map(String::as_str).collect();
    let mut out = Vec::new();
    let mut used = BTreeSet::new();
    for r in &remote.msgs {
        used.insert(r.uid);
        let letters = match mine.get(r.base.as_str()) {
            Some(m) => {
                let changed_here = base.get(&r.base).is_some_and(|b| b != m.letters());
                let unchanged_there = base.get(&r.base) == Some(&r.letters);
                if mode == Mode::CatchUp && changed_here && unchanged_there {
                    m.letters().to_string()
                } else {
                    r.letters.clone()
                }
            }
            None if staged.contains(&r.base) => r.letters.clone(),
            None => continue,
        };
        out.push((r.uid, r.base.clone(), letters));
    }
    let mut remove = Vec::new();
    let mut only = Vec::new();
    let mut next = remote
        .uidnext
        .max(local.uidnext)
        .max(used.last().map_or(1, |u| u + 1));
    for m in &local.msgs {
        if theirs.contains(m.base.as_str()) {
            continue;
        }
        if base.contains_key(&m.base) || gone.contains(m.base.as_str()) {
            remove.push(m.base.clone());
            continue;
        }
        let uid = if used.contains(&m.uid) {
            let u = next;
            next += 1;
            u
        } else {
            m.uid
        };
        used.insert(uid);
        next = next.max(uid + 1);
        out.push((uid, m.base.clone(), m.letters().to_string()));
        only.push(m.base.clone());
    }
    out.sort_by_key(|(u, _, _)| *u);
    Merged {
        list: out,
        uidnext: next,
        remove,
        only,
    }
}

/// Apply one folder of the other server's state (see [`merge`]) under the
/// folder's locks: staged files moved in, flags renamed, expunged files removed,
/// the UID list and the base written, all fsynced; IDLE sessions woken.
pub fn apply_folder(
    shared: &Shared,
    root: &Path,
    remote: &FolderState,
    peer: &str,
    staged: &BTreeMap<String, PathBuf>,
    mode: Mode,
) -> std::io::Result<Vec<LocalOnly>> {
    let fdir = folder_path(root, &remote.dir);
    if !fdir.join("cur").is_dir() {
        uidlist::create_folder(&fdir, !remote.dir.is_empty())?;
    }
    let slot = shared.imap.slot(&fdir);
    let only = {
        let _g = slot.lock.lock().unwrap_or_else(|p| p.into_inner());
        let local = Folder::sync(&fdir)?;
        let base = read_base(&fdir, peer);
        let staged_names: BTreeSet<String> = staged.keys().cloned().collect();
        let Merged {
            list,
            uidnext,
            remove,
            only,
        } = merge(&local, remote, &base, &staged_names, mode);
        let cur = fdir.join("cur");
        let validity = if mode == Mode::Follow || local.msgs.is_empty() {
            remote.uidvalidity
        } else {
            local.uidvalidity
        };
        if remove.is_empty()
            && staged.is_empty()
            && local.uidvalidity == validity
            && local.uidnext == uidnext
            && local.msgs.len() == list.len()
            && local
                .msgs
                .iter()
                .zip(&list)
                .all(|(m, (u, b, l))| m.uid == *u && m.base == *b && m.letters() == l)
            && agreed_base(remote, &list) == base
        {
            // nothing to change here (a full sweep of a folder in step): no writes
            return Ok(local_only(&local, &only));
        }
        let mine: HashMap<&str, &Msg> = local.msgs.iter().map(|m| (m.base.as_str(), m)).collect();
        let mut msgs = Vec::with_capacity(list.len());
        for (uid, b, letters) in &list {
            let file = format!("{b}:2,{letters}");
            match mine.get(b.as_str()) {
                Some(m) if m.file != file => fs::rename(cur.join(&m.file), cur.join(&file))?,
                Some(_) => {}
                None => match staged.get(b) {
                    Some(tmp) => fs::rename(tmp, cur.join(&file))?,
                    None => continue,
                },
            }
            msgs.push(Msg {
                uid: *uid,
                base: b.clone(),
                file,
            });
        }
        for b in &remove {
            if let Some(m) = mine.get(b.as_str()) {
                fs::remove_file(cur.join(&m.file))?;
            }
        }
        durable::sync_dir(&cur)?;
        let folder = Folder {
            dir: fdir.clone(),
            uidvalidity: validity,
            uidnext,
            msgs,
        };
        uidlist::write_list(&folder)?;
        let held: Vec<(u32, String, String)> = folder
            .msgs
            .iter()
            .map(|m| (m.uid, m.base.clone(), m.letters().to_string()))
            .collect();
        write_base(&fdir, peer, &agreed_base(remote, &held))?;
        local_only(&folder, &only)
    };
    shared.imap.changed(&fdir);
    Ok(only)
}

/// The base after a round: the remote's messages the folder holds (`list`),
/// with the remote's flags.
fn agreed_base(remote: &FolderState, list: &[(u32, String, String)]) -> BTreeMap<String, String> {
    let held: BTreeSet<&str> = list.iter().map(|(_, b, _)| b.as_str()).collect();
    remote
        .msgs
        .iter()
        .filter(|m| held.contains(m.base.as_str()))
        .map(|m| (m.base.clone(), m.letters.clone()))
        .collect()
}

/// The messages of `folder` named in `only` (kept here, to hand back).
fn local_only(folder: &Folder, only: &[String]) -> Vec<LocalOnly> {
    let only: BTreeSet<&str> = only.iter().map(String::as_str).collect();
    folder
        .msgs
        .iter()
        .filter(|m| only.contains(m.base.as_str()))
        .map(|m| LocalOnly {
            base: m.base.clone(),
            letters: m.letters().to_string(),
            path: folder.path(m),
        })
        .collect()
}

/// Apply the other server's keyword table and subscriptions, and remove folders
/// it deleted (in the folder base, gone there, nothing of ours only in them).
pub fn apply_mailbox(
    shared: &Shared,
    root: &Path,
    m: &super::wire::Manifest,
    peer: &str,
    keep: &BTreeSet<String>,
) -> std::io::Result<()> {
    let table = uidlist::keywords(root);
    if table != m.keywords && table.len() <= m.keywords.len() && m.keywords.starts_with(&table) {
        let text: String = m.keywords.iter().map(|k| format!("{k}\n")).collect();
        durable::write_atomic(&root.join(uidlist::KEYWORDS), text.as_bytes(), 0o600)?;
    } else if table != m.keywords && table.is_empty() {
        let text: String = m.keywords.iter().map(|k| format!("{k}\n")).collect();
        durable::write_atomic(&root.join(uidlist::KEYWORDS), text.as_bytes(), 0o600)?;
    }
    let subs = fs::read_to_string(root.join("subscriptions")).unwrap_or_default();
    if subs != m.subscriptions && !m.subscriptions.is_empty() {
        durable::write_atomic(
            &root.join("subscriptions"),
            m.subscriptions.as_bytes(),
            0o600,
        )?;
    }
    let theirs: BTreeSet<String> = m.folders.iter().map(|f| f.dir.clone()).collect();
    let known = read_folder_base(root, peer);
    for dir in folder_dirs(root) {
        if dir.is_empty() || theirs.contains(&dir) || !known.contains(&dir) || keep.contains(&dir) {
            continue;
        }
        let fdir = root.join(&dir);
        let slot = shared.imap.slot(&fdir);
        {
            let _g = slot.lock.lock().unwrap_or_else(|p| p.into_inner());
            fs::remove_dir_all(&fdir)?;
            durable::sync_dir(root)?;
        }
        shared.imap.changed(&fdir);
        slot.notify.notify_waiters();
    }
    let mut agreed = theirs;
    agreed.retain(|d| root.join(d).join("cur").is_dir() || d.is_empty());
    if agreed == known {
        return Ok(()); // unchanged: no write
    }
    write_folder_base(root, peer, &agreed)
}

/// A local folder the other server renamed: a folder here, absent there, with
/// the UIDVALIDITY of a folder there that is absent here. Renamed in place, so
/// its messages need not travel again.
pub fn follow_renames(
    shared: &Shared,
    root: &Path,
    m: &super::wire::Manifest,
) -> std::io::Result<()> {
    let mine = folder_dirs(root);
    let theirs: BTreeSet<&str> = m.folders.iter().map(|f| f.dir.as_str()).collect();
    for f in &m.folders {
        if f.dir.is_empty() || mine.contains(&f.dir) {
            continue;
        }
        for d in &mine {
            if d.is_empty() || theirs.contains(d.as_str()) {
                continue;
            }
            let listed =
                fs::read_to_string(root.join(d).join(uidlist::UIDLIST)).unwrap_or_default();
            let validity = listed
                .split_whitespace()
                .nth(1)
                .and_then(|v| v.parse::<u32>().ok());
            if validity == Some(f.uidvalidity) {
                let from = root.join(d);
                let slot = shared.imap.slot(&from);
                {
                    let _g = slot.lock.lock().unwrap_or_else(|p| p.into_inner());
                    fs::rename(&from, root.join(&f.dir))?;
                    durable::sync_dir(root)?;
                }
                shared.imap.changed(&from);
                slot.notify.notify_waiters();
                return follow_renames(shared, root, m);
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(uid: u32, base: &str, letters: &str) -> Msg {
        Msg {
            uid,
            base: base.into(),
            file: format!("{base}:2,{letters}"),
        }
    }

    fn st(uid: u32, base: &str, letters: &str) -> MsgState {
        MsgState {
            uid,
            base: base.into(),
            letters: letters.into(),
            mtime: 0,
        }
    }

    #[test]
    fn merge_follows_the_writer_and_renumbers_only_conflicts() {
        let local = Folder {
            dir: PathBuf::from("/x"),
            uidvalidity: 7,
            uidnext: 4,
            msgs: vec![msg(1, "a", ""), msg(2, "b", "S"), msg(3, "mine", "")],
        };
        let remote = FolderState {
            dir: String::new(),
            uidvalidity: 7,
            uidnext: 5,
            msgs: vec![st(1, "a", "F"), st(3, "c", ""), st(4, "d", "")],
            gone: Vec::new(),
        };
        // b was agreed before (expunged there); mine was written here; d staged
        let base: BTreeMap<String, String> =
            [("a".into(), "".into()), ("b".into(), "S".into())].into();
        let staged: BTreeSet<String> = ["c".to_string()].into();
        let Merged {
            list,
            uidnext: next,
            remove,
            only,
        } = merge(&local, &remote, &base, &staged, Mode::Follow);
        assert_eq!(
            list,
            vec![
                (1, "a".into(), "F".into()),
                (3, "c".into(), "".into()),
                (5, "mine".into(), "".into())
            ]
        );
        assert_eq!(next, 6);
        assert_eq!(remove, vec!["b".to_string()]);
        assert_eq!(only, vec!["mine".to_string()]);
        // catching up keeps a flag changed here since the base
        let local2 = Folder {
            msgs: vec![msg(1, "a", "S")],
            ..local.clone()
        };
        let remote2 = FolderState {
            msgs: vec![st(1, "a", "")],
            ..remote.clone()
        };
        let list = merge(&local2, &remote2, &base, &BTreeSet::new(), Mode::CatchUp).list;
        assert_eq!(list, vec![(1, "a".into(), "S".into())]);
        let list = merge(&local2, &remote2, &base, &BTreeSet::new(), Mode::Follow).list;
        assert_eq!(list, vec![(1, "a".into(), "".into())]);
    }

    /// A server back after an outage has no base with the server that wrote
    /// meanwhile: a message both had before (in the writer's base with it) that
    /// the writer expunged since is removed here, not handed back as written here.
    #[test]
    fn a_message_expunged_by_the_writer_during_an_outage_is_not_resurrected() {
        let local = Folder {
            dir: PathBuf::from("/x"),
            uidvalidity: 7,
            uidnext: 4,
            msgs: vec![
                msg(1, "a", ""),
                msg(3, "deleted-there", ""),
                msg(4, "mine", ""),
            ],
        };
        let remote = FolderState {
            dir: String::new(),
            uidvalidity: 7,
            uidnext: 6,
            msgs: vec![st(1, "a", ""), st(5, "new-there", "")],
            gone: vec!["deleted-there".into()],
        };
        let staged: BTreeSet<String> = ["new-there".to_string()].into();
        let m = merge(&local, &remote, &BTreeMap::new(), &staged, Mode::Follow);
        assert_eq!(m.remove, vec!["deleted-there".to_string()]);
        assert_eq!(m.only, vec!["mine".to_string()]);
        assert_eq!(
            m.list,
            vec![
                (1, "a".into(), "".into()),
                (4, "mine".into(), "".into()),
                (5, "new-there".into(), "".into())
            ]
        );
    }

    #[test]
    fn wire_names_are_checked() {
        for bad in ["..", "a/b", "x", "./", ".a/.."] {
            assert!(check_dir(bad).is_err(), "{bad}");
        }
        assert!(check_dir("").is_ok() && check_dir(".Sent").is_ok());
        for bad in ["", ".hidden", "a/b", "a:2,S"] {
            assert!(check_base(bad).is_err(), "{bad}");
        }
        assert!(check_letters("SFa").is_ok() && check_letters("S/").is_err());
    }
}
