//! PHP requests: the CGI/FastCGI parameters PHP-FPM expects, the request body
//! (streamed when its length is known, collected up to a limit otherwise), and the
//! translation of the FastCGI answer into an HTTP response. A FastCGI failure is a
//! `502` and one error-log line naming the site, the socket and the cause.

use std::os::fd::OwnedFd;
use std::sync::Arc;

use http::{header, HeaderMap, Request, Response, StatusCode, Version};
use http_body_util::{BodyExt, Limited};
use hyper::body::Body as _;

use crate::body::ReqBody;

use crate::body::{plain, Body};
use crate::fastcgi::{self, RequestBody};
use crate::handler::{Conn, Script, Shared};
use crate::plan::{PhpSite, Site};

/// Largest request body passed to PHP when its length is declared.
pub const MAX_BODY: u64 = 1 << 30;
/// Largest body of unknown length (chunked) collected before passing it on.
pub const MAX_CHUNKED_BODY: usize = 64 << 20;

/// Run `script` of `site` for `req`.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn serve(
    shared: &Shared,
    conn: &Conn,
    site: &Arc<Site>,
    php: &PhpSite,
    root: &OwnedFd,
    script: Script,
    host: &str,
    req: Request<ReqBody>,
) -> Response<Body> {
    let log = shared.logs.site(
        site.domain.as_str().into(),
        format!("{} [{}]", site.domain, php.user),
    );
    let (script_path, doc_root) = match (script.file.real_path(), real_dir(root)) {
        (Ok(s), Ok(d)) => (s, d),
        (Err(e), _) | (_, Err(e)) => {
            log.error(format!("resolving the script path: {e}"));
            return plain(StatusCode::INTERNAL_SERVER_ERROR, "internal error\n");
        }
    };
    let (parts, incoming) = req.into_parts();
    let (body, length) = match request_body(incoming).await {
        Ok(b) => b,
        Err(status) => return plain(status, "request body refused\n"),
    };
    let params = cgi_params(&CgiInput {
        conn,
        host,
        parts: &parts,
        script: &script,
        script_path: &script_path.to_string_lossy(),
        doc_root: &doc_root.to_string_lossy(),
        length,
    });
    let res = fastcgi::execute(&php.socket, &params, body, log.clone()).await;
    match res {
        Ok(r) => {
            let mut resp = Response::new(BodyExt::boxed(r.body));
            *resp.status_mut() = r.status;
            *resp.headers_mut() = r.headers;
            resp
        }
        Err(e) => {
            log.error(format!("FastCGI to {} failed: {e}", php.socket.display()));
            plain(StatusCode::BAD_GATEWAY, "bad gateway\n")
        }
    }
}

fn real_dir(root: &OwnedFd) -> std::io::Result<std::path::PathBuf> {
    use std::os::fd::AsRawFd;
    std::fs::read_link(format!("/proc/self/fd/{}", root.as_raw_fd()))
}

/// The body to pass on and its length (for `CONTENT_LENGTH`).
async fn request_body(incoming: ReqBody) -> Result<(RequestBody, u64), StatusCode> {
    if let Some(n) = incoming.size_hint().exact() {
        if n > MAX_BODY {
            return Err(StatusCode::PAYLOAD_TOO_LARGE);
        }
        return Ok((RequestBody::Stream(incoming), n));
    }
    match Limited::new(incoming, MAX_CHUNKED_BODY).collect().await {
        Ok(c) => {
            let b = c.to_bytes();
            let n = b.len() as u64;
            Ok((RequestBody::Buffered(b), n))
        }
        Err(_) => Err(StatusCode::PAYLOAD_TOO_LARGE),
    }
}

struct CgiInput<'a> {
    conn: &'a Conn,
    host: &'a str,
    parts: &'a http::request::Parts,
    script: &'a Script,
    script_path: &'a str,
    doc_root: &'a str,
    length: u64,
}

fn protocol(v: Version) -> &'static str {
    match v {
        Version::HTTP_10 => "HTTP/1.0",
        Version::HTTP_2 => "HTTP/2.0",
        Version::HTTP_3 => "HTTP/3.0",
        _ => "HTTP/1.1",
    }
}

