//! Interoperability with the Debian packages' daemons on loopback (127.0.4.2x):
//! our primary → BIND 9 (TSIG) and Knot secondaries; BIND 9 primary (changed by
//! nsupdate, so it serves IXFR) → our secondary. Answers checked with dig and kdig;
//! zones the daemons and we transferred pass named-checkzone. Every daemon is killed
//! on drop, also when an assertion fails.

mod common;

use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::atomic::Ordering;

use common::*;

const OURS: &str = "127.0.4.21";
const KNOT_SEC: &str = "127.0.4.23";
const OUR_SEC: &str = "127.0.4.25";
/// BIND only listens on addresses configured on an interface, so its instances use
/// 127.0.0.1 with ports of their own.
const BIND_IP: &str = "127.0.0.1";
const BIND_SEC_PORT: u16 = 39553;
const BIND_PRI_PORT: u16 = 39554;

fn bind_short(port: u16, name: &str, rtype: &str) -> String {
    dig_at(BIND_IP, port, name, rtype, &["+short"])
}

fn kdig(ip: &str, name: &str, rtype: &str) -> String {
    kdig_at(ip, PORT, name, rtype)
}

fn kdig_at(ip: &str, port: u16, name: &str, rtype: &str) -> String {
    let out = Command::new("kdig")
        .args([
            &format!("@{ip}"),
            "-p",
            &port.to_string(),
            name,
            rtype,
            "+short",
            "+norec",
            "+time=1",
            "+retry=0",
        ])
        .output()
        .expect("kdig must be installed (knot-dnsutils)");
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

fn spawn(name: &'static str, cmd: &mut Command, dir: &Path) -> Daemon {
    let path = dir.join(format!("{name}.log"));
    let log = std::fs::File::create(&path).expect("log");
    let child = cmd
        .stdout(Stdio::null())
        .stderr(Stdio::from(log))
        .spawn()
        .unwrap_or_else(|e| panic!("{name} must be installed: {e}"));
    Daemon {
        name,
        child,
        log: path,
    }
}

fn checkzone(zone: &str, file: &Path) {
    let out = Command::new("named-checkzone")
        .args(["-k", "fail", zone])
        .arg(file)
        .output()
        .expect("named-checkzone (bind9-utils)");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}

fn bind_secondary_conf(dir: &Path) -> String {
    format!(
        r#"options {{
  directory "{d}"; pid-file "{d}/named.pid"; session-keyfile "{d}/session.key";
  listen-on port {BIND_SEC_PORT} {{ {BIND_IP}; }}; listen-on-v6 {{ none; }};
  recursion no; dnssec-validation no; notify no;
  transfer-source {BIND_IP}; query-source address {BIND_IP}; notify-source {BIND_IP};
}};
controls {{ }};
key "xfr.test." {{ algorithm hmac-sha256; secret "{SECRET}"; }};
server {OURS} {{ keys {{ "xfr.test."; }}; }};
zone "bind.test" {{
  type secondary; masterfile-format text; file "{d}/bind.test.db";
  primaries port {PORT} {{ {OURS} key "xfr.test."; }};
}};
"#,
        d = dir.display()
    )
}

