//! The engine plan: the pure translation of the controller's [`WebConfig`] into what
//! the server looks up per request (host → site, site → content root, certificate,
//! PHP pool). [`render`] does no I/O; the server swaps whole plans atomically.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use model::web::{DocRoot, PhpSettings, PhpVersion};
use model::DomainName;
use proto::agent_v1::{RejectedObject, WebConfig, WebSite};
use rustls::sign::CertifiedKey;

use crate::tls;

/// Where the engine keeps things on disk (the inputs of [`render`] besides the config).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layout {
    /// Site content: `<content_root>/<domain>/current/` is served (`current -> tree`,
    /// the writable tree a site's replica keeps, [`crate::replicate`]).
    pub content_root: PathBuf,
    /// PHP-FPM runtime directory: pool sockets and per-site temp dirs live here.
    pub php_dir: PathBuf,
    /// The PHP versions this server has (`8.2`; [`crate::fpm::installed`]): a
    /// site asking for another one is rejected (it keeps its previous version).
    pub php_versions: Vec<String>,
    /// The shared session store, when PHP's sessions go there ([`crate::sessions`]).
    pub sessions: Option<SessionsLayout>,
    /// PHP's `sendmail_path` for every pool (`hostplane sendmail --socket … -t
    /// -i`, [`crate::mailer`]); `None`: PHP's default.
    pub sendmail_path: Option<String>,
}

/// Where PHP pools keep their sessions when the engine runs the session store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionsLayout {
    /// The store's unix socket.
    pub socket: PathBuf,
    /// The PHP versions whose php-fpm has the `redis` extension (its session handler).
    pub versions: Vec<String>,
    /// Whether the default php-fpm (sites without a chosen version) has it.
    pub default: bool,
}

impl Layout {
    /// The usual layout under an engine state directory: `content/` and `php/`.
    pub fn under(state_dir: &Path) -> Self {
        Self {
            content_root: state_dir.join("content"),
            php_dir: state_dir.join("php"),
            php_versions: Vec::new(),
            sessions: None,
            sendmail_path: None,
        }
    }
}

/// A name is not a host name ([`normalize_host`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RenderError {
    /// A domain or alias is not a valid lowercase host name.
    #[error("`{0}` is not a valid host name")]
    BadHost(String),
}

/// PHP settings of a site whose `php` flag is on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PhpSite {
    /// Pool name, also the site's system user (≤ 32 characters).
    pub user: String,
    /// The pool's FastCGI unix socket.
    pub socket: PathBuf,
    /// The site's private temp dir (uploads, sessions), inside `open_basedir`.
    pub tmp_dir: PathBuf,
    /// The site's content dir `<content_root>/<domain>` (the `open_basedir` root).
    pub site_dir: PathBuf,
    /// The PHP version of the pool (`8.2`); `None`: the server's default php-fpm.
    pub version: Option<String>,
    /// The pool's `php_admin_value[…]`/`php_value[…]` lines of the site's
    /// `php.ini` values and the engine's defaults (checked by `model::web`).
    pub ini: Vec<String>,
    /// The shared session store's socket (`None`: sessions are files in `tmp_dir`).
    pub sessions: Option<PathBuf>,
}

/// One site as the server sees it.
#[derive(Debug)]
pub struct Site {
    /// Primary host name.
    pub domain: String,
    /// Further host names.
    pub aliases: Vec<String>,
    /// Whether this server serves the site now (inactive sites are only synced).
    pub active: bool,
    /// Redirect plain HTTP to HTTPS (only when the site has a certificate).
    pub https_redirect: bool,
    /// Send `Strict-Transport-Security` on HTTPS answers (the controller sets it
    /// only with a trusted certificate).
    pub hsts: bool,
    /// The folder of the tree served (normalised `model::web::DocRoot`), `None`:
    /// the tree; opened beneath `root` by [`crate::fsafe::RootCache`].
    pub docroot: Option<String>,
    /// The directory served: `<content_root>/<domain>/current`.
    pub root: PathBuf,
    /// PHP through FastCGI, when on.
    pub php: Option<PhpSite>,
    /// The certificate and key, when the site has (valid) TLS material.
    pub cert: Option<Arc<CertifiedKey>>,
    /// The site's directory `<content_root>/<domain>` (holds `current`).
    pub site_dir: PathBuf,
    /// The open root, revalidated per request.
    pub root_cache: crate::fsafe::RootCache,
    /// The host names of the domain's mail cluster for its mail clients
    /// (`SiteMail::client_names`, else `SiteMail::client_host` for every
    /// protocol): set, the site answers the autoconfig documents
    /// ([`crate::autoconfig`]).
    pub mail_client_host: Option<crate::autoconfig::ClientHosts>,
}

