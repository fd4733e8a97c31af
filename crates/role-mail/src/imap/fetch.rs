//! FETCH and UID FETCH: FLAGS, UID, INTERNALDATE (the file's mtime), RFC822.SIZE,
//! ENVELOPE, BODY / BODYSTRUCTURE (nested multiparts and message/rfc822 from
//! `mail-parser`'s part tree), BODY[section]<partial> and BODY.PEEK, RFC822,
//! RFC822.HEADER and RFC822.TEXT. A non-peek body fetch sets `\Seen` (not in a
//! read-only mailbox).
//!
//! Messages are served with CRLF line ends, and the MIME offsets are those of the
//! CRLF form, so sizes and partials agree with what is sent.

use std::num::NonZeroU32;

use imap_codec::imap_types::body::{
    BasicFields, Body, BodyStructure, Disposition, MultiPartExtensionData, SinglePartExtensionData,
    SpecificFields,
};
use imap_codec::imap_types::core::{IString, Literal, NString, Tag, Vec1};
use imap_codec::imap_types::datetime::DateTime;
use imap_codec::imap_types::envelope::{Address, Envelope};
use imap_codec::imap_types::fetch::{
    MacroOrMessageDataItemNames, MessageDataItem, MessageDataItemName, Section,
};
use imap_codec::imap_types::response::Data;
use imap_codec::imap_types::sequence::SequenceSet;
use mail_parser::{MessageParser, MimeHeaders, PartType};

use super::{store, Session};

/// Whether `n` is in `set`, `*` standing for `largest`. A membership test, never
/// an expansion: `1:4294967295` costs as little as `1`.
pub(crate) fn in_set(set: &SequenceSet, n: u32, largest: u32) -> bool {
    use imap_codec::imap_types::sequence::{SeqOrUid, Sequence};
    let v = |x: &SeqOrUid| match x {
        SeqOrUid::Value(v) => v.get(),
        SeqOrUid::Asterisk => largest,
    };
    set.0.as_ref().iter().any(|s| match s {
        Sequence::Single(x) => v(x) == n,
        Sequence::Range(a, b) => {
            let (lo, hi) = (v(a).min(v(b)), v(a).max(v(b)));
            lo <= n && n <= hi
        }
    })
}

/// Sequence numbers (1-based) of the selected view that `set` names, ascending,
/// each once. Walks the set's ranges (the view is in ascending UID order, so a
/// UID range is two binary searches), never the whole view: `FETCH n` costs the
/// same in a folder of 10 or 100,000 messages.
pub(crate) fn resolve(s: &Session, set: &SequenceSet, uid: bool) -> Vec<usize> {
    match s.selected.as_ref() {
        Some(sel) => resolve_in(&sel.view, set, uid),
        None => Vec::new(),
    }
}

/// [`resolve`] over `view`.
fn resolve_in(view: &[super::Seen], set: &SequenceSet, uid: bool) -> Vec<usize> {
    use imap_codec::imap_types::sequence::{SeqOrUid, Sequence};
    let len = view.len();
    let largest = if uid {
        view.last().map(|m| m.uid).unwrap_or(0)
    } else {
        len as u32
    };
    let v = |x: &SeqOrUid| match x {
        SeqOrUid::Value(v) => v.get(),
        SeqOrUid::Asterisk => largest,
    };
    let mut out: Vec<usize> = Vec::new();
    for seq in set.0.as_ref() {
        let (a, b) = match seq {
            Sequence::Single(x) => (v(x), v(x)),
            Sequence::Range(a, b) => (v(a), v(b)),
        };
        let (lo, hi) = (a.min(b), a.max(b));
        // indexes (0-based) of the view in lo..=hi
        let (from, to) = if uid {
            (
                view.partition_point(|m| m.uid < lo),
                view.partition_point(|m| m.uid <= hi),
            )
        } else {
            (
                (lo as usize).saturating_sub(1).min(len),
                (hi as usize).min(len),
            )
        };
        out.extend((from..to).map(|i| i + 1));
    }
    if set.0.as_ref().len() > 1 {
        out.sort_unstable();
        out.dedup();
    }
    out
}

