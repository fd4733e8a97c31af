//! The router: every route of the API under `/v1`, as one plain list, and the
//! middleware that tells the config builder about writes.

use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};
use axum::Router;

use super::{
    account, auth, certs, customers, databases, dns, domains, ftp, import, infra, mail, mailcheck,
    names, plans, site_cron, site_files, sites, status, tsig,
};
use crate::error::{method_not_allowed, not_found_route};
use crate::state::AppState;

/// The whole API as an axum router.
pub fn router(state: AppState) -> Router {
    let limit = state.config.max_body_bytes;
    Router::new()
        .route("/v1/auth/login", post(auth::login))
        .route("/v1/auth/whoami", get(auth::whoami))
        .route(
            "/v1/auth/totp",
            get(account::totp_status).post(account::totp_enroll),
        )
        .route("/v1/auth/totp/confirm", post(account::totp_confirm))
        .route("/v1/auth/totp/disable", post(account::totp_disable))
        .route("/v1/auth/impersonate", post(account::impersonate))
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
            "/v1/sites/{domain}/certificate/acme",
            get(crate::acme::api::get_status).put(crate::acme::api::put_settings),
        )
        .route(
            "/v1/sites/{domain}/content",
            axum::routing::put(crate::deployments::upload),
        )
        .route(
            "/v1/sites/{domain}/deployments",
            get(crate::deployments::list_kept),
        )
        .route(
            "/v1/sites/{domain}/rollback",
            post(crate::deployments::rollback),
        )
        .route(
            "/v1/sites/{domain}/cron",
            get(site_cron::list_cron).post(site_cron::create_cron),
        )
        .route(
            "/v1/sites/{domain}/cron/{id}",
            axum::routing::delete(site_cron::delete_cron),
        )
        .route(
            "/v1/sites/{domain}/conflicts",
            get(site_files::list_conflicts),
        )
        .route(
            "/v1/sites/{domain}/restore",
            post(site_files::create_restore),
        )
        .route(
            "/v1/sites/{domain}/restore/{id}",
            get(site_files::get_restore),
        )
        .route("/v1/sites/{domain}/logs", get(super::site_logs::site_logs))
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
        .route("/v1/agent/blobs/{hash}", get(crate::delta::blob))
        .route(
            proto::agent_v1::HEARTBEAT_PATH,
            post(crate::agent_api::heartbeat),
        )
        .route(proto::rehash::REHASH_PATH, post(crate::agent_api::rehash))
        .route(proto::agent_ops::OPS_PATH, get(crate::agent_api::ops_poll))
        .route("/v1/agent/ops/{id}", post(crate::agent_api::ops_answer))
        .route(
            "/v1/import",
            post(import::import).layer(DefaultBodyLimit::max(crate::import::MAX_BODY_BYTES)),
        )
        .route("/v1/events", get(status::events))
        .route("/v1/status", get(status::status))
        .route("/v1/map/platform", get(super::map::platform_map))
        .route("/v1/map/services", get(super::map::services_map))
        .route("/v1/map/events", get(super::map::map_events))
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
