//! The submission client of the spool worker: one message to one mail server
//! over SMTP submission (RFC 6409), STARTTLS required and the server's certificate
//! checked against the controller CA (the mail servers' certificates name their
//! addresses), then AUTH PLAIN as the site (`site:<domain>`), MAIL, RCPT, DATA.
//! The outcome sorts recipients into sent, refused for good (5xx) and deferred.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

/// How long connecting, and each reply, may take.
const TIMEOUT: Duration = Duration::from_secs(60);

/// Why a submission did not happen at all (try the next server, or later).
#[derive(Debug, thiserror::Error)]
pub enum SubmitError {
    /// The server could not be reached or the connection broke.
    #[error("{0}")]
    Unreachable(String),
    /// The server answered with a temporary (4xx) failure.
    #[error("deferred: {0}")]
    Deferred(String),
    /// The server refused the message for good (5xx).
    #[error("refused: {0}")]
    Refused(String),
}

/// What happened to a message that was submitted.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Submitted {
    /// Recipients the server refused for good, with its reply.
    pub refused: Vec<(String, String)>,
}

/// One SMTP reply: code and text (lines joined).
struct Reply {
    code: u16,
    text: String,
}

trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

struct Conn {
    io: BufReader<Box<dyn Io>>,
}

impl Conn {
    async fn reply(&mut self) -> Result<Reply, SubmitError> {
        let mut text = String::new();
        loop {
            let mut line = String::new();
            let n = tokio::time::timeout(TIMEOUT, self.io.read_line(&mut line))
                .await
                .map_err(|_| SubmitError::Unreachable("no reply in time".into()))?
                .map_err(|e| SubmitError::Unreachable(e.to_string()))?;
            if n == 0 {
                return Err(SubmitError::Unreachable("connection closed".into()));
            }
            let line = line.trim_end();
            let code = line
                .get(..3)
                .and_then(|c| c.parse::<u16>().ok())
                .ok_or_else(|| SubmitError::Unreachable(format!("bad reply {line:?}")))?;
            if !text.is_empty() {
                text.push(' ');
            }
            text.push_str(line.get(4..).unwrap_or(""));
            if line.as_bytes().get(3) != Some(&b'-') {
                return Ok(Reply { code, text });
            }
        }
    }

    async fn send(&mut self, bytes: &[u8]) -> Result<(), SubmitError> {
        let w = self.io.get_mut();
        w.write_all(bytes)
            .await
            .map_err(|e| SubmitError::Unreachable(e.to_string()))?;
        w.flush()
            .await
            .map_err(|e| SubmitError::Unreachable(e.to_string()))
    }

    /// Send a command and read its reply.
    async fn cmd(&mut self, line: &str) -> Result<Reply, SubmitError> {
        self.send(format!("{line}\r\n").as_bytes()).await?;
        self.reply().await
    }

    /// A reply that must be 2xx/3xx as `want`; else the error it means.
    async fn expect(&mut self, line: &str, want: u16) -> Result<Reply, SubmitError> {
        let r = self.cmd(line).await?;
        if r.code / 100 == want / 100 {
            return Ok(r);
        }
        Err(failure(&r))
    }
}

fn failure(r: &Reply) -> SubmitError {
    let text = format!("{} {}", r.code, r.text);
    if r.code >= 500 {
        SubmitError::Refused(text)
    } else {
        SubmitError::Deferred(text)
    }
}

/// Dot-stuff a CRLF message and end it with `.`.
fn dot_stuffed(message: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(message.len() + 64);
    let mut at_line_start = true;
    for &b in message {
        if at_line_start && b == b'.' {
            out.push(b'.');
        }
        out.push(b);
        at_line_start = b == b'\n';
    }
    if !out.ends_with(b"\r\n") {
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b".\r\n");
    out
}

/// What to submit, as whom, where.
pub struct Submission<'a> {
    /// The mail server's submission endpoint.
    pub server: SocketAddr,
    /// Roots its certificate must chain to.
    pub tls: Arc<rustls::ClientConfig>,
    /// Name in EHLO (this web server).
    pub helo: &'a str,
    /// Login (`site:<domain>`) and secret.
    pub login: &'a str,
    /// The secret.
    pub secret: &'a str,
    /// Envelope sender.
    pub from: &'a str,
    /// Recipients.
    pub recipients: &'a [String],
    /// The message (CRLF).
    pub message: &'a [u8],
}

/// Submit one message. On a temporary refusal of any recipient nothing is sent
/// (RSET), so a retry never duplicates a copy.
pub async fn submit(s: &Submission<'_>) -> Result<Submitted, SubmitError> {
    let tcp = tokio::time::timeout(TIMEOUT, TcpStream::connect(s.server))
        .await
        .map_err(|_| SubmitError::Unreachable(format!("connect to {}: timed out", s.server)))?
        .map_err(|e| SubmitError::Unreachable(format!("connect to {}: {e}", s.server)))?;
    let mut c = Conn {
        io: BufReader::new(Box::new(tcp)),
    };
    let greeting = c.reply().await?;
    if greeting.code != 220 {
        return Err(failure(&greeting));
    }
    let ehlo = c.expect(&format!("EHLO {}", s.helo), 250).await?;
    if !ehlo.text.to_ascii_uppercase().contains("STARTTLS") {
        return Err(SubmitError::Deferred(format!(
            "{} offers no STARTTLS; the site's secret is never sent in clear",
            s.server
        )));
    }
    c.expect("STARTTLS", 220).await?;
    let plain = c.io.into_inner();
    let name = rustls::pki_types::ServerName::IpAddress(s.server.ip().into());
    let tls = tokio_rustls::TlsConnector::from(Arc::clone(&s.tls))
        .connect(name, plain)
        .await
        .map_err(|e| SubmitError::Unreachable(format!("TLS with {}: {e}", s.server)))?;
    c = Conn {
        io: BufReader::new(Box::new(tls)),
    };
    c.expect(&format!("EHLO {}", s.helo), 250).await?;
    let token =
        base64::engine::general_purpose::STANDARD.encode(format!("\0{}\0{}", s.login, s.secret));
    // A refused login is never final: the site's secret may be changing and the
    // mail server's config catching up.
    c.expect(&format!("AUTH PLAIN {token}"), 235)
        .await
        .map_err(|e| match e {
            SubmitError::Refused(t) => SubmitError::Deferred(t),
            other => other,
        })?;
    c.expect(&format!("MAIL FROM:<{}>", s.from), 250).await?;
    let mut out = Submitted::default();
    let mut accepted = 0;
    for r in s.recipients {
        let reply = c.cmd(&format!("RCPT TO:<{r}>")).await?;
        match reply.code {
            200..=299 => accepted += 1,
            500.. => out
                .refused
                .push((r.clone(), format!("{} {}", reply.code, reply.text))),
            _ => {
                let _ = c.cmd("RSET").await;
                let _ = c.cmd("QUIT").await;
                return Err(failure(&reply));
            }
        }
    }
    if accepted == 0 {
        let _ = c.cmd("QUIT").await;
        return Ok(out);
    }
    c.expect("DATA", 354).await?;
    c.send(&dot_stuffed(s.message)).await?;
    let done = c.reply().await?;
    if done.code / 100 != 2 {
        return Err(failure(&done));
    }
    let _ = c.cmd("QUIT").await;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dots_are_stuffed() {
        assert_eq!(
            dot_stuffed(b".a\r\nb\r\n..\r\n"),
            b"..a\r\nb\r\n...\r\n.\r\n"
        );
        assert_eq!(dot_stuffed(b"x"), b"x\r\n.\r\n");
    }
}
