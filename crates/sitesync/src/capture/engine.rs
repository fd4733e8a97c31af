//! The engine: interprets inotify events against the watch table, keeps the watches true
//! (a new directory is watched, then scanned; a directory moved out is unwatched), pairs
//! renames, and feeds the debouncer. The kernel side is behind [`Backend`], so tests drive
//! the engine with injected events and failures (overflow, `ENOSPC`, `IN_IGNORED`).
//!
//! **Renames.** `IN_MOVED_FROM` and `IN_MOVED_TO` of one rename share a cookie and are queued
//! together by the kernel. A `MOVED_FROM` waits [`MOVE_PAIR_GRACE`] for its partner; if none
//! comes the path left the tree (a removal; a directory's watches are dropped). A `MOVED_TO`
//! without a partner is a creation (a directory is watched and scanned: its whole subtree
//! is reported). A rename into or out of a `local` path, or to another site, is a removal on
//! one side and a creation on the other.
//!
//! **Lost events.** `IN_Q_OVERFLOW` or a failed read: every site gets a `Rescan` and every
//! tree is walked again to watch the directories created meanwhile. A failed `add_watch`
//! (`ENOSPC`: `fs.inotify.max_user_watches`) or an `IN_IGNORED` for a directory that was not
//! deleted: that site gets a `Rescan`. A site with directories that could not be watched is
//! walked again every [`WATCH_RETRY`], with another `Rescan` each time (changes there were
//! not seen meanwhile), until every directory is watched: never a silent blind spot.
//!
//! Walking a tree (a new site, a rescan after lost events) is blocking file-system work on
//! the caller's thread, proportional to the number of directories (see bench/RESULTS.md,
//! "bench/capture").

use std::collections::{HashMap, HashSet};
use std::ffi::OsString;
use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use inotify::EventMask;

use super::debounce::{Debouncer, Out, SiteId, Timing, Touch};
use super::watches::{WatchTable, Wd};
use super::Seen;

/// How often a site with directories that could not be watched is walked again.
pub(crate) const WATCH_RETRY: Duration = Duration::from_secs(30);

/// How soon a site whose root could not be watched (missing: a deployment swapping
/// trees) is tried again.
pub(crate) const ROOT_RETRY: Duration = Duration::from_secs(1);

/// How long an `IN_MOVED_FROM` waits for its `IN_MOVED_TO` before it counts as a move out.
pub(crate) const MOVE_PAIR_GRACE: Duration = Duration::from_millis(10);

/// The kernel side: add and remove directory watches.
pub(crate) trait Backend {
    /// Watch directory `dir` (absolute); the descriptor.
    fn add_watch(&mut self, dir: &Path) -> io::Result<Wd>;
    /// Stop watching (best effort: the directory may be gone already).
    fn rm_watch(&mut self, wd: Wd);
    /// The kernel dropped `wd` by itself (`IN_IGNORED`): forget it.
    fn dropped(&mut self, wd: Wd);
}

/// One inotify event, owned.
#[derive(Debug, Clone)]
pub(crate) struct RawEvent {
    pub wd: Wd,
    pub mask: EventMask,
    pub cookie: u32,
    pub name: Option<OsString>,
}

#[derive(Debug)]
struct PendingMove {
    cookie: u32,
    site: SiteId,
    rel: PathBuf,
    is_dir: bool,
    local: bool,
    at: Instant,
}

/// Watch table + debouncer + rename pairing.
#[derive(Debug)]
pub(crate) struct Engine {
    pub(crate) table: WatchTable,
    deb: Debouncer,
    moves: Vec<PendingMove>,
    /// Watches whose directory reported `IN_DELETE_SELF` (their `IN_IGNORED` is expected).
    deleted: HashSet<Wd>,
    /// Sites with directories that could not be watched, and when to try again. Until then
    /// changes there are not seen, so every retry that still fails is another `Rescan`.
    incomplete: HashMap<SiteId, Instant>,
}

fn watch_limit() -> String {
    std::fs::read_to_string("/proc/sys/fs/inotify/max_user_watches")
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|_| "?".to_string())
}

impl Engine {
    pub(crate) fn new(timing: Timing) -> Self {
        Engine {
            table: WatchTable::default(),
            deb: Debouncer::new(timing),
            moves: Vec::new(),
            deleted: HashSet::new(),
            incomplete: HashMap::new(),
        }
    }

