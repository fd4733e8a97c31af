//! The content-sync client, run by web servers: mirrors each site of the origin into
//! `<content_root>/<domain>/current`, a symlink to an immutable version folder.
//!
//! A sync of one site: fetch the manifest; if it differs from the current version's,
//! build a staging folder (unchanged files hard-linked from the current version, changed
//! ones downloaded and checked against their BLAKE3), fsync every file and folder,
//! rename the staging folder to a version folder, point a temporary symlink at it and
//! rename it over `current` (atomic for readers), fsync, then delete older versions.
//!
//! It runs on a change notification (long-poll on the origin), on a periodic full check,
//! and when the site list changes. With the origin unreachable the current versions stay
//! in place, retries back off up to 10 s, and the status says `degraded`.

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use futures_util::{StreamExt, TryStreamExt};
use percent_encoding::{utf8_percent_encode, NON_ALPHANUMERIC};
use tokio::io::AsyncWriteExt;
use tokio::sync::{watch, Notify};

use crate::error::FilesError;
use crate::plan::check_domain;
use proto::manifest::{check_path, FileEntry, Manifest};

/// Files downloaded at the same time during one site sync.
const PARALLEL_DOWNLOADS: usize = 4;

/// Name of the symlink to the served version inside `<content_root>/<domain>/`.
pub const CURRENT: &str = "current";

/// How to reach the origin and where to put the content.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncOptions {
    /// Origin base URL, `https://<ip>:<port>` (the files server's sync port).
    pub origin: String,
    /// The agent's client certificate (PEM).
    pub client_cert: PathBuf,
    /// Its private key (PEM).
    pub client_key: PathBuf,
    /// The controller CA (PEM): the origin's certificate must chain to it.
    pub ca: PathBuf,
    /// Source address of every connection to the origin (the web server's own address).
    pub bind: Option<IpAddr>,
    /// Where sites go: `<content_root>/<domain>/current`.
    pub content_root: PathBuf,
    /// Period of the full check (default 30 s).
    pub full_check: Duration,
    /// How long one long-poll waits at the origin (default 25 s).
    pub poll_wait: Duration,
}

impl SyncOptions {
    /// Options with the default periods.
    pub fn new(
        origin: impl Into<String>,
        client_cert: PathBuf,
        client_key: PathBuf,
        ca: PathBuf,
        bind: Option<IpAddr>,
        content_root: PathBuf,
    ) -> Self {
        Self {
            origin: origin.into().trim_end_matches('/').to_string(),
            client_cert,
            client_key,
            ca,
            bind,
            content_root,
            full_check: Duration::from_secs(30),
            poll_wait: Duration::from_secs(25),
        }
    }
}

/// Overall state of the sync client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SyncState {
    /// Not synced yet.
    Starting,
    /// Every site synced on the last attempt.
    Ok,
    /// The last attempt failed for at least one site; last versions are being served.
    Degraded,
}

/// What the sync client reports (for the web engine's health detail).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncStatus {
    /// Overall state.
    pub state: SyncState,
    /// Sites with a `current` version.
    pub sites_synced: usize,
    /// Sites asked for.
    pub sites_wanted: usize,
    /// The last error, if the last attempt failed.
    pub last_error: Option<String>,
    /// When the last fully successful pass ended.
    pub last_success: Option<SystemTime>,
}

/// A shared view of the client's [`SyncStatus`].
#[derive(Debug, Clone)]
pub struct SyncStatusHandle(Arc<Mutex<SyncStatus>>);

impl SyncStatusHandle {
    /// The status now.
    pub fn get(&self) -> SyncStatus {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    fn update(&self, f: impl FnOnce(&mut SyncStatus)) {
        f(&mut self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner));
    }
}

/// The sync client of one web server.
#[derive(Debug, Clone)]
pub struct SyncClient {
    opts: SyncOptions,
    http: reqwest::Client,
    status: SyncStatusHandle,
}

/// `<content_root>/<domain>/current`: the folder a web server serves `domain` from.
pub fn current_dir(content_root: &Path, domain: &str) -> PathBuf {
    content_root.join(domain).join(CURRENT)
}

