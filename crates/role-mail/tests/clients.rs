//! End-to-end: the mail server on its own loopback address, driven by real clients
//! (swaks, Python's smtplib and poplib, raw sockets for attacks).

mod common;

use std::time::Duration;

use anyhow::Result;
use common::*;
use role_mail::Limits;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn swaks_recipients_pipelining_and_starttls() -> Result<()> {
    let b = block();
    let ip = ip(b, 1);
    let dir = tempfile::tempdir()?;
    let s = server(
        ip,
        0,
        dir.path(),
        &example(None, Some(tls(ip))),
        Limits::default(),
    )?;
    let mx = s.addrs().mx.to_string();

    let ok = swaks(&[
        "--server",
        &mx,
        "--from",
        "x@remote.test",
        "--to",
        "alice@example.com",
        "--pipeline",
        "--header",
        "Subject: piped",
    ])
    .await?;
    assert!(ok.ok, "{}", ok.out);
    assert!(ok.out.contains("250 2.0.0 OK"), "{}", ok.out);

    let bad = swaks(&[
        "--server",
        &mx,
        "--from",
        "x@remote.test",
        "--to",
        "nobody@example.com",
    ])
    .await?;
    assert!(!bad.ok && bad.out.contains("550 5.1.1"), "{}", bad.out);

    let relay = swaks(&[
        "--server",
        &mx,
        "--from",
        "x@remote.test",
        "--to",
        "victim@elsewhere.test",
    ])
    .await?;
    assert!(
        !relay.ok && relay.out.contains("550 5.7.1"),
        "{}",
        relay.out
    );

    let tls = swaks(&[
        "--server",
        &mx,
        "--tls",
        "--from",
        "x@remote.test",
        "--to",
        "team@example.com",
        "--header",
        "Subject: over tls",
    ])
    .await?;
    assert!(tls.ok, "{}", tls.out);
    assert!(
        tls.out.contains("220 2.0.0 ready to start TLS"),
        "{}",
        tls.out
    );

    let alice = mailbox(dir.path(), "alice");
    assert_eq!(alice.len(), 2, "{alice:?}");
    assert!(alice
        .iter()
        .any(|m| m.contains("with ESMTPS") && m.contains("Subject: over tls")));
    assert_eq!(mailbox(dir.path(), "bob").len(), 1);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn swaks_oversize_and_submission_auth() -> Result<()> {
    let b = block();
    let ip = ip(b, 1);
    let dir = tempfile::tempdir()?;
    let limits = Limits {
        max_message_bytes: 10_000,
        ..Limits::default()
    };
    let s = server(ip, 0, dir.path(), &example(None, Some(tls(ip))), limits)?;
    let a = s.addrs();
    let big = "x".repeat(200);
    let body = vec![big.as_str(); 100].join("\n");
    let over = swaks(&[
        "--server",
        &a.mx.to_string(),
        "--from",
        "x@remote.test",
        "--to",
        "alice@example.com",
        "--body",
        &body,
    ])
    .await?;
    assert!(!over.ok && over.out.contains("552 5.3.4"), "{}", over.out);

    let sub = a.submission.to_string();
    let no_tls = swaks(&[
        "--server",
        &sub,
        "--from",
        "alice@example.com",
        "--to",
        "bob@example.com",
        "--auth",
        "PLAIN",
        "--auth-user",
        "alice@example.com",
        "--auth-password",
        "alice-pw",
    ])
    .await?;
    assert!(!no_tls.ok, "{}", no_tls.out);

    let good = swaks(&[
        "--server",
        &sub,
        "--tls",
        "--from",
        "alice@example.com",
        "--to",
        "bob@example.com",
        "--auth",
        "PLAIN",
        "--auth-user",
        "alice@example.com",
        "--auth-password",
        "alice-pw",
        "--header",
        "Subject: submitted",
    ])
    .await?;
    assert!(good.ok, "{}", good.out);
    assert!(good.out.contains("235 2.7.0"), "{}", good.out);

    let alias = swaks(&[
        "--server",
        &a.submissions.to_string(),
        "--tlsc",
        "--from",
        "info@example.com",
        "--to",
        "bob@example.com",
        "--auth",
        "LOGIN",
        "--auth-user",
        "alice@example.com",
        "--auth-password",
        "alice-pw",
    ])
    .await?;
    assert!(alias.ok, "{}", alias.out);

    let spoof = swaks(&[
        "--server",
        &sub,
        "--tls",
        "--from",
        "bob@example.com",
        "--to",
        "bob@example.com",
        "--auth",
        "PLAIN",
        "--auth-user",
        "alice@example.com",
        "--auth-password",
        "alice-pw",
    ])
    .await?;
    assert!(
        !spoof.ok && spoof.out.contains("553 5.7.1"),
        "{}",
        spoof.out
    );

    let wrong = swaks(&[
        "--server",
        &sub,
        "--tls",
        "--from",
        "alice@example.com",
        "--to",
        "bob@example.com",
        "--auth",
        "PLAIN",
        "--auth-user",
        "alice@example.com",
        "--auth-password",
        "bob-pw",
    ])
    .await?;
    assert!(
        !wrong.ok && wrong.out.contains("535 5.7.8"),
        "{}",
        wrong.out
    );

    let bob = mailbox(dir.path(), "bob");
    assert_eq!(bob.len(), 2, "{bob:?}");
    assert!(bob
        .iter()
        .any(|m| m.contains("with ESMTPSA") && m.contains("Subject: submitted")));
    Ok(())
}

/// Raw-socket SMTP smuggling attempts: `<LF>.<LF>` and `<CR><LF>.<LF>` never end
/// the data, and a second message hidden behind them is never delivered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn smuggling_attempts_are_refused() -> Result<()> {
    let b = block();
    let ip = ip(b, 1);
    let dir = tempfile::tempdir()?;
    let s = server(ip, 0, dir.path(), &example(None, None), Limits::default())?;
    for hidden in ["\n.\n", "\r\n.\n", "\n.\r\n", "\r.\r\n"] {
        let script = format!(
            "EHLO c\r\nMAIL FROM:<a@r.test>\r\nRCPT TO:<alice@example.com>\r\nDATA\r\nSubject: outer\r\n\r\nx{hidden}MAIL FROM:<admin@example.com>\r\nRCPT TO:<bob@example.com>\r\nDATA\r\nSubject: smuggled\r\n\r\n.\r\n"
        );
        let mut c = tokio::net::TcpStream::connect(s.addrs().mx).await?;
        c.write_all(script.as_bytes()).await?;
        let mut out = String::new();
        tokio::time::timeout(Duration::from_secs(30), c.read_to_string(&mut out)).await??;
        assert!(out.contains("521 5.5.2"), "{hidden:?}: {out}");
    }
    assert!(mailbox(dir.path(), "alice").is_empty());
    assert!(mailbox(dir.path(), "bob").is_empty());
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connection_limits_and_timeouts() -> Result<()> {
    let b = block();
    let ip = ip(b, 1);
    let dir = tempfile::tempdir()?;
    let limits = Limits {
        max_conn_per_ip: 2,
        command_timeout: Duration::from_millis(500),
        data_timeout: Duration::from_millis(500),
        ..Limits::default()
    };
    let s = server(ip, 0, dir.path(), &example(None, None), limits)?;
    let mut held = Vec::new();
    for _ in 0..2 {
        let mut c = tokio::net::TcpStream::connect(s.addrs().mx).await?;
        let mut buf = [0u8; 64];
        let n = c.read(&mut buf).await?;
        assert!(buf[..n].starts_with(b"220 "));
        held.push(c);
    }
    let mut third = tokio::net::TcpStream::connect(s.addrs().mx).await?;
    let mut out = String::new();
    third.read_to_string(&mut out).await?;
    assert!(out.starts_with("421 4.7.0"), "{out}");
    // a silent client is dropped with 421 4.4.2
    let mut rest = String::new();
    tokio::time::timeout(Duration::from_secs(30), held[0].read_to_string(&mut rest)).await??;
    assert!(rest.contains("421 4.4.2"), "{rest}");
    // so is one that stops talking inside DATA, and nothing is stored
    // (from another client address: this one's slots may still be in use)
    let sock = tokio::net::TcpSocket::new_v4()?;
    sock.bind(std::net::SocketAddr::new(common::ip(b, 9), 0))?;
    let mut c = sock.connect(s.addrs().mx).await?;
    c.write_all(b"EHLO c\r\nMAIL FROM:<a@r.test>\r\nRCPT TO:<alice@example.com>\r\nDATA\r\nSubject: half\r\n")
        .await?;
    let mut out = String::new();
    tokio::time::timeout(Duration::from_secs(30), c.read_to_string(&mut out)).await??;
    assert!(
        out.contains("354 ") && out.contains("421 4.4.2 timeout in DATA"),
        "{out}"
    );
    assert!(mailbox(dir.path(), "alice").is_empty());
    Ok(())
}

/// Postfix allows 50 concurrent sessions per client address: a sender holding 49
/// sessions gets the banner on its 50th, and only the 51st is turned away.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn default_limit_is_fifty_sessions_per_address() -> Result<()> {
    let b = block();
    let ip = ip(b, 1);
    let dir = tempfile::tempdir()?;
    let s = server(ip, 0, dir.path(), &example(None, None), Limits::default())?;
    let mut held = Vec::new();
    for i in 0..50 {
        let mut c = tokio::net::TcpStream::connect(s.addrs().mx).await?;
        let mut buf = [0u8; 64];
        let n = c.read(&mut buf).await?;
        assert!(
            buf[..n].starts_with(b"220 "),
            "session {}: {}",
            i + 1,
            String::from_utf8_lossy(&buf[..n])
        );
        held.push(c);
    }
    let mut over = tokio::net::TcpStream::connect(s.addrs().mx).await?;
    let mut out = String::new();
    over.read_to_string(&mut out).await?;
    assert!(out.starts_with("421 4.7.0"), "{out}");
    Ok(())
}

