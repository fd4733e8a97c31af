//! The REST API under `/v1`: routes, and helpers every resource family shares
//! (paging, visibility, name lookups, time formatting).

pub mod auth;
pub mod certs;
pub mod customers;
pub mod databases;
pub mod dns;
pub mod domains;
pub mod ftp;
pub mod import;
pub mod infra;
pub mod mail;
pub mod mailcheck;
pub mod names;
pub mod plans;
pub mod sites;
pub mod status;
pub mod tsig;

use std::collections::HashMap;

use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};
use axum::Router;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use model::entity::{Account, Cluster, Domain, Kind, Object, Server};
use model::{AccountKind, Id, Slug, WithField};
use proto::v1::{ListParams, Page};
use scheduler::{ClusterInfo, Health, ServerInfo, Snapshot};
use store::{ListQuery, Scope, Store, Stored};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use crate::auth::Caller;
use crate::error::{method_not_allowed, not_found_route, ApiError, ApiResult};
use crate::state::AppState;

/// The whole API as an axum router.
pub fn router(state: AppState) -> Router {
    let limit = state.config.max_body_bytes;
    Router::new()
        .route("/v1/auth/login", post(auth::login))
        .route("/v1/auth/whoami", get(auth::whoami))
        .route(
            "/v1/tokens",
            get(auth::list_tokens).post(auth::create_token),
        )
        .route(
            "/v1/tokens/{id}",
            get(auth::get_token).delete(auth::revoke_token),
        )
        .route(
            "/v1/clusters",
            get(infra::list_clusters).post(infra::create_cluster),
        )
        .route(
            "/v1/clusters/{name}",
            get(infra::get_cluster)
                .patch(infra::update_cluster)
                .delete(infra::delete_cluster),
        )
        .route("/v1/clusters/{name}/tsig", get(tsig::get_tsig))
        .route("/v1/clusters/{name}/tsig/rotate", post(tsig::rotate_tsig))
        .route(
            "/v1/servers",
            get(infra::list_servers).post(infra::create_server),
        )
        .route(
            "/v1/servers/{name}",
            get(infra::get_server)
                .patch(infra::update_server)
                .delete(infra::delete_server),
        )
        .route(
            "/v1/customers",
            get(customers::list_customers).post(customers::create_customer),
        )
        .route(
            "/v1/customers/{name}",
            get(customers::get_customer)
                .patch(customers::update_customer)
                .delete(customers::delete_customer),
        )
        .route("/v1/plans", get(plans::list_plans).post(plans::create_plan))
        .route(
            "/v1/plans/{name}",
            get(plans::get_plan)
                .patch(plans::update_plan)
                .delete(plans::delete_plan),
        )
        .route("/v1/endpoints", get(crate::endpoints::endpoints))
        .route(
            "/v1/domains",
            get(domains::list_domains).post(domains::create_domain),
        )
        .route("/v1/domain-challenges", post(names::create_challenge))
        .route("/v1/domain-transfers", post(names::create_transfer))
        .route(
            "/v1/domains/{name}",
            get(domains::get_domain)
                .patch(domains::update_domain)
                .delete(domains::delete_domain),
        )
        .route("/v1/sites", get(sites::list_sites).post(sites::create_site))
        .route(
            "/v1/sites/{domain}",
            get(sites::get_site)
                .patch(sites::update_site)
                .delete(sites::delete_site),
        )
        .route(
            "/v1/mailboxes",
            get(mail::list_mailboxes).post(mail::create_mailbox),
        )
        .route(
            "/v1/mailboxes/{address}",
            get(mail::get_mailbox)
                .patch(mail::update_mailbox)
                .delete(mail::delete_mailbox),
        )
        .route(
            "/v1/sites/{domain}/certificate",
            get(certs::get_certificate)
                .put(certs::put_certificate)
                .delete(certs::delete_certificate),
        )
        .route(
            "/v1/sites/{domain}/content",
            axum::routing::put(crate::deployments::upload),
        )
        .route("/v1/mail/queue", get(mail::mail_queue))
        .route("/v1/mail/check/{domain}", get(mailcheck::mail_check))
        .route("/v1/mail/flush", post(mail::mail_flush))
        .route("/v1/db-trash", get(databases::list_trash))
        .route(
            "/v1/aliases",
            get(mail::list_aliases).post(mail::create_alias),
        )
        .route(
            "/v1/aliases/{address}",
            get(mail::get_alias)
                .patch(mail::update_alias)
                .delete(mail::delete_alias),
        )
        .route(
            "/v1/databases",
            get(databases::list_databases).post(databases::create_database),
        )
        .route(
            "/v1/databases/{name}",
            get(databases::get_database)
                .patch(databases::update_database)
                .delete(databases::delete_database),
        )
        .route(
            "/v1/db-users",
            get(databases::list_db_users).post(databases::create_db_user),
        )
        .route(
            "/v1/db-users/{name}",
            get(databases::get_db_user)
                .patch(databases::update_db_user)
                .delete(databases::delete_db_user),
        )
        .route(
            "/v1/ftp-accounts",
            get(ftp::list_ftp_accounts).post(ftp::create_ftp_account),
        )
        .route(
            "/v1/ftp-accounts/{username}",
            get(ftp::get_ftp_account)
                .patch(ftp::update_ftp_account)
                .delete(ftp::delete_ftp_account),
        )
        .route(
            "/v1/dns-records",
            get(dns::list_records).post(dns::create_record),
        )
        .route(
            "/v1/dns-records/{id}",
            get(dns::get_record)
                .patch(dns::update_record)
                .delete(dns::delete_record),
        )
        .route("/v1/servers/{name}/drain", post(infra::drain_server))
        .route("/v1/servers/{name}/undrain", post(infra::undrain_server))
        .route("/v1/servers/{name}/reset-agent", post(infra::reset_agent))
        .route(
            "/v1/join-tokens",
            get(crate::join::list_join_tokens).post(crate::join::create_join_token),
        )
        .route(
            "/v1/join-tokens/{id}",
            axum::routing::delete(crate::join::delete_join_token),
        )
        .route(proto::agent_v1::JOIN_PATH, post(crate::join::join))
        .route(proto::agent_v1::CONFIG_PATH, get(crate::agent_api::config))
        .route("/v1/agent/deployments/{id}", get(crate::deployments::fetch))
        .route(
            proto::agent_v1::HEARTBEAT_PATH,
            post(crate::agent_api::heartbeat),
        )
        .route(proto::rehash::REHASH_PATH, post(crate::agent_api::rehash))
        .route(
            "/v1/import",
            post(import::import).layer(DefaultBodyLimit::max(crate::import::MAX_BODY_BYTES)),
        )
        .route("/v1/events", get(status::events))
        .route("/v1/status", get(status::status))
        .route("/v1/openapi.json", get(crate::openapi::serve))
        .fallback(not_found_route)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(limit))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            notify_changes,
        ))
        .with_state(state)
}

