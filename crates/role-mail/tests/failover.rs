//! Replication faults with real processes (issue 16 point 6): two `mail-mx`
//! processes replicating over mutual TLS, the writer lease driven as the
//! controller drives it (configs rewritten on a move, the lease extended as
//! heartbeat answers extend it), real clients (Python's smtplib as a sender that
//! retries on the other MX host, mbsync syncing the mailbox over IMAPS).
//!
//! The writer is SIGKILLed in the middle of a stream of deliveries; the secondary
//! takes over and receives the rest; mbsync before and after sees the same UIDs and
//! UIDVALIDITY for what it had, and every acknowledged message exactly once; the
//! returned primary gets what was written on the secondary meanwhile, hands back
//! what only it had, and takes the lease back.
//!
//! A writer cut off from the controller (its lease no longer extended) while
//! clients and senders still reach it, and unreachable for the new writer's
//! replication too (so only its lease can stop it): no message is accepted by the
//! new writer before the last one the old writer accepted.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{ensure, Context, Result};
use common::pki::Pki;
use common::*;
use proto::agent_v1::{MailConfig, MailPeer, MailWriter, TlsMaterial};

/// A `mail-mx` process this test started; SIGKILLed and reaped on drop.
struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port(ip: IpAddr) -> Result<u16> {
    Ok(std::net::TcpListener::bind(SocketAddr::new(ip, 0))?
        .local_addr()?
        .port())
}

/// One mail server: its name, addresses and files.
struct Mx {
    name: &'static str,
    ip: IpAddr,
    smtp: u16,
    imaps: u16,
    repl: u16,
    dir: PathBuf,
}

impl Mx {
    fn new(name: &'static str, ip: IpAddr, dir: &Path, pki: &Pki) -> Result<Self> {
        std::fs::create_dir_all(dir.join("state"))?;
        pki.identity(&dir.join("identity"), name);
        Ok(Mx {
            name,
            ip,
            smtp: free_port(ip)?,
            imaps: free_port(ip)?,
            repl: free_port(ip)?,
            dir: dir.to_path_buf(),
        })
    }

    fn config_path(&self) -> PathBuf {
        self.dir.join("config.json")
    }

    fn lease_path(&self) -> PathBuf {
        self.dir.join("lease")
    }

    /// The controller's config for this server: `holder` writes at `epoch`.
    fn write_config(&self, other: &Mx, holder: &str, epoch: u64, tls: &TlsMaterial) -> Result<()> {
        let repl = SocketAddr::new(other.ip, other.repl).to_string();
        self.write_config_at(other, holder, (epoch, 0), &repl, tls)
    }

    /// The same with the writer's `(epoch, not_before)` and the other server's
    /// replication address given.
    fn write_config_at(
        &self,
        other: &Mx,
        holder: &str,
        (epoch, not_before): (u64, i64),
        repl: &str,
        tls: &TlsMaterial,
    ) -> Result<()> {
        let mut cfg: MailConfig = example(None, Some(tls.clone()));
        cfg.domains[0].primary = self.name == holder;
        cfg.writer = Some(MailWriter {
            holder: Some(holder.into()),
            epoch,
            not_before,
        });
        cfg.peers = vec![MailPeer {
            addresses: vec![other.ip.to_string()],
            names: vec![],
            server: other.name.into(),
            replication: Some(repl.to_string()),
        }];
        let tmp = self.dir.join("config.tmp");
        std::fs::write(&tmp, serde_json::to_vec(&cfg)?)?;
        std::fs::rename(&tmp, self.config_path())?;
        Ok(())
    }

    fn spawn(&self) -> Result<Proc> {
        let child = Command::new(env!("CARGO_BIN_EXE_mail-mx"))
            .args([self.ip.to_string(), self.smtp.to_string()])
            .arg(self.dir.join("state"))
            .arg(self.config_path())
            .env("REPL_NAME", self.name)
            .env("REPL_IDENTITY", self.dir.join("identity"))
            .env("REPL_PORT", self.repl.to_string())
            .env("IMAPS_PORT", self.imaps.to_string())
            .env("LEASE_FILE", self.lease_path())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(
                self.dir.join(format!("{}.log", self.name)),
            )?)
            .spawn()?;
        Ok(Proc(child))
    }

    fn maildir(&self) -> PathBuf {
        self.dir.join("state/mail/example.com/alice/Maildir")
    }

    fn uids(&self) -> String {
        std::fs::read_to_string(self.maildir().join("hostplane-uidlist")).unwrap_or_default()
    }

    /// Message-ID → how many times it is in this server's INBOX.
    fn ids(&self) -> BTreeMap<String, usize> {
        ids_in(&self.maildir())
    }
}

