//! The issuance task: finds the sites due for an ACME certificate and orders them
//! one at a time, holding the issuer lease ([`super::lease`]); woken by every
//! store change and every [`IDLE_CHECK`] (renewals, backoffs ending).
//!
//! Each pass ([`super::pass`]) brings the task's [`super::view::AcmeView`]
//! forward by the store's change feed and takes only the sites whose look time has come (no ACME certificate yet,
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
use store::{NewObject, Stored};

use super::client::RetryAfter;
use super::plan::{self, Method};
use super::queue::{self, Verdict};
use super::state::{self, LeftOut, SiteAcme, Status};
use super::{ari, client, dns01, lease, AcmeConfig, ACME_ALGORITHM};
use crate::state::AppState;

pub use super::pass::run;

/// How often the task looks again without a change.
pub const IDLE_CHECK: Duration = Duration::from_secs(30);
/// Longest wait for every web server to apply the challenge tokens.
pub const APPLY_WAIT: Duration = Duration::from_secs(60);
/// Longest wait for the CA to validate an order, and again to issue it.
pub const CA_WAIT: Duration = Duration::from_secs(90);
pub(super) fn now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

/// One site the pass found due.
pub(super) struct Due {
    pub(super) site: Stored<Site>,
    pub(super) domain: Stored<Domain>,
    pub(super) wanted: Vec<String>,
    pub(super) prev: Option<SiteAcme>,
    pub(super) servers: Vec<Stored<Server>>,
    pub(super) all_servers: std::sync::Arc<Vec<Stored<Server>>>,
}

/// Ask the CA for the renewal window of the site's certificate and schedule the
/// renewal in it (RFC 9773); the state is written whatever the answer, so the
/// site is scheduled again.
pub(super) async fn renewal_info(
    app: &AppState,
    account: &Account,
    d: Due,
) -> Result<(), store::StoreError> {
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
pub(super) struct Failure {
    pub(super) message: String,
    pub(super) rate_limited: bool,
    pub(super) retry_after: Option<i64>,
    /// Whether a new order was made (counted by the queue).
    pub(super) ordered: bool,
    /// Names whose validation failed (counted by the queue).
    pub(super) invalid: Vec<String>,
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
pub(super) async fn issue(
    app: &AppState,
    config: &AcmeConfig,
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
    let (ok, left_out) = plan::check_names(
        app,
        config,
        &d.wanted,
        st.challenge,
        &published,
        &d.all_servers,
    )
    .await;
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
        if let Err(e) = dns01::delete(app, &name).await {
            tracing::warn!(domain = %name, error = %e, "cannot remove ACME challenge records");
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
            st.validated = ok.clone();
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
pub(super) async fn record_failure(
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

/// The order itself: HTTP-01 tokens to every web server, DNS-01 records to every
/// authoritative server of their zones, the CA told once they all serve them,
/// then the certificate.
async fn order(
    app: &AppState,
    account: &Account,
    d: &Due,
    names: &[(String, Method)],
    replaces: Option<instant_acme::CertificateIdentifier<'static>>,
) -> Result<Issued, Failure> {
    let idents: Vec<Identifier> = names
        .iter()
        .map(|(n, _)| Identifier::Dns(n.clone()))
        .collect();
    let method_of = |ident: &str| {
        names
            .iter()
            .find(|(n, _)| n == ident)
            .map_or(Method::Http01, |(_, m)| *m)
    };
    let kind = |m: Method| match m {
        Method::Http01 => ChallengeType::Http01,
        Method::Dns01 => ChallengeType::Dns01,
    };
    let mut order = new_order(account, &idents, replaces).await?;
    let ordered = |mut f: Failure| {
        f.ordered = true;
        f
    };
    let mut tokens: Vec<AcmeChallenge> = Vec::new();
    let mut txts: Vec<dns01::TxtChallenge> = Vec::new();
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
            let method = method_of(&ident);
            let ch = a.challenge(kind(method)).ok_or_else(|| {
                ordered(
                    format!("the CA offers no {} challenge for {ident}", method.as_str()).into(),
                )
            })?;
            match method {
                Method::Http01 => tokens.push(AcmeChallenge {
                    name: ident,
                    token: ch.token.clone(),
                    key_authorization: ch.key_authorization().as_str().to_owned(),
                }),
                Method::Dns01 => txts.push(dns01::TxtChallenge {
                    record: dns01::record_name(&ident),
                    name: ident,
                    value: ch.key_authorization().dns_value(),
                }),
            }
        }
    }
    if !txts.is_empty() {
        dns01::publish_and_wait(app, &d.domain, &txts, &d.all_servers)
            .await
            .map_err(|e| ordered(e.into()))?;
    }
    if !tokens.is_empty() || !txts.is_empty() {
        if !tokens.is_empty() {
            put_challenges(app, &d.domain, &tokens)
                .await
                .map_err(|e| ordered(format!("cannot store the challenge tokens: {e}").into()))?;
            wait_applied(app, &d.servers, &tokens)
                .await
                .map_err(ordered)?;
        }
        let mut authz = order.authorizations();
        while let Some(a) = authz.next().await {
            let mut a = a.map_err(|e| ordered(e.into()))?;
            if a.status != AuthorizationStatus::Pending {
                continue;
            }
            let method = method_of(&a.identifier().to_string());
            if let Some(mut ch) = a.challenge(kind(method)) {
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
        names: names.iter().map(|(n, _)| n.clone()).collect(),
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
    // The owner's settings (on/off, challenge) are the API's (`api::put_settings`);
    // this pass may have read the state before the owner changed them: keep what
    // the store holds now, and order again for a new challenge.
    let mut st = st.clone();
    if let Some(stored) = tx
        .get_by_name::<Secret>(&name)
        .await?
        .and_then(|s| serde_json::from_str::<SiteAcme>(&s.data.public).ok())
    {
        st.disabled = stored.disabled;
        if stored.challenge != st.challenge {
            st.challenge = stored.challenge;
            st.wanted.clear();
            st.next_attempt = None;
        }
    }
    let st = &st;
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
