//! The task's loop (`run`, re-exported as [`super::task::run`]): each pass brings
//! its [`AcmeView`] forward by the store's change feed, takes the issuer lease
//! when sites are due, and hands each due site to [`super::task`]'s order path
//! (or its renewal-information check); a standby controller keeps its view only.

use std::time::Duration;

use instant_acme::Account;
use model::entity::{Domain, Kind, Server, Site};
use model::{Id, Role};
use store::{Scope, Stored};

use super::client::RetryAfter;
use super::state::{self, Look};
use super::task::{issue, now, record_failure, renewal_info, Due, Failure, IDLE_CHECK};
use super::view::{AcmeView, DueSite};
use super::{client, lease, AcmeConfig};
use crate::state::AppState;

/// Most sites taken from the schedule per pass (the rest wait for the next).
const PER_PASS: usize = 64;

/// What the task keeps between passes.
#[derive(Default)]
struct Task {
    view: Option<AcmeView>,
    revision: i64,
    account: Option<Account>,
    /// No pass held the lease yet (challenges found then are stale).
    first: bool,
    /// The CA's last `Retry-After`, noted by the HTTPS client.
    retry_after: RetryAfter,
    /// Whether the last pass that wanted the lease held it (a standby
    /// controller only keeps its view and looks again at the idle check).
    leader: bool,
}

/// Run until the controller stops (only spawned with `[acme]`).
pub async fn run(app: AppState, config: AcmeConfig) {
    let me = holder_id(&app);
    let mut changes = app.changes.subscribe();
    let mut stopping = app.stopping.subscribe();
    let mut task = Task {
        first: true,
        ..Task::default()
    };
    loop {
        changes.mark_unchanged();
        match pass(&app, &config, &me, &mut task).await {
            Ok(true) => continue,
            Ok(false) => {}
            Err(e) => tracing::warn!(error = %e, "ACME pass failed"),
        }
        if *stopping.borrow() {
            break;
        }
        // Until the next change, or the next site's time (a short-lived
        // certificate's renewal comes before the idle check), at most IDLE_CHECK.
        let next = match task.leader {
            true => task.view.as_ref().and_then(|v| v.scheduled().1),
            false => None,
        };
        let wait = next.map_or(IDLE_CHECK, |t| {
            Duration::from_secs(
                t.saturating_sub(now())
                    .clamp(1, IDLE_CHECK.as_secs() as i64) as u64,
            )
        });
        tokio::select! {
            _ = changes.changed() => {}
            () = tokio::time::sleep(wait) => {}
            _ = stopping.changed() => break,
        }
        // A burst of changes is one pass.
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    if let Err(e) = lease::release(&app.store, &me).await {
        tracing::debug!(error = %e, "cannot release the ACME lease");
    }
}

fn holder_id(app: &AppState) -> String {
    let mut r = [0u8; 6];
    rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut r);
    let hex: String = r.iter().map(|b| format!("{b:02x}")).collect();
    format!("{}/{hex}", app.config.listen)
}

/// Errors of a pass (an order's own failure is recorded in its site's state).
#[derive(Debug, thiserror::Error)]
enum PassError {
    #[error(transparent)]
    Store(#[from] store::StoreError),
    #[error(transparent)]
    Client(#[from] client::ClientError),
}

/// Bring the view forward by the change feed (rebuilt from revision 0 at first
/// or when too far behind).
async fn refresh_view<'a>(
    app: &AppState,
    task: &'a mut Task,
) -> Result<&'a mut AcmeView, store::StoreError> {
    let since = if task.view.is_some() {
        task.revision
    } else {
        0
    };
    let feed = match app.store.changes_since(since).await? {
        store::Changes::Feed(f) => f,
        store::Changes::TooFarBehind { .. } => {
            task.view = None;
            match app.store.changes_since(0).await? {
                store::Changes::Feed(f) => f,
                store::Changes::TooFarBehind { .. } => store::Feed::default(),
            }
        }
    };
    task.revision = feed.revision;
    let view = task.view.get_or_insert_with(AcmeView::default);
    view.apply(&feed);
    Ok(view)
}

