//! End-to-end: the real server on loopback, queried with the real `dig` (bind9-dnsutils).

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::{bail, Context, Result};
use rand::Rng;
use role_dns::{RecordLine, ZoneData, ZoneSet};
use tokio::net::{TcpListener, UdpSocket};
use tokio::sync::{oneshot, watch};

fn line(name: &str, ttl: u32, rtype: &str, rdata: &str) -> RecordLine {
    RecordLine {
        name: name.into(),
        ttl,
        rtype: rtype.into(),
        rdata: rdata.into(),
    }
}

fn example_com(web_ip: &str) -> ZoneData {
    let o = "example.com.";
    let mut records = vec![
        line(
            o,
            3600,
            "SOA",
            "ns1.example.com. hostmaster.example.com. 1 7200 900 1209600 300",
        ),
        line(o, 3600, "NS", "ns1.example.com."),
        line(o, 3600, "NS", "ns2.example.com."),
        line(o, 60, "A", web_ip),
        line(o, 60, "AAAA", "2001:db8::1"),
        line(o, 300, "MX", "10 mail.example.com."),
        line(o, 300, "TXT", "\"v=spf1 mx -all\""),
        line(o, 300, "CAA", "0 issue \"letsencrypt.org\""),
        line("ns1.example.com.", 3600, "A", "192.0.2.53"),
        line("ns2.example.com.", 3600, "A", "198.51.100.53"),
        line("mail.example.com.", 300, "A", "192.0.2.25"),
        line("www.example.com.", 300, "CNAME", "web.example.com."),
        line("web.example.com.", 300, "CNAME", "example.com."),
        line(
            "_sip._tcp.example.com.",
            300,
            "SRV",
            "10 5 5060 sip.example.com.",
        ),
        line("sip.example.com.", 300, "A", "192.0.2.60"),
        line("*.wild.example.com.", 120, "A", "192.0.2.77"),
        line("sub.example.com.", 3600, "NS", "ns.sub.example.com."),
        line("ns.sub.example.com.", 3600, "A", "192.0.2.200"),
    ];
    for i in 0..40 {
        records.push(line(
            "big.example.com.",
            60,
            "TXT",
            &format!("\"{i:03} {}\"", "x".repeat(90)),
        ));
    }
    ZoneData {
        origin: o.into(),
        serial: 1,
        records,
    }
}

fn example_net() -> ZoneData {
    let o = "example.net.";
    ZoneData {
        origin: o.into(),
        serial: 5,
        records: vec![
            line(
                o,
                3600,
                "SOA",
                "ns1.example.com. hostmaster.example.com. 1 7200 900 1209600 600",
            ),
            line(o, 3600, "NS", "ns1.example.com."),
            line(o, 60, "A", "203.0.113.7"),
        ],
    }
}

fn zone_set(web_ip: &str) -> Result<Arc<ZoneSet>> {
    Ok(Arc::new(ZoneSet::from_data([
        &example_com(web_ip),
        &example_net(),
    ])?))
}

struct Server {
    port: u16,
    zones: watch::Sender<Arc<ZoneSet>>,
    stop: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<()>,
}

impl Server {
    /// Binds TCP to port 0 and UDP to the same port number (retrying on collision).
    async fn start(zones: Arc<ZoneSet>) -> Result<Self> {
        let mut last_err = None;
        for _ in 0..20 {
            let tcp = TcpListener::bind("127.0.0.1:0").await?;
            let port = tcp.local_addr()?.port();
            match UdpSocket::bind(SocketAddr::from(([127, 0, 0, 1], port))).await {
                Ok(udp) => {
                    let (tx, rx) = watch::channel(zones);
                    let (stop, stopped) = oneshot::channel::<()>();
                    let task = tokio::spawn(role_dns::run(udp, tcp, rx, async move {
                        let _ = stopped.await;
                    }));
                    return Ok(Self {
                        port,
                        zones: tx,
                        stop: Some(stop),
                        task,
                    });
                }
                Err(e) => last_err = Some(e),
            }
        }
        bail!("no free UDP+TCP port pair: {last_err:?}")
    }

