//! The one password check of every door (API login, SMTP AUTH, POP3, FTP).
//!
//! hostplane stores argon2id PHC strings. A bulk import (`hostplane import`) also
//! brings the hashes of the system it replaces, accepted as they are:
//! SHA512-crypt (`$6$`), SHA256-crypt (`$5$`), MD5-crypt (`$1$`), bcrypt
//! (`$2a$`/`$2b$`/`$2y$`) and argon2 (`$argon2i$`/`$argon2d$`/`$argon2id$`).
//! [`verify`] checks a password against any of them and says whether the stored hash
//! should be replaced; the door then stores [`hash`]'s argon2id string in its place
//! (the first right login upgrades the hash). [`scheme`] is the import's check that
//! a hash is of a known, well-formed kind; [`Scheme::is_legacy`] lets the API refuse
//! legacy hashes everywhere but the import.
//!
//! Every function here is blocking CPU work (argon2id takes ~20 ms and 19 MiB):
//! callers run it on a blocking thread.

#![forbid(unsafe_code)]

use argon2::password_hash::{PasswordHash, PasswordHasher, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use rand::rngs::OsRng;

mod md5crypt;

/// A kind of stored password hash.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Scheme {
    /// `$argon2id$`: what hostplane itself writes.
    Argon2id,
    /// `$argon2i$` or `$argon2d$`.
    Argon2Other,
    /// `$6$`, glibc SHA512-crypt.
    Sha512Crypt,
    /// `$5$`, glibc SHA256-crypt.
    Sha256Crypt,
    /// `$1$`, MD5-crypt.
    Md5Crypt,
    /// `$2a$`, `$2b$`, `$2y$`: bcrypt.
    Bcrypt,
}

impl Scheme {
    /// Whether a hash of this scheme is replaced by argon2id at the next right login.
    /// Only the import stores such hashes; the API sets passwords, never hashes.
    pub fn is_legacy(self) -> bool {
        self != Scheme::Argon2id
    }

    /// A short name for reports (`sha512-crypt`, `bcrypt` ...).
    pub fn as_str(self) -> &'static str {
        match self {
            Scheme::Argon2id => "argon2id",
            Scheme::Argon2Other => "argon2",
            Scheme::Sha512Crypt => "sha512-crypt",
            Scheme::Sha256Crypt => "sha256-crypt",
            Scheme::Md5Crypt => "md5-crypt",
            Scheme::Bcrypt => "bcrypt",
        }
    }
}

/// Why a string is not an acceptable password hash.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HashError {
    /// Not one of the known prefixes.
    #[error("unknown password hash scheme (accepted: $argon2id$, $argon2i$, $argon2d$, $6$ SHA512-crypt, $5$ SHA256-crypt, $1$ MD5-crypt, $2a$/$2b$/$2y$ bcrypt)")]
    UnknownScheme,
    /// A known prefix, but the rest is malformed.
    #[error("malformed {0} hash: {1}")]
    Malformed(&'static str, String),
    /// Hashing failed (broken parameters only; never on user input).
    #[error("password hashing failed: {0}")]
    Hashing(String),
}

/// The outcome of [`verify`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Wrong password, or a stored hash that cannot be checked.
    Wrong,
    /// Right password; `rehash`: the stored hash is of a legacy scheme and should be
    /// replaced by [`hash`] of this password.
    Right {
        /// Replace the stored hash with an argon2id one.
        rehash: bool,
    },
}

impl Verdict {
    /// Whether the password was right.
    pub fn is_right(self) -> bool {
        matches!(self, Verdict::Right { .. })
    }

    /// Whether the stored hash should be replaced (only after a right password).
    pub fn needs_rehash(self) -> bool {
        matches!(self, Verdict::Right { rehash: true })
    }
}

