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

/// Kernel memory of inotify marks (one per watch), from /proc/slabinfo when readable.
fn mark_slab_kib() -> Option<u64> {
    let slab = std::fs::read_to_string("/proc/slabinfo").ok()?;
    let line = slab
        .lines()
        .find(|l| l.starts_with("inotify_inode_mark "))?;
    let f: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .take(3)
        .filter_map(|x| x.parse().ok())
        .collect();
    Some(f.first()? * f.get(2)? / 1024)
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
    let (rss0, slab0) = (rss_kib(), mark_slab_kib());
    let t = Instant::now();
    cap.watch("bench", &root, &[]).expect("watch");
    let watch_time = t.elapsed();
    let (rss1, slab1) = (rss_kib(), mark_slab_kib());
    println!(
        "watch: {} directories watched in {:?} ({:.0} watches/s); process RSS +{} KiB; kernel inotify marks +{} KiB",
        cap.watched_dirs(),
        watch_time,
        cap.watched_dirs() as f64 / watch_time.as_secs_f64(),
        rss1.saturating_sub(rss0),
        match (slab0, slab1) {
            (Some(a), Some(b)) => b.saturating_sub(a).to_string(),
            _ => "?".into(),
        }
    );

    // Rewrite every file from another thread while capture reads; count reported paths.
    for (label, pace) in [("unpaced", None), ("paced 20,000 files/s", Some(20_000u64))] {
        let writer_root = root.clone();
        let t = Instant::now();
        let writer = tokio::task::spawn_blocking(move || {
            let start = Instant::now();
            let mut n = 0u64;
            for t in 0..TOP {
                for s in 0..SUB {
                    let d = leaf(&writer_root, t, s);
                    for f in 0..FILES {
                        std::fs::write(d.join(format!("f{f}.php")), b"<?php // rewritten")
                            .expect("write");
                        n += 1;
                        if let Some(rate) = pace {
                            let due = start + Duration::from_micros(n * 1_000_000 / rate);
                            if let Some(wait) = due.checked_duration_since(Instant::now()) {
                                std::thread::sleep(wait);
                            }
                        }
                    }
                }
            }
            start.elapsed()
        });
        let mut seen: HashSet<PathBuf> = HashSet::new();
        let mut rescans = 0usize;
        let mut peak_pending = 0usize;
        let total = TOP * SUB * FILES;
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
        println!(
            "{label}: {} files rewritten in {:?}; {} distinct paths reported in {:?} ({:.0} paths/s end to end, debounce included); rescans {}; peak pending {}",
            total,
            write_time,
            seen.len(),
            elapsed,
            seen.len() as f64 / elapsed.as_secs_f64(),
            rescans,
            peak_pending
        );
        // Let a rescan's trailing events settle before the next round.
        while tokio::time::timeout(Duration::from_secs(1), cap.next_batch())
            .await
            .is_ok()
        {}
    }
    println!("final process RSS {} KiB", rss_kib());
}
