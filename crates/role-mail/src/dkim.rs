//! DKIM signing of outbound mail with the domain's key (mail-auth): RSA-SHA256 or
//! Ed25519-SHA256 over the usual header set; the `DKIM-Signature` header is
//! prepended to the message.

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

/// `message` with a DKIM signature in front (unchanged when signing fails).
pub fn sign(key: &DkimKey, domain: &str, message: &[u8]) -> Vec<u8> {
    match signature(key, domain, message) {
        Ok(h) => {
            let mut out = Vec::with_capacity(h.len() + message.len());
            out.extend_from_slice(h.as_bytes());
            out.extend_from_slice(message);
            out
        }
        Err(e) => {
            tracing::warn!(domain, error = %e, "sending unsigned");
            message.to_vec()
        }
    }
}
