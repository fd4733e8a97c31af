//! Forms: what a submitted form becomes in an API request body, and the API's
//! validation errors mapped back to the form fields they name. The rules stay the
//! API's; the panel only turns text fields into JSON (a number field that is not a
//! number is the one error it finds itself, since the API would see no field).

use std::collections::BTreeMap;

use serde_json::{json, Map, Value};

use crate::api::Failure;

/// Errors to show on one form, and the values to put back into its fields.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FormErrors {
    fields: BTreeMap<String, String>,
    /// An error that names no field of the form (shown above it).
    pub general: Option<String>,
    values: BTreeMap<String, String>,
}

impl FormErrors {
    /// No errors; the fields empty.
    pub fn none() -> Self {
        Self::default()
    }

    /// The error shown at `field`, if any.
    pub fn get(&self, field: &str) -> Option<&str> {
        self.fields.get(field).map(String::as_str)
    }

    /// The value to fill `field` with ("" when none).
    pub fn value(&self, field: &str) -> &str {
        self.values.get(field).map_or("", String::as_str)
    }

    /// True when there is something to show.
    pub fn any(&self) -> bool {
        self.general.is_some() || !self.fields.is_empty()
    }

    /// Put an error at `field`.
    pub fn set(&mut self, field: &str, message: impl Into<String>) {
        self.fields.insert(field.to_owned(), message.into());
    }

    /// Keep the submitted values (never passwords or private keys) to fill the
    /// form again.
    pub fn keep(mut self, values: &BTreeMap<String, String>) -> Self {
        for (k, v) in values {
            if k != "csrf" && !k.contains("password") && k != "key_pem" {
                self.values.insert(k.clone(), v.clone());
            }
        }
        self
    }

    /// The API's error placed at the form field `map` gives for the API's field
    /// name, or above the form.
    pub fn from_failure(f: &Failure, map: fn(&str) -> Option<&'static str>) -> Self {
        let mut e = Self::default();
        match f.error.field.as_deref().and_then(map) {
            Some(field) => e.set(field, f.error.message.clone()),
            None => e.general = Some(f.error.message.clone()),
        }
        e
    }
}

/// A form's fields by name (the last value of each).
pub type Fields = BTreeMap<String, String>;

fn text(fields: &Fields, name: &str) -> String {
    fields
        .get(name)
        .map(|s| s.trim().to_owned())
        .unwrap_or_default()
}

/// A number field: absent or empty is `None`; not a number is an error at it.
fn number(fields: &Fields, name: &str, errors: &mut FormErrors) -> Option<u64> {
    let v = text(fields, name);
    if v.is_empty() {
        return None;
    }
    match v.parse::<u64>() {
        Ok(n) => Some(n),
        Err(_) => {
            errors.set(name, "a whole number, like 100");
            None
        }
    }
}

/// `POST /v1/domains` from the add-domain form (fields `name`, `customer`).
pub fn domain_body(fields: &Fields) -> Value {
    let mut body = json!({ "name": text(fields, "name") });
    let customer = text(fields, "customer");
    if !customer.is_empty() {
        body["customer"] = json!(customer);
    }
    body
}

/// The add-domain form's field for an API field.
pub fn domain_field(api: &str) -> Option<&'static str> {
    match api {
        "name" => Some("name"),
        "customer" => Some("customer"),
        _ => None,
    }
}

/// `POST /v1/mailboxes` from the add-mailbox form of `domain` (fields `local`,
/// `password`, `quota_mb`, `display_name`).
pub fn mailbox_body(domain: &str, fields: &Fields) -> Result<Value, FormErrors> {
    let mut errors = FormErrors::none();
    let mut body = Map::new();
    body.insert(
        "address".into(),
        json!(format!("{}@{domain}", text(fields, "local"))),
    );
    let password = fields.get("password").cloned().unwrap_or_default();
    if !password.is_empty() {
        body.insert("password".into(), json!(password));
    }
    if let Some(q) = number(fields, "quota_mb", &mut errors) {
        body.insert("quota_mb".into(), json!(q));
    }
    let display = text(fields, "display_name");
    if !display.is_empty() {
        body.insert("display_name".into(), json!(display));
    }
    if errors.any() {
        return Err(errors);
    }
    Ok(Value::Object(body))
}

