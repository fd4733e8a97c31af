//! In-memory session tests of the IMAP command families (through [`super::harness`]).

use std::sync::Arc;

use proto::agent_v1::{MailAccount, MailConfig, MailDomain};

use super::harness::run;
use crate::maildir;
use crate::server::{Limits, Shared};

fn hash(pw: &str) -> String {
    use argon2::password_hash::{PasswordHasher, SaltString};
    let salt = SaltString::encode_b64(b"0123456789abcdef").unwrap();
    argon2::Argon2::default()
        .hash_password(pw.as_bytes(), &salt)
        .unwrap()
        .to_string()
}

fn cfg() -> MailConfig {
    let acc = |l: &str, pw: &str| MailAccount {
        local_part: l.into(),
        password_hash: hash(pw),
        quota_mb: 1,
        enabled: true,
    };
    MailConfig {
        domains: vec![MailDomain {
            domain: "example.com".into(),
            primary: true,
            mailboxes: vec!["alice".into(), "bob".into()],
            aliases: vec![],
            accounts: vec![acc("alice", "alice-pw"), acc("bob", "bob-pw")],
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

fn setup() -> (tempfile::TempDir, Arc<Shared>) {
    let dir = tempfile::tempdir().unwrap();
    let s = crate::harness::shared(dir.path(), &cfg(), Limits::default()).unwrap();
    (dir, s)
}

const LOGIN: &str = "a LOGIN alice@example.com alice-pw\r\n";

const MIXED: &[u8] = b"From: Bob Example <bob@example.com>\r\nTo: alice@example.com\r\nSubject: nested\r\nDate: Mon, 7 Dec 2026 10:00:00 +0000\r\nMessage-ID: <m1@example.com>\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"outer\"\r\n\r\n--outer\r\nContent-Type: multipart/alternative; boundary=\"inner\"\r\n\r\n--inner\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nhello plain zebra\r\n--inner\r\nContent-Type: text/html; charset=utf-8\r\n\r\n<p>hello html</p>\r\n--inner--\r\n--outer\r\nContent-Type: application/octet-stream; name=\"a.bin\"\r\nContent-Disposition: attachment; filename=\"a.bin\"\r\nContent-Transfer-Encoding: base64\r\n\r\nAAEC\r\n--outer--\r\n";

#[tokio::test]
async fn capability_login_and_failures() {
    let (_d, s) = setup();
    let t = run(&s, b"c CAPABILITY\r\nx LOGIN alice@example.com wrong\r\nb LOGIN bob@example.com bob-pw\r\nl LOGOUT\r\n").await;
    assert!(
        t.starts_with("* OK [CAPABILITY IMAP4REV1 AUTH=PLAIN"),
        "{t}"
    );
    assert!(
        t.contains("IDLE") && t.contains("UIDPLUS") && t.contains("MOVE"),
        "{t}"
    );
    assert!(t.contains("x NO [AUTHENTICATIONFAILED]"), "{t}");
    assert!(t.contains("b OK [CAPABILITY"), "{t}");
    assert!(t.contains("l OK"), "{t}");
    // AUTHENTICATE PLAIN with SASL-IR and without
    let t = run(
        &s,
        b"a AUTHENTICATE PLAIN AGFsaWNlQGV4YW1wbGUuY29tAGFsaWNlLXB3\r\n",
    )
    .await;
    assert!(t.contains("a OK [CAPABILITY"), "{t}");
    let t = run(
        &s,
        b"a AUTHENTICATE PLAIN\r\nAGFsaWNlQGV4YW1wbGUuY29tAGFsaWNlLXB3\r\n",
    )
    .await;
    assert!(t.contains("+ \r\n") || t.contains("+\r\n"), "{t}");
    assert!(t.contains("a OK [CAPABILITY"), "{t}");
    let t = run(&s, b"a SELECT INBOX\r\n").await;
    assert!(t.contains("a BAD"), "{t}");
}

#[tokio::test]
async fn list_special_use_create_rename_delete_and_confinement() {
    let (d, s) = setup();
    let script = format!(
        "{LOGIN}l LIST \"\" \"*\"\r\nc CREATE \"Projekt&AOQ-\"\r\nc1 CREATE A\r\nc2 CREATE A.B\r\nr RENAME A Z\r\nl2 LIST \"\" %\r\nst STATUS Sent (MESSAGES UIDNEXT UIDVALIDITY UNSEEN)\r\nsu SUBSCRIBE Z\r\nls LSUB \"\" *\r\nd DELETE Z\r\nn NAMESPACE\r\n"
    );
    let t = run(&s, script.as_bytes()).await;
    for name in ["Sent", "Drafts", "Trash", "Junk", "Archive"] {
        assert!(
            t.contains(&format!("(\\{name}) \".\" {name}\r\n")),
            "{name}: {t}"
        );
    }
    assert!(
        t.contains("c OK") && t.contains("c2 OK") && t.contains("r OK"),
        "{t}"
    );
    assert!(
        t.contains("\"Projekt&AOQ-\"") || t.contains(" Projekt&AOQ-\r\n"),
        "{t}"
    );
    assert!(
        t.contains("* STATUS Sent (MESSAGES 0 UIDNEXT 1 UIDVALIDITY"),
        "{t}"
    );
    assert!(t.contains("* LSUB () \".\" Z\r\n"), "{t}");
    assert!(t.contains("d OK"), "{t}");
    assert!(t.contains("* NAMESPACE ((\"\" \".\")) NIL NIL"), "{t}");
    let md = maildir::maildir_path(d.path(), "example.com", "alice");
    assert!(md.join(".Projekt&AOQ-").join("cur").is_dir());
    assert!(!md.join(".Z").exists() && !md.join(".A").exists());
    // every command naming a mailbox, with traversal tricks
    let bob = maildir::maildir_path(d.path(), "example.com", "bob");
    std::fs::create_dir_all(bob.join("cur")).unwrap();
    let tricks = [
        "..",
        "../bob",
        "/etc",
        "%",
        "*",
        "&AC4ALg-",
        "&AC4ALg-&AC8-bob",
        "a/b",
        ".Sent",
        "A..B",
        "&AC8-",
        "../../example.com/bob/Maildir",
    ];
    for trick in tricks {
        let q = format!("\"{trick}\"");
        let script = format!(
            "{LOGIN}s SELECT {q}\r\ne EXAMINE {q}\r\nc CREATE {q}\r\nd DELETE {q}\r\nr RENAME Sent {q}\r\nr2 RENAME {q} X\r\nu SUBSCRIBE {q}\r\nst STATUS {q} (MESSAGES)\r\nap APPEND {q} {{3+}}\r\nabc\r\nsel SELECT INBOX\r\ncp COPY 1:* {q}\r\nmv MOVE 1:* {q}\r\nq GETQUOTAROOT {q}\r\n"
        );
        let t = run(&s, script.as_bytes()).await;
        for tag in ["s", "e", "c", "d", "r", "r2", "u", "st", "ap", "q"] {
            assert!(
                t.contains(&format!("\r\n{tag} NO")) || t.contains(&format!("\r\n{tag} BAD")),
                "{trick} {tag}: {t}"
            );
        }
        assert!(
            !t.contains("cp OK") || !t.contains("COPYUID"),
            "{trick}: {t}"
        );
    }
    assert_eq!(
        std::fs::read_dir(&bob).unwrap().count(),
        1,
        "bob's maildir untouched"
    );
    assert!(!d.path().join("mail/example.com/etc").exists());
    let names: Vec<String> = std::fs::read_dir(&md)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        names.iter().all(|n| !n.contains('/') && n != ".."),
        "{names:?}"
    );
}

#[tokio::test]
async fn fetch_store_search_expunge_with_persistent_uids() {
    let (d, s) = setup();
    let root = d.path();
    maildir::deliver(root, "example.com", "alice", "h", MIXED).unwrap();
    maildir::deliver(
        root,
        "example.com",
        "alice",
        "h",
        b"From: c@example.net\r\nSubject: second\r\n\r\nbody two\r\n",
    )
    .unwrap();
    let script = format!(
        "{LOGIN}s SELECT INBOX\r\nf FETCH 1:* (UID FLAGS RFC822.SIZE ENVELOPE BODYSTRUCTURE)\r\np FETCH 1 (BODY.PEEK[1.1] BODY.PEEK[HEADER.FIELDS (Subject)] BODY.PEEK[TEXT]<0.7>)\r\nf2 FETCH 1 FLAGS\r\nb FETCH 2 BODY[]\r\nst STORE 1 +FLAGS ($Forwarded \\Flagged)\r\nse SEARCH TEXT zebra\r\nse2 UID SEARCH UNSEEN\r\nse3 SEARCH SUBJECT second FLAGGED\r\nse4 SEARCH OR FROM bob KEYWORD $Forwarded\r\nd STORE 2 +FLAGS.SILENT (\\Deleted)\r\nx EXPUNGE\r\nu UID FETCH 1:* (FLAGS)\r\n"
    );
    let t = run(&s, script.as_bytes()).await;
    assert!(t.contains("* 2 EXISTS"), "{t}");
    assert!(
        t.contains("[PERMANENTFLAGS (") && t.contains("\\*)]"),
        "{t}"
    );
    assert!(t.contains("s OK [READ-WRITE]"), "{t}");
    // nested multipart: (alternative (text plain) (text html)) then the attachment
    assert!(
        t.to_ascii_lowercase()
            .contains("bodystructure (((\"text\" \"plain\""),
        "{t}"
    );
    assert!(t.to_ascii_lowercase().contains("\"alternative\""), "{t}");
    assert!(
        t.contains("(\"attachment\" (\"FILENAME\" \"a.bin\"))"),
        "{t}"
    );
    assert!(t.to_ascii_lowercase().contains("\"mixed\""), "{t}");
    assert!(t.contains("ENVELOPE (\"Mon, 7 Dec 2026 10:00:00 +0000\" \"nested\" ((\"Bob Example\" NIL \"bob\" \"example.com\"))"), "{t}");
    assert!(t.contains("hello plain zebra"), "{t}");
    assert!(
        t.contains("BODY[HEADER.FIELDS (Subject)] {19}\r\nSubject: nested\r\n\r\n")
            || t.contains("BODY[HEADER.FIELDS (\"Subject\")] {19}"),
        "{t}"
    );
    assert!(t.contains("BODY[TEXT]<0> {7}\r\n--outer"), "{t}");
    assert!(
        t.contains("* 1 FETCH (FLAGS ())"),
        "peek leaves unseen: {t}"
    );
    assert!(t.contains("body two"), "{t}");
    assert!(t.contains("* 2 FETCH (") && t.contains("\\Seen"), "{t}");
    assert!(
        t.contains("* 1 FETCH (FLAGS ($Forwarded \\Flagged))"),
        "{t}"
    );
    assert!(t.contains("* SEARCH 1\r\nse OK"), "{t}");
    assert!(t.contains("* SEARCH 1\r\nse2 OK"), "{t}");
    assert!(t.contains("* SEARCH\r\nse3 OK"), "{t}");
    assert!(
        t.contains("* SEARCH 1 2\r\nse4 OK") || t.contains("* SEARCH 1\r\nse4 OK"),
        "{t}"
    );
    assert!(t.contains("* 2 EXPUNGE\r\nx OK"), "{t}");
    assert!(
        t.contains("* 1 FETCH (UID 1 FLAGS ($Forwarded \\Flagged))"),
        "{t}"
    );
    // UIDs and UIDVALIDITY survive a new session
    maildir::deliver(
        root,
        "example.com",
        "alice",
        "h",
        b"Subject: third\r\n\r\n3\r\n",
    )
    .unwrap();
    let t = run(&s, format!("{LOGIN}u UID FETCH 1:* (UID)\r\n").as_bytes()).await;
    assert!(t.contains("u BAD"), "{t}");
    let t = run(
        &s,
        format!(
            "{LOGIN}s EXAMINE INBOX\r\nu UID FETCH 1:* (UID)\r\nst STORE 1 +FLAGS (\\Seen)\r\n"
        )
        .as_bytes(),
    )
    .await;
    assert!(t.contains("* 1 FETCH (UID 1)\r\n* 2 FETCH (UID 3)"), "{t}");
    assert!(t.contains("[UIDNEXT 4]"), "{t}");
    assert!(t.contains("st NO [READ-ONLY]"), "{t}");
}

#[tokio::test]
async fn append_copy_move_with_uidplus() {
    let (_d, s) = setup();
    let script = format!(
        "{LOGIN}a APPEND Drafts (\\Draft $Label1) {{23}}\r\nSubject: draft\r\n\r\nhi\r\n\r\na2 APPEND INBOX {{21+}}\r\nSubject: inbox\r\n\r\nyo\r\ns SELECT INBOX\r\nc COPY 1 Archive\r\nm UID MOVE 1 Trash\r\nn NOOP\r\nx SELECT Trash\r\nf FETCH 1 (FLAGS BODY.PEEK[HEADER.FIELDS (SUBJECT)])\r\nbig APPEND INBOX {{999999999}}\r\n"
    );
    let t = run(&s, script.as_bytes()).await;
    assert!(t.contains("+ ready"), "{t}");
    assert!(t.contains("a OK [APPENDUID "), "{t}");
    assert!(
        t.contains("a2 OK [APPENDUID ") && t.contains(" 1] APPEND"),
        "{t}"
    );
    assert!(
        t.contains("c OK [COPYUID ") && t.contains(" 1 1] COPY"),
        "{t}"
    );
    assert!(
        t.contains("* OK [COPYUID ") && t.contains("* 1 EXPUNGE\r\nm OK"),
        "{t}"
    );
    assert!(t.contains("Subject: inbox"), "{t}");
    assert!(t.contains("big NO [TOOBIG]"), "{t}");
}

#[tokio::test]
async fn idle_wakes_on_delivery_and_other_sessions() {
    let (d, s) = setup();
    let (server, client) = tokio::io::duplex(1 << 16);
    let peer = std::net::SocketAddr::from(([192, 0, 2, 1], 1));
    let task = tokio::spawn(super::run(Arc::clone(&s), Box::new(server), peer, false));
    let (rd, mut wr) = tokio::io::split(client);
    let mut rd = tokio::io::BufReader::new(rd);
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt};
    let mut line = String::new();
    async fn until(
        rd: &mut (impl AsyncBufReadExt + Unpin),
        line: &mut String,
        want: &str,
    ) -> String {
        let mut all = String::new();
        loop {
            line.clear();
            if rd.read_line(line).await.unwrap() == 0 {
                panic!("closed before {want}: {all}");
            }
            all.push_str(line);
            if line.contains(want) {
                return all;
            }
        }
    }
    wr.write_all(format!("{LOGIN}s SELECT INBOX\r\ni IDLE\r\n").as_bytes())
        .await
        .unwrap();
    until(&mut rd, &mut line, "+ idling").await;
    // a delivery through the SMTP path's notifier
    maildir::deliver(
        d.path(),
        "example.com",
        "alice",
        "h",
        b"Subject: x\r\n\r\n1\r\n",
    )
    .unwrap();
    s.imap
        .changed(&maildir::maildir_path(d.path(), "example.com", "alice"));
    until(&mut rd, &mut line, "* 1 EXISTS").await;
    // another session's flag change
    let t = run(
        &s,
        format!("{LOGIN}s SELECT INBOX\r\nst STORE 1 +FLAGS (\\Flagged)\r\n").as_bytes(),
    )
    .await;
    assert!(t.contains("st OK"), "{t}");
    until(&mut rd, &mut line, "\\Flagged").await;
    wr.write_all(b"DONE\r\nl LOGOUT\r\n").await.unwrap();
    until(&mut rd, &mut line, "i OK").await;
    until(&mut rd, &mut line, "l OK").await;
    let _ = task.await;
}

#[tokio::test]
async fn limits_on_lines_and_literals() {
    let (_d, s) = setup();
    let long = format!("a NOOP {}\r\nb NOOP\r\n", "x".repeat(super::MAX_LINE + 10));
    let t = run(&s, long.as_bytes()).await;
    assert!(t.contains("* BAD") && t.contains("b OK"), "{t}");
    let t = run(&s, format!("{LOGIN}a SELECT {{999999}}\r\n").as_bytes()).await;
    assert!(t.contains("a NO [TOOBIG]"), "{t}");
    let t = run(&s, format!("{LOGIN}a SELECT {{999999+}}\r\n").as_bytes()).await;
    assert!(t.contains("* BYE [TOOBIG]"), "{t}");
}

/// The fuzz entry point on hand-picked hostile inputs (the fuzz target runs it on
/// generated ones).
#[test]
fn fuzz_entry_survives_hostile_input() {
    let inputs: [&[u8]; 12] = [
        b"",
        b"a SELECT INBOX\r\nb FETCH 1:* (BODY[1.2.3.MIME] BODY[2.HEADER] BODY[2.1] BODYSTRUCTURE ENVELOPE)\r\n",
        b"a SELECT INBOX\r\nb FETCH 4294967295:* (BODY[]<4294967295.4294967295>)\r\n",
        b"a APPEND INBOX {5+}\r\n\x00\x01\x02\r\n\r\n",
        b"a CREATE \"&AC4ALg-\"\r\nb RENAME INBOX \"&AC8-\"\r\nc DELETE \"..\"\r\n",
        b"a SELECT INBOX\r\nb UID SEARCH OR NOT (SUBJECT x) TEXT {3}\r\nabc\r\n",
        b"a SELECT INBOX\r\nb STORE 1:* +FLAGS (k1 k2 k3 k4 k5 k6 k7 k8 k9 k10 k11 k12 k13 k14 k15 k16 k17 k18 k19 k20 k21 k22 k23 k24 k25 k26 k27 k28)\r\n",
        b"a IDLE\r\nDONE\r\nb IDLE\r\nXX\r\n",
        b"a LIST \"\" \"*%*%*%*%*%*%*%*%*%*%*%*%*%*%*%*%*%*%*%*%*%*%*%*%*%*%*%*%*%*%*%*%*%*%\"\r\n",
        b"* * * * *\r\n\r\n\r\n)(\r\n{99999999999}\r\n",
        b"a SELECT INBOX\r\nb MOVE 1:* Trash\r\nc SELECT Trash\r\nd COPY 1:* INBOX\r\n",
        b"a AUTHENTICATE PLAIN\r\n*\r\nb ENABLE UTF8=ACCEPT\r\nc CREATE \"\xc3\xa4\"\r\n",
    ];
    for i in inputs {
        super::harness::exercise(i);
    }
}

#[tokio::test]
async fn utf8_accept_quota_id_and_unselect() {
    let (d, s) = setup();
    let script = format!(
        "{LOGIN}i ID NIL\r\nc CREATE \"Entw&APw-rfe\"\r\ne ENABLE UTF8=ACCEPT\r\nl LIST \"\" \"Entw*\"\r\nc2 CREATE \"Gr\u{fc}\u{df}e\"\r\nq GETQUOTAROOT INBOX\r\nq2 GETQUOTA \"\"\r\ns SELECT INBOX\r\nu UNSELECT\r\nf FETCH 1 FLAGS\r\n"
    );
    let t = run(&s, script.as_bytes()).await;
    assert!(t.contains("* ID (\"name\" \"hostplane\")"), "{t}");
    assert!(t.contains("* ENABLED UTF8=ACCEPT"), "{t}");
    // sent as a literal (an astring either way), UTF-8 rather than modified UTF-7
    assert!(
        t.contains("* LIST () \".\" {9}\r\nEntw\u{fc}rfe\r\n"),
        "{t}"
    );
    assert!(t.contains("c2 OK"), "{t}");
    assert!(
        t.contains("* QUOTAROOT INBOX \"\"") && t.contains("(STORAGE 0 1024)"),
        "{t}"
    );
    assert!(t.contains("u OK") && t.contains("f BAD"), "{t}");
    let md = maildir::maildir_path(d.path(), "example.com", "alice");
    assert!(md.join(".Entw&APw-rfe").is_dir() && md.join(".Gr&APwA3w-e").is_dir());
    // a selected mailbox deleted by another session
    let (server, client) = tokio::io::duplex(1 << 16);
    let peer = std::net::SocketAddr::from(([192, 0, 2, 1], 1));
    let task = tokio::spawn(super::run(Arc::clone(&s), Box::new(server), peer, false));
    let (mut rd, mut wr) = tokio::io::split(client);
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    wr.write_all(format!("{LOGIN}s SELECT Junk\r\n").as_bytes())
        .await
        .unwrap();
    let mut seen = Vec::new();
    while !String::from_utf8_lossy(&seen).contains("s OK") {
        let mut buf = [0u8; 4096];
        let n = rd.read(&mut buf).await.unwrap();
        assert!(n > 0, "closed early");
        seen.extend_from_slice(&buf[..n]);
    }
    let other = run(&s, format!("{LOGIN}d DELETE Junk\r\n").as_bytes()).await;
    assert!(other.contains("d OK"), "{other}");
    wr.write_all(b"n NOOP\r\nf FETCH 1 FLAGS\r\n")
        .await
        .unwrap();
    wr.shutdown().await.unwrap();
    let mut out = String::new();
    rd.read_to_string(&mut out).await.unwrap();
    assert!(
        out.contains("* OK [CLOSED]") && out.contains("n OK") && out.contains("f BAD"),
        "{out}"
    );
    let _ = task.await;
}