#[cfg(test)]
impl Site {
    /// A site with nothing on disk, for pure tests.
    pub(crate) fn for_test(domain: &str) -> Self {
        Site {
            domain: domain.to_owned(),
            aliases: Vec::new(),
            active: true,
            https_redirect: false,
            hsts: false,
            docroot: None,
            root: PathBuf::from("/nonexistent/current"),
            php: None,
            cert: None,
            site_dir: PathBuf::from("/nonexistent"),
            root_cache: crate::fsafe::RootCache::with_docroot(None),
            mail_client_host: None,
        }
    }
}

/// Everything the server needs to answer requests; swapped as one `Arc`.
#[derive(Debug, Default)]
pub struct Plan {
    hosts: HashMap<String, Arc<Site>>,
    sites: Vec<Arc<Site>>,
    /// Problems that did not stop the plan (e.g. a site's certificate did not parse,
    /// so that site is served on HTTP only). Reported in the engine's health.
    pub warnings: Vec<String>,
    /// Each site as rendered, by its config domain, with the content hash of its
    /// config: an unchanged site is carried into the next plan as the same `Arc`
    /// (certificate parsed once, open-root cache kept), so a change to one site
    /// touches no other.
    rendered: HashMap<String, Rendered>,
    /// Pending ACME HTTP-01 challenges by token: the name each is for and the key
    /// authorization to answer ([`WebConfig::acme_challenges`]).
    acme: HashMap<String, (String, String)>,
}

/// A site's rendering and the config it came from.
#[derive(Debug, Clone)]
struct Rendered {
    hash: [u8; 32],
    site: Arc<Site>,
    warnings: Vec<String>,
}

/// `std::hash::Hasher` that gathers a value's `Hash` writes into a buffer, hashed
/// with BLAKE3 in one call: to compare a site's config with the one it was
/// rendered from without keeping a copy of its key material. (A BLAKE3 update per
/// tiny write cost more than the rest of rendering an unchanged site.)
struct Gather<'a>(&'a mut Vec<u8>);

impl std::hash::Hasher for Gather<'_> {
    fn finish(&self) -> u64 {
        0
    }
    fn write(&mut self, bytes: &[u8]) {
        self.0.extend_from_slice(bytes);
    }
}

/// BLAKE3 of a site's config through `Hash`; `buf` is scratch space.
fn site_hash(ws: &WebSite, buf: &mut Vec<u8>) -> [u8; 32] {
    use std::hash::Hash as _;
    buf.clear();
    ws.hash(&mut Gather(buf));
    *blake3::hash(buf).as_bytes()
}

impl Plan {
    /// The active site serving `host` (lowercase, no port, no trailing dot).
    /// An exact host name wins over a wildcard alias (`*.example.com`), which
    /// answers names exactly one label below it.
    pub fn site_for_host(&self, host: &str) -> Option<&Arc<Site>> {
        self.hosts.get(host).or_else(|| {
            let (_, parent) = host.split_once('.')?;
            self.hosts.get(format!("*.{parent}").as_str())
        })
    }

    /// Every site of the config, active or not (in config order).
    pub fn sites(&self) -> &[Arc<Site>] {
        &self.sites
    }

    /// The sites served now.
    pub fn active_sites(&self) -> impl Iterator<Item = &Arc<Site>> {
        self.sites.iter().filter(|s| s.active)
    }

    /// The site rendered from the config's site `domain` (as the config spells it).
    pub fn site_named(&self, domain: &str) -> Option<&Arc<Site>> {
        self.rendered.get(domain).map(|r| &r.site)
    }

    /// The key authorization of ACME HTTP-01 challenge `token` when it was issued
    /// for `host` (compared case-insensitively, without a trailing dot): the CA
    /// asks `http://<name>/.well-known/acme-challenge/<token>` (RFC 8555 8.3).
    pub fn acme_answer(&self, host: &str, token: &str) -> Option<&str> {
        let (name, key_auth) = self.acme.get(token)?;
        let host = host.trim_end_matches('.');
        name.trim_end_matches('.')
            .eq_ignore_ascii_case(host)
            .then_some(key_auth.as_str())
    }

    /// The PHP pools the server needs now (active PHP sites).
    pub fn php_pools(&self) -> Vec<PhpSite> {
        self.active_sites().filter_map(|s| s.php.clone()).collect()
    }
}

