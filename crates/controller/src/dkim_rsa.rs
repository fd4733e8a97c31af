//! RSA-2048 DKIM keys, made off the build path.
//!
//! Receivers that do not verify Ed25519 (RFC 8463) need an RSA signature for
//! DMARC to pass, so every mail-placed domain gets an RSA key besides its Ed25519
//! one, published at [`SELECTOR`]`._domainkey`. Generating an RSA-2048 key takes
//! from tens of milliseconds to seconds, too long for a config build or an API
//! request: [`crate::keys::ensure`] hands the domains still without one to
//! [`request`], which generates them one after another on the blocking pool, stores
//! each as soon as it exists and wakes the builder. Until then the domain signs
//! with Ed25519 only and its zone has no RSA record.

use std::collections::HashSet;
use std::sync::{Mutex, OnceLock};

use base64::Engine as _;
use model::entity::{Secret, SecretPurpose};
use rsa::pkcs8::{EncodePrivateKey as _, EncodePublicKey as _};
use store::{Actor, NewObject};

use crate::keys::{KeyError, Wanted};

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

/// Keys being generated: (controller state identity, domain).
fn pending() -> &'static Mutex<HashSet<(usize, String)>> {
    static PENDING: OnceLock<Mutex<HashSet<(usize, String)>>> = OnceLock::new();
    PENDING.get_or_init(Mutex::default)
}

/// Generate and store the keys `wanted` names (all [`SecretPurpose::DkimRsa`]) in
/// the background; a domain already being worked on is skipped, so calling this
/// on every build is cheap. Returns at once.
pub fn request(deps: &crate::keys::KeyDeps, wanted: Vec<Wanted>) {
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
        for w in fresh {
            let made = tokio::task::spawn_blocking(new_key).await;
            let result = match made {
                Ok(Ok(key)) => store(&deps, &w, key).await,
                Ok(Err(e)) => Err(e),
                Err(_) => Err(KeyError::Crypto),
            };
            match result {
                Ok(true) => {
                    tracing::info!(subject = %w.subject, "RSA DKIM key made");
                    deps.changes.changed();
                }
                Ok(false) => {}
                // The next build asks again.
                Err(e) => {
                    tracing::warn!(subject = %w.subject, error = %e, "cannot make an RSA DKIM key")
                }
            }
            if let Ok(mut set) = pending().lock() {
                set.remove(&(me, w.subject.clone()));
            }
        }
    });
}

/// Store one generated key unless the domain got one meanwhile (another
/// controller). A domain gone meanwhile leaves a key the next build deletes.
async fn store(
    deps: &crate::keys::KeyDeps,
    w: &Wanted,
    (public, private): (String, String),
) -> Result<bool, KeyError> {
    let name = SecretPurpose::DkimRsa.store_name(&w.subject);
    let mut tx = deps
        .store
        .begin(Actor {
            account: None,
            label: "controller".into(),
        })
        .await?;
    if tx.get_by_name::<Secret>(&name).await?.is_some() {
        return Ok(false);
    }
    tx.create(NewObject {
        name,
        owner: w.owner,
        parent: None,
        data: Secret {
            purpose: SecretPurpose::DkimRsa,
            subject: w.subject.clone(),
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
    Ok(true)
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
}
