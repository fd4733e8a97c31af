//! IMAP4rev1 (RFC 3501) with the IMAP4rev2 essentials, over the same Maildir++ that
//! delivery and POP3 use. The wire format is `imap-codec` (commands decoded, every
//! response encoded through `imap-types`), MIME structure comes from `mail-parser`.
//!
//! This file is the session loop: reading a command with its literals (synchronising
//! `{n}` answered with a continuation, `LITERAL+` `{n+}` taken as they come, each
//! checked against the limits before a byte is read), dispatch by state, and the
//! selected mailbox's view (sequence numbers, pending EXISTS / EXPUNGE / FETCH
//! updates). Command families live in [`auth`], [`mailbox`], [`fetch`], [`store`],
//! [`search`], [`append`] and [`idle`]; UID persistence in [`uidlist`]; the
//! per-folder state sessions share (lock, cached view, header cache) in
//! [`registry`]; names and confinement in [`names`]; the in-memory driver in
//! [`harness`].
//!
//! A user only ever reaches folders beneath their own `Maildir`, found from the
//! login (never from a client-supplied path): every name goes through
//! [`names::folder_dir`].

pub mod append;
pub mod auth;
pub mod fetch;
pub mod harness;
pub mod idle;
pub mod mailbox;
pub mod names;
pub mod registry;
pub mod search;
pub mod store;
pub mod uidlist;

#[cfg(test)]
mod tests;

use std::collections::{BTreeSet, HashMap};
use std::net::SocketAddr;
use std::num::NonZeroU32;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use imap_codec::decode::{CommandDecodeError, Decoder};
use imap_codec::encode::Encoder;
use imap_codec::imap_types::command::{Command, CommandBody};
use imap_codec::imap_types::core::{LiteralMode, Tag, Vec1};
use imap_codec::imap_types::fetch::MessageDataItem;
use imap_codec::imap_types::flag::{Flag, FlagFetch};
use imap_codec::imap_types::mailbox::Mailbox;
use imap_codec::imap_types::response::{Code, Data, Response, Status};
use imap_codec::imap_types::search::SearchKey;
use imap_codec::imap_types::IntoStatic;
use imap_codec::{CommandCodec, ResponseCodec};

pub use registry::{FolderSlot, Registry};

use crate::conn::{Conn, ConnError, Io};
use crate::server::Shared;

/// Silence allowed between commands (RFC 3501: at least 30 minutes).
pub const IDLE_LOGOUT: Duration = Duration::from_secs(31 * 60);
/// Longest command line.
pub const MAX_LINE: usize = 64 * 1024;
/// Largest literal outside APPEND.
pub const MAX_LITERAL: usize = 64 * 1024;
/// Failed logins before the connection is dropped.
const MAX_AUTH_FAILURES: u32 = 3;
/// Protocol errors (BAD) before the connection is dropped.
const MAX_BAD: u32 = 50;

/// The logged-in user.
pub(crate) struct User {
    /// The user's `Maildir` (INBOX).
    pub root: PathBuf,
    /// Quota in bytes (0: none).
    pub quota: u64,
}

/// One message as this session sees it.
#[derive(Debug, Clone)]
pub(crate) struct Seen {
    pub uid: u32,
    pub flags: BTreeSet<String>,
}

/// The selected mailbox.
pub(crate) struct Selected {
    pub read_only: bool,
    /// Messages by sequence number (index + 1).
    pub view: Vec<Seen>,
    /// The folder as last synchronised.
    pub folder: uidlist::Folder,
    /// The [`Registry`] version of `folder` (0: none yet), so an unchanged
    /// folder costs a command nothing.
    pub version: u64,
}

/// An IMAP session.
pub(crate) struct Session {
    pub shared: Arc<Shared>,
    pub peer: SocketAddr,
    pub conn: Conn,
    pub tls: bool,
    pub user: Option<User>,
    pub selected: Option<Selected>,
    /// `ENABLE UTF8=ACCEPT` was sent.
    pub utf8: bool,
    pub failures: u32,
    bad: u32,
}

