//! Site, mailbox, alias, DNS record and FTP account lines (like `POST /v1/sites`,
//! `/v1/mailboxes`, `/v1/aliases`, `/v1/dns-records`, `/v1/ftp-accounts`): site
//! placement by `scheduler::pick_single_server`, host names and mail addresses
//! unique across kinds, quotas under the plan, DNS coexistence
//! (`api::dns::check_coexist`), alias destinations (`api::mail::destinations`).

use model::cron::{CronCommand, CronJob, CronSchedule};
use model::dns::RecordName;
use model::entity::{Domain, FtpAccount, Kind, MailAlias, Mailbox, Site, MAIL_ADDRESS_NS};
use model::limits::LimitField;
use model::sitefiles::{PathClasses, SitePath};
use model::web::WebSettings;
use model::{
    DomainName, EmailAddress, FtpUsername, Id, LocalPart, PlacementMode, RelPath, Role, WithField,
};
use scheduler::pick_single_server;
use store::{NewObject, Stored, Tx};

use super::apply::{hash_pair, refused, same_or, Applied, Context, LineError, LineResult};
use super::diff::{diff, same_hash};
use crate::error::ApiError;

/// A site line's fields, borrowed from [`proto::v1_import::ImportLine::Site`].
pub(super) struct SiteLine<'a> {
    pub domain: &'a str,
    pub aliases: &'a [String],
    pub php: bool,
    pub mode: Option<&'a str>,
    pub https_redirect: bool,
    pub keep: &'a [String],
    pub local: &'a [String],
    /// Document root, HSTS, PHP version and values, checked like the API's.
    pub web: crate::api::site_web::WebChange<'a>,
    /// Cron jobs, checked like `POST /v1/sites/{domain}/cron`.
    pub cron: &'a [proto::v1::CreateCronJob],
}

/// A site line's cron jobs by `model::cron`'s rules (a 422 names `cron[i].schedule`
/// or `cron[i].command`), numbered 1, 2, … as the API would, at most the plan's
/// `cron_jobs`.
fn cron_jobs(
    jobs: &[proto::v1::CreateCronJob],
    limits: &model::limits::Limits,
) -> Result<Vec<CronJob>, LineError> {
    if jobs.len() as u64 > limits.cron_jobs {
        return Err(crate::limits::limit_reached(
            LimitField::CronJobs,
            format!(
                "the site lists {} cron jobs, its plan allows {} (cron_jobs)",
                jobs.len(),
                limits.cron_jobs
            ),
        )
        .into());
    }
    let mut out = Vec::with_capacity(jobs.len());
    for (i, job) in jobs.iter().enumerate() {
        let schedule = CronSchedule::parse(&job.schedule)
            .field(&format!("cron[{i}].schedule"))
            .map_err(ApiError::from)?;
        let command = CronCommand::parse(&job.command)
            .field(&format!("cron[{i}].command"))
            .map_err(ApiError::from)?;
        out.push(CronJob {
            id: u32::try_from(i + 1).unwrap_or(u32::MAX),
            schedule: schedule.to_string(),
            command: command.to_string(),
        });
    }
    Ok(out)
}

/// Cron jobs as one comparable text (`schedule command; …`), for a re-run's diff.
fn cron_text(jobs: &[CronJob]) -> String {
    jobs.iter()
        .map(|j| format!("{} {}", j.schedule, j.command))
        .collect::<Vec<_>>()
        .join("; ")
}

