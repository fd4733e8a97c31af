//! EHLO / HELO (greeting and the ESMTP extension list) and STARTTLS.

use super::{Flow, Mode, Session};

impl Session {
    /// EHLO (`extended`) or HELO.
    pub(super) fn ehlo(&mut self, arg: &str, extended: bool) -> Flow {
        let name = arg.split_whitespace().next().unwrap_or("");
        if name.is_empty() {
            return self.error("501 5.5.4 EHLO needs a domain or address literal");
        }
        self.helo = Some(name.to_string());
        self.esmtp = extended;
        self.tx = None;
        let host = self.shared.hostname.clone();
        if !extended {
            self.reply(&format!("250 {host}"));
            return Flow::Continue;
        }
        let mut lines = vec![
            format!("{host} greets {name} [{}]", self.peer.ip()),
            "PIPELINING".to_string(),
            format!("SIZE {}", self.shared.limits.max_message_bytes),
            "8BITMIME".to_string(),
            "ENHANCEDSTATUSCODES".to_string(),
            "SMTPUTF8".to_string(),
        ];
        if !self.tls && self.shared.live().tls.is_some() {
            lines.push("STARTTLS".to_string());
        }
        if self.mode == Mode::Submission && self.tls {
            lines.push("AUTH PLAIN LOGIN".to_string());
        }
        let last = lines.len() - 1;
        for (i, l) in lines.iter().enumerate() {
            let sep = if i == last { ' ' } else { '-' };
            self.reply(&format!("250{sep}{l}"));
        }
        Flow::Continue
    }

    /// STARTTLS: upgrade in place, forgetting everything said before it.
    pub(super) async fn starttls(&mut self, arg: &str) -> Flow {
        if !arg.is_empty() {
            return self.error("501 5.5.4 STARTTLS takes no parameters");
        }
        if self.tls {
            return self.error("503 5.5.1 TLS already active");
        }
        let Some(acceptor) = self.shared.live().tls.clone() else {
            return self.error("454 4.7.0 TLS not available");
        };
        self.reply("220 2.0.0 ready to start TLS");
        let timeout = self.shared.limits.command_timeout;
        if self.conn.upgrade(&acceptor, timeout).await.is_err() {
            return Flow::Close;
        }
        self.tls = true;
        self.helo = None;
        self.esmtp = false;
        self.tx = None;
        self.user = None;
        Flow::Continue
    }
}
