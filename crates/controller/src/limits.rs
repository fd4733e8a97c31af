//! Plans and limits applied where objects are created or changed.
//!
//! Every check runs inside the writer's store transaction ([`Tx`]): writers are
//! serialised, so the count read here cannot be overtaken by a concurrent create,
//! and N parallel requests never exceed a limit. Counts are the store's per-(owner,
//! kind) counters ([`Tx::count_owned`], one row kept by triggers), so a check costs
//! the same for an account with ten domains or ten thousand. The limit values come
//! from the pure [`model::limits::effective_limits`].
//!
//! Lowering a limit below what an account already uses keeps what exists, refuses
//! new objects (409 `limit_reached`, naming the limit) and records a
//! `limit.warning` event ([`warn_over_limits`]).

use axum::http::StatusCode;
use model::entity::{Account, FtpAccount, Kind, Mailbox, Plan, Site};
use model::limits::{effective_limits, LimitField, Limits};
use model::{AccountKind, Id};
use store::{Stored, Tx};

use crate::auth::Caller;
use crate::error::{ApiError, ApiResult};

/// The limits of `account` (its plan's or `default`, with its overrides), read in `tx`.
pub async fn account_limits(tx: &mut Tx, default: &Limits, account: &Account) -> ApiResult<Limits> {
    let plan = match account.plan {
        Some(id) => match tx.get::<Plan>(id).await? {
            Some(p) => p.data.limits,
            None => *default,
        },
        None => *default,
    };
    Ok(effective_limits(&plan, &account.limits))
}

/// The limits of account `id`, read in `tx`.
pub async fn limits_of(tx: &mut Tx, default: &Limits, id: Id) -> ApiResult<Limits> {
    let account = tx
        .get::<Account>(id)
        .await?
        .ok_or_else(|| ApiError::not_found("the owning account no longer exists"))?;
    account_limits(tx, default, &account.data).await
}

/// The limits of account `id` now, read outside a transaction (for views, which
/// must not begin a write transaction); an account gone has `default`'s.
pub async fn limits_now(store: &store::Store, default: &Limits, id: Id) -> ApiResult<Limits> {
    let Some(account) = store.get::<Account>(store::Scope::All, id).await? else {
        return Ok(*default);
    };
    let plan = match account.data.plan {
        Some(p) => match store.get::<Plan>(store::Scope::All, p).await? {
            Some(p) => p.data.limits,
            None => *default,
        },
        None => *default,
    };
    Ok(effective_limits(&plan, &account.data.limits))
}

/// The count limit of a kind, if it has one.
fn count_field(kind: Kind) -> Option<LimitField> {
    match kind {
        Kind::Domain => Some(LimitField::MaxDomains),
        Kind::Mailbox => Some(LimitField::MaxMailboxes),
        Kind::Database => Some(LimitField::MaxDatabases),
        Kind::FtpAccount => Some(LimitField::MaxFtpAccounts),
        _ => None,
    }
}

/// 409 `limit_reached` naming the limit.
pub fn limit_reached(field: LimitField, message: String) -> ApiError {
    ApiError::new(StatusCode::CONFLICT, "limit_reached", message)
        .with_field(field.as_str())
        .with_rule("plan_limit")
}

/// Refuse one more object of `kind` for account `owner` when it already holds as
/// many as its limit allows. Call inside the transaction that creates it.
pub async fn check_count(tx: &mut Tx, default: &Limits, owner: Id, kind: Kind) -> ApiResult<()> {
    if count_field(kind).is_none() {
        return Ok(());
    }
    let limits = limits_of(tx, default, owner).await?;
    let used = u64::try_from(tx.count_owned(kind, owner).await?).unwrap_or(0);
    check_used(&limits, kind, used)
}

/// The rule of [`check_count`] once the account's `limits` and the number of
/// objects of `kind` it holds (`used`) are known (pure; the bulk import counts in
/// its own view of the store).
pub fn check_used(limits: &Limits, kind: Kind, used: u64) -> ApiResult<()> {
    let Some(field) = count_field(kind) else {
        return Ok(());
    };
    let limit = field.get(limits);
    if used >= limit {
        return Err(limit_reached(
            field,
            format!(
                "the account holds {used} {} and its plan allows {limit} ({field}); delete one or ask your provider to raise the limit",
                noun(kind)
            ),
        ));
    }
    Ok(())
}

fn noun(kind: Kind) -> &'static str {
    match kind {
        Kind::Domain => "domain(s)",
        Kind::Mailbox => "mailbox(es)",
        Kind::Database => "database(s)",
        Kind::FtpAccount => "FTP account(s)",
        _ => "object(s)",
    }
}

