//! The FTP storage backend: `unftp-sbe-fs` (cap-std, every path resolved beneath the
//! user's home, so neither `..` nor a planted symlink leads out) for listing and
//! metadata, plus our own uploads and downloads:
//! - an upload goes to a hidden temporary file next to the target, is counted against
//!   the account's quota (over quota: `552`, the temporary file removed, the old file
//!   untouched), fsynced, renamed over the target, and the directory fsynced, all before
//!   the `226` reply;
//! - downloads and uploads move 1 MiB blocks;
//! - every finished write (upload, delete, mkdir, rename, rmdir) is told to the site's
//!   hub ([`Hub::observe_local`]: logged, fsynced) before the `226`/`250` reply, so an
//!   acknowledged FTP write is ordered and durable and reaches every web server (one
//!   the hub cannot log is answered `451`); the version it replaces or deletes is kept
//!   first, restorable.

use std::fmt::Debug;
use std::io;
use std::path::{Component, Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use async_trait::async_trait;
use cap_std::fs::{Dir, OpenOptions};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncSeekExt, AsyncWrite, AsyncWriteExt};
use unftp_core::storage::{Error, ErrorKind, Fileinfo, Result, StorageBackend};
use unftp_sbe_fs::{Filesystem, Meta};

use sitesync::capture::Seen;
use sitesync::hub::Hub;

use crate::auth::FtpUser;

/// Name prefix of in-progress uploads (the hub ignores them: see [`crate::sitehub`]).
pub const UPLOAD_TMP_PREFIX: &str = ".hostplane-upload.";

const BLOCK: usize = 1 << 20;

/// Per-session storage: one per FTP connection, confined to the user's home on login.
#[derive(Debug)]
pub struct SiteStorage {
    sites_root: PathBuf,
    inner: Option<Filesystem>,
    root: Option<Arc<Dir>>,
    home: Option<Arc<Dir>>,
    hub: Arc<Hub>,
}

impl SiteStorage {
    /// Storage over the hub's site trees (every operation fails until a user has logged in).
    pub fn new(hub: Arc<Hub>) -> Self {
        let sites_root = hub.dir();
        let inner = Filesystem::new(sites_root).ok();
        let root = Dir::open_ambient_dir(sites_root, cap_std::ambient_authority())
            .ok()
            .map(Arc::new);
        Self {
            sites_root: sites_root.to_path_buf(),
            inner,
            root,
            home: None,
            hub,
        }
    }

    fn inner(&self) -> Result<&Filesystem> {
        self.inner
            .as_ref()
            .ok_or_else(|| Error::from(ErrorKind::LocalError))
    }

    fn home(&self) -> Result<Arc<Dir>> {
        self.home
            .clone()
            .ok_or_else(|| Error::from(ErrorKind::PermissionDenied))
    }
}

/// The client's path relative to the home ("/a/b" → "a/b", "/" → ".").
fn rel(path: &Path) -> PathBuf {
    let p = path.strip_prefix("/").unwrap_or(path);
    if p.as_os_str().is_empty() {
        PathBuf::from(".")
    } else {
        p.to_path_buf()
    }
}

async fn blocking<T, F>(f: F) -> io::Result<T>
where
    F: FnOnce() -> io::Result<T> + Send + 'static,
    T: Send + 'static,
{
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|_| io::Error::other("blocking task failed"))?
}

/// Bytes used by regular files under `dir` (symlinks are not followed).
pub fn tree_size(dir: &Dir) -> io::Result<u64> {
    let mut total = 0u64;
    for entry in dir.entries()? {
        let entry = entry?;
        let ft = entry.file_type()?;
        if ft.is_dir() {
            total = total.saturating_add(tree_size(&entry.open_dir()?)?);
        } else if ft.is_file() {
            total = total.saturating_add(entry.metadata()?.len());
        }
    }
    Ok(total)
}

