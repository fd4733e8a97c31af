//! Tests of the zone builder and of zone serials (snapshots in `snapshots/`).

use super::*;
use model::dns::RecordData;
use model::dns::{RecordName, Target};
use model::CountryCode;
use model::PlacementMode;
use model::Slug;
use std::collections::HashMap;

fn server(name: &str, host: &str, ips: &[&str]) -> Server {
    Server {
        name: Slug::new(name).unwrap(),
        role: model::Role::Web,
        cluster: 1,
        rank: 0,
        hostname: DomainName::new(host).unwrap(),
        addresses: ips.iter().map(|i| i.parse().unwrap()).collect(),
        region: String::new(),
        country: CountryCode::new("DE").unwrap(),
        hardware: String::new(),
        drained: false,
        agent: None,
    }
}

fn site(mode: PlacementMode, active: Option<Id>) -> Site {
    Site {
        web: Default::default(),
        domain: 1,
        aliases: vec![],
        php: false,
        mode,
        https_redirect: false,
        active_server: active,
        deployment: None,
        previous_deployments: Vec::new(),
        files: Default::default(),
        cron: Vec::new(),
        cron_next_id: 0,
        cron_holder: None,
    }
}

fn rec(name: &str, ttl: Option<u32>, data: RecordData) -> DnsRecord {
    DnsRecord {
        domain: 1,
        name: RecordName::new(name).unwrap(),
        ttl,
        data,
    }
}

fn target(s: &str) -> Target {
    Target::new(s).unwrap()
}

/// The fixed servers of every case.
struct Fleet {
    ns: Vec<Server>,
    web: Vec<Server>,
    mail: Vec<Server>,
    files: Vec<Server>,
}

fn fleet() -> Fleet {
    Fleet {
        ns: vec![
            server("ns1", "ns1.hosting.example", &["192.0.2.53"]),
            server("ns2", "ns2.hosting.example", &["198.51.100.53"]),
        ],
        web: vec![
            server("web-1", "web-1.hosting.example", &["192.0.2.80"]),
            server("web-2", "web-2.hosting.example", &["192.0.2.81"]),
        ],
        mail: vec![
            server("mx1", "mx1.hosting.example", &["192.0.2.25"]),
            server("mx2", "mx2.hosting.example", &["198.51.100.25"]),
        ],
        files: vec![server(
            "files-1",
            "files-1.hosting.example",
            &["192.0.2.21"],
        )],
    }
}

fn up(list: &[Server], first_id: Id) -> Vec<ZoneServer<'_>> {
    list.iter()
        .zip(first_id..)
        .map(|(server, id)| ZoneServer {
            id,
            server,
            health: Health::Up,
        })
        .collect()
}

fn input<'a>(
    origin: &'a DomainName,
    f: &'a Fleet,
    site: Option<&'a Site>,
    records: &'a [DnsRecord],
) -> ZoneInput<'a> {
    ZoneInput {
        origin,
        serial: 2_026_112_500,
        dns: up(&f.ns, 1),
        web: up(&f.web, 11),
        site,
        mail: up(&f.mail, 31),
        files: up(&f.files, 41),
        records: records.iter().collect(),
        ttls: Ttls::default(),
        dkim: Vec::new(),
        acme_txt: Vec::new(),
        mail_writer: None,
        mail_names: None,
        hosts: Vec::new(),
    }
}

#[test]
fn dkim_key_is_published_unless_the_customer_has_a_txt_there() {
    let f = fleet();
    let origin = example();
    let mut inp = input(&origin, &f, None, &[]);
    inp.dkim = vec![("hp1", "v=DKIM1; k=ed25519; p=AAAA".into())];
    let z = build_zone(&inp);
    assert_eq!(
        names_of(&z, "hp1._domainkey.example.com", "TXT"),
        ["\"v=DKIM1; k=ed25519; p=AAAA\""]
    );
    let own = vec![rec(
        "hp1._domainkey",
        None,
        RecordData::Txt {
            text: "v=DKIM1; p=mine".into(),
        },
    )];
    let mut inp = input(&origin, &f, None, &own);
    inp.dkim = vec![("hp1", "v=DKIM1; k=ed25519; p=AAAA".into())];
    let z = build_zone(&inp);
    assert_eq!(
        names_of(&z, "hp1._domainkey.example.com", "TXT"),
        ["\"v=DKIM1; p=mine\""]
    );
}

