//! Helpers of the panel's browser tests: a controller served in this process
//! (real TLS on a loopback port), `chromedriver` with headless Chromium
//! (fantoccini), screenshots, and waiting for elements.

#![allow(dead_code)]

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::{bail, Context, Result};
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{json, Value};

/// A controller served in this process, as the controller's own tests start one.
pub struct Controller {
    pub url: String,
    pub ca: Vec<u8>,
    pub admin_token: String,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<Result<(), controller::ServeError>>>,
    _dir: tempfile::TempDir,
}

impl Controller {
    pub async fn start() -> Result<Controller> {
        let dir = tempfile::tempdir()?;
        let listen: SocketAddr = "127.0.0.1:0".parse()?;
        let out = controller::init::init(controller::init::InitOptions {
            data_dir: dir.path().join("cp"),
            listen,
            store_url: None,
            extra_names: vec!["controller.test".into()],
            admin_name: "admin".into(),
            plain_http: false,
        })
        .await?;
        let mut config = controller::config::ControllerConfig::load(&out.config_path)?;
        config.names.resolver = Some("127.0.0.1:9".parse()?);
        let listener = tokio::net::TcpListener::bind(listen).await?;
        let url = config.url(listener.local_addr()?);
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(controller::serve(config, listener, async move {
            let _ = rx.await;
        }));
        Ok(Controller {
            url,
            ca: std::fs::read(&out.ca_path)?,
            admin_token: out.admin_token,
            shutdown: Some(tx),
            task: Some(task),
            _dir: dir,
        })
    }

    /// An HTTPS client trusting the controller's CA, keeping cookies, never
    /// following redirects (the test looks at them).
    pub fn http(&self) -> Result<reqwest::Client> {
        Ok(reqwest::Client::builder()
            .add_root_certificate(reqwest::Certificate::from_pem(&self.ca)?)
            .cookie_store(true)
            .redirect(reqwest::redirect::Policy::none())
            .build()?)
    }

    pub async fn admin(&self, method: reqwest::Method, path: &str, body: Value) -> Result<Value> {
        let res = self
            .http()?
            .request(method, format!("{}{path}", self.url))
            .bearer_auth(&self.admin_token)
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

    pub async fn stop(mut self) -> Result<()> {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(task) = self.task.take() {
            task.await??;
        }
        Ok(())
    }
}

/// `chromedriver` on a free loopback port, in a process group of its own so the
/// browsers it starts die with it.
pub struct Driver {
    child: Child,
    port: u16,
}

impl Driver {
    pub fn start() -> Result<Driver> {
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

    pub async fn connect(&self, profile: &std::path::Path) -> Result<Client> {
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
        // chromedriver needs a moment to listen: try until it answers (bounded).
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
        // The whole group: chromedriver and every Chromium process it started.
        // (Never `kill -KILL -PGID` through procps' kill(1): its 4.0.2 in Debian 12
        // treats that as `kill -1`, every process of the machine.)
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

pub fn shots_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("panel-screenshots")
}

/// Screenshots of the current page at desktop and phone width.
pub async fn shoot(c: &Client, name: &str) -> Result<()> {
    let dir = shots_dir();
    std::fs::create_dir_all(&dir)?;
    for (label, w, h) in [("desktop", 1280, 900), ("phone", 390, 844)] {
        c.set_window_size(w, h).await?;
        let png = c.screenshot().await?;
        std::fs::write(dir.join(format!("{name}-{label}.png")), png)?;
    }
    c.set_window_size(1280, 900).await?;
    Ok(())
}

/// Wait (bounded by fantoccini's wait) for an element whose text contains `text`.
pub async fn wait_text(c: &Client, css: &str, text: &str) -> Result<()> {
    eprintln!("browser: wait for `{text}` in #{css}");
    let xpath = format!("//*[@id='{css}']//*[contains(text(), '{text}')]");
    if let Err(e) = c
        .wait()
        .at_most(Duration::from_secs(30))
        .for_element(Locator::XPath(&xpath))
        .await
    {
        let main = match c.find(Locator::Css("main")).await {
            Ok(m) => m.text().await.unwrap_or_default(),
            Err(_) => String::new(),
        };
        bail!("no `{text}` in #{css} ({e}); the page shows:\n{main}");
    }
    Ok(())
}

/// Wait (at most 30 s) for the element with `id`.
pub async fn wait_id(c: &Client, id: &str) -> Result<()> {
    eprintln!("browser: wait for #{id}");
    c.wait()
        .at_most(Duration::from_secs(30))
        .for_element(Locator::Id(id))
        .await
        .with_context(|| format!("no #{id}"))?;
    Ok(())
}

pub async fn fill(c: &Client, id: &str, value: &str) -> Result<()> {
    let e = c.find(Locator::Id(id)).await?;
    e.clear().await?;
    e.send_keys(value).await?;
    Ok(())
}

pub async fn click(c: &Client, css: &str) -> Result<()> {
    eprintln!("browser: click {css}");
    c.find(Locator::Css(css)).await?.click().await?;
    Ok(())
}

/// The hidden CSRF field of a page's HTML.
pub fn csrf_of(html: &str) -> Option<String> {
    let at = html.find("name=\"csrf\" value=\"")? + "name=\"csrf\" value=\"".len();
    let end = html[at..].find('"')?;
    Some(html[at..at + end].to_owned())
}