/// fsync the directory `rel` of `home`.
fn sync_dir_in(home: &Dir, rel: &Path) -> io::Result<()> {
    // cap-std directory handles are O_PATH (no fsync): open the folder for reading.
    crate::safe_fs::open_dir_for_sync(home, rel)?.sync_all()
}

fn parent_of(rel: &Path) -> PathBuf {
    rel.parent().map(Path::to_path_buf).unwrap_or_default()
}

/// Start writing back to disk after this many bytes, in the background, so the fsync
/// before `226` has little left to do (the kernel would otherwise keep a whole upload
/// dirty in memory until that fsync).
const WRITEBACK_EVERY: usize = 32 << 20;

/// Blocks in flight between the network and the disk, each way.
const PIPELINE: usize = 4;

/// The disk side of an upload, on a blocking thread: write each block, kick off an
/// fdatasync every [`WRITEBACK_EVERY`] bytes (one at a time, on another thread), and
/// fsync at the end unless `abort` was set.
fn write_blocks(
    mut file: std::fs::File,
    mut rx: tokio::sync::mpsc::Receiver<Vec<u8>>,
    abort: Arc<AtomicBool>,
) -> io::Result<()> {
    use std::io::Write;
    let handle = file.try_clone().ok().map(Arc::new);
    let mut pending: Option<tokio::task::JoinHandle<()>> = None;
    let mut since_sync = 0usize;
    while let Some(block) = rx.blocking_recv() {
        file.write_all(&block)?;
        since_sync += block.len();
        if since_sync >= WRITEBACK_EVERY && pending.as_ref().is_none_or(|p| p.is_finished()) {
            if let Some(h) = &handle {
                let h = h.clone();
                since_sync = 0;
                pending = Some(tokio::task::spawn_blocking(move || {
                    let _ = rustix::fs::fdatasync(&*h);
                }));
            }
        }
    }
    if abort.load(Ordering::Relaxed) {
        return Ok(());
    }
    file.sync_all()
}

/// Copy `input` into `file` (1 MiB blocks, a few in flight to a writer thread) and fsync
/// it; fail with `552` beyond `limit` bytes (nothing is synced then).
async fn copy_into_file<R: AsyncRead + Unpin>(
    input: &mut R,
    file: std::fs::File,
    limit: Option<u64>,
) -> Result<u64> {
    let (tx, rx) = tokio::sync::mpsc::channel::<Vec<u8>>(PIPELINE);
    let abort = Arc::new(AtomicBool::new(false));
    let writer = tokio::task::spawn_blocking({
        let abort = abort.clone();
        move || write_blocks(file, rx, abort)
    });
    let read = read_blocks(input, &tx, limit).await;
    if read.is_err() {
        abort.store(true, Ordering::Relaxed);
    }
    drop(tx);
    let written = writer
        .await
        .map_err(|_| io::Error::other("writer task failed"))?;
    let total = read?;
    written?;
    Ok(total)
}

/// The network side of an upload: read 1 MiB blocks and hand them to the writer.
async fn read_blocks<R: AsyncRead + Unpin>(
    input: &mut R,
    tx: &tokio::sync::mpsc::Sender<Vec<u8>>,
    limit: Option<u64>,
) -> Result<u64> {
    let mut total = 0u64;
    loop {
        let mut buf = vec![0u8; BLOCK];
        let mut filled = 0;
        while filled < BLOCK {
            let n = input.read(&mut buf[filled..]).await?;
            if n == 0 {
                break;
            }
            filled += n;
        }
        if filled == 0 {
            return Ok(total);
        }
        total += filled as u64;
        if limit.is_some_and(|l| total > l) {
            return Err(Error::from(ErrorKind::ExceededStorageAllocationError));
        }
        buf.truncate(filled);
        if tx.send(buf).await.is_err() {
            // The writer stopped: its error is reported by the caller.
            return Ok(total);
        }
        if filled < BLOCK {
            return Ok(total);
        }
    }
}

