//! [`build_zone`] in four steps, each a function: **generate** the records the
//! platform derives from placements and health, apply the **customer overrides**
//! (a customer's records replace generated ones), **normalise** (order, duplicates,
//! one TTL per RRset) and add the **SOA**. Record types are [`RType`], not strings,
//! until the result becomes the wire format ([`ZoneRecord`]).

use std::collections::HashSet;
use std::net::IpAddr;

use model::dns::RecordData;
use model::PlacementMode;
use proto::agent_v1::{ZoneContent, ZoneRecord};

use super::{
    ZoneInput, ZoneServer, DEFAULT_DMARC, DEFAULT_SPF, SOA_EXPIRE, SOA_MINIMUM, SOA_REFRESH,
    SOA_RETRY,
};

/// The record types a zone holds, in the order records of one name are listed
/// (the derived `Ord`): NS, A, AAAA, CNAME, MX, TXT, SRV, CAA; SOA comes first in a
/// zone by construction, not by this order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum RType {
    /// Name server.
    Ns,
    /// IPv4 address.
    A,
    /// IPv6 address.
    Aaaa,
    /// Alias.
    Cname,
    /// Mail exchange.
    Mx,
    /// Text.
    Txt,
    /// Service.
    Srv,
    /// Certification authority authorisation.
    Caa,
    /// Start of authority.
    Soa,
}

impl RType {
    /// The presentation-format mnemonic.
    pub fn as_str(self) -> &'static str {
        match self {
            RType::Ns => "NS",
            RType::A => "A",
            RType::Aaaa => "AAAA",
            RType::Cname => "CNAME",
            RType::Mx => "MX",
            RType::Txt => "TXT",
            RType::Srv => "SRV",
            RType::Caa => "CAA",
            RType::Soa => "SOA",
        }
    }

    /// The type of a customer record.
    fn of(data: &RecordData) -> Self {
        match data {
            RecordData::A { .. } => RType::A,
            RecordData::Aaaa { .. } => RType::Aaaa,
            RecordData::Cname { .. } => RType::Cname,
            RecordData::Mx { .. } => RType::Mx,
            RecordData::Txt { .. } => RType::Txt,
            RecordData::Srv { .. } => RType::Srv,
            RecordData::Caa { .. } => RType::Caa,
            RecordData::Ns { .. } => RType::Ns,
        }
    }

    /// A or AAAA for an address.
    fn address(ip: IpAddr) -> Self {
        if ip.is_ipv4() {
            RType::A
        } else {
            RType::Aaaa
        }
    }
}

/// One record while the zone is built.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Rec {
    /// Absolute owner name, no trailing dot.
    name: String,
    /// TTL in seconds.
    ttl: u32,
    /// Type.
    rtype: RType,
    /// Presentation-format RDATA.
    data: String,
}

impl Rec {
    fn new(name: impl Into<String>, ttl: u32, rtype: RType, data: String) -> Self {
        Self {
            name: name.into(),
            ttl,
            rtype,
            data,
        }
    }

    fn address(name: &str, ttl: u32, ip: IpAddr) -> Self {
        Self::new(name, ttl, RType::address(ip), ip.to_string())
    }

    fn into_wire(self) -> ZoneRecord {
        ZoneRecord {
            name: self.name,
            ttl: self.ttl,
            rtype: self.rtype.as_str().to_owned(),
            data: self.data,
        }
    }
}

/// Absolute name with a trailing dot, for record data.
pub(super) fn fqdn(name: &str) -> String {
    if name == "." || name.ends_with('.') {
        name.to_owned()
    } else {
        format!("{name}.")
    }
}

/// The SOA record data for `serial`.
fn soa_data(mname: &str, origin: &str, serial: u32) -> String {
    format!(
        "{} {} {serial} {SOA_REFRESH} {SOA_RETRY} {SOA_EXPIRE} {SOA_MINIMUM}",
        fqdn(mname),
        fqdn(&format!("hostmaster.{origin}")),
    )
}

/// Quote a character string for presentation format.
fn quoted(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        if c == '"' || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
    out
}

