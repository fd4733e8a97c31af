//! `ftp`: FTP accounts.

use proto::v1::{CreateFtpAccount, ListParams, UpdateFtpAccount};

use super::{listing, Ctx};
use crate::cli::FtpCmd;

/// `hostplane ftp ...`.
pub async fn ftp(ctx: &Ctx, cmd: FtpCmd) -> anyhow::Result<()> {
    let api = ctx.api()?;
    match cmd {
        FtpCmd::Add(a) => {
            let req = CreateFtpAccount {
                username: a.username,
                domain: a.domain,
                password: a.password,
                home: a.home,
                quota_mb: a.quota_mb,
            };
            ctx.out.with_password(&api.create_ftp_account(&req).await?)
        }
        FtpCmd::List(l) => {
            let params = ListParams {
                domain: l.domain,
                customer: l.customer,
                ..l.list.params()
            };
            ctx.out.list(&listing!(
                api,
                l.list,
                params,
                list_all_ftp_accounts,
                list_ftp_accounts
            ))
        }
        FtpCmd::Show(u) => ctx.out.one(&api.get_ftp_account(&u.username).await?),
        FtpCmd::Update(u) => {
            let req = UpdateFtpAccount {
                password: u.password,
                home: u.home,
                quota_mb: u.quota_mb,
            };
            ctx.out
                .one(&api.update_ftp_account(&u.username, &req).await?)
        }
        FtpCmd::Delete(u) => {
            api.delete_ftp_account(&u.username).await?;
            ctx.out.deleted("FTP account", &u.username)
        }
    }
}
