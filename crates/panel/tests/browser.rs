//! The panel in a real browser: a controller in this process (real TLS on a
//! loopback port), Debian's Chromium driven over WebDriver by `chromedriver`
//! (fantoccini), and plain HTTPS requests (reqwest) for what a browser will not
//! show: status codes, headers, a POST without its CSRF token.
//!
//! Screenshots of each page at desktop and phone width are written under
//! `target/tmp/panel-screenshots/` for a person to look at (not compared).

use anyhow::{bail, Context, Result};
use fantoccini::{Client, Locator};
use serde_json::{json, Value};

mod common;
use common::*;

/// Sign in through the form with plain HTTPS; returns the client (holding the
/// session cookie) and the session's CSRF token.
async fn sign_in_http(
    cp: &Controller,
    account: &str,
    password: &str,
) -> Result<(reqwest::Client, String)> {
    let http = cp.http()?;
    let page = http
        .get(format!("{}/login", cp.url))
        .send()
        .await?
        .text()
        .await?;
    let csrf = csrf_of(&page).context("no csrf on the login form")?;
    let res = http
        .post(format!("{}/login", cp.url))
        .form(&[
            ("csrf", csrf.as_str()),
            ("account", account),
            ("password", password),
        ])
        .send()
        .await?;
    if res.status() != reqwest::StatusCode::SEE_OTHER {
        bail!("sign-in answered {}", res.status());
    }
    let home = http
        .get(format!("{}/", cp.url))
        .send()
        .await?
        .text()
        .await?;
    let csrf = csrf_of(&home).context("no csrf on the dashboard")?;
    Ok((http, csrf))
}