/// TXT data: the text split into quoted strings of at most 255 octets.
fn txt_data(text: &str) -> String {
    // TXT text is printable ASCII (validated by the model), so every byte is a
    // char boundary; `chunks` on bytes then converting is safe for ASCII and lossy
    // (never panicking) otherwise.
    text.as_bytes()
        .chunks(255)
        .map(|c| quoted(&String::from_utf8_lossy(c)))
        .collect::<Vec<_>>()
        .join(" ")
}

/// Presentation-format RDATA of a customer record.
fn record_data(data: &RecordData) -> String {
    match data {
        RecordData::A { address } => address.to_string(),
        RecordData::Aaaa { address } => address.to_string(),
        RecordData::Cname { target } | RecordData::Ns { target } => fqdn(target.as_str()),
        RecordData::Mx {
            preference,
            exchange,
        } => format!("{preference} {}", fqdn(exchange.as_str())),
        RecordData::Txt { text } => txt_data(text),
        RecordData::Srv {
            priority,
            weight,
            port,
            target,
        } => format!("{priority} {weight} {port} {}", fqdn(target.as_str())),
        RecordData::Caa { flags, tag, value } => format!("{flags} {tag} {}", quoted(value)),
    }
}

/// An SPF policy: TXT starting with `v=spf1` followed by a space or the end.
fn is_spf(data: &RecordData) -> bool {
    let RecordData::Txt { text } = data else {
        return false;
    };
    text.get(..6)
        .is_some_and(|p| p.eq_ignore_ascii_case("v=spf1"))
        && matches!(text.as_bytes().get(6), None | Some(b' '))
}

/// Servers whose addresses go into `@` and `www`.
fn web_targets<'a>(input: &ZoneInput<'a>) -> Vec<ZoneServer<'a>> {
    let Some(site) = input.site else {
        return Vec::new();
    };
    let candidates: Vec<ZoneServer<'a>> = match site.mode {
        PlacementMode::All => {
            let serving: Vec<_> = input
                .web
                .iter()
                .filter(|s| !s.server.drained)
                .copied()
                .collect();
            // Every server drained: they still hold the site.
            if serving.is_empty() {
                input.web.clone()
            } else {
                serving
            }
        }
        PlacementMode::Single => {
            let active: Vec<_> = input
                .web
                .iter()
                .filter(|s| Some(s.id) == site.active_server)
                .copied()
                .collect();
            // No (known) active server yet: the cluster's servers, so the name
            // resolves to where the site will be placed rather than to nothing.
            if active.is_empty() {
                input.web.clone()
            } else {
                active
            }
        }
    };
    let healthy: Vec<_> = candidates.iter().filter(|s| s.healthy()).copied().collect();
    if healthy.is_empty() {
        candidates
    } else {
        healthy
    }
}

/// The zone of `input.origin`. Records are SOA first, then sorted by name (apex
/// first), type and data, without duplicates.
pub fn build_zone(input: &ZoneInput<'_>) -> ZoneContent {
    let origin = input.origin.as_str();
    let records = normalise(with_customer_records(input, generate(input)), origin);
    let mut wire = Vec::with_capacity(records.len() + 1);
    wire.push(soa(input).into_wire());
    wire.extend(records.into_iter().map(Rec::into_wire));
    ZoneContent {
        origin: origin.to_owned(),
        serial: input.serial,
        records: wire,
    }
}

/// Step 1: the records the platform derives (name servers and glue, web, mail,
/// files, and the mail policies the customer has not published themselves).
fn generate(input: &ZoneInput<'_>) -> Vec<Rec> {
    let mut out = Vec::new();
    name_servers(input, &mut out);
    web(input, &mut out);
    mail(input, &mut out);
    mail_clients(input, &mut out);
    mail_policies(input, &mut out);
    acme_challenges(input, &mut out);
    platform_hosts(input, &mut out);
    out
}

/// TTL of ACME DNS-01 challenge records: short, they live for one validation.
const ACME_TXT_TTL: u32 = 60;

/// The pending ACME DNS-01 challenges (`_acme-challenge.<name>` TXT, RFC 8555
/// 8.4) whose names lie in this zone.
fn acme_challenges(input: &ZoneInput<'_>, out: &mut Vec<Rec>) {
    for (name, value) in &input.acme_txt {
        if at_or_below(name, input.origin.as_str()) {
            out.push(Rec::new(
                name.as_str(),
                ACME_TXT_TTL,
                RType::Txt,
                quoted(value),
            ));
        }
    }
}

