//! Customer and domain lines (like `POST /v1/customers` and `/v1/domains`): a
//! domain is placed by `scheduler::place_domain` on the customer's default clusters
//! or the operator's, counts against the plan, and obeys name ownership per
//! registrable domain (`ownership::decide`; an import proves no TXT challenge).

use std::collections::BTreeMap;

use model::entity::{Account, Cluster, Domain, Kind, Plan};
use model::namespace::registrable;
use model::{AccountKind, DomainName, EmailAddress, Role, Slug, WithField};
use scheduler::{place_domain, DomainRequest};
use store::{NewObject, Tx};

use super::apply::{hash_pair, refused, same_or, Applied, Context, LineResult};
use super::diff::{diff, same_hash};
use crate::error::ApiError;

impl Context {
    #[allow(clippy::too_many_arguments)]
    pub(super) async fn customer(
        &mut self,
        tx: &mut Tx,
        name: &str,
        display_name: &Option<String>,
        email: &Option<String>,
        reseller: &Option<String>,
        password_hash: &Option<String>,
        plan: &Option<String>,
    ) -> LineResult {
        let name = Slug::new(name).field("name").map_err(ApiError::from)?;
        let display_name =
            crate::api::text_field(display_name.clone(), "display_name", 200)?.unwrap_or_default();
        let email = email
            .as_deref()
            .map(EmailAddress::new)
            .transpose()
            .field("email")
            .map_err(ApiError::from)?;
        if let Some(h) = password_hash {
            passhash::scheme(h)
                .map_err(|e| ApiError::invalid("password_hash", "hash_scheme", e.to_string()))?;
        }
        let reseller_id = match reseller.as_deref() {
            None => None,
            Some(r) => match self.view.by_name::<Account>(tx, r).await? {
                Some(a) if a.data.kind == AccountKind::Reseller => Some(a.meta.id),
                _ => {
                    return Err(ApiError::invalid(
                        "reseller",
                        "unknown_reseller",
                        format!("there is no reseller `{r}`"),
                    )
                    .into())
                }
            },
        };
        let plan_id = match plan.as_deref() {
            None => None,
            Some(p) => match self.view.by_name::<Plan>(tx, p).await? {
                Some(pl) if pl.meta.owner.is_none() || pl.meta.owner == reseller_id => {
                    Some(pl.meta.id)
                }
                _ => {
                    return Err(ApiError::invalid(
                        "plan",
                        "unknown_plan",
                        format!("there is no plan `{p}` for this account"),
                    )
                    .into())
                }
            },
        };
        if let Some(cur) = self.view.by_name::<Account>(tx, name.as_str()).await? {
            let a = &cur.data;
            let hash_same = match (&a.password_hash, password_hash) {
                (Some(s), Some(f)) => same_hash(s, f),
                (None, None) => true,
                _ => false,
            };
            let (stored_hash, file_hash) = hash_pair(
                hash_same,
                password_hash.as_deref().unwrap_or_default(),
                "(stored hash)",
            );
            let d = diff(&[
                (
                    "kind",
                    a.kind.to_string(),
                    AccountKind::Customer.to_string(),
                ),
                ("display_name", a.display_name.clone(), display_name),
                (
                    "email",
                    a.email
                        .as_ref()
                        .map(ToString::to_string)
                        .unwrap_or_default(),
                    email.map(|e| e.to_string()).unwrap_or_default(),
                ),
                (
                    "reseller",
                    format!("{:?}", a.reseller),
                    format!("{reseller_id:?}"),
                ),
                ("plan", format!("{:?}", a.plan), format!("{plan_id:?}")),
                ("password_hash", stored_hash, file_hash),
            ]);
            return same_or(d);
        }
        self.create(
            tx,
            NewObject {
                name: name.to_string(),
                owner: None,
                parent: reseller_id,
                data: Account {
                    name,
                    kind: AccountKind::Customer,
                    display_name,
                    email,
                    reseller: reseller_id,
                    default_clusters: BTreeMap::new(),
                    password_hash: password_hash.clone(),
                    disabled: false,
                    db_quota_mb: None,
                    plan: plan_id,
                    limits: Default::default(),
                    may_choose_clusters: false,
                },
            },
        )
        .await?;
        Ok(Applied::Created)
    }

    pub(super) async fn domain(&mut self, tx: &mut Tx, name: &str, customer: &str) -> LineResult {
        let name = DomainName::new(name)
            .field("name")
            .map_err(ApiError::from)?;
        let owner = self.customer_named(tx, customer).await?;
        if let Some(cur) = self.view.by_name::<Domain>(tx, name.as_str()).await? {
            let stored_owner = self.name_of::<Account>(tx, cur.data.customer).await?;
            return same_or(diff(&[("customer", stored_owner, owner.meta.name.clone())]));
        }
        // Name ownership as for the API: one account per registrable domain (an
        // import proves no TXT challenge).
        let reg = registrable(&name).field("name").map_err(ApiError::from)?;
        let holders = self.view.holders(tx, reg.as_str()).await?;
        if let Err(crate::ownership::Refusal::OwnedElsewhere(names)) =
            crate::ownership::decide(owner.meta.id, &holders, false)
        {
            return Err(ApiError::conflict(
                "name",
                format!(
                    "names under `{reg}` belong to another account ({}); an admin transfer moves them",
                    names.join(", ")
                ),
            )
            .with_rule("namespace_owned")
            .into());
        }
        let customer_defaults = owner.data.domain_role_defaults();
        let plan = place_domain(
            &self.clusters,
            &DomainRequest {
                roles: Role::DOMAIN_ROLES.to_vec(),
                explicit: BTreeMap::new(),
                customer_defaults,
            },
        )
        .map_err(|e| ApiError::infeasible(e.to_string()))?;
        for (role, id) in &plan.placements {
            if self.verified_clusters.contains(id) {
                continue;
            }
            match self.view.by_id::<Cluster>(tx, *id).await? {
                Some(c) if c.data.role == *role => {
                    self.verified_clusters.insert(*id);
                }
                _ => {
                    return Err(refused(format!(
                        "the {role} cluster chosen was removed meanwhile; run the import again"
                    )))
                }
            }
        }
        self.check_count(tx, owner.meta.id, Kind::Domain).await?;
        let created = self
            .create(
                tx,
                NewObject {
                    name: name.to_string(),
                    owner: Some(owner.meta.id),
                    parent: Some(owner.meta.id),
                    data: Domain {
                        name,
                        customer: owner.meta.id,
                        placements: plan.placements,
                    },
                },
            )
            .await?;
        self.view.hold(
            reg.as_str(),
            created.meta.id,
            &created.meta.name,
            owner.meta.id,
        );
        Ok(Applied::Created)
    }
}