fn nstring(bytes: Vec<u8>) -> NString<'static> {
    NString(Some(IString::Literal(Literal::unvalidated(bytes))))
}

fn nstr(text: Option<&str>) -> NString<'static> {
    match text {
        Some(t) => NString(IString::try_from(t.trim().to_string()).ok()),
        None => NString(None),
    }
}

fn istr(text: &str) -> IString<'static> {
    IString::try_from(text.to_string())
        .unwrap_or_else(|_| IString::Literal(Literal::unvalidated(text.as_bytes().to_vec())))
}

/// FETCH / UID FETCH.
pub(crate) fn fetch(
    s: &mut Session,
    tag: &Tag<'_>,
    set: &SequenceSet,
    items: &MacroOrMessageDataItemNames<'_>,
    uid: bool,
) {
    let mut names: Vec<MessageDataItemName<'_>> = match items {
        MacroOrMessageDataItemNames::Macro(m) => m.expand(),
        MacroOrMessageDataItemNames::MessageDataItemNames(v) => v.clone(),
    };
    if uid && !names.contains(&MessageDataItemName::Uid) {
        names.push(MessageDataItemName::Uid);
    }
    let seqs = resolve(s, set, uid);
    // a server that may not write now serves bodies without setting \Seen
    let read_only =
        s.selected.as_ref().is_some_and(|sel| sel.read_only) || s.shared.repl.check().is_err();
    let mut to_mark = Vec::new();
    let slot = s
        .selected
        .as_ref()
        .map(|sel| s.shared.imap.slot(&sel.folder.dir));
    let needs_body = names.iter().any(|n| {
        !matches!(
            n,
            MessageDataItemName::Flags
                | MessageDataItemName::Uid
                | MessageDataItemName::InternalDate
                | MessageDataItemName::Rfc822Size
        )
    });
    // ENVELOPE alone (what a client asks of a whole folder) needs the header
    // only, which the folder's header cache keeps after the first time.
    let header_only = names.iter().all(|n| {
        matches!(
            n,
            MessageDataItemName::Flags
                | MessageDataItemName::Uid
                | MessageDataItemName::InternalDate
                | MessageDataItemName::Rfc822Size
                | MessageDataItemName::Envelope
        )
    });
    // BODY[] / RFC822 alone (a client downloading messages) is the file as it
    // is: no MIME parse.
    let needs_parse = names.iter().any(|n| match n {
        MessageDataItemName::Envelope
        | MessageDataItemName::BodyStructure
        | MessageDataItemName::Body
        | MessageDataItemName::Rfc822Header
        | MessageDataItemName::Rfc822Text => true,
        MessageDataItemName::BodyExt { section, .. } => section.is_some(),
        _ => false,
    });
    for seq in seqs {
        let Some((seen, msg)) = s.selected.as_ref().and_then(|sel| {
            let seen = sel.view.get(seq - 1)?.clone();
            let msg = sel.folder.get(seen.uid)?.clone();
            Some((seen, msg))
        }) else {
            continue;
        };
        let Some(path) = s.selected.as_ref().map(|sel| sel.folder.path(&msg)) else {
            continue;
        };
        let raw = if !needs_body {
            None
        } else if header_only {
            let read = match &slot {
                Some(slot) => slot.header(&msg.base, &path).map(|h| h.to_vec()),
                None => crate::maildir::read_header_crlf(&path),
            };
            match read {
                Ok(r) => Some(r),
                Err(_) => continue, // expunged meanwhile
            }
        } else {
            match crate::maildir::read_crlf(&path) {
                Ok(r) => Some(r),
                Err(_) => continue, // expunged meanwhile
            }
        };
        let parsed = raw
            .as_ref()
            .filter(|_| needs_parse)
            .and_then(|r| MessageParser::default().parse(r.as_slice()));
        let mut out: Vec<MessageDataItem<'static>> = Vec::new();
        let mut marks = false;
        for n in &names {
            let item = match n {
                MessageDataItemName::Flags => continue, // added below, after \Seen
                MessageDataItemName::Uid => NonZeroU32::new(seen.uid).map(MessageDataItem::Uid),
                MessageDataItemName::InternalDate => {
                    internal_date(&path).map(MessageDataItem::InternalDate)
                }
                MessageDataItemName::Rfc822Size => Some(MessageDataItem::Rfc822Size(
                    msg.size(
                        &s.selected
                            .as_ref()
                            .map(|x| x.folder.dir.clone())
                            .unwrap_or_default(),
                    ) as u32,
                )),
                MessageDataItemName::Envelope => parsed
                    .as_ref()
                    .map(|m| MessageDataItem::Envelope(envelope(m))),
                MessageDataItemName::BodyStructure => parsed
                    .as_ref()
                    .map(|m| MessageDataItem::BodyStructure(structure(m, 0, true))),
                MessageDataItemName::Body => parsed
                    .as_ref()
                    .map(|m| MessageDataItem::Body(structure(m, 0, false))),
                MessageDataItemName::Rfc822 => {
                    marks = true;
                    raw.clone().map(|r| MessageDataItem::Rfc822(nstring(r)))
                }
                MessageDataItemName::Rfc822Header => parsed
                    .as_ref()
                    .and_then(|m| section(m, &Section::Header(None)))
                    .map(|b| MessageDataItem::Rfc822Header(nstring(b))),
                MessageDataItemName::Rfc822Text => {
                    marks = true;
                    parsed
                        .as_ref()
                        .and_then(|m| section(m, &Section::Text(None)))
                        .map(|b| MessageDataItem::Rfc822Text(nstring(b)))
                }
                MessageDataItemName::BodyExt {
                    section: sec,
                    partial,
                    peek,
                } => {
                    if !peek {
                        marks = true;
                    }
                    let data = match (sec, parsed.as_ref(), raw.as_ref()) {
                        (None, _, Some(r)) => Some(r.clone()),
                        (Some(sec), Some(m), _) => section(m, sec).or(Some(Vec::new())),
                        _ => None,
                    };
                    data.map(|d| {
                        let (origin, d) = match partial {
                            Some((start, len)) => {
                                let st = (*start as usize).min(d.len());
                                let end = st.saturating_add(len.get() as usize).min(d.len());
                                (Some(*start), d[st..end].to_vec())
                            }
                            None => (None, d),
                        };
                        use imap_codec::imap_types::IntoStatic;
                        MessageDataItem::BodyExt {
                            section: sec.clone().map(IntoStatic::into_static),
                            origin,
                            data: nstring(d),
                        }
                    })
                }
                _ => None,
            };
            out.extend(item);
        }
        let mut flags = seen.flags.clone();
        if marks && !read_only && !flags.contains("\\Seen") {
            flags.insert("\\Seen".to_string());
            to_mark.push(seq);
        }
        if names.contains(&MessageDataItemName::Flags)
            || (marks && !read_only && to_mark.last() == Some(&seq))
        {
            if let Some(f) = super::flag_items(&flags, None) {
                out.extend(f);
            }
        }
        if let (Some(seq), Ok(items)) = (NonZeroU32::new(seq as u32), Vec1::try_from(out)) {
            s.data(Data::Fetch { seq, items });
        }
    }
    if !to_mark.is_empty() {
        store::add_flags_quietly(s, &to_mark, "\\Seen");
    }
    s.refresh(uid);
    s.ok(tag, None, "FETCH done");
}

