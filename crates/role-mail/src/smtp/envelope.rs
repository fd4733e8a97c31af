//! MAIL FROM and RCPT TO: path and parameter parsing, the sender rule on
//! submission (a mailbox its own addresses and aliases, a site's login any address
//! of its own domain, `model::sitemail`), recipient checks against the plan (relay denied, unknown user),
//! recipient limits and the quota check at RCPT time.

use std::sync::Arc;

use super::{Flow, Mode, Rcpt, Session, Txn};
use crate::maildir;
use crate::plan::{RcptError, Target};

/// A parsed `FROM:<path> params` / `TO:<path> params` argument.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PathArg {
    /// The address inside `<>` (source route dropped); may be empty.
    pub address: String,
    /// `KEY[=VALUE]` parameters, keys upper-cased.
    pub params: Vec<(String, Option<String>)>,
}

/// Parse `arg` after `MAIL`/`RCPT`, expecting `keyword` (`FROM` or `TO`).
pub fn parse_path(arg: &str, keyword: &str) -> Option<PathArg> {
    let (kw, rest) = arg.split_once(':')?;
    if !kw.trim().eq_ignore_ascii_case(keyword) {
        return None;
    }
    let rest = rest.trim_start();
    let rest = rest.strip_prefix('<')?;
    let end = rest.find('>')?;
    let mut address = &rest[..end];
    if address.starts_with('@') {
        address = address.split_once(':').map(|(_, a)| a).unwrap_or("");
    }
    if address
        .chars()
        .any(|c| c.is_whitespace() || c.is_control() || c == '<')
    {
        return None;
    }
    let params = rest[end + 1..]
        .split_whitespace()
        .map(|p| match p.split_once('=') {
            Some((k, v)) => (k.to_ascii_uppercase(), Some(v.to_string())),
            None => (p.to_ascii_uppercase(), None),
        })
        .collect();
    Some(PathArg {
        address: address.to_string(),
        params,
    })
}

impl Session {
    /// MAIL FROM.
    pub(super) async fn mail(&mut self, arg: &str) -> Flow {
        if self.helo.is_none() {
            return self.error("503 5.5.1 send EHLO first");
        }
        if self.tx.is_some() {
            return self.error("503 5.5.1 nested MAIL command");
        }
        if self.mode == Mode::Submission && self.user.is_none() {
            return self.error(if self.tls {
                "530 5.7.0 authentication required"
            } else {
                "530 5.7.0 must issue a STARTTLS command first"
            });
        }
        let Some(path) = parse_path(arg, "FROM") else {
            return self.error("501 5.5.4 syntax: MAIL FROM:<address>");
        };
        if !path.address.is_empty() && !path.address.contains('@') {
            return self.error("501 5.1.7 bad sender address syntax");
        }
        let mut utf8 = false;
        for (k, v) in &path.params {
            match (k.as_str(), v.as_deref()) {
                ("SIZE", Some(n)) => match n.parse::<usize>() {
                    Ok(n) if n > self.shared.limits.max_message_bytes => {
                        return self.error("552 5.3.4 message size exceeds fixed limit");
                    }
                    Ok(_) => {}
                    Err(_) => return self.error("501 5.5.4 bad SIZE parameter"),
                },
                ("BODY", Some(b))
                    if b.eq_ignore_ascii_case("7BIT") || b.eq_ignore_ascii_case("8BITMIME") => {}
                ("SMTPUTF8", None) => utf8 = true,
                ("AUTH", Some(_)) => {}
                _ => return self.error("555 5.5.4 unsupported MAIL parameter"),
            }
        }
        if !utf8 && !path.address.is_ascii() {
            return self.error("553 5.6.7 non-ASCII address needs SMTPUTF8");
        }
        if let Some(user) = self.user.clone() {
            let plan = self.shared.live().plan.clone();
            if !plan.may_send_as(&user, &path.address) {
                if let Some(site) = model::sitemail::site_of_login(&user) {
                    return self.error(&format!(
                        "553 5.7.1 the site {site} may send only from addresses of its own domain (…@{site})"
                    ));
                }
                return self.error("553 5.7.1 sender address not owned by the authenticated user");
            }
            // A site counts as one sender of its domain: against the per-mailbox
            // limit on its own, and against the domain's total with the mailboxes.
            let sender = plan
                .account(&user)
                .map(|(d, _, _)| d)
                .or_else(|| plan.site_login(&user).map(|(d, _)| d));
            if let Some(d) = sender {
                let hour = crate::sendlimit::current_hour();
                let (per_mailbox, per_domain) = (d.limits.per_mailbox(), d.limits.per_domain());
                if let Err(o) =
                    self.shared
                        .sending
                        .take(hour, &user, &d.name, per_mailbox, per_domain)
                {
                    tracing::warn!(user = %user, scope = o.scope, limit = o.limit,
                        "outgoing mail limit reached; message refused");
                    return self.error(&format!(
                        "451 4.7.1 sending limit reached: at most {} messages per hour from this {}; try again later",
                        o.limit, o.scope
                    ));
                }
            }
        }
        self.tx = Some(Txn {
            from: path.address,
            rcpts: Vec::new(),
        });
        self.reply("250 2.1.0 OK");
        Flow::Continue
    }

