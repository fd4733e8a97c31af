//! Authentication: bearer tokens `hp_<public id>_<secret>` verified against the
//! argon2id hash in the store once, then served from an in-memory cache keyed by the
//! BLAKE3 hash of the token (purged on revocation, account changes, and after a
//! minute so other controllers' revocations also take effect); expiry is checked on
//! every request. Bad bearer tokens are throttled per client address (crate
//! `throttle`, `AppState::bad_tokens`), bad join tokens rate limited per address
//! ([`RateLimiter`]); password logins go through the shared login throttle
//! (`AppState::logins`), so password failures never block tokens.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::extract::FromRequestParts;
use axum::http::header;
use axum::http::request::Parts;
use model::entity::{Account, ApiToken};
use model::{AccountKind, Id};
use store::{Actor, NewObject, Scope, Stored, Tx};

use crate::error::{ApiError, ApiResult};
use crate::secrets;
use crate::state::{AppState, ClientAddr};

/// How long a verified token is served from the cache before the store is asked again.
pub const CACHE_TTL: Duration = Duration::from_secs(60);
/// Most tokens kept in the cache (it is cleared when full).
const CACHE_MAX: usize = 50_000;
/// Length of the rate limiter's window.
const WINDOW: Duration = Duration::from_secs(60);

/// The authenticated account a request acts as.
#[derive(Debug, Clone)]
pub struct Caller {
    /// Account id.
    pub account_id: Id,
    /// The account as it was when the token was verified.
    pub account: Account,
    /// Store id of the token used.
    pub token_id: Id,
    /// Public id of the token used.
    pub token_public_id: String,
    /// For an impersonation token: who acts as `account` with it.
    pub impersonator: Option<Impersonator>,
}

/// The reseller or admin behind an impersonation token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Impersonator {
    /// Its account id.
    pub id: Id,
    /// Its account name.
    pub name: String,
}

impl Caller {
    /// What the caller may see.
    pub fn scope(&self) -> Scope {
        match self.account.kind {
            AccountKind::Admin => Scope::All,
            AccountKind::Reseller => Scope::Reseller(self.account_id),
            AccountKind::Customer => Scope::Customer(self.account_id),
        }
    }

    /// True for operators.
    pub fn is_admin(&self) -> bool {
        self.account.kind == AccountKind::Admin
    }

    /// The audit log's actor: the account, and for an impersonation token both
    /// names, `<impersonator> as <account>` (the id stays the account's, so the
    /// customer's own log shows the change).
    pub fn actor(&self) -> Actor {
        let label = match &self.impersonator {
            Some(i) => format!("{} as {}", i.name, self.account.name),
            None => self.account.name.to_string(),
        };
        Actor {
            account: Some(self.account_id),
            label,
        }
    }

    /// 403 for an impersonation token: what only the account's owner may do
    /// (tokens, two-factor, impersonating further).
    pub fn require_own(&self) -> ApiResult<()> {
        match &self.impersonator {
            None => Ok(()),
            Some(i) => Err(ApiError::forbidden(format!(
                "`{}` is acting as `{}`: an impersonation token cannot do this",
                i.name, self.account.name
            ))),
        }
    }

    /// 403 unless the caller is an admin.
    pub fn require_admin(&self) -> ApiResult<()> {
        if self.is_admin() {
            Ok(())
        } else {
            Err(ApiError::forbidden(
                "only operators (admin accounts) may do this",
            ))
        }
    }
}

#[derive(Debug, Clone)]
struct CacheEntry {
    caller: Caller,
    expires_at: Option<i64>,
    cached_at: Instant,
}

/// Verified tokens by BLAKE3 hash of the whole token string.
#[derive(Debug, Default)]
pub struct AuthCache {
    entries: Mutex<HashMap<[u8; 32], CacheEntry>>,
}

