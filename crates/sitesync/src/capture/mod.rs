//! Capture: watching a site's tree for local writes (inotify), debounced, with a rescan
//! whenever events may have been lost. Capture reports *which paths to look at*; the
//! replica decides what changed by comparing the path with the version it knows.
//!
//! One [`Capture`] per server watches every directory of every site it is given with one
//! inotify instance (the per-user limits are per instance and per watch, not per site):
//! - `watches` is the directory watch table (descriptor ↔ site and directory);
//! - `engine` interprets events (new directories watched then scanned, renames paired,
//!   moves out unwatched, lost events turned into rescans);
//! - `debounce` is the pure debouncer (when a path is reported, what is never reported,
//!   in which order);
//! - `inotify` is the kernel side, read through tokio's reactor.
//!
//! What the replica gets, per site, in the order things happened on overlapping paths:
//! - [`Seen::Path`] once a path stopped changing: `debounce` (200 ms) after its last change,
//!   at the latest `max_delay` (5 s) after its first; a file still open for writing and
//!   still being written is held until it is closed or quiet (so a large upload is sent
//!   once, complete), at the latest `max_open_delay` (60 s) after its first change.
//!   A directory that appeared (created or moved in) is reported together with everything
//!   found in it when it was scanned: the replica need not walk it.
//! - [`Seen::Renamed`] for a rename inside the tree of a file or directory the replica may
//!   know. Write-to-temp-then-rename (the temp file created within the window) is reported
//!   as `Path(target)` only: the temp name never reaches the replica. A rename the replica
//!   might not be able to apply (its source may be unknown to it, or a directory above its
//!   target has changes not reported yet and may be gone by then) is reported as
//!   `Path(from)` + `Path(to)` (+ the content of a renamed directory) instead.
//! - [`Seen::Rescan`] when events may have been lost (queue overflow, read error, a watch
//!   that could not be added, a watch dropped for a directory still in the tree), and when
//!   the site's root directory is removed or moved away (a deployment swapping trees: the
//!   old tree's watches are dropped and the root path is watched again).
//!
//! Not reported: `local` paths (and everything below them), files created and removed
//! within the window, the initial content of a tree given to [`Capture::watch`], attribute
//! changes of a site's root directory itself.
//!
//! Not seen by inotify at all: writes through a shared memory mapping (SQLite with
//! `mmap_size`, some caches) produce no `IN_MODIFY`; they show up at the file's
//! `IN_CLOSE_WRITE` when it was opened for writing, otherwise only at the replica's
//! periodic manifest comparison (the backstop DESIGN.md requires). Changes made through
//! another mount of the same filesystem (a bind mount, a container) are seen: inotify
//! watches inodes, not paths.

pub(crate) mod debounce;
pub(crate) mod engine;
pub(crate) mod inotify;
pub(crate) mod watches;

use std::io;
use std::path::{Component, Path, PathBuf};
use std::time::{Duration, Instant};

use self::debounce::Timing;
use self::engine::Engine;
use self::inotify::Kernel;

/// What the replica should look at, for one site.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Seen {
    /// Look at this path (relative to the site root): created, written, attributes changed,
    /// moved in from outside the tree, or removed. Reported once it stopped changing.
    Path(PathBuf),
    /// A rename inside the tree (file or directory), seen as one move.
    Renamed {
        /// The old path, relative to the site root.
        from: PathBuf,
        /// The new path, relative to the site root.
        to: PathBuf,
    },
    /// Events may have been lost for this site: compare the whole tree.
    Rescan,
}

/// Timing of the debounce (see the module documentation).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CaptureOptions {
    /// A path is reported once it has not changed for this long.
    pub debounce: Duration,
    /// A path that keeps changing is reported at the latest this long after its first
    /// change (unless it is a file still open for writing).
    pub max_delay: Duration,
    /// A file still open for writing that keeps being written is reported at the latest
    /// this long after its first change.
    pub max_open_delay: Duration,
}

impl Default for CaptureOptions {
    fn default() -> Self {
        CaptureOptions {
            debounce: Duration::from_millis(200),
            max_delay: Duration::from_secs(5),
            max_open_delay: Duration::from_secs(60),
        }
    }
}