fn internal_date(path: &std::path::Path) -> Option<DateTime> {
    let t = std::fs::metadata(path).ok()?.modified().ok()?;
    let dt: chrono::DateTime<chrono::Utc> = t.into();
    DateTime::try_from(dt.fixed_offset()).ok()
}

fn addresses(a: Option<&mail_parser::Address<'_>>) -> Vec<Address<'static>> {
    let one = |name: Option<&str>, addr: Option<&str>| {
        let (mailbox, host) = match addr.and_then(|a| a.rsplit_once('@')) {
            Some((l, h)) => (Some(l), Some(h)),
            None => (addr, None),
        };
        Address {
            name: nstr(name),
            adl: NString(None),
            mailbox: nstr(mailbox),
            host: nstr(host),
        }
    };
    let mut out = Vec::new();
    match a {
        Some(mail_parser::Address::List(list)) => {
            for x in list {
                out.push(one(x.name.as_deref(), x.address.as_deref()));
            }
        }
        Some(mail_parser::Address::Group(groups)) => {
            for g in groups {
                if let Some(n) = g.name.as_deref() {
                    out.push(one(None, Some(n)).clone_group_start());
                }
                for x in &g.addresses {
                    out.push(one(x.name.as_deref(), x.address.as_deref()));
                }
                if g.name.is_some() {
                    out.push(Address {
                        name: NString(None),
                        adl: NString(None),
                        mailbox: NString(None),
                        host: NString(None),
                    });
                }
            }
        }
        None => {}
    }
    out
}

/// The start marker of an address group (`(NIL NIL "name" NIL)`).
trait GroupStart {
    fn clone_group_start(self) -> Self;
}

impl GroupStart for Address<'static> {
    fn clone_group_start(mut self) -> Self {
        self.host = NString(None);
        self
    }
}

