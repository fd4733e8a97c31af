//! Fuzzes the whole request path (queries, transfers, NOTIFY, TSIG) through
//! `role_dns::fuzzing::exercise`. Run: `cd crates/role-dns/fuzz && cargo +nightly fuzz run handle`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    role_dns::fuzzing::exercise(data);
});
