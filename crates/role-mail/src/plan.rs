//! Pure render of the controller's [`MailConfig`] into the engine's [`Plan`]: which
//! domains this server accepts for, who the valid recipients are, where each
//! recipient's mail goes (a local Maildir, or the domain's primary over SMTP), the
//! mailbox logins and quotas. No I/O; every decision the SMTP and POP3 sessions take
//! about addresses is a function of a `Plan`.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, SocketAddr};

use model::{DomainName, EmailAddress, LocalPart};
use proto::agent_v1::{DkimKey, MailConfig, MailDomain, RejectedObject};

/// How deep aliases may point at other aliases before we call it a loop.
const MAX_ALIAS_DEPTH: usize = 8;

/// One mailbox login.
#[derive(Clone, PartialEq, Eq)]
pub struct Account {
    /// argon2id PHC string, or an imported legacy hash (`passhash`).
    pub password_hash: String,
    /// Quota in bytes; 0 is unlimited.
    pub quota_bytes: u64,
    /// Whether the account may log in.
    pub enabled: bool,
}

impl std::fmt::Debug for Account {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Account")
            .field("quota_bytes", &self.quota_bytes)
            .field("enabled", &self.enabled)
            .finish_non_exhaustive()
    }
}

/// One hosted domain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DomainPlan {
    /// Lower-case domain name.
    pub name: String,
    /// This server stores the domain's mail.
    pub primary: bool,
    /// Lower-case mailbox local parts.
    pub mailboxes: BTreeSet<String>,
    /// Alias local part → destination addresses (lower-case).
    pub aliases: BTreeMap<String, Vec<String>>,
    /// Mailbox logins by local part (primary only).
    pub accounts: BTreeMap<String, Account>,
    /// The primary's SMTP endpoint (secondaries only).
    pub primary_smtp: Option<SocketAddr>,
    /// DKIM signing keys (Ed25519, RSA): each signs every submitted message.
    pub dkim: Vec<DkimKey>,
    /// Outgoing limits on submission (defaults applied by its accessors).
    pub limits: proto::agent_v1::MailLimits,
    /// The argon2id hash of the domain's site's submission secret (login
    /// `site:<domain>`, `model::sitemail`), when the site may send PHP mail.
    pub site_login: Option<String>,
}

/// What the engine serves: every hosted domain by name.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Plan {
    /// Hosted domains by lower-case name.
    pub domains: BTreeMap<String, DomainPlan>,
    /// Addresses of the other mail servers of the cluster: mail they relay was
    /// checked (SPF, DKIM) where it entered.
    pub peer_addresses: BTreeSet<IpAddr>,
    /// The names the other mail servers sign `Authentication-Results` with
    /// (lower case).
    pub peer_names: Vec<String>,
    /// The mailboxes are replicated between the cluster's servers (the config
    /// names a writer, issue 16): every server serves logins and reads, and a
    /// domain that is not primary here needs no `primary_smtp` (its mail is then
    /// refused with 451 until this server writes again).
    pub replicated: bool,
}

/// Where one accepted recipient's copy goes.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Target {
    /// Into the local mailbox `local@domain` (this server is the primary).
    Local {
        /// Domain (lower case).
        domain: String,
        /// Local part (lower case).
        local: String,
    },
    /// Queued and relayed to the domain's primary, which expands it.
    Relay {
        /// Primary SMTP endpoint.
        primary: SocketAddr,
        /// The recipient address as the primary should receive it.
        address: String,
    },
    /// Not one of ours: needs outbound delivery (MX lookup).
    Remote {
        /// The destination address.
        address: String,
    },
}

/// Why a recipient is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RcptError {
    /// The domain is not hosted here (relay denied).
    #[error("relay denied")]
    NotHosted,
    /// The domain is hosted but has no such mailbox or alias.
    #[error("no such user")]
    NoSuchUser,
    /// Aliases point at each other too deeply.
    #[error("alias loop")]
    Loop,
    /// The address is not `local@domain`.
    #[error("bad address")]
    BadAddress,
}

/// Split `local@domain` (lower-cased); `None` when malformed.
pub fn split_address(address: &str) -> Option<(String, String)> {
    let (local, domain) = address.rsplit_once('@')?;
    if local.is_empty() || domain.is_empty() {
        return None;
    }
    let domain = domain.trim_end_matches('.').to_ascii_lowercase();
    Some((local.to_lowercase(), domain))
}

