//! Request routing: host → site (unknown host → plain 404), SNI/Host consistency,
//! HTTP → HTTPS redirect, path checks, and the choice between a static file, a
//! directory redirect or index, and PHP (script, `PATH_INFO`, front controller).

use std::borrow::Cow;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::os::fd::OwnedFd;
use std::sync::Arc;

use http::{header, Method, Request, Response, StatusCode};
use tokio::sync::watch;

use crate::body::{self, plain, redirect, Body, PendingLog, ReqBody};
use crate::cache::ContentCache;
use crate::files::Source;
use crate::fsafe::{self, Kind, OpenError, Opened, Root};
use crate::hot::HotFiles;
use crate::log::{AccessRecord, Logs};
use crate::path::{self, PathError, ReqPath};
use crate::plan::{Plan, Site};
use crate::{autoconfig, files, php};

/// State shared by every connection of a server.
pub(crate) struct Shared {
    pub plan: watch::Receiver<Arc<Plan>>,
    pub cache: ContentCache,
    pub hot: HotFiles,
    pub logs: Logs,
    /// The HTTPS port redirects point to (omitted from URLs when 443).
    pub https_port: Option<u16>,
}

/// What is known about the connection a request came on.
#[derive(Debug)]
pub(crate) struct Conn {
    pub remote: SocketAddr,
    pub local: SocketAddr,
    /// Came over TLS.
    pub tls: bool,
    /// The SNI name of the TLS handshake (lowercase).
    pub sni: Option<String>,
}

/// The host a request is for: `:authority` (HTTP/2, absolute-form) or `Host`,
/// lowercase, without port or trailing dot (borrowed when already so).
fn request_host<B>(req: &Request<B>) -> Option<Cow<'_, str>> {
    let raw = match req.uri().host() {
        Some(h) => h,
        None => host_of(req.headers().get(header::HOST)?.to_str().ok()?)?,
    };
    let host = raw.trim_end_matches('.');
    if host.is_empty() {
        return None;
    }
    Some(if host.bytes().any(|b| b.is_ascii_uppercase()) {
        Cow::Owned(host.to_ascii_lowercase())
    } else {
        Cow::Borrowed(host)
    })
}

/// The host part of a `Host` header value (without the port).
fn host_of(value: &str) -> Option<&str> {
    if !value.contains(':') && !value.contains('@') && !value.is_empty() {
        // The common case, a plain name: still checked as an authority below only
        // when it has a port or brackets.
        return value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.' || b == b'_')
            .then_some(value);
    }
    let auth = value.parse::<http::uri::Authority>().ok()?;
    let host = auth.host();
    // `host()` borrows from `auth`; find the same text inside `value`.
    let start = value.find(host)?;
    Some(&value[start..start + host.len()])
}

/// `Strict-Transport-Security` of a site with HSTS on: one year, the site's own
/// host names only (no `includeSubDomains`: other customers' subdomains may not
/// have HTTPS), no `preload` (a customer opts in to the preload list themselves).
static HSTS: http::HeaderValue = http::HeaderValue::from_static("max-age=31536000");

/// The path prefix of ACME HTTP-01 challenges (RFC 8555 section 8.3).
const ACME_PREFIX: &str = "/.well-known/acme-challenge/";

/// Answer one request (for hyper). Never fails: every problem is an HTTP status.
/// The access-log line is written when the response body is done.
pub(crate) async fn handle(
    shared: Arc<Shared>,
    conn: Arc<Conn>,
    req: Request<ReqBody>,
) -> Result<Response<Body>, Infallible> {
    let (resp, log) = respond(&shared, &conn, req).await;
    Ok(match log {
        Some(p) => body::logged(resp, &shared.logs, p.domain, p.record),
        None => resp,
    })
}

