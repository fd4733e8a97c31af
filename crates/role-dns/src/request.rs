//! One request's bytes in, its response messages out: queries (EDNS0, size limits and
//! truncation), zone transfers (ACL, TCP only, TSIG), NOTIFY and signed requests,
//! over the name resolution of [`crate::lookup`].
//!
//! Nothing here touches a socket, so every behaviour (EDNS0 and truncation, malformed
//! input, transfer and NOTIFY rules) is unit-tested directly. [`handle`] never panics:
//! every path returns a `Result`, and undecodable input becomes FORMERR, unsupported
//! opcodes NOTIMP, and packets that must not be answered are dropped.

use std::net::IpAddr;

use hickory_proto::op::{Edns, Message, OpCode, Query, ResponseCode};
use hickory_proto::rr::{DNSClass, Name, RecordType};
use hickory_proto::ProtoError;

use crate::lookup::{fqdn, resolve};
use crate::tsig::{self, Key, ResponseSigner};
use crate::xfr;
use crate::zone::ZoneSet;

/// Largest UDP response we ever send, whatever the client advertises.
pub const MAX_UDP_PAYLOAD: u16 = 4096;
/// The UDP payload size we advertise in our OPT record (DNS flag day 2020).
pub const ADVERTISED_UDP_PAYLOAD: u16 = 1232;
/// UDP response limit for clients without EDNS0 (RFC 1035 §4.2.1).
pub const CLASSIC_UDP_PAYLOAD: u16 = 512;
/// Length of the fixed DNS header.
const HEADER_LEN: usize = 12;

/// The transport a request arrived on; it decides the response size limit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transport {
    /// UDP: 512 bytes, or the client's EDNS0 size (capped at [`MAX_UDP_PAYLOAD`]).
    Udp,
    /// TCP: up to 65535 bytes.
    Tcp,
}

/// A failure to produce a response (the packet is then dropped).
#[derive(Debug, thiserror::Error)]
pub enum LookupError {
    /// The response could not be encoded.
    #[error("cannot encode response: {0}")]
    Encode(#[from] ProtoError),
}

/// A header-only response echoing the request's id, opcode and RD bit.
fn header_only(request: &[u8], rcode: ResponseCode) -> Vec<u8> {
    let mut out = vec![0u8; HEADER_LEN];
    out[0] = request[0];
    out[1] = request[1];
    out[2] = 0x80 | (request[2] & 0x79);
    out[3] = rcode.low() & 0x0f;
    out
}

/// Encodes `response`, shrinking it to `limit` bytes: first without the additional
/// section (TC set if that drops referral glue), then with only the question and TC=1.
fn encode(mut response: Message, limit: usize) -> Result<Vec<u8>, LookupError> {
    let bytes = response.to_vec()?;
    if bytes.len() <= limit {
        return Ok(bytes);
    }
    let referral = !response.metadata.authoritative && !response.additionals.is_empty();
    response.additionals.clear();
    response.metadata.truncation = referral;
    let bytes = response.to_vec()?;
    if bytes.len() <= limit {
        return Ok(bytes);
    }
    response.answers.clear();
    response.authorities.clear();
    response.metadata.truncation = true;
    Ok(response.to_vec()?)
}

/// What answering one request produced.
#[derive(Debug, Default, PartialEq)]
pub struct Outcome {
    /// Response messages to send, in order (several for a zone transfer; empty when
    /// the packet is dropped).
    pub messages: Vec<Vec<u8>>,
    /// A NOTIFY for this zone was accepted from an allowed primary: check it now.
    pub notified: Option<Name>,
}

impl Outcome {
    fn one(message: Vec<u8>) -> Self {
        Self {
            messages: vec![message],
            notified: None,
        }
    }
}

/// Answers one DNS request (no transfers or NOTIFY: the peer is unknown).
///
/// Returns `Ok(None)` when the packet must not be answered (shorter than a header, or
/// itself a response), otherwise the encoded response, which fits the transport's limit.
pub fn handle(
    zones: &ZoneSet,
    request: &[u8],
    transport: Transport,
) -> Result<Option<Vec<u8>>, LookupError> {
    let peer = IpAddr::V6(std::net::Ipv6Addr::UNSPECIFIED);
    Ok(handle_from(zones, request, peer, transport)?
        .messages
        .into_iter()
        .next())
}

/// A verified TSIG on the request: the key and the request MAC to sign answers over.
struct Signed<'a> {
    key: &'a Key,
    mac: Vec<u8>,
}

