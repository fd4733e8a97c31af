//! Pages of admins and resellers: accounts (`/customers`: customers, and for
//! admins resellers and admins; add, plan, limit overrides, disable), plans
//! (`/plans`: add, change limits) and, for admins only, the platform
//! (`/platform`: clusters, servers with drain and undrain, join tokens shown
//! once, the mail queue). What each account may do is the API's rule: a
//! customer opening these pages gets the API's answer (an empty list or a 403).

use std::collections::BTreeMap;

use askama::Template;
use axum::extract::{Path, State};
use axum::response::Response;
use axum::Form;
use http::{Method, StatusCode};
use serde_json::{json, Map, Value};

use crate::api::{seg, Failure};
use crate::flow::{failed, see, signed_in, submit, Refused};
use crate::forms::{Fields, FormErrors};
use crate::guard::{Ctx, Signed};
use crate::views::{self, Nav};
use crate::Panel;

/// The names of a plan's limits, in the order the forms show them.
pub const LIMITS: &[&str] = &[
    "max_domains",
    "max_mailboxes",
    "max_databases",
    "max_ftp_accounts",
    "max_mailbox_quota_mb",
    "max_ftp_quota_mb",
    "site_disk_mb",
    "deployment_disk_mb",
    "mail_messages_per_hour",
    "mail_recipients_per_message",
    "php_memory_mb",
    "php_upload_mb",
    "php_execution_s",
    "cron_jobs",
];

/// The value of limit `name` of `limits` (a `LimitsView` or `LimitsPatch` as
/// JSON), as text ("" when absent).
pub fn limit_of(limits: &Value, name: &str) -> String {
    match limits.get(name) {
        Some(Value::Number(n)) => n.to_string(),
        _ => String::new(),
    }
}

/// The accounts page.
#[derive(Template)]
#[template(path = "customers.html")]
pub struct CustomersPage {
    /// The header.
    pub nav: Option<Nav>,
    /// Accounts the caller manages, each with its overrides as JSON.
    pub accounts: Vec<(proto::v1::CustomerView, Value)>,
    /// Plans the caller may assign.
    pub plans: Vec<String>,
    /// Errors by form (`add-account`, `acct:NAME`).
    pub errors: BTreeMap<String, FormErrors>,
    /// The CSRF token.
    pub csrf: String,
    /// Admins may create resellers and admins.
    pub is_admin: bool,
}

/// The plans page.
#[derive(Template)]
#[template(path = "plans.html")]
pub struct PlansPage {
    /// The header.
    pub nav: Option<Nav>,
    /// Plans, each with its limits as JSON.
    pub plans: Vec<(proto::v1::PlanView, Value)>,
    /// Errors by form (`add-plan`, `plan:NAME`).
    pub errors: BTreeMap<String, FormErrors>,
    /// The CSRF token.
    pub csrf: String,
}

/// The platform page (admins).
#[derive(Template)]
#[template(path = "platform.html")]
pub struct PlatformPage {
    /// The header.
    pub nav: Option<Nav>,
    /// Clusters.
    pub clusters: Vec<proto::v1::ClusterView>,
    /// Servers.
    pub servers: Vec<proto::v1::ServerView>,
    /// Join tokens (without secrets).
    pub tokens: Vec<proto::v1::JoinTokenView>,
    /// The mail queue of each mail server, or why not.
    pub queue: Result<Vec<proto::v1::MailQueueView>, String>,
    /// Errors by form (`join-token`, `server:NAME`, `queue`).
    pub errors: BTreeMap<String, FormErrors>,
    /// A join token created, shown once: (cluster, token).
    pub created: Option<(String, String)>,
    /// The CSRF token.
    pub csrf: String,
}

fn err_of<'a>(errors: &'a BTreeMap<String, FormErrors>, name: &str) -> &'a FormErrors {
    static NONE: std::sync::OnceLock<FormErrors> = std::sync::OnceLock::new();
    errors
        .get(name)
        .unwrap_or_else(|| NONE.get_or_init(FormErrors::none))
}

