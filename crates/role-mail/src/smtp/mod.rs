//! The SMTP server session (RFC 5321 with ESMTP extensions), shared by the MX on
//! port 25 and submission on 587/465. This file owns the session state, the command
//! loop and reply helpers; each command family lives in its own file:
//! [`ehlo`] (EHLO/HELO, STARTTLS), [`envelope`] (MAIL, RCPT), [`data`] (DATA,
//! delivery), [`auth`] (AUTH PLAIN/LOGIN), [`misc`] (RSET, NOOP, QUIT, VRFY, HELP).
//!
//! A session runs over any [`Io`] stream, so tests drive it with an in-memory byte
//! script (see [`crate::harness`]).

pub mod auth;
pub mod data;
pub mod ehlo;
pub mod envelope;
pub mod misc;

use std::net::SocketAddr;
use std::sync::Arc;

use crate::conn::{Conn, ConnError, LineEnd};
use crate::plan::Target;
use crate::server::Shared;

pub use crate::conn::Io;

/// Which door the client came through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Inbound MX: hosted domains only, no AUTH.
    Mx,
    /// Submission: AUTH required (after TLS), any recipient.
    Submission,
}

/// What the command loop does after a command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flow {
    /// Read the next command.
    Continue,
    /// Close the connection.
    Close,
}

/// One accepted recipient.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rcpt {
    /// As the client gave it.
    pub address: String,
    /// Where its copies go.
    pub targets: Vec<Target>,
}

/// The mail transaction under way.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Txn {
    /// Reverse path (empty for bounces).
    pub from: String,
    /// Accepted recipients.
    pub rcpts: Vec<Rcpt>,
}

/// One SMTP session.
pub struct Session {
    shared: Arc<Shared>,
    conn: Conn,
    peer: SocketAddr,
    mode: Mode,
    tls: bool,
    helo: Option<String>,
    esmtp: bool,
    user: Option<String>,
    tx: Option<Txn>,
    errors: u32,
}

/// Run a session on `io` until the client leaves.
pub async fn run(shared: Arc<Shared>, io: Box<dyn Io>, peer: SocketAddr, mode: Mode, tls: bool) {
    let mut s = Session {
        conn: Conn::new(io),
        shared,
        peer,
        mode,
        tls,
        helo: None,
        esmtp: false,
        user: None,
        tx: None,
        errors: 0,
    };
    let greeting = format!("220 {} ESMTP hostplane", s.shared.hostname);
    s.reply(&greeting);
    s.command_loop().await;
    s.conn.close().await;
}

impl Session {
    /// Queue one reply line (CRLF added).
    fn reply(&mut self, line: &str) {
        self.conn.send(line.as_bytes());
        self.conn.send(b"\r\n");
    }

    /// Queue an error reply and count it; `Close` when the client made too many.
    fn error(&mut self, line: &str) -> Flow {
        self.reply(line);
        self.errors += 1;
        if self.errors >= self.shared.limits.max_errors {
            self.reply("421 4.7.0 too many errors, closing connection");
            return Flow::Close;
        }
        Flow::Continue
    }

    async fn command_loop(&mut self) {
        loop {
            let limit = self.shared.limits.max_line;
            let timeout = self.shared.limits.command_timeout;
            let line = match self.conn.read_line(limit, timeout).await {
                Ok(l) => l,
                Err(ConnError::Timeout) => {
                    let msg = format!(
                        "421 4.4.2 {} timeout, closing connection",
                        self.shared.hostname
                    );
                    self.reply(&msg);
                    return;
                }
                Err(_) => return,
            };
            let flow = if line.overlong {
                self.error("500 5.5.2 line too long")
            } else if line.end == LineEnd::BareLf || line.bare_cr {
                self.error("500 5.5.2 commands must end with CRLF")
            } else {
                let text = String::from_utf8_lossy(&line.bytes).into_owned();
                self.dispatch(&text).await
            };
            if flow == Flow::Close {
                return;
            }
        }
    }

    async fn dispatch(&mut self, line: &str) -> Flow {
        let (verb, arg) = match line.split_once(' ') {
            Some((v, a)) => (v, a.trim()),
            None => (line, ""),
        };
        match verb.to_ascii_uppercase().as_str() {
            "EHLO" => self.ehlo(arg, true),
            "HELO" => self.ehlo(arg, false),
            "STARTTLS" => self.starttls(arg).await,
            "MAIL" => self.mail(arg).await,
            "RCPT" => self.rcpt(arg).await,
            "DATA" => self.data(arg).await,
            "AUTH" => self.auth(arg).await,
            "RSET" => self.rset(),
            "NOOP" => self.noop(),
            "QUIT" => self.quit(),
            "VRFY" => self.vrfy(),
            "HELP" => self.help(),
            "BDAT" => self.error("502 5.5.1 BDAT not supported"),
            _ => self.error("500 5.5.1 command not recognized"),
        }
    }
}

#[cfg(test)]
mod tests;
