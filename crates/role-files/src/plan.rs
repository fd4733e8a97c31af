//! Render: the controller's [`FilesConfig`] and the agent's engine options turned into
//! what the engine serves. Pure (no I/O), so every rule here is unit-tested.

use std::collections::{BTreeMap, BTreeSet};
use std::ops::RangeInclusive;
use std::path::PathBuf;

use model::{DomainName, FtpUsername, RelPath};
use proto::agent_v1::{FilesConfig, FtpAccountConfig, RejectedObject, TlsMaterial};

use crate::error::FilesError;

/// One FTP login, ready for the authenticator.
#[derive(Clone, PartialEq, Eq)]
pub struct Account {
    /// Login name.
    pub username: String,
    /// The site it belongs to.
    pub domain: String,
    /// argon2id PHC string.
    pub password_hash: String,
    /// Home relative to the sites root: `<domain>` or `<domain>/<home>`.
    pub home: PathBuf,
    /// Upload quota in bytes; 0 = unlimited.
    pub quota_bytes: u64,
}

impl std::fmt::Debug for Account {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print the hash.
        f.debug_struct("Account")
            .field("username", &self.username)
            .field("domain", &self.domain)
            .field("home", &self.home)
            .field("quota_bytes", &self.quota_bytes)
            .finish_non_exhaustive()
    }
}

/// What the files engine serves for one desired config.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FilesPlan {
    /// Sites held here (and served to web servers).
    pub sites: BTreeSet<String>,
    /// FTP logins by username.
    pub accounts: BTreeMap<String, Account>,
    /// Certificate and key for FTPS and the sync port.
    pub tls: Option<TlsMaterial>,
    /// Which web servers (certificate common name = server name) may sync which sites.
    pub sync_clients: BTreeMap<String, BTreeSet<String>>,
    /// Replication settings of the sites that have any (held sites only).
    pub site_options: BTreeMap<String, SiteOptions>,
    /// Days overwritten and deleted files are kept.
    pub versions_days: u32,
}

/// One site's replication settings, checked.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SiteOptions {
    /// Paths that survive deployments.
    pub keep_paths: Vec<String>,
    /// Paths not replicated (a deployment leaves them alone too).
    pub local_paths: Vec<String>,
    /// Disk limit in bytes (0: none).
    pub quota_bytes: u64,
}

impl SiteOptions {
    /// Every path a deployment leaves alone: persistent and local ones.
    pub fn preserved(&self) -> Vec<String> {
        self.keep_paths
            .iter()
            .chain(&self.local_paths)
            .cloned()
            .collect()
    }
}

/// `site_versions_days` when the controller sends none.
pub const DEFAULT_VERSIONS_DAYS: u32 = 7;

/// One site's options with every path a [`model::sitefiles::SitePath`] (the API's rule:
/// a path the API accepts, the engine accepts).
fn render_site_options(o: &proto::agent_v1::FilesSiteOptions) -> Result<SiteOptions, String> {
    let check = |p: &String| -> Result<String, String> {
        model::sitefiles::SitePath::new(p)
            .map(|sp| sp.as_str().to_string())
            .map_err(|e| format!("path {p:?}: {e}"))
    };
    Ok(SiteOptions {
        keep_paths: o.keep_paths.iter().map(check).collect::<Result<_, _>>()?,
        local_paths: o.local_paths.iter().map(check).collect::<Result<_, _>>()?,
        quota_bytes: o.quota_mb.saturating_mul(1024 * 1024),
    })
}

/// Check that `domain` is a plain lower-case host name usable as one directory name.
pub fn check_domain(domain: &str) -> Result<(), FilesError> {
    let ok = !domain.is_empty()
        && domain.len() <= 253
        && !domain.starts_with('.')
        && !domain.starts_with('-')
        && !domain.contains("..")
        && domain
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.' || b == b'-');
    if ok {
        Ok(())
    } else {
        Err(FilesError::Invalid(format!("bad site domain {domain:?}")))
    }
}

/// Turn a relative folder (`a/b`, empty for none) into a path, refusing `..`, `.`,
/// absolute paths, empty components and control characters.
pub fn check_rel_path(rel: &str) -> Result<PathBuf, FilesError> {
    let mut out = PathBuf::new();
    if rel.is_empty() {
        return Ok(out);
    }
    for part in rel.split('/') {
        if part.is_empty()
            || part == "."
            || part == ".."
            || part.chars().any(|c| c.is_control() || c == '\\')
        {
            return Err(FilesError::Invalid(format!("bad relative path {rel:?}")));
        }
        out.push(part);
    }
    Ok(out)
}

