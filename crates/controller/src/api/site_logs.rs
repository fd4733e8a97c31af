//! `GET /v1/sites/{domain}/logs`: a site's access, error, PHP and cron logs from
//! every web server of its cluster, merged in time order, each line marked with
//! its server (issue 15 point 6).
//!
//! The lines stay on the web servers (rotated there by size and age); this asks
//! each server of the site's web cluster over the operations channel
//! ([`crate::ops`]) at once, waits up to [`ASK_TIMEOUT`] for each, and merges.
//! A server that is down or does not answer is listed as such; the others' lines
//! are still returned. Tenancy is the site's: a customer asking for another
//! customer's site gets the same 404 as for a site that does not exist.

use std::time::Duration;

use axum::extract::State;
use axum::Json;
use model::entity::{Domain, Server};
use model::Role;
use proto::agent_ops::{LogKind, Op, OpAnswer, SiteLogsQuery, MAX_LOG_LINES};
use proto::v1::{SiteLogLineView, SiteLogsServerView, SiteLogsView};
use serde::Deserialize;

use super::sites::path_site;
use crate::auth::Caller;
use crate::error::{ApiError, ApiPath, ApiQuery, ApiResult};
use crate::state::AppState;
use proto::v1::ErrorBody;

/// How long each web server has to answer.
pub const ASK_TIMEOUT: Duration = Duration::from_secs(5);

/// Lines returned when `limit` is not given.
const DEFAULT_LIMIT: u32 = 200;

/// The query of `GET /v1/sites/{domain}/logs`.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct LogsParams {
    /// Comma-separated logs: `access`, `error`, `php`, `cron` (default: all).
    #[serde(default)]
    kind: Option<String>,
    /// Lines at or after: RFC 3339 (`2026-12-07T10:00:00Z`), a UTC time today
    /// (`12:55`), a UTC date and time (`2026-12-07 12:55`), a time ago (`90s`,
    /// `15m`, `2h`, `7d`), or milliseconds since the epoch (what `at_ms` says).
    #[serde(default)]
    since: Option<String>,
    /// At most this many lines, the newest (default 200, at most 5000).
    #[serde(default)]
    limit: Option<u32>,
}

/// `GET /v1/sites/{domain}/logs`.
#[utoipa::path(get, path = "/v1/sites/{domain}/logs", tag = "sites",
    params(("domain" = String, Path), LogsParams),
    responses((status = 200, body = SiteLogsView), (status = 404, body = ErrorBody),
        (status = 422, body = ErrorBody)))]
pub async fn site_logs(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(name): ApiPath<String>,
    ApiQuery(q): ApiQuery<LogsParams>,
) -> ApiResult<Json<SiteLogsView>> {
    let kinds = parse_kinds(q.kind.as_deref())?;
    let since_ms = q
        .since
        .as_deref()
        .map(|s| parse_since(s, time::OffsetDateTime::now_utc()))
        .transpose()?;
    let limit = q.limit.unwrap_or(DEFAULT_LIMIT);
    if limit == 0 || limit > MAX_LOG_LINES {
        return Err(ApiError::invalid(
            "limit",
            "out_of_range",
            format!("between 1 and {MAX_LOG_LINES} lines"),
        ));
    }
    let site = path_site(&state, &caller, &name).await?;
    let domain = state
        .store
        .get::<Domain>(store::Scope::All, site.data.domain)
        .await?
        .ok_or_else(|| ApiError::not_found("domain not found"))?;
    let Some(cluster) = domain.data.placements.get(&Role::Web).copied() else {
        return Ok(Json(SiteLogsView::default()));
    };
    let mut servers = state.store.all::<Server>().await?;
    servers.retain(|s| s.data.role == Role::Web && s.data.cluster == cluster);
    servers.sort_by(|a, b| a.meta.name.cmp(&b.meta.name));

    let query = SiteLogsQuery {
        domain: site.meta.name.clone(),
        kinds,
        since_ms,
        limit,
    };
    let mut asks = tokio::task::JoinSet::new();
    let mut view = SiteLogsView::default();
    for s in &servers {
        if state.health.state(s.meta.id) == scheduler::Health::Down {
            view.servers.push(SiteLogsServerView {
                server: s.meta.name.clone(),
                answered: false,
                error: Some("the server is down".into()),
            });
            continue;
        }
        let (ops, id, name, op) = (
            state.ops.clone(),
            s.meta.id,
            s.meta.name.clone(),
            Op::SiteLogs(query.clone()),
        );
        asks.spawn(async move { (name, ops.ask(id, op, ASK_TIMEOUT).await) });
    }
    while let Some(done) = asks.join_next().await {
        let Ok((server, answer)) = done else { continue };
        let error = match answer {
            Ok(OpAnswer::SiteLogs(a)) => {
                view.truncated |= a.truncated;
                view.lines
                    .extend(a.lines.into_iter().map(|l| SiteLogLineView {
                        time: rfc3339(l.at_ms),
                        at_ms: l.at_ms,
                        server: server.clone(),
                        kind: l.kind.as_str().to_owned(),
                        text: l.text,
                    }));
                None
            }
            Ok(OpAnswer::Error { message }) => Some(message),
            Err(e) => Some(e.to_string()),
        };
        view.servers.push(SiteLogsServerView {
            server,
            answered: error.is_none(),
            error,
        });
    }
    view.servers.sort_by(|a, b| a.server.cmp(&b.server));
    // Time order; a server's lines of one time keep their order.
    view.lines
        .sort_by(|a, b| a.at_ms.cmp(&b.at_ms).then_with(|| a.server.cmp(&b.server)));
    let limit = limit as usize;
    if view.lines.len() > limit {
        view.truncated = true;
        view.lines.drain(..view.lines.len() - limit);
    }
    Ok(Json(view))
}

