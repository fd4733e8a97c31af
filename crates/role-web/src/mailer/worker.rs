//! The spool worker: submits every spooled message (a few at once) to its site's
//! mail cluster (primary first; the next server only when one cannot be reached,
//! never after an answer, so a 4xx over a sending limit is not dodged elsewhere),
//! retries with backoff (in memory: after an engine restart everything is tried
//! at once), drops a message refused for good (5xx) or older than
//! [`super::MailerOptions::expire_after`], each with a log line.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::StreamExt as _;

use super::submit::{submit, Submission, SubmitError};
use super::{Shared, Spooled};

/// Longest sleep between passes when nothing is due.
const IDLE: Duration = Duration::from_secs(60);
/// Messages submitted at once.
const CONCURRENT: usize = 8;

/// A message's retry state.
#[derive(Debug, Clone)]
struct Retry {
    attempts: u32,
    next: Instant,
    /// The message's site and when PHP sent it (for the per-site report).
    site: Option<(String, u64)>,
    /// Why the last attempt failed.
    why: String,
}

/// What one attempt came to.
enum Outcome {
    /// Gone from the spool (delivered, refused or expired).
    Done,
    /// Try again later: why, and the message's site and spool time when read.
    Later(String, Option<(String, u64)>),
}

/// Per site: the messages waiting for a retry, the oldest, the latest reason.
fn waiting(retry: &HashMap<String, Retry>) -> Vec<proto::agent_v1::SiteMailSpool> {
    let mut by_site: std::collections::BTreeMap<&str, proto::agent_v1::SiteMailSpool> =
        std::collections::BTreeMap::new();
    for r in retry.values() {
        let Some((site, at)) = &r.site else { continue };
        let e = by_site
            .entry(site.as_str())
            .or_insert_with(|| proto::agent_v1::SiteMailSpool {
                domain: site.clone(),
                oldest: *at,
                ..Default::default()
            });
        e.messages += 1;
        if *at <= e.oldest {
            e.oldest = *at;
            e.last_error.clone_from(&r.why);
        }
    }
    by_site.into_values().collect()
}

/// Run passes over the spool until aborted.
pub(crate) async fn run(shared: Arc<Shared>) {
    let mut retry: HashMap<String, Retry> = HashMap::new();
    loop {
        let spool = shared.spool.clone();
        let ids = tokio::task::spawn_blocking(move || spool.ids())
            .await
            .ok()
            .and_then(Result::ok)
            .unwrap_or_default();
        shared
            .queued
            .store(ids.len(), std::sync::atomic::Ordering::Relaxed);
        retry.retain(|id, _| ids.contains(id));
        let now = Instant::now();
        let due: Vec<String> = ids
            .iter()
            .filter(|id| retry.get(*id).is_none_or(|r| r.next <= now))
            .cloned()
            .collect();
        // A few at once: a mail cluster that does not answer delays a pass by
        // about one connect timeout, not by one per message waiting for it.
        let mut outcomes = futures_util::stream::iter(due)
            .map(|id| {
                let shared = Arc::clone(&shared);
                async move {
                    let outcome = attempt(&shared, &id).await;
                    (id, outcome)
                }
            })
            .buffer_unordered(CONCURRENT);
        while let Some((id, outcome)) = outcomes.next().await {
            match outcome {
                Outcome::Done => {
                    retry.remove(&id);
                }
                Outcome::Later(why, site) => {
                    let r = retry.entry(id.clone()).or_insert(Retry {
                        attempts: 0,
                        next: now,
                        site: None,
                        why: String::new(),
                    });
                    r.attempts += 1;
                    if site.is_some() {
                        r.site = site;
                    }
                    r.why.clone_from(&why);
                    let wait = backoff(&shared.opts, r.attempts);
                    r.next = Instant::now() + wait;
                    tracing::info!(id, attempts = r.attempts, retry_in = ?wait, reason = %why,
                        "site mail deferred");
                }
            }
        }
        *shared
            .waiting
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = waiting(&retry);
        let next = retry
            .values()
            .map(|r| r.next)
            .min()
            .map_or(IDLE, |t| t.saturating_duration_since(Instant::now()))
            .min(IDLE);
        tokio::select! {
            () = shared.wake.notified() => {}
            () = tokio::time::sleep(next) => {}
        }
    }
}

/// The wait after `attempts` failed attempts: base × 2^(attempts−1), at most max.
fn backoff(opts: &super::MailerOptions, attempts: u32) -> Duration {
    let factor = 1u32 << attempts.saturating_sub(1).min(16);
    opts.retry_base.saturating_mul(factor).min(opts.retry_max)
}

async fn remove(shared: &Shared, id: &str) {
    let spool = shared.spool.clone();
    let id2 = id.to_string();
    if let Ok(Err(e)) = tokio::task::spawn_blocking(move || spool.remove(&id2)).await {
        tracing::error!(id, error = %e, "cannot remove sent mail from the spool");
    }
}

