//! DNS-01 through our own DNS (RFC 8555 8.4): an order's `_acme-challenge.<name>`
//! TXT records are one [`SecretPurpose::AcmeChallenge`] secret (algorithm
//! [`ALGORITHM`], subject `dns-01:<domain>`), which the config builder puts into
//! the zone holding each name (`ZoneInput::acme_txt`) like any generated record;
//! the serial moves, the secondaries are notified and transfer. The CA is told to
//! validate only once every authoritative server of the zone — the DNS cluster's
//! servers, primary and secondaries, and its external secondaries — answers
//! every value when asked directly ([`wait_served`]). The secret is removed after
//! the order, whatever its outcome.

use std::net::SocketAddr;
use std::time::Duration;

use hickory_proto::op::ResponseCode;
use hickory_proto::rr::{Name, RecordType};
use model::entity::{Cluster, Domain, Kind, Secret, SecretPurpose, Server};
use model::Role;
use serde::{Deserialize, Serialize};
use store::{NewObject, Stored};

use crate::state::AppState;

/// The `algorithm` of a DNS-01 challenge secret (an HTTP-01 one says `http-01`).
pub const ALGORITHM: &str = "dns-01";

/// Longest wait for every authoritative server to answer the TXT records.
pub const SERVE_WAIT: Duration = Duration::from_secs(60);

/// One pending DNS-01 challenge.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TxtChallenge {
    /// The identifier validated (`example.com`, `*.example.com`).
    pub name: String,
    /// The record's owner name: `_acme-challenge.` and the name without `*.`.
    pub record: String,
    /// The TXT value: base64url of the key authorization's SHA-256.
    pub value: String,
}

/// The `_acme-challenge` owner name of identifier `name` (a wildcard's is its
/// base name's, RFC 8555 8.4).
pub fn record_name(name: &str) -> String {
    let base = name
        .strip_prefix("*.")
        .unwrap_or(name)
        .trim_end_matches('.');
    format!("_acme-challenge.{base}")
}

/// The store subject of `domain`'s DNS-01 secret.
fn subject(domain: &str) -> String {
    format!("dns-01:{domain}")
}

/// The TXT challenges a secret holds (none unless it is a DNS-01 challenge
/// secret whose JSON parses: a bad secret must not stop a build).
pub fn records_of(s: &Secret) -> Vec<TxtChallenge> {
    if s.purpose != SecretPurpose::AcmeChallenge || s.algorithm != ALGORITHM {
        return Vec::new();
    }
    serde_json::from_str(&s.public).unwrap_or_default()
}

/// Store `domain`'s pending TXT challenges (replacing earlier ones).
pub async fn put(
    app: &AppState,
    domain: &Stored<Domain>,
    txts: &[TxtChallenge],
) -> Result<(), store::StoreError> {
    let sub = subject(&domain.meta.name);
    let name = SecretPurpose::AcmeChallenge.store_name(&sub);
    let data = Secret {
        purpose: SecretPurpose::AcmeChallenge,
        subject: sub,
        public: serde_json::to_string(txts).unwrap_or_default(),
        private: String::new(),
        algorithm: ALGORITHM.into(),
        not_after: None,
        uploaded: false,
        names: txts.iter().map(|t| t.name.clone()).collect(),
    };
    let mut tx = app.store.begin(super::lease::actor()).await?;
    match tx.get_by_name::<Secret>(&name).await? {
        Some(cur) => {
            tx.update(cur.meta.id, &name, data).await?;
        }
        None => {
            tx.create(NewObject {
                name,
                owner: domain.meta.owner,
                parent: None,
                data,
            })
            .await?;
        }
    }
    tx.commit().await?;
    app.changed();
    Ok(())
}

/// Remove `domain`'s TXT challenges (the zone loses the records with its next
/// build).
pub async fn delete(app: &AppState, domain: &str) -> Result<(), store::StoreError> {
    let name = SecretPurpose::AcmeChallenge.store_name(&subject(domain));
    let mut tx = app.store.begin(super::lease::actor()).await?;
    if let Some(cur) = tx.get_by_name::<Secret>(&name).await? {
        tx.delete(Kind::Secret, cur.meta.id).await?;
        tx.commit().await?;
        app.changed();
    }
    Ok(())
}

/// The authoritative servers of `domain`'s zone, as the controller reaches
/// them: each server of its DNS cluster on its reported service port (the probe
/// port when none is reported), then the cluster's external secondaries.
pub fn authoritative(
    app: &AppState,
    domain: &Domain,
    servers: &[Stored<Server>],
    clusters: &[Stored<Cluster>],
) -> Vec<SocketAddr> {
    let Some(cluster) = domain.placements.get(&Role::Dns) else {
        return Vec::new();
    };
    let mut out: Vec<SocketAddr> = servers
        .iter()
        .filter(|s| s.data.cluster == *cluster && s.data.role == Role::Dns)
        .flat_map(|s| {
            let port = app
                .health
                .reported_port(s.meta.id)
                .unwrap_or_else(|| app.config.health.probe_ports.of(Role::Dns));
            s.data
                .addresses
                .iter()
                .map(move |ip| SocketAddr::new(*ip, port))
        })
        .collect();
    out.extend(
        clusters
            .iter()
            .filter(|c| c.meta.id == *cluster)
            .flat_map(|c| c.data.external_secondaries.iter().copied()),
    );
    out
}

