//! Inbound SPF and DKIM checks (mail-auth, through the configured resolver) written
//! into an `Authentication-Results` header (RFC 8601) on mail arriving at the MX.
//! Results are recorded, not enforced: no mail is refused for them.

use std::net::{IpAddr, SocketAddr};

use mail_auth::hickory_resolver::config::{NameServerConfig, ResolverConfig, ResolverOpts};
use mail_auth::spf::verify::SpfParameters;
use mail_auth::{AuthenticatedMessage, AuthenticationResults, MessageAuthenticator};

/// SPF/DKIM verifier bound to one resolver.
pub struct Verifier {
    auth: MessageAuthenticator,
}

impl std::fmt::Debug for Verifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Verifier").finish_non_exhaustive()
    }
}

impl Verifier {
    /// A verifier asking `resolver` (UDP and TCP), from `bind` when given.
    pub fn new(resolver: SocketAddr, bind: Option<IpAddr>) -> Result<Self, String> {
        let mut ns = NameServerConfig::udp_and_tcp(resolver.ip());
        for c in &mut ns.connections {
            c.port = resolver.port();
            c.bind_addr = bind
                .filter(|b| b.is_ipv4() == resolver.is_ipv4())
                .map(|b| SocketAddr::new(b, 0));
        }
        let mut opts = ResolverOpts::default();
        opts.attempts = 2;
        opts.timeout = std::time::Duration::from_secs(5);
        let auth = MessageAuthenticator::new(ResolverConfig::from_name_servers(vec![ns]), opts)
            .map_err(|e| e.to_string())?;
        Ok(Self { auth })
    }

    /// The `Authentication-Results` header (with CRLF) for `message` received
    /// from `ip` that said `helo` and `MAIL FROM:<from>`.
    pub async fn header(
        &self,
        hostname: &str,
        ip: IpAddr,
        helo: &str,
        from: &str,
        message: &[u8],
    ) -> String {
        let spf = self
            .auth
            .verify_spf(SpfParameters::verify(ip, helo, hostname, from))
            .await;
        let mut results = AuthenticationResults::new(hostname);
        if let Some(msg) = AuthenticatedMessage::parse(message) {
            let dkim = self.auth.verify_dkim(&msg).await;
            let header_from = msg.from().to_string();
            results = results.with_dkim_results(&dkim, &header_from);
        }
        let results = results.with_spf_mailfrom_result(&spf, ip, from, helo);
        format!("Authentication-Results: {results}\r\n")
    }
}

/// `message` without `Authentication-Results` headers that claim to be ours
/// (authserv-id one of `names`: this server's and, for mail from outside, its peer
/// mail servers'): a sender must not be able to forge our verdicts (RFC 8601 §5).
pub fn strip_forged<S: AsRef<str>>(message: &[u8], names: &[S]) -> Vec<u8> {
    let end = message
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map(|p| p + 2)
        .unwrap_or(message.len());
    let (head, body) = message.split_at(end);
    let mut out = Vec::with_capacity(message.len());
    let mut dropping = false;
    for line in head.split_inclusive(|&b| b == b'\n') {
        let continuation = matches!(line.first(), Some(b' ') | Some(b'\t'));
        if !continuation {
            dropping = is_ours(line, names);
        }
        if !dropping {
            out.extend_from_slice(line);
        }
    }
    out.extend_from_slice(body);
    out
}

fn is_ours<S: AsRef<str>>(line: &[u8], names: &[S]) -> bool {
    let text = String::from_utf8_lossy(line);
    let Some((name, value)) = text.split_once(':') else {
        return false;
    };
    if !name.trim().eq_ignore_ascii_case("Authentication-Results") {
        return false;
    }
    let id = value
        .trim_start()
        .split([';', ' ', '\t', '\r'])
        .next()
        .unwrap_or("");
    names.iter().any(|n| id.eq_ignore_ascii_case(n.as_ref()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forged_results_are_removed() {
        let m = b"Authentication-Results: mx.test;\r\n\tdkim=pass\r\nAuthentication-Results: other.test; spf=fail\r\nSubject: s\r\n\r\nAuthentication-Results: mx.test; body\r\n";
        let out = strip_forged(m, &["MX.test"]);
        assert_eq!(
            out,
            b"Authentication-Results: other.test; spf=fail\r\nSubject: s\r\n\r\nAuthentication-Results: mx.test; body\r\n"
        );
        // Several names of ours (a peer mail server's too).
        let out = strip_forged(m, &["peer.test", "other.test", "mx.test"]);
        assert_eq!(
            out,
            b"Subject: s\r\n\r\nAuthentication-Results: mx.test; body\r\n"
        );
    }
}