impl CustomersPage {
    /// The errors of form `name`.
    pub fn err(&self, name: &str) -> &FormErrors {
        err_of(&self.errors, name)
    }
    /// The errors of an account's form.
    pub fn acct_err(&self, name: &str) -> &FormErrors {
        self.err(&format!("acct:{name}"))
    }
}

impl PlansPage {
    /// The errors of form `name`.
    pub fn err(&self, name: &str) -> &FormErrors {
        err_of(&self.errors, name)
    }
    /// The errors of a plan's form.
    pub fn plan_err(&self, name: &str) -> &FormErrors {
        self.err(&format!("plan:{name}"))
    }
}

impl PlatformPage {
    /// The errors of form `name`.
    pub fn err(&self, name: &str) -> &FormErrors {
        err_of(&self.errors, name)
    }
    /// The errors of a server's form.
    pub fn server_err(&self, name: &str) -> &FormErrors {
        self.err(&format!("server:{name}"))
    }
}

#[derive(Debug, Clone, Copy)]
enum Which {
    Customers,
    Plans,
    Platform,
}

impl Which {
    fn url(self) -> &'static str {
        match self {
            Which::Customers => "/customers",
            Which::Plans => "/plans",
            Which::Platform => "/platform",
        }
    }
}

async fn page(
    panel: &Panel,
    ctx: &Ctx,
    signed: &Signed,
    which: Which,
    status: StatusCode,
    errors: BTreeMap<String, FormErrors>,
    created: Option<(String, String)>,
) -> Response {
    let s = &signed.session;
    let api = &panel.api;
    let t = s.token.as_str();
    let x = &ctx.ext;
    let nav = Some(Nav::of(s));
    let csrf = s.csrf.clone();
    let out: Result<Response, Failure> = async {
        Ok(match which {
            Which::Customers => {
                let all: Vec<proto::v1::CustomerView> = api.list_all("/v1/customers", t, x).await?;
                let plans: Vec<proto::v1::PlanView> = api.list_all("/v1/plans", t, x).await?;
                views::render(
                    status,
                    &CustomersPage {
                        nav,
                        accounts: all
                            .into_iter()
                            .filter(|c| c.name != s.account)
                            .map(|c| {
                                let o = serde_json::to_value(c.limit_overrides).unwrap_or_default();
                                (c, o)
                            })
                            .collect(),
                        plans: plans.into_iter().map(|p| p.name).collect(),
                        errors,
                        csrf,
                        is_admin: s.kind == "admin",
                    },
                )
            }
            Which::Plans => {
                let plans: Vec<proto::v1::PlanView> = api.list_all("/v1/plans", t, x).await?;
                views::render(
                    status,
                    &PlansPage {
                        nav,
                        plans: plans
                            .into_iter()
                            .map(|p| {
                                let l = serde_json::to_value(p.limits).unwrap_or_default();
                                (p, l)
                            })
                            .collect(),
                        errors,
                        csrf,
                    },
                )
            }
            Which::Platform => {
                let queue = api
                    .call(Method::GET, "/v1/mail/queue", Some(t), None, x)
                    .await
                    .into_result::<Vec<proto::v1::MailQueueView>>()
                    .map_err(|f| f.error.message);
                views::render(
                    status,
                    &PlatformPage {
                        nav,
                        clusters: api.list_all("/v1/clusters", t, x).await?,
                        servers: api.list_all("/v1/servers", t, x).await?,
                        tokens: api.list_all("/v1/join-tokens", t, x).await?,
                        queue,
                        errors,
                        created,
                        csrf,
                    },
                )
            }
        })
    }
    .await;
    out.unwrap_or_else(|f| failed(panel, signed, f))
}

/// `GET /customers`.
pub async fn customers(State(panel): State<Panel>, ctx: Ctx) -> Response {
    let signed = signed_in!(ctx);
    let p = page(
        &panel,
        &ctx,
        &signed,
        Which::Customers,
        StatusCode::OK,
        BTreeMap::new(),
        None,
    );
    p.await
}

