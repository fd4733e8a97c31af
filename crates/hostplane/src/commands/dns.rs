//! `dns`: customer DNS records, with record data written the zone-file way
//! (`MX 10 mx.example.net`) and sent as typed JSON.

use anyhow::{bail, Context};
use proto::v1::{CreateDnsRecord, ListParams, UpdateDnsRecord};
use serde_json::{json, Value};

use super::{listing, Ctx};
use crate::cli::DnsCmd;

/// `hostplane dns ...`.
pub async fn dns(ctx: &Ctx, cmd: DnsCmd) -> anyhow::Result<()> {
    match cmd {
        DnsCmd::Add(a) => {
            let data = record_data(&a.rtype, &a.data)?;
            let api = ctx.api()?;
            let req = CreateDnsRecord {
                domain: a.domain,
                name: a.name,
                ttl: a.ttl,
                data,
            };
            ctx.out.one(&api.create_dns_record(&req).await?)
        }
        DnsCmd::List(l) => {
            let api = ctx.api()?;
            let params = ListParams {
                domain: l.domain,
                customer: l.customer,
                ..l.list.params()
            };
            ctx.out.list(&listing!(
                api,
                l.list,
                params,
                list_all_dns_records,
                list_dns_records
            ))
        }
        DnsCmd::Show(r) => ctx.out.one(&ctx.api()?.get_dns_record(r.id).await?),
        DnsCmd::Update(u) => {
            let data = match u.data.split_first() {
                Some((rtype, rest)) => Some(record_data(rtype, rest)?),
                None => None,
            };
            if data.is_none() && u.name.is_none() && u.ttl.is_none() {
                bail!(
                    "nothing to change: give --name, --ttl and/or new data such as `A 192.0.2.7`"
                );
            }
            let api = ctx.api()?;
            let req = UpdateDnsRecord {
                name: u.name,
                ttl: u.ttl,
                data,
            };
            ctx.out.one(&api.update_dns_record(u.id, &req).await?)
        }
        DnsCmd::Delete(r) => {
            ctx.api()?.delete_dns_record(r.id).await?;
            ctx.out.deleted("DNS record", &r.id.to_string())
        }
    }
}

fn number<T: std::str::FromStr>(rtype: &str, what: &str, value: &str) -> anyhow::Result<T> {
    value
        .parse()
        .ok()
        .with_context(|| format!("{rtype} {what} must be a number from 0 to 65535 (got `{value}`)"))
}

/// Typed record data (`{"type": "MX", "preference": 10, ...}`) from `TYPE` and its
/// zone-file style values. Only the shape is checked here; the controller validates
/// the values and names the field at fault.
pub fn record_data(rtype: &str, values: &[String]) -> anyhow::Result<Value> {
    let upper = rtype.to_ascii_uppercase();
    let want = |n: usize, usage: &str| -> anyhow::Result<()> {
        if values.len() != n {
            bail!(
                "{upper} takes {n} value(s): {upper} {usage} (got {})",
                values.len()
            );
        }
        Ok(())
    };
    let data = match upper.as_str() {
        "A" | "AAAA" => {
            want(1, "ADDRESS")?;
            json!({ "type": upper, "address": values[0] })
        }
        "CNAME" | "NS" => {
            want(1, "TARGET")?;
            json!({ "type": upper, "target": values[0] })
        }
        "MX" => {
            want(2, "PREFERENCE EXCHANGE, e.g. MX 10 mx.example.net")?;
            let preference: u16 = number("MX", "preference", &values[0])?;
            json!({ "type": "MX", "preference": preference, "exchange": values[1] })
        }
        "TXT" => {
            if values.is_empty() {
                bail!("TXT takes the text, e.g. TXT \"v=spf1 -all\"");
            }
            json!({ "type": "TXT", "text": values.join(" ") })
        }
        "SRV" => {
            want(
                4,
                "PRIORITY WEIGHT PORT TARGET, e.g. SRV 10 5 5060 sip.example.com",
            )?;
            let priority: u16 = number("SRV", "priority", &values[0])?;
            let weight: u16 = number("SRV", "weight", &values[1])?;
            let port: u16 = number("SRV", "port", &values[2])?;
            json!({ "type": "SRV", "priority": priority, "weight": weight, "port": port, "target": values[3] })
        }
        "CAA" => {
            if values.len() < 3 {
                bail!(
                    "CAA takes FLAGS TAG VALUE, e.g. CAA 0 issue letsencrypt.org (got {})",
                    values.len()
                );
            }
            let flags: u8 = values[0].parse().ok().with_context(|| {
                format!(
                    "CAA flags must be a number from 0 to 255 (got `{}`)",
                    values[0]
                )
            })?;
            json!({ "type": "CAA", "flags": flags, "tag": values[1], "value": values[2..].join(" ") })
        }
        _ => bail!("unknown record type `{rtype}`: use A, AAAA, CNAME, MX, TXT, SRV, CAA or NS"),
    };
    Ok(data)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(items: &[&str]) -> Vec<String> {
        items.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn builds_typed_data_for_every_type() {
        assert_eq!(
            record_data("a", &v(&["192.0.2.1"])).unwrap(),
            json!({"type":"A","address":"192.0.2.1"})
        );
        assert_eq!(
            record_data("AAAA", &v(&["2001:db8::1"])).unwrap(),
            json!({"type":"AAAA","address":"2001:db8::1"})
        );
        assert_eq!(
            record_data("cname", &v(&["t.example.net"])).unwrap(),
            json!({"type":"CNAME","target":"t.example.net"})
        );
        assert_eq!(
            record_data("NS", &v(&["ns1.other.net"])).unwrap(),
            json!({"type":"NS","target":"ns1.other.net"})
        );
        assert_eq!(
            record_data("MX", &v(&["10", "mx.example.net"])).unwrap(),
            json!({"type":"MX","preference":10,"exchange":"mx.example.net"})
        );
        assert_eq!(
            record_data("TXT", &v(&["v=spf1 -all"])).unwrap(),
            json!({"type":"TXT","text":"v=spf1 -all"})
        );
        assert_eq!(
            record_data("TXT", &v(&["v=spf1", "-all"])).unwrap(),
            json!({"type":"TXT","text":"v=spf1 -all"})
        );
        assert_eq!(
            record_data("SRV", &v(&["10", "5", "5060", "sip.example.com"])).unwrap(),
            json!({"type":"SRV","priority":10,"weight":5,"port":5060,"target":"sip.example.com"})
        );
        assert_eq!(
            record_data("CAA", &v(&["0", "issue", "letsencrypt.org"])).unwrap(),
            json!({"type":"CAA","flags":0,"tag":"issue","value":"letsencrypt.org"})
        );
    }

    #[test]
    fn explains_wrong_shapes() {
        let err = record_data("MX", &v(&["mx.example.net"]))
            .unwrap_err()
            .to_string();
        assert!(err.contains("MX 10 mx.example.net"), "{err}");
        let err = record_data("MX", &v(&["ten", "mx.example.net"]))
            .unwrap_err()
            .to_string();
        assert!(err.contains("preference"), "{err}");
        let err = record_data("SRV", &v(&["10", "5", "99999", "x.example"]))
            .unwrap_err()
            .to_string();
        assert!(err.contains("port"), "{err}");
        let err = record_data("PTR", &v(&["x"])).unwrap_err().to_string();
        assert!(err.contains("unknown record type"), "{err}");
        assert!(record_data("CAA", &v(&["300", "issue", "x"])).is_err());
        assert!(record_data("A", &v(&[])).is_err());
    }
}