/// A site domain checked with the model's [`DomainName`] rules (the API's), then
/// [`check_domain`]: it names one directory.
fn site_domain(d: &str) -> Result<String, String> {
    let name = DomainName::new(d).map_err(|e| e.to_string())?;
    check_domain(name.as_str()).map_err(|e| e.to_string())?;
    Ok(name.as_str().to_string())
}

/// One FTP account checked with the model's [`FtpUsername`] and [`RelPath`] rules.
fn render_account(a: &FtpAccountConfig, sites: &BTreeSet<String>) -> Result<Account, String> {
    let domain = site_domain(&a.domain)?;
    if !sites.contains(&domain) {
        return Err(format!(
            "it is for {domain}, which is not a site of this server"
        ));
    }
    let rel = RelPath::new(&a.home).map_err(|e| format!("home {:?}: {e}", a.home))?;
    let mut home = PathBuf::from(&domain);
    home.push(check_rel_path(rel.as_str()).map_err(|e| e.to_string())?);
    Ok(Account {
        username: a.username.clone(),
        domain,
        password_hash: a.password_hash.clone(),
        home,
        quota_bytes: a.quota_mb.saturating_mul(1024 * 1024),
    })
}

/// Render the plan for `cfg` (pure), object by object: a site whose domain is not
/// a [`DomainName`] is left out; an FTP account whose name is not an
/// [`FtpUsername`], whose home is not a [`RelPath`], whose site is not held here or
/// whose name appears twice keeps its version in `previous` (the plan applied so
/// far) when that one still fits, or is left out. Both are returned as rejected;
/// every other object is taken as configured.
pub fn render(cfg: &FilesConfig, previous: &FilesPlan) -> (FilesPlan, Vec<RejectedObject>) {
    let mut rejected = Vec::new();
    let mut sites = BTreeSet::new();
    for d in &cfg.sites {
        match site_domain(d) {
            Ok(d) => {
                sites.insert(d);
            }
            Err(e) => rejected.push(RejectedObject::new(format!("site {d}"), e)),
        }
    }
    let mut accounts = BTreeMap::new();
    for a in &cfg.ftp_accounts {
        let object = format!("ftp account {}", a.username);
        if let Err(e) = FtpUsername::new(&a.username) {
            rejected.push(RejectedObject::new(object, e));
            continue;
        }
        if accounts.contains_key(&a.username) {
            rejected.push(RejectedObject::new(
                object,
                "appears twice; the first applies",
            ));
            continue;
        }
        match render_account(a, &sites) {
            Ok(acc) => {
                accounts.insert(a.username.clone(), acc);
            }
            Err(e) => {
                rejected.push(RejectedObject::new(object, e));
                if let Some(old) = previous
                    .accounts
                    .get(&a.username)
                    .filter(|old| sites.contains(&old.domain))
                {
                    accounts.insert(a.username.clone(), old.clone());
                }
            }
        }
    }
    let mut sync_clients: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (server, domains) in &cfg.sync_clients {
        let allowed = sync_clients.entry(server.clone()).or_default();
        // Only sites held here can be pulled, whatever the list says.
        allowed.extend(domains.iter().filter(|d| sites.contains(*d)).cloned());
    }
    let mut site_options = BTreeMap::new();
    for o in &cfg.site_options {
        if !sites.contains(&o.domain) {
            continue;
        }
        match render_site_options(o) {
            Ok(opts) => {
                site_options.insert(o.domain.clone(), opts);
            }
            Err(e) => {
                rejected.push(RejectedObject::new(format!("site options {}", o.domain), e));
                if let Some(old) = previous.site_options.get(&o.domain) {
                    site_options.insert(o.domain.clone(), old.clone());
                }
            }
        }
    }
    let plan = FilesPlan {
        sites,
        accounts,
        tls: cfg.tls.clone(),
        sync_clients,
        site_options,
        versions_days: cfg.versions_days.unwrap_or(DEFAULT_VERSIONS_DAYS),
    };
    (plan, rejected)
}

/// Engine options read from the agent config's `[engine]` table.
///
/// | key | default | meaning |
/// | --- | --- | --- |
/// | `passive_ports` | `30000-30099` | FTP passive data port range, `LOW-HIGH` |
/// | `sync_port` | `7443` | port of the site-file hub's routes (HTTPS, mTLS) |
/// | `ftp_port` | `21`, else `10021` | FTP control port (21 falls back to 10021 without privilege) |
/// | `ftp_tls_required` | `true` | refuse logins before `AUTH TLS`; `false` only for tests |
/// | `rescan_secs` | `30` | how often the hub compares every site's tree with its index: the backstop for writes inotify missed (FTP and deployments tell the hub themselves) |
/// | `site_trash_days` | `7` | days the files of a domain no longer held stay in `trash/` |
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EngineOptions {
    /// Passive data ports.
    pub passive_ports: RangeInclusive<u16>,
    /// Port of the site-file hub's routes.
    pub sync_port: u16,
    /// Explicit FTP port (no fallback) if set.
    pub ftp_port: Option<u16>,
    /// Whether logins need TLS.
    pub ftp_tls_required: bool,
    /// Rescan period in seconds.
    pub rescan_secs: u64,
    /// Days the files of a domain this server no longer holds stay in the trash.
    pub site_trash_days: u64,
}

