//! The mail page of a domain (`/mail/{domain}`): its mailboxes (quota, display
//! name, logins on or off, a new password typed or generated and shown once,
//! delete) and its aliases and forwards (an alias delivers to mailboxes of the
//! platform or forwards to any address; add, change the destinations, delete).
//! Each form is one API call through [`crate::flow::submit`]; the API's errors
//! are shown at the form's fields.

use std::collections::BTreeMap;

use askama::Template;
use axum::extract::{Path, State};
use axum::response::Response;
use axum::Form;
use http::{Method, StatusCode};
use rand::Rng as _;
use serde_json::{json, Map, Value};

use crate::api::{seg, Failure};
use crate::flow::{failed, see, signed_in, submit, Refused};
use crate::forms::{Fields, FormErrors};
use crate::forms_sites::name_list;
use crate::guard::{Ctx, Signed};
use crate::views::{self, Nav};
use crate::Panel;

/// The mail page of one domain.
#[derive(Template)]
#[template(path = "mail.html")]
pub struct MailPage {
    /// The header.
    pub nav: Option<Nav>,
    /// The domain (ASCII).
    pub domain: String,
    /// Its mailboxes.
    pub mailboxes: Vec<proto::v1::MailboxView>,
    /// Its aliases and forwards.
    pub aliases: Vec<proto::v1::AliasView>,
    /// Errors by form: `add-alias`, `mb:ADDRESS`, `alias:ADDRESS`.
    pub errors: BTreeMap<String, FormErrors>,
    /// A password generated for a mailbox, shown once: (address, password).
    pub generated: Option<(String, String)>,
    /// The CSRF token.
    pub csrf: String,
}

impl MailPage {
    /// The errors of form `name`.
    pub fn err(&self, name: &str) -> &FormErrors {
        static NONE: std::sync::OnceLock<FormErrors> = std::sync::OnceLock::new();
        self.errors
            .get(name)
            .unwrap_or_else(|| NONE.get_or_init(FormErrors::none))
    }

    /// The errors of the edit form of mailbox `address`.
    pub fn mb_err(&self, address: &str) -> &FormErrors {
        self.err(&format!("mb:{address}"))
    }

    /// The errors of the edit form of alias `address`.
    pub fn alias_err(&self, address: &str) -> &FormErrors {
        self.err(&format!("alias:{address}"))
    }
}

/// A password of 20 letters and digits (about 119 bits), shown once.
pub fn generate_password() -> String {
    const CHARS: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789";
    let mut rng = rand::thread_rng();
    (0..20)
        .map(|_| CHARS[rng.gen_range(0..CHARS.len())] as char)
        .collect()
}

/// `PATCH /v1/mailboxes/{address}` from a mailbox's edit form (`quota_mb`,
/// `display_name`, `enabled`, `password_mode` = `keep` | `set` | `generate`,
/// `password`); the generated password, if one was asked for.
pub fn mailbox_update(fields: &Fields) -> Result<(Value, Option<String>), FormErrors> {
    let mut errors = FormErrors::none();
    let mut body = Map::new();
    let quota = fields.get("quota_mb").map(|s| s.trim()).unwrap_or_default();
    if !quota.is_empty() {
        match quota.parse::<u64>() {
            Ok(q) => {
                body.insert("quota_mb".into(), json!(q));
            }
            Err(_) => errors.set("quota_mb", "a whole number of MiB, 0 for unlimited"),
        }
    }
    if let Some(d) = fields.get("display_name") {
        body.insert("display_name".into(), json!(d.trim()));
    }
    body.insert(
        "enabled".into(),
        json!(fields.get("enabled").is_some_and(|v| !v.is_empty())),
    );
    let mut generated = None;
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
        }
        Some("generate") => {
            let pw = generate_password();
            body.insert("password".into(), json!(pw));
            generated = Some(pw);
        }
        _ => {}
    }
    if errors.any() {
        return Err(errors);
    }
    Ok((Value::Object(body), generated))
}

/// A mailbox form's field for an API field.
pub fn mailbox_field(api: &str) -> Option<&'static str> {
    match api {
        "quota_mb" => Some("quota_mb"),
        "display_name" => Some("display_name"),
        "password" => Some("password"),
        "enabled" => Some("enabled"),
        _ => None,
    }
}

