//! `db` (databases) and `db-user`.

use proto::v1::{CreateDatabase, CreateDbUser, ListParams, UpdateDatabase, UpdateDbUser};

use super::{listing, non_empty, Ctx};
use crate::cli::{DbCmd, DbUserCmd};

/// `hostplane db ...`.
pub async fn database(ctx: &Ctx, cmd: DbCmd) -> anyhow::Result<()> {
    let api = ctx.api()?;
    match cmd {
        DbCmd::Add(a) => {
            let req = CreateDatabase {
                name: a.name,
                engine: a.engine.to_string(),
                customer: a.customer,
                cluster: a.cluster,
                domain: a.domain,
                restore_from: None,
            };
            ctx.out.one(&api.create_database(&req).await?)
        }
        DbCmd::List(l) => {
            let params = ListParams {
                customer: l.customer,
                ..l.list.params()
            };
            ctx.out.list(&listing!(
                api,
                l.list,
                params,
                list_all_databases,
                list_databases
            ))
        }
        DbCmd::Show(n) => ctx.out.one(&api.get_database(&n.name).await?),
        DbCmd::Update(u) => {
            let req = UpdateDatabase { domain: u.domain };
            ctx.out.one(&api.update_database(&u.name, &req).await?)
        }
        DbCmd::Delete(n) => {
            api.delete_database(&n.name).await?;
            ctx.out.deleted("database", &n.name)
        }
        DbCmd::Trash(_) => {
            let items = api.list_db_trash().await?;
            ctx.out.list(&crate::output::Listing::All(items))
        }
        DbCmd::Restore(r) => {
            let trash = api.list_db_trash().await?;
            let Some(entry) = trash.into_iter().find(|t| t.name == r.entry) else {
                anyhow::bail!(
                    "no trash entry `{}`; `hostplane db trash` lists the ones you can restore",
                    r.entry
                );
            };
            let req = CreateDatabase {
                name: r.name.unwrap_or_else(|| entry.database.clone()),
                engine: entry.engine.clone(),
                customer: Some(entry.customer.clone()),
                cluster: Some(entry.cluster.clone()),
                domain: None,
                restore_from: Some(entry.name.clone()),
            };
            ctx.out.one(&api.create_database(&req).await?)
        }
    }
}

/// `hostplane db-user ...`.
pub async fn db_user(ctx: &Ctx, cmd: DbUserCmd) -> anyhow::Result<()> {
    let api = ctx.api()?;
    match cmd {
        DbUserCmd::Add(a) => {
            let req = CreateDbUser {
                name: a.name,
                engine: a.engine.map(|e| e.to_string()),
                customer: a.customer,
                cluster: a.cluster,
                password: a.password,
                databases: non_empty(a.databases),
            };
            ctx.out.with_password(&api.create_db_user(&req).await?)
        }
        DbUserCmd::List(l) => {
            let params = ListParams {
                customer: l.customer,
                ..l.list.params()
            };
            ctx.out.list(&listing!(
                api,
                l.list,
                params,
                list_all_db_users,
                list_db_users
            ))
        }
        DbUserCmd::Show(n) => ctx.out.one(&api.get_db_user(&n.name).await?),
        DbUserCmd::Update(u) => {
            let databases = if u.no_databases {
                Some(Vec::new())
            } else {
                non_empty(u.databases)
            };
            let req = UpdateDbUser {
                password: u.password,
                databases,
            };
            ctx.out.one(&api.update_db_user(&u.name, &req).await?)
        }
        DbUserCmd::Delete(n) => {
            api.delete_db_user(&n.name).await?;
            ctx.out.deleted("database user", &n.name)
        }
    }
}