impl SiteStorage {
    /// How many more bytes `user` may write to `target` (None = unlimited).
    async fn allowance(
        &self,
        user: &FtpUser,
        home: &Arc<Dir>,
        target: &Path,
    ) -> Result<Option<u64>> {
        if user.quota_bytes == 0 {
            return Ok(None);
        }
        let (h, t) = (home.clone(), target.to_path_buf());
        let (used, existing) = blocking(move || {
            let existing = match h.symlink_metadata(&t) {
                Ok(m) if m.is_file() => m.len(),
                _ => 0,
            };
            Ok((tree_size(&h)?, existing))
        })
        .await?;
        Ok(Some(
            user.quota_bytes
                .saturating_sub(used.saturating_sub(existing)),
        ))
    }

    async fn put_new<R: AsyncRead + Unpin>(
        &self,
        home: Arc<Dir>,
        target: PathBuf,
        mut input: R,
        limit: Option<u64>,
    ) -> Result<u64> {
        let parent = parent_of(&target);
        let tmp = parent.join(format!("{UPLOAD_TMP_PREFIX}{:016x}", rand::random::<u64>()));
        let (h, t) = (home.clone(), tmp.clone());
        let file = blocking(move || {
            let mut oo = OpenOptions::new();
            oo.write(true).create_new(true);
            Ok(h.open_with(&t, &oo)?.into_std())
        })
        .await?;
        let copied = copy_into_file(&mut input, file, limit).await;
        let (h, t) = (home.clone(), tmp.clone());
        match copied {
            Ok(n) => {
                let target2 = target.clone();
                let done = blocking(move || {
                    h.rename(&t, &h, &target2)?;
                    sync_dir_in(&h, &parent)
                })
                .await;
                if let Err(e) = done {
                    let (h, t) = (home.clone(), tmp);
                    let _ = blocking(move || h.remove_file(&t)).await;
                    return Err(e.into());
                }
                Ok(n)
            }
            Err(e) => {
                let _ = blocking(move || h.remove_file(&t)).await;
                Err(e)
            }
        }
    }

    /// `REST` + `STOR` / `APPE`: write into the existing file from `start_pos`; over quota,
    /// the file is cut back to `start_pos`.
    async fn put_resume<R: AsyncRead + Unpin>(
        &self,
        home: Arc<Dir>,
        target: PathBuf,
        mut input: R,
        start_pos: u64,
        limit: Option<u64>,
    ) -> Result<u64> {
        let (h, t) = (home.clone(), target.clone());
        let (file, keep) = blocking(move || {
            use std::io::Seek;
            let mut oo = OpenOptions::new();
            oo.write(true).create(true);
            let mut f = h.open_with(&t, &oo)?.into_std();
            f.set_len(start_pos)?;
            f.seek(io::SeekFrom::Start(start_pos))?;
            let keep = f.try_clone()?;
            Ok((f, keep))
        })
        .await?;
        // The file is cut to `start_pos` first; what follows must fit in the rest.
        let limit = limit.map(|l| l.saturating_sub(start_pos));
        match copy_into_file(&mut input, file, limit).await {
            Ok(n) => {
                let parent = parent_of(&target);
                blocking(move || sync_dir_in(&home, &parent)).await?;
                Ok(n)
            }
            Err(e) => {
                let _ = blocking(move || {
                    keep.set_len(start_pos)?;
                    keep.sync_all()
                })
                .await;
                Err(e)
            }
        }
    }
}

