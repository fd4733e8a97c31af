//! DATA: reading the message (only `CRLF.CRLF` ends it; a bare LF or bare CR
//! anywhere drops the session, closing the SMTP smuggling hole), line-length and
//! size limits, then the durable hand-off: the Received header is prepended, the
//! final quota check runs, every local copy is written to its Maildir and every
//! relayed copy to the queue, all fsynced, and only then 250.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use super::{Flow, Mode, Session, Txn};
use crate::conn::{ConnError, LineEnd};
use crate::maildir;
use crate::plan::{Plan, Target};
use crate::server::Shared;
use crate::verify::strip_forged;

/// Why a message could not be taken.
#[derive(Debug, thiserror::Error)]
pub enum DeliverError {
    /// A mailbox would go over its quota.
    #[error("mailbox {0} would exceed its quota")]
    Quota(String),
    /// This server may not write its mailboxes now (replication, issue 16).
    #[error("mailboxes not writable here now: {0}")]
    NotWriter(crate::repl::Refusal),
    /// Disk trouble.
    #[error("local error: {0}")]
    Io(#[from] std::io::Error),
}

/// What reading DATA gave.
enum Body {
    Complete(Vec<u8>),
    TooBig,
    LineTooLong,
}

impl Session {
    /// DATA.
    pub(super) async fn data(&mut self, arg: &str) -> Flow {
        if !arg.is_empty() {
            return self.error("501 5.5.4 DATA takes no parameters");
        }
        let Some(tx) = self.tx.clone() else {
            return self.error("503 5.5.1 need MAIL before DATA");
        };
        if tx.rcpts.is_empty() {
            return self.error("554 5.5.1 no valid recipients");
        }
        self.reply("354 end data with <CR><LF>.<CR><LF>");
        let body = match self.read_body().await {
            Ok(b) => b,
            Err(Flow::Close) => return Flow::Close,
            Err(Flow::Continue) => return Flow::Continue,
        };
        self.tx = None;
        let body = match body {
            Body::Complete(b) => b,
            Body::TooBig => return self.error("552 5.3.4 message size exceeds fixed limit"),
            Body::LineTooLong => return self.error("500 5.5.2 message line too long"),
        };
        if let Some(refusal) = self.site_from_refused(&body) {
            return self.error(&refusal);
        }
        let plan = self.shared.live().plan.clone();
        let (auth_results, body) = self.authenticate(&plan, &tx, body).await;
        let message = self.with_received(&tx, auth_results.as_bytes(), &body);
        let shared = Arc::clone(&self.shared);
        // Submitted mail (the sender proved it may use the address) is signed for
        // every destination, local ones too. Other mail is never signed by us, also
        // when an alias forwards it out: anyone may claim a hosted domain as sender
        // on port 25, and our signature would make that forgery pass DMARC.
        let submitted = self.user.is_some();
        let result = tokio::task::spawn_blocking(move || {
            let message = if submitted {
                sign_for_sender(&plan, &tx.from, &message)
            } else {
                message
            };
            deliver(&shared, &plan, &tx, &message)
        })
        .await;
        match result {
            Ok(Ok(id)) => self.reply(&format!("250 2.0.0 OK queued as {id}")),
            Ok(Err(DeliverError::Quota(m))) => {
                self.reply(&format!("552 5.2.2 mailbox {m} is full"));
            }
            Ok(Err(DeliverError::NotWriter(why))) => {
                self.reply(&format!(
                    "451 4.3.0 mailbox not writable on this server now ({why}); try again later"
                ));
            }
            Ok(Err(e)) => {
                tracing::error!(error = %e, "delivery failed");
                self.reply("451 4.3.0 local error, try again later");
            }
            Err(_) => self.reply("451 4.3.0 local error, try again later"),
        }
        Flow::Continue
    }

    /// A site's message (login `site:<domain>`) must say `From:` an address of
    /// the site's own domain, like its envelope sender (`model::sitemail`): else
    /// the 550 reply to give.
    fn site_from_refused(&self, body: &[u8]) -> Option<String> {
        let site = model::sitemail::site_of_login(self.user.as_deref()?)?;
        let from: Vec<String> = model::sitemail::header_values(body, "From")
            .iter()
            .flat_map(|v| model::sitemail::header_addresses(v))
            .collect();
        let ok = !from.is_empty()
            && from
                .iter()
                .all(|a| model::sitemail::may_send_from(&site, a));
        (!ok).then(|| {
            format!(
                "550 5.7.1 the From: header of a message from the site {site} must name addresses of its own domain (…@{site})"
            )
        })
    }