/// Why capture could not start or watch a site.
#[derive(Debug, thiserror::Error)]
pub enum CaptureError {
    /// Capture reads events through tokio's reactor: create it inside a runtime.
    #[error("capture must be created inside a tokio runtime")]
    NoRuntime,
    /// The inotify instance could not be created (`fs.inotify.max_user_instances`).
    #[error("cannot create an inotify instance (fs.inotify.max_user_instances?): {0}")]
    Init(#[source] io::Error),
    /// The site's root is not a directory that can be watched.
    #[error("cannot watch the root {root} of site {site}: {source}")]
    Root {
        /// The site.
        site: String,
        /// Its root.
        root: PathBuf,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// A local path must be relative, inside the tree, without `..`.
    #[error("local path {path:?} of site {site} must be a relative path inside the tree")]
    BadLocal {
        /// The site.
        site: String,
        /// The offending path.
        path: PathBuf,
    },
}

/// The watcher of every site on this server (one inotify instance).
#[derive(Debug)]
pub struct Capture {
    kernel: Kernel,
    engine: Engine,
    /// After a read error, reads pause until then (an error that repeats must not spin).
    paused_until: Option<Instant>,
    /// Events read from the kernel since creation.
    events: u64,
}

/// Most events handled in one go before the due items are looked at again.
const DRAIN: usize = 16 * 1024;

impl Capture {
    /// A capture with no sites yet. Must be called inside a tokio runtime.
    pub fn new(options: CaptureOptions) -> Result<Capture, CaptureError> {
        tokio::runtime::Handle::try_current().map_err(|_| CaptureError::NoRuntime)?;
        let kernel = Kernel::new().map_err(CaptureError::Init)?;
        let timing = Timing {
            debounce: options.debounce,
            max_delay: options.max_delay,
            max_open_delay: options.max_open_delay.max(options.max_delay),
        };
        Ok(Capture {
            kernel,
            engine: Engine::new(timing),
            paused_until: None,
            events: 0,
        })
    }

    /// Watch `site`'s tree at `root`, except its `local` paths (relative to `root`; never
    /// watched nor reported). What is already in the tree is not reported. Watching a site
    /// again replaces its watch (new root or local paths). Walks the whole tree adding one
    /// watch per directory: blocking file-system work proportional to its directories
    /// (~0.7 s per 10,000 directories, bench/RESULTS.md "bench/capture"); for large trees
    /// call it inside `tokio::task::block_in_place`. Rescans after lost events walk through
    /// `block_in_place` by themselves on a multi-threaded runtime.
    pub fn watch(
        &mut self,
        site: &str,
        root: &Path,
        local: &[PathBuf],
    ) -> Result<(), CaptureError> {
        let mut locals = Vec::with_capacity(local.len());
        for l in local {
            let ok = !l.as_os_str().is_empty()
                && l.components().all(|c| matches!(c, Component::Normal(_)));
            if !ok {
                return Err(CaptureError::BadLocal {
                    site: site.to_string(),
                    path: l.clone(),
                });
            }
            locals.push(l.components().collect::<PathBuf>());
        }
        let meta = std::fs::symlink_metadata(root).map_err(|source| CaptureError::Root {
            site: site.to_string(),
            root: root.to_path_buf(),
            source,
        })?;
        if !meta.is_dir() {
            return Err(CaptureError::Root {
                site: site.to_string(),
                root: root.to_path_buf(),
                source: io::Error::from_raw_os_error(20),
            });
        }
        self.engine
            .watch(
                &mut self.kernel.backend(),
                site,
                root,
                locals,
                Instant::now(),
            )
            .map_err(|source| CaptureError::Root {
                site: site.to_string(),
                root: root.to_path_buf(),
                source,
            })
    }

    /// Stop watching `site`; nothing more is reported for it.
    pub fn unwatch(&mut self, site: &str) {
        self.engine.unwatch(&mut self.kernel.backend(), site);
    }

    /// Directories watched over all sites (one inotify watch each).
    pub fn watched_dirs(&self) -> usize {
        self.engine.table.len()
    }

    /// Events read from the kernel so far (a counter for metrics and benchmarks).
    pub fn events_read(&self) -> u64 {
        self.events
    }

    /// Items waiting for their debounce.
    pub fn pending(&self) -> usize {
        self.engine.pending()
    }

    /// Wait until something is due and return everything due, in order per site.
    /// Cancel safe: every event read is kept in `self`, so this can sit in a `select!`
    /// with the replica's other work and be called again.
    pub async fn next_batch(&mut self) -> Vec<(String, Seen)> {
        loop {
            let now = Instant::now();
            self.engine.settle_moves(&mut self.kernel.backend(), now);
            if self.engine.retry_due(now) {
                let (engine, kernel) = (&mut self.engine, &mut self.kernel);
                blocking(|| engine.retry_watches(&mut kernel.backend(), now));
            }
            let out = self.engine.take_due(now);
            if !out.is_empty() {
                return out;
            }
            let paused = self.paused_until.filter(|t| *t > now);
            let wake = match (self.engine.next_deadline(), paused) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            let sleep = async move {
                match wake {
                    Some(t) => tokio::time::sleep_until(tokio::time::Instant::from_std(t)).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                ev = self.kernel.next(), if paused.is_none() => {
                    self.on_event(ev);
                    for _ in 0..DRAIN {
                        match self.kernel.try_next() {
                            Some(ev) => self.on_event(ev),
                            None => break,
                        }
                        if self.paused_until.is_some_and(|t| t > Instant::now()) {
                            break;
                        }
                    }
                }
                () = sleep => {}
            }
        }
    }

    fn on_event(&mut self, ev: Option<io::Result<engine::RawEvent>>) {
        let now = Instant::now();
        match ev {
            Some(Ok(ev)) => {
                self.events += 1;
                let (engine, kernel) = (&mut self.engine, &mut self.kernel);
                if ev.mask.contains(::inotify::EventMask::Q_OVERFLOW) {
                    // Walks every tree: seconds at a million files.
                    blocking(|| engine.handle(&mut kernel.backend(), ev, now));
                } else {
                    engine.handle(&mut kernel.backend(), ev, now);
                }
            }
            Some(Err(e)) => {
                tracing::error!(error = %e, "reading inotify events failed: rescanning every site");
                let (engine, kernel) = (&mut self.engine, &mut self.kernel);
                blocking(|| engine.lost_events(&mut kernel.backend(), now));
                self.paused_until = Some(now + Duration::from_secs(1));
            }
            None => {
                tracing::error!("the inotify event stream ended: rescanning every site");
                let (engine, kernel) = (&mut self.engine, &mut self.kernel);
                blocking(|| engine.lost_events(&mut kernel.backend(), now));
                self.paused_until = Some(now + Duration::from_secs(1));
            }
        }
    }
}

/// Run long blocking file-system work (walking every tree) without starving the other
/// tasks of a multi-threaded runtime (they move to another worker meanwhile); on a
/// current-thread runtime there is nowhere to move them, so it simply runs.
pub fn blocking<R>(f: impl FnOnce() -> R) -> R {
    let multi = tokio::runtime::Handle::try_current()
        .is_ok_and(|h| h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread);
    if multi {
        tokio::task::block_in_place(f)
    } else {
        f()
    }
}
