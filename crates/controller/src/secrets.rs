//! Secrets: argon2id password hashes, generated passwords and API tokens, and the
//! engine-native verifiers stored for database users (never their passwords).

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use rand::rngs::OsRng;
use rand::{Rng, RngCore};
use ring::{digest, hmac, pbkdf2};
use std::num::NonZeroU32;

/// Prefix of every API token.
pub const TOKEN_PREFIX: &str = "hp_";

/// Hashing failures (only on broken parameters; never on user input).
#[derive(Debug, thiserror::Error)]
#[error("password hashing failed: {0}")]
pub struct HashError(String);

fn argon2() -> Argon2<'static> {
    // OWASP's argon2id recommendation: 19 MiB, 2 passes, 1 lane.
    let params = Params::new(19 * 1024, 2, 1, None).unwrap_or_default();
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

/// argon2id PHC string of a secret with a random salt.
pub fn hash_password(secret: &str) -> Result<String, HashError> {
    let salt = SaltString::generate(&mut OsRng);
    argon2()
        .hash_password(secret.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| HashError(e.to_string()))
}

/// True if `secret` matches the PHC string `phc` (false for a malformed string).
/// API tokens' secrets are only ever argon2id: imported legacy hashes are for
/// passwords ([`verify_login_password`]).
pub fn verify_password(secret: &str, phc: &str) -> bool {
    match PasswordHash::new(phc) {
        Ok(parsed) => argon2().verify_password(secret.as_bytes(), &parsed).is_ok(),
        Err(_) => false,
    }
}

/// Check an account's login password against its stored hash, which may be one an
/// import brought (crate `passhash`, the one check of every door).
pub fn verify_login_password(secret: &str, stored: &str) -> passhash::Verdict {
    passhash::verify(stored, secret)
}

/// A strong random password: 20 characters from an alphabet without look-alikes
/// (about 115 bits).
pub fn generate_password() -> String {
    const ALPHABET: &[u8] = b"abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    let mut rng = OsRng;
    (0..20)
        .map(|_| ALPHABET[rng.gen_range(0..ALPHABET.len())] as char)
        .collect()
}

/// A new random token `<prefix><public id>_<secret>` with the public id (16 lower-case
/// hex digits, 64 random bits) and the secret (256 random bits, base64url): returns
/// (token, public id, secret). API tokens and join tokens share this one shape so that
/// [`parse_prefixed_token`] is their one parser.
pub fn generate_prefixed_token(prefix: &str) -> (String, String, String) {
    let mut id = [0u8; 8];
    let mut secret = [0u8; 32];
    OsRng.fill_bytes(&mut id);
    OsRng.fill_bytes(&mut secret);
    let public_id: String = id.iter().map(|b| format!("{b:02x}")).collect();
    let secret = URL_SAFE_NO_PAD.encode(secret);
    (format!("{prefix}{public_id}_{secret}"), public_id, secret)
}

/// Splits `<prefix><public id>_<secret>` into public id and secret; None if it has the
/// wrong shape: another prefix, an id that is not 16 lower-case hex digits, or a secret
/// that is not 20..=100 characters of `[A-Za-z0-9_-]`. The one parser of API tokens
/// ([`parse_token`]) and join tokens (`join::parse_join_token`).
pub fn parse_prefixed_token<'a>(prefix: &str, token: &'a str) -> Option<(&'a str, &'a str)> {
    let rest = token.strip_prefix(prefix)?;
    let (id, secret) = rest.split_once('_')?;
    let id_ok = id.len() == 16
        && id
            .bytes()
            .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase());
    let secret_ok = (20..=100).contains(&secret.len())
        && secret
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    (id_ok && secret_ok).then_some((id, secret))
}

/// A new API token: `hp_<public id>_<secret>`, with the public id (16 hex digits)
/// and the secret (256 random bits, base64url).
pub fn generate_token() -> (String, String, String) {
    generate_prefixed_token(TOKEN_PREFIX)
}

/// Split an API token into public id and secret; None if it has the wrong shape.
pub fn parse_token(token: &str) -> Option<(&str, &str)> {
    parse_prefixed_token(TOKEN_PREFIX, token)
}

/// MariaDB / MySQL `mysql_native_password` verifier: `*` and the uppercase hex of
/// SHA1(SHA1(password)), what `PASSWORD('...')` returns.
pub fn mariadb_verifier(password: &str) -> String {
    let inner = digest::digest(&digest::SHA1_FOR_LEGACY_USE_ONLY, password.as_bytes());
    let outer = digest::digest(&digest::SHA1_FOR_LEGACY_USE_ONLY, inner.as_ref());
    let hex: String = outer.as_ref().iter().map(|b| format!("{b:02X}")).collect();
    format!("*{hex}")
}

/// Iterations PostgreSQL uses for SCRAM-SHA-256 by default.
pub const SCRAM_ITERATIONS: u32 = 4096;

/// PostgreSQL SCRAM-SHA-256 verifier (RFC 5803 / RFC 7677) with a random 16-byte salt:
/// `SCRAM-SHA-256$4096:<salt>$<StoredKey>:<ServerKey>`, base64.
pub fn postgres_verifier(password: &str) -> String {
    let mut salt = [0u8; 16];
    OsRng.fill_bytes(&mut salt);
    postgres_verifier_with(password, &salt, SCRAM_ITERATIONS)
}

