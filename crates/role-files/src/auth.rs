//! FTP logins: the live account table (swapped on apply without restarting the server),
//! argon2id password checks off the async threads, and the shared login throttle
//! (crate `throttle`: a failure reserved before the password check, per account and
//! client address, an account-wide capped delay, never a lockout). libunftp answers
//! every refused login with `530 Authentication failed`, throttled ones included.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::Duration;

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
    /// Absolute home directory (the site's tree, or a folder of it).
    pub home: PathBuf,
    /// The site the account belongs to (the hub learns its writes under this name).
    pub site: String,
    /// The home relative to the site's tree (empty: the whole site).
    pub in_site: PathBuf,
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

/// How long a failed or throttled login waits before answering.
const FAIL_DELAY: Duration = Duration::from_secs(1);

/// Checks passwords against the account table's argon2id hashes, within the login
/// throttle.
#[derive(Debug)]
pub struct HashAuthenticator {
    accounts: Accounts,
    logins: throttle::Throttle,
}

impl HashAuthenticator {
    /// An authenticator over `accounts`.
    pub fn new(accounts: Accounts) -> Self {
        Self {
            accounts,
            logins: throttle::Throttle::default(),
        }
    }

    /// Counters of the login throttle.
    pub fn login_counts(&self) -> throttle::Counts {
        self.logins.counts()
    }
}

/// Verify `password` against a stored hash on a blocking thread: argon2id or a hash
/// an import brought (SHA-crypt, MD5-crypt, bcrypt; crate `passhash`, shared by
/// every door).
pub async fn verify_password(hash: String, password: String) -> bool {
    tokio::task::spawn_blocking(move || passhash::verify(&hash, &password).is_right())
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
        let ticket = match self.logins.reserve(username, ip) {
            Ok(t) => t,
            Err(r) => {
                let secs = r.retry_after_secs();
                tracing::info!(%ip, user = username, retry_after = secs, "ftp login throttled");
                tokio::time::sleep(FAIL_DELAY).await;
                return Err(AuthenticationError::new(format!(
                    "too many failed logins; retry in {secs} s"
                )));
            }
        };
        if !ticket.wait().is_zero() {
            tokio::time::sleep(ticket.wait()).await;
        }
        let ok = match (self.accounts.get(username), &creds.password) {
            (Some(acc), Some(pw)) => {
                let (stored, given) = (acc.password_hash.clone(), pw.clone());
                let verdict =
                    tokio::task::spawn_blocking(move || passhash::verify(&stored, &given))
                        .await
                        .unwrap_or(passhash::Verdict::Wrong);
                if verdict.needs_rehash() {
                    // An imported legacy hash: the controller stores argon2id instead.
                    agent::rehash::rehash(
                        "ftp_account",
                        username.to_owned(),
                        acc.password_hash,
                        pw.clone(),
                    );
                }
                verdict.is_right()
            }
            _ => false,
        };
        if ok {
            ticket.succeeded();
            return Ok(Principal {
                username: username.to_string(),
            });
        }
        drop(ticket);
        tracing::info!(%ip, user = username, "ftp login failed");
        tokio::time::sleep(FAIL_DELAY).await;
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
    hub: Arc<sitesync::hub::Hub>,
}

impl HomeProvider {
    /// Homes are in the hub's site trees.
    pub fn new(accounts: Accounts, hub: Arc<sitesync::hub::Hub>) -> Self {
        Self { accounts, hub }
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
        let in_site = acc
            .home
            .strip_prefix(&acc.domain)
            .map_err(|_| UserDetailError::new("home outside its site"))?
            .to_path_buf();
        Ok(FtpUser {
            username: acc.username,
            home: self.hub.tree_path(&acc.domain).join(&in_site),
            site: acc.domain,
            in_site,
            quota_bytes: acc.quota_bytes,
        })
    }
}