impl Context {
    pub(super) async fn site(&mut self, tx: &mut Tx, line: SiteLine<'_>) -> LineResult {
        let domain = self.domain_named(tx, "domain", line.domain).await?;
        let mode = match line.mode {
            Some(m) => m
                .parse::<PlacementMode>()
                .field("mode")
                .map_err(ApiError::from)?,
            None => PlacementMode::Single,
        };
        let aliases = self
            .site_aliases(tx, domain.data.customer, &domain.data.name, line.aliases)
            .await?;
        let classes = PathClasses::new(line.keep, line.local).map_err(ApiError::from)?;
        // The web settings by the API's rules (`PATCH /v1/sites/{domain}`), the
        // `php.ini` ceilings from the owner's plan.
        let limits = match domain.meta.owner {
            Some(o) => self.limits_of(tx, o).await?,
            None => self.default_plan,
        };
        let mut web = WebSettings::default();
        let cluster = domain.data.placements.get(&Role::Web).copied();
        crate::api::site_web::apply_update(&mut web, line.web, &limits, &self.php, cluster)?;
        let cron = cron_jobs(line.cron, &limits)?;
        let (php, https_redirect) = (line.php, line.https_redirect);
        if let Some(cur) = self.view.by_name::<Site>(tx, &domain.meta.name).await? {
            let s = &cur.data;
            let list = |a: &[DomainName]| {
                a.iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join(",")
            };
            let paths = |a: &[SitePath]| {
                a.iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join(",")
            };
            let docroot = |w: &WebSettings| {
                w.docroot
                    .as_ref()
                    .map_or_else(|| "/".to_owned(), ToString::to_string)
            };
            let version = |w: &WebSettings| {
                w.php
                    .version
                    .as_ref()
                    .map_or_else(|| "default".to_owned(), ToString::to_string)
            };
            let ini = |w: &WebSettings| {
                w.php
                    .ini
                    .iter()
                    .map(|(k, v)| format!("{k}={v}"))
                    .collect::<Vec<_>>()
                    .join(",")
            };
            return same_or(diff(&[
                ("php", s.php.to_string(), php.to_string()),
                ("mode", s.mode.to_string(), mode.to_string()),
                (
                    "https_redirect",
                    s.https_redirect.to_string(),
                    https_redirect.to_string(),
                ),
                ("aliases", list(&s.aliases), list(&aliases)),
                ("keep", paths(&s.files.keep), paths(&classes.keep)),
                ("local", paths(&s.files.local), paths(&classes.local)),
                ("docroot", docroot(&s.web), docroot(&web)),
                ("hsts", s.web.hsts.to_string(), web.hsts.to_string()),
                ("php_version", version(&s.web), version(&web)),
                ("php_set", ini(&s.web), ini(&web)),
                ("cron", cron_text(&s.cron), cron_text(&cron)),
            ]));
        }
        let active_server = if mode == PlacementMode::All {
            None
        } else {
            self.pick(&domain.data)
        };
        let data = Site {
            domain: domain.meta.id,
            aliases,
            cron_next_id: cron.last().map_or(0, |j| j.id),
            cron,
            cron_holder: None,
            php,
            mode,
            https_redirect,
            active_server,
            deployment: None,
            previous_deployments: Vec::new(),
            files: model::sitefiles::SiteFiles {
                keep: classes.keep,
                local: classes.local,
                ..Default::default()
            },
            web,
        };
        for k in &model::entity::Object::unique_keys(&data, &domain.meta.name) {
            if self.view.key(tx, k.ns, &k.key).await?.is_some() {
                return Err(ApiError::conflict(
                    "aliases",
                    format!("host name `{}` is already served by another site", k.key),
                )
                .into());
            }
        }
        self.create(
            tx,
            NewObject {
                name: domain.meta.name.clone(),
                owner: domain.meta.owner,
                parent: Some(domain.meta.id),
                data,
            },
        )
        .await?;
        if let Some(s) = active_server {
            self.picked.push(s);
        }
        self.cron_added |= !line.cron.is_empty();
        Ok(Applied::Created)
    }

    /// The least-loaded usable server of the domain's web cluster; counts the pick in
    /// this request's view so a bulk import spreads its sites.
    fn pick(&mut self, domain: &Domain) -> Option<Id> {
        let cluster_id = *domain.placements.get(&Role::Web)?;
        let cluster = self
            .placement
            .clusters
            .iter_mut()
            .find(|c| c.id == cluster_id)?;
        let server = pick_single_server(cluster)?;
        if let Some(s) = cluster.servers.iter_mut().find(|s| s.id == server) {
            s.load = s.load.saturating_add(1);
        }
        Some(server)
    }

    /// A site's aliases: each a name inside one of the customer's domains (the alias
    /// itself or a parent name is a domain of the customer), none twice.
    async fn site_aliases(
        &mut self,
        tx: &mut Tx,
        customer: Id,
        domain: &DomainName,
        list: &[String],
    ) -> Result<Vec<DomainName>, LineError> {
        if list.is_empty() {
            return Ok(Vec::new());
        }
        if list.len() > 100 {
            return Err(refused("a site has at most 100 aliases (field `aliases`)"));
        }
        let mut out: Vec<DomainName> = Vec::new();
        for (i, a) in list.iter().enumerate() {
            let field = format!("aliases[{i}]");
            let name = DomainName::new(a).field(&field).map_err(ApiError::from)?;
            if &name == domain || out.contains(&name) {
                return Err(ApiError::invalid(
                    field,
                    "duplicate",
                    format!("`{name}` is listed twice"),
                )
                .into());
            }
            if !self.within_own_domain(tx, customer, &name).await? {
                return Err(ApiError::invalid(
                    field,
                    "not_in_own_domain",
                    format!("`{name}` is not inside one of this customer's domains; add the domain first"),
                )
                .into());
            }
            out.push(name);
        }
        Ok(out)
    }

