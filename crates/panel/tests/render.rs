//! Snapshots of rendered pages (askama): the sign-in form with an error, and a
//! domain page with an API error placed at its field and a generated password.

use askama::Template;
use panel::forms::{self, FormErrors};
use panel::views::{DomainPage, LoginPage, Nav, RecordRow};

fn nav() -> Option<Nav> {
    Some(Nav {
        account: "alice".into(),
        kind: "customer".into(),
        csrf: "CSRF-TOKEN".into(),
        impersonator: None,
    })
}

#[test]
fn login_page() -> Result<(), askama::Error> {
    let mut errors = FormErrors::none().keep(
        &[("account".to_owned(), "alice<script>".to_owned())]
            .into_iter()
            .collect(),
    );
    errors.general = Some("wrong account name or password".into());
    let html = LoginPage {
        nav: None,
        csrf: "LOGIN-CSRF".into(),
        errors,
    }
    .render()?;
    // Escaped, never markup.
    assert!(html.contains("alice&#60;script&#62;") || html.contains("alice&lt;script&gt;"));
    insta::assert_snapshot!(html);
    Ok(())
}

#[test]
fn domain_page_with_field_error() -> Result<(), askama::Error> {
    let failure = panel::api::Failure {
        status: http::StatusCode::UNPROCESSABLE_ENTITY,
        error: proto::v1::ErrorBody {
            error: "invalid".into(),
            message: "`300.1.2.3` is not an IPv4 address".into(),
            field: Some("data.address".into()),
            rule: Some("ipv4".into()),
        },
    };
    let record_errors = FormErrors::from_failure(&failure, forms::record_field).keep(
        &[
            ("name".to_owned(), "www".to_owned()),
            ("type".to_owned(), "A".to_owned()),
            ("value".to_owned(), "300.1.2.3".to_owned()),
        ]
        .into_iter()
        .collect(),
    );
    let record = proto::v1::DnsRecordView {
        id: 7,
        domain: "example.com".into(),
        name: "@".into(),
        ttl: None,
        rtype: "MX".into(),
        data: serde_json::json!({"type": "MX", "preference": 10, "exchange": "mx.example.net"}),
        created_at: "2026-01-01T00:00:00Z".into(),
    };
    let html = DomainPage {
        nav: nav(),
        domain: proto::v1::DomainView {
            name: "example.com".into(),
            unicode: "example.com".into(),
            customer: "alice".into(),
            placements: [
                ("web".to_owned(), "web-1".to_owned()),
                ("dns".to_owned(), "dns-1".to_owned()),
            ]
            .into_iter()
            .collect(),
            created_at: "2026-01-01T00:00:00Z".into(),
        },
        mailboxes: vec![proto::v1::MailboxView {
            address: "info@example.com".into(),
            domain: "example.com".into(),
            customer: "alice".into(),
            quota_mb: 1024,
            display_name: "Info".into(),
            enabled: true,
            created_at: "2026-01-01T00:00:00Z".into(),
        }],
        records: vec![RecordRow::of(&record)],
        mailbox_errors: FormErrors::none(),
        record_errors,
        generated: Some(("info@example.com".into(), "generated-pw".into())),
        record_types: forms::RECORD_TYPES.iter().map(|(t, _)| *t).collect(),
    }
    .render()?;
    assert!(html.contains("id=\"rr-value-error\""));
    insta::assert_snapshot!(html);
    Ok(())
}