/// An alias form's body (`local`, `destinations` one a line) for `domain`; the
/// address only when adding.
pub fn alias_body(domain: Option<&str>, fields: &Fields) -> Value {
    let dests = name_list(fields.get("destinations").map_or("", String::as_str));
    let mut body = json!({ "destinations": dests });
    if let Some(d) = domain {
        let local = fields.get("local").map(|s| s.trim()).unwrap_or_default();
        body["address"] = json!(format!("{local}@{d}"));
    }
    body
}

/// An alias form's field for an API field.
pub fn alias_field(api: &str) -> Option<&'static str> {
    match api {
        "address" => Some("local"),
        a if a == "destinations" || a.starts_with("destinations[") => Some("destinations"),
        _ => None,
    }
}

fn no_field(_: &str) -> Option<&'static str> {
    None
}

async fn mail_page(
    panel: &Panel,
    ctx: &Ctx,
    signed: &Signed,
    domain: &str,
    status: StatusCode,
    errors: BTreeMap<String, FormErrors>,
    generated: Option<(String, String)>,
) -> Response {
    let s = &signed.session;
    let load = async {
        let d: proto::v1::DomainView = panel
            .api
            .call(
                Method::GET,
                &format!("/v1/domains/{}", seg(domain)),
                Some(&s.token),
                None,
                &ctx.ext,
            )
            .await
            .into_result()?;
        let q = seg(&d.name);
        let mailboxes = panel
            .api
            .list_all(&format!("/v1/mailboxes?domain={q}"), &s.token, &ctx.ext)
            .await?;
        let aliases = panel
            .api
            .list_all(&format!("/v1/aliases?domain={q}"), &s.token, &ctx.ext)
            .await?;
        Ok::<_, Failure>((d.name, mailboxes, aliases))
    };
    match load.await {
        Ok((domain, mailboxes, aliases)) => views::render(
            status,
            &MailPage {
                nav: Some(Nav::of(s)),
                domain,
                mailboxes,
                aliases,
                errors,
                generated,
                csrf: s.csrf.clone(),
            },
        ),
        Err(f) => failed(panel, signed, f),
    }
}

fn mail_url(domain: &str) -> String {
    format!("/mail/{}", seg(domain))
}

/// `GET /mail/{domain}`.
pub async fn mail(State(panel): State<Panel>, ctx: Ctx, Path(domain): Path<String>) -> Response {
    let signed = signed_in!(ctx);
    let page = mail_page(
        &panel,
        &ctx,
        &signed,
        &domain,
        StatusCode::OK,
        BTreeMap::new(),
        None,
    );
    page.await
}

/// `GET` of a mail form's target: the mail page.
pub async fn to_mail(Path(domain): Path<String>) -> Response {
    see(&mail_url(&domain))
}

/// `GET` of a mailbox's or alias's form target: the mail page.
pub async fn to_mail_of(Path((domain, _)): Path<(String, String)>) -> Response {
    see(&mail_url(&domain))
}

async fn answer(
    panel: &Panel,
    ctx: &Ctx,
    signed: &Signed,
    domain: &str,
    form: String,
    outcome: Result<Value, Refused>,
    generated: Option<(String, String)>,
) -> Response {
    match outcome {
        Ok(_) if generated.is_none() => see(&mail_url(domain)),
        Ok(_) => {
            let page = mail_page(
                panel,
                ctx,
                signed,
                domain,
                StatusCode::OK,
                BTreeMap::new(),
                generated,
            );
            page.await
        }
        Err(Refused::Page(r)) => *r,
        Err(Refused::Form(status, errors)) => {
            let errors = BTreeMap::from([(form, errors)]);
            mail_page(panel, ctx, signed, domain, status, errors, None).await
        }
    }
}

/// `POST /mail/{domain}/aliases`: add an alias or forward.
pub async fn add_alias(
    State(panel): State<Panel>,
    ctx: Ctx,
    Path(domain): Path<String>,
    Form(fields): Form<Fields>,
) -> Response {
    let signed = signed_in!(ctx);
    let body = Ok(alias_body(Some(&domain), &fields));
    let outcome = submit(
        &panel,
        &ctx,
        &signed,
        Method::POST,
        "/v1/aliases",
        body,
        &fields,
        alias_field,
    )
    .await;
    let form = "add-alias".to_owned();
    answer(&panel, &ctx, &signed, &domain, form, outcome, None).await
}

