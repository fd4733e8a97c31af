//! Who may hold a domain name. Names are owned per registrable domain (the Public
//! Suffix List's eTLD+1, [`model::namespace::registrable`]): the account holding any
//! name under `example.co.uk` owns that namespace, and another account may add a name
//! under it only after an admin transfer (`POST /v1/domain-transfers`) or by proving
//! control with TXT `_hostplane-challenge.<registrable>` = its token
//! ([`challenge_token`]), looked up through `[names] resolver`.
//!
//! - Public suffixes themselves (`co.uk`) are refused (422 `public_suffix`).
//! - The platform's zones (`[names] platform_zones` and the registrable domains of
//!   the servers' host names, which every zone's NS and MX point at): admins only
//!   (403 `platform_zone`).
//! - Mixed-script lookalikes (UTS #39): admins only (422 `mixed_script`).
//! - The namespace check runs inside the store transaction that creates the domain
//!   ([`NameClaim::check`]); writers are serialised, so two accounts racing for one
//!   namespace cannot both win. The DNS proof is looked up before the transaction.
//! - At start, [`report_conflicts`] logs and records an event for every namespace
//!   held by more than one account and every customer name in a platform zone;
//!   nothing is deleted.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;

use model::entity::{Account, Domain, Kind, Server};
use model::namespace::{check_lookalike, registrable};
use model::{DomainName, Id, WithField};
use store::{Actor, Stored, Tx};

use crate::auth::Caller;
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;

/// Label of the TXT record that proves control of a registrable domain.
pub const CHALLENGE_LABEL: &str = "_hostplane-challenge";

/// Owner name of the proof record for `registrable`.
pub fn challenge_record(registrable: &DomainName) -> String {
    format!("{CHALLENGE_LABEL}.{registrable}")
}

/// The TXT value that proves `account` may add names under `registrable`.
///
/// Derived, not stored: a hash of the account (id, name, creation time) and the
/// registrable domain. It need not be secret: only whoever controls the domain's DNS
/// can publish it, and publishing it says "this account may use my names".
pub fn challenge_token(account: &Stored<Account>, registrable: &DomainName) -> String {
    let mut h = blake3::Hasher::new_derive_key("hostplane domain challenge v1");
    h.update(&account.meta.id.to_le_bytes());
    h.update(account.meta.name.as_bytes());
    h.update(&[0]);
    h.update(&account.meta.created_at.unix_timestamp_nanos().to_le_bytes());
    h.update(registrable.as_str().as_bytes());
    let hex = h.finalize().to_hex();
    format!("hostplane-{}", &hex.as_str()[..32])
}

/// Why a name may not be added to an account's namespace (pure decision).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// Other accounts hold these names under the registrable domain.
    OwnedElsewhere(Vec<String>),
}

/// May `owner` add a name under a registrable domain whose names are `holders`
/// (id, name, owner)? Yes if nobody else holds one, or if it proved control. Pure.
pub fn decide(
    owner: Id,
    holders: &[(Id, String, Option<Id>)],
    proven: bool,
) -> Result<(), Refusal> {
    let others: Vec<String> = holders
        .iter()
        .filter(|(_, _, o)| *o != Some(owner))
        .map(|(_, n, _)| n.clone())
        .collect();
    if others.is_empty() || proven {
        Ok(())
    } else {
        Err(Refusal::OwnedElsewhere(others))
    }
}

/// A name checked before its transaction: the rules that need no lock, and the DNS
/// proof if one is needed. [`NameClaim::check`] finishes inside the transaction.
#[derive(Debug, Clone)]
pub struct NameClaim {
    name: DomainName,
    registrable: DomainName,
    owner: Id,
    token: String,
    /// Ok if the TXT proof was found; Err(why not) if it was looked for and not
    /// found, or not looked for (nobody else held a name before the transaction).
    proof: Result<(), String>,
}

