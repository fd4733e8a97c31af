//! The one flow every form of the panel follows: turn the form into an API
//! request body (or the form's own errors), call the API with the session's
//! token, and sort the answer into success, errors shown at the form's fields
//! (the API's 4xx naming a field, or above the form), or a whole page (the
//! session ended, the object is not the account's).

use axum::response::{IntoResponse, Redirect, Response};
use http::{Method, StatusCode};
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::api::{Failure, Reply};
use crate::forms::{Fields, FormErrors};
use crate::guard::{Ctx, Signed};
use crate::views;
use crate::Panel;

/// The session of a handler's [`Ctx`], or the handler answers a redirect to the
/// sign-in form.
macro_rules! signed_in {
    ($ctx:expr) => {
        match $ctx.require() {
            Some(s) => s.clone(),
            None => {
                return axum::response::IntoResponse::into_response(axum::response::Redirect::to(
                    "/login",
                ))
            }
        }
    };
}
pub(crate) use signed_in;

/// The page for an API failure: its 401 ends the session (sign in again), any
/// other status is shown with the API's message (404 stays 404).
pub fn failed(panel: &Panel, signed: &Signed, f: Failure) -> Response {
    if f.status == StatusCode::UNAUTHORIZED {
        panel.sessions.remove(&signed.id);
        return Redirect::to("/login").into_response();
    }
    views::error_page(f.status, &f.error.message, Some(&signed.session))
}

/// Why a form was not applied.
pub enum Refused {
    /// Show the form again with these errors (and the values typed), answering
    /// with this status.
    Form(StatusCode, FormErrors),
    /// Answer with this page instead (the sign-in form, a 404 page).
    Page(Box<Response>),
}

/// One form submitted: `body` is what [`crate::forms`] made of the fields (or
/// the errors it found itself); `map` gives the form field for an API field name.
/// On success the API's answer as `T` (`Value` when it does not matter).
#[allow(clippy::too_many_arguments)]
pub async fn submit<T: DeserializeOwned>(
    panel: &Panel,
    ctx: &Ctx,
    signed: &Signed,
    method: Method,
    path: &str,
    body: Result<Value, FormErrors>,
    fields: &Fields,
    map: fn(&str) -> Option<&'static str>,
) -> Result<T, Refused> {
    let body = match body {
        Ok(b) => b,
        Err(errors) => {
            return Err(Refused::Form(
                StatusCode::UNPROCESSABLE_ENTITY,
                errors.keep(fields),
            ))
        }
    };
    let body = (!body.is_null()).then_some(body);
    let reply = panel
        .api
        .call(
            method,
            path,
            Some(&signed.session.token),
            body.as_ref(),
            &ctx.ext,
        )
        .await;
    judge(panel, signed, reply, fields, map)
}

/// Sort an API answer to a form (see [`submit`]); for calls [`submit`] does not
/// make itself (an upload's raw body).
pub fn judge<T: DeserializeOwned>(
    panel: &Panel,
    signed: &Signed,
    reply: Reply,
    fields: &Fields,
    map: fn(&str) -> Option<&'static str>,
) -> Result<T, Refused> {
    // An empty answer (204) reads as `null`.
    match reply.into_result::<T>() {
        Ok(v) => Ok(v),
        Err(f)
            if f.status == StatusCode::UNAUTHORIZED
                || (f.status == StatusCode::NOT_FOUND && f.error.field.is_none()) =>
        {
            Err(Refused::Page(Box::new(failed(panel, signed, f))))
        }
        Err(f) => Err(Refused::Form(
            f.status,
            FormErrors::from_failure(&f, map).keep(fields),
        )),
    }
}

/// A redirect (303) to `path`, the answer to a form applied.
pub fn see(path: &str) -> Response {
    Redirect::to(path).into_response()
}
