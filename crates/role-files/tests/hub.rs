//! The files engine as the site-file hub (issue 14), with real clients on this
//! builder's own addresses (127.0.14.x, or `HOSTPLANE_TEST_NET`): curl FTP uploads land in the hub's log and
//! manifest, web servers push over HTTPS with
//! their client certificates (a stale push after an FTP write conflicts, nothing lost;
//! an ungranted server is refused; bad paths, links out and long names are refused; a
//! quota holds), a restore brings a deleted file back and is reported, and an API
//! deployment keeps the site's persistent and local paths and reaches the log.

mod common;

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use agent::supervisor::{AgentTlsPaths, EngineContext, RoleEngine};
use anyhow::{Context, Result};
use common::*;
use model::PlacementMode;
use proto::agent_v1::{
    FileRestore, FilesConfig, FilesReport, FilesSiteOptions, RoleConfig, RoleReport, SiteDeployment,
};
use proto::sitesync::{Change, LogRead, Mtime, Node, Op, Outcome};
use sitesync::api::{HubApi, HubError};
use sitesync::transport::client::HttpsHub;

const SITE: &str = "a.example";

/// Host `host` of 127.0.14.0/24, or of the /24 `HOSTPLANE_TEST_NET` names (as
/// [`AddrBlock::addr`]) on a machine where this builder owns another range.
fn ip(host: u8) -> IpAddr {
    if std::env::var("HOSTPLANE_TEST_NET").is_ok() {
        return AddrBlock::next().addr(host);
    }
    IpAddr::V4(std::net::Ipv4Addr::new(127, 0, 14, host))
}

fn port_after(detail: &str, what: &str) -> Result<u16> {
    let rest = &detail[detail.find(what).context("no such part")? + what.len()..];
    let addr = rest.split_whitespace().next().context("no address")?;
    let addr = addr.trim_end_matches([',', ';']);
    Ok(addr.rsplit(':').next().context("no port")?.parse()?)
}

/// A files engine started as `files-1` on `ip`, with its own state dir and identity.
struct Engine {
    engine: Box<dyn RoleEngine>,
    state: tempfile::TempDir,
    pki: Pki,
    ip: IpAddr,
    ftp_port: u16,
    sync_port: u16,
}

impl Engine {
    /// Starts the engine; `before` prepares its state dir first.
    async fn start(
        ip: IpAddr,
        passive: &str,
        controllers: Vec<String>,
        pki: Pki,
        before: impl FnOnce(&Path) -> Result<()>,
    ) -> Result<Engine> {
        let state = tempfile::tempdir()?;
        before(&state.path().join("engines/files"))?;
        let ca = state.path().join("ca.pem");
        std::fs::write(&ca, &pki.ca_pem)?;
        let me = pki.client("files-1")?;
        std::fs::write(state.path().join("cert.pem"), &*me.cert_pem)?;
        std::fs::write(state.path().join("key.pem"), &*me.key_pem)?;
        let mut options = BTreeMap::new();
        options.insert("sync_port".to_string(), "0".to_string());
        options.insert("ftp_port".to_string(), "0".to_string());
        options.insert("passive_ports".to_string(), passive.to_string());
        options.insert("ftp_tls_required".to_string(), "false".to_string());
        // no periodic comparison during the test: what is adopted, FTP or capture adopted
        options.insert("rescan_secs".to_string(), "3600".to_string());
        let ctx = EngineContext {
            server: "files-1".into(),
            role: "files".into(),
            bind: ip,
            state_dir: state.path().join("engines/files"),
            identity: Some(AgentTlsPaths {
                cert: state.path().join("cert.pem"),
                key: state.path().join("key.pem"),
                ca,
            }),
            options,
            controllers,
        };
        let engine = role_files::start_engine(&ctx)?;
        let h = engine.health();
        Ok(Engine {
            ftp_port: port_after(&h.detail, "ftp on ")?,
            sync_port: port_after(&h.detail, "site-file hub on ")?,
            engine,
            state,
            pki,
            ip,
        })
    }

    fn tree(&self) -> PathBuf {
        self.state
            .path()
            .join("engines/files/hub")
            .join(SITE)
            .join("tree")
    }