/// Read `file` in 1 MiB blocks into `tx` until the end, an error, or the receiver goes.
fn read_file_blocks(mut file: std::fs::File, tx: tokio::sync::mpsc::Sender<io::Result<Vec<u8>>>) {
    use std::io::Read;
    loop {
        let mut buf = vec![0u8; BLOCK];
        match file.read(&mut buf) {
            Ok(0) => return,
            Ok(n) => {
                buf.truncate(n);
                if tx.blocking_send(Ok(buf)).is_err() {
                    return;
                }
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => {
                let _ = tx.blocking_send(Err(e));
                return;
            }
        }
    }
}

fn check_name(target: &Path) -> Result<()> {
    let name_ok = target
        .file_name()
        .and_then(|n| n.to_str())
        .is_some_and(|n| !n.starts_with(UPLOAD_TMP_PREFIX));
    let plain = target.components().all(|c| {
        matches!(
            c,
            Component::Normal(_) | Component::CurDir | Component::ParentDir
        )
    });
    if name_ok && plain {
        Ok(())
    } else {
        Err(Error::from(ErrorKind::FileNameNotAllowedError))
    }
}

#[async_trait]
impl StorageBackend<FtpUser> for SiteStorage {
    type Metadata = Meta;

    fn enter(&mut self, user: &FtpUser) -> io::Result<()> {
        let rel = user
            .home
            .strip_prefix(&self.sites_root)
            .map_err(|_| io::Error::other("home outside the sites root"))?;
        if rel.components().any(|c| !matches!(c, Component::Normal(_))) {
            return Err(io::Error::other("home must be a plain relative path"));
        }
        let root = self
            .root
            .clone()
            .ok_or_else(|| io::Error::other("sites root not available"))?;
        self.home = Some(Arc::new(root.open_dir(rel)?));
        match self.inner.as_mut() {
            Some(fs) => StorageBackend::<FtpUser>::enter(fs, user),
            None => Err(io::Error::other("sites root not available")),
        }
    }

    fn supported_features(&self) -> u32 {
        unftp_core::storage::FEATURE_RESTART
    }

    async fn metadata<P: AsRef<Path> + Send + Debug>(
        &self,
        user: &FtpUser,
        path: P,
    ) -> Result<Meta> {
        self.inner()?.metadata(user, path).await
    }

    async fn list<P: AsRef<Path> + Send + Debug>(
        &self,
        user: &FtpUser,
        path: P,
    ) -> Result<Vec<Fileinfo<PathBuf, Meta>>> {
        self.inner()?.list(user, path).await
    }

    async fn get_into<'a, P, W: ?Sized>(
        &self,
        _user: &FtpUser,
        path: P,
        start_pos: u64,
        output: &'a mut W,
    ) -> Result<u64>
    where
        W: AsyncWrite + Unpin + Sync + Send,
        P: AsRef<Path> + Send + Debug,
    {
        let home = self.home()?;
        let target = rel(path.as_ref());
        let file = blocking(move || {
            use std::io::Seek;
            let mut f = home.open(&target)?.into_std();
            if start_pos > 0 {
                f.seek(io::SeekFrom::Start(start_pos))?;
            }
            Ok(f)
        })
        .await?;
        // Disk reads on a blocking thread, a few blocks ahead of the network.
        let (tx, mut rx) = tokio::sync::mpsc::channel::<io::Result<Vec<u8>>>(PIPELINE);
        let reader = tokio::task::spawn_blocking(move || read_file_blocks(file, tx));
        let mut total = 0u64;
        let result = async {
            while let Some(block) = rx.recv().await {
                let block = block?;
                output.write_all(&block).await?;
                total += block.len() as u64;
            }
            Ok::<u64, Error>(total)
        }
        .await;
        drop(rx);
        let _ = reader.await;
        result
    }

    async fn get<P: AsRef<Path> + Send + Debug>(
        &self,
        _user: &FtpUser,
        path: P,
        start_pos: u64,
    ) -> Result<Box<dyn AsyncRead + Send + Sync + Unpin>> {
        Ok(Box::new(self.open_read(path.as_ref(), start_pos).await?))
    }

    async fn put<P: AsRef<Path> + Send + Debug, R: AsyncRead + Send + Sync + Unpin + 'static>(
        &self,
        user: &FtpUser,
        input: R,
        path: P,
        start_pos: u64,
    ) -> Result<u64> {
        let home = self.home()?;
        let target = rel(path.as_ref());
        check_name(&target)?;
        let limit = self.allowance(user, &home, &target).await?;
        self.preserve(user, path.as_ref()).await;
        let result = if start_pos == 0 {
            self.put_new(home, target, input, limit).await
        } else {
            self.put_resume(home, target, input, start_pos, limit).await
        };
        let n = result?;
        self.adopt(user, path.as_ref(), None).await?;
        Ok(n)
    }

    async fn del<P: AsRef<Path> + Send + Debug>(&self, user: &FtpUser, path: P) -> Result<()> {
        self.preserve(user, path.as_ref()).await;
        self.inner()?.del(user, path.as_ref()).await?;
        self.after_change(path.as_ref()).await;
        self.adopt(user, path.as_ref(), None).await
    }

    async fn mkd<P: AsRef<Path> + Send + Debug>(&self, user: &FtpUser, path: P) -> Result<()> {
        self.inner()?.mkd(user, path.as_ref()).await?;
        self.after_change(path.as_ref()).await;
        self.adopt(user, path.as_ref(), None).await
    }

    async fn rename<P: AsRef<Path> + Send + Debug>(
        &self,
        user: &FtpUser,
        from: P,
        to: P,
    ) -> Result<()> {
        check_name(&rel(to.as_ref()))?;
        self.preserve(user, to.as_ref()).await;
        self.inner()?
            .rename(user, from.as_ref(), to.as_ref())
            .await?;
        self.after_change(from.as_ref()).await;
        self.after_change(to.as_ref()).await;
        self.adopt(user, from.as_ref(), Some(to.as_ref())).await
    }

    async fn rmd<P: AsRef<Path> + Send + Debug>(&self, user: &FtpUser, path: P) -> Result<()> {
        self.inner()?.rmd(user, path.as_ref()).await?;
        self.after_change(path.as_ref()).await;
        self.adopt(user, path.as_ref(), None).await
    }

    async fn cwd<P: AsRef<Path> + Send + Debug>(&self, user: &FtpUser, path: P) -> Result<()> {
        self.inner()?.cwd(user, path).await
    }
}