/// What a command handler wants next.
pub(crate) enum Next {
    Continue,
    Close,
}

/// Run an IMAP session on `io` (`tls`: already encrypted, port 993).
pub async fn run(shared: Arc<Shared>, io: Box<dyn Io>, peer: SocketAddr, tls: bool) {
    Session::new(shared, io, peer, tls).serve().await;
}

impl Session {
    pub(crate) fn new(shared: Arc<Shared>, io: Box<dyn Io>, peer: SocketAddr, tls: bool) -> Self {
        Session {
            shared,
            peer,
            conn: Conn::new(io),
            tls,
            user: None,
            selected: None,
            utf8: false,
            failures: 0,
            bad: 0,
        }
    }

    /// Greet, then read and answer commands until LOGOUT or the connection ends.
    pub(crate) async fn serve(mut self) {
        let s = &mut self;
        let caps = auth::capabilities(s);
        s.untagged_ok(Some(Code::Capability(caps)), "hostplane IMAP ready");
        s.serve_loop().await;
        s.conn.close().await;
    }

    async fn serve_loop(&mut self) {
        let s = self;
        loop {
            let cmd = match s.read_command().await {
                Ok(Some(c)) => c,
                Ok(None) => {
                    s.bad += 1;
                    if s.bad > MAX_BAD {
                        s.bye("too many errors");
                        break;
                    }
                    continue;
                }
                Err(ConnError::Timeout) => {
                    s.bye("autologout; idle for too long");
                    break;
                }
                Err(_) => break,
            };
            match s.command(cmd).await {
                Next::Continue => {}
                Next::Close => break,
            }
        }
    }
}

/// Run `f` where blocking is allowed: `block_in_place` on a multi-threaded
/// runtime (the server), directly on a current-thread one (tests, fuzzing).
fn blocking<R>(f: impl FnOnce() -> R) -> R {
    match tokio::runtime::Handle::try_current().map(|h| h.runtime_flavor()) {
        Ok(tokio::runtime::RuntimeFlavor::MultiThread) => tokio::task::block_in_place(f),
        _ => f(),
    }
}

/// The bytes of a LIST pattern.
fn list_bytes(m: &imap_codec::imap_types::mailbox::ListMailbox<'_>) -> Vec<u8> {
    use imap_codec::imap_types::mailbox::ListMailbox;
    match m {
        ListMailbox::Token(t) => t.as_ref().to_vec(),
        ListMailbox::String(s) => s.as_ref().to_vec(),
    }
}

/// Whether the command starting `buf` is an APPEND (its literal may be a message).
fn is_append(buf: &[u8]) -> bool {
    let mut words = buf.split(|&b| b == b' ');
    let _tag = words.next();
    matches!(words.next(), Some(w) if w.eq_ignore_ascii_case(b"APPEND"))
}

impl Session {
    /// Queue a response.
    pub fn send(&mut self, r: &Response<'_>) {
        let bytes = ResponseCodec::default().encode(r).dump();
        self.conn.send(&bytes);
    }

    /// Queue untagged data.
    pub fn data(&mut self, d: Data<'_>) {
        self.send(&Response::Data(d));
    }

    fn status(&mut self, r: Result<Status<'_>, impl std::fmt::Debug>) {
        match r {
            Ok(st) => self.send(&Response::Status(st)),
            Err(e) => tracing::warn!(error = ?e, "imap status not encodable"),
        }
    }

    /// Untagged OK.
    pub fn untagged_ok(&mut self, code: Option<Code<'_>>, text: &str) {
        self.status(Status::ok(None, code, text));
    }

    /// The selected mailbox vanished: say so (RFC 7162's `CLOSED` code, which
    /// clients that do not know it ignore as text).
    fn bye_selected(&mut self) {
        self.untagged_ok(Some(code("CLOSED")), "mailbox no longer exists");
    }

