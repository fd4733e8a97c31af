//! The panel's live map in a real browser over real processes (issue 18 points 5
//! and 7): a controller and agents of the `hostplane` binary (testkit), Debian's
//! Chromium driven by `chromedriver` (fantoccini). As an admin the map shows every
//! server by country and region; the test SIGKILLs one agent it started and sees
//! that server's node turn red (down) without reloading the page, within 5 s, the
//! change carried by server-sent events. A customer's map shows where its services
//! run and never a server's name, host name or address, in the browser, in the
//! panel's event stream and in the API.
//!
//! Screenshots at desktop (1280 px) and phone (390 px) width go to
//! `target/tmp/panel-screenshots/map-*.png` for a person to look at.

#![allow(clippy::unwrap_used)] // test helpers outside #[test] fns may panic

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{json, Value};
use testkit::{reqwest, Options, TestCluster};

const BIN: &str = env!("CARGO_BIN_EXE_hostplane");
/// Bound for what normally takes a second.
const T: Duration = Duration::from_secs(20);
/// The bound: a server that stops is red on the open map within 5 s.
const RED_WITHIN: Duration = Duration::from_secs(5);

/// `chromedriver` on a free loopback port, in a process group of its own so the
/// browsers it starts die with it.
struct Driver {
    child: Child,
    port: u16,
}

impl Driver {
    fn start() -> Result<Driver> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let child = {
            use std::os::unix::process::CommandExt;
            Command::new("chromedriver")
                .arg(format!("--port={port}"))
                .arg("--allowed-ips=127.0.0.1")
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .process_group(0)
                .spawn()
                .context("start chromedriver (apt-get install chromium chromium-driver)")?
        };
        Ok(Driver { child, port })
    }

    async fn connect(&self, profile: &std::path::Path) -> Result<Client> {
        let mut caps = serde_json::Map::new();
        caps.insert("acceptInsecureCerts".into(), json!(true));
        caps.insert(
            "goog:chromeOptions".into(),
            json!({"args": [
                "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--no-first-run", "--window-size=1280,900",
                format!("--user-data-dir={}", profile.display()),
            ]}),
        );
        let url = format!("http://127.0.0.1:{}", self.port);
        let mut last = None;
        for _ in 0..100 {
            match ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
                .capabilities(caps.clone())
                .connect(&url)
                .await
            {
                Ok(c) => return Ok(c),
                Err(e) => last = Some(e),
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        bail!("cannot open a WebDriver session: {last:?}")
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        // The whole group: chromedriver and every Chromium process it started
        // (a group we made, never a negative pid through kill(1)).
        let pgid = i32::try_from(self.child.id())
            .ok()
            .filter(|p| *p > 1)
            .and_then(rustix::process::Pid::from_raw);
        if let Some(pgid) = pgid {
            let _ = rustix::process::kill_process_group(pgid, rustix::process::Signal::KILL);
        }
        let _ = self.child.wait();
    }
}

fn shots_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("panel-screenshots")
}

/// Screenshots of the current page at desktop and phone width.
async fn shoot(c: &Client, name: &str) -> Result<()> {
    let dir = shots_dir();
    std::fs::create_dir_all(&dir)?;
    for (label, w, h) in [("desktop", 1280, 900), ("phone", 390, 844)] {
        c.set_window_size(w, h).await?;
        tokio::time::sleep(Duration::from_millis(300)).await;
        let png = c.screenshot().await?;
        std::fs::write(dir.join(format!("{name}-{label}.png")), png)?;
    }
    c.set_window_size(1280, 900).await?;
    Ok(())
}

async fn fill(c: &Client, id: &str, value: &str) -> Result<()> {
    let e = c.find(Locator::Id(id)).await?;
    e.clear().await?;
    e.send_keys(value).await?;
    Ok(())
}

/// Sign in through the form in the browser.
async fn sign_in(c: &Client, url: &str, account: &str, password: &str) -> Result<()> {
    c.goto(&format!("{url}/login")).await?;
    c.wait()
        .at_most(T)
        .for_element(Locator::Id("password"))
        .await?;
    fill(c, "account", account).await?;
    fill(c, "password", password).await?;
    c.find(Locator::Css("form[action='/login'] button"))
        .await?
        .click()
        .await?;
    c.wait()
        .at_most(T)
        .for_element(Locator::Css("form.signout"))
        .await
        .context("signed in")?;
    Ok(())
}

