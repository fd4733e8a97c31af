//! The debouncer: a pure state machine (no I/O, time passed in) that turns a stream of
//! per-path observations into what the replica should look at, once it stopped changing.
//!
//! Pending items are kept in observation order (a sequence number each):
//! - `Path` entries, one per path (the newest is updated in place while it keeps changing);
//! - `Renamed` items, due at once;
//! - `Rescan` items, due at once; one replaces every pending item of its site.
//!
//! **Due.** A path is due `debounce` after its last change, and at the latest `max_delay`
//! after its first change, so a file rewritten over and over (open, write, close, again) is
//! still reported. A file *open for writing* (an `IN_MODIFY` not yet followed by its
//! `IN_CLOSE_WRITE`) that keeps changing is not reported at `max_delay`: the replica would
//! read and push a half-written file (a 100 MB upload in progress) only to push it again.
//! It is reported once it stops changing (closed or quiet for `debounce`), and at the latest
//! `max_open_delay` after its first change (a log file held open forever still travels).
//!
//! **Short-lived files.** An entry whose first observation was its creation (`created`) and
//! that is deleted (or moved out) while still pending is dropped: the replica never knew it.
//! A created-in-window file renamed over a target becomes `Path(target)` (no `Renamed`, the
//! temp name is never reported): that is how write-to-temp-then-rename is reported.
//!
//! **Order.** The replica applies a `Renamed` to the versions it knows, so it must see
//! everything before and after a rename on the paths it touches in the order it happened:
//! a `Path` or `Renamed` is only emitted when no earlier, still pending item that overlaps it
//! (same path, ancestor or descendant) is a `Renamed` or `Rescan` (for a `Renamed`: any
//! earlier overlapping item). Pending entries under a rename's source are moved under its
//! target and placed after the `Renamed`: reported before it, the replica would find the
//! source path missing and push a deletion of a file that was only moved. Pending entries
//! for the target stay before it (a deleted file a directory now replaces must be gone on
//! the replica before the rename can be applied there). A rename whose source may be unknown
//! to the replica (the target of a collapsed temp rename), or below a directory with a
//! pending entry (new, or changed and maybe gone before it is reported), is reported as
//! `Path(from)` + `Path(to)`: the replica could not apply it as a rename.
//!
//! `debounce_model_tests.rs` checks all of this as a property: random operations on a model
//! disk, a model replica applying what comes out (with rename(2)'s rules), and the replica
//! equal to the disk in the end.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Internal site number (names are mapped by the watch table).
pub(crate) type SiteId = u32;

/// The three timing knobs of [`Debouncer`] (see the module documentation).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Timing {
    pub debounce: Duration,
    pub max_delay: Duration,
    pub max_open_delay: Duration,
}

/// What was observed about one path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Touch {
    /// It appeared: `IN_CREATE`, moved in from outside, found by scanning a new directory.
    Created,
    /// Its content is being written (`IN_MODIFY`): open for writing until `Closed`.
    Modified,
    /// Closed after writing (`IN_CLOSE_WRITE`).
    Closed,
    /// Anything else that changed it (`IN_ATTRIB`).
    Changed,
}

/// One item the debouncer hands out, with its site.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Out {
    Path(PathBuf),
    Renamed { from: PathBuf, to: PathBuf },
    Rescan,
}

#[derive(Debug, Clone)]
struct Entry {
    path: PathBuf,
    first: Instant,
    last: Instant,
    created: bool,
    /// The replica may not know this path: created here, or the target of a collapsed
    /// temp-file rename (which may or may not have existed before).
    fresh: bool,
    open: bool,
}

#[derive(Debug, Clone)]
enum Kind {
    Path(Entry),
    /// Due at once (`at`), once nothing earlier blocks it.
    Renamed {
        from: PathBuf,
        to: PathBuf,
        at: Instant,
    },
    Rescan {
        at: Instant,
    },
}

#[derive(Debug, Clone)]
struct Item {
    site: SiteId,
    kind: Kind,
}

/// Pending observations of every site, in order (see the module documentation).
#[derive(Debug)]
pub(crate) struct Debouncer {
    timing: Timing,
    next_seq: u64,
    items: BTreeMap<u64, Item>,
    /// The newest pending `Path` entry of each (site, path).
    newest: HashMap<(SiteId, PathBuf), u64>,
    /// The pending `Renamed` and `Rescan` items (few), so that ordering checks do not walk
    /// every pending path.
    barriers: BTreeSet<u64>,
    /// When to look again: the earliest due time of an item not known to be blocked
    /// (computed by `take_due`, lowered by every new observation).
    wake: Option<Instant>,
}

