//! The live picture of the platform (issue 18 point 5): `GET /map` draws an SVG map
//! grouped by country and region, server-rendered, styled only by classes of
//! `static/map.css` (no inline style: the CSP forbids it), and `GET /map/events`
//! keeps it current with server-sent events.
//!
//! - Admins see every server (`GET /v1/map/platform`): its cluster, whether it is
//!   a primary or a secondary (a line joins them), its health coloured (up, suspect,
//!   down, draining, unknown) and what it carries.
//! - Everyone else sees where their own web, mail and DNS are served
//!   (`GET /v1/map/services`) and whether each is healthy: a node per service and
//!   region, never a server's name or address (the API gives none).
//!
//! Live updates: the browser's `EventSource` (`static/map.js`, no polling) follows
//! `/map/events`; that handler follows the API's `GET /v1/map/events` in-process
//! with the session's token, and on each change reads the map again and sends the
//! re-rendered fragment (only when it differs). The stream pauses after the idle
//! timeout of a session (an open map is not a person at the keyboard) and ends when
//! the session's token stops working (signed out).

pub mod layout;
pub mod sse;

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::time::Duration;

use askama::Template;
use axum::body::Body;
use axum::extract::State;
use axum::response::{IntoResponse, Redirect, Response};
use http::{header, HeaderValue, Method, StatusCode};
use tokio::sync::mpsc;

use crate::api::Failure;
use crate::guard::Ctx;
use crate::session::Session;
use crate::views::{self, Nav};
use crate::Panel;
use layout::{fit, Country, Layout, Node, Region};

/// URL of the map's script (the `EventSource`; loaded by every page, acts only on
/// a page with the map).
pub const JS_PATH: &str = "/static/map.js";
/// URL of the map's stylesheet.
pub const CSS_PATH: &str = "/static/map.css";
/// URL of the event stream.
pub const EVENTS_PATH: &str = "/map/events";

const MAP_JS: &str = include_str!("../static/map.js");
const MAP_CSS: &str = include_str!("../static/map.css");

/// Characters of a node's name line (bold, beside the primary's dot).
const NAME_CHARS: usize = 15;
/// Characters of a node's plain lines.
const LINE_CHARS: usize = 21;
/// Characters of a node's status line (bold).
const STATUS_CHARS: usize = 19;

/// Changes arriving this close together are drawn once.
const COALESCE: Duration = Duration::from_millis(100);

/// `GET /static/map.js`.
pub async fn js() -> Response {
    static_file(MAP_JS, "text/javascript; charset=utf-8")
}

/// `GET /static/map.css`.
pub async fn css() -> Response {
    static_file(MAP_CSS, "text/css; charset=utf-8")
}

fn static_file(body: &'static str, mime: &'static str) -> Response {
    let mut res = body.into_response();
    let h = res.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(mime));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    res
}

/// One line of the summary above the map.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tally {
    /// The health class (`h-up` …).
    pub class: String,
    /// What is counted.
    pub label: String,
    /// How many.
    pub count: usize,
}

/// A row of the table under the map (the same facts as text).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    /// The health class.
    pub class: String,
    /// The cells.
    pub cells: Vec<String>,
}

/// The part of the page the live updates replace.
#[derive(Template)]
#[template(path = "map_live.html")]
pub struct MapFragment {
    /// Whether this is the platform (admins) or the services map.
    pub platform: bool,
    /// Counts by health.
    pub tally: Vec<Tally>,
    /// The wide layout.
    pub wide: Layout,
    /// The narrow layout.
    pub narrow: Layout,
    /// Table headings.
    pub head: Vec<&'static str>,
    /// Table rows.
    pub rows: Vec<Row>,
}

impl MapFragment {
    /// Both layouts with their names (`wide`, `narrow`).
    pub fn layouts(&self) -> [(&'static str, &Layout); 2] {
        [("wide", &self.wide), ("narrow", &self.narrow)]
    }
}

/// The map page.
#[derive(Template)]
#[template(path = "map.html")]
pub struct MapPage {
    /// The header.
    pub nav: Option<Nav>,
    /// The platform map (admins) or the services map.
    pub platform: bool,
    /// The rendered live fragment.
    pub fragment: String,
}

/// The class of a server's state on the map: down and suspect win over drained.
fn server_class(health: &str, drained: bool) -> &'static str {
    match (health, drained) {
        ("down", _) => "h-down",
        ("suspect", _) => "h-suspect",
        (_, true) => "h-draining",
        ("up", _) => "h-up",
        _ => "h-unknown",
    }
}

