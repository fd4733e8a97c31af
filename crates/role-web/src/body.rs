//! Response bodies: the boxed body type every handler returns, small constructors,
//! a channel-fed body (FastCGI output) and the byte-counting wrapper that writes the
//! access-log line when the response is finished.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::{header, HeaderValue, Response, StatusCode};
use http_body_util::{BodyExt, Empty, Full};
use hyper::body::{Body as HttpBody, Frame, SizeHint};
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