/// ENVELOPE of a (possibly embedded) message.
pub(crate) fn envelope(m: &mail_parser::Message<'_>) -> Envelope<'static> {
    let from = addresses(m.from());
    let sender = match m.sender() {
        Some(a) => addresses(Some(a)),
        None => from.clone(),
    };
    let reply_to = match m.reply_to() {
        Some(a) => addresses(Some(a)),
        None => from.clone(),
    };
    Envelope {
        date: nstr(m.header_raw("Date")),
        subject: nstr(m.header_raw("Subject")),
        from,
        sender,
        reply_to,
        to: addresses(m.to()),
        cc: addresses(m.cc()),
        bcc: addresses(m.bcc()),
        in_reply_to: nstr(m.header_raw("In-Reply-To")),
        message_id: nstr(m.header_raw("Message-ID")),
    }
}

fn params(
    ct: Option<&mail_parser::ContentType<'_>>,
    text: bool,
) -> Vec<(IString<'static>, IString<'static>)> {
    let mut out: Vec<(IString<'static>, IString<'static>)> = ct
        .and_then(|c| c.attributes())
        .map(|a| {
            a.iter()
                .map(|at| (istr(&at.name.to_ascii_uppercase()), istr(&at.value)))
                .collect()
        })
        .unwrap_or_default();
    if text && out.is_empty() {
        out.push((istr("CHARSET"), istr("us-ascii")));
    }
    out
}

/// BODYSTRUCTURE (`ext`) or BODY of part `idx` of `m`.
pub(crate) fn structure(
    m: &mail_parser::Message<'_>,
    idx: usize,
    ext: bool,
) -> BodyStructure<'static> {
    let Some(part) = m.parts.get(idx) else {
        return fallback();
    };
    let ct = part.content_type();
    let ctype = ct
        .map(|c| c.ctype().to_ascii_lowercase())
        .unwrap_or_else(|| "text".into());
    let sub = ct
        .and_then(|c| c.subtype())
        .map(str::to_ascii_lowercase)
        .unwrap_or_else(|| {
            if ctype == "text" {
                "plain".into()
            } else {
                "octet-stream".into()
            }
        });
    if let PartType::Multipart(children) = &part.body {
        let bodies: Vec<BodyStructure<'static>> = children
            .iter()
            .map(|c| structure(m, *c as usize, ext))
            .collect();
        let Ok(bodies) = Vec1::try_from(bodies) else {
            return fallback();
        };
        return BodyStructure::Multi {
            bodies,
            subtype: istr(&sub),
            extension_data: ext.then(|| MultiPartExtensionData {
                parameter_list: params(ct, false),
                tail: Some(disposition(part.content_disposition())),
            }),
        };
    }
    let raw = m.raw_message.as_ref();
    let body = raw
        .get(part.offset_body as usize..part.offset_end as usize)
        .unwrap_or_default();
    let lines = body.iter().filter(|&&b| b == b'\n').count() as u32;
    let basic = BasicFields {
        parameter_list: params(ct, ctype == "text"),
        id: nstr(part.content_id()),
        description: nstr(part.content_description()),
        content_transfer_encoding: istr(
            &part
                .content_transfer_encoding()
                .map(str::to_ascii_uppercase)
                .unwrap_or_else(|| "7BIT".into()),
        ),
        size: body.len() as u32,
    };
    let specific = match (&part.body, ctype.as_str()) {
        (PartType::Message(nested), "message") => SpecificFields::Message {
            envelope: Box::new(envelope(nested)),
            body_structure: Box::new(structure(nested, 0, ext)),
            number_of_lines: lines,
        },
        (_, "text") => SpecificFields::Text {
            subtype: istr(&sub),
            number_of_lines: lines,
        },
        _ => SpecificFields::Basic {
            r#type: istr(&ctype),
            subtype: istr(&sub),
        },
    };
    BodyStructure::Single {
        body: Body { basic, specific },
        extension_data: ext.then(|| SinglePartExtensionData {
            md5: NString(None),
            tail: Some(disposition(part.content_disposition())),
        }),
    }
}

