//! Mail the big mailbox providers accept: a message submitted by a real client
//! (Python's smtplib) carries an Ed25519 and an RSA DKIM signature, both verified by
//! an independent verifier (dkimpy, Debian's python3-dkim) against the keys our
//! DNS server publishes; the zone has the default SPF and DMARC records, and
//! `hostplane mail check` reports them (and a customer's overrides) as receivers see
//! them.

#![allow(clippy::unwrap_used)] // test helpers outside #[test] fns may panic

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use proto::v1::{CreateDomain, CreateMailbox};
use testkit::{Options, TestCluster};

const BIN: &str = env!("CARGO_BIN_EXE_hostplane");
/// Generous bound for anything that normally takes well under a second.
const T: Duration = Duration::from_secs(10);
/// Debian's Python, which has python3-dkim (a pyenv `python3` first on the PATH
/// would not).
const PYTHON: &str = "/usr/bin/python3";

/// The word after `word` in an engine's health detail, up to `,` or `;`.
async fn after_word(c: &TestCluster, server: &str, word: &str) -> Option<String> {
    let view = c.server(server).await.ok()?;
    let detail = &view.engines.first()?.detail;
    let mut words = detail.split_whitespace();
    words.find(|w| *w == word)?;
    let next = words.next()?;
    let next = if next == "on" { words.next()? } else { next };
    Some(next.trim_end_matches([';', ',']).to_owned())
}

/// The DNS server's `(ip, port)` from its health detail (`... on IP:PORT; ...`).
async fn dns_endpoint(c: &TestCluster, name: &str) -> Option<(String, String)> {
    let a: std::net::SocketAddr = after_word(c, name, "on").await?.parse().ok()?;
    Some((a.ip().to_string(), a.port().to_string()))
}

/// `dig +short TXT name` at our DNS server.
fn dig_txt(server: &(String, String), name: &str) -> Vec<String> {
    let out = Command::new("dig")
        .args([
            &format!("@{}", server.0),
            "-p",
            &server.1,
            name,
            "TXT",
            "+short",
            "+norecurse",
            "+time=1",
            "+tries=1",
        ])
        .output()
        .expect("`dig` not found: install bind9-dnsutils (scripts/test does)");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| !l.is_empty() && !l.starts_with(';'))
        .map(str::to_owned)
        .collect()
}

/// Every file under `dir`, recursively.
fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return out;
    };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(files_under(&p));
        } else {
            out.push(p);
        }
    }
    out
}

/// Submit over STARTTLS with AUTH as alice; prints nothing on success.
const PY_SUBMIT: &str = r#"
import smtplib, ssl, sys
host, port, frm, to = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
ctx = ssl.create_default_context(); ctx.check_hostname = False; ctx.verify_mode = ssl.CERT_NONE
msg = ("From: Alice <%s>\r\nTo: <%s>\r\nSubject: signed twice\r\n"
       "Message-ID: <dkim-test@mailauth.example>\r\n\r\nHello Bob,\r\nsigned with both keys.\r\n") % (frm, to)
with smtplib.SMTP(host, port) as s:
    s.starttls(context=ctx)
    s.login(frm, "alice-password-1")
    s.sendmail(frm, [to], msg)
"#;

/// Verify every DKIM-Signature of the message on stdin with dkimpy, looking the
/// keys up at our DNS server; prints `selector algorithm result` per signature.
const PY_VERIFY: &str = r#"
import sys, dkim, dns.resolver, dns.rdatatype
ns, port = sys.argv[1], int(sys.argv[2])
r = dns.resolver.Resolver(configure=False)
r.nameservers = [ns]; r.port = port
def dnsfunc(name, timeout=5):
    name = name.decode() if isinstance(name, bytes) else name
    try:
        a = r.resolve(name, dns.rdatatype.TXT, tcp=True, raise_on_no_answer=False)
    except Exception as e:
        sys.stderr.write("lookup %s: %r\n" % (name, e)); return None
    for rr in a.rrset or []:
        return b"".join(rr.strings)
    return None
msg = sys.stdin.buffer.read()
d = dkim.DKIM(msg)
sigs = [v for (k, v) in d.headers if k.lower() == b"dkim-signature"]
for i, sig in enumerate(sigs):
    tags = dict(t.strip().split(b"=", 1) for t in sig.split(b";") if b"=" in t)
    sel = tags[b"s"].strip().decode(); alg = tags[b"a"].strip().decode()
    ok = dkim.DKIM(msg).verify(idx=i, dnsfunc=dnsfunc)
    print(sel, alg, "pass" if ok else "fail")
"#;

