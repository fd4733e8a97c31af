//! Rendering of domains (ownership challenges, transfers, placements), DNS records
//! and site certificates.

use super::{map, Render};
use proto::v1::*;

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

impl Render for proto::v1::AcmeStatusView {
    const HEADERS: &'static [&'static str] = &[
        "domain",
        "status",
        "serving",
        "issuer",
        "expires",
        "last error",
    ];
    fn cells(&self) -> Vec<String> {
        vec![
            self.domain.clone(),
            self.status.clone(),
            self.serving.clone(),
            self.issuer.clone().unwrap_or_default(),
            self.not_after.clone().unwrap_or_default(),
            self.last_error.clone().unwrap_or_default(),
        ]
    }
    fn fields(&self) -> Vec<(&'static str, String)> {
        let opt = |v: &Option<String>| v.clone().unwrap_or_else(|| "-".into());
        let mut out = vec![
            ("domain", self.domain.clone()),
            (
                "acme",
                match (self.configured, self.enabled) {
                    (false, _) => "not configured on the controller".into(),
                    (true, true) => "on".into(),
                    (true, false) => "off for this site".into(),
                },
            ),
            ("challenge", self.challenge.clone()),
            ("status", self.status.clone()),
            ("serving", self.serving.clone()),
            ("names", self.names.join(", ")),
            ("validated by", self.validated.join(", ")),
            ("issuer", opt(&self.issuer)),
            ("expires", opt(&self.not_after)),
            ("renews", opt(&self.renew_at)),
            ("last attempt", opt(&self.last_attempt)),
            ("last error", opt(&self.last_error)),
            ("next attempt", opt(&self.next_attempt)),
        ];
        if let Some(w) = &self.waiting_for {
            out.push((
                "queue",
                format!(
                    "waiting for the CA's limit of {w} until {}",
                    opt(&self.next_attempt)
                ),
            ));
        }
        if let Some([a, b]) = &self.renewal_window {
            out.push(("renewal window", format!("{a} .. {b} (the CA's, RFC 9773)")));
        }
        for l in &self.left_out {
            out.push(("left out", format!("{}: {}", l.name, l.reason)));
        }
        out
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
}
