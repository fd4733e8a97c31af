//! A small SMTP client for relaying queued mail: connects from the server's own
//! address, EHLO, then one MAIL/RCPT/DATA transaction per message on the same
//! connection, dot-stuffing the body. STARTTLS is used whenever the server offers
//! it (opportunistic: any certificate is accepted). Replies are sorted into delivered, deferred
//! (4xx) and rejected (5xx) recipients.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use tokio::net::TcpSocket;

use crate::conn::{Conn, ConnError};

/// How long one reply may take.
const REPLY_TIMEOUT: Duration = Duration::from_secs(120);
/// How long a connect may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);

/// A relay attempt failed as a whole (temporary).
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// Socket trouble.
    #[error("connection: {0}")]
    Conn(#[from] ConnError),
    /// Socket trouble while connecting.
    #[error("connect: {0}")]
    Io(#[from] std::io::Error),
    /// The server said something we cannot continue after.
    #[error("{0}")]
    Protocol(String),
}

/// The result of one transaction.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct TxOutcome {
    /// Recipients refused with 5xx (reply text).
    pub rejected: Vec<(String, String)>,
    /// Recipients refused temporarily (reply text): try again later.
    pub deferred: Vec<(String, String)>,
}

/// An open SMTP client connection.
pub struct SmtpClient {
    conn: Conn,
    tls: bool,
    ext: Vec<String>,
}

impl SmtpClient {
    /// Connect to `addr` from `bind` (port 0) and greet with `hostname`.
    pub async fn connect(
        addr: SocketAddr,
        bind: Option<IpAddr>,
        hostname: &str,
    ) -> Result<Self, ClientError> {
        let sock = if addr.is_ipv4() {
            TcpSocket::new_v4()?
        } else {
            TcpSocket::new_v6()?
        };
        if let Some(ip) = bind {
            if ip.is_ipv4() == addr.is_ipv4() {
                sock.bind(SocketAddr::new(ip, 0))?;
            }
        }
        let stream = tokio::time::timeout(CONNECT_TIMEOUT, sock.connect(addr))
            .await
            .map_err(|_| ClientError::Protocol("connect timeout".into()))??;
        let _ = stream.set_nodelay(true);
        let mut c = Self {
            conn: Conn::new(Box::new(stream)),
            tls: false,
            ext: Vec::new(),
        };
        c.expect(2).await?;
        let mut ext = c.ehlo(hostname).await?;
        if ext.iter().any(|l| l.eq_ignore_ascii_case("STARTTLS")) {
            c.conn.send(b"STARTTLS\r\n");
            c.expect(2).await?;
            let connector = crate::tls::opportunistic_connector()
                .map_err(|e| ClientError::Protocol(e.to_string()))?;
            let name = rustls::pki_types::ServerName::IpAddress(addr.ip().into());
            c.conn
                .upgrade_client(&connector, name, CONNECT_TIMEOUT)
                .await?;
            c.tls = true;
            ext = c.ehlo(hostname).await?;
        }
        c.ext = ext;
        Ok(c)
    }

    /// EHLO; returns the extension keywords.
    async fn ehlo(&mut self, hostname: &str) -> Result<Vec<String>, ClientError> {
        self.conn.send(format!("EHLO {hostname}\r\n").as_bytes());
        let (code, lines) = self.reply_lines().await?;
        if code / 100 != 2 {
            return Err(ClientError::Protocol(lines.join(" ")));
        }
        Ok(lines
            .iter()
            .skip(1)
            .map(|l| l.get(4..).unwrap_or("").trim().to_string())
            .collect())
    }

    /// Whether the server announced extension `name`.
    fn has(&self, name: &str) -> bool {
        self.ext.iter().any(|e| {
            e.split_whitespace()
                .next()
                .is_some_and(|k| k.eq_ignore_ascii_case(name))
        })
    }

    /// Whether the connection is encrypted.
    pub fn is_tls(&self) -> bool {
        self.tls
    }