/// Message-IDs (`<fo-N@...>` → `N`) in a Maildir's `new/` and `cur/`, counted.
fn ids_in(md: &Path) -> BTreeMap<String, usize> {
    let mut out = BTreeMap::new();
    for sub in ["new", "cur"] {
        for e in std::fs::read_dir(md.join(sub))
            .into_iter()
            .flatten()
            .flatten()
        {
            let text =
                String::from_utf8_lossy(&std::fs::read(e.path()).unwrap_or_default()).into_owned();
            if let Some(id) = text
                .lines()
                .find_map(|l| l.strip_prefix("Message-ID: <fo-"))
                .and_then(|l| l.split('@').next())
            {
                *out.entry(id.to_string()).or_default() += 1;
            }
        }
    }
    out
}

/// The controller's heartbeat answers for `mx`, while `on`: its lease runs 3 s
/// ahead, renewed every 300 ms.
fn heartbeat(mx: &Mx, on: Arc<AtomicBool>) -> tokio::task::JoinHandle<()> {
    let path = mx.lease_path();
    tokio::spawn(async move {
        while on.load(Ordering::SeqCst) {
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0);
            let _ = std::fs::write(&path, (now + 3).to_string());
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
    })
}

/// Sends `fo first..n` to the first host, on any error (451 refused, connection lost
/// or refused) moving to the next host, as a sender's MX fallback does. Logs
/// `ok N` once a 250 came back and `doubt N` when the connection failed during
/// the transaction (the server may have stored it: SMTP is at-least-once).
const PY_SENDER: &str = r#"
import smtplib, sys, time, os
hosts = [(h, int(p)) for h, p in (x.rsplit(":", 1) for x in sys.argv[1].split(","))]
n, log = int(sys.argv[2]), open(sys.argv[3], "a")
first = int(sys.argv[4]) if len(sys.argv) > 4 else 0
def note(s):
    log.write(s + "\n"); log.flush(); os.fsync(log.fileno())
deadline, i, cur, s = time.time() + 150, first, 0, None
while i < n and time.time() < deadline:
    try:
        if s is None:
            s = smtplib.SMTP(hosts[cur][0], hosts[cur][1], timeout=10)
        msg = f"Subject: fo {i}\r\nMessage-ID: <fo-{i}@sender.test>\r\n\r\nbody {i}\r\n"
        try:
            s.sendmail("x@sender.test", ["alice@example.com"], msg)
        except (smtplib.SMTPRecipientsRefused, smtplib.SMTPSenderRefused, smtplib.SMTPDataError):
            raise
        except Exception:
            note(f"doubt {i}"); raise
        note(f"ok {i} {hosts[cur][0]}"); i += 1; time.sleep(0.01)
    except Exception:
        try: s.close()
        except Exception: pass
        s, cur = None, (cur + 1) % len(hosts); time.sleep(0.05)
print("sent", i)
"#;

/// (acknowledged, in doubt) message numbers in the sender's log.
fn acked(log: &Path) -> (BTreeSet<String>, BTreeSet<String>) {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let pick = |p: &str| {
        text.lines()
            .filter_map(|l| l.strip_prefix(p))
            .filter_map(|l| l.split(' ').next().map(str::to_string))
            .collect()
    };
    (pick("ok "), pick("doubt "))
}

/// How many messages `host` acknowledged, by the sender's log.
fn acked_by(log: &Path, host: IpAddr) -> usize {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let end = format!(" {host}");
    text.lines()
        .filter(|l| l.starts_with("ok ") && l.ends_with(&end))
        .count()
}

/// mbsync of alice's mailbox on `mx` (IMAPS) into `local`; state kept there.
async fn mbsync(mx: &Mx, local: &Path, cert: &Path) -> Result<String> {
    let cfg = local.join("mbsyncrc");
    std::fs::create_dir_all(local.join("mail"))?;
    std::fs::write(
        &cfg,
        format!(
            "IMAPAccount a\nHost {ip}\nPort {port}\nUser alice@example.com\nPass alice-pw\nSSLType IMAPS\nCertificateFile {cert}\nAuthMechs PLAIN\n\nIMAPStore remote\nAccount a\n\nMaildirStore near\nPath {local}/mail/\nInbox {local}/mail/INBOX\nSubFolders Verbatim\n\nChannel c\nFar :remote:\nNear :near:\nPatterns INBOX\nCreate Both\nExpunge Both\nSyncState *\n",
            ip = mx.ip,
            port = mx.imaps,
            cert = cert.display(),
            local = local.display()
        ),
    )?;
    let r = run(
        "mbsync",
        &["-c".into(), cfg.display().to_string(), "-a".into()],
    )
    .await?;
    ensure!(r.ok, "mbsync against {} failed: {}", mx.name, r.out);
    Ok(r.out)
}