    /// Watch a site's tree (its existing content is not reported). A root that cannot be
    /// watched is an error; a subdirectory that cannot be is a `Rescan`.
    pub(crate) fn watch(
        &mut self,
        b: &mut dyn Backend,
        name: &str,
        root: &Path,
        local: Vec<PathBuf>,
        now: Instant,
    ) -> io::Result<()> {
        self.unwatch(b, name);
        let wd = b.add_watch(root)?;
        let id = self.table.add_site(name, root.to_path_buf(), local);
        self.table.insert(id, Path::new(""), wd);
        self.walk(b, id, Path::new(""), false, now);
        Ok(())
    }

    /// Stop watching a site and drop what is pending for it.
    pub(crate) fn unwatch(&mut self, b: &mut dyn Backend, name: &str) {
        if let Some((id, wds)) = self.table.remove_site(name) {
            for wd in wds {
                self.deleted.remove(&wd);
                b.rm_watch(wd);
            }
            self.deb.forget(id);
            self.moves.retain(|m| m.site != id);
            self.incomplete.remove(&id);
        }
    }

    /// Watch `top` (already known to be a directory of `site`) and everything below it;
    /// with `report`, every entry found is reported as created (a directory that appeared
    /// or moved in: what was created in it before its watch existed is only seen here).
    /// The watch is added before the directory is listed, so nothing falls in between.
    fn walk(&mut self, b: &mut dyn Backend, site: SiteId, top: &Path, report: bool, now: Instant) {
        let mut stack = vec![top.to_path_buf()];
        while let Some(rel) = stack.pop() {
            let Some(s) = self.table.site(site) else {
                return;
            };
            if s.is_local(&rel) {
                continue;
            }
            let abs = s.root.join(&rel);
            // The root too: after lost events or a root swap it may be a new directory.
            match b.add_watch(&abs) {
                Ok(wd) => self.table.insert(site, &rel, wd),
                // Gone or replaced by a file meanwhile: its own events say so (not for the
                // root, whose parent is not watched).
                Err(e)
                    if matches!(e.raw_os_error(), Some(2) | Some(20))
                        && !rel.as_os_str().is_empty() =>
                {
                    continue
                }
                Err(e) => {
                    // A missing root is most likely a deployment between its two renames.
                    let retry = if rel.as_os_str().is_empty() {
                        ROOT_RETRY
                    } else {
                        WATCH_RETRY
                    };
                    self.cannot_watch(site, &abs, &e, now, retry);
                    continue;
                }
            }
            let entries = match std::fs::read_dir(&abs) {
                Ok(entries) => entries,
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(e) => {
                    tracing::warn!(site = %self.site_name(site), dir = %abs.display(), error = %e,
                        "cannot list a directory of a watched site; rescanning it");
                    self.deb.rescan(site, now);
                    continue;
                }
            };
            for entry in entries {
                let entry = match entry {
                    Ok(entry) => entry,
                    Err(e) => {
                        tracing::warn!(site = %self.site_name(site), dir = %abs.display(), error = %e,
                            "error listing a directory of a watched site; rescanning it");
                        self.deb.rescan(site, now);
                        break;
                    }
                };
                let child = rel.join(entry.file_name());
                if self.table.site(site).is_some_and(|s| s.is_local(&child)) {
                    continue;
                }
                // DirEntry::file_type does not follow symlinks: a link is reported, never
                // walked.
                let is_dir = entry.file_type().map(|t| t.is_dir()).unwrap_or(false);
                if report {
                    self.deb.touch(site, &child, Touch::Created, now);
                }
                if is_dir {
                    stack.push(child);
                }
            }
        }
    }

    fn cannot_watch(
        &mut self,
        site: SiteId,
        abs: &Path,
        e: &io::Error,
        now: Instant,
        retry: Duration,
    ) {
        // One log line per walk of the site, not one per directory.
        let first = self.incomplete.insert(site, now + retry).is_none();
        if first && e.raw_os_error() == Some(28) {
            tracing::error!(site = %self.site_name(site), dir = %abs.display(),
                watched = self.table.len(), limit = %watch_limit(),
                "inotify watch limit reached: raise the sysctl fs.inotify.max_user_watches; \
                 the site is rescanned now and every 30 s until all its directories are watched");
        } else if first {
            tracing::error!(site = %self.site_name(site), dir = %abs.display(), error = %e,
                "cannot watch a directory of a site; rescanning it now and every 30 s until it can");
        }
        self.deb.rescan(site, now);
    }

