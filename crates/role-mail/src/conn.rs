//! A line-oriented connection shared by the SMTP and POP3 servers: buffered reads
//! of CRLF lines with a length limit and a timeout, bare CR / bare LF detection,
//! buffered replies flushed only when the client's pipelined input is used up, and
//! the in-place TLS upgrade (STARTTLS / STLS) that drops any input sent before the
//! handshake (CVE-2011-0411 style injection).

use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// A byte stream a session runs over (TCP, TLS, or an in-memory script).
pub trait Io: AsyncRead + AsyncWrite + Unpin + Send + Sync {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send + Sync> Io for T {}

/// How a line ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LineEnd {
    /// `\r\n`.
    Crlf,
    /// A `\n` without `\r` before it.
    BareLf,
}

/// One line read from the client (without its ending).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line {
    /// The content; truncated when `overlong`.
    pub bytes: Vec<u8>,
    /// The line (with CRLF) was longer than the limit; its tail was discarded.
    pub overlong: bool,
    /// The content has a `\r` not followed by `\n`.
    pub bare_cr: bool,
    /// How it ended.
    pub end: LineEnd,
}

/// Why reading stopped.
#[derive(Debug, thiserror::Error)]
pub enum ConnError {
    /// The client closed the connection.
    #[error("connection closed")]
    Closed,
    /// The client was silent too long.
    #[error("timeout")]
    Timeout,
    /// A socket error.
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

/// A buffered connection.
pub struct Conn {
    io: Box<dyn Io>,
    buf: Vec<u8>,
    start: usize,
    out: Vec<u8>,
}

impl Conn {
    /// Wrap a stream.
    pub fn new(io: Box<dyn Io>) -> Self {
        Self {
            io,
            buf: Vec::with_capacity(16 * 1024),
            start: 0,
            out: Vec::with_capacity(1024),
        }
    }

    /// Queue `bytes` for the client (sent at the next read that needs the socket,
    /// or at [`Conn::flush`]).
    pub fn send(&mut self, bytes: &[u8]) {
        self.out.extend_from_slice(bytes);
    }

    /// Send queued output now.
    pub async fn flush(&mut self) -> Result<(), ConnError> {
        if !self.out.is_empty() {
            self.io.write_all(&self.out).await?;
            self.io.flush().await?;
            self.out.clear();
        }
        Ok(())
    }

    /// Whether the client already sent more input than we consumed.
    pub fn has_pending_input(&self) -> bool {
        self.start < self.buf.len()
    }

    async fn fill(&mut self, timeout: Duration) -> Result<(), ConnError> {
        self.flush().await?;
        self.read_more(timeout).await
    }

    /// Read what the client sent next into the buffer (compacted first). Cancel-safe:
    /// bytes are added only once a read has completed.
    async fn read_more(&mut self, timeout: Duration) -> Result<(), ConnError> {
        if self.start > 0 && self.start * 2 >= self.buf.len() {
            self.buf.drain(..self.start);
            self.start = 0;
        }
        let mut chunk = [0u8; 16 * 1024];
        let n = tokio::time::timeout(timeout, self.io.read(&mut chunk))
            .await
            .map_err(|_| ConnError::Timeout)??;
        if n == 0 {
            return Err(ConnError::Closed);
        }
        self.buf.extend_from_slice(&chunk[..n]);
        Ok(())
    }

    /// Read one line of at most `max` bytes including its CRLF.
    pub async fn read_line(&mut self, max: usize, timeout: Duration) -> Result<Line, ConnError> {
        let mut kept: Vec<u8> = Vec::new();
        let mut overlong = false;
        loop {
            let avail = &self.buf[self.start..];
            if let Some(i) = avail.iter().position(|&b| b == b'\n') {
                let piece = &avail[..i];
                if !overlong {
                    kept.extend_from_slice(piece);
                } else if let Some(&last) = piece.last() {
                    kept.clear();
                    kept.push(last);
                } else if kept.last() != Some(&b'\r') {
                    kept.clear();
                }
                self.start += i + 1;
                let end = if kept.last() == Some(&b'\r') {
                    kept.pop();
                    LineEnd::Crlf
                } else {
                    LineEnd::BareLf
                };
                if kept.len() + 2 > max {
                    overlong = true;
                    kept.truncate(max.saturating_sub(2));
                }
                let bare_cr = kept.contains(&b'\r');
                return Ok(Line {
                    bytes: kept,
                    overlong,
                    bare_cr,
                    end,
                });
            }
            // No line end yet: keep (or discard, past the limit) what we have.
            let piece_len = avail.len();
            if !overlong && kept.len() + piece_len > max {
                overlong = true;
            }
            if overlong {
                // Keep only the last byte, to see a CR right before the LF.
                if let Some(&last) = avail.last() {
                    kept.clear();
                    kept.push(last);
                }
            } else {
                kept.extend_from_slice(avail);
            }
            self.start = self.buf.len();
            self.fill(timeout).await?;
        }
    }

