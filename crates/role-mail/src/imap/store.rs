//! STORE, COPY, MOVE (RFC 6851), EXPUNGE, UID EXPUNGE and CLOSE's silent expunge,
//! with UIDPLUS (RFC 4315) `COPYUID`.
//!
//! Flags live in the Maildir file name (`:2,` letters, keywords as `a`..`z` through
//! the keyword table); a change is a rename under the folder's lock, after which
//! the folder's notifier wakes the other sessions (IDLE).

use std::collections::BTreeSet;
use std::num::NonZeroU32;

use imap_codec::imap_types::core::{Tag, Vec1};
use imap_codec::imap_types::extensions::uidplus::{UidElement, UidSet};
use imap_codec::imap_types::flag::{Flag, StoreResponse, StoreType};
use imap_codec::imap_types::mailbox::Mailbox;
use imap_codec::imap_types::response::{Code, Data};
use imap_codec::imap_types::sequence::SequenceSet;

use super::{fetch, uidlist, Session};

/// A changed message: sequence number, UID, new flags.
type Changed = (usize, u32, BTreeSet<String>);

/// Apply `change` to the flags of messages `seqs`; returns (seq, uid, new flags).
fn change_flags(
    s: &mut Session,
    seqs: &[usize],
    change: &dyn Fn(&BTreeSet<String>) -> BTreeSet<String>,
) -> Result<Vec<Changed>, &'static str> {
    let Some(root) = s.user.as_ref().map(|u| u.root.clone()) else {
        return Err("not logged in");
    };
    let Some(dir) = s.selected.as_ref().map(|sel| sel.folder.dir.clone()) else {
        return Err("no mailbox");
    };
    let slot = s.shared.imap.slot(&dir);
    let mut done = Vec::new();
    {
        let _g = slot
            .lock
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let folder = uidlist::Folder::sync(&dir).map_err(|_| "cannot open mailbox")?;
        let table = uidlist::keywords(&root);
        let Some(sel) = s.selected.as_mut() else {
            return Err("no mailbox");
        };
        for &seq in seqs {
            let Some(seen) = sel.view.get_mut(seq - 1) else {
                continue;
            };
            let Some(m) = folder.get(seen.uid) else {
                continue;
            };
            let old = uidlist::names_of(m.letters(), &table);
            let new = change(&old);
            let letters = match uidlist::letters_for(&root, &new) {
                Ok(Some(l)) => l,
                Ok(None) => return Err("too many keywords in this mailbox"),
                Err(_) => return Err("cannot store flags"),
            };
            if uidlist::set_letters(&folder, m, &letters).is_err() {
                continue;
            }
            seen.flags = new.clone();
            done.push((seq, seen.uid, new));
        }
        let _ = durable::sync_dir(&dir.join("cur"));
    }
    slot.notify.notify_waiters();
    Ok(done)
}

/// Set `flag` on `seqs` without answering (FETCH of a body sets `\Seen`).
pub(crate) fn add_flags_quietly(s: &mut Session, seqs: &[usize], flag: &str) {
    let flag = flag.to_string();
    let _ = change_flags(s, seqs, &|old| {
        let mut n = old.clone();
        n.insert(flag.clone());
        n
    });
    if let Some(u) = &s.user {
        s.shared.touched(&u.root);
    }
}

