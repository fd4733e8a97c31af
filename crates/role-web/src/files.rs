//! Static files: MIME type, validators (ETag, Last-Modified) and conditional GET,
//! single byte ranges, gzip/brotli for text, HEAD. Small files are served from the
//! [`ContentCache`]; large ones are streamed in 512 KiB chunks.
//!
//! The ETag is built from mtime and size (not the inode), so every web server of a
//! cluster holding the same synced file gives the same tag.

use std::io::{self, Seek, SeekFrom};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use futures_util::TryStreamExt;
use http::{header, HeaderMap, HeaderValue, Response, StatusCode};
use http_body_util::{BodyExt, StreamBody};
use hyper::body::Frame;
use tokio::io::AsyncReadExt;

use crate::body::{empty, full, Body, FileRange};
use crate::cache::{ContentCache, FileKey, Variant};
use crate::compress::{self, Encoding};
use crate::fsafe::Opened;

/// Files up to this size are read on the async thread (one `pread`); larger ones
/// in the blocking pool.
const INLINE_READ: u64 = 256 << 10;
/// Chunk size when streaming large files: each chunk is one read in the blocking
/// pool and one hand-over back, so larger chunks mean fewer thread wake-ups per
/// byte (64 KiB chunks served a 10 MiB file at 0.66× nginx's sendfile).
const CHUNK: usize = 512 << 10;

/// The validators of a file version, with their header values rendered once.
#[derive(Debug)]
struct Validators {
    etag: String,
    mtime: SystemTime,
    last_modified: String,
    etag_header: Option<HeaderValue>,
    last_modified_header: Option<HeaderValue>,
}

impl Validators {
    fn of(o: &Opened) -> Self {
        #[allow(clippy::unnecessary_cast)]
        let (secs, nsecs) = (o.stat.st_mtime as i64, o.stat.st_mtime_nsec as i64);
        let mtime = UNIX_EPOCH + Duration::from_secs(u64::try_from(secs).unwrap_or(0));
        let etag = format!("\"{secs:x}.{nsecs:x}-{:x}\"", o.size());
        let last_modified = httpdate::fmt_http_date(mtime);
        Self {
            etag_header: HeaderValue::from_str(&etag).ok(),
            last_modified_header: HeaderValue::from_str(&last_modified).ok(),
            etag,
            last_modified,
            mtime,
        }
    }

    fn etag_for(&self, enc: Option<Encoding>) -> String {
        match enc {
            None => self.etag.clone(),
            Some(e) => format!("{}-{}\"", self.etag.trim_end_matches('"'), e.token()),
        }
    }
}

/// Everything a response needs to know of one version of a file, computed once
/// (and kept with the bytes of hot small files, see [`crate::hot`]).
#[derive(Debug)]
pub struct FileMeta {
    key: FileKey,
    size: u64,
    mime: &'static str,
    compressible: bool,
    validators: Validators,
}

impl FileMeta {
    /// The metadata of the open file `o`, typed by the extension `ext`.
    pub fn of(o: &Opened, ext: Option<&str>) -> Self {
        let mime = ext
            .and_then(|e| mime_guess::from_ext(e).first_raw())
            .unwrap_or("application/octet-stream");
        Self {
            key: FileKey::of(&o.stat),
            size: o.size(),
            mime,
            compressible: compress::compressible(mime),
            validators: Validators::of(o),
        }
    }
}

/// Where the bytes of a file come from.
pub enum Source {
    /// Wholly in memory (a small file, from the cache).
    Memory(Bytes),
    /// Read from the open file as the response is sent.
    File(Opened),
}

/// A static file ready to answer from: its metadata and its bytes.
pub struct Prepared {
    /// The metadata (shared with the hot-file cache).
    pub meta: std::sync::Arc<FileMeta>,
    /// The bytes.
    pub source: Source,
}

