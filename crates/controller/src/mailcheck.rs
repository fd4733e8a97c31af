//! `hostplane mail check DOMAIN`: what receiving mail servers check before they
//! trust a domain's mail, asked over DNS the way they ask.
//!
//! The domain's own records (SPF, DKIM for both selectors, DMARC, MX) are read
//! from the domain's authoritative DNS servers (its DNS cluster, primary first), so
//! the check sees what is published, not what the controller meant to publish. The
//! mail servers' HELO names and the PTR records of their addresses live in other
//! zones and are resolved through the configured resolver
//! (`[names] resolver`). [`evaluate`] is the pure verdict over what was
//! observed; [`observe`] does the lookups.

use std::net::{IpAddr, SocketAddr};

use hickory_proto::op::ResponseCode;
use hickory_proto::rr::{Name, RecordType};

/// A verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// As receivers want it.
    Ok,
    /// Works, but some receivers may mind.
    Warn,
    /// Receivers will reject or junk mail over this.
    Fail,
}

impl Status {
    /// `ok`, `warn`, `fail`.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Ok => "ok",
            Status::Warn => "warn",
            Status::Fail => "fail",
        }
    }
}

/// One verdict with its sentence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Check {
    /// `spf`, `dkim:<selector>`, `dmarc`, `mx`, `helo:<host name>`, `ptr:<address>`
    /// (public names only: never the platform's internal server names).
    pub check: String,
    /// The verdict.
    pub status: Status,
    /// What was found.
    pub message: String,
}

/// One mail server as the platform knows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MailServer {
    /// Host name: the MX target and the name it greets with.
    pub hostname: String,
    /// Its addresses.
    pub addresses: Vec<IpAddr>,
}

/// What the records should say.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expected {
    /// The domain.
    pub domain: String,
    /// The domain's mail cluster, primary first.
    pub servers: Vec<MailServer>,
    /// `(selector, public key)` of each signing key; `None`: not made yet.
    pub dkim: Vec<(String, Option<String>)>,
}

/// A DNS answer: the records' texts, or why there was none (timeout, SERVFAIL).
/// No records (NXDOMAIN, NODATA) is `Ok(vec![])`.
pub type Answer = Result<Vec<String>, String>;

/// What DNS said.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Observed {
    /// TXT at the apex (each record's strings joined).
    pub apex_txt: Answer,
    /// TXT at `_dmarc`.
    pub dmarc_txt: Answer,
    /// TXT at `<selector>._domainkey`, per expected selector.
    pub dkim_txt: Vec<Answer>,
    /// MX targets (`preference host`, host without the trailing dot).
    pub mx: Answer,
    /// Per server (as in [`Expected::servers`]): the addresses its host name
    /// resolves to, and per address its PTR names.
    pub servers: Vec<(Answer, Vec<Answer>)>,
}

fn check(check: impl Into<String>, status: Status, message: impl Into<String>) -> Check {
    Check {
        check: check.into(),
        status,
        message: message.into(),
    }
}

/// A tag's value in a `k=v; k=v` record.
fn tag<'a>(record: &'a str, name: &str) -> Option<&'a str> {
    record.split(';').find_map(|t| {
        let (k, v) = t.split_once('=')?;
        (k.trim().eq_ignore_ascii_case(name)).then(|| v.trim())
    })
}

/// Is `ip` inside `net` (`a.b.c.d`, `a.b.c.d/n`, IPv6 likewise)?
fn in_net(ip: IpAddr, net: &str) -> bool {
    let (addr, len) = match net.split_once('/') {
        Some((a, l)) => (a, l.parse::<u32>().ok()),
        None => (net, None),
    };
    let Ok(base) = addr.parse::<IpAddr>() else {
        return false;
    };
    match (ip, base) {
        (IpAddr::V4(i), IpAddr::V4(b)) => {
            let l = len.unwrap_or(32).min(32);
            let mask = if l == 0 { 0 } else { u32::MAX << (32 - l) };
            u32::from(i) & mask == u32::from(b) & mask
        }
        (IpAddr::V6(i), IpAddr::V6(b)) => {
            let l = len.unwrap_or(128).min(128);
            let mask = if l == 0 { 0 } else { u128::MAX << (128 - l) };
            u128::from(i) & mask == u128::from(b) & mask
        }
        _ => false,
    }
}

