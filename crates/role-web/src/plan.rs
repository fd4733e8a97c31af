//! The engine plan: the pure translation of the controller's [`WebConfig`] into what
//! the server looks up per request (host → site, site → content root, certificate,
//! PHP pool). [`render`] does no I/O; the server swaps whole plans atomically.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use proto::agent_v1::{WebConfig, WebSite};
use rustls::sign::CertifiedKey;

use crate::tls;

/// Where the engine keeps things on disk (the inputs of [`render`] besides the config).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layout {
    /// Site content: `<content_root>/<domain>/current/` is served (the content-sync
    /// client swaps the `current` symlink atomically).
    pub content_root: PathBuf,
    /// PHP-FPM runtime directory: pool sockets and per-site temp dirs live here.
    pub php_dir: PathBuf,
}

impl Layout {
    /// The usual layout under an engine state directory: `content/` and `php/`.
    pub fn under(state_dir: &Path) -> Self {
        Self {
            content_root: state_dir.join("content"),
            php_dir: state_dir.join("php"),
        }
    }
}

/// Why a config cannot become a plan (the previous plan stays in force).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RenderError {
    /// A domain or alias is not a valid lowercase host name.
    #[error("`{0}` is not a valid host name")]
    BadHost(String),
    /// Two active sites claim the same host name.
    #[error("host `{0}` belongs to two sites")]
    DuplicateHost(String),
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
}

/// Everything the server needs to answer requests; swapped as one `Arc`.
#[derive(Debug, Default)]
pub struct Plan {
    hosts: HashMap<String, Arc<Site>>,
    sites: Vec<Arc<Site>>,
    /// Problems that did not stop the plan (e.g. a site's certificate did not parse,
    /// so that site is served on HTTP only). Reported in the engine's health.
    pub warnings: Vec<String>,
}

impl Plan {
    /// The active site serving `host` (lowercase, no port, no trailing dot).
    pub fn site_for_host(&self, host: &str) -> Option<&Arc<Site>> {
        self.hosts.get(host)
    }

    /// Every site of the config, active or not (in config order).
    pub fn sites(&self) -> &[Arc<Site>] {
        &self.sites
    }

    /// The sites served now.
    pub fn active_sites(&self) -> impl Iterator<Item = &Arc<Site>> {
        self.sites.iter().filter(|s| s.active)
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
pub fn render(cfg: &WebConfig, layout: &Layout) -> Result<Plan, RenderError> {
    let mut plan = Plan::default();
    for ws in &cfg.sites {
        let site = Arc::new(render_site(ws, layout, &mut plan.warnings)?);
        if site.active {
            for host in std::iter::once(&site.domain).chain(&site.aliases) {
                if plan.hosts.insert(host.clone(), site.clone()).is_some() {
                    return Err(RenderError::DuplicateHost(host.clone()));
                }
            }
        }
        plan.sites.push(site);
    }
    Ok(plan)
}

fn render_site(
    ws: &WebSite,
    layout: &Layout,
    warnings: &mut Vec<String>,
) -> Result<Site, RenderError> {
    let domain = normalize_host(&ws.domain)?;
    let aliases = ws
        .aliases
        .iter()
        .map(|a| normalize_host(a))
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
    let php = ws.php.then(|| {
        let user = pool_user(&domain);
        PhpSite {
            socket: layout.php_dir.join(format!("{user}.sock")),
            tmp_dir: layout.php_dir.join("tmp").join(&domain),
            site_dir: site_dir.clone(),
            user,
        }
    });
    Ok(Site {
        root: site_dir.join(crate::fsafe::CURRENT),
        site_dir,
        root_cache: crate::fsafe::RootCache::default(),
        domain,
        aliases,
        active: ws.active,
        https_redirect: ws.https_redirect,
        php,
        cert,
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

    #[test]
    fn hosts_map_domains_and_aliases_of_active_sites_only() {
        let mut a = site("Example.COM.", true);
        a.aliases = vec!["www.example.com".into()];
        let b = site("other.example", false);
        let cfg = WebConfig {
            sites: vec![a, b],
            files_origin: None,
        };
        let plan = render(&cfg, &layout()).unwrap();
        assert_eq!(plan.sites().len(), 2);
        let s = plan.site_for_host("www.example.com").unwrap();
        assert_eq!(s.domain, "example.com");
        assert_eq!(s.root, Path::new("/srv/web/content/example.com/current"));
        assert!(plan.site_for_host("example.com").is_some());
        assert!(plan.site_for_host("other.example").is_none());
        assert!(plan.warnings.is_empty());
    }

    #[test]
    fn bad_hosts_and_duplicates_are_refused() {
        for bad in ["../etc", "a/b", "", "-x.com", "a..b", "x y.com"] {
            let cfg = WebConfig {
                sites: vec![site(bad, true)],
                files_origin: None,
            };
            assert!(matches!(
                render(&cfg, &layout()),
                Err(RenderError::BadHost(_))
            ));
        }
        let mut b = site("b.example", true);
        b.aliases = vec!["a.example".into()];
        let cfg = WebConfig {
            sites: vec![site("a.example", true), b],
            files_origin: None,
        };
        assert_eq!(
            render(&cfg, &layout()).unwrap_err(),
            RenderError::DuplicateHost("a.example".into())
        );
    }

    #[test]
    fn php_sites_get_a_pool_and_bad_certificates_a_warning() {
        let mut s = site("shop.example", true);
        s.php = true;
        s.tls = Some(proto::agent_v1::TlsMaterial {
            cert_pem: "not a cert".into(),
            key_pem: "not a key".into(),
        });
        let cfg = WebConfig {
            sites: vec![s],
            files_origin: None,
        };
        let plan = render(&cfg, &layout()).unwrap();
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
