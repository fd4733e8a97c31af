//! The request-path entry point shared by the cargo-fuzz target
//! (`fuzz/fuzz_targets/handle.rs`) and the proptest in the suite: a fixed zone set
//! with transfer metadata, a journal and a TSIG key, and [`exercise`], which feeds
//! one input to [`handle_from`] over both transports from an allowed and a foreign
//! address.

use std::net::IpAddr;
use std::sync::{Arc, OnceLock};

use crate::request::{handle_from, Transport};
use crate::tsig::Key;
use crate::zone::{RecordLine, Zone, ZoneData, ZoneMeta, ZoneSet};

/// The address allowed to transfer and notify in [`sample_set`].
pub const ALLOWED: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(127, 0, 0, 2));
/// Name of the sample TSIG key.
pub const KEY_NAME: &str = "fuzz.key.";
/// Its secret (base64).
pub const KEY_SECRET: &str = "ZnV6ei1zZWNyZXQtZnV6ei1zZWNyZXQ=";

fn line(name: &str, rtype: &str, rdata: &str) -> RecordLine {
    RecordLine {
        name: name.into(),
        ttl: 300,
        rtype: rtype.into(),
        rdata: rdata.into(),
    }
}

fn sample_zone(serial: u32, web: &str) -> Option<Zone> {
    let o = "example.com.";
    Zone::from_data(&ZoneData {
        origin: o.into(),
        serial,
        records: vec![
            line(o, "SOA", "ns1.example.com. h.example.com. 1 60 30 600 300"),
            line(o, "NS", "ns1.example.com."),
            line("ns1.example.com.", "A", "192.0.2.53"),
            line("www.example.com.", "A", web),
            line("*.wild.example.com.", "TXT", "\"w\""),
            line("sub.example.com.", "NS", "ns.sub.example.com."),
            line("ns.sub.example.com.", "A", "192.0.2.9"),
            line("alias.example.com.", "CNAME", "www.example.com."),
        ],
    })
    .ok()
}

/// A zone set exercising every request path: a signed primary zone with history,
/// and an unavailable secondary zone.
pub fn sample_set() -> Arc<ZoneSet> {
    static SET: OnceLock<Arc<ZoneSet>> = OnceLock::new();
    Arc::clone(SET.get_or_init(|| {
        let mut set = ZoneSet::new();
        let key = Key::new(KEY_NAME, "hmac-sha256", KEY_SECRET)
            .ok()
            .map(Arc::new);
        if let (Some(old), Some(new)) = (sample_zone(1, "192.0.2.1"), sample_zone(2, "192.0.2.2")) {
            let origin = new.origin().clone();
            set.replace(new);
            set.set_meta(
                origin,
                Arc::new(ZoneMeta {
                    transfer_acl: vec![ALLOWED],
                    notify_from: vec![ALLOWED],
                    tsig: key.clone(),
                    history: vec![Arc::new(old)],
                    unavailable: false,
                }),
            );
        }
        if let Ok(name) = hickory_proto::rr::Name::from_ascii("secondary.example.") {
            set.set_meta(
                name,
                Arc::new(ZoneMeta {
                    notify_from: vec![ALLOWED],
                    unavailable: true,
                    ..ZoneMeta::default()
                }),
            );
        }
        set.set_keys(key);
        Arc::new(set)
    }))
}

/// Feeds `data` to the request path every way it can arrive. Never panics.
pub fn exercise(data: &[u8]) {
    let set = sample_set();
    let foreign = IpAddr::V4(std::net::Ipv4Addr::new(192, 0, 2, 99));
    for peer in [ALLOWED, foreign] {
        for transport in [Transport::Udp, Transport::Tcp] {
            if let Ok(outcome) = handle_from(&set, data, peer, transport) {
                for m in &outcome.messages {
                    // Every answer fits its transport.
                    let limit = match transport {
                        Transport::Udp => 4096,
                        Transport::Tcp => 65535,
                    };
                    debug_assert!(m.len() <= limit);
                }
            }
        }
    }
}
