//! Where the builder's memory goes at scale (issue 13 point 4): a world shaped like
//! `bench-propagation`'s (10 web clusters of 5 servers; DNS, mail and files
//! clusters without servers; every domain with a site, a certificate, a DKIM key,
//! a site mail secret and a mailbox) filled kind by kind, the resident set measured
//! after each step. Ignored by default (it takes a while in a debug build):
//!
//! ```text
//! HP_MEM_DOMAINS=20000 cargo test -p controller --lib tests_mem -- --ignored --nocapture
//! ```
//!
//! Figures are the test binary's (glibc malloc), so within ~10% of the
//! controller's (mimalloc); the per-object split is what they are for.

use super::tests::{cluster, domain, secret, server, site, stored, TODAY};
use super::*;
use crate::configs::ConfigHub;
use model::entity::{Mailbox, SecretPurpose};
use model::{LocalPart, PlacementMode, Role};

/// Resident set of this process, in bytes.
fn rss() -> i64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: i64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .unwrap_or(0);
    pages * 4096
}

/// A PEM-shaped string of `len` characters, different for each `i`.
fn pem(kind: &str, i: usize, len: usize) -> String {
    let head = format!("-----BEGIN {kind}-----\n{i:08}");
    let mut s = head;
    while s.len() < len - 30 {
        s.push_str("MIIBszCCAVmgAwIBAgIUQ");
    }
    s.truncate(len - 30);
    s.push_str(&format!("\n-----END {kind}-----\n"));
    s
}

