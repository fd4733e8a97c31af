//! `bench/api`: how fast the controller takes bulk writes and serves listings.
//!
//! Starts `hostplane controller` (release build, SQLite store) as a child process in
//! a temporary data dir, then over HTTPS with N concurrent clients:
//! 1. creates D domains (default 10,000) for one customer, timing domain creations;
//! 2. creates one mailbox per domain (argon2id hashing dominates this phase);
//! 3. pages through all domains 100 at a time, timing each page;
//!
//! and prints throughput, page latency percentiles and the controller's RSS.
//! With `--scale N` it instead creates N domain + site pairs in ten slices and
//! measures the reads at that size (see the `scale` module); `--scale N --mailboxes`
//! also gives every domain a mailbox, imported with a pre-hashed password.
//! Not a test: it asserts nothing about time. Usage:
//!
//! ```text
//! cargo build --release -p hostplane -p bench-api
//! target/release/bench-api [--domains 10000] [--concurrency 32] [--bin target/release/hostplane]
//! target/release/bench-api --scale 100000 [--mailboxes] [--concurrency 32] [--bin target/release/hostplane]
//! ```

use anyhow::{bail, Context, Result};
use proto::v1::{CreateCluster, CreateCustomer, CreateDomain, CreateMailbox, DomainView, Page};
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

mod scale;

struct Args {
    domains: usize,
    concurrency: usize,
    bin: String,
    mailboxes: bool,
    scale: Option<usize>,
    scale_mailboxes: bool,
}

fn parse_args() -> Result<Args> {
    let mut args = Args {
        domains: 10_000,
        concurrency: 32,
        bin: "target/release/hostplane".into(),
        mailboxes: true,
        scale: None,
        scale_mailboxes: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        match a.as_str() {
            "--domains" => args.domains = it.next().context("--domains N")?.parse()?,
            "--concurrency" => args.concurrency = it.next().context("--concurrency N")?.parse()?,
            "--bin" => args.bin = it.next().context("--bin PATH")?,
            "--no-mailboxes" => args.mailboxes = false,
            "--scale" => args.scale = Some(it.next().context("--scale N")?.parse()?),
            "--mailboxes" => args.scale_mailboxes = true,
            other => bail!("unknown argument {other}; see the module doc"),
        }
    }
    Ok(args)
}

/// Kills the controller when the benchmark ends, however it ends.
struct Guard(Child);
impl Drop for Guard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn rss_kib(pid: u32) -> (u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let idx = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[idx]
}

async fn post<T: serde::Serialize>(c: &reqwest::Client, url: &str, body: &T) -> Result<()> {
    let r = c.post(url).json(body).send().await?;
    if !r.status().is_success() {
        bail!(
            "POST {url}: {} {}",
            r.status(),
            r.text().await.unwrap_or_default()
        );
    }
    // Read the answer to its end: an HTTP/2 response dropped unread resets its stream,
    // and h2 ends the connection after 1,024 such resets.
    r.bytes().await?;
    Ok(())
}

/// Run `jobs` closures' futures with at most `n` in flight; returns elapsed time.
async fn run_parallel<F, Fut>(total: usize, n: usize, make: F) -> Result<Duration>
where
    F: Fn(usize) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = Result<()>> + Send + 'static,
{
    let make = Arc::new(make);
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let start = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..n {
        let make = make.clone();
        let next = next.clone();
        tasks.push(tokio::spawn(async move {
            loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if i >= total {
                    return Ok::<(), anyhow::Error>(());
                }
                make(i).await?;
            }
        }));
    }
    for t in tasks {
        t.await??;
    }
    Ok(start.elapsed())
}

