//! `hostplane import` against real processes: a file with good and bad lines is
//! validated first (nothing written while lines are refused), imported with
//! `--partial`, re-run (everything skipped), and a changed line is refused with the
//! difference; then an imported SHA512-crypt mailbox password logs in over POP3
//! (Python's poplib) and the controller's stored hash becomes argon2id, and an
//! imported MD5-crypt account password logs in to the API.

#![allow(clippy::unwrap_used)] // test helpers outside #[test] fns may panic

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use proto::v1::LoginRequest;
use testkit::{Options, TestCluster};

const BIN: &str = env!("CARGO_BIN_EXE_hostplane");
/// Generous bound for anything that normally takes well under a second.
const T: Duration = Duration::from_secs(20);

/// `openssl passwd -6 -salt importsalt imported-pw-1`
const MAILBOX_HASH: &str = "$6$importsalt$AXBNZ21WZ1ioXznwBfzTGB6bKPszakwuIE8srn9m2k1Ea6URlNWWAWd1niZ/4eidZlWfwQB3gAdMLtn/zgdYx/";
/// `openssl passwd -1 -salt md5salt customer-pw-1`
const CUSTOMER_HASH: &str = "$1$md5salt$csn0CJwdmITEo74LJT/hi/";

/// `hostplane import ARGS --json` as `(success, report)`.
fn cli_import(c: &TestCluster, file: &Path, extra: &[&str]) -> (bool, serde_json::Value) {
    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("ca.pem");
    std::fs::write(&ca, c.ca_pem()).unwrap();
    let out = Command::new(BIN)
        .env("HOSTPLANE_CONFIG", dir.path().join("cli.toml"))
        .env("HOSTPLANE_URL", c.url())
        .env("HOSTPLANE_TOKEN", c.admin_token())
        .env("HOSTPLANE_CA", &ca)
        .env("NO_COLOR", "1")
        .arg("import")
        .arg(file)
        .args(extra)
        .arg("--json")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let report = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "{e}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (out.status.success(), report)
}

/// `hostplane import ARGS` for people, standard error merged into standard output
/// (one pipe, in the order written), as `(success, text)`.
fn cli_import_text(c: &TestCluster, file: &Path, extra: &[&str]) -> (bool, String) {
    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("ca.pem");
    std::fs::write(&ca, c.ca_pem()).unwrap();
    let out = Command::new("/bin/sh")
        .args(["-c", "exec \"$0\" \"$@\" 2>&1", BIN, "import"])
        .arg(file)
        .args(extra)
        .env("HOSTPLANE_CONFIG", dir.path().join("cli.toml"))
        .env("HOSTPLANE_URL", c.url())
        .env("HOSTPLANE_TOKEN", c.admin_token())
        .env("HOSTPLANE_CA", &ca)
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

/// `(line, status, reason)` of every result.
fn outcomes(report: &serde_json::Value) -> Vec<(u64, String, String)> {
    report["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["line"].as_u64().unwrap(),
                r["status"].as_str().unwrap().to_owned(),
                r["reason"].as_str().unwrap_or("").to_owned(),
            )
        })
        .collect()
}

fn status_of(report: &serde_json::Value, line: u64) -> (String, String) {
    outcomes(report)
        .into_iter()
        .find(|(l, _, _)| *l == line)
        .map(|(_, s, r)| (s, r))
        .unwrap_or_else(|| panic!("no result for line {line}: {report}"))
}

/// POP3 login (STLS, USER/PASS) and STAT; prints `ok` on success.
const PY_POP3: &str = r#"
import poplib, ssl, sys
host, port, user, pw = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
ctx = ssl.create_default_context(); ctx.check_hostname = False; ctx.verify_mode = ssl.CERT_NONE
p = poplib.POP3(host, port, timeout=10)
p.stls(context=ctx)
p.user(user); p.pass_(pw); p.stat(); p.quit()
print("ok")
"#;

