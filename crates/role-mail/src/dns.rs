//! MX lookup for outbound delivery: a tiny stub resolver over UDP (hickory-proto
//! wire types) asking the configured resolver (engine option `resolver`), from the
//! server's own address. MX hosts are ordered by preference; a domain without MX
//! falls back to its own address records (RFC 5321 §5.1); a null MX (`0 .`,
//! RFC 7505) and NXDOMAIN are permanent failures.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use hickory_proto::op::{Message, Query, ResponseCode};
use hickory_proto::rr::{Name, RData, RecordType};
use tokio::net::UdpSocket;

const TIMEOUT: Duration = Duration::from_secs(5);

/// A lookup failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DnsError {
    /// The domain cannot receive mail (NXDOMAIN, null MX, no address): permanent.
    #[error("{0}")]
    Permanent(String),
    /// Resolver trouble: try later.
    #[error("{0}")]
    Temporary(String),
}

/// One query; returns the response.
async fn query(
    resolver: SocketAddr,
    bind: Option<IpAddr>,
    name: &Name,
    rtype: RecordType,
) -> Result<Message, DnsError> {
    let tmp = |e: &dyn std::fmt::Display| DnsError::Temporary(format!("dns: {e}"));
    let local = match bind {
        Some(ip) if ip.is_ipv4() == resolver.is_ipv4() => SocketAddr::new(ip, 0),
        _ if resolver.is_ipv4() => SocketAddr::from(([0, 0, 0, 0], 0)),
        _ => SocketAddr::from(([0u16; 8], 0)),
    };
    let sock = UdpSocket::bind(local).await.map_err(|e| tmp(&e))?;
    sock.connect(resolver).await.map_err(|e| tmp(&e))?;
    let mut msg = Message::query();
    msg.metadata.recursion_desired = true;
    msg.add_query(Query::query(name.clone(), rtype));
    let id = msg.metadata.id;
    let bytes = msg.to_vec().map_err(|e| tmp(&e))?;
    for _ in 0..3 {
        sock.send(&bytes).await.map_err(|e| tmp(&e))?;
        let mut buf = vec![0u8; 4096];
        match tokio::time::timeout(TIMEOUT, sock.recv(&mut buf)).await {
            Ok(Ok(n)) => {
                let Ok(resp) = Message::from_vec(&buf[..n]) else {
                    continue;
                };
                if resp.metadata.id == id {
                    return Ok(resp);
                }
            }
            Ok(Err(e)) => return Err(tmp(&e)),
            Err(_) => continue,
        }
    }
    Err(DnsError::Temporary(format!(
        "dns: no answer for {name} {rtype}"
    )))
}

/// Addresses of `host` (A and AAAA answers, or the ones in `hints`).
async fn addresses(
    resolver: SocketAddr,
    bind: Option<IpAddr>,
    host: &Name,
    hints: &Message,
) -> Result<Vec<IpAddr>, DnsError> {
    let from = |m: &Message| -> Vec<IpAddr> {
        m.answers
            .iter()
            .chain(m.additionals.iter())
            .filter(|r| r.name == *host)
            .filter_map(|r| match &r.data {
                RData::A(a) => Some(IpAddr::V4(a.0)),
                RData::AAAA(a) => Some(IpAddr::V6(a.0)),
                _ => None,
            })
            .collect()
    };
    let hinted = from(hints);
    if !hinted.is_empty() {
        return Ok(hinted);
    }
    let resp = query(resolver, bind, host, RecordType::A).await?;
    Ok(from(&resp))
}

/// The mail exchangers of `domain`, best first, as addresses.
pub async fn mx_hosts(
    resolver: SocketAddr,
    bind: Option<IpAddr>,
    domain: &str,
) -> Result<Vec<IpAddr>, DnsError> {
    let mut name = Name::from_ascii(domain)
        .map_err(|e| DnsError::Permanent(format!("bad domain {domain}: {e}")))?;
    name.set_fqdn(true);
    let resp = query(resolver, bind, &name, RecordType::MX).await?;
    match resp.metadata.response_code {
        ResponseCode::NoError => {}
        ResponseCode::NXDomain => {
            return Err(DnsError::Permanent(format!("{domain}: no such domain")))
        }
        rc => return Err(DnsError::Temporary(format!("{domain}: resolver said {rc}"))),
    }
    let mut mxs: Vec<(u16, Name)> = resp
        .answers
        .iter()
        .filter_map(|r| match &r.data {
            RData::MX(mx) => Some((mx.preference, mx.exchange.clone())),
            _ => None,
        })
        .collect();
    if mxs.iter().any(|(_, n)| n.is_root()) {
        return Err(DnsError::Permanent(format!(
            "{domain} accepts no mail (null MX)"
        )));
    }
    if mxs.is_empty() {
        mxs.push((0, name));
    }
    mxs.sort_by_key(|(p, _)| *p);
    let mut out = Vec::new();
    for (_, host) in mxs {
        out.extend(addresses(resolver, bind, &host, &resp).await?);
    }
    if out.is_empty() {
        return Err(DnsError::Permanent(format!(
            "{domain}: no address for its mail exchangers"
        )));
    }
    Ok(out)
}
