//! Which names of a site go into its order, and how each is validated: DNS-01
//! through our DNS ([`super::dns01`]) for a name whose zone is delegated to our
//! name servers and for wildcards, HTTP-01 otherwise ([`choose`]), unless the
//! site's owner chose one ([`Choice`]); a name that cannot pass its challenge
//! (not delegated for DNS-01, not resolving to the site's web servers for
//! HTTP-01, [`super::check`]) or whose CAA forbids the CA ([`super::caa`]) is
//! left out with the reason, the others are ordered ([`check_names`]).

use std::collections::{BTreeSet, HashMap};
use std::net::IpAddr;

use model::entity::{Cluster, Domain, Server};
use model::Role;
use serde::{Deserialize, Serialize};
use store::Stored;

use super::state::LeftOut;
use super::{caa, check, AcmeConfig};
use crate::state::AppState;

/// The owner's choice of challenge for a site.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum Choice {
    /// DNS-01 where delegated to us and for wildcards, HTTP-01 otherwise.
    #[default]
    #[serde(rename = "auto")]
    Auto,
    /// HTTP-01 only (wildcards are left out).
    #[serde(rename = "http-01")]
    Http01,
    /// DNS-01 only (names not delegated to us are left out).
    #[serde(rename = "dns-01")]
    Dns01,
}

impl Choice {
    /// Parse the API's and CLI's spelling.
    pub fn parse(s: &str) -> Option<Choice> {
        match s {
            "auto" => Some(Choice::Auto),
            "http-01" => Some(Choice::Http01),
            "dns-01" => Some(Choice::Dns01),
            _ => None,
        }
    }

    /// The API's spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Choice::Auto => "auto",
            Choice::Http01 => "http-01",
            Choice::Dns01 => "dns-01",
        }
    }
}

/// The challenge one name is validated with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Method {
    /// A token on every web server of the site (RFC 8555 8.3).
    #[serde(rename = "http-01")]
    Http01,
    /// A TXT record on every authoritative server of the zone (RFC 8555 8.4).
    #[serde(rename = "dns-01")]
    Dns01,
}

impl Method {
    /// The challenge's name.
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Http01 => "http-01",
            Method::Dns01 => "dns-01",
        }
    }
}

/// The challenge for `name` under `choice`, `delegated` telling whether its zone
/// is delegated to our name servers. Pure.
pub fn choose(name: &str, choice: Choice, delegated: bool) -> Method {
    match choice {
        Choice::Http01 => Method::Http01,
        Choice::Dns01 => Method::Dns01,
        Choice::Auto if name.starts_with("*.") || delegated => Method::Dns01,
        Choice::Auto => Method::Http01,
    }
}

/// The CA identities CAA must name for the configured CA: `[acme]
/// caa_identities`, else `letsencrypt.org` for the Let's Encrypt presets and
/// URLs; empty (no CAA check) for another CA without configured identities.
pub fn caa_identities(config: &AcmeConfig) -> Vec<String> {
    if !config.caa_identities.is_empty() {
        return config.caa_identities.clone();
    }
    if config.directory_url().contains(".letsencrypt.org/") {
        return vec!["letsencrypt.org".into()];
    }
    Vec::new()
}

/// The store's domain whose zone holds `name`: the longest domain `name` is at
/// or below.
pub async fn zone_of(app: &AppState, name: &str) -> Result<Option<Stored<Domain>>, String> {
    let base = name.strip_prefix("*.").unwrap_or(name);
    let starts = std::iter::once(0).chain(base.match_indices('.').map(|(i, _)| i + 1));
    for start in starts {
        let candidate = &base[start..];
        if let Some(d) = app
            .store
            .get_by_name::<Domain>(store::Scope::All, candidate)
            .await
            .map_err(|e| e.to_string())?
        {
            return Ok(Some(d));
        }
    }
    Ok(None)
}

/// Whether `zone`'s delegation points at its DNS cluster's servers.
async fn delegation(
    app: &AppState,
    zone: &Stored<Domain>,
    servers: &[Stored<Server>],
    clusters: &[Stored<Cluster>],
) -> Result<(), String> {
    let Some(cluster) = zone.data.placements.get(&Role::Dns) else {
        return Err(format!(
            "{} is not served by this platform's DNS",
            zone.meta.name
        ));
    };
    let ours: BTreeSet<String> = servers
        .iter()
        .filter(|s| s.data.cluster == *cluster && s.data.role == Role::Dns)
        .map(|s| s.data.hostname.as_str().to_owned())
        .collect();
    let external = clusters
        .iter()
        .any(|c| c.meta.id == *cluster && !c.data.external_secondaries.is_empty());
    let observed = check::observe_ns(app.config.names.resolver(), &zone.meta.name).await;
    check::evaluate_delegation(&zone.meta.name, &observed, &ours, external)
}

/// Check every wanted name and choose its challenge: the names to order, each
/// with its method, and those left out with the reason.
pub async fn check_names(
    app: &AppState,
    config: &AcmeConfig,
    wanted: &[String],
    choice: Choice,
    published: &BTreeSet<IpAddr>,
    servers: &[Stored<Server>],
) -> (Vec<(String, Method)>, Vec<LeftOut>) {
    let resolver = app.config.names.resolver();
    let identities = caa_identities(config);
    let clusters = app.store.all::<Cluster>().await.unwrap_or_default();
    // The delegation verdict per zone base (a wildcard shares its base's).
    let mut zones: HashMap<String, Result<(), String>> = HashMap::new();
    let mut ok = Vec::new();
    let mut left_out = Vec::new();
    for n in wanted {
        let verdict = async {
            let base = n.strip_prefix("*.").unwrap_or(n).to_owned();
            if !zones.contains_key(&base) {
                let d = match zone_of(app, n).await {
                    Ok(Some(z)) => delegation(app, &z, servers, &clusters).await,
                    Ok(None) => Err(format!("{n} lies in no domain of this platform")),
                    Err(e) => Err(e),
                };
                zones.insert(base.clone(), d);
            }
            let delegated = zones.get(&base).cloned().unwrap_or(Err(String::new()));
            let method = choose(n, choice, delegated.is_ok());
            match method {
                Method::Dns01 => delegated.map_err(|e| format!("DNS-01 for {n}: {e}"))?,
                Method::Http01 => {
                    let observed = check::observe(resolver, n).await;
                    check::evaluate(n, &observed, published)?;
                }
            }
            if !identities.is_empty() {
                let relevant = caa::observe(resolver, n).await?;
                caa::evaluate(n, &relevant, &identities)?;
            }
            Ok::<Method, String>(method)
        }
        .await;
        match verdict {
            Ok(m) => ok.push((n.clone(), m)),
            Err(reason) => left_out.push(LeftOut {
                name: n.clone(),
                reason,
            }),
        }
    }
    (ok, left_out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn challenge_choice() {
        assert_eq!(choose("a.example", Choice::Auto, false), Method::Http01);
        assert_eq!(choose("a.example", Choice::Auto, true), Method::Dns01);
        assert_eq!(choose("*.a.example", Choice::Auto, false), Method::Dns01);
        assert_eq!(choose("*.a.example", Choice::Http01, true), Method::Http01);
        assert_eq!(choose("a.example", Choice::Dns01, false), Method::Dns01);
        for c in [Choice::Auto, Choice::Http01, Choice::Dns01] {
            assert_eq!(Choice::parse(c.as_str()), Some(c));
        }
        assert_eq!(Choice::parse("tls-alpn-01"), None);
    }
}
