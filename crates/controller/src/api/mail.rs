//! `/v1/mailboxes` and `/v1/aliases`, named by full address. Both claim the unique
//! key `mail_address`, so one address is never both a mailbox and an alias.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use model::entity::{Domain, Kind, MailAlias, Mailbox};
use model::limits::LimitField;
use model::{EmailAddress, LocalPart, WithField};
use proto::v1::{
    AliasView, CreateAlias, CreateMailbox, ErrorBody, ListParams, MailboxView, Page, UpdateAlias,
    UpdateMailbox, WithPassword,
};
use store::{NewObject, Stored};

use super::{
    body_domain, filters, list_page, password_or_generate, rfc3339, text_field, Names, Paging,
};
use crate::auth::{hash_blocking, Caller};
use crate::error::{ApiError, ApiJson, ApiPath, ApiQuery, ApiResult};
use crate::state::AppState;

/// Parse an address in a body: its local part and the caller's domain it is in.
async fn parse_address(
    state: &AppState,
    caller: &Caller,
    input: &str,
) -> ApiResult<(EmailAddress, Stored<Domain>)> {
    let addr = EmailAddress::new(input).field("address")?;
    let local = LocalPart::new(addr.local_part()).field("address")?;
    let domain = body_domain(state, caller, addr.domain(), "address").await?;
    Ok((EmailAddress::from_parts(&local, &domain.data.name), domain))
}

/// An object named by an address in a path, visible to the caller, or 404.
async fn path_object<T: model::entity::Object>(
    state: &AppState,
    caller: &Caller,
    input: &str,
    what: &str,
) -> ApiResult<Stored<T>> {
    let missing = || ApiError::not_found(format!("no {what} `{input}`"));
    // An object stored before a rule tightened (a `/` in its local part) can still
    // be shown and deleted.
    let addr = EmailAddress::new(input)
        .or_else(|_| EmailAddress::stored(input))
        .map_err(|_| missing())?;
    state
        .store
        .get_by_name::<T>(caller.scope(), addr.as_str())
        .await?
        .ok_or_else(missing)
}

/// A mailbox as shown.
pub async fn mailbox_view(names: &mut Names<'_>, m: &Stored<Mailbox>) -> ApiResult<MailboxView> {
    Ok(MailboxView {
        address: m.meta.name.clone(),
        domain: names.domain(m.data.domain).await?,
        customer: match m.meta.owner {
            Some(o) => names.account(o).await?,
            None => String::new(),
        },
        quota_mb: m.data.quota_mb,
        display_name: m.data.display_name.clone(),
        enabled: m.data.enabled,
        created_at: rfc3339(m.meta.created_at),
    })
}

/// An alias as shown.
pub async fn alias_view(names: &mut Names<'_>, a: &Stored<MailAlias>) -> ApiResult<AliasView> {
    Ok(AliasView {
        address: a.meta.name.clone(),
        domain: names.domain(a.data.domain).await?,
        customer: match a.meta.owner {
            Some(o) => names.account(o).await?,
            None => String::new(),
        },
        destinations: a
            .data
            .destinations
            .iter()
            .map(ToString::to_string)
            .collect(),
        created_at: rfc3339(a.meta.created_at),
    })
}