    fn config(&self) -> Result<FilesConfig> {
        Ok(FilesConfig {
            sites: vec![SITE.into()],
            ftp_accounts: vec![account("alice", "alice-pw", SITE, "", 0)],
            tls: Some(self.pki.server(self.ip)?),
            sync_clients: vec![("web-1".into(), vec![SITE.into()])],
            site_options: vec![FilesSiteOptions {
                domain: SITE.into(),
                keep_paths: vec!["uploads".into()],
                local_paths: vec!["cache".into()],
                mode: PlacementMode::All,
                quota_mb: 1,
            }],
            ..Default::default()
        })
    }

    async fn apply(&mut self, cfg: &FilesConfig) -> Result<()> {
        self.engine.apply(&RoleConfig::Files(cfg.clone())).await?;
        Ok(())
    }

    /// A web server's HTTPS connection to the hub, as `name`.
    fn web(&self, name: &str) -> Result<HttpsHub> {
        let c = self.pki.client(name)?;
        HttpsHub::new(
            &format!("https://{}:{}", self.ip, self.sync_port),
            &c.cert_pem,
            &c.key_pem,
            &self.pki.ca_pem,
        )
        .map_err(|e| anyhow::anyhow!("{e}"))
    }

    async fn curl_put(&self, name: &str, data: &[u8]) -> Result<Run> {
        let f = self.state.path().join("upload.tmp");
        std::fs::write(&f, data)?;
        let url = format!("ftp://{}:{}/{name}", self.ip, self.ftp_port);
        run(
            "curl",
            &[
                "-sS",
                "--max-time",
                "30",
                "-u",
                "alice:alice-pw",
                "--ftp-create-dirs",
                "-T",
                &f.display().to_string(),
                &url,
            ],
        )
        .await
    }

    fn report(&self) -> FilesReport {
        match self.engine.report() {
            Some(RoleReport::Files(r)) => r,
            other => panic!("not a files report: {other:?}"),
        }
    }
}

impl Drop for Engine {
    fn drop(&mut self) {
        drop(self.engine.shutdown());
    }
}

/// Runs a blocking hub call off the runtime's threads.
async fn call<T: Send + 'static>(
    web: &HttpsHub,
    f: impl FnOnce(&HttpsHub) -> Result<T, HubError> + Send + 'static,
) -> Result<T, HubError> {
    let web = web.clone();
    tokio::task::spawn_blocking(move || f(&web))
        .await
        .expect("hub call panicked")
}

fn hash(data: &[u8]) -> String {
    blake3::hash(data).to_hex().to_string()
}

/// Pushes `data` at `path` as a web server would (blob, then the change).
async fn push_file(
    web: &HttpsHub,
    id: &str,
    path: &str,
    base: Option<String>,
    data: &[u8],
) -> Result<Outcome, HubError> {
    let (id, path, data) = (id.to_string(), path.to_string(), data.to_vec());
    call(web, move |w| {
        w.put_chunk(SITE, &hash(&data), data.len() as u64, 0, &data)?;
        w.push(
            SITE,
            &Change {
                id,
                path,
                base,
                op: Op::Put {
                    node: Node::File {
                        blake3: hash(&data),
                        size: data.len() as u64,
                        mode: 0o644,
                        mtime: Mtime {
                            secs: 1_700_000_000,
                            nanos: 5,
                        },
                    },
                },
            },
        )
    })
    .await
}