/// `GET /plans`.
pub async fn plans(State(panel): State<Panel>, ctx: Ctx) -> Response {
    let signed = signed_in!(ctx);
    let p = page(
        &panel,
        &ctx,
        &signed,
        Which::Plans,
        StatusCode::OK,
        BTreeMap::new(),
        None,
    );
    p.await
}

/// `GET /platform`.
pub async fn platform(State(panel): State<Panel>, ctx: Ctx) -> Response {
    let signed = signed_in!(ctx);
    let p = page(
        &panel,
        &ctx,
        &signed,
        Which::Platform,
        StatusCode::OK,
        BTreeMap::new(),
        None,
    );
    p.await
}

/// `GET` of a form target under `/customers/{name}/…`.
pub async fn to_customers(Path(_): Path<String>) -> Response {
    see("/customers")
}

/// `GET` of a form target under `/plans/{name}/…`.
pub async fn to_plans(Path(_): Path<String>) -> Response {
    see("/plans")
}

/// `GET` of a form target under `/platform/…`.
pub async fn to_platform() -> Response {
    see("/platform")
}

/// `GET` of a form target under `/platform/…/{name}`.
pub async fn to_platform_of(Path(_): Path<String>) -> Response {
    see("/platform")
}

struct Act<'a> {
    which: Which,
    form: String,
    method: Method,
    path: String,
    body: Result<Value, FormErrors>,
    fields: &'a Fields,
}

async fn act(panel: &Panel, ctx: &Ctx, signed: &Signed, a: Act<'_>) -> Response {
    let outcome = submit::<Value>(
        panel, ctx, signed, a.method, &a.path, a.body, a.fields, field_of,
    )
    .await;
    match outcome {
        // A join token's secret: shown once.
        Ok(v) if v.get("token").is_some_and(Value::is_string) => {
            let created = (
                v["cluster"].as_str().unwrap_or_default().to_owned(),
                v["token"].as_str().unwrap_or_default().to_owned(),
            );
            page(
                panel,
                ctx,
                signed,
                a.which,
                StatusCode::OK,
                BTreeMap::new(),
                Some(created),
            )
            .await
        }
        Ok(_) => see(a.which.url()),
        Err(Refused::Page(r)) => *r,
        Err(Refused::Form(status, errors)) => {
            let errors = BTreeMap::from([(a.form, errors)]);
            page(panel, ctx, signed, a.which, status, errors, None).await
        }
    }
}

/// The form field of an API field: the same name; a limit (`limits.x`) is the
/// field `limit.x`.
fn field_of(api: &str) -> Option<&'static str> {
    const FIELDS: &[&str] = &[
        "name",
        "kind",
        "display_name",
        "email",
        "password",
        "plan",
        "description",
        "cluster",
        "expires_in_minutes",
        "disabled",
    ];
    if let Some(l) = api.strip_prefix("limits.") {
        return LIMITS.iter().find(|n| **n == l).map(|n| limit_field(n));
    }
    FIELDS.iter().find(|f| **f == api).copied()
}

/// The form field of limit `name`.
pub fn limit_field(name: &str) -> &'static str {
    match name {
        "max_domains" => "limit.max_domains",
        "max_mailboxes" => "limit.max_mailboxes",
        "max_databases" => "limit.max_databases",
        "max_ftp_accounts" => "limit.max_ftp_accounts",
        "max_mailbox_quota_mb" => "limit.max_mailbox_quota_mb",
        "max_ftp_quota_mb" => "limit.max_ftp_quota_mb",
        "site_disk_mb" => "limit.site_disk_mb",
        "deployment_disk_mb" => "limit.deployment_disk_mb",
        "mail_messages_per_hour" => "limit.mail_messages_per_hour",
        "mail_recipients_per_message" => "limit.mail_recipients_per_message",
        "php_memory_mb" => "limit.php_memory_mb",
        "php_upload_mb" => "limit.php_upload_mb",
        "php_execution_s" => "limit.php_execution_s",
        _ => "limit.cron_jobs",
    }
}