    /// The authenticated user's recipients-per-message limit.
    fn user_recipient_limit(&self) -> Option<usize> {
        let user = self.user.as_ref()?;
        let plan = self.shared.live().plan.clone();
        let d = match plan.account(user) {
            Some((d, _, _)) => d,
            None => plan.site_login(user)?.0,
        };
        Some(d.limits.recipients() as usize)
    }

    /// RCPT TO.
    pub(super) async fn rcpt(&mut self, arg: &str) -> Flow {
        let Some(count) = self.tx.as_ref().map(|t| t.rcpts.len()) else {
            return self.error("503 5.5.1 need MAIL before RCPT");
        };
        let Some(path) = parse_path(arg, "TO") else {
            return self.error("501 5.5.4 syntax: RCPT TO:<address>");
        };
        if !path.params.is_empty() {
            return self.error("555 5.5.4 unsupported RCPT parameter");
        }
        if count >= self.shared.limits.max_recipients {
            self.reply("452 4.5.3 too many recipients");
            return Flow::Continue;
        }
        if let Some(limit) = self.user_recipient_limit() {
            if count >= limit {
                let msg = format!("452 4.5.3 too many recipients: at most {limit} per message");
                self.reply(&msg);
                return Flow::Continue;
            }
        }
        let plan = self.shared.live().plan.clone();
        let targets = match plan.resolve(&path.address) {
            Ok(t) => t,
            Err(RcptError::NotHosted) if self.mode == Mode::Submission => vec![Target::Remote {
                address: path.address.to_lowercase(),
            }],
            Err(RcptError::NotHosted) => return self.error("550 5.7.1 relay access denied"),
            Err(RcptError::NoSuchUser) => {
                return self.error("550 5.1.1 no such user here");
            }
            Err(RcptError::Loop) => return self.error("550 5.4.6 alias loop"),
            Err(RcptError::BadAddress) => return self.error("501 5.1.3 bad recipient address"),
        };
        if targets.iter().any(|t| matches!(t, Target::Local { .. })) {
            if let Err(why) = self.shared.repl.check() {
                self.reply(&format!(
                    "451 4.3.0 mailbox not writable on this server now ({why}); try again later"
                ));
                return Flow::Continue;
            }
        }
        let remote = targets.iter().any(|t| matches!(t, Target::Remote { .. }));
        if remote && self.shared.queue.outbound().is_none() {
            return self.error("550 5.7.1 remote delivery is not configured on this server");
        }
        if let Some(full) = self.over_quota(&plan, &targets).await {
            self.reply(&format!("452 4.2.2 mailbox {full} is full"));
            return Flow::Continue;
        }
        if let Some(tx) = self.tx.as_mut() {
            tx.rcpts.push(Rcpt {
                address: path.address,
                targets,
            });
        }
        self.reply("250 2.1.5 OK");
        Flow::Continue
    }

    /// The first local target already at or over its quota.
    async fn over_quota(
        &self,
        plan: &Arc<crate::plan::Plan>,
        targets: &[Target],
    ) -> Option<String> {
        for t in targets {
            let Target::Local { domain, local } = t else {
                continue;
            };
            let quota = plan.quota(domain, local);
            if quota == 0 {
                continue;
            }
            let dir = maildir::maildir_path(&self.shared.state_dir, domain, local);
            let used = tokio::task::spawn_blocking(move || maildir::usage(&dir))
                .await
                .ok()
                .and_then(Result::ok)
                .unwrap_or(0);
            if used >= quota {
                return Some(format!("{local}@{domain}"));
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths() {
        let p = parse_path("FROM:<a@b.c> SIZE=10 BODY=8BITMIME", "FROM").unwrap();
        assert_eq!(p.address, "a@b.c");
        assert_eq!(p.params[0], ("SIZE".into(), Some("10".into())));
        assert_eq!(parse_path("from: <>", "FROM").unwrap().address, "");
        assert_eq!(parse_path("TO:<@x,@y:u@d>", "TO").unwrap().address, "u@d");
        assert!(parse_path("TO:a@b", "TO").is_none());
        assert!(parse_path("FROM:<a@b>", "TO").is_none());
        assert!(parse_path("TO:<a b@c>", "TO").is_none());
    }
}