/// The word shown for a class.
fn class_word(class: &str) -> &'static str {
    match class {
        "h-down" => "down",
        "h-suspect" => "suspect",
        "h-draining" => "draining",
        "h-up" => "up",
        "h-degraded" => "degraded",
        _ => "unknown",
    }
}

/// Order of the summary.
const CLASSES: &[&str] = &[
    "h-up",
    "h-degraded",
    "h-suspect",
    "h-draining",
    "h-down",
    "h-unknown",
];

fn plural(n: u64, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// What a server carries, in words.
fn carried(c: &proto::v1::MapCarries) -> String {
    let mut parts = Vec::new();
    if c.sites > 0 {
        parts.push(plural(c.sites, "site", "sites"));
    }
    if c.zones > 0 {
        parts.push(plural(c.zones, "zone", "zones"));
    }
    if c.mailboxes > 0 {
        parts.push(plural(c.mailboxes, "mailbox", "mailboxes"));
    }
    if c.databases > 0 {
        parts.push(plural(c.databases, "database", "databases"));
    }
    if parts.is_empty() {
        "nothing yet".into()
    } else {
        parts.join(", ")
    }
}

fn region_label(region: &str) -> String {
    if region.is_empty() {
        "(no region)".into()
    } else {
        fit(region, 40)
    }
}

/// Group `(country, region, node)` into countries and regions, in key order.
fn group(items: Vec<(String, String, Node)>) -> Vec<Country> {
    let mut by: BTreeMap<String, BTreeMap<String, Vec<Node>>> = BTreeMap::new();
    for (country, region, node) in items {
        by.entry(country)
            .or_default()
            .entry(region)
            .or_default()
            .push(node);
    }
    by.into_iter()
        .map(|(country, regions)| Country {
            label: country,
            regions: regions
                .into_iter()
                .map(|(r, nodes)| Region {
                    label: region_label(&r),
                    nodes,
                })
                .collect(),
        })
        .collect()
}

fn tally(classes: &[&str], noun: (&str, &str)) -> Vec<Tally> {
    CLASSES
        .iter()
        .filter_map(|c| {
            let count = classes.iter().filter(|k| *k == c).count();
            (count > 0).then(|| Tally {
                class: (*c).to_owned(),
                label: format!(
                    "{} {}",
                    if count == 1 { noun.0 } else { noun.1 },
                    class_word(c)
                ),
                count,
            })
        })
        .collect()
}

/// The admins' fragment: every server.
pub fn platform_fragment(view: &proto::v1::PlatformMapView) -> MapFragment {
    let writer = |cluster: &str| {
        view.clusters
            .iter()
            .find(|c| c.name == cluster)
            .and_then(|c| c.mail_writer.clone())
    };
    let ranked = |cluster: &str| view.clusters.iter().any(|c| c.name == cluster && c.ranked);
    let mut classes = Vec::new();
    let mut rows = Vec::new();
    let items = view
        .servers
        .iter()
        .map(|s| {
            let class = server_class(&s.health, s.drained);
            classes.push(class);
            let mut status = class_word(class).to_owned();
            if s.position != "member" {
                status = format!("{} · {status}", s.position);
            }
            if writer(&s.cluster).as_deref() == Some(s.name.as_str()) {
                status = format!("{status} · writer");
            }
            let load = carried(&s.carries);
            let title = format!(
                "{} ({}): {} server of cluster {}, {}{}; {} {}; health {}{}; carries {}",
                s.name,
                s.hostname,
                s.role,
                s.cluster,
                s.position,
                if s.position == "secondary" {
                    format!(" (rank {})", s.rank)
                } else {
                    String::new()
                },
                s.country,
                region_label(&s.region),
                s.health,
                if s.drained { ", drained" } else { "" },
                load
            );
            rows.push(Row {
                class: class.to_owned(),
                cells: vec![
                    s.name.clone(),
                    format!("{} ({})", s.cluster, s.role),
                    s.position.clone(),
                    format!("{} {}", s.country, region_label(&s.region)),
                    class_word(class).to_owned(),
                    load.clone(),
                ],
            });
            let node = Node {
                key: s.name.clone(),
                class: format!("node {class} role-{} pos-{}", s.role, s.position),
                lines: [
                    fit(&s.name, NAME_CHARS),
                    fit(&format!("{} · {}", s.role, s.cluster), LINE_CHARS),
                    fit(&load, LINE_CHARS),
                    fit(&status, STATUS_CHARS),
                ],
                title,
                group: ranked(&s.cluster).then(|| s.cluster.clone()),
                primary: s.position == "primary",
            };
            (s.country.clone(), s.region.clone(), node)
        })
        .collect();
    let countries = group(items);
    MapFragment {
        platform: true,
        tally: tally(&classes, ("server", "servers")),
        wide: layout::layout(&countries, layout::WIDE),
        narrow: layout::layout(&countries, layout::NARROW),
        head: vec![
            "Server", "Cluster", "Position", "Where", "Health", "Carries",
        ],
        rows,
    }
}

fn service_label(service: &str) -> &'static str {
    match service {
        "web" => "Web",
        "mail" => "Mail",
        "dns" => "DNS",
        _ => "Service",
    }
}

