//! `bench/propagation`: how fast an API write reaches every agent it affects.
//!
//! Starts `hostplane controller` (release build, SQLite store) as a child process in
//! a temporary data dir, then:
//! 1. creates W web clusters (default 10) plus default dns/mail/files clusters
//!    (without servers), and D domains (default 10,000), each with a site, spread
//!    round-robin over the web clusters (N concurrent API clients);
//! 2. runs W×S agents (default 10×5 = 50) in this process: [`agent::run_with_engines`]
//!    in tokio tasks, each with its own state dir and source address `127.0.1.x`, joined
//!    with one-time join tokens, over real HTTPS with mutual TLS. The first R servers
//!    of each cluster (`--real-web`, default 1) run the real web engine (`role_web`:
//!    HTTP on `127.0.2.x:80`, HTTPS on `:443`, every site's certificate loaded), wrapped
//!    to note when each apply finished and how long the engine took; the others
//!    (`127.0.1.x`) run a small recording engine that only notes each `apply`;
//! 3. waits until every server is up, its `single` sites are placed, and every agent
//!    has applied its current config;
//! 4. makes K writes one after another (default 200; each toggles `https_redirect`
//!    of one site with `PATCH /v1/sites/{domain}`, or `php` with `--toggle php`, which
//!    needs `--real-web 0`: the real engine would start php-fpm pools and create a
//!    system user per site) and measures, per write, the time from the API's 200
//!    response until every agent of the site's cluster (real engines included) has
//!    applied a config with the new value. It also counts which agents applied anything during each write's
//!    window: only the S servers of the site's cluster should.
//!
//! Prints propagation p50/p99/max, API write latency, fan-out, the controller's RSS, the
//! load average and every error. Not a test: it asserts nothing about time. Usage:
//!
//! ```text
//! cargo build --release -p hostplane -p bench-propagation
//! target/release/bench-propagation [--domains 10000] [--web-clusters 10] [--servers 5]
//!     [--writes 200] [--concurrency 32] [--settle-ms 100] [--real-web 1]
//!     [--toggle https-redirect|php] [--bin target/release/hostplane]
//! ```
//!
//! `RUST_LOG=warn,controller::configs=debug BENCH_CONTROLLER_LOG=/tmp/c.log` keeps the
//! controller's log with the duration of each config build phase.

mod engines;
mod util;

use anyhow::{bail, Context, Result};
use engines::{lock, RealWebEngine, RecordingEngine, Shared, Target, Toggle};
use proto::v1::{
    CreateCluster, CreateCustomer, CreateDomain, CreateJoinToken, CreateSite, JoinTokenCreated,
    Page, ServerView, UpdateSite,
};
use std::collections::{BTreeMap, HashMap};
use std::io::{BufRead, BufReader};
use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::watch;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use util::{loadavg, ms, percentile, post, rss_kib, run_parallel, send_json, CountLayer, Counter};

struct Args {
    domains: usize,
    web_clusters: usize,
    servers: usize,
    writes: usize,
    concurrency: usize,
    settle_ms: u64,
    real_web: usize,
    toggle: Toggle,
    bin: String,
}

