//! The real kernel side: one inotify instance, its watches, and its event stream read
//! through tokio's reactor (`AsyncFd`), so a blocked read never stalls the runtime.

use std::collections::HashMap;
use std::io;
use std::path::Path;

use futures_util::{FutureExt, StreamExt};
use inotify::{EventStream, Inotify, WatchDescriptor, WatchMask, Watches};

use super::engine::{Backend, RawEvent};
use super::watches::Wd;

/// What every directory is watched for. `MODIFY` tells a file still being written from one
/// that was closed; `EXCL_UNLINK` stops events for files unlinked but still open;
/// `DONT_FOLLOW` and `ONLYDIR` never let a symlink make us watch outside the tree.
pub(crate) fn mask() -> WatchMask {
    WatchMask::CREATE
        | WatchMask::MODIFY
        | WatchMask::CLOSE_WRITE
        | WatchMask::ATTRIB
        | WatchMask::MOVED_FROM
        | WatchMask::MOVED_TO
        | WatchMask::DELETE
        | WatchMask::DELETE_SELF
        | WatchMask::MOVE_SELF
        | WatchMask::ONLYDIR
        | WatchMask::DONT_FOLLOW
        | WatchMask::EXCL_UNLINK
}

/// Size of the read buffer: many events per `read(2)`.
const BUFFER: usize = 256 * 1024;

/// The inotify instance: watches and the async event stream.
pub(crate) struct Kernel {
    watches: Watches,
    descriptors: HashMap<Wd, WatchDescriptor>,
    stream: EventStream<Vec<u8>>,
}

impl std::fmt::Debug for Kernel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Kernel")
            .field("watches", &self.descriptors.len())
            .finish()
    }
}

impl Kernel {
    /// A new instance, registered with the current tokio runtime.
    pub(crate) fn new() -> io::Result<Self> {
        let stream = Inotify::init()?.into_event_stream(vec![0u8; BUFFER])?;
        Ok(Kernel {
            watches: stream.watches(),
            descriptors: HashMap::new(),
            stream,
        })
    }

    fn convert(ev: inotify::EventOwned) -> RawEvent {
        RawEvent {
            wd: ev.wd.get_watch_descriptor_id(),
            mask: ev.mask,
            cookie: ev.cookie,
            name: ev.name,
        }
    }

    /// Wait for the next event (cancel safe: an event is only taken when returned).
    pub(crate) async fn next(&mut self) -> Option<io::Result<RawEvent>> {
        self.stream.next().await.map(|r| r.map(Self::convert))
    }

    /// The next event if one is ready now.
    pub(crate) fn try_next(&mut self) -> Option<Option<io::Result<RawEvent>>> {
        self.stream
            .next()
            .now_or_never()
            .map(|o| o.map(|r| r.map(Self::convert)))
    }

    /// The backend half (watches), borrowed apart from the stream.
    pub(crate) fn backend(&mut self) -> KernelWatches<'_> {
        KernelWatches {
            watches: &mut self.watches,
            descriptors: &mut self.descriptors,
        }
    }
}

/// [`Backend`] over the instance's watches.
pub(crate) struct KernelWatches<'a> {
    watches: &'a mut Watches,
    descriptors: &'a mut HashMap<Wd, WatchDescriptor>,
}

impl Backend for KernelWatches<'_> {
    fn add_watch(&mut self, dir: &Path) -> io::Result<Wd> {
        let wd = self.watches.add(dir, mask())?;
        let id = wd.get_watch_descriptor_id();
        self.descriptors.insert(id, wd);
        Ok(id)
    }

    fn rm_watch(&mut self, wd: Wd) {
        if let Some(d) = self.descriptors.remove(&wd) {
            // EINVAL: the kernel dropped it already (directory deleted).
            let _ = self.watches.remove(d);
        }
    }

    fn dropped(&mut self, wd: Wd) {
        self.descriptors.remove(&wd);
    }
}