async fn blocking<T, F>(f: F) -> Result<T, FilesError>
where
    F: FnOnce() -> std::io::Result<T> + Send + 'static,
    T: Send + 'static,
{
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|_| FilesError::Io(std::io::Error::other("blocking task failed")))?
        .map_err(FilesError::Io)
}

impl SyncClient {
    /// A client for `opts` (reads the PEM files now).
    pub fn new(opts: SyncOptions) -> Result<Self, FilesError> {
        let read = |p: &Path| {
            std::fs::read(p).map_err(|e| FilesError::Tls(format!("reading {}: {e}", p.display())))
        };
        let tls = crate::tls::client_config(
            &read(&opts.client_cert)?,
            &read(&opts.client_key)?,
            &read(&opts.ca)?,
        )?;
        let mut b = reqwest::Client::builder()
            .use_preconfigured_tls(tls)
            .connect_timeout(Duration::from_secs(5))
            .pool_idle_timeout(Duration::from_secs(60))
            .http1_only();
        if let Some(ip) = opts.bind {
            b = b.local_address(ip);
        }
        let http = b.build()?;
        let status = SyncStatusHandle(Arc::new(Mutex::new(SyncStatus {
            state: SyncState::Starting,
            sites_synced: 0,
            sites_wanted: 0,
            last_error: None,
            last_success: None,
        })));
        Ok(Self { opts, http, status })
    }

    /// The client's status (cheap to clone and read).
    pub fn status(&self) -> SyncStatusHandle {
        self.status.clone()
    }

    async fn get_ok(&self, url: &str, timeout: Duration) -> Result<reqwest::Response, FilesError> {
        let resp = self.http.get(url).timeout(timeout).send().await?;
        if !resp.status().is_success() {
            return Err(FilesError::Protocol(format!(
                "{url}: HTTP {}",
                resp.status()
            )));
        }
        Ok(resp)
    }

    /// Fetch the origin's manifest of `domain`.
    pub async fn fetch_manifest(&self, domain: &str) -> Result<Manifest, FilesError> {
        let url = format!("{}/v1/sync/{domain}/manifest", self.opts.origin);
        let m: Manifest = self
            .get_ok(&url, Duration::from_secs(60))
            .await?
            .json()
            .await?;
        if let Some(bad) = m.files.iter().find(|f| !check_path(&f.path)) {
            return Err(FilesError::Protocol(format!(
                "manifest path {:?} refused",
                bad.path
            )));
        }
        Ok(m)
    }

    /// Wait for the origin's change counter to move from `after`; returns the new value.
    pub async fn wait_change(&self, after: u64) -> Result<u64, FilesError> {
        let wait = self.opts.poll_wait.as_secs().max(1);
        let url = format!(
            "{}/v1/sync/changes?after={after}&wait={wait}",
            self.opts.origin
        );
        let v: serde_json::Value = self
            .get_ok(&url, Duration::from_secs(wait + 15))
            .await?
            .json()
            .await?;
        v.get("version")
            .and_then(serde_json::Value::as_u64)
            .ok_or_else(|| FilesError::Protocol("changes: no version".into()))
    }

    /// Download one file into `dest`, checking size and BLAKE3, then fsync it.
    async fn download(&self, domain: &str, f: &FileEntry, dest: &Path) -> Result<(), FilesError> {
        let url = format!(
            "{}/v1/sync/{domain}/file?path={}",
            self.opts.origin,
            utf8_percent_encode(&f.path, NON_ALPHANUMERIC)
        );
        let mut resp = self.get_ok(&url, Duration::from_secs(3600)).await?;
        let mut out = tokio::fs::File::create(dest).await?;
        let mut hasher = blake3::Hasher::new();
        let mut size = 0u64;
        while let Some(chunk) = resp.chunk().await? {
            size += chunk.len() as u64;
            if size > f.size {
                return Err(FilesError::Protocol(format!(
                    "{}: longer than the manifest says",
                    f.path
                )));
            }
            hasher.update(&chunk);
            out.write_all(&chunk).await?;
        }
        if size != f.size || hasher.finalize().to_hex().as_str() != f.blake3 {
            return Err(FilesError::Protocol(format!(
                "{}: content does not match the manifest (changed at the origin?)",
                f.path
            )));
        }
        out.flush().await?;
        out.sync_all().await?;
        Ok(())
    }

