//! Rendering of sites (HSTS, PHP version and settings, disk usage) and FTP accounts.

use super::{list, opt, quota, yes, Render};
use proto::v1::*;

impl Render for SiteView {
    const HEADERS: &'static [&'static str] = &[
        "domain",
        "customer",
        "cluster",
        "mode",
        "active on",
        "php",
        "aliases",
    ];
    fn cells(&self) -> Vec<String> {
        vec![
            self.domain.clone(),
            self.customer.clone(),
            self.cluster.clone(),
            self.mode.clone(),
            opt(&self.active_server),
            yes(self.php),
            list(&self.aliases),
        ]
    }
    fn fields(&self) -> Vec<(&'static str, String)> {
        let mut f = vec![
            ("domain", self.domain.clone()),
            ("customer", self.customer.clone()),
            ("aliases", list(&self.aliases)),
            ("php", yes(self.php)),
            ("mode", self.mode.clone()),
            ("https redirect", yes(self.https_redirect)),
            ("document root", self.docroot.clone()),
            ("hsts", hsts(self.hsts, self.hsts_active)),
            ("php version", php_version(self)),
            ("php settings", php_ini(&self.php_ini)),
            ("php mail()", php_mail(self)),
            ("cluster", self.cluster.clone()),
            ("active server", opt(&self.active_server)),
            ("kept paths", list(&self.keep)),
            ("local paths", list(&self.local)),
            ("disk usage", site_usage(self.usage_bytes, self.quota_mb)),
            ("conflicts", self.conflicts.to_string()),
            ("created", self.created_at.clone()),
        ];
        f.extend(self.mail_spooled.iter().map(|m| {
            (
                "mail waiting",
                format!(
                    "{} message(s) on {} since {}; last try: {}",
                    m.messages, m.server, m.oldest, m.last_error
                ),
            )
        }));
        f.extend(self.warnings.iter().map(|w| ("warning", w.clone())));
        f
    }
}

/// Where PHP's `mail()` goes, and whether mail is waiting.
fn php_mail(v: &SiteView) -> String {
    let waiting: u32 = v.mail_spooled.iter().map(|m| m.messages).sum();
    match (&v.mail_cluster, waiting) {
        (None, _) => {
            "no mail service for this domain: mail() fails (see `site logs --error`)".into()
        }
        (Some(c), 0) => format!("submitted to mail cluster {c}, nothing waiting"),
        (Some(c), n) => {
            format!("submitted to mail cluster {c}, {n} message(s) waiting for a retry")
        }
    }
}

/// HSTS as asked for and as sent.
fn hsts(on: bool, active: bool) -> String {
    match (on, active) {
        (false, _) => "off".into(),
        (true, true) => "on (sent: the certificate is trusted)".into(),
        (true, false) => "on, not sent: the site has no uploaded or ACME certificate".into(),
    }
}

/// The PHP version chosen, what runs, and what the servers have.
fn php_version(v: &SiteView) -> String {
    let chosen = v.php_version.as_deref().unwrap_or("default");
    let runs = v
        .php_version_effective
        .as_deref()
        .unwrap_or("not reported yet");
    let have = match v.php_versions_available.is_empty() {
        true => String::new(),
        false => format!("; available: {}", v.php_versions_available.join(", ")),
    };
    format!("{chosen} (runs {runs}{have})")
}

/// `k=v, k=v`, or `defaults`.
fn php_ini(ini: &std::collections::BTreeMap<String, String>) -> String {
    if ini.is_empty() {
        return "defaults".into();
    }
    ini.iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// A site's usage against its quota, e.g. `12.5 MiB of 10240 MiB (0%)`.
fn site_usage(bytes: Option<u64>, quota_mb: u64) -> String {
    let Some(bytes) = bytes else {
        return format!("not reported yet (quota {})", quota(quota_mb));
    };
    let mib = bytes as f64 / f64::from(1u32 << 20);
    if quota_mb == 0 {
        return format!("{mib:.1} MiB (no quota)");
    }
    let pct = (bytes.saturating_mul(100)) / quota_mb.saturating_mul(1 << 20);
    format!("{mib:.1} MiB of {quota_mb} MiB ({pct}%)")
}

impl Render for FtpAccountView {
    const HEADERS: &'static [&'static str] = &["username", "domain", "customer", "home", "quota"];
    fn cells(&self) -> Vec<String> {
        vec![
            self.username.clone(),
            self.domain.clone(),
            self.customer.clone(),
            format!("/{}", self.home),
            quota(self.quota_mb),
        ]
    }
    fn fields(&self) -> Vec<(&'static str, String)> {
        vec![
            ("username", self.username.clone()),
            ("domain", self.domain.clone()),
            ("customer", self.customer.clone()),
            ("home", format!("/{}", self.home)),
            ("quota", quota(self.quota_mb)),
            ("created", self.created_at.clone()),
        ]
    }
}