fn lookup_failed(what: &str, e: &str) -> String {
    format!("could not look up {what}: {e}")
}

fn spf(exp: &Expected, obs: &Observed, mx_ours: bool) -> Check {
    let txt = match &obs.apex_txt {
        Ok(t) => t,
        Err(e) => return check("spf", Status::Warn, lookup_failed("the SPF record", e)),
    };
    let policies: Vec<&String> = txt
        .iter()
        .filter(|t| {
            t.split_whitespace()
                .next()
                .is_some_and(|v| v.eq_ignore_ascii_case("v=spf1"))
        })
        .collect();
    let policy = match policies.as_slice() {
        [] => {
            return check(
                "spf",
                Status::Fail,
                format!(
                    "{} has no SPF record (TXT \"v=spf1 ...\"): receivers cannot tell which servers may send its mail",
                    exp.domain
                ),
            )
        }
        [one] => one.as_str(),
        _ => {
            return check(
                "spf",
                Status::Fail,
                "more than one SPF record: receivers treat that as a permanent error (RFC 7208 4.5)",
            )
        }
    };
    let terms: Vec<&str> = policy.split_whitespace().skip(1).collect();
    let bare = |t: &str| t.trim_start_matches(['+', '?', '~']).to_ascii_lowercase();
    let has_mx = terms.iter().any(|t| bare(t) == "mx");
    let includes: Vec<&str> = terms
        .iter()
        .filter(|t| bare(t).starts_with("include:") || bare(t).starts_with("redirect="))
        .copied()
        .collect();
    let mut missing = Vec::new();
    for s in &exp.servers {
        for ip in &s.addresses {
            let listed = terms.iter().any(|t| {
                let t = bare(t);
                t.strip_prefix("ip4:")
                    .or_else(|| t.strip_prefix("ip6:"))
                    .is_some_and(|net| in_net(*ip, net))
            });
            if !(listed || (has_mx && mx_ours)) {
                missing.push(format!("{} ({ip})", s.hostname));
            }
        }
    }
    if terms
        .iter()
        .any(|t| bare(t) == "all" && !t.starts_with(['~', '?', '-']))
    {
        return check(
            "spf",
            Status::Warn,
            format!("`{policy}` allows every server in the world to send as the domain (+all)"),
        );
    }
    if missing.is_empty() {
        return check(
            "spf",
            Status::Ok,
            format!("`{policy}` authorizes the mail servers"),
        );
    }
    if !includes.is_empty() {
        return check(
            "spf",
            Status::Warn,
            format!(
                "`{policy}` does not list {} itself; it may through {} (not followed by this check)",
                missing.join(", "),
                includes.join(" ")
            ),
        );
    }
    check(
        "spf",
        Status::Fail,
        format!(
            "`{policy}` does not authorize {}: add `mx` or their addresses",
            missing.join(", ")
        ),
    )
}

fn dkim(selector: &str, expected: Option<&str>, answer: &Answer) -> Check {
    let name = format!("dkim:{selector}");
    let txt = match answer {
        Ok(t) => t,
        Err(e) => return check(name, Status::Warn, lookup_failed("the DKIM key", e)),
    };
    let Some(expected) = expected else {
        return check(
            name,
            Status::Warn,
            format!(
                "the `{selector}` key is still being made; mail is signed without it meanwhile"
            ),
        );
    };
    let published: Vec<&str> = txt.iter().filter_map(|t| tag(t, "p")).collect();
    match published.as_slice() {
        [] => check(
            name,
            Status::Fail,
            format!("no DKIM key published at {selector}._domainkey: receivers cannot verify its signatures"),
        ),
        [p] if *p == expected => check(
            name,
            Status::Ok,
            format!("{selector}._domainkey publishes the key mail is signed with"),
        ),
        _ => check(
            name,
            Status::Fail,
            format!("{selector}._domainkey publishes another key than the one mail is signed with: signatures fail"),
        ),
    }
}

