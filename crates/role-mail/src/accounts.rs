//! Mailbox logins shared by submission AUTH and POP3: every attempt first reserves a
//! failure in the server's login throttle (crate `throttle`: per mailbox and client
//! address, an account-wide capped delay, never a lockout), the password check
//! (`passhash`: argon2id or an imported legacy hash) runs on the blocking pool, a disabled account never logs in, and every failure costs
//! the client a delay so guessing is slow. A site's login (`site:<domain>`, its
//! web servers submitting PHP mail) goes through the same door.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use crate::plan::Plan;

/// How long a failed login waits before answering.
pub const FAILURE_DELAY: Duration = Duration::from_secs(1);

/// Whether `password` is right for `hash` (blocking): argon2id or a hash an import
/// brought (SHA-crypt, MD5-crypt, bcrypt; crate `passhash`, shared by every door).
pub fn verify_hash(hash: &str, password: &str) -> bool {
    passhash::verify(hash, password).is_right()
}

/// The outcome of a login attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Login {
    /// The password was right: the canonical (lower-case) address.
    Ok(String),
    /// Unknown mailbox, wrong password or disabled account.
    Wrong,
    /// Refused without checking the password; retry after this many seconds.
    Throttled(u64),
}

/// Check `user` (`local@domain`) and `password` from `source` against `plan`,
/// within `throttle`. Slow on failure.
pub async fn login(
    throttle: &throttle::Throttle,
    source: IpAddr,
    plan: Arc<Plan>,
    user: &str,
    password: &str,
) -> Login {
    let ticket = match throttle.reserve(user, source) {
        Ok(t) => t,
        Err(r) => {
            tracing::info!(%source, user, "mail login throttled");
            return Login::Throttled(r.retry_after_secs());
        }
    };
    if !ticket.wait().is_zero() {
        tokio::time::sleep(ticket.wait()).await;
    }
    let account = plan
        .account(user)
        .filter(|(_, _, a)| a.enabled)
        .map(|(d, local, a)| (format!("{local}@{}", d.name), a.password_hash.clone()))
        .or_else(|| {
            // A site's web servers submitting its PHP mail (`model::sitemail`).
            let (d, hash) = plan.site_login(user)?;
            Some((
                format!("{}{}", model::sitemail::LOGIN_PREFIX, d.name),
                hash.to_owned(),
            ))
        });
    let ok = match account {
        Some((address, hash)) => {
            let (pw, stored) = (password.to_string(), hash.clone());
            let verdict = tokio::task::spawn_blocking(move || passhash::verify(&stored, &pw))
                .await
                .unwrap_or(passhash::Verdict::Wrong);
            if verdict.needs_rehash() && model::sitemail::site_of_login(&address).is_none() {
                // An imported legacy hash: the controller stores argon2id instead.
                agent::rehash::rehash("mailbox", address.clone(), hash, password.to_string());
            }
            verdict.is_right().then_some(address)
        }
        None => None,
    };
    match ok {
        Some(address) => {
            ticket.succeeded();
            Login::Ok(address)
        }
        None => {
            drop(ticket);
            tracing::info!(%source, user, "mail login failed");
            tokio::time::sleep(FAILURE_DELAY).await;
            Login::Wrong
        }
    }
}