/// `Content-Disposition` as BODYSTRUCTURE extension data (clients find
/// attachments and their file names by it).
fn disposition(d: Option<&mail_parser::ContentType<'_>>) -> Disposition<'static> {
    Disposition {
        disposition: d.map(|d| {
            (
                istr(&d.ctype().to_ascii_lowercase()),
                params(Some(d), false),
            )
        }),
        tail: None,
    }
}

fn fallback() -> BodyStructure<'static> {
    BodyStructure::Single {
        body: Body {
            basic: BasicFields {
                parameter_list: Vec::new(),
                id: NString(None),
                description: NString(None),
                content_transfer_encoding: istr("7BIT"),
                size: 0,
            },
            specific: SpecificFields::Text {
                subtype: istr("plain"),
                number_of_lines: 0,
            },
        },
        extension_data: None,
    }
}

/// Walk a part path: returns the message the part belongs to and its index.
fn walk<'m, 'x>(
    m: &'m mail_parser::Message<'x>,
    path: &[NonZeroU32],
) -> Option<(&'m mail_parser::Message<'x>, usize)> {
    let mut cur: (&mail_parser::Message<'x>, usize) = (m, 0);
    for n in path {
        let n = n.get() as usize;
        if cur.1 != 0 {
            if let PartType::Message(nested) = &cur.0.parts.get(cur.1)?.body {
                cur = (nested, 0);
            }
        }
        match &cur.0.parts.get(cur.1)?.body {
            PartType::Multipart(children) => cur.1 = *children.get(n - 1)? as usize,
            _ if n == 1 => {}
            _ => return None,
        }
    }
    Some(cur)
}

/// The embedded message at `path` (or the top message).
fn message_at<'m, 'x>(
    m: &'m mail_parser::Message<'x>,
    path: Option<&[NonZeroU32]>,
) -> Option<&'m mail_parser::Message<'x>> {
    match path {
        None => Some(m),
        Some(p) => {
            let (msg, idx) = walk(m, p)?;
            match &msg.parts.get(idx)?.body {
                PartType::Message(nested) => Some(nested),
                _ if idx == 0 => Some(msg),
                _ => None,
            }
        }
    }
}

fn header_block(m: &mail_parser::Message<'_>) -> Vec<u8> {
    let root = &m.parts[0];
    m.raw_message
        .get(root.offset_header as usize..root.offset_body as usize)
        .unwrap_or_default()
        .to_vec()
}

fn filter_fields(block: &[u8], fields: &[String], keep: bool) -> Vec<u8> {
    let mut out = Vec::new();
    let mut cur: Vec<u8> = Vec::new();
    let flush = |cur: &mut Vec<u8>, out: &mut Vec<u8>| {
        if cur.is_empty() {
            return;
        }
        let name = cur.split(|&b| b == b':').next().unwrap_or_default();
        let name = String::from_utf8_lossy(name).trim().to_ascii_lowercase();
        if fields.contains(&name) == keep {
            out.extend_from_slice(cur);
        }
        cur.clear();
    };
    for line in block.split_inclusive(|&b| b == b'\n') {
        if line == b"\r\n" || line == b"\n" {
            break;
        }
        if !matches!(line.first(), Some(b' ') | Some(b'\t')) {
            flush(&mut cur, &mut out);
        }
        cur.extend_from_slice(line);
    }
    flush(&mut cur, &mut out);
    out.extend_from_slice(b"\r\n");
    out
}

/// The bytes of `sec` of `m`.
pub(crate) fn section(m: &mail_parser::Message<'_>, sec: &Section<'_>) -> Option<Vec<u8>> {
    let part_path =
        |p: &Option<imap_codec::imap_types::fetch::Part>| p.as_ref().map(|p| p.0.as_ref().to_vec());
    match sec {
        Section::Header(p) => Some(header_block(message_at(m, part_path(p).as_deref())?)),
        Section::Text(p) => {
            let msg = message_at(m, part_path(p).as_deref())?;
            let root = &msg.parts[0];
            Some(msg.raw_message.get(root.offset_body as usize..)?.to_vec())
        }
        Section::HeaderFields(p, list) | Section::HeaderFieldsNot(p, list) => {
            let msg = message_at(m, part_path(p).as_deref())?;
            let fields: Vec<String> = list
                .as_ref()
                .iter()
                .map(|f| String::from_utf8_lossy(f.as_ref()).to_ascii_lowercase())
                .collect();
            let keep = matches!(sec, Section::HeaderFields(..));
            Some(filter_fields(&header_block(msg), &fields, keep))
        }
        Section::Part(p) => {
            let (msg, idx) = walk(m, p.0.as_ref())?;
            let part = msg.parts.get(idx)?;
            let end = if idx == 0 {
                msg.raw_message.len()
            } else {
                part.offset_end as usize
            };
            Some(
                msg.raw_message
                    .get(part.offset_body as usize..end)?
                    .to_vec(),
            )
        }
        Section::Mime(p) => {
            let (msg, idx) = walk(m, p.0.as_ref())?;
            let part = msg.parts.get(idx)?;
            Some(
                msg.raw_message
                    .get(part.offset_header as usize..part.offset_body as usize)?
                    .to_vec(),
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use imap_codec::imap_types::sequence::{SeqOrUid, Sequence};

    /// Walking the set's ranges names exactly the messages a membership test of
    /// every message does (the old way), for sequence numbers and UIDs, with `*`,
    /// reversed ranges, overlaps and numbers past the end.
    #[test]
    fn resolve_agrees_with_membership() {
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = |m: u64| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x % m
        };
        for round in 0..400 {
            let n = next(30) as usize;
            let mut uid = 0;
            let view: Vec<super::super::Seen> = (0..n)
                .map(|_| {
                    uid += 1 + next(4) as u32;
                    super::super::Seen {
                        uid,
                        flags: Default::default(),
                    }
                })
                .collect();
            let one = |next: &mut dyn FnMut(u64) -> u64| {
                if next(8) == 0 {
                    SeqOrUid::Asterisk
                } else {
                    SeqOrUid::Value(NonZeroU32::new(1 + next(90) as u32).unwrap())
                }
            };
            let parts: Vec<Sequence> = (0..1 + next(3))
                .map(|_| {
                    if next(2) == 0 {
                        Sequence::Single(one(&mut next))
                    } else {
                        Sequence::Range(one(&mut next), one(&mut next))
                    }
                })
                .collect();
            let set = SequenceSet(Vec1::try_from(parts).unwrap());
            for uid_mode in [false, true] {
                let largest = if uid_mode {
                    view.last().map(|m| m.uid).unwrap_or(0)
                } else {
                    n as u32
                };
                let naive: Vec<usize> = view
                    .iter()
                    .enumerate()
                    .filter(|(i, m)| {
                        let k = if uid_mode { m.uid } else { *i as u32 + 1 };
                        in_set(&set, k, largest)
                    })
                    .map(|(i, _)| i + 1)
                    .collect();
                assert_eq!(
                    resolve_in(&view, &set, uid_mode),
                    naive,
                    "round {round} {set:?} uid={uid_mode}"
                );
            }
        }
    }
}