/// A mailbox or FTP quota from a request (`field`), checked against the owner's
/// `limits` (`limit_field`): 1 MiB ..= the limit, or lower than the quota it
/// replaces (`current`). `None` (not given): `default_mb` capped at the limit.
pub fn quota(
    limits: &Limits,
    limit_field: LimitField,
    field: &str,
    requested: Option<u64>,
    default_mb: u64,
    current: Option<u64>,
) -> ApiResult<u64> {
    let max = limit_field.get(limits);
    let Some(q) = requested else {
        return Ok(default_mb.min(max));
    };
    if model::limits::quota_allowed(q, max, current) {
        return Ok(q);
    }
    let range = model::limits::QUOTA_RANGE_MB;
    if !range.contains(&q) {
        return Err(ApiError::invalid(
            field,
            "out_of_range",
            format!(
                "{field} is {} to {} MiB (0, unlimited, is not offered)",
                range.start(),
                range.end()
            ),
        ));
    }
    Err(ApiError::invalid(
        field,
        "above_plan_limit",
        format!("{field} can be at most {max} MiB under the account's plan ({limit_field})"),
    ))
}

/// The limits FTP quotas are checked against: an FTP account's quota bounds what
/// it writes under its home (the site's files for a root home), so it is also at
/// most the account's `site_disk_mb`.
pub fn ftp_limits(mut limits: Limits) -> Limits {
    limits.max_ftp_quota_mb = limits.max_ftp_quota_mb.min(limits.site_disk_mb);
    limits
}

/// Bytes of deployment archives account `owner` keeps (each distinct archive of its
/// sites' kept deployments once), read in `tx`; `skip` leaves out ids about to go.
pub async fn deployment_usage(tx: &mut Tx, owner: Id, skip: &[String]) -> ApiResult<u64> {
    let mut seen = std::collections::HashSet::new();
    let mut total = 0u64;
    for site in tx.owned::<Site>(owner).await? {
        for d in site
            .data
            .deployment
            .iter()
            .chain(site.data.previous_deployments.iter())
        {
            if !skip.contains(&d.id) && seen.insert(d.id.clone()) {
                total = total.saturating_add(d.size);
            }
        }
    }
    Ok(total)
}

/// What account `owner` uses of each limit that counts objects, read in `tx`.
async fn usage(tx: &mut Tx, owner: Id) -> ApiResult<Vec<(LimitField, u64)>> {
    let mut out = Vec::new();
    for kind in [
        Kind::Domain,
        Kind::Mailbox,
        Kind::Database,
        Kind::FtpAccount,
    ] {
        if let Some(f) = count_field(kind) {
            let n = u64::try_from(tx.count_owned(kind, owner).await?).unwrap_or(0);
            out.push((f, n));
        }
    }
    let bytes = deployment_usage(tx, owner, &[]).await?;
    out.push((LimitField::DeploymentDiskMb, bytes.div_ceil(1 << 20)));
    // Quotas: the largest one set (0, unlimited from before limits existed, counts
    // as above any limit).
    let widest = |q: u64| if q == 0 { u64::MAX } else { q };
    let mailbox = tx.owned::<Mailbox>(owner).await?;
    let max_mailbox = mailbox.iter().map(|m| widest(m.data.quota_mb)).max();
    let ftp = tx.owned::<FtpAccount>(owner).await?;
    let max_ftp = ftp.iter().map(|f| widest(f.data.quota_mb)).max();
    out.extend(max_mailbox.map(|q| (LimitField::MaxMailboxQuotaMb, q)));
    out.extend(max_ftp.map(|q| (LimitField::MaxFtpQuotaMb, q)));
    Ok(out)
}

/// Record a `limit.warning` event for every limit account `account` now uses more
/// of than it allows (after its plan or overrides were lowered). What exists stays.
pub async fn warn_over_limits(
    tx: &mut Tx,
    default: &Limits,
    account: &Stored<Account>,
) -> ApiResult<()> {
    if account.data.kind == AccountKind::Admin {
        return Ok(());
    }
    let limits = account_limits(tx, default, &account.data).await?;
    for (field, used) in usage(tx, account.meta.id).await? {
        let limit = field.get(&limits);
        if used > limit {
            tx.event(
                "limit.warning",
                Kind::Account,
                Some((account.meta.id, &account.meta.name)),
                Some(account.meta.id),
                serde_json::json!({
                    "limit": field.as_str(),
                    "allowed": limit,
                    "used": used,
                    "message": format!(
                        "{} uses {used} where its limits allow {limit} ({field}); existing objects stay, new ones are refused",
                        account.meta.name
                    ),
                }),
            )
            .await?;
        }
    }
    Ok(())
}

/// Whether the caller may choose clusters (explicit placements, default clusters,
/// a database's cluster): admins, and resellers an admin allowed. 403 naming
/// `field` otherwise.
pub fn may_choose_clusters(caller: &Caller, field: &str) -> ApiResult<()> {
    match caller.account.kind {
        AccountKind::Admin => Ok(()),
        AccountKind::Reseller if caller.account.may_choose_clusters => Ok(()),
        _ => Err(
            ApiError::forbidden("clusters are chosen by your provider; leave this field out")
                .with_field(field),
        ),
    }
}

/// [`may_choose_clusters`] when `map` names any cluster (an empty or absent map
/// chooses nothing).
pub fn may_choose_clusters_in<V>(
    caller: &Caller,
    field: &str,
    map: Option<&std::collections::BTreeMap<String, V>>,
) -> ApiResult<()> {
    match map {
        Some(m) if !m.is_empty() => may_choose_clusters(caller, field),
        _ => Ok(()),
    }
}
