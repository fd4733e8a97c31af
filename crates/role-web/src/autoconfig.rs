//! Mail client autoconfiguration (issue 16 point 4), answered by the web servers of
//! a mail domain's site: Thunderbird's `config-v1.1.xml` and Outlook's
//! Autodiscover XML, both pointing at the host names of the domain's mail cluster
//! (`proto::SiteMail::client_names`: `imap.`, `pop.` and `smtp.` of the
//! cluster's host name, which follow its writer; else `client_host`, the
//! writer's own host name; the platform controls the certificates of both).
//!
//! Where clients look, and what answers here:
//! - Thunderbird: `http(s)://autoconfig.<domain>/mail/config-v1.1.xml`, then
//!   `https://<domain>/.well-known/autoconfig/mail/config-v1.1.xml`;
//! - Outlook: `POST https://<domain>/autodiscover/autodiscover.xml`, then the same
//!   at `autodiscover.<domain>` (the zone publishes both names at the site's web
//!   servers, and an `_autodiscover._tcp` SRV at the domain).
//!
//! The `autoconfig.` and `autodiscover.` hosts answer only these paths; on the
//! site's own names these paths are the platform's (a customer file there is not
//! served), every other path is the site's. Pure rendering plus one bounded body
//! read: no file or network access.

use bytes::Bytes;
use http::{header, HeaderValue, Method, Request, Response, StatusCode};
use http_body_util::BodyExt;

use crate::body::{full, plain, Body, ReqBody};
use crate::plan::{Plan, Site};

/// Thunderbird's document on `autoconfig.<domain>`.
const TB_PATH: &str = "/mail/config-v1.1.xml";
/// Thunderbird's document on the domain itself.
const TB_WELL_KNOWN: &str = "/.well-known/autoconfig/mail/config-v1.1.xml";
/// Outlook's (the case varies between clients: compared without case).
const AD_PATH: &str = "/autodiscover/autodiscover.xml";
/// An Autodiscover request is a few hundred bytes.
const MAX_REQUEST: usize = 16 * 1024;

/// The host names the documents give per protocol ([`ClientHosts::of`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientHosts {
    /// IMAP.
    pub imap: String,
    /// POP3.
    pub pop3: String,
    /// Submission.
    pub smtp: String,
}

impl ClientHosts {
    /// One host for every protocol.
    pub fn one(host: &str) -> Self {
        Self {
            imap: host.to_owned(),
            pop3: host.to_owned(),
            smtp: host.to_owned(),
        }
    }

    /// From a site's mail route: its cluster's client names when all three are
    /// valid host names, else its client host when valid; `None` otherwise (no
    /// documents).
    pub fn of(mail: &proto::agent_v1::SiteMail) -> Option<Self> {
        let valid = |h: &str| model::DomainName::new(h).is_ok();
        if let Some(n) = &mail.client_names {
            if valid(&n.imap) && valid(&n.pop3) && valid(&n.smtp) {
                return Some(Self {
                    imap: n.imap.clone(),
                    pop3: n.pop3.clone(),
                    smtp: n.smtp.clone(),
                });
            }
        }
        mail.client_host
            .as_deref()
            .filter(|h| valid(h))
            .map(Self::one)
    }
}

/// Which document a request asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Doc {
    /// Thunderbird's `clientConfig`.
    Thunderbird,
    /// Outlook's Autodiscover (POX) response.
    Autodiscover,
}

/// The site a host `autoconfig.<name>` / `autodiscover.<name>` stands for, when
/// `<name>` is one of a site's names and the site's domain has mail.
pub(crate) fn prefixed_site<'p>(plan: &'p Plan, host: &str) -> Option<&'p std::sync::Arc<Site>> {
    let rest = host
        .strip_prefix("autoconfig.")
        .or_else(|| host.strip_prefix("autodiscover."))?;
    plan.site_for_host(rest)
        .filter(|s| s.mail_client_host.is_some())
}

/// The document `path` asks for, if the site's domain has mail.
pub(crate) fn wanted(site: &Site, method: &Method, path: &str) -> Option<Doc> {
    site.mail_client_host.as_ref()?;
    let get = *method == Method::GET || *method == Method::HEAD;
    if get && (path == TB_PATH || path == TB_WELL_KNOWN) {
        return Some(Doc::Thunderbird);
    }
    if (get || *method == Method::POST) && path.eq_ignore_ascii_case(AD_PATH) {
        return Some(Doc::Autodiscover);
    }
    None
}

