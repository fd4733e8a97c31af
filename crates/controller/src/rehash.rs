//! Replacing an imported legacy password hash (SHA-crypt, MD5-crypt, bcrypt, argon2i/d)
//! by argon2id after the first right login, for every door: the API login calls it
//! directly, mail and FTP servers report it through `POST /v1/agent/rehash`.
//!
//! The swap is a compare-and-set inside one store transaction: the stored hash is
//! replaced only while it is still the old one the login checked, so a password the
//! owner changed meanwhile is never overwritten, and only by an argon2id hash.

use model::entity::{Account, FtpAccount, Mailbox};
use model::Id;
use store::{Actor, Store};

use crate::error::{ApiError, ApiResult};

/// Which object's hash is replaced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HashOwner {
    /// An account's API/panel password.
    Account,
    /// A mailbox password (SMTP AUTH, POP3).
    Mailbox,
    /// An FTP account password.
    FtpAccount,
}

impl HashOwner {
    /// Parse the wire name (`account`, `mailbox`, `ftp_account`).
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "account" => Some(Self::Account),
            "mailbox" => Some(Self::Mailbox),
            "ftp_account" => Some(Self::FtpAccount),
            _ => None,
        }
    }
}

/// What [`replace`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The hash was replaced.
    Replaced,
    /// Nothing to do: the object is gone or its hash is no longer the old one.
    Stale,
}

/// Refuse anything but a well-formed argon2id hash as the replacement.
pub fn check_new_hash(new: &str) -> ApiResult<()> {
    match passhash::scheme(new) {
        Ok(passhash::Scheme::Argon2id) => Ok(()),
        Ok(other) => Err(ApiError::invalid(
            "new_hash",
            "argon2id",
            format!("a rehash stores argon2id only, not {}", other.as_str()),
        )),
        Err(e) => Err(ApiError::invalid("new_hash", "argon2id", e.to_string())),
    }
}

/// Replace the hash of object `id` (of `owner` kind) by `new` if it is still `old`.
/// `allowed` lets the caller refuse objects it must not touch (an agent only the
/// objects its server holds); it is checked inside the transaction.
pub async fn replace(
    store: &Store,
    actor: Actor,
    owner: HashOwner,
    name: &str,
    old: &str,
    new: &str,
    allowed: impl Fn(Option<Id>) -> bool,
) -> ApiResult<Outcome> {
    check_new_hash(new)?;
    let mut tx = store.begin(actor).await?;
    let replaced = match owner {
        HashOwner::Account => {
            let Some(mut cur) = tx.get_by_name::<Account>(name).await? else {
                return Ok(Outcome::Stale);
            };
            if cur.data.password_hash.as_deref() != Some(old) || !allowed(Some(cur.meta.id)) {
                return Ok(Outcome::Stale);
            }
            cur.data.password_hash = Some(new.to_owned());
            tx.update(cur.meta.id, &cur.meta.name, cur.data).await?;
            true
        }
        HashOwner::Mailbox => {
            let Some(mut cur) = tx.get_by_name::<Mailbox>(name).await? else {
                return Ok(Outcome::Stale);
            };
            if cur.data.password_hash != old || !allowed(Some(cur.data.domain)) {
                return Ok(Outcome::Stale);
            }
            cur.data.password_hash = new.to_owned();
            tx.update(cur.meta.id, &cur.meta.name, cur.data).await?;
            true
        }
        HashOwner::FtpAccount => {
            let Some(mut cur) = tx.get_by_name::<FtpAccount>(name).await? else {
                return Ok(Outcome::Stale);
            };
            if cur.data.password_hash != old || !allowed(Some(cur.data.domain)) {
                return Ok(Outcome::Stale);
            }
            cur.data.password_hash = new.to_owned();
            tx.update(cur.meta.id, &cur.meta.name, cur.data).await?;
            true
        }
    };
    if replaced {
        tx.commit().await?;
        Ok(Outcome::Replaced)
    } else {
        Ok(Outcome::Stale)
    }
}
