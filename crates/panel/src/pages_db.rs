//! The databases page (`/databases`: databases and their users) and the FTP page
//! (`/ftp`: FTP accounts). Add, change and delete, each one API call through
//! [`crate::flow::submit`]; a password left empty is generated (by the API when
//! creating, by the panel when changing) and shown once.

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
use crate::forms_sites::name_list;
use crate::guard::{Ctx, Signed};
use crate::pages_mail::generate_password;
use crate::views::{self, Nav};
use crate::Panel;

/// The databases page.
#[derive(Template)]
#[template(path = "databases.html")]
pub struct DatabasesPage {
    /// The header.
    pub nav: Option<Nav>,
    /// Databases the account sees.
    pub databases: Vec<proto::v1::DatabaseView>,
    /// Database users.
    pub users: Vec<proto::v1::DbUserView>,
    /// Admins and resellers name the customer.
    pub ask_customer: bool,
    /// Errors by form (`add-db`, `add-user`, `db:NAME`, `user:NAME`).
    pub errors: BTreeMap<String, FormErrors>,
    /// A password shown once: (what, password).
    pub generated: Option<(String, String)>,
    /// The CSRF token.
    pub csrf: String,
}

/// The FTP page.
#[derive(Template)]
#[template(path = "ftp.html")]
pub struct FtpPage {
    /// The header.
    pub nav: Option<Nav>,
    /// FTP accounts the account sees.
    pub accounts: Vec<proto::v1::FtpAccountView>,
    /// Errors by form (`add-ftp`, `ftp:USERNAME`).
    pub errors: BTreeMap<String, FormErrors>,
    /// A password shown once: (what, password).
    pub generated: Option<(String, String)>,
    /// The CSRF token.
    pub csrf: String,
}

fn err_of<'a>(errors: &'a BTreeMap<String, FormErrors>, name: &str) -> &'a FormErrors {
    static NONE: std::sync::OnceLock<FormErrors> = std::sync::OnceLock::new();
    errors
        .get(name)
        .unwrap_or_else(|| NONE.get_or_init(FormErrors::none))
}

impl DatabasesPage {
    /// The errors of form `name`.
    pub fn err(&self, name: &str) -> &FormErrors {
        err_of(&self.errors, name)
    }
    /// The errors of a database's form.
    pub fn db_err(&self, name: &str) -> &FormErrors {
        self.err(&format!("db:{name}"))
    }
    /// The errors of a user's edit form.
    pub fn user_err(&self, user: &str) -> &FormErrors {
        self.err(&format!("user:{user}"))
    }
}

impl FtpPage {
    /// The errors of form `name`.
    pub fn err(&self, name: &str) -> &FormErrors {
        err_of(&self.errors, name)
    }
    /// The errors of an account's edit form.
    pub fn ftp_err(&self, user: &str) -> &FormErrors {
        self.err(&format!("ftp:{user}"))
    }
}

/// Which page a form belongs to.
#[derive(Debug, Clone, Copy)]
enum Which {
    Databases,
    Ftp,
}