fn text(fields: &Fields, name: &str) -> String {
    fields
        .get(name)
        .map(|s| s.trim().to_owned())
        .unwrap_or_default()
}

/// The limit fields of a form: those typed as numbers, and (with `cleared`)
/// the names left empty.
pub fn limits_of(fields: &Fields, errors: &mut FormErrors) -> (Map<String, Value>, Vec<String>) {
    let mut set = Map::new();
    let mut empty = Vec::new();
    for name in LIMITS {
        let f = limit_field(name);
        let v = text(fields, f);
        if v.is_empty() {
            empty.push((*name).to_owned());
            continue;
        }
        match v.parse::<u64>() {
            Ok(n) => {
                set.insert((*name).into(), json!(n));
            }
            Err(_) => errors.set(f, "a whole number, 0 for none"),
        }
    }
    (set, empty)
}

fn done(body: Value, errors: FormErrors) -> Result<Value, FormErrors> {
    if errors.any() {
        Err(errors)
    } else {
        Ok(body)
    }
}

/// `POST /customers`: add an account.
pub async fn add_account(
    State(panel): State<Panel>,
    ctx: Ctx,
    Form(fields): Form<Fields>,
) -> Response {
    let signed = signed_in!(ctx);
    let mut body = json!({ "name": text(&fields, "name") });
    for k in ["kind", "display_name", "email"] {
        let v = text(&fields, k);
        if !v.is_empty() {
            body[k] = json!(v);
        }
    }
    if let Some(pw) = fields.get("password").filter(|p| !p.is_empty()) {
        body["password"] = json!(pw);
    }
    let a = Act {
        which: Which::Customers,
        form: "add-account".into(),
        method: Method::POST,
        path: "/v1/customers".into(),
        body: Ok(body),
        fields: &fields,
    };
    act(&panel, &ctx, &signed, a).await
}

/// `POST /customers/{name}/edit`: plan, limit overrides (empty: the plan's),
/// disabled, in one `PATCH`.
pub async fn edit_account(
    State(panel): State<Panel>,
    ctx: Ctx,
    Path(name): Path<String>,
    Form(fields): Form<Fields>,
) -> Response {
    let signed = signed_in!(ctx);
    let mut errors = FormErrors::none();
    let (set, cleared) = limits_of(&fields, &mut errors);
    let body = json!({
        "plan": text(&fields, "plan"),
        "disabled": fields.get("disabled").is_some_and(|v| !v.is_empty()),
        "limits": set,
        "clear_limits": cleared,
    });
    let a = Act {
        which: Which::Customers,
        form: format!("acct:{name}"),
        method: Method::PATCH,
        path: format!("/v1/customers/{}", seg(&name)),
        body: done(body, errors),
        fields: &fields,
    };
    act(&panel, &ctx, &signed, a).await
}

/// `POST /plans`: add a plan.
pub async fn add_plan(
    State(panel): State<Panel>,
    ctx: Ctx,
    Form(fields): Form<Fields>,
) -> Response {
    let signed = signed_in!(ctx);
    let mut errors = FormErrors::none();
    let (set, _) = limits_of(&fields, &mut errors);
    let body = json!({
        "name": text(&fields, "name"),
        "description": text(&fields, "description"),
        "limits": set,
    });
    let a = Act {
        which: Which::Plans,
        form: "add-plan".into(),
        method: Method::POST,
        path: "/v1/plans".into(),
        body: done(body, errors),
        fields: &fields,
    };
    act(&panel, &ctx, &signed, a).await
}

/// `POST /plans/{name}/edit`: its description and limits.
pub async fn edit_plan(
    State(panel): State<Panel>,
    ctx: Ctx,
    Path(name): Path<String>,
    Form(fields): Form<Fields>,
) -> Response {
    let signed = signed_in!(ctx);
    let mut errors = FormErrors::none();
    let (set, _) = limits_of(&fields, &mut errors);
    let body = json!({ "description": text(&fields, "description"), "limits": set });
    let a = Act {
        which: Which::Plans,
        form: format!("plan:{name}"),
        method: Method::PATCH,
        path: format!("/v1/plans/{}", seg(&name)),
        body: done(body, errors),
        fields: &fields,
    };
    act(&panel, &ctx, &signed, a).await
}

