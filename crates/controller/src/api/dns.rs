//! `/v1/dns-records`: customers' own records in their domains' zones, by store id.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use model::dns::{check_coexistence, RecordData, RecordName};
use model::entity::{DnsRecord, Kind, TTL_RANGE};
use model::{Id, WithField};
use proto::v1::{CreateDnsRecord, DnsRecordView, ErrorBody, ListParams, Page, UpdateDnsRecord};
use rand::RngCore;
use store::{NewObject, Stored, Tx};

use super::{body_domain, filters, list_page, rfc3339, Names, Paging};
use crate::auth::Caller;
use crate::error::{ApiError, ApiJson, ApiPath, ApiQuery, ApiResult};
use crate::state::AppState;

/// A record as shown.
pub async fn record_view(names: &mut Names<'_>, r: &Stored<DnsRecord>) -> ApiResult<DnsRecordView> {
    Ok(DnsRecordView {
        id: r.meta.id,
        domain: names.domain(r.data.domain).await?,
        name: r.data.name.to_string(),
        ttl: r.data.ttl,
        rtype: r.data.data.rtype().to_owned(),
        data: serde_json::to_value(&r.data.data).map_err(ApiError::internal)?,
        created_at: rfc3339(r.meta.created_at),
    })
}

/// Parse and validate typed record data (fields `data`, `data.<sub>`, `name`).
pub fn parse_data(value: serde_json::Value, name: &RecordName) -> ApiResult<RecordData> {
    let data: RecordData = serde_json::from_value(value)
        .map_err(|e| ApiError::invalid("data", "bad_record_data", format!("record data: {e}")))?;
    data.validate(name).map_err(|(sub, inv)| {
        let field = if sub == "name" {
            "name".to_owned()
        } else {
            format!("data.{sub}")
        };
        ApiError::from(inv.at(field))
    })?;
    Ok(data)
}

pub(crate) fn ttl(value: Option<u32>) -> ApiResult<Option<u32>> {
    match value {
        None | Some(0) => Ok(None),
        Some(t) if TTL_RANGE.contains(&t) => Ok(Some(t)),
        Some(_) => Err(ApiError::invalid(
            "ttl",
            "out_of_range",
            format!(
                "ttl is {} to {} seconds",
                TTL_RANGE.start(),
                TTL_RANGE.end()
            ),
        )),
    }
}

/// The zone's other records must still be consistent with this one (inside `tx`).
pub(crate) async fn coexist(
    tx: &mut Tx,
    domain: Id,
    except: Option<Id>,
    name: &RecordName,
    data: &RecordData,
) -> ApiResult<()> {
    let existing: Vec<(RecordName, RecordData)> = tx
        .children::<DnsRecord>(domain)
        .await?
        .into_iter()
        .filter(|r| Some(r.meta.id) != except)
        .map(|r| (r.data.name, r.data.data))
        .collect();
    check_coexist(&existing, name, data)
}

/// The coexistence rules of a record against the zone's `existing` ones, as a 422
/// naming the field (pure; the bulk import checks against its own view of the zone).
pub(crate) fn check_coexist(
    existing: &[(RecordName, RecordData)],
    name: &RecordName,
    data: &RecordData,
) -> ApiResult<()> {
    check_coexistence(existing, name, data).map_err(|inv| {
        let field = if inv.rule == "below_delegation" {
            "name"
        } else {
            "data"
        };
        ApiError::from(inv.at(field))
    })
}

async fn path_record(state: &AppState, caller: &Caller, id: &str) -> ApiResult<Stored<DnsRecord>> {
    let missing = || ApiError::not_found(format!("no DNS record `{id}`"));
    let id: Id = id.parse().map_err(|_| missing())?;
    state
        .store
        .get::<DnsRecord>(caller.scope(), id)
        .await?
        .ok_or_else(missing)
}

/// Check a new record against the domain's others ([`coexist`]) and store it
/// ([`new_record`]): the one place the API creates a DNS record; the bulk import
/// uses the same two rules ([`check_coexist`], [`new_record`]) on its view.
pub(crate) async fn insert_record(
    tx: &mut Tx,
    domain: &Stored<model::entity::Domain>,
    name: RecordName,
    ttl: Option<u32>,
    data: RecordData,
) -> ApiResult<Stored<DnsRecord>> {
    coexist(tx, domain.meta.id, None, &name, &data).await?;
    Ok(tx.create(new_record(domain, name, ttl, data)).await?)
}

/// A new record of `domain` under a random store name (`<domain>/<16 hex>`: records
/// are many per name).
pub(crate) fn new_record(
    domain: &Stored<model::entity::Domain>,
    name: RecordName,
    ttl: Option<u32>,
    data: RecordData,
) -> NewObject<DnsRecord> {
    let mut tag = [0u8; 8];
    rand::rngs::OsRng.fill_bytes(&mut tag);
    let tag: String = tag.iter().map(|b| format!("{b:02x}")).collect();
    NewObject {
        name: format!("{}/{tag}", domain.meta.name),
        owner: domain.meta.owner,
        parent: Some(domain.meta.id),
        data: DnsRecord {
            domain: domain.meta.id,
            name,
            ttl,
            data,
        },
    }
}

/// `POST /v1/dns-records`.
#[utoipa::path(post, path = "/v1/dns-records", tag = "dns", request_body = CreateDnsRecord,
    responses((status = 201, body = DnsRecordView), (status = 422, body = ErrorBody)))]