impl Which {
    fn url(self) -> &'static str {
        match self {
            Which::Databases => "/databases",
            Which::Ftp => "/ftp",
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
    generated: Option<(String, String)>,
) -> Response {
    let s = &signed.session;
    let api = &panel.api;
    let nav = Some(Nav::of(s));
    let csrf = s.csrf.clone();
    let out: Result<Response, Failure> = async {
        Ok(match which {
            Which::Databases => views::render(
                status,
                &DatabasesPage {
                    nav,
                    databases: api.list_all("/v1/databases", &s.token, &ctx.ext).await?,
                    users: api.list_all("/v1/db-users", &s.token, &ctx.ext).await?,
                    ask_customer: s.kind != "customer",
                    errors,
                    generated,
                    csrf,
                },
            ),
            Which::Ftp => views::render(
                status,
                &FtpPage {
                    nav,
                    accounts: api.list_all("/v1/ftp-accounts", &s.token, &ctx.ext).await?,
                    errors,
                    generated,
                    csrf,
                },
            ),
        })
    }
    .await;
    out.unwrap_or_else(|f| failed(panel, signed, f))
}

/// `GET /databases`.
pub async fn databases(State(panel): State<Panel>, ctx: Ctx) -> Response {
    let signed = signed_in!(ctx);
    let p = page(
        &panel,
        &ctx,
        &signed,
        Which::Databases,
        StatusCode::OK,
        BTreeMap::new(),
        None,
    );
    p.await
}

/// `GET /ftp`.
pub async fn ftp(State(panel): State<Panel>, ctx: Ctx) -> Response {
    let signed = signed_in!(ctx);
    let p = page(
        &panel,
        &ctx,
        &signed,
        Which::Ftp,
        StatusCode::OK,
        BTreeMap::new(),
        None,
    );
    p.await
}

/// `GET` of a databases form's target.
pub async fn to_databases() -> Response {
    see("/databases")
}

/// `GET` of an FTP form's target.
pub async fn to_ftp() -> Response {
    see("/ftp")
}

/// `GET` of an object's form target.
pub async fn to_databases_of(Path(_): Path<String>) -> Response {
    see("/databases")
}

/// `GET` of an object's form target.
pub async fn to_ftp_of(Path(_): Path<String>) -> Response {
    see("/ftp")
}

/// One form of these pages: the API call, then the page again (with a password
/// shown once, or the form's errors) or a redirect to it.
struct Act<'a> {
    which: Which,
    form: String,
    method: Method,
    path: String,
    body: Result<Value, FormErrors>,
    map: fn(&str) -> Option<&'static str>,
    /// A password the panel generated: shown once on success, under this name.
    generated: Option<(String, String)>,
    fields: &'a Fields,
}

async fn act(panel: &Panel, ctx: &Ctx, signed: &Signed, a: Act<'_>) -> Response {
    let outcome = submit::<Value>(
        panel, ctx, signed, a.method, &a.path, a.body, a.fields, a.map,
    )
    .await;
    match outcome {
        Ok(v) => {
            // A password the API generated (creating), else the panel's.
            let generated = match v.get("generated_password").and_then(Value::as_str) {
                Some(pw) => {
                    let what = ["name", "username"]
                        .iter()
                        .find_map(|k| v.get(*k).and_then(Value::as_str))
                        .unwrap_or_default();
                    Some((what.to_owned(), pw.to_owned()))
                }
                None => a.generated,
            };
            match generated {
                None => see(a.which.url()),
                Some(g) => {
                    let p = page(
                        panel,
                        ctx,
                        signed,
                        a.which,
                        StatusCode::OK,
                        BTreeMap::new(),
                        Some(g),
                    );
                    p.await
                }
            }
        }
        Err(Refused::Page(r)) => *r,
        Err(Refused::Form(status, errors)) => {
            let errors = BTreeMap::from([(a.form, errors)]);
            page(panel, ctx, signed, a.which, status, errors, None).await
        }
    }
}

fn text(fields: &Fields, name: &str) -> String {
    fields
        .get(name)
        .map(|s| s.trim().to_owned())
        .unwrap_or_default()
}

/// Insert `name` from the form when it is not empty.
fn opt(body: &mut Map<String, Value>, fields: &Fields, name: &str) {
    let v = text(fields, name);
    if !v.is_empty() {
        body.insert(name.into(), json!(v));
    }
}

/// A number field into `body`; not a number is an error at it.
fn number(body: &mut Map<String, Value>, fields: &Fields, name: &str, errors: &mut FormErrors) {
    let v = text(fields, name);
    if v.is_empty() {
        return;
    }
    match v.parse::<u64>() {
        Ok(n) => {
            body.insert(name.into(), json!(n));
        }
        Err(_) => errors.set(name, "a whole number, like 100"),
    }
}