/// The customers' fragment: their services by region, no server in sight.
pub fn services_fragment(view: &proto::v1::ServiceMapView) -> MapFragment {
    let mut classes = Vec::new();
    let mut rows = Vec::new();
    let items = view
        .locations
        .iter()
        .map(|l| {
            let class = match l.health.as_str() {
                "up" => "h-up",
                "degraded" => "h-degraded",
                "down" => "h-down",
                "draining" => "h-draining",
                _ => "h-unknown",
            };
            classes.push(class);
            let n = u64::try_from(l.domains.len()).unwrap_or(u64::MAX);
            let first = l.domains.first().cloned().unwrap_or_default();
            let more = if l.domains.len() > 1 {
                format!("{} +{}", fit(&first, LINE_CHARS - 5), l.domains.len() - 1)
            } else {
                fit(&first, LINE_CHARS)
            };
            rows.push(Row {
                class: class.to_owned(),
                cells: vec![
                    service_label(&l.service).to_owned(),
                    format!("{} {}", l.country, region_label(&l.region)),
                    class_word(class).to_owned(),
                    l.domains.join(", "),
                ],
            });
            let node = Node {
                key: format!("{}/{}/{}", l.service, l.country, l.region),
                class: format!("node {class} role-{}", l.service),
                lines: [
                    service_label(&l.service).to_owned(),
                    plural(n, "domain", "domains"),
                    more,
                    class_word(class).to_owned(),
                ],
                title: format!(
                    "{} in {} {}: {}; serves {}",
                    service_label(&l.service),
                    l.country,
                    region_label(&l.region),
                    class_word(class),
                    l.domains.join(", ")
                ),
                group: None,
                primary: false,
            };
            (l.country.clone(), l.region.clone(), node)
        })
        .collect();
    let countries = group(items);
    MapFragment {
        platform: false,
        tally: tally(&classes, ("service", "services")),
        wide: layout::layout(&countries, layout::WIDE),
        narrow: layout::layout(&countries, layout::NARROW),
        head: vec!["Service", "Where", "Health", "Domains"],
        rows,
    }
}

/// Read the map the session may see and render its fragment.
async fn fragment(panel: &Panel, s: &Session, ext: &http::Extensions) -> Result<String, Failure> {
    let frag = if s.kind == "admin" {
        let view: proto::v1::PlatformMapView = panel
            .api
            .call(Method::GET, "/v1/map/platform", Some(&s.token), None, ext)
            .await
            .into_result()?;
        platform_fragment(&view)
    } else {
        let view: proto::v1::ServiceMapView = panel
            .api
            .call(Method::GET, "/v1/map/services", Some(&s.token), None, ext)
            .await
            .into_result()?;
        services_fragment(&view)
    };
    frag.render()
        .map_err(|e| Failure::internal(format!("map template: {e}")))
}