/// Answers one request from `peer`: queries, zone transfers (TCP, ACL and TSIG
/// checked), NOTIFY (from the zone's primary) and signed requests.
///
/// Never panics on any input; packets that must not be answered give no message.
pub fn handle_from(
    zones: &ZoneSet,
    request: &[u8],
    peer: IpAddr,
    transport: Transport,
) -> Result<Outcome, LookupError> {
    if request.len() < HEADER_LEN || request[2] & 0x80 != 0 {
        return Ok(Outcome::default());
    }
    let opcode = (request[2] >> 3) & 0x0f;
    if opcode != 0 && opcode != 4 {
        return Ok(Outcome::one(header_only(request, ResponseCode::NotImp)));
    }
    // A TSIG record can only be last in the additional section.
    let arcount = u16::from_be_bytes([request[10], request[11]]);
    let mut signed = None;
    let mut stripped = None;
    if arcount > 0 {
        if let Some(rr) = tsig::find(request) {
            let Some(key) = zones.key(&rr.key_name.to_lowercase()) else {
                let resp = header_only(request, ResponseCode::NotAuth);
                return Ok(Outcome::one(tsig::error_response(resp, &rr, tsig::BADKEY)));
            };
            match tsig::verify_request_rotated(key, request, &rr, tsig::now()) {
                Ok((key, mac)) => signed = Some(Signed { key, mac }),
                Err(code) => {
                    let resp = header_only(request, ResponseCode::NotAuth);
                    return Ok(Outcome::one(tsig::error_response(resp, &rr, code)));
                }
            }
            let mut body = tsig::strip(request, &rr);
            body[0..2].copy_from_slice(&request[0..2]);
            stripped = Some(body);
        }
    }
    let body = stripped.as_deref().unwrap_or(request);
    let Ok(message) = Message::from_vec(body) else {
        return Ok(Outcome::one(header_only(request, ResponseCode::FormErr)));
    };
    let [query] = message.queries.as_slice() else {
        return Ok(Outcome::one(header_only(request, ResponseCode::FormErr)));
    };
    let mut outcome = if opcode == 4 {
        notify(zones, &message, query, peer)?
    } else if matches!(query.query_type(), RecordType::AXFR | RecordType::IXFR)
        && query.query_class() == DNSClass::IN
    {
        transfer(zones, &message, query, peer, transport, signed.as_ref())?
    } else {
        // A signed answer must leave room for its TSIG record under the size limit.
        let reserve = signed.as_ref().map_or(0, |s| s.key.record_len());
        Outcome::one(answer(zones, &message, query, transport, reserve)?)
    };
    if let Some(signed) = signed {
        let mut signer = ResponseSigner::new(signed.key, signed.mac, tsig::now());
        let mut out = Vec::with_capacity(outcome.messages.len());
        for m in outcome.messages {
            match signer.sign(m) {
                Ok(m) => out.push(m),
                Err(_) => return Ok(Outcome::default()),
            }
        }
        outcome.messages = out;
    }
    Ok(outcome)
}

/// A response to `message` with only the question and `rcode`.
fn bare_response(message: &Message, query: &Query, opcode: OpCode, rcode: ResponseCode) -> Message {
    let mut response = Message::response(message.metadata.id, opcode);
    response.metadata.recursion_desired = message.metadata.recursion_desired;
    response.metadata.response_code = rcode;
    response.add_query(query.clone());
    response
}

/// NOTIFY (RFC 1996): accepted from the zone's primary addresses only (signed or
/// not: a NOTIFY only makes the secondary ask the primary, over a checked channel).
fn notify(
    zones: &ZoneSet,
    message: &Message,
    query: &Query,
    peer: IpAddr,
) -> Result<Outcome, LookupError> {
    let origin = fqdn(query.name().clone());
    let (rcode, accepted) = match zones.meta(&origin) {
        None => (ResponseCode::NotAuth, false),
        Some(meta) if !meta.notify_from.contains(&peer) => (ResponseCode::Refused, false),
        Some(_) => (ResponseCode::NoError, true),
    };
    let mut response = bare_response(message, query, OpCode::Notify, rcode);
    response.metadata.authoritative = accepted;
    Ok(Outcome {
        messages: vec![response.to_vec()?],
        notified: accepted.then_some(origin),
    })
}

