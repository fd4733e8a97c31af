//! Mail from sites (PHP `mail()`, issue 15): the one rule for which envelope
//! senders a site may use, its default sender, the login name its web servers
//! submit with, and the address-list parsing both ends need. The web engine
//! applies it before spooling (so a customer sees the refusal at once, from
//! `mail()`), the mail engine again at `MAIL FROM` and on the `From:` header (the
//! check that counts: a site's credential is worth nothing for another domain).
//!
//! **Which senders.** Exactly the site's own domain: `anything@example.com` for the
//! site `example.com`, never a subdomain, an alias host name or another domain.
//! The mail server DKIM-signs with the keys of the sender's domain and counts the
//! mail against that domain's limits, and only the site's own domain is sure to be
//! one it hosts for this customer; an alias host name may be another customer's
//! mail domain, or none.

use crate::{DomainName, EmailAddress, Invalid, LocalPart};

/// The local part of the envelope sender when the site names none
/// (`noreply@<domain>`).
pub const DEFAULT_LOCAL_PART: &str = "noreply";

/// Prefix of a site's submission login name, `site:<domain>`. It has no `@`, so it
/// can never be a mailbox's login.
pub const LOGIN_PREFIX: &str = "site:";

/// The submission login of `site`'s web servers: `site:<domain>`.
pub fn login_name(site: &DomainName) -> String {
    format!("{LOGIN_PREFIX}{site}")
}

/// The site a login name stands for, when it is a site login (`site:<domain>`).
pub fn site_of_login(user: &str) -> Option<DomainName> {
    let rest = user.get(..LOGIN_PREFIX.len())?;
    if !rest.eq_ignore_ascii_case(LOGIN_PREFIX) {
        return None;
    }
    DomainName::new(&user[LOGIN_PREFIX.len()..]).ok()
}

/// Whether `site` may use `sender` as its envelope sender or `From:` address:
/// a valid address of exactly the site's domain.
pub fn may_send_from(site: &DomainName, sender: &str) -> bool {
    EmailAddress::new(sender).is_ok_and(|a| a.domain() == site.as_str())
}

/// The envelope sender of a message from `site`: `requested` (sendmail's `-f`:
/// a local part alone, or a whole address of the site's domain) or, when `None`
/// or empty, `noreply@<domain>`. Any other domain is refused, naming the rule.
pub fn envelope_sender(
    site: &DomainName,
    requested: Option<&str>,
) -> Result<EmailAddress, Invalid> {
    let requested = requested.map(str::trim).filter(|r| !r.is_empty());
    let Some(r) = requested else {
        let local = LocalPart::new(DEFAULT_LOCAL_PART)?;
        return Ok(EmailAddress::from_parts(&local, site));
    };
    let r = r.trim_start_matches('<').trim_end_matches('>');
    if !r.contains('@') {
        let local = LocalPart::new(r)?;
        return Ok(EmailAddress::from_parts(&local, site));
    }
    let address = EmailAddress::new(r)?;
    if address.domain() != site.as_str() {
        return Err(Invalid::new(
            "foreign_sender",
            format!(
                "the site {site} may send only from addresses of its own domain \
                 (…@{site}), not from {address}"
            ),
        ));
    }
    Ok(address)
}

/// The addresses of an address-list header value (`To:`, `Cc:`, `From:` …,
/// unfolded): the part in `<…>` of each comma-separated entry, else the entry
/// itself; display names, quoted strings and comments are skipped, and group
/// syntax (`team: a@x, b@y;`) yields its members.
pub fn header_addresses(value: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut entry = String::new();
    let mut angle: Option<String> = None;
    let (mut in_angle, mut quoted, mut escaped, mut comment) = (false, false, false, 0u32);
    let mut flush = |entry: &mut String, angle: &mut Option<String>| {
        let raw = angle.take().unwrap_or_else(|| entry.clone());
        entry.clear();
        let a = raw.trim().trim_end_matches(';').trim();
        // group syntax: `name: member` keeps the member
        let a = a.rsplit_once(':').map_or(a, |(_, m)| m).trim();
        if !a.is_empty() {
            out.push(a.to_string());
        }
    };
    for c in value.chars() {
        if escaped {
            escaped = false;
            continue;
        }
        match c {
            '\\' if quoted || comment > 0 => escaped = true,
            '"' if comment == 0 && !in_angle => quoted = !quoted,
            _ if quoted => {}
            '(' if !in_angle => comment += 1,
            ')' if comment > 0 => comment -= 1,
            _ if comment > 0 => {}
            '<' => {
                in_angle = true;
                angle = Some(String::new());
            }
            '>' => in_angle = false,
            ',' if !in_angle => flush(&mut entry, &mut angle),
            _ if in_angle => angle.get_or_insert_with(String::new).push(c),
            // text after `<…>` (or a display name before it) is not the address
            _ => entry.push(c),
        }
    }
    flush(&mut entry, &mut angle);
    out
}

