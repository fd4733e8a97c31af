//! Signing in and out. Sign-in is the API's own `POST /v1/auth/login` (so the
//! shared login throttle and the password check are the API's); the token it
//! returns expires after a day at most, so a session lost with a controller
//! restart leaves no lasting token behind. Sign-out revokes the token through the
//! API before the session is forgotten.

use std::time::Instant;

use axum::extract::State;
use axum::response::{IntoResponse, Redirect, Response};
use axum::Form;
use http::{header, HeaderValue, Method, StatusCode};
use serde_json::json;

use crate::forms::{Fields, FormErrors};
use crate::guard::{revoke, Ctx};
use crate::session::{self, random_secret, Session};
use crate::views::{self, LoginPage};
use crate::Panel;

/// Days a panel session's API token is valid for at most (the session's idle
/// timeout ends it long before, unless the controller restarted).
pub const TOKEN_DAYS: u32 = 1;

fn with_cookie(mut res: Response, name: &str, value: Option<&str>) -> Response {
    if let Ok(v) = HeaderValue::from_str(&session::set_cookie(name, value)) {
        res.headers_mut().append(header::SET_COOKIE, v);
    }
    res
}

fn login_form(status: StatusCode, csrf: String, errors: FormErrors) -> Response {
    let res = views::render(
        status,
        &LoginPage {
            nav: None,
            csrf: csrf.clone(),
            errors,
        },
    );
    with_cookie(res, session::LOGIN_COOKIE, Some(&csrf))
}

/// True for six digits (spaces allowed): a TOTP code rather than a recovery code.
pub fn looks_like_totp(code: &str) -> bool {
    let digits: Vec<u8> = code.bytes().filter(|b| !b.is_ascii_whitespace()).collect();
    digits.len() == 6 && digits.iter().all(u8::is_ascii_digit)
}

/// The sign-in form's field for an API field of `POST /v1/auth/login`.
pub fn login_field(api: &str) -> Option<&'static str> {
    match api {
        "totp_code" | "recovery_code" => Some("code"),
        _ => None,
    }
}

/// `GET /login`: the form (its CSRF token in a cookie of its own), or the
/// dashboard when already signed in.
pub async fn login_page(ctx: Ctx) -> Response {
    if ctx.signed.is_some() {
        return Redirect::to("/").into_response();
    }
    login_form(StatusCode::OK, random_secret(), FormErrors::none())
}

/// `POST /login` (CSRF checked by the guard): account and password to the API.
pub async fn login(State(panel): State<Panel>, ctx: Ctx, Form(fields): Form<Fields>) -> Response {
    let account = fields.get("account").cloned().unwrap_or_default();
    let password = fields.get("password").cloned().unwrap_or_default();
    let mut body = json!({
        "account": account.trim(),
        "password": password,
        "token_name": "panel session",
        "expires_in_days": TOKEN_DAYS,
    });
    // One field for the second factor: six digits are the authenticator's code,
    // anything else a recovery code.
    let code = fields.get("code").map(|c| c.trim()).unwrap_or_default();
    if !code.is_empty() {
        let key = if looks_like_totp(code) {
            "totp_code"
        } else {
            "recovery_code"
        };
        body[key] = json!(code);
    }
    let reply = panel
        .api
        .call(Method::POST, "/v1/auth/login", None, Some(&body), &ctx.ext)
        .await;
    let again = |status: StatusCode, message: String| {
        let mut errors = FormErrors::none().keep(&fields);
        errors.general = Some(message);
        login_form(status, random_secret(), errors)
    };
    let created: proto::v1::TokenCreated = match reply.into_result() {
        Ok(c) => c,
        Err(f) => {
            let errors = FormErrors::from_failure(&f, login_field).keep(&fields);
            return login_form(f.status, random_secret(), errors);
        }
    };
    let who: proto::v1::WhoAmI = match panel
        .api
        .call(
            Method::GET,
            "/v1/auth/whoami",
            Some(&created.token),
            None,
            &ctx.ext,
        )
        .await
        .into_result()
    {
        Ok(w) => w,
        Err(f) => return again(f.status, f.error.message),
    };
    let (id, dropped) = panel.sessions.create(
        Session {
            token: created.token,
            token_id: created.info.id,
            account: who.account,
            kind: who.kind,
            csrf: random_secret(),
            own: None,
        },
        Instant::now(),
    );
    for s in dropped {
        revoke(&panel, s, ctx.ext.clone());
    }
    let res = Redirect::to("/").into_response();
    let res = with_cookie(res, session::COOKIE, Some(&id));
    with_cookie(res, session::LOGIN_COOKIE, None)
}

/// `POST /logout` (CSRF checked by the guard): revoke the token, forget the
/// session, clear the cookie.
pub async fn logout(State(panel): State<Panel>, ctx: Ctx) -> Response {
    if let Some(signed) = &ctx.signed {
        crate::guard::revoke_now(&panel.api, &signed.session, &ctx.ext).await;
        panel.sessions.remove(&signed.id);
    }
    with_cookie(
        Redirect::to("/login").into_response(),
        session::COOKIE,
        None,
    )
}
