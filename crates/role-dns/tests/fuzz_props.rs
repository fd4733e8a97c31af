//! Random input on the request path (the same entry point as the cargo-fuzz target
//! `fuzz/fuzz_targets/handle.rs`): random bytes, random mutations of valid queries,
//! transfers, NOTIFY and TSIG-signed requests. Never a panic.

use hickory_proto::op::{Message, OpCode, Query};
use hickory_proto::rr::{Name, RecordType};
use proptest::prelude::*;
use role_dns::fuzzing::{exercise, KEY_NAME, KEY_SECRET};
use role_dns::tsig::{self, Key};

fn seeds() -> Vec<Vec<u8>> {
    let key = Key::new(KEY_NAME, "hmac-sha256", KEY_SECRET).expect("key");
    let mut out = Vec::new();
    for (qtype, opcode) in [
        (RecordType::A, OpCode::Query),
        (RecordType::AXFR, OpCode::Query),
        (RecordType::IXFR, OpCode::Query),
        (RecordType::SOA, OpCode::Notify),
        (RecordType::TXT, OpCode::Query),
    ] {
        let mut m = Message::query();
        m.metadata.op_code = opcode;
        m.add_query(Query::query(
            Name::from_ascii("www.example.com.").expect("n"),
            qtype,
        ));
        let bytes = m.to_vec().expect("encode");
        let (signed, _) = tsig::sign_request(&key, bytes.clone(), tsig::now()).expect("sign");
        out.push(bytes);
        out.push(signed);
    }
    out
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(3000))]

    #[test]
    fn random_bytes_never_panic(data in proptest::collection::vec(any::<u8>(), 0..700)) {
        exercise(&data);
    }

    #[test]
    fn mutated_requests_never_panic(
        seed in 0usize..10,
        flips in proptest::collection::vec((any::<u16>(), any::<u8>()), 1..8),
        cut in any::<u16>(),
    ) {
        let seeds = seeds();
        let mut data = seeds[seed % seeds.len()].clone();
        for (at, value) in flips {
            let i = usize::from(at) % data.len();
            data[i] = value;
        }
        exercise(&data);
        data.truncate(usize::from(cut) % (data.len() + 1));
        exercise(&data);
    }
}

#[test]
fn seeds_are_answered() {
    for s in seeds() {
        exercise(&s);
    }
}