/// `POST /mail/{domain}/aliases/{address}/edit`: new destinations.
pub async fn edit_alias(
    State(panel): State<Panel>,
    ctx: Ctx,
    Path((domain, address)): Path<(String, String)>,
    Form(fields): Form<Fields>,
) -> Response {
    let signed = signed_in!(ctx);
    let path = format!("/v1/aliases/{}", seg(&address));
    let body = Ok(alias_body(None, &fields));
    let outcome = submit(
        &panel,
        &ctx,
        &signed,
        Method::PATCH,
        &path,
        body,
        &fields,
        alias_field,
    )
    .await;
    let form = format!("alias:{address}");
    answer(&panel, &ctx, &signed, &domain, form, outcome, None).await
}

/// `POST /mail/{domain}/aliases/{address}/delete`.
pub async fn delete_alias(
    State(panel): State<Panel>,
    ctx: Ctx,
    Path((domain, address)): Path<(String, String)>,
    Form(fields): Form<Fields>,
) -> Response {
    let signed = signed_in!(ctx);
    let path = format!("/v1/aliases/{}", seg(&address));
    let outcome = submit(
        &panel,
        &ctx,
        &signed,
        Method::DELETE,
        &path,
        Ok(Value::Null),
        &fields,
        no_field,
    )
    .await;
    let form = format!("alias:{address}");
    answer(&panel, &ctx, &signed, &domain, form, outcome, None).await
}

/// `POST /mail/{domain}/mailboxes/{address}/edit`: quota, name, logins, and a
/// password typed or generated (shown once).
pub async fn edit_mailbox(
    State(panel): State<Panel>,
    ctx: Ctx,
    Path((domain, address)): Path<(String, String)>,
    Form(fields): Form<Fields>,
) -> Response {
    let signed = signed_in!(ctx);
    let path = format!("/v1/mailboxes/{}", seg(&address));
    let (body, generated) = match mailbox_update(&fields) {
        Ok((b, g)) => (Ok(b), g),
        Err(e) => (Err(e), None),
    };
    let outcome = submit(
        &panel,
        &ctx,
        &signed,
        Method::PATCH,
        &path,
        body,
        &fields,
        mailbox_field,
    )
    .await;
    let form = format!("mb:{address}");
    let generated = generated.map(|pw| (address.clone(), pw));
    answer(&panel, &ctx, &signed, &domain, form, outcome, generated).await
}

/// `POST /mail/{domain}/mailboxes/{address}/delete`.
pub async fn delete_mailbox(
    State(panel): State<Panel>,
    ctx: Ctx,
    Path((domain, address)): Path<(String, String)>,
    Form(fields): Form<Fields>,
) -> Response {
    let signed = signed_in!(ctx);
    let path = format!("/v1/mailboxes/{}", seg(&address));
    let outcome = submit(
        &panel,
        &ctx,
        &signed,
        Method::DELETE,
        &path,
        Ok(Value::Null),
        &fields,
        no_field,
    )
    .await;
    let form = format!("mb:{address}");
    answer(&panel, &ctx, &signed, &domain, form, outcome, None).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(pairs: &[(&str, &str)]) -> Fields {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn a_generated_password_is_sent_and_returned_once() {
        let (b, g) = mailbox_update(&fields(&[
            ("quota_mb", "500"),
            ("enabled", "on"),
            ("password_mode", "generate"),
        ]))
        .expect("body");
        let pw = g.expect("generated");
        assert_eq!(pw.len(), 20);
        assert_eq!(b["password"], json!(pw));
        assert_eq!(b["quota_mb"], json!(500));
        let (b, g) = mailbox_update(&fields(&[("password_mode", "keep")])).expect("body");
        assert!(g.is_none() && b.get("password").is_none());
        assert_eq!(b["enabled"], json!(false));
        let e = mailbox_update(&fields(&[("quota_mb", "lots")])).expect_err("quota");
        assert!(e.get("quota_mb").is_some());
    }

    #[test]
    fn alias_forms_become_bodies() {
        let b = alias_body(
            Some("example.com"),
            &fields(&[
                ("local", "sales"),
                ("destinations", "a@example.com\nb@example.org"),
            ]),
        );
        assert_eq!(
            b,
            json!({"address": "sales@example.com", "destinations": ["a@example.com", "b@example.org"]})
        );
        assert_eq!(alias_field("destinations[1]"), Some("destinations"));
    }
}
