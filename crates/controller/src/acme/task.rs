//! The issuance task: finds the sites due for an ACME certificate and orders them
//! one at a time, holding the issuer lease ([`super::lease`]); woken by every
//! store change and every [`IDLE_CHECK`] (renewals, backoffs ending).
//!
//! Each pass reads the sites, domains, servers and secrets from the store (an
//! O(platform) read; see `docs/acme.md` for the known limit), decides with
//! [`state::due`] and runs [`issue`] for each due site.

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

use super::plan::{self, Method};
use super::state::{self, LeftOut, Served, SiteAcme, Status};
use super::{client, dns01, lease, AcmeConfig, ACME_ALGORITHM};
use crate::state::AppState;

/// How often the task looks again without a change.
pub const IDLE_CHECK: Duration = Duration::from_secs(30);
/// Longest wait for every web server to apply the challenge tokens.
pub const APPLY_WAIT: Duration = Duration::from_secs(60);
/// Longest wait for the CA to validate an order, and again to issue it.
pub const CA_WAIT: Duration = Duration::from_secs(90);

/// Run until the controller stops (only spawned with `[acme]`).
pub async fn run(app: AppState, config: AcmeConfig) {
    let me = holder_id(&app);
    let mut changes = app.changes.subscribe();
    let mut stopping = app.stopping.subscribe();
    let mut account: Option<Account> = None;
    let mut first = true;
    loop {
        changes.mark_unchanged();
        if let Err(e) = pass(&app, &config, &me, &mut account, &mut first).await {
            tracing::warn!(error = %e, "ACME pass failed");
        }
        if *stopping.borrow() {
            break;
        }
        tokio::select! {
            _ = changes.changed() => {}
            () = tokio::time::sleep(IDLE_CHECK) => {}
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

async fn pass(
    app: &AppState,
    config: &AcmeConfig,
    me: &str,
    account: &mut Option<Account>,
    first: &mut bool,
) -> Result<(), PassError> {
    let now = now();
    let sites = app.store.all::<Site>().await?;
    let domains: HashMap<Id, Stored<Domain>> = app
        .store
        .all::<Domain>()
        .await?
        .into_iter()
        .map(|d| (d.meta.id, d))
        .collect();
    let servers = std::sync::Arc::new(app.store.all::<Server>().await?);
    let mut certs: HashMap<String, Stored<Secret>> = HashMap::new();
    let mut states: HashMap<String, Stored<Secret>> = HashMap::new();
    let mut challenges: Vec<Stored<Secret>> = Vec::new();
    for s in app.store.all::<Secret>().await? {
        match s.data.purpose {
            SecretPurpose::SiteCert => {
                certs.insert(s.data.subject.clone(), s);
            }
            SecretPurpose::AcmeSite => {
                states.insert(s.data.subject.clone(), s);
            }
            SecretPurpose::AcmeChallenge => challenges.push(s),
            _ => {}
        }
    }
    let mut due = Vec::new();
    let mut live: BTreeSet<String> = BTreeSet::new();
    for site in sites {
        let Some(domain) = domains.get(&site.data.domain) else {
            continue;
        };
        let name = domain.meta.name.clone();
        live.insert(name.clone());
        let Some(cluster) = domain.data.placements.get(&Role::Web) else {
            continue;
        };
        let mut wanted = vec![name.clone()];
        for a in &site.data.aliases {
            let a = a.to_string();
            if !wanted.contains(&a) {
                wanted.push(a);
            }
        }
        let served = match certs.get(&name) {
            None => Served::None,
            Some(c) if c.data.uploaded => Served::Uploaded,
            Some(c) if super::is_acme_cert(&c.data) => Served::Acme,
            Some(_) => Served::Internal,
        };
        let prev = states
            .get(&name)
            .and_then(|s| serde_json::from_str::<SiteAcme>(&s.data.public).ok());
        if !state::due(prev.as_ref(), &wanted, served, now) {
            continue;
        }
        let web_servers: Vec<Stored<Server>> = servers
            .iter()
            .filter(|s| s.data.cluster == *cluster && s.data.role == Role::Web)
            .cloned()
            .collect();
        due.push(Due {
            site,
            domain: domain.clone(),
            wanted,
            prev,
            servers: web_servers,
            all_servers: std::sync::Arc::clone(&servers),
        });
    }
    // State of sites that are gone: removing a site stops its renewal.
    let gone: Vec<Id> = states
        .iter()
        .filter(|(name, _)| !live.contains(*name))
        .map(|(_, s)| s.meta.id)
        .collect();
    let stale_possible = *first && !challenges.is_empty();
    if due.is_empty() && gone.is_empty() && !stale_possible {
        return Ok(());
    }
    if !lease::acquire(&app.store, me, now).await? {
        return Ok(());
    }
    // Challenges left by an interrupted issuance are stale: only the holder
    // issues, and it is starting.
    let stale: Vec<Id> = match *first {
        true => challenges.iter().map(|c| c.meta.id).collect(),
        false => Vec::new(),
    };
    if !gone.is_empty() || !stale.is_empty() {
        let mut tx = app.store.begin(lease::actor()).await?;
        for id in gone.iter().chain(stale.iter()) {
            tx.delete(Kind::Secret, *id).await?;
        }
        tx.commit().await?;
        app.changed();
    }
    *first = false;
    if due.is_empty() {
        return Ok(());
    }
    if account.is_none() {
        match client::account(&app.store, config, &app.config.data_dir).await {
            Ok(a) => *account = Some(a),
            Err(e) => {
                // Shown on every due site (its status names the CA's problem)
                // and retried with the sites' backoff.
                let f = Failure::from(format!("cannot use the ACME account: {e}"));
                for d in &due {
                    let mut st = d.prev.clone().unwrap_or_default();
                    st.last_attempt = Some(now);
                    record_failure(app, d, st, &f, Vec::new()).await?;
                }
                return Err(e.into());
            }
        }
    }
    let Some(acct) = account.as_ref() else {
        return Ok(());
    };
    for d in due {
        if *app.stopping.borrow() || !lease::acquire(&app.store, me, now_secs()).await? {
            break;
        }
        issue(app, config, acct, d).await?;
    }
    Ok(())
}

fn now_secs() -> i64 {
    now()
}

/// Why one order failed, for the site's state.
struct Failure {
    message: String,
    rate_limited: bool,
    retry_after: Option<i64>,
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
            message: e.to_string(),
            rate_limited,
            retry_after,
        }
    }
}

impl From<String> for Failure {
    fn from(message: String) -> Self {
        Failure {
            message,
            rate_limited: false,
            retry_after: None,
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
/// in the site's state and an event, not returned).
async fn issue(
    app: &AppState,
    config: &AcmeConfig,
    account: &Account,
    d: Due,
) -> Result<(), store::StoreError> {
    let name = d.domain.meta.name.clone();
    let started = now();
    let mut st = d.prev.clone().unwrap_or_default();
    st.status = Status::Ordering;
    st.last_attempt = Some(started);
    save_state(app, &d, &st, None).await?;
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
        let r = order(app, account, &d, &ok).await;
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
    match result {
        Ok((issued, (not_before, not_after, issuer))) => {
            st.names = issued.names.clone();
            st.validated = ok.clone();
            st.issuer = Some(issuer.clone());
            st.not_before = Some(not_before);
            st.not_after = Some(not_after);
            st.renew_at = Some(state::renew_at(not_before, not_after, &name));
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
        Err(f) => record_failure(app, &d, st, &f, left_out).await?,
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

/// The order itself: HTTP-01 tokens to every web server, DNS-01 records to every
/// authoritative server of their zones, the CA told once they all serve them,
/// then the certificate.
async fn order(
    app: &AppState,
    account: &Account,
    d: &Due,
    names: &[(String, Method)],
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
    let mut order = account.new_order(&NewOrder::new(&idents)).await?;
    let mut tokens: Vec<AcmeChallenge> = Vec::new();
    let mut txts: Vec<dns01::TxtChallenge> = Vec::new();
    {
        let mut authz = order.authorizations();
        while let Some(a) = authz.next().await {
            let mut a = a?;
            match a.status {
                AuthorizationStatus::Pending => {}
                AuthorizationStatus::Valid => continue,
                other => {
                    return Err(format!("authorization of {} is {other:?}", a.identifier()).into())
                }
            }
            let ident = a.identifier().to_string();
            let method = method_of(&ident);
            let ch = a.challenge(kind(method)).ok_or_else(|| {
                format!("the CA offers no {} challenge for {ident}", method.as_str())
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
        dns01::publish_and_wait(app, &d.domain, &txts, &d.all_servers).await?;
    }
    if !tokens.is_empty() || !txts.is_empty() {
        if !tokens.is_empty() {
            put_challenges(app, &d.domain, &tokens)
                .await
                .map_err(|e| format!("cannot store the challenge tokens: {e}"))?;
            wait_applied(app, &d.servers, &tokens).await?;
        }
        let mut authz = order.authorizations();
        while let Some(a) = authz.next().await {
            let mut a = a?;
            if a.status != AuthorizationStatus::Pending {
                continue;
            }
            let method = method_of(&a.identifier().to_string());
            if let Some(mut ch) = a.challenge(kind(method)) {
                ch.set_ready().await?;
            }
        }
    }
    let retry = RetryPolicy::new().timeout(CA_WAIT);
    let status = match order.poll_ready(&retry).await {
        Ok(s) => s,
        Err(e) => {
            let why = challenge_errors(&mut order).await;
            return Err(match why {
                Some(w) => Failure {
                    message: format!("{e}; {w}"),
                    ..Failure::from(e)
                },
                None => Failure::from(e),
            });
        }
    };
    if status != OrderStatus::Ready {
        let why = challenge_errors(&mut order).await.unwrap_or_default();
        return Err(format!("the order is {status:?}: {why}").into());
    }
    let key_pem = order.finalize().await?;
    let chain_pem = order.poll_certificate(&retry).await?;
    Ok(Issued {
        chain_pem,
        key_pem,
        names: names.iter().map(|(n, _)| n.clone()).collect(),
    })
}

/// The CA's reasons on failed challenges of `order`, for the site's last error.
async fn challenge_errors(order: &mut instant_acme::Order) -> Option<String> {
    let mut out = Vec::new();
    let mut authz = order.authorizations();
    while let Some(Ok(mut a)) = authz.next().await {
        let ident = a.identifier().to_string();
        if let Ok(s) = a.refresh().await {
            for c in &s.challenges {
                if let Some(p) = &c.error {
                    out.push(format!("{ident}: {p}"));
                }
            }
        }
    }
    (!out.is_empty()).then(|| out.join("; "))
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
    match tx.get_by_name::<Secret>(&name).await? {
        Some(cur) => {
            tx.update(cur.meta.id, &name, data).await?;
        }
        None => {
            tx.create(NewObject {
                name,
                owner: domain.meta.owner,
                parent: None,
                data,
            })
            .await?;
        }
    }
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
    match tx.get_by_name::<Secret>(&name).await? {
        Some(cur) => {
            tx.update(cur.meta.id, &name, data).await?;
        }
        None => {
            tx.create(NewObject {
                name,
                owner: domain.meta.owner,
                parent: None,
                data,
            })
            .await?;
        }
    }
    Ok(())
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
        match cur {
            Some(c) => {
                tx.update(c.meta.id, &name, cert).await?;
            }
            None => {
                tx.create(NewObject {
                    name,
                    owner: d.domain.meta.owner,
                    parent: None,
                    data: cert,
                })
                .await?;
            }
        }
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
