//! APPEND with UIDPLUS `APPENDUID`: the message (any size up to the server's SMTP
//! message limit, checked before its literal is read) is written to the folder's
//! `tmp/`, fsynced, renamed into `cur/` with its flags, the directory fsynced, and
//! only then given a UID (one line appended to the UID list and synced,
//! [`uidlist::append_uid`], without rescanning the folder) and announced.

use std::collections::BTreeSet;
use std::io::Write;
use std::num::NonZeroU32;

use imap_codec::imap_types::core::Tag;
use imap_codec::imap_types::datetime::DateTime;
use imap_codec::imap_types::flag::Flag;
use imap_codec::imap_types::mailbox::Mailbox;
use imap_codec::imap_types::response::Code;

use super::{uidlist, Session};

/// Write `message` into the folder at `dir` with flag `letters`; returns its base name.
fn write_message(
    dir: &std::path::Path,
    host: &str,
    message: &[u8],
    letters: &str,
    date: Option<std::time::SystemTime>,
) -> std::io::Result<String> {
    crate::maildir::ensure(dir)?;
    let body = crate::maildir::to_lf(message);
    let crlf = crate::maildir::read_crlf_bytes(&body).len();
    let base = format!(
        "{},S={},W={}",
        crate::maildir::unique_name(host),
        body.len(),
        crlf
    );
    let tmp = dir.join("tmp").join(&base);
    let result = (|| {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&tmp)?;
        f.write_all(&body)?;
        if let Some(t) = date {
            f.set_times(std::fs::FileTimes::new().set_modified(t))?;
        }
        f.sync_all()?;
        drop(f);
        std::fs::rename(&tmp, dir.join("cur").join(format!("{base}:2,{letters}")))?;
        durable::sync_dir(&dir.join("cur"))
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result.map(|()| base)
}

/// APPEND.
pub(crate) fn append(
    s: &mut Session,
    tag: &Tag<'_>,
    mailbox: &Mailbox<'_>,
    flags: &[Flag<'_>],
    date: Option<&DateTime>,
    data: &[u8],
) {
    let Some(name) = s.mailbox_name(tag, mailbox) else {
        return;
    };
    let Some(dir) = s.folder_dir(&name) else {
        s.no(tag, Some(super::code("CANNOT")), "mailbox name not allowed");
        return;
    };
    if !dir.join("cur").is_dir() {
        s.no(tag, Some(Code::TryCreate), "no such mailbox");
        return;
    }
    let Some((root, quota)) = s.user.as_ref().map(|u| (u.root.clone(), u.quota)) else {
        return;
    };
    if data.len() > s.shared.limits.max_message_bytes {
        s.no(tag, Some(Code::TooBig), "message too big");
        return;
    }
    if quota > 0 {
        let used = crate::maildir::usage(&root).unwrap_or(0);
        if used + data.len() as u64 > quota {
            s.no(tag, Some(Code::OverQuota), "quota exceeded");
            return;
        }
    }
    let names: BTreeSet<String> = flags.iter().filter_map(super::flag_name).collect();
    let letters = match uidlist::letters_for(&root, &names) {
        Ok(Some(l)) => l,
        Ok(None) => {
            s.no(tag, Some(super::code("LIMIT")), "too many keywords");
            return;
        }
        Err(_) => {
            s.no(tag, Some(super::code("SERVERBUG")), "cannot store flags");
            return;
        }
    };
    let when = date.map(|d| std::time::SystemTime::from(d.as_ref().to_utc()));
    let host = s.shared.hostname.clone();
    let base = match write_message(&dir, &host, data, &letters, when) {
        Ok(b) => b,
        Err(_) => {
            s.no(tag, Some(super::code("SERVERBUG")), "cannot store message");
            return;
        }
    };
    let assigned = {
        let slot = s.shared.imap.slot(&dir);
        let _g = slot
            .lock
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        uidlist::append_uid(&dir, &base)
    };
    let assigned = match assigned {
        Ok(Some(a)) => Ok(a),
        // no UID list yet: a full sync writes one
        Ok(None) => s.shared.imap.sync(&dir).map(|folder| {
            let uid = folder.msgs.iter().find(|m| m.base == base).map(|m| m.uid);
            (folder.uidvalidity, uid.unwrap_or(0))
        }),
        Err(e) => Err(e),
    };
    let Ok((uidvalidity, uid)) = assigned else {
        s.no(tag, Some(super::code("SERVERBUG")), "cannot store message");
        return;
    };
    s.shared.imap.changed(&dir);
    if s.selected.is_some() {
        s.refresh(false);
    }
    let code = match (NonZeroU32::new(uidvalidity), NonZeroU32::new(uid)) {
        (Some(v), Some(u)) => Some(Code::AppendUid {
            uid_validity: v,
            uid: u,
        }),
        _ => None,
    };
    s.ok(tag, code, "APPEND done");
}
