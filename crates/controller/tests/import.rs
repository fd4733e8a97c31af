//! `POST /v1/import` against a real controller: the API's rules hold for lines that
//! refer to each other inside a chunk, across chunks and against objects made
//! through the API (plan limits, name ownership, host names and mail addresses
//! unique across kinds, DNS coexistence, alias domains); a dry run writes nothing;
//! a re-run skips what exists identically and refuses what differs.

#![allow(clippy::unwrap_used)]

mod common;

use common::{customer, default_clusters, expect, import, Server};
use serde_json::{json, Value};

#[tokio::test]
async fn import_keeps_the_api_rules_within_and_across_chunks() {
    let srv = Server::start().await;
    let admin = srv.admin();
    default_clusters(&admin).await;
    admin
        .post(
            "/v1/plans",
            json!({"name": "small", "limits": {"max_domains": 2, "max_mailboxes": 2}}),
        )
        .await
        .expect(201);
    let holder = customer(&srv, &admin, "holder", json!({})).await;
    holder
        .post("/v1/domains", json!({"name": "held.example"}))
        .await
        .expect(201);

    let h = "$6$importsalt$AXBNZ21WZ1ioXznwBfzTGB6bKPszakwuIE8srn9m2k1Ea6URlNWWAWd1niZ/4eidZlWfwQB3gAdMLtn/zgdYx/";
    let chunk1 = vec![
        json!({"kind": "customer", "name": "imp", "plan": "small"}),
        json!({"kind": "domain", "name": "imp-a.example", "customer": "imp"}),
        json!({"kind": "domain", "name": "imp-b.example", "customer": "imp"}),
        // 4: over the plan's two domains.
        json!({"kind": "domain", "name": "imp-c.example", "customer": "imp"}),
        // 5: a name under a registrable domain another account holds.
        json!({"kind": "domain", "name": "shop.held.example", "customer": "imp"}),
        json!({"kind": "site", "domain": "imp-a.example", "aliases": ["www.imp-a.example", "x.imp-b.example"]}),
        // 7: a host name the site of line 6 serves.
        json!({"kind": "site", "domain": "imp-b.example", "aliases": ["www.imp-a.example"]}),
        // 8: an alias outside the customer's domains.
        json!({"kind": "site", "domain": "imp-b.example", "aliases": ["www.held.example"]}),
        json!({"kind": "mailbox", "address": "info@imp-a.example", "password_hash": h}),
        // 10: the address is a mailbox already (line 9).
        json!({"kind": "alias", "address": "info@imp-a.example", "destinations": ["x@elsewhere.example"]}),
        json!({"kind": "dns_record", "domain": "imp-a.example", "name": "txt", "data": {"type": "TXT", "text": "one"}}),
        // 12: the same record again: skipped.
        json!({"kind": "dns_record", "domain": "imp-a.example", "name": "txt", "data": {"type": "TXT", "text": "one"}}),
        // 13: a CNAME beside the TXT of line 11.
        json!({"kind": "dns_record", "domain": "imp-a.example", "name": "txt", "data": {"type": "CNAME", "target": "elsewhere.example."}}),
        // 14: refers to the refused domain of line 4.
        json!({"kind": "mailbox", "address": "a@imp-c.example", "password_hash": h}),
    ];

    // A dry run sees lines refer to each other and writes nothing.
    let dry = import(&admin, &chunk1, 1, true).await;
    assert_eq!(dry["dry_run"], true);
    let check = |r: &Value| {
        for n in [1, 2, 3, 6, 9, 11] {
            expect(r, n, "created", "");
        }
        expect(r, 4, "refused", "max_domains");
        expect(r, 5, "refused", "namespace_owned");
        expect(r, 7, "refused", "www.imp-a.example");
        expect(r, 8, "refused", "not_in_own_domain");
        expect(r, 10, "refused", "already a mailbox");
        expect(r, 12, "skipped", "");
        expect(r, 13, "refused", "");
        expect(r, 14, "refused", "unknown_domain");
    };
    check(&dry);
    admin.get("/v1/customers/imp").await.expect(404);

    let done = import(&admin, &chunk1, 1, false).await;
    check(&done);
    assert_eq!(done["created"], 6, "{done}");
    let d = admin.get("/v1/domains/imp-b.example").await.expect(200);
    assert_eq!(d["customer"], "imp");
    let s = admin.get("/v1/sites/imp-a.example").await.expect(200);
    assert_eq!(
        s["aliases"],
        json!(["www.imp-a.example", "x.imp-b.example"]),
        "{s}"
    );
    let recs = admin.list_all("/v1/dns-records").await;
    assert_eq!(
        recs.iter()
            .filter(|r| r["domain"] == "imp-a.example")
            .count(),
        1,
        "{recs:?}"
    );

    // The next chunk sees the committed one: counts, addresses, host names.
    let chunk2 = vec![
        json!({"kind": "domain", "name": "imp-d.example", "customer": "imp"}),
        json!({"kind": "mailbox", "address": "sales@imp-b.example", "password_hash": h}),
        json!({"kind": "mailbox", "address": "third@imp-b.example", "password_hash": h}),
        json!({"kind": "alias", "address": "info@imp-b.example", "destinations": ["info@imp-a.example"]}),
        json!({"kind": "site", "domain": "imp-b.example", "aliases": ["x.imp-b.example"]}),
        json!({"kind": "ftp_account", "username": "imp-ftp", "domain": "imp-a.example", "password_hash": h}),
    ];
    let r2 = import(&admin, &chunk2, 100, false).await;
    expect(&r2, 100, "refused", "max_domains");
    expect(&r2, 101, "created", "");
    expect(&r2, 102, "refused", "max_mailboxes");
    expect(&r2, 103, "created", "");
    expect(&r2, 104, "refused", "x.imp-b.example");
    expect(&r2, 105, "created", "");

    // A re-run resumes: identical lines are skipped, changed ones refused with the
    // difference, and nothing is written twice.
    let mut again = chunk1.clone();
    again[5] = json!({"kind": "site", "domain": "imp-a.example", "aliases": ["www.imp-a.example", "x.imp-b.example"], "php": true});
    let r3 = import(&admin, &again, 1, false).await;
    assert_eq!(r3["created"], 0, "{r3}");
    for n in [1, 2, 3, 9, 11, 12] {
        expect(&r3, n, "skipped", "");
    }
    expect(&r3, 6, "refused", "php: stored `false`, file `true`");
    let recs = admin.list_all("/v1/dns-records").await;
    assert_eq!(
        recs.iter()
            .filter(|r| r["domain"] == "imp-a.example")
            .count(),
        1,
        "{recs:?}"
    );
    let events = admin.list_all("/v1/events").await;
    for kind in ["domain", "site"] {
        let creates = events
            .iter()
            .filter(|e| {
                e["action"] == "create" && e["kind"] == kind && e["object"] == "imp-a.example"
            })
            .count();
        assert_eq!(creates, 1, "one create event for the {kind}: {events:?}");
    }
}

