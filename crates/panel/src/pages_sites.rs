//! The sites pages: the account's sites (add one), a site's settings (mode, PHP
//! version and `php.ini` values, aliases, document root, HTTPS redirect, HSTS),
//! its certificate (ACME status, upload), its releases (upload a zip or tar,
//! roll back), its cron jobs, and its logs merged from every web server.
//!
//! Every form is one API call (so nothing is half-applied: the settings form is
//! one `PATCH`), through [`crate::flow::submit`]. A release is a
//! `multipart/form-data` upload, passed to `PUT /v1/sites/{domain}/content` as it
//! came; the API checks the archive (zip-slip, links, zip bombs) and its 422 is
//! shown at the file field.

use std::collections::BTreeMap;

use askama::Template;
use axum::body::Body;
use axum::extract::{Multipart, Path, Query, State};
use axum::response::Response;
use axum::Form;
use http::{Method, StatusCode};
use serde_json::Value;

use crate::api::{seg, Failure};
use crate::flow::{failed, judge, see, signed_in, submit, Refused};
use crate::forms::{Fields, FormErrors};
use crate::forms_sites as fs;
use crate::guard::{Ctx, Signed};
use crate::views::{self, Nav};
use crate::Panel;

/// Largest release the panel takes in one upload (it is held in memory on its
/// way to the API); larger sites go by `hostplane site upload` or FTP.
pub const MAX_RELEASE: usize = 128 << 20;

/// The site list with the add form.
#[derive(Template)]
#[template(path = "sites.html")]
pub struct SitesPage {
    /// The header.
    pub nav: Option<Nav>,
    /// The sites the account sees.
    pub sites: Vec<proto::v1::SiteView>,
    /// Errors of the add form.
    pub errors: FormErrors,
}

/// What a section of the site page could not load (shown in its place).
pub type Section<T> = Result<T, String>;

/// One site's page.
#[derive(Template)]
#[template(path = "site.html")]
pub struct SitePage {
    /// The header.
    pub nav: Option<Nav>,
    /// The site.
    pub site: proto::v1::SiteView,
    /// Its aliases, one a line (the settings form's text).
    pub aliases: String,
    /// Its `php.ini` values, `key = value` a line.
    pub php_ini: String,
    /// The certificate served.
    pub certificate: Section<proto::v1::CertificateView>,
    /// ACME's status.
    pub acme: Section<proto::v1::AcmeStatusView>,
    /// Kept releases, the current first.
    pub deployments: Section<Vec<proto::v1::KeptDeploymentView>>,
    /// Cron jobs.
    pub cron: Section<Vec<proto::v1::CronJobView>>,
    /// Errors of each form, by form name (`settings`, `certificate`, `release`,
    /// `cron`, `rollback`).
    pub errors: BTreeMap<&'static str, FormErrors>,
    /// A message after a form applied (a release uploaded).
    pub notice: Option<String>,
    /// The CSRF token, for the upload form's URL (multipart bodies are not read
    /// by the CSRF guard).
    pub csrf: String,
}

impl SitePage {
    /// The errors of form `name` (none when it was not the one sent).
    pub fn err(&self, name: &str) -> &FormErrors {
        static NONE: std::sync::OnceLock<FormErrors> = std::sync::OnceLock::new();
        self.errors
            .get(name)
            .unwrap_or_else(|| NONE.get_or_init(FormErrors::none))
    }

    /// A settings field: what was typed when the form came back with errors,
    /// the site's `current` value otherwise.
    pub fn typed(&self, field: &str, current: &str) -> String {
        let e = self.err("settings");
        if e.any() {
            e.value(field).to_owned()
        } else {
            current.to_owned()
        }
    }

    /// A settings check box (see [`SitePage::typed`]).
    pub fn ticked(&self, field: &str, current: &bool) -> bool {
        let e = self.err("settings");
        if e.any() {
            e.value(field) == "on"
        } else {
            *current
        }
    }

    /// A release id as shown (its first 12 digits).
    pub fn short<'a>(&self, id: &'a str) -> &'a str {
        id.get(..12).unwrap_or(id)
    }

    /// The PHP version to select.
    pub fn typed_version(&self) -> String {
        self.typed(
            "php_version",
            self.site.php_version.as_deref().unwrap_or("default"),
        )
    }
}