fn overlaps(a: &Path, b: &Path) -> bool {
    a.starts_with(b) || b.starts_with(a)
}

impl Item {
    fn due(&self, t: &Timing) -> Instant {
        match &self.kind {
            Kind::Path(e) => {
                let quiet = e.last + t.debounce;
                let cap = e.first
                    + if e.open {
                        t.max_open_delay
                    } else {
                        t.max_delay
                    };
                quiet.min(cap)
            }
            Kind::Renamed { at, .. } | Kind::Rescan { at } => *at,
        }
    }

    fn touches(&self, p: &Path) -> bool {
        match &self.kind {
            Kind::Path(e) => overlaps(&e.path, p),
            Kind::Renamed { from, to, .. } => overlaps(from, p) || overlaps(to, p),
            Kind::Rescan { .. } => true,
        }
    }

    fn is_barrier(&self) -> bool {
        !matches!(self.kind, Kind::Path(_))
    }

    /// Must `later` wait for `self` (an earlier pending item of the same site)?
    fn blocks(&self, later: &Item) -> bool {
        if self.site != later.site || !(self.is_barrier() || later.is_barrier()) {
            return false;
        }
        match &later.kind {
            Kind::Path(e) => self.touches(&e.path),
            Kind::Renamed { from, to, .. } => self.touches(from) || self.touches(to),
            Kind::Rescan { .. } => true,
        }
    }
}

impl Debouncer {
    /// An empty debouncer.
    pub(crate) fn new(timing: Timing) -> Self {
        Debouncer {
            timing,
            next_seq: 0,
            items: BTreeMap::new(),
            newest: HashMap::new(),
            barriers: BTreeSet::new(),
            wake: None,
        }
    }

    /// How many items are pending (for tests and figures).
    pub(crate) fn pending(&self) -> usize {
        self.items.len()
    }

    fn lower_wake(&mut self, due: Instant) {
        self.wake = Some(self.wake.map_or(due, |w| w.min(due)));
    }

    fn push(&mut self, site: SiteId, kind: Kind) -> u64 {
        let seq = self.next_seq;
        self.next_seq += 1;
        let item = Item { site, kind };
        self.lower_wake(item.due(&self.timing));
        let Item { kind, .. } = item;
        match &kind {
            Kind::Path(e) => {
                self.newest.insert((site, e.path.clone()), seq);
            }
            Kind::Renamed { .. } | Kind::Rescan { .. } => {
                self.barriers.insert(seq);
            }
        }
        self.items.insert(seq, Item { site, kind });
        seq
    }

    fn drop_item(&mut self, seq: u64) -> Option<Item> {
        let item = self.items.remove(&seq)?;
        self.barriers.remove(&seq);
        if let Kind::Path(e) = &item.kind {
            let key = (item.site, e.path.clone());
            if self.newest.get(&key) == Some(&seq) {
                self.newest.remove(&key);
            }
        }
        Some(item)
    }

    /// The newest pending entry for `path` if a new observation may be merged into it: no
    /// pending rename or rescan after it touches the path (else the order would change).
    fn mergeable(&self, site: SiteId, path: &Path) -> Option<u64> {
        let seq = *self.newest.get(&(site, path.to_path_buf()))?;
        let later_barrier = self
            .barriers
            .range(seq + 1..)
            .filter_map(|b| self.items.get(b))
            .any(|it| it.site == site && it.touches(path));
        (!later_barrier).then_some(seq)
    }

    /// Record an observation of `path`.
    pub(crate) fn touch(&mut self, site: SiteId, path: &Path, what: Touch, now: Instant) {
        if let Some(seq) = self.mergeable(site, path) {
            if let Some(Item {
                kind: Kind::Path(e),
                ..
            }) = self.items.get_mut(&seq)
            {
                e.last = now;
                match what {
                    Touch::Modified => e.open = true,
                    Touch::Closed => e.open = false,
                    Touch::Created | Touch::Changed => {}
                }
                // Closing may bring the due time forward (max_delay instead of the open cap).
                let due = self.items.get(&seq).map(|it| it.due(&self.timing));
                if let Some(due) = due {
                    self.lower_wake(due);
                }
                return;
            }
        }
        let entry = Entry {
            path: path.to_path_buf(),
            first: now,
            last: now,
            created: what == Touch::Created,
            fresh: what == Touch::Created,
            open: what == Touch::Modified,
        };
        self.push(site, Kind::Path(entry));
    }

