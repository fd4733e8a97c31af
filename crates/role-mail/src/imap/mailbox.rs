//! Mailbox commands: SELECT / EXAMINE, CREATE, DELETE, RENAME, SUBSCRIBE /
//! UNSUBSCRIBE, LIST / LSUB (with RFC 6154 special-use attributes), STATUS,
//! NAMESPACE, ENABLE and QUOTA (RFC 9208, the account's quota as `STORAGE`).
//!
//! Folders are Maildir++ directories `.Name` beneath the user's `Maildir`;
//! subscriptions are the `subscriptions` file at its root (one name per line, as
//! Dovecot and Courier keep them).

use std::collections::BTreeSet;
use std::num::NonZeroU32;
use std::path::Path;

use imap_codec::imap_types::core::{AString, IString, QuotedChar, Tag, Vec1};
use imap_codec::imap_types::extensions::enable::CapabilityEnable;
use imap_codec::imap_types::extensions::namespace::Namespace;
use imap_codec::imap_types::extensions::quota::{QuotaGet, Resource};
use imap_codec::imap_types::extensions::utf8::Utf8Kind;
use imap_codec::imap_types::flag::{Flag, FlagNameAttribute, FlagPerm};
use imap_codec::imap_types::mailbox::Mailbox;
use imap_codec::imap_types::response::{Code, Data};
use imap_codec::imap_types::status::{StatusDataItem, StatusDataItemName};

use super::{names, uidlist, Seen, Selected, Session};

const SUBSCRIPTIONS: &str = "subscriptions";

/// The subscribed names of the Maildir at `root`.
pub(crate) fn read_subscriptions(root: &Path) -> BTreeSet<String> {
    std::fs::read_to_string(root.join(SUBSCRIPTIONS))
        .map(|t| {
            t.lines()
                .filter(|l| !l.is_empty())
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default()
}

/// Store the subscriptions durably.
pub(crate) fn write_subscriptions(root: &Path, subs: &BTreeSet<String>) -> std::io::Result<()> {
    let text: String = subs.iter().map(|s| format!("{s}\n")).collect();
    durable::write_atomic(&root.join(SUBSCRIPTIONS), text.as_bytes(), 0o600)
}

/// Every mailbox name of the user (INBOX first).
pub(crate) fn all_names(root: &Path) -> Vec<String> {
    let mut out = vec!["INBOX".to_string()];
    let mut rest: Vec<String> = std::fs::read_dir(root)
        .map(|d| {
            d.filter_map(Result::ok)
                .filter(|e| e.file_type().map(|t| t.is_dir()).unwrap_or(false))
                .filter_map(|e| names::from_dir_entry(&e.file_name().to_string_lossy()))
                .collect()
        })
        .unwrap_or_default();
    rest.sort();
    out.extend(rest);
    out
}

fn special_use(name: &str) -> Option<&'static str> {
    names::SPECIAL
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, a)| &a[1..])
}

/// A checked folder directory for a name (`None`: a NO was sent).
fn dir_of(
    s: &mut Session,
    tag: &Tag<'_>,
    mailbox: &Mailbox<'_>,
) -> Option<(String, std::path::PathBuf)> {
    let name = s.mailbox_name(tag, mailbox)?;
    match s.folder_dir(&name) {
        Some(d) => Some((name, d)),
        None => {
            s.no(tag, Some(super::code("CANNOT")), "mailbox name not allowed");
            None
        }
    }
}