/// A site's merged logs.
#[derive(Template)]
#[template(path = "site_logs.html")]
pub struct LogsPage {
    /// The header.
    pub nav: Option<Nav>,
    /// The site's domain.
    pub domain: String,
    /// The lines and which servers answered, or why none.
    pub logs: Section<proto::v1::SiteLogsView>,
    /// The kind shown (`""`: all).
    pub kind: String,
}

async fn sites_page(
    panel: &Panel,
    ctx: &Ctx,
    signed: &Signed,
    status: StatusCode,
    errors: FormErrors,
) -> Response {
    let s = &signed.session;
    match panel
        .api
        .list_all::<proto::v1::SiteView>("/v1/sites", &s.token, &ctx.ext)
        .await
    {
        Ok(sites) => views::render(
            status,
            &SitesPage {
                nav: Some(Nav::of(s)),
                sites,
                errors,
            },
        ),
        Err(f) => failed(panel, signed, f),
    }
}

/// `GET /sites`.
pub async fn sites(State(panel): State<Panel>, ctx: Ctx) -> Response {
    let signed = signed_in!(ctx);
    sites_page(&panel, &ctx, &signed, StatusCode::OK, FormErrors::none()).await
}

/// `POST /sites`: add a site (`POST /v1/sites`).
pub async fn add_site(
    State(panel): State<Panel>,
    ctx: Ctx,
    Form(fields): Form<Fields>,
) -> Response {
    let signed = signed_in!(ctx);
    let body = Ok(fs::site_body(&fields));
    match submit::<proto::v1::SiteView>(
        &panel,
        &ctx,
        &signed,
        Method::POST,
        "/v1/sites",
        body,
        &fields,
        fs::site_field,
    )
    .await
    {
        Ok(site) => see(&site_url(&site.domain)),
        Err(Refused::Page(r)) => *r,
        Err(Refused::Form(status, errors)) => {
            sites_page(&panel, &ctx, &signed, status, errors).await
        }
    }
}

fn site_url(domain: &str) -> String {
    format!("/sites/{}", seg(domain))
}

async fn get<T: serde::de::DeserializeOwned>(
    panel: &Panel,
    ctx: &Ctx,
    signed: &Signed,
    path: &str,
) -> Result<T, Failure> {
    panel
        .api
        .call(
            Method::GET,
            path,
            Some(&signed.session.token),
            None,
            &ctx.ext,
        )
        .await
        .into_result()
}

/// A section's data, or the API's message in its place.
fn section<T>(r: Result<T, Failure>) -> Section<T> {
    r.map_err(|f| f.error.message)
}

async fn site_page(
    panel: &Panel,
    ctx: &Ctx,
    signed: &Signed,
    domain: &str,
    status: StatusCode,
    errors: BTreeMap<&'static str, FormErrors>,
    notice: Option<String>,
) -> Response {
    let base = format!("/v1/sites/{}", seg(domain));
    let site: proto::v1::SiteView = match get(panel, ctx, signed, &base).await {
        Ok(s) => s,
        Err(f) => return failed(panel, signed, f),
    };
    let page = SitePage {
        nav: Some(Nav::of(&signed.session)),
        aliases: site.aliases.join("\n"),
        php_ini: site
            .php_ini
            .iter()
            .map(|(k, v)| format!("{k} = {v}"))
            .collect::<Vec<_>>()
            .join("\n"),
        certificate: section(get(panel, ctx, signed, &format!("{base}/certificate")).await),
        acme: section(get(panel, ctx, signed, &format!("{base}/certificate/acme")).await),
        deployments: section(get(panel, ctx, signed, &format!("{base}/deployments")).await),
        cron: section(get(panel, ctx, signed, &format!("{base}/cron")).await),
        site,
        errors,
        notice,
        csrf: signed.session.csrf.clone(),
    };
    views::render(status, &page)
}

/// The site page's query: which form was applied (`?done=settings`), for the
/// notice saying so.
#[derive(Debug, Default, serde::Deserialize)]
pub struct Done {
    /// The form applied.
    #[serde(default)]
    pub done: String,
}

/// `GET /sites/{domain}`: the API's 404 for a site the account may not see.
pub async fn site(
    State(panel): State<Panel>,
    ctx: Ctx,
    Path(domain): Path<String>,
    Query(q): Query<Done>,
) -> Response {
    let signed = signed_in!(ctx);
    let notice = match q.done.as_str() {
        "settings" => Some("Settings saved."),
        "certificate" => Some("Certificate uploaded; the site's web servers serve it now."),
        "cron" => Some("Cron jobs changed."),
        "rollback" => Some("Rolled back; the site's files servers apply it now."),
        _ => None,
    };
    site_page(
        &panel,
        &ctx,
        &signed,
        &domain,
        StatusCode::OK,
        BTreeMap::new(),
        notice.map(str::to_owned),
    )
    .await
}

