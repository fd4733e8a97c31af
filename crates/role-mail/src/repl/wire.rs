//! The replication protocol's messages and framing: each frame is a 4-byte
//! big-endian length and that many bytes; requests and answers are JSON frames, a
//! message's bytes follow their header as one raw frame. The follower asks, the
//! writer answers (one request at a time per connection):
//!
//! - `Hello` → `Hello`: names and fencing epochs (each side records the other's);
//! - `List` → `List`: every mailbox the writer holds and its change number;
//! - `Manifest` → `Manifest`: a mailbox's folders (UIDVALIDITY, UIDNEXT, every
//!   message's UID, base name, flag letters, internal date) and keyword table;
//! - `Delta` → `Delta`: the same, but per connection only what changed since the
//!   last `Delta` of that mailbox on it (folders unchanged are only named, a
//!   changed folder carries its new and changed messages and the names of those
//!   gone); offered by writers that say `delta` in their `Hello`;
//! - `Get` → `Body` + bytes: one message as stored;
//! - `Put` + bytes → `Done`: a message the follower has that the writer lacks
//!   (written there while it was the writer), added by the writer under a new
//!   UID;
//! - `Folder` → `Done`: a folder the follower has that the writer lacks (made
//!   there while it was the writer, still empty), created by the writer;
//! - `Wait` → `Changed`: blocks until a mailbox changes after a change number.

use serde::{Deserialize, Serialize};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// One mailbox: `local@domain` as the plan spells it (lower case).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct MailboxId {
    /// Domain.
    pub domain: String,
    /// Local part.
    pub local: String,
}

/// One message of a folder manifest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MsgState {
    /// UID.
    pub uid: u32,
    /// Maildir base name (also the POP3 UIDL's source).
    pub base: String,
    /// Flag letters of the file name (after `:2,`).
    pub letters: String,
    /// Internal date (the file's mtime), unix seconds.
    pub mtime: i64,
}

/// One folder of a mailbox.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FolderState {
    /// Directory name beneath the Maildir: `""` for INBOX, `.Name` otherwise.
    pub dir: String,
    /// UIDVALIDITY.
    pub uidvalidity: u32,
    /// UIDNEXT.
    pub uidnext: u32,
    /// Messages, ascending UID.
    pub msgs: Vec<MsgState>,
    /// Base names the writer and the asking follower both had after their last
    /// round (the writer's base with it) that the writer no longer has: expunged
    /// there since. The follower removes them instead of handing them back as
    /// written by itself (a server that returns after an outage has no base with
    /// the server that wrote meanwhile).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub gone: Vec<String>,
}

/// A whole mailbox.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    /// The keyword table (`hostplane-keywords`).
    pub keywords: Vec<String>,
    /// The IMAP subscriptions file's text.
    pub subscriptions: String,
    /// Folders, INBOX first.
    pub folders: Vec<FolderState>,
}

/// One folder of a [`Delta`]: the writer's folder as it changed since the state
/// it sent last on this connection (`full`: from nothing).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FolderDelta {
    /// Directory name beneath the Maildir (`""`, `.Name`).
    pub dir: String,
    /// UIDVALIDITY.
    pub uidvalidity: u32,
    /// UIDNEXT.
    pub uidnext: u32,
    /// Not relative to an earlier state: `upsert` is every message.
    pub full: bool,
    /// Messages new or changed (UID or flags), ascending UID.
    pub upsert: Vec<MsgState>,
    /// Base names no longer in the folder.
    pub removed: Vec<String>,
    /// As [`FolderState::gone`], whole (not relative to the earlier state).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub gone: Vec<String>,
}

/// A mailbox's state as it changed since the last [`Delta`] on this connection.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Delta {
    /// The keyword table.
    pub keywords: Vec<String>,
    /// The IMAP subscriptions file's text.
    pub subscriptions: String,
    /// Every folder directory of the mailbox, INBOX first.
    pub dirs: Vec<String>,
    /// The folders that changed (the others are as sent before).
    pub folders: Vec<FolderDelta>,
}