/// Answer one request, and say what its access-log line needs (when access logs
/// are on and the request reached a site); the caller writes the line when the
/// response is sent. Every problem is an HTTP status.
pub(crate) async fn respond(
    shared: &Shared,
    conn: &Conn,
    req: Request<ReqBody>,
) -> (Response<Body>, Option<PendingLog>) {
    let plan = shared.plan.borrow().clone();
    let Some(host) = request_host(&req) else {
        return (plain(StatusCode::BAD_REQUEST, "missing host\n"), None);
    };
    // ACME HTTP-01 (issue 17): answered before the site's redirect to HTTPS, its
    // files and PHP, on HTTP and HTTPS alike (a CA may follow a redirect).
    if let Some(token) = req.uri().path().strip_prefix(ACME_PREFIX) {
        if let Some(key_auth) = plan.acme_answer(&host, token) {
            let mut r = Response::new(body::full(key_auth.to_owned()));
            r.headers_mut().insert(
                header::CONTENT_TYPE,
                http::HeaderValue::from_static("application/octet-stream"),
            );
            return (r, None);
        }
    }
    // `autoconfig.<name>` / `autodiscover.<name>`: only the mail client documents.
    let (site, prefixed) = match plan.site_for_host(&host) {
        Some(s) => (s.clone(), false),
        None => match autoconfig::prefixed_site(&plan, &host) {
            Some(s) => (s.clone(), true),
            None => return (plain(StatusCode::NOT_FOUND, "not found\n"), None),
        },
    };
    drop(host);
    if let Some(sni) = &conn.sni {
        let same = plan
            .site_for_host(sni)
            .is_some_and(|s| Arc::ptr_eq(s, &site));
        if !same {
            let r = plain(StatusCode::MISDIRECTED_REQUEST, "misdirected request\n");
            return (r, None);
        }
    }
    let record = shared
        .logs
        .access_enabled()
        .then(|| access_record(conn, &req));
    let mut resp = match autoconfig::wanted(&site, req.method(), req.uri().path()) {
        Some(doc) => autoconfig::answer(&site, doc, req).await,
        None if prefixed => plain(StatusCode::NOT_FOUND, "not found\n"),
        None => site_response(shared, conn, &site, req).await,
    };
    if conn.tls && site.hsts && site.cert.is_some() {
        resp.headers_mut()
            .insert(header::STRICT_TRANSPORT_SECURITY, HSTS.clone());
    }
    let log = record.map(|record| PendingLog {
        domain: site.domain.as_str().into(),
        record,
    });
    (resp, log)
}

fn access_record<B>(conn: &Conn, req: &Request<B>) -> AccessRecord {
    let h = |n: header::HeaderName| {
        req.headers()
            .get(n)
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
    };
    let target = req
        .uri()
        .path_and_query()
        .map(|p| p.as_str())
        .unwrap_or("/");
    AccessRecord {
        remote: conn.remote,
        request_line: format!("{} {target} {:?}", req.method(), req.version()),
        status: 0,
        bytes: 0,
        referer: h(header::REFERER),
        user_agent: h(header::USER_AGENT),
    }
}

