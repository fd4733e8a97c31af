//! kill -9 of a secondary MX process with a full queue: after a restart on the same
//! state directory, every acknowledged message reaches the primary exactly once.

mod common;

use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};

use anyhow::Result;
use common::*;
use role_mail::Limits;

/// Kills (SIGKILL) and reaps the child on drop.
struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn spawn(
    ip: std::net::IpAddr,
    port: u16,
    dir: &std::path::Path,
    cfg: &std::path::Path,
) -> Result<Proc> {
    let child = Command::new(env!("CARGO_BIN_EXE_mail-mx"))
        .args([ip.to_string(), port.to_string()])
        .arg(dir)
        .arg(cfg)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()?;
    Ok(Proc(child))
}

fn free_port(ip: std::net::IpAddr) -> Result<u16> {
    Ok(std::net::TcpListener::bind(SocketAddr::new(ip, 0))?
        .local_addr()?
        .port())
}

fn envelopes(dir: &std::path::Path) -> usize {
    std::fs::read_dir(dir.join("queue"))
        .map(|d| {
            d.flatten()
                .filter(|e| e.path().extension().is_some_and(|x| x == "env"))
                .count()
        })
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkilled_secondary_process_delivers_its_queue_after_restart() -> Result<()> {
    let b = block();
    let (pip, sip) = (ip(b, 1), ip(b, 2));
    let (pdir, sdir, cdir) = (
        tempfile::tempdir()?,
        tempfile::tempdir()?,
        tempfile::tempdir()?,
    );
    let pport = free_port(pip)?;
    let sport = free_port(sip)?;
    let cfg_path = cdir.path().join("secondary.json");
    let cfg = example(Some(SocketAddr::new(pip, pport)), None);
    std::fs::write(&cfg_path, serde_json::to_vec(&cfg)?)?;

    let mut secondary = spawn(sip, sport, sdir.path(), &cfg_path)?;
    let smx = SocketAddr::new(sip, sport);
    wait_for("secondary listening", || {
        std::net::TcpStream::connect(smx).is_ok()
    })
    .await?;
    for i in 0..10 {
        let r = swaks(&[
            "--server",
            &smx.to_string(),
            "--from",
            "x@remote.test",
            "--to",
            "alice@example.com",
            "--header",
            &format!("Subject: c{i:02}"),
        ])
        .await?;
        assert!(r.ok, "{}", r.out);
    }
    assert_eq!(envelopes(sdir.path()), 10);
    // kill -9, no shutdown path
    secondary.0.kill()?;
    secondary.0.wait()?;

    let primary = server(
        pip,
        pport,
        pdir.path(),
        &example(None, None),
        Limits::default(),
    )?;
    let _restarted = spawn(sip, sport, sdir.path(), &cfg_path)?;
    wait_for("queue drained", || {
        envelopes(sdir.path()) == 0 && mailbox(pdir.path(), "alice").len() >= 10
    })
    .await?;
    let mut subjects: Vec<String> = mailbox(pdir.path(), "alice")
        .iter()
        .filter_map(|m| {
            m.lines()
                .find(|l| l.starts_with("Subject: "))
                .map(str::to_string)
        })
        .collect();
    subjects.sort();
    let want: Vec<String> = (0..10).map(|i| format!("Subject: c{i:02}")).collect();
    assert_eq!(subjects, want);
    drop(primary);
    Ok(())
}
