//! Secondary MX end-to-end: the primary is down while mail arrives, the secondary
//! queues it durably, and hands every message over exactly once when the primary is
//! back; a secondary killed with a full queue (tasks aborted, no cleanup) delivers
//! everything after restart.

mod common;

use std::net::SocketAddr;

use anyhow::Result;
use common::*;
use role_mail::Limits;

/// A free port on `ip` for the primary's MX (so it can come back on the same one).
fn free_port(ip: std::net::IpAddr) -> Result<u16> {
    Ok(std::net::TcpListener::bind(SocketAddr::new(ip, 0))?
        .local_addr()?
        .port())
}

async fn send(mx: SocketAddr, subject: &str, to: &str) -> Result<()> {
    let r = swaks(&[
        "--server",
        &mx.to_string(),
        "--from",
        "x@remote.test",
        "--to",
        to,
        "--header",
        &format!("Subject: {subject}"),
    ])
    .await?;
    anyhow::ensure!(r.ok, "{}", r.out);
    Ok(())
}

fn subjects(dir: &std::path::Path, local: &str) -> Vec<String> {
    let mut v: Vec<String> = mailbox(dir, local)
        .iter()
        .filter_map(|m| {
            m.lines()
                .find(|l| l.starts_with("Subject: "))
                .map(str::to_string)
        })
        .collect();
    v.sort();
    v
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn primary_down_then_up_delivers_each_message_once() -> Result<()> {
    let b = block();
    let (pip, sip) = (ip(b, 1), ip(b, 2));
    let (pdir, sdir) = (tempfile::tempdir()?, tempfile::tempdir()?);
    let pport = free_port(pip)?;
    let paddr = SocketAddr::new(pip, pport);
    let secondary = server(
        sip,
        0,
        sdir.path(),
        &example(Some(paddr), None),
        Limits::default(),
    )?;
    let smx = secondary.addrs().mx;

    // primary down: the secondary accepts valid recipients only, and queues
    let bad = swaks(&[
        "--server",
        &smx.to_string(),
        "--from",
        "x@remote.test",
        "--to",
        "nobody@example.com",
    ])
    .await?;
    assert!(!bad.ok && bad.out.contains("550 5.1.1"), "{}", bad.out);
    for i in 0..5 {
        send(smx, &format!("m{i}"), "alice@example.com").await?;
    }
    send(smx, "to the team", "team@example.com").await?;
    let h = secondary.handle();
    wait_for("6 queued with an attempt", || {
        let q = h.queue_list();
        q.len() == 6 && q.iter().all(|e| e.attempts >= 1)
    })
    .await?;

    // primary up, flush through the controller's counter (`hostplane mail flush`,
    // or the primary seen up): everything delivered, once
    let primary = server(
        pip,
        pport,
        pdir.path(),
        &example(None, None),
        Limits::default(),
    )?;
    let mut cfg = example(Some(paddr), None);
    cfg.flush = 1;
    assert!(secondary.apply(&cfg).is_empty());
    wait_for("queue drained", || h.queue_list().is_empty()).await?;
    let alice = subjects(pdir.path(), "alice");
    assert_eq!(
        alice,
        [
            "Subject: m0",
            "Subject: m1",
            "Subject: m2",
            "Subject: m3",
            "Subject: m4",
            "Subject: to the team"
        ]
    );
    assert_eq!(subjects(pdir.path(), "bob"), ["Subject: to the team"]);
    // relayed from the secondary's own address, Received chain intact
    let m = &mailbox(pdir.path(), "bob")[0];
    assert!(m.contains(&format!("([{sip}])")), "{m}");
    assert_eq!(m.matches("Received: ").count(), 2, "{m}");
    // nothing more arrives later
    h.flush();
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert_eq!(mailbox(pdir.path(), "alice").len(), 6);
    drop(primary);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_secondary_with_full_queue_delivers_after_restart() -> Result<()> {
    let b = block();
    let (pip, sip) = (ip(b, 1), ip(b, 2));
    let (pdir, sdir) = (tempfile::tempdir()?, tempfile::tempdir()?);
    let pport = free_port(pip)?;
    let paddr = SocketAddr::new(pip, pport);
    let cfg = example(Some(paddr), None);
    let secondary = server(sip, 0, sdir.path(), &cfg, Limits::default())?;
    let smx = secondary.addrs().mx;
    for i in 0..10 {
        send(smx, &format!("k{i:02}"), "bob@example.com").await?;
    }
    assert_eq!(secondary.handle().queue_list().len(), 10);
    // "kill -9": abort every task, no shutdown path runs
    drop(secondary);

    let primary = server(
        pip,
        pport,
        pdir.path(),
        &example(None, None),
        Limits::default(),
    )?;
    let restarted = server(sip, 0, sdir.path(), &cfg, Limits::default())?;
    let h = restarted.handle();
    assert_eq!(h.queue_list().len(), 10);
    h.flush();
    wait_for("queue drained", || h.queue_list().is_empty()).await?;
    let got = subjects(pdir.path(), "bob");
    let want: Vec<String> = (0..10).map(|i| format!("Subject: k{i:02}")).collect();
    assert_eq!(got, want);
    // the queue directory is empty again (the entry leaves the in-memory list
    // just before its files are removed)
    let qdir = sdir.path().join("queue");
    wait_for("queue files removed", || {
        std::fs::read_dir(&qdir)
            .map(|d| d.count() == 0)
            .unwrap_or(false)
    })
    .await?;
    drop(primary);
    Ok(())
}

const PY_UTF8: &str = r#"
import smtplib, sys
host, port = sys.argv[1], int(sys.argv[2])
with smtplib.SMTP(host, port) as s:
    s.ehlo("client.test")
    s.sendmail("jürgen@absender.test", ["alice@example.com"],
               "Subject: Grüße\r\n\r\nKäse und Brötchen\r\n".encode(),
               mail_options=["SMTPUTF8", "BODY=8BITMIME"])
print("OK")
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn utf8_mail_is_relayed_with_smtputf8() -> Result<()> {
    let b = block();
    let (pip, sip) = (ip(b, 1), ip(b, 2));
    let (pdir, sdir) = (tempfile::tempdir()?, tempfile::tempdir()?);
    let primary = server(pip, 0, pdir.path(), &example(None, None), Limits::default())?;
    let cfg = example(Some(primary.addrs().mx), None);
    let secondary = server(sip, 0, sdir.path(), &cfg, Limits::default())?;
    let smx = secondary.addrs().mx;
    let r = python(PY_UTF8, &[sip.to_string(), smx.port().to_string()]).await?;
    assert!(r.ok && r.out.contains("OK"), "{}", r.out);
    wait_for("relayed", || mailbox(pdir.path(), "alice").len() == 1).await?;
    let m = &mailbox(pdir.path(), "alice")[0];
    assert!(
        m.contains("Subject: Grüße") && m.contains("Käse und Brötchen"),
        "{m}"
    );
    // the primary's file lands before the secondary reads its 250 and drops the entry
    let h = secondary.handle();
    wait_for("queue entry removed", || h.queue_list().is_empty()).await?;
    Ok(())
}