/// Check a new domain `name` for `owner` (see the module doc); call
/// [`NameClaim::check`] inside the transaction that creates it.
pub async fn prepare(
    state: &AppState,
    caller: &Caller,
    owner: &Stored<Account>,
    name: &DomainName,
) -> ApiResult<NameClaim> {
    let reg = registrable(name).field("name")?;
    if !caller.is_admin() {
        check_lookalike(name).field("name")?;
        if let Some(zone) = platform_zones(state)
            .await?
            .into_iter()
            .find(|z| name.is_within(z))
        {
            return Err(ApiError::forbidden(format!(
                "`{name}` is in `{zone}`, the platform's own zone (its servers' names live \
                 there); only administrators add names there"
            ))
            .with_field("name")
            .with_rule("platform_zone"));
        }
    }
    let token = challenge_token(owner, &reg);
    let holders = state.store.domains_under(reg.as_str()).await?;
    let proof = if decide(owner.meta.id, &holders, false).is_ok() {
        Err(format!(
            "another account added a name under `{reg}` meanwhile; no TXT proof was looked for"
        ))
    } else {
        let record = challenge_record(&reg);
        let resolver = state.config.names.resolver();
        match txt_values(resolver, &record).await {
            Ok(values) if values.contains(&token) => Ok(()),
            Ok(_) => Err(format!(
                "TXT `{record}` does not hold `{token}` (asked {resolver})"
            )),
            Err(e) => Err(format!(
                "TXT `{record}` lookup through {resolver} failed: {e}"
            )),
        }
    };
    Ok(NameClaim {
        name: name.clone(),
        registrable: reg,
        owner: owner.meta.id,
        token,
        proof,
    })
}

impl NameClaim {
    /// The namespace check, race-free inside `tx`: 409 `owned_by_another_account` if
    /// another account holds a name under the registrable domain and no proof was found.
    pub async fn check(&self, tx: &mut Tx) -> ApiResult<()> {
        let holders = tx.domains_under(self.registrable.as_str()).await?;
        match decide(self.owner, &holders, self.proof.is_ok()) {
            Ok(()) => Ok(()),
            Err(Refusal::OwnedElsewhere(_)) => {
                let why = self
                    .proof
                    .as_ref()
                    .err()
                    .map_or(String::new(), |w| format!(" ({w})"));
                Err(ApiError::conflict(
                    "name",
                    format!(
                        "`{}` is under `{reg}`, whose names belong to another account; ask an \
                         administrator to transfer `{reg}`, or prove control of it: publish TXT \
                         `{}` = `{}` and add the domain again{why}",
                        self.name,
                        challenge_record(&self.registrable),
                        self.token,
                        reg = self.registrable,
                    ),
                )
                .with_rule("owned_by_another_account"))
            }
        }
    }
}

/// The platform's zones: `[names] platform_zones` plus the registrable domain of
/// every server's host name.
pub async fn platform_zones(state: &AppState) -> ApiResult<Vec<DomainName>> {
    let mut zones: BTreeSet<DomainName> =
        state.config.names.platform_zones.iter().cloned().collect();
    for s in state.store.all::<Server>().await? {
        if let Ok(z) = registrable(&s.data.hostname) {
            zones.insert(z);
        }
    }
    Ok(zones.into_iter().collect())
}

/// The TXT strings at `name` (each record's strings joined), asked of `resolver`
/// ([`crate::dnsq`]: UDP, TCP if the answer is truncated).
pub async fn txt_values(resolver: SocketAddr, name: &str) -> Result<Vec<String>, String> {
    use hickory_proto::op::ResponseCode;
    use hickory_proto::rr::{Name, RecordType};

    let mut qname = Name::from_ascii(name).map_err(|e| e.to_string())?;
    qname.set_fqdn(true);
    let resp = crate::dnsq::query(resolver, &qname, RecordType::TXT).await?;
    match resp.metadata.response_code {
        ResponseCode::NoError | ResponseCode::NXDomain => {}
        rc => return Err(format!("the resolver answered {rc}")),
    }
    Ok(crate::dnsq::texts(&resp, RecordType::TXT))
}

/// One conflict found in an existing store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Conflict {
    /// Names under one registrable domain held by several accounts.
    SharedNamespace {
        /// The registrable domain.
        registrable: String,
        /// Holding accounts (ids) and their names there.
        holders: BTreeMap<Option<Id>, Vec<String>>,
    },
    /// A customer's name inside a platform zone.
    PlatformName {
        /// The platform zone.
        zone: String,
        /// The name.
        name: String,
        /// Its owner.
        owner: Option<Id>,
    },
}

