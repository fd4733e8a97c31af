//! The account page (`/account`): two-factor authentication (enrol with a QR
//! code, confirm with a code, recovery codes shown once, disable), and for
//! resellers and admins the form to act as a customer. Acting as a customer is
//! the API's impersonation token (`POST /v1/auth/impersonate`) put in place of
//! the session's own, which is kept beside it and back in place on stop; every
//! page shows the banner "acting as X (you are Y) — stop" meanwhile.

use std::time::Instant;

use askama::Template;
use axum::extract::State;
use axum::response::{IntoResponse, Redirect, Response};
use axum::Form;
use http::{Method, StatusCode};
use serde_json::{json, Value};

use crate::api::Failure;
use crate::forms::{Fields, FormErrors};
use crate::guard::{Ctx, Signed};
use crate::session::Session;
use crate::views::{self, Nav};
use crate::Panel;

/// The account page, in one of its states.
#[derive(Template)]
#[template(path = "account.html")]
pub struct AccountPage {
    /// The header.
    pub nav: Option<Nav>,
    /// The session's CSRF token (every form carries it).
    pub csrf: String,
    /// The API's two-factor state.
    pub totp: proto::v1::TotpStatus,
    /// A started enrolment: the QR code (SVG) and secret to confirm.
    pub enrolment: Option<proto::v1::TotpEnrolment>,
    /// Recovery codes, shown once right after confirming.
    pub recovery_codes: Vec<String>,
    /// Errors of the two-factor forms.
    pub totp_errors: FormErrors,
    /// Resellers and admins (not while acting) may act as a customer.
    pub may_act: bool,
    /// Errors of the act-as form.
    pub act_errors: FormErrors,
}

fn signed(ctx: &Ctx) -> Option<Signed> {
    ctx.require().cloned()
}

fn failed(panel: &Panel, signed: &Signed, f: Failure) -> Response {
    if f.status == StatusCode::UNAUTHORIZED {
        panel.sessions.remove(&signed.id);
        return Redirect::to("/login").into_response();
    }
    views::error_page(f.status, &f.error.message, Some(&signed.session))
}

async fn call(
    panel: &Panel,
    ctx: &Ctx,
    s: &Session,
    method: Method,
    path: &str,
    body: Option<&Value>,
) -> crate::api::Reply {
    panel
        .api
        .call(method, path, Some(&s.token), body, &ctx.ext)
        .await
}

/// Render the account page with `page`'s extras filled in.
async fn page(
    panel: &Panel,
    ctx: &Ctx,
    signed: &Signed,
    status: StatusCode,
    build: impl FnOnce(&mut AccountPage),
) -> Response {
    let s = &signed.session;
    let totp = match call(panel, ctx, s, Method::GET, "/v1/auth/totp", None)
        .await
        .into_result::<proto::v1::TotpStatus>()
    {
        Ok(t) => t,
        Err(f) => return failed(panel, signed, f),
    };
    let mut p = AccountPage {
        nav: Some(Nav::of(s)),
        csrf: s.csrf.clone(),
        totp,
        enrolment: None,
        recovery_codes: Vec::new(),
        totp_errors: FormErrors::none(),
        may_act: s.kind != "customer" && s.own.is_none(),
        act_errors: FormErrors::none(),
    };
    build(&mut p);
    views::render(status, &p)
}

/// `GET /account`.
pub async fn account(State(panel): State<Panel>, ctx: Ctx) -> Response {
    let Some(signed) = signed(&ctx) else {
        return Redirect::to("/login").into_response();
    };
    page(&panel, &ctx, &signed, StatusCode::OK, |_| {}).await
}

/// `POST /account/totp`: start an enrolment; the page shows its QR code.
pub async fn enroll(State(panel): State<Panel>, ctx: Ctx) -> Response {
    let Some(signed) = signed(&ctx) else {
        return Redirect::to("/login").into_response();
    };
    let reply = call(
        &panel,
        &ctx,
        &signed.session,
        Method::POST,
        "/v1/auth/totp",
        None,
    )
    .await;
    match reply.into_result::<proto::v1::TotpEnrolment>() {
        Ok(e) => {
            page(&panel, &ctx, &signed, StatusCode::OK, |p| {
                p.enrolment = Some(e)
            })
            .await
        }
        Err(f) if f.status == StatusCode::UNAUTHORIZED => failed(&panel, &signed, f),
        Err(f) => {
            let status = f.status;
            let errors = FormErrors::from_failure(&f, |_| None);
            page(&panel, &ctx, &signed, status, |p| p.totp_errors = errors).await
        }
    }
}

