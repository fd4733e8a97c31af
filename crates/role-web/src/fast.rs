//! The plain-HTTP/1.1 fast path: our own connection loop for non-TLS connections,
//! so a large static file goes out with `sendfile` (zero copy) instead of through
//! hyper's body polling (hyper cannot send from a file descriptor).
//!
//! The loop parses each request head with `httparse` and takes only the simple
//! case ([`decide`]): `GET`/`HEAD`, HTTP/1.0 or 1.1, origin-form target, no body
//! (no `Transfer-Encoding`, `Content-Length` absent or 0), no `Upgrade`/`Expect`.
//! Such a request goes through the same [`handler::respond`] as hyper's, and the
//! loop writes the response itself: a [`FileRange`] body with `sendfile`, anything
//! else from the body's frames (`Content-Length`, chunked, or close-delimited for
//! HTTP/1.0, as hyper frames it). Anything else — a request with a body, an
//! upgrade, parse trouble, a head larger than [`MAX_HEAD`] — hands the connection
//! to hyper with the bytes already read replayed first ([`Rewind`]), so those
//! behave exactly as without the fast path.
//!
//! Like hyper's connection: keep-alive (HTTP/1.1 default, HTTP/1.0 with
//! `Connection: keep-alive`), `Connection: close`, pipelined requests already in
//! the buffer, a header timeout (from the start of waiting for a request head),
//! graceful shutdown (an idle connection closes at once, a busy one after its
//! response, which then says `Connection: close`), a `Date` header, the access log.

use std::io::{self, IoSlice};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::{Buf, Bytes, BytesMut};
use http::{header, HeaderMap, HeaderName, HeaderValue, Method, Request, StatusCode, Version};
use http_body_util::BodyExt;
use hyper::body::Body as _;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, Interest, ReadBuf};
use tokio::net::TcpStream;
use tokio_util::sync::CancellationToken;

use crate::body::{Body, FileRange, PendingLog, ReqBody};
use crate::handler::{self, Conn, Shared};

/// A request head larger than this goes to hyper (which applies its own limit).
pub const MAX_HEAD: usize = 16 << 10;
/// Headers parsed; a request with more goes to hyper.
const MAX_HEADERS: usize = 64;
/// Bodies up to this size are written with the head in one `writev`.
const COALESCE: usize = 256 << 10;

/// What to do with the bytes read so far on a connection.
// Lives on the stack for one request: boxing `Take` would cost an allocation each.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
pub enum Decision {
    /// Not a whole request head yet: read more.
    Partial,
    /// A request the fast path answers; its head is `head_len` bytes.
    Take(Taken),
    /// Let hyper serve the connection from here.
    HandOver,
}

/// A request the fast path answers.
#[derive(Debug)]
pub struct Taken {
    /// The request, without a body.
    pub request: Request<()>,
    /// Bytes of the request head.
    pub head_len: usize,
    /// The client wants the connection kept open after the response.
    pub keep_alive: bool,
}

/// Decide on the request head at the start of `buf` (pure).
pub fn decide(buf: &[u8]) -> Decision {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut headers);
    match req.parse(buf) {
        Ok(httparse::Status::Complete(n)) => {
            take(&req, n).map_or(Decision::HandOver, Decision::Take)
        }
        Ok(httparse::Status::Partial) if buf.len() < MAX_HEAD => Decision::Partial,
        Ok(httparse::Status::Partial) | Err(_) => Decision::HandOver,
    }
}

fn take(req: &httparse::Request<'_, '_>, head_len: usize) -> Option<Taken> {
    let method = match req.method? {
        "GET" => Method::GET,
        "HEAD" => Method::HEAD,
        _ => return None,
    };
    let version = match req.version? {
        1 => Version::HTTP_11,
        0 => Version::HTTP_10,
        _ => return None,
    };
    let path = req.path?;
    if !path.starts_with('/') {
        return None;
    }
    let uri = http::Uri::try_from(path).ok()?;
    let (mut close, mut keep) = (false, false);
    let mut map = HeaderMap::with_capacity(req.headers.len());
    for h in req.headers.iter() {
        let name = HeaderName::from_bytes(h.name.as_bytes()).ok()?;
        if name == header::TRANSFER_ENCODING || name == header::UPGRADE || name == header::EXPECT {
            return None;
        }
        if name == header::CONTENT_LENGTH && h.value.trim_ascii() != b"0" {
            return None;
        }
        if name == header::CONNECTION {
            for token in h.value.split(|&b| b == b',').map(<[u8]>::trim_ascii) {
                close |= token.eq_ignore_ascii_case(b"close");
                keep |= token.eq_ignore_ascii_case(b"keep-alive");
                if token.eq_ignore_ascii_case(b"upgrade") {
                    return None;
                }
            }
        }
        map.append(name, HeaderValue::from_bytes(h.value).ok()?);
    }
    let mut request = Request::new(());
    *request.method_mut() = method;
    *request.uri_mut() = uri;
    *request.version_mut() = version;
    *request.headers_mut() = map;
    let keep_alive = !close && (version == Version::HTTP_11 || keep);
    Some(Taken {
        request,
        head_len,
        keep_alive,
    })
}

