//! Write coalescing for TLS connections: what hyper (HTTP/2 or HTTP/1.1) writes
//! during one poll of its connection is gathered in memory, and leaves as full TLS
//! records in one socket write after that poll.
//!
//! Without it every frame h2 writes is a `flush` (h2 flushes before buffering the
//! next frame whenever the last one carried a data payload), and tokio-rustls turns
//! every write into at least one record and one `writev`: one per response at 1 KiB,
//! two records (16 KiB and 9 bytes) per 16 KiB DATA frame at 100 KiB. Corked, 16
//! responses of 1 KiB become two records and one `writev`.
//!
//! [`cork`] splits a TLS stream into [`Corked`] (the I/O object hyper owns: writes
//! append to a buffer and `flush` is deferred) and [`Uncork`], which
//! [`Uncork::drive`] uses to send the buffer after each poll of the connection
//! future; every write of the connection happens in that future, so nothing waits
//! longer than the poll that wrote it. The buffer is bounded ([`HIGH_WATER`]): a
//! writer past it waits until the socket takes the bytes. A failed socket write is
//! kept and returned by the connection's next read, write or flush, which ends it.

use std::future::Future;
use std::io::{self, IoSlice, Write as _};
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::server::TlsStream;

/// Plaintext handed to TLS before a writer has to wait for the socket.
pub const HIGH_WATER: usize = 256 << 10;

/// The largest TLS record's plaintext: bytes are handed to TLS in whole records,
/// the rest waits in the buffer for the next write or the end of the poll.
const RECORD: usize = 16 << 10;

/// A buffer emptied keeps its allocation up to this size.
const KEEP: usize = 2 * RECORD;

struct State {
    tls: TlsStream<TcpStream>,
    /// Plaintext not yet given to TLS (less than a record, unless a poll ends).
    out: Vec<u8>,
    /// Plaintext given to TLS since the socket last took everything.
    queued: usize,
    /// The socket write that failed; every later operation fails with it.
    failed: Option<io::ErrorKind>,
}

impl State {
    fn check(&self) -> io::Result<()> {
        match self.failed {
            Some(kind) => Err(io::Error::new(kind, "connection write failed")),
            None => Ok(()),
        }
    }

    /// Give everything to TLS and TLS's records to the socket.
    fn poll_drain(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.check()?;
        let r = self.drain(cx);
        if let Poll::Ready(Err(e)) = &r {
            self.failed = Some(e.kind());
        }
        r
    }

    fn drain(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if !self.out.is_empty() {
            let n = self.tls.get_mut().1.writer().write(&self.out)?;
            self.queued += n;
            self.out.drain(..n);
            if self.out.is_empty() && self.out.capacity() > KEEP {
                self.out = Vec::new();
            }
        }
        std::task::ready!(Pin::new(&mut self.tls).poll_flush(cx))?;
        self.queued = 0;
        Poll::Ready(Ok(()))
    }

    /// Take `b`: whole records (with what the buffer holds in front) go to TLS at
    /// once, without a copy; less than a record is buffered.
    fn take(&mut self, b: &[u8]) -> io::Result<()> {
        if self.out.len() + b.len() < RECORD {
            self.out.extend_from_slice(b);
            return Ok(());
        }
        let fill = RECORD - self.out.len();
        let cut = fill + (b.len() - fill) / RECORD * RECORD;
        let parts = [IoSlice::new(&self.out), IoSlice::new(&b[..cut])];
        let mut n = self.tls.get_mut().1.writer().write_vectored(&parts)?;
        self.queued += n;
        // The buffer limit is lifted (see `cork`), so TLS takes everything.
        let from_out = n.min(self.out.len());
        self.out.drain(..from_out);
        n -= from_out;
        self.out.extend_from_slice(&b[n..]);
        Ok(())
    }
}

/// The I/O object hyper owns (see the module docs).
pub struct Corked {
    state: Arc<Mutex<State>>,
}

/// The other half: sends what [`Corked`] gathered.
pub struct Uncork {
    state: Arc<Mutex<State>>,
}

/// Split `tls` into the corked I/O object and its uncorking half.
pub fn cork(mut tls: TlsStream<TcpStream>) -> (Corked, Uncork) {
    // `State::queued` and [`HIGH_WATER`] bound what TLS holds instead, so a write
    // is never cut short by TLS's own limit.
    tls.get_mut().1.set_buffer_limit(None);
    let state = Arc::new(Mutex::new(State {
        tls,
        out: Vec::new(),
        queued: 0,
        failed: None,
    }));
    let uncork = Uncork {
        state: state.clone(),
    };
    (Corked { state }, uncork)
}

fn lock(m: &Mutex<State>) -> MutexGuard<'_, State> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Uncork {
    /// Run `conn` (the connection future that owns the [`Corked`] half), sending
    /// what it wrote after each of its polls; once it is done, what is left is
    /// sent within `linger`.
    pub async fn drive<F: Future>(self, conn: F, linger: Duration) -> F::Output {
        let mut conn = std::pin::pin!(conn);
        let out = std::future::poll_fn(|cx| {
            let r = conn.as_mut().poll(cx);
            let mut st = lock(&self.state);
            if st.failed.is_none() {
                if let Poll::Ready(Err(_)) = st.poll_drain(cx) {
                    // The connection learns of it on its next operation: poll it again.
                    cx.waker().wake_by_ref();
                }
            }
            r
        })
        .await;
        let last = std::future::poll_fn(|cx| lock(&self.state).poll_drain(cx));
        let _ = tokio::time::timeout(linger, last).await;
        out
    }
}

impl AsyncRead for Corked {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let mut st = lock(&self.state);
        st.check()?;
        Pin::new(&mut st.tls).poll_read(cx, buf)
    }
}

impl Corked {
    /// Room for more bytes: under [`HIGH_WATER`], sending first if need be.
    fn poll_room(st: &mut State, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        st.check()?;
        if st.queued + st.out.len() >= HIGH_WATER {
            std::task::ready!(st.poll_drain(cx))?;
        }
        Poll::Ready(Ok(()))
    }
}

impl AsyncWrite for Corked {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let mut st = lock(&self.state);
        std::task::ready!(Self::poll_room(&mut st, cx))?;
        st.take(buf)?;
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let mut st = lock(&self.state);
        std::task::ready!(Self::poll_room(&mut st, cx))?;
        let mut n = 0;
        for b in bufs {
            st.take(b)?;
            n += b.len();
        }
        Poll::Ready(Ok(n))
    }

    fn is_write_vectored(&self) -> bool {
        true
    }

    /// Deferred: [`Uncork::drive`] sends the buffer after this poll.
    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        lock(&self.state).check().into()
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let mut st = lock(&self.state);
        std::task::ready!(st.poll_drain(cx))?;
        Pin::new(&mut st.tls).poll_shutdown(cx)
    }
}