/// Translate the desired config into a plan. Pure: no file or network access.
///
/// Inactive sites are kept in [`Plan::sites`] (their content is synced) but answer
/// no host: requests for them get the unknown-host 404, and their SNI no certificate.
///
/// Site by site: a site whose domain or an alias is not a [`DomainName`], or that
/// claims a host another active site holds, is returned as rejected and keeps its
/// version in `previous` (the plan served so far), or stays absent when it is new
/// (or when its previous version's hosts are taken now). Of two sites claiming one
/// host, the one that held it in `previous` keeps it, else the first in the config.
pub fn render(cfg: &WebConfig, layout: &Layout, previous: &Plan) -> (Plan, Vec<RejectedObject>) {
    let mut plan = Plan::default();
    let mut rejected = Vec::new();
    let mut sites: Vec<Arc<Site>> = Vec::with_capacity(cfg.sites.len());
    let mut buf = Vec::new();
    for ws in &cfg.sites {
        let hash = site_hash(ws, &mut buf);
        if let Some(r) = previous.rendered.get(&ws.domain).filter(|r| r.hash == hash) {
            plan.warnings.extend(r.warnings.iter().cloned());
            sites.push(Arc::clone(&r.site));
            plan.rendered.insert(ws.domain.clone(), r.clone());
            continue;
        }
        let mut warnings = Vec::new();
        let rendered = render_site(ws, layout, &mut warnings);
        plan.warnings.extend(warnings.iter().cloned());
        match rendered {
            Ok(site) => {
                let site = Arc::new(site);
                plan.rendered.insert(
                    ws.domain.clone(),
                    Rendered {
                        hash,
                        site: Arc::clone(&site),
                        warnings,
                    },
                );
                sites.push(site);
            }
            Err(e) => {
                rejected.push(RejectedObject::new(format!("site {}", ws.domain), e));
                let name = ws.domain.trim_end_matches('.').to_ascii_lowercase();
                if let Some(old) = previous.sites.iter().find(|s| s.domain == name) {
                    sites.push(Arc::clone(old));
                }
            }
        }
    }
    // Who holds each host: the site that held it before, else the first claimant.
    let mut owner: HashMap<&str, &str> = HashMap::new();
    for site in sites.iter().filter(|s| s.active) {
        for host in site.hosts() {
            let held = previous
                .hosts
                .get(host)
                .is_some_and(|s| s.domain == site.domain);
            if held || !owner.contains_key(host) {
                owner.insert(host, &site.domain);
            }
        }
    }
    let owner: HashMap<String, String> = owner
        .into_iter()
        .map(|(h, d)| (h.to_string(), d.to_string()))
        .collect();
    let mut seen = std::collections::HashSet::new();
    for site in sites {
        if !seen.insert(site.domain.clone()) {
            rejected.push(RejectedObject::new(
                format!("site {}", site.domain),
                "appears twice; the first is served",
            ));
            continue;
        }
        let taken = site
            .hosts()
            .find(|h| site.active && owner.get(*h).is_some_and(|o| *o != site.domain))
            .map(|h| (h.to_string(), owner.get(h).cloned().unwrap_or_default()));
        let site = match taken {
            None => site,
            Some((host, holder)) => {
                rejected.push(RejectedObject::new(
                    format!("site {}", site.domain),
                    format!("host `{host}` belongs to site {holder}"),
                ));
                // The previous version, if it does not collide either.
                match previous.sites.iter().find(|s| s.domain == site.domain) {
                    Some(old)
                        if old
                            .hosts()
                            .all(|h| owner.get(h).is_none_or(|o| *o == old.domain)) =>
                    {
                        Arc::clone(old)
                    }
                    _ => continue,
                }
            }
        };
        if site.active {
            for host in site.hosts() {
                plan.hosts.insert(host.to_string(), Arc::clone(&site));
            }
        }
        plan.sites.push(site);
    }
    plan.acme = cfg
        .acme_challenges
        .iter()
        .map(|c| {
            (
                c.token.clone(),
                (c.name.clone(), c.key_authorization.clone()),
            )
        })
        .collect();
    rejected.sort();
    rejected.dedup_by(|a, b| a.object == b.object);
    (plan, rejected)
}

impl Site {
    /// The domain and the aliases.
    fn hosts(&self) -> impl Iterator<Item = &str> {
        std::iter::once(self.domain.as_str()).chain(self.aliases.iter().map(String::as_str))
    }
}

