//! Reading a site's logs back: the newest lines of its access, error, PHP and cron
//! logs (current and rotated files, see `log`), at or after a time, merged in time
//! order. What the operations channel answers for `hostplane site logs`.
//!
//! Files are read backwards in blocks from their end, so asking for the last 200
//! lines of a 64 MiB access log reads a few blocks, not the file. A line's time is
//! its own time stamp (combined format `[26/Nov/2026:01:02:03 +0000]`,
//! `2026/11/26 01:02:03` at the start of error and PHP lines, RFC 3339 at the
//! start of cron lines); a line without
//! one (a PHP stack trace's continuation) takes the time of the line before it.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;

use proto::agent_ops::{LogKind, LogLine, SiteLogsAnswer, MAX_LOG_LINES};

use crate::log::{site_file, ERROR_TIME};

/// Bytes read per step backwards.
const BLOCK: u64 = 64 * 1024;

/// Longest line kept whole; longer ones are cut (a log line is never megabytes
/// in practice, but a broken PHP script can write one).
const MAX_LINE: usize = 16 * 1024;

/// The newest `limit` lines of `domain`'s logs `kinds` (empty: all) in `dir`, at
/// or after `since_ms`, oldest first. Rotated files (`NAME.1` … `NAME.<keep>`) are
/// read until a line older than `since_ms` is met or enough lines are found.
pub fn read_site(
    dir: &Path,
    domain: &str,
    kinds: &[LogKind],
    since_ms: Option<i64>,
    limit: u32,
    keep: u32,
) -> std::io::Result<SiteLogsAnswer> {
    if domain.is_empty()
        || domain.starts_with('.')
        || !domain
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.' || b == b'_')
    {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            format!("`{domain}` is not a host name"),
        ));
    }
    let limit = limit.min(MAX_LOG_LINES) as usize;
    let kinds: Vec<LogKind> = if kinds.is_empty() {
        LogKind::ALL.to_vec()
    } else {
        kinds.to_vec()
    };
    let mut all = Vec::new();
    let mut truncated = false;
    for kind in kinds {
        let name = site_file(domain, kind);
        let mut lines: Vec<LogLine> = Vec::new();
        'files: for i in 0..=keep {
            let path = if i == 0 {
                dir.join(&name)
            } else {
                dir.join(format!("{name}.{i}"))
            };
            let file = match File::open(&path) {
                Ok(f) => f,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => return Err(e),
            };
            // Newest first within the file; a file's lines are appended in time order.
            let texts = newest_lines(file, limit.saturating_sub(lines.len()) + 1)?;
            let mut parsed = timed(kind, texts);
            parsed.reverse();
            for line in parsed {
                if since_ms.is_some_and(|s| line.at_ms < s) {
                    break 'files;
                }
                if lines.len() == limit {
                    truncated = true;
                    break 'files;
                }
                lines.push(line);
            }
        }
        lines.reverse();
        all.extend(lines);
    }
    // Stable: lines of one time keep their order within each log.
    all.sort_by_key(|l| l.at_ms);
    if all.len() > limit {
        truncated = true;
        all.drain(..all.len() - limit);
    }
    Ok(SiteLogsAnswer {
        lines: all,
        truncated,
    })
}

/// Up to `n` last lines of `file`, oldest first (a partial first line, where the
/// read stopped, is left out).
fn newest_lines(mut file: File, n: usize) -> std::io::Result<Vec<String>> {
    let len = file.metadata()?.len();
    let mut pos = len;
    let mut buf: Vec<u8> = Vec::new();
    loop {
        let newlines = buf.iter().filter(|b| **b == b'\n').count();
        if pos == 0 || newlines > n {
            break;
        }
        let step = BLOCK.min(pos);
        pos -= step;
        file.seek(SeekFrom::Start(pos))?;
        let mut block = vec![0; step as usize];
        file.read_exact(&mut block)?;
        block.extend_from_slice(&buf);
        buf = block;
    }
    let mut text: &[u8] = &buf;
    if pos > 0 {
        // The first line started before what was read.
        match text.iter().position(|b| *b == b'\n') {
            Some(i) => text = &text[i + 1..],
            None => return Ok(Vec::new()),
        }
    }
    let mut lines: Vec<String> = text
        .split(|b| *b == b'\n')
        .filter(|l| !l.is_empty())
        .map(|l| String::from_utf8_lossy(&l[..l.len().min(MAX_LINE)]).into_owned())
        .collect();
    if lines.len() > n {
        lines.drain(..lines.len() - n);
    }
    Ok(lines)
}

/// Lines with their times (oldest first in, oldest first out); lines without a
/// time stamp take the one before (the first ones: the first found after).
fn timed(kind: LogKind, texts: Vec<String>) -> Vec<LogLine> {
    let times: Vec<Option<i64>> = texts.iter().map(|t| time_of(t)).collect();
    let first = times.iter().flatten().next().copied().unwrap_or(0);
    let mut last = first;
    texts
        .into_iter()
        .zip(times)
        .map(|(text, at)| {
            let at_ms = at.unwrap_or(last);
            last = at_ms;
            LogLine { at_ms, kind, text }
        })
        .collect()
}

/// The time stamp of a log line, in milliseconds since the epoch.
pub fn time_of(line: &str) -> Option<i64> {
    let combined = time::macros::format_description!(
        "[day]/[month repr:short]/[year]:[hour]:[minute]:[second] [offset_hour sign:mandatory][offset_minute]"
    );
    if let Some(head) = line.get(..19) {
        if let Ok(t) = time::PrimitiveDateTime::parse(head, ERROR_TIME) {
            return Some(millis(t.assume_utc()));
        }
    }
    // Cron lines start with an RFC 3339 time (`2026-11-26T01:02:03Z job=1 …`).
    if line.as_bytes().get(4) == Some(&b'-') {
        let head = line.split(' ').next().unwrap_or_default();
        if let Ok(t) =
            time::OffsetDateTime::parse(head, &time::format_description::well_known::Rfc3339)
        {
            return Some(millis(t));
        }
    }
    let open = line.find('[')?;
    let close = open + line[open..].find(']')?;
    time::OffsetDateTime::parse(&line[open + 1..close], &combined)
        .ok()
        .map(millis)
}

fn millis(t: time::OffsetDateTime) -> i64 {
    i64::try_from(t.unix_timestamp_nanos() / 1_000_000).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests;