/// What the connection loop needs besides the socket.
pub(crate) struct FastConn {
    pub shared: Arc<Shared>,
    pub conn: Arc<Conn>,
    pub header_timeout: Duration,
    /// Cancelled when the server shuts down.
    pub stop: CancellationToken,
}

/// How a connection the fast path gives up continues.
pub(crate) struct Handed {
    /// The socket.
    pub stream: TcpStream,
    /// Bytes read but not consumed (replayed to hyper first).
    pub pending: Bytes,
}

/// Serve `stream` until it closes (`None`) or a request needs hyper (`Some`).
pub(crate) async fn serve(fc: &FastConn, mut stream: TcpStream) -> Option<Handed> {
    let mut buf = BytesMut::with_capacity(4096);
    loop {
        let deadline = tokio::time::Instant::now() + fc.header_timeout;
        let taken = loop {
            if !buf.is_empty() {
                match decide(&buf) {
                    Decision::Partial => {}
                    Decision::Take(t) => break t,
                    Decision::HandOver => {
                        let pending = buf.freeze();
                        return Some(Handed { stream, pending });
                    }
                }
            }
            if buf.is_empty() && fc.stop.is_cancelled() {
                return None;
            }
            buf.reserve(4096);
            let idle = buf.is_empty();
            let read = tokio::select! {
                r = tokio::time::timeout_at(deadline, stream.read_buf(&mut buf)) => r,
                () = fc.stop.cancelled(), if idle => return None,
            };
            match read {
                Ok(Ok(n)) if n > 0 => {}
                _ => return None,
            }
        };
        buf.advance(taken.head_len);
        let head_only = taken.request.method() == Method::HEAD;
        let version = taken.request.version();
        let req = taken.request.map(|()| ReqBody::Empty);
        let (resp, log) = handler::respond(&fc.shared, &fc.conn, req).await;
        let keep_alive = taken.keep_alive && !fc.stop.is_cancelled();
        let (keep, sent) = write_response(&mut stream, resp, version, head_only, keep_alive).await;
        if let Some(PendingLog { domain, mut record }) = log {
            record.status = sent.status;
            record.bytes = sent.bytes;
            fc.shared.logs.access(domain, &record);
        }
        if !keep {
            return None;
        }
    }
}

/// What was sent of a response (for the access log).
struct Sent {
    status: u16,
    bytes: u64,
}

/// How the body is delimited on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Framing {
    None,
    Length(u64),
    Chunked,
    Close,
}