/// A site's host name, checked with the model's [`DomainName`] rules (the API's):
/// lowercase A-labels, no trailing dot. Since the domain names a directory, this
/// also rules out `/`, `..` and the like.
fn site_host(name: &str) -> Result<String, String> {
    DomainName::new(name)
        .map(|d| d.as_str().to_string())
        .map_err(|e| format!("`{name}`: {e}"))
}

/// An alias: a host name as [`site_host`], or a wildcard (`*.example.com`).
fn alias_host(name: &str) -> Result<String, String> {
    DomainName::host_pattern(name)
        .map(|d| d.as_str().to_string())
        .map_err(|e| format!("`{name}`: {e}"))
}

fn render_site(ws: &WebSite, layout: &Layout, warnings: &mut Vec<String>) -> Result<Site, String> {
    let domain = site_host(&ws.domain)?;
    let aliases = ws
        .aliases
        .iter()
        .map(|a| alias_host(a))
        .collect::<Result<Vec<_>, _>>()?;
    let site_dir = layout.content_root.join(&domain);
    let cert = match &ws.tls {
        None => None,
        Some(m) => match tls::certified_key(m) {
            Ok(k) => Some(Arc::new(k)),
            Err(e) => {
                warnings.push(format!("{domain}: certificate not usable ({e}); HTTP only"));
                None
            }
        },
    };
    let docroot = match ws.docroot.as_deref().map(DocRoot::parse) {
        None => None,
        Some(Ok(d)) => d.map(|d| d.as_str().to_owned()),
        Some(Err(e)) => {
            return Err(format!(
                "document root `{}`: {e}",
                ws.docroot.as_deref().unwrap_or_default()
            ))
        }
    };
    let php = match ws.php {
        true => Some(php_site(ws, &domain, &site_dir, layout)?),
        false => None,
    };
    Ok(Site {
        root: site_dir.join(crate::fsafe::CURRENT),
        site_dir,
        root_cache: crate::fsafe::RootCache::with_docroot(docroot.clone()),
        docroot,
        domain,
        aliases,
        active: ws.active,
        https_redirect: ws.https_redirect,
        hsts: ws.hsts,
        php,
        cert,
        mail_client_host: ws
            .mail
            .as_ref()
            .and_then(crate::autoconfig::ClientHosts::of),
    })
}

/// The engine's `upload_max_filesize` and `post_max_size` when a site sets none.
pub const DEFAULT_UPLOAD_MB: u64 = 64;

/// A PHP site's pool: its version (installed here, else the site is rejected) and
/// `php.ini` lines (each value checked by `model::web`, so nothing else reaches the
/// pool file). A pool with settings gets a socket named after them: a changed
/// pool then starts beside the old one, whose master (and the other sites' pools
/// in it) is never restarted for it ([`crate::fpm::converge`]).
fn php_site(
    ws: &WebSite,
    domain: &str,
    site_dir: &Path,
    layout: &Layout,
) -> Result<PhpSite, String> {
    let user = pool_user(domain);
    let version = match &ws.php_version {
        None => None,
        Some(v) => {
            let v = PhpVersion::new(v).map_err(|e| e.to_string())?;
            if !layout.php_versions.iter().any(|have| have == v.as_str()) {
                let have = match layout.php_versions.is_empty() {
                    true => "none".to_owned(),
                    false => layout.php_versions.join(", "),
                };
                return Err(format!(
                    "PHP {v} is not installed on this server (installed: {have})"
                ));
            }
            Some(v.to_string())
        }
    };
    let mut settings = PhpSettings {
        version: None,
        ini: ws.php_ini.clone(),
    };
    settings.check().map_err(|e| e.to_string())?;
    let upload = settings
        .ini
        .get("upload_max_filesize")
        .and_then(|v| v.strip_suffix('M')?.parse::<u64>().ok())
        .unwrap_or(DEFAULT_UPLOAD_MB);
    settings
        .ini
        .entry("upload_max_filesize".into())
        .or_insert_with(|| format!("{upload}M"));
    settings
        .ini
        .entry("post_max_size".into())
        .or_insert_with(|| format!("{}M", upload.max(DEFAULT_UPLOAD_MB)));
    let mut ini = settings.pool_lines();
    if let Some(path) = &layout.sendmail_path {
        // The engine's own command line (no quotes or newlines: checked at start).
        ini.push(format!("php_admin_value[sendmail_path] = \"{path}\""));
    }
    let socket = match (&version, ws.php_ini.is_empty()) {
        (None, true) => format!("{user}.sock"),
        _ => {
            let mut h = blake3::Hasher::new();
            h.update(version.as_deref().unwrap_or("").as_bytes());
            for l in &ini {
                h.update(b"\n");
                h.update(l.as_bytes());
            }
            format!("{user}-{}.sock", &h.finalize().to_hex()[..8])
        }
    };
    let sessions = layout.sessions.as_ref().and_then(|s| {
        let has = match &version {
            None => s.default,
            Some(v) => s.versions.contains(v),
        };
        has.then(|| s.socket.clone())
    });
    Ok(PhpSite {
        sessions,
        socket: layout.php_dir.join(socket),
        tmp_dir: layout.php_dir.join("tmp").join(domain),
        site_dir: site_dir.to_path_buf(),
        user,
        version,
        ini,
    })
}

