//! `hostplane site logs` end to end (issue 15 point 6): a controller, a files server
//! and two web servers as real processes, an `all` PHP site; requests through each
//! web server and a PHP warning; the CLI merges both servers' access, error and PHP
//! lines in time order, each marked with its server, filters by log and time, and
//! another customer gets 404 for the site's logs.

#![allow(clippy::unwrap_used)]

mod sitefiles_kit;

use sitefiles_kit::{Site, DOMAIN};

#[tokio::test]
async fn site_logs_merge_every_web_server_in_time_order() {
    let s = Site::start(0).await;
    assert_eq!(s.get("w1", "/seen-on-w1").0, 404);
    assert_eq!(s.get("w2", "/seen-on-w2").0, 404);
    // A PHP warning (unlink of a missing file) on w2.
    assert!(s.php("w2", "op=unlink&p=no-such-file").is_err());

    // Lines reach the files within a moment (the writer batches).
    let mut out = String::new();
    s.wait("both servers' lines", 15, || {
        out = s.cli_ok(&["site", "logs", DOMAIN]);
        out.contains("/seen-on-w1") && out.contains("/seen-on-w2") && out.contains("PHP Warning")
    })
    .await;
    let lines: Vec<&str> = out.lines().collect();
    let w1 = lines.iter().find(|l| l.contains("/seen-on-w1")).unwrap();
    let w2 = lines.iter().find(|l| l.contains("/seen-on-w2")).unwrap();
    let php = lines.iter().find(|l| l.contains("PHP Warning")).unwrap();
    assert!(w1.contains(" w1 access "), "{w1}");
    assert!(w2.contains(" w2 access "), "{w2}");
    assert!(php.contains(" w2 php "), "{php}");
    // Time order: the first column is RFC 3339 and sorts as text.
    let times: Vec<&str> = lines.iter().map(|l| l.split(' ').next().unwrap()).collect();
    let mut sorted = times.clone();
    sorted.sort();
    assert_eq!(times, sorted, "{out}");

    // --error: engine errors and PHP only.
    let errors = s.cli_ok(&["site", "logs", DOMAIN, "--error", "--since", "1h"]);
    assert!(errors.contains("PHP Warning:  unlink("), "{errors}");
    assert!(!errors.contains(" access "), "{errors}");

    // --json: every line with its server and kind; both servers answered.
    let json: serde_json::Value =
        serde_json::from_str(&s.cli_ok(&["--json", "site", "logs", DOMAIN, "--access", "-n", "5"]))
            .unwrap();
    assert!(json["lines"].as_array().unwrap().len() <= 5);
    assert!(json["lines"]
        .as_array()
        .unwrap()
        .iter()
        .all(|l| l["kind"] == "access"));
    let servers = json["servers"].as_array().unwrap();
    assert_eq!(servers.len(), 2, "{json}");
    assert!(servers.iter().all(|s| s["answered"] == true), "{json}");

    // Bad input names the field; another customer's request is a 404.
    let bad = s.cli(&["site", "logs", DOMAIN, "--since", "yesterday"]);
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("since"));
    s.c.add_customer("other").await.unwrap();
    let token = s.c.api_token_for("other").await.unwrap();
    let r =
        s.c.http()
            .get(format!("{}/v1/sites/{DOMAIN}/logs", s.c.url()))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
    assert_eq!(r.status().as_u16(), 404);
}