async fn panel_tokens(cp: &Controller, account: &str) -> Result<usize> {
    let res = cp
        .http()?
        .get(format!("{}/v1/tokens?customer={account}", cp.url))
        .bearer_auth(&cp.admin_token)
        .send()
        .await?
        .json::<Value>()
        .await?;
    let panel: Vec<&Value> = res["items"]
        .as_array()
        .map(|a| a.iter().filter(|t| t["name"] == "panel session").collect())
        .unwrap_or_default();
    // A session's token expires on its own (a day), should the session be lost.
    for t in &panel {
        if !t["expires_at"].is_string() {
            bail!("a panel session token that never expires: {t}");
        }
    }
    Ok(panel.len())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn customer_signs_in_adds_domain_mailbox_record_in_chromium() -> Result<()> {
    let cp = Controller::start().await?;
    for role in ["web", "dns", "mail", "files", "db"] {
        cp.admin(
            reqwest::Method::POST,
            "/v1/clusters",
            json!({"name": format!("{role}-1"), "role": role, "default": true}),
        )
        .await?;
    }
    cp.admin(
        reqwest::Method::POST,
        "/v1/customers",
        json!({"name": "root2", "kind": "admin", "password": "root2-password-1"}),
    )
    .await?;
    for name in ["alice", "bob"] {
        cp.admin(
            reqwest::Method::POST,
            "/v1/customers",
            json!({"name": name, "password": format!("{name}-password-1")}),
        )
        .await?;
    }
    cp.admin(
        reqwest::Method::POST,
        "/v1/domains",
        json!({"name": "bob-garden.com", "customer": "bob"}),
    )
    .await?;
    cp.admin(
        reqwest::Method::POST,
        "/v1/sites",
        json!({"domain": "bob-garden.com"}),
    )
    .await?;

    let driver = Driver::start()?;
    let profile = tempfile::tempdir()?;
    eprintln!("browser: WebDriver session");
    let c = driver.connect(profile.path()).await?;
    let outcome = browse(&cp, &c).await;
    let _ = c.close().await;
    drop(driver);
    outcome?;

    http_checks(&cp).await?;
    cp.stop().await
}

/// Everything a person does, in Chromium.
async fn browse(cp: &Controller, c: &Client) -> Result<()> {
    eprintln!("browser: open the panel");
    // Not signed in: the dashboard sends us to the form.
    c.goto(&format!("{}/", cp.url)).await?;
    wait_id(c, "password").await?;
    shoot(c, "login").await?;
    fill(c, "account", "alice").await?;
    fill(c, "password", "wrong-password-1").await?;
    click(c, "form[action='/login'] button").await?;
    wait_id(c, "login-error").await?;
    fill(c, "password", "alice-password-1").await?;
    click(c, "form[action='/login'] button").await?;
    wait_text(c, "usage", "Domains").await?;
    shoot(c, "dashboard").await?;

    // A domain: first a name the API refuses, its error next to the field.
    c.goto(&format!("{}/domains", cp.url)).await?;
    fill(c, "domain-name", "not a domain").await?;
    click(c, "#add-domain button").await?;
    wait_id(c, "name-error").await?;
    shoot(c, "domains-error").await?;
    fill(c, "domain-name", "alice-shop.com").await?;
    click(c, "#add-domain button").await?;
    wait_text(c, "domains", "alice-shop.com").await?;
    shoot(c, "domains").await?;

    // Its page: a mailbox and a record.
    click(c, "#domains a[href='/domains/alice-shop.com']").await?;
    wait_id(c, "add-mailbox").await?;
    fill(c, "mb-local", "info").await?;
    fill(c, "mb-password", "mailbox-password-1").await?;
    click(c, "#add-mailbox button").await?;
    wait_text(c, "mailboxes", "info@alice-shop.com").await?;
    fill(c, "rr-name", "www").await?;
    fill(c, "rr-value", "300.1.2.3").await?;
    click(c, "#add-record button").await?;
    wait_id(c, "rr-value-error").await?;
    fill(c, "rr-value", "192.0.2.10").await?;
    click(c, "#add-record button").await?;
    wait_text(c, "records", "192.0.2.10").await?;
    shoot(c, "domain").await?;

    // Listed on reload too (not only in the answer to the form).
    c.goto(&format!("{}/domains/alice-shop.com", cp.url))
        .await?;
    wait_text(c, "mailboxes", "info@alice-shop.com").await?;
    wait_text(c, "records", "192.0.2.10").await?;

    mail(cp, c).await?;
    sites(cp, c).await?;
    data_pages(cp, c).await?;

    // Bob's domain by URL: the API's 404.
    c.goto(&format!("{}/domains/bob-garden.com", cp.url))
        .await?;
    let h1 = c.find(Locator::Css("main h1")).await?.text().await?;
    if h1 != "Not found" {
        bail!("bob's domain shown to alice: {h1}");
    }
    shoot(c, "not-found").await?;

    // Sign out: back to the form; the dashboard is no longer ours.
    c.goto(&format!("{}/", cp.url)).await?;
    click(c, ".signout button").await?;
    wait_id(c, "password").await?;
    c.goto(&format!("{}/domains", cp.url)).await?;
    wait_id(c, "password").await?;

    admin_pages(cp, c).await
}

/// Databases, users and FTP accounts (passwords generated and shown once), the
/// audit log and notifications.
async fn data_pages(cp: &Controller, c: &Client) -> Result<()> {
    c.goto(&format!("{}/databases", cp.url)).await?;
    wait_id(c, "add-db").await?;
    fill(c, "db-name", "Shop-DB").await?;
    click(c, "#add-db button").await?;
    wait_id(c, "db-name-error").await?;
    fill(c, "db-name", "shop").await?;
    click(c, "#add-db button").await?;
    wait_text(c, "databases", "shop").await?;
    fill(c, "u-name", "shop_rw").await?;
    fill(c, "u-dbs", "shop").await?;
    click(c, "#add-user button").await?;
    wait_id(c, "generated").await?;
    wait_text(c, "db-users", "shop_rw").await?;
    shoot(c, "databases").await?;

    c.goto(&format!("{}/ftp", cp.url)).await?;
    wait_id(c, "add-ftp").await?;
    fill(c, "ftp-username", "alice-deploy").await?;
    fill(c, "ftp-domain", "alice-shop.com").await?;
    fill(c, "ftp-quota", "lots").await?;
    click(c, "#add-ftp button").await?;
    wait_id(c, "ftp-quota-error").await?;
    fill(c, "ftp-quota", "").await?;
    click(c, "#add-ftp button").await?;
    wait_id(c, "generated").await?;
    wait_text(c, "ftp-accounts", "alice-deploy").await?;
    shoot(c, "ftp").await?;

    c.goto(&format!("{}/audit", cp.url)).await?;
    wait_text(c, "events", "alice-shop.com").await?;
    shoot(c, "audit").await?;
    c.goto(&format!("{}/notifications", cp.url)).await?;
    wait_id(c, "notices").await?;
    shoot(c, "notifications").await?;
    // A customer has no accounts to manage and no platform page.
    c.goto(&format!("{}/platform", cp.url)).await?;
    let h1 = c.find(Locator::Css("main h1")).await?.text().await?;
    if h1 == "Platform" {
        bail!("a customer sees the platform page");
    }
    Ok(())
}

/// An admin: accounts (a plan assigned), plans (one added), the platform (a
/// join token shown once).
async fn admin_pages(cp: &Controller, c: &Client) -> Result<()> {
    fill(c, "account", "root2").await?;
    fill(c, "password", "root2-password-1").await?;
    click(c, "form[action='/login'] button").await?;
    wait_text(c, "usage", "Domains").await?;

    c.goto(&format!("{}/plans", cp.url)).await?;
    wait_id(c, "add-plan").await?;
    fill(c, "pl-name", "small").await?;
    let e = c
        .find(Locator::Css("#add-plan input[name='limit.max_domains']"))
        .await?;
    e.send_keys("3").await?;
    click(c, "#add-plan button").await?;
    wait_text(c, "plans", "small").await?;
    shoot(c, "plans").await?;

    c.goto(&format!("{}/customers", cp.url)).await?;
    wait_text(c, "accounts", "bob").await?;
    fill(c, "ac-name", "Carol").await?;
    click(c, "#add-account button").await?;
    wait_id(c, "ac-name-error").await?;
    fill(c, "ac-name", "carol").await?;
    click(c, "#add-account button").await?;
    wait_text(c, "accounts", "carol").await?;
    shoot(c, "customers").await?;

    c.goto(&format!("{}/platform", cp.url)).await?;
    wait_id(c, "add-join-token").await?;
    click(c, "#add-join-token button").await?;
    wait_id(c, "join-token").await?;
    let shown = c.find(Locator::Id("join-token")).await?.text().await?;
    if !shown.contains("Join token for web-1: hpj_") {
        bail!("the join token notice says: {shown}");
    }
    wait_text(c, "join-tokens", "web-1").await?;
    shoot(c, "platform").await?;
    c.goto(&format!("{}/platform", cp.url)).await?;
    wait_id(c, "add-join-token").await?;
    if c.find(Locator::Id("join-token")).await.is_ok() {
        bail!("the join token is shown again");
    }
    Ok(())
}

/// The mail page: an alias and forward (after a destination the API refuses),
/// a mailbox's new password generated and shown once.
async fn mail(cp: &Controller, c: &Client) -> Result<()> {
    click(c, "#mail-link").await?;
    wait_id(c, "add-alias").await?;
    fill(c, "al-local", "sales").await?;
    fill(c, "al-dests", "info@alice-shop.com\nnot an address").await?;
    click(c, "#add-alias button").await?;
    wait_id(c, "al-dests-error").await?;
    fill(c, "al-dests", "info@alice-shop.com\nboss@example.org").await?;
    click(c, "#add-alias button").await?;
    wait_text(c, "aliases", "boss@example.org").await?;
    // The mailbox: a generated password, shown once.
    click(c, "#mailboxes summary").await?;
    click(c, ".mb-edit input[value='generate']").await?;
    click(c, ".mb-edit button").await?;
    wait_id(c, "generated").await?;
    shoot(c, "mail").await?;
    c.goto(&format!("{}/mail/alice-shop.com", cp.url)).await?;
    wait_id(c, "add-alias").await?;
    if c.find(Locator::Id("generated")).await.is_ok() {
        bail!("the generated password is shown again");
    }
    c.goto(&format!("{}/mail/bob-garden.com", cp.url)).await?;
    let h1 = c.find(Locator::Css("main h1")).await?.text().await?;
    if h1 != "Not found" {
        bail!("bob's mail shown to alice: {h1}");
    }
    c.goto(&format!("{}/domains/alice-shop.com", cp.url))
        .await?;
    wait_id(c, "add-mailbox").await?;
    Ok(())
}

fn zip_of(entries: &[(&str, &[u8])]) -> Result<Vec<u8>> {
    use std::io::Write as _;
    let mut w = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let opts = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated);
    for (name, data) in entries {
        w.start_file(*name, opts)?;
        w.write_all(data)?;
    }
    Ok(w.finish()?.into_inner())
}

