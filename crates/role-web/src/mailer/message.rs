//! What the sendmail socket makes of a site's message before spooling it (pure):
//! line ends normalised to CRLF, the envelope sender and the recipients decided
//! (`-f`, arguments, `-t` headers), `Bcc:` removed, `From:`, `Date:` and
//! `Message-ID:` added when missing, and a `From:` of another domain refused. The
//! sender rule is `model::sitemail`'s, the one the mail server applies again.

use model::sitemail::{envelope_sender, header_addresses, header_values, may_send_from};
use model::{DomainName, EmailAddress};
use proto::sendmail::SendmailRequest;

/// Most recipients of one message from a site (the mail server's default limit
/// per message; more would be deferred there for ever).
pub const MAX_RECIPIENTS: usize = proto::agent_v1::MailLimits::DEFAULT_RECIPIENTS as usize;

/// A message ready for the spool.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Prepared {
    /// The envelope sender.
    pub from: String,
    /// The recipients, lower-case domain, without duplicates.
    pub recipients: Vec<String>,
    /// The message, CRLF line ends.
    pub message: Vec<u8>,
}

/// `raw` with every line ending in CRLF (bare LF and bare CR become CRLF).
pub fn crlf(raw: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(raw.len() + raw.len() / 32 + 2);
    let mut i = 0;
    while i < raw.len() {
        match raw[i] {
            b'\r' => {
                out.extend_from_slice(b"\r\n");
                if raw.get(i + 1) == Some(&b'\n') {
                    i += 1;
                }
            }
            b'\n' => out.extend_from_slice(b"\r\n"),
            b => out.push(b),
        }
        i += 1;
    }
    if !out.is_empty() && !out.ends_with(b"\r\n") {
        out.extend_from_slice(b"\r\n");
    }
    out
}

/// Split a CRLF message into its header lines (without CRLF) and its body.
fn split(message: &[u8]) -> (Vec<&[u8]>, &[u8]) {
    let mut lines = Vec::new();
    let mut rest = message;
    loop {
        let Some(end) = rest.windows(2).position(|w| w == b"\r\n") else {
            // no blank line: everything is header
            if !rest.is_empty() {
                lines.push(rest);
            }
            return (lines, &[]);
        };
        let line = &rest[..end];
        rest = &rest[end + 2..];
        if line.is_empty() {
            return (lines, rest);
        }
        lines.push(line);
    }
}

/// The header lines without every field named `name` (with its folded lines).
fn without<'a>(lines: Vec<&'a [u8]>, name: &str) -> Vec<&'a [u8]> {
    let mut dropping = false;
    lines
        .into_iter()
        .filter(|l| {
            if l.first().is_some_and(|b| *b == b' ' || *b == b'\t') {
                return !dropping;
            }
            let field = l.split(|&b| b == b':').next().unwrap_or_default();
            dropping = field.eq_ignore_ascii_case(name.as_bytes());
            !dropping
        })
        .collect()
}

