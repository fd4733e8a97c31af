//! Rendering of API objects: JSON (`--json`), aligned tables for listings and
//! `key: value` lines for single objects.

use comfy_table::{presets, Table};
use proto::v1::*;
use serde::Serialize;
use std::collections::BTreeMap;
use std::io::Write;

/// Where and how to print.
#[derive(Debug, Clone, Copy)]
pub struct Output {
    /// Print JSON instead of human text.
    pub json: bool,
}

/// The result of a listing: every item, or one page.
#[derive(Debug)]
pub enum Listing<T> {
    /// Every item (all pages were fetched).
    All(Vec<T>),
    /// One page, maybe with a cursor to the next.
    Page(Page<T>),
}

/// An object that can be shown as a table row and as `key: value` lines.
pub trait Render {
    /// Column titles of a listing.
    const HEADERS: &'static [&'static str];
    /// One cell per column.
    fn cells(&self) -> Vec<String>;
    /// Every field for `show`.
    fn fields(&self) -> Vec<(&'static str, String)>;
}

impl Output {
    /// Print a listing: a JSON array (all) or page object, or a table.
    pub fn list<T: Render + Serialize>(&self, listing: &Listing<T>) -> anyhow::Result<()> {
        if self.json {
            return match listing {
                Listing::All(items) => print_json(items),
                Listing::Page(page) => print_json(page),
            };
        }
        let (items, next) = match listing {
            Listing::All(items) => (items.as_slice(), None),
            Listing::Page(page) => (page.items.as_slice(), page.next_cursor.as_deref()),
        };
        if items.is_empty() {
            println!("(none)");
        } else {
            println!("{}", table(T::HEADERS, items.iter().map(Render::cells)));
        }
        if let Some(cursor) = next {
            println!("\nmore: repeat with --cursor {cursor} (or use --all)");
        }
        Ok(())
    }

    /// Print one object.
    pub fn one<T: Render + Serialize>(&self, item: &T) -> anyhow::Result<()> {
        if self.json {
            return print_json(item);
        }
        print_fields(&item.fields());
        Ok(())
    }

    /// Print a created object that may carry a generated password.
    pub fn with_password<T: Render + Serialize>(
        &self,
        created: &WithPassword<T>,
    ) -> anyhow::Result<()> {
        if self.json {
            return print_json(created);
        }
        print_fields(&created.object.fields());
        if let Some(password) = &created.generated_password {
            secret("generated password", password);
        }
        Ok(())
    }

    /// Confirm a deletion.
    pub fn deleted(&self, kind: &str, key: &str) -> anyhow::Result<()> {
        if self.json {
            return print_json(&serde_json::json!({ "deleted": kind, "key": key }));
        }
        println!("deleted {kind} {key}");
        Ok(())
    }

    /// Print an arbitrary serializable value as JSON, or `fields` as text.
    pub fn value<T: Serialize>(&self, value: &T, fields: &[(&str, String)]) -> anyhow::Result<()> {
        if self.json {
            return print_json(value);
        }
        print_fields(fields);
        Ok(())
    }
}

/// Pretty JSON on stdout.
pub fn print_json<T: Serialize + ?Sized>(value: &T) -> anyhow::Result<()> {
    let text = serde_json::to_string_pretty(value)?;
    let mut out = std::io::stdout().lock();
    writeln!(out, "{text}")?;
    out.flush()?;
    Ok(())
}

/// Print a secret with the note that it is shown only this once.
pub fn secret(label: &str, value: &str) {
    println!();
    println!("{label}: {value}");
    println!("  (shown once: store it now, it cannot be displayed again)");
}

/// `key: value` lines, keys aligned.
pub fn print_fields(fields: &[(&str, String)]) {
    let width = fields.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
    for (key, value) in fields {
        println!("{:<w$}  {value}", format!("{key}:"), w = width + 1);
    }
}

/// An aligned, borderless table: upper-case headers, two spaces between columns,
/// no trailing blanks.
pub fn table(headers: &[&str], rows: impl Iterator<Item = Vec<String>>) -> String {
    let mut t = Table::new();
    t.load_preset(presets::NOTHING);
    t.set_header(headers.iter().map(|h| h.to_ascii_uppercase()));
    for row in rows {
        t.add_row(row);
    }
    for column in t.column_iter_mut() {
        column.set_padding((0, 2));
    }
    t.lines()
        .map(|l| l.trim_end().to_owned())
        .collect::<Vec<_>>()
        .join("\n")
}

