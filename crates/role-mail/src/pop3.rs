//! POP3 (RFC 1939) with CAPA (RFC 2449) and STLS (RFC 2595): USER/PASS (only
//! over TLS when the server has a certificate, so passwords never cross in clear) against
//! the mailbox accounts (only one's own Maildir is ever opened), an exclusive
//! maildrop lock per mailbox, STAT, LIST, UIDL, TOP, RETR, DELE, RSET, NOOP, and
//! QUIT, which removes the messages marked deleted (UPDATE state).

use std::net::SocketAddr;
use std::sync::Arc;

use crate::accounts;
use crate::conn::{Conn, ConnError, Io, LineEnd};
use crate::maildir::{self, Entry};
use crate::server::{DropLock, Shared};

/// Failed logins before the connection is dropped.
const MAX_AUTH_FAILURES: u32 = 3;

struct Mailbox {
    entries: Vec<Entry>,
    deleted: Vec<bool>,
    _lock: DropLock,
}

struct Pop3 {
    shared: Arc<Shared>,
    peer: SocketAddr,
    conn: Conn,
    tls: bool,
    user: Option<String>,
    mailbox: Option<Mailbox>,
    failures: u32,
}

/// Run a POP3 session on `io`.
pub async fn run(shared: Arc<Shared>, io: Box<dyn Io>, peer: SocketAddr, tls: bool) {
    let mut s = Pop3 {
        shared,
        peer,
        conn: Conn::new(io),
        tls,
        user: None,
        mailbox: None,
        failures: 0,
    };
    s.ok("hostplane POP3 ready");
    loop {
        let timeout = s.shared.limits.command_timeout;
        let line = match s.conn.read_line(512, timeout).await {
            Ok(l) => l,
            Err(ConnError::Timeout) => {
                s.err("timeout");
                break;
            }
            Err(_) => break,
        };
        if line.overlong || line.end != LineEnd::Crlf || line.bare_cr {
            s.err("bad command line");
            continue;
        }
        let text = String::from_utf8_lossy(&line.bytes).into_owned();
        if !s.command(&text).await {
            break;
        }
    }
    s.conn.close().await;
}

impl Pop3 {
    fn ok(&mut self, text: &str) {
        self.conn.send(format!("+OK {text}\r\n").as_bytes());
    }

    fn err(&mut self, text: &str) {
        self.conn.send(format!("-ERR {text}\r\n").as_bytes());
    }

    /// Handle one command; `false` ends the session.
    async fn command(&mut self, line: &str) -> bool {
        let mut parts = line.splitn(2, ' ');
        let verb = parts.next().unwrap_or("").to_ascii_uppercase();
        let arg = parts.next().unwrap_or("").to_string();
        if self.mailbox.is_some() {
            return self.transaction(&verb, &arg);
        }
        match verb.as_str() {
            "CAPA" => self.capa(),
            "STLS" => return self.stls().await,
            "USER" | "PASS" if self.must_stls() => {
                self.err("[AUTH] plaintext login needs STLS first");
            }
            "USER" => {
                if arg.is_empty() {
                    self.err("USER needs a name");
                } else {
                    self.user = Some(arg);
                    self.ok("send PASS");
                }
            }
            "PASS" => return self.pass(&arg).await,
            "QUIT" => {
                self.ok("bye");
                return false;
            }
            "NOOP" => self.err("log in first"),
            _ => self.err("unknown command or not logged in"),
        }
        true
    }

    fn capa(&mut self) {
        let mut caps = vec!["TOP", "UIDL", "RESP-CODES", "AUTH-RESP-CODE", "PIPELINING"];
        if self.mailbox.is_none() {
            if self.must_stls() {
                caps.push("STLS");
            } else {
                caps.push("USER");
            }
        }
        caps.push("IMPLEMENTATION hostplane");
        self.ok("capability list follows");
        for c in caps {
            self.conn.send(c.as_bytes());
            self.conn.send(b"\r\n");
        }
        self.conn.send(b".\r\n");
    }

    /// Whether a cleartext login must wait for STLS (TLS is available but off).
    fn must_stls(&self) -> bool {
        !self.tls && self.shared.live().tls.is_some()
    }

    async fn stls(&mut self) -> bool {
        if self.tls {
            self.err("TLS already active");
            return true;
        }
        let Some(acceptor) = self.shared.live().tls.clone() else {
            self.err("TLS not available");
            return true;
        };
        self.ok("begin TLS negotiation");
        let timeout = self.shared.limits.command_timeout;
        if self.conn.upgrade(&acceptor, timeout).await.is_err() {
            return false;
        }
        self.tls = true;
        self.user = None;
        true
    }