/// The password of a change form (`password_mode` keep | generate | set): put
/// into `body`; the generated one returned.
fn password_change(
    body: &mut Map<String, Value>,
    fields: &Fields,
    errors: &mut FormErrors,
) -> Option<String> {
    match fields.get("password_mode").map(String::as_str) {
        Some("set") => {
            let pw = fields.get("password").cloned().unwrap_or_default();
            if pw.is_empty() {
                errors.set(
                    "password",
                    "type the new password, or choose another option",
                );
            }
            body.insert("password".into(), json!(pw));
            None
        }
        Some("generate") => {
            let pw = generate_password();
            body.insert("password".into(), json!(pw));
            Some(pw)
        }
        _ => None,
    }
}

fn done(body: Map<String, Value>, errors: FormErrors) -> Result<Value, FormErrors> {
    if errors.any() {
        Err(errors)
    } else {
        Ok(Value::Object(body))
    }
}

/// The field of these forms for an API field (the same names, lists by index).
pub fn same_field(api: &str) -> Option<&'static str> {
    const FIELDS: &[&str] = &[
        "name", "engine", "customer", "cluster", "domain", "password", "username", "home",
        "quota_mb",
    ];
    if api.starts_with("databases") {
        return Some("databases");
    }
    FIELDS.iter().find(|f| **f == api).copied()
}

/// `POST /databases`: add a database.
pub async fn add_database(
    State(panel): State<Panel>,
    ctx: Ctx,
    Form(fields): Form<Fields>,
) -> Response {
    let signed = signed_in!(ctx);
    let mut body = Map::new();
    body.insert("name".into(), json!(text(&fields, "name")));
    body.insert("engine".into(), json!(text(&fields, "engine")));
    opt(&mut body, &fields, "domain");
    opt(&mut body, &fields, "customer");
    let a = Act {
        which: Which::Databases,
        form: "add-db".into(),
        method: Method::POST,
        path: "/v1/databases".into(),
        body: Ok(Value::Object(body)),
        map: same_field,
        generated: None,
        fields: &fields,
    };
    act(&panel, &ctx, &signed, a).await
}

/// `POST /databases/{name}/delete`: drop a database (its dump stays in the db
/// server's trash for a while).
pub async fn delete_database(
    State(panel): State<Panel>,
    ctx: Ctx,
    Path(name): Path<String>,
    Form(fields): Form<Fields>,
) -> Response {
    let signed = signed_in!(ctx);
    let a = Act {
        which: Which::Databases,
        form: format!("db:{name}"),
        method: Method::DELETE,
        path: format!("/v1/databases/{}", seg(&name)),
        body: Ok(Value::Null),
        map: same_field,
        generated: None,
        fields: &fields,
    };
    act(&panel, &ctx, &signed, a).await
}

/// `POST /databases/users`: add a user (password empty: generated, shown once).
pub async fn add_user(
    State(panel): State<Panel>,
    ctx: Ctx,
    Form(fields): Form<Fields>,
) -> Response {
    let signed = signed_in!(ctx);
    let mut body = Map::new();
    body.insert("name".into(), json!(text(&fields, "name")));
    opt(&mut body, &fields, "engine");
    opt(&mut body, &fields, "customer");
    if let Some(pw) = fields.get("password").filter(|p| !p.is_empty()) {
        body.insert("password".into(), json!(pw));
    }
    body.insert(
        "databases".into(),
        json!(name_list(&text(&fields, "databases"))),
    );
    let a = Act {
        which: Which::Databases,
        form: "add-user".into(),
        method: Method::POST,
        path: "/v1/db-users".into(),
        body: Ok(Value::Object(body)),
        map: same_field,
        generated: None,
        fields: &fields,
    };
    act(&panel, &ctx, &signed, a).await
}

