//! The caller's own sign-in security: TOTP two-factor enrolment
//! (`/v1/auth/totp...`), the second factor of `POST /v1/auth/login`, and
//! impersonation (`POST /v1/auth/impersonate`). The TOTP arithmetic is
//! [`crate::totp`]; the secret is a [`Secret`] `totp:<account>` below the account
//! (deleted with it).

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use model::entity::{Account, Kind, Secret, SecretPurpose};
use model::AccountKind;
use proto::v1::{
    ErrorBody, Impersonate, RecoveryCodes, TokenCreated, TotpConfirm, TotpDisable, TotpEnrolment,
    TotpStatus,
};
use store::{Actor, NewObject, Scope, Stored};

use super::auth::token_view;
use super::Names;
use crate::auth::{
    hash_blocking, issue_token, now_unix, owner_of_account, verify_blocking, verify_login_blocking,
    Caller,
};
use crate::error::{ApiError, ApiJson, ApiResult};
use crate::state::AppState;
use crate::totp::{self, TotpState};

/// Default and longest lifetime of an impersonation token, in minutes.
pub const IMPERSONATION_MINUTES: (u32, u32) = (60, 480);

fn store_name(account: &str) -> String {
    SecretPurpose::Totp.store_name(account)
}

async fn stored_totp(state: &AppState, account: &str) -> ApiResult<Option<Stored<Secret>>> {
    Ok(state
        .store
        .get_by_name::<Secret>(Scope::All, &store_name(account))
        .await?)
}

async fn own_account(state: &AppState, caller: &Caller) -> ApiResult<Stored<Account>> {
    state
        .store
        .get::<Account>(Scope::All, caller.account_id)
        .await?
        .ok_or_else(|| ApiError::unauthorized("the account no longer exists"))
}

/// `GET /v1/auth/totp`: whether the caller has two-factor authentication.
#[utoipa::path(get, path = "/v1/auth/totp", tag = "auth",
    responses((status = 200, body = TotpStatus), (status = 401, body = ErrorBody)))]
pub async fn totp_status(
    State(state): State<AppState>,
    caller: Caller,
) -> ApiResult<Json<TotpStatus>> {
    let s = stored_totp(&state, caller.account.name.as_str()).await?;
    let st = s.as_ref().map(|s| TotpState::of(&s.data));
    Ok(Json(TotpStatus {
        enrolled: s.is_some(),
        confirmed: st.as_ref().is_some_and(|s| s.confirmed),
        recovery_codes_left: st.map_or(0, |s| s.recovery.len()),
    }))
}