/// Write `resp`; returns whether the connection may carry another request.
async fn write_response(
    stream: &mut TcpStream,
    resp: http::Response<Body>,
    version: Version,
    head_only: bool,
    mut keep_alive: bool,
) -> (bool, Sent) {
    let (parts, body) = resp.into_parts();
    let status = parts.status;
    let mut sent = Sent {
        status: status.as_u16(),
        bytes: 0,
    };
    let h = &parts.headers;
    if connection_close(h) {
        keep_alive = false;
    }
    let declared = h
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.trim().parse::<u64>().ok());
    let no_body = head_only
        || status.is_informational()
        || status == StatusCode::NO_CONTENT
        || status == StatusCode::NOT_MODIFIED;
    let (framing, add_length) = match (no_body, declared, body.size_hint().exact()) {
        (true, _, _) => (Framing::None, None),
        (false, Some(n), _) => (Framing::Length(n), None),
        (false, None, Some(n)) => (Framing::Length(n), Some(n)),
        (false, None, None) if version == Version::HTTP_11 => (Framing::Chunked, None),
        (false, None, None) => (Framing::Close, None),
    };
    if framing == Framing::Close {
        keep_alive = false;
    }
    let mut head = Vec::with_capacity(512);
    head.extend_from_slice(b"HTTP/1.1 ");
    head.extend_from_slice(status.as_str().as_bytes());
    head.push(b' ');
    head.extend_from_slice(status.canonical_reason().unwrap_or("").as_bytes());
    head.extend_from_slice(b"\r\n");
    for (name, value) in h {
        push_header(&mut head, name.as_str().as_bytes(), value.as_bytes());
    }
    if let Some(n) = add_length {
        push_header(&mut head, b"content-length", n.to_string().as_bytes());
    }
    if framing == Framing::Chunked {
        push_header(&mut head, b"transfer-encoding", b"chunked");
    }
    if !h.contains_key(header::CONNECTION) {
        if !keep_alive && version == Version::HTTP_11 {
            push_header(&mut head, b"connection", b"close");
        } else if keep_alive && version == Version::HTTP_10 {
            push_header(&mut head, b"connection", b"keep-alive");
        }
    }
    if !h.contains_key(header::DATE) {
        date::with(|d| push_header(&mut head, b"date", d));
    }
    head.extend_from_slice(b"\r\n");
    let file = match framing {
        Framing::Length(n) => parts.extensions.get::<FileRange>().filter(|f| f.len == n),
        _ => None,
    };
    let result = match (framing, file) {
        (Framing::None, _) => stream.write_all(&head).await,
        (_, Some(f)) => send_file(stream, &head, f, &mut sent.bytes).await,
        (framing, None) => send_body(stream, head, body, framing, &mut sent.bytes).await,
    };
    (result.is_ok() && keep_alive, sent)
}

fn connection_close(h: &HeaderMap) -> bool {
    h.get_all(header::CONNECTION).iter().any(|v| {
        v.as_bytes()
            .split(|&b| b == b',')
            .any(|t| t.trim_ascii().eq_ignore_ascii_case(b"close"))
    })
}

fn push_header(out: &mut Vec<u8>, name: &[u8], value: &[u8]) {
    out.extend_from_slice(name);
    out.extend_from_slice(b": ");
    out.extend_from_slice(value);
    out.extend_from_slice(b"\r\n");
}

/// The head (held back with `MSG_MORE` so it leaves with the first file bytes),
/// then `f` with `sendfile`.
async fn send_file(s: &TcpStream, head: &[u8], f: &FileRange, sent: &mut u64) -> io::Result<()> {
    let mut done = 0;
    while done < head.len() {
        let rest = &head[done..];
        let n = s
            .async_io(Interest::WRITABLE, || {
                rustix::net::send(s, rest, rustix::net::SendFlags::MORE).map_err(io::Error::from)
            })
            .await?;
        done += n;
    }
    let (mut off, end) = (f.start, f.start + f.len);
    while off < end {
        let count = usize::try_from(end - off).unwrap_or(usize::MAX);
        let n = s
            .async_io(Interest::WRITABLE, || {
                rustix::fs::sendfile(s, &*f.fd, Some(&mut off), count).map_err(io::Error::from)
            })
            .await?;
        *sent = off - f.start;
        if n == 0 {
            // The file shrank since it was opened: the promised length cannot be met.
            return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "file shrank"));
        }
    }
    Ok(())
}

/// The head and the body's frames, framed as `framing` says.
async fn send_body(
    s: &mut TcpStream,
    mut head: Vec<u8>,
    mut body: Body,
    framing: Framing,
    sent: &mut u64,
) -> io::Result<()> {
    let limit = match framing {
        Framing::Length(n) => n,
        _ => u64::MAX,
    };
    let mut pending_head = true;
    while let Some(frame) = body.frame().await {
        let Ok(data) = frame?.into_data() else {
            continue; // trailers are not sent
        };
        let room = usize::try_from(limit - *sent).unwrap_or(usize::MAX);
        let data = &data[..data.len().min(room)];
        if data.is_empty() {
            continue;
        }
        if framing == Framing::Chunked {
            head.extend_from_slice(format!("{:x}\r\n", data.len()).as_bytes());
        }
        if pending_head && data.len() <= COALESCE && framing != Framing::Chunked {
            write_two(s, &head, data).await?;
        } else {
            s.write_all(&head).await?;
            s.write_all(data).await?;
        }
        *sent += data.len() as u64;
        head.clear();
        pending_head = false;
        if framing == Framing::Chunked {
            head.extend_from_slice(b"\r\n");
        }
    }
    if framing == Framing::Chunked {
        head.extend_from_slice(b"0\r\n\r\n");
    }
    if !head.is_empty() {
        s.write_all(&head).await?;
    }
    if *sent < limit && limit != u64::MAX {
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "body too short",
        ));
    }
    if framing == Framing::Close {
        s.shutdown().await?;
    }
    Ok(())
}

