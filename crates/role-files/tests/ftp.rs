//! FTP and FTPS end to end: the real server on this test's loopback address, driven by
//! the real `lftp` and `curl` (Debian packages lftp, curl).

mod common;

use std::time::Duration;

use anyhow::Result;
use common::*;

fn ip() -> std::net::IpAddr {
    AddrBlock::next().addr(41)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lftp_over_tls_uploads_lists_downloads_renames_deletes() -> Result<()> {
    let srv = FilesServer::start(ip(), true, default_config()).await?;
    let work = tempfile::tempdir()?;
    let local = work.path().join("hello.html");
    let body: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
    std::fs::write(&local, &body)?;
    let back = work.path().join("back.html");
    let script = format!(
        "put {} -o hello.html; mkdir docs; put {} -o docs/inner.html; cls -1; \
         get hello.html -o {}; mv hello.html index.html; rm docs/inner.html; rmdir docs; cls -1",
        local.display(),
        local.display(),
        back.display()
    );
    let r = lftp(&srv, "alice", "alice-pw", true, &script).await?;
    ensure(r.ok, || format!("lftp failed: {r:?}"))?;
    ensure(
        r.stdout.contains("hello.html") && r.stdout.contains("docs"),
        || format!("listing: {}", r.stdout),
    )?;
    ensure(std::fs::read(&back)? == body, || {
        "downloaded bytes differ".into()
    })?;
    let site = srv.site("a.example");
    ensure(std::fs::read(site.join("index.html"))? == body, || {
        "renamed file differs".into()
    })?;
    ensure(names(&site)? == ["index.html", "pub"], || {
        format!("site now {:?}", names(&site))
    })?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn curl_over_tls_uploads_lists_downloads_renames_deletes() -> Result<()> {
    let srv = FilesServer::start(ip(), true, default_config()).await?;
    let work = tempfile::tempdir()?;
    let local = work.path().join("page.txt");
    std::fs::write(&local, b"curl was here\n")?;
    let url = srv.url();
    let up = curl(
        &srv,
        "bob",
        "bob-pw",
        true,
        &[
            "-T",
            &local.display().to_string(),
            &format!("{url}/dir/page.txt"),
            "--ftp-create-dirs",
        ],
    )
    .await?;
    ensure(up.ok, || format!("upload: {up:?}"))?;
    let list = curl(&srv, "bob", "bob-pw", true, &[&format!("{url}/dir/")]).await?;
    ensure(list.ok && list.stdout.contains("page.txt"), || {
        format!("list: {list:?}")
    })?;
    let get = curl(
        &srv,
        "bob",
        "bob-pw",
        true,
        &[&format!("{url}/dir/page.txt")],
    )
    .await?;
    ensure(get.ok && get.stdout == "curl was here\n", || {
        format!("get: {get:?}")
    })?;
    let mv = curl(
        &srv,
        "bob",
        "bob-pw",
        true,
        &[
            "-Q",
            "RNFR dir/page.txt",
            "-Q",
            "RNTO dir/renamed.txt",
            &format!("{url}/"),
        ],
    )
    .await?;
    ensure(mv.ok, || format!("rename: {mv:?}"))?;
    ensure(
        srv.site("b.example").join("dir/renamed.txt").exists(),
        || "rename not on disk".into(),
    )?;
    let rm = curl(
        &srv,
        "bob",
        "bob-pw",
        true,
        &[
            "-Q",
            "DELE dir/renamed.txt",
            "-Q",
            "RMD dir",
            &format!("{url}/"),
        ],
    )
    .await?;
    ensure(rm.ok, || format!("delete: {rm:?}"))?;
    ensure(names(&srv.site("b.example"))?.is_empty(), || {
        "site not empty".into()
    })?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logins_without_tls_are_refused_when_tls_is_required() -> Result<()> {
    let srv = FilesServer::start(ip(), true, default_config()).await?;
    let url = srv.url();
    let plain = curl(&srv, "alice", "alice-pw", false, &[&format!("{url}/")]).await?;
    ensure(!plain.ok, || format!("plain curl login worked: {plain:?}"))?;
    let l = lftp(&srv, "alice", "alice-pw", false, "cls -1").await?;
    ensure(!l.ok, || format!("plain lftp login worked: {l:?}"))?;
    // the same login with TLS works
    let tls = curl(&srv, "alice", "alice-pw", true, &[&format!("{url}/")]).await?;
    ensure(tls.ok, || format!("TLS login failed: {tls:?}"))?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plain_ftp_works_when_tls_is_relaxed() -> Result<()> {
    let srv = FilesServer::start(ip(), false, default_config()).await?;
    let work = tempfile::tempdir()?;
    let local = work.path().join("f.bin");
    std::fs::write(&local, vec![7u8; 100_000])?;
    let url = srv.url();
    let up = curl(
        &srv,
        "alice",
        "alice-pw",
        false,
        &["-T", &local.display().to_string(), &format!("{url}/f.bin")],
    )
    .await?;
    ensure(up.ok, || format!("upload: {up:?}"))?;
    ensure(
        std::fs::read(srv.site("a.example").join("f.bin"))? == vec![7u8; 100_000],
        || "bytes".into(),
    )?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_passwords_and_unknown_users_are_refused() -> Result<()> {
    let srv = FilesServer::start(ip(), true, default_config()).await?;
    let url = srv.url();
    for (u, p) in [
        ("alice", "wrong"),
        ("alice", "bob-pw"),
        ("nobody", "alice-pw"),
        ("alice", ""),
    ] {
        let r = curl(&srv, u, p, true, &[&format!("{url}/")]).await?;
        ensure(!r.ok && r.code == Some(67), || {
            format!("{u}/{p} got in: {r:?}")
        })?;
    }
    Ok(())
}

/// 24 concurrent curl logins with wrong passwords for alice from one address: each
/// failure is reserved before the password check, so most are refused unchecked
/// (libunftp answers 530 to both); the throttle is per account and address, so bob
/// still logs in from the attacking address and alice from another one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_wrong_passwords_are_throttled_per_account_and_address() -> Result<()> {
    let block = AddrBlock::next();
    let srv = FilesServer::start(block.addr(41), true, default_config()).await?;
    let url = format!("{}/", srv.url());
    let attacker = block.addr(42).to_string();
    srv.ca_file()?; // written once, before the concurrent clients read it
    let guesses = (0..24).map(|i| {
        let (srv, url, attacker) = (&srv, url.clone(), attacker.clone());
        async move {
            let pw = format!("wrong guess {i}");
            // Under this many concurrent handshakes the server sometimes answers a
            // TLS ClientHello after `234` in clear (curl exit 35, before any login):
            // a TLS-upgrade problem of its own, not this test's; try that one again.
            let mut tries = 0;
            loop {
                let r = curl(srv, "alice", &pw, true, &["--interface", &attacker, &url]).await;
                tries += 1;
                match r {
                    Ok(r) if r.code == Some(35) && tries < 5 => continue,
                    r => return r,
                }
            }
        }
    });
    for r in futures_util::future::join_all(guesses).await {
        let r = r?;
        ensure(!r.ok && r.code == Some(67), || {
            format!("a guess got in: {r:?}")
        })?;
    }
    let c = srv.auth.login_counts();
    ensure(c.refused >= 10 && c.failures + c.refused == 24, || {
        format!("not throttled: {c:?}")
    })?;
    let bob = curl(
        &srv,
        "bob",
        "bob-pw",
        true,
        &["--interface", &attacker, &url],
    )
    .await?;
    ensure(bob.ok, || {
        format!("bob locked out by alice's guesses: {bob:?}")
    })?;
    let other = block.addr(43).to_string();
    let alice = curl(
        &srv,
        "alice",
        "alice-pw",
        true,
        &["--interface", &other, &url],
    )
    .await?;
    ensure(alice.ok, || format!("alice locked out: {alice:?}"))?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quota_exceeded_is_552_and_leaves_no_partial_file() -> Result<()> {
    let srv = FilesServer::start(ip(), true, default_config()).await?; // alice: 1 MiB
    let work = tempfile::tempdir()?;
    let small = work.path().join("small");
    let big = work.path().join("big");
    std::fs::write(&small, vec![1u8; 600 * 1024])?;
    std::fs::write(&big, vec![2u8; 700 * 1024])?;
    let url = srv.url();
    let (s, b) = (small.display().to_string(), big.display().to_string());
    let first = curl(
        &srv,
        "alice",
        "alice-pw",
        true,
        &["-T", &s, &format!("{url}/one")],
    )
    .await?;
    ensure(first.ok, || format!("first upload: {first:?}"))?;
    let over = curl(
        &srv,
        "alice",
        "alice-pw",
        true,
        &["-T", &b, &format!("{url}/two")],
    )
    .await?;
    ensure(!over.ok, || format!("over-quota upload accepted: {over:?}"))?;
    let l = lftp(
        &srv,
        "alice",
        "alice-pw",
        true,
        &format!("put {b} -o three"),
    )
    .await?;
    ensure(
        !l.ok && (l.stderr.contains("552") || l.stdout.contains("552")),
        || format!("lftp: {l:?}"),
    )?;
    let site = srv.site("a.example");
    ensure(names(&site)? == ["one", "pub"], || {
        format!("left behind: {:?}", names(&site))
    })?;
    // replacing the existing file with a bigger one still fits (600 KiB freed)
    let replace = curl(
        &srv,
        "alice",
        "alice-pw",
        true,
        &["-T", &b, &format!("{url}/one")],
    )
    .await?;
    ensure(replace.ok, || format!("replace: {replace:?}"))?;
    ensure(std::fs::read(site.join("one"))?.len() == 700 * 1024, || {
        "replaced size".into()
    })?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_way_out_of_the_home() -> Result<()> {
    let srv = FilesServer::start(ip(), true, default_config()).await?;
    std::fs::write(srv.site("b.example").join("secret.txt"), b"bob's secret")?;
    std::fs::write(srv.dir.path().join("outside.txt"), b"outside")?;
    let a = srv.site("a.example");
    std::os::unix::fs::symlink("/etc/passwd", a.join("passwd-link"))?;
    std::os::unix::fs::symlink("../b.example", a.join("b-link"))?;
    std::os::unix::fs::symlink("../../outside.txt", a.join("out-link"))?;
    let work = tempfile::tempdir()?;
    let got = work.path().join("got");
    let g = got.display().to_string();
    std::fs::write(a.join("mine.txt"), b"mine")?;
    // the session itself works: a file of the home is readable
    let ok = lftp(
        &srv,
        "alice",
        "alice-pw",
        true,
        &format!("get mine.txt -o {g}"),
    )
    .await?;
    ensure(ok.ok && std::fs::read(&got)? == b"mine", || {
        format!("control get: {ok:?}")
    })?;
    std::fs::remove_file(&got)?;
    // `cd ..` above the home is refused; listing `..` shows no other site
    let r = lftp(&srv, "alice", "alice-pw", true, "cd ..").await?;
    ensure(!r.ok && r.stderr.contains("550"), || {
        format!("cd ..: {r:?}")
    })?;
    let r = lftp(&srv, "alice", "alice-pw", true, "cls -1 .. || echo refused").await?;
    ensure(
        !r.stdout.contains("b.example") && !r.stdout.contains("a.example"),
        || format!("ls ..: {r:?}"),
    )?;
    for path in [
        "../../etc/passwd",
        "/../b.example/secret.txt",
        "../b.example/secret.txt",
        "passwd-link",
        "b-link/secret.txt",
        "out-link",
        "../../outside.txt",
    ] {
        let r = lftp(
            &srv,
            "alice",
            "alice-pw",
            true,
            &format!("get {path} -o {g}"),
        )
        .await?;
        let leaked = std::fs::read(&got).unwrap_or_default();
        ensure(!r.ok && leaked.is_empty(), || {
            format!("{path} escaped: {r:?} {leaked:?}")
        })?;
        let c = curl(
            &srv,
            "alice",
            "alice-pw",
            true,
            &["--path-as-is", &format!("{}/{path}", srv.url())],
        )
        .await?;
        ensure(!c.ok && c.stdout.is_empty(), || {
            format!("curl {path} escaped: {c:?}")
        })?;
    }
    // carol's home is a.example/pub: the site root is out of reach
    std::fs::write(a.join("root-only.txt"), b"root")?;
    let r = lftp(
        &srv,
        "carol",
        "carol-pw",
        true,
        &format!("get ../root-only.txt -o {g}"),
    )
    .await?;
    ensure(!r.ok, || format!("carol left pub: {r:?}"))?;
    // no upload outside either
    let up = work.path().join("x");
    std::fs::write(&up, b"x")?;
    let r = lftp(
        &srv,
        "alice",
        "alice-pw",
        true,
        &format!("put {} -o ../b.example/planted", up.display()),
    )
    .await?;
    ensure(!srv.site("b.example").join("planted").exists(), || {
        format!("planted in b: {r:?}")
    })?;
    let r = lftp(
        &srv,
        "alice",
        "alice-pw",
        true,
        &format!("put {} -o b-link/planted", up.display()),
    )
    .await?;
    ensure(!srv.site("b.example").join("planted").exists(), || {
        format!("planted via link: {r:?}")
    })?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn accounts_change_live_without_restart() -> Result<()> {
    let srv = FilesServer::start(ip(), true, default_config()).await?;
    let url = srv.url();
    let mut cfg = default_config();
    cfg.ftp_accounts.retain(|a| a.username != "alice");
    cfg.ftp_accounts
        .push(account("dave", "dave-pw", "b.example", "", 0));
    cfg.tls = Some(srv.pki.server(srv.ip)?);
    srv.apply(&cfg)?;
    let dave = curl(&srv, "dave", "dave-pw", true, &[&format!("{url}/")]).await?;
    ensure(dave.ok, || format!("new account refused: {dave:?}"))?;
    let alice = curl(&srv, "alice", "alice-pw", true, &[&format!("{url}/")]).await?;
    ensure(!alice.ok, || format!("removed account accepted: {alice:?}"))?;
    tokio::time::sleep(Duration::from_millis(10)).await;
    Ok(())
}