/// SELECT and EXAMINE.
pub(crate) fn select(s: &mut Session, tag: &Tag<'_>, mailbox: &Mailbox<'_>, read_only: bool) {
    s.selected = None;
    let Some((_, dir)) = dir_of(s, tag, mailbox) else {
        return;
    };
    if !dir.join("cur").is_dir() {
        s.no(tag, Some(super::code("NONEXISTENT")), "no such mailbox");
        return;
    }
    let (folder, version) = match s.shared.imap.sync_since(&dir, 0) {
        Ok(Some(f)) => f,
        Ok(None) | Err(_) => {
            s.no(tag, Some(super::code("SERVERBUG")), "cannot open mailbox");
            return;
        }
    };
    let table = s.keyword_table();
    let view: Vec<Seen> = folder
        .msgs
        .iter()
        .map(|m| Seen {
            uid: m.uid,
            flags: uidlist::names_of(m.letters(), &table),
        })
        .collect();
    let mut flags: Vec<Flag<'static>> = vec![
        Flag::Answered,
        Flag::Flagged,
        Flag::Deleted,
        Flag::Seen,
        Flag::Draft,
    ];
    flags.extend(table.iter().filter_map(|k| super::to_flag(k)));
    s.data(Data::Flags(flags.clone()));
    s.data(Data::Exists(view.len() as u32));
    s.data(Data::Recent(0));
    let mut perm: Vec<FlagPerm<'static>> = flags.into_iter().map(FlagPerm::Flag).collect();
    if !read_only {
        perm.push(FlagPerm::Asterisk);
    } else {
        perm.clear();
    }
    s.untagged_ok(Some(Code::PermanentFlags(perm)), "flags");
    if let Some(first) = view.iter().position(|m| !m.flags.contains("\\Seen")) {
        if let Some(n) = NonZeroU32::new(first as u32 + 1) {
            s.untagged_ok(Some(Code::Unseen(n)), "first unseen");
        }
    }
    if let Some(v) = NonZeroU32::new(folder.uidvalidity) {
        s.untagged_ok(Some(Code::UidValidity(v)), "UIDs valid");
    }
    if let Some(n) = NonZeroU32::new(folder.uidnext) {
        s.untagged_ok(Some(Code::UidNext(n)), "predicted next UID");
    }
    s.selected = Some(Selected {
        read_only,
        view,
        folder,
        version,
    });
    let code = if read_only {
        Code::ReadOnly
    } else {
        Code::ReadWrite
    };
    s.ok(
        tag,
        Some(code),
        if read_only {
            "EXAMINE done"
        } else {
            "SELECT done"
        },
    );
}

/// CREATE.
pub(crate) fn create(s: &mut Session, tag: &Tag<'_>, mailbox: &Mailbox<'_>) {
    let Some((name, dir)) = dir_of(s, tag, mailbox) else {
        return;
    };
    if names::is_inbox(&name) || dir.exists() {
        s.no(tag, Some(super::code("ALREADYEXISTS")), "mailbox exists");
        return;
    }
    match uidlist::create_folder(&dir, true) {
        Ok(()) => s.ok(tag, None, "created"),
        Err(_) => s.no(tag, Some(super::code("SERVERBUG")), "cannot create"),
    }
}

/// DELETE (INBOX cannot be deleted).
pub(crate) fn delete(s: &mut Session, tag: &Tag<'_>, mailbox: &Mailbox<'_>) {
    let Some((name, dir)) = dir_of(s, tag, mailbox) else {
        return;
    };
    if names::is_inbox(&name) {
        s.no(tag, Some(super::code("CANNOT")), "INBOX cannot be deleted");
        return;
    }
    if !dir.is_dir() {
        s.no(tag, Some(super::code("NONEXISTENT")), "no such mailbox");
        return;
    }
    if s.selected.as_ref().is_some_and(|sel| sel.folder.dir == dir) {
        s.selected = None;
    }
    let slot = s.shared.imap.slot(&dir);
    let r = {
        let _g = slot
            .lock
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        std::fs::remove_dir_all(&dir)
    };
    slot.notify.notify_waiters();
    match r {
        Ok(()) => s.ok(tag, None, "deleted"),
        Err(_) => s.no(tag, Some(super::code("SERVERBUG")), "cannot delete"),
    }
}

/// RENAME (of INBOX: moves its messages into the new folder, RFC 3501).
pub(crate) fn rename(s: &mut Session, tag: &Tag<'_>, from: &Mailbox<'_>, to: &Mailbox<'_>) {
    let Some((from_name, from_dir)) = dir_of(s, tag, from) else {
        return;
    };
    let Some((to_name, to_dir)) = dir_of(s, tag, to) else {
        return;
    };
    if names::is_inbox(&to_name) || to_dir.exists() {
        s.no(tag, Some(super::code("ALREADYEXISTS")), "target exists");
        return;
    }
    if !from_dir.join("cur").is_dir() {
        s.no(tag, Some(super::code("NONEXISTENT")), "no such mailbox");
        return;
    }
    let r = if names::is_inbox(&from_name) {
        (|| {
            uidlist::create_folder(&to_dir, true)?;
            let f = s.shared.imap.sync(&from_dir)?;
            for m in &f.msgs {
                std::fs::rename(f.path(m), to_dir.join("cur").join(&m.file))?;
            }
            durable::sync_dir(&to_dir.join("cur"))?;
            durable::sync_dir(&from_dir.join("cur"))
        })()
    } else {
        // children move with their parent (`.A` and `.A.B`)
        let prefix = format!("{from_name}{}", names::SEP);
        let root = s.user.as_ref().map(|u| u.root.clone()).unwrap_or_default();
        let children: Vec<String> = all_names(&root)
            .into_iter()
            .filter(|n| n.starts_with(&prefix))
            .collect();
        (|| {
            std::fs::rename(&from_dir, &to_dir)?;
            for c in children {
                let new = format!("{to_name}{}", &c[from_name.len()..]);
                if let (Ok(a), Ok(b)) =
                    (names::folder_dir(&root, &c), names::folder_dir(&root, &new))
                {
                    std::fs::rename(a, b)?;
                }
            }
            durable::sync_dir(&root)
        })()
    };
    if s.selected
        .as_ref()
        .is_some_and(|sel| sel.folder.dir == from_dir)
        && !names::is_inbox(&from_name)
    {
        s.selected = None;
    }
    match r {
        Ok(()) => s.ok(tag, None, "renamed"),
        Err(_) => s.no(tag, Some(super::code("SERVERBUG")), "cannot rename"),
    }
}

