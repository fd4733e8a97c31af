//! IMAP against real clients and real processes: Python's imaplib (STARTTLS on the
//! IMAP port, implicit TLS on IMAPS), mutt in batch mode (its sent copy APPENDed
//! over IMAP) and a full two-way mbsync (isync) run.

mod common;

use anyhow::Result;
use common::*;
use role_mail::Limits;

const PY_IMAP: &str = r#"
import imaplib, ssl, sys, socket
host, port, ports = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
ctx = ssl.create_default_context(); ctx.check_hostname = False; ctx.verify_mode = ssl.CERT_NONE
m = imaplib.IMAP4(host, port)
assert "LOGINDISABLED" in m.capabilities, m.capabilities
try:
    m.login("alice@example.com", "alice-pw"); raise SystemExit("login before TLS")
except imaplib.IMAP4.error:
    pass
m.starttls(ssl_context=ctx)
assert "AUTH=PLAIN" in m.capabilities, m.capabilities
typ, _ = m.login("alice@example.com", "alice-pw"); assert typ == "OK"
typ, boxes = m.list(); assert typ == "OK"
listing = b"\n".join(boxes)
for n in [b"Sent", b"Drafts", b"Trash", b"Junk", b"Archive"]:
    assert n in listing, listing
typ, data = m.select("INBOX"); assert typ == "OK" and data[0] == b"2", data
typ, data = m.fetch("1:*", "(UID FLAGS RFC822.SIZE ENVELOPE BODYSTRUCTURE)"); assert typ == "OK", data
typ, data = m.fetch("1", "(BODY.PEEK[])"); assert b"Subject: first" in data[0][1], data
typ, data = m.search(None, "SUBJECT", "second"); assert data == [b"2"], data
typ, data = m.search(None, "TEXT", "walrus"); assert data == [b"1"], data
typ, data = m.store("1", "+FLAGS", "($Forwarded \\Flagged)"); assert typ == "OK", data
typ, data = m.fetch("1", "(FLAGS)"); assert b"$Forwarded" in data[0] and b"\\Flagged" in data[0], data
typ, data = m.append("Drafts", "(\\Draft)", None, b"Subject: draft\r\n\r\nbody\r\n"); assert typ == "OK", data
typ, data = m.status("Drafts", "(MESSAGES)"); assert b"MESSAGES 1" in data[0], data
typ, data = m.uid("COPY", "1", "Archive"); assert typ == "OK", data
typ, data = m.uid("MOVE", "2", "Trash"); assert typ == "OK", data
typ, data = m.status("Trash", "(MESSAGES UIDNEXT)"); assert b"MESSAGES 1" in data[0], data
typ, data = m.store("1", "+FLAGS", "(\\Deleted)"); m.expunge()
typ, data = m.select("INBOX"); assert data[0] == b"0", data
typ, data = m.select("Archive"); assert data[0] == b"1", data
typ, data = m.fetch("1", "(FLAGS)"); assert b"$Forwarded" in data[0], data
m.create("Projekte.2026"); m.rename("Projekte.2026", "Projekte.Alt")
typ, boxes = m.list('""', 'Projekte.*'); assert b"Projekte.Alt" in b"".join(boxes), boxes
for bad in ['"../bob"', '"&AC4ALg-"', '"/etc"', '"*"']:
    typ, data = m.select(bad); assert typ == "NO", (bad, data)
m.logout()
# a dozen concurrent sessions of one user, and POP3 beside them
import poplib
many = []
for i in range(12):
    c = imaplib.IMAP4_SSL(host, ports, ssl_context=ctx); c.login("alice@example.com", "alice-pw")
    c.select("INBOX"); many.append(c)
p = poplib.POP3(host, int(sys.argv[5])); p.stls(context=ctx)
p.user("alice@example.com"); p.pass_("alice-pw"); p.stat()
c = imaplib.IMAP4_SSL(host, ports, ssl_context=ctx); c.login("alice@example.com", "alice-pw")
typ, data = c.select("Archive"); assert typ == "OK", data
c.logout()
p.quit()
for c in many:
    c.logout()
# implicit TLS; another user's mailbox is never reachable
s = imaplib.IMAP4_SSL(host, ports, ssl_context=ctx)
s.login("bob@example.com", "bob-pw")
typ, data = s.select("INBOX"); assert data[0] == b"0", data
typ, data = s.status("Archive", "(MESSAGES)"); assert b"MESSAGES 0" in data[0], data
# IDLE by hand: a delivery wakes it
s.send(b"i1 IDLE\r\n"); assert s.readline().startswith(b"+")
print("IDLING", flush=True)
sock = socket.create_connection((host, int(sys.argv[4])))
def r(): return sock.recv(4096)
r(); sock.sendall(b"EHLO t\r\n"); r()
sock.sendall(b"MAIL FROM:<x@example.net>\r\n"); r()
sock.sendall(b"RCPT TO:<bob@example.com>\r\n"); r()
sock.sendall(b"DATA\r\n"); r()
sock.sendall(b"Subject: wake\r\n\r\nup\r\n.\r\n"); r()
sock.sendall(b"QUIT\r\n"); sock.close()
line = s.readline(); assert line == b"* 1 EXISTS\r\n", line
s.send(b"DONE\r\n")
while not s.readline().startswith(b"i1 OK"): pass
s.logout()
print("OK")
"#;

