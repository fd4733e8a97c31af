//! Where every box of the map goes: countries stacked top to bottom, each country's
//! regions packed left to right in rows (wrapping), each region's nodes in a grid.
//! Pure, over a width chosen by the caller: the page lays the same map out twice,
//! wide for desktops and narrow for phones, and the stylesheet shows one.
//! Links join a ranked cluster's primary to each of its secondaries.

/// Width and height of one node.
pub const NODE_W: u32 = 150;
/// Height of one node (four lines of text).
pub const NODE_H: u32 = 78;
/// Space between nodes and around them.
pub const GAP: u32 = 10;
/// Height of a region's label band.
pub const REGION_LABEL: u32 = 22;
/// Height of a country's label band.
pub const COUNTRY_LABEL: u32 = 28;
/// Padding inside a country box.
pub const PAD: u32 = 10;
/// The wide layout's width (desktop).
pub const WIDE: u32 = 980;
/// The narrow layout's width (phones).
pub const NARROW: u32 = 360;

/// One thing drawn as a node: a server (admins) or a service in a region
/// (customers).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    /// Stable key (`data-node`): the server's name, or the service and region.
    pub key: String,
    /// CSS classes (health, role, position).
    pub class: String,
    /// The text lines shown (each already short enough).
    pub lines: [String; 4],
    /// The tooltip (`<title>`), the whole story.
    pub title: String,
    /// A ranked cluster's name (links join its primary to its secondaries).
    pub group: Option<String>,
    /// The primary of its group.
    pub primary: bool,
}

/// One region of a country with its nodes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Region {
    /// Label shown.
    pub label: String,
    /// Its nodes, in order.
    pub nodes: Vec<Node>,
}

/// One country with its regions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Country {
    /// Label shown.
    pub label: String,
    /// Its regions, in order.
    pub regions: Vec<Region>,
}

/// A rectangle with a label.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    /// Left.
    pub x: u32,
    /// Top.
    pub y: u32,
    /// Width.
    pub w: u32,
    /// Height.
    pub h: u32,
    /// Label (drawn at the top left).
    pub label: String,
}

/// A node placed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Placed {
    /// Left.
    pub x: u32,
    /// Top.
    pub y: u32,
    /// The node.
    pub node: Node,
}

impl Placed {
    /// The x of the text lines.
    pub fn text_x(&self) -> u32 {
        self.x + 10
    }

    /// The baseline of text line `i` (0-based).
    pub fn line_y(&self, i: u32) -> u32 {
        self.y + 19 + 17 * i
    }

    /// Right edge of the node less a margin (the position badge).
    pub fn badge_x(&self) -> u32 {
        self.x + NODE_W - 14
    }
}

/// A link from a primary to a secondary: an SVG path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    /// The path's `d`.
    pub d: String,
    /// The group (cluster) it belongs to.
    pub group: String,
}

/// The laid-out map.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layout {
    /// Width of the view box.
    pub width: u32,
    /// Height of the view box.
    pub height: u32,
    /// Country boxes.
    pub countries: Vec<Frame>,
    /// Region boxes.
    pub regions: Vec<Frame>,
    /// Nodes.
    pub nodes: Vec<Placed>,
    /// Links, drawn under the nodes.
    pub links: Vec<Link>,
}

/// Columns of nodes that fit in a country box of a layout `width` wide.
pub fn max_columns(width: u32) -> u32 {
    ((width.saturating_sub(2 * PAD + GAP)) / (NODE_W + GAP)).max(1)
}

/// Lay `countries` out `width` wide (at least one node column always fits:
/// a narrower width is widened).
pub fn layout(countries: &[Country], width: u32) -> Layout {
    let cols = max_columns(width);
    let width = width.max(2 * PAD + GAP + cols * (NODE_W + GAP));
    let mut out = Layout {
        width,
        height: 0,
        countries: Vec::new(),
        regions: Vec::new(),
        nodes: Vec::new(),
        links: Vec::new(),
    };
    let mut y = GAP;
    for c in countries {
        let top = y;
        // Shelf packing of the regions inside [PAD, width - PAD].
        let mut x = PAD;
        let mut row_top = top + COUNTRY_LABEL;
        let mut row_h = 0;
        for r in c.regions.iter().filter(|r| !r.nodes.is_empty()) {
            let n = u32::try_from(r.nodes.len()).unwrap_or(u32::MAX);
            let rcols = n.min(cols);
            let rows = n.div_ceil(rcols);
            let rw = GAP + rcols * (NODE_W + GAP);
            let rh = REGION_LABEL + rows * (NODE_H + GAP);
            if x > PAD && x + rw > width - PAD {
                x = PAD;
                row_top += row_h + GAP;
                row_h = 0;
            }
            out.regions.push(Frame {
                x,
                y: row_top,
                w: rw,
                h: rh,
                label: r.label.clone(),
            });
            for (i, node) in r.nodes.iter().enumerate() {
                let i = u32::try_from(i).unwrap_or(u32::MAX);
                out.nodes.push(Placed {
                    x: x + GAP + (i % rcols) * (NODE_W + GAP),
                    y: row_top + REGION_LABEL + (i / rcols) * (NODE_H + GAP),
                    node: node.clone(),
                });
            }
            x += rw + GAP;
            row_h = row_h.max(rh);
        }
        let bottom = row_top + row_h + PAD;
        out.countries.push(Frame {
            x: 0,
            y: top,
            w: width,
            h: bottom - top,
            label: c.label.clone(),
        });
        y = bottom + GAP;
    }
    out.height = y.max(GAP * 2);
    out.links = links(&out.nodes);
    out
}

