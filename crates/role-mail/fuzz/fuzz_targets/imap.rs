//! Fuzzes the IMAP command path (imap-codec decoding, literals, every command
//! family, MIME sections) through `role_mail::imap::harness::exercise`, as a
//! logged-in user over a scratch Maildir.
//! Run: `cd crates/role-mail/fuzz && cargo +nightly fuzz run imap`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    role_mail::imap::harness::exercise(data);
});