    async fn pass(&mut self, password: &str) -> bool {
        let Some(user) = self.user.take() else {
            self.err("USER first");
            return true;
        };
        let plan = self.shared.live().plan.clone();
        let throttle = &self.shared.logins;
        let address = match accounts::login(throttle, self.peer.ip(), plan, &user, password).await {
            accounts::Login::Ok(a) => a,
            accounts::Login::Wrong => {
                self.failures += 1;
                self.err("[AUTH] invalid login");
                return self.failures < MAX_AUTH_FAILURES;
            }
            accounts::Login::Throttled(secs) => {
                // RFC 3206: a temporary condition, not a credentials problem.
                self.failures += 1;
                self.err(&format!(
                    "[SYS/TEMP] too many failed logins for this mailbox from your address; try again in {secs} s"
                ));
                return self.failures < MAX_AUTH_FAILURES;
            }
        };
        let Some((local, domain)) = crate::plan::split_address(&address) else {
            self.err("[SYS/PERM] bad mailbox");
            return true;
        };
        let dir = maildir::maildir_path(&self.shared.state_dir, &domain, &local);
        let Some(lock) = self.shared.lock_maildrop(dir.clone()) else {
            self.err("[IN-USE] maildrop already locked");
            return true;
        };
        let listing = tokio::task::spawn_blocking(move || maildir::take_listing(&dir)).await;
        match listing {
            Ok(Ok(entries)) => {
                let n = entries.len();
                let size: u64 = entries.iter().map(|e| e.size).sum();
                self.mailbox = Some(Mailbox {
                    deleted: vec![false; n],
                    entries,
                    _lock: lock,
                });
                self.ok(&format!("maildrop has {n} messages ({size} octets)"));
            }
            _ => self.err("[SYS/TEMP] cannot open maildrop"),
        }
        true
    }

    /// Message `arg` (1-based) that is not deleted.
    fn msg(&self, arg: &str) -> Option<(usize, &Entry)> {
        let mb = self.mailbox.as_ref()?;
        let n: usize = arg.split_whitespace().next()?.parse().ok()?;
        let i = n.checked_sub(1)?;
        let e = mb.entries.get(i)?;
        (!mb.deleted[i]).then_some((n, e))
    }

    fn transaction(&mut self, verb: &str, arg: &str) -> bool {
        match verb {
            "STAT" => {
                let (n, size) = self.totals();
                self.ok(&format!("{n} {size}"));
            }
            "LIST" | "UIDL" => self.list(verb == "UIDL", arg),
            "RETR" => self.retr(arg, None),
            "TOP" => {
                let mut it = arg.split_whitespace();
                let (m, n) = (
                    it.next().unwrap_or(""),
                    it.next().and_then(|n| n.parse().ok()),
                );
                match n {
                    Some(n) => self.retr(m, Some(n)),
                    None => self.err("TOP msg n"),
                }
            }
            "DELE" => match self.msg(arg).map(|(n, _)| n) {
                Some(_) if self.shared.repl.check().is_err() => {
                    self.err("[SYS/TEMP] mailbox is read-only on this server now, try again later");
                }
                Some(n) => {
                    if let Some(mb) = self.mailbox.as_mut() {
                        mb.deleted[n - 1] = true;
                    }
                    self.ok(&format!("message {n} deleted"));
                }
                None => self.err("no such message"),
            },
            "RSET" => {
                if let Some(mb) = self.mailbox.as_mut() {
                    mb.deleted.iter_mut().for_each(|d| *d = false);
                }
                self.ok("reset");
            }
            "NOOP" => self.ok(""),
            "CAPA" => self.capa(),
            "QUIT" => {
                self.update();
                return false;
            }
            _ => self.err("unknown command"),
        }
        true
    }

    fn totals(&self) -> (usize, u64) {
        self.mailbox
            .as_ref()
            .map(|mb| {
                mb.entries
                    .iter()
                    .zip(&mb.deleted)
                    .filter(|(_, d)| !**d)
                    .fold((0, 0), |(n, s), (e, _)| (n + 1, s + e.size))
            })
            .unwrap_or((0, 0))
    }