/// One pass; `true` when sites were left for another pass at once.
async fn pass(
    app: &AppState,
    config: &AcmeConfig,
    me: &str,
    task: &mut Task,
) -> Result<bool, PassError> {
    let now = now();
    let first = task.first;
    let view = refresh_view(app, task).await?;
    let orphans = view.orphan_states();
    let stale = if first { view.challenges() } else { Vec::new() };
    let any_due = view.scheduled().1.is_some_and(|t| t <= now);
    if !any_due && orphans.is_empty() && stale.is_empty() {
        return Ok(false);
    }
    task.leader = lease::acquire(&app.store, me, now).await?;
    if !task.leader {
        return Ok(false);
    }
    let Some(view) = task.view.as_mut() else {
        return Ok(false);
    };
    // State of sites that are gone: removing a site stops its renewal.
    // Challenges left by an interrupted issuance are stale: only the holder
    // issues, and it is starting.
    if !orphans.is_empty() || !stale.is_empty() {
        let mut tx = app.store.begin(lease::actor()).await?;
        for id in orphans.iter().chain(stale.iter()) {
            tx.delete(Kind::Secret, *id).await?;
        }
        tx.commit().await?;
        app.changed();
    }
    let taken = view.take_due(now, PER_PASS);
    let servers = view.servers();
    let more = view.scheduled().1.is_some_and(|t| t <= now);
    task.first = false;
    if taken.is_empty() {
        return Ok(false);
    }
    let mut due = Vec::new();
    for t in taken {
        let Some(look) = state::look(t.state.as_ref(), &t.wanted, t.served, now) else {
            // Not yet after all (the clock): its time again.
            if let Some(at) = state::next_look(t.state.as_ref(), &t.wanted, t.served) {
                view.again(t.domain, at.max(now + 1));
            }
            continue;
        };
        match load_due(app, &t, &servers).await {
            Ok(Some(d)) => due.push((look, d)),
            Ok(None) => continue,
            Err(e) => {
                view.again(t.domain, now + 1);
                return Err(e.into());
            }
        }
    }
    if task.account.is_none() && !due.is_empty() {
        match client::account(&app.store, config, &app.config.data_dir, &task.retry_after).await {
            Ok(a) => task.account = Some(a),
            Err(e) => {
                // Shown on every due site (its status names the CA's problem)
                // and retried with the sites' backoff.
                let f = Failure {
                    retry_after: task.retry_after.take(),
                    ..Failure::from(format!("cannot use the ACME account: {e}"))
                };
                for (_, d) in &due {
                    let mut st = d.prev.clone().unwrap_or_default();
                    st.last_attempt = Some(now);
                    record_failure(app, d, st, &f, Vec::new()).await?;
                }
                return Err(e.into());
            }
        }
    }
    let Some(acct) = task.account.as_ref() else {
        return Ok(false);
    };
    let ids: Vec<Id> = due.iter().map(|(_, d)| d.domain.meta.id).collect();
    let limits = config.limits();
    let mut done: usize = 0;
    let mut outcome = Ok(more);
    for (look, d) in due {
        let holder = match lease::acquire(&app.store, me, now_secs()).await {
            Ok(h) => h,
            Err(e) => {
                outcome = Err(e.into());
                break;
            }
        };
        if *app.stopping.borrow() || !holder {
            outcome = Ok(false);
            break;
        }
        let r = match look {
            Look::Order => {
                issue(
                    app,
                    config,
                    acct,
                    d,
                    &limits,
                    config.directory_url(),
                    &task.retry_after,
                )
                .await
            }
            Look::RenewalInfo => renewal_info(app, acct, d).await,
        };
        done += 1;
        if let Err(e) = r {
            outcome = Err(e.into());
            break;
        }
    }
    // Sites not finished (lease lost, stopping, a store error): looked at
    // again next pass; a finished one comes back by its written state.
    if let Some(v) = task.view.as_mut() {
        for id in ids
            .iter()
            .skip(done.saturating_sub(usize::from(outcome.is_err())))
        {
            v.again(*id, now);
        }
    }
    outcome
}

fn now_secs() -> i64 {
    now()
}

/// The site and domain of a due site read from the store (two point reads), with
/// its web cluster's servers; `None` when they are gone or not on the web.
async fn load_due(
    app: &AppState,
    t: &DueSite,
    servers: &std::sync::Arc<Vec<Stored<Server>>>,
) -> Result<Option<Due>, store::StoreError> {
    let Some(site) = app.store.get::<Site>(Scope::All, t.site).await? else {
        return Ok(None);
    };
    let Some(domain) = app.store.get::<Domain>(Scope::All, t.domain).await? else {
        return Ok(None);
    };
    let Some(cluster) = domain.data.placements.get(&Role::Web) else {
        return Ok(None);
    };
    let web_servers: Vec<Stored<Server>> = servers
        .iter()
        .filter(|s| s.data.cluster == *cluster && s.data.role == Role::Web)
        .cloned()
        .collect();
    Ok(Some(Due {
        site,
        domain,
        wanted: t.wanted.clone(),
        prev: t.state.clone(),
        servers: web_servers,
        all_servers: std::sync::Arc::clone(servers),
    }))
}
