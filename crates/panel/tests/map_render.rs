//! The map's fragment as rendered (askama): classes, never inline styles (the CSP
//! refuses them); the platform map marks primaries and links them to secondaries;
//! the services map shows regions and domains only.

use askama::Template;
use proto::v1::{
    MapCarries, MapClusterView, MapServerView, PlatformMapView, ServiceLocationView, ServiceMapView,
};

fn server(
    name: &str,
    cluster: &str,
    role: &str,
    rank: u16,
    country: &str,
    health: &str,
) -> MapServerView {
    MapServerView {
        name: name.into(),
        role: role.into(),
        cluster: cluster.into(),
        rank,
        position: match (role, rank) {
            ("dns" | "mail", 0) => "primary",
            ("dns" | "mail", _) => "secondary",
            _ => "member",
        }
        .into(),
        country: country.into(),
        region: if country == "DE" { "fra" } else { "lon" }.into(),
        hostname: format!("{name}.hosting.example"),
        health: health.into(),
        drained: false,
        carries: MapCarries {
            sites: 3,
            ..MapCarries::default()
        },
    }
}

#[test]
fn platform_map_fragment() -> Result<(), askama::Error> {
    let view = PlatformMapView {
        clusters: vec![
            MapClusterView {
                name: "dns-a".into(),
                role: "dns".into(),
                ranked: true,
                mail_writer: None,
            },
            MapClusterView {
                name: "web-a".into(),
                role: "web".into(),
                ranked: false,
                mail_writer: None,
            },
        ],
        servers: vec![
            server("ns1", "dns-a", "dns", 0, "GB", "up"),
            server("ns2", "dns-a", "dns", 1, "DE", "suspect"),
            server("web-1", "web-a", "web", 0, "GB", "down"),
            server("web-2<x>", "web-a", "web", 1, "DE", "up"),
        ],
    };
    let html = panel::map::platform_fragment(&view).render()?;
    assert!(!html.contains("style="), "{html}");
    assert!(html.contains("data-node=\"web-1\""));
    assert!(html.contains("class=\"node h-down role-web pos-member\""));
    assert!(html.contains("class=\"node h-up role-dns pos-primary\""));
    assert!(html.contains("class=\"link\" data-group=\"dns-a\""));
    assert!(html.contains("web-2&#60;x&#62;") || html.contains("web-2&lt;x&gt;"));
    assert!(html.contains(">3 sites<"));
    // Both layouts, the wide and the narrow one.
    assert!(html.contains("id=\"map-wide\"") && html.contains("id=\"map-narrow\""));
    Ok(())
}

#[test]
fn services_map_fragment() -> Result<(), askama::Error> {
    let view = ServiceMapView {
        locations: vec![
            ServiceLocationView {
                service: "web".into(),
                country: "DE".into(),
                region: "fra".into(),
                health: "degraded".into(),
                domains: vec!["alice-shop.com".into(), "alice-two.com".into()],
            },
            ServiceLocationView {
                service: "dns".into(),
                country: "GB".into(),
                region: String::new(),
                health: "down".into(),
                domains: vec!["alice-shop.com".into()],
            },
        ],
    };
    let html = panel::map::services_fragment(&view).render()?;
    assert!(!html.contains("style="), "{html}");
    assert!(html.contains("data-node=\"web/DE/fra\""));
    assert!(html.contains("class=\"node h-degraded role-web\""));
    assert!(html.contains("class=\"node h-down role-dns\""));
    assert!(html.contains("(no region)"));
    assert!(html.contains("2 domains"));
    assert!(!html.contains("class=\"link\""));
    Ok(())
}
