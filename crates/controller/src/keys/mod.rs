//! Key material the controller issues and keeps for the data plane: a TLS
//! certificate for every site (domain and aliases), a server certificate for every
//! files and mail server (FTPS, STARTTLS, POP3S, IMAPS, the site-file hub; a mail
//! server's also covers its cluster's client names, `imap.<hostname>` …, so a
//! client on those names is served a valid certificate by whichever server
//! writes after a failover), a DKIM key for every
//! mail-placed domain (Ed25519, and RSA made in the background by
//! [`crate::dkim_rsa`]), a TSIG key for every DNS cluster and a submission
//! secret for every site whose domain has mail (PHP `mail()`, stored with its
//! argon2id hash).
//!
//! Which secrets should exist is a pure function of the world ([`wanted`], [`plan`]);
//! [`ensure`] issues what is missing, re-issues certificates whose names changed or
//! that expire within [`RENEW_BEFORE`], deletes secrets nobody needs, and stores them
//! (`Kind::Secret`, never shown through the customer API). It runs in its own
//! task ([`run`]), off the build and request paths: the task keeps its own small
//! view of the store ([`KeyState`]: the facts secrets depend on, not the world),
//! applied from the change feed, plans only the secrets the feed's changes concern
//! (the same answer as the full [`plan`], property-tested in `proptests.rs`), and
//! writes what it makes to the store, whose change then reaches the config builder
//! through the feed. A build never waits on signing or key generation; a site
//! without its certificate yet is built without it and gets it with the next build.

use std::collections::{BTreeSet, HashMap};

use base64::Engine as _;
use model::entity::{Kind, Secret, SecretPurpose};
use model::{Id, Role};
use ring::rand::SecureRandom as _;
use store::{Actor, NewObject, Stored};

use crate::builder::World;
use crate::ca::Ca;
use crate::configs::ChangeNotifier;

#[cfg(test)]
mod proptests;
mod state;

pub use state::{Key, KeyState};

/// The DKIM selector of the keys the controller generates (`hp1._domainkey`).
pub const DKIM_SELECTOR: &str = "hp1";
/// The DKIM algorithm of generated keys (RFC 8463).
pub const DKIM_ALGORITHM: &str = "ed25519-sha256";
/// Certificates are re-issued this long (seconds) before they expire.
pub const RENEW_BEFORE: i64 = 30 * 24 * 3600;
/// A site certificate issued by ACME ([`crate::acme`]) is left to the ACME task
/// (renewal, names) and replaced by an internal one only this close (seconds) to
/// its expiry, when ACME renewal failed all along: an expired certificate is worse.
/// A short-lived certificate uses the last sixth of its life instead, when that
/// is shorter ([`crate::acme::fallback_lead`]).
pub const ACME_FALLBACK_BEFORE: i64 = 24 * 3600;

/// Whether a secret of this purpose belongs to the ACME task ([`crate::acme`]) or
/// to an account (its TOTP secret, [`crate::totp`]), neither wanted nor unwanted
/// here (like spare RSA keys).
pub fn is_acme_purpose(p: SecretPurpose) -> bool {
    matches!(
        p,
        SecretPurpose::AcmeAccount
            | SecretPurpose::AcmeSite
            | SecretPurpose::AcmeChallenge
            | SecretPurpose::AcmeLease
            | SecretPurpose::Totp
    )
}

/// Whether a stored certificate is due for (re-)issue by this task: never an
/// uploaded one; an ACME one only near its expiry; an internal one when its names
/// changed or it expires within [`RENEW_BEFORE`].
pub(crate) fn cert_stale(
    have_names: &[String],
    not_after: Option<i64>,
    uploaded: bool,
    acme: Option<i64>,
    want_names: &[String],
    now: i64,
) -> bool {
    if uploaded {
        return false;
    }
    if let Some(lead) = acme {
        return not_after.is_some_and(|t| t - now < lead);
    }
    sorted(have_names) != sorted(want_names) || not_after.is_some_and(|t| t - now < RENEW_BEFORE)
}