/// Answer `doc` for `site` (the request body is read, bounded, for Outlook's
/// address).
pub(crate) async fn answer(site: &Site, doc: Doc, req: Request<ReqBody>) -> Response<Body> {
    let Some(host) = site.mail_client_host.as_ref() else {
        return plain(StatusCode::NOT_FOUND, "not found\n");
    };
    let head = req.method() == Method::HEAD;
    let xml = match doc {
        Doc::Thunderbird => thunderbird(&site.domain, host),
        Doc::Autodiscover => {
            let body = match http_body_util::Limited::new(req.into_body(), MAX_REQUEST)
                .collect()
                .await
            {
                Ok(b) => b.to_bytes(),
                Err(_) => return plain(StatusCode::PAYLOAD_TOO_LARGE, "request too large\n"),
            };
            let address = requested_address(&body).filter(|a| belongs_to(a, site));
            autodiscover(host, address.as_deref())
        }
    };
    let mut r = Response::new(if head { full(Bytes::new()) } else { full(xml) });
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/xml; charset=utf-8"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    r
}

/// Thunderbird's `clientConfig` (version 1.1): IMAP and POP3 over implicit TLS,
/// submission over implicit TLS, the whole address as the login.
pub(crate) fn thunderbird(domain: &str, hosts: &ClientHosts) -> String {
    let d = xml_escape(domain);
    let server = |kind: &str, tag: &str, port: u16| {
        let h = xml_escape(match kind {
            "imap" => &hosts.imap,
            "pop3" => &hosts.pop3,
            _ => &hosts.smtp,
        });
        format!(
            "    <{tag} type=\"{kind}\">\n      <hostname>{h}</hostname>\n      <port>{port}</port>\n      \
             <socketType>SSL</socketType>\n      <authentication>password-cleartext</authentication>\n      \
             <username>%EMAILADDRESS%</username>\n    </{tag}>\n"
        )
    };
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<clientConfig version=\"1.1\">\n  \
         <emailProvider id=\"{d}\">\n    <domain>{d}</domain>\n    <displayName>{d}</displayName>\n    \
         <displayShortName>{d}</displayShortName>\n{}{}{}  </emailProvider>\n</clientConfig>\n",
        server("imap", "incomingServer", 993),
        server("pop3", "incomingServer", 995),
        server("smtp", "outgoingServer", 465),
    )
}

/// Outlook's Autodiscover response (the 2006a "outlook" schema): IMAP and SMTP
/// over TLS, the login the requested address when it is one of the site's.
pub(crate) fn autodiscover(hosts: &ClientHosts, address: Option<&str>) -> String {
    let login = address
        .map(|a| format!("        <LoginName>{}</LoginName>\n", xml_escape(a)))
        .unwrap_or_default();
    let proto = |kind: &str, port: u16, extra: &str| {
        let h = xml_escape(match kind {
            "IMAP" => &hosts.imap,
            "POP3" => &hosts.pop3,
            _ => &hosts.smtp,
        });
        format!(
            "      <Protocol>\n        <Type>{kind}</Type>\n        <Server>{h}</Server>\n        \
             <Port>{port}</Port>\n        <DomainRequired>off</DomainRequired>\n{login}        \
             <SPA>off</SPA>\n        <SSL>on</SSL>\n        <AuthRequired>on</AuthRequired>\n{extra}      \
             </Protocol>\n"
        )
    };
    format!(
        "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<Autodiscover xmlns=\"http://schemas.microsoft.com/exchange/autodiscover/responseschema/2006\">\n  \
         <Response xmlns=\"http://schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/2006a\">\n    \
         <Account>\n      <AccountType>email</AccountType>\n      <Action>settings</Action>\n{}{}{}    \
         </Account>\n  </Response>\n</Autodiscover>\n",
        proto("IMAP", 993, ""),
        proto("POP3", 995, ""),
        proto(
            "SMTP",
            465,
            "        <UsePOPAuth>off</UsePOPAuth>\n        <SMTPLast>off</SMTPLast>\n"
        ),
    )
}