/// Write `a` then `b` with vectored writes.
async fn write_two(s: &mut TcpStream, a: &[u8], b: &[u8]) -> io::Result<()> {
    let (mut i, total) = (0, a.len() + b.len());
    while i < total {
        let n = if i < a.len() {
            s.write_vectored(&[IoSlice::new(&a[i..]), IoSlice::new(b)])
                .await?
        } else {
            s.write(&b[i - a.len()..]).await?
        };
        if n == 0 {
            return Err(io::ErrorKind::WriteZero.into());
        }
        i += n;
    }
    Ok(())
}

/// The `Date` header value, formatted once per second per thread.
mod date {
    use std::cell::RefCell;
    use std::time::{SystemTime, UNIX_EPOCH};

    thread_local! {
        static NOW: RefCell<(u64, String)> = const { RefCell::new((0, String::new())) };
    }

    /// Call `f` with the current date.
    pub fn with(f: impl FnOnce(&[u8])) {
        let now = SystemTime::now();
        let secs = now.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
        NOW.with_borrow_mut(|(at, text)| {
            if *at != secs || text.is_empty() {
                *at = secs;
                *text = httpdate::fmt_http_date(now);
            }
            f(text.as_bytes());
        });
    }
}

/// A socket whose first reads return bytes already read from it (to hand a
/// connection to hyper mid-stream).
pub(crate) struct Rewind {
    pending: Bytes,
    inner: TcpStream,
}

impl Rewind {
    /// `inner`, reading `pending` first.
    pub fn new(h: Handed) -> Self {
        Self {
            pending: h.pending,
            inner: h.stream,
        }
    }
}

impl AsyncRead for Rewind {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if !self.pending.is_empty() {
            let n = self.pending.len().min(buf.remaining());
            let chunk = self.pending.split_to(n);
            buf.put_slice(&chunk);
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for Rewind {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn taken(raw: &str) -> Option<Taken> {
        match decide(raw.as_bytes()) {
            Decision::Take(t) => Some(t),
            _ => None,
        }
    }

    #[test]
    fn simple_gets_and_heads_are_taken() {
        let t = taken("GET /a?b=1 HTTP/1.1\r\nHost: x\r\n\r\nGET").unwrap();
        assert_eq!(t.request.uri().path(), "/a");
        assert_eq!(t.head_len, "GET /a?b=1 HTTP/1.1\r\nHost: x\r\n\r\n".len());
        assert!(t.keep_alive);
        let t = taken("HEAD / HTTP/1.0\r\nHost: x\r\n\r\n").unwrap();
        assert!(!t.keep_alive);
        let t = taken("GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n").unwrap();
        assert!(t.keep_alive);
        let t = taken("GET / HTTP/1.1\r\nConnection: close\r\n\r\n").unwrap();
        assert!(!t.keep_alive);
        assert!(taken("GET / HTTP/1.1\r\nContent-Length: 0\r\n\r\n").is_some());
    }

    #[test]
    fn anything_else_goes_to_hyper() {
        for raw in [
            "POST / HTTP/1.1\r\nContent-Length: 0\r\n\r\n",
            "GET / HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc",
            "GET / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n",
            "GET / HTTP/1.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n",
            "GET / HTTP/1.1\r\nExpect: 100-continue\r\n\r\n",
            "GET http://x/ HTTP/1.1\r\n\r\n",
            "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
            "GARBAGE\r\n\r\n",
            "GET / HTTP/1.1\r\nBad Header: x\r\n\r\n",
        ] {
            assert!(
                matches!(decide(raw.as_bytes()), Decision::HandOver),
                "{raw:?}"
            );
        }
    }

    #[test]
    fn partial_heads_wait_until_too_large() {
        assert!(matches!(decide(b"GET / HTTP/1.1\r\nHo"), Decision::Partial));
        let mut big = b"GET / HTTP/1.1\r\nX: ".to_vec();
        big.resize(MAX_HEAD + 1, b'a');
        assert!(matches!(decide(&big), Decision::HandOver));
    }
}