#[test]
fn acme_txt_in_its_zone_and_a_wildcard_alias_resolves_like_the_apex() {
    let f = fleet();
    let origin = example();
    let mut s = site(PlacementMode::All, None);
    s.aliases = vec![DomainName::host_pattern("*.example.com").unwrap()];
    let mut inp = input(&origin, &f, Some(&s), &[]);
    inp.acme_txt = vec![
        ("_acme-challenge.example.com".into(), "abc_-1".into()),
        ("_acme-challenge.other.test".into(), "elsewhere".into()),
    ];
    let z = build_zone(&inp);
    assert_eq!(
        names_of(&z, "_acme-challenge.example.com", "TXT"),
        ["\"abc_-1\""]
    );
    assert!(z
        .records
        .iter()
        .all(|r| r.name != "_acme-challenge.other.test"));
    let apex = names_of(&z, "example.com", "A");
    assert!(!apex.is_empty());
    assert_eq!(names_of(&z, "*.example.com", "A"), apex);
}

#[test]
fn rsa_key_is_split_into_character_strings() {
    let f = fleet();
    let origin = example();
    let mut inp = input(&origin, &f, None, &[]);
    let text = format!("v=DKIM1; k=rsa; p={}", "A".repeat(392));
    inp.dkim = vec![
        ("hp1", "v=DKIM1; k=ed25519; p=AAAA".into()),
        ("hp-rsa", text.clone()),
    ];
    let z = build_zone(&inp);
    assert_eq!(names_of(&z, "hp1._domainkey.example.com", "TXT").len(), 1);
    let rsa = names_of(&z, "hp-rsa._domainkey.example.com", "TXT");
    assert_eq!(rsa, [format!("\"{}\" \"{}\"", &text[..255], &text[255..])]);
}

#[test]
fn default_dmarc_unless_the_customer_has_a_txt_there() {
    let f = fleet();
    let origin = example();
    let z = build_zone(&input(&origin, &f, None, &[]));
    assert_eq!(
        names_of(&z, "_dmarc.example.com", "TXT"),
        ["\"v=DMARC1; p=none\""]
    );
    let own = [rec(
        "_dmarc",
        None,
        RecordData::Txt {
            text: "v=DMARC1; p=reject; rua=mailto:d@example.com".into(),
        },
    )];
    let z = build_zone(&input(&origin, &f, None, &own));
    assert_eq!(
        names_of(&z, "_dmarc.example.com", "TXT"),
        ["\"v=DMARC1; p=reject; rua=mailto:d@example.com\""]
    );
    // A TXT elsewhere keeps the default.
    let other = [rec(
        "_dmarc.sub",
        None,
        RecordData::Txt {
            text: "v=DMARC1; p=quarantine".into(),
        },
    )];
    let z = build_zone(&input(&origin, &f, None, &other));
    assert_eq!(names_of(&z, "_dmarc.example.com", "TXT").len(), 1);
}

fn example() -> DomainName {
    DomainName::new("example.com").unwrap()
}

fn customer_records() -> Vec<DnsRecord> {
    vec![
        rec(
            "www",
            Some(300),
            RecordData::Cname {
                target: target("shop.provider.example"),
            },
        ),
        rec(
            "@",
            None,
            RecordData::Txt {
                text: "v=spf1 mx include:_spf.provider.example ~all".into(),
            },
        ),
        rec(
            "@",
            None,
            RecordData::Txt {
                text: "site-verification=\"abc\"".into(),
            },
        ),
        rec(
            "@",
            None,
            RecordData::Caa {
                flags: 0,
                tag: "issue".into(),
                value: "letsencrypt.org".into(),
            },
        ),
        rec(
            "_sip._tcp",
            Some(600),
            RecordData::Srv {
                priority: 10,
                weight: 5,
                port: 5060,
                target: target("sip.provider.example"),
            },
        ),
        rec(
            "ftp",
            None,
            RecordData::A {
                address: "203.0.113.7".parse().unwrap(),
            },
        ),
        rec(
            "dev",
            None,
            RecordData::Ns {
                target: target("ns.dev-provider.example"),
            },
        ),
        rec(
            "long",
            None,
            RecordData::Txt {
                text: "x".repeat(300),
            },
        ),
    ]
}

