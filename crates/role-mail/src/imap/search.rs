//! SEARCH and UID SEARCH: sequence and UID sets, flags and keywords, sizes,
//! internal and sent dates, header fields (FROM, TO, CC, BCC, SUBJECT, HEADER) and
//! text (BODY, TEXT), with AND / OR / NOT. Text matches are case-insensitive
//! substring matches over the decoded text `mail-parser` gives (headers decoded
//! from RFC 2047, bodies from their transfer encoding).

use std::num::NonZeroU32;

use chrono::NaiveDate;
use imap_codec::imap_types::core::Tag;
use imap_codec::imap_types::response::Data;
use imap_codec::imap_types::search::SearchKey;
use mail_parser::{Message, MessageParser};

use super::Session;

/// One candidate message, parsed on demand.
struct Cand<'s> {
    seq: u32,
    uid: u32,
    flags: &'s std::collections::BTreeSet<String>,
    path: std::path::PathBuf,
    base: &'s str,
    slot: &'s super::FolderSlot,
    size: u64,
    raw: Option<Vec<u8>>,
    header: Option<Vec<u8>>,
    max_seq: u32,
    max_uid: u32,
}

impl Cand<'_> {
    fn raw(&mut self) -> &[u8] {
        if self.raw.is_none() {
            self.raw = Some(crate::maildir::read_crlf(&self.path).unwrap_or_default());
        }
        self.raw.as_deref().unwrap_or_default()
    }

    /// The header only (what header keys need), from the folder's header cache.
    fn header(&mut self) -> &[u8] {
        if self.header.is_none() {
            let h = self
                .slot
                .header(self.base, &self.path)
                .map(|h| h.to_vec())
                .unwrap_or_default();
            self.header = Some(h);
        }
        self.header.as_deref().unwrap_or_default()
    }

    fn internal(&self) -> Option<NaiveDate> {
        let t = std::fs::metadata(&self.path).ok()?.modified().ok()?;
        let dt: chrono::DateTime<chrono::Utc> = t.into();
        Some(dt.date_naive())
    }
}

fn contains(hay: &str, needle: &[u8]) -> bool {
    let needle = String::from_utf8_lossy(needle).to_lowercase();
    if needle.is_ascii() {
        // no lower-cased copy of a whole message for the common ASCII needle
        return ascii_find(hay.as_bytes(), needle.as_bytes());
    }
    hay.to_lowercase().contains(&needle)
}

/// Whether `hay` contains `needle` (ASCII, lower case) ignoring ASCII case.
fn ascii_find(hay: &[u8], needle: &[u8]) -> bool {
    let Some((&first, rest)) = needle.split_first() else {
        return true;
    };
    let upper = first.to_ascii_uppercase();
    let n = needle.len();
    if hay.len() < n {
        return false;
    }
    (0..=hay.len() - n).any(|i| {
        (hay[i] == first || hay[i] == upper) && hay[i + 1..i + n].eq_ignore_ascii_case(rest)
    })
}

