//! The summary `hostplane up` prints once every agent is up (or `--json`).

use proto::v1::ServerView;
use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;

use super::{control, topology, Fleet, TOKEN_FILE};

/// What the summary shows.
pub(super) struct Summary<'a> {
    pub(super) url: &'a str,
    pub(super) token: &'a str,
    pub(super) ca: &'a Path,
    pub(super) data_dir: &'a Path,
    pub(super) login_path: &'a Path,
    pub(super) fresh: bool,
    pub(super) fleet: &'a Fleet,
    pub(super) servers: &'a [ServerView],
}

impl Summary<'_> {
    fn health(&self, name: &str) -> String {
        self.servers
            .iter()
            .find(|s| s.name == name)
            .map(|s| s.health.clone())
            .unwrap_or_else(|| "not registered".into())
    }

    pub(super) fn json(&self) -> serde_json::Value {
        let privileged = topology::privileged();
        let servers: Vec<_> = self
            .fleet
            .agents
            .iter()
            .map(|(s, p)| {
                let ports: BTreeMap<_, _> =
                    topology::ports(s.role, privileged).into_iter().collect();
                serde_json::json!({
                    "name": s.name, "role": s.role, "cluster": s.cluster, "rank": s.rank,
                    "address": s.ip.to_string(), "country": s.country, "ports": ports,
                    "health": self.health(&s.name), "pid": p.pid(), "log": p.log,
                })
            })
            .collect();
        serde_json::json!({
            "url": self.url, "admin_token": self.token, "ca": self.ca,
            "data_dir": self.data_dir, "cli_config": self.login_path, "created": self.fresh,
            "controller_pid": self.fleet.controller.pid(),
            "control_socket": control::socket_path(self.data_dir),
            "servers": servers,
        })
    }

    /// `ip[:port]` of the first web server's HTTP port, for the printed examples.
    fn web_address(&self) -> String {
        let privileged = topology::privileged();
        let port = topology::ports("web", privileged)
            .first()
            .map_or(80, |p| p.1);
        self.fleet
            .agents
            .iter()
            .find(|(s, _)| s.role == "web")
            .map(|(s, _)| {
                if port == 80 {
                    s.ip.to_string()
                } else {
                    format!("{}:{port}", s.ip)
                }
            })
            .unwrap_or_default()
    }

    pub(super) fn print(&self) -> anyhow::Result<()> {
        let privileged = topology::privileged();
        let mut o = std::io::stdout().lock();
        writeln!(
            o,
            "hostplane is up{}",
            if self.fresh { " (new data dir)" } else { "" }
        )?;
        writeln!(o)?;
        writeln!(o, "  API URL      {}", self.url)?;
        writeln!(o, "  admin token  {}", self.token)?;
        writeln!(
            o,
            "               (kept in {}, mode 0600)",
            self.data_dir.join(TOKEN_FILE).display()
        )?;
        writeln!(o, "  CA           {}", self.ca.display())?;
        writeln!(o, "  data dir     {}", self.data_dir.display())?;
        writeln!(o, "  logs         {}", self.data_dir.join("logs").display())?;
        writeln!(
            o,
            "  CLI login    {} (other shells need no flags)",
            self.login_path.display()
        )?;
        writeln!(o)?;
        let rows = self.fleet.agents.iter().map(|(s, p)| {
            let ports = topology::ports(s.role, privileged)
                .iter()
                .map(|(n, port)| format!("{n} {port}"))
                .collect::<Vec<_>>()
                .join(", ");
            vec![
                s.name.clone(),
                s.role.to_owned(),
                s.cluster.to_owned(),
                s.rank.to_string(),
                s.country.to_owned(),
                s.ip.to_string(),
                ports,
                self.health(&s.name),
                p.pid().map(|p| p.to_string()).unwrap_or_else(|| "-".into()),
            ]
        });
        let table = crate::output::table(
            &[
                "server", "role", "cluster", "rank", "country", "address", "ports", "health", "pid",
            ],
            rows,
        );
        for line in table.lines() {
            writeln!(o, "  {line}")?;
        }
        writeln!(o)?;
        writeln!(
            o,
            "  Every server's role engine listens on its own address{}.",
            if privileged {
                ""
            } else {
                " (standard port + 10000: not root)"
            }
        )?;
        writeln!(o)?;
        writeln!(o, "try, from another shell:")?;
        writeln!(o, "  hostplane status")?;
        writeln!(o, "  hostplane server list")?;
        writeln!(
            o,
            "  hostplane server stop web-1       # kill it and all it runs: suspect, then down"
        )?;
        writeln!(o, "  hostplane server start web-1")?;
        writeln!(
            o,
            "  hostplane server drain web-2 && hostplane server undrain web-2"
        )?;
        writeln!(o, "  hostplane customer add demo")?;
        writeln!(o, "  hostplane domain add example.com --customer demo")?;
        writeln!(o, "  hostplane site add example.com --mode all")?;
        writeln!(o, "  hostplane site upload example.com ./public")?;
        writeln!(
            o,
            "  curl -H 'Host: example.com' http://{}/",
            self.web_address()
        )?;
        writeln!(o, "  hostplane mailbox add info@example.com")?;
        writeln!(
            o,
            "  curl --cacert {} -H \"Authorization: Bearer $(cat {})\" {}/v1/status",
            self.ca.display(),
            self.data_dir.join(TOKEN_FILE).display(),
            self.url
        )?;
        writeln!(o)?;
        writeln!(o, "press Ctrl-C to stop")?;
        o.flush()?;
        Ok(())
    }
}