    /// Bring `domain` up to date. Returns whether a new version was switched in.
    pub async fn sync_site(&self, domain: &str) -> Result<bool, FilesError> {
        check_domain(domain)?;
        let m = self.fetch_manifest(domain).await?;
        let site_dir = self.opts.content_root.join(domain);
        let sd = site_dir.clone();
        let current = blocking(move || {
            std::fs::create_dir_all(&sd)?;
            Ok(read_current(&sd))
        })
        .await?;
        if let Some((_, files)) = &current {
            if *files == m.files {
                return Ok(false);
            }
        }
        let nanos = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        let name = format!("v{}-{nanos}", m.version);
        let staging = site_dir.join(format!(".staging-{name}"));
        let result = self
            .stage(domain, &m, &site_dir, current.as_ref(), &staging)
            .await;
        if let Err(e) = result {
            let _ = tokio::fs::remove_dir_all(&staging).await;
            return Err(e);
        }
        let manifest_json =
            serde_json::to_vec(&m.files).map_err(|e| FilesError::Protocol(e.to_string()))?;
        let (sd, n) = (site_dir.clone(), name.clone());
        blocking(move || switch(&sd, &staging, &n, &manifest_json)).await?;
        tracing::info!(domain, version = %name, files = m.files.len(), "site content switched");
        Ok(true)
    }

    async fn stage(
        &self,
        domain: &str,
        m: &Manifest,
        site_dir: &Path,
        current: Option<&(String, Vec<FileEntry>)>,
        staging: &Path,
    ) -> Result<(), FilesError> {
        let old: HashMap<&str, &FileEntry> = current
            .map(|(_, files)| files.iter().map(|f| (f.path.as_str(), f)).collect())
            .unwrap_or_default();
        let cur_dir = current.map(|(n, _)| site_dir.join(n));
        let mut to_fetch = Vec::new();
        let mut to_link = Vec::new();
        for f in &m.files {
            match (old.get(f.path.as_str()), &cur_dir) {
                (Some(o), Some(cd)) if o.blake3 == f.blake3 && o.size == f.size => {
                    to_link.push((cd.join(&f.path), staging.join(&f.path), f.mode))
                }
                _ => to_fetch.push(f.clone()),
            }
        }
        let (st, files) = (staging.to_path_buf(), m.files.clone());
        blocking(move || {
            let _ = std::fs::remove_dir_all(&st);
            std::fs::create_dir_all(&st)?;
            for f in &files {
                if let Some(p) = Path::new(&f.path).parent() {
                    std::fs::create_dir_all(st.join(p))?;
                }
            }
            for (from, to, mode) in &to_link {
                link_or_copy(from, to, *mode)?;
            }
            Ok(())
        })
        .await?;
        // A few downloads at once: many small files cost round trips, not bandwidth.
        futures_util::stream::iter(to_fetch)
            .map(|f: FileEntry| async move {
                let dest = staging.join(&f.path);
                self.download(domain, &f, &dest).await?;
                let mode = file_mode(f.mode);
                blocking(move || set_mode(&dest, mode)).await
            })
            .buffer_unordered(PARALLEL_DOWNLOADS)
            .try_collect::<Vec<()>>()
            .await?;
        let st = staging.to_path_buf();
        blocking(move || sync_tree_dirs(&st)).await
    }

    /// Sync every site in `sites`; the first error is returned after trying them all.
    pub async fn sync_all(&self, sites: &[String]) -> Result<usize, FilesError> {
        self.sync_sites(sites, sites).await
    }

    /// Bring the sites `todo` up to date, reporting progress against all the sites
    /// wanted (`sites`).
    async fn sync_sites(&self, todo: &[String], sites: &[String]) -> Result<usize, FilesError> {
        let mut first_err = None;
        let mut synced = 0;
        for d in todo {
            match self.sync_site(d).await {
                Ok(_) => synced += 1,
                Err(e) => {
                    tracing::warn!(domain = %d, error = %e, "site sync failed; keeping the last version");
                    first_err.get_or_insert(FilesError::Protocol(format!("{d}: {e}")));
                }
            }
        }
        let root = self.opts.content_root.clone();
        let have = blocking({
            let sites = sites.to_vec();
            move || {
                Ok(sites
                    .iter()
                    .filter(|d| current_dir(&root, d).exists())
                    .count())
            }
        })
        .await
        .unwrap_or(synced);
        self.status.update(|s| {
            s.sites_synced = have;
            s.sites_wanted = sites.len();
        });
        match first_err {
            Some(e) => Err(e),
            None => Ok(synced),
        }
    }

