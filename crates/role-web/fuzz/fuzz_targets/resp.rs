//! Fuzzes the session store's protocol path (RESP parser, commands, replication
//! encoding) through `role_web::sessions::fuzzing::exercise`.
//! Run: `cd crates/role-web/fuzz && cargo +nightly fuzz run resp`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    role_web::sessions::fuzzing::exercise(data);
});
