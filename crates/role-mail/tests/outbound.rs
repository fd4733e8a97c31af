//! Outbound delivery end-to-end between our own domains: a local DNS server
//! (role-dns) publishes MX, SPF and DKIM records; mail submitted on one server is
//! DKIM-signed, routed by MX over STARTTLS to the other, which records SPF and DKIM
//! results in Authentication-Results; permanent failures come back as DSNs.

mod common;

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Result;
use base64::Engine as _;
use common::*;
use proto::agent_v1::{DkimKey, MailConfig, MailDomain, MailPeer};
use role_dns::{RecordLine, ZoneData, ZoneSet};
use role_mail::Limits;

fn line(name: &str, rtype: &str, rdata: &str) -> RecordLine {
    RecordLine {
        name: name.into(),
        ttl: 60,
        rtype: rtype.into(),
        rdata: rdata.into(),
    }
}

fn zone(origin: &str, mut records: Vec<RecordLine>) -> ZoneData {
    records.push(line(
        origin,
        "SOA",
        &format!("ns.{origin} hostmaster.{origin} 1 7200 900 1209600 60"),
    ));
    records.push(line(origin, "NS", &format!("ns.{origin}")));
    ZoneData {
        origin: origin.into(),
        serial: 1,
        records,
    }
}

/// A DNS server on `ip` (UDP and TCP, same port) serving `zones`.
async fn dns(
    ip: std::net::IpAddr,
    zones: &[ZoneData],
) -> Result<(SocketAddr, tokio::sync::oneshot::Sender<()>)> {
    let udp = tokio::net::UdpSocket::bind(SocketAddr::new(ip, 0)).await?;
    let addr = udp.local_addr()?;
    let tcp = tokio::net::TcpListener::bind(addr).await?;
    let set = ZoneSet::from_data(zones)?;
    let (_tx, rx) = tokio::sync::watch::channel(Arc::new(set));
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(async move {
        let _keep = _tx;
        role_dns::run(udp, tcp, rx, async move {
            let _ = stopped.await;
        })
        .await;
    });
    Ok((addr, stop))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn submitted_mail_is_signed_routed_by_mx_and_failures_bounce() -> Result<()> {
    let b = block();
    let (sip, rip, dip) = (ip(b, 1), ip(b, 3), ip(b, 53));
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ED25519)?;
    let p = base64::engine::general_purpose::STANDARD.encode(key.public_key_raw());
    let zones = [
        zone(
            "example.com.",
            vec![
                line("example.com.", "MX", "10 mx.example.com."),
                line("mx.example.com.", "A", &sip.to_string()),
                line("example.com.", "TXT", &format!("\"v=spf1 ip4:{sip} -all\"")),
                line(
                    "hp1._domainkey.example.com.",
                    "TXT",
                    &format!("\"v=DKIM1; k=ed25519; p={p}\""),
                ),
            ],
        ),
        zone(
            "remote.test.",
            vec![
                line("remote.test.", "MX", "10 mx.remote.test."),
                line("mx.remote.test.", "A", &rip.to_string()),
            ],
        ),
        zone("nomail.test.", vec![line("nomail.test.", "MX", "0 .")]),
    ];
    let (resolver, _dns) = dns(dip, &zones).await?;

    // the receiving side: remote.test with mailbox x, STARTTLS on
    let rdir = tempfile::tempdir()?;
    let rport = std::net::TcpListener::bind(SocketAddr::new(rip, 0))?
        .local_addr()?
        .port();
    let rcfg = MailConfig {
        domains: vec![MailDomain {
            domain: "remote.test".into(),
            primary: true,
            mailboxes: vec!["x".into()],
            aliases: vec![],
            accounts: vec![],
            primary_smtp: None,
            dkim: None,
            dkim_rsa: None,
            limits: None,
            site_login: None,
        }],
        tls: Some(tls(rip)),
        flush: 0,
        peers: Vec::new(),
        writer: None,
    };
    let receiver = server(rip, rport, rdir.path(), &rcfg, Limits::default())?;
    receiver.set_outbound(Some(resolver), rport);

    // the sending side: example.com with a DKIM key
    let sdir = tempfile::tempdir()?;
    let mut scfg = example(None, Some(tls(sip)));
    scfg.domains[0]
        .aliases
        .push(("fwd".into(), vec!["x@remote.test".into()]));
    scfg.domains[0].dkim = Some(DkimKey {
        selector: "hp1".into(),
        algorithm: "ed25519-sha256".into(),
        private_key_pem: key.serialize_pem(),
    });
    let sender = server(sip, 0, sdir.path(), &scfg, Limits::default())?;
    sender.set_outbound(Some(resolver), rport);
    let sub = sender.addrs().submission.to_string();

    let submit = |to: &'static str| {
        let sub = sub.clone();
        async move {
            swaks(&[
                "--server",
                &sub,
                "--tls",
                "--auth",
                "PLAIN",
                "--auth-user",
                "alice@example.com",
                "--auth-password",
                "alice-pw",
                "--from",
                "alice@example.com",
                "--to",
                to,
                "--header",
                &format!("Subject: to {to}"),
            ])
            .await
        }
    };
    let r = submit("x@remote.test").await?;
    assert!(r.ok, "{}", r.out);
    let rmail = || -> Vec<String> {
        let md = rdir.path().join("mail/remote.test/x/Maildir/new");
        std::fs::read_dir(md)
            .map(|d| {
                d.flatten()
                    .map(|e| std::fs::read_to_string(e.path()).unwrap_or_default())
                    .collect()
            })
            .unwrap_or_default()
    };
    wait_for("delivery to remote.test", || rmail().len() == 1).await?;
    let m = &rmail()[0];
    assert!(
        m.contains("DKIM-Signature:") && m.contains("d=example.com"),
        "{m}"
    );
    assert!(m.contains("Authentication-Results: mx.test"), "{m}");
    assert!(m.contains("dkim=pass"), "{m}");
    assert!(m.contains("spf=pass"), "{m}");
    assert!(
        m.contains(&format!("([{sip}])")) && m.contains("with ESMTPS"),
        "{m}"
    );
    // The sender drops its queue entry after the receiver's 250, which may come
    // just after the receiver stored the message.
    wait_for("the sender's queue to empty", || {
        sender.handle().queue_list().is_empty()
    })
    .await?;

    // Mail from outside claiming a hosted sender, forwarded out by an alias: never
    // signed with example.com's key (that would make the forgery pass DMARC).
    let r = swaks(&[
        "--server",
        &sender.addrs().mx.to_string(),
        "--from",
        "alice@example.com",
        "--to",
        "fwd@example.com",
        "--header",
        "Subject: forged and forwarded",
    ])
    .await?;
    assert!(r.ok, "{}", r.out);
    wait_for("the forwarded copy at remote.test", || rmail().len() == 2).await?;
    let forwarded = rmail()
        .into_iter()
        .find(|m| m.contains("Subject: forged and forwarded"))
        .expect("forwarded copy");
    assert!(!forwarded.contains("DKIM-Signature:"), "{forwarded}");

    // permanent failures: an unknown user there, a domain that takes no mail
    let r = submit("nobody@remote.test").await?;
    assert!(r.ok, "{}", r.out);
    let r = submit("someone@nomail.test").await?;
    assert!(r.ok, "{}", r.out);
    wait_for("two DSNs to alice", || {
        mailbox(sdir.path(), "alice")
            .iter()
            .filter(|m| m.contains("multipart/report"))
            .count()
            == 2
    })
    .await?;
    let dsns = mailbox(sdir.path(), "alice");
    assert!(
        dsns.iter().any(
            |m| m.contains("Final-Recipient: rfc822; nobody@remote.test")
                && m.contains("Status: 5.1.1")
        ),
        "{dsns:?}"
    );
    assert!(
        dsns.iter()
            .any(|m| m.contains("someone@nomail.test") && m.contains("null MX")),
        "{dsns:?}"
    );
    assert!(dsns
        .iter()
        .all(|m| m.contains("Subject: Undelivered Mail Returned to Sender")));
    assert!(sender.handle().queue_list().is_empty());
    Ok(())
}

