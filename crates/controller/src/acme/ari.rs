//! ACME Renewal Information (RFC 9773): when the CA's directory offers
//! `renewalInfo`, the task asks it for each certificate's suggested renewal
//! window and renews at a random time inside it — earlier than two thirds of the
//! lifetime when the CA says so (a mass revocation, an incident) — and names
//! the certificate it replaces in the new order (`replaces`).
//!
//! [`cert_id`] computes the certificate's identifier (base64url of the Authority
//! Key Identifier's key identifier, `.`, base64url of the DER serial's content
//! octets); [`pick`] chooses the time in a window; both pure. [`fetch`] asks the
//! CA, `None` when its directory has no `renewalInfo`.

use std::borrow::Cow;

use base64::Engine as _;
use instant_acme::{Account, CertificateIdentifier};

/// Shortest and longest wait before asking again, whatever `Retry-After` says
/// (seconds).
pub const CHECK_MIN: i64 = 60;
/// See [`CHECK_MIN`].
pub const CHECK_MAX: i64 = 24 * 3600;

/// The ARI identifier of the first certificate of `chain_pem`.
pub fn cert_id(chain_pem: &str) -> Result<String, String> {
    let der = rustls_pemfile::certs(&mut chain_pem.as_bytes())
        .next()
        .ok_or("no certificate in the chain")?
        .map_err(|e| e.to_string())?;
    let (_, cert) = x509_parser::parse_x509_certificate(&der).map_err(|e| e.to_string())?;
    let aki = cert
        .iter_extensions()
        .find_map(|ext| match ext.parsed_extension() {
            x509_parser::extensions::ParsedExtension::AuthorityKeyIdentifier(a) => {
                a.key_identifier.as_ref().map(|k| k.0.to_vec())
            }
            _ => None,
        })
        .ok_or("the certificate has no Authority Key Identifier")?;
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    Ok(format!(
        "{}.{}",
        b64.encode(aki),
        b64.encode(cert.tbs_certificate.raw_serial())
    ))
}

/// The renewal time in the window `start..=end` for a uniform `r` in `[0, 1)`;
/// `now` when that time has passed (RFC 9773 4.2: renew at once).
pub fn pick(start: i64, end: i64, now: i64, r: f64) -> i64 {
    let span = (end - start).max(0);
    let t = start + (span as f64 * r.clamp(0.0, 1.0)) as i64;
    t.max(now)
}

/// What the CA said of one certificate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    /// Start of the suggested window (unix seconds).
    pub start: i64,
    /// Its end.
    pub end: i64,
    /// When to ask again (unix seconds; its `Retry-After`, bounded).
    pub next_check: i64,
}

/// Ask the CA for `id`'s renewal window; `Ok(None)` when its directory offers no
/// `renewalInfo`.
pub async fn fetch(
    account: &Account,
    id: &str,
    now: i64,
) -> Result<Option<Window>, instant_acme::Error> {
    let Some((aki, serial)) = id.split_once('.') else {
        return Err(instant_acme::Error::Str("malformed ARI certificate id"));
    };
    let cid = CertificateIdentifier {
        authority_key_identifier: Cow::Borrowed(aki),
        serial: Cow::Borrowed(serial),
    };
    match account.renewal_info(&cid).await {
        Ok((info, retry)) => Ok(Some(Window {
            start: info.suggested_window.start.unix_timestamp(),
            end: info.suggested_window.end.unix_timestamp(),
            next_check: now + (retry.as_secs() as i64).clamp(CHECK_MIN, CHECK_MAX),
        })),
        Err(instant_acme::Error::Unsupported(_)) => Ok(None),
        Err(e) => Err(e),
    }
}

/// The `replaces` identifier for a new order, from a stored [`cert_id`].
pub fn replaces(id: &str) -> Option<CertificateIdentifier<'static>> {
    let (aki, serial) = id.split_once('.')?;
    Some(CertificateIdentifier {
        authority_key_identifier: Cow::Owned(aki.to_owned()),
        serial: Cow::Owned(serial.to_owned()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pick_stays_in_the_window_or_now() {
        assert_eq!(pick(100, 200, 0, 0.0), 100);
        assert_eq!(pick(100, 200, 0, 0.5), 150);
        assert!(pick(100, 200, 0, 0.999) <= 200);
        assert_eq!(pick(100, 200, 300, 0.3), 300, "window passed: at once");
        assert_eq!(pick(100, 200, 150, 0.0), 150, "start passed: at once");
        assert_eq!(
            pick(200, 100, 0, 0.7),
            200,
            "a reversed window is its start"
        );
    }

    #[test]
    fn cert_id_is_aki_dot_serial() {
        // A CA and a leaf signed by it: the leaf's AKI is the CA's key id.
        let ca_key = rcgen::KeyPair::generate().unwrap();
        let mut ca_params = rcgen::CertificateParams::default();
        ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        ca_params.key_identifier_method = rcgen::KeyIdMethod::PreSpecified(vec![1, 2, 3, 4]);
        let ca = rcgen::CertifiedIssuer::self_signed(ca_params, ca_key).unwrap();
        let key = rcgen::KeyPair::generate().unwrap();
        let mut params = rcgen::CertificateParams::new(vec!["a.example".to_owned()]).unwrap();
        params.use_authority_key_identifier_extension = true;
        params.serial_number = Some(rcgen::SerialNumber::from_slice(&[0x00, 0x87, 0x65]));
        let cert = params.signed_by(&key, &ca).unwrap();
        let id = cert_id(&cert.pem()).unwrap();
        // RFC 9773's example shape: AQIDBA (01 02 03 04), then the serial's octets.
        let (aki, serial) = id.split_once('.').unwrap();
        assert_eq!(aki, "AQIDBA");
        let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(serial)
            .unwrap();
        assert!(raw.ends_with(&[0x87, 0x65]), "{raw:?}");
        assert!(replaces(&id).is_some());
        assert!(cert_id("no pem").is_err());
    }
}