#[tokio::test]
async fn import_validates_resumes_refuses_differences_and_rehashes_at_login() {
    let mut c = TestCluster::start(BIN, Options::default()).await.unwrap();
    for (name, role) in [
        ("web-1", "web"),
        ("files-1", "files"),
        ("dns-1", "dns"),
        ("mail-1", "mail"),
        ("db-1", "db"),
    ] {
        c.add_cluster(name, role, true).await.unwrap();
    }
    c.add_agent("mx1", "mail-1", "GB").await.unwrap();
    c.wait_converged("mx1", T).await.unwrap();

    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("import.ndjson");
    let good = [
        format!(r#"{{"kind":"customer","name":"imported","display_name":"Imported Ltd","password_hash":"{CUSTOMER_HASH}"}}"#),
        r#"{"kind":"domain","name":"imported.example","customer":"imported"}"#.to_owned(),
        r#"{"kind":"site","domain":"imported.example","php":false}"#.to_owned(),
        format!(r#"{{"kind":"mailbox","address":"alice@imported.example","password_hash":"{MAILBOX_HASH}"}}"#),
        r#"{"kind":"alias","address":"info@imported.example","destinations":["alice@imported.example","ext@elsewhere.example"]}"#.to_owned(),
        r#"{"kind":"dns_record","domain":"imported.example","name":"txt","data":{"type":"TXT","text":"imported"}}"#.to_owned(),
        format!(r#"{{"kind":"ftp_account","username":"imported-ftp","domain":"imported.example","password_hash":"{MAILBOX_HASH}"}}"#),
        r#"{"kind":"database","name":"imported_wp","engine":"mariadb","customer":"imported","domain":"imported.example"}"#.to_owned(),
        r#"{"kind":"db_user","name":"imported_wp","engine":"mariadb","customer":"imported","password_verifier":"*2470C0C06DEE42FD1618BB99005ADCA2EC9D1E19","databases":["imported_wp"]}"#.to_owned(),
    ];
    // Lines 10..=13 are bad: unknown customer, unknown hash scheme, not JSON, a
    // mailbox address already taken by the alias.
    let bad = [
        r#"{"kind":"domain","name":"orphan.example","customer":"nobody"}"#.to_owned(),
        r#"{"kind":"mailbox","address":"bob@imported.example","password_hash":"{SSHA}abc"}"#
            .to_owned(),
        "this is not json".to_owned(),
        format!(
            r#"{{"kind":"mailbox","address":"info@imported.example","password_hash":"{MAILBOX_HASH}"}}"#
        ),
    ];
    let lines: Vec<String> = good.iter().chain(bad.iter()).cloned().collect();
    std::fs::write(&file, lines.join("\n") + "\n").unwrap();

    // Refused lines: the dry run finds them and nothing is written.
    let (ok, report) = cli_import(&c, &file, &[]);
    assert!(!ok, "refused lines make the import fail: {report}");
    assert_eq!(report["dry_run"], true, "{report}");
    assert_eq!(report["refused"], 4, "{report}");
    assert_eq!(report["created"], 9, "{report}");
    let (s, why) = status_of(&report, 10);
    assert_eq!(s, "refused");
    assert!(why.contains("nobody") && why.contains("customer"), "{why}");
    let (_, why) = status_of(&report, 11);
    assert!(
        why.contains("password_hash") && why.contains("unknown password hash scheme"),
        "{why}"
    );
    let (_, why) = status_of(&report, 12);
    assert!(why.contains("unreadable line"), "{why}");
    let (_, why) = status_of(&report, 13);
    assert!(why.contains("already a mail alias"), "{why}");
    let none = c.admin().get_domain("imported.example").await;
    assert!(none.is_err(), "a refused validation writes nothing");
    // For people: the report, then `error:` on a line of its own.
    let (ok, text) = cli_import_text(&c, &file, &[]);
    assert!(!ok, "{text}");
    assert!(
        text.contains("line 10 domain `orphan.example`: refused:"),
        "{text}"
    );
    assert!(text.contains("would create 9 ("), "{text}");
    assert!(
        text.ends_with("\nerror: 4 line(s) refused\n"),
        "the error starts its own line: {text:?}"
    );

    // --partial writes the good lines.
    let (ok, report) = cli_import(&c, &file, &["--partial", "--batch", "3"]);
    assert!(!ok, "{report}");
    assert_eq!(report["dry_run"], false, "{report}");
    assert_eq!(
        (report["created"].as_u64(), report["refused"].as_u64()),
        (Some(9), Some(4)),
        "{report}"
    );
    for line in 1..=9 {
        assert_eq!(
            status_of(&report, line).0,
            "created",
            "line {line}: {report}"
        );
    }
    let domain = c.admin().get_domain("imported.example").await.unwrap();
    assert_eq!(domain.customer, "imported");
    assert_eq!(
        domain.placements.get("mail").map(String::as_str),
        Some("mail-1")
    );

    // A re-run resumes: everything that exists identically is skipped.
    let (_, report) = cli_import(&c, &file, &["--partial"]);
    assert_eq!(
        (report["created"].as_u64(), report["skipped"].as_u64()),
        (Some(0), Some(9)),
        "{report}"
    );

    // A changed line is refused with the difference.
    let mut changed = lines.clone();
    changed[2] = r#"{"kind":"site","domain":"imported.example","php":true}"#.to_owned();
    let file2 = dir.path().join("changed.ndjson");
    std::fs::write(&file2, changed[..9].join("\n")).unwrap();
    let (ok, report) = cli_import(&c, &file2, &[]);
    assert!(!ok);
    let (s, why) = status_of(&report, 3);
    assert_eq!(s, "refused");
    assert!(why.contains("php: stored `false`, file `true`"), "{why}");
    assert_eq!(report["skipped"], 8, "{report}");

    // The imported SHA512-crypt password logs in over POP3 ...
    c.wait_until("mx1 has the mailbox", T, async |c| {
        Ok(c.agent_desired("mx1")?
            .is_some_and(|d| serde_json::to_string(&d).is_ok_and(|s| s.contains("importsalt"))))
    })
    .await
    .unwrap();
    c.wait_converged("mx1", T).await.unwrap();
    let view = c.server("mx1").await.unwrap();
    let detail = &view.engines.first().unwrap().detail;
    let mut words = detail.split_whitespace();
    words.find(|w| *w == "pop3").unwrap();
    let pop3_port = words.next().unwrap().to_owned();
    let host = c.agent("mx1").unwrap().bind.to_string();
    let run_pop3 = |pw: &str| {
        let out = Command::new("/usr/bin/python3")
            .args([
                "-c",
                PY_POP3,
                &host,
                &pop3_port,
                "alice@imported.example",
                pw,
            ])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
            + &String::from_utf8_lossy(&out.stderr)
    };
    assert_eq!(run_pop3("imported-pw-1"), "ok");
    // ... and the stored hash becomes argon2id, reaching the mail server's config.
    c.wait_until("the mailbox hash is argon2id", T, async |c| {
        Ok(c.agent_desired("mx1")?.is_some_and(|d| {
            let s = serde_json::to_string(&d).unwrap_or_default();
            !s.contains("importsalt") && s.contains("$argon2id$")
        }))
    })
    .await
    .unwrap_or_else(|e| panic!("{e}: {}", c.agent_log("mx1").unwrap_or_default()));
    c.wait_converged("mx1", T).await.unwrap();
    assert_eq!(
        run_pop3("imported-pw-1"),
        "ok",
        "the new hash takes the same password"
    );
    assert_ne!(run_pop3("wrong-password"), "ok");

    // A re-run after the rehash still skips the mailbox (its hash was upgraded).
    let (_, report) = cli_import(&c, &file2, &[]);
    assert_eq!(status_of(&report, 4).0, "skipped", "{report}");

    // The imported MD5-crypt account password logs in to the API (and is rehashed).
    let login = LoginRequest {
        account: "imported".into(),
        password: "customer-pw-1".into(),
        token_name: None,
        expires_in_days: None,
        totp_code: None,
        recovery_code: None,
    };
    let anon = c.admin().with_token(None);
    anon.login(&login).await.unwrap();
    anon.login(&login).await.unwrap();
    let wrong = LoginRequest {
        password: "nope".into(),
        ..login
    };
    assert!(anon.login(&wrong).await.is_err());
}
