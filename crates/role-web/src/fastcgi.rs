//! A small FastCGI client (responder role) for PHP-FPM over a unix socket.
//!
//! One connection per request (no multiplexing, no keep-conn). The request body is
//! streamed into `FCGI_STDIN` records as it arrives; the response's CGI headers are
//! parsed from the first `FCGI_STDOUT` bytes and the rest is streamed to the client
//! through a channel. `FCGI_STDERR` lines (PHP warnings) go to the error log.

use std::io;
use std::path::Path;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use http_body_util::BodyExt;
use tokio::io::{AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::unix::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::UnixStream;
use tokio::sync::mpsc;

use crate::body::ChannelBody;
use crate::log::SiteLog;

const VERSION: u8 = 1;
const BEGIN_REQUEST: u8 = 1;
const END_REQUEST: u8 = 3;
const PARAMS: u8 = 4;
const STDIN: u8 = 5;
const STDOUT: u8 = 6;
const STDERR: u8 = 7;
const RESPONDER: u16 = 1;
const REQUEST_ID: u16 = 1;
const MAX_CONTENT: usize = 65535;
/// Largest CGI header block accepted from the application.
const MAX_HEADERS: usize = 64 << 10;
/// Connecting to the pool socket.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a missing or refusing pool socket is retried before the 502.
const CONNECT_RETRY: Duration = Duration::from_secs(2);
/// Silence from the application before the request is abandoned.
const READ_TIMEOUT: Duration = Duration::from_secs(300);

/// A FastCGI exchange that failed (the server answers 502).
#[derive(Debug, thiserror::Error)]
pub enum FcgiError {
    /// The socket could not be reached.
    #[error("connect to {socket}: {source}")]
    Connect {
        /// The pool socket.
        socket: String,
        /// Why.
        source: io::Error,
    },
    /// Reading or writing the connection failed.
    #[error("i/o: {0}")]
    Io(#[from] io::Error),
    /// The application answered something that is not a CGI response.
    #[error("bad response: {0}")]
    Protocol(&'static str),
}

/// Where the request body comes from.
pub enum RequestBody {
    /// Streamed from the client as it arrives.
    Stream(crate::body::ReqBody),
    /// Already in memory (chunked uploads are collected first to learn the length).
    Buffered(Bytes),
}

/// The application's answer: status, headers, and the streaming body.
pub struct FcgiResponse {
    /// From the `Status:` header (200 by default; 302 with `Location` and no status).
    pub status: StatusCode,
    /// The other CGI headers.
    pub headers: HeaderMap,
    /// The rest of `FCGI_STDOUT`.
    pub body: ChannelBody,
}

/// Append one record of `kind` carrying `content` (≤ 65535 bytes) to `out`.
fn push_record(out: &mut Vec<u8>, kind: u8, content: &[u8]) {
    let len = content.len().min(MAX_CONTENT);
    let pad = (8 - len % 8) % 8;
    let id = REQUEST_ID.to_be_bytes();
    let l = (len as u16).to_be_bytes();
    out.extend_from_slice(&[VERSION, kind, id[0], id[1], l[0], l[1], pad as u8, 0]);
    out.extend_from_slice(&content[..len]);
    out.extend(std::iter::repeat_n(0u8, pad));
}

/// Append `data` as records of `kind`, split at 65535 bytes.
fn push_stream(out: &mut Vec<u8>, kind: u8, data: &[u8]) {
    for chunk in data.chunks(MAX_CONTENT) {
        push_record(out, kind, chunk);
    }
}

fn push_len(out: &mut Vec<u8>, n: usize) {
    if n < 128 {
        out.push(n as u8);
    } else {
        out.extend_from_slice(&((n as u32) | 0x8000_0000).to_be_bytes());
    }
}

/// Encode name-value pairs (FastCGI §3.4).
pub fn encode_params(params: &[(String, String)]) -> Vec<u8> {
    let mut out = Vec::new();
    for (k, v) in params {
        push_len(&mut out, k.len());
        push_len(&mut out, v.len());
        out.extend_from_slice(k.as_bytes());
        out.extend_from_slice(v.as_bytes());
    }
    out
}

/// Connect to the pool socket. A missing or refusing socket is retried for up to
/// [`CONNECT_RETRY`]: a pool that changes php-fpm master (idle masters are merged,
/// a new site's master is starting) leaves its socket path briefly unbound, and
/// nothing was sent yet, so waiting is safe where failing would be a 502.
async fn connect(socket: &Path) -> io::Result<UnixStream> {
    let deadline = tokio::time::Instant::now() + CONNECT_RETRY;
    loop {
        match UnixStream::connect(socket).await {
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::NotFound | io::ErrorKind::ConnectionRefused
                ) && tokio::time::Instant::now() < deadline =>
            {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            r => return r,
        }
    }
}

/// Run one request on the pool at `socket`.
pub async fn execute(
    socket: &Path,
    params: &[(String, String)],
    body: RequestBody,
    log: SiteLog,
) -> Result<FcgiResponse, FcgiError> {
    let stream = match tokio::time::timeout(CONNECT_TIMEOUT, connect(socket)).await {
        Ok(Ok(s)) => s,
        Ok(Err(source)) => {
            return Err(FcgiError::Connect {
                socket: socket.display().to_string(),
                source,
            })
        }
        Err(_) => {
            return Err(FcgiError::Connect {
                socket: socket.display().to_string(),
                source: io::ErrorKind::TimedOut.into(),
            })
        }
    };
    let (rd, mut wr) = stream.into_split();
    let mut head = Vec::with_capacity(1024);
    let role = RESPONDER.to_be_bytes();
    push_record(
        &mut head,
        BEGIN_REQUEST,
        &[role[0], role[1], 0, 0, 0, 0, 0, 0],
    );
    push_stream(&mut head, PARAMS, &encode_params(params));
    push_record(&mut head, PARAMS, &[]);
    wr.write_all(&head).await?;
    let writer = tokio::spawn(write_stdin(wr, body));
    let mut reader = Records::new(rd);
    let (status, headers, first) = read_headers(&mut reader, &log).await?;
    let (tx, rx) = mpsc::channel(8);
    tokio::spawn(async move {
        if !first.is_empty() && tx.send(Ok(first)).await.is_err() {
            return;
        }
        forward(reader, tx, &log).await;
        if let Ok(Err(e)) = writer.await {
            tracing::debug!(error = %e, "{}: request body not fully sent", log.who());
        }
    });
    Ok(FcgiResponse {
        status,
        headers,
        body: ChannelBody::new(rx),
    })
}

async fn write_stdin(mut wr: OwnedWriteHalf, body: RequestBody) -> io::Result<()> {
    let mut out = Vec::with_capacity(MAX_CONTENT + 16);
    match body {
        RequestBody::Buffered(b) => {
            push_stream(&mut out, STDIN, &b);
            wr.write_all(&out).await?;
        }
        RequestBody::Stream(mut incoming) => {
            while let Some(frame) = incoming.frame().await {
                let frame = frame.map_err(io::Error::other)?;
                if let Some(data) = frame.data_ref() {
                    out.clear();
                    push_stream(&mut out, STDIN, data);
                    wr.write_all(&out).await?;
                }
            }
        }
    }
    out.clear();
    push_record(&mut out, STDIN, &[]);
    wr.write_all(&out).await?;
    wr.flush().await
}

/// Reads records off the connection.
struct Records {
    rd: BufReader<OwnedReadHalf>,
}

impl Records {
    fn new(rd: OwnedReadHalf) -> Self {
        Self {
            rd: BufReader::with_capacity(64 << 10, rd),
        }
    }

    /// The next record `(type, content)`; `None` at a clean end of stream.
    async fn next(&mut self) -> Result<Option<(u8, Bytes)>, FcgiError> {
        let mut h = [0u8; 8];
        let first = tokio::time::timeout(READ_TIMEOUT, self.rd.read(&mut h[..1]))
            .await
            .map_err(|_| io::Error::from(io::ErrorKind::TimedOut))??;
        if first == 0 {
            return Ok(None);
        }
        tokio::time::timeout(READ_TIMEOUT, self.rd.read_exact(&mut h[1..]))
            .await
            .map_err(|_| io::Error::from(io::ErrorKind::TimedOut))??;
        if h[0] != VERSION {
            return Err(FcgiError::Protocol("unknown FastCGI version"));
        }
        let len = usize::from(u16::from_be_bytes([h[4], h[5]]));
        let pad = usize::from(h[6]);
        let mut buf = BytesMut::zeroed(len + pad);
        tokio::time::timeout(READ_TIMEOUT, self.rd.read_exact(&mut buf))
            .await
            .map_err(|_| io::Error::from(io::ErrorKind::TimedOut))??;
        buf.truncate(len);
        Ok(Some((h[1], buf.freeze())))
    }
}

fn log_stderr(log: &SiteLog, data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        log.php(line.trim());
    }
}

async fn read_headers(
    reader: &mut Records,
    log: &SiteLog,
) -> Result<(StatusCode, HeaderMap, Bytes), FcgiError> {
    let mut buf = Vec::new();
    loop {
        match reader.next().await? {
            Some((STDOUT, data)) => {
                buf.extend_from_slice(&data);
                if let Some((end, skip)) = header_end(&buf) {
                    let (status, headers) = parse_headers(&buf[..end])?;
                    let rest = Bytes::copy_from_slice(&buf[end + skip..]);
                    return Ok((status, headers, rest));
                }
                if buf.len() > MAX_HEADERS {
                    return Err(FcgiError::Protocol("CGI headers too large"));
                }
            }
            Some((STDERR, data)) => log_stderr(log, &data),
            Some((END_REQUEST, _)) | None => {
                return Err(FcgiError::Protocol("ended before sending headers"))
            }
            Some(_) => {}
        }
    }
}

/// Where the header block ends: `(index, separator length)`.
fn header_end(buf: &[u8]) -> Option<(usize, usize)> {
    let crlf = buf
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map(|i| (i, 4));
    let lf = buf.windows(2).position(|w| w == b"\n\n").map(|i| (i, 2));
    match (crlf, lf) {
        (Some(a), Some(b)) => Some(if a.0 <= b.0 { a } else { b }),
        (a, b) => a.or(b),
    }
}

/// Parse a CGI header block (RFC 3875 §6.3).
pub fn parse_headers(block: &[u8]) -> Result<(StatusCode, HeaderMap), FcgiError> {
    let mut status = None;
    let mut headers = HeaderMap::new();
    for line in block.split(|&b| b == b'\n') {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.is_empty() {
            continue;
        }
        let Some(colon) = line.iter().position(|&b| b == b':') else {
            return Err(FcgiError::Protocol("header line without a colon"));
        };
        let (name, value) = (&line[..colon], trim(&line[colon + 1..]));
        if name.eq_ignore_ascii_case(b"status") {
            let code = value.split(|&b| b == b' ').next().unwrap_or(b"");
            status =
                Some(StatusCode::from_bytes(code).map_err(|_| FcgiError::Protocol("bad Status"))?);
            continue;
        }
        let (Ok(n), Ok(v)) = (HeaderName::from_bytes(name), HeaderValue::from_bytes(value)) else {
            return Err(FcgiError::Protocol("bad header"));
        };
        if is_hop_by_hop(&n) {
            continue;
        }
        headers.append(n, v);
    }
    let status = status.unwrap_or(if headers.contains_key(http::header::LOCATION) {
        StatusCode::FOUND
    } else {
        StatusCode::OK
    });
    Ok((status, headers))
}

fn trim(v: &[u8]) -> &[u8] {
    let start = v
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .unwrap_or(v.len());
    let end = v
        .iter()
        .rposition(|b| !b.is_ascii_whitespace())
        .map_or(start, |e| e + 1);
    &v[start..end]
}

fn is_hop_by_hop(n: &HeaderName) -> bool {
    matches!(
        n.as_str(),
        "connection" | "keep-alive" | "transfer-encoding" | "upgrade" | "proxy-connection"
    )
}

async fn forward(mut reader: Records, tx: mpsc::Sender<io::Result<Bytes>>, log: &SiteLog) {
    loop {
        match reader.next().await {
            Ok(Some((STDOUT, data))) => {
                if !data.is_empty() && tx.send(Ok(data)).await.is_err() {
                    return; // client went away; dropping the socket aborts the script
                }
            }
            Ok(Some((STDERR, data))) => log_stderr(log, &data),
            Ok(Some((END_REQUEST, _))) | Ok(None) => return,
            Ok(Some(_)) => {}
            Err(e) => {
                log.error(format!("FastCGI response broken off: {e}"));
                let _ = tx.send(Err(io::Error::other(e.to_string()))).await;
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn params_use_short_and_long_lengths() {
        let long = "x".repeat(200);
        let enc = encode_params(&[("A".into(), "bc".into()), ("L".into(), long.clone())]);
        assert_eq!(&enc[..5], &[1, 2, b'A', b'b', b'c']);
        assert_eq!(&enc[5..10], &[1, 0x80, 0, 0, 200]);
        assert_eq!(enc.len(), 5 + 5 + 1 + 200);
    }

    #[test]
    fn records_are_padded_to_eight_bytes() {
        let mut out = Vec::new();
        push_record(&mut out, STDIN, b"abc");
        assert_eq!(out.len(), 16);
        assert_eq!(&out[..8], &[1, STDIN, 0, 1, 0, 3, 5, 0]);
        let mut out = Vec::new();
        push_stream(&mut out, STDIN, &vec![0u8; 70000]);
        assert_eq!(out.len(), 8 + 65535 + 1 + 8 + 4465 + 7);
    }

    #[test]
    fn cgi_headers_parse() {
        let (s, h) =
            parse_headers(b"Status: 404 Not Found\r\nContent-Type: text/html\r\nX-A: 1").unwrap();
        assert_eq!(s, StatusCode::NOT_FOUND);
        assert_eq!(h["content-type"], "text/html");
        let (s, _) = parse_headers(b"Location: /x\nTransfer-Encoding: chunked").unwrap();
        assert_eq!(s, StatusCode::FOUND);
        assert!(parse_headers(b"garbage").is_err());
        assert_eq!(header_end(b"A: b\r\n\r\nbody"), Some((4, 4)));
        assert_eq!(header_end(b"A: b\n\nbody"), Some((4, 2)));
    }
}
