//! DKIM signing of submitted mail with the domain's keys (mail-auth): Ed25519-SHA256
//! and RSA-SHA256 (RFC 8463 asks Ed25519 signers to add RSA for receivers that
//! verify only RSA) over the usual header set; one `DKIM-Signature` header per key
//! is prepended to the message.

use mail_auth::common::crypto::{Ed25519Key, RsaKey, Sha256};
use mail_auth::common::headers::HeaderWriter;
use mail_auth::dkim::DkimSigner;
use proto::agent_v1::DkimKey;

/// Headers signed (when present).
const SIGNED: [&str; 9] = [
    "From",
    "To",
    "Cc",
    "Subject",
    "Date",
    "Message-ID",
    "Reply-To",
    "MIME-Version",
    "Content-Type",
];

/// Signing failed (bad key): the message goes out unsigned, logged.
#[derive(Debug, thiserror::Error)]
#[error("dkim: {0}")]
pub struct DkimError(String);

fn der(pem: &str) -> Result<Vec<u8>, DkimError> {
    match rustls_pemfile::private_key(&mut pem.as_bytes()) {
        Ok(Some(rustls::pki_types::PrivateKeyDer::Pkcs8(k))) => Ok(k.secret_pkcs8_der().to_vec()),
        Ok(_) => Err(DkimError("key is not PKCS#8".into())),
        Err(e) => Err(DkimError(e.to_string())),
    }
}

/// The `DKIM-Signature` header line(s) for `message` signed as `domain`.
pub fn signature(key: &DkimKey, domain: &str, message: &[u8]) -> Result<String, DkimError> {
    let der = der(&key.private_key_pem)?;
    let err = |e: mail_auth::Error| DkimError(e.to_string());
    let sig = match key.algorithm.as_str() {
        "ed25519-sha256" => {
            DkimSigner::from_key(Ed25519Key::from_pkcs8_maybe_unchecked_der(&der).map_err(err)?)
                .domain(domain)
                .selector(&key.selector)
                .headers(SIGNED)
                .sign(message)
                .map_err(err)?
        }
        _ => DkimSigner::from_key(
            RsaKey::<Sha256>::from_key_der(rustls::pki_types::PrivateKeyDer::Pkcs8(
                der.clone().into(),
            ))
            .map_err(err)?,
        )
        .domain(domain)
        .selector(&key.selector)
        .headers(SIGNED)
        .sign(message)
        .map_err(err)?,
    };
    Ok(sig.to_header())
}

/// `message` with a DKIM signature per key in front, in key order (a key that
/// cannot sign is logged and skipped; no key: unchanged). Every signature covers
/// the message as given, so each verifies on its own.
pub fn sign(keys: &[DkimKey], domain: &str, message: &[u8]) -> Vec<u8> {
    let mut headers = String::new();
    for key in keys {
        match signature(key, domain, message) {
            Ok(h) => headers.push_str(&h),
            Err(e) => {
                tracing::warn!(domain, selector = %key.selector, error = %e, "not signed with this key");
            }
        }
    }
    let mut out = Vec::with_capacity(headers.len() + message.len());
    out.extend_from_slice(headers.as_bytes());
    out.extend_from_slice(message);
    out
}