/// AXFR/IXFR: TCP only (IXFR over UDP gets the SOA alone), to the zone's ACL, signed
/// with the zone's key when it has one.
fn transfer(
    zones: &ZoneSet,
    message: &Message,
    query: &Query,
    peer: IpAddr,
    transport: Transport,
    signed: Option<&Signed<'_>>,
) -> Result<Outcome, LookupError> {
    let origin = fqdn(query.name().clone());
    let refuse = |rcode| -> Result<Outcome, LookupError> {
        let mut r = bare_response(message, query, OpCode::Query, rcode);
        if message.edns.is_some() {
            r.set_edns(Edns::new());
        }
        Ok(Outcome::one(r.to_vec()?))
    };
    let Some(zone) = zones.get_shared(&origin) else {
        return refuse(ResponseCode::NotAuth);
    };
    let Some(meta) = zones
        .meta(&origin)
        .filter(|m| m.transfer_acl.contains(&peer))
    else {
        return refuse(ResponseCode::Refused);
    };
    if let Some(key) = &meta.tsig {
        if signed.is_none_or(|s| s.key.name() != key.name()) {
            return refuse(ResponseCode::NotAuth);
        }
    }
    let is_ixfr = query.query_type() == RecordType::IXFR;
    let records = match (transport, is_ixfr) {
        (Transport::Udp, false) => return refuse(ResponseCode::Refused),
        (Transport::Udp, true) => vec![zone.soa().clone()],
        (Transport::Tcp, false) => xfr::axfr_records(zone),
        (Transport::Tcp, true) => {
            let Some(client) = message.authorities.iter().find_map(xfr::soa_serial) else {
                return refuse(ResponseCode::FormErr);
            };
            xfr::ixfr_records(zone, &meta.history, client)
        }
    };
    let messages = xfr::pack(message.metadata.id, query, records)
        .iter()
        .map(Message::to_vec)
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Outcome {
        messages,
        notified: None,
    })
}

