//! `--scale N`: the API at size (issue 13, point 4). Creates N domain + site pairs
//! (each pair two requests, two store transactions) with the concurrent clients, in
//! ten slices of N/10, printing each slice's objects/s, the controller's CPU time
//! per object (user + system, from `/proc`; unlike the rate it does not move with
//! the load of a shared machine, so growth with size shows in it as well) and its
//! RSS, so a slowdown with size shows as falling rates; then the latency percentiles of
//! `GET /v1/status`, the domain listing (every page of 100) and the audit log (every
//! page of 100, at most `MAX_EVENT_PAGES`) at the final size.
//!
//! With `--mailboxes` every domain also gets one mailbox, slice by slice after the
//! slice's pairs (timed apart, so the pairs' rates stay comparable). The API takes
//! only plaintext passwords and hashes each with argon2id (~2/s per core: 100,000
//! would take hours), so the mailboxes go through `POST /v1/import` with a
//! SHA512-crypt hash, the path a provider's migration takes (`docs/import.md`), in
//! chunks of `IMPORT_CHUNK` lines, each one transaction.

use std::time::{Duration, Instant};

use anyhow::{bail, Result};
use proto::v1::{CreateDomain, CreateSite, DomainView, EventView, Page};
use proto::v1_import::{ImportLine, ImportReport};

use crate::{percentile, post, rss_kib, run_parallel};

/// Samples of `GET /v1/status` taken at the end.
const STATUS_SAMPLES: usize = 200;
/// Longest walk through the audit log, in pages of 100.
const MAX_EVENT_PAGES: usize = 1000;
/// Mailboxes per import request (one transaction each), as `hostplane import` batches.
const IMPORT_CHUNK: usize = 2000;
/// The password hash of every imported mailbox (SHA512-crypt, as `bench/import/gen.py`).
const MAILBOX_HASH: &str = "$6$importsalt$AXBNZ21WZ1ioXznwBfzTGB6bKPszakwuIE8srn9m2k1Ea6URlNWWAWd1niZ/4eidZlWfwQB3gAdMLtn/zgdYx/";

/// What to create.
#[derive(Debug, Clone, Copy)]
pub struct Size {
    /// Domain + site pairs.
    pub pairs: usize,
    /// Concurrent clients for the pairs.
    pub clients: usize,
    /// Whether each domain also gets a mailbox (imported, see the module doc).
    pub mailboxes: bool,
}

/// Import one mailbox per domain `from..to`; returns the elapsed time.
async fn import_mailboxes(
    client: &reqwest::Client,
    url: &str,
    from: usize,
    to: usize,
) -> Result<Duration> {
    let t = Instant::now();
    let mut at = from;
    while at < to {
        let end = (at + IMPORT_CHUNK).min(to);
        let mut body = String::new();
        for i in at..end {
            let line = ImportLine::Mailbox {
                address: format!("info@{}", domain_name(i)),
                password_hash: MAILBOX_HASH.into(),
                quota_mb: None,
                display_name: None,
            };
            body.push_str(&serde_json::to_string(&line)?);
            body.push('\n');
        }
        let r = client
            .post(format!("{url}/v1/import"))
            .query(&[("first_line", (at + 1).to_string())])
            .header(reqwest::header::CONTENT_TYPE, "application/x-ndjson")
            .body(body)
            .send()
            .await?;
        if !r.status().is_success() {
            bail!(
                "POST /v1/import: {} {}",
                r.status(),
                r.text().await.unwrap_or_default()
            );
        }
        let report: ImportReport = r.json().await?;
        if report.created != (end - at) as u64 {
            bail!(
                "import of mailboxes {at}..{end}: {} created, {} refused: {:?}",
                report.created,
                report.refused,
                report.results.first()
            );
        }
        at = end;
    }
    Ok(t.elapsed())
}

/// Clock ticks per second of `/proc/PID/stat` times (`USER_HZ`, 100 on Linux).
const TICKS_PER_SEC: f64 = 100.0;

/// CPU time (user + system, in clock ticks) the process `pid` has used so far.
fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name (which may hold spaces) ends with `)`:
    // state is field 3, utime 14, stime 15.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let at = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0)
    };
    at(11) + at(12)
}

/// The name of the `i`th domain.
fn domain_name(i: usize) -> String {
    format!("scale-{i:06}.example")
}