/// The platform's host names inside the zone (servers', mail clusters' client
/// names), each at its addresses.
fn platform_hosts(input: &ZoneInput<'_>, out: &mut Vec<Rec>) {
    let ttl = input.ttls.default;
    for (name, addresses) in &input.hosts {
        for ip in addresses {
            out.push(Rec::address(name, ttl, *ip));
        }
    }
}

/// `origin` plus a relative name.
fn abs(input: &ZoneInput<'_>, rel: &str) -> String {
    format!("{rel}.{}", input.origin.as_str())
}

/// NS for every DNS server, with glue where its host name lies inside the zone.
fn name_servers(input: &ZoneInput<'_>, out: &mut Vec<Rec>) {
    let ttl = input.ttls.default;
    for ns in &input.dns {
        let host = ns.server.hostname.as_str();
        out.push(Rec::new(input.origin.as_str(), ttl, RType::Ns, fqdn(host)));
        if ns.server.hostname.is_within(input.origin) {
            for ip in &ns.server.addresses {
                out.push(Rec::address(host, ttl, *ip));
            }
        }
    }
}

/// `@` and `www` with the addresses of the servers the site is served from.
/// A wildcard alias of the site under this zone (`*.example.com`) gets the same
/// addresses (RFC 4592: names without records of their own resolve through it).
fn web(input: &ZoneInput<'_>, out: &mut Vec<Rec>) {
    let www = abs(input, "www");
    let wildcards: Vec<&str> = input
        .site
        .iter()
        .flat_map(|s| s.aliases.iter())
        .filter(|a| a.is_wildcard() && a.is_within(input.origin))
        .map(|a| a.as_str())
        .collect();
    for s in web_targets(input) {
        for ip in &s.server.addresses {
            out.push(Rec::address(input.origin.as_str(), input.ttls.web, *ip));
            out.push(Rec::address(&www, input.ttls.web, *ip));
            for w in &wildcards {
                out.push(Rec::address(w, input.ttls.web, *ip));
            }
        }
    }
}

/// MX 10, 20 … in rank order (with the exchanges' addresses where they lie inside
/// the zone), `mail` at the mail cluster's writer (the primary unless it failed
/// over) and `ftp` at the files primary.
fn mail(input: &ZoneInput<'_>, out: &mut Vec<Rec>) {
    let ttl = input.ttls.default;
    for (i, mx) in input.mail.iter().enumerate() {
        let pref = u16::try_from(i.saturating_add(1).saturating_mul(10)).unwrap_or(u16::MAX);
        out.push(Rec::new(
            input.origin.as_str(),
            ttl,
            RType::Mx,
            format!("{pref} {}", fqdn(mx.server.hostname.as_str())),
        ));
        // An exchange inside this zone must resolve from it.
        if mx.server.hostname.is_within(input.origin) {
            for ip in &mx.server.addresses {
                out.push(Rec::address(mx.server.hostname.as_str(), ttl, *ip));
            }
        }
    }
    if let Some(writer) = mail_client_server(input) {
        let name = abs(input, "mail");
        for ip in &writer.server.addresses {
            out.push(Rec::address(&name, ttl, *ip));
        }
    }
    if let Some(files) = input.files.first() {
        let name = abs(input, "ftp");
        for ip in &files.server.addresses {
            out.push(Rec::address(&name, ttl, *ip));
        }
    }
}

/// The mail server clients are sent to (`mail.<domain>`, the SRV targets): the
/// cluster's writer (`placement::mail`), which takes every change; the primary
/// when no writer is known.
fn mail_client_server<'a, 'b>(input: &'b ZoneInput<'a>) -> Option<&'b ZoneServer<'a>> {
    input
        .mail_writer
        .and_then(|w| input.mail.iter().find(|s| s.id == w))
        .or_else(|| input.mail.first())
}

/// The services a mail client is told about (RFC 6186 SRV name, port), implicit
/// TLS first: IMAP, POP3 and submission of the mail engine (`role-mail`).
pub(crate) const MAIL_CLIENT_SRV: [(&str, u16); 6] = [
    ("_imaps._tcp", 993),
    ("_imap._tcp", 143),
    ("_pop3s._tcp", 995),
    ("_pop3._tcp", 110),
    ("_submissions._tcp", 465),
    ("_submission._tcp", 587),
];