/// `GET /map`.
pub async fn page(State(panel): State<Panel>, ctx: Ctx) -> Response {
    let Some(signed) = ctx.require().cloned() else {
        return Redirect::to("/login").into_response();
    };
    let s = &signed.session;
    match fragment(&panel, s, &ctx.ext).await {
        Ok(fragment) => views::render(
            StatusCode::OK,
            &MapPage {
                nav: Some(Nav::of(s)),
                platform: s.kind == "admin",
                fragment,
            },
        ),
        Err(f) if f.status == StatusCode::UNAUTHORIZED => {
            panel.sessions.remove(&signed.id);
            Redirect::to("/login").into_response()
        }
        Err(f) => views::error_page(f.status, &f.error.message, Some(s)),
    }
}

/// `GET /map/events`: the map's fragment each time it changes (event `map`), then
/// `paused` after the idle timeout or `signed-out` when the token stops working.
/// Not signed in: 401 (an `EventSource` does not retry it).
pub async fn events(State(panel): State<Panel>, ctx: Ctx) -> Response {
    let Some(signed) = ctx.require().cloned() else {
        return (StatusCode::UNAUTHORIZED, "sign in first").into_response();
    };
    let upstream = match panel
        .api
        .open(
            Method::GET,
            "/v1/map/events",
            Some(&signed.session.token),
            &ctx.ext,
        )
        .await
    {
        Ok(body) => body,
        Err(f) => return (f.status, f.error.message).into_response(),
    };
    let (tx, rx) = mpsc::channel::<String>(4);
    tokio::spawn(follow(panel, signed.session, ctx.ext, upstream, tx));
    let stream = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|s| (Ok::<_, Infallible>(s), rx))
    });
    let mut res = Body::from_stream(stream).into_response();
    let h = res.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    res
}

/// Follow the API's events until the browser leaves, the session pauses or ends.
async fn follow(
    panel: Panel,
    session: Session,
    ext: http::Extensions,
    upstream: Body,
    out: mpsc::Sender<String>,
) {
    use futures_util::StreamExt;
    let mut frames = upstream.into_data_stream();
    let mut parser = sse::Parser::default();
    let mut last: Option<String> = None;
    let pause = tokio::time::sleep(crate::session::IDLE_TIMEOUT);
    tokio::pin!(pause);
    loop {
        let events = tokio::select! {
            f = frames.next() => match f {
                Some(Ok(bytes)) => parser.push(&bytes),
                _ => {
                    let _ = out.send(sse::encode("signed-out", "{}")).await;
                    return;
                }
            },
            () = &mut pause => {
                let _ = out.send(sse::encode("paused", "{}")).await;
                return;
            }
            () = out.closed() => return,
        };
        if events.is_empty() {
            // The API's keep-alive: pass one on (it also finds a browser gone).
            if out.send(": keep-alive\n\n".to_owned()).await.is_err() {
                return;
            }
            continue;
        }
        // More changes right behind this one are drawn in the same picture.
        tokio::time::sleep(COALESCE).await;
        let mut ended = false;
        loop {
            match futures_util::FutureExt::now_or_never(frames.next()) {
                Some(Some(Ok(bytes))) => drop(parser.push(&bytes)),
                Some(_) => {
                    ended = true;
                    break;
                }
                None => break,
            }
        }
        match fragment(&panel, &session, &ext).await {
            Ok(html) if last.as_ref() != Some(&html) => {
                if out.send(sse::encode("map", &html)).await.is_err() {
                    return;
                }
                last = Some(html);
            }
            Ok(_) => {}
            Err(f) if f.status == StatusCode::UNAUTHORIZED => {
                let _ = out.send(sse::encode("signed-out", "{}")).await;
                return;
            }
            Err(f) => {
                tracing::warn!(status = %f.status, message = %f.error.message, "map not redrawn")
            }
        }
        if ended {
            let _ = out.send(sse::encode("signed-out", "{}")).await;
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn down_and_suspect_win_over_drained() {
        assert_eq!(server_class("down", true), "h-down");
        assert_eq!(server_class("suspect", true), "h-suspect");
        assert_eq!(server_class("up", true), "h-draining");
        assert_eq!(server_class("up", false), "h-up");
        assert_eq!(server_class("unknown", false), "h-unknown");
    }

    #[test]
    fn carried_in_words() {
        let c = proto::v1::MapCarries {
            sites: 1,
            zones: 0,
            mailboxes: 3,
            databases: 0,
        };
        assert_eq!(carried(&c), "1 site, 3 mailboxes");
        assert_eq!(carried(&proto::v1::MapCarries::default()), "nothing yet");
    }
}
