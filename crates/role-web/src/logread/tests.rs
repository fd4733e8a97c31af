use std::io::Write;

use super::*;
use crate::log::{Logs, Rotation};

fn write(dir: &Path, name: &str, lines: &[&str]) {
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join(name))
        .unwrap();
    for l in lines {
        writeln!(f, "{l}").unwrap();
    }
}

#[test]
fn times_of_each_format() {
    assert_eq!(
        time_of("127.0.0.9 - - [26/Nov/2026:01:02:03 +0000] \"GET / HTTP/1.1\" 200 1 \"-\" \"-\""),
        Some(1_795_654_923_000)
    );
    assert_eq!(
        time_of("2026/11/26 01:02:03 [error] x"),
        Some(1_795_654_923_000)
    );
    assert_eq!(
        time_of("2026-11-26T01:02:03Z job=1 start=2026-11-26T01:02:00Z exit=0"),
        Some(1_795_654_923_000)
    );
    assert_eq!(time_of("#0 {main}"), None);
    assert_eq!(time_of("  job=1 | output line"), None);
}

#[test]
fn merges_kinds_in_time_order_and_honours_since_and_limit() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "a.example.access.log",
        &[
            "1.2.3.4 - - [26/Nov/2026:01:00:00 +0000] \"GET /one HTTP/1.1\" 200 1 \"-\" \"-\"",
            "1.2.3.4 - - [26/Nov/2026:01:00:02 +0000] \"GET /three HTTP/1.1\" 200 1 \"-\" \"-\"",
        ],
    );
    write(
        dir.path(),
        "a.example.php.log",
        &[
            "2026/11/26 01:00:01 PHP Fatal error:  boom in /x.php on line 2",
            "#0 {main}",
        ],
    );
    // Another site's lines never appear.
    write(
        dir.path(),
        "b.example.php.log",
        &["2026/11/26 01:00:01 PHP other"],
    );
    let all = read_site(dir.path(), "a.example", &[], None, 100, 7).unwrap();
    let texts: Vec<&str> = all.lines.iter().map(|l| l.text.as_str()).collect();
    assert_eq!(texts.len(), 4, "{texts:?}");
    assert!(texts[0].contains("/one"));
    assert!(texts[1].contains("boom"));
    assert_eq!(texts[2], "#0 {main}");
    assert!(texts[3].contains("/three"));
    assert!(!all.truncated);

    let php = read_site(dir.path(), "a.example", &[LogKind::Php], None, 100, 7).unwrap();
    assert_eq!(php.lines.len(), 2);
    assert!(php.lines.iter().all(|l| l.kind == LogKind::Php));

    let since = time_of("2026/11/26 01:00:02").unwrap();
    let late = read_site(dir.path(), "a.example", &[], Some(since), 100, 7).unwrap();
    assert_eq!(late.lines.len(), 1);
    assert!(late.lines[0].text.contains("/three"));

    let last = read_site(dir.path(), "a.example", &[], None, 2, 7).unwrap();
    assert!(last.truncated);
    assert_eq!(last.lines.len(), 2);
    assert!(last.lines[1].text.contains("/three"));
}

#[test]
fn refuses_names_that_are_not_host_names() {
    let dir = tempfile::tempdir().unwrap();
    for bad in ["../etc", "a/b", "", ".hidden", "a b"] {
        assert!(
            read_site(dir.path(), bad, &[], None, 10, 7).is_err(),
            "{bad}"
        );
    }
}

#[test]
fn reads_far_back_through_blocks_and_rotated_files() {
    let dir = tempfile::tempdir().unwrap();
    // 3,000 lines of ~100 bytes: several blocks.
    let lines: Vec<String> = (0..3000)
        .map(|i| {
            format!(
                "2026/11/26 01:{:02}:{:02} [error] line {i:05} {}",
                i / 60 % 60,
                i % 60,
                "x".repeat(70)
            )
        })
        .collect();
    let refs: Vec<&str> = lines.iter().map(String::as_str).collect();
    write(dir.path(), "a.example.error.log.1", &refs[..1500]);
    write(dir.path(), "a.example.error.log", &refs[1500..]);
    let got = read_site(dir.path(), "a.example", &[LogKind::Error], None, 2000, 7).unwrap();
    assert_eq!(got.lines.len(), 2000);
    assert!(
        got.lines[0].text.contains("line 01000"),
        "{}",
        got.lines[0].text
    );
    assert!(got.lines[1999].text.contains("line 02999"));
    assert!(got.truncated);
}

#[tokio::test]
async fn the_writer_rotates_by_size_and_keeps_the_newest_files() {
    let dir = tempfile::tempdir().unwrap();
    let rotation = Rotation {
        max_bytes: 2_000,
        max_age: std::time::Duration::from_secs(3600),
        keep: 2,
    };
    let logs = Logs::start_with(dir.path().to_path_buf(), true, rotation);
    let site = logs.site("a.example".into(), "a.example [u]");
    for i in 0..100 {
        site.error(format!("error number {i:03} {}", "y".repeat(40)));
        if i % 10 == 9 {
            // Let the writer take each batch, as under real traffic.
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    }
    let path = dir.path().join("a.example.error.log");
    for _ in 0..100 {
        if std::fs::read_to_string(&path).is_ok_and(|t| t.contains("number 099")) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    for name in [
        "a.example.error.log",
        "a.example.error.log.1",
        "a.example.error.log.2",
    ] {
        let len = std::fs::metadata(dir.path().join(name)).unwrap().len();
        assert!(len > 0 && len <= 2_000, "{name}: {len}");
    }
    assert!(!dir.path().join("a.example.error.log.3").exists());
    let got = read_site(dir.path(), "a.example", &[LogKind::Error], None, 1000, 2).unwrap();
    let last = got.lines.last().unwrap();
    assert!(last.text.contains("number 099"), "{}", last.text);
    // The server-wide error log has every line, prefixed with the site.
    let all = std::fs::read_to_string(dir.path().join("error.log")).unwrap();
    assert!(all.contains("a.example [u]: error number 099"));
}
