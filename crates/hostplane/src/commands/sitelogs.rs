//! `hostplane site logs DOMAIN [--access|--error|--php|--cron] [--since T] [-n N]
//! [--follow]`: a site's logs from every web server of its cluster, merged in time
//! order, each line marked with its server (`GET /v1/sites/{domain}/logs`).
//!
//! `--follow` asks again every two seconds for lines since the newest one seen;
//! lines of that same millisecond already printed are not printed twice.

use std::collections::HashSet;
use std::time::Duration;

use proto::v1::{SiteLogLineView, SiteLogsView};

use super::Ctx;
use crate::cli::SiteLogsArgs;

/// How often `--follow` asks for new lines.
const FOLLOW_EVERY: Duration = Duration::from_secs(2);

/// The `kind` query of the flags given (`None`: every log).
fn kinds(a: &SiteLogsArgs) -> Option<String> {
    let mut k = Vec::new();
    if a.access {
        k.push("access");
    }
    if a.error {
        k.extend(["error", "php"]);
    }
    if a.php && !a.error {
        k.push("php");
    }
    if a.cron {
        k.push("cron");
    }
    (!k.is_empty()).then(|| k.join(","))
}

/// `site logs`.
pub async fn logs(ctx: &Ctx, api: &client::Client, a: SiteLogsArgs) -> anyhow::Result<()> {
    let kind = kinds(&a);
    let view = api
        .site_logs(
            &a.domain,
            kind.as_deref(),
            a.since.as_deref(),
            Some(a.lines),
        )
        .await?;
    warn_servers(&view);
    if !a.follow {
        if ctx.out.json {
            println!("{}", serde_json::to_string_pretty(&view)?);
        } else {
            view.lines.iter().for_each(print_line);
            if view.truncated {
                eprintln!("(older lines left out: raise -n or narrow --since)");
            }
        }
        return Ok(());
    }
    let mut seen = Seen::default();
    for l in &view.lines {
        emit(ctx, l)?;
        seen.add(l);
    }
    let mut last_warning = String::new();
    loop {
        tokio::time::sleep(FOLLOW_EVERY).await;
        let since = seen.at_ms.map(|ms| ms.to_string());
        let view = match api
            .site_logs(&a.domain, kind.as_deref(), since.as_deref(), Some(5_000))
            .await
        {
            Ok(v) => v,
            Err(e) => {
                // A controller restart or a network blip: keep following.
                let w = format!("{e}");
                if w != last_warning {
                    eprintln!("warning: {w} (still following)");
                    last_warning = w;
                }
                continue;
            }
        };
        for l in &view.lines {
            if seen.is_new(l) {
                emit(ctx, l)?;
                seen.add(l);
            }
        }
    }
}

/// The newest time printed and the lines printed at that time.
#[derive(Default)]
struct Seen {
    at_ms: Option<i64>,
    at_last: HashSet<(String, String, String)>,
}

impl Seen {
    fn key(l: &SiteLogLineView) -> (String, String, String) {
        (l.server.clone(), l.kind.clone(), l.text.clone())
    }

    fn is_new(&self, l: &SiteLogLineView) -> bool {
        match self.at_ms {
            None => true,
            Some(t) if l.at_ms > t => true,
            Some(t) if l.at_ms == t => !self.at_last.contains(&Self::key(l)),
            Some(_) => false,
        }
    }

    fn add(&mut self, l: &SiteLogLineView) {
        if self.at_ms != Some(l.at_ms) && self.at_ms.is_none_or(|t| l.at_ms > t) {
            self.at_ms = Some(l.at_ms);
            self.at_last.clear();
        }
        if self.at_ms == Some(l.at_ms) {
            self.at_last.insert(Self::key(l));
        }
    }
}

fn emit(ctx: &Ctx, l: &SiteLogLineView) -> anyhow::Result<()> {
    if ctx.out.json {
        println!("{}", serde_json::to_string(l)?);
    } else {
        print_line(l);
    }
    Ok(())
}

fn print_line(l: &SiteLogLineView) {
    println!("{} {} {:<6} {}", l.time, l.server, l.kind, l.text);
}

fn warn_servers(view: &SiteLogsView) {
    for s in view.servers.iter().filter(|s| !s.answered) {
        eprintln!(
            "warning: {} did not answer ({}); its lines are missing",
            s.server,
            s.error.as_deref().unwrap_or("no reason given")
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(at_ms: i64, server: &str, text: &str) -> SiteLogLineView {
        SiteLogLineView {
            time: String::new(),
            at_ms,
            server: server.into(),
            kind: "access".into(),
            text: text.into(),
        }
    }

    #[test]
    fn following_prints_each_line_once() {
        let mut seen = Seen::default();
        let first = [
            line(1, "web-1", "a"),
            line(2, "web-1", "b"),
            line(2, "web-2", "c"),
        ];
        first.iter().for_each(|l| seen.add(l));
        // The next answer starts at the newest time again.
        let next = [
            line(2, "web-1", "b"),
            line(2, "web-2", "c"),
            line(2, "web-2", "d"),
            line(3, "web-1", "e"),
        ];
        let new: Vec<&str> = next
            .iter()
            .filter(|l| {
                let n = seen.is_new(l);
                if n {
                    seen.add(l);
                }
                n
            })
            .map(|l| l.text.as_str())
            .collect();
        assert_eq!(new, ["d", "e"]);
        assert!(!seen.is_new(&line(1, "web-1", "old")));
    }
}
