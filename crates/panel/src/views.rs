//! Rendering: the askama templates' data, the static files (htmx and the
//! stylesheet, compiled into the binary) and error pages.

use askama::Template;
use axum::response::{Html, IntoResponse, Response};
use http::{header, HeaderValue, StatusCode};

use crate::forms::FormErrors;
use crate::session::Session;

/// URL of the vendored htmx (versioned, cached for a year).
pub const HTMX_PATH: &str = "/static/htmx-2.0.11.min.js";
/// URL of the stylesheet.
pub const CSS_PATH: &str = "/static/panel.css";

const HTMX_JS: &str = include_str!("../static/htmx.min.js");
const PANEL_CSS: &str = include_str!("../static/panel.css");

/// `GET /static/htmx-<version>.min.js`.
pub async fn htmx() -> Response {
    static_file(HTMX_JS, "text/javascript; charset=utf-8", true)
}

/// `GET /static/panel.css`.
pub async fn css() -> Response {
    static_file(PANEL_CSS, "text/css; charset=utf-8", false)
}

fn static_file(body: &'static str, mime: &'static str, immutable: bool) -> Response {
    let mut res = body.into_response();
    let h = res.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(mime));
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static(if immutable {
            "public, max-age=31536000, immutable"
        } else {
            "no-cache"
        }),
    );
    res
}

/// What the page header shows of the signed-in account, and the sign-out form's
/// CSRF token.
#[derive(Debug, Clone)]
pub struct Nav {
    /// Account name.
    pub account: String,
    /// Account kind.
    pub kind: String,
    /// CSRF token of the session (every form carries it).
    pub csrf: String,
    /// While acting as a customer: who is signed in (the banner names both).
    pub impersonator: Option<String>,
}

impl Nav {
    /// The header of `session`.
    pub fn of(session: &Session) -> Self {
        Nav {
            account: session.account.clone(),
            kind: session.kind.clone(),
            csrf: session.csrf.clone(),
            impersonator: session.own.as_ref().map(|o| o.account.clone()),
        }
    }
}

/// The sign-in page.
#[derive(Template)]
#[template(path = "login.html")]
pub struct LoginPage {
    /// Never signed in here.
    pub nav: Option<Nav>,
    /// The form's CSRF token (also in its cookie).
    pub csrf: String,
    /// Errors and the account name typed.
    pub errors: FormErrors,
}

/// One line of the dashboard: how much of a limit is used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Usage {
    /// What is counted.
    pub what: String,
    /// How many there are.
    pub used: u64,
    /// The plan's limit, if the account has one.
    pub limit: Option<u64>,
}

/// The dashboard.
#[derive(Template)]
#[template(path = "dashboard.html")]
pub struct DashboardPage {
    /// The header.
    pub nav: Option<Nav>,
    /// Usage against limits.
    pub usage: Vec<Usage>,
    /// The account's plan, if it has one.
    pub plan: Option<String>,
}

/// The domain list with the add form.
#[derive(Template)]
#[template(path = "domains.html")]
pub struct DomainsPage {
    /// The header.
    pub nav: Option<Nav>,
    /// The domains the account sees.
    pub domains: Vec<proto::v1::DomainView>,
    /// Admins and resellers name the customer of a new domain.
    pub ask_customer: bool,
    /// Errors of the add form.
    pub errors: FormErrors,
}

/// A DNS record as listed.
#[derive(Debug, Clone)]
pub struct RecordRow {
    /// Owner name.
    pub name: String,
    /// Type.
    pub rtype: String,
    /// The data, shown as text.
    pub data: String,
    /// TTL, if set.
    pub ttl: Option<u32>,
}

impl RecordRow {
    /// A record of the API as listed.
    pub fn of(r: &proto::v1::DnsRecordView) -> Self {
        let data = match &r.data {
            serde_json::Value::Object(m) => m
                .iter()
                .filter(|(k, _)| k.as_str() != "type")
                .map(|(k, v)| match v {
                    serde_json::Value::String(s) => format!("{k}={s}"),
                    other => format!("{k}={other}"),
                })
                .collect::<Vec<_>>()
                .join(" "),
            other => other.to_string(),
        };
        RecordRow {
            name: r.name.clone(),
            rtype: r.rtype.clone(),
            data,
            ttl: r.ttl,
        }
    }
}

/// A domain's page: its placements, mailboxes and DNS records, with add forms.
#[derive(Template)]
#[template(path = "domain.html")]
pub struct DomainPage {
    /// The header.
    pub nav: Option<Nav>,
    /// The domain.
    pub domain: proto::v1::DomainView,
    /// Its mailboxes.
    pub mailboxes: Vec<proto::v1::MailboxView>,
    /// Its DNS records.
    pub records: Vec<RecordRow>,
    /// Errors of the add-mailbox form.
    pub mailbox_errors: FormErrors,
    /// Errors of the add-record form.
    pub record_errors: FormErrors,
    /// A generated mailbox password, shown once: (address, password).
    pub generated: Option<(String, String)>,
    /// The record types offered.
    pub record_types: Vec<&'static str>,
}

/// An error page.
#[derive(Template)]
#[template(path = "error.html")]
pub struct ErrorPage {
    /// The header, when signed in.
    pub nav: Option<Nav>,
    /// The status shown.
    pub status: u16,
    /// What went wrong.
    pub message: String,
}

/// Render `t` as an HTML answer with `status`.
pub fn render(status: StatusCode, t: &impl Template) -> Response {
    match t.render() {
        Ok(html) => (status, Html(html)).into_response(),
        Err(e) => {
            tracing::error!(error = %e, "panel template failed");
            (StatusCode::INTERNAL_SERVER_ERROR, "template error").into_response()
        }
    }
}

/// An error page with `status` and `message`.
pub fn error_page(status: StatusCode, message: &str, session: Option<&Session>) -> Response {
    render(
        status,
        &ErrorPage {
            nav: session.map(Nav::of),
            status: status.as_u16(),
            message: message.to_owned(),
        },
    )
}