/// The objects of a config that could not be applied, by object name.
type Rejections = BTreeMap<String, String>;

impl Plan {
    /// Render the controller's config (pure), object by object: an object that is
    /// not valid (a local part that is not a [`LocalPart`], a domain that is not a
    /// [`DomainName`], an alias destination that is not an [`EmailAddress`], a
    /// password hash of no known scheme, a secondary without a primary
    /// endpoint …) keeps its version in `previous` (the plan served so far), or is
    /// left out when it is new, and is returned with the reason; every other
    /// object is taken as configured.
    pub fn render(cfg: &MailConfig, previous: &Plan) -> (Plan, Vec<RejectedObject>) {
        let mut rejected = Rejections::new();
        let mut domains = BTreeMap::new();
        for d in &cfg.domains {
            let name = match DomainName::new(&d.domain) {
                Ok(n) => n.as_str().to_string(),
                Err(e) => {
                    rejected.insert(format!("mail domain {}", d.domain), e.to_string());
                    continue;
                }
            };
            if domains.contains_key(&name) {
                rejected.insert(
                    format!("mail domain {name}"),
                    "appears twice; the first is served".into(),
                );
                continue;
            }
            let old = previous.domains.get(&name);
            match render_domain(d, &name, old, cfg.writer.is_some(), &mut rejected) {
                Some(plan) => {
                    domains.insert(name, plan);
                }
                None => {
                    if let Some(old) = old {
                        domains.insert(name, old.clone());
                    }
                }
            }
        }
        let mut peer_addresses = BTreeSet::new();
        for a in cfg.peers.iter().flat_map(|p| &p.addresses) {
            match a.parse::<IpAddr>() {
                Ok(ip) => {
                    peer_addresses.insert(ip);
                }
                Err(_) => {
                    rejected.insert(
                        format!("mail peer {a}"),
                        "not an IP address; its relayed mail is checked like anyone's".into(),
                    );
                }
            }
        }
        let mut peer_names: Vec<String> = cfg
            .peers
            .iter()
            .flat_map(|p| &p.names)
            .map(|n| n.trim_end_matches('.').to_ascii_lowercase())
            .filter(|n| !n.is_empty())
            .collect();
        peer_names.sort();
        peer_names.dedup();
        let plan = Plan {
            domains,
            peer_addresses,
            peer_names,
            replicated: cfg.writer.is_some(),
        };
        let rejected = rejected
            .into_iter()
            .map(|(object, reason)| RejectedObject { object, reason })
            .collect();
        (plan, rejected)
    }

    /// Whether `domain` is hosted here.
    pub fn hosts(&self, domain: &str) -> bool {
        self.domains
            .contains_key(&domain.trim_end_matches('.').to_ascii_lowercase())
    }

    /// Where mail for `address` goes. `Remote` only for domains not hosted here;
    /// callers that are not allowed to relay refuse those with [`RcptError::NotHosted`].
    pub fn resolve(&self, address: &str) -> Result<Vec<Target>, RcptError> {
        let mut out = BTreeSet::new();
        self.resolve_into(address, 0, &mut out)?;
        Ok(out.into_iter().collect())
    }

    fn resolve_into(
        &self,
        address: &str,
        depth: usize,
        out: &mut BTreeSet<Target>,
    ) -> Result<(), RcptError> {
        if depth > MAX_ALIAS_DEPTH {
            return Err(RcptError::Loop);
        }
        let (local, domain) = split_address(address).ok_or(RcptError::BadAddress)?;
        let Some(d) = self.domains.get(&domain) else {
            if depth == 0 {
                return Err(RcptError::NotHosted);
            }
            out.insert(Target::Remote {
                address: format!("{local}@{domain}"),
            });
            return Ok(());
        };
        let is_box = d.mailboxes.contains(&local) || d.accounts.contains_key(&local);
        let alias = d.aliases.get(&local);
        if !is_box && alias.is_none() {
            return Err(RcptError::NoSuchUser);
        }
        match (d.primary, d.primary_smtp) {
            (false, Some(primary)) => {
                // The primary expands aliases; we only check the recipient exists.
                out.insert(Target::Relay {
                    primary,
                    address: format!("{local}@{domain}"),
                });
            }
            _ => {
                if is_box {
                    out.insert(Target::Local {
                        domain: domain.clone(),
                        local: local.clone(),
                    });
                }
                for dest in alias.into_iter().flatten() {
                    self.resolve_into(dest, depth + 1, out)?;
                }
            }
        }
        Ok(())
    }

