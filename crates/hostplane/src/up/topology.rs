//! The demo topology of `hostplane up` (DESIGN.md, "Ports and addresses in `up`"):
//! which clusters and servers exist, their addresses, countries and ports.

use std::net::Ipv4Addr;

/// One cluster `up` makes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedCluster {
    /// Cluster name.
    pub name: &'static str,
    /// Role of its servers.
    pub role: &'static str,
    /// Made the default cluster of its role when `up` creates it.
    pub default: bool,
}

/// One server `up` runs an agent for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedServer {
    /// Server name, e.g. `web-1`.
    pub name: String,
    /// Cluster name.
    pub cluster: &'static str,
    /// Role (the cluster's).
    pub role: &'static str,
    /// Rank inside the cluster (0 = DNS/mail primary).
    pub rank: u16,
    /// ISO country code.
    pub country: &'static str,
    /// Free-form region.
    pub region: &'static str,
    /// Its own loopback address.
    pub ip: Ipv4Addr,
}

impl PlannedServer {
    /// Public host name, e.g. `web-1.hostplane.test`.
    pub fn hostname(&self) -> String {
        format!("{}.hostplane.test", self.name)
    }
}

/// The platform's own domain: every server's host name is under it, and its
/// zone (served by the DNS cluster like any customer's) publishes them.
pub const PLATFORM_DOMAIN: &str = "hostplane.test";

/// The customer owning [`PLATFORM_DOMAIN`] (an admin adds names in a platform
/// zone; the domain still needs an owning customer).
pub const PLATFORM_CUSTOMER: &str = "platform";

/// The mail cluster's client-facing host name: clients use
/// `imap.mail.hostplane.test`, `pop.` and `smtp.`, which follow the writer.
pub const MAIL_HOSTNAME: &str = "mail.hostplane.test";

/// The clusters, in creation order (the first of each role is its default).
pub fn clusters() -> Vec<PlannedCluster> {
    let c = |name, role, default| PlannedCluster {
        name,
        role,
        default,
    };
    vec![
        c("web-eu", "web", true),
        c("web-us", "web", false),
        c("dns-main", "dns", true),
        c("mail-main", "mail", true),
        c("files-main", "files", true),
        c("db-main", "db", true),
    ]
}

/// The servers: `web` servers in web-eu (web-1 .. web-N at `.11` ..), one in web-us
/// (web-N+1, the next address), ns1 `.21` (GB, primary) and ns2 `.22` (US), mx1 `.31`
/// (GB, primary) and mx2 `.32` (US), files-1 `.41`, db-1 `.51`; addresses under
/// `base` (the first three octets). `web` is 1 to 8.
pub fn servers(web: u8, base: [u8; 3]) -> Vec<PlannedServer> {
    let web = web.clamp(1, 8);
    let ip = |host: u8| Ipv4Addr::new(base[0], base[1], base[2], host);
    let mut out = Vec::new();
    for i in 0..web {
        out.push(PlannedServer {
            name: format!("web-{}", i + 1),
            cluster: "web-eu",
            role: "web",
            rank: u16::from(i),
            country: "GB",
            region: "eu-west",
            ip: ip(11 + i),
        });
    }
    out.push(PlannedServer {
        name: format!("web-{}", web + 1),
        cluster: "web-us",
        role: "web",
        rank: 0,
        country: "US",
        region: "us-east",
        ip: ip(11 + web),
    });
    let mut one = |name: &str, cluster, role, rank, country, region, host| {
        out.push(PlannedServer {
            name: name.to_owned(),
            cluster,
            role,
            rank,
            country,
            region,
            ip: ip(host),
        })
    };
    one("ns1", "dns-main", "dns", 0, "GB", "eu-west", 21);
    one("ns2", "dns-main", "dns", 1, "US", "us-east", 22);
    one("mx1", "mail-main", "mail", 0, "GB", "eu-west", 31);
    one("mx2", "mail-main", "mail", 1, "US", "us-east", 32);
    one("files-1", "files-main", "files", 0, "GB", "eu-west", 41);
    one("db-1", "db-main", "db", 0, "GB", "eu-west", 51);
    out
}