/// Client autoconfiguration of a mail domain: RFC 6186 SRV records for IMAP,
/// POP3 and submission at the mail cluster's client names (`imap.<hostname>`,
/// `pop.`, `smtp.`: they follow the writer in the zone holding them, and every
/// server's certificate covers them) when the cluster has a host name, else at
/// the host name of the cluster's writer (the name its certificate is for,
/// unlike `mail.<domain>`), and, when the domain has a site, `autoconfig`
/// (Thunderbird) and `autodiscover` (Outlook) at the site's web servers, which
/// answer both documents (`role-web`'s `autoconfig`) — plus the
/// `_autodiscover._tcp` SRV pointing Outlook at the domain's own HTTPS. None of
/// it when the customer publishes their own apex MX (their mail is elsewhere).
fn mail_clients(input: &ZoneInput<'_>, out: &mut Vec<Rec>) {
    let Some(writer) = mail_client_server(input) else {
        return;
    };
    // The customer's own apex MX sends their mail elsewhere: do not point
    // their mail clients at us.
    let own_mx = input
        .records
        .iter()
        .any(|r| r.name.is_apex() && matches!(r.data, RecordData::Mx { .. }));
    if own_mx {
        return;
    }
    let ttl = input.ttls.default;
    let writer_host = writer.server.hostname.as_str();
    for (name, port) in MAIL_CLIENT_SRV {
        let host = match &input.mail_names {
            Some(n) if name.starts_with("_imap") => n.imap.as_str(),
            Some(n) if name.starts_with("_pop3") => n.pop3.as_str(),
            Some(n) => n.smtp.as_str(),
            None => writer_host,
        };
        out.push(Rec::new(
            abs(input, name),
            ttl,
            RType::Srv,
            format!("0 1 {port} {}", fqdn(host)),
        ));
    }
    let web = web_targets(input);
    if web.is_empty() {
        return;
    }
    for rel in ["autoconfig", "autodiscover"] {
        let name = abs(input, rel);
        for s in &web {
            for ip in &s.server.addresses {
                out.push(Rec::address(&name, input.ttls.web, *ip));
            }
        }
    }
    out.push(Rec::new(
        abs(input, "_autodiscover._tcp"),
        ttl,
        RType::Srv,
        format!("0 1 443 {}", fqdn(input.origin.as_str())),
    ));
}

/// True if the customer has a TXT record at absolute name `name`.
fn customer_txt_at(input: &ZoneInput<'_>, name: &str) -> bool {
    input
        .records
        .iter()
        .any(|r| matches!(r.data, RecordData::Txt { .. }) && r.name.absolute(input.origin) == name)
}

/// SPF at `@`, DMARC at `_dmarc` and the DKIM keys, each unless the customer
/// publishes their own there (for SPF: an SPF TXT at the apex).
fn mail_policies(input: &ZoneInput<'_>, out: &mut Vec<Rec>) {
    let ttl = input.ttls.default;
    if !input
        .records
        .iter()
        .any(|r| r.name.is_apex() && is_spf(&r.data))
    {
        out.push(Rec::new(
            input.origin.as_str(),
            ttl,
            RType::Txt,
            quoted(DEFAULT_SPF),
        ));
    }
    let dmarc = abs(input, "_dmarc");
    if !customer_txt_at(input, &dmarc) {
        out.push(Rec::new(dmarc, ttl, RType::Txt, quoted(DEFAULT_DMARC)));
    }
    for (selector, text) in &input.dkim {
        let name = abs(input, &format!("{selector}._domainkey"));
        if !customer_txt_at(input, &name) {
            out.push(Rec::new(name, ttl, RType::Txt, txt_data(text)));
        }
    }
}

