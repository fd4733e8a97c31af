//! Fuzzes the JSON bodies a sitesync hub accepts from the wire: a pushed change
//! (`proto::sitesync::parse_change`) and a many-site wait (`parse_wait`). Neither may
//! panic on any bytes; whatever they accept must keep every path inside the site and
//! survive a round trip through JSON unchanged (what the hub logs is what it parsed).
//! Run: `cd crates/proto/fuzz && cargo +nightly fuzz run sitesync_bodies`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use proto::manifest::check_path;
use proto::sitesync::{parse_change, parse_wait, Op};

fuzz_target!(|data: &[u8]| {
    if let Ok(c) = parse_change(data) {
        assert!(check_path(&c.path), "accepted path {:?}", c.path);
        if let Op::Rename { to, .. } = &c.op {
            assert!(check_path(to), "accepted rename target {to:?}");
            assert!(to != &c.path && !to.starts_with(&format!("{}/", c.path)));
        }
        let again = serde_json::to_vec(&c).expect("a parsed change serializes");
        assert_eq!(parse_change(&again).expect("a parsed change parses again"), c);
    }
    if let Ok(w) = parse_wait(data) {
        assert!(w.sites.len() <= proto::sitesync::MAX_WAIT_SITES);
        assert!(w.wait_secs <= proto::sitesync::MAX_WAIT_SECS);
        for site in w.sites.keys() {
            assert!(check_path(site) && !site.contains('/') && !site.starts_with('.'));
        }
        let again = serde_json::to_vec(&w).expect("a parsed wait serializes");
        assert_eq!(parse_wait(&again).expect("a parsed wait parses again"), w);
    }
});
