//! The engine's one [`Capture`] (one inotify instance for every site's tree), run as an
//! async task: it takes watch and unwatch commands from the site loops and the engine,
//! and hands each captured batch to the loop of its site.

use std::collections::HashMap;
use std::path::PathBuf;

use sitesync::capture::{blocking, Capture, Seen};
use tokio::sync::{mpsc, oneshot};

type Sender<T> = mpsc::UnboundedSender<T>;

use super::site::Msg;

/// What the capture task is told.
#[derive(Debug)]
pub enum CaptureCmd {
    /// Watch (or watch again, replacing) a site's tree; batches go to `tx`.
    Watch {
        /// The site.
        site: String,
        /// Its tree.
        root: PathBuf,
        /// Its local paths (not watched).
        local: Vec<PathBuf>,
        /// The site loop.
        tx: Sender<Msg>,
        /// Answered once the tree is watched (or why it could not be).
        ack: oneshot::Sender<Result<(), String>>,
    },
    /// Stop watching a site.
    Unwatch {
        /// The site.
        site: String,
    },
}

/// Runs until every command sender is gone.
pub async fn run(mut capture: Capture, mut cmds: mpsc::UnboundedReceiver<CaptureCmd>) {
    let mut routes: HashMap<String, Sender<Msg>> = HashMap::new();
    loop {
        tokio::select! {
            cmd = cmds.recv() => match cmd {
                None => return,
                Some(CaptureCmd::Watch { site, root, local, tx, ack }) => {
                    let res = blocking(|| capture.watch(&site, &root, &local));
                    if res.is_ok() {
                        routes.insert(site, tx);
                    }
                    let _ = ack.send(res.map_err(|e| e.to_string()));
                }
                Some(CaptureCmd::Unwatch { site }) => {
                    capture.unwatch(&site);
                    routes.remove(&site);
                }
            },
            batch = capture.next_batch() => {
                let mut per_site: HashMap<String, Vec<Seen>> = HashMap::new();
                for (site, seen) in batch {
                    per_site.entry(site).or_default().push(seen);
                }
                for (site, seen) in per_site {
                    let gone = routes.get(&site).is_some_and(|tx| tx.send(Msg::Seen(seen)).is_err());
                    if gone {
                        routes.remove(&site);
                    }
                }
            }
        }
    }
}
