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
pub mod flow;
pub mod forms;
pub mod forms_sites;
pub mod guard;
pub mod map;
pub mod pages;
pub mod pages_admin;
pub mod pages_audit;
pub mod pages_db;
pub mod pages_mail;
pub mod pages_sites;
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

/// The sites pages ([`pages_sites`]).
fn sites_routes() -> Router<Panel> {
    use pages_sites as ps;
    Router::new()
        .route("/sites", get(ps::sites).post(ps::add_site))
        .route("/sites/{domain}", get(ps::site))
        .route("/sites/{domain}/logs", get(ps::logs))
        .route(
            "/sites/{domain}/settings",
            get(ps::to_site).post(ps::settings),
        )
        .route(
            "/sites/{domain}/certificate",
            get(ps::to_site).post(ps::certificate),
        )
        .route("/sites/{domain}/cron", get(ps::to_site).post(ps::add_cron))
        .route(
            "/sites/{domain}/cron/{id}/delete",
            get(ps::to_site_of_job).post(ps::delete_cron),
        )
        .route(
            "/sites/{domain}/rollback",
            get(ps::to_site).post(ps::rollback),
        )
        .route(
            "/sites/{domain}/release",
            get(ps::to_site)
                .post(ps::release)
                .layer(axum::extract::DefaultBodyLimit::max(
                    ps::MAX_RELEASE + (1 << 20),
                )),
        )
}

/// The mail pages ([`pages_mail`]).
fn mail_routes() -> Router<Panel> {
    use pages_mail as pm;
    Router::new()
        .route("/mail/{domain}", get(pm::mail))
        .route(
            "/mail/{domain}/aliases",
            get(pm::to_mail).post(pm::add_alias),
        )
        .route(
            "/mail/{domain}/aliases/{address}/edit",
            get(pm::to_mail_of).post(pm::edit_alias),
        )
        .route(
            "/mail/{domain}/aliases/{address}/delete",
            get(pm::to_mail_of).post(pm::delete_alias),
        )
        .route(
            "/mail/{domain}/mailboxes/{address}/edit",
            get(pm::to_mail_of).post(pm::edit_mailbox),
        )
        .route(
            "/mail/{domain}/mailboxes/{address}/delete",
            get(pm::to_mail_of).post(pm::delete_mailbox),
        )
}

/// The databases and FTP pages ([`pages_db`]).
fn db_routes() -> Router<Panel> {
    use pages_db as pd;
    Router::new()
        .route("/databases", get(pd::databases).post(pd::add_database))
        .route(
            "/databases/{name}/delete",
            get(pd::to_databases_of).post(pd::delete_database),
        )
        .route("/databases/users", get(pd::to_databases).post(pd::add_user))
        .route(
            "/databases/users/{name}/edit",
            get(pd::to_databases_of).post(pd::edit_user),
        )
        .route(
            "/databases/users/{name}/delete",
            get(pd::to_databases_of).post(pd::delete_user),
        )
        .route("/ftp", get(pd::ftp).post(pd::add_ftp))
        .route(
            "/ftp/{username}/edit",
            get(pd::to_ftp_of).post(pd::edit_ftp),
        )
        .route(
            "/ftp/{username}/delete",
            get(pd::to_ftp_of).post(pd::delete_ftp),
        )
}

/// The pages of admins and resellers ([`pages_admin`]).
fn admin_routes() -> Router<Panel> {
    use pages_admin as pa;
    Router::new()
        .route("/customers", get(pa::customers).post(pa::add_account))
        .route(
            "/customers/{name}/edit",
            get(pa::to_customers).post(pa::edit_account),
        )
        .route("/plans", get(pa::plans).post(pa::add_plan))
        .route("/plans/{name}/edit", get(pa::to_plans).post(pa::edit_plan))
        .route("/platform", get(pa::platform))
        .route(
            "/platform/servers/{name}/{action}",
            get(pa::to_platform_of_server).post(pa::drain),
        )
        .route(
            "/platform/join-tokens",
            get(pa::to_platform).post(pa::add_join_token),
        )
        .route(
            "/platform/join-tokens/{id}/delete",
            get(pa::to_platform_of).post(pa::delete_join_token),
        )
        .route(
            "/platform/mail-flush",
            get(pa::to_platform).post(pa::mail_flush),
        )
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
        .merge(sites_routes())
        .route("/audit", get(pages_audit::audit))
        .route("/notifications", get(pages_audit::notifications))
        .merge(mail_routes())
        .merge(db_routes())
        .merge(admin_routes())
        .route("/map", get(map::page))
        .route(map::EVENTS_PATH, get(map::events))
        .route(map::JS_PATH, get(map::js))
        .route(map::CSS_PATH, get(map::css))
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