fn knot_conf(dir: &Path) -> String {
    format!(
        r#"server:
    rundir: "{d}"
    listen: {KNOT_SEC}@{PORT}
    background-workers: 1
    udp-workers: 1
    tcp-workers: 1
log:
  - target: stderr
    any: info
database:
    storage: "{d}"
remote:
  - id: ours
    address: {OURS}@{PORT}
    via: {KNOT_SEC}
acl:
  - id: from_ours
    address: {OURS}
    action: notify
template:
  - id: default
    storage: "{d}"
    zonefile-sync: 0
zone:
  - domain: knot.test
    master: ours
    acl: from_ours
    file: "{d}/knot.test.zone"
"#,
        d = dir.display()
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn our_primary_feeds_bind_and_knot() {
    require("named", "bind9");
    require("knotd", "knot");
    require("kdig", "knot-dnsutils");
    require("dig", "bind9-dnsutils");
    let dir = tempfile::tempdir().expect("dir");
    let ours = engine(OURS, &dir.path().join("ours")).await;
    let zones = |serial: u32, web: &str| {
        cfg(vec![
            primary(
                content("bind.test", serial, web, 300),
                vec![format!("{BIND_IP}:{BIND_SEC_PORT}")],
                Some(key()),
            ),
            primary(
                content("knot.test", serial, web, 300),
                vec![ep(KNOT_SEC)],
                None,
            ),
        ])
    };
    ours.apply_dns(&zones(1, "192.0.2.1")).await.expect("apply");

    let bdir = dir.path().join("bind");
    std::fs::create_dir_all(&bdir).expect("dir");
    std::fs::write(bdir.join("named.conf"), bind_secondary_conf(&bdir)).expect("conf");
    let _named = spawn(
        "named",
        Command::new("named")
            .args(["-g", "-n", "1", "-c"])
            .arg(bdir.join("named.conf")),
        &bdir,
    );
    let kdir = dir.path().join("knot");
    std::fs::create_dir_all(&kdir).expect("dir");
    std::fs::write(kdir.join("knot.conf"), knot_conf(&kdir)).expect("conf");
    let _knotd = spawn(
        "knotd",
        Command::new("knotd").arg("-c").arg(kdir.join("knot.conf")),
        &kdir,
    );

    wait_for("BIND transferred (TSIG)", || {
        bind_short(BIND_SEC_PORT, "www.bind.test", "A") == "192.0.2.1"
    })
    .await;
    wait_for("Knot transferred", || {
        kdig(KNOT_SEC, "www.knot.test", "A") == "192.0.2.1"
    })
    .await;
    assert_eq!(
        kdig_at(BIND_IP, BIND_SEC_PORT, "h299.bind.test", "A"),
        "10.0.1.49"
    );
    assert_eq!(short(KNOT_SEC, "h299.knot.test", "A"), "10.0.1.49");

    // A change: NOTIFY → both pull (IXFR from our journal) and answer the new data.
    ours.apply_dns(&zones(2, "192.0.2.2")).await.expect("apply");
    wait_for("BIND updated", || {
        bind_short(BIND_SEC_PORT, "www.bind.test", "A") == "192.0.2.2"
    })
    .await;
    wait_for("Knot updated", || {
        kdig(KNOT_SEC, "www.knot.test", "A") == "192.0.2.2"
    })
    .await;
    assert!(bind_short(BIND_SEC_PORT, "bind.test", "SOA").contains(" 2 2 1 3600 60"));
    // Both took the change as an IXFR difference (a few records, not the 300+ zone).
    let log = std::fs::read_to_string(bdir.join("named.log")).unwrap_or_default();
    assert!(
        log.contains("Transfer completed: 1 messages, 6 records"),
        "BIND IXFR: {log}"
    );
    let log = std::fs::read_to_string(kdir.join("knotd.log")).unwrap_or_default();
    assert!(log.contains("IXFR, incoming"), "Knot IXFR: {log}");
    assert!(ours.stats().notifies_acked.load(Ordering::Relaxed) >= 2);

    // What BIND wrote from our transfer is a valid zone.
    wait_for("BIND zone file", || bdir.join("bind.test.db").exists()).await;
    checkzone("bind.test", &bdir.join("bind.test.db"));
}

fn bind_primary_conf(dir: &Path) -> String {
    format!(
        r#"options {{
  directory "{d}"; pid-file "{d}/named.pid"; session-keyfile "{d}/session.key";
  listen-on port {BIND_PRI_PORT} {{ {BIND_IP}; }}; listen-on-v6 {{ none; }};
  recursion no; dnssec-validation no;
  notify explicit; also-notify {{ {OUR_SEC} port {PORT}; }};
  notify-source {BIND_IP}; transfer-source {BIND_IP}; query-source address {BIND_IP};
}};
controls {{ }};
key "xfr.test." {{ algorithm hmac-sha256; secret "{SECRET}"; }};
zone "frombind.test" {{
  type primary; file "{d}/frombind.test.db"; ixfr-from-differences yes;
  allow-transfer {{ key "xfr.test."; }};
  allow-update {{ 127.0.0.1; }};
}};
"#,
        d = dir.display()
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bind_primary_feeds_our_secondary() {
    require("named", "bind9");
    require("nsupdate", "bind9-dnsutils");
    require("kdig", "knot-dnsutils");
    let dir = tempfile::tempdir().expect("dir");
    let bdir = dir.path().join("bind");
    std::fs::create_dir_all(&bdir).expect("dir");
    let zone_file = concat!(
        "$TTL 300\n@ IN SOA ns1.frombind.test. hostmaster.frombind.test. 1 2 1 3600 60\n",
        "@ IN NS ns1.frombind.test.\nns1 IN A 192.0.2.53\nwww IN A 192.0.2.10\n",
        "@ IN TXT \"hello world\" \"two\"\n@ IN MX 10 mail.frombind.test.\nmail IN A 192.0.2.25\n",
        "_sip._tcp IN SRV 10 5 5060 sip.frombind.test.\nsip IN A 192.0.2.60\n",
        "info IN HINFO \"pc\" \"linux\"\n"
    );
    std::fs::write(bdir.join("frombind.test.db"), zone_file).expect("zone");
    std::fs::write(bdir.join("named.conf"), bind_primary_conf(&bdir)).expect("conf");
    let _named = spawn(
        "named",
        Command::new("named")
            .args(["-g", "-n", "1", "-c"])
            .arg(bdir.join("named.conf")),
        &bdir,
    );
    wait_for("BIND primary up", || {
        bind_short(BIND_PRI_PORT, "www.frombind.test", "A") == "192.0.2.10"
    })
    .await;

    let sdir = dir.path().join("ours");
    let ours = engine(OUR_SEC, &sdir).await;
    ours.apply_dns(&cfg(vec![secondary(
        "frombind.test",
        format!("{BIND_IP}:{BIND_PRI_PORT}"),
        Some(key()),
    )]))
    .await
    .expect("apply");
    wait_for("our secondary transferred from BIND", || {
        kdig(OUR_SEC, "www.frombind.test", "A") == "192.0.2.10"
    })
    .await;
    assert_eq!(
        short(OUR_SEC, "frombind.test", "TXT"),
        "\"hello world\" \"two\""
    );
    assert_eq!(
        kdig(OUR_SEC, "info.frombind.test", "HINFO"),
        "\"pc\" \"linux\""
    );

    // A dynamic update on BIND: NOTIFY to us, then IXFR.
    let mut nsupdate = Command::new("nsupdate")
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .expect("nsupdate");
    {
        use std::io::Write;
        let stdin = nsupdate.stdin.as_mut().expect("stdin");
        writeln!(
            stdin,
            "server {BIND_IP} {BIND_PRI_PORT}\nzone frombind.test\nupdate delete www.frombind.test A\n\
             update add www.frombind.test 60 A 192.0.2.11\nupdate add new.frombind.test 60 AAAA 2001:db8::11\nsend"
        )
        .expect("write");
    }
    assert!(nsupdate.wait().expect("nsupdate").success());
    wait_for("our secondary updated", || {
        short(OUR_SEC, "www.frombind.test", "A") == "192.0.2.11"
    })
    .await;
    assert_eq!(kdig(OUR_SEC, "new.frombind.test", "AAAA"), "2001:db8::11");
    assert!(
        ours.stats().ixfr.load(Ordering::Relaxed) >= 1,
        "IXFR from BIND"
    );

    // Our stored copy exports to a zone named-checkzone accepts.
    let stored = role_dns::persist::load_all(&sdir.join("zones"));
    assert_eq!(stored.len(), 1);
    let export = dir.path().join("export.zone");
    std::fs::write(&export, role_dns::persist::to_text(&stored[0].zone)).expect("write");
    checkzone("frombind.test", &export);
}