    /// SPF and DKIM on mail entering at the MX: the `Authentication-Results` header
    /// to add, and the message without forged results in our names. Mail a peer
    /// mail server relays (a secondary MX forwarding to the primary) was checked
    /// where it entered: its results are kept and SPF is not evaluated again
    /// against the relay's address (which would fail).
    async fn authenticate(&self, plan: &Plan, tx: &Txn, body: Vec<u8>) -> (String, Vec<u8>) {
        let hostname = &self.shared.hostname;
        let (Mode::Mx, Some(v)) = (self.mode, self.shared.verifier()) else {
            return (String::new(), body);
        };
        if plan.peer_addresses.contains(&self.peer.ip()) {
            return (String::new(), strip_forged(&body, &[hostname.as_str()]));
        }
        let mut ours: Vec<&str> = vec![hostname.as_str()];
        ours.extend(plan.peer_names.iter().map(String::as_str));
        let body = strip_forged(&body, &ours);
        let helo = self.helo.clone().unwrap_or_default();
        let h = v
            .header(hostname, self.peer.ip(), &helo, &tx.from, &body)
            .await;
        (h, body)
    }

    /// Read up to `CRLF.CRLF`, un-stuffing dots. `Err(Close)` on smuggling attempts,
    /// timeouts and disconnects.
    async fn read_body(&mut self) -> Result<Body, Flow> {
        let max = self.shared.limits.max_message_bytes;
        let line_max = self.shared.limits.max_line;
        let timeout = self.shared.limits.data_timeout;
        let mut body = Vec::with_capacity(8 * 1024);
        let (mut too_big, mut too_long) = (false, false);
        loop {
            let line = match self.conn.read_line(line_max, timeout).await {
                Ok(l) => l,
                Err(ConnError::Timeout) => {
                    self.reply("421 4.4.2 timeout in DATA, closing connection");
                    return Err(Flow::Close);
                }
                Err(_) => return Err(Flow::Close),
            };
            if line.end == LineEnd::BareLf || line.bare_cr {
                self.tx = None;
                self.reply("521 5.5.2 bare <LF> or <CR> in message data, closing connection");
                return Err(Flow::Close);
            }
            if line.bytes == b"." {
                break;
            }
            too_long |= line.overlong;
            let content = line.bytes.strip_prefix(b".").unwrap_or(&line.bytes);
            if body.len() + content.len() + 2 > max {
                too_big = true;
            }
            if !too_big && !too_long {
                body.extend_from_slice(content);
                body.extend_from_slice(b"\r\n");
            }
        }
        Ok(if too_big {
            Body::TooBig
        } else if too_long {
            Body::LineTooLong
        } else {
            Body::Complete(body)
        })
    }