#[tokio::main]
async fn main() -> Result<()> {
    let args = parse_args()?;
    let dir = tempfile::tempdir()?;
    let data = dir.path().join("data");

    let init = Command::new(&args.bin)
        .args(["controller", "init", "--data-dir"])
        .arg(&data)
        .args(["--listen", "127.0.0.1:0"])
        .output()
        .with_context(|| {
            format!(
                "running {} (build it with cargo build --release -p hostplane)",
                args.bin
            )
        })?;
    if !init.status.success() {
        bail!(
            "controller init failed: {}",
            String::from_utf8_lossy(&init.stderr)
        );
    }
    let init_out = String::from_utf8_lossy(&init.stdout).to_string();
    let token = init_out
        .split_whitespace()
        .find(|w| w.starts_with("hp_"))
        .context("no admin token in init output")?
        .to_owned();

    let mut child = Command::new(&args.bin)
        .args(["controller", "run", "--config"])
        .arg(data.join("controller.toml"))
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()?;
    let stdout = child.stdout.take().context("no stdout")?;
    let guard = Guard(child);
    let pid = guard.0.id();
    let mut url = String::new();
    for line in BufReader::new(stdout).lines() {
        let line = line?;
        if let Some(u) = line
            .split_whitespace()
            .find(|w| w.starts_with("https://") || w.starts_with("http://"))
        {
            url = u.trim_end_matches('/').to_owned();
            break;
        }
    }
    if url.is_empty() {
        bail!("controller did not print its URL");
    }
    let ca = std::fs::read(data.join("ca").join("ca.pem")).context("reading CA")?;
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert(
        reqwest::header::AUTHORIZATION,
        format!("Bearer {token}").parse()?,
    );
    let client = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(&ca)?)
        .default_headers(headers)
        .pool_max_idle_per_host(args.concurrency)
        .build()?;

    for (name, role) in [
        ("web-a", "web"),
        ("dns-a", "dns"),
        ("mail-a", "mail"),
        ("files-a", "files"),
    ] {
        let body = CreateCluster {
            name: name.into(),
            role: role.into(),
            description: None,
            default: Some(true),
            web_ttl: None,
            ttl: None,
            external_secondaries: None,
            hostname: None,
        };
        post(&client, &format!("{url}/v1/clusters"), &body).await?;
    }
    let cust = CreateCustomer {
        name: "bench".into(),
        kind: None,
        display_name: None,
        email: None,
        reseller: None,
        password: None,
        default_clusters: None,
        db_quota_mb: None,
    };
    post(&client, &format!("{url}/v1/customers"), &cust).await?;
    // The default plan allows 100 domains and 1000 mailboxes; the benchmark needs more.
    // (Sites are not limited by count.)
    let unlimited =
        serde_json::json!({"limits": {"max_domains": 1_000_000, "max_mailboxes": 1_000_000}});
    let r = client
        .patch(format!("{url}/v1/customers/bench"))
        .json(&unlimited)
        .send()
        .await?;
    if !r.status().is_success() {
        bail!("PATCH customer limits: {}", r.status());
    }

    let (rss0, _) = rss_kib(pid);
    println!("controller pid {pid}, RSS at start {} MiB", rss0 / 1024);
    if let Some(n) = args.scale {
        scale::run(
            &client,
            &url,
            scale::Size {
                pairs: n,
                clients: args.concurrency,
                mailboxes: args.scale_mailboxes,
            },
            pid,
        )
        .await?;
        drop(guard);
        return Ok(());
    }
    println!(
        "creating {} domains with {} concurrent clients ...",
        args.domains, args.concurrency
    );
    let (c, u) = (client.clone(), url.clone());
    let elapsed = run_parallel(args.domains, args.concurrency, move |i| {
        let (c, u) = (c.clone(), u.clone());
        async move {
            let body = CreateDomain {
                name: format!("bench-{i:05}.example"),
                customer: Some("bench".into()),
                clusters: None,
            };
            post(&c, &format!("{u}/v1/domains"), &body).await
        }
    })
    .await?;
    let domain_rate = args.domains as f64 / elapsed.as_secs_f64();
    println!(
        "domains:   {} in {:.2} s = {:.0} creations/s",
        args.domains,
        elapsed.as_secs_f64(),
        domain_rate
    );

    if args.mailboxes {
        let (c, u) = (client.clone(), url.clone());
        let elapsed = run_parallel(args.domains, args.concurrency, move |i| {
            let (c, u) = (c.clone(), u.clone());
            async move {
                let body = CreateMailbox {
                    address: format!("info@bench-{i:05}.example"),
                    password: Some("correct-horse-battery".into()),
                    quota_mb: None,
                    display_name: None,
                };
                post(&c, &format!("{u}/v1/mailboxes"), &body).await
            }
        })
        .await?;
        println!(
            "mailboxes: {} in {:.2} s = {:.0} creations/s (argon2id hashing per mailbox)",
            args.domains,
            elapsed.as_secs_f64(),
            args.domains as f64 / elapsed.as_secs_f64()
        );
    }

    let mut pages = Vec::new();
    let mut cursor: Option<String> = None;
    let mut seen = 0;
    loop {
        let mut req = client
            .get(format!("{url}/v1/domains"))
            .query(&[("limit", "100")]);
        if let Some(c) = &cursor {
            req = req.query(&[("cursor", c.as_str())]);
        }
        let t = Instant::now();
        let page: Page<DomainView> = req.send().await?.error_for_status()?.json().await?;
        pages.push(t.elapsed());
        seen += page.items.len();
        match page.next_cursor {
            Some(c) => cursor = Some(c),
            None => break,
        }
    }
    pages.sort();
    println!(
        "listing:   {seen} domains in {} pages of 100: p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        pages.len(),
        percentile(&pages, 0.5).as_secs_f64() * 1e3,
        percentile(&pages, 0.99).as_secs_f64() * 1e3,
        pages.last().copied().unwrap_or_default().as_secs_f64() * 1e3
    );
    let (rss, hwm) = rss_kib(pid);
    println!(
        "controller RSS now {} MiB, peak {} MiB",
        rss / 1024,
        hwm / 1024
    );
    drop(guard);
    Ok(())
}
