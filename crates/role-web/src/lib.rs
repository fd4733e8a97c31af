//! hostplane's web engine (`web` role): HTTP/1.1 and HTTP/2 virtual hosting.
//!
//! - [`plan`]: the pure [`render`] of the controller's `WebConfig` into a [`Plan`]
//!   (host → site, content root, certificate, PHP pool).
//! - [`server`]: [`run`] over already-bound listeners, a plan `watch` and a shutdown
//!   signal; HTTP/1.1 on the plain listener, HTTP/1.1 + HTTP/2 (ALPN) over rustls on
//!   the TLS listener; [`tls`] picks certificates by SNI from the live plan.
//! - [`path`], [`fsafe`], [`files`], [`cache`], [`compress`]: static files, opened
//!   with `openat2(RESOLVE_BENEATH)` beneath the site root, with validators,
//!   conditional GET, ranges and gzip/brotli; [`hot`] keeps small files that were
//!   just opened ready to answer for 1 ms (the site root's revalidation window).
//! - [`fastcgi`], [`php`], [`fpm`]: PHP through PHP-FPM (one pool per site, its own
//!   system user and socket), managed by the engine in php-fpm masters that a
//!   change to another site never reloads.
//! - [`log`]: per-site access logs (combined format) and the error log.
//! - [`mailer`]: mail from sites (PHP `mail()`): the sendmail socket, the durable
//!   spool and its worker submitting to the site's mail cluster.
//! - [`cron`]: a site's cron jobs on the one server holding them, while its lease
//!   lasts (issue 15).
//! - `fast`: the plain-HTTP/1.1 fast path (our own loop for body-less GET/HEAD,
//!   `sendfile` for large files; everything else goes to hyper).
//! - `cork`: write coalescing under hyper on TLS connections (what one poll of the
//!   connection wrote leaves as full records in one socket write).
//! - [`engine`]: the agent adapter, [`start_engine`].
//!
//! - [`replicate`]: site-file replication (issue 14): each site with a files server is
//!   a writable tree kept by a `sitesync` replica (PHP's writes pushed to the files
//!   server's hub, the other servers' writes applied here).
//!
//! - [`sessions`]: PHP sessions shared by the web servers of a cluster (issue 15): a
//!   Redis-protocol session store on a unix socket, writes replicated to the peers.
//!
//! Content location contract: a site's files are served from
//! `<content_root>/<domain>/current/`, where `current` is a symlink; for a replicated
//! site it points at the writable tree `tree` (and never changes), otherwise at
//! whatever the operator or a test put there; a swap is seen by every request that
//! starts more than 1 ms after it ([`fsafe::REVALIDATE_AFTER`]).

#![forbid(unsafe_code)]

mod autoconfig;
pub mod body;
pub mod cache;
pub mod compress;
mod cork;
pub mod cron;
pub mod engine;
mod fast;
pub mod fastcgi;
pub mod files;
pub mod fpm;
pub mod fsafe;
mod handler;
pub mod hot;
pub mod log;
pub mod logread;
pub mod mailer;
pub mod path;
pub mod php;
pub mod plan;
pub mod replicate;
pub mod server;
pub mod sessions;
pub mod tls;

pub use engine::{start_engine, WebEngine};
pub use fpm::{FpmError, FpmManager};
pub use plan::{render, Layout, Plan, RenderError, Site};
pub use server::{run, run_with_options, ServerOptions};
pub use tls::CertStore;