/// The add-mailbox form's field for an API field.
pub fn mailbox_field(api: &str) -> Option<&'static str> {
    match api {
        "address" => Some("local"),
        "password" => Some("password"),
        "quota_mb" => Some("quota_mb"),
        "display_name" => Some("display_name"),
        _ => None,
    }
}

/// The record types the add-record form offers, with the data field its `value`
/// fills.
pub const RECORD_TYPES: &[(&str, &str)] = &[
    ("A", "address"),
    ("AAAA", "address"),
    ("CNAME", "target"),
    ("MX", "exchange"),
    ("TXT", "text"),
    ("NS", "target"),
];

/// `POST /v1/dns-records` from the add-record form of `domain` (fields `name`,
/// `type`, `value`, `priority` for MX, `ttl`).
pub fn record_body(domain: &str, fields: &Fields) -> Result<Value, FormErrors> {
    let mut errors = FormErrors::none();
    let rtype = text(fields, "type");
    let mut data = Map::new();
    data.insert("type".into(), json!(rtype));
    match RECORD_TYPES.iter().find(|(t, _)| *t == rtype) {
        Some((_, key)) => {
            data.insert((*key).into(), json!(text(fields, "value")));
        }
        None => errors.set("type", "choose one of the listed types"),
    }
    if rtype == "MX" {
        match number(fields, "priority", &mut errors) {
            Some(p) => {
                data.insert("preference".into(), json!(p));
            }
            None if !errors.any() => errors.set("priority", "MX records need a priority"),
            None => {}
        }
    }
    let mut body = json!({
        "domain": domain,
        "name": text(fields, "name"),
        "data": Value::Object(data),
    });
    if let Some(t) = number(fields, "ttl", &mut errors) {
        body["ttl"] = json!(t);
    }
    if errors.any() {
        return Err(errors);
    }
    Ok(body)
}

/// The add-record form's field for an API field.
pub fn record_field(api: &str) -> Option<&'static str> {
    match api {
        "name" => Some("name"),
        "ttl" => Some("ttl"),
        "data.type" => Some("type"),
        "data.preference" => Some("priority"),
        // `data` as a whole: the value did not parse for the type (a bad address).
        "data" | "data.address" | "data.target" | "data.exchange" | "data.text" => Some("value"),
        _ => None,
    }
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
    fn record_forms_become_typed_data() {
        let b = record_body(
            "example.com",
            &fields(&[
                ("name", "@"),
                ("type", "MX"),
                ("value", "mx.example.net"),
                ("priority", "10"),
                ("ttl", ""),
            ]),
        )
        .unwrap_or_default();
        assert_eq!(
            b,
            json!({"domain": "example.com", "name": "@",
                   "data": {"type": "MX", "exchange": "mx.example.net", "preference": 10}})
        );
        let e = record_body(
            "example.com",
            &fields(&[("type", "MX"), ("priority", "ten")]),
        )
        .unwrap_err();
        assert_eq!(e.get("priority"), Some("a whole number, like 100"));
        let e = record_body("example.com", &fields(&[("type", "LOC")])).unwrap_err();
        assert!(e.get("type").is_some());
    }

    #[test]
    fn api_errors_land_at_their_field() {
        let f = Failure {
            status: http::StatusCode::UNPROCESSABLE_ENTITY,
            error: proto::v1::ErrorBody {
                error: "invalid".into(),
                message: "not an IPv4 address".into(),
                field: Some("data.address".into()),
                rule: Some("ipv4".into()),
            },
        };
        let e = FormErrors::from_failure(&f, record_field);
        assert_eq!(e.get("value"), Some("not an IPv4 address"));
        assert_eq!(e.general, None);
        let e = FormErrors::from_failure(&f, domain_field);
        assert_eq!(e.general.as_deref(), Some("not an IPv4 address"));
    }

    #[test]
    fn kept_values_never_include_passwords() {
        let e = FormErrors::none().keep(&fields(&[
            ("local", "info"),
            ("password", "secret-secret"),
            ("csrf", "x"),
        ]));
        assert_eq!(e.value("local"), "info");
        assert_eq!(e.value("password"), "");
        assert_eq!(e.value("csrf"), "");
    }
}
