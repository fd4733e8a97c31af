//! Unit and property tests of the throttle on a hand-driven clock.

use super::*;
use proptest::prelude::*;

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn manual(config: Config) -> (Throttle, Arc<ManualClock>) {
    let clock = Arc::new(ManualClock::default());
    (Throttle::with_clock(config, clock.clone()), clock)
}

#[test]
fn concurrent_reservations_see_each_other() {
    let (t, _) = manual(Config::default());
    // 24 attempts in flight at once (none resolved): only the free ones get through.
    let mut tickets = Vec::new();
    let mut refused = 0;
    for _ in 0..24 {
        match t.reserve("Alice", ip("10.0.0.1")) {
            Ok(tk) => tickets.push(tk),
            Err(r) => {
                assert_eq!(r.scope, Scope::Source);
                assert_eq!(r.retry_after_secs(), 1);
                refused += 1;
            }
        }
    }
    assert_eq!(tickets.len(), 5);
    assert_eq!(refused, 19);
    drop(tickets);
    let c = t.counts();
    assert_eq!(
        (c.failures, c.refused, c.sources, c.accounts),
        (5, 19, 1, 1)
    );
    // Another address is not affected, and succeeds.
    let tk = t.reserve("alice", ip("10.0.0.2")).unwrap();
    assert_eq!(tk.wait(), Duration::ZERO);
    tk.succeeded();
    // Another account from the attacking address is not affected either.
    t.reserve("bob", ip("10.0.0.1")).unwrap().succeeded();
}

#[test]
fn source_backoff_doubles_up_to_the_cap_and_success_clears() {
    let cfg = Config {
        source_cap: Duration::from_secs(8),
        ..Config::default()
    };
    let (t, clock) = manual(cfg);
    let a = ip("10.0.0.1");
    for _ in 0..5 {
        drop(t.reserve("x", a).unwrap());
    }
    for expected in [1, 2, 4, 8, 8] {
        let r = t.reserve("x", a).unwrap_err();
        assert_eq!(r.retry_after_secs(), expected);
        clock.advance(r.retry_after);
        drop(t.reserve("x", a).unwrap());
    }
    clock.advance(Duration::from_secs(8));
    t.reserve("x", a).unwrap().succeeded();
    for _ in 0..5 {
        drop(t.reserve("x", a).unwrap());
    }
}

#[test]
fn account_wide_delay_holds_back_clean_sources_and_refuses_dirty_ones() {
    let cfg = Config {
        free_per_source: 1,
        free_per_account: 3,
        account_cap: Duration::from_secs(4),
        ..Config::default()
    };
    let (t, clock) = manual(cfg);
    for i in 1..=10 {
        let _ = t.reserve("x", ip(&format!("10.0.0.{i}")));
        clock.advance(Duration::from_secs(60));
    }
    // The account has 10 failures; its last was 60 s ago: open again.
    let tk = t.reserve("x", ip("10.1.0.1")).unwrap();
    assert_eq!(tk.wait(), Duration::ZERO);
    drop(tk);
    // Right after a failure: a clean source waits (at most the cap), a dirty one is refused.
    let tk = t.reserve("x", ip("10.1.0.2")).unwrap();
    assert_eq!(tk.wait(), Duration::from_secs(4));
    tk.succeeded();
    clock.advance(Duration::from_secs(61));
    drop(t.reserve("x", ip("10.1.0.3")).unwrap());
    let r = t.reserve("x", ip("10.1.0.1")).unwrap_err();
    assert_eq!(r.scope, Scope::Account);
    assert_eq!(t.counts().delayed, 1);
}

#[test]
fn spraying_many_accounts_from_one_address_is_throttled_too() {
    let (t, _) = manual(Config::default());
    let a = ip("10.0.0.1");
    let granted = (0..100)
        .filter(|i| t.reserve(&format!("user{i}"), a).is_ok())
        .count();
    assert_eq!(granted, 30);
    let r = t.reserve("user200", a).unwrap_err();
    assert_eq!(r.scope, Scope::Address);
    // Other addresses are not affected.
    t.reserve("user200", ip("10.0.0.2")).unwrap().succeeded();
}

#[test]
fn entries_are_forgotten_and_maps_are_bounded() {
    let cfg = Config {
        max_entries: 10,
        ..Config::default()
    };
    let (t, clock) = manual(cfg);
    for i in 0..50 {
        drop(t.reserve(&format!("u{i}"), ip(&format!("10.0.0.{i}"))));
        clock.advance(Duration::from_millis(1));
    }
    let c = t.counts();
    assert_eq!((c.sources, c.addresses, c.accounts), (10, 10, 10));
    clock.advance(Duration::from_secs(31 * 60));
    let c = t.counts();
    assert_eq!(
        (c.sources, c.addresses, c.accounts, c.failures),
        (0, 0, 0, 50)
    );
}

#[test]
fn ipv6_counts_per_64_and_mapped_v4_as_v4() {
    assert_eq!(source_key(ip("2001:db8:1:2:3:4:5:6")), ip("2001:db8:1:2::"));
    assert_eq!(source_key(ip("::ffff:10.0.0.1")), ip("10.0.0.1"));
    let (t, _) = manual(Config::default());
    for i in 0..5 {
        drop(t.reserve("x", ip(&format!("2001:db8::{i}"))).unwrap());
    }
    assert!(t.reserve("x", ip("2001:db8::99")).is_err());
}

proptest! {
    /// However many attempts are in flight from one source, at most
    /// `free_per_source` reach the password check before time moves.
    #[test]
    fn never_more_than_the_budget_in_flight(n in 0usize..200, free in 1u32..20) {
        let (t, _) = manual(Config { free_per_source: free, free_per_account: 1000, ..Config::default() });
        let granted: Vec<_> = (0..n).filter_map(|_| t.reserve("a", ip("10.0.0.1")).ok()).collect();
        prop_assert_eq!(granted.len(), n.min(free as usize));
    }

    /// Whatever other sources did (failures at any times), a source with no failures
    /// is never refused and never waits longer than the account cap.
    #[test]
    fn a_clean_source_gets_through_within_the_cap(
        history in proptest::collection::vec((0u8..50, 0u64..5000), 0..300),
        cap in 1u64..120,
    ) {
        let cfg = Config { account_cap: Duration::from_secs(cap), ..Config::default() };
        let (t, clock) = manual(cfg);
        for (src, ms) in history {
            clock.advance(Duration::from_millis(ms));
            drop(t.reserve("victim", IpAddr::from([10, 0, 0, src])));
        }
        let tk = t.reserve("victim", ip("192.0.2.1"));
        prop_assert!(tk.is_ok());
        let tk = tk.unwrap();
        prop_assert!(tk.wait() <= Duration::from_secs(cap));
        tk.succeeded();
    }
}