/// Which scheme `stored` is, after checking that it is well formed (so an import
/// refuses a hash no door could ever verify).
pub fn scheme(stored: &str) -> Result<Scheme, HashError> {
    let s = stored;
    if s.starts_with("$argon2") {
        let parsed =
            PasswordHash::new(s).map_err(|e| HashError::Malformed("argon2", e.to_string()))?;
        if parsed.salt.is_none() || parsed.hash.is_none() {
            return Err(HashError::Malformed("argon2", "no salt or hash".to_owned()));
        }
        if argon2::Params::try_from(&parsed).is_err() {
            return Err(HashError::Malformed("argon2", "bad parameters".to_owned()));
        }
        return match parsed.algorithm.as_str() {
            "argon2id" => Ok(Scheme::Argon2id),
            "argon2i" | "argon2d" => Ok(Scheme::Argon2Other),
            other => Err(HashError::Malformed(
                "argon2",
                format!("unknown variant `{other}`"),
            )),
        };
    }
    if let Some(rest) = s.strip_prefix("$6$") {
        check_sha_crypt(rest, 86, "sha512-crypt")?;
        return Ok(Scheme::Sha512Crypt);
    }
    if let Some(rest) = s.strip_prefix("$5$") {
        check_sha_crypt(rest, 43, "sha256-crypt")?;
        return Ok(Scheme::Sha256Crypt);
    }
    if let Some(rest) = s.strip_prefix("$1$") {
        md5crypt::parse(rest).map_err(|e| HashError::Malformed("md5-crypt", e.to_owned()))?;
        return Ok(Scheme::Md5Crypt);
    }
    if ["$2a$", "$2b$", "$2y$"].iter().any(|p| s.starts_with(p)) {
        check_bcrypt(s)?;
        return Ok(Scheme::Bcrypt);
    }
    Err(HashError::UnknownScheme)
}

fn is_crypt64(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'.' || b == b'/'
}

/// `[rounds=N$]salt$hash` with a salt of at most 16 characters and a hash of `len`.
fn check_sha_crypt(rest: &str, len: usize, name: &'static str) -> Result<(), HashError> {
    let bad = |why: &str| HashError::Malformed(name, why.to_owned());
    let mut parts: Vec<&str> = rest.split('$').collect();
    if let Some(first) = parts.first() {
        if let Some(n) = first.strip_prefix("rounds=") {
            let n: u32 = n.parse().map_err(|_| bad("rounds is not a number"))?;
            if !(1000..=999_999_999).contains(&n) {
                return Err(bad("rounds must be 1000..=999999999"));
            }
            parts.remove(0);
        }
    }
    let [salt, hash] = parts[..] else {
        return Err(bad("expected `$salt$hash`"));
    };
    if salt.is_empty() || salt.len() > 16 || salt.contains(':') || salt.contains('\n') {
        return Err(bad("salt must be 1 to 16 characters"));
    }
    if hash.len() != len || !hash.bytes().all(is_crypt64) {
        return Err(bad(&format!(
            "hash must be {len} characters of [./0-9A-Za-z]"
        )));
    }
    Ok(())
}

/// `$2x$NN$` + 53 characters of bcrypt base64.
fn check_bcrypt(s: &str) -> Result<(), HashError> {
    let bad = |why: &str| HashError::Malformed("bcrypt", why.to_owned());
    let rest = &s[4..];
    let (cost, body) = rest
        .split_once('$')
        .ok_or_else(|| bad("expected `$cost$`"))?;
    let cost: u32 = cost.parse().map_err(|_| bad("cost is not a number"))?;
    if !(4..=31).contains(&cost) {
        return Err(bad("cost must be 4..=31"));
    }
    if body.len() != 53 || !body.bytes().all(is_crypt64) {
        return Err(bad("salt and hash must be 53 characters of [./0-9A-Za-z]"));
    }
    Ok(())
}

/// hostplane's argon2id: OWASP's recommendation (19 MiB, 2 passes, 1 lane).
fn argon2id() -> Argon2<'static> {
    let params = Params::new(19 * 1024, 2, 1, None).unwrap_or_default();
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