impl Default for EngineOptions {
    fn default() -> Self {
        Self {
            passive_ports: 30000..=30099,
            sync_port: 7443,
            ftp_port: None,
            ftp_tls_required: true,
            rescan_secs: 30,
            site_trash_days: 7,
        }
    }
}

fn parse_num<T: std::str::FromStr>(key: &str, v: &str) -> Result<T, FilesError> {
    v.trim()
        .parse()
        .map_err(|_| FilesError::Invalid(format!("engine option {key} = {v:?} is not a number")))
}

/// Parse `LOW-HIGH` into a port range.
pub fn parse_port_range(v: &str) -> Result<RangeInclusive<u16>, FilesError> {
    let (lo, hi) = v
        .split_once('-')
        .ok_or_else(|| FilesError::Invalid(format!("passive_ports = {v:?}: want LOW-HIGH")))?;
    let lo: u16 = parse_num("passive_ports", lo)?;
    let hi: u16 = parse_num("passive_ports", hi)?;
    if lo == 0 || lo > hi {
        return Err(FilesError::Invalid(format!(
            "passive_ports = {v:?}: want 1 <= LOW <= HIGH"
        )));
    }
    Ok(lo..=hi)
}

impl EngineOptions {
    /// Read the options this engine knows; unknown keys are ignored (they belong to other
    /// engines), bad values are refused.
    pub fn parse(opts: &BTreeMap<String, String>) -> Result<Self, FilesError> {
        let mut o = Self::default();
        if let Some(v) = opts.get("passive_ports") {
            o.passive_ports = parse_port_range(v)?;
        }
        if let Some(v) = opts.get("sync_port") {
            o.sync_port = parse_num("sync_port", v)?;
        }
        if let Some(v) = opts.get("ftp_port") {
            o.ftp_port = Some(parse_num("ftp_port", v)?);
        }
        if let Some(v) = opts.get("ftp_tls_required") {
            o.ftp_tls_required = match v.trim() {
                "true" | "yes" | "1" => true,
                "false" | "no" | "0" => false,
                _ => {
                    return Err(FilesError::Invalid(format!(
                        "ftp_tls_required = {v:?}: want true or false"
                    )))
                }
            };
        }
        if let Some(v) = opts.get("rescan_secs") {
            o.rescan_secs = parse_num::<u64>("rescan_secs", v)?.max(1);
        }
        if let Some(v) = opts.get("site_trash_days") {
            o.site_trash_days = parse_num("site_trash_days", v)?;
        }
        Ok(o)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proto::agent_v1::FtpAccountConfig;

    fn acc(user: &str, domain: &str, home: &str) -> FtpAccountConfig {
        FtpAccountConfig {
            username: user.into(),
            domain: domain.into(),
            password_hash: "$argon2id$x".into(),
            home: home.into(),
            quota_mb: 2,
        }
    }

    fn render_all(cfg: &FilesConfig) -> FilesPlan {
        let (plan, rejected) = render(cfg, &FilesPlan::default());
        assert!(rejected.is_empty(), "{rejected:?}");
        plan
    }

    fn config(sites: &[&str], accounts: Vec<FtpAccountConfig>) -> FilesConfig {
        FilesConfig {
            sites: sites.iter().map(|s| s.to_string()).collect(),
            ftp_accounts: accounts,
            ..Default::default()
        }
    }

    #[test]
    fn renders_accounts_with_homes_and_quotas() {
        let cfg = config(
            &["a.example", "b.example"],
            vec![
                acc("alice", "a.example", ""),
                acc("bob", "b.example", "pub/up"),
            ],
        );
        let p = render_all(&cfg);
        assert_eq!(p.sites.len(), 2);
        assert_eq!(p.accounts["alice"].home, PathBuf::from("a.example"));
        assert_eq!(p.accounts["bob"].home, PathBuf::from("b.example/pub/up"));
        assert_eq!(p.accounts["bob"].quota_bytes, 2 * 1024 * 1024);
        assert!(!format!("{:?}", p.accounts["bob"]).contains("argon2"));
    }

    fn objects(r: &[RejectedObject]) -> Vec<&str> {
        r.iter().map(|r| r.object.as_str()).collect()
    }

    #[test]
    fn bad_objects_are_rejected_one_by_one() {
        // New bad accounts and sites beside good ones: left out, named; the rest applies.
        for home in ["..", "a/../..", "a//b", "./a", ".hidden", "a b"] {
            let (p, rejected) = render(
                &config(
                    &["a.example"],
                    vec![acc("uu", "a.example", home), acc("ok", "a.example", "")],
                ),
                &FilesPlan::default(),
            );
            assert_eq!(objects(&rejected), vec!["ftp account uu"], "{home}");
            assert!(p.accounts.contains_key("ok") && !p.accounts.contains_key("uu"));
        }
        let (p, rejected) = render(
            &config(
                &["a.example", "../x", "a/b"],
                vec![
                    acc("uu", "a.example", ""),
                    acc("uu", "a.example", "x"),
                    acc("vv", "b.example", ""),
                    acc("Bad Name", "a.example", ""),
                ],
            ),
            &FilesPlan::default(),
        );
        assert_eq!(
            objects(&rejected),
            vec![
                "site ../x",
                "site a/b",
                "ftp account uu",
                "ftp account vv",
                "ftp account Bad Name"
            ]
        );
        assert_eq!(p.sites.len(), 1);
        assert_eq!(p.accounts["uu"].home, PathBuf::from("a.example"));
        // An update of a good account to a bad home keeps its old version.
        let (q, rejected) = render(
            &config(&["a.example"], vec![acc("uu", "a.example", "../up")]),
            &p,
        );
        assert_eq!(objects(&rejected), vec!["ftp account uu"]);
        assert_eq!(q.accounts["uu"], p.accounts["uu"]);
        for d in ["", "..", "../x", "a/b", "A.example", ".a"] {
            assert!(check_domain(d).is_err(), "{d}");
        }
    }

    #[test]
    fn site_options_are_checked_with_the_api_rules() {
        let opts = |domain: &str, keep: &[&str]| proto::agent_v1::FilesSiteOptions {
            domain: domain.into(),
            keep_paths: keep.iter().map(|k| k.to_string()).collect(),
            local_paths: vec!["wp-content/cache/".into()],
            mode: model::PlacementMode::All,
            quota_mb: 3,
        };
        let mut cfg = config(&["a.example", "b.example"], vec![]);
        cfg.site_options = vec![
            opts("a.example", &["wp-content/uploads", "my files"]),
            opts("b.example", &["../etc"]),
            opts("c.example", &["x"]),
        ];
        cfg.versions_days = Some(30);
        let (p, rejected) = render(&cfg, &FilesPlan::default());
        assert_eq!(objects(&rejected), vec!["site options b.example"]);
        let a = &p.site_options["a.example"];
        assert_eq!(a.keep_paths, ["wp-content/uploads", "my files"]);
        assert_eq!(a.local_paths, ["wp-content/cache"]);
        assert_eq!(a.quota_bytes, 3 << 20);
        assert_eq!(a.preserved().len(), 3);
        assert!(!p.site_options.contains_key("c.example"), "not held here");
        assert_eq!(p.versions_days, 30);
        // a bad update keeps the previous options
        let mut bad = cfg.clone();
        bad.site_options = vec![opts("a.example", &["a/../b"])];
        let (q, _) = render(&bad, &p);
        assert_eq!(q.site_options["a.example"], *a);
        assert_eq!(
            render(&config(&[], vec![]), &p).0.versions_days,
            DEFAULT_VERSIONS_DAYS
        );
    }

    #[test]
    fn parses_options() {
        let mut m = BTreeMap::new();
        assert_eq!(EngineOptions::parse(&m).unwrap(), EngineOptions::default());
        m.insert("passive_ports".into(), "40000-40010".into());
        m.insert("sync_port".into(), "8443".into());
        m.insert("ftp_tls_required".into(), "false".into());
        m.insert("site_trash_days".into(), "30".into());
        let o = EngineOptions::parse(&m).unwrap();
        assert_eq!(o.passive_ports, 40000..=40010);
        assert_eq!(o.sync_port, 8443);
        assert!(!o.ftp_tls_required);
        assert_eq!(o.site_trash_days, 30);
        m.insert("site_trash_days".into(), "a week".into());
        assert!(EngineOptions::parse(&m).is_err());
        m.insert("site_trash_days".into(), "7".into());
        m.insert("passive_ports".into(), "5-1".into());
        assert!(EngineOptions::parse(&m).is_err());
    }
}
