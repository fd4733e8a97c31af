//! `mailbox` and `alias`.

use proto::v1::{CreateAlias, CreateMailbox, ListParams, UpdateAlias, UpdateMailbox};

use super::{listing, Ctx};
use crate::cli::{AliasCmd, MailboxCmd};

/// `hostplane mailbox ...`.
pub async fn mailbox(ctx: &Ctx, cmd: MailboxCmd) -> anyhow::Result<()> {
    let api = ctx.api()?;
    match cmd {
        MailboxCmd::Add(a) => {
            let req = CreateMailbox {
                address: a.address,
                password: a.password,
                quota_mb: a.quota_mb,
                display_name: a.display_name,
            };
            ctx.out.with_password(&api.create_mailbox(&req).await?)
        }
        MailboxCmd::List(l) => {
            let params = ListParams {
                domain: l.domain,
                customer: l.customer,
                ..l.list.params()
            };
            ctx.out.list(&listing!(
                api,
                l.list,
                params,
                list_all_mailboxes,
                list_mailboxes
            ))
        }
        MailboxCmd::Show(a) => ctx.out.one(&api.get_mailbox(&a.address).await?),
        MailboxCmd::Update(u) => {
            let req = UpdateMailbox {
                password: u.password,
                quota_mb: u.quota_mb,
                display_name: u.display_name,
                enabled: u.enabled,
            };
            ctx.out.one(&api.update_mailbox(&u.address, &req).await?)
        }
        MailboxCmd::Delete(a) => {
            api.delete_mailbox(&a.address).await?;
            ctx.out.deleted("mailbox", &a.address)
        }
    }
}

/// `hostplane alias ...`.
pub async fn alias(ctx: &Ctx, cmd: AliasCmd) -> anyhow::Result<()> {
    let api = ctx.api()?;
    match cmd {
        AliasCmd::Add(a) => {
            let req = CreateAlias {
                address: a.address,
                destinations: a.destinations,
            };
            ctx.out.one(&api.create_alias(&req).await?)
        }
        AliasCmd::List(l) => {
            let params = ListParams {
                domain: l.domain,
                customer: l.customer,
                ..l.list.params()
            };
            ctx.out.list(&listing!(
                api,
                l.list,
                params,
                list_all_aliases,
                list_aliases
            ))
        }
        AliasCmd::Show(a) => ctx.out.one(&api.get_alias(&a.address).await?),
        AliasCmd::Update(u) => {
            let req = UpdateAlias {
                destinations: Some(u.destinations),
            };
            ctx.out.one(&api.update_alias(&u.address, &req).await?)
        }
        AliasCmd::Delete(a) => {
            api.delete_alias(&a.address).await?;
            ctx.out.deleted("alias", &a.address)
        }
    }
}

/// `hostplane mail queue|flush`.
pub async fn mail_queue(ctx: &Ctx, cmd: crate::cli::MailCmd) -> anyhow::Result<()> {
    let api = ctx.api()?;
    match cmd {
        crate::cli::MailCmd::Queue(_) => {
            let queues = api.mail_queue().await?;
            if ctx.out.json {
                return crate::output::print_json(&queues);
            }
            for q in &queues {
                let state = if q.reported { "" } else { " (no report yet)" };
                println!("{}: {} message(s){state}", q.server, q.messages.len());
                if !q.messages.is_empty() {
                    println!(
                        "{}",
                        crate::output::table(
                            &["id", "from", "to", "size", "attempts", "next", "last error"],
                            q.messages.iter().map(|m| vec![
                                m.id.clone(),
                                m.from.clone(),
                                m.to.join(", "),
                                m.size.to_string(),
                                m.attempts.to_string(),
                                m.next_attempt.clone().unwrap_or_default(),
                                m.last_error.clone().unwrap_or_default(),
                            ])
                        )
                    );
                }
            }
            if queues.is_empty() {
                println!("(no mail servers)");
            }
            Ok(())
        }
        crate::cli::MailCmd::Check(c) => {
            let view = api.mail_check(&c.domain).await?;
            if ctx.out.json {
                return crate::output::print_json(&view);
            }
            println!(
                "{}",
                crate::output::table(
                    &["status", "check", "finding"],
                    view.checks.iter().map(|c| vec![
                        c.status.clone(),
                        c.check.clone(),
                        c.message.clone()
                    ]),
                )
            );
            Ok(())
        }
        crate::cli::MailCmd::Flush(_) => {
            api.mail_flush().await?;
            if ctx.out.json {
                crate::output::print_json(&serde_json::json!({"flushed": true}))
            } else {
                println!("every mail server retries its queue now");
                Ok(())
            }
        }
    }
}