    async fn stop(mut self) -> Result<()> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        tokio::time::timeout(std::time::Duration::from_secs(5), &mut self.task)
            .await
            .context("server did not stop")??;
        Ok(())
    }
}

/// What `dig` printed, split into header fields and sections.
#[derive(Debug, Default)]
struct Dig {
    status: String,
    flags: Vec<String>,
    answer: Vec<String>,
    authority: Vec<String>,
    additional: Vec<String>,
    raw: String,
}

impl Dig {
    fn has_flag(&self, flag: &str) -> bool {
        self.flags.iter().any(|f| f == flag)
    }
    /// Records of one type in a section, as (owner, rdata).
    fn rrs<'a>(section: &'a [String], rtype: &str) -> Vec<(&'a str, String)> {
        section
            .iter()
            .filter_map(|l| {
                let f: Vec<&str> = l.split_whitespace().collect();
                (f.len() >= 5 && f[3] == rtype).then(|| (f[0], f[4..].join(" ")))
            })
            .collect()
    }
}

async fn dig(port: u16, args: &[&str]) -> Result<Dig> {
    let out = match tokio::process::Command::new("dig")
        .arg("@127.0.0.1")
        .args(["-p", &port.to_string(), "+norecurse", "+time=2", "+tries=2"])
        .args(args)
        .output()
        .await
    {
        Ok(out) => out,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            panic!("`dig` not found: install bind9-dnsutils (apt-get install bind9-dnsutils)")
        }
        Err(e) => return Err(e.into()),
    };
    let raw = String::from_utf8_lossy(&out.stdout).into_owned();
    if !out.status.success() {
        bail!(
            "dig {args:?} failed: {raw}{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let mut d = Dig {
        raw: raw.clone(),
        ..Dig::default()
    };
    let mut section = "";
    for l in raw.lines() {
        if let Some(rest) = l.split("status: ").nth(1) {
            d.status = rest.split(',').next().unwrap_or_default().to_string();
        } else if let Some(rest) = l.strip_prefix(";; flags: ") {
            let flags = rest.split(';').next().unwrap_or_default();
            d.flags = flags.split_whitespace().map(str::to_string).collect();
        } else if l.starts_with(";; ") && l.ends_with(" SECTION:") {
            section = l;
        } else if !l.is_empty() && !l.starts_with(';') {
            let target = match section {
                ";; ANSWER SECTION:" => &mut d.answer,
                ";; AUTHORITY SECTION:" => &mut d.authority,
                ";; ADDITIONAL SECTION:" => &mut d.additional,
                _ => continue,
            };
            target.push(l.to_string());
        }
    }
    Ok(d)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn answers_real_dig_queries() -> Result<()> {
    let server = Server::start(zone_set("192.0.2.1")?).await?;
    let p = server.port;

    // Positive answers, authoritative.
    for (name, rtype, want) in [
        ("example.com", "A", "192.0.2.1"),
        ("example.com", "AAAA", "2001:db8::1"),
        ("example.com", "MX", "10 mail.example.com."),
        ("example.com", "TXT", "\"v=spf1 mx -all\""),
        ("example.com", "CAA", "0 issue \"letsencrypt.org\""),
        ("_sip._tcp.example.com", "SRV", "10 5 5060 sip.example.com."),
        ("example.net", "A", "203.0.113.7"),
    ] {
        let d = dig(p, &[name, rtype]).await?;
        assert_eq!(d.status, "NOERROR", "{name} {rtype}: {}", d.raw);
        assert!(d.has_flag("aa"), "{name} {rtype}: {}", d.raw);
        let got = Dig::rrs(&d.answer, rtype);
        assert_eq!(got.len(), 1, "{name} {rtype}: {}", d.raw);
        assert_eq!(got[0].1, want, "{name} {rtype}");
    }

    // MX and SRV targets' addresses in the additional section.
    let d = dig(p, &["example.com", "MX"]).await?;
    assert_eq!(
        Dig::rrs(&d.additional, "A"),
        vec![("mail.example.com.", "192.0.2.25".to_string())]
    );
    let d = dig(p, &["_sip._tcp.example.com", "SRV"]).await?;
    assert_eq!(
        Dig::rrs(&d.additional, "A"),
        vec![("sip.example.com.", "192.0.2.60".to_string())]
    );

    // Case-insensitive, question case preserved.
    let d = dig(p, &["ExAmPlE.CoM", "A"]).await?;
    assert_eq!(d.status, "NOERROR");
    assert!(d.raw.contains(";ExAmPlE.CoM.\t"), "{}", d.raw);

    // NXDOMAIN with SOA (negative TTL = min(3600, 300)).
    let d = dig(p, &["nope.example.com", "A"]).await?;
    assert_eq!(d.status, "NXDOMAIN", "{}", d.raw);
    assert!(d.has_flag("aa"));
    let soa: Vec<&String> = d
        .authority
        .iter()
        .filter(|l| l.contains("\tSOA\t"))
        .collect();
    assert_eq!(soa.len(), 1, "{}", d.raw);
    assert_eq!(soa[0].split_whitespace().nth(1), Some("300"));
    assert!(soa[0].contains(" 1 7200 900 1209600 300"));

    // NODATA: NOERROR, no answer, SOA in authority.
    let d = dig(p, &["mail.example.com", "AAAA"]).await?;
    assert_eq!(d.status, "NOERROR");
    assert!(d.answer.is_empty() && d.has_flag("aa"), "{}", d.raw);
    assert_eq!(Dig::rrs(&d.authority, "SOA").len(), 1, "{}", d.raw);

    // REFUSED for a zone we do not hold.
    let d = dig(p, &["www.example.org", "A"]).await?;
    assert_eq!(d.status, "REFUSED", "{}", d.raw);
    assert!(!d.has_flag("aa"));

    // CNAME chain followed inside the zone.
    let d = dig(p, &["www.example.com", "A"]).await?;
    assert_eq!(Dig::rrs(&d.answer, "CNAME").len(), 2, "{}", d.raw);
    assert_eq!(
        Dig::rrs(&d.answer, "A"),
        vec![("example.com.", "192.0.2.1".to_string())]
    );

    // Wildcard synthesis.
    let d = dig(p, &["anything.wild.example.com", "A"]).await?;
    assert_eq!(
        Dig::rrs(&d.answer, "A"),
        vec![("anything.wild.example.com.", "192.0.2.77".to_string())],
        "{}",
        d.raw
    );

    // Referral with glue, not authoritative.
    let d = dig(p, &["host.sub.example.com", "A"]).await?;
    assert_eq!(d.status, "NOERROR");
    assert!(!d.has_flag("aa"), "{}", d.raw);
    assert!(d.answer.is_empty());
    assert_eq!(
        Dig::rrs(&d.authority, "NS"),
        vec![("sub.example.com.", "ns.sub.example.com.".to_string())]
    );
    assert_eq!(
        Dig::rrs(&d.additional, "A"),
        vec![("ns.sub.example.com.", "192.0.2.200".to_string())]
    );

    // Big RRset: TC over UDP (+ignore keeps the truncated reply) ...
    let d = dig(p, &["+ignore", "big.example.com", "TXT"]).await?;
    assert!(d.has_flag("tc"), "{}", d.raw);
    assert!(d.answer.is_empty());
    // ... and dig's default retry over TCP gets all of it; so does +tcp.
    for extra in [None, Some("+tcp")] {
        let mut args = vec!["big.example.com", "TXT"];
        args.extend(extra);
        let d = dig(p, &args).await?;
        assert!(!d.has_flag("tc"), "{}", d.raw);
        assert_eq!(Dig::rrs(&d.answer, "TXT").len(), 40, "{extra:?}");
    }
    // Without EDNS the limit is 512 bytes.
    let d = dig(p, &["+noedns", "+ignore", "example.com", "CAA"]).await?;
    assert!(!d.has_flag("tc"));
    let d = dig(p, &["+noedns", "+ignore", "big.example.com", "TXT"]).await?;
    assert!(d.has_flag("tc"));

    // Several queries on one TCP connection.
    let d = dig(
        p,
        &["+tcp", "+keepopen", "example.com", "A", "example.net", "A"],
    )
    .await?;
    assert_eq!(d.answer.len(), 2, "{}", d.raw);

    server.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_zone_changes_without_restart() -> Result<()> {
    let server = Server::start(zone_set("192.0.2.1")?).await?;
    let p = server.port;
    let a = |d: &Dig| {
        Dig::rrs(&d.answer, "A")
            .into_iter()
            .map(|(_, r)| r)
            .collect::<Vec<_>>()
    };

    assert_eq!(a(&dig(p, &["example.com", "A"]).await?), vec!["192.0.2.1"]);
    // Change a record.
    server.zones.send_replace(zone_set("192.0.2.99")?);
    assert_eq!(a(&dig(p, &["example.com", "A"]).await?), vec!["192.0.2.99"]);
    // Remove a zone.
    server
        .zones
        .send_replace(Arc::new(ZoneSet::from_data([&example_com("192.0.2.99")])?));
    assert_eq!(dig(p, &["example.net", "A"]).await?.status, "REFUSED");
    // Add one back, plus a new one.
    let mut org = example_net();
    org.origin = "example.org.".into();
    for r in &mut org.records {
        r.name = "example.org.".into();
    }
    server.zones.send_replace(Arc::new(ZoneSet::from_data([
        &example_com("192.0.2.99"),
        &example_net(),
        &org,
    ])?));
    assert_eq!(
        a(&dig(p, &["example.net", "A"]).await?),
        vec!["203.0.113.7"]
    );
    assert_eq!(
        a(&dig(p, &["www.example.org", "A"]).await?),
        Vec::<String>::new()
    );
    assert_eq!(dig(p, &["example.org", "A"]).await?.status, "NOERROR");

    // Queries running while zones are swapped keep being answered.
    let swapper = {
        let tx = server.zones.clone();
        let sets = [zone_set("192.0.2.1")?, zone_set("192.0.2.2")?];
        tokio::spawn(async move {
            for i in 0..200 {
                tx.send_replace(Arc::clone(&sets[i % 2]));
                tokio::time::sleep(std::time::Duration::from_millis(2)).await;
            }
        })
    };
    for _ in 0..5 {
        let got = a(&dig(p, &["example.com", "A"]).await?);
        assert!(
            got == vec!["192.0.2.1"] || got == vec!["192.0.2.2"],
            "{got:?}"
        );
    }
    swapper.await?;
    server.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_does_not_stop_the_server() -> Result<()> {
    let server = Server::start(zone_set("192.0.2.1")?).await?;
    let p = server.port;
    let target = SocketAddr::from(([127, 0, 0, 1], p));
    let sock = UdpSocket::bind("127.0.0.1:0").await?;
    let mut rng = rand::thread_rng();
    // A valid query to mutate: id 0xabcd, one question example.com A.
    let valid: Vec<u8> = [
        &[0xab, 0xcd, 0x00, 0x00, 0, 1, 0, 0, 0, 0, 0, 0][..],
        b"\x07example\x03com\x00\x00\x01\x00\x01",
    ]
    .concat();
    for i in 0..2000 {
        let packet: Vec<u8> = match i % 4 {
            0 => (0..rng.gen_range(0..600)).map(|_| rng.gen()).collect(),
            1 => valid[..rng.gen_range(0..valid.len())].to_vec(),
            2 => {
                let mut p = valid.clone();
                let at = rng.gen_range(0..p.len());
                p[at] = rng.gen();
                p
            }
            _ => {
                let mut p = valid.clone();
                p.extend((0..rng.gen_range(1..40)).map(|_| rng.gen::<u8>()));
                p[11] = rng.gen(); // claim additional records that are garbage
                p
            }
        };
        sock.send_to(&packet, target).await?;
    }
    // A truncated question gets a header-only FORMERR with its id. Fresh socket (the
    // first one's buffer is full of replies to garbage) and retries (UDP may drop the
    // probe while the server still works through the burst).
    let probe_sock = UdpSocket::bind("127.0.0.1:0").await?;
    let mut probe = valid[..15].to_vec();
    probe[..2].copy_from_slice(&[0x5a, 0x5b]);
    let mut buf = [0u8; 4096];
    let mut reply = None;
    for _ in 0..10 {
        probe_sock.send_to(&probe, target).await?;
        if let Ok(got) = tokio::time::timeout(
            std::time::Duration::from_millis(500),
            probe_sock.recv_from(&mut buf),
        )
        .await
        {
            let (n, _) = got?;
            reply = Some(buf[..n].to_vec());
            break;
        }
    }
    let reply = reply.context("no reply to the truncated query")?;
    assert_eq!(&reply[..2], &[0x5a, 0x5b]);
    assert_eq!(reply.len(), 12, "{reply:?}");
    assert_eq!(reply[3] & 0x0f, 1, "FORMERR expected: {reply:?}");
    assert_ne!(reply[2] & 0x80, 0, "QR set");

    // Garbage on TCP too: a connection sending junk is closed, others still work.
    {
        use tokio::io::AsyncWriteExt;
        let mut junk = tokio::net::TcpStream::connect(target).await?;
        let bytes: Vec<u8> = (0..3000).map(|_| rng.gen()).collect();
        let _ = junk.write_all(&bytes).await;
    }

    let d = dig(p, &["example.com", "A"]).await?;
    assert_eq!(d.status, "NOERROR");
    assert!(d.has_flag("aa"));
    let d = dig(p, &["+tcp", "example.com", "A"]).await?;
    assert_eq!(d.status, "NOERROR");
    server.stop().await
}

/// Raw TCP: several length-prefixed queries on one connection, pipelined, then the
/// idle timeout closes it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tcp_pipelining_and_idle_timeout() -> Result<()> {
    use std::time::{Duration, Instant};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let tcp = TcpListener::bind("127.0.0.1:0").await?;
    let addr = tcp.local_addr()?;
    let udp = UdpSocket::bind("127.0.0.1:0").await?;
    let (_tx, rx) = watch::channel(zone_set("192.0.2.1")?);
    let (stop, stopped) = oneshot::channel::<()>();
    let options = role_dns::ServerOptions {
        tcp_idle_timeout: Duration::from_millis(300),
        ..role_dns::ServerOptions::default()
    };
    let task = tokio::spawn(role_dns::run_with_options(
        udp,
        tcp,
        rx,
        async move {
            let _ = stopped.await;
        },
        options,
    ));

    let query = |id: u16, name: &[u8]| -> Vec<u8> {
        let mut q = id.to_be_bytes().to_vec();
        q.extend_from_slice(&[0, 0, 0, 1, 0, 0, 0, 0, 0, 0]);
        q.extend_from_slice(name);
        q.extend_from_slice(&[0, 1, 0, 1]);
        let mut framed = u16::try_from(q.len()).unwrap_or(0).to_be_bytes().to_vec();
        framed.extend(q);
        framed
    };
    let mut conn = tokio::net::TcpStream::connect(addr).await?;
    let mut batch = query(1, b"\x07example\x03com\x00");
    batch.extend(query(2, b"\x07example\x03net\x00"));
    batch.extend(query(3, b"\x07example\x03org\x00"));
    conn.write_all(&batch).await?;
    let mut replies = Vec::new();
    for _ in 0..3 {
        let len = usize::from(conn.read_u16().await?);
        let mut body = vec![0u8; len];
        conn.read_exact(&mut body).await?;
        replies.push((u16::from_be_bytes([body[0], body[1]]), body[3] & 0x0f));
    }
    // ids in order; example.org is not ours: REFUSED (5).
    assert_eq!(replies, vec![(1, 0), (2, 0), (3, 5)]);

    // Idle: the server closes the connection after the timeout.
    let started = Instant::now();
    let mut rest = Vec::new();
    let n = tokio::time::timeout(Duration::from_secs(5), conn.read_to_end(&mut rest))
        .await
        .context("idle connection not closed")??;
    assert_eq!(n, 0);
    assert!(started.elapsed() >= Duration::from_millis(250));

    let _ = stop.send(());
    tokio::time::timeout(Duration::from_secs(5), task).await??;
    Ok(())
}