/// STORE / UID STORE.
pub(crate) fn store(
    s: &mut Session,
    tag: &Tag<'_>,
    set: &SequenceSet,
    kind: &StoreType,
    response: &StoreResponse,
    flags: &[Flag<'_>],
    uid: bool,
) {
    if s.selected.as_ref().is_some_and(|sel| sel.read_only) {
        s.no(tag, Some(Code::ReadOnly), "mailbox is read-only");
        return;
    }
    let names: BTreeSet<String> = flags.iter().filter_map(super::flag_name).collect();
    let seqs = fetch::resolve(s, set, uid);
    let kind = *kind;
    let result = change_flags(s, &seqs, &|old| match kind {
        StoreType::Replace => names.clone(),
        StoreType::Add => old.union(&names).cloned().collect(),
        StoreType::Remove => old.difference(&names).cloned().collect(),
    });
    match result {
        Ok(done) => {
            if *response == StoreResponse::Answer {
                for (seq, u, f) in done {
                    let items = super::flag_items(&f, uid.then_some(u));
                    if let (Some(seq), Some(items)) = (NonZeroU32::new(seq as u32), items) {
                        s.data(Data::Fetch { seq, items });
                    }
                }
            }
            s.refresh(uid);
            s.ok(tag, None, "STORE done");
        }
        Err(e) => s.no(tag, Some(super::code("LIMIT")), e),
    }
}

fn uid_set(uids: &[u32]) -> Option<UidSet> {
    let v: Vec<UidElement> = uids
        .iter()
        .filter_map(|u| NonZeroU32::new(*u).map(UidElement::Single))
        .collect();
    Vec1::try_from(v).ok().map(UidSet)
}

/// COPY / MOVE and their UID forms.
pub(crate) fn copy(
    s: &mut Session,
    tag: &Tag<'_>,
    set: &SequenceSet,
    mailbox: &Mailbox<'_>,
    uid: bool,
    mv: bool,
) {
    let Some(name) = s.mailbox_name(tag, mailbox) else {
        return;
    };
    let Some(target) = s.folder_dir(&name) else {
        s.no(tag, Some(super::code("CANNOT")), "mailbox name not allowed");
        return;
    };
    if !target.join("cur").is_dir() {
        s.no(tag, Some(Code::TryCreate), "no such mailbox");
        return;
    }
    if mv && s.selected.as_ref().is_some_and(|sel| sel.read_only) {
        s.no(tag, Some(Code::ReadOnly), "mailbox is read-only");
        return;
    }
    let seqs = fetch::resolve(s, set, uid);
    let Some(sel) = s.selected.as_ref() else {
        return;
    };
    let source = sel.folder.clone();
    let host = s.shared.hostname.clone();
    let mut pairs: Vec<(u32, String, std::path::PathBuf)> = Vec::new();
    let mut failed = false;
    for seq in &seqs {
        let Some(seen) = sel.view.get(seq - 1) else {
            continue;
        };
        let Some(m) = source.get(seen.uid) else {
            continue;
        };
        let fields: String = m.base.split(',').skip(1).map(|f| format!(",{f}")).collect();
        let base = format!("{}{fields}", crate::maildir::unique_name(&host));
        let dest = target.join("cur").join(format!("{base}:2,{}", m.letters()));
        let from = source.path(m);
        if std::fs::hard_link(&from, &dest).is_err() && std::fs::copy(&from, &dest).is_err() {
            failed = true;
            break;
        }
        pairs.push((m.uid, base, from));
    }
    if failed {
        for (_, base, _) in &pairs {
            let _ = std::fs::remove_file(target.join("cur").join(base));
        }
        s.no(tag, Some(super::code("SERVERBUG")), "copy failed");
        return;
    }
    let _ = durable::sync_dir(&target.join("cur"));
    let dest = match s.shared.imap.sync(&target) {
        Ok(f) => f,
        Err(_) => {
            s.no(tag, Some(super::code("SERVERBUG")), "copy failed");
            return;
        }
    };
    s.shared.imap.changed(&target);
    let mut src_uids = Vec::new();
    let mut dst_uids = Vec::new();
    for (u, base, _) in &pairs {
        if let Some(m) = dest.msgs.iter().find(|m| &m.base == base) {
            src_uids.push(*u);
            dst_uids.push(m.uid);
        }
    }
    let code = match (
        NonZeroU32::new(dest.uidvalidity),
        uid_set(&src_uids),
        uid_set(&dst_uids),
    ) {
        (Some(v), Some(a), Some(b)) => Some(Code::CopyUid {
            uid_validity: v,
            source: a,
            destination: b,
        }),
        _ => None,
    };
    if !mv {
        s.ok(tag, code, "COPY done");
        return;
    }
    s.untagged_ok(code, "moved");
    {
        let slot = s.shared.imap.slot(&source.dir);
        let _g = slot
            .lock
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let paths: Vec<&std::path::Path> = pairs.iter().map(|(_, _, p)| p.as_path()).collect();
        crate::maildir::remove(&paths);
    }
    s.shared.imap.changed(&source.dir);
    s.refresh(true);
    s.ok(tag, None, "MOVE done");
}

/// Remove the `\Deleted` messages of the selected folder (only those in `uids`
/// when given); answers nothing.
pub(crate) fn remove_deleted(s: &mut Session, uids: Option<&BTreeSet<u32>>) {
    let Some(dir) = s.selected.as_ref().map(|sel| sel.folder.dir.clone()) else {
        return;
    };
    let slot = s.shared.imap.slot(&dir);
    {
        let _g = slot
            .lock
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let Ok(folder) = uidlist::Folder::sync(&dir) else {
            return;
        };
        let doomed: Vec<std::path::PathBuf> = folder
            .msgs
            .iter()
            .filter(|m| m.letters().contains('T'))
            .filter(|m| uids.is_none_or(|u| u.contains(&m.uid)))
            .map(|m| folder.path(m))
            .collect();
        let refs: Vec<&std::path::Path> = doomed.iter().map(|p| p.as_path()).collect();
        crate::maildir::remove(&refs);
    }
    slot.notify.notify_waiters();
}

/// EXPUNGE and UID EXPUNGE.
pub(crate) fn expunge(s: &mut Session, tag: &Tag<'_>, set: Option<&SequenceSet>) {
    if s.selected.as_ref().is_some_and(|sel| sel.read_only) {
        s.no(tag, Some(Code::ReadOnly), "mailbox is read-only");
        return;
    }
    let uids = set.map(|set| {
        let seqs = fetch::resolve(s, set, true);
        let sel = s.selected.as_ref();
        seqs.iter()
            .filter_map(|q| sel.and_then(|x| x.view.get(q - 1)).map(|m| m.uid))
            .collect::<BTreeSet<u32>>()
    });
    remove_deleted(s, uids.as_ref());
    s.refresh(true);
    s.ok(tag, None, "EXPUNGE done");
}
