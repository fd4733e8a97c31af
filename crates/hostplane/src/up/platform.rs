//! The platform's own domain under `hostplane up` (issue 16): `hostplane.test`,
//! whose zone publishes every server's host name and the mail cluster's client
//! names (`imap.mail.hostplane.test` …, at the writer's address).

use anyhow::Context as _;
use proto::v1::{CreateCustomer, CreateDomain};

use super::topology;

/// The platform's own domain ([`topology::PLATFORM_DOMAIN`], owned by the
/// customer [`topology::PLATFORM_CUSTOMER`]), placed on the default clusters: its
/// zone publishes every server's host name and the mail cluster's client names.
pub(super) async fn ensure_domain(api: &client::Client) -> anyhow::Result<()> {
    let missing = |e: &client::ClientError| e.status() == Some(404);
    match api.get_customer(topology::PLATFORM_CUSTOMER).await {
        Ok(_) => {}
        Err(e) if missing(&e) => {
            api.create_customer(&CreateCustomer {
                name: topology::PLATFORM_CUSTOMER.into(),
                kind: None,
                display_name: Some("The platform's own names (made by hostplane up)".into()),
                email: None,
                reseller: None,
                password: None,
                default_clusters: None,
                db_quota_mb: None,
            })
            .await
            .context("cannot create the platform customer")?;
        }
        Err(e) => return Err(e.into()),
    }
    match api.get_domain(topology::PLATFORM_DOMAIN).await {
        Ok(_) => Ok(()),
        Err(e) if missing(&e) => {
            api.create_domain(&CreateDomain {
                name: topology::PLATFORM_DOMAIN.into(),
                customer: Some(topology::PLATFORM_CUSTOMER.into()),
                clusters: None,
            })
            .await
            .context("cannot create the platform domain")?;
            Ok(())
        }
        Err(e) => Err(e.into()),
    }
}
