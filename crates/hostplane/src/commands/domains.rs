//! `domain` and `site`.

use proto::v1::{CreateDomain, CreateSite, ListParams, UpdateDomain, UpdateSite};

use super::{listing, non_empty, Ctx};
use crate::cli::{DomainCmd, SiteCmd};

/// `hostplane domain ...`.
pub async fn domain(ctx: &Ctx, cmd: DomainCmd) -> anyhow::Result<()> {
    let api = ctx.api()?;
    match cmd {
        DomainCmd::Add(a) => {
            let clusters = non_empty(a.clusters).map(|c| c.into_iter().collect());
            let req = CreateDomain {
                name: a.name,
                customer: a.customer,
                clusters,
            };
            ctx.out.one(&api.create_domain(&req).await?)
        }
        DomainCmd::List(l) => {
            let params = ListParams {
                customer: l.customer,
                ..l.list.params()
            };
            ctx.out.list(&listing!(
                api,
                l.list,
                params,
                list_all_domains,
                list_domains
            ))
        }
        DomainCmd::Show(n) => ctx.out.one(&api.get_domain(&n.name).await?),
        DomainCmd::Update(u) => {
            let req = UpdateDomain {
                clusters: Some(u.clusters.into_iter().collect()),
            };
            ctx.out.one(&api.update_domain(&u.name, &req).await?)
        }
        DomainCmd::Delete(n) => {
            api.delete_domain(&n.name).await?;
            ctx.out.deleted("domain", &n.name)
        }
    }
}

/// `hostplane site ...`.
pub async fn site(ctx: &Ctx, cmd: SiteCmd) -> anyhow::Result<()> {
    let api = ctx.api()?;
    match cmd {
        SiteCmd::Add(a) => {
            let req = CreateSite {
                domain: a.domain,
                aliases: non_empty(a.aliases),
                php: a.php.then_some(true),
                mode: a.mode,
                https_redirect: a.https_redirect.then_some(true),
            };
            ctx.out.one(&api.create_site(&req).await?)
        }
        SiteCmd::List(l) => {
            let params = ListParams {
                domain: l.domain,
                customer: l.customer,
                ..l.list.params()
            };
            ctx.out
                .list(&listing!(api, l.list, params, list_all_sites, list_sites))
        }
        SiteCmd::Show(d) => ctx.out.one(&api.get_site(&d.domain).await?),
        SiteCmd::Update(u) => {
            let aliases = if u.clear_aliases {
                Some(Vec::new())
            } else {
                non_empty(u.aliases)
            };
            let req = UpdateSite {
                aliases,
                php: u.php,
                mode: u.mode,
                https_redirect: u.https_redirect,
            };
            ctx.out.one(&api.update_site(&u.domain, &req).await?)
        }
        SiteCmd::Delete(d) => {
            api.delete_site(&d.domain).await?;
            ctx.out.deleted("site", &d.domain)
        }
        SiteCmd::Cert(c) => site_cert(ctx, &api, c).await,
    }
}

/// `hostplane site cert ...`.
async fn site_cert(
    ctx: &Ctx,
    api: &client::Client,
    cmd: crate::cli::SiteCertCmd,
) -> anyhow::Result<()> {
    use crate::cli::SiteCertCmd;
    use anyhow::Context as _;
    match cmd {
        SiteCertCmd::Show(d) => ctx.out.one(&api.get_site_certificate(&d.domain).await?),
        SiteCertCmd::Upload(u) => {
            let read = |p: &std::path::Path| {
                std::fs::read_to_string(p).with_context(|| format!("cannot read {}", p.display()))
            };
            let req = proto::v1::UploadCertificate {
                cert_pem: read(&u.cert)?,
                key_pem: read(&u.key)?,
            };
            ctx.out
                .one(&api.put_site_certificate(&u.domain, &req).await?)
        }
        SiteCertCmd::Delete(d) => {
            api.delete_site_certificate(&d.domain).await?;
            ctx.out.deleted("certificate of", &d.domain)
        }
    }
}