/// A curve from each group's primary to each other node of the group.
fn links(nodes: &[Placed]) -> Vec<Link> {
    let mut out = Vec::new();
    for p in nodes.iter().filter(|p| p.node.primary) {
        let Some(group) = &p.node.group else { continue };
        let (x1, y1) = (p.x + NODE_W / 2, p.y + NODE_H / 2);
        for s in nodes
            .iter()
            .filter(|s| !s.node.primary && s.node.group.as_ref() == Some(group))
        {
            let (x2, y2) = (s.x + NODE_W / 2, s.y + NODE_H / 2);
            // Bow the curve sideways so links between nodes of one row stay visible.
            let (mx, my) = ((x1 + x2) / 2, (y1 + y2) / 2);
            let bow = 40;
            out.push(Link {
                d: format!(
                    "M{x1} {y1} Q{} {} {x2} {y2}",
                    mx + bow,
                    my.saturating_sub(bow)
                ),
                group: group.clone(),
            });
        }
    }
    out
}

/// `s` cut to at most `max` characters, with an ellipsis when cut.
pub fn fit(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_owned();
    }
    let mut out: String = s.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn node(key: &str, group: Option<&str>, primary: bool) -> Node {
        Node {
            key: key.into(),
            class: "node".into(),
            lines: Default::default(),
            title: key.into(),
            group: group.map(Into::into),
            primary,
        }
    }

    fn overlaps(a: (u32, u32, u32, u32), b: (u32, u32, u32, u32)) -> bool {
        a.0 < b.0 + b.2 && b.0 < a.0 + a.2 && a.1 < b.1 + b.3 && b.1 < a.1 + a.3
    }

    #[test]
    fn a_primary_is_linked_to_its_secondaries() {
        let map = vec![
            Country {
                label: "DE".into(),
                regions: vec![Region {
                    label: "fra".into(),
                    nodes: vec![node("ns1", Some("dns-a"), true), node("web-1", None, false)],
                }],
            },
            Country {
                label: "GB".into(),
                regions: vec![Region {
                    label: "lon".into(),
                    nodes: vec![node("ns2", Some("dns-a"), false)],
                }],
            },
        ];
        let l = layout(&map, WIDE);
        assert_eq!(l.links.len(), 1);
        assert_eq!(l.countries.len(), 2);
        assert_eq!(l.nodes.len(), 3);
        assert!(l.countries[1].y > l.countries[0].y + l.countries[0].h - 1);
        assert_eq!(fit("abcdef", 4), "abc…");
        assert_eq!(fit("abc", 4), "abc");
    }

    proptest! {
        /// Whatever the map, at either width: every node inside its region, every
        /// region inside its country, every box inside the view box, no two nodes
        /// or regions overlapping.
        #[test]
        fn boxes_nest_and_never_overlap(
            sizes in prop::collection::vec(prop::collection::vec(0usize..9, 0..5), 0..5),
            width in prop::sample::select(vec![NARROW, WIDE, 100, 640]),
        ) {
            let mut n = 0;
            let map: Vec<Country> = sizes.iter().enumerate().map(|(ci, regions)| Country {
                label: format!("C{ci}"),
                regions: regions.iter().enumerate().map(|(ri, k)| Region {
                    label: format!("r{ri}"),
                    nodes: (0..*k).map(|_| { n += 1; node(&format!("n{n}"), None, false) }).collect(),
                }).collect(),
            }).collect();
            let l = layout(&map, width);
            prop_assert_eq!(l.nodes.len(), n);
            let inside = |a: (u32, u32, u32, u32), b: (u32, u32, u32, u32)| {
                a.0 >= b.0 && a.1 >= b.1 && a.0 + a.2 <= b.0 + b.2 && a.1 + a.3 <= b.1 + b.3
            };
            let view = (0, 0, l.width, l.height);
            let rect = |f: &Frame| (f.x, f.y, f.w, f.h);
            for c in &l.countries { prop_assert!(inside(rect(c), view)); }
            for r in &l.regions {
                prop_assert!(l.countries.iter().any(|c| inside(rect(r), rect(c))));
            }
            for (i, a) in l.nodes.iter().enumerate() {
                let ra = (a.x, a.y, NODE_W, NODE_H);
                prop_assert!(l.regions.iter().any(|r| inside(ra, rect(r))));
                for b in &l.nodes[i + 1..] {
                    prop_assert!(!overlaps(ra, (b.x, b.y, NODE_W, NODE_H)));
                }
            }
            for (i, a) in l.regions.iter().enumerate() {
                for b in &l.regions[i + 1..] {
                    prop_assert!(!overlaps(rect(a), rect(b)));
                }
            }
        }
    }
}