/// One secret that should exist.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Wanted {
    /// What it is for.
    pub purpose: SecretPurpose,
    /// Whom it is for (domain, server or cluster name).
    pub subject: String,
    /// For certificates: the names (sorted as issued: the subject first).
    pub names: Vec<String>,
    /// The account owning it (the site's customer), if any.
    pub owner: Option<Id>,
}

/// Every secret the world needs (the full answer [`KeyState`] computes
/// incrementally).
pub fn wanted(world: &World) -> Vec<Wanted> {
    let domains: HashMap<Id, _> = world.domains.iter().map(|d| (d.meta.id, d)).collect();
    let mut out = Vec::new();
    for site in &world.sites {
        let Some(d) = domains.get(&site.data.domain) else {
            continue;
        };
        let mut names = vec![d.meta.name.clone()];
        for a in &site.data.aliases {
            let a = a.to_string();
            if !names.contains(&a) {
                names.push(a);
            }
        }
        out.push(Wanted {
            purpose: SecretPurpose::SiteCert,
            subject: d.meta.name.clone(),
            names,
            owner: d.meta.owner,
        });
    }
    for site in &world.sites {
        let Some(d) = domains.get(&site.data.domain) else {
            continue;
        };
        if d.data.placements.contains_key(&Role::Mail) {
            out.push(Wanted {
                purpose: SecretPurpose::SiteMail,
                subject: d.meta.name.clone(),
                names: Vec::new(),
                owner: d.meta.owner,
            });
        }
    }
    for s in &world.servers {
        if matches!(s.data.role, Role::Files | Role::Mail) {
            let mut names = vec![s.data.hostname.to_string()];
            names.extend(s.data.addresses.iter().map(ToString::to_string));
            if let Some(client) = world
                .clusters
                .get(s.data.cluster)
                .and_then(|c| c.data.mail_client_names())
            {
                push_new(&mut names, client.all());
            }
            out.push(Wanted {
                purpose: SecretPurpose::ServerCert,
                subject: s.meta.name.clone(),
                names,
                owner: None,
            });
        }
    }
    let mut rsa_subjects = BTreeSet::new();
    for d in &world.domains {
        if d.data.placements.contains_key(&Role::Mail) {
            out.push(Wanted {
                purpose: SecretPurpose::Dkim,
                subject: d.meta.name.clone(),
                names: Vec::new(),
                owner: d.meta.owner,
            });
            let subject = crate::dkim_rsa::subject_for(d.meta.owner, &d.meta.name);
            if rsa_subjects.insert(subject.clone()) {
                out.push(Wanted {
                    purpose: SecretPurpose::DkimRsa,
                    subject,
                    names: Vec::new(),
                    owner: d.meta.owner,
                });
            }
        }
    }
    for c in &world.clusters {
        if c.data.role == Role::Dns {
            out.push(Wanted {
                purpose: SecretPurpose::Tsig,
                subject: c.meta.name.clone(),
                names: Vec::new(),
                owner: None,
            });
        }
    }
    out
}

/// What [`ensure`] has to do.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Plan {
    /// Secrets to make.
    pub create: Vec<Wanted>,
    /// Certificates to re-issue (store id, what they must be).
    pub reissue: Vec<(Id, Wanted)>,
    /// Secrets nobody needs any more (store ids).
    pub delete: Vec<Id>,
}

impl Plan {
    /// Nothing to do.
    pub fn is_empty(&self) -> bool {
        self.create.is_empty() && self.reissue.is_empty() && self.delete.is_empty()
    }
}