/// SUBSCRIBE / UNSUBSCRIBE.
pub(crate) fn subscribe(s: &mut Session, tag: &Tag<'_>, mailbox: &Mailbox<'_>, on: bool) {
    let Some((name, _)) = dir_of(s, tag, mailbox) else {
        return;
    };
    let Some(root) = s.user.as_ref().map(|u| u.root.clone()) else {
        return;
    };
    let mut subs = read_subscriptions(&root);
    let name = if names::is_inbox(&name) {
        "INBOX".into()
    } else {
        name
    };
    let changed = if on {
        subs.insert(name)
    } else {
        subs.remove(&name)
    };
    if changed && write_subscriptions(&root, &subs).is_err() {
        s.no(tag, Some(super::code("SERVERBUG")), "cannot save");
        return;
    }
    s.ok(tag, None, if on { "subscribed" } else { "unsubscribed" });
}

/// LIST and LSUB.
pub(crate) fn list(
    s: &mut Session,
    tag: &Tag<'_>,
    reference: &Mailbox<'_>,
    pattern: &[u8],
    lsub: bool,
) {
    let Some(root) = s.user.as_ref().map(|u| u.root.clone()) else {
        return;
    };
    let reference = match reference {
        Mailbox::Inbox => "INBOX".to_string(),
        Mailbox::Other(o) => String::from_utf8_lossy(o.as_ref()).into_owned(),
    };
    let pattern = String::from_utf8_lossy(pattern).into_owned();
    let decode = |t: &str| {
        if s.utf8 {
            Some(t.to_string())
        } else {
            names::decode(t).ok()
        }
    };
    let (Some(reference), Some(pattern)) = (decode(&reference), decode(&pattern)) else {
        s.no(tag, None, "bad mailbox name encoding");
        return;
    };
    let delim = QuotedChar::try_from(names::SEP).ok();
    if pattern.is_empty() {
        s.data(Data::List {
            items: vec![FlagNameAttribute::Noselect],
            delimiter: delim,
            mailbox: Mailbox::try_from("").unwrap_or(Mailbox::Inbox),
        });
        s.ok(tag, None, "LIST done");
        return;
    }
    let full = format!("{reference}{pattern}");
    let subs = read_subscriptions(&root);
    for name in all_names(&root) {
        if !names::matches(&full, &name) || (lsub && !subs.contains(&name)) {
            continue;
        }
        let mut items = Vec::new();
        if let Some(a) = special_use(&name) {
            if let Ok(atom) = imap_codec::imap_types::core::Atom::try_from(a) {
                items.push(FlagNameAttribute::from(atom));
            }
        }
        let Some(mailbox) = s.wire_name(&name) else {
            continue;
        };
        let d = if lsub {
            Data::Lsub {
                items,
                delimiter: delim,
                mailbox,
            }
        } else {
            Data::List {
                items,
                delimiter: delim,
                mailbox,
            }
        };
        s.data(d);
    }
    s.ok(tag, None, if lsub { "LSUB done" } else { "LIST done" });
}

