//! The issuance task: finds the sites due for an ACME certificate and orders them
//! one at a time, holding the issuer lease ([`super::lease`]); woken by every
//! store change and every [`IDLE_CHECK`] (renewals, backoffs ending).
//!
//! Each pass brings the task's [`AcmeView`] forward by the store's change feed
//! and takes only the sites whose look time has come (no ACME certificate yet,
//! names changed, renewal or renewal-information time, backoff over): O(due +
//! changes), not O(platform). Each due site goes through the order queue
//! ([`super::queue`]: the CA's limits over the stored history) and then [`issue`];
//! a site whose renewal-information check is due gets only that ([`super::ari`]).

use std::collections::{BTreeSet, HashMap};
use std::net::IpAddr;
use std::time::Duration;

use instant_acme::{
    Account, AuthorizationStatus, ChallengeType, Identifier, NewOrder, OrderStatus, RetryPolicy,
};
use model::entity::{Domain, Kind, Secret, SecretPurpose, Server, Site};
use model::{Id, Role};
use proto::agent_v1::{AcmeChallenge, RoleConfig};
use store::{NewObject, Scope, Stored};

use super::client::RetryAfter;
use super::queue::{self, Verdict};
use super::state::{self, LeftOut, Look, SiteAcme, Status};
use super::view::{AcmeView, DueSite};
use super::{ari, check, client, lease, AcmeConfig, ACME_ALGORITHM};
use crate::state::AppState;

/// How often the task looks again without a change.
pub const IDLE_CHECK: Duration = Duration::from_secs(30);
/// Longest wait for every web server to apply the challenge tokens.
pub const APPLY_WAIT: Duration = Duration::from_secs(60);
/// Longest wait for the CA to validate an order, and again to issue it.
pub const CA_WAIT: Duration = Duration::from_secs(90);
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

fn now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