/// Compare what should exist with what does, at `now` (unix seconds).
pub fn plan(wanted: Vec<Wanted>, existing: &[Stored<Secret>], now: i64) -> Plan {
    // Spare RSA keys are nobody's: neither wanted nor unwanted.
    let existing: Vec<&Stored<Secret>> = existing
        .iter()
        .filter(|s| {
            s.data.purpose != SecretPurpose::DkimRsaSpare && !is_acme_purpose(s.data.purpose)
        })
        .collect();
    let have: HashMap<(SecretPurpose, &str), &Stored<Secret>> = existing
        .iter()
        .map(|s| ((s.data.purpose, s.data.subject.as_str()), *s))
        .collect();
    let mut plan = Plan::default();
    let mut kept: BTreeSet<Id> = BTreeSet::new();
    // A TSIG key a rotation replaced stays until its grace period ends (and only
    // while its cluster still has a key).
    let tsig_clusters: BTreeSet<&str> = wanted
        .iter()
        .filter(|w| w.purpose == SecretPurpose::Tsig)
        .map(|w| w.subject.as_str())
        .collect();
    kept.extend(
        existing
            .iter()
            .filter(|s| {
                s.data.purpose == SecretPurpose::TsigPrevious
                    && tsig_clusters.contains(s.data.subject.as_str())
                    && s.data.not_after.is_some_and(|t| t > now)
            })
            .map(|s| s.meta.id),
    );
    for w in wanted {
        match have.get(&(w.purpose, w.subject.as_str())) {
            None => plan.create.push(w),
            Some(s) => {
                kept.insert(s.meta.id);
                let is_cert = matches!(
                    w.purpose,
                    SecretPurpose::SiteCert | SecretPurpose::ServerCert
                );
                let stale = is_cert
                    && cert_stale(
                        &s.data.names,
                        s.data.not_after,
                        s.data.uploaded,
                        crate::acme::fallback_lead(&s.data),
                        &w.names,
                        now,
                    );
                if stale {
                    plan.reissue.push((s.meta.id, w));
                }
            }
        }
    }
    plan.delete = existing
        .iter()
        .map(|s| s.meta.id)
        .filter(|id| !kept.contains(id))
        .collect();
    plan
}

/// Add `more` to `names`, each once.
pub(crate) fn push_new<'a>(names: &mut Vec<String>, more: impl IntoIterator<Item = &'a str>) {
    for n in more {
        if !names.iter().any(|x| x == n) {
            names.push(n.to_owned());
        }
    }
}

fn sorted(v: &[String]) -> Vec<&str> {
    let mut out: Vec<&str> = v.iter().map(String::as_str).collect();
    out.sort_unstable();
    out
}