fn opt<T: ToString>(v: &Option<T>) -> String {
    v.as_ref()
        .map(ToString::to_string)
        .unwrap_or_else(|| "-".into())
}

fn list(v: &[String]) -> String {
    if v.is_empty() {
        "-".into()
    } else {
        v.join(", ")
    }
}

fn map(m: &BTreeMap<String, String>) -> String {
    if m.is_empty() {
        "-".into()
    } else {
        m.iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(" ")
    }
}

fn yes(b: bool) -> String {
    if b { "yes" } else { "no" }.into()
}

fn text(s: &str) -> String {
    if s.is_empty() { "-" } else { s }.into()
}

/// One-line rendering of DNS record data without its `type` key.
pub fn record_data(data: &serde_json::Value) -> String {
    let Some(obj) = data.as_object() else {
        return data.to_string();
    };
    let order = [
        "preference",
        "priority",
        "weight",
        "port",
        "flags",
        "tag",
        "address",
        "exchange",
        "target",
        "value",
        "text",
    ];
    let mut parts = Vec::new();
    for key in order {
        if let Some(v) = obj.get(key) {
            parts.push(match v {
                serde_json::Value::String(s) if key == "text" || s.contains(' ') => {
                    format!("{s:?}")
                }
                serde_json::Value::String(s) => s.clone(),
                other => other.to_string(),
            });
        }
    }
    for (k, v) in obj {
        if k != "type" && !order.contains(&k.as_str()) {
            parts.push(format!("{k}={v}"));
        }
    }
    parts.join(" ")
}

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
            ("created", self.created_at.clone()),
        ]
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

impl Render for CustomerView {
    const HEADERS: &'static [&'static str] = &[
        "name",
        "kind",
        "display name",
        "email",
        "reseller",
        "disabled",
    ];
    fn cells(&self) -> Vec<String> {
        vec![
            self.name.clone(),
            self.kind.clone(),
            self.display_name.clone(),
            opt(&self.email),
            opt(&self.reseller),
            yes(self.disabled),
        ]
    }
    fn fields(&self) -> Vec<(&'static str, String)> {
        let mut f = vec![
            ("name", self.name.clone()),
            ("kind", self.kind.clone()),
            ("display name", text(&self.display_name)),
            ("email", opt(&self.email)),
            ("reseller", opt(&self.reseller)),
            ("disabled", yes(self.disabled)),
            ("password login", yes(self.has_password)),
            ("default clusters", map(&self.default_clusters)),
            (
                "plan",
                self.plan.clone().unwrap_or_else(|| "(default)".into()),
            ),
        ];
        if let Some(l) = &self.limits {
            f.extend(crate::commands::plans::limit_fields(l));
        }
        f.push(("created", self.created_at.clone()));
        f
    }
}

impl Render for TokenView {
    const HEADERS: &'static [&'static str] = &["id", "name", "account", "created", "expires"];
    fn cells(&self) -> Vec<String> {
        vec![
            self.id.clone(),
            self.name.clone(),
            self.account.clone(),
            self.created_at.clone(),
            self.expires_at.clone().unwrap_or_else(|| "never".into()),
        ]
    }
    fn fields(&self) -> Vec<(&'static str, String)> {
        vec![
            ("id", self.id.clone()),
            ("name", self.name.clone()),
            ("account", self.account.clone()),
            ("created", self.created_at.clone()),
            (
                "expires",
                self.expires_at.clone().unwrap_or_else(|| "never".into()),
            ),
        ]
    }
}

impl Render for proto::v1::DomainChallengeView {
    const HEADERS: &'static [&'static str] = &["record", "type", "value"];
    fn cells(&self) -> Vec<String> {
        vec![self.record.clone(), "TXT".into(), self.value.clone()]
    }
    fn fields(&self) -> Vec<(&'static str, String)> {
        vec![
            ("registrable", self.registrable.clone()),
            ("customer", self.customer.clone()),
            ("record", format!("{} TXT", self.record)),
            ("value", self.value.clone()),
            (
                "then",
                "publish the record at the domain's DNS host, then `hostplane domain add` again"
                    .into(),
            ),
        ]
    }
}

impl Render for proto::v1::DomainTransferView {
    const HEADERS: &'static [&'static str] = &["registrable", "to", "domains"];
    fn cells(&self) -> Vec<String> {
        vec![
            self.registrable.clone(),
            self.to.clone(),
            self.domains.join(", "),
        ]
    }
    fn fields(&self) -> Vec<(&'static str, String)> {
        vec![
            ("registrable", self.registrable.clone()),
            ("to", self.to.clone()),
            ("domains", self.domains.join(", ")),
        ]
    }
}

