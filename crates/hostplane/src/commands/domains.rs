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
        DomainCmd::Challenge(c) => {
            let req = proto::v1::CreateDomainChallenge {
                name: c.name,
                customer: c.customer,
            };
            ctx.out.one(&api.create_domain_challenge(&req).await?)
        }
        DomainCmd::Transfer(t) => {
            let req = proto::v1::CreateDomainTransfer {
                name: t.name,
                to: t.to,
            };
            ctx.out.one(&api.create_domain_transfer(&req).await?)
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
            let paths = |clear: bool, list: Vec<String>| {
                if clear {
                    Some(Vec::new())
                } else {
                    non_empty(list)
                }
            };
            let req = UpdateSite {
                aliases,
                php: u.php,
                mode: u.mode,
                https_redirect: u.https_redirect,
                keep: paths(u.clear_keep, u.keep),
                local: paths(u.clear_local, u.local),
                docroot: if u.clear_docroot {
                    Some("/".into())
                } else {
                    u.docroot
                },
                hsts: u.hsts,
                php_version: u.php_version,
                php_set: (!u.php_set.is_empty()).then(|| u.php_set.into_iter().collect()),
                php_unset: non_empty(u.php_unset),
            };
            ctx.out.one(&api.update_site(&u.domain, &req).await?)
        }
        SiteCmd::Delete(d) => {
            api.delete_site(&d.domain).await?;
            ctx.out.deleted("site", &d.domain)
        }
        SiteCmd::Cert(c) => site_cert(ctx, &api, c).await,
        SiteCmd::Upload(u) => site_upload(ctx, &api, u).await,
        SiteCmd::Conflicts(d) => super::sitefiles::conflicts(ctx, &api, &d.domain).await,
        SiteCmd::Restore(r) => super::sitefiles::restore(ctx, &api, r).await,
        SiteCmd::RestoreStatus(r) => ctx.out.one(&api.site_restore(&r.domain, &r.id).await?),
        SiteCmd::Rollback(r) => super::sitefiles::rollback(ctx, &api, r).await,
        SiteCmd::Logs(l) => super::sitelogs::logs(ctx, &api, l).await,
        SiteCmd::Deployments(d) => super::sitefiles::deployments(ctx, &api, &d.domain).await,
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
        SiteCertCmd::Status(d) => ctx.out.one(&api.get_site_acme(&d.domain).await?),
        SiteCertCmd::Acme(a) => {
            let req = proto::v1::AcmeSettings {
                enabled: (a.on || a.off).then_some(a.on),
                challenge: a.challenge.clone(),
            };
            ctx.out.one(&api.put_site_acme(&a.domain, &req).await?)
        }
    }
}

/// A tar archive of `dir`'s content (plain files and folders; symlinks and other
/// special files are skipped with a warning).
fn archive_dir(dir: &std::path::Path) -> anyhow::Result<(Vec<u8>, usize)> {
    use anyhow::Context as _;
    let mut builder = tar::Builder::new(Vec::new());
    builder.follow_symlinks(false);
    let mut files = 0usize;
    let mut stack = vec![std::path::PathBuf::new()];
    while let Some(rel) = stack.pop() {
        let abs = dir.join(&rel);
        let mut entries: Vec<_> = std::fs::read_dir(&abs)
            .with_context(|| format!("cannot read {}", abs.display()))?
            .collect::<Result<_, _>>()?;
        entries.sort_by_key(std::fs::DirEntry::file_name);
        for e in entries {
            let rel_child = rel.join(e.file_name());
            let kind = e.file_type()?;
            if kind.is_dir() {
                builder.append_dir(&rel_child, e.path())?;
                stack.push(rel_child);
            } else if kind.is_file() {
                builder
                    .append_path_with_name(e.path(), &rel_child)
                    .with_context(|| format!("cannot add {}", e.path().display()))?;
                files += 1;
            } else {
                eprintln!(
                    "skipping {} (not a plain file or folder)",
                    e.path().display()
                );
            }
        }
    }
    Ok((builder.into_inner()?, files))
}

/// `hostplane site upload DOMAIN DIR`.
async fn site_upload(
    ctx: &Ctx,
    api: &client::Client,
    u: crate::cli::SiteUpload,
) -> anyhow::Result<()> {
    use std::io::IsTerminal as _;
    if !u.dir.is_dir() {
        anyhow::bail!("{} is not a folder", u.dir.display());
    }
    let dir = u.dir.clone();
    let (archive, files) = tokio::task::spawn_blocking(move || archive_dir(&dir)).await??;
    let total = archive.len() as u64;
    let show = !ctx.out.json && std::io::stderr().is_terminal();
    let view = api
        .upload_site_content(&u.domain, archive, move |sent| {
            if show {
                let pct = (sent * 100).checked_div(total).unwrap_or(100);
                eprint!(
                    "\ruploading {files} files: {pct:>3}% of {} KiB",
                    total.div_ceil(1024)
                );
            }
        })
        .await?;
    if show {
        eprintln!();
    }
    if ctx.out.json {
        return crate::output::print_json(&view);
    }
    crate::output::print_fields(&[
        ("site", view.domain.clone()),
        ("deployment", view.id.clone()),
        ("files", files.to_string()),
        ("size bytes", view.size.to_string()),
        ("deployed", view.deployed_at.clone()),
    ]);
    println!("\nthe files server applies it within seconds; web servers replicate it from there");
    Ok(())
}
