//! `/v1/ftp-accounts`: FTP logins into a domain's site files.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use model::entity::{FtpAccount, Kind};
use model::limits::LimitField;
use model::{FtpUsername, RelPath, WithField};
use proto::v1::{
    CreateFtpAccount, ErrorBody, FtpAccountView, ListParams, Page, UpdateFtpAccount, WithPassword,
};
use store::{NewObject, Stored};

use super::{
    body_domain, filters, list_page, password_or_generate, rfc3339, visible, Names, Paging,
};
use crate::auth::{hash_blocking, Caller};
use crate::error::{ApiError, ApiJson, ApiPath, ApiQuery, ApiResult};
use crate::state::AppState;

/// An FTP account as shown.
pub async fn ftp_view(names: &mut Names<'_>, f: &Stored<FtpAccount>) -> ApiResult<FtpAccountView> {
    Ok(FtpAccountView {
        username: f.meta.name.clone(),
        domain: names.domain(f.data.domain).await?,
        customer: match f.meta.owner {
            Some(o) => names.account(o).await?,
            None => String::new(),
        },
        home: f.data.home.to_string(),
        quota_mb: f.data.quota_mb,
        created_at: rfc3339(f.meta.created_at),
    })
}

/// `POST /v1/ftp-accounts`: a generated password is returned once when none is given.
#[utoipa::path(post, path = "/v1/ftp-accounts", tag = "ftp", request_body = CreateFtpAccount,
    responses((status = 201, body = WithPassword<FtpAccountView>), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn create_ftp_account(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(req): ApiJson<CreateFtpAccount>,
) -> ApiResult<(StatusCode, Json<WithPassword<FtpAccountView>>)> {
    let username = FtpUsername::new(&req.username).field("username")?;
    let domain = body_domain(&state, &caller, &req.domain, "domain").await?;
    let home = match req.home.as_deref() {
        Some(h) => RelPath::new(h).field("home")?,
        None => RelPath::root(),
    };
    let (password, generated) = password_or_generate(req.password, "password")?;
    let password_hash = hash_blocking(password).await?;
    let data = FtpAccount {
        domain: domain.meta.id,
        username: username.clone(),
        password_hash,
        home,
        quota_mb: 0,
    };
    let mut tx = state.store.begin(caller.actor()).await?;
    let mut data = data;
    if let Some(owner) = domain.meta.owner {
        let default = &state.config.default_plan;
        crate::limits::check_count(&mut tx, default, owner, Kind::FtpAccount).await?;
        let limits =
            crate::limits::ftp_limits(crate::limits::limits_of(&mut tx, default, owner).await?);
        data.quota_mb = crate::limits::quota(
            &limits,
            LimitField::MaxFtpQuotaMb,
            "quota_mb",
            req.quota_mb,
            limits.max_ftp_quota_mb,
            None,
        )?;
    }
    let created = tx
        .create(NewObject {
            name: username.to_string(),
            owner: domain.meta.owner,
            parent: Some(domain.meta.id),
            data,
        })
        .await?;
    tx.commit().await?;
    let object = ftp_view(&mut Names::new(&state.store), &created).await?;
    Ok((
        StatusCode::CREATED,
        Json(WithPassword {
            object,
            generated_password: generated,
        }),
    ))
}

/// `GET /v1/ftp-accounts`.
#[utoipa::path(get, path = "/v1/ftp-accounts", tag = "ftp", params(ListParams), responses((status = 200, body = Page<FtpAccountView>)))]
pub async fn list_ftp_accounts(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(params): ApiQuery<ListParams>,
) -> ApiResult<Json<Page<FtpAccountView>>> {
    let paging = Paging::new(params.cursor.as_deref(), params.limit)?;
    let (owner, parent) = filters(&state, &caller, &params, true, false).await?;
    let (rows, next) =
        list_page::<FtpAccount>(&state, caller.scope(), paging, owner, parent).await?;
    let mut names = Names::new(&state.store);
    let mut items = Vec::with_capacity(rows.len());
    for f in &rows {
        items.push(ftp_view(&mut names, f).await?);
    }
    Ok(Json(Page {
        items,
        next_cursor: next,
    }))
}

/// `GET /v1/ftp-accounts/{username}`.
#[utoipa::path(get, path = "/v1/ftp-accounts/{username}", tag = "ftp", params(("username" = String, Path)),
    responses((status = 200, body = FtpAccountView), (status = 404, body = ErrorBody)))]
pub async fn get_ftp_account(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(username): ApiPath<String>,
) -> ApiResult<Json<FtpAccountView>> {
    let f = visible::<FtpAccount>(&state, &caller, &username, "FTP account").await?;
    Ok(Json(ftp_view(&mut Names::new(&state.store), &f).await?))
}

/// `PATCH /v1/ftp-accounts/{username}`.
#[utoipa::path(patch, path = "/v1/ftp-accounts/{username}", tag = "ftp", params(("username" = String, Path)),
    request_body = UpdateFtpAccount, responses((status = 200, body = FtpAccountView), (status = 404, body = ErrorBody)))]
pub async fn update_ftp_account(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(username): ApiPath<String>,
    ApiJson(req): ApiJson<UpdateFtpAccount>,
) -> ApiResult<Json<FtpAccountView>> {
    let f = visible::<FtpAccount>(&state, &caller, &username, "FTP account").await?;
    let home = req
        .home
        .as_deref()
        .map(RelPath::new)
        .transpose()
        .field("home")?;
    let password_hash = match req.password {
        Some(p) => Some(
            hash_blocking(
                model::Password::new(&p)
                    .field("password")?
                    .expose()
                    .to_owned(),
            )
            .await?,
        ),
        None => None,
    };
    let mut tx = state.store.begin(caller.actor()).await?;
    let mut cur = tx
        .get::<FtpAccount>(f.meta.id)
        .await?
        .ok_or_else(|| ApiError::not_found("FTP account not found"))?;
    if let Some(h) = home {
        cur.data.home = h;
    }
    if let Some(h) = password_hash {
        cur.data.password_hash = h;
    }
    if let (Some(q), Some(owner)) = (req.quota_mb, cur.meta.owner) {
        let limits = crate::limits::ftp_limits(
            crate::limits::limits_of(&mut tx, &state.config.default_plan, owner).await?,
        );
        cur.data.quota_mb = crate::limits::quota(
            &limits,
            LimitField::MaxFtpQuotaMb,
            "quota_mb",
            Some(q),
            q,
            Some(cur.data.quota_mb),
        )?;
    }
    let updated = tx.update(cur.meta.id, &cur.meta.name, cur.data).await?;
    tx.commit().await?;
    Ok(Json(
        ftp_view(&mut Names::new(&state.store), &updated).await?,
    ))
}

/// `DELETE /v1/ftp-accounts/{username}`.
#[utoipa::path(delete, path = "/v1/ftp-accounts/{username}", tag = "ftp", params(("username" = String, Path)),
    responses((status = 204), (status = 404, body = ErrorBody)))]
pub async fn delete_ftp_account(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(username): ApiPath<String>,
) -> ApiResult<StatusCode> {
    let f = visible::<FtpAccount>(&state, &caller, &username, "FTP account").await?;
    let mut tx = state.store.begin(caller.actor()).await?;
    tx.delete(Kind::FtpAccount, f.meta.id).await?;
    tx.commit().await?;
    Ok(StatusCode::NO_CONTENT)
}
