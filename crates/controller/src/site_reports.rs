//! What a files server's heartbeat report (`RoleReport::Files`) changes in the
//! store: restore results close their requests (which then stop travelling in the
//! server's desired config), and SQLite databases found in an `all` site are
//! recorded on the site with a `site.sqlite_warning` event, once per set.
//!
//! Restore results are looked at whenever a report carries them: the engine keeps a
//! result only while its request travels in the config, so they are few and
//! short-lived, and a result whose recording failed is simply recorded from the
//! next report. SQLite lists only when they changed since the server's previous
//! report, so a steady report costs no store access; after a controller restart
//! the first report's non-empty lists are compared with the store, which keeps the
//! event from repeating.

use std::collections::HashMap;

use model::entity::{Domain, Kind, Server, Site};
use model::sitefiles::{restore_site, MAX_SQLITE_PATHS};
use model::{PlacementMode, Role};
use proto::agent_v1::{FileRestoreResult, FilesReport, RoleReport};
use store::{Actor, Scope, Stored};

use crate::state::AppState;

/// The part of a report that needs store writes.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Work {
    /// Restore results (each closes its request if still pending).
    pub restores: Vec<FileRestoreResult>,
    /// Sites whose SQLite list differs from the previous report: (domain, paths).
    pub sqlite: Vec<(String, Vec<String>)>,
}

impl Work {
    /// Nothing to write.
    pub fn is_empty(&self) -> bool {
        self.restores.is_empty() && self.sqlite.is_empty()
    }
}

/// What changed between a files server's previous report and this one.
pub fn work(before: Option<&RoleReport>, now: Option<&RoleReport>) -> Work {
    let Some(RoleReport::Files(now)) = now else {
        return Work::default();
    };
    let empty = FilesReport::default();
    let before = match before {
        Some(RoleReport::Files(b)) => b,
        _ => &empty,
    };
    let first = before.sites.is_empty();
    let old: HashMap<&str, &Vec<String>> = before
        .sites
        .iter()
        .map(|s| (s.domain.as_str(), &s.sqlite_paths))
        .collect();
    Work {
        restores: now.restores.clone(),
        sqlite: now
            .sites
            .iter()
            .filter(|s| match old.get(s.domain.as_str()) {
                Some(paths) => *paths != &s.sqlite_paths,
                // Nothing to compare with: only a list that may need an event.
                None => !first || !s.sqlite_paths.is_empty(),
            })
            .map(|s| (s.domain.clone(), normal(&s.sqlite_paths)))
            .collect(),
    }
}

/// A reported SQLite list as stored: sorted, unique, bounded.
fn normal(paths: &[String]) -> Vec<String> {
    let mut out: Vec<String> = paths.iter().take(MAX_SQLITE_PATHS).cloned().collect();
    out.sort();
    out.dedup();
    out
}

/// Apply `work` from files server `server` to the store, one transaction per site
/// (a failure is logged: the next change of the report retries nothing, but a
/// restore stays pending and is reported again, as the engine keeps its results
/// while the request travels).
pub async fn record(state: &AppState, server: &Stored<Server>, work: Work) {
    for r in work.restores {
        if let Err(e) = finish_restore(state, server, &r).await {
            tracing::warn!(server = %server.meta.name, restore = %r.id, error = %e,
                "cannot record a restore result");
        }
    }
    for (domain, paths) in work.sqlite {
        if let Err(e) = sqlite(state, server, &domain, paths).await {
            tracing::warn!(server = %server.meta.name, %domain, error = %e,
                "cannot record SQLite databases");
        }
    }
}

fn actor() -> Actor {
    Actor {
        account: None,
        label: "files-report".into(),
    }
}

/// Whether `server` is a files server of the site's domain (it may report only
/// for those).
async fn holds(tx: &mut store::Tx, server: &Stored<Server>, site: &Site) -> store::Result<bool> {
    Ok(server.data.role == Role::Files
        && tx
            .get::<Domain>(site.domain)
            .await?
            .is_some_and(|d| d.data.placements.get(&Role::Files) == Some(&server.data.cluster)))
}