impl Render for DomainView {
    const HEADERS: &'static [&'static str] = &["name", "customer", "placements", "created"];
    fn cells(&self) -> Vec<String> {
        let name = if self.unicode != self.name {
            format!("{} ({})", self.unicode, self.name)
        } else {
            self.name.clone()
        };
        vec![
            name,
            self.customer.clone(),
            map(&self.placements),
            self.created_at.clone(),
        ]
    }
    fn fields(&self) -> Vec<(&'static str, String)> {
        let mut f = vec![("name", self.name.clone())];
        if self.unicode != self.name {
            f.push(("unicode", self.unicode.clone()));
        }
        f.push(("customer", self.customer.clone()));
        for role in model::Role::ALL {
            if let Some(cluster) = self.placements.get(role.as_str()) {
                f.push((role_label(*role), cluster.clone()));
            }
        }
        for (role, cluster) in &self.placements {
            if role.parse::<model::Role>().is_err() {
                f.push(("placement", format!("{role}={cluster}")));
            }
        }
        f.push(("created", self.created_at.clone()));
        f
    }
}

fn role_label(role: model::Role) -> &'static str {
    match role {
        model::Role::Web => "web cluster",
        model::Role::Dns => "dns cluster",
        model::Role::Mail => "mail cluster",
        model::Role::Files => "files cluster",
        model::Role::Db => "db cluster",
    }
}

impl Render for SiteView {
    const HEADERS: &'static [&'static str] = &[
        "domain",
        "customer",
        "cluster",
        "mode",
        "active on",
        "php",
        "aliases",
    ];
    fn cells(&self) -> Vec<String> {
        vec![
            self.domain.clone(),
            self.customer.clone(),
            self.cluster.clone(),
            self.mode.clone(),
            opt(&self.active_server),
            yes(self.php),
            list(&self.aliases),
        ]
    }
    fn fields(&self) -> Vec<(&'static str, String)> {
        let mut f = vec![
            ("domain", self.domain.clone()),
            ("customer", self.customer.clone()),
            ("aliases", list(&self.aliases)),
            ("php", yes(self.php)),
            ("mode", self.mode.clone()),
            ("https redirect", yes(self.https_redirect)),
            ("document root", self.docroot.clone()),
            ("hsts", hsts(self.hsts, self.hsts_active)),
            ("php version", php_version(self)),
            ("php settings", php_ini(&self.php_ini)),
            ("cluster", self.cluster.clone()),
            ("active server", opt(&self.active_server)),
            ("kept paths", list(&self.keep)),
            ("local paths", list(&self.local)),
            ("disk usage", site_usage(self.usage_bytes, self.quota_mb)),
            ("conflicts", self.conflicts.to_string()),
            ("created", self.created_at.clone()),
        ];
        f.extend(self.warnings.iter().map(|w| ("warning", w.clone())));
        f
    }
}

/// HSTS as asked for and as sent.
fn hsts(on: bool, active: bool) -> String {
    match (on, active) {
        (false, _) => "off".into(),
        (true, true) => "on (sent: the certificate is trusted)".into(),
        (true, false) => "on, not sent: the site has no uploaded certificate".into(),
    }
}

/// The PHP version chosen, what runs, and what the servers have.
fn php_version(v: &SiteView) -> String {
    let chosen = v.php_version.as_deref().unwrap_or("default");
    let runs = v
        .php_version_effective
        .as_deref()
        .unwrap_or("not reported yet");
    let have = match v.php_versions_available.is_empty() {
        true => String::new(),
        false => format!("; available: {}", v.php_versions_available.join(", ")),
    };
    format!("{chosen} (runs {runs}{have})")
}