/// Making key material failed.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// The certificate authority refused (e.g. a name it cannot certify).
    #[error(transparent)]
    Ca(#[from] crate::ca::CaError),
    /// The random generator or key generation failed.
    #[error("key generation failed")]
    Crypto,
    /// The store failed.
    #[error(transparent)]
    Store(#[from] store::StoreError),
}

/// PEM armour of DER bytes.
pub(crate) fn pem(label: &str, der: &[u8]) -> String {
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for chunk in b64.as_bytes().chunks(64) {
        out.push_str(&String::from_utf8_lossy(chunk));
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

/// A new Ed25519 DKIM key: (public key base64 for the TXT record, PKCS#8 PEM).
pub fn new_dkim_key() -> Result<(String, String), KeyError> {
    use ring::signature::KeyPair as _;
    let rng = ring::rand::SystemRandom::new();
    let pkcs8 =
        ring::signature::Ed25519KeyPair::generate_pkcs8(&rng).map_err(|_| KeyError::Crypto)?;
    let pair = ring::signature::Ed25519KeyPair::from_pkcs8(pkcs8.as_ref())
        .map_err(|_| KeyError::Crypto)?;
    let public = base64::engine::general_purpose::STANDARD.encode(pair.public_key().as_ref());
    Ok((public, pem("PRIVATE KEY", pkcs8.as_ref())))
}

/// A new 256-bit TSIG secret, base64.
pub fn new_tsig_secret() -> Result<String, KeyError> {
    let mut key = [0u8; 32];
    ring::rand::SystemRandom::new()
        .fill(&mut key)
        .map_err(|_| KeyError::Crypto)?;
    Ok(base64::engine::general_purpose::STANDARD.encode(key))
}

/// The algorithm of generated TSIG keys.
pub const TSIG_ALGORITHM: &str = "hmac-sha256";

/// The TSIG key name of a DNS cluster's transfers.
pub fn tsig_key_name(cluster: &str) -> String {
    format!("xfr.{cluster}.hostplane.")
}

/// Make the secret `w` describes (`None`: a certificate without a CA to issue it).
fn make(ca: Option<&Ca>, w: &Wanted, now: i64) -> Result<Option<Secret>, KeyError> {
    let (public, private, algorithm, not_after) = match w.purpose {
        SecretPurpose::SiteCert | SecretPurpose::ServerCert => {
            let Some(ca) = ca else {
                return Ok(None);
            };
            let issued = ca.sign_server_cert(&w.names)?;
            let not_after = now + crate::ca::LEAF_VALIDITY.whole_seconds();
            (
                issued.cert_pem,
                issued.key_pem,
                "ecdsa-p256".to_owned(),
                Some(not_after),
            )
        }
        SecretPurpose::Dkim => {
            let (public, private) = new_dkim_key()?;
            (public, private, DKIM_ALGORITHM.to_owned(), None)
        }
        // Made in the background ([`crate::dkim_rsa`]), never here.
        SecretPurpose::DkimRsa => return Ok(None),
        SecretPurpose::Tsig => (
            tsig_key_name(&w.subject),
            new_tsig_secret()?,
            TSIG_ALGORITHM.to_owned(),
            None,
        ),
        SecretPurpose::SiteMail => {
            let secret = new_tsig_secret()?;
            let hash = passhash::hash_random_secret(&secret).map_err(|_| KeyError::Crypto)?;
            (hash, secret, "argon2id".to_owned(), None)
        }
        // Only a rotation makes these (`crate::catalog::rotate`); spares are
        // made in the background ([`crate::dkim_rsa`]).
        SecretPurpose::TsigPrevious | SecretPurpose::DkimRsaSpare => return Ok(None),
        // The ACME task's own ([`crate::acme`]).
        SecretPurpose::AcmeAccount
        | SecretPurpose::AcmeSite
        | SecretPurpose::AcmeChallenge
        | SecretPurpose::AcmeLease => return Ok(None),
        // An account's two-factor secret (`crate::totp`), made when it enrolls.
        SecretPurpose::Totp => return Ok(None),
    };
    Ok(Some(Secret {
        purpose: w.purpose,
        subject: w.subject.clone(),
        public,
        private,
        algorithm,
        not_after,
        uploaded: false,
        names: w.names.clone(),
    }))
}

/// What the key task needs: the store, the CA and the change notifier.
#[derive(Clone)]
pub struct KeyDeps {
    /// Where secrets are read from (feed) and written to.
    pub store: store::Store,
    /// Issues certificates (None: sites and servers go without).
    pub ca: Option<std::sync::Arc<Ca>>,
    /// Wakes the task, and is told about what it stored.
    pub changes: ChangeNotifier,
    /// Turns true when the controller stops.
    pub stopping: tokio::sync::watch::Receiver<bool>,
    /// How often the feed is read without a wake-up (other controllers' changes).
    pub resync: std::time::Duration,
    /// How many spare RSA DKIM keys to keep made in advance (`keys.dkim_rsa_spares`,
    /// see [`crate::dkim_rsa`]).
    pub spares: usize,
}

impl std::fmt::Debug for KeyDeps {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyDeps")
            .field("ca", &self.ca.is_some())
            .finish_non_exhaustive()
    }
}

/// Bring the stored secrets in line with the secrets `state` marked (see
/// [`KeyState::plan`]). Returns how many secrets changed; they reach `state` (and
/// the builder) through the feed. A name the CA cannot certify is logged and
/// skipped (the site is then served without its certificate until it changes or
/// the renewal check comes). On a store error the marks stay for the next pass.
pub async fn ensure(deps: &KeyDeps, state: &mut KeyState) -> Result<usize, KeyError> {
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let plan = state.plan(now);
    let spares = state.spares();
    state.settle();
    match execute(deps, plan, spares, now).await {
        Ok(n) => Ok(n),
        Err((e, plan)) => {
            state.unsettle(&plan);
            Err(e)
        }
    }
}

/// Carry out `plan`: RSA DKIM keys are requested in the background (from the
/// stored `spares` first), everything else made and written in one transaction.
/// On failure the plan comes back.
async fn execute(
    deps: &KeyDeps,
    mut plan: Plan,
    spares: Vec<Id>,
    now: i64,
) -> Result<usize, (KeyError, Plan)> {
    let (rsa, create): (Vec<Wanted>, Vec<Wanted>) = std::mem::take(&mut plan.create)
        .into_iter()
        .partition(|w| w.purpose == SecretPurpose::DkimRsa);
    plan.create = create;
    if !rsa.is_empty() {
        crate::dkim_rsa::request(deps, rsa, spares);
    }
    if plan.is_empty() {
        return Ok(0);
    }
    match write(deps, &plan, now).await {
        Ok(()) => Ok(plan.create.len() + plan.reissue.len() + plan.delete.len()),
        Err(e) => Err((e, plan)),
    }
}

/// The secrets a plan creates and re-issues, made (blocking).
type Made = (Vec<NewObject<Secret>>, Vec<(Id, String, Secret)>);

/// Make the secrets of `create` and `reissue` (blocking: signing, key generation
/// and hashing). A certificate the CA refuses is skipped with a warning.
fn make_all(
    ca: Option<&Ca>,
    create: &[Wanted],
    reissue: &[(Id, Wanted)],
    now: i64,
) -> Result<Made, KeyError> {
    let mut created = Vec::with_capacity(create.len());
    for w in create {
        match make(ca, w, now) {
            Ok(Some(secret)) => created.push(NewObject {
                name: w.purpose.store_name(&w.subject),
                owner: w.owner,
                parent: None,
                data: secret,
            }),
            Ok(None) => {}
            Err(KeyError::Ca(e)) => {
                tracing::warn!(subject = %w.subject, error = %e, "cannot issue a certificate");
            }
            Err(e) => return Err(e),
        }
    }
    let mut reissued = Vec::with_capacity(reissue.len());
    for (id, w) in reissue {
        if let Some(secret) = make(ca, w, now)? {
            reissued.push((*id, w.purpose.store_name(&w.subject), secret));
        }
    }
    Ok((created, reissued))
}

/// Make and store what `plan` says, in one transaction. Every key is made (and
/// every certificate signed) before the transaction begins, and the new secrets go
/// in with one multi-row insert (`Tx::create_many`): the store's write lock, which
/// every API write and import chunk waits for, is held for the writes only, not
/// for the signing (at 10,000 new domains, 0.5-1 s per pass before).
async fn write(deps: &KeyDeps, plan: &Plan, now: i64) -> Result<(), KeyError> {
    // Signing, key generation and hashing are CPU work (a site's mail secret is an
    // argon2id hash): on the blocking pool, so the API's async workers never wait
    // behind a burst of them.
    let (ca, create, reissue) = (deps.ca.clone(), plan.create.clone(), plan.reissue.clone());
    let (created, reissued) =
        tokio::task::spawn_blocking(move || make_all(ca.as_deref(), &create, &reissue, now))
            .await
            .map_err(|_| KeyError::Crypto)??;
    let mut tx = deps
        .store
        .begin(Actor {
            account: None,
            label: "controller".into(),
        })
        .await?;
    let n = u32::try_from(created.len()).unwrap_or(u32::MAX);
    let ids = tx.reserve_ids(n).await?;
    tx.create_many(ids.zip(created).collect()).await?;
    for (id, name, secret) in reissued {
        tx.update(id, &name, secret).await?;
    }
    for id in &plan.delete {
        tx.delete(Kind::Secret, *id).await?;
    }
    tx.commit().await?;
    Ok(())
}

/// Longest rest of the key task between two passes during a burst (see [`run`]).
const MAX_REST: std::time::Duration = std::time::Duration::from_millis(250);

/// How often the key task looks again without a change (certificates near
/// their end are renewed).
const RENEW_CHECK: std::time::Duration = std::time::Duration::from_secs(3600);

/// The key task: keep its [`KeyState`] from the change feed and bring the
/// secrets in line after every change, every resync interval (other controllers)
/// and hourly (renewals: every secret is compared then); until the controller
/// stops.
pub async fn run(deps: KeyDeps) {
    let mut changes = deps.changes.subscribe();
    let mut stopping = deps.stopping.clone();
    let mut state: Option<KeyState> = None;
    let mut revision = 0;
    let mut next_check = tokio::time::Instant::now() + RENEW_CHECK;
    let mut rest_until = tokio::time::Instant::now();
    loop {
        // Under a burst of API writes the key task would otherwise run back to back
        // (reading the feed, signing) and take a core from the API, so, like the
        // builder, it rests as long as the last pass took (at most MAX_REST) while
        // changes keep coming and covers them in one pass; a change on its own is
        // handled at once.
        tokio::time::sleep_until(rest_until).await;
        changes.mark_unchanged();
        let started = tokio::time::Instant::now();
        match pass(&deps, &mut state, &mut revision, &mut next_check).await {
            Ok(0) => {}
            Ok(n) => {
                tracing::info!(changed = n, "key material updated");
                deps.changes.changed();
            }
            Err(e) => tracing::warn!(error = %e, "cannot update key material"),
        }
        let took = started.elapsed();
        let burst = changes.has_changed().unwrap_or(false);
        if !burst {
            if let Some(s) = &state {
                crate::dkim_rsa::refill(&deps, s.spares().len(), s.has_mail());
            }
        }
        rest_until = tokio::time::Instant::now()
            + if burst {
                took.min(MAX_REST)
            } else {
                std::time::Duration::ZERO
            };
        tokio::select! {
            r = changes.changed() => if r.is_err() { return },
            r = stopping.changed() => if r.is_err() || *stopping.borrow() { return },
            () = tokio::time::sleep(deps.resync) => {}
        }
    }
}

/// One pass of [`run`]: apply the feed (everything at first or when too far
/// behind), mark every secret when the hourly renewal check is due, then
/// [`ensure`] what is marked.
async fn pass(
    deps: &KeyDeps,
    state: &mut Option<KeyState>,
    revision: &mut i64,
    next_check: &mut tokio::time::Instant,
) -> Result<usize, KeyError> {
    let since = if state.is_some() { *revision } else { 0 };
    let feed = match deps.store.changes_since(since).await? {
        store::Changes::Feed(f) => f,
        store::Changes::TooFarBehind { .. } => {
            *state = None;
            match deps.store.changes_since(0).await? {
                store::Changes::Feed(f) => f,
                store::Changes::TooFarBehind { .. } => return Ok(0),
            }
        }
    };
    let s = match state.as_mut() {
        Some(s) if since > 0 => {
            s.apply(&feed)?;
            s
        }
        _ => state.insert(KeyState::from_feed(&feed)?),
    };
    *revision = feed.revision;
    let now = tokio::time::Instant::now();
    if now >= *next_check {
        *next_check = now + RENEW_CHECK;
        s.mark_all();
    }
    if s.pending() == 0 {
        return Ok(0);
    }
    ensure(deps, s).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use store::Meta;

    fn stored(id: Id, data: Secret) -> Stored<Secret> {
        let t = time::OffsetDateTime::UNIX_EPOCH;
        Stored {
            meta: Meta {
                id,
                name: data.purpose.store_name(&data.subject),
                owner: None,
                reseller: None,
                parent: None,
                created_rev: 1,
                updated_rev: 1,
                created_at: t,
                updated_at: t,
            },
            data,
        }
    }

    fn cert(subject: &str, names: &[&str], not_after: i64, uploaded: bool) -> Secret {
        Secret {
            purpose: SecretPurpose::SiteCert,
            subject: subject.into(),
            public: String::new(),
            private: String::new(),
            algorithm: "ecdsa-p256".into(),
            not_after: Some(not_after),
            uploaded,
            names: names.iter().map(|n| (*n).to_owned()).collect(),
        }
    }

    fn want(subject: &str, names: &[&str]) -> Wanted {
        Wanted {
            purpose: SecretPurpose::SiteCert,
            subject: subject.into(),
            names: names.iter().map(|n| (*n).to_owned()).collect(),
            owner: None,
        }
    }

    #[test]
    fn plan_creates_reissues_and_deletes() {
        let now = 1_000_000_000;
        let far = now + 400 * 24 * 3600;
        let existing = vec![
            stored(1, cert("a.example", &["a.example"], far, false)),
            // aliases changed
            stored(2, cert("b.example", &["b.example"], far, false)),
            // expires in 10 days
            stored(
                3,
                cert("c.example", &["c.example"], now + 10 * 24 * 3600, false),
            ),
            // uploaded: never re-issued even with other names
            stored(4, cert("d.example", &["d.example"], now + 3600, true)),
            // site gone
            stored(5, cert("gone.example", &["gone.example"], far, false)),
        ];
        let wanted = vec![
            want("a.example", &["a.example"]),
            want("b.example", &["b.example", "www.b.example"]),
            want("c.example", &["c.example"]),
            want("d.example", &["d.example", "x.d.example"]),
            want("new.example", &["new.example"]),
        ];
        let p = plan(wanted, &existing, now);
        assert_eq!(p.create, vec![want("new.example", &["new.example"])]);
        let reissued: Vec<Id> = p.reissue.iter().map(|(id, _)| *id).collect();
        assert_eq!(reissued, vec![2, 3]);
        assert_eq!(p.delete, vec![5]);
        // Order of names does not matter.
        let same = plan(
            vec![want("a.example", &["www.a.example", "a.example"])],
            &[stored(
                1,
                cert("a.example", &["a.example", "www.a.example"], far, false),
            )],
            now,
        );
        assert!(same.is_empty(), "{same:?}");
    }

    #[test]
    fn rotated_tsig_keys_stay_for_their_grace_period() {
        let now = 1_000_000_000;
        let tsig = |purpose, subject: &str, not_after| Secret {
            purpose,
            subject: subject.into(),
            public: tsig_key_name(subject),
            private: "c2VjcmV0".into(),
            algorithm: TSIG_ALGORITHM.into(),
            not_after,
            uploaded: false,
            names: Vec::new(),
        };
        let existing = vec![
            stored(1, tsig(SecretPurpose::Tsig, "dns-a", None)),
            stored(
                2,
                tsig(SecretPurpose::TsigPrevious, "dns-a", Some(now + 10)),
            ),
            // expired
            stored(3, tsig(SecretPurpose::Tsig, "dns-b", None)),
            stored(4, tsig(SecretPurpose::TsigPrevious, "dns-b", Some(now))),
            // cluster gone
            stored(
                5,
                tsig(SecretPurpose::TsigPrevious, "dns-c", Some(now + 10)),
            ),
        ];
        let wanted = ["dns-a", "dns-b"]
            .iter()
            .map(|c| Wanted {
                purpose: SecretPurpose::Tsig,
                subject: (*c).into(),
                names: Vec::new(),
                owner: None,
            })
            .collect();
        let p = plan(wanted, &existing, now);
        assert!(p.create.is_empty() && p.reissue.is_empty());
        assert_eq!(p.delete, vec![4, 5]);
    }

    #[test]
    fn dkim_and_tsig_keys_have_the_right_shape() {
        let (public, private) = new_dkim_key().unwrap();
        let raw = base64::engine::general_purpose::STANDARD
            .decode(&public)
            .unwrap();
        assert_eq!(raw.len(), 32, "raw Ed25519 public key");
        assert!(private.starts_with("-----BEGIN PRIVATE KEY-----\n"));
        let secret = new_tsig_secret().unwrap();
        assert_eq!(
            base64::engine::general_purpose::STANDARD
                .decode(&secret)
                .unwrap()
                .len(),
            32
        );
        assert_ne!(new_tsig_secret().unwrap(), secret);
        assert_eq!(tsig_key_name("dns-eu"), "xfr.dns-eu.hostplane.");
    }
}
