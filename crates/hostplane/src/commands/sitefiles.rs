//! `hostplane site conflicts | restore | rollback | deployments`: a site's files
//! (issue 14) as the files server keeps them.

use std::io::IsTerminal as _;
use std::time::Duration;

use proto::v1::{
    CreateSiteRestore, KeptDeploymentView, SiteConflictView, SiteRestoreView, SiteRollback,
};

use super::Ctx;
use crate::output::{Listing, Render};

impl Render for SiteConflictView {
    const HEADERS: &'static [&'static str] = &["path", "kind", "size", "from", "time", "id"];
    fn cells(&self) -> Vec<String> {
        vec![
            self.path.clone(),
            self.kind.clone(),
            self.size.map(|s| s.to_string()).unwrap_or_default(),
            self.origin.clone(),
            self.time.clone(),
            self.id.clone(),
        ]
    }
    fn fields(&self) -> Vec<(&'static str, String)> {
        Self::HEADERS.iter().copied().zip(self.cells()).collect()
    }
}

impl Render for KeptDeploymentView {
    const HEADERS: &'static [&'static str] = &["id", "size bytes", "deployed", "current"];
    fn cells(&self) -> Vec<String> {
        vec![
            self.id.clone(),
            self.size.to_string(),
            self.deployed_at.clone(),
            if self.current { "yes" } else { "" }.to_owned(),
        ]
    }
    fn fields(&self) -> Vec<(&'static str, String)> {
        Self::HEADERS.iter().copied().zip(self.cells()).collect()
    }
}

impl Render for SiteRestoreView {
    const HEADERS: &'static [&'static str] = &["id", "path", "at", "state", "message"];
    fn cells(&self) -> Vec<String> {
        vec![
            self.id.clone(),
            self.path.clone(),
            self.at.clone().unwrap_or_else(|| "latest".into()),
            self.state.clone(),
            self.message.clone(),
        ]
    }
    fn fields(&self) -> Vec<(&'static str, String)> {
        vec![
            ("site", self.domain.clone()),
            ("path", self.path.clone()),
            (
                "version at",
                self.at
                    .clone()
                    .unwrap_or_else(|| "the last one replaced or deleted".into()),
            ),
            ("requested", self.requested_at.clone()),
            ("state", self.state.clone()),
            ("message", self.message.clone()),
            ("id", self.id.clone()),
        ]
    }
}

/// `site conflicts DOMAIN`.
pub async fn conflicts(ctx: &Ctx, api: &client::Client, domain: &str) -> anyhow::Result<()> {
    ctx.out
        .list(&Listing::All(api.site_conflicts(domain).await?))
}

/// `site deployments DOMAIN`.
pub async fn deployments(ctx: &Ctx, api: &client::Client, domain: &str) -> anyhow::Result<()> {
    ctx.out
        .list(&Listing::All(api.site_deployments(domain).await?))
}

/// `site rollback DOMAIN [ID]`.
pub async fn rollback(
    ctx: &Ctx,
    api: &client::Client,
    r: crate::cli::SiteRollbackArgs,
) -> anyhow::Result<()> {
    let view = api
        .rollback_site(&r.domain, &SiteRollback { id: r.id })
        .await?;
    if ctx.out.json {
        return crate::output::print_json(&view);
    }
    crate::output::print_fields(&[
        ("site", view.domain.clone()),
        ("current deployment", view.id.clone()),
        ("size bytes", view.size.to_string()),
        ("uploaded", view.deployed_at.clone()),
    ]);
    println!("\nthe files server deploys it within seconds; kept and local paths stay as they are");
    Ok(())
}

/// How often a waiting `site restore` asks again.
const POLL: Duration = Duration::from_millis(300);

/// `site restore DOMAIN PATH [--at TIME] [--no-wait]`: ask, then (unless
/// `--no-wait`) wait for the files server's result with a spinner on a terminal.
/// A failed restore exits non-zero with the files server's message.
pub async fn restore(
    ctx: &Ctx,
    api: &client::Client,
    r: crate::cli::SiteRestore,
) -> anyhow::Result<()> {
    let req = CreateSiteRestore {
        path: r.path,
        at: r.at,
    };
    let mut view = api.restore_site_path(&r.domain, &req).await?;
    if r.no_wait {
        ctx.out.one(&view)?;
        if !ctx.out.json {
            println!(
                "\nfollow it with: hostplane site restore-status {} {}",
                view.domain, view.id
            );
        }
        return Ok(());
    }
    let spin = !ctx.out.json && std::io::stderr().is_terminal();
    let frames = ['|', '/', '-', '\\'];
    let mut n = 0usize;
    while view.state == "pending" {
        if spin {
            eprint!(
                "\r{} waiting for the files server to restore {}",
                frames[n % frames.len()],
                view.path
            );
            n += 1;
        }
        tokio::time::sleep(POLL).await;
        view = api.site_restore(&r.domain, &view.id).await?;
    }
    if spin {
        eprintln!();
    }
    ctx.out.one(&view)?;
    if view.state == "failed" {
        anyhow::bail!("the restore failed: {}", view.message);
    }
    Ok(())
}