/// `GET` of a site form's target (a reload after a form answered there).
pub async fn to_site(Path(domain): Path<String>) -> Response {
    see(&site_url(&domain))
}

/// `GET` of a cron job's delete target.
pub async fn to_site_of_job(Path((domain, _id)): Path<(String, u32)>) -> Response {
    see(&site_url(&domain))
}

/// The answer to a site form: back to the site on success, the page with the
/// form's errors otherwise.
async fn answer(
    panel: &Panel,
    ctx: &Ctx,
    signed: &Signed,
    domain: &str,
    form: &'static str,
    outcome: Result<Value, Refused>,
) -> Response {
    match outcome {
        Ok(_) => see(&format!("{}?done={form}", site_url(domain))),
        Err(Refused::Page(r)) => *r,
        Err(Refused::Form(status, errors)) => {
            let errors = BTreeMap::from([(form, errors)]);
            site_page(panel, ctx, signed, domain, status, errors, None).await
        }
    }
}

/// `POST /sites/{domain}/settings`: every setting in one `PATCH`.
pub async fn settings(
    State(panel): State<Panel>,
    ctx: Ctx,
    Path(domain): Path<String>,
    Form(fields): Form<Fields>,
) -> Response {
    let signed = signed_in!(ctx);
    let path = format!("/v1/sites/{}", seg(&domain));
    let current: proto::v1::SiteView = match get(&panel, &ctx, &signed, &path).await {
        Ok(s) => s,
        Err(f) => return failed(&panel, &signed, f),
    };
    let body = fs::settings_body(&fields, &current.php_ini);
    let outcome = submit(
        &panel,
        &ctx,
        &signed,
        Method::PATCH,
        &path,
        body,
        &fields,
        fs::settings_field,
    )
    .await;
    answer(&panel, &ctx, &signed, &domain, "settings", outcome).await
}

/// `POST /sites/{domain}/certificate`: upload the customer's certificate.
pub async fn certificate(
    State(panel): State<Panel>,
    ctx: Ctx,
    Path(domain): Path<String>,
    Form(fields): Form<Fields>,
) -> Response {
    let signed = signed_in!(ctx);
    let path = format!("/v1/sites/{}/certificate", seg(&domain));
    let outcome = submit(
        &panel,
        &ctx,
        &signed,
        Method::PUT,
        &path,
        Ok(fs::certificate_body(&fields)),
        &fields,
        fs::certificate_field,
    )
    .await;
    answer(&panel, &ctx, &signed, &domain, "certificate", outcome).await
}

/// `POST /sites/{domain}/cron`: add a job.
pub async fn add_cron(
    State(panel): State<Panel>,
    ctx: Ctx,
    Path(domain): Path<String>,
    Form(fields): Form<Fields>,
) -> Response {
    let signed = signed_in!(ctx);
    let path = format!("/v1/sites/{}/cron", seg(&domain));
    let outcome = submit(
        &panel,
        &ctx,
        &signed,
        Method::POST,
        &path,
        Ok(fs::cron_body(&fields)),
        &fields,
        fs::cron_field,
    )
    .await;
    answer(&panel, &ctx, &signed, &domain, "cron", outcome).await
}

/// `POST /sites/{domain}/cron/{id}/delete`: remove a job.
pub async fn delete_cron(
    State(panel): State<Panel>,
    ctx: Ctx,
    Path((domain, id)): Path<(String, u32)>,
    Form(fields): Form<Fields>,
) -> Response {
    let signed = signed_in!(ctx);
    let path = format!("/v1/sites/{}/cron/{id}", seg(&domain));
    let outcome = submit(
        &panel,
        &ctx,
        &signed,
        Method::DELETE,
        &path,
        Ok(Value::Null),
        &fields,
        fs::no_field,
    )
    .await;
    answer(&panel, &ctx, &signed, &domain, "cron", outcome).await
}

/// `POST /sites/{domain}/rollback`: make a kept release current again.
pub async fn rollback(
    State(panel): State<Panel>,
    ctx: Ctx,
    Path(domain): Path<String>,
    Form(fields): Form<Fields>,
) -> Response {
    let signed = signed_in!(ctx);
    let path = format!("/v1/sites/{}/rollback", seg(&domain));
    let outcome = submit(
        &panel,
        &ctx,
        &signed,
        Method::POST,
        &path,
        Ok(fs::rollback_body(&fields)),
        &fields,
        fs::no_field,
    )
    .await;
    answer(&panel, &ctx, &signed, &domain, "rollback", outcome).await
}