/// `POST /account/totp/confirm`: a code turns two-factor on; the page shows the
/// recovery codes once.
pub async fn confirm(State(panel): State<Panel>, ctx: Ctx, Form(fields): Form<Fields>) -> Response {
    let Some(signed) = signed(&ctx) else {
        return Redirect::to("/login").into_response();
    };
    let code = fields.get("code").cloned().unwrap_or_default();
    let reply = call(
        &panel,
        &ctx,
        &signed.session,
        Method::POST,
        "/v1/auth/totp/confirm",
        Some(&json!({ "code": code.trim() })),
    )
    .await;
    match reply.into_result::<proto::v1::RecoveryCodes>() {
        Ok(r) => {
            page(&panel, &ctx, &signed, StatusCode::OK, |p| {
                p.recovery_codes = r.recovery_codes
            })
            .await
        }
        Err(f) if f.status == StatusCode::UNAUTHORIZED => failed(&panel, &signed, f),
        Err(f) => {
            let status = f.status;
            let errors = FormErrors::from_failure(&f, |a| (a == "code").then_some("confirm-code"));
            page(&panel, &ctx, &signed, status, |p| p.totp_errors = errors).await
        }
    }
}

/// `POST /account/totp/disable`: with a current code or the password.
pub async fn disable(State(panel): State<Panel>, ctx: Ctx, Form(fields): Form<Fields>) -> Response {
    let Some(signed) = signed(&ctx) else {
        return Redirect::to("/login").into_response();
    };
    let code = fields.get("code").map(|c| c.trim()).unwrap_or_default();
    let password = fields.get("password").cloned().unwrap_or_default();
    let mut body = json!({});
    if !code.is_empty() {
        body["code"] = json!(code);
    }
    if !password.is_empty() {
        body["password"] = json!(password);
    }
    let reply = call(
        &panel,
        &ctx,
        &signed.session,
        Method::POST,
        "/v1/auth/totp/disable",
        Some(&body),
    )
    .await;
    match reply.ok() {
        Ok(()) => Redirect::to("/account").into_response(),
        Err(f) if f.status == StatusCode::UNAUTHORIZED => failed(&panel, &signed, f),
        Err(f) => {
            let status = f.status;
            let errors = FormErrors::from_failure(&f, |a| match a {
                "code" => Some("disable-code"),
                "password" => Some("disable-password"),
                _ => None,
            });
            page(&panel, &ctx, &signed, status, |p| p.totp_errors = errors).await
        }
    }
}

/// `POST /act-as`: act as the customer named in field `account` (the API decides
/// whether the signed-in account may).
pub async fn act_as(State(panel): State<Panel>, ctx: Ctx, Form(fields): Form<Fields>) -> Response {
    let Some(signed) = signed(&ctx) else {
        return Redirect::to("/login").into_response();
    };
    let own = signed.session.clone();
    if own.own.is_some() {
        return views::error_page(
            StatusCode::CONFLICT,
            "You are already acting as a customer: stop first.",
            Some(&own),
        );
    }
    let account = fields
        .get("account")
        .map(|a| a.trim().to_owned())
        .unwrap_or_default();
    let reply = call(
        &panel,
        &ctx,
        &own,
        Method::POST,
        "/v1/auth/impersonate",
        Some(&json!({ "account": account })),
    )
    .await;
    let created = match reply.into_result::<proto::v1::TokenCreated>() {
        Ok(c) => c,
        Err(f) if f.status == StatusCode::UNAUTHORIZED => return failed(&panel, &signed, f),
        Err(f) => {
            let status = f.status;
            let errors = FormErrors::from_failure(&f, |a| (a == "account").then_some("account"))
                .keep(&fields);
            return page(&panel, &ctx, &signed, status, |p| p.act_errors = errors).await;
        }
    };
    let acting = Session {
        token: created.token,
        token_id: created.info.id,
        account: created.info.account,
        kind: "customer".to_owned(),
        csrf: own.csrf.clone(),
        own: Some(Box::new(own)),
    };
    if !panel.sessions.replace(&signed.id, acting, Instant::now()) {
        return Redirect::to("/login").into_response();
    }
    Redirect::to("/").into_response()
}

/// `POST /act-as/stop`: revoke the impersonation token, back to the own session.
pub async fn stop_acting(State(panel): State<Panel>, ctx: Ctx) -> Response {
    let Some(signed) = signed(&ctx) else {
        return Redirect::to("/login").into_response();
    };
    let acting = signed.session;
    let Some(own) = acting.own.clone() else {
        return Redirect::to("/").into_response();
    };
    let only_acting = Session {
        own: None,
        ..acting
    };
    crate::guard::revoke_now(&panel.api, &only_acting, &ctx.ext).await;
    if !panel.sessions.replace(&signed.id, *own, Instant::now()) {
        return Redirect::to("/login").into_response();
    }
    Redirect::to("/").into_response()
}
