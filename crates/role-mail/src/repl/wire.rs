//! The replication protocol's messages and framing: each frame is a 4-byte
//! big-endian length and that many bytes; requests and answers are JSON frames, a
//! message's bytes follow their header as one raw frame. The follower asks, the
//! writer answers (one request at a time per connection):
//!
//! - `Hello` → `Hello`: names and fencing epochs (each side records the other's);
//! - `List` → `List`: every mailbox the writer holds and its change number;
//! - `Manifest` → `Manifest`: a mailbox's folders (UIDVALIDITY, UIDNEXT, every
//!   message's UID, base name, flag letters, internal date) and keyword table;
//! - `Get` → `Body` + bytes: one message as stored;
//! - `Put` + bytes → `Done`: a message the follower has that the writer lacks
//!   (written there while it was the writer), added by the writer under a new
//!   UID;
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