fn parse_kinds(raw: Option<&str>) -> ApiResult<Vec<LogKind>> {
    let mut kinds = Vec::new();
    for part in raw.unwrap_or_default().split(',').filter(|p| !p.is_empty()) {
        let k = part
            .trim()
            .parse::<LogKind>()
            .map_err(|m| ApiError::invalid("kind", "unknown_log", m))?;
        if !kinds.contains(&k) {
            kinds.push(k);
        }
    }
    Ok(kinds)
}

/// `since` as milliseconds since the epoch, `now` for relative values.
fn parse_since(raw: &str, now: time::OffsetDateTime) -> ApiResult<i64> {
    let bad = || {
        ApiError::invalid(
            "since",
            "bad_time",
            format!("`{raw}` is not a time: give RFC 3339 (2026-12-07T10:00:00Z), a UTC time of today (12:55 or 12:55:30) or a UTC date and time (2026-12-07 12:55), a time ago (90s, 15m, 2h, 7d) or milliseconds since the epoch"),
        )
    };
    let raw = raw.trim();
    if let Ok(t) = time::OffsetDateTime::parse(raw, &time::format_description::well_known::Rfc3339)
    {
        return Ok(millis(t));
    }
    if let Some(ms) = wall_clock(raw, now) {
        return Ok(ms);
    }
    if raw.len() > 1 {
        let (n, unit) = raw.split_at(raw.len() - 1);
        let secs = match unit {
            "s" => 1,
            "m" => 60,
            "h" => 3600,
            "d" => 86_400,
            _ => 0,
        };
        if secs > 0 {
            let n: i64 = n.parse().map_err(|_| bad())?;
            if !(0..=3650 * 86_400).contains(&n.saturating_mul(secs)) {
                return Err(bad());
            }
            return Ok(millis(now) - n * secs * 1000);
        }
    }
    raw.parse::<i64>().ok().filter(|n| *n >= 0).ok_or_else(bad)
}

/// `HH:MM[:SS]` (today, UTC: the time zone log lines are shown in) or
/// `YYYY-MM-DD HH:MM[:SS]` / `YYYY-MM-DDTHH:MM[:SS]` without a zone (UTC).
fn wall_clock(raw: &str, now: time::OffsetDateTime) -> Option<i64> {
    use time::macros::format_description as fd;
    let time_of = |s: &str| {
        time::Time::parse(s, fd!("[hour]:[minute]:[second]"))
            .or_else(|_| time::Time::parse(s, fd!("[hour]:[minute]")))
            .ok()
    };
    if let Some(t) = time_of(raw) {
        return Some(millis(now.replace_time(t)));
    }
    let (date, clock) = raw.split_once([' ', 'T'])?;
    let date = time::Date::parse(date, fd!("[year]-[month]-[day]")).ok()?;
    let t = time_of(clock)?;
    Some(millis(time::PrimitiveDateTime::new(date, t).assume_utc()))
}

fn millis(t: time::OffsetDateTime) -> i64 {
    i64::try_from(t.unix_timestamp_nanos() / 1_000_000).unwrap_or(i64::MAX)
}

fn rfc3339(ms: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn since_takes_rfc3339_times_ago_and_epoch_millis() {
        let now = time::macros::datetime!(2026-12-07 10:00:00 UTC);
        let at = millis(now);
        assert_eq!(parse_since("2026-12-07T10:00:00Z", now).unwrap(), at);
        assert_eq!(parse_since("15m", now).unwrap(), at - 900_000);
        assert_eq!(parse_since("2h", now).unwrap(), at - 7_200_000);
        assert_eq!(
            parse_since("1795654923000", now).unwrap(),
            1_795_654_923_000
        );
        assert_eq!(parse_since("09:30", now).unwrap(), at - 1_800_000);
        assert_eq!(parse_since("09:30:15", now).unwrap(), at - 1_785_000);
        assert_eq!(
            parse_since("2026-12-06 10:00", now).unwrap(),
            at - 86_400_000
        );
        assert_eq!(
            parse_since("2026-12-06T10:00:00", now).unwrap(),
            at - 86_400_000
        );
        for bad in [
            "yesterday",
            "-5m",
            "5x",
            "m",
            "99999999d",
            "",
            "25:00",
            "12:61",
            "2026-13-01 10:00",
        ] {
            let e = parse_since(bad, now).unwrap_err();
            assert_eq!(e.body.field.as_deref(), Some("since"), "{bad}");
        }
    }

    #[test]
    fn kinds_are_named_and_deduplicated() {
        assert_eq!(
            parse_kinds(Some("error,php,error")).unwrap(),
            vec![LogKind::Error, LogKind::Php]
        );
        assert!(parse_kinds(None).unwrap().is_empty());
        let e = parse_kinds(Some("access,mail")).unwrap_err();
        assert_eq!(e.body.field.as_deref(), Some("kind"));
    }
}