    /// Whether `name` is inside one of `customer`'s domains: it or one of its parent
    /// names (of two labels or more) is a domain the customer holds.
    async fn within_own_domain(
        &mut self,
        tx: &mut Tx,
        customer: Id,
        name: &DomainName,
    ) -> Result<bool, LineError> {
        let mut candidate = name.to_string();
        loop {
            if let Some(d) = self.view.by_name::<Domain>(tx, &candidate).await? {
                if d.data.customer == customer && name.is_within(&d.data.name) {
                    return Ok(true);
                }
            }
            match candidate.split_once('.') {
                Some((_, rest)) if rest.contains('.') => candidate = rest.to_owned(),
                _ => return Ok(false),
            }
        }
    }

    /// `local@domain` of an existing domain, canonical.
    async fn address(
        &mut self,
        tx: &mut Tx,
        input: &str,
    ) -> Result<(EmailAddress, LocalPart, Stored<Domain>), LineError> {
        let addr = EmailAddress::new(input)
            .field("address")
            .map_err(ApiError::from)?;
        let local = LocalPart::new(addr.local_part())
            .field("address")
            .map_err(ApiError::from)?;
        let domain = self.domain_named(tx, "address", addr.domain()).await?;
        let addr = EmailAddress::from_parts(&local, &domain.data.name);
        Ok((addr, local, domain))
    }

    /// Refuse an address held by the other kind (mailbox vs alias).
    async fn address_free(&mut self, tx: &mut Tx, addr: &EmailAddress) -> Result<(), LineError> {
        if let Some((kind, _)) = self.view.key(tx, MAIL_ADDRESS_NS, addr.as_str()).await? {
            return Err(ApiError::conflict(
                "address",
                format!("`{addr}` is already a {}", kind.as_str().replace('_', " ")),
            )
            .into());
        }
        Ok(())
    }

    pub(super) async fn mailbox(
        &mut self,
        tx: &mut Tx,
        address: &str,
        password_hash: &str,
        quota_mb: Option<u64>,
        display_name: &Option<String>,
    ) -> LineResult {
        let (addr, local, domain) = self.address(tx, address).await?;
        passhash::scheme(password_hash)
            .map_err(|e| ApiError::invalid("password_hash", "hash_scheme", e.to_string()))?;
        let display_name =
            crate::api::text_field(display_name.clone(), "display_name", 200)?.unwrap_or_default();
        if let Some(cur) = self.view.by_name::<Mailbox>(tx, addr.as_str()).await? {
            let m = &cur.data;
            let (stored_hash, file_hash) = hash_pair(
                same_hash(&m.password_hash, password_hash),
                password_hash,
                "(stored hash)",
            );
            return same_or(diff(&[
                ("display_name", m.display_name.clone(), display_name),
                (
                    "quota_mb",
                    m.quota_mb.to_string(),
                    quota_mb.unwrap_or(m.quota_mb).to_string(),
                ),
                ("password_hash", stored_hash, file_hash),
            ]));
        }
        self.address_free(tx, &addr).await?;
        let mut quota = 0;
        if let Some(owner) = domain.meta.owner {
            self.check_count(tx, owner, Kind::Mailbox).await?;
            let limits = self.limits_of(tx, owner).await?;
            quota = crate::limits::quota(
                &limits,
                LimitField::MaxMailboxQuotaMb,
                "quota_mb",
                quota_mb,
                1024,
                None,
            )?;
        }
        self.create(
            tx,
            NewObject {
                name: addr.to_string(),
                owner: domain.meta.owner,
                parent: Some(domain.meta.id),
                data: Mailbox {
                    domain: domain.meta.id,
                    local_part: local,
                    password_hash: password_hash.to_owned(),
                    quota_mb: quota,
                    display_name,
                    enabled: true,
                },
            },
        )
        .await?;
        Ok(Applied::Created)
    }

