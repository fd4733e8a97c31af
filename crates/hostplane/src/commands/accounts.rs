//! `customer` and `token`: accounts and their API tokens.

use proto::v1::{CreateCustomer, CreateToken, UpdateCustomer};
use std::collections::BTreeMap;

use super::{listing, Ctx};
use crate::cli::{CustomerCmd, TokenCmd, TotpCmd};
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
        TokenCmd::Impersonate(i) => {
            let req = proto::v1::Impersonate {
                account: i.account,
                minutes: i.minutes,
            };
            let created = api.impersonate(&req).await?;
            if ctx.out.json {
                return crate::output::print_json(&created);
            }
            print_fields(&created.info.fields());
            secret("token", &created.token);
            Ok(())
        }
        TokenCmd::Totp(t) => totp(ctx, &api, t).await,
    }
}

async fn totp(ctx: &Ctx, api: &client::Client, cmd: TotpCmd) -> anyhow::Result<()> {
    match cmd {
        TotpCmd::Status => {
            let st = api.totp_status().await?;
            if ctx.out.json {
                return crate::output::print_json(&st);
            }
            let state = if st.confirmed {
                "on"
            } else if st.enrolled {
                "enrolment not confirmed"
            } else {
                "off"
            };
            print_fields(&[
                ("two-factor", state.to_owned()),
                ("recovery codes left", st.recovery_codes_left.to_string()),
            ]);
            Ok(())
        }
        TotpCmd::Enroll => {
            let e = api.totp_enroll().await?;
            if ctx.out.json {
                return crate::output::print_json(&e);
            }
            print_fields(&[("uri", e.otpauth_uri.clone())]);
            secret("secret", &e.secret);
            println!("Add it to an authenticator app, then: hostplane token totp confirm CODE");
            Ok(())
        }
        TotpCmd::Confirm { code } => {
            let r = api.totp_confirm(&proto::v1::TotpConfirm { code }).await?;
            if ctx.out.json {
                return crate::output::print_json(&r);
            }
            println!("Two-factor authentication is on. Recovery codes (each works once, shown only now):");
            for c in &r.recovery_codes {
                println!("  {c}");
            }
            Ok(())
        }
        TotpCmd::Disable { code, password } => {
            let password = if password {
                let mut line = String::new();
                std::io::stdin().read_line(&mut line)?;
                Some(line.trim_end_matches(['\r', '\n']).to_owned())
            } else {
                None
            };
            api.totp_disable(&proto::v1::TotpDisable { code, password })
                .await?;
            println!("Two-factor authentication is off.");
            Ok(())
        }
    }
}
