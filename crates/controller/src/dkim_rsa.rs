//! RSA-2048 DKIM keys, made off the build path, at idle priority, with spares.
//!
//! Receivers that do not verify Ed25519 (RFC 8463) need an RSA signature for
//! DMARC to pass, so every mail-placed domain gets an RSA key besides its Ed25519
//! one, published at [`SELECTOR`]`._domainkey`. Generating an RSA-2048 key takes
//! about 0.2 s of a core (pure Rust), too long for a config build or an API
//! request: [`crate::keys::ensure`] hands the subjects still without one to
//! [`request`], which works in the background:
//!
//! - **Spares first.** The controller keeps `keys.dkim_rsa_spares` keys made in
//!   advance, stored as [`SecretPurpose::DkimRsaSpare`] secrets like every other
//!   secret. A new account's key is a spare taken over in one store write (all the
//!   subjects of one request in one transaction), so its domains publish and sign
//!   with RSA within the next build. [`refill`] makes spares again while the
//!   platform is idle, one at a time, and only on a platform that has mail domains.
//! - **Generation yields.** A key that has no spare is generated on a thread of
//!   its own at the lowest CPU priority (nice 19), one at a time, and not while an
//!   import is running nor for [`QUIET`] after it ([`importing`]; at most
//!   [`MAX_DEFER`]): a bulk import of 200 accounts used to spend 65% of the
//!   controller's CPU on their keys while it ran.
//!
//! Until an account's key exists its domains sign with Ed25519 only and their
//! zones have no `hp-rsa` record: a receiver that verifies only RSA treats the
//! mail as unsigned for DKIM (DMARC can still pass through aligned SPF). Each key
//! is stored as soon as it exists and wakes the builder.

use std::collections::{HashMap, HashSet};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use base64::Engine as _;
use model::entity::{Kind, Secret, SecretPurpose};
use model::Id;
use rsa::pkcs8::{EncodePrivateKey as _, EncodePublicKey as _};
use store::{Actor, NewObject};

use crate::keys::{KeyDeps, KeyError, Wanted};

/// The selector of the RSA keys (`hp-rsa._domainkey.<domain>`).
pub const SELECTOR: &str = "hp-rsa";
/// Their DKIM algorithm.
pub const ALGORITHM: &str = "rsa-sha256";
/// Their size in bits.
pub const BITS: usize = 2048;

/// A new RSA key: (SubjectPublicKeyInfo DER in base64, the `p=` of the TXT
/// record; PKCS#8 PEM, which ring signs with). Slow: call it off the async threads.
pub fn new_key() -> Result<(String, String), KeyError> {
    let key =
        rsa::RsaPrivateKey::new(&mut rand::rngs::OsRng, BITS).map_err(|_| KeyError::Crypto)?;
    let public = key
        .to_public_key()
        .to_public_key_der()
        .map_err(|_| KeyError::Crypto)?;
    let private = key.to_pkcs8_der().map_err(|_| KeyError::Crypto)?;
    Ok((
        base64::engine::general_purpose::STANDARD.encode(public.as_bytes()),
        crate::keys::pem("PRIVATE KEY", private.as_bytes()),
    ))
}

/// The subject of the RSA key `domain` signs with: one key per owning account,
/// published in each of its domains (as hosted mail services do per tenant). RSA
/// generation is slow (about 0.2 s of a core each in pure Rust): per domain, a bulk
/// import of 10,000 domains kept both cores busy for minutes and cut API domain
/// creation from ~1,900/s to 18/s. A domain without an owner gets its own key.
pub fn subject_for(owner: Option<model::Id>, domain: &str) -> String {
    match owner {
        Some(id) => format!("account-{id}"),
        None => domain.to_owned(),
    }
}

/// The TXT record text of a public key from [`new_key`].
pub fn txt(public: &str) -> String {
    format!("v=DKIM1; k=rsa; p={public}")
}

/// Keys being generated: (controller state identity, subject).
fn pending() -> &'static Mutex<HashSet<(usize, String)>> {
    static PENDING: OnceLock<Mutex<HashSet<(usize, String)>>> = OnceLock::new();
    PENDING.get_or_init(Mutex::default)
}

/// Controllers (state identities) making a spare right now.
fn refilling() -> &'static Mutex<HashSet<usize>> {
    static REFILLING: OnceLock<Mutex<HashSet<usize>>> = OnceLock::new();
    REFILLING.get_or_init(Mutex::default)
}

/// How long RSA generation keeps waiting after the last import request ended
/// (the CLI sends a file as a series of requests).
pub const QUIET: Duration = Duration::from_secs(2);

/// The longest one key waits for imports to end: a platform importing without
/// pause still gets its keys.
pub const MAX_DEFER: Duration = Duration::from_secs(600);