/// STATUS.
pub(crate) fn status(
    s: &mut Session,
    tag: &Tag<'_>,
    mailbox: &Mailbox<'_>,
    items: &[StatusDataItemName],
) {
    let Some((name, dir)) = dir_of(s, tag, mailbox) else {
        return;
    };
    if !dir.join("cur").is_dir() {
        s.no(tag, Some(super::code("NONEXISTENT")), "no such mailbox");
        return;
    }
    let Ok(folder) = s.shared.imap.sync(&dir) else {
        s.no(tag, Some(super::code("SERVERBUG")), "cannot open mailbox");
        return;
    };
    let out: Vec<StatusDataItem> = items
        .iter()
        .filter_map(|i| {
            Some(match i {
                StatusDataItemName::Messages => StatusDataItem::Messages(folder.msgs.len() as u32),
                StatusDataItemName::Recent => StatusDataItem::Recent(0),
                StatusDataItemName::UidNext => {
                    StatusDataItem::UidNext(NonZeroU32::new(folder.uidnext)?)
                }
                StatusDataItemName::UidValidity => {
                    StatusDataItem::UidValidity(NonZeroU32::new(folder.uidvalidity)?)
                }
                StatusDataItemName::Unseen => StatusDataItem::Unseen(
                    folder
                        .msgs
                        .iter()
                        .filter(|m| !m.letters().contains('S'))
                        .count() as u32,
                ),
                StatusDataItemName::Deleted => StatusDataItem::Deleted(
                    folder
                        .msgs
                        .iter()
                        .filter(|m| m.letters().contains('T'))
                        .count() as u32,
                ),
                _ => return None,
            })
        })
        .collect();
    let Some(mailbox) = s.wire_name(&name) else {
        s.no(tag, None, "bad name");
        return;
    };
    s.data(Data::Status {
        mailbox,
        items: out.into(),
    });
    s.ok(tag, None, "STATUS done");
}

/// NAMESPACE: one personal namespace, prefix "" and separator ".".
pub(crate) fn namespace(s: &mut Session, tag: &Tag<'_>) {
    let personal = IString::try_from("").map(|prefix| Namespace {
        prefix,
        delimiter: QuotedChar::try_from(names::SEP).ok(),
        extensions: Vec::new(),
    });
    match personal {
        Ok(p) => {
            s.data(Data::Namespace {
                personal: vec![p],
                other: Vec::new(),
                shared: Vec::new(),
            });
            s.ok(tag, None, "NAMESPACE done");
        }
        Err(_) => s.no(tag, None, "NAMESPACE failed"),
    }
}

/// ENABLE (UTF8=ACCEPT only).
pub(crate) fn enable(s: &mut Session, tag: &Tag<'_>, caps: &[CapabilityEnable<'_>]) {
    let mut enabled = Vec::new();
    for c in caps {
        if let CapabilityEnable::Utf8(Utf8Kind::Accept) = c {
            s.utf8 = true;
            enabled.push(CapabilityEnable::Utf8(Utf8Kind::Accept));
        }
    }
    s.data(Data::Enabled {
        capabilities: enabled,
    });
    s.ok(tag, None, "ENABLE done");
}

fn quota_data(s: &Session) -> Option<Data<'static>> {
    let u = s.user.as_ref()?;
    if u.quota == 0 {
        return None;
    }
    let used = crate::maildir::usage(&u.root).unwrap_or(0);
    Some(Data::Quota {
        root: AString::try_from("").ok()?,
        quotas: Vec1::from(QuotaGet {
            resource: Resource::Storage,
            usage: used / 1024,
            limit: u.quota / 1024,
        }),
    })
}

/// GETQUOTAROOT: every mailbox is under the account's root "".
pub(crate) fn quota_root(s: &mut Session, tag: &Tag<'_>, mailbox: &Mailbox<'_>) {
    let Some((name, _)) = dir_of(s, tag, mailbox) else {
        return;
    };
    let Some(mailbox) = s.wire_name(&name) else {
        return;
    };
    let q = quota_data(s);
    let roots = if q.is_some() {
        AString::try_from("").ok().into_iter().collect()
    } else {
        Vec::new()
    };
    s.data(Data::QuotaRoot { mailbox, roots });
    if let Some(q) = q {
        s.data(q);
    }
    s.ok(tag, None, "GETQUOTAROOT done");
}

/// GETQUOTA.
pub(crate) fn quota(s: &mut Session, tag: &Tag<'_>, root: &[u8]) {
    match quota_data(s) {
        Some(q) if root.is_empty() => {
            s.data(q);
            s.ok(tag, None, "GETQUOTA done");
        }
        _ => s.no(tag, Some(super::code("NONEXISTENT")), "no such quota root"),
    }
}