    /// The message with our Received header in front.
    fn with_received(&self, tx: &Txn, auth_results: &[u8], body: &[u8]) -> Vec<u8> {
        let proto = match (self.esmtp, self.tls, self.user.is_some()) {
            (false, _, _) => "SMTP",
            (true, false, false) => "ESMTP",
            (true, true, false) => "ESMTPS",
            (true, false, true) => "ESMTPA",
            (true, true, true) => "ESMTPSA",
        };
        let date = time::OffsetDateTime::now_utc()
            .format(&time::format_description::well_known::Rfc2822)
            .unwrap_or_default();
        let helo = self.helo.as_deref().unwrap_or("unknown");
        let helo: String = helo.chars().filter(|c| !c.is_control()).collect();
        let mut h = format!(
            "Received: from {helo} ([{}])\r\n\tby {} (hostplane) with {proto}",
            self.peer.ip(),
            self.shared.hostname
        );
        if let [one] = tx.rcpts.as_slice() {
            h.push_str(&format!("\r\n\tfor <{}>", one.address));
        }
        h.push_str(&format!("; {date}\r\n"));
        let mut out = Vec::with_capacity(h.len() + auth_results.len() + body.len());
        out.extend_from_slice(h.as_bytes());
        out.extend_from_slice(auth_results);
        out.extend_from_slice(body);
        out
    }
}

/// Store `message` for every recipient of `tx` durably (blocking): local copies
/// into their Maildirs, copies for a primary into the relay queue, remote copies
/// into the outbound queue, all as given (signing is the submission path's, before
/// this). Returns an id.
pub fn deliver(
    shared: &Shared,
    plan: &Plan,
    tx: &Txn,
    message: &[u8],
) -> Result<String, DeliverError> {
    let mut local = BTreeSet::new();
    let mut relay: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for r in &tx.rcpts {
        for t in &r.targets {
            match t {
                Target::Local { domain, local: l } => {
                    local.insert((domain.clone(), l.clone()));
                }
                Target::Relay { primary, address } => {
                    relay
                        .entry(primary.to_string())
                        .or_default()
                        .insert(address.clone());
                }
                Target::Remote { address } => {
                    let domain = address.rsplit_once('@').map(|(_, d)| d).unwrap_or("");
                    relay
                        .entry(format!("mx:{domain}"))
                        .or_default()
                        .insert(address.clone());
                }
            }
        }
    }
    let dedup = crate::dedup::relay_id(message).map(|id| {
        let rcpts: Vec<String> = tx.rcpts.iter().map(|r| r.address.to_lowercase()).collect();
        crate::dedup::marker(&shared.state_dir, &id, &rcpts)
    });
    if let Some(m) = &dedup {
        if m.exists() {
            tracing::info!(marker = %m.display(), "relayed copy already delivered; dropped");
            return Ok("duplicate".to_string());
        }
    }
    if !local.is_empty() {
        shared.repl.check().map_err(DeliverError::NotWriter)?;
    }
    let stored = maildir::to_lf(message).len() as u64;
    for (domain, l) in &local {
        let quota = plan.quota(domain, l);
        if quota > 0 {
            let used = maildir::usage(&maildir::maildir_path(&shared.state_dir, domain, l))?;
            if used + stored > quota {
                return Err(DeliverError::Quota(format!("{l}@{domain}")));
            }
        }
    }
    let mut id = String::new();
    for (domain, l) in &local {
        id = maildir::deliver(&shared.state_dir, domain, l, &shared.hostname, message)?;
        // wake IMAP IDLE sessions on this INBOX, and followers
        let root = maildir::maildir_path(&shared.state_dir, domain, l);
        shared.imap.changed(&root);
        shared.touched(&root);
    }
    for (route, rcpts) in relay {
        id = shared
            .queue
            .enqueue(route, &tx.from, rcpts.into_iter().collect(), message)?;
    }
    if let Some(m) = &dedup {
        crate::dedup::record(m)?;
    }
    Ok(id.split(',').next().unwrap_or_default().to_string())
}

/// `message` DKIM-signed with the keys of the sender's domain, if it has any.
fn sign_for_sender(plan: &Plan, from: &str, message: &[u8]) -> Vec<u8> {
    let domain = crate::plan::split_address(from).map(|(_, d)| d);
    match domain.as_deref().and_then(|d| plan.domains.get(d)) {
        Some(d) => crate::dkim::sign(&d.dkim, &d.name, message),
        None => message.to_vec(),
    }
}

/// Hand a locally generated message (a DSN) from `from` to `rcpt` (blocking).
pub fn inject(
    shared: &Shared,
    plan: &Plan,
    from: &str,
    rcpt: &str,
    message: &[u8],
) -> Result<String, DeliverError> {
    let targets = match plan.resolve(rcpt) {
        Ok(t) => t,
        Err(crate::plan::RcptError::NotHosted) => vec![Target::Remote {
            address: rcpt.to_lowercase(),
        }],
        Err(e) => {
            return Err(DeliverError::Io(std::io::Error::other(format!(
                "{rcpt}: {e}"
            ))))
        }
    };
    let tx = Txn {
        from: from.to_string(),
        rcpts: vec![super::Rcpt {
            address: rcpt.to_string(),
            targets,
        }],
    };
    deliver(shared, plan, &tx, message)
}