/// Create the pairs (and mailboxes) in ten slices, then measure the reads.
pub async fn run(client: &reqwest::Client, url: &str, size: Size, pid: u32) -> Result<()> {
    let Size {
        pairs: n,
        clients,
        mailboxes,
    } = size;
    println!(
        "scale: {n} domain + site pairs with {clients} clients, in 10 slices{}",
        if mailboxes {
            ", each domain with a mailbox (imported)"
        } else {
            ""
        }
    );
    println!("slice | pairs so far | objects/s | CPU µs/object | mailboxes/s | RSS MiB");
    let mut rates = Vec::new();
    // Time spent on the pairs only (mailbox imports are timed apart).
    let mut pair_secs = 0.0;
    for slice in 0..10 {
        let (from, to) = (n * slice / 10, n * (slice + 1) / 10);
        let (c, u) = (client.clone(), url.to_owned());
        let cpu_before = cpu_ticks(pid);
        let elapsed = run_parallel(to - from, clients, move |i| {
            let (c, u) = (c.clone(), u.clone());
            async move {
                let name = domain_name(from + i);
                let domain = CreateDomain {
                    name: name.clone(),
                    customer: Some("bench".into()),
                    clusters: None,
                };
                post(&c, &format!("{u}/v1/domains"), &domain).await?;
                let site = CreateSite {
                    domain: name,
                    aliases: None,
                    php: None,
                    mode: None,
                    https_redirect: None,
                };
                post(&c, &format!("{u}/v1/sites"), &site).await
            }
        })
        .await?;
        let cpu = cpu_ticks(pid).saturating_sub(cpu_before);
        pair_secs += elapsed.as_secs_f64();
        let rate = 2.0 * (to - from) as f64 / elapsed.as_secs_f64();
        rates.push(rate);
        let mail_rate = if mailboxes {
            let took = import_mailboxes(client, url, from, to).await?;
            format!("{:.0}", (to - from) as f64 / took.as_secs_f64())
        } else {
            "-".to_owned()
        };
        println!(
            "{:>5} | {:>12} | {:>9.0} | {:>13.0} | {:>11} | {:>7}",
            slice + 1,
            to,
            rate,
            cpu as f64 * 1e6 / TICKS_PER_SEC / (2 * (to - from)) as f64,
            mail_rate,
            rss_kib(pid).0 / 1024
        );
    }
    let elapsed = pair_secs;
    let first = rates.first().copied().unwrap_or(0.0);
    let worst = rates.iter().copied().fold(f64::INFINITY, f64::min);
    println!(
        "pair objects: {} in {elapsed:.1} s = {:.0} objects/s overall; slowest slice {worst:.0}/s = {:.0}% of the first",
        2 * n,
        2.0 * n as f64 / elapsed,
        100.0 * worst / first.max(f64::MIN_POSITIVE)
    );

    let mut status = Vec::new();
    for _ in 0..STATUS_SAMPLES {
        let t = Instant::now();
        client
            .get(format!("{url}/v1/status"))
            .send()
            .await?
            .error_for_status()?
            .bytes()
            .await?;
        status.push(t.elapsed());
    }
    report("status", &mut status);

    let mut pages = Vec::new();
    walk::<DomainView>(client, &format!("{url}/v1/domains"), usize::MAX, &mut pages).await?;
    report("domain list page of 100", &mut pages);

    let mut events = Vec::new();
    walk::<EventView>(
        client,
        &format!("{url}/v1/events"),
        MAX_EVENT_PAGES,
        &mut events,
    )
    .await?;
    report("events page of 100", &mut events);

    let (rss, hwm) = rss_kib(pid);
    println!(
        "controller RSS now {} MiB, peak {} MiB",
        rss / 1024,
        hwm / 1024
    );
    Ok(())
}

/// Page through `url` 100 at a time (at most `max` pages), timing each page.
async fn walk<T: serde::de::DeserializeOwned>(
    client: &reqwest::Client,
    url: &str,
    max: usize,
    times: &mut Vec<Duration>,
) -> Result<()> {
    let mut cursor: Option<String> = None;
    while times.len() < max {
        let mut req = client.get(url).query(&[("limit", "100")]);
        if let Some(c) = &cursor {
            req = req.query(&[("cursor", c.as_str())]);
        }
        let t = Instant::now();
        let page: Page<T> = req.send().await?.error_for_status()?.json().await?;
        times.push(t.elapsed());
        match page.next_cursor {
            Some(c) => cursor = Some(c),
            None => break,
        }
    }
    Ok(())
}

/// Print p50 / p99 / max of `times` (sorted in place).
fn report(what: &str, times: &mut [Duration]) {
    times.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    println!(
        "{what}: {} requests, p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        times.len(),
        ms(percentile(times, 0.5)),
        ms(percentile(times, 0.99)),
        ms(times.last().copied().unwrap_or_default())
    );
}
