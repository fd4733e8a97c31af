//! The OpenAPI document of the REST API, generated from the handlers' annotations
//! and the `proto::v1` schemas; served at `GET /v1/openapi.json` without auth.

use axum::Json;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use crate::api;

/// Adds the bearer token scheme.
struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("hp_<id>_<secret>")
                    .build(),
            ),
        );
    }
}

/// The API description.
#[derive(OpenApi)]
#[openapi(
    info(title = "hostplane API", description = "Control plane of a clustered hosting platform."),
    security(("bearer" = [])),
    modifiers(&BearerAuth),
    paths(
        api::auth::login, api::auth::whoami, api::auth::create_token, api::auth::list_tokens,
        api::auth::get_token, api::auth::revoke_token,
        api::account::totp_status, api::account::totp_enroll, api::account::totp_confirm,
        api::account::totp_disable, api::account::impersonate,
        api::infra::create_cluster, api::infra::list_clusters, api::infra::get_cluster,
        api::infra::update_cluster, api::infra::delete_cluster,
        api::tsig::get_tsig, api::tsig::rotate_tsig,
        api::infra::create_server, api::infra::list_servers, api::infra::get_server,
        api::infra::update_server, api::infra::delete_server,
        api::customers::create_customer, api::customers::list_customers, api::customers::get_customer,
        api::customers::update_customer, api::customers::delete_customer,
        api::plans::create_plan, api::plans::list_plans, api::plans::get_plan,
        api::plans::update_plan, api::plans::delete_plan, crate::endpoints::endpoints,
        api::domains::create_domain, api::domains::list_domains, api::domains::get_domain,
        api::domains::update_domain, api::domains::delete_domain,
        api::names::create_challenge, api::names::create_transfer,
        api::sites::create_site, api::sites::list_sites, api::sites::get_site,
        api::sites::update_site, api::sites::delete_site,
        api::mail::create_mailbox, api::mail::list_mailboxes, api::mail::get_mailbox,
        api::mail::update_mailbox, api::mail::delete_mailbox,
        api::mail::create_alias, api::mail::list_aliases, api::mail::get_alias,
        api::mail::update_alias, api::mail::delete_alias,
        api::mail::mail_queue, api::mail::mail_flush, api::mailcheck::mail_check, api::databases::list_trash,
        api::certs::get_certificate, api::certs::put_certificate, api::certs::delete_certificate,
        crate::acme::api::get_status, crate::acme::api::put_settings,
        crate::deployments::upload, crate::deployments::list_kept, crate::deployments::rollback,
        api::site_cron::list_cron, api::site_cron::create_cron, api::site_cron::delete_cron,
        api::site_files::list_conflicts, api::site_files::create_restore, api::site_files::get_restore,
        api::site_logs::site_logs,
        api::databases::create_database, api::databases::list_databases, api::databases::get_database,
        api::databases::update_database, api::databases::delete_database,
        api::databases::create_db_user, api::databases::list_db_users, api::databases::get_db_user,
        api::databases::update_db_user, api::databases::delete_db_user,
        api::ftp::create_ftp_account, api::ftp::list_ftp_accounts, api::ftp::get_ftp_account,
        api::ftp::update_ftp_account, api::ftp::delete_ftp_account,
        api::dns::create_record, api::dns::list_records, api::dns::get_record,
        api::dns::update_record, api::dns::delete_record,
        api::status::events, api::status::status,
        api::map::platform_map, api::map::services_map, api::map::map_events,
        api::infra::drain_server, api::infra::undrain_server, api::infra::reset_agent,
        crate::join::create_join_token, crate::join::list_join_tokens, crate::join::delete_join_token,
        api::import::import,
    ),
    components(schemas(
        proto::v1::ErrorBody, proto::v1::LoginRequest, proto::v1::WhoAmI, proto::v1::CreateToken,
        proto::v1::TokenView, proto::v1::TokenCreated, proto::v1::TotpStatus, proto::v1::TotpEnrolment,
        proto::v1::TotpConfirm, proto::v1::RecoveryCodes, proto::v1::TotpDisable, proto::v1::Impersonate, proto::v1::CreateCluster, proto::v1::UpdateCluster,
        proto::v1::ClusterView, proto::v1::MailWriterView, proto::v1::TsigView, proto::v1::RotateTsig, proto::v1::CreateServer, proto::v1::UpdateServer, proto::v1::ServerView,
        proto::v1::CreateCustomer, proto::v1::UpdateCustomer, proto::v1::CustomerView,
        proto::v1::CreatePlan, proto::v1::UpdatePlan, proto::v1::PlanView, proto::v1::LimitsView,
        proto::v1::LimitsPatch, proto::v1::EndpointsView,
        proto::v1::CreateDomain, proto::v1::UpdateDomain, proto::v1::DomainView,
        proto::v1::CreateDomainChallenge, proto::v1::DomainChallengeView,
        proto::v1::CreateDomainTransfer, proto::v1::DomainTransferView,
        proto::v1::CreateSite, proto::v1::UpdateSite, proto::v1::SiteView, proto::v1::SiteMailSpooled,
        proto::v1::CreateMailbox, proto::v1::UpdateMailbox, proto::v1::MailboxView,
        proto::v1::CreateAlias, proto::v1::UpdateAlias, proto::v1::AliasView,
        proto::v1::CreateDatabase, proto::v1::UpdateDatabase, proto::v1::DatabaseView,
        proto::v1::DbTrashView, proto::v1::MailQueueView, proto::v1::QueuedMailView,
        proto::v1::MailCheckView, proto::v1::MailCheckItem,
        proto::v1::UploadCertificate, proto::v1::CertificateView, proto::v1::AcmeStatusView, proto::v1::AcmeLeftOut, proto::v1::AcmeSettings, proto::v1::DeploymentView,
        proto::v1::CreateCronJob, proto::v1::CronJobView,
        proto::v1::KeptDeploymentView, proto::v1::SiteRollback, proto::v1::SiteConflictView,
        proto::v1::SiteLogsView, proto::v1::SiteLogLineView, proto::v1::SiteLogsServerView,
        proto::v1::CreateSiteRestore, proto::v1::SiteRestoreView,
        proto::v1::CreateDbUser, proto::v1::UpdateDbUser, proto::v1::DbUserView,
        proto::v1::CreateFtpAccount, proto::v1::UpdateFtpAccount, proto::v1::FtpAccountView,
        proto::v1::CreateDnsRecord, proto::v1::UpdateDnsRecord, proto::v1::DnsRecordView,
        proto::v1::EventView, proto::v1::StatusView, proto::v1::ThrottleCounts,
        proto::v1::PlatformMapView, proto::v1::MapClusterView, proto::v1::MapServerView, proto::v1::MapCarries,
        proto::v1::ServiceMapView, proto::v1::ServiceLocationView, proto::v1::MapHealthEvent,
        proto::v1::MapDrainEvent, proto::v1::MapServicesEvent,
        proto::v1::CreateJoinToken, proto::v1::JoinTokenView, proto::v1::JoinTokenCreated,
    )),
    tags(
        (name = "auth", description = "Login and API tokens"),
        (name = "infrastructure", description = "Clusters and servers (operators)"),
        (name = "customers", description = "Accounts"),
        (name = "domains", description = "Domains and their placement"),
        (name = "sites", description = "Web sites"),
        (name = "mail", description = "Mailboxes and aliases"),
        (name = "databases", description = "Databases and database users"),
        (name = "ftp", description = "FTP accounts"),
        (name = "dns", description = "Custom DNS records"),
        (name = "status", description = "Audit log and status"),
        (name = "agents", description = "Join tokens for agents (the mutual-TLS agent protocol itself is `proto::agent_v1`)"),
    )
)]
pub struct ApiDoc;

/// `GET /v1/openapi.json`.
pub async fn serve() -> Json<utoipa::openapi::OpenApi> {
    Json(ApiDoc::openapi())
}