const PY_SUBMIT_AND_POP: &str = r#"
import smtplib, poplib, ssl, sys
host, sub, pop, pops = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
ctx = ssl.create_default_context(); ctx.check_hostname = False; ctx.verify_mode = ssl.CERT_NONE
with smtplib.SMTP(host, sub) as s:
    s.starttls(context=ctx)
    s.login("alice@example.com", "alice-pw")
    s.sendmail("alice@example.com", ["bob@example.com"], "Subject: from python\r\n\r\nhello bob\r\n.leading dot\r\n")
# no cleartext passwords while TLS is available
p = poplib.POP3(host, pop)
try:
    p.user("bob@example.com"); print("CLEARTEXT"); sys.exit(1)
except poplib.error_proto as e:
    assert b"STLS" in e.args[0], e
assert "STLS" in p.capa() and "USER" not in p.capa(), p.capa()
p.quit()
# bob reads over STLS
p = poplib.POP3(host, pop)
p.stls(context=ctx)
p.user("bob@example.com"); p.pass_("bob-pw")
count, size = p.stat()
assert count == 1, (count, size)
resp, lines, octets = p.retr(1)
text = b"\n".join(lines).decode()
assert "hello bob" in text and "\n.leading dot" in text, text
assert p.uidl()[1]
p.dele(1); p.quit()
# alice cannot read bob's mailbox: her password does not open it, her own is empty
p = poplib.POP3_SSL(host, pops, context=ctx)
p.user("bob@example.com")
try:
    p.pass_("alice-pw"); print("LEAK"); sys.exit(1)