    /// The login `address` (`local@domain`) on a primary domain (on every server
    /// when the mailboxes are replicated), if it exists.
    pub fn account(&self, address: &str) -> Option<(&DomainPlan, String, &Account)> {
        let (local, domain) = split_address(address)?;
        let d = self.domains.get(&domain)?;
        if !d.primary && !self.replicated {
            return None;
        }
        let acc = d.accounts.get(&local)?;
        Some((d, local, acc))
    }

    /// The site login `site:<domain>` (`model::sitemail::login_name`): the
    /// domain's plan and the hash of the site's secret, on primaries and
    /// secondaries alike.
    pub fn site_login(&self, user: &str) -> Option<(&DomainPlan, &str)> {
        let site = model::sitemail::site_of_login(user)?;
        let d = self.domains.get(site.as_str())?;
        Some((d, d.site_login.as_deref()?))
    }

    /// Quota (bytes, 0 = unlimited) of the local mailbox.
    pub fn quota(&self, domain: &str, local: &str) -> u64 {
        self.domains
            .get(domain)
            .and_then(|d| d.accounts.get(local))
            .map(|a| a.quota_bytes)
            .unwrap_or(0)
    }

    /// Whether the authenticated `user` (`local@domain`) may use `from` as its
    /// envelope sender: its own address, or an alias that delivers to it.
    /// A site login (`site:<domain>`) may use any address of its own domain
    /// (`model::sitemail::may_send_from`), never another domain's.
    pub fn may_send_as(&self, user: &str, from: &str) -> bool {
        if let Some(site) = model::sitemail::site_of_login(user) {
            return model::sitemail::may_send_from(&site, from);
        }
        let (Some((ul, ud)), Some((fl, fd))) = (split_address(user), split_address(from)) else {
            return false;
        };
        if ul == fl && ud == fd {
            return true;
        }
        let Some(d) = self.domains.get(&fd) else {
            return false;
        };
        if !d.aliases.contains_key(&fl) {
            return false;
        }
        let me = Target::Local {
            domain: ud,
            local: ul,
        };
        self.resolve(&format!("{fl}@{fd}"))
            .map(|ts| ts.contains(&me))
            .unwrap_or(false)
    }
}