/// Mail that enters at the secondary MX is checked there (SPF against the sender's
/// address) and relayed to the primary, which keeps the secondary's verdict instead
/// of checking SPF again against the secondary's address (a certain fail). Mail
/// sent to the primary directly cannot smuggle in a verdict in the secondary's name.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mail_relayed_by_a_peer_keeps_the_verdict_made_where_it_entered() -> Result<()> {
    let b = block();
    let (pip, sip, client, stranger, dip) = (ip(b, 1), ip(b, 2), ip(b, 7), ip(b, 8), ip(b, 53));
    let zones = [zone(
        "sender.test.",
        vec![line(
            "sender.test.",
            "TXT",
            &format!("\"v=spf1 ip4:{client} -all\""),
        )],
    )];
    let (resolver, _dns) = dns(dip, &zones).await?;
    let peer = |ip: std::net::IpAddr, name: &str| MailPeer {
        addresses: vec![ip.to_string()],
        names: vec![name.to_string()],
        server: String::new(),
        replication: None,
    };

    let pdir = tempfile::tempdir()?;
    let mut pcfg = example(None, None);
    pcfg.peers = vec![peer(sip, "mx2.test")];
    let primary = server(pip, 0, pdir.path(), &pcfg, Limits::default())?;
    primary.set_outbound(Some(resolver), 25);

    let sdir = tempfile::tempdir()?;
    let mut scfg = example(Some(primary.addrs().mx), None);
    scfg.peers = vec![peer(pip, "mx.test")];
    let secondary = role_mail::MailServer::start(
        listeners(sip, 0)?,
        sdir.path(),
        "mx2.test",
        Some(sip),
        Limits::default(),
    )?;
    assert!(secondary.apply(&scfg).is_empty());
    secondary.set_outbound(Some(resolver), 25);

    let send = |mx: SocketAddr, from_ip: std::net::IpAddr, subject: &'static str| async move {
        swaks(&[
            "--server",
            &mx.to_string(),
            "--local-interface",
            &from_ip.to_string(),
            "--from",
            "someone@sender.test",
            "--to",
            "alice@example.com",
            "--header",
            &format!("Subject: {subject}"),
            "--add-header",
            "Authentication-Results: mx2.test; spf=pass smtp.mailfrom=forged.test",
        ])
        .await
    };
    // Through the secondary, from the address SPF allows.
    let r = send(secondary.addrs().mx, client, "via the secondary").await?;
    assert!(r.ok, "{}", r.out);
    wait_for("relay to the primary", || {
        mailbox(pdir.path(), "alice").len() == 1
    })
    .await?;
    let m = &mailbox(pdir.path(), "alice")[0];
    assert!(m.contains("Authentication-Results: mx2.test"), "{m}");
    assert!(m.contains("spf=pass"), "{m}");
    assert!(!m.contains("spf=fail"), "re-checked against the relay: {m}");
    assert!(
        !m.contains("forged.test"),
        "the sender's forged verdict survived: {m}"
    );
    assert!(!m.contains("Authentication-Results: mx.test"), "{m}");

    // Straight to the primary, from an address SPF does not allow, with a verdict
    // forged in the secondary's name.
    let r = send(primary.addrs().mx, stranger, "direct").await?;
    assert!(r.ok, "{}", r.out);
    wait_for("direct delivery", || {
        mailbox(pdir.path(), "alice").len() == 2
    })
    .await?;
    let direct = mailbox(pdir.path(), "alice")
        .into_iter()
        .find(|m| m.contains("Subject: direct"))
        .expect("the direct message");
    assert!(
        direct.contains("Authentication-Results: mx.test"),
        "{direct}"
    );
    assert!(direct.contains("spf=fail"), "{direct}");
    assert!(
        !direct.contains("mx2.test"),
        "forged verdict kept: {direct}"
    );
    Ok(())
}