/// Take the open regular file `o` (`ext` chooses the MIME type): small files are
/// read into memory (through the [`ContentCache`]), large ones stay open.
pub async fn prepare(cache: &ContentCache, o: Opened, ext: Option<&str>) -> io::Result<Prepared> {
    let meta = std::sync::Arc::new(FileMeta::of(&o, ext));
    let source = if fits_cache(cache, &o) {
        Source::Memory(bytes_of(cache, o).await?)
    } else {
        Source::File(o)
    };
    Ok(Prepared { meta, source })
}

pub(crate) fn read_failed(e: &io::Error) -> Response<Body> {
    tracing::warn!(error = %e, "reading a static file failed");
    crate::body::plain(StatusCode::INTERNAL_SERVER_ERROR, "read error\n")
}

/// Answer a GET or HEAD for the file `meta` describes, whose bytes `source` holds:
/// conditional GET, a single range, compression, or the whole file.
pub async fn respond(
    cache: &ContentCache,
    meta: &FileMeta,
    source: Source,
    req: &HeaderMap,
    head: bool,
) -> Response<Body> {
    let (v, size, mime) = (&meta.validators, meta.size, meta.mime);
    let enc = if meta.compressible && (compress::MIN_SIZE..=compress::MAX_SIZE).contains(&size) {
        header_str(req, header::ACCEPT_ENCODING).and_then(compress::negotiate)
    } else {
        None
    };
    if not_modified(req, v, enc) {
        let mut r = Response::new(empty());
        *r.status_mut() = StatusCode::NOT_MODIFIED;
        set_validators(r.headers_mut(), v, enc, meta.compressible);
        return r;
    }
    let range = match requested_range(req, v, size) {
        Ok(r) => r,
        Err(Unsatisfiable) => return unsatisfiable(size),
    };
    let result = match (range, enc) {
        (Some((start, end)), _) => ranged(source, start, end),
        (None, Some(e)) => encoded(cache, meta.key, source, e).await,
        (None, None) => whole(source, size),
    };
    let (status, body, len, enc, file) = match result {
        Ok(Served::Partial(body, len, file)) => {
            (StatusCode::PARTIAL_CONTENT, body, len, None, file)
        }
        Ok(Served::Whole(body, len, enc, file)) => (StatusCode::OK, body, len, enc, file),
        Err(e) => return read_failed(&e),
    };
    let mut r = Response::new(if head { empty() } else { body });
    *r.status_mut() = status;
    if let (Some(f), false) = (file, head) {
        r.extensions_mut().insert(f);
    }
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(mime));
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(len));
    h.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    set_validators(h, v, enc, meta.compressible);
    if let Some(e) = enc {
        h.insert(
            header::CONTENT_ENCODING,
            HeaderValue::from_static(e.token()),
        );
    }
    if let Some((start, end)) = range {
        if let Ok(cr) = HeaderValue::from_str(&format!("bytes {start}-{end}/{size}")) {
            h.insert(header::CONTENT_RANGE, cr);
        }
    }
    r
}

/// A body, its length, and where it lies in the file when it is read from one.
enum Served {
    Whole(Body, u64, Option<Encoding>, Option<FileRange>),
    Partial(Body, u64, Option<FileRange>),
}

fn header_str(h: &HeaderMap, name: header::HeaderName) -> Option<&str> {
    h.get(name).and_then(|v| v.to_str().ok())
}

fn set_validators(h: &mut HeaderMap, v: &Validators, enc: Option<Encoding>, vary: bool) {
    let etag = match enc {
        None => v.etag_header.clone(),
        Some(_) => HeaderValue::from_str(&v.etag_for(enc)).ok(),
    };
    if let Some(e) = etag {
        h.insert(header::ETAG, e);
    }
    if let Some(lm) = v.last_modified_header.clone() {
        h.insert(header::LAST_MODIFIED, lm);
    }
    if vary {
        h.insert(header::VARY, HeaderValue::from_static("Accept-Encoding"));
    }
}