fn python(script: &str, args: &[&str], stdin: &[u8]) -> (bool, String) {
    use std::io::Write as _;
    let mut child = Command::new(PYTHON)
        .arg("-c")
        .arg(script)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("/usr/bin/python3 (scripts/test installs python3 and python3-dkim)");
    child.stdin.take().unwrap().write_all(stdin).unwrap();
    let out = child.wait_with_output().unwrap();
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

/// Mail submitted to a local mailbox carries Ed25519 and RSA signatures that an
/// independent verifier accepts with the keys from our DNS; the zone publishes
/// SPF, DMARC and both DKIM records (RSA split into 255-byte strings).
#[tokio::test]
async fn submitted_mail_is_signed_with_ed25519_and_rsa_and_verifies() {
    let mut c = TestCluster::start(BIN, Options::default()).await.unwrap();
    c.add_cluster("web-1", "web", true).await.unwrap();
    c.add_cluster("files-1", "files", true).await.unwrap();
    c.add_cluster("dns-1", "dns", true).await.unwrap();
    c.add_cluster("mail-1", "mail", true).await.unwrap();
    c.add_customer("acme").await.unwrap();
    c.add_agent("ns1", "dns-1", "GB").await.unwrap();
    c.add_agent("mx1", "mail-1", "GB").await.unwrap();
    for n in ["ns1", "mx1"] {
        c.wait_converged(n, T).await.unwrap();
    }
    let domain = "mailauth.example";
    c.admin()
        .create_domain(&CreateDomain {
            name: domain.into(),
            customer: Some("acme".into()),
            clusters: None,
        })
        .await
        .unwrap();
    for (local, pw) in [("alice", "alice-password-1"), ("bob", "bob-password-12")] {
        c.admin()
            .create_mailbox(&CreateMailbox {
                address: format!("{local}@{domain}"),
                password: Some(pw.into()),
                quota_mb: None,
                display_name: None,
            })
            .await
            .unwrap();
    }
    // The RSA key is made in the background, then published and handed to mx1.
    let ns = dns_endpoint(&c, "ns1").await.unwrap();
    let ns2 = ns.clone();
    c.wait_until(
        "the RSA key is published",
        Duration::from_secs(120),
        async move |_| Ok(!dig_txt(&ns2, "hp-rsa._domainkey.mailauth.example").is_empty()),
    )
    .await
    .unwrap();
    c.wait_until("mx1 has the RSA key", T, async move |c| {
        Ok(c.agent_desired("mx1")?
            .is_some_and(|d| serde_json::to_string(&d).is_ok_and(|s| s.contains("\"dkim_rsa\""))))
    })
    .await
    .unwrap();
    c.wait_converged("mx1", T).await.unwrap();

    let rsa = dig_txt(&ns, "hp-rsa._domainkey.mailauth.example");
    assert_eq!(rsa.len(), 1, "{rsa:?}");
    assert!(rsa[0].starts_with("\"v=DKIM1; k=rsa; p="), "{rsa:?}");
    let strings = rsa[0].matches("\" \"").count() + 1;
    assert!(strings >= 2, "split into character-strings: {rsa:?}");
    assert_eq!(
        dig_txt(&ns, "hp1._domainkey.mailauth.example").len(),
        1,
        "Ed25519 key still published"
    );
    assert_eq!(
        dig_txt(&ns, "_dmarc.mailauth.example"),
        ["\"v=DMARC1; p=none\""]
    );
    assert_eq!(dig_txt(&ns, "mailauth.example"), ["\"v=spf1 mx -all\""]);

    let smtp: std::net::SocketAddr = after_word(&c, "mx1", "smtp")
        .await
        .unwrap()
        .parse()
        .unwrap();
    let submission = after_word(&c, "mx1", "submission").await.unwrap();
    let (ok, out) = python(
        PY_SUBMIT,
        &[
            &smtp.ip().to_string(),
            &submission,
            "alice@mailauth.example",
            "bob@mailauth.example",
        ],
        b"",
    );
    assert!(ok, "submission: {out}");
    let state = c.agent("mx1").unwrap().state_dir.clone();
    let bob = move || -> Vec<PathBuf> {
        files_under(&state)
            .into_iter()
            .filter(|p| {
                let s = p.to_string_lossy();
                s.contains("mailauth.example/bob/Maildir/new/")
            })
            .collect()
    };
    let bob2 = bob.clone();
    c.wait_until("bob has the message", T, async move |_| {
        Ok(!bob2().is_empty())
    })
    .await
    .unwrap();
    let message = std::fs::read(&bob()[0]).unwrap();
    let text = String::from_utf8_lossy(&message);
    assert_eq!(text.matches("DKIM-Signature:").count(), 2, "{text}");
    // The server greets and stamps with its host name (the MX target receivers
    // resolve), not its internal server name.
    assert!(text.contains("by mx1.hosting.test (hostplane)"), "{text}");

    let (ok, out) = python(PY_VERIFY, &[&ns.0, &ns.1], &message);
    assert!(ok, "verifier: {out}\n{text}");
    let mut results: Vec<&str> = out.lines().collect();
    results.sort_unstable();
    assert_eq!(
        results,
        ["hp-rsa rsa-sha256 pass", "hp1 ed25519-sha256 pass"],
        "{out}\n{text}"
    );
    // A tampered body fails both: the verifier really checks.
    let tampered = text.replace("signed with both keys.", "signed with no key.");
    let (_, out) = python(PY_VERIFY, &[&ns.0, &ns.1], tampered.as_bytes());
    assert!(!out.contains("pass"), "{out}");

    mail_check(&mut c, &ns).await;
}

/// `hostplane mail check DOMAIN --json` through the CLI, as `(check, status, message)`.
fn cli_mail_check(c: &TestCluster, domain: &str) -> Vec<(String, String, String)> {
    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("ca.pem");
    std::fs::write(&ca, c.ca_pem()).unwrap();
    let out = Command::new(BIN)
        .env("HOSTPLANE_CONFIG", dir.path().join("cli.toml"))
        .env("HOSTPLANE_URL", c.url())
        .env("HOSTPLANE_TOKEN", c.admin_token())
        .env("HOSTPLANE_CA", &ca)
        .env("NO_COLOR", "1")
        .args(["mail", "check", domain, "--json"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["domain"], domain);
    v["checks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["check"].as_str().unwrap().to_owned(),
                c["status"].as_str().unwrap().to_owned(),
                c["message"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

fn status_of<'a>(checks: &'a [(String, String, String)], name: &str) -> (&'a str, &'a str) {
    checks
        .iter()
        .find(|c| c.0 == name)
        .map(|c| (c.1.as_str(), c.2.as_str()))
        .unwrap_or_else(|| panic!("no check {name}: {checks:?}"))
}

/// `mail check` reads the zone from our DNS and the mail server's name and PTR
/// through the configured resolver (here our DNS server, which also serves the
/// platform zone `hosting.test` holding `mx1.hosting.test`).
async fn mail_check(c: &mut TestCluster, ns: &(String, String)) {
    c.stop_controller().unwrap();
    let cfg = c.data_dir().join("controller.toml");
    let mut config = controller::config::ControllerConfig::load(&cfg).unwrap();
    config.names.resolver = Some(format!("{}:{}", ns.0, ns.1).parse().unwrap());
    std::fs::write(&cfg, config.to_toml().unwrap()).unwrap();
    c.start_controller().await.unwrap();
    c.admin()
        .create_domain(&CreateDomain {
            name: "hosting.test".into(),
            customer: Some("acme".into()),
            clusters: None,
        })
        .await
        .unwrap();
    let ns2 = ns.clone();
    c.wait_until("mx1.hosting.test resolves", T, async move |_| {
        Ok(!dig_a(&ns2, "mx1.hosting.test").is_empty())
    })
    .await
    .unwrap();

    let checks = cli_mail_check(c, "mailauth.example");
    for name in [
        "spf",
        "dkim:hp1",
        "dkim:hp-rsa",
        "dmarc",
        "mx",
        "helo:mx1.hosting.test",
    ] {
        assert_eq!(status_of(&checks, name).0, "ok", "{name}: {checks:#?}");
    }
    // Nobody serves PTRs of the loopback block here: a warning, never ok.
    let ptr = checks.iter().find(|c| c.0.starts_with("ptr:")).unwrap();
    assert_eq!(ptr.1, "warn", "{checks:#?}");

    // The customer's own SPF and DMARC replace the defaults, and the check sees them.
    for text in ["v=spf1 ip4:192.0.2.1 -all", "v=DMARC1; p=reject"] {
        let name = if text.starts_with("v=DMARC1") {
            "_dmarc"
        } else {
            "@"
        };
        c.admin()
            .create_dns_record(&proto::v1::CreateDnsRecord {
                domain: "mailauth.example".into(),
                name: name.into(),
                ttl: None,
                data: serde_json::json!({"type": "TXT", "text": text}),
            })
            .await
            .unwrap();
    }
    let ns2 = ns.clone();
    c.wait_until("the customer's DMARC is served", T, async move |_| {
        Ok(dig_txt(&ns2, "_dmarc.mailauth.example") == ["\"v=DMARC1; p=reject\""])
    })
    .await
    .unwrap();
    let checks = cli_mail_check(c, "mailauth.example");
    let (spf, why) = status_of(&checks, "spf");
    assert_eq!(spf, "fail", "{checks:#?}");
    assert!(why.contains("mx1"), "names the server it misses: {why}");
    let (dmarc, why) = status_of(&checks, "dmarc");
    assert_eq!((dmarc, why.contains("reject")), ("ok", true), "{why}");
}

/// `dig +short A name` at our DNS server.
fn dig_a(server: &(String, String), name: &str) -> Vec<String> {
    let out = Command::new("dig")
        .args([
            &format!("@{}", server.0),
            "-p",
            &server.1,
            name,
            "A",
            "+short",
            "+norecurse",
            "+time=1",
            "+tries=1",
        ])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| !l.is_empty() && !l.starts_with(';'))
        .map(str::to_owned)
        .collect()
}
