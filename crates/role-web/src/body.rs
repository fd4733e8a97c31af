//! Response bodies: the boxed body type every handler returns, small constructors,
//! a channel-fed body (FastCGI output) and the byte-counting wrapper that writes the
//! access-log line when the response is finished; the request body type
//! ([`ReqBody`]: hyper's, or none for the plain-HTTP fast path) and the
//! [`FileRange`] marker that lets the fast path send a file with `sendfile`.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::{header, HeaderValue, Response, StatusCode};
use http_body_util::{BodyExt, Empty, Full};
use hyper::body::{Body as HttpBody, Frame, Incoming, SizeHint};
use tokio::sync::mpsc;

use crate::log::{AccessRecord, Logs};

/// The body type of every response.
pub type Body = http_body_util::combinators::BoxBody<Bytes, io::Error>;

/// A body of `bytes`.
pub fn full(bytes: impl Into<Bytes>) -> Body {
    Full::new(bytes.into()).map_err(|e| match e {}).boxed()
}

/// An empty body.
pub fn empty() -> Body {
    Empty::new().map_err(|e| match e {}).boxed()
}

/// A short `text/plain` response.
pub fn plain(status: StatusCode, text: &'static str) -> Response<Body> {
    let mut r = Response::new(full(Bytes::from_static(text.as_bytes())));
    *r.status_mut() = status;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    r
}

/// A redirect to `location` (`301` or `308`…) with an empty body.
pub fn redirect(status: StatusCode, location: &str) -> Response<Body> {
    match HeaderValue::from_str(location) {
        Ok(v) => {
            let mut r = Response::new(empty());
            *r.status_mut() = status;
            r.headers_mut().insert(header::LOCATION, v);
            r
        }
        Err(_) => plain(StatusCode::BAD_REQUEST, "bad request\n"),
    }
}

/// The body of a request: hyper's for connections it serves, none for requests the
/// plain-HTTP fast path ([`crate::fast`]) takes (it takes only body-less ones).
pub enum ReqBody {
    /// The request body as hyper reads it.
    Incoming(Incoming),
    /// No body.
    Empty,
}

impl HttpBody for ReqBody {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        match self.get_mut() {
            ReqBody::Incoming(i) => Pin::new(i).poll_frame(cx),
            ReqBody::Empty => Poll::Ready(None),
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            ReqBody::Incoming(i) => i.is_end_stream(),
            ReqBody::Empty => true,
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            ReqBody::Incoming(i) => i.size_hint(),
            ReqBody::Empty => SizeHint::with_exact(0),
        }
    }
}

/// Response extension saying the body is exactly `len` bytes of the open file `fd`
/// from `start`: the plain-HTTP fast path sends them with `sendfile` instead of
/// polling the body (which streams the same bytes through memory for hyper).
#[derive(Clone, Debug)]
pub struct FileRange {
    /// The open file (a duplicate of the body's descriptor).
    pub fd: Arc<std::os::fd::OwnedFd>,
    /// First byte.
    pub start: u64,
    /// Bytes to send.
    pub len: u64,
}

/// A body fed by a channel (chunks arrive from another task).
pub struct ChannelBody {
    rx: mpsc::Receiver<io::Result<Bytes>>,
}

impl ChannelBody {
    /// The body reading `rx` until it closes.
    pub fn new(rx: mpsc::Receiver<io::Result<Bytes>>) -> Self {
        Self { rx }
    }
}

impl HttpBody for ChannelBody {
    type Data = Bytes;
    type Error = io::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, io::Error>>> {
        self.rx.poll_recv(cx).map(|o| o.map(|r| r.map(Frame::data)))
    }
}

/// Counts the body bytes sent and writes the access-log line when dropped (the
/// response finished or the client went away).
struct LoggedBody {
    inner: Body,
    record: AccessRecord,
    domain: Arc<str>,
    logs: Logs,
}

impl HttpBody for LoggedBody {
    type Data = Bytes;
    type Error = io::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, io::Error>>> {
        let this = &mut *self;
        let r = Pin::new(&mut this.inner).poll_frame(cx);
        if let Poll::Ready(Some(Ok(frame))) = &r {
            if let Some(d) = frame.data_ref() {
                this.record.bytes += d.len() as u64;
            }
        }
        r
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

impl Drop for LoggedBody {
    fn drop(&mut self) {
        self.logs.access(self.domain.clone(), &self.record);
    }
}

/// What the access-log line of a response still needs: the site and the record
/// (status and bytes are filled in when the response is done).
pub struct PendingLog {
    /// The site's domain.
    pub domain: Arc<str>,
    /// The record, without status and bytes yet.
    pub record: AccessRecord,
}

/// Wrap `resp` so its access-log line is written when it is done.
pub fn logged(
    resp: Response<Body>,
    logs: &Logs,
    domain: Arc<str>,
    mut record: AccessRecord,
) -> Response<Body> {
    record.status = resp.status().as_u16();
    let (parts, inner) = resp.into_parts();
    let body = LoggedBody {
        inner,
        record,
        domain,
        logs: logs.clone(),
    };
    Response::from_parts(parts, body.boxed())
}