/// After a successful write through the REST API, tell the config builder
/// ([`AppState::changed`]). Agent calls notify for themselves (heartbeats change
/// nothing in the store).
async fn notify_changes(
    axum::extract::State(state): axum::extract::State<AppState>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    let write = !matches!(
        *req.method(),
        axum::http::Method::GET | axum::http::Method::HEAD | axum::http::Method::OPTIONS
    ) && !req.uri().path().starts_with("/v1/agent/");
    let res = next.run(req).await;
    if write && res.status().is_success() {
        state.changed();
    }
    res
}

// ---------------------------------------------------------------- paging

/// Default page size.
pub const DEFAULT_LIMIT: u32 = 100;
/// Largest page size.
pub const MAX_LIMIT: u32 = 1000;

/// Where a page starts and how long it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Paging {
    /// Last id of the previous page.
    pub after: Option<Id>,
    /// Page size.
    pub limit: u32,
}

impl Paging {
    /// Validate `cursor` and `limit` from a query.
    pub fn new(cursor: Option<&str>, limit: Option<u32>) -> ApiResult<Self> {
        let limit = limit.unwrap_or(DEFAULT_LIMIT);
        if !(1..=MAX_LIMIT).contains(&limit) {
            return Err(ApiError::invalid(
                "limit",
                "out_of_range",
                format!("limit must be 1 to {MAX_LIMIT}"),
            ));
        }
        let after = match cursor {
            None | Some("") => None,
            Some(c) => Some(decode_cursor(c)?),
        };
        Ok(Self { after, limit })
    }

    /// How many rows to ask the store for (one more, to know whether a next page exists).
    pub fn fetch(&self) -> u32 {
        (self.limit + 1).min(MAX_LIMIT)
    }

