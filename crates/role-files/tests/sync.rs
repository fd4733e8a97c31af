//! Content sync end to end: a files server (FTP + origin) and a sync client (what a web
//! server runs) on their own loopback addresses, mutual TLS with certificates from an
//! rcgen CA made in the test; uploads by real `curl` over FTPS.

mod common;

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::Result;
use common::*;
use role_files::client::current_dir;
use role_files::{SyncClient, SyncOptions, SyncState};
use tokio::sync::watch;

struct Web {
    dir: tempfile::TempDir,
    opts: SyncOptions,
}

/// Client identity files for `cn` from `pki` (the origin trusts `trusted_ca`).
fn web(srv: &FilesServer, pki: &Pki, cn: &str, bind: IpAddr) -> Result<Web> {
    let dir = tempfile::tempdir()?;
    let m = pki.client(cn)?;
    let (cert, key, ca) = (
        dir.path().join("c.pem"),
        dir.path().join("k.pem"),
        dir.path().join("ca.pem"),
    );
    std::fs::write(&cert, &*m.cert_pem)?;
    std::fs::write(&key, &*m.key_pem)?;
    std::fs::write(&ca, &srv.pki.ca_pem)?;
    let origin = srv
        .origin
        .map(|a| format!("https://{a}"))
        .unwrap_or_default();
    let mut opts = SyncOptions::new(
        origin,
        cert,
        key,
        ca,
        Some(bind),
        dir.path().join("content"),
    );
    opts.full_check = Duration::from_secs(30);
    opts.poll_wait = Duration::from_secs(10);
    Ok(Web { dir, opts })
}

fn read(p: &Path) -> Option<Vec<u8>> {
    std::fs::read(p).ok()
}

struct Running {
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        self.task.abort();
    }
}

