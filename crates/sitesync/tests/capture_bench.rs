//! Benchmark of capture (run by hand, prints figures, asserts nothing about time):
//! a tree of 100,000 files in 10,000 directories — time to add every watch, memory, and
//! how fast writes are turned into reported paths.
//!
//! `cargo test --release -p sitesync --test capture_bench -- --ignored --nocapture`
//! (record the figures in bench/RESULTS.md, section "bench/capture").

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use sitesync::capture::{Capture, CaptureOptions, Seen};

const TOP: usize = 100;
const SUB: usize = 100;
const FILES: usize = 10;

fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// Kernel slab memory (KiB) from /proc/meminfo: watches pin their directories' inodes
/// and dentries there (machine-wide, so only indicative on a busy machine).
fn slab_kib() -> u64 {
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    meminfo
        .lines()
        .find_map(|l| l.strip_prefix("Slab:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

fn leaf(root: &Path, t: usize, s: usize) -> PathBuf {
    root.join(format!("d{t:03}")).join(format!("s{s:03}"))
}

fn build(root: &Path) {
    for t in 0..TOP {
        for s in 0..SUB {
            let d = leaf(root, t, s);
            std::fs::create_dir_all(&d).expect("mkdir");
            for f in 0..FILES {
                std::fs::write(d.join(format!("f{f}.php")), b"<?php // original").expect("write");
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "benchmark: run by hand with --ignored --nocapture"]
async fn bench_capture_100k_files_in_10k_directories() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().to_path_buf();
    let t = Instant::now();
    build(&root);
    println!(
        "tree: {} files in {} directories built in {:?}",
        TOP * SUB * FILES,
        TOP * SUB + TOP,
        t.elapsed()
    );

    let opts = CaptureOptions {
        debounce: Duration::from_millis(200),
        ..CaptureOptions::default()
    };
    let mut cap = Capture::new(opts).expect("capture");
    let (rss0, slab0) = (rss_kib(), slab_kib());
    let t = Instant::now();
    cap.watch("bench", &root, &[]).expect("watch");
    let watch_time = t.elapsed();
    let (rss1, slab1) = (rss_kib(), slab_kib());
    println!(
        "watch: {} directories watched in {:?} ({:.0} watches/s); process RSS +{} KiB; kernel slab +{} KiB",
        cap.watched_dirs(),
        watch_time,
        cap.watched_dirs() as f64 / watch_time.as_secs_f64(),
        rss1.saturating_sub(rss0),
        slab1 as i64 - slab0 as i64,
    );

    // 1. Rewrite every file from another thread while capture reads: does it keep up
    // (no overflow, so no rescan) and how fast do paths come out?
    let writer_root = root.clone();
    let events0 = cap.events_read();
    let t = Instant::now();
    let writer = tokio::task::spawn_blocking(move || {
        let start = Instant::now();
        for t in 0..TOP {
            for s in 0..SUB {
                let d = leaf(&writer_root, t, s);
                for f in 0..FILES {
                    std::fs::write(d.join(format!("f{f}.php")), b"<?php // rewritten")
                        .expect("write");
                }
            }
        }
        start.elapsed()
    });
    let total = TOP * SUB * FILES;
    let mut seen: HashSet<PathBuf> = HashSet::new();
    let (mut rescans, mut peak_pending) = (0usize, 0usize);
    while seen.len() < total && rescans == 0 {
        let batch = tokio::time::timeout(Duration::from_secs(60), cap.next_batch())
            .await
            .expect("capture stalled for 60 s");
        peak_pending = peak_pending.max(cap.pending());
        for (_, s) in batch {
            match s {
                Seen::Path(p) => {
                    seen.insert(p);
                }
                Seen::Rescan => rescans += 1,
                Seen::Renamed { .. } => {}
            }
        }
    }
    let write_time = writer.await.expect("writer");
    let elapsed = t.elapsed();
    let events = cap.events_read() - events0;
    println!(
        "concurrent: {total} files rewritten in {write_time:?}; {} distinct paths reported in {elapsed:?} ({:.0} paths/s, debounce included); {events} inotify events read ({:.0}/s); rescans {rescans}; peak pending {peak_pending}",
        seen.len(),
        seen.len() as f64 / elapsed.as_secs_f64(),
        events as f64 / elapsed.as_secs_f64(),
    );
    drop(cap);

    // 2. Capture's own speed, without the writer in the way: queue a burst while not
    // reading (below max_queued_events), then time reading and reporting it all
    // (debounce 0, so the time is event handling, not waiting).
    let limit: usize = std::fs::read_to_string("/proc/sys/fs/inotify/max_queued_events")
        .expect("max_queued_events")
        .trim()
        .parse()
        .expect("a number");
    let opts = CaptureOptions {
        debounce: Duration::ZERO,
        ..CaptureOptions::default()
    };
    let mut cap = Capture::new(opts).expect("capture");
    cap.watch("bench", &root, &[]).expect("watch");
    let burst = (limit / 4).min(total);
    let writer_root = root.clone();
    tokio::task::spawn_blocking(move || {
        for i in 0..burst {
            let (t, rest) = (i / (SUB * FILES), i % (SUB * FILES));
            let d = leaf(&writer_root, t, rest / FILES);
            std::fs::write(d.join(format!("f{}.php", rest % FILES)), b"<?php // burst")
                .expect("write");
        }
    })
    .await
    .expect("burst");
    let t = Instant::now();
    let mut seen: HashSet<PathBuf> = HashSet::new();
    while seen.len() < burst {
        let batch = tokio::time::timeout(Duration::from_secs(60), cap.next_batch())
            .await
            .expect("capture stalled for 60 s");
        for (_, s) in batch {
            assert_ne!(s, Seen::Rescan, "the burst overflowed the queue");
            if let Seen::Path(p) = s {
                seen.insert(p);
            }
        }
    }
    let elapsed = t.elapsed();
    let events = cap.events_read();
    println!(
        "queued burst: {events} events for {burst} files read and reported in {elapsed:?} ({:.0} events/s, {:.0} paths/s)",
        events as f64 / elapsed.as_secs_f64(),
        burst as f64 / elapsed.as_secs_f64(),
    );
    println!("final process RSS {} KiB", rss_kib());
}