/// The values of every header field `name` (case-insensitive) in the header of
/// `message` (up to the first empty line), unfolded; lines may end in CRLF or LF.
pub fn header_values(message: &[u8], name: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut current: Option<String> = None;
    for line in message.split(|&b| b == b'\n') {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.is_empty() {
            break;
        }
        let text = String::from_utf8_lossy(line);
        if text.starts_with([' ', '\t']) {
            if let Some(c) = current.as_mut() {
                c.push(' ');
                c.push_str(text.trim());
            }
            continue;
        }
        out.extend(current.take());
        if let Some((field, value)) = text.split_once(':') {
            if field.trim_end().eq_ignore_ascii_case(name) {
                current = Some(value.trim().to_string());
            }
        }
    }
    out.extend(current);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> DomainName {
        DomainName::new(s).unwrap()
    }

    #[test]
    fn logins_name_their_site() {
        assert_eq!(login_name(&d("Example.COM")), "site:example.com");
        assert_eq!(site_of_login("site:example.com"), Some(d("example.com")));
        assert_eq!(site_of_login("SITE:example.com"), Some(d("example.com")));
        assert_eq!(site_of_login("alice@example.com"), None);
        assert_eq!(site_of_login("site:"), None);
        assert_eq!(site_of_login("sit"), None);
    }

    #[test]
    fn senders_are_the_sites_own_domain_only() {
        let site = d("example.com");
        assert!(may_send_from(&site, "shop@example.com"));
        assert!(may_send_from(&site, "Shop@EXAMPLE.com"));
        assert!(!may_send_from(&site, "a@sub.example.com"));
        assert!(!may_send_from(&site, "a@example.org"));
        assert!(!may_send_from(&site, "a@evilexample.com"));
        assert!(!may_send_from(&site, ""));
        assert!(!may_send_from(&site, "example.com"));
    }

    #[test]
    fn envelope_sender_defaults_and_refuses_foreign_domains() {
        let site = d("example.com");
        let s = |r| envelope_sender(&site, r).map(|a| a.to_string());
        assert_eq!(s(None).unwrap(), "noreply@example.com");
        assert_eq!(s(Some("")).unwrap(), "noreply@example.com");
        assert_eq!(s(Some("shop")).unwrap(), "shop@example.com");
        assert_eq!(s(Some("<Shop@example.com>")).unwrap(), "shop@example.com");
        let e = s(Some("ceo@bank.example")).unwrap_err();
        assert_eq!(e.rule, "foreign_sender");
        assert!(e.message.contains("example.com"), "{e:?}");
        assert!(s(Some("bad local@example.com")).is_err());
        assert!(s(Some("a@sub.example.com")).is_err());
    }

    #[test]
    fn header_fields_are_unfolded_and_end_at_the_body() {
        let m = b"From: a@x.com\r\nTo: b@y.org,\r\n  c@z.net\r\nto: d@w.io\n\nTo: body@no.pe\r\n";
        assert_eq!(header_values(m, "to"), ["b@y.org, c@z.net", "d@w.io"]);
        assert_eq!(header_values(m, "From"), ["a@x.com"]);
        assert!(header_values(m, "Cc").is_empty());
    }

    #[test]
    fn address_lists() {
        assert_eq!(header_addresses("a@x.com"), ["a@x.com"]);
        assert_eq!(
            header_addresses("\"Doe, John\" <j@x.com>, b@y.org (Bob, the one)"),
            ["j@x.com", "b@y.org"]
        );
        assert_eq!(
            header_addresses("team: a@x.com, Bee <b@y.org>;"),
            ["a@x.com", "b@y.org"]
        );
        assert_eq!(header_addresses(" "), Vec::<String>::new());
        assert_eq!(header_addresses("<a@x.com> trailing"), ["a@x.com"]);
    }
}