    /// `path` was deleted or moved out of the tree.
    pub(crate) fn remove(&mut self, site: SiteId, path: &Path, is_dir: bool, now: Instant) {
        if let Some(seq) = self.mergeable(site, path) {
            if let Some(Item {
                kind: Kind::Path(e),
                ..
            }) = self.items.get(&seq)
            {
                if e.created {
                    // Created and gone within the window: the replica never knew it. Its
                    // pending descendants (a temp directory's files) were new as well.
                    self.drop_item(seq);
                    if is_dir {
                        self.drop_created_under(site, path);
                    }
                    return;
                }
            }
        }
        self.touch(site, path, Touch::Changed, now);
    }

    fn drop_created_under(&mut self, site: SiteId, dir: &Path) {
        let doomed: Vec<u64> = self
            .items
            .iter()
            .filter(|(_, it)| {
                it.site == site
                    && matches!(&it.kind, Kind::Path(e) if e.created && e.path.starts_with(dir))
            })
            .map(|(s, _)| *s)
            .collect();
        for seq in doomed {
            if self.mergeable_seq(site, seq) {
                self.drop_item(seq);
            }
        }
    }

    fn mergeable_seq(&self, site: SiteId, seq: u64) -> bool {
        match self.items.get(&seq) {
            Some(Item {
                kind: Kind::Path(e),
                ..
            }) => self.mergeable(site, &e.path) == Some(seq),
            _ => false,
        }
    }

    /// A rename inside the tree of one site, `from` → `to`. Returns true when it could not
    /// be reported as a `Renamed` and became `Path(from)` + `Path(to)` (the replica may not
    /// know the source, or a directory above the target is not reported yet and may be gone
    /// by then, so the replica could not apply the rename): the caller then reports what a
    /// renamed directory contains (as for a directory moved in).
    pub(crate) fn rename(
        &mut self,
        site: SiteId,
        from: &Path,
        to: &Path,
        is_dir: bool,
        now: Instant,
    ) -> bool {
        let from_seq = self.mergeable(site, from);
        let from_flags = |flag: fn(&Entry) -> bool| {
            from_seq.is_some_and(|seq| {
                matches!(self.items.get(&seq), Some(Item { kind: Kind::Path(e), .. }) if flag(e))
            })
        };
        let from_new = from_flags(|e| e.created);
        let from_fresh = from_flags(|e| e.fresh);
        // A pending rename touching the source must keep its order: no collapse then.
        let renames_pending = self
            .barriers
            .iter()
            .filter_map(|b| self.items.get(b))
            .any(|it| it.site == site && it.touches(from));
        let collapse = from_new && !renames_pending;
        // A directory above the target with a pending entry may be new to the replica and
        // gone before it is reported: the replica could not rename into it.
        let parent_pending = to
            .ancestors()
            .skip(1)
            .filter(|a| !a.as_os_str().is_empty())
            .any(|a| self.newest.contains_key(&(site, a.to_path_buf())));
        let degrade = !collapse && (from_fresh || parent_pending);
        // Collapsing, the target's own pending entry merges into the new `Path(target)`.
        // Otherwise it stays before the `Renamed` and is reported first: it may be the
        // deletion of a file that a directory now replaces, which the replica must apply
        // before it can rename (the property test in debounce_model_tests.rs found this).
        let mut target_created = false;
        let mut target_first = None;
        if let Some(seq) = self.mergeable(site, to).filter(|_| collapse) {
            if let Some(Item {
                kind: Kind::Path(e),
                ..
            }) = self.drop_item(seq)
            {
                target_created = e.created;
                target_first = Some(e.first);
            }
        }
        // Pending entries under the source, in order, to be moved under the target. A file
        // has at most its newest entry unless a pending barrier kept an older one.
        let moved: Vec<u64> = if is_dir || renames_pending {
            self.items
                .iter()
                .filter(|(_, it)| {
                    it.site == site && matches!(&it.kind, Kind::Path(e) if e.path.starts_with(from))
                })
                .map(|(s, _)| *s)
                .collect()
        } else {
            self.newest
                .get(&(site, from.to_path_buf()))
                .copied()
                .into_iter()
                .collect()
        };
        let mut moved_entries = Vec::with_capacity(moved.len());
        for seq in moved {
            if let Some(Item {
                kind: Kind::Path(mut e),
                ..
            }) = self.drop_item(seq)
            {
                let rest = e
                    .path
                    .strip_prefix(from)
                    .map(Path::to_path_buf)
                    .unwrap_or_default();
                e.path = if rest.as_os_str().is_empty() {
                    to.to_path_buf()
                } else {
                    to.join(rest)
                };
                moved_entries.push(e);
            }
        }
        if collapse {
            // The source never reached the replica: report the target only.
            for e in moved_entries.iter_mut() {
                if e.path == to {
                    e.created = target_created;
                    e.fresh = true;
                    e.first = target_first.map_or(e.first, |f| f.min(e.first));
                    e.last = now;
                }
            }
        } else if degrade {
            // The source is gone (the replica removes it if it knew it) and the target
            // appeared.
            let gone = Entry {
                path: from.to_path_buf(),
                first: now,
                last: now,
                created: false,
                fresh: false,
                open: false,
            };
            self.push(site, Kind::Path(gone));
            if !moved_entries.iter().any(|e| e.path == to) {
                self.touch(site, to, Touch::Changed, now);
                let seq = self.newest.get(&(site, to.to_path_buf())).copied();
                if let Some(Item {
                    kind: Kind::Path(e),
                    ..
                }) = seq.and_then(|s| self.items.get_mut(&s))
                {
                    e.fresh = true;
                }
            }
        } else {
            self.push(
                site,
                Kind::Renamed {
                    from: from.to_path_buf(),
                    to: to.to_path_buf(),
                    at: now,
                },
            );
        }
        for e in moved_entries {
            self.push(site, Kind::Path(e));
        }
        degrade
    }

