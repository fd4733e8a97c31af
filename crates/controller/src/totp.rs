//! TOTP two-factor authentication (RFC 6238: HMAC-SHA-1, 30-second steps, 6
//! digits, one step of clock drift either way) and recovery codes.
//!
//! An account's secret is a [`Secret`] of purpose [`SecretPurpose::Totp`] named
//! `totp:<account>` (the project's one place for key material): `private` holds the
//! base32 secret, `public` the JSON [`TotpState`]: whether enrolment was confirmed
//! with a code, the last time step accepted (a code is never accepted twice, nor
//! an older one), and the argon2id hashes of the unused recovery codes.
//!
//! The arithmetic here is pure (time passed in); the API handlers are in
//! `api::account`.

use data_encoding::BASE32_NOPAD;
use model::entity::{Secret, SecretPurpose};
use rand::rngs::OsRng;
use rand::{Rng, RngCore};
use ring::hmac;
use serde::{Deserialize, Serialize};

/// Seconds per time step.
pub const STEP: i64 = 30;
/// Digits of a code.
pub const DIGITS: u32 = 6;
/// How many recovery codes an enrolment gives.
pub const RECOVERY_CODES: usize = 10;
/// The `algorithm` field of a TOTP [`Secret`].
pub const ALGORITHM: &str = "totp-sha1-30s-6";
/// The issuer shown by authenticator apps.
pub const ISSUER: &str = "hostplane";

/// What `public` of a TOTP secret holds.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TotpState {
    /// Confirmed with a code: only then does login require one.
    #[serde(default)]
    pub confirmed: bool,
    /// The last time step a code was accepted for (0: none yet).
    #[serde(default)]
    pub last_step: i64,
    /// argon2id hashes of the recovery codes not used yet.
    #[serde(default)]
    pub recovery: Vec<String>,
}

impl TotpState {
    /// The state of a stored secret (a corrupt one reads as unconfirmed, empty).
    pub fn of(secret: &Secret) -> Self {
        serde_json::from_str(&secret.public).unwrap_or_default()
    }

    /// As stored in `public`.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }
}

/// A new random 160-bit secret, base32 without padding (what authenticator apps
/// take).
pub fn new_secret() -> String {
    let mut b = [0u8; 20];
    OsRng.fill_bytes(&mut b);
    BASE32_NOPAD.encode(&b)
}

/// The [`Secret`] of a new, unconfirmed enrolment of `account`.
pub fn new_stored(account: &str) -> Secret {
    Secret {
        purpose: SecretPurpose::Totp,
        subject: account.to_owned(),
        public: TotpState::default().to_json(),
        private: new_secret(),
        algorithm: ALGORITHM.to_owned(),
        not_after: None,
        uploaded: false,
        names: Vec::new(),
    }
}

/// The time step of Unix time `unix`.
pub fn step_of(unix: i64) -> i64 {
    unix.div_euclid(STEP)
}

/// The code of base32 `secret` at time step `step` (RFC 4226 dynamic truncation);
/// `None` if the secret is not base32.
pub fn code_at(secret: &str, step: i64) -> Option<String> {
    let key = BASE32_NOPAD.decode(secret.as_bytes()).ok()?;
    let key = hmac::Key::new(hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY, &key);
    let mac = hmac::sign(&key, &step.to_be_bytes());
    let mac = mac.as_ref();
    let offset = usize::from(mac[mac.len() - 1] & 0x0f);
    let bin = u32::from_be_bytes([
        mac[offset] & 0x7f,
        mac[offset + 1],
        mac[offset + 2],
        mac[offset + 3],
    ]);
    Some(format!(
        "{:0width$}",
        bin % 10u32.pow(DIGITS),
        width = DIGITS as usize
    ))
}

/// The step `code` is right for at `unix` (one step either side accepted), if it
/// is later than `last_step`; `None` for a wrong, replayed or malformed code.
pub fn accept(secret: &str, code: &str, unix: i64, last_step: i64) -> Option<i64> {
    let code: String = code.chars().filter(|c| !c.is_whitespace()).collect();
    if code.len() != DIGITS as usize || !code.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let now = step_of(unix);
    (now - 1..=now + 1).filter(|s| *s > last_step).find(|s| {
        code_at(secret, *s).is_some_and(|c| {
            bool::from(subtle::ConstantTimeEq::ct_eq(c.as_bytes(), code.as_bytes()))
        })
    })
}

/// True if `code` has the shape of a TOTP code (six digits, spaces ignored).
pub fn looks_like_code(code: &str) -> bool {
    let digits: Vec<u8> = code.bytes().filter(|b| !b.is_ascii_whitespace()).collect();
    digits.len() == DIGITS as usize && digits.iter().all(u8::is_ascii_digit)
}