/// The far UID of every message mbsync holds, by Message-ID number, from its
/// sync state (`far near flags` lines) and the near files' `,U=` numbers; and the
/// far UIDVALIDITY.
fn far_uids(local: &Path) -> Result<(String, BTreeMap<String, u32>)> {
    let inbox = local.join("mail/INBOX");
    let state = std::fs::read_to_string(inbox.join(".mbsyncstate")).context("mbsync state")?;
    let mut lines = state.lines();
    let mut validity = String::new();
    for l in lines.by_ref() {
        if l.is_empty() {
            break;
        }
        if let Some(v) = l.strip_prefix("FarUidValidity ") {
            validity = v.to_string();
        }
    }
    let near_to_far: BTreeMap<u32, u32> = lines
        .filter_map(|l| {
            let mut w = l.split_whitespace();
            Some((
                w.nth(1)?.parse().ok()?,
                l.split_whitespace().next()?.parse().ok()?,
            ))
        })
        .collect();
    let mut out = BTreeMap::new();
    for sub in ["new", "cur"] {
        for e in std::fs::read_dir(inbox.join(sub))
            .into_iter()
            .flatten()
            .flatten()
        {
            let name = e.file_name().to_string_lossy().into_owned();
            let Some(near) = name
                .split(",U=")
                .nth(1)
                .and_then(|r| r.split([',', ':']).next())
                .and_then(|u| u.parse::<u32>().ok())
            else {
                continue;
            };
            let text = String::from_utf8_lossy(&std::fs::read(e.path())?).into_owned();
            if let (Some(id), Some(far)) = (
                text.lines()
                    .find_map(|l| l.strip_prefix("Message-ID: <fo-"))
                    .and_then(|l| l.split('@').next()),
                near_to_far.get(&near),
            ) {
                out.insert(id.to_string(), *far);
            }
        }
    }
    Ok((validity, out))
}

