//! `customer` and `token`: accounts and their API tokens.

use proto::v1::{CreateCustomer, CreateToken, UpdateCustomer};
use std::collections::BTreeMap;

use super::{listing, Ctx};
use crate::cli::{CustomerCmd, TokenCmd};
use crate::output::{print_fields, secret, Render};

fn cluster_map(pairs: Vec<(String, String)>) -> Option<BTreeMap<String, String>> {
    if pairs.is_empty() {
        None
    } else {
        Some(pairs.into_iter().collect())
    }
}

/// `hostplane customer ...`.
pub async fn customer(ctx: &Ctx, cmd: CustomerCmd) -> anyhow::Result<()> {
    let api = ctx.api()?;
    match cmd {
        CustomerCmd::Add(a) => {
            let req = CreateCustomer {
                name: a.name,
                kind: a.kind,
                display_name: a.display_name,
                email: a.email,
                reseller: a.reseller,
                password: a.password,
                default_clusters: cluster_map(a.default_clusters),
                db_quota_mb: a.db_quota_mb,
            };
            ctx.out.one(&api.create_customer(&req).await?)
        }
        CustomerCmd::List(l) => ctx.out.list(&listing!(
            api,
            l.list,
            l.list.params(),
            list_all_customers,
            list_customers
        )),
        CustomerCmd::Show(n) => ctx.out.one(&api.get_customer(&n.name).await?),
        CustomerCmd::Update(u) => {
            let req = UpdateCustomer {
                display_name: u.display_name,
                email: u.email,
                password: u.password,
                disabled: u.disabled,
                default_clusters: cluster_map(u.default_clusters),
                db_quota_mb: u.db_quota_mb,
                plan: u.plan,
                limits: Some(u.limits.patch()).filter(|l| *l != Default::default()),
                clear_limits: super::non_empty(u.clear_limits),
                may_choose_clusters: u.may_choose_clusters,
            };
            ctx.out.one(&api.update_customer(&u.name, &req).await?)
        }
        CustomerCmd::Delete(n) => {
            api.delete_customer(&n.name).await?;
            ctx.out.deleted("customer", &n.name)
        }
    }
}

/// `hostplane token ...`.
pub async fn token(ctx: &Ctx, cmd: TokenCmd) -> anyhow::Result<()> {
    let api = ctx.api()?;
    match cmd {
        TokenCmd::Create(c) => {
            let req = CreateToken {
                name: c.name,
                account: c.account,
                expires_in_days: c.expires_in_days,
            };
            let created = api.create_token(&req).await?;
            if ctx.out.json {
                return crate::output::print_json(&created);
            }
            print_fields(&created.info.fields());
            secret("token", &created.token);
            Ok(())
        }
        TokenCmd::List(l) => ctx.out.list(&listing!(
            api,
            l.list,
            l.list.params(),
            list_all_tokens,
            list_tokens
        )),
        TokenCmd::Revoke(r) => {
            api.delete_token(&r.id).await?;
            ctx.out.deleted("token", &r.id)
        }
    }
}