    /// Is a site's retry due (see [`Engine::retry_watches`])?
    pub(crate) fn retry_due(&self, now: Instant) -> bool {
        self.incomplete.values().any(|t| *t <= now)
    }

    /// Walk again the sites whose retry is due: watch what can be watched now, and rescan
    /// (changes in unwatched directories were not seen meanwhile).
    pub(crate) fn retry_watches(&mut self, b: &mut dyn Backend, now: Instant) {
        let due: Vec<SiteId> = self
            .incomplete
            .iter()
            .filter(|(_, t)| **t <= now)
            .map(|(s, _)| *s)
            .collect();
        for site in due {
            self.incomplete.remove(&site);
            if self.table.site(site).is_none() {
                continue;
            }
            self.deb.rescan(site, now);
            self.walk(b, site, Path::new(""), false, now);
            if !self.incomplete.contains_key(&site) {
                tracing::info!(site = %self.site_name(site), "every directory of the site is watched again");
            }
        }
    }

    fn site_name(&self, site: SiteId) -> String {
        self.table
            .site(site)
            .map(|s| s.name.clone())
            .unwrap_or_default()
    }

    /// The site's root directory was removed or moved away (a deployment swapping trees):
    /// drop every watch of the old tree (a moved one would keep reporting under our paths),
    /// rescan, and watch the root path again at once (retried while it is missing).
    fn root_lost(&mut self, b: &mut dyn Backend, site: SiteId, now: Instant) {
        tracing::warn!(site = %self.site_name(site),
            "the root of a watched site was removed or moved; watching its path again and rescanning");
        for wd in self.table.remove_subtree(site, Path::new("")) {
            self.deleted.remove(&wd);
            b.rm_watch(wd);
        }
        self.moves.retain(|m| m.site != site);
        self.deb.rescan(site, now);
        self.incomplete.insert(site, now);
    }

    /// Events may have been lost for every site (queue overflow, read error): rescan all,
    /// and walk every tree again so directories created meanwhile are watched.
    pub(crate) fn lost_events(&mut self, b: &mut dyn Backend, now: Instant) {
        self.moves.clear();
        for id in self.table.site_ids() {
            self.deb.rescan(id, now);
            self.walk(b, id, Path::new(""), false, now);
        }
    }