/// [`postgres_verifier`] with a given salt and iteration count (for tests).
pub fn postgres_verifier_with(password: &str, salt: &[u8], iterations: u32) -> String {
    let iters = NonZeroU32::new(iterations).unwrap_or(NonZeroU32::MIN);
    let mut salted = [0u8; 32];
    pbkdf2::derive(
        pbkdf2::PBKDF2_HMAC_SHA256,
        iters,
        salt,
        password.as_bytes(),
        &mut salted,
    );
    let key = hmac::Key::new(hmac::HMAC_SHA256, &salted);
    let client_key = hmac::sign(&key, b"Client Key");
    let stored_key = digest::digest(&digest::SHA256, client_key.as_ref());
    let server_key = hmac::sign(&key, b"Server Key");
    format!(
        "SCRAM-SHA-256${iterations}:{}${}:{}",
        STANDARD.encode(salt),
        STANDARD.encode(stored_key.as_ref()),
        STANDARD.encode(server_key.as_ref())
    )
}

/// The verifier of `password` for a database engine.
pub fn db_verifier(engine: model::DbEngine, password: &str) -> String {
    match engine {
        model::DbEngine::Mariadb => mariadb_verifier(password),
        model::DbEngine::Postgres => postgres_verifier(password),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mariadb_known_vector() {
        assert_eq!(
            mariadb_verifier("password"),
            "*2470C0C06DEE42FD1618BB99005ADCA2EC9D1E19"
        );
    }

    #[test]
    fn scram_known_vector() {
        // Computed independently (Python hashlib/hmac) for salt 00..0f.
        let salt: Vec<u8> = (0u8..16).collect();
        assert_eq!(
            postgres_verifier_with("password", &salt, 4096),
            "SCRAM-SHA-256$4096:AAECAwQFBgcICQoLDA0ODw==$4PSH04DiBM59z6mw0gs6x1r6+duXYQ+R0KwGZr+W5/o=:IgPInY95tTazYxnARISZb/eTxuX/JRwWgrM9ByaOUIk="
        );
        let random = postgres_verifier("password");
        assert!(random.starts_with("SCRAM-SHA-256$4096:"));
        assert_ne!(random, postgres_verifier("password"), "salt is random");
    }

    #[test]
    fn argon2_round_trip() {
        let h = hash_password("correct horse").unwrap();
        assert!(h.starts_with("$argon2id$"));
        assert!(verify_password("correct horse", &h));
        assert!(!verify_password("wrong horse", &h));
        assert!(!verify_password("x", "not a phc string"));
    }

    #[test]
    fn tokens() {
        let (token, id, secret) = generate_token();
        assert_eq!(parse_token(&token), Some((id.as_str(), secret.as_str())));
        assert!(token.starts_with("hp_"));
        assert_eq!(parse_token("hp_not_a_real_token"), None);
        assert_eq!(parse_token("Bearer x"), None);
        let (other, _, _) = generate_token();
        assert_ne!(token, other);
    }

    #[test]
    fn prefixed_token_shape_rules() {
        let id = "0123456789abcdef";
        let ok = |secret: &str| format!("hp_{id}_{secret}");
        assert_eq!(
            parse_token(&ok(&"a".repeat(20))),
            Some((id, &*"a".repeat(20)))
        );
        assert_eq!(
            parse_token(&ok(&"a".repeat(100))).map(|t| t.1.len()),
            Some(100)
        );
        // Secrets may contain `_` (base64url): the first `_` after the id splits.
        assert_eq!(
            parse_token(&ok("abc_def-ghi_jkl_mnopq")).map(|t| t.1),
            Some("abc_def-ghi_jkl_mnopq")
        );
        for bad in [
            ok(&"a".repeat(19)),
            ok(&"a".repeat(101)),
            ok("aaaaaaaaaaaaaaaaaaaa="),
            format!("hp_0123456789ABCDEF_{}", "a".repeat(20)),
            format!("hp_0123456789abcde_{}", "a".repeat(20)),
            format!("hp_0123456789abcdeg_{}", "a".repeat(20)),
            format!("hpj_{id}_{}", "a".repeat(20)),
            format!(" hp_{id}_{}", "a".repeat(20)),
            format!("HP_{id}_{}", "a".repeat(20)),
        ] {
            assert_eq!(parse_token(&bad), None, "{bad}");
        }
        // The same parser under another prefix reads join tokens and nothing else.
        let (join, jid, jsecret) = generate_prefixed_token("hpj_");
        assert_eq!(
            parse_prefixed_token("hpj_", &join),
            Some((jid.as_str(), jsecret.as_str()))
        );
        assert_eq!(parse_token(&join), None);
        assert_eq!(parse_prefixed_token("hpj_", &ok(&"a".repeat(20))), None);
    }

    #[test]
    fn generated_passwords_are_valid() {
        let p = generate_password();
        assert_eq!(p.len(), 20);
        assert!(model::Password::new(&p).is_ok());
        assert_ne!(p, generate_password());
    }
}
