//! The files server's side of site-file replication (issue 14): the `sitesync` hub
//! whose trees are the sites (FTP homes, deployments and the web servers' replicas all use
//! [`Hub::tree_path`]), and the work around it:
//! - [`open_hub`] opens it under the engine's state dir, moving a site folder of an
//!   older version (`<state>/sites/<domain>`) into place first (a rename; the hub
//!   indexes it on open);
//! - [`run_capture`] watches every tree (inotify) and adopts what changed there
//!   outside FTP (FTP tells the hub itself, before its reply); [`run_upkeep`] compares
//!   every tree with the index periodically (the backstop for lost events) and expires
//!   kept versions hourly;
//! - [`RestoreBook`] applies each API restore once by id, recorded durably;
//! - [`run_reports`] keeps the report (usage, files, log position, conflicts, SQLite
//!   databases) fresh in the background, so `report()` stays cheap.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use proto::agent_v1::{FileRestore, FileRestoreResult, FilesSiteStatus};
use proto::sitesync::{Mtime, Outcome};
use sitesync::api::HubError;
use sitesync::capture::{Capture, CaptureOptions, Seen};
use sitesync::hub::{Hub, HubConfig};
use tokio::sync::mpsc;

use crate::plan::check_domain;
use crate::storage::UPLOAD_TMP_PREFIX;

/// Conflicts listed per site in the report (newest first).
const MAX_CONFLICTS: usize = 100;
/// SQLite databases listed per site in the report.
const MAX_SQLITE: usize = 20;

/// Opens the hub at `<state_dir>/hub` with `server` as the origin of local writes, after
/// moving each `<state_dir>/sites/<domain>` of an older version into its tree.
pub fn open_hub(state_dir: &Path, server: &str) -> std::io::Result<Arc<Hub>> {
    let mut cfg = HubConfig::new(state_dir.join("hub"));
    cfg.origin = server.to_string();
    cfg.ignore_prefixes = vec![UPLOAD_TMP_PREFIX.to_string()];
    let hub = Hub::open(cfg)?;
    migrate_legacy(&state_dir.join("sites"), &hub)?;
    Ok(Arc::new(hub))
}

/// Moves every `<legacy>/<domain>` folder whose hub tree does not exist yet into place.
fn migrate_legacy(legacy: &Path, hub: &Hub) -> std::io::Result<()> {
    let Ok(entries) = std::fs::read_dir(legacy) else {
        return Ok(());
    };
    for entry in entries.flatten() {
        let Some(domain) = entry.file_name().to_str().map(str::to_string) else {
            continue;
        };
        if check_domain(&domain).is_err() || !entry.file_type().is_ok_and(|t| t.is_dir()) {
            continue;
        }
        let tree = hub.tree_path(&domain);
        if tree.exists() {
            tracing::warn!(%domain, "both an old site folder and a hub tree exist; the old folder stays");
            continue;
        }
        if let Some(parent) = tree.parent() {
            durable::create_private_dir(parent)?;
        }
        std::fs::rename(entry.path(), &tree)?;
        if let Some(parent) = tree.parent() {
            durable::sync_dir(parent)?;
        }
        durable::sync_dir(legacy)?;
        tracing::info!(%domain, "moved the site's folder into the site-file hub");
    }
    Ok(())
}

/// What the capture task should watch.
#[derive(Debug, Clone)]
pub enum WatchCmd {
    /// Watch (or watch again with new local paths) a site's tree.
    Watch {
        /// The site.
        site: String,
        /// Its local paths (not replicated, not watched).
        local: Vec<String>,
    },
    /// Stop watching a site.
    Unwatch(String),
}