    /// Interpret one event.
    pub(crate) fn handle(&mut self, b: &mut dyn Backend, ev: RawEvent, now: Instant) {
        if ev.mask.contains(EventMask::Q_OVERFLOW) {
            tracing::warn!("inotify event queue overflowed (fs.inotify.max_queued_events): rescanning every site");
            self.lost_events(b, now);
            return;
        }
        if ev.mask.contains(EventMask::IGNORED) {
            b.dropped(ev.wd);
            let expected = self.deleted.remove(&ev.wd);
            if let Some((site, rel)) = self.table.forget_wd(ev.wd) {
                if !expected {
                    tracing::warn!(site = %self.site_name(site), dir = %rel.display(),
                        "inotify dropped the watch of a directory still in the tree; rescanning the site");
                    self.deb.rescan(site, now);
                }
            }
            return;
        }
        let Some((site, dir)) = self.table.lookup(ev.wd) else {
            return;
        };
        let dir = dir.to_path_buf();
        let Some(name) = ev.name else {
            // The watched directory itself.
            if ev.mask.intersects(EventMask::DELETE_SELF) {
                self.deleted.insert(ev.wd);
            }
            if dir.as_os_str().is_empty()
                && ev
                    .mask
                    .intersects(EventMask::DELETE_SELF | EventMask::MOVE_SELF)
            {
                self.root_lost(b, site, now);
            }
            return;
        };
        let rel = dir.join(&name);
        let is_dir = ev.mask.contains(EventMask::ISDIR);
        let local = self.table.site(site).is_some_and(|s| s.is_local(&rel));
        if ev.mask.contains(EventMask::MOVED_FROM) {
            self.moves.push(PendingMove {
                cookie: ev.cookie,
                site,
                rel,
                is_dir,
                local,
                at: now,
            });
            return;
        }
        if ev.mask.contains(EventMask::MOVED_TO) {
            let from = self
                .moves
                .iter()
                .position(|m| m.cookie == ev.cookie)
                .map(|i| self.moves.remove(i));
            match from {
                Some(m) if m.site == site && !m.local && !local => {
                    if is_dir {
                        // A directory renamed over an empty one: the victim's watch goes.
                        if let Some(victim) = self.table.rename_subtree(site, &m.rel, &rel) {
                            self.deleted.insert(victim);
                        }
                    }
                    let degraded = self.deb.rename(site, &m.rel, &rel, is_dir, now);
                    // Renamed before its creation was handled (its watch could not be
                    // added then), or reported as gone + appeared: watch it and report
                    // what is in it.
                    let watched = self
                        .table
                        .site(site)
                        .is_some_and(|s| s.dirs.contains_key(&rel));
                    if is_dir && (degraded || !watched) {
                        self.walk(b, site, &rel, true, now);
                    }
                }
                Some(m) => {
                    if !m.local {
                        self.moved_out(b, m);
                    }
                    if !local {
                        self.appeared(b, site, &rel, is_dir, now);
                    }
                }
                None if !local => self.appeared(b, site, &rel, is_dir, now),
                None => {}
            }
            return;
        }
        if local {
            return;
        }
        if ev.mask.contains(EventMask::CREATE) {
            self.appeared(b, site, &rel, is_dir, now);
        } else if ev.mask.contains(EventMask::DELETE) {
            self.deb.remove(site, &rel, is_dir, now);
        } else if ev.mask.contains(EventMask::MODIFY) {
            self.deb.touch(site, &rel, Touch::Modified, now);
        } else if ev.mask.contains(EventMask::CLOSE_WRITE) {
            self.deb.touch(site, &rel, Touch::Closed, now);
        } else if ev.mask.contains(EventMask::ATTRIB) {
            self.deb.touch(site, &rel, Touch::Changed, now);
        }
    }

    fn appeared(
        &mut self,
        b: &mut dyn Backend,
        site: SiteId,
        rel: &Path,
        is_dir: bool,
        now: Instant,
    ) {
        self.deb.touch(site, rel, Touch::Created, now);
        if is_dir {
            self.walk(b, site, rel, true, now);
        }
    }

    fn moved_out(&mut self, b: &mut dyn Backend, m: PendingMove) {
        if m.is_dir {
            for wd in self.table.remove_subtree(m.site, &m.rel) {
                self.deleted.remove(&wd);
                b.rm_watch(wd);
            }
        }
        self.deb.remove(m.site, &m.rel, m.is_dir, m.at);
    }

    /// Moves whose partner did not come within the grace left the tree.
    pub(crate) fn settle_moves(&mut self, b: &mut dyn Backend, now: Instant) {
        let (old, young): (Vec<_>, Vec<_>) = std::mem::take(&mut self.moves)
            .into_iter()
            .partition(|m| m.at + MOVE_PAIR_GRACE <= now);
        self.moves = young;
        for m in old {
            if !m.local {
                self.moved_out(b, m);
            }
        }
    }

    /// When something next needs attention: a due item or an unpaired move.
    pub(crate) fn next_deadline(&self) -> Option<Instant> {
        let moves = self.moves.iter().map(|m| m.at + MOVE_PAIR_GRACE);
        let others = moves.chain(self.incomplete.values().copied()).min();
        match (self.deb.next_deadline(), others) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// What is due, with site names.
    pub(crate) fn take_due(&mut self, now: Instant) -> Vec<(String, Seen)> {
        self.deb
            .take_due(now)
            .into_iter()
            .filter_map(|(id, out)| {
                let name = self.table.site(id)?.name.clone();
                let seen = match out {
                    Out::Path(p) => Seen::Path(p),
                    Out::Renamed { from, to } => Seen::Renamed { from, to },
                    Out::Rescan => Seen::Rescan,
                };
                Some((name, seen))
            })
            .collect()
    }

    /// Items waiting in the debouncer (for figures).
    pub(crate) fn pending(&self) -> usize {
        self.deb.pending()
    }
}

#[cfg(test)]
#[path = "engine_tests.rs"]
mod tests;