async fn finish_restore(
    state: &AppState,
    server: &Stored<Server>,
    r: &FileRestoreResult,
) -> store::Result<()> {
    let Some(site_id) = restore_site(&r.id) else {
        return Ok(());
    };
    // Cheap check outside a transaction: a result reported again after it was
    // recorded (until the engine sees the request gone) changes nothing.
    let pending = |s: &Site| s.files.pending().any(|p| p.id == r.id);
    match state.store.get::<Site>(Scope::All, site_id).await? {
        Some(s) if pending(&s.data) => {}
        _ => return Ok(()),
    }
    let mut tx = state.store.begin(actor()).await?;
    let Some(mut site) = tx.get::<Site>(site_id).await? else {
        return Ok(());
    };
    if !holds(&mut tx, server, &site.data).await?
        || !site.data.files.finish(&r.id, r.ok, &r.message)
    {
        return Ok(());
    }
    let (name, owner) = (site.meta.name.clone(), site.meta.owner);
    tx.update(site.meta.id, &site.meta.name, site.data).await?;
    tx.event(
        "site.restore",
        Kind::Site,
        Some((site_id, &name)),
        owner,
        serde_json::json!({"id": r.id, "ok": r.ok, "message": r.message, "server": server.meta.name}),
    )
    .await?;
    tx.commit().await?;
    state.changed();
    Ok(())
}

async fn sqlite(
    state: &AppState,
    server: &Stored<Server>,
    domain: &str,
    paths: Vec<String>,
) -> store::Result<()> {
    // Cheap check outside a transaction: most reports change nothing stored.
    let Some(site) = state.store.get_by_name::<Site>(Scope::All, domain).await? else {
        return Ok(());
    };
    if site.data.mode != PlacementMode::All || site.data.files.sqlite_paths == paths {
        return Ok(());
    }
    let mut tx = state.store.begin(actor()).await?;
    let Some(mut site) = tx.get::<Site>(site.meta.id).await? else {
        return Ok(());
    };
    if site.data.mode != PlacementMode::All
        || site.data.files.sqlite_paths == paths
        || !holds(&mut tx, server, &site.data).await?
    {
        return Ok(());
    }
    site.data.files.sqlite_paths = paths.clone();
    let (id, name, owner) = (site.meta.id, site.meta.name.clone(), site.meta.owner);
    tx.update(site.meta.id, &site.meta.name, site.data).await?;
    if !paths.is_empty() {
        tracing::warn!(site = %name, ?paths, "SQLite databases in an `all` site");
        tx.event(
            "site.sqlite_warning",
            Kind::Site,
            Some((id, &name)),
            owner,
            serde_json::json!({
                "paths": paths,
                "warnings": paths.iter().map(|p| crate::api::site_files::sqlite_warning(p)).collect::<Vec<_>>(),
            }),
        )
        .await?;
    }
    tx.commit().await?;
    state.changed();
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proto::agent_v1::FilesSiteStatus;

    fn report(restores: &[&str], sqlite: &[(&str, &[&str])]) -> RoleReport {
        RoleReport::Files(FilesReport {
            sites: sqlite
                .iter()
                .map(|(d, p)| FilesSiteStatus {
                    domain: (*d).into(),
                    usage_bytes: 0,
                    files: 0,
                    seq: 0,
                    conflicts: Vec::new(),
                    sqlite_paths: p.iter().map(|s| (*s).into()).collect(),
                })
                .collect(),
            restores: restores
                .iter()
                .map(|id| FileRestoreResult {
                    id: (*id).into(),
                    ok: true,
                    message: String::new(),
                })
                .collect(),
        })
    }

    #[test]
    fn only_what_changed_is_work() {
        let a = report(&[], &[("a.example", &["db.sqlite"]), ("b.example", &[])]);
        let w = work(None, Some(&a));
        assert_eq!(
            w.sqlite,
            vec![("a.example".into(), vec!["db.sqlite".into()])],
            "a first report: its non-empty lists are compared with the store"
        );
        assert!(work(Some(&a), Some(&a)).is_empty());
        let b = report(
            &["r2-0"],
            &[
                ("a.example", &["z.db", "db.sqlite"]),
                ("b.example", &[]),
                ("c.example", &[]),
            ],
        );
        let w = work(Some(&a), Some(&b));
        assert_eq!(w.restores[0].id, "r2-0");
        assert_eq!(
            w.sqlite,
            vec![
                ("a.example".into(), vec!["db.sqlite".into(), "z.db".into()]),
                ("c.example".into(), vec![]),
            ],
            "changed lists and sites new to the report"
        );
        // A result is work as long as it is reported (recorded once, retried if not).
        assert_eq!(work(Some(&b), Some(&b)).restores.len(), 1);
        assert!(work(Some(&a), None).is_empty());
    }
}