/// The argon2id PHC string of `password` with a random salt (blocking, ~20 ms).
pub fn hash(password: &str) -> Result<String, HashError> {
    let salt = SaltString::generate(&mut OsRng);
    argon2id()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| HashError::Hashing(e.to_string()))
}

/// The argon2id PHC string of a machine-made secret of at least 128 random bits
/// (a site's submission secret): such a secret cannot be guessed, so the hash
/// need not be slow, and light parameters (1 MiB, 1 pass) let the controller make
/// one per site and mail servers check one per submission cheaply.
pub fn hash_random_secret(secret: &str) -> Result<String, HashError> {
    let salt = SaltString::generate(&mut OsRng);
    let params = Params::new(1024, 1, 1, None).unwrap_or_default();
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
        .hash_password(secret.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| HashError::Hashing(e.to_string()))
}

/// Check `password` against `stored` of any accepted scheme (blocking). A malformed
/// or unknown hash never matches.
pub fn verify(stored: &str, password: &str) -> Verdict {
    let Ok(scheme) = scheme(stored) else {
        return Verdict::Wrong;
    };
    let pw = password.as_bytes();
    let right = match scheme {
        Scheme::Argon2id | Scheme::Argon2Other => match PasswordHash::new(stored) {
            // The algorithm and its parameters come from the PHC string.
            Ok(parsed) => {
                argon2::password_hash::PasswordVerifier::verify_password(&argon2id(), pw, &parsed)
                    .is_ok()
            }
            Err(_) => false,
        },
        Scheme::Sha512Crypt | Scheme::Sha256Crypt => {
            sha_crypt::PasswordVerifier::<str>::verify_password(
                &sha_crypt::ShaCrypt::default(),
                pw,
                stored,
            )
            .is_ok()
        }
        Scheme::Md5Crypt => md5crypt::verify(pw, &stored[3..]),
        Scheme::Bcrypt => bcrypt::verify(pw, stored).unwrap_or(false),
    };
    if right {
        Verdict::Right {
            rehash: scheme.is_legacy(),
        }
    } else {
        Verdict::Wrong
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Vectors made with `openssl passwd -6/-5/-1 -salt saltsalt 'secret pw'`.
    const SHA512: &str = "$6$saltsalt$zM85MwF7wzNFxhHekCkSASe1NaC/xUx1S2eoXlbcx1w6LkHRO4n1DK7q.d/HKoYFUjJ10GWDs5jLq2A53OAzU1";
    const SHA256: &str = "$5$saltsalt$vCVzagwpKquSflhQxH0D10Fgy2Km11eLAozR93EkXT6";
    const MD5: &str = "$1$saltsalt$ZtMHw9WXbhe3pPBkCQJKC1";
    // `openssl passwd -6 -salt 'rounds=5000$abc' x`
    const SHA512_ROUNDS: &str = "$6$rounds=5000$abc$K4v3HcZ8yAmpRfxML6S46NCcqy9r4/KdbQpFvqSWsBf4dgySOEOo1DHJTrmn2BsJK2aNmPN8Tfb826D2o9.z51";
    // Openwall crypt_blowfish test vector: "U*U".
    const BCRYPT_2A: &str = "$2a$05$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOeW";

    #[test]
    fn random_secrets_hash_light_and_verify() {
        let h = hash_random_secret("c2VjcmV0LW9mLTMyLWJ5dGVz").unwrap();
        assert!(h.starts_with("$argon2id$v=19$m=1024,t=1,p=1$"), "{h}");
        assert_eq!(scheme(&h).unwrap(), Scheme::Argon2id);
        assert!(verify(&h, "c2VjcmV0LW9mLTMyLWJ5dGVz").is_right());
        assert!(!verify(&h, "guess").is_right());
    }

    fn assert_legacy(stored: &str, password: &str, scheme_is: Scheme) {
        assert_eq!(scheme(stored), Ok(scheme_is), "{stored}");
        assert_eq!(verify(stored, password), Verdict::Right { rehash: true });
        assert_eq!(verify(stored, "wrong"), Verdict::Wrong);
        assert_eq!(verify(stored, ""), Verdict::Wrong);
    }

    #[test]
    fn sha512_crypt() {
        assert_legacy(SHA512, "secret pw", Scheme::Sha512Crypt);
        assert_legacy(SHA512_ROUNDS, "x", Scheme::Sha512Crypt);
    }

    #[test]
    fn sha256_crypt() {
        assert_legacy(SHA256, "secret pw", Scheme::Sha256Crypt);
    }

    #[test]
    fn md5_crypt() {
        assert_legacy(MD5, "secret pw", Scheme::Md5Crypt);
        // `openssl passwd -1 -salt ab ''` and a password longer than 16 bytes.
        assert_eq!(
            verify("$1$ab$rn6aQS/o7141mj179E/zA.", ""),
            Verdict::Right { rehash: true }
        );
        assert_legacy(
            "$1$Zk3/LyIQ$r/acsKx6Li/ORZI6zS5ui.",
            "a much longer password of 40 characters",
            Scheme::Md5Crypt,
        );
    }

    #[test]
    fn bcrypt_variants() {
        assert_legacy(BCRYPT_2A, "U*U", Scheme::Bcrypt);
        for prefix in ["$2b$", "$2y$"] {
            let h = format!("{prefix}{}", &BCRYPT_2A[4..]);
            assert_legacy(&h, "U*U", Scheme::Bcrypt);
        }
    }

    #[test]
    fn argon2_variants_and_own_hash() {
        let own = hash("secret pw").expect("hash");
        assert_eq!(scheme(&own), Ok(Scheme::Argon2id));
        assert_eq!(verify(&own, "secret pw"), Verdict::Right { rehash: false });
        assert_eq!(verify(&own, "secret"), Verdict::Wrong);
        let salt = SaltString::from_b64("c2FsdHNhbHRzYWx0").expect("salt");
        for alg in [Algorithm::Argon2i, Algorithm::Argon2d] {
            let params = Params::new(1024, 1, 1, None).expect("params");
            let h = Argon2::new(alg, Version::V0x13, params)
                .hash_password(b"secret pw", &salt)
                .expect("hash")
                .to_string();
            assert_legacy(&h, "secret pw", Scheme::Argon2Other);
        }
    }

    #[test]
    fn malformed_and_unknown_are_refused_and_never_match() {
        for bad in [
            "",
            "plaintext",
            "{SSHA}abcd",
            "$6$saltsalt$short",
            "$6$$zM85MwF7wzNFxhHekCkSASe1NaC/xUx1S2eoXlbcx1w6LkHRO4n1DK7q.d/HKoYFUjJ10GWDs5jLq2A53OAzU1",
            "$6$rounds=10$abc$K4v3HcZ8yAmpRfxML6S46NCcqy9r4/KdbQpFvqSWsBf4dgySOEOo1DHJTrmn2BsJK2aNmPN8Tfb826D2o9.z51",
            "$5$saltsalt$vCVzagwpKquSflhQxH0D10Fgy2Km11eLAozR93EkXT",
            "$1$saltsalt$ZtMHw9WXbhe3pPBkCQJKC",
            "$1$toolongsalt$ZtMHw9WXbhe3pPBkCQJKC1",
            "$2a$03$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOeW",
            "$2a$05$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOe",
            "$2x$05$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOeW",
            "$argon2id$v=19$m=oops",
        ] {
            assert!(scheme(bad).is_err(), "{bad}");
            assert_eq!(verify(bad, "secret pw"), Verdict::Wrong, "{bad}");
        }
    }

    #[test]
    fn only_argon2id_is_current() {
        assert!(!Scheme::Argon2id.is_legacy());
        for s in [
            Scheme::Argon2Other,
            Scheme::Sha512Crypt,
            Scheme::Sha256Crypt,
            Scheme::Md5Crypt,
            Scheme::Bcrypt,
        ] {
            assert!(s.is_legacy(), "{s:?}");
        }
    }
}