/// `k=v, k=v`, or `defaults`.
fn php_ini(ini: &std::collections::BTreeMap<String, String>) -> String {
    if ini.is_empty() {
        return "defaults".into();
    }
    ini.iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// A site's usage against its quota, e.g. `12.5 MiB of 10240 MiB (0%)`.
fn site_usage(bytes: Option<u64>, quota_mb: u64) -> String {
    let Some(bytes) = bytes else {
        return format!("not reported yet (quota {})", quota(quota_mb));
    };
    let mib = bytes as f64 / f64::from(1u32 << 20);
    if quota_mb == 0 {
        return format!("{mib:.1} MiB (no quota)");
    }
    let pct = (bytes.saturating_mul(100)) / quota_mb.saturating_mul(1 << 20);
    format!("{mib:.1} MiB of {quota_mb} MiB ({pct}%)")
}

fn quota(mb: u64) -> String {
    if mb == 0 {
        "unlimited".into()
    } else {
        format!("{mb} MiB")
    }
}

impl Render for MailboxView {
    const HEADERS: &'static [&'static str] =
        &["address", "customer", "quota", "enabled", "display name"];
    fn cells(&self) -> Vec<String> {
        vec![
            self.address.clone(),
            self.customer.clone(),
            quota(self.quota_mb),
            yes(self.enabled),
            self.display_name.clone(),
        ]
    }
    fn fields(&self) -> Vec<(&'static str, String)> {
        vec![
            ("address", self.address.clone()),
            ("domain", self.domain.clone()),
            ("customer", self.customer.clone()),
            ("display name", text(&self.display_name)),
            ("quota", quota(self.quota_mb)),
            ("enabled", yes(self.enabled)),
            ("created", self.created_at.clone()),
        ]
    }
}

impl Render for AliasView {
    const HEADERS: &'static [&'static str] = &["address", "customer", "destinations"];
    fn cells(&self) -> Vec<String> {
        vec![
            self.address.clone(),
            self.customer.clone(),
            list(&self.destinations),
        ]
    }
    fn fields(&self) -> Vec<(&'static str, String)> {
        vec![
            ("address", self.address.clone()),
            ("domain", self.domain.clone()),
            ("customer", self.customer.clone()),
            ("destinations", list(&self.destinations)),
            ("created", self.created_at.clone()),
        ]
    }
}

impl Render for DatabaseView {
    const HEADERS: &'static [&'static str] =
        &["name", "engine", "customer", "cluster", "domain", "size"];
    fn cells(&self) -> Vec<String> {
        vec![
            self.name.clone(),
            self.engine.clone(),
            self.customer.clone(),
            self.cluster.clone(),
            opt(&self.domain),
            opt(&self.size_bytes),
        ]
    }
    fn fields(&self) -> Vec<(&'static str, String)> {
        vec![
            ("name", self.name.clone()),
            ("engine", self.engine.clone()),
            ("customer", self.customer.clone()),
            ("cluster", self.cluster.clone()),
            ("domain", opt(&self.domain)),
            ("size bytes", opt(&self.size_bytes)),
            ("created", self.created_at.clone()),
        ]
    }
}

impl Render for DbUserView {
    const HEADERS: &'static [&'static str] =
        &["name", "engine", "customer", "cluster", "databases"];
    fn cells(&self) -> Vec<String> {
        vec![
            self.name.clone(),
            self.engine.clone(),
            self.customer.clone(),
            self.cluster.clone(),
            list(&self.databases),
        ]
    }
    fn fields(&self) -> Vec<(&'static str, String)> {
        vec![
            ("name", self.name.clone()),
            ("engine", self.engine.clone()),
            ("customer", self.customer.clone()),
            ("cluster", self.cluster.clone()),
            ("databases", list(&self.databases)),
            ("created", self.created_at.clone()),
        ]
    }
}

impl Render for FtpAccountView {
    const HEADERS: &'static [&'static str] = &["username", "domain", "customer", "home", "quota"];
    fn cells(&self) -> Vec<String> {
        vec![
            self.username.clone(),
            self.domain.clone(),
            self.customer.clone(),
            format!("/{}", self.home),
            quota(self.quota_mb),
        ]
    }
    fn fields(&self) -> Vec<(&'static str, String)> {
        vec![
            ("username", self.username.clone()),
            ("domain", self.domain.clone()),
            ("customer", self.customer.clone()),
            ("home", format!("/{}", self.home)),
            ("quota", quota(self.quota_mb)),
            ("created", self.created_at.clone()),
        ]
    }
}

impl Render for DnsRecordView {
    const HEADERS: &'static [&'static str] = &["id", "domain", "name", "ttl", "type", "data"];
    fn cells(&self) -> Vec<String> {
        vec![
            self.id.to_string(),
            self.domain.clone(),
            self.name.clone(),
            self.ttl
                .map(|t| t.to_string())
                .unwrap_or_else(|| "default".into()),
            self.rtype.clone(),
            record_data(&self.data),
        ]
    }
    fn fields(&self) -> Vec<(&'static str, String)> {
        vec![
            ("id", self.id.to_string()),
            ("domain", self.domain.clone()),
            ("name", self.name.clone()),
            (
                "ttl",
                self.ttl
                    .map(|t| t.to_string())
                    .unwrap_or_else(|| "cluster default".into()),
            ),
            ("type", self.rtype.clone()),
            ("data", record_data(&self.data)),
            ("created", self.created_at.clone()),
        ]
    }
}