fn parse_args() -> Result<Args> {
    let mut args = Args {
        domains: 10_000,
        web_clusters: 10,
        servers: 5,
        writes: 200,
        concurrency: 32,
        settle_ms: 100,
        real_web: 1,
        toggle: Toggle::HttpsRedirect,
        bin: "target/release/hostplane".into(),
    };
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        match a.as_str() {
            "--domains" => args.domains = it.next().context("--domains N")?.parse()?,
            "--web-clusters" => {
                args.web_clusters = it.next().context("--web-clusters N")?.parse()?
            }
            "--servers" => args.servers = it.next().context("--servers N")?.parse()?,
            "--writes" => args.writes = it.next().context("--writes N")?.parse()?,
            "--concurrency" => args.concurrency = it.next().context("--concurrency N")?.parse()?,
            "--settle-ms" => args.settle_ms = it.next().context("--settle-ms MS")?.parse()?,
            "--real-web" => args.real_web = it.next().context("--real-web N")?.parse()?,
            "--toggle" => {
                args.toggle = match it.next().context("--toggle FIELD")?.as_str() {
                    "https-redirect" => Toggle::HttpsRedirect,
                    "php" => Toggle::Php,
                    other => bail!("--toggle: `{other}` is neither https-redirect nor php"),
                }
            }
            "--bin" => args.bin = it.next().context("--bin PATH")?,
            other => bail!("unknown argument {other}; see the module doc"),
        }
    }
    if args.web_clusters == 0 || args.servers == 0 || args.domains < args.web_clusters {
        bail!("need at least one web cluster, one server per cluster and one domain per cluster");
    }
    if args.web_clusters * args.servers > 250 {
        bail!("at most 250 agents (one 127.0.1.x or 127.0.2.x address each)");
    }
    if args.real_web > args.servers {
        bail!("--real-web counts servers per cluster: at most --servers");
    }
    if args.toggle == Toggle::Php && args.real_web > 0 {
        bail!("--toggle php needs --real-web 0 (real engines would start php-fpm pools and create system users)");
    }
    if args.writes > args.domains {
        bail!("--writes must not exceed --domains (each write toggles a different site)");
    }
    Ok(args)
}

// ------------------------------------------------------------------ controller

/// Kills the controller when the benchmark ends, however it ends.
struct Guard(Child);
impl Drop for Guard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

// ------------------------------------------------------------------ benchmark

fn domain_name(i: usize) -> String {
    format!("prop-{i:05}.example")
}

fn cluster_name(c: usize) -> String {
    format!("web-{c:02}")
}

fn server_name(c: usize, s: usize) -> String {
    format!("web-{c:02}-{s}")
}

async fn servers(client: &reqwest::Client, url: &str) -> Result<Vec<ServerView>> {
    let mut out = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut req = client
            .get(format!("{url}/v1/servers"))
            .query(&[("limit", "1000")]);
        if let Some(c) = &cursor {
            req = req.query(&[("cursor", c.as_str())]);
        }
        let page: Page<ServerView> = req.send().await?.error_for_status()?.json().await?;
        out.extend(page.items);
        match page.next_cursor {
            Some(c) => cursor = Some(c),
            None => return Ok(out),
        }
    }
}

