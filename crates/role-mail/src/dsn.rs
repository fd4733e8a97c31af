//! Delivery status notifications (RFC 3464): a `multipart/report` to the sender of
//! a message that could not be delivered, with a human part, the machine-readable
//! `message/delivery-status` part and the original headers. Sent with the null
//! reverse path, so it never bounces back.

use crate::queue::Bounce;

/// The enhanced status code (`5.x.y`) in `reply`, or `5.0.0`.
pub fn status_of(reply: &str) -> String {
    reply
        .split_whitespace()
        .find(|w| {
            let p: Vec<&str> = w.split('.').collect();
            p.len() == 3
                && p[0] == "5"
                && p.iter()
                    .all(|x| !x.is_empty() && x.bytes().all(|b| b.is_ascii_digit()))
        })
        .unwrap_or("5.0.0")
        .to_string()
}

/// The DSN message (CRLF) for `b`, from `MAILER-DAEMON@<hostname>`.
pub fn render(hostname: &str, b: &Bounce) -> Vec<u8> {
    let date = time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc2822)
        .unwrap_or_default();
    let boundary = format!("hp-dsn-{}", b.entry.id);
    let clean = |s: &str| -> String { s.chars().filter(|c| !c.is_control()).collect() };
    let mut m = format!(
        "From: Mail Delivery System <MAILER-DAEMON@{hostname}>\r\nTo: <{}>\r\n\
Subject: Undelivered Mail Returned to Sender\r\nDate: {date}\r\n\
Message-ID: <dsn-{}@{hostname}>\r\nAuto-Submitted: auto-replied\r\nMIME-Version: 1.0\r\n\
Content-Type: multipart/report; report-type=delivery-status; boundary=\"{boundary}\"\r\n\r\n\
--{boundary}\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n\
Your message could not be delivered to these recipients:\r\n\r\n",
        clean(&b.entry.from),
        b.entry.id
    );
    for (rcpt, why) in &b.failed {
        m.push_str(&format!("  <{}>: {}\r\n", clean(rcpt), clean(why)));
    }
    m.push_str(&format!(
        "\r\n--{boundary}\r\nContent-Type: message/delivery-status\r\n\r\n\
Reporting-MTA: dns; {hostname}\r\nX-Queue-ID: {}\r\n",
        b.entry.id
    ));
    for (rcpt, why) in &b.failed {
        m.push_str(&format!(
            "\r\nFinal-Recipient: rfc822; {}\r\nAction: failed\r\nStatus: {}\r\nDiagnostic-Code: smtp; {}\r\n",
            clean(rcpt),
            status_of(why),
            clean(why)
        ));
    }
    m.push_str(&format!(
        "\r\n--{boundary}\r\nContent-Type: text/rfc822-headers\r\n\r\n"
    ));
    let mut out = m.into_bytes();
    out.extend_from_slice(&b.headers);
    if !out.ends_with(b"\r\n") {
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::queue::QueueEntry;

    #[test]
    fn dsn_names_recipient_status_and_headers() {
        let b = Bounce {
            entry: QueueEntry {
                id: "q1".into(),
                relay: "mx:remote.test".into(),
                from: "alice@example.com".into(),
                rcpts: vec!["x@remote.test".into()],
                size: 10,
                created: 0,
                attempts: 1,
                next_attempt: 0,
                last_error: None,
            },
            failed: vec![("x@remote.test".into(), "550 5.1.1 no such user".into())],
            headers: b"Subject: hi\r\n".to_vec(),
        };
        let m = String::from_utf8(render("mx.test", &b)).unwrap();
        assert!(m.contains("To: <alice@example.com>"));
        assert!(m.contains("report-type=delivery-status"));
        assert!(
            m.contains("Final-Recipient: rfc822; x@remote.test\r\nAction: failed\r\nStatus: 5.1.1")
        );
        assert!(m.contains("text/rfc822-headers\r\n\r\nSubject: hi\r\n"));
        assert_eq!(status_of("550 no"), "5.0.0");
    }
}