except poplib.error_proto as e:
    assert b"AUTH" in e.args[0], e
p.close()
p = poplib.POP3_SSL(host, pops, context=ctx)
p.user("alice@example.com"); p.pass_("alice-pw")
assert p.stat()[0] == 0
p.quit()
print("OK")
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_submission_and_pop3_isolation() -> Result<()> {
    let b = block();
    let ip = ip(b, 1);
    let dir = tempfile::tempdir()?;
    let s = server(
        ip,
        0,
        dir.path(),
        &example(None, Some(tls(ip))),
        Limits::default(),
    )?;
    let a = s.addrs();
    let r = python(
        PY_SUBMIT_AND_POP,
        &[
            ip.to_string(),
            a.submission.port().to_string(),
            a.pop3.port().to_string(),
            a.pop3s.port().to_string(),
        ],
    )
    .await?;
    assert!(r.ok && r.out.contains("OK"), "{}", r.out);
    // deleted at QUIT
    assert!(mailbox(dir.path(), "bob").is_empty());
    Ok(())
}

const PY_CONCURRENT_GUESSES: &str = r#"
import smtplib, poplib, socket, ssl, sys, threading, json
host, sub, pop = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
attacker, other = sys.argv[4], sys.argv[5]
ctx = ssl.create_default_context(); ctx.check_hostname = False; ctx.verify_mode = ssl.CERT_NONE
N = 16

