//! The pages of a signed-in account: dashboard, domains, a domain with its
//! mailboxes and DNS records. Each reads and writes through the API with the
//! session's token; what the API refuses is what the page shows (its 404 for
//! another customer's object, its validation errors at the form field).

use axum::extract::{Path, State};
use axum::response::{IntoResponse, Redirect, Response};
use axum::Form;
use http::{Method, StatusCode};
use serde_json::Value;

use crate::api::{seg, Failure};
use crate::flow::{failed, see, signed_in, submit, Refused};
use crate::forms::{self, Fields, FormErrors};
use crate::guard::{Ctx, Signed};

use crate::views::{self, DashboardPage, DomainPage, DomainsPage, Nav, RecordRow, Usage};
use crate::Panel;

/// `GET /`: usage against the account's limits.
pub async fn dashboard(State(panel): State<Panel>, ctx: Ctx) -> Response {
    let signed = signed_in!(ctx);
    match dashboard_data(&panel, &ctx, &signed).await {
        Ok(page) => views::render(StatusCode::OK, &page),
        Err(f) => failed(&panel, &signed, f),
    }
}

async fn dashboard_data(
    panel: &Panel,
    ctx: &Ctx,
    signed: &Signed,
) -> Result<DashboardPage, Failure> {
    let s = &signed.session;
    let me: proto::v1::CustomerView = panel
        .api
        .call(
            Method::GET,
            &format!("/v1/customers/{}", seg(&s.account)),
            Some(&s.token),
            None,
            &ctx.ext,
        )
        .await
        .into_result()?;
    // A reseller's or admin's listings include their customers' objects: their
    // own limits do not apply to those counts.
    let limits = me.limits.filter(|_| s.kind == "customer");
    let count = |path: &'static str| async move {
        panel
            .api
            .list_all::<Value>(path, &s.token, &ctx.ext)
            .await
            .map(|v| v.len() as u64)
    };
    let mut usage = vec![
        Usage {
            what: "Domains".into(),
            used: count("/v1/domains").await?,
            limit: limits.map(|l| l.max_domains),
        },
        Usage {
            what: "Mailboxes".into(),
            used: count("/v1/mailboxes").await?,
            limit: limits.map(|l| l.max_mailboxes),
        },
        Usage {
            what: "Databases".into(),
            used: count("/v1/databases").await?,
            limit: limits.map(|l| l.max_databases),
        },
        Usage {
            what: "FTP accounts".into(),
            used: count("/v1/ftp-accounts").await?,
            limit: limits.map(|l| l.max_ftp_accounts),
        },
    ];
    // Each site's files against its disk quota (the plan's `site_disk_mb`), in MiB.
    let sites = panel
        .api
        .list_all::<proto::v1::SiteView>("/v1/sites", &s.token, &ctx.ext)
        .await?;
    usage.extend(
        sites
            .iter()
            .filter(|_| s.kind == "customer")
            .map(|site| Usage {
                what: format!("Disk of {} (MiB)", site.domain),
                used: site.usage_bytes.unwrap_or(0) >> 20,
                limit: (site.quota_mb > 0).then_some(site.quota_mb),
            }),
    );
    Ok(DashboardPage {
        nav: Some(Nav::of(s)),
        usage,
        plan: me.plan,
    })
}

async fn domains_page(
    panel: &Panel,
    ctx: &Ctx,
    signed: &Signed,
    status: StatusCode,
    errors: FormErrors,
) -> Response {
    let s = &signed.session;
    match panel
        .api
        .list_all::<proto::v1::DomainView>("/v1/domains", &s.token, &ctx.ext)
        .await
    {
        Ok(domains) => views::render(
            status,
            &DomainsPage {
                nav: Some(Nav::of(s)),
                domains,
                ask_customer: s.kind != "customer",
                errors,
            },
        ),
        Err(f) => failed(panel, signed, f),
    }
}

/// `GET /domains`.
pub async fn domains(State(panel): State<Panel>, ctx: Ctx) -> Response {
    let signed = signed_in!(ctx);
    domains_page(&panel, &ctx, &signed, StatusCode::OK, FormErrors::none()).await
}

/// `POST /domains`: add a domain (`POST /v1/domains`).
pub async fn add_domain(
    State(panel): State<Panel>,
    ctx: Ctx,
    Form(fields): Form<Fields>,
) -> Response {
    let signed = signed_in!(ctx);
    let body = Ok(forms::domain_body(&fields));
    match submit::<Value>(
        &panel,
        &ctx,
        &signed,
        Method::POST,
        "/v1/domains",
        body,
        &fields,
        forms::domain_field,
    )
    .await
    {
        Ok(_) => see("/domains"),
        Err(Refused::Page(r)) => *r,
        Err(Refused::Form(status, errors)) => {
            domains_page(&panel, &ctx, &signed, status, errors).await
        }
    }
}