impl FolderDelta {
    /// The folder after this change to `prev` (the state last received), or
    /// `None` when the change is relative to a state the receiver does not have.
    pub fn apply(&self, prev: Option<&FolderState>) -> Option<FolderState> {
        let mut msgs: std::collections::HashMap<String, MsgState> = match (self.full, prev) {
            (true, _) => Default::default(),
            (false, Some(p)) => p.msgs.iter().map(|m| (m.base.clone(), m.clone())).collect(),
            (false, None) => return None,
        };
        for b in &self.removed {
            msgs.remove(b);
        }
        for m in &self.upsert {
            msgs.insert(m.base.clone(), m.clone());
        }
        let mut msgs: Vec<MsgState> = msgs.into_values().collect();
        msgs.sort_by(|a, b| (a.uid, &a.base).cmp(&(b.uid, &b.base)));
        Some(FolderState {
            dir: self.dir.clone(),
            uidvalidity: self.uidvalidity,
            uidnext: self.uidnext,
            msgs,
            gone: self.gone.clone(),
        })
    }

    /// The change from `prev` (what was sent last, if anything) to `now`.
    pub fn between(prev: Option<&FolderState>, now: &FolderState) -> Self {
        let (full, upsert, removed) = match prev {
            Some(p) if p.uidvalidity == now.uidvalidity => {
                let before: std::collections::HashMap<&str, &MsgState> =
                    p.msgs.iter().map(|m| (m.base.as_str(), m)).collect();
                let after: std::collections::HashSet<&str> =
                    now.msgs.iter().map(|m| m.base.as_str()).collect();
                let upsert = now
                    .msgs
                    .iter()
                    .filter(|m| before.get(m.base.as_str()) != Some(m))
                    .cloned()
                    .collect();
                let removed = p
                    .msgs
                    .iter()
                    .filter(|m| !after.contains(m.base.as_str()))
                    .map(|m| m.base.clone())
                    .collect();
                (false, upsert, removed)
            }
            _ => (true, now.msgs.clone(), Vec::new()),
        };
        FolderDelta {
            dir: now.dir.clone(),
            uidvalidity: now.uidvalidity,
            uidnext: now.uidnext,
            full,
            upsert,
            removed,
            gone: now.gone.clone(),
        }
    }
}

/// A follower's request.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Req {
    /// Who is asking, and the highest epoch it has seen.
    Hello {
        /// Its server name.
        server: String,
        /// Its highest epoch.
        epoch: u64,
    },
    /// Every mailbox.
    List,
    /// One mailbox's state.
    Manifest(MailboxId),
    /// One mailbox's state as changed since the last `Delta` for it on this
    /// connection (`fresh`: the follower holds nothing of it; send everything).
    Delta {
        /// Mailbox.
        mailbox: MailboxId,
        /// Send every folder in full.
        fresh: bool,
    },
    /// One message's bytes.
    Get {
        /// Mailbox.
        mailbox: MailboxId,
        /// Folder directory (`""`, `.Name`).
        dir: String,
        /// Base name.
        base: String,
        /// Its flag letters in the manifest (finds the file without a rescan).
        #[serde(default)]
        letters: String,
    },
    /// Add a message (its bytes follow).
    Put {
        /// Mailbox.
        mailbox: MailboxId,
        /// Folder directory.
        dir: String,
        /// Base name.
        base: String,
        /// Flag letters.
        letters: String,
        /// Internal date.
        mtime: i64,
    },
    /// Create a folder the follower has that the writer lacks (made there, empty,
    /// while it was the writer).
    Folder {
        /// Mailbox.
        mailbox: MailboxId,
        /// Folder directory (`.Name`).
        dir: String,
    },
    /// Wait for changes after `since`.
    Wait {
        /// The last change number the follower applied.
        since: u64,
    },
}

