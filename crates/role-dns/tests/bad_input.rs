//! Hostile input against a running engine that serves a primary zone with a TSIG key
//! and a secondary zone: garbage and oversized packets over UDP and TCP, TCP length
//! prefixes that lie, transfers and NOTIFY from unauthorised addresses. The engine
//! must answer with the right rcode or drop, never crash, and keep answering.

mod common;

use std::time::Duration;

use common::*;
use hickory_proto::op::{Message, MessageType, OpCode, Query, ResponseCode};
use hickory_proto::rr::{Name, RecordType};
use rand::{Rng, SeedableRng};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_packets_never_stop_the_engine() {
    require("dig", "bind9-dnsutils");
    let ip = "127.0.4.41";
    let dir = tempfile::tempdir().expect("dir");
    let e = engine(ip, dir.path()).await;
    e.apply_dns(&cfg(vec![
        primary(
            content("bad.test", 1, "192.0.2.1", 50),
            vec![ep("127.0.4.42")],
            Some(key()),
        ),
        secondary("sec.test", ep("127.0.4.43"), None),
    ]))
    .await
    .expect("apply");
    assert_eq!(short(ip, "www.bad.test", "A"), "192.0.2.1");

    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    let udp = tokio::net::UdpSocket::bind("127.0.4.44:0")
        .await
        .expect("udp");
    for i in 0..3000usize {
        let len = if i % 100 == 0 {
            65_000
        } else {
            rng.gen_range(0..600)
        };
        let mut packet: Vec<u8> = (0..len).map(|_| rng.gen()).collect();
        if i % 3 == 0 && packet.len() > 12 {
            packet[2] &= 0x7f; // a query, so it reaches the parser
            packet[4..6].copy_from_slice(&1u16.to_be_bytes());
        }
        let _ = udp.send_to(&packet, addr(ip)).await;
    }

    // TCP: lying length prefixes, truncated frames, huge garbage, abrupt closes.
    for case in 0..40u16 {
        let Ok(mut s) = tokio::net::TcpStream::connect(addr(ip)).await else {
            continue;
        };
        let claimed: u16 = match case % 4 {
            0 => 65535,
            1 => 0,
            2 => 12,
            _ => rng.gen(),
        };
        let body: Vec<u8> = (0..usize::from(claimed.min(300)))
            .map(|_| rng.gen())
            .collect();
        let _ = s.write_all(&claimed.to_be_bytes()).await;
        let _ = s.write_all(&body).await;
        if case % 5 == 0 {
            drop(s);
            continue;
        }
        let _ = s.shutdown().await;
        let mut sink = Vec::new();
        let _ = tokio::time::timeout(Duration::from_secs(1), s.read_to_end(&mut sink)).await;
    }

    // Transfers and NOTIFY from strangers.
    let axfr = dig(ip, "bad.test", "AXFR", &["-b", "127.0.4.45"]);
    assert!(axfr.contains("Transfer failed"), "{axfr}");
    let ixfr = dig(ip, "bad.test", "IXFR=1", &["-b", "127.0.4.42"]);
    assert!(
        ixfr.contains("Transfer failed"),
        "unsigned IXFR must be refused: {ixfr}"
    );
    let mut n = Message::new(4321, MessageType::Query, OpCode::Notify);
    n.metadata.authoritative = true;
    n.add_query(Query::query(
        Name::from_ascii("sec.test.").expect("name"),
        RecordType::SOA,
    ));
    let stranger = tokio::net::UdpSocket::bind("127.0.4.45:0")
        .await
        .expect("udp");
    stranger
        .send_to(&n.to_vec().expect("encode"), addr(ip))
        .await
        .expect("send");
    let mut buf = vec![0u8; 512];
    let (len, _) = tokio::time::timeout(Duration::from_secs(2), stranger.recv_from(&mut buf))
        .await
        .expect("answer")
        .expect("recv");
    let answer = Message::from_vec(&buf[..len]).expect("decode");
    assert_eq!(answer.metadata.response_code, ResponseCode::Refused);
    assert_eq!(answer.metadata.op_code, OpCode::Notify);
    // Still answering, and a never-transferred secondary zone is SERVFAIL.
    assert_eq!(short(ip, "www.bad.test", "A"), "192.0.2.1");
    assert_eq!(status(ip, "www.sec.test", "A"), "SERVFAIL");
    assert_eq!(status(ip, "www.unknown.example", "A"), "REFUSED");
}