async fn manifest_version(web: &HttpsHub, path: &str) -> Result<Option<String>> {
    let p = path.to_string();
    let m = call(web, |w| w.manifest(SITE)).await?;
    Ok(m.nodes.get(&p).map(Node::version))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ftp_and_web_servers_meet_in_the_hub_log() -> Result<()> {
    let mut e = Engine::start(
        ip(21),
        "31100-31109",
        vec![],
        Pki::new("controller CA")?,
        |_| Ok(()),
    )
    .await?;
    let cfg = e.config()?;
    e.apply(&cfg).await?;
    let web1 = e.web("web-1")?;

    // an FTP upload is in the log and the manifest once curl has its 226
    let r = e.curl_put("index.php", b"v1 from ftp").await?;
    ensure(r.ok, || format!("upload: {r:?}"))?;
    let log = call(&web1, |w| w.log_after(SITE, 0, 100)).await?;
    let LogRead::Entries { entries, .. } = log else {
        anyhow::bail!("snapshot asked")
    };
    ensure(
        entries
            .iter()
            .any(|x| x.change.path == "index.php" && x.origin == "files-1"),
        || format!("not in the log: {entries:?}"),
    )?;
    ensure(
        manifest_version(&web1, "index.php").await? == Some(hash(b"v1 from ftp")),
        || "manifest".into(),
    )?;
    // PHP on web-1 edits index.php from v1 while an FTP upload replaces it: the push is
    // stale, conflicts, and its content is kept; the FTP version stays
    let r = e.curl_put("index.php", b"v2 from ftp").await?;
    ensure(r.ok, || format!("upload: {r:?}"))?;
    let o = push_file(
        &web1,
        "php-1",
        "index.php",
        Some(hash(b"v1 from ftp")),
        b"v3 from php",
    )
    .await?;
    ensure(matches!(o, Outcome::Conflict { kept: Some(_), .. }), || {
        format!("{o:?}")
    })?;
    ensure(
        std::fs::read(e.tree().join("index.php"))? == b"v2 from ftp",
        || "ftp version lost".into(),
    )?;
    // a write made on the files server that nothing told the hub about yet (no FTP):
    // adopted before the push, which then conflicts
    std::fs::write(e.tree().join("index.php"), b"v4 written here")?;
    let o = push_file(
        &web1,
        "php-2",
        "index.php",
        Some(hash(b"v2 from ftp")),
        b"v5 from php",
    )
    .await?;
    ensure(matches!(o, Outcome::Conflict { kept: Some(_), .. }), || {
        format!("{o:?}")
    })?;
    ensure(
        std::fs::read(e.tree().join("index.php"))? == b"v4 written here",
        || "local write lost".into(),
    )?;
    ensure(
        manifest_version(&web1, "index.php").await? == Some(hash(b"v4 written here")),
        || "not adopted".into(),
    )?;
    ensure(
        eventually(Duration::from_secs(5), || {
            e.report().sites.iter().any(|s| {
                s.domain == SITE && s.conflicts.len() == 2 && s.conflicts[0].change_id == "php-2"
            })
        })
        .await,
        || format!("conflicts not reported newest first: {:?}", e.report()),
    )?;

    // a server the hub does not grant the site is refused (403)
    let web9 = e.web("web-9")?;
    match call(&web9, |w| w.manifest(SITE)).await {
        Err(HubError::Refused(m)) if m.contains("403") => {}
        other => anyhow::bail!("ungranted server: {other:?}"),
    }
    match push_file(&web9, "evil-1", "x.php", None, b"x").await {
        Err(HubError::Refused(m)) if m.contains("403") => {}
        other => anyhow::bail!("ungranted push: {other:?}"),
    }

    // bad input: `..`, a symlink out, a name over 255 bytes; over the quota (1 MiB)
    for path in ["../escape.php", "a/../../b"] {
        let o = push_file(&web1, &format!("bad-{}", path.len()), path, None, b"x").await;
        ensure(matches!(o, Err(HubError::Refused(_))), || {
            format!("{path}: {o:?}")
        })?;
    }
    let link = Change {
        id: "link-out".into(),
        path: "passwd".into(),
        base: None,
        op: Op::Put {
            node: Node::Symlink {
                target: "../../../../etc/passwd".into(),
            },
        },
    };
    let o = call(&web1, move |w| w.push(SITE, &link)).await?;
    ensure(matches!(o, Outcome::Refused { .. }), || {
        format!("symlink out: {o:?}")
    })?;
    ensure(
        std::fs::symlink_metadata(e.tree().join("passwd")).is_err(),
        || "link created".into(),
    )?;
    let long = "n".repeat(300);
    let o = push_file(&web1, "long", &long, None, b"x").await?;
    ensure(matches!(o, Outcome::Refused { .. }), || {
        format!("long name: {o:?}")
    })?;
    let big = vec![7u8; 2 << 20];
    match push_file(&web1, "big", "big.bin", None, &big).await? {
        Outcome::Refused {
            reason,
            retry: false,
            ..
        } if reason.contains("quota") => {}
        o => anyhow::bail!("over quota: {o:?}"),
    }
    let r = e.curl_put(&"m".repeat(300), b"x").await?;
    ensure(!r.ok, || format!("FTP took a name over 255 bytes: {r:?}"))?;

    // a deleted file comes back by a restore, applied once and reported
    let current = manifest_version(&web1, "index.php").await?;
    let del = Change {
        id: "rm-1".into(),
        path: "index.php".into(),
        base: current,
        op: Op::Delete,
    };
    let o = call(&web1, move |w| w.push(SITE, &del)).await?;
    ensure(matches!(o, Outcome::Applied { .. }), || {
        format!("delete: {o:?}")
    })?;
    ensure(!e.tree().join("index.php").exists(), || {
        "not deleted".into()
    })?;
    let mut with_restore = cfg.clone();
    with_restore.restores = vec![
        FileRestore {
            id: "r1".into(),
            domain: SITE.into(),
            path: "index.php".into(),
            at: None,
        },
        FileRestore {
            id: "r2".into(),
            domain: SITE.into(),
            path: "never-there.txt".into(),
            at: None,
        },
    ];
    e.apply(&with_restore).await?;
    ensure(
        std::fs::read(e.tree().join("index.php"))? == b"v4 written here",
        || "not restored".into(),
    )?;
    let mut results = e.report().restores;
    results.sort_by(|a, b| a.id.cmp(&b.id));
    ensure(
        results.len() == 2 && results[0].ok && !results[1].ok,
        || format!("{results:?}"),
    )?;
    // applied once: deleting it again and re-applying the same config restores nothing
    std::fs::remove_file(e.tree().join("index.php"))?;
    e.apply(&with_restore).await?;
    ensure(!e.tree().join("index.php").exists(), || {
        "restored twice".into()
    })?;

    // a file deleted over FTP is kept first and restorable
    let r = e.curl_put("precious.txt", b"precious").await?;
    ensure(r.ok, || format!("upload: {r:?}"))?;
    let url = format!("ftp://{}:{}/", e.ip, e.ftp_port);
    let r = run(
        "curl",
        &[
            "-sS",
            "--max-time",
            "30",
            "-u",
            "alice:alice-pw",
            "-Q",
            "DELE precious.txt",
            &url,
        ],
    )
    .await?;
    ensure(r.ok && !e.tree().join("precious.txt").exists(), || {
        format!("delete: {r:?}")
    })?;
    ensure(
        manifest_version(&web1, "precious.txt").await?.is_none(),
        || "the delete is not in the log".into(),
    )?;
    with_restore.restores.push(FileRestore {
        id: "r3".into(),
        domain: SITE.into(),
        path: "precious.txt".into(),
        at: None,
    });
    e.apply(&with_restore).await?;
    ensure(
        std::fs::read(e.tree().join("precious.txt"))? == b"precious",
        || format!("not restored: {:?}", e.report().restores),
    )?;

    // writes under a local path are not replicated
    let r = e.curl_put("cache/page.html", b"cached").await?;
    ensure(r.ok, || format!("upload: {r:?}"))?;
    ensure(
        manifest_version(&web1, "cache/page.html").await?.is_none(),
        || "a local path was replicated".into(),
    )?;

    // usage, files and SQLite databases reported
    let mut db = b"SQLite format 3\0".to_vec();
    db.extend([0u8; 100]);
    let r = e.curl_put("data/site.db", &db).await?;
    ensure(r.ok, || format!("upload: {r:?}"))?;
    ensure(
        manifest_version(&web1, "data/site.db").await? == Some(hash(&db)),
        || "a nested FTP upload is not in the log at its 226".into(),
    )?;
    ensure(
        eventually(Duration::from_secs(5), || {
            e.report().sites.iter().any(|s| {
                s.sqlite_paths == ["data/site.db"]
                    && s.files >= 1
                    && s.usage_bytes >= db.len() as u64
            })
        })
        .await,
        || format!("report: {:?}", e.report()),
    )?;
    Ok(())
}

/// A controller that serves one deployment archive over mutual TLS.
async fn fake_controller(
    ip: IpAddr,
    pki: &Pki,
    id: String,
    archive: Vec<u8>,
) -> Result<(String, tokio::sync::oneshot::Sender<()>)> {
    let cert = Arc::new(role_files::tls::SwapCert::default());
    let m = pki.server(ip)?;
    cert.set(Some(role_files::tls::certified_key(
        &m.cert_pem,
        &m.key_pem,
    )?));
    let tls = role_files::tls::sync_port_config(cert, pki.ca_pem.as_bytes())?;
    let l = tokio::net::TcpListener::bind((ip, 0)).await?;
    let base = format!("https://{}", l.local_addr()?);
    let path = proto::agent_v1::deployment_path(&id);
    let archive = hyper::body::Bytes::from(archive);
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(sitesync::transport::mtls::serve_mutual_tls(
        l,
        tls,
        "fake controller",
        move |_client, req: http::Request<hyper::body::Incoming>| {
            let (path, archive) = (path.clone(), archive.clone());
            async move {
                let mut r =
                    http::Response::new(http_body_util::Full::new(if req.uri().path() == path {
                        archive
                    } else {
                        hyper::body::Bytes::new()
                    }));
                if req.uri().path() != path {
                    *r.status_mut() = http::StatusCode::NOT_FOUND;
                }
                r
            }
        },
        async {
            let _ = rx.await;
        },
    ));
    Ok((base, tx))
}

fn tar_of(entries: &[(&str, &[u8])]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for (path, data) in entries {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::Regular);
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_cksum();
        b.append_data(&mut h, path, *data).expect("tar");
    }
    b.into_inner().expect("tar")
}