/// Watches the hub's trees and adopts what changed there. Without inotify (no
/// instance left) it only logs why: [`run_upkeep`]'s comparison still adopts
/// everything, later.
pub async fn run_capture(
    hub: Arc<Hub>,
    mut cmds: mpsc::UnboundedReceiver<WatchCmd>,
    stop: impl std::future::Future<Output = ()>,
) {
    tokio::pin!(stop);
    let mut capture = match Capture::new(CaptureOptions::default()) {
        Ok(c) => Some(c),
        Err(e) => {
            tracing::warn!(error = %e, "no inotify: writes outside FTP are adopted by the periodic comparison only");
            None
        }
    };
    loop {
        let batch = async {
            match capture.as_mut() {
                Some(c) => c.next_batch().await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            () = &mut stop => return,
            cmd = cmds.recv() => match (cmd, capture.as_mut()) {
                (None, _) => return,
                (Some(_), None) => {}
                (Some(WatchCmd::Watch { site, local }), Some(c)) => {
                    let local: Vec<PathBuf> = local.iter().map(PathBuf::from).collect();
                    // one watch per directory: blocking work proportional to the tree
                    let watched = match tokio::runtime::Handle::current().runtime_flavor() {
                        tokio::runtime::RuntimeFlavor::MultiThread => tokio::task::block_in_place(|| {
                            c.watch(&site, &hub.tree_path(&site), &local)
                        }),
                        _ => c.watch(&site, &hub.tree_path(&site), &local),
                    };
                    if let Err(e) = watched {
                        tracing::warn!(%site, error = %e, "cannot watch the site's tree");
                    }
                }
                (Some(WatchCmd::Unwatch(site)), Some(c)) => c.unwatch(&site),
            },
            seen = batch => adopt_batch(&hub, seen).await,
        }
    }
}

async fn adopt_batch(hub: &Arc<Hub>, seen: Vec<(String, Seen)>) {
    let mut by_site: BTreeMap<String, Vec<Seen>> = BTreeMap::new();
    for (site, s) in seen {
        by_site.entry(site).or_default().push(s);
    }
    let hub = hub.clone();
    let _ = tokio::task::spawn_blocking(move || {
        for (site, seen) in by_site {
            if let Err(e) = hub.observe_local(&site, &seen) {
                tracing::warn!(%site, error = %e, "cannot adopt a local write");
            }
        }
    })
    .await;
}

/// Every `period`, compares each site's tree with the hub's index (adopting what
/// differs); every hour, drops kept versions past `versions_days`.
pub async fn run_upkeep(
    hub: Arc<Hub>,
    sites: impl Fn() -> Arc<BTreeSet<String>> + Send + 'static,
    period: Duration,
    stop: impl std::future::Future<Output = ()>,
) {
    tokio::pin!(stop);
    let mut last_expire: Option<std::time::Instant> = None;
    loop {
        tokio::select! {
            () = &mut stop => return,
            () = tokio::time::sleep(period) => {}
        }
        let expire = last_expire.is_none_or(|t| t.elapsed() >= Duration::from_secs(3600));
        if expire {
            last_expire = Some(std::time::Instant::now());
        }
        let (hub, sites) = (hub.clone(), sites());
        let _ = tokio::task::spawn_blocking(move || {
            for site in sites.iter() {
                if let Err(e) = hub.observe_local(site, &[Seen::Rescan]) {
                    tracing::warn!(%site, error = %e, "cannot compare the site's tree");
                }
                if expire {
                    match hub.expire(site, Mtime::now()) {
                        Ok(0) => {}
                        Ok(n) => tracing::info!(%site, versions = n, "expired kept versions"),
                        Err(e) => tracing::warn!(%site, error = %e, "cannot expire kept versions"),
                    }
                }
            }
        })
        .await;
    }
}

/// One site's line of the report.
pub fn site_status(hub: &Hub, site: &str) -> Result<FilesSiteStatus, HubError> {
    let s = hub.status(site, MAX_SQLITE)?;
    let mut conflicts = hub.conflicts(site)?;
    conflicts.reverse();
    conflicts.truncate(MAX_CONFLICTS);
    Ok(FilesSiteStatus {
        domain: site.to_string(),
        usage_bytes: s.usage_bytes,
        files: s.files,
        seq: s.seq,
        conflicts,
        sqlite_paths: s.sqlite_paths,
    })
}

/// Recomputes the sites' report a second after any log grew (so a burst of changes
/// costs one pass), and every 30 s.
pub async fn run_reports(
    hub: Arc<Hub>,
    sites: impl Fn() -> Arc<BTreeSet<String>> + Send + 'static,
    out: Arc<Mutex<Vec<FilesSiteStatus>>>,
    stop: impl std::future::Future<Output = ()>,
) {
    tokio::pin!(stop);
    let mut appended = hub.subscribe();
    loop {
        let (h, list) = (hub.clone(), sites());
        let statuses = tokio::task::spawn_blocking(move || {
            list.iter()
                .filter_map(|d| {
                    site_status(&h, d)
                        .map_err(
                            |e| tracing::warn!(site = %d, error = %e, "no report for the site"),
                        )
                        .ok()
                })
                .collect::<Vec<_>>()
        })
        .await
        .unwrap_or_default();
        *out.lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = statuses;
        tokio::select! {
            () = &mut stop => return,
            _ = appended.changed() => tokio::time::sleep(Duration::from_secs(1)).await,
            () = tokio::time::sleep(Duration::from_secs(30)) => {}
        }
    }
}

/// The restores done so far, by id, kept in `<state>/restores.json` (written
/// atomically before a result counts), so each request is applied once.
#[derive(Debug)]
pub struct RestoreBook {
    path: PathBuf,
    done: BTreeMap<String, FileRestoreResult>,
}

impl RestoreBook {
    /// Reads the record (none yet: empty; unreadable: empty, with a warning).
    pub fn open(state_dir: &Path) -> RestoreBook {
        let path = state_dir.join("restores.json");
        let done = match std::fs::read(&path) {
            Ok(b) => serde_json::from_slice(&b).unwrap_or_else(|e| {
                tracing::warn!(error = %e, "unreadable restore record; starting afresh");
                BTreeMap::new()
            }),
            Err(_) => BTreeMap::new(),
        };
        RestoreBook { path, done }
    }

    /// Applies every request of `wanted` not done yet (blocking: restores write), keeps
    /// the results of the requests still wanted, and saves the record.
    pub fn apply(
        &mut self,
        hub: &Hub,
        held: &BTreeSet<String>,
        wanted: &[FileRestore],
    ) -> std::io::Result<()> {
        let before = self.done.len();
        let mut changed = false;
        for r in wanted {
            if self.done.contains_key(&r.id) {
                continue;
            }
            let result = restore_one(hub, held, r);
            tracing::info!(id = %r.id, domain = %r.domain, path = %r.path, ok = result.ok, message = %result.message, "restore");
            self.done.insert(r.id.clone(), result);
            changed = true;
        }
        let ids: BTreeSet<&str> = wanted.iter().map(|r| r.id.as_str()).collect();
        self.done.retain(|id, _| ids.contains(id.as_str()));
        if changed || self.done.len() != before {
            let text = serde_json::to_vec(&self.done).map_err(std::io::Error::other)?;
            durable::write_atomic(&self.path, &text, 0o600)?;
        }
        Ok(())
    }

    /// The results of the requests still wanted.
    pub fn results(&self) -> Vec<FileRestoreResult> {
        self.done.values().cloned().collect()
    }
}

fn restore_one(hub: &Hub, held: &BTreeSet<String>, r: &FileRestore) -> FileRestoreResult {
    let result = |ok: bool, message: String| FileRestoreResult {
        id: r.id.clone(),
        ok,
        message,
    };
    if !held.contains(&r.domain) {
        return result(false, format!("{} is not a site of this server", r.domain));
    }
    let path = r.path.trim_matches('/');
    if !proto::manifest::check_path(path) {
        return result(false, format!("bad path {:?}", r.path));
    }
    let at = r.at.map(|secs| Mtime { secs, nanos: 0 });
    match hub.restore(&r.domain, path, at) {
        Ok(Outcome::Applied { seq }) => result(true, format!("restored {path} (change {seq})")),
        Ok(Outcome::Conflict { .. }) => {
            result(false, format!("{path} changed meanwhile; try again"))
        }
        Ok(Outcome::Refused { reason, .. }) => result(false, reason),
        Err(HubError::NotFound(m)) => result(false, m),
        Err(e) => result(false, e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn restores_are_applied_once_across_restarts_and_legacy_folders_move_in() {
        let d = tempfile::tempdir().unwrap();
        let legacy = d.path().join("sites/a.example");
        std::fs::create_dir_all(&legacy).unwrap();
        std::fs::write(legacy.join("index.html"), b"old").unwrap();
        std::fs::create_dir_all(d.path().join("sites/.not-a-domain")).unwrap();
        let hub = open_hub(d.path(), "files-1").unwrap();
        assert_eq!(
            std::fs::read(hub.tree_path("a.example").join("index.html")).unwrap(),
            b"old"
        );
        assert!(!legacy.exists());
        // a version to restore: the file deleted over a preserve, as FTP does
        hub.manifest("a.example").unwrap();
        assert!(hub.preserve_local("a.example", "index.html").unwrap());
        std::fs::remove_file(hub.tree_path("a.example").join("index.html")).unwrap();
        hub.observe_local("a.example", &[Seen::Path("index.html".into())])
            .unwrap();
        let held: BTreeSet<String> = ["a.example".to_string()].into();
        let wanted = vec![
            FileRestore {
                id: "r1".into(),
                domain: "a.example".into(),
                path: "index.html".into(),
                at: None,
            },
            FileRestore {
                id: "r2".into(),
                domain: "b.example".into(),
                path: "x".into(),
                at: None,
            },
        ];
        let mut book = RestoreBook::open(d.path());
        book.apply(&hub, &held, &wanted).unwrap();
        let r = book.results();
        assert!(r[0].ok && !r[1].ok, "{r:?}");
        assert!(r[1].message.contains("not a site of this server"));
        // deleted again; a restarted engine does not restore it a second time
        std::fs::remove_file(hub.tree_path("a.example").join("index.html")).unwrap();
        let mut book = RestoreBook::open(d.path());
        book.apply(&hub, &held, &wanted).unwrap();
        assert!(!hub.tree_path("a.example").join("index.html").exists());
        assert_eq!(book.results().len(), 2);
        // requests no longer asked are forgotten
        book.apply(&hub, &held, &wanted[..1]).unwrap();
        assert_eq!(RestoreBook::open(d.path()).results().len(), 1);
    }
}