/// The file of a release form: its bytes, or the error at the field.
async fn release_file(mut form: Multipart) -> Result<Vec<u8>, String> {
    let too_big = || {
        format!(
            "at most {} MiB through the panel; use `hostplane site upload` or FTP for more",
            MAX_RELEASE >> 20
        )
    };
    while let Some(mut field) = form.next_field().await.map_err(|e| {
        if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            too_big()
        } else {
            format!("the upload did not arrive whole: {e}")
        }
    })? {
        if field.name() != Some("archive") {
            continue;
        }
        let mut bytes = Vec::new();
        while let Some(chunk) = field
            .chunk()
            .await
            .map_err(|e| format!("the upload did not arrive whole: {e}"))?
        {
            if bytes.len() + chunk.len() > MAX_RELEASE {
                return Err(too_big());
            }
            bytes.extend_from_slice(&chunk);
        }
        if bytes.is_empty() {
            return Err("choose a zip or tar archive of the site's folder".into());
        }
        return Ok(bytes);
    }
    Err("choose a zip or tar archive of the site's folder".into())
}

/// `POST /sites/{domain}/release` (`multipart/form-data`, CSRF token in the
/// URL): upload a release, zip, tar or `.tar.gz`.
pub async fn release(
    State(panel): State<Panel>,
    ctx: Ctx,
    Path(domain): Path<String>,
    form: Multipart,
) -> Response {
    let signed = signed_in!(ctx);
    let fields = Fields::new();
    let outcome = match release_file(form).await {
        Err(e) => {
            let mut errors = FormErrors::none();
            errors.set("archive", e);
            Err(Refused::Form(StatusCode::UNPROCESSABLE_ENTITY, errors))
        }
        Ok(bytes) => {
            let path = format!("/v1/sites/{}/content", seg(&domain));
            let reply = panel
                .api
                .call_raw(
                    Method::PUT,
                    &path,
                    &signed.session.token,
                    "application/octet-stream",
                    Body::from(bytes),
                    &ctx.ext,
                )
                .await;
            judge::<proto::v1::DeploymentView>(&panel, &signed, reply, &fields, fs::release_field)
        }
    };
    match outcome {
        Ok(d) => {
            let notice = format!(
                "Release {} uploaded ({} KiB); the site's files servers apply it now.",
                &d.id[..12.min(d.id.len())],
                d.size.div_ceil(1024)
            );
            site_page(
                &panel,
                &ctx,
                &signed,
                &domain,
                StatusCode::OK,
                BTreeMap::new(),
                Some(notice),
            )
            .await
        }
        Err(Refused::Page(r)) => *r,
        Err(Refused::Form(status, errors)) => {
            let errors = BTreeMap::from([("release", errors)]);
            site_page(&panel, &ctx, &signed, &domain, status, errors, None).await
        }
    }
}

/// The logs page's query.
#[derive(Debug, Default, serde::Deserialize)]
pub struct LogsQuery {
    /// `access`, `error`, `php`, `cron` or empty (all).
    #[serde(default)]
    pub kind: String,
}

/// `GET /sites/{domain}/logs`: the newest 200 lines, merged from every web
/// server of the site (`GET /v1/sites/{domain}/logs`).
pub async fn logs(
    State(panel): State<Panel>,
    ctx: Ctx,
    Path(domain): Path<String>,
    Query(q): Query<LogsQuery>,
) -> Response {
    let signed = signed_in!(ctx);
    // The site first: another account's site is the API's 404 page.
    let base = format!("/v1/sites/{}", seg(&domain));
    if let Err(f) = get::<Value>(&panel, &ctx, &signed, &base).await {
        return failed(&panel, &signed, f);
    }
    let kind = match q.kind.as_str() {
        "access" | "error" | "php" | "cron" => q.kind.clone(),
        _ => String::new(),
    };
    let mut path = format!("{base}/logs?limit=200");
    if !kind.is_empty() {
        path.push_str(&format!("&kind={kind}"));
    }
    let logs = section(get(&panel, &ctx, &signed, &path).await);
    views::render(
        StatusCode::OK,
        &LogsPage {
            nav: Some(Nav::of(&signed.session)),
            domain,
            logs,
            kind,
        },
    )
}