impl AuthCache {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<[u8; 32], CacheEntry>> {
        self.entries.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn get(&self, key: &[u8; 32]) -> Option<CacheEntry> {
        let mut map = self.lock();
        match map.get(key) {
            Some(e) if e.cached_at.elapsed() < CACHE_TTL => Some(e.clone()),
            Some(_) => {
                map.remove(key);
                None
            }
            None => None,
        }
    }

    fn insert(&self, key: [u8; 32], entry: CacheEntry) {
        let mut map = self.lock();
        if map.len() >= CACHE_MAX {
            map.clear();
        }
        map.insert(key, entry);
    }

    /// Forget every token of an account (disabled, password changed, deleted).
    pub fn purge_account(&self, account: Id) {
        self.lock().retain(|_, e| e.caller.account_id != account);
    }

    /// Forget one token (revoked).
    pub fn purge_token(&self, token_id: Id) {
        self.lock().retain(|_, e| e.caller.token_id != token_id);
    }

    /// Forget everything.
    pub fn clear(&self) {
        self.lock().clear();
    }
}

/// Counts failed authentications per key in one-minute windows.
#[derive(Debug)]
pub struct RateLimiter {
    per_minute: u32,
    windows: Mutex<HashMap<String, (Instant, u32)>>,
}

impl RateLimiter {
    /// At most `per_minute` failures per key and minute.
    pub fn new(per_minute: u32) -> Self {
        Self {
            per_minute: per_minute.max(1),
            windows: Mutex::new(HashMap::new()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, (Instant, u32)>> {
        self.windows.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// `Err(seconds to wait)` if `key` already failed too often this minute.
    pub fn check(&self, key: &str) -> Result<(), u64> {
        let map = self.lock();
        match map.get(key) {
            Some((start, n)) if *n >= self.per_minute && start.elapsed() < WINDOW => {
                Err(WINDOW.saturating_sub(start.elapsed()).as_secs().max(1))
            }
            _ => Ok(()),
        }
    }

    /// Record a failure of `key`.
    pub fn fail(&self, key: &str) {
        let mut map = self.lock();
        if map.len() > 100_000 {
            map.retain(|_, (start, _)| start.elapsed() < WINDOW);
        }
        let entry = map.entry(key.to_owned()).or_insert((Instant::now(), 0));
        if entry.0.elapsed() >= WINDOW {
            *entry = (Instant::now(), 0);
        }
        entry.1 = entry.1.saturating_add(1);
    }

    /// 429 if any of `keys` is over the limit.
    pub fn check_all(&self, keys: &[&str]) -> ApiResult<()> {
        for k in keys {
            self.check(k).map_err(ApiError::too_many)?;
        }
        Ok(())
    }
}

/// The rate-limit key of a client address.
pub fn ip_key(ip: Option<IpAddr>) -> String {
    match ip {
        Some(ip) => format!("ip:{ip}"),
        None => "ip:unknown".to_owned(),
    }
}

/// Current Unix time in seconds.
pub fn now_unix() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

/// At most this many argon2 computations run at once, one per CPU. Each takes 19 MiB
/// and most of a core: unbounded, a burst of logins or mailbox creations would spawn
/// hundreds of blocking threads and gigabytes of memory (measured: 5.8 GiB RSS at 32
/// concurrent mailbox creations before this limit, see bench/RESULTS.md).
fn hash_permits() -> &'static tokio::sync::Semaphore {
    static PERMITS: std::sync::OnceLock<tokio::sync::Semaphore> = std::sync::OnceLock::new();
    PERMITS.get_or_init(|| {
        let cpus = std::thread::available_parallelism().map_or(2, |n| n.get());
        tokio::sync::Semaphore::new(cpus)
    })
}

/// Run one argon2 computation on the blocking pool, within the concurrency limit.
async fn with_hash_permit<T: Send + 'static>(
    f: impl FnOnce() -> T + Send + 'static,
) -> ApiResult<T> {
    let _permit = hash_permits().acquire().await.map_err(ApiError::internal)?;
    tokio::task::spawn_blocking(f)
        .await
        .map_err(ApiError::internal)
}

/// Verify `secret` against `phc` on the blocking pool (argon2 is deliberately slow).
pub async fn verify_blocking(secret: String, phc: String) -> ApiResult<bool> {
    with_hash_permit(move || secrets::verify_password(&secret, &phc)).await
}

/// Check an account's login password on the blocking pool: argon2id or a hash an
/// import brought (`passhash`); the verdict says whether to rehash.
pub async fn verify_login_blocking(secret: String, stored: String) -> ApiResult<passhash::Verdict> {
    with_hash_permit(move || secrets::verify_login_password(&secret, &stored)).await
}

/// Hash `secret` on the blocking pool.
pub async fn hash_blocking(secret: String) -> ApiResult<String> {
    with_hash_permit(move || secrets::hash_password(&secret))
        .await?
        .map_err(ApiError::from)
}

/// The owner a token (or other object acting for an account) is stored under.
pub fn owner_of_account(account: &Stored<Account>) -> Option<Id> {
    match account.data.kind {
        AccountKind::Admin => None,
        _ => Some(account.meta.id),
    }
}

/// Create a token for `account` inside `tx`; returns the token string (shown once)
/// and the stored token.
pub async fn issue_token(
    tx: &mut Tx,
    account: &Stored<Account>,
    name: &str,
    expires_at: Option<i64>,
    impersonator: Option<Id>,
) -> ApiResult<(String, Stored<ApiToken>)> {
    let (token, public_id, secret) = secrets::generate_token();
    let secret_hash = hash_blocking(secret).await?;
    let data = ApiToken {
        account: account.meta.id,
        name: name.to_owned(),
        public_id: public_id.clone(),
        secret_hash,
        expires_at,
        impersonator,
    };
    let stored = tx
        .create(NewObject {
            name: public_id,
            owner: owner_of_account(account),
            parent: Some(account.meta.id),
            data,
        })
        .await?;
    Ok((token, stored))
}

/// Verify a bearer token (cache first, then the store).
pub async fn authenticate(state: &AppState, token: &str, ip: Option<IpAddr>) -> ApiResult<Caller> {
    let key = *blake3::hash(token.as_bytes()).as_bytes();
    if let Some(entry) = state.auth.get(&key) {
        if entry.expires_at.is_some_and(|t| t <= now_unix()) {
            state.auth.purge_token(entry.caller.token_id);
            return Err(ApiError::unauthorized(
                "the token has expired; create a new one with `hostplane login`",
            ));
        }
        return Ok(entry.caller);
    }
    // A bad token is counted after the check, not reserved before it: a valid
    // token must never wait on the throttle, and clients open many requests at once
    // with a token the cache has not seen yet (a reservation per request made the
    // 11th concurrent request with a valid token a 429). A 256-bit token cannot be
    // guessed; the throttle stops a source from making us look tokens up without
    // end, and argon2 runs only for a token whose public id exists.
    match verify_token(state, token).await {
        Ok((caller, expires_at)) => {
            state.auth.insert(
                key,
                CacheEntry {
                    caller: caller.clone(),
                    expires_at,
                    cached_at: Instant::now(),
                },
            );
            Ok(caller)
        }
        Err(e) if e.status == axum::http::StatusCode::UNAUTHORIZED => {
            let source = ip.unwrap_or(IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED));
            match state.bad_tokens.reserve(BEARER_KEY, source) {
                // Dropping the ticket records the failure.
                Ok(ticket) => {
                    drop(ticket);
                    Err(e)
                }
                Err(r) => Err(ApiError::too_many(r.retry_after_secs())),
            }
        }
        // Not a guess (e.g. the store failed): not counted.
        Err(e) => Err(e),
    }
}

/// The throttle key of bearer tokens (one "account" for all of them: bad tokens
/// count per client address only).
const BEARER_KEY: &str = "<bearer token>";

/// The throttle of bad bearer tokens: `per_address` free failures per client
/// address, then a doubling wait; no account-wide part.
pub fn bad_token_throttle(per_address: u32) -> throttle::Throttle {
    throttle::Throttle::new(throttle::Config {
        free_per_source: per_address.max(1),
        free_per_address: u32::MAX,
        free_per_account: u32::MAX,
        source_cap: Duration::from_secs(60),
        ..throttle::Config::default()
    })
}

async fn verify_token(state: &AppState, token: &str) -> ApiResult<(Caller, Option<i64>)> {
    let bad = || {
        ApiError::unauthorized("the token is not valid (revoked, expired or mistyped); log in again with `hostplane login`")
    };
    let (public_id, secret) = secrets::parse_token(token).ok_or_else(bad)?;
    let stored = state
        .store
        .get_by_name::<ApiToken>(Scope::All, public_id)
        .await?
        .ok_or_else(bad)?;
    if !verify_blocking(secret.to_owned(), stored.data.secret_hash.clone()).await? {
        return Err(bad());
    }
    if stored.data.expires_at.is_some_and(|t| t <= now_unix()) {
        return Err(ApiError::unauthorized(
            "the token has expired; create a new one with `hostplane login`",
        ));
    }
    let account = state
        .store
        .get::<Account>(Scope::All, stored.data.account)
        .await?
        .ok_or_else(bad)?;
    if account.data.disabled {
        return Err(ApiError::unauthorized("the account is disabled"));
    }
    let impersonator = match stored.data.impersonator {
        None => None,
        Some(id) => Some(check_impersonator(state, id, &account).await?),
    };
    Ok((
        Caller {
            account_id: account.meta.id,
            account: account.data,
            token_id: stored.meta.id,
            token_public_id: stored.meta.name,
            impersonator,
        },
        stored.data.expires_at,
    ))
}

/// The impersonator `id` of a token of `account`, if it may still act as it: it
/// exists, is not disabled, and is an admin or the account's reseller (checked on
/// every verification, so a customer moved to another reseller ends it).
async fn check_impersonator(
    state: &AppState,
    id: Id,
    account: &Stored<Account>,
) -> ApiResult<Impersonator> {
    let gone = || {
        ApiError::unauthorized(
            "the impersonation token's owner may no longer act as this account; sign in again",
        )
    };
    let who = state
        .store
        .get::<Account>(Scope::All, id)
        .await?
        .ok_or_else(gone)?;
    let allowed = !who.data.disabled
        && match who.data.kind {
            AccountKind::Admin => true,
            AccountKind::Reseller => account.data.reseller == Some(who.meta.id),
            AccountKind::Customer => false,
        };
    if !allowed {
        return Err(gone());
    }
    Ok(Impersonator {
        id: who.meta.id,
        name: who.meta.name,
    })
}

/// The bearer token of a request, if any.
fn bearer(parts: &Parts) -> Option<&str> {
    let value = parts.headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.trim().split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then_some(token.trim())
}

/// The client address of a request.
pub fn client_ip(parts: &Parts) -> Option<IpAddr> {
    parts.extensions.get::<ClientAddr>().map(|a| a.0.ip())
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let Some(token) = bearer(parts) else {
            return Err(ApiError::unauthorized(
                "authentication required: send `Authorization: Bearer <token>` (get one with `hostplane login`)",
            ));
        };
        let ip = client_ip(parts);
        authenticate(state, token, ip).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limiter_counts_per_key() {
        let l = RateLimiter::new(3);
        for _ in 0..3 {
            assert!(l.check("a").is_ok());
            l.fail("a");
        }
        let wait = l.check("a").unwrap_err();
        assert!((1..=60).contains(&wait));
        assert!(l.check("b").is_ok());
        assert_eq!(
            l.check_all(&["b", "a"]).unwrap_err().status,
            axum::http::StatusCode::TOO_MANY_REQUESTS
        );
    }
}