/// A mail server with TLS on an address of its own, its state in a new
/// directory, and its certificate in `cert.pem` there for clients to pin.
struct Started {
    ip: std::net::IpAddr,
    dir: tempfile::TempDir,
    s: role_mail::MailServer,
    cert: std::path::PathBuf,
}

fn start() -> Result<Started> {
    let ip = ip(block(), 1);
    let dir = tempfile::tempdir()?;
    let material = tls(ip);
    let s = server(
        ip,
        0,
        dir.path(),
        &example(None, Some(material.clone())),
        Limits::default(),
    )?;
    let cert = dir.path().join("cert.pem");
    std::fs::write(&cert, material.cert_pem.as_bytes())?;
    Ok(Started { ip, dir, s, cert })
}

fn deliver(dir: &std::path::Path, local: &str, msg: &[u8]) -> Result<()> {
    role_mail::maildir::deliver(dir, "example.com", local, "h", msg)?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_imaplib_starttls_imaps_and_idle() -> Result<()> {
    let Started { ip, dir, s, .. } = start()?;
    deliver(
        dir.path(),
        "alice",
        b"Subject: first\r\n\r\nthe walrus said\r\n",
    )?;
    deliver(dir.path(), "alice", b"Subject: second\r\n\r\ntwo\r\n")?;
    let a = s.addrs();
    let r = python(
        PY_IMAP,
        &[
            ip.to_string(),
            a.imap.port().to_string(),
            a.imaps.port().to_string(),
            a.mx.port().to_string(),
            a.pop3.port().to_string(),
        ],
    )
    .await?;
    assert!(r.ok && r.out.contains("OK"), "{}", r.out);
    Ok(())
}

/// mutt sends a message in batch mode and files its copy into `Sent` over IMAP
/// (STARTTLS, the server's certificate pinned).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mutt_batch_files_its_copy_over_imap() -> Result<()> {
    let Started { ip, dir, s, cert } = start()?;
    let a = s.addrs();
    let rc = dir.path().join("muttrc");
    std::fs::write(
        &rc,
        format!(
            "set imap_user=alice@example.com\nset imap_pass=alice-pw\nset ssl_starttls=yes\nset ssl_force_tls=yes\nset ssl_verify_host=no\nset certificate_file={cert}\nset folder=imap://{ip}:{port}/\nset record=+Sent\nset copy=yes\nset sendmail=/bin/true\nset from=alice@example.com\nset use_from=yes\n",
            cert = cert.display(),
            port = a.imap.port()
        ),
    )?;
    let body = dir.path().join("body.txt");
    std::fs::write(&body, "hello from mutt\n")?;
    let r = run(
        "sh",
        &[
            "-c".into(),
            format!(
                "HOME={home} mutt -n -F {rc} -s 'mutt batch' bob@example.com < {body}",
                home = dir.path().display(),
                rc = rc.display(),
                body = body.display()
            ),
        ],
    )
    .await?;
    assert!(r.ok, "{}", r.out);
    let sent = dir.path().join("mail/example.com/alice/Maildir/.Sent/cur");
    let files: Vec<_> = std::fs::read_dir(&sent)?.flatten().collect();
    assert_eq!(files.len(), 1, "{}", r.out);
    let text = std::fs::read_to_string(files[0].path())?;
    assert!(
        text.contains("Subject: mutt batch") && text.contains("hello from mutt"),
        "{text}"
    );
    Ok(())
}