/// Poll `check` every 200 ms until it returns true or `limit` passes.
async fn until<F, Fut>(limit: Duration, what: &str, mut check: F) -> Result<Duration>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<bool>>,
{
    let start = Instant::now();
    loop {
        if check().await? {
            return Ok(start.elapsed());
        }
        if start.elapsed() > limit {
            bail!("timed out after {limit:?} waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::main]
async fn main() -> Result<()> {
    let counter = Arc::new(Counter::default());
    tracing_subscriber::registry()
        .with(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with(tracing_subscriber::fmt::layer().with_writer(std::io::stderr))
        .with(CountLayer(counter.clone()))
        .init();

    let args = parse_args()?;
    let load_start = loadavg();
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

    let log_path = dir.path().join("controller.log");
    let mut child = Command::new(&args.bin)
        .args(["controller", "run", "--config"])
        .arg(data.join("controller.toml"))
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(&log_path)?)
        .spawn()?;
    let stdout = child.stdout.take().context("no stdout")?;
    let guard = Guard(child);
    let pid = guard.0.id();
    let mut url = String::new();
    let mut lines = BufReader::new(stdout).lines();
    for line in lines.by_ref() {
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
    // Keep draining the controller's stdout so it never blocks on a full pipe.
    std::thread::spawn(move || for _ in lines {});
    let ca_file = data.join("ca").join("ca.pem");
    let ca = std::fs::read(&ca_file).context("reading CA")?;
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

    // ---- clusters, customer, domains + sites
    let mut clusters: Vec<(String, &str, bool)> = (0..args.web_clusters)
        .map(|c| (cluster_name(c), "web", c == 0))
        .collect();
    for role in ["dns", "mail", "files"] {
        clusters.push((format!("{role}-a"), role, true));
    }
    for (name, role, default) in &clusters {
        let body = CreateCluster {
            name: name.clone(),
            role: (*role).into(),
            description: None,
            default: Some(*default),
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
    // The default plan allows 100 domains; the benchmark needs more.
    let unlimited =
        serde_json::json!({"limits": {"max_domains": 1_000_000, "max_mailboxes": 1_000_000}});
    send_json(
        &client,
        reqwest::Method::PATCH,
        &format!("{url}/v1/customers/bench"),
        &unlimited,
    )
    .await?;

    println!("controller pid {pid} at {url}; load average at start {load_start} (2-core machine)");
    println!(
        "creating {} domains + sites over {} web clusters with {} concurrent clients ...",
        args.domains, args.web_clusters, args.concurrency
    );
    let (c, u, webs) = (client.clone(), url.clone(), args.web_clusters);
    let elapsed = run_parallel(args.domains, args.concurrency, move |i| {
        let (c, u) = (c.clone(), u.clone());
        async move {
            let name = domain_name(i);
            let body = CreateDomain {
                name: name.clone(),
                customer: Some("bench".into()),
                clusters: Some(BTreeMap::from([("web".into(), cluster_name(i % webs))])),
            };
            post(&c, &format!("{u}/v1/domains"), &body).await?;
            let site = CreateSite {
                domain: name,
                aliases: None,
                php: Some(false),
                mode: None,
                https_redirect: None,
            };
            post(&c, &format!("{u}/v1/sites"), &site).await
        }
    })
    .await?;
    println!(
        "setup:     {} domains + {} sites in {:.1} s ({:.0} objects/s)",
        args.domains,
        args.domains,
        elapsed.as_secs_f64(),
        2.0 * args.domains as f64 / elapsed.as_secs_f64()
    );

    // ---- agents
    let agent_count = args.web_clusters * args.servers;
    let shared = Arc::new(Shared {
        agents: Mutex::new(HashMap::new()),
        target: Mutex::new(None),
        applied: watch::channel(0).0,
    });
    let mut registry = agent::EngineRegistry::new();
    {
        let shared = shared.clone();
        let real: std::collections::HashSet<String> = (0..args.web_clusters)
            .flat_map(|c| (0..args.real_web).map(move |s| server_name(c, s)))
            .collect();
        registry.register("web", move |ctx| {
            if real.contains(&ctx.server) {
                return Ok(Box::new(RealWebEngine::start(ctx, shared.clone())?)
                    as Box<dyn agent::RoleEngine>);
            }
            Ok(Box::new(RecordingEngine {
                server: ctx.server.clone(),
                shared: shared.clone(),
            }) as Box<dyn agent::RoleEngine>)
        });
    }
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut agent_tasks = Vec::new();
    let join_start = Instant::now();
    for c in 0..args.web_clusters {
        for s in 0..args.servers {
            let n = c * args.servers + s;
            let jt: JoinTokenCreated = send_json(
                &client,
                reqwest::Method::POST,
                &format!("{url}/v1/join-tokens"),
                &CreateJoinToken {
                    cluster: cluster_name(c),
                    expires_in_minutes: None,
                },
            )
            .await?
            .json()
            .await?;
            let name = server_name(c, s);
            let octet = u8::try_from(n + 1).context("too many agents")?;
            // Real engines serve on 127.0.2.x (ports 80 and 443), the others 127.0.1.x.
            let is_real = s < args.real_web;
            let engine = if is_real {
                BTreeMap::from([
                    ("threads".to_owned(), "1".to_owned()),
                    ("access_log".to_owned(), "off".to_owned()),
                ])
            } else {
                BTreeMap::new()
            };
            let cfg = agent::AgentConfig {
                name: name.clone(),
                controllers: vec![url.clone()],
                ca_file: Some(ca_file.clone()),
                join_token: Some(jt.token),
                join_token_file: None,
                state_dir: PathBuf::from(dir.path()).join("agents").join(&name),
                bind: IpAddr::V4(Ipv4Addr::new(127, 0, if is_real { 2 } else { 1 }, octet)),
                hostname: format!("{name}.bench.example"),
                addresses: Vec::new(),
                country: "GB".into(),
                region: String::new(),
                hardware: String::new(),
                heartbeat_interval_ms: agent::config::DEFAULT_HEARTBEAT_INTERVAL_MS,
                resync_interval_s: agent::config::DEFAULT_RESYNC_INTERVAL_S,
                watch_timeout_s: agent::config::DEFAULT_WATCH_TIMEOUT_S,
                engine,
            };
            let registry = registry.clone();
            let mut stop = stop_rx.clone();
            agent_tasks.push((
                name,
                tokio::spawn(async move {
                    agent::run_with_engines(cfg, registry, async move {
                        let _ = stop.wait_for(|v| *v).await;
                    })
                    .await
                }),
            ));
        }
    }

    // Generous with size: at 100,000 sites each agent loads 10,000 of them.
    let limit = Duration::from_secs(120 + args.domains as u64 / 100);
    let up = until(limit, "every agent up and applied", || {
        let (c, u) = (&client, &url);
        async move {
            let list = servers(c, u).await?;
            Ok(list.len() == agent_count
                && list.iter().all(|s| {
                    s.health == "up"
                        && s.config_revision.is_some()
                        && s.applied_revision == s.config_revision
                }))
        }
    })
    .await?;
    println!(
        "agents:    {agent_count} joined, up and applied in {:.1} s",
        up.as_secs_f64()
    );
    // Sites made before any server existed have no active server yet: an undrain
    // runs the placement pass of its cluster.
    for c in 0..args.web_clusters {
        let r = client
            .post(format!("{url}/v1/servers/{}/undrain", server_name(c, 0)))
            .send()
            .await?;
        if !r.status().is_success() {
            bail!("undrain {}: {}", server_name(c, 0), r.status());
        }
    }
    let per_cluster = |c: usize| (args.domains + args.web_clusters - 1 - c) / args.web_clusters;
    let placed = until(limit, "sites placed and applied", || {
        let (cl, u, sh) = (&client, &url, &shared);
        async move {
            let snap = sh.snapshot();
            let engines_ok = (0..args.web_clusters).all(|c| {
                let members: Vec<_> = (0..args.servers)
                    .filter_map(|s| snap.get(&server_name(c, s)))
                    .collect();
                members.len() == args.servers
                    && members.iter().all(|m| m.sites == per_cluster(c))
                    && members.iter().map(|m| m.active).sum::<usize>() == per_cluster(c)
            });
            if !engines_ok {
                return Ok(false);
            }
            let list = servers(cl, u).await?;
            Ok(list
                .iter()
                .all(|s| s.health == "up" && s.applied_revision == s.config_revision))
        }
    })
    .await?;
    // Quiet: no apply anywhere for 2 s.
    let mut quiet_rx = shared.applied.subscribe();
    loop {
        quiet_rx.mark_unchanged();
        if tokio::time::timeout(Duration::from_secs(2), quiet_rx.changed())
            .await
            .is_err()
        {
            break;
        }
    }
    println!(
        "placement: every site placed and applied in {:.1} s (joins started {:.1} s ago)",
        placed.as_secs_f64(),
        join_start.elapsed().as_secs_f64()
    );

    // ---- measure
    let load_before = loadavg();
    let (rss_before, _) = rss_kib(pid);
    // Sites start with php and https_redirect off.
    let mut value = vec![false; args.domains];
    let mut latencies = Vec::with_capacity(args.writes);
    // Real engines only: how long their apply of each write took, and when it
    // finished after the API's answer.
    let mut real_engine: Vec<Duration> = Vec::new();
    let mut real_reached: Vec<Duration> = Vec::new();
    let mut api = Vec::with_capacity(args.writes);
    let mut errors: Vec<String> = Vec::new();
    let mut woken_affected: Vec<usize> = Vec::new();
    let mut woken_unaffected_total = 0usize;
    let mut writes_with_unaffected = 0usize;
    let mut rx = shared.applied.subscribe();
    let settle = Duration::from_millis(args.settle_ms);
    let measure_start = Instant::now();
    for k in 0..args.writes {
        let i = (k * 7919 + 13) % args.domains;
        let cluster = i % args.web_clusters;
        let domain = domain_name(i);
        value[i] = !value[i];
        let write = k as u64 + 1;
        *lock(&shared.target) = Some(Target {
            write,
            domain: domain.clone(),
            toggle: args.toggle,
            value: value[i],
        });
        let before = shared.snapshot();
        let t0 = Instant::now();
        let resp = send_json(
            &client,
            reqwest::Method::PATCH,
            &format!("{url}/v1/sites/{domain}"),
            &match args.toggle {
                Toggle::HttpsRedirect => UpdateSite {
                    https_redirect: Some(value[i]),
                    ..UpdateSite::default()
                },
                Toggle::Php => UpdateSite {
                    php: Some(value[i]),
                    ..UpdateSite::default()
                },
            },
        )
        .await;
        let t_resp = Instant::now();
        if let Err(e) = resp {
            errors.push(format!("write {write}: {e:#}"));
            continue;
        }
        api.push(t_resp - t0);
        let members: Vec<String> = (0..args.servers).map(|s| server_name(cluster, s)).collect();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        let done = loop {
            rx.mark_unchanged();
            let snap = shared.snapshot();
            let times: Vec<Instant> = members
                .iter()
                .filter_map(|m| snap.get(m).and_then(|a| a.reached))
                .filter(|(w, _)| *w == write)
                .map(|(_, t)| t)
                .collect();
            if times.len() == members.len() {
                break times.into_iter().max();
            }
            match tokio::time::timeout_at(deadline, rx.changed()).await {
                Ok(Ok(())) => {}
                _ => break None,
            }
        };
        if done.is_some() {
            let snap = shared.snapshot();
            for m in &members {
                let Some(a) = snap.get(m).filter(|a| a.real) else {
                    continue;
                };
                if let (Some((w, t)), Some(took)) = (a.reached, a.engine_took) {
                    if w == write {
                        real_engine.push(took);
                        real_reached.push(t.saturating_duration_since(t_resp));
                    }
                }
            }
        }
        match done {
            Some(t) => latencies.push(t.saturating_duration_since(t_resp)),
            None => errors.push(format!(
                "write {write} ({domain} {:?}={}): not applied by every agent of {} within 10 s",
                args.toggle,
                value[i],
                cluster_name(cluster)
            )),
        }
        tokio::time::sleep(settle).await;
        let after = shared.snapshot();
        let mut affected = 0;
        let mut unaffected = 0;
        for (name, a) in &after {
            let b = before.get(name).map(|b| b.applies).unwrap_or(0);
            if a.applies > b {
                if members.contains(name) {
                    affected += 1;
                } else {
                    unaffected += 1;
                }
            }
        }
        woken_affected.push(affected);
        woken_unaffected_total += unaffected;
        if unaffected > 0 {
            writes_with_unaffected += 1;
        }
    }
    let measure_elapsed = measure_start.elapsed();
    let load_after = loadavg();

    // ---- report
    latencies.sort();
    api.sort();
    println!(
        "writes:    {} PATCH /v1/sites/{{domain}} ({:?} toggle), one at a time, {} ms settle; {:.1} s",
        args.writes,
        args.toggle,
        args.settle_ms,
        measure_elapsed.as_secs_f64()
    );
    println!(
        "propagation (API 200 -> all {} agents of the cluster applied), {} samples: p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        args.servers,
        latencies.len(),
        ms(percentile(&latencies, 0.5)),
        ms(percentile(&latencies, 0.99)),
        ms(latencies.last().copied().unwrap_or_default()),
    );
    println!(
        "api write: p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        ms(percentile(&api, 0.5)),
        ms(percentile(&api, 0.99)),
        ms(api.last().copied().unwrap_or_default()),
    );
    let (amin, amax) = (
        woken_affected.iter().min().copied().unwrap_or(0),
        woken_affected.iter().max().copied().unwrap_or(0),
    );
    println!(
        "fan-out:   agents of the write's cluster that applied: min {amin}, max {amax} (of {}); \
         other agents that applied anything: {woken_unaffected_total} in total, during {writes_with_unaffected} of {} writes",
        args.servers,
        woken_affected.len()
    );
    real_engine.sort();
    real_reached.sort();
    let snap = shared.snapshot();
    let reals: Vec<(&String, &engines::AgentStats)> = {
        let mut v: Vec<_> = snap.iter().filter(|(_, a)| a.real).collect();
        v.sort_by(|a, b| a.0.cmp(b.0));
        v
    };
    println!(
        "engines:   {} real role_web engines ({} per cluster, on 127.0.2.x:80/443), {} recording engines (127.0.1.x)",
        reals.len(),
        args.real_web,
        agent_count - reals.len()
    );
    if !reals.is_empty() {
        println!(
            "real web engine apply of a write ({} samples): p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms; \
             finished after the API's 200: p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
            real_engine.len(),
            ms(percentile(&real_engine, 0.5)),
            ms(percentile(&real_engine, 0.99)),
            ms(real_engine.last().copied().unwrap_or_default()),
            ms(percentile(&real_reached, 0.5)),
            ms(percentile(&real_reached, 0.99)),
            ms(real_reached.last().copied().unwrap_or_default()),
        );
        let failures: u64 = reals.iter().map(|(_, a)| a.failures).sum();
        println!(
            "real engines: {failures} failed applies; first: {} ({})",
            reals[0].0, reals[0].1.detail
        );
        if failures > 0 {
            errors.push(format!("real web engines: {failures} failed applies"));
        }
    }
    let (rss, hwm) = rss_kib(pid);
    println!(
        "controller RSS {} MiB before writes, {} MiB now, peak {} MiB",
        rss_before / 1024,
        rss / 1024,
        hwm / 1024
    );
    println!(
        "load average: start {load_start}, before writes {load_before}, after writes {load_after}"
    );

    let _ = stop_tx.send(true);
    for (name, t) in agent_tasks {
        match tokio::time::timeout(Duration::from_secs(10), t).await {
            Ok(Ok(Ok(()))) => {}
            Ok(Ok(Err(e))) => errors.push(format!("agent {name}: {e}")),
            Ok(Err(e)) => errors.push(format!("agent {name} task: {e}")),
            Err(_) => errors.push(format!("agent {name}: did not stop within 10 s")),
        }
    }
    drop(guard);
    let log = std::fs::read_to_string(&log_path).unwrap_or_default();
    // BENCH_CONTROLLER_LOG=FILE keeps the controller's log (e.g. with
    // RUST_LOG=controller::configs=debug for the build phase timings).
    if let Ok(keep) = std::env::var("BENCH_CONTROLLER_LOG") {
        std::fs::write(&keep, &log)?;
    }
    let controller_warn = log.lines().filter(|l| l.contains("WARN")).count();
    let controller_error = log.lines().filter(|l| l.contains("ERROR")).count();
    println!(
        "log events: agents {} WARN / {} ERROR; controller {controller_warn} WARN / {controller_error} ERROR",
        counter.warn.load(Ordering::Relaxed),
        counter.error.load(Ordering::Relaxed)
    );
    if errors.is_empty() {
        println!("errors:    none");
    } else {
        println!("errors:    {}", errors.len());
        for e in &errors {
            println!("  {e}");
        }
    }
    Ok(())
}
