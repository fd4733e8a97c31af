//! Pure render of the controller's [`MailConfig`] into the engine's [`Plan`]: which
//! domains this server accepts for, who the valid recipients are, where each
//! recipient's mail goes (a local Maildir, or the domain's primary over SMTP), the
//! mailbox logins and quotas. No I/O; every decision the SMTP and POP3 sessions take
//! about addresses is a function of a `Plan`.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, SocketAddr};

use proto::agent_v1::{DkimKey, MailConfig};

/// How deep aliases may point at other aliases before we call it a loop.
const MAX_ALIAS_DEPTH: usize = 8;

/// The config could not be turned into a plan (the engine keeps its previous plan).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RenderError {
    /// A domain name is not a plain lower-case DNS name.
    #[error("invalid domain name {0:?}")]
    Domain(String),
    /// A local part could be used to escape the mail directory or is not valid.
    #[error("invalid local part {0:?} in {1}")]
    LocalPart(String, String),
    /// A secondary domain has no (valid) primary endpoint.
    #[error("secondary domain {0} needs primary_smtp as ip:port, got {1:?}")]
    PrimarySmtp(String, String),
    /// The same domain appears twice.
    #[error("domain {0} appears twice")]
    Duplicate(String),
    /// A peer mail server's address is not an IP address.
    #[error("peer mail server address {0:?} is not an IP address")]
    PeerAddress(String),
}

/// One mailbox login.
#[derive(Clone, PartialEq, Eq)]
pub struct Account {
    /// argon2id PHC string.
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
    /// DKIM signing key.
    pub dkim: Option<DkimKey>,
    /// Outgoing limits on submission (defaults applied by its accessors).
    pub limits: proto::agent_v1::MailLimits,
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

/// A domain name we accept into paths: lower-case LDH labels separated by dots.
fn valid_domain(d: &str) -> bool {
    !d.is_empty()
        && d.len() <= 253
        && d.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && l.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
                && !l.starts_with('-')
        })
}

/// A local part we accept into paths: RFC 5321 dot-atom characters (plus UTF-8),
/// never `/`, NUL, a leading dot or `..`.
fn valid_local(l: &str) -> bool {
    !l.is_empty()
        && l.len() <= 64
        && !l.starts_with('.')
        && !l.ends_with('.')
        && !l.contains("..")
        && l.chars().all(|c| {
            c.is_alphanumeric()
                || (c.is_ascii_punctuation() && "!#$%&'*+-/=?^_`{|}~.".contains(c) && c != '/')
        })
}

impl Plan {
    /// Render the controller's config (pure).
    pub fn render(cfg: &MailConfig) -> Result<Plan, RenderError> {
        let mut domains = BTreeMap::new();
        for d in &cfg.domains {
            let name = d.domain.trim_end_matches('.').to_ascii_lowercase();
            if !valid_domain(&name) {
                return Err(RenderError::Domain(d.domain.clone()));
            }
            let local = |l: &str| -> Result<String, RenderError> {
                let l = l.to_lowercase();
                if valid_local(&l) {
                    Ok(l)
                } else {
                    Err(RenderError::LocalPart(l, name.clone()))
                }
            };
            let mailboxes = d
                .mailboxes
                .iter()
                .map(|m| local(m))
                .collect::<Result<BTreeSet<_>, _>>()?;
            let mut aliases = BTreeMap::new();
            for (l, dest) in &d.aliases {
                let dest = dest.iter().map(|a| a.trim().to_lowercase()).collect();
                aliases.insert(local(l)?, dest);
            }
            let mut accounts = BTreeMap::new();
            for a in &d.accounts {
                accounts.insert(
                    local(&a.local_part)?,
                    Account {
                        password_hash: a.password_hash.clone(),
                        quota_bytes: a.quota_mb.saturating_mul(1024 * 1024),
                        enabled: a.enabled,
                    },
                );
            }
            let primary_smtp = if d.primary {
                None
            } else {
                let raw = d.primary_smtp.clone().unwrap_or_default();
                Some(
                    raw.parse::<SocketAddr>()
                        .map_err(|_| RenderError::PrimarySmtp(name.clone(), raw))?,
                )
            };
            let plan = DomainPlan {
                name: name.clone(),
                primary: d.primary,
                mailboxes,
                aliases,
                accounts,
                primary_smtp,
                dkim: d.dkim.clone(),
                limits: d.limits.unwrap_or_default(),
            };
            if domains.insert(name.clone(), plan).is_some() {
                return Err(RenderError::Duplicate(name));
            }
        }
        let peer_addresses = cfg
            .peers
            .iter()
            .flat_map(|p| &p.addresses)
            .map(|a| {
                a.parse::<IpAddr>()
                    .map_err(|_| RenderError::PeerAddress(a.clone()))
            })
            .collect::<Result<_, _>>()?;
        let mut peer_names: Vec<String> = cfg
            .peers
            .iter()
            .flat_map(|p| &p.names)
            .map(|n| n.trim_end_matches('.').to_ascii_lowercase())
            .filter(|n| !n.is_empty())
            .collect();
        peer_names.sort();
        peer_names.dedup();
        Ok(Plan {
            domains,
            peer_addresses,
            peer_names,
        })
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

    /// The login `address` (`local@domain`) on a primary domain, if it exists.
    pub fn account(&self, address: &str) -> Option<(&DomainPlan, String, &Account)> {
        let (local, domain) = split_address(address)?;
        let d = self.domains.get(&domain)?;
        if !d.primary {
            return None;
        }
        let acc = d.accounts.get(&local)?;
        Some((d, local, acc))
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
    pub fn may_send_as(&self, user: &str, from: &str) -> bool {
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
                local_part: "alice".into(),
                password_hash: "x".into(),
                quota_mb: 1,
                enabled: true,
            }],
            primary_smtp: (!primary).then(|| "127.0.0.9:25".into()),
            dkim: None,
            limits: None,
        }
    }

    fn plan(primary: bool) -> Plan {
        Plan::render(&MailConfig {
            domains: vec![domain("Example.COM", primary)],
            tls: None,
            flush: 0,
            peers: Vec::new(),
        })
        .unwrap()
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

    #[test]
    fn rejects_path_escapes_and_bad_secondaries() {
        let mut d = domain("example.com", true);
        d.mailboxes.push("../etc".into());
        assert!(Plan::render(&MailConfig {
            domains: vec![d],
            tls: None,
            flush: 0,
            peers: Vec::new(),
        })
        .is_err());
        let mut d = domain("example.com", true);
        d.mailboxes.push("a/b".into());
        assert!(Plan::render(&MailConfig {
            domains: vec![d],
            tls: None,
            flush: 0,
            peers: Vec::new(),
        })
        .is_err());
        let mut d = domain("example.com", false);
        d.primary_smtp = Some("nope".into());
        assert!(Plan::render(&MailConfig {
            domains: vec![d],
            tls: None,
            flush: 0,
            peers: Vec::new(),
        })
        .is_err());
        assert!(Plan::render(&MailConfig {
            domains: vec![domain("../x", true)],
            tls: None,
            flush: 0,
            peers: Vec::new(),
        })
        .is_err());
    }
}
