//! `/v1/auth/login`, `/v1/auth/whoami` and `/v1/tokens`.

use axum::extract::State;
use axum::http::request::Parts;
use axum::http::StatusCode;
use axum::Json;
use model::entity::{Account, ApiToken};
use model::{AccountKind, Slug};
use proto::v1::{
    CreateToken, ErrorBody, ListParams, LoginRequest, Page, TokenCreated, TokenView, WhoAmI,
};
use store::{Actor, Scope, Stored};

use super::account::SecondFactor;
use super::{filters, list_page, rfc3339, visible, Names, Paging};
use crate::auth::{
    client_ip, hash_blocking, issue_token, now_unix, verify_blocking, verify_login_blocking, Caller,
};
use crate::error::{ApiError, ApiJson, ApiPath, ApiQuery, ApiResult};
use crate::state::AppState;

/// The client address, for throttling logins.
pub struct Peer(pub Option<std::net::IpAddr>);

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for Peer {
    type Rejection = ApiError;
    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        Ok(Peer(client_ip(parts)))
    }
}

/// A token as shown (without its secret).
pub async fn token_view(names: &mut Names<'_>, t: &Stored<ApiToken>) -> ApiResult<TokenView> {
    Ok(TokenView {
        id: t.meta.name.clone(),
        name: t.data.name.clone(),
        account: names.account(t.data.account).await?,
        created_at: rfc3339(t.meta.created_at),
        expires_at: t
            .data
            .expires_at
            .and_then(|s| time::OffsetDateTime::from_unix_timestamp(s).ok())
            .map(rfc3339),
    })
}

fn token_name(name: &str) -> ApiResult<String> {
    let n = name.trim();
    if n.is_empty() || model::FreeText::line(n, 64).is_err() {
        return Err(ApiError::invalid(
            "name",
            "bad_token_name",
            "a token name has 1 to 64 characters, no control or bidirectional formatting characters",
        ));
    }
    Ok(n.to_owned())
}

/// `POST /v1/auth/login`: exchange account name and password for a new token.
#[utoipa::path(post, path = "/v1/auth/login", tag = "auth", request_body = LoginRequest,
    responses((status = 201, body = TokenCreated), (status = 401, body = ErrorBody), (status = 429, body = ErrorBody)))]
pub async fn login(
    State(state): State<AppState>,
    Peer(ip): Peer,
    ApiJson(req): ApiJson<LoginRequest>,
) -> ApiResult<(StatusCode, Json<TokenCreated>)> {
    let name = token_name(req.token_name.as_deref().unwrap_or("login"))?;
    let expires_at = expiry(req.expires_in_days)?;
    // The failure is reserved before the password is checked, so concurrent wrong
    // guesses see each other; a right password releases it (crate `throttle`).
    let source = ip.unwrap_or(std::net::IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED));
    let ticket = state.logins.reserve(&req.account, source).map_err(|r| {
        tracing::info!(account = %req.account.trim(), %source, "login throttled");
        ApiError::too_many(r.retry_after_secs())
    })?;
    if !ticket.wait().is_zero() {
        tokio::time::sleep(ticket.wait()).await;
    }
    let fail = || ApiError::unauthorized("wrong account name or password");
    let account = match Slug::new(req.account.trim()) {
        Ok(slug) => {
            state
                .store
                .get_by_name::<Account>(Scope::All, slug.as_str())
                .await?
        }
        Err(_) => None,
    };
    let hash = account.as_ref().and_then(|a| a.data.password_hash.clone());
    let Some((account, hash)) = account.zip(hash) else {
        // Same work as a real check, so timing does not tell which accounts exist.
        let _ = verify_blocking(req.password, DUMMY_HASH.to_owned()).await?;
        return Err(fail());
    };
    let verdict = verify_login_blocking(req.password.clone(), hash.clone()).await?;
    if !verdict.is_right() || account.data.disabled {
        return Err(fail());
    }
    // The second factor, still under the ticket: a wrong code is a failure like a
    // wrong password; a missing one is not (the password was right).
    match super::account::second_factor(&state, &account, req.totp_code, req.recovery_code).await {
        Ok(()) => ticket.succeeded(),
        Err(SecondFactor::Missing(e)) => {
            ticket.succeeded();
            return Err(e);
        }
        Err(SecondFactor::Wrong(e)) => {
            tracing::info!(account = %account.meta.name, %source, "login with a wrong second factor");
            return Err(e);
        }
        Err(SecondFactor::Store(e)) => return Err(e),
    }
    if verdict.needs_rehash() {
        // An imported legacy hash: store argon2id now that the password is known.
        let new = hash_blocking(req.password).await?;
        let actor = Actor {
            account: Some(account.meta.id),
            label: account.meta.name.clone(),
        };
        let outcome = crate::rehash::replace(
            &state.store,
            actor,
            crate::rehash::HashOwner::Account,
            &account.meta.name,
            &hash,
            &new,
            |_| true,
        )
        .await?;
        tracing::info!(account = %account.meta.name, ?outcome, "legacy password hash rehashed to argon2id");
    }
    let actor = Actor {
        account: Some(account.meta.id),
        label: account.meta.name.clone(),
    };
    let mut tx = state.store.begin(actor).await?;
    let (token, stored) = issue_token(&mut tx, &account, &name, expires_at, None).await?;
    tx.commit().await?;
    let info = token_view(&mut Names::new(&state.store), &stored).await?;
    Ok((StatusCode::CREATED, Json(TokenCreated { token, info })))
}