fn dmarc(exp: &Expected, obs: &Observed) -> Check {
    let txt = match &obs.dmarc_txt {
        Ok(t) => t,
        Err(e) => return check("dmarc", Status::Warn, lookup_failed("the DMARC record", e)),
    };
    let records: Vec<&String> = txt
        .iter()
        .filter(|t| tag(t, "v").is_some_and(|v| v.eq_ignore_ascii_case("DMARC1")))
        .collect();
    match records.as_slice() {
        [] => check(
            "dmarc",
            Status::Fail,
            format!("no DMARC record at _dmarc.{}: large mailbox providers require one from bulk senders", exp.domain),
        ),
        [r] => match tag(r, "p") {
            Some(p) if ["none", "quarantine", "reject"].contains(&p.to_ascii_lowercase().as_str()) => {
                check("dmarc", Status::Ok, format!("`{r}` (policy {p})"))
            }
            _ => check(
                "dmarc",
                Status::Fail,
                format!("`{r}` has no valid policy (p=none, quarantine or reject)"),
            ),
        },
        _ => check(
            "dmarc",
            Status::Fail,
            "more than one DMARC record: receivers ignore them all",
        ),
    }
}

/// The MX verdict and whether every MX target is one of ours.
fn mx(exp: &Expected, obs: &Observed) -> (Check, bool) {
    let targets: Vec<String> = match &obs.mx {
        Ok(t) => t
            .iter()
            .filter_map(|m| m.split_whitespace().nth(1))
            .map(|h| h.trim_end_matches('.').to_ascii_lowercase())
            .collect(),
        Err(e) => {
            return (
                check("mx", Status::Warn, lookup_failed("the MX records", e)),
                false,
            )
        }
    };
    if targets.is_empty() {
        return (
            check(
                "mx",
                Status::Fail,
                format!("{} has no MX record: mail to it goes nowhere", exp.domain),
            ),
            false,
        );
    }
    let ours: Vec<String> = exp
        .servers
        .iter()
        .map(|s| s.hostname.to_ascii_lowercase())
        .collect();
    let foreign: Vec<&String> = targets.iter().filter(|t| !ours.contains(t)).collect();
    let absent: Vec<&String> = ours.iter().filter(|o| !targets.contains(o)).collect();
    if foreign.len() == targets.len() {
        let list: Vec<&str> = foreign.iter().map(|s| s.as_str()).collect();
        return (
            check(
                "mx",
                Status::Fail,
                format!(
                    "MX points at {} instead of the mail servers ({})",
                    list.join(", "),
                    ours.join(", ")
                ),
            ),
            false,
        );
    }
    if !foreign.is_empty() || !absent.is_empty() {
        let list: Vec<&str> = foreign.iter().chain(&absent).map(|s| s.as_str()).collect();
        return (
            check(
                "mx",
                Status::Warn,
                format!("MX and the mail cluster differ ({})", list.join(", ")),
            ),
            foreign.is_empty(),
        );
    }
    (
        check(
            "mx",
            Status::Ok,
            format!("MX points at {}", ours.join(", ")),
        ),
        true,
    )
}

fn helo(s: &MailServer, resolved: &Answer, ptrs: &[Answer]) -> Vec<Check> {
    let mut out = Vec::new();
    let name = format!("helo:{}", s.hostname);
    match resolved {
        Err(e) => out.push(check(name, Status::Warn, lookup_failed(&s.hostname, e))),
        Ok(found) => {
            let found: Vec<IpAddr> = found.iter().filter_map(|a| a.parse().ok()).collect();
            let missing: Vec<String> = s
                .addresses
                .iter()
                .filter(|a| !found.contains(a))
                .map(ToString::to_string)
                .collect();
            if found.is_empty() {
                out.push(check(
                    name,
                    Status::Fail,
                    format!("{} (its HELO name) does not resolve: receivers distrust a greeting name without an address", s.hostname),
                ));
            } else if missing.is_empty() {
                out.push(check(
                    name,
                    Status::Ok,
                    format!("{} resolves to the server's address", s.hostname),
                ));
            } else {
                out.push(check(
                    name,
                    Status::Fail,
                    format!("{} does not resolve to {}", s.hostname, missing.join(", ")),
                ));
            }
        }
    }
    for (ip, answer) in s.addresses.iter().zip(ptrs) {
        let name = format!("ptr:{ip}");
        let owner = "PTR records are set by whoever owns the address (the hosting or network provider); ask them";
        match answer {
            Err(e) => out.push(check(name, Status::Warn, lookup_failed(&format!("the PTR of {ip}"), e))),
            Ok(names) if names.is_empty() => out.push(check(
                name,
                Status::Warn,
                format!("{ip} has no PTR record; receivers expect it to name {}. {owner} to point it at {}", s.hostname, s.hostname),
            )),
            Ok(names) if names.iter().any(|n| n.trim_end_matches('.').eq_ignore_ascii_case(&s.hostname)) => {
                out.push(check(name, Status::Ok, format!("{ip} points back at {}", s.hostname)));
            }
            Ok(names) => out.push(check(
                name,
                Status::Warn,
                format!("{ip} points at {} instead of {}. {owner} to change it", names.join(", "), s.hostname),
            )),
        }
    }
    out
}