/// `POST /v1/mailboxes`: a generated password is returned once when none is given.
#[utoipa::path(post, path = "/v1/mailboxes", tag = "mail", request_body = CreateMailbox,
    responses((status = 201, body = WithPassword<MailboxView>), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn create_mailbox(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(req): ApiJson<CreateMailbox>,
) -> ApiResult<(StatusCode, Json<WithPassword<MailboxView>>)> {
    let (addr, domain) = parse_address(&state, &caller, &req.address).await?;
    let (password, generated) = password_or_generate(req.password, "password")?;
    let display_name = text_field(req.display_name, "display_name", 200)?.unwrap_or_default();
    let password_hash = hash_blocking(password).await?;
    let local = LocalPart::new(addr.local_part()).field("address")?;
    let data = Mailbox {
        domain: domain.meta.id,
        local_part: local,
        password_hash,
        quota_mb: 0,
        display_name,
        enabled: true,
    };
    let mut tx = state.store.begin(caller.actor()).await?;
    let mut data = data;
    if let Some(owner) = domain.meta.owner {
        let default = &state.config.default_plan;
        crate::limits::check_count(&mut tx, default, owner, Kind::Mailbox).await?;
        let limits = crate::limits::limits_of(&mut tx, default, owner).await?;
        data.quota_mb = crate::limits::quota(
            &limits,
            LimitField::MaxMailboxQuotaMb,
            "quota_mb",
            req.quota_mb,
            1024,
            None,
        )?;
    }
    let created = tx
        .create(NewObject {
            name: addr.to_string(),
            owner: domain.meta.owner,
            parent: Some(domain.meta.id),
            data,
        })
        .await?;
    tx.commit().await?;
    let object = mailbox_view(&mut Names::new(&state.store), &created).await?;
    Ok((
        StatusCode::CREATED,
        Json(WithPassword {
            object,
            generated_password: generated,
        }),
    ))
}

/// `GET /v1/mailboxes`.
#[utoipa::path(get, path = "/v1/mailboxes", tag = "mail", params(ListParams), responses((status = 200, body = Page<MailboxView>)))]
pub async fn list_mailboxes(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(params): ApiQuery<ListParams>,
) -> ApiResult<Json<Page<MailboxView>>> {
    let paging = Paging::new(params.cursor.as_deref(), params.limit)?;
    let (owner, parent) = filters(&state, &caller, &params, true, false).await?;
    let (rows, next) = list_page::<Mailbox>(&state, caller.scope(), paging, owner, parent).await?;
    let mut names = Names::new(&state.store);
    let mut items = Vec::with_capacity(rows.len());
    for m in &rows {
        items.push(mailbox_view(&mut names, m).await?);
    }
    Ok(Json(Page {
        items,
        next_cursor: next,
    }))
}

/// `GET /v1/mailboxes/{address}`.
#[utoipa::path(get, path = "/v1/mailboxes/{address}", tag = "mail", params(("address" = String, Path)),
    responses((status = 200, body = MailboxView), (status = 404, body = ErrorBody)))]
pub async fn get_mailbox(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(address): ApiPath<String>,
) -> ApiResult<Json<MailboxView>> {
    let m = path_object::<Mailbox>(&state, &caller, &address, "mailbox").await?;
    Ok(Json(mailbox_view(&mut Names::new(&state.store), &m).await?))
}

/// `PATCH /v1/mailboxes/{address}`.
#[utoipa::path(patch, path = "/v1/mailboxes/{address}", tag = "mail", params(("address" = String, Path)),
    request_body = UpdateMailbox, responses((status = 200, body = MailboxView), (status = 404, body = ErrorBody)))]
pub async fn update_mailbox(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(address): ApiPath<String>,
    ApiJson(req): ApiJson<UpdateMailbox>,
) -> ApiResult<Json<MailboxView>> {
    let m = path_object::<Mailbox>(&state, &caller, &address, "mailbox").await?;
    let display_name = text_field(req.display_name, "display_name", 200)?;
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
        .get::<Mailbox>(m.meta.id)
        .await?
        .ok_or_else(|| ApiError::not_found("mailbox not found"))?;
    if let Some(h) = password_hash {
        cur.data.password_hash = h;
    }
    if let (Some(q), Some(owner)) = (req.quota_mb, cur.meta.owner) {
        let limits = crate::limits::limits_of(&mut tx, &state.config.default_plan, owner).await?;
        cur.data.quota_mb = crate::limits::quota(
            &limits,
            LimitField::MaxMailboxQuotaMb,
            "quota_mb",
            Some(q),
            q,
            Some(cur.data.quota_mb),
        )?;
    }
    if let Some(d) = display_name {
        cur.data.display_name = d;
    }
    if let Some(e) = req.enabled {
        cur.data.enabled = e;
    }
    let updated = tx.update(cur.meta.id, &cur.meta.name, cur.data).await?;
    tx.commit().await?;
    Ok(Json(
        mailbox_view(&mut Names::new(&state.store), &updated).await?,
    ))
}