    /// Run until `shutdown`: sync on start, on every change notification, every
    /// `full_check`, and when `sites` changes.
    pub async fn run(
        self,
        mut sites: watch::Receiver<Vec<String>>,
        shutdown: impl Future<Output = ()>,
    ) {
        let wake = Arc::new(Notify::new());
        let (stop_tx, stop_rx) = watch::channel(false);
        let poller = tokio::spawn(long_poll(self.clone(), wake.clone(), stop_rx));
        tokio::pin!(shutdown);
        let mut backoff = Duration::from_millis(250);
        // The list last synced in full, and whether only the site list changed
        // since: then only the sites new to it are synced, and a new site does not
        // re-check every other site's manifest.
        let mut last_ok: HashSet<String> = HashSet::new();
        let mut only_new = false;
        loop {
            let list = sites.borrow_and_update().clone();
            let todo = sites_to_sync(&list, &last_ok, only_new);
            only_new = false;
            match self.sync_sites(&todo, &list).await {
                Ok(_) => {
                    last_ok = list.into_iter().collect();
                    backoff = Duration::from_millis(250);
                    self.status.update(|s| {
                        s.state = SyncState::Ok;
                        s.last_error = None;
                        s.last_success = Some(SystemTime::now());
                    });
                }
                Err(e) => {
                    self.status.update(|s| {
                        s.state = SyncState::Degraded;
                        s.last_error = Some(e.to_string());
                    });
                    tokio::select! {
                        _ = &mut shutdown => break,
                        _ = tokio::time::sleep(backoff) => {}
                    }
                    backoff = (backoff * 2).min(Duration::from_secs(10));
                    continue;
                }
            }
            tokio::select! {
                _ = &mut shutdown => break,
                _ = wake.notified() => {}
                _ = tokio::time::sleep(self.opts.full_check) => {}
                changed = sites.changed() => {
                    if changed.is_err() { break }
                    only_new = true;
                }
            }
        }
        let _ = stop_tx.send(true);
        poller.abort();
    }
}

/// The sites a sync round fetches manifests for: all of `list`, or with
/// `only_new` (the site list changed, nothing else) those not in `last_ok`.
fn sites_to_sync(list: &[String], last_ok: &HashSet<String>, only_new: bool) -> Vec<String> {
    list.iter()
        .filter(|d| !only_new || !last_ok.contains(*d))
        .cloned()
        .collect()
}

/// Long-poll the origin's change feed and wake the sync loop on each change.
async fn long_poll(client: SyncClient, wake: Arc<Notify>, mut stop: watch::Receiver<bool>) {
    let mut after = 0u64;
    let mut backoff = Duration::from_millis(250);
    loop {
        tokio::select! {
            _ = stop.changed() => return,
            r = client.wait_change(after) => match r {
                Ok(v) => {
                    backoff = Duration::from_millis(250);
                    if v != after {
                        after = v;
                        wake.notify_one();
                    }
                }
                Err(e) => {
                    tracing::debug!(error = %e, "sync long-poll failed");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(10));
                    // Wake the loop too: it retries and reports the outage.
                    wake.notify_one();
                }
            }
        }
    }
}

/// Run the sync client for `opts` until `shutdown` (see [`SyncClient::run`]).
pub async fn run_sync(
    opts: SyncOptions,
    sites: watch::Receiver<Vec<String>>,
    shutdown: impl Future<Output = ()>,
) -> Result<(), FilesError> {
    SyncClient::new(opts)?.run(sites, shutdown).await;
    Ok(())
}

/// The version the `current` symlink names, with its manifest, if both are readable.
fn read_current(site_dir: &Path) -> Option<(String, Vec<FileEntry>)> {
    let target = std::fs::read_link(site_dir.join(CURRENT)).ok()?;
    let name = target.file_name()?.to_str()?.to_string();
    let bytes = std::fs::read(site_dir.join(format!("{name}.manifest.json"))).ok()?;
    let files = serde_json::from_slice(&bytes).ok()?;
    Some((name, files))
}