    /// Cut `rows` to the page and compute the next cursor.
    pub fn cut<T>(&self, mut rows: Vec<Stored<T>>) -> (Vec<Stored<T>>, Option<String>) {
        let more = rows.len() > self.limit as usize
            || (self.limit == MAX_LIMIT && rows.len() == MAX_LIMIT as usize);
        rows.truncate(self.limit as usize);
        let next = if more {
            rows.last().map(|r| encode_cursor(r.meta.id))
        } else {
            None
        };
        (rows, next)
    }
}

/// Opaque cursor for "after id".
pub fn encode_cursor(id: Id) -> String {
    URL_SAFE_NO_PAD.encode(format!("v1:{id}"))
}

/// Decode [`encode_cursor`]; 400 for anything else.
pub fn decode_cursor(cursor: &str) -> ApiResult<Id> {
    let bad = || {
        ApiError::bad_request(
            "`cursor` is not a cursor this API returned; pass `next_cursor` unchanged",
        )
        .with_field("cursor")
        .with_rule("bad_cursor")
    };
    let bytes = URL_SAFE_NO_PAD.decode(cursor).map_err(|_| bad())?;
    let text = String::from_utf8(bytes).map_err(|_| bad())?;
    text.strip_prefix("v1:")
        .and_then(|n| n.parse::<Id>().ok())
        .filter(|n| *n >= 0)
        .ok_or_else(bad)
}

/// Build a page of views.
pub fn page<V>(items: Vec<V>, next_cursor: Option<String>) -> Page<V> {
    Page { items, next_cursor }
}

// ---------------------------------------------------------------- helpers

/// RFC 3339 time.
pub fn rfc3339(t: OffsetDateTime) -> String {
    t.format(&Rfc3339)
        .unwrap_or_else(|_| t.unix_timestamp().to_string())
}

/// Names of objects by id, looked up once per request.
pub struct Names<'a> {
    store: &'a Store,
    cache: HashMap<(Kind, Id), String>,
}

impl<'a> Names<'a> {
    /// A new lookup over `store`.
    pub fn new(store: &'a Store) -> Self {
        Self {
            store,
            cache: HashMap::new(),
        }
    }

    /// The name of object `id` of type `T` (`#id` if it is gone).
    pub async fn of<T: Object>(&mut self, id: Id) -> ApiResult<String> {
        if let Some(n) = self.cache.get(&(T::KIND, id)) {
            return Ok(n.clone());
        }
        let name = match self.store.get::<T>(Scope::All, id).await? {
            Some(s) => s.meta.name,
            None => format!("#{id}"),
        };
        self.cache.insert((T::KIND, id), name.clone());
        Ok(name)
    }

    /// Remember a name the caller already holds, so rendering a view needs no query.
    pub fn seed<T: Object>(&mut self, id: Id, name: &str) {
        self.cache.insert((T::KIND, id), name.to_owned());
    }

    /// The store it reads.
    pub fn store(&self) -> &'a Store {
        self.store
    }

    /// Account name.
    pub async fn account(&mut self, id: Id) -> ApiResult<String> {
        self.of::<Account>(id).await
    }

    /// Cluster name.
    pub async fn cluster(&mut self, id: Id) -> ApiResult<String> {
        self.of::<Cluster>(id).await
    }

    /// Domain name.
    pub async fn domain(&mut self, id: Id) -> ApiResult<String> {
        self.of::<Domain>(id).await
    }

    /// Server name.
    pub async fn server(&mut self, id: Id) -> ApiResult<String> {
        self.of::<Server>(id).await
    }
}

/// An object visible to the caller by name, or 404.
pub async fn visible<T: Object>(
    state: &AppState,
    caller: &Caller,
    name: &str,
    what: &str,
) -> ApiResult<Stored<T>> {
    state
        .store
        .get_by_name::<T>(caller.scope(), name)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no {what} `{name}`")))
}