/// `POST /platform/servers/{name}/drain` and `…/undrain`.
pub async fn drain(
    State(panel): State<Panel>,
    ctx: Ctx,
    Path((name, action)): Path<(String, String)>,
    Form(fields): Form<Fields>,
) -> Response {
    let signed = signed_in!(ctx);
    let action = if action == "undrain" {
        "undrain"
    } else {
        "drain"
    };
    let a = Act {
        which: Which::Platform,
        form: format!("server:{name}"),
        method: Method::POST,
        path: format!("/v1/servers/{}/{action}", seg(&name)),
        body: Ok(Value::Null),
        fields: &fields,
    };
    act(&panel, &ctx, &signed, a).await
}

/// `GET` of a drain form's target.
pub async fn to_platform_of_server(Path(_): Path<(String, String)>) -> Response {
    see("/platform")
}

/// `POST /platform/join-tokens`: a join token for a cluster, shown once.
pub async fn add_join_token(
    State(panel): State<Panel>,
    ctx: Ctx,
    Form(fields): Form<Fields>,
) -> Response {
    let signed = signed_in!(ctx);
    let mut body = json!({ "cluster": text(&fields, "cluster") });
    let minutes = text(&fields, "expires_in_minutes");
    let mut errors = FormErrors::none();
    if !minutes.is_empty() {
        match minutes.parse::<u32>() {
            Ok(m) => body["expires_in_minutes"] = json!(m),
            Err(_) => errors.set("expires_in_minutes", "a whole number of minutes"),
        }
    }
    let a = Act {
        which: Which::Platform,
        form: "join-token".into(),
        method: Method::POST,
        path: "/v1/join-tokens".into(),
        body: done(body, errors),
        fields: &fields,
    };
    act(&panel, &ctx, &signed, a).await
}

/// `POST /platform/join-tokens/{id}/delete`.
pub async fn delete_join_token(
    State(panel): State<Panel>,
    ctx: Ctx,
    Path(id): Path<String>,
    Form(fields): Form<Fields>,
) -> Response {
    let signed = signed_in!(ctx);
    let a = Act {
        which: Which::Platform,
        form: "join-token".into(),
        method: Method::DELETE,
        path: format!("/v1/join-tokens/{}", seg(&id)),
        body: Ok(Value::Null),
        fields: &fields,
    };
    act(&panel, &ctx, &signed, a).await
}

/// `POST /platform/mail-flush`: try every queued message again now.
pub async fn mail_flush(
    State(panel): State<Panel>,
    ctx: Ctx,
    Form(fields): Form<Fields>,
) -> Response {
    let signed = signed_in!(ctx);
    let a = Act {
        which: Which::Platform,
        form: "queue".into(),
        method: Method::POST,
        path: "/v1/mail/flush".into(),
        body: Ok(Value::Null),
        fields: &fields,
    };
    act(&panel, &ctx, &signed, a).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limit_fields_round_trip() {
        for name in LIMITS {
            assert_eq!(limit_field(name), format!("limit.{name}"));
            assert_eq!(field_of(&format!("limits.{name}")), Some(limit_field(name)));
        }
        let fields: Fields = [
            ("limit.max_domains".to_owned(), "5".to_owned()),
            ("limit.cron_jobs".to_owned(), "x".to_owned()),
        ]
        .into();
        let mut e = FormErrors::none();
        let (set, empty) = limits_of(&fields, &mut e);
        assert_eq!(set.get("max_domains"), Some(&json!(5)));
        assert!(empty.contains(&"max_mailboxes".to_owned()));
        assert!(e.get("limit.cron_jobs").is_some());
    }
}