/// `DELETE /v1/mailboxes/{address}`.
#[utoipa::path(delete, path = "/v1/mailboxes/{address}", tag = "mail", params(("address" = String, Path)),
    responses((status = 204), (status = 404, body = ErrorBody)))]
pub async fn delete_mailbox(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(address): ApiPath<String>,
) -> ApiResult<StatusCode> {
    let m = path_object::<Mailbox>(&state, &caller, &address, "mailbox").await?;
    let mut tx = state.store.begin(caller.actor()).await?;
    tx.delete(Kind::Mailbox, m.meta.id).await?;
    tx.commit().await?;
    Ok(StatusCode::NO_CONTENT)
}

pub(crate) fn destinations(list: &[String]) -> ApiResult<Vec<EmailAddress>> {
    if list.is_empty() || list.len() > 100 {
        return Err(ApiError::invalid(
            "destinations",
            "bad_count",
            "an alias has 1 to 100 destinations",
        ));
    }
    let mut out: Vec<EmailAddress> = Vec::new();
    for (i, d) in list.iter().enumerate() {
        let a = EmailAddress::new(d).field(&format!("destinations[{i}]"))?;
        if !out.contains(&a) {
            out.push(a);
        }
    }
    Ok(out)
}

/// `POST /v1/aliases`.
#[utoipa::path(post, path = "/v1/aliases", tag = "mail", request_body = CreateAlias,
    responses((status = 201, body = AliasView), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn create_alias(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(req): ApiJson<CreateAlias>,
) -> ApiResult<(StatusCode, Json<AliasView>)> {
    let (addr, domain) = parse_address(&state, &caller, &req.address).await?;
    let dests = destinations(&req.destinations)?;
    if dests.contains(&addr) {
        return Err(ApiError::invalid(
            "destinations",
            "loop",
            "an alias cannot forward to itself",
        ));
    }
    let local = LocalPart::new(addr.local_part()).field("address")?;
    let data = MailAlias {
        domain: domain.meta.id,
        local_part: local,
        destinations: dests,
    };
    let mut tx = state.store.begin(caller.actor()).await?;
    let created = tx
        .create(NewObject {
            name: addr.to_string(),
            owner: domain.meta.owner,
            parent: Some(domain.meta.id),
            data,
        })
        .await?;
    tx.commit().await?;
    Ok((
        StatusCode::CREATED,
        Json(alias_view(&mut Names::new(&state.store), &created).await?),
    ))
}

/// `GET /v1/aliases`.
#[utoipa::path(get, path = "/v1/aliases", tag = "mail", params(ListParams), responses((status = 200, body = Page<AliasView>)))]
pub async fn list_aliases(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(params): ApiQuery<ListParams>,
) -> ApiResult<Json<Page<AliasView>>> {
    let paging = Paging::new(params.cursor.as_deref(), params.limit)?;
    let (owner, parent) = filters(&state, &caller, &params, true, false).await?;
    let (rows, next) =
        list_page::<MailAlias>(&state, caller.scope(), paging, owner, parent).await?;
    let mut names = Names::new(&state.store);
    let mut items = Vec::with_capacity(rows.len());
    for a in &rows {
        items.push(alias_view(&mut names, a).await?);
    }
    Ok(Json(Page {
        items,
        next_cursor: next,
    }))
}

/// `GET /v1/aliases/{address}`.
#[utoipa::path(get, path = "/v1/aliases/{address}", tag = "mail", params(("address" = String, Path)),
    responses((status = 200, body = AliasView), (status = 404, body = ErrorBody)))]
pub async fn get_alias(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(address): ApiPath<String>,
) -> ApiResult<Json<AliasView>> {
    let a = path_object::<MailAlias>(&state, &caller, &address, "alias").await?;
    Ok(Json(alias_view(&mut Names::new(&state.store), &a).await?))
}