fn header_text(m: &Message<'_>, name: &str) -> String {
    m.root_part()
        .headers
        .iter()
        .filter(|h| h.name.as_str().eq_ignore_ascii_case(name))
        .map(|h| {
            let raw = m
                .raw_message
                .get(h.offset_start as usize..h.offset_end as usize)
                .unwrap_or_default();
            let raw = String::from_utf8_lossy(raw).into_owned();
            // decoded forms too, so encoded words match
            let decoded = match &h.value {
                mail_parser::HeaderValue::Text(t) => t.to_string(),
                mail_parser::HeaderValue::Address(a) => a
                    .iter()
                    .map(|x| {
                        format!(
                            "{} <{}>",
                            x.name.as_deref().unwrap_or(""),
                            x.address.as_deref().unwrap_or("")
                        )
                    })
                    .collect::<Vec<_>>()
                    .join(", "),
                _ => String::new(),
            };
            format!("{raw} {decoded}")
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn body_text(m: &Message<'_>) -> String {
    let mut out = String::new();
    for i in 0..m.text_body_count().max(m.text_body.len()) {
        if let Some(t) = m.body_text(i) {
            out.push_str(&t);
            out.push('\n');
        }
    }
    if out.is_empty() {
        if let Some(h) = (0..m.html_body.len()).find_map(|i| m.body_html(i)) {
            out.push_str(&h);
        }
    }
    out
}

fn matches(c: &mut Cand<'_>, key: &SearchKey<'_>) -> bool {
    use SearchKey as K;
    let flag = |c: &Cand<'_>, f: &str| c.flags.iter().any(|x| x.eq_ignore_ascii_case(f));
    match key {
        K::And(keys) => keys.as_ref().iter().all(|k| matches(c, k)),
        K::Or(a, b) => matches(c, a) || matches(c, b),
        K::Not(k) => !matches(c, k),
        K::All => true,
        K::SequenceSet(set) => super::fetch::in_set(set, c.seq, c.max_seq),
        K::Uid(set) => super::fetch::in_set(set, c.uid, c.max_uid.max(c.uid)),
        K::Answered => flag(c, "\\Answered"),
        K::Unanswered => !flag(c, "\\Answered"),
        K::Deleted => flag(c, "\\Deleted"),
        K::Undeleted => !flag(c, "\\Deleted"),
        K::Draft => flag(c, "\\Draft"),
        K::Undraft => !flag(c, "\\Draft"),
        K::Flagged => flag(c, "\\Flagged"),
        K::Unflagged => !flag(c, "\\Flagged"),
        K::Seen | K::Old => flag(c, "\\Seen"),
        K::Unseen => !flag(c, "\\Seen"),
        K::New | K::Recent => false,
        K::Keyword(k) => flag(c, k.as_ref()),
        K::Unkeyword(k) => !flag(c, k.as_ref()),
        K::Larger(n) => c.size > u64::from(*n),
        K::Smaller(n) => c.size < u64::from(*n),
        K::Before(d) => c.internal().is_some_and(|x| x < *d.as_ref()),
        K::On(d) => c.internal().is_some_and(|x| x == *d.as_ref()),
        K::Since(d) => c.internal().is_some_and(|x| x >= *d.as_ref()),
        K::SentBefore(d) | K::SentOn(d) | K::SentSince(d) => {
            let sent = MessageParser::default()
                .parse_headers(c.header())
                .and_then(|m| m.date().cloned())
                .and_then(|dt| {
                    NaiveDate::from_ymd_opt(i32::from(dt.year), dt.month.into(), dt.day.into())
                });
            match (sent, key) {
                (Some(x), K::SentBefore(_)) => x < *d.as_ref(),
                (Some(x), K::SentOn(_)) => x == *d.as_ref(),
                (Some(x), _) => x >= *d.as_ref(),
                (None, _) => false,
            }
        }
        K::From(v) | K::To(v) | K::Cc(v) | K::Bcc(v) | K::Subject(v) => {
            let name = match key {
                K::From(_) => "From",
                K::To(_) => "To",
                K::Cc(_) => "Cc",
                K::Bcc(_) => "Bcc",
                _ => "Subject",
            };
            MessageParser::default()
                .parse_headers(c.header())
                .is_some_and(|m| contains(&header_text(&m, name), v.as_ref()))
        }
        K::Header(name, v) => {
            let name = String::from_utf8_lossy(name.as_ref()).into_owned();
            MessageParser::default()
                .parse_headers(c.header())
                .is_some_and(|m| {
                    m.root_part()
                        .headers
                        .iter()
                        .any(|h| h.name.as_str().eq_ignore_ascii_case(&name))
                        && contains(&header_text(&m, &name), v.as_ref())
                })
        }
        K::Body(v) | K::Text(v) => {
            let raw = c.raw();
            let Some(m) = MessageParser::default().parse(raw) else {
                return false;
            };
            let mut hay = body_text(&m);
            if matches!(key, K::Text(_)) {
                let root = &m.parts[0];
                hay.push_str(&String::from_utf8_lossy(
                    raw.get(..root.offset_body as usize).unwrap_or_default(),
                ));
                hay.push_str(&header_text(&m, "Subject"));
                hay.push_str(&header_text(&m, "From"));
            }
            contains(&hay, v.as_ref())
        }
    }
}

/// SEARCH / UID SEARCH.
pub(crate) fn search(s: &mut Session, tag: &Tag<'_>, key: &SearchKey<'_>, uid: bool) {
    let mut hits = Vec::new();
    if let Some(sel) = s.selected.as_ref() {
        let slot = s.shared.imap.slot(&sel.folder.dir);
        let max_seq = sel.view.len() as u32;
        let max_uid = sel.view.last().map(|m| m.uid).unwrap_or(0);
        for (i, seen) in sel.view.iter().enumerate() {
            let Some(m) = sel.folder.get(seen.uid) else {
                continue;
            };
            let mut c = Cand {
                seq: i as u32 + 1,
                uid: seen.uid,
                flags: &seen.flags,
                path: sel.folder.path(m),
                base: &m.base,
                slot: &slot,
                size: m.size(&sel.folder.dir),
                raw: None,
                header: None,
                max_seq,
                max_uid,
            };
            if matches(&mut c, key) {
                hits.push(if uid { c.uid } else { c.seq });
            }
        }
    }
    let hits: Vec<NonZeroU32> = hits.into_iter().filter_map(NonZeroU32::new).collect();
    s.data(Data::Search(hits));
    s.refresh(uid);
    s.ok(tag, None, "SEARCH done");
}
