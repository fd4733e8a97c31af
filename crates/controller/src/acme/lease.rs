//! One controller issues at a time: the holder of a lease kept in the store as
//! the [`SecretPurpose::AcmeLease`] secret `acme_lease:issuer` (`public`: the
//! holder, `not_after`: the end). Taken only when free or expired; renewed by its
//! holder while it works. The store serialises writers, so two controllers never
//! both take it.

use model::entity::{Kind, Secret, SecretPurpose};
use store::{Actor, NewObject, Store, StoreError};

/// How long a lease lasts (seconds).
pub const LEASE_SECS: i64 = 300;
/// A holder renews once less than this is left (seconds).
pub const RENEW_BELOW: i64 = 240;

const SUBJECT: &str = "issuer";

/// The pure decision: may `me` hold the lease at `now`, given the current holder
/// and end (if any)?
pub fn may_take(current: Option<(&str, i64)>, me: &str, now: i64) -> bool {
    match current {
        None => true,
        Some((holder, until)) => holder == me || until <= now,
    }
}

/// Take or renew the lease for `me` if [`may_take`]; returns whether `me` holds
/// it afterwards. Writes only when the lease is new or has less than
/// [`RENEW_BELOW`] left.
pub async fn acquire(store: &Store, me: &str, now: i64) -> Result<bool, StoreError> {
    let name = SecretPurpose::AcmeLease.store_name(SUBJECT);
    let mut tx = store.begin(actor()).await?;
    let cur = tx.get_by_name::<Secret>(&name).await?;
    let view = cur
        .as_ref()
        .map(|c| (c.data.public.as_str(), c.data.not_after.unwrap_or(0)));
    if !may_take(view, me, now) {
        return Ok(false);
    }
    if let Some((holder, until)) = view {
        if holder == me && until - now >= RENEW_BELOW {
            return Ok(true);
        }
    }
    let data = Secret {
        purpose: SecretPurpose::AcmeLease,
        subject: SUBJECT.into(),
        public: me.to_owned(),
        private: String::new(),
        algorithm: "lease".into(),
        not_after: Some(now + LEASE_SECS),
        uploaded: false,
        names: Vec::new(),
    };
    match cur {
        Some(c) => {
            tx.update(c.meta.id, &name, data).await?;
        }
        None => {
            tx.create(NewObject {
                name,
                owner: None,
                parent: None,
                data,
            })
            .await?;
        }
    }
    tx.commit().await?;
    Ok(true)
}

/// Give the lease up (at shutdown) if `me` holds it.
pub async fn release(store: &Store, me: &str) -> Result<(), StoreError> {
    let name = SecretPurpose::AcmeLease.store_name(SUBJECT);
    let mut tx = store.begin(actor()).await?;
    if let Some(c) = tx.get_by_name::<Secret>(&name).await? {
        if c.data.public == me {
            tx.delete(Kind::Secret, c.meta.id).await?;
            tx.commit().await?;
        }
    }
    Ok(())
}

pub(crate) fn actor() -> Actor {
    Actor {
        account: None,
        label: "acme".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::may_take;

    #[test]
    fn one_holder_until_expiry() {
        assert!(may_take(None, "a", 10));
        assert!(may_take(Some(("a", 100)), "a", 10));
        assert!(!may_take(Some(("a", 100)), "b", 10));
        assert!(may_take(Some(("a", 100)), "b", 100));
    }
}