/// A certificate for both servers' IMAPS (mbsync trusts exactly it).
fn shared_tls(a: IpAddr, b: IpAddr) -> Result<TlsMaterial> {
    let ck = rcgen::generate_simple_self_signed(vec![
        "mx.test".to_string(),
        a.to_string(),
        b.to_string(),
    ])?;
    Ok(TlsMaterial {
        cert_pem: ck.cert.pem().into(),
        key_pem: ck.signing_key.serialize_pem().into(),
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_writer_killed_mid_delivery_loses_and_doubles_nothing() -> Result<()> {
    const N: usize = 150;
    let blk = block();
    let tmp = tempfile::tempdir()?;
    let pki = Pki::new();
    let mx1 = Mx::new("mx1", ip(blk, 1), &tmp.path().join("mx1"), &pki)?;
    let mx2 = Mx::new("mx2", ip(blk, 2), &tmp.path().join("mx2"), &pki)?;
    let tls = shared_tls(mx1.ip, mx2.ip)?;
    let cert = tmp.path().join("cert.pem");
    std::fs::write(&cert, tls.cert_pem.as_bytes())?;

    // epoch 1: mx1 writes (leased), mx2 follows
    mx1.write_config(&mx2, "mx1", 1, &tls)?;
    mx2.write_config(&mx1, "mx1", 1, &tls)?;
    let beat1 = Arc::new(AtomicBool::new(true));
    let hb1 = heartbeat(&mx1, beat1.clone());
    let mut p1 = mx1.spawn()?;
    let _p2 = mx2.spawn()?;

    // a stream of deliveries to mx1, falling back to mx2
    let log = tmp.path().join("sender.log");
    let args = vec![
        format!("{}:{},{}:{}", mx1.ip, mx1.smtp, mx2.ip, mx2.smtp),
        N.to_string(),
        log.display().to_string(),
    ];
    let sender = tokio::spawn(async move { python(PY_SENDER, &args).await });
    wait_for("40 messages acknowledged by mx1", || {
        acked(&log).0.len() >= 40
    })
    .await?;

    // mbsync before the failure, and mx2 holding what it saw
    let local = tmp.path().join("local");
    mbsync(&mx1, &local, &cert).await?;
    let (validity_before, before) = far_uids(&local)?;
    ensure!(before.len() >= 40, "mbsync saw {} messages", before.len());
    wait_for("mx2 holding what mbsync saw", || {
        let ids = mx2.ids();
        before.keys().all(|k| ids.contains_key(k))
    })
    .await?;

    // kill -9 of the writer in the middle of the stream
    let at_kill = acked(&log).0.len();
    wait_for("the stream going on", || {
        acked(&log).0.len() >= at_kill + 20
    })
    .await?;
    p1.0.kill()?;
    p1.0.wait()?;
    beat1.store(false, Ordering::SeqCst);
    let _ = hb1.await;

    // the controller moves the writer: mx2 at epoch 2, with the lease
    mx2.write_config(&mx1, "mx2", 2, &tls)?;
    mx1.write_config(&mx2, "mx2", 2, &tls)?;
    let beat2 = Arc::new(AtomicBool::new(true));
    let _hb2 = heartbeat(&mx2, beat2.clone());

    let sent = sender.await??;
    ensure!(sent.out.contains(&format!("sent {N}")), "{}", sent.out);
    let (ok, doubt) = acked(&log);
    ensure!(ok.len() == N, "acknowledged {} of {N}", ok.len());
    let (by1, by2) = (acked_by(&log, mx1.ip), acked_by(&log, mx2.ip));
    eprintln!(
        "acknowledged: {by1} by mx1, {by2} by mx2; {} in doubt; mx2 held {} of mx1's before mx1 returned",
        doubt.len(),
        mx2.ids().len() - by2.min(mx2.ids().len())
    );
    ensure!(
        by1 >= at_kill + 20 && by2 > 0,
        "the stream did not span the failover"
    );

    // mbsync against mx2 during the outage: what it had keeps UIDs and UIDVALIDITY
    mbsync(&mx2, &local, &cert).await?;
    let (validity_during, during) = far_uids(&local)?;
    ensure!(validity_during == validity_before, "UIDVALIDITY changed");
    for (id, uid) in &before {
        ensure!(
            during.get(id) == Some(uid),
            "message {id} was UID {uid} on mx1, {:?} on mx2",
            during.get(id)
        );
    }

    // mx1 returns as a follower: it gets mx2's writes and hands back its own
    let p1 = mx1.spawn()?;
    wait_for("every acknowledged message on mx2, and mx1 in step", || {
        let ids = mx2.ids();
        ok.iter().all(|k| ids.contains_key(k)) && mx1.uids() == mx2.uids()
    })
    .await?;
    for (id, n) in mx2.ids() {
        ensure!(
            n == 1 || doubt.contains(&id),
            "message {id} is {n} times on mx2 (not in doubt)"
        );
    }
    ensure!(mx1.ids() == mx2.ids(), "mx1 and mx2 differ");

    // mbsync after: every acknowledged message exactly once, earlier UIDs kept
    mbsync(&mx2, &local, &cert).await?;
    let (validity_after, after) = far_uids(&local)?;
    ensure!(validity_after == validity_before, "UIDVALIDITY changed");
    for (id, uid) in &before {
        ensure!(after.get(id) == Some(uid), "message {id} renumbered");
    }
    let near = ids_in(&local.join("mail/INBOX"));
    for id in &ok {
        let n = near.get(id).copied().unwrap_or(0);
        ensure!(
            n == 1 || (n > 1 && doubt.contains(id)),
            "message {id} is {n} times in the mbsync copy"
        );
    }

    // the lease goes back to mx1 (epoch 3): it writes, what mx2 took meanwhile is there
    beat2.store(false, Ordering::SeqCst);
    mx1.write_config(&mx2, "mx1", 3, &tls)?;
    mx2.write_config(&mx1, "mx1", 3, &tls)?;
    let beat3 = Arc::new(AtomicBool::new(true));
    let _hb3 = heartbeat(&mx1, beat3.clone());
    let log2 = tmp.path().join("sender2.log");
    let r = python(
        PY_SENDER,
        &[
            format!("{}:{}", mx1.ip, mx1.smtp),
            (N + 1).to_string(),
            log2.display().to_string(),
            N.to_string(),
        ],
    )
    .await?;
    ensure!(r.out.contains(&format!("sent {}", N + 1)), "{}", r.out);
    wait_for("mx1 and mx2 in step after the hand-back", || {
        mx1.uids() == mx2.uids() && mx1.ids().len() == N + 1
    })
    .await?;
    beat3.store(false, Ordering::SeqCst);
    drop(p1);
    Ok(())
}

/// Sends to each host in turn, every round, until both accepted `want` messages
/// after one refused; logs `ok <round> <host>` (one process: the log's order is
/// the order the servers answered in).
const PY_ALTERNATE: &str = r#"
import smtplib, sys, time, os
hosts = [(h, int(p)) for h, p in (x.rsplit(":", 1) for x in sys.argv[1].split(","))]
log = open(sys.argv[2], "a")
deadline, r = time.time() + 90, 0
while time.time() < deadline and not os.path.exists(sys.argv[3]):
    for h, p in hosts:
        try:
            s = smtplib.SMTP(h, p, timeout=5)
            s.sendmail("x@sender.test", ["alice@example.com"],
                f"Subject: cut {r} {h}\r\nMessage-ID: <cut-{r}-{h}@sender.test>\r\n\r\nbody\r\n")
            log.write(f"ok {r} {h}\n"); log.flush()
            s.quit()
        except Exception:
            pass
        r += 1
    time.sleep(0.02)
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_writer_cut_off_from_the_controller_stops_before_the_next_writes() -> Result<()> {
    let blk = block();
    let tmp = tempfile::tempdir()?;
    let pki = Pki::new();
    let mx1 = Mx::new("mx1", ip(blk, 1), &tmp.path().join("mx1"), &pki)?;
    let mx2 = Mx::new("mx2", ip(blk, 2), &tmp.path().join("mx2"), &pki)?;
    let tls = shared_tls(mx1.ip, mx2.ip)?;
    mx1.write_config(&mx2, "mx1", 1, &tls)?;
    mx2.write_config(&mx1, "mx1", 1, &tls)?;
    let beat1 = Arc::new(AtomicBool::new(true));
    let hb1 = heartbeat(&mx1, beat1.clone());
    let _p1 = mx1.spawn()?;
    let _p2 = mx2.spawn()?;

    // a sender trying both servers every round, all along
    let (log, stop) = (tmp.path().join("cut.log"), tmp.path().join("stop"));
    let args = vec![
        format!("{}:{},{}:{}", mx1.ip, mx1.smtp, mx2.ip, mx2.smtp),
        log.display().to_string(),
        stop.display().to_string(),
    ];
    let sender = tokio::spawn(async move { python(PY_ALTERNATE, &args).await });
    let by = |host: IpAddr| -> Vec<usize> {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        let end = format!(" {host}");
        text.lines()
            .filter(|l| l.ends_with(&end))
            .filter_map(|l| l.split(' ').nth(1)?.parse().ok())
            .collect()
    };
    wait_for("mx1 accepting", || by(mx1.ip).len() >= 5).await?;

    // mx1 cut off from the controller: no more heartbeat answers (it still serves
    // clients). The controller gives mx2 the writer at epoch 2, to start once
    // mx1's last lease (3 s) and a margin have passed; mx1's replication port is
    // unreachable from mx2 (a partition), so mx1 never hears of epoch 2.
    beat1.store(false, Ordering::SeqCst);
    let _ = hb1.await;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_secs();
    let not_before = i64::try_from(now + 3 + 2)?;
    let closed = SocketAddr::new(mx1.ip, free_port(mx1.ip)?).to_string();
    mx2.write_config_at(&mx1, "mx2", (2, not_before), &closed, &tls)?;
    let beat2 = Arc::new(AtomicBool::new(true));
    let _hb2 = heartbeat(&mx2, beat2.clone());

    wait_for("mx2 accepting", || by(mx2.ip).len() >= 5).await?;
    std::fs::write(&stop, b"")?;
    sender.await??;
    let (last1, first2) = (
        by(mx1.ip).into_iter().max().unwrap_or(0),
        by(mx2.ip).into_iter().min().unwrap_or(0),
    );
    eprintln!(
        "mx1 accepted {} (last in round {last1}), mx2 {} (first in round {first2})",
        by(mx1.ip).len(),
        by(mx2.ip).len()
    );
    ensure!(
        last1 < first2,
        "both servers accepted writes: mx1 until round {last1}, mx2 from round {first2}"
    );
    // and mx1 did stop on its own: nothing accepted there after mx2 began
    ensure!(by(mx1.ip).iter().all(|&r| r < first2));
    beat2.store(false, Ordering::SeqCst);
    Ok(())
}