    /// Untagged BYE.
    pub fn bye(&mut self, text: &str) {
        self.status(Status::bye(None, text));
    }

    /// Tagged OK.
    pub fn ok(&mut self, tag: &Tag<'_>, code: Option<Code<'_>>, text: &str) {
        self.status(Status::ok(Some(tag.clone()), code, text));
    }

    /// Tagged NO.
    pub fn no(&mut self, tag: &Tag<'_>, code: Option<Code<'_>>, text: &str) {
        self.status(Status::no(Some(tag.clone()), code, text));
    }

    /// Tagged BAD.
    pub fn bad(&mut self, tag: &Tag<'_>, text: &str) {
        self.bad += 1;
        self.status(Status::bad(Some(tag.clone()), None, text));
    }

    /// Read one command with its literals. `Ok(None)`: a bad command was answered.
    async fn read_command(&mut self) -> Result<Option<Command<'static>>, ConnError> {
        let mut buf: Vec<u8> = Vec::new();
        let max_total = self.shared.limits.max_message_bytes + MAX_LINE;
        loop {
            let line = self.conn.read_line(MAX_LINE, IDLE_LOGOUT).await?;
            if line.overlong {
                self.status(Status::bad(None, None, "command line too long"));
                return Ok(None);
            }
            buf.extend_from_slice(&line.bytes);
            buf.extend_from_slice(b"\r\n");
            match CommandCodec::default().decode(&buf) {
                Ok((_, cmd)) => return Ok(Some(cmd.into_static())),
                Err(CommandDecodeError::LiteralFound { tag, length, mode }) => {
                    let limit = if is_append(&buf) {
                        self.shared.limits.max_message_bytes
                    } else {
                        MAX_LITERAL
                    };
                    let length = length as usize;
                    if length > limit || buf.len() + length > max_total {
                        let tag = tag.into_static();
                        if mode == LiteralMode::NonSync {
                            // The client sends it anyway: we cannot resync.
                            self.status(Status::bye(Some(Code::TooBig), "literal too big"));
                            return Err(ConnError::Closed);
                        }
                        self.no(&tag, Some(Code::TooBig), "literal too big");
                        return Ok(None);
                    }
                    if mode == LiteralMode::Sync {
                        if let Ok(c) =
                            imap_codec::imap_types::response::CommandContinuationRequest::basic(
                                None, "ready",
                            )
                        {
                            self.send(&Response::CommandContinuationRequest(c));
                        }
                    }
                    let data = self.conn.read_exact(length, IDLE_LOGOUT).await?;
                    buf.extend_from_slice(&data);
                }
                Err(CommandDecodeError::Incomplete) | Err(CommandDecodeError::Failed) => {
                    // Answer with the tag when one can be read.
                    let tag = buf
                        .split(|&b| b == b' ' || b == b'\r')
                        .next()
                        .and_then(|t| Tag::try_from(t.to_vec()).ok());
                    match tag {
                        Some(t) => self.bad(&t, "syntax error"),
                        None => {
                            self.status(Status::bad(None, None, "syntax error"));
                        }
                    }
                    return Ok(None);
                }
            }
        }
    }

    /// Dispatch one command.
    async fn command(&mut self, cmd: Command<'static>) -> Next {
        let tag = cmd.tag.clone();
        let authed = self.user.is_some();
        use CommandBody as C;
        match cmd.body {
            C::StartTLS => auth::starttls(self, &tag).await,
            C::Login { username, password } if !authed => {
                auth::login(
                    self,
                    &tag,
                    username.as_ref(),
                    password.declassify().as_ref(),
                )
                .await
            }
            C::Authenticate {
                mechanism,
                initial_response,
            } if !authed => {
                let ir = initial_response.map(|r| r.declassify().to_vec());
                auth::authenticate(self, &tag, &mechanism, ir).await
            }
            C::Idle if authed => idle::idle(self, &tag).await,
            body => {
                // Everything else is file work (sync, fsync, reads): off the
                // async workers where the runtime allows it.
                blocking(|| self.sync_command(&tag, body))
            }
        }
    }

    /// The commands that need no awaiting. A command that changes a mailbox is
    /// refused while this server may not write (replication, issue 16: another
    /// server writes, or the writer lease lapsed), and announced to followers
    /// when it ran.
    fn sync_command(&mut self, tag: &Tag<'static>, body: CommandBody<'static>) -> Next {
        use CommandBody as C;
        let authed = self.user.is_some();
        let writes = matches!(
            body,
            C::Create { .. }
                | C::Delete { .. }
                | C::Rename { .. }
                | C::Append { .. }
                | C::Expunge
                | C::ExpungeUid { .. }
                | C::Store { .. }
                | C::Copy { .. }
                | C::Move { .. }
        );
        if authed && writes {
            if let Err(why) = self.shared.repl.check() {
                let text = format!("mailbox is read-only on this server now ({why}), try again");
                self.no(tag, Some(code("UNAVAILABLE")), &text);
                return Next::Continue;
            }
        }
        let close = matches!(body, C::Close);
        let next = self.sync_command_inner(tag, body);
        if authed && (writes || close) {
            if let Some(u) = &self.user {
                self.shared.touched(&u.root);
            }
        }
        next
    }

    fn sync_command_inner(&mut self, tag: &Tag<'static>, body: CommandBody<'static>) -> Next {
        let tag = tag.clone();
        let authed = self.user.is_some();
        let selected = self.selected.is_some();
        use CommandBody as C;
        match body {
            C::Capability => auth::capability(self, &tag),
            C::Noop | C::Check => {
                if selected {
                    self.refresh(true);
                }
                self.ok(&tag, None, "done");
            }
            C::Logout => {
                self.bye("logging out");
                self.ok(&tag, None, "bye");
                return Next::Close;
            }
            C::Id { .. } => {
                let params = vec![(
                    imap_codec::imap_types::core::IString::try_from("name").ok(),
                    imap_codec::imap_types::core::NString::try_from("hostplane").ok(),
                )];
                let parameters: Option<Vec<_>> =
                    params.into_iter().map(|(k, v)| Some((k?, v?))).collect();
                self.data(Data::Id { parameters });
                self.ok(&tag, None, "ID done");
            }
            C::Login { .. } | C::Authenticate { .. } => self.bad(&tag, "already logged in"),
            _ if !authed => self.bad(&tag, "log in first"),
            C::Enable { capabilities } => mailbox::enable(self, &tag, capabilities.as_ref()),
            C::Namespace => mailbox::namespace(self, &tag),
            C::Select { mailbox } => mailbox::select(self, &tag, &mailbox, false),
            C::Examine { mailbox } => mailbox::select(self, &tag, &mailbox, true),
            C::Create { mailbox } => mailbox::create(self, &tag, &mailbox),
            C::Delete { mailbox } => mailbox::delete(self, &tag, &mailbox),
            C::Rename { from, to } => mailbox::rename(self, &tag, &from, &to),
            C::Subscribe { mailbox } => mailbox::subscribe(self, &tag, &mailbox, true),
            C::Unsubscribe { mailbox } => mailbox::subscribe(self, &tag, &mailbox, false),
            C::List {
                reference,
                mailbox_wildcard,
            } => mailbox::list(
                self,
                &tag,
                &reference,
                &list_bytes(&mailbox_wildcard),
                false,
            ),
            C::Lsub {
                reference,
                mailbox_wildcard,
            } => mailbox::list(self, &tag, &reference, &list_bytes(&mailbox_wildcard), true),
            C::Status {
                mailbox,
                item_names,
            } => mailbox::status(self, &tag, &mailbox, &item_names),
            C::Append {
                mailbox,
                flags,
                date,
                message,
            } => {
                use imap_codec::imap_types::extensions::binary::LiteralOrLiteral8 as L;
                let data = match &message {
                    L::Literal(l) => l.data().to_vec(),
                    L::Literal8(l) => l.data.to_vec(),
                };
                append::append(self, &tag, &mailbox, &flags, date.as_ref(), &data)
            }
            C::GetQuotaRoot { mailbox } => mailbox::quota_root(self, &tag, &mailbox),
            C::GetQuota { root } => mailbox::quota(self, &tag, root.as_ref()),
            _ if !selected => self.bad(&tag, "select a mailbox first"),
            C::Unselect => {
                self.selected = None;
                self.ok(&tag, None, "unselected");
            }
            C::Close => {
                if !self.selected.as_ref().is_some_and(|s| s.read_only)
                    && self.shared.repl.check().is_ok()
                {
                    store::remove_deleted(self, None);
                }
                self.selected = None;
                self.ok(&tag, None, "closed");
            }
            C::Expunge => store::expunge(self, &tag, None),
            C::ExpungeUid { sequence_set } => store::expunge(self, &tag, Some(&sequence_set)),
            C::Fetch {
                sequence_set,
                macro_or_item_names,
                uid,
                ..
            } => fetch::fetch(self, &tag, &sequence_set, &macro_or_item_names, uid),
            C::Store {
                sequence_set,
                kind,
                response,
                flags,
                uid,
                ..
            } => store::store(self, &tag, &sequence_set, &kind, &response, &flags, uid),
            C::Copy {
                sequence_set,
                mailbox,
                uid,
            } => store::copy(self, &tag, &sequence_set, &mailbox, uid, false),
            C::Move {
                sequence_set,
                mailbox,
                uid,
            } => store::copy(self, &tag, &sequence_set, &mailbox, uid, true),
            C::Search { criteria, uid, .. } => {
                let keys = criteria.into_inner();
                let key = if keys.len() == 1 {
                    keys.into_iter().next().unwrap_or(SearchKey::All)
                } else {
                    Vec1::try_from(keys)
                        .map(SearchKey::And)
                        .unwrap_or(SearchKey::All)
                };
                search::search(self, &tag, &key, uid)
            }
            _ => self.bad(&tag, "command not supported"),
        }
        Next::Continue
    }

    /// The Unicode name of `mailbox` as the client sent it (modified UTF-7 unless
    /// UTF8=ACCEPT is on); `None` when it does not decode (a NO was sent).
    pub fn mailbox_name(&mut self, tag: &Tag<'_>, mailbox: &Mailbox<'_>) -> Option<String> {
        let raw = match mailbox {
            Mailbox::Inbox => return Some("INBOX".into()),
            Mailbox::Other(o) => o.as_ref().to_vec(),
        };
        let text = String::from_utf8(raw).ok();
        let name = match text {
            Some(t) if self.utf8 => Some(t),
            Some(t) => names::decode(&t).ok(),
            None => None,
        };
        if name.is_none() {
            self.no(tag, None, "bad mailbox name encoding");
        }
        name
    }

    /// `name` as the client should see it.
    pub fn wire_name(&self, name: &str) -> Option<Mailbox<'static>> {
        if names::is_inbox(name) {
            return Some(Mailbox::Inbox);
        }
        let s = if self.utf8 {
            name.to_string()
        } else {
            names::encode(name)
        };
        Mailbox::try_from(s).ok()
    }

    /// The folder directory of `name` for the logged-in user (checked).
    pub fn folder_dir(&self, name: &str) -> Option<PathBuf> {
        let root = &self.user.as_ref()?.root;
        names::folder_dir(root, name).ok()
    }

    /// Keyword table of the user.
    pub fn keyword_table(&self) -> Vec<String> {
        self.user
            .as_ref()
            .map(|u| uidlist::keywords(&u.root))
            .unwrap_or_default()
    }

    /// Bring the selected view up to date, announcing new messages, flag changes
    /// and (when `expunges` is allowed) removed messages.
    pub fn refresh(&mut self, expunges: bool) {
        let Some(dir) = self.selected.as_ref().map(|s| s.folder.dir.clone()) else {
            return;
        };
        if !dir.join("cur").is_dir() {
            // deleted or renamed by another session: nothing is left to show
            self.selected = None;
            self.bye_selected();
            return;
        }
        let since = self.selected.as_ref().map_or(0, |s| s.version);
        let (folder, version) = match self.shared.imap.sync_since(&dir, since) {
            Ok(Some(f)) => f,
            Ok(None) => return,
            Err(e) => {
                tracing::warn!(error = %e, "imap folder sync failed");
                return;
            }
        };
        let table = self.keyword_table();
        let Some(sel) = self.selected.as_mut() else {
            return;
        };
        // Without expunges (FETCH, STORE, SEARCH may not announce them) the view
        // may still hold expunged messages: keep the old version so the next
        // refresh that may announce them looks again.
        if expunges {
            sel.version = version;
        }
        let now: HashMap<u32, &uidlist::Msg> = folder.msgs.iter().map(|m| (m.uid, m)).collect();
        let mut out: Vec<Data<'static>> = Vec::new();
        if expunges {
            let mut i = sel.view.len();
            while i > 0 {
                i -= 1;
                if !now.contains_key(&sel.view[i].uid) {
                    sel.view.remove(i);
                    if let Some(n) = NonZeroU32::new(i as u32 + 1) {
                        out.push(Data::Expunge(n));
                    }
                }
            }
        }
        for (i, seen) in sel.view.iter_mut().enumerate() {
            if let Some(m) = now.get(&seen.uid) {
                let flags = uidlist::names_of(m.letters(), &table);
                if flags != seen.flags {
                    seen.flags = flags;
                    if let (Some(seq), Some(items)) = (
                        NonZeroU32::new(i as u32 + 1),
                        flag_items(&seen.flags, Some(seen.uid)),
                    ) {
                        out.push(Data::Fetch { seq, items });
                    }
                }
            }
        }
        let last = sel.view.last().map(|s| s.uid).unwrap_or(0);
        let before = sel.view.len();
        for m in folder.msgs.iter().filter(|m| m.uid > last) {
            sel.view.push(Seen {
                uid: m.uid,
                flags: uidlist::names_of(m.letters(), &table),
            });
        }
        if sel.view.len() != before {
            out.push(Data::Exists(sel.view.len() as u32));
            out.push(Data::Recent(0));
        }
        sel.folder = folder;
        for d in out {
            self.data(d);
        }
    }
}