/// Publish `txts` (into `domain`'s secret, so into the zone of each name) and
/// wait until every authoritative server of each name's zone answers them.
pub async fn publish_and_wait(
    app: &AppState,
    domain: &Stored<Domain>,
    txts: &[TxtChallenge],
    servers: &[Stored<Server>],
) -> Result<(), String> {
    put(app, domain, txts)
        .await
        .map_err(|e| format!("cannot store the DNS-01 challenge records: {e}"))?;
    let clusters = app
        .store
        .all::<Cluster>()
        .await
        .map_err(|e| e.to_string())?;
    let mut by_zone: Vec<(Vec<SocketAddr>, Vec<TxtChallenge>)> = Vec::new();
    for t in txts {
        let zone = super::plan::zone_of(app, &t.name)
            .await?
            .ok_or_else(|| format!("{} lies in no domain of this platform", t.name))?;
        let auth = authoritative(app, &zone.data, servers, &clusters);
        match by_zone.iter_mut().find(|(a, _)| *a == auth) {
            Some((_, list)) => list.push(t.clone()),
            None => by_zone.push((auth, vec![t.clone()])),
        }
    }
    for (auth, list) in &by_zone {
        wait_served(auth, list).await?;
    }
    Ok(())
}

/// What one server answered for one record: the TXT strings, or why not.
pub type Answer = Result<Vec<String>, String>;

/// Ask `server` directly for the TXT records at `record`.
pub async fn observe(server: SocketAddr, record: &str) -> Answer {
    let qname = Name::from_ascii(format!("{}.", record.trim_end_matches('.')))
        .map_err(|e| format!("`{record}` is not a DNS name: {e}"))?;
    let msg = crate::dnsq::query(server, &qname, RecordType::TXT).await?;
    match msg.metadata.response_code {
        ResponseCode::NoError | ResponseCode::NXDomain => {
            Ok(crate::dnsq::texts(&msg, RecordType::TXT))
        }
        rc => Err(format!("{server} answered {rc} for {record} TXT")),
    }
}

/// The verdict on one server's answer: `Ok` when it holds `value`. Pure.
pub fn serves(
    server: SocketAddr,
    record: &str,
    answer: &Answer,
    value: &str,
) -> Result<(), String> {
    match answer {
        Ok(texts) if texts.iter().any(|t| t == value) => Ok(()),
        Ok(_) => Err(format!("{server} does not serve the TXT at {record} yet")),
        Err(e) => Err(e.clone()),
    }
}

/// Wait (at most [`SERVE_WAIT`]) until every server of `servers` answers every
/// challenge's value; the reasons of those that do not, when the time is up.
pub async fn wait_served(servers: &[SocketAddr], txts: &[TxtChallenge]) -> Result<(), String> {
    if servers.is_empty() {
        return Err("the zone has no authoritative server of ours to publish the TXT".into());
    }
    let deadline = tokio::time::Instant::now() + SERVE_WAIT;
    loop {
        let mut missing = Vec::new();
        for s in servers {
            for t in txts {
                let answer = observe(*s, &t.record).await;
                if let Err(e) = serves(*s, &t.record, &answer, &t.value) {
                    missing.push(e);
                }
            }
        }
        if missing.is_empty() {
            return Ok(());
        }
        if tokio::time::Instant::now() >= deadline {
            missing.dedup();
            return Err(format!(
                "the challenge TXT records were not served by every authoritative server within {}s: {}",
                SERVE_WAIT.as_secs(),
                missing.join("; ")
            ));
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn record_names_and_served_verdicts() {
        assert_eq!(record_name("*.a.example"), "_acme-challenge.a.example");
        assert_eq!(
            record_name("www.a.example."),
            "_acme-challenge.www.a.example"
        );
        let s: SocketAddr = "192.0.2.53:53".parse().unwrap();
        let r = "_acme-challenge.a.example";
        assert!(serves(s, r, &Ok(vec!["x".into(), "v".into()]), "v").is_ok());
        let e = serves(s, r, &Ok(vec!["old".into()]), "v").unwrap_err();
        assert!(e.contains("192.0.2.53") && e.contains(r), "{e}");
        assert_eq!(
            serves(s, r, &Err("timeout".into()), "v").unwrap_err(),
            "timeout"
        );
    }
}
