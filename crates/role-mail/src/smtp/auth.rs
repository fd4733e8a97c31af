//! AUTH PLAIN and AUTH LOGIN (RFC 4954) on submission, only over TLS, against the
//! mailbox accounts of the plan, through the server's login throttle (454 4.7.0
//! when it refuses).

use base64::Engine as _;

use super::{Flow, Mode, Session};
use crate::accounts;
use crate::conn::LineEnd;

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

impl Session {
    /// AUTH.
    pub(super) async fn auth(&mut self, arg: &str) -> Flow {
        if self.mode != Mode::Submission {
            return self.error("502 5.5.1 AUTH not available here");
        }
        if !self.tls {
            return self.error("530 5.7.0 must issue a STARTTLS command first");
        }
        if self.helo.is_none() {
            return self.error("503 5.5.1 send EHLO first");
        }
        if self.user.is_some() {
            return self.error("503 5.5.1 already authenticated");
        }
        if self.tx.is_some() {
            return self.error("503 5.5.1 AUTH not allowed during a mail transaction");
        }
        let mut parts = arg.split_whitespace();
        let mech = parts.next().unwrap_or("").to_ascii_uppercase();
        let initial = parts.next().map(str::to_string);
        let creds = match mech.as_str() {
            "PLAIN" => self.auth_plain(initial).await,
            "LOGIN" => self.auth_login(initial).await,
            _ => return self.error("504 5.5.4 unrecognized authentication mechanism"),
        };
        let (user, password) = match creds {
            Ok(c) => c,
            Err(flow) => return flow,
        };
        let plan = self.shared.live().plan.clone();
        let source = self.peer.ip();
        match accounts::login(&self.shared.logins, source, plan, &user, &password).await {
            accounts::Login::Ok(address) => {
                self.user = Some(address);
                self.reply("235 2.7.0 authentication successful");
                Flow::Continue
            }
            accounts::Login::Wrong => self.error("535 5.7.8 authentication credentials invalid"),
            // RFC 4954: 454 is a temporary authentication failure.
            accounts::Login::Throttled(secs) => self.error(&format!(
                "454 4.7.0 too many failed logins for this mailbox from your address; try again in {secs} s"
            )),
        }
    }

    /// Read one base64 response line; `Err` on cancel or garbage.
    async fn sasl_line(&mut self, challenge: &str) -> Result<Vec<u8>, Flow> {
        self.reply(&format!("334 {challenge}"));
        let timeout = self.shared.limits.command_timeout;
        let line = match self
            .conn
            .read_line(self.shared.limits.max_line, timeout)
            .await
        {
            Ok(l) if l.end == LineEnd::Crlf && !l.overlong && !l.bare_cr => l,
            Ok(_) => return Err(self.error("501 5.5.2 bad SASL response line")),
            Err(_) => return Err(Flow::Close),
        };
        if line.bytes == b"*" {
            return Err(self.error("501 5.0.0 authentication cancelled"));
        }
        self.decode(&line.bytes)
    }

    fn decode(&mut self, b64: &[u8]) -> Result<Vec<u8>, Flow> {
        B64.decode(b64)
            .map_err(|_| self.error("501 5.5.2 cannot decode base64"))
    }

    async fn auth_plain(&mut self, initial: Option<String>) -> Result<(String, String), Flow> {
        let raw = match initial {
            Some(i) if i == "=" => Vec::new(),
            Some(i) => self.decode(i.as_bytes())?,
            None => self.sasl_line("").await?,
        };
        let fields: Vec<&[u8]> = raw.split(|&b| b == 0).collect();
        let [authz, authc, pass] = fields.as_slice() else {
            return Err(self.error("501 5.5.2 malformed PLAIN response"));
        };
        let authc = String::from_utf8_lossy(authc).into_owned();
        if !authz.is_empty() && !authz.eq_ignore_ascii_case(authc.as_bytes()) {
            return Err(self.error("535 5.7.8 authorization identity not allowed"));
        }
        Ok((authc, String::from_utf8_lossy(pass).into_owned()))
    }

    async fn auth_login(&mut self, initial: Option<String>) -> Result<(String, String), Flow> {
        let user = match initial {
            Some(i) => self.decode(i.as_bytes())?,
            None => self.sasl_line("VXNlcm5hbWU6").await?,
        };
        let pass = self.sasl_line("UGFzc3dvcmQ6").await?;
        Ok((
            String::from_utf8_lossy(&user).into_owned(),
            String::from_utf8_lossy(&pass).into_owned(),
        ))
    }
}
