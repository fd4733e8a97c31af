//! The durable spool of site mail on a web server: one file per message,
//! `<id>.msg` in a private (0700) directory, written whole through
//! [`durable::write_atomic`] (temp file, fsync, rename, directory fsync) before
//! sendmail is told it succeeded, removed only once the mail server answered 250
//! (or the message was refused for good, or expired). The first line of a file is
//! the [`Envelope`] as JSON; the message follows, lines ending in CRLF.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use serde::{Deserialize, Serialize};

/// Who a spooled message is from and for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Envelope {
    /// The site (its domain) that sent it: whose route and login submit it.
    pub domain: String,
    /// The envelope sender (an address of the site's domain).
    pub from: String,
    /// The recipients still to deliver to.
    pub recipients: Vec<String>,
    /// Unix seconds when it was spooled (messages expire after
    /// [`super::EXPIRE_AFTER`]).
    pub spooled_at: u64,
}

/// One message in the spool.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Spooled {
    /// Its id (the file name without `.msg`).
    pub id: String,
    /// Envelope.
    pub envelope: Envelope,
    /// The message, CRLF line ends.
    pub message: Vec<u8>,
}

/// The spool directory.
#[derive(Debug, Clone)]
pub struct Spool {
    dir: PathBuf,
}

static COUNTER: AtomicU64 = AtomicU64::new(0);

impl Spool {
    /// Open (create, 0700) the spool in `dir`.
    pub fn open(dir: &Path) -> std::io::Result<Self> {
        durable::create_private_dir(dir)?;
        Ok(Self {
            dir: dir.to_path_buf(),
        })
    }

    fn path(&self, id: &str) -> PathBuf {
        self.dir.join(format!("{id}.msg"))
    }

    /// Store a message durably (blocking); returns its id.
    pub fn put(&self, envelope: &Envelope, message: &[u8]) -> std::io::Result<String> {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        let id = format!(
            "{:012x}{:08x}-{:x}-{:x}",
            now.as_secs(),
            now.subsec_nanos(),
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        );
        self.write(&id, envelope, message)?;
        Ok(id)
    }

    /// Replace message `id`'s envelope (fewer recipients left), durably.
    pub fn write(&self, id: &str, envelope: &Envelope, message: &[u8]) -> std::io::Result<()> {
        let mut bytes = serde_json::to_vec(envelope).map_err(std::io::Error::other)?;
        bytes.push(b'\n');
        bytes.extend_from_slice(message);
        durable::write_atomic(&self.path(id), &bytes, 0o600)
    }

    /// Remove message `id` (delivered, refused or expired), durably.
    pub fn remove(&self, id: &str) -> std::io::Result<()> {
        match std::fs::remove_file(self.path(id)) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
            _ => {}
        }
        durable::sync_dir(&self.dir)
    }

    /// The ids of every spooled message, oldest first.
    pub fn ids(&self) -> std::io::Result<Vec<String>> {
        let mut ids: Vec<String> = std::fs::read_dir(&self.dir)?
            .flatten()
            .filter_map(|e| {
                let name = e.file_name().to_str()?.to_string();
                let id = name.strip_suffix(".msg")?;
                (!id.starts_with('.')).then(|| id.to_string())
            })
            .collect();
        ids.sort();
        Ok(ids)
    }

    /// Read message `id`; `None` when it is gone or unreadable (logged).
    pub fn read(&self, id: &str) -> Option<Spooled> {
        let bytes = std::fs::read(self.path(id)).ok()?;
        let nl = bytes.iter().position(|&b| b == b'\n')?;
        match serde_json::from_slice::<Envelope>(&bytes[..nl]) {
            Ok(envelope) => Some(Spooled {
                id: id.to_string(),
                envelope,
                message: bytes[nl + 1..].to_vec(),
            }),
            Err(e) => {
                tracing::error!(id, error = %e, "unreadable spooled mail left in place");
                None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn put_read_rewrite_remove() {
        let dir = tempfile::tempdir().unwrap();
        let s = Spool::open(&dir.path().join("spool")).unwrap();
        let env = Envelope {
            domain: "example.com".into(),
            from: "noreply@example.com".into(),
            recipients: vec!["a@x.test".into(), "b@y.test".into()],
            spooled_at: 7,
        };
        let id = s.put(&env, b"Subject: x\r\n\r\nhi\r\n").unwrap();
        let id2 = s.put(&env, b"two").unwrap();
        assert_eq!(s.ids().unwrap(), [id.clone(), id2.clone()]);
        let got = s.read(&id).unwrap();
        assert_eq!(got.envelope, env);
        assert_eq!(got.message, b"Subject: x\r\n\r\nhi\r\n");
        let fewer = Envelope {
            recipients: vec!["b@y.test".into()],
            ..env
        };
        s.write(&id, &fewer, &got.message).unwrap();
        assert_eq!(s.read(&id).unwrap().envelope, fewer);
        s.remove(&id).unwrap();
        s.remove(&id).unwrap();
        assert_eq!(s.ids().unwrap(), [id2]);
    }
}