async fn site_response(
    shared: &Shared,
    conn: &Conn,
    site: &Arc<Site>,
    req: Request<ReqBody>,
) -> Response<Body> {
    if !conn.tls && site.https_redirect && site.cert.is_some() {
        return to_https(shared, &req);
    }
    let root = match site.root_cache.open(&site.site_dir) {
        Ok(r) => r,
        Err(e) => return root_unusable(shared, site, e),
    };
    let head = req.method() == Method::HEAD;
    let get_or_head = head || req.method() == Method::GET;
    if get_or_head && root.id != 0 {
        if let Some(hot) = shared.hot.get(root.id, req.uri().path()) {
            let body = Source::Memory(hot.body.clone());
            return files::respond(&shared.cache, &hot.meta, body, req.headers(), head).await;
        }
    }
    let opened_ns = fsafe::monotonic_ns();
    let rpath = match path::parse(req.uri().path()) {
        Ok(p) => p,
        Err(PathError::Malformed) => return plain(StatusCode::BAD_REQUEST, "bad request\n"),
        Err(PathError::Forbidden) => return plain(StatusCode::NOT_FOUND, "not found\n"),
    };
    let (root, target) = match resolve_with_retry(site, root, &rpath) {
        Ok(r) => r,
        Err(e) => return root_unusable(shared, site, e),
    };
    match target {
        Target::Static(o) => {
            if !get_or_head {
                let mut r = plain(StatusCode::METHOD_NOT_ALLOWED, "method not allowed\n");
                r.headers_mut()
                    .insert(header::ALLOW, http::HeaderValue::from_static("GET, HEAD"));
                return r;
            }
            let ext = rpath.extension();
            let ext = resolved_ext(&o, ext);
            let prepared = match files::prepare(&shared.cache, o.file, ext.as_deref()).await {
                Ok(p) => p,
                Err(e) => return files::read_failed(&e),
            };
            if let (Source::Memory(body), true) = (&prepared.source, root.id != 0) {
                let meta = prepared.meta.clone();
                let path = req.uri().path();
                shared
                    .hot
                    .insert(root.id, path, opened_ns, meta, body.clone());
            }
            let (meta, source) = (prepared.meta, prepared.source);
            files::respond(&shared.cache, &meta, source, req.headers(), head).await
        }
        Target::AddSlash => {
            let mut loc = format!("{}/", req.uri().path());
            if let Some(q) = req.uri().query() {
                loc.push('?');
                loc.push_str(q);
            }
            redirect(StatusCode::MOVED_PERMANENTLY, &loc)
        }
        Target::Php(script) => match &site.php {
            Some(p) => {
                let host = request_host(&req).map(Cow::into_owned).unwrap_or_default();
                php::serve(shared, conn, site, p, &root.fd, script, &host, req).await
            }
            None => plain(StatusCode::NOT_FOUND, "not found\n"),
        },
        Target::NotFound => plain(StatusCode::NOT_FOUND, "not found\n"),
        Target::Forbidden => plain(StatusCode::FORBIDDEN, "forbidden\n"),
        Target::Escape => {
            site_log(shared, site).error(format!(
                "refused a path leaving the site root: {}",
                rpath.absolute()
            ));
            plain(StatusCode::NOT_FOUND, "not found\n")
        }
        Target::Error(e) => {
            site_log(shared, site).error(format!("opening {}: {e}", rpath.absolute()));
            plain(StatusCode::INTERNAL_SERVER_ERROR, "internal error\n")
        }
    }
}

/// The site's error log (a copy goes to the server's).
fn site_log(shared: &Shared, site: &Site) -> crate::log::SiteLog {
    shared
        .logs
        .site(site.domain.as_str().into(), site.domain.as_str())
}

fn root_unusable(shared: &Shared, site: &Site, e: OpenError) -> Response<Body> {
    let docroot = site.docroot.as_deref().unwrap_or(".");
    site_log(shared, site).error(format!(
        "content root {} (document root {docroot}) not usable: {e:?}",
        site.root.display()
    ));
    plain(StatusCode::NOT_FOUND, "not found\n")
}

/// Resolve the path beneath the site root. A miss is retried once on a freshly
/// opened root, in case the cached release directory was deleted after a swap.
fn resolve_with_retry(site: &Site, root: Root, p: &ReqPath) -> Result<(Root, Target), OpenError> {
    let php = site.php.is_some();
    let target = resolve(&root.fd, p, php);
    if !matches!(target, Target::NotFound) {
        return Ok((root, target));
    }
    site.root_cache.invalidate();
    let root = site.root_cache.open(&site.site_dir)?;
    let target = resolve(&root.fd, p, php);
    Ok((root, target))
}

/// The extension that picks the MIME type: the index file's when a directory was
/// asked for, else the request path's.
fn resolved_ext(o: &StaticFile, from_path: Option<String>) -> Option<String> {
    match o.index {
        Some(name) => name.rsplit_once('.').map(|(_, e)| e.to_string()),
        None => from_path,
    }
}

fn to_https<B>(shared: &Shared, req: &Request<B>) -> Response<Body> {
    let Some(host) = request_host(req) else {
        return plain(StatusCode::BAD_REQUEST, "missing host\n");
    };
    let target = req
        .uri()
        .path_and_query()
        .map(|p| p.as_str())
        .unwrap_or("/");
    let authority = match shared.https_port {
        Some(443) | None => host.to_string(),
        Some(p) => format!("{host}:{p}"),
    };
    redirect(
        StatusCode::MOVED_PERMANENTLY,
        &format!("https://{authority}{target}"),
    )
}

/// A static file to serve, and the index file name when a directory was asked for.
pub(crate) struct StaticFile {
    pub file: Opened,
    pub index: Option<&'static str>,
}