/// Every case of the snapshot tests, by name.
fn cases() -> Vec<(&'static str, ZoneContent)> {
    let origin = example();
    let f = fleet();
    let single = site(PlacementMode::Single, Some(12));
    let all = site(PlacementMode::All, None);
    let mut out = Vec::new();

    out.push(("plain", build_zone(&input(&origin, &f, None, &[]))));
    out.push((
        "all_two_servers",
        build_zone(&input(&origin, &f, Some(&all), &[])),
    ));
    out.push((
        "single",
        build_zone(&input(&origin, &f, Some(&single), &[])),
    ));

    let mut i = input(&origin, &f, Some(&all), &[]);
    i.web[0].health = Health::Down;
    out.push(("one_web_down", build_zone(&i)));

    let mut i = input(&origin, &f, Some(&all), &[]);
    i.web[0].health = Health::Down;
    i.web[1].health = Health::Suspect;
    out.push(("all_web_down", build_zone(&i)));

    let records = customer_records();
    out.push((
        "customer_records",
        build_zone(&input(&origin, &f, Some(&all), &records)),
    ));

    let hosting = DomainName::new("hosting.example").unwrap();
    out.push((
        "in_bailiwick_glue",
        build_zone(&input(&hosting, &f, None, &[])),
    ));

    let v6 = Fleet {
        ns: vec![
            server("ns1", "ns1.example.com", &["192.0.2.53", "2001:db8::53"]),
            server("ns2", "ns2.hosting.example", &["2001:db8:1::53"]),
        ],
        web: vec![
            server(
                "web-1",
                "web-1.hosting.example",
                &["2001:db8::80", "192.0.2.80"],
            ),
            server("web-2", "web-2.hosting.example", &["2001:db8::81"]),
        ],
        mail: vec![server("mx1", "mx1.hosting.example", &["2001:db8::25"])],
        files: vec![server(
            "files-1",
            "files-1.hosting.example",
            &["2001:db8::21"],
        )],
    };
    out.push(("ipv6", build_zone(&input(&origin, &v6, Some(&all), &[]))));

    // Issue 16: a mail domain of a cluster with a client-facing host name (SRV
    // at its names), and the platform zone holding the servers' host names and
    // the cluster's client names at the writer (mx2 after a failover).
    let names =
        model::entity::MailClientNames::of(&DomainName::new("mail.hosting.example").unwrap());
    let mut i = input(&origin, &f, Some(&all), &[]);
    i.mail_names = Some(names.clone());
    i.mail_writer = Some(32);
    out.push(("mail_client_names", build_zone(&i)));
    let mut i = input(&hosting, &f, None, &[]);
    i.mail_writer = Some(32);
    let mx2: Vec<std::net::IpAddr> = vec!["198.51.100.25".parse().unwrap()];
    i.hosts = vec![
        ("imap.mail.hosting.example".into(), mx2.clone()),
        (
            "mx1.hosting.example".into(),
            vec!["192.0.2.25".parse().unwrap()],
        ),
        ("pop.mail.hosting.example".into(), mx2.clone()),
        ("smtp.mail.hosting.example".into(), mx2),
        (
            "web-1.hosting.example".into(),
            vec!["192.0.2.80".parse().unwrap()],
        ),
    ];
    out.push(("platform_hosts", build_zone(&i)));
    out
}

#[test]
fn a_customer_record_replaces_a_platform_host_name() {
    let f = fleet();
    let hosting = DomainName::new("hosting.example").unwrap();
    let own = vec![rec(
        "imap.mail",
        None,
        RecordData::A {
            address: "203.0.113.9".parse().unwrap(),
        },
    )];
    let mut i = input(&hosting, &f, None, &own);
    i.hosts = vec![(
        "imap.mail.hosting.example".into(),
        vec!["192.0.2.25".parse().unwrap()],
    )];
    let z = build_zone(&i);
    assert_eq!(
        names_of(&z, "imap.mail.hosting.example", "A"),
        ["203.0.113.9"]
    );
}

#[test]
fn zone_snapshots() {
    for (name, zone) in cases() {
        insta::assert_snapshot!(name, to_zone_file(&zone));
    }
}

fn names_of(zone: &ZoneContent, name: &str, rtype: &str) -> Vec<String> {
    zone.records
        .iter()
        .filter(|r| r.name == name && r.rtype == rtype)
        .map(|r| r.data.clone())
        .collect()
}