    /// Read exactly `n` bytes (an IMAP literal).
    pub async fn read_exact(&mut self, n: usize, timeout: Duration) -> Result<Vec<u8>, ConnError> {
        let mut out = Vec::with_capacity(n.min(1 << 20));
        loop {
            let avail = &self.buf[self.start..];
            let take = avail.len().min(n - out.len());
            out.extend_from_slice(&avail[..take]);
            self.start += take;
            if out.len() == n {
                return Ok(out);
            }
            self.fill(timeout).await?;
        }
    }

    /// Wait until the client sent something (cancel-safe: nothing read is lost,
    /// so it can race a notification, as IMAP IDLE does). It does not flush (a
    /// cancelled write is not safe): the caller flushes first.
    pub async fn wait_input(&mut self, timeout: Duration) -> Result<(), ConnError> {
        if self.has_pending_input() {
            return Ok(());
        }
        self.read_more(timeout).await
    }

    /// Replace the stream by its TLS upgrade, dropping input sent before it.
    pub async fn upgrade(
        &mut self,
        acceptor: &tokio_rustls::TlsAcceptor,
        timeout: Duration,
    ) -> Result<(), ConnError> {
        self.flush().await?;
        self.buf.clear();
        self.start = 0;
        let (placeholder, _) = tokio::io::duplex(1);
        let plain = std::mem::replace(&mut self.io, Box::new(placeholder));
        let tls = tokio::time::timeout(timeout, acceptor.accept(plain))
            .await
            .map_err(|_| ConnError::Timeout)??;
        self.io = Box::new(tls);
        Ok(())
    }

    /// Client side: replace the stream by its TLS upgrade towards `name`.
    pub async fn upgrade_client(
        &mut self,
        connector: &tokio_rustls::TlsConnector,
        name: rustls::pki_types::ServerName<'static>,
        timeout: Duration,
    ) -> Result<(), ConnError> {
        self.flush().await?;
        self.buf.clear();
        self.start = 0;
        let (placeholder, _) = tokio::io::duplex(1);
        let plain = std::mem::replace(&mut self.io, Box::new(placeholder));
        let tls = tokio::time::timeout(timeout, connector.connect(name, plain))
            .await
            .map_err(|_| ConnError::Timeout)??;
        self.io = Box::new(tls);
        Ok(())
    }

    /// Flush and close the write side.
    pub async fn close(&mut self) {
        let _ = self.flush().await;
        let _ = self.io.shutdown().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn conn(script: &'static [u8]) -> Conn {
        let (a, mut b) = tokio::io::duplex(64 * 1024);
        tokio::spawn(async move {
            let _ = b.write_all(script).await;
            let _ = b.shutdown().await;
            let mut sink = Vec::new();
            let _ = b.read_to_end(&mut sink).await;
        });
        Conn::new(Box::new(a))
    }

    #[tokio::test]
    async fn lines_endings_and_limits() {
        let t = Duration::from_secs(5);
        let mut c = conn(b"HELO a\r\nbare\nx\ry\r\n0123456789\r\nok\r\n");
        let l = c.read_line(100, t).await.unwrap();
        assert_eq!((l.bytes.as_slice(), l.end), (&b"HELO a"[..], LineEnd::Crlf));
        let l = c.read_line(100, t).await.unwrap();
        assert_eq!(l.end, LineEnd::BareLf);
        let l = c.read_line(100, t).await.unwrap();
        assert!(l.bare_cr);
        let l = c.read_line(8, t).await.unwrap();
        assert!(l.overlong);
        assert_eq!(l.end, LineEnd::Crlf);
        let l = c.read_line(8, t).await.unwrap();
        assert_eq!(l.bytes, b"ok");
        assert!(matches!(c.read_line(8, t).await, Err(ConnError::Closed)));
    }
}
