//! FTP logins: the live account table (swapped on apply without restarting the server),
//! argon2id password checks off the async threads, and a per-address slow-down for
//! failed attempts.

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use argon2::{Argon2, PasswordHash, PasswordVerifier};
use async_trait::async_trait;
use unftp_core::auth::{
    AuthenticationError, Authenticator, Credentials, Principal, UserDetail, UserDetailError,
    UserDetailProvider,
};

use crate::plan::Account;

/// The account table, shared by the authenticator and the engine's `apply`.
#[derive(Debug, Clone, Default)]
pub struct Accounts {
    inner: Arc<RwLock<Arc<BTreeMap<String, Account>>>>,
}

impl Accounts {
    /// Replace every account at once (sessions already logged in keep going).
    pub fn set(&self, accounts: BTreeMap<String, Account>) {
        *self
            .inner
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Arc::new(accounts);
    }

    /// The account called `username`.
    pub fn get(&self, username: &str) -> Option<Account> {
        self.snapshot().get(username).cloned()
    }

    /// Number of accounts.
    pub fn len(&self) -> usize {
        self.snapshot().len()
    }

    /// Whether there are no accounts.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn snapshot(&self) -> Arc<BTreeMap<String, Account>> {
        self.inner
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }
}

/// A logged-in FTP user: confined to `home`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FtpUser {
    /// Login name.
    pub username: String,
    /// Absolute home directory (`<sites_root>/<domain>[/<home>]`).
    pub home: PathBuf,
    /// Quota in bytes, 0 = unlimited.
    pub quota_bytes: u64,
}

impl std::fmt::Display for FtpUser {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.username)
    }
}

impl UserDetail for FtpUser {
    fn home(&self) -> Option<&Path> {
        Some(&self.home)
    }
}

/// Failed attempts within this window count towards the slow-down and the block.
const FAIL_WINDOW: Duration = Duration::from_secs(300);
/// From this many failures in the window on, an address is refused without checking.
const FAIL_BLOCK: u32 = 20;
/// Delay added per recent failure (capped at 5 steps).
const FAIL_STEP: Duration = Duration::from_millis(300);

/// Checks passwords against the account table's argon2id hashes.
#[derive(Debug)]
pub struct HashAuthenticator {
    accounts: Accounts,
    failures: Mutex<HashMap<IpAddr, (u32, Instant)>>,
}

impl HashAuthenticator {
    /// An authenticator over `accounts`.
    pub fn new(accounts: Accounts) -> Self {
        Self {
            accounts,
            failures: Mutex::new(HashMap::new()),
        }
    }

    fn recent_failures(&self, ip: IpAddr) -> u32 {
        let mut map = self
            .failures
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        map.retain(|_, (_, at)| at.elapsed() < FAIL_WINDOW);
        map.get(&ip).map(|(n, _)| *n).unwrap_or(0)
    }

    fn record_failure(&self, ip: IpAddr) -> u32 {
        let mut map = self
            .failures
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let e = map.entry(ip).or_insert((0, Instant::now()));
        e.0 += 1;
        e.1 = Instant::now();
        e.0
    }

    fn clear_failures(&self, ip: IpAddr) {
        self.failures
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .remove(&ip);
    }
}

/// Verify `password` against a PHC string (argon2id) on a blocking thread.
pub async fn verify_password(hash: String, password: String) -> bool {
    tokio::task::spawn_blocking(move || {
        PasswordHash::new(&hash)
            .map(|parsed| {
                Argon2::default()
                    .verify_password(password.as_bytes(), &parsed)
                    .is_ok()
            })
            .unwrap_or(false)
    })
    .await
    .unwrap_or(false)
}

#[async_trait]
impl Authenticator for HashAuthenticator {
    async fn authenticate(
        &self,
        username: &str,
        creds: &Credentials,
    ) -> Result<Principal, AuthenticationError> {
        let ip = creds.source_ip;
        if self.recent_failures(ip) >= FAIL_BLOCK {
            tokio::time::sleep(FAIL_STEP * 5).await;
            return Err(AuthenticationError::IpDisallowed);
        }
        let ok = match (self.accounts.get(username), &creds.password) {
            (Some(acc), Some(pw)) => verify_password(acc.password_hash, pw.clone()).await,
            _ => false,
        };
        if ok {
            self.clear_failures(ip);
            return Ok(Principal {
                username: username.to_string(),
            });
        }
        let n = self.record_failure(ip);
        tracing::info!(%ip, user = username, failures = n, "ftp login failed");
        tokio::time::sleep(FAIL_STEP * n.min(5)).await;
        // One answer for unknown users and wrong passwords: no account enumeration.
        Err(AuthenticationError::BadPassword)
    }

    fn name(&self) -> &str {
        "hostplane-argon2id"
    }
}

/// Turns an authenticated login into an [`FtpUser`] with its confined home.
#[derive(Debug, Clone)]
pub struct HomeProvider {
    accounts: Accounts,
    sites_root: PathBuf,
}

impl HomeProvider {
    /// Homes are under `sites_root`.
    pub fn new(accounts: Accounts, sites_root: PathBuf) -> Self {
        Self {
            accounts,
            sites_root,
        }
    }
}

#[async_trait]
impl UserDetailProvider for HomeProvider {
    type User = FtpUser;

    async fn provide_user_detail(&self, principal: &Principal) -> Result<FtpUser, UserDetailError> {
        let acc = self
            .accounts
            .get(&principal.username)
            .ok_or_else(|| UserDetailError::new("account removed"))?;
        Ok(FtpUser {
            username: acc.username,
            home: self.sites_root.join(acc.home),
            quota_bytes: acc.quota_bytes,
        })
    }
}