    /// Events may have been lost for `site`: everything pending for it is replaced by one
    /// `Rescan` (the replica compares the whole tree).
    pub(crate) fn rescan(&mut self, site: SiteId, now: Instant) {
        self.forget(site);
        self.push(site, Kind::Rescan { at: now });
    }

    /// Forget a site (unwatched).
    pub(crate) fn forget(&mut self, site: SiteId) {
        let doomed: Vec<u64> = self
            .items
            .iter()
            .filter(|(_, it)| it.site == site)
            .map(|(s, _)| *s)
            .collect();
        for seq in doomed {
            self.drop_item(seq);
        }
    }

    /// When to call [`Debouncer::take_due`] next (`None`: nothing pending). Items due but
    /// blocked by an earlier one are not counted: the earlier one's time is.
    pub(crate) fn next_deadline(&self) -> Option<Instant> {
        if self.items.is_empty() {
            None
        } else {
            self.wake
        }
    }

    /// Take every item due at `now` whose earlier overlapping items are gone, in order.
    /// Cheap when nothing can be due yet (no walk over the pending items before `wake`).
    pub(crate) fn take_due(&mut self, now: Instant) -> Vec<(SiteId, Out)> {
        let mut out = Vec::new();
        if self.wake.is_none_or(|w| w > now) {
            return out;
        }
        // Earlier items still pending: barriers (checked against everything) and paths
        // (checked against barriers only).
        let mut waiting_barriers: Vec<u64> = Vec::new();
        let mut waiting_paths: Vec<u64> = Vec::new();
        let mut wake: Option<Instant> = None;
        let seqs: Vec<u64> = self.items.keys().copied().collect();
        for seq in seqs {
            let Some(item) = self.items.get(&seq) else {
                continue;
            };
            let due_at = item.due(&self.timing);
            let due = due_at <= now;
            if !due {
                wake = Some(wake.map_or(due_at, |w: Instant| w.min(due_at)));
            }
            let blocked_by = |list: &[u64]| {
                list.iter().any(|w| {
                    self.items
                        .get(w)
                        .is_some_and(|earlier| earlier.blocks(item))
                })
            };
            let blocked = due
                && (blocked_by(&waiting_barriers)
                    || (item.is_barrier() && blocked_by(&waiting_paths)));
            if !due || blocked {
                if item.is_barrier() {
                    waiting_barriers.push(seq);
                } else {
                    waiting_paths.push(seq);
                }
                continue;
            }
            if let Some(item) = self.drop_item(seq) {
                let o = match item.kind {
                    Kind::Path(e) => Out::Path(e.path),
                    Kind::Renamed { from, to, .. } => Out::Renamed { from, to },
                    Kind::Rescan { .. } => Out::Rescan,
                };
                out.push((item.site, o));
            }
        }
        self.wake = wake;
        out
    }
}

#[cfg(test)]
#[path = "debounce_tests.rs"]
mod tests;

#[cfg(test)]
#[path = "debounce_model_tests.rs"]
mod model_tests;