    fn list(&mut self, uidl: bool, arg: &str) {
        let field = |e: &Entry| {
            if uidl {
                e.uid.clone()
            } else {
                e.size.to_string()
            }
        };
        if !arg.is_empty() {
            match self.msg(arg).map(|(n, e)| (n, field(e))) {
                Some((n, f)) => self.ok(&format!("{n} {f}")),
                None => self.err("no such message"),
            }
            return;
        }
        let lines: Vec<String> = self
            .mailbox
            .as_ref()
            .map(|mb| {
                mb.entries
                    .iter()
                    .zip(&mb.deleted)
                    .enumerate()
                    .filter(|(_, (_, d))| !**d)
                    .map(|(i, (e, _))| format!("{} {}\r\n", i + 1, field(e)))
                    .collect()
            })
            .unwrap_or_default();
        let (n, size) = self.totals();
        self.ok(&format!("{n} messages ({size} octets)"));
        for l in lines {
            self.conn.send(l.as_bytes());
        }
        self.conn.send(b".\r\n");
    }

    fn retr(&mut self, arg: &str, top: Option<usize>) {
        let Some(path) = self.msg(arg).map(|(_, e)| e.path.clone()) else {
            self.err("no such message");
            return;
        };
        let data = match maildir::read_crlf(&path) {
            Ok(d) => d,
            Err(_) => {
                self.err("[SYS/TEMP] cannot read message");
                return;
            }
        };
        let data = match top {
            Some(n) => head_and_lines(&data, n),
            None => data,
        };
        self.ok(&format!("{} octets", data.len()));
        self.conn.send(&crate::client::dot_stuff(&data));
    }

    /// UPDATE state: remove what was marked.
    fn update(&mut self) {
        let Some(mb) = self.mailbox.take() else {
            self.ok("bye");
            return;
        };
        let doomed: Vec<&std::path::Path> = mb
            .entries
            .iter()
            .zip(&mb.deleted)
            .filter(|(_, d)| **d)
            .map(|(e, _)| e.path.as_path())
            .collect();
        if doomed.is_empty() {
            self.ok("bye");
            return;
        }
        if self.shared.repl.check().is_err() {
            // the lease ended during the session: nothing is removed
            self.err("[SYS/TEMP] mailbox is read-only on this server now; nothing deleted");
            return;
        }
        let root = doomed[0]
            .parent()
            .and_then(std::path::Path::parent)
            .map(std::path::Path::to_path_buf);
        let failed = maildir::remove(&doomed);
        if let Some(root) = root {
            self.shared.imap.changed(&root);
            self.shared.touched(&root);
        }
        if failed == 0 {
            self.ok("bye");
        } else {
            self.err("some deleted messages not removed");
        }
    }
}