/// Lowercase `name`, drop one trailing dot, and check it is a DNS host name
/// (letters, digits, `-`, `_` in labels of 1–63 characters, at most 253 in all).
/// Since the domain names a directory, this also rules out `/`, `..` and the like.
pub fn normalize_host(name: &str) -> Result<String, RenderError> {
    let bad = || RenderError::BadHost(name.to_string());
    let lower = name.to_ascii_lowercase();
    let host = lower.strip_suffix('.').unwrap_or(&lower);
    if host.is_empty() || host.len() > 253 {
        return Err(bad());
    }
    for label in host.split('.') {
        let ok_chars = label
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if label.is_empty() || label.len() > 63 || !ok_chars || label.starts_with('-') {
            return Err(bad());
        }
    }
    Ok(host.to_string())
}

/// The system user (and pool name) of a PHP site: `hp-` + the domain with dots as
/// dashes, or, when that exceeds 32 characters, its first 23 characters, a dash and
/// 8 hex digits of the domain's BLAKE3 hash (so distinct domains stay distinct).
pub fn pool_user(domain: &str) -> String {
    let base: String = format!("hp-{}", domain.replace(['.', '_'], "-"));
    if base.len() <= 32 {
        return base;
    }
    let hash = blake3::hash(domain.as_bytes()).to_hex();
    format!("{}-{}", base[..23].trim_end_matches('-'), &hash[..8])
}

#[cfg(test)]
mod tests {
    use super::*;
    use model_free::*;

    /// Builders for test configs (no dependency on `model`).
    mod model_free {
        use proto::agent_v1::WebSite;

        pub fn site(domain: &str, active: bool) -> WebSite {
            serde_json::from_value(serde_json::json!({
                "domain": domain, "mode": "all", "active": active,
            }))
            .unwrap()
        }
    }

    fn layout() -> Layout {
        Layout::under(Path::new("/srv/web"))
    }

    fn render(cfg: &WebConfig, layout: &Layout) -> Plan {
        let (plan, rejected) = super::render(cfg, layout, &Plan::default());
        assert!(rejected.is_empty(), "{rejected:?}");
        plan
    }

    fn config(sites: Vec<WebSite>) -> WebConfig {
        WebConfig {
            sites: sites.into_iter().map(Arc::new).collect(),
            files_origin: None,
            peers: Vec::new(),
            acme_challenges: Vec::new(),
        }
    }

    #[test]
    fn hosts_map_domains_and_aliases_of_active_sites_only() {
        let mut a = site("Example.COM.", true);
        a.aliases = vec!["www.example.com".into()];
        let b = site("other.example", false);
        let plan = render(&config(vec![a, b]), &layout());
        assert_eq!(plan.sites().len(), 2);
        let s = plan.site_for_host("www.example.com").unwrap();
        assert_eq!(s.domain, "example.com");
        assert_eq!(s.root, Path::new("/srv/web/content/example.com/current"));
        assert!(plan.site_for_host("example.com").is_some());
        assert!(plan.site_for_host("other.example").is_none());
        assert!(plan.warnings.is_empty());
    }

    #[test]
    fn a_wildcard_alias_answers_one_label_below_and_exact_names_win() {
        let mut a = site("example.com", true);
        a.aliases = vec!["*.example.com".into()];
        let mut b = site("shop.example.com", true);
        b.aliases = Vec::new();
        let plan = render(&config(vec![a, b]), &layout());
        assert_eq!(
            plan.site_for_host("x.example.com").unwrap().domain,
            "example.com"
        );
        assert_eq!(
            plan.site_for_host("shop.example.com").unwrap().domain,
            "shop.example.com"
        );
        assert!(plan.site_for_host("a.b.example.com").is_none());
        assert!(plan.site_for_host("example.org").is_none());
    }

