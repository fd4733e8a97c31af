//! Rendering of clusters, servers (health, engines, applied revision, heartbeat age)
//! and join tokens.

use super::{list, opt, text, yes, Render};
use proto::v1::*;

impl Render for ClusterView {
    const HEADERS: &'static [&'static str] = &[
        "name",
        "role",
        "default",
        "servers",
        "web ttl",
        "ttl",
        "description",
    ];
    fn cells(&self) -> Vec<String> {
        vec![
            self.name.clone(),
            self.role.clone(),
            yes(self.default),
            list(&self.servers),
            self.web_ttl.to_string(),
            self.ttl.to_string(),
            self.description.clone(),
        ]
    }
    fn fields(&self) -> Vec<(&'static str, String)> {
        vec![
            ("name", self.name.clone()),
            ("role", self.role.clone()),
            ("description", text(&self.description)),
            ("default", yes(self.default)),
            ("web ttl", self.web_ttl.to_string()),
            ("ttl", self.ttl.to_string()),
            ("servers", list(&self.servers)),
        ]
        .into_iter()
        .chain(self.hostname.as_ref().map(|h| {
            (
                "client names",
                format!("imap.{h}, pop.{h}, smtp.{h} (host name {h})"),
            )
        }))
        .chain(self.mail_writer.as_ref().map(|w| {
            (
                "mail writer",
                format!(
                    "{} (epoch {}, writes from {})",
                    w.server.as_deref().unwrap_or("none: no usable server"),
                    w.epoch,
                    w.not_before
                ),
            )
        }))
        .chain([("created", self.created_at.clone())])
        .collect()
    }
}

impl Render for ServerView {
    const HEADERS: &'static [&'static str] = &[
        "name",
        "role",
        "cluster",
        "rank",
        "region",
        "country",
        "address",
        "health",
        "engine",
        "applied",
        "heartbeat",
    ];
    fn cells(&self) -> Vec<String> {
        vec![
            self.name.clone(),
            self.role.clone(),
            self.cluster.clone(),
            self.rank.to_string(),
            text(&self.region),
            self.country.clone(),
            list(&self.addresses),
            health_text(self),
            engine_text(self),
            applied_text(self),
            heartbeat_age(self.last_heartbeat.as_deref()),
        ]
    }
    fn fields(&self) -> Vec<(&'static str, String)> {
        vec![
            ("name", self.name.clone()),
            ("cluster", self.cluster.clone()),
            ("role", self.role.clone()),
            ("rank", self.rank.to_string()),
            ("hostname", self.hostname.clone()),
            ("addresses", list(&self.addresses)),
            ("region", text(&self.region)),
            ("country", self.country.clone()),
            ("hardware", text(&self.hardware)),
            ("health", self.health.clone()),
            ("engine", engine_text(self)),
            ("drained", yes(self.drained)),
            ("applied revision", opt(&self.applied_revision)),
            ("config revision", opt(&self.config_revision)),
            (
                "last heartbeat",
                match &self.last_heartbeat {
                    Some(at) => format!("{at} ({})", heartbeat_age(Some(at))),
                    None => "never".into(),
                },
            ),
            ("created", self.created_at.clone()),
        ]
    }
}

/// Engine states as reported (`not_built` for roles without an engine in this
/// build), `-` before the first heartbeat.
pub fn engine_text(s: &ServerView) -> String {
    if s.engines.is_empty() {
        return "-".into();
    }
    s.engines
        .iter()
        .map(|e| e.state.replace('_', " "))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Health, with `(drained)` when drained.
pub fn health_text(s: &ServerView) -> String {
    if s.drained {
        format!("{} (drained)", s.health)
    } else {
        s.health.clone()
    }
}

/// Applied revision, with the desired one when the agent lags behind.
pub fn applied_text(s: &ServerView) -> String {
    match (s.applied_revision, s.config_revision) {
        (Some(a), Some(c)) if a < c => format!("{a} (want {c})"),
        (Some(a), _) => a.to_string(),
        (None, _) => "-".into(),
    }
}

/// How long ago an RFC 3339 time was, compactly: `0.4s ago`, `12s ago`, `5m ago`,
/// `3h ago`, `2d ago`; `never` for none.
pub fn heartbeat_age(at: Option<&str>) -> String {
    let Some(at) = at else {
        return "never".into();
    };
    let Ok(then) = time::OffsetDateTime::parse(at, &time::format_description::well_known::Rfc3339)
    else {
        return at.to_owned();
    };
    let secs = (time::OffsetDateTime::now_utc() - then)
        .as_seconds_f64()
        .max(0.0);
    if secs < 10.0 {
        format!("{secs:.1}s ago")
    } else if secs < 120.0 {
        format!("{secs:.0}s ago")
    } else if secs < 7200.0 {
        format!("{:.0}m ago", secs / 60.0)
    } else if secs < 172_800.0 {
        format!("{:.0}h ago", secs / 3600.0)
    } else {
        format!("{:.0}d ago", secs / 86_400.0)
    }
}

impl Render for JoinTokenView {
    const HEADERS: &'static [&'static str] = &["id", "cluster", "created", "expires", "expired"];
    fn cells(&self) -> Vec<String> {
        vec![
            self.id.clone(),
            self.cluster.clone(),
            self.created_at.clone(),
            self.expires_at.clone(),
            yes(self.expired),
        ]
    }
    fn fields(&self) -> Vec<(&'static str, String)> {
        vec![
            ("id", self.id.clone()),
            ("cluster", self.cluster.clone()),
            ("created", self.created_at.clone()),
            ("expires", self.expires_at.clone()),
            ("expired", yes(self.expired)),
        ]
    }
}