/// A response code that `imap-types` has no variant for (RFC 5530 codes).
pub(crate) fn code(name: &'static str) -> Code<'static> {
    Code::Other(imap_codec::imap_types::response::CodeOther::unvalidated(
        name.as_bytes(),
    ))
}

/// The IMAP flag of a flag name.
pub(crate) fn to_flag(name: &str) -> Option<Flag<'static>> {
    use imap_codec::imap_types::IntoStatic;
    Flag::try_from(name).ok().map(IntoStatic::into_static)
}

/// The flag name of an IMAP flag (`None`: not storable, e.g. `\Recent`).
pub(crate) fn flag_name(f: &Flag<'_>) -> Option<String> {
    let s = f.to_string();
    if s.eq_ignore_ascii_case("\\Recent") || s == "\\*" {
        return None;
    }
    Some(s)
}

/// `FLAGS (...)` (and `UID n`) as fetch items.
pub(crate) fn flag_items(
    flags: &BTreeSet<String>,
    uid: Option<u32>,
) -> Option<Vec1<MessageDataItem<'static>>> {
    let f: Vec<FlagFetch<'static>> = flags
        .iter()
        .filter_map(|n| to_flag(n))
        .map(FlagFetch::Flag)
        .collect();
    let mut items = vec![MessageDataItem::Flags(f)];
    if let Some(u) = uid.and_then(NonZeroU32::new) {
        items.push(MessageDataItem::Uid(u));
    }
    Vec1::try_from(items).ok()
}