impl SiteStorage {
    async fn open_read(&self, path: &Path, start_pos: u64) -> Result<tokio::fs::File> {
        let home = self.home()?;
        let target = rel(path);
        let file = blocking(move || Ok(home.open(&target)?.into_std())).await?;
        let mut file = tokio::fs::File::from_std(file);
        file.set_max_buf_size(BLOCK);
        if start_pos > 0 {
            file.seek(io::SeekFrom::Start(start_pos)).await?;
        }
        Ok(file)
    }

    /// After a namespace change: make the parent directory durable.
    async fn after_change(&self, path: &Path) {
        if let Ok(home) = self.home() {
            let parent = parent_of(&rel(path));
            let _ = blocking(move || sync_dir_in(&home, &parent)).await;
        }
    }

    /// Before a write replaces or deletes the file at `path`: the hub keeps its version
    /// (restorable with `site restore`). A failure is logged; the write goes on.
    async fn preserve(&self, user: &FtpUser, path: &Path) {
        let Some(p) = in_site(user, path).and_then(|p| p.to_str().map(str::to_string)) else {
            return;
        };
        let (hub, site) = (self.hub.clone(), user.site.clone());
        let kept = blocking(move || {
            hub.preserve_local(&site, &p)
                .map_err(|e| io::Error::other(e.to_string()))
        })
        .await;
        if let Err(e) = kept {
            tracing::warn!(site = %user.site, error = %e, "cannot keep the version an FTP write replaces");
        }
    }