/// Prepare `raw` from `site` as sendmail asked (`req`); `unique` makes the
/// `Message-ID` (the spool's clock and a counter), `date` is RFC 2822 text. `Err`
/// is the sentence shown to the site.
pub fn prepare(
    site: &DomainName,
    req: &SendmailRequest,
    raw: &[u8],
    unique: &str,
    date: &str,
) -> Result<Prepared, String> {
    let from = envelope_sender(site, req.from.as_deref())
        .map_err(|e| format!("sender: {}", e.message))?
        .to_string();
    let message = crlf(raw);
    let mut wanted: Vec<String> = req.recipients.clone();
    if req.extract {
        for h in ["To", "Cc", "Bcc"] {
            for v in header_values(&message, h) {
                wanted.extend(header_addresses(&v));
            }
        }
    }
    let mut recipients: Vec<String> = Vec::new();
    for r in wanted {
        for r in header_addresses(&r) {
            let a = EmailAddress::new(&r)
                .map_err(|e| format!("recipient {r:?}: {}", e.message))?
                .to_string();
            if !recipients.contains(&a) {
                recipients.push(a);
            }
        }
    }
    if recipients.is_empty() {
        return Err("no recipients (give them as arguments, or -t with To:/Cc:/Bcc:)".into());
    }
    if recipients.len() > MAX_RECIPIENTS {
        return Err(format!(
            "{} recipients; at most {MAX_RECIPIENTS} per message",
            recipients.len()
        ));
    }
    let header_from: Vec<String> = header_values(&message, "From")
        .iter()
        .flat_map(|v| header_addresses(v))
        .collect();
    if let Some(bad) = header_from.iter().find(|a| !may_send_from(site, a)) {
        return Err(format!(
            "From: {bad} is not an address of the site's domain; a site may send only from …@{site}"
        ));
    }
    let (lines, body) = split(&message);
    let lines = without(lines, "Bcc");
    let has = |name: &str| !header_values(&message, name).is_empty();
    let mut out = Vec::with_capacity(message.len() + 200);
    if header_from.is_empty() {
        out.extend_from_slice(format!("From: {from}\r\n").as_bytes());
    }
    if !has("Date") {
        out.extend_from_slice(format!("Date: {date}\r\n").as_bytes());
    }
    if !has("Message-ID") {
        out.extend_from_slice(format!("Message-ID: <{unique}@{site}>\r\n").as_bytes());
    }
    for l in lines {
        out.extend_from_slice(l);
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(body);
    Ok(Prepared {
        from,
        recipients,
        message: out,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn site() -> DomainName {
        DomainName::new("example.com").unwrap()
    }

    fn req(from: Option<&str>, extract: bool, rcpts: &[&str]) -> SendmailRequest {
        SendmailRequest {
            format: 1,
            from: from.map(str::to_string),
            extract,
            recipients: rcpts.iter().map(|s| s.to_string()).collect(),
        }
    }

    #[test]
    fn php_mail_with_t_gets_headers_added_and_bcc_removed() {
        let raw = b"To: Ann <ann@x.test>, bob@y.test\nBcc: hidden@z.test\n  ,more@z.test\nSubject: hi\n\nline\n.\n";
        let p = prepare(
            &site(),
            &req(None, true, &[]),
            raw,
            "u1",
            "Mon, 7 Dec 2026 10:00:00 +0000",
        )
        .unwrap();
        assert_eq!(p.from, "noreply@example.com");
        assert_eq!(
            p.recipients,
            ["ann@x.test", "bob@y.test", "hidden@z.test", "more@z.test"]
        );
        let m = String::from_utf8(p.message).unwrap();
        assert!(m.starts_with("From: noreply@example.com\r\nDate: Mon, 7 Dec 2026 10:00:00 +0000\r\nMessage-ID: <u1@example.com>\r\nTo: Ann"), "{m}");
        assert!(!m.contains("Bcc") && !m.contains("more@"), "{m}");
        assert!(m.ends_with("Subject: hi\r\n\r\nline\r\n.\r\n"), "{m}");
    }

    #[test]
    fn sender_rules_are_the_sites() {
        let raw = b"From: Shop <shop@example.com>\r\nDate: x\r\nMessage-ID: <a@b>\r\n\r\nhi\r\n";
        let p = prepare(
            &site(),
            &req(Some("shop"), false, &["a@x.test"]),
            raw,
            "u",
            "d",
        )
        .unwrap();
        assert_eq!(p.from, "shop@example.com");
        assert_eq!(p.message, raw);
        let e = prepare(
            &site(),
            &req(Some("ceo@bank.test"), false, &["a@x.test"]),
            raw,
            "u",
            "d",
        )
        .unwrap_err();
        assert!(e.contains("only from addresses of its own domain"), "{e}");
        let forged = b"From: ceo@bank.test\r\n\r\nhi\r\n";
        let e = prepare(&site(), &req(None, false, &["a@x.test"]), forged, "u", "d").unwrap_err();
        assert!(e.contains("From: ceo@bank.test"), "{e}");
        let e = prepare(
            &site(),
            &req(None, true, &[]),
            b"Subject: x\r\n\r\n",
            "u",
            "d",
        )
        .unwrap_err();
        assert!(e.contains("no recipients"), "{e}");
        let e = prepare(
            &site(),
            &req(None, false, &["not an address"]),
            b"\r\n",
            "u",
            "d",
        )
        .unwrap_err();
        assert!(e.contains("recipient"), "{e}");
    }

    #[test]
    fn line_ends() {
        assert_eq!(crlf(b"a\nb\r\nc\rd"), b"a\r\nb\r\nc\r\nd\r\n");
        assert_eq!(crlf(b""), b"");
    }
}
