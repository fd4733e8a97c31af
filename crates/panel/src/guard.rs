//! The two middlewares every panel route passes: [`security_headers`] (the strict
//! Content-Security-Policy and its companions on every answer) and [`csrf_guard`]
//! (finds the session of the cookie, ends idle ones, and refuses any POST whose
//! form lacks the session's CSRF token, before a handler runs).

use std::time::Instant;

use axum::body::Body;
use axum::extract::{FromRequestParts, Request, State};
use axum::middleware::Next;
use axum::response::Response;
use http::request::Parts;
use http::{header, HeaderValue, Method, StatusCode};

use crate::session::{self, Session};
use crate::{views, Panel};

/// The Content-Security-Policy of every panel answer: only our own scripts,
/// styles, images and form targets; no inline code, no framing.
pub const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; \
connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'; object-src 'none'";

/// Largest form body the panel reads.
const MAX_FORM: usize = 1024 * 1024;

/// Set the security headers on every answer (pages, redirects, errors, files).
pub async fn security_headers(req: Request, next: Next) -> Response {
    let mut res = next.run(req).await;
    let h = res.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    if !h.contains_key(header::CACHE_CONTROL) {
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    res
}

/// The signed-in session of a request, if any (put there by [`csrf_guard`]).
#[derive(Debug, Clone)]
pub struct Signed {
    /// The session id (the cookie's value).
    pub id: String,
    /// What the session holds.
    pub session: Session,
}

#[derive(Debug, Clone)]
struct Current(Option<Signed>);

/// Resolve the session cookie, end an idle session (revoking its token), and
/// refuse with 403 any POST whose form field `csrf` is not the session's token (or,
/// for the sign-in form, the token of its own cookie).
pub async fn csrf_guard(State(panel): State<Panel>, req: Request, next: Next) -> Response {
    let now = Instant::now();
    let signed = match session::cookie(req.headers(), session::COOKIE) {
        Some(id) => match panel.sessions.touch(id, now) {
            Ok(Some(s)) => Some(Signed {
                id: id.to_owned(),
                session: s,
            }),
            Ok(None) => None,
            Err(idle) => {
                let ext = (panel.pass_ext)(req.extensions());
                revoke(&panel, *idle, ext);
                None
            }
        },
        None => None,
    };
    let (mut parts, body) = req.into_parts();
    if parts.method == Method::GET || parts.method == Method::HEAD {
        parts.extensions.insert(Current(signed));
        return next.run(Request::from_parts(parts, body)).await;
    }
    // A file upload (multipart) carries its token in the form's URL, and its
    // body goes to the handler unread (it has a limit of its own).
    let multipart = parts
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("multipart/form-data"));
    let (submitted, body) = if multipart {
        let q = parts.uri.query().unwrap_or_default().as_bytes();
        (form_field(q, "csrf"), body)
    } else {
        let Ok(bytes) = axum::body::to_bytes(body, MAX_FORM).await else {
            return views::error_page(
                StatusCode::PAYLOAD_TOO_LARGE,
                "The form is too large.",
                None,
            );
        };
        (form_field(&bytes, "csrf"), Body::from(bytes))
    };
    let expected = if parts.uri.path() == "/login" {
        session::cookie(&parts.headers, session::LOGIN_COOKIE).map(str::to_owned)
    } else {
        signed.as_ref().map(|s| s.session.csrf.clone())
    };
    let ok = expected.is_some_and(|e| session::csrf_matches(&e, submitted.as_deref()));
    if !ok {
        tracing::info!(path = %parts.uri.path(), "panel POST refused: missing or wrong CSRF token");
        return views::error_page(
            StatusCode::FORBIDDEN,
            "This form was not sent from a page of this panel, or the page is too old. Reload the page and try again.",
            signed.as_ref().map(|s| &s.session),
        );
    }
    parts.extensions.insert(Current(signed));
    next.run(Request::from_parts(parts, body)).await
}

/// The first value of `name` in an urlencoded form body.
pub fn form_field(body: &[u8], name: &str) -> Option<String> {
    form_urlencoded::parse(body)
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

/// Revoke a session's API tokens (its own and, while acting as a customer, the
/// impersonation token) in the background (sign-out waits for it instead).
pub fn revoke(panel: &Panel, s: Session, ext: http::Extensions) {
    let api = panel.api.clone();
    tokio::spawn(async move { revoke_now(&api, &s, &ext).await });
}

/// Revoke every API token of session `s` now (each with itself).
pub async fn revoke_now(api: &crate::api::Api, s: &Session, ext: &http::Extensions) {
    for (token, id) in s.tokens() {
        let path = format!("/v1/tokens/{}", crate::api::seg(&id));
        let r = api
            .call(Method::DELETE, &path, Some(&token), None, ext)
            .await;
        if !r.status.is_success() && r.status != StatusCode::UNAUTHORIZED {
            tracing::warn!(account = %s.account, status = %r.status, "cannot revoke an ended panel session's token");
        }
    }
}

/// What a panel handler gets: the session (if signed in) and the request's
/// extensions, passed on to the API.
pub struct Ctx {
    /// The signed-in session.
    pub signed: Option<Signed>,
    /// What the API needs of the browser request's extensions (its client
    /// address), chosen by [`crate::PassExtensions`].
    pub ext: http::Extensions,
}

impl FromRequestParts<Panel> for Ctx {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, panel: &Panel) -> Result<Self, Self::Rejection> {
        let signed = parts.extensions.get::<Current>().and_then(|c| c.0.clone());
        let ext = (panel.pass_ext)(&parts.extensions);
        Ok(Ctx { signed, ext })
    }
}

impl Ctx {
    /// The session, if signed in (pages answer a redirect to `/login` otherwise).
    pub fn require(&self) -> Option<&Signed> {
        self.signed.as_ref()
    }
}