/// Site lines take the web settings of `PATCH /v1/sites/{domain}` (document root,
/// HSTS, `php.ini` values, kept and local paths) under the same rules: a bad
/// value refuses the line naming the field, a plan ceiling holds, and a re-run
/// refuses a line whose settings differ from the stored site.
#[tokio::test]
async fn site_lines_take_the_web_settings_under_the_api_rules() {
    let srv = Server::start().await;
    let admin = srv.admin();
    default_clusters(&admin).await;
    let lines = vec![
        json!({"kind": "customer", "name": "web"}),
        json!({"kind": "domain", "name": "fw.example", "customer": "web"}),
        json!({"kind": "domain", "name": "bad1.example", "customer": "web"}),
        json!({"kind": "domain", "name": "bad2.example", "customer": "web"}),
        json!({"kind": "domain", "name": "bad3.example", "customer": "web"}),
        json!({"kind": "domain", "name": "bad4.example", "customer": "web"}),
        // 7: a framework site served from `public`, with PHP values and paths.
        json!({"kind": "site", "domain": "fw.example", "php": true, "docroot": "public/",
               "hsts": true, "php_set": {"memory_limit": "256M", "date.timezone": "Europe/Berlin"},
               "keep": ["storage"], "local": ["storage/framework/cache"]}),
        // 8: a document root outside the tree.
        json!({"kind": "site", "domain": "bad1.example", "docroot": "../etc"}),
        // 9: over the plan's memory ceiling (512M by default).
        json!({"kind": "site", "domain": "bad2.example", "php_set": {"memory_limit": "4G"}}),
        // 10: a setting no site may change.
        json!({"kind": "site", "domain": "bad3.example", "php_set": {"allow_url_include": "On"}}),
        // 11: a PHP version no web server reported.
        json!({"kind": "site", "domain": "bad4.example", "php_version": "5.6"}),
    ];
    let report = import(&admin, &lines, 1, false).await;
    expect(&report, 7, "created", "");
    expect(&report, 8, "refused", "docroot");
    expect(&report, 9, "refused", "php_set.memory_limit");
    expect(&report, 10, "refused", "php_set.allow_url_include");
    expect(&report, 11, "refused", "php_version");
    for bad in ["bad1", "bad2", "bad3", "bad4"] {
        admin
            .get(&format!("/v1/sites/{bad}.example"))
            .await
            .expect(404);
    }

    let s = admin.get("/v1/sites/fw.example").await.expect(200);
    assert_eq!(s["docroot"], "public", "{s}");
    assert_eq!(s["hsts"], true, "{s}");
    assert_eq!(s["php_ini"]["memory_limit"], "256M", "{s}");
    assert_eq!(s["php_ini"]["date.timezone"], "Europe/Berlin", "{s}");
    assert_eq!(s["keep"], json!(["storage"]), "{s}");
    assert_eq!(s["local"], json!(["storage/framework/cache"]), "{s}");

    // A re-run of the same line skips it; one with another document root is
    // refused with the difference shown, and nothing changes.
    let again = import(&admin, &lines[..7], 1, false).await;
    expect(&again, 7, "skipped", "");
    let mut changed = lines[..7].to_vec();
    changed[6]["docroot"] = json!("web");
    let report = import(&admin, &changed, 1, false).await;
    expect(
        &report,
        7,
        "refused",
        "docroot: stored `public`, file `web`",
    );
    let s = admin.get("/v1/sites/fw.example").await.expect(200);
    assert_eq!(s["docroot"], "public", "{s}");
}