/// One domain's plan, object by object (see [`Plan::render`]); `None` when the
/// domain itself cannot be served as configured (then its `old` plan stays).
fn render_domain(
    d: &MailDomain,
    name: &str,
    old: Option<&DomainPlan>,
    replicated: bool,
    rejected: &mut Rejections,
) -> Option<DomainPlan> {
    let primary_smtp = if d.primary || (replicated && d.primary_smtp.is_none()) {
        None
    } else {
        let raw = d.primary_smtp.clone().unwrap_or_default();
        match raw.parse::<SocketAddr>() {
            Ok(a) => Some(a),
            Err(_) => {
                rejected.insert(
                    format!("mail domain {name}"),
                    format!("a secondary needs primary_smtp as ip:port, got {raw:?}"),
                );
                return None;
            }
        }
    };
    let mut reject = |what: &str, local: &str, reason: String| {
        rejected.insert(format!("{what} {local}@{name}"), reason);
    };
    let mut mailboxes = BTreeSet::new();
    for m in &d.mailboxes {
        match LocalPart::new(m) {
            Ok(l) => {
                mailboxes.insert(l.as_str().to_string());
            }
            Err(e) => reject("mailbox", m, e.to_string()),
        }
    }
    let mut aliases = BTreeMap::new();
    for (l, dest) in &d.aliases {
        let local = match LocalPart::new(l) {
            Ok(l) => l.as_str().to_string(),
            Err(e) => {
                reject("alias", l, e.to_string());
                continue;
            }
        };
        let parsed: Result<Vec<String>, String> = dest
            .iter()
            .map(|a| {
                EmailAddress::new(a)
                    .map(|a| a.as_str().to_string())
                    .map_err(|e| format!("destination {a:?}: {e}"))
            })
            .collect();
        match parsed {
            Ok(dest) => {
                aliases.insert(local, dest);
            }
            Err(e) => {
                reject("alias", &local, e);
                if let Some(kept) = old.and_then(|o| o.aliases.get(&local)) {
                    aliases.insert(local, kept.clone());
                }
            }
        }
    }
    let mut accounts = BTreeMap::new();
    for a in &d.accounts {
        let local = match LocalPart::new(&a.local_part) {
            Ok(l) => l.as_str().to_string(),
            Err(e) => {
                reject("mailbox", &a.local_part, e.to_string());
                continue;
            }
        };
        if let Err(e) = passhash::scheme(&a.password_hash) {
            reject("mailbox", &local, format!("the password hash: {e}"));
            if let Some(kept) = old.and_then(|o| o.accounts.get(&local)) {
                accounts.insert(local, kept.clone());
            }
            continue;
        }
        accounts.insert(
            local,
            Account {
                password_hash: a.password_hash.clone(),
                quota_bytes: a.quota_mb.saturating_mul(1024 * 1024),
                enabled: a.enabled,
            },
        );
    }
    let site_login = match &d.site_login {
        None => None,
        Some(l) => match passhash::scheme(&l.password_hash) {
            Ok(_) => Some(l.password_hash.clone()),
            Err(e) => {
                rejected.insert(
                    format!("site login of {name}"),
                    format!("the password hash: {e}"),
                );
                old.and_then(|o| o.site_login.clone())
            }
        },
    };
    Some(DomainPlan {
        name: name.to_string(),
        site_login,
        primary: d.primary,
        mailboxes,
        aliases,
        accounts,
        primary_smtp,
        dkim: d.dkim.iter().chain(&d.dkim_rsa).cloned().collect(),
        limits: d.limits.unwrap_or_default(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proto::agent_v1::{MailAccount, MailDomain};

    pub(crate) fn domain(name: &str, primary: bool) -> MailDomain {
        MailDomain {
            domain: name.into(),
            primary,
            mailboxes: vec!["alice".into(), "bob".into()],
            aliases: vec![
                ("info".into(), vec!["alice@example.com".into()]),
                (
                    "team".into(),
                    vec!["alice@example.com".into(), "bob@example.com".into()],
                ),
                ("out".into(), vec!["someone@remote.test".into()]),
                ("loop".into(), vec!["loop@example.com".into()]),
            ],
            accounts: vec![MailAccount {
                quota_mb: 1,
                ..account("alice")
            }],
            primary_smtp: (!primary).then(|| "127.0.0.9:25".into()),
            dkim: None,
            dkim_rsa: None,
            limits: None,
            site_login: None,
        }
    }

    fn config(domains: Vec<MailDomain>) -> MailConfig {
        MailConfig {
            domains,
            tls: None,
            flush: 0,
            peers: Vec::new(),
            writer: None,
        }
    }

    fn plan(primary: bool) -> Plan {
        let (plan, rejected) = Plan::render(
            &config(vec![domain("Example.COM", primary)]),
            &Plan::default(),
        );
        assert!(rejected.is_empty(), "{rejected:?}");
        plan
    }

    #[test]
    fn resolves_mailboxes_aliases_and_refuses_others() {
        let p = plan(true);
        let alice = Target::Local {
            domain: "example.com".into(),
            local: "alice".into(),
        };
        assert_eq!(p.resolve("Alice@example.com").unwrap(), vec![alice.clone()]);
        assert_eq!(p.resolve("info@EXAMPLE.com").unwrap(), vec![alice.clone()]);
        assert_eq!(p.resolve("team@example.com").unwrap().len(), 2);
        assert_eq!(
            p.resolve("out@example.com").unwrap(),
            vec![Target::Remote {
                address: "someone@remote.test".into()
            }]
        );
        assert_eq!(p.resolve("nobody@example.com"), Err(RcptError::NoSuchUser));
        assert_eq!(p.resolve("x@other.test"), Err(RcptError::NotHosted));
        assert_eq!(p.resolve("loop@example.com"), Err(RcptError::Loop));
        assert_eq!(p.resolve("nodomain"), Err(RcptError::BadAddress));
        assert_eq!(p.quota("example.com", "alice"), 1024 * 1024);
    }

    #[test]
    fn secondary_relays_valid_recipients_only() {
        let p = plan(false);
        assert_eq!(
            p.resolve("team@example.com").unwrap(),
            vec![Target::Relay {
                primary: "127.0.0.9:25".parse().unwrap(),
                address: "team@example.com".into()
            }]
        );
        assert_eq!(p.resolve("nobody@example.com"), Err(RcptError::NoSuchUser));
        assert!(p.account("alice@example.com").is_none());
    }

    #[test]
    fn sender_rules() {
        let p = plan(true);
        assert!(p.may_send_as("alice@example.com", "alice@example.com"));
        assert!(p.may_send_as("alice@example.com", "info@example.com"));
        assert!(p.may_send_as("alice@example.com", "team@example.com"));
        assert!(!p.may_send_as("alice@example.com", "bob@example.com"));
        assert!(!p.may_send_as("bob@example.com", "info@example.com"));
        assert!(!p.may_send_as("alice@example.com", "alice@other.test"));
    }

    fn objects(rejected: &[RejectedObject]) -> Vec<&str> {
        rejected.iter().map(|r| r.object.as_str()).collect()
    }

    #[test]
    fn bad_objects_are_rejected_one_by_one_and_the_rest_applies() {
        // New bad objects beside good ones: the bad ones stay absent, the rest applies.
        let mut d = domain("example.com", true);
        d.mailboxes.push("../etc".into());
        d.mailboxes.push("a/b".into());
        d.mailboxes.push("carol".into());
        d.accounts.push(account("a/b"));
        let mut other = domain("other.test", true);
        other.accounts[0].enabled = false;
        let (p, rejected) = Plan::render(
            &config(vec![d, other, domain("../x", true)]),
            &Plan::default(),
        );
        assert_eq!(
            objects(&rejected),
            vec![
                "mail domain ../x",
                "mailbox ../etc@example.com",
                "mailbox a/b@example.com"
            ]
        );
        assert!(
            rejected[2].reason.contains("cannot contain `/`"),
            "{rejected:?}"
        );
        let ex = &p.domains["example.com"];
        assert!(ex.mailboxes.contains("carol") && !ex.mailboxes.contains("a/b"));
        assert!(!ex.accounts.contains_key("a/b"));
        assert!(!p.domains["other.test"].accounts["alice"].enabled);
        assert_eq!(p.domains.len(), 2);

        // Updates of good objects to bad versions keep the old version; other
        // changes in the same config apply.
        let mut d = domain("example.com", true);
        d.aliases[0].1 = vec!["a/b@example.com".into()];
        d.accounts[0].password_hash = "not a hash".into();
        d.accounts[0].enabled = false;
        d.mailboxes.retain(|m| m != "bob");
        let mut secondary = domain("other.test", false);
        secondary.primary_smtp = Some("nope".into());
        let (q, rejected) = Plan::render(&config(vec![d, secondary]), &p);
        assert_eq!(
            objects(&rejected),
            vec![
                "alias info@example.com",
                "mail domain other.test",
                "mailbox alice@example.com"
            ]
        );
        let ex = &q.domains["example.com"];
        assert_eq!(ex.aliases["info"], vec!["alice@example.com".to_string()]);
        assert_eq!(
            ex.accounts["alice"],
            p.domains["example.com"].accounts["alice"]
        );
        assert!(!ex.mailboxes.contains("bob"), "the good change applied");
        assert_eq!(q.domains["other.test"], p.domains["other.test"]);

        // A duplicate domain: the first is served.
        let (r, rejected) = Plan::render(
            &config(vec![
                domain("example.com", true),
                domain("EXAMPLE.com", false),
            ]),
            &Plan::default(),
        );
        assert_eq!(objects(&rejected), vec!["mail domain example.com"]);
        assert!(r.domains["example.com"].primary);
    }

    fn account(local: &str) -> MailAccount {
        MailAccount {
            local_part: local.into(),
            password_hash: "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA"
                .into(),
            quota_mb: 0,
            enabled: true,
        }
    }
}