/// An object visible to the caller by id, or 404.
pub async fn visible_id<T: Object>(
    state: &AppState,
    caller: &Caller,
    id: Id,
    what: &str,
) -> ApiResult<Stored<T>> {
    state
        .store
        .get::<T>(caller.scope(), id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no {what} {id}")))
}

/// A domain named in a request body (field `field`) that the caller can see; 422
/// otherwise (a missing and an invisible domain look the same).
pub async fn body_domain(
    state: &AppState,
    caller: &Caller,
    name: &str,
    field: &str,
) -> ApiResult<Stored<Domain>> {
    let dn = model::DomainName::new(name).field(field)?;
    state
        .store
        .get_by_name::<Domain>(caller.scope(), dn.as_str())
        .await?
        .ok_or_else(|| {
            ApiError::invalid(
                field,
                "unknown_domain",
                format!("there is no domain `{dn}` in your account"),
            )
        })
}

/// The customer that will own a new object: the caller itself for customers (naming
/// another is 403); for admins and resellers the named customer they manage.
pub async fn owning_customer(
    state: &AppState,
    caller: &Caller,
    requested: Option<&str>,
) -> ApiResult<Stored<Account>> {
    if caller.account.kind == AccountKind::Customer {
        if let Some(name) = requested {
            if name != caller.account.name.as_str() {
                return Err(
                    ApiError::forbidden("customers create objects for themselves only")
                        .with_field("customer"),
                );
            }
        }
        return state
            .store
            .get::<Account>(Scope::All, caller.account_id)
            .await?
            .ok_or_else(|| ApiError::unauthorized("the account no longer exists"));
    }
    let Some(name) = requested else {
        return Err(ApiError::invalid(
            "customer",
            "required",
            "name the customer that will own it (`customer`)",
        ));
    };
    let slug = Slug::new(name).field("customer")?;
    let account = state
        .store
        .get_by_name::<Account>(caller.scope(), slug.as_str())
        .await?
        .ok_or_else(|| {
            ApiError::invalid(
                "customer",
                "unknown_customer",
                format!("there is no customer `{slug}`"),
            )
        })?;
    if account.data.kind != AccountKind::Customer {
        return Err(ApiError::invalid(
            "customer",
            "not_a_customer",
            format!(
                "`{slug}` is a {} account; only customer accounts own domains and databases",
                account.data.kind
            ),
        ));
    }
    Ok(account)
}

/// Owner and parent filters of a listing. `domain_parent`: whether the `domain`
/// filter applies (objects whose parent is a domain); `cluster_parent` likewise.
pub async fn filters(
    state: &AppState,
    caller: &Caller,
    params: &ListParams,
    domain_parent: bool,
    cluster_parent: bool,
) -> ApiResult<(Option<Id>, Option<Id>)> {
    let mut owner = None;
    let mut parent = None;
    if let Some(name) = params.customer.as_deref().filter(|s| !s.is_empty()) {
        let acc = state
            .store
            .get_by_name::<Account>(caller.scope(), name)
            .await?
            .ok_or_else(|| {
                ApiError::invalid(
                    "customer",
                    "unknown_customer",
                    format!("there is no customer `{name}`"),
                )
            })?;
        owner = Some(acc.meta.id);
    }
    if let Some(name) = params.domain.as_deref().filter(|s| !s.is_empty()) {
        if !domain_parent {
            return Err(ApiError::invalid(
                "domain",
                "unsupported_filter",
                "this listing cannot be filtered by domain",
            ));
        }
        parent = Some(body_domain(state, caller, name, "domain").await?.meta.id);
    }
    if let Some(name) = params.cluster.as_deref().filter(|s| !s.is_empty()) {
        if !cluster_parent {
            return Err(ApiError::invalid(
                "cluster",
                "unsupported_filter",
                "this listing cannot be filtered by cluster",
            ));
        }
        let c = state
            .store
            .get_by_name::<Cluster>(Scope::All, name)
            .await?
            .ok_or_else(|| {
                ApiError::invalid(
                    "cluster",
                    "unknown_cluster",
                    format!("there is no cluster `{name}`"),
                )
            })?;
        parent = Some(c.meta.id);
    }
    Ok((owner, parent))
}

/// One page of `T` visible to the caller with the given filters.
pub async fn list_page<T: Object>(
    state: &AppState,
    scope: Scope,
    paging: Paging,
    owner: Option<Id>,
    parent: Option<Id>,
) -> ApiResult<(Vec<Stored<T>>, Option<String>)> {
    let q = ListQuery {
        scope,
        owner,
        parent,
        after: paging.after,
        limit: paging.fetch(),
    };
    let rows = state.store.list::<T>(&q).await?;
    Ok(paging.cut(rows))
}

/// The scheduler's view of clusters and servers (health from the monitor;
/// `load` = number of `single` sites active on each server).
pub async fn snapshot(state: &AppState) -> ApiResult<Snapshot> {
    snapshot_with(state, true).await
}

/// The scheduler's view of clusters and servers without site loads: enough to place a
/// domain on clusters, and it does not read every site (O(sites) per request).
pub async fn cluster_snapshot(state: &AppState) -> ApiResult<Snapshot> {
    snapshot_with(state, false).await
}

/// The scheduler's view for placing a new site: site loads from memory
/// ([`crate::loads`]), without reading every site.
pub async fn placement_snapshot(state: &AppState) -> ApiResult<Snapshot> {
    let load = state.site_loads.loads();
    snapshot_of(state, &load).await
}

async fn snapshot_with(state: &AppState, with_load: bool) -> ApiResult<Snapshot> {
    let sites = if with_load {
        state.store.all::<model::entity::Site>().await?
    } else {
        Vec::new()
    };
    let mut load: HashMap<Id, u32> = HashMap::new();
    for s in &sites {
        if let Some(id) = s.data.active_server {
            *load.entry(id).or_default() += 1;
        }
    }
    snapshot_of(state, &load).await
}

async fn snapshot_of(state: &AppState, load: &HashMap<Id, u32>) -> ApiResult<Snapshot> {
    let store = &state.store;
    let clusters = store.all::<Cluster>().await?;
    let servers = store.all::<Server>().await?;
    Ok(Snapshot {
        clusters: clusters
            .into_iter()
            .map(|c| ClusterInfo {
                id: c.meta.id,
                name: c.meta.name.clone(),
                role: c.data.role,
                is_default: c.data.is_default,
                servers: servers
                    .iter()
                    .filter(|s| s.data.cluster == c.meta.id)
                    .map(|s| {
                        let mut info = server_info(s, load.get(&s.meta.id).copied().unwrap_or(0));
                        info.health = state.health.state(s.meta.id);
                        info
                    })
                    .collect(),
            })
            .collect(),
    })
}

/// The scheduler's view of one server.
pub fn server_info(s: &Stored<Server>, load: u32) -> ServerInfo {
    ServerInfo {
        id: s.meta.id,
        name: s.meta.name.clone(),
        rank: s.data.rank,
        country: s.data.country,
        health: Health::Unknown,
        drained: s.data.drained,
        load,
    }
}

/// Fields whose free text may span lines.
const MULTILINE_FIELDS: &[&str] = &["description", "hardware"];

/// Validate an optional free-text field with the one rule of [`model::FreeText`]: at
/// most `max` characters, no control characters (a newline only in `description` and
/// `hardware`), no bidirectional overrides or isolates.
pub fn text_field(value: Option<String>, field: &str, max: usize) -> ApiResult<Option<String>> {
    let Some(v) = value else {
        return Ok(None);
    };
    let text = if MULTILINE_FIELDS.contains(&field) {
        model::FreeText::multiline(&v, max)
    } else {
        model::FreeText::line(&v, max)
    };
    Ok(Some(text.field(field)?.into_string()))
}

/// A password from a request (validated), or a generated one to return once.
pub fn password_or_generate(
    given: Option<String>,
    field: &str,
) -> ApiResult<(String, Option<String>)> {
    match given {
        Some(p) => {
            let p = model::Password::new(&p).field(field)?;
            Ok((p.expose().to_owned(), None))
        }
        None => {
            let p = crate::secrets::generate_password();
            Ok((p.clone(), Some(p)))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip() {
        for id in [0, 1, 42, i64::MAX] {
            assert_eq!(decode_cursor(&encode_cursor(id)).unwrap(), id);
        }
        for bad in ["", "x", "djE6", "djE6LTE", "!!"] {
            let e = decode_cursor(bad).unwrap_err();
            assert_eq!(e.body.field.as_deref(), Some("cursor"), "{bad}");
        }
    }

    #[test]
    fn paging_limits() {
        assert_eq!(Paging::new(None, None).unwrap().limit, 100);
        assert_eq!(
            Paging::new(None, Some(0))
                .unwrap_err()
                .body
                .field
                .as_deref(),
            Some("limit")
        );
        assert!(Paging::new(None, Some(1001)).is_err());
        assert_eq!(Paging::new(None, Some(1000)).unwrap().fetch(), 1000);
        assert_eq!(Paging::new(None, Some(5)).unwrap().fetch(), 6);
    }
}
