//! A site's web settings in the API (issue 15): the document root, HSTS, the PHP
//! version and `php.ini` values of `PATCH /v1/sites/{domain}` and `SiteView`, and
//! the PHP versions the site's web servers reported (`RoleReport::Web`).
//!
//! The rules are `model::web`'s; this module only names the request field of a
//! failure (a 422 says `php_set.memory_limit`, `docroot` …), reads the owner's plan
//! for the ceilings, and refuses a PHP version the site's web servers lack.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use model::entity::{Secret, SecretPurpose, Site};
use model::web::{DocRoot, PhpCeilings, PhpVersion, WebSettings};
use model::{Id, Role, WithField};
use proto::agent_v1::{PhpInstalled, RoleReport, WebReport};
use proto::v1::{SiteMailSpooled, SiteView, UpdateSite};

use crate::error::{ApiError, ApiResult};
use crate::state::AppState;

/// The web servers' last reports, read once per request.
pub struct PhpInfo {
    /// Each web server's cluster, name and last report (servers that reported).
    reports: Vec<(Id, String, Arc<RoleReport>)>,
}

impl PhpInfo {
    /// The reports of the web servers among `servers` as the health monitor
    /// holds them now.
    pub fn new(state: &AppState, servers: &[store::Stored<model::entity::Server>]) -> Self {
        let reports = servers
            .iter()
            .filter(|s| s.data.role == Role::Web)
            .filter_map(|s| {
                let report = state.health.report(s.meta.id)?;
                Some((s.data.cluster, s.meta.name.clone(), report))
            })
            .collect();
        Self { reports }
    }

    /// The web reports of cluster `cluster`'s servers, with their names.
    fn web(&self, cluster: Option<Id>) -> impl Iterator<Item = (&str, &WebReport)> {
        self.reports
            .iter()
            .filter(move |(c, _, _)| Some(*c) == cluster)
            .filter_map(|(_, name, r)| match r.as_ref() {
                RoleReport::Web(w) => Some((name.as_str(), w)),
                _ => None,
            })
    }

    fn of(&self, cluster: Option<Id>) -> impl Iterator<Item = &[PhpInstalled]> {
        self.web(cluster).map(|(_, w)| w.php.as_slice())
    }

    /// `domain`'s `mail()` messages waiting on the servers of web cluster
    /// `cluster`, as each last reported.
    pub fn mail_spooled(&self, cluster: Option<Id>, domain: &str) -> Vec<SiteMailSpooled> {
        let mut out: Vec<SiteMailSpooled> = self
            .web(cluster)
            .filter_map(|(server, w)| {
                let m = w.mail_spool.iter().find(|m| m.domain == domain)?;
                let oldest = i64::try_from(m.oldest)
                    .ok()
                    .and_then(|t| time::OffsetDateTime::from_unix_timestamp(t).ok())
                    .map(super::rfc3339)
                    .unwrap_or_default();
                Some(SiteMailSpooled {
                    server: server.to_owned(),
                    messages: m.messages,
                    oldest,
                    last_error: m.last_error.clone(),
                })
            })
            .collect();
        out.sort_by(|a, b| a.server.cmp(&b.server));
        out
    }

    /// The versions every reporting server of web cluster `cluster` has (a site's
    /// pool runs on each of them, so one lacking the version could not serve it).
    pub fn available(&self, cluster: Option<Id>) -> Vec<String> {
        let mut common: Option<BTreeSet<String>> = None;
        for php in self.of(cluster) {
            let have: BTreeSet<String> = php.iter().map(|p| p.version.clone()).collect();
            common = Some(match common {
                None => have,
                Some(c) => c.intersection(&have).cloned().collect(),
            });
        }
        common.unwrap_or_default().into_iter().collect()
    }

    /// The version a site runs: `chosen`, else the servers' default; with the
    /// full version (`8.2.28`) when a server reported it.
    pub fn effective(&self, cluster: Option<Id>, chosen: Option<&PhpVersion>) -> Option<String> {
        let all: Vec<&PhpInstalled> = self.of(cluster).flatten().collect();
        let pick = match chosen {
            Some(v) => all.iter().find(|p| p.version == v.as_str()),
            None => all.iter().find(|p| p.default),
        };
        match (pick, chosen) {
            (Some(p), _) => Some(p.full.clone().unwrap_or_else(|| p.version.clone())),
            (None, Some(v)) => Some(v.to_string()),
            (None, None) => None,
        }
    }
}