/// The header, the blank line and the first `n` body lines of `msg` (CRLF).
fn head_and_lines(msg: &[u8], n: usize) -> Vec<u8> {
    let split = msg
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map(|p| p + 4)
        .unwrap_or(msg.len());
    let mut out = msg[..split].to_vec();
    let mut lines = 0;
    let mut i = split;
    while lines < n && i < msg.len() {
        let end = msg[i..]
            .windows(2)
            .position(|w| w == b"\r\n")
            .map(|p| i + p + 2)
            .unwrap_or(msg.len());
        out.extend_from_slice(&msg[i..end]);
        i = end;
        lines += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::harness;
    use crate::server::Limits;
    use proto::agent_v1::{MailAccount, MailConfig, MailDomain};

    /// An argon2id PHC hash of `pw` (test helper).
    pub(crate) fn hash(pw: &str) -> String {
        use argon2::password_hash::{PasswordHasher, SaltString};
        let salt = SaltString::encode_b64(b"0123456789abcdef").unwrap();
        argon2::Argon2::default()
            .hash_password(pw.as_bytes(), &salt)
            .unwrap()
            .to_string()
    }

    fn cfg() -> MailConfig {
        let acc = |l: &str, pw: &str, enabled| MailAccount {
            local_part: l.into(),
            password_hash: hash(pw),
            quota_mb: 0,
            enabled,
        };
        MailConfig {
            domains: vec![MailDomain {
                domain: "example.com".into(),
                primary: true,
                mailboxes: vec!["alice".into(), "bob".into()],
                aliases: vec![],
                accounts: vec![
                    acc("alice", "alice-pw", true),
                    acc("bob", "bob-pw", true),
                    acc("off", "off-pw", false),
                ],
                primary_smtp: None,
                dkim: None,
                dkim_rsa: None,
                limits: None,
                site_login: None,
            }],
            tls: None,
            flush: 0,
            peers: Vec::new(),
            writer: None,
        }
    }

    #[tokio::test]
    async fn pop3_session_reads_and_deletes_own_mail_only() {
        let dir = tempfile::tempdir().unwrap();
        let s = harness::shared(dir.path(), &cfg(), Limits::default()).unwrap();
        let md = maildir::maildir_path(dir.path(), "example.com", "alice");
        maildir::deliver(
            dir.path(),
            "example.com",
            "alice",
            "h",
            b"Subject: one\r\n\r\n.dot\r\nl2\r\n",
        )
        .unwrap();
        maildir::deliver(
            dir.path(),
            "example.com",
            "alice",
            "h",
            b"Subject: two\r\n\r\nb\r\n",
        )
        .unwrap();
        // bob sees nothing of alice's; wrong passwords and disabled accounts fail
        let t = harness::pop3(&s, b"USER bob@example.com\r\nPASS alice-pw\r\nUSER bob@example.com\r\nPASS bob-pw\r\nSTAT\r\nQUIT\r\n").await;
        assert!(t.contains("-ERR [AUTH]"), "{t}");
        assert!(t.contains("+OK 0 0"), "{t}");
        let t = harness::pop3(&s, b"USER off@example.com\r\nPASS off-pw\r\nQUIT\r\n").await;
        assert!(t.contains("-ERR [AUTH]"), "{t}");
        let t = harness::pop3(
            &s,
            b"CAPA\r\nUSER alice@example.com\r\nPASS alice-pw\r\nSTAT\r\nLIST\r\nUIDL 1\r\nTOP 1 0\r\nRETR 1\r\nDELE 1\r\nRETR 1\r\nSTAT\r\nQUIT\r\n",
        )
        .await;
        assert!(t.contains("TOP\r\nUIDL\r\n"), "{t}");
        assert!(t.contains("+OK 2 45\r\n"), "{t}");
        assert!(t.contains("1 26\r\n2 19\r\n.\r\n"), "{t}");
        assert!(
            t.contains("+OK 16 octets\r\nSubject: one\r\n\r\n.\r\n"),
            "{t}"
        );
        assert!(
            t.contains("Subject: one\r\n\r\n..dot\r\nl2\r\n.\r\n"),
            "{t}"
        );
        assert!(t.contains("-ERR no such message"), "{t}");
        assert!(t.contains("+OK 1 19\r\n"), "{t}");
        assert!(!t.contains(",S="), "{t}");
        let left = maildir::take_listing(&md).unwrap();
        assert_eq!(left.len(), 1);
        // without QUIT nothing is deleted
        let t = harness::pop3(&s, b"USER alice@example.com\r\nPASS alice-pw\r\nDELE 1\r\n").await;
        assert!(t.contains("+OK message 1 deleted"), "{t}");
        assert_eq!(maildir::take_listing(&md).unwrap().len(), 1);
    }

    /// The maildrop lock holds across servers sharing a state directory (as two
    /// processes would: `flock` is per open file), and never blocks IMAP.
    #[tokio::test]
    async fn pop3_lock_is_cross_process_and_leaves_imap_alone() {
        let dir = tempfile::tempdir().unwrap();
        let a = harness::shared(dir.path(), &cfg(), Limits::default()).unwrap();
        let b = harness::shared(dir.path(), &cfg(), Limits::default()).unwrap();
        let md = maildir::maildir_path(dir.path(), "example.com", "alice");
        let held = a.lock_maildrop(md.clone()).expect("first lock");
        assert!(b.lock_maildrop(md.clone()).is_none(), "other server");
        assert!(a.lock_maildrop(md.clone()).is_none(), "same server");
        let t = harness::pop3(&b, b"USER alice@example.com\r\nPASS alice-pw\r\nQUIT\r\n").await;
        assert!(t.contains("[IN-USE]"), "{t}");
        let t = crate::imap::harness::run(
            &b,
            b"a LOGIN alice@example.com alice-pw\r\nb SELECT INBOX\r\n",
        )
        .await;
        assert!(t.contains("b OK [READ-WRITE]"), "{t}");
        drop(held);
        assert!(b.lock_maildrop(md).is_some(), "released");
    }

    #[test]
    fn top_lines() {
        let m = b"A: 1\r\n\r\nl1\r\nl2\r\nl3\r\n";
        assert_eq!(head_and_lines(m, 0), b"A: 1\r\n\r\n");
        assert_eq!(head_and_lines(m, 2), b"A: 1\r\n\r\nl1\r\nl2\r\n");
        assert_eq!(head_and_lines(m, 9), m);
    }
}