/// The `otpauth://` URI authenticator apps read (from the QR code).
pub fn otpauth_uri(account: &str, secret: &str) -> String {
    let enc = |s: &str| percent_encoding::utf8_percent_encode(s, LABEL).to_string();
    format!(
        "otpauth://totp/{}:{}?secret={secret}&issuer={}&algorithm=SHA1&digits={DIGITS}&period={STEP}",
        enc(ISSUER),
        enc(account),
        enc(ISSUER)
    )
}

const LABEL: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_');

/// The QR code of `uri` as an SVG document: no inline styles (only `fill`
/// attributes), so a page under a strict Content-Security-Policy can embed it.
pub fn qr_svg(uri: &str) -> Option<String> {
    let code = qrcode::QrCode::new(uri.as_bytes()).ok()?;
    let svg = code
        .render::<qrcode::render::svg::Color<'_>>()
        .min_dimensions(200, 200)
        .dark_color(qrcode::render::svg::Color("#000000"))
        .light_color(qrcode::render::svg::Color("#ffffff"))
        .build();
    // The renderer starts with an XML declaration, which cannot stand inside HTML.
    let start = svg.find("<svg")?;
    Some(svg[start..].to_owned())
}

/// Ten new recovery codes `xxxxx-xxxxx` (50 bits each, no look-alike letters).
pub fn new_recovery_codes() -> Vec<String> {
    const ALPHABET: &[u8] = b"abcdefghjkmnpqrstuvwxyz23456789";
    let mut rng = OsRng;
    (0..RECOVERY_CODES)
        .map(|_| {
            let mut s: String = (0..10)
                .map(|_| ALPHABET[rng.gen_range(0..ALPHABET.len())] as char)
                .collect();
            s.insert(5, '-');
            s
        })
        .collect()
}

/// A recovery code as typed, normalised (trimmed, lower case) before hashing or
/// checking.
pub fn normalise_recovery(code: &str) -> String {
    code.trim().to_ascii_lowercase()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    /// RFC 6238 appendix B, SHA-1 column: the secret is ASCII `12345678901234567890`
    /// and the codes are the last 6 of the 8 digits given there.
    #[test]
    fn rfc6238_vectors() {
        let secret = BASE32_NOPAD.encode(b"12345678901234567890");
        for (t, code) in [
            (59, "287082"),
            (1_111_111_109, "081804"),
            (1_111_111_111, "050471"),
            (1_234_567_890, "005924"),
            (2_000_000_000, "279037"),
            (20_000_000_000, "353130"),
        ] {
            assert_eq!(code_at(&secret, step_of(t)).unwrap(), code, "t = {t}");
        }
    }

    #[test]
    fn drift_and_replay() {
        let secret = new_secret();
        let t = 1_700_000_000;
        let now = step_of(t);
        for s in [now - 1, now, now + 1] {
            let c = code_at(&secret, s).unwrap();
            assert_eq!(accept(&secret, &c, t, 0), Some(s));
            // Never twice, nor after a later one was used.
            assert_eq!(accept(&secret, &c, t, s), None);
            assert_eq!(accept(&secret, &c, t, now + 1), None);
        }
        for s in [now - 2, now + 2] {
            let c = code_at(&secret, s).unwrap();
            if c != code_at(&secret, now).unwrap() {
                assert_eq!(accept(&secret, &c, t, 0), None);
            }
        }
        let c = code_at(&secret, now).unwrap();
        let spaced = format!("{} {}", &c[..3], &c[3..]);
        assert_eq!(accept(&secret, &spaced, t, 0), Some(now));
        assert_eq!(accept(&secret, "12345", t, 0), None);
        assert_eq!(accept(&secret, "abcdef", t, 0), None);
        assert_eq!(accept("not base32!", "123456", t, 0), None);
    }

    #[test]
    fn uri_qr_and_codes() {
        let uri = otpauth_uri("acme", "JBSWY3DPEHPK3PXP");
        assert_eq!(
            uri,
            "otpauth://totp/hostplane:acme?secret=JBSWY3DPEHPK3PXP&issuer=hostplane&algorithm=SHA1&digits=6&period=30"
        );
        let svg = qr_svg(&uri).unwrap();
        assert!(svg.starts_with("<svg"), "{}", &svg[..40]);
        assert!(!svg.contains("style"), "no inline styles: {svg}");
        let codes = new_recovery_codes();
        assert_eq!(codes.len(), RECOVERY_CODES);
        assert!(codes.iter().all(|c| c.len() == 11 && &c[5..6] == "-"));
        assert_eq!(normalise_recovery(" ABCDE-fghij "), "abcde-fghij");
        assert!(looks_like_code("123 456") && !looks_like_code("abcde-fghij"));
    }
}
