//! The audit log (`/audit`: the API's events as it scopes them for the account,
//! newest first) and notifications (`/notifications`: what needs the account's
//! attention, computed from API data: a certificate whose renewal failed, a site
//! over 90% of its disk quota, and for admins a server that is down or suspect).

use askama::Template;
use axum::extract::State;
use axum::response::Response;
use http::{Method, StatusCode};

use crate::api::seg;
use crate::flow::{failed, signed_in};
use crate::guard::{Ctx, Signed};
use crate::views::{self, Nav};
use crate::Panel;

/// Most entries the audit page shows (the newest).
pub const AUDIT_SHOWN: usize = 300;

/// The audit log page.
#[derive(Template)]
#[template(path = "audit.html")]
pub struct AuditPage {
    /// The header.
    pub nav: Option<Nav>,
    /// Entries, newest first.
    pub events: Vec<proto::v1::EventView>,
    /// Older entries were left out.
    pub more: bool,
}

/// One notification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notice {
    /// `certificate`, `quota` or `server`.
    pub what: &'static str,
    /// The object (a site, a server).
    pub object: String,
    /// What is wrong.
    pub message: String,
    /// Where to act.
    pub link: String,
}

/// The notifications page.
#[derive(Template)]
#[template(path = "notifications.html")]
pub struct NotificationsPage {
    /// The header.
    pub nav: Option<Nav>,
    /// What needs attention.
    pub notices: Vec<Notice>,
}

/// `GET /audit`.
pub async fn audit(State(panel): State<Panel>, ctx: Ctx) -> Response {
    let signed = signed_in!(ctx);
    let s = &signed.session;
    match panel
        .api
        .list_all::<proto::v1::EventView>("/v1/events", &s.token, &ctx.ext)
        .await
    {
        Ok(mut events) => {
            let more = events.len() > AUDIT_SHOWN;
            events.reverse();
            events.truncate(AUDIT_SHOWN);
            views::render(
                StatusCode::OK,
                &AuditPage {
                    nav: Some(Nav::of(s)),
                    events,
                    more,
                },
            )
        }
        Err(f) => failed(&panel, &signed, f),
    }
}

/// A site over 90% of its disk quota, as a notice.
pub fn quota_notice(site: &proto::v1::SiteView) -> Option<Notice> {
    let used = site.usage_bytes?;
    let quota = site.quota_mb.checked_mul(1 << 20).filter(|q| *q > 0)?;
    (used.saturating_mul(10) > quota.saturating_mul(9)).then(|| Notice {
        what: "quota",
        object: site.domain.clone(),
        message: format!(
            "its files take {} MiB of its {} MiB ({}%)",
            used >> 20,
            site.quota_mb,
            used.saturating_mul(100) / quota
        ),
        link: format!("/sites/{}", seg(&site.domain)),
    })
}

/// A certificate whose last ACME attempt failed, as a notice.
pub fn certificate_notice(a: &proto::v1::AcmeStatusView) -> Option<Notice> {
    if !a.enabled || (a.status != "failed" && a.last_error.is_none()) {
        return None;
    }
    let mut message = format!(
        "its certificate could not be renewed: {}",
        a.last_error.as_deref().unwrap_or("the order failed")
    );
    if let Some(t) = &a.not_after {
        message.push_str(&format!(" (the current one expires {t})"));
    }
    Some(Notice {
        what: "certificate",
        object: a.domain.clone(),
        message,
        link: format!("/sites/{}", seg(&a.domain)),
    })
}

async fn notices(
    panel: &Panel,
    ctx: &Ctx,
    signed: &Signed,
) -> Result<Vec<Notice>, crate::api::Failure> {
    let s = &signed.session;
    let sites: Vec<proto::v1::SiteView> =
        panel.api.list_all("/v1/sites", &s.token, &ctx.ext).await?;
    let mut out = Vec::new();
    for site in &sites {
        let path = format!("/v1/sites/{}/certificate/acme", seg(&site.domain));
        // ACME not set up, or the site has no status yet: nothing to say.
        if let Ok(a) = panel
            .api
            .call(Method::GET, &path, Some(&s.token), None, &ctx.ext)
            .await
            .into_result::<proto::v1::AcmeStatusView>()
        {
            out.extend(certificate_notice(&a));
        }
        out.extend(quota_notice(site));
    }
    if s.kind == "admin" {
        let servers: Vec<proto::v1::ServerView> = panel
            .api
            .list_all("/v1/servers", &s.token, &ctx.ext)
            .await?;
        for sv in servers {
            if sv.health == "down" || sv.health == "suspect" {
                out.push(Notice {
                    what: "server",
                    object: sv.name.clone(),
                    message: format!(
                        "{} server of cluster {} is {}",
                        sv.role, sv.cluster, sv.health
                    ),
                    link: "/".into(),
                });
            }
        }
    }
    Ok(out)
}

/// `GET /notifications`.
pub async fn notifications(State(panel): State<Panel>, ctx: Ctx) -> Response {
    let signed = signed_in!(ctx);
    match notices(&panel, &ctx, &signed).await {
        Ok(notices) => views::render(
            StatusCode::OK,
            &NotificationsPage {
                nav: Some(Nav::of(&signed.session)),
                notices,
            },
        ),
        Err(f) => failed(&panel, &signed, f),
    }
}