/// The web settings one request changes, from `PATCH /v1/sites/{domain}` or an
/// import line: both go through [`apply_update`], one set of rules.
#[derive(Debug, Default, Clone, Copy)]
pub struct WebChange<'a> {
    /// New document root (`/` or empty: the whole tree).
    pub docroot: Option<&'a str>,
    /// HSTS on/off.
    pub hsts: Option<bool>,
    /// PHP version, `default` for the servers' default.
    pub php_version: Option<&'a str>,
    /// `php.ini` values to set.
    pub php_set: Option<&'a BTreeMap<String, String>>,
    /// `php.ini` keys back to their default.
    pub php_unset: Option<&'a [String]>,
}

impl<'a> From<&'a UpdateSite> for WebChange<'a> {
    fn from(req: &'a UpdateSite) -> Self {
        Self {
            docroot: req.docroot.as_deref(),
            hsts: req.hsts,
            php_version: req.php_version.as_deref(),
            php_set: req.php_set.as_ref(),
            php_unset: req.php_unset.as_deref(),
        }
    }
}

impl WebChange<'_> {
    /// Whether it changes anything (then the PHP reports need not be read).
    pub fn is_empty(&self) -> bool {
        self.docroot.is_none()
            && self.hsts.is_none()
            && self.php_version.is_none()
            && self.php_set.is_none()
            && self.php_unset.is_none()
    }
}

/// Apply a web change to `web` (the stored settings, read inside the writing
/// transaction): each value checked by `model::web`'s rules, the `php.ini`
/// limits against `limits` (the owner's plan), a PHP version against what every
/// server of the site's web cluster reported.
pub fn apply_update(
    web: &mut WebSettings,
    req: WebChange<'_>,
    limits: &model::limits::Limits,
    php: &PhpInfo,
    cluster: Option<Id>,
) -> ApiResult<()> {
    if let Some(d) = req.docroot {
        web.docroot = DocRoot::parse(d).field("docroot")?;
    }
    if let Some(h) = req.hsts {
        web.hsts = h;
    }
    if let Some(v) = req.php_version {
        web.php.version = match v {
            "default" | "" => None,
            v => {
                let v = PhpVersion::new(v).field("php_version")?;
                let have = php.available(cluster);
                if !have.iter().any(|h| h == v.as_str()) {
                    let message = if have.is_empty() {
                        format!("PHP {v} cannot be checked: no web server of the site's cluster has reported its PHP versions yet")
                    } else {
                        format!(
                            "PHP {v} is not installed on every web server of the site's cluster; they have: {}",
                            have.join(", ")
                        )
                    };
                    return Err(ApiError::invalid(
                        "php_version",
                        "php_not_installed",
                        message,
                    ));
                }
                Some(v)
            }
        };
    }
    let ceilings = PhpCeilings::from(limits);
    for (i, key) in req.php_unset.into_iter().flatten().enumerate() {
        web.php.unset(key).field(&format!("php_unset[{i}]"))?;
    }
    for (key, value) in req.php_set.into_iter().flatten() {
        web.php
            .set(key, value, &ceilings)
            .field(&format!("php_set.{key}"))?;
    }
    Ok(())
}

/// Fill `view`'s web fields from `site`.
pub async fn fill_view(
    state: &AppState,
    view: &mut SiteView,
    site: &Site,
    php: &PhpInfo,
    cluster: Option<Id>,
) -> ApiResult<()> {
    let web = &site.web;
    view.docroot = web
        .docroot
        .as_ref()
        .map_or_else(|| "/".to_owned(), ToString::to_string);
    view.hsts = web.hsts;
    view.hsts_active = web.hsts && trusted_cert(state, &view.domain).await?;
    view.php_version = web.php.version.as_ref().map(ToString::to_string);
    view.php_version_effective = php.effective(cluster, web.php.version.as_ref());
    view.php_versions_available = php.available(cluster);
    view.php_ini = web.php.ini.clone();
    view.mail_spooled = php.mail_spooled(cluster, &view.domain);
    Ok(())
}

/// Whether the site's certificate is uploaded or issued by ACME (trusted by
/// browsers), the builder's rule for sending HSTS.
async fn trusted_cert(state: &AppState, domain: &str) -> ApiResult<bool> {
    let name = SecretPurpose::SiteCert.store_name(domain);
    Ok(state
        .store
        .get_by_name::<Secret>(store::Scope::All, &name)
        .await?
        .is_some_and(|s| s.data.uploaded || crate::acme::is_acme_cert(&s.data)))
}
