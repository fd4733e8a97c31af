//! Support of `tests/sitefiles.rs`: a controller, a files server `f1` and two web
//! servers `w1`, `w2` of one web cluster as real `hostplane` processes (testkit), one
//! PHP site in `all` mode with an FTP account, and the doors a person would use on it:
//! HTTP through curl, PHP through each web server's php-fpm, FTPS through curl, the CLI
//! binary, and the trees on disk under the agents' state dirs.

#![allow(dead_code)] // not every test uses every helper
#![allow(clippy::unwrap_used)] // test helpers outside #[test] fns may panic

use std::collections::BTreeMap;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use proto::v1::{CreateDomain, CreateFtpAccount, CreateSite};
use testkit::{Options, TestCluster};

pub const BIN: &str = env!("CARGO_BIN_EXE_hostplane");
/// Generous bound for anything that normally takes well under a second.
pub const T: Duration = Duration::from_secs(15);
/// The issue's bound: a write on one web server is served by the other within 2 s.
pub const SERVED_WITHIN: Duration = Duration::from_secs(2);
pub const DOMAIN: &str = "app.example";
pub const FTP_USER: &str = "app-ftp";
pub const FTP_PASS: &str = "ftp-password-123";

/// The PHP side: one request, one file-system operation, as applications do them;
/// answers `ok` or the error PHP got (status 500).
pub const WRITER: &str = r#"<?php
header('Content-Type: text/plain');
$p = __DIR__ . '/' . ($_GET['p'] ?? '');
$ok = false;
switch ($_GET['op'] ?? '') {
    case 'ping': $ok = true; break;
    case 'put': $ok = file_put_contents($p, $_GET['d']) !== false; break;
    case 'atomic':
        $t = dirname($p) . '/.tmp-' . getmypid() . '-' . basename($p);
        $ok = file_put_contents($t, $_GET['d']) !== false && rename($t, $p);
        break;
    case 'fill': $ok = file_put_contents($p, str_repeat('x', (int)$_GET['n'])) !== false; break;
    case 'mkdir': $ok = mkdir($p, 0755, true); break;
    case 'unlink': $ok = unlink($p); break;
    case 'rmtree':
        $it = new RecursiveIteratorIterator(
            new RecursiveDirectoryIterator($p, FilesystemIterator::SKIP_DOTS),
            RecursiveIteratorIterator::CHILD_FIRST);
        $ok = true;
        foreach ($it as $f) { $ok = ($f->isDir() ? rmdir($f) : unlink($f)) && $ok; }
        $ok = rmdir($p) && $ok;
        break;
    case 'rename': $ok = rename($p, __DIR__ . '/' . $_GET['to']); break;
    case 'symlink': $ok = symlink($_GET['target'], $p); break;
    case 'chmod': $ok = chmod($p, octdec($_GET['mode'])); break;
}
if ($ok) { echo "ok"; } else { http_response_code(500); echo "failed: ", error_get_last()['message'] ?? '?'; }
"#;

/// The running cluster with the site deployed (`index.html` = `v1`, `w.php`).
pub struct Site {
    pub c: TestCluster,
    /// `ip:port` of each web server's HTTP listener (`w1`, `w2`).
    pub http: BTreeMap<String, String>,
    /// `ip:port` of the files server's FTP listener.
    pub ftp: String,
    /// Scratch space (the CA file, upload sources, CLI config).
    pub dir: tempfile::TempDir,
}

/// `ip:port` after the word `word` in an engine's health detail.
pub async fn engine_addr(c: &TestCluster, server: &str, word: &str) -> Option<String> {
    let view = c.server(server).await.ok()?;
    let detail = &view.engines.first()?.detail;
    let mut words = detail.split_whitespace();
    words.find(|w| *w == word)?;
    let next = words.next()?;
    let next = if next == "on" { words.next()? } else { next };
    let addr: std::net::SocketAddr = next.trim_end_matches([';', ',']).parse().ok()?;
    Some(addr.to_string())
}

/// A tar archive of `files` (path, content), as `site upload` sends one.
pub fn tar_of(files: &[(&str, &[u8])]) -> Vec<u8> {
    let mut tar = tar::Builder::new(Vec::new());
    for (path, body) in files {
        let mut h = tar::Header::new_gnu();
        h.set_size(body.len() as u64);
        h.set_mode(0o644);
        h.set_cksum();
        tar.append_data(&mut h, path, *body).unwrap();
    }
    tar.into_inner().unwrap()
}