/// The `<EMailAddress>` of an Autodiscover request, trimmed, if it looks like
/// one address.
fn requested_address(body: &[u8]) -> Option<String> {
    let text = std::str::from_utf8(body).ok()?;
    let start = text.find("<EMailAddress>")? + "<EMailAddress>".len();
    let len = text[start..].find("</EMailAddress>")?;
    let a = text[start..start + len].trim();
    let (local, domain) = a.rsplit_once('@')?;
    let ok = !local.is_empty()
        && !domain.is_empty()
        && a.len() <= 254
        && a.chars().all(|c| !c.is_control() && !c.is_whitespace());
    ok.then(|| a.to_owned())
}

/// Whether `address` is at one of the site's names (another customer's domain
/// is never echoed back as a login).
fn belongs_to(address: &str, site: &Site) -> bool {
    let Some((_, domain)) = address.rsplit_once('@') else {
        return false;
    };
    let domain = domain.trim_end_matches('.').to_ascii_lowercase();
    domain == site.domain || site.aliases.contains(&domain)
}

fn xml_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thunderbird_document() {
        insta::assert_snapshot!(thunderbird(
            "example.com",
            &ClientHosts::one("mx1.hosting.example")
        ));
    }

    #[test]
    fn client_names_win_over_the_client_host_when_valid() {
        use proto::agent_v1::{ClientNames, SiteMail};
        let mut mail = SiteMail {
            submission: Vec::new(),
            secret: String::new(),
            client_host: Some("mx1.hosting.example".into()),
            client_names: None,
        };
        assert_eq!(
            ClientHosts::of(&mail),
            Some(ClientHosts::one("mx1.hosting.example"))
        );
        mail.client_names = Some(ClientNames {
            imap: "imap.m.example".into(),
            pop3: "pop.m.example".into(),
            smtp: "smtp.m.example".into(),
        });
        assert_eq!(ClientHosts::of(&mail).unwrap().smtp, "smtp.m.example");
        mail.client_names.as_mut().unwrap().pop3 = "bad name".into();
        assert_eq!(
            ClientHosts::of(&mail),
            Some(ClientHosts::one("mx1.hosting.example"))
        );
        mail.client_host = Some("-bad-".into());
        assert_eq!(ClientHosts::of(&mail), None);
    }

    #[test]
    fn documents_name_each_protocol_s_client_name() {
        let hosts = ClientHosts {
            imap: "imap.mail.hosting.example".into(),
            pop3: "pop.mail.hosting.example".into(),
            smtp: "smtp.mail.hosting.example".into(),
        };
        insta::assert_snapshot!(
            "client_names_thunderbird",
            thunderbird("example.com", &hosts)
        );
        insta::assert_snapshot!("client_names_autodiscover", autodiscover(&hosts, None));
    }

    #[test]
    fn autodiscover_document() {
        let hosts = ClientHosts::one("mx1.hosting.example");
        insta::assert_snapshot!(autodiscover(&hosts, Some("a&b@example.com")));
        assert!(!autodiscover(&hosts, None).contains("LoginName"));
    }

    #[test]
    fn the_requested_address_is_read_and_checked() {
        let req = b"<?xml version=\"1.0\"?><Autodiscover xmlns=\"x\"><Request>\
            <EMailAddress> jo@Example.com </EMailAddress></Request></Autodiscover>";
        assert_eq!(requested_address(req).as_deref(), Some("jo@Example.com"));
        for bad in [
            &b"<EMailAddress>no-at</EMailAddress>"[..],
            b"<EMailAddress>@x</EMailAddress>",
            b"",
            b"\xff",
        ] {
            assert_eq!(requested_address(bad), None);
        }
    }

    #[test]
    fn paths_need_mail_and_the_right_method() {
        let mut site = Site::for_test("example.com");
        assert_eq!(wanted(&site, &Method::GET, TB_PATH), None);
        site.mail_client_host = Some(ClientHosts::one("mx1.hosting.example"));
        assert_eq!(wanted(&site, &Method::GET, TB_PATH), Some(Doc::Thunderbird));
        assert_eq!(
            wanted(&site, &Method::GET, TB_WELL_KNOWN),
            Some(Doc::Thunderbird)
        );
        assert_eq!(wanted(&site, &Method::POST, TB_PATH), None);
        assert_eq!(
            wanted(&site, &Method::POST, "/Autodiscover/Autodiscover.xml"),
            Some(Doc::Autodiscover)
        );
        assert_eq!(wanted(&site, &Method::GET, "/index.html"), None);
        assert!(belongs_to("a@EXAMPLE.com", &site));
        assert!(!belongs_to("a@other.example", &site));
    }
}
