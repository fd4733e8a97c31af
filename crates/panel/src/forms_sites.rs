//! The sites pages' forms: what each becomes in an API request body, and the
//! API's field names mapped back to the form's. As in [`crate::forms`], the rules
//! stay the API's; the panel only turns text into JSON.

use std::collections::BTreeMap;

use serde_json::{json, Map, Value};

use crate::forms::{Fields, FormErrors};

fn text(fields: &Fields, name: &str) -> String {
    fields
        .get(name)
        .map(|s| s.trim().to_owned())
        .unwrap_or_default()
}

fn checked(fields: &Fields, name: &str) -> bool {
    fields.get(name).is_some_and(|v| !v.is_empty())
}

/// Host names typed one a line, or separated by spaces or commas.
pub fn name_list(s: &str) -> Vec<String> {
    s.split(|c: char| c.is_whitespace() || c == ',')
        .filter(|n| !n.is_empty())
        .map(str::to_owned)
        .collect()
}

/// `POST /v1/sites` from the add-site form (fields `domain`, `mode`, `php`,
/// `https_redirect`).
pub fn site_body(fields: &Fields) -> Value {
    let mut body = json!({
        "domain": text(fields, "domain"),
        "php": checked(fields, "php"),
        "https_redirect": checked(fields, "https_redirect"),
    });
    let mode = text(fields, "mode");
    if !mode.is_empty() {
        body["mode"] = json!(mode);
    }
    body
}

/// The add-site form's field for an API field.
pub fn site_field(api: &str) -> Option<&'static str> {
    match api {
        "domain" => Some("domain"),
        "mode" => Some("mode"),
        _ => None,
    }
}

/// `php.ini` values typed one `key = value` a line; a line without `=` is an
/// error at the field.
pub fn php_ini(s: &str) -> Result<BTreeMap<String, String>, String> {
    let mut out = BTreeMap::new();
    for (i, line) in s.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with(';') || line.starts_with('#') {
            continue;
        }
        let Some((k, v)) = line.split_once('=') else {
            return Err(format!("line {}: write `key = value`", i + 1));
        };
        out.insert(k.trim().to_owned(), v.trim().to_owned());
    }
    Ok(out)
}

/// `PATCH /v1/sites/{domain}` from the settings form, which shows the whole
/// state: unchecked boxes are `false`, `php.ini` keys no longer listed are unset
/// (`current` is what the site has now).
pub fn settings_body(
    fields: &Fields,
    current: &BTreeMap<String, String>,
) -> Result<Value, FormErrors> {
    let mut errors = FormErrors::none();
    let mut body = Map::new();
    body.insert("mode".into(), json!(text(fields, "mode")));
    body.insert("php".into(), json!(checked(fields, "php")));
    body.insert(
        "https_redirect".into(),
        json!(checked(fields, "https_redirect")),
    );
    body.insert("hsts".into(), json!(checked(fields, "hsts")));
    body.insert("aliases".into(), json!(name_list(&text(fields, "aliases"))));
    let docroot = text(fields, "docroot");
    body.insert(
        "docroot".into(),
        json!(if docroot.is_empty() { "/" } else { &docroot }),
    );
    let version = text(fields, "php_version");
    body.insert(
        "php_version".into(),
        json!(if version.is_empty() {
            "default"
        } else {
            &version
        }),
    );
    match php_ini(fields.get("php_ini").map_or("", String::as_str)) {
        Ok(set) => {
            let unset: Vec<&String> = current.keys().filter(|k| !set.contains_key(*k)).collect();
            if !unset.is_empty() {
                body.insert("php_unset".into(), json!(unset));
            }
            if !set.is_empty() {
                body.insert("php_set".into(), json!(set));
            }
        }
        Err(e) => errors.set("php_ini", e),
    }
    if errors.any() {
        return Err(errors);
    }
    Ok(Value::Object(body))
}

/// The settings form's field for an API field.
pub fn settings_field(api: &str) -> Option<&'static str> {
    match api {
        "mode" => Some("mode"),
        "php" => Some("php"),
        "https_redirect" => Some("https_redirect"),
        "hsts" => Some("hsts"),
        "docroot" => Some("docroot"),
        "php_version" => Some("php_version"),
        a if a == "aliases" || a.starts_with("aliases[") => Some("aliases"),
        a if a.starts_with("php_set") || a.starts_with("php_unset") => Some("php_ini"),
        _ => None,
    }
}

/// `PUT /v1/sites/{domain}/certificate` from the upload form (`cert_pem`,
/// `key_pem`).
pub fn certificate_body(fields: &Fields) -> Value {
    json!({
        "cert_pem": fields.get("cert_pem").cloned().unwrap_or_default(),
        "key_pem": fields.get("key_pem").cloned().unwrap_or_default(),
    })
}

/// The certificate form's field for an API field.
pub fn certificate_field(api: &str) -> Option<&'static str> {
    match api {
        "cert_pem" => Some("cert_pem"),
        "key_pem" => Some("key_pem"),
        _ => None,
    }
}

/// `POST /v1/sites/{domain}/cron` from the add-job form.
pub fn cron_body(fields: &Fields) -> Value {
    json!({
        "schedule": text(fields, "schedule"),
        "command": text(fields, "command"),
    })
}

/// The cron form's field for an API field.
pub fn cron_field(api: &str) -> Option<&'static str> {
    match api {
        "schedule" => Some("schedule"),
        "command" => Some("command"),
        _ => None,
    }
}

/// The release form's field for an API field (the archive is the body).
pub fn release_field(api: &str) -> Option<&'static str> {
    match api {
        "body" | "deployment_disk_mb" => Some("archive"),
        _ => None,
    }
}

/// `POST /v1/sites/{domain}/rollback` from a kept deployment's button.
pub fn rollback_body(fields: &Fields) -> Value {
    json!({ "id": text(fields, "id") })
}

/// No form field: the error goes above the form.
pub fn no_field(_api: &str) -> Option<&'static str> {
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(pairs: &[(&str, &str)]) -> Fields {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn settings_show_the_whole_state() {
        let current: BTreeMap<String, String> =
            [("memory_limit".to_owned(), "128M".to_owned())].into();
        let b = settings_body(
            &fields(&[
                ("mode", "single"),
                ("php", "on"),
                (
                    "aliases",
                    "www.example.com, shop.example.com\nold.example.com",
                ),
                ("docroot", ""),
                ("php_version", ""),
                ("php_ini", "upload_max_filesize = 8M\n; a comment\n"),
            ]),
            &current,
        )
        .unwrap_or_default();
        assert_eq!(
            b,
            json!({"mode": "single", "php": true, "https_redirect": false, "hsts": false,
                   "aliases": ["www.example.com", "shop.example.com", "old.example.com"],
                   "docroot": "/", "php_version": "default",
                   "php_set": {"upload_max_filesize": "8M"},
                   "php_unset": ["memory_limit"]})
        );
        let e = settings_body(&fields(&[("php_ini", "memory_limit 128M")]), &current)
            .expect_err("no =");
        assert_eq!(e.get("php_ini"), Some("line 1: write `key = value`"));
    }

    #[test]
    fn api_fields_map_to_the_settings_form() {
        assert_eq!(settings_field("aliases[3]"), Some("aliases"));
        assert_eq!(settings_field("php_set.memory_limit"), Some("php_ini"));
        assert_eq!(settings_field("php_unset[0]"), Some("php_ini"));
        assert_eq!(settings_field("keep"), None);
        assert_eq!(release_field("body"), Some("archive"));
    }
}
