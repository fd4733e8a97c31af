//! The web panel (issue 18): server-rendered pages (askama templates, htmx vendored
//! for boosted navigation) served by the controller on its own TLS port at `/`.
//!
//! The panel holds no rules of its own: every page and every form is one or more
//! calls of the controller's REST API router, made in-process with the signed-in
//! account's API token ([`api::Api`]), so scopes, limits and validation are the
//! API's, and an API validation error is shown next to the form field it names.
//! The controller mounts [`router`] with its API router as the fallback service:
//! `/v1/...` keeps answering as before.
//!
//! Security: a strict Content-Security-Policy on every page (`default-src 'self'`,
//! no inline script or style, htmx configured with `allowEval: false` and without
//! its indicator styles), sessions as an opaque HttpOnly, Secure, SameSite=Strict
//! cookie mapped server side to an API token ([`session`]), a CSRF token checked
//! on every POST by one middleware ([`guard`]).

#![forbid(unsafe_code)]

pub mod account;
pub mod api;
pub mod forms;
pub mod guard;
pub mod pages;
pub mod session;
pub mod signin;
pub mod views;

use std::sync::Arc;

use axum::routing::get;
use axum::Router;

/// The version of the vendored htmx (`static/htmx.min.js`, from the npm package
/// `htmx.org`), part of its URL so browsers never mix versions from a cache.
pub const HTMX_VERSION: &str = "2.0.11";

/// Picks, from a browser request's extensions, those an API call made for it
/// carries (the controller's client address, which its throttles key on). Never
/// all of them: axum keeps a route's path parameters there, and the API's router
/// would add its own to the panel's.
pub type PassExtensions = fn(&http::Extensions) -> http::Extensions;

/// The panel's shared state: the API it calls and its sessions.
#[derive(Clone)]
pub struct Panel {
    /// Which request extensions API calls carry.
    pub pass_ext: PassExtensions,
    /// The controller's API router, called in-process.
    pub api: api::Api,
    /// Signed-in sessions.
    pub sessions: Arc<session::Sessions>,
}

/// The panel's routes, with `api` (the controller's whole API router) as the
/// fallback for every other path; `pass_ext` picks the extensions API calls carry.
pub fn router(api: Router, pass_ext: PassExtensions) -> Router {
    let panel = Panel {
        pass_ext,
        api: api::Api::new(api.clone()),
        sessions: Arc::new(session::Sessions::new(session::IDLE_TIMEOUT)),
    };
    Router::new()
        .route("/", get(pages::dashboard))
        .route("/login", get(signin::login_page).post(signin::login))
        .route("/logout", get(pages::home).post(signin::logout))
        .route("/domains", get(pages::domains).post(pages::add_domain))
        .route("/domains/{name}", get(pages::domain))
        .route(
            "/domains/{name}/mailboxes",
            get(pages::to_domain).post(pages::add_mailbox),
        )
        .route(
            "/domains/{name}/dns",
            get(pages::to_domain).post(pages::add_record),
        )
        .route("/account", get(account::account))
        .route("/account/totp", get(pages::home).post(account::enroll))
        .route(
            "/account/totp/confirm",
            get(pages::home).post(account::confirm),
        )
        .route(
            "/account/totp/disable",
            get(pages::home).post(account::disable),
        )
        .route("/act-as", get(pages::home).post(account::act_as))
        .route("/act-as/stop", get(pages::home).post(account::stop_acting))
        .route(views::HTMX_PATH, get(views::htmx))
        .route(views::CSS_PATH, get(views::css))
        .route_layer(axum::middleware::from_fn_with_state(
            panel.clone(),
            guard::csrf_guard,
        ))
        .route_layer(axum::middleware::from_fn(guard::security_headers))
        .with_state(panel)
        .fallback_service(api)
}