#[test]
fn web_records_follow_placement_and_health() {
    let cases: HashMap<_, _> = cases().into_iter().collect();
    let a = |case: &str, name: &str| names_of(&cases[case], name, "A");
    assert!(a("plain", "example.com").is_empty());
    assert_eq!(
        a("all_two_servers", "example.com"),
        ["192.0.2.80", "192.0.2.81"]
    );
    assert_eq!(
        a("all_two_servers", "www.example.com"),
        ["192.0.2.80", "192.0.2.81"]
    );
    assert_eq!(a("single", "example.com"), ["192.0.2.81"]);
    assert_eq!(a("one_web_down", "www.example.com"), ["192.0.2.81"]);
    assert_eq!(
        a("all_web_down", "example.com"),
        ["192.0.2.80", "192.0.2.81"]
    );
    let ttl = cases["single"]
        .records
        .iter()
        .find(|r| r.name == "www.example.com")
        .map(|r| r.ttl);
    assert_eq!(ttl, Some(60));
    // A drained server leaves `all`, unless it is the last one.
    let origin = example();
    let mut f = fleet();
    f.web[0].drained = true;
    let all = site(PlacementMode::All, None);
    let z = build_zone(&input(&origin, &f, Some(&all), &[]));
    assert_eq!(names_of(&z, "example.com", "A"), ["192.0.2.81"]);
    f.web[1].drained = true;
    let z = build_zone(&input(&origin, &f, Some(&all), &[]));
    assert_eq!(
        names_of(&z, "example.com", "A"),
        ["192.0.2.80", "192.0.2.81"]
    );
    // The single site's server down with the other one up: still the active one.
    let single = site(PlacementMode::Single, Some(12));
    let f = fleet();
    let mut i = input(&origin, &f, Some(&single), &[]);
    i.web[1].health = Health::Down;
    assert_eq!(
        names_of(&build_zone(&i), "example.com", "A"),
        ["192.0.2.81"]
    );
}

#[test]
fn generated_records() {
    let cases: HashMap<_, _> = cases().into_iter().collect();
    let z = &cases["plain"];
    assert_eq!(z.records[0].rtype, "SOA");
    assert_eq!(
        z.records[0].data,
        "ns1.hosting.example. hostmaster.example.com. 2026112500 3600 600 1209600 300"
    );
    assert_eq!(
        names_of(z, "example.com", "NS"),
        ["ns1.hosting.example.", "ns2.hosting.example."]
    );
    assert_eq!(
        names_of(z, "example.com", "MX"),
        ["10 mx1.hosting.example.", "20 mx2.hosting.example."]
    );
    assert_eq!(names_of(z, "mail.example.com", "A"), ["192.0.2.25"]);
    assert_eq!(names_of(z, "ftp.example.com", "A"), ["192.0.2.21"]);
    assert_eq!(names_of(z, "example.com", "TXT"), ["\"v=spf1 mx -all\""]);
    // No glue for out-of-zone name servers; glue for in-zone ones.
    assert!(names_of(z, "ns1.hosting.example", "A").is_empty());
    let g = &cases["in_bailiwick_glue"];
    assert_eq!(names_of(g, "ns1.hosting.example", "A"), ["192.0.2.53"]);
    assert_eq!(names_of(g, "ns2.hosting.example", "A"), ["198.51.100.53"]);
    let v6 = &cases["ipv6"];
    assert_eq!(
        names_of(v6, "www.example.com", "AAAA"),
        ["2001:db8::80", "2001:db8::81"]
    );
    assert_eq!(names_of(v6, "ns1.example.com", "AAAA"), ["2001:db8::53"]);
}

#[test]
fn mail_domains_tell_clients_where_to_connect() {
    let origin = example();
    let f = fleet();
    let site = site(PlacementMode::All, None);
    let z = build_zone(&input(&origin, &f, Some(&site), &[]));
    // RFC 6186 SRV at the mail primary's own host name (its certificate's).
    assert_eq!(
        names_of(&z, "_imaps._tcp.example.com", "SRV"),
        ["0 1 993 mx1.hosting.example."]
    );
    assert_eq!(
        names_of(&z, "_submissions._tcp.example.com", "SRV"),
        ["0 1 465 mx1.hosting.example."]
    );
    assert_eq!(
        names_of(&z, "_pop3s._tcp.example.com", "SRV"),
        ["0 1 995 mx1.hosting.example."]
    );
    // Thunderbird's and Outlook's names at the site's web servers.
    for name in ["autoconfig.example.com", "autodiscover.example.com"] {
        assert_eq!(
            names_of(&z, name, "A"),
            ["192.0.2.80", "192.0.2.81"],
            "{name}"
        );
    }
    assert_eq!(
        names_of(&z, "_autodiscover._tcp.example.com", "SRV"),
        ["0 1 443 example.com."]
    );
    // Without a site: the SRV records, no web names.
    let z = build_zone(&input(&origin, &f, None, &[]));
    assert_eq!(names_of(&z, "_imap._tcp.example.com", "SRV").len(), 1);
    assert!(names_of(&z, "autoconfig.example.com", "A").is_empty());
    // Without mail: nothing.
    let mut no_mail = input(&origin, &f, Some(&site), &[]);
    no_mail.mail.clear();
    let z = build_zone(&no_mail);
    assert!(names_of(&z, "_imaps._tcp.example.com", "SRV").is_empty());
    assert!(names_of(&z, "autodiscover.example.com", "A").is_empty());
    // The customer's own MX: their mail is elsewhere, so is their clients'.
    let mx = [rec(
        "@",
        None,
        RecordData::Mx {
            preference: 5,
            exchange: target("mx.google.example"),
        },
    )];
    let z = build_zone(&input(&origin, &f, Some(&site), &mx));
    assert!(names_of(&z, "_imaps._tcp.example.com", "SRV").is_empty());
    assert!(names_of(&z, "autoconfig.example.com", "A").is_empty());
}

