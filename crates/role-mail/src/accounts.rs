//! Mailbox logins shared by submission AUTH and POP3: the argon2id check runs on the
//! blocking pool, a disabled account never logs in, and every failure costs the
//! client a delay so guessing is slow.

use std::sync::Arc;
use std::time::Duration;

use argon2::{Argon2, PasswordHash, PasswordVerifier};

use crate::plan::Plan;

/// How long a failed login waits before answering.
pub const FAILURE_DELAY: Duration = Duration::from_secs(1);

/// Whether `password` is right for `hash` (blocking).
pub fn verify_hash(hash: &str, password: &str) -> bool {
    match PasswordHash::new(hash) {
        Ok(parsed) => Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok(),
        Err(_) => false,
    }
}

/// Check `user` (`local@domain`) and `password` against `plan`; returns the
/// canonical (lower-case) address on success. Slow on failure.
pub async fn login(plan: Arc<Plan>, user: &str, password: &str) -> Option<String> {
    let account = plan
        .account(user)
        .filter(|(_, _, a)| a.enabled)
        .map(|(d, local, a)| (format!("{local}@{}", d.name), a.password_hash.clone()));
    let ok = match account {
        Some((address, hash)) => {
            let password = password.to_string();
            let ok = tokio::task::spawn_blocking(move || verify_hash(&hash, &password))
                .await
                .unwrap_or(false);
            ok.then_some(address)
        }
        None => None,
    };
    if ok.is_none() {
        tokio::time::sleep(FAILURE_DELAY).await;
    }
    ok
}