/// Per controller (state identity): imports running, and when the last one ended.
type ImportActivity = HashMap<usize, (usize, Option<Instant>)>;

/// Imports running per controller, and when the last one ended.
fn imports() -> &'static Mutex<ImportActivity> {
    static IMPORTS: OnceLock<Mutex<ImportActivity>> = OnceLock::new();
    IMPORTS.get_or_init(Mutex::default)
}

/// An import request in progress on controller `identity`
/// ([`crate::configs::ChangeNotifier::identity`]); RSA generation waits while one
/// lives and for [`QUIET`] after the last one is dropped.
#[derive(Debug)]
pub struct Importing(usize);

/// Mark an import request of controller `identity` as running until the guard
/// is dropped.
pub fn importing(identity: usize) -> Importing {
    if let Ok(mut map) = imports().lock() {
        map.entry(identity).or_insert((0, None)).0 += 1;
    }
    Importing(identity)
}

impl Drop for Importing {
    fn drop(&mut self) {
        if let Ok(mut map) = imports().lock() {
            if let Some(e) = map.get_mut(&self.0) {
                e.0 = e.0.saturating_sub(1);
                e.1 = Some(Instant::now());
            }
        }
    }
}

/// Whether controller `identity` is importing, or finished an import less than
/// [`QUIET`] ago.
fn import_active(identity: usize) -> bool {
    let Ok(map) = imports().lock() else {
        return false;
    };
    map.get(&identity)
        .is_some_and(|(running, ended)| *running > 0 || ended.is_some_and(|t| t.elapsed() < QUIET))
}

/// Lower the calling thread's CPU priority to the lowest (nice 19): on Linux the
/// nice value of a thread id is the thread's own. Failing is harmless (logged).
fn lower_priority() {
    #[cfg(target_os = "linux")]
    if let Err(e) = rustix::process::setpriority_process(Some(rustix::thread::gettid()), 19) {
        tracing::debug!(error = %e, "cannot lower the RSA key thread's priority");
    }
}

/// One new key from a thread of its own at the lowest priority, once no import is
/// running on this controller (see the module doc); `None` if the controller
/// stops meanwhile.
async fn generate(deps: &KeyDeps) -> Option<Result<(String, String), KeyError>> {
    let me = deps.changes.identity();
    let since = Instant::now();
    let mut stopping = deps.stopping.clone();
    while import_active(me) && since.elapsed() < MAX_DEFER {
        if *stopping.borrow() {
            return None;
        }
        tokio::select! {
            () = tokio::time::sleep(Duration::from_millis(250)) => {}
            r = stopping.changed() => if r.is_err() { return None },
        }
    }
    if *stopping.borrow() {
        return None;
    }
    let (tx, rx) = tokio::sync::oneshot::channel();
    let spawned = std::thread::Builder::new()
        .name("dkim-rsa".into())
        .spawn(move || {
            lower_priority();
            let _ = tx.send(new_key());
        });
    if spawned.is_err() {
        return Some(Err(KeyError::Crypto));
    }
    Some(rx.await.unwrap_or(Err(KeyError::Crypto)))
}

/// Give the subjects `wanted` names (all [`SecretPurpose::DkimRsa`]) their keys
/// in the background: first from the stored spares `spares` (ids, tried in
/// order; one gone meanwhile is passed over), then generated. A subject already
/// being worked on is skipped, so calling this on every pass is cheap. Returns
/// at once.
pub fn request(deps: &KeyDeps, wanted: Vec<Wanted>, spares: Vec<Id>) {
    let me = deps.changes.identity();
    let fresh: Vec<Wanted> = {
        let Ok(mut set) = pending().lock() else {
            return;
        };
        wanted
            .into_iter()
            .filter(|w| set.insert((me, w.subject.clone())))
            .collect()
    };
    if fresh.is_empty() {
        return;
    }
    let deps = deps.clone();
    tokio::spawn(async move {
        let done = |subject: &str| {
            if let Ok(mut set) = pending().lock() {
                set.remove(&(me, subject.to_owned()));
            }
        };
        let rest = if spares.is_empty() {
            fresh
        } else {
            match claim(&deps, fresh.clone(), spares).await {
                Ok((claimed, rest)) => {
                    for w in &claimed {
                        tracing::info!(subject = %w.subject, "RSA DKIM key taken from the spares");
                        done(&w.subject);
                    }
                    if !claimed.is_empty() {
                        deps.changes.changed();
                    }
                    rest
                }
                Err(e) => {
                    tracing::warn!(error = %e, "cannot take spare RSA DKIM keys");
                    fresh
                }
            }
        };
        for w in rest {
            let result = match generate(&deps).await {
                Some(Ok(key)) => store(&deps, &w, key).await,
                Some(Err(e)) => Err(e),
                None => Ok(false),
            };
            match result {
                Ok(true) => {
                    tracing::info!(subject = %w.subject, "RSA DKIM key made");
                    deps.changes.changed();
                }
                Ok(false) => {}
                // The next pass asks again.
                Err(e) => {
                    tracing::warn!(subject = %w.subject, error = %e, "cannot make an RSA DKIM key")
                }
            }
            done(&w.subject);
        }
    });
}