#[test]
fn customer_records_replace_generated_ones() {
    let cases: HashMap<_, _> = cases().into_iter().collect();
    let z = &cases["customer_records"];
    assert!(names_of(z, "www.example.com", "A").is_empty());
    assert_eq!(
        names_of(z, "www.example.com", "CNAME"),
        ["shop.provider.example."]
    );
    // Their SPF replaces ours; their other TXT stays next to it.
    let txt = names_of(z, "example.com", "TXT");
    assert_eq!(txt.len(), 2, "{txt:?}");
    assert!(!txt.contains(&"\"v=spf1 mx -all\"".to_owned()));
    assert!(txt.contains(&"\"site-verification=\\\"abc\\\"\"".to_owned()));
    assert_eq!(names_of(z, "ftp.example.com", "A"), ["203.0.113.7"]);
    // The apex keeps its web addresses and MX.
    assert_eq!(names_of(z, "example.com", "A").len(), 2);
    assert_eq!(names_of(z, "example.com", "MX").len(), 2);
    // A 300-character TXT becomes two strings.
    let long = names_of(z, "long.example.com", "TXT");
    assert_eq!(long[0].matches('"').count(), 4);
    // A non-SPF TXT alone keeps the default SPF.
    let origin = example();
    let f = fleet();
    let only = [rec(
        "@",
        None,
        RecordData::Txt {
            text: "v=spf10".into(),
        },
    )];
    let z = build_zone(&input(&origin, &f, None, &only));
    assert!(names_of(&z, "example.com", "TXT").contains(&"\"v=spf1 mx -all\"".to_owned()));
    // A customer MX replaces all generated MX; a customer CNAME at `mail` its A.
    let recs = [
        rec(
            "@",
            None,
            RecordData::Mx {
                preference: 5,
                exchange: target("mx.google.example"),
            },
        ),
        rec(
            "mail",
            None,
            RecordData::Cname {
                target: target("ghs.google.example"),
            },
        ),
    ];
    let z = build_zone(&input(&origin, &f, None, &recs));
    assert_eq!(names_of(&z, "example.com", "MX"), ["5 mx.google.example."]);
    assert!(names_of(&z, "mail.example.com", "A").is_empty());
}

#[test]
fn rrsets_have_one_ttl_and_no_duplicates() {
    let origin = example();
    let f = fleet();
    let all = site(PlacementMode::All, None);
    let recs = [rec(
        "www",
        Some(30),
        RecordData::A {
            address: "192.0.2.99".parse().unwrap(),
        },
    )];
    // The customer's A at www replaces ours; duplicates of the same server
    // addresses collapse.
    let mut i = input(&origin, &f, Some(&all), &recs);
    i.web.push(i.web[0]);
    let z = build_zone(&i);
    assert_eq!(names_of(&z, "www.example.com", "A"), ["192.0.2.99"]);
    assert_eq!(
        names_of(&z, "example.com", "A"),
        ["192.0.2.80", "192.0.2.81"]
    );
    let mut ttls: HashMap<(&str, &str), u32> = HashMap::new();
    for r in &z.records {
        let t = ttls.entry((&r.name, &r.rtype)).or_insert(r.ttl);
        assert_eq!(*t, r.ttl, "{r:?}");
    }
}