/// Every verdict, in a stable order.
pub fn evaluate(exp: &Expected, obs: &Observed) -> Vec<Check> {
    let (mx_check, mx_ours) = mx(exp, obs);
    let mut out = vec![spf(exp, obs, mx_ours)];
    for (i, (selector, key)) in exp.dkim.iter().enumerate() {
        let answer = obs.dkim_txt.get(i).cloned().unwrap_or(Ok(Vec::new()));
        out.push(dkim(selector, key.as_deref(), &answer));
    }
    out.push(dmarc(exp, obs));
    out.push(mx_check);
    for (s, (resolved, ptrs)) in exp.servers.iter().zip(&obs.servers) {
        out.extend(helo(s, resolved, ptrs));
    }
    out
}

/// The records of `rtype` at `name` as texts, asking `servers` in turn.
async fn lookup(servers: &[SocketAddr], name: &str, rtype: RecordType) -> Answer {
    let qname = Name::from_ascii(name).map_err(|e| e.to_string())?;
    let mut last = "no DNS server to ask".to_owned();
    for server in servers {
        let msg = match crate::dnsq::query(*server, &qname, rtype).await {
            Ok(m) => m,
            Err(e) => {
                last = e;
                continue;
            }
        };
        match msg.metadata.response_code {
            ResponseCode::NoError => {}
            ResponseCode::NXDomain => return Ok(Vec::new()),
            rc => {
                last = format!("{server} answered {rc}");
                continue;
            }
        }
        return Ok(crate::dnsq::texts(&msg, rtype));
    }
    Err(last)
}

/// Ask DNS what [`evaluate`] needs: the zone's records from `authoritative`, the
/// servers' names and PTRs from `resolver`.
pub async fn observe(
    exp: &Expected,
    authoritative: &[SocketAddr],
    resolver: SocketAddr,
) -> Observed {
    let d = &exp.domain;
    let mut obs = Observed {
        apex_txt: lookup(authoritative, d, RecordType::TXT).await,
        dmarc_txt: lookup(authoritative, &format!("_dmarc.{d}"), RecordType::TXT).await,
        mx: lookup(authoritative, d, RecordType::MX).await,
        dkim_txt: Vec::new(),
        servers: Vec::new(),
    };
    for (selector, _) in &exp.dkim {
        obs.dkim_txt.push(
            lookup(
                authoritative,
                &format!("{selector}._domainkey.{d}"),
                RecordType::TXT,
            )
            .await,
        );
    }
    let resolver = [resolver];
    for s in &exp.servers {
        let mut found = lookup(&resolver, &s.hostname, RecordType::A).await;
        if let (Ok(v4), Ok(v6)) = (
            &mut found,
            lookup(&resolver, &s.hostname, RecordType::AAAA).await,
        ) {
            v4.extend(v6);
        }
        let mut ptrs = Vec::new();
        for ip in &s.addresses {
            ptrs.push(lookup(&resolver, &Name::from(*ip).to_ascii(), RecordType::PTR).await);
        }
        obs.servers.push((found, ptrs));
    }
    obs
}

#[cfg(test)]
mod tests {
    use super::*;