    #[test]
    fn a_new_or_changed_site_leaves_the_other_sites_untouched() {
        let (a, b) = (site("a.example", true), site("b.example", true));
        let p1 = render(&config(vec![a.clone(), b.clone()]), &layout());
        let (p2, rejected) = super::render(
            &config(vec![a.clone(), b.clone(), site("c.example", true)]),
            &layout(),
            &p1,
        );
        assert!(rejected.is_empty());
        let same = |x: &Plan, y: &Plan, host: &str| {
            Arc::ptr_eq(
                x.site_for_host(host).unwrap(),
                y.site_for_host(host).unwrap(),
            )
        };
        assert!(same(&p1, &p2, "a.example") && same(&p1, &p2, "b.example"));
        assert!(p2.site_for_host("c.example").is_some());
        // Changing b re-renders b only.
        let mut b2 = b;
        b2.https_redirect = !b2.https_redirect;
        let (p3, _) = super::render(
            &config(vec![a, b2, site("c.example", true)]),
            &layout(),
            &p2,
        );
        assert!(same(&p2, &p3, "a.example") && same(&p2, &p3, "c.example"));
        assert!(!same(&p2, &p3, "b.example"));
        assert_ne!(
            p2.site_for_host("b.example").unwrap().https_redirect,
            p3.site_for_host("b.example").unwrap().https_redirect
        );
    }

    fn objects(r: &[RejectedObject]) -> Vec<&str> {
        r.iter().map(|r| r.object.as_str()).collect()
    }

    #[test]
    fn bad_sites_are_rejected_one_by_one() {
        for bad in [
            "../etc",
            "a/b",
            "",
            "-x.com",
            "a..b",
            "x y.com",
            "a_b.example",
        ] {
            let (plan, rejected) = super::render(
                &config(vec![site(bad, true), site("ok.example", true)]),
                &layout(),
                &Plan::default(),
            );
            assert_eq!(objects(&rejected), vec![format!("site {bad}")]);
            assert_eq!(plan.sites().len(), 1, "the good site is served");
            assert!(plan.site_for_host("ok.example").is_some());
        }
        // A new site claiming a served site's host is rejected, whatever the order.
        let a = site("a.example", true);
        let before = render(&config(vec![a.clone()]), &layout());
        let mut b = site("b.example", true);
        b.aliases = vec!["a.example".into()];
        let (plan, rejected) = super::render(
            &config(vec![b.clone(), a.clone(), site("c.example", true)]),
            &layout(),
            &before,
        );
        assert_eq!(objects(&rejected), vec!["site b.example"]);
        assert_eq!(plan.site_for_host("a.example").unwrap().domain, "a.example");
        assert!(plan.site_for_host("b.example").is_none());
        assert!(plan.site_for_host("c.example").is_some());
        // An update of a good site to a bad alias keeps its old version.
        let mut a_bad = a.clone();
        a_bad.aliases = vec!["www/x.a.example".into()];
        a_bad.php = true;
        let (plan, rejected) = super::render(&config(vec![a_bad]), &layout(), &before);
        assert_eq!(objects(&rejected), vec!["site a.example"]);
        let kept = plan.site_for_host("a.example").unwrap();
        assert!(kept.php.is_none() && kept.aliases.is_empty());
    }

    #[test]
    fn php_sites_get_a_pool_and_bad_certificates_a_warning() {
        let mut s = site("shop.example", true);
        s.php = true;
        s.tls = Some(proto::agent_v1::TlsMaterial {
            cert_pem: "not a cert".into(),
            key_pem: "not a key".into(),
        });
        let plan = render(&config(vec![s]), &layout());
        let pools = plan.php_pools();
        assert_eq!(pools.len(), 1);
        assert_eq!(pools[0].user, "hp-shop-example");
        assert_eq!(
            pools[0].socket,
            Path::new("/srv/web/php/hp-shop-example.sock")
        );
        assert_eq!(plan.warnings.len(), 1);
        assert!(plan.site_for_host("shop.example").unwrap().cert.is_none());
    }

    #[test]
    fn pool_users_fit_32_characters_and_stay_distinct() {
        let a = pool_user("a-very-long-subdomain-name.customer-domain.example");
        let b = pool_user("a-very-long-subdomain-name.customer-domain.example2");
        assert!(a.len() <= 32 && b.len() <= 32, "{a} {b}");
        assert_ne!(a, b);
        assert!(a.starts_with("hp-a-very-long"));
    }
}