/// Make one spare key in the background if controller `deps` keeps fewer than
/// it should (`have` stored), none is being made and no subject waits for a key.
/// The key task calls this after quiet passes; the stored spare wakes it again,
/// so the spares fill up one at a time. A platform with no mail domain
/// (`mail_domains` false) keeps none.
pub fn refill(deps: &KeyDeps, have: usize, mail_domains: bool) {
    if !mail_domains || have >= deps.spares {
        return;
    }
    let me = deps.changes.identity();
    let busy = pending()
        .lock()
        .map_or(true, |set| set.iter().any(|(id, _)| *id == me));
    if busy || !refilling().lock().is_ok_and(|mut set| set.insert(me)) {
        return;
    }
    let deps = deps.clone();
    tokio::spawn(async move {
        let result = match generate(&deps).await {
            Some(Ok(key)) => store_spare(&deps, key).await.map(|()| true),
            Some(Err(e)) => Err(e),
            None => Ok(false),
        };
        if let Ok(mut set) = refilling().lock() {
            set.remove(&me);
        }
        match result {
            Ok(true) => deps.changes.changed(),
            Ok(false) => {}
            Err(e) => tracing::warn!(error = %e, "cannot make a spare RSA DKIM key"),
        }
    });
}

/// The secret of subject `w` with key `(public, private)`.
fn secret_for(w: &Wanted, public: String, private: String) -> Secret {
    Secret {
        purpose: SecretPurpose::DkimRsa,
        subject: w.subject.clone(),
        public,
        private,
        algorithm: ALGORITHM.to_owned(),
        not_after: None,
        uploaded: false,
        names: Vec::new(),
    }
}

/// The controller's actor for key writes.
fn actor() -> Actor {
    Actor {
        account: None,
        label: "controller".into(),
    }
}

/// Hand spares to the subjects of `wanted`, in one transaction: each spare is
/// deleted and its key stored under the subject. Returns (subjects served,
/// subjects left for generation). A subject that got a key meanwhile (another
/// controller) counts as served.
async fn claim(
    deps: &KeyDeps,
    wanted: Vec<Wanted>,
    spares: Vec<Id>,
) -> Result<(Vec<Wanted>, Vec<Wanted>), KeyError> {
    let mut spares = spares.into_iter();
    let mut tx = deps.store.begin(actor()).await?;
    let (mut claimed, mut rest) = (Vec::new(), Vec::new());
    for w in wanted {
        let name = SecretPurpose::DkimRsa.store_name(&w.subject);
        if tx.get_by_name::<Secret>(&name).await?.is_some() {
            claimed.push(w);
            continue;
        }
        let mut spare = None;
        for id in spares.by_ref() {
            match tx.get::<Secret>(id).await? {
                Some(s) if s.data.purpose == SecretPurpose::DkimRsaSpare => {
                    spare = Some(s);
                    break;
                }
                _ => {}
            }
        }
        let Some(s) = spare else {
            rest.push(w);
            continue;
        };
        tx.delete(Kind::Secret, s.meta.id).await?;
        tx.create(NewObject {
            name,
            owner: w.owner,
            parent: None,
            data: secret_for(&w, s.data.public, s.data.private),
        })
        .await?;
        claimed.push(w);
    }
    tx.commit().await?;
    Ok((claimed, rest))
}

/// Store one generated key unless the subject got one meanwhile (another
/// controller). A subject gone meanwhile leaves a key the next pass deletes.
async fn store(
    deps: &KeyDeps,
    w: &Wanted,
    (public, private): (String, String),
) -> Result<bool, KeyError> {
    let name = SecretPurpose::DkimRsa.store_name(&w.subject);
    let mut tx = deps.store.begin(actor()).await?;
    if tx.get_by_name::<Secret>(&name).await?.is_some() {
        return Ok(false);
    }
    tx.create(NewObject {
        name,
        owner: w.owner,
        parent: None,
        data: secret_for(w, public, private),
    })
    .await?;
    tx.commit().await?;
    Ok(true)
}