    fn expected() -> Expected {
        Expected {
            domain: "example.com".into(),
            servers: vec![MailServer {
                hostname: "mx1.hosting.example".into(),
                addresses: vec!["192.0.2.25".parse().unwrap()],
            }],
            dkim: vec![
                ("hp1".into(), Some("ED".into())),
                ("hp-rsa".into(), Some("RSA".into())),
            ],
        }
    }

    fn good() -> Observed {
        Observed {
            apex_txt: Ok(vec!["v=spf1 mx -all".into(), "other".into()]),
            dmarc_txt: Ok(vec!["v=DMARC1; p=none".into()]),
            dkim_txt: vec![
                Ok(vec!["v=DKIM1; k=ed25519; p=ED".into()]),
                Ok(vec!["v=DKIM1; k=rsa; p=RSA".into()]),
            ],
            mx: Ok(vec!["10 mx1.hosting.example.".into()]),
            servers: vec![(
                Ok(vec!["192.0.2.25".into()]),
                vec![Ok(vec!["mx1.hosting.example.".into()])],
            )],
        }
    }

    fn statuses(c: &[Check]) -> Vec<(&str, Status)> {
        c.iter().map(|c| (c.check.as_str(), c.status)).collect()
    }

    #[test]
    fn a_well_set_up_domain_passes_every_check() {
        let c = evaluate(&expected(), &good());
        assert!(c.iter().all(|c| c.status == Status::Ok), "{c:#?}");
        assert_eq!(
            statuses(&c).iter().map(|(n, _)| *n).collect::<Vec<_>>(),
            [
                "spf",
                "dkim:hp1",
                "dkim:hp-rsa",
                "dmarc",
                "mx",
                "helo:mx1.hosting.example",
                "ptr:192.0.2.25"
            ]
        );
    }

    #[test]
    fn each_defect_is_named() {
        let mut o = good();
        o.apex_txt = Ok(vec!["v=spf1 ip4:198.51.100.0/24 -all".into()]);
        o.dkim_txt[1] = Ok(vec!["v=DKIM1; k=rsa; p=OTHER".into()]);
        o.dmarc_txt = Ok(vec![]);
        o.servers[0].1[0] = Ok(vec!["host-25.provider.example.".into()]);
        let c = evaluate(&expected(), &o);
        let s = statuses(&c);
        assert!(s.contains(&("spf", Status::Fail)), "{c:#?}");
        assert!(s.contains(&("dkim:hp-rsa", Status::Fail)));
        assert!(s.contains(&("dmarc", Status::Fail)));
        let ptr = c.iter().find(|c| c.check == "ptr:192.0.2.25").unwrap();
        assert_eq!(ptr.status, Status::Warn);
        assert!(
            ptr.message.contains("whoever owns the address"),
            "{}",
            ptr.message
        );
        // An address inside a listed network counts; an include is not followed.
        o.apex_txt = Ok(vec!["v=spf1 ip4:192.0.2.0/24 -all".into()]);
        assert_eq!(evaluate(&expected(), &o)[0].status, Status::Ok);
        o.apex_txt = Ok(vec!["v=spf1 include:_spf.elsewhere.example -all".into()]);
        assert_eq!(evaluate(&expected(), &o)[0].status, Status::Warn);
        o.apex_txt = Ok(vec!["v=spf1 +all".into()]);
        assert_eq!(evaluate(&expected(), &o)[0].status, Status::Warn);
        // MX elsewhere: `mx` no longer covers our servers.
        o.apex_txt = Ok(vec!["v=spf1 mx -all".into()]);
        o.mx = Ok(vec!["10 mx.google.example.".into()]);
        let c = evaluate(&expected(), &o);
        assert_eq!(c[0].status, Status::Fail, "{c:#?}");
        assert!(statuses(&c).contains(&("mx", Status::Fail)));
        // A key not made yet and an unresolvable HELO name.
        let mut e = expected();
        e.dkim[1].1 = None;
        o.servers[0].0 = Ok(vec![]);
        let c = evaluate(&e, &o);
        assert!(statuses(&c).contains(&("dkim:hp-rsa", Status::Warn)));
        assert!(statuses(&c).contains(&("helo:mx1.hosting.example", Status::Fail)));
    }
}