/// RFC 9110 §13.2.2: If-None-Match (weak comparison) wins over If-Modified-Since.
fn not_modified(req: &HeaderMap, v: &Validators, enc: Option<Encoding>) -> bool {
    if let Some(inm) = header_str(req, header::IF_NONE_MATCH) {
        let mine = enc.map(|e| v.etag_for(Some(e)));
        let plain = &v.etag;
        return inm.split(',').map(str::trim).any(|t| {
            let t = t.strip_prefix("W/").unwrap_or(t);
            t == "*" || t == plain || mine.as_deref() == Some(t)
        });
    }
    match header_str(req, header::IF_MODIFIED_SINCE).map(httpdate::parse_http_date) {
        Some(Ok(since)) => v.mtime <= since,
        _ => false,
    }
}

/// The single range asked for, as inclusive `(start, end)`; `Ok(None)` to send the
/// whole file (no Range, an If-Range that does not match, several ranges, or a
/// header we do not understand); `Err` when unsatisfiable.
fn requested_range(
    req: &HeaderMap,
    v: &Validators,
    size: u64,
) -> Result<Option<(u64, u64)>, Unsatisfiable> {
    let Some(spec) = header_str(req, header::RANGE) else {
        return Ok(None);
    };
    if let Some(ir) = header_str(req, header::IF_RANGE) {
        if ir.trim() != v.etag && ir.trim() != v.last_modified {
            return Ok(None);
        }
    }
    parse_range(spec, size)
}

/// A range that lies wholly outside the file (answered with `416`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Unsatisfiable;

/// Parse a `Range` header value against a file of `size` bytes.
pub fn parse_range(spec: &str, size: u64) -> Result<Option<(u64, u64)>, Unsatisfiable> {
    let Some(set) = spec.trim().strip_prefix("bytes=") else {
        return Ok(None);
    };
    if set.contains(',') {
        return Ok(None);
    }
    let Some((a, b)) = set.trim().split_once('-') else {
        return Ok(None);
    };
    let (a, b) = (a.trim(), b.trim());
    let range = match (a.is_empty(), b.is_empty()) {
        (true, true) => return Ok(None),
        (true, false) => {
            let Ok(n) = b.parse::<u64>() else {
                return Ok(None);
            };
            if n == 0 || size == 0 {
                return Err(Unsatisfiable);
            }
            (size.saturating_sub(n), size - 1)
        }
        (false, _) => {
            let Ok(start) = a.parse::<u64>() else {
                return Ok(None);
            };
            let end = if b.is_empty() {
                u64::MAX
            } else {
                match b.parse::<u64>() {
                    Ok(e) if e >= start => e,
                    _ => return Ok(None),
                }
            };
            if start >= size {
                return Err(Unsatisfiable);
            }
            (start, end.min(size - 1))
        }
    };
    Ok(Some(range))
}

fn unsatisfiable(size: u64) -> Response<Body> {
    let mut r = crate::body::plain(StatusCode::RANGE_NOT_SATISFIABLE, "range not satisfiable\n");
    if let Ok(v) = HeaderValue::from_str(&format!("bytes */{size}")) {
        r.headers_mut().insert(header::CONTENT_RANGE, v);
    }
    r
}

/// The whole file as bytes (from the cache, or read and cached).
async fn bytes_of(cache: &ContentCache, o: Opened) -> io::Result<Bytes> {
    let key = FileKey::of(&o.stat);
    if let Some(b) = cache.get(key, Variant::Identity) {
        return Ok(b);
    }
    let size = o.size();
    let data = if size <= INLINE_READ {
        read_all(&o)?
    } else {
        tokio::task::spawn_blocking(move || read_all(&o))
            .await
            .map_err(io::Error::other)??
    };
    let data = Bytes::from(data);
    cache.insert(key, Variant::Identity, data.clone());
    Ok(data)
}

fn read_all(o: &Opened) -> io::Result<Vec<u8>> {
    let size = usize::try_from(o.size()).map_err(io::Error::other)?;
    let mut buf = vec![0u8; size];
    let mut done = 0;
    while done < size {
        let n = rustix::io::pread(&o.fd, &mut buf[done..], done as u64)?;
        if n == 0 {
            // The file shrank since fstat: serve what is there.
            buf.truncate(done);
            break;
        }
        done += n;
    }
    Ok(buf)
}