    pub(super) async fn alias(
        &mut self,
        tx: &mut Tx,
        address: &str,
        destinations: &[String],
    ) -> LineResult {
        let (addr, local, domain) = self.address(tx, address).await?;
        let dests = crate::api::mail::destinations(destinations)?;
        if dests.contains(&addr) {
            return Err(ApiError::invalid(
                "destinations",
                "loop",
                "an alias cannot forward to itself",
            )
            .into());
        }
        if let Some(cur) = self.view.by_name::<MailAlias>(tx, addr.as_str()).await? {
            let list = |d: &[EmailAddress]| {
                let mut v: Vec<String> = d.iter().map(ToString::to_string).collect();
                v.sort();
                v.join(",")
            };
            return same_or(diff(&[(
                "destinations",
                list(&cur.data.destinations),
                list(&dests),
            )]));
        }
        self.address_free(tx, &addr).await?;
        self.create(
            tx,
            NewObject {
                name: addr.to_string(),
                owner: domain.meta.owner,
                parent: Some(domain.meta.id),
                data: MailAlias {
                    domain: domain.meta.id,
                    local_part: local,
                    destinations: dests,
                },
            },
        )
        .await?;
        Ok(Applied::Created)
    }

    pub(super) async fn record(
        &mut self,
        tx: &mut Tx,
        domain: &str,
        name: &str,
        ttl: Option<u32>,
        data: &serde_json::Value,
    ) -> LineResult {
        let domain = self.domain_named(tx, "domain", domain).await?;
        let name = RecordName::new(name)
            .field("name")
            .map_err(ApiError::from)?;
        name.check_in_zone(&domain.data.name)
            .field("name")
            .map_err(ApiError::from)?;
        let data = crate::api::dns::parse_data(data.clone(), &name)?;
        let ttl = crate::api::dns::ttl(ttl)?;
        let zone = self.view.zone(tx, domain.meta.id).await?;
        // Records are many per name: an identical one means this line ran before.
        if zone
            .iter()
            .any(|(n, d, t)| *n == name && *d == data && *t == ttl)
        {
            return Ok(Applied::Skipped);
        }
        let existing: Vec<_> = zone
            .iter()
            .map(|(n, d, _)| (n.clone(), d.clone()))
            .collect();
        crate::api::dns::check_coexist(&existing, &name, &data)?;
        zone.push((name.clone(), data.clone(), ttl));
        let record = crate::api::dns::new_record(&domain, name, ttl, data);
        self.create(tx, record).await?;
        Ok(Applied::Created)
    }

    pub(super) async fn ftp(
        &mut self,
        tx: &mut Tx,
        username: &str,
        domain: &str,
        password_hash: &str,
        home: Option<&str>,
        quota_mb: Option<u64>,
    ) -> LineResult {
        let username = FtpUsername::new(username)
            .field("username")
            .map_err(ApiError::from)?;
        let domain = self.domain_named(tx, "domain", domain).await?;
        let home = match home {
            Some(h) => RelPath::new(h).field("home").map_err(ApiError::from)?,
            None => RelPath::root(),
        };
        passhash::scheme(password_hash)
            .map_err(|e| ApiError::invalid("password_hash", "hash_scheme", e.to_string()))?;
        if let Some(cur) = self
            .view
            .by_name::<FtpAccount>(tx, username.as_str())
            .await?
        {
            let f = &cur.data;
            let (stored_hash, file_hash) = hash_pair(
                same_hash(&f.password_hash, password_hash),
                password_hash,
                "(stored hash)",
            );
            let stored_domain = self.name_of::<Domain>(tx, f.domain).await?;
            return same_or(diff(&[
                ("domain", stored_domain, domain.meta.name.clone()),
                ("home", f.home.to_string(), home.to_string()),
                (
                    "quota_mb",
                    f.quota_mb.to_string(),
                    quota_mb.unwrap_or(f.quota_mb).to_string(),
                ),
                ("password_hash", stored_hash, file_hash),
            ]));
        }
        let mut quota = 0;
        if let Some(owner) = domain.meta.owner {
            self.check_count(tx, owner, Kind::FtpAccount).await?;
            let limits = crate::limits::ftp_limits(self.limits_of(tx, owner).await?);
            quota = crate::limits::quota(
                &limits,
                LimitField::MaxFtpQuotaMb,
                "quota_mb",
                quota_mb,
                limits.max_ftp_quota_mb,
                None,
            )?;
        }
        self.create(
            tx,
            NewObject {
                name: username.to_string(),
                owner: domain.meta.owner,
                parent: Some(domain.meta.id),
                data: FtpAccount {
                    domain: domain.meta.id,
                    username,
                    password_hash: password_hash.to_owned(),
                    home,
                    quota_mb: quota,
                },
            },
        )
        .await?;
        Ok(Applied::Created)
    }
}
