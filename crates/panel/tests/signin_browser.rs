//! Sign-in security in a real browser (Debian's Chromium over WebDriver): a
//! customer turns on TOTP two-factor from the account page (the test reads the
//! secret the page shows and computes the codes, RFC 6238), signs in with a code,
//! with a recovery code (once), and is refused without one; a reseller acts as
//! its customer (banner, a change audited under both names, stop), and is
//! refused for another reseller's customer.

mod common;

use anyhow::{bail, Context, Result};
use common::{click, fill, shoot, wait_id, wait_text, Controller, Driver};
use fantoccini::{Client, Locator};
use reqwest::Method;
use serde_json::{json, Value};

fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn totp_recovery_and_impersonation_in_chromium() -> Result<()> {
    let cp = Controller::start().await?;
    for role in ["web", "dns", "mail", "files", "db"] {
        cp.admin(
            Method::POST,
            "/v1/clusters",
            json!({"name": format!("{role}-1"), "role": role, "default": true}),
        )
        .await?;
    }
    for (name, body) in [
        ("alice", json!({})),
        ("res-one", json!({"kind": "reseller"})),
        ("res-two", json!({"kind": "reseller"})),
        ("carol", json!({"reseller": "res-one"})),
        ("dave", json!({"reseller": "res-two"})),
    ] {
        let mut b = body;
        b["name"] = json!(name);
        b["password"] = json!(format!("{name}-password-1"));
        cp.admin(Method::POST, "/v1/customers", b).await?;
    }

    let driver = Driver::start()?;
    let profile = tempfile::tempdir()?;
    let c = driver.connect(profile.path()).await?;
    let outcome = async {
        two_factor(&cp, &c).await?;
        acting_as(&cp, &c).await
    }
    .await;
    let _ = c.close().await;
    drop(driver);
    outcome?;

    // The audit log holds the change under both names.
    let events = cp
        .admin(Method::GET, "/v1/events?limit=1000", Value::Null)
        .await?;
    let found = events["items"].as_array().is_some_and(|items| {
        items.iter().any(|e| {
            e["actor"] == "res-one as carol"
                && e["kind"] == "domain"
                && e["object"] == "carol-shop.com"
        })
    });
    if !found {
        bail!("no audit entry `res-one as carol` for carol-shop.com: {events}");
    }
    cp.stop().await
}

async fn sign_in(c: &Client, cp: &Controller, account: &str, code: Option<&str>) -> Result<()> {
    c.goto(&format!("{}/login", cp.url)).await?;
    wait_id(c, "password").await?;
    fill(c, "account", account).await?;
    fill(c, "password", &format!("{account}-password-1")).await?;
    if let Some(code) = code {
        fill(c, "code", code).await?;
    }
    click(c, "form[action='/login'] button").await
}

async fn sign_out(c: &Client, cp: &Controller) -> Result<()> {
    c.goto(&format!("{}/", cp.url)).await?;
    click(c, ".signout button").await?;
    wait_id(c, "password").await
}

async fn text_of(c: &Client, id: &str) -> Result<String> {
    Ok(c.find(Locator::Id(id)).await?.text().await?)
}

/// Alice turns two-factor on and signs in with it.
async fn two_factor(cp: &Controller, c: &Client) -> Result<()> {
    sign_in(c, cp, "alice", None).await?;
    wait_text(c, "usage", "Domains").await?;
    c.goto(&format!("{}/account", cp.url)).await?;
    wait_id(c, "totp-enroll").await?;
    click(c, "#totp-enroll button").await?;
    wait_id(c, "totp-qr").await?;
    // The QR code is inline SVG (the page's CSP allows no inline styles).
    c.find(Locator::Css("#totp-qr svg")).await?;
    shoot(c, "account-totp-enrol").await?;
    let secret = text_of(c, "totp-secret").await?;
    let step = controller::totp::step_of(unix_now());
    let code = controller::totp::code_at(&secret, step).context("secret not base32")?;
    fill(c, "confirm-code", &code).await?;
    click(c, "#totp-confirm button").await?;
    wait_id(c, "recovery-codes").await?;
    shoot(c, "account-recovery-codes").await?;
    let codes: Vec<String> = {
        let mut v = Vec::new();
        for e in c.find_all(Locator::Css("#recovery-codes code")).await? {
            v.push(e.text().await?);
        }
        v
    };
    if codes.len() != 10 {
        bail!("{} recovery codes shown", codes.len());
    }
    sign_out(c, cp).await?;

    // The password alone: refused, the error at the code field.
    sign_in(c, cp, "alice", None).await?;
    wait_id(c, "code-error").await?;
    shoot(c, "login-code-needed").await?;
    // With the authenticator's next code (one step of drift is accepted; the
    // confirming code was used).
    let next = controller::totp::code_at(&secret, controller::totp::step_of(unix_now()) + 1)
        .context("code")?;
    sign_in(c, cp, "alice", Some(&next)).await?;
    wait_text(c, "usage", "Domains").await?;
    sign_out(c, cp).await?;

    // A recovery code works once.
    sign_in(c, cp, "alice", Some(&codes[0])).await?;
    wait_text(c, "usage", "Domains").await?;
    c.goto(&format!("{}/account", cp.url)).await?;
    wait_id(c, "totp-state").await?;
    let state = text_of(c, "totp-state").await?;
    if !state.contains("9 recovery code") {
        bail!("after one recovery code: {state}");
    }
    sign_out(c, cp).await?;
    sign_in(c, cp, "alice", Some(&codes[0])).await?;
    wait_id(c, "code-error").await?;
    Ok(())
}

/// A reseller acts as its customer and stops.
async fn acting_as(cp: &Controller, c: &Client) -> Result<()> {
    sign_in(c, cp, "res-one", None).await?;
    wait_text(c, "usage", "Domains").await?;
    c.goto(&format!("{}/account", cp.url)).await?;
    wait_id(c, "act-as").await?;
    // Another reseller's customer: the API's answer, at the field.
    fill(c, "act-account", "dave").await?;
    click(c, "#act-as button").await?;
    wait_id(c, "act-account-error").await?;
    fill(c, "act-account", "carol").await?;
    click(c, "#act-as button").await?;
    wait_id(c, "acting-banner").await?;
    let banner = text_of(c, "acting-banner").await?;
    if !banner.contains("Acting as carol (you are res-one)") {
        bail!("banner: {banner}");
    }
    c.goto(&format!("{}/domains", cp.url)).await?;
    fill(c, "domain-name", "carol-shop.com").await?;
    click(c, "#add-domain button").await?;
    wait_text(c, "domains", "carol-shop.com").await?;
    shoot(c, "acting-as-customer").await?;
    click(c, "#acting-banner button").await?;
    wait_text(c, "usage", "Domains").await?;
    if c.find(Locator::Id("acting-banner")).await.is_ok() {
        bail!("still acting after stop");
    }
    let who = c.find(Locator::Css(".who")).await?.text().await?;
    if !who.starts_with("res-one") {
        bail!("back as {who}");
    }
    sign_out(c, cp).await
}