/// The expiry time of a token valid for `days` (none: never expires).
fn expiry(days: Option<u32>) -> ApiResult<Option<i64>> {
    match days {
        None => Ok(None),
        Some(d) if (1..=3650).contains(&d) => Ok(Some(now_unix() + i64::from(d) * 86_400)),
        Some(_) => Err(ApiError::invalid(
            "expires_in_days",
            "out_of_range",
            "expires_in_days is 1 to 3650",
        )),
    }
}

/// An argon2id hash of a random string, verified against when the account does not exist.
const DUMMY_HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$0Vh5TaTOmCkdwlJQd4xWgSq8WzVEnJcKXkNYRtmSBfQ";

/// `GET /v1/auth/whoami`.
#[utoipa::path(get, path = "/v1/auth/whoami", tag = "auth",
    responses((status = 200, body = WhoAmI), (status = 401, body = ErrorBody)))]
pub async fn whoami(caller: Caller) -> Json<WhoAmI> {
    Json(WhoAmI {
        account: caller.account.name.to_string(),
        kind: caller.account.kind.to_string(),
        token_id: caller.token_public_id,
        impersonator: caller.impersonator.map(|i| i.name),
    })
}

/// `POST /v1/tokens`.
#[utoipa::path(post, path = "/v1/tokens", tag = "auth", request_body = CreateToken,
    responses((status = 201, body = TokenCreated), (status = 422, body = ErrorBody)))]
pub async fn create_token(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(req): ApiJson<CreateToken>,
) -> ApiResult<(StatusCode, Json<TokenCreated>)> {
    caller.require_own()?;
    let name = token_name(&req.name)?;
    let account: Stored<Account> = match req.account.as_deref() {
        Some(a) if a != caller.account.name.as_str() => {
            if caller.account.kind == AccountKind::Customer {
                return Err(
                    ApiError::forbidden("customers create tokens for themselves only")
                        .with_field("account"),
                );
            }
            state
                .store
                .get_by_name::<Account>(caller.scope(), a)
                .await?
                .ok_or_else(|| {
                    ApiError::invalid(
                        "account",
                        "unknown_account",
                        format!("there is no account `{a}`"),
                    )
                })?
        }
        _ => state
            .store
            .get::<Account>(Scope::All, caller.account_id)
            .await?
            .ok_or_else(|| ApiError::unauthorized("the account no longer exists"))?,
    };
    let expires_at = expiry(req.expires_in_days)?;
    let mut tx = state.store.begin(caller.actor()).await?;
    let (token, stored) = issue_token(&mut tx, &account, &name, expires_at, None).await?;
    tx.commit().await?;
    let info = token_view(&mut Names::new(&state.store), &stored).await?;
    Ok((StatusCode::CREATED, Json(TokenCreated { token, info })))
}

/// `GET /v1/tokens`: tokens the caller may see (its own; a reseller's customers';
/// an admin's all).
#[utoipa::path(get, path = "/v1/tokens", tag = "auth", params(ListParams),
    responses((status = 200, body = Page<TokenView>)))]
pub async fn list_tokens(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(params): ApiQuery<ListParams>,
) -> ApiResult<Json<Page<TokenView>>> {
    let paging = Paging::new(params.cursor.as_deref(), params.limit)?;
    let (owner, _) = filters(&state, &caller, &params, false, false).await?;
    let scope = caller.scope();
    let (rows, next) = list_page::<ApiToken>(&state, scope, paging, owner, None).await?;
    let mut names = Names::new(&state.store);
    let mut items = Vec::with_capacity(rows.len());
    for t in &rows {
        items.push(token_view(&mut names, t).await?);
    }
    Ok(Json(Page {
        items,
        next_cursor: next,
    }))
}

/// `GET /v1/tokens/{id}`.
#[utoipa::path(get, path = "/v1/tokens/{id}", tag = "auth", params(("id" = String, Path, description = "public token id")),
    responses((status = 200, body = TokenView), (status = 404, body = ErrorBody)))]
pub async fn get_token(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Json<TokenView>> {
    let t = visible::<ApiToken>(&state, &caller, &id, "token").await?;
    Ok(Json(token_view(&mut Names::new(&state.store), &t).await?))
}

/// `DELETE /v1/tokens/{id}`: revoke a token (takes effect immediately).
#[utoipa::path(delete, path = "/v1/tokens/{id}", tag = "auth", params(("id" = String, Path, description = "public token id")),
    responses((status = 204), (status = 404, body = ErrorBody)))]
pub async fn revoke_token(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<StatusCode> {
    let t = visible::<ApiToken>(&state, &caller, &id, "token").await?;
    let mut tx = state.store.begin(caller.actor()).await?;
    tx.delete(model::entity::Kind::Token, t.meta.id).await?;
    tx.commit().await?;
    state.auth.purge_token(t.meta.id);
    Ok(StatusCode::NO_CONTENT)
}
