//! Record data the API accepts (model rules) must be data the engine serves: the
//! presentation strings the controller renders for edge cases of each type parse
//! here, so a record accepted at the API never makes its zone rejected (issue 12).

use role_dns::zone::{RecordLine, Zone, ZoneData};

/// The controller's quoting of a character string (`controller/src/zones.rs`).
fn quoted(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        if c == '"' || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
    out
}

#[test]
fn edge_cases_the_api_accepts_parse_in_the_engine() {
    let long: String = "x".repeat(300);
    let txt = |t: &str| {
        t.as_bytes()
            .chunks(255)
            .map(|c| quoted(std::str::from_utf8(c).unwrap()))
            .collect::<Vec<_>>()
            .join(" ")
    };
    let cases: Vec<(&str, &str, String)> = vec![
        ("a.test.", "TXT", txt("v=spf1 mx -all")),
        ("a.test.", "TXT", txt("say \"hi\" \\ back; semi ( paren )")),
        ("a.test.", "TXT", txt(&long)),
        ("a.test.", "TXT", txt(" leading and trailing ")),
        (
            "a.test.",
            "CAA",
            format!("0 issue {}", quoted("letsencrypt.org")),
        ),
        (
            "a.test.",
            "CAA",
            format!("128 iodef {}", quoted("mailto:a@b.test")),
        ),
        ("a.test.", "CAA", format!("0 issue {}", quoted(";"))),
        ("a.test.", "MX", "0 .".to_string()),
        ("_sip._tcp.a.test.", "SRV", "0 0 0 .".to_string()),
        (
            "_sip._tcp.a.test.",
            "SRV",
            "10 5 5060 sip.a.test.".to_string(),
        ),
        ("sub.a.test.", "NS", "ns.other.test.".to_string()),
        ("*.a.test.", "A", "192.0.2.1".to_string()),
        ("x.a.test.", "AAAA", "2001:db8::1".to_string()),
        ("c.a.test.", "CNAME", "xn--bcher-kva.example.".to_string()),
    ];
    for (name, rtype, rdata) in cases {
        let data = ZoneData {
            origin: "a.test.".into(),
            serial: 1,
            records: vec![
                RecordLine {
                    name: "a.test.".into(),
                    ttl: 300,
                    rtype: "SOA".into(),
                    rdata: "ns1.a.test. hostmaster.a.test. 1 3600 600 86400 300".into(),
                },
                RecordLine {
                    name: name.into(),
                    ttl: 300,
                    rtype: rtype.into(),
                    rdata: rdata.clone(),
                },
            ],
        };
        if let Err(e) = Zone::from_data(&data) {
            panic!("{name} {rtype} {rdata}: {e}");
        }
    }
}