fn write_in(tree: &Path, rel: &str, data: &[u8]) -> Result<()> {
    write(&tree.join(rel), data)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deployment_keeps_kept_and_local_paths_and_reaches_the_log() -> Result<()> {
    let pki = Pki::new("controller CA")?;
    let archive = tar_of(&[
        ("index.html", b"<h1>deployed</h1>"),
        ("uploads/default.png", b"archive default"),
        ("uploads/photo.jpg", b"archive photo"),
        ("cache/page.html", b"archive cache"),
    ]);
    let id = hash(&archive);
    let (base, _stop) = fake_controller(ip(22), &pki, id.clone(), archive.clone()).await?;
    let mut e = Engine::start(ip(23), "31110-31119", vec![base], pki, |state| {
        // a site folder of the version before the hub: moved into place on start
        write(
            &state.join("sites").join(SITE).join("from-before.html"),
            b"old layout",
        )
    })
    .await?;
    let cfg = e.config()?;
    e.apply(&cfg).await?;
    let web1 = e.web("web-1")?;
    ensure(
        manifest_version(&web1, "from-before.html").await? == Some(hash(b"old layout")),
        || "the old site folder was not moved into the hub".into(),
    )?;
    for (p, d) in [
        ("old.php", &b"old"[..]),
        ("uploads/photo.jpg", b"customer photo"),
        ("cache/page.html", b"cached here"),
    ] {
        let r = e.curl_put(p, d).await?;
        ensure(r.ok, || format!("upload {p}: {r:?}"))?;
    }
    let mut deploy = cfg.clone();
    deploy.deployments = vec![SiteDeployment {
        domain: SITE.into(),
        id,
        size: archive.len() as u64,
    }];
    e.apply(&deploy).await?;
    let tree = e.tree();
    let mut deployed = false;
    for _ in 0..100 {
        if manifest_version(&web1, "index.html").await? == Some(hash(b"<h1>deployed</h1>")) {
            deployed = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    ensure(deployed, || {
        "the deployment is not in the hub's manifest".into()
    })?;
    let read = |p: &str| std::fs::read(tree.join(p)).unwrap_or_default();
    ensure(!tree.join("old.php").exists(), || "old file kept".into())?;
    ensure(read("uploads/photo.jpg") == b"customer photo", || {
        "kept path replaced".into()
    })?;
    ensure(read("uploads/default.png") == b"archive default", || {
        "missing kept file not written".into()
    })?;
    ensure(read("cache/page.html") == b"cached here", || {
        "local path replaced".into()
    })?;
    ensure(manifest_version(&web1, "old.php").await?.is_none(), || {
        "the delete is not in the log".into()
    })?;
    write_in(&tree, "written-here.txt", b"x")?;
    ensure(
        {
            let mut seen = false;
            for _ in 0..50 {
                if manifest_version(&web1, "written-here.txt").await?.is_some() {
                    seen = true;
                    break;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            seen
        },
        || "a write outside FTP was not adopted by capture".into(),
    )?;
    Ok(())
}

/// A web server's replica (`sitesync::replica`) as `web-1` in `dir`.
fn replica(dir: &Path) -> Result<sitesync::replica::Replica> {
    let root = dir.join("site");
    std::fs::create_dir_all(&root)?;
    Ok(sitesync::replica::Replica::open(
        sitesync::replica::ReplicaConfig {
            site: SITE.into(),
            server: "web-1".into(),
            root,
            state: dir.join("state"),
            local: vec!["cache".into()],
            keep: vec![],
            owner: None,
            chunk_size: 64 * 1024,
        },
    )?)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_web_replica_and_ftp_converge_through_the_engine() -> Result<()> {
    use std::os::unix::fs::MetadataExt;
    let mut e = Engine::start(
        ip(24),
        "31120-31129",
        vec![],
        Pki::new("controller CA")?,
        |_| Ok(()),
    )
    .await?;
    let cfg = e.config()?;
    e.apply(&cfg).await?;
    let web1 = e.web("web-1")?;
    let r = e.curl_put("wp-config.php", b"<?php // from ftp").await?;
    ensure(r.ok, || format!("upload: {r:?}"))?;
    let web = tempfile::tempdir()?;
    let (dir, hub) = (web.path().to_path_buf(), web1.clone());
    let rep = tokio::task::spawn_blocking(move || -> Result<sitesync::replica::Replica> {
        let mut rep = replica(&dir)?;
        rep.sync(&hub)?;
        // PHP writes on the web server: pushed to the files server
        write(&dir.join("site/wp-content/uploads/a.jpg"), &[9u8; 70_000])?;
        rep.observe(&[sitesync::replica::Look::Path(
            "wp-content/uploads/a.jpg".into(),
        )])?;
        let report = rep.sync(&hub)?;
        ensure(rep.pending() == 0, || format!("not all pushed: {report:?}"))?;
        Ok(rep)
    })
    .await??;
    let tree = e.tree();
    ensure(
        std::fs::read(web.path().join("site/wp-config.php"))? == b"<?php // from ftp",
        || "the FTP upload did not reach the replica".into(),
    )?;
    let (a, b) = (
        std::fs::metadata(tree.join("wp-config.php"))?,
        std::fs::metadata(web.path().join("site/wp-config.php"))?,
    );
    ensure(
        (a.mtime(), a.mtime_nsec()) == (b.mtime(), b.mtime_nsec()),
        || "mtimes differ".into(),
    )?;
    ensure(
        std::fs::read(tree.join("wp-content/uploads/a.jpg"))? == vec![9u8; 70_000],
        || "the PHP write did not reach the files server".into(),
    )?;
    let hub = web1.clone();
    let nodes = call(&web1, |w| w.manifest(SITE)).await?.nodes;
    ensure(rep.disk_nodes()? == nodes, || {
        "replica and hub differ".into()
    })?;
    // an FTP rename and delete reach the replica as such
    let url = format!("ftp://{}:{}/", e.ip, e.ftp_port);
    let r = run(
        "curl",
        &[
            "-sS",
            "--max-time",
            "30",
            "-u",
            "alice:alice-pw",
            "-Q",
            "RNFR wp-config.php",
            "-Q",
            "RNTO config.php",
            "-Q",
            "DELE wp-content/uploads/a.jpg",
            &url,
        ],
    )
    .await?;
    ensure(r.ok, || format!("rename/delete: {r:?}"))?;
    let mut rep = rep;
    let dir = web.path().to_path_buf();
    tokio::task::spawn_blocking(move || -> Result<()> {
        rep.sync(&hub)?;
        ensure(
            dir.join("site/config.php").is_file() && !dir.join("site/wp-config.php").exists(),
            || "rename not applied".into(),
        )?;
        ensure(!dir.join("site/wp-content/uploads/a.jpg").exists(), || {
            "delete not applied".into()
        })?;
        ensure(rep.disk_nodes()? == hub.manifest(SITE)?.nodes, || {
            "replica and hub differ".into()
        })?;
        Ok(())
    })
    .await??;
    Ok(())
}