def pop_from(src):
    p = poplib.POP3.__new__(poplib.POP3)
    p.encoding = "UTF-8"; p.host = host; p.port = pop
    p.sock = socket.create_connection((host, pop), 30, source_address=(src, 0))
    p.file = p.sock.makefile("rb"); p._debugging = 0; p.welcome = p._getresp()
    p._tls_established = False
    return p

def smtp_guess(results, barrier):
    s = smtplib.SMTP(host, sub, source_address=(attacker, 0), timeout=60)
    s.starttls(context=ctx); s.ehlo()
    s.user, s.password = "alice@example.com", "wrong guess"
    barrier.wait()
    try:
        # one mechanism only (login() would retry with the next one)
        s.auth("PLAIN", s.auth_plain)
        results.append(235)
    except smtplib.SMTPAuthenticationError as e:
        results.append(e.smtp_code)
    except smtplib.SMTPResponseException as e:
        results.append(e.smtp_code)
    s.close()

def pop_guess(results, barrier):
    p = pop_from(attacker)
    p.stls(context=ctx)
    p.user("bob@example.com")
    barrier.wait()
    try:
        p.pass_("wrong guess"); results.append("OK")
    except poplib.error_proto as e:
        results.append(e.args[0].decode())
    p.close()

def run(f):
    results, barrier = [], threading.Barrier(N)
    ts = [threading.Thread(target=f, args=(results, barrier)) for _ in range(N)]
    [t.start() for t in ts]; [t.join() for t in ts]
    return results

smtp = run(smtp_guess)
pops = run(pop_guess)

# the right password from another address works
s = smtplib.SMTP(host, sub, source_address=(other, 0)); s.starttls(context=ctx)
other_smtp = s.login("alice@example.com", "alice-pw")[0]; s.quit()
p = pop_from(other); p.stls(context=ctx); p.user("bob@example.com")
other_pop = p.pass_("bob-pw").decode(); p.quit()
print(json.dumps({"smtp": smtp, "pop": pops,
                  "other_smtp": other_smtp, "other_pop": other_pop}))
"#;

/// Concurrent wrong passwords through real clients (smtplib, poplib) from one address:
/// each failure is reserved before the password check, so most are refused with
/// 454 4.7.0 / -ERR [SYS/TEMP]; the right password from another address still works.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_guesses_on_submission_and_pop3_are_throttled() -> Result<()> {
    let b = block();
    let ip = ip(b, 1);
    let dir = tempfile::tempdir()?;
    let s = server(
        ip,
        0,
        dir.path(),
        &example(None, Some(tls(ip))),
        Limits::default(),
    )?;
    let a = s.addrs();
    let r = python(
        PY_CONCURRENT_GUESSES,
        &[
            ip.to_string(),
            a.submission.port().to_string(),
            a.pop3.port().to_string(),
            common::ip(b, 2).to_string(),
            common::ip(b, 3).to_string(),
        ],
    )
    .await?;
    assert!(r.ok, "{}", r.out);
    let line = r.out.lines().last().unwrap_or_default();
    let v: serde_json::Value = serde_json::from_str(line)?;
    let smtp: Vec<u64> = serde_json::from_value(v["smtp"].clone())?;
    let wrong = smtp.iter().filter(|c| **c == 535).count();
    let throttled = smtp.iter().filter(|c| **c == 454).count();
    assert!(
        wrong >= 5 && throttled >= 8 && wrong + throttled == 16,
        "{smtp:?}"
    );
    let pop: Vec<String> = serde_json::from_value(v["pop"].clone())?;
    let wrong = pop.iter().filter(|l| l.contains("[AUTH]")).count();
    let throttled = pop.iter().filter(|l| l.contains("[SYS/TEMP]")).count();
    assert!(
        wrong >= 5 && throttled >= 8 && wrong + throttled == 16,
        "{pop:?}"
    );
    assert_eq!(v["other_smtp"], 235, "{v}");
    assert!(
        v["other_pop"].as_str().unwrap_or("").starts_with("+OK"),
        "{v}"
    );
    let c = s.login_counts();
    assert!(c.refused >= 16 && c.failures >= 10, "{c:?}");
    Ok(())
}