#[test]
fn serial_arithmetic() {
    assert!(serial_gt(2, 1));
    assert!(!serial_gt(1, 2));
    assert!(!serial_gt(5, 5));
    // Wrap-around: 0 and 1 are after u32::MAX.
    assert!(serial_gt(0, u32::MAX));
    assert!(serial_gt(1, u32::MAX - 10));
    assert!(!serial_gt(u32::MAX, 0));
    // Within 2^31 - 1 ahead is greater; exactly 2^31 apart is undefined.
    assert!(serial_gt(0x7fff_ffff, 0));
    assert!(!serial_gt(0x8000_0000, 0));
    assert!(!serial_gt(0, 0x8000_0000));
}

#[test]
fn next_serials() {
    assert_eq!(next_serial(None, 20_261_125), 2_026_112_500);
    assert_eq!(next_serial(None, 0), 1);
    // Same day: count up.
    assert_eq!(next_serial(Some(2_026_112_500), 20_261_125), 2_026_112_501);
    // A new day jumps to its date serial.
    assert_eq!(next_serial(Some(2_026_112_507), 20_261_126), 2_026_112_600);
    // More than 100 changes a day run past the date; the next day does not
    // go back.
    assert_eq!(next_serial(Some(2_026_112_650), 20_261_126), 2_026_112_651);
    // Wrap-around: past u32::MAX the serial continues at 0, still "greater".
    let s = next_serial(Some(u32::MAX), 0);
    assert_eq!(s, 0);
    assert!(serial_gt(s, u32::MAX));
    // ... or jumps to the date serial when that is ahead of it.
    let s = next_serial(Some(u32::MAX), 20_261_125);
    assert_eq!(s, 2_026_112_500);
    assert!(serial_gt(s, u32::MAX));
    // Far ahead of the date (2^31 > distance > 0 the other way): count up.
    assert_eq!(next_serial(Some(3_000_000_000), 20_261_125), 3_000_000_001);
    // A small serial jumps forward to the date serial.
    assert_eq!(next_serial(Some(5), 20_261_125), 2_026_112_500);
    // Whatever the previous serial, the result is greater.
    for prev in [0, 1, 2_026_112_499, 0x7fff_ffff, 0x8000_0000, u32::MAX - 1] {
        assert!(
            serial_gt(next_serial(Some(prev), 20_261_125), prev),
            "{prev}"
        );
    }
}

#[test]
fn serial_changes_exactly_with_content() {
    let origin = example();
    let f = fleet();
    let all = site(PlacementMode::All, None);
    let mut serials = ZoneSerials::default();
    let mut z = build_zone(&input(&origin, &f, Some(&all), &[]));
    serials.assign(&mut z, 20_261_125);
    assert_eq!(z.serial, 2_026_112_500);
    assert!(z.records[0].data.contains(" 2026112500 "));
    let mut same = build_zone(&input(&origin, &f, Some(&all), &[]));
    serials.assign(&mut same, 20_261_125);
    assert_eq!(same, z);
    let mut i = input(&origin, &f, Some(&all), &[]);
    i.web[1].health = Health::Down;
    let mut changed = build_zone(&i);
    serials.assign(&mut changed, 20_261_125);
    assert_eq!(changed.serial, 2_026_112_501);
    assert!(changed.records[0].data.contains(" 2026112501 "));
    assert_eq!(serials.serial("example.com"), Some(2_026_112_501));
    serials.retain(|_| false);
    assert_eq!(serials.serial("example.com"), None);
}

/// Every rendered zone must load in BIND's checker (package `bind9-utils`).
#[test]
fn zones_pass_named_checkzone() {
    let Ok(out) = std::process::Command::new("named-checkzone")
        .arg("-v")
        .output()
    else {
        panic!(
            "named-checkzone is not installed: run `apt-get install -y bind9-utils` \
             (scripts/test installs it)"
        );
    };
    assert!(out.status.success(), "named-checkzone -v failed");
    let dir = tempfile::tempdir().unwrap();
    for (name, zone) in cases() {
        let path = dir.path().join(format!("{name}.zone"));
        std::fs::write(&path, to_zone_file(&zone)).unwrap();
        let out = std::process::Command::new("named-checkzone")
            .args([
                "-k", "fail", "-m", "fail", "-M", "fail", "-n", "fail", "-S", "fail",
            ])
            .args(["-i", "full"])
            .arg(&zone.origin)
            .arg(&path)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{name}: named-checkzone rejected the zone:\n{}{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
            to_zone_file(&zone)
        );
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            stdout.contains(&format!("serial {}", zone.serial)),
            "{name}: {stdout}"
        );
    }
}