/// Step 2: the customer's records added, replacing generated ones: a record of a
/// type at a name replaces the generated records of that type there (TXT excepted:
/// step 1 decided about those), a CNAME every generated record at its name, a
/// delegation (NS) every generated record at and below its name.
fn with_customer_records(input: &ZoneInput<'_>, mut generated: Vec<Rec>) -> Vec<Rec> {
    let customer: Vec<Rec> = input
        .records
        .iter()
        .map(|r| {
            Rec::new(
                r.name.absolute(input.origin),
                r.ttl.unwrap_or(input.ttls.default),
                RType::of(&r.data),
                record_data(&r.data),
            )
        })
        .collect();
    let mut replaced: HashSet<(&str, RType)> = HashSet::new();
    let mut cnames: Vec<&str> = Vec::new();
    let mut delegations: Vec<&str> = Vec::new();
    for rec in &customer {
        match rec.rtype {
            RType::Cname => cnames.push(&rec.name),
            RType::Ns => delegations.push(&rec.name),
            RType::Txt => {}
            t => {
                replaced.insert((&rec.name, t));
            }
        }
    }
    generated.retain(|g| {
        !replaced.contains(&(g.name.as_str(), g.rtype))
            && !cnames.contains(&g.name.as_str())
            && !delegations.iter().any(|d| at_or_below(&g.name, d))
    });
    generated.extend(customer);
    generated
}

/// True if `name` is `cut` or a name below it.
fn at_or_below(name: &str, cut: &str) -> bool {
    name == cut
        || (name.len() > cut.len()
            && name.ends_with(cut)
            && name.as_bytes().get(name.len() - cut.len() - 1) == Some(&b'.'))
}

/// Step 3: sorted by name (apex first), type and data; a record given twice (two
/// servers sharing an address, a customer record equal to a generated one) once,
/// with the shorter TTL; every RRset with one TTL, its shortest (RFC 2181 §5.2).
fn normalise(mut records: Vec<Rec>, origin: &str) -> Vec<Rec> {
    records.sort_by(|a, b| {
        (a.name != origin, &a.name, a.rtype, &a.data).cmp(&(
            b.name != origin,
            &b.name,
            b.rtype,
            &b.data,
        ))
    });
    records.dedup_by(|later, kept| {
        if later.name == kept.name && later.rtype == kept.rtype && later.data == kept.data {
            kept.ttl = kept.ttl.min(later.ttl);
            true
        } else {
            false
        }
    });
    let mut i = 0;
    while i < records.len() {
        let mut j = i;
        let mut min = records[i].ttl;
        while j < records.len()
            && records[j].name == records[i].name
            && records[j].rtype == records[i].rtype
        {
            min = min.min(records[j].ttl);
            j += 1;
        }
        for r in &mut records[i..j] {
            r.ttl = min;
        }
        i = j.max(i + 1);
    }
    records
}

/// Step 4: the SOA, MNAME the DNS primary (the zone itself without one).
fn soa(input: &ZoneInput<'_>) -> Rec {
    let origin = input.origin.as_str();
    let mname = input
        .dns
        .first()
        .map_or(origin, |p| p.server.hostname.as_str());
    Rec::new(
        origin,
        input.ttls.default,
        RType::Soa,
        soa_data(mname, origin, input.serial),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn types_order_as_zones_list_them() {
        let mut all = [
            RType::Caa,
            RType::Srv,
            RType::Txt,
            RType::Mx,
            RType::Cname,
            RType::Aaaa,
            RType::A,
            RType::Ns,
        ];
        all.sort();
        let names: Vec<_> = all.iter().map(|t| t.as_str()).collect();
        assert_eq!(
            names,
            ["NS", "A", "AAAA", "CNAME", "MX", "TXT", "SRV", "CAA"]
        );
    }

    #[test]
    fn at_or_below_needs_a_label_boundary() {
        assert!(at_or_below("sub.a.example", "sub.a.example"));
        assert!(at_or_below("x.sub.a.example", "sub.a.example"));
        assert!(!at_or_below("xsub.a.example", "sub.a.example"));
        assert!(!at_or_below("a.example", "sub.a.example"));
    }

    #[test]
    fn spf_needs_the_exact_version_tag() {
        let txt = |t: &str| RecordData::Txt { text: t.into() };
        assert!(is_spf(&txt("v=spf1 mx -all")));
        assert!(is_spf(&txt("V=SPF1")));
        assert!(!is_spf(&txt("v=spf10 mx")));
        assert!(!is_spf(&txt("hello")));
    }
}