/// Store a generated key as a spare, under a random label.
async fn store_spare(deps: &KeyDeps, (public, private): (String, String)) -> Result<(), KeyError> {
    let mut label = [0u8; 12];
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut label)
        .map_err(|_| KeyError::Crypto)?;
    let subject: String = label.iter().map(|b| format!("{b:02x}")).collect();
    let mut tx = deps.store.begin(actor()).await?;
    tx.create(NewObject {
        name: SecretPurpose::DkimRsaSpare.store_name(&subject),
        owner: None,
        parent: None,
        data: Secret {
            purpose: SecretPurpose::DkimRsaSpare,
            subject,
            public,
            private,
            algorithm: ALGORITHM.to_owned(),
            not_after: None,
            uploaded: false,
            names: Vec::new(),
        },
    })
    .await?;
    tx.commit().await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rsa_keys_are_2048_bit_pkcs8_that_ring_signs_with() {
        use rsa::pkcs8::DecodePublicKey as _;
        use rsa::traits::PublicKeyParts as _;
        let (public, private) = new_key().unwrap();
        let spki = base64::engine::general_purpose::STANDARD
            .decode(&public)
            .unwrap();
        let key = rsa::RsaPublicKey::from_public_key_der(&spki).unwrap();
        assert_eq!(key.size() * 8, BITS);
        let der = rustls_pemfile::private_key(&mut private.as_bytes())
            .unwrap()
            .unwrap();
        let pair = ring::signature::RsaKeyPair::from_pkcs8(der.secret_der()).unwrap();
        assert_eq!(pair.public().modulus_len() * 8, BITS);
        // The record is longer than one TXT character-string.
        assert!(txt(&public).len() > 255);
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn the_key_thread_runs_at_the_lowest_priority() {
        let nice = std::thread::spawn(|| {
            lower_priority();
            let stat = std::fs::read_to_string("/proc/thread-self/stat").unwrap();
            // Field 19 (nice) is the 17th after the command name.
            let after = stat.rsplit_once(')').unwrap().1.to_owned();
            after
                .split_whitespace()
                .nth(16)
                .unwrap()
                .parse::<i32>()
                .unwrap()
        })
        .join()
        .unwrap();
        assert_eq!(nice, 19);
    }

    #[test]
    fn generation_waits_while_an_import_runs_and_shortly_after() {
        // An identity no controller has.
        let me = usize::MAX - 7;
        assert!(!import_active(me));
        let a = importing(me);
        let b = importing(me);
        assert!(import_active(me));
        drop(a);
        assert!(import_active(me));
        drop(b);
        assert!(import_active(me), "quiet for a while after the last import");
    }

    #[tokio::test]
    async fn spares_serve_subjects_in_one_transaction_and_the_rest_is_left_to_generate() {
        let dir = tempfile::tempdir().unwrap();
        let store = store::Store::open_sqlite(&dir.path().join("s.db"))
            .await
            .unwrap();
        let (_stop, stopping) = tokio::sync::watch::channel(false);
        let deps = KeyDeps {
            store: store.clone(),
            ca: None,
            changes: crate::configs::ChangeNotifier::default(),
            stopping,
            resync: Duration::from_secs(60),
            spares: 2,
        };
        store_spare(&deps, ("pub-1".into(), "priv-1".into()))
            .await
            .unwrap();
        store_spare(&deps, ("pub-2".into(), "priv-2".into()))
            .await
            .unwrap();
        let spares: Vec<Id> = store
            .all::<Secret>()
            .await
            .unwrap()
            .iter()
            .map(|s| s.meta.id)
            .collect();
        assert_eq!(spares.len(), 2);
        let want = |n: u64| Wanted {
            purpose: SecretPurpose::DkimRsa,
            subject: format!("account-{n}"),
            names: Vec::new(),
            owner: None,
        };
        // A spare gone meanwhile (999) is passed over.
        let (claimed, rest) = claim(
            &deps,
            vec![want(1), want(2), want(3)],
            vec![999, spares[0], spares[1]],
        )
        .await
        .unwrap();
        assert_eq!(claimed, vec![want(1), want(2)]);
        assert_eq!(rest, vec![want(3)]);
        let all = store.all::<Secret>().await.unwrap();
        assert_eq!(all.len(), 2);
        assert!(all.iter().all(|s| s.data.purpose == SecretPurpose::DkimRsa));
        let first = all.iter().find(|s| s.data.subject == "account-1").unwrap();
        assert_eq!(first.meta.name, "dkim_rsa:account-1");
        assert_eq!(
            (first.data.public.as_str(), first.data.private.as_str()),
            ("pub-1", "priv-1")
        );
        // A subject that has its key counts as served, with no spare left.
        let (claimed, rest) = claim(&deps, vec![want(2)], Vec::new()).await.unwrap();
        assert_eq!((claimed, rest), (vec![want(2)], Vec::new()));
    }
}