/// The FastCGI parameters of a request (CGI/1.1 meta-variables plus what PHP-FPM
/// and PHP applications expect).
fn cgi_params(i: &CgiInput<'_>) -> Vec<(String, String)> {
    let uri = &i.parts.uri;
    let request_uri = uri.path_and_query().map(|p| p.as_str()).unwrap_or("/");
    let s = |v: &str| v.to_string();
    let mut p: Vec<(String, String)> = vec![
        (s("GATEWAY_INTERFACE"), s("CGI/1.1")),
        (s("SERVER_SOFTWARE"), s("hostplane")),
        (s("REDIRECT_STATUS"), s("200")),
        (s("REQUEST_METHOD"), s(i.parts.method.as_str())),
        (s("REQUEST_URI"), s(request_uri)),
        (s("DOCUMENT_URI"), s(uri.path())),
        (s("QUERY_STRING"), s(uri.query().unwrap_or(""))),
        (s("SCRIPT_NAME"), i.script.script_name.clone()),
        (s("SCRIPT_FILENAME"), s(i.script_path)),
        (
            s("PHP_SELF"),
            format!("{}{}", i.script.script_name, i.script.path_info),
        ),
        (s("DOCUMENT_ROOT"), s(i.doc_root)),
        (s("SERVER_PROTOCOL"), s(protocol(i.parts.version))),
        (
            s("REQUEST_SCHEME"),
            s(if i.conn.tls { "https" } else { "http" }),
        ),
        (s("SERVER_NAME"), s(i.host)),
        (s("SERVER_ADDR"), i.conn.local.ip().to_string()),
        (s("SERVER_PORT"), i.conn.local.port().to_string()),
        (s("REMOTE_ADDR"), i.conn.remote.ip().to_string()),
        (s("REMOTE_PORT"), i.conn.remote.port().to_string()),
        (s("CONTENT_LENGTH"), i.length.to_string()),
    ];
    if !i.script.path_info.is_empty() {
        p.push((s("PATH_INFO"), i.script.path_info.clone()));
    }
    if i.conn.tls {
        p.push((s("HTTPS"), s("on")));
    }
    if let Some(ct) = i.parts.headers.get(header::CONTENT_TYPE) {
        p.push((
            s("CONTENT_TYPE"),
            String::from_utf8_lossy(ct.as_bytes()).into_owned(),
        ));
    }
    p.extend(http_vars(&i.parts.headers, i.host));
    p
}

/// `HTTP_*` variables for the request headers. `Proxy` is never passed (httpoxy),
/// nor the body headers CGI carries separately; `HTTP_HOST` is always set (HTTP/2
/// requests carry the host in `:authority`).
fn http_vars(headers: &HeaderMap, host: &str) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Vec::new();
    let mut has_host = false;
    for name in headers.keys() {
        if matches!(name.as_str(), "proxy" | "content-type" | "content-length") {
            continue;
        }
        let sep = if name == header::COOKIE { "; " } else { ", " };
        let value = headers
            .get_all(name)
            .iter()
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
            .collect::<Vec<_>>()
            .join(sep);
        let var = format!(
            "HTTP_{}",
            name.as_str().to_ascii_uppercase().replace('-', "_")
        );
        has_host |= var == "HTTP_HOST";
        out.push((var, value));
    }
    if !has_host {
        out.push(("HTTP_HOST".into(), host.to_string()));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn http_vars_skip_proxy_and_join_cookies() {
        let mut h = HeaderMap::new();
        h.insert("proxy", "http://evil".parse().unwrap());
        h.append("cookie", "a=1".parse().unwrap());
        h.append("cookie", "b=2".parse().unwrap());
        h.insert("x-forwarded-for", "1.2.3.4".parse().unwrap());
        h.insert("content-type", "text/plain".parse().unwrap());
        let vars = http_vars(&h, "example.com");
        let get = |k: &str| vars.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
        assert_eq!(get("HTTP_PROXY"), None);
        assert_eq!(get("HTTP_COOKIE"), Some("a=1; b=2"));
        assert_eq!(get("HTTP_X_FORWARDED_FOR"), Some("1.2.3.4"));
        assert_eq!(get("HTTP_HOST"), Some("example.com"));
        assert_eq!(get("HTTP_CONTENT_TYPE"), None);
    }
}