/// The writer's answer.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Resp {
    /// Its name, its config epoch and whether its config names it the writer.
    Hello {
        /// Server name.
        server: String,
        /// Config epoch (0: no writer in its config).
        epoch: u64,
        /// Its config names it the holder.
        holder: bool,
        /// It answers `Delta` (older servers only `Manifest`).
        #[serde(default)]
        delta: bool,
    },
    /// Mailboxes and the change number they are current at.
    List {
        /// Change number.
        seq: u64,
        /// Mailboxes.
        mailboxes: Vec<MailboxId>,
    },
    /// A mailbox's state.
    Manifest(Manifest),
    /// A mailbox's changed state.
    Delta(Delta),
    /// A message (its bytes follow).
    Body,
    /// A request done.
    Done,
    /// Mailboxes changed after the follower's `since`; `resync`: too far behind.
    Changed {
        /// Change number.
        seq: u64,
        /// Mailboxes.
        mailboxes: Vec<MailboxId>,
        /// List everything again.
        resync: bool,
    },
    /// Refused, with the reason.
    Error(String),
}

/// Largest frame (a message of the biggest allowed size, with room).
pub const MAX_FRAME: usize = 200 * 1024 * 1024;

/// Write one raw frame.
pub async fn write_frame<W: AsyncWrite + Unpin>(w: &mut W, data: &[u8]) -> std::io::Result<()> {
    let n = u32::try_from(data.len()).map_err(|_| std::io::Error::other("frame too large"))?;
    w.write_all(&n.to_be_bytes()).await?;
    w.write_all(data).await?;
    w.flush().await
}

/// Read one raw frame.
pub async fn read_frame<R: AsyncRead + Unpin>(r: &mut R) -> std::io::Result<Vec<u8>> {
    let mut n = [0u8; 4];
    r.read_exact(&mut n).await?;
    let n = u32::from_be_bytes(n) as usize;
    if n > MAX_FRAME {
        return Err(std::io::Error::other(format!("frame of {n} bytes refused")));
    }
    let mut buf = vec![0u8; n];
    r.read_exact(&mut buf).await?;
    Ok(buf)
}

/// Write a JSON frame.
pub async fn send<W: AsyncWrite + Unpin, T: Serialize>(w: &mut W, v: &T) -> std::io::Result<()> {
    let data = serde_json::to_vec(v).map_err(std::io::Error::other)?;
    write_frame(w, &data).await
}

/// Read a JSON frame.
pub async fn recv<R: AsyncRead + Unpin, T: for<'de> Deserialize<'de>>(
    r: &mut R,
) -> std::io::Result<T> {
    let data = read_frame(r).await?;
    serde_json::from_slice(&data)
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};

    fn folder(rng: &mut impl Rng, validity: u32) -> FolderState {
        let mut msgs = Vec::new();
        for i in 0..rng.gen_range(0..12u32) {
            if rng.gen_bool(0.7) {
                msgs.push(MsgState {
                    uid: i + 1,
                    base: format!("m{i}"),
                    letters: ["", "S", "FS", "a"][rng.gen_range(0..4)].into(),
                    mtime: i64::from(i) * 7,
                });
            }
        }
        msgs.sort_by_key(|m| m.uid);
        FolderState {
            dir: ".X".into(),
            uidvalidity: validity,
            uidnext: 20,
            msgs,
            gone: Vec::new(),
        }
    }

    /// Property: whatever the two states, the change between them applied to the
    /// first gives the second; from nothing it is full; a change relative to a
    /// state the receiver lacks is refused.
    #[test]
    fn a_delta_rebuilds_the_folder() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(16);
        for _ in 0..2000 {
            let (va, vb) = (rng.gen_range(1..3), rng.gen_range(1..3));
            let a = folder(&mut rng, va);
            let b = folder(&mut rng, vb);
            let d = FolderDelta::between(Some(&a), &b);
            assert_eq!(d.apply(Some(&a)), Some(b.clone()), "{a:?} -> {b:?}: {d:?}");
            assert_eq!(d.full, a.uidvalidity != b.uidvalidity);
            if !d.full {
                assert_eq!(d.apply(None), None);
                assert!(d.upsert.len() + d.removed.len() <= a.msgs.len() + b.msgs.len());
            }
            let full = FolderDelta::between(None, &b);
            assert!(full.full);
            assert_eq!(full.apply(None), Some(b.clone()));
            assert_eq!(full.apply(Some(&a)), Some(b));
        }
    }
}
