//! The mail writer rule: examples and properties (one holder, always usable when
//! one can be, epochs only growing, no flapping on a stable snapshot).

use super::*;
use crate::{ClusterInfo, Health, ServerInfo};
use model::{CountryCode, Role};
use proptest::prelude::*;

/// One mail cluster (id 1) of `(id, rank, health, drained)` servers.
fn snap(servers: &[(Id, u16, Health, bool)]) -> Snapshot {
    Snapshot {
        clusters: vec![ClusterInfo {
            id: 1,
            name: "mail".into(),
            role: Role::Mail,
            is_default: true,
            servers: servers
                .iter()
                .map(|&(id, rank, health, drained)| ServerInfo {
                    id,
                    name: format!("mx{id}"),
                    rank,
                    country: CountryCode::new("DE").unwrap(),
                    health,
                    drained,
                    load: 0,
                })
                .collect(),
        }],
    }
}

fn placed(holder: Option<Id>, caught_up: &[Id]) -> MailPlaced {
    MailPlaced {
        cluster: 1,
        holder,
        caught_up: caught_up.to_vec(),
    }
}

fn mv(from: Option<Id>, to: Id) -> Decision {
    Decision::Move {
        subject: Subject::MailWriter(1),
        from,
        to,
    }
}

#[test]
fn failover_to_the_secondary_and_back_once_the_primary_caught_up() {
    use Health::*;
    // A new cluster: the primary writes.
    let both = snap(&[(10, 0, Up, false), (11, 1, Up, false)]);
    assert_eq!(place_mail(&both, &[placed(None, &[])]), vec![mv(None, 10)]);
    assert_eq!(place_mail(&both, &[placed(Some(10), &[11])]), vec![]);
    // The primary is only suspect: it keeps the lease.
    let suspect = snap(&[(10, 0, Suspect, false), (11, 1, Up, false)]);
    assert_eq!(place_mail(&suspect, &[placed(Some(10), &[])]), vec![]);
    // Down: the secondary takes it.
    let down = snap(&[(10, 0, Down, false), (11, 1, Up, false)]);
    assert_eq!(
        place_mail(&down, &[placed(Some(10), &[])]),
        vec![mv(Some(10), 11)]
    );
    // The primary is back but has not caught up: the secondary keeps writing.
    assert_eq!(place_mail(&both, &[placed(Some(11), &[])]), vec![]);
    // Caught up: it takes the lease back.
    assert_eq!(
        place_mail(&both, &[placed(Some(11), &[10])]),
        vec![mv(Some(11), 10)]
    );
    // Drained primary: the lease leaves it and does not come back while drained.
    let drained = snap(&[(10, 0, Up, true), (11, 1, Up, false)]);
    assert_eq!(
        place_mail(&drained, &[placed(Some(10), &[11])]),
        vec![mv(Some(10), 11)]
    );
    assert_eq!(place_mail(&drained, &[placed(Some(11), &[10])]), vec![]);
    // Nobody else usable: it stays (warned); the holder deleted: nobody writes.
    let alone = snap(&[(10, 0, Down, false), (11, 1, Down, false)]);
    assert_eq!(
        place_mail(&alone, &[placed(Some(10), &[])]),
        vec![Decision::Stuck {
            subject: Subject::MailWriter(1),
            from: 10
        }]
    );
    assert_eq!(
        place_mail(&alone, &[placed(Some(12), &[])]),
        vec![Decision::Unplace {
            subject: Subject::MailWriter(1),
            from: 12
        }]
    );
    assert_eq!(place_mail(&alone, &[placed(None, &[])]), vec![]);
}

#[test]
fn advance_raises_the_epoch_and_waits_for_the_old_lease() {
    let w = Writer {
        holder: Some(10),
        epoch: 4,
        not_before: 0,
        previous: None,
    };
    let moved = advance(w, Some(11), 1000, 20);
    assert_eq!(
        moved,
        Writer {
            holder: Some(11),
            epoch: 5,
            not_before: 1000 + 20 + CLOCK_MARGIN_S,
            previous: Some(10),
        }
    );
    assert_eq!(advance(moved, Some(11), 2000, 20), moved, "no change");
    let first = advance(Writer::default(), Some(10), 1000, 20);
    assert_eq!(
        (first.epoch, first.not_before),
        (1, 0),
        "nobody to wait for"
    );
}

#[test]
fn a_hand_back_starts_once_the_previous_holder_follows_the_new_epoch() {
    // mx10 held epoch 4; the lease goes back to... mx11 at epoch 5 at t=1000
    let w = advance(
        Writer {
            holder: Some(10),
            epoch: 4,
            not_before: 0,
            previous: None,
        },
        Some(11),
        1000,
        20,
    );
    // not yet: mx10 reports the old epoch, or nothing, or someone else reports
    assert_eq!(start_early(w, &[(10, Some(4)), (11, Some(5))], 1001), None);
    assert_eq!(start_early(w, &[(10, None)], 1001), None);
    assert_eq!(start_early(w, &[(12, Some(5))], 1001), None);
    assert_eq!(start_early(w, &[], 1001), None);
    // mx10 follows epoch 5 (or later): at once
    assert_eq!(start_early(w, &[(10, Some(5))], 1001), Some(1001));
    assert_eq!(start_early(w, &[(10, Some(6))], 1002), Some(1002));
    // past not_before, or a first holder (nobody before): nothing to do
    assert_eq!(start_early(w, &[(10, Some(5))], w.not_before), None);
    let first = advance(Writer::default(), Some(10), 1000, 20);
    assert_eq!(start_early(first, &[(10, Some(1))], 1001), None);
}