/// What a domain page shows besides the domain.
#[derive(Default)]
struct DomainExtras {
    mailbox_errors: FormErrors,
    record_errors: FormErrors,
    generated: Option<(String, String)>,
}

async fn domain_page(
    panel: &Panel,
    ctx: &Ctx,
    signed: &Signed,
    name: &str,
    status: StatusCode,
    extras: DomainExtras,
) -> Response {
    let s = &signed.session;
    let load = async {
        let domain: proto::v1::DomainView = panel
            .api
            .call(
                Method::GET,
                &format!("/v1/domains/{}", seg(name)),
                Some(&s.token),
                None,
                &ctx.ext,
            )
            .await
            .into_result()?;
        let q = seg(&domain.name);
        let mailboxes = panel
            .api
            .list_all::<proto::v1::MailboxView>(
                &format!("/v1/mailboxes?domain={q}"),
                &s.token,
                &ctx.ext,
            )
            .await?;
        let records = panel
            .api
            .list_all::<proto::v1::DnsRecordView>(
                &format!("/v1/dns-records?domain={q}"),
                &s.token,
                &ctx.ext,
            )
            .await?;
        Ok::<_, Failure>((domain, mailboxes, records))
    };
    match load.await {
        Ok((domain, mailboxes, records)) => views::render(
            status,
            &DomainPage {
                nav: Some(Nav::of(s)),
                domain,
                mailboxes,
                records: records.iter().map(RecordRow::of).collect(),
                mailbox_errors: extras.mailbox_errors,
                record_errors: extras.record_errors,
                generated: extras.generated,
                record_types: forms::RECORD_TYPES.iter().map(|(t, _)| *t).collect(),
            },
        ),
        Err(f) => failed(panel, signed, f),
    }
}

/// `GET /domains/{name}`: the API's 404 for a domain the account may not see.
pub async fn domain(State(panel): State<Panel>, ctx: Ctx, Path(name): Path<String>) -> Response {
    let signed = signed_in!(ctx);
    domain_page(
        &panel,
        &ctx,
        &signed,
        &name,
        StatusCode::OK,
        DomainExtras::default(),
    )
    .await
}

fn back_to(name: &str) -> Response {
    Redirect::to(&format!("/domains/{}", seg(name))).into_response()
}

/// `GET` of a form's target (a reload after a form answered there): the domain.
pub async fn to_domain(Path(name): Path<String>) -> Response {
    back_to(&name)
}

/// `GET /logout`: signing out is a POST; this goes home.
pub async fn home() -> Response {
    Redirect::to("/").into_response()
}

/// `POST /domains/{name}/mailboxes`: add a mailbox (`POST /v1/mailboxes`); a
/// generated password is shown once on the page answered.
pub async fn add_mailbox(
    State(panel): State<Panel>,
    ctx: Ctx,
    Path(name): Path<String>,
    Form(fields): Form<Fields>,
) -> Response {
    let signed = signed_in!(ctx);
    let body = forms::mailbox_body(&name, &fields);
    let mut extras = DomainExtras::default();
    let status = match submit::<proto::v1::WithPassword<proto::v1::MailboxView>>(
        &panel,
        &ctx,
        &signed,
        Method::POST,
        "/v1/mailboxes",
        body,
        &fields,
        forms::mailbox_field,
    )
    .await
    {
        Ok(created) => match created.generated_password {
            Some(pw) => {
                extras.generated = Some((created.object.address, pw));
                StatusCode::OK
            }
            None => return back_to(&name),
        },
        Err(Refused::Page(r)) => return *r,
        Err(Refused::Form(status, errors)) => {
            extras.mailbox_errors = errors;
            status
        }
    };
    domain_page(&panel, &ctx, &signed, &name, status, extras).await
}

/// `POST /domains/{name}/dns`: add a record (`POST /v1/dns-records`).
pub async fn add_record(
    State(panel): State<Panel>,
    ctx: Ctx,
    Path(name): Path<String>,
    Form(fields): Form<Fields>,
) -> Response {
    let signed = signed_in!(ctx);
    let body = forms::record_body(&name, &fields);
    match submit::<Value>(
        &panel,
        &ctx,
        &signed,
        Method::POST,
        "/v1/dns-records",
        body,
        &fields,
        forms::record_field,
    )
    .await
    {
        Ok(_) => back_to(&name),
        Err(Refused::Page(r)) => *r,
        Err(Refused::Form(status, errors)) => {
            let extras = DomainExtras {
                record_errors: errors,
                ..DomainExtras::default()
            };
            domain_page(&panel, &ctx, &signed, &name, status, extras).await
        }
    }
}