    /// Tells the site's hub what a finished write changed (`path`, or a rename of
    /// `path` to `to`), waiting until it is logged (which wakes the web servers' long polls). When
    /// the hub cannot log it (its disk is full), the command fails (`451`): nothing is
    /// acknowledged that is not ordered; the write stays on disk and the hub's periodic
    /// comparison adopts it once it can.
    async fn adopt(&self, user: &FtpUser, path: &Path, to: Option<&Path>) -> Result<()> {
        let seen = match (in_site(user, path), to.map(|t| in_site(user, t))) {
            (Some(from), Some(Some(to))) => Some(Seen::Renamed { from, to }),
            (Some(p), None) => Some(Seen::Path(p)),
            _ => None,
        };
        if let Some(seen) = seen {
            let (hub, site) = (self.hub.clone(), user.site.clone());
            let logged = blocking(move || {
                hub.observe_local(&site, &[seen])
                    .map_err(|e| io::Error::other(e.to_string()))
            })
            .await;
            if let Err(e) = logged {
                tracing::warn!(site = %user.site, error = %e, "an FTP write is not in the site's log yet");
                return Err(Error::from(ErrorKind::LocalError));
            }
        } else {
            tracing::warn!(site = %user.site, path = %path.display(), "an FTP write outside the site's tree?");
        }
        Ok(())
    }
}

/// The path of the client's `path` relative to the user's site tree, `..` and `.`
/// resolved by name (`None` when that leaves the home or names the tree itself).
fn in_site(user: &FtpUser, path: &Path) -> Option<PathBuf> {
    let relative = rel(path);
    let mut parts: Vec<&std::ffi::OsStr> = Vec::new();
    for c in relative.components() {
        match c {
            Component::Normal(n) => parts.push(n),
            Component::ParentDir => {
                parts.pop()?;
            }
            _ => {}
        }
    }
    let mut out = user.in_site.clone();
    out.extend(parts);
    (!out.as_os_str().is_empty()).then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_paths() {
        assert_eq!(rel(Path::new("/")), PathBuf::from("."));
        assert_eq!(rel(Path::new("/a/b")), PathBuf::from("a/b"));
        assert!(check_name(Path::new("a/b.txt")).is_ok());
        assert!(check_name(Path::new(&format!("{UPLOAD_TMP_PREFIX}x"))).is_err());
    }

    #[test]
    fn tree_size_counts_files_not_symlinks() {
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir(d.path().join("sub")).unwrap();
        std::fs::write(d.path().join("a"), vec![0u8; 10]).unwrap();
        std::fs::write(d.path().join("sub/b"), vec![0u8; 5]).unwrap();
        std::os::unix::fs::symlink("/etc", d.path().join("link")).unwrap();
        let dir = Dir::open_ambient_dir(d.path(), cap_std::ambient_authority()).unwrap();
        assert_eq!(tree_size(&dir).unwrap(), 15);
    }
}

#[cfg(test)]
mod put_tests {
    use super::*;

    #[tokio::test]
    async fn put_writes_via_temp_file_and_enforces_quota() {
        let d = tempfile::tempdir().unwrap();
        let hub = Arc::new(Hub::open(sitesync::hub::HubConfig::new(d.path().join("hub"))).unwrap());
        let tree = hub.tree_path("a.example");
        hub.manifest("a.example").unwrap();
        std::fs::create_dir_all(tree.join("pub")).unwrap();
        std::fs::write(tree.join("pub/x"), b"12345").unwrap();
        let mut s = SiteStorage::new(hub.clone());
        let user = FtpUser {
            username: "u".into(),
            home: tree.clone(),
            site: "a.example".into(),
            in_site: PathBuf::new(),
            quota_bytes: 1000,
        };
        s.enter(&user).unwrap();
        let n = s
            .put(&user, std::io::Cursor::new(vec![1u8; 600]), "/f", 0)
            .await
            .unwrap();
        assert_eq!(n, 600);
        let e = s
            .put(&user, std::io::Cursor::new(vec![1u8; 600]), "/g", 0)
            .await
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::ExceededStorageAllocationError);
        // the upload is in the hub's log before put returned
        assert!(hub.manifest("a.example").unwrap().nodes.contains_key("f"));
        let names: Vec<_> = std::fs::read_dir(&tree)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names.len(), 2, "{names:?}");
    }
}
