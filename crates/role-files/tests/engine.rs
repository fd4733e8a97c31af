//! The agent adapter: `start_engine` binds FTP and the site-file hub on the server's
//! address, `apply` brings sites, accounts and the certificate in live, health names
//! ports and counts, a bad config keeps the previous one.

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use agent::supervisor::{AgentTlsPaths, EngineContext};
use anyhow::{Context, Result};
use common::*;
use proto::agent_v1::{EngineState, RoleConfig};
use sitesync::api::HubApi;
use sitesync::transport::client::HttpsHub;

fn port_after(detail: &str, what: &str) -> Result<u16> {
    let rest = &detail[detail.find(what).context("no such part")? + what.len()..];
    let addr = rest.split_whitespace().next().context("no address")?;
    let addr = addr.trim_end_matches([',', ';']);
    Ok(addr.rsplit(':').next().context("no port")?.parse()?)
}

/// curl over explicit FTPS (TLS required, `ca` trusted) as `userpw`, with `extra`
/// arguments before the URL.
async fn ftps(ca: &std::path::Path, userpw: &str, extra: &[&str], url: &str) -> Result<Run> {
    let ca = ca.display().to_string();
    let mut args = vec![
        "-sS",
        "--max-time",
        "30",
        "--ssl-reqd",
        "--cacert",
        &ca,
        "-u",
        userpw,
    ];
    args.extend_from_slice(extra);
    args.push(url);
    run("curl", &args).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn engine_serves_ftp_and_sync_and_applies_live() -> Result<()> {
    let block = AddrBlock::next();
    let ip = block.addr(41);
    let state = tempfile::tempdir()?;
    let pki = Pki::new("controller CA")?;
    let ca = state.path().join("ca.pem");
    std::fs::write(&ca, &pki.ca_pem)?;
    let mut options = BTreeMap::new();
    options.insert("sync_port".to_string(), "0".to_string());
    options.insert("passive_ports".to_string(), "31000-31009".to_string());
    let ctx = EngineContext {
        server: "files-1".into(),
        role: "files".into(),
        bind: ip,
        state_dir: state.path().join("engines/files"),
        identity: Some(AgentTlsPaths {
            cert: state.path().join("unused-cert.pem"),
            key: state.path().join("unused-key.pem"),
            ca: ca.clone(),
        }),
        options,
        controllers: vec![],
    };
    let mut engine = role_files::start_engine(&ctx)?;
    let h = engine.health();
    let ftp_port = port_after(&h.detail, "ftp on ")?;
    ensure(ftp_port == 21 || ftp_port == 10021, || {
        format!("ftp port: {}", h.detail)
    })?;
    let sync_port = port_after(&h.detail, "site-file hub on ")?;

    let mut cfg = default_config();
    cfg.tls = Some(pki.server(ip)?);
    engine.apply(&RoleConfig::Files(cfg.clone())).await?;
    let h = engine.health();
    ensure(
        h.state == EngineState::Ok
            && h.detail.contains("2 sites, 3 ftp accounts")
            && h.detail.contains("FTPS required"),
        || format!("health: {h:?}"),
    )?;
    let site = ctx.state_dir.join("hub/a.example/tree");
    ensure(site.join("pub").is_dir(), || {
        "carol's home not created".into()
    })?;

    // FTPS upload through the engine's port
    let work = tempfile::tempdir()?;
    let f = work.path().join("f.txt");
    std::fs::write(&f, b"through the engine")?;
    let userpw = "alice:alice-pw";
    let url = format!("ftp://{ip}:{ftp_port}/f.txt");
    let r = ftps(&ca, userpw, &["-T", &f.display().to_string()], &url).await?;
    ensure(r.ok, || format!("upload: {r:?}"))?;
    ensure(
        std::fs::read(site.join("f.txt"))? == b"through the engine",
        || "on disk".into(),
    )?;

    // the hub's manifest has it for web-1, through the sync port with its certificate
    let web1 = pki.client("web-1")?;
    let (url, ca_pem) = (format!("https://{ip}:{sync_port}"), pki.ca_pem.clone());
    let m = tokio::task::spawn_blocking(move || {
        HttpsHub::new(&url, &web1.cert_pem, &web1.key_pem, &ca_pem)?.manifest("a.example")
    })
    .await?
    .map_err(|e| anyhow::anyhow!("{e}"))?;
    ensure(m.nodes.contains_key("f.txt"), || format!("{m:?}"))?;

    // Bad objects beside good ones (issue 12): a new account for a site not held and
    // an update of alice to a home outside her site are rejected and named; alice
    // keeps her old version, the new one is absent, a good new account (dave) works.
    let mut bad = cfg.clone();
    bad.ftp_accounts
        .push(account("eve", "eve-pw", "c.example", "", 0));
    bad.ftp_accounts
        .push(account("dave", "dave-pw", "a.example", "", 0));
    for a in &mut bad.ftp_accounts {
        if a.username == "alice" {
            a.home = "../b.example".into();
        }
    }
    engine.apply(&RoleConfig::Files(bad)).await?;
    let objects: Vec<String> = engine.rejected().into_iter().map(|r| r.object).collect();
    ensure(objects == ["ftp account alice", "ftp account eve"], || {
        format!("rejected: {objects:?}")
    })?;
    let r = ftps(&ca, userpw, &[], &format!("ftp://{ip}:{ftp_port}/")).await?;
    ensure(r.ok && r.stdout.contains("f.txt"), || {
        format!("alice's old version lost: {r:?}")
    })?;
    let dave = ftps(&ca, "dave:dave-pw", &[], &format!("ftp://{ip}:{ftp_port}/")).await?;
    ensure(dave.ok && dave.stdout.contains("f.txt"), || {
        format!("the good new account does not work: {dave:?}")
    })?;
    let eve = ftps(&ca, "eve:eve-pw", &[], &format!("ftp://{ip}:{ftp_port}/")).await?;
    ensure(!eve.ok, || format!("the rejected account logs in: {eve:?}"))?;

    // a domain no longer held: its folder goes to the trash, out of FTP's reach; when
    // the domain comes back (maybe another customer's), it starts empty
    let b = ctx.state_dir.join("hub/b.example/tree");
    std::fs::write(b.join("secret.txt"), b"b's files")?;
    let mut without_b = cfg.clone();
    without_b.sites.retain(|d| d != "b.example");
    without_b.ftp_accounts.retain(|a| a.domain != "b.example");
    engine.apply(&RoleConfig::Files(without_b)).await?;
    ensure(!b.exists(), || "b.example still in the hub".into())?;
    let trashed: Vec<_> = std::fs::read_dir(ctx.state_dir.join("trash"))?
        .flatten()
        .map(|e| e.path())
        .collect();
    ensure(
        trashed.len() == 1 && std::fs::read(trashed[0].join("tree/secret.txt"))? == b"b's files",
        || format!("trash: {trashed:?}"),
    )?;
    let bob = ftps(&ca, "bob:bob-pw", &[], &format!("ftp://{ip}:{ftp_port}/")).await?;
    ensure(!bob.ok, || format!("bob still logs in: {bob:?}"))?;
    engine.apply(&RoleConfig::Files(cfg.clone())).await?;
    ensure(b.is_dir() && std::fs::read_dir(&b)?.count() == 0, || {
        "b.example did not come back empty".into()
    })?;

    // a wrong role is refused
    ensure(
        engine
            .apply(&RoleConfig::Web(Default::default()))
            .await
            .is_err(),
        || "web config".into(),
    )?;
    engine.shutdown().await;
    tokio::time::sleep(Duration::from_millis(50)).await;
    Ok(())
}