    /// Read one (multi-line) reply: code and every line.
    async fn reply_lines(&mut self) -> Result<(u16, Vec<String>), ClientError> {
        let mut lines = Vec::new();
        loop {
            let line = self.conn.read_line(4096, REPLY_TIMEOUT).await?;
            let text = String::from_utf8_lossy(&line.bytes).into_owned();
            let code: u16 = text
                .get(..3)
                .and_then(|c| c.parse().ok())
                .ok_or_else(|| ClientError::Protocol(format!("bad reply {text:?}")))?;
            let last = text.as_bytes().get(3) != Some(&b'-');
            lines.push(text);
            if last {
                return Ok((code, lines));
            }
        }
    }

    /// Read one (multi-line) reply: code and the text of its last line.
    async fn reply(&mut self) -> Result<(u16, String), ClientError> {
        let (code, mut lines) = self.reply_lines().await?;
        Ok((code, lines.pop().unwrap_or_default()))
    }

    async fn expect(&mut self, class: u16) -> Result<String, ClientError> {
        let (code, text) = self.reply().await?;
        if code / 100 == class {
            Ok(text)
        } else {
            Err(ClientError::Protocol(text))
        }
    }

    /// Send one message. `Err` means the whole attempt is deferred.
    pub async fn send(
        &mut self,
        from: &str,
        rcpts: &[String],
        message: &[u8],
    ) -> Result<TxOutcome, ClientError> {
        let mut out = TxOutcome::default();
        let mut params = String::new();
        if !message.is_ascii() && self.has("8BITMIME") {
            params.push_str(" BODY=8BITMIME");
        }
        if (!from.is_ascii() || rcpts.iter().any(|r| !r.is_ascii())) && self.has("SMTPUTF8") {
            params.push_str(" SMTPUTF8");
        }
        self.conn
            .send(format!("MAIL FROM:<{from}>{params}\r\n").as_bytes());
        let (code, text) = self.reply().await?;
        if code / 100 != 2 {
            let all: Vec<_> = rcpts.iter().map(|r| (r.clone(), text.clone())).collect();
            self.rset().await?;
            if code / 100 == 5 {
                out.rejected = all;
            } else {
                out.deferred = all;
            }
            return Ok(out);
        }
        let mut accepted = Vec::new();
        for r in rcpts {
            self.conn.send(format!("RCPT TO:<{r}>\r\n").as_bytes());
            let (code, text) = self.reply().await?;
            match code / 100 {
                2 => accepted.push(r.clone()),
                5 => out.rejected.push((r.clone(), text)),
                _ => out.deferred.push((r.clone(), text)),
            }
        }
        if accepted.is_empty() {
            self.rset().await?;
            return Ok(out);
        }
        self.conn.send(b"DATA\r\n");
        let (code, text) = self.reply().await?;
        if code != 354 {
            return Err(ClientError::Protocol(text));
        }
        self.conn.send(&dot_stuff(message));
        let (code, text) = self.reply().await?;
        match code / 100 {
            2 => {}
            5 => out
                .rejected
                .extend(accepted.into_iter().map(|r| (r, text.clone()))),
            _ => out
                .deferred
                .extend(accepted.into_iter().map(|r| (r, text.clone()))),
        }
        Ok(out)
    }

    async fn rset(&mut self) -> Result<(), ClientError> {
        self.conn.send(b"RSET\r\n");
        self.expect(2).await.map(|_| ())
    }

    /// Say goodbye (best effort).
    pub async fn quit(mut self) {
        self.conn.send(b"QUIT\r\n");
        let _ = self.reply().await;
        self.conn.close().await;
    }
}

/// `message` dot-stuffed, CRLF-terminated, followed by `.CRLF`.
pub fn dot_stuff(message: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(message.len() + 64);
    let mut at_line_start = true;
    for &b in message {
        if at_line_start && b == b'.' {
            out.push(b'.');
        }
        out.push(b);
        at_line_start = b == b'\n';
    }
    if !out.ends_with(b"\r\n") && !out.is_empty() {
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b".\r\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stuffing() {
        assert_eq!(dot_stuff(b".a\r\nb\r\n..\r\n"), b"..a\r\nb\r\n...\r\n.\r\n");
        assert_eq!(dot_stuff(b"x"), b"x\r\n.\r\n");
    }
}