/// `POST /v1/auth/totp`: start an enrolment (a new secret, replacing an
/// unconfirmed one); 409 when two-factor is already on (disable it first).
#[utoipa::path(post, path = "/v1/auth/totp", tag = "auth",
    responses((status = 201, body = TotpEnrolment), (status = 403, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn totp_enroll(
    State(state): State<AppState>,
    caller: Caller,
) -> ApiResult<(StatusCode, Json<TotpEnrolment>)> {
    caller.require_own()?;
    let account = own_account(&state, &caller).await?;
    let name = account.meta.name.clone();
    let mut tx = state.store.begin(caller.actor()).await?;
    let fresh = totp::new_stored(&name);
    let secret = fresh.private.clone();
    match tx.get_by_name::<Secret>(&store_name(&name)).await? {
        Some(cur) if TotpState::of(&cur.data).confirmed => {
            return Err(ApiError::conflict(
                "totp",
                "two-factor authentication is already on; disable it first to enrol a new authenticator",
            ));
        }
        Some(cur) => {
            tx.update(cur.meta.id, &cur.meta.name, fresh).await?;
        }
        None => {
            tx.create(NewObject {
                name: store_name(&name),
                owner: owner_of_account(&account),
                parent: Some(account.meta.id),
                data: fresh,
            })
            .await?;
        }
    }
    tx.commit().await?;
    let otpauth_uri = totp::otpauth_uri(&name, &secret);
    let qr_svg = totp::qr_svg(&otpauth_uri)
        .ok_or_else(|| ApiError::internal("cannot render the QR code"))?;
    Ok((
        StatusCode::CREATED,
        Json(TotpEnrolment {
            secret,
            otpauth_uri,
            qr_svg,
        }),
    ))
}

/// `POST /v1/auth/totp/confirm`: a code from the authenticator turns two-factor
/// on; the answer holds the ten recovery codes, shown this once.
#[utoipa::path(post, path = "/v1/auth/totp/confirm", tag = "auth", request_body = TotpConfirm,
    responses((status = 200, body = RecoveryCodes), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn totp_confirm(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(req): ApiJson<TotpConfirm>,
) -> ApiResult<Json<RecoveryCodes>> {
    caller.require_own()?;
    let name = caller.account.name.to_string();
    let codes = totp::new_recovery_codes();
    let mut hashes = Vec::with_capacity(codes.len());
    for c in &codes {
        hashes.push(hash_blocking(totp::normalise_recovery(c)).await?);
    }
    let mut tx = state.store.begin(caller.actor()).await?;
    let cur = tx
        .get_by_name::<Secret>(&store_name(&name))
        .await?
        .ok_or_else(|| {
            ApiError::conflict(
                "totp",
                "no enrolment to confirm: start one with POST /v1/auth/totp",
            )
        })?;
    let mut st = TotpState::of(&cur.data);
    if st.confirmed {
        return Err(ApiError::conflict(
            "totp",
            "two-factor authentication is already on",
        ));
    }
    let step = totp::accept(&cur.data.private, &req.code, now_unix(), st.last_step)
        .ok_or_else(|| {
            ApiError::invalid(
                "code",
                "wrong_totp_code",
                "the code is not the authenticator's current one (6 digits; check the device's clock)",
            )
        })?;
    st.confirmed = true;
    st.last_step = step;
    st.recovery = hashes;
    let mut data = cur.data.clone();
    data.public = st.to_json();
    tx.update(cur.meta.id, &cur.meta.name, data).await?;
    tx.commit().await?;
    Ok(Json(RecoveryCodes {
        recovery_codes: codes,
    }))
}

/// `POST /v1/auth/totp/disable`: turn two-factor off, with a current code or the
/// account's password.
#[utoipa::path(post, path = "/v1/auth/totp/disable", tag = "auth", request_body = TotpDisable,
    responses((status = 204), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn totp_disable(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(req): ApiJson<TotpDisable>,
) -> ApiResult<StatusCode> {
    caller.require_own()?;
    let account = own_account(&state, &caller).await?;
    let name = account.meta.name.clone();
    stored_totp(&state, &name)
        .await?
        .ok_or_else(|| ApiError::not_found("two-factor authentication is not on"))?;
    match (req.code.as_deref(), req.password) {
        (Some(code), _) if !code.trim().is_empty() => {
            let mut tx = state.store.begin(caller.actor()).await?;
            use_code(&mut tx, &name, code).await?.ok_or_else(|| {
                ApiError::invalid("code", "wrong_totp_code", "wrong or already used code")
            })?;
            delete_totp(&mut tx, &name).await?;
            tx.commit().await?;
        }
        (_, Some(pw)) if !pw.is_empty() => {
            let hash = account.data.password_hash.clone().ok_or_else(|| {
                ApiError::invalid(
                    "password",
                    "no_password",
                    "the account has no password; give a code",
                )
            })?;
            if !verify_login_blocking(pw, hash).await?.is_right() {
                return Err(ApiError::invalid(
                    "password",
                    "wrong_password",
                    "wrong password",
                ));
            }
            let mut tx = state.store.begin(caller.actor()).await?;
            delete_totp(&mut tx, &name).await?;
            tx.commit().await?;
        }
        _ => {
            return Err(ApiError::invalid(
                "code",
                "required",
                "give a current code (`code`) or the account's password (`password`)",
            ))
        }
    }
    Ok(StatusCode::NO_CONTENT)
}

async fn delete_totp(tx: &mut store::Tx, account: &str) -> ApiResult<()> {
    if let Some(s) = tx.get_by_name::<Secret>(&store_name(account)).await? {
        tx.delete(Kind::Secret, s.meta.id).await?;
    }
    Ok(())
}

/// Accept TOTP `code` for `account` inside `tx` (its step recorded so it never
/// works again); `None` when wrong, replayed, or two-factor is not on.
async fn use_code(tx: &mut store::Tx, account: &str, code: &str) -> ApiResult<Option<()>> {
    let Some(cur) = tx.get_by_name::<Secret>(&store_name(account)).await? else {
        return Ok(None);
    };
    let mut st = TotpState::of(&cur.data);
    if !st.confirmed {
        return Ok(None);
    }
    let Some(step) = totp::accept(&cur.data.private, code, now_unix(), st.last_step) else {
        return Ok(None);
    };
    st.last_step = step;
    let mut data = cur.data.clone();
    data.public = st.to_json();
    tx.update(cur.meta.id, &cur.meta.name, data).await?;
    Ok(Some(()))
}

/// The second factor of a login whose password was right: nothing when the
/// account has no confirmed TOTP; otherwise a current code (`totp_code`) or an
/// unused recovery code (`recovery_code`, used up). `Err(missing)` is 401 naming
/// `totp_code`; a wrong code is 401 naming the field it came in.
pub async fn second_factor(
    state: &AppState,
    account: &Stored<Account>,
    totp_code: Option<String>,
    recovery_code: Option<String>,
) -> Result<(), SecondFactor> {
    let name = account.meta.name.clone();
    let Some(cur) = stored_totp(state, &name).await? else {
        return Ok(());
    };
    let st = TotpState::of(&cur.data);
    if !st.confirmed {
        return Ok(());
    }
    let actor = Actor {
        account: Some(account.meta.id),
        label: name.clone(),
    };
    let totp_code = totp_code.filter(|c| !c.trim().is_empty());
    let recovery_code = recovery_code.filter(|c| !c.trim().is_empty());
    if let Some(code) = totp_code {
        let mut tx = state.store.begin(actor).await?;
        if use_code(&mut tx, &name, &code).await?.is_none() {
            return Err(SecondFactor::Wrong(
                ApiError::unauthorized(
                    "wrong or already used two-factor code: wait for the next one",
                )
                .with_field("totp_code")
                .with_rule("wrong_totp_code"),
            ));
        }
        tx.commit().await?;
        return Ok(());
    }
    let Some(code) = recovery_code else {
        return Err(SecondFactor::Missing(
            ApiError::unauthorized(
                "this account has two-factor authentication: give the authenticator's code (`totp_code`) or a recovery code (`recovery_code`)",
            )
            .with_field("totp_code")
            .with_rule("totp_required"),
        ));
    };
    // argon2 outside the transaction; inside, the hash must still be there.
    let code = totp::normalise_recovery(&code);
    let mut matched = None;
    for h in &st.recovery {
        if verify_blocking(code.clone(), h.clone()).await? {
            matched = Some(h.clone());
            break;
        }
    }
    let wrong = || {
        SecondFactor::Wrong(
            ApiError::unauthorized("wrong or already used recovery code")
                .with_field("recovery_code")
                .with_rule("wrong_recovery_code"),
        )
    };
    let Some(hash) = matched else {
        return Err(wrong());
    };
    let mut tx = state.store.begin(actor).await?;
    let Some(cur) = tx.get_by_name::<Secret>(&store_name(&name)).await? else {
        return Err(wrong());
    };
    let mut st = TotpState::of(&cur.data);
    let before = st.recovery.len();
    st.recovery.retain(|h| *h != hash);
    if st.recovery.len() == before {
        return Err(wrong());
    }
    let mut data = cur.data.clone();
    data.public = st.to_json();
    tx.update(cur.meta.id, &cur.meta.name, data).await?;
    tx.commit().await?;
    tracing::info!(account = %name, left = st.recovery.len(), "login with a recovery code");
    Ok(())
}

/// Why [`second_factor`] refused.
pub enum SecondFactor {
    /// No code given (the password was right: not counted as a failure).
    Missing(ApiError),
    /// A wrong or replayed code (counted by the login throttle).
    Wrong(ApiError),
    /// The store failed.
    Store(ApiError),
}

impl From<ApiError> for SecondFactor {
    fn from(e: ApiError) -> Self {
        SecondFactor::Store(e)
    }
}

impl From<store::StoreError> for SecondFactor {
    fn from(e: store::StoreError) -> Self {
        SecondFactor::Store(e.into())
    }
}

/// `POST /v1/auth/impersonate`: a token acting as a customer the caller manages
/// (a reseller its own customers, an admin any), valid `minutes` (default 60, at
/// most 480). Every change made with it is audited as `<caller> as <customer>`.
#[utoipa::path(post, path = "/v1/auth/impersonate", tag = "auth", request_body = Impersonate,
    responses((status = 201, body = TokenCreated), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn impersonate(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(req): ApiJson<Impersonate>,
) -> ApiResult<(StatusCode, Json<TokenCreated>)> {
    caller.require_own()?;
    if caller.account.kind == AccountKind::Customer {
        return Err(ApiError::forbidden(
            "only resellers and admins act as customers",
        ));
    }
    let (default, max) = IMPERSONATION_MINUTES;
    let minutes = req.minutes.unwrap_or(default);
    if !(1..=max).contains(&minutes) {
        return Err(ApiError::invalid(
            "minutes",
            "out_of_range",
            format!("minutes is 1 to {max}"),
        ));
    }
    // The caller's own scope finds the account: another reseller's customer is
    // the same 404 as one that does not exist.
    let target = state
        .store
        .get_by_name::<Account>(caller.scope(), req.account.trim())
        .await?
        .filter(|a| a.meta.id != caller.account_id)
        .ok_or_else(|| {
            ApiError::not_found(format!("there is no customer `{}`", req.account.trim()))
                .with_field("account")
        })?;
    if target.data.kind != AccountKind::Customer {
        return Err(
            ApiError::forbidden("only customer accounts can be acted as").with_field("account"),
        );
    }
    if target.data.disabled {
        return Err(ApiError::invalid(
            "account",
            "disabled",
            "the account is disabled",
        ));
    }
    let expires_at = now_unix() + i64::from(minutes) * 60;
    let label = format!("impersonation by {}", caller.account.name);
    let label: String = label.chars().take(64).collect();
    let mut tx = state.store.begin(caller.actor()).await?;
    let (token, stored) = issue_token(
        &mut tx,
        &target,
        &label,
        Some(expires_at),
        Some(caller.account_id),
    )
    .await?;
    tx.commit().await?;
    tracing::info!(by = %caller.account.name, account = %target.meta.name, minutes, "impersonation token issued");
    let info = token_view(&mut Names::new(&state.store), &stored).await?;
    Ok((StatusCode::CREATED, Json(TokenCreated { token, info })))
}