impl Site {
    /// Start everything with an `all` site; `site_disk_mb` > 0 puts the customer on a
    /// plan with that disk limit per site.
    pub async fn start(site_disk_mb: u64) -> Site {
        Site::start_mode(site_disk_mb, "all").await
    }

    /// Start everything with a site of `mode` (`all` or `single`).
    pub async fn start_mode(site_disk_mb: u64, mode: &str) -> Site {
        let mut c = TestCluster::start(BIN, Options::default()).await.unwrap();
        for (name, role) in [
            ("web-a", "web"),
            ("dns-1", "dns"),
            ("mail-1", "mail"),
            ("files-1", "files"),
        ] {
            c.add_cluster(name, role, true).await.unwrap();
        }
        c.add_customer("acme").await.unwrap();
        if site_disk_mb > 0 {
            let plan =
                serde_json::json!({"name": "tiny", "limits": {"site_disk_mb": site_disk_mb}});
            let (code, body) = c.admin_post("/v1/plans", &plan).await.unwrap();
            assert_eq!(code, 201, "{body}");
            let r = c
                .http()
                .patch(format!("{}/v1/customers/acme", c.url()))
                .bearer_auth(c.admin_token())
                .json(&serde_json::json!({"plan": "tiny"}))
                .send()
                .await
                .unwrap();
            assert!(r.status().is_success(), "{}", r.text().await.unwrap());
        }
        for (n, cl) in [("w1", "web-a"), ("w2", "web-a"), ("f1", "files-1")] {
            c.add_agent(n, cl, "GB").await.unwrap();
        }
        for n in ["w1", "w2", "f1"] {
            c.wait_converged(n, T).await.unwrap();
        }
        c.admin()
            .create_domain(&CreateDomain {
                name: DOMAIN.into(),
                customer: Some("acme".into()),
                clusters: Some([("web".to_string(), "web-a".to_string())].into()),
            })
            .await
            .unwrap();
        c.admin()
            .create_site(&CreateSite {
                domain: DOMAIN.into(),
                aliases: None,
                php: Some(true),
                mode: Some(mode.into()),
                https_redirect: None,
            })
            .await
            .unwrap();
        c.admin()
            .create_ftp_account(&CreateFtpAccount {
                username: FTP_USER.into(),
                domain: DOMAIN.into(),
                password: Some(FTP_PASS.into()),
                home: None,
                quota_mb: None,
            })
            .await
            .unwrap();
        c.admin()
            .upload_site_content(
                DOMAIN,
                tar_of(&[("index.html", b"v1"), ("w.php", WRITER.as_bytes())]),
                |_| {},
            )
            .await
            .unwrap();
        let mut http = BTreeMap::new();
        for w in ["w1", "w2"] {
            c.wait_until("web engine up", T, async |c| {
                Ok(engine_addr(c, w, "http").await.is_some())
            })
            .await
            .unwrap();
            http.insert(w.to_string(), engine_addr(&c, w, "http").await.unwrap());
        }
        c.wait_until("files engine up", T, async |c| {
            Ok(engine_addr(c, "f1", "ftp").await.is_some())
        })
        .await
        .unwrap();
        let ftp = engine_addr(&c, "f1", "ftp").await.unwrap();
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("ca.pem"), c.ca_pem()).unwrap();
        let active = c.site(DOMAIN).await.unwrap().active_server;
        let site = Site { c, http, ftp, dir };
        let serving: Vec<&str> = match active.as_deref() {
            Some(a) if mode == "single" => vec![if a == "w1" { "w1" } else { "w2" }],
            _ => vec!["w1", "w2"],
        };
        for w in serving {
            site.wait(&format!("PHP served on {w}"), 30, || {
                site.php(w, "op=ping").as_deref() == Ok("ok")
            })
            .await;
        }
        site.wait("the FTP account", 15, || {
            site.ftp_get("index.html").as_deref() == Some(&b"v1"[..])
        })
        .await;
        site
    }

    /// `GET path` on web server `w` (Host: the site): (status, headers, body).
    pub fn get(&self, w: &str, path: &str) -> (u16, String, Vec<u8>) {
        let head = self.dir.path().join(format!("head-{}", rand_suffix()));
        let out = Command::new("curl")
            .args(["-s", "--max-time", "5", "-D"])
            .arg(&head)
            .args(["-H", &format!("Host: {DOMAIN}")])
            .arg(format!("http://{}{path}", self.http[w]))
            .output()
            .expect("`curl` not found: install curl");
        let headers = std::fs::read_to_string(&head).unwrap_or_default();
        let _ = std::fs::remove_file(&head);
        let code = headers
            .lines()
            .next()
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        (code, headers, out.stdout)
    }

    /// The body of `path` on `w` if it is served (200).
    pub fn body(&self, w: &str, path: &str) -> Option<Vec<u8>> {
        let (code, _, body) = self.get(w, path);
        (code == 200).then_some(body)
    }

    /// One call of the PHP writer on web server `w`: `Ok("ok")` or `Err(what PHP said)`.
    pub fn php(&self, w: &str, query: &str) -> Result<String, String> {
        let (code, _, body) = self.get(w, &format!("/w.php?{query}"));
        let body = String::from_utf8_lossy(&body).into_owned();
        if code == 200 {
            Ok(body)
        } else {
            Err(format!("{code}: {body}"))
        }
    }

    /// The PHP writer must succeed.
    pub fn php_ok(&self, w: &str, query: &str) {
        assert_eq!(
            self.php(w, query).as_deref(),
            Ok("ok"),
            "PHP {query} on {w}"
        );
    }

    /// An `ETag` or `Last-Modified` header value.
    pub fn header(headers: &str, name: &str) -> Option<String> {
        headers.lines().find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.trim()
                .eq_ignore_ascii_case(name)
                .then(|| v.trim().to_string())
        })
    }

    fn ftp_url(&self, path: &str) -> String {
        format!("ftp://{FTP_USER}:{FTP_PASS}@{}/{path}", self.ftp)
    }

    fn curl_ftp(&self) -> Command {
        let mut cmd = Command::new("curl");
        cmd.args(["-s", "--max-time", "5", "--ssl-reqd", "--cacert"])
            .arg(self.dir.path().join("ca.pem"));
        cmd
    }

    /// Download `path` from the files server by FTPS.
    pub fn ftp_get(&self, path: &str) -> Option<Vec<u8>> {
        let out = self
            .curl_ftp()
            .arg("--fail")
            .arg(self.ftp_url(path))
            .output()
            .unwrap();
        out.status.success().then_some(out.stdout)
    }

    /// Upload `body` as `path` by FTPS; whether the server took it.
    pub fn ftp_put(&self, path: &str, body: &[u8]) -> bool {
        let src = self.dir.path().join(format!("up-{}", rand_suffix()));
        std::fs::write(&src, body).unwrap();
        let st = self
            .curl_ftp()
            .arg("-T")
            .arg(&src)
            .arg(self.ftp_url(path))
            .status()
            .unwrap();
        st.success()
    }

    /// Delete `path` by FTPS (`DELE`); whether the server did.
    pub fn ftp_delete(&self, path: &str) -> bool {
        let st = self
            .curl_ftp()
            .args(["-o", "/dev/null", "-Q", &format!("DELE {path}")])
            .arg(self.ftp_url(""))
            .status()
            .unwrap();
        st.success()
    }

    /// The site's tree on web server `w` (its replica).
    pub fn web_tree(&self, w: &str) -> PathBuf {
        self.c
            .agent(w)
            .unwrap()
            .state_dir
            .join("engines/web/content")
            .join(DOMAIN)
            .join("tree")
    }

    /// The site's tree on the files server (the hub's copy).
    pub fn hub_tree(&self) -> PathBuf {
        self.c
            .agent("f1")
            .unwrap()
            .state_dir
            .join("engines/files/hub")
            .join(DOMAIN)
            .join("tree")
    }

    /// The web engine's error log of `w`.
    pub fn error_log(&self, w: &str) -> String {
        let dir = self.c.agent(w).unwrap().state_dir.join("engines/web/logs");
        let mut all = String::new();
        for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            if e.file_name().to_string_lossy().contains("error") {
                all.push_str(&std::fs::read_to_string(e.path()).unwrap_or_default());
            }
        }
        all
    }

    /// Poll `check` every 50 ms for at most `secs` seconds; panics naming `what`.
    /// Returns how long it took.
    pub async fn wait(&self, what: &str, secs: u64, mut check: impl FnMut() -> bool) -> Duration {
        let start = Instant::now();
        loop {
            if check() {
                return start.elapsed();
            }
            assert!(
                start.elapsed() < Duration::from_secs(secs),
                "timed out after {secs} s waiting for {what}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The `hostplane` CLI against this controller, as the admin.
    pub fn cli(&self, args: &[&str]) -> std::process::Output {
        Command::new(BIN)
            .env("HOSTPLANE_CONFIG", self.dir.path().join("cli.toml"))
            .env("HOSTPLANE_URL", self.c.url())
            .env("HOSTPLANE_TOKEN", self.c.admin_token())
            .env("HOSTPLANE_CA", self.dir.path().join("ca.pem"))
            .env("NO_COLOR", "1")
            .stdin(std::process::Stdio::null())
            .args(args)
            .output()
            .unwrap()
    }

    /// The CLI must succeed; its stdout.
    pub fn cli_ok(&self, args: &[&str]) -> String {
        let out = self.cli(args);
        assert!(
            out.status.success(),
            "hostplane {args:?} failed:\n{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Write `body` to `path` in `w`'s tree with the PHP CLI as the site's user (the
    /// owner of the tree), not through php-fpm: it works while `w`'s agent (which
    /// serves HTTP) is stopped, so a test can make a write the hub has not seen yet.
    pub fn php_cli_write(&self, w: &str, path: &str, body: &str) {
        let tree = self.web_tree(w);
        let meta = std::fs::metadata(&tree).unwrap();
        let target = tree.join(path);
        let code = format!(
            "$p = {target:?}; @mkdir(dirname($p), 0755, true); exit(file_put_contents($p, {body:?}) === false ? 1 : 0);"
        );
        let st = Command::new("setpriv")
            .arg(format!("--reuid={}", meta.uid()))
            .arg(format!("--regid={}", meta.gid()))
            .args(["--clear-groups", "php", "-r", &code])
            .status()
            .unwrap();
        assert!(st.success(), "PHP CLI write of {path} on {w}");
    }

    /// Stop (`SIGSTOP`) or continue (`SIGCONT`) agent `name`.
    pub fn signal_agent(&self, name: &str, sig: &str) {
        let pid = self.c.agent_pid(name).unwrap().to_string();
        let st = Command::new("kill").args([sig, &pid]).status().unwrap();
        assert!(st.success());
    }

    /// Wait until every server received the site's local paths `local` (web servers
    /// in their site, the files server in its site options) and applied that config.
    /// Converged alone is not enough: right after the API answered, the builder may
    /// not have made the new revision yet, and the old one is "converged".
    pub async fn wait_local_paths(&self, local: &[&str]) {
        use proto::agent_v1::RoleConfig;
        let want: Vec<String> = local.iter().map(|p| p.to_string()).collect();
        for n in ["w1", "w2", "f1"] {
            self.wait(&format!("local paths {want:?} on {n}"), 15, || {
                let got = match self.c.agent_desired(n).unwrap().map(|d| d.role) {
                    Some(RoleConfig::Web(w)) => w
                        .sites
                        .into_iter()
                        .find(|x| x.domain == DOMAIN)
                        .map(|x| x.local_paths.clone()),
                    Some(RoleConfig::Files(f)) => f
                        .site_options
                        .into_iter()
                        .find(|x| x.domain == DOMAIN)
                        .map(|x| x.local_paths),
                    _ => None,
                };
                got.as_ref() == Some(&want)
            })
            .await;
            self.c.wait_converged(n, T).await.unwrap();
        }
    }

    /// The site's conflicts through the API: (path, origin).
    pub async fn conflicts(&self) -> Vec<(String, String)> {
        self.c
            .admin()
            .site_conflicts(DOMAIN)
            .await
            .unwrap()
            .into_iter()
            .map(|v| (v.path, v.origin))
            .collect()
    }
}

/// What a tree holds: relative path → `dir`, `file <mtime> <content>` or `link -> target`.
/// Names starting with `.tmp-` or `.hostplane` (in-flight temp files) are skipped.
pub fn snapshot(root: &Path) -> BTreeMap<String, String> {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<String, String>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if name.starts_with(".tmp-") || name.starts_with(".hostplane") {
                continue;
            }
            let path = e.path();
            let rel = path
                .strip_prefix(root)
                .unwrap()
                .to_string_lossy()
                .into_owned();
            let Ok(meta) = std::fs::symlink_metadata(&path) else {
                continue;
            };
            if meta.file_type().is_symlink() {
                let t = std::fs::read_link(&path).unwrap_or_default();
                out.insert(rel, format!("link -> {}", t.display()));
            } else if meta.is_dir() {
                out.insert(rel, "dir".into());
                walk(root, &path, out);
            } else {
                let body = std::fs::read(&path).unwrap_or_default();
                out.insert(
                    rel,
                    format!(
                        "file {}.{:09} {}",
                        meta.mtime(),
                        meta.mtime_nsec(),
                        String::from_utf8_lossy(&body)
                    ),
                );
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(root, root, &mut out);
    out
}

fn rand_suffix() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    format!(
        "{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}