#[test]
#[ignore = "a measurement: run with --ignored --nocapture"]
fn memory_per_object() {
    let n: usize = std::env::var("HP_MEM_DOMAINS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20_000);
    let (webs, per) = (10_i64, 5_i64);
    let (dns, mail, files) = (11, 12, 13);
    let mut rows: Vec<(String, i64, usize)> = Vec::new();
    let mut last = rss();
    let mut step = |what: &str, count: usize| {
        let now = rss();
        rows.push((what.to_owned(), now - last, count));
        last = now;
    };

    let mut w = World::default();
    for c in 1..=webs {
        w.upsert(Obj::Cluster(cluster(c, &format!("web-{c:02}"), Role::Web)));
    }
    w.upsert(Obj::Cluster(cluster(dns, "dns-a", Role::Dns)));
    w.upsert(Obj::Cluster(cluster(mail, "mail-a", Role::Mail)));
    w.upsert(Obj::Cluster(cluster(files, "files-a", Role::Files)));
    let web_server = |c: i64, s: i64| 1000 + (c - 1) * per + s;
    let base: Id = 100_000;
    let name = |i: usize| format!("prop-{i:05}.example");
    step("start", 0);

    for i in 0..n {
        let c = (i as i64 % webs) + 1;
        let d = domain(
            base + i as i64,
            &name(i),
            &[
                (Role::Web, c),
                (Role::Dns, dns),
                (Role::Mail, mail),
                (Role::Files, files),
            ],
        );
        w.upsert(Obj::Domain(d));
    }
    step("domains", n);
    for i in 0..n {
        let c = (i as i64 % webs) + 1;
        let active = web_server(c, (i as i64 / webs) % per);
        let mut s = site(
            2 * base + i as i64,
            base + i as i64,
            PlacementMode::Single,
            Some(active),
        );
        s.meta.name = name(i);
        w.upsert(Obj::Site(s));
    }
    step("sites", n);
    for i in 0..n {
        let m = stored(
            3 * base + i as i64,
            &format!("info@{}", name(i)),
            Some(base + i as i64),
            Mailbox {
                domain: base + i as i64,
                local_part: LocalPart::new("info").unwrap(),
                password_hash: format!("$6$rounds=5000$saltsalt{i:08}${}", "x".repeat(78)),
                quota_mb: 0,
                display_name: String::new(),
                enabled: true,
            },
        );
        w.upsert(Obj::Mailbox(m));
    }
    step("mailboxes", n);
    let mut sid = 4 * base;
    let mut secrets = |w: &mut World,
                       purpose,
                       public: &dyn Fn(usize) -> String,
                       private: &dyn Fn(usize) -> String| {
        for i in 0..n {
            sid += 1;
            w.upsert(Obj::Secret(secret(
                sid,
                purpose,
                &name(i),
                &public(i),
                &private(i),
            )));
        }
    };
    secrets(
        &mut w,
        SecretPurpose::SiteCert,
        &|i| pem("CERTIFICATE", i, 700),
        &|i| pem("PRIVATE KEY", i, 241),
    );
    step("site certificates (secrets)", n);
    secrets(
        &mut w,
        SecretPurpose::Dkim,
        &|i| format!("{i:08}{}", "A".repeat(36)),
        &|i| pem("PRIVATE KEY", i, 119),
    );
    step("DKIM Ed25519 keys (secrets)", n);
    secrets(
        &mut w,
        SecretPurpose::SiteMail,
        &|i| format!("$argon2id$v=19$m=19456,t=2,p=1${i:022}${}", "h".repeat(43)),
        &|i| format!("{i:08}{}", "s".repeat(24)),
    );
    step("site mail secrets", n);
    w.upsert(Obj::Secret(secret(
        sid + 1,
        SecretPurpose::DkimRsa,
        &name(0),
        &"R".repeat(392),
        &pem("RSA PRIVATE KEY", 0, 1679),
    )));

    // Zones and catalogs, no web servers yet.
    let hub = ConfigHub::default();
    let mut inc = Incremental::new(w);
    hub.build_and_apply(&mut inc, Dirty::default(), TODAY, 1);
    step("first build without servers (zones, catalog)", n);

    // The web servers join: every web cluster's list, every server's config.
    let mut changed = Vec::new();
    for c in 1..=webs {
        for s in 0..per {
            let srv = server(
                web_server(c, s),
                &format!("web-{c:02}-{s}"),
                Role::Web,
                c,
                u16::try_from(s).unwrap_or(0),
                &format!("127.0.1.{}", web_server(c, s) - 999),
            );
            changed.push(tests::raw(&srv));
        }
    }
    let feed = store::Feed {
        revision: 2,
        changed,
        deleted: Vec::new(),
    };
    let dirty = inc.apply(&feed).unwrap();
    let mut serials = crate::zones::ZoneSerials::default();
    let pass = inc.build(dirty, &mut serials, TODAY);
    step(
        "50 web servers' documents (+ web lists)",
        (webs * per) as usize,
    );
    hub.apply(2, pass.rebuilt);
    step(
        "hub: the documents as items, blobs, trackers",
        (webs * per) as usize,
    );
    println!(
        "size_of: WebSite {} Stored<Site> {} Stored<Domain> {} Stored<Secret> {} \
         Stored<Mailbox> {} ZoneRecord {}",
        std::mem::size_of::<proto::agent_v1::WebSite>(),
        std::mem::size_of::<store::Stored<model::entity::Site>>(),
        std::mem::size_of::<store::Stored<model::entity::Domain>>(),
        std::mem::size_of::<store::Stored<model::entity::Secret>>(),
        std::mem::size_of::<store::Stored<Mailbox>>(),
        std::mem::size_of::<proto::agent_v1::ZoneRecord>(),
    );

    println!("| step | RSS delta MiB | objects | bytes per object |");
    println!("|---|---|---|---|");
    for (what, delta, count) in &rows {
        let per = if *count > 0 { delta / *count as i64 } else { 0 };
        println!(
            "| {what} | {:.1} | {count} | {per} |",
            *delta as f64 / 1048576.0
        );
    }
    println!("total RSS {:.1} MiB", rss() as f64 / 1048576.0);
    drop((hub, inc));
}