/// The sites pages: add a site, change its settings (after an alias the API
/// refuses), a cron job added (after a bad schedule) and deleted, a release
/// uploaded as a zip (after a zip-slip archive the API refuses), the logs page.
async fn sites(cp: &Controller, c: &Client) -> Result<()> {
    let files = tempfile::tempdir()?;
    let evil = files.path().join("evil.zip");
    std::fs::write(
        &evil,
        zip_of(&[("../../etc/cron.d/evil", b"* * * * * root id")])?,
    )?;
    let good = files.path().join("site.zip");
    std::fs::write(
        &good,
        zip_of(&[("public/index.html", b"<h1>alice's shop</h1>")])?,
    )?;

    c.goto(&format!("{}/sites", cp.url)).await?;
    wait_id(c, "add-site").await?;
    fill(c, "site-domain", "alice-shop.com").await?;
    click(c, "#add-site input[name='php']").await?;
    click(c, "#add-site button").await?;
    wait_id(c, "site-settings").await?;

    // Settings: an alias outside alice's domains, its error at the field; then one
    // inside, and a document root.
    fill(c, "set-aliases", "www.bob-garden.com").await?;
    click(c, "#site-settings button").await?;
    wait_id(c, "aliases-error").await?;
    shoot(c, "site-error").await?;
    fill(c, "set-aliases", "www.alice-shop.com").await?;
    fill(c, "set-docroot", "public").await?;
    click(c, "#site-settings button").await?;
    wait_id(c, "notice").await?;
    c.goto(&format!("{}/sites", cp.url)).await?;
    wait_text(c, "sites", "www.alice-shop.com").await?;
    shoot(c, "sites").await?;
    c.goto(&format!("{}/sites/alice-shop.com", cp.url)).await?;
    let docroot = c
        .find(Locator::Id("set-docroot"))
        .await?
        .prop("value")
        .await?;
    if docroot.as_deref() != Some("public") {
        bail!("document root not saved: {docroot:?}");
    }

    // A cron job: a bad schedule first.
    fill(c, "cron-schedule", "every minute").await?;
    fill(c, "cron-command", "GET /cron.php").await?;
    click(c, "#add-cron button").await?;
    wait_id(c, "schedule-error").await?;
    fill(c, "cron-schedule", "*/5 * * * *").await?;
    click(c, "#add-cron button").await?;
    wait_text(c, "cron-jobs", "/cron.php").await?;

    // A release: the zip-slip archive is refused at its field, the good one kept.
    let input = c.find(Locator::Id("release-archive")).await?;
    input.send_keys(&evil.display().to_string()).await?;
    click(c, "#upload-release button").await?;
    wait_id(c, "archive-error").await?;
    let e = c.find(Locator::Id("archive-error")).await?.text().await?;
    if !e.contains("zip-slip") {
        bail!("the zip-slip refusal says: {e}");
    }
    let input = c.find(Locator::Id("release-archive")).await?;
    input.send_keys(&good.display().to_string()).await?;
    click(c, "#upload-release button").await?;
    wait_id(c, "notice").await?;
    wait_text(c, "releases", "KiB").await?;
    shoot(c, "site").await?;

    // The job deleted.
    click(c, "#cron-jobs button.danger").await?;
    wait_text(c, "cron-jobs", "No cron jobs.").await?;

    click(c, "#logs-link").await?;
    wait_id(c, "log-kind").await?;
    shoot(c, "site-logs").await?;

    // Bob's site by URL: the API's 404.
    c.goto(&format!("{}/sites/bob-garden.com", cp.url)).await?;
    let h1 = c.find(Locator::Css("main h1")).await?.text().await?;
    if h1 != "Not found" {
        bail!("bob's site shown to alice: {h1}");
    }
    Ok(())
}