/// A PHP script to run.
pub(crate) struct Script {
    /// The open script (its real path becomes `SCRIPT_FILENAME`).
    pub file: Opened,
    /// URL path of the script, e.g. `/index.php`.
    pub script_name: String,
    /// What follows the script in the URL (`/a/b` of `/index.php/a/b`), maybe empty.
    pub path_info: String,
}

enum Target {
    Static(StaticFile),
    Php(Script),
    AddSlash,
    NotFound,
    Forbidden,
    Escape,
    Error(String),
}

const STATIC_INDEX: [&str; 2] = ["index.html", "index.htm"];
const FRONT_CONTROLLER: &str = "index.php";

fn resolve(root: &OwnedFd, p: &ReqPath, php: bool) -> Target {
    let rel = p.relative();
    match fsafe::open_beneath(root, &rel) {
        Ok(o) => match o.kind() {
            Kind::File if php && p.extension().as_deref() == Some("php") => Target::Php(Script {
                file: o,
                script_name: p.absolute(),
                path_info: String::new(),
            }),
            Kind::File => Target::Static(StaticFile {
                file: o,
                index: None,
            }),
            Kind::Dir if !p.trailing_slash && !p.segments.is_empty() => Target::AddSlash,
            Kind::Dir => directory_index(root, p, php),
            Kind::Other => Target::NotFound,
        },
        Err(OpenError::NotFound) if php => php_fallback(root, p),
        Err(e) => open_error(e),
    }
}

fn open_error(e: OpenError) -> Target {
    match e {
        OpenError::NotFound => Target::NotFound,
        OpenError::Escape => Target::Escape,
        OpenError::Denied => Target::Forbidden,
        OpenError::Other(errno) => Target::Error(errno.to_string()),
    }
}

fn join(dir: &str, name: &str) -> String {
    if dir.is_empty() {
        name.to_string()
    } else {
        format!("{dir}/{name}")
    }
}

fn directory_index(root: &OwnedFd, p: &ReqPath, php: bool) -> Target {
    let dir = p.relative();
    for name in STATIC_INDEX {
        match fsafe::open_beneath(root, &join(&dir, name)) {
            Ok(o) if o.kind() == Kind::File => {
                return Target::Static(StaticFile {
                    file: o,
                    index: Some(name),
                })
            }
            Ok(_) | Err(OpenError::NotFound) => {}
            Err(e) => return open_error(e),
        }
    }
    if !php {
        return Target::Forbidden;
    }
    match fsafe::open_beneath(root, &join(&dir, FRONT_CONTROLLER)) {
        Ok(o) if o.kind() == Kind::File => Target::Php(Script {
            file: o,
            script_name: format!("{}{FRONT_CONTROLLER}", p.absolute()),
            path_info: String::new(),
        }),
        Ok(_) | Err(OpenError::NotFound) => front_controller(root),
        Err(e) => open_error(e),
    }
}

/// A missing path on a PHP site: `/x.php/more` runs `/x.php` with `PATH_INFO`
/// `/more`; a missing `.php` is a 404; anything else goes to `/index.php` (pretty
/// URLs, as WordPress needs).
fn php_fallback(root: &OwnedFd, p: &ReqPath) -> Target {
    if let Some(i) = p.segments.iter().position(|s| s.ends_with(".php")) {
        if i + 1 < p.segments.len() {
            let script = p.segments[..=i].join("/");
            return match fsafe::open_beneath(root, &script) {
                Ok(o) if o.kind() == Kind::File => Target::Php(Script {
                    file: o,
                    script_name: format!("/{script}"),
                    path_info: format!("/{}", p.segments[i + 1..].join("/")),
                }),
                Ok(_) => Target::NotFound,
                Err(e) => open_error(e),
            };
        }
        return Target::NotFound;
    }
    front_controller(root)
}

fn front_controller(root: &OwnedFd) -> Target {
    match fsafe::open_beneath(root, FRONT_CONTROLLER) {
        Ok(o) if o.kind() == Kind::File => Target::Php(Script {
            file: o,
            script_name: format!("/{FRONT_CONTROLLER}"),
            path_info: String::new(),
        }),
        Ok(_) => Target::NotFound,
        Err(e) => open_error(e),
    }
}