/// Run `script` in the page (one step: the live updates replace the map's
/// elements at any moment, so no element is held across WebDriver calls).
async fn eval(c: &Client, script: &str) -> Result<Value> {
    Ok(c.execute(script, vec![]).await?)
}

/// The class of the node `key` in the wide map.
async fn node_class(c: &Client, key: &str) -> Result<String> {
    let v = eval(
        c,
        &format!(
            "const n = document.querySelector(\"#map-wide g[data-node='{key}']\"); return n ? n.getAttribute('class') : '';"
        ),
    )
    .await?;
    Ok(v.as_str().unwrap_or_default().to_owned())
}

/// Wait until the live status says the event stream is open.
async fn wait_live(c: &Client) -> Result<()> {
    c.wait()
        .at_most(T)
        .for_element(Locator::Css("#map-status[data-live='live']"))
        .await
        .context("the map's event stream did not open")?;
    Ok(())
}

async fn admin_call(
    c: &TestCluster,
    method: reqwest::Method,
    path: &str,
    body: Value,
) -> Result<Value> {
    let res = c
        .http()
        .request(method, format!("{}{path}", c.url()))
        .bearer_auth(c.admin_token())
        .json(&body)
        .send()
        .await?;
    let status = res.status();
    let body: Value = res.json().await.unwrap_or(Value::Null);
    if !status.is_success() {
        bail!("{path}: {status} {body}");
    }
    Ok(body)
}

/// Two countries, two regions: web-1 and ns1 in London, web-2 and ns2 in
/// Frankfurt (DNS primary and secondary), mail-1 known to the API but never
/// joined; customers alice (a site, a mailbox) and bob.
async fn platform(c: &mut TestCluster) -> Result<()> {
    for (name, role) in [
        ("web-a", "web"),
        ("dns-a", "dns"),
        ("mail-a", "mail"),
        ("files-a", "files"),
    ] {
        c.add_cluster(name, role, true).await?;
    }
    c.add_agent("web-1", "web-a", "GB").await?;
    c.add_agent("web-2", "web-a", "DE").await?;
    // Ranks go in joining order: ns1 joins first, the primary.
    c.add_agent("ns1", "dns-a", "GB").await?;
    c.wait_health("ns1", "up", T).await?;
    c.add_agent("ns2", "dns-a", "DE").await?;
    for s in ["web-1", "web-2", "ns1", "ns2"] {
        c.wait_health(s, "up", T).await?;
    }
    for (s, region) in [
        ("web-1", "london"),
        ("ns1", "london"),
        ("web-2", "frankfurt"),
        ("ns2", "frankfurt"),
    ] {
        admin_call(
            c,
            reqwest::Method::PATCH,
            &format!("/v1/servers/{s}"),
            json!({ "region": region }),
        )
        .await?;
    }
    admin_call(
        c,
        reqwest::Method::POST,
        "/v1/servers",
        json!({"name": "mail-1", "cluster": "mail-a", "hostname": "mx1.hosting.test",
               "addresses": ["192.0.2.25"], "country": "NL", "region": "amsterdam"}),
    )
    .await?;
    admin_call(
        c,
        reqwest::Method::POST,
        "/v1/customers",
        json!({"name": "ops", "kind": "admin", "password": "ops-password-1"}),
    )
    .await?;
    for name in ["alice", "bob"] {
        admin_call(
            c,
            reqwest::Method::POST,
            "/v1/customers",
            json!({"name": name, "password": format!("{name}-password-1")}),
        )
        .await?;
        let domain = format!("{name}-shop.com");
        admin_call(
            c,
            reqwest::Method::POST,
            "/v1/domains",
            json!({"name": domain, "customer": name}),
        )
        .await?;
        admin_call(
            c,
            reqwest::Method::POST,
            "/v1/sites",
            json!({"domain": domain, "mode": "all"}),
        )
        .await?;
        admin_call(
            c,
            reqwest::Method::POST,
            "/v1/mailboxes",
            json!({"address": format!("info@{domain}"), "password": "mailbox-password-1"}),
        )
        .await?;
    }
    Ok(())
}