/// A standard query (opcode QUERY, not a transfer).
fn answer(
    zones: &ZoneSet,
    message: &Message,
    query: &Query,
    transport: Transport,
    reserve: usize,
) -> Result<Vec<u8>, LookupError> {
    let mut response = Message::response(message.metadata.id, OpCode::Query);
    response.metadata.recursion_desired = message.metadata.recursion_desired;
    response.metadata.checking_disabled = message.metadata.checking_disabled;
    response.add_query(query.clone());
    let limit = match (transport, &message.edns) {
        (Transport::Tcp, _) => usize::from(u16::MAX),
        (Transport::Udp, None) => usize::from(CLASSIC_UDP_PAYLOAD),
        (Transport::Udp, Some(edns)) => usize::from(
            edns.max_payload()
                .clamp(CLASSIC_UDP_PAYLOAD, MAX_UDP_PAYLOAD),
        ),
    }
    .saturating_sub(reserve);
    if let Some(request_edns) = &message.edns {
        let mut edns = Edns::new();
        edns.set_max_payload(ADVERTISED_UDP_PAYLOAD);
        edns.set_version(0);
        response.set_edns(edns);
        if request_edns.version() > 0 {
            response.metadata.response_code = ResponseCode::BADVERS;
            return encode(response, limit);
        }
    }

    let qtype = query.query_type();
    let rcode = if query.query_class() != DNSClass::IN {
        Some(ResponseCode::Refused)
    } else if matches!(qtype, RecordType::OPT) {
        Some(ResponseCode::FormErr)
    } else if matches!(qtype, RecordType::AXFR | RecordType::IXFR) {
        Some(ResponseCode::Refused)
    } else {
        None
    };
    if let Some(rcode) = rcode {
        response.metadata.response_code = rcode;
        return encode(response, limit);
    }

    let res = resolve(zones, query.name(), qtype);
    response.metadata.response_code = res.rcode;
    response.metadata.authoritative = res.authoritative;
    response.answers = res.answers;
    response.authorities = res.authorities;
    response.additionals = res.additionals;
    encode(response, limit)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lookup::tests::{example_com, line, n, zones};
    use hickory_proto::rr::Record;

    fn query_bytes(name: &str, qtype: RecordType, edns: Option<u16>) -> Vec<u8> {
        let mut m = Message::query();
        m.metadata.id = 0x1234;
        m.add_query(Query::query(n(name), qtype));
        if let Some(size) = edns {
            let mut e = Edns::new();
            e.set_max_payload(size);
            m.set_edns(e);
        }
        m.to_vec().expect("encode")
    }

    fn answer(bytes: &[u8], transport: Transport) -> Message {
        let out = handle(&zones(), bytes, transport)
            .expect("handle")
            .expect("some response");
        Message::from_vec(&out).expect("decodable response")
    }

    #[test]
    fn wire_answer_preserves_question_case_and_sets_flags() {
        let m = answer(
            &query_bytes("WwW.ExAmPlE.cOm.", RecordType::A, None),
            Transport::Udp,
        );
        assert_eq!(m.metadata.id, 0x1234);
        assert!(m.metadata.authoritative);
        assert_eq!(m.metadata.response_code, ResponseCode::NoError);
        assert_eq!(m.queries[0].name().to_ascii(), "WwW.ExAmPlE.cOm.");
        assert_eq!(m.answers.len(), 3);
        assert!(m.edns.is_none(), "no OPT without EDNS in the query");
    }

    /// A signed answer over UDP must fit the size limit with its TSIG record
    /// (RFC 8945 §5.3): across the sizes where adding the record crosses 512
    /// bytes, every answer fits, verifies, and is truncated rather than oversized.
    #[test]
    fn signed_udp_answers_leave_room_for_their_tsig() {
        let key = std::sync::Arc::new(
            crate::tsig::Key::new("k.example.", "hmac-sha256", "c2VjcmV0c2VjcmV0c2VjcmV0")
                .expect("key"),
        );
        let peer: IpAddr = "127.0.0.1".parse().expect("ip");
        let mut edge_seen = false;
        for n in 1..30 {
            let mut data = example_com();
            for i in 0..n {
                data.records.push(line(
                    "big.example.com.",
                    60,
                    "TXT",
                    &format!("\"{i:03} {}\"", "y".repeat(20)),
                ));
            }
            let mut set = ZoneSet::from_data([&data]).expect("zones");
            set.set_keys([key.clone()]);
            let q = query_bytes("big.example.com.", RecordType::TXT, None);
            let unsigned = handle(&set, &q, Transport::Udp).expect("h").expect("r");
            let (signed_q, mac) =
                crate::tsig::sign_request(&key, q, crate::tsig::now()).expect("s");
            let out = handle_from(&set, &signed_q, peer, Transport::Udp)
                .expect("handle")
                .messages
                .remove(0);
            assert!(out.len() <= 512, "{n} records: {} bytes", out.len());
            crate::tsig::ResponseVerifier::new(&key, mac)
                .verify(&out)
                .expect("the answer verifies");
            let rr = crate::tsig::find(&out).expect("signed");
            let signed = Message::from_vec(&crate::tsig::strip(&out, &rr)).expect("decode");
            let plain = Message::from_vec(&unsigned).expect("decode");
            if !plain.metadata.truncation && signed.metadata.truncation {
                edge_seen = true;
            }
        }
        assert!(
            edge_seen,
            "no size where only the TSIG record forced truncation"
        );
    }

    #[test]
    fn wire_edns_echo_and_truncation() {
        let mut data = example_com();
        for i in 0..30 {
            data.records.push(line(
                "big.example.com.",
                60,
                "TXT",
                &format!("\"{i:03} {}\"", "x".repeat(90)),
            ));
        }
        let set = ZoneSet::from_data([&data]).expect("zones");
        let run = |bytes: &[u8], t| {
            let out = handle(&set, bytes, t).expect("handle").expect("response");
            (out.len(), Message::from_vec(&out).expect("decode"))
        };
        // Without EDNS: 512 bytes, truncated, no OPT.
        let (len, m) = run(
            &query_bytes("big.example.com.", RecordType::TXT, None),
            Transport::Udp,
        );
        assert!(len <= 512 && m.metadata.truncation && m.answers.is_empty());
        assert!(m.edns.is_none());
        // EDNS 1232: still too big, truncated, OPT echoed.
        let (len, m) = run(
            &query_bytes("big.example.com.", RecordType::TXT, Some(1232)),
            Transport::Udp,
        );
        assert!(len <= 1232 && m.metadata.truncation);
        assert_eq!(
            m.edns.as_ref().map(Edns::max_payload),
            Some(ADVERTISED_UDP_PAYLOAD)
        );
        // EDNS 4096 (client's size honoured): fits.
        let (len, m) = run(
            &query_bytes("big.example.com.", RecordType::TXT, Some(4096)),
            Transport::Udp,
        );
        assert!(len > 1232 && !m.metadata.truncation && m.answers.len() == 30);
        // TCP: everything.
        let (_, m) = run(
            &query_bytes("big.example.com.", RecordType::TXT, None),
            Transport::Tcp,
        );
        assert!(!m.metadata.truncation && m.answers.len() == 30);
        // A tiny advertised size is raised to 512.
        let (_, m) = run(
            &query_bytes("example.com.", RecordType::A, Some(100)),
            Transport::Udp,
        );
        assert!(!m.metadata.truncation && m.answers.len() == 1);
    }

    #[test]
    fn wire_errors() {
        let zones = zones();
        // Short packets and responses are dropped.
        assert_eq!(handle(&zones, &[], Transport::Udp).expect("ok"), None);
        assert_eq!(
            handle(&zones, &[1, 2, 3], Transport::Udp).expect("ok"),
            None
        );
        let mut resp = query_bytes("example.com.", RecordType::A, None);
        resp[2] |= 0x80;
        assert_eq!(handle(&zones, &resp, Transport::Udp).expect("ok"), None);
        // Header claims a question that is not there: FORMERR.
        let mut bad = query_bytes("example.com.", RecordType::A, None);
        bad.truncate(15);
        let out = handle(&zones, &bad, Transport::Udp)
            .expect("ok")
            .expect("resp");
        assert_eq!(out.len(), 12);
        assert_eq!(&out[..2], &[0x12, 0x34]);
        assert_eq!(out[3] & 0x0f, ResponseCode::FormErr.low());
        // Zero questions: FORMERR.
        let mut none = query_bytes("example.com.", RecordType::A, None);
        none[4] = 0;
        none[5] = 0;
        none.truncate(12);
        let out = handle(&zones, &none, Transport::Udp)
            .expect("ok")
            .expect("resp");
        assert_eq!(out[3] & 0x0f, 1);
        // UPDATE (opcode 5) and unknown opcode 15: NOTIMP, opcode echoed.
        for opcode in [5u8, 15] {
            let mut upd = query_bytes("example.com.", RecordType::A, None);
            upd[2] = (upd[2] & 0x87) | (opcode << 3);
            let out = handle(&zones, &upd, Transport::Udp)
                .expect("ok")
                .expect("resp");
            assert_eq!(out[3] & 0x0f, 4);
            assert_eq!((out[2] >> 3) & 0x0f, opcode);
            assert!(out[2] & 0x80 != 0);
        }
        // EDNS version 1: BADVERS.
        let mut m = Message::query();
        m.add_query(Query::query(n("example.com."), RecordType::A));
        let mut e = Edns::new();
        e.set_version(1);
        m.set_edns(e);
        let r = answer(&m.to_vec().expect("enc"), Transport::Udp);
        // 16 decodes as BADSIG (same number); compare the wire value.
        assert_eq!(u16::from(r.metadata.response_code), 16);
        // Transfers and CHAOS class are refused.
        let r = answer(
            &query_bytes("example.com.", RecordType::AXFR, None),
            Transport::Tcp,
        );
        assert_eq!(r.metadata.response_code, ResponseCode::Refused);
        let mut q = Query::query(n("version.bind."), RecordType::TXT);
        q.set_query_class(DNSClass::CH);
        let mut m = Message::query();
        m.add_query(q);
        let r = answer(&m.to_vec().expect("enc"), Transport::Udp);
        assert_eq!(r.metadata.response_code, ResponseCode::Refused);
    }

    #[test]
    fn wire_never_panics_on_garbage() {
        let zones = zones();
        let valid = query_bytes("www.example.com.", RecordType::A, Some(1232));
        let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        for i in 0..20_000 {
            let mut packet = if i % 2 == 0 {
                valid.clone()
            } else {
                (0..(next() % 80) as usize).map(|_| next() as u8).collect()
            };
            // Flip a few bytes and cut at a random length.
            for _ in 0..(next() % 4) {
                if !packet.is_empty() {
                    let at = (next() as usize) % packet.len();
                    packet[at] = next() as u8;
                }
            }
            let cut = (next() as usize) % (packet.len() + 1);
            packet.truncate(cut.max(packet.len() / 2));
            let _ = handle(&zones, &packet, Transport::Udp);
            let _ = handle(&zones, &packet, Transport::Tcp);
        }
    }

    fn xfr_zones() -> ZoneSet {
        let mut set = zones();
        let meta = crate::zone::ZoneMeta {
            transfer_acl: vec!["127.0.0.2".parse().expect("ip")],
            notify_from: vec!["127.0.0.3".parse().expect("ip")],
            ..Default::default()
        };
        set.set_meta(n("example.com."), std::sync::Arc::new(meta));
        set
    }

    fn request(qtype: RecordType, opcode: OpCode) -> Vec<u8> {
        let mut m = Message::query();
        m.metadata.op_code = opcode;
        m.add_query(Query::query(n("example.com."), qtype));
        if qtype == RecordType::IXFR {
            let soa = xfr_zones()
                .get(&n("example.com."))
                .expect("zone")
                .soa()
                .clone();
            m.add_authority(soa);
        }
        m.to_vec().expect("encode")
    }

    fn rcodes(out: &Outcome) -> Vec<ResponseCode> {
        out.messages
            .iter()
            .map(|m| Message::from_vec(m).expect("decode").metadata.response_code)
            .collect()
    }

    #[test]
    fn transfers_obey_acl_and_transport() {
        let set = xfr_zones();
        let ip = |s: &str| -> IpAddr { s.parse().expect("ip") };
        let axfr = request(RecordType::AXFR, OpCode::Query);
        let ok = handle_from(&set, &axfr, ip("127.0.0.2"), Transport::Tcp).expect("ok");
        assert_eq!(rcodes(&ok), vec![ResponseCode::NoError]);
        let first = Message::from_vec(&ok.messages[0]).expect("decode");
        assert_eq!(
            first.answers.first().map(Record::record_type),
            Some(RecordType::SOA)
        );
        assert_eq!(
            first.answers.last().map(Record::record_type),
            Some(RecordType::SOA)
        );
        let denied = handle_from(&set, &axfr, ip("127.0.0.9"), Transport::Tcp).expect("ok");
        assert_eq!(rcodes(&denied), vec![ResponseCode::Refused]);
        let udp = handle_from(&set, &axfr, ip("127.0.0.2"), Transport::Udp).expect("ok");
        assert_eq!(rcodes(&udp), vec![ResponseCode::Refused]);
        let ixfr = request(RecordType::IXFR, OpCode::Query);
        let soa_only = handle_from(&set, &ixfr, ip("127.0.0.2"), Transport::Udp).expect("ok");
        let m = Message::from_vec(&soa_only.messages[0]).expect("decode");
        assert_eq!(m.answers.len(), 1);
        // Without transfer metadata nobody may transfer.
        let plain = handle_from(&zones(), &axfr, ip("127.0.0.2"), Transport::Tcp).expect("ok");
        assert_eq!(rcodes(&plain), vec![ResponseCode::Refused]);
    }

    #[test]
    fn notify_only_from_the_primary() {
        let set = xfr_zones();
        let ip = |s: &str| -> IpAddr { s.parse().expect("ip") };
        let notify = request(RecordType::SOA, OpCode::Notify);
        let ok = handle_from(&set, &notify, ip("127.0.0.3"), Transport::Udp).expect("ok");
        assert_eq!(rcodes(&ok), vec![ResponseCode::NoError]);
        let m = Message::from_vec(&ok.messages[0]).expect("decode");
        assert!(m.metadata.authoritative);
        assert_eq!(m.metadata.op_code, OpCode::Notify);
        assert_eq!(ok.notified, Some(n("example.com.")));
        let bad = handle_from(&set, &notify, ip("127.0.0.2"), Transport::Udp).expect("ok");
        assert_eq!(rcodes(&bad), vec![ResponseCode::Refused]);
        assert_eq!(bad.notified, None);
    }
}