impl Render for EventView {
    const HEADERS: &'static [&'static str] =
        &["id", "revision", "at", "actor", "action", "kind", "object"];
    fn cells(&self) -> Vec<String> {
        vec![
            self.id.to_string(),
            self.revision.to_string(),
            self.at.clone(),
            self.actor.clone(),
            self.action.clone(),
            self.kind.clone(),
            self.object.clone(),
        ]
    }
    fn fields(&self) -> Vec<(&'static str, String)> {
        vec![
            ("id", self.id.to_string()),
            ("revision", self.revision.to_string()),
            ("at", self.at.clone()),
            ("actor", self.actor.clone()),
            ("action", self.action.clone()),
            ("kind", self.kind.clone()),
            ("object", self.object.clone()),
            ("detail", self.detail.to_string()),
        ]
    }
}

impl Render for proto::v1::DbTrashView {
    const HEADERS: &'static [&'static str] = &[
        "entry", "database", "engine", "customer", "server", "dropped", "size",
    ];
    fn cells(&self) -> Vec<String> {
        vec![
            self.name.clone(),
            self.database.clone(),
            self.engine.clone(),
            self.customer.clone(),
            self.server.clone(),
            self.dropped_at.clone(),
            self.size_bytes.to_string(),
        ]
    }
    fn fields(&self) -> Vec<(&'static str, String)> {
        vec![
            ("entry", self.name.clone()),
            ("database", self.database.clone()),
            ("engine", self.engine.clone()),
            ("customer", self.customer.clone()),
            ("cluster", self.cluster.clone()),
            ("server", self.server.clone()),
            ("dropped", self.dropped_at.clone()),
            ("size bytes", self.size_bytes.to_string()),
        ]
    }
}

impl Render for proto::v1::CertificateView {
    const HEADERS: &'static [&'static str] = &["domain", "source", "names", "expires"];
    fn cells(&self) -> Vec<String> {
        vec![
            self.domain.clone(),
            self.source.clone(),
            self.names.join(", "),
            self.not_after.clone().unwrap_or_default(),
        ]
    }
    fn fields(&self) -> Vec<(&'static str, String)> {
        vec![
            ("domain", self.domain.clone()),
            ("source", self.source.clone()),
            ("names", self.names.join(", ")),
            ("expires", self.not_after.clone().unwrap_or_default()),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn record_data_is_one_readable_line() {
        assert_eq!(
            record_data(&json!({"type": "MX", "preference": 10, "exchange": "mx.example.net"})),
            "10 mx.example.net"
        );
        assert_eq!(
            record_data(&json!({"type": "TXT", "text": "v=spf1 -all"})),
            "\"v=spf1 -all\""
        );
        assert_eq!(
            record_data(
                &json!({"type": "SRV", "priority": 10, "weight": 5, "port": 5060, "target": "sip.example.com"})
            ),
            "10 5 5060 sip.example.com"
        );
        assert_eq!(
            record_data(
                &json!({"type": "CAA", "flags": 0, "tag": "issue", "value": "letsencrypt.org"})
            ),
            "0 issue letsencrypt.org"
        );
    }

    #[test]
    fn tables_align_columns() {
        let t = table(
            &["name", "role"],
            vec![
                vec!["alpha".into(), "web".into()],
                vec!["d".into(), "dns".into()],
            ]
            .into_iter(),
        );
        let text = t;
        let lines: Vec<_> = text.lines().map(str::trim_end).collect();
        assert_eq!(lines.len(), 3, "{text}");
        assert!(lines[0].starts_with("NAME"), "{text}");
        assert!(text.lines().all(|l| l == l.trim_end()), "{text}");
        assert!(
            lines[0].contains("NAME") && lines[0].contains("ROLE"),
            "{text}"
        );
        let col = |l: &str, w: &str| l.find(w).unwrap();
        assert_eq!(col(lines[0], "ROLE"), col(lines[1], "web"), "{text}");
        assert_eq!(col(lines[1], "web"), col(lines[2], "dns"), "{text}");
    }
}