const PY_SEND_LIMITS: &str = r#"
import smtplib, ssl, sys, json
host, sub = sys.argv[1], int(sys.argv[2])
ctx = ssl.create_default_context(); ctx.check_hostname = False; ctx.verify_mode = ssl.CERT_NONE
out = {"sent": 0}
with smtplib.SMTP(host, sub) as s:
    s.starttls(context=ctx); s.login("alice@example.com", "alice-pw")
    # three recipients, the limit is two per message: the third is refused with 452
    refused = s.sendmail("alice@example.com", ["bob@example.com", "alice@example.com", "info@example.com"], "Subject: 1\r\n\r\none\r\n")
    out["rcpt_refused"] = {k: [v[0], v[1].decode()] for k, v in refused.items()}
    out["sent"] += 1
    s.sendmail("alice@example.com", ["bob@example.com"], "Subject: 2\r\n\r\ntwo\r\n"); out["sent"] += 1
    try:
        s.sendmail("alice@example.com", ["bob@example.com"], "Subject: 3\r\n\r\nthree\r\n"); out["sent"] += 1
    except smtplib.SMTPSenderRefused as e:
        out["third"] = [e.smtp_code, e.smtp_error.decode()]
with smtplib.SMTP(host, sub) as s:
    s.starttls(context=ctx); s.login("bob@example.com", "bob-pw")
    s.sendmail("bob@example.com", ["alice@example.com"], "Subject: b\r\n\r\nbob\r\n"); out["sent"] += 1
print(json.dumps(out))
"#;

/// Outgoing limits from the desired config: over the messages-per-hour limit a
/// mailbox's next MAIL gets 451 4.7.1 (another mailbox still sends), and recipients
/// past the per-message limit get 452; the health detail names the mailbox.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outgoing_limits_per_mailbox_and_per_message() -> Result<()> {
    let b = block();
    let ip = ip(b, 1);
    let dir = tempfile::tempdir()?;
    let mut cfg = example(None, Some(tls(ip)));
    cfg.domains[0].limits = Some(proto::agent_v1::MailLimits {
        messages_per_hour_per_mailbox: Some(2),
        messages_per_hour_per_domain: None,
        recipients_per_message: Some(2),
    });
    let s = server(ip, 0, dir.path(), &cfg, Limits::default())?;
    let a = s.addrs();
    let r = python(
        PY_SEND_LIMITS,
        &[ip.to_string(), a.submission.port().to_string()],
    )
    .await?;
    assert!(r.ok, "{}", r.out);
    let v: serde_json::Value = serde_json::from_str(r.out.lines().last().unwrap_or_default())?;
    assert_eq!(v["sent"], 3, "{v}");
    assert_eq!(v["third"][0], 451, "{v}");
    assert!(
        v["third"][1]
            .as_str()
            .is_some_and(|t| t.starts_with("4.7.1") && t.contains("2 messages per hour")),
        "{v}"
    );
    assert_eq!(v["rcpt_refused"]["info@example.com"][0], 452, "{v}");
    assert_eq!(s.sending_refused(), (1, Some("alice@example.com".into())));
    // What the engine reports to the controller (which records a `mail.limit` event).
    assert_eq!(s.sending_limited(), [("alice@example.com".to_owned(), 1)]);
    Ok(())
}