/// One site the pass found due.
struct Due {
    site: Stored<Site>,
    domain: Stored<Domain>,
    wanted: Vec<String>,
    prev: Option<SiteAcme>,
    servers: Vec<Stored<Server>>,
    all_servers: std::sync::Arc<Vec<Stored<Server>>>,
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

/// Ask the CA for the renewal window of the site's certificate and schedule the
/// renewal in it (RFC 9773); the state is written whatever the answer, so the
/// site is scheduled again.
async fn renewal_info(app: &AppState, account: &Account, d: Due) -> Result<(), store::StoreError> {
    let mut st = d.prev.clone().unwrap_or_default();
    refresh_window(account, &d.domain.meta.name, &mut st, now()).await;
    save_state(app, &d, &st, None).await
}

/// Fetch the renewal window of `st`'s certificate and move `renew_at` into it
/// (a time already inside the same window is kept); without ARI at the CA the
/// two-thirds time stays.
async fn refresh_window(account: &Account, name: &str, st: &mut SiteAcme, now: i64) {
    let Some(id) = st.cert_id.clone() else {
        st.ari_next_check = None;
        return;
    };
    match ari::fetch(account, &id, now).await {
        Ok(Some(w)) => {
            let inside = st
                .renew_at
                .is_some_and(|t| st.ari_window == Some((w.start, w.end)) && t <= w.end);
            if !inside {
                let r: f64 = rand::random();
                st.renew_at = Some(ari::pick(w.start, w.end, now, r));
            }
            st.ari_window = Some((w.start, w.end));
            st.ari_next_check = Some(w.next_check);
        }
        Ok(None) => {
            st.ari_window = None;
            st.ari_next_check = None;
        }
        Err(e) => {
            tracing::warn!(domain = %name, error = %client::describe(&e), "cannot fetch ACME renewal information");
            st.ari_next_check = Some(now + queue::HOUR);
        }
    }
}

/// Why one order failed, for the site's state.
struct Failure {
    message: String,
    rate_limited: bool,
    retry_after: Option<i64>,
    /// Whether a new order was made (counted by the queue).
    ordered: bool,
    /// Names whose validation failed (counted by the queue).
    invalid: Vec<String>,
}

impl From<instant_acme::Error> for Failure {
    fn from(e: instant_acme::Error) -> Self {
        let rate_limited = matches!(&e, instant_acme::Error::Api(p)
            if p.r#type.as_deref().is_some_and(|t| t.ends_with(":rateLimited")));
        let retry_after = match &e {
            instant_acme::Error::Timeout(Some(at)) => Some(
                at.saturating_duration_since(std::time::Instant::now())
                    .as_secs() as i64,
            ),
            _ => None,
        };
        Failure {
            message: client::describe(&e),
            rate_limited,
            retry_after,
            ordered: false,
            invalid: Vec::new(),
        }
    }
}

impl From<String> for Failure {
    fn from(message: String) -> Self {
        Failure {
            message,
            rate_limited: false,
            retry_after: None,
            ordered: false,
            invalid: Vec::new(),
        }
    }
}

/// What a successful order gave.
struct Issued {
    chain_pem: String,
    key_pem: String,
    names: Vec<String>,
}

/// Order one site's certificate and record the outcome (a failure is recorded
/// in the site's state and an event, not returned). The order queue comes
/// first: while one of the CA's `limits` is full the site waits (its state says
/// for what and until when) without asking the CA.
async fn issue(
    app: &AppState,
    account: &Account,
    d: Due,
    limits: &queue::Limits,
    directory: &str,
    seen: &RetryAfter,
) -> Result<(), store::StoreError> {
    let name = d.domain.meta.name.clone();
    let started = now();
    let mut st = d.prev.clone().unwrap_or_default();
    let registered = queue::registered_domain(&name);
    let mut history = queue::load(&app.store, directory, started).await?;
    if let Verdict::Wait { until, reason } =
        queue::decide(limits, &history, &d.wanted, &registered, started)
    {
        if st.next_attempt != Some(until) || st.status != Status::Waiting {
            tracing::info!(domain = %name, %reason, until, "ACME order waits for a CA limit");
        }
        st.status = Status::Waiting;
        st.waiting_for = Some(reason);
        st.next_attempt = Some(until);
        return save_state(app, &d, &st, None).await;
    }
    st.waiting_for = None;
    st.status = Status::Ordering;
    st.last_attempt = Some(started);
    save_state(app, &d, &st, None).await?;
    seen.take();
    let published: BTreeSet<IpAddr> = d
        .servers
        .iter()
        .flat_map(|s| s.data.addresses.iter().copied())
        .collect();
    // The names are checked once the domain's own DNS servers serve what the
    // store holds now (a new site's addresses reach them a moment after it is
    // created); a server that is down, or slow beyond the wait, is not waited for.
    dns_current(app, &d.domain, &d.all_servers).await;
    let resolver = app.config.names.resolver();
    let mut ok = Vec::new();
    let mut left_out = Vec::new();
    for n in &d.wanted {
        let observed = check::observe(resolver, n).await;
        match check::evaluate(n, &observed, &published) {
            Ok(()) => ok.push(n.clone()),
            Err(reason) => left_out.push(LeftOut {
                name: n.clone(),
                reason,
            }),
        }
    }
    st.wanted = d.wanted.clone();
    st.left_out = left_out.clone();
    let result = if ok.is_empty() {
        Err(Failure::from(format!(
            "no name of {name} can be validated: {}",
            left_out
                .iter()
                .map(|l| l.reason.as_str())
                .collect::<Vec<_>>()
                .join("; ")
        )))
    } else {
        let r = order(app, account, &d, &ok, st.replaces()).await;
        // The tokens are of no use any more, whatever the outcome.
        if let Err(e) = delete_challenges(app, &name).await {
            tracing::warn!(domain = %name, error = %e, "cannot remove ACME challenge tokens");
        }
        r
    };
    let now = now();
    let result = result.and_then(|i| {
        leaf_facts(&i.chain_pem)
            .map(|f| (i, f))
            .map_err(|e| Failure::from(format!("the issued certificate does not parse: {e}")))
    });
    match &result {
        Ok(_) => {
            history.record_order(now);
            history.record_issued(&registered, now);
        }
        Err(f) => {
            if f.ordered {
                history.record_order(now);
            }
            history.record_failed(&f.invalid, now);
        }
    }
    history.prune(now);
    queue::save(&app.store, &history).await?;
    match result {
        Ok((issued, (not_before, not_after, issuer))) => {
            st.names = issued.names.clone();
            st.issuer = Some(issuer.clone());
            st.not_before = Some(not_before);
            st.not_after = Some(not_after);
            st.renew_at = Some(state::renew_at(not_before, not_after, &name));
            st.cert_id = ari::cert_id(&issued.chain_pem).ok();
            st.ari_window = None;
            // The CA's renewal window, when it offers one, moves the renewal.
            refresh_window(account, &name, &mut st, now).await;
            st.last_success = Some(now);
            st.last_error = None;
            st.failures = 0;
            st.next_attempt = None;
            let cert = Secret {
                purpose: SecretPurpose::SiteCert,
                subject: name.clone(),
                public: issued.chain_pem,
                private: issued.key_pem,
                algorithm: ACME_ALGORITHM.into(),
                not_after: Some(not_after),
                uploaded: false,
                names: issued.names.clone(),
            };
            swap_in(app, &d, st, cert, &issuer).await?;
            tracing::info!(domain = %name, names = ?issued.names, "ACME certificate issued");
        }
        Err(mut f) => {
            if f.retry_after.is_none() {
                f.retry_after = seen.take();
            }
            record_failure(app, &d, st, &f, left_out).await?
        }
    }
    Ok(())
}

/// Record a failed attempt: the reason, the backoff, a `cert.failed` event.
async fn record_failure(
    app: &AppState,
    d: &Due,
    mut st: SiteAcme,
    f: &Failure,
    left_out: Vec<LeftOut>,
) -> Result<(), store::StoreError> {
    let now = now();
    st.failures = st.failures.saturating_add(1);
    st.status = Status::Failed;
    st.last_error = Some(f.message.clone());
    st.next_attempt = Some(now + state::backoff(st.failures, f.rate_limited, f.retry_after));
    let detail = serde_json::json!({
        "error": f.message,
        "left_out": left_out,
        "next_attempt": st.next_attempt,
    });
    save_state(app, d, &st, Some(("cert.failed", detail))).await?;
    tracing::warn!(domain = %d.domain.meta.name, error = %f.message, "ACME order failed");
    Ok(())
}

/// Create the order, naming the certificate it `replaces` (RFC 9773) when the
/// CA offers renewal information; a CA that refuses the replacement (already
/// replaced, unknown) is asked again without it.
async fn new_order(
    account: &Account,
    idents: &[Identifier],
    replaces: Option<instant_acme::CertificateIdentifier<'static>>,
) -> Result<instant_acme::Order, instant_acme::Error> {
    if let Some(r) = replaces {
        match account
            .new_order(&NewOrder::new(idents).replaces(r.clone()))
            .await
        {
            Ok(o) => return Ok(o),
            Err(instant_acme::Error::Api(p))
                if p.r#type
                    .as_deref()
                    .is_some_and(|t| t.ends_with(":rateLimited")) =>
            {
                return Err(instant_acme::Error::Api(p))
            }
            Err(e) => {
                tracing::info!(error = %client::describe(&e), "the CA refused `replaces`; ordering without it");
            }
        }
    }
    account.new_order(&NewOrder::new(idents)).await
}

/// The order itself: HTTP-01 tokens to every web server, the CA told once they
/// all serve them, then the certificate.
async fn order(
    app: &AppState,
    account: &Account,
    d: &Due,
    names: &[String],
    replaces: Option<instant_acme::CertificateIdentifier<'static>>,
) -> Result<Issued, Failure> {
    let idents: Vec<Identifier> = names.iter().map(|n| Identifier::Dns(n.clone())).collect();
    let mut order = new_order(account, &idents, replaces).await?;
    let ordered = |mut f: Failure| {
        f.ordered = true;
        f
    };
    let mut tokens: Vec<AcmeChallenge> = Vec::new();
    {
        let mut authz = order.authorizations();
        while let Some(a) = authz.next().await {
            let mut a = a.map_err(|e| ordered(e.into()))?;
            match a.status {
                AuthorizationStatus::Pending => {}
                AuthorizationStatus::Valid => continue,
                other => {
                    return Err(ordered(
                        format!("authorization of {} is {other:?}", a.identifier()).into(),
                    ))
                }
            }
            let ident = a.identifier().to_string();
            let ch = a.challenge(ChallengeType::Http01).ok_or_else(|| {
                ordered(format!("the CA offers no http-01 challenge for {ident}").into())
            })?;
            tokens.push(AcmeChallenge {
                name: ident,
                token: ch.token.clone(),
                key_authorization: ch.key_authorization().as_str().to_owned(),
            });
        }
    }
    if !tokens.is_empty() {
        put_challenges(app, &d.domain, &tokens)
            .await
            .map_err(|e| ordered(format!("cannot store the challenge tokens: {e}").into()))?;
        wait_applied(app, &d.servers, &tokens)
            .await
            .map_err(ordered)?;
        let mut authz = order.authorizations();
        while let Some(a) = authz.next().await {
            let mut a = a.map_err(|e| ordered(e.into()))?;
            if a.status != AuthorizationStatus::Pending {
                continue;
            }
            if let Some(mut ch) = a.challenge(ChallengeType::Http01) {
                ch.set_ready().await.map_err(|e| ordered(e.into()))?;
            }
        }
    }
    let retry = RetryPolicy::new().timeout(CA_WAIT);
    let status = match order.poll_ready(&retry).await {
        Ok(s) => s,
        Err(e) => {
            let (why, invalid) = challenge_errors(&mut order).await;
            let mut f = Failure::from(e);
            if let Some(w) = why {
                f.message = format!("{}; {w}", f.message);
            }
            f.invalid = invalid;
            return Err(ordered(f));
        }
    };
    if status != OrderStatus::Ready {
        let (why, invalid) = challenge_errors(&mut order).await;
        let mut f = Failure::from(format!(
            "the order is {status:?}: {}",
            why.unwrap_or_default()
        ));
        f.invalid = invalid;
        return Err(ordered(f));
    }
    let key_pem = order.finalize().await.map_err(|e| ordered(e.into()))?;
    let chain_pem = order
        .poll_certificate(&retry)
        .await
        .map_err(|e| ordered(e.into()))?;
    Ok(Issued {
        chain_pem,
        key_pem,
        names: names.to_vec(),
    })
}

/// The CA's reasons on failed challenges of `order`, for the site's last error,
/// and the names whose validation failed.
async fn challenge_errors(order: &mut instant_acme::Order) -> (Option<String>, Vec<String>) {
    let mut out = Vec::new();
    let mut names = Vec::new();
    let mut authz = order.authorizations();
    while let Some(Ok(mut a)) = authz.next().await {
        let ident = a.identifier().to_string();
        if let Ok(s) = a.refresh().await {
            let mut failed = s.status == AuthorizationStatus::Invalid;
            for c in &s.challenges {
                if let Some(p) = &c.error {
                    out.push(format!("{ident}: {p}"));
                    failed = true;
                }
            }
            if failed {
                names.push(ident.clone());
            }
        }
    }
    ((!out.is_empty()).then(|| out.join("; ")), names)
}

/// Wait until every web server of the site that is not down reports a config
/// revision holding all `tokens` as applied.
async fn wait_applied(
    app: &AppState,
    servers: &[Stored<Server>],
    tokens: &[AcmeChallenge],
) -> Result<(), Failure> {
    let deadline = tokio::time::Instant::now() + APPLY_WAIT;
    let mut since: HashMap<Id, i64> = HashMap::new();
    loop {
        let mut waiting = Vec::new();
        for s in servers {
            let id = s.meta.id;
            if app.health.state(id) == scheduler::Health::Down {
                continue;
            }
            // The first revision seen holding the tokens.
            if let std::collections::hash_map::Entry::Vacant(e) = since.entry(id) {
                if let Some(doc) = app.configs.get(id) {
                    if holds(&doc.role, tokens) {
                        e.insert(doc.revision);
                    }
                }
            }
            let applied = app
                .health
                .get(id)
                .and_then(|h| h.applied_revision)
                .unwrap_or(0);
            match since.get(&id) {
                Some(rev) if applied >= *rev => {}
                _ => waiting.push(s.meta.name.clone()),
            }
        }
        if waiting.is_empty() {
            return Ok(());
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(format!(
                "web servers {} did not apply the challenge tokens within {}s",
                waiting.join(", "),
                APPLY_WAIT.as_secs()
            )
            .into());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Longest wait for the domain's DNS servers to serve the current store.
const DNS_WAIT: Duration = Duration::from_secs(10);

/// Wait (at most [`DNS_WAIT`]) until the config builder has seen the store's
/// current revision and each DNS server of `domain`'s cluster that is not down
/// has applied its config as built then.
async fn dns_current(app: &AppState, domain: &Stored<Domain>, servers: &[Stored<Server>]) {
    let Some(cluster) = domain.data.placements.get(&Role::Dns) else {
        return;
    };
    let deadline = tokio::time::Instant::now() + DNS_WAIT;
    let Ok(rev) = app.store.revision().await else {
        return;
    };
    while app.configs.built_revision().is_none_or(|b| b < rev) {
        if tokio::time::Instant::now() >= deadline {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let targets: Vec<(Id, i64)> = servers
        .iter()
        .filter(|s| s.data.cluster == *cluster && s.data.role == Role::Dns)
        .filter_map(|s| Some((s.meta.id, app.configs.revision(s.meta.id)?)))
        .collect();
    loop {
        let behind = targets.iter().any(|(id, want)| {
            app.health.state(*id) != scheduler::Health::Down
                && app
                    .health
                    .get(*id)
                    .and_then(|h| h.applied_revision)
                    .is_none_or(|r| r < *want)
        });
        if !behind || tokio::time::Instant::now() >= deadline {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn holds(role: &RoleConfig, tokens: &[AcmeChallenge]) -> bool {
    match role {
        RoleConfig::Web(w) => tokens
            .iter()
            .all(|t| w.acme_challenges.iter().any(|c| c.token == t.token)),
        _ => false,
    }
}

async fn put_challenges(
    app: &AppState,
    domain: &Stored<Domain>,
    tokens: &[AcmeChallenge],
) -> Result<(), store::StoreError> {
    let name = SecretPurpose::AcmeChallenge.store_name(&domain.meta.name);
    let data = Secret {
        purpose: SecretPurpose::AcmeChallenge,
        subject: domain.meta.name.clone(),
        public: serde_json::to_string(tokens).unwrap_or_default(),
        private: String::new(),
        algorithm: "http-01".into(),
        not_after: None,
        uploaded: false,
        names: tokens.iter().map(|t| t.name.clone()).collect(),
    };
    let mut tx = app.store.begin(lease::actor()).await?;
    upsert_secret(&mut tx, name, domain.meta.owner, data).await?;
    tx.commit().await?;
    app.changed();
    Ok(())
}

async fn delete_challenges(app: &AppState, domain: &str) -> Result<(), store::StoreError> {
    let name = SecretPurpose::AcmeChallenge.store_name(domain);
    let mut tx = app.store.begin(lease::actor()).await?;
    if let Some(cur) = tx.get_by_name::<Secret>(&name).await? {
        tx.delete(Kind::Secret, cur.meta.id).await?;
        tx.commit().await?;
        app.changed();
    }
    Ok(())
}

/// Store the site's ACME state, with an event when given.
async fn save_state(
    app: &AppState,
    d: &Due,
    st: &SiteAcme,
    event: Option<(&str, serde_json::Value)>,
) -> Result<(), store::StoreError> {
    let mut tx = app.store.begin(lease::actor()).await?;
    write_state(&mut tx, &d.domain, st).await?;
    if let Some((action, detail)) = event {
        tx.event(
            action,
            Kind::Site,
            Some((d.site.meta.id, &d.domain.meta.name)),
            d.domain.meta.owner,
            detail,
        )
        .await?;
    }
    tx.commit().await?;
    Ok(())
}

async fn write_state(
    tx: &mut store::Tx,
    domain: &Stored<Domain>,
    st: &SiteAcme,
) -> Result<(), store::StoreError> {
    let name = SecretPurpose::AcmeSite.store_name(&domain.meta.name);
    let data = Secret {
        purpose: SecretPurpose::AcmeSite,
        subject: domain.meta.name.clone(),
        public: serde_json::to_string(st).unwrap_or_default(),
        private: String::new(),
        algorithm: "state".into(),
        not_after: st.not_after,
        uploaded: false,
        names: st.names.clone(),
    };
    upsert_secret(tx, name, domain.meta.owner, data).await
}

/// The issued certificate becomes the site's, in one transaction with its state
/// and the `cert.issued` event; unless the customer uploaded one meanwhile, which
/// is kept.
async fn swap_in(
    app: &AppState,
    d: &Due,
    mut st: SiteAcme,
    cert: Secret,
    issuer: &str,
) -> Result<(), store::StoreError> {
    let name = SecretPurpose::SiteCert.store_name(&d.domain.meta.name);
    let mut tx = app.store.begin(lease::actor()).await?;
    let cur = tx.get_by_name::<Secret>(&name).await?;
    let uploaded = cur.as_ref().is_some_and(|c| c.data.uploaded);
    let detail = serde_json::json!({
        "names": cert.names,
        "issuer": issuer,
        "not_after": cert.not_after,
        "left_out": st.left_out,
        "kept_uploaded": uploaded,
    });
    if uploaded {
        st.status = Status::Uploaded;
    } else {
        st.status = Status::Valid;
        upsert_secret(&mut tx, name, d.domain.meta.owner, cert).await?;
    }
    write_state(&mut tx, &d.domain, &st).await?;
    tx.event(
        "cert.issued",
        Kind::Site,
        Some((d.site.meta.id, &d.domain.meta.name)),
        d.domain.meta.owner,
        detail,
    )
    .await?;
    tx.commit().await?;
    app.changed();
    Ok(())
}

/// Write secret `data` under `name`: the stored one updated, or a new one made
/// (owned by `owner`). The one get-or-create of the ACME secrets.
pub(super) async fn upsert_secret(
    tx: &mut store::Tx,
    name: String,
    owner: Option<Id>,
    data: Secret,
) -> Result<(), store::StoreError> {
    match tx.get_by_name::<Secret>(&name).await? {
        Some(cur) => {
            tx.update(cur.meta.id, &name, data).await?;
        }
        None => {
            tx.create(NewObject {
                name,
                owner,
                parent: None,
                data,
            })
            .await?;
        }
    }
    Ok(())
}

/// Validity and issuer of the chain's first certificate.
fn leaf_facts(chain_pem: &str) -> Result<(i64, i64, String), String> {
    let der = rustls_pemfile::certs(&mut chain_pem.as_bytes())
        .next()
        .ok_or("no certificate in the chain")?
        .map_err(|e| e.to_string())?;
    let (_, cert) = x509_parser::parse_x509_certificate(&der).map_err(|e| e.to_string())?;
    let v = cert.validity();
    Ok((
        v.not_before.timestamp(),
        v.not_after.timestamp(),
        cert.issuer().to_string(),
    ))
}