async fn attempt(shared: &Shared, id: &str) -> Outcome {
    let spool = shared.spool.clone();
    let id2 = id.to_string();
    let Some(Spooled {
        envelope, message, ..
    }) = tokio::task::spawn_blocking(move || spool.read(&id2))
        .await
        .ok()
        .flatten()
    else {
        return Outcome::Done;
    };
    let about = Some((envelope.domain.clone(), envelope.spooled_at));
    let age = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs()
        .saturating_sub(envelope.spooled_at);
    if age >= shared.opts.expire_after.as_secs() {
        tracing::warn!(id, site = %envelope.domain, from = %envelope.from,
            recipients = ?envelope.recipients, age_secs = age,
            "site mail dropped: not deliverable to the site's mail cluster in time");
        site_error(
            shared,
            &envelope.domain,
            format!(
                "[error] mail() message to {} dropped: the site's mail cluster did not take it within {} days",
                envelope.recipients.join(", "),
                shared.opts.expire_after.as_secs() / 86_400
            ),
        )
        .await;
        remove(shared, id).await;
        return Outcome::Done;
    }
    let routes = shared.routes.load_full();
    let Some(Some(route)) = routes.by_domain.get(&envelope.domain) else {
        return Outcome::Later(
            format!(
                "the site {} has no mail route on this server now",
                envelope.domain
            ),
            about,
        );
    };
    let Some(tls) = shared.tls.clone() else {
        return Outcome::Later(
            "this web server has no CA to check mail servers with".into(),
            about,
        );
    };
    let Ok(site) = model::DomainName::new(&envelope.domain) else {
        return Outcome::Later(format!("{} is not a domain name", envelope.domain), about);
    };
    let login = model::sitemail::login_name(&site);
    let mut last = String::from("the site's mail cluster has no servers");
    for server in &route.submission {
        let Ok(addr) = server.parse::<SocketAddr>() else {
            last = format!("{server} is not ip:port");
            continue;
        };
        let s = Submission {
            server: addr,
            tls: Arc::clone(&tls),
            helo: &shared.opts.helo,
            login: &login,
            secret: &route.secret,
            from: &envelope.from,
            recipients: &envelope.recipients,
            message: &message,
        };
        match submit(&s).await {
            Ok(done) => {
                for (rcpt, why) in &done.refused {
                    tracing::warn!(id, site = %envelope.domain, rcpt, reply = %why,
                        "site mail recipient refused for good");
                    site_error(
                        shared,
                        &envelope.domain,
                        format!(
                            "[error] mail() recipient {rcpt} refused by the mail server: {why}"
                        ),
                    )
                    .await;
                }
                tracing::info!(id, site = %envelope.domain, server = %addr,
                    sent = envelope.recipients.len() - done.refused.len(), "site mail submitted");
                remove(shared, id).await;
                return Outcome::Done;
            }
            Err(SubmitError::Unreachable(e)) => {
                last = e;
            }
            Err(SubmitError::Deferred(e)) => return Outcome::Later(e, about),
            Err(SubmitError::Refused(e)) => {
                tracing::warn!(id, site = %envelope.domain, from = %envelope.from, reply = %e,
                    "site mail refused for good by the mail server; dropped");
                site_error(
                    shared,
                    &envelope.domain,
                    format!(
                        "[error] mail() message to {} refused by the mail server: {e}",
                        envelope.recipients.join(", ")
                    ),
                )
                .await;
                remove(shared, id).await;
                return Outcome::Done;
            }
        }
    }
    Outcome::Later(last, about)
}

/// Tell the customer, in the site's error log (`site logs --error`), that a
/// message `mail()` accepted will not arrive, and why.
async fn site_error(shared: &Shared, domain: &str, text: String) {
    let Some(dir) = shared.opts.log_dir.clone() else {
        return;
    };
    let domain = domain.to_owned();
    let _ = tokio::task::spawn_blocking(move || {
        crate::log::append_site_line(&dir, &domain, proto::agent_ops::LogKind::Error, &text)
    })
    .await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waiting_mail_is_grouped_per_site_with_the_oldest_reason() {
        let r = |site: Option<(&str, u64)>, why: &str| Retry {
            attempts: 1,
            next: Instant::now(),
            site: site.map(|(s, at)| (s.to_owned(), at)),
            why: why.to_owned(),
        };
        let retry: HashMap<String, Retry> = [
            ("a1", r(Some(("a.example", 200)), "451 later")),
            ("a2", r(Some(("a.example", 100)), "connection refused")),
            ("b1", r(Some(("b.example", 50)), "421 busy")),
            ("x", r(None, "unreadable")),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
        let got = waiting(&retry);
        let got: Vec<(&str, u32, u64, &str)> = got
            .iter()
            .map(|w| {
                (
                    w.domain.as_str(),
                    w.messages,
                    w.oldest,
                    w.last_error.as_str(),
                )
            })
            .collect();
        assert_eq!(
            got,
            [
                ("a.example", 2, 100, "connection refused"),
                ("b.example", 1, 50, "421 busy")
            ]
        );
    }

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        let o = super::super::MailerOptions {
            retry_base: Duration::from_secs(60),
            retry_max: Duration::from_secs(600),
            ..Default::default()
        };
        let w: Vec<u64> = (1..=6).map(|a| backoff(&o, a).as_secs()).collect();
        assert_eq!(w, [60, 120, 240, 480, 600, 600]);
    }
}