/// Permission bits a synced file gets: readable by all, never set-id, executable kept.
fn file_mode(mode: u32) -> u32 {
    0o644 | (mode & 0o111)
}

fn set_mode(p: &Path, mode: u32) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode))
}

/// Hard-link `from` to `to` (same content, immutable versions), or copy when linking
/// fails (another file system) or the mode differs.
fn link_or_copy(from: &Path, to: &Path, mode: u32) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let same_mode = std::fs::metadata(from)
        .map(|m| m.permissions().mode() & 0o7777 == file_mode(mode))
        .unwrap_or(false);
    if same_mode && std::fs::hard_link(from, to).is_ok() {
        return Ok(());
    }
    std::fs::copy(from, to)?;
    set_mode(to, file_mode(mode))?;
    std::fs::File::open(to)?.sync_all()
}

/// fsync every folder under `root` (and `root`), so new entries are durable.
fn sync_tree_dirs(root: &Path) -> std::io::Result<()> {
    for e in std::fs::read_dir(root)? {
        let e = e?;
        if e.file_type()?.is_dir() {
            sync_tree_dirs(&e.path())?;
        }
    }
    durable::sync_dir(root)
}

/// Staging → version folder, manifest beside it, `current` switched atomically, older
/// versions removed.
fn switch(
    site_dir: &Path,
    staging: &Path,
    name: &str,
    manifest_json: &[u8],
) -> std::io::Result<()> {
    let version_dir = site_dir.join(name);
    std::fs::rename(staging, &version_dir)?;
    durable::write_atomic(
        &site_dir.join(format!("{name}.manifest.json")),
        manifest_json,
        0o644,
    )?;
    let tmp_link = site_dir.join(".current.tmp");
    let _ = std::fs::remove_file(&tmp_link);
    std::os::unix::fs::symlink(name, &tmp_link)?;
    std::fs::rename(&tmp_link, site_dir.join(CURRENT))?;
    durable::sync_dir(site_dir)?;
    gc(site_dir, name)
}

/// Remove every version folder, manifest and staging folder except `keep`'s.
fn gc(site_dir: &Path, keep: &str) -> std::io::Result<()> {
    let keep_manifest = format!("{keep}.manifest.json");
    for e in std::fs::read_dir(site_dir)? {
        let e = e?;
        let n = e.file_name();
        let Some(n) = n.to_str() else { continue };
        if n == keep || n == keep_manifest || n == CURRENT {
            continue;
        }
        let ours = n.starts_with('v') || n.starts_with(".staging-");
        if !ours {
            continue;
        }
        let res = if e.file_type()?.is_dir() {
            std::fs::remove_dir_all(e.path())
        } else {
            std::fs::remove_file(e.path())
        };
        if let Err(err) = res {
            tracing::warn!(path = %e.path().display(), error = %err, "could not remove an old version");
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {

    #[test]
    fn a_changed_site_list_syncs_only_the_new_sites() {
        let list: Vec<String> = ["a.test", "b.test", "c.test"].map(String::from).to_vec();
        let last: HashSet<String> = ["a.test", "b.test"].map(String::from).into();
        assert_eq!(sites_to_sync(&list, &last, true), ["c.test"]);
        assert_eq!(sites_to_sync(&list, &last, false), list);
        assert_eq!(sites_to_sync(&list, &HashSet::new(), true), list);
    }

    use super::*;

    #[test]
    fn switch_replaces_current_and_collects_old_versions() {
        let d = tempfile::tempdir().unwrap();
        let site = d.path().join("a.example");
        std::fs::create_dir_all(&site).unwrap();
        for (i, body) in ["one", "two"].iter().enumerate() {
            let st = site.join(format!(".staging-{i}"));
            std::fs::create_dir_all(&st).unwrap();
            std::fs::write(st.join("index.html"), body).unwrap();
            switch(&site, &st, &format!("v{i}"), b"[]").unwrap();
            assert_eq!(
                std::fs::read_to_string(site.join("current/index.html")).unwrap(),
                *body
            );
        }
        let mut names: Vec<_> = std::fs::read_dir(&site)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        assert_eq!(names, ["current", "v1", "v1.manifest.json"]);
        assert_eq!(read_current(&site).unwrap(), ("v1".into(), vec![]));
    }
}