/// A full two-way mbsync: server to local, then local changes (a new message, a
/// flag, a deletion) back to the server, with UIDs kept.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mbsync_two_way() -> Result<()> {
    let Started { ip, dir, s, cert } = start()?;
    let a = s.addrs();
    for i in 0..5 {
        deliver(
            dir.path(),
            "alice",
            format!("Subject: m{i}\r\n\r\nbody {i}\r\n").as_bytes(),
        )?;
    }
    let local = dir.path().join("local");
    std::fs::create_dir_all(&local)?;
    let cfg = dir.path().join("mbsyncrc");
    std::fs::write(
        &cfg,
        format!(
            "IMAPAccount a\nHost {ip}\nPort {port}\nUser alice@example.com\nPass alice-pw\nSSLType STARTTLS\nCertificateFile {cert}\nAuthMechs PLAIN\n\nIMAPStore remote\nAccount a\n\nMaildirStore near\nPath {local}/\nInbox {local}/INBOX\nSubFolders Verbatim\n\nChannel c\nFar :remote:\nNear :near:\nPatterns *\nCreate Both\nExpunge Both\nSyncState *\n",
            port = a.imap.port(),
            cert = cert.display(),
            local = local.display()
        ),
    )?;
    let args: Vec<String> = vec!["-c".into(), cfg.display().to_string(), "-a".into()];
    let mbsync = || run("mbsync", &args);
    let r = mbsync().await?;
    assert!(r.ok, "{}", r.out);
    let count = |p: &std::path::Path| -> usize {
        ["new", "cur"]
            .iter()
            .map(|s| std::fs::read_dir(p.join(s)).map(|d| d.count()).unwrap_or(0))
            .sum()
    };
    assert_eq!(count(&local.join("INBOX")), 5, "{}", r.out);
    assert!(
        local.join("Sent").is_dir() && local.join("Trash").is_dir(),
        "{}",
        r.out
    );
    // local changes: a new message in Archive, one flagged, one deleted
    std::fs::write(
        local.join("Archive/new/100.M1P1.local"),
        "Subject: from near\n\nnear body\n",
    )?;
    let mut files: Vec<(std::path::PathBuf, String)> = Vec::new();
    for sub in ["new", "cur"] {
        for e in std::fs::read_dir(local.join("INBOX").join(sub))?.flatten() {
            files.push((e.path(), e.file_name().to_string_lossy().into_owned()));
        }
    }
    files.sort_by(|a, b| a.1.cmp(&b.1));
    let (path, name) = files[0].clone();
    let base = name.split(":2,").next().unwrap_or(&name).to_string();
    let flags = name
        .split_once(":2,")
        .map(|(_, f)| f.to_string())
        .unwrap_or_default();
    std::fs::rename(
        &path,
        local.join("INBOX/cur").join(format!("{base}:2,F{flags}")),
    )?;
    std::fs::remove_file(&files[1].0)?;
    let r = mbsync().await?;
    assert!(r.ok, "{}", r.out);
    let md = dir.path().join("mail/example.com/alice/Maildir");
    assert_eq!(count(&md.join(".Archive")), 1, "{}", r.out);
    assert_eq!(count(&md), 4, "{}", r.out);
    let flagged_on_server = std::fs::read_dir(md.join("cur"))?
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().contains(":2,F"))
        .count();
    assert_eq!(flagged_on_server, 1, "{}", r.out);
    // a third run changes nothing and keeps working (UIDs stable)
    let r = mbsync().await?;
    assert!(r.ok, "{}", r.out);
    assert_eq!(count(&local.join("INBOX")), 4, "{}", r.out);
    Ok(())
}

/// mutt reads INBOX over IMAPS and moves the message to Archive (its own UI driven
/// by `push`, on a pseudo-terminal from `script`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mutt_reads_and_moves_over_imaps() -> Result<()> {
    let Started { ip, dir, s, cert } = start()?;
    deliver(dir.path(), "alice", b"Subject: for mutt\r\n\r\nread me\r\n")?;
    let a = s.addrs();
    let rc = dir.path().join("muttrc");
    std::fs::write(
        &rc,
        format!(
            "set imap_user=alice@example.com\nset imap_pass=alice-pw\nset ssl_verify_host=no\nset certificate_file={cert}\nset folder=imaps://{ip}:{port}/\nset spoolfile=+INBOX\nset confirmappend=no\nset delete=yes\nset move=no\nset quit=yes\nset mail_check=0\nset timeout=1\n",
            cert = cert.display(),
            port = a.imaps.port()
        ),
    )?;
    let r = run(
        "sh",
        &[
            "-c".into(),
            format!(
                "HOME={home} TERM=xterm script -qec \"mutt -n -F {rc} -e 'push <display-message><exit><save-message>=Archive<enter><sync-mailbox><quit>'\" /dev/null",
                home = dir.path().display(),
                rc = rc.display(),
            ),
        ],
    )
    .await?;
    let md = dir.path().join("mail/example.com/alice/Maildir");
    let count = |p: std::path::PathBuf| std::fs::read_dir(p).map(|d| d.count()).unwrap_or(0);
    assert_eq!(count(md.join(".Archive/cur")), 1, "{}", r.out);
    assert_eq!(
        count(md.join("cur")) + count(md.join("new")),
        0,
        "{}",
        r.out
    );
    let moved = std::fs::read_dir(md.join(".Archive/cur"))?
        .flatten()
        .next()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .unwrap_or_default();
    assert!(moved.ends_with(":2,S"), "read by mutt: {moved}");
    Ok(())
}