/// The service ports of a role: the standard ones, or each + 10000 when the process
/// may not bind ports below 1024.
pub fn ports(role: &str, privileged: bool) -> Vec<(&'static str, u16)> {
    let standard: &[(&'static str, u16)] = match role {
        "web" => &[("http", 80), ("https", 443)],
        "dns" => &[("dns", 53)],
        "mail" => &[
            ("smtp", 25),
            ("submission", 587),
            ("submissions", 465),
            ("pop3", 110),
            ("pop3s", 995),
            ("imap", 143),
            ("imaps", 993),
        ],
        "files" => &[("ftp", 21), ("sync", 7443)],
        "db" => &[("mysql", 3306), ("postgres", 5432)],
        _ => &[],
    };
    standard
        .iter()
        .map(|&(name, port)| {
            if privileged || port >= 1024 {
                (name, port)
            } else {
                (name, port + 10000)
            }
        })
        .collect()
}

/// Options for a server's role engine (its agent config's `[engine]` table): mail
/// servers resolve MX records through ns1 (so mail between hosted domains stays on
/// this machine), the db server runs its own MariaDB/PostgreSQL instances.
pub fn engine_options(
    server: &PlannedServer,
    all: &[PlannedServer],
    privileged: bool,
) -> std::collections::BTreeMap<String, String> {
    let mut out = std::collections::BTreeMap::new();
    match server.role {
        "mail" => {
            if let Some(ns1) = all.iter().find(|s| s.role == "dns" && s.rank == 0) {
                let port = ports("dns", privileged).first().map_or(53, |p| p.1);
                out.insert("resolver".into(), format!("{}:{port}", ns1.ip));
            }
            // Other mail servers of this machine listen where `up` put them.
            let smtp = ports("mail", privileged).first().map_or(25, |p| p.1);
            out.insert("outbound_port".into(), smtp.to_string());
        }
        "db" => {
            out.insert("managed".into(), "true".into());
        }
        _ => {}
    }
    out
}

/// True when this process may bind ports below 1024 (it runs as root).
pub fn privileged() -> bool {
    rustix::process::geteuid().is_root()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_topology_matches_design() {
        let s = servers(2, [127, 0, 0]);
        let names: Vec<_> = s
            .iter()
            .map(|s| (s.name.as_str(), s.cluster, s.ip.to_string()))
            .collect();
        assert_eq!(
            names,
            vec![
                ("web-1", "web-eu", "127.0.0.11".to_string()),
                ("web-2", "web-eu", "127.0.0.12".to_string()),
                ("web-3", "web-us", "127.0.0.13".to_string()),
                ("ns1", "dns-main", "127.0.0.21".to_string()),
                ("ns2", "dns-main", "127.0.0.22".to_string()),
                ("mx1", "mail-main", "127.0.0.31".to_string()),
                ("mx2", "mail-main", "127.0.0.32".to_string()),
                ("files-1", "files-main", "127.0.0.41".to_string()),
                ("db-1", "db-main", "127.0.0.51".to_string()),
            ]
        );
        // Primary and secondary of DNS and mail are in different countries.
        for cluster in ["dns-main", "mail-main"] {
            let members: Vec<_> = s.iter().filter(|x| x.cluster == cluster).collect();
            assert_eq!(members.len(), 2);
            assert_eq!(members[0].rank, 0);
            assert_ne!(members[0].country, members[1].country);
        }
        // Every server's cluster is planned, with the server's role.
        let cl = clusters();
        for srv in &s {
            let c = cl.iter().find(|c| c.name == srv.cluster).unwrap();
            assert_eq!(c.role, srv.role);
        }
    }

    #[test]
    fn web_count_and_base_change_the_plan() {
        let s = servers(4, [127, 0, 9]);
        assert_eq!(s.len(), 11);
        assert_eq!(s[3].name, "web-4");
        assert_eq!(s[4].name, "web-5");
        assert_eq!(s[4].cluster, "web-us");
        assert_eq!(s[4].ip, Ipv4Addr::new(127, 0, 9, 15));
        // The largest web-eu never reaches the DNS addresses.
        let max = servers(8, [127, 0, 0]);
        assert_eq!(max[8].ip, Ipv4Addr::new(127, 0, 0, 19));
        let mut ips: Vec<_> = max.iter().map(|s| s.ip).collect();
        ips.sort();
        ips.dedup();
        assert_eq!(ips.len(), max.len(), "addresses are unique");
    }

    #[test]
    fn unprivileged_ports_move_up_by_10000() {
        assert_eq!(ports("web", false), vec![("http", 10080), ("https", 10443)]);
        assert_eq!(ports("web", true), vec![("http", 80), ("https", 443)]);
        assert_eq!(
            ports("db", false),
            vec![("mysql", 3306), ("postgres", 5432)]
        );
        assert_eq!(ports("files", false), vec![("ftp", 10021), ("sync", 7443)]);
    }

    #[test]
    fn mail_resolves_through_ns1_and_db_manages_its_daemons() {
        let plan = servers(2, [127, 0, 0]);
        let mx1 = plan.iter().find(|s| s.name == "mx1").unwrap();
        assert_eq!(
            engine_options(mx1, &plan, false)
                .get("resolver")
                .map(String::as_str),
            Some("127.0.0.21:10053")
        );
        let db = plan.iter().find(|s| s.role == "db").unwrap();
        assert_eq!(
            engine_options(db, &plan, true)
                .get("managed")
                .map(String::as_str),
            Some("true")
        );
        let web = plan.iter().find(|s| s.role == "web").unwrap();
        assert!(engine_options(web, &plan, true).is_empty());
    }
}