fn health() -> impl Strategy<Value = Health> {
    prop_oneof![
        Just(Health::Unknown),
        Just(Health::Up),
        Just(Health::Suspect),
        Just(Health::Down),
    ]
}

/// A mail cluster of 1..4 servers (ranks 0.. in order) with health and drained.
fn servers() -> impl Strategy<Value = Vec<(Id, u16, Health, bool)>> {
    prop::collection::vec((health(), any::<bool>()), 1..4).prop_map(|v| {
        v.into_iter()
            .enumerate()
            .map(|(i, (h, d))| (10 + i as Id, i as u16, h, d))
            .collect()
    })
}

/// Apply `ds` to `p` and `w` as the controller does (moves through [`advance`]).
fn apply(p: &mut MailPlaced, w: &mut Writer, ds: &[Decision], now: i64) {
    for d in ds {
        let to = match *d {
            Decision::Move { to, .. } => Some(to),
            Decision::Unplace { .. } => None,
            Decision::Stuck { .. } => continue,
        };
        *w = advance(*w, to, now, 20);
        p.holder = to;
    }
}

proptest! {
    /// Over a run of changing snapshots: each pass makes at most one decision (one
    /// holder), leaves a usable holder whenever the cluster has a usable server,
    /// never lowers the epoch (and raises it exactly when the holder changes), and
    /// a second pass on the same snapshot moves nothing.
    #[test]
    fn one_usable_holder_growing_epochs_no_flapping(
        steps in prop::collection::vec((servers(), prop::collection::vec(10i64..14, 0..3)), 1..8),
        start in prop::option::of(9i64..14),
    ) {
        let mut p = placed(start, &[]);
        let mut w = Writer { holder: start, epoch: 0, not_before: 0, previous: None };
        for (i, (servers, caught_up)) in steps.iter().enumerate() {
            let s = snap(servers);
            p.caught_up = caught_up.clone();
            let before = w;
            let ds = place_mail(&s, std::slice::from_ref(&p));
            prop_assert!(ds.len() <= 1, "{:?}", ds);
            apply(&mut p, &mut w, &ds, i as i64 * 100);
            prop_assert!(w.epoch >= before.epoch);
            prop_assert_eq!(w.epoch - before.epoch, u64::from(w.holder != before.holder));
            let usable = |id: Id| servers.iter().any(|&(s, _, h, d)| s == id && h.is_usable() && !d);
            if servers.iter().any(|&(id, ..)| usable(id)) {
                let h = p.holder.and_then(|h| servers.iter().find(|x| x.0 == h));
                prop_assert!(
                    h.is_some_and(|&(id, _, health, d)| usable(id) || (health == Health::Suspect && !d)),
                    "holder {:?} on {:?}", p.holder, servers
                );
            }
            let again = place_mail(&s, std::slice::from_ref(&p));
            prop_assert!(
                again.iter().all(|d| matches!(d, Decision::Stuck { .. })),
                "flaps: {:?} after {:?} on {:?}", again, ds, servers
            );
        }
    }
}

proptest! {
    /// The early start is never before `now`, never later than the wait it ends,
    /// happens only when the previous holder (not the holder, not another server)
    /// reports the current epoch or a later one, and once applied it is done (a
    /// second call changes nothing).
    #[test]
    fn an_early_start_needs_the_previous_holder_to_follow(
        holder in prop::option::of(10i64..13),
        previous in prop::option::of(10i64..13),
        epoch in 0u64..5,
        not_before in 0i64..50,
        now in 0i64..50,
        reported in prop::collection::vec((10i64..13, prop::option::of(0u64..6)), 0..4),
    ) {
        let w = Writer { holder, epoch, not_before, previous };
        match start_early(w, &reported, now) {
            Some(t) => {
                prop_assert_eq!(t, now);
                prop_assert!(t < not_before);
                let prev = previous.unwrap();
                prop_assert!(holder.is_some() && holder != Some(prev));
                prop_assert!(reported.iter().any(|&(id, e)| id == prev && e.is_some_and(|e| e >= epoch)));
                let started = Writer { not_before: t, ..w };
                prop_assert_eq!(start_early(started, &reported, now), None);
            }
            None => prop_assert!(
                previous.is_none()
                    || holder.is_none()
                    || holder == previous
                    || not_before <= now
                    || !reported.iter().any(|&(id, e)| Some(id) == previous && e.is_some_and(|e| e >= epoch))
            ),
        }
    }
}