/// What plain HTTPS sees: headers, statuses, CSRF refusals, sign-out revoking.
async fn http_checks(cp: &Controller) -> Result<()> {
    use reqwest::StatusCode;
    let anon = cp.http()?;
    let login = anon.get(format!("{}/login", cp.url)).send().await?;
    let csp = login
        .headers()
        .get("content-security-policy")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    assert!(csp.starts_with("default-src 'self'"), "{csp}");
    assert!(
        !csp.contains("unsafe-inline") && !csp.contains("unsafe-eval"),
        "{csp}"
    );
    // The API is still there beside the panel.
    let api = anon
        .get(format!("{}/v1/auth/whoami", cp.url))
        .send()
        .await?;
    assert_eq!(api.status(), StatusCode::UNAUTHORIZED);
    // The sign-in form without its token.
    let res = anon
        .post(format!("{}/login", cp.url))
        .form(&[("account", "alice"), ("password", "alice-password-1")])
        .send()
        .await?;
    assert_eq!(res.status(), StatusCode::FORBIDDEN);

    let before = panel_tokens(cp, "alice").await?;
    let (http, csrf) = sign_in_http(cp, "alice", "alice-password-1").await?;
    assert_eq!(panel_tokens(cp, "alice").await?, before + 1);
    let cookie_set = http.get(format!("{}/", cp.url)).send().await?;
    assert_eq!(cookie_set.status(), StatusCode::OK);
    // Another customer's domain: 404, as the API says.
    let res = http
        .get(format!("{}/domains/bob-garden.com", cp.url))
        .send()
        .await?;
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
    // A POST without the CSRF token, or with another, is refused and changes nothing.
    for form in [
        vec![("name", "csrf-less.com")],
        vec![("name", "csrf-less.com"), ("csrf", "forged")],
    ] {
        let res = http
            .post(format!("{}/domains", cp.url))
            .form(&form)
            .send()
            .await?;
        assert_eq!(res.status(), StatusCode::FORBIDDEN);
    }
    // A file upload without the token in its URL, or with another.
    for url in ["release", "release?csrf=forged"] {
        let mut body = b"--hp-test\r\nContent-Disposition: form-data; name=\"archive\"; filename=\"a.zip\"\r\nContent-Type: application/zip\r\n\r\n".to_vec();
        body.extend(zip_of(&[("index.html", b"x")])?);
        body.extend_from_slice(b"\r\n--hp-test--\r\n");
        let res = http
            .post(format!("{}/sites/alice-shop.com/{url}", cp.url))
            .header("content-type", "multipart/form-data; boundary=hp-test")
            .body(body)
            .send()
            .await?;
        assert_eq!(res.status(), StatusCode::FORBIDDEN);
    }
    let list = http
        .get(format!("{}/domains", cp.url))
        .send()
        .await?
        .text()
        .await?;
    assert!(!list.contains("csrf-less.com"));
    // With it: added (303 back to the list).
    let res = http
        .post(format!("{}/domains", cp.url))
        .form(&[("name", "alice-two.com"), ("csrf", csrf.as_str())])
        .send()
        .await?;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    // An API validation error: 422 with the message at the field.
    let res = http
        .post(format!("{}/domains", cp.url))
        .form(&[("name", "-bad-.com"), ("csrf", csrf.as_str())])
        .send()
        .await?;
    assert_eq!(res.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(res.text().await?.contains("id=\"name-error\""));
    // Sign-out revokes the session's token and ends the session.
    let res = http
        .post(format!("{}/logout", cp.url))
        .form(&[("csrf", csrf.as_str())])
        .send()
        .await?;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    assert_eq!(panel_tokens(cp, "alice").await?, before);
    let res = http.get(format!("{}/", cp.url)).send().await?;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    Ok(())
}