/// `PATCH /v1/aliases/{address}`.
#[utoipa::path(patch, path = "/v1/aliases/{address}", tag = "mail", params(("address" = String, Path)),
    request_body = UpdateAlias, responses((status = 200, body = AliasView), (status = 404, body = ErrorBody)))]
pub async fn update_alias(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(address): ApiPath<String>,
    ApiJson(req): ApiJson<UpdateAlias>,
) -> ApiResult<Json<AliasView>> {
    let a = path_object::<MailAlias>(&state, &caller, &address, "alias").await?;
    let dests = req.destinations.as_deref().map(destinations).transpose()?;
    let mut tx = state.store.begin(caller.actor()).await?;
    let mut cur = tx
        .get::<MailAlias>(a.meta.id)
        .await?
        .ok_or_else(|| ApiError::not_found("alias not found"))?;
    if let Some(d) = dests {
        if d.iter().any(|x| x.as_str() == cur.meta.name) {
            return Err(ApiError::invalid(
                "destinations",
                "loop",
                "an alias cannot forward to itself",
            ));
        }
        cur.data.destinations = d;
    }
    let updated = tx.update(cur.meta.id, &cur.meta.name, cur.data).await?;
    tx.commit().await?;
    Ok(Json(
        alias_view(&mut Names::new(&state.store), &updated).await?,
    ))
}

/// `DELETE /v1/aliases/{address}`.
#[utoipa::path(delete, path = "/v1/aliases/{address}", tag = "mail", params(("address" = String, Path)),
    responses((status = 204), (status = 404, body = ErrorBody)))]
pub async fn delete_alias(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(address): ApiPath<String>,
) -> ApiResult<StatusCode> {
    let a = path_object::<MailAlias>(&state, &caller, &address, "alias").await?;
    let mut tx = state.store.begin(caller.actor()).await?;
    tx.delete(Kind::MailAlias, a.meta.id).await?;
    tx.commit().await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `GET /v1/mail/queue` (admins): every mail server's queue as it last reported it.
#[utoipa::path(get, path = "/v1/mail/queue", tag = "mail",
    responses((status = 200, body = Vec<proto::v1::MailQueueView>), (status = 403, body = ErrorBody)))]
pub async fn mail_queue(
    State(state): State<AppState>,
    caller: Caller,
) -> ApiResult<Json<Vec<proto::v1::MailQueueView>>> {
    caller.require_admin()?;
    let mut servers = state.store.all::<model::entity::Server>().await?;
    servers.retain(|s| s.data.role == model::Role::Mail);
    servers.sort_by(|a, b| a.meta.name.cmp(&b.meta.name));
    let mut out = Vec::with_capacity(servers.len());
    for s in servers {
        let report = state.health.report(s.meta.id);
        let messages = match report.as_deref() {
            Some(proto::agent_v1::RoleReport::Mail(m)) => m
                .queue
                .iter()
                .map(|q| proto::v1::QueuedMailView {
                    id: q.id.clone(),
                    from: q.from.clone(),
                    to: q.to.clone(),
                    size: q.size,
                    attempts: q.attempts,
                    queued_at: q.queued_at.clone(),
                    next_attempt: q.next_attempt.clone(),
                    last_error: q.last_error.clone(),
                })
                .collect(),
            _ => Vec::new(),
        };
        out.push(proto::v1::MailQueueView {
            server: s.meta.name,
            reported: report.is_some(),
            messages,
        });
    }
    Ok(Json(out))
}

/// `POST /v1/mail/flush` (admins): every mail server retries its queue now.
#[utoipa::path(post, path = "/v1/mail/flush", tag = "mail",
    responses((status = 202), (status = 403, body = ErrorBody)))]
pub async fn mail_flush(State(state): State<AppState>, caller: Caller) -> ApiResult<StatusCode> {
    caller.require_admin()?;
    state.flush_mail();
    Ok(StatusCode::ACCEPTED)
}