/// `POST /databases/users/{name}/edit`: its databases and password.
pub async fn edit_user(
    State(panel): State<Panel>,
    ctx: Ctx,
    Path(name): Path<String>,
    Form(fields): Form<Fields>,
) -> Response {
    let signed = signed_in!(ctx);
    let mut errors = FormErrors::none();
    let mut body = Map::new();
    body.insert(
        "databases".into(),
        json!(name_list(&text(&fields, "databases"))),
    );
    let generated = password_change(&mut body, &fields, &mut errors).map(|pw| (name.clone(), pw));
    let a = Act {
        which: Which::Databases,
        form: format!("user:{name}"),
        method: Method::PATCH,
        path: format!("/v1/db-users/{}", seg(&name)),
        body: done(body, errors),
        map: same_field,
        generated,
        fields: &fields,
    };
    act(&panel, &ctx, &signed, a).await
}

/// `POST /databases/users/{name}/delete`.
pub async fn delete_user(
    State(panel): State<Panel>,
    ctx: Ctx,
    Path(name): Path<String>,
    Form(fields): Form<Fields>,
) -> Response {
    let signed = signed_in!(ctx);
    let a = Act {
        which: Which::Databases,
        form: format!("user:{name}"),
        method: Method::DELETE,
        path: format!("/v1/db-users/{}", seg(&name)),
        body: Ok(Value::Null),
        map: same_field,
        generated: None,
        fields: &fields,
    };
    act(&panel, &ctx, &signed, a).await
}

/// `POST /ftp`: add an FTP account (password empty: generated, shown once).
pub async fn add_ftp(State(panel): State<Panel>, ctx: Ctx, Form(fields): Form<Fields>) -> Response {
    let signed = signed_in!(ctx);
    let mut errors = FormErrors::none();
    let mut body = Map::new();
    body.insert("username".into(), json!(text(&fields, "username")));
    body.insert("domain".into(), json!(text(&fields, "domain")));
    opt(&mut body, &fields, "home");
    number(&mut body, &fields, "quota_mb", &mut errors);
    if let Some(pw) = fields.get("password").filter(|p| !p.is_empty()) {
        body.insert("password".into(), json!(pw));
    }
    let a = Act {
        which: Which::Ftp,
        form: "add-ftp".into(),
        method: Method::POST,
        path: "/v1/ftp-accounts".into(),
        body: done(body, errors),
        map: same_field,
        generated: None,
        fields: &fields,
    };
    act(&panel, &ctx, &signed, a).await
}

/// `POST /ftp/{username}/edit`: home, quota, password.
pub async fn edit_ftp(
    State(panel): State<Panel>,
    ctx: Ctx,
    Path(username): Path<String>,
    Form(fields): Form<Fields>,
) -> Response {
    let signed = signed_in!(ctx);
    let mut errors = FormErrors::none();
    let mut body = Map::new();
    opt(&mut body, &fields, "home");
    number(&mut body, &fields, "quota_mb", &mut errors);
    let generated =
        password_change(&mut body, &fields, &mut errors).map(|pw| (username.clone(), pw));
    let a = Act {
        which: Which::Ftp,
        form: format!("ftp:{username}"),
        method: Method::PATCH,
        path: format!("/v1/ftp-accounts/{}", seg(&username)),
        body: done(body, errors),
        map: same_field,
        generated,
        fields: &fields,
    };
    act(&panel, &ctx, &signed, a).await
}

/// `POST /ftp/{username}/delete`.
pub async fn delete_ftp(
    State(panel): State<Panel>,
    ctx: Ctx,
    Path(username): Path<String>,
    Form(fields): Form<Fields>,
) -> Response {
    let signed = signed_in!(ctx);
    let a = Act {
        which: Which::Ftp,
        form: format!("ftp:{username}"),
        method: Method::DELETE,
        path: format!("/v1/ftp-accounts/{}", seg(&username)),
        body: Ok(Value::Null),
        map: same_field,
        generated: None,
        fields: &fields,
    };
    act(&panel, &ctx, &signed, a).await
}