/// What a customer must never see of the platform: server names, host names and
/// addresses (alice's services run on all of them).
fn inventory(c: &TestCluster) -> Result<Vec<String>> {
    let mut out = vec![
        "web-1".to_owned(),
        "web-2".to_owned(),
        "ns1".to_owned(),
        "ns2".to_owned(),
        "mail-1".to_owned(),
        "hosting.test".to_owned(),
        "192.0.2.25".to_owned(),
    ];
    for a in ["web-1", "web-2", "ns1", "ns2"] {
        out.push(c.agent(a)?.bind.to_string());
    }
    Ok(out)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn map_turns_a_killed_server_red_live_and_customers_see_no_servers() -> Result<()> {
    let mut c = TestCluster::start(
        BIN,
        // Down within about a second of the kill: silent for 3 heartbeats of
        // 200 ms makes a server suspect, the next tick's probe finds its port
        // closed (refused at once on loopback) and marks it down.
        Options {
            heartbeat_interval_ms: 200,
            suspect_after: 3,
            probe_timeout_ms: 200,
            ..Options::default()
        },
    )
    .await?;
    platform(&mut c).await?;

    let driver = Driver::start()?;
    let profile = tempfile::tempdir()?;
    let browser = driver.connect(profile.path()).await?;
    let outcome = async {
        admin_sees_the_kill(&mut c, &browser).await?;
        customer_sees_no_servers(&c, &browser).await
    }
    .await;
    let _ = browser.close().await;
    drop(driver);
    outcome?;
    customer_stream_and_api_name_no_server(&mut c).await
}

/// As the admin `ops`: the map, then the kill.
async fn admin_sees_the_kill(c: &mut TestCluster, b: &Client) -> Result<()> {
    sign_in(b, c.url(), "ops", "ops-password-1").await?;
    // Through the nav link (htmx-boosted navigation): the script must connect too.
    b.find(Locator::Css("header nav a[href='/map']"))
        .await?
        .click()
        .await?;
    b.wait()
        .at_most(T)
        .for_element(Locator::Css("#map-wide g[data-node='web-2']"))
        .await
        .context("no node for web-2 on the map")?;
    wait_live(b).await?;
    for s in ["web-1", "web-2", "ns1", "ns2"] {
        let class = node_class(b, s).await?;
        assert!(class.contains("h-up"), "{s} is not up on the map: {class}");
    }
    assert!(node_class(b, "ns1").await?.contains("pos-primary"));
    assert!(node_class(b, "ns2").await?.contains("pos-secondary"));
    assert!(node_class(b, "mail-1").await?.contains("h-unknown"));
    let links = eval(
        b,
        "return document.querySelectorAll(\"#map-wide path.link[data-group='dns-a']\").length;",
    )
    .await?;
    assert_eq!(links, json!(1), "one link from ns1 to ns2");
    let text = eval(b, "return document.querySelector('#map-wide').outerHTML;").await?;
    let text = text.as_str().unwrap_or_default();
    assert!(
        text.contains("london") && text.contains("frankfurt"),
        "{text}"
    );
    assert!(
        text.contains("2 sites"),
        "web servers carry both sites: {text}"
    );
    assert!(text.contains("2 zones"), "{text}");
    // Inline styles are refused by the CSP: the colours come from map.css.
    let fill: Value = b
        .execute(
            "return getComputedStyle(document.querySelector(\"#map-wide g[data-node='web-2'] rect.box\")).fill;",
            vec![],
        )
        .await?;
    assert_eq!(fill, json!("rgb(218, 251, 225)"), "up is green");
    shoot(b, "map-admin").await?;

    let pid = c.agent_pid("web-2")?;
    eprintln!("map: SIGKILL web-2's agent (pid {pid})");
    let killed = Instant::now();
    c.kill_agent("web-2")?;
    b.wait()
        .at_most(RED_WITHIN)
        .for_element(Locator::Css("#map-wide g[data-node='web-2'].h-down"))
        .await
        .context("web-2 did not turn red on the open map within 5 s")?;
    eprintln!(
        "map: web-2 red on the open map {:?} after the kill",
        killed.elapsed()
    );
    let fill: Value = b
        .execute(
            "return getComputedStyle(document.querySelector(\"#map-wide g[data-node='web-2'] rect.box\")).fill;",
            vec![],
        )
        .await?;
    assert_eq!(fill, json!("rgb(209, 36, 47)"), "down is red");
    assert!(node_class(b, "web-1").await?.contains("h-up"));
    shoot(b, "map-admin-down").await?;

    // Back up: green again, live.
    c.restart_agent("web-2")?;
    b.wait()
        .at_most(T)
        .for_element(Locator::Css("#map-wide g[data-node='web-2'].h-up"))
        .await
        .context("web-2 did not turn green again")?;
    b.find(Locator::Css(".signout button"))
        .await?
        .click()
        .await?;
    b.wait()
        .at_most(T)
        .for_element(Locator::Id("password"))
        .await?;
    Ok(())
}

/// As the customer alice: where her services run, and no server anywhere.
async fn customer_sees_no_servers(c: &TestCluster, b: &Client) -> Result<()> {
    sign_in(b, c.url(), "alice", "alice-password-1").await?;
    b.goto(&format!("{}/map", c.url())).await?;
    b.wait()
        .at_most(T)
        .for_element(Locator::Css("#map-wide g[data-node]"))
        .await?;
    wait_live(b).await?;
    let html = b.source().await?;
    for name in inventory(c)? {
        assert!(!html.contains(&name), "the customer's map names `{name}`");
    }
    assert!(!html.contains("bob-shop.com"), "another customer's domain");
    for key in [
        "web/GB/london",
        "web/DE/frankfurt",
        "dns/GB/london",
        "dns/DE/frankfurt",
    ] {
        b.find(Locator::Css(&format!("#map-wide g[data-node='{key}']")))
            .await
            .with_context(|| format!("no {key} on alice's map"))?;
    }
    // web-2 was killed and restarted: by now every region serves again.
    b.wait()
        .at_most(T)
        .for_element(Locator::Css(
            "#map-wide g[data-node='web/DE/frankfurt'].h-up",
        ))
        .await?;
    shoot(b, "map-customer").await?;
    Ok(())
}

/// A customer's API event stream and services map, while a server of its cluster
/// goes down: nothing names a server (the panel shows what these give).
async fn customer_stream_and_api_name_no_server(c: &mut TestCluster) -> Result<()> {
    let token = c.api_token_for("alice").await?;
    let api = |path: &str| {
        c.http()
            .get(format!("{}{path}", c.url()))
            .bearer_auth(&token)
    };
    assert_eq!(api("/v1/map/platform").send().await?.status(), 403);
    // The panel's stream wants a session: without its cookie, a 401 (which an
    // EventSource does not retry).
    let anon = c
        .http()
        .get(format!("{}/map/events", c.url()))
        .send()
        .await?;
    assert_eq!(anon.status(), 401);
    let services = api("/v1/map/services").send().await?.text().await?;
    let mut stream = api("/v1/map/events")
        .timeout(Duration::from_secs(60))
        .send()
        .await?;
    assert_eq!(stream.status(), 200);
    c.kill_agent("web-1")?;
    let mut seen = String::new();
    let deadline = Instant::now() + T;
    while !seen.contains("event: services") && Instant::now() < deadline {
        match tokio::time::timeout(Duration::from_secs(1), stream.chunk()).await {
            Ok(Ok(Some(chunk))) => seen.push_str(&String::from_utf8_lossy(&chunk)),
            Ok(_) => break,
            Err(_) => {}
        }
    }
    assert!(
        seen.contains("event: services"),
        "no services event: {seen}"
    );
    for text in [&services, &seen] {
        for name in inventory(c)? {
            assert!(
                !text.contains(&name),
                "the customer's API names `{name}`: {text}"
            );
        }
    }
    let view: Value = serde_json::from_str(&services)?;
    assert!(
        view["locations"].as_array().is_some_and(|l| !l.is_empty()),
        "{view}"
    );
    Ok(())
}