pub async fn create_record(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(req): ApiJson<CreateDnsRecord>,
) -> ApiResult<(StatusCode, Json<DnsRecordView>)> {
    let domain = body_domain(&state, &caller, &req.domain, "domain").await?;
    let name = RecordName::new(&req.name).field("name")?;
    name.check_in_zone(&domain.data.name).field("name")?;
    let data = parse_data(req.data, &name)?;
    let ttl = ttl(req.ttl)?;
    let mut tx = state.store.begin(caller.actor()).await?;
    let created = insert_record(&mut tx, &domain, name, ttl, data).await?;
    tx.commit().await?;
    Ok((
        StatusCode::CREATED,
        Json(record_view(&mut Names::new(&state.store), &created).await?),
    ))
}

/// `GET /v1/dns-records`.
#[utoipa::path(get, path = "/v1/dns-records", tag = "dns", params(ListParams), responses((status = 200, body = Page<DnsRecordView>)))]
pub async fn list_records(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(params): ApiQuery<ListParams>,
) -> ApiResult<Json<Page<DnsRecordView>>> {
    let paging = Paging::new(params.cursor.as_deref(), params.limit)?;
    let (owner, parent) = filters(&state, &caller, &params, true, false).await?;
    let (rows, next) =
        list_page::<DnsRecord>(&state, caller.scope(), paging, owner, parent).await?;
    let mut names = Names::new(&state.store);
    let mut items = Vec::with_capacity(rows.len());
    for r in &rows {
        items.push(record_view(&mut names, r).await?);
    }
    Ok(Json(Page {
        items,
        next_cursor: next,
    }))
}

/// `GET /v1/dns-records/{id}`.
#[utoipa::path(get, path = "/v1/dns-records/{id}", tag = "dns", params(("id" = i64, Path)),
    responses((status = 200, body = DnsRecordView), (status = 404, body = ErrorBody)))]
pub async fn get_record(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Json<DnsRecordView>> {
    let r = path_record(&state, &caller, &id).await?;
    Ok(Json(record_view(&mut Names::new(&state.store), &r).await?))
}

/// `PATCH /v1/dns-records/{id}`.
#[utoipa::path(patch, path = "/v1/dns-records/{id}", tag = "dns", params(("id" = i64, Path)),
    request_body = UpdateDnsRecord, responses((status = 200, body = DnsRecordView), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn update_record(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
    ApiJson(req): ApiJson<UpdateDnsRecord>,
) -> ApiResult<Json<DnsRecordView>> {
    let r = path_record(&state, &caller, &id).await?;
    let zone = state
        .store
        .get::<model::entity::Domain>(store::Scope::All, r.data.domain)
        .await?
        .ok_or_else(|| ApiError::not_found("domain not found"))?;
    let name = match req.name.as_deref() {
        Some(n) => {
            let n = RecordName::new(n).field("name")?;
            n.check_in_zone(&zone.data.name).field("name")?;
            n
        }
        None => r.data.name.clone(),
    };
    let data = match req.data {
        Some(v) => parse_data(v, &name)?,
        None => {
            let d = r.data.data.clone();
            d.validate(&name).map_err(|(sub, inv)| {
                ApiError::from(inv.at(if sub == "name" {
                    "name".to_owned()
                } else {
                    format!("data.{sub}")
                }))
            })?;
            d
        }
    };
    let new_ttl = match req.ttl {
        Some(t) => Some(ttl(Some(t))?),
        None => None,
    };
    let mut tx = state.store.begin(caller.actor()).await?;
    let mut cur = tx
        .get::<DnsRecord>(r.meta.id)
        .await?
        .ok_or_else(|| ApiError::not_found("DNS record not found"))?;
    coexist(&mut tx, cur.data.domain, Some(cur.meta.id), &name, &data).await?;
    cur.data.name = name;
    cur.data.data = data;
    if let Some(t) = new_ttl {
        cur.data.ttl = t;
    }
    let updated = tx.update(cur.meta.id, &cur.meta.name, cur.data).await?;
    tx.commit().await?;
    Ok(Json(
        record_view(&mut Names::new(&state.store), &updated).await?,
    ))
}

/// `DELETE /v1/dns-records/{id}`.
#[utoipa::path(delete, path = "/v1/dns-records/{id}", tag = "dns", params(("id" = i64, Path)),
    responses((status = 204), (status = 404, body = ErrorBody)))]
pub async fn delete_record(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<StatusCode> {
    let r = path_record(&state, &caller, &id).await?;
    let mut tx = state.store.begin(caller.actor()).await?;
    tx.delete(Kind::DnsRecord, r.meta.id).await?;
    tx.commit().await?;
    Ok(StatusCode::NO_CONTENT)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn data_errors_name_fields() {
        let www = RecordName::new("www").unwrap();
        let e = parse_data(serde_json::json!({"type": "A", "address": "nope"}), &www).unwrap_err();
        assert_eq!(e.body.field.as_deref(), Some("data"));
        let e = parse_data(serde_json::json!({"type": "TXT", "text": ""}), &www).unwrap_err();
        assert_eq!(e.body.field.as_deref(), Some("data.text"));
        let apex = RecordName::apex();
        let e = parse_data(
            serde_json::json!({"type": "CNAME", "target": "x.example.net"}),
            &apex,
        )
        .unwrap_err();
        assert_eq!(
            (e.body.field.as_deref(), e.body.rule.as_deref()),
            (Some("name"), Some("cname_at_apex"))
        );
        assert!(parse_data(
            serde_json::json!({"type": "MX", "preference": 10, "exchange": "mx.example.net"}),
            &apex
        )
        .is_ok());
    }
}