/// Conflicts among `domains` (name, owner) given the platform `zones`. Pure.
pub fn find_conflicts(domains: &[(DomainName, Option<Id>)], zones: &[DomainName]) -> Vec<Conflict> {
    let mut by_reg: BTreeMap<String, BTreeMap<Option<Id>, Vec<String>>> = BTreeMap::new();
    let mut out = Vec::new();
    for (name, owner) in domains {
        let key = registrable(name).map_or_else(|_| name.to_string(), |r| r.to_string());
        by_reg
            .entry(key)
            .or_default()
            .entry(*owner)
            .or_default()
            .push(name.to_string());
        if let Some(z) = zones.iter().find(|z| name.is_within(z)) {
            out.push(Conflict::PlatformName {
                zone: z.to_string(),
                name: name.to_string(),
                owner: *owner,
            });
        }
    }
    for (registrable, holders) in by_reg {
        if holders.len() > 1 {
            out.push(Conflict::SharedNamespace {
                registrable,
                holders,
            });
        }
    }
    out
}

/// Check an existing store at start: every conflict is logged and recorded as an
/// `ownership.conflict` event (visible to admins); nothing is changed or deleted.
/// Returns how many were found.
pub async fn report_conflicts(state: &AppState) -> ApiResult<usize> {
    let domains: Vec<(DomainName, Option<Id>)> = state
        .store
        .all::<Domain>()
        .await?
        .into_iter()
        .map(|d| (d.data.name, d.meta.owner))
        .collect();
    let zones = platform_zones(state).await?;
    let conflicts = find_conflicts(&domains, &zones);
    if conflicts.is_empty() {
        return Ok(0);
    }
    let mut tx = state
        .store
        .begin(Actor {
            account: None,
            label: "ownership-check".into(),
        })
        .await?;
    for c in &conflicts {
        let detail = match c {
            Conflict::SharedNamespace {
                registrable,
                holders,
            } => {
                let accounts: Vec<serde_json::Value> = holders
                    .iter()
                    .map(|(o, names)| serde_json::json!({"account": o, "domains": names}))
                    .collect();
                tracing::warn!(%registrable, holders = ?holders,
                    "names under one registrable domain are held by several accounts; \
                     resolve with `hostplane domain transfer`");
                serde_json::json!({"rule": "shared_namespace", "registrable": registrable,
                        "holders": accounts,
                        "message": format!("names under `{registrable}` are held by {} accounts; \
                            transfer them to one (hostplane domain transfer)", holders.len())})
            }
            Conflict::PlatformName { zone, name, owner } => {
                tracing::warn!(%zone, %name, owner = ?owner,
                    "a customer holds a name in the platform's own zone");
                serde_json::json!({"rule": "platform_zone", "zone": zone, "domain": name,
                        "account": owner,
                        "message": format!("`{name}` is in the platform zone `{zone}` but held \
                            by a customer")})
            }
        };
        tx.event("ownership.conflict", Kind::Domain, None, None, detail)
            .await?;
    }
    tx.commit().await?;
    Ok(conflicts.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> DomainName {
        DomainName::new(s).unwrap()
    }

    #[test]
    fn decisions() {
        let holders = vec![
            (1, "a.com".to_owned(), Some(10)),
            (2, "x.a.com".into(), Some(10)),
        ];
        assert_eq!(decide(10, &holders, false), Ok(()));
        assert_eq!(decide(10, &[], false), Ok(()));
        assert_eq!(
            decide(11, &holders, false),
            Err(Refusal::OwnedElsewhere(vec![
                "a.com".into(),
                "x.a.com".into()
            ]))
        );
        assert_eq!(decide(11, &holders, true), Ok(()));
    }

    #[test]
    fn conflicts_found() {
        let domains = vec![
            (d("a.com"), Some(1)),
            (d("www.a.com"), Some(2)),
            (d("b.com"), Some(1)),
            (d("shop.b.com"), Some(1)),
            (d("evil.hosting.test"), Some(3)),
        ];
        let c = find_conflicts(&domains, &[d("hosting.test")]);
        assert_eq!(c.len(), 2, "{c:?}");
        assert!(
            matches!(&c[0], Conflict::PlatformName { name, .. } if name == "evil.hosting.test")
        );
        assert!(
            matches!(&c[1], Conflict::SharedNamespace { registrable, .. } if registrable == "a.com")
        );
    }
}