fn spawn(client: SyncClient, sites: Vec<String>) -> (Running, watch::Sender<Vec<String>>) {
    let (tx, rx) = watch::channel(sites);
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(client.run(rx, async move {
        let _ = stopped.await;
    }));
    (
        Running {
            stop: Some(stop),
            task,
        },
        tx,
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ftp_upload_change_and_delete_reach_the_web_server() -> Result<()> {
    let block = AddrBlock::next();
    let srv = FilesServer::start(block.addr(41), true, default_config()).await?;
    let w = web(&srv, &srv.pki, "web-1", block.addr(11))?;
    let client = SyncClient::new(w.opts.clone())?;
    let status = client.status();
    let (_run, _sites) = spawn(client, vec!["a.example".into()]);
    let cur = current_dir(&w.opts.content_root, "a.example");
    ensure(
        eventually(Duration::from_secs(10), || cur.is_dir()).await,
        || "first sync".into(),
    )?;
    ensure(
        eventually(Duration::from_secs(10), || {
            status.get().state == SyncState::Ok
        })
        .await,
        || format!("{:?}", status.get()),
    )?;

    // upload by FTPS → served by the web server
    let work = tempfile::tempdir()?;
    let page = work.path().join("index.html");
    let body: Vec<u8> = (0..300_000u32).map(|i| (i * 7 % 256) as u8).collect();
    std::fs::write(&page, &body)?;
    let url = srv.url();
    let up = curl(
        &srv,
        "alice",
        "alice-pw",
        true,
        &[
            "-T",
            &page.display().to_string(),
            &format!("{url}/index.html"),
        ],
    )
    .await?;
    ensure(up.ok, || format!("upload {up:?}"))?;
    let t = Instant::now();
    let target = cur.join("index.html");
    ensure(
        eventually(Duration::from_secs(10), || {
            read(&target).as_deref() == Some(&body[..])
        })
        .await,
        || "upload never arrived".into(),
    )?;
    eprintln!(
        "FTP upload visible at the web server after {:?}",
        t.elapsed()
    );

    // a change and a new nested file
    std::fs::write(&page, b"v2")?;
    let nested = work.path().join("app.js");
    std::fs::write(&nested, b"console.log(1)")?;
    let up = curl(
        &srv,
        "alice",
        "alice-pw",
        true,
        &[
            "-T",
            &page.display().to_string(),
            &format!("{url}/index.html"),
        ],
    )
    .await?;
    ensure(up.ok, || format!("re-upload {up:?}"))?;
    let up = curl(
        &srv,
        "alice",
        "alice-pw",
        true,
        &[
            "--ftp-create-dirs",
            "-T",
            &nested.display().to_string(),
            &format!("{url}/js/app.js"),
        ],
    )
    .await?;
    ensure(up.ok, || format!("nested upload {up:?}"))?;
    ensure(
        eventually(Duration::from_secs(10), || {
            read(&target).as_deref() == Some(b"v2")
                && read(&cur.join("js/app.js")).as_deref() == Some(b"console.log(1)")
        })
        .await,
        || "change never arrived".into(),
    )?;

    // a delete
    let rm = curl(
        &srv,
        "alice",
        "alice-pw",
        true,
        &["-Q", "DELE index.html", &format!("{url}/")],
    )
    .await?;
    ensure(rm.ok, || format!("delete {rm:?}"))?;
    ensure(
        eventually(Duration::from_secs(10), || {
            !target.exists() && cur.join("js/app.js").exists()
        })
        .await,
        || "delete never arrived".into(),
    )?;
    // old versions are collected right after the switch: one version folder and its
    // manifest remain
    let site = w.opts.content_root.join("a.example");
    let versions = || -> Vec<String> {
        names(&site)
            .unwrap_or_default()
            .into_iter()
            .filter(|n| n.starts_with('v'))
            .collect()
    };
    ensure(
        eventually(Duration::from_secs(10), || versions().len() == 2).await,
        || format!("versions left: {:?}", versions()),
    )?;
    drop(w.dir);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changes_made_outside_ftp_are_found_by_the_rescan_or_full_check() -> Result<()> {
    let block = AddrBlock::next();
    let srv = FilesServer::start(block.addr(41), true, default_config()).await?;
    write(&srv.site("a.example").join("direct.txt"), b"direct")?;
    for i in 0..40 {
        write(
            &srv.site("a.example").join(format!("many/f{i}.txt")),
            format!("file {i}").as_bytes(),
        )?;
    }
    let w = web(&srv, &srv.pki, "web-1", block.addr(11))?;
    let client = SyncClient::new(w.opts.clone())?;
    assert!(client.sync_site("a.example").await?);
    assert!(
        !client.sync_site("a.example").await?,
        "unchanged site switched again"
    );
    let cur = current_dir(&w.opts.content_root, "a.example");
    ensure(
        read(&cur.join("direct.txt")).as_deref() == Some(b"direct"),
        || "content".into(),
    )?;
    for i in 0..40 {
        let got = read(&cur.join(format!("many/f{i}.txt")));
        ensure(got == Some(format!("file {i}").into_bytes()), || {
            format!("many/f{i}.txt: {got:?}")
        })?;
    }
    // running: a file written straight to the site folder (not through FTP) arrives too
    let (_run, _sites) = spawn(client, vec!["a.example".into()]);
    write(&srv.site("a.example").join("later/deploy.txt"), b"deployed")?;
    let target = cur.join("later/deploy.txt");
    ensure(
        eventually(Duration::from_secs(10), || {
            read(&target).as_deref() == Some(b"deployed")
        })
        .await,
        || "rescan never noticed".into(),
    )?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn strangers_and_unlisted_servers_get_nothing() -> Result<()> {
    let block = AddrBlock::next();
    let srv = FilesServer::start(block.addr(41), true, default_config()).await?;
    write(&srv.site("a.example").join("index.html"), b"a")?;
    write(&srv.site("b.example").join("index.html"), b"b")?;
    std::fs::write(srv.dir.path().join("outside.txt"), b"outside")?;
    std::os::unix::fs::symlink("../../outside.txt", srv.site("a.example").join("evil"))?;
    // a certificate from another CA: the handshake fails
    let other = Pki::new("other CA")?;
    let stranger = SyncClient::new(web(&srv, &other, "web-1", block.addr(12))?.opts)?;
    let e = stranger.fetch_manifest("a.example").await;
    ensure(e.is_err(), || format!("foreign CA accepted: {e:?}"))?;
    // a valid certificate, but web-2 is not granted a.example; web-1 is not granted b.example
    let web2 = SyncClient::new(web(&srv, &srv.pki, "web-2", block.addr(13))?.opts)?;
    ensure(web2.fetch_manifest("a.example").await.is_err(), || {
        "web-2 got a.example".into()
    })?;
    let web1 = SyncClient::new(web(&srv, &srv.pki, "web-1", block.addr(11))?.opts)?;
    ensure(web1.fetch_manifest("b.example").await.is_err(), || {
        "web-1 got b.example".into()
    })?;
    // the granted site: the symlink is not in the manifest and cannot be fetched
    let m = web1.fetch_manifest("a.example").await?;
    let paths: Vec<&str> = m.files.iter().map(|f| f.path.as_str()).collect();
    ensure(paths == ["index.html"], || format!("manifest {paths:?}"))?;
    let ca = srv.ca_file()?;
    let w = web(&srv, &srv.pki, "web-1", block.addr(11))?;
    let origin = srv.origin.map(|a| a.to_string()).unwrap_or_default();
    for path in [
        "evil",
        "..%2F..%2Foutside.txt",
        "%2Fetc%2Fpasswd",
        "..%2Fb.example%2Findex.html",
    ] {
        let r = run(
            "curl",
            &[
                "-sS",
                "--cacert",
                &ca.display().to_string(),
                "--cert",
                &w.opts.client_cert.display().to_string(),
                "--key",
                &w.opts.client_key.display().to_string(),
                "-w",
                "%{http_code}",
                "-o",
                "/dev/null",
                &format!("https://{origin}/v1/sync/a.example/file?path={path}"),
            ],
        )
        .await?;
        ensure(r.stdout == "404" || r.stdout == "400", || {
            format!("{path}: {r:?}")
        })?;
    }
    // and curl without a client certificate is refused at the handshake
    let r = run(
        "curl",
        &[
            "-sS",
            "--cacert",
            &ca.display().to_string(),
            &format!("https://{origin}/v1/sync/changes"),
        ],
    )
    .await?;
    ensure(!r.ok, || format!("no client cert accepted: {r:?}"))?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_client_connects_from_its_own_address() -> Result<()> {
    let block = AddrBlock::next();
    let srv = FilesServer::start(block.addr(41), true, default_config()).await?;
    let fake = tokio::net::TcpListener::bind((block.addr(42), 0)).await?;
    let mut w = web(&srv, &srv.pki, "web-1", block.addr(11))?;
    w.opts.origin = format!("https://{}", fake.local_addr()?);
    let client = SyncClient::new(w.opts.clone())?;
    let fetch = tokio::spawn(async move { client.fetch_manifest("a.example").await.is_ok() });
    let (_conn, peer) = fake.accept().await?;
    ensure(peer.ip() == block.addr(11), || {
        format!("connected from {peer}")
    })?;
    fetch.abort();
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn origin_down_keeps_the_last_copy_and_reports_degraded() -> Result<()> {
    let block = AddrBlock::next();
    let srv = FilesServer::start(block.addr(41), true, default_config()).await?;
    write(&srv.site("a.example").join("index.html"), b"kept")?;
    let w = web(&srv, &srv.pki, "web-1", block.addr(11))?;
    let client = SyncClient::new(w.opts.clone())?;
    let status = client.status();
    let (_run, _sites) = spawn(client, vec!["a.example".into()]);
    let page: PathBuf = current_dir(&w.opts.content_root, "a.example").join("index.html");
    ensure(
        eventually(Duration::from_secs(10), || {
            read(&page).as_deref() == Some(b"kept")
        })
        .await,
        || "first sync".into(),
    )?;
    srv.stop_origin();
    // the files server changes meanwhile; nothing can arrive, nothing is lost
    write(&srv.site("a.example").join("index.html"), b"new")?;
    srv.state.changes().bump();
    ensure(
        eventually(Duration::from_secs(20), || {
            status.get().state == SyncState::Degraded
        })
        .await,
        || format!("not degraded: {:?}", status.get()),
    )?;
    ensure(read(&page).as_deref() == Some(b"kept"), || {
        "last copy lost".into()
    })?;
    ensure(status.get().sites_synced == 1, || {
        format!("{:?}", status.get())
    })?;
    Ok(())
}
