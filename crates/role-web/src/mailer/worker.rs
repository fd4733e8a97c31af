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
#[derive(Debug, Clone, Copy)]
struct Retry {
    attempts: u32,
    next: Instant,
}

/// What one attempt came to.
enum Outcome {
    /// Gone from the spool (delivered, refused or expired).
    Done,
    /// Try again later.
    Later(String),
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
                Outcome::Later(why) => {
                    let r = retry.entry(id.clone()).or_insert(Retry {
                        attempts: 0,
                        next: now,
                    });
                    r.attempts += 1;
                    let wait = backoff(&shared.opts, r.attempts);
                    r.next = Instant::now() + wait;
                    tracing::info!(id, attempts = r.attempts, retry_in = ?wait, reason = %why,
                        "site mail deferred");
                }
            }
        }
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
    let age = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs()
        .saturating_sub(envelope.spooled_at);
    if age >= shared.opts.expire_after.as_secs() {
        tracing::warn!(id, site = %envelope.domain, from = %envelope.from,
            recipients = ?envelope.recipients, age_secs = age,
            "site mail dropped: not deliverable to the site's mail cluster in time");
        remove(shared, id).await;
        return Outcome::Done;
    }
    let routes = shared.routes.load_full();
    let Some(Some(route)) = routes.by_domain.get(&envelope.domain) else {
        return Outcome::Later(format!(
            "the site {} has no mail route on this server now",
            envelope.domain
        ));
    };
    let Some(tls) = shared.tls.clone() else {
        return Outcome::Later("this web server has no CA to check mail servers with".into());
    };
    let Ok(site) = model::DomainName::new(&envelope.domain) else {
        return Outcome::Later(format!("{} is not a domain name", envelope.domain));
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
                }
                tracing::info!(id, site = %envelope.domain, server = %addr,
                    sent = envelope.recipients.len() - done.refused.len(), "site mail submitted");
                remove(shared, id).await;
                return Outcome::Done;
            }
            Err(SubmitError::Unreachable(e)) => {
                last = e;
            }
            Err(SubmitError::Deferred(e)) => return Outcome::Later(e),
            Err(SubmitError::Refused(e)) => {
                tracing::warn!(id, site = %envelope.domain, from = %envelope.from, reply = %e,
                    "site mail refused for good by the mail server; dropped");
                remove(shared, id).await;
                return Outcome::Done;
            }
        }
    }
    Outcome::Later(last)
}

#[cfg(test)]
mod tests {
    use super::*;

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
