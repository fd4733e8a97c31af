//! `/v1/domain-challenges` (the TXT proof of control of a registrable domain) and
//! `/v1/domain-transfers` (admins move a registrable domain's names to another
//! customer). The rules are in [`crate::ownership`].

use axum::extract::State;
use axum::Json;
use model::entity::{Account, Database, Domain, Kind, Secret, SecretPurpose};
use model::namespace::registrable;
use model::{AccountKind, DomainName, Slug, WithField};
use proto::v1::{
    CreateDomainChallenge, CreateDomainTransfer, DomainChallengeView, DomainTransferView, ErrorBody,
};
use store::Scope;

use super::owning_customer;
use crate::auth::Caller;
use crate::error::{ApiError, ApiJson, ApiResult};
use crate::ownership::{challenge_record, challenge_token};
use crate::state::AppState;

/// `POST /v1/domain-challenges`: the TXT record a customer publishes to prove it
/// controls a registrable domain whose names another account holds.
#[utoipa::path(post, path = "/v1/domain-challenges", tag = "domains", request_body = CreateDomainChallenge,
    responses((status = 200, body = DomainChallengeView), (status = 422, body = ErrorBody)))]
pub async fn create_challenge(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(req): ApiJson<CreateDomainChallenge>,
) -> ApiResult<Json<DomainChallengeView>> {
    let name = DomainName::new(&req.name).field("name")?;
    let reg = registrable(&name).field("name")?;
    let owner = owning_customer(&state, &caller, req.customer.as_deref()).await?;
    Ok(Json(DomainChallengeView {
        record: challenge_record(&reg),
        value: challenge_token(&owner, &reg),
        registrable: reg.to_string(),
        customer: owner.meta.name.clone(),
    }))
}

/// `POST /v1/domain-transfers` (admins): every domain under the registrable domain
/// of `name`, with its sites, mailboxes, aliases, FTP accounts, records and key
/// material, goes to customer `to`; databases of the former owners stay theirs and
/// are unlinked from the moved domains.
#[utoipa::path(post, path = "/v1/domain-transfers", tag = "domains", request_body = CreateDomainTransfer,
    responses((status = 200, body = DomainTransferView), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn create_transfer(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(req): ApiJson<CreateDomainTransfer>,
) -> ApiResult<Json<DomainTransferView>> {
    caller.require_admin()?;
    let name = DomainName::new(&req.name).field("name")?;
    let reg = registrable(&name).field("name")?;
    let slug = Slug::new(&req.to).field("to")?;
    let to = state
        .store
        .get_by_name::<Account>(Scope::All, slug.as_str())
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no account `{slug}`")).with_field("to"))?;
    if to.data.kind != AccountKind::Customer {
        return Err(ApiError::invalid(
            "to",
            "not_a_customer",
            format!("`{slug}` is not a customer account; only customers own domains"),
        ));
    }
    let mut tx = state.store.begin(caller.actor()).await?;
    let holders = tx.domains_under(reg.as_str()).await?;
    if holders.is_empty() {
        return Err(ApiError::not_found(format!("no domain under `{reg}`")).with_field("name"));
    }
    let mut domains = Vec::new();
    for (id, dname, owner) in holders {
        domains.push(dname.clone());
        if owner == Some(to.meta.id) {
            continue;
        }
        let Some(mut d) = tx.get::<Domain>(id).await? else {
            continue;
        };
        let former = d.data.customer;
        for mut db in tx.children::<Database>(former).await? {
            if db.data.domain == Some(id) {
                db.data.domain = None;
                tx.update(db.meta.id, &db.meta.name, db.data).await?;
            }
        }
        d.data.customer = to.meta.id;
        tx.update(id, &dname, d.data).await?;
        tx.reassign(Kind::Domain, id, to.meta.id, Some(to.meta.id))
            .await?;
        for purpose in [
            SecretPurpose::SiteCert,
            SecretPurpose::Dkim,
            SecretPurpose::SiteMail,
        ] {
            if let Some(s) = tx
                .get_by_name::<Secret>(&purpose.store_name(&dname))
                .await?
            {
                tx.reassign(Kind::Secret, s.meta.id, to.meta.id, None)
                    .await?;
            }
        }
    }
    tx.commit().await?;
    state.changed();
    tracing::info!(registrable = %reg, to = %slug, "names transferred");
    Ok(Json(DomainTransferView {
        registrable: reg.to_string(),
        to: slug.to_string(),
        domains,
    }))
}