fn fits_cache(cache: &ContentCache, o: &Opened) -> bool {
    usize::try_from(o.size()).is_ok_and(|s| s <= cache.max_entry())
}

fn whole(source: Source, size: u64) -> io::Result<Served> {
    Ok(match source {
        Source::Memory(b) => {
            let n = b.len() as u64;
            Served::Whole(full(b), n, None, None)
        }
        Source::File(o) => {
            let (body, file) = stream(o, 0, size)?;
            Served::Whole(body, size, None, Some(file))
        }
    })
}

fn ranged(source: Source, start: u64, end: u64) -> io::Result<Served> {
    match source {
        Source::Memory(b) => {
            let (s, e) = (start as usize, (end as usize + 1).min(b.len()));
            if s >= e {
                return Err(io::Error::other("file changed while serving a range"));
            }
            Ok(Served::Partial(full(b.slice(s..e)), (e - s) as u64, None))
        }
        Source::File(o) => {
            let len = end - start + 1;
            let (body, file) = stream(o, start, len)?;
            Ok(Served::Partial(body, len, Some(file)))
        }
    }
}

async fn encoded(
    cache: &ContentCache,
    key: FileKey,
    source: Source,
    enc: Encoding,
) -> io::Result<Served> {
    if let Some(b) = cache.get(key, Variant::Encoded(enc)) {
        let n = b.len() as u64;
        return Ok(Served::Whole(full(b), n, Some(enc), None));
    }
    let plain = match source {
        Source::Memory(b) => b,
        Source::File(o) => Bytes::from(
            tokio::task::spawn_blocking(move || read_all(&o))
                .await
                .map_err(io::Error::other)??,
        ),
    };
    let packed = tokio::task::spawn_blocking(move || compress::compress(&plain, enc))
        .await
        .map_err(io::Error::other)??;
    let packed = Bytes::from(packed);
    cache.insert(key, Variant::Encoded(enc), packed.clone());
    let n = packed.len() as u64;
    Ok(Served::Whole(full(packed), n, Some(enc), None))
}

/// Stream `len` bytes from `start` in [`CHUNK`]s (reads in the blocking pool), and
/// the same bytes as a [`FileRange`] (a duplicate descriptor) for `sendfile`.
fn stream(o: Opened, start: u64, len: u64) -> io::Result<(Body, FileRange)> {
    let range = FileRange {
        fd: std::sync::Arc::new(o.fd.try_clone()?),
        start,
        len,
    };
    let mut file = std::fs::File::from(o.fd);
    file.seek(SeekFrom::Start(start))?;
    let file = tokio::fs::File::from_std(file).take(len);
    let chunks = tokio_util::io::ReaderStream::with_capacity(file, CHUNK);
    Ok((StreamBody::new(chunks.map_ok(Frame::data)).boxed(), range))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_parse_per_rfc_9110() {
        assert_eq!(parse_range("bytes=0-9", 100), Ok(Some((0, 9))));
        assert_eq!(parse_range("bytes=90-", 100), Ok(Some((90, 99))));
        assert_eq!(parse_range("bytes=-10", 100), Ok(Some((90, 99))));
        assert_eq!(parse_range("bytes=-200", 100), Ok(Some((0, 99))));
        assert_eq!(parse_range("bytes=50-500", 100), Ok(Some((50, 99))));
        assert_eq!(parse_range("bytes=100-", 100), Err(Unsatisfiable));
        assert_eq!(parse_range("bytes=-0", 100), Err(Unsatisfiable));
        assert_eq!(parse_range("bytes=0-1,5-6", 100), Ok(None));
        assert_eq!(parse_range("items=0-1", 100), Ok(None));
        assert_eq!(parse_range("bytes=5-1", 100), Ok(None));
        assert_eq!(parse_range("bytes=x-1", 100), Ok(None));
    }
}
